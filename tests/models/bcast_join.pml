// bcast_join.pml - reliable-mode late join of a bcast reader (src/bcast.c,
// ALGORITHMS.md §5, §11).
// pan:
// expect-error: -DOLD_SCAN -DNO_WFENCE -DNO_JFENCE
//
// Modelled: the writer of shk_bcast_write() with its cached minimum (it
// calls scan() only when (pos - min_cache) + need > cap, and spins on
// scan() while the record does not fit); one reader slot whose cursor
// holds whatever an earlier reader left (any position up to the tail);
// a joiner doing claim_slot() (CAS to ACTIVE), reader_attach()'s seq_cst
// fence and tail load, publish_cursor() of its start, then the reads of
// shk_bcast_read().  Spin is sequentially consistent, so the stores in the
// SB pairs (writer: tail, fence, slot loads in scan(); joiner: slot CAS,
// fence, tail load) go to store buffers that a flusher drains at any time
// and only the fences drain on purpose.  The writer's buffer keeps only
// its newest tail store (tail is its only buffered word and a flush may
// fall between any two stores); the CAS's store is buffered too (weaker
// than x86's locked CAS).  Abstracted: records are 1 position (need = 1,
// no PAD); counters are small and never wrap; record bytes are a ghost
// wr[] (position last written to each cell, set when the write issues);
// pub_gen, tail_intent, lossy mode, sleeping, dead readers and reap_dead()
// are left out, and so is a cursor ahead of the writer (garbage).
// -DOLD_SCAN: scan() ignores a cursor more than cap behind (the rule before
// 2026-11-23).  -DNO_WFENCE / -DNO_JFENCE: drop one fence of the SB pair.

#ifndef C		/* spin -DC=3 -DP0=5 -DPEND=12 checks a bigger one */
#define C	2	/* cap, in records */
#define P0	3	/* tail when the model starts */
#define PEND	8	/* the writer stops here */
#endif
#define NONE	255

byte tail = P0;		/* memory */
byte wpend = NONE;	/* writer's store buffer: a tail store */
bool slot_active;	/* slot word == ACTIVE, in memory */
bool jslot_pend;	/* joiner's store buffer: its CAS's store */
byte cursor;		/* slot cursor, in memory: stale at first */
byte jcur_pend = NONE;	/* joiner's store buffer: a cursor store */
byte wr[C];		/* ghost: position last written to each cell */
bool jin;		/* ghost: the joiner has read its start */
byte jc;		/* ghost: the joiner's next position */

proctype writer(byte mc)
{
	byte pos = P0, min, c;

	do
	:: pos == PEND -> break
	:: pos < PEND ->
		if
		:: (pos - mc) + 1 > C ->
			do
			:: true ->
				/* scan(): seq_cst fence, then the slots */
#ifndef NO_WFENCE
				atomic {
					if
					:: wpend != NONE ->
						tail = wpend; wpend = NONE
					:: else
					fi
				}
#endif
				min = pos;
				if
				:: slot_active ->
					c = cursor;
					if
					:: pos - c > C ->
#ifdef OLD_SCAN
						c = pos	/* ignored */
#else
						c = pos - C /* hold */
#endif
					:: else
					fi;
					if
					:: pos - c > pos - min -> min = c
					:: else
					fi
				:: else
				fi;
				mc = min;
				if
				:: (pos - min) + 1 <= C -> break
				:: else	/* spin: the record does not fit */
				fi
			od
		:: else
		fi;
		/* no lap of the joiner's unread positions */
		assert(!jin || pos - C < jc);
		wr[pos % C] = pos;
		wpend = pos + 1;	/* store tail (release) */
		pos++
	od
}

proctype joiner()
{
	byte c;

	jslot_pend = true;	/* claim_slot(): CAS FREE -> ACTIVE */
#ifndef NO_JFENCE
	atomic {	/* the seq_cst fence drains our buffer */
		if
		:: jslot_pend -> slot_active = true; jslot_pend = false
		:: else
		fi
	}
#endif
	atomic { c = tail; jin = true; jc = c }
	jcur_pend = c;		/* publish_cursor(): its start */
	do
	:: c == PEND -> break
	:: c < PEND && tail != c ->	/* acquire load of tail */
		skip;			/* copying record c */
		assert(wr[c % C] == c);	/* not overwritten meanwhile */
		atomic { c++; jc = c }
		jcur_pend = c		/* publish_cursor() (release) */
	od
}

/* The memory system: drains a store buffer entry at any time, in order. */
proctype flusher()
{
end:	do
	:: atomic { wpend != NONE -> tail = wpend; wpend = NONE }
	:: atomic { jslot_pend -> slot_active = true; jslot_pend = false }
	:: atomic { jcur_pend != NONE && !jslot_pend ->
		cursor = jcur_pend; jcur_pend = NONE }
	od
}

init
{
	byte i, mc;

	atomic {
		/* the earlier reader's last cursor: at most the tail */
		select(i : 0 .. P0); cursor = i;
		/* min_cache from an earlier scan, within cap of pos */
		select(mc : P0 - C .. P0);
		for (i : P0 - C .. P0 - 1) { wr[i % C] = i }
		run writer(mc);
		run joiner();
		run flusher()
	}
}
