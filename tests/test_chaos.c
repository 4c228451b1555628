/* test_chaos.c - every kind of object in one segment, used by worker
 * processes that the test SIGKILLs at random and replaces, while a checker
 * process opens the objects and runs shk_seg_check all along.  A state
 * that a kill leaves behind is legal: no open, check or operation may
 * read it as damage (SHK_ECORRUPT) or fail in a way its contract does not
 * name.  (The queue's open-time check took such a state for damage until
 * 2026-11-24; that was seen once, under valgrind, in test_queue
 * random_kills.) */
#include "harness.h"

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#if defined(SHK__TSAN) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

enum role {
	R_QUEUE,
	R_STACK,
	R_POOL,
	R_MAP,
	R_HEAP,
	R_MUTEX,
	R_RING_P,
	R_RING_C,
	R_BCAST_W,
	R_BCAST_R,
	R_N
};
static const char *role_name[R_N] = { "queue",   "stack",  "pool",   "map",
				      "heap",    "mutex",  "ring-p", "ring-c",
				      "bcast-w", "bcast-r" };
/* workers per role (the ring and the bcast writer have one owner) */
static const int role_count[R_N] = { 2, 2, 2, 2, 2, 2, 1, 1, 1, 2 };
#define NWORKERS 17
/* Crash points (SHK_CRASH, platform.h) on each role's paths: half of the
 * workers are spawned with one of them armed at a random hit, so kills
 * also land inside the narrow windows that random timing rarely hits. */
static const char *const role_points[R_N][16] = {
	[R_QUEUE] = { "queue.push.claimed", "queue.push.advanced",
		      "queue.push.written", "queue.pop.claimed",
		      "queue.pop.copied", "queue.repair.done" },
	[R_STACK] = { "stack.push.taken", "stack.push.before_wake",
		      "stack.pop.taken", "stack.pop.before_wake" },
	[R_POOL] = { "pool.alloc.popped", "pool.free.marked" },
	[R_MAP] = { "map.put.locked", "map.put.after_claim",
		    "map.put.before_publish", "map.put.after_publish",
		    "map.delete.after_tomb", "map.repair.begin" },
	[R_HEAP] = { "heap.alloc.carved", "heap.alloc.popped",
		     "heap.free.large", "heap.free.marked", "heap.lc.put",
		     "heap.lc.fill", "heap.mag.cached", "heap.mag.refill",
		     "heap.mag.spill", "heap.merge.grown", "heap.run.formatted",
		     "heap.split.front", "heap.split.tail", "heap.lc.drain",
		     "heap.mag.drain", "heap.mag.carved" },
	[R_RING_P] = { "ring.reserve", "ring.commit",
		       "ring.commit.before_publish" },
	[R_RING_C] = { "ring.peek", "ring.release",
		       "ring.release.before_publish" },
	[R_BCAST_W] = { "bcast.write.before_publish" },
	[R_BCAST_R] = { "bcast.read.before_publish" },
};
#define NCHECKS 8 /* what the checker does, see checker() */
/* our own findings, beside shmkit's codes (all > -100000) */
#define BAD_SUM (-100001)  /* an element or record with a bad checksum */
#define BAD_PAIR (-100002) /* the mutex-protected pair disagreed */

/* Shared between the test and its children (anonymous mapping). */
struct shared {
	_Atomic int stop_checker;
	_Atomic uint64_t ops[R_N];        /* operations done, per role */
	_Atomic uint64_t checks[NCHECKS]; /* checker passes, per check */
	_Atomic int bad_rc;               /* first unexpected code */
	_Atomic int bad_where;            /* role, or 100 + check */
	_Atomic uint64_t counter[2];      /* mutex-protected pair */
};

static const char *seg_name;
static struct shared *sh;

static void
bad(int where, int rc)
{
	int zero = 0;

	if (atomic_compare_exchange_strong(&sh->bad_rc, &zero, rc))
		atomic_store(&sh->bad_where, where);
}

/* rc must be 0 or one of the codes in the list (0-terminated). */
static int
expect(int where, int rc, ...)
{
	va_list ap;
	int ok = rc >= 0, c;

	va_start(ap, rc);
	while (!ok && (c = va_arg(ap, int)) != 0)
		ok = rc == c;
	va_end(ap);
	if (!ok)
		bad(where, rc);
	return rc;
}

static uint64_t
sum16(const uint8_t *p)
{
	uint64_t a = 0;

	for (int i = 0; i < 8; i++)
		a = a * 31 + p[i];
	return a;
}

static void
worker(enum role r, unsigned seed)
{
	shk_seg *seg;
	uint8_t e[64];
	uint64_t held[8] = { 0 };
	int nheld = 0, rc;
	void *obj = NULL;
	unsigned phase = seed >> 7;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	rc = shk_seg_open(seg_name, 0, NULL, &seg);
	if (rc) {
		bad(r, rc);
		_exit(1);
	}
	switch (r) {
	case R_QUEUE:
		rc = shk_queue_open(seg, "q", 0, NULL, (shk_queue **)&obj);
		break;
	case R_STACK:
		rc = shk_stack_open(seg, "s", 0, NULL, (shk_stack **)&obj);
		break;
	case R_POOL:
		rc = shk_pool_open(seg, "p", 0, NULL, (shk_pool **)&obj);
		break;
	case R_MAP:
		rc = shk_map_open(seg, "m", 0, NULL, (shk_map **)&obj);
		break;
	case R_MUTEX:
		rc = shk_mutex_open(seg, "mu", 0, NULL, (shk_mutex **)&obj);
		break;
	case R_RING_P:
	case R_RING_C:
		/* the role's last owner was killed and reaped: taken over */
		rc = shk_ring_open(seg, "r", 0,
				   r == R_RING_P ? SHK_RING_PRODUCER
						 : SHK_RING_CONSUMER,
				   NULL, (shk_ring **)&obj);
		break;
	case R_BCAST_W:
	case R_BCAST_R: {
		shk_bcast_opts o = SHK_BCAST_OPTS_INIT;

		o.reader_timeout_ns = 5000000;
		rc = shk_bcast_open(seg, "b", 0,
				    r == R_BCAST_W ? SHK_BCAST_WRITER
						   : SHK_BCAST_READER,
				    &o, (shk_bcast **)&obj);
		break;
	}
	default:
		rc = 0;
	}
	if (rc) {
		bad(r, rc);
		_exit(1);
	}
	for (;;) {
		unsigned x = (unsigned)rand_r(&seed);
		uint64_t v = x;
		/* queue and stack workers push for 20 ms, then pop for 20 ms
		 * (each in its own phase), so that a structure stays full or
		 * empty for longer than the 10 ms after which a dead claim
		 * is repaired */
		int pushing = ((test_now_ns() / 20000000) + phase) & 1;

		memset(e, 0, sizeof(e));
		memcpy(e, &v, 8);
		v = sum16(e);
		memcpy(e + 8, &v, 8);
		switch (r) {
		case R_QUEUE:
			if (pushing)
				expect(r, shk_queue_push(obj, e, 1000000),
				       SHK_ETIMEDOUT, 0);
			else if (!expect(r, shk_queue_pop(obj, e, 1000000),
					 SHK_ETIMEDOUT, 0) &&
				 sum16(e) != *(uint64_t *)(e + 8))
				bad(r, BAD_SUM);
			break;
		case R_STACK:
			if (pushing)
				expect(r, shk_stack_push(obj, e, 1000000),
				       SHK_ETIMEDOUT, 0);
			else if (!expect(r, shk_stack_pop(obj, e, 1000000),
					 SHK_ETIMEDOUT, 0) &&
				 sum16(e) != *(uint64_t *)(e + 8))
				bad(r, BAD_SUM);
			break;
		case R_POOL:
			/* blocks held by killed workers are gone: ENOMEM */
			if (nheld < 8 && (x & 1)) {
				if (!expect(r,
					    shk_pool_alloc(obj, &held[nheld],
							   NULL),
					    SHK_ENOMEM, 0))
					nheld++;
			} else if (nheld) {
				expect(r, shk_pool_free(obj, held[--nheld]), 0);
			}
			break;
		case R_HEAP:
			if (nheld < 8 && (x & 1)) {
				/* small, and large beyond the small classes */
				size_t len = (x >> 1) % 4
						     ? 16 + (x >> 3) % 2000
						     : 20000 + (x >> 3) % 70000;

				if (!expect(r,
					    shk_alloc(seg, len, &held[nheld]),
					    SHK_ENOMEM, 0))
					memset(shk_ptr(seg, held[nheld++]),
					       0x5a, 16);
			} else if (nheld) {
				expect(r, shk_free(seg, held[--nheld]), 0);
			}
			break;
		case R_MAP: {
			uint64_t key =
				x % 48; /* more keys than slots: often full */
			uint8_t val[16];

			if (x & 2) {
				memcpy(val, e, 16);
				expect(r, shk_map_put(obj, &key, val),
				       SHK_EAGAIN, SHK_ENOSPC, 0);
			} else if (x & 4) {
				expect(r, shk_map_delete(obj, &key), SHK_ENOENT,
				       SHK_EAGAIN, 0);
			} else if (!expect(r, shk_map_get(obj, &key, val),
					   SHK_ENOENT, SHK_EAGAIN, 0) &&
				   sum16(val) != *(uint64_t *)(val + 8)) {
				bad(r, BAD_SUM); /* a torn value */
			}
			break;
		}
		case R_MUTEX:
			rc = expect(r, shk_mutex_lock(obj, 50000000),
				    SHK_EOWNERDEAD, SHK_ETIMEDOUT, 0);
			if (rc == SHK_EOWNERDEAD) {
				/* the holder died between the two stores */
				atomic_store(&sh->counter[1],
					     atomic_load(&sh->counter[0]));
				expect(r, shk_mutex_consistent(obj), 0);
				rc = 0;
			}
			if (rc == 0) {
				if (atomic_load(&sh->counter[0]) !=
				    atomic_load(&sh->counter[1]))
					bad(r, BAD_PAIR);
				atomic_fetch_add(&sh->counter[0], 1);
				atomic_fetch_add(&sh->counter[1], 1);
				expect(r, shk_mutex_unlock(obj), 0);
			}
			break;
		case R_RING_P:
			expect(r, shk_ring_write(obj, e, 16 + x % 48, 1000000),
			       SHK_ETIMEDOUT, SHK_EPEERDEAD, 0);
			break;
		case R_RING_C:
			rc = expect(r,
				    shk_ring_read(obj, e, sizeof(e), 1000000),
				    SHK_ETIMEDOUT, SHK_EPEERDEAD, 0);
			if (rc >= 16 && sum16(e) != *(uint64_t *)(e + 8))
				bad(r, BAD_SUM);
			break;
		case R_BCAST_W:
			expect(r, shk_bcast_write(obj, e, 16, 1000000),
			       SHK_ETIMEDOUT, 0);
			break;
		case R_BCAST_R:
			rc = expect(r,
				    shk_bcast_read(obj, e, sizeof(e), NULL,
						   1000000),
				    SHK_ETIMEDOUT, SHK_EPEERDEAD, SHK_EAGAIN,
				    0);
			if (rc == 16 && sum16(e) != *(uint64_t *)(e + 8))
				bad(r, BAD_SUM);
			break;
		default:
			break;
		}
		atomic_fetch_add_explicit(&sh->ops[r], 1, memory_order_relaxed);
	}
}

/* Opens every object anew and checks the whole segment, until told to
 * stop; every result must be a success. */
static void
checker(void)
{
	shk_seg *seg;
	int i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (expect(100, shk_seg_open(seg_name, 0, NULL, &seg), 0))
		_exit(1);
	while (!atomic_load(&sh->stop_checker)) {
		shk_queue *q = NULL;
		shk_stack *s = NULL;
		shk_pool *p = NULL;
		shk_map *m = NULL;
		shk_mutex *mu = NULL;
		shk_bcast *b = NULL;
		shk_seg *s2 = NULL;
		int rc[NCHECKS];

		rc[0] = shk_seg_check(seg);
		rc[1] = shk_queue_open(seg, "q", 0, NULL, &q);
		rc[2] = shk_stack_open(seg, "s", 0, NULL, &s);
		rc[3] = shk_pool_open(seg, "p", 0, NULL, &p);
		rc[4] = shk_map_open(seg, "m", 0, NULL, &m);
		rc[5] = shk_mutex_open(seg, "mu", 0, NULL, &mu);
		/* a reader joins at the end and leaves: the reliable
		 * writer is not held up */
		rc[6] = shk_bcast_open(seg, "b", 0, SHK_BCAST_READER, NULL, &b);
		/* a second handle: attach, heap magazine, detach */
		rc[7] = shk_seg_open(seg_name, 0, NULL, &s2);
		for (i = 0; i < NCHECKS; i++) {
			if (rc[i] == SHK_EBUSY && i == 6)
				continue; /* every reader slot held */
			if (expect(100 + i, rc[i], 0))
				break;
			atomic_fetch_add(&sh->checks[i], 1);
		}
		shk_queue_close(q);
		shk_stack_close(s);
		shk_pool_close(p);
		shk_map_close(m);
		shk_mutex_close(mu);
		shk_bcast_close(b);
		shk_seg_close(s2);
	}
	shk_seg_close(seg);
	_exit(0);
}

static pid_t
spawn(enum role r, unsigned seed)
{
	pid_t pid = fork();
	int n = 0;

	CHECK(pid >= 0);
	if (pid == 0) {
		while (n < 16 && role_points[r][n])
			n++;
		if (n && (seed & 1)) {
			char spec[80];

			snprintf(spec, sizeof(spec), "%s:%u",
				 role_points[r][(seed >> 1) % (unsigned)n],
				 1 + (seed >> 5) % 64);
			setenv("SHK_CRASH", spec, 1);
		}
		worker(r, seed);
	}
	return pid;
}

static void
t_kill_everyone(void)
{
	char nm[64];
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_seg *seg;
	shk_queue *q;
	shk_stack *s;
	shk_pool *p;
	shk_map *m;
	shk_mutex *mu;
	shk_ring *rp, *rc;
	shk_bcast *b;
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	shk_stack_opts sto = SHK_STACK_OPTS_INIT;
	shk_pool_opts po = SHK_POOL_OPTS_INIT;
	shk_map_opts mo = SHK_MAP_OPTS_INIT;
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	pid_t pids[NWORKERS], chk;
	enum role roles[NWORKERS];
	unsigned seed = (unsigned)getpid(), kills = 0, crashes = 0;
	int64_t end;
	int i, n = 0, r;
	size_t slen = sizeof(struct shared);

	sh = mmap(NULL, slen, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	test_name(nm, sizeof(nm), "chaos");
	seg_name = nm;
	shk_seg_unlink(nm, NULL);
	so.len = 16 << 20;
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &so, &seg));
	qo.cap = 16;
	qo.elem_len = 16;
	CHECK_OK(shk_queue_open(seg, "q", SHK_CREATE, &qo, &q));
	sto.cap = 16;
	sto.elem_len = 16;
	CHECK_OK(shk_stack_open(seg, "s", SHK_CREATE, &sto, &s));
	po.cap = 64;
	po.block_len = 64;
	CHECK_OK(shk_pool_open(seg, "p", SHK_CREATE, &po, &p));
	mo.key_len = 8;
	mo.val_len = 16;
	mo.cap = 32;
	CHECK_OK(shk_map_open(seg, "m", SHK_CREATE, &mo, &m));
	CHECK_OK(shk_mutex_open(seg, "mu", SHK_CREATE, NULL, &mu));
	ro.cap = 1024;
	CHECK_OK(shk_ring_open(seg, "r", SHK_CREATE, SHK_RING_PRODUCER, &ro,
			       &rp));
	CHECK_OK(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL, &rc));
	bo.mode = SHK_BCAST_RELIABLE;
	bo.cap = 1024;
	bo.max_readers = 8;
	CHECK_OK(shk_bcast_open(seg, "b", SHK_CREATE, SHK_BCAST_WRITER, &bo,
				&b));
	/* the roles are the workers' */
	shk_ring_close(rp);
	shk_ring_close(rc);
	shk_bcast_close(b);
	for (r = 0; r < R_N; r++)
		for (i = 0; i < role_count[r]; i++) {
			roles[n] = (enum role)r;
			pids[n] = spawn((enum role)r, (unsigned)rand_r(&seed));
			n++;
		}
	CHECK_EQ(n, NWORKERS);
	chk = fork();
	CHECK(chk >= 0);
	if (chk == 0)
		checker();
	/* under valgrind a process takes about a second to start: kill
	 * less often, for longer */
	end = test_now_ns() + (test_valgrind() ? 10000
			       : SANITIZED     ? 3000
					       : 1500) *
				      1000000ll;
	while (test_now_ns() < end && !atomic_load(&sh->bad_rc)) {
		if (test_valgrind())
			usleep(100000 + rand_r(&seed) % 100000);
		else
			usleep(2000 + rand_r(&seed) % 8000);
		/* workers that reached their crash point */
		for (i = 0; i < NWORKERS; i++) {
			int st;

			if (waitpid(pids[i], &st, WNOHANG) != pids[i])
				continue;
			/* else it exited after recording a bad code */
			if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
				crashes++;
			pids[i] = spawn(roles[i], (unsigned)rand_r(&seed));
		}
		i = rand_r(&seed) % NWORKERS;
		kill(pids[i], SIGKILL);
		CHECK_EQ(test_wait(pids[i]), 128 + SIGKILL);
		kills++;
		pids[i] = spawn(roles[i], (unsigned)rand_r(&seed));
	}
	for (i = 0; i < NWORKERS; i++) {
		kill(pids[i], SIGKILL);
		test_wait(pids[i]);
	}
	atomic_store(&sh->stop_checker, 1);
	CHECK_EQ(test_wait(chk), 0);
	printf("  %u kills, %u crash points reached; ops:", kills, crashes);
	for (r = 0; r < R_N; r++)
		printf(" %s %llu", role_name[r],
		       (unsigned long long)atomic_load(&sh->ops[r]));
	printf("; checker passes %llu\n",
	       (unsigned long long)atomic_load(&sh->checks[0]));
	fflush(stdout);
	if (atomic_load(&sh->bad_rc)) {
		shk_seg_unlink(nm, NULL); /* the failure exits */
		TEST_FAIL("unexpected code %d (%s) at %s %d",
			  atomic_load(&sh->bad_rc),
			  atomic_load(&sh->bad_rc) == BAD_SUM ? "bad checksum"
			  : atomic_load(&sh->bad_rc) == BAD_PAIR
				  ? "mutex pair disagrees"
				  : shk_strerror(atomic_load(&sh->bad_rc)),
			  atomic_load(&sh->bad_where) >= 100 ? "check" : "role",
			  atomic_load(&sh->bad_where));
	}
	/* everybody did something, and the checker ran every check */
	for (r = 0; r < R_N; r++)
		CHECK(atomic_load(&sh->ops[r]) > 0);
	for (i = 0; i < NCHECKS; i++)
		CHECK(atomic_load(&sh->checks[i]) > 0);
	CHECK(kills + crashes >= 10);
	/* all dead now: the segment checks clean, every object opens and
	 * works, and dead holders' state is repaired on use */
	CHECK_OK(shk_seg_check(seg));
	{
		uint8_t e[16] = { 0 };
		int k = 0;

		/* drain (dead claims are repaired on the way), then use */
		while (k++ < 100 && shk_queue_pop(q, e, 50000000) == 0)
			;
		CHECK(k < 100);
		CHECK_OK(shk_queue_push(q, e, 100000000));
		CHECK_OK(shk_queue_pop(q, e, 100000000));
		r = shk_mutex_lock(mu, 1000000000);
		CHECK(r == 0 || r == SHK_EOWNERDEAD);
		if (r == SHK_EOWNERDEAD)
			CHECK_OK(shk_mutex_consistent(mu));
		CHECK_OK(shk_mutex_unlock(mu));
		CHECK_OK(shk_ring_open(seg, "r", 0, SHK_RING_PRODUCER, NULL,
				       &rp));
		CHECK_OK(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL,
				       &rc));
		shk_ring_close(rp);
		shk_ring_close(rc);
	}
	shk_queue_close(q);
	shk_stack_close(s);
	shk_pool_close(p);
	shk_map_close(m);
	shk_mutex_close(mu);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
	munmap(sh, slen);
}

TEST_MAIN({ "kill_everyone", t_kill_everyone })
