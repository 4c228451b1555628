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

/* shk__heap_check walks the heap's structures read-only: 0 or SHK_ECORRUPT */
SHK_HIDDEN int shk__heap_check(shk_seg *seg);

/* Minimum heap region, so segment creation can refuse tiny sizes. */
#define SHK__HEAP_MIN_LEN ((uint64_t)32 << 10)

#endif /* SHK_HEAP_H */
