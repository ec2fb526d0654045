#!/usr/bin/env bash
# CLI contract details: `COMMAND --help` for every command (exec included),
# the man pages render, `--sandbox NAME=URL` validation and its refusal of
# an existing name with another URL, and `hermesfs -o KEY=VALUE` beating a
# [sandbox NAME] section of the config file.
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -x "$HERMESFS" ] || fail "hermesfs not built"

H=$T/home S1=$T/sb1 S2=$T/sb2 ST=$T/state
mkdir -p "$H" "$S1" "$S2" "$T/config/hermesfs"
export XDG_CONFIG_HOME=$T/config
mounted() { grep -q " $H fuse" /proc/self/mounts; }
start() {
    "$HERMESFS" -f --state "$ST" "$@" "$H" 2>>"$T/daemon.log" &
    DPID=$!
    wait_for mounted || { cat "$T/daemon.log"; fail "mount did not appear"; }
}
stop() {
    "$FSCTL" -m "$H" umount >/dev/null || fail "umount"
    wait_for eval '! mounted' || fail "did not unmount"
    wait "$DPID"
}
at_exit 'mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }
expect_rc() { local want=$1; shift; "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ "$rc" = "$want" ] || { cat "$T/out" "$T/err"; fail "'$*': exit $rc, wanted $want"; }; }

note "every command has --help (exit 0, its own usage on stdout)"
for c in status sandbox sync pull flush log exec umount; do
    expect_rc 0 "$FSCTL" "$c" --help
    head -1 "$T/out" | grep -q "^usage: hermes-fsctl .*$c" || fail "$c --help: $(cat "$T/out")"
    [ ! -s "$T/err" ] || fail "$c --help wrote to stderr: $(cat "$T/err")"
done
expect_rc 0 "$FSCTL" exec -h
grep -q -- "-t SECONDS" "$T/out" || fail "exec -h: $(cat "$T/out")"
expect_rc 0 "$FSCTL" exec -s a -t 5 --help
expect_rc 0 "$FSCTL" sandbox add --help
expect_rc 2 "$FSCTL" exec --frob -- true
grep -q "unknown exec option" "$T/err" || fail "exec bad option: $(cat "$T/err")"

note "man pages render"
for m in "$HERMES_SRC"/man/*.1; do
    MANPAGER=cat MANWIDTH=80 man -l "$m" >"$T/out" 2>"$T/err" || fail "man -l $m: $(cat "$T/err")"
    grep -q "^NAME" "$T/out" || fail "man $m has no NAME section"
    [ ! -s "$T/err" ] || fail "man $m warns: $(cat "$T/err")"
done

note "--sandbox: bad names refused before mounting"
expect_rc 2 "$HERMESFS" -f --state "$ST" --sandbox 'a/b=local:/tmp' "$H"
grep -q "bad sandbox name" "$T/err" || fail "bad name message: $(cat "$T/err")"
expect_rc 2 "$HERMESFS" -f --state "$ST" --sandbox '-x=local:/tmp' "$H"
mounted && fail "mounted despite a bad sandbox name"

note "-o KEY=VALUE beats a [sandbox NAME] section"
printf '[defaults]\nauto-push = yes\n[sandbox a]\nauto-push = no\n' > "$T/config/hermesfs/config"
start --sandbox a="local:$S1" -o auto-push=yes
printf 'x\n' > "$H/f1"
WAIT_S=20 wait_for test -e "$S1/f1" || fail "-o auto-push=yes did not beat [sandbox a] auto-push = no"
stop
note "without -o the section applies (so the check above can fail)"
start
printf 'y\n' > "$H/f2"
ctl exec -s - -- true >/dev/null || fail "local exec"
sleep 1
assert_absent "$S1/f2"
expect_rc 0 ctl sync a
assert_eq "$(cat "$S1/f2")" "y" "explicit sync"
stop

note "--sandbox with the same NAME=URL again is fine; another URL is refused"
start --sandbox a="local:$S1"
expect_rc 0 ctl sandbox list
grep -q "^a	local:$S1" "$T/out" || fail "list: $(cat "$T/out")"
stop
expect_rc 2 "$HERMESFS" -f --state "$ST" --sandbox a="local:$S2" "$H"
mounted && fail "mounted despite a conflicting --sandbox"
[ "$(wc -l < "$T/err")" = 1 ] || fail "not one line: $(cat "$T/err")"
grep -q "sandbox 'a' already exists with URL local:$S1, not local:$S2" "$T/err" ||
    fail "message: $(cat "$T/err")"
grep -q "sandbox rm a" "$T/err" || fail "no hint: $(cat "$T/err")"
note "same refusal (exit 2) when daemonized"
expect_rc 2 "$HERMESFS" --state "$ST" --sandbox a="local:$S2" "$H"
grep -q "already exists" "$T/err" || fail "daemonized message: $(cat "$T/err")"
mounted && fail "mounted despite a conflicting --sandbox (daemonized)"
note "after sandbox rm, the new URL is accepted"
start
expect_rc 0 ctl sandbox rm a
stop
start --sandbox a="local:$S2"
expect_rc 0 ctl sync a
assert_eq "$(cat "$S2/f1")" "x" "full push to the new sandbox"
stop

note "bad config values: one-line error naming file, line and what is expected"
printf '[defaults]\nretry = 2,4,8\n[sandbox a]\nparallel = lots\n' >"$T/config/hermesfs/config"
expect_rc 2 "$HERMESFS" -f --state "$ST" "$H"
mounted && fail "mounted despite a bad config value"
[ "$(wc -l < "$T/err")" = 1 ] || fail "not one line: $(cat "$T/err")"
grep -q "config:4: parallel = 'lots': expected a number from 1 to 64" "$T/err" ||
    fail "bad value message: $(cat "$T/err")"
for kv in "retry=soon:a list of delays" "conflict=mine:conflict-copy, host-wins or remote-wins" \
          "auto-push=maybe:yes or no" "max-file-size=1Q:a number with" \
          "shutdown-grace=-1:seconds"; do
    k=${kv%%=*} v=${kv#*=}; want=${v#*:} v=${v%%:*}
    printf '[sandbox a]\n%s = %s\n' "$k" "$v" >"$T/config/hermesfs/config"
    expect_rc 2 "$HERMESFS" -f --state "$ST" "$H"
    grep -q "expected $want" "$T/err" || fail "$k = $v: $(cat "$T/err")"
    rm -f "$T/config/hermesfs/config"
    expect_rc 2 "$HERMESFS" -f --state "$ST" -o "$k=$v" "$H"
    grep -q "^hermesfs: -o $k=$v: expected $want" "$T/err" || fail "-o $k=$v: $(cat "$T/err")"
done
mounted && fail "mounted despite bad values"
echo ok
