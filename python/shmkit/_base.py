"""Shared plumbing: timeouts, names, buffers over shared memory, handles."""

import ctypes
import dataclasses
import functools
import inspect
import math
import numbers
import operator
import os
import re
import time
import weakref

from ._lib import lib
from .errors import check, exception_for

FOREVER = -1


def timeout_ns(timeout):
    """Seconds (float) -> the C library's timeout_ns.

    None (or infinity) waits forever (SHK_FOREVER), 0 only tries (SHK_TRY),
    a positive number of seconds is a relative timeout (rounded up to at
    least 1 ns so a tiny positive value is not a "try"); one of 2**63 ns
    (about 292 years) or more is forever too, as int64_t cannot hold it.
    Negative values and NaN are ValueError, anything but a real number
    TypeError.
    """
    if timeout is None:
        return FOREVER
    if type(timeout) is not float and type(timeout) is not int:
        if isinstance(timeout, bool) or \
                not isinstance(timeout, numbers.Real):
            raise TypeError("timeout must be None or seconds (a number), "
                            "not %s" % type(timeout).__name__)
    if not timeout >= 0:  # negative or NaN
        raise ValueError("timeout must be None, 0 or positive seconds, "
                         "not %r" % (timeout,))
    if timeout == 0:
        return 0
    if timeout == math.inf:
        return FOREVER
    try:
        ns = float(timeout) * 1e9
    except OverflowError:  # an int (or a Fraction) too large for a float
        return FOREVER
    if ns >= 1 << 63:  # also a float product that overflowed to inf
        return FOREVER
    ns = int(ns)
    return ns if ns > 0 else 1


I64_MAX = (1 << 63) - 1
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1


def timeout_field(timeout, what, forever=FOREVER):
    """A timeout in seconds for a C options struct (int64_t ns, 0 being
    the library's default there): None -> 0 (the default), 0 -> 1 ns (the
    shortest), infinity (or 2**63 ns and more, as timeout_ns) -> forever,
    the field's own "never" (SHK_FOREVER, or I64_MAX for a field that
    takes no negative value)."""
    if timeout is None:
        return 0
    try:
        ns = timeout_ns(timeout)
    except (TypeError, ValueError) as e:
        raise type(e)(str(e).replace("timeout", what, 1)) from None
    return forever if ns < 0 else max(ns, 1)


def _bound(n):
    """A limit as people write it: 2**64-1, -2**31, 63."""
    if n > 0xFFFF and not (n + 1) & n:
        return "2**%d-1" % n.bit_length()
    if n < -0xFFFF and not -n & (-n - 1):
        return "-2**%d" % (-n - 1).bit_length()
    return str(n)


def cint(value, what, lo=0, hi=U64_MAX, fmt=_bound):
    """value as an int in lo..hi, for a C argument or struct field (ctypes
    would silently wrap it).  Anything but an integer (str, float, bool)
    is TypeError, an integer out of range ValueError."""
    if type(value) is not int:
        if isinstance(value, bool):
            raise TypeError("%s must be an int, not bool" % what)
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError("%s must be an int, not %s"
                            % (what, type(value).__name__)) from None
    if not lo <= value <= hi:
        raise ValueError("%s must be between %s and %s, not %s"
                         % (what, fmt(lo), fmt(hi), fmt(value)))
    return value


def _or0(value):
    """None -> 0 (the library's default), anything else unchanged for
    cint to check: not `value or 0`, which turned False, 0.0 or "" into
    the default instead of a TypeError."""
    return 0 if value is None else value


#: Longest single wait inside the C library.  A call with a longer (or no)
#: timeout waits in slices of this length so that the interpreter runs
#: signal handlers in between: Ctrl-C interrupts a blocking call, and a
#: close() from another thread ends it (ValueError) at the next slice.
SLICE = 0.5
_SLICE_NS = int(SLICE * 1e9)
_ETIMEDOUT = -110
_EINTR = -4

# Runs the interpreter's pending signal handlers now and raises what they
# raise (KeyboardInterrupt); PyDLL functions keep the GIL and check for an
# exception after the call.  In other threads than the main one it does
# nothing (Python runs handlers only there).
_check_signals = ctypes.pythonapi.PyErr_CheckSignals
_check_signals.restype = ctypes.c_int
_check_signals.argtypes = []
_set_interruptible = lib.shk_interruptible


def timed(context, fn, *args, timeout, owner, slice_s=SLICE,
          spurious_ok=False):
    """Call a blocking C function whose last argument is timeout_ns, on
    behalf of `owner` (a Closable, or a tuple of them, whose C call this
    is: the caller runs inside its @inflight method).

    The wait is cut into slices of at most slice_s seconds; between them
    Python serves signals (KeyboardInterrupt), and when an owner has been
    closed meanwhile the call ends with ValueError.  A slice that expires
    is retried until the caller's deadline, or, with spurious_ok
    (condition variables, which may wake spuriously), returns 0 at once.

    The C calls run with shk_interruptible on (restored after): a sleep
    that a signal interrupts, or that ends short of its deadline without
    the condition, ends the C call with SHK_EINTR having taken nothing, and
    the handlers run here (PyErr_CheckSignals) before the next call could
    take anything; if none raises, the wait goes on to the same deadline
    (spurious_ok: returns 0 after a signal).
    """
    t = timeout_ns(timeout)
    if t == 0:
        return check(fn(*args, 0), context)
    # clamped: ctypes would wrap a slice past int64 (to 0 or negative)
    sl = _SLICE_NS if slice_s == SLICE else min(int(slice_s * 1e9), I64_MAX)
    single = 0 < t <= sl  # one slice: its expiry is the caller's timeout
    owners = owner if isinstance(owner, tuple) else (owner,)
    deadline = None if t < 0 else time.monotonic_ns() + t
    prev = _set_interruptible(1)
    try:
        while True:
            step = sl
            if deadline is not None:
                step = min(sl, deadline - time.monotonic_ns())
                if step <= 0:
                    return check(_ETIMEDOUT, context)
            rc = fn(*args, step)
            if rc == _EINTR:
                # Nothing taken: run the handlers now, so that
                # KeyboardInterrupt raises here, not after a later call
                # took a record, a unit or a lock.  (A condition
                # variable's SHK_EINTR comes only from a signal.)
                _check_signals()
                if spurious_ok:
                    return 0
            elif rc != _ETIMEDOUT or single:
                return check(rc, context)
            elif spurious_ok:
                return 0
            for o in owners:
                if o._closing:
                    raise o._closed_error()
    finally:
        if not prev:
            _set_interruptible(0)


def cname(name):
    """A str/bytes/PathLike name -> bytes for C (no NUL inside)."""
    import os
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if isinstance(name, str):
        name = name.encode()
    if not isinstance(name, (bytes, bytearray)):
        raise TypeError("name must be str, bytes or path-like, not %s"
                        % type(name).__name__)
    name = bytes(name)
    if b"\0" in name:
        raise exception_for(-22, "name %r contains a NUL byte" % (name,))
    return name


_NO_COPY = "shmkit handles cannot be copied or pickled"


class NoCopy:
    """Mixin of every class that owns a C handle, or a reference that
    stands for one (a message, a mapped range): copy.copy, copy.deepcopy
    and pickle raise TypeError.  A copy would carry the same raw C pointer
    with a finalizer of its own, which would close or release it under the
    original (a use after free, a double free); pickling would send a
    pointer that means nothing in another process.  Open the object again
    (in a child: open the Segment there) instead."""

    __slots__ = ()

    def __copy__(self):
        raise TypeError(_NO_COPY)

    def __deepcopy__(self, memo):
        raise TypeError(_NO_COPY)

    def __reduce_ex__(self, protocol):
        raise TypeError(_NO_COPY)

    def __reduce__(self):
        raise TypeError(_NO_COPY)


def view(keep, addr, nbytes, readonly=False):
    """A memoryview of nbytes at addr that keeps `keep` alive.

    The memory belongs to a segment mapping; `keep` (the segment's mapping
    owner) stays referenced by the view, so the mapping cannot go away
    while any view (or NumPy array made from one) exists.
    """
    if not addr:
        raise exception_for(-22, "no memory at this offset")
    carr = (ctypes.c_ubyte * nbytes).from_address(addr)
    carr._shk_keep = keep
    mv = memoryview(carr).cast("B")
    return mv.toreadonly() if readonly else mv


class Region(NoCopy):
    """One mapped range [addr, addr + nbytes), with a writable and a
    read-only memoryview over all of it, made once (view()).

    A record's view is then a slice of one of them (slice()): about a
    tenth of what view() costs per call (a ctypes array and two or three
    memoryviews).  A slice shares the whole range's buffer, and through
    its ctypes array keeps `keep` alive, as view() does: a slice a user
    kept (or a NumPy array made from one) keeps the memory mapped.  The
    owner (a Ring, a Chan) drops its Region when it is closed, so that
    only such slices hold the mapping then.

    The address C hands back is not trusted: slice() slices only when the
    whole record lies inside the range, and otherwise makes a view() of
    its own (a subscriber's buffer lies outside its channel's segment).
    A memoryview slice would silently clamp a record that runs past the
    end instead of failing.
    """

    __slots__ = ("addr", "nbytes", "keep", "rw", "ro")

    def __init__(self, keep, addr, nbytes):
        self.addr = addr
        self.nbytes = nbytes
        self.keep = keep
        self.rw = view(keep, addr, nbytes)
        self.ro = self.rw.toreadonly()

    def slice(self, addr, nbytes, readonly=False):
        """A view of nbytes at addr (an int, or None for NULL)."""
        off = addr - self.addr if addr else -1
        if off < 0 or off + nbytes > self.nbytes:
            return view(self.keep, addr, nbytes, readonly)  # NULL: raises
        return (self.ro if readonly else self.rw)[off:off + nbytes]


def no_objects(mv, what="data"):
    """TypeError when the buffer's items are (or contain) Python object
    pointers (struct format 'O', e.g. a NumPy array of dtype object): their
    bytes are addresses in this process, meaningless elsewhere, and
    writing bytes over them corrupts the interpreter."""
    fmt = mv.format
    if "O" in fmt and "O" in re.sub(r":[^:]*:", "", fmt):  # not in names
        raise TypeError("%s holds Python objects (format %r): they cannot "
                        "go through shared memory" % (what, fmt))


def cbuf(data, need=None, what="data"):
    """A pointer (c_void_p-compatible) to bytes-like `data`, and its length.

    Contiguous buffers are passed without a copy where ctypes allows it
    (writable buffers); read-only ones (bytes) are passed as bytes.  A
    buffer of Python objects (format 'O') is TypeError (no_objects).
    """
    if isinstance(data, bytes):
        n = len(data)
        ptr = data
    else:
        try:
            mv = memoryview(data)
        except TypeError:
            raise TypeError("%s must be bytes-like, not %s"
                            % (what, type(data).__name__)) from None
        no_objects(mv, what)
        if not mv.c_contiguous:
            raise ValueError("%s must be C-contiguous" % what)
        n = mv.nbytes
        if mv.readonly:
            ptr = mv.tobytes()
        else:
            mv = mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv
            ptr = (ctypes.c_char * n).from_buffer(mv) if n else None
    if need is not None and n != need:
        raise ValueError("%s must be exactly %d bytes, not %d"
                         % (what, need, n))
    return ptr, n


def record_type(name, struct):
    """A frozen dataclass named `name` with the fields of ctypes `struct`
    (size and reserved words left out)."""
    fields = [f[0] for f in struct._fields_
              if f[0] not in ("size", "reserved")]
    return dataclasses.make_dataclass(name, fields, frozen=True)


class _Closer:
    __slots__ = ("fn", "h")

    def __init__(self, fn, h):
        self.fn, self.h = fn, h

    def __del__(self):
        try:
            getattr(lib, self.fn)(self.h)
        except Exception:
            pass  # interpreter shutdown: the process unmaps anyway


class HandleOwner(NoCopy):
    """Owns one C handle and closes it (with the subclass's _close, a
    library function) when the last reference goes.  The Python object
    that the user closes holds one reference, every view of the handle's
    memory holds one (through its ctypes array), and so does every object
    handle opened from it until that handle's C close: the memory is
    unmapped only when all are gone, so a view never points at unmapped or
    freed memory and no object handle outlives its segment.

    hold()/drop() count the dependent C handles (object handles of a
    segment).  They already keep this object alive, but the cyclic garbage
    collector runs finalizers in no particular order: when __del__ comes
    while dependents are open, the C close waits for the last drop()."""

    __slots__ = ("h", "_deps", "_dead", "_later")
    _close = None  # name of the lib function, set by subclasses

    def __init__(self, h):
        self.h = h
        self._deps = []  # one entry per open dependent (append/pop: atomic)
        self._dead = False
        self._later = None

    def hold(self):
        self._deps.append(None)

    def drop(self):
        self._deps.pop()
        if self._dead and not self._deps:
            self._close_now()

    def _close_now(self):
        # Not at once: hand the handle to a _Closer made now, referenced
        # only by this object.  In a cyclic collection this runs in the
        # finalizer phase, where other garbage (a view of this memory)
        # may still be used by its __del__, or resurrected; the _Closer,
        # made after the garbage was listed, is not part of it and closes
        # when this object is cleared or deallocated, after every
        # finalizer.  Outside a collection that is right after __del__.
        h = self.h
        if h and self._later is None:
            self._later = _Closer(self._close, h)

    def __del__(self):
        self._dead = True
        if not self._deps:
            self._close_now()


_GUARDED = """\
def guarded({params}):
    calls = self._calls
    calls.append(None)
    try:
        if self._closing:
            raise self._closed_error()
        return method({args})
    finally:
        del calls[-1]
        if self._closing and not calls:
            self._finish()
"""


def inflight(method):
    """Decorator for the methods of a Closable that call C with its handle.

    While one runs, the C handle stays valid: close() from another thread
    only marks the object closing, and the C close (_free) runs when the
    last such call leaves.  A call that starts after close() raises
    ValueError; a blocking one (timed) notices at its next slice.  The
    count is a list whose append and `del calls[-1]` are atomic under the
    GIL: no lock on this path.  Not calls.pop(): the interpreter runs
    signal handlers as a call to C returns, and a handler that raised
    there would come after the method (a lock just taken) had returned,
    where nothing can give back what it took.  The wrapper is generated
    with the method's own parameters (as dataclasses generates __init__):
    a *args/**kw wrapper costs about twice as much per call."""
    params, args = [], []
    star = False
    for p in inspect.signature(method).parameters.values():
        if p.name in ("calls", "method"):  # names the wrapper uses
            raise TypeError("@inflight %s: rename parameter %r"
                            % (method.__qualname__, p.name))
        if p.kind is p.VAR_POSITIONAL:
            params.append("*" + p.name)
            args.append("*" + p.name)
            star = True
        elif p.kind is p.VAR_KEYWORD:
            params.append("**" + p.name)
            args.append("**" + p.name)
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                params.append("*")
                star = True
            params.append(p.name)
            args.append("%s=%s" % (p.name, p.name))
        else:
            params.append(p.name)
            args.append(p.name)
    ns = {}
    exec(_GUARDED.format(params=", ".join(params), args=", ".join(args)),
         {"method": method}, ns)
    guarded = functools.wraps(method)(ns["guarded"])
    guarded.__defaults__ = method.__defaults__
    guarded.__kwdefaults__ = method.__kwdefaults__
    return guarded


# Every Closable opened in this process and not yet collected, for the
# fork hook below.
_LIVE = weakref.WeakSet()


def _inherited_error(obj, pid):
    what = getattr(obj, "name", None) or getattr(obj, "addr", None)
    return ValueError("%s %r belongs to process %d (opened before fork):"
                      " open it again in this process"
                      % (type(obj).__name__, what, pid))


def _mark_inherited():
    """os.register_at_fork(after_in_child=): the child's copies of the
    handles its parent opened cannot be used there (shmkit.h, fork
    policy: a handle belongs to the process that opened it; before, a
    child's ring write through its parent's producer handle was silently
    lost and a pop or recv took what the parent owned).  Each is marked
    closing, whose error names the opener: every call raises ValueError.
    No C call here (nor in another thread: there is none in the child).
    close() and the finalizers still close the child's copy in C
    (Closable.close), as they did."""
    for obj in list(_LIVE):
        if not obj._closing:
            obj._inherited = True
            obj._closed_error = functools.partial(_inherited_error, obj,
                                                  obj._pid)
            obj._closing = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_inherited)


class Closable(NoCopy):
    """Base of what the user closes (Segment, Chan, object handles): `with`
    and garbage collection close it; close() is idempotent and safe while
    other threads are inside its calls (see inflight).  Subclasses call
    _init_guard() first in __init__ and define _closed_error(), _free()
    (the real C close, run exactly once when no call is in flight) and,
    optionally, _closing_now() (run by close() at once).  In a forked
    child what the parent opened is closing from the start
    (_mark_inherited), but not closed: close() still runs."""

    _closing = False
    _inherited = False
    _calls = ()

    def _init_guard(self):
        self._closing = False  # an instance attribute: the fastest lookup
        self._calls = []       # an entry per C call in flight
        self._token = [None]  # popped by the one _finish that runs _free
        self._pid = os.getpid()  # the opener
        _LIVE.add(self)

    def _closed_error(self):
        return ValueError("%s is closed" % type(self).__name__)

    def _closing_now(self):
        pass

    def _free(self):
        pass

    def close(self):
        """Close it (idempotent).  When another thread is inside a call on
        it, that call ends with ValueError (a blocking one at its next
        slice: 0.5 s, longer for a reliable Bcast writer) and the C handle
        is freed as it leaves."""
        if self._closing:
            if not self._inherited:
                return
            self._inherited = False  # a forked child's copy: closed once
        self._closing = True  # before the test of _calls: see inflight
        self._closing_now()
        if not self._calls:
            self._finish()

    def _finish(self):
        try:
            self._token.pop()
        except (AttributeError, IndexError):
            return  # freed already (or never opened)
        self._free()

    @property
    def closed(self):
        return self._closing and not self._inherited

    def __enter__(self):
        if self._closing:
            raise self._closed_error()
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Handle(Closable):
    """Base of every object handle (ring, array, mutex, ...).

    A handle belongs to its Segment: closing the segment closes it first.
    Closing twice is fine; any call after close raises ValueError.  Use
    `with` to close deterministically.  A handle is for one thread at a
    time unless the C header says otherwise (the sync objects, queues,
    stacks, maps, pools and arrays are thread-safe, and their calls use
    no buffer of the handle's); closing it from another thread is always
    safe.
    """

    _close_fn = None  # the C close function's name
    kind = None
    _h = None

    def _open(self, seg, name, fn, flags, *args, context):
        """Open the object with the C shk_*_open fn (raises on error) and
        attach this handle to seg; returns the C handle."""
        self._init_guard()
        self.segment = seg
        self._cname = cname(name)  # the name as C has it (Segment.remove)
        self.name = self._cname.decode("utf-8", "replace")
        seg._open_object(self, fn, name, flags, *args, context=context)
        return self._h

    def _handle(self):
        """The C handle, for a call inside an @inflight method."""
        if self._closing:
            raise self._closed_error()
        return self._h

    def _closed_error(self):
        return ValueError("%s %r is closed" % (type(self).__name__,
                                               self.name))

    def _free(self):
        h, self._h = self._h, None
        if h:
            getattr(lib, self._close_fn)(h)
            m, self._map = self._map, None
            m.drop()  # may unmap, when the segment was closed before
            self.segment._children.discard(self)

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return "<shmkit.%s %r %s>" % (type(self).__name__, self.name, state)


def flags_of(create, excl):
    if excl and not create:
        raise ValueError("excl=True needs create=True")
    return (1 if create else 0) | (2 if excl else 0)

