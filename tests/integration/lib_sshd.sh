# lib_sshd.sh — a private sshd on 127.0.0.1 for integration tests.
# Source after lib.sh, then call `start_sshd`. It exports:
#   SSHD_PORT        the port it listens on
#   SSH_KEY          private client key authorized for $SSH_USER
#   SSH_KNOWN_HOSTS  known_hosts file with the server's host key
#   SSH_USER         the current user
#   SSH_OPTS         options for an OpenSSH client (ssh $SSH_OPTS ...)
# and HERMES_SSH_KEY / HERMES_SSH_KNOWN_HOSTS so our transport finds them.
# The daemon is stopped at exit. Skips (77) only when sshd is not installed.

start_sshd() {
    local d=$T/sshd i
    [ -x /usr/sbin/sshd ] || skip "/usr/sbin/sshd not installed"
    mkdir -p "$d" /run/sshd
    chmod 700 "$d"
    ssh-keygen -q -t ed25519 -N '' -C hermes-test-host -f "$d/host_ed25519" || fail "ssh-keygen host"
    ssh-keygen -q -t ed25519 -N '' -C hermes-test-client -f "$d/client_ed25519" || fail "ssh-keygen client"
    SSH_USER=$(whoami)
    for i in 1 2 3 4 5; do
        SSHD_PORT=$(free_port)
        cat > "$d/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $d/host_ed25519
AuthorizedKeysFile $d/client_ed25519.pub
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $d/sshd.pid
MaxSessions 100
MaxStartups 100:30:200
LogLevel ERROR
EOF
        /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>>"$d/sshd.log" &
        SSHD_PID=$!
        at_exit "kill $SSHD_PID"
        if WAIT_S=10 wait_for _sshd_listening "$SSHD_PORT" "$SSHD_PID"; then
            break
        fi
        kill "$SSHD_PID" 2>/dev/null
        SSHD_PID=
    done
    [ -n "$SSHD_PID" ] || { cat "$d/sshd.log" >&2; fail "sshd did not start"; }
    echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$d/host_ed25519.pub")" > "$d/known_hosts"
    SSH_KEY=$d/client_ed25519
    SSH_KNOWN_HOSTS=$d/known_hosts
    SSH_OPTS="-i $SSH_KEY -p $SSHD_PORT -o UserKnownHostsFile=$SSH_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes"
    HERMES_SSH_KEY=$SSH_KEY
    HERMES_SSH_KNOWN_HOSTS=$SSH_KNOWN_HOSTS
    export SSHD_PORT SSH_KEY SSH_KNOWN_HOSTS SSH_USER SSH_OPTS SSHD_PID
    export HERMES_SSH_KEY HERMES_SSH_KNOWN_HOSTS
}

_sshd_listening() {
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
