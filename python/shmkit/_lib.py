"""Loading libshmkit.so and declaring its C interface (ctypes).

Only what include/shmkit.h declares is used.  Every function the binding
calls is declared here with its argtypes and restype, and every struct the
binding passes mirrors the header's with fixed-width fields (a test compares
sizes and offsets with what a C program compiled against the header sees).
"""

import ctypes
import ctypes.util
import os

__all__ = ["lib", "lib_path", "LibraryNotFound"]


class LibraryNotFound(ImportError):
    """libshmkit.so could not be found or loaded."""


def _candidates():
    env = os.environ.get("SHK_LIB")
    if env:
        # An explicit choice: use it or fail, never fall back silently.
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", ".."))
    paths = [os.path.join(repo, "build", "release", "lib", "libshmkit.so")]
    found = ctypes.util.find_library("shmkit")
    if found:
        paths.append(found)
    return paths, False


def _load():
    paths, explicit = _candidates()
    errors = []
    for p in paths:
        if explicit or os.path.sep not in p or os.path.exists(p):
            try:
                return ctypes.CDLL(p, use_errno=False), p
            except OSError as e:
                errors.append("%s: %s" % (p, e))
                if explicit:
                    break
        else:
            errors.append("%s: not there" % p)
    raise LibraryNotFound(
        "shmkit: cannot load libshmkit.so (set SHK_LIB to its path, or build "
        "it with `make` so build/release/lib/libshmkit.so exists, or install "
        "it where the dynamic linker finds it); tried: " + "; ".join(errors))


lib, lib_path = _load()

# ---------------------------------------------------------------- types

c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_size_t = ctypes.c_size_t
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64
i32 = ctypes.c_int32
i64 = ctypes.c_int64
P = ctypes.POINTER


class _Struct(ctypes.Structure):
    """A header struct whose first field is its own size."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.size = ctypes.sizeof(self)

    def to_dict(self):
        out = {}
        for f in self._fields_:
            name = f[0]
            if name in ("size", "reserved"):
                continue
            v = getattr(self, name)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif isinstance(v, ctypes.Array):
                v = list(v)
            out[name] = v
        return out


class SegOpts(_Struct):
    _fields_ = [("size", u32), ("mode", u32), ("backend", u32),
                ("max_objects", u32), ("len", u64), ("open_timeout_ns", i64),
                ("sysv_key", i32), ("reserved", u32)]


class SegStats(_Struct):
    _fields_ = [("size", u32), ("version", u32), ("backend", u32),
                ("mode", u32), ("len", u64), ("created_ns", u64),
                ("creator_pid", u32), ("creator_uid", u32),
                ("nobjects", u32), ("max_objects", u32), ("attached", u32),
                ("attached_alive", u32), ("heap_len", u64),
                ("heap_used", u64), ("heap_free", u64),
                ("heap_high_water", u64), ("name", ctypes.c_char * 64),
                ("owner_uid", u32), ("owner_gid", u32), ("create_mode", u32),
                ("reserved", u32)]


class AttachInfo(_Struct):
    _fields_ = [("size", u32), ("slot", u32), ("pid", u32), ("alive", u32),
                ("start_ticks", u64), ("generation", u32), ("flags", u32)]


HEAP_NCLASSES = 64


class HeapStats(_Struct):
    _fields_ = [("size", u32), ("nclasses", u32), ("heap_len", u64),
                ("used", u64), ("free", u64), ("high_water", u64),
                ("nallocs", u64), ("class_size", u64 * HEAP_NCLASSES),
                ("class_used", u64 * HEAP_NCLASSES)]


class ObjDesc(_Struct):
    _fields_ = [("size", u32), ("kind", u32), ("type_id", u64),
                ("elem_len", u64), ("align", u64), ("cap", u64)]


class ObjInfo(_Struct):
    _fields_ = [("size", u32), ("kind", u32), ("type_id", u64),
                ("elem_len", u64), ("align", u64), ("cap", u64),
                ("off", u64), ("len", u64), ("created_ns", u64),
                ("creator_pid", u32), ("slot", u32),
                ("name", ctypes.c_char * 64)]


class ArrayOpts(_Struct):
    _fields_ = [("size", u32), ("elem_len", u32), ("len", u64),
                ("type_id", u64)]


class MapOpts(_Struct):
    _fields_ = [("size", u32), ("key_len", u32), ("val_len", u32),
                ("reserved", u32), ("cap", u64), ("type_id", u64)]


class RingOpts(_Struct):
    _fields_ = [("size", u32), ("flags", u32), ("cap", u64),
                ("max_record", u64), ("type_id", u64)]


class RingStats(_Struct):
    _fields_ = [("size", u32), ("max_record", u32), ("cap", u64),
                ("head", u64), ("tail", u64), ("fill", u64),
                ("producer", u32), ("consumer", u32), ("waiters", u32),
                ("reserved", u32)]


class BcastOpts(_Struct):
    _fields_ = [("size", u32), ("mode", u32), ("cap", u64),
                ("max_record", u64), ("type_id", u64), ("max_readers", u32),
                ("reserved", u32), ("reader_timeout_ns", i64)]


class BcastStats(_Struct):
    _fields_ = [("size", u32), ("max_record", u32), ("cap", u64),
                ("mode", u32), ("max_readers", u32), ("tail", u64),
                ("next_seq", u64), ("readers", u32), ("writer", u32),
                ("min_cursor", u64)]


class QueueOpts(_Struct):
    _fields_ = [("size", u32), ("elem_len", u32), ("cap", u64),
                ("type_id", u64)]


class QueueStats(_Struct):
    _fields_ = [("size", u32), ("elem_len", u32), ("cap", u64),
                ("len", u64), ("lost", u64), ("type_id", u64),
                ("pop_waiters", u32), ("push_waiters", u32)]


class PoolOpts(_Struct):
    _fields_ = [("size", u32), ("reserved", u32), ("block_len", u64),
                ("cap", u64), ("type_id", u64)]


class PoolStats(_Struct):
    _fields_ = [("size", u32), ("reserved", u32), ("block_len", u64),
                ("cap", u64), ("in_use", u64), ("type_id", u64)]


class StackOpts(_Struct):
    _fields_ = [("size", u32), ("elem_len", u32), ("cap", u64),
                ("type_id", u64)]


class StackStats(_Struct):
    _fields_ = [("size", u32), ("elem_len", u32), ("cap", u64),
                ("depth", u64), ("type_id", u64)]


class SyncOpts(_Struct):
    _fields_ = [("size", u32), ("flags", u32), ("count", u64), ("max", u64)]


class ChanOpts(_Struct):
    _fields_ = [("size", u32), ("mode", u32), ("seg_size", u64),
                ("cap", u64), ("max_msg", u64), ("inline_max", u64),
                ("type_id", u64), ("max_subs", u32), ("flags", u32),
                ("seg_mode", u32), ("reserved", u32)]


class ChanStats(_Struct):
    _fields_ = [("size", u32), ("pattern", u32), ("role", u32),
                ("mode", u32), ("cap", u64), ("max_msg", u64),
                ("inline_max", u64), ("sent", u64), ("received", u64),
                ("lost", u64), ("corrupt", u64), ("outstanding", u64),
                ("fill", u64)]


# Every struct mirrored from the header, by its C name (the layout test
# walks this table).
STRUCTS = {
    "shk_seg_opts": SegOpts, "shk_seg_stats": SegStats,
    "shk_attach_info": AttachInfo, "shk_heap_stats": HeapStats,
    "shk_obj_desc": ObjDesc, "shk_obj_info": ObjInfo,
    "shk_array_opts": ArrayOpts, "shk_map_opts": MapOpts,
    "shk_ring_opts": RingOpts, "shk_ring_stats": RingStats,
    "shk_bcast_opts": BcastOpts, "shk_bcast_stats": BcastStats,
    "shk_queue_opts": QueueOpts, "shk_queue_stats": QueueStats,
    "shk_pool_opts": PoolOpts, "shk_pool_stats": PoolStats,
    "shk_stack_opts": StackOpts, "shk_stack_stats": StackStats,
    "shk_sync_opts": SyncOpts,
    "shk_chan_opts": ChanOpts, "shk_chan_stats": ChanStats,
}

# ------------------------------------------------------------ functions

H = c_void_p  # every opaque handle


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_fn("shk_version", c_int)
_fn("shk_interruptible", c_int, c_int)
_fn("shk_strerror", c_char_p, c_int)
_fn("shk_errname", c_char_p, c_int)
_fn("shk_kind_name", c_char_p, u32)

# segments
_fn("shk_seg_open", c_int, c_char_p, c_uint, P(SegOpts), P(H))
_fn("shk_seg_open_fd", c_int, c_int, c_uint, P(SegOpts), P(H))
_fn("shk_seg_close", None, H)
_fn("shk_seg_unlink", c_int, c_char_p, P(SegOpts))
_fn("shk_seg_fd", c_int, H)
_fn("shk_seg_base", c_void_p, H)
_fn("shk_seg_prefault", c_int, H)
_fn("shk_seg_info", c_int, H, P(SegStats))
_fn("shk_seg_check", c_int, H)
_fn("shk_seg_attached", c_int, H, P(u32), P(AttachInfo))

# heap
_fn("shk_alloc", c_int, H, c_size_t, P(u64))
_fn("shk_free", c_int, H, u64)
_fn("shk_ptr", c_void_p, H, u64)
_fn("shk_off", u64, H, c_void_p)
_fn("shk_heap_info", c_int, H, P(HeapStats))

# registry
_fn("shk_obj_open", c_int, H, c_char_p, c_uint, P(ObjDesc), P(ObjInfo),
    P(c_void_p))
_fn("shk_obj_stat", c_int, H, c_char_p, P(ObjInfo))
_fn("shk_obj_next", c_int, H, P(u32), P(ObjInfo))
_fn("shk_obj_remove", c_int, H, c_char_p)
_fn("shk_obj_remove_flags", c_int, H, c_char_p, c_uint)
_fn("shk_obj_describe", c_int, H, P(ObjInfo), c_char_p, c_size_t)

# array
_fn("shk_array_open", c_int, H, c_char_p, c_uint, P(ArrayOpts), P(H))
_fn("shk_array_close", None, H)
_fn("shk_array_data", c_void_p, H)
_fn("shk_array_len", u64, H)
_fn("shk_array_elem_len", u32, H)
for _w, _t in (("u32", u32), ("u64", u64)):
    _fn("shk_array_load_" + _w, c_int, H, u64, P(_t))
    _fn("shk_array_store_" + _w, c_int, H, u64, _t)
    _fn("shk_array_fetch_add_" + _w, c_int, H, u64, _t, P(_t))
    _fn("shk_array_cas_" + _w, c_int, H, u64, P(_t), _t)

# map
_fn("shk_map_open", c_int, H, c_char_p, c_uint, P(MapOpts), P(H))
_fn("shk_map_close", None, H)
_fn("shk_map_get", c_int, H, c_void_p, c_void_p)
_fn("shk_map_put", c_int, H, c_void_p, c_void_p)
_fn("shk_map_delete", c_int, H, c_void_p)
_fn("shk_map_next", c_int, H, P(u32), c_void_p, c_void_p)
_fn("shk_map_count", c_int, H)
_fn("shk_map_cap", u64, H)
_fn("shk_map_key_len", u32, H)
_fn("shk_map_val_len", u32, H)

# ring
_fn("shk_ring_open", c_int, H, c_char_p, c_uint, c_int, P(RingOpts), P(H))
_fn("shk_ring_reserve", c_int, H, c_size_t, P(c_void_p), i64)
_fn("shk_ring_commit", c_int, H)
_fn("shk_ring_flush", c_int, H)
_fn("shk_ring_peek", c_int, H, P(c_void_p), P(c_size_t), i64)
_fn("shk_ring_release", c_int, H)
_fn("shk_ring_write", c_int, H, c_void_p, c_size_t, i64)
_fn("shk_ring_read", c_int, H, c_void_p, c_size_t, i64)
_fn("shk_ring_fd", c_int, H)
_fn("shk_ring_close", None, H)
_fn("shk_ring_stat", c_int, H, P(RingStats))

# bcast
_fn("shk_bcast_open", c_int, H, c_char_p, c_uint, c_int, P(BcastOpts), P(H))
_fn("shk_bcast_write", c_int, H, c_void_p, c_size_t, i64)
_fn("shk_bcast_read", c_int, H, c_void_p, c_size_t, P(u64), i64)
_fn("shk_bcast_fd", c_int, H)
_fn("shk_bcast_close", None, H)
_fn("shk_bcast_stat", c_int, H, P(BcastStats))

# queue, stack, pool
_fn("shk_queue_open", c_int, H, c_char_p, c_uint, P(QueueOpts), P(H))
_fn("shk_queue_close", None, H)
_fn("shk_queue_push", c_int, H, c_void_p, i64)
_fn("shk_queue_pop", c_int, H, c_void_p, i64)
_fn("shk_queue_fd", c_int, H)
_fn("shk_queue_info", c_int, H, P(QueueStats))
_fn("shk_stack_open", c_int, H, c_char_p, c_uint, P(StackOpts), P(H))
_fn("shk_stack_close", None, H)
_fn("shk_stack_push", c_int, H, c_void_p, i64)
_fn("shk_stack_pop", c_int, H, c_void_p, i64)
_fn("shk_stack_info", c_int, H, P(StackStats))
_fn("shk_pool_open", c_int, H, c_char_p, c_uint, P(PoolOpts), P(H))
_fn("shk_pool_close", None, H)
_fn("shk_pool_alloc", c_int, H, P(u64), P(c_void_p))
_fn("shk_pool_free", c_int, H, u64)
_fn("shk_pool_ptr", c_void_p, H, u64)
_fn("shk_pool_info", c_int, H, P(PoolStats))

# sync
for _k in ("mutex", "rwlock", "sem", "barrier", "latch", "event", "cond"):
    _fn("shk_%s_open" % _k, c_int, H, c_char_p, c_uint, P(SyncOpts), P(H))
    _fn("shk_%s_close" % _k, None, H)
_fn("shk_mutex_lock", c_int, H, i64)
_fn("shk_mutex_unlock", c_int, H)
_fn("shk_mutex_consistent", c_int, H)
_fn("shk_rwlock_rdlock", c_int, H, i64)
_fn("shk_rwlock_wrlock", c_int, H, i64)
_fn("shk_rwlock_rdunlock", c_int, H)
_fn("shk_rwlock_rdheld", u32, H)
_fn("shk_rwlock_wrunlock", c_int, H)
_fn("shk_rwlock_consistent", c_int, H)
_fn("shk_sem_post", c_int, H, u32)
_fn("shk_sem_wait", c_int, H, i64)
_fn("shk_sem_value", c_int, H)
_fn("shk_sem_fd", c_int, H)
_fn("shk_barrier_wait", c_int, H, i64)
_fn("shk_barrier_leave", c_int, H)
_fn("shk_latch_count_down", c_int, H, u32)
_fn("shk_latch_wait", c_int, H, i64)
_fn("shk_latch_count", c_int, H)
_fn("shk_event_set", c_int, H)
_fn("shk_event_reset", c_int, H)
_fn("shk_event_wait", c_int, H, i64)
_fn("shk_event_fd", c_int, H)
_fn("shk_cond_wait", c_int, H, H, i64)
_fn("shk_cond_signal", c_int, H)
_fn("shk_cond_broadcast", c_int, H)

# channels
_fn("shk_chan_open", c_int, c_char_p, c_int, c_int, P(ChanOpts), P(H))
_fn("shk_chan_send", c_int, H, c_void_p, c_size_t, i64)
_fn("shk_chan_recv", c_int, H, P(H), i64)
_fn("shk_msg_loan", c_int, H, c_size_t, P(H))
_fn("shk_msg_send", c_int, H, H, i64)
_fn("shk_msg_data", c_void_p, H)
_fn("shk_msg_len", c_size_t, H)
_fn("shk_msg_release", None, H)
_fn("shk_chan_fd", c_int, H)
_fn("shk_chan_stat", c_int, H, P(ChanStats))
_fn("shk_chan_seg", H, H)
_fn("shk_chan_close", None, H)
