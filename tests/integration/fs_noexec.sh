#!/usr/bin/env bash
# A backing directory on a noexec file system stays noexec through the
# mount: the daemon opens a file for reading when the caller executes it, so
# only the mount's own noexec flag keeps its programs from running; a noexec
# file system mounted below an ordinary backing directory is refused at the
# exec's open. Runs in its own mount namespace, where it mounts noexec
# tmpfs file systems.
. "$(dirname "$0")/lib_ns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
# The control cases run programs from $T.
[[ ,$(findmnt -no OPTIONS -T "$T"), != *,noexec,* ]] || skip "$T is noexec"

B=$T/backing M=$T/mnt M2=$T/mnt2 E=$T/exec
mkdir -p "$B" "$M" "$M2" "$E"
mount -t tmpfs -o noexec tmpfs "$B" || fail "mount a noexec tmpfs"
at_exit "umount -l '$B'"
printf '#!/bin/sh\necho ran\n' > "$B/prog"
chmod 755 "$B/prog"
! "$B/prog" 2>/dev/null || fail "the noexec tmpfs ran a program"

mount_hermesfs "$B" "$M"
opts=$(awk -v mp="$M" '$5 == mp { print $6 }' /proc/self/mountinfo)
[[ ,$opts, == *,noexec,* ]] || fail "mount over a noexec backing is not noexec: $opts"
out=$("$M/prog" 2>&1) && fail "ran through the mount: $out"
[[ $out == *"Permission denied"* ]] || fail "unexpected error: $out"
assert_eq "$(cat "$M/prog")" "$(printf '#!/bin/sh\necho ran')"
unmount_hermesfs "$M" || fail "unmount"

# An ordinary backing directory still runs its programs through the mount;
# one on a noexec file system mounted inside it does not.
cp "$B/prog" "$E/prog"
mkdir "$E/sub"
mount -t tmpfs -o noexec tmpfs "$E/sub" || fail "mount a noexec tmpfs below"
at_exit "umount -l '$E/sub'"
cp "$B/prog" "$E/sub/prog"
mount_hermesfs "$E" "$M2"
assert_eq "$("$M2/prog")" "ran"
out=$("$M2/sub/prog" 2>&1) && fail "ran through the mount from a noexec submount: $out"
[[ $out == *"Permission denied"* ]] || fail "unexpected error: $out"
assert_eq "$(cat "$M2/sub/prog")" "$(printf '#!/bin/sh\necho ran')"
unmount_hermesfs "$M2" || fail "unmount"
echo PASS
