"""Segments, the shared heap and the registry."""

import ctypes
import dataclasses
import os
import weakref

from . import _lib as L
from ._base import Closable, HandleOwner, U32_MAX, cint, cname, \
    flags_of, inflight, record_type, timeout_field, view
from ._lib import lib
from . import errors
from .errors import check

__all__ = ["Segment", "open", "unlink", "SegInfo", "AttachInfo", "ObjInfo",
           "HeapInfo", "BACKENDS", "KINDS"]

BACKENDS = {"posix": 0, "sysv": 1, "file": 2, "memfd": 3}
_BACKEND_NAMES = {v: k for k, v in BACKENDS.items()}

SHK_CREATE, SHK_EXCL, SHK_RDONLY, SHK_ANY_OWNER = 0x1, 0x2, 0x4, 0x8
SHK_FORCE = 0x10  # shk_obj_remove_flags

#: enum shk_kind values by name (the registry's kind names).
KINDS = {"blob": 1, "array": 2, "ring": 3, "queue": 4, "stack": 5,
         "bcast": 6, "map": 7, "pool": 8, "mutex": 16, "rwlock": 17,
         "sem": 18, "barrier": 19, "latch": 20, "event": 21, "cond": 22,
         "once": 23, "chan": 32}

SegInfo = record_type("SegInfo", L.SegStats)
SegInfo.__doc__ = "shk_seg_info's figures; `backend` is a name (\"posix\")."


AttachInfo = record_type("AttachInfo", L.AttachInfo)
AttachInfo.__doc__ = "One attach record (shk_seg_attached)."
HeapInfo = record_type("HeapInfo", L.HeapStats)
HeapInfo.__doc__ = ("shk_heap_info's figures; class_size/class_used are "
                    "lists cut to nclasses.")


@dataclasses.dataclass(frozen=True)
class ObjInfo:
    """A registry entry (shk_obj_info), with its kind's name and, from
    shk_obj_describe, a one-line description of its live state."""
    name: str
    kind: str
    kind_id: int
    type_id: int
    elem_len: int
    align: int
    cap: int
    off: int
    len: int
    created_ns: int
    creator_pid: int
    slot: int
    state: str = ""


def _backend(backend):
    if isinstance(backend, str):
        try:
            return BACKENDS[backend.lower()]
        except KeyError:
            raise ValueError("backend must be one of %s, not %r"
                             % (", ".join(BACKENDS), backend)) from None
    return cint(backend, "backend", 0, U32_MAX)


def _seg_opts(backend="posix", size=None, mode=None, max_objects=None,
              open_timeout=None, sysv_key=None):
    """shk_seg_opts from the keyword arguments, every number range-checked
    (ctypes would wrap it silently): None or 0 is the library's default."""
    o = L.SegOpts()
    o.backend = _backend(backend)
    if size is not None:
        o.len = cint(size, "size")
    if mode is not None:
        # an int only: "0600" as a str would be decimal 600 (0o1130)
        o.mode = cint(mode, "mode", 0, 0o777, oct)
    if max_objects is not None:
        o.max_objects = cint(max_objects, "max_objects", 0, U32_MAX)
    o.open_timeout_ns = timeout_field(open_timeout, "open_timeout")
    if sysv_key is not None:
        # a 32-bit key_t, as ftok() gives it or as ipcs prints it (hex)
        k = cint(sysv_key, "sysv_key", -(1 << 31), U32_MAX)
        o.sysv_key = k - (1 << 32) if k >= 1 << 31 else k
    return o


class _Mapping(HandleOwner):
    """Owns the C segment handle.  Segment holds one reference and every
    memoryview or NumPy array made over the segment's memory holds one, so
    the memory is unmapped (shk_seg_close) only when the Segment is closed
    AND no view of it remains: a view can never point at unmapped memory.
    """

    __slots__ = ()
    _close = "shk_seg_close"


class Segment(Closable):
    """A named shared-memory segment (shk_seg_open).

    Segment(name, create=False, excl=False, size=None, backend="posix",
            mode=None, max_objects=None, open_timeout=None, sysv_key=None,
            readonly=False, any_owner=False)

    name: POSIX-style name ("shk-demo"), a path for backend="file", a label
    for backend="memfd" (which always creates; share it with fileno()).
    size: bytes on create (default 4 MiB).  open_timeout: seconds an opener
    waits for a concurrent creator.  Use as a context manager; close()
    closes every object handle opened from it first.  The mapping itself
    stays until the last memoryview/ndarray over it is gone.
    readonly=True maps it read-only without attaching: inspection, and
    existing blobs as read-only views; creating and opening a structure
    raise NotPermitted.
    An existing segment opens only if this process's effective uid owns
    it (another user's raises AccessDenied, even with create=True and a
    mode that would let us in); any_owner=True (SHK_ANY_OWNER) opens
    another user's on purpose: sharing between users, or inspection.
    """

    def __init__(self, name, create=False, excl=False, size=None,
                 backend="posix", mode=None, max_objects=None,
                 open_timeout=None, sysv_key=None, readonly=False,
                 any_owner=False, _fd=None):
        self._init_guard()
        self._map = None
        self._children = weakref.WeakSet()
        self._sysv_key = sysv_key
        self._opts = _seg_opts(backend, size, mode, max_objects,
                               open_timeout, sysv_key)
        flags = flags_of(create, excl) | (SHK_RDONLY if readonly else 0) \
            | (SHK_ANY_OWNER if any_owner else 0)
        out = ctypes.c_void_p()
        if _fd is None:
            cn = cname(name)  # TypeError unless str, bytes or path-like
            self.name = name if isinstance(name, str) else os.fsdecode(cn)
            rc = lib.shk_seg_open(cn, flags, ctypes.byref(self._opts),
                                  ctypes.byref(out))
            check(rc, "open segment %r" % (self.name,))
        else:
            _fd = cint(_fd, "fd", 0, (1 << 31) - 1)
            rc = lib.shk_seg_open_fd(_fd, flags, ctypes.byref(self._opts),
                                     ctypes.byref(out))
            check(rc, "open segment from fd %d" % _fd)
        self._map = _Mapping(out.value)
        self.readonly = bool(readonly)
        info = self.info()
        self.backend = info.backend
        self.size = info.len
        if _fd is not None:
            self.name = info.name

    @classmethod
    def from_fd(cls, fd, readonly=False, open_timeout=None):
        """Open a segment from a file descriptor (a memfd passed over a Unix
        socket or inherited).  The descriptor is duplicated."""
        return cls(None, readonly=readonly, open_timeout=open_timeout,
                   _fd=fd)

    # ---------------------------------------------------------- basics

    def _handle(self):
        """The C handle, for a call inside an @inflight method."""
        if self._closing:
            raise self._closed_error()
        return self._map.h

    def _closed_error(self):
        return ValueError("segment %r is closed"
                          % (getattr(self, "name", None),))

    def close(self):
        """Close every object handle opened from this segment, then detach.
        Views of its memory keep the mapping until they are gone, and so
        does a handle whose call another thread is still inside (it ends
        with ValueError)."""
        super().close()

    def _closing_now(self):
        for child in list(self._children):
            child.close()

    def _free(self):
        self._map = None  # unmapped once no view or open handle uses it

    @inflight
    def _open_object(self, child, fn, name, flags, *args, context):
        """Open an object with the C shk_*_open fn for the Handle child:
        sets child._h and child._map (which stays mapped for it) and
        registers it, to be closed with the segment."""
        out = ctypes.c_void_p()
        check(fn(self._map.h, cname(name), flags, *args, ctypes.byref(out)),
              context)
        child._h, child._map = out.value, self._map
        child._map.hold()
        self._children.add(child)
        if self._closing:  # closed by another thread meanwhile: it may
            child.close()  # have listed its children before this one
            raise self._closed_error()

    def _refuse_open_child(self, name):
        """Busy when an object handle named `name` opened from this
        Segment is still open: removing the object would free its memory
        under that handle (and a new object could reuse it)."""
        cn = cname(name)
        for child in list(self._children):
            if getattr(child, "_cname", None) == cn:
                raise errors.Busy(context="remove %r: its %s handle is open "
                                  "in this Segment (close it first)"
                                  % (name, child.kind))

    def __repr__(self):
        return "<shmkit.Segment %r %s>" % (
            getattr(self, "name", None),
            "closed" if self.closed else "%s, %d bytes" % (self.backend,
                                                           self.size))

    def unlink(self):
        """Remove this segment's name (the mapping stays until closed).
        It acts on the name, so, unlike the other calls, it also works
        after close() (as multiprocessing.shared_memory's)."""
        unlink(self.name, backend=self.backend, sysv_key=self._sysv_key)

    @inflight
    def fileno(self):
        """The segment's file descriptor (owned by the segment; not SysV)."""
        return check(lib.shk_seg_fd(self._handle()), "segment fd")

    @property
    @inflight
    def base(self):
        """The address where this process mapped the segment."""
        return lib.shk_seg_base(self._handle())

    @inflight
    def prefault(self):
        """Make every page present now (shk_seg_prefault)."""
        check(lib.shk_seg_prefault(self._handle()), "prefault")

    @inflight
    def check(self):
        """Validate the whole segment; raises (Corrupt, ...) on damage."""
        check(lib.shk_seg_check(self._handle()), "check")

    @inflight
    def info(self):
        """Header, attach and heap figures (SegInfo)."""
        st = L.SegStats()
        check(lib.shk_seg_info(self._handle(), ctypes.byref(st)), "info")
        d = st.to_dict()
        d["backend"] = _BACKEND_NAMES.get(d["backend"], d["backend"])
        return SegInfo(**d)

    stat = info

    @inflight
    def attached(self):
        """The attach table: a list of AttachInfo (pid, alive, ...)."""
        cur = ctypes.c_uint32(0)
        out = []
        while True:
            ai = L.AttachInfo()
            rc = check(lib.shk_seg_attached(self._handle(), ctypes.byref(cur),
                                            ctypes.byref(ai)), "attached")
            if rc == 0:
                return out
            out.append(AttachInfo(**ai.to_dict()))

    # ------------------------------------------------------------ heap

    @inflight
    def alloc(self, nbytes):
        """Allocate nbytes from the shared heap; returns the block's offset
        (what travels between processes)."""
        off = ctypes.c_uint64()
        nbytes = cint(nbytes, "nbytes")
        check(lib.shk_alloc(self._handle(), nbytes, ctypes.byref(off)),
              "alloc %d bytes" % nbytes)
        return off.value

    @inflight
    def free(self, off):
        """Return the block at offset off to the heap."""
        off = cint(off, "off")
        check(lib.shk_free(self._handle(), off), "free %#x" % off)

    @inflight
    def buffer(self, off, nbytes, readonly=None):
        """A memoryview of nbytes at offset off (no copy): writable, or
        read-only with readonly=True; the default (None) is read-only on a
        readonly Segment, where readonly=False is NotPermitted (the
        mapping is PROT_READ: a write through it would crash)."""
        off, nbytes = cint(off, "off"), cint(nbytes, "nbytes")
        if off <= 0 or nbytes < 0 or off + nbytes > self.size:
            raise ValueError("offset %d + %d bytes is outside the segment"
                             % (off, nbytes))
        p = lib.shk_ptr(self._handle(), off)
        if readonly is None:
            readonly = self.readonly
        elif not readonly and self.readonly:
            raise errors.NotPermitted(context="buffer: segment %r is mapped"
                                      " read-only" % (self.name,))
        return view(self._map, p, nbytes, readonly)

    ptr = buffer

    @inflight
    def offset(self, buf):
        """The segment offset of a buffer that lies in this segment (e.g. a
        view from buffer() or Array.numpy()); ValueError otherwise."""
        import numpy as np
        addr = np.frombuffer(buf, dtype=np.uint8).ctypes.data
        off = lib.shk_off(self._handle(), addr)
        if off == 0:
            raise ValueError("buffer is not inside this segment")
        return off

    @inflight
    def heap_info(self):
        """Heap figures (HeapInfo)."""
        st = L.HeapStats()
        check(lib.shk_heap_info(self._handle(), ctypes.byref(st)),
              "heap info")
        d = st.to_dict()
        n = d["nclasses"]
        d["class_size"] = d["class_size"][:n]
        d["class_used"] = d["class_used"][:n]
        return HeapInfo(**d)

    # -------------------------------------------------------- registry

    @inflight
    def _objinfo(self, oi, describe=True):
        state = ""
        if describe:
            buf = ctypes.create_string_buffer(256)
            rc = lib.shk_obj_describe(self._handle(), ctypes.byref(oi), buf,
                                      len(buf))
            state = buf.value.decode("utf-8", "replace") if rc >= 0 else \
                "<%s>" % lib.shk_errname(rc).decode()
        return ObjInfo(name=oi.name.decode("utf-8", "replace"),
                       kind=lib.shk_kind_name(oi.kind).decode(),
                       kind_id=oi.kind, type_id=oi.type_id,
                       elem_len=oi.elem_len, align=oi.align, cap=oi.cap,
                       off=oi.off, len=oi.len, created_ns=oi.created_ns,
                       creator_pid=oi.creator_pid, slot=oi.slot, state=state)

    def objects(self, describe=True):
        """Iterate the registry: ObjInfo per object (with `state`)."""
        cur = ctypes.c_uint32(0)
        while True:
            o = self._next_object(cur, describe)
            if o is None:
                return
            yield o

    @inflight
    def _next_object(self, cur, describe):
        oi = L.ObjInfo()
        rc = lib.shk_obj_next(self._handle(), ctypes.byref(cur),
                              ctypes.byref(oi))
        if rc == errors.SHK_ECORRUPT:
            # a damaged entry: listed, with its raw fields, and the
            # iteration goes on (as `shmkit info` does)
            return dataclasses.replace(self._objinfo(oi, False),
                                       state="<SHK_ECORRUPT>")
        check(rc, "objects")
        return self._objinfo(oi, describe) if rc else None

    __iter__ = objects

    def names(self):
        """Names of the objects in the registry."""
        return [o.name for o in self.objects(describe=False)]

    @inflight
    def stat(self, name):
        """ObjInfo of the object `name` (NotFound when missing)."""
        oi = L.ObjInfo()
        check(lib.shk_obj_stat(self._handle(), cname(name), ctypes.byref(oi)),
              "stat %r" % (name,))
        return self._objinfo(oi)

    obj_info = stat

    @inflight
    def __contains__(self, name):
        oi = L.ObjInfo()
        return lib.shk_obj_stat(self._handle(), cname(name),
                                ctypes.byref(oi)) == 0

    @inflight
    def remove(self, name, force=False):
        """Delete the object `name` and return its memory to the heap.
        Busy while a handle of it opened from this Segment is open (close
        it first), and when it records a live party (a ring's producer or
        consumer, a bcast's writer or a reader, a channel's open ends, a
        mutex's holder, a sleeper, ...: docs/registry.md); force=True
        removes it anyway (SHK_FORCE), and the handles on it become
        invalid.  Kinds that record no parties (blob, array, map, pool, an
        open queue) opened in other Segments or processes are not seen:
        remove those only when nobody uses them."""
        if not force:
            self._refuse_open_child(name)
        check(lib.shk_obj_remove_flags(self._handle(), cname(name),
                                       SHK_FORCE if force else 0),
              "remove %r" % (name,))

    @inflight
    def blob(self, name, size=None, create=False, excl=False, type_id=0):
        """A raw SHK_KIND_BLOB object as a memoryview (no copy): writable,
        or read-only on a readonly Segment, which can open an existing blob
        but not create one (NotPermitted).  size (bytes) is required to
        create."""
        d = L.ObjDesc()
        d.kind = KINDS["blob"]
        d.type_id = cint(type_id, "type_id")
        if size is not None:
            d.elem_len = 1
            d.cap = cint(size, "size")
        oi = L.ObjInfo()
        ptr = ctypes.c_void_p()
        check(lib.shk_obj_open(self._handle(), cname(name),
                               flags_of(create, excl), ctypes.byref(d),
                               ctypes.byref(oi), ctypes.byref(ptr)),
              "blob %r" % (name,))
        # elem_len * cap is the size asked for at creation; never more
        # than the block (len), whatever a damaged entry says
        return view(self._map, ptr.value, min(oi.elem_len * oi.cap, oi.len),
                    self.readonly)

    # ------------------------------------------------ object factories

    def array(self, name, *args, **kw):
        from .array import Array
        return Array(self, name, *args, **kw)

    def ring(self, name, *args, **kw):
        from .ring import Ring
        return Ring(self, name, *args, **kw)

    def bcast(self, name, *args, **kw):
        from .bcast import Bcast
        return Bcast(self, name, *args, **kw)

    def queue(self, name, *args, **kw):
        from .queue import Queue
        return Queue(self, name, *args, **kw)

    def stack(self, name, *args, **kw):
        from .queue import Stack
        return Stack(self, name, *args, **kw)

    def map(self, name, *args, **kw):
        from .map import Map
        return Map(self, name, *args, **kw)

    def pool(self, name, *args, **kw):
        from .pool import Pool
        return Pool(self, name, *args, **kw)

    def mutex(self, name, *args, **kw):
        from .sync import Mutex
        return Mutex(self, name, *args, **kw)

    def rwlock(self, name, *args, **kw):
        from .sync import RWLock
        return RWLock(self, name, *args, **kw)

    def sem(self, name, *args, **kw):
        from .sync import Sem
        return Sem(self, name, *args, **kw)

    def event(self, name, *args, **kw):
        from .sync import Event
        return Event(self, name, *args, **kw)

    def barrier(self, name, *args, **kw):
        from .sync import Barrier
        return Barrier(self, name, *args, **kw)

    def latch(self, name, *args, **kw):
        from .sync import Latch
        return Latch(self, name, *args, **kw)

    def cond(self, name, *args, **kw):
        from .sync import Cond
        return Cond(self, name, *args, **kw)


def open(name, create=False, excl=False, **kw):  # noqa: A001 (as io.open)
    """shmkit.open(name, ...) is Segment(name, ...)."""
    return Segment(name, create=create, excl=excl, **kw)


def unlink(name, backend="posix", sysv_key=None, missing_ok=False):
    """Remove a segment's name (shk_seg_unlink).  NotFound when missing,
    unless missing_ok."""
    o = _seg_opts(backend, sysv_key=sysv_key)
    rc = lib.shk_seg_unlink(cname(name), ctypes.byref(o))
    if rc == -2 and missing_ok:
        return
    check(rc, "unlink %r" % (name,))
