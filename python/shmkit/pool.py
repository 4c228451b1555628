"""Pools of fixed-size blocks (the basis of zero-copy loans)."""

import ctypes

from . import _lib as L
from ._base import Handle, _or0, cint, flags_of, inflight, record_type, \
    view
from ._lib import lib
from .errors import check

__all__ = ["Pool", "PoolStats"]

PoolStats = record_type("PoolStats", L.PoolStats)


class Pool(Handle):
    """A pool of fixed-size blocks (shk_pool_open).

    Pool(seg, name, block_len=None, cap=None, create=False, excl=False,
         type_id=0)

    alloc() -> offset (valid in every process; NoMemory when all are in
    use); buffer(off) -> writable memoryview of the block (no copy);
    free(off).  Offsets are what you send to another process.
    """

    _close_fn = "shk_pool_close"
    kind = "pool"

    def __init__(self, seg, name, block_len=None, cap=None, create=False,
                 excl=False, type_id=0):
        o = L.PoolOpts()
        o.block_len = cint(_or0(block_len), "block_len")
        o.cap = cint(_or0(cap), "cap")
        o.type_id = cint(type_id, "type_id")
        self._open(seg, name, lib.shk_pool_open, flags_of(create, excl),
                   ctypes.byref(o), context="pool %r" % (name,))
        st = self.info()
        self.block_len, self.cap = st.block_len, st.cap

    @inflight
    def info(self):
        st = L.PoolStats()
        check(lib.shk_pool_info(self._handle(), ctypes.byref(st)), "info")
        return PoolStats(**st.to_dict())

    @inflight
    def alloc(self):
        """Take a free block; returns its offset."""
        off = ctypes.c_uint64()
        check(lib.shk_pool_alloc(self._handle(), ctypes.byref(off), None),
              "pool alloc")
        return off.value

    @inflight
    def free(self, off):
        check(lib.shk_pool_free(self._handle(), cint(off, "off")),
              "pool free")

    @inflight
    def buffer(self, off):
        """The block at off as a writable memoryview (block_len bytes)."""
        p = lib.shk_pool_ptr(self._handle(), cint(off, "off"))
        if not p:
            from .errors import InvalidArgument
            raise InvalidArgument(context="offset %#x is not a block of "
                                  "pool %r" % (off, self.name))
        return view(self._map, p, self.block_len, self.segment.readonly)
