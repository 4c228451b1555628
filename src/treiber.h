/*
 * treiber.h - the tagged Treiber list of 32-bit indices shared by pool.c
 * (the free list of blocks) and stack.c (the stack and its free list of
 * nodes); treiber.c has the protocol comment (ALGORITHMS.md §3).
 */
#ifndef SHK_TREIBER_H
#define SHK_TREIBER_H

#include <stdatomic.h>
#include <stdint.h>

#include "platform.h"

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
	unsigned spins = 0;

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
		shk__cas_backoff(&spins);
	}
}

/* shk__tl_push links idx (< cap, owned by the caller) onto the list. */
static inline void
shk__tl_push(_Atomic uint64_t *head, _Atomic uint32_t *next, uint32_t idx)
{
	/* relaxed: the CAS below is the linearization point */
	uint64_t h = atomic_load_explicit(head, memory_order_relaxed);
	unsigned spins = 0;

	for (;;) {
		/* release: our take of idx (the CAS that popped it, or for
		 * the pool the allocator's, which shk_pool_free acquires
		 * through the state word) happens before any walker that
		 * reads this link and then fences (shk__tl_check(), stack.c
		 * walk_both()): it sees the head changed and drops the walk.
		 * Poppers get the link from the release CAS below.  Free on
		 * x86-64 (a plain store) */
		atomic_store_explicit(&next[idx], SHK__TL_IDX(h),
				      memory_order_release);
		/* release: publishes next[idx] and whatever the caller wrote
		 * into the node; pairs with the acquire in shk__tl_pop().
		 * seq_cst (a superset): callers that wake sleepers after a
		 * push use it as the waker's fence (shk__wake_sc, wait.h);
		 * on x86-64 it is the same locked instruction */
		if (atomic_compare_exchange_weak_explicit(
			    head, &h, SHK__TL_WORD(idx, SHK__TL_TAG(h) + 1),
			    memory_order_seq_cst, memory_order_relaxed))
			return;
		shk__cas_backoff(&spins);
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

/*
 * shk__tl_init, for a new object only: links next[0..cap-1] into one list
 * in index order and points head at it (tag 0); cap 0 leaves head empty.
 * Relaxed stores: the registry's release store of READY publishes them.
 */
SHK_HIDDEN void shk__tl_init(_Atomic uint64_t *head, _Atomic uint32_t *next,
			     uint64_t cap);

#endif /* SHK_TREIBER_H */
