#!/bin/sh
# Wall time of every scenario run two ways with the same seed and options: every role
# in one process (`stormchor run SCENARIO`) and every role a process of its own on
# loopback (`stormchor run SCENARIO --processes`); prints both and their ratio. The two
# runs of a scenario follow each other, so that the ratio is measured under the same
# load of the machine; the absolute times are only meaningful on a quiet one.
#
# Usage: benches/processes.sh [DURATION_S [REPEAT]]   (defaults 2 and 1: load phases of
# 2 s; with REPEAT > 1 each time is the fastest of that many runs)
# STORMCHOR=path/to/stormchor runs that build (default: cargo build --release, then
# target/release/stormchor); SCENARIOS="a b" times only those.
set -eu
duration=${1:-2}
repeat=${2:-1}
seed=7
if [ -z "${STORMCHOR:-}" ]; then
    cargo build --release --quiet --bin stormchor
    STORMCHOR=target/release/stormchor
fi
scenarios=${SCENARIOS:-"backup-restore pitr crash-recovery failover stress-check existing-database isolation"}
log=$(mktemp /tmp/stormchor-bench-processes-XXXXXX.log)
trap 'rm -f "$log"' EXIT

# The options each scenario takes (a flag a scenario does not have is a usage error).
options() {
    case $1 in
    isolation) echo "--seed $seed" ;;
    crash-recovery | pitr) echo "--workers 2 --duration $duration --rounds 2 --seed $seed" ;;
    *) echo "--workers 2 --duration $duration --seed $seed" ;;
    esac
}

now() { date +%s.%N; }

# The fastest of $repeat runs of `stormchor run SCENARIO [--processes]`, in seconds;
# "failed" if one failed (its output is printed to standard error).
fastest() {
    best=""
    i=0
    while [ "$i" -lt "$repeat" ]; do
        start=$(now)
        if ! "$STORMCHOR" run "$@" >"$log" 2>&1; then
            cat "$log" >&2
            echo failed
            return
        fi
        took=$(echo "$start $(now)" | awk '{ printf "%.2f", $2 - $1 }')
        best=$(echo "$best $took" | awk '{ if (NF == 1 || $2 < $1) print $NF; else print $1 }')
        i=$((i + 1))
    done
    echo "$best"
}

status=0
printf '%-18s %12s %14s %7s\n' scenario "in-process s" "--processes s" ratio
for scenario in $scenarios; do
    # shellcheck disable=SC2046
    one=$(fastest "$scenario" $(options "$scenario"))
    # shellcheck disable=SC2046
    many=$(fastest "$scenario" --processes $(options "$scenario"))
    if [ "$one" = failed ] || [ "$many" = failed ]; then
        status=1
        printf '%-18s %12s %14s %7s\n' "$scenario" "$one" "$many" -
        continue
    fi
    ratio=$(echo "$one $many" | awk '{ printf "%.2f", $2 / $1 }')
    printf '%-18s %12s %14s %7s\n' "$scenario" "$one" "$many" "$ratio"
done
echo "(options: $(options backup-restore), rounds 2 where a scenario has rounds; $repeat run(s) each)"
exit "$status"
