"""Sync objects across a Python process and C processes."""

import os
import selectors
import threading
import time

import pytest

import shmkit
from conftest import run_peer


def test_mutex_held_by_c(seg, name, peer):
    m = seg.mutex("mu", create=True)
    p = peer("mutex-hold", name, "mu", 600)
    p.expect("locked")
    t_locked = time.monotonic()
    with pytest.raises(shmkit.WouldBlock):
        m.lock(timeout=0)
    assert m.acquire(blocking=False) is False
    t0 = time.monotonic()
    with pytest.raises(shmkit.Timeout):
        m.lock(timeout=0.05)
    assert 0.045 <= time.monotonic() - t0 < 0.45
    with m:                               # waits until C unlocks
        assert time.monotonic() - t_locked >= 0.55
        assert p.expect("unlocking") == "600"  # said before it unlocked
    assert p.wait() == 0


def test_mutex_owner_dead_c_holder(seg, name, peer):
    m = seg.mutex("mu", create=True)
    p = peer("mutex-die", name, "mu", 0)
    p.expect("locked")
    assert p.p.wait(5) == -9              # SIGKILLed holding the mutex
    with pytest.raises(shmkit.OwnerDead):
        m.lock(timeout=2)
    # we hold it now: repair, mark consistent, unlock
    m.consistent()
    m.unlock()
    with m:
        pass


def test_mutex_owner_dead_with_callback(seg, name, peer):
    repaired = []
    m = seg.mutex("mu", create=True,
                  on_owner_dead=lambda mu: repaired.append(mu.name))
    p = peer("mutex-die", name, "mu", 0)
    p.expect("locked")
    p.p.wait(5)
    with m:
        assert repaired == ["mu"]
    assert run_peer("mutex-lock", name, "mu", 100) == ["lock SHK_OK"]


def test_mutex_held_by_python_c_waits(seg, name):
    m = seg.mutex("mu", create=True)
    with m:
        out = run_peer("mutex-lock", name, "mu", 0)
        assert out == ["lock SHK_EAGAIN"]
        t0 = time.monotonic()
        assert run_peer("mutex-lock", name, "mu", 50) == \
            ["lock SHK_ETIMEDOUT"]
        assert time.monotonic() - t0 >= 0.05
    assert run_peer("mutex-lock", name, "mu", 100) == ["lock SHK_OK"]


def test_python_holder_dies_c_sees_owner_dead(seg, name):
    seg.mutex("mu", create=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                          # child: its own handles (fork
        try:                              # policy), lock, die holding it
            s = shmkit.Segment(name)
            s.mutex("mu").lock()
            os.write(w, b"L")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"L"
    os.close(r)
    os.waitpid(pid, 0)
    assert run_peer("mutex-lock", name, "mu", 2000) == \
        ["lock SHK_EOWNERDEAD"]
    with seg.mutex("mu"):                 # the C peer repaired it
        pass


def test_sem_event_barrier_latch(seg):
    s = seg.sem("s", create=True, value=2)
    assert s.value == 2
    with s:
        assert s.value == 1
    assert s.acquire() and s.acquire() and not s.acquire(timeout=0.01)
    s.release(2)
    assert s.value == 2

    e = seg.event("e", create=True)
    sel = selectors.DefaultSelector()
    sel.register(e.fileno(), selectors.EVENT_READ)
    with pytest.raises(shmkit.WouldBlock):
        e.wait(timeout=0)                 # arms the fd
    e.set()
    assert sel.select(2)
    sel.close()
    e.wait(timeout=0)                     # consumes an auto-reset set
    with pytest.raises(shmkit.WouldBlock):
        e.wait(timeout=0)
    me = seg.event("me", create=True, manual=True, set=True)
    me.wait(0)
    me.wait(0)
    me.reset()
    t0 = time.monotonic()
    with pytest.raises(shmkit.Timeout):
        me.wait(0.05)
    assert time.monotonic() - t0 >= 0.045

    b = seg.barrier("b", parties=1, create=True)
    assert b.wait(timeout=1) is True      # the one party is serial
    b3 = seg.barrier("b3", parties=3, create=True)
    assert b3.leave() is False            # 3 -> 2 parties, nobody arrived
    got = []
    t = threading.Thread(target=lambda: got.append(b3.wait(timeout=10)))
    t.start()
    deadline = time.monotonic() + 10
    while "arrived=1" not in seg.stat("b3").state:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert b3.leave() is True             # completes it: the serial party
    t.join(10)
    assert got == [False]                 # so the arriver is not
    la = seg.latch("l", count=2, create=True)
    assert la.count_down() == 1
    with pytest.raises(shmkit.WouldBlock):
        la.wait(0)
    assert la.count_down() == 0
    la.wait(0)
    with pytest.raises(shmkit.OutOfRange):
        la.count_down()

    rw = seg.rwlock("rw", create=True)
    with rw.read_locked():
        pass
    with rw.write_locked(timeout=1):
        pass
    mu = seg.mutex("cm", create=True)
    c = seg.cond("c", create=True)
    with mu:
        with pytest.raises(shmkit.Timeout):
            c.wait(mu, timeout=0.02)
    c.signal()
    c.broadcast()


def test_lock_and_wait_fast_paths(seg):
    """lock/acquire/with and sem wait/acquire first try once straight
    through C; what the general path did must still hold around that."""
    import threading
    m = seg.mutex("fast", create=True)
    # a bad timeout raises although the mutex is free (nothing taken)
    for bad, exc in ((-5, ValueError), (-0.5, ValueError),
                     ("1", TypeError), (float("nan"), ValueError)):
        with pytest.raises(exc):
            m.lock(timeout=bad)
        with pytest.raises(exc):
            m.acquire(timeout=bad)
    assert m.acquire(timeout=-1)          # threading's "forever"
    with pytest.raises(shmkit.Deadlock):  # the same thread again
        m.lock()
    with pytest.raises(shmkit.Deadlock):
        m.acquire(timeout=0)
    m.release()
    with pytest.raises(shmkit.NotPermitted):  # not held
        m.unlock()
    # held by another thread of this process (same handle): the try fails
    # and the blocking path waits, times out, or gives up at once
    held, done = threading.Event(), threading.Event()

    def holder():
        with m:
            held.set()
            done.wait(5)
    th = threading.Thread(target=holder)
    th.start()
    assert held.wait(5)
    assert m.acquire(blocking=False) is False
    assert m.acquire(timeout=0) is False
    t0 = time.monotonic()
    assert m.acquire(timeout=0.05) is False
    assert time.monotonic() - t0 >= 0.045
    with pytest.raises(shmkit.Timeout):
        m.lock(timeout=0.02)
    threading.Timer(0.05, done.set).start()
    t0 = time.monotonic()
    assert m.acquire()                    # waits for the holder
    assert time.monotonic() - t0 >= 0.03
    m.release()
    th.join(5)
    with m:
        pass
    m.close()
    with pytest.raises(ValueError):       # closed: no C call
        m.acquire()
    with pytest.raises(ValueError):
        with m:
            pass

    s = seg.sem("fastsem", create=True, value=1)
    with pytest.raises(ValueError):       # raises although s > 0
        s.wait(timeout=-1)
    assert s.value == 1
    with pytest.raises(ValueError):
        s.acquire(timeout=-2)
    s.wait()
    assert s.value == 0
    with pytest.raises(shmkit.WouldBlock):
        s.wait(timeout=0)
    assert s.acquire(blocking=False) is False
    t0 = time.monotonic()
    assert s.acquire(timeout=0.05) is False
    assert time.monotonic() - t0 >= 0.045
    threading.Timer(0.05, s.post).start()
    assert s.acquire(timeout=5)           # waits for the post
    assert s.value == 0
    with pytest.raises(TypeError):
        s.post("1")
    s.post(2)
    assert s.value == 2


class _Stop(Exception):
    pass


def _interrupt_main_after(delay):
    """A handler that raises _Stop, and SIGINT sent to the main thread
    (whose sleep it must interrupt) after delay seconds."""
    import signal
    import threading

    def raise_stop(signum, frame):
        raise _Stop()

    old = signal.signal(signal.SIGINT, raise_stop)
    main = threading.main_thread().ident
    t = threading.Timer(delay, signal.pthread_kill, (main, signal.SIGINT))
    t.start()
    return old, t


def _child_after(name, delay, fn):
    """Fork a child that opens the segment `name`, sleeps delay seconds and
    runs fn(segment); returns its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            s = shmkit.Segment(name)
            time.sleep(delay)
            fn(s)
            code = 0
        finally:
            os._exit(code)
    return pid


def test_signal_during_wait_takes_nothing(seg, name):
    """A signal handler that raises while a wait sleeps ends it at once,
    and what the wait would have taken later stays there: the semaphore's
    unit, the queue's element (shk_interruptible in C)."""
    import signal
    sem = seg.sem("s", create=True)
    q = seg.queue("q", create=True, elem_len=8)
    for wait, give, left in (
            (lambda: sem.wait(),
             lambda s: s.sem("s").post(),
             lambda: sem.wait(timeout=0) is None),  # WouldBlock if gone
            (lambda: q.pop(),
             lambda s: s.queue("q").push(b"12345678"),
             lambda: q.pop(timeout=0) == b"12345678")):
        pid = _child_after(name, 0.5, give)
        old, timer = _interrupt_main_after(0.15)
        t0 = time.monotonic()
        try:
            with pytest.raises(_Stop):
                wait()
            dt = time.monotonic() - t0
        finally:
            timer.cancel()
            signal.signal(signal.SIGINT, old)
        assert dt < 0.45, "raised after %.3f s, not at the signal" % dt
        assert os.waitpid(pid, 0)[1] == 0
        assert left()  # the child's unit/element is still there


def test_signal_during_lock_leaves_it_free(seg, name):
    """`with m:` interrupted by a raising handler: the mutex is not left
    held by this thread once its holder lets go."""
    import signal
    m = seg.mutex("mu", create=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            cm = shmkit.Segment(name).mutex("mu")
            cm.lock()
            os.write(w, b"l")
            time.sleep(0.5)
            cm.unlock()
            code = 0
        finally:
            os._exit(code)
    assert os.read(r, 1) == b"l"
    os.close(r)
    os.close(w)
    old, timer = _interrupt_main_after(0.15)
    try:
        with pytest.raises(_Stop):
            with m:
                pass
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
    assert os.waitpid(pid, 0)[1] == 0
    assert m.acquire(timeout=2)  # not ours: a re-lock would be Deadlock
    m.release()


def _hold_in_child(name, what, secs):
    """Fork a child that takes `what` ("mutex" or "wrlock") on object "l",
    says so on a pipe, holds it secs seconds, and lets go (secs None: dies
    holding it).  Returns the pid once the child holds it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            s = shmkit.Segment(name)
            if what == "mutex":
                obj = s.mutex("l")
                obj.lock()
            else:
                obj = s.rwlock("l")
                obj.wrlock()
            os.write(w, b"h")
            if secs is not None:
                time.sleep(secs)
                obj.unlock() if what == "mutex" else obj.wrunlock()
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    assert os.read(r, 1) == b"h"
    os.close(r)
    return pid


_SPIN_SCRIPT = r"""
import os, signal, sys, threading, time
sys.path.insert(0, %(py)r)
import shmkit

class Stop(Exception):
    pass

def stop(signum, frame):
    raise Stop()

name = sys.argv[1]
seg = shmkit.Segment(name)
rw = seg.rwlock("l")
r, w = os.pipe()
pid = os.fork()
if pid == 0:  # a reader for 0.3 s
    c = shmkit.Segment(name).rwlock("l")
    c.rdlock()
    os.write(w, b"h")
    time.sleep(0.3)
    c.rdunlock()
    os._exit(0)
assert os.read(r, 1) == b"h"
signal.signal(signal.SIGINT, stop)
main = threading.main_thread().ident
threading.Timer(0.15, signal.pthread_kill, (main, signal.SIGINT)).start()
t0 = time.monotonic()
try:
    with rw.write_locked():
        print("entered")
except Stop:
    print("stopped %%.2f" %% (time.monotonic() - t0))
sys.stdout.flush()
os.waitpid(pid, 0)
pid = os.fork()
if pid == 0:  # held by nobody now: another process can take it
    try:
        shmkit.Segment(name).rwlock("l").wrlock(timeout=2)
        os._exit(0)
    except shmkit.Timeout:
        os._exit(3)
print("other", os.waitpid(pid, 0)[1] >> 8)
"""


def test_wrlock_taken_in_spin_then_interrupted_is_given_back(seg, name):
    """A signal whose handler raises arrives while a write lock spins for
    the readers to drain (a window no C call can see: SHK_SPIN_NS stretched
    to 0.4 s), and the reader leaves during the spin: the call takes the
    lock, then Python raises.  The binding gives the write lock back, so
    another process can take it (before, the interrupted process held it
    for good)."""
    import subprocess
    import sys
    seg.rwlock("l", create=True)
    env = dict(os.environ, SHK_SPIN_NS="400000000")
    py = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out = subprocess.run(
        [sys.executable, "-c", _SPIN_SCRIPT % {"py": py}, name],
        env=env, capture_output=True, text=True, timeout=30)
    lines = out.stdout.split("\n")
    assert out.returncode == 0, out.stderr
    assert lines[0].startswith("stopped"), out.stdout
    assert float(lines[0].split()[1]) >= 0.25  # raised after the take
    assert lines[1] == "other 0", out.stdout


def test_interrupt_after_owner_dead_take_leaves_it_held(seg, name,
                                                        monkeypatch):
    """An exception that interrupts a lock just after C returned
    SHK_EOWNERDEAD (simulated: the lock call raises after taking) must not
    unlock the unrepaired mutex, which would make it NotRecoverable for
    every process: it stays held, inconsistent, for the caller's
    consistent()."""
    import shmkit.sync as sync
    m = seg.mutex("l", create=True)
    pid = _hold_in_child(name, "mutex", None)   # dies holding it
    assert os.waitpid(pid, 0)[1] == 0
    real = sync.timed

    def take_then_raise(*a, **kw):
        try:
            real(*a, **kw)
        except shmkit.OwnerDead:
            pass
        raise _Stop()

    monkeypatch.setattr(sync, "timed", take_then_raise)
    m2 = seg.mutex("l")
    with pytest.raises(_Stop):
        sync._timed_take(m2, sync._mutex_lock, "mutex lock", None,
                         sync._mutex_unlock)
    assert "inconsistent" in seg.stat("l").state
    monkeypatch.undo()
    m2.consistent()
    m2.unlock()
    with m:
        pass
    # and a normal take interrupted the same way is given back
    monkeypatch.setattr(sync, "timed", take_then_raise)
    with pytest.raises(_Stop):
        sync._timed_take(m2, sync._mutex_lock, "mutex lock", None,
                         sync._mutex_unlock)
    monkeypatch.undo()
    assert seg.stat("l").state == "unlocked"


def test_wrlock_by_the_holder_keeps_the_write_lock(seg):
    """wrlock() again by the thread that holds the write lock is Deadlock
    (SHK_EDEADLK), and the lock stays held: before, the binding took the
    error for an interrupted take and "gave back" the caller's own write
    lock, so another thread's wrlock(timeout=0) then succeeded."""
    import threading
    rw = seg.rwlock("rw", create=True)

    def other_thread_try():
        got = []

        def run():
            try:
                rw.wrlock(timeout=0)
                rw.wrunlock()
                got.append("taken")
            except shmkit.WouldBlock:
                got.append("WouldBlock")
        th = threading.Thread(target=run)
        th.start()
        th.join(10)
        return got

    rw.wrlock()
    for t in (None, 0, 0.05, 1):
        with pytest.raises(shmkit.Deadlock):
            rw.wrlock(timeout=t)
        assert other_thread_try() == ["WouldBlock"], t
    with pytest.raises(shmkit.Deadlock):
        with rw.write_locked():        # nested: the inner one fails
            pass
    assert other_thread_try() == ["WouldBlock"]
    with pytest.raises(shmkit.Deadlock):
        rw.rdlock(timeout=0)           # a read by the writer: no give-back
    assert other_thread_try() == ["WouldBlock"]
    rw.wrunlock()
    with pytest.raises(shmkit.NotPermitted):
        rw.wrunlock()
    assert other_thread_try() == ["taken"]
    with rw.write_locked():
        assert other_thread_try() == ["WouldBlock"]
    assert other_thread_try() == ["taken"]


def test_rdlock_interrupted_after_take_gives_back_only_that_hold(seg, name,
                                                                 monkeypatch):
    """An exception that interrupts rdlock just after the C call took the
    hold (simulated: the call raises after taking) gives that hold back,
    and only that one: the thread's earlier read hold, taken through
    another RWLock object of the same segment, stays.  An exception before
    any take gives nothing back.  (Before, an interrupted rdlock kept its
    hold until the thread exited: a writer then timed out.)"""
    import shmkit.sync as sync
    rw = seg.rwlock("l", create=True)
    other = seg.rwlock("l")
    other.rdlock()                       # held before, kept throughout
    real = sync.timed

    def take_then_raise(*a, **kw):
        real(*a, **kw)
        raise _Stop()

    def raise_first(*a, **kw):
        raise _Stop()

    for fake, took in ((take_then_raise, True), (raise_first, False)):
        monkeypatch.setattr(sync, "timed", fake)
        with pytest.raises(_Stop):
            rw.rdlock(timeout=1)
        monkeypatch.undo()
        assert sync._rdheld(rw._handle()) == 1, took
    other.rdunlock()                     # the one this thread really holds
    assert sync._rdheld(rw._handle()) == 0
    with pytest.raises(shmkit.NotPermitted):
        rw.rdunlock()
    pid = os.fork()
    if pid == 0:  # held by nobody now: a writer gets in
        code = 3
        try:
            shmkit.Segment(name).rwlock("l").wrlock(timeout=2)
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0


def test_cond_wait_retake_is_bounded(seg, name):
    """Another process keeps the mutex past the wait: cond.wait(m, t)
    retakes within t more and then raises Busy without the mutex (before
    2026-11-25 the retake waited for ever).  Inside `with m:` the Busy
    comes through the block's exit.  With timeout None it retakes for as
    long as it takes, holding the mutex when it returns."""
    cv = seg.cond("c", create=True)
    m = seg.mutex("m", create=True)
    for timeout, hold, in_with in ((0.2, 1.5, False), (0.2, 1.5, True),
                                   (None, 1.0, False)):
        r, w = os.pipe()
        gr, gw = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                s = shmkit.Segment(name)
                cm, cc = s.mutex("m"), s.cond("c")
                assert os.read(gr, 1) == b"g"  # the parent holds m
                cm.lock(timeout=10)      # once the parent's wait lets go
                os.write(w, b"h")
                cc.signal()
                time.sleep(hold)
                cm.unlock()
                code = 0
            finally:
                os._exit(code)
        t0 = time.monotonic()
        if in_with:
            # the block's exit lets Busy through (the mutex is not held),
            # not a NotPermitted from its unlock
            with pytest.raises(shmkit.Busy):
                with m:
                    os.write(gw, b"g")
                    cv.wait(m, timeout=timeout)
            dt = time.monotonic() - t0
            with pytest.raises(shmkit.NotPermitted):
                m.unlock()               # not held
        elif timeout is not None:
            m.lock()
            os.write(gw, b"g")
            with pytest.raises(shmkit.Busy):
                cv.wait(m, timeout=timeout)
            dt = time.monotonic() - t0
            # the wait, then the retake: 0.2 s each (C's slice, then the
            # binding's try of what is left), not the child's 1.5 s
            assert dt < 1.4, "returned after %.2f s" % dt
            with pytest.raises(shmkit.NotPermitted):
                m.unlock()               # not held
        else:
            m.lock()
            os.write(gw, b"g")
            cv.wait(m)                   # woken, then retaken after hold
            dt = time.monotonic() - t0
            assert dt >= hold - 0.2, dt
            m.unlock()                   # held
        assert os.read(r, 1) == b"h"
        for fd in (r, w, gr, gw):
            os.close(fd)
        assert os.waitpid(pid, 0)[1] == 0


def test_interrupt_right_after_the_fast_path_gives_the_lock_back(seg):
    """A signal handler that raises as the first try (timeout 0) returns
    from C, or as the call leaves the binding, after that try took the
    lock: lock(), acquire(), `with mutex:` and wrlock() give it back
    before the exception goes on, so the thread does not hold a lock it
    does not know about (before, the next lock(0) by the same thread was
    Deadlock: the mutex stayed held).  An interval timer fires every
    100 µs while the calls loop; each kind runs until its handler raised
    a few hundred times or for at most about a second."""
    import signal

    class Tick(Exception):
        pass

    armed = [False]

    def handler(signum, frame):
        if armed[0]:
            armed[0] = False
            raise Tick()

    mu = seg.mutex("m", create=True)
    rw = seg.rwlock("rw", create=True)
    kinds = [("lock", mu.lock, mu.unlock, mu.lock),
             ("acquire", mu.acquire, mu.release, mu.lock),
             ("with", mu.__enter__, mu.unlock, mu.lock),
             ("wrlock", rw.wrlock, rw.wrunlock, rw.wrlock)]
    old = signal.signal(signal.SIGALRM, handler)
    ticks = {}
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
        for label, take, give, probe in kinds:
            ticks[label] = 0
            end = time.monotonic() + 1.0
            while ticks[label] < 300 and time.monotonic() < end:
                try:
                    armed[0] = True
                    take()
                    armed[0] = False
                    give()
                except Tick:
                    armed[0] = False
                    ticks[label] += 1
                    try:
                        probe(0)       # Deadlock if this thread holds it
                    except shmkit.Deadlock:
                        give()
                        raise AssertionError(
                            "%s: still held after an interrupt" % label)
                    give()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert all(n > 0 for n in ticks.values()), ticks
    assert seg.stat("m").state == "unlocked"
