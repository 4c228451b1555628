/*
 * heap.c - the shared allocator inside a segment (ALGORITHMS.md §3, §4;
 * docs/heap.md has the user-level description).
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
 * only under the robust lock hdr->lock.  Write order keeps every prefix
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
 * also carved lazily from the class's current run by a CAS on the run's
 * next_idx.  The allocator never touches a small block's payload.
 *
 * Shared words and their writers:
 *   class head         any allocator (pop) or freer (push), by CAS
 *   side word          the block's owner: a pop stores ALLOC into the
 *                      FREE block it took, a carve CASes 0 -> ALLOC, a
 *                      free CASes ALLOC -> FREE (the double-free test),
 *                      then stores FREE|next before the push CAS
 *   run next_idx       carvers, by CAS
 *   cur_run, pagemap,  run header, chain, bins, seq: the lock holder
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
 * hdr->mag[slot], set once under the lock): owner word, per-class counts
 * and refs.  Side state CACHED = in the magazine of the stamp it names.
 *   owner word    CAS only: NONE -> OWNED(me) by a slot's new owner,
 *                 OWNED/DRAINING(dead) -> DRAINING(me) by a drainer,
 *                 DRAINING(me) -> NONE at the drain's end
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
 * never handed out a block, and rebuilds bins and large_free.  Statistics
 * may drift by one block per kill.  A double free finds FREE (or a dead
 * header) and returns SHK_EINVAL.
 */
#include "heap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"

#define HEAP_MAGIC 0x31504145484b4853ull /* "SHKHEAP1" */
#define HEAP_VERSION 4u
#define RUN_MAGIC 0x4e555248u /* "HRUN" */
#define NBINS 48
#define BLK_HDR 16u
#define BLK_MIN 64u
#define F_USED 1u
#define F_RUN 2u
#define F_MAG 4u /* a magazine (with F_USED): never freed, not counted */
#define F_LC 8u  /* with F_USED: in its owner's large cache (magazine) */
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
	_Atomic uint64_t head;    /* {ref:32 | tag:32} */
	_Atomic uint64_t cur_run; /* page index + 1 being carved; 0 none */
	_Atomic uint64_t live;    /* blocks handed out */
	_Atomic uint64_t nruns;   /* runs of this class (under the lock) */
	uint64_t reserved[4];
};
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
	/* magazine payload offset per attach slot, 0 none (set once, under
	 * the lock) */
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
	_Atomic uint64_t next_idx; /* blocks carved so far */
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
	struct layout L;    /* before the big arrays: the hot fields share
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
/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static uint64_t
align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint32_t
class_size(uint32_t i)
{
	uint32_t base;

	if (i < 4)
		return 16 * (i + 1);
	base = 64u << (i / 4 - 1);
	return base + (i % 4 + 1) * (base / 4);
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

static uint32_t
bin_of(uint64_t size)
{
	uint32_t b = 63 - (uint32_t)__builtin_clzll(size >> 6);

	return b < NBINS ? b : NBINS - 1;
}

static uint64_t
hcheck(uint64_t at, uint64_t low)
{
	/* one multiply: the top 16 bits of the product depend on every bit
	 * of (at, low); enough to refuse a stray, shifted or copied header,
	 * and short enough for the paths that check several per call */
	return ((at ^ (low << 17) ^ (low >> 6)) * 0x9e3779b97f4a7c15ull) &
	       CHECK_MASK;
}

static uint64_t
mkhdr(uint64_t at, uint64_t size, uint32_t flags)
{
	uint64_t low = size | flags;

	return low | hcheck(at, low & ~(uint64_t)F_LC);
}

static int
hdr_ok(uint64_t at, uint64_t w)
{
	return w != 0 &&
	       (w & CHECK_MASK) == hcheck(at, w & LOW_MASK & ~(uint64_t)F_LC) &&
	       (w & LOW_MASK & ~SIZE_MASK & ~(uint64_t)F_ALL) == 0 &&
	       (!(w & F_MAG) || (w & F_ALL) == (F_USED | F_MAG)) &&
	       (!(w & F_LC) || (w & F_ALL) == (F_USED | F_LC));
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

static struct heap_hdr *
hdr_of(shk_seg *seg)
{
	return (struct heap_hdr *)(seg->base + seg->heap_off);
}

static _Atomic uint64_t *
w64(shk_seg *seg, uint64_t off)
{
	return (_Atomic uint64_t *)(seg->base + off);
}

static _Atomic uint32_t *
pagemap(shk_seg *seg, const struct layout *L, uint64_t page)
{
	return (_Atomic uint32_t *)(seg->base + L->pagemap_off) + page;
}

/* relaxed accessors for lock-protected words (the lock orders them) */
static uint64_t
ld(shk_seg *seg, uint64_t off)
{
	return atomic_load_explicit(w64(seg, off), memory_order_relaxed);
}

static void
st(shk_seg *seg, uint64_t off, uint64_t v)
{
	atomic_store_explicit(w64(seg, off), v, memory_order_relaxed);
}

/*
 * Read-modify-write of a word only the lock holder writes: a plain load
 * and store, no locked instruction.  relaxed: the lock orders it; lock-free
 * readers (statistics, check) take a snapshot.
 */
static uint64_t
lk_add(_Atomic uint64_t *p, uint64_t delta)
{
	uint64_t v = atomic_load_explicit(p, memory_order_relaxed) + delta;

	atomic_store_explicit(p, v, memory_order_relaxed);
	return v;
}

static void
lk_set(_Atomic uint64_t *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static uint64_t
prev_of(uint64_t w1)
{
	return (w1 & 0x3ffffffffull) << 6;
}

static void
set_prev(shk_seg *seg, uint64_t h, uint64_t prev)
{
	uint64_t w1 = ld(seg, h + 8);

	st(seg, h + 8, (w1 & ~0x3ffffffffull) | (prev >> 6));
}

static void
set_stamp(shk_seg *seg, uint64_t h, uint32_t stamp)
{
	uint64_t w1 = ld(seg, h + 8);

	st(seg, h + 8, (w1 & 0x3ffffffffull) | ((uint64_t)stamp << 34));
}

static uint64_t
side_off(const struct layout *L, uint64_t page, uint32_t idx)
{
	return L->heap_off + (page << L->run_shift) + 64 + 8 * (uint64_t)idx;
}

#define SIDE_STATE(w) ((uint32_t)((w) >> 62))
#define SIDE(st, stamp, next)                                                  \
	(((uint64_t)(st) << 62) |                                              \
	 ((uint64_t)((stamp)&SHK__STAMP_MASK) << 32) | (uint64_t)(next))

/* ------------------------------------------------------------------ */
/* large blocks (lock held)                                            */
/* ------------------------------------------------------------------ */

/* 1 when h may hold a block header: in the chain, on the 64 B grid. */
static int
blk_in(const struct layout *L, uint64_t h)
{
	return h >= L->chain_off && h < L->chain_end &&
	       (h - L->chain_off) % 64 == 0;
}

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

/*
 * Finds and carves a free block with a payload of len bytes aligned to
 * align (relative to heap_off) and, when limit is nonzero, ending at most
 * limit bytes past heap_off.  Returns the header offset, 0 for no room, or
 * SHK_ECORRUPT through *rc.
 */
static uint64_t
large_carve(shk_seg *seg, const struct layout *L, uint64_t len, uint64_t align,
	    uint64_t limit, uint32_t flags, int *rc)
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
	/* relaxed: statistics under the lock */
	w = lk_add(&hh->large_free, -S);
	if (L->chain_end - L->chain_off - w >
	    atomic_load_explicit(&hh->high_water, memory_order_relaxed))
		atomic_store_explicit(&hh->high_water,
				      L->chain_end - L->chain_off - w,
				      memory_order_relaxed);
	return f;
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

/* Validates a run at page p as the header says; returns its class or -1. */
static int
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

/*
 * repair rebuilds everything derived from the chain after a lock holder
 * died: prev_size, coalescing, runs that never handed out a block, bins,
 * large_free, large_live, nruns.  Lock held.
 */
static int
repair(shk_seg *seg, const struct layout *L)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t h = L->chain_off, prev = 0, last_free = 0, last_size = 0;
	uint64_t steps = (L->chain_end - L->chain_off) / 64 + 1;
	uint64_t free_bytes = 0, live = 0, used = 0, nruns[NCLASS] = { 0 };
	uint32_t b, c;

	while (h < L->chain_end) {
		uint64_t w = ld(seg, h), S;

		if (!steps-- || !hdr_ok(h, w))
			return SHK_ECORRUPT;
		S = w & SIZE_MASK;
		if (S < BLK_MIN || S > L->chain_end - h)
			return SHK_ECORRUPT;
		set_prev(seg, h, prev);
		if (w & F_RUN) {
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
				/* relaxed: carvers only CAS upwards; zero
				 * means nobody could have carved yet.
				 * Only a lock holder (we) stores cur_run;
				 * acquire pairs with new_run()'s release. */
				uint64_t ni = atomic_load_explicit(
					&r->next_idx, memory_order_relaxed);
				uint64_t cur = atomic_load_explicit(
					&hh->cls[k].cur_run,
					memory_order_acquire);

				if (ni || cur == pg + 1) {
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
	/* second pass: the bins */
	for (b = 0; b < NBINS; b++)
		atomic_store_explicit(&hh->bins[b], 0, memory_order_relaxed);
	atomic_store_explicit(&hh->bin_map, 0, memory_order_relaxed);
	for (h = L->chain_off; h < L->chain_end;) {
		uint64_t w = ld(seg, h), S = w & SIZE_MASK;

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

static int
heap_lock(shk_seg *seg, struct heap_local *hl)
{
	struct heap_hdr *hh = hdr_of(seg);
	int rc;

	pthread_mutex_lock(&hl->mu);
	rc = shk__lock_acquire(seg, &hh->lock, LOCK_TIMEOUT_NS);
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
		return rc == SHK_ENOTRECOVERABLE ? SHK_ECORRUPT : rc;
	}
	return 0;
}

static void
heap_unlock(shk_seg *seg, struct heap_local *hl)
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
 * offset, or 0 with *rc as large_carve() leaves it. */
static uint64_t
carve_live(shk_seg *seg, const struct layout *L, uint64_t len, uint64_t align,
	   int *rc)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint64_t h = large_carve(seg, L, len, align, 0, 0, rc);

	if (h) {
		/* relaxed: statistics under the lock */
		lk_add(&hh->large_live, 1);
		lk_add(&hh->large_used, ld(seg, h) & SIZE_MASK);
	}
	return h;
}

static int
large_alloc(shk_seg *seg, struct heap_local *hl, uint64_t len, uint64_t align,
	    uint64_t *off)
{
	uint64_t h;
	int rc;

	if (len > hl->L.heap_len)
		return SHK_ENOMEM;
	rc = heap_lock(seg, hl);
	if (rc)
		return rc;
	h = carve_live(seg, &hl->L, len, align, &rc);
	heap_unlock(seg, hl);
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
static int
large_free_span(shk_seg *seg, const struct layout *L, const struct mag_ent *e,
		uint32_t m)
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

/* Frees the large block at header h; the lock is held. */
static int
large_free_locked(shk_seg *seg, const struct layout *L, uint64_t h)
{
	struct mag_ent e;
	uint64_t w = ld(seg, h);

	if (!hdr_ok(h, w) || (w & F_ALL) != F_USED)
		return SHK_EINVAL;
	e.blk = h;
	e.side = w & SIZE_MASK;
	if (e.side < BLK_MIN)
		return SHK_EINVAL;
	return large_free_span(seg, L, &e, 1);
}

static int
large_free(shk_seg *seg, struct heap_local *hl, uint64_t off)
{
	uint64_t h = off - BLK_HDR;
	int rc;

	if (off < BLK_HDR || !blk_in(&hl->L, h))
		return SHK_EINVAL;
	rc = heap_lock(seg, hl);
	if (rc)
		return rc;
	rc = large_free_locked(seg, &hl->L, h);
	heap_unlock(seg, hl);
	return rc;
}

/* ------------------------------------------------------------------ */
/* small blocks                                                        */
/* ------------------------------------------------------------------ */

/* Block ref -> page and index, validated against class c. */
static int
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
		if (rc)
			return rc;
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
	uint64_t run_len = (uint64_t)1 << L->run_shift, h, pg;
	struct heap_run *r;
	uint32_t i;
	int rc;

	h = large_carve(seg, L, run_len, run_len, SMALL_LIMIT, F_RUN, &rc);
	if (!h)
		return rc ? rc : SHK_ENOMEM;
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
	atomic_store_explicit(&hh->cls[c].cur_run, pg + 1,
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
	uint64_t p = cur - 1;

	if (p >= L->npages ||
	    /* relaxed: ordered by the caller's acquire load of cur_run */
	    atomic_load_explicit(pagemap(seg, L, p), memory_order_relaxed) !=
		    (RUN_TAG | c) ||
	    run_valid(seg, L, p) != (int)c)
		return SHK_ECORRUPT;
	*pg = p;
	return 0;
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
	struct heap_run *r;

	*cur_out = cur;
	if (!cur)
		return 1;
	if (cur_page(seg, L, c, cur, &pg))
		return SHK_ECORRUPT;
	r = (void *)(seg->base + L->heap_off + (pg << L->run_shift));
	/* relaxed: the index itself carries no data */
	idx = atomic_load_explicit(&r->next_idx, memory_order_relaxed);
	do {
		if (idx >= L->cnblk[c])
			return 1;
	} while (!atomic_compare_exchange_weak_explicit(
		&r->next_idx, &idx, idx + 1, memory_order_relaxed,
		memory_order_relaxed));
	SHK_CRASHPOINT("heap.alloc.carved");
	/* 0 -> ALLOC; the block is ours alone.  release: orders the
	 * next_idx CAS before it for shk__heap_scan()'s acquire re-read */
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

static _Atomic uint64_t *
mag_owner(shk_seg *seg, uint64_t moff)
{
	return w64(seg, moff);
}

static _Atomic uint32_t *
mag_n(shk_seg *seg, uint64_t moff, uint32_t c)
{
	return (_Atomic uint32_t *)(seg->base + moff + MAG_COUNTS) + c;
}

static _Atomic uint32_t *
mag_ref(shk_seg *seg, const struct layout *L, uint64_t moff, uint32_t c,
	uint32_t i)
{
	return (_Atomic uint32_t *)(seg->base + moff + L->mref_off[c]) + i;
}

/* 1 when moff (from shared memory) is the payload of a magazine block. */
static int
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
 * Pushes k blocks of class c (states already FREE, ours alone) onto the
 * class list with one CAS: the chain is linked first, then published.
 */
static void
push_chain(shk_seg *seg, const struct layout *L, uint32_t c,
	   const uint32_t *ref, const uint64_t *pg, const uint32_t *idx,
	   uint32_t k)
{
	struct heap_class *hc = &hdr_of(seg)->cls[c];
	_Atomic uint64_t *last;
	uint64_t h;
	uint32_t i;

	if (!k)
		return;
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
}

/*
 * Drains the magazine at moff, whose owner word read o, as drainer my:
 * claims it (CAS o -> DRAINING), turns every entry still CACHED under the
 * owner's stamp FREE (one CAS each, so two drainers never take one block
 * twice) and pushes them, then frees the magazine (CAS -> NONE).  Entries
 * are scanned up to the depth, not the count: a block cached just before
 * its owner died, or left by a spill, is found too.
 */
static void
mag_drain(shk_seg *seg, const struct layout *L, uint64_t moff, uint64_t o,
	  uint32_t my)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t S = MO_OWNER(o), c, i, k, ref[MAG_DEPTH], idx[MAG_DEPTH];
	uint64_t nw = MO_WORD(MO_DRAINING, S, my), pg[MAG_DEPTH];

	/* acq_rel: takes the magazine; sees the owner's entries (its release
	 * store of OWNED and the release CAS of each cached block) */
	if (!atomic_compare_exchange_strong_explicit(mag_owner(seg, moff), &o,
						     nw, memory_order_acq_rel,
						     memory_order_relaxed))
		return;
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
		}
		SHK_CRASHPOINT("heap.mag.drain");
		push_chain(seg, L, c, ref, pg, idx, k);
		/* relaxed: a statistic */
		if (k)
			atomic_fetch_sub_explicit(&hh->cls[c].live, k,
						  memory_order_relaxed);
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
			(void)large_free(seg, seg->heap_local, h + BLK_HDR);
	}
	/* release: the drain happens before a new owner's claim (acquire
	 * load in mag_setup()) */
	atomic_compare_exchange_strong_explicit(mag_owner(seg, moff), &nw, 0,
						memory_order_release,
						memory_order_relaxed);
}

/*
 * Drains moff's magazine if its owner (or its drainer) is dead; 1 when it
 * did, 0 when it is in use or free.
 */
static int
mag_reclaim_one(shk_seg *seg, const struct layout *L, uint64_t moff)
{
	/* acquire: pairs with the release stores/CASes of the owner word */
	uint64_t o = atomic_load_explicit(mag_owner(seg, moff),
					  memory_order_acquire);
	uint32_t st = MO_STATE(o);

	if (st == MO_OWNED && MO_OWNER(o) != shk__seg_stamp(seg) &&
	    !shk__stamp_alive(seg, MO_OWNER(o))) {
		mag_drain(seg, L, moff, o, shk__seg_stamp(seg));
		return 1;
	}
	if (st == MO_DRAINING && MO_DRAINER(o) != shk__seg_stamp(seg) &&
	    !shk__stamp_alive(seg, MO_DRAINER(o))) {
		mag_drain(seg, L, moff, o, shk__seg_stamp(seg));
		return 1;
	}
	return 0;
}

/*
 * Sets up the calling thread's use of its handle's magazine: finds or makes
 * the slot's magazine, drains what a dead previous owner left, claims it.
 * Leaves hl->mag_off 0 when there is none (no room, or the slot's magazine
 * is held by a live owner: a forked child using a parent's handle).
 */
static void
mag_setup(shk_seg *seg, struct heap_local *hl)
{
	const struct layout *L = &hl->L;
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t me = shk__seg_stamp(seg), c, tries;
	_Atomic uint64_t *slot;
	uint64_t moff, h;
	int rc;

	if (seg->slot >= SHK__ATTACH_CAP || !me)
		return;
	slot = &hh->mag[seg->slot];
	/* acquire: pairs with the release store below (by an earlier owner
	 * of the slot): the zeroed magazine is visible */
	moff = atomic_load_explicit(slot, memory_order_acquire);
	if (!moff) {
		if (heap_lock(seg, hl))
			return;
		/* relaxed: under the lock */
		moff = atomic_load_explicit(slot, memory_order_relaxed);
		if (!moff) {
			h = large_carve(seg, L, L->mag_len, 64, 0, F_MAG, &rc);
			if (h) {
				uint64_t i;

				moff = h + BLK_HDR;
				/* relaxed: published by the store below */
				for (i = 0; i < L->mag_len; i += 8)
					st(seg, moff + i, 0);
				/* release: publishes the zeroed magazine;
				 * pairs with the acquire load above */
				atomic_store_explicit(slot, moff,
						      memory_order_release);
			}
		}
		heap_unlock(seg, hl);
	}
	if (!moff || !mag_valid(seg, L, moff))
		return;
	for (tries = 0;; tries++) {
		/* acquire: pairs with the release CAS ending a drain */
		uint64_t o = atomic_load_explicit(mag_owner(seg, moff),
						  memory_order_acquire);

		if (tries == 8)
			return;
		if (MO_STATE(o) == MO_NONE) {
			/* acquire: after the last drain's release */
			if (atomic_compare_exchange_strong_explicit(
				    mag_owner(seg, moff), &o,
				    MO_WORD(MO_OWNED, me, 0),
				    memory_order_acquire, memory_order_relaxed))
				break;
			continue;
		}
		if (!mag_reclaim_one(seg, L, moff))
			return; /* a live owner */
	}
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
	if (t)
		return 0;
	/* relaxed: as above */
	if (!atomic_compare_exchange_strong_explicit(&hl->mag_thread, &t, me,
						     memory_order_relaxed,
						     memory_order_relaxed))
		return 0;
	mag_setup(seg, hl);
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
 * blocks carved from the current run with one CAS.  Returns how many (0: none to be had
 * without a new run) or a negative code.
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
	struct heap_run *r;

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
		if (!n)
			return SHK_ECORRUPT; /* head itself is bad */
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
	if (!cur)
		return 0;
	if (cur_page(seg, L, c, cur, &cpg))
		return SHK_ECORRUPT;
	r = (void *)(seg->base + L->heap_off + (cpg << L->run_shift));
	/* relaxed: the index itself carries no data */
	ix = atomic_load_explicit(&r->next_idx, memory_order_relaxed);
	do {
		if (ix >= L->cnblk[c])
			return 0;
		n = L->cnblk[c] - ix < want ? (uint32_t)(L->cnblk[c] - ix)
					    : want;
	} while (!atomic_compare_exchange_weak_explicit(
		&r->next_idx, &ix, ix + n, memory_order_relaxed,
		memory_order_relaxed));
	for (i = 0; i < n; i++) {
		pg[i] = cur - 1;
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
 * Returns the newer half (at most MAG_MOVE blocks) of class c's full
 * magazine (n entries) to the list with one CAS.  The count drops first
 * and the entries stay in place, so a kill before the push leaves the
 * blocks CACHED where a drainer finds them; a kill amid the linking loses
 * them (at most MAG_MOVE blocks).
 */
static void
mag_spill(shk_seg *seg, struct heap_local *hl, uint32_t c, uint32_t n)
{
	const struct layout *L = &hl->L;
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t keep = n / 2 > MAG_MOVE ? n - MAG_MOVE : n - n / 2, i, k = 0;
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
	push_chain(seg, L, c, ref, pg, idx, k);
	/* relaxed: a statistic */
	if (k)
		atomic_fetch_sub_explicit(&hh->cls[c].live, k,
					  memory_order_relaxed);
}

/*
 * Drains every magazine whose owner died or closed (not ours); used when
 * the heap runs short and by shk__heap_reclaim.  Returns how many.
 */
static int
mag_reclaim_all(shk_seg *seg, const struct layout *L)
{
	struct heap_hdr *hh = hdr_of(seg);
	uint32_t s;
	int n = 0;

	if (seg->slot == UINT32_MAX)
		return 0;
	for (s = 0; s < SHK__ATTACH_CAP; s++) {
		/* acquire: pairs with the release store in mag_setup() */
		uint64_t moff =
			atomic_load_explicit(&hh->mag[s], memory_order_acquire);

		if (moff && mag_valid(seg, L, moff))
			n += mag_reclaim_one(seg, L, moff);
	}
	return n;
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
		rc = heap_lock(seg, hl);
		if (rc)
			return rc;
		/* acquire: pairs with the release store in new_run() */
		if (atomic_load_explicit(&hh->cls[c].cur_run,
					 memory_order_acquire) == cur)
			rc = new_run(seg, L, c);
		heap_unlock(seg, hl);
		if (rc == SHK_ENOMEM && !reclaimed++ && mag_reclaim_all(seg, L))
			continue; /* dead owners' magazines refilled lists */
		if (rc == SHK_ENOMEM)
			/* no room for a run: a large block still fits */
			return large_alloc(seg, hl, L->csize[c], 64, off);
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
		mag_spill(seg, hl, c, hl->L.mdepth[c]);
		n = hl->lcnt[c];
	}
	mag_record(seg, hl, c, n, blk, side);
	/* release: the user's writes to the block, and the entry, happen
	 * before a drainer's acquire CAS in mag_drain() */
	atomic_store_explicit(sw, SIDE(ST_CACHED, hl->mag_stamp, 0),
			      memory_order_release);
	SHK_CRASHPOINT("heap.mag.cached");
	hl->lcnt[c] = n + 1;
	/* relaxed: a statistic and a bound (mag_take) */
	atomic_store_explicit(mag_n(seg, hl->mag_off, c), n + 1,
			      memory_order_relaxed);
	return 0;
}

/*
 * Large cache (docs/heap.md): a freed large block of at most lc_max bytes
 * goes, while the cache has room (LC_N blocks, lc_budget bytes), to the
 * freeing thread's magazine instead of back to the chain, flagged F_LC
 * (header word 0); an allocation of a size it fits with at most a quarter
 * wasted takes it back without the lock.  Only word 0 changes: no lock
 * holder writes word 0 of a used block, so plain stores suffice.  Word 1
 * (prev_size, changed by lock holders when the block before merges or
 * splits) is never written here.  The shared entry names the block for
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

	if (heap_lock(seg, hl))
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
			if (!large_free_span(seg, &hl->L, e + i, j - i))
				n += (int)(j - i);
		}
	}
	heap_unlock(seg, hl);
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
	rc = heap_lock(seg, hl);
	if (rc)
		return rc;
	h = k > 1 ? carve_live(seg, &hl->L, need * k - BLK_HDR, 64, &rc) : 0;
	if (h) {
		S = ld(seg, h) & SIZE_MASK;
		split_used(seg, h, S, need, k);
	} else if (!rc) {
		k = 1;
		h = carve_live(seg, &hl->L, len, align, &rc);
	}
	if (!h) {
		heap_unlock(seg, hl);
		return rc ? rc : SHK_ENOMEM;
	}
	SHK_CRASHPOINT("heap.lc.fill");
	for (i = k - 1; i > 0; i--) {
		uint64_t b = h + need * i;

		if (lc_put(seg, hl, b, ld(seg, b)))
			(void)large_free_locked(seg, &hl->L, b);
	}
	heap_unlock(seg, hl);
	*off = h + BLK_HDR;
	return 0;
}

/*
 * Frees the large block at off into our large cache: 0, or 1 when it is
 * not a live large block that fits (large_free() decides then).  A full
 * cache first returns its LC_EVICT newest blocks under one lock hold.
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
	if (hh->magic != HEAP_MAGIC || hh->version != HEAP_VERSION ||
	    hh->run_shift != hl->L.run_shift || hh->heap_off != seg->heap_off ||
	    hh->heap_len != seg->heap_len ||
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
	/* Flush our magazine.  The attach record may already be FREE (so
	 * a survivor may drain it beside us: per-block CASes make that
	 * safe); a forked child closing its parent's handle must not. */
	if (hl->mag_off && hl->mag_key == shk__self_key())
		mag_drain(seg, &hl->L, hl->mag_off,
			  MO_WORD(MO_OWNED, hl->mag_stamp, 0), hl->mag_stamp);
	pthread_mutex_destroy(&hl->mu);
	free(hl);
	seg->heap_local = NULL;
}

static struct heap_local *
local_of(shk_seg *seg)
{
	return seg ? seg->heap_local : NULL;
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
		rc = large_alloc(seg, hl, len, align, off);
	}
	/* Short of memory: give back our large cache and retry.  Only the
	 * thread that owns the magazine may touch the cache (its take and
	 * put run without the lock); another thread of this handle that
	 * evicted it could hand out a block the owner was taking. */
	if (rc == SHK_ENOMEM && mine && hl->lcn && lc_evict(seg, hl, LC_N))
		rc = large_alloc(seg, hl, len, align, off);
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
	/* acquire: pairs with the release store of cur_run in new_run(),
	 * which is ordered after this entry (any block we were handed was
	 * carved after the run was published) */
	e = atomic_load_explicit(pagemap(seg, L, pg), memory_order_acquire);
	if (e & RUN_TAG)
		return small_free(seg, hl, off, pg, e & ~RUN_TAG);
	if (e)
		return SHK_ECORRUPT;
	if (mag_mine(seg, hl) && !lc_free(seg, hl, off))
		return 0;
	return large_free(seg, hl, off);
}

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
	struct heap_run *r =
		(void *)(seg->base + L->heap_off + (pg << L->run_shift));
	/* relaxed: a snapshot */
	uint64_t ni = atomic_load_explicit(&r->next_idx, memory_order_relaxed);
	uint32_t i;

	for (i = 0; i < L->cnblk[c]; i++) {
		/* acquire: pairs with the release CAS that stamps a carved
		 * block in carve() / mag_refill(); their next_idx CAS comes
		 * before it, so the re-read of next_idx below sees it */
		uint64_t w = atomic_load_explicit(w64(seg, side_off(L, pg, i)),
						  memory_order_acquire);
		uint32_t s = SIDE_STATE(w);

		if (i >= ni && w) {
			/* a carve may have run since we read next_idx: it is
			 * visible now (see the acquire above) */
			ni = atomic_load_explicit(&r->next_idx,
						  memory_order_acquire);
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
		uint64_t w = ld(seg, h), S;

		if (!steps-- || !hdr_ok(h, w))
			return SHK_ECORRUPT;
		S = w & SIZE_MASK;
		if (S < BLK_MIN || S > L->chain_end - h)
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
			/* a magazine is formatted under the lock: with a
			 * holder active it may still hold old bytes */
			rc = derived ? mag_check(seg, L, h + BLK_HDR) : 0;
			if (rc)
				return rc;
			rep->mags++;
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

void
shk__heap_forge_hdr(shk_seg *seg, uint64_t h, uint64_t size, uint32_t flags)
{
	st(seg, h, mkhdr(h, size, flags));
}

int
shk__heap_reclaim(shk_seg *seg)
{
	struct heap_local *hl = local_of(seg);

	if (!hl)
		return SHK_EINVAL;
	if (seg->slot == UINT32_MAX)
		return SHK_EPERM;
	return mag_reclaim_all(seg, &hl->L);
}

int
shk__heap_check(shk_seg *seg)
{
	return shk__heap_scan(seg, NULL);
}
