#!/usr/bin/env bash
# FUSE passthrough: as root on Linux >= 6.9 the kernel reads and writes the
# backing files itself. Data, journal entries and permissions must come out
# exactly as on the plain path: writes the daemon never sees are journaled
# (close, fsync, mmap, a file kept open), concurrent opens of one file share
# its backing file, set-user-ID is cleared by a write from another user,
# and with -o no_passthrough the plain READ/WRITE path serves everything
# (without the privilege: fs_passthrough_user.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"

[ "$(id -u)" = 0 ] || skip "needs root (passthrough needs CAP_SYS_ADMIN)"
B=$T/backing M=$T/mnt
mkdir -p "$B" "$M"
echo "existing content" > "$B/old"
mount_hermesfs "$B" "$M" -o debug

# The kernel offers passthrough since 6.9; older kernels take the plain path.
kver=$(uname -r | awk -F. '{ printf "%d%03d", $1, $2 }')
[ "$kver" -ge 6009 ] || skip "kernel $(uname -r) has no FUSE passthrough"

SINCE=0
mark() { SINCE=$(journal --head); }
jnow() { journal "$SINCE" | cut -d' ' -f2-; }
count_of() { jnow | grep -cFx "$1"; }
has() { jnow | grep -qFx "$1"; }
expect() { wait_for has "$1" || { jnow >&2; fail "journal lacks: $1"; }; }
requests() { grep -c "opcode: $1 " "$T/hermesfs.log"; }

note "status says the kernel serves file data"
"$FSCTL" -m "$M" status > "$T/status" || fail "status"
grep -q "^file data: kernel passthrough" "$T/status" || fail "status: $(cat "$T/status")"
"$FSCTL" -m "$M" status --json | grep -q '"passthrough":true' || fail "status --json lacks passthrough:true"

note "data written and read through the mount, no READ or WRITE request"
mark
head -c 8M /dev/urandom > "$T/src"
dd if="$T/src" of="$M/big" bs=1M status=none
cmp "$T/src" "$B/big" || fail "backing file differs from what was written"
cmp "$T/src" "$M/big" || fail "file read through the mount differs"
cat "$M/old" > /dev/null
assert_eq "$(requests WRITE)" 0 "WRITE requests (the kernel writes the backing file)"
assert_eq "$(requests READ)" 0 "READ requests (the kernel reads the backing file)"
expect "create big"
expect "write big"

note "an in-place write to an existing file is journaled once"
mark
python3 - "$M/old" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(100):
    os.pwrite(fd, b"X", i % 8)
os.close(fd)
PY
assert_eq "$(cat "$B/old")" "XXXXXXXX content"
expect "write old"
sleep 0.3
assert_eq "$(count_of "write old")" 1 "write entries for one open/close"

note "an open that writes nothing, and a read-only open, journal nothing"
mark
python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDWR))' "$M/old"
cat "$M/old" > /dev/null
echo marker > "$M/marker"
expect "write marker"
assert_eq "$(count_of "write old")" 0 "write entries for opens that did not write"

note "fsync of a file still open journals its writes durably"
mark
python3 - "$M/kept" "$(state_db)" "$FSJOURNAL" <<'PY'
import os, subprocess, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"kept open")
os.fsync(fd)
# Read the store while the file is still open: the entry is there.
out = subprocess.run([sys.argv[3], sys.argv[2], "0"], capture_output=True,
                     text=True, check=True).stdout
assert any(l.split(" ", 1)[1] == "write kept" for l in out.splitlines()), out
os.close(fd)
PY
[ $? -eq 0 ] || fail "fsync returned before the write entry was in the store"

note "writes through a shared mapping are journaled"
mark
printf '%4096s' "" > "$B/mapped"
python3 - "$M/mapped" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096)
os.close(fd)
m[0:6] = b"mapped"
m.flush()
m.close()
PY
assert_eq "$(head -c 6 "$B/mapped")" "mapped"
expect "write mapped"

note "writes through a mapping long after its file was closed are journaled"
# The RELEASE came at close(); the mapping writes on with no request.
mark
printf '%4096s' "" > "$B/mapped2"
python3 - "$M/mapped2" "$FSCTL" "$M" "$(state_db)" "$FSJOURNAL" "$SINCE" <<'PY'
import mmap, os, subprocess, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096)
os.close(fd)
time.sleep(0.5)
m[0:7] = b"later!!"
m.flush()
# Still mapped: status journals what open and mapped files hold.
subprocess.run([sys.argv[2], "-m", sys.argv[3], "status"], check=True,
               stdout=subprocess.DEVNULL)
out = subprocess.run([sys.argv[5], sys.argv[4], sys.argv[6]],
                     capture_output=True, text=True, check=True).stdout
assert any(l.split(" ", 1)[1] == "write mapped2" for l in out.splitlines()), out
m.close()
PY
[ $? -eq 0 ] || fail "a write through a mapping of a closed file was not journaled"
assert_eq "$(head -c 7 "$B/mapped2")" "later!!"

note "fsync through another handle covers a write just closed"
echo old > "$B/synced"
mark
python3 - "$M/synced" "$(state_db)" "$FSJOURNAL" "$SINCE" <<'PY'
import os, subprocess, sys
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY)
os.write(fd, b"data")
os.close(fd)            # its RELEASE may still be on its way
fd = os.open(p, os.O_RDONLY)
os.fsync(fd)            # like `sync FILE`
out = subprocess.run([sys.argv[3], sys.argv[2], sys.argv[4]],
                     capture_output=True, text=True, check=True).stdout
assert any(l.split(" ", 1)[1] == "write synced" for l in out.splitlines()), out
os.close(fd)
PY
[ $? -eq 0 ] || fail "fsync on another handle returned before the write was journaled"

note "one file open several times at once (one backing file per inode)"
mark
python3 - "$M/shared" <<'PY'
import os, sys
p = sys.argv[1]
w = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
r = os.open(p, os.O_RDONLY)
w2 = os.open(p, os.O_RDWR)
os.write(w, b"abc")
os.pwrite(w2, b"Z", 1)
assert os.pread(r, 10, 0) == b"aZc", os.pread(r, 10, 0)
for fd in (w, r, w2):
    os.close(fd)
# and again after every handle was closed
with open(p, "rb") as f:
    assert f.read() == b"aZc"
PY
[ $? -eq 0 ] || fail "concurrent opens of one file"
expect "write shared"

note "a write by another user clears set-user-ID like a local disk"
chmod 755 "$T"
mkdir -p "$M/d" "$T/native"; chmod 777 "$M/d"
for dir in "$M/d" "$T/native"; do
    echo x > "$dir/suid"; chmod 6777 "$dir/suid"
    setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo y >> '$dir/suid'" ||
        fail "nobody cannot append to a 0777 file in $dir"
done
assert_eq "$(stat -c %a "$B/d/suid")" "$(stat -c %a "$T/native/suid")" "mode after a write by nobody"
assert_eq "$(cat "$B/d/suid")" "x
y"

note "the plain path with -o no_passthrough"
unmount_hermesfs "$M" || fail "unmount"
: > "$T/hermesfs.log"
mount_hermesfs "$B" "$M" -o debug,no_passthrough
"$FSCTL" -m "$M" status | grep -q "^file data: through the daemon" ||
    fail "status with -o no_passthrough: $("$FSCTL" -m "$M" status)"
mark
dd if="$T/src" of="$M/big2" bs=1M status=none
cmp "$T/src" "$M/big2" || { cmp "$T/src" "$B/big2"; ls -la "$T/src" "$M/big2" "$B/big2"; fail "no_passthrough: file read back differs"; }
[ "$(requests WRITE)" -gt 0 ] || fail "no_passthrough: no WRITE request reached the daemon"
expect "write big2"
unmount_hermesfs "$M" || fail "unmount"

echo PASS
