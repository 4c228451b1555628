/*
 * stack.h - bounded lock-free LIFO of fixed-size elements over a node
 * array (stack.c; ALGORITHMS.md §3).
 */
#ifndef SHK_STACK_H
#define SHK_STACK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "treiber.h"
#include "segment.h"
#include "wait.h"

/*
 * Two layouts, named by the magic; both are read, new stacks get the
 * second.  SKSTACK1 keeps the element count in `depth`, one relaxed atomic
 * add per push and per pop.  SKSTACK2 has no counter: a depth[cap] array
 * follows next[], and a pusher stores in its node the depth the stack has
 * once that node is on top (stack.c, top_push).  An older library refuses
 * SKSTACK2 (SHK_ECORRUPT) rather than misread its layout.
 */
#define SHK__STACK_MAGIC 0x314b434154534b53ull  /* "SKSTACK1" */
#define SHK__STACK_MAGIC2 0x324b434154534b53ull /* "SKSTACK2" */
#define SHK__STACK_MAX_CAP ((uint64_t)1 << 24)
#define SHK__STACK_MAX_ELEM (1u << 20)

/*
 * The stack object: this header, next[cap] (32-bit links shared by both
 * lists), in SKSTACK2 depth[cap] (32-bit), padding to 64, then cap nodes of
 * node_len bytes (the element, rounded up to 8).  top and free are tagged
 * list heads (treiber.h).
 */
struct shk__stack_hdr {
	uint64_t magic;
	uint64_t cap;
	uint32_t elem_len;
	uint32_t node_len;
	uint64_t next_off; /* from the object start */
	uint64_t nodes_off;
	uint64_t reserved[3];
	_Atomic uint64_t top;  /* the stack */
	_Atomic int64_t depth; /* SKSTACK1: approximate element count */
	uint8_t pad1[48];
	_Atomic uint64_t free; /* unused nodes */
	uint8_t pad2[56];
	shk__waitpoint not_empty;
	shk__waitpoint not_full;
};
_Static_assert(sizeof(struct shk__stack_hdr) == 320, "stack header size");
_Static_assert(offsetof(struct shk__stack_hdr, top) == 64, "top line");
_Static_assert(offsetof(struct shk__stack_hdr, free) == 128, "free line");

struct shk_stack {
	shk_seg *seg;
	struct shk__stack_hdr *hdr;
	_Atomic uint32_t *next;
	_Atomic uint32_t *ndepth; /* SKSTACK2: depth[]; NULL in SKSTACK1 */
	uint8_t *nodes;
	uint64_t cap;
	uint32_t elem_len;
	uint32_t node_len;
	uint64_t type_id;
};

#ifdef SHK_TEST_HOOKS
/* Tests: non-zero makes new stacks SKSTACK1 (as earlier versions did). */
SHK_HIDDEN extern int shk__stack_create_v1;
/* Tests: called in an SKSTACK2 push after it read the top's depth entry
 * and before its CAS (the test changes the stack there). */
SHK_HIDDEN extern void (*shk__stack_cas_hook)(void);
#endif

/* Registry callbacks (registry.c calls them through weak symbols). */
SHK_HIDDEN int shk__kind_check_stack(shk_seg *seg, void *mem,
				     const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_stack(shk_seg *seg, void *mem,
					const shk_obj_info *info, char *buf,
					size_t len);
SHK_HIDDEN int shk__kind_busy_stack(shk_seg *seg, void *mem,
				    const shk_obj_info *info);

#endif /* SHK_STACK_H */
