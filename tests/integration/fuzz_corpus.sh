#!/usr/bin/env bash
# Fuzz regression replay (part of `make check`; a second or two): every
# harness of tests/fuzz/ runs once on each seed of tests/fuzz/corpus/<h>/ and
# each fixed crasher of tests/fuzz/regress/<h>/. The binaries are
# $HERMES_BUILD/fuzz-replay/fuzz_* (the harness with replay_main.c instead of
# libFuzzer, built by `make` with the project's flags), so no clang is needed
# and `make SAN=1 check` replays under ASan+UBSan. Fails on a sanitizer
# report, a broken harness invariant, or a harness that did not run all of
# its inputs. Fuzzing itself (clang, 60 s a harness) is fuzz.long.sh.
. "$(dirname "$0")/lib.sh"
cd "$HERMES_SRC"
n=0
for src in tests/fuzz/fuzz_*.c; do
    h=${src#tests/fuzz/fuzz_}; h=${h%.c}
    bin=$HERMES_BUILD/fuzz-replay/fuzz_$h
    [ -x "$bin" ] || fail "$bin not built"
    dirs=("tests/fuzz/corpus/$h")
    [ -d "tests/fuzz/regress/$h" ] && dirs+=("tests/fuzz/regress/$h")
    inputs=$(find "${dirs[@]}" -type f | wc -l)
    [ "$inputs" -gt 0 ] || fail "$h has no seed corpus"
    timeout 60 "$bin" "${dirs[@]}" >"$T/$h.out" 2>"$T/$h.err" ||
        { tail -30 "$T/$h.err"; fail "$h: an input crashed the harness"; }
    assert_eq "$(cat "$T/$h.out")" "replayed $inputs inputs" "$h"
    echo "ok $h: $inputs inputs"
    n=$((n + 1))
done
[ "$n" -ge 7 ] || fail "only $n harnesses"
