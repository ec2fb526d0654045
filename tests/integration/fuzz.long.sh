#!/usr/bin/env bash
# libFuzzer run of every harness in tests/fuzz/ for FUZZ_SECONDS each
# (default 60; two at a time), `make check-long` only. Fails on any crash,
# sanitizer report or broken invariant; the figures are in
# build-fuzz/summary.txt and the crashing inputs in build-fuzz/artifacts/.
. "$(dirname "$0")/lib.sh"
cd "$HERMES_SRC"
FUZZ_SECONDS=${FUZZ_SECONDS:-60} tests/fuzz/run.sh || fail "fuzzing found a crash (build-fuzz/summary.txt)"
while read -r h execs secs _corpus _crashes; do
    [[ $h == \#* ]] && continue
    [ "$execs" -gt 0 ] || fail "$h ran no input in ${secs}s"
done <build-fuzz/summary.txt
