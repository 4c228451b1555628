"""Closing a handle, a segment or a channel while another thread is inside
a call on it: the call ends with ValueError, never a crash (the C handle is
freed when the last call in flight leaves).  Each case runs in a child
interpreter, so that a crash shows as a failure instead of killing pytest.
"""

import os
import subprocess
import sys

import pytest

import shmkit

_BLOCKED = r"""
import sys, threading, time
import shmkit
name, case = sys.argv[1], sys.argv[2]
if case.startswith("chan"):
    rx = shmkit.Chan("shm://%s/c" % name, "b")
    tx = shmkit.Chan("shm://%s/c" % name, "a")
    obj, closer = rx, rx
    call = lambda: rx.recv(timeout=5)
else:
    seg = shmkit.Segment(name, create=True, size=1 << 20)
    if case.startswith("sem"):
        obj = seg.sem("s", create=True)
        call = lambda: obj.wait(timeout=5)
    elif case.startswith("ring"):
        w = seg.ring("r", "producer", create=True)
        obj = seg.ring("r", "consumer")
        call = lambda: obj.read(timeout=5)
    elif case.startswith("queue"):
        obj = seg.queue("q", elem_len=8, cap=4, create=True)
        call = lambda: obj.pop(timeout=5)
    elif case.startswith("cond"):
        obj = seg.cond("c", create=True)
        mu = seg.mutex("m", create=True)
        def call():
            with mu:
                while True:   # wakes up spuriously each slice: re-waits
                    obj.wait(mu, timeout=5)
    closer = seg if case.endswith("-seg") else obj
got = []
def waiter():
    t0 = time.monotonic()
    try:
        call()
        got.append(("returned", 0.0))
    except Exception as e:
        got.append((type(e).__name__, time.monotonic() - t0))
th = threading.Thread(target=waiter)
th.start()
time.sleep(0.2)              # the waiter is inside the C wait by now
t0 = time.monotonic()
closer.close()
assert time.monotonic() - t0 < 1.0, "close() waited for the call"
assert obj.closed
th.join(10)
assert not th.is_alive(), "the waiter did not notice the close"
assert got and got[0][0] == "ValueError", got
assert got[0][1] < 3.0, got   # a slice (0.5 s) after the close, not 5 s
if case == "ring":
    # the consumer role was given back as the waiter left
    shmkit.Segment(name).ring("r", "consumer").close()
print("ok")
"""

_BUSY = r"""
import sys, threading
import shmkit
name = sys.argv[1]
# close while another thread runs non-blocking calls in a tight loop
for i in range(100):
    seg = shmkit.Segment(name, create=True, size=1 << 20)
    a = seg.array("a", dtype="u8", length=4, create=True)
    s = seg.sem("s", create=True)
    stop = []
    def spin():
        try:
            while True:
                a.fetch_add(0, 1)
                s.post()
                s.wait(timeout=0)
                seg.info()
        except ValueError:
            stop.append(1)
    th = threading.Thread(target=spin)
    th.start()
    while not a.numpy()[0]:
        pass
    (seg if i % 2 else a).close()
    if not i % 2:
        s.close()
        seg.close()
    th.join(10)
    assert stop == [1]
    shmkit.unlink(name)
print("ok")
"""

_CYCLE = r"""
import gc, sys
import shmkit
name = sys.argv[1]
# a segment and its handles in a reference cycle: the garbage collector
# finalizes them in no particular order, the segment must still be
# unmapped only after its handles are closed
gc.disable()
class Holder:
    pass
for i in range(20):
    h = Holder()
    h.seg = shmkit.Segment(name, create=True, size=1 << 20)
    h.ring = h.seg.ring("r", "producer", create=True)
    h.q = h.seg.queue("q", elem_len=8, create=True)
    h.mu = h.seg.mutex("m", create=True)
    h.self = h
    if i % 2:
        h.ring, h.seg = h.seg, h.ring
    del h
    gc.collect()
    shmkit.unlink(name)
print("ok")
"""


def run_child(script, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(shmkit.__file__))
    r = subprocess.run([sys.executable, "-c", script] + list(args),
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (
        args, r.returncode, r.stdout, r.stderr[-2000:])


@pytest.mark.parametrize("case", ["sem", "sem-seg", "ring", "ring-seg",
                                  "queue-seg", "cond", "cond-seg", "chan"])
def test_close_during_a_blocked_call(name, case):
    run_child(_BLOCKED, name, case)


def test_close_during_non_blocking_calls(name):
    run_child(_BUSY, name)


def test_cyclic_garbage_closes_handles_before_the_segment(name):
    run_child(_CYCLE, name)


_FORK = r"""
import os, sys
import shmkit
name = sys.argv[1]

def main():
    seg = shmkit.Segment(name, create=True, size=4 << 20)
    p = seg.ring("r", "producer", create=True, cap=4096, batch=True)
    c = seg.ring("r", "consumer")
    w = seg.bcast("b", "writer", create=True, mode="reliable")
    rd = seg.bcast("b", "reader")
    a = shmkit.Chan("shm://%s/ch" % name, "a", inline_max=64)
    b = shmkit.Chan("shm://%s/ch" % name, "b")
    for i in range(2):
        p.write(i.to_bytes(8, "little"))
    assert p.stat().tail == 16      # the second record is held back
    w.write(b"first")
    b.send(b"z" * 4096)             # a heap block
    m = a.recv()                    # held by this process
    used = seg.heap_info().used
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(rfd, 1)
        # the finalizers of main()'s handles run in the child: they must
        # not release the parent's roles, slot, message or position
        sys.exit(0)
    for i in range(2, 5):
        p.write(i.to_bytes(8, "little"))
    p.flush()
    assert p.stat().tail == 80
    os.write(wfd, b"x")
    assert os.waitpid(pid, 0)[1] == 0
    st = p.stat()
    assert (st.tail, st.producer, st.consumer) == (80, 1, 1), st
    for role in ("producer", "consumer"):
        try:
            seg.ring("r", role)
            raise AssertionError("a second %s opened" % role)
        except shmkit.Busy:
            pass
    assert [int.from_bytes(c.read(0), "little") for _ in range(5)] == \
        list(range(5))
    st = w.stat()
    assert (st.readers, st.writer) == (1, 1), st
    try:
        seg.bcast("b", "writer")
        raise AssertionError("a second writer opened")
    except shmkit.Busy:
        pass
    w.write(b"second")
    assert [rd.read(0)[0] for _ in range(2)] == [b"first", b"second"]
    assert seg.heap_info().used == used
    assert bytes(m.data) == b"z" * 4096
    try:
        shmkit.Chan("shm://%s/ch" % name, "a")
        raise AssertionError("a second end A opened")
    except shmkit.Busy:
        pass
    m.release()
    for h in (a, b, p, c, w, rd, seg):
        h.close()

main()
print("ok")
"""


def test_forked_child_exit_keeps_the_parents_handles(name):
    # a child made by os.fork() that exits with sys.exit(0) finalizes its
    # copies of the parent's handles: nothing of the parent's is given up
    run_child(_FORK, name)


_CYCLE_VIEW = r"""
import gc, sys
import shmkit
name, case = sys.argv[1], sys.argv[2]
# A view of shared memory in a garbage cycle with the last reference to
# its mapping (the segment or channel already closed), and a finalizer in
# the cycle that reads the view (or keeps it): the collector runs every
# finalizer before it frees anything, so the C close must wait until
# after them, never in the finalizer phase.
saved = []
class Holder:
    def __del__(self):
        if case.endswith("-keep"):
            saved.append(self.mv)
        else:
            saved.append(bytes(self.mv[:4]))
gc.disable()
if case.startswith(("buffer", "blob", "ring")):
    seg = shmkit.Segment(name, create=True, size=1 << 20)
    if case.startswith("buffer"):
        mv = seg.buffer(seg.alloc(4096), 4096)
        mv[:4] = b"abcd"
    elif case.startswith("blob"):
        mv = seg.blob("b", size=64, create=True)
        mv[:4] = b"abcd"
    else:
        p = seg.ring("r", "producer", create=True)
        c = seg.ring("r", "consumer")
        p.write(b"abcd" * 4)
        mv = c.peek(0)[:8]
        p.close()
        c.close()
        p = c = None
    seg.close()
else:
    pub = case.startswith("pubsub")
    a = shmkit.Chan("shm://%s/x" % name, "pub" if pub else "a")
    b = shmkit.Chan("shm://%s/x" % name, "sub" if pub else "b")
    a.send(b"abcd" * 100)
    with b.recv(0) as m:
        mv = m.data[:8]     # a slice keeps the mapping
    a.close()
    b.close()
    a = b = m = None
shmkit.unlink(name)
# made last: its finalizer runs after the mapping owner's
h = Holder()
h.mv = mv
h.self = h
seg = h = mv = None
gc.collect()
got = bytes(saved[0][:4])
assert got == b"abcd", got
saved.clear()
gc.collect()
print("ok")
"""


@pytest.mark.parametrize("case", ["buffer", "blob", "ring", "pair", "pubsub",
                                  "buffer-keep", "pair-keep"])
def test_cyclic_garbage_view_used_by_a_finalizer(name, case):
    run_child(_CYCLE_VIEW, name, case)


_FORK_USE = r"""
import os, sys
import shmkit
name = sys.argv[1]
seg = shmkit.Segment(name, create=True, size=1 << 20)
p = seg.ring("r", "producer", create=True)
c = seg.ring("r", "consumer")
a = shmkit.Chan("shm://%s/ch" % name, "a")
b = shmkit.Chan("shm://%s/ch" % name, "b")
p.write(b"p0")
pid = os.fork()
if pid == 0:
    code = 0
    try:
        # the parent's handles: every call raises ValueError naming it
        for what, call in (("ring.write", lambda: p.write(b"child")),
                           ("chan.send", lambda: a.send(b"child")),
                           ("chan.recv", lambda: b.recv(0)),
                           ("seg.ring", lambda: seg.ring("r", "consumer")),
                           ("seg.info", seg.info)):
            try:
                call()
                print(what, "did not raise")
                code = 1
            except ValueError as e:
                if "belongs to process %d" % os.getppid() not in str(e):
                    print(what, "->", e)
                    code = 1
        if p.closed or a.closed:
            print("marked closed")
            code = 1
        # a handle opened in the child works
        s2 = shmkit.Segment(name)
        s2.sem("s", create=True).post()
        s2.close()
        for h in (a, b, p, c, seg):
            h.close()            # the child's copies: allowed
        if not (p.closed and seg.closed):
            print("close() did not close")
            code = 1
    except BaseException as e:
        print("child:", type(e).__name__, e)
        code = 1
    sys.stdout.flush()
    os._exit(code)
assert os.waitpid(pid, 0)[1] == 0
p.write(b"p1")
got = []
while True:
    try:
        got.append(c.read(0))
    except shmkit.WouldBlock:
        break
assert got == [b"p0", b"p1"], got
a.send(b"x")
assert b.recv_bytes(0) == b"x"
assert seg.sem("s").value == 1
for h in (a, b, p, c, seg):
    h.close()
print("ok")
"""


def test_forked_child_cannot_use_the_parents_handles(name):
    # os.fork() copies the Python objects; their calls raise ValueError in
    # the child (before, the child's ring write through the parent's
    # producer handle was silently lost), close() still closes the copy
    run_child(_FORK_USE, name)
