#!/usr/bin/env bash
# Pull (sync-back) over loopback SSH: 3 files changed in a 10,000-file tree.
# Prints the bytes the pull read (listing + tar of the changed files) against
# the size of a full tar of the tree, and its time against OpenSSH's
# `ssh host tar c | tar x` of the whole tree, both measured in this run.
# Fails if the pull transfers 5% or more of the full tar's bytes.
# Env: BENCH_PULL_FILES (default 10000), BENCH_PULL_DIRS (default 100).
HERMES_SRC=${HERMES_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
source "$HERMES_SRC/tests/integration/lib.sh"
source "$HERMES_SRC/tests/integration/lib_sshd.sh"
TOOL=$HERMES_BUILD/itests/tool_pull
[ -x "$TOOL" ] || fail "missing $TOOL (run make first)"
NF=${BENCH_PULL_FILES:-10000} ND=${BENCH_PULL_DIRS:-100}
start_sshd

R=$T/sandbox H=$T/host DB=$T/state.db
mkdir -p "$R" "$H"
# NF files of 1..8 KiB (random content) in ND directories
python3 - "$R" "$NF" "$ND" <<'EOF' || fail "tree"
import os, random, sys
root, nf, nd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
for d in range(nd):
    os.makedirs(f"{root}/dir{d:03d}", exist_ok=True)
for i in range(nf):
    with open(f"{root}/dir{i % nd:03d}/file{i:05d}.dat", "wb") as f:
        f.write(os.urandom(rnd.randint(1024, 8192)))
EOF
find "$R" -exec touch -h -d @1600000000 {} +
cp -a "$R/." "$H/"
"$TOOL" seed "$DB" sbx "local:$R" "$R" || fail "seed"   # as if just pushed
URL="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$R"
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
field() { grep -o "$1=[0-9]*" "$2" | head -1 | cut -d= -f2; }

# Baseline: what a full sync-back costs with OpenSSH (the original agent's way).
full_bytes=$(ssh $SSH_OPTS "$SSH_USER@127.0.0.1" "cd '$R' && tar cf - ." | wc -c)
mkdir "$T/full"
t0=$(now)
ssh $SSH_OPTS "$SSH_USER@127.0.0.1" "cd '$R' && tar cf - ." | tar xf - -C "$T/full" || fail "ssh tar"
t1=$(now)
full_ms=$(ms "$t0" "$t1")

# Nothing changed: the listing alone.
t0=$(now)
"$TOOL" pull "$DB" sbx "$URL" "$H" > "$T/idle" || { cat "$T/idle"; fail "idle pull"; }
t1=$(now)
idle_ms=$(ms "$t0" "$t1")

# 3 files changed on the sandbox.
for i in 17 4242 9001; do
    f=$(printf '%s/dir%03d/file%05d.dat' "$R" $((i % ND)) "$i")
    [ -f "$f" ] || continue
    head -c 5000 /dev/urandom > "$f"
done
t0=$(now)
"$TOOL" pull "$DB" sbx "$URL" "$H" > "$T/out" || { cat "$T/out"; fail "pull"; }
t1=$(now)
pull_ms=$(ms "$t0" "$t1")
cat "$T/out"
[ "$(field applied "$T/out")" = 3 ] || fail "expected 3 files applied"
diff -r -x .hermesfs-sandbox "$R" "$H" >/dev/null || fail "host and sandbox differ after the pull"

bytes=$(field bytes_in "$T/out")
idle_bytes=$(field bytes_in "$T/idle")
ratio=$(awk -v a="$bytes" -v b="$full_bytes" 'BEGIN { printf "%.2f", 100 * a / b }')
speed=$(awk -v a="$full_ms" -v b="$pull_ms" 'BEGIN { printf "%.1f", b ? a / b : 0 }')
echo "tree: $NF files in $ND dirs, full tar $full_bytes bytes"
echo "pull, 3 changed: bytes_in=$bytes (listing + tar) = $ratio% of the full tar (limit 5%)"
echo "pull, nothing changed: bytes_in=$idle_bytes, ${idle_ms} ms"
echo "time: pull ${pull_ms} ms vs ssh tar c | tar x of the whole tree ${full_ms} ms (${speed}x)"
awk -v a="$bytes" -v b="$full_bytes" 'BEGIN { exit !(a < 0.05 * b) }' ||
    fail "the pull transferred $ratio% of a full tar (must be under 5%)"
echo "ok: under 5%"
