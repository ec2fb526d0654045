#!/usr/bin/env bash
# Edits made while nothing is mounted are journaled by the next mount's
# rescan, including a rewrite that keeps the size and puts the old mtime
# back (cp -p, rsync -t, touch -r): only the ctime shows it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"

B=$T/backing M=$T/mnt
mkdir -p "$B" "$M"
echo aaaa > "$B/same"
echo keep > "$B/untouched"
echo mode > "$B/chmodded"
mount_hermesfs "$B" "$M"
unmount_hermesfs "$M" || fail "clean unmount"
SINCE=$(journal --head)

sleep 0.05	# a coarse clock would give the rewrite the same ctime
before=$(stat -c '%s %.9Y %i' "$B/same")
touch -r "$B/same" "$T/ref"
echo bbbb > "$B/same"
touch -r "$T/ref" "$B/same"
chmod 600 "$B/chmodded"
# size, mtime and inode as the store last knew them: only the ctime moved
assert_eq "$(stat -c '%s %.9Y %i' "$B/same")" "$before" "the rewrite's size, mtime, inode"

mount_hermesfs "$B" "$M"
assert_eq "$(cat "$M/same")" "bbbb"
unmount_hermesfs "$M" || fail "clean unmount after rescan"
journal "$SINCE" > "$T/j"
grep -q "^[0-9]* write same$" "$T/j" || { cat "$T/j" >&2; fail "rewrite with the old mtime not journaled"; }
grep -q "^[0-9]* chmod chmodded$" "$T/j" || { cat "$T/j" >&2; fail "chmod not journaled"; }
! grep -q " untouched$" "$T/j" || { cat "$T/j" >&2; fail "unchanged file journaled"; }
echo PASS
