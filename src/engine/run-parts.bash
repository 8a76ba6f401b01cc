#!/bin/bash
# dibkit's phase runner, copied into the hooks tree like dib's dib-run-parts and run the same
# way outside and inside the chroot:
#
#   bash dibkit-run-parts PHASE_DIR STATUS_FILE N_ENV [ENV_FILE...] [HOOK...]
#
# dibkit decides what runs: it lists the hooks tree when the phase starts with the plan's own
# rules (executable files named by RUN_PARTS_REGEX, `LANG=C sort -n` order; environment.d
# files in byte order) and passes the first N_ENV names as environment.d files to source and
# the rest as the hooks to run, in that order. This script selects and sorts nothing. It
# sources each ../environment.d file (under set -eu -o pipefail, with xtrace while sourcing),
# runs each hook and stops at the first failure. For each hook it appends `start NAME EPOCH`
# and `end NAME STATUS SECONDS` lines to STATUS_FILE, which dibkit reads for its progress,
# timing table and manifest.
set -ue
set -o pipefail

dir=$1
status=$2
n_env=$3
shift 3
env_files=("${@:1:$n_env}")
shift "$n_env"

for env_file in ${env_files[@]+"${env_files[@]}"}; do
    xtrace=$(set +o | grep xtrace)
    set -o xtrace
    # shellcheck disable=SC1090
    source "$dir/../environment.d/$env_file"
    $xtrace
done

for target in "$@"; do
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
