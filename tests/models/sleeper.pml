// pan:
// expect-error: -DNO_WAKER_FENCE -DNO_WAITER_RMW
// also-pass: -DRMW_PUBLISH
/*
 * sleeper.pml - the spin->futex sleeper protocol (src/wait.h, src/wait.c)
 * as the SPSC ring's publish uses it (src/ring.c), ALGORITHMS.md §6, §11.
 *
 * Modelled: one producer publishing N items one at a time, each by
 * publish_tail() (release store of tail) then shk__wake(): SHK_WAKER_FENCE,
 * load waiters, and only if nonzero shk__wake_slow(): seq += 1 (RMW), load
 * waiters again, FUTEX_WAKE(seq, 1).  One consumer: shk_ring_peek() ->
 * reload_tail(); when empty, shk__wait_checked(data_wp, data_pred): waiters
 * += 1 (seq_cst RMW), s = seq, data_pred() (reload tail), futex_wait(seq, s),
 * waiters -= 1, data_pred() again.  The futex: FUTEX_WAIT compares the word
 * and queues the sleeper in one step (the kernel's hash-bucket lock), so it
 * returns at once when seq != s; FUTEX_WAKE releases a queued sleeper.
 *
 * Store buffers: Spin is sequentially consistent, so each process's plain
 * stores go to a FIFO store buffer first and reach memory in a later step
 * of process memory(); loads read memory.  The producer's buffer holds its
 * tail stores: tail (memory) < ptail (its latest store) means the stores
 * tail+1..ptail are still buffered.  A full fence or a locked RMW waits
 * until the buffer is empty (x86-TSO: SHK_WAKER_FENCE is a locked add, the
 * seq_cst fetch_add a lock xadd).  The consumer makes no plain stores to
 * these words (its waiters updates are RMWs), so its buffer, cwait, is
 * used only by the NO_WAITER_RMW variant.
 *
 * Checked: no invalid end state, i.e. the consumer never stays asleep in
 * futex_wait once the producer is done: it takes all N items and ends.
 * Variant that must pass too:
 *   RMW_PUBLISH     the publication is a locked RMW and no fence follows,
 *                   as in shk__wake_sc() (the stack's push CAS): the RMW
 *                   itself waits until the buffer is empty and writes
 *                   memory (x86-TSO; wait.h gives the C11 argument)
 * Bug variants (tests/models.sh expects Spin to report an error):
 *   NO_WAKER_FENCE  the producer skips SHK_WAKER_FENCE: its tail store can
 *                   sit in its buffer while it reads waiters == 0
 *   NO_WAITER_RMW   the consumer's increment of waiters is a plain store,
 *                   buffered while it re-reads tail
 *
 * Abstracted away: record contents and the ring's head/space side (capacity
 * >= N, the producer never waits); SHK_RING_BATCH (every commit publishes);
 * the spin phase (spinning only re-reads tail, like the first check); the
 * armed/doorbell path; timeouts, EINTR and spurious futex returns (they only
 * add re-checks, and with them a lost wake-up would end at the timeout
 * instead of hanging, which would hide it; the ring's consumer really
 * wakes every PEER_SLICE_NS for its dead-peer check); crashes.  Counters
 * are small (no wrap).
 */
#define N 3

byte tail;	/* hdr->tail in memory, in items */
byte ptail;	/* producer's latest tail store (tail < ptail: buffered) */
byte waiters;	/* data_wp.waiters in memory */
byte cwait;	/* consumer's buffered waiters increments (NO_WAITER_RMW) */
byte seq;	/* data_wp.seq, the futex word */
bool asleep;	/* the consumer is queued on the futex */

/* The store buffers drain in FIFO order, one store per step, at any time. */
active proctype memory()
{
end:	do
	:: atomic { tail < ptail -> tail++ }
	:: atomic { cwait > 0 -> waiters++; cwait-- }
	od
}

active proctype producer()
{
	byte i;

	for (i : 1 .. N) {
#ifdef RMW_PUBLISH
		/* a seq_cst CAS (lock cmpxchg): waits for an empty buffer,
		 * writes memory; shk__wake_sc() adds no fence */
		atomic { tail == ptail -> ptail = i; tail = i };
#else
		ptail = i;		/* publish_tail(): release store */
#ifndef NO_WAKER_FENCE
		(tail == ptail);	/* SHK_WAKER_FENCE: buffer drained */
#endif
#endif
		if			/* shk__wake(): relaxed load */
		:: waiters != 0 ->
			/* shk__wake_slow(): seq += 1 (locked RMW) */
			atomic { tail == ptail -> seq++ };
			if
			:: waiters != 0 ->	/* FUTEX_WAKE(seq, 1) */
				atomic {
					if
					:: asleep -> asleep = false
					:: else -> skip	/* none queued */
					fi
				}
			:: else -> skip
			fi
		:: else -> skip
		fi
	}
}

/* waiters -= 1: a (relaxed) RMW, so it waits for the consumer's buffer */
inline waiters_dec()
{
	atomic { cwait == 0 -> waiters-- }
}

active proctype consumer()
{
	byte pos, t, s;

	do
	:: pos == N -> break
	:: else ->
		t = tail;		/* peek: reload_tail() */
		if
		:: t != pos -> skip
		:: else ->		/* shk__wait_checked(data_pred) */
			do
			::
#ifdef NO_WAITER_RMW
				cwait++;	/* plain store: buffered */
#else
				atomic { cwait == 0 -> waiters++ }
#endif
				s = seq;	/* acquire load */
				t = tail;	/* data_pred() */
				if
				:: t != pos -> waiters_dec(); break
				:: else -> skip
				fi;
				atomic {	/* futex_wait(seq, s) */
					if
					:: seq == s -> asleep = true
					:: else -> skip	/* EAGAIN */
					fi
				};
				(!asleep);	/* until FUTEX_WAKE */
				waiters_dec();
				t = tail;	/* data_pred() */
				if
				:: t != pos -> break
				:: else -> skip
				fi
			od
		fi;
		pos = t			/* consume the records below t */
	od;
	assert(pos == N && tail == N && !asleep)
}
