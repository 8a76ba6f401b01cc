# Defaults for the yum element (sourced, not executed). The operating-system
# element sets YUM (dnf, or yum for EL7) earlier; dnf is the fallback.
export YUM=${YUM:-dnf}
export DIB_YUM_LOCAL_CACHE=${DIB_YUM_LOCAL_CACHE:-1}
export DIB_YUM_REPO_CONF=${DIB_YUM_REPO_CONF:-}
export DIB_YUM_REPO_PACKAGE=${DIB_YUM_REPO_PACKAGE:-}
export DIB_DNF_MODULE_STREAMS=${DIB_DNF_MODULE_STREAMS:-}
