/*
 * sync_rwlock.c - writer-preferring reader-writer lock whose holders may
 * die.
 *
 * Shared words and their writers:
 *  - wlock (lock.h word): the writer, taken by wrlock (and by a reader that
 *    recovers from a dead writer).  Nonzero means a writer holds or is
 *    waiting for readers to drain, and new readers stay out: writers are
 *    preferred and cannot starve.
 *  - flags: INCONSISTENT (a writer died holding wlock; set by the one that
 *    took wlock over, cleared by shk_rwlock_consistent) and NOTREC (unlocked
 *    while inconsistent), written only under wlock.
 *  - readers[slot] = stamp:32 | count:32 for each attach slot: the read
 *    holds of the segment handle with that stamp (at most
 *    SHK__RW_MAX_HOLDS: rdlock refuses more, so the count never carries
 *    into the stamp).  Written by that handle (RMW: threads of one process
 *    share it) and, only while its stamp is dead, reset to 0 by a writer
 *    (reclaim).  A new handle on a reused slot finds a foreign stamp,
 *    whose holder is dead, and replaces it.
 *  - rwp: readers sleep here while a writer is present; wwp: the writer
 *    sleeps here while readers drain (wait.h sleeper protocol).
 * Dekker pair: a reader increments its count (seq_cst RMW) and then reads
 * wlock (seq_cst); a writer takes wlock (acquire CAS), issues a seq_cst
 * fence, then reads the counts.  So either the reader sees the writer and
 * backs out, or the writer sees the reader and waits for it.
 * Happens-before: a reader's release decrement pairs with the writer's
 * acquire scan in drained(); the writer's release of wlock pairs with the
 * readers' seq_cst load of wlock.
 * A party killed mid-operation: a reader killed holding (or between its
 * increment and its back-out) leaves its count, reclaimed by a writer that
 * finds the stamp dead (tested before sleeping and every 20 ms).  A writer
 * killed holding wlock, or while draining, is taken over by the next
 * writer or reader (lock.c), which sets INCONSISTENT and returns
 * SHK_EOWNERDEAD holding the lock exclusively.  A taker killed in its
 * recovery step (shk__lock_consistent on wlock, then setting INCONSISTENT)
 * dies holding wlock, so the next taker gets SHK_EOWNERDEAD in turn: the
 * death is never hidden (test dead_recoverer).
 * A thread that exits holding read holds has them given back at its exit
 * (shk__rwlock_exit_reads, from its record of held words in
 * sync_mutex.c: a release CAS on its handle's entry, then a wake of the
 * writer); one that exits holding wlock leaves it ABANDONED (lock.h),
 * taken over by the next writer or reader as a dead writer's (test
 * thread_exit).  So a read hold is released only by the thread that took
 * it: rdunlock by another thread is SHK_EPERM.
 */
#include "sync.h"

#include <limits.h>

#include "lock.h"

#define WRITER_DEAD 1 /* check() result: wlock's owner died */

static int
rw_init(void *mem, const shk_sync_opts *o)
{
	struct shk__rwlock_shm *m = mem;

	(void)o;
	m->nslots = SHK__RW_SLOTS;
	return 0;
}

int
shk_rwlock_open(shk_seg *seg, const char *name, unsigned flags,
		const shk_sync_opts *opts, shk_rwlock **out)
{
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = shk__sync_new(seg, name, flags, opts, SHK_KIND_RWLOCK, rw_init,
			     &rc);
	return rc;
}

static int
drained(void *arg)
{
	struct shk__rwlock_shm *m = arg;
	uint32_t i;

	for (i = 0; i < SHK__RW_SLOTS; i++) {
		/* acquire: pairs with the release decrement in
		 * shk_rwlock_rdunlock() / reader_back_out() */
		if ((uint32_t)atomic_load_explicit(&m->readers[i],
						   memory_order_acquire))
			return 0;
	}
	return 1;
}

struct reclaim_arg {
	shk_seg *seg;
	struct shk__rwlock_shm *m;
};

/* Resets the counts of dead readers; 0 keeps the writer waiting. */
static int
reclaim_dead(void *arg)
{
	struct reclaim_arg *a = arg;
	uint32_t i, me = shk__seg_stamp(a->seg);

	for (i = 0; i < SHK__RW_SLOTS; i++) {
		/* relaxed: the CAS below re-checks the value */
		uint64_t r = atomic_load_explicit(&a->m->readers[i],
						  memory_order_relaxed);
		uint32_t st = (uint32_t)(r >> 32);

		if ((uint32_t)r == 0 || st == me ||
		    shk__stamp_alive(a->seg, st))
			continue;
		/* acquire: the dead reader's reads happened before our
		 * writes; fails harmlessly if the entry changed */
		atomic_compare_exchange_strong_explicit(&a->m->readers[i], &r,
							0, memory_order_acquire,
							memory_order_relaxed);
	}
	return 0;
}

static int
drain_pred(void *arg)
{
	return drained(((struct reclaim_arg *)arg)->m);
}

static void
wr_abort(shk_rwlock *rw)
{
	shk__sync_unlock(rw->seg, &rw->m->wlock);
	shk__wake(rw->seg, &rw->m->rwp, INT_MAX);
}

/* Takes the write hold: wlock, then waits for readers. */
static int
wr_acquire(shk_rwlock *rw, int64_t timeout_ns)
{
	struct shk__rwlock_shm *m = rw->m;
	struct reclaim_arg ra = { rw->seg, rw->m };
	int64_t deadline = shk__deadline(timeout_ns);
	uint32_t f;
	int rc;

	rc = shk__sync_lock(rw->seg, &m->wlock, timeout_ns, m);
	if (rc == SHK_EOWNERDEAD) {
		/* The writer died holding: record it in flags, where it
		 * survives a drain that times out (below).  Killed between
		 * the two stores, we die holding wlock, so the next taker
		 * gets SHK_EOWNERDEAD and records it again. */
		shk__lock_consistent(rw->seg, &m->wlock);
		SHK_CRASHPOINT("rwlock.takeover.cleared");
		/* relaxed: written under wlock, published by its release */
		atomic_fetch_or_explicit(&m->flags, SHK__RW_INCONSISTENT,
					 memory_order_relaxed);
	} else if (rc) {
		return rc;
	}
	/* seq_cst fence: orders our wlock store before the reader-count
	 * loads; pairs with the seq_cst increment in shk_rwlock_rdlock() */
	SHK_FENCE_SEQ_CST(&m->wlock);
	/* relaxed: written only under wlock, which we hold */
	f = atomic_load_explicit(&m->flags, memory_order_relaxed);
	if (f & SHK__RW_NOTREC) {
		wr_abort(rw);
		return SHK_ENOTRECOVERABLE;
	}
	if (!drained(m)) {
		reclaim_dead(&ra);
		rc = shk__wait_checked(rw->seg, &m->wwp, drain_pred, &ra,
				       shk__sync_rest(timeout_ns, deadline),
				       reclaim_dead, SHK__LOCK_SLICE_NS);
		if (rc) {
			wr_abort(rw);
			return rc;
		}
	}
	return (f & SHK__RW_INCONSISTENT) ? SHK_EOWNERDEAD : 0;
}

int
shk_rwlock_wrlock(shk_rwlock *rw, int64_t timeout_ns)
{
	if (!rw || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	return wr_acquire(rw, timeout_ns);
}

int
shk_rwlock_wrunlock(shk_rwlock *rw)
{
	uint32_t f;
	int rc;

	if (!rw)
		return SHK_EINVAL;
	if (!shk__sync_holds(rw->seg, &rw->m->wlock))
		return SHK_EPERM;
	/* relaxed: written only under wlock, which we hold */
	f = atomic_load_explicit(&rw->m->flags, memory_order_relaxed);
	if (f & SHK__RW_INCONSISTENT)
		/* relaxed: published by the release of wlock below */
		atomic_store_explicit(&rw->m->flags,
				      (f & ~SHK__RW_INCONSISTENT) |
					      SHK__RW_NOTREC,
				      memory_order_relaxed);
	rc = shk__sync_unlock(rw->seg, &rw->m->wlock);
	shk__wake(rw->seg, &rw->m->rwp, INT_MAX);
	return rc;
}

int
shk_rwlock_consistent(shk_rwlock *rw)
{
	uint32_t f;

	if (!rw)
		return SHK_EINVAL;
	if (!shk__sync_holds(rw->seg, &rw->m->wlock))
		return SHK_EPERM;
	/* relaxed: written only under wlock, which we hold */
	f = atomic_load_explicit(&rw->m->flags, memory_order_relaxed);
	if (!(f & SHK__RW_INCONSISTENT))
		return SHK_EINVAL;
	atomic_store_explicit(&rw->m->flags, f & ~SHK__RW_INCONSISTENT,
			      memory_order_relaxed);
	return 0;
}

/* Makes readers[slot] ours (a foreign stamp belongs to a dead handle). */
static void
own_slot(struct shk__rwlock_shm *m, uint32_t slot, uint32_t me)
{
	/* relaxed: the CAS re-checks; the entry is only claimed here */
	uint64_t e =
		atomic_load_explicit(&m->readers[slot], memory_order_relaxed);

	while ((uint32_t)(e >> 32) != me) {
		if (atomic_compare_exchange_weak_explicit(
			    &m->readers[slot], &e, (uint64_t)me << 32,
			    memory_order_relaxed, memory_order_relaxed))
			break;
	}
}

static void
reader_back_out(shk_rwlock *rw, uint32_t slot)
{
	/* release: our reads are done; pairs with the acquire in
	 * drained() */
	atomic_fetch_sub_explicit(&rw->m->readers[slot], 1,
				  memory_order_release);
	shk__wake(rw->seg, &rw->m->wwp, 1);
}

struct rd_arg {
	shk_seg *seg;
	struct shk__rwlock_shm *m;
};

/* Whether a sleeping reader should try again: no writer, or an
 * ABANDONED write lock (its thread exited, and its exit woke us: the
 * retry takes it over at once, not at the next 20 ms check). */
static int
no_writer(void *arg)
{
	struct rd_arg *a = arg;
	/* relaxed: only a hint to retry the increment and seq_cst load
	 * of wlock in shk_rwlock_rdlock(), which order */
	uint32_t v = atomic_load_explicit(&a->m->wlock, memory_order_relaxed);

	return v == 0 || shk__lock_abandoned(v);
}

/*
 * The readers' check while they wait for the writer: WRITER_DEAD when
 * wlock names a dead owner or is ABANDONED; SHK_ENOTRECOVERABLE when wlock is
 * NOTRECOVERABLE, which no writer ever clears (nothing to wait for).
 */
static int
writer_dead(void *arg)
{
	struct rd_arg *a = arg;
	/* relaxed: a hint; the takeover CAS in lock.c re-checks */
	uint32_t v = atomic_load_explicit(&a->m->wlock, memory_order_relaxed);
	uint32_t s = v & SHK__STAMP_MASK;

	if (s == SHK__LOCK_NOTREC)
		return SHK_ENOTRECOVERABLE;
	/* ABANDONED: the writer thread exited holding it (lock.h) */
	if (shk__lock_abandoned(v) || (s && !shk__stamp_alive(a->seg, s)))
		return WRITER_DEAD;
	return 0;
}

int
shk_rwlock_rdlock(shk_rwlock *rw, int64_t timeout_ns)
{
	struct rd_arg a;
	int64_t deadline;
	uint32_t slot, me, w;
	int rc;

	if (!rw || rw->seg->slot >= SHK__RW_SLOTS ||
	    !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	/* our own write hold would make us wait for ourselves until the
	 * deadline, as wrlock (shk__sync_lock) already refuses */
	if (shk__sync_holds(rw->seg, &rw->m->wlock))
		return SHK_EDEADLK;
	/* room in this thread's record of its read holds (sync.h) */
	rc = shk__sync_read_room(rw->seg, rw->m);
	if (rc)
		return rc;
	slot = rw->seg->slot;
	me = shk__seg_stamp(rw->seg);
	a.seg = rw->seg;
	a.m = rw->m;
	deadline = shk__deadline(timeout_ns);
	for (;;) {
		own_slot(rw->m, slot, me);
		/* relaxed: our own entry, a bound only.  Between this test
		 * and its increment each thread sharing the handle adds at
		 * most one, so the count stays far below 2^32 and never
		 * carries into the stamp. */
		if ((uint32_t)atomic_load_explicit(&rw->m->readers[slot],
						   memory_order_relaxed) >=
		    SHK__RW_MAX_HOLDS)
			return SHK_ERANGE;
		/* seq_cst: orders our count before the wlock load; pairs
		 * with the fence in wr_acquire() */
		atomic_fetch_add_explicit(&rw->m->readers[slot], 1,
					  memory_order_seq_cst);
		/* seq_cst: the second half of the Dekker pair; also pairs
		 * with the release of wlock by the last writer */
		w = atomic_load_explicit(&rw->m->wlock, memory_order_seq_cst);
		if (w == 0) {
			/* relaxed: ordered by the wlock load above */
			if (!(atomic_load_explicit(&rw->m->flags,
						   memory_order_relaxed) &
			      SHK__RW_NOTREC)) {
				/* the room checked above may have gone to a
				 * recovery's write hold meanwhile */
				rc = shk__sync_read_add(rw->seg, rw->m);
				if (rc)
					reader_back_out(rw, slot);
				return rc;
			}
			reader_back_out(rw, slot);
			return SHK_ENOTRECOVERABLE;
		}
		reader_back_out(rw, slot);
		/* a NOTRECOVERABLE word is never released: no waiting */
		if ((w & SHK__STAMP_MASK) == SHK__LOCK_NOTREC)
			return SHK_ENOTRECOVERABLE;
		/* a try too: like shk_mutex_lock's, it recovers a dead
		 * writer's lock (the test is paid only with a writer in) */
		rc = writer_dead(&a);
		if (rc == 0)
			rc = shk__wait_checked(
				rw->seg, &rw->m->rwp, no_writer, &a,
				shk__sync_rest(timeout_ns, deadline),
				writer_dead, SHK__LOCK_SLICE_NS);
		if (rc == WRITER_DEAD) {
			/* Recover as a writer: the caller repairs with the
			 * lock held exclusively. */
			rc = wr_acquire(rw,
					shk__sync_rest(timeout_ns, deadline));
			if (rc != 0)
				return rc;
			/* someone else recovered it meanwhile */
			shk_rwlock_wrunlock(rw);
			continue;
		}
		if (rc)
			return rc;
	}
}

int
shk_rwlock_rdunlock(shk_rwlock *rw)
{
	uint32_t slot;
	uint64_t e;

	if (!rw || rw->seg->slot >= SHK__RW_SLOTS)
		return SHK_EINVAL;
	slot = rw->seg->slot;
	/* relaxed: our own entry; the decrement below orders */
	e = atomic_load_explicit(&rw->m->readers[slot], memory_order_relaxed);
	if ((uint32_t)(e >> 32) != shk__seg_stamp(rw->seg) || (uint32_t)e == 0)
		return SHK_EPERM;
	/* the calling thread's own holds only (sync.h): another thread's
	 * would be given back again at that thread's exit */
	if (shk__sync_read_drop(rw->seg, rw->m))
		return SHK_EPERM;
	reader_back_out(rw, slot);
	return 0;
}

uint32_t
shk_rwlock_rdheld(const shk_rwlock *rw)
{
	if (!rw || rw->seg->slot >= SHK__RW_SLOTS)
		return 0;
	return shk__sync_read_count(rw->seg, rw->m);
}

void
shk__rwlock_exit_reads(shk_seg *seg, struct shk__rwlock_shm *m, uint32_t n)
{
	_Atomic uint64_t *r;
	uint32_t me = shk__seg_stamp(seg);
	uint64_t e;

	if (seg->slot >= SHK__RW_SLOTS)
		return;
	r = &m->readers[seg->slot];
	/* relaxed: the CAS below re-checks */
	e = atomic_load_explicit(r, memory_order_relaxed);
	while ((uint32_t)(e >> 32) == me && (uint32_t)e != 0) {
		uint32_t k = (uint32_t)e < n ? (uint32_t)e : n;

		/* release: the exited thread's reads are done; pairs with
		 * the acquire in drained() */
		if (atomic_compare_exchange_weak_explicit(
			    r, &e, e - k, memory_order_release,
			    memory_order_relaxed)) {
			shk__wake(seg, &m->wwp, 1);
			return;
		}
	}
}

void
shk_rwlock_close(shk_rwlock *rw)
{
	shk__sync_close(rw, SHK_KIND_RWLOCK);
}
