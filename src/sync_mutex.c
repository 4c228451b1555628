/*
 * sync_mutex.c - shk_mutex: the robust lock of lock.c as a named object,
 * plus the record of which words each thread holds, which every lock-like
 * handle (mutex, rwlock write side) uses.
 *
 * Shared word: m->word (lock.h layout), written by lockers (CAS 0 -> stamp,
 * takeover CAS dead stamp -> stamp|OWNER_DIED, setting WAITERS) and by the
 * owner (unlock exchange, consistent).  The happens-before edges and what a
 * killed holder leaves behind are described in lock.c: a holder killed
 * anywhere leaves either the word free or naming it, and the next locker
 * that finds its stamp dead takes the mutex over with SHK_EOWNERDEAD.
 *
 * The shared word's owner is a segment handle, so the threads that lock
 * through one segment handle share its owner stamp.  They take the word in
 * turn (shk__lock_acquire_threads: a word held under our own stamp is held
 * by another of our threads, waited for like any live owner), and each
 * thread keeps the words it holds in a thread-local list: unlock by a
 * thread that does not hold the word is SHK_EPERM, a second lock by the
 * holder SHK_EDEADLK, through the same object handle or another one.
 * Until 2026-11-24 a process-local pthread mutex in each handle serialised
 * its threads before the word; a free mutex now costs the shared CAS and
 * the list's update.
 */
#include "sync.h"

#include "lock.h"

/* The words this thread holds.  Read and written only by the thread
 * itself: plain variables, no atomics. */
static _Thread_local struct {
	uint32_t n;
	_Atomic uint32_t *w[SHK__SYNC_HELD_MAX];
} held;

/* Index of w in this thread's list, or -1. */
static int
held_at(_Atomic uint32_t *w)
{
	uint32_t i;

	for (i = held.n; i-- > 0;)
		if (held.w[i] == w)
			return (int)i;
	return -1;
}

int
shk__sync_holds(_Atomic uint32_t *w)
{
	return held_at(w) >= 0;
}

int
shk__sync_lock(shk_seg *seg, _Atomic uint32_t *w, int64_t timeout_ns)
{
	int rc;

	if (held_at(w) >= 0)
		return SHK_EDEADLK;
	if (held.n == SHK__SYNC_HELD_MAX)
		return SHK_ENOMEM;
	rc = shk__lock_acquire_threads(seg, w, timeout_ns);
	if (rc == SHK_ETIMEDOUT && timeout_ns == 0)
		rc = SHK_EAGAIN;
	if (rc == 0 || rc == SHK_EOWNERDEAD)
		held.w[held.n++] = w;
	return rc;
}

int
shk__sync_unlock(shk_seg *seg, _Atomic uint32_t *w)
{
	int i = held_at(w), rc;

	if (i < 0)
		return SHK_EPERM;
	rc = shk__lock_release(seg, w);
	if (rc == 0)
		held.w[i] = held.w[--held.n];
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
	return shk__sync_lock(m->seg, &m->m->word, timeout_ns);
}

int
shk_mutex_unlock(shk_mutex *m)
{
	if (!m)
		return SHK_EINVAL;
	return shk__sync_unlock(m->seg, &m->m->word);
}

int
shk_mutex_consistent(shk_mutex *m)
{
	if (!m)
		return SHK_EINVAL;
	if (!shk__sync_holds(&m->m->word))
		return SHK_EPERM;
	return shk__lock_consistent(m->seg, &m->m->word);
}

void
shk_mutex_close(shk_mutex *m)
{
	shk__sync_close(m, SHK_KIND_MUTEX);
}
