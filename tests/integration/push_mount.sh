#!/usr/bin/env bash
# End to end through a real hermesfs mount: random operations made through
# the mountpoint are journaled by the daemon; `hermes-fsctl sync` pushes
# them to a local: and an ssh:// sandbox, which then equal the tree byte for
# byte with modes; a directory renamed through the mount is moved on the
# sandbox (same inode there: its content was not sent again).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_sshd.sh"
source "$(dirname "$0")/lib_mount.sh"
source "$(dirname "$0")/lib_push.sh"
start_sshd
B=$T/backing M=$T/mnt
mkdir -p "$B" "$M" "$T/loc"
export XDG_CONFIG_HOME=$T/config	# no user config file
mount_hermesfs "$B" "$M" --sandbox loc="local:$T/loc" \
    --sandbox sshb="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$T/ssh"
ctl() { "$FSCTL" -m "$M" "$@"; }
HOST=$M NOJ=1
RANDOM=2024
for round in 1 2; do
    random_ops 30
    ctl sync > "$T/out" 2>&1 || fail "sync: $(cat "$T/out")"
    fast_trees_equal "$M" "$T/loc"
    fast_trees_equal "$M" "$T/ssh"
done

note "a directory renamed through the mount moves on the sandbox"
mkdir -p "$M/keep/sub"; head -c 500000 /dev/urandom > "$M/keep/sub/blob"; chmod 600 "$M/keep/sub/blob"
ctl sync > "$T/out" 2>&1 || fail "sync: $(cat "$T/out")"
ino=$(stat -c %i "$T/ssh/keep/sub/blob")
mv "$M/keep" "$M/kept"
ctl sync > "$T/out" 2>&1 || fail "sync: $(cat "$T/out")"
assert_eq "$(stat -c %i "$T/ssh/kept/sub/blob")" "$ino" "inode of the moved file on the sandbox"
assert_eq "$(stat -c %a "$T/ssh/kept/sub/blob")" 600 "mode on the sandbox"
assert_trees_equal "$M" "$T/ssh"
assert_trees_equal "$M" "$T/loc"
echo ok
