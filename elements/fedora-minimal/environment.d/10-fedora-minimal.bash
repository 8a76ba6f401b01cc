# Defaults for the fedora-minimal element (sourced, not executed).
export DISTRO_NAME=${DISTRO_NAME:-fedora}
export DIB_RELEASE=${DIB_RELEASE:-42}
export YUM=${YUM:-dnf}
export EFI_BOOT_DIR=${EFI_BOOT_DIR:-EFI/fedora}
export DIB_DISTRIBUTION_MIRROR=${DIB_DISTRIBUTION_MIRROR:-}
