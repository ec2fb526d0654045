#!/usr/bin/env bash
# Semantics 3 with a slow journal: every journal batch is held 300 ms
# before it becomes durable (HERMES_FAULT_COMMIT_DELAY_MS), so a write made
# through the mount is still queued when the next command starts. The
# push before `exec` must wait for it: the command sees the new content,
# every time, on a local: and a cmd: sandbox.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
B=$T/backing M=$T/mnt
mkdir -p "$B" "$M" "$T/loc" "$T/cmd"
export XDG_CONFIG_HOME=$T/config	# no user config file
echo v0 > "$B/f"
HERMES_FAULT_COMMIT_DELAY_MS=300 mount_hermesfs "$B" "$M" \
    --sandbox loc="local:$T/loc" --sandbox box="cmd:env#$T/cmd"
ctl() { "$FSCTL" -m "$M" "$@"; }
ctl sync > "$T/out" 2>&1 || fail "sync: $(cat "$T/out")"
for i in 1 2 3 4; do
    for sb in loc box; do
        echo "v$i-$sb" > "$M/f"
        out=$(ctl exec -s "$sb" -- cat f 2>&1) || fail "exec $sb: $out"
        assert_eq "$out" "v$i-$sb" "command on $sb sees the write made before it (round $i)"
    done
done
note "sync after a queued rename sees it too"
mv "$M/f" "$M/g"
ctl sync loc > "$T/out" 2>&1 || fail "sync: $(cat "$T/out")"
[ -e "$T/loc/g" ] || fail "rename not pushed"; assert_absent "$T/loc/f"
echo ok
