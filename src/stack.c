/*
 * stack.c - bounded lock-free LIFO: Treiber's stack over a fixed node
 * array, with a second Treiber list of unused nodes (ALGORITHMS.md §3).
 *
 * Shared words
 *   top, free  tagged list heads {tag:32 | index:32} (treiber.h); each
 *              successful push or pop increments the tag, so ABA needs
 *              2^32 operations between a load and its CAS.  No 128-bit
 *              CAS.
 *   next[i]    link of node i, written only by the party that holds node
 *              i (off both lists), before its push CAS.
 *   node data  written by the pusher while it holds the node, read by the
 *              popper while it holds it.
 *   depth[i]   SKSTACK2: the stack's depth while node i is on top, written
 *              only by the party that holds node i, before its push CAS
 *              (top_push).  SKSTACK1 objects have instead
 *   hdr.depth  approximate element count (relaxed add/sub).
 *
 * Invariants: every node is on at most one list; indices on lists are
 * < cap; a list has at most cap nodes (walks stop there).  A node off both
 * lists is held by exactly one party (the tag makes a stale pop fail).
 *
 * Happens-before: pusher's data writes (and, SKSTACK2, the node's depth
 * entry) -> release push onto top -> the popper's acquire pop -> its data
 * reads -> release push onto free -> the next pusher's acquire pop -> its
 * writes.  A pusher reads the current top's depth entry after an acquire
 * load of top (top_push).
 *
 * Killed mid-operation: a pusher killed after taking a free node and
 * before linking it onto top loses its element (never pushed) and leaks
 * the node; a popper killed after its pop CAS loses that element
 * (at-most-once) and leaks the node.  Capacity shrinks by one per such
 * kill; describe shows the count as leaked.  Both lists stay consistent,
 * and the stacked nodes' depth entries still count down to 1: a killed
 * pusher wrote only the entry of a node it held (test depth_kill).  A
 * party killed after its CAS and before its wake leaves sleepers unwoken
 * for at most one slice (STACK_SLICE_NS), after which they re-check (test
 * waker_killed).
 *
 * Tag wrap: a pop whose CAS meets the same top word after exactly 2^32
 * operations (tag wrapped, same node on top) unlinks a wrong next; a push
 * in that case still links correctly, but may record a depth read from the
 * node's earlier time on top: info is then off and check reports
 * SHK_ECORRUPT until that node is popped.  Both need a party stalled
 * between its load and its CAS while 2^32 operations happen, with the tag
 * ending on the same value.
 */
#include "stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "registry.h"

static uint32_t
node_len_of(uint64_t elem_len)
{
	return (uint32_t)((elem_len + 7) & ~(uint64_t)7);
}

/* The object's length for cap nodes (0 if it overflows); the offsets of
 * next[], depth[] and the nodes.  SKSTACK1 (v2 0) has no depth[]: its
 * depth_off is next_off, and the nodes follow next[]. */
static uint64_t
layout(uint64_t cap, uint32_t node_len, int v2, uint64_t *next_off,
       uint64_t *depth_off, uint64_t *nodes_off)
{
	*next_off = sizeof(struct shk__stack_hdr);
	*depth_off = *next_off + (v2 ? 4 * cap : 0);
	*nodes_off = (*depth_off + 4 * cap + 63) & ~(uint64_t)63;
	if (cap > (UINT64_MAX - *nodes_off) / node_len)
		return 0;
	return *nodes_off + cap * node_len;
}

#ifdef SHK_TEST_HOOKS
int shk__stack_create_v1;          /* stack.h */
void (*shk__stack_cas_hook)(void); /* stack.h */
#define CREATE_V2 (!shk__stack_create_v1)
#else
#define CREATE_V2 1
#endif

/*
 * Pushes node idx (held by us) onto the stack of an SKSTACK2 object: as
 * shk__tl_push, and before the CAS it stores in depth[idx] one more than
 * the depth recorded in the node it links to.  The CAS succeeds only if
 * top did not change since the load that named that node, so the node
 * stayed on top meanwhile and its depth entry was not rewritten (only a
 * node's holder writes it): the value read is the stack's depth below us.
 * Nodes below the top do not change while it is there, so depth[top] stays
 * exact until it is popped.
 */
static void
top_push(shk_stack *s, uint32_t idx)
{
	/* acquire: pairs with the release CAS of the push that put the
	 * current top there, so its depth entry is visible below */
	uint64_t h = atomic_load_explicit(&s->hdr->top, memory_order_acquire);
	unsigned spins = 0;

	for (;;) {
		uint32_t t = SHK__TL_IDX(h);
		/* relaxed: ordered by the acquire load of h; validated by
		 * the tag in the CAS.  An index out of range (corruption)
		 * is not read: the next pop reports it */
		uint32_t d =
			t < s->cap ? atomic_load_explicit(&s->ndepth[t],
							  memory_order_relaxed)
				   : 0;

		/* release: as in shk__tl_push() */
		atomic_store_explicit(&s->next[idx], t, memory_order_release);
		/* release: as the link store (walk_both(), depth_now()
		 * read it and then fence: a rewritten entry shows as a
		 * changed top); the CAS below publishes it to poppers */
		atomic_store_explicit(&s->ndepth[idx], d + 1,
				      memory_order_release);
#ifdef SHK_TEST_HOOKS
		if (shk__stack_cas_hook)
			shk__stack_cas_hook();
#endif
		/* seq_cst: publishes the node, its link and depth (pairs with
		 * the acquire of shk__tl_pop() and of the load above), and is
		 * the waker's fence (shk__wake_sc); acquire on failure: the
		 * reloaded top's depth entry is read next */
		if (atomic_compare_exchange_weak_explicit(
			    &s->hdr->top, &h,
			    SHK__TL_WORD(idx, SHK__TL_TAG(h) + 1),
			    memory_order_seq_cst, memory_order_acquire))
			return;
		shk__cas_backoff(&spins);
	}
}

static int
push_try(shk_stack *s, const void *elem)
{
	uint32_t idx;
	int rc;

	rc = shk__tl_pop(&s->hdr->free, s->next, (uint32_t)s->cap, &idx);
	if (rc)
		return rc;
	SHK_CRASHPOINT("stack.push.taken");
	memcpy(s->nodes + (uint64_t)idx * s->node_len, elem, s->elem_len);
	if (SHK_LIKELY(s->ndepth)) {
		top_push(s, idx);
	} else {
		shk__tl_push(&s->hdr->top, s->next, idx);
		/* relaxed: a statistic */
		atomic_fetch_add_explicit(&s->hdr->depth, 1,
					  memory_order_relaxed);
	}
	SHK_CRASHPOINT("stack.push.before_wake");
	/* the push's seq_cst CAS is the waker's fence (wait.h) */
	shk__wake_sc(s->seg, &s->hdr->not_empty, 1);
	return 0;
}

static int
pop_try(shk_stack *s, void *elem)
{
	uint32_t idx;
	int rc;

	rc = shk__tl_pop(&s->hdr->top, s->next, (uint32_t)s->cap, &idx);
	if (rc)
		return rc;
	SHK_CRASHPOINT("stack.pop.taken");
	memcpy(elem, s->nodes + (uint64_t)idx * s->node_len, s->elem_len);
	shk__tl_push(&s->hdr->free, s->next, idx);
	if (SHK_UNLIKELY(!s->ndepth))
		/* relaxed: a statistic */
		atomic_fetch_sub_explicit(&s->hdr->depth, 1,
					  memory_order_relaxed);
	SHK_CRASHPOINT("stack.pop.before_wake");
	/* the push's seq_cst CAS is the waker's fence (wait.h) */
	shk__wake_sc(s->seg, &s->hdr->not_full, 1);
	return 0;
}

struct sop {
	shk_stack *s;
	void *elem;
	int rc;
};

static int
push_pred(void *arg)
{
	struct sop *o = arg;

	o->rc = push_try(o->s, o->elem);
	return o->rc != SHK_EAGAIN;
}

static int
pop_pred(void *arg)
{
	struct sop *o = arg;

	o->rc = pop_try(o->s, o->elem);
	return o->rc != SHK_EAGAIN;
}

/*
 * A sleeper re-checks its condition every STACK_SLICE_NS: a pusher or
 * popper killed between its CAS and its wake (crash points
 * stack.push.before_wake, stack.pop.before_wake) leaves sleepers that no
 * one wakes, and they would otherwise sleep to their deadline, or for
 * ever.
 */
#define STACK_SLICE_NS 20000000LL

int
shk_stack_push(shk_stack *s, const void *elem, int64_t timeout_ns)
{
	struct sop o;
	int rc;

	if (!s || !elem || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	o.s = s;
	o.elem = (void *)elem;
	o.rc = 0;
	rc = shk__wait_checked(s->seg, &s->hdr->not_full, push_pred, &o,
			       timeout_ns, NULL, STACK_SLICE_NS);
	return rc ? rc : o.rc;
}

int
shk_stack_pop(shk_stack *s, void *elem, int64_t timeout_ns)
{
	struct sop o;
	int rc;

	if (!s || !elem || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	o.s = s;
	o.elem = elem;
	o.rc = 0;
	rc = shk__wait_checked(s->seg, &s->hdr->not_empty, pop_pred, &o,
			       timeout_ns, NULL, STACK_SLICE_NS);
	return rc ? rc : o.rc;
}

/*
 * The element count.  SKSTACK2: the depth entry of the top node, read
 * between two equal loads of top (exact then; after 8 tries with top
 * moving, the last value read).  SKSTACK1: the counter.
 */
static int64_t
depth_now(struct shk__stack_hdr *h, _Atomic uint32_t *ndepth, uint64_t cap)
{
	int64_t d = 0;
	int tries;

	if (!ndepth)
		/* relaxed: a statistic */
		return atomic_load_explicit(&h->depth, memory_order_relaxed);
	for (tries = 0; tries < 8; tries++) {
		/* acquire: pairs with the release CAS of top_push(), so the
		 * top node's depth entry is visible */
		uint64_t t0 =
			atomic_load_explicit(&h->top, memory_order_acquire);
		uint32_t t = SHK__TL_IDX(t0);

		/* relaxed: checked by the re-load of top below */
		d = t == SHK__TL_NIL ? 0
		    : t < cap        ? (int64_t)atomic_load_explicit(
					       &ndepth[t], memory_order_relaxed)
			      : 0;
		/* acquire fence: orders the depth load before the re-load
		 * of top (as in walk_both) */
		atomic_thread_fence(memory_order_acquire);
		/* relaxed: ordered by the fence */
		if (atomic_load_explicit(&h->top, memory_order_relaxed) == t0)
			break;
	}
	return d;
}

int
shk_stack_info(shk_stack *s, shk_stack_stats *st)
{
	int64_t d;

	if (!s || !st || st->size < sizeof(*st))
		return SHK_EINVAL;
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->elem_len = s->elem_len;
	st->cap = s->cap;
	st->type_id = s->type_id;
	d = depth_now(s->hdr, s->ndepth, s->cap);
	st->depth = d < 0 ? 0 : (uint64_t)d > s->cap ? s->cap : (uint64_t)d;
	return 0;
}

static int
stack_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	struct shk__stack_hdr *h = mem;
	uint64_t no, dp, bo;

	(void)seg;
	(void)arg;
	layout(info->cap, node_len_of(info->elem_len), CREATE_V2, &no, &dp,
	       &bo);
	h->magic = CREATE_V2 ? SHK__STACK_MAGIC2 : SHK__STACK_MAGIC;
	h->cap = info->cap;
	h->elem_len = (uint32_t)info->elem_len;
	h->node_len = node_len_of(info->elem_len);
	h->next_off = no;
	h->nodes_off = bo;
	shk__tl_init(&h->free, (_Atomic uint32_t *)((uint8_t *)mem + no),
		     info->cap);
	/* relaxed: published by the registry's release store of READY */
	atomic_store_explicit(&h->top, SHK__TL_WORD(SHK__TL_NIL, 0),
			      memory_order_relaxed);
	return 0;
}

/* Walks one list, marking nodes in seen[]; 1 if a node repeats or an
 * index is out of range, or (ndepth not NULL: the stack of an SKSTACK2
 * object) if the depth entries do not count down by one to 1 at the
 * bottom; *n gets the count. */
static int
walk(uint64_t h, _Atomic uint32_t *next, _Atomic uint32_t *ndepth, uint32_t cap,
     uint8_t *seen, uint32_t *n)
{
	uint32_t idx = SHK__TL_IDX(h), d, prev = 0;

	*n = 0;
	while (idx != SHK__TL_NIL) {
		if (idx >= cap || seen[idx])
			return 1;
		seen[idx] = 1;
		if (ndepth) {
			/* relaxed: as the link load below */
			d = atomic_load_explicit(&ndepth[idx],
						 memory_order_relaxed);
			if (*n > 0 && d + 1 != prev)
				return 1;
			prev = d;
		}
		++*n;
		/* relaxed: the caller re-checks both heads afterwards */
		idx = atomic_load_explicit(&next[idx], memory_order_relaxed);
	}
	return ndepth && *n > 0 && prev != 1;
}

/*
 * Walks both lists.  A node on both lists, a cycle or an index out of range
 * is corruption, but only a walk during which neither head changed proves
 * it (listed nodes' links are not written while listed).  Returns 0 with
 * the counts, SHK_ECORRUPT, SHK_EAGAIN (busy: no conclusion) or
 * SHK_ENOMEM.
 */
static int
walk_both(struct shk__stack_hdr *h, _Atomic uint32_t *next,
	  _Atomic uint32_t *ndepth, uint32_t cap, uint32_t *ntop,
	  uint32_t *nfree)
{
	uint8_t *seen = malloc(cap);
	int tries, rc = SHK_EAGAIN;

	if (!seen)
		return SHK_ENOMEM;
	for (tries = 0; tries < 8; tries++) {
		/* acquire: pairs with the release CASes of shk__tl_push() */
		uint64_t t0 =
			atomic_load_explicit(&h->top, memory_order_acquire);
		uint64_t f0 =
			atomic_load_explicit(&h->free, memory_order_acquire);
		int bad;

		memset(seen, 0, cap);
		bad = walk(t0, next, ndepth, cap, seen, ntop) ||
		      walk(f0, next, NULL, cap, seen, nfree);
		/* acquire fence: orders the link loads above before the
		 * re-loads of both heads (acquire loads would order only
		 * what follows them); pairs with the release link store in
		 * shk__tl_push(), which the node's holder makes after the
		 * CAS that took the node, so a link rewritten since t0/f0
		 * shows as a changed head (treiber.c).  TSan ignores the
		 * fence; the accesses it orders are all atomic. */
		atomic_thread_fence(memory_order_acquire);
		/* relaxed: ordered by the fence */
		if (atomic_load_explicit(&h->top, memory_order_relaxed) == t0 &&
		    atomic_load_explicit(&h->free, memory_order_relaxed) ==
			    f0) {
			rc = bad ? SHK_ECORRUPT : 0;
			break;
		}
	}
	free(seen);
	return rc;
}

/* The layout the header's magic names: 2 (SKSTACK2), 1, or 0 (neither).
 * The magic is read once; callers use the value, never the header again. */
static int
version_of(const struct shk__stack_hdr *h)
{
	/* volatile: one load, which the compiler may not repeat at each use
	 * of the result (a peer may rewrite the magic meanwhile) */
	uint64_t m = *(const volatile uint64_t *)&h->magic;

	return m == SHK__STACK_MAGIC2 ? 2 : m == SHK__STACK_MAGIC ? 1 : 0;
}

/* The depth entries of a layout-v object at mem (depth_off dp from
 * layout()); NULL for SKSTACK1, which has none. */
static _Atomic uint32_t *
depth_entries(void *mem, int v, uint64_t dp)
{
	return v == 2 ? (_Atomic uint32_t *)((uint8_t *)mem + dp) : NULL;
}

int
shk__kind_check_stack(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__stack_hdr *h = mem;
	uint64_t no, dp, bo, need;
	uint32_t a, b;
	int rc, v = version_of(h);

	(void)seg;
	if (info->cap == 0 || info->cap > SHK__STACK_MAX_CAP ||
	    info->elem_len == 0 || info->elem_len > SHK__STACK_MAX_ELEM ||
	    v == 0)
		return SHK_ECORRUPT;
	need = layout(info->cap, node_len_of(info->elem_len), v == 2, &no, &dp,
		      &bo);
	if (need == 0 || need > info->len)
		return SHK_ECORRUPT;
	if (h->cap != info->cap || h->elem_len != info->elem_len ||
	    h->node_len != node_len_of(info->elem_len) || h->next_off != no ||
	    h->nodes_off != bo)
		return SHK_ECORRUPT;
	rc = walk_both(h, (_Atomic uint32_t *)((uint8_t *)mem + no),
		       depth_entries(mem, v, dp), (uint32_t)info->cap, &a, &b);
	return rc == SHK_EAGAIN || rc == SHK_ENOMEM ? 0 : rc;
}

/* Busy (registry.h, shk__obj_busy_fn): a live party asleep on one of the
 * waitpoints.  A stack records no open handles. */
int
shk__kind_busy_stack(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__stack_hdr *h = mem;

	if (info->len < sizeof(*h))
		return 0;
	return shk__wp_busy(seg, &h->not_empty) ||
	       shk__wp_busy(seg, &h->not_full);
}

int
shk__kind_describe_stack(shk_seg *seg, void *mem, const shk_obj_info *info,
			 char *buf, size_t len)
{
	struct shk__stack_hdr *h = mem;
	uint32_t ntop = 0, nfree = 0;
	uint64_t no, dp, bo, need;
	int n, rc, v = version_of(h);

	(void)seg;
	/* Offsets come from the registry entry that shk__kind_check_stack
	 * validated (info, a private copy) and from one read of the magic,
	 * never from the header's offsets: a peer may rewrite h->next_off
	 * after the check (ALGORITHMS §10); a rewritten magic still gives a
	 * layout that fits the entry's length, or none. */
	need = layout(info->cap, node_len_of(info->elem_len), v == 2, &no, &dp,
		      &bo);
	if (v == 0 || need == 0 || need > info->len)
		return SHK_ECORRUPT;
	rc = walk_both(h, (_Atomic uint32_t *)((uint8_t *)mem + no),
		       depth_entries(mem, v, dp), (uint32_t)info->cap, &ntop,
		       &nfree);
	if (rc == SHK_ECORRUPT)
		return rc;
	/* relaxed: a snapshot for tools */
	if (rc == 0)
		n = snprintf(
			buf, len,
			"depth=%u/%llu free=%u leaked=%lld elem=%llu "
			"pop_waiters=%u push_waiters=%u format=SKSTACK%d",
			ntop, (unsigned long long)info->cap, nfree,
			(long long)info->cap - ntop - nfree,
			(unsigned long long)info->elem_len,
			(unsigned)atomic_load_explicit(&h->not_empty.waiters,
						       memory_order_relaxed),
			(unsigned)atomic_load_explicit(&h->not_full.waiters,
						       memory_order_relaxed),
			v);
	else
		n = snprintf(buf, len, "depth~%lld/%llu (busy)",
			     (long long)depth_now(h, depth_entries(mem, v, dp),
						  info->cap),
			     (unsigned long long)info->cap);
	if (n < 0)
		return SHK_EINVAL;
	return (size_t)n >= len ? (int)len - 1 : n;
}

/* Fills a new stack's zero fields; its length (shk__obj_open_dflt). */
static uint64_t
stack_defaults(shk_obj_desc *w)
{
	uint64_t no, dp, bo;

	if (!w->elem_len)
		w->elem_len = 8;
	if (!w->cap)
		w->cap = 1024;
	return layout(w->cap, node_len_of(w->elem_len), CREATE_V2, &no, &dp,
		      &bo);
}

int
shk_stack_open(shk_seg *seg, const char *name, unsigned flags,
	       const shk_stack_opts *opts, shk_stack **out)
{
	shk_stack_opts o = SHK_STACK_OPTS_INIT;
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	shk_obj_info info;
	uint64_t no, dp, bo;
	shk_stack *s;
	int v;
	void *mem;
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = NULL;
	if (!seg)
		return SHK_EINVAL;
	rc = shk__opts_copy(&o, sizeof(o), opts);
	if (rc)
		return rc;
	/* the caller's nonzero fields; zero ones are filled below */
	if (o.elem_len > SHK__STACK_MAX_ELEM || o.cap > SHK__STACK_MAX_CAP)
		return SHK_EINVAL;
	want.kind = SHK_KIND_STACK;
	want.type_id = o.type_id;
	want.elem_len = o.elem_len;
	want.cap = o.cap;
	want.align = 8;
	/* the handle before the object: a failed allocation after a
	 * creation would leave the stack (and a SHK_EXCL retry SHK_EEXIST) */
	s = calloc(1, sizeof(*s));
	if (!s)
		return SHK_ENOMEM;
	/* A zero field means "as stored" for an existing stack and "the
	 * default" for a new one (test create_open_defaults; filled before
	 * the lookup, the defaults made a create-or-open of an existing
	 * stack of another geometry fail with SHK_ETYPE) */
	rc = shk__obj_open_dflt(seg, name, flags, &want, stack_defaults,
				stack_init, NULL, shk__kind_check_stack, &info,
				&mem);
	if (rc) {
		free(s);
		return rc;
	}
	/* the layout checked by shk__kind_check_stack; the magic read again
	 * must still give one that fits the entry */
	v = version_of(mem);
	if (v == 0 || layout(info.cap, node_len_of(info.elem_len), v == 2, &no,
			     &dp, &bo) > info.len) {
		free(s);
		return SHK_ECORRUPT;
	}
	s->seg = seg;
	s->hdr = mem;
	s->cap = info.cap;
	s->elem_len = (uint32_t)info.elem_len;
	s->node_len = node_len_of(info.elem_len);
	s->next = (_Atomic uint32_t *)((uint8_t *)mem + no);
	s->ndepth = depth_entries(mem, v, dp);
	s->nodes = (uint8_t *)mem + bo;
	s->type_id = info.type_id;
	/* the handle keeps the segment handle until its close */
	shk__seg_ref(seg);
	*out = s;
	return 0;
}

void
shk_stack_close(shk_stack *s)
{
	shk_seg *seg;

	if (!s)
		return;
	seg = s->seg;
	free(s);
	shk__seg_unref(seg);
}
