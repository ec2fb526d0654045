#!/usr/bin/env bash
# Fuzz regression replay (fast, part of `make check`): builds the libFuzzer
# harnesses (clang, installed when missing) and runs every seed in
# tests/fuzz/corpus/<h>/ and every past crasher in tests/fuzz/regress/<h>/
# once, without fuzzing. Fails on any sanitizer report or broken invariant,
# and if a harness did not run all of its inputs. The 60 s-per-harness
# fuzzing itself is fuzz.long.sh (make check-long).
. "$(dirname "$0")/lib.sh"
cd "$HERMES_SRC"
tests/fuzz/run.sh --replay >"$T/out" 2>&1 || { cat "$T/out"; fail "fuzz replay: a harness crashed"; }
cat "$T/out"
n=0
while read -r h execs _secs _corpus crashes; do
    [[ $h == \#* ]] && continue
    n=$((n + 1))
    inputs=$(find "tests/fuzz/corpus/$h" "tests/fuzz/regress/$h" -type f 2>/dev/null | wc -l)
    assert_eq "$crashes" 0 "$h crashes"
    [ "$inputs" -gt 0 ] || fail "$h has no seed corpus"
    [ "$execs" -ge "$inputs" ] || fail "$h ran $execs of its $inputs inputs"
done <build-fuzz/summary.txt
[ "$n" -eq "$(ls tests/fuzz/fuzz_*.c | wc -l)" ] || fail "summary lists $n harnesses"
note "replayed $n harnesses"
