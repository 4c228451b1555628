// pan:
// expect-error: -DPLAIN_STEAL -DLOCK_WITHOUT_W
/*
 * mutex_steal.pml - the robust lock of src/lock.c as shk_mutex_lock,
 * _consistent and _unlock use it (src/sync_mutex.c); ALGORITHMS.md §7, §11.
 * Three processes lock once each around counter++ done in two steps; killer
 * kills up to MAXD of them at any step (alive[] is shk__stamp_alive()).
 * w = owner (1..3, NOTREC) | W | OD; an atomic{} is one atomic instruction
 * or one futex call.  acquire() is shk__lock_acquire(FOREVER): CAS 0 ->
 * mine, CAS to set W, one owner test before the first sleep, futex_wait,
 * after a timed-out slice a steal if w still names the dead owner, mine =
 * me|W after a sleep; the steal is take_over(): CAS v -> me|OD|(v&W).  The
 * unlock is shk__lock_release(): exchange -> 0 (wake one if W was set), or
 * NOTREC if OD is set (wake all); consistent is shk__lock_consistent().
 * Abstracted: spin phase, deadline, trylock, the thread lock, generations.
 * futex_wait compares and queues in one step.  A 20 ms slice expires only
 * where it matters (the owner seen or the owner in w is dead, or a wake was
 * lost to a dying waker or wakee), so a sleeper that its live owner never
 * wakes is an invalid end state.  Spin is sequentially consistent: memory
 * orders are not modelled.  Checked: at most one holder; EOWNERDEAD exactly
 * once per holder death; a plain lock never sees a half-done update;
 * ENOTRECOVERABLE only after an unlock without consistent; every live
 * process finishes.  Variants that must fail: PLAIN_STEAL (take_over loads,
 * compares, then stores: two stealers), LOCK_WITHOUT_W (a locker that slept
 * takes the lock as me: its unlock wakes no one; a lost wakeup).
 */
#define N	3	/* processes */
#define MAXD	2	/* deaths */
#define MASK	7
#define NOTREC	7
#define W	8
#define OD	16
byte w;				/* the lock word */
bool alive[MASK + 1] = 1;	/* 0 and NOTREC: no process, never dead */
bool kill[N + 1], sleeping[N + 1], woken[N + 1];
byte ndeaths, in_cs, counter, good, diedholding;
bool dirty, lostwake, gaveup;

/* In the step of the CAS that takes the lock: no other holder; got 2
 * (EOWNERDEAD) iff the last holder died holding it, else a clean counter */
#define TAKE(x, rc)	w = x; held = 1; woken[me] = 0; in_cs++; \
	assert(in_cs == 1); assert(diedholding == (rc == 2)); \
	assert(rc == 2 || !dirty && counter == good); \
	diedholding = 0; got = rc; v = 0; owner = 0; mine = 0

inline futex_wait()
{
	atomic { if :: w != v -> timedout = 0
		 :: else -> sleeping[me] = 1; woken[me] = 0 fi };
	atomic { if
		:: !sleeping[me] || woken[me] -> timedout = 0
		:: sleeping[me] && (!alive[owner] || !alive[w & MASK] ||
		   lostwake) -> timedout = 1
		fi; sleeping[me] = 0 }
}

inline acquire()	/* got: 1 taken, 2 EOWNERDEAD, 3 ENOTRECOVERABLE */
{
	atomic { checked = 0; got = 0; mine = me;
		if :: w == 0 -> TAKE(mine, 1) :: else -> v = w fi };
	do
	:: got -> break
	:: atomic { !got && v == 0 ->
		if :: w == 0 -> TAKE(mine, 1) :: else -> v = w fi }
	:: !got && (v & MASK) == NOTREC -> got = 3; v = 0
	:: atomic { !got && v != 0 && (v & MASK) != NOTREC && !(v & W) ->
		if :: w == v -> v = v | W; w = v :: else -> v = w fi }
	:: atomic { !got && (v & W) && (v & MASK) != NOTREC ->
		owner = v & MASK; assert(owner != me); stealnow = 0;
		if :: !checked -> checked = 1; stealnow = !alive[owner]
		:: else fi };
		if
		:: stealnow
		:: else -> futex_wait();
#ifndef LOCK_WITHOUT_W
			mine = me | W;
#endif
			v = w;
			stealnow = timedout && (v & MASK) == owner &&
			    !alive[owner]; timedout = 0
		fi;
		if
#ifdef PLAIN_STEAL
		:: stealnow && w == v -> atomic { TAKE(me | OD | (v & W), 2) }
		:: stealnow && w != v -> v = w
#else
		:: stealnow -> atomic { if
			:: w == v -> TAKE(me | OD | (v & W), 2)
			:: else -> v = w fi }
#endif
		:: else
		fi; stealnow = 0
	od
}

proctype P(byte me)
{
	byte v, mine, owner, got, t, i;
	bool checked, timedout, stealnow, held, towake;

	{
	if
	:: gaveup
	:: else -> acquire();
		if
		:: got == 3 -> assert(gaveup); goto done
		:: got == 1
		:: got == 2 ->
			if
			:: atomic { counter = good; dirty = 0 }; /* repair */
				atomic { w = w & ~OD }	/* consistent */
			:: skip		/* unlock without consistent */
			fi
		fi;
		if
		:: !(w & OD) -> atomic { dirty = 1; t = counter };
			counter = t + 1; atomic { good++; dirty = 0; t = 0 }
		:: else
		fi;
		atomic { v = w; assert((v & MASK) == me);
			if :: v & OD -> w = NOTREC; gaveup = 1
			:: else -> w = 0 fi;
			held = 0; in_cs--; towake = (v & (OD | W)) != 0 };
		atomic { if :: towake ->
			for (i : 1 .. N) {	/* OD: wake all */
				if :: sleeping[i] && !woken[i] -> woken[i] = 1;
					if :: !(v & OD) -> break :: else fi
				:: else fi }
			:: else fi; towake = 0; i = 0; v = 0; got = 0 }
	fi;
done:	skip
	} unless {
		kill[me] -> atomic { alive[me] = 0;
			if :: held -> in_cs--; diedholding++ :: else fi;
			if :: woken[me] || towake -> lostwake = 1 :: else fi;
			sleeping[me] = 0 }
	}
}

active proctype killer()
{
	do
	:: ndeaths < MAXD && !kill[1] -> kill[1] = 1; ndeaths++
	:: ndeaths < MAXD && !kill[2] -> kill[2] = 1; ndeaths++
	:: ndeaths < MAXD && !kill[3] -> kill[3] = 1; ndeaths++
	:: break
	od
}

init { atomic { run P(1); run P(2); run P(3) } }
