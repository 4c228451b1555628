"""Channels between Python and C processes.  The C side is
tests/bridge_peer (next to py_peer), whose messages are {u32 magic, u32
len, u64 k} then byte i = (k * 131 + i) & 0xff, numbered from 0."""

import gc
import os
import struct
import subprocess
import sys
import time

import pytest

import shmkit
from conftest import PEER

BRIDGE_PEER = os.path.join(os.path.dirname(PEER), "bridge_peer")
MAGIC = 0x62726467


def peer(*args, stdin=None):
    if not os.access(BRIDGE_PEER, os.X_OK):
        if os.environ.get("SHK_PY_PEER"):
            pytest.fail("bridge_peer not built (%s)" % BRIDGE_PEER)
        pytest.skip("bridge_peer not built (%s): run make" % BRIDGE_PEER)
    return subprocess.Popen([BRIDGE_PEER] + [str(a) for a in args],
                            stdin=subprocess.PIPE if stdin else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(p, timeout=20):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, (out, err)
    assert "messages ok" in out, (out, err)


def make(k, n):
    head = struct.pack("<IIQ", MAGIC, n, k)
    return head + bytes((k * 131 + i) & 0xff for i in range(16, n))


def check(buf, k):
    magic, n, got = struct.unpack_from("<IIQ", buf)
    assert (magic, n, got) == (MAGIC, len(buf), k)
    assert bytes(buf[16:]) == bytes((k * 131 + i) & 0xff
                                    for i in range(16, n))


def size(k):
    # one in five is longer than the pair's default inline_max (2 KiB)
    return 3000 + 37 * k if k % 5 == 0 else 16 + (k * 7) % 200


@pytest.fixture
def addr(name):
    return "shm://%s/c" % name


def test_pair_c_to_python_in_place(addr):
    with shmkit.Chan(addr, "b") as c:
        p = peer("shm-send", addr, "pair", "a", 300, "mixed")
        for k in range(300):
            with c.recv(timeout=10) as m:
                assert m.data.readonly and not m.loan
                check(m.data, k)
        finish(p)
        st = c.stat()
        assert st.received == 300 and st.outstanding == 0
        with pytest.raises(shmkit.WouldBlock):
            c.recv(timeout=0)


def test_pair_python_to_c_copies_and_loans(addr):
    p = peer("shm-recv", addr, "pair", "a", 200)
    assert p.stdout.readline().strip() == "ready"
    with shmkit.Chan(addr, "b") as c:
        for k in range(200):
            n = size(k)
            if k % 2:
                c.send(make(k, n), timeout=10)
                continue
            m = c.loan(n)                  # written in place, no copy
            assert m.loan and not m.data.readonly and len(m) == n
            m.data[:] = make(k, n)
            m.send(timeout=10)
            with pytest.raises(ValueError):
                m.data                     # sent: the view is gone
        finish(p)


def test_pushpull_python_pushes_c_pulls(addr):
    p = peer("shm-recv", addr, "pushpull", "pull", 150)
    assert p.stdout.readline().strip() == "ready"
    with shmkit.Chan(addr, "push") as c:
        assert c.pattern == shmkit.chan.PUSHPULL
        for k in range(150):
            c.send(make(k, size(k)), timeout=10)
        finish(p)


def test_pubsub_c_publishes_python_subscribes(addr):
    with shmkit.Chan(addr, "sub") as c:          # attached before the pub
        p = peer("shm-send", addr, "pubsub", "pub", 100, "small", "hold",
                 stdin=True)
        assert p.stdout.readline().strip() == "ready"
        p.stdin.write("go\n")
        p.stdin.flush()
        for k in range(100):
            check(c.recv_bytes(timeout=10), k)
        finish(p)
        assert c.stat().lost == 0


def test_errors_and_limits(addr, name):
    with pytest.raises(shmkit.InvalidArgument):
        shmkit.Chan("tcp://%s/c" % name, "a")
    with pytest.raises(ValueError):
        shmkit.Chan(addr, "left")
    with shmkit.Chan(addr, "a", max_msg=4096) as a, \
            shmkit.Chan(addr, "b") as b:
        assert b.max_msg == 4096
        with pytest.raises(shmkit.MsgSize):
            a.send(b"x" * 4097)
        with pytest.raises(shmkit.MsgSize):
            a.loan(4097)
        t0 = time.monotonic()
        with pytest.raises(shmkit.Timeout):
            b.recv(timeout=0.05)
        assert 0.04 <= time.monotonic() - t0 < 2
    with pytest.raises(shmkit.TypeMismatch):
        shmkit.Chan(addr, "push")          # a pair channel stored there
    with shmkit.Chan("shm://%s/t" % name, "sub") as s:
        with pytest.raises(shmkit.InvalidArgument):
            s.send(b"x")                   # a receiving role
        pub = shmkit.Chan("shm://%s/t" % name, "pub")
        with pytest.raises(shmkit.errors.ENOTSUP):
            pub.loan(8)                    # pub/sub has no loans
        pub.close()


def test_seg_mode_and_any_owner(addr, name):
    """seg_mode sets the permission bits of the segment the first opener
    creates (ignored by later openers); any_owner passes SHK_ANY_OWNER,
    which opens our own channel as well (another user's: test_security
    chan_two_users in C, which needs root).  Out-of-range or mistyped
    values raise before any C call."""
    for bad, exc in ((0o1000, ValueError), (-1, ValueError),
                     ("0o640", TypeError)):
        with pytest.raises(exc):
            shmkit.Chan(addr, "a", seg_mode=bad)
    assert not os.path.exists("/dev/shm/" + name)
    with shmkit.Chan(addr, "a", seg_mode=0o640) as a, \
            shmkit.Chan(addr, "b", seg_mode=0o666, any_owner=True) as b:
        with shmkit.Segment(name) as s:
            assert s.info().create_mode == 0o640
        assert os.stat("/dev/shm/" + name).st_mode & 0o777 == 0o640
        a.send(b"hello")
        assert b.recv_bytes(timeout=1) == b"hello"


def test_fileno_and_close_releases_views(addr):
    import selectors
    a = shmkit.Chan(addr, "a")
    b = shmkit.Chan(addr, "b")
    sel = selectors.DefaultSelector()
    sel.register(b.fileno(), selectors.EVENT_READ)
    with pytest.raises(shmkit.WouldBlock):
        b.recv(timeout=0)                  # arms the descriptor
    a.send(b"ping")
    assert sel.select(timeout=5)
    m = b.recv(timeout=0)
    assert bytes(m) == b"ping"
    view = m.data
    b.close()                              # releases what it handed out
    with pytest.raises(ValueError):
        view[0]
    sel.close()
    a.close()


def test_dropped_messages_are_released(addr):
    with shmkit.Chan(addr, "a") as a, shmkit.Chan(addr, "b") as b:
        a.send(b"one")
        a.send(b"two")
        a.send(b"three")
        m = b.recv(timeout=1)
        with pytest.raises(shmkit.Busy, match="still held"):
            b.recv(timeout=0)          # pair: one received at a time
        view = m.data
        with pytest.warns(ResourceWarning, match="unreleased"):
            del m                      # a forgotten release()
        with pytest.raises(ValueError):
            view[0]                    # released with it
        assert b.recv_bytes(timeout=1) == b"two"   # not Busy

        def handler():
            msg = b.recv(timeout=1)
            assert bytes(msg) == b"three"
            raise RuntimeError("failed while holding it")
        with pytest.warns(ResourceWarning):
            with pytest.raises(RuntimeError):
                handler()
            gc.collect()               # the traceback's frames, if cyclic
        a.send(b"four")
        assert b.recv_bytes(timeout=1) == b"four"

        # loans: each dropped one held a heap block
        base = a.stat().outstanding
        with pytest.warns(ResourceWarning):
            for _ in range(20):
                a.loan(5000)
        assert a.stat().outstanding == base
        assert a.stat().outstanding == base   # nothing released twice
        assert len(a._msgs) == 0       # and no entry left for them
        kept = a.loan(100)
        assert a.stat().outstanding == base + 1
        kept.release()


def test_message_dropped_after_close_makes_no_c_call(addr):
    a = shmkit.Chan(addr, "a")
    b = shmkit.Chan(addr, "b")
    a.send(b"x" * 3000)                # a heap block
    m = b.recv(timeout=1)
    loan = a.loan(64)
    b.close()                          # releases m
    a.close()                          # releases the loan
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # released already: no warning
        del m, loan
    with shmkit.Chan(addr, "b") as b2:
        assert b2.stat().outstanding == 0


_OUTLIVE = r"""
import sys
import shmkit
addr, pattern = sys.argv[1], sys.argv[2]
if pattern == "pair":
    tx, rx = shmkit.Chan(addr, "a"), shmkit.Chan(addr, "b")
    role = "b"
else:
    rx = shmkit.Chan(addr, "sub", max_subs=1)   # in the handle's buffer
    tx = shmkit.Chan(addr, "pub")
    role = "sub"
tx.send(bytes(range(256)) * 20)       # pair: a heap block
m = rx.recv(timeout=5)
part = m.data[16:32]                  # a slice keeps the buffer, not m.data
m.release()
rx.close()
tx.close()
assert len(bytes(part)) == 16         # read after close: must not crash
try:
    shmkit.Chan(addr, role).close()
except shmkit.Busy:
    pass                              # the role waits for the view...
else:
    raise AssertionError("closed while a view of its memory remained")
del part                              # ... and comes back with it
shmkit.Chan(addr, role).close()
print("ok")
"""


_SHUTDOWN = r"""
import sys
import shmkit
addr = sys.argv[1]
a, b = shmkit.Chan(addr, "a"), shmkit.Chan(addr, "b")
a.send(b"x" * 3000)
held = b.recv(timeout=5)              # never released, nor the loan:
loan = a.loan(100)                    # the interpreter ends with them
cycle = [held, loan, a, b]
cycle.append(cycle)                   # ... and in a reference cycle
print("ok")
"""


def test_unreleased_messages_at_interpreter_exit(addr):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(shmkit.__file__))
    r = subprocess.run([sys.executable, "-X", "dev", "-c", _SHUTDOWN, addr],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode,
                                                            r.stderr)
    assert "Fatal" not in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("pattern", ["pair", "pubsub"])
def test_view_outliving_close_keeps_memory(addr, pattern):
    # A slice (or NumPy array) of a message's data is not revoked by
    # release() or close(); the channel's memory (its segment mapping, a
    # subscriber's buffer) must stay until it is gone.  In a child: an
    # access to unmapped memory kills the process.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(shmkit.__file__))
    r = subprocess.run([sys.executable, "-c", _OUTLIVE, addr, pattern],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode,
                                                            r.stderr)


def _rss_kb(segname):
    """(Size, Rss) in kB of this process's mapping of /dev/shm/segname."""
    size = rss = None
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
                inside = line.rstrip().endswith("/dev/shm/" + segname)
            elif inside and line.startswith("Size:"):
                size = int(line.split()[1])
            elif inside and line.startswith("Rss:"):
                rss = int(line.split()[1])
    return size, rss


def test_prefault_maps_every_page(addr, name):
    a = shmkit.Chan(addr, "a", seg_size=8 << 20)
    size, rss = _rss_kb(name)
    assert size is not None and size >= 8 << 10, (size, rss)
    assert rss < size                      # most of the heap never touched
    assert a.prefault() == 0
    size, rss = _rss_kb(name)
    assert rss == size, (size, rss)
    a.send(b"x")                           # still a working channel
    b = shmkit.Chan(addr, "b")
    assert bytes(b.recv(timeout=5)) == b"x"
    b.close()
    a.close()
    with pytest.raises(ValueError):
        a.prefault()


def test_data_of_a_temporary_message_is_released(addr):
    """`b.recv().data` drops the Message at once, which releases its view
    (docs/python.md, Channels): the view raises ValueError; keep the
    message (`with b.recv() as m:`) or copy (`recv_bytes()`) instead."""
    with shmkit.Chan(addr, "a") as a, shmkit.Chan(addr, "b") as b:
        a.send(b"temp")
        with pytest.warns(ResourceWarning, match="unreleased"):
            v = b.recv(timeout=1).data
        with pytest.raises(ValueError):
            bytes(v)
        a.send(b"kept")
        with b.recv(timeout=1) as m:
            assert bytes(m.data) == b"kept"


class _Tick(Exception):
    pass


def _ticking(body, seconds=1.0, ticks=300):
    """Runs body(armed) in a loop for about `seconds` (or until `ticks`
    interrupts) while an interval timer fires every 100 µs; its handler
    raises _Tick when armed[0] is set (and clears it).  Returns the count
    of interrupts body saw (it returns True for one)."""
    import signal
    armed = [False]

    def handler(signum, frame):
        if armed[0]:
            armed[0] = False
            raise _Tick()

    old = signal.signal(signal.SIGALRM, handler)
    n = 0
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
        end = time.monotonic() + seconds
        while n < ticks and time.monotonic() < end:
            if body(armed):
                n += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return n


def test_interrupted_recv_or_release_never_leaves_the_end_busy(addr):
    """A signal handler that raises anywhere in recv() or release() (as
    the C call returns, before the Message is registered; between the C
    release and the bookkeeping) never leaves the pair end holding a
    message that no Message owns: the next recv() is never Busy (before,
    an exception right after the C recv left the end Busy for good, with
    no message tracked)."""
    import warnings
    a = shmkit.Chan(addr, "a")
    b = shmkit.Chan(addr, "b")

    def body(armed):
        try:
            a.send(b"m", timeout=1)
        except _Tick:
            pass
        try:
            armed[0] = True
            with b.recv(timeout=0) as m:
                bytes(m)
            armed[0] = False
        except _Tick:
            return True
        except shmkit.WouldBlock:
            armed[0] = False
        except shmkit.Busy:
            # only while a Message really holds one: a release() that
            # the handler interrupted before its C call
            armed[0] = False
            held = [r() for r in b._msgs.values()]
            assert len(held) == 1 and held[0] is not None, held
            held[0].release()
        return False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        n = _ticking(body)
        gc.collect()
        while True:   # drain: never Busy
            try:
                b.recv_bytes(timeout=0)
            except shmkit.WouldBlock:
                break
    assert n > 0
    assert b.stat().outstanding == 0
    a.close()
    b.close()


def test_interrupted_loan_send_never_leaves_a_stale_message(addr):
    """A signal handler that raises as msg.send() returns from C, after
    the send: the Message must not still claim the loan (C consumed it
    and pools its struct for the next loan, so its release() used to
    release that next loan, whose send then failed with InvalidArgument).
    Whatever the interrupt hit, the message was either sent (the receiver
    gets it, the Message is released) or not (it stays a loan to send or
    release), and a release of the old one never touches a newer loan."""
    import warnings
    a = shmkit.Chan(addr, "a", cap=1 << 16)
    b = shmkit.Chan(addr, "b")
    seen = {"sent": 0, "kept": 0}

    def body(armed):
        m = a.loan(8)
        m.data[:] = b"old-loan"
        try:
            armed[0] = True
            m.send(timeout=1)
            armed[0] = False
            assert b.recv_bytes(timeout=0) == b"old-loan"
            return False
        except _Tick:
            pass
        got = []
        while True:
            try:
                got.append(b.recv_bytes(timeout=0))
            except shmkit.WouldBlock:
                break
        held = bool(m._m)
        assert got in ([b"old-loan"], []), got
        assert held != bool(got), (held, got)  # sent xor still a loan
        seen["sent" if got else "kept"] += 1
        m2 = a.loan(8)
        m2.data[:] = b"new-loan"
        m.release()                  # never the newer loan
        m2.send(timeout=0)
        assert b.recv_bytes(timeout=0) == b"new-loan"
        return True

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        n = _ticking(body)
    assert n > 0, seen
    assert a.stat().outstanding == 0
    a.close()
    b.close()
    s = shmkit.Segment(addr[len("shm://"):].split("/")[0])
    s.check()
    s.close()
