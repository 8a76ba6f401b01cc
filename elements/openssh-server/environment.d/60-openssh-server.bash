# Defaults for the openssh-server element (sourced, not executed).
export DIB_OPENSSH_SERVER_HARDENING=${DIB_OPENSSH_SERVER_HARDENING:-1}
