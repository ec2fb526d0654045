#!/usr/bin/env bash
# Transport faults through the real daemon and CLI (issue 8.2). Each fault
# must fail the push cleanly (non-zero exit, one-line error), leave the
# ledger, the cursor and the pending count untouched, leave no torn file on
# the sandbox (staged data only under .hermesfs-tmp), and converge once the
# fault clears:
#   a) the SSH connection is cut mid-push by a loopback TCP proxy that
#      closes both sides after N bytes from the client;
#   b) `tar` fails on a cmd: sandbox (a wrapper puts a fake tar first in PATH);
#   c) the sandbox's disk is full (a 2 MiB tmpfs as a local: sandbox root).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sshd.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
command -v sqlite3 >/dev/null || fail "needs the sqlite3 CLI"
MANIFEST_EXCLUDE="^\.hermesfs-"
export XDG_CONFIG_HOME=$T/config
mkdir -p "$T/config/hermesfs"
# Pushes only on request; one quick retry so a failure returns fast.
printf '[defaults]\nauto-push = no\nretry = 0.1\n' > "$T/config/hermesfs/config"

H= DPID=
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit '[ -n "$H" ] && mounted && fusermount3 -uz "$H"'
start() { # NAME: a fresh host tree and store, then the given sandbox args
    H=$T/$1/home ST=$T/$1/state; shift
    mkdir -p "$H"
    "$HERMESFS" -f --state "$ST" "$@" "$H" 2>>"$T/daemon.log" &
    DPID=$!
    wait_for mounted || { cat "$T/daemon.log"; fail "mount did not appear"; }
}
stop() {
    "$FSCTL" -m "$H" umount >/dev/null || fail "umount"
    wait "$DPID" || fail "daemon exit status $?"
}
ctl() { "$FSCTL" -m "$H" "$@"; }
# What the store says about sandbox $1: cursor, ledger rows, pending count.
store_state() {
    sqlite3 -readonly "$ST/store.db" \
        "select cursor from sandboxes where name='$1';
         select l.path, hex(l.sha256), l.size, l.mode, l.mtime_ns from ledger l
           join sandboxes s on s.id = l.sandbox where s.name='$1' order by l.path;" ||
        fail "sqlite3"
    ctl status --json | python3 -c 'import json,sys
for b in json.load(sys.stdin)["sandboxes"]:
    if b["name"] == sys.argv[1]: print("pending", b["pending"])' "$1"
}
# expect_push_fail VERB NAME: the command fails with a one-line error and the
# store is as before.
expect_push_fail() {
    local before after rc
    before=$(store_state "$2")
    ctl "$1" "$2" >"$T/out" 2>"$T/err"; rc=$?
    [ "$rc" != 0 ] || { cat "$T/out" "$T/err"; fail "$1 $2 succeeded despite the fault"; }
    note "$1 $2: exit $rc: $(cat "$T/err")"
    # progress lines (plain "push NAME: ..." lines when a push takes over a
    # second, as under load) are not errors
    assert_eq "$(grep -v -E '^(push|pull) [^ ]+: ' "$T/err" | grep -c .)" 1 "error lines"
    grep -q "^hermes-fsctl: push to $2 failed" "$T/err" || fail "unclear error: $(cat "$T/err")"
    after=$(store_state "$2")
    [ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); fail "store changed by a failed push"; }
    grep -q "^pending [1-9]" <<< "$after" || fail "nothing pending after the failure: $after"
}
# assert_no_torn SANDBOX SNAPSHOT: outside the staging dir the sandbox holds
# exactly what it held before the failed push (the SNAPSHOT manifest).
assert_no_torn() {
    tree_manifest "$1" | diff -u "$2" - >&2 || fail "sandbox changed outside .hermesfs-tmp"
}
mkfiles() { # DIR COUNT KIB
    local i
    mkdir -p "$1"
    for ((i = 0; i < $2; i++)); do head -c $(($3 * 1024)) /dev/urandom > "$1/f$i"; done
}

note "a) SSH connection cut mid-push by a proxy"
start_sshd
cat > "$T/proxy.py" <<'PY'
# TCP proxy: forwards to 127.0.0.1:TARGET; when the file LIMIT holds N > 0,
# a connection is closed (both sides) once it forwarded more than N bytes
# from the client since the limit was last changed. Logs cuts to LOG.
import os, socket, sys, threading
target, limit_file, port_file, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cache = [None, 0]
def limit():
    try:
        gen = os.stat(limit_file).st_mtime_ns
        if gen != cache[0]:
            cache[:] = [gen, int(open(limit_file).read().strip() or 0)]
        return cache[0], cache[1]
    except (OSError, ValueError):
        return 0, 0
def pipe(src, dst, up, state):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if up:
                gen, n = limit()
                if gen != state["gen"]:
                    state["gen"], state["count"] = gen, 0
                state["count"] += len(b)
                if n > 0 and state["count"] > n:
                    with open(log, "a") as f:
                        f.write("cut after %d bytes\n" % state["count"])
                    break
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    u = socket.create_connection(("127.0.0.1", target))
    state = {"gen": limit()[0], "count": 0}
    threading.Thread(target=pipe, args=(c, u, True, state), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c, False, state), daemon=True).start()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    c, _ = ls.accept()
    try:
        serve(c)
    except OSError:
        c.close()
PY
echo 0 > "$T/proxy.limit"
python3 "$T/proxy.py" "$SSHD_PORT" "$T/proxy.limit" "$T/proxy.port" "$T/proxy.log" 2>>"$T/proxy.err" &
PROXY_PID=$!
at_exit "kill $PROXY_PID"
wait_for test -s "$T/proxy.port" || fail "proxy did not start"
PP=$(cat "$T/proxy.port")
echo "[127.0.0.1]:$PP $(cut -d' ' -f1,2 "$T/sshd/host_ed25519.pub")" >> "$SSH_KNOWN_HOSTS"
R=$T/a/remote
start a --sandbox r="ssh://$SSH_USER@127.0.0.1:$PP$R"
echo seed > "$H/seed"
ctl sync r >/dev/null || fail "first push through the proxy"
tree_manifest "$R" > "$T/a.before"
mkfiles "$H/big" 8 256           # 2 MiB of incompressible data
echo 200000 > "$T/proxy.limit"   # cut after ~200 KB
expect_push_fail sync r
grep -q "^cut after" "$T/proxy.log" || fail "the proxy never cut a connection"
note "proxy cuts: $(grep -c . "$T/proxy.log")"
assert_no_torn "$R" "$T/a.before"
echo 0 > "$T/proxy.limit"        # fault cleared
ctl sync r >/dev/null || fail "sync after the cut was cleared"
assert_trees_equal "$H" "$R"
assert_eq "$(store_state r | tail -1)" "pending 0" "pending after convergence"
stop

note "b) remote tar fails on a cmd: sandbox"
mkdir -p "$T/fakebin" "$T/b/remote"
printf '#!/bin/sh\ncat >/dev/null\necho "tar: simulated failure" >&2\nexit 2\n' > "$T/fakebin/tar"
chmod +x "$T/fakebin/tar"
wrapper() { # good|bad
    { echo '#!/bin/sh'
      [ "$1" = bad ] && echo "PATH=$T/fakebin:\$PATH; export PATH"
      echo 'exec "$@"'; } > "$T/wrap.new"
    chmod +x "$T/wrap.new"; mv -f "$T/wrap.new" "$T/wrap.sh"
}
wrapper good
R=$T/b/remote
start b --sandbox c="cmd:$T/wrap.sh#$R"
echo seed > "$H/seed"
ctl flush c >/dev/null || fail "first flush"
tree_manifest "$R" > "$T/b.before"
wrapper bad
mkfiles "$H/d" 8 64
echo changed > "$H/seed"
expect_push_fail flush c
assert_no_torn "$R" "$T/b.before"
wrapper good
ctl flush c >/dev/null || fail "flush after the wrapper was fixed"
assert_trees_equal "$H" "$R"
assert_eq "$(store_state c | tail -1)" "pending 0" "pending after convergence"
stop

note "c) full remote disk (2 MiB tmpfs)"
R=$T/c/remote
mkdir -p "$R"
mount -t tmpfs -o size=2m hermes-rel "$R" || fail "mount tmpfs"
at_exit "umount -l '$R'"
start c --sandbox t="local:$R"
echo seed > "$H/seed"
ctl sync t >/dev/null || fail "first push to the tmpfs"
tree_manifest "$R" > "$T/c.before"
mkfiles "$H/big" 12 256          # 3 MiB: does not fit
expect_push_fail sync t
assert_no_torn "$R" "$T/c.before"
rm -f "$H"/big/f{2..11}          # 512 KiB left: fits
ctl sync t >/dev/null || { cat "$T/daemon.log" | tail; fail "sync after space was freed"; }
assert_trees_equal "$H" "$R"
assert_eq "$(store_state t | tail -1)" "pending 0" "pending after convergence"
stop
echo ok
