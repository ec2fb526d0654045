#!/usr/bin/env bash
# Writes that the journal does not show yet when a push starts: the daemon
# never sees passthrough writes, and close(2) does not wait for the
# kernel's RELEASE. A push (hermes-fsctl sync, a remote command's push,
# flush) first journals what open files hold, so it sends the content of
# a file that is still open, and status counts it as pending.
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"

H=$T/home S=$T/sb ST=$T/state
mkdir -p "$H" "$S" "$T/config/hermesfs"
export XDG_CONFIG_HOME=$T/config HOME=$T/userhome
mkdir -p "$HOME"
# Pushed only on request: the background pusher must not do the work.
printf '[sandbox a]\nauto-push = no\n' > "$T/config/hermesfs/config"
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
"$HERMESFS" -f --state "$ST" --sandbox a="local:$S" "$H" 2>>"$T/daemon.log" &
wait_for mounted || { cat "$T/daemon.log"; fail "mount did not appear"; }
ctl() { "$FSCTL" -m "$H" "$@"; }

# A writer that keeps its file open: writes a line per command on stdin.
mkfifo "$T/cmd"
python3 -u - "$H/open.txt" "$T/cmd" "$T/ack" <<'PY' &
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for line in open(sys.argv[2]):
    if line.strip() == "close":
        os.close(fd)
    else:
        os.pwrite(fd, line.encode(), 0)
    with open(sys.argv[3], "a") as a:
        a.write("ok\n")
PY
WPID=$!
exec 9>"$T/cmd"
at_exit "kill $WPID 2>/dev/null"
acks=0
send() { echo "$1" >&9; acks=$((acks + 1)); wait_for eval "[ \$(wc -l < '$T/ack' 2>/dev/null || echo 0) -ge $acks ]" || fail "writer did not ack '$1'"; }

send "version zero"
ctl sync >/dev/null || fail "first sync"
assert_eq "$(cat "$S/open.txt")" "version zero"

note "hermes-fsctl sync sends the content of a file still open"
send "version one"
ctl status > "$T/status" || fail "status"
grep -Eq "pending[^0-9]*[1-9]" "$T/status" || fail "status does not count the open file: $(cat "$T/status")"
ctl sync >/dev/null || fail "sync"
assert_eq "$(cat "$S/open.txt")" "version one"

note "a remote command sees what was written just before it"
send "version two"
out=$(ctl exec -s a -- cat open.txt) || fail "exec: $out"
assert_eq "$out" "version two"

note "after close, flush sends the last write"
send "version three"
send close
ctl flush >/dev/null || fail "flush"
assert_eq "$(cat "$S/open.txt")" "version three"
exec 9>&-
wait $WPID
echo PASS
