# lib_ns.sh — source it first, before lib.sh: runs the calling test again,
# once, in a private mount namespace of its own, so what it mounts (a tmpfs,
# a bind over /dev/fuse or /dev/log) goes away with it and never touches the
# machine's. Exits 77 (skipped) where unshare is missing.
if [ -z "${HERMES_PRIVATE_NS:-}" ]; then
    HERMES_PRIVATE_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
    exit 77
fi
