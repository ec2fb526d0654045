#!/usr/bin/env bash
# Every hermes-fsctl command against a real hermesfs mount and real local
# sandboxes: output, exit codes, errors, persistence across remounts,
# concurrency (status during a flush), and the socket refusing another uid.
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -x "$HERMESFS" ] || fail "hermesfs not built"

H=$T/home S1=$T/sb1 S2=$T/sb2 ST=$T/state
MANIFEST_EXCLUDE="^\.hermesfs-"   # per-sandbox marker and staging
mkdir -p "$H" "$S1" "$S2" "$T/config/hermesfs"
# Sandbox a is pushed only on request, so the conflict case below is not
# raced by the background pusher; b is pushed in the background.
export XDG_CONFIG_HOME=$T/config
printf '[defaults]\nignore = *.sock\n[sandbox a]\nauto-push = no\n' > "$T/config/hermesfs/config"
mounted() { grep -q " $H fuse" /proc/self/mounts; }
start() {
    "$HERMESFS" -f --state "$ST" "$@" "$H" 2>>"$T/daemon.log" &
    DPID=$!
    wait_for mounted || { cat "$T/daemon.log"; fail "mount did not appear"; }
}
at_exit 'mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }
expect_rc() { local want=$1; shift; "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ "$rc" = "$want" ] || { cat "$T/out" "$T/err"; fail "'$*': exit $rc, wanted $want"; }; }

note "help and usage"
expect_rc 0 "$HERMESFS" --help; grep -q "BACKING" "$T/out" || fail "hermesfs --help"
expect_rc 0 "$FSCTL" --help; grep -q "flush" "$T/out" || fail "fsctl --help"
expect_rc 2 "$FSCTL" frobnicate
expect_rc 2 "$FSCTL" sync a b
expect_rc 3 "$FSCTL" -m "$T" status
grep -q "not inside a hermesfs mount" "$T/err" || fail "no-mount message"
expect_rc 2 "$HERMESFS" --sandbox 'x=bogus:' "$H"
expect_rc 2 "$HERMESFS" -o no-such-setting=1 "$H"
grep -q "unknown setting" "$T/err" || fail "-o message: $(cat "$T/err")"

note "mount with a sandbox given on the command line"
# "hold" never accepts a push, so the journal is not pruned under the log.
start --sandbox a="local:$S1" --sandbox hold=cmd:false
printf 'one\n' > "$H/f1"; mkdir "$H/d"; printf 'two\n' > "$H/d/f2"; chmod 600 "$H/d/f2"
expect_rc 0 ctl sandbox list
grep -q "^a	local:$S1" "$T/out" || fail "sandbox list: $(cat "$T/out")"
grep -q "^hold	cmd:false" "$T/out" || fail "sandbox list: $(cat "$T/out")"
expect_rc 0 ctl sandbox list --json
python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); assert l[0]["name"]=="a", l' "$T/out" || fail "list json"

note "log shows the journal (entries stay until every sandbox has them)"
expect_rc 0 ctl log
grep -q "create.*d/f2" "$T/out" || fail "log lacks d/f2: $(cat "$T/out")"
expect_rc 0 ctl log --json --since 0
python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); assert any(e["path"]=="f1" for e in l)' "$T/out" || fail "log json"
last=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[-1]["seq"])' "$T/out")
expect_rc 0 ctl log --since "$last"; [ ! -s "$T/out" ] || fail "log --since last not empty"
expect_rc 0 ctl sandbox rm hold

note "sync pushes content and modes"
expect_rc 0 ctl sync a
assert_eq "$(cat "$S1/d/f2")" "two" "pushed content"
assert_eq "$(stat -c %a "$S1/d/f2")" "600" "pushed mode"

note "sandbox add validates and connects; bad names and URLs refused"
expect_rc 2 ctl sandbox add b 'ftp://x'
grep -q "bad URL" "$T/err" || fail "bad URL message: $(cat "$T/err")"
expect_rc 1 ctl sandbox add b "ssh://nobody@127.0.0.1:$(free_port)/x"
[ "$(wc -l < "$T/err")" = 1 ] || fail "connect failure is not one line: $(cat "$T/err")"
expect_rc 1 ctl sandbox add a "local:$S2"
expect_rc 0 ctl sandbox add b "local:$S2"
expect_rc 0 ctl sync
assert_trees_equal "$S1" "$S2"

note "background push to b; ignore patterns from the config"
printf 'auto\n' > "$H/auto"; printf 'x' > "$H/agent.sock"
WAIT_S=20 wait_for test -e "$S2/auto" || fail "no background push to b"
[ -e "$S1/auto" ] && fail "auto-push = no was not honoured for a"
expect_rc 0 ctl sync b
assert_absent "$S2/agent.sock"

note "unknown sandbox names"
expect_rc 4 ctl sync nosuch
expect_rc 4 ctl pull nosuch
expect_rc 4 ctl flush nosuch
expect_rc 4 ctl sandbox rm nosuch
expect_rc 4 ctl exec -s nosuch -- true

note "pull and flush bring sandbox changes back"
expect_rc 0 ctl sync a
printf 'remote\n' > "$S1/f1"; touch -d '+3 seconds' "$S1/f1"
expect_rc 0 ctl pull a
assert_eq "$(cat "$H/f1")" "remote" "pulled"
# What a's own pull journaled is never pushed back to a: not pending.
expect_rc 0 ctl status --json
python3 -c 'import json,sys
b = {b["name"]: b for b in json.load(open(sys.argv[1]))["sandboxes"]}
assert b["a"]["pending"] == 0, b["a"]' "$T/out" || fail "a's own pull counted as pending"
printf 'new\n' > "$S2/fromb"
expect_rc 0 ctl flush b
assert_eq "$(cat "$H/fromb")" "new" "flushed"
expect_rc 0 ctl sync a
assert_eq "$(cat "$S1/fromb")" "new" "fan-out of a pulled file"

note "conflicts: both sides changed -> exit 5, copy kept, shown in status"
printf 'host side\n' > "$H/f1"
printf 'sandbox side\n' > "$S1/f1"; touch -d '+6 seconds' "$S1/f1"
expect_rc 5 ctl pull a
assert_eq "$(cat "$H/f1")" "sandbox side" "remote applied at the path"
copy=$(ls "$H" | grep '^f1\.conflict-a-') || fail "no conflict copy"
assert_eq "$(cat "$H/$copy")" "host side" "host version kept"
expect_rc 0 ctl status
grep -q "conflict" "$T/out" || fail "status hides the conflict: $(cat "$T/out")"

note "status (text and json)"
expect_rc 0 ctl status --json
python3 - "$T/out" <<'PY' || fail "status json"
import json, sys
s = json.load(open(sys.argv[1]))
names = {b["name"]: b for b in s["sandboxes"]}
assert set(names) == {"a", "b"}, names
for b in names.values():
    for k in ("url", "state", "pending", "last_push", "last_pull", "conflicts"):
        assert k in b, (k, b)
assert names["a"]["conflicts"] >= 1
PY

note "exec: status, cwd, -C, timeout"
expect_rc 3 ctl exec -s a -- 'exit 3'
expect_rc 0 ctl exec -s a -- 'cd d && pwd'
expect_rc 0 ctl exec -- 'pwd'
assert_eq "$(cat "$T/out")" "$S1/d" "cwd persists (no -s: the first sandbox)"
expect_rc 0 ctl exec -s a -C . -- 'cat f1'
assert_eq "$(cat "$T/out")" "sandbox side" "-C . is the tree root"
expect_rc 124 ctl exec -s a -t 1 -- 'echo partial; sleep 30'
grep -q partial "$T/out" || fail "timeout lost partial output"
printf 'seen\n' > "$H/justnow"
expect_rc 0 ctl exec -s a -- 'cat ../justnow'
assert_eq "$(cat "$T/out")" "seen" "host write visible to the next command"
expect_rc 0 ctl exec -s - -- 'echo local > made-locally'
assert_eq "$(cat "$H/made-locally")" "local" "local exec runs in the mount"
ctl log | grep -q "made-locally" || fail "local exec write not journaled"

note "flush while the mount is busy; status answers during it"
( for i in $(seq 200); do printf '%s\n' "$i" > "$H/busy.$((i % 20))"; done ) &
W=$!
ctl flush a >"$T/flush.out" 2>&1 & F=$!
expect_rc 0 ctl status
wait $W
wait $F; rc=$?
[ "$rc" = 0 ] || [ "$rc" = 5 ] || { cat "$T/flush.out"; fail "busy flush exit $rc"; }
expect_rc 0 ctl sync a
for i in $(seq 0 19); do cmp -s "$H/busy.$i" "$S1/busy.$i" || fail "busy.$i differs"; done

note "another user is refused by the socket"
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
    chmod 755 "$T"
    setpriv --reuid nobody --regid nogroup --clear-groups "$FSCTL" -m "$H" status >"$T/out" 2>"$T/err"; rc=$?
    assert_eq "$rc" 6 "nobody's exit status ($(cat "$T/err"))"
    grep -q "permission denied" "$T/err" || fail "denial message: $(cat "$T/err")"
    chmod 700 "$T"
else
    fail "needs the nobody user and setpriv"
fi

note "umount; sandboxes persist across a remount; store was left clean"
expect_rc 0 ctl sandbox rm b
expect_rc 0 ctl umount
wait_for eval '! mounted' || fail "umount did not unmount"
wait $DPID; assert_eq "$?" 0 "daemon exit status"
grep -qi "unclean" "$T/daemon.log" && fail "first mount reported an unclean store"
start
expect_rc 0 ctl sandbox list
grep -q "^a	" "$T/out" || fail "sandbox a lost across remount"
grep -q "^b	" "$T/out" && fail "removed sandbox b came back"
grep -qi "unclean" "$T/daemon.log" && fail "clean umount not recorded"
note "SIGTERM unmounts cleanly"
kill -TERM "$DPID"
wait_for eval '! mounted' || fail "SIGTERM did not unmount"
wait $DPID; assert_eq "$?" 0 "daemon exit after SIGTERM"
start -o auto-push=no
grep -qi "unclean" "$T/daemon.log" && fail "SIGTERM left the store unclean"
fusermount3 -u "$H"
wait_for eval '! mounted' || fail "fusermount3 -u"
wait $DPID; assert_eq "$?" 0 "daemon exit after fusermount3 -u"

note "status shows when a failing sandbox is retried"
start --sandbox broken=cmd:false -o retry=30
WAIT_S=20 wait_for eval 'ctl status | grep -q "next retry: in [0-9]* s"' ||
    fail "no next retry in status: $(ctl status)"
expect_rc 0 ctl status --json
python3 -c 'import json,sys
b = {b["name"]: b for b in json.load(open(sys.argv[1]))["sandboxes"]}
assert b["broken"]["state"] == "error" and b["broken"]["next_retry"] != "-", b["broken"]
assert b["a"]["next_retry"] == "-", b["a"]' "$T/out" || fail "status json next_retry"
expect_rc 0 ctl sandbox rm broken
expect_rc 0 ctl umount
wait $DPID; assert_eq "$?" 0 "daemon exit"
echo ok
