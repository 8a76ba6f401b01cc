# Defaults for the local-image element (sourced, not executed).
#
# DISTRO_NAME and DIB_RELEASE come from the image's os-release unless they
# are set. environment.d is sourced at the start of every phase, root.d's
# included, so the image is read before root.d has unpacked it: on the host,
# `dibkit extract-image --os-release` extracts the image into the cache
# (keyed by its content hash; the hash of an unchanged file is remembered, so
# later phases do not read the image again) and prints the file, and root.d
# unpacks the cached tree. In the chroot the image's tree is the root, and
# its own os-release is read.

export DIB_LOCAL_IMAGE=${DIB_LOCAL_IMAGE:-}

if [ -z "${DISTRO_NAME:-}" ] || [ -z "${DIB_RELEASE:-}" ]; then
    case "${BASH_SOURCE[0]}" in
        /tmp/in_target.d/*)
            _local_image_os_release=$(cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release)
            ;;
        *)
            if [ -z "$DIB_LOCAL_IMAGE" ]; then
                echo "local-image: set DIB_LOCAL_IMAGE to the qcow2 or raw image to start from" >&2
                exit 1
            fi
            _local_image_os_release=$("${DIBKIT:-dibkit}" extract-image --image "$DIB_LOCAL_IMAGE" --os-release)
            ;;
    esac
    # One field's value, its quotes removed.
    _local_image_field() {
        local line value
        while IFS= read -r line; do
            case "$line" in
                "$1="*)
                    value=${line#*=}
                    value=${value#[\"\']}
                    value=${value%[\"\']}
                    printf '%s\n' "$value"
                    return 0
                    ;;
            esac
        done <<< "$_local_image_os_release"
    }
    _local_image_id=$(_local_image_field ID)
    _local_image_version=$(_local_image_field VERSION_ID)
    _local_image_codename=$(_local_image_field VERSION_CODENAME)
    if [ -z "$_local_image_id" ]; then
        echo "local-image: the os-release of $DIB_LOCAL_IMAGE has no ID; set DISTRO_NAME and DIB_RELEASE" >&2
        exit 1
    fi
    # DIB_RELEASE as the distribution's own elements name releases: the
    # codename where there is one (bookworm, noble), CentOS Stream as
    # 9-stream, the major version of the other Enterprise Linux rebuilds (9),
    # else VERSION_ID (Fedora's 40).
    case "$_local_image_id" in
        centos)
            _local_image_release="${_local_image_version%%.*}-stream"
            ;;
        rhel | rocky | almalinux)
            _local_image_release=${_local_image_version%%.*}
            ;;
        *)
            _local_image_release=${_local_image_codename:-$_local_image_version}
            ;;
    esac
    if [ -z "$_local_image_release" ]; then
        echo "local-image: the os-release of $DIB_LOCAL_IMAGE has neither VERSION_CODENAME nor VERSION_ID; set DIB_RELEASE" >&2
        exit 1
    fi
    export DISTRO_NAME=${DISTRO_NAME:-$_local_image_id}
    export DIB_RELEASE=${DIB_RELEASE:-$_local_image_release}
    unset -f _local_image_field
    unset _local_image_os_release _local_image_id _local_image_version \
        _local_image_codename _local_image_release
fi
export EFI_BOOT_DIR=${EFI_BOOT_DIR:-EFI/$DISTRO_NAME}
