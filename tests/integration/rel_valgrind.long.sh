#!/usr/bin/env bash
# Valgrind memcheck of one full scenario (issue 8.4): the daemon runs under
# `valgrind --leak-check=full --error-exitcode=99`; through the real mount
# and CLI: writes, sync to a local and a cmd: sandbox, exec, sandbox-side
# edits pulled back (one conflict), flush, umount. The daemon must exit 0
# with "ERROR SUMMARY: 0 errors" and no definite or possible leak.
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
command -v valgrind >/dev/null || fail "valgrind not installed"
MANIFEST_EXCLUDE="^\.hermesfs-"
H=$T/home ST=$T/state L=$T/local C=$T/cmdroot VG=$T/valgrind.log
mkdir -p "$H" "$L" "$C"
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }
valgrind --leak-check=full --error-exitcode=99 --log-file="$VG" \
    "$HERMESFS" -f -o auto-push=no --state "$ST" --sandbox loc="local:$L" \
    --sandbox cmd="cmd:sh -c 'exec \"\$@\"' hermes#$C" "$H" 2>>"$T/daemon.log" &
DPID=$!
WAIT_S=120 wait_for mounted || { cat "$T/daemon.log" "$VG"; fail "mount did not appear"; }

note "writes"
for i in $(seq 30); do printf 'file %s\n' "$i" > "$H/f$i"; done
mkdir -p "$H/d/e"; head -c 300000 /dev/urandom > "$H/d/e/blob"
ln -s f1 "$H/link"; mv "$H/f30" "$H/d/moved"; rm "$H/f29"; chmod 600 "$H/f28"
note "sync"
WAIT_S=120 ctl sync >/dev/null || fail "sync"
assert_trees_equal "$H" "$L"; assert_trees_equal "$H" "$C"
note "exec"
assert_eq "$(ctl exec -s loc -- 'cat f1; cd d; pwd')" "file 1"$'\n'"$L/d" "exec output"
assert_eq "$(ctl exec -s loc -- 'pwd')" "$L/d" "tracked cwd"
assert_eq "$(ctl exec -s cmd -- 'cat f2')" "file 2" "cmd exec"
ctl exec -s cmd -t 1 -- 'sleep 20' >/dev/null; assert_eq "$?" 124 "exec timeout"
note "pull with a conflict"
printf 'sandbox\n' > "$L/f1"; printf 'host\n' > "$H/f1"; touch -d '+3 seconds' "$L/f1"
printf 'new\n' > "$L/fromloc"; rm "$L/f2"
ctl pull loc >/dev/null; assert_eq "$?" 5 "pull with a conflict"
assert_eq "$(cat "$H/f1")" "sandbox" "remote applied"
ls "$H" | grep -q '^f1\.conflict-' || fail "no conflict copy"
note "flush"
printf 'c\n' > "$C/fromcmd"
ctl flush >/dev/null || fail "flush"
ctl sync >/dev/null || fail "sync"
assert_trees_equal "$H" "$L"; assert_trees_equal "$H" "$C"
ctl status --json >/dev/null && ctl log >/dev/null || fail "status/log"
note "umount"
ctl umount >/dev/null || fail "umount"
wait "$DPID"; rc=$?
grep -E "in use at exit|All heap blocks|ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable" "$VG"
[ "$rc" = 0 ] || { cat "$VG"; fail "daemon under valgrind exited $rc"; }
grep -q "ERROR SUMMARY: 0 errors" "$VG" || { cat "$VG"; fail "valgrind reported errors"; }
echo ok
