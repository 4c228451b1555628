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

#include <limits.h>
#include <signal.h>
#include <stdlib.h>

#include "lock.h"

/*
 * The words this thread holds, each with the segment handle (its address
 * and serial) and the owner stamp it was taken under: lock words (reads
 * 0; rw the rwlock when the word is its wlock, else NULL), and the
 * rwlocks it holds read holds of (w the rwlock's memory, reads the holds
 * this thread took through seg and has not released).  Read and written
 * only by the thread itself: plain variables, no atomics.  An entry can
 * outlive its mapping: a handle closed while held, or a fork() child's
 * copy of its parent's list, and a later mapping may put another lock word
 * at the same address.  So an entry counts only while its segment handle
 * and stamp are the caller's and the word still names that stamp; any
 * other entry for the address is stale and dropped.  The handle is known
 * by its serial (shk_seg.serial), not only its address: a handle closed
 * while a thread held through it, then a fresh segment's first handle at
 * the same malloc address, mapped at the same address, with the same
 * stamp (attach slot 0, generation 1), made that thread's stale entry
 * match the new handle, and its exit released another thread's read hold
 * or lock there (test thread_exit_reuse in tests/test_sync_rwlock).
 *
 * Thread exit.  The threads of a handle share its stamp, which lives as
 * long as the process, so a word left held by a thread that exited would
 * stay held for good (the handle's other threads, its other handles and
 * every other process would wait for a live owner), and read holds it left
 * would keep writers out for good.  So the first entry a thread makes
 * arms a pthread key whose destructor (held_exit(), run on the exiting
 * thread) marks each word it still holds ABANDONED (lock.h: the next
 * locker gets SHK_EOWNERDEAD) and gives back its read holds, as a writer
 * reclaims a dead process's.  Only for segment handles still open: the
 * destructor must not follow an entry into a handle another thread closed
 * (freed, unmapped).  Hence `live`, this process's set of the segment
 * handles that opened a mutex or rwlock (shk__sync_live_add, at the
 * object's open), from which its last close removes the handle
 * (shk__sync_forget); live_mu guards it and is held by the destructor
 * while it uses a handle, so a close waits for it.  live_mu is taken with
 * every signal blocked (a handler that forks on this thread would wait
 * for it in the fork handler) and is held across fork() by the fork
 * handlers, so a child's copy is consistent.  A forked child's copy of its
 * parent's list names the parent's handles (shk__seg_inherited): skipped.
 */
enum { HELD_LOCK = 0 };
struct held_ent {
	void *w;
	const shk_seg *seg;
	uint64_t serial;            /* seg->serial */
	struct shk__rwlock_shm *rw; /* w is rw's wlock, else NULL */
	uint32_t stamp;
	uint32_t reads; /* HELD_LOCK: w is a lock word */
};
/* The entries are malloc()ed (SHK__SYNC_HELD_MAX of them, by held_arm(),
 * before the first is made; freed by the thread's last held_exit()), not
 * in the thread's storage: the library's thread-local variables take
 * static TLS (some are initial-exec, platform.h), of which a dlopen()ed
 * library gets little; 2.5 KiB there made Python's dlopen() of
 * libshmkit.so fail ("cannot allocate memory in static TLS block"). */
static _Thread_local struct {
	uint32_t n;
	uint32_t armed;     /* the thread-exit key is set (held_arm) */
	uint32_t exits;     /* held_exit() calls so far (thread exit rounds) */
	struct held_ent *e; /* n used of SHK__SYNC_HELD_MAX, or NULL */
} held;

static pthread_once_t held_once = PTHREAD_ONCE_INIT;
static pthread_key_t held_key;
static int held_key_ok;
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static const shk_seg **live;
static size_t live_n, live_cap;

/* Takes live_mu with every signal blocked; *old gets the mask back. */
static void
live_lock(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
	pthread_mutex_lock(&live_mu);
}

static void
live_unlock(const sigset_t *old)
{
	pthread_mutex_unlock(&live_mu);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* The forking thread's mask while it holds live_mu across fork() (one
 * thread at a time holds it): signals stay blocked until the parent and
 * child handlers, as in live_lock(). */
static sigset_t live_fork_mask;

static void
live_prefork(void)
{
	sigset_t old;

	live_lock(&old);
	live_fork_mask = old;
}

static void
live_postfork(void)
{
	sigset_t old = live_fork_mask;

	/* in the child: the forking thread locked it, and is this thread
	 * (a default mutex does not check the owner) */
	live_unlock(&old);
}

/* Index of seg in live, or -1.  live_mu held. */
static int
live_at(const shk_seg *seg)
{
	size_t i;

	for (i = 0; i < live_n; i++)
		if (live[i] == seg)
			return (int)i;
	return -1;
}

int
shk__sync_live_add(shk_seg *seg)
{
	const shk_seg **nl;
	sigset_t old;
	int rc = 0;

	live_lock(&old);
	if (live_at(seg) < 0) {
		if (live_n == live_cap) {
			size_t cap = live_cap ? 2 * live_cap : 8;

			nl = realloc(live, cap * sizeof(*live));
			if (!nl) {
				rc = SHK_ENOMEM;
				goto out;
			}
			live = nl;
			live_cap = cap;
		}
		live[live_n++] = seg;
	}
out:
	live_unlock(&old);
	return rc;
}

/* Whether [p, p + len) lies in seg's mapping. */
static int
in_map(const shk_seg *seg, const void *p, uint64_t len)
{
	return (const uint8_t *)p >= seg->base &&
	       shk__in_seg(seg, (uint64_t)((const uint8_t *)p - seg->base),
			   len);
}

#ifndef PTHREAD_DESTRUCTOR_ITERATIONS
#define PTHREAD_DESTRUCTOR_ITERATIONS 4
#endif

/*
 * The pthread key's destructor, on the exiting thread: abandons the words
 * it holds and gives back its read holds (above).  Entries through a
 * handle that is closed (its address not in live, or another handle's
 * serial there), inherited from a parent, or not at its stamp any more
 * are dropped untouched.  An abandoned rwlock write lock also wakes the
 * rwlock's sleeping readers, which would otherwise see it only at their
 * next 20 ms liveness check (their wait's predicate counts an abandoned
 * word, sync_rwlock.c no_writer()).
 *
 * The destructor runs in one of the rounds in which the C library calls
 * the destructors of the keys that still have values, and a later key's
 * destructor may lock after it (glibc runs PTHREAD_DESTRUCTOR_ITERATIONS
 * rounds at most, a new round only while some key was set again).  So
 * it sets its key again, which gives it another round, until it has run
 * that many times.  A lock asked for after its last run (in the library's
 * last round) is refused (held_arm()); one taken in the last round by a
 * thread that had locked nothing before its exit stays held
 * (docs/sync.md).  Bounded by
 * its own count: POSIX lets a C library run rounds for as long as values
 * are set.
 */
static void
held_exit(void *arg)
{
	sigset_t old;
	uint32_t i;

	(void)arg;
	if (held.n) {
		live_lock(&old);
		for (i = 0; i < held.n; i++) {
			struct held_ent *e = &held.e[i];
			shk_seg *seg = (shk_seg *)e->seg;

			if (live_at(seg) < 0 || seg->serial != e->serial ||
			    shk__seg_inherited(seg) ||
			    shk__seg_stamp(seg) != e->stamp)
				continue;
			if (e->reads != HELD_LOCK) {
				if (in_map(seg, e->w,
					   sizeof(struct shk__rwlock_shm)))
					shk__rwlock_exit_reads(seg, e->w,
							       e->reads);
			} else if (e->rw) {
				if (in_map(seg, e->rw,
					   sizeof(struct shk__rwlock_shm)) &&
				    shk__lock_abandon(&e->rw->wlock, e->stamp))
					shk__wake(seg, &e->rw->rwp, INT_MAX);
			} else if (in_map(seg, e->w, sizeof(uint32_t))) {
				shk__lock_abandon(e->w, e->stamp);
			}
		}
		held.n = 0;
		live_unlock(&old);
	}
	/* another round for a later destructor's locks (above); without
	 * one, a later lock arms the key again itself */
	held.armed = ++held.exits < PTHREAD_DESTRUCTOR_ITERATIONS &&
		     pthread_setspecific(held_key, &held) == 0;
	if (!held.armed) {
		free(held.e);
		held.e = NULL;
	}
}

static void
held_setup(void)
{
	held_key_ok = pthread_key_create(&held_key, held_exit) == 0;
	pthread_atfork(live_prefork, live_postfork, live_postfork);
}

/* Arms the calling thread's exit destructor: 0, or SHK_ENOMEM, also when
 * it has run for the last time (held_exit()): the thread is in its exit's
 * last round, and what it took now would stay held for good. */
static int
held_arm(void)
{
	pthread_once(&held_once, held_setup);
	if (!held_key_ok || held.exits >= PTHREAD_DESTRUCTOR_ITERATIONS)
		return SHK_ENOMEM;
	if (!held.e) {
		held.e = malloc(SHK__SYNC_HELD_MAX * sizeof(*held.e));
		if (!held.e)
			return SHK_ENOMEM;
	}
	if (pthread_setspecific(held_key, &held) != 0)
		return SHK_ENOMEM;
	held.armed = 1;
	return 0;
}

/* Index of this thread's live entry for lock word w taken through seg, or
 * -1. */
static int
held_at(shk_seg *seg, _Atomic uint32_t *w)
{
	uint32_t i, stamp = shk__seg_stamp(seg);

	for (i = held.n; i-- > 0;) {
		if (held.e[i].w != (void *)w || held.e[i].reads != HELD_LOCK)
			continue;
		/* relaxed: a word naming our stamp was last set by our own
		 * CAS (this thread's, if the entry is live), which this
		 * thread sees; any other value means the entry is stale */
		if (held.e[i].seg == seg && held.e[i].serial == seg->serial &&
		    held.e[i].stamp == stamp &&
		    (atomic_load_explicit(w, memory_order_relaxed) &
		     SHK__STAMP_MASK) == stamp)
			return (int)i;
		held.e[i] = held.e[--held.n];
	}
	return -1;
}

/* Index of this thread's live entry of read holds on rwlock m through
 * seg, or -1: live while m's readers entry for seg's slot names seg's
 * stamp and counts some; stale entries for m are dropped. */
static int
read_at(shk_seg *seg, struct shk__rwlock_shm *m)
{
	uint32_t i, stamp = shk__seg_stamp(seg);

	for (i = held.n; i-- > 0;) {
		uint64_t r;

		if (held.e[i].w != (void *)m || held.e[i].reads == HELD_LOCK)
			continue;
		/* relaxed: our own entry; only a stale one changes under us
		 * (a writer's reclaim of a dead stamp) */
		r = atomic_load_explicit(&m->readers[seg->slot],
					 memory_order_relaxed);
		if (held.e[i].seg == seg && held.e[i].serial == seg->serial &&
		    held.e[i].stamp == stamp && (uint32_t)(r >> 32) == stamp &&
		    (uint32_t)r != 0)
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
shk__sync_lock(shk_seg *seg, _Atomic uint32_t *w, int64_t timeout_ns,
	       struct shk__rwlock_shm *rw)
{
	int rc;

	if (held_at(seg, w) >= 0)
		return SHK_EDEADLK;
	if (held.n == SHK__SYNC_HELD_MAX || (!held.armed && held_arm()))
		return SHK_ENOMEM;
	rc = shk__lock_acquire_threads(seg, w, timeout_ns);
	if (rc == SHK_ETIMEDOUT && timeout_ns == 0)
		rc = SHK_EAGAIN;
	if (rc == 0 || rc == SHK_EOWNERDEAD)
		held.e[held.n++] =
			(struct held_ent){ (void *)w,           seg,
					   seg->serial,         rw,
					   shk__seg_stamp(seg), HELD_LOCK };
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

int
shk__sync_read_room(shk_seg *seg, struct shk__rwlock_shm *m)
{
	if (read_at(seg, m) < 0 && held.n == SHK__SYNC_HELD_MAX)
		return SHK_ENOMEM;
	if (!held.armed && held_arm())
		return SHK_ENOMEM;
	return 0;
}

int
shk__sync_read_add(shk_seg *seg, struct shk__rwlock_shm *m)
{
	int i = read_at(seg, m);

	if (i >= 0) {
		held.e[i].reads++;
		return 0;
	}
	if (held.n == SHK__SYNC_HELD_MAX)
		return SHK_ENOMEM;
	held.e[held.n++] = (struct held_ent){
		m, seg, seg->serial, NULL, shk__seg_stamp(seg), 1
	};
	return 0;
}

uint32_t
shk__sync_read_count(shk_seg *seg, struct shk__rwlock_shm *m)
{
	int i = read_at(seg, m);

	return i < 0 ? 0 : held.e[i].reads;
}

int
shk__sync_read_drop(shk_seg *seg, struct shk__rwlock_shm *m)
{
	int i = read_at(seg, m);

	if (i < 0)
		return SHK_EPERM;
	if (--held.e[i].reads == 0)
		held.e[i] = held.e[--held.n];
	return 0;
}

/*
 * A handle closed while this thread held one of its words left an entry
 * that only a later lookup of the same address dropped: 64 such closes
 * (Python's `with seg:` left by an exception while a lock was held) made
 * every later lock of this thread SHK_ENOMEM for good (test
 * held_after_close).  The entries of other threads are theirs: a
 * handle's last close while another thread holds a lock through it is
 * advised against (shmkit.h, shk_seg_close), and such an entry stays
 * until that thread looks the address up again; their exit destructors
 * skip it, since seg leaves the live set here.
 */
void
shk__sync_forget(const shk_seg *seg)
{
	sigset_t old;
	uint32_t i;
	int at;

	for (i = held.n; i-- > 0;) {
		if (held.e[i].seg == seg)
			held.e[i] = held.e[--held.n];
	}
	live_lock(&old);
	at = live_at(seg);
	if (at >= 0)
		live[at] = live[--live_n];
	live_unlock(&old);
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
	return shk__sync_lock(m->seg, &m->m->word, timeout_ns, NULL);
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
