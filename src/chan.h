/*
 * chan.h - shared layout of a channel's control block (DESIGN §7;
 * docs/chan.md).  chan.c has the protocol comment.
 *
 * A channel is the registry object CHANNEL (kind SHK_KIND_CHAN, elem_len =
 * the pattern, cap = the geometry's cap) whose memory is this immutable
 * control block, plus parts named after it: CHANNEL.ab and CHANNEL.ba
 * (pair rings: A produces .ab and consumes .ba), CHANNEL.log (pub/sub
 * bcast), CHANNEL.q (push/pull queue of struct shk__chan_ref).  Parts carry
 * the type id SHK__CHAN_PART_TYPE.  A push/pull control block is followed
 * by its table of held messages (struct shk__chan_held, ctl.held entries),
 * the one mutable part of the object.
 */
#ifndef SHK_CHAN_H
#define SHK_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "registry.h"
#include "segment.h"

#define SHK__CHAN_MAGIC 0x314e414843b44b53ull /* "SK\xb4CHAN1" */
/* 2: push/pull control blocks carry the held table (2026-11-25) */
#define SHK__CHAN_VERSION 2u
#define SHK__CHAN_PART_TYPE 0x7472617068636b73ull /* "skchpart" */
#define SHK__CHAN_BLK_MAGIC 0x4b4c4243u           /* "CBLK" */

/* The control block: written once by the creator inside the registry's
 * CREATING window (so never seen half-written), immutable afterwards (the
 * held table after it is not part of it). */
struct shk__chan_ctl {
	uint64_t magic;
	uint32_t version;
	uint32_t pattern;    /* SHK_CHAN_PAIR, _PUBSUB, _PUSHPULL */
	uint64_t cap;        /* ring bytes, log bytes or queue slots */
	uint64_t max_msg;    /* largest message */
	uint64_t inline_max; /* pair: largest inline; pubsub max_msg; 0 */
	uint32_t mode;       /* pubsub: SHK_BCAST_*; else 0 */
	uint32_t max_subs;   /* pubsub: reader slots; else 0 */
	uint32_t tag;        /* nonzero; stamped into each heap block */
	uint32_t held;       /* push/pull: SHK__CHAN_HELD; else 0 */
	uint64_t reserved;
};
_Static_assert(sizeof(struct shk__chan_ctl) == 64, "chan control block");

/* Framing of a pair ring record: 16 bytes then the payload (inline), or
 * 24 bytes naming a heap block (heap; check = shk__chan_check()). */
#define SHK__CHAN_FR_INLINE 0x49u /* 'I' */
#define SHK__CHAN_FR_HEAP 0x48u   /* 'H' */
struct shk__chan_frame {
	uint32_t kind;
	uint32_t check;
	uint64_t len;
	uint64_t off;
};
#define SHK__CHAN_FR_INLINE_LEN 16u
#define SHK__CHAN_FR_HEAP_LEN 24u
_Static_assert(sizeof(struct shk__chan_frame) == 24, "chan frame");

/* A push/pull queue element: a heap block reference. */
struct shk__chan_ref {
	uint64_t off;
	uint64_t len;
	uint64_t check;
};
_Static_assert(sizeof(struct shk__chan_ref) == 24, "chan ref");

/*
 * The held table of a push/pull channel (chan.c, "Held messages"): one
 * entry per message a puller holds, so that the block of a puller that
 * died holding it is freed by a survivor.  SHK__CHAN_HELD entries of 16
 * bytes follow the control block.  w = state:2 | owner stamp:30 | tag:32
 * (the tag counts the entry's reservations, against ABA); off names the
 * block while the state is HELD or RECL.
 */
#define SHK__CHAN_HELD 256u
#define SHK__HELD_FREE 0u /* nobody's */
#define SHK__HELD_RSVD 1u /* reserved by the stamp's puller, no block yet */
#define SHK__HELD_HELD 2u /* the stamp's puller holds the block at off */
#define SHK__HELD_RECL 3u /* the stamp's reclaimer is freeing off */
#define SHK__HELD_W(st, stamp, tag)                                            \
	(((uint64_t)(st) << 62) |                                              \
	 ((uint64_t)((stamp)&SHK__STAMP_MASK) << 32) |                         \
	 (uint64_t)(uint32_t)(tag))
#define SHK__HELD_ST(w) ((uint32_t)((w) >> 62))
#define SHK__HELD_STAMP(w) ((uint32_t)((w) >> 32) & SHK__STAMP_MASK)
#define SHK__HELD_TAG(w) ((uint32_t)(w))
struct shk__chan_held {
	_Atomic uint64_t w;
	_Atomic uint64_t off;
};
_Static_assert(sizeof(struct shk__chan_held) == 16, "chan held entry");

/* The header of every message heap block (16 bytes; payload follows). */
struct shk__chan_blk {
	uint32_t magic;
	uint32_t tag;
	uint64_t len;
};
_Static_assert(sizeof(struct shk__chan_blk) == 16, "chan block header");

/* The check word of a heap reference: binds offset, length and channel. */
static inline uint64_t
shk__chan_check(uint64_t off, uint64_t len, uint32_t tag)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull ^ len * 0xc2b2ae3d27d4eb4full ^
		     ((uint64_t)tag << 17) ^ tag;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 29);
}

/* The registry's hooks for SHK_KIND_CHAN (consistency check; `shmkit
 * info` line). */
SHK_HIDDEN int shk__kind_check_chan(shk_seg *seg, void *mem,
				    const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_chan(shk_seg *seg, void *mem,
				       const shk_obj_info *info, char *buf,
				       size_t len);

/*
 * shk__chan_parts fills parts with the names (and kind, type id) that the
 * parts of channel ch may have, for every pattern: shk_obj_remove of a
 * channel's control block removes those that exist (registry.c).  Returns
 * how many (SHK__OBJ_PARTS_MAX), 0 for a name too long to have parts.
 */
SHK_HIDDEN int shk__chan_parts(const char *ch,
			       struct shk__obj_part parts[SHK__OBJ_PARTS_MAX]);

#endif /* SHK_CHAN_H */
