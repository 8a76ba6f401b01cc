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

# What root.d/60-debian-minimal-baseinstall installs besides initramfs-tools
# and the kernel. open-iscsi is base's package (install.d/12-base-packages);
# installed here as well, it is in the cached tree with its initramfs hook, so
# a warm build does not rebuild the initramfs.
if [ -z "${DIB_DEBIAN_MINIMAL_PACKAGES:-}" ]; then
    DIB_DEBIAN_MINIMAL_PACKAGES="systemd-sysv dbus libpam-systemd ca-certificates netbase"
    case " ${IMAGE_ELEMENT:-} " in
        *" base "*)
            if [ "${DIB_SKIP_BASE_PACKAGE_INSTALL:-0}" != "1" ]; then
                DIB_DEBIAN_MINIMAL_PACKAGES="$DIB_DEBIAN_MINIMAL_PACKAGES open-iscsi"
            fi
            ;;
    esac
    # What debootstrap's install.d/30 installs for the network interfaces it
    # writes, on the releases that have ifupdown's DHCP client isc-dhcp-client.
    if [ "${DIB_APT_MINIMAL_CREATE_INTERFACES:-1}" = "1" ]; then
        case "$DIB_RELEASE" in
            bullseye | bookworm | trixie)
                DIB_DEBIAN_MINIMAL_PACKAGES="$DIB_DEBIAN_MINIMAL_PACKAGES ifupdown isc-dhcp-client"
                ;;
        esac
    fi
fi
export DIB_DEBIAN_MINIMAL_PACKAGES

# debootstrap runs dpkg's apt settings and the sources and base-install
# scripts on a fresh tree before caching it (declared in this element's
# hook-calls); the key names what they read beyond debootstrap's own inputs,
# and dpkg's list update, which the base install runs, is part of it too.
# Keys from DIB_ADD_APT_KEYS reach the tree only later in root.d (dpkg), so
# with them apt could not trust the sources yet: no prepared tree then.
if [ -z "${DIB_DEBOOTSTRAP_PREPARE+set}" ]; then
    if [ -n "${DIB_ADD_APT_KEYS:-}" ]; then
        DIB_DEBOOTSTRAP_PREPARE=""
    else
        DIB_DEBOOTSTRAP_PREPARE="20-dpkg-apt-config 55-debian-apt-sources 60-debian-minimal-baseinstall"
    fi
fi
export DIB_DEBOOTSTRAP_PREPARE
export DIB_DEBOOTSTRAP_PREPARE_INPUTS=${DIB_DEBOOTSTRAP_PREPARE_INPUTS:-pre-install.d/85-dpkg-apt-update}
# The dpkg element's other root.d scripts sort between debootstrap and these
# and change nothing they depend on.
export DIB_DEBOOTSTRAP_PREPARE_COMPATIBLE="${DIB_DEBOOTSTRAP_PREPARE_COMPATIBLE:-20-dpkg-apt-config 25-dpkg-block-daemons 30-dpkg-shared-apt-cache}"
# Added to (not replacing) a key the user gives for scripts of their own.
_dm_key="debian-minimal: packages=$DIB_DEBIAN_MINIMAL_PACKAGES kernel=$DIB_DEBIAN_KERNEL security=$DIB_DEBIAN_SECURITY_MIRROR sources=$DIB_APT_SOURCES_CONF"
case "${DIB_DEBOOTSTRAP_PREPARE_KEY:-}" in
    *"$_dm_key"*) ;;
    *) DIB_DEBOOTSTRAP_PREPARE_KEY="${DIB_DEBOOTSTRAP_PREPARE_KEY:+$DIB_DEBOOTSTRAP_PREPARE_KEY
}$_dm_key" ;;
esac
export DIB_DEBOOTSTRAP_PREPARE_KEY
unset _dm_key
