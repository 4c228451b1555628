/*
 * map.c - fixed-capacity hash map of fixed-size keys and values (DESIGN §5).
 *
 * Protocol.  Open addressing with linear probing over cap slots (map.h).
 * Each slot starts with a 64-bit control word `ctl` = state | owner | seq
 * (EMPTY / FULL / TOMB; seq odd while its owner writes the slot), followed
 * by key and value words.  All key and value bytes are accessed as relaxed
 * 64-bit atomics, so the seqlock below has no data race in C11 terms (the
 * byte-wise atomic memcpy of P1478, done by hand; ALGORITHMS §5).
 *
 * Shared words and who writes them:
 *  - stripe.lock: robust lock (lock.h).  Every put/delete of key K holds
 *    the lock of K's stripe (from K's hash), plus a process-local mutex
 *    for that stripe (struct local_set), because threads sharing a
 *    segment handle share an owner stamp.  So writers of one key are
 *    serialised, which keeps concurrent puts of one key from making two
 *    entries.
 *  - stripe.count: FULL slots of the stripe; written only by its holder,
 *    after the ctl store that changes the count (a put's publish, a
 *    delete's TOMB).
 *  - ctl: claimed by CAS.  An EMPTY or TOMB slot is claimed by any writer
 *    (EMPTY/TOMB, even -> same state, odd, owner = me); a FULL slot of key K
 *    changes only under K's stripe lock (update: FULL odd; delete: TOMB in
 *    one CAS).  The owner ends a write with a release store of FULL, even.
 *    Repairers CAS an odd ctl whose owner is dead to TOMB, even.  A sweep
 *    (KMPE maps), holding every stripe, CASes an even TOMB that no present
 *    key's path crosses to EMPTY, seq + 2 (Sweeps, below).
 *  - key/value words: written only by the slot's owner while seq is odd.
 *
 * Invariants: a present key K (FULL, even or odd) lives within the probe
 * run from its home slot up to the first EMPTY (even) slot, and get/delete
 * stop there: no slot on the path from K's home to K is EMPTY (even).
 * Claims and deletes never make a slot EMPTY; only a sweep does (Sweeps,
 * below), and only for a tombstone that no present key's path crosses.
 * At most one FULL slot holds K (inserts of K first scan the whole run
 * under K's stripe lock).  Probes visit at most cap slots.  Claims in progress (odd EMPTY/TOMB) do not end a run.
 * count: a stripe's count is its FULL slots, minus one while (or after a
 * kill) between a put's publish and its increment, plus one between a
 * delete's TOMB and its decrement; so each count is at most cap (a
 * delete in progress has made one slot TOMB).  The sum of the counts is
 * NOT bounded by cap: on a full map, a writer of another stripe reuses a
 * dead deleter's tombstone and the counts add up to cap + 1 (one more per
 * such stripe) until the dead deleter's stripe is taken over and
 * recounted; and the counts of a live map, read one after another, may
 * add up to more still.  Checks refuse only a single count above cap
 * (the open-time check once refused a sum above cap, so a map reached
 * that way could not be opened: test dead_deleter_full).
 *
 * Happens-before: the writer's release store of the even ctl publishes the
 * key and value words; it pairs with the reader's acquire load of ctl
 * (read_slot()).  Boehm's seqlock: the writer's claim CAS is followed by a
 * release fence before its data stores; the reader's data loads are
 * followed by an acquire fence and a re-load of ctl, and a copy is used
 * only when both ctl loads agree (and are even).  Stripe lock acquire and
 * release order one key's writers.
 *
 * What a killed writer leaves (ALGORITHMS §0, §8): an odd ctl naming it
 * and its stripe lock held.  Readers of that key wait a bounded time
 * (READ_WAIT_NS), then test the owner stamp; if dead they take the stripe
 * lock, which hands it over with SHK_EOWNERDEAD (at once: the robust lock
 * tests the holder before it sleeps); they wait at most READ_LOCK_NS for a
 * live holder (then SHK_EAGAIN).  The taker repairs: every odd slot of a
 * dead owner whose key is this stripe's, and every dead claim (odd
 * EMPTY/TOMB), becomes TOMB; then it recounts the stripe.  A writer that
 * finds its own key's slot odd under a dead owner while it holds the
 * stripe (the owner had let the stripe go, or detached) repairs that slot
 * and recounts the stripe too.  So an interrupted put leaves the key
 * absent (the old value is lost with it), an interrupted delete leaves it
 * deleted, and a count off by one is fixed on takeover.  A SIGSTOPped
 * writer is alive: readers of its key get SHK_EAGAIN, writers of its
 * stripe SHK_ETIMEDOUT, each at one deadline per call that also bounds
 * its wait for other threads of its process (stripe_lock()).
 */
#include "map.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"
#include "opts.h"
#include "registry.h"

#define LOCK_TIMEOUT_NS 5000000000LL /* writers wait this long for a stripe */
#define READ_SPIN_NS 20000           /* readers spin, then nap */
#define READ_NAP_NS 100000
#define READ_WAIT_NS 50000000LL /* before testing a busy slot's owner */
#define CLAIM_RETRIES 10000     /* lost claim races before SHK_EAGAIN */
/* A reader that must repair a dead writer's slot waits this long for the
 * stripe (a dead holder is taken over at once; a live one means EAGAIN). */
#define READ_LOCK_NS READ_WAIT_NS
/* Sweeps (sweep_credit()): a writer whose scan passed SWEEP_TOMBS
 * tombstones adds them to the map's shared credit (its header); once the
 * credit reaches min(cap, SWEEP_CHUNK) / SWEEP_CREDIT_DIV, shifted left by
 * the back-off, that writer sweeps one chunk of SWEEP_CHUNK slots (all of
 * a smaller map), so sweeping costs at most SWEEP_CREDIT_DIV times the
 * slots such scans wasted.  A chunk whose tombstones could none be cleared
 * raises the back-off by one (up to SWEEP_MAX_SHIFT), one that cleared
 * some resets it.  A sweep step holds every stripe and waits at most
 * SWEEP_LOCK_NS in all for them (else it gives up). */
#define SWEEP_TOMBS 16
#define SWEEP_CREDIT_DIV 8
#define SWEEP_MAX_SHIFT 6
#define SWEEP_SHIFT_AT 56
#define SWEEP_CREDIT_MASK ((UINT64_C(1) << SWEEP_SHIFT_AT) - 1)
#define SWEEP_LOCK_NS READ_WAIT_NS

#ifdef SHK_TEST_HOOKS
int shk__map_create_fnv;  /* map.h */
int shk__map_create_kmpw; /* map.h */
_Atomic uint64_t shk__map_sweeps;
/* Tests shorten the writers' stripe wait (map.h). */
int64_t shk__map_lock_timeout_ns = LOCK_TIMEOUT_NS;
#define WRITE_LOCK_NS shk__map_lock_timeout_ns
/* Tests shrink the sweep chunk (map.h). */
uint64_t shk__map_sweep_chunk = 4096;
/* Tests change a slot inside a read of it (map.h). */
void (*shk__map_read_hook)(shk_map *m, uint64_t i);
#define SWEEP_CHUNK                                                            \
	(shk__map_sweep_chunk ? shk__map_sweep_chunk : (uint64_t)4096)
#else
#define WRITE_LOCK_NS LOCK_TIMEOUT_NS
#define SWEEP_CHUNK ((uint64_t)4096)
#endif

/*
 * TSan ignores standalone fences (ALGORITHMS §11); under SAN=thread each
 * seqlock fence becomes an RMW (adding 0) on the slot's control word.
 */
#ifdef SHK__TSAN
#define FENCE_ACQ(w)                                                           \
	((void)atomic_fetch_add_explicit((w), 0, memory_order_acq_rel))
#define FENCE_REL(w)                                                           \
	((void)atomic_fetch_add_explicit((w), 0, memory_order_acq_rel))
#else
#define FENCE_ACQ(w) ((void)(w), atomic_thread_fence(memory_order_acquire))
#define FENCE_REL(w) ((void)(w), atomic_thread_fence(memory_order_release))
#endif

struct shk_map {
	shk_seg *seg;
	uint8_t *obj;
	struct shk__map_stripe *stripes;
	uint8_t *slots;
	uint64_t cap;
	uint64_t mask;
	uint64_t seed;
	uint32_t key_len;
	uint32_t val_len;
	uint32_t slot_len;
	uint32_t kw; /* key words */
	uint32_t vw; /* value words */
	uint32_t nstripes;
	int word_hash;            /* key hash: word by word (1) or FNV-1a (0) */
	int clears;               /* KMPE: sweeps turn tombstones into EMPTY */
	struct local_set *local;  /* this process's stripe mutexes (handles) */
	struct shk__map_hdr *hdr; /* KMPE: its sweep words (sweep_credit()) */
};

/*
 * Threads that share a segment handle share its owner stamp, so the robust
 * stripe lock cannot tell them apart (it would answer SHK_EDEADLK).  They
 * first serialise on a process-local mutex of that stripe.
 *
 * Each mapping of a map in this process has its own set of local mutexes,
 * one per stripe, so no two stripes ever share one: a thread that waits
 * for a stripe held by a stopped process (up to the writers' 5 s) delays
 * only the threads of this process that want that same stripe, never
 * another stripe or another map.  A set is keyed by the address of the
 * map's stripe array in this process: every shk_map handle of one map
 * opened through one segment handle sees the same address (they share the
 * owner stamp, so they must share the mutexes), while another segment
 * handle maps the segment elsewhere (another stamp, which the robust lock
 * itself tells apart).  Sets live in a process-wide list, refcounted by
 * the map handles (open/close), under sets_lock.  (Before, 64 mutexes
 * were picked by hashing the lock word's address, so stripes of unrelated
 * maps collided.)
 *
 * fork(): a child must not use its parent's handles (shmkit.h), so it
 * never needs the sets they use, whose mutexes may be held by threads
 * that do not exist in the child.  Each set records the fork generation
 * it was made in, the child's atfork handler starts a new one, and sets
 * of an older generation are never handed out again, even if a mapping
 * of the child's lands at an address that an inherited set names.  The
 * list itself is guarded around fork() by the atfork handlers.
 */
struct local_set {
	struct local_set *next;
	const void *key;   /* the stripe array's address in this process */
	unsigned long gen; /* local_gen when made */
	unsigned refs;
	uint32_t n;
	pthread_mutex_t lock[]; /* one per stripe */
};

/* A default mutex, not an error-checking one like the stripes' local
 * locks: a forked child unlocks it in the atfork handler although its
 * parent's thread locked it. */
static pthread_mutex_t sets_lock = PTHREAD_MUTEX_INITIALIZER;
static struct local_set *sets;
static unsigned long local_gen; /* fork generation, under sets_lock */
static pthread_once_t local_once = PTHREAD_ONCE_INIT;

static void
local_prefork(void)
{
	pthread_mutex_lock(&sets_lock);
}

static void
local_parent(void)
{
	pthread_mutex_unlock(&sets_lock);
}

static void
local_child(void)
{
	local_gen++;
	pthread_mutex_unlock(&sets_lock);
}

static void
local_setup(void)
{
	pthread_atfork(local_prefork, local_parent, local_child);
}

/* An empty set with room for any map's stripes, for local_get(). */
static struct local_set *
local_alloc(void)
{
	return malloc(sizeof(struct local_set) +
		      (size_t)SHK__MAP_STRIPES * sizeof(pthread_mutex_t));
}

/* The set of key (n stripes), made on first use from *spare (a
 * local_alloc() the caller made before it could create the map, so that
 * an open that created the map cannot then fail for memory and leave it);
 * *spare is NULL once taken, the caller frees it otherwise.  NULL for
 * more stripes than a set holds. */
static struct local_set *
local_get(const void *key, uint32_t n, struct local_set **spare)
{
	struct local_set *ls;
	pthread_mutexattr_t at;
	uint32_t i;

	if (n > SHK__MAP_STRIPES)
		return NULL;
	pthread_mutex_lock(&sets_lock);
	for (ls = sets; ls; ls = ls->next) {
		if (ls->key == key && ls->n == n && ls->gen == local_gen) {
			ls->refs++;
			goto out;
		}
	}
	ls = *spare;
	*spare = NULL;
	ls->key = key;
	ls->gen = local_gen;
	ls->refs = 1;
	ls->n = n;
	/* error-checking: a re-lock by the holding thread (a signal handler
	 * that interrupted it) fails with EDEADLK at once instead of
	 * waiting for itself (stripe_lock(), test handler_relock) */
	pthread_mutexattr_init(&at);
	pthread_mutexattr_settype(&at, PTHREAD_MUTEX_ERRORCHECK);
	for (i = 0; i < n; i++)
		pthread_mutex_init(&ls->lock[i], &at);
	pthread_mutexattr_destroy(&at);
	ls->next = sets;
	sets = ls;
out:
	pthread_mutex_unlock(&sets_lock);
	return ls;
}

static void
local_put(struct local_set *ls)
{
	struct local_set **pp;
	uint32_t i;

	pthread_mutex_lock(&sets_lock);
	if (--ls->refs == 0) {
		for (pp = &sets; *pp != ls; pp = &(*pp)->next)
			;
		*pp = ls->next;
		for (i = 0; i < ls->n; i++)
			pthread_mutex_destroy(&ls->lock[i]);
		free(ls);
	}
	pthread_mutex_unlock(&sets_lock);
}

SHK_HIDDEN int shk__kind_check_map(shk_seg *seg, void *mem,
				   const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_map(shk_seg *seg, void *mem,
				      const shk_obj_info *info, char *buf,
				      size_t len);

/* ------------------------------------------------------------------ */
/* Layout and hashing                                                  */
/* ------------------------------------------------------------------ */

static uint32_t
words(uint32_t len)
{
	return (len + 7) / 8;
}

static uint64_t
slots_off_for(uint32_t nstripes)
{
	uint64_t end = SHK__MAP_STRIPES_OFF +
		       (uint64_t)nstripes * sizeof(struct shk__map_stripe);

	return (end + 63) & ~(uint64_t)63;
}

static _Atomic uint64_t *
slot_at(const shk_map *m, uint64_t i)
{
	return (_Atomic uint64_t *)(m->slots + i * m->slot_len);
}

/* FNV-1a over bytes, then a 64-bit finaliser (MurmurHash3 fmix64) so that
 * both the low bits (home slot) and the high bits (stripe) are mixed. */
static uint64_t
fnv_step(uint64_t h, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint32_t
stripe_of(const shk_map *m, uint64_t h)
{
	return (uint32_t)(h >> 40) & (m->nstripes - 1);
}

/* Word j of the zero-padded byte string p[0..len).  Whole words, all but
 * the last of an odd-sized string, take the constant-size copy (one load);
 * only a partial last word pays for a variable-length copy. */
static inline uint64_t
pack_word(const uint8_t *p, uint32_t len, uint32_t j)
{
	uint64_t w = 0;
	uint32_t off = j * 8;

	if (SHK_LIKELY(len - off >= 8))
		memcpy(&w, p + off, 8);
	else
		memcpy(&w, p + off, len - off);
	return w;
}

static inline void
unpack_word(uint8_t *p, uint32_t len, uint32_t j, uint64_t w)
{
	uint32_t off = j * 8;

	if (SHK_LIKELY(len - off >= 8))
		memcpy(p + off, &w, 8);
	else
		memcpy(p + off, &w, len - off);
}

/*
 * The key hash of maps made since 2026-11-24 (magic SHK__MAP_MAGIC_W): the
 * key's zero-padded 64-bit words, one multiply and one xor-shift each,
 * then fmix64.  Each step is a bijection of h for a given word, so two
 * keys that differ only in earlier words never meet in h before the
 * finaliser.  It replaced FNV-1a, whose multiply per byte made the hash of
 * an 8-byte key a chain of eight dependent multiplies ahead of the probe's
 * first load (docs/map.md, Performance).  Maps with the old magic keep
 * FNV-1a: a map's hash is fixed for its life.
 */
static inline uint64_t
word_step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 32);
}

static uint64_t
key_hash(const shk_map *m, const void *key)
{
	uint64_t h;
	uint32_t j;

	if (SHK_UNLIKELY(!m->word_hash))
		return fmix64(fnv_step(m->seed ^ 0xcbf29ce484222325ULL, key,
				       m->key_len));
	h = m->seed;
	for (j = 0; j < m->kw; j++)
		h = word_step(h, pack_word(key, m->key_len, j));
	return fmix64(h);
}

#ifdef SHK_TEST_HOOKS
uint32_t
shk__map_stripe_of(const shk_map *m, const void *key)
{
	return stripe_of(m, key_hash(m, key));
}
#endif

/* A control word that no protocol step produces. */
static inline int
ctl_valid(const shk_map *m, uint64_t c)
{
	uint32_t st = SHK__MAP_CTL_ST(c), owner = SHK__MAP_CTL_OWNER(c);

	if (st > SHK__MAP_TOMB)
		return 0;
	if (SHK__MAP_CTL_SEQ(c) & 1)
		return owner != 0 &&
		       SHK__STAMP_SLOT(owner) < m->seg->attach_cap;
	if (owner != 0)
		return 0;
	/* an EMPTY slot is written back only by a sweep, in a KMPE map (it
	 * keeps its seq); otherwise it is all zero */
	return st != SHK__MAP_EMPTY || c == 0 || m->clears;
}

/* ------------------------------------------------------------------ */
/* Reading a slot (lock-free)                                          */
/* ------------------------------------------------------------------ */

enum {
	R_EMPTY,   /* EMPTY, even: ends the probe run */
	R_SKIP,    /* TOMB, a claim in progress, or another key */
	R_HIT,     /* FULL, stable, key matched (or no key): copied out */
	R_BUSY,    /* FULL and being written; key matched (or no key) */
	R_RETRY,   /* changed while we read it */
	R_CORRUPT, /* impossible control word */
};

/*
 * read_slot reads slot i once, seqlock style.  key: compare against it
 * (NULL: any key matches).  key_out/val_out: where to copy a hit (NULL:
 * skip).  *ctl gets the control word seen first.  Always inlined: its
 * callers pass constant NULLs that remove whole branches, and a
 * single-process get measured about a tenth faster than with the call
 * (docs/map.md, Performance).
 */
static SHK__ALWAYS_INLINE int
read_slot(const shk_map *m, uint64_t i, const uint8_t *key, uint8_t *key_out,
	  uint8_t *val_out, uint64_t *ctl)
{
	_Atomic uint64_t *s = slot_at(m, i);
	uint64_t c1, c2;
	uint32_t j, st;
	int match = 1;

	/* acquire: pairs with the writer's release store of the even ctl
	 * that published the key and value words (put_locked()) */
	c1 = atomic_load_explicit(&s[0], memory_order_acquire);
	*ctl = c1;
	if (!ctl_valid(m, c1))
		return R_CORRUPT;
	st = SHK__MAP_CTL_ST(c1);
	if (st == SHK__MAP_EMPTY)
		return (SHK__MAP_CTL_SEQ(c1) & 1) ? R_SKIP : R_EMPTY;
	if (st == SHK__MAP_TOMB)
		return R_SKIP;
	for (j = 0; j < m->kw && match; j++) {
		/* relaxed: validated by the fence and re-load below */
		uint64_t w =
			atomic_load_explicit(&s[1 + j], memory_order_relaxed);

		if (key)
			match = w == pack_word(key, m->key_len, j);
		else if (key_out)
			unpack_word(key_out, m->key_len, j, w);
	}
	if (match && key && key_out)
		memcpy(key_out, key, m->key_len);
	if (match && val_out && !(SHK__MAP_CTL_SEQ(c1) & 1)) {
		for (j = 0; j < m->vw; j++) {
			/* relaxed: validated by the fence and re-load */
			uint64_t w = atomic_load_explicit(&s[1 + m->kw + j],
							  memory_order_relaxed);

			unpack_word(val_out, m->val_len, j, w);
		}
	}
#ifdef SHK_TEST_HOOKS
	if (shk__map_read_hook)
		shk__map_read_hook((shk_map *)m, i);
#endif
	/* acquire fence: orders the data loads above before the re-load of
	 * ctl; pairs with FENCE_REL after the writer's claim (Boehm) */
	FENCE_ACQ(&s[0]);
	/* relaxed: ordered by the fence */
	c2 = atomic_load_explicit(&s[0], memory_order_relaxed);
	if (c2 != c1)
		return R_RETRY;
	if (!match)
		return R_SKIP;
	return (SHK__MAP_CTL_SEQ(c1) & 1) ? R_BUSY : R_HIT;
}

/* Bounded waiting for a busy slot: spin, then nap, up to READ_WAIT_NS.
 * Per slot: a probe that moves on to the next slot sets start to 0 (test
 * retry_per_slot).  And per call: whatever the slots, waits end
 * CALL_WAIT_NS after the call's first (`first`, never reset), so a probe
 * run whose slots keep changing one after another cannot stretch a call
 * to run length x READ_WAIT_NS. */
#define CALL_WAIT_NS (4 * READ_WAIT_NS)

struct backoff {
	int64_t start;
	int64_t first;
};

static int
backoff_expired(struct backoff *b)
{
	int64_t now = shk__now_ns();

	if (b->start == 0)
		b->start = now;
	if (b->first == 0)
		b->first = now;
	if (now - b->start >= READ_WAIT_NS || now - b->first >= CALL_WAIT_NS)
		return 1;
	if (now - b->start < READ_SPIN_NS) {
		shk__cpu_relax();
	} else {
		struct timespec ts = { 0, READ_NAP_NS };

		nanosleep(&ts, NULL);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stripe locks and repair                                             */
/* ------------------------------------------------------------------ */

/* Turns a dead owner's odd ctl c of slot i into TOMB (one CAS). */
static void
repair_slot(shk_map *m, uint64_t i, uint64_t c)
{
	uint64_t t = SHK__MAP_CTL(SHK__MAP_TOMB, 0, SHK__MAP_CTL_SEQ(c) + 1);

	/* release: pairs with the acquire ctl loads of readers; a failed CAS
	 * means somebody else repaired it first */
	atomic_compare_exchange_strong_explicit(&slot_at(m, i)[0], &c, t,
						memory_order_release,
						memory_order_relaxed);
}

/* Hash of slot i's key words as they are now (the caller knows they are
 * stable, or re-checks ctl afterwards). */
static uint64_t
raw_key_hash(const shk_map *m, uint64_t i)
{
	_Atomic uint64_t *s = slot_at(m, i);
	uint64_t acc = m->word_hash ? m->seed : m->seed ^ 0xcbf29ce484222325ULL;
	uint32_t j;

	for (j = 0; j < m->kw; j++) {
		uint8_t b[8];
		uint32_t n = m->key_len - j * 8 < 8 ? m->key_len - j * 8 : 8;
		/* relaxed: the caller orders or validates these loads */
		uint64_t w =
			atomic_load_explicit(&s[1 + j], memory_order_relaxed);

		memcpy(b, &w, 8);
		if (m->word_hash) {
			/* as key_hash() packs the key: bytes past the key's
			 * end count as zero, whatever the slot holds */
			memset(b + n, 0, 8 - n);
			memcpy(&w, b, 8);
			acc = word_step(acc, w);
			continue;
		}
		acc = fnv_step(acc, b, n);
	}
	return fmix64(acc);
}

#ifdef SHK_TEST_HOOKS
uint64_t
shk__map_home(const shk_map *m, const void *key)
{
	return key_hash(m, key) & m->mask;
}

uint64_t
shk__map_bad_paths(const shk_map *m)
{
	uint64_t j, i, c, bad = 0;

	for (j = 0; j < m->cap; j++) {
		/* acquire: pairs with the publish of the key words */
		c = atomic_load_explicit(&slot_at(m, j)[0],
					 memory_order_acquire);
		if (SHK__MAP_CTL_ST(c) != SHK__MAP_FULL ||
		    (SHK__MAP_CTL_SEQ(c) & 1))
			continue;
		for (i = raw_key_hash(m, j) & m->mask; i != j;
		     i = (i + 1) & m->mask) {
			/* acquire: as above */
			c = atomic_load_explicit(&slot_at(m, i)[0],
						 memory_order_acquire);
			if (SHK__MAP_CTL_ST(c) == SHK__MAP_EMPTY &&
			    !(SHK__MAP_CTL_SEQ(c) & 1)) {
				bad++;
				break;
			}
		}
	}
	return bad;
}

uint32_t
shk__map_slot_stripe(const shk_map *m, uint64_t i)
{
	return stripe_of(m, raw_key_hash(m, i));
}
#endif

/* Hash of the key stored in slot i, if the slot is FULL and even and stays
 * so while we read it; returns 0 and *h, or -1. */
static int
slot_key_hash(const shk_map *m, uint64_t i, uint64_t *h)
{
	_Atomic uint64_t *s = slot_at(m, i);
	uint64_t c1, c2, v;

	/* acquire: pairs with the release store that published the key */
	c1 = atomic_load_explicit(&s[0], memory_order_acquire);
	if (SHK__MAP_CTL_ST(c1) != SHK__MAP_FULL || !ctl_valid(m, c1))
		return -1;
	v = raw_key_hash(m, i);
	/* acquire fence: pairs with the writer's FENCE_REL (Boehm) */
	FENCE_ACQ(&s[0]);
	/* relaxed: ordered by the fence */
	c2 = atomic_load_explicit(&s[0], memory_order_relaxed);
	if (c2 != c1 || (SHK__MAP_CTL_SEQ(c1) & 1))
		return -1;
	*h = v;
	return 0;
}

/*
 * Called with stripe s held after a dead holder: repairs dead owners' odd
 * slots (claims, and writes of this stripe's keys), then recounts s.
 */
static void
repair_stripe(shk_map *m, uint32_t s)
{
	uint32_t me = shk__seg_stamp(m->seg), n = 0;
	uint64_t i, h;

	for (i = 0; i < m->cap; i++) {
		/* acquire: pairs with the writers' release stores of ctl */
		uint64_t c = atomic_load_explicit(&slot_at(m, i)[0],
						  memory_order_acquire);
		uint32_t owner = SHK__MAP_CTL_OWNER(c);

		if (!(SHK__MAP_CTL_SEQ(c) & 1) || !ctl_valid(m, c) ||
		    owner == me)
			continue;
		/* the key of a FULL slot is stable while it is odd: only its
		 * stripe's holder writes it, and that is the owner */
		if (SHK__MAP_CTL_ST(c) == SHK__MAP_FULL &&
		    stripe_of(m, raw_key_hash(m, i)) != s)
			continue;
		if (!shk__stamp_alive(m->seg, owner))
			repair_slot(m, i, c);
	}
	for (i = 0; i < m->cap; i++) {
		if (slot_key_hash(m, i, &h) == 0 && stripe_of(m, h) == s)
			n++;
	}
	/* relaxed: only the stripe's holder writes count */
	atomic_store_explicit(&m->stripes[s].count, n, memory_order_relaxed);
}

/*
 * stripe_lock takes stripe s: first this process's mutex of the stripe,
 * then the robust lock, both within one deadline of timeout_ns (> 0) from
 * the call.  A process that has never had a second thread skips the mutex
 * (*local_held 0): no other thread can want it before stripe_unlock().
 * Returns 0 (a dead holder's leftovers repaired), SHK_ETIMEDOUT,
 * SHK_EDEADLK (this thread holds the stripe: a signal handler that
 * interrupted it; the local mutex is error-checking), or the robust lock's
 * errors.
 */
static int
stripe_lock(shk_map *m, uint32_t s, int64_t timeout_ns, int *local_held)
{
	_Atomic uint32_t *w = &m->stripes[s].lock;
	pthread_mutex_t *local = &m->local->lock[s];
	int64_t left = timeout_ns;
	int rc;

	*local_held = !shk__single_threaded();
	if (*local_held && pthread_mutex_trylock(local) != 0) {
		/* contended: the robust lock gets only what is left */
		int64_t deadline = shk__deadline(timeout_ns);
		struct timespec ts;

#ifdef SHK__TSAN
		/* TSan (gcc 12) does not intercept pthread_mutex_clocklock
		 * (as in sync_mutex.c); the realtime form is close enough */
		int64_t abs_ns = shk__realtime_ns() + timeout_ns;

		ts.tv_sec = (time_t)(abs_ns / 1000000000);
		ts.tv_nsec = (long)(abs_ns % 1000000000);
		rc = pthread_mutex_timedlock(local, &ts);
#else
		ts.tv_sec = (time_t)(deadline / 1000000000);
		ts.tv_nsec = (long)(deadline % 1000000000);
		rc = pthread_mutex_clocklock(local, CLOCK_MONOTONIC, &ts);
#endif
		if (rc == ETIMEDOUT)
			return SHK_ETIMEDOUT;
		if (rc == EDEADLK) /* this thread holds it (a handler) */
			return SHK_EDEADLK;
		if (rc)
			return SHK_EINVAL;
		left = deadline - shk__now_ns();
		if (left < 0)
			left = 0; /* a last try: it still takes over a dead
				   * holder's lock */
	}
	rc = shk__lock_acquire(m->seg, w, left);
	if (rc == SHK_EAGAIN)
		rc = SHK_ETIMEDOUT; /* that last try found it held */
	if (rc == SHK_EOWNERDEAD) {
		SHK_CRASHPOINT("map.repair.begin");
		repair_stripe(m, s);
		shk__lock_consistent(m->seg, w);
		rc = 0;
	}
	if (rc && *local_held)
		pthread_mutex_unlock(local);
	return rc;
}

static void
stripe_unlock(shk_map *m, uint32_t s, int local_held)
{
	int rc = 0;

	shk__lock_release(m->seg, &m->stripes[s].lock);
	if (local_held)
		rc = pthread_mutex_unlock(&m->local->lock[s]);
		/* error-checking mutexes: EPERM would mean another thread's lock
	 * (every lock and unlock pair is one call on one thread), which the
	 * test builds check */
#ifdef SHK_TEST_HOOKS
	SHK_ASSERT(rc == 0);
#endif
	(void)rc;
}

/*
 * A reader found slot i (ctl c, key of stripe s) busy for too long.  If its
 * owner is dead, take the stripe (which hands it over from the dead owner
 * and repairs) and make sure slot i is repaired.  Returns 0 when the
 * caller should look again, SHK_EAGAIN when the owner lives or the stripe
 * stayed held by a live process for READ_LOCK_NS (e.g. a stopped writer
 * that took it over: readers never wait the writers' 5 s), or the robust
 * lock's other errors.
 */
static int
fix_busy(shk_map *m, uint64_t i, uint64_t c, uint32_t s)
{
	uint64_t now;
	int rc, lh;

	if (shk__stamp_alive(m->seg, SHK__MAP_CTL_OWNER(c)))
		return SHK_EAGAIN;
	rc = stripe_lock(m, s, READ_LOCK_NS, &lh);
	if (rc)
		return rc == SHK_ETIMEDOUT ? SHK_EAGAIN : rc;
	/* acquire: pairs with the writers' release stores of ctl */
	now = atomic_load_explicit(&slot_at(m, i)[0], memory_order_acquire);
	if (now == c) {
		/* the lock was not handed over (the dead owner had released
		 * it: impossible unless the map was scribbled on) */
		repair_slot(m, i, c);
		repair_stripe(m, s);
	}
	stripe_unlock(m, s, lh);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Writers (stripe held)                                               */
/* ------------------------------------------------------------------ */

/* Writes words [from, to) of the slot from the zero-padded bytes p. */
static void
store_words(_Atomic uint64_t *s, uint32_t first, const uint8_t *p, uint32_t len,
	    uint32_t nwords)
{
	uint32_t j;

	for (j = 0; j < nwords; j++) {
		/* relaxed: published by the release store of the even ctl */
		atomic_store_explicit(&s[first + j], pack_word(p, len, j),
				      memory_order_relaxed);
	}
}

/*
 * What find_locked() saw besides the key: free_i and free_ctl, the first
 * reusable slot (TOMB or the EMPTY that ends the run; -1 if none); claims,
 * whether claims in progress were passed; tombs, the tombstones (even)
 * passed (one struct: fewer arguments than the fast path would pass).
 */
struct scan {
	int64_t free_i;
	uint64_t free_ctl;
	uint64_t tombs;
	int claims;
};

/*
 * Looks for key along its probe run.  Returns the slot holding it (FULL,
 * even; *ctl its control word), or -1 (*sc says where it could go).
 * SHK_ECORRUPT, SHK_EAGAIN (the key's own slot busy: only after a dead
 * owner).
 */
static int64_t
find_locked(shk_map *m, const uint8_t *key, uint64_t h, uint64_t *ctl,
	    struct scan *sc)
{
	uint64_t n, i, c;
	struct backoff b = { 0 };

	sc->free_i = -1;
	sc->claims = 0;
	sc->tombs = 0;
	for (n = 0; n < m->cap; n++) {
		i = (h + n) & m->mask;
		switch (read_slot(m, i, key, NULL, NULL, &c)) {
		case R_EMPTY:
			if (sc->free_i < 0) {
				sc->free_i = (int64_t)i;
				sc->free_ctl = c;
			}
			return -1;
		case R_SKIP:
			if (SHK__MAP_CTL_ST(c) == SHK__MAP_TOMB &&
			    !(SHK__MAP_CTL_SEQ(c) & 1)) {
				sc->tombs++;
				if (sc->free_i < 0) {
					sc->free_i = (int64_t)i;
					sc->free_ctl = c;
				}
			} else if (SHK__MAP_CTL_SEQ(c) & 1) {
				sc->claims = 1;
			}
			b.start = 0; /* moving on: the next slot's own wait */
			break;
		case R_HIT:
			*ctl = c;
			return (int64_t)i;
		case R_BUSY:
			/* our key, odd, while we hold its stripe: a dead
			 * owner the takeover did not see (it had released
			 * the stripe, or the slot was left odd by a handle
			 * that detached); repair it, and recount the stripe:
			 * the slot was FULL, so it was counted */
			if (!shk__stamp_alive(m->seg, SHK__MAP_CTL_OWNER(c))) {
				repair_slot(m, i, c);
				repair_stripe(m, stripe_of(m, h));
				n--;
				break;
			}
			return SHK_EAGAIN;
		case R_RETRY:
			/* another stripe's slot changing (ours cannot):
			 * look again */
			if (backoff_expired(&b))
				return SHK_EAGAIN;
			n--;
			break;
		default:
			return SHK_ECORRUPT;
		}
	}
	return -1;
}

/* Repairs claims in progress whose owners are dead; 1 if any was. */
static int
repair_dead_claims(shk_map *m)
{
	uint64_t i;
	int any = 0;

	for (i = 0; i < m->cap; i++) {
		/* acquire: pairs with the writers' release stores of ctl */
		uint64_t c = atomic_load_explicit(&slot_at(m, i)[0],
						  memory_order_acquire);

		if ((SHK__MAP_CTL_SEQ(c) & 1) && ctl_valid(m, c) &&
		    SHK__MAP_CTL_ST(c) != SHK__MAP_FULL &&
		    !shk__stamp_alive(m->seg, SHK__MAP_CTL_OWNER(c))) {
			repair_slot(m, i, c);
			any = 1;
		}
	}
	return any;
}

static int
put_locked(shk_map *m, uint32_t s, const uint8_t *key, const uint8_t *val,
	   uint64_t h, struct scan *sc)
{
	uint32_t me = shk__seg_stamp(m->seg);
	_Atomic uint64_t *slot;
	int64_t at;
	uint64_t c, busy;
	int tries, repaired = 0;

	for (tries = 0; tries < CLAIM_RETRIES; tries++) {
		at = find_locked(m, key, h, &c, sc);
		if (at < -1)
			return (int)at;
		if (at >= 0) {
			/* replace in place; FULL slots of our key change
			 * only under our stripe, so the CAS succeeds */
			slot = slot_at(m, (uint64_t)at);
			busy = SHK__MAP_CTL(SHK__MAP_FULL, me,
					    SHK__MAP_CTL_SEQ(c) + 1);
			/* acquire on success: pairs with the release store
			 * or CAS that wrote c (the FULL publish, a repair),
			 * so the previous owner's word stores precede ours;
			 * the order of ours after the claim comes from
			 * FENCE_REL below.  relaxed on failure: we rescan. */
			if (!atomic_compare_exchange_strong_explicit(
				    &slot[0], &c, busy, memory_order_acquire,
				    memory_order_relaxed))
				continue;
			/* release fence: the odd ctl is visible before any
			 * value store; pairs with FENCE_ACQ in read_slot() */
			FENCE_REL(&slot[0]);
			SHK_CRASHPOINT("map.put.after_claim");
			store_words(slot, 1 + m->kw, val, m->val_len, m->vw);
			SHK_CRASHPOINT("map.put.before_publish");
			/* release: publishes the value; pairs with the
			 * acquire load of ctl in read_slot() */
			atomic_store_explicit(
				&slot[0],
				SHK__MAP_CTL(SHK__MAP_FULL, 0,
					     SHK__MAP_CTL_SEQ(busy) + 1),
				memory_order_release);
			return 1;
		}
		if (sc->free_i < 0) {
			/* full, unless dead writers' claims hold slots */
			if (sc->claims && !repaired && repair_dead_claims(m)) {
				repaired = 1;
				continue;
			}
			return SHK_ENOSPC;
		}
		slot = slot_at(m, (uint64_t)sc->free_i);
		busy = SHK__MAP_CTL(SHK__MAP_CTL_ST(sc->free_ctl), me,
				    SHK__MAP_CTL_SEQ(sc->free_ctl) + 1);
		/* acquire on success: pairs with the release TOMB/repair
		 * CAS that wrote free_ctl, so the previous owner's word
		 * stores precede ours (as queue.c's claim); the order of
		 * ours after the claim comes from FENCE_REL below.
		 * relaxed on failure: another stripe's writer took the
		 * slot, we rescan */
		if (!atomic_compare_exchange_strong_explicit(
			    &slot[0], &sc->free_ctl, busy, memory_order_acquire,
			    memory_order_relaxed))
			continue;
		/* release fence: pairs with FENCE_ACQ in read_slot() */
		FENCE_REL(&slot[0]);
		SHK_CRASHPOINT("map.put.after_claim");
		store_words(slot, 1, key, m->key_len, m->kw);
		store_words(slot, 1 + m->kw, val, m->val_len, m->vw);
		SHK_CRASHPOINT("map.put.before_publish");
		/* release: publishes key and value; pairs with the acquire
		 * load of ctl in read_slot() */
		atomic_store_explicit(&slot[0],
				      SHK__MAP_CTL(SHK__MAP_FULL, 0,
						   SHK__MAP_CTL_SEQ(busy) + 1),
				      memory_order_release);
		SHK_CRASHPOINT("map.put.after_publish");
		/* relaxed: only the stripe's holder writes count */
		atomic_fetch_add_explicit(&m->stripes[s].count, 1,
					  memory_order_relaxed);
		return 0;
	}
	return SHK_EAGAIN;
}

static int
delete_locked(shk_map *m, uint32_t s, const uint8_t *key, uint64_t h,
	      struct scan *sc)
{
	int64_t at;
	uint64_t c, tomb;

	at = find_locked(m, key, h, &c, sc);
	if (at < -1)
		return (int)at;
	if (at < 0)
		return SHK_ENOENT;
	tomb = SHK__MAP_CTL(SHK__MAP_TOMB, 0, SHK__MAP_CTL_SEQ(c) + 2);
	/* release: pairs with the acquire ctl loads of readers, who see the
	 * seq change and drop a copy they were making */
	if (!atomic_compare_exchange_strong_explicit(
		    &slot_at(m, (uint64_t)at)[0], &c, tomb,
		    memory_order_release, memory_order_relaxed))
		return SHK_ECORRUPT; /* nobody else writes our key's slot */
	SHK_CRASHPOINT("map.delete.after_tomb");
	/* relaxed: only the stripe's holder writes count */
	atomic_fetch_sub_explicit(&m->stripes[s].count, 1,
				  memory_order_relaxed);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sweeps: tombstones back to EMPTY (KMPW maps: never)                 */
/* ------------------------------------------------------------------ */

/*
 * Why.  A delete leaves a tombstone, which an insert reuses only when it
 * lies on that insert's own probe run.  Under churn (keys come and go,
 * few live at a time) tombstones replace the EMPTY slots one by one, and
 * every get of an absent key and every put of a new key (which scans its
 * whole run, under its stripe lock) ends up scanning most of the table.
 *
 * What.  A sweep turns into EMPTY every even tombstone that no present
 * key's probe path crosses: TOMB at slot i is cleared unless some FULL or
 * busy slot j after i (in probe order, before the next EMPTY) holds a key
 * whose home is at or before i.  Entries never move.
 *
 * Exclusion.  The sweep holds every stripe (lock_all(): each stripe's
 * process-local mutex and robust lock, in stripe order, as any writer
 * takes one).  Every ctl change except a sweep's is made by the holder of
 * some stripe: claims and publishes by a writer under its key's stripe,
 * deletes likewise, repairs under the stripe the repairer took.  So while
 * a sweep holds them all no ctl word and no key word changes: the table it
 * walks is frozen for writers, and only lock-free readers run beside it.
 *
 * Correctness.  (1) Present keys stay reachable: a slot is cleared only
 * if no present key's path crosses it, computed from the frozen table (see
 * sweep_range()).  A reader of a key K that is present throughout its get
 * finds every slot of K's path non-EMPTY whenever it reads it: before the
 * sweep they were (invariant), the sweep leaves them alone, and after it
 * only claims and deletes touch them, which never make EMPTY.  Readers
 * need no change: they never wrote, and a slot's EMPTY ends their run as
 * before.  (2) Inserts: an insert of K scans its run and claims a slot
 * within one hold of K's stripe; a sweep cannot run inside that hold, so
 * the path the insert saw non-EMPTY stays non-EMPTY until K is published
 * (other writers claim or delete; they never make EMPTY), after which (1)
 * protects it.  An insert that scanned before a sweep claims after it only
 * in a later hold, which scans again.  (3) A cleared slot keeps its seq
 * (plus 2, even): a reader preempted across delete, sweep and a new insert
 * into that slot sees a different ctl and drops its copy (a seq restarted
 * at 0 could repeat the one it saw).  That is why only KMPE maps sweep: an
 * older library finds an EMPTY slot with a seq corrupt.
 *
 * Deadlock.  A sweep takes stripes in increasing order and holds none when
 * it starts (put and delete call it after letting their stripe go);
 * writers and repairing readers hold at most one stripe and wait for no
 * other.  Two sweeps order on stripe 0.
 *
 * Kills.  A sweeper killed holding the stripes leaves them to be taken
 * over one by one (each taker repairs its stripe, which finds nothing
 * odd); slots it cleared were safe to clear, slots it did not are still
 * tombstones.  Crash points map.sweep.locked and map.sweep.cleared.
 */

/* Takes every stripe (held[s] = local mutex taken) within SWEEP_LOCK_NS
 * in all; on failure lets go what it took and returns the error. */
static int
lock_all(shk_map *m, int *held)
{
	int64_t deadline = shk__deadline(SWEEP_LOCK_NS), left;
	uint32_t s, t;
	int rc;

	for (s = 0; s < m->nstripes; s++) {
		left = deadline - shk__now_ns();
		rc = stripe_lock(m, s, left > 0 ? left : 1, &held[s]);
		if (rc) {
			for (t = s; t-- > 0;)
				stripe_unlock(m, t, held[t]);
			return rc;
		}
	}
	return 0;
}

static void
unlock_all(shk_map *m, const int *held)
{
	uint32_t s;

	for (s = m->nstripes; s-- > 0;)
		stripe_unlock(m, s, held[s]);
}

/*
 * With every stripe held: clears the tombstones of slots [lo, hi)
 * (lo < hi <= cap) that no present key's path crosses.  It looks for the
 * first EMPTY at or above hi (wrapping; d slots up), then walks down from
 * the slot below it to lo, keeping `cover`: how many slots below the
 * current one some key seen so far (above it, up to that EMPTY) still
 * needs, i.e. the largest displacement left.  A key's path cannot cross an
 * EMPTY slot (invariant), so keys above that EMPTY need nothing below it.
 * A busy slot (a dead owner's write: its key and home are not to be
 * trusted) makes `known` 0: nothing is cleared until the walk meets an
 * EMPTY, or has walked cap - 1 slots since the busy one (`clean`): then it
 * has seen every other slot's key, and a key's path is shorter than cap,
 * so cover is exact with no EMPTY at all.  A table with no EMPTY slot
 * (d == cap) is walked twice from hi - 1 down (2 cap slots, the one walk
 * here longer than d + SWEEP_CHUNK): the first lap learns cover, the second
 * clears the whole table; so one such walk gives the map EMPTY slots back
 * (F1 of the 2026-11-25 review: before, a map with none was never cleared
 * again, and every writer's long scan started a sweep that cleared
 * nothing).  Returns how many were cleared; *kept gets the tombstones of
 * the range it left.
 */
static uint64_t
sweep_range(shk_map *m, uint64_t lo, uint64_t hi, uint64_t *kept)
{
	uint64_t d, n, i, c, h, span = hi - lo, cover = 0, cleared = 0;
	uint64_t clean = 0; /* slots walked since the last odd one */
	uint32_t st;
	int known = 0;

	*kept = 0;
	for (d = 0; d < m->cap; d++) {
		/* acquire (F6 of the review): the table is frozen while we
		 * hold every stripe, and the stripe locks' acquire orders
		 * the last writes of a holder that let go before us; a
		 * holder that was killed and taken over released nothing,
		 * so its last ctl stores are ordered only by their own
		 * release (publish, TOMB, repair), which this pairs with.
		 * Free on x86, as in repair_stripe(). */
		c = atomic_load_explicit(&slot_at(m, (hi + d) & m->mask)[0],
					 memory_order_acquire);
		if (SHK__MAP_CTL_ST(c) == SHK__MAP_EMPTY &&
		    !(SHK__MAP_CTL_SEQ(c) & 1)) {
			known = 1;
			break;
		}
	}
	if (!known)
		span = m->cap; /* no EMPTY: walk two laps, clear the table */
	/* from slot hi + d - 1 down: d + span slots; clears where n >= d */
	for (n = 0; n < d + span; n++) {
		i = (hi + d - 1 - n) & m->mask;
		/* acquire: as above */
		c = atomic_load_explicit(&slot_at(m, i)[0],
					 memory_order_acquire);
		st = SHK__MAP_CTL_ST(c);
		if (!ctl_valid(m, c))
			return cleared; /* leave a corrupt map to check */
		if (SHK__MAP_CTL_SEQ(c) & 1) {
			known = 0;
			clean = 0;
			continue;
		}
		/* every slot of (i, i + cap) walked, none odd: cover is exact
		 * with or without an EMPTY above (a key's path is < cap) */
		if (clean++ >= m->cap - 1)
			known = 1;
		if (st == SHK__MAP_EMPTY) {
			known = 1; /* keeps cover: conservative */
		} else if (st == SHK__MAP_TOMB && n >= d) {
			uint64_t e = SHK__MAP_CTL(SHK__MAP_EMPTY, 0,
						  SHK__MAP_CTL_SEQ(c) + 2);

			/* relaxed: nothing is published with an EMPTY slot;
			 * writers see it through the stripe locks' release
			 * and acquire; a reader that loads it stops there,
			 * which no present key's path makes wrong.  Cannot
			 * fail: no other ctl writer runs (frozen). */
			if (known && cover == 0 &&
			    atomic_compare_exchange_strong_explicit(
				    &slot_at(m, i)[0], &c, e,
				    memory_order_relaxed,
				    memory_order_relaxed)) {
				cleared++;
				SHK_CRASHPOINT("map.sweep.cleared");
				continue;
			}
			(*kept)++;
		}
		if (cover)
			cover--;
		if (st == SHK__MAP_FULL) {
			h = raw_key_hash(m, i);
			if ((uint64_t)((i - h) & m->mask) > cover)
				cover = (i - h) & m->mask;
		}
	}
	return cleared;
}

/*
 * One sweep step: with every stripe held, clears what tombstones it can in
 * the chunk below the header's sweep_at (SWEEP_CHUNK slots, or the whole
 * map if smaller), moves sweep_at down one chunk (wrapping from 0 to
 * cap), and sets the back-off.  Chunks go down so that the EMPTY slots a
 * step makes lie just above the next step's chunk, where its search
 * starts.  One chunk per call bounds what a put or delete pays (F5 of the
 * review: a whole sweep of a large map ran inside one call).  Gives up
 * quietly when the stripes stay held (a stopped writer): it is only a
 * speed-up.
 */
static void
sweep(shk_map *m)
{
	int held[SHK__MAP_STRIPES];
	uint64_t lo, hi, at, cleared, kept, w, shift, to;

#ifdef SHK_TEST_HOOKS
	/* relaxed: a test statistic */
	atomic_fetch_add_explicit(&shk__map_sweeps, 1, memory_order_relaxed);
#endif
	if (lock_all(m, held))
		return;
	SHK_CRASHPOINT("map.sweep.locked");
	/* acquire: written only by sweepers holding every stripe (ordered
	 * by the stripe locks; acquire as in sweep_range() for a sweeper
	 * taken over); a value out of range is read as cap */
	at = atomic_load_explicit(&m->hdr->sweep_at, memory_order_acquire);
	hi = at == 0 || at >= m->cap ? m->cap : at;
	lo = hi > SWEEP_CHUNK ? hi - SWEEP_CHUNK : 0;
	cleared = sweep_range(m, lo, hi, &kept);
	/* release: pairs with the next sweeper's acquire load above */
	atomic_store_explicit(&m->hdr->sweep_at, (uint32_t)lo,
			      memory_order_release);
	/* back-off: the top bits of the credit word change only here, under
	 * every stripe, so the shift read is the one we change; relaxed: a
	 * tally, it orders nothing (fetch_add: writers add to the low bits
	 * meanwhile) */
	w = atomic_load_explicit(&m->hdr->sweep_credit, memory_order_relaxed);
	shift = w >> SWEEP_SHIFT_AT;
	to = cleared ? 0 : kept && shift < SWEEP_MAX_SHIFT ? shift + 1 : shift;
	if (to != shift)
		atomic_fetch_add_explicit(&m->hdr->sweep_credit,
					  (to - shift) << SWEEP_SHIFT_AT,
					  memory_order_relaxed);
	unlock_all(m, held);
}

/*
 * A put or delete (stripe let go) passed tombs tombstones: add them to the
 * map's credit, in its header, so that short-lived handles count too (F4
 * of the review: a handle's own credit was lost when it closed or was
 * killed); the adder that brings the credit to the threshold takes it
 * (CAS to zero, the back-off kept) and sweeps one step.
 */
static void
sweep_credit(shk_map *m, uint64_t tombs)
{
	uint64_t w, shift, need, span;

	if (!m->clears)
		return;
	/* relaxed: a tally any process adds to; it publishes nothing (the
	 * sweep orders itself through the stripe locks) */
	w = atomic_fetch_add_explicit(&m->hdr->sweep_credit, tombs,
				      memory_order_relaxed) +
	    tombs;
	span = m->cap < SWEEP_CHUNK ? m->cap : SWEEP_CHUNK;
	for (;;) {
		shift = w >> SWEEP_SHIFT_AT;
		if (shift > SWEEP_MAX_SHIFT)
			shift = SWEEP_MAX_SHIFT; /* scribbled: bounded */
		need = (span / SWEEP_CREDIT_DIV) << shift;
		if ((w & SWEEP_CREDIT_MASK) < (need ? need : 1))
			return;
		/* relaxed: a claim on the tally, not on memory; on failure
		 * w is the new value: another adder took it (below the
		 * threshold now) or added more (try again) */
		if (atomic_compare_exchange_weak_explicit(
			    &m->hdr->sweep_credit, &w, w & ~SWEEP_CREDIT_MASK,
			    memory_order_relaxed, memory_order_relaxed))
			break;
	}
	sweep(m);
}

/* ------------------------------------------------------------------ */
/* Public calls                                                        */
/* ------------------------------------------------------------------ */

int
shk_map_put(shk_map *m, const void *key, const void *val)
{
	struct scan sc = { 0 };
	uint64_t h;
	uint32_t s;
	int rc, lh;

	if (!m || !key || (!val && m->val_len))
		return SHK_EINVAL;
	h = key_hash(m, key);
	s = stripe_of(m, h);
	rc = stripe_lock(m, s, WRITE_LOCK_NS, &lh);
	if (rc)
		return rc;
	SHK_CRASHPOINT("map.put.locked");
	rc = put_locked(m, s, key, val, h, &sc);
	stripe_unlock(m, s, lh);
	if (SHK_UNLIKELY(sc.tombs >= SWEEP_TOMBS))
		sweep_credit(m, sc.tombs);
	return rc;
}

int
shk_map_delete(shk_map *m, const void *key)
{
	struct scan sc = { 0 };
	uint64_t h;
	uint32_t s;
	int rc, lh;

	if (!m || !key)
		return SHK_EINVAL;
	h = key_hash(m, key);
	s = stripe_of(m, h);
	rc = stripe_lock(m, s, WRITE_LOCK_NS, &lh);
	if (rc)
		return rc;
	rc = delete_locked(m, s, key, h, &sc);
	stripe_unlock(m, s, lh);
	if (SHK_UNLIKELY(sc.tombs >= SWEEP_TOMBS))
		sweep_credit(m, sc.tombs);
	return rc;
}

int
shk_map_get(shk_map *m, const void *key, void *val_out)
{
	struct backoff b = { 0 };
	uint64_t h, n, i, c;
	int rc;

	if (!m || !key)
		return SHK_EINVAL;
	h = key_hash(m, key);
	for (n = 0; n < m->cap; n++) {
		i = (h + n) & m->mask;
		switch (read_slot(m, i, key, NULL, val_out, &c)) {
		case R_EMPTY:
			return SHK_ENOENT;
		case R_SKIP:
			b.start = 0; /* moving on: the next slot's own wait */
			break;
		case R_HIT:
			return 0;
		case R_BUSY:
			if (backoff_expired(&b)) {
				rc = fix_busy(m, i, c, stripe_of(m, h));
				if (rc)
					return rc;
				b.start = 0;
			}
			n--;
			break;
		case R_RETRY:
			if (backoff_expired(&b))
				return SHK_EAGAIN;
			n--;
			break;
		default:
			return SHK_ECORRUPT;
		}
	}
	return SHK_ENOENT;
}

int
shk_map_next(shk_map *m, uint32_t *cursor, void *key_out, void *val_out)
{
	struct backoff b = { 0 };
	uint64_t i, c;
	int rc;

	if (!m || !cursor)
		return SHK_EINVAL;
	for (i = *cursor; i < m->cap; i++) {
		switch (read_slot(m, i, NULL, key_out, val_out, &c)) {
		case R_EMPTY:
		case R_SKIP:
			b.start = 0; /* moving on: the next slot's own wait */
			break;
		case R_HIT:
			*cursor = (uint32_t)(i + 1);
			return 1;
		case R_BUSY:
			if (backoff_expired(&b)) {
				*cursor = (uint32_t)i;
				/* the key of a FULL slot does not change while
				 * it is odd, so its hash names the stripe that
				 * the writer holds */
				rc = fix_busy(m, i, c,
					      stripe_of(m, raw_key_hash(m, i)));
				if (rc)
					return rc;
				b.start = 0;
			}
			i--;
			break;
		case R_RETRY:
			if (backoff_expired(&b)) {
				*cursor = (uint32_t)i;
				return SHK_EAGAIN;
			}
			i--;
			break;
		default:
			*cursor = (uint32_t)i;
			return SHK_ECORRUPT;
		}
	}
	*cursor = (uint32_t)m->cap;
	return 0;
}

int
shk_map_count(shk_map *m)
{
	uint64_t n = 0;
	uint32_t s;

	if (!m)
		return SHK_EINVAL;
	for (s = 0; s < m->nstripes; s++) {
		/* relaxed: a statistic; exact when no writer is active */
		uint32_t c = atomic_load_explicit(&m->stripes[s].count,
						  memory_order_relaxed);

		if (c > m->cap)
			return SHK_ECORRUPT;
		n += c;
	}
	/* the sum may pass cap legally (a dead deleter's stripe counts one
	 * too many until it is taken over): capped, as documented */
	return n > m->cap ? (int)m->cap : (int)n;
}

uint64_t
shk_map_cap(const shk_map *m)
{
	return m ? m->cap : 0;
}

uint32_t
shk_map_key_len(const shk_map *m)
{
	return m ? m->key_len : 0;
}

uint32_t
shk_map_val_len(const shk_map *m)
{
	return m ? m->val_len : 0;
}

/* ------------------------------------------------------------------ */
/* Open, check, describe                                               */
/* ------------------------------------------------------------------ */

struct map_geom {
	uint32_t key_len;
	uint32_t val_len;
	uint64_t cap;
};

static int
map_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	const struct map_geom *g = arg;
	struct shk__map_hdr *h = mem;
	uint32_t nstripes =
		g->cap < SHK__MAP_STRIPES ? (uint32_t)g->cap : SHK__MAP_STRIPES;

#ifdef SHK_TEST_HOOKS
	h->magic = shk__map_create_fnv    ? SHK__MAP_MAGIC
		   : shk__map_create_kmpw ? SHK__MAP_MAGIC_W
					  : SHK__MAP_MAGIC_E;
#else
	h->magic = SHK__MAP_MAGIC_E;
#endif
	h->key_len = g->key_len;
	h->val_len = g->val_len;
	h->slot_len = 8 * (1 + words(g->key_len) + words(g->val_len));
	h->cap = g->cap;
	h->nstripes = nstripes;
	h->seed = fmix64((uint64_t)shk__realtime_ns() ^
			 ((uint64_t)getpid() << 32) ^ info->off);
	h->stripes_off = SHK__MAP_STRIPES_OFF;
	h->slots_off = slots_off_for(nstripes);
	/* stripes and slots: zero (unlocked, count 0, EMPTY) */
	return 0;
}

/* Validates the immutable header against the registry entry; fills *g. */
static int
hdr_check(const void *mem, const shk_obj_info *info, struct shk__map_hdr *g)
{
	uint64_t slots_bytes;

	if (info->len < sizeof(*g))
		return SHK_ECORRUPT;
	/* read once; check the copy.  Field by field: the sweep words of a
	 * KMPE map change under other processes (relaxed atomics), so they
	 * are not copied (zero in *g); the rest is immutable. */
	{
		const struct shk__map_hdr *h = mem;

		memset(g, 0, sizeof(*g));
		g->magic = h->magic;
		g->key_len = h->key_len;
		g->val_len = h->val_len;
		g->slot_len = h->slot_len;
		g->cap = h->cap;
		g->nstripes = h->nstripes;
		g->seed = h->seed;
		g->stripes_off = h->stripes_off;
		g->slots_off = h->slots_off;
	}
	/* Compiler barrier (as in segment.c validate_hdr()): after it the
	 * compiler must assume the shared header changed, so it cannot turn
	 * a read of the copy back into a read of *mem. */
	atomic_signal_fence(memory_order_seq_cst);
	if ((g->magic != SHK__MAP_MAGIC && g->magic != SHK__MAP_MAGIC_W &&
	     g->magic != SHK__MAP_MAGIC_E) ||
	    g->key_len == 0 || g->key_len > SHK__MAP_MAX_KEY ||
	    g->val_len > SHK__MAP_MAX_VAL)
		return SHK_ECORRUPT;
	if (g->slot_len != 8 * (1 + words(g->key_len) + words(g->val_len)))
		return SHK_ECORRUPT;
	if (g->cap == 0 || g->cap > SHK__MAP_MAX_CAP ||
	    (g->cap & (g->cap - 1)) || g->cap != info->cap)
		return SHK_ECORRUPT;
	if ((uint64_t)g->key_len + g->val_len != info->elem_len)
		return SHK_ECORRUPT;
	if (g->nstripes !=
	    (g->cap < SHK__MAP_STRIPES ? g->cap : SHK__MAP_STRIPES))
		return SHK_ECORRUPT;
	if (g->stripes_off != SHK__MAP_STRIPES_OFF ||
	    g->slots_off != slots_off_for(g->nstripes))
		return SHK_ECORRUPT;
	slots_bytes = g->cap * g->slot_len;
	if (g->slots_off > info->len || slots_bytes > info->len - g->slots_off)
		return SHK_ECORRUPT;
	return 0;
}

/* A handle-less view for check/describe (no mutexes needed). */
static void
view_init(shk_map *v, shk_seg *seg, void *mem, const struct shk__map_hdr *g)
{
	v->seg = seg;
	v->obj = mem;
	v->stripes =
		(struct shk__map_stripe *)((uint8_t *)mem + g->stripes_off);
	v->slots = (uint8_t *)mem + g->slots_off;
	v->cap = g->cap;
	v->mask = g->cap - 1;
	v->seed = g->seed;
	v->word_hash = g->magic != SHK__MAP_MAGIC;
	v->clears = g->magic == SHK__MAP_MAGIC_E;
	v->hdr = mem;
	v->key_len = g->key_len;
	v->val_len = g->val_len;
	v->slot_len = g->slot_len;
	v->kw = words(g->key_len);
	v->vw = words(g->val_len);
	v->nstripes = g->nstripes;
}

struct map_census {
	uint64_t full, tomb, busy, counted;
};

static int
census(const shk_map *v, struct map_census *cs)
{
	uint64_t i;
	uint32_t s;

	memset(cs, 0, sizeof(*cs));
	for (i = 0; i < v->cap; i++) {
		/* relaxed: a snapshot of each word, checked for validity */
		uint64_t c = atomic_load_explicit(&slot_at(v, i)[0],
						  memory_order_relaxed);

		if (!ctl_valid(v, c))
			return SHK_ECORRUPT;
		if (SHK__MAP_CTL_SEQ(c) & 1)
			cs->busy++;
		else if (SHK__MAP_CTL_ST(c) == SHK__MAP_FULL)
			cs->full++;
		else if (SHK__MAP_CTL_ST(c) == SHK__MAP_TOMB)
			cs->tomb++;
	}
	/* Each stripe's count is at most cap (count.. in the top comment);
	 * their sum is not bounded by cap: a dead deleter's stripe counts
	 * one too many, and a live map's counts are read at different
	 * instants.  The sum reported is capped at cap, as shk_map_count()'s. */
	for (s = 0; s < v->nstripes; s++) {
		/* relaxed: a statistic */
		uint32_t n = atomic_load_explicit(&v->stripes[s].count,
						  memory_order_relaxed);

		if (n > v->cap)
			return SHK_ECORRUPT;
		cs->counted += n;
	}
	if (cs->counted > v->cap)
		cs->counted = v->cap;
	return 0;
}

int
shk__kind_check_map(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__map_hdr g;
	struct map_census cs;
	shk_map v;
	int rc = hdr_check(mem, info, &g);

	if (rc)
		return rc;
	view_init(&v, seg, mem, &g);
	return census(&v, &cs);
}

int
shk__kind_describe_map(shk_seg *seg, void *mem, const shk_obj_info *info,
		       char *buf, size_t len)
{
	struct shk__map_hdr g;
	struct map_census cs;
	shk_map v;
	int rc = hdr_check(mem, info, &g), n;

	if (rc)
		return rc;
	view_init(&v, seg, mem, &g);
	rc = census(&v, &cs);
	if (rc)
		return rc;
	n = snprintf(buf, len,
		     "count=%llu/%llu full=%llu tombstones=%llu busy=%llu "
		     "key_len=%u val_len=%u format=%s",
		     (unsigned long long)cs.counted, (unsigned long long)g.cap,
		     (unsigned long long)cs.full, (unsigned long long)cs.tomb,
		     (unsigned long long)cs.busy, g.key_len, g.val_len,
		     v.clears      ? "KMPE"
		     : v.word_hash ? "KMPW"
				   : "KMAP");
	if (n < 0)
		return SHK_EINVAL;
	return (size_t)n < len ? n : (int)len - 1;
}

int
shk_map_open(shk_seg *seg, const char *name, unsigned flags,
	     const shk_map_opts *opts, shk_map **out)
{
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	shk_map_opts o = SHK_MAP_OPTS_INIT;
	struct shk__map_hdr g;
	struct map_geom geom = { 0 };
	shk_obj_info info;
	uint64_t bytes = 0, cap = 0;
	struct local_set *spare = NULL;
	shk_map *m = NULL;
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
	pthread_once(&local_once, local_setup);
	if (o.key_len > SHK__MAP_MAX_KEY || o.val_len > SHK__MAP_MAX_VAL ||
	    o.cap > SHK__MAP_MAX_CAP || (!o.key_len && o.val_len))
		return SHK_EINVAL;
	if (o.cap) {
		for (cap = 1; cap < o.cap; cap <<= 1)
			;
	}
	if (o.key_len && cap) {
		uint32_t ns = cap < SHK__MAP_STRIPES ? (uint32_t)cap
						     : SHK__MAP_STRIPES;

		geom.key_len = o.key_len;
		geom.val_len = o.val_len;
		geom.cap = cap;
		bytes = slots_off_for(ns) +
			cap * 8 * (1 + words(o.key_len) + words(o.val_len));
	}
	/* bytes == 0 (no geometry) makes a create SHK_EINVAL in the
	 * registry, while an open still succeeds */
	want.kind = SHK_KIND_MAP;
	want.type_id = o.type_id;
	want.elem_len = o.key_len ? (uint64_t)o.key_len + o.val_len : 0;
	want.cap = cap;
	want.align = 64;
	/* the handle and its lock set before the object: a failed
	 * allocation after a creation would leave the map (and a SHK_EXCL
	 * retry SHK_EEXIST) */
	m = calloc(1, sizeof(*m));
	spare = local_alloc();
	if (!m || !spare) {
		rc = SHK_ENOMEM;
		goto fail;
	}
	rc = shk__obj_open(seg, name, flags, &want, bytes, map_init, &geom,
			   shk__kind_check_map, &info, &mem);
	if (rc)
		goto fail;
	rc = hdr_check(mem, &info, &g);
	if (rc)
		goto fail;
	if (o.key_len && (g.key_len != o.key_len || g.val_len != o.val_len)) {
		rc = SHK_ETYPE;
		goto fail;
	}
	view_init(m, seg, mem, &g);
	m->local = local_get(m->stripes, m->nstripes, &spare);
	if (!m->local) {
		rc = SHK_ECORRUPT; /* more stripes than hdr_check() allows */
		goto fail;
	}
	free(spare);
	/* the handle keeps the segment handle until its close */
	shk__seg_ref(seg);
	*out = m;
	return 0;
fail:
	free(spare);
	free(m);
	return rc;
}

void
shk_map_close(shk_map *m)
{
	shk_seg *seg;

	if (!m)
		return;
	seg = m->seg;
	local_put(m->local);
	free(m);
	shk__seg_unref(seg);
}
