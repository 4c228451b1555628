/*
 * bcast.c - one writer, many readers (ALGORITHMS §5).  Lossy mode is a
 * positional seqlock after Agrona's broadcast buffer; reliable mode gates
 * the writer on the slowest reader's cursor, Disruptor-style.
 *
 * Shared words (struct shk__bcast_hdr, bcast.h), all but the slots
 * written only by the writer:
 *   tail_intent  end of the record being written; stored (relaxed) and
 *                followed by a release fence *before* the record's bytes
 *   tail         end of the last complete record (release)
 *   latest       start of the last complete record (release, after tail)
 *   next_seq     records written; each DATA record carries its sequence
 *   pub_gen      odd while next_seq/tail/latest change, so a joining
 *                reader can read a consistent (tail, next_seq) pair
 *   writer_stamp the writer's owner stamp (CAS at open, 0 at close:
 *                shk__role_claim()/shk__role_release(), endpoint.c)
 *                The writer role and reader slots are claimed under the
 *                registry lock (shk__obj_attach()), where shk_obj_remove
 *                reads them (shk__kind_busy_bcast()); a buffer removed
 *                anyway (SHK_FORCE) is noticed through the registry entry
 *                by a wait as it wakes (bcast_gone(), shk__wait_obj()),
 *                by the waits' dead-peer tests and by close, which then
 *                leave its memory alone (docs/registry.md has the window
 *                between such a test and the writes after it).
 *   slots[i]     reader i: word = state | stamp (the reader claims and
 *                frees it; the writer only CASes a dead owner ACTIVE ->
 *                DEAD) and cursor (written by the reader only)
 *
 * Invariants: records are 8-byte aligned and never cross the end of the
 * data area (a PAD record fills the rest); max_record <= cap/2 - 16;
 * tail <= tail_intent <= tail + cap.  Reliable mode: the writer never
 * starts a record that would end past min(active cursors) + cap.
 *
 * Happens-before.  Lossy reading is Boehm's C11 seqlock: the writer
 * stores tail_intent, issues a release fence, then writes the record;
 * the reader loads tail (acquire), copies the record with relaxed/plain
 * loads, issues an acquire fence, then re-loads tail_intent.  If the
 * reader's record starts at c and tail_intent - c <= cap, no byte of it
 * was overwritten, because the writer only writes positions below
 * tail_intent and position x overwrites x - cap.  Otherwise the reader was
 * lapped: it discards the copy and resumes at `latest`; the gap in
 * sequence numbers is its loss count.  Reliable mode: a reader stores its
 * cursor (release) after copying; the writer loads cursors (acquire)
 * before reusing the bytes.  Late join: the reader CASes its slot ACTIVE
 * (seq_cst), fences, then reads tail; the writer stores tail, fences
 * (seq_cst) and only then scans the slots.  So either the writer's scan
 * sees the new slot, or the reader's tail is at least the tail the writer
 * scanned at, and the writer's cached minimum (<= that tail) keeps it from
 * overwriting anything at or past the reader's start.  Once a scan sees
 * the slot, its cursor is the joiner's start or a stale value left by the
 * slot's previous reader.  A stale value within cap behind only makes the
 * writer wait a little longer.  One further behind (or ahead) counts as
 * exactly cap behind.  The writer then writes nothing more until the
 * joiner publishes its start, which the previous cached minimum bounds:
 * start + cap >= pos.  Ignoring such a cursor instead would let the
 * writer lap a joiner that read tail before the writer's last store
 * (issue 3's late-join test caught that).  A reader
 * killed before publishing is reaped like any dead reader.
 *
 * A party killed mid-operation: a writer killed while writing leaves
 * tail_intent ahead of tail; readers treat the bytes it covered as
 * overwritten (they may lose the latest record), and a new writer keeps
 * tail_intent at least that high until it has written past it.  A writer
 * killed inside its publication (pub_gen odd) leaves next_seq possibly
 * one ahead of tail; the next writer derives the sequence from the record
 * at latest instead (resume_seq()), so readers count nothing lost.
 * A reader killed holding a slot keeps a reliable writer waiting until
 * the writer has waited reader_timeout_ns, tested the owner with
 * shk__stamp_alive() and CASed the slot DEAD.  DEAD slots are reused by
 * later readers.
 */
#include "bcast.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "opts.h"
#include "registry.h"

#define PEER_SLICE_NS 50000000LL
/* opens that lose their buffer to a removal before they attach start over
 * (SHK_CREATE) this many times, then give up with SHK_EAGAIN */
#define OPEN_TRIES 16
#define DEFAULT_READER_TIMEOUT_NS 100000000LL
#define MAX_LAPS 64

#ifdef SHK_TEST_HOOKS
int shk__bcast_test_max_laps = MAX_LAPS;
#define LAPS_LIMIT shk__bcast_test_max_laps
#else
#define LAPS_LIMIT MAX_LAPS
#endif

struct shk_bcast {
	shk_seg *seg;
	struct shk__bcast_hdr *hdr;
	struct shk__bcast_slot *slots;
	uint8_t *data;
	uint64_t cap; /* immutable copies, validated at open */
	uint64_t mask;
	uint32_t max_record;
	uint32_t mode;
	uint32_t max_readers;
	int role;
	uint32_t stamp;
	int64_t reader_timeout_ns;
	/* writer */
	uint64_t pos;          /* tail */
	uint64_t seq;          /* next_seq */
	uint64_t gen;          /* pub_gen (even) */
	uint64_t intent_floor; /* a dead predecessor's tail_intent */
	int floor_active;
	uint64_t min_cache; /* reliable: slowest cursor at the last scan */
	uint64_t need;
	int64_t blocked_since; /* reliable: first write that found no room
				* since the last one that did; 0 if none */
	/* reader */
	uint32_t slot;
	uint64_t cursor;
	uint64_t next_seq;
	int seq_known;
	int corrupt;
	struct shk__pollfd pf; /* reader: shk_bcast_fd */
	/* the buffer's registry entry, to tell whether it was removed
	 * (shk_obj_remove_flags with SHK_FORCE) under us */
	struct shk__obj_ref ref;
};

/*
 * FENCE(order, word): a release or acquire fence.  ThreadSanitizer ignores
 * standalone fences (ALGORITHMS §11), so under SAN=thread it becomes an RMW
 * of 0 on the atomic word the fence orders.
 */
#ifdef SHK__TSAN
#define FENCE(order, word)                                                     \
	((void)atomic_fetch_add_explicit((word), 0, memory_order_acq_rel))
#else
#define FENCE(order, word) ((void)(word), atomic_thread_fence(order))
#endif

static inline uint64_t
align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

/* Header words: relaxed, ordered by the fences and tail (see top). */
static inline uint64_t
ld64(const uint8_t *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)p,
				    memory_order_relaxed);
}

static inline void
st64(uint8_t *p, uint64_t v)
{
	atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)p, v,
			      memory_order_relaxed);
}

/*
 * Payload copies.  The reader's copy may race with the writer by design
 * (the seqlock above discards it).  C11 has no racy memcpy (P1478), so
 * under ThreadSanitizer, which would report the intended race, both sides
 * copy with relaxed 8-byte atomics (payloads are 8-byte padded).
 */
static void
copy_in(uint8_t *dst, const void *src, size_t n)
{
#ifdef SHK__TSAN
	size_t i;

	for (i = 0; i < n; i += 8) {
		uint64_t v = 0;

		memcpy(&v, (const uint8_t *)src + i, n - i < 8 ? n - i : 8);
		st64(dst + i, v);
	}
#else
	memcpy(dst, src, n);
#endif
}

static void
copy_out(void *dst, const uint8_t *src, size_t n)
{
#ifdef SHK__TSAN
	size_t i;

	for (i = 0; i < n; i += 8) {
		uint64_t v = ld64(src + i);

		memcpy((uint8_t *)dst + i, &v, n - i < 8 ? n - i : 8);
	}
#else
	memcpy(dst, src, n);
#endif
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

/*
 * Reader slot s as the writer sees it: 0 when not ACTIVE, else 1 with the
 * slot word in *w and the cursor in *c.  A cursor more than cap behind
 * (or ahead) is a joiner's not yet published value, or garbage: it counts
 * as pos - cap, so the writer writes nothing more until the joiner
 * publishes (see the top comment).
 */
static inline int
slot_cursor(shk_bcast *b, struct shk__bcast_slot *s, uint32_t *w, uint64_t *c)
{
	/* acquire: pairs with the CAS in claim_slot() */
	*w = atomic_load_explicit(&s->word, memory_order_acquire);
	if (SHK__BSLOT_STATE(*w) != SHK__BSLOT_ACTIVE)
		return 0;
	/* acquire: pairs with the release store of the cursor in
	 * shk_bcast_read(); the reader is done with bytes below it */
	*c = atomic_load_explicit(&s->cursor, memory_order_acquire);
	if (b->pos - *c > b->cap)
		*c = b->pos - b->cap; /* not yet published: hold */
	return 1;
}

/* Reliable mode: recomputes the slowest active cursor.  Returns 1 when
 * the pending record fits. */
static int
scan(shk_bcast *b)
{
	uint64_t min = b->pos, c;
	uint32_t i, w;

	/* seq_cst fence: orders our tail store before the slot loads; pairs
	 * with the fence after the slot CAS in join() */
	SHK_FENCE_SEQ_CST(&b->hdr->tail);
	for (i = 0; i < b->max_readers; i++) {
		if (!slot_cursor(b, &b->slots[i], &w, &c))
			continue;
		if (b->pos - c > b->pos - min)
			min = c;
	}
	b->min_cache = min;
	return (b->pos - min) + b->need <= b->cap;
}

static int
space_pred(void *arg)
{
	return scan(arg);
}

/* The sleep path's removal test (shk__wait_obj()): lock-free, no system
 * call, so it can run after every futex_wait. */
static int
bcast_gone(void *arg)
{
	shk_bcast *b = arg;

	return shk__obj_live(b->seg, &b->ref) ? 0 : SHK_ENOENT;
}

/* While a reliable writer waits: detach readers whose process died; stop
 * waiting (SHK_ENOENT) on a buffer removed with SHK_FORCE. */
static int
reap_dead(void *arg)
{
	shk_bcast *b = arg;
	uint32_t i;

	if (!shk__obj_live(b->seg, &b->ref))
		return SHK_ENOENT;
	for (i = 0; i < b->max_readers; i++) {
		struct shk__bcast_slot *s = &b->slots[i];
		uint32_t w;
		uint64_t c;

		if (!slot_cursor(b, s, &w, &c))
			continue;
		if ((b->pos - c) + b->need <= b->cap)
			continue; /* not the one holding us up */
		if (shk__stamp_alive(b->seg, SHK__BSLOT_STAMP(w)))
			continue;
		/* relaxed: the slot carries no data for anyone; a racing
		 * joiner's CAS from the same value wins or loses cleanly */
		atomic_compare_exchange_strong_explicit(
			&s->word, &w,
			SHK__BSLOT_WORD(SHK__BSLOT_DEAD, SHK__BSLOT_STAMP(w)),
			memory_order_relaxed, memory_order_relaxed);
	}
	return 0;
}

int
shk_bcast_write(shk_bcast *b, const void *buf, size_t len, int64_t timeout_ns)
{
	struct shk__bcast_hdr *h;
	uint64_t rec, off, to_end, pad, end, intent;
	uint8_t *p;
	int rc;

	if (!b || b->role != SHK_BCAST_WRITER || (!buf && len) ||
	    !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	if (len > b->max_record)
		return SHK_EMSGSIZE;
	h = b->hdr;
	rec = SHK__BREC_HDR + align8(len);
	off = b->pos & b->mask;
	to_end = b->cap - off;
	pad = rec > to_end ? to_end : 0;
	b->need = pad + rec;
	if (b->mode == SHK_BCAST_RELIABLE &&
	    (b->pos - b->min_cache) + b->need > b->cap && !scan(b)) {
		/* A writer that only tries (timeout 0) never sleeps, so the
		 * wait below never runs reap_dead for it: once writes have
		 * found no room for reader_timeout_ns, across calls, test the
		 * readers holding us up here as well. */
		int64_t now = shk__now_ns();

		if (!b->blocked_since) {
			b->blocked_since = now;
		} else if (now - b->blocked_since >= b->reader_timeout_ns) {
			b->blocked_since = now;
			reap_dead(b);
		}
		rc = shk__wait_obj(b->seg, &h->space_wp, space_pred, b,
				   timeout_ns, reap_dead, b->reader_timeout_ns,
				   bcast_gone);
		if (rc)
			return rc;
	}
	b->blocked_since = 0;
	end = b->pos + b->need;
	intent = end;
	if (b->floor_active) {
		if (b->intent_floor - end <= b->cap && b->intent_floor != end)
			intent = b->intent_floor; /* still below it */
		else
			b->floor_active = 0;
	}
	/* relaxed + release fence: the intent is visible before any byte of
	 * the record; pairs with the acquire fence in read_one() */
	atomic_store_explicit(&h->tail_intent, intent, memory_order_relaxed);
	FENCE(memory_order_release, &h->tail_intent);
	if (pad)
		st64(b->data + off,
		     (pad - 8) | ((uint64_t)SHK__BREC_PAD << 32));
	p = b->data + ((b->pos + pad) & b->mask);
	st64(p, (uint64_t)len | ((uint64_t)SHK__BREC_DATA << 32));
	st64(p + 8, b->seq);
	if (len)
		copy_in(p + SHK__BREC_HDR, buf, len);
	SHK_CRASHPOINT("bcast.write.before_publish");
	/* relaxed (gen odd, next_seq): ordered by the release fence below and
	 * the release store of tail; read under the pub_gen seqlock */
	atomic_store_explicit(&h->pub_gen, b->gen + 1, memory_order_relaxed);
	FENCE(memory_order_release, &h->pub_gen);
	/* the four kill points inside the publication: writer_attach() */
	SHK_CRASHPOINT("bcast.write.gen_odd");
	atomic_store_explicit(&h->next_seq, b->seq + 1, memory_order_relaxed);
	SHK_CRASHPOINT("bcast.write.seq_stored");
	/* release: publishes the record; pairs with the acquire loads of tail
	 * in shk_bcast_read() and data_pred() */
	atomic_store_explicit(&h->tail, end, memory_order_release);
	SHK_CRASHPOINT("bcast.write.tail_stored");
	/* release: a reader that loads latest (acquire) also sees tail */
	atomic_store_explicit(&h->latest, b->pos + pad, memory_order_release);
	SHK_CRASHPOINT("bcast.write.latest_stored");
	/* release: closes the pub_gen section; pairs with join() */
	atomic_store_explicit(&h->pub_gen, b->gen + 2, memory_order_release);
	b->gen += 2;
	b->pos = end;
	b->seq++;
	shk__wake(b->seg, &h->data_wp, INT_MAX);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Readers                                                             */
/* ------------------------------------------------------------------ */

static int
data_pred(void *arg)
{
	shk_bcast *b = arg;

	/* acquire: pairs with the release store of tail in
	 * shk_bcast_write() */
	return atomic_load_explicit(&b->hdr->tail, memory_order_acquire) !=
	       b->cursor;
}

static int
writer_check(void *arg)
{
	shk_bcast *b = arg;
	uint32_t s;

	/* removed with SHK_FORCE while we waited: stop waiting on memory
	 * that is no longer the buffer's */
	if (!shk__obj_live(b->seg, &b->ref))
		return SHK_ENOENT;
	/* acquire: pairs with the CAS that installed the stamp */
	s = atomic_load_explicit(&b->hdr->writer_stamp, memory_order_acquire);
	if (s && !shk__stamp_alive(b->seg, s))
		return SHK_EPEERDEAD;
	return 0;
}

static uint64_t
intent_now(shk_bcast *b)
{
	/* acquire fence: the copies above (relaxed and plain loads) happen
	 * before the re-load of tail_intent; pairs with the release fence
	 * after the intent store in shk_bcast_write() (Boehm's seqlock) */
	FENCE(memory_order_acquire, &b->hdr->tail_intent);
	/* relaxed: ordered by the fence above */
	return atomic_load_explicit(&b->hdr->tail_intent, memory_order_relaxed);
}

/* The lapped reader resumes at the newest complete record, or at tail:
 * 0, or SHK_ECORRUPT for a misaligned tail (the cursor is left alone). */
static int
resync(shk_bcast *b)
{
	struct shk__bcast_hdr *h = b->hdr;
	uint64_t l, t, i;

	/* a test stops the reader here and corrupts tail (test
	 * resync_misaligned) */
	SHK_CRASHPOINT("bcast.read.resync");
	/* acquire: pairs with the release store of latest (after tail) */
	l = atomic_load_explicit(&h->latest, memory_order_acquire);
	/* acquire: pairs with the release store of tail */
	t = atomic_load_explicit(&h->tail, memory_order_acquire);
	/* relaxed: only a hint whether latest is being overwritten; the
	 * copy is validated anyway */
	i = atomic_load_explicit(&h->tail_intent, memory_order_relaxed);
	/* records are 8-byte aligned: a cursor at a misaligned tail would
	 * read a header across two words (as the check in
	 * shk_bcast_read()) */
	if (t & 7)
		return SHK_ECORRUPT;
	if (t - l > b->cap || (l & 7) || i - l > b->cap)
		l = t;
	b->cursor = l;
	return 0;
}

static void
publish_cursor(shk_bcast *b)
{
	struct shk__bcast_slot *s = &b->slots[b->slot];

	if (b->mode == SHK_BCAST_RELIABLE) {
		/* release: our copy of the record is done before the writer
		 * reuses its bytes; pairs with the acquire in scan() */
		atomic_store_explicit(&s->cursor, b->cursor,
				      memory_order_release);
		shk__wake(b->seg, &b->hdr->space_wp, 1);
	} else {
		/* relaxed: lossy writers never read cursors; tools do */
		atomic_store_explicit(&s->cursor, b->cursor,
				      memory_order_relaxed);
	}
}

/*
 * A read that was lapped LAPS_LIMIT times gives up with SHK_EAGAIN.  It
 * had found data, so it disarmed the descriptor (shk__pollfd_consumed());
 * re-arm it before going back to the event loop, as any SHK_EAGAIN does:
 * the documented loop polls after SHK_EAGAIN, and a disarmed descriptor
 * got no byte while the writer went on writing (it stayed silent until
 * the writer stopped for good; test fd_lapped).  The arm's re-check finds
 * the data and makes the descriptor readable at once.
 */
static int
lapped_out(shk_bcast *b)
{
	shk__pollfd_idle(&b->pf, data_pred, b);
	return SHK_EAGAIN;
}

int
shk_bcast_read(shk_bcast *b, void *buf, size_t buf_cap, uint64_t *lost,
	       int64_t timeout_ns)
{
	struct shk__bcast_hdr *h;
	int64_t deadline = 0; /* a timed call's, from its first wait */
	int laps = 0, rc;

	if (!b || b->role != SHK_BCAST_READER || (!buf && buf_cap) ||
	    !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	if (lost)
		*lost = 0;
	h = b->hdr;
	for (;;) {
		uint64_t t, c = b->cursor, off, w, seq = 0, rec = 0;
		uint32_t n, type;
		int bad = 0, big = 0;

		/* acquire: pairs with the release store of tail */
		t = atomic_load_explicit(&h->tail, memory_order_acquire);
		if (t & 7)
			return SHK_ECORRUPT;
		if (t == c) {
			/* a later pass (after a resync) waits only for what
			 * is left of the caller's timeout */
			int64_t left = timeout_ns;

			if (timeout_ns > 0) {
				if (!deadline) {
					deadline = shk__deadline(timeout_ns);
				} else {
					left = deadline - shk__now_ns();
					if (left <= 0)
						return SHK_ETIMEDOUT;
				}
			}
			rc = shk__wait_obj(b->seg, &h->data_wp, data_pred, b,
					   left, writer_check, PEER_SLICE_NS,
					   bcast_gone);
			if (rc == SHK_EAGAIN)
				shk__pollfd_idle(&b->pf, data_pred, b);
			if (rc)
				return rc;
			continue;
		}
		shk__pollfd_consumed(&b->pf);
		if (t - c > b->cap) {
			/* more than a lap behind (or tail moved back) */
			if (++laps > LAPS_LIMIT)
				return lapped_out(b);
			if ((rc = resync(b)))
				return rc;
			continue;
		}
		off = c & b->mask;
		w = ld64(b->data + off); /* read once; use the copy */
		n = (uint32_t)w;
		type = (uint32_t)(w >> 32);
		if (type == SHK__BREC_PAD) {
			rec = b->cap - off;
			bad = (uint64_t)n + 8 != rec || rec >= t - c;
		} else if (type == SHK__BREC_DATA && n <= b->max_record) {
			rec = SHK__BREC_HDR + align8(n);
			if (rec > b->cap - off || rec > t - c)
				bad = 1;
			else if (n > buf_cap)
				big = 1;
			else {
				seq = ld64(b->data + off + 8);
				if (n)
					copy_out(buf,
						 b->data + off + SHK__BREC_HDR,
						 n);
			}
		} else {
			bad = 1;
		}
		if (intent_now(b) - c > b->cap) {
			/* overwritten while we looked: discard the copy */
			if (++laps > LAPS_LIMIT)
				return lapped_out(b);
			if ((rc = resync(b)))
				return rc;
			continue;
		}
		if (bad)
			return SHK_ECORRUPT;
		if (big)
			return SHK_EMSGSIZE;
		b->cursor = c + rec;
		if (type == SHK__BREC_PAD)
			continue;
		if (b->seq_known && lost)
			*lost = seq - b->next_seq;
		b->next_seq = seq + 1;
		b->seq_known = 1;
		SHK_CRASHPOINT("bcast.read.before_publish");
		publish_cursor(b);
		return (int)n;
	}
}

/* ------------------------------------------------------------------ */
/* Open, close, check                                                  */
/* ------------------------------------------------------------------ */

static int
geometry_ok(uint64_t cap, uint64_t max_record, uint32_t mode,
	    uint32_t max_readers)
{
	return cap >= SHK__BCAST_MIN_CAP && cap <= SHK__BCAST_MAX_CAP &&
	       (cap & (cap - 1)) == 0 && max_record <= cap / 2 - 16 &&
	       (mode == SHK_BCAST_LOSSY || mode == SHK_BCAST_RELIABLE) &&
	       max_readers >= 1 && max_readers <= SHK__BCAST_MAX_READERS;
}

static uint64_t
data_off_for(uint32_t max_readers)
{
	return SHK__BCAST_SLOTS_OFF +
	       (uint64_t)max_readers * sizeof(struct shk__bcast_slot);
}

/* A consistent (tail, tail_intent) pair: tail unchanged around it. */
static int
snapshot(struct shk__bcast_hdr *h, uint64_t *tail, uint64_t *intent)
{
	return shk__snap_pair(&h->tail, &h->tail_intent, tail, intent);
}

int
shk__kind_check_bcast(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__bcast_hdr *h = mem;
	struct shk__bcast_slot *slots;
	uint64_t cap, t, in;
	uint32_t mr, mode, nr, i;

	(void)seg;
	if (info->len < SHK__BCAST_SLOTS_OFF)
		return SHK_ECORRUPT;
	cap = h->cap;
	mr = h->max_record;
	mode = h->mode;
	nr = h->max_readers;
	if (h->magic != SHK__BCAST_MAGIC || !geometry_ok(cap, mr, mode, nr) ||
	    h->slots_off != SHK__BCAST_SLOTS_OFF ||
	    h->data_off != data_off_for(nr) || info->len < h->data_off ||
	    info->len - h->data_off < cap || cap != info->cap ||
	    mr != info->elem_len)
		return SHK_ECORRUPT;
	if (snapshot(h, &t, &in) && ((t & 7) || in - t > cap))
		return SHK_ECORRUPT;
	slots = (struct shk__bcast_slot *)((uint8_t *)mem +
					   SHK__BCAST_SLOTS_OFF);
	for (i = 0; i < nr; i++) {
		/* relaxed: a read-only validity check */
		uint32_t w = atomic_load_explicit(&slots[i].word,
						  memory_order_relaxed);
		if (SHK__BSLOT_STATE(w) > SHK__BSLOT_DEAD)
			return SHK_ECORRUPT;
	}
	return 0;
}

/*
 * Busy (registry.h, shk__obj_busy_fn): a live writer, or a reader slot
 * ACTIVE for a live owner.  Both are claimed under the registry lock,
 * which our caller holds (shk__obj_attach()), so a claim made before it is
 * visible here.  The walk is bounded by the object's size, whatever the
 * header says.
 */
int
shk__kind_busy_bcast(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__bcast_hdr *h = mem;
	struct shk__bcast_slot *slots =
		(struct shk__bcast_slot *)((uint8_t *)mem +
					   SHK__BCAST_SLOTS_OFF);
	uint32_t i, w, nr;

	if (info->len < SHK__BCAST_SLOTS_OFF)
		return 0;
	/* relaxed (here and below): the registry lock orders every claim
	 * before us; a release racing with us at most shows a party that
	 * is leaving */
	w = atomic_load_explicit(&h->writer_stamp, memory_order_relaxed);
	if (w && shk__stamp_alive(seg, w))
		return 1;
	nr = h->max_readers; /* immutable after creation */
	if (nr > SHK__BCAST_MAX_READERS)
		nr = SHK__BCAST_MAX_READERS;
	if (nr > (info->len - SHK__BCAST_SLOTS_OFF) / 64)
		nr = (uint32_t)((info->len - SHK__BCAST_SLOTS_OFF) / 64);
	for (i = 0; i < nr; i++) {
		w = atomic_load_explicit(&slots[i].word, memory_order_relaxed);
		if (SHK__BSLOT_STATE(w) == SHK__BSLOT_ACTIVE &&
		    shk__stamp_alive(seg, SHK__BSLOT_STAMP(w)))
			return 1;
	}
	return 0;
}

int
shk__kind_describe_bcast(shk_seg *seg, void *mem, const shk_obj_info *info,
			 char *buf, size_t len)
{
	struct shk__bcast_hdr *h = mem;
	struct shk__bcast_slot *slots =
		(struct shk__bcast_slot *)((uint8_t *)mem +
					   SHK__BCAST_SLOTS_OFF);
	uint64_t t, in, max_lag = 0;
	uint32_t i, active = 0, dead = 0, nr = h->max_readers;
	int n;

	/* bound the walk by the object's size, whatever the header says */
	if (nr > (info->len - SHK__BCAST_SLOTS_OFF) / 64)
		nr = (uint32_t)((info->len - SHK__BCAST_SLOTS_OFF) / 64);
	if (!snapshot(h, &t, &in))
		/* relaxed: an informational value of a busy buffer */
		t = atomic_load_explicit(&h->tail, memory_order_relaxed);
	for (i = 0; i < nr; i++) {
		/* relaxed: informational */
		uint32_t w = atomic_load_explicit(&slots[i].word,
						  memory_order_relaxed);
		uint64_t c = atomic_load_explicit(&slots[i].cursor,
						  memory_order_relaxed);

		if (SHK__BSLOT_STATE(w) == SHK__BSLOT_DEAD)
			dead++;
		if (SHK__BSLOT_STATE(w) != SHK__BSLOT_ACTIVE)
			continue;
		active++;
		if (t - c <= h->cap && t - c > max_lag)
			max_lag = t - c;
	}
	/* relaxed: informational values */
	n = snprintf(
		buf, len,
		"mode=%s cap=%llu tail=%llu next_seq=%llu readers=%u/%u "
		"dead=%u max_lag=%llu writer=%s waiters=%u/%u",
		h->mode == SHK_BCAST_RELIABLE ? "reliable" : "lossy",
		(unsigned long long)h->cap, (unsigned long long)t,
		(unsigned long long)atomic_load_explicit(&h->next_seq,
							 memory_order_relaxed),
		active, nr, dead, (unsigned long long)max_lag,
		shk__role_state(seg,
				atomic_load_explicit(&h->writer_stamp,
						     memory_order_relaxed)),
		atomic_load_explicit(&h->data_wp.waiters, memory_order_relaxed),
		atomic_load_explicit(&h->space_wp.waiters,
				     memory_order_relaxed));
	if (n < 0)
		return SHK_EINVAL;
	return (size_t)n >= len ? (int)len - 1 : n;
}

struct init_arg {
	uint32_t mode;
	uint32_t max_readers;
};

static int
bcast_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	struct shk__bcast_hdr *h = mem;
	const struct init_arg *a = arg;

	(void)seg;
	/* zero-filled memory: counters, stamps, slots (FREE) and waitpoints
	 * start at 0; the registry's READY store (release) publishes this */
	h->magic = SHK__BCAST_MAGIC;
	h->cap = info->cap;
	h->max_record = (uint32_t)info->elem_len;
	h->mode = a->mode;
	h->max_readers = a->max_readers;
	h->slots_off = SHK__BCAST_SLOTS_OFF;
	h->data_off = data_off_for(a->max_readers);
	return 0;
}

/*
 * The sequence number a new writer continues with: next_seq, unless a
 * writer died inside its publication (pub_gen odd), where next_seq may be
 * one ahead of tail.  The dead writer stopped at one of four points in
 * shk_bcast_write() (crash points bcast.write.*, test crash_publication):
 *   before the next_seq store   next_seq right; latest ends at tail
 *   before the tail store       next_seq one too high; latest ends at tail
 *   before the latest store     record published, next_seq right; latest
 *                               is the record before, ending below tail
 *   before pub_gen closes       latest ends at tail, its seq + 1 = next_seq
 * So with pub_gen odd: tail 0 (nothing published) gives 0; a DATA record
 * at latest that ends exactly at tail and that nothing has overwritten
 * gives its seq + 1; otherwise next_seq.  That fallback is one too high
 * only when the writer died before its tail store and latest cannot be
 * trusted (the dead writer's record, with its PAD, or an earlier dead
 * writer's tail_intent covered it; a writer killed between its tail
 * and latest stores, then a second one before its tail store): attached
 * readers then count one record lost that was never published.  On
 * hostile memory the seq word read from the record can be anything, as
 * every record's seq word can for readers; the bounds hold.
 */
static uint64_t
resume_seq(shk_bcast *b, uint64_t t, uint64_t in, uint64_t g)
{
	struct shk__bcast_hdr *h = b->hdr;
	/* relaxed: ordered after the caller's acquire load of tail; a dead
	 * writer stores nothing more */
	uint64_t s = atomic_load_explicit(&h->next_seq, memory_order_relaxed);
	uint64_t l, off, w;
	uint32_t n;

	if (!(g & 1))
		return s;
	if (t == 0)
		return 0;
	/* acquire: pairs with the release store of latest */
	l = atomic_load_explicit(&h->latest, memory_order_acquire);
	/* bounds-check the shared values: aligned, within a capacity below
	 * tail, and no byte of it below tail_intent - cap (overwritten) */
	if (t - l < SHK__BREC_HDR || t - l > b->cap || (l & 7) ||
	    in - l > b->cap)
		return s;
	off = l & b->mask;
	w = ld64(b->data + off);
	n = (uint32_t)w;
	if ((uint32_t)(w >> 32) != SHK__BREC_DATA || n > b->max_record ||
	    SHK__BREC_HDR + align8(n) > b->cap - off ||
	    l + SHK__BREC_HDR + align8(n) != t)
		return s;
	return ld64(b->data + off + 8) + 1;
}

/* The writer, once its role is claimed (claim()): its view of the
 * buffer. */
static int
writer_attach(shk_bcast *b)
{
	struct shk__bcast_hdr *h = b->hdr;
	uint64_t t, in, g;

	/* acquire: the previous writer's last publication */
	t = atomic_load_explicit(&h->tail, memory_order_acquire);
	in = atomic_load_explicit(&h->tail_intent, memory_order_acquire);
	g = atomic_load_explicit(&h->pub_gen, memory_order_acquire);
	if ((t & 7) || in - t > b->cap) {
		/* release: give the role back; pairs with the acquire in
		 * shk__role_claim() */
		atomic_store_explicit(&h->writer_stamp, 0,
				      memory_order_release);
		return SHK_ECORRUPT;
	}
	b->seq = resume_seq(b, t, in, g);
	if (g & 1) {
		/* a writer died inside the pub_gen section: make next_seq
		 * match tail, then close it.  relaxed: ordered before the
		 * release store of pub_gen below */
		atomic_store_explicit(&h->next_seq, b->seq,
				      memory_order_relaxed);
		g++;
		/* release: pairs with the acquire loads in join() */
		atomic_store_explicit(&h->pub_gen, g, memory_order_release);
	}
	b->pos = t;
	b->gen = g;
	b->intent_floor = in;
	b->floor_active = in != t;
	b->min_cache = t - b->cap; /* forces a scan before the first write */
	return 0;
}

static int
claim_slot(shk_bcast *b)
{
	uint32_t me = SHK__BSLOT_WORD(SHK__BSLOT_ACTIVE, b->stamp);
	int pass;
	uint32_t i;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < b->max_readers; i++) {
			_Atomic uint32_t *w = &b->slots[i].word;
			/* acquire: pairs with the release store at close */
			uint32_t cur =
				atomic_load_explicit(w, memory_order_acquire);
			uint32_t st = SHK__BSLOT_STATE(cur);

			if (st == SHK__BSLOT_ACTIVE &&
			    (pass == 0 || SHK__BSLOT_STAMP(cur) == b->stamp ||
			     shk__stamp_alive(b->seg, SHK__BSLOT_STAMP(cur))))
				continue;
			if (st != SHK__BSLOT_ACTIVE && st != SHK__BSLOT_FREE &&
			    st != SHK__BSLOT_DEAD)
				continue;
			/* seq_cst: the slot is visible before we read tail
			 * (late join, see the top comment) */
			if (atomic_compare_exchange_strong_explicit(
				    w, &cur, me, memory_order_seq_cst,
				    memory_order_relaxed)) {
				b->slot = i;
				return 0;
			}
		}
	}
	return SHK_EBUSY;
}

/*
 * A consistent (tail, next_seq) pair under the pub_gen seqlock: 1, or 0
 * when the writer stays mid-publication: it died there (or no writer is
 * attached), found after 64 spins and then every 64 yields, or it stayed
 * preempted for PUB_WAIT_NS.  The wait is bounded in time, not in yields:
 * on a loaded CPU each yield can last a whole time slice of another task.
 */
#define PUB_WAIT_NS 20000000LL

static int
pub_pair(shk_bcast *b, uint64_t *t, uint64_t *s)
{
	struct shk__bcast_hdr *h = b->hdr;
	int64_t deadline = 0;
	unsigned i;

	for (i = 0;; i++) {
		if (i >= 64) {
			/* relaxed: only whether a writer is attached at all;
			 * writer_check() loads the stamp it tests (acquire) */
			if (i % 64 == 0 &&
			    (!atomic_load_explicit(&h->writer_stamp,
						   memory_order_relaxed) ||
			     writer_check(b)))
				return 0;
			if (!deadline)
				deadline = shk__now_ns() + PUB_WAIT_NS;
			else if (shk__now_ns() >= deadline)
				return 0;
			sched_yield(); /* a preempted writer needs our CPU */
		}
		/* acquire: pairs with the release store that closes the
		 * pub_gen section in shk_bcast_write() */
		uint64_t g1 =
			atomic_load_explicit(&h->pub_gen, memory_order_acquire);
		uint64_t g2;

		if (g1 & 1) {
			shk__cpu_relax();
			continue;
		}
		/* relaxed: validated by the pub_gen re-check below */
		*t = atomic_load_explicit(&h->tail, memory_order_relaxed);
		*s = atomic_load_explicit(&h->next_seq, memory_order_relaxed);
		/* acquire fence: the loads above before the re-check */
		FENCE(memory_order_acquire, &h->pub_gen);
		g2 = atomic_load_explicit(&h->pub_gen, memory_order_relaxed);
		if (g1 == g2)
			return 1;
	}
}

/*
 * Claims the writer role or a reader slot, under the registry lock
 * (shk__obj_attach()): a removal sees it (SHK_EBUSY) or comes before it,
 * and the claim then finds the buffer gone.
 */
static int
claim(void *arg)
{
	shk_bcast *b = arg;

	if (b->role == SHK_BCAST_WRITER)
		return shk__role_claim(b->seg, &b->hdr->writer_stamp, b->stamp);
	return claim_slot(b);
}

/* A reader, once its slot is claimed (claim()): where it starts. */
static int
reader_attach(shk_bcast *b)
{
	struct shk__bcast_hdr *h = b->hdr;
	uint64_t t = 0, s = 0;

	/* seq_cst fence: orders the slot CAS before the tail loads; pairs
	 * with the fence in scan() */
	SHK_FENCE_SEQ_CST(&b->slots[b->slot].word);
	if (!pub_pair(b, &t, &s)) {
		/* the writer died mid-publication: sequence unknown until
		 * the first record */
		/* acquire: pairs with the release store of tail */
		t = atomic_load_explicit(&h->tail, memory_order_acquire);
		b->seq_known = 0;
	} else {
		b->next_seq = s;
		b->seq_known = 1;
	}
	if (t & 7) {
		/* release: pairs with claim_slot() of a later reader */
		atomic_store_explicit(&b->slots[b->slot].word, 0,
				      memory_order_release);
		return SHK_ECORRUPT;
	}
	b->cursor = t;
	publish_cursor(b);
	return 0;
}

int
shk_bcast_open(shk_seg *seg, const char *name, unsigned flags, int role,
	       const shk_bcast_opts *opts, shk_bcast **out)
{
	shk_bcast_opts o = SHK_BCAST_OPTS_INIT;
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	struct init_arg ia;
	shk_obj_info info;
	struct shk__bcast_hdr *h;
	shk_bcast *b;
	void *mem = NULL;
	uint64_t need;
	int rc, tries = 0;

	if (!out)
		return SHK_EINVAL;
	*out = NULL;
	if (!seg || !name ||
	    (role != SHK_BCAST_WRITER && role != SHK_BCAST_READER))
		return SHK_EINVAL;
	/* as shk__obj_open() judges them: the lookup below passes none */
	if ((flags & ~(SHK_CREATE | SHK_EXCL)) ||
	    ((flags & SHK_EXCL) && !(flags & SHK_CREATE)))
		return SHK_EINVAL;
	rc = shk__opts_copy(&o, sizeof(o), opts);
	if (rc)
		return rc;
	if (o.mode > SHK_BCAST_RELIABLE ||
	    o.max_readers > SHK__BCAST_MAX_READERS || o.reader_timeout_ns < 0)
		return SHK_EINVAL;
	if (o.cap && !geometry_ok(o.cap, 0, SHK_BCAST_LOSSY, 1))
		return SHK_EINVAL;
	if (o.cap && o.max_record > o.cap / 2 - 16)
		return SHK_EINVAL;
	want.kind = SHK_KIND_BCAST;
	want.type_id = o.type_id;
	/* the handle before the object: a failed allocation after a
	 * creation would leave the buffer (and a SHK_EXCL retry SHK_EEXIST) */
	b = calloc(1, sizeof(*b));
	if (!b)
		return SHK_ENOMEM;
again:
	memset(b, 0, sizeof(*b));
	/* record_geometry() below fills zero fields: start from the caller's
	 * at every try */
	want.cap = o.cap;
	want.elem_len = o.max_record;
	rc = SHK_ENOENT;
	if (!(flags & SHK_EXCL) && (!(flags & SHK_CREATE) || !o.cap ||
				    !o.max_record || !o.mode || !o.max_readers))
		rc = shk__obj_open(seg, name, 0, &want, 0, NULL, NULL,
				   shk__kind_check_bcast, &info, &mem);
	if (rc == SHK_ENOENT && (flags & SHK_CREATE)) {
		/* zero fields: defaults for a new buffer */
		shk__record_geometry(&want.cap, &want.elem_len,
				     SHK__BCAST_DEFAULT_CAP, SHK__BCAST_MAX_CAP,
				     SHK__BREC_HDR);
		ia.mode = o.mode ? o.mode : SHK_BCAST_LOSSY;
		ia.max_readers = o.max_readers ? o.max_readers
					       : SHK__BCAST_DEFAULT_READERS;
		if (!geometry_ok(want.cap, want.elem_len, ia.mode,
				 ia.max_readers)) {
			rc = SHK_EINVAL;
			goto fail_free;
		}
		need = data_off_for(ia.max_readers) + want.cap;
		rc = shk__obj_open(seg, name, flags, &want, need, bcast_init,
				   &ia, shk__kind_check_bcast, &info, &mem);
	}
	if (rc)
		goto fail_free;
	h = mem;
	/* immutable: validated by shk__kind_check_bcast(); copied once */
	if ((o.mode && o.mode != h->mode) ||
	    (o.max_readers && o.max_readers != h->max_readers)) {
		rc = SHK_ETYPE;
		goto fail_free;
	}
	b->seg = seg;
	b->hdr = h;
	b->cap = info.cap;
	b->mask = info.cap - 1;
	b->max_record = (uint32_t)info.elem_len;
	b->mode = h->mode;
	b->max_readers = h->max_readers;
	if (!geometry_ok(b->cap, b->max_record, b->mode, b->max_readers) ||
	    info.len < data_off_for(b->max_readers) ||
	    info.len - data_off_for(b->max_readers) < b->cap) {
		rc = SHK_ECORRUPT; /* changed since the check */
		goto fail_free;
	}
	b->slots = (struct shk__bcast_slot *)((uint8_t *)mem +
					      SHK__BCAST_SLOTS_OFF);
	b->data = (uint8_t *)mem + data_off_for(b->max_readers);
	b->role = role;
	b->stamp = shk__seg_stamp(seg);
	b->reader_timeout_ns = o.reader_timeout_ns ? o.reader_timeout_ns
						   : DEFAULT_READER_TIMEOUT_NS;
	shk__obj_ref_init(&b->ref, &info);
	rc = shk__obj_attach(seg, &b->ref, claim, b);
	if (rc == SHK_ENOENT && (flags & SHK_CREATE)) {
		/* removed since our lookup: start over */
		if (++tries < OPEN_TRIES)
			goto again;
		rc = SHK_EAGAIN;
	}
	if (rc)
		goto fail_free;
	rc = role == SHK_BCAST_WRITER ? writer_attach(b) : reader_attach(b);
	if (rc)
		goto fail_free;
	/* the handle keeps the segment handle until its close */
	shk__seg_ref(seg);
	*out = b;
	return 0;

fail_free:
	free(b);
	return rc;
}

int
shk_bcast_fd(shk_bcast *b)
{
	if (!b || b->role != SHK_BCAST_READER)
		return SHK_EINVAL;
	return shk__pollfd_get(&b->pf, b->seg, &b->hdr->data_wp, data_pred, b);
}

void
shk_bcast_close(shk_bcast *b)
{
	shk_seg *seg;

	if (!b)
		return;
	/* the closes below write to the segment: mapped until the unref at
	 * the end */
	seg = b->seg;
	/* removed with SHK_FORCE: the descriptor's close leaves the old
	 * waitpoint alone (as in shk_ring_close()) */
	if (shk__obj_live(b->seg, &b->ref))
		shk__pollfd_close(&b->pf);
	else
		shk__pollfd_abandon(&b->pf);
	if (shk__seg_inherited(b->seg) || !shk__obj_live(b->seg, &b->ref)) {
		/* a forked child's copy: the writer role or reader slot is
		 * its parent's, which goes on using it; a buffer removed with
		 * SHK_FORCE while we held one may be someone else's memory */
		free(b);
		shk__seg_unref(seg);
		return;
	}
	if (b->role == SHK_BCAST_WRITER) {
		/* our publications happen before the next writer's claim */
		shk__role_release(&b->hdr->writer_stamp, b->stamp);
	} else {
		uint32_t me = SHK__BSLOT_WORD(SHK__BSLOT_ACTIVE, b->stamp);

		/* release: pairs with the acquire loads in claim_slot() and
		 * scan(); a DEAD mark (we were judged dead) stays */
		atomic_compare_exchange_strong_explicit(
			&b->slots[b->slot].word, &me, SHK__BSLOT_FREE,
			memory_order_release, memory_order_relaxed);
		if (b->mode == SHK_BCAST_RELIABLE)
			shk__wake(b->seg, &b->hdr->space_wp, 1);
	}
	free(b);
	shk__seg_unref(seg);
}

int
shk_bcast_stat(shk_bcast *b, shk_bcast_stats *st)
{
	struct shk__bcast_hdr *h;
	uint64_t t, in, min;
	uint32_t i;

	if (!b || !st || st->size < sizeof(*st))
		return SHK_EINVAL;
	h = b->hdr;
	if (!snapshot(h, &t, &in))
		/* relaxed: informational value of a busy buffer */
		t = atomic_load_explicit(&h->tail, memory_order_relaxed);
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->cap = b->cap;
	st->max_record = b->max_record;
	st->mode = b->mode;
	st->max_readers = b->max_readers;
	/* next_seq that matches tail: a reader joining after this call
	 * starts at a sequence >= st->next_seq */
	if (!pub_pair(b, &t, &st->next_seq))
		/* relaxed: informational value of a stuck publication */
		st->next_seq = atomic_load_explicit(&h->next_seq,
						    memory_order_relaxed);
	st->tail = t;
	min = t;
	for (i = 0; i < b->max_readers; i++) {
		uint32_t w = atomic_load_explicit(&b->slots[i].word,
						  memory_order_relaxed);
		uint64_t c = atomic_load_explicit(&b->slots[i].cursor,
						  memory_order_relaxed);

		if (SHK__BSLOT_STATE(w) != SHK__BSLOT_ACTIVE)
			continue;
		st->readers++;
		if (t - c <= b->cap && t - c > t - min)
			min = c;
	}
	st->min_cursor = min;
	st->writer = !strcmp(
		shk__role_state(b->seg,
				atomic_load_explicit(&h->writer_stamp,
						     memory_order_relaxed)),
		"alive");
	return 0;
}
