/*
 * sync_event.c - events: auto-reset (each set releases one waiter) and
 * manual-reset (set releases everyone until reset).
 *
 * Shared words: state (0 reset, 1 set), written by setters (release store),
 * resetters (relaxed store) and, for auto-reset events, by the waiter that
 * consumes a set (acquire CAS 1 -> 0); the waitpoint wp (wait.h sleeper
 * protocol: a setter publishes state, then shk__wake fences and wakes only
 * when wp.waiters != 0).  Happens-before: a set's release store pairs with
 * the waiter's acquire load/CAS, so what the setter wrote before setting is
 * visible after the wait.
 * A party killed mid-operation: every change is one store or CAS on state,
 * so a killed setter either set or did not; a setter killed between the
 * store and the wake leaves sleepers asleep until the end of their 20 ms
 * sleep slice (shk__sync_sleep); a waiter killed asleep leaves
 * wp.waiters > 0 until a wake that reaches nobody repairs it (wait.h,
 * Holders).  A process that dies before
 * setting is not detected: waiters time out (docs/sync.md).
 */
#include "sync.h"

#include <limits.h>

static int
event_init(void *mem, const shk_sync_opts *o)
{
	struct shk__event_shm *m = mem;

	if (o->flags & ~(SHK_EVENT_MANUAL | SHK_EVENT_SET))
		return SHK_EINVAL;
	m->mode = (o->flags & SHK_EVENT_MANUAL) ? SHK__EV_MANUAL : SHK__EV_AUTO;
	/* relaxed: published by the registry's release store of READY */
	atomic_store_explicit(&m->state, (o->flags & SHK_EVENT_SET) ? 1 : 0,
			      memory_order_relaxed);
	return 0;
}

int
shk_event_open(shk_seg *seg, const char *name, unsigned flags,
	       const shk_sync_opts *opts, shk_event **out)
{
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = shk__sync_new(seg, name, flags, opts, SHK_KIND_EVENT, event_init,
			     &rc);
	if (*out) {
		/* volatile: one load, checked again as in shk_sem_open() */
		uint32_t mode = *(const volatile uint32_t *)&(*out)->m->mode;

		if (mode != SHK__EV_AUTO && mode != SHK__EV_MANUAL) {
			shk_event_close(*out);
			*out = NULL;
			return SHK_ECORRUPT;
		}
		(*out)->mode = mode;
	}
	return rc;
}

int
shk_event_set(shk_event *e)
{
	if (!e)
		return SHK_EINVAL;
	/* release: publishes what the setter wrote before; pairs with the
	 * acquire load / CAS in is_set() */
	atomic_store_explicit(&e->m->state, 1, memory_order_release);
	SHK_CRASHPOINT("event.set.before_wake");
	shk__wake(e->seg, &e->m->wp, e->mode == SHK__EV_MANUAL ? INT_MAX : 1);
	return 0;
}

int
shk_event_reset(shk_event *e)
{
	if (!e)
		return SHK_EINVAL;
	/* relaxed: a reset publishes nothing */
	atomic_store_explicit(&e->m->state, 0, memory_order_relaxed);
	return 0;
}

struct ev_arg {
	struct shk__event_shm *m;
	uint32_t mode;
};

static int
is_set(void *arg)
{
	struct ev_arg *a = arg;
	uint32_t one = 1;

	if (a->mode == SHK__EV_MANUAL)
		/* acquire: pairs with the release store in shk_event_set() */
		return atomic_load_explicit(&a->m->state,
					    memory_order_acquire) == 1;
	/* acquire: pairs with the release store in shk_event_set(); the
	 * CAS consumes the set, so one waiter wins it */
	return atomic_compare_exchange_strong_explicit(&a->m->state, &one, 0,
						       memory_order_acquire,
						       memory_order_relaxed);
}

/* Non-consuming test for the doorbell: is the event set? */
static int
peek_set(void *arg)
{
	struct shk__event_shm *m = arg;

	/* relaxed: only decides whether to make the fd readable; the wait
	 * that follows does the acquire */
	return atomic_load_explicit(&m->state, memory_order_relaxed) == 1;
}

int
shk_event_wait(shk_event *e, int64_t timeout_ns)
{
	struct ev_arg a;

	if (!e || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	a.m = e->m;
	a.mode = e->mode;
	return shk__sync_wait(e->seg, &e->db, &e->m->wp, is_set, &a, peek_set,
			      e->m, timeout_ns);
}

int
shk_event_fd(shk_event *e)
{
	if (!e)
		return SHK_EINVAL;
	return shk__sync_fd(e->seg, &e->m->wp, &e->db, peek_set, e->m);
}

void
shk_event_close(shk_event *e)
{
	shk__sync_close(e, SHK_KIND_EVENT);
}
