# Defaults for the centos-minimal element (sourced, not executed).
export DISTRO_NAME=${DISTRO_NAME:-centos}
export DIB_RELEASE=${DIB_RELEASE:-9-stream}
# EL7 has yum; later releases dnf.
if [ "${DIB_RELEASE%%-*}" = 7 ]; then
    export YUM=${YUM:-yum}
else
    export YUM=${YUM:-dnf}
fi
export EFI_BOOT_DIR=${EFI_BOOT_DIR:-EFI/centos}
export DIB_DISTRIBUTION_MIRROR=${DIB_DISTRIBUTION_MIRROR:-}
# Interfaces are configured at boot (NetworkManager, glean, cloud-init).
export DIB_YUM_MINIMAL_CREATE_INTERFACES=${DIB_YUM_MINIMAL_CREATE_INTERFACES:-0}
