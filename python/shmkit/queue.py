"""Bounded MPMC queues and lock-free stacks of fixed-size elements."""

import ctypes

import numpy as np

from . import _lib as L
from ._base import U32_MAX, Handle, _or0, cbuf, cint, flags_of, \
    inflight, record_type, timed
from ._lib import lib
from .errors import check

__all__ = ["Queue", "Stack", "QueueStats", "StackStats"]

QueueStats = record_type("QueueStats", L.QueueStats)
StackStats = record_type("StackStats", L.StackStats)


class _Elems(Handle):
    """Shared by Queue and Stack: elements are bytes of elem_len, or, with
    a dtype, NumPy scalars/records of that dtype (dtype.itemsize bytes)."""

    def _setup(self, elem_len, dtype, type_id):
        if dtype is not None:
            from .array import storable
            dtype = storable(dtype)  # TypeError when it holds objects
            if elem_len is not None and elem_len != dtype.itemsize:
                raise ValueError("elem_len %d differs from dtype size %d"
                                 % (elem_len, dtype.itemsize))
            elem_len = dtype.itemsize
            if type_id is None:
                from .array import dtype_type_id
                type_id = dtype_type_id(dtype)
        self.dtype = dtype
        return (cint(_or0(elem_len), "elem_len", 0, U32_MAX),
                cint(_or0(type_id), "type_id"))

    def _elem_in(self, item):
        if self.dtype is not None and not isinstance(
                item, (bytes, bytearray, memoryview)):
            item = np.asarray(item, dtype=self.dtype)
            if item.shape != ():
                raise ValueError("one element of dtype %s expected"
                                 % self.dtype)
            return item.tobytes()
        ptr, _ = cbuf(item, self.elem_len, "element")
        return ptr

    def _elem_out(self, out):
        if self.dtype is not None:
            return np.frombuffer(out, dtype=self.dtype)[0].copy()
        return out.raw

    def _alloc_out(self):
        # the type of pop's out-buffer: a new one per call, since threads
        # may share the handle (the C calls are thread-safe) and one
        # buffer would hand a thread the element another one popped
        self._out_t = ctypes.c_char * self.elem_len


class Queue(_Elems):
    """A bounded MPMC FIFO (shk_queue_open).

    Queue(seg, name, elem_len=None, cap=None, create=False, excl=False,
          dtype=None, type_id=None)

    push(item, timeout=None): item is exactly elem_len bytes, or with a
    dtype anything np.asarray turns into one element of it.  pop(timeout)
    returns bytes, or a NumPy scalar/record with a dtype.  Timeouts in
    seconds: None forever, 0 try (WouldBlock), else Timeout.
    """

    _close_fn = "shk_queue_close"
    kind = "queue"

    def __init__(self, seg, name, elem_len=None, cap=None, create=False,
                 excl=False, dtype=None, type_id=None):
        elem_len, type_id = self._setup(elem_len, dtype, type_id)
        o = L.QueueOpts()
        o.elem_len = elem_len
        o.cap = cint(_or0(cap), "cap")
        o.type_id = type_id
        self._open(seg, name, lib.shk_queue_open, flags_of(create, excl),
                   ctypes.byref(o), context="queue %r" % (name,))
        st = self.info()
        self.elem_len, self.cap = st.elem_len, st.cap
        self._alloc_out()

    @inflight
    def info(self):
        """QueueStats: len, lost, waiters, ..."""
        st = L.QueueStats()
        check(lib.shk_queue_info(self._handle(), ctypes.byref(st)), "info")
        return QueueStats(**st.to_dict())

    def __len__(self):
        return self.info().len

    @inflight
    def push(self, item, timeout=None):
        timed("queue push", lib.shk_queue_push, self._handle(),
              self._elem_in(item), timeout=timeout, owner=self)

    put = push

    @inflight
    def pop(self, timeout=None):
        out = self._out_t()
        timed("queue pop", lib.shk_queue_pop,
              self._handle(), out, timeout=timeout, owner=self)
        return self._elem_out(out)

    get = pop

    @inflight
    def fileno(self):
        """A descriptor that polls readable when pop may succeed; then pop
        with timeout=0 until WouldBlock."""
        return check(lib.shk_queue_fd(self._handle()), "queue fd")


class Stack(_Elems):
    """A bounded lock-free LIFO (shk_stack_open); as Queue, without fd."""

    _close_fn = "shk_stack_close"
    kind = "stack"

    def __init__(self, seg, name, elem_len=None, cap=None, create=False,
                 excl=False, dtype=None, type_id=None):
        elem_len, type_id = self._setup(elem_len, dtype, type_id)
        o = L.StackOpts()
        o.elem_len = elem_len
        o.cap = cint(_or0(cap), "cap")
        o.type_id = type_id
        self._open(seg, name, lib.shk_stack_open, flags_of(create, excl),
                   ctypes.byref(o), context="stack %r" % (name,))
        st = self.info()
        self.elem_len, self.cap = st.elem_len, st.cap
        self._alloc_out()

    @inflight
    def info(self):
        st = L.StackStats()
        check(lib.shk_stack_info(self._handle(), ctypes.byref(st)), "info")
        return StackStats(**st.to_dict())

    def __len__(self):
        return self.info().depth

    @inflight
    def push(self, item, timeout=None):
        timed("stack push", lib.shk_stack_push, self._handle(),
              self._elem_in(item), timeout=timeout, owner=self)

    @inflight
    def pop(self, timeout=None):
        out = self._out_t()
        timed("stack pop", lib.shk_stack_pop,
              self._handle(), out, timeout=timeout, owner=self)
        return self._elem_out(out)
