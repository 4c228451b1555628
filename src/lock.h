/*
 * lock.h - the robust process-shared lock used inside shmkit (registry,
 * heap) and behind shk_mutex.  ALGORITHMS.md §7 "Use (our design)".
 *
 * The 32-bit futex word names its owner:
 *   bits 0-29  owner stamp (attach slot:10 | generation:20), 0 = unlocked
 *   bit 30     OWNER_DIED: taken over from a dead owner, not yet consistent
 *   bit 31     WAITERS: someone may sleep on the word
 * SHK__LOCK_NOTREC (all stamp bits set, never a real stamp because attach
 * slots stay below 1023) marks a lock unlocked while inconsistent.
 * SHK__LOCK_ABANDONED (OWNER_DIED with stamp 0, which no owner has, since
 * generation 0 is skipped) marks a lock whose holder thread exited while
 * holding it (shk__lock_abandon): the next locker takes it over at once
 * and gets SHK_EOWNERDEAD.  A reader of an older version finds stamp 0
 * dead too (shk__stamp_alive) and recovers it the same way.
 */
#ifndef SHK_LOCK_H
#define SHK_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"

#define SHK__LOCK_OWNER_DIED 0x40000000u
#define SHK__LOCK_WAITERS 0x80000000u
#define SHK__LOCK_NOTREC SHK__STAMP_MASK
#define SHK__LOCK_ABANDONED SHK__LOCK_OWNER_DIED
#define SHK__LOCK_SLICE_NS 20000000 /* sleep slice between owner checks */

/*
 * shk__lock_acquire takes the lock for this handle's owner stamp.  Returns
 * 0; SHK_EOWNERDEAD when it took the lock over from a dead owner (the lock
 * is held; call shk__lock_consistent after repairing); SHK_ETIMEDOUT;
 * SHK_ENOTRECOVERABLE; SHK_EDEADLK when this handle already holds it;
 * SHK_EINVAL for a handle without an attach slot (SHK_RDONLY).  No system
 * call when uncontended.  A dead owner is detected within about 20 ms of
 * sleeping.
 */
SHK_HIDDEN int shk__lock_acquire(shk_seg *seg, _Atomic uint32_t *w,
				 int64_t timeout_ns);
/*
 * shk__lock_acquire_threads is shk__lock_acquire for a word that the
 * threads sharing one handle (and so one owner stamp) take in turn: a word
 * held under this handle's stamp is held by another of its threads and is
 * waited for like any live owner, never SHK_EDEADLK.  The caller keeps
 * track of which thread holds it and refuses that thread's re-lock itself
 * (the sync objects' holder, sync.h).
 */
SHK_HIDDEN int shk__lock_acquire_threads(shk_seg *seg, _Atomic uint32_t *w,
					 int64_t timeout_ns);
/*
 * shk__lock_release unlocks.  If the lock is still marked OWNER_DIED (not
 * made consistent), it becomes NOTRECOVERABLE and every waiter is woken.
 * Returns 0, or SHK_EPERM when this handle is not the owner.
 */
SHK_HIDDEN int shk__lock_release(shk_seg *seg, _Atomic uint32_t *w);
/* Clears OWNER_DIED; SHK_EPERM if not the owner, SHK_EINVAL if not set. */
SHK_HIDDEN int shk__lock_consistent(shk_seg *seg, _Atomic uint32_t *w);
/*
 * shk__lock_abandon marks w, held under owner stamp `stamp` by a thread
 * that is exiting, ABANDONED (keeping WAITERS) and wakes one sleeper, so
 * that the next locker, in any process, takes it over with
 * SHK_EOWNERDEAD, as from a dead process.  Returns 1 when it did, 0 when
 * w no longer names stamp.  For the sync objects' record of held words
 * (sync_mutex.c), at thread exit.
 */
SHK_HIDDEN int shk__lock_abandon(_Atomic uint32_t *w, uint32_t stamp);
/* Whether lock word value v is ABANDONED (its holder thread exited). */
static inline int
shk__lock_abandoned(uint32_t v)
{
	return (v & (SHK__STAMP_MASK | SHK__LOCK_OWNER_DIED)) ==
	       SHK__LOCK_OWNER_DIED;
}
/* Current owner stamp (0 = free), read relaxed, for tools. */
static inline uint32_t
shk__lock_owner(_Atomic uint32_t *w)
{
	/* relaxed: an informational snapshot */
	return atomic_load_explicit(w, memory_order_relaxed) & SHK__STAMP_MASK;
}

#endif /* SHK_LOCK_H */
