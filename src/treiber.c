/*
 * treiber.c - the tagged Treiber list of 32-bit indices (treiber.h) that
 * pool.c and stack.c build on (ALGORITHMS.md §3).
 *
 * Shared words
 *   head      {tag:32 | index:32}; CASed by poppers (shk__tl_pop) and
 *             pushers (shk__tl_push); each success increments the tag.
 *   next[i]   link of node i; written only by the party that holds node i
 *             (off the list), before the CAS that pushes it.
 *
 * Invariants: indices on a list are < cap, a list has at most cap nodes
 * (walks stop there); the links of listed nodes are not written while
 * they are listed, so a walk during which head did not change saw one
 * consistent list.  A stale pop (head changed since its load) fails on
 * the tag unless 2^32 operations passed in between.
 *
 * Happens-before: the pusher's writes to the node and next[idx] -> its
 * release CAS on head -> the acquire load/CAS of the popper that takes
 * idx -> its reads of the node.  For walkers (shk__tl_check, stack.c's
 * walk_both): the take of a node (the CAS that popped it) -> the holder's
 * release store of its new link -> a walker that read that link -> the
 * walker's acquire fence -> its re-load of head, which therefore sees the
 * head changed (a seqlock with the head as sequence word).
 *
 * Killed mid-operation: a pop or push is a single CAS, so the list is
 * always consistent; a party killed while holding a node (after its pop,
 * before the matching push) leaks that node.  The callers say what such
 * a leak means for them (pool.c, stack.c).
 */
#include "treiber.h"

int
shk__tl_check(_Atomic uint64_t *head, _Atomic uint32_t *next, uint32_t cap,
	      uint32_t *len, int (*mark)(void *arg, uint32_t idx), void *arg)
{
	int tries, bad;

	for (tries = 0; tries < 8; tries++) {
		/* acquire: pairs with the release CAS in shk__tl_push() */
		uint64_t h0 = atomic_load_explicit(head, memory_order_acquire);
		uint32_t idx = SHK__TL_IDX(h0), n = 0;

		bad = 0;
		while (idx != SHK__TL_NIL) {
			if (idx >= cap)
				return SHK_ECORRUPT;
			if (n++ >= cap || (mark && mark(arg, idx))) {
				bad = 1;
				break;
			}
			/* relaxed: the head re-check below validates */
			idx = atomic_load_explicit(&next[idx],
						   memory_order_relaxed);
		}
		/* acquire fence: orders the link (and mark) loads above
		 * before the re-load of head (an acquire load would order
		 * only what follows it).  Pairs with the release store of
		 * the link in shk__tl_push() (and, for the pool's mark, the
		 * release state CAS of shk_pool_alloc()): a link or mark
		 * written by a party that took the node after h0 makes the
		 * re-load see a newer head (Boehm's seqlock reader, as
		 * read_slot() in map.c).  TSan ignores the fence; every
		 * access it orders is atomic, so no race is reported. */
		atomic_thread_fence(memory_order_acquire);
		/* relaxed: ordered by the fence */
		if (atomic_load_explicit(head, memory_order_relaxed) == h0) {
			if (bad)
				return SHK_ECORRUPT;
			*len = n;
			return 0;
		}
	}
	return SHK_EAGAIN;
}

void
shk__tl_init(_Atomic uint64_t *head, _Atomic uint32_t *next, uint64_t cap)
{
	uint64_t i;

	/* relaxed: published by the registry's release store of READY */
	for (i = 0; i < cap; i++)
		atomic_store_explicit(
			&next[i], i + 1 < cap ? (uint32_t)(i + 1) : SHK__TL_NIL,
			memory_order_relaxed);
	/* relaxed: as above */
	atomic_store_explicit(head, SHK__TL_WORD(cap ? 0 : SHK__TL_NIL, 0),
			      memory_order_relaxed);
}
