#!/usr/bin/env bash
# Crash consistency: kill -9 the daemon, remount, flush, and check that
# nothing was lost. CRASH_ITERS iterations (5 here; check-long runs 50),
# each with a crash mode taken in rotation:
#   push-applied  HERMES_CRASH_AT=push-applied (sync/fault_int.h): a push
#                 carrying a rename, a delete and a new file dies after the
#                 sandbox applied it, before ledger and cursor commit.
#   pull-apply    HERMES_CRASH_AT=pull-apply:N: a pull of 6 sandbox changes
#                 (a new file, a conflict, 4 edits) dies after the Nth
#                 (2..5) was applied on the host, before the ledger commit.
#   timer         a plain kill -9 at a random moment 0.1-0.9 s in, during
#                 writes, background pushes and a pull.
# Two writers rewrite files through the mount in every mode. Asserted:
# the daemon died at the named point (exit 137 and the hook's line); every
# write completed before the crash is on the host, whole and not older than
# the last completed one, and stays so after flush; no file is half-written;
# the remount reports the unclean shutdown; after `flush` host and sandbox
# trees are equal, with no temp file left on either side (only the
# sandbox's marker and its staging dir are allowed, the latter empty);
# sandbox changes are on the host (pull-apply: every edit applied, and the
# conflict's host version kept as exactly one conflict copy).
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
ITERS=${CRASH_ITERS:-5}
H=$T/home S=$T/sandbox ST=$T/state MODEL=$T/model
TOOL=$HERMES_BUILD/itests/tool_push
mkdir -p "$H" "$S" "$MODEL"
MANIFEST_EXCLUDE='^\.hermesfs-(sandbox|tmp)(/|$)'
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
at_exit '[ -n "${DPID:-}" ] && kill -9 "$DPID"'
W1= W2=
at_exit 'kill $W1 $W2'
# start [CRASH_AT [hermesfs options...]]
start() {
    local at=${1:-}
    shift 2>/dev/null
    HERMES_CRASH_AT=$at "$HERMESFS" -f --state "$ST" "$@" --sandbox s="local:$S" "$H" \
        2>>"$T/daemon.log" &
    DPID=$!
    wait_for mounted || { tail "$T/daemon.log"; fail "mount did not appear"; }
    # The rescan runs once mounted, the control socket opens after it.
    WAIT_S=30 wait_for eval '"$FSCTL" -m "$H" status >/dev/null 2>&1' ||
        { tail "$T/daemon.log"; fail "control socket did not answer"; }
}
gone() { [ ! -d "/proc/$DPID" ] || grep -q '^State:.*Z' "/proc/$DPID/status" 2>/dev/null; }
unmount_dead() {
    fusermount3 -uz "$H" 2>/dev/null
    wait_for eval '! mounted' || fail "stale mount after kill"
}
crash() {
    kill -9 "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null
    DPID=; unmount_dead
}
# died_at POINT:N: the daemon killed itself there (the hook's line, and
# the exit status of SIGKILL).
died_at() {
    local rc
    WAIT_S=30 wait_for gone || fail "iteration $it: daemon never reached crash point $1"
    wait "$DPID"; rc=$?; DPID=
    [ "$rc" = 137 ] || fail "iteration $it: daemon exit $rc, not killed at $1"
    grep -q "^hermesfs: HERMES_CRASH_AT=$1: killed at ${1%%:*}\$" "$T/daemon.log" ||
        fail "iteration $it: no crash line for $1"
    unmount_dead
}
# writer N: rewrites files through the mount, each content "N I LEN:" and
# LEN x's (self-checking); after each complete write the model records I
# (so the model lags the mount, never leads). I grows across iterations.
writer() {
    local i=$((it * 100000)) f n c
    while :; do
        i=$((i + 1)); f=w$1.$((i % 7)); n=$((RANDOM % 3000))
        c="$1 $i $n:$(head -c $n /dev/zero | tr '\0' x)"
        [ $((i % 5)) = 0 ] && { { mkdir -p "$H/dir$1" && printf '%s' "$c" > "$H/dir$1/f"; } 2>/dev/null ||
            return 0; }
        { printf '%s' "$c" > "$H/$f"; } 2>/dev/null || return 0
        printf '%s' "$i" > "$MODEL/$f"
    done
}
# check_writes WHEN: every file a writer finished is on the host with a
# whole write of that writer, not older than the last one completed (empty
# only if the writer died between O_TRUNC and write).
check_writes() {
    local m f c id i
    for m in "$MODEL"/w*; do
        [ -e "$m" ] || continue
        f=${m#$MODEL/}; id=${f:1:1}
        [ -f "$H/$f" ] || fail "iteration $it ($1): $f lost"
        c=$(cat "$H/$f"); CHECKED=$((CHECKED + 1))
        [ -z "$c" ] && continue
        [[ $c =~ ^([12])\ ([0-9]+)\ ([0-9]+):(x*)$ ]] ||
            fail "iteration $it ($1): $f holds foreign data"
        [ "${BASH_REMATCH[1]}" = "$id" ] || fail "iteration $it ($1): $f written by writer ${BASH_REMATCH[1]}"
        [ "${#BASH_REMATCH[4]}" = "${BASH_REMATCH[3]}" ] || fail "iteration $it ($1): $f half-written"
        i=$(cat "$m")
        [ "${BASH_REMATCH[2]}" -ge "${i:-0}" ] ||
            fail "iteration $it ($1): $f holds write ${BASH_REMATCH[2]}, write $i completed"
    done
}
# Writers' files and directories (everything they own).
writer_manifest() { MANIFEST_EXCLUDE='^(pa|pr|pnew|from-sandbox)' tree_manifest "$H"; }
# No temp or staging leftovers: on the host no .hermesfs-* name at all, on
# the sandbox only the marker and an empty staging dir.
check_clean() {
    local left
    left=$(cd "$H" && find . -name '.hermesfs-*')
    [ -z "$left" ] || fail "iteration $it: temp files left on host: $left"
    left=$(cd "$S" && find . -name '.hermesfs-*' ! -path ./.hermesfs-sandbox ! -path ./.hermesfs-tmp)
    [ -z "$left" ] || fail "iteration $it: temp files left on sandbox: $left"
    [ ! -d "$S/.hermesfs-tmp" ] || [ -z "$(ls -A "$S/.hermesfs-tmp")" ] ||
        fail "iteration $it: staging left on sandbox: $(ls -A "$S/.hermesfs-tmp")"
}
in_ledger() { "$TOOL" ledger "$ST/store.db" s | grep -q " $1\$"; }
sha() { sha256sum < "$1" | cut -c1-16; }

# Setup: files the pull-apply and push-applied modes change, pushed once.
start
mkdir -p "$H/pa" "$H/pr"
for k in c0 f1 f2 f3 f4; do printf 'init %s\n' "$k" > "$H/pa/$k"; done
printf 'moved around\n' > "$H/pr/n.0"
"$FSCTL" -m "$H" flush s >/dev/null || fail "setup flush"
"$FSCTL" -m "$H" umount >/dev/null || fail "setup umount"
wait "$DPID"; DPID=
> "$T/daemon.log"

MODES=(push-applied pull-apply timer)
declare -A RUNS=() LANDED=()
declare -a before=()
CHECKED=0 ENTRIES=0 SBFILES=0 COPIES=0 T0=$SECONDS
for it in $(seq "$ITERS"); do
    mode=${MODES[(it - 1) % 3]} pt=
    RUNS[$mode]=$((${RUNS[$mode]:-0} + 1))
    # A sandbox-side new file in every mode: it must reach the host.
    printf 'sandbox %s\n' "$it" > "$S/from-sandbox.$it"
    case $mode in
    push-applied)
        start push-applied:1 -o auto-push=no
        old=$(cd "$H/pr" && ls)
        mv "$H/pr/$old" "$H/pr/n.$it" && rm -f "$H"/pnew.* && printf 'new %s\n' "$it" > "$H/pnew.$it" ||
            fail "iteration $it: host ops"
        writer 1 & W1=$!
        writer 2 & W2=$!
        sleep "0.$((RANDOM % 4 + 1))"
        "$FSCTL" -m "$H" sync s >/dev/null 2>&1 && fail "iteration $it: sync survived its crash point"
        died_at push-applied:1; pt=push-applied:1
        # The sandbox holds the push, the ledger does not.
        [ -f "$S/pnew.$it" ] && [ -f "$S/pr/n.$it" ] && [ ! -e "$S/pr/$old" ] ||
            fail "iteration $it: push not applied on the sandbox before the crash"
        ! in_ledger "pnew.$it" && in_ledger "pr/$old" ||
            fail "iteration $it: ledger committed before the crash point"
        LANDED[$mode]=$((${LANDED[$mode]:-0} + 1))
        ;;
    pull-apply)
        n=$((RANDOM % 4 + 2))
        start "pull-apply:$n" -o auto-push=no
        writer 1 & W1=$!
        writer 2 & W2=$!
        printf 'host %s\n' "$it" > "$H/pa/c0" || fail "iteration $it: host edit"
        for k in c0 f1 f2 f3 f4; do
            printf 'sandbox %s %s\n' "$it" "$k" > "$S/pa/$k"
            touch -d "@$((1600000000 + it * 10 + ${k:1}))" "$S/pa/$k"
            before[${k:1}]=$(sha "$H/pa/$k")
        done
        sleep "0.$((RANDOM % 4 + 1))"
        "$FSCTL" -m "$H" pull s >/dev/null 2>&1 && fail "iteration $it: pull survived its crash point"
        died_at "pull-apply:$n"; pt=pull-apply:$n
        # Items in path order: from-sandbox.$it, pa/c0 (conflict), pa/f1..f4:
        # exactly the first n are on the host.
        assert_eq "$(cat "$H/from-sandbox.$it")" "sandbox $it" "iteration $it: first item"
        assert_eq "$(cat "$H/pa/c0")" "sandbox $it c0" "iteration $it: conflict item"
        for k in 1 2 3 4; do
            if [ "$k" -le $((n - 2)) ]; then
                assert_eq "$(cat "$H/pa/f$k")" "sandbox $it f$k" "iteration $it: applied item f$k"
            else
                assert_eq "$(sha "$H/pa/f$k")" "${before[$k]}" "iteration $it: item f$k past the crash"
            fi
        done
        LANDED[$mode]=$((${LANDED[$mode]:-0} + 1))
        ;;
    timer)
        start
        writer 1 & W1=$!
        writer 2 & W2=$!
        "$FSCTL" -m "$H" pull s >/dev/null 2>&1 &
        sleep "0.$((RANDOM % 9 + 1))"
        crash
        ;;
    esac
    # The writers go on into the bare backing dir (it is the mountpoint)
    # until they notice: offline edits that the rescan must catch.
    sleep 0.1; kill $W1 $W2 2>/dev/null; wait $W1 $W2 2>/dev/null
    check_writes "after the crash"
    writer_manifest > "$T/writers.before"
    start
    grep -q "did not unmount cleanly" "$T/daemon.log" || fail "iteration $it: unclean shutdown not detected"
    "$FSCTL" -m "$H" flush s >"$T/flush.out" 2>&1; rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 5 ] || { cat "$T/flush.out"; fail "iteration $it: flush exit $rc"; }
    assert_trees_equal "$H" "$S"
    ENTRIES=$((ENTRIES + $(wc -l < "$T/.m1")))
    check_clean
    check_writes "after flush"
    writer_manifest | diff -u "$T/writers.before" - >&2 || fail "iteration $it: flush changed host writes"
    assert_eq "$(cat "$H/from-sandbox.$it")" "sandbox $it" "iteration $it: sandbox file not pulled"
    SBFILES=$((SBFILES + 1))
    case $mode in
    push-applied)
        assert_eq "$(cd "$H" && echo pnew.* pr/*)" "pnew.$it pr/n.$it" "iteration $it: pushed ops"
        assert_eq "$(cat "$S/pnew.$it")" "new $it" "iteration $it: new file"
        in_ledger "pnew.$it" || fail "iteration $it: ledger not committed by the flush"
        ;;
    pull-apply)
        COPIES=$((COPIES + 1))
        for k in c0 f1 f2 f3 f4; do
            assert_eq "$(cat "$H/pa/$k")" "sandbox $it $k" "iteration $it: sandbox edit of pa/$k"
        done
        SBFILES=$((SBFILES + 5))
        copies=$(grep -lx "host $it" "$H"/pa/c0.conflict-s-* 2>/dev/null | wc -l)
        assert_eq "$copies" 1 "iteration $it: conflict copies holding the host version"
        ;;
    esac
    assert_eq "$(ls "$H"/pa/ | grep -c conflict)" "$COPIES" "iteration $it: conflict copies in all"
    note "iteration $it/$ITERS $mode${pt:+ (killed at $pt)}: nothing lost; $CHECKED writer files," \
        "$SBFILES sandbox changes, $ENTRIES tree entries checked so far; $((SECONDS - T0)) s"
    "$FSCTL" -m "$H" umount >/dev/null || fail "umount"
    wait "$DPID"; DPID=
    > "$T/daemon.log"
done
echo "crash iterations: $ITERS (timer ${RUNS[timer]:-0}," \
    "push-applied ${RUNS[push-applied]:-0} with ${LANDED[push-applied]:-0} killed at the point," \
    "pull-apply ${RUNS[pull-apply]:-0} with ${LANDED[pull-apply]:-0} killed at the point);" \
    "writer files checked: $CHECKED, sandbox changes checked: $SBFILES, conflict copies: $COPIES," \
    "tree entries compared: $ENTRIES; changes lost: 0; $((SECONDS - T0)) s"
