#!/usr/bin/env bash
# Fan-out of sync-back: one journal, two sandboxes. A change pulled from
# sandbox A (modify, create, delete, conflict) reaches sandbox B with the
# next push to B, and is not pushed back to A (its ledger already holds it).
# Real store, real push and pull engines, real local: transports.
source "$(dirname "$0")/lib.sh"
PULL=$HERMES_BUILD/itests/tool_pull PUSH=$HERMES_BUILD/itests/tool_push
[ -x "$PULL" ] && [ -x "$PUSH" ] || fail "missing tool_pull or tool_push"
H=$T/host RA=$T/a RB=$T/b DB=$T/state.db
mkdir -p "$H/dir" "$RA" "$RB"
for f in keep mod gone both dir/x; do printf 'base %s\n' "$f" > "$H/$f"; done
"$PUSH" sandbox "$DB" A "local:$RA" || fail "sandbox A"
"$PUSH" sandbox "$DB" B "local:$RB" || fail "sandbox B"
push() { "$PUSH" push "$DB" "$1" "$H" > "$T/push.out" 2>&1; local rc=$?; cat "$T/push.out"; return $rc; }
pull() { "$PULL" pull "$DB" "$1" "local:$2" "$H" > "$T/pull.out" 2>&1; local rc=$?; cat "$T/pull.out"; return $rc; }
pstat() { grep -o "$1=[0-9]*" "$T/push.out" | head -1 | cut -d= -f2; }
lstat() { grep -o "$1=[0-9]*" "$T/pull.out" | head -1 | cut -d= -f2; }
MANIFEST_EXCLUDE='^\.hermesfs-'

note "first pushes: both sandboxes hold the host tree"
push A || fail "push A"; push B || fail "push B"
assert_trees_equal "$H" "$RA"; assert_trees_equal "$H" "$RB"

note "sandbox A changes things; the host pulls them"
printf 'from A\n' > "$RA/mod"
printf 'new in A\n' > "$RA/dir/new"
rm "$RA/gone"
printf 'A both\n' > "$RA/both"; printf 'host both\n' > "$H/both"
# the host's own change goes through the journal as the mount would do it
"$PUSH" j "$DB" write both || fail "journal host write"
pull A "$RA" || fail "pull A"
assert_eq "$(cat "$H/mod")" "from A" "pulled"
assert_eq "$(cat "$H/dir/new")" "new in A" "pulled new"
assert_absent "$H/gone"
assert_eq "$(cat "$H/both")" "A both" "conflict: sandbox version at the path"
copy=$(cd "$H" && ls both.conflict-A-*) || fail "no conflict copy"

note "push to A: nothing pulled from A goes back"
push A || fail "push A after pull"
[ "$(pstat uploaded)" -le 1 ] || fail "echo: $(pstat uploaded) uploads to A"
assert_eq "$(pstat deleted)" 0 "echoed deletion to A"
# the only upload allowed is the host's conflict copy (a new host file)
assert_eq "$(cat "$RA/$copy")" "host both" "conflict copy reaches A"
assert_eq "$(cat "$RA/both")" "A both" "A keeps its version"
assert_trees_equal "$H" "$RA"

note "push to B: the pulled changes fan out"
push B || fail "push B"
assert_eq "$(cat "$RB/mod")" "from A" "modification fanned out"
assert_eq "$(cat "$RB/dir/new")" "new in A" "creation fanned out"
assert_absent "$RB/gone"
assert_eq "$(cat "$RB/both")" "A both" "conflict resolution fanned out"
assert_trees_equal "$H" "$RB"

note "nothing left to do anywhere"
push A || fail "push A again"; assert_eq "$(pstat uploaded)" 0 "push A again"
push B || fail "push B again"; assert_eq "$(pstat uploaded)" 0 "push B again"
pull A "$RA" || fail "pull A again"; assert_eq "$(lstat applied)" 0 "pull A again"
assert_eq "$(lstat fetched)" 0 "pull A again: fetched"
pull B "$RB" || fail "pull B"; assert_eq "$(lstat applied)" 0 "pull B"
assert_eq "$(lstat fetched)" 0 "pull B: fetched"
echo ok
