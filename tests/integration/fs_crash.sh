#!/usr/bin/env bash
# kill -9 of the daemon during writes, then remount: the journal (entries
# made durable before the crash) plus the rescan at the next mount cover
# every path that changed in the backing tree, and every file whose fsync
# returned before the crash has its entries in the durable journal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"

B=$T/backing M=$T/mnt
mkdir -p "$B" "$M"
ITERS=${FS_CRASH_ITERS:-3}
# The real interpreter: a pyenv shim is slow, and blocks when started as a
# background job.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

# covered JOURNAL_PATHS CHANGED_PATHS: print changed paths with no entry for
# themselves or an ancestor.
uncovered() {
    "$PYTHON" - "$1" "$2" <<'PY'
import sys
j = set(open(sys.argv[1]).read().split("\n"))
for p in open(sys.argv[2]).read().split("\n"):
    parts = p.split("/")
    if p and not any("/".join(parts[:i]) in j for i in range(1, len(parts) + 1)):
        print(p)
PY
}

# manifest DIR: "type mode size sha256 path" per entry (fast: one process).
manifest() {
    "$PYTHON" - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
for d, dirs, files in sorted(os.walk(root)):
    for n in sorted(dirs + files):
        p = os.path.join(d, n)
        st = os.lstat(p)
        h = "-"
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256(open(p, "rb").read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            h = os.readlink(p)
        print(stat.S_IFMT(st.st_mode), oct(st.st_mode & 0o7777),
              st.st_size if stat.S_ISREG(st.st_mode) else 0, h, os.path.relpath(p, root))
PY
}

writer() { # MNT SEED: random mutations until the mount dies
    timeout 30 "$PYTHON" - "$1" "$2" <<'PY'
import os, random, sys
mnt, rng = sys.argv[1], random.Random(int(sys.argv[2]))
names = ["a", "b", "c", "d/x", "d/y", "e/z"]
n = 0
try:
    while True:
        n += 1
        p = os.path.join(mnt, rng.choice(names))
        r = rng.random()
        try:
            if r < 0.5:
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "ab") as f:
                    f.write(os.urandom(rng.randrange(1, 5000)))
            elif r < 0.65:
                os.rename(p, os.path.join(mnt, rng.choice(names)))
            elif r < 0.75:
                os.unlink(p)
            elif r < 0.85:
                os.truncate(p, rng.randrange(0, 3000))
            else:
                # fsynced files are never touched again
                q = os.path.join(mnt, "sync", "%s.%d" % (sys.argv[2], n))
                os.makedirs(os.path.dirname(q), exist_ok=True)
                fd = os.open(q, os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, b"durable")
                os.fsync(fd)
                os.close(fd)
                print("sync/%s.%d" % (sys.argv[2], n), flush=True)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                FileExistsError, OSError) as e:
            if getattr(e, "errno", 0) in (107, 5, 103):  # ENOTCONN, EIO, ECONNABORTED
                break
except KeyboardInterrupt:
    pass
PY
}

for it in $(seq "$ITERS"); do
    note "iteration $it"
    mount_hermesfs "$B" "$M"
    unmount_hermesfs "$M" || { cat "$T/hermesfs.log" >&2; fail "clean unmount"; }
    manifest "$B" > "$T/before"
    mount_hermesfs "$B" "$M"
    SINCE=$(journal --head)
    rm -f "$T/synced.1" "$T/synced.2"
    writer "$M" "$it" > "$T/synced.1" 2>>"$T/writer.err" & W1=$!
    writer "$M" "$((it + 100))" > "$T/synced.2" 2>>"$T/writer.err" & W2=$!
    wait_for test -s "$T/synced.1" || fail "writer made no progress"
    sleep "0.$((RANDOM % 8 + 1))"
    # writers stop on ENOTCONN; detach only then (a detached mountpoint
    # would let them write into the directory under it)
    kill -9 "$MOUNT_PID"
    wait "$W1" "$W2" 2>/dev/null
    kill9_hermesfs "$M"
    assert_eq "$(journal --clean)" unclean "store state after kill -9"

    # fsync returned => entries durable before the crash
    journal "$SINCE" | cut -d' ' -f3- | tr ' ' '\n' | sort -u > "$T/durable"
    sort -u "$T/synced.1" "$T/synced.2" > "$T/synced"
    lost=$(comm -23 "$T/synced" "$T/durable")
    [ -z "$lost" ] || fail "fsynced but no durable journal entry: $lost"
    note "$(cat "$T/synced.1" "$T/synced.2" | wc -l) fsynced files, $(wc -l < "$T/durable") journaled paths before the rescan"

    # remount: the rescan journals what the crash lost
    mount_hermesfs "$B" "$M"
    grep -q "did not unmount cleanly" "$T/hermesfs.log" || fail "no rescan message"
    unmount_hermesfs "$M" || fail "clean unmount after rescan"
    manifest "$B" > "$T/after"
    journal "$SINCE" | cut -d' ' -f3- | tr ' ' '\n' | sort -u > "$T/journaled"
    diff "$T/before" "$T/after" | sed -n 's/^[<>] \S* \S* \S* \S* //p' | sort -u > "$T/changed"
    [ -s "$T/changed" ] || { cat "$T/writer.err" >&2; fail "the writers changed nothing"; }
    missing=$(uncovered "$T/journaled" "$T/changed")
    [ -z "$missing" ] || fail "changed but never journaled: $missing"
    note "$(wc -l < "$T/changed") changed paths, all journaled"
    : > "$T/hermesfs.log"
done
echo PASS
