# The rhel element for RHEL 7 (sourced, not executed; before the rhel
# element's defaults, which then choose yum).
export DIB_RELEASE=7
