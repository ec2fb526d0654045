#!/usr/bin/env bash
# Logging: a daemonized hermesfs logs to syslog (facility daemon, with the
# level in the priority), or to STATE/daemon.log where there is no syslog
# socket, honours --log-level, and with -f logs to stderr only. The test runs in its own mount namespace with a private /dev whose
# /dev/log is a datagram socket read by this test, so it needs no syslog
# daemon and never touches the machine's /dev.
. "$(dirname "$0")/lib_ns.sh"
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"

# A private /dev: the few nodes the daemon, bash and python need.
mount -t tmpfs -o mode=755 hermes-dev /dev || skip "cannot mount a private /dev"
mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 &&
    mknod -m 666 /dev/urandom c 1 9 && mknod -m 666 /dev/random c 1 8 &&
    mknod -m 666 /dev/fuse c 10 229 || fail "mknod in the private /dev"
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr

H=$T/home S=$T/sb ST=$T/state L=$T/syslog
mkdir -p "$H" "$S"; echo file >"$T/notadir"
export XDG_CONFIG_HOME=$T/config HOME=$T/userhome
mkdir -p "$HOME"
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }

note "no syslog socket: daemonized logs go to STATE/daemon.log"
"$HERMESFS" --state "$ST" "$H" 2>"$T/err" || fail "daemonized mount: $(cat "$T/err")"
ctl umount >/dev/null || fail "umount"
grep -q "^[0-9T:-]*Z hermesfs\[[0-9]*\]: info: no syslog here (/dev/log): logging to $ST/daemon.log" \
    "$ST/daemon.log" || fail "fallback log: $(cat "$ST/daemon.log" 2>&1)"
grep -q "hermesfs\[[0-9]*\]: info: serving $H" "$ST/daemon.log" || fail "no serving line: $(cat "$ST/daemon.log")"
grep -q "hermesfs\[[0-9]*\]: info: unmounted $H" "$ST/daemon.log" || fail "no unmounted line: $(cat "$ST/daemon.log")"
rm "$ST/daemon.log"

# The syslog socket: one line per datagram, as received.
python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
out = open(sys.argv[1], "a", buffering=1)
while True:
    out.write(s.recv(65536).decode(errors="replace").rstrip("\n") + "\n")
' "$L" &
RPID=$!
at_exit "kill $RPID 2>/dev/null"
wait_for test -S /dev/log || fail "syslog socket did not appear"
: >"$L"

# umount_daemon: umount through the CLI and wait until the daemon logged
# its last line.
umount_daemon() {
    ctl umount >/dev/null || fail "umount"
    wait_for eval '! mounted' || fail "still mounted"
    flock "$ST/lock" true || fail "flock"
    WAIT_S=20 wait_for grep -q "hermesfs\[[0-9]*\]: unmounted $H" "$L" ||
        { cat "$L"; fail "no 'unmounted' line in syslog"; }
}

note "daemonized, --log-level debug: info, warning and debug lines in syslog"
"$HERMESFS" --state "$ST" -o retry=0.1 --log-level debug --sandbox s="local:$S" \
    --sandbox gone="local:$T/notadir" "$H" 2>"$T/err" || fail "daemonized mount: $(cat "$T/err")"
[ -s "$T/err" ] && fail "the daemonized mount wrote to stderr: $(cat "$T/err")"
ctl status >/dev/null || fail "status"
echo hello >"$H/f"
ctl sync s || fail "sync s"
ctl sync gone >/dev/null 2>&1 && fail "sync to a regular file succeeded"
umount_daemon
cat "$L" >"$T/run1"
# <30> = daemon.info, <31> = daemon.debug, <28> = daemon.warning
grep -q "^<30>.*hermesfs\[[0-9]*\]: serving $H" "$T/run1" ||
    { cat "$T/run1"; fail "no daemon.info 'serving' line"; }
grep -q "^<31>.*hermesfs\[[0-9]*\]: request 'status' from pid" "$T/run1" ||
    { cat "$T/run1"; fail "no daemon.debug request line"; }
grep -q "^<28>.*hermesfs\[[0-9]*\]: push to gone failed" "$T/run1" ||
    { cat "$T/run1"; fail "no daemon.warning line for the failed push"; }
[ -e "$ST/daemon.log" ] && fail "logged to the fallback file although syslog is there"
assert_eq "$(cat "$S/f")" hello "pushed file"

note "--log-level warning: no info or debug lines"
: >"$L"
"$HERMESFS" --state "$ST" -o retry=0.1 --log-level warning "$H" 2>"$T/err" || fail "mount: $(cat "$T/err")"
ctl status >/dev/null || fail "status"
ctl sync gone >/dev/null 2>&1 && fail "sync to a regular file succeeded"
WAIT_S=20 wait_for grep -q "^<28>.*push to gone failed" "$L" ||
    { cat "$L"; fail "no warning line at --log-level warning"; }
ctl umount >/dev/null || fail "umount"
wait_for eval '! mounted' || fail "still mounted"
# The daemon holds the state lock until it has logged its last line.
flock "$ST/lock" true || fail "flock"
grep -q "^<3[01]>" "$L" && { cat "$L"; fail "info/debug lines at --log-level warning"; }

note "-f: stderr only, nothing to syslog"
: >"$L"
"$HERMESFS" -f --state "$ST" "$H" 2>"$T/fg.err" &
DPID=$!
wait_for mounted || fail "foreground mount"
kill -TERM "$DPID"; wait "$DPID"
grep -q "^hermesfs: info: serving $H" "$T/fg.err" || fail "foreground stderr: $(cat "$T/fg.err")"
grep -q "^hermesfs: info: unmounted $H" "$T/fg.err" || fail "foreground stderr: $(cat "$T/fg.err")"
[ -s "$L" ] && { cat "$L"; fail "the foreground daemon logged to syslog"; }
exit 0
