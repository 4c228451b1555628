/*
 * wait.c - spin, then futex sleep, with waiter counts (see wait.h for the
 * protocol and its happens-before edges).
 *
 * What a killed party leaves behind: a waiter killed asleep leaves
 * waiters > 0 and its holder entry (wait.h): a waker whose FUTEX_WAKE
 * woke nobody repairs the count (shk__wp_repair, at most once every
 * REPAIR_EVERY such wakes per thread), so only the system calls until then
 * are wasted, and nothing is lost.  A waiter with no entry (all taken, or
 * no segment handle) leaves the count too high for good, which costs each
 * later wake a FUTEX_WAKE.  A waker killed between publishing and waking
 * leaves the sleeper asleep until its timeout or the next wake; blocking
 * calls therefore wake up at least every slice to re-check when a
 * dead-peer check is given.
 */
#include "wait.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "doorbell.h"

/* The spin budget, read from SHK_SPIN_NS once per process: a forked child
 * reads it again (the parent may have changed the environment). */
static _Atomic int64_t spin_budget_ns = -1; /* -1: not read yet */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
spin_reset_child(void)
{
	/* relaxed: the child has one thread at this point */
	atomic_store_explicit(&spin_budget_ns, -1, memory_order_relaxed);
}

static void
spin_atfork(void)
{
	pthread_atfork(NULL, NULL, spin_reset_child);
}

int64_t
shk__spin_ns(void)
{
	/* relaxed: a plain value; racing readers compute the same one */
	int64_t v = atomic_load_explicit(&spin_budget_ns, memory_order_relaxed);
	const char *e;
	char *end;
	long long x;

	if (SHK_LIKELY(v >= 0))
		return v;
	pthread_once(&atfork_once, spin_atfork);
	v = SHK__SPIN_NS;
	e = getenv("SHK_SPIN_NS");
	if (e && *e) {
		x = strtoll(e, &end, 10);
		if (*end == '\0' && x >= 0 && x <= 1000000000LL)
			v = x;
	}
	atomic_store_explicit(&spin_budget_ns, v, memory_order_relaxed);
	return v;
}

_Thread_local int shk__intr SHK__TLS_IE;

int
shk_interruptible(int on)
{
	int was = shk__intr;

	shk__intr = on != 0;
	return was;
}

/*
 * Adaptive spin, per thread and waitpoint.  A wait that its spin did not
 * satisfy slept anyway, and the spin may have cost more than its time: the
 * scheduler often wakes the peer we just signalled on our own CPU, where
 * it waits until we stop spinning (unpinned processes on few CPUs).  After
 * SPIN_MISSES such waits in a row on a waitpoint, a thread sleeps on it at
 * once, spinning again on every SPIN_PROBE-th wait to notice when spinning
 * pays again; a wait that the spin satisfies resets the count.  Counts sit
 * in a small direct-mapped thread-local table keyed by the waitpoint's
 * line (SPIN_SLOTS entries), so that a slow object does not teach a
 * thread to sleep on a fast one, unless the two collide.
 */
#define SPIN_MISSES 4u
#define SPIN_PROBE 16u
#define SPIN_SLOTS 8u
static _Thread_local uint8_t spin_misses[SPIN_SLOTS] SHK__TLS_IE;
static _Thread_local uint8_t spin_probe[SPIN_SLOTS] SHK__TLS_IE;

int
shk__wp_hold(shk__waitpoint *wp, uint32_t entry)
{
	uint32_t i, exp;

	if (!entry)
		return -1;
	for (i = 0; i < SHK__WP_HOLDERS; i++) {
		exp = 0;
		/* relaxed load: a hint; seq_cst CAS: after our increment of
		 * the count in program order, and a repairer's acquire CAS
		 * of the entry then sees that increment (it is what the
		 * entry stands for) */
		if (atomic_load_explicit(&wp->holders[i],
					 memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong_explicit(
			    &wp->holders[i], &exp, entry, memory_order_seq_cst,
			    memory_order_relaxed))
			return (int)i;
	}
	return -1;
}

void
shk__wp_unhold(shk__waitpoint *wp, int i)
{
	if (i < 0)
		return;
	/* release: orders our accesses before the clear (a repairer that
	 * acquires the entry value we replace sees them).  It orders
	 * nothing after it: the caller's decrement of the count that
	 * follows must itself be a release RMW, so that the clear comes
	 * before the decrement (wait.h, Holders: the entry never stands
	 * for a count already given back) */
	atomic_store_explicit(&wp->holders[i], 0, memory_order_release);
}

int
shk__wp_repair(shk_seg *seg, shk__waitpoint *wp, uint32_t kind)
{
	_Atomic uint32_t *count = kind ? &wp->armed : &wp->waiters;
	uint32_t i, e, c;
	int n = 0;

	if (!seg)
		return 0;
	for (i = 0; i < SHK__WP_HOLDERS; i++) {
		/* acquire: pairs with the seq_cst CAS in shk__wp_hold() */
		e = atomic_load_explicit(&wp->holders[i], memory_order_acquire);
		/* untrusted: bits beyond a stamp and the kind are no entry
		 * of ours; leave it */
		if (!e || (e & ~(SHK__STAMP_MASK | SHK__WP_ARMED)) ||
		    (e & SHK__WP_ARMED) != kind)
			continue;
		if (shk__stamp_alive(seg, e & ~SHK__WP_ARMED))
			continue;
		/* acq_rel: only one repairer takes a dead entry; its owner
		 * is gone, so nobody else clears it */
		if (!atomic_compare_exchange_strong_explicit(
			    &wp->holders[i], &e, 0, memory_order_acq_rel,
			    memory_order_relaxed))
			continue;
		/* relaxed: a count; the CAS loop never takes it below 0
		 * (a forged entry must not wrap it) */
		c = atomic_load_explicit(count, memory_order_relaxed);
		while (c && !atomic_compare_exchange_weak_explicit(
				    count, &c, c - 1, memory_order_relaxed,
				    memory_order_relaxed))
			;
		n++;
	}
	return n;
}

int
shk__wp_busy(shk_seg *seg, shk__waitpoint *wp)
{
	uint32_t i, e;

	for (i = 0; i < SHK__WP_HOLDERS; i++) {
		/* relaxed: a snapshot for shk_obj_remove (registry.h,
		 * shk__obj_busy_fn); an entry recorded after it is a sleep
		 * that began after the removal's check */
		e = atomic_load_explicit(&wp->holders[i], memory_order_relaxed);
		if (e && !(e & ~(SHK__STAMP_MASK | SHK__WP_ARMED)) &&
		    shk__stamp_alive(seg, e & SHK__STAMP_MASK))
			return 1;
	}
	return 0;
}

/* now + slice_ns, saturated: a slice too long to end before INT64_MAX
 * (such as a reader_timeout_ns of INT64_MAX) means "never"; the plain sum
 * overflows (undefined) and in practice wrapped to a past deadline, which
 * made every sleep return at once. */
static int64_t
add_sat(int64_t now, int64_t slice_ns)
{
	return slice_ns > INT64_MAX - now ? INT64_MAX : now + slice_ns;
}

/*
 * Runs check(arg) for a sleep that is over: returns 1 when the wait ends,
 * with what it returns in *out, or 0 to go on.  A peer that published and
 * then died may have done both between our last pred and the check: on
 * SHK_EPEERDEAD pred runs once more, so that a record already there is
 * returned (*out 0) rather than the death.  Other codes (SHK_ENOENT: the
 * memory may be another object's; internal codes whose callers retry)
 * end the wait as they are.
 */
static int
check_ends(int (*check)(void *arg), shk__wait_pred pred, void *arg, int *out)
{
	int rc = check(arg);

	if (!rc)
		return 0;
	*out = rc == SHK_EPEERDEAD && pred(arg) ? 0 : rc;
	return 1;
}

int
shk__wait_checked(shk_seg *seg, shk__waitpoint *wp, shk__wait_pred pred,
		  void *arg, int64_t timeout_ns, int (*check)(void *arg),
		  int64_t slice_ns)
{
	return shk__wait_obj(seg, wp, pred, arg, timeout_ns, check, slice_ns,
			     NULL);
}

int
shk__wait_obj(shk_seg *seg, shk__waitpoint *wp, shk__wait_pred pred, void *arg,
	      int64_t timeout_ns, int (*check)(void *arg), int64_t slice_ns,
	      int (*gone)(void *arg))
{
	int64_t deadline, now, spin_end, until, budget, check_at;
	unsigned k = (unsigned)((uintptr_t)wp >> 6) % SPIN_SLOTS;
	uint32_t s, stamp = seg ? shk__seg_stamp(seg) : 0;
	int n = 0, rc, held, g;

	if (pred(arg))
		return 0;
	if (timeout_ns == 0)
		return SHK_EAGAIN;
	deadline = shk__deadline(timeout_ns);
	now = shk__now_ns();
	budget = shk__spin_ns();
	if (spin_misses[k] >= SPIN_MISSES && ++spin_probe[k] % SPIN_PROBE != 0)
		budget = 0;
	spin_end = now + budget;
	/* Spin to a time budget, reading the clock every 64 pauses. */
	while (spin_end > now) {
		shk__cpu_relax();
		if (pred(arg)) {
			spin_misses[k] = 0;
			return 0;
		}
		if ((++n & 63) == 0) {
			now = shk__now_ns();
			if (now >= spin_end || now >= deadline)
				break;
		}
	}
	if (budget > 0 && spin_misses[k] < SPIN_MISSES)
		spin_misses[k]++;
	/* a sleep lasts at most slice_ns (pred is re-checked after it), and
	 * check is due every slice_ns of clock time, whatever ends a sleep
	 * early (a signal's EINTR, a wake that left pred false) */
	check_at = slice_ns > 0 ? add_sat(now, slice_ns) : INT64_MAX;
	for (;;) {
		/* Removed (SHK_FORCE) while we spun or were awake: wp may be
		 * someone else's memory now, so do not count ourselves in */
		if (gone && (g = gone(arg)) != 0)
			return g;
		/* seq_cst RMW and fence: order our waiters store before the
		 * re-check below; pair with SHK_WAKER_FENCE in shk__wake().
		 * The fence is what C11 needs for the store->load order
		 * against the predicate's (acquire) loads: a seq_cst RMW
		 * alone does not give it, though x86's locked add does.
		 * Only the sleep path pays for it. */
		shk__wp_count_in(wp);
		SHK_FENCE_SEQ_CST(&wp->waiters);
		/* after the increment, and cleared before the decrement:
		 * see wait.h, Holders */
		held = shk__wp_hold(wp, stamp);
		/* acquire: pairs with the release increment in
		 * shk__wake_slow(); taken before the re-check so that a
		 * wake after the re-check changes seq and the sleep fails */
		s = atomic_load_explicit(&wp->seq, memory_order_acquire);
		if (pred(arg)) {
			shk__wp_unhold(wp, held);
			/* release: after the holder entry's clear
			 * (shk__wp_unhold()) */
			atomic_fetch_sub_explicit(&wp->waiters, 1,
						  memory_order_release);
			return 0;
		}
		now = shk__now_ns();
		if (now >= deadline) {
			shk__wp_unhold(wp, held);
			/* release: after the entry's clear, as above */
			atomic_fetch_sub_explicit(&wp->waiters, 1,
						  memory_order_release);
			return SHK_ETIMEDOUT;
		}
		until = check_at < deadline ? check_at : deadline;
		rc = shk__futex_wait(&wp->seq, s, until);
		/* Removed while we slept: the object's memory (wp included)
		 * may belong to someone else by now.  Leave our count and
		 * holder entry there (a new object's creation zero-filled
		 * them, or they stay in a freed block) rather than write
		 * into its new owner, and run no pred on that memory.  A
		 * removal after this test still meets the writes below:
		 * the window is this thread's few instructions to the
		 * decrement (wait.h). */
		if (gone && (g = gone(arg)) != 0)
			return g;
		shk__wp_unhold(wp, held);
		/* release: after the entry's clear, as above */
		atomic_fetch_sub_explicit(&wp->waiters, 1,
					  memory_order_release);
		if (pred(arg))
			return 0;
		if (check_at != INT64_MAX &&
		    (rc == SHK_ETIMEDOUT || shk__now_ns() >= check_at)) {
			if (check && check_ends(check, pred, arg, &rc))
				return rc;
			check_at = add_sat(shk__now_ns(), slice_ns);
		}
		/* interruptible: every sleep that ends short of the deadline
		 * without the condition returns, whatever ended it (a signal,
		 * a slice, a wake another waiter won), so that a handler that
		 * ran while we were awake is seen by the caller before a later
		 * sleep could take anything; nothing was taken (pred, which
		 * takes, was false).  The check runs first, due or not: the
		 * caller's next call starts a new slice, so with signals
		 * faster than one per slice a check that waited for its slice
		 * never ran, and a retry loop never saw its peer's death
		 * (tests intr_peer_dead_*: a ring consumer with a 10 ms itimer
		 * got SHK_EINTR for ever).  Costs the check's system calls
		 * per interrupted call only. */
		if (shk__intr && shk__now_ns() < deadline) {
			if (check && check_at != INT64_MAX &&
			    check_ends(check, pred, arg, &rc))
				return rc;
			return SHK_EINTR;
		}
	}
}

int
shk__spin_checked(shk__wait_pred pred, void *arg, int64_t timeout_ns,
		  int (*check)(void *arg), int64_t slice_ns)
{
	int64_t deadline, now, yield_after, next_check;
	int n = 0, rc;

	if (pred(arg))
		return 0;
	if (timeout_ns == 0)
		return SHK_EAGAIN;
	deadline = shk__deadline(timeout_ns);
	now = shk__now_ns();
	yield_after = now + shk__spin_ns();
	next_check = add_sat(now, slice_ns);
	for (;;) {
		shk__cpu_relax();
		if (pred(arg))
			return 0;
		if ((++n & 63) != 0)
			continue;
		now = shk__now_ns();
		if (now >= deadline)
			return pred(arg) ? 0 : SHK_ETIMEDOUT;
		if (check && slice_ns > 0 && now >= next_check) {
			if (check_ends(check, pred, arg, &rc))
				return rc;
			next_check = add_sat(now, slice_ns);
		}
		if (now >= yield_after)
			sched_yield(); /* the peer may need this CPU */
	}
}

int
shk__wait(shk__waitpoint *wp, shk__wait_pred pred, void *arg,
	  int64_t timeout_ns)
{
	return shk__wait_checked(NULL, wp, pred, arg, timeout_ns, NULL, 0);
}

/*
 * A wake that reached nobody while the count said somebody sleeps: either a
 * sleeper is between its increment and its futex_wait (it will see the new
 * seq), or the count is stale.  shk__wp_repair tells them apart with
 * system calls per entry, so each thread repairs on the first such wake
 * and then on every REPAIR_EVERY-th: a stale count is taken back after at
 * most that many wasted wakes, and the race costs little.  Doorbells:
 * a listener that is armed but dead still has a socket file, which can
 * take the byte; so armed entries are examined on the same schedule
 * whenever armed is nonzero.
 */
#define REPAIR_EVERY 64u
static _Thread_local uint32_t zero_wakes SHK__TLS_IE;
static _Thread_local uint32_t armed_wakes SHK__TLS_IE;

void
shk__wake_missed(shk_seg *seg, shk__waitpoint *wp)
{
	if (seg && zero_wakes++ % REPAIR_EVERY == 0)
		shk__wp_repair(seg, wp, 0);
}

void
shk__wake_slow(shk_seg *seg, shk__waitpoint *wp, int n)
{
	/* release: pairs with the acquire load of seq in shk__wait_checked();
	 * a sleeper that read the old value fails its futex_wait */
	atomic_fetch_add_explicit(&wp->seq, 1, memory_order_release);
	/* relaxed: a re-read, after the fence in shk__wake() or the seq_cst
	 * RMW and loads of shk__wake_sc() */
	if (atomic_load_explicit(&wp->waiters, memory_order_relaxed) &&
	    shk__futex_wake(&wp->seq, n) == 0)
		shk__wake_missed(seg, wp);
	/* acquire: pairs with the listener's seq_cst increment of armed in
	 * shk__doorbell_arm(), whose listeners bit (set by an earlier seq_cst
	 * fetch_or) notify then reads.  A relaxed load here, even after the
	 * waker's fence, let a weakly ordered CPU satisfy notify's
	 * listeners load before it: a new armed count with the old bitmap,
	 * and the new listener got no byte.  x86 orders loads anyway. */
	if (atomic_load_explicit(&wp->armed, memory_order_acquire)) {
		shk__doorbell_notify(seg, wp);
		if (seg && armed_wakes++ % REPAIR_EVERY == 0)
			shk__wp_repair(seg, wp, SHK__WP_ARMED);
	}
}
