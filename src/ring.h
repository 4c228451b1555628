/*
 * ring.h - shared layout of the SPSC ring of variable-size records
 * (DESIGN §5, ALGORITHMS §1).  ring.c has the protocol comment.
 */
#ifndef SHK_RING_H
#define SHK_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"
#include "wait.h"

#define SHK__RING_MAGIC 0x31474e495224b453ull /* "S\xb4$RING1" */
#define SHK__RING_MIN_CAP 64u
#define SHK__RING_MAX_CAP ((uint64_t)1 << 32)
#define SHK__RING_DEFAULT_CAP 65536u

/* Ring modes (shk__ring_hdr.mode), fixed at creation. */
#define SHK__RING_MODE_SPIN 0x1u /* nobody sleeps: no wake-ups published */

/* Record header {u32 len; u32 type}, 8-byte aligned, in the data area. */
#define SHK__REC_HDR 8u
#define SHK__REC_DATA 0x52u /* 'R' */
#define SHK__REC_PAD 0x50u  /* 'P': skip to offset 0 */

/*
 * The ring's control block, at the start of the object's memory; the data
 * area (cap bytes) follows at SHK__RING_DATA_OFF.  Each line has a single
 * writer: line 0 is immutable after creation, tail belongs to the
 * producer, head to the consumer, the stamps change only at open/close,
 * and each waitpoint's counters are written by its sleepers.
 */
struct shk__ring_hdr {
	/* line 0: immutable after creation */
	uint64_t magic;
	uint64_t cap;        /* data bytes, power of two */
	uint32_t max_record; /* payload bytes, <= cap/2 - 8 */
	uint32_t mode;       /* SHK__RING_MODE_* (0 before the mode existed) */
	uint64_t data_off;   /* SHK__RING_DATA_OFF */
	uint64_t reserved1[4];
	/* line 1: written by the producer */
	_Atomic uint64_t tail; /* free-running byte count published */
	uint64_t pad1[7];
	/* line 2: written by the consumer */
	_Atomic uint64_t head; /* free-running byte count released */
	uint64_t pad2[7];
	/* line 3: role owners (owner stamps, 0 = none) */
	_Atomic uint32_t prod_stamp;
	_Atomic uint32_t cons_stamp;
	uint32_t pad3[14];
	/* line 4: the consumer sleeps here waiting for data */
	shk__waitpoint data_wp;
	/* line 5: the producer sleeps here waiting for space */
	shk__waitpoint space_wp;
};
#define SHK__RING_DATA_OFF 384u
_Static_assert(sizeof(struct shk__ring_hdr) == SHK__RING_DATA_OFF,
	       "ring control block is 6 lines");
_Static_assert(offsetof(struct shk__ring_hdr, tail) == 64, "tail line");
_Static_assert(offsetof(struct shk__ring_hdr, head) == 128, "head line");
_Static_assert(offsetof(struct shk__ring_hdr, prod_stamp) == 192, "stamp line");
_Static_assert(offsetof(struct shk__ring_hdr, data_wp) == 256, "data wp");
_Static_assert(offsetof(struct shk__ring_hdr, space_wp) == 320, "space wp");

/* Registry callbacks (registry.c calls them through weak symbols). */
SHK_HIDDEN int shk__kind_check_ring(shk_seg *seg, void *mem,
				    const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_ring(shk_seg *seg, void *mem,
				       const shk_obj_info *info, char *buf,
				       size_t len);
SHK_HIDDEN int shk__kind_busy_ring(shk_seg *seg, void *mem,
				   const shk_obj_info *info);

/*
 * Test hook: on an empty ring whose other role is not attached, moves both
 * counters to pos (8-byte aligned), so tests can start near 2^64.
 * Returns 0, SHK_EINVAL or SHK_EBUSY (not empty).
 */
SHK_HIDDEN int shk__ring_set_pos(shk_ring *r, uint64_t pos);

/*
 * shk__ring_peer_dead returns SHK_EPEERDEAD when the other role's owner
 * has died (its stamp names a dead owner), else 0: the ring's own
 * dead-peer test, for a caller that waits on something else for the ring's
 * sake (chan.c: a pair sender waiting for heap room).  Makes system calls.
 */
SHK_HIDDEN int shk__ring_peer_dead(shk_ring *r);

#endif /* SHK_RING_H */
