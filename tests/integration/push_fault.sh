#!/usr/bin/env bash
# Failures never commit: a transport failing at its Nth call
# (HERMES_FAULT_TRANSPORT_FAIL_AT) and a sandbox that applied everything but
# reported failure leave ledger and cursor untouched, and the next push
# converges. A file changed while it is sent is re-sent next time and never
# recorded with the hash of bytes the sandbox does not hold.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_push.sh"
DB=$T/store.db HOST=$T/host
mkdir -p "$HOST/dir/sub" "$T/loc" "$T/flaky"
cat > "$T/wrap" <<'EOW'
#!/bin/sh
# cmd: sandbox that runs the script, then fails when $FLAG exists
"$@"; rc=$?
[ -e "$FLAG" ] && exit 9
exit $rc
EOW
chmod +x "$T/wrap"
export FLAG=$T/failflag
"$TOOL" sandbox "$DB" loc "local:$T/loc" || fail "add"
"$TOOL" sandbox "$DB" flaky "cmd:$T/wrap#$T/flaky" || fail "add"
for i in 1 2 3 4 5; do echo "file $i" > "$HOST/dir/f$i"; done
echo keep > "$HOST/dir/sub/k"
jr rescan ""
push loc; push flaky
fast_trees_equal "$HOST" "$T/loc"

note "transport fails at its first call: nothing committed"
echo changed > "$HOST/dir/f1"; jr write dir/f1
rm "$HOST/dir/f2"; jr unlink dir/f2
mv "$HOST/dir/sub" "$HOST/dir/sub2"; jr rename dir/sub dir/sub2
"$TOOL" ledger "$DB" loc > "$T/ledger.before"; cur=$("$TOOL" cursor "$DB" loc)
HERMES_FAULT_TRANSPORT_FAIL_AT=1 "$TOOL" push "$DB" loc "$HOST" > "$T/out" 2>&1 && fail "push succeeded despite the fault"
grep -q "injected fault" "$T/out" || fail "fault not reported: $(cat "$T/out")"
"$TOOL" ledger "$DB" loc | diff - "$T/ledger.before" || fail "ledger changed by a failed push"
assert_eq "$("$TOOL" cursor "$DB" loc)" "$cur" "cursor after a failed push"
assert_eq "$(cat "$T/loc/dir/f1")" "file 1" "sandbox changed by a failed push"

note "fault at the first attempt, retry converges"
HERMES_FAULT_TRANSPORT_FAIL_AT=1 push loc --retries 2 --backoff 10
assert_eq "$(stat_of attempts)" 2 attempts
fast_trees_equal "$HOST" "$T/loc"
"$TOOL" ledger "$DB" loc | grep -q " dir/sub2/k$" || fail "ledger not updated"

note "sandbox applied but reported failure: next push re-asserts even reverted paths"
echo v2 > "$HOST/dir/f3"; jr write dir/f3; echo new > "$HOST/dir/n"; jr create dir/n
"$TOOL" ledger "$DB" flaky > "$T/ledger.before"
touch "$FLAG"
"$TOOL" push "$DB" flaky "$HOST" > /dev/null 2>&1 && fail "flaky push succeeded"
"$TOOL" ledger "$DB" flaky | diff - "$T/ledger.before" || fail "ledger changed"
assert_eq "$(cat "$T/flaky/dir/f3")" v2 "the wrapper ran the apply"
rm "$FLAG"
echo "file 3" > "$HOST/dir/f3"; jr write dir/f3	# back to what the ledger says
rm "$HOST/dir/n"; jr unlink dir/n		# never recorded anywhere
push flaky
fast_trees_equal "$HOST" "$T/flaky"

note "a file changed while it is sent: not applied, re-sent next time"
head -c 3000000 /dev/urandom > "$HOST/big"; jr create big
push loc --mutate big
assert_eq "$(stat_of changed)" 1 "changed during upload"
assert_absent "$T/loc/big"
"$TOOL" ledger "$DB" loc | grep -q " big$" && fail "torn file recorded in the ledger"
push loc
assert_eq "$(stat_of uploaded)" 1 "re-sent"
fast_trees_equal "$HOST" "$T/loc"
sha=$(sha256sum < "$HOST/big" | cut -c1-64)
"$TOOL" ledger "$DB" loc | grep -q "$sha big$" || fail "ledger hash is not the content's"

note "an existing file changed while sent keeps its old version remotely"
cp "$HOST/big" "$T/big.v1"; head -c 3000000 /dev/urandom > "$HOST/big"; jr write big
push loc --mutate big
assert_eq "$(stat_of changed)" 1 "changed during upload"
cmp -s "$T/loc/big" "$T/big.v1" || fail "torn or new content visible on the sandbox"
"$TOOL" ledger "$DB" loc | grep -q "$sha big$" || fail "ledger row of the old version lost"
push loc; fast_trees_equal "$HOST" "$T/loc"
echo ok
