/*
 * queue.h - the bounded MPMC queue's shared layout and process-local
 * handle (ALGORITHMS.md §2; queue.c has the protocol).
 */
#ifndef SHK_QUEUE_H
#define SHK_QUEUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "endpoint.h"
#include "segment.h"
#include "wait.h"

#define SHK__QUEUE_MAGIC 0x3145555155514b53ull /* "SKQUQUE1" */
#define SHK__QUEUE_MAX_ELEM (1u << 20)
#define SHK__QUEUE_MAX_CAP ((uint64_t)1 << 31)
#define SHK__QUEUE_STUCK_NS 10000000 /* T: 10 ms on one claim */

/*
 * Cell control word: pos:40 (bits 24-63) | state:3 (bits 21-23) |
 * owner:21 (bits 0-20).  pos is the free-running position truncated to 40
 * bits; positions are compared by their 40-bit signed difference.  owner is
 * a compressed owner stamp, attach slot:10 | generation mod 2^11 (see
 * queue.c, "false alive").
 */
enum shk__qcell_state {
	SHK__QC_FREE = 0,
	SHK__QC_WRITING = 1,
	SHK__QC_FULL = 2,
	SHK__QC_READING = 3,
	SHK__QC_SKIP = 4,
	SHK__QC_KEPT = 5, /* READING, recorded by a keeper (queue.c) */
};
#define SHK__QC_POS_SHIFT 24
#define SHK__QC_ST_SHIFT 21
#define SHK__QC_OWN_BITS 21
#define SHK__QC_OWN_MASK ((1u << SHK__QC_OWN_BITS) - 1)
#define SHK__QC_GEN_BITS 11
#define SHK__QC_GEN_MASK ((1u << SHK__QC_GEN_BITS) - 1)
#define SHK__QC_WORD(pos, st, own)                                             \
	(((uint64_t)(pos) << SHK__QC_POS_SHIFT) |                              \
	 ((uint64_t)(st) << SHK__QC_ST_SHIFT) | (uint64_t)(own))
#define SHK__QC_POS(w) ((uint64_t)(w) >> SHK__QC_POS_SHIFT)
#define SHK__QC_ST(w) ((uint32_t)((w) >> SHK__QC_ST_SHIFT) & 7u)
#define SHK__QC_OWN(w) ((uint32_t)(w)&SHK__QC_OWN_MASK)

/* The queue object's header; cells follow at SHK__QUEUE_HDR_LEN. */
struct shk__queue_hdr {
	/* line 0: immutable after creation (plus the rarely written lost) */
	uint64_t magic;
	uint64_t cap;
	uint32_t elem_len;
	uint32_t cell_len; /* 8 + elem_len rounded up to 8 */
	uint64_t reserved0[4];
	_Atomic uint64_t lost; /* elements lost to dead producers/consumers */
	/* line 1: written by producers */
	_Atomic uint64_t enqueue_pos;
	uint8_t pad1[56];
	/* line 2: written by consumers */
	_Atomic uint64_t dequeue_pos;
	uint8_t pad2[56];
	/* lines 3-4: consumers sleep on not_empty, producers on not_full */
	shk__waitpoint not_empty;
	shk__waitpoint not_full;
};
#define SHK__QUEUE_HDR_LEN 320u
_Static_assert(sizeof(struct shk__queue_hdr) == SHK__QUEUE_HDR_LEN,
	       "queue header size");
_Static_assert(offsetof(struct shk__queue_hdr, enqueue_pos) == 64,
	       "enqueue_pos on its own line");
_Static_assert(offsetof(struct shk__queue_hdr, dequeue_pos) == 128,
	       "dequeue_pos on its own line");
_Static_assert(offsetof(struct shk__queue_hdr, not_empty) == 192,
	       "waitpoints on their own lines");

/* One cell: the control word, then the element. */
struct shk__queue_cell {
	_Atomic uint64_t ctl;
	uint8_t data[];
};

/* Where this handle last saw a claim blocking it, for dead-owner tests. */
struct shk__qstuck {
	_Atomic uint64_t word;
	_Atomic int64_t since_ns;
};

struct shk_queue {
	shk_seg *seg;
	struct shk__queue_hdr *hdr;
	uint8_t *cells;
	uint64_t cap;
	uint64_t mask;
	uint32_t elem_len;
	uint32_t cell_len;
	uint32_t owner; /* compressed owner stamp of this handle */
	uint32_t reserved;
	uint64_t type_id;
	struct shk__qstuck push_stuck;
	struct shk__qstuck pop_stuck;
	struct shk__pollfd pf; /* not_empty listener (shk_queue_fd) */
};

/* Byte length of a queue object of cap cells of cell_len bytes; 0 when it
 * overflows. */
static inline uint64_t
shk__queue_obj_len(uint64_t cap, uint32_t cell_len)
{
	if (cap > (UINT64_MAX - SHK__QUEUE_HDR_LEN) / cell_len)
		return 0;
	return SHK__QUEUE_HDR_LEN + cap * cell_len;
}

/*
 * A consumer that must record what it takes before the queue lets go of
 * it (a channel's puller, whose held table names the heap block that the
 * element refers to: chan.c).  After copying the element, the pop turns
 * its claim (READING, own stamp) into KEPT and then calls keep(arg, elem),
 * before the CAS that frees the cell and before any wake-up system call.
 * A consumer killed with its claim READING has recorded nothing: a
 * producer delivers the element again (queue.c, "Dead parties").  Killed
 * KEPT, it may have recorded the element: the repair drops the cell
 * (counting one loss) and never delivers it again, so the record alone
 * owns it; a kill between the KEPT CAS and the record leaves the element
 * to nobody (a few instructions, no system call).  keep() must not block
 * or call into the queue.
 */
struct shk__queue_keeper {
	void (*keep)(void *arg, const void *elem);
	void *arg;
};

/* shk_queue_pop() with a keeper (NULL: shk_queue_pop() itself). */
SHK_HIDDEN int shk__queue_pop_keep(shk_queue *q, void *elem, int64_t timeout_ns,
				   const struct shk__queue_keeper *keeper);

#ifdef SHK_TEST_HOOKS
/* Tests: called at each crash point of queue.c (for SIGSTOP tests). */
SHK_HIDDEN extern void (*shk__queue_test_hook)(const char *point);
#endif

#endif /* SHK_QUEUE_H */
