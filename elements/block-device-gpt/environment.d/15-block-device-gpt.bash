# The partition table kind, for the bootloader element.
if [[ "${ARCH:-}" == "arm64" || "${ARCH:-}" == "aarch64" ]]; then
    echo "block-device-gpt: $ARCH boots with UEFI only; use block-device-efi" >&2
    return 1
fi
export DIB_BLOCK_DEVICE=gpt
