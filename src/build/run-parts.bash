#!/bin/bash
# dibkit's phase runner, copied into the hooks tree like dib's dib-run-parts and run the same
# way outside and inside the chroot:
#
#   bash dibkit-run-parts PHASE_DIR STATUS_FILE
#
# It selects and orders hooks exactly as dib-run-parts does (executable regular files or
# symlinks to them, named ^[0-9A-Za-z_-]+$ unless RUN_PARTS_REGEX says otherwise, in
# `LANG=C sort -n` order), sources ../environment.d first (bytewise order, under
# set -eu -o pipefail, with xtrace while sourcing), runs each hook and stops at the first
# failure. For each hook it appends `start NAME EPOCH` and `end NAME STATUS SECONDS` lines to
# STATUS_FILE, which dibkit reads for its progress, timing table and manifest.
set -ue
set -o pipefail

dir=$1
status=$2
regex=${RUN_PARTS_REGEX:-"^[0-9A-Za-z_-]+$"}

env_dir="$dir/../environment.d"
if [ -d "$env_dir" ]; then
    # The same pipeline as dib-run-parts: an environment.d with no valid name makes grep fail
    # and stops the phase, as it does in dib.
    env_files=$(find "$env_dir" -maxdepth 1 -xtype f | grep -E "/[0-9A-Za-z_\.-]+$" | LANG=C sort -n)
    for env_file in $env_files; do
        xtrace=$(set +o | grep xtrace)
        set -o xtrace
        # shellcheck disable=SC1090
        source "$env_file"
        $xtrace
    done
fi

targets=$(find "$dir" -maxdepth 1 -xtype f -executable -printf '%f\n' | grep -E "$regex" | LANG=C sort -n || true)
for target in $targets; do
    echo "dib-run-parts Running $dir/$target" >&2
    start=$(date +%s.%N)
    printf 'start\t%s\t%s\n' "$target" "$start" >> "$status"
    set +e
    "$dir/$target"
    rc=$?
    set -e
    end=$(date +%s.%N)
    printf 'end\t%s\t%s\t%s\n' "$target" "$rc" "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')" >> "$status"
    if [ "$rc" -ne 0 ]; then
        echo "dib-run-parts $target failed with status $rc" >&2
        exit "$rc"
    fi
    echo "$target completed" >&2
done
