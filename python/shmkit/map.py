"""Fixed-capacity hash maps (or sets) of fixed-length bytes keys/values."""

import ctypes

from . import _lib as L
from ._base import U32_MAX, Handle, _or0, cbuf, cint, flags_of, inflight
from ._lib import lib
from .errors import NotFound, check

__all__ = ["Map"]

_MISSING = object()


class Map(Handle):
    """A shared hash map (shk_map_open), used like a dict.

    Map(seg, name, key_len=None, val_len=None, cap=None, create=False,
        excl=False, type_id=0)

    Keys are exactly key_len bytes and values val_len bytes (bytes-like;
    anything else is ValueError: pad your keys yourself).  val_len 0 makes
    a set: values are b"".  m[k], m[k] = v, del m[k], k in m, len(m),
    iter(m) (keys), items(), get(k, default), put(k, v) -> True when it
    inserted, False when it replaced.  Full: NoSpace.
    """

    _close_fn = "shk_map_close"
    kind = "map"

    def __init__(self, seg, name, key_len=None, val_len=None, cap=None,
                 create=False, excl=False, type_id=0):
        o = L.MapOpts()
        o.key_len = cint(_or0(key_len), "key_len", 0, U32_MAX)
        o.val_len = cint(_or0(val_len), "val_len", 0, U32_MAX)
        o.cap = cint(_or0(cap), "cap")
        o.type_id = cint(type_id, "type_id")
        if key_len is not None and val_len is None and not create:
            raise ValueError("opening with key_len also needs val_len")
        # Opened without sizes (key_len 0), the handle takes the map's
        # stored ones, and the binding reads them from the handle
        # (shk_map_key_len/val_len): they are the handle's map's, whatever
        # replaced it in the registry meanwhile, so the value buffer fits
        # what shk_map_get copies out.
        h = self._open(seg, name, lib.shk_map_open, flags_of(create, excl),
                       ctypes.byref(o), context="map %r" % (name,))
        try:
            self.cap = lib.shk_map_cap(h)
            self.key_len = lib.shk_map_key_len(h)
            self.val_len = lib.shk_map_val_len(h)
            # get()'s value buffer: a new one per call (threads may share
            # the handle; shk_map_get is thread-safe)
            self._val_t = ctypes.c_char * max(1, self.val_len)
        except BaseException:
            # the C handle is open and listed in seg: nobody else would
            # close it before the segment closes
            self.close()
            raise

    def _key(self, key):
        ptr, _ = cbuf(key, self.key_len, "key")
        return ptr

    @inflight
    def get(self, key, default=None):
        val = self._val_t()
        rc = lib.shk_map_get(self._handle(), self._key(key), val)
        if rc == NotFound.code:
            return default
        check(rc, "map get")
        return val.raw[:self.val_len]

    def __getitem__(self, key):
        v = self.get(key, _MISSING)
        if v is _MISSING:
            raise KeyError(key)
        return v

    @inflight
    def __contains__(self, key):
        rc = lib.shk_map_get(self._handle(), self._key(key), None)
        if rc == NotFound.code:
            return False
        check(rc, "map get")
        return True

    @inflight
    def put(self, key, value=b""):
        """Insert or replace; True when inserted, False when replaced."""
        vp, _ = cbuf(value, self.val_len, "value")
        rc = check(lib.shk_map_put(self._handle(), self._key(key),
                                   vp if self.val_len else None), "map put")
        return rc == 0

    def __setitem__(self, key, value):
        self.put(key, value)

    def add(self, key):
        """Set use: insert key (val_len 0)."""
        return self.put(key, b"")

    @inflight
    def delete(self, key):
        """Remove key (NotFound when missing)."""
        check(lib.shk_map_delete(self._handle(), self._key(key)),
              "map delete")

    @inflight
    def __delitem__(self, key):
        rc = lib.shk_map_delete(self._handle(), self._key(key))
        if rc == NotFound.code:
            raise KeyError(key)
        check(rc, "map delete")

    def pop(self, key, default=_MISSING):
        v = self.get(key, _MISSING)
        if v is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        try:
            self.delete(key)
        except NotFound:
            pass
        return v

    @inflight
    def __len__(self):
        return check(lib.shk_map_count(self._handle()), "map count")

    def items(self):
        """Iterate (key, value); keys not written meanwhile come once."""
        self._handle()
        cur = ctypes.c_uint32(0)
        k = ctypes.create_string_buffer(self.key_len)
        v = ctypes.create_string_buffer(max(1, self.val_len))
        while self._next(cur, k, v):
            yield k.raw, v.raw[:self.val_len]

    @inflight
    def _next(self, cur, k, v):
        return check(lib.shk_map_next(self._handle(), ctypes.byref(cur), k, v),
                     "map next")

    def keys(self):
        return (k for k, _ in self.items())

    __iter__ = keys

    def values(self):
        return (v for _, v in self.items())
