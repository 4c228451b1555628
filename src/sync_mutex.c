/*
 * sync_mutex.c - shk_mutex: the robust lock of lock.c as a named object,
 * plus the process-local thread lock that every lock-like handle uses.
 *
 * Shared word: m->word (lock.h layout), written by lockers (CAS 0 -> stamp,
 * takeover CAS dead stamp -> stamp|OWNER_DIED, setting WAITERS) and by the
 * owner (unlock exchange, consistent).  The happens-before edges and what a
 * killed holder leaves behind are described in lock.c: a holder killed
 * anywhere leaves either the word free or naming it, and the next locker
 * that finds its stamp dead takes the mutex over with SHK_EOWNERDEAD.
 *
 * The shared word's owner is a segment handle, so threads that lock
 * through one handle first take the handle's pthread mutex (struct
 * shk__tlock): it orders them among themselves and tells which thread
 * holds the lock (unlock by another thread is SHK_EPERM, a second lock by
 * the holder SHK_EDEADLK).  Lock order: thread lock, then shared word;
 * unlock in the reverse order.
 */
#include "sync.h"

#include <errno.h>
#include <time.h>

#include "lock.h"

/* Each thread's identity for the thread lock: the address of a TLS byte. */
static _Thread_local char tl_marker;

static uintptr_t
self_id(void)
{
	return (uintptr_t)&tl_marker;
}

int
shk__tlock_init(struct shk__tlock *t)
{
	pthread_mutexattr_t a;
	int rc;

	if (pthread_mutexattr_init(&a))
		return SHK_ENOMEM;
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
	rc = pthread_mutex_init(&t->mu, &a);
	pthread_mutexattr_destroy(&a);
	if (rc)
		return SHK_ENOMEM;
	atomic_init(&t->holder, 0);
	return 0;
}

void
shk__tlock_fini(struct shk__tlock *t)
{
	pthread_mutex_destroy(&t->mu);
}

int
shk__tlock_mine(struct shk__tlock *t)
{
	/* relaxed: only the holder stores its own id; any other thread
	 * reads a value that is not its own, whatever it sees */
	return atomic_load_explicit(&t->holder, memory_order_relaxed) ==
	       self_id();
}

static int
tlock_take(struct shk__tlock *t, int64_t timeout_ns, int64_t deadline)
{
	struct timespec ts;
	int rc;

	if (shk__tlock_mine(t))
		return SHK_EDEADLK;
	if (timeout_ns == 0)
		rc = pthread_mutex_trylock(&t->mu);
	else if (deadline == INT64_MAX)
		rc = pthread_mutex_lock(&t->mu);
	else {
#ifdef SHK__TSAN
		/* TSan (gcc 12) does not intercept pthread_mutex_clocklock;
		 * the realtime form it does see is close enough there */
		int64_t abs_ns = shk__realtime_ns() + shk__sync_left(deadline);

		ts.tv_sec = (time_t)(abs_ns / 1000000000);
		ts.tv_nsec = (long)(abs_ns % 1000000000);
		rc = pthread_mutex_timedlock(&t->mu, &ts);
#else
		ts.tv_sec = (time_t)(deadline / 1000000000);
		ts.tv_nsec = (long)(deadline % 1000000000);
		rc = pthread_mutex_clocklock(&t->mu, CLOCK_MONOTONIC, &ts);
#endif
	}
	if (rc == EBUSY)
		return SHK_EAGAIN;
	if (rc == ETIMEDOUT)
		return SHK_ETIMEDOUT;
	if (rc)
		return SHK_EINVAL;
	/* relaxed: read back only by this thread (shk__tlock_mine) */
	atomic_store_explicit(&t->holder, self_id(), memory_order_relaxed);
	return 0;
}

static void
tlock_give(struct shk__tlock *t)
{
	/* relaxed: see shk__tlock_mine() */
	atomic_store_explicit(&t->holder, 0, memory_order_relaxed);
	pthread_mutex_unlock(&t->mu);
}

int
shk__sync_lock(shk_seg *seg, struct shk__tlock *t, _Atomic uint32_t *w,
	       int64_t timeout_ns)
{
	int64_t deadline = shk__deadline(timeout_ns);
	int rc;

	rc = tlock_take(t, timeout_ns, deadline);
	if (rc)
		return rc;
	rc = shk__lock_acquire(seg, w, shk__sync_rest(timeout_ns, deadline));
	if (rc == SHK_ETIMEDOUT && timeout_ns == 0)
		rc = SHK_EAGAIN;
	if (rc && rc != SHK_EOWNERDEAD)
		tlock_give(t);
	return rc;
}

int
shk__sync_unlock(shk_seg *seg, struct shk__tlock *t, _Atomic uint32_t *w)
{
	int rc;

	if (!shk__tlock_mine(t))
		return SHK_EPERM;
	rc = shk__lock_release(seg, w);
	tlock_give(t);
	return rc;
}

int
shk_mutex_open(shk_seg *seg, const char *name, unsigned flags,
	       const shk_sync_opts *opts, shk_mutex **out)
{
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = shk__sync_new(seg, name, flags, opts, SHK_KIND_MUTEX, NULL, &rc);
	return rc;
}

int
shk_mutex_lock(shk_mutex *m, int64_t timeout_ns)
{
	if (!m || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	return shk__sync_lock(m->seg, &m->t, &m->m->word, timeout_ns);
}

int
shk_mutex_unlock(shk_mutex *m)
{
	if (!m)
		return SHK_EINVAL;
	return shk__sync_unlock(m->seg, &m->t, &m->m->word);
}

int
shk_mutex_consistent(shk_mutex *m)
{
	if (!m)
		return SHK_EINVAL;
	if (!shk__tlock_mine(&m->t))
		return SHK_EPERM;
	return shk__lock_consistent(m->seg, &m->m->word);
}

void
shk_mutex_close(shk_mutex *m)
{
	shk__sync_close(m, SHK_KIND_MUTEX);
}
