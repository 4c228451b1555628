/*
 * sync.h - shared-memory layouts and process-local handles of the sync
 * objects (issue 4; ALGORITHMS.md §6-§8; docs/sync.md).
 *
 * Every sync object is a named registry entry of kind SHK_KIND_MUTEX ..
 * SHK_KIND_ONCE whose memory starts with an immutable `kind` word (checked
 * on open against the registry's kind).  Futex words are 32-bit; words
 * written by different parties sit on separate 64-byte lines.  Owner
 * identity in shared memory is the owner stamp of a segment handle
 * (shk__seg_stamp: attach slot + generation).  Threads of one process that
 * lock through one segment handle share its stamp: they take the shared
 * word in turn (shk__lock_acquire_threads), and each thread records the
 * words it holds (shk__sync_holds).
 */
#ifndef SHK_SYNC_H
#define SHK_SYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"
#include "wait.h"

/* mutex: one robust lock word (lock.h). */
struct shk__mutex_shm {
	uint32_t kind;
	uint32_t reserved0;
	uint8_t pad0[56];
	_Atomic uint32_t word; /* lock.h owner-stamp futex word */
	uint32_t reserved1;
	uint8_t pad1[56];
};
_Static_assert(sizeof(struct shk__mutex_shm) == 128, "mutex size");
_Static_assert(offsetof(struct shk__mutex_shm, word) == 64, "mutex word");

/*
 * rwlock: writers serialise on wlock (lock.h) and then wait until every
 * per-attach-slot reader count is zero.  flags records, under wlock, that a
 * writer died holding it (INCONSISTENT) and that it was unlocked without
 * being made consistent (NOTREC).  readers[slot] = stamp:32 | count:32.
 */
#define SHK__RW_INCONSISTENT 0x1u
#define SHK__RW_NOTREC 0x2u
#define SHK__RW_SLOTS SHK__ATTACH_CAP
/* read holds per segment handle: rdlock refuses more (SHK_ERANGE) long
 * before the count could carry into the stamp */
#define SHK__RW_MAX_HOLDS 0x7fffffffu
struct shk__rwlock_shm {
	uint32_t kind;
	uint32_t nslots; /* SHK__RW_SLOTS */
	uint8_t pad0[56];
	_Atomic uint32_t wlock; /* lock.h word: the writer */
	_Atomic uint32_t flags; /* SHK__RW_*, written under wlock */
	uint8_t pad1[56];
	shk__waitpoint rwp; /* readers wait here for the writer to leave */
	shk__waitpoint wwp; /* the writer waits here for readers to drain */
	_Atomic uint64_t readers[SHK__RW_SLOTS];
};
_Static_assert(offsetof(struct shk__rwlock_shm, readers) == 256,
	       "rwlock readers offset");
_Static_assert(sizeof(struct shk__rwlock_shm) == 256 + 8 * SHK__RW_SLOTS,
	       "rwlock size");

/* semaphore: count, and a waitpoint for waiters. */
#define SHK__SEM_MAX 0x7fffffffu
struct shk__sem_shm {
	uint32_t kind;
	uint32_t max; /* immutable: largest count */
	uint8_t pad0[56];
	_Atomic uint32_t count;
	uint32_t reserved0;
	uint8_t pad1[56];
	shk__waitpoint wp;
};
_Static_assert(sizeof(struct shk__sem_shm) == 192, "sem size");

/*
 * barrier: state = gen:24 (bits 40-63) | parties:20 (bits 20-39) |
 * arrived:20 (bits 0-19), changed only by CAS, so an arrival, a withdrawal
 * (timeout) and a leave each linearise at one RMW.
 */
#define SHK__BAR_MAXP 0xfffffu
#define SHK__BAR_ARR(s) ((uint32_t)((s)&SHK__BAR_MAXP))
#define SHK__BAR_PARTIES(s) ((uint32_t)(((s) >> 20) & SHK__BAR_MAXP))
#define SHK__BAR_GEN(s) ((uint32_t)((s) >> 40))
#define SHK__BAR_STATE(g, p, a)                                                \
	((((uint64_t)(g)&0xffffffu) << 40) | ((uint64_t)(p) << 20) |           \
	 (uint64_t)(a))
struct shk__barrier_shm {
	uint32_t kind;
	uint32_t reserved0;
	uint8_t pad0[56];
	_Atomic uint64_t state;
	uint8_t pad1[56];
	shk__waitpoint wp;
};
_Static_assert(sizeof(struct shk__barrier_shm) == 192, "barrier size");

/* latch: count down to zero, then open for good. */
struct shk__latch_shm {
	uint32_t kind;
	uint32_t initial; /* immutable, for describe */
	uint8_t pad0[56];
	_Atomic uint32_t count;
	uint32_t reserved0;
	uint8_t pad1[56];
	shk__waitpoint wp;
};
_Static_assert(sizeof(struct shk__latch_shm) == 192, "latch size");

/* event: state 0 (reset) or 1 (set); mode immutable. */
#define SHK__EV_AUTO 0u
#define SHK__EV_MANUAL 1u
struct shk__event_shm {
	uint32_t kind;
	uint32_t mode; /* SHK__EV_AUTO or SHK__EV_MANUAL */
	uint8_t pad0[56];
	_Atomic uint32_t state;
	uint32_t reserved0;
	uint8_t pad1[56];
	shk__waitpoint wp;
};
_Static_assert(sizeof(struct shk__event_shm) == 192, "event size");

/* condition variable: wp.seq is the sequence counter (the futex word);
 * wp.waiters counts sleepers so signal skips FUTEX_WAKE when none. */
struct shk__cond_shm {
	uint32_t kind;
	uint32_t reserved0;
	uint8_t pad0[56];
	shk__waitpoint wp;
};
_Static_assert(sizeof(struct shk__cond_shm) == 128, "cond size");

/*
 * once: state 0 (not run), a runner's stamp (running), or SHK__ONCE_DONE.
 * runs counts the attempts started (informational).
 */
#define SHK__ONCE_DONE 0x80000000u
struct shk__once_shm {
	uint32_t kind;
	uint32_t reserved0;
	uint8_t pad0[56];
	_Atomic uint32_t state;
	_Atomic uint32_t runs;
	uint8_t pad1[56];
	shk__waitpoint wp;
};
_Static_assert(sizeof(struct shk__once_shm) == 192, "once size");

/*
 * The lock words (mutex, rwlock write side) that the calling thread holds,
 * whatever handle it took them through: the threads that lock through one
 * segment handle share its owner stamp, so the shared word cannot tell
 * them apart (sync_mutex.c).  shk__sync_holds says whether the calling
 * thread holds w.  shk__sync_lock takes w within timeout_ns: the codes of
 * shk__lock_acquire, SHK_EDEADLK when this thread holds w already,
 * SHK_EAGAIN for a failed try, SHK_ENOMEM when the thread holds
 * SHK__SYNC_HELD_MAX words already; on failure nothing is held.  rw: the
 * rwlock whose wlock w is (its readers are woken when the thread exits
 * holding it), NULL for a mutex's word.
 * shk__sync_unlock releases it: SHK_EPERM when this thread does not hold w.
 */
#define SHK__SYNC_HELD_MAX 64
SHK_HIDDEN int shk__sync_holds(shk_seg *seg, _Atomic uint32_t *w);
SHK_HIDDEN int shk__sync_lock(shk_seg *seg, _Atomic uint32_t *w,
			      int64_t timeout_ns, struct shk__rwlock_shm *rw);
SHK_HIDDEN int shk__sync_unlock(shk_seg *seg, _Atomic uint32_t *w);

/*
 * The rwlocks the calling thread holds read holds of, in the same list
 * (an entry per rwlock and segment handle, counting the holds).
 * shk__sync_read_room says whether one more read hold on m through seg
 * could be recorded: 0, or SHK_ENOMEM (SHK__SYNC_HELD_MAX entries, none
 * for m).  shk__sync_read_add records one taken (0, SHK_ENOMEM);
 * shk__sync_read_drop removes one before its release: SHK_EPERM when the
 * calling thread holds none through seg.
 */
SHK_HIDDEN int shk__sync_read_room(shk_seg *seg, struct shk__rwlock_shm *m);
SHK_HIDDEN int shk__sync_read_add(shk_seg *seg, struct shk__rwlock_shm *m);
SHK_HIDDEN int shk__sync_read_drop(shk_seg *seg, struct shk__rwlock_shm *m);
/* shk__sync_read_count: the calling thread's read holds on m through
 * seg (0 for none). */
SHK_HIDDEN uint32_t shk__sync_read_count(shk_seg *seg,
					 struct shk__rwlock_shm *m);

/*
 * Thread exit (sync_mutex.c): the list's destructor marks each word the
 * exiting thread still holds ABANDONED (lock.h) and gives its read holds
 * back with shk__rwlock_exit_reads, which takes n holds (at most what the
 * entry counts) off seg's readers entry of m, if it still names seg's
 * stamp, and wakes the writer waiting for readers.  Only for segment
 * handles in this process's live set: shk__sync_live_add enters seg (at
 * the open of a mutex or rwlock; 0, or SHK_ENOMEM), shk__sync_forget
 * removes it.
 */
SHK_HIDDEN int shk__sync_live_add(shk_seg *seg);
SHK_HIDDEN void shk__rwlock_exit_reads(shk_seg *seg, struct shk__rwlock_shm *m,
				       uint32_t n);

/*
 * shk__sync_forget drops the calling thread's entries for segment handle
 * seg, at its last close (shk__seg_unref: shk_seg_close, or the close
 * of the last object handle opened through it), and takes seg out of the
 * live set: words still held through it stay taken in shared memory (a
 * later locker finds the owner gone), but no longer count against this
 * thread's SHK__SYNC_HELD_MAX, and no thread's exit touches them.
 */
SHK_HIDDEN void shk__sync_forget(const shk_seg *seg);

/*
 * Every handle starts with the segment handle and the object's memory, as
 * a union of two views of the same two pointers: hd, which shk__sync_new
 * fills for any kind (the union is the handle's first member, so the
 * handle's address is hd's), and the typed (seg, m) that the primitive's
 * code reads.
 */
struct shk__sync_head {
	shk_seg *seg;
	void *mem;
};
#define SHK__SYNC_HEAD(shm_type)                                               \
	union {                                                                \
		struct shk__sync_head hd;                                      \
		struct {                                                       \
			shk_seg *seg;                                          \
			shm_type *m;                                           \
		};                                                             \
	}

/* Process-local handles. */
struct shk_mutex {
	SHK__SYNC_HEAD(struct shk__mutex_shm);
};
struct shk_rwlock {
	SHK__SYNC_HEAD(struct shk__rwlock_shm);
};
/* db: NULL until the first shk_sem_fd / shk_event_fd, published once
 * (shk__sync_fd) while other threads' waits may read it */
struct shk_sem {
	SHK__SYNC_HEAD(struct shk__sem_shm);
	uint32_t max;
	struct shk__doorbell *_Atomic db;
};
struct shk_barrier {
	SHK__SYNC_HEAD(struct shk__barrier_shm);
};
struct shk_latch {
	SHK__SYNC_HEAD(struct shk__latch_shm);
};
struct shk_event {
	SHK__SYNC_HEAD(struct shk__event_shm);
	uint32_t mode;
	struct shk__doorbell *_Atomic db;
};
struct shk_cond {
	SHK__SYNC_HEAD(struct shk__cond_shm);
};
struct shk_once {
	SHK__SYNC_HEAD(struct shk__once_shm);
};

/* Formats a new object (zero-filled memory) from opts (never NULL here). */
typedef int (*shk__sync_init_fn)(void *mem, const shk_sync_opts *opts);

/*
 * shk__sync_new creates or opens a sync object of `kind` (validates opts:
 * NULL or size != 0; calls init on create; checks the object on open) and
 * allocates its zero-filled handle (head, doorbell pointer).
 * Returns the handle with *rc = 0, or NULL with *rc a registry code or
 * SHK_ENOMEM (the object itself stays in the registry, as after any
 * open).
 */
SHK_HIDDEN void *shk__sync_new(shk_seg *seg, const char *name, unsigned flags,
			       const shk_sync_opts *opts, uint32_t kind,
			       shk__sync_init_fn init, int *rc);

/* shk__sync_close frees a handle of shk__sync_new for `kind`: closes its
 * doorbell.  NULL: no-op. */
SHK_HIDDEN void shk__sync_close(void *h, uint32_t kind);

/*
 * shk__sync_sleep is shk__wait for the sync kinds: it also re-checks pred
 * every SHK__LOCK_SLICE_NS while asleep.  A waker killed between its
 * publication and its wake (the last arrival at a barrier, the last
 * count-down of a latch, a set, a post) leaves the condition true and
 * nobody to wake the sleepers; they find it at the end of the slice
 * instead of sleeping until their deadline, or for ever.
 */
SHK_HIDDEN int shk__sync_sleep(shk_seg *seg, shk__waitpoint *wp,
			       shk__wait_pred pred, void *arg,
			       int64_t timeout_ns);

/*
 * shk__sync_wait waits on wp until take(take_arg) (shk__sync_sleep), then keeps
 * the handle's doorbell *db (NULL: none) meaningful: empties it after a
 * success and re-arms it with peek(peek_arg), which makes it readable again
 * while the condition still holds.  Returns shk__wait's code.
 */
SHK_HIDDEN int shk__sync_wait(shk_seg *seg, struct shk__doorbell *_Atomic *db,
			      shk__waitpoint *wp, shk__wait_pred take,
			      void *take_arg, shk__wait_pred peek,
			      void *peek_arg, int64_t timeout_ns);

/*
 * shk__sync_fd opens the handle's doorbell *db on wp on first use, arms it
 * with peek(arg) and returns its descriptor, or a shk__doorbell_open code.
 * Thread-safe: the first call claims *db by CAS and publishes the
 * doorbell (release); concurrent first calls wait for it.
 */
SHK_HIDDEN int shk__sync_fd(shk_seg *seg, shk__waitpoint *wp,
			    struct shk__doorbell *_Atomic *db,
			    shk__wait_pred peek, void *arg);

/* shk__sync_left returns the ns left until deadline (0 when passed),
 * SHK_FOREVER when the deadline is INT64_MAX. */
SHK_HIDDEN int64_t shk__sync_left(int64_t deadline);

/*
 * shk__sync_rest is the timeout for the next step of a call made with
 * timeout_ns, whose deadline is shk__deadline(timeout_ns): 0 (a try) and
 * SHK_FOREVER stay as they are; a timed call gets what is left, but at
 * least 1 ns.  So a timed call whose deadline passed between two steps is
 * never turned into a try, and reports SHK_ETIMEDOUT, not SHK_EAGAIN
 * (docs/waiting.md); its step still tries once (a free lock is taken).
 */
static inline int64_t
shk__sync_rest(int64_t timeout_ns, int64_t deadline)
{
	int64_t left;

	if (timeout_ns == 0)
		return 0;
	left = shk__sync_left(deadline);
	return left == 0 ? 1 : left;
}

/*
 * shk__sync_owner writes "PID(alive)" / "PID(dead)" / "?(gone)" for an owner
 * stamp into buf (for describe).  Returns the length.
 */
SHK_HIDDEN int shk__sync_owner(shk_seg *seg, uint32_t stamp, char *buf,
			       size_t len);

/* The registry's hooks for SHK_KIND_MUTEX .. SHK_KIND_ONCE. */
SHK_HIDDEN int shk__kind_check_sync(shk_seg *seg, void *mem,
				    const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_sync(shk_seg *seg, void *mem,
				       const shk_obj_info *info, char *buf,
				       size_t len);
SHK_HIDDEN int shk__kind_busy_sync(shk_seg *seg, void *mem,
				   const shk_obj_info *info);

#endif /* SHK_SYNC_H */
