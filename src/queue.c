/*
 * queue.c - bounded MPMC queue of fixed-size elements: Vyukov's per-cell
 * sequence words [ALGORITHMS.md §2, ref 9], extended so that every claim
 * names its owner and a dead claimer can be repaired ("Repair", §2).
 *
 * Shared words
 *   enqueue_pos  free-running; the next position to produce.  Advanced by
 *                CAS p -> p+1 by anyone who sees cell p claimed (the
 *                claiming producer, or a helper).
 *   dequeue_pos  likewise for consumers.
 *   cell.ctl     {pos:40 | state:3 | owner:21} (queue.h).  For the cell of
 *                position p (index p & mask) the word moves through
 *                (FREE,p) -CAS by producer-> (WRITING,p,me)
 *                        -CAS by that producer-> (FULL,p)
 *                        -CAS by a consumer-> (READING,p,me)
 *                        -CAS by that consumer-> (FREE,p+cap)
 *                a consumer with a keeper (shk__queue_pop_keep) goes
 *                (READING,p,me) -CAS-> (KEPT,p,me) -CAS-> (FREE,p+cap)
 *                and the repairs (a claim whose owner is dead):
 *                (WRITING,p,dead) -CAS by anyone-> (SKIP,p)
 *                (SKIP,p)         -CAS by a consumer-> (FREE,p+cap)
 *                (READING,p,dead) -CAS by a producer at p+cap, or a
 *                                  consumer that reads enqueue_pos =
 *                                  p+cap-> (FULL,p+cap)
 *                (KEPT,p,dead)    -CAS by anyone-> (FREE,p+cap)
 *   lost         elements lost to repairs (statistic).
 *   not_empty, not_full   waitpoints (wait.h).
 *
 * Invariants
 *   I1  enqueue_pos advances past p only after cell p left (FREE,p) (a
 *       producer's claim, or a dead consumer's READING of lap p - cap
 *       published again as (FULL,p)), and dequeue_pos advances past p only
 *       after cell p left (FULL,p) and (WRITING,p) through a consumer's
 *       claim or a SKIP's release.  So every published element is claimed
 *       by exactly one consumer: deq never skips a FULL cell, and only the
 *       CAS winner owns a claim.
 *   I2  A cell word never returns to an earlier (pos, state): each CAS
 *       above is on the whole word, so a stale party's CAS fails (ABA would
 *       need 2^40 positions between its load and its CAS).
 *   I3  dequeue_pos <= enqueue_pos + 1 and enqueue_pos <= dequeue_pos +
 *       cap + 1.  The first +1: a consumer may pass a SKIPped cell before
 *       any producer helped enqueue_pos past it.  The second: a consumer
 *       killed between its claim of cell d and advancing dequeue_pos
 *       leaves dequeue_pos at d; on a full queue a producer at d + cap
 *       repairs that claim (publishing its element again as the element
 *       of d + cap) and advances enqueue_pos to d + cap + 1.  No more: every position a consumer claimed is at
 *       most dequeue_pos, so cell d + 1 still holds lap d + 1 and stops
 *       producers at d + cap + 1 until a consumer helps dequeue_pos on
 *       (pop_try() finds cell d a lap ahead).  The open-time check
 *       once allowed only cap here and took this state for damage.
 *   I4  Each thread claims increasing positions (its position CAS or its
 *       helper's made the position it read stale before it returns), so
 *       one producer's elements are delivered in its order (FIFO per
 *       producer), and one consumer receives them in that order; but for
 *       an element published again after its consumer died (below), which
 *       comes after the cap - 1 behind it.
 *   I5  A party that reads position p from enqueue_pos finds cell p at
 *       lap p - cap or later, and at lap p - cap not FREE; from
 *       dequeue_pos, at lap p - cap only READING or KEPT.  Whoever
 *       advanced the
 *       position past p - cap saw the cell so (I1), and our acquire load
 *       of the position orders that sighting before our load of the cell
 *       (coherence).  Anything else is a forged position: SHK_ECORRUPT,
 *       not "full" or "empty" for ever (tests/models/queue_skip.pml
 *       asserts that the test never fires in a real run).
 *
 * Happens-before edges
 *   - producer's element writes -> release CAS to FULL -> consumer's
 *     acquire load/CAS of the word -> consumer's reads of the element.
 *   - consumer's reads -> release CAS to (FREE,p+cap) -> next producer's
 *     acquire claim -> its writes (no torn overwrite while reading).
 *   - a claim -> release CAS of the position -> acquire load of the
 *     position by the next party -> its load of the cell sees the claim.
 *
 * Dead parties (SIGKILL between any two instructions)
 *   - A producer killed after its claim leaves (WRITING,p,owner).  A party
 *     blocked by that word for SHK__QUEUE_STUCK_NS (T = 10 ms) tests the
 *     owner stamp; if dead, it CASes the word to (SKIP,p) and counts one
 *     loss; consumers free SKIP cells and move on.  Loss: that element.
 *     A stopped owner (SIGSTOP) tests alive and is never skipped.
 *   - A producer killed before its claim CAS loses nothing (its element
 *     was never in the queue); after its FULL CAS, nothing is lost.
 *   - A consumer killed after its claim leaves (READING,p,owner): it has
 *     returned nothing, so the element is delivered again.  The producer
 *     it blocks one lap later (at enqueue_pos = p + cap) republishes the
 *     cell in place as (FULL,p+cap), the element of position p + cap,
 *     and helps enqueue_pos past it; consumers then take it as any other.
 *     Nothing is lost, nothing delivered twice (the dead consumer's copy
 *     died with it), but that element now comes after the cap - 1 behind
 *     it: FIFO per producer (I4) holds for every other element.  A
 *     consumer blocked by the claim (at dequeue_pos = p + cap) does the
 *     same when it reads enqueue_pos = p + cap (the producers' own step:
 *     enqueue_pos cannot pass p + cap while the cell is READING); with
 *     enqueue_pos behind (a dead producer's claim not advanced past), the
 *     republished cell would be ahead of it and dequeue_pos could reach
 *     enqueue_pos + 2, beyond I3, so it waits.  Until a producer comes one
 *     lap later the element waits there, counted neither in the length
 *     nor in `lost`.  Before 2026-11-25 evening the repair freed the cell
 *     and lost the element.
 *   - A consumer with a keeper killed after its KEPT CAS leaves
 *     (KEPT,p,owner): the keeper's record may own the element, so the
 *     repair (anyone blocked by it) frees the cell as (FREE,p+cap) and
 *     counts one loss; it is never delivered again.
 *   - A repairer killed between its CAS and incrementing `lost` leaves the
 *     count one short; the queue itself is consistent.
 *   - Helpers advance a position left behind by a killed claimer.
 *
 * False alive: the owner field keeps the attach slot and only the low 11
 * bits of the attach generation.  If the owner's attach record is reused
 * 2048*k times before the test, the test may wrongly find the new holder
 * alive; the cell then waits until that holder detaches or dies.
 * False dead: a live owner whose liveness test fails (it cannot happen
 * while the owner's handle is open, except if /proc cannot be read) would
 * be skipped; its CAS to FULL (or to FREE or KEPT) then fails, so it
 * retries (a producer re-pushes; a consumer drops its copy, the element
 * being delivered again) and nothing is delivered twice.  A consumer with
 * a keeper whose KEPT claim was repaired keeps its copy, taken while its
 * claim stood, as the repair delivers the element to nobody else.
 */
#include "queue.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "opts.h"
#include "registry.h"

_Static_assert(SHK__ATTACH_CAP <= (1u << (SHK__QC_OWN_BITS - SHK__QC_GEN_BITS)),
	       "attach slot must fit the cell owner field");

/* A try gives up (SHK_EAGAIN) after this many lost races in a row, so a
 * scribbled segment cannot spin a caller forever. */
#define RETRY_MAX 65536

#ifdef SHK_TEST_HOOKS
void (*shk__queue_test_hook)(const char *point);
#define QPOINT(name)                                                           \
	do {                                                                   \
		SHK_CRASHPOINT(name);                                          \
		if (shk__queue_test_hook)                                      \
			shk__queue_test_hook(name);                            \
	} while (0)
#else
#define QPOINT(name) ((void)0)
#endif

SHK_HIDDEN int shk__kind_check_queue(shk_seg *seg, void *mem,
				     const shk_obj_info *info);
SHK_HIDDEN int shk__kind_describe_queue(shk_seg *seg, void *mem,
					const shk_obj_info *info, char *buf,
					size_t len);
SHK_HIDDEN int shk__kind_busy_queue(shk_seg *seg, void *mem,
				    const shk_obj_info *info);

static uint32_t
cell_len_of(uint64_t elem_len)
{
	return (uint32_t)(8 + ((elem_len + 7) & ~(uint64_t)7));
}

static inline struct shk__queue_cell *
cell_at(const shk_queue *q, uint64_t pos)
{
	return (struct shk__queue_cell *)(q->cells +
					  (pos & q->mask) * q->cell_len);
}

/* Signed difference of a 40-bit cell position and a full position. */
static inline int64_t
pos_diff(uint64_t cell_pos, uint64_t pos)
{
	return (int64_t)((cell_pos - pos) << SHK__QC_POS_SHIFT) >>
	       SHK__QC_POS_SHIFT;
}

/* Advances a position from p to p + 1 unless someone already did. */
static inline void
advance(_Atomic uint64_t *pos, uint64_t p)
{
	/* release: whoever reads p + 1 (acquire, in push_try()/pop_try())
	 * also sees the claim of cell p that we saw or made */
	atomic_compare_exchange_strong_explicit(
		pos, &p, p + 1, memory_order_release, memory_order_relaxed);
}

static int
owner_alive(shk_queue *q, uint32_t own)
{
	shk_seg *seg = q->seg;
	uint32_t slot = own >> SHK__QC_GEN_BITS, gen;
	uint64_t w;

	if (slot >= seg->attach_cap)
		return 0;
	/* acquire: pairs with the release store of ACTIVE in
	 * shk__seg_attach() */
	w = atomic_load_explicit(&shk__attach_at(seg, slot)->word,
				 memory_order_acquire);
	gen = SHK__ATT_GEN(w);
	if ((gen & SHK__QC_GEN_MASK) != (own & SHK__QC_GEN_MASK))
		return 0;
	return shk__stamp_alive(seg, SHK__STAMP(slot, gen));
}

/*
 * The claim word w in *ctl (WRITING, READING or KEPT) blocks the caller.
 * The handle notes when it first saw w; once w has blocked it for T, the
 * owner is tested (again every T while it lives).  A dead owner's WRITING
 * becomes SKIP and its KEPT becomes FREE for the next lap, each counting
 * one lost element; its READING becomes FULL for the next lap (delivered
 * again), by a producer (producer != 0) or by a consumer that reads
 * enqueue_pos = p + cap (else it leaves it: "Dead parties" above).
 * Returns 1 when the cell changed (retry), else 0.
 */
static int
stuck(shk_queue *q, struct shk__qstuck *s, _Atomic uint64_t *ctl, uint64_t w,
      int producer)
{
	int64_t now = shk__now_ns();
	uint64_t nw;

	/* relaxed (this and the next accesses to *s): handle-local notes
	 * shared by the process's threads; a race only moves the moment the
	 * owner is tested, never the outcome of the CAS below */
	if (atomic_load_explicit(&s->word, memory_order_relaxed) != w) {
		atomic_store_explicit(&s->word, w, memory_order_relaxed);
		atomic_store_explicit(&s->since_ns, now, memory_order_relaxed);
		return 0;
	}
	if (now - atomic_load_explicit(&s->since_ns, memory_order_relaxed) <
	    SHK__QUEUE_STUCK_NS)
		return 0;
	/* acquire: pairs with the release CAS in advance(), as in
	 * pop_try(); enqueue_pos cannot pass p + cap while this cell holds
	 * READING of lap p, so equal now is equal at our CAS */
	if (SHK__QC_ST(w) == SHK__QC_READING && !producer &&
	    pos_diff(SHK__QC_POS(w) + q->cap,
		     atomic_load_explicit(&q->hdr->enqueue_pos,
					  memory_order_acquire)) != 0)
		return 0; /* a producer delivers it again (above) */
	atomic_store_explicit(&s->since_ns, now, memory_order_relaxed);
	if (owner_alive(q, SHK__QC_OWN(w)))
		return 0;
	if (SHK__QC_ST(w) == SHK__QC_WRITING)
		nw = SHK__QC_WORD(SHK__QC_POS(w), SHK__QC_SKIP, 0);
	else if (SHK__QC_ST(w) == SHK__QC_READING)
		nw = SHK__QC_WORD(SHK__QC_POS(w) + q->cap, SHK__QC_FULL, 0);
	else
		nw = SHK__QC_WORD(SHK__QC_POS(w) + q->cap, SHK__QC_FREE, 0);
	/* release: a FREE word hands the cell to the next producer, whose
	 * acquire claim pairs with it; a FULL one publishes the element
	 * again (its bytes, written by the first producer before its release
	 * CAS to FULL, reach the next consumer's acquire through this CAS, an
	 * RMW in that release sequence); the CAS on the whole word fails if
	 * the owner finished in the meantime */
	if (atomic_compare_exchange_strong_explicit(
		    ctl, &w, nw, memory_order_release, memory_order_relaxed)) {
		QPOINT("queue.repair.done");
		/* relaxed: a statistic; a republished element is not lost */
		if (SHK__QC_ST(nw) != SHK__QC_FULL)
			atomic_fetch_add_explicit(&q->hdr->lost, 1,
						  memory_order_relaxed);
		shk__wake(q->seg, &q->hdr->not_empty, INT_MAX);
		shk__wake(q->seg, &q->hdr->not_full, INT_MAX);
	}
	return 1;
}

/* Reads and validates the control word of the cell for position p. */
static inline int
load_cell(const shk_queue *q, uint64_t p, struct shk__queue_cell **c,
	  uint64_t *w)
{
	*c = cell_at(q, p);
	/* acquire: pairs with the release CASes that publish (FULL) or free
	 * (FREE) the cell, and with advance() through the position load */
	*w = atomic_load_explicit(&(*c)->ctl, memory_order_acquire);
	if (SHK_UNLIKELY((SHK__QC_POS(*w) & q->mask) != (p & q->mask) ||
			 SHK__QC_ST(*w) > SHK__QC_KEPT))
		return SHK_ECORRUPT;
	return 0;
}

static int
push_try(shk_queue *q, const void *elem)
{
	struct shk__queue_hdr *h = q->hdr;
	struct shk__queue_cell *c;
	uint64_t p, w, mine;
	uint32_t st;
	int64_t d;
	long n;

	for (n = 0; n < RETRY_MAX; n++) {
		/* acquire: pairs with the release CAS in advance() */
		p = atomic_load_explicit(&h->enqueue_pos, memory_order_acquire);
		if (load_cell(q, p, &c, &w))
			return SHK_ECORRUPT;
		st = SHK__QC_ST(w);
		d = pos_diff(SHK__QC_POS(w), p);
		if (d == 0 && st == SHK__QC_FREE) {
			mine = SHK__QC_WORD(p, SHK__QC_WRITING, q->owner);
			/* acquire: the previous lap's consumer released the
			 * cell (pop_try()); its reads precede our writes */
			if (!atomic_compare_exchange_weak_explicit(
				    &c->ctl, &w, mine, memory_order_acquire,
				    memory_order_relaxed))
				continue;
			QPOINT("queue.push.claimed");
			advance(&h->enqueue_pos, p);
			QPOINT("queue.push.advanced");
			memcpy(c->data, elem, q->elem_len);
			QPOINT("queue.push.written");
			w = mine;
			/* release: publishes the element; pairs with the
			 * acquire load in load_cell() of the consumer.
			 * seq_cst (a superset): the CAS is then the waker's
			 * fence for shk__wake_sc below (wait.h); on x86-64 it
			 * is the same locked instruction, and the separate
			 * fence of shk__wake is saved */
			if (!atomic_compare_exchange_strong_explicit(
				    &c->ctl, &w,
				    SHK__QC_WORD(p, SHK__QC_FULL, 0),
				    memory_order_seq_cst, memory_order_relaxed))
				continue; /* skipped as dead: push again */
			shk__wake_sc(q->seg, &h->not_empty, 1);
			return 0;
		}
		if (d >= 0) {
			/* cell p is claimed (or already recycled): help the
			 * position past it, then retry */
			advance(&h->enqueue_pos, p);
			continue;
		}
		/* d < 0: the element of lap p - cap is still there: full.
		 * A cell further behind, or FREE, is a forged position (I5),
		 * which would otherwise read as full for ever */
		if (SHK_UNLIKELY(d != -(int64_t)q->cap || st == SHK__QC_FREE))
			return SHK_ECORRUPT;
		if ((st == SHK__QC_WRITING || st == SHK__QC_READING ||
		     st == SHK__QC_KEPT) &&
		    stuck(q, &q->push_stuck, &c->ctl, w, 1))
			continue;
		return SHK_EAGAIN;
	}
	return SHK_EAGAIN;
}

static int
pop_try(shk_queue *q, void *elem, const struct shk__queue_keeper *k)
{
	struct shk__queue_hdr *h = q->hdr;
	struct shk__queue_cell *c;
	uint64_t p, w, mine, fw;
	uint32_t st;
	int64_t d;
	long n;

	for (n = 0; n < RETRY_MAX; n++) {
		/* acquire: pairs with the release CAS in advance() */
		p = atomic_load_explicit(&h->dequeue_pos, memory_order_acquire);
		if (load_cell(q, p, &c, &w))
			return SHK_ECORRUPT;
		st = SHK__QC_ST(w);
		d = pos_diff(SHK__QC_POS(w), p);
		if (d > 0) {
			/* consumed or skipped already: help deq past it */
			advance(&h->dequeue_pos, p);
			continue;
		}
		if (d < 0) {
			/* the consumer of lap p - cap is still reading;
			 * anything else is a forged position (I5), which
			 * would otherwise read as empty for ever */
			if (SHK_UNLIKELY(d != -(int64_t)q->cap ||
					 (st != SHK__QC_READING &&
					  st != SHK__QC_KEPT)))
				return SHK_ECORRUPT;
			if (stuck(q, &q->pop_stuck, &c->ctl, w, 0))
				continue;
			return SHK_EAGAIN;
		}
		fw = SHK__QC_WORD(p + q->cap, SHK__QC_FREE, 0);
		switch (st) {
		case SHK__QC_FULL:
			mine = SHK__QC_WORD(p, SHK__QC_READING, q->owner);
			/* acquire: pairs with the producer's release CAS to
			 * FULL; the element's bytes are visible to us */
			if (!atomic_compare_exchange_weak_explicit(
				    &c->ctl, &w, mine, memory_order_acquire,
				    memory_order_relaxed))
				continue;
			QPOINT("queue.pop.claimed");
			advance(&h->dequeue_pos, p);
			memcpy(elem, c->data, q->elem_len);
			QPOINT("queue.pop.copied");
			w = mine;
			if (k) {
				/* KEPT before the keeper's record: a repair of
				 * our claim then never delivers the element
				 * again (shk__queue_pop_keep): a repairer's CAS
				 * reads the word's latest value.  Release: our
				 * reads of the element come before the next
				 * producer's writes even when a repair (judged
				 * dead) frees the cell and we keep our copy:
				 * the repair's CAS continues this release
				 * sequence, which that producer's acquire
				 * claim reads.  Relaxed on failure: our claim
				 * was delivered again, the copy is void */
				mine = SHK__QC_WORD(p, SHK__QC_KEPT, q->owner);
				if (!atomic_compare_exchange_strong_explicit(
					    &c->ctl, &w, mine,
					    memory_order_release,
					    memory_order_relaxed))
					continue;
				QPOINT("queue.pop.kept");
				k->keep(k->arg, elem);
				w = mine;
			}
			/* release: our reads of the element happen before the
			 * next producer's writes (its acquire claim); seq_cst
			 * (a superset) makes it the waker's fence for
			 * shk__wake_sc, as in push_try() */
			if (!atomic_compare_exchange_strong_explicit(
				    &c->ctl, &w, fw, memory_order_seq_cst,
				    memory_order_relaxed)) {
				/* repaired as dead: READING was delivered
				 * again, so our copy is void; KEPT was freed
				 * for nobody else, so our copy (taken while
				 * the claim stood) is the element's only one,
				 * and the repairer woke the waiters */
				if (k)
					return 0;
				continue;
			}
			shk__wake_sc(q->seg, &h->not_full, 1);
			return 0;
		case SHK__QC_SKIP:
			/* release: hands the cell to the next producer;
			 * seq_cst: the waker's fence, as above */
			if (atomic_compare_exchange_strong_explicit(
				    &c->ctl, &w, fw, memory_order_seq_cst,
				    memory_order_relaxed))
				shk__wake_sc(q->seg, &h->not_full, 1);
			advance(&h->dequeue_pos, p);
			continue;
		case SHK__QC_READING:
		case SHK__QC_KEPT:
			advance(&h->dequeue_pos, p);
			continue;
		case SHK__QC_WRITING:
			if (stuck(q, &q->pop_stuck, &c->ctl, w, 0))
				continue;
			return SHK_EAGAIN;
		default: /* FREE: nothing produced at p yet */
			return SHK_EAGAIN;
		}
	}
	return SHK_EAGAIN;
}

struct qop {
	shk_queue *q;
	void *elem;
	const struct shk__queue_keeper *keeper; /* pops only; may be NULL */
	int rc;
	int tries; /* more than 1: the call waited (spun or slept) */
};

static int
push_pred(void *arg)
{
	struct qop *o = arg;

	o->tries++;
	o->rc = push_try(o->q, o->elem);
	return o->rc != SHK_EAGAIN;
}

static int
pop_pred(void *arg)
{
	struct qop *o = arg;

	o->tries++;
	o->rc = pop_try(o->q, o->elem, o->keeper);
	return o->rc != SHK_EAGAIN;
}

/* Whether a push may find room (the pass-on rule below). */
static int
maybe_nonfull(shk_queue *q)
{
	struct shk__queue_cell *c;
	uint64_t p, w;

	/* acquire: pairs with the release CAS in advance() */
	p = atomic_load_explicit(&q->hdr->enqueue_pos, memory_order_acquire);
	if (load_cell(q, p, &c, &w))
		return 1; /* let push report the corruption */
	/* the cell is free for lap p, or claimed for it (push_try() helps
	 * the position on); behind, its element of lap p - cap is there */
	return pos_diff(SHK__QC_POS(w), p) >= 0;
}

/*
 * The pass-on rule.  A publication wakes one sleeper, and a sleeper that
 * cannot use what it finds sleeps again: woken by a push at p + 1 while
 * cell p is still being written, a consumer goes back to sleep, and the
 * push at p then wakes one consumer for two elements.  So a call that had
 * to wait and then succeeded wakes one more sleeper of its own kind when
 * there may be more to do.  Calls that succeed at once skip it (no fence
 * on the fast path); a wait that ends at once costs one more wake check.
 */
int
shk_queue_push(shk_queue *q, const void *elem, int64_t timeout_ns)
{
	struct qop o;
	int rc;

	if (!q || !elem || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	o.q = q;
	o.elem = (void *)elem;
	o.keeper = NULL;
	o.rc = 0;
	o.tries = 0;
	/* the slice makes a blocked caller re-run its try (and so the
	 * dead-owner test) every T even when nobody wakes it */
	rc = shk__wait_checked(q->seg, &q->hdr->not_full, push_pred, &o,
			       timeout_ns, NULL, SHK__QUEUE_STUCK_NS);
	if (!rc)
		rc = o.rc;
	if (rc == 0 && o.tries > 1 && maybe_nonfull(q))
		shk__wake(q->seg, &q->hdr->not_full, 1); /* pass it on */
	return rc;
}

/* Whether a pop may find something to do (doorbell re-check). */
static int
maybe_nonempty(void *arg)
{
	shk_queue *q = arg;
	struct shk__queue_cell *c;
	uint64_t p, w;
	uint32_t st;
	int64_t d;

	/* acquire: pairs with the release CAS in advance() */
	p = atomic_load_explicit(&q->hdr->dequeue_pos, memory_order_acquire);
	if (load_cell(q, p, &c, &w))
		return 1; /* let pop report the corruption */
	st = SHK__QC_ST(w);
	d = pos_diff(SHK__QC_POS(w), p);
	if (d < 0)
		/* lap p - cap still READING: nothing yet; anything else is
		 * the forged position pop_try() reports (I5), so a pollable
		 * fd turns readable and the pop that follows says so */
		return d != -(int64_t)q->cap ||
		       (st != SHK__QC_READING && st != SHK__QC_KEPT);
	return d > 0 || st == SHK__QC_FULL || st == SHK__QC_SKIP ||
	       st == SHK__QC_READING || st == SHK__QC_KEPT;
}

/* Fills a new queue's zero fields; its length (shk__obj_open_dflt). */
static uint64_t
queue_defaults(shk_obj_desc *w)
{
	if (!w->elem_len)
		w->elem_len = 8;
	if (!w->cap)
		w->cap = 1024;
	return shk__queue_obj_len(w->cap, cell_len_of(w->elem_len));
}

int
shk__queue_pop_keep(shk_queue *q, void *elem, int64_t timeout_ns,
		    const struct shk__queue_keeper *keeper)
{
	struct qop o;
	int rc;

	if (!q || !elem || !SHK__TIMEOUT_OK(timeout_ns))
		return SHK_EINVAL;
	o.q = q;
	o.elem = elem;
	o.keeper = keeper;
	o.rc = 0;
	o.tries = 0;
	rc = shk__wait_checked(q->seg, &q->hdr->not_empty, pop_pred, &o,
			       timeout_ns, NULL, SHK__QUEUE_STUCK_NS);
	if (!rc)
		rc = o.rc;
	if (rc == 0 && o.tries > 1 && maybe_nonempty(q))
		shk__wake(q->seg, &q->hdr->not_empty, 1); /* pass it on */
	if (rc == 0)
		shk__pollfd_consumed(&q->pf);
	else if (rc == SHK_EAGAIN || rc == SHK_ETIMEDOUT)
		shk__pollfd_idle(&q->pf, maybe_nonempty, q);
	return rc;
}

int
shk_queue_pop(shk_queue *q, void *elem, int64_t timeout_ns)
{
	return shk__queue_pop_keep(q, elem, timeout_ns, NULL);
}

int
shk_queue_fd(shk_queue *q)
{
	if (!q)
		return SHK_EINVAL;
	return shk__pollfd_get(&q->pf, q->seg, &q->hdr->not_empty,
			       maybe_nonempty, q);
}

/* Elements pushed and not yet popped, from a pair of position loads. */
static uint64_t
approx_len(const struct shk__queue_hdr *h, uint64_t cap)
{
	/* relaxed: a snapshot for statistics */
	uint64_t d =
		atomic_load_explicit(&h->dequeue_pos, memory_order_relaxed);
	uint64_t e =
		atomic_load_explicit(&h->enqueue_pos, memory_order_relaxed);

	if ((int64_t)(e - d) <= 0)
		return 0;
	return e - d > cap ? cap : e - d;
}

int
shk_queue_info(shk_queue *q, shk_queue_stats *st)
{
	if (!q || !st || st->size < sizeof(*st))
		return SHK_EINVAL;
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->elem_len = q->elem_len;
	st->cap = q->cap;
	st->type_id = q->type_id;
	st->len = approx_len(q->hdr, q->cap);
	/* relaxed: statistics */
	st->lost = atomic_load_explicit(&q->hdr->lost, memory_order_relaxed);
	st->pop_waiters = atomic_load_explicit(&q->hdr->not_empty.waiters,
					       memory_order_relaxed);
	st->push_waiters = atomic_load_explicit(&q->hdr->not_full.waiters,
						memory_order_relaxed);
	return 0;
}

static int
queue_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	struct shk__queue_hdr *h = mem;
	uint8_t *cells = (uint8_t *)mem + SHK__QUEUE_HDR_LEN;
	uint32_t cell_len = cell_len_of(info->elem_len);
	uint64_t i;

	(void)seg;
	(void)arg;
	h->magic = SHK__QUEUE_MAGIC;
	h->cap = info->cap;
	h->elem_len = (uint32_t)info->elem_len;
	h->cell_len = cell_len;
	for (i = 0; i < info->cap; i++) {
		struct shk__queue_cell *c =
			(struct shk__queue_cell *)(cells + i * cell_len);
		/* relaxed: published by the registry's release store of
		 * READY, which every opener acquires */
		atomic_store_explicit(&c->ctl, SHK__QC_WORD(i, SHK__QC_FREE, 0),
				      memory_order_relaxed);
	}
	return 0;
}

int
shk__kind_check_queue(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	const struct shk__queue_hdr *h = mem;
	const uint8_t *cells = (const uint8_t *)mem + SHK__QUEUE_HDR_LEN;
	uint64_t cap = info->cap, need, i, e0, e1, d;
	uint32_t cell_len;
	int tries;

	if (info->len < SHK__QUEUE_HDR_LEN || info->elem_len == 0 ||
	    info->elem_len > SHK__QUEUE_MAX_ELEM || cap == 0 ||
	    cap > SHK__QUEUE_MAX_CAP || (cap & (cap - 1)))
		return SHK_ECORRUPT;
	cell_len = cell_len_of(info->elem_len);
	need = shk__queue_obj_len(cap, cell_len);
	if (need == 0 || need > info->len)
		return SHK_ECORRUPT;
	if (h->magic != SHK__QUEUE_MAGIC || h->cap != cap ||
	    h->elem_len != info->elem_len || h->cell_len != cell_len)
		return SHK_ECORRUPT;
	/* I3 holds between positions read while enqueue_pos stood still */
	for (tries = 0; tries < 4; tries++) {
		/* relaxed: a consistency snapshot, re-validated by e1 */
		e0 = atomic_load_explicit(&h->enqueue_pos,
					  memory_order_relaxed);
		d = atomic_load_explicit(&h->dequeue_pos, memory_order_relaxed);
		e1 = atomic_load_explicit(&h->enqueue_pos,
					  memory_order_relaxed);
		if (e0 != e1)
			continue;
		if ((int64_t)(e0 - d) < -1 ||
		    (int64_t)(e0 - d) > (int64_t)cap + 1)
			return SHK_ECORRUPT;
		break;
	}
	for (i = 0; i < cap; i++) {
		const struct shk__queue_cell *c =
			(const struct shk__queue_cell *)(cells + i * cell_len);
		/* relaxed: each word is checked on its own */
		uint64_t w = atomic_load_explicit(
			&((struct shk__queue_cell *)c)->ctl,
			memory_order_relaxed);
		uint32_t st = SHK__QC_ST(w), own = SHK__QC_OWN(w);

		if ((SHK__QC_POS(w) & (cap - 1)) != i || st > SHK__QC_KEPT)
			return SHK_ECORRUPT;
		if (st == SHK__QC_WRITING || st == SHK__QC_READING ||
		    st == SHK__QC_KEPT) {
			if ((own >> SHK__QC_GEN_BITS) >= seg->attach_cap)
				return SHK_ECORRUPT;
		} else if (own) {
			return SHK_ECORRUPT;
		}
	}
	return 0;
}

/* Busy (registry.h, shk__obj_busy_fn): a live party asleep on, or with a
 * descriptor armed on, one of the waitpoints.  A queue records no open
 * handles. */
int
shk__kind_busy_queue(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__queue_hdr *h = mem;

	if (info->len < SHK__QUEUE_HDR_LEN)
		return 0;
	return shk__wp_busy(seg, &h->not_empty) ||
	       shk__wp_busy(seg, &h->not_full);
}

int
shk__kind_describe_queue(shk_seg *seg, void *mem, const shk_obj_info *info,
			 char *buf, size_t len)
{
	const struct shk__queue_hdr *h = mem;
	int n;

	(void)seg;
	/* relaxed: a snapshot for tools */
	n = snprintf(buf, len,
		     "fill=%llu/%llu elem=%u lost=%llu enq=%llu deq=%llu "
		     "pop_waiters=%u push_waiters=%u",
		     (unsigned long long)approx_len(h, info->cap),
		     (unsigned long long)info->cap, (unsigned)info->elem_len,
		     (unsigned long long)atomic_load_explicit(
			     &h->lost, memory_order_relaxed),
		     (unsigned long long)atomic_load_explicit(
			     &h->enqueue_pos, memory_order_relaxed),
		     (unsigned long long)atomic_load_explicit(
			     &h->dequeue_pos, memory_order_relaxed),
		     (unsigned)atomic_load_explicit(&h->not_empty.waiters,
						    memory_order_relaxed),
		     (unsigned)atomic_load_explicit(&h->not_full.waiters,
						    memory_order_relaxed));
	if (n < 0)
		return SHK_EINVAL;
	return (size_t)n >= len ? (int)len - 1 : n;
}

int
shk_queue_open(shk_seg *seg, const char *name, unsigned flags,
	       const shk_queue_opts *opts, shk_queue **out)
{
	shk_queue_opts o = SHK_QUEUE_OPTS_INIT;
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	shk_obj_info info;
	shk_queue *q;
	void *mem;
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = NULL;
	if (!seg)
		return SHK_EINVAL;
	rc = shk__opts_copy(&o, sizeof(o), opts);
	if (rc)
		return rc;
	/* the caller's nonzero fields; zero ones are filled below */
	if (o.elem_len > SHK__QUEUE_MAX_ELEM || o.cap > SHK__QUEUE_MAX_CAP ||
	    (o.cap & (o.cap - 1)))
		return SHK_EINVAL;
	want.kind = SHK_KIND_QUEUE;
	want.type_id = o.type_id;
	want.elem_len = o.elem_len;
	want.cap = o.cap;
	want.align = 8;
	/* the handle before the object: a failed allocation after a
	 * creation would leave the queue (and a SHK_EXCL retry SHK_EEXIST) */
	q = calloc(1, sizeof(*q));
	if (!q)
		return SHK_ENOMEM;
	/* A zero field means "as stored" for an existing queue and "the
	 * default" for a new one (test create_open_defaults; the defaults,
	 * filled before the lookup, made a create-or-open of an existing
	 * queue of another geometry fail with SHK_ETYPE) */
	rc = shk__obj_open_dflt(seg, name, flags, &want, queue_defaults,
				queue_init, NULL, shk__kind_check_queue, &info,
				&mem);
	if (rc) {
		free(q);
		return rc;
	}
	q->seg = seg;
	q->hdr = mem;
	q->cells = (uint8_t *)mem + SHK__QUEUE_HDR_LEN;
	q->cap = info.cap;
	q->mask = info.cap - 1;
	q->elem_len = (uint32_t)info.elem_len;
	q->cell_len = cell_len_of(info.elem_len);
	q->type_id = info.type_id;
	q->owner =
		(seg->slot << SHK__QC_GEN_BITS) | (seg->gen & SHK__QC_GEN_MASK);
	/* the handle keeps the segment handle until its close */
	shk__seg_ref(seg);
	*out = q;
	return 0;
}

void
shk_queue_close(shk_queue *q)
{
	shk_seg *seg;

	if (!q)
		return;
	seg = q->seg;
	/* the descriptor's close disarms in the segment: mapped until the
	 * unref below */
	shk__pollfd_close(&q->pf);
	free(q);
	shk__seg_unref(seg);
}
