#!/usr/bin/env bash
# Progress of `hermes-fsctl pull` and `flush` through a real mount and a
# local: sandbox (pulls of 200 files / 20 MB, flushes of 200 files / 2 MB
# each way): plain lines on stderr when it
# is not a terminal, a bar redrawn in place under a pseudo-terminal
# (script(1)), always wiped before the summary, which stays exact. The
# daemon runs with HERMES_PROGRESS_ALWAYS=1 so every update is drawn however
# fast the machine is; a remount without it shows that a tiny pull prints
# no progress at all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -x "$HERMESFS" ] || fail "hermesfs not built"
command -v script >/dev/null || fail "script(1) (util-linux) is needed"

B=$T/backing M=$T/mnt S=$T/sb
mkdir -p "$B" "$M" "$S" "$T/config/hermesfs"
export XDG_CONFIG_HOME=$T/config
# Pushed on request only: the flush below has something to push.
printf '[defaults]\nauto-push = no\n' > "$T/config/hermesfs/config"
ctl() { "$FSCTL" -m "$M" "$@"; }
# files DIR SIZE TAG: 200 files of SIZE bytes (distinct content per TAG)
files() {
    mkdir -p "$1"
    awk -v d="$1" -v size="$2" -v tag="$3" 'BEGIN {
        for (i = 0; i < 200; i++) {
            s = tag " " i " "
            while (length(s) < size) s = s s
            f = sprintf("%s/f%03d", d, i)
            printf "%s", substr(s, 1, size) > f
            close(f)
        }
    }' || fail "writing files into $1"
}
# check MODE FILE WHAT TOTAL [SUMMARY]: the progress in FILE (stderr, or a
# pty's transcript) is well formed for MODE (plain|tty), its counts only
# grow and end at 200 files and TOTAL bytes ("19.5 MiB"), then (pulls) the
# apply's count grows to its total; under a pty, the bar never stays on
# screen and SUMMARY is a line of its own after it.
check() {
    local mode=$1 file=$2 what=$3 total=$4 summary=${5:-}
    [ -z "$(tail -c1 "$file")" ] || fail "$what progress ($mode): output ends inside a line"
    if [ "$mode" = plain ] && grep -q $'[\r\e]' "$file"; then
        fail "terminal codes in plain output: $(cat -A "$file" | head -c 2000)"
    fi
    awk -v mode="$mode" -v what="$what" -v total="$total" -v summary="$summary" '
    function bad(m) { print "progress check: " m > "/dev/stderr"; failed = 1; exit 1 }
    # s: "35% 70/200 files, 7.0 MiB/19.5 MiB, 3.4 MiB/s, ETA 4 s"
    #  or "40% applying 80/201 changes, ETA 1 s"
    function step(s,   a, f, n) {
        if (s ~ "applying") {
            if (s !~ "^ *[0-9]+% applying [0-9]+/[0-9]+ changes, ETA ([0-9]+ s|--)$")
                bad("malformed: " s)
            sub(/^ */, "", s)
            split(s, f, "[ /]")
            if (asteps && (f[1] + 0 < apct || f[3] + 0 < applied))
                bad("apply counts went back: " s)
            apct = f[1] + 0; applied = f[3] + 0; atotal = f[4] + 0
            asteps++
            return
        }
        if (asteps) bad("fetch after apply: " s)
        if (s !~ "^ *[0-9]+% [0-9]+/[0-9]+ files, [0-9.]+ [A-Za-z]+/[0-9.]+ [A-Za-z]+, ([0-9.]+ [A-Za-z]+|--)/s, ETA ([0-9]+ s|--)$")
            bad("malformed: " s)
        sub(/^ */, "", s)
        split(s, a, ", ")
        split(a[1], f, "[ /]")
        if (steps && (f[1] + 0 < pct || f[2] + 0 < files))
            bad("counts went back: " s)
        pct = f[1] + 0; files = f[2] + 0; ftotal = f[3] + 0; bytes = a[2]
        steps++
    }
    BEGIN { esc = sprintf("%c[K", 27) }
    mode == "plain" && index($0, what " ") == 1 {
        if (index($0, what " s: ") != 1) bad("not sandbox s: " $0)
        line = substr($0, length(what) + 5)
        sub(/%,/, "%", line)
        step(line)
    }
    mode == "tty" {
        sub(/\r$/, "")		# the pty turns "\n" into "\r\n"
        n = split($0, seg, "\r")
        for (i = 1; i <= n; i++)
            if (index(seg[i], esc what " ") == 1) {
                d = substr(seg[i], length(esc what " ") + 1)
                if (d !~ /^s \[[#.]+\] /) bad("bar: " d)
                sub(/^s \[[#.]+\] /, "", d)
                step(d)
            }
        vis = seg[n]		# what the terminal keeps of this line
        if (n > 1 && vis != "" && index(vis, esc) != 1)
            bad("text over the bar without erasing it: " vis)
        if (index(vis, esc) == 1) vis = substr(vis, length(esc) + 1)
        if (index(vis, what " ") == 1) bad("bar left on screen: " vis)
        if (vis == summary) got = 1
    }
    END {
        if (failed) exit 1
        if (steps < 2) bad(steps " progress steps")
        if (pct != 100 || files != 200 || ftotal != 200 || bytes != total "/" total)
            bad("last step: " pct "% " files "/" ftotal " " bytes)
        if (what == "pull" && (asteps < 1 || apct != 100 || applied != atotal || atotal < 200))
            bad("apply: " asteps " steps, last " apct "% " applied "/" atotal)
        if (mode == "tty" && !got) bad("summary not on a line of its own")
    }' "$file" || fail "$what progress ($mode): $(cat -A "$file" | head -c 3000)"
}

HERMES_PROGRESS_ALWAYS=1 mount_hermesfs "$B" "$M" --sandbox s="local:$S"
note "first push, then the sandbox writes 200 files (20 MB)"
echo hello > "$M/hello"
ctl sync s > "$T/out" 2>&1 || fail "sync: $(cat "$T/out")"
files "$S/big" 102400 one

note "pull, stderr not a terminal: plain lines"
ctl pull s > "$T/out" 2> "$T/err" || fail "pull: $(cat "$T/out" "$T/err")"
SUM="s: pulled 200 changed, 0 deleted, 0 conflicts kept aside, 0 refused"
assert_eq "$(cat "$T/out")" "${SUM/200/201}" "pull summary (the files and big/)"
check plain "$T/err" pull "19.5 MiB"
grep -v '^pull s: ' "$T/err" && fail "stderr holds more than progress"
cmp "$S/big/f123" "$M/big/f123" || fail "pulled content"
assert_eq "$(ls "$M/big" | wc -l)" 200 "pulled files"

note "pull under a pseudo-terminal: a bar, wiped before the summary"
files "$S/big" 102401 two	# one byte more: the listing sees them changed
# script(1) makes a pty for stdout and stderr; its transcript is the screen.
script -qec "'$FSCTL' -m '$M' pull s" /dev/null > "$T/tty" 2>&1 < /dev/null ||
    fail "pull under a pty: $(cat -A "$T/tty" | head -c 2000)"
check tty "$T/tty" pull "19.5 MiB" "$SUM"
cmp "$S/big/f199" "$M/big/f199" || fail "pulled content (pty)"

note "flush under a pseudo-terminal: push bar, then pull bar"
files "$M/up" 10240 host		# through the mount: journaled, pushed by the flush
files "$S/big" 10240 three
script -qec "'$FSCTL' -m '$M' flush s" /dev/null > "$T/tty" 2>&1 < /dev/null ||
    fail "flush under a pty: $(cat -A "$T/tty" | head -c 2000)"
check tty "$T/tty" pull "2.0 MiB" "$SUM"
grep -aq $'\e\[Kpush s \[' "$T/tty" || fail "no push bar: $(cat -A "$T/tty" | head -c 2000)"
grep -aq $'\ns: pushed 200 files' <(tr -d '\r' < "$T/tty" | sed 's/.*\x1b\[K//') ||
    fail "push summary: $(cat -A "$T/tty" | head -c 2000)"
cmp "$M/up/f007" "$S/up/f007" || fail "flushed push content"
cmp "$S/big/f007" "$M/big/f007" || fail "flushed pull content"

note "flush, not a terminal: push lines, then pull lines"
files "$M/up" 10241 host2
files "$S/big" 10241 four
ctl flush s > "$T/out" 2> "$T/err" || fail "flush: $(cat "$T/out" "$T/err")"
grep -q '^s: pushed 200 files' "$T/out" || fail "flush push summary: $(cat "$T/out")"
grep -qx "$SUM" "$T/out" || fail "flush pull summary: $(cat "$T/out")"
grep -q '^push s: 100%, 200/200 files' "$T/err" || fail "push lines: $(cat "$T/err")"
grep -v '^push s: ' "$T/err" > "$T/err.pull"
check plain "$T/err.pull" pull "2.0 MiB"

note "without HERMES_PROGRESS_ALWAYS a tiny pull shows no progress"
unmount_hermesfs "$M" || fail "unmount"
mount_hermesfs "$B" "$M" --sandbox s="local:$S"
echo small > "$S/small"
ctl pull s > "$T/out" 2> "$T/err" || fail "tiny pull: $(cat "$T/out" "$T/err")"
assert_eq "$(cat "$T/out")" "s: pulled 1 changed, 0 deleted, 0 conflicts kept aside, 0 refused" "tiny pull"
[ ! -s "$T/err" ] || fail "tiny pull printed: $(cat "$T/err")"
echo small2 > "$S/small"
script -qec "'$FSCTL' -m '$M' pull s" /dev/null > "$T/tty" 2>&1 < /dev/null || fail "tiny pull (pty)"
assert_eq "$(tr -d '\r' < "$T/tty")" "s: pulled 1 changed, 0 deleted, 0 conflicts kept aside, 0 refused" "tiny pull (pty)"
unmount_hermesfs "$M" || fail "final unmount"
