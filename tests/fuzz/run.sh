#!/usr/bin/env bash
# Builds the libFuzzer harnesses (make fuzz-build -> build-fuzz/) and runs them.
#
#   tests/fuzz/run.sh [HARNESS...]           fuzz each for FUZZ_SECONDS (default 60)
#   tests/fuzz/run.sh --replay [HARNESS...]  run every seed and regression input once
#   tests/fuzz/run.sh --deps                 only install what building needs
#
# HARNESS is a name like pull_tar (tests/fuzz/fuzz_pull_tar.c). Seeds are read
# from tests/fuzz/corpus/<h>/, regress/<h>/ (crashers whose fix landed) and
# open/<h>/ (crashers reported but not fixed yet: they pass here only through
# ubsan.supp or a cap in the harness) and never written;
# inputs the fuzzer finds go to build-fuzz/corpus/<h>/, crashes to
# build-fuzz/artifacts/<h>/. Env: FUZZ_SECONDS, FUZZ_JOBS (harnesses run at
# once, default 2), FUZZ_TIMEOUT (seconds one input may take, default 10).
# Prints one line per harness and writes build-fuzz/summary.txt; exits 1 if
# any harness crashed or failed. clang and its fuzzer runtime are installed
# from Debian (apt-get) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build-fuzz
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
TIMEOUT=${FUZZ_TIMEOUT:-10}
mode=fuzz
# halt_on_error: every UBSan report is a crash, but for the known ones listed
# (with the owner told) in ubsan.supp.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/fuzz/ubsan.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"

# clang's libFuzzer and sanitizer runtimes (Debian: libclang-rt-N-dev).
fuzzer_works() {
    local d
    command -v clang >/dev/null || return 1
    d=$(clang --print-runtime-dir 2>/dev/null) || return 1
    [ -f "$d/libclang_rt.fuzzer-$(uname -m).a" ] && [ -f "$d/libclang_rt.asan-$(uname -m).a" ]
}

install_deps() {
    scripts/install-deps.sh
    fuzzer_works && return 0
    local sudo= v
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    echo "fuzz: installing clang and its fuzzer runtime" >&2
    $sudo apt-get update -qq
    command -v clang >/dev/null || $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null
    v=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
    $sudo apt-get install -y -qq --no-install-recommends "libclang-rt-$v-dev" >/dev/null
    fuzzer_works || { echo "fuzz: clang -fsanitize=fuzzer still does not link" >&2; return 1; }
}

harnesses=()
for a in "$@"; do
    case $a in
    --replay) mode=replay ;;
    --deps) install_deps; exit ;;
    -*) echo "usage: $0 [--replay|--deps] [HARNESS...]" >&2; exit 2 ;;
    *) harnesses+=("$a") ;;
    esac
done
if [ ${#harnesses[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do h=${f#tests/fuzz/fuzz_}; harnesses+=("${h%.c}"); done
fi

install_deps
mkdir -p "$OUT/logs"
echo '*' >"$OUT/.gitignore"	# build output, never committed
make --no-print-directory -s -j"$JOBS" fuzz-build >"$OUT/logs/build.log" 2>&1 || {
    cat "$OUT/logs/build.log" >&2; echo "fuzz: build failed" >&2; exit 1; }

# One harness; its figures go to $OUT/logs/<h>.result:
#   <h> <executions> <seconds> <corpus units> <crashes>
run_one() {
    local h=$1 bin=$OUT/fuzz_$1 log=$OUT/logs/$1.log seeds dirs=() rc start execs corp crashes
    seeds=tests/fuzz/corpus/$h
    [ -d "$seeds" ] && dirs+=("$seeds")
    [ -d "tests/fuzz/regress/$h" ] && dirs+=("tests/fuzz/regress/$h")
    [ -d "tests/fuzz/open/$h" ] && dirs+=("tests/fuzz/open/$h")
    mkdir -p "$OUT/artifacts/$h" "$OUT/corpus/$h"
    start=$(date +%s)
    set +e
    if [ "$mode" = replay ]; then
        "$bin" -runs=0 -timeout="$TIMEOUT" -print_final_stats=1 \
            -artifact_prefix="$OUT/artifacts/$h/" "${dirs[@]}" >"$log" 2>&1
    else
        "$bin" -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$h/" \
            "$OUT/corpus/$h" "${dirs[@]}" >"$log" 2>&1
    fi
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    crashes=$(find "$OUT/artifacts/$h" -type f | wc -l)
    [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
    echo "$h ${execs:-0} $(( $(date +%s) - start )) ${corp:-0} $crashes" >"$OUT/logs/$h.result"
    return "$rc"
}

for h in "${harnesses[@]}"; do
    [ -x "$OUT/fuzz_$h" ] || { echo "fuzz: no harness $h" >&2; exit 2; }
    rm -rf "$OUT/artifacts/$h" "$OUT/logs/$h.result"
done
running=0
for h in "${harnesses[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
    run_one "$h" &
    running=$((running + 1))
done
wait || true

fail=0
{
    echo "# harness executions seconds corpus crashes ($mode)"
    for h in "${harnesses[@]}"; do
        r=$(cat "$OUT/logs/$h.result" 2>/dev/null || echo "$h 0 0 0 1")
        echo "$r"
        set -- $r
        if [ "$5" -ne 0 ]; then
            fail=1
            echo "  CRASH in $h: see $OUT/logs/$h.log; inputs:" $(find "$OUT/artifacts/$h" -type f)
            grep -m3 -E 'ERROR: |runtime error|invariant broken' "$OUT/logs/$h.log" | sed 's/^/    /'
        fi
    done
} | tee "$OUT/summary.txt"
grep -q CRASH "$OUT/summary.txt" && fail=1
exit $fail
