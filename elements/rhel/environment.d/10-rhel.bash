# Defaults for the rhel element (sourced, not executed).
export DISTRO_NAME=${DISTRO_NAME:-rhel}
export DIB_RELEASE=${DIB_RELEASE:-9}
# EL7 has yum; later releases dnf.
if [ "${DIB_RELEASE%%.*}" = 7 ]; then
    export YUM=${YUM:-yum}
else
    export YUM=${YUM:-dnf}
fi
export EFI_BOOT_DIR=${EFI_BOOT_DIR:-EFI/redhat}
