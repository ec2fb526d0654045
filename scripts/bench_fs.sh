#!/usr/bin/env bash
# bench_fs.sh — the hermesfs mount against the native backing directory,
# measured in the same run on the same disk:
#   sequential write (with fsync) and read of 1 GiB (dd, bs=1M)
#   4 KiB random read/write (fio, psync, 5 s)
#   create + stat + delete of 10,000 files
#   extract then tar a 5,000-file tree
#   journaling on vs off (the hidden --no-journal) for the same workloads
#   the FUSE round-trip floor: one getxattr(2) through the mount vs native,
#   also with the daemon and the caller held on one CPU, then on two
#   the same metadata workloads on fuse-overlayfs (Debian's, the FUSE
#   overlay rootless podman uses; no journal), when installed: what any
#   FUSE file system costs on this machine, the floor under our ratios
# Each workload runs BENCH_FS_REPEAT times (default 5) on every side, the
# sides interleaved and their order rotated each round, and the median is
# reported: the machine is noisy, and ext4 without a journal makes a create
# slower while many inodes were deleted nearby in the last minutes, which
# would otherwise penalize whichever side runs second.
# Ratios: mount time / native time (lower is better; 1.00 = native speed),
# or throughput ratios where noted. BENCH_FS_SIZE_MB overrides the 1 GiB;
# BENCH_FS_ONLY="write read rand meta tar rt req" runs only those
# workloads; BENCH_FS_MOUNT_OPTS="-o ..." adds options to every mount.
#
# As root, both sides (and the stores) live on a fresh ext4 file system
# (default mkfs options, so with a journal) in a loop device with direct
# I/O to its image. This VM's own disk is ext4 without a journal, where a
# new inode skips every inode deleted in the last 60-300 s (ext4 ialloc.c,
# recently_deleted): whichever side ran right after another side's 10,000
# deletes paid for them, so the ratio measured the run order (native
# create+stat+delete ranged 0.3-2.4 s). BENCH_FS_NATIVE_FS=1 runs on
# BENCH_DIR's own file system instead.
set -u
ONLY_WL=${BENCH_FS_ONLY:-write read rand meta tar rt req}
want() { [[ " $ONLY_WL " == *" $1 "* ]]; }
HERMES_SRC=${HERMES_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
HERMES_BUILD=${HERMES_BUILD:-$HERMES_SRC/build}
HERMESFS=$HERMES_BUILD/bin/hermesfs
SIZE_MB=${BENCH_FS_SIZE_MB:-1024}
REPEAT=${BENCH_FS_REPEAT:-5}
T=$(mktemp -d "${BENCH_DIR:-/tmp}/hermes-bench-fs.XXXXXX")
PIDS=()
DATA=$T		# where the trees and stores live
LOOP=
cleanup() {
    for m in "$DATA"/mnt*; do fusermount3 -u -z "$m" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "$LOOP" ]; then
        umount "$T/fs" 2>/dev/null || umount -l "$T/fs"
        losetup -d "$LOOP"
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
FSDESC=$(df -P "$T" | awk 'NR==2 {print $1}')
if [ "$(id -u)" = 0 ] && [ -z "${BENCH_FS_NATIVE_FS:-}" ] &&
   command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
    # Allocated up front: in a sparse image the first write into each of
    # its regions also allocates them on the host disk, and whichever side
    # first wrote a region paid for it (a first 1 GiB write took 2.5 s
    # against 0.6-1.0 s for every later one).
    fallocate -l $((SIZE_MB * 3 + 2048))M "$T/fs.img" 2>/dev/null ||
        truncate -s $((SIZE_MB * 3 + 2048))M "$T/fs.img"
    # Inode tables and journal written now: left lazy, a kernel thread
    # zeroes them during the first minute, competing with whatever runs.
    if mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$T/fs.img" &&
       LOOP=$(losetup -f --show --direct-io=on "$T/fs.img") &&
       mkdir -p "$T/fs" && mount "$LOOP" "$T/fs"; then
        DATA=$T/fs
        FSDESC="a fresh ext4 ($LOOP, on $FSDESC)"
    else
        [ -n "$LOOP" ] && losetup -d "$LOOP"
        LOOP=
    fi
fi
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

mounted() { awk -v mp="$1" '$5 == mp' /proc/self/mountinfo | grep -q fuse.hermesfs; }
mount_fs() { # BACKING MNT [args]
    local b=$1 m=$2
    shift 2
    # shellcheck disable=SC2086
    set -- "$@" ${BENCH_FS_MOUNT_OPTS:-}
    mkdir -p "$b" "$m"
    "$HERMESFS" -f --state "$DATA/state.$(basename "$m")" "$@" "$b" "$m" 2>>"$T/daemon.log" &
    PIDS+=($!)
    for _ in $(seq 200); do mounted "$m" && break; sleep 0.05; done
    mounted "$m" && stat "$m" >/dev/null || { cat "$T/daemon.log"; echo "mount failed"; exit 1; }
}
now() { date +%s.%N; }
elapsed() { "$PYTHON" -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
ratio() { "$PYTHON" -c "import sys; a, b = map(float, sys.argv[1:3]); print('%.2f' % (a / b if b > 0 else 0))" "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# Both sides start cold: the mount's page cache and the backing file's.
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

seq_write() { # DIR -> seconds
    local s; s=$(now)
    dd if=/dev/zero of="$1/seq" bs=1M count="$SIZE_MB" conv=fsync status=none
    elapsed "$s"
}
seq_read() {
    local s; drop_caches; s=$(now)
    dd if="$1/seq" of=/dev/null bs=1M status=none
    elapsed "$s"
}
seq_write_rm() { seq_write "$1"; rm -f "$1/seq"; }
rand_rw() { # DIR -> IOPS (read+write)
    fio --name=rr --directory="$1" --rw=randrw --bs=4k --size=128M --runtime=5 \
        --time_based --ioengine=psync --numjobs=1 --output-format=json 2>/dev/null |
        "$PYTHON" -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print("%.0f" % (j["read"]["iops"] + j["write"]["iops"]))'
    rm -f "$1"/rr.*
}
meta() { # DIR [N] -> seconds for create+stat+delete of N (10,000) files
    "$PYTHON" - "$1" "${2:-10000}" <<'PY'
import os, sys, time
d, n = os.path.join(sys.argv[1], "meta"), int(sys.argv[2])
os.mkdir(d)
t = time.monotonic()
for i in range(n):
    fd = os.open(os.path.join(d, "f%05d" % i), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"x" * 100)
    os.close(fd)
for i in range(n):
    os.stat(os.path.join(d, "f%05d" % i))
for i in range(n):
    os.unlink(os.path.join(d, "f%05d" % i))
print("%.3f" % (time.monotonic() - t))
os.rmdir(d)
PY
}
roundtrip() { # DIR -> microseconds per getxattr(2) of a missing attribute
    echo x > "$1/rt"
    # RT_CPU: run the caller on that CPU only.
    ${RT_CPU:+taskset -c "$RT_CPU"} "$PYTHON" - "$1/rt" <<'PY'
import os, sys, time
p, n = sys.argv[1], 20000
t = time.monotonic()
for _ in range(n):
    try:
        os.getxattr(p, "user.none")
    except OSError:
        pass
print("%.1f" % ((time.monotonic() - t) / n * 1e6))
PY
    rm -f "$1/rt"
}
make_tarball() {
    "$PYTHON" - "$T/src" <<'PY'
import os, random, sys
r = random.Random(1)
for i in range(5000):
    d = os.path.join(sys.argv[1], "d%02d" % (i % 50), "s%d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%04d" % i), "wb") as f:
        f.write(r.randbytes(r.randrange(100, 4000)))
PY
    tar -C "$T/src" -cf "$T/tree.tar" .
}
untar_tar() { # DIR -> seconds for extract + tar (read back)
    local s; s=$(now)
    mkdir "$1/tree"
    tar -C "$1/tree" -xf "$T/tree.tar"
    tar -C "$1/tree" -cf - . | cat > /dev/null
    elapsed "$s"
    rm -rf "$1/tree"
}

NATIVE=$DATA/native
MNT=$DATA/mnt
MNT_NJ=$DATA/mnt-nj
mkdir -p "$NATIVE"
mount_fs "$DATA/backing" "$MNT"
mount_fs "$DATA/backing-nj" "$MNT_NJ" --no-journal
# The reference: an empty lower layer, the tree in its upper layer, so
# every operation passes through it to one directory as with us.
REF=
if command -v fuse-overlayfs >/dev/null; then
    mkdir -p "$DATA"/ref-{lower,upper,work} "$DATA/mnt-ref"
    if fuse-overlayfs -o "lowerdir=$DATA/ref-lower,upperdir=$DATA/ref-upper,workdir=$DATA/ref-work" \
           "$DATA/mnt-ref" 2>>"$T/daemon.log" &&
       awk -v mp="$DATA/mnt-ref" '$5 == mp' /proc/self/mountinfo | grep -q fuse; then
        REF=$DATA/mnt-ref
    else
        echo "(fuse-overlayfs would not mount: no reference column)"
    fi
fi
{ want tar || want req; } && make_tarball

# run FN DIR...: REPEAT rounds over the dirs, order rotated each round;
# sets R[i] to the median for the i-th dir.
R=()
run() {
    local fn=$1 n i k r
    shift
    n=$#
    local -a dirs=("$@") vals
    for ((i = 0; i < n; i++)); do vals[i]=""; done
    for ((r = 0; r < REPEAT; r++)); do
        for ((k = 0; k < n; k++)); do
            i=$(((k + r) % n))
            vals[i]+=" $("$fn" "${dirs[i]}")"
        done
    done
    R=()
    for ((i = 0; i < n; i++)); do
        # shellcheck disable=SC2086
        R[i]=$(median ${vals[i]})
    done
}

echo "hermesfs vs native directory on $FSDESC" \
     "(same run, median of $REPEAT interleaved rounds)"
printf '%-34s %12s %12s %8s\n' workload native mount ratio
report() { # NAME NATIVE MOUNT UNIT (time: ratio = mount/native)
    printf '%-34s %10s%-2s %10s%-2s %8s\n' "$1" "$2" "$4" "$3" "$4" "$(ratio "$3" "$2")"
}
ref_report() { # NATIVE REF UNIT: the reference's line under ours
    [ -n "$2" ] && printf '%-34s %10s%-2s %10s%-2s %8s\n' "  fuse-overlayfs (reference)" \
        "$1" "$3" "$2" "$3" "$(ratio "$2" "$1")"
}
sw=() me=() ut=()
if want write; then
    run seq_write_rm "$NATIVE" "$MNT" "$MNT_NJ"
    sw=("${R[@]}")
    report "seq write ${SIZE_MB} MiB + fsync" "${sw[0]}" "${sw[1]}" s
    echo "  throughput ratio mount/native: $(ratio "${sw[0]}" "${sw[1]}")"
fi
if want read; then
    seq_write "$NATIVE" >/dev/null; seq_write "$MNT" >/dev/null
    run seq_read "$NATIVE" "$MNT"
    report "seq read ${SIZE_MB} MiB" "${R[0]}" "${R[1]}" s
    echo "  throughput ratio mount/native: $(ratio "${R[0]}" "${R[1]}")"
    rm -f "$NATIVE/seq" "$MNT/seq"
fi
if want rand; then
    run rand_rw "$NATIVE" "$MNT"
    printf '%-34s %10s   %10s   %8s\n' "4 KiB random r/w IOPS" "${R[0]}" "${R[1]}" "$(ratio "${R[1]}" "${R[0]}")"
    echo "  (IOPS ratio mount/native, higher is better)"
fi
if want meta; then
    run meta "$NATIVE" "$MNT" "$MNT_NJ" ${REF:+"$REF"}
    me=("${R[@]}")
    report "create+stat+delete 10,000 files" "${me[0]}" "${me[1]}" s
    ref_report "${me[0]}" "${me[3]:-}" s
fi
if want tar; then
    run untar_tar "$NATIVE" "$MNT" "$MNT_NJ" ${REF:+"$REF"}
    ut=("${R[@]}")
    report "extract + tar 5,000-file tree" "${ut[0]}" "${ut[1]}" s
    ref_report "${ut[0]}" "${ut[3]:-}" s
fi
if want rt; then
    run roundtrip "$NATIVE" "$MNT" ${REF:+"$REF"}
    printf '%-34s %10sus %10sus %8s\n' "round trip: getxattr(2)" "${R[0]}" "${R[1]}" "$(ratio "${R[1]}" "${R[0]}")"
    ref_report "${R[0]}" "${R[2]:-}" us
    echo "  (every FUSE request costs at least this)"
    if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        # Where the time goes: a daemon held on CPU 0, the caller on CPU 0
        # (each wakes the other on the CPU it runs on) or on CPU 1 (each
        # request and reply wakes the other CPU from idle).
        pin=$DATA/mnt-pin
        mkdir -p "$DATA/backing-pin" "$pin"
        # shellcheck disable=SC2086
        taskset -c 0 "$HERMESFS" -f --state "$DATA/state.pin" ${BENCH_FS_MOUNT_OPTS:-} \
            "$DATA/backing-pin" "$pin" 2>>"$T/daemon.log" &
        PIDS+=($!)
        for _ in $(seq 200); do mounted "$pin" && break; sleep 0.05; done
        if mounted "$pin"; then
            one=$(RT_CPU=0 roundtrip "$pin") two=$(RT_CPU=1 roundtrip "$pin")
            printf '%-34s %10s   %10sus\n' "  daemon and caller on one CPU" "" "$one"
            printf '%-34s %10s   %10sus\n' "  daemon and caller on two CPUs" "" "$two"
            echo "  (the difference is the cost of waking an idle CPU: the machine's"
            echo "   part of every request, paid whenever the two run apart)"
        fi
    fi
fi
if want req; then
    # FUSE requests per file, counted on a debug mount: independent of the
    # machine's load, unlike the times above.
    dbg=$DATA/mnt-dbg
    mkdir -p "$DATA/backing-dbg" "$dbg"
    # shellcheck disable=SC2086
    "$HERMESFS" -f --state "$DATA/state.dbg" -o debug ${BENCH_FS_MOUNT_OPTS:-} \
        "$DATA/backing-dbg" "$dbg" 2>"$T/debug.log" &
    PIDS+=($!)
    for _ in $(seq 200); do mounted "$dbg" && break; sleep 0.05; done
    stat "$dbg" >/dev/null || { echo "debug mount failed"; exit 1; }
    nreq() { grep -ac 'opcode:' "$T/debug.log"; }
    n0=$(nreq); meta "$dbg" 1000 >/dev/null; sleep 0.5; n1=$(nreq)
    printf '%-34s %10s\n' "requests per file: create+stat+delete" \
        "$("$PYTHON" -c "print('%.1f' % (($n1 - $n0) / 1000))")"
    # Which ones (per file), to see what is left to save.
    grep -ao "opcode: [A-Z_]*" "$T/debug.log" | tail -n $((n1 - n0)) |
        sort | uniq -c | sort -rn |
        awk '$1 >= 5 { printf "%s %.2f %s", (n++ ? "," : "  "), $1 / 1000, $3 } END { print "" }'
    if [ -f "$T/tree.tar" ]; then
        n0=$(nreq)
        mkdir "$dbg/tree"
        tar -C "$dbg/tree" -xf "$T/tree.tar"
        tar -C "$dbg/tree" -cf - . | cat > /dev/null
        n1=$(nreq)
        rm -rf "$dbg/tree"
        printf '%-34s %10s\n' "requests per file: extract + tar" \
            "$("$PYTHON" -c "print('%.1f' % (($n1 - $n0) / 5000))")"
    fi
    echo "  (natively: 5 system calls per file for create+stat+delete; tar makes"
    echo "   ~15 per file, its archive I/O included)"
fi
if want write || want meta || want tar; then
    echo
    echo "journaling on vs off (same mount options; ratio = on/off time)"
    printf '%-34s %12s %12s %8s\n' workload off on ratio
fi
want write && printf '%-34s %10ss %10ss %8s\n' "seq write ${SIZE_MB} MiB + fsync" "${sw[2]}" "${sw[1]}" "$(ratio "${sw[1]}" "${sw[2]}")"
want meta && printf '%-34s %10ss %10ss %8s\n' "create+stat+delete 10,000 files" "${me[2]}" "${me[1]}" "$(ratio "${me[1]}" "${me[2]}")"
want tar && printf '%-34s %10ss %10ss %8s\n' "extract + tar 5,000-file tree" "${ut[2]}" "${ut[1]}" "$(ratio "${ut[1]}" "${ut[2]}")"
true
