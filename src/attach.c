/*
 * attach.c - a segment's attach table: the record each open handle claims
 * (pid, start time, namespaces, generation), the per-slot liveness lock
 * the kernel drops when its holder dies, and the answers built on them:
 * whether a record's process still lives (shk__stamp_alive, used by every
 * owner-stamped structure) and the list shk_seg_attached gives.  The
 * record format is in segment.h and docs/segment-format.md.
 */
#include <unistd.h>

#include "segment.h"

/* SHK_ATTACH_* flags of ACTIVE record a: which namespaces differ from
 * ours (both inodes known). */
static uint32_t
att_foreign(struct shk__attach *a)
{
	/* relaxed: ordered by the caller's acquire load of the word */
	uint64_t ns = atomic_load_explicit(&a->pidns, memory_order_relaxed);
	uint64_t tns = atomic_load_explicit(&a->timens, memory_order_relaxed);
	uint64_t mine;
	uint32_t f = 0;

	if (ns && (mine = shk__self_pidns()) != 0 && ns != mine)
		f |= SHK_ATTACH_OTHER_PIDNS;
	if (tns && (mine = shk__self_timens()) != 0 && tns != mine)
		f |= SHK_ATTACH_OTHER_TIMENS;
	return f;
}

/*
 * Whether another description holds the liveness lock of attach slot i
 * (platform.h): 1 yes, 0 no, -1 cannot tell (no file behind the segment:
 * System V).  Asked through the segment's own descriptor, which never
 * holds one.  One left at 0-2 (shk__fd_above_stdio() found no number above
 * free) cannot tell either: the program may have dup2()ed /dev/null or a
 * log over it since, which would answer "free" for every live owner.
 */
static int
att_lock_held(shk_seg *seg, uint32_t i)
{
	return seg->fd > 2 ? shk__livelock_held(seg->fd, i) : -1;
}

/*
 * This process's own attach records: a key (segment instance, slot,
 * generation) per attached handle, entered between the claim and the store
 * of ACTIVE and removed after the record is freed, so that att_alive can
 * tell a record that names our own pid in (what reads as) our PID
 * namespace as ours or not.  A small lock-free table: no lock for fork()
 * to leave held; a forked child's copy holds its parent's keys, which no
 * record with the child's pid matches.  A handle that found it full counts
 * in own_overflow, and while that is nonzero every such record counts as
 * ours (the rule before the table).
 */
#define OWN_MAX 64
static _Atomic uint64_t own_keys[OWN_MAX];
static _Atomic uint32_t own_overflow;

static uint64_t
own_key(const shk_seg *seg, uint32_t slot, uint32_t gen)
{
	uint64_t sg = ((uint64_t)slot << 32) | (gen & 0x1fffffffu);

	/* never 0 */
	return shk__hash64(&sg, sizeof(sg), shk__seg_instance(seg)) | 1;
}

static void
own_add(shk_seg *seg)
{
	uint64_t k = own_key(seg, seg->slot, seg->gen), z;
	int i;

	for (i = 0; i < OWN_MAX; i++) {
		z = 0;
		/* relaxed: only this process reads the table; the attach
		 * record's release store of ACTIVE follows */
		if (atomic_compare_exchange_strong_explicit(
			    &own_keys[i], &z, k, memory_order_relaxed,
			    memory_order_relaxed)) {
			seg->own_idx = i;
			return;
		}
	}
	/* relaxed: a count read by own_has() in this process */
	atomic_fetch_add_explicit(&own_overflow, 1, memory_order_relaxed);
	seg->own_idx = -2;
}

static void
own_remove(shk_seg *seg)
{
	/* relaxed: as in own_add() */
	if (seg->own_idx >= 0)
		atomic_store_explicit(&own_keys[seg->own_idx], 0,
				      memory_order_relaxed);
	else if (seg->own_idx == -2)
		atomic_fetch_sub_explicit(&own_overflow, 1,
					  memory_order_relaxed);
	seg->own_idx = -1;
}

/* Whether record (slot, gen) of seg's segment is a handle of this process
 * (1), or cannot be (0); 1 when the table overflowed. */
static int
own_has(const shk_seg *seg, uint32_t slot, uint32_t gen)
{
	uint64_t k = own_key(seg, slot, gen);
	int i;

	/* relaxed: as in own_add() */
	if (atomic_load_explicit(&own_overflow, memory_order_relaxed))
		return 1;
	for (i = 0; i < OWN_MAX; i++)
		if (atomic_load_explicit(&own_keys[i], memory_order_relaxed) ==
		    k)
			return 1;
	return 0;
}

/*
 * Whether the process of ACTIVE attach record a (slot i of seg; word w,
 * loaded with acquire) lives; held is att_lock_held() of its slot.
 *
 * A held liveness lock means alive.  A record written from another PID
 * namespace (a container sharing the segment) names a pid that means
 * nothing here: when its owner took the liveness lock (SHK__ATT_LOCKED)
 * and the lock is free, the owner is gone; without the lock it counts as
 * alive, since taking over a live process's claims would cost its data,
 * while a dead one's claims only cost waiters their timeouts.  Within our
 * PID namespace the pid decides, also for a record whose lock is free: a
 * process that closed every descriptor it did not open itself, or that
 * exec()ed (the lock descriptor is close-on-exec), is not taken for dead
 * while its pid runs.  A record from another time namespace is tested by
 * pid without its start time.  Records without namespaces (no /proc when
 * written; time: written before 2026-11-24) are tested by pid and start
 * time.  A record naming our own pid in what reads as our namespace is
 * alive only if it is one of our handles (own_has): no other live process
 * has our pid here, so it is either ours or its writer is gone, whatever
 * /proc says.  The case arises when a dead namespace's inode number was
 * given to ours: a container's pid 1 then finds the records of earlier
 * containers' pid 1s (with /proc not remounted, even their start times,
 * read from the host's /proc/1, match ours).  It also covers a record of
 * this process from before an exec(), whose handle ended with that image.
 */
static int
att_alive(shk_seg *seg, uint32_t i, struct shk__attach *a, uint64_t w, int held)
{
	/* relaxed: ordered by the caller's acquire load of word */
	uint64_t t =
		atomic_load_explicit(&a->start_ticks, memory_order_relaxed);
	uint32_t f = att_foreign(a);

	if (held == 1)
		return 1;
	if (f & SHK_ATTACH_OTHER_PIDNS)
		return !(held == 0 && (w & SHK__ATT_LOCKED));
	if (SHK__ATT_PID(w) == (uint32_t)getpid())
		return own_has(seg, i, SHK__ATT_GEN(w));
	/* the kernel shifts /proc start times by the reader's boot-time
	 * offset: across time namespaces they cannot be compared, and the
	 * pid alone decides (a reused pid counts as the process) */
	if (f & SHK_ATTACH_OTHER_TIMENS)
		return shk__pid_running(SHK__ATT_PID(w));
	return shk__pid_alive(SHK__ATT_PID(w), t);
}

/*
 * Whether the claimer of CLAIMING record word w lives (held as in
 * att_alive).  The record has no start time or namespace yet.  A claimer
 * with the liveness lock holds it through the whole claim, so a free lock
 * means it died; otherwise its pid decides (a pid of another namespace can
 * mislead this: docs/segment-format.md).
 */
static int
claim_alive(uint64_t w, int held)
{
	if (held == 1)
		return 1;
	if (held == 0 && (w & SHK__ATT_LOCKED))
		return 0;
	return shk__pid_exists(SHK__ATT_PID(w));
}

/*
 * Claims a free record, or one whose owner died.  With a liveness-lock
 * descriptor, slot i's lock is taken before its record is examined: two
 * claimers can then never both take one slot, and the lock is held from
 * before the claim until after shk__seg_detach() frees the record (the lock is
 * dropped when the descriptor closes, in seg_free() in segment.c).  A slot
 * whose lock only read locks refuse (anyone who can read the file can
 * take one; no owner holds it) is claimed without the lock, as by a
 * process without a liveness-lock descriptor: its CAS alone decides.
 */
int
shk__seg_attach(shk_seg *seg)
{
	static _Atomic uint32_t opens; /* this process's attaches so far */
	uint32_t pid = (uint32_t)getpid(), i, k, gen, pass, start;
	uint64_t w, lk;

	seg->owner_key = shk__self_key();
	if (seg->fd >= 0 && seg->lockfd < 0)
		seg->lockfd = shk__livelock_open(seg->fd);
	/* The search starts at a slot that moves with the pid and with each
	 * attach of this process, so that claims spread over the table: from
	 * slot 0 every open and close took the lowest free record, whose
	 * generation then wrapped its 20 stamp bits after 2^20 claims (about
	 * half a minute of open/close loops), when a dead owner's stamp
	 * could look alive again (docs/segment-format.md, Attach table).
	 * relaxed: a counter only; two threads may start at the same slot */
	start = (pid * 2654435761u +
		 atomic_fetch_add_explicit(&opens, 1, memory_order_relaxed)) %
		seg->attach_cap;
	for (pass = 0; pass < 2; pass++) {
		for (k = 0; k < seg->attach_cap; k++) {
			struct shk__attach *a;
			i = (start + k) % seg->attach_cap;
			a = shk__attach_at(seg, i);
			uint32_t st;
			int held = -1;
			/* acquire: pairs with the release store of ACTIVE
			 * below, so start_ticks is visible for the test */
			w = atomic_load_explicit(&a->word,
						 memory_order_acquire);
			st = SHK__ATT_STATE(w);
			if (pass == 0 && st != SHK__ATT_FREE)
				continue;
			lk = 0;
			if (seg->lockfd >= 0) {
				int r = shk__livelock_try(seg->lockfd, i);

				if (r == 0)
					continue; /* its owner or a claimer */
				if (r == SHK__LIVELOCK_READERS) {
					/* only readers' locks: no owner holds
					 * it, but it cannot be ours; claim it
					 * as a process without liveness locks
					 * does (lk 0: its pid decides) */
				} else if (r < 0) {
					/* the kernel refuses the lock: go on
					 * without liveness locks */
					shk__livelock_close(seg->lockfd);
					seg->lockfd = -1;
				} else {
					lk = SHK__ATT_LOCKED;
					held = 0; /* by anyone but us */
					/* acquire: as above; re-read, now
					 * that no lock holder claims it */
					w = atomic_load_explicit(
						&a->word, memory_order_acquire);
					st = SHK__ATT_STATE(w);
				}
			}
			if (pass == 1 && held < 0 && st != SHK__ATT_FREE)
				held = att_lock_held(seg, i);
			if (st == SHK__ATT_ACTIVE) {
				if (pass == 0 || att_alive(seg, i, a, w, held))
					goto next;
			} else if (st == SHK__ATT_CLAIMING) {
				if (pass == 0 || claim_alive(w, held))
					goto next;
			} else if (st != SHK__ATT_FREE) {
				goto next;
			}
			gen = SHK__ATT_GEN(w) + 1;
			if ((gen & SHK__GEN_MASK) == 0)
				gen++;
			/* acq_rel: claims the record; a reclaimer's view of
			 * the dead owner's record is complete */
			if (!atomic_compare_exchange_strong_explicit(
				    &a->word, &w,
				    SHK__ATT_WORD(SHK__ATT_CLAIMING, gen, pid) |
					    lk,
				    memory_order_acq_rel, memory_order_relaxed))
				goto next;
			/* release fence: the claim (and the word it
			 * replaced) before the field stores below; pairs
			 * with the acquire fence in shk__stamp_alive(), whose
			 * re-load of the word then shows the claim when it
			 * read one of our fields (a seqlock writer) */
			atomic_thread_fence(memory_order_release);
			/* relaxed: published by the release store below */
			atomic_store_explicit(&a->start_ticks,
					      shk__self_start_ticks(),
					      memory_order_relaxed);
			atomic_store_explicit(&a->pidns, shk__self_pidns(),
					      memory_order_relaxed);
			atomic_store_explicit(&a->timens, shk__self_timens(),
					      memory_order_relaxed);
			/* ours before it reads ACTIVE with our pid, for the
			 * other threads of this process (att_alive) */
			seg->slot = i;
			seg->gen = gen;
			own_add(seg);
			/* release: publishes start_ticks; pairs with the
			 * acquire loads in shk__stamp_alive() and
			 * shk__seg_attach() */
			atomic_store_explicit(
				&a->word,
				SHK__ATT_WORD(SHK__ATT_ACTIVE, gen, pid) | lk,
				memory_order_release);
			seg->att_locked = lk;
			seg->stamp = SHK__STAMP(i, gen);
			return 0;
		next:
			if (lk)
				shk__livelock_unlock(seg->lockfd, i);
		}
	}
	return SHK_EBUSY;
}

void
shk__seg_detach(shk_seg *seg)
{
	struct shk__attach *a;
	uint64_t w;

	if (seg->slot == UINT32_MAX)
		return;
	if (seg->owner_key != shk__self_key()) {
		/* a forked child's copy: the record is its parent's */
		seg->slot = UINT32_MAX;
		return;
	}
	a = shk__attach_at(seg, seg->slot);
	w = SHK__ATT_WORD(SHK__ATT_ACTIVE, seg->gen, (uint32_t)getpid()) |
	    seg->att_locked;
	/* release: everything this process did in the segment happens before
	 * a later claimer of the record sees it FREE.  The liveness lock is
	 * dropped after this, when seg_free() closes its descriptor. */
	atomic_compare_exchange_strong_explicit(
		&a->word, &w, SHK__ATT_WORD(SHK__ATT_FREE, seg->gen, 0),
		memory_order_release, memory_order_relaxed);
	/* after the record is free: until then it stays ours */
	own_remove(seg);
	seg->slot = UINT32_MAX;
}

int
shk__stamp_alive(shk_seg *seg, uint32_t stamp)
{
	uint32_t slot = SHK__STAMP_SLOT(stamp & SHK__STAMP_MASK);
	struct shk__attach *a;
	uint64_t w;

	if (slot >= seg->attach_cap)
		return 0;
	a = shk__attach_at(seg, slot);
	/* acquire: pairs with the release store of ACTIVE in
	 * shk__seg_attach() */
	w = atomic_load_explicit(&a->word, memory_order_acquire);
	if ((SHK__ATT_GEN(w) & SHK__GEN_MASK) != SHK__STAMP_GEN(stamp))
		return 0;
	if (SHK__ATT_STATE(w) == SHK__ATT_CLAIMING)
		return claim_alive(w, att_lock_held(seg, slot));
	if (SHK__ATT_STATE(w) != SHK__ATT_ACTIVE)
		return 0;
	if (!att_alive(seg, slot, a, w, att_lock_held(seg, slot)))
		return 0;
		/* att_alive() read start_ticks and the namespaces after w, without
	 * a lock: a reclaimer may have written its own meanwhile (the
	 * seqlock reader of shk__seg_attach()'s claim).  An ACTIVE word
	 * changes only when its owner detaches (FREE) or a reclaimer takes
	 * the record of a dead owner (CLAIMING, a new generation), so a
	 * changed word means the stamp asked about is gone, whatever the
	 * fields said: 0.  The acquire fence orders the field loads before
	 * the re-load (pairs with the claimer's release fence); under TSan,
	 * which ignores fences, an acquire load (an RMW would fault on a
	 * read-only handle's mapping). */
#ifndef SHK__TSAN
	atomic_thread_fence(memory_order_acquire);
#endif
	/* acquire: see above */
	return atomic_load_explicit(&a->word, memory_order_acquire) == w;
}

int
shk_seg_attached(shk_seg *seg, uint32_t *cursor, shk_attach_info *info)
{
	if (!seg || !cursor || !info || info->size < sizeof(*info))
		return SHK_EINVAL;
	while (*cursor < seg->attach_cap) {
		struct shk__attach *a = shk__attach_at(seg, (*cursor)++);
		/* acquire: pairs with the release store in shk__seg_attach() */
		uint64_t w =
			atomic_load_explicit(&a->word, memory_order_acquire);
		uint32_t st = SHK__ATT_STATE(w);
		int held;

		if (st != SHK__ATT_ACTIVE && st != SHK__ATT_CLAIMING)
			continue;
		info->size = sizeof(*info); /* the bytes filled (header) */
		info->slot = *cursor - 1;
		info->pid = SHK__ATT_PID(w);
		info->generation = SHK__ATT_GEN(w);
		/* relaxed: ordered by the acquire load above */
		info->start_ticks = atomic_load_explicit(&a->start_ticks,
							 memory_order_relaxed);
		held = att_lock_held(seg, *cursor - 1);
		info->alive = st == SHK__ATT_ACTIVE
				      ? (uint32_t)att_alive(seg, *cursor - 1, a,
							    w, held)
				      : (uint32_t)claim_alive(w, held);
		info->flags = st == SHK__ATT_ACTIVE ? att_foreign(a) : 0;
		if (w & SHK__ATT_LOCKED)
			info->flags |= SHK_ATTACH_LOCKED;
		/* att_alive()'s "counted alive" case: no proof either way */
		if (info->alive && held != 1 &&
		    (info->flags & SHK_ATTACH_OTHER_PIDNS))
			info->flags |= SHK_ATTACH_UNTESTED;
		return 1;
	}
	return 0;
}

int
shk__seg_alone(shk_seg *seg)
{
	shk_attach_info ai = { .size = sizeof(ai) };
	uint32_t cur = 0;

	while (shk_seg_attached(seg, &cur, &ai) == 1) {
		if (ai.alive && ai.slot != seg->slot)
			return 0;
	}
	return 1;
}
