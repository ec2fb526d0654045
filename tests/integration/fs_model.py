"""Randomized model test: apply the same random operations through a
hermesfs mount and to a plain model directory; results (return values and
errno) must match at every step, the touched paths after every step, and the
whole trees (mount, backing and model) every CHECK_EVERY steps and at the end.

usage: fs_model.py MNT BACKING MODEL SEED STEPS
"""
import errno
import os
import random
import stat
import sys

MNT, BACK, MODEL = sys.argv[1:4]
SEED, STEPS = int(sys.argv[4]), int(sys.argv[5])
CHECK_EVERY = 400
TRACE = os.environ.get("FS_MODEL_TRACE")
rng = random.Random(SEED)
NAMES = ["f0", "f1", "f2", "f3", "g0", "g1", "d0", "d1", "e0"]
handles = []  # (relpath at open time, fd in mount, fd in model)


def both(fn, rel, *args):
    """Run fn(root/rel...) on mount and model; results must match."""
    res = []
    for root in (MNT, MODEL):
        try:
            res.append(("ok", fn(root, rel, *args)))
        except OSError as e:
            res.append(("err", errno.errorcode.get(e.errno, e.errno)))
    global _model
    if res[0][0] == "ok" and fn.__name__ not in ("op_read", "op_chmod", "op_truncate", "op_append"):
        _model = None
    if res[0] != res[1]:
        raise AssertionError("step diverged: %s %r %.100r: mount %.200r model %.200r"
                             % (fn.__name__, rel, args, res[0], res[1]))
    if TRACE:
        print("%s %r %.60r -> %.60r" % (fn.__name__, rel, args, res[0]))
    return res[0]


def scan(root, rel=""):
    """[(relpath, is_real_dir)] below root, depth first."""
    out = []
    with os.scandir(os.path.join(root, rel)) as it:
        for e in it:
            r = os.path.join(rel, e.name)
            d = e.is_dir(follow_symlinks=False)
            out.append((r, d))
            if d:
                out.extend(scan(root, r))
    return out


_model = None  # cached scan of MODEL, dropped by every namespace change


def entries(root):
    global _model
    if root is not None:
        return [r for r, _ in scan(root)]
    if _model is None:
        _model = scan(MODEL)
    return [r for r, _ in _model]


def rand_dir():
    entries(None)
    return rng.choice([""] + [r for r, d in _model if d])


def rand_path():
    return os.path.join(rand_dir(), rng.choice(NAMES))


def rand_existing():
    es = entries(None)
    return rng.choice(es) if es and rng.random() < 0.9 else rand_path()


def rand_bytes(n):
    return rng.randbytes(n)


# ---- operations: fn(root, rel, args...) -> comparable value ----
def op_write(root, rel, off, data):
    fd = os.open(os.path.join(root, rel), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        return os.pwrite(fd, data, off)
    finally:
        os.close(fd)


def op_append(root, rel, data):
    fd = os.open(os.path.join(root, rel), os.O_WRONLY | os.O_APPEND)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def op_truncate(root, rel, size):
    os.truncate(os.path.join(root, rel), size)


def op_rename(root, rel, dst):
    os.rename(os.path.join(root, rel), os.path.join(root, dst))


def op_unlink(root, rel):
    os.unlink(os.path.join(root, rel))


def op_mkdir(root, rel):
    os.mkdir(os.path.join(root, rel), 0o755)


def op_rmdir(root, rel):
    os.rmdir(os.path.join(root, rel))


def op_chmod(root, rel, mode):
    os.chmod(os.path.join(root, rel), mode)


def op_symlink(root, rel, target):
    os.symlink(target, os.path.join(root, rel))


def op_link(root, rel, dst):
    os.link(os.path.join(root, rel), os.path.join(root, dst), follow_symlinks=False)


def op_read(root, rel, off, n):
    fd = os.open(os.path.join(root, rel), os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def handle_step():
    """Open, write through, or close long-lived handles (renames happen
    meanwhile, so writes land on whatever name the file has now)."""
    if handles and (len(handles) >= 3 or rng.random() < 0.5):
        h = rng.choice(handles)
        if rng.random() < 0.3:
            handles.remove(h)
            os.close(h[1])
            os.close(h[2])
            return "close"
        off, data = rng.randrange(0, 70000), rand_bytes(rng.randrange(0, 9000))
        assert os.pwrite(h[1], data, off) == os.pwrite(h[2], data, off)
        if rng.random() < 0.2:
            os.fsync(h[1])
        return "hwrite"
    rel = rand_existing()
    fds, errs = [], []
    for root in (MNT, MODEL):
        try:
            fds.append(os.open(os.path.join(root, rel), os.O_RDWR | os.O_NOFOLLOW))
            errs.append(None)
        except OSError as e:
            errs.append(e.errno)
    if errs[0] != errs[1]:
        raise AssertionError("open %r: mount %r model %r" % (rel, errs[0], errs[1]))
    if errs[0] is None:
        handles.append((rel, fds[0], fds[1]))
        return "open"
    return "open-failed"


def describe(root, rel):
    p = os.path.join(root, rel)
    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(st.st_mode):
        return ("l", os.readlink(p))
    if stat.S_ISDIR(st.st_mode):
        return ("d", stat.S_IMODE(st.st_mode))
    with open(p, "rb") as f:
        return ("f", stat.S_IMODE(st.st_mode), st.st_size, st.st_nlink, f.read())


def compare_paths(rels, roots=(MNT,)):
    for rel in rels:
        want = describe(MODEL, rel)
        for root in roots:
            got = describe(root, rel)
            if got != want:
                raise AssertionError("%s differs in %s: %r vs model %r"
                                     % (rel, root, str(got)[:200], str(want)[:200]))


def compare_trees(step):
    want = sorted(entries(None))
    for root in (MNT, BACK):
        got = sorted(entries(root))
        if got != want:
            raise AssertionError("step %d: entries differ in %s: %s" % (
                step, root, sorted(set(got) ^ set(want))))
    compare_paths(want, (MNT, BACK))


def step(i):
    r = rng.random()
    if r < 0.25:
        rel = rand_path() if rng.random() < 0.3 else rand_existing()
        both(op_write, rel, rng.randrange(0, 70000), rand_bytes(rng.randrange(0, 9000)))
    elif r < 0.32:
        both(op_append, rand_existing(), rand_bytes(rng.randrange(1, 3000)))
    elif r < 0.40:
        both(op_truncate, rand_existing(), rng.randrange(0, 80000))
    elif r < 0.52:
        src, dst = rand_existing(), rand_path()
        both(op_rename, src, dst)
        return [src, dst]
    elif r < 0.58:
        both(op_unlink, rand_existing())
    elif r < 0.65:
        both(op_mkdir, rand_path())
    elif r < 0.69:
        both(op_rmdir, rand_existing())
    elif r < 0.73:
        both(op_chmod, rand_existing(), rng.choice([0o600, 0o644, 0o755, 0o700]))
    elif r < 0.76:
        both(op_symlink, rand_path(), rng.choice(["f0", "../x", "d0/f1"]))
    elif r < 0.79:
        src, dst = rand_existing(), rand_path()
        both(op_link, src, dst)
        return [src, dst]
    elif r < 0.87:
        rel = rand_existing()
        both(op_read, rel, rng.randrange(0, 70000), rng.randrange(0, 20000))
        return [rel]
    else:
        handle_step()
        return [h[0] for h in handles]
    return []


def main():
    for i in range(STEPS):
        touched = step(i)
        compare_paths(set(touched))
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            compare_trees(i)
    for h in handles:
        os.close(h[1])
        os.close(h[2])
    compare_trees(STEPS)
    print("model test: %d steps, seed %d, trees equal" % (STEPS, SEED))


main()
