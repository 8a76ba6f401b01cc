# Defaults for the jenkins-slave example element (sourced, not executed).
export JENKINS_PUBLIC_SSH_KEY_PATH=${JENKINS_PUBLIC_SSH_KEY_PATH:-}
export DIB_JENKINS_USER=${DIB_JENKINS_USER:-jenkins}
