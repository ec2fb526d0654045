#!/usr/bin/env bash
# Robustness of a pull: SIGTERM while applying (finishes cleanly), SIGTERM
# while fetching (nothing applied), kill -9 while applying (every file old
# or new, the next pull completes and sweeps stale temps), files the sandbox
# is still writing (tar "file changed as we read it": retried, then skipped,
# never fatal), a transport that fails (retried with backoff).
source "$(dirname "$0")/lib.sh"
TOOL=$HERMES_BUILD/itests/tool_pull
[ -x "$TOOL" ] || fail "missing $TOOL"
NFILES=40

# setup NAME: $NFILES files of 32 KiB pushed to a local sandbox, then all
# changed there. $C/old and $C/new hold the sha256 of both versions.
setup() {
    C=$T/$1 H=$T/$1/host R=$T/$1/remote DB=$T/$1/state.db
    mkdir -p "$H" "$R"
    for d in 0 1 2 3; do
        mkdir -p "$H/d$d" "$R/d$d"
        head -c $((NFILES / 4 * 32768)) /dev/urandom | (cd "$H/d$d" && split -b 32768 -a 3 - f)
        head -c $((NFILES / 4 * 32768)) /dev/urandom | (cd "$R/d$d" && split -b 32768 -a 3 - f)
    done
    find "$H" "$R" -exec touch -h -d @1600000000 {} +
    # the ledger as if the host tree had been pushed, then the sandbox
    # changed every file (later mtime)
    mkdir "$C/pushed"; cp -a "$H/." "$C/pushed/"
    "$TOOL" seed "$DB" sbx "local:$R" "$C/pushed" || fail "seed"
    mv "$C/pushed/.hermesfs-sandbox" "$R/"
    find "$R" -type f -exec touch -d @1600000100 {} +
    (cd "$H" && find . -type f | sort | xargs sha256sum) > "$C/old"
    (cd "$R" && find . -type f ! -name '.hermesfs-*' | sort | xargs sha256sum) > "$C/new"
    URL=local:$R
}
pull() { "$TOOL" pull "$DB" sbx "$URL" "$H" "$@" > "$C/out" 2>&1; local rc=$?; cat "$C/out"; return $rc; }
stat_of() { grep -o "$1=[0-9]*" "$C/out" | head -1 | cut -d= -f2; }
host_sums() { (cd "$H" && find . -type f ! -name '.hermesfs-*' | sort | xargs sha256sum); }
no_temps() { ! find "$H" -name '.hermesfs-*' | grep -q . || fail "temp files left: $(find "$H" -name '.hermesfs-*')"; }
# every host file is exactly its old or its new version (never torn)
old_or_new() {
    assert_eq "$(host_sums | wc -l)" "$NFILES" "host file count"
    host_sums | grep -vxF -f "$C/old" -f "$C/new" && fail "a file is neither old nor new"
    return 0
}
bg_pull() {
    "$TOOL" pull "$DB" sbx "$URL" "$H" "$@" > "$C/out" 2>&1 &
    PID=$!
    at_exit "kill -9 $PID"
}

note "SIGTERM while applying: the pull finishes, nothing torn, no temp files"
setup term-apply
bg_pull --slow-apply 30 --ready-file "$C/ready"
WAIT_S=20 wait_for test -e "$C/ready" || fail "apply never started"
kill -TERM "$PID"; wait "$PID"; rc=$?
cat "$C/out"
assert_eq "$rc" 0 "exit status after SIGTERM mid-apply"
old_or_new; no_temps
host_sums | diff - "$C/new" >/dev/null || fail "apply did not finish"
pull || fail "pull after"
assert_eq "$(stat_of fetched)" 0 "ledger committed"

note "SIGTERM while fetching: cancelled, nothing applied"
setup term-fetch
cat > "$C/slow.sh" <<'EOF'
#!/bin/sh
d=$1; shift
case $3 in *"-cf -"*) touch "$d/fetching"; sleep 5 ;; esac
exec "$@"
EOF
chmod +x "$C/slow.sh"
URL="cmd:$C/slow.sh $C#$R"
bg_pull
WAIT_S=20 wait_for test -e "$C/fetching" || fail "fetch never started"
kill -TERM "$PID"; wait "$PID"; rc=$?
cat "$C/out"
[ "$rc" -ne 0 ] || fail "cancelled pull reported success"
grep -q 'rc=-4 ' "$C/out" || fail "not -EINTR"
grep -q 'cancelled' "$C/out" || fail "cancel not reported"
host_sums | diff - "$C/old" >/dev/null || fail "host changed by a cancelled pull"
no_temps
URL=local:$R
pull || fail "pull after cancel"
assert_eq "$(stat_of applied)" "$NFILES" "pull after cancel applies all"

note "kill -9 while applying: old or new, then the next pull completes and sweeps"
setup kill9
true & dead=$!; wait $dead
printf 'stale\n' > "$H/d1/.hermesfs-pull-$dead-7"   # left by a killed pull
bg_pull --slow-apply 30 --ready-file "$C/ready"
WAIT_S=20 wait_for test -e "$C/ready" || fail "apply never started"
sleep 0.2
kill -9 "$PID"; wait "$PID" 2>/dev/null
old_or_new
pull || fail "pull after kill -9"
grep -q "removed a stale temp file .hermesfs-pull-$dead-7" "$C/out" || fail "stale temp not reported"
no_temps
host_sums | diff - "$C/new" >/dev/null || fail "pull after kill -9 did not converge"

note "file changed while tar read it: retried, then skipped (not fatal)"
setup changed
# The sandbox shell runs the real tar, then claims d0/faab changed under it
# while $C/left > 0 (what GNU tar prints, with its exit status 1).
cat > "$T/chg.sh" <<'EOF'
#!/bin/sh
d=$1; shift
case $3 in *"-cf -"*)
    "$@"; n=$(cat "$d/left")
    if [ "$n" -gt 0 ]; then
        echo $((n - 1)) > "$d/left"
        echo "tar: ./d0/faab: file changed as we read it" >&2; exit 1
    fi; exit 0 ;;
esac
exec "$@"
EOF
chmod +x "$T/chg.sh"
URL="cmd:$T/chg.sh $T#$R"
echo 1 > "$T/left"
pull --retries 2 --backoff 50 || fail "pull with one changed-while-read"
assert_eq "$(stat_of attempts)" 2 "retried once"
assert_eq "$(stat_of applied)" "$NFILES" "all applied after the retry"
setup changed2
URL="cmd:$T/chg.sh $T#$R"
echo 100 > "$T/left"
pull --retries 1 --backoff 50 || fail "a file still being written is fatal"
assert_eq "$(stat_of attempts)" 2 "retried"
grep -q 'skipped d0/faab: still being written on the sandbox' "$C/out" || fail "not reported"
assert_eq "$(stat_of applied)" "$((NFILES - 1))" "the others applied"
grep -qxF "$(cd "$H" && sha256sum ./d0/faab)" "$C/old" || fail "torn d0/faab applied"
echo 0 > "$T/left"
pull || fail "pull once it settled"
assert_eq "$(stat_of applied)" 1 "d0/faab pulled once stable"
host_sums | diff - "$C/new" >/dev/null || fail "not converged"
no_temps

note "a real file growing during the pull is not fatal"
setup growing
head -c 4000000 /dev/urandom > "$R/grow"
( while :; do echo "line $RANDOM" >> "$R/grow"; done ) &
W=$!; at_exit "kill $W"
pull --retries 1 --backoff 50; rc=$?
kill $W; wait $W 2>/dev/null
assert_eq "$rc" 0 "pull while the sandbox writes"
assert_eq "$(cat "$H/d2/faad" | sha256sum | cut -c1-64)" "$(grep ' ./d2/faad$' "$C/new" | cut -c1-64)" "others applied"
no_temps

note "transport failures are retried with backoff"
setup flaky
URL=local:$R
HERMES_FAULT_TRANSPORT_FAIL_AT=1 pull --retries 2 --backoff 50 || fail "not retried"
assert_eq "$(stat_of attempts)" 2 "attempts after one transport failure"
assert_eq "$(stat_of applied)" "$NFILES" "applied after the retry"
setup flaky2
HERMES_FAULT_TRANSPORT_FAIL_AT=1 pull --retries -1 && fail "no retry configured but succeeded"
host_sums | diff - "$C/old" >/dev/null || fail "failed pull changed the host"
echo ok
