"""Shared plumbing: timeouts, names, buffers over shared memory, handles."""

import ctypes
import dataclasses
import math
import numbers
import operator
import time

from ._lib import lib
from .errors import check, exception_for

FOREVER = -1


def timeout_ns(timeout):
    """Seconds (float) -> the C library's timeout_ns.

    None (or infinity) waits forever (SHK_FOREVER), 0 only tries (SHK_TRY),
    a positive number of seconds is a relative timeout (rounded up to at
    least 1 ns so a tiny positive value is not a "try").  Negative values
    and NaN are ValueError, anything but a real number TypeError.
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
    ns = int(timeout * 1e9)
    return ns if ns > 0 else 1


I64_MAX = (1 << 63) - 1
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1


def timeout_field(timeout, what):
    """A timeout in seconds for a C options struct (int64_t ns, 0 being
    the library's default there): None -> 0 (the default), 0 -> 1 ns (the
    shortest), infinity -> SHK_FOREVER, beyond int64 -> the longest."""
    if timeout is None:
        return 0
    try:
        ns = timeout_ns(timeout)
    except (TypeError, ValueError) as e:
        raise type(e)(str(e).replace("timeout", what, 1)) from None
    return FOREVER if ns < 0 else min(max(ns, 1), I64_MAX)


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


#: Longest single wait inside the C library.  A call with a longer (or no)
#: timeout waits in slices of this length so that the interpreter runs
#: signal handlers in between: Ctrl-C interrupts a blocking call.
SLICE = 0.5
_ETIMEDOUT = -110


def timed(context, fn, *args, timeout, slice_s=SLICE, spurious_ok=False):
    """Call a blocking C function whose last argument is timeout_ns.

    The wait is cut into slices of at most slice_s seconds; between them
    Python serves signals (KeyboardInterrupt).  A slice that expires is
    retried until the caller's deadline, or, with spurious_ok (condition
    variables, which may wake spuriously), returns 0 at once.
    """
    t = timeout_ns(timeout)
    sl = int(slice_s * 1e9)
    if 0 <= t <= sl:
        return check(fn(*args, t), context)
    deadline = None if t < 0 else time.monotonic_ns() + t
    while True:
        step = sl
        if deadline is not None:
            step = min(sl, deadline - time.monotonic_ns())
            if step <= 0:
                return check(_ETIMEDOUT, context)
        rc = fn(*args, step)
        if rc != _ETIMEDOUT:
            return check(rc, context)
        if spurious_ok:
            return 0


def cname(name):
    """A str/bytes/PathLike name -> bytes for C (no NUL inside)."""
    import os
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if isinstance(name, str):
        name = name.encode()
    if not isinstance(name, (bytes, bytearray)):
        raise TypeError("name must be str or bytes, not %s"
                        % type(name).__name__)
    name = bytes(name)
    if b"\0" in name:
        raise exception_for(-22, "name %r contains a NUL byte" % (name,))
    return name


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


def cbuf(data, need=None, what="data"):
    """A pointer (c_void_p-compatible) to bytes-like `data`, and its length.

    Contiguous buffers are passed without a copy where ctypes allows it
    (writable buffers); read-only ones (bytes) are passed as bytes.
    """
    if isinstance(data, bytes):
        n = len(data)
        ptr = data
    else:
        mv = memoryview(data)
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


class HandleOwner:
    """Owns one C handle and closes it (with the subclass's _close, a
    library function) when the last reference goes.  The Python object
    that the user closes holds one reference, and every view of the
    handle's memory holds one (through its ctypes array), so the memory
    is unmapped only when both are gone: a view never points at unmapped
    or freed memory."""

    __slots__ = ("h",)
    _close = None  # name of the lib function, set by subclasses

    def __init__(self, h):
        self.h = h

    def __del__(self):
        h, self.h = self.h, None
        if h:
            try:
                getattr(lib, self._close)(h)
            except Exception:
                pass


class Closable:
    """`with` and garbage collection close it: the subclass has _handle()
    (raises once closed) and close() (idempotent)."""

    def __enter__(self):
        self._handle()
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
    time unless the C header says otherwise (the sync objects are
    thread-safe).
    """

    _close_fn = None  # the C close function's name
    kind = None

    def __init__(self, seg, name, h):
        self._h = h
        self.segment = seg
        self.name = name if isinstance(name, str) else name.decode()
        self._views = []
        seg._children.add(self)

    def _handle(self):
        h = self._h
        if not h:
            raise ValueError("%s %r is closed"
                             % (type(self).__name__, self.name))
        return h

    def _drop_views(self):
        for mv in self._views:
            try:
                mv.release()
            except (BufferError, ValueError):
                pass
        self._views = []

    def close(self):
        """Free the handle; the object stays in the segment."""
        h, self._h = self._h, None
        if h:
            self._drop_views()
            getattr(lib, self._close_fn)(h)
            seg = self.segment
            if seg is not None:
                seg._children.discard(self)

    @property
    def closed(self):
        return not self._h

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return "<shmkit.%s %r %s>" % (type(self).__name__, self.name, state)


def open_handle(fn, seg, name, flags, *args, context):
    """Call a C shk_*_open and return the new handle (raises on error)."""
    out = ctypes.c_void_p()
    rc = fn(seg._handle(), cname(name), flags, *args, ctypes.byref(out))
    check(rc, context)
    return out.value


def flags_of(create, excl):
    if excl and not create:
        raise ValueError("excl=True needs create=True")
    return (1 if create else 0) | (2 if excl else 0)

