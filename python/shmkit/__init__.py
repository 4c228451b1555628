"""shmkit: Python binding (ctypes) of libshmkit, shared-memory IPC.

    import shmkit
    with shmkit.Segment("demo", create=True, size=1 << 20) as seg:
        a = seg.array("counts", dtype="u8", length=1024, create=True)
        a.numpy()[:] = 7             # writes the shared memory itself
        with seg.ring("events", "producer", create=True) as r:
            r.write(b"hello")

The library is found through SHK_LIB (a path), else the repository's
build/release/lib/libshmkit.so, else the dynamic linker
(ctypes.util.find_library("shmkit")).  Errors raise ShkError subclasses
(shmkit.Timeout, shmkit.NotFound, shmkit.TypeMismatch, ...).  Timeouts are
seconds: None waits forever, 0 only tries.  docs/python.md has the whole
API.  Modules: segment (Segment, heap, registry), array, ring, bcast,
queue (Queue, Stack), map, pool, sync, chan (Chan, Message: channels
addressed as "shm://SEGMENT/CHANNEL"); one module per kind.
"""

from ._lib import LibraryNotFound, lib, lib_path  # noqa: F401
from . import errors
from .errors import *  # noqa: F401,F403  ShkError, Timeout, NotFound, ...
from .errors import ShkError, errname, strerror  # noqa: F401
from ._base import timeout_ns  # noqa: F401
from .segment import (Segment, open, unlink, SegInfo, AttachInfo,  # noqa
                      ObjInfo, HeapInfo, BACKENDS, KINDS)
from .array import Array, dtype_type_id, type_id_dtype  # noqa: F401
from .ring import Ring, RingStats  # noqa: F401
from .bcast import Bcast, BcastStats  # noqa: F401
from .queue import Queue, Stack, QueueStats, StackStats  # noqa: F401
from .map import Map  # noqa: F401
from .pool import Pool, PoolStats  # noqa: F401
from .sync import Mutex, RWLock, Sem, Event, Barrier, Latch, Cond  # noqa
from .chan import Chan, Message, ChanStats  # noqa: F401

FOREVER = None
TRY = 0


def version():
    """The loaded library's version as (major, minor, patch)."""
    v = lib.shk_version()
    return (v // 10000, v // 100 % 100, v % 100)


__version__ = "%d.%d.%d" % version()
