#!/usr/bin/env bash
# An ordinary user's mount keeps default_permissions: the kernel checks each
# caller with the caller's own credentials. Without it the backing file system
# would check the daemon's calls, made with the daemon's groups and
# capabilities and with an open for reading where the caller asked to execute,
# so a caller that dropped a group could still read that group's files and a
# file without its x bit for the caller could run. Every denial a user would
# meet on the backing directory must happen through the mount. Runs in its own
# mount namespace where /dev/fuse is a node ordinary users may open (the
# machine's may be root-only).
. "$(dirname "$0")/lib_ns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
command -v fusermount3 >/dev/null || skip "no fusermount3"

# The daemon holds group 4242; the callers below have the same uid and gid
# (so the kernel admits them to a user's mount) but not that group.
DAEMON="setpriv --reuid=65534 --regid=65534 --groups=4242"
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
# This caller has a group the daemon lacks: the kernel lets it chgrp to that
# group, the backing file system refuses the daemon.
GROUPED="setpriv --reuid=65534 --regid=65534 --groups=4343"
fuse_for_users
B=$T/backing M=$T/mnt ST=$T/state
mkdir -p "$B/closed" "$B/rootdir" "$B/work" "$B/listonly" "$M" "$ST"
echo l > "$B/listonly/name"
echo ro > "$B/ro"
echo secret > "$B/closed/f"
echo root > "$B/rootdir/rootfile"
printf '#!/bin/sh\necho ran\n' > "$B/rootdir/script"
echo group > "$B/groupfile"
echo suid > "$B/work/suid"
chown -R 65534:65534 "$B" "$M" "$ST"
chown -R 0:0 "$B/rootdir"
chown 0:4242 "$B/groupfile"
chmod 0444 "$B/ro"
chmod 0000 "$B/closed"
chmod 0444 "$B/listonly"
cp "$B/rootdir/script" "$B/rootdir/prog"
chmod 0744 "$B/rootdir/script"
chmod 0755 "$B/rootdir/prog"
chmod 0640 "$B/groupfile"
chmod 04755 "$B/work/suid"
$DAEMON env HOME="$T" "$HERMESFS" -f --state "$ST" "$B" "$M" >"$T/log" 2>&1 &
PID=$!
at_exit "kill $PID 2>/dev/null; fusermount3 -u -z '$M' 2>/dev/null"
wait_for is_mounted "$M" || { cat "$T/log" >&2; fail "mount by an ordinary user"; }
opts=$(awk -v mp="$M" '$5 == mp { print $6, $NF }' /proc/self/mountinfo)
[[ $opts == *default_permissions* ]] || fail "a user's mount lacks default_permissions: $opts"

as_nobody() { $NOBODY sh -c "cd '$M' && $1" >/dev/null 2>&1; }
denied() { ! as_nobody "$1" || fail "allowed through the mount: $1"; }
allowed() { as_nobody "$1" || fail "denied through the mount: $1"; }

allowed 'test -r ro && cat ro'
denied 'test -w ro'
denied 'echo x > ro'
denied 'test -x closed'
denied 'cd closed'
denied 'ls closed'
denied 'cat closed/f'
allowed 'test "$(ls listonly)" = name'	# readable, not searchable
denied 'cat listonly/name'
denied 'chmod 777 rootdir/rootfile'
denied 'rm -f rootdir/rootfile'
denied 'touch rootdir/new'
denied 'mkdir rootdir/sub'
allowed 'cat rootdir/script'
if [[ ,$(findmnt -no OPTIONS -T "$T"), != *,noexec,* ]]; then
    allowed './rootdir/prog'		# executable by others
    denied './rootdir/script'		# readable, but not executable by others
fi
denied 'cat groupfile'			# the daemon's group is not the caller's
denied 'chgrp 4242 work'		# nor may the caller give it away
! $GROUPED chgrp 4343 "$M/work/suid" 2>/dev/null ||
    fail "the daemon gave a file to a group it is not in"
assert_eq "$(stat -c %a.%g "$B/work/suid")" "4755.65534" "a refused chgrp"
allowed 'test -w work && cd work && echo hi > a && mv a b && cat b && rm b'
assert_eq "$(cat "$B/ro")" "ro"
assert_eq "$(cat "$B/rootdir/rootfile")" "root"
assert_eq "$(stat -c %g "$B/work")" "65534"
assert_absent "$B/rootdir/new"
assert_absent "$B/work/b"
fusermount3 -u "$M" || fail "unmount"
wait $PID || fail "daemon exit status $?"
echo PASS
