/*
 * bcast.h - shared layout of the one-writer, many-reader broadcast buffer
 * (DESIGN §5, ALGORITHMS §5).  bcast.c has the protocol comment.
 */
#ifndef SHK_BCAST_H
#define SHK_BCAST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"
#include "wait.h"

#define SHK__BCAST_MAGIC 0x3154534143422453ull /* "S$BCAST1" */
#define SHK__BCAST_MIN_CAP 128u
#define SHK__BCAST_MAX_CAP ((uint64_t)1 << 32)
#define SHK__BCAST_DEFAULT_CAP 65536u
#define SHK__BCAST_DEFAULT_READERS 16u
#define SHK__BCAST_MAX_READERS 1024u

/*
 * Records in the data area: a DATA record is {u32 len; u32 type; u64 seq}
 * + payload padded to 8 bytes; a PAD record ({u32 len; u32 type}, 8 bytes
 * or more) fills the end of the area when the next record does not fit.
 */
#define SHK__BREC_HDR 16u
#define SHK__BREC_DATA 0x42u /* 'B' */
#define SHK__BREC_PAD 0x50u  /* 'P' */

/* Reader slot word: state (bits 30-31) | owner stamp (bits 0-29). */
#define SHK__BSLOT_FREE 0u
#define SHK__BSLOT_ACTIVE 1u
#define SHK__BSLOT_DEAD 2u
#define SHK__BSLOT_STATE(w) ((uint32_t)(w) >> 30)
#define SHK__BSLOT_STAMP(w) ((uint32_t)(w)&SHK__STAMP_MASK)
#define SHK__BSLOT_WORD(st, stamp)                                             \
	(((uint32_t)(st) << 30) | ((uint32_t)(stamp)&SHK__STAMP_MASK))

/* One reader's slot, on its own line: written by that reader (cursor,
 * claim, release) and by the writer only to mark a dead owner DEAD. */
struct shk__bcast_slot {
	_Atomic uint32_t word;
	uint32_t reserved0;
	_Atomic uint64_t cursor; /* next byte position the reader reads */
	uint64_t reserved[6];
};
_Static_assert(sizeof(struct shk__bcast_slot) == 64, "slot is one line");

struct shk__bcast_hdr {
	/* line 0: immutable after creation */
	uint64_t magic;
	uint64_t cap;        /* data bytes, power of two */
	uint32_t max_record; /* payload bytes, <= cap/2 - 16 */
	uint32_t mode;       /* SHK_BCAST_LOSSY or SHK_BCAST_RELIABLE */
	uint32_t max_readers;
	uint32_t reserved0;
	uint64_t slots_off; /* SHK__BCAST_SLOTS_OFF, from the object start */
	uint64_t data_off;  /* slots_off + 64 * max_readers */
	uint64_t reserved1[2];
	/* line 1: written by the writer */
	_Atomic uint64_t tail_intent; /* end of the record being written */
	_Atomic uint64_t tail;        /* end of the last complete record */
	_Atomic uint64_t latest;      /* start of the last complete record */
	_Atomic uint64_t next_seq;    /* records written so far */
	_Atomic uint64_t pub_gen;     /* odd while tail/next_seq change */
	uint64_t pad1[3];
	/* line 2: the writer's owner stamp */
	_Atomic uint32_t writer_stamp;
	uint32_t pad2[15];
	/* line 3: readers sleep here waiting for data */
	shk__waitpoint data_wp;
	/* line 4: a reliable writer sleeps here waiting for readers */
	shk__waitpoint space_wp;
};
#define SHK__BCAST_SLOTS_OFF 320u
_Static_assert(sizeof(struct shk__bcast_hdr) == SHK__BCAST_SLOTS_OFF,
	       "bcast control block is 5 lines");
_Static_assert(offsetof(struct shk__bcast_hdr, tail_intent) == 64,
	       "writer line");
_Static_assert(offsetof(struct shk__bcast_hdr, writer_stamp) == 128,
	       "stamp line");
_Static_assert(offsetof(struct shk__bcast_hdr, data_wp) == 192, "data wp");
_Static_assert(offsetof(struct shk__bcast_hdr, space_wp) == 256, "space wp");

/* Registry callbacks (registry.c calls them through weak symbols). */
SHK_HIDDEN int shk__kind_check_bcast(shk_seg *seg, void *mem,
				     const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_bcast(shk_seg *seg, void *mem,
					const shk_obj_info *info, char *buf,
					size_t len);
SHK_HIDDEN int shk__kind_busy_bcast(shk_seg *seg, void *mem,
				    const shk_obj_info *info);

#ifdef SHK_TEST_HOOKS
/* Tests: how many laps a read survives before SHK_EAGAIN (MAX_LAPS). */
SHK_HIDDEN extern int shk__bcast_test_max_laps;
#endif

#endif /* SHK_BCAST_H */
