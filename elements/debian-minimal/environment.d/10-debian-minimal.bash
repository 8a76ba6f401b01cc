# Defaults for the debian-minimal element (sourced, not executed).
export DISTRO_NAME=${DISTRO_NAME:-debian}
export DIB_RELEASE=${DIB_RELEASE:-bookworm}
export DIB_INIT_SYSTEM=${DIB_INIT_SYSTEM:-systemd}
export EFI_BOOT_DIR=${EFI_BOOT_DIR:-EFI/debian}
export DIB_DISTRIBUTION_MIRROR=${DIB_DISTRIBUTION_MIRROR:-${DIB_DEBIAN_DISTRIBUTION_MIRROR:-}}
export DIB_DEBIAN_SECURITY_MIRROR=${DIB_DEBIAN_SECURITY_MIRROR:-}
export DIB_DEBIAN_COMPONENTS=${DIB_DEBIAN_COMPONENTS:-main}
export DIB_APT_SOURCES_CONF=${DIB_APT_SOURCES_CONF:-}
export DIB_DEBIAN_KERNEL=${DIB_DEBIAN_KERNEL:-}
# The base packages root.d/60-debian-minimal-baseinstall needs go into
# debootstrap's cached tree, so a warm build unpacks them.
export DIB_DEBOOTSTRAP_INCLUDE=${DIB_DEBOOTSTRAP_INCLUDE:-systemd-sysv,dbus,libpam-systemd,ca-certificates,netbase}
