// stack_depth.pml - the per-node depth entries of the lock-free stack
// (src/stack.c: top_push(), depth_now(), walk(); docs/stack.md, Layout;
// ALGORITHMS.md §3, §11).
// pan:
// expect-error: -DSTALE_DEPTH
// expect-error: -DNO_RECHECK
//
// Modelled: CAP 3 nodes; NW 2 workers, each doing OPS pushes or pops
// (chosen at each step); one reader doing depth_now() RD times.  The
// tagged heads `top` and `free` are each one word (index, tag): a load or
// a CAS of a head is one step, as of the 64-bit word in C; each link
// next[i] and depth entry dep[i] is a word of its own (one step per load
// or store).
//   push = shk__tl_pop(free) (load free; load next[h]; CAS), then
//          top_push(): load top; load dep[top]; store next[me]; store
//          dep[me] = that + 1; CAS top (a failed CAS reloads top and redoes
//          from the dep load).
//   pop  = shk__tl_pop(top), then shk__tl_push(free) (load free; store
//          next[me]; CAS, a failed CAS reloads free).
// Worker 1 may be killed at the two places the tests kill at: after its
// depth store, before its top CAS (the push's CAS window, depth_kill), and
// after its pop CAS (stack.pop.taken); it then stops for ever, holding its
// node.  A ghost `count` changes in the same step as each successful CAS
// on top: the number of nodes on the stack.
// Checked, in every reachable state (a monitor's atomic walk): from top,
// the stacked nodes' entries count down by one to 1, the top's equals
// count, and no node is on both lists.  The reader: a depth_now() whose two
// loads of top agree returns count.  No invalid end state.
// Tags are bytes that do not wrap in these runs: the tag-wrap case of
// docs/stack.md is documented, not modelled.  Spin is sequentially
// consistent: this checks the protocol's logic, not the C11 orders.
// -DSTALE_DEPTH: a push keeps the depth it read before its first CAS after
// that CAS fails (the bug test depth_race catches): must fail.
// -DNO_RECHECK: the reader trusts its entry without loading top again: must
// fail (the reader's check can see a wrong depth).
// 0.8 million states with OPS 2 and RD 2 (about a second); OPS 3 gave 17.7
// million (about 25 s) and passed too, on 2026-11-24.

#define CAP	3
#define NW	2
#define OPS	2
#define RD	2
#define NIL	255

byte top_idx = NIL, top_tag, free_idx, free_tag;
byte nxt[CAP], dep[CAP];
byte count;		/* ghost: nodes on the stack */
bool killed;

proctype worker(byte me)
{
	byte ops = OPS, h, ht, n, d, mine;
	bool ok;

	do
	:: ops == 0 -> break
	:: ops > 0 ->
		ops--;
		if
		:: true ->	/* push */
fpop:			atomic { h = free_idx; ht = free_tag };
			if
			:: h == NIL -> goto next	/* full */
			:: else
			fi;
			n = nxt[h];
			atomic {
				ok = (free_idx == h && free_tag == ht);
				if
				:: ok -> free_idx = n; free_tag++
				:: else
				fi
			};
			if
			:: !ok -> goto fpop
			:: else
			fi;
			mine = h;
			atomic { h = top_idx; ht = top_tag };
#ifdef STALE_DEPTH
			if
			:: h == NIL -> d = 0
			:: else -> d = dep[h]
			fi;
#endif
tpush:
#ifndef STALE_DEPTH
			if
			:: h == NIL -> d = 0
			:: else -> d = dep[h]
			fi;
#endif
			nxt[mine] = h;
			dep[mine] = d + 1;
			if
			:: me == 1 && !killed -> killed = true; goto dead
			:: true
			fi;
			atomic {
				ok = (top_idx == h && top_tag == ht);
				if
				:: ok -> top_idx = mine; top_tag++; count++
				:: else -> h = top_idx; ht = top_tag
				fi
			};
			if
			:: !ok -> goto tpush
			:: else
			fi
		:: true ->	/* pop */
tpop:			atomic { h = top_idx; ht = top_tag };
			if
			:: h == NIL -> goto next	/* empty */
			:: else
			fi;
			n = nxt[h];
			atomic {
				ok = (top_idx == h && top_tag == ht);
				if
				:: ok -> top_idx = n; top_tag++; count--
				:: else
				fi
			};
			if
			:: !ok -> goto tpop
			:: else
			fi;
			mine = h;
			if
			:: me == 1 && !killed -> killed = true; goto dead
			:: true
			fi;
			atomic { h = free_idx; ht = free_tag };
fpush:			nxt[mine] = h;
			atomic {
				ok = (free_idx == h && free_tag == ht);
				if
				:: ok -> free_idx = mine; free_tag++
				:: else -> h = free_idx; ht = free_tag
				fi
			}
			if
			:: !ok -> goto fpush
			:: else
			fi
		fi;
next:		skip
	od;
dead:	skip
}

/* depth_now(): load top, load its entry, load top again; equal: exact */
proctype reader()
{
	byte r = RD, h, ht, d;

	do
	:: r == 0 -> break
	:: r > 0 ->
		r--;
		atomic { h = top_idx; ht = top_tag };
		if
		:: h == NIL -> d = 0
		:: else -> d = dep[h]
		fi;
#ifdef NO_RECHECK
		assert(d == count)
#else
		atomic {
			if
			:: top_idx == h && top_tag == ht -> assert(d == count)
			:: else
			fi
		}
#endif
	od
}

/* walk() of a stable stack, in every state after init */
proctype monitor()
{
	byte i, k;
	bool seen[CAP];

end:	do
	:: d_step {
		k = 0; seen[0] = false; seen[1] = false; seen[2] = false;
		i = top_idx;
		do
		:: i == NIL -> break
		:: else ->
			assert(i < CAP && !seen[i]);
			seen[i] = true;
			assert(dep[i] == count - k);
			k++;
			i = nxt[i]
		od;
		assert(k == count);
		i = free_idx;
		do
		:: i == NIL -> break
		:: else ->
			assert(i < CAP && !seen[i]);
			seen[i] = true;
			i = nxt[i]
		od;
		i = 0; k = 0; seen[0] = false; seen[1] = false;
		seen[2] = false
	   }
	od
}

init
{
	atomic {
		nxt[0] = 1; nxt[1] = 2; nxt[2] = NIL;
		run monitor(); run worker(1); run worker(2); run reader()
	}
}
