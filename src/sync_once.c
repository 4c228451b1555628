/*
 * sync_once.c - run an initialiser exactly once across processes, again if
 * its runner died.
 *
 * Shared words: state = 0 (not run), the runner's owner stamp (running) or
 * SHK__ONCE_DONE; runs, the number of attempts started (informational);
 * the waitpoint wp on which waiters sleep while state is a stamp.
 * Transitions: 0 -> stamp (acquire CAS, the claim); dead stamp -> stamp
 * (takeover CAS by a waiter that found the runner dead); stamp -> DONE
 * (release store by the runner after fn succeeded) or stamp -> 0 (release
 * store after fn failed, so the next caller retries).
 * Happens-before: the release store of DONE pairs with the acquire load of
 * every later caller, so what fn wrote is visible once run returns.
 * A party killed mid-operation: a runner killed inside fn leaves its stamp;
 * waiters test it before sleeping and every 20 ms, and the first to find
 * it dead takes over and runs fn again (fn must cope with a half-done
 * attempt).  A runner killed after storing DONE has finished.
 * A runner thread that leaves fn through pthread_exit() or cancellation
 * lives on in a live process, so its stamp would never test dead: a
 * cleanup handler (once_abandoned()) gives the claim back as a failed
 * attempt does (stamp -> 0, release) and wakes the waiters.  Leaving fn
 * by longjmp() runs no handler and is not covered: the flag then waits
 * for the process's death.  This file is built with -fexceptions
 * (Makefile): glibc's pthread_cleanup_push is then a cleanup attribute
 * run by unwinding, not a record in the thread, which a longjmp out of
 * fn would leave pointing into our dead frame.
 */
#include "sync.h"

#include <limits.h>
#include <pthread.h>

#include "lock.h"

#define RUNNER_DEAD 1 /* check() result */

int
shk_once_open(shk_seg *seg, const char *name, unsigned flags,
	      const shk_sync_opts *opts, shk_once **out)
{
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = shk__sync_new(seg, name, flags, opts, SHK_KIND_ONCE, NULL, &rc);
	return rc;
}

struct once_arg {
	shk_seg *seg;
	struct shk__once_shm *m;
};

static int
not_running(void *arg)
{
	struct once_arg *a = arg;
	/* relaxed: a hint; the loop in shk_once_run() re-reads with
	 * acquire */
	uint32_t v = atomic_load_explicit(&a->m->state, memory_order_relaxed);

	return v == 0 || v == SHK__ONCE_DONE;
}

static int
runner_dead(void *arg)
{
	struct once_arg *a = arg;
	/* relaxed: a hint; the takeover CAS re-checks */
	uint32_t v = atomic_load_explicit(&a->m->state, memory_order_relaxed);

	if (v != 0 && v != SHK__ONCE_DONE && !shk__stamp_alive(a->seg, v))
		return RUNNER_DEAD;
	return 0;
}

/*
 * Cleanup handler around fn: the runner thread left fn by pthread_exit()
 * or cancellation.  Its stamp is the live process's, which no waiter would
 * ever find dead, so every later shk_once_run, here and in other
 * processes, waited to its timeout for as long as the process lived (test
 * once_thread_exits).  Give the claim back as a failed fn does.
 */
static void
once_abandoned(void *p)
{
	struct once_arg *a = p;
	uint32_t me = shk__seg_stamp(a->seg);

	/* release: publishes what fn wrote before it left (the next runner
	 * acquires it with its claim, as after a failed attempt); a CAS,
	 * not a store: only our own claim is ours to give back */
	atomic_compare_exchange_strong_explicit(&a->m->state, &me, 0,
						memory_order_release,
						memory_order_relaxed);
	shk__wake(a->seg, &a->m->wp, INT_MAX);
}

int
shk_once_run(shk_once *o, int (*fn)(void *arg), void *arg, int64_t timeout_ns)
{
	struct shk__once_shm *m;
	struct once_arg a;
	int64_t deadline;
	uint32_t v, me;
	int rc, test_now = 1;

	if (!o || !fn || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	m = o->m;
	/* acquire: pairs with the release store of DONE below */
	v = atomic_load_explicit(&m->state, memory_order_acquire);
	if (v == SHK__ONCE_DONE)
		return 0;
	if (o->seg->slot == UINT32_MAX)
		return SHK_EINVAL;
	me = shk__seg_stamp(o->seg);
	a.seg = o->seg;
	a.m = m;
	deadline = shk__deadline(timeout_ns);
	for (;;) {
		if (v == SHK__ONCE_DONE)
			return 0;
		if (v == 0) {
			/* acquire: a failed earlier attempt's writes are
			 * visible (pairs with its release store of 0) */
			if (atomic_compare_exchange_strong_explicit(
				    &m->state, &v, me, memory_order_acquire,
				    memory_order_acquire))
				break;
			continue;
		}
		if (test_now && v != me && !shk__stamp_alive(o->seg, v)) {
			/* acquire: pairs with the release store of 0 by a
			 * failed attempt before the dead runner's claim; the
			 * dead runner released nothing, its writes are
			 * ordered before ours by its death (the liveness
			 * test's system calls are full barriers) */
			if (atomic_compare_exchange_strong_explicit(
				    &m->state, &v, me, memory_order_acquire,
				    memory_order_acquire))
				break;
			continue;
		}
		rc = shk__wait_checked(o->seg, &m->wp, not_running, &a,
				       shk__sync_rest(timeout_ns, deadline),
				       runner_dead, SHK__LOCK_SLICE_NS);
		test_now = rc == RUNNER_DEAD;
		if (rc && rc != RUNNER_DEAD)
			return rc;
		/* acquire: pairs with the release store of DONE below */
		v = atomic_load_explicit(&m->state, memory_order_acquire);
	}
	/* relaxed: informational */
	atomic_fetch_add_explicit(&m->runs, 1, memory_order_relaxed);
	SHK_CRASHPOINT("once.run.before_fn");
	pthread_cleanup_push(once_abandoned, &a);
	rc = fn(arg);
	pthread_cleanup_pop(0);
	/* release: publishes what fn wrote; pairs with the acquire loads
	 * of later callers */
	atomic_store_explicit(&m->state, rc < 0 ? 0 : SHK__ONCE_DONE,
			      memory_order_release);
	shk__wake(o->seg, &m->wp, INT_MAX);
	return rc < 0 ? rc : 1;
}

int
shk_once_done(shk_once *o)
{
	if (!o)
		return SHK_EINVAL;
	/* acquire: pairs with the release store of DONE in shk_once_run() */
	return atomic_load_explicit(&o->m->state, memory_order_acquire) ==
	       SHK__ONCE_DONE;
}

void
shk_once_close(shk_once *o)
{
	shk__sync_close(o, SHK_KIND_ONCE);
}
