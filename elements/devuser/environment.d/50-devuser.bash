# Defaults for the devuser element (sourced, not executed).
# DIB_DEV_USER_PASSWORD is deliberately not listed: environment files are
# sourced with xtrace on, so its value would appear in the build log.
export DIB_DEV_USER_USERNAME=${DIB_DEV_USER_USERNAME:-devuser}
export DIB_DEV_USER_SHELL=${DIB_DEV_USER_SHELL:-}
export DIB_DEV_USER_GROUPS=${DIB_DEV_USER_GROUPS:-}
export DIB_DEV_USER_PWDLESS_SUDO=${DIB_DEV_USER_PWDLESS_SUDO:-}
export DIB_DEV_USER_AUTHORIZED_KEYS=${DIB_DEV_USER_AUTHORIZED_KEYS:-}
