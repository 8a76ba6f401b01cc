# The partition table kind, for the bootloader element.
export DIB_BLOCK_DEVICE=mbr
