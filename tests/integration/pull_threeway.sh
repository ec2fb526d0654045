#!/usr/bin/env bash
# Every three-way case of sync-back, through a real store and a real
# local: transport: base = ledger (seeded as a push would), host = $H,
# remote = $R. Then the other policies, the portable listing, no echo.
source "$(dirname "$0")/lib.sh"
TOOL=$HERMES_BUILD/itests/tool_pull
[ -x "$TOOL" ] || fail "missing $TOOL"

# setup NAME: host and sandbox hold the same tree, pushed long ago.
setup() {
    H=$T/$1/host R=$T/$1/remote DB=$T/$1/state.db
    mkdir -p "$H" "$R"
    (cd "$H" && mkdir -p dir keepdir && for f in r1 h1 b1 c1 d1 d2 d3 d4 e1 m1 t1 t2 dir/x dir/y keepdir/z; do
        printf 'base %s\n' "$f" > "$f"; done && chmod 600 h1)
    cp -a "$H/." "$R/"
    find "$H" "$R" -exec touch -h -d @1600000000 {} +
    "$TOOL" seed "$DB" sbx "local:$R" "$R" || fail "seed"
}
pull() { "$TOOL" pull "$DB" sbx "local:$R" "$H" "$@" > "$T/out" 2>&1; local rc=$?; cat "$T/out"; return $rc; }
content() { cat "$1" 2>/dev/null || echo "<absent>"; }
stat_of() { grep -o "$1=[0-9]*" "$T/out" | cut -d= -f2; }

note "conflict-copy (default)"
setup cc
printf 'remote new\n' > "$R/r1"                    # remote only
printf 'host new\n' > "$H/h1"                      # host only
printf 'same\n' > "$R/b1"; printf 'same\n' > "$H/b1"   # both, same
printf 'remote c1\n' > "$R/c1"; printf 'host c1\n' > "$H/c1"   # both, different
rm "$R/d1"                                         # remote deleted, host same
rm "$R/d2"; printf 'host d2\n' > "$H/d2"           # remote deleted, host modified
rm "$H/d3"; printf 'remote d3\n' > "$R/d3"         # host deleted, remote modified
rm "$H/d4"                                         # host deleted, remote same
mkdir -p "$R/newdir/sub"; printf 'n1\n' > "$R/newdir/sub/n1"; chmod 640 "$R/newdir/sub/n1"   # new remote
printf 'n2\n' > "$R/n2"; printf 'n2\n' > "$H/n2"   # new on both, same
printf 'n3 remote\n' > "$R/n3"; printf 'n3 host\n' > "$H/n3"   # new on both, different
chmod 700 "$R/m1"                                  # remote mode change
printf '#!/bin/sh\n' > "$R/s1"; chmod 4755 "$R/s1" # setuid from the sandbox
ln -s r1 "$R/l1"                                   # new symlink
rm -r "$R/dir"                                     # remote dir deleted, host same
touch "$H/keepdir/hostnew"; rm -r "$R/keepdir"     # remote dir deleted, host has a new file
mkdir "$R/sp ace"; printf 'odd\n' > "$R/sp ace/$(printf 'new\nline')"   # odd names
rm "$R/e1" "$H/e1"                                 # deleted on both sides
rm "$R/t1"; mkdir "$R/t1"; printf 'in t1\n' > "$R/t1/f"   # file -> dir remotely
rm "$R/t2"; ln -s r1 "$R/t2"                       # file -> symlink remotely
chmod 640 "$H/b1"                                  # host mode only (b1 also same content)

pull || fail "pull failed"
assert_eq "$(content "$H/r1")" "remote new" "remote only"
assert_eq "$(content "$H/h1")" "host new" "host only"
assert_eq "$(stat -c %a "$H/h1")" "600" "host only mode"
assert_eq "$(content "$H/b1")" "same" "both same"
assert_eq "$(stat -c %a "$H/b1")" "640" "host mode kept"
assert_absent "$H/e1"
"$TOOL" ledger "$DB" sbx | grep -q '^e1 ' && fail "both deleted: ledger row kept"
assert_eq "$(content "$H/t1/f")" "in t1" "file replaced by a directory"
assert_eq "$(readlink "$H/t2")" "r1" "file replaced by a symlink"
assert_eq "$(content "$H/c1")" "remote c1" "both different: remote at path"
copies=("$H"/c1.conflict-sbx-*)
[ ${#copies[@]} -eq 1 ] && [ -f "${copies[0]}" ] || fail "no conflict copy for c1"
[[ ${copies[0]} =~ c1\.conflict-sbx-[0-9]{8}T[0-9]{6}Z$ ]] || fail "bad copy name ${copies[0]}"
assert_eq "$(content "${copies[0]}")" "host c1" "both different: host kept"
assert_absent "$H/d1"
assert_eq "$(content "$H/d2")" "host d2" "remote deleted, host modified"
assert_absent "$H/d3"
d3=("$H"/d3.conflict-sbx-*)
assert_eq "$(content "${d3[0]}")" "remote d3" "host deleted, remote modified: restored as copy"
assert_absent "$H/d4"
assert_eq "$(content "$H/newdir/sub/n1")" "n1" "new remote"
assert_eq "$(stat -c %a "$H/newdir/sub/n1")" "640" "new remote mode"
assert_eq "$(content "$H/n2")" "n2" "new both same"
[ -z "$(ls "$H" | grep '^n2\.conflict')" ] || fail "n2 should not conflict"
assert_eq "$(content "$H/n3")" "n3 remote" "new both different"
n3=("$H"/n3.conflict-sbx-*)
assert_eq "$(content "${n3[0]}")" "n3 host" "new both different: host kept"
assert_eq "$(stat -c %a "$H/m1")" "700" "mode change"
assert_eq "$(content "$H/m1")" "base m1" "mode change keeps content"
assert_eq "$(stat -c %a "$H/s1")" "755" "setuid stripped"
assert_eq "$(readlink "$H/l1")" "r1" "symlink"
assert_absent "$H/dir"
assert_exists "$H/keepdir/hostnew"
assert_eq "$(content "$H/sp ace/$(printf 'new\nline')")" "odd" "odd names"
assert_eq "$(stat_of conflicts)" 3 "conflict count"
grep -q '^conflict: c1: ' "$T/out" || fail "conflict not reported"
grep -q 'kept host version of d2' "$T/out" || fail "kept not reported"
"$TOOL" conflicts "$DB" | grep -q "^1 c1 c1.conflict-sbx-" || fail "conflict not recorded"
ls -A "$H" | grep -q hermesfs-pull && fail "temp files left"
find "$H" -name '.hermesfs-pull*' | grep -q . && fail "temp files left"

# Journaled for the other sandboxes with origin = this sandbox (1); the
# host-side copies and re-pushes with origin 0.
"$TOOL" journal "$DB" > "$T/j"
grep -q ' write 1 r1$' "$T/j" || { cat "$T/j"; fail "r1 not journaled with origin 1"; }
grep -q ' create 1 newdir/sub/n1$' "$T/j" || fail "n1 not journaled"
grep -q ' unlink 1 d1$' "$T/j" || fail "d1 deletion not journaled"
grep -q ' symlink 1 l1 r1$' "$T/j" || fail "l1 not journaled"
grep -q " create 0 c1.conflict-sbx-" "$T/j" || fail "conflict copy not journaled"
grep -q ' write 0 d2$' "$T/j" || fail "kept host d2 not re-pushed"
grep -q ' h1$' "$T/j" && fail "host-only change touched"

note "second pull: nothing to do (ledger updated, no echo)"
pull || fail "second pull failed"
assert_eq "$(stat_of fetched)" 0 "second pull fetched"
assert_eq "$(stat_of applied)" 0 "second pull applied"
assert_eq "$(stat_of conflicts)" 0 "second pull conflicts"

note "touch without content change: fetched once, nothing applied"
# Listings may carry whole seconds only (portable stat), so move the mtime by
# whole seconds: a same-second touch is indistinguishable by design.
touch -d "@$(( $(stat -c %Y "$R/r1") + 5 ))" "$R/r1"
pull || fail "touch pull"
assert_eq "$(stat_of fetched)" 1 "touched fetched"
assert_eq "$(stat_of applied)" 0 "touched applied"
pull || fail "touch pull 2"
assert_eq "$(stat_of fetched)" 0 "touched fetched again"

note "host-wins"
setup hw
printf 'remote c1\n' > "$R/c1"; printf 'host c1\n' > "$H/c1"
pull --policy host-wins || fail "pull host-wins"
assert_eq "$(content "$H/c1")" "host c1" "host-wins keeps host"
[ -z "$(ls "$H" | grep conflict)" ] || fail "host-wins made a copy"
"$TOOL" journal "$DB" | grep -q ' write 0 c1$' || fail "host-wins does not re-push"
pull --policy host-wins || fail "pull host-wins 2"
assert_eq "$(stat_of kept)" 0 "host-wins is not re-decided"

note "remote-wins"
setup rw
printf 'remote c1\n' > "$R/c1"; printf 'host c1\n' > "$H/c1"
pull --policy remote-wins || fail "pull remote-wins"
assert_eq "$(content "$H/c1")" "remote c1" "remote-wins"
[ -z "$(ls "$H" | grep conflict)" ] || fail "remote-wins made a copy"

note "portable listing (sh + stat)"
setup pt
printf 'remote new\n' > "$R/r1"; rm "$R/d1"; mkdir "$R/nd"; printf 'x\n' > "$R/nd/f"
pull --portable || fail "portable pull"
assert_eq "$(content "$H/r1")" "remote new" "portable: remote only"
assert_absent "$H/d1"
assert_eq "$(content "$H/nd/f")" "x" "portable: new"
pull --portable || fail "portable pull 2"
assert_eq "$(stat_of fetched)" 0 "portable: second pull"

note "new files whose names exceed what one sh -c argument holds (128 KiB)"
setup many
long=$(printf 'n%.0s' {1..230})
mkdir "$R/many"
for i in $(seq 1 640); do printf '%s\n' "$i" > "$R/many/$long.$i"; done
pull || fail "pull of many long names"
assert_eq "$(stat_of fetched)" 640 "all fetched"
assert_eq "$(cat "$H/many/$long.640")" "640" "last one applied"
echo ok
