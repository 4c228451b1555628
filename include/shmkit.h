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
 * (A fork handler closes the child's copies of the descriptors behind its
 * parent's liveness locks, docs/design.md, so the parent's death is seen
 * while the child lives.)  The one call a child may make on its copy of a
 * parent's handle is its close (shk_*_close), which then frees only the
 * child's memory and descriptors: it publishes nothing and gives up
 * nothing the parent holds (attach record, ring or bcast role, reader
 * slot, heap cache, a channel's outstanding messages), so a child may
 * close what it inherited, or exit with finalizers that close it, while
 * the parent goes on using its handles.
 *
 * Timeouts: every blocking call takes one int64_t timeout_ns: SHK_FOREVER
 * (-1) waits forever, 0 only tries, a positive value is a relative timeout in
 * nanoseconds measured on CLOCK_MONOTONIC.  Expiry returns SHK_ETIMEDOUT (or
 * SHK_EAGAIN for a try that could not proceed).  Any other negative value is
 * SHK_EINVAL.
 *
 * Options structs (shk_*_opts) start with uint32_t size, set by their
 * SHK_*_OPTS_INIT; NULL means all defaults, size 0 is SHK_EINVAL (an
 * uninitialised struct).  Fields are only ever appended: a struct shorter
 * than this header's (a caller built against an older one) is read up to
 * its size, the rest taking the defaults.
 *
 * Result structs (shk_*_stats, shk_obj_info, shk_attach_info) also start
 * with uint32_t size, which the caller sets (SHK_*_INIT-style or sizeof).
 * A call that fills one sets size to the bytes it filled: the smaller of
 * the caller's size and this header's sizeof, and leaves any bytes past
 * that alone.  A size below what the call needs is SHK_EINVAL (only
 * shk_seg_info and shk_chan_stat fill an older, shorter struct).
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
 * SHK__INIT(T) is what every SHK_*_INIT macro expands to: a T whose size
 * field is sizeof(T), every other field zero.  In C it is a designated
 * initialiser.  C++ has those only from C++20, and g++ -Wextra warns about
 * the fields a brace list leaves out, so in C++ it is a value-initialised T
 * with its size set (shk__init, not part of the API): the same value, and
 * `shk_ring_opts o = SHK_RING_OPTS_INIT;` compiles without warnings under
 * -Wall -Wextra -pedantic from C++11 on (make check-headers), and from
 * C++14 on it is constexpr.
 */
#ifdef __cplusplus
#if __cplusplus >= 201402L
#define SHK__CONSTEXPR constexpr
#else
#define SHK__CONSTEXPR
#endif
extern "C++" {
template <class T>
SHK__CONSTEXPR inline T
shk__init()
{
	T v = T();

	v.size = static_cast<decltype(v.size)>(sizeof(T));
	return v;
}
}
#define SHK__INIT(T) (shk__init<T>())
#else
#define SHK__INIT(T)                                                           \
	{                                                                      \
		.size = sizeof(T)                                              \
	}
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
#define SHK_ERRNO_MAP(X)                                                       \
	X(EPERM, -1, "operation not permitted")                                \
	X(ENOENT, -2, "no such segment or object")                             \
	X(ESRCH, -3, "no such process")                                        \
	X(EINTR, -4, "interrupted")                                            \
	X(EIO, -5, "input/output error")                                       \
	X(EBADF, -9, "bad file descriptor")                                    \
	X(EAGAIN, -11, "resource temporarily unavailable (try again)")         \
	X(ENOMEM, -12, "out of memory in the segment or process")              \
	X(EACCES, -13, "permission denied")                                    \
	X(EBUSY, -16, "resource busy")                                         \
	X(EEXIST, -17, "already exists")                                       \
	X(EINVAL, -22, "invalid argument")                                     \
	X(ENOSPC, -28, "no space left on device")                              \
	X(EPIPE, -32, "peer closed")                                           \
	X(ERANGE, -34, "value out of range")                                   \
	X(EDEADLK, -35, "deadlock would occur")                                \
	X(ENAMETOOLONG, -36, "name too long")                                  \
	X(ENOSYS, -38, "function not supported on this system")                \
	X(EMSGSIZE, -90, "message too long")                                   \
	X(ENOTSUP, -95, "operation not supported")                             \
	X(ETIMEDOUT, -110, "timed out")                                        \
	X(ECANCELED, -125, "operation canceled")                               \
	X(EOWNERDEAD, -130, "previous owner died; state may be inconsistent")  \
	X(ENOTRECOVERABLE, -131, "state not recoverable")                      \
	X(EBADSEG, -1000, "not a shmkit segment or segment damaged")           \
	X(EVERSION, -1001, "unsupported segment format version")               \
	X(ECORRUPT, -1002, "corrupted data in shared memory")                  \
	X(ETYPE, -1003, "object kind, type or element size mismatch")          \
	X(EPEERDEAD, -1004, "peer process died")                               \
	X(ETRUNC, -1005, "segment truncated")                                  \
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

/*
 * shk_interruptible sets, for the calling thread only, what a blocking
 * call does when one of its sleeps ends short of its deadline without what
 * it waits for: on != 0, the call returns SHK_EINTR; 0 (the default, as
 * pthread_mutex_lock) it sleeps again until its deadline.  Returns the
 * previous setting.  A sleep ends so when a signal handler interrupts it,
 * but also at the call's internal slices (every 10 to 50 ms, where it
 * tests for dead peers) and after a wake that another waiter won, so with
 * the setting on SHK_EINTR is also spurious: the caller looks at its own
 * state (a flag its handler set) and calls again with what is left of its
 * timeout.  A call that tests for a dead peer (ring, bcast) runs the test
 * before it returns SHK_EINTR, so such a retry loop gets SHK_EPEERDEAD
 * however often signals come.  It is meant for runtimes that run signal handlers themselves,
 * between calls (the Python binding): a handler that ran while the thread
 * was awake between two sleeps is then seen before a later sleep could
 * take anything.  A call that returns SHK_EINTR has taken nothing (no
 * record, element, unit, auto-reset event, lock or barrier generation) and
 * undone its waiting.  A handler that runs while the call spins before its
 * first sleep (SHK_SPIN_NS) is not seen, and the call may then take what
 * arrives.  The calls: ring reserve, write, peek and read (not in
 * SHK_RING_SPIN mode, which never sleeps), queue and stack push and pop,
 * bcast write and read, chan send and recv and msg send (not a send
 * waiting for heap space), semaphore, event, latch and barrier waits (a
 * barrier wait withdraws its arrival, as at a timeout), once, mutex lock,
 * rwlock rdlock and wrlock, and cond wait (only on a signal, and with the
 * mutex held again, as SHK_ETIMEDOUT).  Their own lists of codes do not
 * repeat SHK_EINTR.
 */
SHK_API int shk_interruptible(int on);

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
/* map read-only, do not attach (inspection): stat, iterate, describe,
 * check, and shk_obj_open of an existing object; every call that writes
 * (creating, removing, allocating, freeing, a structure's open) is
 * SHK_EPERM */
#define SHK_RDONLY 0x4u
/* open a named segment (POSIX, file, SysV) that another user owns.
 * Without it, an existing segment whose owner (st_uid; SysV: shm_perm.uid
 * and its creator, shm_perm.cuid, which unlike uid its maker cannot set to
 * ours) is not the caller's effective uid is SHK_EACCES, whatever its mode says, so
 * that a segment another user made first under the name, with a mode that
 * lets us in, is never taken for ours (and written our data).  Pass it
 * for deliberate sharing between users (the creator's mode must grant
 * access too), and in tools that inspect other users' segments (`shmkit`
 * does).  shk_seg_open_fd checks no owner: the descriptor was handed over
 * on purpose. */
#define SHK_ANY_OWNER 0x8u

/*
 * shk_seg_opts configures shk_seg_open.  Initialise with
 * SHK_SEG_OPTS_INIT; zero fields mean the default.
 *   size        sizeof(shk_seg_opts) (0 is SHK_EINVAL: uninitialised)
 *   mode        permission bits on create, at most 0777 (default 0600;
 *               any other bit is SHK_EINVAL)
 *   backend     enum shk_backend (default SHK_BACKEND_POSIX)
 *   len         total size in bytes on create (default 4 MiB; at least
 *               SHK_SEG_MIN_LEN, at most SHK_SEG_MAX_LEN, and large enough
 *               for the header, attach table, registry (128 B per entry)
 *               and a 32 KiB heap, else SHK_EINVAL: 64 KiB holds up to
 *               128 registry entries, the default 256 need 76 KiB)
 *   max_objects registry entries on create (default 256; power of two,
 *               rounded up)
 *   open_timeout_ns  how long an opener waits for a concurrent creator to
 *               finish initialising, and a creator for the lock on the
 *               file it has just made (default 1 s; SHK_FOREVER waits
 *               forever; below -1 is SHK_EINVAL)
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

#define SHK_SEG_OPTS_INIT SHK__INIT(shk_seg_opts)
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
 * that exists.  An existing segment opens only when the caller's effective
 * uid owns it, unless flags has SHK_ANY_OWNER (above): with SHK_CREATE too,
 * a segment of another user under the name is SHK_EACCES, not opened.
 * Opening validates the header (magic, version, checksum, sizes, every
 * region in bounds) before use.  A SysV segment is the name's only when
 * its header holds that name: another name's segment under the derived
 * (or given) key is SHK_ENOENT for an open and SHK_EEXIST for a create
 * (the key is taken: choose another with opts.sysv_key).  Each open
 * registers the process (pid and start time) in the segment's attach
 * table.
 *
 * Returns 0 and *out, or: SHK_EINVAL (bad name, flags or opts),
 * SHK_ENAMETOOLONG, SHK_ENOENT (missing), SHK_EEXIST (SHK_EXCL and present),
 * SHK_EACCES (no permission, or another user's segment without
 * SHK_ANY_OWNER), SHK_ENOSPC (no room to back the memory), SHK_EBADSEG
 * (foreign or never-initialised, or the name is not a regular file: a
 * FIFO, a directory, a device, or a symlink, which is never followed; a
 * file path's earlier components may be symlinks), SHK_ETRUNC,
 * SHK_EVERSION, SHK_ECHECKSUM,
 * SHK_ECORRUPT, SHK_ETIMEDOUT (creator still initialising; or, creating,
 * another process kept a lock on the new file: the name is removed),
 * SHK_EBUSY (attach table full), SHK_ENOMEM.  A POSIX or file segment
 * whose name is removed while the open is at work is SHK_ENOENT (with
 * SHK_CREATE the open starts over and creates it, until open_timeout_ns).
 * On failure *out is NULL and a segment this call created is removed
 * again (SysV: unless another handle attached to it meanwhile).  Thread-safe; waits at most
 * open_timeout_ns for other processes (a creator's own work, such as
 * reserving a large segment's memory, is not counted); a signal does
 * not interrupt it (no SHK_EINTR).
 */
SHK_API int shk_seg_open(const char *name, unsigned flags,
			 const shk_seg_opts *opts, shk_seg **out);

/*
 * shk_seg_open_fd opens a segment from a file descriptor (a memfd received
 * over a Unix socket or inherited).  The descriptor is duplicated; the
 * caller keeps its own.  flags: SHK_RDONLY; SHK_ANY_OWNER is accepted and
 * changes nothing (a descriptor handed over is opened whoever owns its
 * file).  A memfd must be safe from shrinking, which would make touching
 * its cut pages raise SIGBUS: one without F_SEAL_SHRINK gets that seal
 * (the memfds shk_seg_open makes carry it already), and one that cannot
 * take it (made without MFD_ALLOW_SEALING, sealed with F_SEAL_SEAL, or
 * passed read-only while unsealed) is SHK_EPERM.  Another file (a /dev/shm
 * or disk file) cannot be sealed and is opened as it is: its size is not
 * protected (docs/segment-format.md).  Codes as shk_seg_open.
 */
SHK_API int shk_seg_open_fd(int fd, unsigned flags, const shk_seg_opts *opts,
			    shk_seg **out);

/*
 * shk_seg_close closes the segment handle: the caller may not use seg
 * again, in any call (shk_obj_*, shk_alloc, shk_ptr, shk_seg_info, another
 * object's open, ...).  A second shk_seg_close of it is ignored while
 * object handles keep it (below), and undefined after the last close.  Each object
 * handle opened through seg (array, map, ring, bcast, queue, pool, stack
 * and the sync kinds) holds a reference to it: while one is open the
 * segment stays attached and mapped, and those object handles, with their
 * descriptors (shk_queue_fd, shk_sem_fd, shk_ring_fd, ...), keep working
 * until their own closes.  The last of these closes (this one when no
 * object handle is open) detaches from the segment, unmaps it and frees
 * the handle, in whichever thread makes it; object handles may be closed
 * in any order and from different threads.  Until 2026-11-25 the segment
 * went at once, and an object handle closed after it crashed.  Pointers
 * into the segment (shk_seg_base, shk_ptr, shk_array_data, a blob's
 * memory) stay valid exactly as long as the mapping.  NULL is a no-op.
 * Locks: while object handles keep the segment, a mutex or rwlock lock
 * that a thread holds through it stays its own (it unlocks it through the
 * object handle, and its exit releases it as usual).  At the last close a
 * mutex or rwlock write lock still held through the handle stays taken
 * (the next locker gets SHK_EOWNERDEAD), the closing thread's record of it
 * is dropped (it no longer counts against the thread's 64,
 * shk_mutex_lock), and no thread's exit touches it any more
 * (shk_mutex_lock); another thread's record of a word it held through the
 * handle stays until that thread looks the word up again (counting
 * against its 64 until then), so close the last handle while no other
 * thread holds a lock through it.
 * In a forked child, closing its copy of the parent's handle (and the
 * copies of object handles opened through it) only unmaps and frees, at
 * its last close: the parent stays attached.
 */
SHK_API void shk_seg_close(shk_seg *seg);

/*
 * shk_seg_unlink removes the name of a segment (POSIX, SysV, file).  Mapped
 * processes keep their mapping until they close.  opts selects the backend
 * (NULL: POSIX).  A SysV segment under the name's key whose header holds
 * another name is not removed (SHK_ENOENT, as shk_seg_open says).  Returns
 * 0, SHK_ENOENT, SHK_EACCES, SHK_EINVAL or SHK_EIO (for example, the name
 * is a directory).
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
 * shk_seg_prefault makes every page of the segment present in this
 * process's page tables now (writable, or readable for a SHK_RDONLY
 * handle), so that the first touch of each page does not fault later, in
 * the middle of a latency-sensitive exchange.  Page tables are per
 * process, and a child does not inherit them for shared memory: call it in
 * every process, after fork too.  It takes time in proportion to the
 * segment's size and allocates no memory beyond what creation reserved.
 * On a file on disk (SHK_BACKEND_FILE) the write population marks every
 * page dirty, so the kernel writes the whole file back once.
 * Uses MADV_POPULATE_WRITE/READ (Linux 5.14); on older kernels it reads
 * one byte per page instead, which leaves a cheaper fault on each page's
 * first write.  Returns 0, SHK_EINVAL (NULL), SHK_ENOMEM (memory ran out)
 * or SHK_EIO (the kernel could not populate a page).
 */
SHK_API int shk_seg_prefault(shk_seg *seg);

/*
 * shk_seg_stats is filled by shk_seg_info.  Fixed-width fields only.
 * `mode`, `owner_uid` and `owner_gid` are the segment's file (or SysV
 * segment) as it is now, from fstat (IPC_STAT): after a chmod or chown
 * they say so, and a peer who can write the segment cannot forge them
 * through it (a SysV segment's creator can set its owner uid to anyone's
 * with IPC_SET; its creator uid, which the open checks, stays).
 * `creator_pid`, `creator_uid`, `create_mode` and the other header figures
 * are what the creator wrote into the segment's header: anyone who can
 * write the segment could have written them.
 */
typedef struct shk_seg_stats {
	uint32_t size;    /* sizeof, set by the caller */
	uint32_t version; /* format version */
	uint32_t backend; /* enum shk_backend */
	uint32_t mode; /* permission bits now (until 2026-11-25: create_mode) */
	uint64_t len;  /* total bytes */
	uint64_t created_ns; /* CLOCK_REALTIME at creation */
	uint32_t creator_pid;
	uint32_t creator_uid; /* the header's; the owner now is owner_uid */
	uint32_t nobjects;    /* live registry entries */
	uint32_t max_objects;
	uint32_t attached;       /* attach records in use */
	uint32_t attached_alive; /* ... whose process is alive */
	uint64_t heap_len;       /* bytes managed by the heap */
	uint64_t heap_used;      /* bytes handed out */
	uint64_t heap_free;
	uint64_t heap_high_water;
	char name[64];
	/* appended 2026-11-25 (a caller built before sets a smaller size) */
	uint32_t owner_uid;   /* owner now (st_uid, shm_perm.uid) */
	uint32_t owner_gid;   /* group now (st_gid, shm_perm.gid) */
	uint32_t create_mode; /* permission bits asked at creation (header) */
	uint32_t reserved;
} shk_seg_stats;

/*
 * shk_seg_info fills *st (whose size field the caller sets) with the
 * segment's header, attach and heap figures, and its file's mode and owner
 * now.  st->name is the name given at creation, for POSIX and SysV
 * segments without its optional leading '/' (the same segment, and the
 * same SysV key).  A size from before owner_uid was appended (ending at
 * name) gets the fields up to name; st->size is set to the bytes filled
 * (the preamble's rule).  When the file cannot be asked (a
 * SysV segment whose permissions no longer let us IPC_STAT it), mode is
 * create_mode and owner_uid, owner_gid are UINT32_MAX.  Works on
 * SHK_RDONLY handles.  Returns 0, SHK_EINVAL or SHK_ECORRUPT.
 */
SHK_API int shk_seg_info(shk_seg *seg, shk_seg_stats *st);

/*
 * shk_seg_check validates the whole segment: header, attach table,
 * registry entries (each object one live heap block of its own, no two
 * overlapping), heap structure and each object's own consistency check
 * (docs/cli.md, `shmkit check`).  Returns 0, or the first problem's code
 * (SHK_ECORRUPT, ...).  Without memory for its list of the registry's
 * objects it leaves out the overlap test and judges the rest.  Read-only;
 * safe on SHK_RDONLY handles.
 */
SHK_API int shk_seg_check(shk_seg *seg);

/*
 * shk_attach_info describes one attach record (for tools).  `pid` is the
 * process id in the namespace of the process that wrote the record.
 * `flags` (SHK_ATTACH_*) says how `alive` was decided (docs/design.md,
 * Liveness): a process that holds its record's liveness lock, a lock the
 * kernel drops when the process dies (segments with a file behind them),
 * is alive; a record written from another PID namespace is tested by that
 * lock when it has one (SHK_ATTACH_LOCKED), and otherwise cannot be tested
 * from here and counts as alive; one from another time namespace is tested
 * by pid alone.
 */
#define SHK_ATTACH_OTHER_PIDNS 0x1u  /* another PID namespace */
#define SHK_ATTACH_OTHER_TIMENS 0x2u /* another time namespace: pid only */
#define SHK_ATTACH_LOCKED 0x4u       /* its process took the liveness lock */
#define SHK_ATTACH_UNTESTED                                                    \
	0x8u /* alive only because it cannot be tested
				      * from here (another PID namespace,
				      * no liveness lock to ask) */

typedef struct shk_attach_info {
	uint32_t size;
	uint32_t slot;
	uint32_t pid;
	uint32_t alive;       /* 1 if the process still runs (see flags) */
	uint64_t start_ticks; /* /proc/PID/stat field 22 */
	uint32_t generation;
	uint32_t flags; /* SHK_ATTACH_* (formerly `reserved`, always 0) */
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
 * shk_alloc allocates len bytes (1 .. the heap's size) from the segment's
 * shared heap and stores the block's offset from the segment base in *off
 * (0 on failure).  Every block is 16-byte aligned; blocks of 1 KiB and more
 * are 64-byte aligned.  Any process
 * attached to the segment may free the block.  Returns 0, SHK_EINVAL
 * (len 0, NULL arguments), SHK_EPERM (SHK_RDONLY handle), SHK_ENOMEM (no
 * room; the heap stays consistent), SHK_ECORRUPT (damaged heap metadata),
 * SHK_ETIMEDOUT (the heap lock stayed held by a live process for 10 s).
 * Thread- and process-safe.  Sizes up to 16 KiB (less in heaps under
 * 4 MiB) are lock-free; larger ones, and refilling a size class, take the
 * heap's robust lock, repairing the heap if its holder died.  A process
 * killed inside shk_alloc leaks at most one block.
 */
SHK_API int shk_alloc(shk_seg *seg, size_t len, uint64_t *off);

/*
 * shk_free returns the block at off to the heap.  A double free, an offset
 * that is not the start of a live block (inside a block, unaligned, never
 * allocated), or one outside the heap returns SHK_EINVAL and changes
 * nothing; SHK_EPERM on a SHK_RDONLY handle; SHK_ECORRUPT for damaged heap
 * metadata.  Thread- and process-safe, lock-free for small blocks.
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
/*
 * shk_heap_stats is filled by shk_heap_info.  Byte counts are block sizes
 * (a large block's count includes its 16-byte header).
 *   nclasses    size classes in use (the rest of the arrays is zero)
 *   used        bytes in live blocks
 *   free        bytes that can still be handed out: free large blocks plus
 *               free room in the runs of each size class (room in a class's
 *               runs serves only that class, until a run whose blocks are
 *               all free goes back to the large blocks when an allocation
 *               runs short: docs/heap.md, Giving runs back)
 *   high_water  peak of bytes taken from the heap's block chain by large
 *               blocks and size-class runs (a footprint: >= peak of used)
 *   nallocs     live blocks
 *   class_size  block size of each class; class_used: its live blocks
 * Figures are snapshots taken without a lock; a process killed inside
 * shk_alloc or shk_free may leave them off by one block.
 */
typedef struct shk_heap_stats {
	uint32_t size;
	uint32_t nclasses;
	uint64_t heap_len;
	uint64_t used;
	uint64_t free;
	uint64_t high_water;
	uint64_t nallocs;
	uint64_t class_size[SHK_HEAP_NCLASSES];
	uint64_t class_used[SHK_HEAP_NCLASSES];
} shk_heap_stats;

/*
 * shk_heap_info fills *st (the caller sets st->size to at least
 * sizeof(*st); it is set to sizeof(*st)).  Returns 0 or SHK_EINVAL.
 * Read-only and lock-free; works on SHK_RDONLY handles.
 */
SHK_API int shk_heap_info(shk_seg *seg, shk_heap_stats *st);

/* ------------------------------------------------------------------ */
/* Registry: named, typed objects                                      */
/* ------------------------------------------------------------------ */

enum shk_kind {
	SHK_KIND_NONE = 0,
	SHK_KIND_BLOB = 1, /* raw bytes: elem_len * cap */
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

#define SHK_OBJ_DESC_INIT SHK__INIT(shk_obj_desc)

/* shk_obj_info describes an existing object (registry entry). */
typedef struct shk_obj_info {
	uint32_t size;
	uint32_t kind;
	uint64_t type_id;
	uint64_t elem_len;
	uint64_t align;
	uint64_t cap;
	uint64_t off; /* object memory: offset from the segment base */
	uint64_t len; /* object memory: bytes */
	/* CLOCK_REALTIME ns at creation; one ns after the slot's previous
	 * object when the clock reads no later than that, by less than a
	 * second (a coarse tick or a small step back): so up to a second
	 * ahead of the clock */
	uint64_t created_ns;
	uint32_t creator_pid;
	uint32_t slot; /* registry entry index */
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
 * open calls, which go through the same registry.  A segment handle
 * opened SHK_RDONLY may open an existing object here (without the registry
 * lock, as shk_obj_stat; the memory is mapped read-only, so a write to it
 * faults); SHK_CREATE on it is SHK_EPERM, and so is every structure's open
 * (shk_ring_open, shk_array_open, ...: attaching writes).  Codes:
 * SHK_EINVAL, SHK_ENAMETOOLONG, SHK_ENOENT, SHK_EEXIST, SHK_ETYPE,
 * SHK_ENOMEM (heap), SHK_ENOSPC (registry full), SHK_ECORRUPT (a damaged
 * entry, such as a blob whose elem_len * cap exceeds its len, or object),
 * SHK_EPERM, SHK_EAGAIN (read-only handle: the entry kept changing under
 * the lookup).  Thread- and process-safe.
 */
SHK_API int shk_obj_open(shk_seg *seg, const char *name, unsigned flags,
			 const shk_obj_desc *desc, shk_obj_info *info,
			 void **ptr);

/*
 * shk_obj_stat fills *info for `name`.  SHK_ENOENT when missing, and so
 * is a name whose creator died mid-creation.  A name still being created
 * is SHK_ENOENT on a SHK_RDONLY handle (an object exists once its
 * creation completes); a writable handle waits for the registry lock that
 * the creator holds, then finds the object (or SHK_ETIMEDOUT).  Also
 * SHK_EINVAL, SHK_ENAMETOOLONG, SHK_ECORRUPT (a damaged entry), and on a
 * SHK_RDONLY handle (which looks up without the registry lock) SHK_EAGAIN
 * when the entry kept changing under the lookup.
 */
SHK_API int shk_obj_stat(shk_seg *seg, const char *name, shk_obj_info *info);

/*
 * shk_obj_next iterates the registry: start with *cursor = 0; each call
 * that returns 1 fills *info and advances *cursor; 0 means the end.
 * Entries being created or removed concurrently may be skipped.  An entry
 * that fails the checks shk_obj_stat applies (offset and length inside the
 * heap, a valid kind and name, a known state, a blob's elem_len * cap
 * within len) gives SHK_ECORRUPT: *info
 * then holds its raw fields (name NUL-terminated) and *cursor is past it,
 * so the caller may report it and go on.  SHK_EINVAL for NULL arguments
 * or info->size too small.  Thread-safe; lock-free, no system call.
 */
SHK_API int shk_obj_next(shk_seg *seg, uint32_t *cursor, shk_obj_info *info);

/*
 * shk_obj_remove deletes the entry `name` and returns its memory to the
 * heap, unless the object records a party that is alive, which gives
 * SHK_EBUSY and removes nothing.  Parties are recorded, and so counted,
 * by these kinds only:
 *   ring     its producer and its consumer (open handles);
 *   bcast    its writer and each reader (open handles);
 *   mutex    its holder;  rwlock  its writer and every reader holding it;
 *   once     a process running its function;
 *   channel  the parties of its parts (pair rings, pub/sub bcast);
 *   and a thread asleep in a blocking call on a sync object, queue or
 *   stack, or a descriptor armed on one (each waitpoint records up to ten;
 *   more may go unseen).
 * A party counts while its process lives, this process's own handles
 * included (close them first); the records of processes that died do not
 * count.  A party that cannot be proven dead counts as alive and keeps
 * the object SHK_EBUSY until it can, possibly for good: a record from
 * another PID namespace without a liveness lock (System V segments, no
 * /proc or OFD locks), or a dead party whose pid now runs a process it
 * cannot be told from: one whose /proc entry is hidden (hidepid) or
 * missing, or any process when the party was of another time namespace
 * (judged by pid alone).  SHK_FORCE removes it anyway.  Every other kind
 * (blob, array, map, pool, and a handle merely open on a queue, stack or
 * sync object, or on a push/pull channel) records no parties: there the
 * precondition stays the caller's, as before 2026-11-25 for every kind:
 * remove an object only when no one uses it, since handles still open on
 * it become invalid and write into whatever reuses its memory.  A role or
 * reader slot is recorded under the registry lock, so a concurrent open
 * either is seen here or finds the object gone; a lock taken, or a sleep
 * begun, through a handle opened earlier is recorded without it, and is
 * seen only once recorded.
 * A channel's control block (kind SHK_KIND_CHAN) takes its parts with it
 * (shk_chan_open), removed first under the same hold of the registry
 * lock.  Returns 0, SHK_EBUSY, SHK_ENOENT, SHK_EINVAL, SHK_ETIMEDOUT and
 * SHK_ENOTRECOVERABLE (the registry lock), or SHK_EPERM on a SHK_RDONLY
 * handle (SHK_EINVAL until 2026-11-24).  Thread- and process-safe; makes
 * system calls (liveness tests) for each party recorded.
 */
SHK_API int shk_obj_remove(shk_seg *seg, const char *name);

/* Flags of shk_obj_remove_flags. */
/* its own bit, apart from the open flags (SHK_ANY_OWNER is 0x8u) */
#define SHK_FORCE 0x10u /* remove even while live parties are recorded */

/*
 * shk_obj_remove_flags is shk_obj_remove with flags: 0 (the same call) or
 * SHK_FORCE, which removes the object whatever parties it records (a
 * recovery tool for a stuck process, `shmkit rm --object --force`).  The
 * handles of those parties become invalid.  A ring's or bcast's handle
 * tests its registry entry (lock-free, no system call): a call asleep
 * returns SHK_ENOENT when it wakes, at the latest at its dead-peer test
 * (50 ms; a reliable bcast writer's reader_timeout_ns), without writing
 * to the memory or reading it as the object's, and close (its descriptor
 * included) leaves the memory alone.  A removal that lands between such
 * a test and the writes after it is not seen: a sleeper's waiter count
 * and holder entry (a few instructions after its wake-up test, or before
 * its sleep), and the flush, role release and descriptor disarm of a
 * close; close handles before a forced removal where you can.  Its calls
 * that do not sleep, and a SHK_RING_SPIN ring's polling waits until their
 * dead-peer test, keep reading and writing the freed memory, and every
 * other kind's handles do so on every call, close and a sleeper's
 * wake-up included.  The entry test names the object by slot, offset,
 * creation time and name hash; a later object of the slot gets a later
 * creation time (shk_obj_info) unless the clock stepped back by a second
 * or more, when an object created at exactly the same ns, offset and name
 * would pass for the removed one.
 * Other flags are SHK_EINVAL.  Codes and safety as shk_obj_remove.
 */
SHK_API int shk_obj_remove_flags(shk_seg *seg, const char *name,
				 unsigned flags);

/*
 * shk_obj_describe writes a one-line description of the object's live state
 * (for example "fill=12/1024 waiters=0", or "locked owner=1234(alive)") into
 * buf (NUL-terminated, truncated to len).  Read-only; works on SHK_RDONLY
 * handles.  Returns the length written, SHK_EINVAL, SHK_ECORRUPT when
 * the object fails its consistency check, or SHK_ENOENT when the entry
 * info was copied from no longer holds that object (removed since, its
 * memory perhaps reused).  Kinds without live state write an empty string.
 */
SHK_API int shk_obj_describe(shk_seg *seg, const shk_obj_info *info, char *buf,
			     size_t len);

/* ==== structures (issue 3): array and map ==== */

/*
 * Arrays: a fixed number of fixed-size elements that every process sees at
 * the same offsets.  shk_array_data gives a direct pointer for plain access
 * (the caller orders it); the shk_array_*_u32/u64 calls are atomic on 4- and
 * 8-byte elements.  Memory orders: loads are acquire, stores release, and
 * the read-modify-writes (fetch_add, cas) seq_cst.  Acquire/release is what
 * passing data through the array needs ("fill elements, then store a flag";
 * "load the flag, then read them") and costs nothing extra on x86-64 loads
 * and stores; seq_cst on the RMWs is free on x86-64 and ARMv8 (the same
 * instruction as acq_rel) and makes every RMW part of one total order, so a
 * store-then-load handshake (Dekker) can be written with RMWs.
 */
typedef struct shk_array shk_array;

/*
 * shk_array_opts configures shk_array_open.  Initialise with
 * SHK_ARRAY_OPTS_INIT.
 *   size      sizeof(shk_array_opts) (0 is SHK_EINVAL)
 *   elem_len  bytes per element, 1 .. 1 MiB; required to create; on open 0
 *             accepts the stored value, else it must match (SHK_ETYPE)
 *   len       number of elements; required to create; on open 0 accepts
 *             the stored value, else it must match (SHK_ETYPE)
 *   type_id   the user's type tag, stored on create, must match on open
 *             (SHK_ETYPE)
 */
typedef struct shk_array_opts {
	uint32_t size;
	uint32_t elem_len;
	uint64_t len;
	uint64_t type_id;
} shk_array_opts;

#define SHK_ARRAY_OPTS_INIT SHK__INIT(shk_array_opts)

/*
 * shk_array_open opens the array `name` in seg, creating it zero-filled
 * when flags has SHK_CREATE (racing creators get one array; SHK_EXCL makes
 * an existing one SHK_EEXIST).  NULL opts opens an existing array with
 * type_id 0 as it is.  Elements start 64 bytes into the object, so they are
 * 64-byte aligned.  Returns 0 and *out, or SHK_EINVAL (bad arguments,
 * missing len/elem_len on create), SHK_EPERM (read-only segment handle:
 * shk_obj_open gives such a handle the elements), SHK_ENAMETOOLONG,
 * SHK_ENOENT, SHK_EEXIST, SHK_ETYPE (kind, type_id, elem_len or len
 * differ), SHK_ENOMEM (heap), SHK_ENOSPC (registry full),
 * SHK_ECORRUPT (the stored header is damaged).  *out is NULL on failure.
 * Thread- and process-safe; may block briefly on the registry lock.
 */
SHK_API int shk_array_open(shk_seg *seg, const char *name, unsigned flags,
			   const shk_array_opts *opts, shk_array **out);

/*
 * shk_array_close frees the handle (the shared array stays).  NULL is a
 * no-op.  The pointer from shk_array_data is invalid afterwards.
 */
SHK_API void shk_array_close(shk_array *a);

/*
 * shk_array_data returns the address of element 0 in this process (NULL
 * for a NULL handle).  Plain reads and writes through it are not ordered
 * with other processes: use the atomic calls below, or your own atomics,
 * to publish data.  Valid until shk_array_close.
 */
SHK_API void *shk_array_data(shk_array *a);

/* shk_array_len returns the number of elements (0 for NULL). */
SHK_API uint64_t shk_array_len(const shk_array *a);

/* shk_array_elem_len returns the element size in bytes (0 for NULL). */
SHK_API uint32_t shk_array_elem_len(const shk_array *a);

/*
 * shk_array_load_u32 / shk_array_load_u64 atomically read element idx
 * (acquire) into *out.  The element size must be 4 (resp. 8) bytes:
 * otherwise SHK_ETYPE.  Returns 0, SHK_EINVAL (NULL argument), SHK_ERANGE
 * (idx >= length).  Lock-free, wait-free, no system call; thread-,
 * process- and async-signal-safe.
 */
SHK_API int shk_array_load_u32(shk_array *a, uint64_t idx, uint32_t *out);
SHK_API int shk_array_load_u64(shk_array *a, uint64_t idx, uint64_t *out);

/*
 * shk_array_store_u32 / shk_array_store_u64 atomically write v to element
 * idx (release: everything this thread wrote before is visible to whoever
 * loads v).  Codes and guarantees as shk_array_load_u32.
 */
SHK_API int shk_array_store_u32(shk_array *a, uint64_t idx, uint32_t v);
SHK_API int shk_array_store_u64(shk_array *a, uint64_t idx, uint64_t v);

/*
 * shk_array_fetch_add_u32 / shk_array_fetch_add_u64 atomically add delta
 * to element idx (wrapping modulo 2^32 / 2^64; subtract by adding the
 * two's complement) and store the previous value in *old when old is not
 * NULL.  seq_cst.  Codes and guarantees as shk_array_load_u32.
 */
SHK_API int shk_array_fetch_add_u32(shk_array *a, uint64_t idx, uint32_t delta,
				    uint32_t *old);
SHK_API int shk_array_fetch_add_u64(shk_array *a, uint64_t idx, uint64_t delta,
				    uint64_t *old);

/*
 * shk_array_cas_u32 / shk_array_cas_u64 atomically replace element idx by
 * desired if it equals *expected (strong compare-and-swap, seq_cst).
 * Returns 1 when it swapped; 0 when it did not, with the current value
 * stored in *expected; SHK_EINVAL, SHK_ERANGE or SHK_ETYPE as
 * shk_array_load_u32.  Lock-free; thread-, process- and
 * async-signal-safe.
 */
SHK_API int shk_array_cas_u32(shk_array *a, uint64_t idx, uint32_t *expected,
			      uint32_t desired);
SHK_API int shk_array_cas_u64(shk_array *a, uint64_t idx, uint64_t *expected,
			      uint64_t desired);

/*
 * Maps: a fixed-capacity hash map of fixed-size keys and values (open
 * addressing, linear probing).  Keys are compared as bytes.  Readers take
 * no lock and never block writers; a read of a value being written never
 * returns a torn value.  Writers of keys that hash to the same stripe (one
 * of up to 64) serialise on that stripe's robust lock, which also keeps
 * two concurrent puts of one key from making two entries.  A writer killed
 * mid-write blocks readers of its key for a bounded time (a 50 ms wait,
 * then the robust lock's dead-owner detection), after which the key reads
 * as absent.  With val_len 0 a map is a set.
 * docs/map.md has the details.
 */
typedef struct shk_map shk_map;

/*
 * shk_map_opts configures shk_map_open.  Initialise with SHK_MAP_OPTS_INIT.
 *   size     sizeof(shk_map_opts) (0 is SHK_EINVAL)
 *   key_len  key bytes, 1 .. 4096; required to create.  On open, 0 opens
 *            the map with whatever key_len and val_len it has; nonzero
 *            key_len and val_len must both match (SHK_ETYPE)
 *   val_len  value bytes, 0 .. 1 MiB (0: a set); a nonzero val_len with
 *            key_len 0 is SHK_EINVAL (on open as on create)
 *   cap      slots, rounded up to a power of two, at most 2^30; required
 *            to create; on open 0 accepts the stored value.  Keep the load
 *            below about 3/4: probes get long near full
 *   type_id  the user's type tag, stored on create, must match on open
 */
typedef struct shk_map_opts {
	uint32_t size;
	uint32_t key_len;
	uint32_t val_len;
	uint32_t reserved;
	uint64_t cap;
	uint64_t type_id;
} shk_map_opts;

#define SHK_MAP_OPTS_INIT SHK__INIT(shk_map_opts)

/*
 * shk_map_open opens the map `name` in seg, creating it empty when flags
 * has SHK_CREATE (racing creators get one map; SHK_EXCL makes an existing
 * one SHK_EEXIST).  Returns 0 and *out, or SHK_EINVAL (bad arguments, no
 * key_len or cap to create with), SHK_EPERM (read-only segment handle),
 * SHK_ENAMETOOLONG, SHK_ENOENT, SHK_EEXIST, SHK_ETYPE (kind, type_id,
 * key_len, val_len or cap differ), SHK_ENOMEM, SHK_ENOSPC (registry full),
 * SHK_ECORRUPT.  *out is NULL on failure.  Opening checks every slot's
 * control word: O(cap).  Thread- and process-safe.
 */
SHK_API int shk_map_open(shk_seg *seg, const char *name, unsigned flags,
			 const shk_map_opts *opts, shk_map **out);

/* shk_map_close frees the handle (the map stays).  NULL is a no-op. */
SHK_API void shk_map_close(shk_map *m);

/*
 * shk_map_get copies the value of key (key_len bytes) into val_out
 * (val_len bytes; NULL only tests whether key is present).  Returns 0 when found,
 * SHK_ENOENT when not, SHK_EAGAIN when the key's slot stayed busy for
 * about 50 ms under a live writer, or its writer died and the key's stripe
 * stayed held by a live process for about 50 ms more, or a slot on the
 * key's probe run kept changing for 50 ms (200 ms of waits in all per
 * call; retry),
 * SHK_ECORRUPT (damaged slot),
 * SHK_EINVAL.  Never returns a torn value; on an error val_out's contents
 * are unspecified.  Lock-free against writers of other keys; no system
 * call unless it has to wait for a writer of the same key; takes the
 * key's stripe lock only to repair after a dead writer.  Thread- and
 * process-safe.
 */
SHK_API int shk_map_get(shk_map *m, const void *key, void *val_out);

/*
 * shk_map_put inserts key with value val (val_len bytes; NULL for a set),
 * or replaces the value of an existing key.  Returns 0 when it inserted, 1
 * when it replaced, SHK_ENOSPC when the key is new and no slot is free,
 * SHK_ETIMEDOUT when the key's stripe stayed locked by a live writer for
 * 5 s (a stopped process), SHK_EAGAIN when a slot on the key's probe run
 * kept changing for 50 ms (retry), SHK_EDEADLK (a signal handler whose
 * thread it interrupted holds the key's stripe: docs/map.md),
 * SHK_ENOTRECOVERABLE, SHK_ECORRUPT, SHK_EINVAL.
 * It holds the key's stripe lock for the copy; a dead previous holder is
 * detected within about 20 ms and its half-written slot repaired first.
 * A put or delete whose scan passed many tombstones (counted per map, by
 * every process) may then run one sweep step (a KMPE map: every stripe
 * held while it walks 4096 slots and the run above them; once, where the
 * map has no EMPTY slot, up to 2 cap slots; docs/map.md, Sweeps).
 * Thread- and process-safe; a handle may be shared by threads.
 */
SHK_API int shk_map_put(shk_map *m, const void *key, const void *val);

/*
 * shk_map_delete removes key.  Returns 0, SHK_ENOENT, or the codes of
 * shk_map_put.  The slot becomes a tombstone that later inserts reuse and
 * sweeps clear.
 */
SHK_API int shk_map_delete(shk_map *m, const void *key);

/*
 * shk_map_next iterates: set *cursor to 0, then each call that returns 1
 * copies one entry's key into key_out and value into val_out (either may
 * be NULL) and advances *cursor; 0 means the end.  A key that is neither
 * inserted nor deleted during the iteration is returned exactly once;
 * keys written concurrently may or may not be.  SHK_EAGAIN leaves *cursor
 * at a slot that stayed busy (call again), SHK_ECORRUPT, SHK_EINVAL.
 * Lock-free like shk_map_get.
 */
SHK_API int shk_map_next(shk_map *m, uint32_t *cursor, void *key_out,
			 void *val_out);

/*
 * shk_map_count returns the number of entries (exact when no write is in
 * progress; after a writer died, exact again once its stripe is taken
 * over), SHK_EINVAL or SHK_ECORRUPT.  O(stripes), lock-free.
 */
SHK_API int shk_map_count(shk_map *m);

/* shk_map_cap returns the number of slots (0 for NULL). */
SHK_API uint64_t shk_map_cap(const shk_map *m);

/*
 * shk_map_key_len and shk_map_val_len return the handle's key and value
 * sizes in bytes (0 for NULL; val_len 0 is also a set): the bytes that
 * shk_map_get and shk_map_next copy out, whatever the opts gave (a map
 * opened with key_len 0 takes the stored sizes).  Fixed for the handle.
 */
SHK_API uint32_t shk_map_key_len(const shk_map *m);
SHK_API uint32_t shk_map_val_len(const shk_map *m);

/* ---- (end of array and map) ---- */
/* ---- (space between sections: keep) ---- */

/* ==== structures (issue 3): ring and bcast ==== */

/*
 * Rings: one producer, one consumer, variable-size records (docs/ring.md).
 * Records are length-prefixed and contiguous in the ring's memory, so both
 * sides can work in place: shk_ring_reserve -> write -> shk_ring_commit,
 * and shk_ring_peek -> read -> shk_ring_release.  Order is kept; a record
 * becomes visible to the consumer whole or not at all.
 */
typedef struct shk_ring shk_ring;

/* Roles for shk_ring_open. */
#define SHK_RING_PRODUCER 1
#define SHK_RING_CONSUMER 2

/* shk_ring_opts.flags: batch publication (per handle, not stored). */
#define SHK_RING_BATCH 0x1u
/*
 * shk_ring_opts.flags: spin mode, a property of the ring fixed when it is
 * created; every open must pass it exactly when the ring has it
 * (SHK_ETYPE otherwise).  Neither side ever sleeps, so a publication
 * skips the full fence and the sleeper check that waking needs: for
 * parties that busy-poll on cores of their own.  Blocking calls
 * (timeout_ns != 0) poll until the deadline, yielding the CPU once the
 * spin budget (SHK_SPIN_NS) is spent, and still report a dead peer;
 * shk_ring_fd returns SHK_ENOTSUP.
 */
#define SHK_RING_SPIN 0x2u

/*
 * shk_ring_opts configures shk_ring_open.  Initialise with
 * SHK_RING_OPTS_INIT; zero fields mean the default (or, when opening an
 * existing ring, "accept what is stored").
 *   size        sizeof(shk_ring_opts) (0 is SHK_EINVAL)
 *   flags       SHK_RING_BATCH: publish commits and releases in batches
 *               (see shk_ring_flush); default: publish each one at once.
 *               SHK_RING_SPIN: create (or open) a spin-mode ring
 *   cap         data bytes, a power of two from 64 to 2^32 (default 64 KiB;
 *               with max_record given and cap 0, a new ring's cap is 64 KiB
 *               doubled until max_record fits, at most 2^32)
 *   max_record  largest record payload in bytes, at most cap/2 - 8
 *               (default cap/2 - 8); must match the stored value on open
 *   type_id     the user's type tag; must match the stored value on open
 */
typedef struct shk_ring_opts {
	uint32_t size;
	uint32_t flags;
	uint64_t cap;
	uint64_t max_record;
	uint64_t type_id;
} shk_ring_opts;

#define SHK_RING_OPTS_INIT SHK__INIT(shk_ring_opts)

/*
 * shk_ring_open creates (flags SHK_CREATE, SHK_EXCL as for shk_seg_open)
 * or opens the ring `name` in seg and attaches to it in one role,
 * SHK_RING_PRODUCER or SHK_RING_CONSUMER.  Each role has one owner at a
 * time, recorded in the ring by the attach's owner stamp: opening a role
 * whose owner is alive returns SHK_EBUSY; a role whose owner died (or
 * closed) is taken over after the ring's counters are validated.  opts may
 * be NULL (defaults).  The role is claimed under the registry lock, so
 * while it is held shk_obj_remove of the ring is SHK_EBUSY; a ring removed
 * between the lookup and the claim is SHK_ENOENT, or with SHK_CREATE made
 * again.  Returns 0 and *out, or SHK_EINVAL, SHK_EPERM (read-only segment
 * handle), SHK_ENOENT, SHK_EEXIST, SHK_ETYPE (another kind, type_id, cap
 * or max_record), SHK_EBUSY, SHK_ENOMEM, SHK_ENOSPC (registry full),
 * SHK_ECORRUPT (bad control block), SHK_EAGAIN (SHK_CREATE: the ring
 * kept being removed under the open, 16 times), SHK_ETIMEDOUT and
 * SHK_ENOTRECOVERABLE (the registry lock: held by a live process for 5 s,
 * or left unrecoverable).  On failure *out is NULL.
 * Thread- and process-safe; the handle itself is used by one thread at a
 * time.
 */
SHK_API int shk_ring_open(shk_seg *seg, const char *name, unsigned flags,
			  int role, const shk_ring_opts *opts, shk_ring **out);

/*
 * shk_ring_reserve (producer) reserves room for one record of len bytes
 * (0 .. max_record) and returns where to write it in *buf (8-byte
 * aligned, valid until shk_ring_commit or close).  Nothing is visible to
 * the consumer before the commit.  Blocks while the ring is full, up to
 * timeout_ns.  Returns 0, SHK_EMSGSIZE (len > max_record), SHK_EAGAIN
 * (timeout 0 and full), SHK_ETIMEDOUT, SHK_EPEERDEAD (the consumer died
 * while we waited; a new consumer may take over, so retrying is allowed),
 * SHK_ENOENT (the ring was removed with SHK_FORCE while we waited; the
 * handle is good only for close), SHK_EINVAL (not the producer, or a
 * reservation is already open), SHK_ECORRUPT.  Wait-free when there is
 * room; no system call unless it sleeps.
 */
SHK_API int shk_ring_reserve(shk_ring *r, size_t len, void **buf,
			     int64_t timeout_ns);

/*
 * shk_ring_commit (producer) completes the open reservation.  Without
 * SHK_RING_BATCH the record is published at once (one release store, plus
 * a wake-up system call only when the consumer sleeps or polls).  With
 * SHK_RING_BATCH it is published once 32 records or cap/4 bytes are
 * pending, or when the consumer has caught up with the last publication
 * (it may be asleep), and always by shk_ring_flush, by a reserve that must
 * wait, and by close: a batching producer calls shk_ring_flush before it
 * goes idle.  Returns 0, or SHK_EINVAL (no reservation).  Wait-free.
 */
SHK_API int shk_ring_commit(shk_ring *r);

/*
 * shk_ring_flush publishes what this handle has pending: the producer's
 * committed records, or the consumer's released space.  Call it in
 * SHK_RING_BATCH mode before the producer goes idle.  Returns 0 or
 * SHK_EINVAL.  Wait-free.
 */
SHK_API int shk_ring_flush(shk_ring *r);

/*
 * shk_ring_peek (consumer) returns the oldest record in place: *buf points
 * to its payload (valid until shk_ring_release or close) and *len is its
 * length.  Peeking again before the release returns the same record.
 * Blocks while the ring is empty, up to timeout_ns.  Returns 0,
 * SHK_EAGAIN, SHK_ETIMEDOUT, SHK_EPEERDEAD (the producer died while we
 * waited), SHK_ENOENT (removed with SHK_FORCE while we waited, as
 * shk_ring_reserve), SHK_EINVAL (not the consumer), SHK_ECORRUPT (a record
 * header out of bounds).  Wait-free when data is there.
 */
SHK_API int shk_ring_peek(shk_ring *r, const void **buf, size_t *len,
			  int64_t timeout_ns);

/*
 * shk_ring_release (consumer) frees the record returned by the last
 * shk_ring_peek.  Without SHK_RING_BATCH the space is published at once;
 * with it, after 32 records or cap/4 bytes, when a peek finds the ring
 * empty, and by flush and close: a batching consumer that stops reading
 * while records remain calls shk_ring_flush, or a producer waiting for
 * that space keeps waiting.  Returns 0 or SHK_EINVAL (nothing peeked).
 * Wait-free.
 */
SHK_API int shk_ring_release(shk_ring *r);

/*
 * shk_ring_write (producer) copies len bytes from buf into one record:
 * reserve + memcpy + commit.  Codes as shk_ring_reserve.
 */
SHK_API int shk_ring_write(shk_ring *r, const void *buf, size_t len,
			   int64_t timeout_ns);

/*
 * shk_ring_read (consumer) copies the oldest record into buf (buf_cap
 * bytes) and releases it; returns its length.  A record longer than
 * buf_cap is left in the ring and SHK_EMSGSIZE returned.  Other codes as
 * shk_ring_peek.
 */
SHK_API int shk_ring_read(shk_ring *r, void *buf, size_t buf_cap,
			  int64_t timeout_ns);

/*
 * shk_ring_fd (consumer) returns a file descriptor, owned by the handle,
 * that polls readable (poll/epoll, EPOLLIN) when the ring may hold data.
 * Use it with non-blocking reads: a read or peek with timeout 0 that finds
 * the ring empty empties and arms the descriptor (readable again at once
 * if data came meanwhile; the empty is skipped, with its system call,
 * when nothing was signalled since the last one), so a stale signal
 * costs one readable poll (at most 64 in a rare race), not a spinning
 * loop; consuming clears it.  The producer
 * signals only an armed consumer, so the busy path makes no system call.
 * Returns the descriptor, SHK_EINVAL (not the consumer), SHK_ENOTSUP (a
 * SHK_RING_SPIN ring: nobody would signal it), SHK_EBUSY or an
 * errno-mapped code.  Every *_fd call follows one rule: one pollable
 * descriptor per object per segment handle (shk_seg).  While another
 * handle opened through the same shk_seg (or a forked child's copy of one)
 * holds a descriptor for the object, the call returns SHK_EBUSY and that
 * descriptor keeps working; open the segment again for another.  And every
 * *_fd descriptor (ring, bcast, queue, sem, event, chan) is signalled only
 * by publishers that run as the listener's own real uid: the waker looks
 * for the listener's socket under /tmp/shmkit-UID with its own uid, so a
 * write, post or set by another user's process (a segment shared with
 * seg_mode and SHK_ANY_OWNER) leaves the descriptor unreadable although
 * the data is there.  With publishers of another uid, use blocking calls,
 * or poll with a finite timeout and try a read when it expires.
 */
SHK_API int shk_ring_fd(shk_ring *r);

/*
 * shk_ring_close publishes what is pending, gives up the role and frees
 * the handle.  An open reservation is dropped; a record peeked but not
 * released will be delivered again to the next consumer.  NULL is a no-op.
 * In a forked child, closing its copy of the parent's handle only frees
 * it (fork policy above): the parent keeps the role and its position.
 * The handle of a ring removed with SHK_FORCE (shk_obj_remove_flags)
 * writes nothing to its old memory: its descriptor (shk_ring_fd) is
 * closed without a disarm there, and nothing is flushed or given back.
 */
SHK_API void shk_ring_close(shk_ring *r);

/*
 * shk_ring_stats is filled by shk_ring_stat (fixed-width fields).
 *   cap, max_record  as created
 *   head, tail       published free-running byte counters
 *   fill             tail - head: bytes of published, unreleased records
 *                    (headers and padding included)
 *   producer, consumer  1 if the role has a live owner
 *   waiters          sleepers on the ring (both sides)
 */
typedef struct shk_ring_stats {
	uint32_t size;
	uint32_t max_record;
	uint64_t cap;
	uint64_t head;
	uint64_t tail;
	uint64_t fill;
	uint32_t producer;
	uint32_t consumer;
	uint32_t waiters;
	uint32_t reserved;
} shk_ring_stats;

/*
 * shk_ring_stat fills *st (caller sets st->size) with a snapshot of the
 * ring's published state.  Returns 0 or SHK_EINVAL.  Thread-safe; makes
 * system calls (liveness tests).
 */
SHK_API int shk_ring_stat(shk_ring *r, shk_ring_stats *st);

/*
 * Broadcast buffers: one writer, many readers, each reader with its own
 * cursor (docs/bcast.md).  Readers may join at any time; they start with
 * the next record written.  In lossy mode the writer never waits and a
 * reader that falls more than the capacity behind skips ahead and learns
 * how many records it lost; in reliable mode the writer waits for the
 * slowest attached reader.
 */
typedef struct shk_bcast shk_bcast;

/* Roles for shk_bcast_open. */
#define SHK_BCAST_WRITER 1
#define SHK_BCAST_READER 2

/* Modes (shk_bcast_opts.mode). */
#define SHK_BCAST_LOSSY 1
#define SHK_BCAST_RELIABLE 2

/*
 * shk_bcast_opts configures shk_bcast_open.  Initialise with
 * SHK_BCAST_OPTS_INIT; zero fields mean the default (or, when opening an
 * existing buffer, "accept what is stored").
 *   size        sizeof(shk_bcast_opts) (0 is SHK_EINVAL)
 *   mode        SHK_BCAST_LOSSY (default) or SHK_BCAST_RELIABLE
 *   cap         data bytes, a power of two from 128 to 2^32 (default
 *               64 KiB; with max_record given and cap 0, a new buffer's
 *               cap is 64 KiB doubled until max_record fits, at most 2^32)
 *   max_record  largest payload in bytes, at most cap/2 - 16 (default
 *               cap/2 - 16)
 *   type_id     the user's type tag; must match the stored value on open
 *   max_readers reader slots (default 16, at most 1024)
 *   reader_timeout_ns  reliable writer: how long it waits for a reader
 *               before testing whether that reader's process died
 *               (default 100 ms; per handle, not stored).  Any value up
 *               to INT64_MAX is accepted; INT64_MAX (or any value that
 *               reaches past INT64_MAX on CLOCK_MONOTONIC) never tests, so
 *               a dead reader blocks the writer for good.  Negative:
 *               SHK_EINVAL
 */
typedef struct shk_bcast_opts {
	uint32_t size;
	uint32_t mode;
	uint64_t cap;
	uint64_t max_record;
	uint64_t type_id;
	uint32_t max_readers;
	uint32_t reserved;
	int64_t reader_timeout_ns;
} shk_bcast_opts;

#define SHK_BCAST_OPTS_INIT SHK__INIT(shk_bcast_opts)

/*
 * shk_bcast_open creates (SHK_CREATE, SHK_EXCL) or opens the broadcast
 * buffer `name` in seg and attaches in one role.  SHK_BCAST_WRITER has one
 * owner at a time (SHK_EBUSY while it lives; taken over from a dead or
 * closed owner after the counters are validated).  SHK_BCAST_READER
 * claims a reader slot (SHK_EBUSY when all max_readers are held by live
 * processes) and starts at the current end: it receives the records
 * written after the open.  opts may be NULL.  The role or slot is
 * claimed under the registry lock, as in shk_ring_open (shk_obj_remove is
 * SHK_EBUSY while it is held).  Returns 0 and *out, or SHK_EINVAL (also
 * for SHK_EXCL without SHK_CREATE, or a flag bit other than those two),
 * SHK_EPERM (read-only segment handle), SHK_ENOENT, SHK_EEXIST, SHK_ETYPE
 * (another kind, type_id, cap, max_record, mode or max_readers),
 * SHK_EBUSY, SHK_ENOMEM, SHK_ENOSPC, SHK_ECORRUPT, SHK_EAGAIN,
 * SHK_ETIMEDOUT, SHK_ENOTRECOVERABLE (as shk_ring_open).  On failure *out
 * is NULL.  Thread- and process-safe; each handle is used by one thread at
 * a time.
 */
SHK_API int shk_bcast_open(shk_seg *seg, const char *name, unsigned flags,
			   int role, const shk_bcast_opts *opts,
			   shk_bcast **out);

/*
 * shk_bcast_write (writer) copies len bytes (0 .. max_record) from buf
 * into the next record and publishes it to every reader.  Lossy mode never
 * waits (wait-free).  Reliable mode waits, up to timeout_ns, while the
 * slowest attached reader is a capacity behind; a reader whose process
 * died is detached after reader_timeout_ns of waiting, so it cannot block
 * the writer forever (a stopped but live reader still blocks it).
 * Returns 0, SHK_EMSGSIZE, SHK_EAGAIN (timeout 0 and no room),
 * SHK_ETIMEDOUT, SHK_ENOENT (removed with SHK_FORCE while we waited, as
 * shk_ring_reserve), SHK_EINVAL (not the writer).  No system call unless
 * a reader sleeps or the writer waits.
 */
SHK_API int shk_bcast_write(shk_bcast *b, const void *buf, size_t len,
			    int64_t timeout_ns);

/*
 * shk_bcast_read (reader) copies the next record into buf (buf_cap bytes)
 * and returns its length.  *lost (when not NULL) receives how many records
 * this reader missed just before this one: always 0 in reliable mode; in
 * lossy mode, the records overwritten before the reader got to them (the
 * reader then resumes at the newest record).  One exception in both
 * modes: a writer killed inside its publication can leave the next
 * writer's first record counted 1 too high (docs/bcast.md, Dead peers).  A record longer than
 * buf_cap is not consumed: SHK_EMSGSIZE.  Blocks while there is nothing
 * new, up to timeout_ns.  Returns the length, SHK_EAGAIN (nothing new with
 * timeout 0, or the writer lapped the reader many times in a row),
 * SHK_ETIMEDOUT, SHK_EPEERDEAD (the writer died while we waited),
 * SHK_ENOENT (removed with SHK_FORCE while we waited, as
 * shk_ring_reserve), SHK_EINVAL (not a reader), SHK_ECORRUPT.  Lock-free:
 * never waits for the writer to finish a record.
 */
SHK_API int shk_bcast_read(shk_bcast *b, void *buf, size_t buf_cap,
			   uint64_t *lost, int64_t timeout_ns);

/*
 * shk_bcast_fd (reader) returns a file descriptor, owned by the handle,
 * that polls readable when new records may be there; as shk_ring_fd (a
 * read with timeout 0 that finds nothing arms it).  Returns the
 * descriptor, SHK_EINVAL (not a reader), SHK_EBUSY (another reader
 * through the same shk_seg has a descriptor: see shk_ring_fd) or an
 * errno-mapped code.  A writer of another uid does not signal it (see
 * shk_ring_fd).
 */
SHK_API int shk_bcast_fd(shk_bcast *b);

/*
 * shk_bcast_close gives up the role (a reader frees its slot, which
 * releases a reliable writer waiting for it) and frees the handle.  NULL
 * is a no-op.  In a forked child, closing its copy of the parent's handle
 * only frees it: the parent keeps the writer role or its slot.  A buffer
 * removed with SHK_FORCE: as shk_ring_close.
 */
SHK_API void shk_bcast_close(shk_bcast *b);

/*
 * shk_bcast_stats is filled by shk_bcast_stat (fixed-width fields).
 *   cap, max_record, mode, max_readers  as created
 *   tail       published free-running byte position
 *   next_seq   records published so far, consistent with tail: a reader
 *              that joins after the call starts at a sequence >= it
 *   readers    reader slots held (alive or not yet detected dead)
 *   writer     1 if the writer role has a live owner
 *   min_cursor the slowest active reader's position (tail if none)
 */
typedef struct shk_bcast_stats {
	uint32_t size;
	uint32_t max_record;
	uint64_t cap;
	uint32_t mode;
	uint32_t max_readers;
	uint64_t tail;
	uint64_t next_seq;
	uint32_t readers;
	uint32_t writer;
	uint64_t min_cursor;
} shk_bcast_stats;

/*
 * shk_bcast_stat fills *st (caller sets st->size) with a snapshot.
 * Returns 0 or SHK_EINVAL.  Thread-safe; makes system calls (liveness).
 */
SHK_API int shk_bcast_stat(shk_bcast *b, shk_bcast_stats *st);

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

#define SHK_QUEUE_OPTS_INIT SHK__INIT(shk_queue_opts)

/*
 * shk_queue_open opens the queue `name` in seg, creating it when flags has
 * SHK_CREATE (SHK_EXCL: fail with SHK_EEXIST if it exists).  The object
 * takes 320 bytes plus cap * (8 + elem_len rounded up to 8) bytes of the
 * segment's heap.  Racing creators get one queue.  Opening checks the kind,
 * type_id, elem_len and cap against opts (SHK_ETYPE on a mismatch) and
 * validates the queue's memory (SHK_ECORRUPT).  A zero elem_len or cap
 * (or NULL opts) accepts the stored value whenever the queue exists, with
 * SHK_CREATE too: the create defaults apply only to a new queue.  Returns
 * 0 and *out, or
 * SHK_EINVAL (NULL argument, bad opts), SHK_EPERM (read-only segment
 * handle), SHK_ENAMETOOLONG, SHK_ENOENT, SHK_EEXIST, SHK_ETYPE, SHK_ENOMEM,
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
 * producer (thread) are delivered in the order it pushed them, but for one
 * whose consumer died inside its pop (below).  Returns 0, SHK_EINVAL,
 * SHK_EAGAIN, SHK_ETIMEDOUT, SHK_ECORRUPT.  Thread- and process-safe;
 * lock-free among live parties, no system call unless a consumer sleeps.
 * Blocking spins briefly, then sleeps on a futex; a waiter re-tests every
 * 10 ms whether a dead party holds the slot it waits for, and repairs it:
 * a dead consumer's element is delivered again, as the element of this
 * position (after the cap - 1 behind it); a dead producer's is lost
 * (docs/queue.md).
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
 * then pop with timeout 0 until SHK_EAGAIN, which empties and re-arms it.
 * Spurious readiness is possible (another handle popped the element: one
 * readable poll); a missed one is not.  A producer that died while
 * holding the head is detected only by pops: poll with a finite timeout
 * (10 ms or more) and try a pop when it expires.  After this call, pop on
 * the handle from one thread at a time.  Returns the fd, or SHK_EINVAL or an
 * error from creating the doorbell (SHK_EBUSY: another handle through the
 * same shk_seg has a descriptor, see shk_ring_fd; SHK_ENOMEM, ...).  A
 * pusher of another uid does not signal it (see shk_ring_fd).
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
 *              alignment.  An opener's nonzero block_len is rounded the
 *              same way and must then equal the stored size (SHK_ETYPE)
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

#define SHK_POOL_OPTS_INIT SHK__INIT(shk_pool_opts)

/*
 * shk_pool_open opens the pool `name`, creating it with SHK_CREATE
 * (SHK_EXCL: SHK_EEXIST if present).  It takes 128 + 8 * cap bytes plus
 * cap blocks of the segment's heap.  Zero fields as shk_queue_open: the
 * stored values when the pool exists, with SHK_CREATE too; the defaults
 * only for a new pool.  Codes as shk_queue_open (SHK_ETYPE on a kind,
 * type, block size or capacity mismatch; SHK_ECORRUPT).  *out is
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

#define SHK_STACK_OPTS_INIT SHK__INIT(shk_stack_opts)

/*
 * shk_stack_open opens the stack `name`, creating it with SHK_CREATE
 * (SHK_EXCL: SHK_EEXIST if present).  It takes 320 + cap * (8 + elem_len
 * rounded up to 8) bytes of the heap, plus up to 63 bytes of alignment.
 * Zero fields as shk_queue_open: the stored values when the stack exists, with
 * SHK_CREATE too; the defaults only for a new stack.  Codes as
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

/* shk_stack_stats: depth is the element count at one instant (the top
 * node's depth entry, read between two equal loads of the top; under
 * churn that kept moving the top, the last value read).  Stacks made by
 * earlier versions (layout SKSTACK1) report a relaxed counter instead. */
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

/*
 * Process-shared synchronisation objects (docs/sync.md).  Each is a named
 * registry object, created or opened like the structures and visible in
 * `shmkit info` with its live state.  In shared memory a lock is owned by
 * the segment handle (its attach record); the threads of one process that
 * lock through one shk_seg share that owner and take the lock in turn,
 * through one object handle or several, while each thread records what it
 * holds: its own second lock is SHK_EDEADLK, its unlock of what it does
 * not hold SHK_EPERM.  A thread that exits holding locks (pthread_exit,
 * return from its start function, cancellation) releases them as a dead
 * process would: a mutex or write lock becomes abandoned, and the next
 * locker in any process gets SHK_EOWNERDEAD; its rwlock read holds are
 * given back (shk_mutex_lock).  A process's exit, or the end of its main
 * thread by a return from main() or exit(), runs no thread exit: its
 * locks are recovered as a dead process's.  pthread_cancel() of a thread
 * while it is inside any shmkit call is not supported: the call can leave
 * process-local state half-done (a descriptor that shk_sem_fd or
 * shk_event_fd was creating then stays "being created", and every later
 * call on that handle waits for it for ever); cancel threads only outside
 * library calls, or disable cancellation around them.
 * Handles belong to the process that opened them and are thread-safe.
 * Every blocking call takes timeout_ns
 * (SHK_FOREVER, 0 = try: SHK_EAGAIN, else SHK_ETIMEDOUT on expiry; and
 * shk_cond_wait's retake of its mutex returns SHK_EBUSY, not held, when it
 * runs out) and makes no system call when it need not wait.
 */

/*
 * shk_sync_opts configures the creation of any sync object; on open of an
 * existing object it is ignored (the stored configuration wins).
 *   size    sizeof(shk_sync_opts) (0 is SHK_EINVAL)
 *   flags   SHK_EVENT_MANUAL (event: manual reset), SHK_EVENT_SET (event:
 *           created set); only events take flags: another bit, or any
 *           bit for another kind, makes a creation SHK_EINVAL
 *   count   semaphore: initial count (default 0); barrier: parties
 *           (required, 1 .. 1048575); latch: initial count (required,
 *           1 .. 2^31-1)
 *   max     semaphore: largest count (default and limit 2^31-1)
 */
typedef struct shk_sync_opts {
	uint32_t size;
	uint32_t flags;
	uint64_t count;
	uint64_t max;
} shk_sync_opts;

#define SHK_SYNC_OPTS_INIT SHK__INIT(shk_sync_opts)
#define SHK_EVENT_MANUAL 0x1u
#define SHK_EVENT_SET 0x2u

typedef struct shk_mutex shk_mutex;
typedef struct shk_rwlock shk_rwlock;
typedef struct shk_sem shk_sem;
typedef struct shk_barrier shk_barrier;
typedef struct shk_latch shk_latch;
typedef struct shk_event shk_event;
typedef struct shk_cond shk_cond;
typedef struct shk_once shk_once;

/*
 * shk_mutex_open creates (flags SHK_CREATE, SHK_EXCL as shk_seg_open) or
 * opens the robust process-shared mutex `name` in seg and returns a handle
 * in *out (NULL on failure).  opts may be NULL.  The handle must not
 * outlive seg.  Codes: SHK_EINVAL (bad arguments), SHK_EPERM (a SHK_RDONLY
 * seg),
 * SHK_ENAMETOOLONG, SHK_ENOENT, SHK_EEXIST, SHK_ETYPE (name holds another
 * kind), SHK_ENOMEM, SHK_ENOSPC, SHK_ECORRUPT.  Thread- and process-safe.
 */
SHK_API int shk_mutex_open(shk_seg *seg, const char *name, unsigned flags,
			   const shk_sync_opts *opts, shk_mutex **out);

/*
 * shk_mutex_lock takes the mutex, waiting up to timeout_ns.  Returns 0;
 * SHK_EOWNERDEAD when the previous holder died holding it (even by SIGKILL),
 * or was a thread that exited holding it (the exiting thread marks it
 * abandoned, as POSIX robust mutexes report a dead thread; not when the
 * segment handle it locked through had its last close (shk_seg_close)
 * before the thread exited: the lock is then recovered as a closed
 * handle's): the caller now holds the mutex,
 * must repair the protected state and call shk_mutex_consistent before
 * shk_mutex_unlock; SHK_ENOTRECOVERABLE when a
 * holder unlocked without doing so (permanent); SHK_EAGAIN (timeout 0,
 * held by a live owner), SHK_ETIMEDOUT; SHK_EDEADLK when the calling
 * thread already holds it (through this handle or another one; other
 * threads of the process wait for it like any process); SHK_ENOMEM when
 * the calling thread holds 64 mutexes, rwlock write locks and read-held
 * rwlocks already
 * (those held through a segment handle whose last close it made do not
 * count: shk_seg_close), or when it is exiting and its release of what it holds
 * has run for the last time (a pthread key destructor in the C library's
 * last round, docs/sync.md); SHK_EINVAL.  A holder that is alive but stopped
 * (SIGSTOP, debugger) keeps the mutex.  No system call when uncontended;
 * contended waiters spin about 2 us, then sleep on a futex and test the
 * holder's liveness every 20 ms, so a dead holder is detected within about
 * 20 ms (immediately when already dead at the first sleep).
 * Blocking; not async-signal-safe.
 */
SHK_API int shk_mutex_lock(shk_mutex *m, int64_t timeout_ns);

/*
 * shk_mutex_unlock releases the mutex and wakes one waiter if any sleeps.
 * If the mutex was taken with SHK_EOWNERDEAD and not made consistent, it
 * becomes unrecoverable: every later lock returns SHK_ENOTRECOVERABLE.
 * Returns 0, SHK_EPERM (the calling thread does not hold it), SHK_EINVAL.
 * Non-blocking; no system call when nobody waits.
 */
SHK_API int shk_mutex_unlock(shk_mutex *m);

/*
 * shk_mutex_consistent marks the state protected by a mutex taken with
 * SHK_EOWNERDEAD as repaired (POSIX pthread_mutex_consistent).  Returns 0,
 * SHK_EPERM (not the holder), SHK_EINVAL (not in the owner-died state).
 */
SHK_API int shk_mutex_consistent(shk_mutex *m);

/* shk_mutex_close frees the handle (it must not hold the mutex); NULL is a
 * no-op.  The object stays in the segment (shk_obj_remove deletes it). */
SHK_API void shk_mutex_close(shk_mutex *m);

/*
 * shk_rwlock_open creates or opens the reader-writer lock `name`; codes as
 * shk_mutex_open.  Readers are counted per attach record of the segment
 * (not anonymously), so the share of a reader that died is reclaimed by
 * the next writer; each thread also records its own read holds, which it
 * gives back when it exits, and a writer thread that exits holding the
 * lock leaves it abandoned (SHK_EOWNERDEAD for the next reader or writer).
 */
SHK_API int shk_rwlock_open(shk_seg *seg, const char *name, unsigned flags,
			    const shk_sync_opts *opts, shk_rwlock **out);

/*
 * shk_rwlock_rdlock takes a shared (read) hold, waiting up to timeout_ns
 * while a writer holds the lock or waits for readers to drain (writers are
 * preferred, so they do not starve).  Returns 0 (release with
 * shk_rwlock_rdunlock); SHK_EOWNERDEAD when a writer died (or its thread
 * exited) holding the lock:
 * the caller then holds it EXCLUSIVELY, as a writer, must repair, call
 * shk_rwlock_consistent and release with shk_rwlock_wrunlock;
 * SHK_ENOTRECOVERABLE, SHK_EAGAIN, SHK_ETIMEDOUT, SHK_EINVAL; SHK_EDEADLK
 * when the calling thread holds the write lock (it would wait for
 * itself); SHK_ENOMEM when the calling thread holds 64 mutexes, write
 * locks and read-held rwlocks already (read holds of one rwlock through
 * one segment handle count once).  Read holds through one segment handle
 * are counted, so threads sharing a shk_seg may read concurrently; at most
 * 2^31-1 at a time per segment handle, beyond which SHK_ERANGE (nothing
 * taken).  No system call when no writer is around.
 */
SHK_API int shk_rwlock_rdlock(shk_rwlock *rw, int64_t timeout_ns);

/*
 * shk_rwlock_wrlock takes the exclusive (write) hold: first the writer
 * lock, then it waits until every reader has left; new readers wait
 * meanwhile.  Read holds of processes that died are reclaimed while
 * waiting (tested every 20 ms).  Returns 0; SHK_EOWNERDEAD (a writer died,
 * or its thread exited, holding it: repair, shk_rwlock_consistent, then
 * unlock);
 * SHK_ENOTRECOVERABLE; SHK_EAGAIN; SHK_ETIMEDOUT (nothing held);
 * SHK_EDEADLK (the calling thread already writes; other threads of the
 * process wait); SHK_ENOMEM (the calling thread holds 64 mutexes, write
 * locks and read-held rwlocks already); SHK_EINVAL.  Do not
 * call it while this segment handle holds a read hold: it would wait for
 * itself until the timeout.
 */
SHK_API int shk_rwlock_wrlock(shk_rwlock *rw, int64_t timeout_ns);

/* shk_rwlock_rdunlock drops one read hold that the calling thread took
 * through this segment handle and wakes a writer waiting for readers.
 * Returns 0, SHK_EPERM (the calling thread holds none: another thread's
 * read holds are not its to release; 0 until 2026-11-25), SHK_EINVAL.
 * Non-blocking. */
SHK_API int shk_rwlock_rdunlock(shk_rwlock *rw);

/* shk_rwlock_rdheld returns how many read holds the calling thread has
 * taken through this segment handle and not yet dropped (every handle of
 * this rwlock opened through the same segment handle counts them
 * together), 0 for none or NULL.  A binding whose rdlock may be
 * interrupted after the C call took the hold (Python: a signal handler
 * that raises on the way back) compares the count before and after, and
 * gives back one hold only when the count grew.  Non-blocking. */
SHK_API uint32_t shk_rwlock_rdheld(const shk_rwlock *rw);

/* shk_rwlock_wrunlock releases the write hold and wakes waiting readers
 * and one writer.  Unlocking after SHK_EOWNERDEAD without
 * shk_rwlock_consistent makes the lock unrecoverable
 * (SHK_ENOTRECOVERABLE for all).  Returns 0, SHK_EPERM, SHK_EINVAL. */
SHK_API int shk_rwlock_wrunlock(shk_rwlock *rw);

/* shk_rwlock_consistent marks the state repaired after SHK_EOWNERDEAD.
 * Returns 0, SHK_EPERM (not the writer), SHK_EINVAL (not inconsistent). */
SHK_API int shk_rwlock_consistent(shk_rwlock *rw);

/* shk_rwlock_close frees the handle; NULL is a no-op. */
SHK_API void shk_rwlock_close(shk_rwlock *rw);

/*
 * shk_sem_open creates or opens the counting semaphore `name`; on create,
 * opts->count is the initial count and opts->max the largest (default
 * 2^31-1).  Codes as shk_mutex_open, plus SHK_EINVAL for count > max.
 */
SHK_API int shk_sem_open(shk_seg *seg, const char *name, unsigned flags,
			 const shk_sync_opts *opts, shk_sem **out);

/*
 * shk_sem_post adds n (>= 1) to the count and wakes up to n waiters.
 * Returns 0, SHK_ERANGE (the count would exceed max; nothing added),
 * SHK_EINVAL, SHK_ECORRUPT (the count is above max: damage; nothing
 * added).  Non-blocking, lock-free; no system call when nobody sleeps
 * (nor a pollable fd is armed).  Async-signal-safe: it may be called from
 * a signal handler, also when it wakes sleepers, signals armed fds
 * (shk_sem_fd) or takes back the count of a waiter that died asleep
 * (which reads /proc with open, getdents64 and read); it allocates no
 * memory and takes no lock.  Like any system call it may change errno.
 */
SHK_API int shk_sem_post(shk_sem *s, uint32_t n);

/*
 * shk_sem_wait takes one unit, waiting up to timeout_ns while the count is
 * zero.  Returns 0, SHK_EAGAIN (timeout 0), SHK_ETIMEDOUT, SHK_EINVAL.
 * Units are not owned: a process that dies after taking one does not give
 * it back (as POSIX semaphores).  Lock-free when the count is positive
 * and the handle has no descriptor; on a handle with one (shk_sem_fd)
 * each wait also empties and re-arms it under a process-local mutex.
 */
SHK_API int shk_sem_wait(shk_sem *s, int64_t timeout_ns);

/* shk_sem_value returns the current count (>= 0; a snapshot), or
 * SHK_EINVAL, or SHK_ECORRUPT (a count above max). */
SHK_API int shk_sem_value(shk_sem *s);

/*
 * shk_sem_fd returns a file descriptor, owned by the handle (closed by
 * shk_sem_close), that poll/epoll report readable when the count may be
 * positive.  When it is readable, call shk_sem_wait(s, 0) until it returns
 * SHK_EAGAIN, then poll again; each wait on a handle with an fd empties
 * the fd and keeps it armed (readable again at once if a unit is still
 * there; a post by another process then makes it readable), so a unit
 * another handle took costs one spurious readable poll.  Creating
 * the fd makes a few system calls; posters pay one sendto per armed fd.
 * Returns the fd, or SHK_EINVAL, SHK_ENOMEM, SHK_EBUSY (another handle
 * through the same shk_seg has a descriptor: see shk_ring_fd), or an
 * errno-mapped code.  Thread-safe, and waits on the handle may run in
 * other threads meanwhile (arming is serialised per handle).  A poster of
 * another uid does not signal it (see shk_ring_fd).
 */
SHK_API int shk_sem_fd(shk_sem *s);

/* shk_sem_close frees the handle (and its fd); NULL is a no-op. */
SHK_API void shk_sem_close(shk_sem *s);

/*
 * shk_barrier_open creates or opens the reusable barrier `name` for
 * opts->count parties (required on create).  Codes as shk_mutex_open.
 */
SHK_API int shk_barrier_open(shk_seg *seg, const char *name, unsigned flags,
			     const shk_sync_opts *opts, shk_barrier **out);

/*
 * shk_barrier_wait arrives at the barrier and waits until all parties of
 * this generation have arrived, up to timeout_ns.  Returns 1 for exactly
 * one call per generation: the last arriver (the "serial" one), unless a
 * shk_barrier_leave completed the generation, which then returns 1 and
 * every arriver 0; 0 for the others;
 * SHK_ETIMEDOUT or SHK_EAGAIN (timeout 0, not complete): the arrival was
 * withdrawn, the generation did not complete; SHK_EINVAL; SHK_ECORRUPT
 * (the shared state is impossible: no parties, as many arrivals as
 * parties, or no arrival left to withdraw after a timeout).  The barrier is
 * reusable at once.  A party that died is not detected: the others time
 * out, or a supervisor calls shk_barrier_leave for it.
 */
SHK_API int shk_barrier_wait(shk_barrier *b, int64_t timeout_ns);

/*
 * shk_barrier_leave removes one party for good (a participant that died or
 * quit), so the remaining parties no longer wait for it; if everyone left
 * has already arrived, that generation completes now.  The barrier keeps
 * counts, not identities: a party killed inside shk_barrier_wait after its
 * arrival still counts as arrived in that generation, so a leave for it
 * then completes that generation one arrival early (docs/sync.md).
 * Returns 1 when this leave completed the generation (the caller is then
 * its serial party and may do the serial work: no arriver got 1), 0 when
 * it did not, SHK_ERANGE (only one party left), SHK_ECORRUPT (the shared
 * state has as many arrivals as parties), SHK_EINVAL: test rc < 0
 * for an error (until 2026-11-25 a completing leave returned 0).
 * Non-blocking.
 */
SHK_API int shk_barrier_leave(shk_barrier *b);

/* shk_barrier_close frees the handle; NULL is a no-op. */
SHK_API void shk_barrier_close(shk_barrier *b);

/*
 * shk_latch_open creates or opens the one-shot latch `name` whose count
 * starts at opts->count (required on create).  Codes as shk_mutex_open.
 */
SHK_API int shk_latch_open(shk_seg *seg, const char *name, unsigned flags,
			   const shk_sync_opts *opts, shk_latch **out);

/*
 * shk_latch_count_down subtracts n (>= 1) from the count; reaching zero
 * releases every waiter, for good.  Anyone may count down, for instance a
 * supervisor on behalf of a participant that died.  Returns the count
 * left (>= 0), SHK_ERANGE (n larger than the count; nothing changed),
 * SHK_EINVAL, SHK_ECORRUPT (a count above 2^31-1; nothing changed).
 * Non-blocking.
 */
SHK_API int shk_latch_count_down(shk_latch *l, uint32_t n);

/*
 * shk_latch_wait waits until the count is zero, up to timeout_ns.
 * Returns 0, SHK_EAGAIN (timeout 0), SHK_ETIMEDOUT, SHK_EINVAL.
 */
SHK_API int shk_latch_wait(shk_latch *l, int64_t timeout_ns);

/* shk_latch_count returns the count left (a snapshot), SHK_EINVAL, or
 * SHK_ECORRUPT (a count above 2^31-1). */
SHK_API int shk_latch_count(shk_latch *l);

/* shk_latch_close frees the handle; NULL is a no-op. */
SHK_API void shk_latch_close(shk_latch *l);

/*
 * shk_event_open creates or opens the event `name`: auto-reset by default
 * (a set releases one waiter and resets), manual-reset with
 * SHK_EVENT_MANUAL (stays set, releasing all, until shk_event_reset);
 * SHK_EVENT_SET creates it set.  Codes as shk_mutex_open.
 */
SHK_API int shk_event_open(shk_seg *seg, const char *name, unsigned flags,
			   const shk_sync_opts *opts, shk_event **out);

/* shk_event_set sets the event and wakes waiters (all for manual reset,
 * one for auto reset).  Returns 0 or SHK_EINVAL.  Non-blocking. */
SHK_API int shk_event_set(shk_event *e);

/* shk_event_reset clears the event.  Returns 0 or SHK_EINVAL. */
SHK_API int shk_event_reset(shk_event *e);

/*
 * shk_event_wait waits until the event is set, up to timeout_ns; for an
 * auto-reset event it also consumes the set (exactly one waiter wins each
 * set).  Returns 0, SHK_EAGAIN (timeout 0), SHK_ETIMEDOUT, SHK_EINVAL.
 */
SHK_API int shk_event_wait(shk_event *e, int64_t timeout_ns);

/*
 * shk_event_fd returns a file descriptor, owned by the handle (closed by
 * shk_event_close), that poll/epoll report readable when the event may be
 * set.  When it is readable, call shk_event_wait(e, 0) (SHK_EAGAIN means
 * another waiter won an auto-reset set: one spurious readable poll); each
 * wait on a handle with an fd empties the fd and keeps it armed, so a
 * later set by any process makes it readable.
 * Returns the fd, or SHK_EINVAL, SHK_ENOMEM, SHK_EBUSY (another handle
 * through the same shk_seg has a descriptor: see shk_ring_fd), or an
 * errno-mapped code.  Thread-safe, as shk_sem_fd.  A setter of another
 * uid does not signal it (see shk_ring_fd).
 */
SHK_API int shk_event_fd(shk_event *e);

/* shk_event_close frees the handle (and its fd); NULL is a no-op. */
SHK_API void shk_event_close(shk_event *e);

/*
 * shk_cond_open creates or opens the condition variable `name` (used with
 * any shk_mutex).  Codes as shk_mutex_open.
 */
SHK_API int shk_cond_open(shk_seg *seg, const char *name, unsigned flags,
			  const shk_sync_opts *opts, shk_cond **out);

/*
 * shk_cond_wait atomically releases m (which the caller holds) and waits
 * for a signal or broadcast, up to timeout_ns, then takes m again, waiting
 * up to timeout_ns more for it (SHK_FOREVER: as long as it takes; 0: one
 * try), so the whole call takes at most twice timeout_ns.  Returns 0
 * (signalled, or a spurious wake-up: re-check the predicate),
 * SHK_ETIMEDOUT (SHK_EAGAIN for timeout 0, which only releases and
 * retakes m), SHK_EOWNERDEAD (m's holder died: m is held, repair as for
 * shk_mutex_lock); all of these with m held again.  SHK_EBUSY: m could not
 * be retaken in time (another party kept it), and the caller does NOT
 * hold m.  Otherwise a code of shk_mutex_lock when retaking m failed
 * (SHK_ENOTRECOVERABLE, ...: m not held); SHK_EPERM when the caller does
 * not hold m; SHK_EINVAL, also when m was taken with SHK_EOWNERDEAD and
 * not yet made consistent: the call returns at once with m still held and
 * recoverable (repair, shk_mutex_consistent, then wait), since releasing
 * it unrepaired would make it SHK_ENOTRECOVERABLE.  A signal sent after
 * the caller released m is never lost.
 */
SHK_API int shk_cond_wait(shk_cond *c, shk_mutex *m, int64_t timeout_ns);

/* shk_cond_signal wakes at least one waiter if any.  Returns 0 or
 * SHK_EINVAL.  No system call when nobody waits. */
SHK_API int shk_cond_signal(shk_cond *c);

/* shk_cond_broadcast wakes every waiter.  Returns 0 or SHK_EINVAL. */
SHK_API int shk_cond_broadcast(shk_cond *c);

/* shk_cond_close frees the handle; NULL is a no-op. */
SHK_API void shk_cond_close(shk_cond *c);

/*
 * shk_once_open creates or opens the once-flag `name`.  Codes as
 * shk_mutex_open.
 */
SHK_API int shk_once_open(shk_seg *seg, const char *name, unsigned flags,
			  const shk_sync_opts *opts, shk_once **out);

/*
 * shk_once_run runs fn(arg) exactly once across all processes and returns
 * after it has completed somewhere.  Returns 1 when this call ran fn
 * successfully, 0 when it had already completed (here or elsewhere); a
 * negative value that fn returned (fn failed: the once-flag stays unrun
 * and the next caller retries); SHK_EAGAIN (timeout 0) or SHK_ETIMEDOUT
 * while another process runs fn; SHK_EINVAL.  If the process running fn
 * dies, a waiter notices within about 20 ms and runs fn itself, so fn must
 * tolerate a half-done previous attempt.  A runner thread that leaves fn
 * by pthread_exit() or cancellation counts as a failed attempt (the next
 * caller runs fn), and so does a C++ exception thrown through fn; leaving
 * fn by longjmp() is not supported: the flag then stays claimed until the
 * process dies (the thread itself is left in order).  fn must not call shk_once_run on
 * the same flag (it would wait for itself until the timeout).
 */
SHK_API int shk_once_run(shk_once *o, int (*fn)(void *arg), void *arg,
			 int64_t timeout_ns);

/* shk_once_done returns 1 when the once-flag has completed, 0 when not,
 * or SHK_EINVAL. */
SHK_API int shk_once_done(shk_once *o);

/* shk_once_close frees the handle; NULL is a no-op. */
SHK_API void shk_once_close(shk_once *o);

/* ---- (end of sync) ---- */
/* ---- (space between sections: keep) ---- */

/* ==== channels ==== */

/*
 * Channels: messages between processes (docs/chan.md), addressed as
 * "shm://SEGMENT/CHANNEL" and built on the structures above: a pair is two
 * rings, pub/sub a bcast, push/pull a queue of heap-block references.
 * Small messages are copied through the ring; large ones (and every
 * push/pull message) travel as blocks of the segment's heap, of which only
 * the offset is passed, so a loan (shk_msg_loan) is written once, in
 * place, and read in place by the receiver.
 *
 * A channel handle is used by one thread at a time, like the ring and
 * bcast handles it holds; the messages it hands out belong to it (release
 * them through the same thread, before shk_chan_close).  Open one handle
 * per thread for more senders or receivers.  Progress: a channel call is
 * as lock-free as the structure under it (ring: wait-free when there is
 * data or room; queue and bcast: lock-free) plus shk_alloc / shk_free for
 * heap messages (lock-free up to 16 KiB).  No channel call is
 * async-signal-safe (open, loans and push/pull receives may call malloc).
 */
typedef struct shk_chan shk_chan;
typedef struct shk_msg shk_msg;

/* Patterns (shk_chan_open). */
#define SHK_CHAN_PAIR 1     /* two ends, A and B, each sends to the other */
#define SHK_CHAN_PUBSUB 2   /* one publisher, many subscribers */
#define SHK_CHAN_PUSHPULL 3 /* many pushers, many pullers, each message once */

/* Roles (shk_chan_open). */
#define SHK_CHAN_A 1    /* pair: end A (one owner at a time) */
#define SHK_CHAN_B 2    /* pair: end B (one owner at a time) */
#define SHK_CHAN_PUB 3  /* pub/sub: the publisher (one owner at a time) */
#define SHK_CHAN_SUB 4  /* pub/sub: a subscriber (up to max_subs) */
#define SHK_CHAN_PUSH 5 /* push/pull: a sender (any number) */
#define SHK_CHAN_PULL 6 /* push/pull: a receiver (any number) */

/*
 * shk_chan_opts configures shk_chan_open.  Initialise with
 * SHK_CHAN_OPTS_INIT; a zero field means the default when the channel is
 * created and "accept what is stored" when it exists; a nonzero geometry
 * field that differs from the stored one is SHK_ETYPE.
 *   size        sizeof(shk_chan_opts) (0 is SHK_EINVAL)
 *   mode        pub/sub: SHK_BCAST_LOSSY (default) or SHK_BCAST_RELIABLE;
 *               other patterns: 0
 *   seg_size    bytes of the segment if this call creates it (default
 *               4 MiB); ignored when the segment exists
 *   cap         pair: bytes of each ring; pub/sub: bytes of the log (both
 *               a power of two, default 64 KiB); push/pull: queue slots
 *               (a power of two, default 1024)
 *   max_msg     largest message in bytes (pair, push/pull: default 1 MiB,
 *               at most 2^40; pub/sub: default and limit cap/2 - 16)
 *   inline_max  pair: largest message copied through the ring (default
 *               the smaller of 2 KiB and max_msg; at most cap/2 - 24);
 *               larger ones travel as heap blocks.  Ignored by pub/sub
 *               (stored as max_msg: all inline) and push/pull (stored as
 *               0: every message is a heap block)
 *   type_id     the user's type tag; stored on create, must match on open
 *   max_subs    pub/sub: subscriber slots (default 16, at most 1024)
 *   flags       0, or SHK_ANY_OWNER: open the channel's segment when
 *               another user owns it (shk_seg_open); any other bit is
 *               SHK_EINVAL.  (This field was `reserved`, ignored, until
 *               2026-11-25.)
 *   seg_mode    permission bits of the segment if this call creates it
 *               (shk_seg_opts.mode: default 0600, at most 0777); ignored
 *               when the segment exists.  Ends of two users: the first
 *               creates with e.g. 0660 and both pass SHK_ANY_OWNER
 *               (docs/chan.md, "Ends of different users")
 */
typedef struct shk_chan_opts {
	uint32_t size;
	uint32_t mode;
	uint64_t seg_size;
	uint64_t cap;
	uint64_t max_msg;
	uint64_t inline_max;
	uint64_t type_id;
	uint32_t max_subs;
	uint32_t flags;
	uint32_t seg_mode;
	uint32_t reserved;
} shk_chan_opts;

#define SHK_CHAN_OPTS_INIT SHK__INIT(shk_chan_opts)

/*
 * shk_chan_open opens the channel at addr in one role, creating the
 * segment and the channel when they do not exist (the first opener
 * creates, whichever role it takes, like ZeroMQ's bind/connect symmetry).
 * addr is "shm://SEGMENT/CHANNEL": exactly the scheme "shm://", a SEGMENT
 * name of 1..SHK_NAME_MAX characters from [A-Za-z0-9._-], one '/', and a
 * CHANNEL name of 1..SHK_NAME_MAX - 4 characters from the same set, with
 * nothing after it; anything else is SHK_EINVAL.  The channel is the
 * registry object CHANNEL (kind SHK_KIND_CHAN) and its parts CHANNEL.ab
 * and CHANNEL.ba (pair rings), CHANNEL.log (pub/sub bcast) or CHANNEL.q
 * (push/pull queue); every opener creates whichever part is missing from
 * the stored geometry, so a channel whose creator died half-way is
 * completed by the next opener.  Racing openers end with one channel.
 * Returns 0 and *out, or SHK_EINVAL (bad address, pattern, role not of the
 * pattern, bad opts), SHK_ETYPE (the stored pattern, geometry or type_id
 * differs from what was asked, or a part is not a channel part),
 * SHK_EBUSY (a single-owner role held by a live process, or no free
 * subscriber slot), SHK_ENOMEM, SHK_ENOSPC, SHK_ECORRUPT, SHK_EAGAIN (a
 * part kept being created and removed under the open), or a code of
 * shk_seg_open.  *out is NULL on failure; a failed open removes the parts,
 * control block and segment it created, when no other live handle is
 * attached to the segment (docs/chan.md, "When an open fails").
 * shk_obj_remove of CHANNEL removes the channel with its parts.  Thread-
 * and process-safe; may block briefly on the registry lock and on a
 * segment being created.
 */
SHK_API int shk_chan_open(const char *addr, int pattern, int role,
			  const shk_chan_opts *opts, shk_chan **out);

/*
 * shk_chan_send copies len bytes (0 .. max_msg) from buf and sends them
 * (roles A, B, PUB, PUSH).  Pair: a message up to inline_max is copied
 * into the ring; a larger one is copied once into a heap block whose
 * offset is sent.  Push/pull: always a heap block.  Pub/sub: copied into
 * the log.  Blocks while the channel is full, up to timeout_ns (pub/sub
 * lossy never waits).  A heap message also waits, up to the same
 * timeout, for heap room (receivers releasing blocks): the heap has no
 * waitpoint, so this wait polls (naps of 20 us growing to 1 ms).  The
 * heap's lock, when the allocation needs it, waits for a live holder up
 * to the same timeout too, but at least 2 ms and at most 10 s
 * (docs/chan.md).  Returns 0, SHK_EMSGSIZE (len > max_msg), SHK_EAGAIN
 * (timeout 0 and full, or the heap lock held), SHK_ETIMEDOUT, SHK_ENOMEM (timeout 0 and no heap room, or a block larger
 * than the whole heap, at once), SHK_EPEERDEAD (pair: the receiving end
 * died while we waited, for ring or heap room), SHK_EINVAL (a receiving
 * role), SHK_ECORRUPT.  No system call unless a peer sleeps or we wait.
 */
SHK_API int shk_chan_send(shk_chan *c, const void *buf, size_t len,
			  int64_t timeout_ns);

/*
 * shk_chan_recv receives the next message (roles A, B, SUB, PULL) into
 * *msg, a handle owned by the channel: read it with shk_msg_data and
 * shk_msg_len, then give it back with shk_msg_release.  Pair: the message
 * is read in place (in the ring, or in its heap block) and stays in the
 * ring until released, so one received message may be outstanding per
 * pair handle (a second shk_chan_recv before the release is SHK_EBUSY).
 * Pub/sub: copied into a buffer of the handle; one outstanding (SHK_EBUSY
 * likewise); records lost by a lossy subscriber are counted in
 * shk_chan_stats.lost.  Push/pull: the message's heap block, any number
 * outstanding (its first receive on a thread sets up the thread's heap
 * magazine, under the heap lock: waiting for it at least 2 ms and at most
 * what timeout_ns leaves, then going on without it).  Blocks while there
 * is nothing, up to timeout_ns.  A
 * message whose framing or heap reference fails validation is dropped
 * and SHK_ECORRUPT returned (the next call goes on with the next one).
 * Returns 0, SHK_EAGAIN, SHK_ETIMEDOUT, SHK_EBUSY, SHK_EPEERDEAD (pair,
 * pub/sub: the sender died while we waited), SHK_EINVAL (a sending role),
 * SHK_ENOMEM, SHK_ECORRUPT.  *msg is NULL on failure.  No system call
 * unless we wait; no allocation for pair and pub/sub.
 */
SHK_API int shk_chan_recv(shk_chan *c, shk_msg **msg, int64_t timeout_ns);

/*
 * shk_msg_loan hands out a message of len bytes (0 .. max_msg) to be
 * written in place: a heap block of the segment (roles A, B, PUSH).  Send
 * it with shk_msg_send (no copy) or drop it with shk_msg_release.
 * Returns 0, SHK_EMSGSIZE, SHK_ENOMEM (no heap room: a loan does not
 * wait; retry after receivers release), SHK_EINVAL (another role),
 * SHK_ENOTSUP (pub/sub: the log has no shared blocks to lend).  *msg is
 * NULL on failure.  Lock-free for blocks up to 16 KiB (shk_alloc); a
 * larger one, or a refill, takes the heap lock, which waits up to 10 s
 * for a live holder (SHK_ETIMEDOUT, as shk_alloc).
 */
SHK_API int shk_msg_loan(shk_chan *c, size_t len, shk_msg **msg);

/*
 * shk_msg_send sends a loaned message of its channel, passing only its
 * offset.  On success the message is consumed and the handle invalid; on
 * failure it stays the caller's, to retry or release.  Blocking and codes
 * as shk_chan_send; SHK_EINVAL for a message that is not a loan of c.
 */
SHK_API int shk_msg_send(shk_chan *c, shk_msg *msg, int64_t timeout_ns);

/*
 * shk_msg_data returns the message's bytes in this process (NULL for
 * NULL): writable for a loan; for a received message, read-only in
 * spirit (a pair inline message lies in the ring).  Valid until the
 * message is sent or released.
 */
SHK_API void *shk_msg_data(shk_msg *msg);

/* shk_msg_len returns the message's length in bytes (0 for NULL). */
SHK_API size_t shk_msg_len(const shk_msg *msg);

/*
 * shk_msg_release gives a message back: a received one frees its ring
 * record or heap block; an unsent loan frees its block.  NULL is a no-op.
 * Not to be called after shk_chan_close of its channel, nor by a forked
 * child on a message of its parent's handle (a use of that handle: the
 * parent's record or block would be freed under it; shk_chan_close of the
 * copy is what the child may call).
 */
SHK_API void shk_msg_release(shk_msg *msg);

/*
 * shk_chan_fd (receiving roles: A, B, SUB, PULL) returns a descriptor,
 * owned by the handle, that polls readable when a message may be there:
 * the fd of the underlying ring, bcast or queue, with their rules (a
 * shk_chan_recv with timeout 0 that finds nothing arms it; one descriptor
 * per object per shk_seg, and every channel handle opens its own shk_seg).
 * Returns the descriptor, SHK_EINVAL (a sending role) or the code of
 * shk_ring_fd, shk_bcast_fd or shk_queue_fd.  A sender of another uid
 * (docs/chan.md, "Ends of different users") does not signal it (see
 * shk_ring_fd): such a receiver uses blocking receives, or polls with a
 * finite timeout and tries a receive when it expires.
 */
SHK_API int shk_chan_fd(shk_chan *c);

/*
 * shk_chan_seg returns the segment handle the channel opened for itself
 * (NULL for NULL), owned by the channel and valid until shk_chan_close:
 * for shk_heap_info (message blocks come from its heap) and shk_off (a
 * loaned or received heap message's offset is the same in every process).
 */
SHK_API shk_seg *shk_chan_seg(shk_chan *c);

/*
 * shk_chan_stats is filled by shk_chan_stat (fixed-width fields).
 *   pattern, role, mode, cap, max_msg, inline_max   as opened
 *   sent, received   messages this handle sent and received
 *   lost        pub/sub lossy: records this subscriber missed
 *   corrupt     messages this handle dropped as SHK_ECORRUPT
 *   outstanding received and loaned messages not yet released or sent
 *   fill        what waits for this handle: pair, bytes in the ring it
 *               reads; push/pull, messages in the queue; pub/sub, 0
 */
typedef struct shk_chan_stats {
	uint32_t size;
	uint32_t pattern;
	uint32_t role;
	uint32_t mode;
	uint64_t cap;
	uint64_t max_msg;
	uint64_t inline_max;
	uint64_t sent;
	uint64_t received;
	uint64_t lost;
	uint64_t corrupt;
	uint64_t outstanding;
	uint64_t fill;
} shk_chan_stats;

/*
 * shk_chan_stat fills *st (the caller sets st->size).  Returns 0 or
 * SHK_EINVAL.  Same thread rule as the handle.
 */
SHK_API int shk_chan_stat(shk_chan *c, shk_chan_stats *st);

/*
 * shk_chan_close releases every message of the handle still outstanding
 * (received ones are consumed, loans freed), closes the channel's objects
 * and the handle's segment handle.  The channel stays in the segment.
 * NULL is a no-op.  In a forked child, closing its copy of the parent's
 * handle releases none of the parent's messages, roles or slots: it only
 * frees the copy (fork policy above).
 */
SHK_API void shk_chan_close(shk_chan *c);

/* ---- (end of channels) ---- */
/* ---- (space between sections: keep) ---- */

/* ==== end of sections ==== */

#ifdef __cplusplus
}
#endif

#endif /* SHMKIT_H */
