#!/usr/bin/env bash
# Per-sandbox SSH settings reach every connection the daemon makes (gap 6):
# [defaults] has no usable key, [sandbox s] gives `identity = ~/...` (with
# ~ = the daemon's $HOME): add, push, pull and exec all work. A sandbox
# whose own known-hosts lacks the host key fails its push with a host-key
# error; accept-new-host-keys = yes in a section records the key there.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sshd.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -x "$HERMESFS" ] || fail "hermesfs not built"
start_sshd
# Nothing but the config file may point at the key or known_hosts.
unset HERMES_SSH_KEY HERMES_SSH_KNOWN_HOSTS SSH_AUTH_SOCK HERMES_SSH_ACCEPT_NEW

H=$T/home ST=$T/state DH=$T/dhome
mkdir -p "$H" "$T/config/hermesfs" "$DH/keys" "$T/r1" "$T/r2" "$T/r3"
cp "$SSH_KEY" "$DH/keys/id"; chmod 600 "$DH/keys/id"
cp "$SSH_KNOWN_HOSTS" "$DH/keys/kh"
: > "$DH/keys/empty_kh"
export XDG_CONFIG_HOME=$T/config
cat > "$T/config/hermesfs/config" <<'EOF'
[defaults]
auto-push = no
identity = ~/keys/no-such-key
known-hosts = ~/keys/kh
[sandbox s]
identity = ~/keys/id
[sandbox bad]
identity = ~/keys/id
known-hosts = ~/keys/empty_kh
[sandbox acc]
identity = ~/keys/id
known-hosts = ~/keys/acc_kh
accept-new-host-keys = yes
EOF
url() { echo "ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$1"; }
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }
expect_rc() { local want=$1; shift; "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ "$rc" = "$want" ] || { cat "$T/out" "$T/err"; fail "'$*': exit $rc, wanted $want"; }; }

HOME=$DH "$HERMESFS" -f --state "$ST" --sandbox bad="$(url "$T/r2")" \
    --sandbox acc="$(url "$T/r3")" "$H" 2>>"$T/daemon.log" &
DPID=$!
wait_for mounted || { cat "$T/daemon.log"; fail "mount did not appear"; }
printf 'hello\n' > "$H/f"

note "[sandbox s] identity = ~/keys/id: add, push, pull, exec"
expect_rc 0 ctl sandbox add s "$(url "$T/r1")"
expect_rc 0 ctl sync s
assert_eq "$(cat "$T/r1/f")" "hello" "pushed over ssh with the section's key"
printf 'from sandbox\n' > "$T/r1/g"; touch -d '+3 seconds' "$T/r1/g"
expect_rc 0 ctl pull s
assert_eq "$(cat "$H/g")" "from sandbox" "pulled over ssh"
expect_rc 0 ctl exec -s s -- 'cat f g'
assert_eq "$(cat "$T/out")" "hello
from sandbox" "exec over ssh"
expect_rc 0 ctl flush s

note "[sandbox bad] known-hosts without the host key: the push is refused"
expect_rc 1 ctl sync bad
grep -qi "host key" "$T/err" || fail "not a host-key error: $(cat "$T/err")"
assert_absent "$T/r2/f"
expect_rc 1 ctl sandbox add bad2 "$(url "$T/r2")" # defaults: no usable key
expect_rc 1 ctl exec -s bad -- true
grep -qi "host key" "$T/err" || fail "exec: not a host-key error: $(cat "$T/err")"
[ -s "$DH/keys/empty_kh" ] && fail "a key was recorded without accept-new"

note "[sandbox acc] accept-new-host-keys = yes records the key in its own file"
expect_rc 0 ctl sync acc
assert_eq "$(cat "$T/r3/f")" "hello" "pushed after accepting the key"
grep -q "127.0.0.1" "$DH/keys/acc_kh" || fail "host key not recorded in ~/keys/acc_kh"

expect_rc 0 ctl umount
wait_for eval '! mounted' || fail "umount"
wait "$DPID"; assert_eq "$?" 0 "daemon exit"
echo ok
