#!/usr/bin/env bash
# Runs every benchmark: scripts/bench_*.sh and $BUILD/bench/bench_*.
# Each prints its own figures with a baseline measured in the same run.
# BENCH_ONLY=substr runs a subset.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export HERMES_BUILD=$PWD/$BUILD HERMES_SRC=$PWD
rc=0
for b in scripts/bench_*.sh "$BUILD"/bench/bench_*; do
    [ -f "$b" ] || continue
    name=$(basename "$b")
    [ -n "${BENCH_ONLY:-}" ] && [[ $name != *$BENCH_ONLY* ]] && continue
    echo "=== $name"
    if [[ $b == *.sh ]]; then bash "$b" || rc=1; else "$b" || rc=1; fi
    echo
done
exit $rc
