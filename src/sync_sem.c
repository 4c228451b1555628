/*
 * sync_sem.c - counting semaphore.
 *
 * Shared words: count (posters add with a release RMW; waiters take one
 * with an acquire CAS count -> count - 1 when positive) and the waitpoint
 * wp (wait.h sleeper protocol: a poster publishes the count, then
 * shk__wake fences and issues FUTEX_WAKE only when wp.waiters != 0).
 * Happens-before: a post's release RMW pairs with the acquire CAS of the
 * wait that takes the unit, so what the poster wrote before posting is
 * visible to the taker.
 * A party killed mid-operation: a poster killed after its add but before
 * the wake leaves sleepers asleep until the end of their 20 ms sleep
 * slice (shk__sync_sleep re-checks the count then); a waiter killed
 * asleep leaves wp.waiters > 0 until a wake that reaches nobody repairs it
 * (wait.h, Holders): wake calls until then, nothing lost.  Units
 * are not owned, so one taken by a process that dies is not returned (as
 * POSIX).
 */
#include "sync.h"

static int
sem_init(void *mem, const shk_sync_opts *o)
{
	struct shk__sem_shm *m = mem;
	uint64_t max = o->max ? o->max : SHK__SEM_MAX;

	if (max > SHK__SEM_MAX || o->count > max)
		return SHK_EINVAL;
	m->max = (uint32_t)max;
	/* relaxed: published by the registry's release store of READY */
	atomic_store_explicit(&m->count, (uint32_t)o->count,
			      memory_order_relaxed);
	return 0;
}

int
shk_sem_open(shk_seg *seg, const char *name, unsigned flags,
	     const shk_sync_opts *opts, shk_sem **out)
{
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = shk__sync_new(seg, name, flags, opts, SHK_KIND_SEM, sem_init,
			     &rc);
	if (*out) {
		/* volatile: one load.  shk__kind_check_sync validated an
		 * earlier load of this immutable field; a writer into shared
		 * memory may have changed it since, so the copy we keep is
		 * checked again (the handle never re-reads it). */
		uint32_t max = *(const volatile uint32_t *)&(*out)->m->max;

		if (max == 0 || max > SHK__SEM_MAX) {
			shk_sem_close(*out);
			*out = NULL;
			return SHK_ECORRUPT;
		}
		(*out)->max = max;
	}
	return rc;
}

int
shk_sem_post(shk_sem *s, uint32_t n)
{
	uint32_t c;

	if (!s || n == 0)
		return SHK_EINVAL;
	/* relaxed: the CAS below publishes */
	c = atomic_load_explicit(&s->m->count, memory_order_relaxed);
	do {
		if (c > s->max)
			return SHK_ECORRUPT; /* no post makes it so */
		if (n > s->max - c)
			return SHK_ERANGE;
		/* release: publishes what the poster wrote; pairs with the
		 * acquire CAS in try_take() */
	} while (!atomic_compare_exchange_weak_explicit(&s->m->count, &c, c + n,
							memory_order_release,
							memory_order_relaxed));
	SHK_CRASHPOINT("sem.post.before_wake");
	shk__wake(s->seg, &s->m->wp, (int)(n > 0x7fffffff ? 0x7fffffff : n));
	return 0;
}

static int
try_take(void *arg)
{
	struct shk__sem_shm *m = arg;
	/* relaxed: the CAS does the acquire */
	uint32_t c = atomic_load_explicit(&m->count, memory_order_relaxed);

	while (c > 0) {
		/* acquire: pairs with the release CAS in shk_sem_post() */
		if (atomic_compare_exchange_weak_explicit(&m->count, &c, c - 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return 1;
	}
	return 0;
}

/* Non-consuming test for the doorbell: is a unit available? */
static int
peek_count(void *arg)
{
	struct shk__sem_shm *m = arg;

	/* relaxed: only decides whether to make the fd readable */
	return atomic_load_explicit(&m->count, memory_order_relaxed) > 0;
}

int
shk_sem_wait(shk_sem *s, int64_t timeout_ns)
{
	if (!s || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	/* the predicate takes the unit itself, so a successful wait has
	 * consumed exactly one */
	return shk__sync_wait(s->seg, &s->db, &s->m->wp, try_take, s->m,
			      peek_count, s->m, timeout_ns);
}

int
shk_sem_fd(shk_sem *s)
{
	if (!s)
		return SHK_EINVAL;
	return shk__sync_fd(s->seg, &s->m->wp, &s->db, peek_count, s->m);
}

int
shk_sem_value(shk_sem *s)
{
	uint32_t c;

	if (!s)
		return SHK_EINVAL;
	/* relaxed: a snapshot */
	c = atomic_load_explicit(&s->m->count, memory_order_relaxed);
	/* above max (at most 2^31-1): damage, not a count */
	return c > s->max ? SHK_ECORRUPT : (int)c;
}

void
shk_sem_close(shk_sem *s)
{
	shk__sync_close(s, SHK_KIND_SEM);
}
