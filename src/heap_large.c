/*
 * heap_large.c - the heap's large blocks (ALGORITHMS.md §4; the design is
 * at the top of heap.c): the boundary-tag chain, the size bins, the robust
 * heap lock that guards both, and repair() after a holder died.  Small
 * blocks live in runs carved from here (heap.c); the magazines' large
 * cache keeps blocks carved here in its owner's hands.
 */
#include "heap_int.h"

/* ------------------------------------------------------------------ */
/* large blocks (lock held)                                            */
/* ------------------------------------------------------------------ */

/* Free-list links come from shared memory: check before writing. */
static int
link_ok(const struct layout *L, uint64_t h)
{
	return h == 0 || blk_in(L, h);
}

static int
bin_insert(shk_seg *seg, const struct layout *L, uint64_t h, uint64_t size)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t b = bin_of(size);
	/* relaxed: bins are protected by the lock */
	uint64_t first =
		atomic_load_explicit(&hh->bins[b], memory_order_relaxed);

	if (!link_ok(L, first))
		return SHK_ECORRUPT;
	st(seg, h + 16, first);
	st(seg, h + 24, 0);
	if (first)
		st(seg, first + 24, h);
	atomic_store_explicit(&hh->bins[b], h, memory_order_relaxed);
	lk_set(&hh->bin_map,
	       atomic_load_explicit(&hh->bin_map, memory_order_relaxed) |
		       (1ull << b));
	return 0;
}

static int
bin_remove(shk_seg *seg, const struct layout *L, uint64_t h, uint64_t size)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t b = bin_of(size);
	uint64_t next = ld(seg, h + 16), prev = ld(seg, h + 24);

	if (!link_ok(L, next) || !link_ok(L, prev))
		return SHK_ECORRUPT;
	if (prev)
		st(seg, prev + 16, next);
	else
		/* relaxed: under the lock */
		atomic_store_explicit(&hh->bins[b], next, memory_order_relaxed);
	if (next)
		st(seg, next + 24, prev);
	if (!prev && !next)
		lk_set(&hh->bin_map,
		       atomic_load_explicit(&hh->bin_map,
					    memory_order_relaxed) &
			       ~(1ull << b));
	return 0;
}

/* Counts n bytes taken from the free blocks and raises the high-water
 * mark to what the chain now has in use.  Lock held. */
static void
taken(struct heap_hdr *hh, const struct layout *L, uint64_t n)
{
	/* relaxed: statistics under the lock */
	uint64_t w = lk_add(&hh->large_free, -n);

	if (L->chain_end - L->chain_off - w >
	    atomic_load_explicit(&hh->high_water, memory_order_relaxed))
		atomic_store_explicit(&hh->high_water,
				      L->chain_end - L->chain_off - w,
				      memory_order_relaxed);
}

/*
 * Finds and carves a free block with a payload of len bytes aligned to
 * align (relative to heap_off) and, when limit is nonzero, ending at most
 * limit bytes past heap_off.  Returns the header offset, 0 for no room, or
 * SHK_ECORRUPT through *rc.
 */
uint64_t
shk__heap_large_carve(shk_seg *seg, const struct layout *L, uint64_t len,
		      uint64_t align, uint64_t limit, uint32_t flags, int *rc)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t need = align_up(len + BLK_HDR, 64), budget, map;
	uint64_t f = 0, S = 0, gap = 0, n, w;
	uint32_t b;

	*rc = 0;
	if (need < BLK_MIN)
		need = BLK_MIN;
	budget = (L->chain_end - L->chain_off) / 64 + NBINS;
	map = atomic_load_explicit(&hh->bin_map, memory_order_relaxed);
	/* the non-empty bins from bin_of(need) up, lowest first */
	map &= ~((1ull << bin_of(need)) - 1) & ((1ull << NBINS) - 1);
	for (; map && !f; map &= map - 1) {
		uint64_t c;

		b = (uint32_t)__builtin_ctzll(map);
		c = atomic_load_explicit(&hh->bins[b], memory_order_relaxed);
		while (c) {
			uint64_t p, pa, sz;

			if (!budget-- || !blk_in(L, c)) {
				*rc = SHK_ECORRUPT;
				return 0;
			}
			w = ld(seg, c);
			if (!hdr_ok(c, w) || (w & F_ALL)) {
				*rc = SHK_ECORRUPT;
				return 0;
			}
			sz = w & SIZE_MASK;
			p = c + BLK_HDR;
			pa = L->heap_off + align_up(p - L->heap_off, align);
			if (pa != p && pa - p < BLK_MIN)
				pa += align;
			if (sz <= L->chain_end - c && pa - p <= sz &&
			    need <= sz - (pa - p) &&
			    (!limit || pa + len - L->heap_off <= limit)) {
				f = c;
				S = sz;
				gap = pa - p;
				break;
			}
			c = ld(seg, c + 16);
		}
	}
	if (!f)
		return 0;
	if (bin_remove(seg, L, f, S)) {
		*rc = SHK_ECORRUPT;
		return 0;
	}
	if (gap) {
		/* front split: the aligned part g becomes its own block */
		uint64_t g = f + gap;

		n = f + S;
		st(seg, g + 8, gap >> 6);
		st(seg, g, mkhdr(g, S - gap, 0));
		set_prev(seg, n, S - gap);
		SHK_CRASHPOINT("heap.split.front");
		st(seg, f, mkhdr(f, gap, 0));
		if (bin_insert(seg, L, f, gap))
			*rc = SHK_ECORRUPT; /* f stays off the bins: a leak */
		f = g;
		S -= gap;
	}
	n = f + S;
	if (S - need >= BLK_MIN) {
		uint64_t r = f + need;

		st(seg, r + 8, need >> 6);
		st(seg, r, mkhdr(r, S - need, 0));
		set_prev(seg, n, S - need);
		SHK_CRASHPOINT("heap.split.tail");
		st(seg, f, mkhdr(f, need, F_USED | flags));
		if (bin_insert(seg, L, r, S - need))
			*rc = SHK_ECORRUPT;
		S = need;
	} else {
		st(seg, f, mkhdr(f, S, F_USED | flags));
	}
	set_stamp(seg, f, shk__seg_stamp(seg));
	taken(hh, L, S);
	return f;
}

/*
 * Like shk__heap_large_carve() for an unaligned block that should not cut
 * the free space up: it is carved from the top end of the free block with
 * the highest address that holds it (a magazine: carved where the heap was
 * free at a handle's first allocation, they once split a 16 MiB heap into
 * pieces of 1 MiB, test mag_frag).  The used part is the tail: its header
 * is written inside the still larger free block, then the free head
 * shrinks with one store, so every prefix of the chain stays walkable.
 * Walks every bin from the size up (a rare call: once per magazine).
 */
uint64_t
shk__heap_carve_top(shk_seg *seg, const struct layout *L, uint64_t len,
		    uint32_t flags, int *rc)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t need = align_up(len + BLK_HDR, 64), budget, map;
	uint64_t f = 0, S = 0, t, w;

	*rc = 0;
	if (need < BLK_MIN)
		need = BLK_MIN;
	budget = (L->chain_end - L->chain_off) / 64 + NBINS;
	/* relaxed: the bins are protected by the lock */
	map = atomic_load_explicit(&hh->bin_map, memory_order_relaxed);
	map &= ~((1ull << bin_of(need)) - 1) & ((1ull << NBINS) - 1);
	for (; map; map &= map - 1) {
		uint32_t b = (uint32_t)__builtin_ctzll(map);
		uint64_t c = atomic_load_explicit(&hh->bins[b],
						  memory_order_relaxed);

		while (c) {
			uint64_t sz;

			if (!budget-- || !blk_in(L, c)) {
				*rc = SHK_ECORRUPT;
				return 0;
			}
			w = ld(seg, c);
			if (!hdr_ok(c, w) || (w & F_ALL)) {
				*rc = SHK_ECORRUPT;
				return 0;
			}
			sz = w & SIZE_MASK;
			if (sz <= L->chain_end - c && sz >= need && c > f) {
				f = c;
				S = sz;
			}
			c = ld(seg, c + 16);
		}
	}
	if (!f)
		return 0;
	if (bin_remove(seg, L, f, S)) {
		*rc = SHK_ECORRUPT;
		return 0;
	}
	if (S - need >= BLK_MIN) {
		t = f + S - need;
		st(seg, t + 8, (S - need) >> 6);
		st(seg, t, mkhdr(t, need, F_USED | flags));
		set_prev(seg, f + S, need);
		SHK_CRASHPOINT("heap.split.top");
		st(seg, f, mkhdr(f, S - need, 0));
		if (bin_insert(seg, L, f, S - need))
			*rc = SHK_ECORRUPT; /* f stays off the bins: a leak */
	} else {
		t = f;
		need = S;
		st(seg, f, mkhdr(f, S, F_USED | flags));
	}
	set_stamp(seg, t, shk__seg_stamp(seg));
	taken(hh, L, need);
	return t;
}

/* Frees the large block with header h; lock held; h validated. */
static int
large_release(shk_seg *seg, const struct layout *L, uint64_t h, uint64_t S)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t start = h, size = S, n = h + S, wn, P, nn;
	int merged_next = 0;

	P = prev_of(ld(seg, h + 8));
	wn = ld(seg, n);
	if (n < L->chain_end && !(wn & F_USED)) {
		/* a free neighbour's size must stay inside the chain (its
		 * 16-bit check can pass by chance on a scribbled word) */
		if ((wn & SIZE_MASK) < BLK_MIN ||
		    (wn & SIZE_MASK) > L->chain_end - n)
			return SHK_ECORRUPT;
		if (bin_remove(seg, L, n, wn & SIZE_MASK))
			return SHK_ECORRUPT;
		size += wn & SIZE_MASK;
		merged_next = 1;
	}
	if (P && !(ld(seg, h - P) & F_USED)) {
		if (bin_remove(seg, L, h - P, P))
			return SHK_ECORRUPT; /* n is off its bin: a leak */
		start = h - P;
		size += P;
	}
	st(seg, start, mkhdr(start, size, 0));
	SHK_CRASHPOINT("heap.merge.grown");
	if (start != h)
		st(seg, h, 0);
	if (merged_next)
		st(seg, n, 0);
	nn = start + size;
	set_prev(seg, nn, size);
	/* relaxed: under the lock */
	lk_add(&hh->large_free, S);
	return bin_insert(seg, L, start, size);
}

/*
 * repair rebuilds everything derived from the chain after a lock holder
 * died: prev_size, coalescing, runs that never handed out a block,
 * magazines that were never published, bins, large_free, large_live,
 * nruns.  Lock held.
 */
#ifdef SHK_TEST_HOOKS
void (*shk__heap_repair_hook)(shk_seg *seg); /* heap.h */
#endif

static int
repair(shk_seg *seg, const struct layout *L)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t h = L->chain_off, prev = 0, last_free = 0, last_size = 0;
	uint64_t steps = (L->chain_end - L->chain_off) / 64 + 1;
	uint64_t free_bytes = 0, live = 0, used = 0, nruns[NCLASS] = { 0 };
	uint32_t b, c;

	while (h < L->chain_end) {
		uint64_t w, S;

		if (chain_hdr(seg, L, h, &steps, &w, &S))
			return SHK_ECORRUPT;
		set_prev(seg, h, prev);
		if ((w & F_MAG) && !mag_named(seg, h + BLK_HDR) &&
		    !mag_in_use(seg, h + BLK_HDR)) {
			/* a magazine carved by a setter that died before
			 * publishing it: nobody can reach it, give it back
			 * (one whose owner lives lost its slot to damage:
			 * kept, see mag_in_use()) */
			w = mkhdr(h, S, 0);
			st(seg, h, w);
		} else if (w & F_RUN) {
			uint64_t pg =
				(h + BLK_HDR - L->heap_off) >> L->run_shift;
			int k = -1;

			if (((h + BLK_HDR - L->heap_off) &
			     (((uint64_t)1 << L->run_shift) - 1)) == 0 &&
			    pg < L->npages &&
			    S >= ((uint64_t)1 << L->run_shift))
				k = run_valid(seg, L, pg);
			if (k >= 0 &&
			    atomic_load_explicit(pagemap(seg, L, pg),
						 memory_order_relaxed) ==
				    (RUN_TAG | (uint32_t)k)) {
				struct heap_run *r =
					(void *)(seg->base + h + BLK_HDR);
				/* relaxed: a run's own count is written
				 * under the lock (new_run(), runs_release())
				 * when it stops being current; zero then
				 * means nobody ever carved from it.  acquire
				 * pairs with new_run()'s release. */
				uint64_t ni = atomic_load_explicit(
					&r->next_idx, memory_order_relaxed);
				uint64_t cur = atomic_load_explicit(
					&hh->cls[k].cur_run,
					memory_order_acquire);

				if (ni || CUR_PAGE(cur) == pg + 1) {
					nruns[k]++;
					goto run;
				}
			}
			/* a run that never handed out a block: reclaim */
			if (pg < L->npages)
				atomic_store_explicit(pagemap(seg, L, pg), 0,
						      memory_order_relaxed);
			w = mkhdr(h, S, 0);
			st(seg, h, w);
		}
		if (!(w & F_USED)) {
			if (last_free) {
				last_size += S;
				st(seg, last_free,
				   mkhdr(last_free, last_size, 0));
				st(seg, h, 0);
				prev = last_size;
				h += S;
				continue;
			}
			last_free = h;
			last_size = S;
			prev = S;
			h += S;
			continue;
		}
		if (w & F_MAG)
			goto run; /* magazines are not user blocks */
		live++;
		used += S;
	run:
		last_free = 0;
		prev = S;
		h += S;
	}
	if (h != L->chain_end || !hdr_ok(h, ld(seg, h)))
		return SHK_ECORRUPT;
	set_prev(seg, h, prev);
	/* blocks a dead run release held off their lists (runs that it
	 * unmapped were given back above) */
	shk__heap_held_repair(seg, L);
#ifdef SHK_TEST_HOOKS
	if (shk__heap_repair_hook)
		shk__heap_repair_hook(seg);
#endif
	/* second pass: the bins */
	for (b = 0; b < NBINS; b++)
		atomic_store_explicit(&hh->bins[b], 0, memory_order_relaxed);
	atomic_store_explicit(&hh->bin_map, 0, memory_order_relaxed);
	steps = (L->chain_end - L->chain_off) / 64 + 1;
	for (h = L->chain_off; h < L->chain_end;) {
		uint64_t w, S;

		/* validated again: a peer may have scribbled a header since
		 * the first pass (a size of 0 looped here for good, and
		 * bin_of(0) is undefined) */
		if (chain_hdr(seg, L, h, &steps, &w, &S))
			return SHK_ECORRUPT;
		if (!(w & F_USED)) {
			(void)bin_insert(seg, L, h, S); /* links just reset */
			free_bytes += S;
		}
		h += S;
	}
	/* relaxed: under the lock */
	atomic_store_explicit(&hh->large_free, free_bytes,
			      memory_order_relaxed);
	atomic_store_explicit(&hh->large_live, live, memory_order_relaxed);
	atomic_store_explicit(&hh->large_used, used, memory_order_relaxed);
	for (c = 0; c < L->nclass; c++)
		atomic_store_explicit(&hh->cls[c].nruns, nruns[c],
				      memory_order_relaxed);
	return 0;
}

_Thread_local int64_t shk__heap_lock_dl SHK__TLS_IE;

/* the heap lock's wait: LOCK_TIMEOUT_NS, or what is left of the thread's
 * shk__heap_lock_dl, at least LOCK_FLOOR_NS (heap.h) */
static int64_t
lock_wait_ns(int full)
{
	int64_t dl = shk__heap_lock_dl, left;

	if (full || !dl)
		return LOCK_TIMEOUT_NS;
	left = dl - shk__now_ns();
	if (left < LOCK_FLOOR_NS)
		return LOCK_FLOOR_NS;
	return left < LOCK_TIMEOUT_NS ? left : LOCK_TIMEOUT_NS;
}

static int
heap_lock(shk_seg *seg, struct heap_local *hl, int full)
{
	struct heap_hdr *hh = hdr_of(seg);
	int rc;

	pthread_mutex_lock(&hl->mu);
	rc = shk__lock_acquire(seg, &hh->lock, lock_wait_ns(full));
	if (rc == 0 || rc == SHK_EOWNERDEAD) {
		/* odd, and changed even if a dead holder left it odd */
		uint64_t q =
			atomic_load_explicit(&hh->seq, memory_order_relaxed);

		atomic_store_explicit(&hh->seq, q + 1 + (q & 1),
				      memory_order_relaxed);
		/* release fence: orders the odd count before our changes;
		 * pairs with the acquire fence in shk__heap_scan() */
		atomic_thread_fence(memory_order_release);
	}
	if (rc == SHK_EOWNERDEAD) {
		rc = repair(seg, &hl->L);
		if (rc == 0) {
			shk__lock_consistent(seg, &hh->lock);
			return 0;
		}
		shk__lock_release(seg, &hh->lock);
	}
	if (rc) {
		pthread_mutex_unlock(&hl->mu);
		/* SHK_EDEADLK: the word names this handle, which does not
		 * hold it (hl->mu serialises the handle's threads, and no
		 * holder takes the lock again): a forged or damaged word,
		 * damage like an unrecoverable lock (test_heap
		 * lock_names_self; it leaked out of shk_alloc and
		 * shk_chan_send as an undocumented code) */
		return rc == SHK_ENOTRECOVERABLE || rc == SHK_EDEADLK
			       ? SHK_ECORRUPT
			       : rc;
	}
	return 0;
}

int
shk__heap_lock(shk_seg *seg, struct heap_local *hl)
{
	return heap_lock(seg, hl, 0);
}

int
shk__heap_lock_full(shk_seg *seg, struct heap_local *hl)
{
	return heap_lock(seg, hl, 1);
}

void
shk__heap_unlock(shk_seg *seg, struct heap_local *hl)
{
	struct heap_hdr *hh = hdr_of(seg);

	/* release: publishes our changes; pairs with the acquire load of seq
	 * in shk__heap_scan() */
	atomic_store_explicit(
		&hh->seq,
		atomic_load_explicit(&hh->seq, memory_order_relaxed) + 1,
		memory_order_release);
	shk__lock_release(seg, &hh->lock);
	pthread_mutex_unlock(&hl->mu);
}

/* Carves a live large block (lock held) and counts it: its header
 * offset, or 0 with *rc as shk__heap_large_carve() leaves it. */
uint64_t
shk__heap_carve_live(shk_seg *seg, const struct layout *L, uint64_t len,
		     uint64_t align, int *rc)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t h = shk__heap_large_carve(seg, L, len, align, 0, 0, rc);

	if (h) {
		/* relaxed: statistics under the lock */
		lk_add(&hh->large_live, 1);
		lk_add(&hh->large_used, ld(seg, h) & SIZE_MASK);
	}
	return h;
}

int
shk__heap_large_alloc(shk_seg *seg, struct heap_local *hl, uint64_t len,
		      uint64_t align, uint64_t *off)
{
	uint64_t h;
	int rc;

	if (len > hl->L.heap_len)
		return SHK_ENOMEM;
	rc = shk__heap_lock(seg, hl);
	if (rc)
		return rc;
	h = shk__heap_carve_live(seg, &hl->L, len, align, &rc);
	shk__heap_unlock(seg, hl);
	if (!h)
		return rc ? rc : SHK_ENOMEM;
	*off = h + BLK_HDR;
	return 0;
}

/*
 * Frees the m adjacent used blocks e[0..m) as one (the lock is held):
 * e[i].blk ascending, e[i].blk + e[i].side == e[i + 1].blk, each header
 * checked F_USED of that size by the caller.  The span merges with free
 * neighbours; the inner headers are cleared after the survivor grew (a
 * kill in between leaves them inside a free payload, like a merge).  When
 * large_release() refuses (a damaged neighbour's bin links) before it
 * wrote anything, h is still F_USED and the inner headers must stay: the
 * blocks remain live, leaked, and the chain walkable.
 */
int
shk__heap_free_span(shk_seg *seg, const struct layout *L,
		    const struct mag_ent *e, uint32_t m)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t h = e[0].blk, last = e[m - 1].side, S, n, P;
	uint32_t i;
	int rc;

	if (last > L->chain_end - e[m - 1].blk)
		return SHK_EINVAL;
	n = e[m - 1].blk + last;
	S = n - h;
	if (!hdr_ok(n, ld(seg, n)) || prev_of(ld(seg, n + 8)) != last)
		return SHK_EINVAL;
	P = prev_of(ld(seg, h + 8));
	if (P ? (P > h - L->chain_off || !hdr_ok(h - P, ld(seg, h - P)) ||
		 (ld(seg, h - P) & SIZE_MASK) != P)
	      : h != L->chain_off)
		return SHK_EINVAL;
	SHK_CRASHPOINT("heap.free.large");
	rc = large_release(seg, L, h, S);
	if (rc && (ld(seg, h) & F_USED))
		return rc; /* refused before the merge: the blocks stay used */
	for (i = 1; i < m; i++)
		st(seg, e[i].blk, 0);
	/* relaxed: statistics under the lock */
	lk_add(&hh->large_live, -(uint64_t)m);
	lk_add(&hh->large_used, -S);
	return rc;
}

/*
 * Gives back a heap-internal block (flag F_MAG: a magazine; F_RUN: an
 * empty run, whose page map entry the caller cleared), lock held.  Such
 * blocks are not counted in large_live or large_used.  The merge is the
 * first store that changes the block's header, so a kill before it leaves
 * the block as it was: a magazine no slot names, or a run whose page map
 * entry is 0, both of which repair() gives back.
 */
int
shk__heap_free_meta(shk_seg *seg, const struct layout *L, uint64_t h,
		    uint32_t flag)
{
	uint64_t w, S, n, P;

	if (!blk_in(L, h))
		return SHK_ECORRUPT;
	w = ld(seg, h);
	S = w & SIZE_MASK;
	if (!hdr_ok(h, w) || (w & F_ALL) != (F_USED | flag) || S < BLK_MIN ||
	    S > L->chain_end - h)
		return SHK_ECORRUPT;
	n = h + S;
	if (!hdr_ok(n, ld(seg, n)) || prev_of(ld(seg, n + 8)) != S)
		return SHK_ECORRUPT;
	P = prev_of(ld(seg, h + 8));
	if (P ? (P > h - L->chain_off || !hdr_ok(h - P, ld(seg, h - P)) ||
		 (ld(seg, h - P) & SIZE_MASK) != P)
	      : h != L->chain_off)
		return SHK_ECORRUPT;
	return large_release(seg, L, h, S);
}

/* Frees the large block at header h; the lock is held. */
int
shk__heap_free_locked(shk_seg *seg, const struct layout *L, uint64_t h)
{
	struct mag_ent e;
	uint64_t w = ld(seg, h);

	if (!hdr_ok(h, w) || (w & F_ALL) != F_USED)
		return SHK_EINVAL;
	e.blk = h;
	e.side = w & SIZE_MASK;
	if (e.side < BLK_MIN)
		return SHK_EINVAL;
	return shk__heap_free_span(seg, L, &e, 1);
}

int
shk__heap_large_free(shk_seg *seg, struct heap_local *hl, uint64_t off)
{
	uint64_t h = off - BLK_HDR;
	int rc;

	if (off < BLK_HDR || !blk_in(&hl->L, h))
		return SHK_EINVAL;
	/* the full wait: a free that gave up would leak the block */
	rc = shk__heap_lock_full(seg, hl);
	if (rc)
		return rc;
	rc = shk__heap_free_locked(seg, &hl->L, h);
	shk__heap_unlock(seg, hl);
	return rc;
}
