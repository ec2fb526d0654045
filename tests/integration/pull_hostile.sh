#!/usr/bin/env bash
# A hostile sandbox: crafted listings and tars (written with libarchive by
# tool_pull mktar) served through a real cmd: transport whose "shell" cats
# them. Every attack must change nothing outside the host root, be refused
# and be reported; caps refuse before anything is written; a wiped or
# replaced root (real local: transport) refuses mass deletion.
source "$(dirname "$0")/lib.sh"
TOOL=$HERMES_BUILD/itests/tool_pull
[ -x "$TOOL" ] || fail "missing $TOOL"
MTIME=1600000000

# The sandbox's "shell": `fake.sh SRV sh -c SCRIPT`. The fetch script runs
# tar, the listing script runs find; answer each with the crafted file.
FAKE=$T/fake.sh
cat > "$FAKE" <<'EOF'
#!/bin/sh
srv=$1 script=$4
case $script in
*"-cf -"*)
    echo fetch >> "$srv/calls"
    [ -f "$srv/stderr" ] && cat "$srv/stderr" >&2
    cat "$srv/tar" 2>/dev/null
    exit "$(cat "$srv/rc" 2>/dev/null || echo 0)" ;;
*find*)
    echo list >> "$srv/calls"
    cat "$srv/list" ;;
*)  exit 99 ;;
esac
EOF
chmod +x "$FAKE"

# setup NAME: host tree (a, d/b), the same pushed to a sandbox (ledger and
# marker seeded), an "outside" directory beside the host root holding a
# victim, and a listing that repeats the pushed tree.
setup() {
    C=$T/$1 H=$T/$1/host R=$T/$1/remote S=$T/$1/srv DB=$T/$1/state.db
    mkdir -p "$H/d" "$R" "$S" "$C/outside"
    printf 'base\n' > "$H/a"; printf 'base\n' > "$H/d/b"
    printf 'victim\n' > "$C/outside/victim"
    cp -a "$H/." "$R/"
    find "$H" "$R" -exec touch -h -d @$MTIME {} +
    "$TOOL" seed "$DB" sbx "local:$R" "$R" || fail "seed"
    URL="cmd:$FAKE $S#/srv"
    printf 'M%s\0' "$(cat "$R/.hermesfs-sandbox")" > "$S/list"
    rec d 755 0 d; rec f 644 5 a; rec f 644 5 d/b
    : > "$S/calls"
    "$TOOL" mktar "$S/tar" || fail "mktar"
    MANIFEST_EXCLUDE='^(host|srv|state\.db)' tree_manifest "$C" > "$S/.before"
}
# rec TYPE OCTAL_MODE SIZE PATH [TARGET]: one GNU-find listing record.
rec() { printf 'G%s %s %s %s %s\0%s\0' "$1" "$2" "$3" "$MTIME.5" "$4" "${5:-}" >> "$S/list"; }
# srec HEX_ST_MODE SIZE PATH: one portable (stat) listing record.
srec() { printf 'S%s %s %s ./%s\0\0' "$1" "$2" "$MTIME" "$3" >> "$S/list"; }
end_list() { printf 'E\0' >> "$S/list"; }
mktar() { "$TOOL" mktar "$S/tar" "$@" || fail "mktar $*"; }
pull() {
    "$TOOL" pull "$DB" sbx "$URL" "$H" --retries -1 "$@" > "$S/out" 2>&1
    PULL_RC=$?
    cat "$S/out"
    return $PULL_RC
}
stat_of() { grep -o "$1=[0-9]*" "$S/out" | head -1 | cut -d= -f2; }
reported() { grep -qF -- "$1" "$S/out" || fail "not reported: $1"; }
# Nothing outside the host root changed (the victim, its directory, the
# sandbox mirror), and no temp file is left in the host tree.
outside_intact() {
    MANIFEST_EXCLUDE='^(host|srv|state\.db)' tree_manifest "$C" > "$S/.after"
    diff -u "$S/.before" "$S/.after" >&2 || fail "something outside the root changed"
    assert_eq "$(cat "$C/outside/victim")" "victim" "victim"
    ! find "$H" -name '.hermesfs-*' | grep -q . || fail "temp file left in host"
}
host_unchanged() {
    assert_eq "$(cat "$H/a")" "base" "host a"
    assert_eq "$(cat "$H/d/b")" "base" "host d/b"
}
refused_at_least() { [ "$(stat_of refused)" -ge "$1" ] || fail "refused=$(stat_of refused), want >= $1"; }

note "listing: absolute paths and '..'"
setup abs
rec f 644 6 "$C/outside/victim"; rec f 644 6 "../outside/victim"
rec f 644 6 "d/../../outside/victim"; rec d 755 0 "../outside"; rec f 644 6 "./../x"
end_list
mktar "f:$C/outside/victim:pwned" "f:../outside/victim:pwned" "f:d/../../outside/victim:pwned"
pull || fail "pull failed"
refused_at_least 5
reported "refused $C/outside/victim: absolute path"
reported "refused ../outside/victim: '.' or '..' component"
reported "refused d/../../outside/victim"
grep -q '^fetch' "$S/calls" && fail "refused names were fetched"
outside_intact; host_unchanged

note "listing: symlinks pointing outside the root"
setup esc
rec l 777 10 esc "../outside"; rec l 777 10 abs "$C/outside"
rec l 777 10 d/up "../../outside"; rec l 777 10 d/mid "x/../../outside"
rec l 777 3 ok "d/b"; rec l 777 4 d/ok2 "../a"
end_list
pull || fail "pull failed"
refused_at_least 4
for n in esc abs d/up d/mid; do reported "refused $n: "; assert_absent "$H/$n"; done
assert_eq "$(readlink "$H/ok")" "d/b" "in-root symlink applied"
assert_eq "$(readlink "$H/d/ok2")" "../a" "in-root symlink applied"
outside_intact; host_unchanged

note "listing: names through a sandbox symlink"
setup through
rec l 777 1 ln d; rec f 644 6 ln/evil; rec f 644 6 ln/d2/evil; rec f 644 4 new
end_list
mktar f:ln/evil:pwned f:new:new
pull || fail "pull failed"
reported "refused ln/evil: parent is not a listed directory"
reported "refused ln/d2/evil"
reported "refused tar entry ln/evil: not requested"
assert_absent "$H/d/evil"; assert_eq "$(cat "$H/new")" "new" "good file beside"
outside_intact; host_unchanged

note "host: a symlink on the way is never followed (both policies)"
for pol in host-wins conflict-copy; do
    setup "hostlink-$pol"
    ln -s ../outside "$H/hl"              # made on the host after the push
    ln -s ../../outside "$H/d/hl2"
    rec d 755 0 hl; rec f 644 6 hl/victim; rec d 755 0 d/hl2; rec f 644 6 d/hl2/new
    end_list
    mktar f:hl/victim:pwned f:d/hl2/new:pwned
    pull --policy "$pol" || fail "pull failed"
    outside_intact; host_unchanged
    assert_absent "$C/outside/new"
    if [ "$pol" = host-wins ]; then
        reported "refused hl/victim: host path not reachable without following a symlink"
        reported "refused d/hl2/new: host path not reachable without following a symlink"
        assert_eq "$(readlink "$H/hl")" "../outside" "host symlink kept"
    else
        # the host link is kept as a conflict copy and a real directory
        # replaces it before its content is written: inside the root
        [ -d "$H/hl" ] && [ ! -L "$H/hl" ] || fail "hl should be a directory now"
        assert_eq "$(readlink "$H"/hl.conflict-sbx-*)" "../outside" "host link kept as a copy"
        assert_eq "$(cat "$H/hl/victim")" "pwned" "written inside the root"
        assert_eq "$(cat "$H/d/hl2/new")" "pwned" "written inside the root"
    fi
done

note "listing: devices, fifos, sockets"
setup nodes
srec 21a4 0 chr; srec 61a4 0 blk; srec 11a4 0 fifo; srec c1a4 0 sock
rec p 644 0 gfifo; rec s 644 0 gsock; rec c 644 0 gchr; rec b 644 0 gblk
end_list
pull || fail "pull failed"
refused_at_least 8
for n in chr blk fifo sock gfifo gsock gchr gblk; do
    reported "refused $n: not a regular file, directory or symlink"; assert_absent "$H/$n"
done
grep -q '^fetch' "$S/calls" && fail "nodes were fetched"
outside_intact; host_unchanged

note "tar: hostile entries in place of a requested file"
setup tar
rec f 644 6 evil; rec f 644 4 good
end_list
mktar "f:$C/outside/victim:pwned" f:../outside/victim:pwned f:d/../../outside/victim:pwned \
    l:evil:../outside/victim "h:evil:$C/outside/victim" h:evil:a c:evil b:evil p:evil d:evil \
    f:unasked:x f:good:good f:good:twin
pull || fail "pull failed"
refused_at_least 12
reported "refused tar entry $C/outside/victim: absolute path"
reported "refused tar entry ../outside/victim"
reported "refused tar entry d/../../outside/victim"
reported "refused tar entry evil: hard link"
reported "refused tar entry evil: not a regular file"
reported "refused tar entry unasked: not requested"
reported "refused tar entry good: sent twice"
reported "skipped evil: not received"
assert_absent "$H/evil"; assert_absent "$H/unasked"
assert_eq "$(cat "$H/good")" "good" "the first good copy"
outside_intact; host_unchanged
# the refused file is still pending: the next pull asks for it again
pull || fail "second pull"
grep -c '^fetch' "$S/calls" | grep -qx 2 || fail "evil not fetched again"

note "setuid/setgid stripped and reported"
setup suid
rec f 6755 3 suid; rec d 3777 0 sgid
end_list
mktar f:suid:abc:6755
pull || fail "pull failed"
assert_eq "$(stat -c %a "$H/suid")" "755" "setuid/setgid stripped"
assert_eq "$(stat -c %a "$H/sgid")" "1777" "setgid dir stripped"
reported "stripped setuid/setgid bits of suid"
reported "stripped setuid/setgid bits of sgid"
# the ledger holds what was applied, so the host is not pushed back as a
# change and the sandbox's bits alone do not refetch it every time
"$TOOL" ledger "$DB" sbx | grep -q '^suid 1 3 100755 ' || fail "ledger: $("$TOOL" ledger "$DB" sbx | grep suid)"
pull || fail "second pull"
assert_eq "$(stat_of fetched)" 0 "setuid file fetched again"
outside_intact; host_unchanged

note "caps: checked on the listing before anything is fetched or written"
setup cap-file
rec f 644 7 new; rec f 644 2000 big
end_list
mktar f:new:remote "F:big:2000:2000"
pull --max-file 1000 && fail "single file cap not enforced"
reported "single file size cap exceeded (nothing applied)"
grep -q '^fetch' "$S/calls" && fail "fetched despite the cap"
assert_absent "$H/new"; assert_absent "$H/big"
outside_intact; host_unchanged

setup cap-total
rec f 644 600 t1; rec f 644 600 t2
end_list
pull --max-total 1000 && fail "total cap not enforced"
reported "over the caps (nothing applied)"
grep -q '^fetch' "$S/calls" && fail "fetched despite the cap"
assert_absent "$H/t1"
outside_intact; host_unchanged

setup cap-count
for i in 1 2 3 4 5 6; do rec f 644 1 "n$i"; done
end_list
pull --max-files 5 && fail "file count cap not enforced"
reported "listing has more than 5 entries (cap)"
assert_absent "$H/n1"
outside_intact; host_unchanged

note "caps: a tar that lies about sizes is stopped before anything is written"
setup cap-lie
rec f 644 4 good; rec f 644 5 liar
end_list
mktar f:good:good "F:liar:500000:500000"
pull --max-file 1000 && fail "tar size lie not caught"
reported "liar: single file size cap exceeded (nothing applied)"
assert_absent "$H/good"; assert_absent "$H/liar"
outside_intact; host_unchanged

note "listing forgeries: truncated, a second marker record"
setup forged
rec f 644 4 new
mktar f:new:new
pull && fail "truncated listing accepted"
reported "listing truncated"
assert_absent "$H/new"
printf 'Mforged\0' >> "$S/list"; end_list
pull || fail "second marker record"
assert_eq "$(cat "$H/new")" "new" "first marker record wins"
outside_intact

note "wiped, emptied or replaced sandbox root: no mass deletion (real local: transport)"
wsetup() {
    C=$T/$1 H=$T/$1/host R=$T/$1/remote S=$T/$1/srv DB=$T/$1/state.db
    mkdir -p "$H/d" "$R" "$S"
    for f in a b c d/e; do printf 'base %s\n' "$f" > "$H/$f"; done
    cp -a "$H/." "$R/"
    find "$H" "$R" -exec touch -h -d @$MTIME {} +
    "$TOOL" seed "$DB" sbx "local:$R" "$R" ${2:-} || fail "seed"
    URL=local:$R
    tree_manifest "$H" > "$S/.host"
}
host_same() { tree_manifest "$H" > "$S/.host2"; diff -u "$S/.host" "$S/.host2" >&2 || fail "host changed"; }
wsetup wiped
rm -rf "$R"
pull && fail "missing root accepted"
assert_eq "$(stat_of deleted)" 0 "deleted"
reported "refused pull: the sandbox root $R is missing; nothing changed"
host_same
wsetup emptied
find "$R" -mindepth 1 -delete
pull && fail "emptied root accepted"
reported "refused pull: the sandbox root marker .hermesfs-sandbox is missing"
host_same
wsetup replaced
rm "$R/a" "$R/b"; echo other-id > "$R/.hermesfs-sandbox"; mkfifo "$R/fifo"
pull && fail "replaced root accepted"
reported "marker .hermesfs-sandbox is different"
sed -n 2p "$S/out" | grep -q '^refused pull: the sandbox root marker' ||
    fail "the reason is not the report's first line"
host_same
wsetup nomarker --no-marker
find "$R" -mindepth 1 -delete
pull && fail "emptied root (no marker recorded) accepted"
reported "refused pull: the sandbox root is empty but"
host_same
wsetup legit
rm "$R/a" "$R/d/e"
pull || fail "legit deletions refused"
assert_eq "$(stat_of deleted)" 2 "legit deletions"
assert_absent "$H/a"; assert_absent "$H/d/e"
echo ok
