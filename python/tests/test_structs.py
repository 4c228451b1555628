"""Queue, stack, bcast and map against C processes."""

import math
import selectors
import struct
import threading
import time

import numpy as np
import pytest

import shmkit
from conftest import run_peer

U8 = shmkit.dtype_type_id(np.uint64)


def test_queue_c_to_python_and_back(seg, name):
    q = seg.queue("q", dtype=np.uint64, cap=1024, create=True)
    assert q.elem_len == 8 and q.cap == 1024
    assert run_peer("queue-push", name, "q", 500) == ["pushed 500"]
    assert len(q) == 500
    got = [int(q.pop(timeout=0)) for _ in range(500)]
    assert got == [i * i for i in range(500)]
    with pytest.raises(shmkit.WouldBlock):
        q.pop(timeout=0)
    for i in range(300):
        q.push(np.uint64(i * i + 1))
    assert run_peer("queue-pop", name, "q", 300) == ["popped 300", "bad=0"]
    assert q.info().lost == 0


def test_queue_bytes_structured_and_fileno(seg):
    q = seg.queue("b", elem_len=4, cap=2, create=True)
    q.push(b"abcd")
    q.push(bytearray(b"efgh"))
    with pytest.raises(shmkit.WouldBlock):
        q.push(b"ijkl", timeout=0)
    with pytest.raises(ValueError):
        q.push(b"toolong")
    assert q.pop() == b"abcd" and q.pop() == b"efgh"
    rec = np.dtype([("id", "<u4"), ("x", "<f4"), ("tag", "S4")])
    s = seg.queue("s", dtype=rec, cap=8, create=True)
    sel = selectors.DefaultSelector()
    sel.register(s.fileno(), selectors.EVENT_READ)
    with pytest.raises(shmkit.WouldBlock):
        s.pop(timeout=0)                          # re-arms the fd
    s.push((7, 1.5, b"ab"))
    assert sel.select(2)
    sel.close()
    r = s.pop(timeout=0)
    assert (int(r["id"]), float(r["x"]), bytes(r["tag"])) == (7, 1.5, b"ab")
    with pytest.raises(shmkit.TypeMismatch):
        seg.queue("s", dtype=np.dtype([("a", "<u4"), ("b", "<f4"),
                                       ("c", "S4")]))


def test_stack(seg):
    st = seg.stack("st", elem_len=8, cap=4, create=True)
    for i in range(4):
        st.push(struct.pack("<Q", i))
    with pytest.raises(shmkit.WouldBlock):
        st.push(b"\0" * 8, timeout=0)
    assert len(st) == 4
    assert [struct.unpack("<Q", st.pop())[0] for _ in range(4)] == \
        [3, 2, 1, 0]


def test_bcast_loss_reporting_with_c_writer(seg, name, peer):
    b = seg.bcast("bc", "reader", create=True, cap=256, mode="lossy")
    assert b.mode == "lossy"
    p = peer("bcast-write", name, "bc", 200)
    p.expect("ready")
    p.send("go")
    p.expect("wrote 200")
    assert p.wait() == 0
    # the writer lapped us: the first read reports the records lost
    total, expect_seq, losses = 0, 0, []
    while True:
        try:
            data, lost = b.read(timeout=0)
        except shmkit.WouldBlock:
            break
        seq = struct.unpack("<Q", data)[0]
        assert seq == expect_seq + lost, (seq, expect_seq, lost)
        losses.append(lost)
        expect_seq = seq + 1
        total += 1
    assert expect_seq == 200                 # we end at the last record
    assert losses[0] > 0 and total + sum(losses) == 200
    assert total < 200


def test_bcast_reliable_in_process(seg):
    w = seg.bcast("rel", "writer", create=True, mode="reliable", cap=256)
    r1 = seg.bcast("rel", "reader")
    r2 = seg.bcast("rel", "reader")
    n = 0
    while True:
        try:
            w.write(b"m%03d" % n, timeout=0)
        except shmkit.WouldBlock:
            break                           # waits for the slowest reader
        n += 1
    assert 0 < n
    for r in (r1, r2):
        assert [r.read(timeout=0) for _ in range(n)] == \
            [(b"m%03d" % i, 0) for i in range(n)]
    assert w.stat().readers == 2


def test_map_open_fails_after_c_open(seg, monkeypatch):
    """Map() failing after shk_map_open succeeded (here: shk_map_cap
    raising, as an interrupting exception would) closes the C handle at
    once: it stayed open, listed in the segment, until the segment
    closed."""
    seg.map("kv", key_len=8, val_len=8, cap=16, create=True).close()

    class Lib:
        def __getattr__(self, attr):
            if attr == "shk_map_cap":
                raise shmkit.Corrupt(context="test")
            return getattr(real, attr)
    real = shmkit.map.lib
    monkeypatch.setattr(shmkit.map, "lib", Lib())
    with pytest.raises(shmkit.Corrupt) as ei:
        seg.map("kv")
    # ei's traceback keeps the half-made Map alive (as a caller that keeps
    # the exception does, or a reference cycle until the collector runs)
    assert ei.traceback and not seg._children


@pytest.mark.parametrize("rt", [math.inf, 1e300, 5e9])
def test_bcast_reliable_huge_reader_timeout(seg, rt):
    # infinity (or any reader_timeout of 2**63 ns and more) is the C
    # "never test", INT64_MAX (C rejects -1); 5e9 s is below it, but its
    # slice (twice it) is not and must not wrap in ctypes
    w = seg.bcast("rel", "writer", create=True, mode="reliable", cap=256,
                  reader_timeout=rt)
    r = seg.bcast("rel", "reader")
    n = 0
    while True:
        try:
            w.write(b"m%03d" % n, timeout=0)
        except shmkit.WouldBlock:
            break
        n += 1
    assert n > 0
    with pytest.raises(shmkit.Timeout):
        w.write(b"late", timeout=0.2)
    got = []

    def drain():
        time.sleep(0.2)
        got.extend(r.read(timeout=5) for _ in range(n))

    t = threading.Thread(target=drain)
    t.start()
    try:
        w.write(b"late")        # waits (forever) for the reader
    finally:
        t.join()
    assert got == [(b"m%03d" % i, 0) for i in range(n)]
    assert r.read(timeout=0) == (b"late", 0)
    assert w.stat().readers == 1


def test_map_sizes_from_handle(seg, name):
    """A map opened without key_len/val_len takes its sizes from the C
    handle (shk_map_key_len/val_len), not from the registry: the registry
    is not consulted (before, a map removed and re-created with other
    sizes between the look-up and the open needed retries), and a map
    re-created with other sizes gives a new handle the new sizes."""
    seg.map("m", key_len=8, val_len=64, cap=16, create=True).close()

    def no_stat(n):
        raise AssertionError("Map() read the registry")
    with shmkit.Segment(name) as other:
        real, seg.stat = seg.stat, no_stat
        try:
            m = seg.map("m")
            assert (m.key_len, m.val_len) == (8, 64), (m.key_len, m.val_len)
            m.put(b"key_____", b"v" * 64)
            m.close()
            other.remove("m")
            other.map("m", key_len=8, val_len=1, cap=16, create=True).close()
            m = seg.map("m", create=True)   # exists: opened as it is
            assert (m.key_len, m.val_len) == (8, 1), (m.key_len, m.val_len)
            m.put(b"key_____", b"w")
            assert m.get(b"key_____") == b"w"
            m.close()
            with pytest.raises(shmkit.InvalidArgument):
                seg.map("new", create=True)   # nothing to create it with
        finally:
            seg.stat = real


def test_map_both_ways(seg, name):
    m = seg.map("kv", key_len=8, val_len=8, cap=1024, create=True)
    assert run_peer("map-put", name, "kv", 100) == ["put 100"]
    assert len(m) == 100
    assert struct.unpack("<Q", m[b"k0000042"])[0] == 42 * 11
    assert m.get(b"nokey___") is None
    with pytest.raises(KeyError):
        m[b"nokey___"]
    with pytest.raises(ValueError):
        m.get(b"short")
    keys = set(m)
    assert len(keys) == 100 and b"k0000099" in keys
    for k in list(keys):
        del m[k]
    assert len(m) == 0
    for i in range(50):
        assert m.put(b"p%07d" % i, struct.pack("<Q", i * 13)) is True
    assert m.put(b"p0000000", struct.pack("<Q", 0)) is False   # replaced
    assert run_peer("map-check", name, "kv", 50) == ["count=50", "bad=0"]
    with shmkit.Segment(name) as other:
        o = other.map("kv")                       # sizes from the registry
        assert (o.key_len, o.val_len) == (8, 8)
        assert dict(o.items()) == dict(m.items())
    s = seg.map("set", key_len=4, val_len=0, cap=8, create=True)
    s.add(b"abcd")
    assert b"abcd" in s and b"efgh" not in s and s[b"abcd"] == b""
    for i in range(7):
        s.add(b"%04d" % i)                        # fills all 8 slots
    with pytest.raises(shmkit.NoSpace):
        s.add(b"full")


def _in_threads(n, fn):
    """Run fn(k) in n threads at once; returns their results (an exception
    a thread raised is raised here)."""
    out = [None] * n
    go = threading.Barrier(n)

    def run(k):
        try:
            go.wait(10)
            out[k] = fn(k)
        except BaseException as e:
            out[k] = e
    ths = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60)
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return out


@pytest.mark.parametrize("kind", ["queue", "stack", "queue-dtype"])
def test_queue_and_stack_handle_shared_by_threads(seg, kind):
    """Two threads popping through one Queue or Stack handle (the C calls
    are thread-safe) each get their own elements: before, both popped into
    the handle's one out-buffer, so a thread could return the element the
    other had just popped (20000 pops gave about 18900 distinct)."""
    n = 10000
    dt = np.uint64 if kind == "queue-dtype" else None
    if kind == "stack":
        h = seg.stack("h", elem_len=8, cap=1 << 15, create=True)
    else:
        h = seg.queue("h", elem_len=None if dt else 8, cap=1 << 15,
                      create=True, dtype=dt)
    for i in range(2 * n):
        h.push(np.uint64(i) if dt else struct.pack("<Q", i))

    def popper(k):
        if dt:
            return [int(h.pop(timeout=5)) for _ in range(n)]
        return [struct.unpack("<Q", h.pop(timeout=5))[0] for _ in range(n)]
    got = _in_threads(2, popper)
    assert sorted(got[0] + got[1]) == list(range(2 * n))


def test_map_handle_shared_by_threads(seg):
    """m[key] from two threads through one Map handle (shk_map_get is
    thread-safe) returns that key's value: before, both threads read their
    values from the handle's one value buffer (another key's value in
    about 1 of 12 gets)."""
    m = seg.map("m", key_len=8, val_len=64, cap=256, create=True)
    keys = [b"key%05d" % i for i in range(100)]
    for i, k in enumerate(keys):
        m[k] = bytes([i]) * 64

    def getter(t):
        bad = 0
        for j in range(10000):
            i = (j * 7 + t * 31) % 100
            if m[keys[i]] != bytes([i]) * 64:
                bad += 1
            if m.get(keys[i]) != bytes([i]) * 64:
                bad += 1
        return bad
    assert _in_threads(2, getter) == [0, 0]


class _Interleaved:
    """Stands for the ctypes library in one binding module (monkeypatched
    as its `lib`): the main thread's call of `fname` returns only after
    another thread's call of it has completed, the interleaving that two
    threads sharing a handle may always get."""

    def __init__(self, real, fname):
        self._real, self._fname = real, fname
        self._main = threading.main_thread()
        self._first_done = threading.Event()
        self._second_done = threading.Event()

    def __getattr__(self, attr):
        if attr != self._fname:
            return getattr(self._real, attr)
        return self._call

    def _call(self, *args):
        fn = getattr(self._real, self._fname)
        if threading.current_thread() is self._main:
            rc = fn(*args)
            self._first_done.set()
            assert self._second_done.wait(10)
            return rc
        assert self._first_done.wait(10)
        rc = fn(*args)
        self._second_done.set()
        return rc


@pytest.mark.parametrize("kind", ["queue", "stack", "map"])
def test_interleaved_calls_through_one_handle(seg, monkeypatch, kind):
    """The same as the two tests above, without depending on the threads'
    timing: the main thread's pop (or m[key]) returns after the other
    thread's completed.  Before, it returned the element (value) that
    the other thread got, read from the handle's one out-buffer."""
    import shmkit.map
    import shmkit.queue
    if kind == "map":
        h = seg.map("m", key_len=8, val_len=8, cap=16, create=True)
        h[b"first___"] = b"value #1"
        h[b"second__"] = b"value #2"
        mod, fname = shmkit.map, "shk_map_get"
        first = lambda: h[b"first___"]           # noqa: E731
        second = lambda: h[b"second__"]          # noqa: E731
        want = [b"value #1", b"value #2"]
    else:
        h = getattr(seg, kind)("h", elem_len=8, cap=4, create=True)
        h.push(b"elem #1_")
        h.push(b"elem #2_")
        mod, fname = shmkit.queue, "shk_%s_pop" % kind
        first = second = lambda: h.pop(timeout=1)  # noqa: E731
        want = sorted([b"elem #1_", b"elem #2_"])
    monkeypatch.setattr(mod, "lib", _Interleaved(mod.lib, fname))
    got = []
    th = threading.Thread(target=lambda: got.append(second()))
    th.start()
    got.insert(0, first())
    th.join(10)
    monkeypatch.undo()
    assert (got if kind == "map" else sorted(got)) == want
