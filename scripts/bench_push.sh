#!/usr/bin/env bash
# Push over loopback SSH, each figure with its baseline measured in this run:
#  1. cold push of 10,000 files / 100 MB vs `tar c | ssh host tar x` and
#     vs `rsync -a` over OpenSSH (medians of rounds in rotated order);
#  2. incremental push of 1 changed file in a 100,000-file tree vs the same
#     change in a 1,000-file tree (cost must follow changes, not tree size),
#     and `rsync -a` of the same trees over OpenSSH (which stats everything).
# The sshd is private to the bench; its sessions get HOME set to an empty
# directory (sshd SetEnv) so a heavy ~/.bashrc on this machine does not add
# seconds to every remote command, for every tool alike.
# BENCH_PUSH_BIG=N overrides the 100,000 (for quick runs); BENCH_PUSH_ROUNDS
# (default 3) the number of cold rounds.
source "$(dirname "$0")/../tests/integration/lib.sh"
source "$(dirname "$0")/../tests/integration/lib_sshd.sh"
TOOL=$HERMES_BUILD/itests/tool_push
BIG=${BENCH_PUSH_BIG:-100000}
ROUNDS=${BENCH_PUSH_ROUNDS:-3}
[ -x "$TOOL" ] || fail "build first ($TOOL missing)"
command -v rsync >/dev/null || { apt-get install -y -qq rsync >/dev/null 2>&1 || echo "rsync unavailable: its columns are skipped"; }

start_sshd
# A second sshd from the same keys with a light session environment.
mkdir -p "$T/home"
PORT2=$(free_port)
sed -e "s/^Port .*/Port $PORT2/" -e "s|^PidFile .*|PidFile $T/sshd/sshd2.pid|" "$T/sshd/sshd_config" > "$T/sshd/sshd2_config"
echo "SetEnv HOME=$T/home" >> "$T/sshd/sshd2_config"
/usr/sbin/sshd -D -e -f "$T/sshd/sshd2_config" 2>>"$T/sshd/sshd2.log" &
SSHD2=$!; at_exit "kill $SSHD2"
WAIT_S=10 wait_for _sshd_listening "$PORT2" "$SSHD2" || fail "second sshd did not start"
echo "[127.0.0.1]:$PORT2 $(cut -d' ' -f1,2 "$T/sshd/host_ed25519.pub")" >> "$SSH_KNOWN_HOSTS"
SSHP="ssh -i $SSH_KEY -p $PORT2 -o UserKnownHostsFile=$SSH_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes"
HOSTSPEC=$SSH_USER@127.0.0.1
URLBASE="ssh://$SSH_USER@127.0.0.1:$PORT2"

now() { date +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (b-a)*1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }

# make_tree DIR FILES SIZE: FILES files of SIZE bytes, 100 per directory
make_tree() {
    python3 - "$1" "$2" "$3" <<'EOP'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
blob = os.urandom(max(size, 1))
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%03d" % (i % 100)), "wb") as f:
        f.write(blob[: size // 2] + str(i).encode() + blob[size // 2 + len(str(i)):size] if size else b"")
EOP
}

per_call=$("$TOOL" stream "$URLBASE$T" true 5) || fail "ssh stream"
echo "loopback ssh: one remote command over an open connection: $per_call ms (median of 5)"

# incr NAME FILES: cold push, then the median of 5 one-file pushes
incr() {
    local name=$1 n=$2 db=$T/$1.db src=$T/$1.src t0 t1
    mkdir -p "$src"; make_tree "$src" "$n" 200
    "$TOOL" sandbox "$db" s "$URLBASE$T/$name.dst" || fail "sandbox"
    t0=$(now); "$TOOL" push "$db" s "$src" > /dev/null || fail "cold push $name"; t1=$(now)
    COLD=$(ms "$t0" "$t1")
    INC=$("$TOOL" bench "$db" s "$src" d0000/f007 5) || fail "incremental push $name"
    # rsync of the same tree after the same kind of change (already in sync)
    RS=n/a
    if command -v rsync >/dev/null; then
        rsync -a -e "$SSHP" "$src/" "$HOSTSPEC:$T/$name.rs/" || fail "rsync seed"
        echo "rsync round" > "$src/d0000/f007"
        t0=$(now); rsync -a -e "$SSHP" "$src/" "$HOSTSPEC:$T/$name.rs/" || fail rsync; t1=$(now)
        RS=$(ms "$t0" "$t1")
    fi
}

# Cold first: the incremental part creates and deletes 100,000s of files,
# and on ext4 without a journal every new inode then scans past recently
# deleted ones, slowing whichever tool runs next. Each round gives every
# tool a fresh destination (nothing is deleted until all rounds are done),
# starts each tool after `sync` (no earlier tool's writeback pending), and
# rotates the order; figures are medians.
echo "--- cold: 10,000 files / 100 MB, median of $ROUNDS rounds, order rotated"
src=$T/cold.src; mkdir -p "$src"; make_tree "$src" 10000 10000
cold_one() {	# TOOL ROUND: appends "TOOL ms" to $T/cold.res
    local d=$T/cold.$1.$2 t0 t1
    sync
    case $1 in
    hermesfs) "$TOOL" sandbox "$d.db" s "$URLBASE$d" || fail sandbox
        t0=$(now); "$TOOL" push "$d.db" s "$src" > /dev/null || fail "cold push"; t1=$(now)
        diff -rq -x .hermesfs-sandbox "$src" "$d" >&2 || fail "cold push: trees differ" ;;
    tar) t0=$(now); tar cf - -C "$src" . | $SSHP "$HOSTSPEC" "mkdir -p $d && tar xf - -C $d" || fail "tar|ssh"; t1=$(now) ;;
    rsync) t0=$(now); rsync -a -e "$SSHP" "$src/" "$HOSTSPEC:$d/" || fail rsync; t1=$(now) ;;
    esac
    echo "$1 $(ms "$t0" "$t1")" >> "$T/cold.res"
}
median() { awk -v t="$1" '$1 == t { print $2 }' "$T/cold.res" | sort -n | awk '{ a[NR] = $1 } END { print NR ? a[int((NR + 1) / 2)] : "n/a" }'; }
all_of() { awk -v t="$1" '$1 == t { printf "%s ", $2 }' "$T/cold.res"; }
tools=(hermesfs tar); command -v rsync >/dev/null && tools+=(rsync)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#tools[@]}; k++)); do cold_one "${tools[(k + r) % ${#tools[@]}]}" "$r"; done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
H=$(median hermesfs) TS=$(median tar) RS=$(median rsync)
printf '%-22s %10s   (all: %s)\n' "hermesfs push" "$H ms" "$(all_of hermesfs)" \
    "tar c | ssh tar x" "$TS ms" "$(all_of tar)" "rsync -a over ssh" "$RS ms" "$(all_of rsync)"
echo "hermesfs / tar|ssh: $(ratio "$H" "$TS")x (target <= 1.3x); hermesfs / rsync: $(ratio "$H" "$RS")x (target < 1)"
rm -rf "$T"/cold.*

echo "--- incremental: 1 changed file"
incr small 1000; S_INC=$INC; S_RS=$RS; S_COLD=$COLD
incr big "$BIG"; B_INC=$INC; B_RS=$RS; B_COLD=$COLD
printf '%-22s %12s %12s %10s\n' "tree" "hermesfs ms" "rsync -a ms" "cold ms"
printf '%-22s %12s %12s %10s\n' "1,000 files" "$S_INC" "$S_RS" "$S_COLD"
printf '%-22s %12s %12s %10s\n' "$BIG files" "$B_INC" "$B_RS" "$B_COLD"
echo "hermesfs ${BIG}-file / 1,000-file: $(ratio "$B_INC" "$S_INC")x (target <= 1.5x); absolute ${B_INC} ms (target <= 100 ms)"
echo "rsync -a ${BIG}-file / hermesfs ${BIG}-file: $(ratio "$B_RS" "$B_INC")x"
