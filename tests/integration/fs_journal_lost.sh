#!/usr/bin/env bash
# A change the daemon could not journal must not be lost: when the backing
# directory is renamed under a live mount, paths can no longer be resolved,
# the change is served but not journaled; the unmount must then not count
# as clean, so the next mount rescans and journals it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"

B=$T/backing M=$T/mnt
mkdir -p "$B" "$M"
mkdir "$B/sub"

# control: a normal session ends clean and the next mount does not rescan
mount_hermesfs "$B" "$M"
echo a > "$M/a"
unmount_hermesfs "$M" || fail "clean unmount"
mount_hermesfs "$B" "$M"
grep -q "did not unmount cleanly" "$T/hermesfs.log" && fail "rescan after a clean unmount"
SINCE=$(journal --head)

mv "$B" "$T/moved"
echo "written while unresolvable" > "$M/sub/lost"
[ "$(cat "$T/moved/sub/lost")" = "written while unresolvable" ] || fail "write not served"
grep -q "could not be journaled" "$T/hermesfs.log" || { cat "$T/hermesfs.log"; fail "no error logged"; }
journal "$SINCE" | grep -q " sub/lost" && { journal "$SINCE"; fail "the write was journaled after all (test is void)"; }
unmount_hermesfs "$M" || fail "unmount"

mv "$T/moved" "$B"
mount_hermesfs "$B" "$M"
grep -q "did not unmount cleanly" "$T/hermesfs.log" || { cat "$T/hermesfs.log"; fail "no rescan"; }
journal "$SINCE" | grep -q " sub/lost" || { journal "$SINCE"; fail "rescan did not journal the change"; }
unmount_hermesfs "$M" || fail "final unmount"
note "unjournaled change found by the rescan"
