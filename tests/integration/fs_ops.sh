#!/usr/bin/env bash
# Each operation through a hermesfs mount: its effect on the backing dir and
# the journal entries it leaves; clean unmount state; in-place mounts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"

B=$T/backing M=$T/mnt
mkdir -p "$B" "$M"
mount_hermesfs "$B" "$M"

SINCE=0
mark() { SINCE=$(journal --head); }
# The journal since the last mark, without seq numbers.
jnow() { journal "$SINCE" | cut -d' ' -f2-; }
# expect LINE...: these entries appear since the mark, in this order.
_has_in_order() {
    local want=("$@") i=0 line
    while IFS= read -r line; do
        [ $i -lt ${#want[@]} ] && [ "$line" == "${want[i]}" ] && i=$((i + 1))
    done < <(jnow)
    [ $i -eq ${#want[@]} ]
}
expect() {
    wait_for _has_in_order "$@" || { jnow >&2; fail "journal lacks, in order: $*"; }
}
count_of() { jnow | grep -cFx "$1"; }

note "create + write"
mark
printf 'hello' > "$M/a"
assert_eq "$(cat "$B/a")" "hello"
expect "create a" "write a"

note "a stream of writes costs one write entry"
mark
python3 - "$M/big" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(1000):
        f.write(b"x" * 4096)
PY
assert_eq "$(stat -c %s "$B/big")" 4096000
expect "create big" "write big"
assert_eq "$(count_of "write big")" 1 "write entries for one open/close"

note "append"
mark
printf ' world' >> "$M/a"
assert_eq "$(cat "$B/a")" "hello world"
expect "write a"

note "truncate"
mark
truncate -s 3 "$M/a"
assert_eq "$(cat "$B/a")" "hel"
expect "truncate a"
mark
: > "$M/a"
assert_eq "$(stat -c %s "$B/a")" 0
expect "truncate a"

note "mkdir, rename, rename over, link, symlink"
mark
mkdir "$M/d"
[ -d "$B/d" ] || fail "mkdir not in backing"
echo one > "$M/d/f"
mv "$M/d/f" "$M/d/g"
assert_absent "$B/d/f"
assert_eq "$(cat "$B/d/g")" one
echo two > "$M/h"
mv "$M/h" "$M/d/g"
assert_eq "$(cat "$B/d/g")" two
ln "$M/d/g" "$M/d/hard"
assert_eq "$(stat -c %i "$B/d/g")" "$(stat -c %i "$B/d/hard")"
ln -s d/g "$M/sym"
assert_eq "$(readlink "$B/sym")" "d/g"
assert_eq "$(cat "$M/sym")" two
expect "mkdir d" "create d/f" "rename d/f d/g" "create h" "rename h d/g" \
    "link d/g d/hard" "symlink sym d/g"

note "chmod, chown, utimens, xattr, mknod"
mark
chmod 600 "$M/d/g"
assert_eq "$(stat -c %a "$B/d/g")" 600
touch -d '2020-01-02 03:04:05' "$M/d/g"
assert_eq "$(stat -c %Y "$B/d/g")" "$(date -d '2020-01-02 03:04:05' +%s)"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.k", b"v")' "$M/d/g" ||
    fail "setxattr through the mount"
assert_eq "$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.k").decode())' "$B/d/g")" v
assert_eq "$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.k").decode())' "$M/d/g")" v
mkfifo "$M/fifo"
[ -p "$B/fifo" ] || fail "fifo not in backing"
expect "chmod d/g" "utimens d/g" "xattr d/g" "create fifo"
if [ "$(id -u)" = 0 ]; then
    mark
    chown 1:1 "$M/d/g"
    assert_eq "$(stat -c %u:%g "$B/d/g")" "1:1"
    expect "chown d/g"
    note "new files belong to the caller"
    chmod 755 "$T"; chmod 777 "$M/d"
    setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo n > '$M/d/by-nobody'; mkdir '$M/d/dir-nobody'" ||
        fail "nobody cannot create in a 0777 dir"
    assert_eq "$(stat -c %u:%g "$B/d/by-nobody")" "65534:65534"
    assert_eq "$(stat -c %u:%g "$B/d/dir-nobody")" "65534:65534"
    chmod 700 "$M/d"
    setpriv --reuid=65534 --regid=65534 --clear-groups cat "$M/d/by-nobody" 2>/dev/null &&
        fail "permission checks not enforced for another user"
    chmod 755 "$M/d"
    note "open(O_TRUNC) by another user clears set-user/group-ID like a local disk"
    mkdir -p "$T/native"
    for dir in "$M/d" "$T/native"; do
        echo x > "$dir/suid"; chmod 6777 "$dir/suid"
        echo x > "$dir/suid-root"; chmod 6777 "$dir/suid-root"
        setpriv --reuid=65534 --regid=65534 --clear-groups sh -c ": > '$dir/suid'" ||
            fail "nobody cannot truncate a 0777 file in $dir"
        : > "$dir/suid-root"
    done
    assert_eq "$(stat -c %a "$T/native/suid")" 777 "native: suid+sgid cleared"
    assert_eq "$(stat -c %a "$B/d/suid")" "$(stat -c %a "$T/native/suid")" "mode after truncation by nobody"
    assert_eq "$(stat -c %a "$M/d/suid")" "$(stat -c %a "$T/native/suid")" "mode seen through the mount"
    assert_eq "$(stat -c %a "$B/d/suid-root")" "$(stat -c %a "$T/native/suid-root")" "mode after truncation by root"
    assert_eq "$(stat -c %s "$B/d/suid")" 0
    rm -f "$M/d/suid" "$M/d/suid-root"
fi

note "unlink, rmdir"
mark
rm "$M/d/hard" "$M/sym" "$M/fifo"
assert_absent "$B/d/hard"
rm -rf "$M/d"
assert_absent "$B/d"
expect "unlink d/hard" "unlink sym" "unlink fifo" "unlink d/g" "rmdir d"

note "clean unmount leaves the store clean, remount journals nothing new"
unmount_hermesfs "$M" || fail "daemon exit status"
assert_eq "$(journal --clean)" clean
mark
mount_hermesfs "$B" "$M"
echo later > "$M/later"
expect "create later"
assert_eq "$(jnow | grep -vc later)" 0 "entries other than 'later' after a clean remount"
unmount_hermesfs "$M"

note "offline edits are journaled at the next mount"
echo offline > "$B/offline"
rm "$B/later"
mark
mount_hermesfs "$B" "$M"
expect "unlink later"
expect "create offline" "write offline"
unmount_hermesfs "$M"

note "in-place mount over the backing dir, daemonized, default state dir"
export HOME=$T/home XDG_STATE_HOME=
mkdir -p "$HOME"
"$HERMESFS" "$B" || fail "daemon mode mount failed"
at_exit "fusermount3 -u -z '$B'"
is_mounted "$B" || fail "not mounted in place"
echo inplace > "$B/ip"
assert_eq "$(cat "$B/ip")" inplace
st=$(awk -v mp="$B" '$5 == mp { for (i = 6; i <= NF; i++) if ($i == "-") { print $(i + 2); exit } }' /proc/self/mountinfo)
case $st in hermesfs:"$HOME"/.local/state/hermesfs/*) ;; *) fail "unexpected mount source $st" ;; esac
assert_eq "$(stat -c %a "${st#hermesfs:}")" 700
fusermount3 -u "$B"
wait_for eval "! pgrep -f '^$HERMESFS $B\$' >/dev/null" || fail "daemon did not exit"
assert_eq "$(cat "$B/ip")" inplace
assert_eq "$("$FSJOURNAL" "${st#hermesfs:}/store.db" | grep -c 'create ip')" 1
echo PASS
