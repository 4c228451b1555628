// pan:
// expect-error: -DNO_CATCHUP_PUBLISH -DNO_PRODUCER_PUBLISH
/*
 * ring_batch.pml - SHK_RING_BATCH on both sides of the SPSC ring, with
 * blocking waits (src/ring.c, src/wait.c), ALGORITHMS.md §1, §11.
 * Producer: N writes, then close (flush).  Full by its cached head: reload
 * head; still full: publish tail if pending (shk_ring_reserve()), then
 * shk__wait_checked(space_wp).  after_commit() publishes when B records are
 * pending or head == pub (caught-up rule).  Consumer: N reads.  Empty by its
 * cached tail: reload tail; still empty: publish head if pending
 * (shk_ring_peek()), then shk__wait_checked(data_wp).  after_release()
 * publishes when B records are pending.  Each publish calls shk__wake();
 * the wait is shk__wait_checked()'s sleep loop; the futex compares and
 * queues in one step (as in sleeper.pml).
 * Memory model: sequentially consistent, no store buffer (sleeper.pml
 * checks the wake's fence pairing under TSO; this checks the batch rules).
 * Records are one slot each (no sizes, no PAD).  Each side picks B = 2 or
 * B = CAP+1 (never fires).  More publishes only help progress, so CAP+1 is
 * the worst case, and in C it is real: the cap/4 rule can leave cap/4 - 8
 * bytes unpublished while a blocked producer needs up to cap - 8 (PAD + a
 * max_record record), which only the publish before a wait frees.
 * Checked: the consumer gets 1..N in order (assert), and no run ends with a
 * side asleep or blocked (invalid end state).  Bug variants (must fail):
 *   NO_CATCHUP_PUBLISH   the consumer sleeps without publishing its head:
 *                        the producer sleeps on a ring that looks full
 *   NO_PRODUCER_PUBLISH  NO_FLUSH_BEFORE_WAIT (shk_ring_reserve()) plus
 *                        NO_CAUGHT_UP (after_commit()): the consumer sleeps
 *                        on a ring that looks empty
 * Either producer rule alone passes here: with one-slot records the write
 * that fills the ring finds head == pub, so the caught-up rule publishes;
 * in C a larger next record can find no room with < cap/4 bytes pending,
 * and only the publish before the wait (shk_ring_reserve()) saves it.
 * Left out: spinning, timeouts and the 50 ms peer_check slices (they only
 * re-run the predicate on the same unpublished index, so a batching
 * deadlock stays one), doorbells, crashes, counter wrap.
 */
#ifdef NO_PRODUCER_PUBLISH
#define NO_FLUSH_BEFORE_WAIT
#define NO_CAUGHT_UP
#endif
#define N	4
#define CAP	2

byte tail, head;		/* hdr->tail, hdr->head (published) */
byte ring[CAP];			/* record slots: the record number */
byte dseq, dwait; bool dasleep;	/* data_wp: consumer sleeps here */
byte sseq, swait; bool sasleep;	/* space_wp: producer sleeps here */

/* shk__wake(): if waiters != 0: seq += 1; FUTEX_WAKE(seq, 1) */
inline wake(seq, waiters, asleep)
{
	if
	:: waiters != 0 -> seq++; asleep = false
	:: else -> skip
	fi
}

/* shk__wait_checked() sleep loop; the predicate reloads oth = idx */
inline wait_until(seq, waiters, asleep, idx, PRED)
{
	do
	:: waiters++; s = seq; oth = idx;
		if
		:: PRED -> waiters--; break
		:: else -> skip
		fi;
		atomic { if :: seq == s -> asleep = true :: else -> skip fi };
		(!asleep);	/* until FUTEX_WAKE */
		waiters--; oth = idx;
		if
		:: PRED -> break
		:: else -> skip
		fi
	od
}

inline publish_tail() { tail = pos; pub = pos; wake(dseq, dwait, dasleep) }
inline publish_head() { head = pos; pub = pos; wake(sseq, swait, sasleep) }
inline pick_batch() { if :: B = 2 :: B = CAP + 1 fi }

active proctype producer()
{
	byte pos, pub, oth, B, s, i;

	pick_batch();
	for (i : 1 .. N) {
		if
		:: pos - oth >= CAP ->
			oth = head;			/* reload_head() */
			if
			:: pos - oth >= CAP ->
#ifndef NO_FLUSH_BEFORE_WAIT
				if :: pos != pub -> publish_tail() :: else fi;
#endif
				wait_until(sseq, swait, sasleep, head,
					   pos - oth < CAP)
			:: else
			fi
		:: else
		fi;
		ring[pos % CAP] = i; pos++;		/* commit */
		if					/* after_commit() */
		:: pos - pub >= B -> publish_tail()
#ifndef NO_CAUGHT_UP
		:: head == pub -> publish_tail()
#endif
		:: else
		fi
	}
	if :: pos != pub -> publish_tail() :: else fi	/* close */
}

active proctype consumer()
{
	byte pos, pub, oth, B, s;

	pick_batch();
	do
	:: pos == N -> break
	:: else ->
		if
		:: oth == pos ->
			oth = tail;			/* reload_tail() */
			if
			:: oth == pos ->
#ifndef NO_CATCHUP_PUBLISH
				if :: pos != pub -> publish_head() :: else fi;
#endif
				wait_until(dseq, dwait, dasleep, tail,
					   oth != pos)
			:: else
			fi
		:: else
		fi;
		assert(ring[pos % CAP] == pos + 1);	/* in order */
		pos++;					/* release */
		if					/* after_release() */
		:: pos - pub >= B -> publish_head()
		:: else
		fi
	od;
	if :: pos != pub -> publish_head() :: else fi	/* close */
}
