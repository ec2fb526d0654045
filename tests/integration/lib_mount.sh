# lib_mount.sh — mount hermesfs in tests (source after lib.sh).
#
#   mount_hermesfs BACKING MNT [extra hermesfs args]
#       starts hermesfs -f in the background with --state $MOUNT_STATE
#       (default $T/state, so a remount reuses the same store), waits for
#       the mount, and makes sure it is unmounted at exit. Sets MOUNT_PID.
#   unmount_hermesfs MNT     fusermount3 -u and wait for the daemon; returns
#                            its exit status
#   kill9_hermesfs MNT       kill -9 the daemon and detach the dead mount
#   fuse_for_users           (in a lib_ns.sh namespace) let ordinary users
#                            open /dev/fuse and reach $T, and point HERMESFS
#                            and FSCTL at copies in $T/bin
#   state_db                 path of the store of $MOUNT_STATE
#   journal [SINCE|--head|--clean]   print the store's journal (tool_fsjournal)
MOUNT_STATE=${MOUNT_STATE:-$T/state}
MOUNT_PID=
FSJOURNAL=$HERMES_BUILD/itests/tool_fsjournal

is_mounted() {
    awk -v mp="$1" '$5 == mp { for (i = 6; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' \
        /proc/self/mountinfo | grep -q '^fuse.hermesfs$'
}

_stop_daemon() { # PID MNT
    kill -TERM "$1" 2>/dev/null
    WAIT_S=5 wait_for eval "! kill -0 $1 2>/dev/null" || kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    is_mounted "$2" && fusermount3 -u -z "$2"
    return 0
}

mount_hermesfs() {
    local backing=$1 mnt=$2
    shift 2
    "$HERMESFS" -f --state "$MOUNT_STATE" "$@" "$backing" "$mnt" >>"$T/hermesfs.log" 2>&1 &
    MOUNT_PID=$!
    at_exit "_stop_daemon $MOUNT_PID '$mnt'"
    if ! wait_for is_mounted "$mnt"; then
        cat "$T/hermesfs.log" >&2
        fail "hermesfs did not mount $mnt"
    fi
    # The mount shows before the daemon serves (it may be rescanning):
    # this stat returns once requests are answered.
    stat "$mnt" >/dev/null || fail "hermesfs mounted $mnt but does not serve"
}

unmount_hermesfs() {
    local rc
    fusermount3 -u "$1" || return 1
    wait "$MOUNT_PID"; rc=$?
    MOUNT_PID=
    return $rc
}

kill9_hermesfs() {
    kill -9 "$MOUNT_PID"
    wait "$MOUNT_PID" 2>/dev/null
    fusermount3 -u -z "$1" 2>/dev/null
    MOUNT_PID=
    return 0
}

fuse_for_users() {
    mknod -m 666 "$T/fuse" c 10 229 && mount --bind "$T/fuse" /dev/fuse ||
        fail "cannot give this namespace an open /dev/fuse"
    chmod 755 "$T"
    # The build tree may sit where another user cannot reach (a 0700 clone).
    mkdir -p "$T/bin" && cp "$HERMESFS" "$FSCTL" "$T/bin/" || fail "copy the programs"
    HERMESFS=$T/bin/$(basename "$HERMESFS") FSCTL=$T/bin/$(basename "$FSCTL")
}

state_db() { echo "$MOUNT_STATE/store.db"; }
journal() { "$FSJOURNAL" "$(state_db)" "$@"; }
