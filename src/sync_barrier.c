/*
 * sync_barrier.c - reusable barrier and one-shot latch.
 *
 * Barrier.  Shared words: state = gen:24 | parties:20 | arrived:20 (sync.h),
 * changed only by CAS: an arrival (arrived + 1, or gen + 1 and arrived = 0
 * by the last arriver), a withdrawal by a waiter that timed out (arrived -
 * 1 while gen is unchanged) and a leave (parties - 1, completing the
 * generation when everyone left has arrived); the waitpoint wp on which
 * waiters sleep until gen changes.  Happens-before: every arrival is an
 * acq_rel RMW on state, and a waiter leaves on an acquire load that sees
 * the new gen, so everything each party did before arriving is visible to
 * all parties after the barrier.
 * A party killed mid-operation: before its arrival CAS it has not arrived;
 * after it, it counts as arrived for that generation, which completes
 * normally (a last arriver killed before its wake leaves the others asleep
 * until the end of their 20 ms sleep slice: shk__sync_sleep).  A party
 * that dies and never arrives is not detected: the others wait until
 * their timeout (withdrawing) or until a supervisor calls
 * shk_barrier_leave for it.
 *
 * Latch.  Shared words: count, decremented by acq_rel CAS; the waitpoint
 * wp; waiters wait for count == 0 (acquire).  A killed counter either
 * counted down or did not; the last one killed before its wake leaves the
 * waiters asleep until the end of their 20 ms sleep slice.
 */
#include "sync.h"

#include <limits.h>

static int
barrier_init(void *mem, const shk_sync_opts *o)
{
	struct shk__barrier_shm *m = mem;

	if (o->count == 0 || o->count > SHK__BAR_MAXP)
		return SHK_EINVAL;
	/* relaxed: published by the registry's release store of READY */
	atomic_store_explicit(&m->state, SHK__BAR_STATE(0, o->count, 0),
			      memory_order_relaxed);
	return 0;
}

int
shk_barrier_open(shk_seg *seg, const char *name, unsigned flags,
		 const shk_sync_opts *opts, shk_barrier **out)
{
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = shk__sync_new(seg, name, flags, opts, SHK_KIND_BARRIER,
			     barrier_init, &rc);
	return rc;
}

struct bar_arg {
	struct shk__barrier_shm *m;
	uint32_t gen;
};

static int
gen_moved(void *arg)
{
	struct bar_arg *a = arg;
	/* acquire: pairs with the acq_rel CAS of the last arriver (or of
	 * shk_barrier_leave()) that advanced gen */
	uint64_t s = atomic_load_explicit(&a->m->state, memory_order_acquire);

	return SHK__BAR_GEN(s) != a->gen;
}

int
shk_barrier_wait(shk_barrier *b, int64_t timeout_ns)
{
	struct bar_arg a;
	uint64_t s, n;
	uint32_t p, arr;
	int rc;

	if (!b || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	a.m = b->m;
	/* relaxed: the CAS below orders */
	s = atomic_load_explicit(&b->m->state, memory_order_relaxed);
	for (;;) {
		p = SHK__BAR_PARTIES(s);
		arr = SHK__BAR_ARR(s);
		if (p == 0 || arr >= p)
			return SHK_ECORRUPT;
		if (arr + 1 == p)
			n = SHK__BAR_STATE(SHK__BAR_GEN(s) + 1, p, 0);
		else
			n = SHK__BAR_STATE(SHK__BAR_GEN(s), p, arr + 1);
		/* acq_rel: publishes our writes before arriving and, for
		 * the last arriver, sees everyone's; pairs with the acquire
		 * in gen_moved() and with the other arrivals' CAS */
		if (atomic_compare_exchange_weak_explicit(&b->m->state, &s, n,
							  memory_order_acq_rel,
							  memory_order_relaxed))
			break;
	}
	if (arr + 1 == p) {
		SHK_CRASHPOINT("barrier.wait.before_wake");
		shk__wake(b->seg, &b->m->wp, INT_MAX);
		return 1;
	}
	a.gen = SHK__BAR_GEN(s);
	rc = shk__sync_sleep(b->seg, &b->m->wp, gen_moved, &a, timeout_ns);
	if (rc == 0)
		return 0;
	/* Timed out: withdraw our arrival, unless the generation completed
	 * meanwhile (then we passed the barrier after all). */
	/* acquire: when gen moved, pairs as in gen_moved() */
	s = atomic_load_explicit(&b->m->state, memory_order_acquire);
	for (;;) {
		if (SHK__BAR_GEN(s) != a.gen)
			return 0;
		if (SHK__BAR_ARR(s) == 0)
			return SHK_ECORRUPT;
		n = s - 1; /* arrived is the low field */
		/* acquire (both ways): the reloaded state may show gen
		 * moved, as in gen_moved(); a withdrawal publishes nothing */
		if (atomic_compare_exchange_weak_explicit(&b->m->state, &s, n,
							  memory_order_acquire,
							  memory_order_acquire))
			return rc;
	}
}

int
shk_barrier_leave(shk_barrier *b)
{
	uint64_t s, n;
	uint32_t p, arr;

	if (!b)
		return SHK_EINVAL;
	/* relaxed: the CAS below orders */
	s = atomic_load_explicit(&b->m->state, memory_order_relaxed);
	for (;;) {
		p = SHK__BAR_PARTIES(s);
		arr = SHK__BAR_ARR(s);
		if (p <= 1)
			return SHK_ERANGE;
		if (arr >= p)
			return SHK_ECORRUPT;
		if (arr == p - 1 && arr > 0)
			n = SHK__BAR_STATE(SHK__BAR_GEN(s) + 1, p - 1, 0);
		else
			n = SHK__BAR_STATE(SHK__BAR_GEN(s), p - 1, arr);
		/* acq_rel: completing a generation publishes like the last
		 * arrival in shk_barrier_wait() */
		if (atomic_compare_exchange_weak_explicit(&b->m->state, &s, n,
							  memory_order_acq_rel,
							  memory_order_relaxed))
			break;
	}
	if (SHK__BAR_GEN(n) == SHK__BAR_GEN(s))
		return 0;
	/* our leave completed the generation: no arriver is the last one,
	 * so the leaver is its serial party, as the last arriver is in
	 * shk_barrier_wait() (test barrier_leave_serial; it returned 0, and
	 * that generation had no serial party) */
	shk__wake(b->seg, &b->m->wp, INT_MAX);
	return 1;
}

void
shk_barrier_close(shk_barrier *b)
{
	shk__sync_close(b, SHK_KIND_BARRIER);
}

static int
latch_init(void *mem, const shk_sync_opts *o)
{
	struct shk__latch_shm *m = mem;

	if (o->count == 0 || o->count > SHK__SEM_MAX)
		return SHK_EINVAL;
	m->initial = (uint32_t)o->count;
	/* relaxed: published by the registry's release store of READY */
	atomic_store_explicit(&m->count, (uint32_t)o->count,
			      memory_order_relaxed);
	return 0;
}

int
shk_latch_open(shk_seg *seg, const char *name, unsigned flags,
	       const shk_sync_opts *opts, shk_latch **out)
{
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = shk__sync_new(seg, name, flags, opts, SHK_KIND_LATCH, latch_init,
			     &rc);
	return rc;
}

int
shk_latch_count_down(shk_latch *l, uint32_t n)
{
	uint32_t c;

	if (!l || n == 0)
		return SHK_EINVAL;
	/* relaxed: the CAS below orders */
	c = atomic_load_explicit(&l->m->count, memory_order_relaxed);
	do {
		if (c > SHK__SEM_MAX)
			return SHK_ECORRUPT; /* above any initial count */
		if (n > c)
			return SHK_ERANGE;
		/* acq_rel: publishes our writes; the one that reaches zero
		 * also sees every earlier counter's; pairs with the acquire
		 * in is_open() */
	} while (!atomic_compare_exchange_weak_explicit(&l->m->count, &c, c - n,
							memory_order_acq_rel,
							memory_order_relaxed));
	if (c == n) {
		SHK_CRASHPOINT("latch.count_down.before_wake");
		shk__wake(l->seg, &l->m->wp, INT_MAX);
	}
	return (int)(c - n);
}

static int
is_open(void *arg)
{
	struct shk__latch_shm *m = arg;

	/* acquire: pairs with the acq_rel CAS in shk_latch_count_down() */
	return atomic_load_explicit(&m->count, memory_order_acquire) == 0;
}

int
shk_latch_wait(shk_latch *l, int64_t timeout_ns)
{
	if (!l || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	return shk__sync_sleep(l->seg, &l->m->wp, is_open, l->m, timeout_ns);
}

int
shk_latch_count(shk_latch *l)
{
	uint32_t c;

	if (!l)
		return SHK_EINVAL;
	/* relaxed: a snapshot */
	c = atomic_load_explicit(&l->m->count, memory_order_relaxed);
	return c > SHK__SEM_MAX ? SHK_ECORRUPT : (int)c;
}

void
shk_latch_close(shk_latch *l)
{
	shk__sync_close(l, SHK_KIND_LATCH);
}
