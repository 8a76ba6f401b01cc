#!/usr/bin/env bash
# Benchmark: `dibkit build debian-minimal -t tar` against upstream disk-image-create on the same
# machine, in one run, each with a cold cache and then warm.
#
#   sudo bash benches/build.sh        (root; needs cargo build --release and tests/oracle/setup)
#
# Both build Debian bookworm for the host architecture with their own debian-minimal element
# and their own default mirror, into a tar. Cold: a new, empty image cache (debootstrap
# downloads everything). Warm: the same command again with the cache the cold run left.
# Targets: dibkit at least 2x faster cold and 4x faster warm. BENCH_ENFORCE=1 exits 1 on a miss.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
DIBKIT="$ROOT/target/release/dibkit"
VENV="$ROOT/target/upstream/venv"
[[ $EUID -eq 0 ]] || { echo "benches/build.sh: run as root" >&2; exit 1; }
[[ -x "$DIBKIT" ]] || { echo "benches/build.sh: run 'cargo build --release' first" >&2; exit 1; }
[[ -x "$VENV/bin/disk-image-create" ]] || tests/oracle/setup
# disk-image-create runs every privileged step through sudo.
command -v sudo >/dev/null || apt-get install -y sudo >/dev/null
command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null

# Upstream's debian-minimal points apt at a separate security host by default; on machines
# that reach only the main mirror, use that mirror's -security sibling path. The mirror is
# debootstrap's own default, read from its script (no host name is written here).
mirror=${DIB_DISTRIBUTION_MIRROR:-$(sed -n 's/^DEF_MIRROR="\(.*\)"$/\1/p' "$(command -v debootstrap)")}
export DIB_DEBIAN_SECURITY_MIRROR=${DIB_DEBIAN_SECURITY_MIRROR:-${mirror%/*}/debian-security}

WORK="$ROOT/target/bench/build"
rm -rf "$WORK"
mkdir -p "$WORK"
export DIB_RELEASE=bookworm

run() { # NAME CACHE COMMAND...
    local name=$1 cache=$2
    shift 2
    local start end
    start=$(date +%s.%N)
    if ! DIB_IMAGE_CACHE="$cache" "$@" >"$WORK/$name.out" 2>&1; then
        echo "benches/build.sh: $name failed; see $WORK/$name.out" >&2
        tail -n 20 "$WORK/$name.out" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    echo "$name $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')" | tee -a "$WORK/times"
}

for round in cold warm; do
    mkdir -p "$WORK/cache-dibkit" "$WORK/cache-dib"
    rm -f "$WORK"/dibkit.tar "$WORK"/dib.tar
    run "dibkit-$round" "$WORK/cache-dibkit" \
        "$DIBKIT" build debian-minimal -t tar -o "$WORK/dibkit" --force --image-cache "$WORK/cache-dibkit"
    run "dib-$round" "$WORK/cache-dib" \
        env PATH="$VENV/bin:$PATH" "$VENV/bin/disk-image-create" -t tar -o "$WORK/dib" debian-minimal
done

python3 - "$WORK/times" <<'PY'
import os, sys
t = dict(l.split() for l in open(sys.argv[1]))
t = {k: float(v) for k, v in t.items()}
ok = True
for r, target in (("cold", 2), ("warm", 4)):
    ratio = t[f"dib-{r}"] / t[f"dibkit-{r}"]
    good = ratio >= target
    ok &= good
    print(f"{r}: dibkit {t[f'dibkit-{r}']:.1f} s, disk-image-create {t[f'dib-{r}']:.1f} s, "
          f"ratio {ratio:.1f}x (target >= {target}x: {'PASS' if good else 'MISS'})")
if os.environ.get("BENCH_ENFORCE") == "1" and not ok:
    sys.exit(1)
PY
