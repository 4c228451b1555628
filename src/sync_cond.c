/*
 * sync_cond.c - condition variable over a shk_mutex (sequence-counter
 * futex design).
 *
 * Shared words (in the waitpoint wp): seq, the futex word, bumped by every
 * signal and broadcast (seq_cst RMW); waiters, the number of threads or
 * processes between their registration and their wake-up.
 * Protocol: a waiter reads seq while it still holds the mutex, registers in
 * waiters (seq_cst), unlocks, and sleeps on seq only while it still holds
 * the value read; so a signal issued after the waiter unlocked changes seq
 * and the futex wait returns at once (no lost wake-up).  A signaller bumps
 * seq, then reads waiters (both seq_cst) and calls FUTEX_WAKE only when
 * someone waits.  The pair is a Dekker pair (each side stores, then loads
 * the other's word): the signaller's two accesses are C11 seq_cst, but the
 * waiter's load of seq is the kernel's compare in futex_wait, not a C11
 * access; what orders it after the waiter's seq_cst increment of waiters is
 * the system call and the kernel's full barrier (smp_mb) in futex_wait
 * before it reads the word.  So the signaller either sees the registration
 * or the waiter's futex compare sees the new seq.
 * Happens-before comes from the mutex, which the waiter retakes before
 * returning; seq carries no data.
 * A party killed mid-operation: a waiter killed asleep leaves waiters > 0
 * and its holder entry (spurious FUTEX_WAKE calls until a signaller's
 * wake that reaches nobody repairs the count: wait.h, Holders); a signaller killed between the bump and
 * the wake leaves waiters asleep until the end of their 20 ms sleep slice,
 * when they see the bump; a waiter killed after retaking the mutex is a
 * dead mutex holder (SHK_EOWNERDEAD for the next locker).
 */
#include "sync.h"

#include <limits.h>

#include "lock.h"

int
shk_cond_open(shk_seg *seg, const char *name, unsigned flags,
	      const shk_sync_opts *opts, shk_cond **out)
{
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = shk__sync_new(seg, name, flags, opts, SHK_KIND_COND, NULL, &rc);
	return rc;
}

int
shk_cond_wait(shk_cond *c, shk_mutex *m, int64_t timeout_ns)
{
	shk__waitpoint *wp;
	int64_t deadline, until;
	uint32_t s;
	int rc = 0, lrc, held, intr;

	if (!c || !m || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	if (!shk__sync_holds(m->seg, &m->m->word))
		return SHK_EPERM;
	/* Taken with SHK_EOWNERDEAD and not yet made consistent: releasing
	 * it below (shk_mutex_unlock) would make it NOTRECOVERABLE for good.
	 * Refuse before releasing, so the caller still holds it and can
	 * repair it (test cond_wait_inconsistent; until 2026-11-25 the wait
	 * went on and the mutex was lost).  relaxed: we hold the lock; only
	 * its owner, this handle, sets or clears OWNER_DIED while held */
	if (atomic_load_explicit(&m->m->word, memory_order_relaxed) &
	    SHK__LOCK_OWNER_DIED)
		return SHK_EINVAL;
	wp = &c->m->wp;
	deadline = shk__deadline(timeout_ns);
	/* relaxed: read under the mutex; the futex compares it again */
	s = atomic_load_explicit(&wp->seq, memory_order_relaxed);
	/* seq_cst: the registration, the store of the Dekker pair with
	 * cond_wake() (its seq_cst bump, then seq_cst load of waiters).  Our
	 * load of the pair is the futex_wait compare of seq below, which the
	 * kernel's full barrier (smp_mb) orders after this increment; no C11
	 * order reaches into the kernel (file comment) */
	shk__wp_count_in(wp);
	/* after the increment, cleared before the decrement (wait.h) */
	held = shk__wp_hold(wp, shk__seg_stamp(c->seg));
	lrc = shk_mutex_unlock(m);
	if (lrc) {
		shk__wp_unhold(wp, held);
		/* release: after the holder entry's clear (wait.c,
		 * shk__wp_unhold()) */
		atomic_fetch_sub_explicit(&wp->waiters, 1,
					  memory_order_release);
		return lrc;
	}
	for (;;) {
		if (timeout_ns == 0) {
			rc = SHK_EAGAIN; /* a try: the contract's code */
			break;
		}
		/* sleep in slices, re-reading seq after each: a signaller
		 * killed between its bump and its FUTEX_WAKE wakes nobody */
		until = shk__now_ns() + SHK__LOCK_SLICE_NS;
		if (until > deadline)
			until = deadline;
		rc = shk__futex_wait(&wp->seq, s, until);
		/* relaxed: only tells a real wake from a spurious one */
		if (atomic_load_explicit(&wp->seq, memory_order_relaxed) != s) {
			rc = 0;
			break;
		}
		if (rc == SHK_ETIMEDOUT && until == deadline)
			break;
		/* interruptible: a signal ends the wait; a cond wait takes
		 * nothing (its mutex is retaken below), so a handler that ran
		 * between sleeps costs only the time to the next one */
		if (rc == SHK_EINTR && shk__intr)
			break;
	}
	shk__wp_unhold(wp, held);
	/* release: after the holder entry's clear (wait.c,
	 * shk__wp_unhold()) */
	atomic_fetch_sub_explicit(&wp->waiters, 1, memory_order_release);
	/* The mutex is taken back whatever ended the wait (a signal must
	 * not leave the caller without it), within timeout_ns again: a peer
	 * that keeps the mutex (or a forged owner word) must not hold this
	 * call for ever.  Until 2026-11-25 the retake waited for ever, the
	 * one blocking call without a bound.  When it runs out, the caller
	 * does not hold m: SHK_EBUSY, which no other path returns. */
	intr = shk_interruptible(0);
	lrc = shk_mutex_lock(m, timeout_ns);
	shk_interruptible(intr);
	if (lrc == SHK_ETIMEDOUT || lrc == SHK_EAGAIN)
		return SHK_EBUSY;
	return lrc ? lrc : rc;
}

static int
cond_wake(shk_cond *c, int n)
{
	shk__waitpoint *wp;

	if (!c)
		return SHK_EINVAL;
	wp = &c->m->wp;
	/* seq_cst: makes sleepers that read the old value fail their
	 * futex compare; ordered before the waiters load below.  The
	 * sleepers' side of this Dekker pair is their seq_cst increment of
	 * waiters and the kernel's compare in futex_wait, which the
	 * kernel's full barrier orders after it (file comment) */
	atomic_fetch_add_explicit(&wp->seq, 1, memory_order_seq_cst);
	SHK_CRASHPOINT("cond.signal.before_wake");
	/* seq_cst: pairs with the registration in shk_cond_wait() */
	if (atomic_load_explicit(&wp->waiters, memory_order_seq_cst) &&
	    shk__futex_wake(&wp->seq, n) == 0)
		shk__wake_missed(c->seg, wp);
	return 0;
}

int
shk_cond_signal(shk_cond *c)
{
	return cond_wake(c, 1);
}

int
shk_cond_broadcast(shk_cond *c)
{
	return cond_wake(c, INT_MAX);
}

void
shk_cond_close(shk_cond *c)
{
	shk__sync_close(c, SHK_KIND_COND);
}
