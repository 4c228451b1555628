/*
 * pool.h - fixed-size block pool (pool.c) over the tagged Treiber list of
 * 32-bit indices in treiber.h (ALGORITHMS.md §3).
 */
#ifndef SHK_POOL_H
#define SHK_POOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"
#include "treiber.h"

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

/* Registry callbacks (registry.c calls them through weak symbols). */
SHK_HIDDEN int shk__kind_check_pool(shk_seg *seg, void *mem,
				    const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_pool(shk_seg *seg, void *mem,
				       const shk_obj_info *info, char *buf,
				       size_t len);

#endif /* SHK_POOL_H */
