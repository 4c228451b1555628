"""SPSC rings of variable-size records, with zero-copy reserve and peek."""

import ctypes

from . import _lib as L
from ._base import Handle, Region, cbuf, cint, flags_of, inflight, \
    no_objects, record_type, timed
from ._lib import lib
from .errors import ShkError, check

__all__ = ["Ring", "RingStats", "PRODUCER", "CONSUMER"]

PRODUCER, CONSUMER = 1, 2
_ROLES = {"producer": PRODUCER, "consumer": CONSUMER, "w": PRODUCER,
          "r": CONSUMER, PRODUCER: PRODUCER, CONSUMER: CONSUMER}
BATCH, SPIN = 0x1, 0x2

RingStats = record_type("RingStats", L.RingStats)


class Ring(Handle):
    """One side of an SPSC ring (shk_ring_open).

    Ring(seg, name, role, create=False, excl=False, cap=None,
         max_record=None, type_id=0, batch=False, spin=False)

    role: "producer" or "consumer" (one live owner each: Busy otherwise).
    cap: data bytes (power of two, default 64 KiB).  Timeouts are seconds:
    None waits forever, 0 only tries (WouldBlock), else Timeout on expiry.

    Producer: write(data), or zero-copy: mv = reserve(n); fill mv;
    commit().  Consumer: read() -> bytes, or zero-copy: mv = peek();
    use mv; release().  A view from reserve/peek is released (unusable) by
    commit/release.  Iterating a consumer yields records, waiting forever
    for each.
    """

    _close_fn = "shk_ring_close"
    kind = "ring"

    def __init__(self, seg, name, role, create=False, excl=False, cap=None,
                 max_record=None, type_id=0, batch=False, spin=False):
        try:
            self.role = _ROLES[role]
        except (KeyError, TypeError):
            raise ValueError("role must be 'producer' or 'consumer', not %r"
                             % (role,)) from None
        o = L.RingOpts()
        o.flags = (BATCH if batch else 0) | (SPIN if spin else 0)
        if cap is not None:
            o.cap = cint(cap, "cap")
        if max_record is not None:
            o.max_record = cint(max_record, "max_record")
        o.type_id = cint(type_id, "type_id")
        self._pending = []  # reserve/peek views awaiting commit/release
        # (address, length) of a reservation C made whose view never came
        # back (an interrupt): the next reserve() hands it out
        self._unviewed = None
        self._region = None
        # out-parameters of reserve/peek, made once (a handle is for one
        # thread at a time)
        self._buf = ctypes.c_void_p()
        self._len = ctypes.c_size_t()
        self._pbuf = ctypes.byref(self._buf)
        self._plen = ctypes.byref(self._len)
        self._open(seg, name, lib.shk_ring_open, flags_of(create, excl),
                   self.role, ctypes.byref(o), context="ring %r" % (name,))
        # the records lie in the segment: their views are slices of one
        # view of the whole mapping (Region), made here
        self._region = Region(self._map, lib.shk_seg_base(self._map.h),
                              seg.size)
        st = self.stat()
        self.cap = st.cap
        self.max_record = st.max_record

    @inflight
    def stat(self):
        """A snapshot of the ring (RingStats: fill, head, tail, ...)."""
        st = L.RingStats()
        check(lib.shk_ring_stat(self._handle(), ctypes.byref(st)), "stat")
        return RingStats(**st.to_dict())

    @inflight
    def fileno(self):
        """(Consumer) a descriptor that polls readable when data may be
        there; use it with read(timeout=0) / peek(0) (selectors works)."""
        return check(lib.shk_ring_fd(self._handle()), "ring fd")

    def _settle(self):
        for mv in self._pending:
            try:
                mv.release()
            except BufferError:
                pass  # exported further (e.g. to NumPy): cannot revoke
        self._pending = []

    # ------------------------------------------------------- producer

    @inflight
    def write(self, data, timeout=None):
        """Copy bytes-like data into one record."""
        ptr, n = cbuf(data)
        timed("ring write", lib.shk_ring_write,
              self._handle(), ptr, n, timeout=timeout, owner=self)

    send = write

    @inflight
    def reserve(self, nbytes, timeout=None):
        """Reserve one record of nbytes and return a writable memoryview
        onto the ring's memory; fill it, then commit()."""
        nbytes = cint(nbytes, "nbytes")
        h = self._handle()
        left = self._unviewed
        if left is not None:
            # C has no way to cancel a reservation: an interrupted
            # reserve() left one open (every new one is SHK_EINVAL)
            if nbytes != left[1]:
                raise ValueError(
                    "an interrupted reserve(%d) left its reservation open"
                    " (C cannot cancel it): reserve(%d) returns it, to"
                    " fill and commit()" % (left[1], left[1]))
            mv = self._region.slice(left[0], nbytes)
            self._pending.append(mv)
            self._unviewed = None
            return mv
        self._buf.value = None
        try:
            timed("ring reserve", lib.shk_ring_reserve, h, nbytes,
                  self._pbuf, timeout=timeout, owner=self)
            mv = self._region.slice(self._buf.value, nbytes)
            self._pending.append(mv)
            return mv
        except ShkError:
            raise  # the C call's own error: nothing reserved
        except BaseException:
            # KeyboardInterrupt, ...: when C reserved (the out-parameter,
            # cleared before, is set) the caller has no view of it
            if self._buf.value:
                self._unviewed = (self._buf.value, nbytes)
            raise

    @inflight
    def commit(self):
        """Publish the reserved record (its view is released)."""
        check(lib.shk_ring_commit(self._handle()), "ring commit")
        self._unviewed = None
        self._settle()

    @inflight
    def flush(self):
        """Publish what a batching handle holds back."""
        check(lib.shk_ring_flush(self._handle()), "ring flush")

    # ------------------------------------------------------- consumer

    @inflight
    def peek(self, timeout=None):
        """The oldest record in place, as a read-only memoryview valid until
        release() (peeking again returns the same record)."""
        timed("ring peek", lib.shk_ring_peek, self._handle(), self._pbuf,
              self._plen, timeout=timeout, owner=self)
        n = self._len.value
        if not n:
            return memoryview(b"")
        mv = self._region.slice(self._buf.value, n, True)
        self._pending.append(mv)
        return mv

    @inflight
    def release(self):
        """Free the record of the last peek (its view is released)."""
        check(lib.shk_ring_release(self._handle()), "ring release")
        self._settle()

    @inflight
    def read(self, timeout=None):
        """The oldest record as bytes (one copy), removed from the ring."""
        h = self._handle()
        buf = ctypes.c_void_p()
        n = ctypes.c_size_t()
        timed("ring read", lib.shk_ring_peek, h, ctypes.byref(buf),
              ctypes.byref(n), timeout=timeout, owner=self)
        data = ctypes.string_at(buf.value, n.value) if n.value else b""
        self._settle()  # views of an earlier peek of this record
        check(lib.shk_ring_release(h), "ring release")
        return data

    recv = read

    @inflight
    def read_into(self, out, timeout=None):
        """Copy the oldest record into a writable buffer; returns its
        length.  MsgSize (record left in the ring) when it does not fit.
        The views of an earlier peek() are released, as by read()."""
        try:
            mv = memoryview(out).cast("B")
        except TypeError:
            raise TypeError("read_into needs a writable buffer, not %s"
                            % type(out).__name__) from None
        if mv.readonly:
            raise TypeError("read_into needs a writable buffer")
        no_objects(memoryview(out), "read_into's buffer")
        ptr = (ctypes.c_char * mv.nbytes).from_buffer(mv) if mv.nbytes \
            else None
        n = timed("ring read", lib.shk_ring_read, self._handle(), ptr,
                  mv.nbytes, timeout=timeout, owner=self)
        self._settle()  # views of an earlier peek of the record it removed
        return n

    def __iter__(self):
        while True:
            yield self.read()

    def _closing_now(self):
        self._settle()

    def _free(self):
        super()._free()
        self._region = None  # only the views a user kept hold the mapping
