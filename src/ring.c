/*
 * ring.c - SPSC ring of variable-size records (ALGORITHMS §1: Lamport's
 * ring with cached indices, Agrona-style padding record at the wrap).
 *
 * Shared words (struct shk__ring_hdr, ring.h):
 *   tail        written only by the producer (release); free-running count
 *               of bytes published, always a multiple of 8
 *   head        written only by the consumer (release); bytes released
 *   prod_stamp, cons_stamp  the role owners' stamps; CASed at open (from 0
 *               or from a dead owner's stamp), reset to 0 at close
 *   data area   record bytes between head and tail belong to the consumer;
 *               the rest to the producer
 *   data_wp, space_wp  waitpoints (wait.h): the consumer sleeps on data_wp,
 *               the producer on space_wp
 * Each side keeps its own index and a cache of the other's in the
 * process-local handle; shared memory holds only the published values.
 *
 * Invariants: head <= tail <= head + cap (unsigned differences); a record
 * is {u32 len; u32 type} + payload padded to 8 bytes and never crosses the
 * end of the data area: when it would, a PAD record fills the rest of the
 * area and the record starts at offset 0; one tail store publishes both.
 * max_record <= cap/2 - 8, so PAD + record always fit in an empty ring.
 *
 * Happens-before: the producer writes the record header and payload, then
 * stores tail (release); the consumer loads tail (acquire) before it reads
 * any record below it.  The consumer finishes reading a record before it
 * stores head (release); the producer loads head (acquire) before reusing
 * those bytes.  Sleepers follow wait.h's protocol: the publisher calls
 * shk__wake() (seq_cst fence, then the waiter count) after each store.
 * A SHK_RING_SPIN ring (mode fixed at creation, both sides must open it
 * so) has no sleepers: waits poll (shk__spin_checked()), publications
 * skip shk__wake(), and there is no pollable descriptor; the release and
 * acquire pairs above are all it needs.
 * Role claims: the CAS (acquire) pairs with the previous owner's release
 * CAS to 0 at close (shk__role_claim()/shk__role_release(), endpoint.c),
 * so the new owner sees its last published index.  The claim runs under
 * the registry lock once the entry still holds the ring
 * (shk__obj_attach()), so shk_obj_remove, which reads the stamps under
 * that lock (shk__kind_busy_ring()), refuses a ring with a live owner;
 * a ring removed anyway (SHK_FORCE) is noticed through the registry entry
 * by a wait as it wakes (ring_gone(), shk__wait_obj()), by the dead-peer
 * test of a wait and by close, which then leave its memory alone
 * (docs/registry.md has the window between such a test and the writes
 * after it).
 *
 * A party killed mid-operation: a producer killed inside reserve/commit
 * leaves tail at its last publication; the half-written record lies beyond
 * tail and is never seen.  A consumer killed inside peek/release leaves head
 * at its last publication; records it peeked or released without
 * publishing are delivered again to the next consumer (at-least-once).  A
 * dead owner's stamp stays in the header until a new owner, after
 * shk__stamp_alive() says dead, CASes it and re-validates the counters.  A
 * sleeper killed asleep leaves a waiter count and its holder entry, which
 * the next publication that wakes nobody repairs (wait.h, Holders).
 */
#include "ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "opts.h"
#include "registry.h"

/*
 * Prefetch for writing (x86 PREFETCHW; a NOP on CPUs without it).  The
 * producer asks for the line after the one it is filling while it still
 * has work to do, so that the read-for-ownership of that line (the
 * consumer, reading up to tail, usually holds it) overlaps with this
 * record instead of stalling the waker's fence in the next publish.
 */
#if defined(__x86_64__) || defined(__i386__)
#define PREFETCH_W(p) __asm__ __volatile__("prefetchw %0" ::"m"(*(p)))
#else
#define PREFETCH_W(p) __builtin_prefetch((p), 1)
#endif

#define BATCH_RECS 32u
#define PEER_SLICE_NS 50000000LL /* dead-peer test period while asleep */

/*
 * The handle is process-local and used by one role; it is allocated on its
 * own 64-byte lines (ring_alloc) so that a producer and a consumer handle
 * used by two threads of one process never share a line.  The fields the
 * per-record paths touch come first, on one line.
 */
struct shk_ring {
	/* line 0: per-record state */
	struct shk__ring_hdr *hdr;
	uint8_t *data;
	uint64_t mask;  /* immutable copies, validated at open */
	uint64_t pos;   /* own index (producer: tail; consumer: head) */
	uint64_t pub;   /* own index as last published */
	uint64_t other; /* cache of the other side's published index */
	uint32_t max_record;
	uint32_t pend_recs;
	unsigned flags;
	int reserved; /* producer: a reservation is open */
	/* the rest: slow paths */
	shk_seg *seg;
	uint64_t cap;
	int role;
	uint32_t stamp;
	int corrupt; /* set by a wait predicate that saw bad counters */
	/* producer: the open reservation */
	uint64_t res_pos; /* where the record's header goes */
	uint32_t res_len;
	uint32_t res_pad; /* bytes of PAD before it (0 or the tail end) */
	uint64_t need;    /* bytes the waiting reserve needs */
	/* consumer: the peeked record */
	int peeked;
	uint64_t peek_end;
	const void *peek_buf;
	uint32_t peek_len;
	/* consumer: pollable descriptor (shk_ring_fd) */
	struct shk__pollfd pf;
	/* the ring's registry entry, to tell whether it was removed
	 * (shk_obj_remove_flags with SHK_FORCE) under us */
	struct shk__obj_ref ref;
};
_Static_assert(offsetof(struct shk_ring, reserved) + sizeof(int) <= 64,
	       "per-record fields on one line");

#define HANDLE_LEN ((sizeof(struct shk_ring) + 63) & ~(size_t)63)

static inline uint64_t
align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

/* Record headers are read and written as one 64-bit word: len | type<<32.
 * relaxed: ordered by the tail store (release) / load (acquire). */
static inline uint64_t
rec_load(const uint8_t *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)p,
				    memory_order_relaxed);
}

static inline void
rec_store(uint8_t *p, uint32_t len, uint32_t type)
{
	atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)p,
			      (uint64_t)len | ((uint64_t)type << 32),
			      memory_order_relaxed);
}

/*
 * Copies a record's payload between the ring and the caller's buffer (the
 * two never overlap).  Small records are where the per-record cost shows:
 * a call into the C library's memcpy took about a quarter of a spin-mode
 * 8-byte write+read in one thread.  Up to 64 bytes are copied here with
 * fixed-size moves, overlapping at the end.
 */
static inline void
copy_payload(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t i;

	if (n > 64) {
		memcpy(d, s, n);
	} else if (n >= 16) {
		for (i = 0; i + 16 < n; i += 16)
			memcpy(d + i, s + i, 16);
		memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/* ------------------------------------------------------------------ */
/* Publication                                                         */
/* ------------------------------------------------------------------ */

static void
publish_tail(shk_ring *r)
{
	SHK_CRASHPOINT("ring.commit.before_publish");
	/* release: publishes the records below pos; pairs with the acquire
	 * loads of tail in shk_ring_peek() and data_pred() */
	atomic_store_explicit(&r->hdr->tail, r->pos, memory_order_release);
	r->pub = r->pos;
	r->pend_recs = 0;
	if (!(r->flags & SHK_RING_SPIN))
		shk__wake(r->seg, &r->hdr->data_wp, 1);
}

static void
publish_head(shk_ring *r)
{
	SHK_CRASHPOINT("ring.release.before_publish");
	/* release: our reads of the released records happen before the
	 * producer reuses them; pairs with the acquire loads of head in
	 * reload_head() */
	atomic_store_explicit(&r->hdr->head, r->pos, memory_order_release);
	r->pub = r->pos;
	r->pend_recs = 0;
	if (!(r->flags & SHK_RING_SPIN))
		shk__wake(r->seg, &r->hdr->space_wp, 1);
}

/* ------------------------------------------------------------------ */
/* Producer                                                            */
/* ------------------------------------------------------------------ */

/* Reloads head; 0, or SHK_ECORRUPT when it breaks head <= tail <= head +
 * cap. */
static int
reload_head(shk_ring *r)
{
	/* acquire: pairs with the release store in publish_head(); the
	 * consumer is done with the bytes below head */
	uint64_t h = atomic_load_explicit(&r->hdr->head, memory_order_acquire);

	if (r->pos - h > r->cap || (h & 7))
		return SHK_ECORRUPT;
	r->other = h;
	return 0;
}

static int
space_pred(void *arg)
{
	shk_ring *r = arg;

	if (reload_head(r)) {
		r->corrupt = 1;
		return 1;
	}
	return r->cap - (r->pos - r->other) >= r->need;
}

static int
peer_check(void *arg)
{
	shk_ring *r = arg;
	_Atomic uint32_t *w = r->role == SHK_RING_PRODUCER
				      ? &r->hdr->cons_stamp
				      : &r->hdr->prod_stamp;
	uint32_t s;

	/* removed with SHK_FORCE while we waited: stop waiting on memory
	 * that is no longer the ring's */
	if (!shk__obj_live(r->seg, &r->ref))
		return SHK_ENOENT;
	/* acquire: pairs with the CAS that installed the stamp */
	s = atomic_load_explicit(w, memory_order_acquire);
	if (s && !shk__stamp_alive(r->seg, s))
		return SHK_EPEERDEAD;
	return 0;
}

/* The sleep path's removal test (shk__wait_obj()): lock-free, no system
 * call, so it can run after every futex_wait. */
static int
ring_gone(void *arg)
{
	shk_ring *r = arg;

	return shk__obj_live(r->seg, &r->ref) ? 0 : SHK_ENOENT;
}

/*
 * Waits for pred: on the waitpoint, or by polling only in a SHK_RING_SPIN
 * ring, whose publishers never wake anyone.  About every PEER_SLICE_NS the
 * peer's liveness is checked.  A ring removed with SHK_FORCE while we
 * slept: SHK_ENOENT as soon as we wake (ring_gone()), and without a write
 * to its old memory.
 */
static int
ring_wait(shk_ring *r, shk__waitpoint *wp, shk__wait_pred pred,
	  int64_t timeout_ns)
{
	int rc;

	if (r->flags & SHK_RING_SPIN)
		rc = shk__spin_checked(pred, r, timeout_ns, peer_check,
				       PEER_SLICE_NS);
	else
		rc = shk__wait_obj(r->seg, wp, pred, r, timeout_ns, peer_check,
				   PEER_SLICE_NS, ring_gone);
	if (rc == SHK_ENOENT)
		r->corrupt = 0; /* a pred that read what took the block */
	return rc;
}

/* Publishes tail after a commit, at once or as batching allows. */
static inline void
after_commit(shk_ring *r)
{
	r->pend_recs++;
	if (!(r->flags & SHK_RING_BATCH) || r->pend_recs >= BATCH_RECS ||
	    r->pos - r->pub >= r->mask / 4 + 1 ||
	    /* relaxed: a hint that the consumer has caught up with what we
	     * published (rule in ALGORITHMS §1) */
	    atomic_load_explicit(&r->hdr->head, memory_order_relaxed) == r->pub)
		publish_tail(r);
	/* the two lines after the one being filled (see PREFETCH_W; two
	 * measured better than one or four on the development VM); with
	 * the ring nearly full they may be lines the consumer still reads,
	 * which costs that consumer one extra line transfer, only then */
	PREFETCH_W(r->data + ((r->pos + 64) & r->mask & ~(uint64_t)63));
	PREFETCH_W(r->data + ((r->pos + 128) & r->mask & ~(uint64_t)63));
}

int
shk_ring_reserve(shk_ring *r, size_t len, void **buf, int64_t timeout_ns)
{
	uint64_t off, to_end, rec, pad, need;
	int rc;

	if (!r || !buf || r->role != SHK_RING_PRODUCER || r->reserved ||
	    !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	*buf = NULL;
	if (len > r->max_record)
		return SHK_EMSGSIZE;
	rec = SHK__REC_HDR + align8(len);
	off = r->pos & r->mask;
	to_end = r->cap - off;
	pad = rec > to_end ? to_end : 0;
	need = pad + rec;
	if (r->cap - (r->pos - r->other) < need) {
		rc = reload_head(r);
		if (rc)
			return rc;
		if (r->cap - (r->pos - r->other) < need) {
			/* the consumer may be waiting for what we hold back */
			if (r->pos != r->pub)
				publish_tail(r);
			r->need = need;
			r->corrupt = 0;
			rc = ring_wait(r, &r->hdr->space_wp, space_pred,
				       timeout_ns);
			if (r->corrupt)
				return SHK_ECORRUPT;
			if (rc)
				return rc;
		}
	}
	SHK_CRASHPOINT("ring.reserve");
	r->reserved = 1;
	r->res_pad = (uint32_t)pad;
	r->res_pos = r->pos + pad;
	r->res_len = (uint32_t)len;
	*buf = r->data + (r->res_pos & r->mask) + SHK__REC_HDR;
	return 0;
}

int
shk_ring_commit(shk_ring *r)
{
	if (!r || r->role != SHK_RING_PRODUCER || !r->reserved)
		return SHK_EINVAL;
	rec_store(r->data + (r->res_pos & r->mask), r->res_len, SHK__REC_DATA);
	if (r->res_pad)
		rec_store(r->data + (r->pos & r->mask),
			  r->res_pad - SHK__REC_HDR, SHK__REC_PAD);
	SHK_CRASHPOINT("ring.commit");
	r->reserved = 0;
	r->pos = r->res_pos + SHK__REC_HDR + align8(r->res_len);
	after_commit(r);
	return 0;
}

/*
 * shk_ring_write is reserve + copy + commit; when the record fits before
 * the end of the data area and the cached head shows room, it does them
 * inline (same stores, same order, same crash points) without the
 * reservation bookkeeping.
 */
int
shk_ring_write(shk_ring *r, const void *buf, size_t len, int64_t timeout_ns)
{
	uint64_t off, rec;
	uint8_t *p;
	void *dst;
	int rc;

	if (!r || (!buf && len) || r->reserved ||
	    r->role != SHK_RING_PRODUCER || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	if (len > r->max_record)
		return SHK_EMSGSIZE;
	rec = SHK__REC_HDR + align8(len);
	off = r->pos & r->mask;
	if (SHK_LIKELY(rec <= r->mask + 1 - off &&
		       r->mask + 1 - (r->pos - r->other) >= rec)) {
		SHK_CRASHPOINT("ring.reserve");
		p = r->data + off;
		copy_payload(p + SHK__REC_HDR, buf, len);
		rec_store(p, (uint32_t)len, SHK__REC_DATA);
		SHK_CRASHPOINT("ring.commit");
		r->pos += rec;
		after_commit(r);
		return 0;
	}
	rc = shk_ring_reserve(r, len, &dst, timeout_ns);
	if (rc)
		return rc;
	if (len)
		memcpy(dst, buf, len);
	return shk_ring_commit(r);
}

/* ------------------------------------------------------------------ */
/* Consumer                                                            */
/* ------------------------------------------------------------------ */

static int
reload_tail(shk_ring *r)
{
	/* acquire: pairs with the release store in publish_tail(); the
	 * records below tail are complete */
	uint64_t t = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);

	if (t - r->pos > r->cap || (t & 7))
		return SHK_ECORRUPT;
	r->other = t;
	return 0;
}

static int
data_pred(void *arg)
{
	shk_ring *r = arg;

	if (reload_tail(r)) {
		r->corrupt = 1;
		return 1;
	}
	return r->other != r->pos;
}

/* Publishes head after a release, at once or as batching allows. */
static inline void
after_release(shk_ring *r)
{
	r->pend_recs++;
	if (!(r->flags & SHK_RING_BATCH) || r->pend_recs >= BATCH_RECS ||
	    r->pos - r->pub >= r->mask / 4 + 1)
		publish_head(r);
}

int
shk_ring_peek(shk_ring *r, const void **buf, size_t *len, int64_t timeout_ns)
{
	uint64_t w, avail, off, rec;
	uint32_t n, type;
	int rc, skipped = 0;

	if (!r || !buf || !len || r->role != SHK_RING_CONSUMER ||
	    !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	if (r->peeked) {
		*buf = r->peek_buf;
		*len = r->peek_len;
		return 0;
	}
	for (;;) {
		if (r->other == r->pos) {
			rc = reload_tail(r);
			if (rc)
				return rc;
		}
		if (r->other == r->pos) {
			/* caught up: let the producer see all the space */
			if (r->pos != r->pub)
				publish_head(r);
			r->corrupt = 0;
			/* a try (timeout 0) has just checked tail above */
			rc = timeout_ns == 0 ? SHK_EAGAIN
					     : ring_wait(r, &r->hdr->data_wp,
							 data_pred, timeout_ns);
			if (r->corrupt)
				return SHK_ECORRUPT;
			if (rc == SHK_EAGAIN)
				shk__pollfd_idle(&r->pf, data_pred, r);
			if (rc)
				return rc;
		}
		shk__pollfd_consumed(&r->pf);
		avail = r->other - r->pos;
		off = r->pos & r->mask;
		w = rec_load(r->data + off); /* read once; use the copy */
		n = (uint32_t)w;
		type = (uint32_t)(w >> 32);
		if (type == SHK__REC_PAD && !skipped) {
			/* a PAD fills the area to its end exactly */
			if ((uint64_t)n + SHK__REC_HDR != r->cap - off ||
			    r->cap - off >= avail)
				return SHK_ECORRUPT;
			r->pos += r->cap - off;
			skipped = 1;
			continue;
		}
		if (type != SHK__REC_DATA || n > r->max_record)
			return SHK_ECORRUPT;
		rec = SHK__REC_HDR + align8(n);
		if (rec > r->cap - off || rec > avail)
			return SHK_ECORRUPT;
		break;
	}
	SHK_CRASHPOINT("ring.peek");
	r->peeked = 1;
	r->peek_end = r->pos + rec;
	r->peek_buf = r->data + off + SHK__REC_HDR;
	r->peek_len = n;
	*buf = r->peek_buf;
	*len = n;
	return 0;
}

int
shk_ring_release(shk_ring *r)
{
	if (!r || r->role != SHK_RING_CONSUMER || !r->peeked)
		return SHK_EINVAL;
	SHK_CRASHPOINT("ring.release");
	r->peeked = 0;
	r->pos = r->peek_end;
	after_release(r);
	return 0;
}

/*
 * shk_ring_read is peek + copy + release; when a complete DATA record is
 * already known to be below the cached tail (and no doorbell is armed), it
 * validates and copies it inline, with the same checks as shk_ring_peek().
 */
int
shk_ring_read(shk_ring *r, void *buf, size_t buf_cap, int64_t timeout_ns)
{
	uint64_t w, off, rec, avail;
	const void *src;
	size_t n;
	int rc;

	if (!r || (!buf && buf_cap) || r->role != SHK_RING_CONSUMER ||
	    !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	if (!r->peeked && !r->pf.armed) {
		if (r->other == r->pos) {
			rc = reload_tail(r);
			if (rc)
				return rc;
		}
		avail = r->other - r->pos;
		off = r->pos & r->mask;
		if (avail) {
			w = rec_load(r->data + off); /* read once */
			n = (uint32_t)w;
			rec = SHK__REC_HDR + align8(n);
			if (SHK_LIKELY((uint32_t)(w >> 32) == SHK__REC_DATA &&
				       n <= r->max_record && n <= buf_cap &&
				       rec <= r->mask + 1 - off &&
				       rec <= avail)) {
				SHK_CRASHPOINT("ring.peek");
				copy_payload(buf, r->data + off + SHK__REC_HDR,
					     n);
				SHK_CRASHPOINT("ring.release");
				r->pos += rec;
				after_release(r);
				return (int)n;
			}
		} else if (timeout_ns == 0 && !r->pf.db) {
			/* empty: what shk_ring_peek() does for a try */
			if (r->pos != r->pub)
				publish_head(r);
			return SHK_EAGAIN;
		}
	}
	rc = shk_ring_peek(r, &src, &n, timeout_ns);
	if (rc)
		return rc;
	if (n > buf_cap)
		return SHK_EMSGSIZE;
	if (n)
		memcpy(buf, src, n);
	shk_ring_release(r);
	return (int)n;
}

int
shk_ring_flush(shk_ring *r)
{
	if (!r)
		return SHK_EINVAL;
	if (r->pos != r->pub) {
		if (r->role == SHK_RING_PRODUCER)
			publish_tail(r);
		else
			publish_head(r);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Open, close, check                                                  */
/* ------------------------------------------------------------------ */

static int
geometry_ok(uint64_t cap, uint64_t max_record)
{
	return cap >= SHK__RING_MIN_CAP && cap <= SHK__RING_MAX_CAP &&
	       (cap & (cap - 1)) == 0 && max_record <= cap / 2 - 8;
}

/*
 * A consistent (tail, head) snapshot of a possibly live ring: head read
 * between two equal tail reads satisfies tail - cap <= head <= tail.
 * Returns 1 with the values, 0 when tail kept moving (a live ring).
 */
static int
snapshot(struct shk__ring_hdr *h, uint64_t *head, uint64_t *tail)
{
	return shk__snap_pair(&h->tail, &h->head, tail, head);
}

int
shk__kind_check_ring(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__ring_hdr *h = mem;
	uint64_t cap, hd, tl;
	uint32_t mr;

	(void)seg;
	if (info->len < SHK__RING_DATA_OFF)
		return SHK_ECORRUPT;
	cap = h->cap;
	mr = h->max_record;
	if (h->magic != SHK__RING_MAGIC || h->data_off != SHK__RING_DATA_OFF ||
	    !geometry_ok(cap, mr) || cap != info->cap || mr != info->elem_len ||
	    info->len - SHK__RING_DATA_OFF < cap ||
	    (h->mode & ~SHK__RING_MODE_SPIN))
		return SHK_ECORRUPT;
	if (snapshot(h, &hd, &tl) && (tl - hd > cap || ((hd | tl) & 7)))
		return SHK_ECORRUPT;
	return 0;
}

/*
 * Busy (registry.h, shk__obj_busy_fn): a live producer or consumer.  Roles
 * are claimed under the registry lock, which our caller holds
 * (shk__obj_attach()), so a claim made before it is visible here.
 */
int
shk__kind_busy_ring(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__ring_hdr *h = mem;
	uint32_t p, c;

	if (info->len < SHK__RING_DATA_OFF)
		return 0;
	/* relaxed: the registry lock orders every claim before us; a
	 * release racing with us at most shows a party that is leaving */
	p = atomic_load_explicit(&h->prod_stamp, memory_order_relaxed);
	c = atomic_load_explicit(&h->cons_stamp, memory_order_relaxed);
	return (p && shk__stamp_alive(seg, p)) ||
	       (c && shk__stamp_alive(seg, c));
}

static const char *
owner_state(shk_seg *seg, _Atomic uint32_t *w)
{
	/* acquire: pairs with the CAS that installed the stamp in
	 * shk__role_claim() */
	return shk__role_state(seg,
			       atomic_load_explicit(w, memory_order_acquire));
}

int
shk__kind_describe_ring(shk_seg *seg, void *mem, const shk_obj_info *info,
			char *buf, size_t len)
{
	struct shk__ring_hdr *h = mem;
	uint64_t hd = 0, tl = 0;
	int n;

	(void)info;
	if (!snapshot(h, &hd, &tl)) {
		/* relaxed: an informational snapshot of a busy ring */
		tl = atomic_load_explicit(&h->tail, memory_order_relaxed);
		hd = atomic_load_explicit(&h->head, memory_order_relaxed);
	}
	/* relaxed (waiters): informational counts */
	n = snprintf(
		buf, len,
		"fill=%llu/%llu head=%llu tail=%llu max_record=%u%s "
		"producer=%s consumer=%s waiters=%u/%u",
		(unsigned long long)(tl - hd), (unsigned long long)h->cap,
		(unsigned long long)hd, (unsigned long long)tl, h->max_record,
		(h->mode & SHK__RING_MODE_SPIN) ? " mode=spin" : "",
		owner_state(seg, &h->prod_stamp),
		owner_state(seg, &h->cons_stamp),
		atomic_load_explicit(&h->data_wp.waiters, memory_order_relaxed),
		atomic_load_explicit(&h->space_wp.waiters,
				     memory_order_relaxed));
	if (n < 0)
		return SHK_EINVAL;
	return (size_t)n >= len ? (int)len - 1 : n;
}

static int
ring_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	struct shk__ring_hdr *h = mem;

	(void)seg;
	/* the memory is zero-filled: counters, stamps and waitpoints start
	 * at 0; the registry's READY store (release) publishes all this */
	h->magic = SHK__RING_MAGIC;
	h->cap = info->cap;
	h->max_record = (uint32_t)info->elem_len;
	h->data_off = SHK__RING_DATA_OFF;
	h->mode = (*(const uint32_t *)arg & SHK_RING_SPIN) ? SHK__RING_MODE_SPIN
							   : 0;
	return 0;
}

/* The role word of this handle's role. */
static _Atomic uint32_t *
role_word(shk_ring *r)
{
	return r->role == SHK_RING_PRODUCER ? &r->hdr->prod_stamp
					    : &r->hdr->cons_stamp;
}

/* Takes the role, under the registry lock (shk__obj_attach()). */
static int
role_attach(void *arg)
{
	shk_ring *r = arg;

	return shk__role_claim(r->seg, role_word(r), r->stamp);
}

/* opens that lose their ring to a removal before they attach start over
 * (SHK_CREATE) this many times, then give up with SHK_EAGAIN */
#define OPEN_TRIES 16

int
shk_ring_open(shk_seg *seg, const char *name, unsigned flags, int role,
	      const shk_ring_opts *opts, shk_ring **out)
{
	shk_ring_opts o = SHK_RING_OPTS_INIT;
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	shk_obj_info info;
	struct shk__ring_hdr *h;
	shk_ring *r;
	void *mem = NULL;
	uint64_t hd, tl;
	int rc, tries = 0;

	if (!out)
		return SHK_EINVAL;
	*out = NULL;
	if (!seg || !name ||
	    (role != SHK_RING_PRODUCER && role != SHK_RING_CONSUMER))
		return SHK_EINVAL;
	rc = shk__opts_copy(&o, sizeof(o), opts);
	if (rc)
		return rc;
	if (o.flags & ~(SHK_RING_BATCH | SHK_RING_SPIN))
		return SHK_EINVAL;
	if (o.cap && !geometry_ok(o.cap, 0))
		return SHK_EINVAL;
	if (o.cap && o.max_record > o.cap / 2 - 8)
		return SHK_EINVAL;
	want.kind = SHK_KIND_RING;
	want.type_id = o.type_id;
	/* the handle before the object: a failed allocation after a
	 * creation would leave the ring (and a SHK_EXCL retry SHK_EEXIST) */
	r = aligned_alloc(64, HANDLE_LEN);
	if (!r)
		return SHK_ENOMEM;
again:
	memset(r, 0, HANDLE_LEN);
	/* record_geometry() below fills zero fields: start from the caller's
	 * at every try */
	want.cap = o.cap;
	want.elem_len = o.max_record;
	if ((flags & SHK_CREATE) && (!o.cap || !o.max_record)) {
		/* zero means "as stored" for an existing ring, "default"
		 * for a new one */
		rc = SHK_ENOENT;
		if (!(flags & SHK_EXCL))
			rc = shk__obj_open(seg, name, 0, &want, 0, NULL, NULL,
					   shk__kind_check_ring, &info, &mem);
		if (rc == SHK_ENOENT) {
			shk__record_geometry(&want.cap, &want.elem_len,
					     SHK__RING_DEFAULT_CAP,
					     SHK__RING_MAX_CAP, SHK__REC_HDR);
			if (!geometry_ok(want.cap, want.elem_len)) {
				rc = SHK_EINVAL;
				goto fail_free;
			}
			rc = shk__obj_open(seg, name, flags, &want,
					   SHK__RING_DATA_OFF + want.cap,
					   ring_init, &o.flags,
					   shk__kind_check_ring, &info, &mem);
		}
	} else {
		rc = shk__obj_open(seg, name, flags, &want,
				   SHK__RING_DATA_OFF + o.cap, ring_init,
				   &o.flags, shk__kind_check_ring, &info, &mem);
	}
	if (rc)
		goto fail_free;
	h = mem;
	/* the mode is the ring's, fixed at creation (validated by
	 * shk__kind_check_ring()): both sides must agree on it */
	if ((h->mode & SHK__RING_MODE_SPIN) != !!(o.flags & SHK_RING_SPIN)) {
		rc = SHK_ETYPE;
		goto fail_free;
	}
	r->seg = seg;
	r->hdr = h;
	r->data = (uint8_t *)mem + SHK__RING_DATA_OFF;
	/* immutable: validated by shk__kind_check_ring() against the
	 * registry entry; copied once and never re-read */
	r->cap = info.cap;
	r->mask = info.cap - 1;
	r->max_record = (uint32_t)info.elem_len;
	r->role = role;
	r->flags = o.flags;
	r->stamp = shk__seg_stamp(seg);
	shk__obj_ref_init(&r->ref, &info);
	/* takes the role from nobody or from a dead owner, under the
	 * registry lock: a removal sees our role (SHK_EBUSY) or comes before
	 * the claim, which then finds the ring gone and starts over */
	rc = shk__obj_attach(seg, &r->ref, role_attach, r);
	if (rc == SHK_ENOENT && (flags & SHK_CREATE)) {
		if (++tries < OPEN_TRIES)
			goto again;
		rc = SHK_EAGAIN;
	}
	if (rc)
		goto fail_free;
	/* Our own index is frozen while we own the role; read it first, then
	 * the other side's, which only moves towards keeping the invariant */
	if (role == SHK_RING_PRODUCER) {
		/* acquire: pairs with publish_tail()/publish_head() */
		tl = atomic_load_explicit(&h->tail, memory_order_acquire);
		hd = atomic_load_explicit(&h->head, memory_order_acquire);
		r->pos = r->pub = tl;
		r->other = hd;
	} else {
		/* acquire: as above */
		hd = atomic_load_explicit(&h->head, memory_order_acquire);
		tl = atomic_load_explicit(&h->tail, memory_order_acquire);
		r->pos = r->pub = hd;
		r->other = tl;
	}
	if (tl - hd > r->cap || ((hd | tl) & 7)) {
		rc = SHK_ECORRUPT;
		goto fail_unclaim;
	}
	/* the handle keeps the segment handle until its close */
	shk__seg_ref(seg);
	*out = r;
	return 0;

fail_unclaim:
	shk__role_release(role_word(r), r->stamp);
fail_free:
	free(r);
	return rc;
}

int
shk_ring_fd(shk_ring *r)
{
	if (!r || r->role != SHK_RING_CONSUMER)
		return SHK_EINVAL;
	if (r->flags & SHK_RING_SPIN)
		return SHK_ENOTSUP; /* nobody would ring it */
	return shk__pollfd_get(&r->pf, r->seg, &r->hdr->data_wp, data_pred, r);
}

void
shk_ring_close(shk_ring *r)
{
	shk_seg *seg;

	if (!r)
		return;
	/* the closes below write to the segment: mapped until the unref at
	 * the end */
	seg = r->seg;
	/* A ring removed with SHK_FORCE while we held the role may be
	 * someone else's memory by now: the descriptor's close then leaves
	 * its waitpoint alone (closing it disarmed there, which wrote into
	 * a blob made in the block: test remove_force_fd). */
	if (shk__obj_live(r->seg, &r->ref))
		shk__pollfd_close(&r->pf);
	else
		shk__pollfd_abandon(&r->pf);
	/* A forked child's copy: pos and the role are its parent's, which
	 * goes on using them (flushing our stale pos would move tail or head
	 * back, and releasing the role would let a second producer or
	 * consumer in beside the parent).  Removed: as above (asked again,
	 * it may have happened during the descriptor's close). */
	if (!shk__seg_inherited(r->seg) && shk__obj_live(r->seg, &r->ref)) {
		if (r->pos != r->pub)
			shk_ring_flush(r);
		shk__role_release(role_word(r), r->stamp);
	}
	free(r);
	shk__seg_unref(seg);
}

int
shk_ring_stat(shk_ring *r, shk_ring_stats *st)
{
	struct shk__ring_hdr *h;
	uint64_t hd = 0, tl = 0;

	if (!r || !st || st->size < sizeof(*st))
		return SHK_EINVAL;
	h = r->hdr;
	if (!snapshot(h, &hd, &tl)) {
		/* relaxed: an informational snapshot of a busy ring */
		tl = atomic_load_explicit(&h->tail, memory_order_relaxed);
		hd = atomic_load_explicit(&h->head, memory_order_relaxed);
	}
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->cap = r->cap;
	st->max_record = r->max_record;
	st->head = hd;
	st->tail = tl;
	st->fill = tl - hd;
	st->producer = owner_state(r->seg, &h->prod_stamp)[0] == 'a';
	st->consumer = owner_state(r->seg, &h->cons_stamp)[0] == 'a';
	/* relaxed: informational counts */
	st->waiters = atomic_load_explicit(&h->data_wp.waiters,
					   memory_order_relaxed) +
		      atomic_load_explicit(&h->space_wp.waiters,
					   memory_order_relaxed);
	return 0;
}

int
shk__ring_peer_dead(shk_ring *r)
{
	return r ? peer_check(r) : 0;
}

int
shk__ring_set_pos(shk_ring *r, uint64_t pos)
{
	struct shk__ring_hdr *h;

	if (!r || (pos & 7) || r->reserved || r->peeked)
		return SHK_EINVAL;
	h = r->hdr;
	/* relaxed: test hook on a quiescent ring */
	if (atomic_load_explicit(&h->head, memory_order_relaxed) !=
		    atomic_load_explicit(&h->tail, memory_order_relaxed) ||
	    r->pos != r->pub)
		return SHK_EBUSY;
	if (atomic_load_explicit(r->role == SHK_RING_PRODUCER ? &h->cons_stamp
							      : &h->prod_stamp,
				 memory_order_relaxed))
		return SHK_EBUSY;
	/* release: pairs with the acquire loads at the other role's open */
	atomic_store_explicit(&h->head, pos, memory_order_release);
	atomic_store_explicit(&h->tail, pos, memory_order_release);
	r->pos = r->pub = r->other = pos;
	return 0;
}
