#!/usr/bin/env bash
# Soak (issue 8.5): SOAK_SECONDS (default 600) of concurrent writers through
# the mount, background pushes to two sandboxes (local: and ssh:// to a real
# sshd: the daemon's auto-push plus an explicit sync loop), periodic pulls
# with sandbox-side edits (new files, and edits of files the writers also
# change: conflicts), then flush both. Asserts: trees equal, every file the
# sandboxes created is on the host, every conflict copy on the host is listed
# by `status --json` and their number equals the conflicts the pulls
# reported, and the daemon's RSS at the end is at most 2x + 20 MiB its RSS
# at the start (both printed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sshd.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
SOAK_SECONDS=${SOAK_SECONDS:-600}
MANIFEST_EXCLUDE="^\.hermesfs-"
H=$T/home ST=$T/state L=$T/local R=$T/remote LOG=$T/daemon.log
mkdir -p "$H" "$L" "$T/ops"
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }
start_sshd
export XDG_CONFIG_HOME=$T/config
mkdir -p "$T/config/hermesfs"
printf '[defaults]\nretry = 0.5,1,2\n' > "$T/config/hermesfs/config"
"$HERMESFS" -f --state "$ST" --sandbox loc="local:$L" \
    --sandbox rem="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$R" "$H" 2>>"$LOG" &
DPID=$!
wait_for mounted || { cat "$LOG"; fail "mount did not appear"; }
for i in $(seq 50); do printf 'seed %s\n' "$i" > "$H/seed$i"; done
ctl sync >/dev/null || fail "first sync"
RSS0=$(rss_kb)
END=$((SECONDS + SOAK_SECONDS))

# writer N: rewrites w$N.*, appends, creates/renames/removes scratch files.
writer() {
    local i=0 n=$1
    mkdir -p "$H/dir$n"
    while [ $SECONDS -lt $END ]; do
        i=$((i + 1))
        printf '%s %s %s\n' "$n" "$i" "$(head -c $((RANDOM % 4000)) /dev/zero | tr '\0' x)" > "$H/w$n.$((i % 20))"
        printf '%s\n' "$i" >> "$H/dir$n/log"
        case $((i % 10)) in
        0) head -c $((RANDOM * 8)) /dev/urandom > "$H/dir$n/tmp.$i" ;;
        3) mv "$H/dir$n/tmp.$((i - 3))" "$H/dir$n/kept.$((i % 50))" 2>/dev/null ;;
        7) rm -f "$H/dir$n/kept.$(((i + 20) % 50))" ;;
        esac
    done
    echo "$i" > "$T/ops/writer$n"
}
pusher() {
    local k=0
    while [ $SECONDS -lt $END ]; do
        ctl sync >/dev/null 2>&1; k=$((k + 1)); sleep 2
    done
    echo "$k" > "$T/ops/pusher"
}
# The sandboxes' side: new files, and edits of files the writers change;
# then pull. Counts the conflicts the pulls report.
puller() {
    local k=0 c=0 sb dir out
    while [ $SECONDS -lt $END ]; do
        sleep 3; k=$((k + 1))
        for sb in loc rem; do
            [ $sb = loc ] && dir=$L || dir=$R
            printf 'from %s %s\n' $sb $k > "$dir/sb-$sb.$k"
            [ -f "$dir/w1.$((k % 20))" ] && printf 'sandbox %s %s\n' $sb $k > "$dir/w1.$((k % 20))"
            out=$(ctl pull $sb 2>&1)
            c=$((c + $(sed -n 's/.*, \([0-9]*\) conflicts\? kept aside.*/\1/p' <<< "$out" | head -1)0 / 10))
        done
    done
    echo "$k $c" > "$T/ops/puller"
}
writer 1 & W1=$!; writer 2 & W2=$!; writer 3 & W3=$!
pusher & P=$!; puller & Q=$!
wait $W1 $W2 $W3 $P $Q
note "flush"
conf=$(cut -d' ' -f2 "$T/ops/puller") k=$(cut -d' ' -f1 "$T/ops/puller")
for round in 1 2 3; do
    for sb in loc rem; do
        out=$(ctl flush $sb 2>&1); rc=$?
        [ $rc = 0 ] || [ $rc = 5 ] || { echo "$out"; fail "flush $sb: exit $rc"; }
        conf=$((conf + $(sed -n 's/.*, \([0-9]*\) conflicts\? kept aside.*/\1/p' <<< "$out" | head -1)0 / 10))
    done
done
ctl sync >/dev/null || fail "final sync"
RSS1=$(rss_kb)
assert_trees_equal "$H" "$L"
assert_trees_equal "$H" "$R"
for ((i = 1; i <= k; i++)); do
    assert_eq "$(cat "$H/sb-loc.$i")" "from loc $i" "sandbox file sb-loc.$i"
    assert_eq "$(cat "$H/sb-rem.$i")" "from rem $i" "sandbox file sb-rem.$i"
done
ctl status --json > "$T/status.json" || fail "status"
(cd "$H" && find . -name '*.conflict-*' -printf '%P\n' | sort) > "$T/copies.disk"
python3 -c 'import json,sys
for b in json.load(open(sys.argv[1]))["sandboxes"]:
    for c in b["conflict_copies"]: print(c["copy"])' "$T/status.json" | sort > "$T/copies.status"
diff -u "$T/copies.disk" "$T/copies.status" || fail "conflict copies unaccounted for"
copies=$(grep -c . "$T/copies.disk")
assert_eq "$copies" "$conf" "conflict copies vs conflicts reported by pulls"
ops=$(( $(cat "$T/ops/writer1") + $(cat "$T/ops/writer2") + $(cat "$T/ops/writer3") ))
echo "soak: ${SOAK_SECONDS} s, writer iterations $ops (each 2-3 file ops), syncs $(cat "$T/ops/pusher"),"\
     "pull rounds $k (x2 sandboxes), conflict copies $copies (all accounted), files $(find "$H" -type f | wc -l)"
echo "soak: daemon RSS start ${RSS0} kB, end ${RSS1} kB"
[ "$RSS1" -le $((RSS0 * 2 + 20480)) ] || fail "RSS grew from $RSS0 kB to $RSS1 kB"
ctl umount >/dev/null || fail "umount"
wait "$DPID" || fail "daemon exit status"
echo ok
