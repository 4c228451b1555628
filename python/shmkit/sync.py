"""Process-shared synchronisation objects: mutex (robust), rwlock,
semaphore, event, barrier, latch, condition variable.

Every blocking call takes timeout in seconds (None forever, 0 try) and
raises WouldBlock (try) or Timeout (expired); the threading-style
acquire(blocking=True, timeout=None) returns False instead.
"""

import ctypes
import math

from . import _lib as L
from ._base import SLICE, U32_MAX, Handle, _or0, cint, flags_of, \
    inflight, timed, timeout_ns
from ._lib import lib
from .errors import SHK_EAGAIN, SHK_EDEADLK, SHK_EOWNERDEAD, SHK_EPERM, \
    Busy, OwnerDead, ShkError, Timeout, WouldBlock, check

__all__ = ["Mutex", "RWLock", "Sem", "Event", "Barrier", "Latch", "Cond"]

EVENT_MANUAL, EVENT_SET = 0x1, 0x2


class _Sync(Handle):
    _open_fn = None
    _count_arg = "count"  # what the constructor calls SyncOpts.count

    def __init__(self, seg, name, create=False, excl=False, flags=0,
                 count=0, max=0):
        o = L.SyncOpts()
        o.flags = flags
        o.count = cint(count, self._count_arg)
        o.max = cint(max, "max")
        self._open(seg, name, getattr(lib, self._open_fn),
                   flags_of(create, excl), ctypes.byref(o),
                   context="%s %r" % (self.kind, name))


# The lock and wait calls below first try once (timeout 0), straight
# through ctypes: a free mutex or a positive semaphore then costs one C call
# and little Python, where the general path (timed(): timeout conversion,
# slices) cost about three times the C call (the lock case of
# bench/bench_python.py).  Only a try that finds the object taken goes on
# to the blocking path.  A timeout is still checked first (timeout_ns), so
# a bad one raises whether or not the object happens to be free.  Called
# inside the caller's @inflight method, with fn one of these:
_mutex_lock = lib.shk_mutex_lock
_mutex_unlock = lib.shk_mutex_unlock
_sem_wait = lib.shk_sem_wait
_sem_post = lib.shk_sem_post
_wrlock = lib.shk_rwlock_wrlock
_wrunlock = lib.shk_rwlock_wrunlock
_rdlock = lib.shk_rwlock_rdlock
_rdunlock = lib.shk_rwlock_rdunlock
_rdheld = lib.shk_rwlock_rdheld


def _unlock_of(fn):
    """How to give back what fn takes after an interrupting exception:
    a mutex or a write lock (held per thread); None for a semaphore unit,
    whose taker cannot be told apart."""
    if fn is _mutex_lock:
        return _mutex_unlock
    if fn is _wrlock:
        return _wrunlock
    return None


def _give_back(obj, unlock):
    """After an exception that interrupted the blocking path of a lock,
    in the moments the C call cannot see (its spin before it sleeps, the
    way back to Python): if this thread took the lock meanwhile, nobody
    knows it holds it, so give it back.  Only for an exception that is not
    the C call's own error (_timed_take): every SHK_E* code means nothing
    was taken (or, OwnerDead, that it is held on purpose).  And only after
    a try (timeout 0) said SHK_EAGAIN: this thread did not hold the lock
    before the call, so the unlock can only give back what the call took;
    where it took nothing, an unlock by a thread that does not hold the
    lock is SHK_EPERM and changes nothing.  (A re-lock by the holder never
    gets here: its try said SHK_EDEADLK, raised as Deadlock; before, a
    wrlock without a try "gave back" its caller's own write lock.)  A lock
    that came back from a dead owner is left held: unlocking it unrepaired
    would make it NotRecoverable for every process."""
    try:
        if "inconsistent" in obj.segment.stat(obj.name).state:
            return
    except Exception:
        return  # cannot tell: leave it
    unlock(obj._h)


def _timed_take(obj, fn, context, timeout, unlock=None):
    """The blocking path of a lock or wait that a try found taken (unlock:
    how to give the lock back after an interrupting exception; None for
    waits, whose unit or event cannot be told apart)."""
    try:
        timed(context, fn, obj._h, timeout=timeout, owner=obj)
    except ShkError:
        # the C call's own error: nothing taken (WouldBlock, Timeout,
        # Deadlock, NoMemory, NotRecoverable, Interrupted, ...) or held on
        # purpose (OwnerDead): never given back
        raise
    except BaseException:  # KeyboardInterrupt, ...: maybe after a take
        if unlock is not None:
            _give_back(obj, unlock)
        raise


def _undo_try(obj, fn):
    """After an exception from the fast path's one try (timeout 0, straight
    through ctypes; inlined, a function call there would cost about as
    much as the C call).  The interpreter runs signal handlers as a
    foreign call returns: one that raises there (KeyboardInterrupt, ...)
    may come after the try took the lock, whose return code is then lost.
    For a lock (mutex, write lock) a second try tells: SHK_EDEADLK (or 0:
    taken by that second try) means this thread holds it, and it is given
    back as after an interrupted blocking take (_give_back: not a lock
    back from a dead owner).  A semaphore unit cannot be told apart and
    stays taken.  (A re-lock by the holder, itself Deadlock, interrupted
    at that very moment also loses the lock: its later unlock is then
    NotPermitted.)"""
    unlock = _unlock_of(fn)
    if unlock is not None:
        rc = fn(obj._h, 0)
        if rc in (0, SHK_EDEADLK, SHK_EOWNERDEAD):
            _give_back(obj, unlock)


def _take(obj, fn, context, timeout):
    """lock()/wait(): raises WouldBlock (try) or Timeout (expired)."""
    if timeout is not None:
        timeout_ns(timeout)
    try:
        rc = fn(obj._h, 0)
    except BaseException:
        _undo_try(obj, fn)
        raise
    if rc == 0:
        return
    if rc != SHK_EAGAIN or timeout == 0:
        check(rc, context)  # OwnerDead (held), WouldBlock, ...
    _timed_take(obj, fn, context, timeout, _unlock_of(fn))


def _take_bool(obj, fn, context, blocking, timeout):
    """acquire(), threading-style: True when taken, False on a failed try
    or an expired timeout (-1, like None, waits forever)."""
    if timeout is not None and timeout != -1:
        timeout_ns(timeout)
    try:
        rc = fn(obj._h, 0)
    except BaseException:
        _undo_try(obj, fn)
        raise
    if rc == 0:
        return True
    if rc != SHK_EAGAIN:
        check(rc, context)  # OwnerDead: raised, held
    if not blocking or timeout == 0:
        return False
    try:
        _timed_take(obj, fn, context, None if timeout == -1 else timeout,
                    _unlock_of(fn))
        return True
    except (WouldBlock, Timeout):
        return False


class Mutex(_Sync):
    """A robust process-shared mutex (shk_mutex_*).

    Mutex(seg, name, create=False, excl=False, on_owner_dead=None)

    lock(timeout=None) raises OwnerDead when the previous holder died
    holding it: the caller then HOLDS the mutex, must repair the protected
    state, call consistent(), then unlock() (unlocking without consistent()
    makes the mutex NotRecoverable for everyone).  As a context manager,
    `with m:` locks and unlocks; if on_owner_dead is given it is called as
    on_owner_dead(mutex) to repair and the mutex is marked consistent,
    otherwise OwnerDead propagates from the `with` line with the mutex
    held (catch it, repair, consistent(), unlock()).
    """

    _open_fn = "shk_mutex_open"
    _close_fn = "shk_mutex_close"
    kind = "mutex"

    def __init__(self, seg, name, create=False, excl=False,
                 on_owner_dead=None):
        super().__init__(seg, name, create, excl)
        self.on_owner_dead = on_owner_dead

    @inflight
    def _cond_wait(self, cond, timeout):
        cond._wait(self, timeout)  # with this mutex's handle kept valid

    @inflight
    def lock(self, timeout=None):
        _take(self, _mutex_lock, "mutex lock", timeout)

    @inflight
    def acquire(self, blocking=True, timeout=None):
        return _take_bool(self, _mutex_lock, "mutex lock", blocking, timeout)

    @inflight
    def unlock(self):
        rc = _mutex_unlock(self._h)
        if rc:
            check(rc, "mutex unlock")

    release = unlock

    @inflight
    def consistent(self):
        """Mark the state repaired after OwnerDead."""
        check(lib.shk_mutex_consistent(self._handle()), "mutex consistent")

    @inflight
    def __enter__(self):
        try:
            rc = _mutex_lock(self._h, 0)
        except BaseException:
            _undo_try(self, _mutex_lock)
            raise
        if rc == 0:
            return self
        try:
            if rc != SHK_EAGAIN:
                check(rc, "mutex lock")  # OwnerDead, ...
            _timed_take(self, _mutex_lock, "mutex lock", None,
                        _mutex_unlock)
        except OwnerDead:
            if self.on_owner_dead is None:
                raise
            self.on_owner_dead(self)
            self.consistent()
        return self

    @inflight
    def __exit__(self, *exc):
        rc = _mutex_unlock(self._h)
        if rc and not (rc == SHK_EPERM and exc[0] is not None):
            check(rc, "mutex unlock")
        # Not held while an exception leaves the block (Busy from a cond
        # wait whose retake ran out, an interrupt during that retake):
        # that exception goes on, not a NotPermitted chained to it.


class RWLock(_Sync):
    """A robust reader-writer lock: rdlock/rdunlock, wrlock/wrunlock,
    consistent() (after OwnerDead from either lock, the caller holds it
    exclusively).  read_locked()/write_locked() are context managers."""

    _open_fn = "shk_rwlock_open"
    _close_fn = "shk_rwlock_close"
    kind = "rwlock"

    @inflight
    def rdlock(self, timeout=None):
        h = self._handle()
        # Read holds are counted per thread and segment handle
        # (shk_rwlock_rdheld), so the give-back after an interrupting
        # exception compares counts: it drops one hold only when the
        # count grew, that is when the C call took one in the moments it
        # cannot see (its first spin, the way back to Python).  Any hold
        # of this thread through this segment handle is as good as
        # another, so the rdunlock leaves the thread with what it held.
        before = _rdheld(h)
        try:
            timed("rdlock", _rdlock, h, timeout=timeout, owner=self)
        except ShkError:
            raise  # the C call's own error: nothing taken
        except BaseException:  # KeyboardInterrupt, ...: maybe after a take
            if _rdheld(h) > before:
                _rdunlock(h)
            raise

    @inflight
    def wrlock(self, timeout=None):
        # tried first, as a mutex: the holder's re-lock is Deadlock there,
        # and the blocking path runs only for a lock held by another
        # thread or process.  A write hold is per thread, and the try said
        # this thread did not hold it, so it can then be given back after
        # an interrupting exception (_give_back).  rdlock compares hold
        # counts instead (above)
        _take(self, _wrlock, "wrlock", timeout)

    @inflight
    def rdunlock(self):
        check(lib.shk_rwlock_rdunlock(self._handle()), "rdunlock")

    @inflight
    def wrunlock(self):
        check(_wrunlock(self._handle()), "wrunlock")

    @inflight
    def consistent(self):
        check(lib.shk_rwlock_consistent(self._handle()), "consistent")

    def read_locked(self, timeout=None):
        return _Held(self.rdlock, self.rdunlock, timeout)

    def write_locked(self, timeout=None):
        return _Held(self.wrlock, self.wrunlock, timeout)


class _Held:
    def __init__(self, take, give, timeout):
        self._take, self._give, self._t = take, give, timeout

    def __enter__(self):
        self._take(self._t)
        return self

    def __exit__(self, *exc):
        self._give()


class Sem(_Sync):
    """A counting semaphore: Sem(seg, name, create=True, value=0, max=None).
    wait(timeout)/post(n); acquire/release as threading; `with sem:`."""

    _open_fn = "shk_sem_open"
    _close_fn = "shk_sem_close"
    kind = "sem"
    _count_arg = "value"

    def __init__(self, seg, name, create=False, excl=False, value=0,
                 max=None):
        super().__init__(seg, name, create, excl, count=value,
                         max=_or0(max))

    @inflight
    def wait(self, timeout=None):
        _take(self, _sem_wait, "sem wait", timeout)

    @inflight
    def acquire(self, blocking=True, timeout=None):
        return _take_bool(self, _sem_wait, "sem wait", blocking, timeout)

    @inflight
    def post(self, n=1):
        if type(n) is not int or not 0 <= n <= U32_MAX:
            n = cint(n, "n", 0, U32_MAX)
        rc = _sem_post(self._h, n)
        if rc:
            check(rc, "sem post")

    def release(self, n=1):
        self.post(n)

    @property
    @inflight
    def value(self):
        return check(lib.shk_sem_value(self._handle()), "sem value")

    @inflight
    def fileno(self):
        return check(lib.shk_sem_fd(self._handle()), "sem fd")

    def __enter__(self):
        self.wait()
        return self

    def __exit__(self, *exc):
        self.post()


class Event(_Sync):
    """An event: Event(seg, name, create=True, manual=False, set=False).
    set(), reset(), wait(timeout) (an auto-reset event's wait consumes the
    set), fileno()."""

    _open_fn = "shk_event_open"
    _close_fn = "shk_event_close"
    kind = "event"

    def __init__(self, seg, name, create=False, excl=False, manual=False,
                 set=False):
        super().__init__(seg, name, create, excl,
                         flags=(EVENT_MANUAL if manual else 0)
                         | (EVENT_SET if set else 0))

    @inflight
    def set(self):
        check(lib.shk_event_set(self._handle()), "event set")

    @inflight
    def reset(self):
        check(lib.shk_event_reset(self._handle()), "event reset")

    clear = reset

    @inflight
    def wait(self, timeout=None):
        timed("event wait", lib.shk_event_wait,
              self._handle(), timeout=timeout, owner=self)

    @inflight
    def fileno(self):
        return check(lib.shk_event_fd(self._handle()), "event fd")


class Barrier(_Sync):
    """A reusable barrier for `parties` (required to create).  wait()
    returns True for the one serial arriver per generation; leave() True
    when it completed the generation instead (then no arriver is)."""

    _open_fn = "shk_barrier_open"
    _close_fn = "shk_barrier_close"
    kind = "barrier"
    _count_arg = "parties"

    def __init__(self, seg, name, parties=None, create=False, excl=False):
        super().__init__(seg, name, create, excl, count=_or0(parties))

    @inflight
    def wait(self, timeout=None):
        return timed("barrier wait", lib.shk_barrier_wait,
                     self._handle(), timeout=timeout, owner=self) == 1

    @inflight
    def leave(self):
        """Remove one party for good; True when this leave completed the
        generation (everyone left had arrived): the leaver is then its
        serial party, no arriver is."""
        return check(lib.shk_barrier_leave(self._handle()),
                     "barrier leave") == 1


class Latch(_Sync):
    """A one-shot latch whose count starts at `count` (required to
    create): count_down(n) -> count left; wait(timeout); count."""

    _open_fn = "shk_latch_open"
    _close_fn = "shk_latch_close"
    kind = "latch"
    _count_arg = "count"

    def __init__(self, seg, name, count=None, create=False, excl=False):
        super().__init__(seg, name, create, excl, count=_or0(count))

    @inflight
    def count_down(self, n=1):
        return check(lib.shk_latch_count_down(self._handle(),
                                              cint(n, "n", 0, U32_MAX)),
                     "latch count_down")

    @inflight
    def wait(self, timeout=None):
        timed("latch wait", lib.shk_latch_wait,
              self._handle(), timeout=timeout, owner=self)

    @property
    @inflight
    def count(self):
        return check(lib.shk_latch_count(self._handle()), "latch count")


class Cond(_Sync):
    """A condition variable used with a Mutex: wait(mutex, timeout),
    signal(), broadcast()."""

    _open_fn = "shk_cond_open"
    _close_fn = "shk_cond_close"
    kind = "cond"

    def wait(self, mutex, timeout=None):
        """Unlock mutex (a Mutex this caller holds), wait for a signal,
        lock it again; may return early (spurious wake-up).  The retake
        waits up to timeout more (None: for ever); when another party
        keeps the mutex past that, raises Busy and the caller does NOT
        hold it (inside `with mutex:` the block's exit then lets Busy
        through rather than failing to unlock)."""
        if not isinstance(mutex, Mutex):
            raise TypeError("mutex must be a shmkit.Mutex, not %s"
                            % type(mutex).__name__)
        mutex._cond_wait(self, timeout)

    @inflight
    def signal(self):
        check(lib.shk_cond_signal(self._handle()), "cond signal")

    notify = signal

    @inflight
    def _wait(self, mutex, timeout):
        try:
            timed("cond wait", lib.shk_cond_wait, self._handle(), mutex._h,
                  timeout=timeout, owner=(self, mutex), spurious_ok=True)
        except Busy:
            # The C call's bounded retake ran out (SHK_EBUSY: another
            # party keeps the mutex) and this thread does not hold it.
            # Each C call here is one slice (at most SLICE, and at most
            # the timeout), whose retake waited as long as the slice, so
            # the binding retakes for the rest of the caller's bound:
            # timeout - min(timeout, SLICE) more (0: one try; None: for
            # ever), interruptibly, as lock() does; the retake thus takes
            # at most timeout in all.  Busy (mutex not held) only when
            # that runs out too.
            rest = None if timeout is None or timeout == math.inf \
                else max(0.0, timeout - min(timeout, SLICE))
            try:
                mutex.lock(rest)
            except (Timeout, WouldBlock):
                raise Busy(context="cond wait: mutex not retaken in "
                           "time (not held)") from None

    @inflight
    def broadcast(self):
        check(lib.shk_cond_broadcast(self._handle()), "cond broadcast")

    notify_all = broadcast
