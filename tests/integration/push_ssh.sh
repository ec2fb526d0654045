#!/usr/bin/env bash
# Push over ssh:// against a real sshd, through the engine: two sandboxes
# (ssh and local) receive the same random changes in parallel; an unknown
# host key is refused and commits nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_sshd.sh"
source "$(dirname "$0")/lib_push.sh"
start_sshd
DB=$T/store.db HOST=$T/host
mkdir -p "$HOST" "$T/loc"
"$TOOL" sandbox "$DB" ssh "ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$T/ssh" || fail "add ssh"
"$TOOL" sandbox "$DB" loc "local:$T/loc" || fail "add loc"
RANDOM=777
random_ops 40

note "unknown host key: refused, nothing committed"
: > "$T/kh_empty"
HERMES_SSH_KNOWN_HOSTS=$T/kh_empty "$TOOL" push "$DB" ssh "$HOST" > "$T/out" 2>&1 && fail "unknown host accepted"
grep -qi "unknown host key" "$T/out" || fail "unclear error: $(cat "$T/out")"
assert_eq "$("$TOOL" cursor "$DB" ssh)" 0 "cursor after refusal"
assert_eq "$("$TOOL" ledger "$DB" ssh | wc -l)" 0 "ledger after refusal"
assert_absent "$T/ssh"

note "engine push to both sandboxes"
out=$("$TOOL" engine "$DB" "$HOST" push) || fail "engine push: $out"
grep -q "^ssh state=idle pending=0" <<< "$out" || fail "ssh status: $out"
grep -q "^loc state=idle pending=0" <<< "$out" || fail "loc status: $out"
fast_trees_equal "$HOST" "$T/ssh"
fast_trees_equal "$HOST" "$T/loc"
random_ops 30

note "a directory rename over ssh sends no content"
mkdir -p "$HOST/tree/a"; head -c 200000 /dev/urandom > "$HOST/tree/a/blob"
jr mkdir tree; jr mkdir tree/a; jr create tree/a/blob
push ssh
mv "$HOST/tree" "$HOST/tree2"; jr rename tree tree2
push ssh
assert_eq "$(stat_of bytes_sent)" 0 "bytes re-sent by a rename"
assert_trees_equal "$HOST" "$T/ssh"
note "push_if_needed: nothing pending, nothing done"
out=$("$TOOL" engine "$DB" "$HOST" ifneeded ssh) || fail "ifneeded: $out"
grep -q "^ssh state=idle pending=0" <<< "$out" || fail "ssh status: $out"
grep -q "^loc state=idle pending=[1-9]" <<< "$out" || fail "loc status: $out"
out=$("$TOOL" engine "$DB" "$HOST" push loc) || fail "engine push loc: $out"
assert_trees_equal "$HOST" "$T/loc"
echo ok
