#!/usr/bin/env bash
# bench_exec.sh — median per-call latency of `true` through exec/ (a full
# call as `hermes-fsctl exec` makes it on an open session: snapshot
# sourced, cwd tracked, env saved, markers parsed), against a baseline
# measured in the same run with the same pacing:
#   over loopback SSH (libssh2, one connection, a channel per call) against
#   OpenSSH spawn-per-call multiplexed by ControlMaster, same sshd;
#   on the local backend, against a bare `sh -c 'bash -c true'` spawn.
# Two pacings: calls PAUSE_MS apart (an agent thinks between commands; the
# pause is not timed, for either side), which is what a user sees, and
# back to back (throughput: the next warm spare is still starting). Also
# exec/ with spares off (-S) for reference.
# BENCH_EXEC_N sets the number of calls (default 60), BENCH_EXEC_PAUSE_MS
# the pause (default 200).
source "$(dirname "$0")/../tests/integration/lib.sh"
source "$(dirname "$0")/../tests/integration/lib_sshd.sh"
N=${BENCH_EXEC_N:-60}
PAUSE_MS=${BENCH_EXEC_PAUSE_MS:-200}
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

# median_of PAUSE_MS CMD...: run CMD N times (PAUSE_MS apart, untimed),
# print the median wall time in ms.
median_of() {
    local i s e p=$1
    shift
    for ((i = 0; i < N; i++)); do
        [ "$p" -gt 0 ] && sleep "$(awk -v m="$p" 'BEGIN { printf "%.3f", m / 1000 }')"
        s=$EPOCHREALTIME
        "$@" >/dev/null 2>&1 || fail "baseline failed: $*"
        e=$EPOCHREALTIME
        echo "$s $e"
    done | awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
min2() { echo "$1 $2" | awk '{ print ($1 < $2) ? $1 : $2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

start_sshd
sshd_clean_home
mkdir -p "$T/root" "$T/local"
URL="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$T/root"
CM="-o ControlMaster=auto -o ControlPath=$T/cm.sock -o ControlPersist=60"
ssh $SSH_OPTS $CM "$SSH_USER@127.0.0.1" true || fail "ControlMaster setup"
at_exit "ssh $SSH_OPTS -o ControlPath=$T/cm.sock -O exit $SSH_USER@127.0.0.1"
SSH_CM=(ssh $SSH_OPTS $CM "$SSH_USER@127.0.0.1" true)
BARE=(sh -c 'exec bash --noprofile --norc -c true')

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
# Interleaved rounds so load changes hit both sides alike; best round kept.
ours1=$("$TOOL" "$URL" -n "$N" -p "$PAUSE_MS" -- true) || fail "exec over ssh"
cm1=$(median_of "$PAUSE_MS" "${SSH_CM[@]}")
ours2=$("$TOOL" "$URL" -n "$N" -p "$PAUSE_MS" -- true) || fail "exec over ssh"
cm2=$(median_of "$PAUSE_MS" "${SSH_CM[@]}")
ours=$(min2 "$ours1" "$ours2") cm=$(min2 "$cm1" "$cm2")
echo "ssh, calls ${PAUSE_MS} ms apart: exec $ours ms (rounds $ours1, $ours2), OpenSSH+ControlMaster $cm ms (rounds $cm1, $cm2)"
echo "  ratio exec/OpenSSH-CM: $(ratio "$ours" "$cm") (targets: <= 0.5 and <= 10 ms)"
b2b=$("$TOOL" "$URL" -n "$N" -- true) || fail "exec over ssh"
cmb=$(median_of 0 "${SSH_CM[@]}")
fresh=$("$TOOL" "$URL" -S -n "$N" -p "$PAUSE_MS" -- true) || fail "exec over ssh"
echo "ssh, back to back: exec $b2b ms, OpenSSH+ControlMaster $cmb ms (ratio $(ratio "$b2b" "$cmb")); exec without spares, ${PAUSE_MS} ms apart: $fresh ms"

loc1=$("$TOOL" "local:$T/local" -n "$N" -p "$PAUSE_MS" -- true) || fail "exec local"
bare1=$(median_of "$PAUSE_MS" "${BARE[@]}")
loc2=$("$TOOL" "local:$T/local" -n "$N" -p "$PAUSE_MS" -- true) || fail "exec local"
bare2=$(median_of "$PAUSE_MS" "${BARE[@]}")
loc=$(min2 "$loc1" "$loc2") bare=$(min2 "$bare1" "$bare2")
echo "local, calls ${PAUSE_MS} ms apart: exec $loc ms (rounds $loc1, $loc2), bare sh+bash spawn $bare ms (rounds $bare1, $bare2); ratio $(ratio "$loc" "$bare") (target <= 5 ms)"
lb2b=$("$TOOL" "local:$T/local" -n "$N" -- true) || fail "exec local"
bareb=$(median_of 0 "${BARE[@]}")
lfresh=$("$TOOL" "local:$T/local" -S -n "$N" -p "$PAUSE_MS" -- true) || fail "exec local"
echo "local, back to back: exec $lb2b ms, bare spawn $bareb ms; exec without spares, ${PAUSE_MS} ms apart: $lfresh ms"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
