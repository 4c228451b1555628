/*
 * heap.h - the shared allocator inside a segment (ALGORITHMS.md §4).
 * The heap owns the region [seg->heap_off, seg->heap_off + seg->heap_len);
 * its own header sits at the start of that region.
 */
#ifndef SHK_HEAP_H
#define SHK_HEAP_H

#include <stdint.h>
#include <stddef.h>

#include "platform.h"
#include "segment.h"

/*
 * shk__heap_init formats the heap region of a segment being created (the
 * memory is zero-filled; only the creator calls this, before READY).
 * base: the segment base; heap_off/heap_len: the region (page aligned).
 * Returns 0 or SHK_EINVAL (region too small).
 */
SHK_HIDDEN int shk__heap_init(uint8_t *base, uint64_t heap_off,
			      uint64_t heap_len);

/*
 * shk__heap_attach / shk__heap_detach set up and free per-handle heap state
 * (seg->heap_local), after the segment is validated.  Validates the heap
 * header: SHK_ECORRUPT when it is out of bounds.
 */
SHK_HIDDEN int shk__heap_attach(shk_seg *seg);
SHK_HIDDEN void shk__heap_detach(shk_seg *seg);

/*
 * shk__heap_alloc_aligned allocates len bytes aligned to align (a power of
 * two, at most 4096) and returns the offset; used by the registry for
 * objects (align 64).  Codes as shk_alloc.
 */
SHK_HIDDEN int shk__heap_alloc_aligned(shk_seg *seg, uint64_t len,
				       uint64_t align, uint64_t *off);

/*
 * shk__heap_check walks the heap's structures read-only: 0 or SHK_ECORRUPT.
 * Safe on a heap in use (lock-protected parts are read seqlock-style and
 * re-walked when they changed; a heap too busy to walk is not judged).
 * While a dead process holds the heap lock, only the block chain and the
 * free lists are judged, not the bins.  Works on SHK_RDONLY handles.
 */
SHK_HIDDEN int shk__heap_check(shk_seg *seg);

/*
 * shk__heap_block_check: 0 when off is the payload start of a live (handed
 * out) block of the heap with room for len bytes, SHK_ECORRUPT when it is
 * not (a free block, the middle of one, a run, heap metadata).  Read-only,
 * without the lock: judged on a view no live heap lock holder changed, as
 * shk__heap_check; a heap too busy for one is not judged (0).  *waits
 * (start at 0) bounds the waits for lock holders over a series of calls.
 * The caller must re-validate a failure against whatever told it that off
 * was live (the block may have been freed meanwhile).
 */
SHK_HIDDEN int shk__heap_block_check(shk_seg *seg, uint64_t off, uint64_t len,
				     int *waits);

/* What shk__heap_scan counted (block counts unless named bytes). */
struct shk__heap_report {
	uint64_t runs;             /* small-block runs */
	uint64_t small_live;       /* small blocks in state ALLOC */
	uint64_t small_listed;     /* small blocks on a class free list */
	uint64_t small_lost;       /* carved or freed but on no list: a
				    * death mid-alloc/free (leaked) */
	uint64_t small_cached;     /* small blocks in a magazine (CACHED) */
	uint64_t mags;             /* magazines (one per attach slot that
				    * ever freed a small block) */
	uint64_t mag_orphans;      /* magazine blocks no slot names: a
				    * death in their setup (repair() frees
				    * them) */
	uint64_t large_live;       /* large blocks in use */
	uint64_t large_used;       /* ... their bytes, headers included */
	uint64_t large_cached;     /* large blocks in a large cache (F_LC) */
	uint64_t large_free_bytes; /* bytes in free large blocks */
	uint64_t dead_owner;       /* live blocks (small and large) whose
				    * allocating handle is closed or whose
				    * process died: leaked unless the program
				    * still reaches them */
};

/*
 * shk__heap_scan is shk__heap_check that also fills *rep (may be NULL; the
 * owner test makes system calls, once per distinct owner, only then).
 */
SHK_HIDDEN int shk__heap_scan(shk_seg *seg, struct shk__heap_report *rep);

/*
 * shk__heap_reclaim drains the magazines of dead or closed handles (their
 * blocks go back to the class lists).  Returns how many it drained,
 * SHK_EPERM on a SHK_RDONLY handle, SHK_EINVAL.  Also done when a slot's
 * new owner first allocates, and when a small allocation finds no room.
 */
SHK_HIDDEN int shk__heap_reclaim(shk_seg *seg);

/*
 * shk__heap_warm sets up the calling thread's magazine now (as its first
 * free would: under the heap lock, with system calls), so that a later
 * free by this thread makes no system call before the block leaves
 * ALLOC (a channel's puller: a kill between its held entry's clear and
 * that moment leaks the block, chan.c).  0; SHK_EAGAIN when another
 * thread of the process owns the handle's magazine or none could be
 * carved (frees then take the shared path, also without set-up);
 * SHK_EPERM on a SHK_RDONLY handle; SHK_EINVAL.
 */
SHK_HIDDEN int shk__heap_warm(shk_seg *seg);

/*
 * shk__heap_lock_dl bounds the heap lock's wait on this thread: 0 (the
 * default) waits the heap's full 10 s for a live holder; an absolute
 * CLOCK_MONOTONIC deadline waits until then, but at least 2 ms and at
 * most the 10 s, and the call that found the lock held fails as it does
 * after the 10 s (shk_alloc: SHK_ETIMEDOUT; shk__heap_warm: SHK_EAGAIN,
 * and the next call tries the set-up again).  A channel call with a
 * timeout sets it around its allocation and its warm-up, and restores it
 * (chan.c, blk_alloc_dl()), so that a holder stopped in its critical section
 * (a debugger, SIGSTOP) does not hold the call 10 s whatever its timeout.
 * A large free (shk__heap_large_free) ignores it (shk__heap_lock_full):
 * a free that gave up would leak its block.  The other lock takes an
 * allocation can make (a large-cache eviction, a magazine retire or
 * set-up) read it, and give up without losing a block: they only
 * postpone.  It bounds the heap lock's wait, not the wait for the
 * process-local mutex in front of it: another thread of the same segment
 * handle inside a full 10 s wait holds that (channel handles are used by
 * one thread at a time, docs/chan.md).
 */
extern _Thread_local int64_t shk__heap_lock_dl SHK__TLS_IE;

/*
 * shk__heap_set_tags sets the ABA tag of every class's free-list head to
 * tag, keeping the list (tests: tags about to wrap).  Quiescent heap only.
 */
SHK_HIDDEN void shk__heap_set_tags(shk_seg *seg, uint32_t tag);

/*
 * Test hooks for forging metadata: shk__heap_cur_run_word returns the
 * cur_run word of the size class that serves len bytes (NULL when len is
 * not a small size); shk__heap_mag_slot_word returns the heap header's
 * magazine slot word of seg's attach slot (NULL when it has none);
 * shk__heap_forge_hdr writes a block header word with a valid check at
 * chain offset h.
 */
SHK_HIDDEN _Atomic uint64_t *shk__heap_cur_run_word(shk_seg *seg, uint64_t len);
SHK_HIDDEN _Atomic uint64_t *shk__heap_mag_slot_word(shk_seg *seg);
SHK_HIDDEN void shk__heap_forge_hdr(shk_seg *seg, uint64_t h, uint64_t size,
				    uint32_t flags);
/* shk__heap_pagemap_word returns the page map entry of page (run) number
 * page, and *npages the map's length; page npages is the word just past
 * the map, in the zero padding before the block chain (NULL beyond it). */
SHK_HIDDEN _Atomic uint32_t *shk__heap_pagemap_word(shk_seg *seg, uint64_t page,
						    uint64_t *npages);

/*
 * shk__heap_max_alloc returns the largest len that shk_alloc could hand out
 * from this heap if it were empty (one large block spanning the block
 * chain), 0 for a handle without a heap: a larger request can never
 * succeed, whatever is freed (chan.c does not wait for it).
 */
SHK_HIDDEN uint64_t shk__heap_max_alloc(shk_seg *seg);

#ifdef SHK_TEST_HOOKS
/* Tests: runs this process gave back to the large allocator. */
SHK_HIDDEN extern _Atomic uint64_t shk__heap_runs_given;
/* Tests: called by the repair after a dead lock holder between its chain
 * walk and its rebuild of the bins (the test scribbles there, as a peer
 * could). */
SHK_HIDDEN extern void (*shk__heap_repair_hook)(shk_seg *seg);
#endif

/* Minimum heap region, so segment creation can refuse tiny sizes. */
#define SHK__HEAP_MIN_LEN ((uint64_t)32 << 10)

#endif /* SHK_HEAP_H */
