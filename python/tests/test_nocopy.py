"""Handles, messages and their internal holders cannot be copied or
pickled (copy.copy, copy.deepcopy, pickle): a copy would carry the same
raw C pointer with a finalizer of its own and close or release it under
the original.  Each case runs in a child interpreter, so that the crash a
copy used to cause shows as a failure instead of killing pytest."""

import pytest

from test_lifetime import run_child

_PROBE = r"""
import copy, gc, pickle, sys
import shmkit
name, kind = sys.argv[1], sys.argv[2]
MSG = "shmkit handles cannot be copied or pickled"

seg = shmkit.Segment(name, create=True, size=1 << 20)
a = b = m = None
if kind in ("chan", "chanhandle", "chanregion", "message", "loan"):
    a = shmkit.Chan("shm://%s-c/c" % name, "a")
    b = shmkit.Chan("shm://%s-c/c" % name, "b")
    a.send(b"hello")
    m = b.recv(timeout=1)
obj = {
    "segment": lambda: seg,
    "mapping": lambda: seg._map,
    "array": lambda: seg.array("x", dtype="u8", length=4, create=True),
    "ring": lambda: seg.ring("r", "producer", create=True),
    "ringregion": lambda: seg.ring("r", "producer", create=True)._region,
    "bcast": lambda: seg.bcast("b", "writer", create=True),
    "queue": lambda: seg.queue("q", elem_len=8, cap=4, create=True),
    "stack": lambda: seg.stack("s", elem_len=8, cap=4, create=True),
    "map": lambda: seg.map("m", key_len=8, val_len=8, cap=16, create=True),
    "pool": lambda: seg.pool("p", block_len=64, cap=4, create=True),
    "mutex": lambda: seg.mutex("mu", create=True),
    "rwlock": lambda: seg.rwlock("rw", create=True),
    "sem": lambda: seg.sem("se", create=True),
    "event": lambda: seg.event("ev", create=True),
    "barrier": lambda: seg.barrier("ba", parties=2, create=True),
    "latch": lambda: seg.latch("la", count=2, create=True),
    "cond": lambda: seg.cond("co", create=True),
    "chan": lambda: b,
    "chanhandle": lambda: b._keep,
    "chanregion": lambda: b._region,
    "message": lambda: m,
    "loan": lambda: a.loan(16),
}[kind]()

ops = [("copy", copy.copy), ("deepcopy", copy.deepcopy),
       # a deepcopy that fails later (the memoryview) must not have made
       # a copy of the handle that a finalizer then closes
       ("deepcopy-in-dict",
        lambda o: copy.deepcopy({"h": o, "v": memoryview(b"x")})),
       ("reduce", lambda o: o.__reduce__()),
       ("reduce_ex", lambda o: o.__reduce_ex__(2))]
ops += [("pickle-%d" % p, lambda o, p=p: pickle.dumps(o, protocol=p))
        for p in range(pickle.HIGHEST_PROTOCOL + 1)]
copied = []
for what, op in ops:
    try:
        c = op(obj)
    except TypeError as e:
        if str(e) != MSG:  # e.g. the memoryview, after copying the handle
            copied.append(what)
    else:
        copied.append(what)
        del c
    gc.collect()  # the copies' finalizers run now

# the original still works after the copies are gone
seg.info()
if kind == "message":
    assert bytes(m.data) == b"hello"
    m.release()
    a.send(b"again")
    assert b.recv_bytes(timeout=1) == b"again"
    b.stat()
elif kind == "loan":
    obj.data[:] = b"0123456789abcdef"
    obj.send()
    m.release()
    assert b.recv_bytes(timeout=1) == b"0123456789abcdef"
elif a is not None:
    m.release()
    a.send(b"again")
    assert b.recv_bytes(timeout=1) == b"again"
for h in (a, b):
    if h is not None:
        h.close()
if a is not None:
    shmkit.unlink(name + "-c")
seg.close()
gc.collect()
assert not copied, "%s: copied by %s" % (kind, copied)
print("ok")
"""

KINDS = ["segment", "mapping", "array", "ring", "ringregion", "bcast",
         "queue", "stack", "map", "pool", "mutex", "rwlock", "sem", "event",
         "barrier", "latch", "cond", "chan", "chanhandle", "chanregion",
         "message", "loan"]


@pytest.mark.parametrize("kind", KINDS)
def test_handles_cannot_be_copied_or_pickled(name, kind):
    try:
        run_child(_PROBE, name, kind)
    finally:
        import shmkit
        shmkit.unlink(name + "-c", missing_ok=True)


_SCENARIOS = r"""
import copy, gc, sys
import shmkit
name, case = sys.argv[1], sys.argv[2]
seg = shmkit.Segment(name, create=True, size=1 << 20)
try:
    if case == "ring":
        # the copy's finalizer closed the C handle the original still used
        w = seg.ring("r", "producer", create=True)
        try:
            c = copy.copy(w)
            del c
        except TypeError:
            pass
        gc.collect()
        for i in range(100):
            w.write(b"x" * 64, timeout=0) if i < 10 else w.stat()
        w.close()
    elif case == "segment":
        # two finalizers closing one segment handle: a double free at exit
        try:
            seg2 = copy.deepcopy(seg)
        except TypeError:
            pass
    elif case == "chan":
        # a deepcopy that failed on the memoryview still finalized the
        # copied _ChanHandle, closing the real one
        a = shmkit.Chan("shm://%s-c/c" % name, "a")
        b = shmkit.Chan("shm://%s-c/c" % name, "b")
        try:
            copy.deepcopy({"h": b, "v": memoryview(b"x")})
        except TypeError:
            pass
        gc.collect()
        a.send(b"ping")
        assert b.recv_bytes(timeout=1) == b"ping"
        a.close()
        b.close()
    elif case == "message":
        # a copied Message queued the pooled shk_msg as an orphan, released
        # by the channel's next call while it held another message
        a = shmkit.Chan("shm://%s-c/c" % name, "a", inline_max=64)
        b = shmkit.Chan("shm://%s-c/c" % name, "b")
        a.send(b"first")
        m = b.recv(timeout=1)
        try:
            m2 = copy.copy(m)
        except TypeError:
            m2 = None
        m.release()
        a.send(b"second")
        m3 = b.recv(timeout=1)
        del m2
        gc.collect()
        b.stat()  # (before: released m3's shk_msg, the copy's orphan)
        a.send(b"third")
        try:
            x = b.recv(timeout=0)
            raise AssertionError("recv while m3 is held gave %r"
                                 % bytes(x.data))
        except shmkit.Busy:
            pass  # a pair end holds one received message at a time
        assert bytes(m3.data) == b"second", bytes(m3.data)
        m3.release()
        assert b.recv_bytes(timeout=1) == b"third"
        a.close()
        b.close()
finally:
    shmkit.unlink(name + "-c", missing_ok=True)
seg.close()
print("ok")
"""


@pytest.mark.parametrize("case", ["ring", "segment", "chan", "message"])
def test_copy_scenarios_of_the_audit(name, case):
    # each of these crashed (segfault, abort) or corrupted a message
    # before copies were refused
    try:
        run_child(_SCENARIOS, name, case)
    finally:
        import shmkit
        shmkit.unlink(name + "-c", missing_ok=True)
