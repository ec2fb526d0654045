#!/usr/bin/env bash
# ssh:// transport against a real sshd: commands, stdin/stdout, exit codes,
# large streams, host key refusal (unknown and changed) and accept-new.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_sshd.sh"
start_sshd
TOOL=$HERMES_BUILD/itests/tool_push
URL="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$T/root"
mkdir -p "$T/root"

note "run, exit status, stderr"
assert_eq "$($TOOL run "$URL" 'echo hi; echo err >&2')" "hi"
$TOOL run "$URL" 'exit 7' 2>/dev/null; assert_eq $? 7 "exit status"
$TOOL run "$URL" 'kill -TERM $$' 2>/dev/null; assert_eq $? 143 "signal status"
$TOOL run "$URL" 'echo why >&2; exit 3' 2>"$T/err"; grep -q why "$T/err" || fail "stderr not in error"

note "stdin and a 30 MB binary round trip"
head -c 30000000 /dev/urandom > "$T/big"
$TOOL run "$URL" 'cat' < "$T/big" > "$T/big.out" || fail "cat over ssh"
assert_file_eq "$T/big" "$T/big.out"
$TOOL run "$URL" "cat > $T/root/f" < "$T/big" || fail "upload"
assert_file_eq "$T/big" "$T/root/f"

note "one connection, many channels"
ms=$($TOOL stream "$URL" true 5) || fail "stream"
echo "median per-call latency: $ms ms"

note "unknown host key is refused, accept-new records it, changed key refused"
: > "$T/kh_empty"
HERMES_SSH_KNOWN_HOSTS=$T/kh_empty $TOOL run "$URL" true 2>"$T/err" && fail "unknown host accepted"
grep -qi "unknown host key" "$T/err" || fail "unclear error: $(cat "$T/err")"
HERMES_SSH_KNOWN_HOSTS=$T/kh_empty HERMES_SSH_ACCEPT_NEW=1 $TOOL run "$URL" true || fail "accept-new"
grep -q "127.0.0.1" "$T/kh_empty" || fail "accept-new did not record"
HERMES_SSH_KNOWN_HOSTS=$T/kh_empty $TOOL run "$URL" true || fail "recorded key not trusted"
ssh-keygen -q -t ed25519 -N '' -f "$T/other" 
echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$T/other.pub")" > "$T/kh_changed"
HERMES_SSH_KNOWN_HOSTS=$T/kh_changed HERMES_SSH_ACCEPT_NEW=1 $TOOL run "$URL" true 2>"$T/err" && fail "changed key accepted"
grep -q "CHANGED" "$T/err" || fail "unclear error: $(cat "$T/err")"

note "bad key is refused"
HERMES_SSH_KEY=$T/other HOME=$T $TOOL run "$URL" true 2>"$T/err" && fail "wrong key accepted"
grep -qi "authentication failed" "$T/err" || fail "unclear auth error: $(cat "$T/err")"
echo ok
