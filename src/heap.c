/*
 * heap.c - PLACEHOLDER bump allocator so the foundation links while the
 * real allocator (issue 2, ALGORITHMS.md §4) is written.  Replaced whole.
 */
#include "heap.h"

#include <string.h>

#include "lock.h"

struct heap_hdr {
	_Atomic uint32_t lock;
	uint32_t pad;
	_Atomic uint64_t top;
	_Atomic uint64_t used;
	_Atomic uint64_t nallocs;
};

static struct heap_hdr *
hh(shk_seg *seg)
{
	return (struct heap_hdr *)(seg->base + seg->heap_off);
}

int
shk__heap_init(uint8_t *base, uint64_t heap_off, uint64_t heap_len)
{
	struct heap_hdr *h = (void *)(base + heap_off);

	if (heap_len < SHK__HEAP_MIN_LEN)
		return SHK_EINVAL;
	atomic_store_explicit(&h->top, 4096, memory_order_relaxed);
	return 0;
}

int
shk__heap_attach(shk_seg *seg)
{
	(void)seg;
	return 0;
}

void
shk__heap_detach(shk_seg *seg)
{
	(void)seg;
}

int
shk__heap_alloc_aligned(shk_seg *seg, uint64_t len, uint64_t align,
			uint64_t *off)
{
	struct heap_hdr *h = hh(seg);
	uint64_t t, n;

	if (!len || !off)
		return SHK_EINVAL;
	t = atomic_load_explicit(&h->top, memory_order_relaxed);
	do {
		n = (t + 16 + align - 1) & ~(align - 1);
		if (n + len > seg->heap_len)
			return SHK_ENOMEM;
	} while (!atomic_compare_exchange_weak_explicit(
		&h->top, &t, n + len, memory_order_relaxed,
		memory_order_relaxed));
	*off = seg->heap_off + n;
	atomic_fetch_add_explicit(&h->used, len, memory_order_relaxed);
	return 0;
}

int
shk_alloc(shk_seg *seg, size_t len, uint64_t *off)
{
	if (!seg)
		return SHK_EINVAL;
	return shk__heap_alloc_aligned(seg, len, 16, off);
}

int
shk_free(shk_seg *seg, uint64_t off)
{
	if (!seg || off < seg->heap_off || off >= seg->heap_off + seg->heap_len)
		return SHK_EINVAL;
	return 0;
}

int
shk_heap_info(shk_seg *seg, shk_heap_stats *st)
{
	if (!seg || !st || st->size < sizeof(*st))
		return SHK_EINVAL;
	st->heap_len = seg->heap_len;
	st->used = atomic_load_explicit(&hh(seg)->used, memory_order_relaxed);
	st->free = seg->heap_len - st->used;
	return 0;
}

int
shk__heap_check(shk_seg *seg)
{
	(void)seg;
	return 0;
}
