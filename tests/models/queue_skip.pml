// queue_skip.pml - claim/publish/skip of a dead producer's cell in the
// bounded MPMC queue (src/queue.c, ALGORITHMS.md §2, §11).
// pan:
// expect-error: -DNO_REPAIR
// expect-error: -DOLD_I3
// expect-error: -DCONSUMER_REDELIVER
// expect-error: -DNO_KEPT
// expect-error: -DDROP_READING
//
// Modelled: cap 2; producer 1 may crash, producer 2 never does; each
// pushes 1 or 2 distinct values (chosen at start); NC = 2 consumers.  A
// cell word is (cpos, cst, cown); a load or CAS of it is one step, as of
// the 64-bit word in C.  producer = push_try(): load enqueue_pos,
// load_cell(); d == 0 && FREE: CAS to (WRITING,p,me), advance(), write, CAS
// to (FULL,p); d >= 0: advance(); d < 0: full.  consumer = pop_try(): d > 0
// or READING: advance(); FULL: CAS to (READING,p,me), advance(), copy, CAS
// to (FREE,p+cap); SKIP: CAS to (FREE,p+cap), advance(); else empty.
// stuck(): a party blocked by (WRITING,p,o) with dead[o] (owner_alive() /
// shk__stamp_alive() false) CASes it to (SKIP,p); the timer T is abstracted.
// A crash stops producer 1 forever at the end of its claim, advance() or
// write step (queue.push.claimed, .advanced, .written), and consumer 3 at
// the end of its claim or advance() step (queue.pop.claimed, .copied: the
// copy is local); stopping later only adds steps in which others wait or
// help advance().  Consumer 3 may instead take the keeper's steps
// (shk__queue_pop_keep): CAS its claim to KEPT, then record (a ghost
// flag), then free; it may crash after the KEPT CAS or after the record.
// stuck() publishes a dead consumer's (READING,p,o) again as (FULL,p+cap)
// when a producer one lap later does it, or a consumer that reads
// enq = p + cap, and frees a dead (KEPT,p,o) as (FREE,p+cap), as anyone
// blocked by it does.  SHK_EAGAIN + sleep =
// block until the position or cell word changes or the owner dies;
// consumers end once all producers stopped and all published values were
// delivered, still in the dead consumer's claim, or left to its record.  Abstracted away: false
// alive/dead (so the publish and release CASes never fail), returning
// ECORRUPT, RETRY_MAX, `lost`, wakeups, wrap.
// Spin is sequentially consistent: this checks the protocol's logic, not
// the C11 memory orders.  Checked: nothing delivered twice; a consumer
// copies only a published value still in its cell; per-producer FIFO in
// claim order; a cell found behind the position is one lap behind, not
// FREE for a push and READING for a pop, so the ECORRUPT tests of
// push_try() and pop_try() for a forged position never fire; no
// invalid end state (nobody wedged); invariant I3 of queue.c after every
// move of a position, deq <= enq + 1 and enq <= deq + cap + 1 (the bounds
// shk__kind_check_queue() accepts at open); at the end the live
// producer's values were all delivered, the dead consumer's at most once
// (not when it died KEPT after its record), the dead producer lost at most
// the one it had claimed, and only dead claims were repaired.
// -DNO_REPAIR: stuck() never repairs (Vyukov's queue, ZeroIPC's wedge).
// -DOLD_I3: the bound the open-time check once used, enq <= deq + cap,
// which a consumer killed between its claim and advance() breaks.

#define CAP	2
#define N	2	/* values per producer, at most */
#define NC	2	/* consumers */
mtype = { FREE, WRITING, FULL, READING, SKIP, KEPT };	/* cell states */

byte enq, deq;			/* enqueue_pos, dequeue_pos */
byte cpos[CAP], cown[CAP], cdata[CAP];
mtype cst[CAP] = FREE;
bool dead[3 + NC];	/* owner stamps: producers 1, 2; consumers 3.. */
/* ghosts: value published into each cell; value v = (me - 1) * N + i
 * published, times delivered; next index to claim and count to push per
 * producer; value the dead producer had claimed; counts */
byte cpub[CAP], ndel[2 * N], nextc[3], npush[3], lost = 255;
bool pubd[2 * N];
byte npub, ndeliv, nskip, pfin;
/* the value dead consumer 3 held, how many it held in a cell still
 * claimed (0, 1), repairs of its claim: KEPT dropped (nfreed; the keeper's
 * record owns the value), READING delivered again (nredel); whether it
 * used the keeper steps, and whether its value was kept */
byte clost = 255, dheld, nfreed, nredel, dgone;
bool keeper, ckept, dkept;	/* dkept: it died with its claim KEPT */

#define WORD_IS(c, p, s, o)	(cpos[c] == p && cst[c] == s && cown[c] == o)
#ifdef NO_REPAIR
#define CANREP(s, o, prod)	false
#else
/* a dead consumer's READING claim is delivered again, in place at the
 * tail: by a producer (one at enqueue_pos = p + cap) or a consumer that
 * reads enq = p + cap.  -DCONSUMER_REDELIVER: a consumer does it whatever
 * enq is (Spin finds deq = enq + 2, outside I3) */
#ifdef CONSUMER_REDELIVER
#define REDEL(prod)		true
#else
#define REDEL(prod)		(prod || enq == wp + CAP)
#endif
#define CANREP(s, o, prod)	((s == WRITING || (s == READING && REDEL(prod)) || \
				  s == KEPT) && dead[o])
#endif
#define DONE			(pfin == 2 && ndeliv + dheld + dgone == npub)
/* -DDROP_READING: the repair before 2026-11-25 evening (the element lost;
 * Spin finds a consumer blocked for a value never delivered again) */
#ifdef DROP_READING
#define READING_REPAIR		cst[c] = FREE; nfreed++; dheld = 0; dgone = 1
#else
#define READING_REPAIR		cst[c] = FULL; nredel++; dheld = 0
#endif
/* -DNO_KEPT: the keeper records with its claim still READING (Spin finds
 * the value recorded and delivered again) */
#ifdef NO_KEPT
#define KST			READING
#else
#define KST			KEPT
#endif
#ifdef OLD_I3
#define I3			(deq <= enq + 1 && enq <= deq + CAP)
#else
#define I3			(deq <= enq + 1 && enq <= deq + CAP + 1)
#endif
/* RESET clears dead locals inside the step before a retry (fewer states) */
#define CLR		wp = 0; ws = 0; wo = 0; d = 0
#define RESET		p = 0; c = 0; CLR
#define ADVANCE(x, p)	if :: x == p -> x = p + 1; assert(I3) :: else fi
/* stuck(): skip a dead producer's claim, free a dead consumer's, or sleep
 * until the try's inputs change */
#define STUCK(x, EXIT, prod) if \
	:: CANREP(ws, wo, prod) -> atomic { if :: WORD_IS(c, wp, ws, wo) -> \
		if :: ws == WRITING -> cst[c] = SKIP; nskip++ \
		:: ws == READING -> cpos[c] = wp + CAP; READING_REPAIR \
		:: else -> cpos[c] = wp + CAP; cst[c] = FREE; nfreed++; \
			dheld = 0; dgone = 1 fi; \
		cown[c] = 0 :: else fi; RESET; EXIT } \
	:: else -> atomic { (x != p || !WORD_IS(c, wp, ws, wo) || \
			     CANREP(ws, wo, prod) || DONE); RESET; EXIT } fi
#define LOAD_CELL(x) p = x; atomic { c = p % CAP; wp = cpos[c]; \
	ws = cst[c]; wo = cown[c]; d = wp - p }
#define CRASH if :: may_crash -> dead[me] = true; lost = v; pfin++; \
	goto out :: true fi
#define CCRASH if :: may_crash -> dead[me] = true; clost = v; dheld = 1; \
	goto done :: true fi
/* the redelivered value is claimed again after later ones: no order test */
#define AGAIN(v)	(v == clost && nredel > 0)

proctype producer(byte me; bool may_crash)
{
	byte i, p, c, wp, wo, v = (me - 1) * N;
	mtype ws; short d;

retry:	LOAD_CELL(enq);
	if
	:: d == 0 && ws == FREE ->
		atomic { if
		:: WORD_IS(c, wp, ws, wo) -> cst[c] = WRITING; cown[c] = me; CLR
		:: else -> RESET; goto retry fi; CRASH }	/* .claimed */
		atomic { ADVANCE(enq, p); CRASH }		/* .advanced */
		atomic { cdata[c] = v; CRASH }			/* .written */
		atomic { if
		:: WORD_IS(c, p, WRITING, me) -> cst[c] = FULL; cown[c] = 0;
			cpub[c] = v; pubd[v] = true; npub++; i++; v++; RESET;
			if :: i == npush[me] -> pfin++; goto out
			:: else -> goto retry fi
		:: else -> RESET; goto retry fi }	/* skipped as dead */
	:: d >= 0 && !(d == 0 && ws == FREE) ->
		atomic { ADVANCE(enq, p); RESET; goto retry }
	:: d < 0 ->
		/* push_try()'s ECORRUPT test never fires in a real run */
		assert(d == -CAP && ws != FREE);
		STUCK(enq, goto retry, true)
	fi;
out:	skip
}

proctype consumer(byte me; bool may_crash)
{
	byte p, c, wp, wo, v;
	mtype ws; short d;

top:	LOAD_CELL(deq);
	if
	:: d > 0 || (d == 0 && (ws == READING || ws == KEPT)) ->
		atomic { ADVANCE(deq, p); RESET; goto top }
	:: d == 0 && ws == FULL ->
		atomic { if
		:: WORD_IS(c, wp, ws, wo) -> cst[c] = READING; cown[c] = me;
			CLR;
			v = cdata[c];		/* ghost peek: claim order */
			if :: AGAIN(v) -> skip
			:: else -> assert(v % N == nextc[v / N + 1]);
				nextc[v / N + 1]++ fi
		:: else -> RESET; goto top fi; CCRASH }	/* .claimed */
		atomic { ADVANCE(deq, p); CCRASH };	/* .copied */
		if
		:: may_crash && keeper ->
			/* shk__queue_pop_keep: the cell KEPT, then the
			 * keeper's record; a crash after it leaves the value
			 * to the record (the held table), not the queue */
			atomic { v = cdata[c];
				assert(WORD_IS(c, p, READING, me));
				cst[c] = KST; dkept = true;
				CCRASH }		/* .kept, no record */
			atomic { ckept = true; CCRASH }	/* recorded */
			atomic {
				assert(pubd[v] && v == cpub[c] && ndel[v] == 0);
				assert(WORD_IS(c, p, KST, me));
				cpos[c] = p + CAP; cst[c] = FREE; cown[c] = 0;
				ckept = false; dkept = false;
				ndel[v]++; ndeliv++; RESET; v = 0; goto top
			}
		:: else ->
			atomic {
				v = cdata[c];		/* the memcpy */
				assert(pubd[v] && v == cpub[c] && ndel[v] == 0);
				assert(WORD_IS(c, p, READING, me));
				cpos[c] = p + CAP; cst[c] = FREE; cown[c] = 0;
				ndel[v]++; ndeliv++; RESET; v = 0; goto top
			}
		fi
	:: d == 0 && ws == SKIP ->
		atomic { if :: WORD_IS(c, wp, ws, wo) -> cpos[c] = p + CAP;
			cst[c] = FREE :: else fi; CLR }
		atomic { ADVANCE(deq, p); RESET; goto top }
	:: d < 0 || (d == 0 && (ws == WRITING || ws == FREE)) ->
		/* pop_try()'s ECORRUPT test never fires in a real run */
		assert(d == 0 || (d == -CAP && (ws == READING || ws == KEPT)));
		STUCK(deq, if :: DONE -> goto done :: else -> goto top fi, false)
	fi;
done:	skip
}

init
{
	byte v;

	atomic {
		if :: npush[1] = 1 :: npush[1] = 2 fi;
		if :: npush[2] = 1 :: npush[2] = 2 fi;
		cpos[1] = 1;
		if :: keeper = true :: keeper = false fi;
		run producer(1, true); run producer(2, false);
		for (v : 0 .. NC - 1) { run consumer(3 + v, v == 0) }
	}
	_nr_pr == 1;
	assert(nskip <= dead[1] && nfreed + nredel <= dead[3]);
	/* only a KEPT claim is dropped; a READING one is delivered again */
	assert(!dgone || dkept);
	for (v : 0 .. 2 * N - 1) {
		/* lost or never pushed, else delivered once */
		if :: (v < N && dead[1] && v >= lost) ||
		      v % N >= npush[v / N + 1] ->
			assert(ndel[v] == 0)
		:: v == clost -> /* delivered again, once, unless kept
			* (the record owns it) or still in the dead claim */
			assert(ndel[v] <= 1 && (ndel[v] == 0 || !ckept))
		:: else -> assert(ndel[v] == 1) fi
	}
}
