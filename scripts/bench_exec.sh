#!/usr/bin/env bash
# bench_exec.sh — median per-call latency of `true` through exec/ (a full
# call: snapshot sourced, cwd tracked, env saved, markers parsed):
#   over loopback SSH (libssh2, one connection, a channel per call) against
#   OpenSSH spawn-per-call multiplexed by ControlMaster, same sshd, same run;
#   and on the local backend, against a bare `sh -c 'bash -c true'` spawn.
# BENCH_EXEC_N sets the number of calls (default 60).
source "$(dirname "$0")/../tests/integration/lib.sh"
source "$(dirname "$0")/../tests/integration/lib_sshd.sh"
N=${BENCH_EXEC_N:-60}
TOOL=$HERMES_BUILD/itests/tool_exec
[ -x "$TOOL" ] || fail "build first: $TOOL missing"

# Same as in tests/integration/exec_ssh.sh: a clean HOME for ssh sessions so
# the account's ~/.bashrc (seconds of pyenv init here) does not swamp both
# sides of the comparison.
sshd_clean_home() {
    local i
    mkdir -p "$T/home"
    echo "SetEnv HOME=$T/home" >> "$T/sshd/sshd_config"
    kill -HUP "$SSHD_PID" || fail "cannot reload sshd"
    for ((i = 0; i < 100; i++)); do
        [ "$(ssh $SSH_OPTS "$SSH_USER@127.0.0.1" 'echo $HOME' 2>/dev/null)" = "$T/home" ] && return 0
        sleep 0.1
    done
    fail "sshd did not take the clean HOME"
}

# median_of CMD...: run CMD N times, print the median wall time in ms.
median_of() {
    local i s e
    for ((i = 0; i < N; i++)); do
        s=$EPOCHREALTIME
        "$@" >/dev/null 2>&1 || fail "baseline failed: $*"
        e=$EPOCHREALTIME
        echo "$s $e"
    done | awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

start_sshd
sshd_clean_home
mkdir -p "$T/root" "$T/local"
URL="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$T/root"
CM="-o ControlMaster=auto -o ControlPath=$T/cm.sock -o ControlPersist=60"
ssh $SSH_OPTS $CM "$SSH_USER@127.0.0.1" true || fail "ControlMaster setup"
at_exit "ssh $SSH_OPTS -o ControlPath=$T/cm.sock -O exit $SSH_USER@127.0.0.1"

# Interleave the two so load changes hit both alike.
ours1=$("$TOOL" "$URL" -n "$N" -- true) || fail "exec over ssh"
cm1=$(median_of ssh $SSH_OPTS $CM "$SSH_USER@127.0.0.1" true)
ours2=$("$TOOL" "$URL" -n "$N" -- true) || fail "exec over ssh"
cm2=$(median_of ssh $SSH_OPTS $CM "$SSH_USER@127.0.0.1" true)
ours=$(echo "$ours1 $ours2" | awk '{ print ($1 < $2) ? $1 : $2 }')
cm=$(echo "$cm1 $cm2" | awk '{ print ($1 < $2) ? $1 : $2 }')
echo "exec over ssh (libssh2): median $ours ms per call of 'true' (runs: $ours1, $ours2)"
echo "OpenSSH + ControlMaster: median $cm ms per call of 'true' (runs: $cm1, $cm2)"
echo "ratio exec/OpenSSH-CM: $(awk -v a="$ours" -v b="$cm" 'BEGIN { printf "%.2f", a / b }') (target <= 0.5; target <= 10 ms)"

loc=$("$TOOL" "local:$T/local" -n "$N" -- true) || fail "exec local"
bare=$(median_of sh -c 'exec bash --noprofile --norc -c true')
echo "exec local: median $loc ms per call; bare sh+bash spawn: $bare ms (target <= 5 ms)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
