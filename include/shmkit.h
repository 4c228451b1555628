/*
 * shmkit.h - the public contract of shmkit.
 *
 * Nothing outside this header is supported: tools, bindings, examples and
 * benchmarks use only what is declared here.  Every function returns an int
 * that is >= 0 on success (0 or a count) and a negative SHK_E* code on
 * failure, unless stated otherwise.  errno is never part of the contract.
 *
 * Fork policy: handles (shk_seg, shk_ring, ...) belong to the process that
 * opened them.  A child created by fork() must not use its parent's handles;
 * it opens its own.  Memory inside a segment is shared; handles are not.
 *
 * Timeouts: every blocking call takes one int64_t timeout_ns: SHK_FOREVER
 * (-1) waits forever, 0 only tries, a positive value is a relative timeout in
 * nanoseconds measured on CLOCK_MONOTONIC.  Expiry returns SHK_ETIMEDOUT (or
 * SHK_EAGAIN for a try that could not proceed).
 */
#ifndef SHMKIT_H
#define SHMKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHK_VERSION_MAJOR 0
#define SHK_VERSION_MINOR 1
#define SHK_VERSION_PATCH 0
#define SHK_VERSION_STRING "0.1.0"

#if defined(SHK_BUILDING_LIBRARY)
#define SHK_API __attribute__((visibility("default")))
#else
#define SHK_API
#endif

/*
 * shk_version returns the library's version as
 * major * 10000 + minor * 100 + patch, so a program can check at run time
 * that the library it loaded is the one it was compiled against.
 */
SHK_API int shk_version(void);

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/*
 * SHK_ERRNO_MAP lists every error code: X(name, value, message).  Where a
 * POSIX errno fits, SHK_Exxx == -Exxx (Linux values); shmkit's own codes are
 * <= -1000.  The same list generates shk_strerror(), shk_errname(),
 * docs/errors.md and the Python exception map.
 */
#define SHK_ERRNO_MAP(X)                                                      \
	X(EPERM, -1, "operation not permitted")                               \
	X(ENOENT, -2, "no such segment or object")                            \
	X(ESRCH, -3, "no such process")                                       \
	X(EINTR, -4, "interrupted")                                           \
	X(EIO, -5, "input/output error")                                      \
	X(EBADF, -9, "bad file descriptor")                                   \
	X(EAGAIN, -11, "resource temporarily unavailable (try again)")        \
	X(ENOMEM, -12, "out of memory in the segment or process")             \
	X(EACCES, -13, "permission denied")                                   \
	X(EBUSY, -16, "resource busy")                                        \
	X(EEXIST, -17, "already exists")                                      \
	X(EINVAL, -22, "invalid argument")                                    \
	X(ENOSPC, -28, "no space left on device")                             \
	X(EPIPE, -32, "peer closed")                                          \
	X(ERANGE, -34, "value out of range")                                  \
	X(EDEADLK, -35, "deadlock would occur")                               \
	X(ENAMETOOLONG, -36, "name too long")                                 \
	X(ENOSYS, -38, "function not supported on this system")               \
	X(EMSGSIZE, -90, "message too long")                                  \
	X(ENOTSUP, -95, "operation not supported")                            \
	X(ETIMEDOUT, -110, "timed out")                                       \
	X(ECANCELED, -125, "operation canceled")                              \
	X(EOWNERDEAD, -130, "previous owner died; state may be inconsistent") \
	X(ENOTRECOVERABLE, -131, "state not recoverable")                     \
	X(EBADSEG, -1000, "not a shmkit segment or segment damaged")          \
	X(EVERSION, -1001, "unsupported segment format version")              \
	X(ECORRUPT, -1002, "corrupted data in shared memory")                 \
	X(ETYPE, -1003, "object kind, type or element size mismatch")         \
	X(EPEERDEAD, -1004, "peer process died")                              \
	X(ETRUNC, -1005, "segment truncated")                                 \
	X(ECHECKSUM, -1006, "segment header checksum mismatch")

enum shk_error {
#define SHK__ERR_ENUM(name, value, msg) SHK_##name = (value),
	SHK_ERRNO_MAP(SHK__ERR_ENUM)
#undef SHK__ERR_ENUM
	SHK_OK = 0
};

/*
 * shk_strerror returns a static, constant, human-readable message for an
 * error code (thread-safe; never NULL).  Unknown codes give "unknown error".
 */
SHK_API const char *shk_strerror(int code);

/*
 * shk_errname returns the code's symbolic name ("SHK_ETYPE"), or
 * "SHK_UNKNOWN".  Static and thread-safe.
 */
SHK_API const char *shk_errname(int code);

/* Blocking calls: wait forever, or only try. */
#define SHK_FOREVER ((int64_t)-1)
#define SHK_TRY ((int64_t)0)

/* ------------------------------------------------------------------ */
/* Segments                                                            */
/* ------------------------------------------------------------------ */

typedef struct shk_seg shk_seg;

/* Backends: where the segment's memory comes from. */
enum shk_backend {
	SHK_BACKEND_POSIX = 0, /* shm_open(name), the default */
	SHK_BACKEND_SYSV = 1,  /* shmget(key); key from the name or given */
	SHK_BACKEND_FILE = 2,  /* mmap of a file at path `name` */
	SHK_BACKEND_MEMFD = 3  /* memfd_create; shared by passing the fd */
};

/* Open flags, as open(2). */
#define SHK_CREATE 0x1u /* create if missing (create-or-open) */
#define SHK_EXCL 0x2u   /* with SHK_CREATE: fail with SHK_EEXIST if present */
#define SHK_RDONLY 0x4u /* map read-only, do not attach (inspection) */

/*
 * shk_seg_opts configures shk_seg_open.  Initialise with
 * SHK_SEG_OPTS_INIT; zero fields mean the default.
 *   size        sizeof(shk_seg_opts) (0 is SHK_EINVAL: uninitialised)
 *   mode        permission bits on create (default 0600)
 *   backend     enum shk_backend (default SHK_BACKEND_POSIX)
 *   len         total size in bytes on create (default 4 MiB; at least
 *               SHK_SEG_MIN_LEN, at most SHK_SEG_MAX_LEN)
 *   max_objects registry entries on create (default 256; power of two,
 *               rounded up)
 *   open_timeout_ns  how long an opener waits for a concurrent creator to
 *               finish initialising (default 1 s)
 *   sysv_key    SysV backend: the IPC key; 0 derives it from the name
 */
typedef struct shk_seg_opts {
	uint32_t size;
	uint32_t mode;
	uint32_t backend;
	uint32_t max_objects;
	uint64_t len;
	int64_t open_timeout_ns;
	int32_t sysv_key;
	uint32_t reserved;
} shk_seg_opts;

#define SHK_SEG_OPTS_INIT { .size = sizeof(shk_seg_opts) }
#define SHK_SEG_MIN_LEN ((uint64_t)64 << 10)
#define SHK_SEG_MAX_LEN ((uint64_t)1 << 40)
#define SHK_NAME_MAX 63 /* longest segment or object name, in bytes */

/*
 * shk_seg_open opens the segment `name`, creating it when flags has
 * SHK_CREATE.  Names of POSIX and SysV segments are POSIX shm style: an
 * optional leading '/', then 1..SHK_NAME_MAX characters from [A-Za-z0-9._-]
 * with no further '/'.  The file backend takes a path; the memfd backend
 * takes a label and always creates (open another process's memfd with
 * shk_seg_open_fd).
 *
 * Creation is atomic: racing create-or-open calls end with exactly one
 * creator; the others wait (up to open_timeout_ns) until it has published
 * the segment READY, then open it.  Creating never re-initialises a segment
 * that exists.  Opening validates the header (magic, version, checksum,
 * sizes, every region in bounds) before use.  Each open registers the
 * process (pid and start time) in the segment's attach table.
 *
 * Returns 0 and *out, or: SHK_EINVAL (bad name, flags or opts),
 * SHK_ENAMETOOLONG, SHK_ENOENT (missing), SHK_EEXIST (SHK_EXCL and present),
 * SHK_EACCES, SHK_ENOSPC (no room to back the memory), SHK_EBADSEG (foreign
 * or never-initialised), SHK_ETRUNC, SHK_EVERSION, SHK_ECHECKSUM,
 * SHK_ECORRUPT, SHK_ETIMEDOUT (creator still initialising), SHK_EBUSY
 * (attach table full), SHK_ENOMEM.  On failure *out is NULL.
 * Thread-safe; blocks at most open_timeout_ns.
 */
SHK_API int shk_seg_open(const char *name, unsigned flags,
			 const shk_seg_opts *opts, shk_seg **out);

/*
 * shk_seg_open_fd opens a segment from a file descriptor (a memfd received
 * over a Unix socket or inherited).  The descriptor is duplicated; the
 * caller keeps its own.  Codes as shk_seg_open.
 */
SHK_API int shk_seg_open_fd(int fd, unsigned flags, const shk_seg_opts *opts,
			    shk_seg **out);

/*
 * shk_seg_close detaches from the segment, unmaps it and frees the handle.
 * Every object handle opened from it must be closed first.  NULL is a no-op.
 */
SHK_API void shk_seg_close(shk_seg *seg);

/*
 * shk_seg_unlink removes the name of a segment (POSIX, SysV, file).  Mapped
 * processes keep their mapping until they close.  opts selects the backend
 * (NULL: POSIX).  Returns 0, SHK_ENOENT, SHK_EACCES or SHK_EINVAL.
 */
SHK_API int shk_seg_unlink(const char *name, const shk_seg_opts *opts);

/*
 * shk_seg_fd returns the segment's file descriptor (POSIX, file, memfd)
 * owned by the handle, or SHK_ENOTSUP for SysV.
 */
SHK_API int shk_seg_fd(shk_seg *seg);

/* shk_seg_base returns the address where this process mapped the segment. */
SHK_API void *shk_seg_base(shk_seg *seg);

/*
 * shk_seg_stats is filled by shk_seg_info.  Fixed-width fields only.
 */
typedef struct shk_seg_stats {
	uint32_t size;     /* sizeof, set by the caller */
	uint32_t version;  /* format version */
	uint32_t backend;  /* enum shk_backend */
	uint32_t mode;
	uint64_t len;      /* total bytes */
	uint64_t created_ns;   /* CLOCK_REALTIME at creation */
	uint32_t creator_pid;
	uint32_t creator_uid;
	uint32_t nobjects;     /* live registry entries */
	uint32_t max_objects;
	uint32_t attached;     /* attach records in use */
	uint32_t attached_alive; /* ... whose process is alive */
	uint64_t heap_len;     /* bytes managed by the heap */
	uint64_t heap_used;    /* bytes handed out */
	uint64_t heap_free;
	uint64_t heap_high_water;
	char name[64];
} shk_seg_stats;

/*
 * shk_seg_info fills *st (whose size field the caller sets) with the
 * segment's header, attach and heap figures.  Works on SHK_RDONLY handles.
 * Returns 0, SHK_EINVAL or SHK_ECORRUPT.
 */
SHK_API int shk_seg_info(shk_seg *seg, shk_seg_stats *st);

/*
 * shk_seg_check validates the whole segment: header, attach table,
 * registry entries, heap structure and each object's own consistency
 * check.  Returns 0, or the first problem's code (SHK_ECORRUPT, ...).
 * Read-only; safe on SHK_RDONLY handles.
 */
SHK_API int shk_seg_check(shk_seg *seg);

/*
 * shk_attach_info describes one attach record (for tools).
 */
typedef struct shk_attach_info {
	uint32_t size;
	uint32_t slot;
	uint32_t pid;
	uint32_t alive;     /* 1 if the process still runs */
	uint64_t start_ticks; /* /proc/PID/stat field 22 */
	uint32_t generation;
	uint32_t reserved;
} shk_attach_info;

/*
 * shk_seg_attached iterates the attach table: set *cursor to 0, call until
 * it returns 0 (end); each call returning 1 fills *info.
 */
SHK_API int shk_seg_attached(shk_seg *seg, uint32_t *cursor,
			     shk_attach_info *info);

/* ------------------------------------------------------------------ */
/* Heap: offsets travel between processes, pointers do not             */
/* ------------------------------------------------------------------ */

/*
 * shk_alloc allocates len bytes (1 .. segment size) from the segment's
 * shared heap and stores the block's offset from the segment base in *off.
 * Blocks are 16-byte aligned (64-byte from 1 KiB up).  Any process attached
 * to the segment may free the block.  Returns 0, SHK_EINVAL, SHK_ENOMEM
 * (the segment stays consistent), SHK_ECORRUPT.  Thread- and process-safe;
 * small sizes are lock-free, large ones take the heap's robust lock.
 */
SHK_API int shk_alloc(shk_seg *seg, size_t len, uint64_t *off);

/*
 * shk_free returns the block at off to the heap.  A double free, an offset
 * that is not the start of a live block, or one outside the heap returns
 * SHK_EINVAL and changes nothing.
 */
SHK_API int shk_free(shk_seg *seg, uint64_t off);

/*
 * shk_ptr turns an offset into a pointer in this process, or NULL when off
 * is not inside the segment.  shk_off is the inverse (0 when ptr is not in
 * the segment; offset 0 is the header and never a valid block).
 */
SHK_API void *shk_ptr(shk_seg *seg, uint64_t off);
SHK_API uint64_t shk_off(shk_seg *seg, const void *ptr);

#define SHK_HEAP_NCLASSES 64
typedef struct shk_heap_stats {
	uint32_t size;
	uint32_t nclasses;
	uint64_t heap_len;
	uint64_t used;        /* bytes in live blocks (block sizes) */
	uint64_t free;        /* bytes available */
	uint64_t high_water;  /* maximum of used */
	uint64_t nallocs;     /* live blocks */
	uint64_t class_size[SHK_HEAP_NCLASSES];
	uint64_t class_used[SHK_HEAP_NCLASSES]; /* live blocks per class */
} shk_heap_stats;

/* shk_heap_info fills *st (caller sets st->size).  Returns 0 or a code. */
SHK_API int shk_heap_info(shk_seg *seg, shk_heap_stats *st);

/* ------------------------------------------------------------------ */
/* Registry: named, typed objects                                      */
/* ------------------------------------------------------------------ */

enum shk_kind {
	SHK_KIND_NONE = 0,
	SHK_KIND_BLOB = 1,   /* raw bytes: elem_len * cap */
	SHK_KIND_ARRAY = 2,
	SHK_KIND_RING = 3,
	SHK_KIND_QUEUE = 4,
	SHK_KIND_STACK = 5,
	SHK_KIND_BCAST = 6,
	SHK_KIND_MAP = 7,
	SHK_KIND_POOL = 8,
	SHK_KIND_MUTEX = 16,
	SHK_KIND_RWLOCK = 17,
	SHK_KIND_SEM = 18,
	SHK_KIND_BARRIER = 19,
	SHK_KIND_LATCH = 20,
	SHK_KIND_EVENT = 21,
	SHK_KIND_COND = 22,
	SHK_KIND_ONCE = 23,
	SHK_KIND_CHAN = 32,
	SHK_KIND_MAX = 63
};

/* shk_kind_name returns "ring", "queue", ... or "unknown". */
SHK_API const char *shk_kind_name(uint32_t kind);

/*
 * shk_obj_desc describes an object to create, or what an opener expects.
 *   kind      enum shk_kind (required)
 *   type_id   the user's 64-bit type tag; must match on open
 *   elem_len  element size in bytes; on open 0 accepts the stored value
 *   align     element alignment (0: natural, up to 64)
 *   cap       capacity in elements; on open 0 accepts the stored value
 */
typedef struct shk_obj_desc {
	uint32_t size;
	uint32_t kind;
	uint64_t type_id;
	uint64_t elem_len;
	uint64_t align;
	uint64_t cap;
} shk_obj_desc;

#define SHK_OBJ_DESC_INIT { .size = sizeof(shk_obj_desc) }

/* shk_obj_info describes an existing object (registry entry). */
typedef struct shk_obj_info {
	uint32_t size;
	uint32_t kind;
	uint64_t type_id;
	uint64_t elem_len;
	uint64_t align;
	uint64_t cap;
	uint64_t off;   /* object memory: offset from the segment base */
	uint64_t len;   /* object memory: bytes */
	uint64_t created_ns;
	uint32_t creator_pid;
	uint32_t slot;  /* registry entry index */
	char name[64];
} shk_obj_info;

/*
 * shk_obj_open opens the raw (SHK_KIND_BLOB) or any-kind object `name`.
 * With SHK_CREATE it creates a zero-filled blob of elem_len * cap bytes when
 * missing (racing creators get one object); SHK_EXCL makes an existing one
 * SHK_EEXIST.  On open the stored kind, type_id and (if nonzero in desc)
 * elem_len and cap must match desc, else SHK_ETYPE.  Fills *info when not
 * NULL and returns the object's memory in *ptr (when not NULL).  Only
 * SHK_KIND_BLOB may be created here; the typed structures have their own
 * open calls, which go through the same registry.  Codes: SHK_EINVAL,
 * SHK_ENAMETOOLONG, SHK_ENOENT, SHK_EEXIST, SHK_ETYPE, SHK_ENOMEM (heap),
 * SHK_ENOSPC (registry full), SHK_ECORRUPT.  Thread- and process-safe.
 */
SHK_API int shk_obj_open(shk_seg *seg, const char *name, unsigned flags,
			 const shk_obj_desc *desc, shk_obj_info *info,
			 void **ptr);

/* shk_obj_stat fills *info for `name`.  SHK_ENOENT when missing. */
SHK_API int shk_obj_stat(shk_seg *seg, const char *name, shk_obj_info *info);

/*
 * shk_obj_next iterates the registry: start with *cursor = 0; each call
 * that returns 1 fills *info and advances *cursor; 0 means the end.
 * Entries being created or removed concurrently may be skipped.
 */
SHK_API int shk_obj_next(shk_seg *seg, uint32_t *cursor, shk_obj_info *info);

/*
 * shk_obj_remove deletes the entry `name` and returns its memory to the
 * heap.  Handles other processes still hold on it become invalid: remove an
 * object only when no one uses it.  Returns 0, SHK_ENOENT, SHK_EINVAL.
 */
SHK_API int shk_obj_remove(shk_seg *seg, const char *name);

/*
 * shk_obj_describe writes a one-line description of the object's live state
 * (for example "fill=12/1024 waiters=0", or "locked owner=1234(alive)") into
 * buf (NUL-terminated, truncated to len).  Read-only; works on SHK_RDONLY
 * handles.  Returns the length written, SHK_EINVAL, or SHK_ECORRUPT when
 * the object fails its consistency check.  Kinds without live state write
 * an empty string.
 */
SHK_API int shk_obj_describe(shk_seg *seg, const shk_obj_info *info,
			     char *buf, size_t len);

/* ==== structures (issue 3): array and map ==== */

/* ---- (end of array and map) ---- */
/* ---- (space between sections: keep) ---- */

/* ==== structures (issue 3): ring and bcast ==== */

/* ---- (end of ring and bcast) ---- */
/* ---- (space between sections: keep) ---- */

/* ==== structures (issue 3): queue, stack and pool ==== */

/*
 * shk_queue is a bounded multi-producer multi-consumer FIFO of fixed-size
 * elements (docs/queue.md).  Elements are copied in and out.  A producer
 * or consumer killed mid-operation loses at most the one element it held;
 * the survivors detect the dead claimer and carry on.
 */
typedef struct shk_queue shk_queue;

/*
 * shk_queue_opts configures shk_queue_open.  Initialise with
 * SHK_QUEUE_OPTS_INIT; zero fields mean the default.
 *   size      sizeof(shk_queue_opts) (0 is SHK_EINVAL)
 *   elem_len  element size in bytes, 1 .. 1 MiB (create default 8; on open
 *             0 accepts the stored size, another value must match it)
 *   cap       capacity in elements, a power of two, 1 .. 2^31 (create
 *             default 1024; on open 0 accepts the stored capacity)
 *   type_id   the user's type tag; must match the stored one on open
 */
typedef struct shk_queue_opts {
	uint32_t size;
	uint32_t elem_len;
	uint64_t cap;
	uint64_t type_id;
} shk_queue_opts;

#define SHK_QUEUE_OPTS_INIT { .size = sizeof(shk_queue_opts) }

/*
 * shk_queue_open opens the queue `name` in seg, creating it when flags has
 * SHK_CREATE (SHK_EXCL: fail with SHK_EEXIST if it exists).  The object
 * takes 320 bytes plus cap * (8 + elem_len rounded up to 8) bytes of the
 * segment's heap.  Racing creators get one queue.  Opening checks the kind,
 * type_id, elem_len and cap against opts (SHK_ETYPE on a mismatch) and
 * validates the queue's memory (SHK_ECORRUPT).  Returns 0 and *out, or
 * SHK_EINVAL (NULL argument, bad opts, read-only segment handle),
 * SHK_ENAMETOOLONG, SHK_ENOENT, SHK_EEXIST, SHK_ETYPE, SHK_ENOMEM,
 * SHK_ENOSPC (registry full), SHK_ECORRUPT; *out is NULL on failure.
 * Thread- and process-safe.
 */
SHK_API int shk_queue_open(shk_seg *seg, const char *name, unsigned flags,
			   const shk_queue_opts *opts, shk_queue **out);

/*
 * shk_queue_close frees the handle (and its pollable fd, if any).  The
 * queue stays in the segment.  NULL is a no-op.  Not to be called while
 * another thread uses the handle.
 */
SHK_API void shk_queue_close(shk_queue *q);

/*
 * shk_queue_push copies elem_len bytes from elem to the tail of the queue.
 * timeout_ns: 0 tries once (SHK_EAGAIN when full), SHK_FOREVER waits, a
 * positive value waits at most that long (SHK_ETIMEDOUT).  Elements of one
 * producer (thread) are delivered in the order it pushed them.  Returns 0,
 * SHK_EINVAL, SHK_EAGAIN, SHK_ETIMEDOUT, SHK_ECORRUPT.  Thread- and
 * process-safe; lock-free among live parties, no system call unless a
 * consumer sleeps.  Blocking spins briefly, then sleeps on a futex; a
 * waiter re-tests every 10 ms whether a dead consumer holds the slot it
 * waits for, and repairs it (that consumer's element is lost).
 */
SHK_API int shk_queue_push(shk_queue *q, const void *elem, int64_t timeout_ns);

/*
 * shk_queue_pop copies the element at the head of the queue into elem
 * (elem_len bytes) and removes it.  timeout_ns as for shk_queue_push
 * (SHK_EAGAIN: empty on a try).  An element whose producer is still
 * writing it blocks the head until it is published; if that producer has
 * died (tested after it held the slot 10 ms), the slot is skipped and
 * counted in shk_queue_stats.lost.  A producer that is merely stopped
 * (SIGSTOP, debugger) is waited for, never skipped.  Returns 0, SHK_EINVAL,
 * SHK_EAGAIN, SHK_ETIMEDOUT, SHK_ECORRUPT.  Thread- and process-safe;
 * lock-free among live parties.
 */
SHK_API int shk_queue_pop(shk_queue *q, void *elem, int64_t timeout_ns);

/*
 * shk_queue_fd returns a file descriptor, owned by the handle, that polls
 * readable when the queue may have an element for shk_queue_pop: poll it,
 * then pop with timeout 0 until SHK_EAGAIN, which re-arms it.  Spurious
 * readiness is possible; a missed one is not.  A producer that died while
 * holding the head is detected only by pops: poll with a finite timeout
 * (10 ms or more) and try a pop when it expires.  After this call, pop on
 * the handle from one thread at a time.  Returns the fd, or SHK_EINVAL or an
 * error from creating the doorbell (SHK_EBUSY, SHK_ENOMEM, ...).
 */
SHK_API int shk_queue_fd(shk_queue *q);

/*
 * shk_queue_stats is filled by shk_queue_info: a snapshot, not atomic as a
 * whole.
 *   len        elements pushed and not yet popped (approximate under
 *              concurrency; includes slots still being written)
 *   lost       elements lost so far to producers or consumers that died
 *              holding a slot
 *   pop_waiters, push_waiters   threads asleep in pop / push
 */
typedef struct shk_queue_stats {
	uint32_t size;
	uint32_t elem_len;
	uint64_t cap;
	uint64_t len;
	uint64_t lost;
	uint64_t type_id;
	uint32_t pop_waiters;
	uint32_t push_waiters;
} shk_queue_stats;

/*
 * shk_queue_info fills *st (whose size field the caller sets).  Returns 0
 * or SHK_EINVAL.  Thread- and process-safe; no system call.
 */
SHK_API int shk_queue_info(shk_queue *q, shk_queue_stats *st);

/*
 * shk_pool is a pool of fixed-size blocks inside a segment with lock-free
 * allocation and free (docs/pool.md).  Blocks are named by their offset
 * from the segment base, so any process can use and free them; this is
 * the basis of zero-copy loans.
 */
typedef struct shk_pool shk_pool;

/*
 * shk_pool_opts configures shk_pool_open (SHK_POOL_OPTS_INIT; zero fields
 * mean the default).
 *   size       sizeof(shk_pool_opts) (0 is SHK_EINVAL)
 *   block_len  usable bytes per block, 1 .. 1 GiB (create default 64).
 *              Blocks are 16-byte aligned, 64-byte aligned from 64 bytes
 *              up; the stored size is block_len rounded up to that
 *              alignment, and an opener's nonzero block_len must equal the
 *              stored (rounded) size
 *   cap        number of blocks, 1 .. 2^31 (create default 64; on open 0
 *              accepts the stored value)
 *   type_id    the user's type tag; must match on open
 */
typedef struct shk_pool_opts {
	uint32_t size;
	uint32_t reserved;
	uint64_t block_len;
	uint64_t cap;
	uint64_t type_id;
} shk_pool_opts;

#define SHK_POOL_OPTS_INIT { .size = sizeof(shk_pool_opts) }

/*
 * shk_pool_open opens the pool `name`, creating it with SHK_CREATE
 * (SHK_EXCL: SHK_EEXIST if present).  It takes 128 + 8 * cap bytes plus
 * cap blocks of the segment's heap.  Codes as shk_queue_open (SHK_ETYPE on
 * a kind, type, block size or capacity mismatch; SHK_ECORRUPT).  *out is
 * NULL on failure.  Thread- and process-safe.
 */
SHK_API int shk_pool_open(shk_seg *seg, const char *name, unsigned flags,
			  const shk_pool_opts *opts, shk_pool **out);

/* shk_pool_close frees the handle; the pool and its blocks stay.  NULL is
 * a no-op. */
SHK_API void shk_pool_close(shk_pool *p);

/*
 * shk_pool_alloc takes a free block.  *off (if not NULL) receives its
 * offset from the segment base, valid in every process; *ptr (if not
 * NULL) its address in this process.  The contents are left as the last
 * user left them.  Returns 0, SHK_ENOMEM when every block is in use (it
 * does not wait), SHK_EINVAL, SHK_ECORRUPT.  Lock-free; thread- and
 * process-safe; no system call.
 */
SHK_API int shk_pool_alloc(shk_pool *p, uint64_t *off, void **ptr);

/*
 * shk_pool_free returns the block at off (as given by shk_pool_alloc in
 * any process) to the pool.  An offset that is not a block boundary of
 * this pool, or a block that is already free, returns SHK_EINVAL and
 * changes nothing (of two racing frees of one block exactly one
 * succeeds).  Returns 0, SHK_EINVAL, SHK_ECORRUPT.  Lock-free.
 */
SHK_API int shk_pool_free(shk_pool *p, uint64_t off);

/*
 * shk_pool_ptr turns a block offset into this process's address, or NULL
 * when off is not a block boundary of this pool.  It does not check that
 * the block is allocated.
 */
SHK_API void *shk_pool_ptr(shk_pool *p, uint64_t off);

/*
 * shk_pool_stats is filled by shk_pool_info.  in_use counts blocks marked
 * allocated (a scan of cap words: O(cap), a snapshot under concurrency).
 */
typedef struct shk_pool_stats {
	uint32_t size;
	uint32_t reserved;
	uint64_t block_len;
	uint64_t cap;
	uint64_t in_use;
	uint64_t type_id;
} shk_pool_stats;

/* shk_pool_info fills *st (caller sets st->size).  0 or SHK_EINVAL. */
SHK_API int shk_pool_info(shk_pool *p, shk_pool_stats *st);

/*
 * shk_stack is a bounded lock-free LIFO of fixed-size elements
 * (docs/stack.md): Treiber's stack over a node array with tagged 64-bit
 * heads.  Elements are copied in and out.
 */
typedef struct shk_stack shk_stack;

/*
 * shk_stack_opts configures shk_stack_open (SHK_STACK_OPTS_INIT; zero
 * fields mean the default).
 *   size      sizeof(shk_stack_opts) (0 is SHK_EINVAL)
 *   elem_len  element size, 1 .. 1 MiB (create default 8; on open 0
 *             accepts the stored size)
 *   cap       capacity in elements, 1 .. 2^24 (create default 1024; on
 *             open 0 accepts the stored capacity)
 *   type_id   the user's type tag; must match on open
 */
typedef struct shk_stack_opts {
	uint32_t size;
	uint32_t elem_len;
	uint64_t cap;
	uint64_t type_id;
} shk_stack_opts;

#define SHK_STACK_OPTS_INIT { .size = sizeof(shk_stack_opts) }

/*
 * shk_stack_open opens the stack `name`, creating it with SHK_CREATE
 * (SHK_EXCL: SHK_EEXIST if present).  It takes 320 + cap * (4 + elem_len
 * rounded up to 8) bytes of the heap, plus alignment.  Codes as
 * shk_queue_open.  *out is NULL on failure.  Thread- and process-safe.
 */
SHK_API int shk_stack_open(shk_seg *seg, const char *name, unsigned flags,
			   const shk_stack_opts *opts, shk_stack **out);

/* shk_stack_close frees the handle; the stack stays.  NULL: no-op. */
SHK_API void shk_stack_close(shk_stack *s);

/*
 * shk_stack_push copies elem_len bytes from elem onto the top.  timeout_ns:
 * 0 tries (SHK_EAGAIN when full), SHK_FOREVER, or ns (SHK_ETIMEDOUT).
 * Returns 0, SHK_EINVAL, SHK_EAGAIN, SHK_ETIMEDOUT, SHK_ECORRUPT.
 * Lock-free; thread- and process-safe; no system call unless a popper
 * sleeps.
 */
SHK_API int shk_stack_push(shk_stack *s, const void *elem, int64_t timeout_ns);

/*
 * shk_stack_pop copies the top element into elem and removes it.
 * timeout_ns as for shk_stack_push (SHK_EAGAIN when empty on a try).  A
 * popper killed after taking the top loses that element (at-most-once)
 * and its node.  Returns 0, SHK_EINVAL, SHK_EAGAIN, SHK_ETIMEDOUT,
 * SHK_ECORRUPT.  Lock-free; thread- and process-safe.
 */
SHK_API int shk_stack_pop(shk_stack *s, void *elem, int64_t timeout_ns);

/* shk_stack_stats: depth is approximate (a relaxed counter). */
typedef struct shk_stack_stats {
	uint32_t size;
	uint32_t elem_len;
	uint64_t cap;
	uint64_t depth;
	uint64_t type_id;
} shk_stack_stats;

/* shk_stack_info fills *st (caller sets st->size).  0 or SHK_EINVAL. */
SHK_API int shk_stack_info(shk_stack *s, shk_stack_stats *st);

/* ---- (end of queue, stack and pool) ---- */
/* ---- (space between sections: keep) ---- */

/* ==== sync (issue 4) ==== */

/* ---- (end of sync) ---- */
/* ---- (space between sections: keep) ---- */

/* ==== end of sections ==== */

#ifdef __cplusplus
}
#endif

#endif /* SHMKIT_H */
