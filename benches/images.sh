#!/usr/bin/env bash
# Benchmark: four Debian images from one image file, built by `dibkit build --file --jobs 2`
# and by upstream dib's own `diskimage-builder` (which builds them one after the other), on
# the same machine, in one run, each with a cold cache and then warm.
#
#   sudo bash benches/images.sh     (root; needs cargo build --release, tests/oracle/setup)
#
# The four images: `debian-minimal vm`, the same with `less` from `packages:`, `debian-minimal
# vm growroot`, and a `debian-minimal` root filesystem tar; Debian bookworm for the host
# architecture, each tool with its own elements and default mirror. Cold: a new, empty image
# cache. Warm: the same file again with the cache the cold run left. Targets: dibkit at least
# 2x faster cold and 3x faster warm. BENCH_ENFORCE=1 exits 1 on a miss.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
DIBKIT="$ROOT/target/release/dibkit"
VENV="$ROOT/target/upstream/venv"
[[ $EUID -eq 0 ]] || { echo "benches/images.sh: run as root" >&2; exit 1; }
[[ -x "$DIBKIT" ]] || { echo "benches/images.sh: run 'cargo build --release' first" >&2; exit 1; }
[[ -x "$VENV/bin/diskimage-builder" ]] || tests/oracle/setup
command -v sudo >/dev/null || apt-get install -y sudo >/dev/null
command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null

# As benches/build.sh: the main mirror's -security sibling, read from debootstrap's default.
mirror=${DIB_DISTRIBUTION_MIRROR:-$(sed -n 's/^DEF_MIRROR="\(.*\)"$/\1/p' "$(command -v debootstrap)")}
export DIB_DEBIAN_SECURITY_MIRROR=${DIB_DEBIAN_SECURITY_MIRROR:-${mirror%/*}/debian-security}
export DIB_RELEASE=bookworm

WORK="$ROOT/target/bench/images"
rm -rf "$WORK"
mkdir -p "$WORK"

# disk-image-create needs device-mapper for its partitions; on hosts without it, the same
# stand-ins as benches/build.sh (partx-made devices linked as /dev/mapper names).
# shellcheck source-path=SCRIPTDIR source=dib-shims.sh
source "$ROOT/benches/dib-shims.sh"
dib_shims "$WORK/shim"

# image_file WHO: the four images, written to $WORK/out-WHO.
image_file() {
    local out="$WORK/out-$1"
    mkdir -p "$out"
    cat >"$WORK/images-$1.yaml" <<YAML
- imagename: $out/vm
  elements: [debian-minimal, vm]
- imagename: $out/vm-less
  packages: [less]
  elements: [debian-minimal, vm]
- imagename: $out/growroot
  elements: [debian-minimal, vm, growroot]
- imagename: $out/rootfs
  types: [tar]
  elements: [debian-minimal]
YAML
}

run() { # NAME CACHE COMMAND...
    local name=$1 cache=$2
    shift 2
    local start end
    start=$(date +%s.%N)
    if ! DIB_IMAGE_CACHE="$cache" "$@" >"$WORK/$name.out" 2>&1; then
        echo "benches/images.sh: $name failed; see $WORK/$name.out" >&2
        tail -n 30 "$WORK/$name.out" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    echo "$name $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')" | tee -a "$WORK/times"
}

for round in cold warm; do
    for who in dibkit dib; do
        rm -rf "$WORK/out-$who"
        image_file "$who"
        mkdir -p "$WORK/cache-$who"
    done
    run "dibkit-$round" "$WORK/cache-dibkit" \
        "$DIBKIT" build --jobs 2 --file "$WORK/images-dibkit.yaml"
    run "dib-$round" "$WORK/cache-dib" \
        env PATH="$VENV/bin:$PATH" "$VENV/bin/diskimage-builder" "$WORK/images-dib.yaml"
done

python3 - "$WORK/times" <<'PY'
import os, sys
t = {k: float(v) for k, v in (l.split() for l in open(sys.argv[1]))}
ok = True
for r, target in (("cold", 2), ("warm", 3)):
    ratio = t[f"dib-{r}"] / t[f"dibkit-{r}"]
    good = ratio >= target
    ok &= good
    print(f"four images, {r}: dibkit --jobs 2 {t[f'dibkit-{r}']:.1f} s, diskimage-builder "
          f"{t[f'dib-{r}']:.1f} s, ratio {ratio:.1f}x (target >= {target}x: "
          f"{'PASS' if good else 'MISS'})")
if os.environ.get("BENCH_ENFORCE") == "1" and not ok:
    sys.exit(1)
PY
