/*
 * wait.h - how every blocking call in shmkit waits: spin for a short time
 * budget, then sleep on a futex in shared memory.  A waker makes the
 * FUTEX_WAKE system call only when the waiter count says somebody sleeps,
 * so the fast path makes no system call.  ALGORITHMS.md §6.
 *
 * Sleeper protocol (Dekker pattern; STYLE B6):
 *   waiter: waiters += 1 (seq_cst); hold an entry; s = seq (acquire);
 *           re-check the condition; futex_wait(seq, s); clear the entry;
 *           waiters -= 1
 *   waker:  publish the data; SHK_WAKER_FENCE; if waiters != 0 or
 *           armed != 0: seq += 1 (release), FUTEX_WAKE, ring doorbells;
 *           now and then, when that reached nobody, shk__wp_repair
 * The waker's fence orders its data store before its waiters load; the
 * waiter's seq_cst increment orders its waiters store before its re-check.
 * So either the waker sees the sleeper, or the sleeper sees the data.
 */
#ifndef SHK_WAIT_H
#define SHK_WAIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"

/*
 * A waitpoint lives in shared memory, on its own 64-byte line.  The
 * doorbell fields belong to doorbell.c (pollable file descriptors).
 */
typedef struct shk__waitpoint {
	_Atomic uint32_t seq;     /* futex word, bumped by wakers */
	_Atomic uint32_t waiters; /* processes/threads asleep on seq */
	_Atomic uint32_t armed;   /* doorbell listeners that want a signal */
	uint32_t reserved0;
	_Atomic uint64_t listeners; /* doorbell.c: bitmap or table ref */
	/* who holds the counts above (shk__wp_hold): 0 free, or the owner
	 * stamp (segment.h) of a sleeper, | SHK__WP_ARMED for a listener.
	 * Zero in segments of older versions, whose sleepers record
	 * nothing (reserved there), so the layout is unchanged. */
	_Atomic uint32_t holders[10];
} shk__waitpoint;
_Static_assert(sizeof(shk__waitpoint) == 64, "waitpoint is one line");
_Static_assert(offsetof(shk__waitpoint, holders) == 24, "holders offset");

#define SHK__WP_HOLDERS 10u
#define SHK__WP_ARMED 0x40000000u /* above every stamp (30 bits) */

/*
 * shk__wp_count_in counts a sleeper in wp->waiters: the seq_cst increment
 * of the sleeper protocol (the caller then fences, or relies on the
 * kernel's, before its re-check).  A count of sleepers never reaches 2^31
 * (that many threads), so a value at or above it before our increment is
 * wrapped: a decrement into memory that a forced removal gave to a new
 * object (shk__wait_obj below), or a hostile peer's store.  Such a
 * count made each real sleeper's increment land on 0 (UINT32_MAX + 1),
 * wakers saw no sleeper, and every wake-up on the waitpoint was lost for
 * good (each sleep lasted its slice or its timeout; test wrapped_waiters).
 * The sleeper that sees it takes the bias back (subtracts what it found),
 * seq_cst as the increment, before the caller's fence.  The healed count
 * cannot know how many real sleepers the bad value hid: it may end too
 * high (sleepers that counted themselves in the wrapped count meanwhile:
 * a FUTEX_WAKE per wake that reaches nobody, until repair) or too low (a
 * sleeper counted before the bogus decrements: it then wakes at its
 * slice's end, as after any bogus decrement that does not wrap); the
 * slices bound both.
 */
#define SHK__WP_COUNT_BAD 0x80000000u
static inline void
shk__wp_count_in(shk__waitpoint *wp)
{
	/* seq_cst: the store of the Dekker pair (see above) */
	uint32_t old = atomic_fetch_add_explicit(&wp->waiters, 1,
						 memory_order_seq_cst);

	if (SHK_UNLIKELY(old >= SHK__WP_COUNT_BAD))
		/* seq_cst: this store is the one the waker must see */
		atomic_fetch_sub_explicit(&wp->waiters, old,
					  memory_order_seq_cst);
}

/* Condition a waiter waits for: returns nonzero when it holds. */
typedef int (*shk__wait_pred)(void *arg);

/* Default spin budget before sleeping, in ns (about the cost of one futex
 * sleep on this class of machine; ALGORITHMS.md §6).  The environment
 * variable SHK_SPIN_NS overrides it per process (0: sleep at once, e.g. to
 * save CPU, or to measure the pure sleep path). */
#define SHK__SPIN_NS 5000
SHK_HIDDEN int64_t shk__spin_ns(void);

/* shk_interruptible()'s setting for this thread: nonzero when a sleep that
 * a signal handler interrupts ends the blocking call with SHK_EINTR. */
extern _Thread_local int shk__intr SHK__TLS_IE;

/* Zero-initialised memory is a valid waitpoint. */
static inline void
shk__wp_init(shk__waitpoint *wp)
{
	__builtin_memset(wp, 0, sizeof(*wp));
}

/*
 * Holders.  A sleeper or an armed doorbell listener killed while it counts
 * in waiters or armed would leave that count too high for good, and every
 * publication would then make a system call (FUTEX_WAKE, or a doorbell
 * sendto) that reaches nobody.  So each one also records its owner stamp
 * in a free holder entry, after its increment, and clears the entry before
 * its decrement (the decrement is a release RMW: the clear's own release
 * store orders only what precedes it): an entry therefore never stands for
 * a count that is not there (in a dead process, what it did is a prefix
 * of its program).  A
 * waker whose wake reached nobody calls shk__wp_repair now and then, which
 * clears the entries of dead owners and takes their counts back.  With all
 * entries taken, or no stamp (seg NULL, raw-memory tests), nothing is
 * recorded: such a count, if its owner dies, stays too high, which costs
 * those system calls and loses nothing.  So does a death between the
 * increment and the entry, or between clearing the entry and the
 * decrement (a window of a few instructions).
 *
 * shk__wp_hold records entry (a stamp, | SHK__WP_ARMED for a listener) and
 * returns its index, or -1 when none is free or entry is 0;
 * shk__wp_unhold(wp, i) clears it (i < 0: nothing).  shk__wp_repair
 * examines the entries of one kind (0: sleepers, SHK__WP_ARMED:
 * listeners), and for each whose owner is dead clears it and takes one off
 * that kind's count (never below 0); it returns how many it cleared.  It
 * makes system calls (shk__stamp_alive): slow paths only.
 */
SHK_HIDDEN int shk__wp_hold(shk__waitpoint *wp, uint32_t entry);
SHK_HIDDEN void shk__wp_unhold(shk__waitpoint *wp, int i);
SHK_HIDDEN int shk__wp_repair(shk_seg *seg, shk__waitpoint *wp, uint32_t kind);

/*
 * shk__wp_busy returns 1 when a holder entry of wp names a live owner: a
 * sleeper or an armed listener that is still there (shk_obj_remove's busy
 * hooks, registry.h).  Makes system calls (shk__stamp_alive).
 */
SHK_HIDDEN int shk__wp_busy(shk_seg *seg, shk__waitpoint *wp);

/*
 * shk__wake_missed is for a waker whose FUTEX_WAKE on wp woke nobody while
 * waiters was nonzero: it runs shk__wp_repair(seg, wp, 0) on this thread's
 * first such wake and then on every REPAIR_EVERY-th (wait.c).  seg NULL:
 * nothing.
 */
SHK_HIDDEN void shk__wake_missed(shk_seg *seg, shk__waitpoint *wp);

/*
 * shk__wait blocks until pred(arg) holds or the timeout expires.  Spins
 * for SHK__SPIN_NS, then sleeps on wp->seq.  timeout_ns: SHK_FOREVER, 0
 * (check once) or relative ns.  Returns 0 when pred held, SHK_EAGAIN
 * (timeout 0 and pred false), SHK_ETIMEDOUT.  If check is not NULL, it is
 * called about every slice_ns while asleep (for dead-peer tests), and
 * before an interruptible call returns SHK_EINTR (shk__intr: each call
 * starts its slice anew, so a signal storm would keep it from ever being
 * due); a nonzero return ends the wait with that code, except that
 * SHK_EPEERDEAD is followed by one more pred, which wins if it holds.
 * With check NULL and slice_ns > 0, a sleep still lasts at most slice_ns and pred is re-checked after it
 * (for wakers that may die between their change and their wake).  A
 * slice that would end past INT64_MAX ns of the clock is "never": no
 * check, and sleeps as long as the timeout.  seg:
 * the segment handle wp lies
 * in, whose owner stamp a sleeper records in wp's holders (NULL: none;
 * shk__wait records none).
 */
SHK_HIDDEN int shk__wait(shk__waitpoint *wp, shk__wait_pred pred, void *arg,
			 int64_t timeout_ns);
SHK_HIDDEN int shk__wait_checked(shk_seg *seg, shk__waitpoint *wp,
				 shk__wait_pred pred, void *arg,
				 int64_t timeout_ns, int (*check)(void *arg),
				 int64_t slice_ns);

/*
 * shk__wait_obj is shk__wait_checked for an object that may be removed
 * while we wait (shk_obj_remove_flags with SHK_FORCE: a ring or bcast,
 * whose handle keeps a reference to its registry entry).  gone(arg) says
 * whether it was: 0 while the object is still there, else the code to
 * return (SHK_ENOENT).  It must be cheap and write nothing (registry.h,
 * shk__obj_live: lock-free, no system call).  It runs only on the sleep
 * path: before each count in waiters (so a wait that spun or woke on a
 * removed object does not write into it) and as soon as each futex_wait
 * returns, before the holder entry is cleared, waiters decremented and
 * pred re-run; when it reports the object gone the wait returns its code
 * and leaves wp as it is (our count and entry stay in memory that is no
 * longer the object's).  The fast path (pred true at once or while
 * spinning) never calls it.  Not covered: a removal that lands after a
 * gone() test and before the writes that follow it (the waiters
 * increment and holder entry, or the entry clear and decrement: a few
 * instructions), and preds run while spinning, which read whatever took
 * the memory.  gone NULL: shk__wait_checked.
 */
SHK_HIDDEN int shk__wait_obj(shk_seg *seg, shk__waitpoint *wp,
			     shk__wait_pred pred, void *arg, int64_t timeout_ns,
			     int (*check)(void *arg), int64_t slice_ns,
			     int (*gone)(void *arg));

/*
 * shk__spin_checked waits like shk__wait_checked without ever sleeping, for
 * objects whose publishers skip shk__wake (SHK_RING_SPIN): it polls pred,
 * pausing the CPU, and once the spin budget is spent it also yields the
 * CPU every 64 polls; check runs about every slice_ns.  Same returns.
 */
SHK_HIDDEN int shk__spin_checked(shk__wait_pred pred, void *arg,
				 int64_t timeout_ns, int (*check)(void *arg),
				 int64_t slice_ns);

/*
 * shk__wake_slow is the out-of-line part of shk__wake: bump seq, wake,
 * ring doorbells.
 */
SHK_HIDDEN void shk__wake_slow(shk_seg *seg, shk__waitpoint *wp, int n);

/*
 * shk__wake is called by the side that made pred true, after publishing.
 * It issues the waker's fence and makes a system call only when somebody
 * sleeps or a doorbell is armed.  n: how many sleepers to wake (INT_MAX for
 * all).  seg may be NULL when no doorbell is used (tests on raw memory).
 * Inline: it runs on every publish.
 */
static inline void
shk__wake(shk_seg *seg, shk__waitpoint *wp, int n)
{
	/* waker fence (full, platform.h): orders the caller's publishing
	 * store before the loads of waiters/armed below; pairs with the
	 * waiter's seq_cst increment of waiters in shk__wait_checked() */
	SHK_WAKER_FENCE(&wp->waiters);
	/* relaxed: ordered by the fence above */
	if (SHK_UNLIKELY(
		    atomic_load_explicit(&wp->waiters, memory_order_relaxed) |
		    atomic_load_explicit(&wp->armed, memory_order_relaxed)))
		shk__wake_slow(seg, wp, n);
}

/*
 * shk__wake_sc is shk__wake for a publisher whose publishing write was a
 * seq_cst read-modify-write (a CAS or fetch-add): that RMW and seq_cst
 * loads of waiters and armed take the place of the waker's fence.  C11
 * argument, with A our RMW, C our load of waiters, D the waiter's seq_cst
 * increment and X the seq_cst fence it issues before re-checking (the
 * doorbell's arm does the same): if X precedes A in the single total
 * order S, then D < X < A < C in S and C sees the increment; otherwise A
 * precedes X, and the re-check after X sees A.  On x86-64 the loads are
 * plain moves and the RMW is the one locked instruction: no full fence
 * per publication, where shk__wake adds one.
 */
static inline void
shk__wake_sc(shk_seg *seg, shk__waitpoint *wp, int n)
{
	/* seq_cst: see above; pairs with the waiter's seq_cst increment
	 * and fence in shk__wait_checked() and the doorbell's arm */
	if (SHK_UNLIKELY(
		    atomic_load_explicit(&wp->waiters, memory_order_seq_cst) |
		    atomic_load_explicit(&wp->armed, memory_order_seq_cst)))
		shk__wake_slow(seg, wp, n);
}

#endif /* SHK_WAIT_H */
