/*
 * segment.h - segment format v1 (the shared header and attach table) and
 * the process-local handle.  docs/segment-format.md describes the layout.
 */
#ifndef SHK_SEGMENT_H
#define SHK_SEGMENT_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>

#include "platform.h"
#include "shmkit.h"

#define SHK__MAGIC "SHMKIT\0\1"
#define SHK__FORMAT_VERSION 1u
#define SHK__HDR_LEN 4096u   /* header region: one (4 KiB) page */
#define SHK__ATTACH_CAP 256u /* attach records per segment */
#define SHK__DEFAULT_LEN ((uint64_t)4 << 20)
#define SHK__DEFAULT_OBJECTS 256u
#define SHK__MAX_OBJECTS 65536u

enum shk__seg_state {
	SHK__SEG_INITIALIZING = 1,
	SHK__SEG_READY = 2,
};

/*
 * The segment header at offset 0.  Fields up to `checksum` are immutable
 * after creation and covered by the checksum; the rest are atomics, each
 * group written by different parties on its own cache line.
 */
struct shk__seg_hdr {
	uint8_t magic[8];
	uint32_t version;
	uint32_t hdr_len;
	uint64_t total_len;
	uint32_t page_len;
	uint32_t features;
	uint32_t backend;
	uint32_t mode;
	uint32_t creator_pid;
	uint32_t creator_uid;
	uint64_t creator_start;
	uint64_t created_ns;
	uint64_t attach_off;
	uint32_t attach_cap;
	uint32_t reg_cap;
	uint64_t reg_off;
	uint64_t heap_off;
	uint64_t heap_len;
	char name[64];
	uint64_t reserved[2];
	uint64_t checksum; /* FNV-1a of the bytes before it */
	/* --- mutable (offset 192) --- */
	_Atomic uint32_t state; /* INITIALIZING -> READY (release) */
	_Atomic uint32_t generation;
	uint8_t pad0[56];
	_Atomic uint32_t reg_lock;  /* registry robust lock (lock.h) */
	_Atomic uint32_t reg_count; /* READY entries */
	uint8_t pad1[56];
	uint8_t reserved2[192];
};
_Static_assert(sizeof(struct shk__seg_hdr) == 512, "header is 512 bytes");
_Static_assert(offsetof(struct shk__seg_hdr, checksum) == 184,
	       "checksum offset");
_Static_assert(offsetof(struct shk__seg_hdr, state) == 192, "state offset");
_Static_assert(offsetof(struct shk__seg_hdr, reg_lock) == 256,
	       "reg_lock offset");

/* Attach record: one per open handle of a live process. */
enum shk__attach_state {
	SHK__ATT_FREE = 0,
	SHK__ATT_CLAIMING = 1,
	SHK__ATT_ACTIVE = 2,
};
#define SHK__GEN_MASK 0xfffffu /* generations compared modulo 2^20 */

/*
 * word = state:2 (bits 62-63) | locked:1 (bit 61) | gen:29 (bits 32-60) |
 * pid:32.  locked: the owner held the slot's liveness lock (platform.h,
 * shk__livelock_*) before it claimed the record and holds it until after
 * it frees it, so that lock not held means the owner is gone.
 */
struct shk__attach {
	_Atomic uint64_t word;
	_Atomic uint64_t start_ticks;
	_Atomic uint64_t pidns;  /* inode of the PID namespace, 0 unknown */
	_Atomic uint64_t timens; /* inode of the time namespace, 0 unknown
				  * (and in records of older writers) */
};
_Static_assert(sizeof(struct shk__attach) == 32, "attach record size");

#define SHK__ATT_STATE(w) ((uint32_t)((w) >> 62))
#define SHK__ATT_GEN(w) ((uint32_t)(((w) >> 32) & 0x1fffffffu))
#define SHK__ATT_PID(w) ((uint32_t)(w))
#define SHK__ATT_LOCKED ((uint64_t)1 << 61)
#define SHK__ATT_WORD(st, gen, pid)                                            \
	(((uint64_t)(st) << 62) | ((uint64_t)((gen)&0x1fffffffu) << 32) |      \
	 (uint64_t)(uint32_t)(pid))

/* The process-local handle.  Immutable header fields are copied here once,
 * from the copy that validation checked (or, for the creator, the copy it
 * wrote), and never re-read from shared memory (ALGORITHMS §10). */
struct shk_seg {
	uint8_t *base;
	uint64_t len;
	int fd;
	int shmid;
	uint32_t backend;
	uint32_t flags;
	/* this handle's open created the segment: shk__seg_unlink_unused */
	uint32_t created;
	uint32_t slot;  /* attach slot, or UINT32_MAX when not attached */
	uint32_t gen;   /* attach generation (full 29 bits) */
	uint32_t stamp; /* owner stamp for locks: see shk__seg_stamp */
	uint32_t attach_cap;
	/* this process's serial number of the handle (seg_new: 1, 2, ...,
	 * never reused while the process lives, a forked child going on
	 * from its parent's count): a handle's address, mapping and stamp
	 * can all recur in a later handle, its serial cannot (sync_mutex.c,
	 * the thread-exit record of held words) */
	uint64_t serial;
	/* shk__self_key() of the process that opened the handle (set again
	 * by shk__seg_attach): a forked child, even one whose pid number
	 * equals ours (pid 1 of a new PID namespace), closing its copy of the
	 * handle, or of an object handle opened through it, must not free
	 * our record, roles or slots (shk__seg_inherited) */
	uint64_t owner_key;
	/* our liveness-lock descriptor (shk__livelock_open), -1 none;
	 * att_locked: SHK__ATT_LOCKED when our record has it, else 0 */
	int lockfd;
	uint64_t att_locked;
	/* our entry in attach.c's table of this process's own records
	 * (own_add), -1 none, -2 not entered because the table was full */
	int own_idx;
	uint32_t reg_cap;
	uint64_t attach_off;
	uint64_t reg_off;
	uint64_t heap_off;
	uint64_t heap_len;
	/* The validated copy of the header's immutable fields (the bytes
	 * before `state`); its atomics are zero and never used.  Read this,
	 * not shk__hdr(seg), for any field before `state`. */
	struct shk__seg_hdr hdr;
	void *heap_local; /* heap module's per-handle state */
	/* Threads sharing this handle share its owner stamp, which the
	 * robust lock cannot tell apart: they serialise on this first. */
	pthread_mutex_t reg_mu;
	char *name;
	/* References to the handle: its own (seg_new, dropped by
	 * shk_seg_close) and one per object handle opened through it
	 * (shk__seg_ref, dropped at the object's close).  The last one
	 * dropped detaches, unmaps and frees the handle (shk__seg_unref),
	 * so that object handles work, and close in any order, after the
	 * segment handle's close. */
	_Atomic uint64_t refs;
	/* shk_seg_close has dropped the handle's own reference (1): a
	 * second close while object handles keep it is ignored */
	_Atomic int closed;
};

static inline struct shk__seg_hdr *
shk__hdr(const shk_seg *seg)
{
	return (struct shk__seg_hdr *)seg->base;
}

static inline struct shk__attach *
shk__attach_at(const shk_seg *seg, uint32_t slot)
{
	return (struct shk__attach *)(seg->base + seg->attach_off) + slot;
}

/*
 * Owner stamps name an attach record at one generation: slot:10 | gen:20,
 * never 0 (generation 0 is skipped).  A stamp's owner is alive while its
 * attach record is ACTIVE at that generation and the process runs.
 */
#define SHK__STAMP(slot, gen)                                                  \
	((((uint32_t)(slot)) << 20) | ((gen)&SHK__GEN_MASK))
#define SHK__STAMP_SLOT(s) ((uint32_t)(s) >> 20)
#define SHK__STAMP_GEN(s) ((uint32_t)(s)&SHK__GEN_MASK)
#define SHK__STAMP_MASK 0x3fffffffu /* 30 bits */

/* The segment instance: a hash of its creator and creation time, from the
 * validated copy of the header (a peer cannot change it), the same in
 * every handle of the segment and different in one made again under the
 * same name. */
static inline uint64_t
shk__seg_instance(const shk_seg *seg)
{
	return shk__hash64(&seg->hdr.creator_pid, sizeof(seg->hdr.creator_pid),
			   seg->hdr.created_ns);
}

static inline uint32_t
shk__seg_stamp(const shk_seg *seg)
{
	return seg->stamp;
}

/*
 * shk__stamp_alive returns 1 when the attach record named by stamp is still
 * held, at that generation, by a running process; 0 otherwise (closed,
 * reused, or the process died).  Makes system calls: slow paths only.
 */
SHK_HIDDEN int shk__stamp_alive(shk_seg *seg, uint32_t stamp);

/*
 * shk__seg_inherited returns 1 when this process did not open seg: a
 * forked child's copy of its parent's handle (shmkit.h, fork policy), or
 * of an object handle opened through it.  Closing such a copy frees only
 * process-local memory: the roles, reader slots, records, magazines and
 * messages it names are its parent's.  A system call (getpid): close and
 * other slow paths only.
 */
static inline int
shk__seg_inherited(const shk_seg *seg)
{
	return seg->owner_key != shk__self_key();
}

/*
 * shk__seg_ref takes a reference on seg for an object handle being opened
 * through it (the caller holds one: its own use of seg, which the user
 * may not close meanwhile); shk__seg_unref drops one, the object handle's
 * close's last use of seg, and on the last one does what shk_seg_close
 * did before object handles held references: forgets the closing
 * thread's held lock words (sync.h, shk__sync_forget), flushes the heap
 * state, detaches (not in a forked child) and unmaps.  NULL: no-op.
 */
SHK_HIDDEN void shk__seg_ref(shk_seg *seg);
SHK_HIDDEN void shk__seg_unref(shk_seg *seg);

/*
 * attach.c.  shk__seg_attach claims a free attach record for a handle being
 * opened (or one whose owner died): 0, or SHK_EBUSY when the table is full
 * of live handles.  shk__seg_detach frees it at close (not in a forked
 * child, whose copy of the handle names its parent's record).
 */
SHK_HIDDEN int shk__seg_attach(shk_seg *seg);
SHK_HIDDEN void shk__seg_detach(shk_seg *seg);

/*
 * shk__seg_alone returns 1 when no attach record but seg's own names a
 * live process (a record being claimed counts as live): no other writable
 * handle exists that could be using the segment's objects (a SHK_RDONLY
 * handle only reads).  Makes system calls: slow paths only.
 */
SHK_HIDDEN int shk__seg_alone(shk_seg *seg);

/*
 * shk__seg_unlink_unused removes the name of a POSIX or file segment that
 * this handle's open created, when no other live handle is attached, no
 * open is in progress and its registry holds no object (a failed
 * shk_chan_open's undo).  1 removed, 0 left as it is.
 */
SHK_HIDDEN int shk__seg_unlink_unused(shk_seg *seg);

/* Bounds: 1 when [off, off+len) lies inside the segment (no overflow). */
static inline int
shk__in_seg(const shk_seg *seg, uint64_t off, uint64_t len)
{
	return off <= seg->len && len <= seg->len - off;
}

#endif /* SHK_SEGMENT_H */
