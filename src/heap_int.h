/*
 * heap_int.h - the heap's layout and the small helpers shared by heap.c
 * (the allocator), heap_large.c (large blocks and the heap lock) and
 * heap_check.c (statistics and the read-only check).  The design, the
 * writers of each shared word and their memory orders are described at
 * the top of heap.c.  Private to those three files.
 */
#ifndef SHK_HEAP_INT_H
#define SHK_HEAP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "heap.h"
#include "lock.h"

#define HEAP_MAGIC 0x31504145484b4853ull /* "SHKHEAP1" */
#define HEAP_VERSION 5u
#define RUN_MAGIC 0x4e555248u /* "HRUN" */
#define NBINS 48
#define BLK_HDR 16u
#define BLK_MIN 64u
#define F_USED 1u
#define F_RUN 2u
#define F_MAG                                                                  \
	4u      /* a magazine (with F_USED): not counted; freed only by
		  * mag_retire() or repair(), under the lock */
#define F_LC 8u /* with F_USED: in its owner's large cache (magazine) */
#define F_ALL (F_USED | F_RUN | F_MAG | F_LC)
#define LC_N 32u     /* large cache entries per magazine */
#define LC_FILL 16u  /* blocks carved per lock hold on a repeated miss */
#define LC_EVICT 15u /* blocks an eviction takes out of the cache at once */
#define LC_MAX_BLOCK ((uint64_t)16 << 20) /* largest cacheable block */
#define SIZE_MASK 0x0000ffffffffffc0ull   /* bits 6..47 */
#define LOW_MASK 0x0000ffffffffffffull
#define CHECK_MASK 0xffff000000000000ull
#define RUN_TAG 0x80000000u
#define SMALL_LIMIT ((uint64_t)1 << 36) /* refs are 32 bits of 16 B */
#define ST_FREE 1u
#define ST_ALLOC 2u
#define ST_CACHED 3u /* in its owner's magazine (stamp = the owner) */
#define LOCK_TIMEOUT_NS 10000000000LL
/* the least wait a caller's deadline leaves shk__heap_lock: a holder's
 * ordinary critical section is shorter, so a call whose deadline has
 * (nearly) passed does not fail on mere contention */
#define LOCK_FLOOR_NS 2000000LL
/* Magazines: at most MAG_DEPTH blocks and about half a run per class
 * (at least 8 blocks).  Layout: owner word, pad, counts n[NCLASS] at
 * MAG_COUNTS, 32-bit refs from MAG_REFS. */
#define MAG_DEPTH 128u
#define MAG_MOVE                                                               \
	16u /* most blocks a refill or spill moves (bounds a kill's
		     * loss) */
#define MAG_COUNTS 64u
#define MAG_REFS 256u
#define MO_NONE 0u
#define MO_OWNED 1u
#define MO_DRAINING 2u
/* owner word = state:2 | owner stamp:30 (bits 32-61) | drainer stamp:30 */
#define MO_STATE(w) ((uint32_t)((w) >> 62))
#define MO_OWNER(w) ((uint32_t)((w) >> 32) & SHK__STAMP_MASK)
#define MO_DRAINER(w) ((uint32_t)(w)&SHK__STAMP_MASK)
#define MO_WORD(st, own, dr)                                                   \
	(((uint64_t)(st) << 62) | ((uint64_t)((own)&SHK__STAMP_MASK) << 32) |  \
	 (uint64_t)((dr)&SHK__STAMP_MASK))

/* Size classes: 16..64 by 16, then four per power of two up to 16 KiB. */
#define NCLASS 36
_Static_assert(NCLASS <= SHK_HEAP_NCLASSES, "stats hold every class");
_Static_assert(MAG_COUNTS + 4 * NCLASS <= MAG_REFS, "magazine counts");

struct heap_class {
	_Atomic uint64_t head; /* {ref:32 | tag:32} */
	/* {page index + 1:32 | blocks carved:32} of the run being carved;
	 * 0 none.  Carvers CAS the count here, in the class line, not in
	 * the run: a run may be given back, and a carver that read its
	 * page before must not write into what the memory became. */
	_Atomic uint64_t cur_run;
	_Atomic uint64_t live;  /* blocks handed out */
	_Atomic uint64_t nruns; /* runs of this class (under the lock) */
	/* nonzero while a lock holder holds blocks of this class off the
	 * list, marked SIDE_HELD (runs_release()); repair() pushes them */
	_Atomic uint64_t held;
	/* the head a run release left this list with after it found no
	 * run to give (under the lock); until the head moves, passes
	 * skip the class (runs_release()).  A hint: a scribbled value
	 * costs a pass or skips one until the next push.  0 none */
	_Atomic uint64_t idle_head;
	uint64_t reserved[2];
};
#define CUR_PAGE(w) ((uint32_t)(w))        /* page index + 1; 0 none */
#define CUR_IDX(w) ((uint32_t)((w) >> 32)) /* blocks carved from it */
#define CUR_WORD(pg1, idx) ((uint64_t)(uint32_t)(pg1) | (uint64_t)(idx) << 32)
_Static_assert(sizeof(struct heap_class) == 64, "one line per class");

struct heap_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t run_shift;
	uint64_t heap_off;
	uint64_t heap_len;
	uint64_t pagemap_off;
	uint64_t npages;
	uint64_t chain_off;
	uint64_t chain_end;
	/* line 1: the robust lock (lock.h) and a sequence count, odd while
	 * a holder changes the chain or bins (seqlock for lock-free checks) */
	_Atomic uint32_t lock;
	uint32_t pad0;
	_Atomic uint64_t seq;
	uint64_t pad0b[6];
	/* line 2: statistics */
	_Atomic uint64_t large_used; /* bytes in live large blocks (lock) */
	_Atomic uint64_t high_water; /* peak of chain bytes taken (lock) */
	_Atomic uint64_t large_live; /* live large blocks (lock) */
	_Atomic uint64_t large_free; /* bytes in free large blocks (lock) */
	uint64_t pad1[4];
	/* lines 3-10: bins of free large blocks (lock) */
	_Atomic uint64_t bin_map;
	_Atomic uint64_t bins[NBINS];
	uint64_t pad2[15];
	struct heap_class cls[NCLASS];
	/* magazine payload offset per attach slot, 0 none (set and cleared
	 * under the lock: mag_setup(), mag_retire()) */
	_Atomic uint64_t mag[SHK__ATTACH_CAP];
};
_Static_assert(offsetof(struct heap_hdr, lock) == 64, "lock line");
_Static_assert(offsetof(struct heap_hdr, large_used) == 128, "stats line");
_Static_assert(offsetof(struct heap_hdr, cls) == 704, "class lines");
_Static_assert(sizeof(struct heap_hdr) % 64 == 0, "header lines");

/* Run header; atomics so that lock-free checkers may read it. */
struct heap_run {
	_Atomic uint64_t id;   /* RUN_MAGIC | class << 32 */
	_Atomic uint64_t geom; /* nblocks | blocks_off (from run start) << 32 */
	/* blocks carved, once the run is no longer its class's current
	 * one (written under the lock; the current run's count is in
	 * cur_run) */
	_Atomic uint64_t next_idx;
	uint64_t reserved[5];
};
_Static_assert(sizeof(struct heap_run) == 64, "run header");

struct layout {
	uint64_t heap_off, heap_len;
	uint64_t pagemap_off, npages;
	uint64_t chain_off, chain_end;
	uint32_t run_shift;
	uint32_t nclass; /* classes in use: size <= run_len / 4 */
	uint32_t csize[NCLASS];
	uint32_t cnblk[NCLASS];
	uint32_t cboff[NCLASS];
	uint64_t crecip[NCLASS];   /* 2^32 / size + 1: exact division of
				  * in-run offsets (< 2^16) by the size */
	uint32_t mdepth[NCLASS];   /* magazine entries per class */
	uint32_t mref_off[NCLASS]; /* their offset in the magazine */
	uint64_t mlc_off;          /* large cache entries in the magazine */
	uint64_t lc_max;           /* largest block the large cache takes */
	uint64_t lc_budget;        /* bytes one large cache may hold */
	uint64_t mag_len;          /* magazine bytes */
};

/* A magazine entry in the process-local mirror (struct heap_local). */
struct mag_ent {
	uint64_t blk, side;
};

struct heap_local {
	pthread_mutex_t mu; /* threads sharing a handle share its stamp */
	/* The one thread that uses this handle's magazine (the address of
	 * its tls_me), claimed by the first allocating or freeing thread. */
	_Atomic uintptr_t mag_thread;
	uint64_t mag_off;   /* our magazine's payload offset; 0 none */
	uint32_t mag_stamp; /* the stamp it is owned under */
	uint64_t mag_key;   /* shk__self_key() of its process (fork guard) */
	/* The claiming thread's list of the handles whose magazine it owns
	 * (heap.c, thread exit), under heap.c's tx_mu: the links, the
	 * segment handle, and tx_busy while its exit drains this one. */
	struct heap_local *tx_next, **tx_pprev;
	shk_seg *tx_seg;
	int tx_busy;
	struct layout L; /* before the big arrays: the hot fields share
			     * lines with it */
	/* Trusted mirror of our magazine, so the fast paths validate
	 * nothing read back from shared memory: per class the count and,
	 * per entry, the block's offset and its side word's offset.  The
	 * shared entries (same indexes) are what drainers use. */
	uint32_t lcnt[NCLASS];
	uint32_t lcn;      /* large cache: entries, the blocks */
	uint64_t lc_bytes; /* large cache: the sum of the entries' sizes,
			    * kept by lc_put()/lc_drop() (summing LC_N
			    * entries on every free measured ~100
			    * instructions) */
	uint64_t lc_last;  /* block size of the last large cache miss */
	struct lc_ent {
		uint64_t blk, sz, w; /* header offset, size, F_USED word 0 */
	} lc[LC_N];
	struct mag_ent lent[NCLASS][MAG_DEPTH];
};

static inline uint64_t
hcheck(uint64_t at, uint64_t low)
{
	/* one multiply: the top 16 bits of the product depend on every bit
	 * of (at, low); enough to refuse a stray, shifted or copied header,
	 * and short enough for the paths that check several per call */
	return ((at ^ (low << 17) ^ (low >> 6)) * 0x9e3779b97f4a7c15ull) &
	       CHECK_MASK;
}

/* Smallest class holding len (1 <= len <= 16 KiB). */
static inline uint32_t
class_of(uint64_t len)
{
	uint32_t b;

	if (len <= 64)
		return (uint32_t)((len + 15) / 16) - 1;
	b = 63 - (uint32_t)__builtin_clzll(len - 1); /* 2^b < len <= 2^b+1 */
	/* steps of 2^b / 4: a shift, not a division (this is on every
	 * allocation's fast path) */
	return 4 * (b - 5) + (uint32_t)((len - (1ull << b) - 1) >> (b - 2));
}

static inline uint32_t
bin_of(uint64_t size)
{
	uint32_t b = 63 - (uint32_t)__builtin_clzll(size >> 6);

	return b < NBINS ? b : NBINS - 1;
}

static inline uint64_t
mkhdr(uint64_t at, uint64_t size, uint32_t flags)
{
	uint64_t low = size | flags;

	return low | hcheck(at, low & ~(uint64_t)F_LC);
}

static inline int
hdr_ok(uint64_t at, uint64_t w)
{
	return w != 0 &&
	       (w & CHECK_MASK) == hcheck(at, w & LOW_MASK & ~(uint64_t)F_LC) &&
	       (w & LOW_MASK & ~SIZE_MASK & ~(uint64_t)F_ALL) == 0 &&
	       (!(w & F_MAG) || (w & F_ALL) == (F_USED | F_MAG)) &&
	       (!(w & F_LC) || (w & F_ALL) == (F_USED | F_LC));
}

static inline struct heap_hdr *
hdr_of(shk_seg *seg)
{
	return (struct heap_hdr *)(seg->base + seg->heap_off);
}

static inline _Atomic uint64_t *
w64(shk_seg *seg, uint64_t off)
{
	return (_Atomic uint64_t *)(seg->base + off);
}

static inline _Atomic uint32_t *
pagemap(shk_seg *seg, const struct layout *L, uint64_t page)
{
	return (_Atomic uint32_t *)(seg->base + L->pagemap_off) + page;
}

/* relaxed accessors for lock-protected words (the lock orders them) */
static inline uint64_t
ld(shk_seg *seg, uint64_t off)
{
	return atomic_load_explicit(w64(seg, off), memory_order_relaxed);
}

static inline void
st(shk_seg *seg, uint64_t off, uint64_t v)
{
	atomic_store_explicit(w64(seg, off), v, memory_order_relaxed);
}

static inline uint64_t
prev_of(uint64_t w1)
{
	return (w1 & 0x3ffffffffull) << 6;
}

static inline uint64_t
side_off(const struct layout *L, uint64_t page, uint32_t idx)
{
	return L->heap_off + (page << L->run_shift) + 64 + 8 * (uint64_t)idx;
}

#define SIDE_STATE(w) ((uint32_t)((w) >> 62))
#define SIDE(st, stamp, next)                                                  \
	(((uint64_t)(st) << 62) |                                              \
	 ((uint64_t)((stamp)&SHK__STAMP_MASK) << 32) | (uint64_t)(next))
/* A FREE block that a run release (lock held) took off its list: FREE
 * with a stamp, which no listed FREE block has (pushes store stamp 0). */
#define SIDE_HELD SIDE(ST_FREE, 1u, 0)

/* Pages that may hold a run: new_run() carves runs that end within
 * SMALL_LIMIT of heap_off (refs are 32 bits), so walks of the page map
 * for runs stop there (a 1 TiB heap's map has 16M entries, the part
 * that may hold runs 1M). */
static inline uint64_t
run_pages(const struct layout *L)
{
	uint64_t m = SMALL_LIMIT >> L->run_shift;

	return L->npages < m ? L->npages : m;
}

/* Blocks carved from run pg of class c so far (at most cnblk). */
static inline uint64_t
run_carved(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t pg)
{
	struct heap_run *r =
		(void *)(seg->base + L->heap_off + (pg << L->run_shift));
	/* acquire: pairs with the two writers that make a run stop being
	 * current, each of which stores the run's count in next_idx first:
	 * new_run()'s release store of the next run's word, and
	 * held_release()'s release CAS of the word to 0 (a run given back
	 * under the lock; a lock holder reads its own store) */
	uint64_t cur = atomic_load_explicit(&hdr_of(seg)->cls[c].cur_run,
					    memory_order_acquire);
	uint64_t n = CUR_PAGE(cur) == pg + 1
			     ? CUR_IDX(cur)
			     /* acquire: as above */
			     : atomic_load_explicit(&r->next_idx,
						    memory_order_acquire);

	return n < L->cnblk[c] ? n : L->cnblk[c];
}

/* 1 when h may hold a block header: in the chain, on the 64 B grid. */
static inline int
blk_in(const struct layout *L, uint64_t h)
{
	return h >= L->chain_off && h < L->chain_end &&
	       (h - L->chain_off) % 64 == 0;
}

/*
 * Reads the chain header at h (a block of the walk that *steps bounds,
 * counted down here): 0 with its word *w and size *size, or SHK_ECORRUPT
 * for a bad check, a size under BLK_MIN or one past the chain's end.
 */
static inline int
chain_hdr(shk_seg *seg, const struct layout *L, uint64_t h, uint64_t *steps,
	  uint64_t *w, uint64_t *size)
{
	*w = ld(seg, h);
	if (!(*steps)-- || !hdr_ok(h, *w))
		return SHK_ECORRUPT;
	*size = *w & SIZE_MASK;
	if (*size < BLK_MIN || *size > L->chain_end - h)
		return SHK_ECORRUPT;
	return 0;
}

/* Validates a run at page p as the header says; returns its class or -1. */
static inline int
run_valid(shk_seg *seg, const struct layout *L, uint64_t page)
{
	struct heap_run *r =
		(void *)(seg->base + L->heap_off + (page << L->run_shift));
	/* relaxed: written under the lock before the run was published;
	 * checkers re-validate through the heap's sequence count */
	uint64_t id = atomic_load_explicit(&r->id, memory_order_relaxed);
	uint64_t geom = atomic_load_explicit(&r->geom, memory_order_relaxed);
	uint32_t c = (uint32_t)(id >> 32);

	if ((uint32_t)id != RUN_MAGIC || c >= L->nclass ||
	    geom != (L->cnblk[c] | (uint64_t)L->cboff[c] << 32))
		return -1;
	return (int)c;
}

/* Block ref -> page and index, validated against class c. */
static inline int
ref_locate(shk_seg *seg, const struct layout *L, uint32_t c, uint64_t ref,
	   uint64_t *page, uint32_t *idx)
{
	uint64_t rel = ref << 4, pg, in, i;

	if (rel >= L->heap_len)
		return SHK_ECORRUPT;
	pg = rel >> L->run_shift;
	/* acquire: pairs with the release store of cur_run in new_run() that
	 * follows the page map entry (the ref came from a published run) */
	if (pg >= L->npages ||
	    atomic_load_explicit(pagemap(seg, L, pg), memory_order_acquire) !=
		    (RUN_TAG | c))
		return SHK_ECORRUPT;
	in = rel - (pg << L->run_shift);
	if (in < L->cboff[c])
		return SHK_ECORRUPT;
	in -= L->cboff[c];
	i = (in * L->crecip[c]) >> 32;
	if (i * L->csize[c] != in || i >= L->cnblk[c])
		return SHK_ECORRUPT;
	*page = pg;
	*idx = (uint32_t)i;
	return 0;
}

static inline _Atomic uint64_t *
mag_owner(shk_seg *seg, uint64_t moff)
{
	return w64(seg, moff);
}

static inline _Atomic uint32_t *
mag_n(shk_seg *seg, uint64_t moff, uint32_t c)
{
	return (_Atomic uint32_t *)(seg->base + moff + MAG_COUNTS) + c;
}

/* 1 when moff (from shared memory) is the payload of a magazine block. */
static inline int
mag_valid(shk_seg *seg, const struct layout *L, uint64_t moff)
{
	uint64_t h = moff - BLK_HDR, w;

	if (moff < BLK_HDR || !blk_in(L, h))
		return 0;
	w = ld(seg, h);
	return hdr_ok(h, w) && (w & F_ALL) == (F_USED | F_MAG) &&
	       (w & SIZE_MASK) >= L->mag_len + BLK_HDR &&
	       (w & SIZE_MASK) <= L->chain_end - h;
}

/*
 * Whether a slot of hh->mag names the magazine at moff.  Slots are set
 * under the lock, after the magazine is zeroed (mag_setup()), and cleared
 * under it before the block is freed (mag_retire()): a
 * magazine block no slot names is one whose setter died before publishing
 * it, garbage that nobody can reach, unless damage unnamed a magazine in
 * use (mag_in_use()).
 */
static inline int
mag_named(shk_seg *seg, uint64_t moff)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t s;

	for (s = 0; s < SHK__ATTACH_CAP; s++)
		/* relaxed: under the lock (repair()), or a snapshot that the
		 * scan's sequence count confirms */
		if (atomic_load_explicit(&hh->mag[s], memory_order_relaxed) ==
		    moff)
			return 1;
	return 0;
}

/*
 * Whether the magazine at moff, which no slot names, may still be in use:
 * its owner word names a live owner (OWNED) or a live drainer (DRAINING).
 * Only damage (a scribbled slot word) unnames a magazine in use, whose
 * owner goes on through its process-local copy: repair() must not free
 * that one.  A dead setter's block holds old bytes, in which a live stamp
 * is chance and only keeps the block (a leak).  System calls
 * (shk__stamp_alive): repair and check only.
 */
static inline int
mag_in_use(shk_seg *seg, uint64_t moff)
{
	/* relaxed: under the lock (repair()), or a snapshot (the scan) */
	uint64_t o = atomic_load_explicit(mag_owner(seg, moff),
					  memory_order_relaxed);

	if (MO_STATE(o) == MO_OWNED)
		return MO_OWNER(o) && shk__stamp_alive(seg, MO_OWNER(o));
	if (MO_STATE(o) == MO_DRAINING)
		return MO_DRAINER(o) && shk__stamp_alive(seg, MO_DRAINER(o));
	return 0;
}

static inline struct heap_local *
local_of(shk_seg *seg)
{
	return seg ? seg->heap_local : NULL;
}

static inline uint64_t
align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/*
 * Read-modify-write of a word only the lock holder writes: a plain load
 * and store, no locked instruction.  relaxed: the lock orders it; lock-free
 * readers (statistics, check) take a snapshot.
 */
static inline uint64_t
lk_add(_Atomic uint64_t *p, uint64_t delta)
{
	uint64_t v = atomic_load_explicit(p, memory_order_relaxed) + delta;

	atomic_store_explicit(p, v, memory_order_relaxed);
	return v;
}

static inline void
lk_set(_Atomic uint64_t *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static inline void
set_prev(shk_seg *seg, uint64_t h, uint64_t prev)
{
	_Atomic uint64_t *p = w64(seg, h + 8);
	/* relaxed: prev_size is ordered by the lock (we hold it); a CAS, not
	 * a store, because the owner of a used block taking it from its large
	 * cache rewrites the stamp bits of this word without the lock
	 * (take_stamp()): neither update may undo the other */
	uint64_t w1 = atomic_load_explicit(p, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(
		p, &w1, (w1 & ~0x3ffffffffull) | (prev >> 6),
		memory_order_relaxed, memory_order_relaxed))
		;
}

/* Writes stamp as the owner of used block h, without the lock: a CAS, as
 * a lock holder may rewrite its prev_size meanwhile (set_prev()); none
 * when the block already names us (a handle reusing its own frees: the
 * large cache's fast path). */
static inline void
take_stamp(shk_seg *seg, uint64_t h, uint32_t stamp)
{
	_Atomic uint64_t *p = w64(seg, h + 8);
	/* relaxed: a statistic's owner field; the CAS only keeps prev_size */
	uint64_t w1 = atomic_load_explicit(p, memory_order_relaxed);

	if (w1 >> 34 == stamp)
		return;
	while (!atomic_compare_exchange_weak_explicit(
		p, &w1, (w1 & 0x3ffffffffull) | ((uint64_t)stamp << 34),
		memory_order_relaxed, memory_order_relaxed))
		;
}

static inline void
set_stamp(shk_seg *seg, uint64_t h, uint32_t stamp)
{
	uint64_t w1 = ld(seg, h + 8);

	st(seg, h + 8, (w1 & 0x3ffffffffull) | ((uint64_t)stamp << 34));
}

/* ------------------------------------------------------------------ */
/* heap_large.c: the chain of large blocks, its bins and the heap lock  */
/* ------------------------------------------------------------------ */

/*
 * shk__heap_lock takes the process-local mutex, then the robust heap lock
 * (10 s timeout, or less under shk__heap_lock_dl), and makes seq odd.  A
 * dead holder is repaired first (repair() in heap_large.c).  0, or an
 * error code (SHK_ETIMEDOUT, SHK_ECORRUPT, ...) with nothing held.
 * shk__heap_lock_full waits the whole 10 s whatever shk__heap_lock_dl
 * says: for a free, whose failure leaks the block.  shk__heap_unlock
 * makes seq even and releases both.
 */
SHK_HIDDEN int shk__heap_lock(shk_seg *seg, struct heap_local *hl);
SHK_HIDDEN int shk__heap_lock_full(shk_seg *seg, struct heap_local *hl);
SHK_HIDDEN void shk__heap_unlock(shk_seg *seg, struct heap_local *hl);

/*
 * The lock is held for these.  shk__heap_large_carve finds and carves a
 * free block with a payload of len bytes aligned to align and, when limit
 * is nonzero, ending at most limit bytes past heap_off; flags go into its
 * header.  It returns the header offset, 0 for no room, or 0 with
 * SHK_ECORRUPT in *rc.  shk__heap_carve_live is the same for a live block
 * (counted in the statistics).  shk__heap_free_span frees m adjacent used
 * blocks as one; shk__heap_free_locked frees the large block at header h.
 * shk__heap_carve_top carves from the top of the highest free block that
 * fits (magazines); shk__heap_free_meta frees a block flagged F_MAG or
 * F_RUN (neither is counted as live).
 */
SHK_HIDDEN uint64_t shk__heap_large_carve(shk_seg *seg, const struct layout *L,
					  uint64_t len, uint64_t align,
					  uint64_t limit, uint32_t flags,
					  int *rc);
SHK_HIDDEN void shk__heap_held_repair(shk_seg *seg, const struct layout *L);
SHK_HIDDEN uint64_t shk__heap_carve_top(shk_seg *seg, const struct layout *L,
					uint64_t len, uint32_t flags, int *rc);
SHK_HIDDEN int shk__heap_free_meta(shk_seg *seg, const struct layout *L,
				   uint64_t h, uint32_t flag);
SHK_HIDDEN uint64_t shk__heap_carve_live(shk_seg *seg, const struct layout *L,
					 uint64_t len, uint64_t align, int *rc);
SHK_HIDDEN int shk__heap_free_span(shk_seg *seg, const struct layout *L,
				   const struct mag_ent *e, uint32_t m);
SHK_HIDDEN int shk__heap_free_locked(shk_seg *seg, const struct layout *L,
				     uint64_t h);

/*
 * Take the lock themselves: shk__heap_large_alloc allocates len bytes
 * aligned to align from the chain (codes as shk_alloc);
 * shk__heap_large_free frees the large block whose payload is at off
 * (SHK_EINVAL for anything else).
 */
SHK_HIDDEN int shk__heap_large_alloc(shk_seg *seg, struct heap_local *hl,
				     uint64_t len, uint64_t align,
				     uint64_t *off);
SHK_HIDDEN int shk__heap_large_free(shk_seg *seg, struct heap_local *hl,
				    uint64_t off);

#endif /* SHK_HEAP_INT_H */
