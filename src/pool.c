/*
 * pool.c - fixed-size block pool: a tagged Treiber free list of block
 * indices plus one state word per block (ALGORITHMS.md §3, §4 "Header").
 *
 * Shared words
 *   head      free list {tag:32 | index:32}; CASed by allocators (pop) and
 *             freers (push).
 *   next[i]   link of block i; written only by the freer that owns block
 *             i, before its push CAS (shk__tl_push, treiber.h).
 *   state[i]  0 = free, or SHK__POOL_ALLOC | owner stamp.  Allocator:
 *             CAS 0 -> ALLOC after its pop; freer: CAS ALLOC -> 0 before
 *             its push.
 *
 * Invariants
 *   A block on the free list is in state 0 (a block in state 0 may be off
 *   the list only transiently, or after a crash, below).  Every index on
 *   the list is < cap, the list has at most cap nodes.  A block is handed
 *   out by at most one pop (the tag makes stale pops fail), so no block is
 *   allocated twice.  Of two frees of one block only the one whose CAS
 *   ALLOC -> 0 wins pushes it; the other sees 0 and returns SHK_EINVAL.
 *
 * Happens-before: the freer's writes to the block -> its release push ->
 * the next allocator's acquire pop -> its use of the block.  For walkers
 * (check, describe): the allocator's pop -> its release CAS of state ->
 * the freer's acquire CAS of state -> its release store of the block's
 * link (treiber.h); a walker that read either the state or the link and
 * then fenced sees the head changed (treiber.c).
 *
 * Killed mid-operation
 *   - an allocator killed between its pop and its state CAS leaks that
 *     block (state 0, on no list): shk_pool_free of it returns SHK_EINVAL;
 *     `shmkit check` reports the pool's listed/free/allocated counts.
 *   - a freer killed between its state CAS and its push leaks the block
 *     the same way.
 *   - a block allocated by a process that died stays allocated: the pool
 *     cannot know whether it was handed to another process (loans).
 *   Nothing is ever handed out twice.
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "registry.h"

static uint64_t
round_block(uint64_t len)
{
	uint64_t a = len >= 64 ? 64 : 16;

	return (len + a - 1) & ~(a - 1);
}

/* Layout of a pool of cap blocks of block_len (rounded) bytes: fills the
 * offsets and returns the total length, or 0 on overflow. */
static uint64_t
layout(uint64_t cap, uint64_t block_len, uint64_t *state_off,
       uint64_t *next_off, uint64_t *blocks_off)
{
	*state_off = sizeof(struct shk__pool_hdr);
	*next_off = *state_off + 4 * cap;
	*blocks_off = (*next_off + 4 * cap + 63) & ~(uint64_t)63;
	if (cap > (UINT64_MAX - *blocks_off) / block_len)
		return 0;
	return *blocks_off + cap * block_len;
}

static int
pool_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	struct shk__pool_hdr *h = mem;
	uint64_t so, no, bo;

	(void)seg;
	(void)arg;
	layout(info->cap, info->elem_len, &so, &no, &bo);
	h->magic = SHK__POOL_MAGIC;
	h->cap = info->cap;
	h->block_len = info->elem_len;
	h->state_off = so;
	h->next_off = no;
	h->blocks_off = bo;
	shk__tl_init(&h->head, (_Atomic uint32_t *)((uint8_t *)mem + no),
		     info->cap);
	return 0;
}

struct pool_walk {
	_Atomic uint32_t *state;
};

static int
listed_must_be_free(void *arg, uint32_t idx)
{
	struct pool_walk *w = arg;

	/* relaxed: validated by the stable-head rule of shk__tl_check(),
	 * whose acquire fence pairs with the release state CAS of
	 * shk_pool_alloc() */
	return atomic_load_explicit(&w->state[idx], memory_order_relaxed) != 0;
}

int
shk__kind_check_pool(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__pool_hdr *h = mem;
	uint64_t so, no, bo, need, i;
	struct pool_walk w;
	uint32_t n;
	int rc;

	(void)seg;
	if (info->cap == 0 || info->cap > SHK__POOL_MAX_CAP ||
	    info->elem_len == 0 || info->elem_len > SHK__POOL_MAX_BLOCK ||
	    round_block(info->elem_len) != info->elem_len)
		return SHK_ECORRUPT;
	need = layout(info->cap, info->elem_len, &so, &no, &bo);
	if (need == 0 || need > info->len)
		return SHK_ECORRUPT;
	if (h->magic != SHK__POOL_MAGIC || h->cap != info->cap ||
	    h->block_len != info->elem_len || h->state_off != so ||
	    h->next_off != no || h->blocks_off != bo)
		return SHK_ECORRUPT;
	w.state = (_Atomic uint32_t *)((uint8_t *)mem + so);
	for (i = 0; i < info->cap; i++) {
		/* relaxed: each word checked on its own */
		uint32_t s =
			atomic_load_explicit(&w.state[i], memory_order_relaxed);
		if (s &&
		    (!(s & SHK__POOL_ALLOC) ||
		     SHK__STAMP_SLOT(s & SHK__STAMP_MASK) >= seg->attach_cap))
			return SHK_ECORRUPT;
	}
	rc = shk__tl_check(&h->head, (_Atomic uint32_t *)((uint8_t *)mem + no),
			   (uint32_t)info->cap, &n, listed_must_be_free, &w);
	return rc == SHK_EAGAIN ? 0 : rc;
}

static uint64_t
count_in_use(_Atomic uint32_t *state, uint64_t cap)
{
	uint64_t i, n = 0;

	for (i = 0; i < cap; i++)
		/* relaxed: a statistic */
		n += atomic_load_explicit(&state[i], memory_order_relaxed) != 0;
	return n;
}

/*
 * in_use (a scan of the states) and listed (a walk of the free list) from
 * one moment: the scan and the walk both fall between two loads of the
 * same tagged head.  Without that, a block freed between the scan and
 * the walk counted in both (leaked < 0) and one allocated between them in
 * neither.  Why an unchanged head is enough: a block on the list at h0
 * was marked free before its push (release CAS, read by the acquire load
 * of h0), so the scan reads 0 or a later mark; a later mark follows an
 * allocator's pop, and the scan's relaxed read of that release mark plus
 * the acquire fence in shk__tl_check() make the final head load see the
 * pop (a new tag).  Blocks between pop and mark, or unmark and push, are
 * in neither count: they show in leaked for that moment.  SHK_EAGAIN
 * after 8 tries (a busy pool).
 */
static int
snapshot(struct shk__pool_hdr *h, _Atomic uint32_t *state,
	 _Atomic uint32_t *next, uint64_t cap, uint64_t *in_use,
	 uint32_t *listed)
{
	int tries, rc = SHK_EAGAIN;

	for (tries = 0; tries < 8; tries++) {
		/* acquire: pairs with the release CAS of shk__tl_push(), so
		 * the marks of the blocks listed at h0 are visible */
		uint64_t h0 =
			atomic_load_explicit(&h->head, memory_order_acquire);

		*in_use = count_in_use(state, cap);
		rc = shk__tl_check(&h->head, next, (uint32_t)cap, listed, NULL,
				   NULL);
		if (rc == SHK_ECORRUPT)
			return rc;
		/* relaxed: ordered after the scan by shk__tl_check()'s
		 * acquire fence (it ran after the scan whether or not its
		 * walk settled) */
		if (rc == 0 &&
		    atomic_load_explicit(&h->head, memory_order_relaxed) == h0)
			return 0;
		rc = SHK_EAGAIN;
	}
	return rc;
}

int
shk__kind_describe_pool(shk_seg *seg, void *mem, const shk_obj_info *info,
			char *buf, size_t len)
{
	struct shk__pool_hdr *h = mem;
	uint64_t in_use, so, no, bo, need;
	uint32_t listed = 0;
	int n, rc;

	/* Offsets come from the registry entry that shk__kind_check_pool
	 * validated (info, a private copy), never from the header: a peer
	 * may rewrite h->state_off or h->next_off after the check (ALGORITHMS
	 * §10). */
	need = layout(info->cap, info->elem_len, &so, &no, &bo);
	if (need == 0 || need > info->len)
		return SHK_ECORRUPT;
	rc = snapshot(h, (_Atomic uint32_t *)((uint8_t *)mem + so),
		      (_Atomic uint32_t *)((uint8_t *)mem + no), info->cap,
		      &in_use, &listed);
	if (rc == SHK_ECORRUPT)
		return rc;
	if (rc == 0)
		n = snprintf(buf, len,
			     "in_use=%llu/%llu block=%llu free_listed=%u "
			     "leaked=%lld",
			     (unsigned long long)in_use,
			     (unsigned long long)info->cap,
			     (unsigned long long)info->elem_len, listed,
			     (long long)(info->cap - in_use - listed));
	else
		n = snprintf(buf, len, "in_use=%llu/%llu block=%llu (busy)",
			     (unsigned long long)in_use,
			     (unsigned long long)info->cap,
			     (unsigned long long)info->elem_len);
	(void)seg;
	if (n < 0)
		return SHK_EINVAL;
	return (size_t)n >= len ? (int)len - 1 : n;
}

/* Fills a new pool's zero fields; its length (shk__obj_open_dflt). */
static uint64_t
pool_defaults(shk_obj_desc *w)
{
	uint64_t so, no, bo;

	if (!w->elem_len)
		w->elem_len = 64;
	if (!w->cap)
		w->cap = 64;
	return layout(w->cap, w->elem_len, &so, &no, &bo);
}

int
shk_pool_open(shk_seg *seg, const char *name, unsigned flags,
	      const shk_pool_opts *opts, shk_pool **out)
{
	shk_pool_opts o = SHK_POOL_OPTS_INIT;
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	shk_obj_info info;
	uint64_t so, no, bo;
	shk_pool *p;
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
	if (o.block_len > SHK__POOL_MAX_BLOCK || o.cap > SHK__POOL_MAX_CAP)
		return SHK_EINVAL;
	want.kind = SHK_KIND_POOL;
	want.type_id = o.type_id;
	want.elem_len = round_block(o.block_len); /* 0 stays 0 */
	want.cap = o.cap;
	want.align = 16;
	/* the handle before the object: a failed allocation after a
	 * creation would leave the pool (and a SHK_EXCL retry SHK_EEXIST) */
	p = calloc(1, sizeof(*p));
	if (!p)
		return SHK_ENOMEM;
	/* A zero field means "as stored" for an existing pool and "the
	 * default" for a new one (test create_open_defaults; filled before
	 * the lookup, the defaults made a create-or-open of an existing pool
	 * of another geometry fail with SHK_ETYPE) */
	rc = shk__obj_open_dflt(seg, name, flags, &want, pool_defaults,
				pool_init, NULL, shk__kind_check_pool, &info,
				&mem);
	if (rc) {
		free(p);
		return rc;
	}
	layout(info.cap, info.elem_len, &so, &no, &bo);
	p->seg = seg;
	p->hdr = mem;
	p->state = (_Atomic uint32_t *)((uint8_t *)mem + so);
	p->next = (_Atomic uint32_t *)((uint8_t *)mem + no);
	p->blocks = (uint8_t *)mem + bo;
	p->blocks_seg_off = info.off + bo;
	p->cap = info.cap;
	p->block_len = info.elem_len;
	p->type_id = info.type_id;
	p->stamp = shk__seg_stamp(seg);
	/* the handle keeps the segment handle until its close */
	shk__seg_ref(seg);
	*out = p;
	return 0;
}

void
shk_pool_close(shk_pool *p)
{
	shk_seg *seg;

	if (!p)
		return;
	seg = p->seg;
	free(p);
	shk__seg_unref(seg);
}

int
shk_pool_alloc(shk_pool *p, uint64_t *off, void **ptr)
{
	uint32_t idx, s = 0;
	int rc;

	if (!p)
		return SHK_EINVAL;
	rc = shk__tl_pop(&p->hdr->head, p->next, (uint32_t)p->cap, &idx);
	if (rc)
		return rc == SHK_EAGAIN ? SHK_ENOMEM : rc;
	SHK_CRASHPOINT("pool.alloc.popped");
	/* release (success): our pop happens before whoever reads ALLOC
	 * here: a free-list walker that then fences (shk__tl_check) sees
	 * the head changed, and the freer's acquire CAS orders our pop
	 * before its push's link store (treiber.h).  relaxed (failure):
	 * we return at once */
	if (!atomic_compare_exchange_strong_explicit(
		    &p->state[idx], &s,
		    SHK__POOL_ALLOC | (p->stamp & SHK__STAMP_MASK),
		    memory_order_release, memory_order_relaxed))
		return SHK_ECORRUPT; /* a listed block was marked in use */
	if (off)
		*off = p->blocks_seg_off + idx * p->block_len;
	if (ptr)
		*ptr = p->blocks + idx * p->block_len;
	return 0;
}

/* Block index of a segment offset, or -1 when not a block boundary. */
static int64_t
block_index(const shk_pool *p, uint64_t off)
{
	uint64_t rel;

	if (off < p->blocks_seg_off)
		return -1;
	rel = off - p->blocks_seg_off;
	if (rel % p->block_len || rel / p->block_len >= p->cap)
		return -1;
	return (int64_t)(rel / p->block_len);
}

int
shk_pool_free(shk_pool *p, uint64_t off)
{
	int64_t i;
	uint32_t s;

	if (!p)
		return SHK_EINVAL;
	i = block_index(p, off);
	if (i < 0)
		return SHK_EINVAL;
	/* relaxed: the CAS below decides */
	s = atomic_load_explicit(&p->state[i], memory_order_relaxed);
	do {
		if (!(s & SHK__POOL_ALLOC))
			return SHK_EINVAL; /* double free */
		/* acquire (success): pairs with the allocator's release
		 * CAS, so its pop happens before our push's link store (a
		 * walker's head re-check, treiber.h); the push's release CAS
		 * publishes the block.  relaxed (failure): re-checked */
	} while (!atomic_compare_exchange_weak_explicit(&p->state[i], &s, 0,
							memory_order_acquire,
							memory_order_relaxed));
	SHK_CRASHPOINT("pool.free.marked");
	shk__tl_push(&p->hdr->head, p->next, (uint32_t)i);
	return 0;
}

void *
shk_pool_ptr(shk_pool *p, uint64_t off)
{
	int64_t i;

	if (!p)
		return NULL;
	i = block_index(p, off);
	return i < 0 ? NULL : p->blocks + (uint64_t)i * p->block_len;
}

int
shk_pool_info(shk_pool *p, shk_pool_stats *st)
{
	if (!p || !st || st->size < sizeof(*st))
		return SHK_EINVAL;
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->block_len = p->block_len;
	st->cap = p->cap;
	st->type_id = p->type_id;
	st->in_use = count_in_use(p->state, p->cap);
	return 0;
}
