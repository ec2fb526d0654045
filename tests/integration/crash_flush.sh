#!/usr/bin/env bash
# Crash consistency: kill -9 the daemon at random moments (during writes
# through the mount, during background pushes, during a pull), remount,
# flush, and check that nothing was lost: every write that completed before
# the crash is on the host, host and sandbox trees are equal, and no file
# is half-written. CRASH_ITERS iterations (5 here; check-long runs 50).
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
ITERS=${CRASH_ITERS:-5}
H=$T/home S=$T/sandbox ST=$T/state MODEL=$T/model
mkdir -p "$H" "$S" "$MODEL"
MANIFEST_EXCLUDE="^\.hermesfs-"
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
start() {
    "$HERMESFS" -f --state "$ST" --sandbox s="local:$S" "$H" 2>>"$T/daemon.log" &
    DPID=$!
    wait_for mounted || { tail "$T/daemon.log"; fail "mount did not appear"; }
}
crash() {
    kill -9 "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null
    fusermount3 -uz "$H" 2>/dev/null
    wait_for eval '! mounted' || fail "stale mount after kill"
}
# writer N: rewrites files through the mount; after each complete write the
# model gets the same content (so the model lags the mount, never leads).
writer() {
    local i=0 f c
    while :; do
        i=$((i + 1)); f=w$1.$((i % 7)); c="$1 $i $(head -c $((RANDOM % 3000)) /dev/zero | tr '\0' x)"
        [ $((i % 5)) = 0 ] && { { mkdir -p "$H/dir$1" && printf '%s' "$c" > "$H/dir$1/f"; } 2>/dev/null ||
            return 0; }
        { printf '%s' "$c" > "$H/$f"; } 2>/dev/null || return 0
        printf '%s' "$c" > "$MODEL/$f"
    done
}
for it in $(seq "$ITERS"); do
    start
    writer 1 & W1=$!
    writer 2 & W2=$!
    # Sandbox-side edits, pulled while we may crash.
    printf 'sandbox %s\n' "$it" > "$S/from-sandbox.$it"
    [ $((it % 2)) = 0 ] && { "$FSCTL" -m "$H" pull s >/dev/null 2>&1 & }
    sleep "0.$((RANDOM % 9 + 1))"
    crash
    # The writers go on into the bare backing dir (it is the mountpoint):
    # offline edits that the rescan at the next mount must catch.
    sleep 0.1; kill $W1 $W2 2>/dev/null; wait $W1 $W2 2>/dev/null
    # Every file the writers finished is still on the host, holding one of
    # their writes (empty only if a writer died between O_TRUNC and write).
    for m in "$MODEL"/w*; do
        [ -e "$m" ] || continue
        f=${m#$MODEL/}
        [ -f "$H/$f" ] || fail "iteration $it: $f lost"
        case $(cat "$H/$f") in ""|"${f:1:1} "*) ;; *) fail "iteration $it: $f holds foreign data";; esac
    done
    start
    grep -q "did not unmount cleanly" "$T/daemon.log" || fail "iteration $it: unclean shutdown not detected"
    "$FSCTL" -m "$H" flush s >"$T/flush.out" 2>&1; rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 5 ] || { cat "$T/flush.out"; fail "iteration $it: flush exit $rc"; }
    assert_trees_equal "$H" "$S"
    [ -f "$H/from-sandbox.$it" ] || fail "iteration $it: sandbox file not pulled"
    "$FSCTL" -m "$H" umount >/dev/null || fail "umount"
    wait "$DPID"
    > "$T/daemon.log"
done
echo "crash iterations: $ITERS, changes lost: 0"
