/*
 * heap.c - the shared allocator inside a segment (ALGORITHMS.md §3, §4;
 * docs/heap.md has the user-level description).
 *
 * Files: heap.c (the layout, small blocks, magazines and their large
 * cache, the public calls), heap_large.c (the chain of large blocks, its
 * bins, the heap lock and repair()), heap_check.c (statistics and the
 * read-only check) and heap_int.h (the layout and helpers they share).
 *
 * Region [heap_off, heap_off + heap_len), laid out by layout() from the two
 * immutable numbers alone (so nothing in it is trusted for addressing):
 *   heap header   struct heap_hdr: layout copy, robust lock, stats, bins,
 *                 one 64-byte line per size class
 *   page map      one 32-bit word per run_len page: 0, or RUN_TAG | class
 *   block chain   [chain_off, chain_end): large blocks with boundary tags,
 *                 ended by a 16-byte sentinel header at chain_end
 *
 * Large blocks.  Each block starts with a 16-byte header: word0 =
 * size | flags | check (check = 16 hash bits of (address, size, flags but
 * F_LC), so a stray or copied header is refused), word1 = prev_size/64 |
 * owner stamp.
 * Payloads are 64-byte aligned.  Free blocks sit on doubly linked bins
 * (links in their payload).  The chain is the truth; bins, prev_size and
 * large_free are derived and rebuilt by repair().  All of it is written
 * only under the robust lock hdr->lock, with two exceptions for a used
 * block cached by its magazine's owner (large cache, below): word 0's F_LC
 * bit, and word 1's owner stamp, which the owner CASes when it takes the
 * block back (lock holders change word 1's prev_size by CAS too, so
 * neither undoes the other).  Write order keeps every prefix
 * walkable: a split writes the tail header first, then shrinks the head in
 * one store; a merge grows the survivor in one store, then clears the
 * swallowed headers.
 *
 * Small blocks.  A run is a large block flagged RUN whose payload is one
 * run_len page (aligned to run_len from heap_off).  The run has a 64-byte
 * header, then one 64-bit side word per block, then the blocks.  Side
 * word = state:2 | owner stamp:30 | next ref:32 (ref = (off - heap_off)/16,
 * so runs live in the first 64 GiB of a heap).  States: 0 never handed
 * out, FREE, ALLOC.  Each class has a Treiber list whose head is one
 * 64-bit word {ref:32 | tag:32}; every successful push and pop bumps the
 * tag (ABA needs 2^32 operations between a load and its CAS).  Blocks are
 * also carved lazily from the class's current run by a CAS on the class's
 * cur_run word {page + 1 | carved}.  The allocator never touches a small block's payload.
 *
 * Shared words and their writers:
 *   class head         any allocator (pop) or freer (push), by CAS
 *   side word          the block's owner: a pop stores ALLOC into the
 *                      FREE block it took, a carve CASes 0 -> ALLOC, a
 *                      free CASes ALLOC -> FREE (the double-free test),
 *                      then stores FREE|next before the push CAS
 *   cur_run            {page + 1 | carved}: carvers CAS the count up;
 *                      the lock holder installs a new run (new_run()) or
 *                      CASes it to 0 to give the run back
 *   pagemap, run header (its next_idx: the count once no longer
 *                      current), chain, bins, seq, class held, HELD side
 *                      words: the lock holder (runs_release())
 *   class live         statistics, by atomic add
 * seq is a seqlock count (odd while a holder changes the chain), so that
 * lock-free checkers re-walk what changed under them.  Relaxed accesses to
 * lock-protected words (chain headers, free links, bins, page map, run
 * headers, large counters) need no order of their own: the lock's acquire
 * and release (lock.c) order them between holders, and seq orders them for
 * lock-free readers, who only take snapshots.
 * Threads sharing one handle share its owner stamp, which the robust lock
 * cannot tell apart, so a process-local mutex (heap_local) serialises them
 * before it.
 * Happens-before: the push's release CAS on head publishes the side word's
 * next; the pop's acquire load/CAS of head reads it.  The release store of
 * cur_run publishes a formatted run (header, zeroed side words, page map)
 * to the acquire load in carve().
 *
 * Magazines (docs/heap.md).  Per attach slot, a MAG block (offset in
 * hdr->mag[slot], set and cleared under the lock; carved from the top of
 * the free space): owner word, per-class counts and refs.  Side state
 * CACHED = in the magazine of the stamp it names.
 *   owner word    CAS only: NONE -> OWNED(me) by a slot's new owner,
 *                 OWNED/DRAINING(dead) -> DRAINING(me) by a drainer,
 *                 both under the lock, so that a lock holder finding
 *                 NONE may give the block back (mag_retire()),
 *                 DRAINING(me) -> NONE at the drain's end (also
 *                 the owner's own drain, at its handle's close or its
 *                 owning thread's exit: tx_exit())
 *   counts, refs  the owning thread of the owning handle (relaxed: no
 *                 other thread reads them, except drainers, which decide
 *                 by CAS on the side word and read refs as hints)
 *   side word     free: check ALLOC, then a plain release store
 *                 CACHED(me) (only a block's one legitimate freer writes
 *                 an ALLOC word; the drainer's acquire CAS pairs);
 *                 refill: FREE/0 -> CACHED(me) after the pop/carve CAS
 *                 made the blocks ours; magazine alloc: plain store
 *                 CACHED(me) -> ALLOC (a live owner's cached blocks are
 *                 written by nobody else); drain: CAS CACHED(dead) -> FREE
 *   large cache   header word 0 USED <-> USED|LC by the owner's plain
 *                 stores (no lock holder writes word 0 of a used block),
 *                 USED|LC -> USED by a drainer's CAS
 * The owner keeps a process-local mirror of its counts and entries (struct
 * heap_local), so its fast paths trust nothing read from shared memory.
 * A killed owner leaves its cached blocks CACHED (found by a drainer, which
 * scans every entry up to the depth, not the count); killed while linking
 * a spill or drain chain, or between a refill's CAS and its marking, it
 * leaves up to 16 blocks on no list.
 *
 * A party killed mid-operation leaves: after a pop and before the stamp, a
 * popped FREE block on no list (one leaked block); after a carve's CAS and
 * before the stamp, a carved block in state 0 (one leaked block); after a
 * free's CAS ALLOC -> FREE and before the push, a FREE block on no list
 * (one leaked block).  Under the lock it leaves the lock naming a dead
 * owner: the next locker gets SHK_EOWNERDEAD, and repair() re-walks the
 * chain, recomputes prev_size, coalesces neighbours, returns runs that
 * never handed out a block and magazine blocks no slot names (a death in
 * mag_setup() between the carve and the slot's store, or in mag_retire()
 * between clearing the slot and the free), frees a run whose page-map
 * entry a dying run release cleared, pushes back the blocks a dying run
 * release held off their lists (the class's held flag), and rebuilds
 * bins and large_free.  Statistics
 * may drift by one block per kill.  A double free finds FREE (or a dead
 * header) and returns SHK_EINVAL.
 */
#include "heap_int.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

#ifdef SHK_TEST_HOOKS
_Atomic uint64_t shk__heap_runs_given;
#endif

static uint32_t
class_size(uint32_t i)
{
	uint32_t base;

	if (i < 4)
		return 16 * (i + 1);
	base = 64u << (i / 4 - 1);
	return base + (i % 4 + 1) * (base / 4);
}

static void
layout(uint64_t heap_off, uint64_t heap_len, struct layout *L)
{
	uint32_t i, off;
	uint64_t run_len;

	memset(L, 0, sizeof(*L));
	L->heap_off = heap_off;
	L->heap_len = heap_len;
	L->run_shift = heap_len >= ((uint64_t)4 << 20)     ? 16
		       : heap_len >= ((uint64_t)512 << 10) ? 14
							   : 12;
	run_len = (uint64_t)1 << L->run_shift;
	L->npages = heap_len >> L->run_shift;
	L->pagemap_off = heap_off + sizeof(struct heap_hdr);
	L->chain_off = align_up(L->pagemap_off + L->npages * 4, 64) + 48;
	L->chain_end = heap_off + heap_len - BLK_HDR;
	for (i = 0; i < NCLASS; i++) {
		uint32_t sz = class_size(i), n;

		if (sz > run_len / 4)
			break;
		n = (uint32_t)((run_len - 64) / (sz + 8));
		while (align_up(64 + 8 * (uint64_t)n, 64) + (uint64_t)n * sz >
		       run_len)
			n--;
		L->csize[i] = sz;
		L->cnblk[i] = n;
		L->cboff[i] = (uint32_t)align_up(64 + 8 * (uint64_t)n, 64);
		L->crecip[i] = ((uint64_t)1 << 32) / sz + 1;
	}
	L->nclass = i;
	off = MAG_REFS;
	for (i = 0; i < L->nclass; i++) {
		uint32_t d = (uint32_t)(run_len / 2) / L->csize[i];

		L->mdepth[i] = d > MAG_DEPTH ? MAG_DEPTH : d < 8 ? 8 : d;
		L->mref_off[i] = off;
		off += 4 * L->mdepth[i];
	}
	L->mlc_off = align_up(off, 8);
	L->mag_len = align_up(L->mlc_off + 8 * LC_N, 64);
	/* the budget below bounds the bytes a cache holds; this bound only
	 * says which blocks may take the lock-free path.  It was 1 MiB,
	 * which left out a channel's default largest message (1 MiB plus
	 * its 16-byte channel header and the block header): each such loan
	 * took the lock twice (bench_chan, docs/benchmarks.md) */
	L->lc_max = heap_len / 64 < LC_MAX_BLOCK ? heap_len / 64 : LC_MAX_BLOCK;
	L->lc_budget = heap_len / 16;
}

/* ------------------------------------------------------------------ */
/* small blocks                                                        */
/* ------------------------------------------------------------------ */

/* Pops a block of class c: 0 and *off, 1 when the list is empty. */
static int
pop(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t *off)
{
	struct heap_class *k = &hdr_of(seg)->cls[c];
	/* acquire: pairs with the release CAS in push(); makes the pushed
	 * block's side word (its next) visible */
	uint64_t h = atomic_load_explicit(&k->head, memory_order_acquire);
	uint64_t pg, w;
	uint32_t idx;
	int rc;

	for (;;) {
		uint64_t ref = (uint32_t)h, nh;

		if (!ref)
			return 1;
		rc = ref_locate(seg, L, c, ref, &pg, &idx);
		if (rc) {
			/* a head read before a run release took the list and
			 * gave the run back: the head has moved since.
			 * acquire: as above; an unmoved head is damage */
			uint64_t h2 = atomic_load_explicit(
				&k->head, memory_order_acquire);

			if (h2 == h)
				return rc;
			h = h2;
			continue;
		}
		/* acquire: see the pusher's store of next (ordered before its
		 * release CAS, which our acquire load of head read) */
		w = atomic_load_explicit(w64(seg, side_off(L, pg, idx)),
					 memory_order_acquire);
		nh = (uint64_t)(uint32_t)w | ((h >> 32) + 1) << 32;
		/* acq_rel: takes the block (acquire, as above) and orders our
		 * read of its side word before a later pusher's rewrite */
		if (atomic_compare_exchange_weak_explicit(&k->head, &h, nh,
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	SHK_CRASHPOINT("heap.alloc.popped");
	/* The tag did not move, so w is the side word as pushed, and nobody
	 * else writes it while it is FREE and off the list (a racing double
	 * free only reads it).  relaxed: the block is ours alone. */
	if (SIDE_STATE(w) != ST_FREE)
		return SHK_ECORRUPT;
	atomic_store_explicit(w64(seg, side_off(L, pg, idx)),
			      SIDE(ST_ALLOC, shk__seg_stamp(seg), 0),
			      memory_order_relaxed);
	*off = L->heap_off + (pg << L->run_shift) + L->cboff[c] +
	       (uint64_t)idx * L->csize[c];
	return 0;
}

static void
push(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t page,
     uint32_t idx, uint64_t off)
{
	struct heap_class *k = &hdr_of(seg)->cls[c];
	_Atomic uint64_t *sw = w64(seg, side_off(L, page, idx));
	uint64_t ref = (off - L->heap_off) >> 4;
	/* relaxed: only the tag and ref are needed; the CAS publishes */
	uint64_t h = atomic_load_explicit(&k->head, memory_order_relaxed);

	do {
		/* relaxed: published by the release CAS below */
		atomic_store_explicit(sw, SIDE(ST_FREE, 0, (uint32_t)h),
				      memory_order_relaxed);
		/* release: publishes next; pairs with the acquire load and
		 * CAS in pop() */
	} while (!atomic_compare_exchange_weak_explicit(
		&k->head, &h, ref | ((h >> 32) + 1) << 32, memory_order_release,
		memory_order_relaxed));
}

/* Formats a new run for class c (lock held).  0, or SHK_ENOMEM. */
static int
new_run(shk_seg *seg, const struct layout *L, uint32_t c)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t run_len = (uint64_t)1 << L->run_shift, h, pg, old;
	struct heap_run *r;
	uint32_t i;
	int rc;

	h = shk__heap_large_carve(seg, L, run_len, run_len, SMALL_LIMIT, F_RUN,
				  &rc);
	if (!h)
		return rc ? rc : SHK_ENOMEM;
	/* the run being replaced (full: carvers leave its word alone)
	 * keeps its count in its header.  relaxed: under the lock; the
	 * release store of cur_run below orders it for run_carved() */
	old = atomic_load_explicit(&hh->cls[c].cur_run, memory_order_relaxed);
	if (CUR_PAGE(old) && CUR_PAGE(old) <= L->npages &&
	    run_valid(seg, L, CUR_PAGE(old) - 1) == (int)c) {
		struct heap_run *o = (void *)(seg->base + L->heap_off +
					      ((uint64_t)(CUR_PAGE(old) - 1)
					       << L->run_shift));

		atomic_store_explicit(&o->next_idx, CUR_IDX(old),
				      memory_order_relaxed);
	}
	pg = (h + BLK_HDR - L->heap_off) >> L->run_shift;
	r = (void *)(seg->base + h + BLK_HDR);
	/* relaxed: published by the release store of cur_run */
	for (i = 0; i < L->cnblk[c]; i++)
		atomic_store_explicit(w64(seg, side_off(L, pg, i)), 0,
				      memory_order_relaxed);
	atomic_store_explicit(&r->next_idx, 0, memory_order_relaxed);
	atomic_store_explicit(&r->geom,
			      L->cnblk[c] | (uint64_t)L->cboff[c] << 32,
			      memory_order_relaxed);
	atomic_store_explicit(&r->id, RUN_MAGIC | (uint64_t)c << 32,
			      memory_order_relaxed);
	/* relaxed: published by the release store of cur_run */
	atomic_store_explicit(pagemap(seg, L, pg), RUN_TAG | c,
			      memory_order_relaxed);
	SHK_CRASHPOINT("heap.run.formatted");
	/* release: publishes the run header, zeroed side words and page map
	 * entry; pairs with the acquire load in carve() */
	atomic_store_explicit(&hh->cls[c].cur_run, CUR_WORD(pg + 1, 0),
			      memory_order_release);
	/* relaxed: a statistic under the lock */
	lk_add(&hh->cls[c].nruns, 1);
	return 0;
}

/*
 * The page of class c's current run named by cur (cur_run, which the
 * caller loaded with acquire): 0 and *pg, or SHK_ECORRUPT when cur does
 * not name a run of class c.  new_run() writes the page map entry and the
 * run header before it publishes cur_run, so a scribbled cur_run cannot
 * make a carver count blocks inside somebody's live block.
 */
static int
cur_page(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t cur,
	 uint64_t *pg)
{
	uint64_t p = (uint64_t)CUR_PAGE(cur) - 1;

	if (!CUR_PAGE(cur) || p >= L->npages ||
	    /* acquire: the entry is ordered by the caller's acquire load of
	     * cur_run; and an entry found cleared by a run release
	     * (release store in held_release()) orders that release's CAS
	     * of cur_run to 0 before the caller's next load of it
	     * (cur_page_settled()) */
	    atomic_load_explicit(pagemap(seg, L, p), memory_order_acquire) !=
		    (RUN_TAG | c) ||
	    run_valid(seg, L, p) != (int)c)
		return SHK_ECORRUPT;
	*pg = p;
	return 0;
}

/*
 * cur_page() for a word *cur loaded from class c's cur_run a moment ago,
 * which may be stale: between the load and the look at the page map and
 * the run header, a run release (held_release()) may have CASed cur_run
 * to 0, cleared the page's entry and freed the run, which may since hold
 * anything.  So a run that does not check out only means damage when
 * cur_run still holds the word: it is loaded again, and a moved word is
 * handed back (1, in *cur) to retry with.  An unmoved one is checked once
 * more (the page may have been given back and formatted again for the
 * same class and count since the first look; the second look follows an
 * acquire load of the word, which orders the new run's entry and header
 * before it).  Until 2026-11-25 a carver racing a release returned
 * SHK_ECORRUPT on a healthy heap (test carve_release_race).  0 and *pg,
 * 1 (retry with *cur), or SHK_ECORRUPT.
 */
static int
cur_page_settled(shk_seg *seg, const struct layout *L, uint32_t c,
		 uint64_t *cur, uint64_t *pg)
{
	_Atomic uint64_t *w = &hdr_of(seg)->cls[c].cur_run;
	uint64_t again;
	int look;

	for (look = 0; look < 2; look++) {
		if (!cur_page(seg, L, c, *cur, pg))
			return 0;
		/* acquire: pairs with new_run()'s release store (a new run
		 * is checked by cur_page() with its writes visible) and
		 * with held_release()'s release CAS to 0 */
		again = atomic_load_explicit(w, memory_order_acquire);
		if (again != *cur) {
			*cur = again;
			return 1;
		}
	}
	return SHK_ECORRUPT;
}

/* Carves a never-used block from the current run: 0, 1 (run full). */
static int
carve(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t *cur_out,
      uint64_t *off)
{
	struct heap_class *k = &hdr_of(seg)->cls[c];
	/* acquire: pairs with the release store in new_run() */
	uint64_t cur = atomic_load_explicit(&k->cur_run, memory_order_acquire);
	uint64_t pg, idx, w = 0;
	int rc;

	SHK_CRASHPOINT("heap.carve.loaded");
	for (;;) {
		*cur_out = cur;
		if (!CUR_PAGE(cur))
			return 1;
		rc = cur_page_settled(seg, L, c, &cur, &pg);
		if (rc == 1)
			continue; /* given back or replaced: the new word */
		if (rc)
			return rc;
		idx = CUR_IDX(cur);
		if (idx >= L->cnblk[c])
			return 1;
		/* The count lives in the class line: a CAS here cannot land
		 * in a run given back since (runs_release()).  acquire: on
		 * failure a new run's word, validated again above, pairs
		 * with new_run()'s release store (on success it is as
		 * strong, which C11 requires; free on x86). */
		if (atomic_compare_exchange_weak_explicit(
			    &k->cur_run, &cur, cur + ((uint64_t)1 << 32),
			    memory_order_acquire, memory_order_acquire))
			break;
	}
	SHK_CRASHPOINT("heap.alloc.carved");
	/* 0 -> ALLOC; the block is ours alone.  release: orders the
	 * cur_run CAS before it for shk__heap_scan()'s acquire re-read */
	if (!atomic_compare_exchange_strong_explicit(
		    w64(seg, side_off(L, pg, (uint32_t)idx)), &w,
		    SIDE(ST_ALLOC, shk__seg_stamp(seg), 0),
		    memory_order_release, memory_order_relaxed))
		return SHK_ECORRUPT;
	*off = L->heap_off + (pg << L->run_shift) + L->cboff[c] +
	       idx * L->csize[c];
	return 0;
}

/* ------------------------------------------------------------------ */
/* magazines                                                           */
/* ------------------------------------------------------------------ */

/* Identifies the calling thread by the address of a thread-local byte: an
 * exited thread's address may be reused, but only by a thread that runs
 * after it, so no two running threads ever share one. */
static _Thread_local char tls_me SHK__TLS_IE; /* platform.h */

static uint64_t
blk_off(const struct layout *L, uint32_t c, uint64_t pg, uint32_t idx)
{
	return L->heap_off + (pg << L->run_shift) + L->cboff[c] +
	       (uint64_t)idx * L->csize[c];
}

static _Atomic uint32_t *
mag_ref(shk_seg *seg, const struct layout *L, uint64_t moff, uint32_t c,
	uint32_t i)
{
	return (_Atomic uint32_t *)(seg->base + moff + L->mref_off[c]) + i;
}

/*
 * Pushes k blocks of class c (states already FREE, ours alone) onto the
 * class list with one CAS: the chain is linked first, then published.
 * Returns the head it installed and, in *old (when given), the head it
 * replaced (runs_release() tells from them whether anybody else pushed).
 */
static uint64_t
push_chain(shk_seg *seg, const struct layout *L, uint32_t c,
	   const uint32_t *ref, const uint64_t *pg, const uint32_t *idx,
	   uint32_t k, uint64_t *old)
{
	struct heap_class *hc = &hdr_of(seg)->cls[c];
	_Atomic uint64_t *last;
	uint64_t h;
	uint32_t i;

	if (!k)
		return 0;
	for (i = 0; i + 1 < k; i++)
		/* relaxed: published by the release CAS below */
		atomic_store_explicit(w64(seg, side_off(L, pg[i], idx[i])),
				      SIDE(ST_FREE, 0, ref[i + 1]),
				      memory_order_relaxed);
	last = w64(seg, side_off(L, pg[k - 1], idx[k - 1]));
	/* relaxed: only the tag and ref are needed; the CAS publishes */
	h = atomic_load_explicit(&hc->head, memory_order_relaxed);
	do {
		/* relaxed: published by the release CAS below */
		atomic_store_explicit(last, SIDE(ST_FREE, 0, (uint32_t)h),
				      memory_order_relaxed);
		/* release: publishes the links; pairs with the acquire load
		 * and CAS in pop() */
	} while (!atomic_compare_exchange_weak_explicit(
		&hc->head, &h, ref[0] | ((h >> 32) + 1) << 32,
		memory_order_release, memory_order_relaxed));
	if (old)
		*old = h;
	return ref[0] | ((h >> 32) + 1) << 32;
}

/* Pushes the k blocks a drain turned FREE and counts them out of live. */
static void
drain_push(shk_seg *seg, const struct layout *L, uint32_t c,
	   const uint32_t *ref, const uint64_t *pg, const uint32_t *idx,
	   uint32_t k)
{
	if (!k)
		return;
	SHK_CRASHPOINT("heap.mag.drain");
	push_chain(seg, L, c, ref, pg, idx, k, NULL);
	/* relaxed: a statistic */
	atomic_fetch_sub_explicit(&hdr_of(seg)->cls[c].live, k,
				  memory_order_relaxed);
}

/*
 * Empties the magazine at moff, which we (stamp my) claimed as drainer of
 * owner S (its owner word is DRAINING(S, my)): turns every entry still
 * CACHED under S FREE (one CAS each, so two drainers never take one block
 * twice) and pushes them, returns the large cache's blocks, then frees the
 * magazine (CAS -> NONE).  Entries are scanned up to the depth, not the
 * count: a block cached just before its owner died, or left by a spill,
 * is found too.  After the last CAS we touch the magazine no more: a lock
 * holder may give its block back (mag_retire()).
 */
static void
mag_empty(shk_seg *seg, const struct layout *L, uint64_t moff, uint32_t S,
	  uint32_t my)
{
	uint32_t c, i, k, ref[MAG_MOVE], idx[MAG_MOVE];
	uint64_t nw = MO_WORD(MO_DRAINING, S, my), pg[MAG_MOVE];

	for (c = 0; c < L->nclass; c++) {
		for (i = k = 0; i < L->mdepth[c]; i++) {
			/* relaxed: the side word's CAS decides */
			uint32_t r = atomic_load_explicit(
				mag_ref(seg, L, moff, c, i),
				memory_order_relaxed);
			uint64_t w = SIDE(ST_CACHED, S, 0), p;
			uint32_t x;

			if (!r || ref_locate(seg, L, c, r, &p, &x))
				continue;
			/* acquire: pairs with the release CAS in
			 * small_free(): the owner's writes to the block
			 * happen before its next user's */
			if (!atomic_compare_exchange_strong_explicit(
				    w64(seg, side_off(L, p, x)), &w,
				    SIDE(ST_FREE, 0, 0), memory_order_acquire,
				    memory_order_relaxed))
				continue;
			ref[k] = r;
			pg[k] = p;
			idx[k++] = x;
			/* pushed MAG_MOVE at a time: a drainer killed
			 * between its CASes and the push loses at most
			 * that many */
			if (k == MAG_MOVE) {
				drain_push(seg, L, c, ref, pg, idx, k);
				k = 0;
			}
		}
		drain_push(seg, L, c, ref, pg, idx, k);
	}
	for (i = 0; i < LC_N; i++) {
		_Atomic uint64_t *e = w64(seg, moff + L->mlc_off + 8 * i);
		/* relaxed: a hint; the header CAS below decides */
		uint64_t h = atomic_load_explicit(e, memory_order_relaxed);
		uint64_t w, sz;

		if (!h || !blk_in(L, h))
			continue;
		w = ld(seg, h);
		sz = w & SIZE_MASK;
		if (!hdr_ok(h, w) || (w & F_ALL) != (F_USED | F_LC) ||
		    sz < BLK_MIN || sz > L->chain_end - h)
			continue;
		/* acquire: pairs with the release store in lc_put(): the
		 * owner's writes to the block happen before its next user's */
		if (!atomic_compare_exchange_strong_explicit(
			    w64(seg, h), &w, mkhdr(h, sz, F_USED),
			    memory_order_acquire, memory_order_relaxed))
			continue;
		/* relaxed: the entry is a hint only */
		atomic_store_explicit(e, 0, memory_order_relaxed);
		SHK_CRASHPOINT("heap.lc.drain");
		if (seg->heap_local)
			(void)shk__heap_large_free(seg, seg->heap_local,
						   h + BLK_HDR);
	}
	/* release: the drain happens before a new owner's claim and before
	 * a retirer's acquire load (mag_setup(), mag_retire()) */
	atomic_compare_exchange_strong_explicit(mag_owner(seg, moff), &nw, 0,
						memory_order_release,
						memory_order_relaxed);
}

/*
 * Drains our own magazine at moff (owner word OWNED(my)): at close and at
 * the owning thread's exit.  No lock: while we live, nobody else claims a
 * magazine that names us.
 */
static void
mag_drain_own(shk_seg *seg, const struct layout *L, uint64_t moff, uint32_t my)
{
	uint64_t o = MO_WORD(MO_OWNED, my, 0);

	/* acq_rel: orders our entries before the drain's reads, and the
	 * drain before a later claim (release CAS at its end) */
	if (atomic_compare_exchange_strong_explicit(
		    mag_owner(seg, moff), &o, MO_WORD(MO_DRAINING, my, my),
		    memory_order_acq_rel, memory_order_relaxed))
		mag_empty(seg, L, moff, my, my);
}

/*
 * Claims moff's magazine for draining if its owner (or its drainer) is
 * dead: CAS -> DRAINING(owner, me).  Lock held: every claim of a magazine
 * by a party other than its live owner is made under the lock, so that a
 * lock holder that finds a magazine NONE knows nobody uses it or is about
 * to (mag_retire()).  Returns the owner stamp to drain for, or 0.
 */
static uint32_t
mag_claim_dead(shk_seg *seg, uint64_t moff, uint32_t me)
{
	/* acquire: pairs with the release stores/CASes of the owner word */
	uint64_t o = atomic_load_explicit(mag_owner(seg, moff),
					  memory_order_acquire);
	uint32_t st = MO_STATE(o), S = MO_OWNER(o);

	if (st == MO_OWNED && S != me && !shk__stamp_alive(seg, S))
		;
	else if (st == MO_DRAINING && MO_DRAINER(o) != me &&
		 !shk__stamp_alive(seg, MO_DRAINER(o)))
		;
	else
		return 0;
	/* acq_rel: takes the magazine; sees the owner's entries (its
	 * release stores and the release store of each cached block) */
	if (!S || !atomic_compare_exchange_strong_explicit(
			  mag_owner(seg, moff), &o, MO_WORD(MO_DRAINING, S, me),
			  memory_order_acq_rel, memory_order_relaxed))
		return 0;
	return S;
}

/*
 * Gives back the magazine moff named by slot s (lock held) when nobody
 * uses it: its owner word NONE.  Claims are made under the lock
 * (mag_setup(), mag_claim_dead()), and a drain's last CAS (to NONE) is its
 * last touch, so no party holds the block after this.  The slot is cleared
 * first: a kill before the free leaves a magazine no slot names, which
 * repair() gives back.  1 when given back.
 */
static int
mag_retire(shk_seg *seg, const struct layout *L, uint32_t s, uint64_t moff)
{
	struct heap_hdr *hh = hdr_of(seg);

	/* relaxed: the slot is written under the lock only */
	if (atomic_load_explicit(&hh->mag[s], memory_order_relaxed) != moff ||
	    !mag_valid(seg, L, moff) ||
	    /* acquire: pairs with the release CAS ending a drain: the
	     * drainer's accesses happen before the block's next use */
	    MO_STATE(atomic_load_explicit(mag_owner(seg, moff),
					  memory_order_acquire)) != MO_NONE)
		return 0;
	/* relaxed: lock-free readers (statistics, the scan) validate the
	 * block they find and the scan re-reads seq */
	atomic_store_explicit(&hh->mag[s], 0, memory_order_relaxed);
	SHK_CRASHPOINT("heap.mag.retire");
	return shk__heap_free_meta(seg, L, moff - BLK_HDR, F_MAG) == 0;
}

/*
 * Sets up the calling thread's use of its handle's magazine: finds or makes
 * the slot's magazine, drains what a dead previous owner left, claims it.
 * Leaves hl->mag_off 0 when there is none (no room, or the slot's magazine
 * is held by a live owner: a forked child using a parent's handle); returns
 * the heap lock's error when that was why, else 0.
 */
static int
mag_setup(shk_seg *seg, struct heap_local *hl)
{
	const struct layout *L = &hl->L;
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t me = shk__seg_stamp(seg), c, tries, S;
	_Atomic uint64_t *slot;
	uint64_t moff = 0, h, o;
	int rc, claimed = 0;

	if (seg->slot >= SHK__ATTACH_CAP || !me)
		return 0;
	slot = &hh->mag[seg->slot];
	/* Under the lock: a magazine found NONE is claimed before any
	 * retirer can give it back (mag_retire()). */
	for (tries = 0; tries < 8 && !claimed; tries++) {
		rc = shk__heap_lock(seg, hl);
		if (rc)
			return rc;
		/* relaxed: under the lock */
		moff = atomic_load_explicit(slot, memory_order_relaxed);
		if (!moff) {
			/* from the top end of the free space, where it cuts
			 * up the least (shk__heap_carve_top()) */
			h = shk__heap_carve_top(seg, L, L->mag_len, F_MAG, &rc);
			if (!h) {
				shk__heap_unlock(seg, hl);
				return 0;
			}
			SHK_CRASHPOINT("heap.mag.carved");
			moff = h + BLK_HDR;
			/* relaxed: published by the store below */
			for (h = 8; h < L->mag_len; h += 8)
				st(seg, moff + h, 0);
			st(seg, moff, MO_WORD(MO_OWNED, me, 0));
			/* release: publishes the zeroed magazine to
			 * lock-free readers (statistics, reclaim hints) */
			atomic_store_explicit(slot, moff, memory_order_release);
			claimed = 1;
		} else if (!mag_valid(seg, L, moff)) {
			shk__heap_unlock(seg, hl);
			return 0;
		} else {
			/* acquire: pairs with the release CAS ending a
			 * drain */
			o = atomic_load_explicit(mag_owner(seg, moff),
						 memory_order_acquire);
			/* acquire: after the last drain's release */
			if (MO_STATE(o) == MO_NONE &&
			    atomic_compare_exchange_strong_explicit(
				    mag_owner(seg, moff), &o,
				    MO_WORD(MO_OWNED, me, 0),
				    memory_order_acquire, memory_order_relaxed))
				claimed = 1;
		}
		S = claimed ? 0 : mag_claim_dead(seg, moff, me);
		shk__heap_unlock(seg, hl);
		if (claimed)
			break;
		if (!S)
			return 0; /* a live owner (a parent's handle) */
		/* a dead previous owner of the slot: drain, then claim */
		mag_empty(seg, L, moff, S, me);
	}
	if (!claimed)
		return 0;
	for (c = 0; c < L->nclass; c++)
		/* relaxed: only the owner writes the counts */
		atomic_store_explicit(mag_n(seg, moff, c), 0,
				      memory_order_relaxed);
	memset(hl->lcnt, 0, sizeof(hl->lcnt));
	for (c = 0; c < LC_N; c++)
		/* relaxed: our magazine now (its drain ended before) */
		atomic_store_explicit(w64(seg, moff + L->mlc_off + 8 * c), 0,
				      memory_order_relaxed);
	hl->lcn = 0;
	hl->lc_bytes = 0;
	hl->mag_stamp = me;
	hl->mag_key = shk__self_key();
	hl->mag_off = moff;
	return 0;
}

/*
 * Thread exit.  A handle's magazine and large cache are its claiming
 * thread's alone (mag_thread): no other thread may take from them, and
 * after that thread exited they held their blocks until the handle
 * closed (a 4 MiB heap lost a quarter of its room to one exited thread's
 * large cache; test mag_thread_exit).  So a thread that claims a magazine
 * enters the handle's heap_local in its own list (tx_head, linked
 * through tx_next/tx_pprev) and arms a pthread key whose destructor,
 * tx_exit() on the exiting thread, drains each magazine as
 * shk__heap_detach() does and gives the claim up (release store of
 * mag_thread 0), so the next thread of the handle that allocates or
 * frees claims it again.  tx_mu guards every thread's list and the links;
 * shk__heap_detach() unlinks its handle from whichever list holds it and
 * waits while that thread's exit drains it (tx_busy), so a destructor
 * never follows a link into a freed handle.  tx_mu is taken with every
 * signal blocked and held across fork() (as live_mu in sync_mutex.c).
 *
 * The list's head is malloc()ed (tx_head), not in the thread's own
 * storage: a claim made where tx_exit() will not run any more (a later
 * key's destructor in the C library's last round of destructors, which
 * sets no round after it) left the first handle's tx_pprev pointing into
 * the dead thread's storage, and that handle's close wrote there (into a
 * later thread's, once reused).  Such a head is leaked, and written
 * harmlessly.  And once tx_exit() ran, the thread claims no magazine any
 * more (tx_exiting): its allocations and frees take the shared lists
 * (test mag_thread_exit_late).
 */
struct tx_head {
	struct heap_local *first;
};
static pthread_mutex_t tx_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t tx_once = PTHREAD_ONCE_INIT;
static pthread_key_t tx_key;
static int tx_key_ok;
static _Thread_local struct tx_head *tx_head;
static _Thread_local int tx_exiting;
static sigset_t tx_fork_mask; /* the forking thread's, while it forks */

static void
tx_lock(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
	pthread_mutex_lock(&tx_mu);
}

static void
tx_unlock(const sigset_t *old)
{
	pthread_mutex_unlock(&tx_mu);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void
tx_prefork(void)
{
	sigset_t old;

	tx_lock(&old);
	tx_fork_mask = old;
}

static void
tx_postfork(void)
{
	sigset_t old = tx_fork_mask;

	/* in the child too: the forking thread locked it and is this
	 * thread (a default mutex does not check the owner) */
	tx_unlock(&old);
}

/* Takes hl out of its thread's list, if in one.  tx_mu held. */
static void
tx_unlink(struct heap_local *hl)
{
	if (!hl->tx_pprev)
		return;
	*hl->tx_pprev = hl->tx_next;
	if (hl->tx_next)
		hl->tx_next->tx_pprev = hl->tx_pprev;
	hl->tx_next = NULL;
	hl->tx_pprev = NULL;
}

/* Drains the exiting thread's magazine of hl and gives the claim up. */
static void
tx_flush(struct heap_local *hl)
{
	if (hl->mag_off && hl->mag_key == shk__self_key())
		mag_drain_own(hl->tx_seg, &hl->L, hl->mag_off, hl->mag_stamp);
	hl->mag_off = 0;
	memset(hl->lcnt, 0, sizeof(hl->lcnt));
	hl->lcn = 0;
	hl->lc_bytes = 0;
	/* release: our writes to hl, and the drain, happen before the next
	 * claimer's mag_setup(); pairs with the acquire CAS in mag_mine() */
	atomic_store_explicit(&hl->mag_thread, 0, memory_order_release);
}

/* The key's destructor, on the exiting thread (above). */
static void
tx_exit(void *arg)
{
	struct heap_local *hl;
	sigset_t old;

	(void)arg;
	tx_exiting = 1;
	tx_lock(&old);
	while (tx_head && (hl = tx_head->first) != NULL) {
		tx_unlink(hl);
		hl->tx_busy = 1;
		tx_unlock(&old);
		tx_flush(hl);
		tx_lock(&old);
		hl->tx_busy = 0;
	}
	/* empty: no link points into it */
	free(tx_head);
	tx_head = NULL;
	tx_unlock(&old);
}

static void
tx_setup(void)
{
	tx_key_ok = pthread_key_create(&tx_key, tx_exit) == 0;
	pthread_atfork(tx_prefork, tx_postfork, tx_postfork);
}

/* Enters hl, whose magazine the calling thread just claimed, in its
 * list.  Without the key (none left) or the head (no memory), its exit
 * leaves the magazine claimed until the handle closes, as before. */
static void
tx_enter(shk_seg *seg, struct heap_local *hl)
{
	sigset_t old;

	pthread_once(&tx_once, tx_setup);
	if (!tx_key_ok)
		return;
	if (!tx_head) {
		tx_head = calloc(1, sizeof(*tx_head));
		if (!tx_head)
			return;
	}
	if (pthread_setspecific(tx_key, tx_head) != 0)
		return;
	tx_lock(&old);
	hl->tx_seg = seg;
	hl->tx_next = tx_head->first;
	hl->tx_pprev = &tx_head->first;
	if (tx_head->first)
		tx_head->first->tx_pprev = &hl->tx_next;
	tx_head->first = hl;
	tx_unlock(&old);
}

/* For shk__heap_detach(): takes seg's heap_local out of its owner's list
 * and waits for that thread's exit to finish draining it.  A forked
 * child's copy of a parent's handle waits for nothing (the thread that
 * was draining it is not in the child). */
static void
tx_leave(shk_seg *seg, struct heap_local *hl)
{
	int inherited = shk__seg_inherited(seg);
	sigset_t old;

	tx_lock(&old);
	tx_unlink(hl);
	while (hl->tx_busy && !inherited) {
		tx_unlock(&old);
		usleep(1000);
		tx_lock(&old);
	}
	tx_unlock(&old);
}

/* The calling thread's magazine offset, or 0 when it has none. */
static inline uint64_t
mag_mine(shk_seg *seg, struct heap_local *hl)
{
	uintptr_t me = (uintptr_t)&tls_me, t = 0;

	/* relaxed: a process-local claim; the winner alone reads mag_off */
	t = atomic_load_explicit(&hl->mag_thread, memory_order_relaxed);
	if (t == me)
		return hl->mag_off;
	/* an exiting thread whose tx_exit() ran claims none (above) */
	if (t || tx_exiting)
		return 0;
	/* acquire: after an earlier owner's exit (release store in
	 * tx_flush()), its writes to hl happen before ours */
	if (!atomic_compare_exchange_strong_explicit(&hl->mag_thread, &t, me,
						     memory_order_acquire,
						     memory_order_relaxed))
		return 0;
	if (mag_setup(seg, hl) && shk__heap_lock_dl) {
		/* the heap lock's wait was cut short by a caller's deadline
		 * (shk__heap_lock_dl, heap.h): nothing was claimed, so the
		 * claim is given up and a later call sets up again (kept,
		 * a short wait would leave the thread without a magazine
		 * for the handle's life).  Relaxed: as the claim; nothing of
		 * ours was written to hl */
		atomic_store_explicit(&hl->mag_thread, 0, memory_order_relaxed);
		return 0;
	}
	tx_enter(seg, hl);
	return hl->mag_off;
}

/*
 * Takes a cached block of class c from our magazine (the local mirror):
 * 0 and *off, or 1 when empty.  No atomic read-modify-write: a live
 * owner's CACHED blocks are written by nobody else (drainers only take
 * dead owners'), so plain stores move them CACHED -> ALLOC.
 */
static inline int
mag_take(shk_seg *seg, struct heap_local *hl, uint32_t c, uint64_t *off)
{
	uint32_t n = hl->lcnt[c];
	uint64_t want = SIDE(ST_CACHED, hl->mag_stamp, 0);

	while (n) {
		const struct mag_ent *e = &hl->lent[c][--n];
		_Atomic uint64_t *sw = w64(seg, e->side);

		/* relaxed here and below: our own block (see above); the
		 * count is a statistic for other readers and a bound for
		 * drainers, who decide by CAS on side words */
		if (atomic_load_explicit(sw, memory_order_relaxed) != want)
			continue; /* damaged by a stray write: skip it */
		atomic_store_explicit(sw, SIDE(ST_ALLOC, hl->mag_stamp, 0),
				      memory_order_relaxed);
		hl->lcnt[c] = n;
		atomic_store_explicit(mag_n(seg, hl->mag_off, c), n,
				      memory_order_relaxed);
		*off = e->blk;
		return 0;
	}
	hl->lcnt[c] = 0;
	atomic_store_explicit(mag_n(seg, hl->mag_off, c), 0,
			      memory_order_relaxed);
	return 1;
}

/*
 * Records block (blk, pg, x) of class c, already marked CACHED by us, as
 * magazine entry n: the shared entry (for drainers) and the mirror.
 */
static inline void
mag_record(shk_seg *seg, struct heap_local *hl, uint32_t c, uint32_t n,
	   uint64_t blk, uint64_t side)
{
	/* relaxed: a hint for drainers, who decide by CAS on side words */
	atomic_store_explicit(mag_ref(seg, &hl->L, hl->mag_off, c, n),
			      (uint32_t)((blk - hl->L.heap_off) >> 4),
			      memory_order_relaxed);
	hl->lent[c][n].blk = blk;
	hl->lent[c][n].side = side;
}

/*
 * Refills our empty magazine of class c with half its depth, at most
 * MAG_MOVE blocks: a chain popped from the class list with one CAS, else
 * blocks carved from the current run with one CAS.  Returns how many (0:
 * none to be had without a new run) or a negative code.
 *
 * The chain pop walks k links from head, then CASes head {first, tag}
 * to {link k, tag + 1}.  Every push and pop bumps the tag, so a CAS that
 * succeeds proves the links walked were the list as it stood; links read
 * while others raced may be garbage, so each is bounds-checked (a bad one
 * ends the walk and the CAS then decides).  A party killed after the CAS
 * and before marking its blocks CACHED leaves up to k FREE blocks on no
 * list (leaked); after a carve's CAS, up to k never-marked blocks.
 */
static int
mag_refill(shk_seg *seg, struct heap_local *hl, uint32_t c)
{
	const struct layout *L = &hl->L;
	struct heap_class *hc = &hdr_of(seg)->cls[c];
	/* layout() gives every class at least 8 entries */
	uint32_t want =
		L->mdepth[c] / 2 < MAG_MOVE ? L->mdepth[c] / 2 : MAG_MOVE;
	uint32_t n = 0, i, me = hl->mag_stamp, idx[MAG_MOVE];
	uint64_t pg[MAG_MOVE], cur, cpg, h, ix, expect = ST_FREE;

	/* acquire: pairs with the release CAS in push()/push_chain():
	 * makes the pushed blocks' side words (their links) visible */
	h = atomic_load_explicit(&hc->head, memory_order_acquire);
	while ((uint32_t)h) {
		uint64_t ref = (uint32_t)h, w = 0;

		for (n = 0; ref && n < want; n++) {
			if (ref_locate(seg, L, c, ref, &pg[n], &idx[n]))
				break;
			/* acquire: as the head load (the pusher's links are
			 * ordered before its release CAS) */
			w = atomic_load_explicit(
				w64(seg, side_off(L, pg[n], idx[n])),
				memory_order_acquire);
			ref = (uint32_t)w;
		}
		if (n < want && ref) {
			/* a bad link: the list changed under us, or is
			 * damaged (then the head has not moved) */
			uint64_t h2 = atomic_load_explicit(
				&hc->head, memory_order_acquire);

			if (h2 == h)
				return SHK_ECORRUPT;
			h = h2;
			continue;
		}
		/* acq_rel: takes the chain (acquire, as above) and orders our
		 * reads of its links before a later pusher's rewrite */
		if (atomic_compare_exchange_weak_explicit(
			    &hc->head, &h, ref | ((h >> 32) + 1) << 32,
			    memory_order_acq_rel, memory_order_acquire))
			goto take;
	}
	/* lists empty: carve from the current run.  acquire: pairs with the
	 * release store in new_run() */
	cur = atomic_load_explicit(&hc->cur_run, memory_order_acquire);
	SHK_CRASHPOINT("heap.refill.loaded");
	for (;;) {
		int rc;

		if (!CUR_PAGE(cur))
			return 0;
		rc = cur_page_settled(seg, L, c, &cur, &cpg);
		if (rc == 1)
			continue; /* as in carve() */
		if (rc)
			return rc;
		ix = CUR_IDX(cur);
		if (ix >= L->cnblk[c])
			return 0;
		n = L->cnblk[c] - ix < want ? (uint32_t)(L->cnblk[c] - ix)
					    : want;
		/* as in carve() */
		if (atomic_compare_exchange_weak_explicit(
			    &hc->cur_run, &cur, cur + ((uint64_t)n << 32),
			    memory_order_acquire, memory_order_acquire))
			break;
	}
	for (i = 0; i < n; i++) {
		pg[i] = cpg;
		idx[i] = (uint32_t)(ix + i);
	}
	expect = 0; /* carved blocks were never handed out */
take:
	SHK_CRASHPOINT("heap.mag.refill");
	for (i = 0; i < n; i++) {
		uint64_t so = side_off(L, pg[i], idx[i]);
		_Atomic uint64_t *sw = w64(seg, so);
		/* relaxed: the block is ours alone (popped: the CAS proved
		 * its word is as pushed; carved: never handed out) */
		uint64_t w = atomic_load_explicit(sw, memory_order_relaxed);

		if ((expect ? SIDE_STATE(w) : w) != expect)
			break; /* damaged: the rest stay off every list */
		mag_record(seg, hl, c, i, blk_off(L, c, pg[i], idx[i]), so);
		/* release: orders the entry before the state for a drainer
		 * (its acquire CAS in mag_drain()); for a carve also the
		 * next_idx CAS, for shk__heap_scan()'s acquire re-read */
		atomic_store_explicit(sw, SIDE(ST_CACHED, me, 0),
				      memory_order_release);
	}
	hl->lcnt[c] = i;
	/* relaxed: a statistic and a bound (mag_take) */
	atomic_store_explicit(mag_n(seg, hl->mag_off, c), i,
			      memory_order_relaxed);
	/* relaxed: a statistic (cached blocks count as live, see info) */
	atomic_fetch_add_explicit(&hc->live, i, memory_order_relaxed);
	return i ? (int)i : SHK_ECORRUPT;
}

/*
 * Returns entries keep..n of class c's magazine (n entries; at most
 * MAG_MOVE: the newer half of a full one in mag_put()) to the list with
 * one CAS.  The count drops first
 * and the entries stay in place, so a kill before the push leaves the
 * blocks CACHED where a drainer finds them; a kill amid the linking loses
 * them (at most MAG_MOVE blocks).
 */
static void
mag_spill(shk_seg *seg, struct heap_local *hl, uint32_t c, uint32_t n,
	  uint32_t keep)
{
	const struct layout *L = &hl->L;
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t i, k = 0;
	uint32_t ref[MAG_MOVE], idx[MAG_MOVE];
	uint64_t pg[MAG_MOVE], want = SIDE(ST_CACHED, hl->mag_stamp, 0);

	hl->lcnt[c] = keep;
	/* relaxed here and below: our own entries and blocks (mag_take) */
	atomic_store_explicit(mag_n(seg, hl->mag_off, c), keep,
			      memory_order_relaxed);
	for (i = keep; i < n; i++) {
		const struct mag_ent *e = &hl->lent[c][i];
		uint64_t rel = e->blk - L->heap_off;

		if (atomic_load_explicit(w64(seg, e->side),
					 memory_order_relaxed) != want)
			continue;
		ref[k] = (uint32_t)(rel >> 4);
		pg[k] = rel >> L->run_shift;
		idx[k] = (uint32_t)((e->side - L->heap_off -
				     (pg[k] << L->run_shift) - 64) /
				    8);
		k++;
	}
	SHK_CRASHPOINT("heap.mag.spill");
	push_chain(seg, L, c, ref, pg, idx, k, NULL);
	/* relaxed: a statistic */
	if (k)
		atomic_fetch_sub_explicit(&hh->cls[c].live, k,
					  memory_order_relaxed);
}

/*
 * Drains every magazine whose owner died or closed (not ours) and gives
 * back every magazine nobody uses (NONE: its owner closed, or its drain
 * ended), so that dead handles' caches and magazine blocks return to the
 * chain; used when the heap runs short (small or large) and by
 * shk__heap_reclaim.  The claims and retirements are made under the lock,
 * the drains outside it (a drain frees large-cache blocks, which locks).
 * Returns how many magazines it drained or gave back.
 */
static int
mag_reclaim_all(shk_seg *seg, struct heap_local *hl)
{
	const struct layout *L = &hl->L;
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t me = shk__seg_stamp(seg), s, k = 0, i;
	uint32_t who[SHK__ATTACH_CAP], at[SHK__ATTACH_CAP];
	uint64_t mo[SHK__ATTACH_CAP];
	int n = 0;

	if (seg->slot == UINT32_MAX || !me)
		return 0;
	if (shk__heap_lock(seg, hl))
		return 0;
	for (s = 0; s < SHK__ATTACH_CAP; s++) {
		/* relaxed: the slots are written under the lock */
		uint64_t moff =
			atomic_load_explicit(&hh->mag[s], memory_order_relaxed);
		uint32_t S;

		if (!moff || !mag_valid(seg, L, moff))
			continue;
		if (mag_retire(seg, L, s, moff)) {
			n++;
			continue;
		}
		S = mag_claim_dead(seg, moff, me);
		if (!S)
			continue;
		who[k] = S;
		at[k] = s;
		mo[k++] = moff;
	}
	shk__heap_unlock(seg, hl);
	/* ours to drain: DRAINING(me) is neither claimed nor given back by
	 * anybody else while we live */
	for (i = 0; i < k; i++)
		mag_empty(seg, L, mo[i], who[i], me);
	if (k && !shk__heap_lock(seg, hl)) {
		for (i = 0; i < k; i++)
			(void)mag_retire(seg, L, at[i], mo[i]);
		shk__heap_unlock(seg, hl);
	}
	return n + (int)k;
}

/*
 * Giving empty runs back (docs/heap.md).  A run belongs to its class
 * until all of its carved blocks are on the class list at once; then a
 * lock holder may take them off and free the run as a large block, so
 * that a heap whose mix of sizes drifts can still serve large requests.
 * Lock-free parties never write a run they do not hold a block of: a
 * pop's CAS is on the class head, a carve's on cur_run (both in the class
 * line), and a freer or cache owner holds an ALLOC or CACHED block, which
 * keeps its run.  Stale readers may read what the memory became; their
 * CAS on the head then fails, as every take bumps the tag.
 *
 * Steps, under the lock, for the classes that may have a run to give
 * (below): set cls.held; take the whole list MAG_MOVE blocks per CAS (as
 * a refill does), marking each SIDE_HELD; for each run of the class whose
 * carved blocks are all HELD (the current run too, after a CAS of cur_run
 * to 0 proves nobody carved more), clear its page map entry and free it;
 * push the other HELD blocks back MAG_MOVE per CAS; clear held.  A kill
 * loses at most MAG_MOVE blocks (between a take's CAS and its marks, or
 * while a push-back links its chain); blocks still HELD are pushed back
 * by repair() (held_push_back()); a run whose entry was cleared and not
 * yet freed is freed by repair().
 *
 * Cost.  Each step walks the page map once for all classes (a set of
 * classes, a bit each), and only the pages that may hold a run
 * (run_pages(): runs end within SMALL_LIMIT, 64 GiB, of the heap's
 * start).  Until 2026-11-25 evening every step walked the whole map
 * once per class, on every large allocation that failed: 21 ms per
 * failure in a 16 GiB heap in the audit's measurement.  And a class
 * whose list head is the one a pass left it with after finding nothing
 * to give (cls.idle_head) is skipped: its list has not changed since,
 * and a run becomes givable only by a push onto the list (every free,
 * spill, drain and push-back moves the head's tag).
 */

/* Pushes every HELD block of the classes in set back onto their lists
 * (lock held), in one walk of the page map.  Per class, *quiet (when
 * given) keeps its bit only while every push found the head as the one
 * before it (expect: the head each class was left with) and *last gets
 * the head the last push installed. */
static void
held_push_back(shk_seg *seg, const struct layout *L, uint64_t set,
	       uint64_t *expect, uint64_t *quiet)
{
	uint32_t ref[NCLASS][MAG_MOVE], idx[NCLASS][MAG_MOVE], k[NCLASS];
	uint64_t pgs[NCLASS][MAG_MOVE], pg, np = run_pages(L), old, now;
	uint32_t c, i;

	memset(k, 0, sizeof(k));
	for (pg = 0; pg < np && set; pg++) {
		/* relaxed: the page map is written under the lock (ours) */
		uint32_t e = atomic_load_explicit(pagemap(seg, L, pg),
						  memory_order_relaxed);

		c = e & ~RUN_TAG;
		if (!(e & RUN_TAG) || c >= L->nclass || !(set >> c & 1) ||
		    run_valid(seg, L, pg) != (int)c)
			continue;
		for (i = 0; i < L->cnblk[c]; i++) {
			uint32_t n = k[c];

			/* relaxed: HELD words are written by lock holders
			 * only (we hold it) */
			if (atomic_load_explicit(w64(seg, side_off(L, pg, i)),
						 memory_order_relaxed) !=
			    SIDE_HELD)
				continue;
			ref[c][n] = (uint32_t)((blk_off(L, c, pg, i) -
						L->heap_off) >>
					       4);
			pgs[c][n] = pg;
			idx[c][n] = i;
			if (++k[c] == MAG_MOVE) {
				SHK_CRASHPOINT("heap.run.pushback");
				now = push_chain(seg, L, c, ref[c], pgs[c],
						 idx[c], MAG_MOVE, &old);
				if (expect && old != expect[c])
					*quiet &= ~(1ull << c);
				if (expect)
					expect[c] = now;
				k[c] = 0;
			}
		}
	}
	for (c = 0; c < L->nclass; c++) {
		if (!(set >> c & 1) || !k[c])
			continue;
		now = push_chain(seg, L, c, ref[c], pgs[c], idx[c], k[c], &old);
		if (expect && old != expect[c])
			*quiet &= ~(1ull << c);
		if (expect)
			expect[c] = now;
	}
}

/* For repair(): pushes back what a dead run release held (lock held). */
void
shk__heap_held_repair(shk_seg *seg, const struct layout *L)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t set = 0;
	uint32_t c;

	for (c = 0; c < L->nclass; c++)
		/* relaxed: written under the lock */
		if (atomic_load_explicit(&hh->cls[c].held,
					 memory_order_relaxed))
			set |= 1ull << c;
	if (!set)
		return;
	held_push_back(seg, L, set, NULL, NULL);
	for (c = 0; c < L->nclass; c++)
		if (set >> c & 1)
			lk_set(&hh->cls[c].held, 0);
}

/*
 * Takes class c's whole list off, MAG_MOVE blocks per CAS, marking each
 * SIDE_HELD (lock held, cls.held set).  Returns how many, and in *left
 * the head it left.  As in mag_refill(), the walked links are proved by
 * the CAS's tag; a bad link under an unmoved head (damage) ends the take.
 */
static uint64_t
held_take(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t *left)
{
	struct heap_class *hc = &hdr_of(seg)->cls[c];
	uint64_t total = 0, bound = L->heap_len / L->csize[c], pg[MAG_MOVE];
	uint64_t ws[MAG_MOVE];
	uint32_t idx[MAG_MOVE], n, i;
	/* acquire: pairs with the release CAS in push()/push_chain() */
	uint64_t h = atomic_load_explicit(&hc->head, memory_order_acquire);

	while ((uint32_t)h && total < bound) {
		uint64_t ref = (uint32_t)h, h2;

		for (n = 0; ref && n < MAG_MOVE; n++) {
			if (ref_locate(seg, L, c, ref, &pg[n], &idx[n]))
				break;
			/* acquire: as the head load */
			ws[n] = atomic_load_explicit(
				w64(seg, side_off(L, pg[n], idx[n])),
				memory_order_acquire);
			ref = (uint32_t)ws[n];
		}
		if (n < MAG_MOVE && ref) {
			/* acquire: as above; an unmoved head is damage */
			h2 = atomic_load_explicit(&hc->head,
						  memory_order_acquire);
			if (h2 == h)
				break;
			h = h2;
			continue;
		}
		/* acq_rel: takes the chain (as a refill) */
		if (!atomic_compare_exchange_weak_explicit(
			    &hc->head, &h, ref | ((h >> 32) + 1) << 32,
			    memory_order_acq_rel, memory_order_acquire))
			continue;
		SHK_CRASHPOINT("heap.run.held");
		for (i = 0; i < n; i++) {
			if (SIDE_STATE(ws[i]) != ST_FREE)
				continue; /* damaged: stays off every list */
			/* relaxed: ours alone now (the CAS proved it) */
			atomic_store_explicit(
				w64(seg, side_off(L, pg[i], idx[i])), SIDE_HELD,
				memory_order_relaxed);
		}
		total += n;
		/* acquire: as above */
		h = atomic_load_explicit(&hc->head, memory_order_acquire);
	}
	*left = h;
	return total;
}

/* Gives back run pg of class c (lock held), no longer current and none
 * of whose blocks anybody holds: clears its page-map entry, then frees
 * it as a large block.  1, or 0 when damaged neighbours refuse the free
 * (the run keeps its entry). */
static int
run_give(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t pg)
{
	uint64_t h = L->heap_off + (pg << L->run_shift) - BLK_HDR;

	/* release: a carver that finds the entry cleared then sees the CAS
	 * of cur_run to 0 (held_release(), cur_give_uncarved()) when it
	 * loads cur_run again (acquire in cur_page()); a lock-free reader
	 * that still finds the entry holds a stale ref whose CAS fails */
	atomic_store_explicit(pagemap(seg, L, pg), 0, memory_order_release);
	SHK_CRASHPOINT("heap.run.released");
	if (shk__heap_free_meta(seg, L, h, F_RUN)) {
		/* damaged neighbours: keep the run.  relaxed: ours (lock) */
		atomic_store_explicit(pagemap(seg, L, pg), RUN_TAG | c,
				      memory_order_relaxed);
		return 0;
	}
	lk_add(&hdr_of(seg)->cls[c].nruns, (uint64_t)-1);
#ifdef SHK_TEST_HOOKS
	/* relaxed: a counter for tests */
	atomic_fetch_add_explicit(&shk__heap_runs_given, 1,
				  memory_order_relaxed);
#endif
	return 1;
}

/* Gives back the runs of the classes in set whose carved blocks are all
 * HELD (lock held, their lists taken), in one walk of the page map.
 * Returns how many; *gave gets the classes that gave one. */
static int
held_release(shk_seg *seg, const struct layout *L, uint64_t set, uint64_t *gave)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t pg, i, ni, cur, np = run_pages(L);
	int n = 0;

	*gave = 0;
	for (pg = 0; pg < np; pg++) {
		struct heap_run *r = (void *)(seg->base + L->heap_off +
					      (pg << L->run_shift));
		/* relaxed: the page map and run headers are ours (lock) */
		uint32_t e = atomic_load_explicit(pagemap(seg, L, pg),
						  memory_order_relaxed);
		uint32_t c = e & ~RUN_TAG;
		int is_cur;

		if (!(e & RUN_TAG) || c >= L->nclass || !(set >> c & 1) ||
		    run_valid(seg, L, pg) != (int)c)
			continue;
		/* acquire: carvers' CASes on it; pairs with nothing we need
		 * beyond the value (the lock orders the rest) */
		cur = atomic_load_explicit(&hh->cls[c].cur_run,
					   memory_order_acquire);
		is_cur = CUR_PAGE(cur) == pg + 1;
		ni = run_carved(seg, L, c, pg);
		if (is_cur)
			ni = CUR_IDX(cur) < L->cnblk[c] ? CUR_IDX(cur)
							: L->cnblk[c];
		if (!ni)
			continue;
		for (i = 0; i < ni; i++)
			/* relaxed: HELD is written under the lock only */
			if (atomic_load_explicit(
				    w64(seg, side_off(L, pg, (uint32_t)i)),
				    memory_order_relaxed) != SIDE_HELD)
				break;
		if (i < ni)
			continue;
		/* relaxed: ordered by the lock; written before the CAS so
		 * that a kill after it leaves a run repair() keeps */
		atomic_store_explicit(&r->next_idx, ni, memory_order_relaxed);
		/* the current run: only while nobody carved more (a carver
		 * that read the old word fails its CAS, and later ones find
		 * no run: they take the lock and format one) */
		if (is_cur &&
		    /* release: orders the next_idx store above before the
		     * word that says the run is no longer current, for
		     * run_carved()'s acquire load; a carver that finds the
		     * page gone and loads cur_run again sees 0 or later
		     * (cur_page_settled()).  relaxed on failure: the run
		     * stays (a carver moved the word) */
		    !atomic_compare_exchange_strong_explicit(
			    &hh->cls[c].cur_run, &cur, 0, memory_order_release,
			    memory_order_relaxed))
			continue;
		if (!run_give(seg, L, c, pg))
			continue;
		*gave |= 1ull << c;
		n++;
	}
	return n;
}

/*
 * Gives back class c's current run when nobody carved from it (lock
 * held): a run formatted for a class whose list was refilled (a push,
 * or a run release's push-back) before anybody carved.  It holds no
 * block, so nobody can hold one of it; the CAS of cur_run from
 * {page, 0} to 0 proves nobody carved meanwhile, as for a current run
 * in held_release().  Until 2026-11-26 such a run stayed, and its
 * count of 0 made runs_release()'s filter skip the whole class: in
 * run_giveback_threads about one run in 16 kept 22 all-free runs of
 * one class after everything was freed.  1 when given back.
 */
static int
cur_give_uncarved(shk_seg *seg, const struct layout *L, uint32_t c)
{
	/* acquire: as in held_release() */
	uint64_t cur = atomic_load_explicit(&hdr_of(seg)->cls[c].cur_run,
					    memory_order_acquire);
	uint64_t pg = (uint64_t)CUR_PAGE(cur) - 1;

	if (!CUR_PAGE(cur) || CUR_IDX(cur) || pg >= run_pages(L) ||
	    /* relaxed: the page map is ours (lock) */
	    atomic_load_explicit(pagemap(seg, L, pg), memory_order_relaxed) !=
		    (RUN_TAG | c) ||
	    run_valid(seg, L, pg) != (int)c)
		return 0;
	/* relaxed: new_run() stored 0 already; the release CAS below
	 * orders it for run_carved(), as in held_release() */
	atomic_store_explicit(&((struct heap_run *)(seg->base + L->heap_off +
						    (pg << L->run_shift)))
				       ->next_idx,
			      0, memory_order_relaxed);
	/* release: as in held_release(); relaxed on failure: somebody
	 * carved (or a new run came), the run stays */
	if (!atomic_compare_exchange_strong_explicit(
		    &hdr_of(seg)->cls[c].cur_run, &cur, 0, memory_order_release,
		    memory_order_relaxed))
		return 0;
	return run_give(seg, L, c, pg);
}

/* The classes in set that have a run whose carved blocks are all FREE
 * now (a read-only look before the take, which writes every listed
 * block), in one walk of the page map. */
static uint64_t
free_run_seen(shk_seg *seg, const struct layout *L, uint64_t set)
{
	uint64_t pg, ni, i, np = run_pages(L), seen = 0;

	for (pg = 0; pg < np && seen != set; pg++) {
		/* relaxed: the page map is written under the lock (ours) */
		uint32_t e = atomic_load_explicit(pagemap(seg, L, pg),
						  memory_order_relaxed);
		uint32_t c = e & ~RUN_TAG;

		if (!(e & RUN_TAG) || c >= L->nclass ||
		    !((set & ~seen) >> c & 1))
			continue;
		ni = run_carved(seg, L, c, pg);
		for (i = 0; i < ni; i++)
			/* relaxed: a hint; the take decides */
			if (SIDE_STATE(atomic_load_explicit(
				    w64(seg, side_off(L, pg, (uint32_t)i)),
				    memory_order_relaxed)) != ST_FREE)
				break;
		if (ni && i == ni)
			seen |= 1ull << c;
	}
	return seen;
}

/*
 * Gives back every run whose blocks are all free and listed, in every
 * class that has free blocks (lock taken here).  Returns how many runs.
 */
static int
runs_release(shk_seg *seg, struct heap_local *hl)
{
	const struct layout *L = &hl->L;
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t want = 0, seen, took = 0, gave = 0, quiet = 0;
	uint64_t head[NCLASS], left[NCLASS];
	uint32_t c;
	int n = 0;

	_Static_assert(NCLASS <= 64, "a class set is one word");
	if (shk__heap_lock(seg, hl))
		return 0;
	for (c = 0; c < L->nclass; c++) {
		struct heap_class *hc = &hh->cls[c];

		n += cur_give_uncarved(seg, L, c);

		/* relaxed: statistics, a filter only: the listed blocks are
		 * at most the carved ones less those off the lists (live);
		 * a run goes back only when all of its carved blocks are
		 * listed, so fewer than the smallest such count (a full
		 * run's, or the current run's) means nothing to give */
		uint64_t cur = atomic_load_explicit(&hc->cur_run,
						    memory_order_relaxed);
		uint64_t runs =
			atomic_load_explicit(&hc->nruns, memory_order_relaxed);
		uint64_t live =
			atomic_load_explicit(&hc->live, memory_order_relaxed);
		uint64_t carved = runs * L->cnblk[c], need = L->cnblk[c];

		if (CUR_PAGE(cur) && CUR_IDX(cur) < L->cnblk[c]) {
			carved -= L->cnblk[c] - CUR_IDX(cur);
			/* an uncarved current run is no candidate (given
			 * back above): it must not make need 0, which
			 * skipped the class and its full runs (until
			 * 2026-11-26) */
			if (CUR_IDX(cur) && CUR_IDX(cur) < need)
				need = CUR_IDX(cur);
		}
		/* acquire: as in pop(); an empty list gives nothing, and a
		 * list whose head is the one the last fruitless pass left
		 * has had no push since (idle_head: relaxed, written under
		 * the lock) */
		head[c] = atomic_load_explicit(&hc->head, memory_order_acquire);
		if (!need || carved < live + need || !(uint32_t)head[c] ||
		    head[c] == atomic_load_explicit(&hc->idle_head,
						    memory_order_relaxed))
			continue;
		want |= 1ull << c;
	}
	seen = want ? free_run_seen(seg, L, want) : 0;
	for (c = 0; c < L->nclass; c++) {
		if ((want & ~seen) >> c & 1)
			/* nothing to give: the head read before the look
			 * (a push since then moves it) */
			lk_set(&hh->cls[c].idle_head, head[c]);
		if (!(seen >> c & 1))
			continue;
		lk_set(&hh->cls[c].held, 1);
		if (held_take(seg, L, c, &left[c]))
			took |= 1ull << c;
	}
	if (took)
		n += held_release(seg, L, took, &gave);
	if (seen) {
		/* quiet: classes whose head nobody moved between our take
		 * and our last push-back */
		for (c = 0; c < L->nclass; c++)
			/* relaxed: compared, as a hint (lock held) */
			if ((seen >> c & 1) &&
			    atomic_load_explicit(&hh->cls[c].head,
						 memory_order_relaxed) ==
				    left[c])
				quiet |= 1ull << c;
		held_push_back(seg, L, seen, left, &quiet);
	}
	for (c = 0; c < L->nclass; c++) {
		if (!(seen >> c & 1))
			continue;
		lk_set(&hh->cls[c].held, 0);
		/* a class that gave nothing and whose list nobody else
		 * touched meanwhile is skipped until its next push (left:
		 * the head our last push-back installed) */
		lk_set(&hh->cls[c].idle_head,
		       (quiet & ~gave) >> c & 1 ? left[c] : 0);
	}
	shk__heap_unlock(seg, hl);
	return n;
}

/*
 * Returns every small block of our magazine to the class lists (the
 * calling thread owns it), MAG_MOVE per CAS, so that runs_release() can
 * give their runs back.  Returns how many.
 */
static int
mag_flush_own(shk_seg *seg, struct heap_local *hl)
{
	uint32_t c, n;
	int moved = 0;

	for (c = 0; c < hl->L.nclass; c++) {
		while ((n = hl->lcnt[c]) != 0) {
			mag_spill(seg, hl, c, n,
				  n > MAG_MOVE ? n - MAG_MOVE : 0);
			moved += (int)(n - hl->lcnt[c]);
		}
	}
	return moved;
}

static int
small_alloc(shk_seg *seg, struct heap_local *hl, uint32_t c, uint64_t *off)
{
	const struct layout *L = &hl->L;
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t cur, moff = mag_mine(seg, hl);
	int rc, reclaimed = 0;

	if (moff) {
		if (!mag_take(seg, hl, c, off))
			return 0;
		rc = mag_refill(seg, hl, c);
		if (rc < 0)
			return rc;
		if (rc > 0 && !mag_take(seg, hl, c, off))
			return 0;
		/* nothing listed, the run is used up: make a new run below */
	}
	for (;;) {
		rc = pop(seg, L, c, off);
		if (rc <= 0)
			break;
		rc = carve(seg, L, c, &cur, off);
		if (rc <= 0)
			break;
		rc = shk__heap_lock(seg, hl);
		if (rc)
			return rc;
		/* acquire: pairs with the release store in new_run(); and a
		 * list refilled meanwhile (a run release that held the lock
		 * pushes its blocks back) is used first (acquire: as pop) */
		if (atomic_load_explicit(&hh->cls[c].cur_run,
					 memory_order_acquire) == cur &&
		    !(uint32_t)atomic_load_explicit(&hh->cls[c].head,
						    memory_order_acquire))
			rc = new_run(seg, L, c);
		shk__heap_unlock(seg, hl);
		/* dead owners' magazines refill lists; other classes' empty
		 * runs go back to the chain */
		if (rc == SHK_ENOMEM && !reclaimed++ &&
		    mag_reclaim_all(seg, hl) + runs_release(seg, hl) > 0)
			continue;
		if (rc == SHK_ENOMEM)
			/* no room for a run: a large block still fits */
			return shk__heap_large_alloc(seg, hl, L->csize[c], 64,
						     off);
		if (rc)
			return rc;
	}
	if (rc)
		return rc;
	/* relaxed: a statistic */
	atomic_fetch_add_explicit(&hh->cls[c].live, 1, memory_order_relaxed);
	return 0;
}

/*
 * Frees the block (blk, side word at side) of class c into our magazine:
 * the entry is written first, then the side word goes ALLOC -> CACHED(me)
 * by a plain store after a state check (a sequential double free finds
 * CACHED or FREE: SHK_EINVAL), then the count grows.  A plain store, not
 * a CAS: only the block's one legitimate freer writes an ALLOC word, so
 * the only race it gives up on is a double free of one block by two
 * threads at the same instant, which may go undetected (docs/heap.md).
 * A late double free racing the give-back of the block's run (between
 * shk_free()'s page-map read and the side word here, or the CAS in
 * small_free()) may read and write what the memory became: documented
 * as the one exception to "a double free changes nothing" (docs/heap.md,
 * Guarantees); a legitimate freer's ALLOC block keeps its run.
 */
static inline int
mag_put(shk_seg *seg, struct heap_local *hl, uint32_t c, uint64_t blk,
	uint64_t side)
{
	_Atomic uint64_t *sw = w64(seg, side);
	uint32_t n = hl->lcnt[c];

	/* relaxed: the state check; the store below is the decision */
	if (SIDE_STATE(atomic_load_explicit(sw, memory_order_relaxed)) !=
	    ST_ALLOC)
		return SHK_EINVAL; /* double free or never handed out */
	if (n >= hl->L.mdepth[c]) {
		/* not reached: a put that fills the magazine spills (below) */
		n = hl->L.mdepth[c];
		mag_spill(seg, hl, c, n,
			  n / 2 > MAG_MOVE ? n - MAG_MOVE : n - n / 2);
		n = hl->lcnt[c];
	}
	mag_record(seg, hl, c, n, blk, side);
	/* release: the user's writes to the block, and the entry, happen
	 * before a drainer's acquire CAS in mag_drain() */
	atomic_store_explicit(sw, SIDE(ST_CACHED, hl->mag_stamp, 0),
			      memory_order_release);
	SHK_CRASHPOINT("heap.mag.cached");
	hl->lcnt[c] = ++n;
	/* relaxed: a statistic and a bound (mag_take) */
	atomic_store_explicit(mag_n(seg, hl->mag_off, c), n,
			      memory_order_relaxed);
	/* A full magazine spills after the block is CACHED, not before:
	 * the spill links up to MAG_MOVE blocks into the shared list, and a
	 * kill there used to find the block being freed still ALLOC, taken
	 * out of its caller's hands (a channel's held entry) and in nobody
	 * else's: leaked (docs/chan.md).  CACHED, a drainer finds it. */
	if (n >= hl->L.mdepth[c])
		mag_spill(seg, hl, c, n,
			  n / 2 > MAG_MOVE ? n - MAG_MOVE : n - n / 2);
	return 0;
}

/*
 * Large cache (docs/heap.md): a freed large block of at most lc_max bytes
 * goes, while the cache has room (LC_N blocks, lc_budget bytes), to the
 * freeing thread's magazine instead of back to the chain, flagged F_LC
 * (header word 0); an allocation of a size it fits with at most a quarter
 * wasted takes it back without the lock.  Word 0 changes by plain stores:
 * no lock holder writes word 0 of a used block.  Word 1 holds prev_size,
 * changed by lock holders when the block before merges or splits, and the
 * owner stamp, which a take writes when the block names another handle
 * (take_stamp(): a CAS keeping prev_size, as set_prev() keeps the stamp),
 * so that the scan's dead_owner judges the block's real owner.  The
 * shared entry names the block for
 * drainers (mag_drain() CASes F_LC away, then frees it the usual way).
 * An entry is written before its block's F_LC and cleared before it
 * (lc_put(), lc_remove()), so an entry naming an F_LC block always names
 * a block of this cache.  A kill between the entry and the header leaves
 * the block F_USED, or F_LC on no entry: leaked, as a live block of a dead
 * owner.  A kill inside a fill or an eviction (under the lock) leaks the
 * blocks it moves: at most LC_FILL with the caller's, or LC_EVICT and the
 * block being freed.  A double free finds F_LC: SHK_EINVAL.
 *
 * Cost (measured with callgrind on a run of equal allocations): the fill
 * splits one carve into up to LC_FILL blocks, and the eviction sorts the
 * evicted blocks and returns neighbours as one span, so a lock hold, a
 * carve and a merge are paid once per up to 16 blocks.  F_LC is outside
 * the header check, so caching and uncaching flip one bit and the mirror
 * keeps the exact header word to compare with.
 */
static _Atomic uint64_t *
lc_entry(shk_seg *seg, struct heap_local *hl, uint32_t i)
{
	return w64(seg, hl->mag_off + hl->L.mlc_off + 8 * (uint64_t)i);
}

/* Caches block h (header word 0 w validated, F_USED): 0, or 1 when it
 * does not fit the cache. */
static int
lc_put(shk_seg *seg, struct heap_local *hl, uint64_t h, uint64_t w)
{
	uint64_t sz = w & SIZE_MASK;
	uint32_t n = hl->lcn;

	if (sz > hl->L.lc_max || n >= LC_N ||
	    hl->lc_bytes + sz > hl->L.lc_budget)
		return 1;
	/* relaxed: a hint for drainers, ordered by the release below */
	atomic_store_explicit(lc_entry(seg, hl, n), h, memory_order_relaxed);
	/* release: the user's writes to the block and the entry happen
	 * before a drainer's acquire CAS in mag_drain() */
	atomic_store_explicit(w64(seg, h), w | F_LC, memory_order_release);
	SHK_CRASHPOINT("heap.lc.put");
	hl->lc[n].blk = h;
	hl->lc[n].sz = sz;
	hl->lc[n].w = w;
	hl->lc_bytes += sz;
	hl->lcn = n + 1;
	return 0;
}

/* Drops cache entry i (the last one moves into its place). */
static void
lc_drop(shk_seg *seg, struct heap_local *hl, uint32_t i)
{
	uint32_t last = --hl->lcn;

	hl->lc_bytes -= hl->lc[i].sz;
	hl->lc[i] = hl->lc[last];
	/* relaxed: hints for drainers (see lc_put()) */
	atomic_store_explicit(lc_entry(seg, hl, i), hl->lc[i].blk,
			      memory_order_relaxed);
	atomic_store_explicit(lc_entry(seg, hl, last), 0, memory_order_relaxed);
}

/*
 * Takes entry i out of the cache (the last one moves into its place):
 * 1 when its block was still ours, now plain F_USED; 0 when the header
 * was damaged (the block is forgotten).  The entry goes first: a kill in
 * between leaves the block F_LC on no entry (leaked, and refused as a
 * double free), never an entry naming a block that left the cache, which
 * a drainer could take from its next owner.
 */
static int
lc_remove(shk_seg *seg, struct heap_local *hl, uint32_t i)
{
	uint64_t h = hl->lc[i].blk, w = hl->lc[i].w;
	int ours;

	lc_drop(seg, hl, i);
	/* relaxed: our own cached block (see above) */
	ours = atomic_load_explicit(w64(seg, h), memory_order_relaxed) ==
	       (w | F_LC);
	if (ours)
		/* release: orders the entry stores before it, for a drainer
		 * that finds us dead */
		atomic_store_explicit(w64(seg, h), w, memory_order_release);
	return ours;
}

/* Takes a cached block for len bytes at align: 0 and *off, or 1. */
static int
lc_take(shk_seg *seg, struct heap_local *hl, uint64_t len, uint64_t align,
	uint64_t *off)
{
	uint64_t need = align_up(len + BLK_HDR, 64);
	uint32_t i;

	for (i = 0; i < hl->lcn; i++) {
		uint64_t h = hl->lc[i].blk, sz = hl->lc[i].sz;

		if (sz < need || sz - need > need / 4 || (h + BLK_HDR) % align)
			continue;
		if (!lc_remove(seg, hl, i)) {
			i--; /* damaged: entry i now holds the last one */
			continue;
		}
		/* ours now: the block may have been allocated by another
		 * handle (we cached it when we freed it), and the scan
		 * judges a live block's owner by this stamp */
		take_stamp(seg, h, shk__seg_stamp(seg));
		*off = h + BLK_HDR;
		return 0;
	}
	return 1;
}

/*
 * Returns up to k blocks of our large cache to the chain under one lock
 * hold (a full cache, or out of memory), newest first.  Blocks that lie
 * side by side (a run of equal allocations freed together) go back as one
 * span: one merge instead of one per block.  They go in chunks of at most
 * LC_EVICT, each taken out of the cache just before it is freed, so that a
 * kill loses at most LC_EVICT blocks plus the block being freed (16, like
 * a fill).  Returns how many.
 */
static int
lc_evict(shk_seg *seg, struct heap_local *hl, uint32_t k)
{
	struct mag_ent e[LC_EVICT], t;
	uint32_t m, i, j, c;
	int n = 0;

	if (shk__heap_lock(seg, hl))
		return 0;
	if (k > hl->lcn)
		k = hl->lcn;
	for (; k; k -= c) {
		c = k < LC_EVICT ? k : LC_EVICT;
		/* the newest c, put in e oldest first: a run freed in
		 * address order comes out sorted, and the sort moves
		 * nothing */
		for (i = 0; i < c; i++) {
			j = c - 1 - i;
			e[j].blk = hl->lc[hl->lcn - 1].blk;
			e[j].side = hl->lc[hl->lcn - 1].sz;
			if (!lc_remove(seg, hl, hl->lcn - 1))
				e[j].blk = 0; /* damaged: forgotten */
		}
		for (i = m = 0; i < c; i++)
			if (e[i].blk)
				e[m++] = e[i];
		for (i = 1; i < m; i++) { /* insertion sort by offset */
			t = e[i];
			for (j = i; j > 0 && e[j - 1].blk > t.blk; j--)
				e[j] = e[j - 1];
			e[j] = t;
		}
		for (i = 0; i < m; i = j) {
			for (j = i + 1;
			     j < m && e[j - 1].blk + e[j - 1].side == e[j].blk;
			     j++)
				;
			if (!shk__heap_free_span(seg, &hl->L, e + i, j - i))
				n += (int)(j - i);
		}
	}
	shk__heap_unlock(seg, hl);
	return n;
}

/*
 * Splits the used block f (size S, just carved, the lock held) into k
 * blocks: k - 1 of need bytes, the last one the rest.  Written from the
 * end, like a split: each prefix of the chain stays walkable, and f
 * shrinks last.
 */
static void
split_used(shk_seg *seg, uint64_t f, uint64_t S, uint64_t need, uint32_t k)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t stamp = (uint64_t)shk__seg_stamp(seg) << 34;
	uint64_t b = f + need * (k - 1), sz = S - need * (k - 1);

	set_prev(seg, f + S, sz);
	for (; b > f; b -= need, sz = need) {
		st(seg, b + 8, stamp | (need >> 6));
		st(seg, b, mkhdr(b, sz, F_USED));
	}
	st(seg, f, mkhdr(f, need, F_USED));
	/* relaxed: a statistic under the lock */
	lk_add(&hh->large_live, k - 1);
}

/*
 * A large-cache miss: carves the caller's block and, when the previous
 * miss was for the same block size (a run of equal allocations), up to
 * LC_FILL - 1 more into the cache, all under one lock hold and, where a
 * free block holds them all, by one carve split in place.  A kill between
 * the carve and the last lc_put() leaves the blocks not yet cached live
 * under a dead owner (at most LC_FILL).
 */
static int
lc_fill(shk_seg *seg, struct heap_local *hl, uint64_t len, uint64_t align,
	uint64_t *off)
{
	uint64_t need = align_up(len + BLK_HDR, 64), h, S, room;
	uint32_t i, k = 1;
	int rc;

	/* k: the caller's block and what the cache has room for, in
	 * entries and in bytes (the split keeps payloads 64-aligned) */
	if (need == hl->lc_last && align <= 64 && need <= hl->L.lc_max &&
	    hl->lc_bytes <= hl->L.lc_budget) {
		room = hl->L.lc_budget - hl->lc_bytes;
		k = LC_FILL < LC_N - hl->lcn + 1 ? LC_FILL : LC_N - hl->lcn + 1;
		if ((uint64_t)(k - 1) * need > room)
			k = (uint32_t)(room / need) + 1;
	}
	hl->lc_last = need;
	rc = shk__heap_lock(seg, hl);
	if (rc)
		return rc;
	h = k > 1 ? shk__heap_carve_live(seg, &hl->L, need * k - BLK_HDR, 64,
					 &rc)
		  : 0;
	if (h) {
		S = ld(seg, h) & SIZE_MASK;
		split_used(seg, h, S, need, k);
	} else if (!rc) {
		k = 1;
		h = shk__heap_carve_live(seg, &hl->L, len, align, &rc);
	}
	if (!h) {
		shk__heap_unlock(seg, hl);
		return rc ? rc : SHK_ENOMEM;
	}
	SHK_CRASHPOINT("heap.lc.fill");
	for (i = k - 1; i > 0; i--) {
		uint64_t b = h + need * i;

		if (lc_put(seg, hl, b, ld(seg, b)))
			(void)shk__heap_free_locked(seg, &hl->L, b);
	}
	shk__heap_unlock(seg, hl);
	*off = h + BLK_HDR;
	return 0;
}

/*
 * Frees the large block at off into our large cache: 0, or 1 when it is
 * not a live large block that fits (shk__heap_large_free() decides then).
 * A full cache first returns its LC_EVICT newest blocks under one lock
 * hold.
 */
static int
lc_free(shk_seg *seg, struct heap_local *hl, uint64_t off)
{
	const struct layout *L = &hl->L;
	uint64_t h = off - BLK_HDR, w, sz;

	if (off < L->chain_off + BLK_HDR || !blk_in(L, h))
		return 1;
	w = ld(seg, h);
	sz = w & SIZE_MASK;
	if (!hdr_ok(h, w) || (w & F_ALL) != F_USED || sz < BLK_MIN ||
	    sz > L->chain_end - h || sz > L->lc_max)
		return 1;
	if (!lc_put(seg, hl, h, w))
		return 0;
	if (lc_evict(seg, hl, LC_EVICT) && !lc_put(seg, hl, h, w))
		return 0;
	return 1;
}

static int
small_free(shk_seg *seg, struct heap_local *hl, uint64_t off, uint64_t pg,
	   uint32_t c)
{
	const struct layout *L = &hl->L;
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t in = off - L->heap_off - (pg << L->run_shift), idx, w;
	_Atomic uint64_t *sw;

	if (c >= L->nclass)
		return SHK_ECORRUPT;
	if (in < L->cboff[c])
		return SHK_EINVAL;
	in -= L->cboff[c];
	idx = (in * L->crecip[c]) >> 32;
	if (idx * L->csize[c] != in)
		return SHK_EINVAL; /* not a block boundary */
	/* a block never carved has side word 0 (runs are formatted
	 * zeroed), so the state check below refuses it */
	if (idx >= L->cnblk[c])
		return SHK_EINVAL;
	sw = w64(seg, side_off(L, pg, (uint32_t)idx));
	if (mag_mine(seg, hl))
		return mag_put(seg, hl, c, off, side_off(L, pg, (uint32_t)idx));
	/* relaxed: we only need the state; the CAS decides */
	w = atomic_load_explicit(sw, memory_order_relaxed);
	do {
		if (SIDE_STATE(w) != ST_ALLOC)
			return SHK_EINVAL; /* double free or never handed out */
		/* relaxed: the push's release CAS publishes the block */
	} while (!atomic_compare_exchange_weak_explicit(
		sw, &w, SIDE(ST_FREE, 0, 0), memory_order_relaxed,
		memory_order_relaxed));
	SHK_CRASHPOINT("heap.free.marked");
	push(seg, L, c, pg, (uint32_t)idx, off);
	/* relaxed: a statistic */
	atomic_fetch_sub_explicit(&hh->cls[c].live, 1, memory_order_relaxed);
	return 0;
}

/* ------------------------------------------------------------------ */
/* entry points                                                        */
/* ------------------------------------------------------------------ */

int
shk__heap_init(uint8_t *base, uint64_t heap_off, uint64_t heap_len)
{
	struct heap_hdr *hh = (void *)(base + heap_off);
	struct layout L;
	uint64_t S;

	if (heap_len < SHK__HEAP_MIN_LEN || heap_off % 4096 || heap_len % 4096)
		return SHK_EINVAL;
	layout(heap_off, heap_len, &L);
	if (L.chain_off >= L.chain_end || L.chain_end - L.chain_off < BLK_MIN)
		return SHK_EINVAL;
	hh->magic = HEAP_MAGIC;
	hh->version = HEAP_VERSION;
	hh->run_shift = L.run_shift;
	hh->heap_off = heap_off;
	hh->heap_len = heap_len;
	hh->pagemap_off = L.pagemap_off;
	hh->npages = L.npages;
	hh->chain_off = L.chain_off;
	hh->chain_end = L.chain_end;
	S = L.chain_end - L.chain_off;
	/* relaxed: nobody maps the segment before it is published READY */
	atomic_store_explicit((_Atomic uint64_t *)(base + L.chain_off),
			      mkhdr(L.chain_off, S, 0), memory_order_relaxed);
	atomic_store_explicit((_Atomic uint64_t *)(base + L.chain_end),
			      mkhdr(L.chain_end, 0, F_USED),
			      memory_order_relaxed);
	atomic_store_explicit((_Atomic uint64_t *)(base + L.chain_end + 8),
			      S >> 6, memory_order_relaxed);
	atomic_store_explicit(&hh->bins[bin_of(S)], L.chain_off,
			      memory_order_relaxed);
	atomic_store_explicit(&hh->bin_map, 1ull << bin_of(S),
			      memory_order_relaxed);
	atomic_store_explicit(&hh->large_free, S, memory_order_relaxed);
	return 0;
}

int
shk__heap_attach(shk_seg *seg)
{
	const struct heap_hdr *hh;
	struct heap_local *hl;

	if (!seg || seg->heap_len < SHK__HEAP_MIN_LEN || seg->heap_len % 4096 ||
	    seg->heap_off % 4096 ||
	    !shk__in_seg(seg, seg->heap_off, seg->heap_len))
		return SHK_ECORRUPT;
	hl = calloc(1, sizeof(*hl));
	if (!hl)
		return SHK_ENOMEM;
	layout(seg->heap_off, seg->heap_len, &hl->L);
	hh = hdr_of(seg);
	/* A heap of another format version (one made by an older library,
	 * before 2026-11-25 version 4) is no damage: SHK_EVERSION, as for
	 * the segment header's own version (until 2026-11-25
	 * SHK_ECORRUPT, which told users of an old segment it was broken) */
	if (hh->magic == HEAP_MAGIC && hh->version != HEAP_VERSION) {
		free(hl);
		return SHK_EVERSION;
	}
	if (hh->magic != HEAP_MAGIC || hh->run_shift != hl->L.run_shift ||
	    hh->heap_off != seg->heap_off || hh->heap_len != seg->heap_len ||
	    hh->pagemap_off != hl->L.pagemap_off ||
	    hh->npages != hl->L.npages || hh->chain_off != hl->L.chain_off ||
	    hh->chain_end != hl->L.chain_end) {
		free(hl);
		return SHK_ECORRUPT;
	}
	pthread_mutex_init(&hl->mu, NULL);
	seg->heap_local = hl;
	return 0;
}

void
shk__heap_detach(shk_seg *seg)
{
	struct heap_local *hl;

	if (!seg || !seg->heap_local)
		return;
	hl = seg->heap_local;
	/* no thread's exit drains it from here on (tx_exit()) */
	tx_leave(seg, hl);
	/* Flush our magazine.  The attach record may already be FREE (so
	 * a survivor may drain it beside us: per-block CASes make that
	 * safe); a forked child closing its parent's handle must not.
	 * mag_key says this process set a magazine up for the handle: it
	 * stays when the owning thread's exit drained the magazine and
	 * cleared mag_off (tx_flush()). */
	if (hl->mag_key == shk__self_key()) {
		uint64_t moff;

		if (hl->mag_off)
			mag_drain_own(seg, &hl->L, hl->mag_off, hl->mag_stamp);
		/* and give the slot's block back, ours just drained or one
		 * an exited owner thread drained (NONE either way; until
		 * 2026-11-25 evening the latter stayed until a reclaim:
		 * test mag_close_after_exit): the slot's next owner carves
		 * a new one (kept, 257 of them once cut a long-lived heap
		 * into pieces: test mag_frag) */
		if (seg->slot < SHK__ATTACH_CAP && !shk__heap_lock(seg, hl)) {
			/* relaxed: the slot is written under the lock */
			moff = atomic_load_explicit(
				&hdr_of(seg)->mag[seg->slot],
				memory_order_relaxed);
			if (moff)
				(void)mag_retire(seg, &hl->L, seg->slot, moff);
			shk__heap_unlock(seg, hl);
		}
	}
	pthread_mutex_destroy(&hl->mu);
	free(hl);
	seg->heap_local = NULL;
}

uint64_t
shk__heap_max_alloc(shk_seg *seg)
{
	struct heap_local *hl = local_of(seg);

	/* from the process-local layout, computed from the two validated
	 * numbers of the segment header: nothing shared is read */
	if (!hl || hl->L.chain_end - hl->L.chain_off < BLK_HDR)
		return 0;
	return hl->L.chain_end - hl->L.chain_off - BLK_HDR;
}

int
shk__heap_alloc_aligned(shk_seg *seg, uint64_t len, uint64_t align,
			uint64_t *off)
{
	struct heap_local *hl = local_of(seg);
	uint32_t c;
	int rc, mine;

	if (off)
		*off = 0;
	if (!hl || !off || !len || !align || (align & (align - 1)) ||
	    align > 4096)
		return SHK_EINVAL;
	if (seg->slot == UINT32_MAX)
		return SHK_EPERM;
	if (len > hl->L.heap_len)
		return SHK_ENOMEM;
	if (align <= 64 && hl->L.nclass &&
	    len <= hl->L.csize[hl->L.nclass - 1]) {
		for (c = class_of(len); c < hl->L.nclass; c++) {
			if (hl->L.csize[c] % align == 0 || align <= 16)
				return small_alloc(seg, hl, c, off);
		}
	}
	if (align < 64)
		align = 64;
	mine = mag_mine(seg, hl) != 0;
	if (mine && len + BLK_HDR <= hl->L.lc_max) {
		if (hl->lcn && !lc_take(seg, hl, len, align, off))
			return 0;
		rc = lc_fill(seg, hl, len, align, off);
	} else {
		rc = shk__heap_large_alloc(seg, hl, len, align, off);
	}
	/* Short of memory: give back our large cache and retry.  Only the
	 * thread that owns the magazine may touch the cache (its take and
	 * put run without the lock); another thread of this handle that
	 * evicted it could hand out a block the owner was taking. */
	if (rc == SHK_ENOMEM && mine && hl->lcn && lc_evict(seg, hl, LC_N))
		rc = shk__heap_large_alloc(seg, hl, len, align, off);
	/* Still short: dead or closed handles' magazines and large caches
	 * go back to the chain (before 2026-11-25 only a small request
	 * did this: 16 dead workers' caches kept an 8 MiB request from a
	 * 16 MiB heap with nothing in use, test mag_dead_large) */
	if (rc == SHK_ENOMEM) {
		int more = mag_reclaim_all(seg, hl);

		/* and runs whose blocks are all free go back too (before
		 * 2026-11-25 a run stayed with its class for good: a heap
		 * whose sizes drifted served no large block any more, test
		 * run_giveback); our own cached small blocks first, so that
		 * they do not keep their runs */
		if (mine)
			more += mag_flush_own(seg, hl);
		more += runs_release(seg, hl);
		if (more > 0)
			rc = shk__heap_large_alloc(seg, hl, len, align, off);
	}
	return rc;
}

int
shk_alloc(shk_seg *seg, size_t len, uint64_t *off)
{
	struct heap_local *hl = local_of(seg);

	/* Fast path: the calling thread owns the handle's magazine (so the
	 * handle is writable) and the class has a cached block. */
	if (hl && off && len && hl->L.nclass &&
	    len <= hl->L.csize[hl->L.nclass - 1] &&
	    /* relaxed: a process-local claim (mag_mine()) */
	    atomic_load_explicit(&hl->mag_thread, memory_order_relaxed) ==
		    (uintptr_t)&tls_me &&
	    hl->mag_off && !mag_take(seg, hl, class_of(len), off))
		return 0;
	return shk__heap_alloc_aligned(seg, len, 16, off);
}

int
shk_free(shk_seg *seg, uint64_t off)
{
	struct heap_local *hl = local_of(seg);
	const struct layout *L;
	uint64_t pg;
	uint32_t e;

	if (!hl)
		return SHK_EINVAL;
	L = &hl->L;
	if (off < L->chain_off || off >= L->chain_end || off % 16)
		return SHK_EINVAL;
	if (seg->slot == UINT32_MAX)
		return SHK_EPERM;
	pg = (off - L->heap_off) >> L->run_shift;
	/* A block past the last whole run (the heap's tail, when heap_len is
	 * not a multiple of the run length) has no page map entry: page
	 * npages would be the padding word after the map, which the check
	 * does not judge.  No run lies there, so the block is large. */
	if (pg < L->npages) {
		/* acquire: pairs with the release store of cur_run in
		 * new_run(), which is ordered after this entry (any block we
		 * were handed was carved after the run was published) */
		e = atomic_load_explicit(pagemap(seg, L, pg),
					 memory_order_acquire);
		if (e & RUN_TAG)
			return small_free(seg, hl, off, pg, e & ~RUN_TAG);
		if (e)
			return SHK_ECORRUPT;
	}
	if (mag_mine(seg, hl) && !lc_free(seg, hl, off))
		return 0;
	return shk__heap_large_free(seg, hl, off);
}

int
shk__heap_warm(shk_seg *seg)
{
	struct heap_local *hl = local_of(seg);

	if (!hl)
		return SHK_EINVAL;
	if (seg->slot == UINT32_MAX)
		return SHK_EPERM;
	/* claims the magazine for this thread, setting it up (the heap
	 * lock, a carve, thread-exit registration: system calls) now rather
	 * than in the first free */
	return mag_mine(seg, hl) ? 0 : SHK_EAGAIN;
}

int
shk__heap_reclaim(shk_seg *seg)
{
	struct heap_local *hl = local_of(seg);

	if (!hl)
		return SHK_EINVAL;
	if (seg->slot == UINT32_MAX)
		return SHK_EPERM;
	return mag_reclaim_all(seg, hl);
}
