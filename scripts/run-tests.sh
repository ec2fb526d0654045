#!/usr/bin/env bash
# Runs every unit test binary and integration test, then prints the closing
# line "N passed, N failed, N skipped". cmocka binaries count per test case;
# integration tests count one each (exit 77 = skipped).
# Tests get /dev/null as stdin so nothing waits on an inherited pipe.
# Env: BUILD (build dir), LONG=1 (include *.long.sh), ONLY=pattern.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export HERMES_BUILD=$PWD/$BUILD HERMES_SRC=$PWD
export LONG=${LONG:-0}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0 fail=0 skip=0 failed=()
logdir=$BUILD/test-logs
mkdir -p "$logdir"
TIMEOUT=${TEST_TIMEOUT:-600}
# Long tests run for minutes by design (a 10-minute soak, 50 crash runs).
LONG_TIMEOUT=${TEST_TIMEOUT_LONG:-5400}

run_unit() {
    local bin=$1 name log rc p f s
    name=$(basename "$bin")
    [ -n "${ONLY:-}" ] && [[ $name != *$ONLY* ]] && return
    log=$logdir/$name.log
    timeout "$TIMEOUT" "$bin" </dev/null >"$log" 2>&1; rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=${p:-0} f=${f:-0} s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
    if [ "$f" -ne 0 ]; then
        failed+=("$name"); echo "FAIL unit $name ($p passed, $f failed)"; tail -30 "$log" | sed 's/^/    /'
    else
        echo "ok   unit $name ($p tests)"
    fi
}

run_integration() {
    local t=$1 name log rc start
    name=$(basename "$t")
    [ -n "${ONLY:-}" ] && [[ $name != *$ONLY* ]] && return
    [[ $name == *.long.* ]] && [ "$LONG" != 1 ] && return
    log=$logdir/$name.log
    start=$(date +%s)
    local limit=$TIMEOUT
    [[ $name == *.long.* ]] && limit=$LONG_TIMEOUT
    if [[ $t == *.sh ]]; then timeout "$limit" bash "$t" </dev/null >"$log" 2>&1; rc=$?
    else timeout "$limit" "$t" </dev/null >"$log" 2>&1; rc=$?; fi
    case $rc in
    0)  pass=$((pass + 1)); echo "ok   $name ($(( $(date +%s) - start ))s)" ;;
    77) skip=$((skip + 1)); echo "skip $name: $(tail -1 "$log")" ;;
    *)  fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (exit $rc)"; tail -40 "$log" | sed 's/^/    /' ;;
    esac
}

for b in "$BUILD"/tests/test_*; do [ -x "$b" ] && run_unit "$b"; done
for t in tests/integration/*.sh "$BUILD"/itests/*; do
    case $(basename "$t") in lib*.sh|tool_*) continue ;; esac
    [ -f "$t" ] && run_integration "$t"
done

[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]} (logs in $logdir)"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
