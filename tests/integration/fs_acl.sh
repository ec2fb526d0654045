#!/usr/bin/env bash
# POSIX ACLs on backing files hold through the mount: a named-user entry
# that denies what the mode bits allow denies it through the mount, and one
# that grants what the mode bits refuse grants it (a root daemon's mount,
# which serves every user). A directory's default ACL, not the caller's
# umask, sets the mode of what is created in it, as natively; elsewhere the
# umask does.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ "$(id -u)" = 0 ] || skip "needs root (a mount other users may use)"
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 (another user cannot run \$PYTHON)"
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"

# set_acl FILE NOBODY_PERMS: user::rw- user:65534:NOBODY_PERMS group::r--
# mask::r-- other::r-- (the kernel's xattr form; no setfacl needed)
set_acl() {
    "$PYTHON" - "$1" "$2" <<'PY'
import os, struct, sys
u = 0xFFFFFFFF
ents = [(1, 6, u), (2, int(sys.argv[2]), 65534), (4, 4, u), (0x10, 4, u), (0x20, 4, u)]
os.setxattr(sys.argv[1], "system.posix_acl_access",
            struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in ents))
PY
}

B=$T/backing M=$T/mnt
mkdir -p "$B" "$M"
chmod 755 "$T" "$B"
echo denied > "$B/deny"
echo granted > "$B/grant"
set_acl "$B/deny" 0 2>/dev/null || skip "no POSIX ACLs on $(findmnt -no FSTYPE -T "$B")"
set_acl "$B/grant" 4
chmod 0640 "$B/grant"	# mask r--: group bits; other ---
chmod o+r "$B/deny"
# What the backing directory says, natively:
! $NOBODY cat "$B/deny" >/dev/null 2>&1 || fail "native: the deny entry did not deny"
assert_eq "$($NOBODY cat "$B/grant")" "granted" "native read through the grant entry"

mount_hermesfs "$B" "$M"
! $NOBODY cat "$M/deny" >/dev/null 2>&1 || fail "read through the mount what an ACL denies"
assert_eq "$($NOBODY cat "$M/grant" 2>&1)" "granted" "read through the mount by an ACL's grant"
# An ACL set through the mount takes effect at once.
echo later > "$M/later"
chmod 644 "$M/later"
assert_eq "$($NOBODY cat "$M/later")" "later"
set_acl "$M/later" 0
! $NOBODY cat "$M/later" >/dev/null 2>&1 || fail "an ACL set through the mount did not apply"

# Setting an access ACL on one's own set-group-ID file, not being in its
# group, drops set-group-ID (natively; through the mount the root daemon
# would be exempt). The ACL sets rw-r--r--: 2775 becomes 644.
for d in "$T/native" "$B"; do
    mkdir -p "$d" && chmod 755 "$d"
    echo g > "$d/sgid" && chown 65534:0 "$d/sgid" && chmod 2775 "$d/sgid"
done
$NOBODY env PYTHON=/usr/bin/python3 bash -c "$(declare -f set_acl); set_acl '$T/native/sgid' 4 && set_acl '$M/sgid' 4" ||
    fail "owner could not set an ACL"
assert_eq "$(stat -c %a "$T/native/sgid")" "644" "natively, after an ACL set by a non-member"
assert_eq "$(stat -c %a "$B/sgid")" "644" "through the mount, after an ACL set by a non-member"

# Default ACL user::rwx group::r-x other::r-x on a directory: with umask 077
# a new file is 644 and a new directory 755 in it, 600 and 700 elsewhere.
mkdir "$B/inherit"
"$PYTHON" - "$B/inherit" <<'PY'
import os, struct, sys
ents = [(1, 7, 0xFFFFFFFF), (4, 5, 0xFFFFFFFF), (0x20, 5, 0xFFFFFFFF)]
os.setxattr(sys.argv[1], "system.posix_acl_default",
            struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in ents))
PY
cp -a "$B/inherit" "$T/native/inherit" 2>/dev/null || fail "copy the directory with its ACL"
for d in "$T/native" "$M"; do
    (umask 077 && touch "$d/inherit/f" "$d/plain" && mkdir "$d/inherit/d" "$d/plainD")
done
assert_eq "$(cd "$T/native" && stat -c %a inherit/f inherit/d plain plainD | tr '\n' ' ')" \
    "644 755 600 700 " "natively"
assert_eq "$(cd "$B" && stat -c %a inherit/f inherit/d plain plainD | tr '\n' ' ')" \
    "644 755 600 700 " "through the mount"
unmount_hermesfs "$M" || fail "unmount"
echo PASS
