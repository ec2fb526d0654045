#!/usr/bin/env bash
# An ordinary user's mount has no default_permissions (only a root daemon's,
# which serves other users, needs them): the backing file system checks the
# daemon's calls, made with the caller's own ids. Every denial a user would
# meet on the backing directory must still happen through the mount, access(2)
# included, and a directory changed by a create is not re-read before the
# next one. Runs in its own mount namespace where /dev/fuse is a node
# ordinary users may open (the machine's may be root-only).
if [ -z "$HERMES_PERM_NS" ]; then
    HERMES_PERM_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
    exit 77	# unshare missing
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
command -v fusermount3 >/dev/null || skip "no fusermount3"

NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
mknod -m 666 "$T/fuse" c 10 229 && mount --bind "$T/fuse" /dev/fuse ||
    fail "cannot give this namespace an open /dev/fuse"
chmod 755 "$T"
# The build tree may sit where another user cannot reach (a 0700 clone).
mkdir -p "$T/bin" && cp "$HERMESFS" "$T/bin/" || fail "copy the program"
HERMESFS=$T/bin/$(basename "$HERMESFS")
B=$T/backing M=$T/mnt ST=$T/state
mkdir -p "$B/closed" "$B/rootdir" "$B/work" "$M" "$ST"
echo ro > "$B/ro"
echo secret > "$B/closed/f"
echo root > "$B/rootdir/rootfile"
chown -R 65534:65534 "$B" "$M" "$ST"
chown -R 0:0 "$B/rootdir"
chmod 0444 "$B/ro"
chmod 0000 "$B/closed"
$NOBODY env HOME="$T" "$HERMESFS" -f --state "$ST" -o debug "$B" "$M" >"$T/log" 2>&1 &
PID=$!
at_exit "kill $PID 2>/dev/null; fusermount3 -u -z '$M' 2>/dev/null"
wait_for is_mounted "$M" || { cat "$T/log" >&2; fail "mount by an ordinary user"; }
opts=$(awk -v mp="$M" '$5 == mp { print $6, $NF }' /proc/self/mountinfo)
[[ $opts != *default_permissions* ]] || fail "a user's mount has default_permissions: $opts"

as_nobody() { $NOBODY sh -c "cd '$M' && $1" >/dev/null 2>&1; }
denied() { ! as_nobody "$1" || fail "allowed through the mount: $1"; }
allowed() { as_nobody "$1" || fail "denied through the mount: $1"; }

allowed 'test -r ro && cat ro'
denied 'test -w ro'			# access(2): FUSE_ACCESS
denied 'echo x > ro'
denied 'test -x closed'
denied 'cd closed'
denied 'ls closed'
denied 'cat closed/f'
denied 'chmod 777 rootdir/rootfile'
denied 'rm -f rootdir/rootfile'
denied 'touch rootdir/new'
denied 'mkdir rootdir/sub'
allowed 'test -w work && cd work && echo hi > a && mv a b && cat b && rm b'
assert_eq "$(cat "$B/ro")" "ro"
assert_eq "$(cat "$B/rootdir/rootfile")" "root"
assert_absent "$B/rootdir/new"
assert_absent "$B/work/b"

# The point of leaving the checks to the backing: no GETATTR of the
# directory after each change in it (with default_permissions: one before
# every create and every unlink, 80 here). rm's own stat of each file
# still asks for the file's attributes, as it would natively.
l0=$(wc -l < "$T/log")
allowed 'cd work && for i in $(seq 40); do echo x > f$i; done && for i in $(seq 40); do rm f$i; done'
tail -n +$((l0 + 1)) "$T/log" > "$T/window"
dir=$(grep -a "opcode: UNLINK" "$T/window" | tail -n 1 | sed 's/.*nodeid: \([0-9]*\),.*/\1/')
[ -n "$dir" ] || fail "no UNLINK request seen"
n=$(grep -ac "opcode: GETATTR ([0-9]*), nodeid: $dir," "$T/window")
[ "$n" -lt 8 ] || fail "$n GETATTR requests of the directory for 40 creates and 40 unlinks"
assert_eq "$(ls -A "$B/work")" ""
fusermount3 -u "$M" || fail "unmount"
wait $PID || fail "daemon exit status $?"
echo PASS
