# The partition table kind, for the bootloader element.
case "${ARCH:-}" in
    ppc64|ppc64le|ppc64el)
        echo "block-device-efi: $ARCH has no UEFI firmware; use block-device-mbr" >&2
        return 1
        ;;
esac
export DIB_BLOCK_DEVICE=efi
