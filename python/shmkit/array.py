"""Typed fixed-length arrays viewed as NumPy arrays, without copies.

Type id convention (so C and Python agree on what an array holds): for a
NumPy dtype without fields,

    type_id = 0x4E50 << 48 | ord(dtype.kind) << 40 | dtype.itemsize

("NP", then the kind letter: 'u' unsigned, 'i' signed, 'f' float, 'c'
complex, 'b' bool, 'S' bytes, 'V' raw), e.g. uint32 -> 0x4E50750000000004
and float64 -> 0x4E50660000000008.  A structured dtype (with fields) uses
kind 'V' and, in the low 32 bits, zlib.crc32 of str(dtype.descr).  A C
program computes the same with SHK_NP_TYPE(kind, size) (see
docs/python.md).  Pass type_id= to use your own tag instead.  Only
native-byte-order dtypes have a tag (with your own type_id another byte
order is stored, but the atomics refuse it), and a dtype that holds Python
objects is TypeError everywhere, type_id= or not: a pointer into one
process means nothing in shared memory.
"""

import ctypes
import zlib

import numpy as np

from . import _lib as L
from ._base import U64_MAX, Handle, cint, flags_of, inflight, view
from ._lib import lib
from .errors import check

__all__ = ["Array", "dtype_type_id", "type_id_dtype"]

NP_TAG = 0x4E50 << 48


def storable(dtype):
    """np.dtype(dtype), or TypeError when it holds Python objects (dtype
    object, or a structured dtype with such a field): every array, queue
    and stack dtype goes through here, whatever the type_id."""
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise TypeError("dtype %s holds Python objects: they cannot live in "
                        "shared memory" % (dt,))
    return dt


def dtype_type_id(dtype):
    """The type id convention's tag for a NumPy dtype."""
    dt = storable(dtype)
    if not dt.isnative:
        raise ValueError("dtype %s is not in native byte order" % dt)
    if dt.fields is not None:
        return NP_TAG | ord("V") << 40 | zlib.crc32(str(dt.descr).encode())
    if dt.subdtype is not None:
        raise ValueError("dtype %s cannot live in shared memory" % dt)
    return NP_TAG | ord(dt.kind) << 40 | dt.itemsize


def type_id_dtype(type_id, elem_len):
    """The dtype a type id of the convention names (raw bytes 'V<n>' when
    it is not one, or is a structured one whose layout is unknown)."""
    if type_id >> 48 == 0x4E50:
        kind = chr(type_id >> 40 & 0xFF)
        size = type_id & 0xFFFFFFFF
        if kind in "uifcbS" and size == elem_len:
            try:
                dt = np.dtype("%s%d" % (kind, size)) if kind != "b" \
                    else np.dtype(bool)
                if dt.itemsize == elem_len:
                    return dt
            except TypeError:
                pass
    return np.dtype("V%d" % elem_len)


class Array(Handle):
    """A typed array in a segment (shk_array_open).

    Array(seg, name, dtype=None, length=None, create=False, excl=False,
          type_id=None)

    To create, give dtype and length.  To open, dtype may be left out: it
    is then taken from the stored type id (the convention above) or raw
    bytes.  type_id overrides the dtype's conventional tag (C programs with
    their own tags).  .numpy() is an ndarray over the shared memory itself.
    """

    _close_fn = "shk_array_close"
    kind = "array"

    def __init__(self, seg, name, dtype=None, length=None, create=False,
                 excl=False, type_id=None):
        o = L.ArrayOpts()
        if dtype is None and not create:
            info = seg.stat(name)
            if info.kind != "array":
                from .errors import TypeMismatch
                raise TypeMismatch(context="%r is a %s, not an array"
                                   % (name, info.kind))
            if type_id is None:
                type_id = info.type_id
            dt = type_id_dtype(type_id, info.elem_len)
        else:
            if dtype is None:
                raise ValueError("creating an array needs a dtype")
            dt = storable(dtype)
            if type_id is None:
                type_id = dtype_type_id(dt)
        o.elem_len = dt.itemsize
        o.type_id = type_id = cint(type_id, "type_id")
        if length is not None:
            o.len = cint(length, "length")
        h = self._open(seg, name, lib.shk_array_open, flags_of(create, excl),
                       ctypes.byref(o), context="array %r" % (name,))
        self.dtype = dt
        self.type_id = type_id
        self.length = lib.shk_array_len(h)
        self.elem_len = lib.shk_array_elem_len(h)
        if self.elem_len != dt.itemsize:
            self.dtype = np.dtype("V%d" % self.elem_len)
        self._signed = self.dtype.kind == "i"
        self._ops = None  # the atomics' C functions, when they apply
        # native byte order only: C reads and writes the element as a
        # native integer, NumPy would see other bytes through numpy()
        if self.elem_len in (4, 8) and self.dtype.kind in "uiV" and \
                self.dtype.isnative:
            w = "u32" if self.elem_len == 4 else "u64"
            self._ops = {op: getattr(lib, "shk_array_%s_%s" % (op, w))
                         for op in ("load", "store", "fetch_add", "cas")}
            self._ctype = ctypes.c_uint32 if w == "u32" else ctypes.c_uint64
            bits = 8 * self.elem_len
            self._mask = (1 << bits) - 1
            half = 1 << (bits - 1)
            # element values (the dtype's range; raw elements unsigned),
            # and deltas (any value of the width, signed or not)
            self._values = (-half, half - 1) if self._signed else \
                (0, self._mask)
            self._deltas = (-half, self._mask)

    def __len__(self):
        self._handle()  # ValueError once closed, as every call
        return self.length

    @property
    @inflight
    def address(self):
        """Address of element 0 in this process (shk_array_data)."""
        return lib.shk_array_data(self._handle())

    @inflight
    def buffer(self):
        """A writable memoryview of the elements' bytes (no copy)."""
        return view(self._map, lib.shk_array_data(self._handle()),
                    self.length * self.elem_len, self.segment.readonly)

    def numpy(self, shape=None):
        """An ndarray that IS the shared memory (no copy): writes through it
        are seen by every process at once (order them with the atomics or
        your own protocol).  It stays valid after close(): it keeps the
        segment mapped until it is gone.  shape reshapes (same count)."""
        a = np.frombuffer(self.buffer(), dtype=self.dtype, count=self.length)
        if shape is not None:
            a = a.reshape(shape)
        return a

    def __array__(self, dtype=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    # ---------------------------------------------------------- atomics

    def _fn(self, op):
        ops = self._ops
        if ops is None:
            from .errors import TypeMismatch
            raise TypeMismatch(context="atomics need 4- or 8-byte integer "
                               "elements (or raw V4/V8) in native byte "
                               "order, this array has %s" % self.dtype)
        return ops[op], self._ctype

    def _idx(self, i):
        if type(i) is int and 0 <= i < self.length:
            return i  # the common case, without a call
        i = cint(i, "index", -U64_MAX, U64_MAX)
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError("index %d out of range for length %d"
                             % (i, self.length))
        return i

    def _to_c(self, v, what, limits):
        """v, within limits (_values or _deltas), as the unsigned bits C
        takes."""
        lo, hi = limits
        if type(v) is not int or not lo <= v <= hi:
            v = cint(v, what, lo, hi)
        return v & self._mask

    def _from_c(self, v):
        if self._signed and v >> (8 * self.elem_len - 1):
            return v - (1 << (8 * self.elem_len))
        return v

    @inflight
    def load(self, i):
        """Atomic load (acquire) of element i (4- or 8-byte elements)."""
        fn, t = self._fn("load")
        out = t()
        check(fn(self._handle(), self._idx(i), ctypes.byref(out)), "load")
        return self._from_c(out.value)

    @inflight
    def store(self, i, value):
        """Atomic store (release) of element i."""
        fn, _ = self._fn("store")
        check(fn(self._handle(), self._idx(i),
                 self._to_c(value, "value", self._values)), "store")

    @inflight
    def fetch_add(self, i, delta=1):
        """Atomically add delta (wrapping; negative subtracts); returns the
        previous value.  seq_cst."""
        fn, t = self._fn("fetch_add")
        old = t()
        check(fn(self._handle(), self._idx(i),
                 self._to_c(delta, "delta", self._deltas), ctypes.byref(old)),
              "fetch_add")
        return self._from_c(old.value)

    @inflight
    def cas(self, i, expected, desired):
        """Strong compare-and-swap of element i: returns (swapped, value),
        value being `expected` when it swapped, else the current value."""
        fn, t = self._fn("cas")
        exp = t(self._to_c(expected, "expected", self._values))
        rc = check(fn(self._handle(), self._idx(i), ctypes.byref(exp),
                      self._to_c(desired, "desired", self._values)), "cas")
        return bool(rc), self._from_c(exp.value)
