#!/usr/bin/env bash
# SIGTERM unmounts at once but lets the transaction in progress finish
# before the daemon exits:
#   1. a background push held mid-stream commits (the sandbox gets every
#      file, nothing is pending after a remount), exit 0;
#   2. a flush in flight completes: the client gets 0, the sandbox's own
#      change is pulled into the host tree;
#   3. past shutdown-grace the push is cancelled and rolled back (nothing
#      committed, the next mount sends it);
#   4. a second SIGTERM stops at once; the next mount's rescan and push
#      still deliver everything;
#   5. `hermes-fsctl umount` returns only once the daemon is gone (the
#      held push finished, the state lock released);
#   6. a second daemon on the same state directory is refused;
#   7. a command run by exec is interrupted (130, told why, its process
#      group killed) rather than holding the shutdown hostage;
#   8. SIGTERM delivered to one of the daemon's own threads (not the main
#      one, not a FUSE reader) still unmounts.
# The push is held by the HERMES_PAUSE_AT=push-sending test hook (it waits
# while the pause file exists) so SIGTERM lands inside the stream.
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"

H=$T/home S=$T/sb ST=$T/state P=$T/pause LOG=$T/daemon.log
mkdir -p "$H" "$S"
export XDG_CONFIG_HOME=$T/config HOME=$T/userhome
mkdir -p "$HOME" "$XDG_CONFIG_HOME/hermesfs"
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'rm -f "$P"; mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }

# start [hermesfs options...]: mount with the push hook armed.
start() {
    : >"$LOG"
    HERMES_PAUSE_AT=${PAUSE_AT-push-sending} HERMES_PAUSE_FILE=$P \
        "$HERMESFS" -f --state "$ST" --sandbox s="local:$S" "$@" "$H" 2>>"$LOG" &
    DPID=$!
    wait_for mounted || { cat "$LOG"; fail "mount did not appear"; }
}
# pending: journal entries not yet on sandbox s (from a fresh mount that
# does not push by itself).
pending() {
    "$HERMESFS" -f --state "$ST" -o auto-push=no "$H" 2>>"$T/check.log" &
    local pid=$!
    wait_for mounted || fail "check mount did not appear"
    ctl status --json | python3 -c 'import json,sys
print(json.load(sys.stdin)["sandboxes"][0]["pending"])'
    kill -TERM $pid; wait $pid
}
# held: SIGTERM the daemon while the push waits on the hook; the mount must
# go away while the daemon keeps running.
sigterm_while_held() {
    WAIT_S=30 wait_for test -e "$P" || { cat "$LOG"; fail "$1: push did not reach the hook"; }
    kill -TERM "$DPID"
    wait_for eval '! mounted' || fail "$1: still mounted after SIGTERM"
    kill -0 "$DPID" 2>/dev/null || fail "$1: daemon exited without finishing the push"
}
# write_files PREFIX: three files, written while unmounted so that the
# next mount's rescan journals all three before the background push plans
# (written through the mount, the push could start after the first one).
write_files() {
    mounted && fail "write_files: still mounted"
    for i in 1 2 3; do
        head -c $((100000 * i)) /dev/urandom >"$H/$1$i" || fail "write $1$i"
    done
}

# assert_sent PREFIX WHEN: the three files are on the sandbox, byte for byte.
assert_sent() {
    local i
    for i in 1 2 3; do
        cmp -s "$H/$1$i" "$S/$1$i" || fail "$1$i not on the sandbox $2"
    done
}

# A first mount leaves the snapshot that later rescans compare against.
PAUSE_AT= start
echo seed >"$H/seed"
ctl sync s >/dev/null || fail "first sync"
ctl umount >/dev/null || fail "first umount"
wait "$DPID"

note "1. background push in flight at SIGTERM: finished and committed"
write_files a
start
sigterm_while_held "bg"
WAIT_S=20 wait_for grep -q "finishing the push in progress" "$LOG" ||
    { cat "$LOG"; fail "no log line about the push being finished"; }
rm -f "$P"
wait "$DPID"; rc=$?
assert_eq "$rc" 0 "daemon exit status after SIGTERM"
assert_sent a "after SIGTERM"
assert_eq "$(pending)" 0 "entries pending after the push finished at SIGTERM"

note "2. flush in flight at SIGTERM: it completes, the client gets 0"
write_files b
start -o auto-push=no
echo "made in the sandbox" >"$S/remote.txt"
ctl flush s >"$T/flush.out" 2>&1 &
FPID=$!
sigterm_while_held "flush"
rm -f "$P"
wait "$FPID"; rc=$?
assert_eq "$rc" 0 "flush exit status across SIGTERM ($(cat "$T/flush.out"))"
wait "$DPID"; rc=$?
assert_eq "$rc" 0 "daemon exit status after the flush"
cmp -s "$H/b3" "$S/b3" || fail "b3 not on the sandbox after the flush"
assert_eq "$(cat "$H/remote.txt" 2>&1)" "made in the sandbox" "pulled file"
assert_eq "$(pending)" 0 "entries pending after the flush"

note "3. past shutdown-grace: cancelled, rolled back, sent by the next mount"
echo "shutdown-grace = 0" >"$XDG_CONFIG_HOME/hermesfs/config"
write_files c
start
sigterm_while_held "grace"
WAIT_S=20 wait_for grep -q "longer than 0 s (shutdown-grace): cancelled" "$LOG" ||
    { cat "$LOG"; fail "no log line about the cancelled push"; }
rm -f "$P"
wait "$DPID"; rc=$?
assert_eq "$rc" 0 "daemon exit status after a cancelled push"
[ -e "$S/c3" ] && fail "c3 reached the sandbox although the push was cancelled"
n=$(pending)
[ "$n" -ge 3 ] || fail "only $n entries pending after a cancelled push (want >= 3)"
rm -f "$XDG_CONFIG_HOME/hermesfs/config"
PAUSE_AT= start
ctl sync s || fail "sync after the cancelled push"
assert_sent c "after the next mount"
kill -TERM "$DPID"; wait "$DPID"

note "4. a second SIGTERM stops at once; nothing is lost"
write_files d
start
sigterm_while_held "twice"
WAIT_S=20 wait_for grep -q "finishing the push in progress" "$LOG" || fail "no finishing line"
kill -TERM "$DPID"
wait "$DPID"; rc=$?
assert_eq "$rc" 143 "exit status after the second SIGTERM"
rm -f "$P"
PAUSE_AT= start
grep -q "did not unmount cleanly" "$LOG" || fail "the hard stop was not noticed"
ctl sync s || fail "sync after the hard stop"
assert_sent d "after the hard stop"
kill -TERM "$DPID"; wait "$DPID"

note "5. umount waits for the push in progress and the daemon's exit"
write_files e
start
WAIT_S=30 wait_for test -e "$P" || fail "umount: push did not reach the hook"
ctl umount >"$T/umount.out" 2>&1 &
UPID=$!
wait_for eval '! mounted' || fail "umount: still mounted"
sleep 1.5	# give a wrong client time to return early
kill -0 "$UPID" 2>/dev/null || fail "umount returned while the push was still running"
rm -f "$P"
wait "$UPID"; rc=$?
assert_eq "$rc" 0 "umount exit status ($(cat "$T/umount.out"))"
flock -n "$ST/lock" true || fail "umount returned before the daemon released the state"
grep -q "waiting for the daemon to finish" "$T/umount.out" ||
    fail "umount did not say what it waits for: $(cat "$T/umount.out")"
wait "$DPID"; rc=$?
assert_eq "$rc" 0 "daemon exit status after umount"
assert_sent e "after umount"

note "6. a second daemon on the same state directory is refused"
PAUSE_AT= start
mkdir -p "$T/other"
"$HERMESFS" -f --state "$ST" "$T/other" >"$T/second.out" 2>&1; rc=$?
assert_eq "$rc" 1 "second daemon exit status"
grep -q "in use by another hermesfs (pid $DPID)" "$T/second.out" ||
    fail "second daemon message: $(cat "$T/second.out")"
grep -q " $T/other fuse" /proc/self/mounts && fail "the second daemon mounted"

note "7. exec in flight at SIGTERM: interrupted with 130, group killed"
rm -f "$H/started"
SL=3019.$$	# unique: other checkouts may run this test at the same time
ctl exec -s - -- "echo \$\$ >started; sleep $SL; echo never" >"$T/x.out" 2>"$T/x.err" &
EPID=$!
WAIT_S=20 wait_for test -s "$H/started" || { cat "$T/x.err"; fail "exec did not start"; }
cpid=$(cat "$H/started")
kill -TERM "$DPID"
wait "$EPID"; rc=$?
assert_eq "$rc" 130 "exec status when the daemon shuts down"
grep -q "daemon is shutting down" "$T/x.err" || fail "exec not told why: $(cat "$T/x.err")"
grep -q never "$T/x.out" && fail "the command went on"
WAIT_S=10 wait_for eval "! kill -0 $cpid 2>/dev/null" || fail "exec shell $cpid still alive"
WAIT_S=10 wait_for eval "! pgrep -fx 'sleep $SL' >/dev/null" || fail "sleep still running"
wait "$DPID"; rc=$?
assert_eq "$rc" 0 "daemon exit status with an exec in flight"

note "8. SIGTERM landing on a non-FUSE thread still unmounts"
PAUSE_AT= start
tid=
for t in /proc/$DPID/task/*; do
    id=${t##*/}
    [ "$id" = "$DPID" ] && continue
    case "$(cat "$t/wchan" 2>/dev/null)" in *fuse*) continue ;; esac
    tid=$id; break
done
[ -n "$tid" ] || fail "no non-FUSE thread found in $(ls /proc/$DPID/task)"
# kill(2) on a thread id is process-directed but goes to that thread first.
kill -TERM "$tid"
WAIT_S=10 wait_for eval '! mounted' || fail "SIGTERM to thread $tid did not unmount"
wait "$DPID"; rc=$?
assert_eq "$rc" 0 "daemon exit status (signal on thread $tid)"
exit 0
