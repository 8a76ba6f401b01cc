# Defaults for the redhat-common element (sourced, not executed).
export DIB_DISABLE_KERNEL_CLEANUP=${DIB_DISABLE_KERNEL_CLEANUP:-0}
export DIB_INIT_SYSTEM=${DIB_INIT_SYSTEM:-systemd}
