/*
 * wait.c - spin, then futex sleep, with waiter counts (see wait.h for the
 * protocol and its happens-before edges).
 *
 * What a killed party leaves behind: a waiter killed asleep leaves
 * waiters > 0, which costs the waker spurious FUTEX_WAKE calls but loses
 * nothing.  A waker killed between publishing and waking leaves the sleeper
 * asleep until its timeout or the next wake; blocking calls therefore wake
 * up at least every slice to re-check when a dead-peer check is given.
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
shk__wait_checked(shk__waitpoint *wp, shk__wait_pred pred, void *arg,
		  int64_t timeout_ns, int (*check)(void *arg),
		  int64_t slice_ns)
{
	int64_t deadline, now, spin_end, until, budget, check_at;
	unsigned k = (unsigned)((uintptr_t)wp >> 6) % SPIN_SLOTS;
	uint32_t s;
	int n = 0, rc;

	if (pred(arg))
		return 0;
	if (timeout_ns == 0)
		return SHK_EAGAIN;
	deadline = shk__deadline(timeout_ns);
	now = shk__now_ns();
	budget = shk__spin_ns();
	if (spin_misses[k] >= SPIN_MISSES &&
	    ++spin_probe[k] % SPIN_PROBE != 0)
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
	/* check is due every slice_ns of clock time, whatever ends a sleep
	 * early (a signal's EINTR, a wake that left pred false) */
	check_at = check && slice_ns > 0 ? now + slice_ns : INT64_MAX;
	for (;;) {
		/* seq_cst RMW and fence: order our waiters store before the
		 * re-check below; pair with SHK_WAKER_FENCE in shk__wake().
		 * The fence is what C11 needs for the store->load order
		 * against the predicate's (acquire) loads: a seq_cst RMW
		 * alone does not give it, though x86's locked add does.
		 * Only the sleep path pays for it. */
		atomic_fetch_add_explicit(&wp->waiters, 1,
					  memory_order_seq_cst);
		SHK_FENCE_SEQ_CST(&wp->waiters);
		/* acquire: pairs with the release increment in
		 * shk__wake_slow(); taken before the re-check so that a
		 * wake after the re-check changes seq and the sleep fails */
		s = atomic_load_explicit(&wp->seq, memory_order_acquire);
		if (pred(arg)) {
			/* relaxed: a count only */
			atomic_fetch_sub_explicit(&wp->waiters, 1,
						  memory_order_relaxed);
			return 0;
		}
		now = shk__now_ns();
		if (now >= deadline) {
			atomic_fetch_sub_explicit(&wp->waiters, 1,
						  memory_order_relaxed);
			return SHK_ETIMEDOUT;
		}
		until = check_at < deadline ? check_at : deadline;
		rc = shk__futex_wait(&wp->seq, s, until);
		/* relaxed: a count only */
		atomic_fetch_sub_explicit(&wp->waiters, 1,
					  memory_order_relaxed);
		if (pred(arg))
			return 0;
		if (check &&
		    (rc == SHK_ETIMEDOUT || shk__now_ns() >= check_at)) {
			rc = check(arg);
			if (rc)
				return rc;
			if (slice_ns > 0)
				check_at = shk__now_ns() + slice_ns;
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
	next_check = now + slice_ns;
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
			rc = check(arg);
			if (rc)
				return rc;
			next_check = now + slice_ns;
		}
		if (now >= yield_after)
			sched_yield(); /* the peer may need this CPU */
	}
}

int
shk__wait(shk__waitpoint *wp, shk__wait_pred pred, void *arg,
	  int64_t timeout_ns)
{
	return shk__wait_checked(wp, pred, arg, timeout_ns, NULL, 0);
}

void
shk__wake_slow(shk_seg *seg, shk__waitpoint *wp, int n)
{
	/* release: pairs with the acquire load of seq in shk__wait_checked();
	 * a sleeper that read the old value fails its futex_wait */
	atomic_fetch_add_explicit(&wp->seq, 1, memory_order_release);
	/* relaxed: a re-read, after the fence in shk__wake() or the seq_cst
	 * RMW and loads of shk__wake_sc() */
	if (atomic_load_explicit(&wp->waiters, memory_order_relaxed))
		shk__futex_wake(&wp->seq, n);
	if (atomic_load_explicit(&wp->armed, memory_order_relaxed))
		shk__doorbell_notify(seg, wp);
}
