#!/usr/bin/env bash
# Gap 1: a push never destroys a sandbox-side change that was not pulled
# yet. Real mount, auto-push on, a local: and a cmd: sandbox. For a file
# changed on both sides, a directory the host removed while the sandbox
# added to it, a directory and a file renamed over paths the sandbox
# changed, and a file both sides created: the background push moves the
# sandbox's version aside (NAME.conflict-<sandbox>-<stamp>), `flush` brings
# it to the host, `status` lists the conflict. An untouched sandbox gets
# no conflict copy.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
B=$T/backing M=$T/mnt
mkdir -p "$B" "$M" "$T/loc" "$T/box"
export XDG_CONFIG_HOME=$T/config	# no user config file: auto-push on
mount_hermesfs "$B" "$M" --sandbox loc="local:$T/loc" --sandbox box="cmd:env#$T/box"
ctl() { "$FSCTL" -m "$M" "$@"; }
one() { local m=("$1"$2); [ ${#m[@]} = 1 ] && [ -e "${m[0]}" ] || fail "want one $1$2, got: ${m[*]}"; ONE=${m[0]}; }

mkdir -p "$M/d/sub" "$M/e" "$M/g"
echo base > "$M/f"; echo x > "$M/d/x"; echo s > "$M/d/sub/s"; echo y > "$M/e/y"
echo k1 > "$M/k1"; echo k2 > "$M/k2"; echo keep > "$M/keep"
ctl sync > "$T/out" 2>&1 || fail "sync: $(cat "$T/out")"
for sb in loc box; do
    R=$T/$sb
    [ "$(cat "$R/d/sub/s")" = s ] || fail "initial push to $sb"
    echo "sandbox $sb" > "$R/f"; touch -d '+3 seconds' "$R/f"   # both change f
    echo "new $sb" > "$R/d/new"                                  # host will rm -r d
    echo "in g $sb" > "$R/g/made"                                # host renames e over g
    echo "k2 $sb" > "$R/k2"; touch -d '+3 seconds' "$R/k2"       # host renames k1 over k2
    echo "n $sb" > "$R/n1"                                       # both create n1
done
echo "host f" > "$M/f"
rm -r "$M/d"
mv -T "$M/e" "$M/g"
mv "$M/k1" "$M/k2"
echo "host n" > "$M/n1"
echo keep2 > "$M/keep"
for sb in loc box; do
    R=$T/$sb
    WAIT_S=30 wait_for eval "[ \"\$(cat '$R/keep' 2>/dev/null)\" = keep2 ] && [ \"\$(cat '$R/n1' 2>/dev/null)\" = 'host n' ]" ||
        fail "auto-push to $sb did not happen: $(ctl status)"
    note "$sb: the sandbox's versions were moved aside, the host's put in place"
    assert_eq "$(cat "$R/f")" "host f" "$sb f"
    one "$R/f.conflict-$sb-" '*'; assert_eq "$(cat "$ONE")" "sandbox $sb" "$sb f copy"
    assert_absent "$R/d"
    one "$R/d.conflict-$sb-" '*'; assert_eq "$(cat "$ONE/new")" "new $sb" "$sb d/new kept"
    assert_eq "$(cat "$ONE/sub/s")" s "$sb d kept whole"
    assert_eq "$(cat "$R/g/y")" y "$sb renamed dir"
    one "$R/g.conflict-$sb-" '*'; assert_eq "$(cat "$ONE/made")" "in g $sb" "$sb g/made kept"
    assert_eq "$(cat "$R/k2")" k1 "$sb renamed file"
    one "$R/k2.conflict-$sb-" '*'; assert_eq "$(cat "$ONE")" "k2 $sb" "$sb k2 copy"
    assert_eq "$(cat "$R/n1")" "host n" "$sb n1"
    one "$R/n1.conflict-$sb-" '*'; assert_eq "$(cat "$ONE")" "n $sb" "$sb n1 copy"
    ls "$R" | grep -q '^keep\.conflict' && fail "$sb: conflict copy of an untouched file"
done

note "status lists the conflicts before the pull"
ctl status > "$T/st" 2>&1
grep -q "conflict" "$T/st" || fail "status: $(cat "$T/st")"
ctl status --json > "$T/st" 2>&1
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); c={b["name"]: b["conflicts"] for b in s["sandboxes"]}; assert c["loc"] >= 5 and c["box"] >= 5, c' "$T/st" ||
    fail "conflict count: $(cat "$T/st")"

note "flush brings every kept version to the host"
ctl flush > "$T/out" 2>&1; rc=$?
[ $rc = 0 ] || [ $rc = 5 ] || fail "flush: $rc $(cat "$T/out")"
assert_eq "$(cat "$M/f")" "host f" "host f"
assert_absent "$M/d"
for sb in loc box; do
    one "$M/f.conflict-$sb-" '*'; assert_eq "$(cat "$ONE")" "sandbox $sb" "host has $sb's f"
    one "$M/d.conflict-$sb-" '*'; assert_eq "$(cat "$ONE/new")" "new $sb" "host has $sb's d/new"
    one "$M/g.conflict-$sb-" '*'; assert_eq "$(cat "$ONE/made")" "in g $sb" "host has $sb's g/made"
    one "$M/k2.conflict-$sb-" '*'; assert_eq "$(cat "$ONE")" "k2 $sb" "host has $sb's k2"
    one "$M/n1.conflict-$sb-" '*'; assert_eq "$(cat "$ONE")" "n $sb" "host has $sb's n1"
done
ctl status > "$T/st" 2>&1
grep -q "conflict" "$T/st" || fail "status after flush: $(cat "$T/st")"

note "an untouched sandbox: no conflict, only the changed content is sent"
n0=$(ls "$T/loc" | grep -c conflict)
echo keep3 > "$M/keep"
ctl sync loc > "$T/out" 2>&1 || fail "sync: $(cat "$T/out")"
WAIT_S=30 wait_for eval "[ \"\$(cat '$T/loc/keep')\" = keep3 ]" || fail "keep3 not pushed"
assert_eq "$(ls "$T/loc" | grep -c conflict)" "$n0" "no new conflict copy"
grep -q warning "$T/out" && fail "warning on a clean push: $(cat "$T/out")"
echo ok
