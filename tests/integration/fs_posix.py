"""POSIX behaviour through a hermesfs mount (driven by fs_posix.sh).

usage: fs_posix.py MNT BACKING
Each check raises on failure; prints one line per check.
"""
import ctypes
import errno
import fcntl
import mmap
import multiprocessing as mp
import os
import sqlite3
import sys
import time

MNT, BACK = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100


def m(p):
    return os.path.join(MNT, p)


def b(p):
    return os.path.join(BACK, p)


def put(path, data):
    with open(path, "wb") as f:
        f.write(data)


def get(path):
    with open(path, "rb") as f:
        return f.read()


def renameat2(a, b_, flags):
    r = libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b_.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()


def check(name):
    print("ok", name, flush=True)


def test_rename_flags():
    put(m("r1"), b"one")
    put(m("r2"), b"two")
    assert renameat2(m("r1"), m("r2"), RENAME_NOREPLACE) == errno.EEXIST
    assert get(b("r2")) == b"two"
    assert renameat2(m("r1"), m("r3"), RENAME_NOREPLACE) == 0
    assert get(b("r3")) == b"one" and not os.path.exists(b("r1"))
    assert renameat2(m("r2"), m("r3"), RENAME_EXCHANGE) == 0
    assert get(b("r2")) == b"one" and get(b("r3")) == b"two"
    assert get(m("r2")) == b"one" and get(m("r3")) == b"two"
    os.mkdir(m("rd"))
    assert renameat2(m("rd"), m("r2"), RENAME_EXCHANGE) == 0
    assert os.path.isdir(b("r2")) and get(b("rd")) == b"one"
    check("rename NOREPLACE/EXCHANGE")


def test_xattr():
    put(m("x"), b"x")
    os.setxattr(m("x"), "user.a", b"1")
    os.setxattr(m("x"), "user.b", b"22")
    assert sorted(os.listxattr(m("x"))) == ["user.a", "user.b"]
    assert os.getxattr(b("x"), "user.b") == b"22"
    os.removexattr(m("x"), "user.a")
    assert os.listxattr(b("x")) == ["user.b"]
    try:
        os.getxattr(m("x"), "user.a")
        raise AssertionError("removed xattr still there")
    except OSError as e:
        assert e.errno == errno.ENODATA
    check("xattrs")


def test_fallocate_holes():
    fd = os.open(m("sparse"), os.O_RDWR | os.O_CREAT, 0o644)
    os.posix_fallocate(fd, 0, 1 << 20)
    assert os.fstat(fd).st_size == 1 << 20
    os.ftruncate(fd, 0)
    os.pwrite(fd, b"D" * 4096, 8 << 20)
    os.fsync(fd)
    assert os.stat(b("sparse")).st_size == (8 << 20) + 4096
    assert os.lseek(fd, 0, os.SEEK_DATA) == 8 << 20
    assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
    assert os.lseek(fd, 8 << 20, os.SEEK_HOLE) == (8 << 20) + 4096
    # punch a hole
    FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
    r = libc.fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
                       ctypes.c_long(8 << 20), ctypes.c_long(4096))
    assert r == 0, os.strerror(ctypes.get_errno())
    assert os.pread(fd, 4, 8 << 20) == b"\0\0\0\0"
    os.close(fd)
    assert get(b("sparse"))[8 << 20:(8 << 20) + 4] == b"\0\0\0\0"
    check("fallocate, SEEK_DATA/SEEK_HOLE, punch hole")


def test_copy_file_range():
    put(m("cfr_src"), bytes(range(256)) * 1024)
    src = os.open(m("cfr_src"), os.O_RDONLY)
    dst = os.open(m("cfr_dst"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    left = 256 * 1024
    while left:
        n = os.copy_file_range(src, dst, left)
        assert n > 0
        left -= n
    os.close(src)
    os.close(dst)
    assert get(b("cfr_dst")) == bytes(range(256)) * 1024
    check("copy_file_range")


def test_mmap():
    put(m("mm"), b"\0" * 8192)
    with open(m("mm"), "r+b") as f:
        mm = mmap.mmap(f.fileno(), 8192)
        mm[100:105] = b"hello"
        mm.flush()
        mm.close()
    assert get(b("mm"))[100:105] == b"hello"
    with open(m("mm"), "rb") as f:
        mm = mmap.mmap(f.fileno(), 8192, prot=mmap.PROT_READ)
        assert mm[100:105] == b"hello"
        mm.close()
    check("mmap shared write/read")


def _locker(path, kind, q):
    fd = os.open(path, os.O_RDWR)
    try:
        if kind == "posix":
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        q.put("got")
    except OSError as e:
        q.put("busy" if e.errno in (errno.EAGAIN, errno.EACCES) else str(e))
    os.close(fd)


def test_locks():
    put(m("lk"), b"0" * 100)
    for kind in ("posix", "flock"):
        fd = os.open(m("lk"), os.O_RDWR)
        if kind == "posix":
            fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)
        q = mp.Queue()
        p = mp.Process(target=_locker, args=(m("lk"), kind, q))
        p.start()
        assert q.get(timeout=20) == "busy", kind
        p.join()
        os.close(fd)  # releases
        p = mp.Process(target=_locker, args=(m("lk"), kind, q))
        p.start()
        assert q.get(timeout=20) == "got", kind
        p.join()
    # a byte range lock on another range does not conflict
    fd = os.open(m("lk"), os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
    fd2_ok = mp.Queue()

    def other(q):
        f2 = os.open(m("lk"), os.O_RDWR)
        try:
            fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
            q.put("got")
        except OSError:
            q.put("busy")
    p = mp.Process(target=other, args=(fd2_ok,))
    p.start()
    assert fd2_ok.get(timeout=20) == "got"
    p.join()
    os.close(fd)
    check("POSIX record locks and flock between processes")


def _sqlite_worker(path, wid, n, q):
    try:
        db = sqlite3.connect(path, timeout=30)
        db.execute("PRAGMA busy_timeout=30000")
        for i in range(n):
            with db:
                db.execute("INSERT INTO t(w, i) VALUES(?, ?)", (wid, i))
            if i % 10 == 0:
                db.execute("SELECT count(*) FROM t").fetchone()
        db.close()
        q.put("done")
    except Exception as e:  # report, do not hang the parent
        q.put(repr(e))


def test_sqlite_wal():
    path = m("session.db")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    db.execute("CREATE TABLE t(w INTEGER, i INTEGER)")
    db.commit()
    q = mp.Queue()
    ps = [mp.Process(target=_sqlite_worker, args=(path, w, 200, q)) for w in (1, 2)]
    for p in ps:
        p.start()
    res = [q.get(timeout=120) for _ in ps]
    for p in ps:
        p.join()
    assert res == ["done", "done"], res
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 400
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    # the backing copy is a valid database with every row
    c = sqlite3.connect("file:%s?mode=ro" % b("session.db"), uri=True)
    assert c.execute("SELECT count(*) FROM t").fetchone()[0] == 400
    c.close()
    check("SQLite WAL database shared by two processes")


def test_fsync_ftruncate_times():
    fd = os.open(m("ft"), os.O_RDWR | os.O_CREAT, 0o640)
    os.write(fd, b"abcdef")
    os.ftruncate(fd, 2)
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)
    assert get(b("ft")) == b"ab"
    assert os.stat(b("ft")).st_mode & 0o777 == 0o640
    os.utime(m("ft"), ns=(1_000_000_000, 2_000_000_123))
    assert os.stat(b("ft")).st_mtime_ns == 2_000_000_123
    st = os.statvfs(m(""))
    assert st.f_blocks > 0
    check("fsync, fdatasync, ftruncate, utimens, statfs")


def test_readdir():
    os.mkdir(m("many"))
    for i in range(500):
        put(m("many/f%03d" % i), b"")
    names = sorted(os.listdir(m("many")))
    assert names == ["f%03d" % i for i in range(500)], len(names)
    with os.scandir(m("many")) as it:
        for e in it:
            assert e.is_file()
    check("readdir of 500 entries")


def test_unlinked_open_file():
    fd = os.open(m("gone"), os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"still here")
    os.unlink(m("gone"))
    assert not os.path.exists(b("gone"))
    assert os.pread(fd, 10, 0) == b"still here"
    assert os.fstat(fd).st_size == 10
    os.close(fd)
    assert not [n for n in os.listdir(BACK) if n.startswith(".fuse_hidden")]
    check("open file survives unlink, no .fuse_hidden files")


for t in [test_rename_flags, test_xattr, test_fallocate_holes, test_copy_file_range,
          test_mmap, test_locks, test_sqlite_wal, test_fsync_ftruncate_times,
          test_readdir, test_unlinked_open_file]:
    t()
print("all passed")
