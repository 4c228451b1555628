/*
 * lock.c - robust lock over a futex word that names its owner.
 *
 * Protocol (shared word w, written by lockers and the owner):
 *  - lock:   CAS 0 -> me (acquire).  Contended: set WAITERS, sleep on w in
 *            slices of SHK__LOCK_SLICE_NS; after each slice test the owner
 *            stamp; if dead, CAS its value -> me|OWNER_DIED (acquire) and
 *            report SHK_EOWNERDEAD.  After having slept, a locker takes the
 *            lock as me|WAITERS, since others may still sleep (Drepper's
 *            mutex 2, "Futexes Are Tricky").
 *  - unlock: exchange -> 0 (release; pairs with the acquire CAS of the next
 *            locker); FUTEX_WAKE one only when WAITERS was set.
 *  - leave:  a locker that slept and gives up (SHK_ETIMEDOUT) may have
 *            consumed the one FUTEX_WAKE of a release, which cleared
 *            WAITERS, while a locker that took the word at 0 in between
 *            never sets it; it passes the wake on (pass_wake), or the
 *            other sleepers would notice only at the end of their slice.
 *  - timeout: a timed call (timeout_ns > 0) whose deadline has passed
 *            still tries, and recovers a dead owner, like a try, but
 *            reports SHK_ETIMEDOUT, never a try's SHK_EAGAIN.
 *  - abandon: a thread that exits holding a sync object's word (its
 *            process lives on, so its stamp does) has it marked ABANDONED
 *            at its exit (shk__lock_abandon, release CAS from its stamp);
 *            lockers take an ABANDONED word over at once, like a dead
 *            owner's (acquire CAS), and report SHK_EOWNERDEAD.
 * Invariant: a nonzero stamp in w is the only record of ownership, so a
 * holder killed anywhere leaves either w == 0 (not taken) or w naming it
 * (taken), and the takeover CAS linearises the recovery.  A SIGSTOPped
 * owner is alive and keeps the lock.
 */
#include "lock.h"
#include "wait.h"

#include <limits.h>

#define SPIN_NS 2000 /* spin about 2 us before sleeping */

static int
try_take(_Atomic uint32_t *w, uint32_t *seen, uint32_t mine)
{
	uint32_t exp = 0;

	/* acquire: pairs with the release exchange in shk__lock_release() */
	if (atomic_compare_exchange_strong_explicit(
		    w, &exp, mine, memory_order_acquire, memory_order_relaxed))
		return 1;
	*seen = exp;
	return 0;
}

/*
 * Takes the lock over from the dead owner whose word we saw as *v, keeping
 * WAITERS, and setting it when `mine` has it (we slept, others may too).
 * The CAS fails (and *v is refreshed) when the word changed meanwhile:
 * someone else took over, or the owner's word was released after all.
 */
static int
take_over(_Atomic uint32_t *w, uint32_t *v, uint32_t mine)
{
	/* acquire: pairs with the release exchange of the last unlock
	 * before the dead owner took the word (the state it started
	 * from).  The dead owner itself released nothing: its writes to
	 * the protected state are ordered before ours only by its death
	 * (it writes no more; the liveness test's system calls are full
	 * barriers).  An ABANDONED word was released by the CAS in
	 * shk__lock_abandon(), which this acquire pairs with. */
	return atomic_compare_exchange_strong_explicit(
		w, v, mine | SHK__LOCK_OWNER_DIED | (*v & SHK__LOCK_WAITERS),
		memory_order_acquire, memory_order_relaxed);
}

/*
 * Called by a locker that slept and leaves without the lock: the release
 * that woke it cleared WAITERS and woke only it, so other sleepers would
 * wait for the end of their slice.  A free lock: wake one of them; a lock
 * held without WAITERS: set it, so that its release wakes one.  At worst a
 * spurious wake, which sleepers tolerate.
 */
static void
pass_wake(_Atomic uint32_t *w)
{
	/* relaxed: the flag only asks the owner to wake; the futex call
	 * orders itself against the sleepers' value check */
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);

	for (;;) {
		if (v == 0) {
			shk__futex_wake(w, 1);
			return;
		}
		if ((v & SHK__LOCK_WAITERS) ||
		    (v & SHK__STAMP_MASK) == SHK__LOCK_NOTREC)
			return;
		/* relaxed: as above */
		if (atomic_compare_exchange_weak_explicit(
			    w, &v, v | SHK__LOCK_WAITERS, memory_order_relaxed,
			    memory_order_relaxed))
			return;
	}
}

/* Whether owner stamp `owner` lives: our own stamp always does (another
 * thread of this handle holds the word, lock_acquire's `threads`), and
 * asking the attach table would cost system calls for nothing. */
static int
owner_alive(shk_seg *seg, uint32_t owner, uint32_t me)
{
	return owner == me || shk__stamp_alive(seg, owner);
}

/*
 * threads: 0 for the words whose callers serialise this handle's threads
 * first (registry, heap, map), where our own stamp as the owner means this
 * thread already holds it (SHK_EDEADLK); 1 for the sync objects, whose
 * threads share the handle's stamp and take the word in turn: our stamp
 * then names another thread of this handle, a live owner to wait for (the
 * caller refuses its own re-lock first, shk__sync_lock).
 */
static int
lock_acquire(shk_seg *seg, _Atomic uint32_t *w, int64_t timeout_ns, int threads)
{
	uint32_t me, v, mine, owner;
	int64_t deadline, spin_end, slice, now = 0, check_at = 0;
	int rc, checked = 0;

	if (!seg || seg->slot == UINT32_MAX)
		return SHK_EINVAL;
	me = shk__seg_stamp(seg);
	mine = me;
	if (try_take(w, &v, mine))
		return 0;
	deadline = shk__deadline(timeout_ns);
	spin_end = shk__now_ns() + SPIN_NS;
	for (;;) {
		if (v == 0) {
			if (try_take(w, &v, mine))
				return 0;
			continue;
		}
		if ((v & SHK__STAMP_MASK) == SHK__LOCK_NOTREC)
			return SHK_ENOTRECOVERABLE;
		owner = v & SHK__STAMP_MASK;
		if (owner == 0) {
			/* ABANDONED (nonzero word, no owner): its holder
			 * thread exited; nothing to wait for or test */
			if (take_over(w, &v, mine))
				return SHK_EOWNERDEAD;
			continue;
		}
		if (owner == me && !threads)
			return SHK_EDEADLK;
		if (timeout_ns != 0)
			now = shk__now_ns();
		if (timeout_ns == 0 || now >= deadline) {
			/* a try still recovers a lock whose owner died
			 * (POSIX trylock reports EOWNERDEAD too), and so
			 * does a timed call at its deadline; the liveness
			 * test is a system call, paid only when the lock is
			 * held */
			if (!owner_alive(seg, owner, me)) {
				if (take_over(w, &v, mine))
					return SHK_EOWNERDEAD;
				continue;
			}
			if (timeout_ns == 0)
				return SHK_EAGAIN;
			if (mine != me) /* we slept */
				pass_wake(w);
			return SHK_ETIMEDOUT;
		}
		if (now < spin_end) {
			shk__cpu_relax();
			/* relaxed: re-read only; the CAS does the acquire */
			v = atomic_load_explicit(w, memory_order_relaxed);
			continue;
		}
		if (!(v & SHK__LOCK_WAITERS)) {
			/* relaxed: the flag only asks the owner to wake us;
			 * the futex syscall itself orders the sleep */
			if (!atomic_compare_exchange_weak_explicit(
				    w, &v, v | SHK__LOCK_WAITERS,
				    memory_order_relaxed, memory_order_relaxed))
				continue;
			v |= SHK__LOCK_WAITERS;
		}
		if (!checked) {
			/* Before the first sleep, test the owner once: a
			 * lock left by a process that is already dead is
			 * recovered now, not after a whole slice. */
			checked = 1;
			check_at = now + SHK__LOCK_SLICE_NS;
			if (!owner_alive(seg, owner, me)) {
				if (take_over(w, &v, mine))
					return SHK_EOWNERDEAD;
				continue;
			}
		}
		/* The owner test is due every slice of time, not after every
		 * sleep that ran its whole slice: a sleep ended early (a
		 * signal's EINTR, a wake) must not postpone it. */
		slice = check_at < deadline ? check_at : deadline;
		rc = shk__futex_wait(w, v, slice);
		mine = me | SHK__LOCK_WAITERS;
		/* relaxed: re-read only; the CAS does the acquire */
		v = atomic_load_explicit(w, memory_order_relaxed);
		if ((rc == SHK_ETIMEDOUT || shk__now_ns() >= check_at) &&
		    v != 0 && (v & SHK__STAMP_MASK) != SHK__LOCK_NOTREC &&
		    (v & SHK__STAMP_MASK) == owner) {
			check_at = shk__now_ns() + SHK__LOCK_SLICE_NS;
			if (!owner_alive(seg, owner, me)) {
				if (take_over(w, &v, mine))
					return SHK_EOWNERDEAD;
				continue;
			}
		}
		if (threads && shk__intr && shk__now_ns() < deadline) {
			/* interruptible (sync objects only: the registry's,
			 * heap's and map's words are internal), after any
			 * sleep, as in shk__wait_checked(); a free word is
			 * still ours to take, as at a deadline */
			if (v == 0 && try_take(w, &v, mine))
				return 0;
			pass_wake(w);
			return SHK_EINTR;
		}
		/* at the deadline, the top of the loop tries once more */
	}
}

int
shk__lock_acquire(shk_seg *seg, _Atomic uint32_t *w, int64_t timeout_ns)
{
	return lock_acquire(seg, w, timeout_ns, 0);
}

int
shk__lock_acquire_threads(shk_seg *seg, _Atomic uint32_t *w, int64_t timeout_ns)
{
	return lock_acquire(seg, w, timeout_ns, 1);
}

int
shk__lock_release(shk_seg *seg, _Atomic uint32_t *w)
{
	uint32_t v, next = 0;

	/* relaxed: checked against our own stamp, which only we write */
	v = atomic_load_explicit(w, memory_order_relaxed);
	if ((v & SHK__STAMP_MASK) != shk__seg_stamp(seg))
		return SHK_EPERM;
	if (v & SHK__LOCK_OWNER_DIED)
		next = SHK__LOCK_NOTREC;
	/* release: publishes the protected state; pairs with the acquire CAS
	 * in try_take() / the takeover in shk__lock_acquire() */
	v = atomic_exchange_explicit(w, next, memory_order_release);
	if (next)
		shk__futex_wake(w, INT_MAX);
	else if (v & SHK__LOCK_WAITERS)
		shk__futex_wake(w, 1);
	return 0;
}

int
shk__lock_abandon(_Atomic uint32_t *w, uint32_t stamp)
{
	/* relaxed: the CAS below re-checks the value */
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);

	while ((v & SHK__STAMP_MASK) == stamp) {
		/* release: publishes the exited holder's writes to the
		 * protected state; pairs with the acquire takeover CAS in
		 * take_over() */
		if (atomic_compare_exchange_weak_explicit(
			    w, &v,
			    SHK__LOCK_ABANDONED | (v & SHK__LOCK_WAITERS),
			    memory_order_release, memory_order_relaxed)) {
			if (v & SHK__LOCK_WAITERS)
				shk__futex_wake(w, 1);
			return 1;
		}
	}
	return 0;
}

int
shk__lock_consistent(shk_seg *seg, _Atomic uint32_t *w)
{
	/* relaxed: only the owner changes the word's owner bits */
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);

	if ((v & SHK__STAMP_MASK) != shk__seg_stamp(seg))
		return SHK_EPERM;
	if (!(v & SHK__LOCK_OWNER_DIED))
		return SHK_EINVAL;
	/* relaxed: we hold the lock; WAITERS may be set concurrently, hence
	 * the RMW */
	atomic_fetch_and_explicit(w, ~SHK__LOCK_OWNER_DIED,
				  memory_order_relaxed);
	return 0;
}
