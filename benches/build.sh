#!/usr/bin/env bash
# Benchmark: dibkit build against upstream disk-image-create on the same machine, in one run,
# each with a cold cache and then warm.
#
#   sudo bash benches/build.sh [tar|vm|jenkins]   (root; needs cargo build --release,
#                                                 tests/oracle/setup)
#
# tar (default): `debian-minimal` into a root filesystem tar.
# vm: `debian-minimal vm` into a qcow2 (both compress it by default); also reports both image
#     sizes and both boot times under `dibkit boot --accel tcg`.
# jenkins: the users' image, `debian-minimal vm jenkins-slave` (examples/elements, copied),
#     into a qcow2: cold, warm, after adding a finalise.d script to the element
#     (finalise.d/90-bench-stamp), and after editing one install.d script
#     (install.d/65-jenkins-slave-user), each round dibkit then disk-image-create; dibkit's
#     build log says what its build cache reused. Targets (issue 18): warm <= 15 s,
#     finalise.d edit <= 10 s, install.d edit <= 20 s.
# Both build Debian bookworm for the host architecture with their own elements and their own
# default mirror. Cold: a new, empty image cache (debootstrap downloads everything). Warm: the
# same command again with the cache the cold run left. Targets: dibkit at least 2x faster cold
# and 4x faster warm; vm (issue 18): 3x cold, 15x and at most 10 s warm, and an image no
# larger. BENCH_ENFORCE=1 exits 1 on a miss.
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

MODE=${1:-tar}
case "$MODE" in
    tar) elements=(debian-minimal) types=tar ;;
    vm) elements=(debian-minimal vm) types=qcow2 ;;
    jenkins) elements=(debian-minimal vm jenkins-slave) types=qcow2 ;;
    *) echo "benches/build.sh: unknown mode '$MODE' (tar, vm or jenkins)" >&2; exit 2 ;;
esac

WORK="$ROOT/target/bench/build-$MODE"
rm -rf "$WORK"
mkdir -p "$WORK"
export DIB_RELEASE=bookworm
rounds=(cold warm)
if [[ $MODE == jenkins ]]; then
    # A copy of the example, so the edit round leaves the repository alone; its key file
    # (extra-data.d copies it into the image) is made here.
    cp -a "$ROOT/examples/elements" "$WORK/elements"
    export ELEMENTS_PATH="$WORK/elements"
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/jenkins-key" >/dev/null
    export JENKINS_PUBLIC_SSH_KEY_PATH="$WORK/jenkins-key.pub"
    rounds=(cold warm finalise edit)
fi

if [[ $MODE == vm || $MODE == jenkins ]]; then
    # disk-image-create needs device-mapper for its partitions: stand-ins where it is missing.
    # shellcheck source-path=SCRIPTDIR source=dib-shims.sh
    source "$ROOT/benches/dib-shims.sh"
    dib_shims "$WORK/shim"
fi

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

for round in "${rounds[@]}"; do
    if [[ $round == finalise ]]; then
        mkdir -p "$WORK/elements/jenkins-slave/finalise.d"
        printf '#!/bin/bash\nset -eu\nset -o pipefail\ndate -u > /etc/bench-stamp\n' \
            >"$WORK/elements/jenkins-slave/finalise.d/90-bench-stamp"
        chmod 755 "$WORK/elements/jenkins-slave/finalise.d/90-bench-stamp"
    fi
    if [[ $round == edit ]]; then
        echo "# edited by benches/build.sh" >>"$WORK/elements/jenkins-slave/install.d/65-jenkins-slave-user"
    fi
    mkdir -p "$WORK/cache-dibkit" "$WORK/cache-dib"
    rm -f "$WORK"/dibkit.$types "$WORK"/dib.$types
    run "dibkit-$round" "$WORK/cache-dibkit" \
        "$DIBKIT" build "${elements[@]}" -t $types -o "$WORK/dibkit" --force --image-cache "$WORK/cache-dibkit"
    grep -h "build cache: \(reusing\|no tree\|changed\|keeping\)\|qcow2: \(reused\|no cluster index\)" \
        "$WORK/dibkit.log" | sed "s/^/$round: /" >>"$WORK/reuse" || true
    # Where dibkit's time went: each step's duration, the longest first.
    awk '/^dibkit step: / { step = substr($0, 14, 90) } /^dibkit step took / { print $4, step }' \
        "$WORK/dibkit.log" | sort -rn | head -n 8 | sed "s/^/$round: /" >>"$WORK/steps"
    run "dib-$round" "$WORK/cache-dib" \
        env PATH="$VENV/bin:$PATH" "$VENV/bin/disk-image-create" -t $types -o "$WORK/dib" "${elements[@]}"
done

if [[ $MODE == vm || $MODE == jenkins ]]; then
    for who in dibkit dib; do
        echo "size-$who $(stat -c %s "$WORK/$who.qcow2")" >>"$WORK/times"
        if "$DIBKIT" boot --accel tcg --timeout 600 "$WORK/$who.qcow2" >"$WORK/boot-$who.out" 2>&1; then
            sed -n 's/.* in \([0-9.]*\) s;.*/boot-'"$who"' \1/p' "$WORK/boot-$who.out" >>"$WORK/times"
        else
            echo "benches/build.sh: $who.qcow2 did not boot; see $WORK/boot-$who.out" >&2
            echo "boot-$who nan" >>"$WORK/times"
        fi
    done
fi

[[ -f $WORK/reuse ]] && cat "$WORK/reuse"
[[ -f $WORK/steps ]] && cat "$WORK/steps"
python3 - "$WORK/times" "$MODE" <<'PY'
import os, sys
t = dict(l.split() for l in open(sys.argv[1]))
t = {k: float(v) for k, v in t.items()}
ok = True
mode = sys.argv[2]
# Ratio targets, and (jenkins and vm, issue 18) dibkit's own time in seconds.
ratios = {"cold": 3 if mode == "vm" else 2, "warm": 15 if mode == "vm" else 4,
          "finalise": 4, "edit": 4}
seconds = {"jenkins": {"warm": 15, "finalise": 10, "edit": 20}, "vm": {"warm": 10}}.get(mode, {})
for r, target in ratios.items():
    if f"dib-{r}" not in t:
        continue
    ratio = t[f"dib-{r}"] / t[f"dibkit-{r}"]
    good = ratio >= target
    ok &= good
    line = (f"{r}: dibkit {t[f'dibkit-{r}']:.1f} s, disk-image-create {t[f'dib-{r}']:.1f} s, "
            f"ratio {ratio:.1f}x (target >= {target}x: {'PASS' if good else 'MISS'})")
    if r in seconds:
        fast = t[f"dibkit-{r}"] <= seconds[r]
        ok &= fast
        line += f"; dibkit <= {seconds[r]} s: {'PASS' if fast else 'MISS'}"
    print(line)
if "size-dibkit" in t:
    mib = lambda b: b / 2**20
    small = t["size-dibkit"] <= t["size-dib"]
    ok &= small
    print(f"qcow2 size: dibkit {mib(t['size-dibkit']):.0f} MiB, disk-image-create "
          f"{mib(t['size-dib']):.0f} MiB (target no larger: {'PASS' if small else 'MISS'})")
    print(f"boot to login (TCG): dibkit {t['boot-dibkit']:.1f} s, disk-image-create "
          f"{t['boot-dib']:.1f} s")
if os.environ.get("BENCH_ENFORCE") == "1" and not ok:
    sys.exit(1)
PY
