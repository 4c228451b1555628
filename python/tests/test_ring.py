"""Rings between Python and C processes, zero-copy paths and timeouts."""

import ctypes
import selectors
import time

import numpy as np
import pytest

import shmkit
from conftest import FNV0, fnv, stamped

N = 3000  # about 320 KiB of records through a 16 KiB ring: it wraps often


def test_c_producer_python_consumer(seg, name, peer):
    r = seg.ring("c2py", "consumer", create=True, cap=16384)
    p = peer("ring-write", name, "c2py", N)
    p.expect("ready")
    h = FNV0
    for i in range(N):
        rec = r.read(timeout=5)
        assert rec == stamped(i), "record %d" % i
        h = fnv(h, rec)
    assert int(p.expect("fnv="), 16) == h
    assert p.wait() == 0


def test_python_producer_c_consumer(seg, name, peer):
    w = seg.ring("py2c", "producer", create=True, cap=16384)
    p = peer("ring-read", name, "py2c", N)
    p.expect("ready")
    h = FNV0
    for i in range(N):
        rec = stamped(i)
        h = fnv(h, rec)
        if i % 2:
            w.write(rec, timeout=5)
        else:                                   # zero-copy half the time
            mv = w.reserve(len(rec), timeout=5)
            mv[:] = rec
            w.commit()
    assert int(p.expect("fnv="), 16) == h
    assert p.wait() == 0


def test_reserve_peek_are_views_of_the_ring(seg):
    w = seg.ring("r", "producer", create=True, cap=4096)
    c = seg.ring("r", "consumer")
    mv = w.reserve(16)
    assert not mv.readonly and len(mv) == 16
    np.frombuffer(mv, dtype=np.uint64)[:] = [7, 8]   # write in place
    w.commit()
    with pytest.raises(ValueError):
        mv[0]                                        # released by commit
    pk = c.peek(timeout=0)
    assert pk.readonly and np.frombuffer(pk, dtype=np.uint64).tolist() == \
        [7, 8]
    assert bytes(c.peek(timeout=0)) == bytes(pk)     # same record again
    c.release()
    with pytest.raises(ValueError):
        bytes(pk)
    w.write(b"")                                     # empty records work
    assert c.read(timeout=0) == b""
    w.write(b"abcdef")
    buf = bytearray(3)
    with pytest.raises(shmkit.MsgSize):
        c.read_into(buf, timeout=0)                  # left in the ring
    big = bytearray(10)
    assert c.read_into(big, timeout=0) == 6 and big[:6] == b"abcdef"
    with pytest.raises(shmkit.MsgSize):
        w.write(b"x" * (w.max_record + 1))
    st = w.stat()
    assert st.producer == 1 and st.consumer == 1 and st.fill == 0
    with pytest.raises(shmkit.Busy):
        seg.ring("r", "consumer")                    # one live consumer


def _mapped(segname):
    """Whether this process maps /dev/shm/segname."""
    with open("/proc/self/maps") as f:
        return any(line.rstrip().endswith("/dev/shm/" + segname)
                   for line in f)


def test_views_are_slices_of_one_region(name):
    # reserve/peek views are slices of one view of the segment, made at
    # open (Region); a slice the user kept maps the memory, the closed
    # handles themselves (still referenced here) must not
    seg = shmkit.Segment(name, create=True, size=1 << 20)
    w = seg.ring("r", "producer", create=True, cap=4096)
    c = seg.ring("r", "consumer")
    mv = w.reserve(16)
    mv[:] = bytes(range(16))
    kept = mv[4:8]
    assert seg.offset(mv) == seg.offset(kept) - 4   # in the segment
    w.commit()
    pk = c.peek(timeout=0)
    assert pk.readonly and bytes(pk) == bytes(range(16))
    arr = np.frombuffer(pk, dtype=np.uint8)[8:]     # exported further
    c.release()
    seg.close()                                      # closes w and c
    assert w.closed and c.closed and _mapped(name)
    assert bytes(kept) == b"\x04\x05\x06\x07"          # no crash
    assert arr.tolist() == list(range(8, 16))
    del kept, arr
    assert not _mapped(name), "a closed Ring still maps the segment"


def test_region_slices_only_what_lies_inside():
    # what C returns is not trusted: a record that is not wholly inside
    # the region gets a view of its own (never a clamped slice)
    from shmkit._base import Region
    buf = ctypes.create_string_buffer(bytes(range(32)), 32)
    base = ctypes.addressof(buf)
    r = Region(buf, base + 8, 8)                     # bytes 8..15
    inside = r.slice(base + 10, 4)
    assert bytes(inside) == bytes(range(10, 14)) and not inside.readonly
    assert inside.obj is r.rw.obj                    # a slice of the region
    assert r.slice(base + 8, 8, True).readonly
    assert r.slice(base + 16, 0).nbytes == 0          # empty, at the end
    for at, n in ((12, 8), (4, 8), (4, 2), (16, 4), (30, 2)):
        v = r.slice(base + at, n, readonly=(at == 4))
        assert bytes(v) == bytes(range(at, at + n)), (at, n)
        assert v.obj is not r.rw.obj and v.readonly == (at == 4)
    with pytest.raises(shmkit.Invalid):
        r.slice(None, 4)                             # NULL


def test_timeouts(seg):
    c = seg.ring("t", "consumer", create=True)
    with pytest.raises(shmkit.WouldBlock):
        c.read(timeout=0)
    t0 = time.monotonic()
    with pytest.raises(shmkit.Timeout) as ei:
        c.read(timeout=0.1)
    dt = time.monotonic() - t0
    assert 0.09 <= dt < 1.5, dt           # generous: a loaded CI machine
    assert isinstance(ei.value, TimeoutError)
    w = seg.ring("full", "producer", create=True, cap=256)
    with pytest.raises(shmkit.WouldBlock):
        for _ in range(100):
            w.write(b"x" * 64, timeout=0)


def test_fileno_with_selectors(seg, name, peer):
    c = seg.ring("sel", "consumer", create=True)
    sel = selectors.DefaultSelector()
    sel.register(c.fileno(), selectors.EVENT_READ)
    with pytest.raises(shmkit.WouldBlock):
        c.read(timeout=0)                            # arms the fd
    assert sel.select(0) == []
    p = peer("ring-write", name, "sel", 5)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 5 and time.monotonic() < deadline:
        if sel.select(1):
            while True:
                try:
                    got.append(c.read(timeout=0))
                except shmkit.WouldBlock:
                    break
    sel.close()
    assert got == [stamped(i) for i in range(5)]
    p.expect("ready")
    assert p.wait() == 0


def test_blocking_call_serves_signals(seg):
    """A wait with no timeout is sliced: a signal handler (Ctrl-C) runs
    and its exception ends the wait."""
    import signal

    class Alarm(Exception):
        pass

    def handler(signum, frame):
        raise Alarm()

    c = seg.ring("sig", "consumer", create=True)
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        t0 = time.monotonic()
        with pytest.raises(Alarm):
            c.read()                       # forever, on an empty ring
        assert time.monotonic() - t0 < 2.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    t0 = time.monotonic()                  # a long timeout is still one
    with pytest.raises(shmkit.Timeout):    # deadline across the slices
        c.read(timeout=0.7)
    assert 0.69 <= time.monotonic() - t0 < 2.5


def test_blocking_call_releases_the_gil(seg):
    """A thread blocked in read() lets the others run (ctypes drops the
    GIL around C calls): the writer below could not run otherwise."""
    import threading
    c = seg.ring("gil", "consumer", create=True)
    w = seg.ring("gil", "producer")
    got = []
    t = threading.Thread(target=lambda: got.append(c.read(timeout=5)))
    t.start()
    time.sleep(0.05)
    w.write(b"from another thread")
    t.join(5)
    assert got == [b"from another thread"]


def test_read_into_releases_the_views_of_a_peek(seg):
    """read_into() removes the record an earlier peek() showed: that view
    is released (ValueError on use), as after read() or release(); before,
    it stayed live and read the producer's next records over the freed
    space.  A read_into that does not fit (MsgSize) leaves the record, and
    its view, in place."""
    w = seg.ring("r", "producer", create=True, cap=4096)
    r = seg.ring("r", "consumer")
    w.write(b"first-record")
    mv = r.peek(0)
    with pytest.raises(shmkit.MsgSize):
        r.read_into(bytearray(4), 0)
    assert bytes(mv) == b"first-record"
    buf = bytearray(64)
    assert r.read_into(buf, 0) == 12
    assert bytes(buf[:12]) == b"first-record"
    with pytest.raises(ValueError):
        bytes(mv)
    w.close()
    r.close()


def test_interrupted_reserve_hands_out_its_reservation(seg, monkeypatch):
    """An exception (KeyboardInterrupt, ...) after the C reserve took room
    but before the view came back leaves a reservation C cannot cancel:
    reserve() again with the same size returns it (to fill and commit),
    another size is ValueError naming it; before, every later reserve()
    was InvalidArgument ("a reservation is already open") with no view to
    commit through."""
    import shmkit.ring as ring

    class Stop(Exception):
        pass

    w = seg.ring("r", "producer", create=True, cap=4096)
    r = seg.ring("r", "consumer")
    real = ring.timed

    def take_then_raise(*a, **kw):
        real(*a, **kw)
        raise Stop()

    for size in (8, 16):
        monkeypatch.setattr(ring, "timed", take_then_raise)
        with pytest.raises(Stop):
            w.reserve(8, timeout=0)
        monkeypatch.undo()
        if size != 8:
            with pytest.raises(ValueError, match="reserve"):
                w.reserve(size, timeout=0)
        mv = w.reserve(8, timeout=0)
        mv[:] = b"resumed!"
        w.commit()
        assert r.read(0) == b"resumed!"
    # and a plain one afterwards
    w.reserve(4, timeout=0)[:] = b"next"
    w.commit()
    assert r.read(0) == b"next"
    w.close()
    r.close()


def test_reserve_interrupted_by_a_timer_never_leaves_the_ring_stuck(seg):
    """The same with real signals: an interval timer (every 100 µs)
    whose handler raises while reserve() runs; no later reserve() is
    InvalidArgument (bounded: about a second, or 300 interrupts)."""
    import signal

    class Tick(Exception):
        pass

    armed = [False]

    def handler(signum, frame):
        if armed[0]:
            armed[0] = False
            raise Tick()

    w = seg.ring("r", "producer", create=True, cap=1 << 16)
    r = seg.ring("r", "consumer")
    old = signal.signal(signal.SIGALRM, handler)
    ticks = 0
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
        end = time.monotonic() + 1.0
        while ticks < 300 and time.monotonic() < end:
            try:
                armed[0] = True
                mv = w.reserve(8, timeout=1)
                armed[0] = False
            except Tick:
                ticks += 1
                continue
            mv[:] = b"12345678"
            w.commit()
            assert r.read(0) == b"12345678"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert ticks > 0
    w.close()
    r.close()
