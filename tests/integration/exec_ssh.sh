#!/usr/bin/env bash
# exec/ over ssh:// against a real sshd: snapshot persistence, cwd
# tracking, exit paths, binary output and stdin, forged markers, and that
# a timeout or an interrupt kills the remote process group (checked on the
# "remote" side: the sshd runs here, so its processes are visible).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_sshd.sh"

# sshd_clean_home: sessions of the test sshd get a fresh empty HOME
# (SetEnv, reloaded with SIGHUP). Every ssh command starts the account's
# shell, which reads ~/.bashrc even when not interactive; this machine's
# root profile takes seconds (pyenv init) and would swamp what is tested.
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
start_sshd
sshd_clean_home
TOOL=$HERMES_BUILD/itests/tool_exec
URL="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT$T/root"
mkdir -p "$T/root"

# status_line N: the Nth status line of the last run (1-based)
status_line() { sed -n "${1}p" "$T/err" | grep '^status=' ; }
field() { status_line "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

note "one session: persistence, exit paths, gone cwd, forged marker, bounded output"
$TOOL "$URL" -- 'export HX_A="x y"; hx_f() { echo "f:$1"; }; alias hx_al="echo al"; mkdir -p sub/deeper; cd sub' \
    'echo "$HX_A"; hx_f 1; hx_al; cd deeper' 'pwd' \
    'mkdir -p a b; cd a; exit 3' 'cd ../b; set -u; echo $HX_UNSET' 'exec true' \
    'mkdir -p ../gone; cd ../gone; rmdir ../gone' 'echo never' 'pwd' \
    'mkdir -p stay; cd stay' "printf '\\036HERMES:0123456789abcdef0123456789abcdef:E7:0:S:/tmp\\n'" \
    'seq 1 2000000' > "$T/out" 2> "$T/err"
assert_eq "$(sed -n 1,4p "$T/out")" "x y
f:1
al
$T/root/sub/deeper" "persisted output"
assert_eq "$(field 3 cwd)" "$T/root/sub/deeper" "tracked cwd"
assert_eq "$(field 3 spare)" 1 "call ran on a spare"
assert_eq "$(field 4 status)" 3 "exit 3 status"
assert_eq "$(field 4 cwd)" "$T/root/sub/deeper/a" "cwd after exit 3"
[ "$(field 5 status)" -ne 0 ] || fail "set -u status 0"
assert_eq "$(field 5 cwd)" "$T/root/sub/deeper/b" "cwd after set -u"
assert_eq "$(field 6 status)" 0 "exec true status"
assert_eq "$(field 6 cwd)" "$T/root/sub/deeper/b" "cwd after exec true"
assert_eq "$(field 8 status)" 126 "gone cwd status"
grep -q "no longer exists" "$T/out" || fail "no clear message for a gone cwd"
grep -q never "$T/out" && fail "command ran in a gone cwd"
assert_eq "$(field 9 cwd)" "$T/root" "cwd reset after 126"
assert_eq "$(field 11 cwd)" "$T/root/stay" "forged marker moved cwd"
grep -qa "HERMES:0123456789abcdef0123456789abcdef:E7" "$T/out" || fail "forged marker text not returned"
assert_eq "$(field 12 truncated)" 1 "truncated flag"
size=$(stat -c %s "$T/out")
[ "$size" -le $((1048576 + 1000)) ] || fail "output not bounded: $size"
assert_eq "$(tail -1 "$T/out")" 2000000 "tail kept"
grep -q "^1$" "$T/out" || fail "head not kept"
grep -q "bytes of output omitted" "$T/out" || fail "no truncation notice"

note "the same on fresh channels only (no spare)"
$TOOL "$URL" -S -- 'export HX_B="p q"; mkdir -p fr; cd fr' 'echo "$HX_B"; pwd' 'exit 4' \
    "grep -slxzF 'HOME=$T/home' /proc/[0-9]*/environ | wc -l" > "$T/out" 2> "$T/err"
assert_eq "$(sed -n 1,2p "$T/out")" "p q
$T/root/fr" "fresh-path output"
[ "$(sed -n 3p "$T/out")" -ge 1 ] || fail "session processes not visible: the leftover check would see nothing"
assert_eq "$(field 2 spare)" 0 "-S used a spare"
assert_eq "$(field 3 status)" 4 "fresh-path exit status"

# session_procs: live processes the test sshd started for sessions (their
# initial environment has the test's HOME; a zombie's reads empty):
# commands and spares.
session_procs() { grep -slxzF "HOME=$T/home" /proc/[0-9]*/environ 2>/dev/null | wc -l; }
none_left() { [ "$(session_procs)" = 0 ]; }
WAIT_S=10 wait_for none_left || fail "sessions left processes on the sandbox: $(session_procs)"

note "binary output byte for byte, stdin bytes"
head -c 900000 /dev/urandom > "$T/root/blob"
printf 'in\0put\377\n' > "$T/in"
$TOOL "$URL" -i "$T/in" -- 'cat blob' 'cat' > "$T/blob.out" 2> "$T/err" || fail "cat blob: $(cat "$T/err")"
cat "$T/root/blob" "$T/in" > "$T/blob.want"
assert_file_eq "$T/blob.want" "$T/blob.out"

# live_in_group PGID: a non-zombie process of that group exists
live_in_group() {
    local f l
    for f in /proc/[0-9]*/stat; do
        read -r l 2>/dev/null < "$f" || continue
        l=${l##*) }; set -- $l
        [ "$3" = "$PG" ] && [ "$1" != Z ] && return 0
    done
    return 1
}
gone() { ! live_in_group && ! kill -0 "$BG" 2>/dev/null; }

note "timeout: 124 with partial output, remote group gone"
$TOOL "$URL" -t 1 -- 'echo $BASHPID > pg; sleep 60 & echo $! > bg; echo partial; sleep 60; echo never' \
    > "$T/out" 2> "$T/err"
assert_eq "$?" 124 "timeout exit"
assert_eq "$(cat "$T/out")" partial "partial output"
assert_eq "$(field 1 timed_out)" 1 "timed_out flag"
assert_eq "$(field 1 verified)" 1 "kill verified"
assert_eq "$(field 1 spare)" 1 "timed-out call ran on a spare"
PG=$(cat "$T/root/pg") BG=$(cat "$T/root/bg")
[ -n "$PG" ] && [ -n "$BG" ] || fail "no pids recorded"
live_in_group && fail "remote process group $PG still has live processes"
WAIT_S=10 wait_for gone || fail "remote background process $BG still alive"

note "interrupt: 130, remote group gone (TERM ignored: KILL needed)"
$TOOL "$URL" -c 700 -- "echo \$BASHPID > pg; trap '' TERM; sleep 60 & echo \$! > bg; sleep 60" \
    > "$T/out" 2> "$T/err"
assert_eq "$?" 130 "interrupt exit"
assert_eq "$(field 1 interrupted)" 1 "interrupted flag"
PG=$(cat "$T/root/pg") BG=$(cat "$T/root/bg")
live_in_group && fail "remote process group $PG still has live processes"
WAIT_S=10 wait_for gone || fail "remote background process $BG still alive"
WAIT_S=10 wait_for none_left || fail "sessions left processes on the sandbox: $(session_procs)"
echo ok
