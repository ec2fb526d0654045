#!/usr/bin/env bash
# POSIX behaviour through the mount (rename flags, xattrs, fallocate, holes,
# copy_file_range, mmap, locks, a shared SQLite WAL db...) checked against
# the backing dir, plus the journal entries of those operations.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"

B=$T/backing M=$T/mnt
mkdir -p "$B" "$M"
mount_hermesfs "$B" "$M"
timeout 120 python3 "$(dirname "$0")/fs_posix.py" "$M" "$B" || fail "POSIX checks"
# Entries become visible to a reader of the store once the committer has
# written them (group commit, a moment after the operation): wait for them.
want=("rename r1 r3" "exchange r2 r3" "exchange rd r2" "xattr x" "write sparse"
    "write cfr_dst" "write mm" "create session.db" "write session.db" "truncate ft"
    "utimens ft" "unlink gone")
has_all() {
    local j e; j=$(journal | cut -d' ' -f2-)
    for e in "${want[@]}"; do grep -qFx "$e" <<<"$j" || return 1; done
}
if ! wait_for has_all; then
    j=$(journal | cut -d' ' -f2-)
    for e in "${want[@]}"; do grep -qFx "$e" <<<"$j" || fail "journal lacks '$e'"; done
fi
unmount_hermesfs "$M" || fail "unclean exit"
echo PASS
