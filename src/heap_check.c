/*
 * heap_check.c - the heap's statistics (shk_heap_info), its read-only
 * check and scan (shk__heap_check, shk__heap_scan: `shmkit check`) and
 * test hooks.  Nothing here changes the heap except the hooks: it reads
 * what the allocator in heap.c writes, in the orders given at the top of
 * heap.c, and judges only snapshots that a seqlock read or an unchanged
 * list head confirms.
 */
#include <string.h>
#include <unistd.h>

#include "heap_int.h"

/* Blocks per class sitting in magazines that are owned or being drained. */
static void
mag_cached(shk_seg *seg, const struct layout *L, uint64_t *cached,
	   uint64_t *lc_n, uint64_t *lc_bytes)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t s, c;

	memset(cached, 0, NCLASS * sizeof(*cached));
	*lc_n = *lc_bytes = 0;
	for (s = 0; s < SHK__ATTACH_CAP; s++) {
		/* acquire: pairs with the release store in mag_setup() */
		uint64_t moff =
			atomic_load_explicit(&hh->mag[s], memory_order_acquire);

		/* relaxed: statistics, each a snapshot */
		if (!moff || !mag_valid(seg, L, moff) ||
		    MO_STATE(atomic_load_explicit(mag_owner(seg, moff),
						  memory_order_relaxed)) ==
			    MO_NONE)
			continue;
		for (c = 0; c < L->nclass; c++) {
			uint32_t n = atomic_load_explicit(mag_n(seg, moff, c),
							  memory_order_relaxed);

			cached[c] += n < L->mdepth[c] ? n : L->mdepth[c];
		}
		for (c = 0; c < LC_N; c++) {
			uint64_t h = atomic_load_explicit(
				w64(seg, moff + L->mlc_off + 8 * c),
				memory_order_relaxed);
			uint64_t w;

			if (!h || !blk_in(L, h))
				continue;
			w = ld(seg, h);
			if (hdr_ok(h, w) && (w & F_ALL) == (F_USED | F_LC) &&
			    (w & SIZE_MASK) <= L->chain_end - h) {
				*lc_n += 1;
				*lc_bytes += w & SIZE_MASK;
			}
		}
	}
}

int
shk_heap_info(shk_seg *seg, shk_heap_stats *st)
{
	struct heap_local *hl = local_of(seg);
	const struct heap_hdr *hh;
	uint64_t free_b, n, cached[NCLASS], lc_n, lc_bytes;
	uint32_t c;

	if (!hl || !st || st->size < sizeof(*st))
		return SHK_EINVAL;
	hh = hdr_of(seg);
	memset((uint8_t *)st + sizeof(st->size), 0,
	       sizeof(*st) - sizeof(st->size));
	/* the bytes filled (the header's rule; a larger size was kept) */
	st->size = sizeof(*st);
	st->nclasses = hl->L.nclass;
	st->heap_len = seg->heap_len;
	/* relaxed: statistics, each a snapshot */
	st->used = atomic_load_explicit(&hh->large_used, memory_order_relaxed);
	st->high_water =
		atomic_load_explicit(&hh->high_water, memory_order_relaxed);
	n = atomic_load_explicit(&hh->large_live, memory_order_relaxed);
	free_b = atomic_load_explicit(&hh->large_free, memory_order_relaxed);
	mag_cached(seg, &hl->L, cached, &lc_n, &lc_bytes);
	/* cached large blocks count as free, not in use */
	st->used = st->used > lc_bytes ? st->used - lc_bytes : 0;
	n = n > lc_n ? n - lc_n : 0;
	free_b += lc_bytes;
	for (c = 0; c < hl->L.nclass; c++) {
		uint64_t live = atomic_load_explicit(&hh->cls[c].live,
						     memory_order_relaxed) -
				cached[c];
		uint64_t runs = atomic_load_explicit(&hh->cls[c].nruns,
						     memory_order_relaxed);
		uint64_t cap = runs * hl->L.cnblk[c];

		if ((int64_t)live < 0)
			live = 0;
		st->class_size[c] = hl->L.csize[c];
		st->class_used[c] = live;
		st->used += live * hl->L.csize[c];
		n += live;
		if (cap > live)
			free_b += (cap - live) * hl->L.csize[c];
	}
	st->nallocs = n;
	st->free = free_b;
	return 0;
}

/* ------------------------------------------------------------------ */
/* check                                                               */
/* ------------------------------------------------------------------ */

/* Owner liveness, cached per attach slot for one scan. */
struct owners {
	uint32_t stamp[1024];
	uint8_t alive[1024];
};

static void
count_owner(shk_seg *seg, struct owners *o, uint32_t stamp,
	    struct shk__heap_report *rep)
{
	uint32_t slot = SHK__STAMP_SLOT(stamp) & 1023;

	if (!o)
		return;
	if (o->stamp[slot] != stamp || !stamp) {
		o->stamp[slot] = stamp;
		o->alive[slot] = stamp && shk__stamp_alive(seg, stamp);
	}
	if (!o->alive[slot])
		rep->dead_owner++;
}

/* Scans one run read-only: counts states; SHK_ECORRUPT on bad ones. */
static int
scan_run(shk_seg *seg, const struct layout *L, uint64_t pg, uint32_t c,
	 struct shk__heap_report *rep, uint64_t *nfree, struct owners *own)
{
	uint64_t ni = run_carved(seg, L, c, pg); /* a snapshot */
	uint32_t i;

	for (i = 0; i < L->cnblk[c]; i++) {
		/* acquire: pairs with the release CAS that stamps a carved
		 * block in carve() / mag_refill(); their cur_run CAS comes
		 * before it, so the re-read of the count below sees it */
		uint64_t w = atomic_load_explicit(w64(seg, side_off(L, pg, i)),
						  memory_order_acquire);
		uint32_t s = SIDE_STATE(w);

		if (i >= ni && w) {
			/* a carve may have run since we read next_idx: it is
			 * visible now (see the acquire above) */
			ni = run_carved(seg, L, c, pg);
			if (i >= ni)
				return SHK_ECORRUPT;
		}
		if (i >= ni)
			continue;
		if (s == ST_ALLOC) {
			rep->small_live++;
			count_owner(seg, own,
				    (uint32_t)(w >> 32) & SHK__STAMP_MASK, rep);
		} else if (s == ST_FREE)
			(*nfree)++;
		else if (s == 0)
			rep->small_lost++; /* carved, never stamped */
		else
			rep->small_cached++; /* ST_CACHED */
	}
	return 0;
}

/*
 * Walks class c's free list: every entry FREE and in a run of class c, at
 * most bound entries.  Interior nodes of a Treiber list never change while
 * listed, so a walk during which the tagged head stayed put saw one
 * consistent list; a failed walk under a moving head is retried.
 */
static int
walk_list(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t bound,
	  uint64_t *count)
{
	_Atomic uint64_t *hp = &hdr_of(seg)->cls[c].head;
	int tries;

	for (tries = 0; tries < 8; tries++) {
		/* acquire: pairs with the release CAS in push() */
		uint64_t h = atomic_load_explicit(hp, memory_order_acquire);
		uint64_t f = (uint32_t)h, n = 0, pg, w;
		uint32_t idx;
		int rc = 0;

		while (f) {
			if (n++ >= bound) {
				rc = SHK_ECORRUPT;
				break;
			}
			rc = ref_locate(seg, L, c, f, &pg, &idx);
			if (rc)
				break;
			/* acquire: as above, for the pushed next */
			w = atomic_load_explicit(w64(seg, side_off(L, pg, idx)),
						 memory_order_acquire);
			if (SIDE_STATE(w) != ST_FREE) {
				rc = SHK_ECORRUPT;
				break;
			}
			f = (uint32_t)w;
		}
		if (rc == 0) {
			*count = n;
			return 0;
		}
		/* acquire: as above; an unmoved head means a real fault */
		if (atomic_load_explicit(hp, memory_order_acquire) == h)
			return rc;
	}
	*count = 0; /* too busy to walk: not judged */
	return 0;
}

/* A magazine's owner word and counts are in range. */
static int
mag_check(shk_seg *seg, const struct layout *L, uint64_t moff)
{
	/* relaxed: a snapshot */
	uint64_t o = atomic_load_explicit(mag_owner(seg, moff),
					  memory_order_relaxed);
	uint32_t c;

	if (MO_STATE(o) > MO_DRAINING || (o >> 30 & 3))
		return SHK_ECORRUPT;
	for (c = 0; c < L->nclass; c++) {
		/* relaxed: as above */
		if (atomic_load_explicit(mag_n(seg, moff, c),
					 memory_order_relaxed) > L->mdepth[c])
			return SHK_ECORRUPT;
	}
	return 0;
}

/*
 * Walks the chain, the runs, the page map and (when derived is set: no
 * lock holder was active) the bins, filling *rep and *nfree_small.
 */
static int
scan_chain(shk_seg *seg, const struct layout *L, int derived,
	   struct shk__heap_report *rep, uint64_t *nfree_small,
	   struct owners *own)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t h, prev = 0, steps, nruns = 0, npm = 0, pg;
	uint64_t free_blocks = 0, free_bytes = 0;
	int last_free = 0, rc;
	uint32_t b;

	steps = (L->chain_end - L->chain_off) / 64 + 1;
	for (h = L->chain_off; h < L->chain_end;) {
		uint64_t w, S;

		if (chain_hdr(seg, L, h, &steps, &w, &S))
			return SHK_ECORRUPT;
		if (derived && prev_of(ld(seg, h + 8)) != prev)
			return SHK_ECORRUPT;
		if (w & F_RUN) {
			int k;

			pg = (h + BLK_HDR - L->heap_off) >> L->run_shift;
			if (!(w & F_USED) || pg >= L->npages ||
			    ((h + BLK_HDR - L->heap_off) &
			     (((uint64_t)1 << L->run_shift) - 1)))
				return SHK_ECORRUPT;
			k = run_valid(seg, L, pg);
			if (k >= 0 &&
			    atomic_load_explicit(pagemap(seg, L, pg),
						 memory_order_relaxed) ==
				    (RUN_TAG | (uint32_t)k)) {
				rc = scan_run(seg, L, pg, (uint32_t)k, rep,
					      nfree_small, own);
				if (rc)
					return rc;
				nruns++;
			} else if (derived) {
				return SHK_ECORRUPT;
			}
		} else if (w & F_MAG) {
			/* a magazine is formatted under the lock, and its
			 * slot set after: until then (or for good, when its
			 * setter died: repair() gives it back) it holds old
			 * bytes, which are not judged */
			if (!mag_named(seg, h + BLK_HDR)) {
				/* with no holder at work, one in use lost its
				 * slot word to damage (repair() keeps it) */
				if (derived && mag_in_use(seg, h + BLK_HDR))
					return SHK_ECORRUPT;
				rep->mag_orphans++;
			} else {
				rc = derived ? mag_check(seg, L, h + BLK_HDR)
					     : 0;
				if (rc)
					return rc;
				rep->mags++;
			}
		} else if (w & F_LC) {
			rep->large_cached++;
		} else if (w & F_USED) {
			rep->large_live++;
			rep->large_used += S;
			count_owner(seg, own, (uint32_t)(ld(seg, h + 8) >> 34),
				    rep);
		} else {
			if (derived && last_free)
				return SHK_ECORRUPT; /* uncoalesced */
			free_blocks++;
			free_bytes += S;
		}
		last_free = !(w & F_USED);
		prev = S;
		h += S;
	}
	if (h != L->chain_end || !hdr_ok(h, ld(seg, h)))
		return SHK_ECORRUPT;
	rep->runs = nruns;
	rep->large_free_bytes = free_bytes;
	for (pg = 0; pg < L->npages; pg++) {
		/* relaxed: a snapshot, validated by the sequence count */
		uint32_t e = atomic_load_explicit(pagemap(seg, L, pg),
						  memory_order_relaxed);
		if (e && (!(e & RUN_TAG) || (e & ~RUN_TAG) >= L->nclass))
			return SHK_ECORRUPT;
		npm += e != 0;
	}
	if (!derived)
		return 0;
	if (npm != nruns)
		return SHK_ECORRUPT;
	{
		uint64_t seen = 0, bytes = 0;
		/* relaxed: as above */
		uint64_t map = atomic_load_explicit(&hh->bin_map,
						    memory_order_relaxed);

		for (b = 0; b < NBINS; b++) {
			uint64_t f = atomic_load_explicit(&hh->bins[b],
							  memory_order_relaxed);
			uint64_t back = 0;

			if (!!f != !!(map & (1ull << b)))
				return SHK_ECORRUPT;
			while (f) {
				uint64_t w;

				if (seen++ >= free_blocks || !blk_in(L, f))
					return SHK_ECORRUPT;
				w = ld(seg, f);
				if (!hdr_ok(f, w) || (w & F_ALL) ||
				    bin_of(w & SIZE_MASK) != b ||
				    ld(seg, f + 24) != back)
					return SHK_ECORRUPT;
				bytes += w & SIZE_MASK;
				back = f;
				f = ld(seg, f + 16);
			}
		}
		if (seen != free_blocks || bytes != free_bytes ||
		    atomic_load_explicit(&hh->large_free,
					 memory_order_relaxed) != free_bytes)
			return SHK_ECORRUPT;
	}
	return 0;
}

/* Whether the heap lock has a live holder (a snapshot). */
static int
holder_alive(shk_seg *seg, struct heap_hdr *hh)
{
	/* relaxed: a hint; the caller re-reads seq after its walk */
	uint32_t w = atomic_load_explicit(&hh->lock, memory_order_relaxed);
	uint32_t stamp = w & SHK__STAMP_MASK;

	return stamp && stamp != SHK__LOCK_NOTREC &&
	       shk__stamp_alive(seg, stamp);
}

/*
 * Loads seq into *s once no live lock holder is at work (even, or odd with
 * a dead holder): 0, or 1 when a live holder stayed at work through the
 * waits that *waits still allows (about 20 ms per scan in all).
 */
static int
quiet_seq(shk_seg *seg, struct heap_hdr *hh, uint64_t *s, int *waits)
{
	for (;;) {
		/* acquire: pairs with the release store in heap_unlock() */
		*s = atomic_load_explicit(&hh->seq, memory_order_acquire);
		if (!(*s & 1) || !holder_alive(seg, hh))
			return 0;
		if (++*waits > 200)
			return 1;
		usleep(*waits < 10 ? 0 : 100);
	}
}

int
shk__heap_scan(shk_seg *seg, struct shk__heap_report *rep)
{
	struct heap_local *hl = local_of(seg);
	const struct layout *L;
	struct heap_hdr *hh;
	struct shk__heap_report dummy;
	struct owners own;
	uint64_t nfree_small = 0, head0[NCLASS], s1, s2;
	int rc, stable = 1, tries, waits = 0;
	uint32_t c;

	if (!hl)
		return SHK_EINVAL;
	if (!rep)
		rep = &dummy;
	memset(rep, 0, sizeof(*rep));
	memset(&own, 0, sizeof(own));
	L = &hl->L;
	hh = hdr_of(seg);
	if (hh->magic != HEAP_MAGIC || hh->chain_off != L->chain_off ||
	    hh->chain_end != L->chain_end || hh->npages != L->npages)
		return SHK_ECORRUPT;
	for (c = 0; c < L->nclass; c++)
		/* acquire: pairs with the release CAS in push() */
		head0[c] = atomic_load_explicit(&hh->cls[c].head,
						memory_order_acquire);
	/*
	 * Seqlock read of what the lock protects: a walk that overlapped a
	 * lock holder's changes is retried.  An odd count is a holder at
	 * work.  While that holder lives we wait for it: the chain is
	 * walkable in every state a holder leaves it in, but a walk that
	 * runs beside its changes can mix two states (the old size of a
	 * block being merged, then the cleared header it now covers), and
	 * that is no fault.  An odd count whose holder died is judged (the
	 * chain, not the derived structures), as it will not change.
	 */
	for (tries = 0;; tries++) {
		if (quiet_seq(seg, hh, &s1, &waits)) {
			rc = 0; /* held all along: not judged */
			stable = 0;
			break;
		}
		memset(rep, 0, sizeof(*rep));
		nfree_small = 0;
		rc = scan_chain(seg, L, !(s1 & 1), rep, &nfree_small,
				rep == &dummy ? NULL : &own);
		/* acquire fence: orders our reads before the re-read of seq;
		 * pairs with the release fence in heap_lock() */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&hh->seq, memory_order_relaxed);
		if (s1 == s2)
			break;
		if (tries == 16) {
			rc = 0; /* too busy to judge */
			stable = 0;
			break;
		}
	}
	if (rc)
		return rc;
	/* class lists: every listed block is FREE, in a run of its class */
	for (c = 0; c < L->nclass; c++) {
		uint64_t n = 0;

		rc = walk_list(seg, L, c, L->heap_len / L->csize[c], &n);
		if (rc)
			return rc;
		rep->small_listed += n;
		/* acquire: as in walk_list() */
		stable &=
			atomic_load_explicit(&hh->cls[c].head,
					     memory_order_acquire) == head0[c];
	}
	/* With no head moved since before the run scan, every listed block
	 * was counted FREE there; otherwise the counts are only estimates. */
	if (stable && rep->small_listed > nfree_small)
		return SHK_ECORRUPT;
	if (nfree_small > rep->small_listed)
		rep->small_lost += nfree_small - rep->small_listed;
	return 0;
}

/*
 * One try of shk__heap_block_check(): 0 when off is the payload of a live
 * block of at least len bytes, else SHK_ECORRUPT.  A small block: its page
 * holds a valid run of class c (page map and run header agree), off is a
 * carved block boundary of it, its side word ALLOC, len <= the class size.
 * A large block: a valid F_USED header (no other flag) at off - BLK_HDR,
 * len within its payload, and chain neighbours that agree (a valid header
 * right after it; when derived is set, no lock holder died at work, also
 * the block before it, named by its prev_size, has that size), so a stale
 * header inside a free block's payload is refused.  prev_size is derived
 * (repair() recomputes it): a holder killed inside a merge before the
 * block's left neighbour may leave it naming a cleared header, which
 * shk__heap_scan() does not judge either.
 */
static int
block_try(shk_seg *seg, const struct layout *L, uint64_t off, uint64_t len,
	  int derived)
{
	uint64_t pg, h, w, S, P, in, idx, sw;
	uint32_t e;
	int k;

	if (off < L->chain_off + BLK_HDR || off >= L->chain_end || !len)
		return SHK_ECORRUPT;
	pg = (off - L->heap_off) >> L->run_shift;
	/* relaxed: a snapshot, validated by the caller's sequence count */
	e = pg < L->npages ? atomic_load_explicit(pagemap(seg, L, pg),
						  memory_order_relaxed)
			   : 0;
	if (e & RUN_TAG) {
		k = run_valid(seg, L, pg);
		if (k < 0 || e != (RUN_TAG | (uint32_t)k))
			return SHK_ECORRUPT;
		in = off - L->heap_off - (pg << L->run_shift);
		if (in < L->cboff[k])
			return SHK_ECORRUPT;
		in -= L->cboff[k];
		idx = (in * L->crecip[k]) >> 32;
		if (idx * L->csize[k] != in ||
		    idx >= run_carved(seg, L, (uint32_t)k, pg) ||
		    len > L->csize[k])
			return SHK_ECORRUPT;
		/* acquire: pairs with the release CAS that stamps a carved
		 * block (as in scan_run()) */
		sw = atomic_load_explicit(
			w64(seg, side_off(L, pg, (uint32_t)idx)),
			memory_order_acquire);
		return SIDE_STATE(sw) == ST_ALLOC ? 0 : SHK_ECORRUPT;
	}
	if (e)
		return SHK_ECORRUPT;
	h = off - BLK_HDR;
	if (!blk_in(L, h))
		return SHK_ECORRUPT;
	w = ld(seg, h);
	S = w & SIZE_MASK;
	if (!hdr_ok(h, w) || (w & F_ALL) != F_USED || S < BLK_MIN ||
	    S > L->chain_end - h || len > S - BLK_HDR)
		return SHK_ECORRUPT;
	if (!hdr_ok(h + S, ld(seg, h + S)))
		return SHK_ECORRUPT;
	if (!derived)
		return 0;
	P = prev_of(ld(seg, h + 8));
	if (P ? P > h - L->chain_off || !hdr_ok(h - P, ld(seg, h - P)) ||
			    (ld(seg, h - P) & SIZE_MASK) != P
	      : h != L->chain_off)
		return SHK_ECORRUPT;
	return 0;
}

int
shk__heap_block_check(shk_seg *seg, uint64_t off, uint64_t len, int *waits)
{
	struct heap_local *hl = local_of(seg);
	struct heap_hdr *hh;
	uint64_t s1, s2;
	int rc, tries;

	if (!hl || !waits)
		return SHK_EINVAL;
	hh = hdr_of(seg);
	/* seqlock read, as in shk__heap_scan(): a try that overlapped a
	 * lock holder's changes (a neighbour split or merged, a run given
	 * back) is retried; one that never got a quiet view is not judged */
	for (tries = 0; tries < 16; tries++) {
		if (quiet_seq(seg, hh, &s1, waits))
			return 0;
		rc = block_try(seg, &hl->L, off, len, !(s1 & 1));
		/* acquire fence: orders our reads before the re-read of seq;
		 * pairs with the release fence in heap_lock() */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&hh->seq, memory_order_relaxed);
		if (s1 == s2)
			return rc;
	}
	return 0; /* too busy to judge */
}

void
shk__heap_set_tags(shk_seg *seg, uint32_t tag)
{
	struct heap_local *hl = local_of(seg);
	uint32_t c;

	if (!hl)
		return;
	for (c = 0; c < hl->L.nclass; c++) {
		_Atomic uint64_t *hp = &hdr_of(seg)->cls[c].head;
		/* relaxed: a test hook on a quiescent heap */
		uint64_t h = atomic_load_explicit(hp, memory_order_relaxed);

		atomic_store_explicit(hp, (uint32_t)h | (uint64_t)tag << 32,
				      memory_order_relaxed);
	}
}

_Atomic uint64_t *
shk__heap_cur_run_word(shk_seg *seg, uint64_t len)
{
	struct heap_local *hl = local_of(seg);

	if (!hl || !len || !hl->L.nclass || len > hl->L.csize[hl->L.nclass - 1])
		return NULL;
	return &hdr_of(seg)->cls[class_of(len)].cur_run;
}

_Atomic uint64_t *
shk__heap_mag_slot_word(shk_seg *seg)
{
	if (!local_of(seg) || seg->slot >= SHK__ATTACH_CAP)
		return NULL;
	return &hdr_of(seg)->mag[seg->slot];
}

void
shk__heap_forge_hdr(shk_seg *seg, uint64_t h, uint64_t size, uint32_t flags)
{
	st(seg, h, mkhdr(h, size, flags));
}

_Atomic uint32_t *
shk__heap_pagemap_word(shk_seg *seg, uint64_t page, uint64_t *npages)
{
	struct heap_local *hl = local_of(seg);

	if (!hl || page > hl->L.npages)
		return NULL;
	*npages = hl->L.npages;
	return pagemap(seg, &hl->L, page);
}

int
shk__heap_check(shk_seg *seg)
{
	return shk__heap_scan(seg, NULL);
}
