#!/usr/bin/env bash
# The CLI edges not covered by cli_commands.sh: SIGINT to `hermes-fsctl
# exec` gives 130 and kills the command's process group (local and on a
# local: sandbox); a state directory inside the mounted tree is refused;
# without -f the daemon detaches once mounted and ends at umount.
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"

H=$T/home S=$T/sb ST=$T/state
mkdir -p "$H" "$S"
# A clean HOME: the machine's ~/.bashrc (pyenv) must not slow the login
# shell behind every exec session.
export XDG_CONFIG_HOME=$T/config HOME=$T/userhome
mkdir -p "$HOME"
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }

note "state directory inside the tree: refused before mounting"
"$HERMESFS" -f --state "$H/.state" "$H" >"$T/out" 2>&1; rc=$?
[ "$rc" != 0 ] || fail "state dir inside the tree accepted"
mounted && fail "mounted anyway"
[ -e "$H/.state" ] && fail "the refused state directory was created in the tree"
grep -qi "outside" "$T/out" || fail "unclear error: $(cat "$T/out")"
[ "$(grep -c . "$T/out")" = 1 ] || fail "error is not one line: $(cat "$T/out")"

"$HERMESFS" -f --state "$ST" --sandbox s="local:$S" "$H" 2>>"$T/daemon.log" &
DPID=$!
wait_for mounted || { cat "$T/daemon.log"; fail "mount did not appear"; }

# interrupt TARGET: start a long exec, SIGINT the client once the command
# runs, expect 130 and the command's group gone.
interrupt() {
    local tag=$1 secs=$2; shift 2
    rm -f "$H/started.$tag" "$S/started.$tag"
    "$FSCTL" -m "$H" exec "$@" -- "echo \$\$ > started.$tag; sleep $secs; echo never" \
        >"$T/out.$tag" 2>"$T/err.$tag" &
    local pid=$! rc f=$H/started.$tag
    [ "$tag" = remote ] && f=$S/started.$tag
    WAIT_S=20 wait_for test -s "$f" || { cat "$T/err.$tag" "$T/out.$tag"; ls -la "$H" "$S"; fail "$tag: command did not start"; }
    kill -INT "$pid"
    wait "$pid"; rc=$?
    assert_eq "$rc" 130 "$tag: exit status after SIGINT"
    grep -q never "$T/out.$tag" && fail "$tag: command went on"
    local cpid; cpid=$(cat "$f")
    WAIT_S=10 wait_for eval "! kill -0 $cpid 2>/dev/null" || fail "$tag: shell $cpid still alive"
    WAIT_S=10 wait_for eval "! pgrep -fx 'sleep $secs' >/dev/null" || fail "$tag: sleep still running"
}
note "SIGINT to exec in the mount (-s -)"
# Unique durations: other checkouts may run this test at the same time.
interrupt local 3017.$$ -s -
note "SIGINT to exec on a local: sandbox"
ctl sync s || fail "sync"
interrupt remote 3018.$$ -s s

kill -TERM "$DPID"; wait "$DPID"
wait_for eval '! mounted' || fail "still mounted after SIGTERM"

note "daemonized (no -f): returns once mounted, umount ends the daemon"
"$HERMESFS" --state "$ST" "$H" || fail "daemonized mount"
mounted || fail "hermesfs returned before the mount was there"
pid=$(pgrep -f "hermesfs --state $ST") || fail "no daemon process"
ctl umount || fail "umount"
wait_for eval '! mounted' || fail "still mounted"
WAIT_S=10 wait_for eval "! kill -0 $pid 2>/dev/null" || fail "daemon still running after umount"
