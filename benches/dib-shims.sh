#!/usr/bin/env bash
# Sourced by benches/build.sh and benches/images.sh: dib_shims DIR gives upstream
# disk-image-create stand-ins for sudo, dmsetup and kpartx on hosts without device-mapper,
# written to DIR and put first on PATH. Nothing happens on hosts that have device-mapper.

dib_shims() {
    local dir=$1
    # disk-image-create maps partitions with kpartx (device-mapper). On hosts whose kernel has
    # no device-mapper, give it a stand-in that makes the same /dev/mapper/loopNpK names as
    # links to the partition devices partx creates, a dmsetup whose `mknodes` has nothing to
    # do, and a sudo that keeps this PATH (we are root already; sudo would reset it).
    if ! dmsetup version >/dev/null 2>&1 || ! command -v kpartx >/dev/null; then
        mkdir -p "$dir"
        cat >"$dir/sudo" <<'SHIM'
#!/bin/bash
# sudo stand-in (benches/dib-shims.sh): already root, so drop sudo's options and run the command.
while [[ $# -gt 0 && $1 == -* ]]; do
    case $1 in
        --) shift; break ;;
        -u | -g | -C | -D) shift 2 ;;
        *) shift ;;
    esac
done
exec "$@"
SHIM
        real_dmsetup=$(command -v dmsetup || echo /usr/sbin/dmsetup)
        cat >"$dir/dmsetup" <<SHIM
#!/bin/bash
# dmsetup stand-in (benches/dib-shims.sh): no device-mapper, so no nodes to make.
[[ " \$* " == *" mknodes "* ]] && exit 0
exec $real_dmsetup "\$@"
SHIM
        chmod +x "$dir/sudo" "$dir/dmsetup"
        cat >"$dir/kpartx" <<'SHIM'
#!/bin/bash
# kpartx stand-in (benches/dib-shims.sh): partition devices from partx, linked as /dev/mapper/*.
set -eu
flags=$1
dev=${*: -1}
name=$(basename "$dev")
mkdir -p /dev/mapper
if [[ $flags == -d* ]]; then
    rm -f /dev/mapper/"$name"p*
    partx -d "$dev" 2>/dev/null || true
    exit 0
fi
partx -a "$dev" 2>/dev/null || partx -u "$dev"
for _ in $(seq 50); do
    ls "$dev"p* >/dev/null 2>&1 && break
    sleep 0.1
done
for part in "$dev"p*; do
    ln -sf "$part" "/dev/mapper/$(basename "$part")"
    echo "add map $(basename "$part")"
done
SHIM
        chmod +x "$dir/kpartx"
        export PATH="$dir:$PATH"
    fi
}
