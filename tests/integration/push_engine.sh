#!/usr/bin/env bash
# The sync engine over local: and cmd: sandboxes: flush (push then pull)
# of all, the background thread following the journal while one sandbox
# is broken (error state, the others converge), and sync-back of a change
# made in one sandbox reaching the other.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_push.sh"
DB=$T/store.db HOST=$T/host
mkdir -p "$HOST" "$T/a" "$T/b"
"$TOOL" sandbox "$DB" a "local:$T/a" || fail add
"$TOOL" sandbox "$DB" b "cmd:env#$T/b" || fail add
RANDOM=99
random_ops 30

note "flush all"
out=$("$TOOL" engine "$DB" "$HOST" flush) || fail "flush: $out"
fast_trees_equal "$HOST" "$T/a"; fast_trees_equal "$HOST" "$T/b"

note "background: follows the journal; a broken sandbox is in error, others converge"
"$TOOL" sandbox "$DB" broken "cmd:false" || fail add
random_ops 20
out=$("$TOOL" engine "$DB" "$HOST" bg 20000) || fail "bg: $out"
fast_trees_equal "$HOST" "$T/a"; fast_trees_equal "$HOST" "$T/b"
grep -q "^broken state=error" <<< "$out" || fail "broken sandbox not in error: $out"
grep -q "^a state=idle pending=0" <<< "$out" || fail "a: $out"

note "a change made in sandbox a is pulled, then pushed to b (not echoed to a)"
echo "from a" > "$T/a/made_in_a"
out=$("$TOOL" engine "$DB" "$HOST" pull a) || fail "pull: $out"
assert_eq "$(cat "$HOST/made_in_a")" "from a" "pulled"
out=$("$TOOL" engine "$DB" "$HOST" push a) || fail "push a: $out"
grep -q "^a state=idle pending=0 cursor=[0-9]* uploaded=0 bytes_sent=0" <<< "$out" || fail "echoed back to a: $out"
out=$("$TOOL" engine "$DB" "$HOST" push b) || fail "push b: $out"
assert_eq "$(cat "$T/b/made_in_a")" "from a" "fanned out to b"
"$TOOL" engine "$DB" "$HOST" push nosuch > /dev/null 2>&1 && fail "unknown sandbox accepted"
echo ok
