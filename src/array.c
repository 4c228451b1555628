/*
 * array.c - fixed-length typed arrays (DESIGN §5).
 *
 * Protocol: the object is a 64-byte header (array.h) followed by the
 * elements.  The header is written once by the creator's init callback
 * while the registry entry is CREATING and published by the registry's
 * release store of READY; it never changes afterwards.  Openers validate
 * it against the registry entry once and keep len, elem_len and the data
 * pointer in the process-local handle (ALGORITHMS §10), so no later call
 * reads a size from shared memory.
 *
 * Elements are written by any party.  The atomic calls operate on one
 * naturally aligned 4- or 8-byte word each, which is lock-free and hence
 * address-free (platform.h), so they are atomic across processes.  Each
 * call linearises at its single atomic access: a process killed anywhere
 * leaves every element either before or after its operation, never torn,
 * and holds nothing that others wait for.
 *
 * Orders: load acquire / store release (pair with each other: a store of
 * v publishes the storer's earlier writes to a loader that reads v);
 * fetch_add and cas seq_cst (see shmkit.h for why).
 */
#include "array.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "registry.h"
#include "segment.h"

struct shk_array {
	shk_seg *seg;
	uint8_t *data;
	uint64_t len;
	uint32_t elem_len;
};

SHK_HIDDEN int shk__kind_check_array(shk_seg *seg, void *mem,
				     const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_array(shk_seg *seg, void *mem,
					const shk_obj_info *info, char *buf,
					size_t len);

static int
array_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	struct shk__array_hdr *h = mem;

	h->magic = SHK__ARRAY_MAGIC;
	h->elem_len = (uint32_t)info->elem_len;
	h->len = info->cap;
	h->data_off = SHK__ARRAY_DATA_OFF;
	return 0;
}

int
shk__kind_check_array(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	const struct shk__array_hdr *h = mem;
	uint64_t elem_len, len, data_off;

	if (info->len < SHK__ARRAY_DATA_OFF)
		return SHK_ECORRUPT;
	/* read each shared field once; compare the copies */
	elem_len = h->elem_len;
	len = h->len;
	data_off = h->data_off;
	if (h->magic != SHK__ARRAY_MAGIC || data_off != SHK__ARRAY_DATA_OFF)
		return SHK_ECORRUPT;
	if (elem_len != info->elem_len || len != info->cap)
		return SHK_ECORRUPT;
	if (elem_len == 0 || elem_len > SHK__ARRAY_MAX_ELEM || len == 0)
		return SHK_ECORRUPT;
	if (len > (info->len - SHK__ARRAY_DATA_OFF) / elem_len)
		return SHK_ECORRUPT;
	return 0;
}

int
shk__kind_describe_array(shk_seg *seg, void *mem, const shk_obj_info *info,
			 char *buf, size_t len)
{
	const struct shk__array_hdr *h = mem;
	int n;

	n = snprintf(buf, len, "len=%llu elem_len=%u bytes=%llu",
		     (unsigned long long)h->len, (unsigned)h->elem_len,
		     (unsigned long long)(h->len * h->elem_len));
	if (n < 0)
		return SHK_EINVAL;
	return (size_t)n < len ? n : (int)len - 1;
}

int
shk_array_open(shk_seg *seg, const char *name, unsigned flags,
	       const shk_array_opts *opts, shk_array **out)
{
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	shk_array_opts o = SHK_ARRAY_OPTS_INIT;
	shk_obj_info info;
	shk_array *a;
	uint64_t bytes = 0;
	void *mem;
	int rc;

	if (out)
		*out = NULL;
	if (!seg || !out)
		return SHK_EINVAL;
	/* STYLE B3 (opts.h): a shorter struct from an older caller gives
	 * the common prefix, size 0 is SHK_EINVAL */
	rc = shk__opts_copy(&o, sizeof(o), opts);
	if (rc)
		return rc;
	if (o.elem_len > SHK__ARRAY_MAX_ELEM)
		return SHK_EINVAL;
	if (o.elem_len && o.len) {
		if (o.len > (UINT64_MAX - SHK__ARRAY_DATA_OFF) / o.elem_len)
			return SHK_EINVAL;
		bytes = SHK__ARRAY_DATA_OFF + o.len * o.elem_len;
	}
	/* bytes == 0 (no size given) makes a create SHK_EINVAL in the
	 * registry, while an open still succeeds */
	want.kind = SHK_KIND_ARRAY;
	want.type_id = o.type_id;
	want.elem_len = o.elem_len;
	want.cap = o.len;
	want.align = 64;
	/* the handle before the object: a failed allocation after a
	 * creation would leave the array (and a SHK_EXCL retry SHK_EEXIST) */
	a = calloc(1, sizeof(*a));
	if (!a)
		return SHK_ENOMEM;
	rc = shk__obj_open(seg, name, flags, &want, bytes, array_init, NULL,
			   shk__kind_check_array, &info, &mem);
	if (rc) {
		free(a);
		return rc;
	}
	/* info was validated by shk__kind_check_array against the header */
	a->seg = seg;
	a->data = (uint8_t *)mem + SHK__ARRAY_DATA_OFF;
	a->len = info.cap;
	a->elem_len = (uint32_t)info.elem_len;
	/* the handle keeps the segment handle until its close */
	shk__seg_ref(seg);
	*out = a;
	return 0;
}

void
shk_array_close(shk_array *a)
{
	shk_seg *seg;

	if (!a)
		return;
	seg = a->seg;
	free(a);
	shk__seg_unref(seg);
}

void *
shk_array_data(shk_array *a)
{
	return a ? a->data : NULL;
}

uint64_t
shk_array_len(const shk_array *a)
{
	return a ? a->len : 0;
}

uint32_t
shk_array_elem_len(const shk_array *a)
{
	return a ? a->elem_len : 0;
}

/* Validates (a, idx) for an access of width bytes; returns the element. */
static int
elem(shk_array *a, uint64_t idx, uint32_t width, void **p)
{
	if (!a)
		return SHK_EINVAL;
	if (a->elem_len != width)
		return SHK_ETYPE;
	if (idx >= a->len)
		return SHK_ERANGE;
	*p = a->data + idx * width;
	return 0;
}

int
shk_array_load_u32(shk_array *a, uint64_t idx, uint32_t *out)
{
	void *p;
	int rc = out ? elem(a, idx, 4, &p) : SHK_EINVAL;

	if (rc)
		return rc;
	/* acquire: pairs with the release store in shk_array_store_u32()
	 * (or any seq_cst RMW) that wrote the value we read */
	*out = atomic_load_explicit((_Atomic uint32_t *)p,
				    memory_order_acquire);
	return 0;
}

int
shk_array_load_u64(shk_array *a, uint64_t idx, uint64_t *out)
{
	void *p;
	int rc = out ? elem(a, idx, 8, &p) : SHK_EINVAL;

	if (rc)
		return rc;
	/* acquire: pairs with the release store in shk_array_store_u64() */
	*out = atomic_load_explicit((_Atomic uint64_t *)p,
				    memory_order_acquire);
	return 0;
}

int
shk_array_store_u32(shk_array *a, uint64_t idx, uint32_t v)
{
	void *p;
	int rc = elem(a, idx, 4, &p);

	if (rc)
		return rc;
	/* release: publishes the caller's earlier writes; pairs with the
	 * acquire load in shk_array_load_u32() */
	atomic_store_explicit((_Atomic uint32_t *)p, v, memory_order_release);
	return 0;
}

int
shk_array_store_u64(shk_array *a, uint64_t idx, uint64_t v)
{
	void *p;
	int rc = elem(a, idx, 8, &p);

	if (rc)
		return rc;
	/* release: pairs with the acquire load in shk_array_load_u64() */
	atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_release);
	return 0;
}

int
shk_array_fetch_add_u32(shk_array *a, uint64_t idx, uint32_t delta,
			uint32_t *old)
{
	void *p;
	uint32_t v;
	int rc = elem(a, idx, 4, &p);

	if (rc)
		return rc;
	/* seq_cst: one total order over all RMWs (shmkit.h explains) */
	v = atomic_fetch_add_explicit((_Atomic uint32_t *)p, delta,
				      memory_order_seq_cst);
	if (old)
		*old = v;
	return 0;
}

int
shk_array_fetch_add_u64(shk_array *a, uint64_t idx, uint64_t delta,
			uint64_t *old)
{
	void *p;
	uint64_t v;
	int rc = elem(a, idx, 8, &p);

	if (rc)
		return rc;
	/* seq_cst: one total order over all RMWs (shmkit.h explains) */
	v = atomic_fetch_add_explicit((_Atomic uint64_t *)p, delta,
				      memory_order_seq_cst);
	if (old)
		*old = v;
	return 0;
}

int
shk_array_cas_u32(shk_array *a, uint64_t idx, uint32_t *expected,
		  uint32_t desired)
{
	void *p;
	int rc = expected ? elem(a, idx, 4, &p) : SHK_EINVAL;

	if (rc)
		return rc;
	/* seq_cst on success and failure: a failed CAS is an ordered read */
	return atomic_compare_exchange_strong_explicit(
		       (_Atomic uint32_t *)p, expected, desired,
		       memory_order_seq_cst, memory_order_seq_cst)
		       ? 1
		       : 0;
}

int
shk_array_cas_u64(shk_array *a, uint64_t idx, uint64_t *expected,
		  uint64_t desired)
{
	void *p;
	int rc = expected ? elem(a, idx, 8, &p) : SHK_EINVAL;

	if (rc)
		return rc;
	/* seq_cst on success and failure: a failed CAS is an ordered read */
	return atomic_compare_exchange_strong_explicit(
		       (_Atomic uint64_t *)p, expected, desired,
		       memory_order_seq_cst, memory_order_seq_cst)
		       ? 1
		       : 0;
}
