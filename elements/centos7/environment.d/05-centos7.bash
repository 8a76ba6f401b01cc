# The centos element for CentOS 7 (sourced, not executed; before the centos
# element's defaults, which then choose yum).
export DIB_RELEASE=7
