"""Arrays: NumPy views are the shared memory itself, seen by C both ways."""

import numpy as np
import pytest

import shmkit
from shmkit.array import dtype_type_id, type_id_dtype
from conftest import run_peer


def test_numpy_view_is_shared_with_c_both_ways(seg, name):
    a = seg.array("arr", dtype=np.uint32, length=1000, create=True)
    v = a.numpy()
    # no copy: the ndarray's data pointer is the array's shared memory
    assert v.ctypes.data == a.address
    assert np.shares_memory(v, a.numpy())
    assert not v.flags.owndata and v.flags.writeable
    v[:] = np.arange(1000, dtype=np.uint32) * 3 + 1     # Python writes...
    out = run_peer("array", name, "arr")                 # ...C checks them
    assert out[:2] == ["len=1000", "bad=0"], out
    # C wrote i*5+2 into the same memory; the view made before sees it
    assert (v == np.arange(1000, dtype=np.uint32) * 5 + 2).all()
    assert a.load(7) == 37


def test_atomics_race_with_c(seg, name, peer):
    a = seg.array("ctr", dtype="u4", length=4, create=True)
    n = 20000
    p = peer("array-add", name, "ctr", 2, n)
    p.expect("ready")
    for _ in range(n):
        a.fetch_add(2, 1)
    p.expect("done")
    assert p.wait() == 0
    assert a.load(2) == 2 * n


def test_atomic_ops_and_signed(seg):
    a = seg.array("u", dtype="u8", length=3, create=True)
    a.store(0, 2**64 - 1)
    assert a.fetch_add(0, 1) == 2**64 - 1 and a.load(0) == 0   # wraps
    assert a.cas(1, 0, 5) == (True, 0)
    assert a.cas(1, 0, 6) == (False, 5)
    assert a.load(-1) == 0
    with pytest.raises(IndexError):
        a.load(3)
    s = seg.array("s", dtype="i4", length=2, create=True)
    s.store(0, -5)
    assert s.load(0) == -5 and s.numpy()[0] == -5
    assert s.fetch_add(0, -1) == -5 and s.load(0) == -6


def test_atomics_need_integer_elements_and_values(seg):
    f = seg.array("f", dtype="f8", length=2, create=True)
    f.numpy()[:] = [0.25, 0.5]
    for op in (lambda: f.load(0), lambda: f.store(0, 1.5),
               lambda: f.fetch_add(0, 1), lambda: f.cas(0, 0.25, 1.5)):
        with pytest.raises(shmkit.TypeMismatch, match="float64"):
            op()                  # not the raw bits of a double
    assert list(f.numpy()) == [0.25, 0.5]
    with pytest.raises(shmkit.TypeMismatch):
        seg.array("f4", dtype="f4", length=1, create=True).load(0)
    u = seg.array("u", dtype="u4", length=2, create=True)
    with pytest.raises(TypeError):
        u.store(0, 1.5)           # not truncated to 1
    with pytest.raises(ValueError):
        u.store(0, -1)
    with pytest.raises(ValueError):
        u.cas(0, 0, 1 << 32)
    assert u.load(0) == 0
    assert u.fetch_add(0, -1) == 0 and u.load(0) == 2**32 - 1  # wraps
    with pytest.raises(ValueError):
        u.fetch_add(0, 1 << 32)
    i = seg.array("i", dtype="i8", length=1, create=True)
    with pytest.raises(ValueError):
        i.store(0, 1 << 63)
    i.store(0, -(1 << 63))
    assert i.load(0) == -(1 << 63)
    # raw elements (a C program's own type id): unsigned bits
    seg.array("raw", dtype="u8", length=1, create=True, type_id=0xC0FFEE)
    raw = seg.array("raw", type_id=0xC0FFEE)
    assert raw.dtype == np.dtype("V8")
    raw.store(0, 2**64 - 1)
    assert raw.fetch_add(0, 1) == 2**64 - 1 and raw.load(0) == 0


def test_dtype_convention_and_reopen(seg, name):
    assert dtype_type_id(np.uint32) == 0x4E50750000000004
    assert dtype_type_id(np.float64) == 0x4E50660000000008
    assert type_id_dtype(0x4E50660000000008, 8) == np.float64
    assert type_id_dtype(1234, 6) == np.dtype("V6")
    with pytest.raises(ValueError):
        dtype_type_id(np.dtype(">u4"))
    pt = np.dtype([("x", "f8"), ("y", "f8"), ("tag", "u4")], align=True)
    a = seg.array("pts", dtype=pt, length=10, create=True)
    a.numpy()["x"][:] = np.arange(10)
    with shmkit.Segment(name) as other:
        f = other.array("pts", dtype=pt)                # type id matches
        assert f.numpy()["x"][9] == 9.0 and f.length == 10
        g = other.array("pts")                          # raw bytes view
        assert g.dtype == np.dtype("V%d" % pt.itemsize)
    seg.array("d", dtype=np.float32, length=5, create=True)
    d = seg.array("d")                                  # dtype from type id
    assert d.dtype == np.float32
    m = seg.array("m", dtype="u2", length=6, create=True)
    assert m.numpy(shape=(2, 3)).shape == (2, 3)
    c = seg.array("c", dtype="u1", length=4, create=True, type_id=0xC0FFEE)
    with pytest.raises(shmkit.TypeMismatch):
        seg.array("c", dtype="u1")
    assert seg.array("c", dtype="u1", type_id=0xC0FFEE).length == 4
    assert c.length == 4


def test_dtypes_and_buffers_of_python_objects_are_refused(seg, name):
    """A dtype that holds Python objects is TypeError for arrays, queues
    and stacks, with or without type_id=, and a buffer of objects (format
    'O') for every write, send, push, put and read_into: before, a
    structured dtype with an object field got a type id, type_id= skipped
    the test, and raw PyObject* bytes went through shared memory."""
    obj = np.dtype(object)
    rec = np.dtype([("n", "u8"), ("o", "O")])
    one = np.dtype([("a", "O")])
    for dt in (obj, rec, one):
        with pytest.raises(TypeError):
            dtype_type_id(dt)
        for kw in ({}, {"type_id": 0x5EED}):
            with pytest.raises(TypeError):
                seg.array("x", dtype=dt, length=4, create=True, **kw)
            with pytest.raises(TypeError):
                seg.queue("q", dtype=dt, cap=4, create=True, **kw)
            with pytest.raises(TypeError):
                seg.stack("s", dtype=dt, cap=4, create=True, **kw)
    assert seg.names() == []                   # nothing was created
    objs = np.array([object()], dtype=object)  # 8 bytes: a pointer
    recs = np.zeros(1, dtype=rec)              # 16 bytes, one pointer
    w = seg.ring("r", "producer", create=True)
    r = seg.ring("r", "consumer")
    q = seg.queue("q8", elem_len=8, cap=4, create=True)
    q16 = seg.queue("q16", elem_len=16, cap=4, create=True)
    m = seg.map("m", key_len=8, val_len=8, cap=4, create=True)
    bw = seg.bcast("b", "writer", create=True)
    a = shmkit.Chan("shm://%s-c/c" % name, "a")
    try:
        for data in (objs, recs, memoryview(objs), objs.reshape(1, 1)):
            for fn in (w.write, bw.write, a.send,
                       q16.push if data.nbytes == 16 else q.push,
                       lambda d: m.put(b"key_____", d),
                       lambda d: m.put(d, b"value___")):
                with pytest.raises(TypeError):
                    fn(data)
        assert w.stat().head == w.stat().tail and len(q) == 0
        w.write(b"12345678")
        with pytest.raises(TypeError):
            r.read_into(np.empty(1, dtype=object))
        assert r.read(timeout=0) == b"12345678"  # left in the ring
        # an 'O' in a field's name is no object
        named = np.zeros(1, dtype=[("Obj", "<u8")])
        w.write(named)
        assert r.read(timeout=0) == bytes(8)
        q.push(named)
        assert q.pop(timeout=0) == bytes(8)
    finally:
        a.close()
        shmkit.unlink(name + "-c", missing_ok=True)


def test_atomics_refuse_a_foreign_byte_order(seg):
    """A big-endian dtype is stored with one's own type_id, but the atomics
    (which take native integers) refuse it: before, fetch_add added to the
    wrong end of the big-endian value that numpy() shows."""
    be = seg.array("be", dtype=">u4", length=2, create=True, type_id=0xBE)
    be.numpy()[0] = 5
    for call in (lambda: be.load(0), lambda: be.store(0, 1),
                 lambda: be.fetch_add(0, 1), lambda: be.cas(0, 5, 6)):
        with pytest.raises(shmkit.TypeMismatch):
            call()
    assert be.numpy()[0] == 5
    le = seg.array("le", dtype="<u4" if np.little_endian else ">u4",
                   length=2, create=True, type_id=0x1E)
    assert le.fetch_add(0, 5) == 0 and le.numpy()[0] == 5
