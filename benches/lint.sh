#!/usr/bin/env bash
# Benchmark: `dibkit lint` vs upstream dib-lint over upstream's own element library.
#
#   benches/lint.sh            (needs `cargo build --release` and tests/oracle/setup)
#
# Both tools lint the same tree: the elements of the diskimage-builder sdist (which keeps the
# file modes), copied once into target/bench/dib-lint-tree as a git repository because
# dib-lint asks git which files are ignored. dib-lint runs with the venv's python (PyYAML,
# flake8) first on PATH.
#
# Targets: dibkit under 100 ms, and at least 100x faster than dib-lint.
# BENCH_ENFORCE=1 makes a miss exit 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
DIBKIT="$ROOT/target/release/dibkit"
SRC="$ROOT/target/upstream/src"
VENV="$ROOT/target/upstream/venv"
TREE="$ROOT/target/bench/dib-lint-tree"

[[ -x "$DIBKIT" ]] || { echo "benches/lint.sh: run 'cargo build --release' first" >&2; exit 1; }
[[ -x "$SRC/bin/dib-lint" || -f "$SRC/bin/dib-lint" ]] || tests/oracle/setup
command -v hyperfine >/dev/null || apt-get install -y hyperfine >/dev/null

if [[ ! -d "$TREE/.git" ]]; then
    rm -rf "$TREE"
    mkdir -p "$TREE/lib"
    cp -a "$SRC/diskimage_builder/elements" "$TREE/elements"
    git -C "$TREE" init -q
    git -C "$TREE" add -A
fi
ELEMENTS="$TREE/elements"
echo "elements: $(find "$ELEMENTS" -mindepth 1 -maxdepth 1 -type d | wc -l) under $ELEMENTS"

EXPORT="$ROOT/target/bench/lint.json"
# dib-lint is slow: a few runs are plenty; dibkit gets many.
hyperfine -N -i --warmup 3 --runs "${BENCH_DIBKIT_RUNS:-50}" --export-json "$EXPORT.dibkit" \
    -n dibkit "$DIBKIT lint --builtins none --format json $ELEMENTS"
hyperfine --runs "${BENCH_DIBLINT_RUNS:-3}" -i --export-json "$EXPORT.dib-lint" \
    -n dib-lint "cd $TREE && PATH=$VENV/bin:\$PATH ELEMENTS_DIR=elements LIB_DIR=lib bash $SRC/bin/dib-lint >/dev/null 2>&1"

python3 - "$EXPORT.dibkit" "$EXPORT.dib-lint" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))["results"][0]["mean"]
u = json.load(open(sys.argv[2]))["results"][0]["mean"]
speedup = u / d
print(f"dibkit   mean {d*1000:9.2f} ms")
print(f"dib-lint mean {u*1000:9.2f} ms")
print(f"speedup: {speedup:.0f}x")
ok_speed = speedup >= 100
ok_time = d < 0.100
print("target speedup >= 100x:", "PASS" if ok_speed else "MISS")
print("target dibkit < 100 ms:", "PASS" if ok_time else "MISS")
if os.environ.get("BENCH_ENFORCE") == "1" and not (ok_speed and ok_time):
    sys.exit(1)
PY
