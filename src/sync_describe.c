/*
 * sync_describe.c - what every sync kind shares: opening through the
 * registry and the process-local handle, the doorbell upkeep of waitable
 * handles, the consistency check and the one-line description shown by
 * `shmkit info` (registry.c calls shk__kind_check_sync and
 * shk__kind_describe_sync for SHK_KIND_MUTEX .. SHK_KIND_ONCE).
 *
 * Everything here only reads shared memory, once per word, with relaxed
 * loads: a description is a snapshot and the check validates immutable
 * fields and the ranges of the mutable ones.
 */
#include "sync.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "doorbell.h"
#include "lock.h"
#include "opts.h"
#include "registry.h"

struct init_arg {
	shk__sync_init_fn fn;
	const shk_sync_opts *opts;
	uint32_t kind;
};

static int
init_cb(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	struct init_arg *a = arg;

	(void)seg;
	(void)info;
	/* The registry publishes the object with a release store of READY
	 * after this returns; plain stores are enough here. */
	/* flags: only events take any (checked by event_init()); a bit
	 * another kind does not take is a caller's mistake, refused on
	 * create like an event's unknown bit (test sync_flags_rejected; it
	 * was ignored) */
	if (a->kind != SHK_KIND_EVENT && a->opts->flags)
		return SHK_EINVAL;
	*(uint32_t *)mem = a->kind;
	return a->fn ? a->fn(mem, a->opts) : 0;
}

/*
 * The shared object and the process-local handle (struct shk_<name>) of each
 * kind: sizes, and the offset of the handle's doorbell pointer, 0 for none
 * (offset 0 is the head).
 */
struct layout {
	uint64_t len;
	size_t hlen;
	size_t db_off;
};
#define LAYOUT(name, db_off)                                                   \
	{                                                                      \
		sizeof(struct shk__##name##_shm), sizeof(struct shk_##name),   \
			db_off                                                 \
	}
#define OFF(name, member) offsetof(struct shk_##name, member)
#define IDX(kind) (SHK_KIND_##kind - SHK_KIND_MUTEX)
static const struct layout layouts[IDX(ONCE) + 1] = {
	[IDX(MUTEX)] = LAYOUT(mutex, 0),
	[IDX(RWLOCK)] = LAYOUT(rwlock, 0),
	[IDX(SEM)] = LAYOUT(sem, OFF(sem, db)),
	[IDX(BARRIER)] = LAYOUT(barrier, 0),
	[IDX(LATCH)] = LAYOUT(latch, 0),
	[IDX(EVENT)] = LAYOUT(event, OFF(event, db)),
	[IDX(COND)] = LAYOUT(cond, 0),
	[IDX(ONCE)] = LAYOUT(once, 0),
};

/* NULL for a kind that is not a sync kind. */
static const struct layout *
layout_of(uint32_t kind)
{
	if (kind < SHK_KIND_MUTEX || kind > SHK_KIND_ONCE)
		return NULL;
	return &layouts[kind - SHK_KIND_MUTEX];
}

static uint64_t
kind_len(uint32_t kind)
{
	const struct layout *l = layout_of(kind);

	return l ? l->len : 0;
}

static int
sync_open(shk_seg *seg, const char *name, unsigned flags,
	  const shk_sync_opts *opts, uint32_t kind, shk__sync_init_fn init,
	  void **mem)
{
	shk_sync_opts o = SHK_SYNC_OPTS_INIT;
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	struct init_arg a;
	shk_obj_info info;

	*mem = NULL;
	if (!seg || !name)
		return SHK_EINVAL;
	/* STYLE B3 (opts.h): a shorter struct from an older caller gives
	 * the common prefix, size 0 is SHK_EINVAL */
	if (shk__opts_copy(&o, sizeof(o), opts))
		return SHK_EINVAL;
	a.fn = init;
	a.opts = &o;
	a.kind = kind;
	want.kind = kind;
	return shk__obj_open(seg, name, flags, &want, kind_len(kind), init_cb,
			     &a, shk__kind_check_sync, &info, mem);
}

void *
shk__sync_new(shk_seg *seg, const char *name, unsigned flags,
	      const shk_sync_opts *opts, uint32_t kind, shk__sync_init_fn init,
	      int *rc)
{
	const struct layout *l = layout_of(kind);
	struct shk__sync_head *hd;
	void *h, *mem;

	if (!l) {
		*rc = SHK_EINVAL;
		return NULL;
	}
	/* the handle before the object: a failed allocation after a
	 * creation would leave the object (and a SHK_EXCL retry
	 * SHK_EEXIST) */
	h = calloc(1, l->hlen);
	if (!h) {
		*rc = SHK_ENOMEM;
		return NULL;
	}
	*rc = sync_open(seg, name, flags, opts, kind, init, &mem);
	/* the lock kinds' holders are recorded per thread; a thread's
	 * exit releases what it holds through handles in the live set
	 * (sync.h) */
	if (!*rc && (kind == SHK_KIND_MUTEX || kind == SHK_KIND_RWLOCK))
		*rc = shk__sync_live_add(seg);
	if (*rc) {
		free(h);
		return NULL;
	}
	/* the head is the first member of every handle (sync.h) */
	hd = h;
	hd->seg = seg;
	hd->mem = mem;
	/* the handle keeps the segment handle until shk__sync_close */
	shk__seg_ref(seg);
	return h;
}

/*
 * A handle's doorbell pointer is NULL, DB_OPENING while one thread opens
 * it, or the doorbell.  Concurrent first shk__sync_fd calls would both
 * open one (the second SHK_EBUSY: one listener per slot) while other
 * threads' waits read the pointer, so the first claims the pointer by CAS
 * and the others wait for its outcome.  No process-wide lock: one held
 * around the open would be taken before the doorbell's directory mutex,
 * which their fork handlers take in the other order.  A forked child
 * copies a DB_OPENING pointer, but never uses its parent's handles.
 */
#define DB_OPENING ((struct shk__doorbell *)(uintptr_t)1)

/* The handle's doorbell for its waits: NULL while none is open. */
static struct shk__doorbell *
db_get(struct shk__doorbell *_Atomic *dbp)
{
	/* acquire: pairs with the release store in shk__sync_fd(), so the
	 * doorbell it opened is complete */
	struct shk__doorbell *d =
		atomic_load_explicit(dbp, memory_order_acquire);

	return d == DB_OPENING ? NULL : d;
}

void
shk__sync_close(void *h, uint32_t kind)
{
	const struct layout *l = layout_of(kind);
	shk_seg *seg;

	if (!h)
		return;
	/* the head is the first member of every handle (sync.h) */
	seg = ((struct shk__sync_head *)h)->seg;
	/* the doorbell's close disarms in the segment: mapped until the
	 * unref below */
	if (l->db_off)
		shk__doorbell_close(db_get((struct shk__doorbell *
					    _Atomic *)((char *)h + l->db_off)));
	free(h);
	shk__seg_unref(seg);
}

int
shk__sync_sleep(shk_seg *seg, shk__waitpoint *wp, shk__wait_pred pred,
		void *arg, int64_t timeout_ns)
{
	return shk__wait_checked(seg, wp, pred, arg, timeout_ns, NULL,
				 SHK__LOCK_SLICE_NS);
}

int
shk__sync_wait(shk_seg *seg, struct shk__doorbell *_Atomic *dbp,
	       shk__waitpoint *wp, shk__wait_pred take, void *take_arg,
	       shk__wait_pred peek, void *peek_arg, int64_t timeout_ns)
{
	int rc = shk__sync_sleep(seg, wp, take, take_arg, timeout_ns);
	struct shk__doorbell *db = db_get(dbp);

	/* keep the fd meaningful whatever the outcome: the arm empties the
	 * socket, then re-checks, so the fd is readable again only if the
	 * condition still holds.  Emptying only after a success left the
	 * byte of a unit (or an auto-reset set) that another handle took,
	 * and the fd stayed readable for good: a poll loop spun on it
	 * (test fd_no_spin).  The arm's order (empty, arm, re-check) loses
	 * no wake-up (shk__doorbell_arm()). */
	if (db)
		shk__doorbell_arm(db, peek, peek_arg);
	return rc;
}

int
shk__sync_fd(shk_seg *seg, shk__waitpoint *wp,
	     struct shk__doorbell *_Atomic *db, shk__wait_pred peek, void *arg)
{
	/* acquire: pairs with the release store below (another thread's) */
	struct shk__doorbell *d =
		atomic_load_explicit(db, memory_order_acquire);
	int rc;

	while (!d || d == DB_OPENING) {
		if (d == DB_OPENING) {
			/* another thread opens it: a few system calls,
			 * bounded by the directory lock's wait */
			sched_yield();
			/* acquire: as above */
			d = atomic_load_explicit(db, memory_order_acquire);
			continue;
		}
		/* acquire on failure, which reloads d (as above); the claim
		 * itself publishes nothing, but C11 wants success at least
		 * as strong */
		if (!atomic_compare_exchange_strong_explicit(
			    db, &d, DB_OPENING, memory_order_acquire,
			    memory_order_acquire))
			continue;
		rc = shk__doorbell_open(seg, wp, &d);
		/* release: publishes the opened doorbell (or gives the claim
		 * back); pairs with the acquire loads above and in db_get() */
		atomic_store_explicit(db, rc ? NULL : d, memory_order_release);
		if (rc)
			return rc;
	}
	shk__doorbell_arm(d, peek, arg);
	return shk__doorbell_fd(d);
}

int64_t
shk__sync_left(int64_t deadline)
{
	int64_t now;

	if (deadline == INT64_MAX)
		return SHK_FOREVER;
	now = shk__now_ns();
	return now >= deadline ? 0 : deadline - now;
}

int
shk__sync_owner(shk_seg *seg, uint32_t stamp, char *buf, size_t len)
{
	uint32_t slot = SHK__STAMP_SLOT(stamp & SHK__STAMP_MASK);
	uint64_t w;

	if (slot >= seg->attach_cap)
		return snprintf(buf, len, "?(bad stamp)");
	/* relaxed: an informational snapshot */
	w = atomic_load_explicit(&shk__attach_at(seg, slot)->word,
				 memory_order_relaxed);
	if ((SHK__ATT_GEN(w) & SHK__GEN_MASK) != SHK__STAMP_GEN(stamp) ||
	    SHK__ATT_STATE(w) == SHK__ATT_FREE)
		return snprintf(buf, len, "slot%u(gone)", slot);
	return snprintf(buf, len, "%u(%s)", SHK__ATT_PID(w),
			shk__stamp_alive(seg, stamp) ? "alive" : "dead");
}

/* A lock word is 0, NOTREC or a stamp naming a slot of the table. */
static int
lock_word_ok(shk_seg *seg, uint32_t v)
{
	uint32_t s = v & SHK__STAMP_MASK;

	return s == 0 || s == SHK__LOCK_NOTREC ||
	       SHK__STAMP_SLOT(s) < seg->attach_cap;
}

int
shk__kind_check_sync(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	uint64_t need = kind_len(info->kind);
	uint32_t k;

	if (need == 0 || info->len < need)
		return SHK_ECORRUPT;
	/* relaxed throughout: immutable fields, or range checks of a
	 * snapshot */
	k = *(const uint32_t *)mem;
	if (k != info->kind)
		return SHK_ECORRUPT;
	switch (k) {
	case SHK_KIND_MUTEX: {
		struct shk__mutex_shm *m = mem;
		if (!lock_word_ok(seg, atomic_load_explicit(
					       &m->word, memory_order_relaxed)))
			return SHK_ECORRUPT;
		break;
	}
	case SHK_KIND_RWLOCK: {
		struct shk__rwlock_shm *m = mem;
		if (m->nslots != SHK__RW_SLOTS ||
		    !lock_word_ok(seg,
				  atomic_load_explicit(&m->wlock,
						       memory_order_relaxed)))
			return SHK_ECORRUPT;
		break;
	}
	case SHK_KIND_SEM: {
		struct shk__sem_shm *m = mem;
		if (m->max == 0 || m->max > SHK__SEM_MAX)
			return SHK_ECORRUPT;
		break;
	}
	case SHK_KIND_BARRIER: {
		struct shk__barrier_shm *m = mem;
		uint64_t s =
			atomic_load_explicit(&m->state, memory_order_relaxed);
		if (SHK__BAR_PARTIES(s) == 0 ||
		    SHK__BAR_ARR(s) >= SHK__BAR_PARTIES(s))
			return SHK_ECORRUPT;
		break;
	}
	case SHK_KIND_LATCH: {
		struct shk__latch_shm *m = mem;
		if (m->initial == 0 || m->initial > SHK__SEM_MAX)
			return SHK_ECORRUPT;
		break;
	}
	case SHK_KIND_EVENT: {
		struct shk__event_shm *m = mem;
		if (m->mode > SHK__EV_MANUAL)
			return SHK_ECORRUPT;
		break;
	}
	default:
		break;
	}
	return 0;
}

static int
describe_lock(shk_seg *seg, uint32_t v, char *buf, size_t len)
{
	char who[48];
	uint32_t s = v & SHK__STAMP_MASK;

	if (s == SHK__LOCK_NOTREC)
		return snprintf(buf, len, "notrecoverable");
	if (shk__lock_abandoned(v))
		return snprintf(buf, len, "abandoned waiters=%s",
				(v & SHK__LOCK_WAITERS) ? "yes" : "no");
	if (s == 0)
		return snprintf(buf, len, "unlocked");
	shk__sync_owner(seg, s, who, sizeof(who));
	return snprintf(buf, len, "locked owner=%s%s waiters=%s", who,
			(v & SHK__LOCK_OWNER_DIED) ? " inconsistent" : "",
			(v & SHK__LOCK_WAITERS) ? "yes" : "no");
}

static uint32_t
ld32(_Atomic uint32_t *p)
{
	/* relaxed: an informational snapshot */
	return atomic_load_explicit(p, memory_order_relaxed);
}

int
shk__kind_describe_sync(shk_seg *seg, void *mem, const shk_obj_info *info,
			char *buf, size_t len)
{
	int n = 0;

	switch (info->kind) {
	case SHK_KIND_MUTEX: {
		struct shk__mutex_shm *m = mem;
		n = describe_lock(seg, ld32(&m->word), buf, len);
		break;
	}
	case SHK_KIND_RWLOCK: {
		struct shk__rwlock_shm *m = mem;
		uint32_t i, holders = 0, holds = 0;
		char w[160];

		for (i = 0; i < SHK__RW_SLOTS; i++) {
			/* relaxed: a snapshot */
			uint64_t r = atomic_load_explicit(&m->readers[i],
							  memory_order_relaxed);
			if ((uint32_t)r) {
				holders++;
				holds += (uint32_t)r;
			}
		}
		describe_lock(seg, ld32(&m->wlock), w, sizeof(w));
		n = snprintf(buf, len,
			     "writer: %s%s readers=%u (in %u processes) "
			     "waiting_readers=%u",
			     w,
			     (ld32(&m->flags) & SHK__RW_NOTREC)
				     ? " notrecoverable"
			     : (ld32(&m->flags) & SHK__RW_INCONSISTENT)
				     ? " inconsistent"
				     : "",
			     holds, holders, ld32(&m->rwp.waiters));
		break;
	}
	case SHK_KIND_SEM: {
		struct shk__sem_shm *m = mem;
		n = snprintf(buf, len, "count=%u max=%u waiters=%u",
			     ld32(&m->count), m->max, ld32(&m->wp.waiters));
		break;
	}
	case SHK_KIND_BARRIER: {
		struct shk__barrier_shm *m = mem;
		/* relaxed: a snapshot */
		uint64_t s =
			atomic_load_explicit(&m->state, memory_order_relaxed);
		n = snprintf(buf, len,
			     "parties=%u arrived=%u gen=%u waiters=%u",
			     SHK__BAR_PARTIES(s), SHK__BAR_ARR(s),
			     SHK__BAR_GEN(s), ld32(&m->wp.waiters));
		break;
	}
	case SHK_KIND_LATCH: {
		struct shk__latch_shm *m = mem;
		n = snprintf(buf, len, "count=%u/%u %s waiters=%u",
			     ld32(&m->count), m->initial,
			     ld32(&m->count) ? "closed" : "open",
			     ld32(&m->wp.waiters));
		break;
	}
	case SHK_KIND_EVENT: {
		struct shk__event_shm *m = mem;
		n = snprintf(buf, len, "%s %s-reset waiters=%u",
			     ld32(&m->state) ? "set" : "reset",
			     m->mode == SHK__EV_MANUAL ? "manual" : "auto",
			     ld32(&m->wp.waiters));
		break;
	}
	case SHK_KIND_COND: {
		struct shk__cond_shm *m = mem;
		n = snprintf(buf, len, "seq=%u waiters=%u", ld32(&m->wp.seq),
			     ld32(&m->wp.waiters));
		break;
	}
	case SHK_KIND_ONCE: {
		struct shk__once_shm *m = mem;
		uint32_t s = ld32(&m->state);
		char who[48];

		if (s == SHK__ONCE_DONE)
			n = snprintf(buf, len, "done runs=%u", ld32(&m->runs));
		else if (s == 0)
			n = snprintf(buf, len, "not-run runs=%u",
				     ld32(&m->runs));
		else {
			shk__sync_owner(seg, s, who, sizeof(who));
			n = snprintf(buf, len,
				     "running runner=%s runs=%u waiters=%u",
				     who, ld32(&m->runs), ld32(&m->wp.waiters));
		}
		break;
	}
	default:
		buf[0] = '\0';
		return 0;
	}
	if (n < 0)
		return 0;
	return (size_t)n >= len ? (int)len - 1 : n;
}

/* A lock word held by a live owner (not free, not NOTREC). */
static int
lock_busy(shk_seg *seg, _Atomic uint32_t *w)
{
	/* relaxed: a snapshot for shk_obj_remove; a lock taken after it
	 * is taken after the removal's check (shmkit.h) */
	uint32_t s =
		atomic_load_explicit(w, memory_order_relaxed) & SHK__STAMP_MASK;

	return s && s != SHK__LOCK_NOTREC && shk__stamp_alive(seg, s);
}

/*
 * Busy (registry.h, shk__obj_busy_fn): a live holder of a mutex or of an
 * rwlock's write side, a live process with read holds on an rwlock, a
 * live runner of a once, or a live sleeper (or armed listener) on any
 * sync object's waitpoint.  Sync objects record no open handles.
 */
int
shk__kind_busy_sync(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	uint64_t need = kind_len(info->kind), r;
	uint32_t i, s;

	if (need == 0 || info->len < need)
		return 0;
	switch (info->kind) {
	case SHK_KIND_MUTEX:
		return lock_busy(seg, &((struct shk__mutex_shm *)mem)->word);
	case SHK_KIND_RWLOCK: {
		struct shk__rwlock_shm *m = mem;

		if (lock_busy(seg, &m->wlock) || shk__wp_busy(seg, &m->rwp) ||
		    shk__wp_busy(seg, &m->wwp))
			return 1;
		for (i = 0; i < SHK__RW_SLOTS; i++) {
			/* relaxed: a snapshot, as in lock_busy() */
			r = atomic_load_explicit(&m->readers[i],
						 memory_order_relaxed);
			if ((uint32_t)r &&
			    shk__stamp_alive(seg, (uint32_t)(r >> 32)))
				return 1;
		}
		return 0;
	}
	case SHK_KIND_SEM:
		return shk__wp_busy(seg, &((struct shk__sem_shm *)mem)->wp);
	case SHK_KIND_BARRIER:
		return shk__wp_busy(seg, &((struct shk__barrier_shm *)mem)->wp);
	case SHK_KIND_LATCH:
		return shk__wp_busy(seg, &((struct shk__latch_shm *)mem)->wp);
	case SHK_KIND_EVENT:
		return shk__wp_busy(seg, &((struct shk__event_shm *)mem)->wp);
	case SHK_KIND_COND:
		return shk__wp_busy(seg, &((struct shk__cond_shm *)mem)->wp);
	case SHK_KIND_ONCE: {
		struct shk__once_shm *m = mem;

		/* relaxed: a snapshot, as in lock_busy() */
		s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s && s != SHK__ONCE_DONE &&
		    shk__stamp_alive(seg, s & SHK__STAMP_MASK))
			return 1;
		return shk__wp_busy(seg, &m->wp);
	}
	default:
		return 0;
	}
}
