/*
 * pool.h - fixed-size block pool (pool.c) and the tagged Treiber list of
 * 32-bit indices it shares with stack.c (ALGORITHMS.md §3).
 */
#ifndef SHK_POOL_H
#define SHK_POOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"

/*
 * A tagged list head is one 64-bit word {tag:32 | index:32}; every
 * successful push or pop increments the tag, so a stale CAS fails unless
 * 2^32 operations passed between its load and its CAS.  No 128-bit CAS
 * (ALGORITHMS §3).  Links are a separate array next[cap] of 32-bit
 * indices; SHK__TL_NIL ends a list.
 */
#define SHK__TL_NIL UINT32_MAX
#define SHK__TL_WORD(idx, tag) (((uint64_t)(tag) << 32) | (uint32_t)(idx))
#define SHK__TL_IDX(w) ((uint32_t)(w))
#define SHK__TL_TAG(w) ((uint32_t)((w) >> 32))

/*
 * shk__tl_pop takes the first index off the list into *out.  Returns 0,
 * SHK_EAGAIN when the list is empty, SHK_ECORRUPT for an index >= cap.
 * Lock-free.  The index read from next[] of a node that another party
 * popped and re-linked meanwhile may be garbage; it only becomes the CAS's
 * new value, and that CAS fails on the tag.
 */
static inline int
shk__tl_pop(_Atomic uint64_t *head, _Atomic uint32_t *next, uint32_t cap,
	    uint32_t *out)
{
	/* acquire: pairs with the release CAS in shk__tl_push(); the pushed
	 * node's link and contents are visible */
	uint64_t h = atomic_load_explicit(head, memory_order_acquire);
	uint32_t idx, nx;

	for (;;) {
		idx = SHK__TL_IDX(h);
		if (idx == SHK__TL_NIL)
			return SHK_EAGAIN;
		if (SHK_UNLIKELY(idx >= cap))
			return SHK_ECORRUPT;
		/* relaxed: validated by the tag in the CAS below */
		nx = atomic_load_explicit(&next[idx], memory_order_relaxed);
		/* acquire (success and failure): as the load above */
		if (atomic_compare_exchange_weak_explicit(
			    head, &h, SHK__TL_WORD(nx, SHK__TL_TAG(h) + 1),
			    memory_order_acquire, memory_order_acquire)) {
			*out = idx;
			return 0;
		}
	}
}

/* shk__tl_push links idx (< cap, owned by the caller) onto the list. */
static inline void
shk__tl_push(_Atomic uint64_t *head, _Atomic uint32_t *next, uint32_t idx)
{
	/* relaxed: the CAS below is the linearization point */
	uint64_t h = atomic_load_explicit(head, memory_order_relaxed);

	for (;;) {
		/* relaxed: published by the release CAS below */
		atomic_store_explicit(&next[idx], SHK__TL_IDX(h),
				      memory_order_relaxed);
		/* release: publishes next[idx] and whatever the caller wrote
		 * into the node; pairs with the acquire in shk__tl_pop() */
		if (atomic_compare_exchange_weak_explicit(
			    head, &h, SHK__TL_WORD(idx, SHK__TL_TAG(h) + 1),
			    memory_order_release, memory_order_relaxed))
			return;
	}
}

/*
 * shk__tl_check walks a list read-only, at most cap steps, and gives its
 * length in *len.  The walk counts only when the head word did not change
 * during it (then no push or pop succeeded, and links of listed nodes are
 * not written while listed).  Returns 0, SHK_ECORRUPT (index out of range,
 * or a cycle in a stable walk), or SHK_EAGAIN when the list kept changing
 * (live and busy: nothing can be concluded).  If mark is not NULL, it is
 * called for each listed index; it returns nonzero to flag corruption.
 */
SHK_HIDDEN int shk__tl_check(_Atomic uint64_t *head, _Atomic uint32_t *next,
			     uint32_t cap, uint32_t *len,
			     int (*mark)(void *arg, uint32_t idx), void *arg);

#define SHK__POOL_MAGIC 0x314c4f4f504b4853ull /* "SHKPOOL1" */
#define SHK__POOL_MAX_CAP ((uint64_t)1 << 31)
#define SHK__POOL_MAX_BLOCK ((uint64_t)1 << 30)
#define SHK__POOL_ALLOC 0x80000000u /* block state: allocated */

/*
 * The pool object: header (2 lines), state[cap], next[cap], padding to
 * 64 bytes, then the blocks.  state[i]: 0 = free, else SHK__POOL_ALLOC |
 * the allocating handle's owner stamp (informational, for tools).
 */
struct shk__pool_hdr {
	uint64_t magic;
	uint64_t cap;
	uint64_t block_len;
	uint64_t state_off; /* from the object start */
	uint64_t next_off;
	uint64_t blocks_off;
	uint64_t reserved[2];
	_Atomic uint64_t head; /* free list, own line */
	uint8_t pad[56];
};
_Static_assert(sizeof(struct shk__pool_hdr) == 128, "pool header size");
_Static_assert(offsetof(struct shk__pool_hdr, head) == 64,
	       "pool head on its own line");

struct shk_pool {
	shk_seg *seg;
	struct shk__pool_hdr *hdr;
	_Atomic uint32_t *state;
	_Atomic uint32_t *next;
	uint8_t *blocks;
	uint64_t blocks_seg_off; /* blocks' offset from the segment base */
	uint64_t cap;
	uint64_t block_len;
	uint64_t type_id;
	uint32_t stamp;
};

#endif /* SHK_POOL_H */
