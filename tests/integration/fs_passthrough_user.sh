#!/usr/bin/env bash
# A daemon run by an ordinary user may not register backing files
# (CAP_SYS_ADMIN): it does not ask the kernel for passthrough, serves
# everything on the plain READ/WRITE path, and status says so. Runs in its own mount namespace where /dev/fuse is
# a node ordinary users may open (the machine's may be root-only).
. "$(dirname "$0")/lib_ns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
command -v fusermount3 >/dev/null || skip "no fusermount3"

NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
fuse_for_users
B=$T/backing M=$T/mnt ST=$T/state
mkdir -p "$B" "$M" "$ST"
head -c 4M /dev/urandom > "$B/src"
chown -R 65534:65534 "$B" "$M" "$ST"
$NOBODY env HOME="$T" "$HERMESFS" -f --state "$ST" -o debug "$B" "$M" >"$T/log" 2>&1 &
PID=$!
at_exit "kill $PID 2>/dev/null; fusermount3 -u -z '$M' 2>/dev/null"
wait_for is_mounted "$M" || { cat "$T/log" >&2; fail "mount by an ordinary user"; }

$NOBODY sh -c "cmp '$M/src' '$B/src' && echo hi > '$M/new' && cat '$M/new' && cat '$M/src' > /dev/null" \
    > "$T/out" || fail "reads and writes through the mount failed: $(cat "$T/out")"
assert_eq "$(tail -n 1 "$T/out")" "hi"
$NOBODY "$FSCTL" -m "$M" status > "$T/status" 2>&1 || fail "status: $(cat "$T/status")"
grep -q "^file data: through the daemon" "$T/status" || fail "status: $(cat "$T/status")"
assert_eq "$(cat "$B/new")" "hi"
[ "$(grep -c "opcode: READ " "$T/log")" -gt 0 ] || fail "no READ request: passthrough was not turned off"
[ "$(grep -c "opcode: WRITE " "$T/log")" -gt 0 ] || fail "no WRITE request: passthrough was not turned off"
MOUNT_STATE=$ST
wait_for eval 'journal 0 | cut -d" " -f2- | grep -qFx "write new"' || fail "journal lacks: write new"
fusermount3 -u "$M" || fail "unmount"
wait $PID || fail "daemon exit status $?"
echo PASS
