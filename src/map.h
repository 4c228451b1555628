/*
 * map.h - shared layout of a map object (DESIGN §5, docs/map.md).
 *
 *   [0, 64)            struct shk__map_hdr, immutable after creation but
 *                      for the sweep words of a KMPE map (map.c, Sweeps)
 *   [64, slots_off)    nstripes struct shk__map_stripe (8 per line)
 *   [slots_off, ...)   cap slots of slot_len bytes, each made of 64-bit
 *                      words: ctl, then ceil(key_len/8) key words, then
 *                      ceil(val_len/8) value words (zero padded)
 */
#ifndef SHK_MAP_H
#define SHK_MAP_H

#include <stdatomic.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"

/*
 * Two magics name the two key hashes a map can have; both are read, new
 * maps get the second.  An older library, which knows only the first,
 * refuses a map with the second (SHK_ECORRUPT) instead of hashing its keys
 * the wrong way.
 */
#define SHK__MAP_MAGIC 0x50414d4bu   /* "KMAP": FNV-1a, byte by byte */
#define SHK__MAP_MAGIC_W 0x57504d4bu /* "KMPW": word by word (map.c) */
/* "KMPE": the word hash, and tombstones that sweeps turn back into EMPTY
 * slots, which keep their seq (map.c, Sweeps); an older library, whose
 * EMPTY slots are all zero, refuses such a map */
#define SHK__MAP_MAGIC_E 0x45504d4bu
#define SHK__MAP_MAX_KEY 4096u
#define SHK__MAP_MAX_VAL (1u << 20)
#define SHK__MAP_MAX_CAP (1u << 30)
#define SHK__MAP_STRIPES 64u /* writer lock stripes (fewer if cap is) */
#define SHK__MAP_STRIPES_OFF 64u

struct shk__map_hdr {
	uint32_t magic;
	uint32_t key_len;
	uint32_t val_len;
	uint32_t slot_len; /* 8 * (1 + key words + value words) */
	uint64_t cap;      /* slots, power of two */
	uint32_t nstripes; /* min(cap, SHK__MAP_STRIPES) */
	/* KMPE: the top (exclusive) slot of the next sweep chunk, 0 meaning
	 * cap; written only by a sweeper holding every stripe.  Zero and
	 * unused in KMAP/KMPW maps (was reserved0). */
	_Atomic uint32_t sweep_at;
	uint64_t seed;        /* hash seed, chosen at creation */
	uint64_t stripes_off; /* from the object start: 64 */
	uint64_t slots_off;   /* from the object start, 64-byte aligned */
	/* KMPE: sweep credit (low 56 bits: tombstones long scans passed since
	 * the last sweep step) and back-off (top 8 bits), map.c sweep_credit();
	 * any process adds to it.  Zero and unused in KMAP/KMPW maps (was
	 * reserved1). */
	_Atomic uint64_t sweep_credit;
};
_Static_assert(sizeof(struct shk__map_hdr) == 64, "map header is one line");

/*
 * A writer lock stripe: lock (lock.h robust lock word) and count (FULL
 * slots whose key hashes to this stripe), both written only by the
 * stripe's lock holder.
 */
struct shk__map_stripe {
	_Atomic uint32_t lock;
	_Atomic uint32_t count;
};
_Static_assert(sizeof(struct shk__map_stripe) == 8, "stripe is 8 bytes");

/*
 * Slot control word: state:2 (bits 62-63) | owner stamp:30 (bits 32-61) |
 * seq:32.  seq is odd while a writer (the owner) writes the slot; even
 * seq has owner 0.  An EMPTY slot that was never claimed is all zero; in
 * a KMPE map a tombstone a sweep cleared is EMPTY with its seq kept.
 */
enum shk__map_state {
	SHK__MAP_EMPTY = 0,
	SHK__MAP_FULL = 1,
	SHK__MAP_TOMB = 2,
};
#define SHK__MAP_CTL(st, owner, seq)                                           \
	(((uint64_t)(st) << 62) |                                              \
	 ((uint64_t)((owner)&SHK__STAMP_MASK) << 32) |                         \
	 (uint64_t)(uint32_t)(seq))
#define SHK__MAP_CTL_ST(c) ((uint32_t)((c) >> 62))
#define SHK__MAP_CTL_OWNER(c) ((uint32_t)((c) >> 32) & SHK__STAMP_MASK)
#define SHK__MAP_CTL_SEQ(c) ((uint32_t)(c))

#ifdef SHK_TEST_HOOKS
/* Tests: non-zero makes new maps use the first magic and hash (as maps
 * made by earlier versions of the library do). */
SHK_HIDDEN extern int shk__map_create_fnv;
/* Tests: non-zero makes new maps KMPW (word hash, no sweeps). */
SHK_HIDDEN extern int shk__map_create_kmpw;
/* Tests: sweeps started (any map, this process). */
SHK_HIDDEN extern _Atomic uint64_t shk__map_sweeps;
/* Tests: how long put/delete wait for a stripe (default 5 s). */
SHK_HIDDEN extern int64_t shk__map_lock_timeout_ns;
/* Tests: slots per sweep step (default 4096; 0 means the default). */
SHK_HIDDEN extern uint64_t shk__map_sweep_chunk;
/* Tests: FULL slots (even) with an EMPTY slot (even) on the path from their
 * key's home to them (0 in a sound map; read while no writer runs). */
SHK_HIDDEN uint64_t shk__map_bad_paths(const shk_map *m);
/* Tests: the home slot of key. */
SHK_HIDDEN uint64_t shk__map_home(const shk_map *m, const void *key);
/* Tests: the stripe that key belongs to. */
SHK_HIDDEN uint32_t shk__map_stripe_of(const shk_map *m, const void *key);
/* Tests: the stripe of the key stored in slot i, hashed from the slot's
 * words as repairs and shk_map_next do. */
SHK_HIDDEN uint32_t shk__map_slot_stripe(const shk_map *m, uint64_t i);
/* Tests: called by every slot read (read_slot()) between its copy and its
 * re-load of the control word, with the map and slot index; a test
 * changes the slot there to make the read retry.  NULL: none. */
SHK_HIDDEN extern void (*shk__map_read_hook)(shk_map *m, uint64_t i);
#endif

#endif /* SHK_MAP_H */
