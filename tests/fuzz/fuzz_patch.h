/*
 * fuzz_patch.h - the patch step that fuzz_structs.c and fuzz_chan.c share:
 * one 6-byte input record {u8 target, u8 off0, u8 off1, u8 off2, u8 value,
 * u8 op} applied to a segment image (the record format is described in
 * fuzz_structs.c's header comment).
 */
#ifndef SHK_FUZZ_PATCH_H
#define SHK_FUZZ_PATCH_H

#include <stdint.h>
#include <string.h>

/* A region of the image a record can target: [off, off + len). */
struct region {
	uint64_t off;
	uint64_t len;
};

/* Applies record d to image p (p_len bytes), whose regions are reg[0 ..
 * nregions - 1] (nregions > 0, every len > 0). */
static void
fuzz_patch(uint8_t *p, uint64_t p_len, const struct region *reg,
	   uint32_t nregions, const uint8_t *d)
{
	const struct region *r = &reg[(d[0] & 0x7f) % nregions];
	uint64_t off = r->off + ((uint64_t)d[1] | (uint64_t)d[2] << 8 |
				 (uint64_t)d[3] << 16) %
					r->len;
	int8_t delta = (int8_t)d[4];
	uint32_t w4;
	uint64_t w8;

	if (off >= p_len)
		return;
	switch (d[5] % 8) {
	case 0:
		p[off] = d[4];
		break;
	case 1:
		p[off] ^= d[4];
		break;
	case 2:
		if (off + 8 <= p_len)
			memset(p + off, d[4], 8);
		break;
	case 3: /* add to an aligned u32 */
		off &= ~(uint64_t)3;
		memcpy(&w4, p + off, 4);
		w4 += (uint32_t)(int32_t)delta;
		memcpy(p + off, &w4, 4);
		break;
	case 4: /* add to an aligned u64 */
		off &= ~(uint64_t)7;
		memcpy(&w8, p + off, 8);
		w8 += (uint64_t)(int64_t)delta;
		memcpy(p + off, &w8, 8);
		break;
	case 5: /* store a small signed u32 */
		off &= ~(uint64_t)3;
		w4 = (uint32_t)(int32_t)delta;
		memcpy(p + off, &w4, 4);
		break;
	case 6: /* store an offset into a region: a forged link */
		off &= ~(uint64_t)7;
		w8 = reg[d[4] % nregions].off + (d[5] >> 3) * 8;
		memcpy(p + off, &w8, 8);
		break;
	default: /* store a small signed u64, or a shifted one */
		off &= ~(uint64_t)7;
		w8 = (uint64_t)(int64_t)delta << (d[5] >> 3 & 63);
		memcpy(p + off, &w8, 8);
	}
}

#endif /* SHK_FUZZ_PATCH_H */
