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

/*
 * The words this thread holds, each with the segment handle and the owner
 * stamp it was taken under.  Read and written only by the thread itself:
 * plain variables, no atomics.  An entry can outlive its mapping: a handle
 * closed while held, or a fork() child's copy of its parent's list, and a
 * later mapping may put another lock word at the same address.  So an
 * entry counts only while its segment handle and stamp are the caller's
 * and the word still names that stamp; any other entry for the address is
 * stale and dropped.  (A stale entry whose segment handle address and
 * stamp both recur, on a word another thread of that handle holds, would
 * still pass: that needs a handle closed while held first.)
 */
static _Thread_local struct {
	uint32_t n;
	struct held_ent {
		_Atomic uint32_t *w;
		const shk_seg *seg;
		uint32_t stamp;
	} e[SHK__SYNC_HELD_MAX];
} held;

/* Index of this thread's live entry for w taken through seg, or -1. */
static int
held_at(shk_seg *seg, _Atomic uint32_t *w)
{
	uint32_t i, stamp = shk__seg_stamp(seg);

	for (i = held.n; i-- > 0;) {
		if (held.e[i].w != w)
			continue;
		/* relaxed: a word naming our stamp was last set by our own
		 * CAS (this thread's, if the entry is live), which this
		 * thread sees; any other value means the entry is stale */
		if (held.e[i].seg == seg && held.e[i].stamp == stamp &&
		    (atomic_load_explicit(w, memory_order_relaxed) &
		     SHK__STAMP_MASK) == stamp)
			return (int)i;
		held.e[i] = held.e[--held.n];
	}
	return -1;
}

int
shk__sync_holds(shk_seg *seg, _Atomic uint32_t *w)
{
	return held_at(seg, w) >= 0;
}

int
shk__sync_lock(shk_seg *seg, _Atomic uint32_t *w, int64_t timeout_ns)
{
	int rc;

	if (held_at(seg, w) >= 0)
		return SHK_EDEADLK;
	if (held.n == SHK__SYNC_HELD_MAX)
		return SHK_ENOMEM;
	rc = shk__lock_acquire_threads(seg, w, timeout_ns);
	if (rc == SHK_ETIMEDOUT && timeout_ns == 0)
		rc = SHK_EAGAIN;
	if (rc == 0 || rc == SHK_EOWNERDEAD)
		held.e[held.n++] =
			(struct held_ent){ w, seg, shk__seg_stamp(seg) };
	return rc;
}

int
shk__sync_unlock(shk_seg *seg, _Atomic uint32_t *w)
{
	int i = held_at(seg, w), rc;

	if (i < 0)
		return SHK_EPERM;
	rc = shk__lock_release(seg, w);
	if (rc == 0)
		held.e[i] = held.e[--held.n];
	return rc;
}

/*
 * A handle closed while this thread held one of its words left an entry
 * that only a later lookup of the same address dropped: 64 such closes
 * (Python's `with seg:` left by an exception while a lock was held) made
 * every later lock of this thread SHK_ENOMEM for good (test
 * held_after_close).  The entries of other threads are theirs: a
 * handle closed while another thread holds a lock through it is the
 * caller's error (shmkit.h, shk_seg_close), and such an entry stays
 * until that thread looks the address up again.
 */
void
shk__sync_forget(const shk_seg *seg)
{
	uint32_t i;

	for (i = held.n; i-- > 0;) {
		if (held.e[i].seg == seg)
			held.e[i] = held.e[--held.n];
	}
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
	if (!shk__sync_holds(m->seg, &m->m->word))
		return SHK_EPERM;
	return shk__lock_consistent(m->seg, &m->m->word);
}

void
shk_mutex_close(shk_mutex *m)
{
	shk__sync_close(m, SHK_KIND_MUTEX);
}
