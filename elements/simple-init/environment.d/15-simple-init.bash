# Defaults and checks for the simple-init element (sourced, not executed).
#
# DIB_SIMPLE_INIT_NETWORKMANAGER: glean writes NetworkManager configuration on
# the Red Hat family (1, the default there) and ifupdown configuration on
# Debian and Ubuntu (0, the only value there). Fedora and EL9 and later have no
# network-scripts any more, so 0 cannot work there.

case "${DISTRO_NAME:-}" in
    almalinux|centos|fedora|rhel|rocky)
        export DIB_SIMPLE_INIT_NETWORKMANAGER=${DIB_SIMPLE_INIT_NETWORKMANAGER:-1}
        if [ "$DIB_SIMPLE_INIT_NETWORKMANAGER" = "0" ]; then
            _simple_init_major=${DIB_RELEASE:-0}
            _simple_init_major=${_simple_init_major%%[!0-9]*}
            if [ "$DISTRO_NAME" = "fedora" ] || [ "${_simple_init_major:-0}" -ge 9 ]; then
                echo "simple-init: DIB_SIMPLE_INIT_NETWORKMANAGER=0 needs network-scripts;" \
                    "$DISTRO_NAME ${DIB_RELEASE:-} does not have them; use 1 (NetworkManager)" >&2
                unset _simple_init_major
                return 1
            fi
            unset _simple_init_major
        fi
        ;;
    debian|ubuntu)
        export DIB_SIMPLE_INIT_NETWORKMANAGER=${DIB_SIMPLE_INIT_NETWORKMANAGER:-0}
        if [ "$DIB_SIMPLE_INIT_NETWORKMANAGER" != "0" ]; then
            echo "simple-init: DIB_SIMPLE_INIT_NETWORKMANAGER=$DIB_SIMPLE_INIT_NETWORKMANAGER:" \
                "glean configures ifupdown on $DISTRO_NAME, not NetworkManager; use 0" >&2
            return 1
        fi
        if [ "${DIB_INSTALLTYPE_simple_init:-${DIB_DEFAULT_INSTALLTYPE:-source}}" = "package" ]; then
            echo "simple-init: DIB_INSTALLTYPE_simple_init=package: $DISTRO_NAME has no glean" \
                "package; use source (from PyPI) or repo (from git)" >&2
            return 1
        fi
        ;;
    *)
        export DIB_SIMPLE_INIT_NETWORKMANAGER=${DIB_SIMPLE_INIT_NETWORKMANAGER:-0}
        ;;
esac

export DIB_SIMPLE_INIT_NO_DHCP_FALLBACK=${DIB_SIMPLE_INIT_NO_DHCP_FALLBACK:-0}

# glean reads the config drive itself: cloud-init, if the image has it, is
# removed, and pointed at no data source meanwhile.
export DIB_CLOUD_INIT_DATASOURCES=None
