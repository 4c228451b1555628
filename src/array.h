/*
 * array.h - shared layout of an array object (DESIGN §5): a 64-byte header
 * followed by len elements of elem_len bytes, starting 64 bytes into the
 * object so 8-byte elements are naturally aligned.
 */
#ifndef SHK_ARRAY_H
#define SHK_ARRAY_H

#include <stdint.h>

#include "platform.h"

#define SHK__ARRAY_MAGIC 0x59524141u /* "AARY" */
#define SHK__ARRAY_DATA_OFF 64u
#define SHK__ARRAY_MAX_ELEM (1u << 20) /* largest element, bytes */

/* Immutable after creation: written once by the creator's init callback,
 * published by the registry's release store of READY. */
struct shk__array_hdr {
	uint32_t magic;
	uint32_t elem_len;
	uint64_t len;      /* elements */
	uint64_t data_off; /* from the object start: SHK__ARRAY_DATA_OFF */
	uint64_t reserved[5];
};
_Static_assert(sizeof(struct shk__array_hdr) == SHK__ARRAY_DATA_OFF,
	       "array header is one line");

#endif /* SHK_ARRAY_H */
