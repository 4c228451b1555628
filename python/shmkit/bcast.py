"""Broadcast buffers: one writer, many readers (lossy or reliable)."""

import ctypes

from . import _lib as L
from ._base import I64_MAX, SLICE, U32_MAX, Handle, cbuf, cint, flags_of, \
    inflight, record_type, timed, timeout_field
from ._lib import lib
from .errors import check

__all__ = ["Bcast", "BcastStats", "LOSSY", "RELIABLE"]

WRITER, READER = 1, 2
LOSSY, RELIABLE = 1, 2
_ROLES = {"writer": WRITER, "reader": READER, WRITER: WRITER,
          READER: READER}
_MODES = {None: 0, "lossy": LOSSY, "reliable": RELIABLE, LOSSY: LOSSY,
          RELIABLE: RELIABLE}

BcastStats = record_type("BcastStats", L.BcastStats)


class Bcast(Handle):
    """One side of a broadcast buffer (shk_bcast_open).

    Bcast(seg, name, role, create=False, excl=False, mode=None, cap=None,
          max_record=None, type_id=0, max_readers=None,
          reader_timeout=None)

    role "writer" (one at a time) or "reader" (starts at the next record
    written).  mode "lossy" (default; the writer never waits, readers learn
    how many records they lost) or "reliable".  read() returns
    (bytes, lost).  Timeouts in seconds as for Ring.  reader_timeout
    (seconds; None: the library's 0.1 s) is how long a reliable writer
    waits for a reader before testing whether its process died;
    math.inf (or 2**63 ns and more) never tests.
    """

    _close_fn = "shk_bcast_close"
    kind = "bcast"

    def __init__(self, seg, name, role, create=False, excl=False, mode=None,
                 cap=None, max_record=None, type_id=0, max_readers=None,
                 reader_timeout=None):
        try:
            self.role = _ROLES[role]
            m = _MODES[mode]
        except (KeyError, TypeError):
            raise ValueError("role must be 'writer' or 'reader' and mode "
                             "'lossy' or 'reliable'") from None
        o = L.BcastOpts()
        o.mode = m
        if cap is not None:
            o.cap = cint(cap, "cap")
        if max_record is not None:
            o.max_record = cint(max_record, "max_record")
        o.type_id = cint(type_id, "type_id")
        if max_readers is not None:
            o.max_readers = cint(max_readers, "max_readers", 0, U32_MAX)
        # infinity: INT64_MAX, the C "never test" (it rejects -1)
        o.reader_timeout_ns = rt = timeout_field(reader_timeout,
                                                 "reader_timeout", I64_MAX)
        # A reliable writer detaches a dead reader after reader_timeout of
        # one call's waiting: slices must be longer than that (default
        # 0.1 s; a reader never detached needs no particular slice).  At
        # most I64_MAX ns: the slice is a C timeout_ns.
        if rt == I64_MAX:
            self._slice = SLICE
        else:
            self._slice = max(SLICE, min(2 * (rt or 100000000), I64_MAX)
                              / 1e9)
        self._open(seg, name, lib.shk_bcast_open, flags_of(create, excl),
                   self.role, ctypes.byref(o), context="bcast %r" % (name,))
        st = self.stat()
        self.mode = "lossy" if st.mode == LOSSY else "reliable"
        self.cap = st.cap
        self.max_record = st.max_record
        self._buf = None
        self._lost = ctypes.c_uint64()

    @inflight
    def stat(self):
        """A snapshot (BcastStats)."""
        st = L.BcastStats()
        check(lib.shk_bcast_stat(self._handle(), ctypes.byref(st)), "stat")
        return BcastStats(**st.to_dict())

    @inflight
    def fileno(self):
        """(Reader) a descriptor that polls readable when records may be
        new; read with timeout=0 when it is."""
        return check(lib.shk_bcast_fd(self._handle()), "bcast fd")

    @inflight
    def write(self, data, timeout=None):
        """(Writer) publish one record to every reader."""
        ptr, n = cbuf(data)
        timed("bcast write", lib.shk_bcast_write, self._handle(), ptr, n,
              timeout=timeout, owner=self, slice_s=self._slice)

    @inflight
    def read(self, timeout=None):
        """(Reader) the next record: (bytes, lost), lost being how many
        records this reader missed just before it (lossy mode)."""
        if self._buf is None:
            self._buf = ctypes.create_string_buffer(max(1, self.max_record))
        n = timed("bcast read", lib.shk_bcast_read, self._handle(), self._buf,
                  len(self._buf), ctypes.byref(self._lost), timeout=timeout,
                  owner=self)
        return ctypes.string_at(self._buf, n), self._lost.value
