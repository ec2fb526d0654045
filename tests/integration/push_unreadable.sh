#!/usr/bin/env bash
# Gap 7: a host file the pusher cannot read (chmod 000, pusher not root)
# is skipped with a warning while everything else is pushed, and tried
# again later (it arrives once readable, with no new journal entry); a
# file that changes during every upload does not make the background
# thread push over and over (the retries back off).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_push.sh"
command -v setpriv > /dev/null || fail "setpriv missing"
DB=$T/store.db HOST=$T/host
mkdir -p "$HOST/d" "$T/a"
"$TOOL" sandbox "$DB" a "local:$T/a" || fail add
echo one > "$HOST/ok1"; echo x > "$HOST/d/x"; echo secret > "$HOST/secret"
chmod 000 "$HOST/secret"
chown -R 65534:65534 "$T"; chmod 755 "$T"
# The pusher runs as nobody: root would read a 0000 file anyway.
nb() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
push() { STATS=$(nb "$TOOL" push "$DB" a "$HOST" 2> "$T/err") || fail "push failed: $STATS $(cat "$T/err")"; }

note "first push: the unreadable file is skipped, the rest arrives, exit 0"
push
assert_eq "$(stat_of unreadable)" 1 "unreadable count"
grep -q "warning: skipped 1 unreadable file.*secret: Permission denied" "$T/err" || fail "no warning: $(cat "$T/err")"
assert_eq "$(cat "$T/a/ok1")" one "other file pushed"
assert_eq "$(cat "$T/a/d/x")" x "other file pushed"
assert_absent "$T/a/secret"
"$TOOL" ledger "$DB" a | grep -q " secret$" && fail "unreadable file in the ledger"

note "still unreadable: other changes are pushed, no failure"
echo two > "$HOST/ok1"; nb "$TOOL" j "$DB" write ok1 || fail journal
push
assert_eq "$(cat "$T/a/ok1")" two "later change pushed"
assert_eq "$(stat_of retry)" 1 "still to retry"

note "readable again: the next push after the backoff sends it, with no journal entry"
chmod 644 "$HOST/secret"
head=$("$TOOL" cursor "$DB" a)
sleep 1
push
assert_eq "$(cat "$T/a/secret")" secret "retried file pushed"
assert_eq "$(stat_of retry)" 0 "nothing left to retry"
assert_eq "$("$TOOL" cursor "$DB" a)" "$head" "no journal entry was needed"
push
assert_eq "$(stat_of uploaded)" 0 "up to date"

note "background: an unreadable file and a file changed during every upload do not loop"
head -c 8000000 /dev/urandom > "$HOST/busy"; echo s2 > "$HOST/secret2"; chmod 000 "$HOST/secret2"
chown 65534:65534 "$HOST/busy" "$HOST/secret2"
nb "$TOOL" j "$DB" create busy && nb "$TOOL" j "$DB" create secret2 || fail journal
( while :; do echo more >> "$HOST/busy"; done ) & W=$!
at_exit "kill $W"
out=$(nb "$TOOL" engine "$DB" "$HOST" bgfor 4000 2>&1) || fail "bg: $out"
kill $W; wait $W 2>/dev/null
n=$(sed -n 's/^pushes=//p' <<< "$out")
note "pushes in 4 s: $n"
[ "$n" -ge 1 ] && [ "$n" -le 12 ] || fail "pushes: $n (a retry loop?) $out"
note "the warning reaches the sandbox's status; once readable, it arrives"
until [ "$(cat "$T/a/busy" 2>/dev/null | wc -c)" = "$(wc -c < "$HOST/busy")" ]; do
    nb "$TOOL" engine "$DB" "$HOST" push a > "$T/out" 2>&1 || fail "push: $(cat "$T/out")"
done
grep -q "^a state=idle .*error=skipped 1 unreadable file.*secret2" "$T/out" || fail "status lacks the warning: $(cat "$T/out")"
chmod 644 "$HOST/secret2"
WAIT_S=30 wait_for eval 'nb "$TOOL" engine "$DB" "$HOST" push a > "$T/out" 2>&1 && [ -e "$T/a/secret2" ]' ||
    fail "secret2 never retried: $(cat "$T/out")"
grep -q "^a state=idle .*error=$" "$T/out" || fail "warning not cleared: $(cat "$T/out")"
fast_trees_equal "$HOST" "$T/a"
echo ok
