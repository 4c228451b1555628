/*
 * bench_structs - shmkit's other structures beside same-run baselines.
 *
 *   map get / put (replace) ops/s, 8-byte keys, 64-byte values, 32768
 *   keys in 65536 slots (load 1/2), uniformly random keys, 1 and 2
 *   processes; baseline: an rwlock-protected open-addressing hash map
 *   with the same keys, values and capacity (baselines.h).  Ratio > 1:
 *   shmkit is faster.
 *
 *   stack push+pop ops/s (one op = push one 8-byte element, then pop
 *   one), capacity 1024, 1 and 2 processes; baseline: an array stack
 *   under one process-shared pthread mutex (baselines.h).  Ratio > 1:
 *   shmkit is faster.
 *
 *   bcast throughput, one writer and 1, 2 and 4 readers (each reader
 *   accounts for every record), 64-byte records, 64 KiB buffer, lossy and
 *   reliable mode, busy-poll (timeout 0 and retry); baseline: the minimal
 *   SPSC ring with one reader and the same buffer bytes (baselines.h).
 *   The figure is records written per second, each one received (or, in
 *   lossy mode, reported lost) by every reader; lossy mode adds a row
 *   for what each reader received, naming the share it lost.  With more
 *   processes than CPUs the row says so (they take turns on the CPUs)
 *   and the case runs a fifth of the records.
 *
 * Pool ops/s are in bench_queue (the pool comes with the queue).
 */
#include "baselines.h"

#include "shmkit.h"

#define MAP_KEYS 32768u
#define MAP_CAP 65536u
#define MAP_VAL 64u
#define SEG_LEN ((uint64_t)32 << 20)

static char seg_name[64];
static int failures;

static void
fail(const char *what, int rc)
{
	fprintf(stderr, "bench_structs: %s failed (%s)\n", what,
		rc < 0 ? shk_errname(rc) : "harness");
	failures++;
}

static void
on_alarm(int sig)
{
	if (seg_name[0])
		shk_seg_unlink(seg_name, NULL);
	_exit(3);
}

static uint64_t
key_of(uint64_t i)
{
	return (i + 1) * 0x100000001b3ull;
}

struct mctx {
	int use_shk;
	int put;
	shk_seg *seg;
	int own_seg;
	shk_map *m;
	struct base_map *bm;
	uint64_t rng;
	uint8_t val[MAP_VAL];
	int err;
};

static uint64_t
next_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int
m_setup(void *ctx, int party, int is_producer)
{
	struct mctx *c = (struct mctx *)ctx;
	shk_map_opts o = SHK_MAP_OPTS_INIT;
	int rc;

	c->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(party + 1);
	if (!c->use_shk) {
		/* as bench_party_seg does for the segment */
		bench_prefault(c->bm, base_map_bytes(MAP_CAP, MAP_VAL));
		return 0;
	}
	rc = bench_party_seg(seg_name, party, &c->seg, &c->own_seg);
	if (rc != 0)
		return c->err = rc;
	o.key_len = 8;
	o.val_len = MAP_VAL;
	o.cap = MAP_CAP;
	rc = shk_map_open(c->seg, "map", 0, &o, &c->m);
	return rc != 0 ? (c->err = rc) : 0;
}

static void
m_fini(void *ctx, int party, int is_producer)
{
	struct mctx *c = (struct mctx *)ctx;

	shk_map_close(c->m);
	c->m = NULL;
	if (c->own_seg)
		shk_seg_close(c->seg);
}

static int
m_work(void *ctx, int i, long n)
{
	struct mctx *c = (struct mctx *)ctx;
	long k;
	int rc;

	for (k = 0; k < n; k++) {
		uint64_t key = key_of(next_rand(&c->rng) % MAP_KEYS);

		if (c->put) {
			memcpy(c->val, &k, sizeof(k));
			rc = c->use_shk ? shk_map_put(c->m, &key, c->val)
					: base_map_put(c->bm, key, c->val);
			if (rc == 1)
				rc = 0;
		} else {
			rc = c->use_shk ? shk_map_get(c->m, &key, c->val)
					: base_map_get(c->bm, key, c->val);
		}
		if (rc == SHK_EAGAIN)
			continue;
		if (rc != 0) {
			if (rc < 0 && c->use_shk && !c->err)
				c->err = rc;
			return -1;
		}
	}
	return 0;
}

static const struct bench_stream_ops map_ops = { m_setup, m_work, NULL,
						 m_fini };

/*
 * alt_ops runs the baseline (*use_shk = 0) and the shmkit case
 * (*use_shk = 1) of one comparison alternately, one measured run of each
 * per round (bench_runs_each = 1), and gives the medians over the
 * SHK_BENCH_RUNS rounds, as bench_ring does: on a shared VM the machine's
 * speed changes from one second to the next.  Returns 0, -1 when the
 * baseline failed, -2 when the shmkit case failed (*err: its code).
 */
#define MAX_ROUNDS 99

static int
alt_ops(const struct bench_stream_ops *ops, void *ctx, int *use_shk, int np,
	long count, double *base, double *shk)
{
	double vb[MAX_ROUNDS], vs[MAX_ROUNDS];
	int r, rounds = bench_runs(), rc = 0;

	bench_runs_each = 1;
	for (r = 0; r < rounds; r++) {
		*use_shk = 0;
		if (bench_ops(ops, ctx, np, count, &vb[r]) != 0) {
			rc = -1;
			break;
		}
		*use_shk = 1;
		if (bench_ops(ops, ctx, np, count, &vs[r]) != 0) {
			rc = -2;
			break;
		}
	}
	bench_runs_each = 0;
	if (rc == 0) {
		*base = bench_median(vb, (size_t)rounds);
		*shk = bench_median(vs, (size_t)rounds);
	}
	return rc;
}

static void
bench_map(void)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_map_opts mo = SHK_MAP_OPTS_INIT;
	size_t blen = base_map_bytes(MAP_CAP, MAP_VAL);
	struct mctx c;
	shk_map *m = NULL;
	uint8_t val[MAP_VAL] = { 0 };
	long count = bench_scale(1000000);
	int rc, put, np;
	uint64_t i;

	memset(&c, 0, sizeof(c));
	c.bm = (struct base_map *)bench_shm_alloc(blen);
	if (!c.bm || base_map_init(c.bm, MAP_CAP, MAP_VAL) != 0) {
		fail("baseline map", -1);
		bench_shm_free(c.bm, blen);
		return;
	}
	snprintf(seg_name, sizeof(seg_name), "shk-bench-%d-map", (int)getpid());
	so.len = SEG_LEN;
	rc = shk_seg_open(seg_name, SHK_CREATE | SHK_EXCL, &so, &c.seg);
	if (rc != 0) {
		seg_name[0] = '\0';
		fail("segment", rc);
		bench_shm_free(c.bm, blen);
		return;
	}
	mo.key_len = 8;
	mo.val_len = MAP_VAL;
	mo.cap = MAP_CAP;
	rc = shk_map_open(c.seg, "map", SHK_CREATE | SHK_EXCL, &mo, &m);
	for (i = 0; rc == 0 && i < MAP_KEYS; i++) {
		uint64_t key = key_of(i);

		rc = shk_map_put(m, &key, val);
		if (rc == 0 && base_map_put(c.bm, key, val) != 0)
			rc = -1;
	}
	shk_map_close(m);
	if (rc != 0)
		fail("map fill", rc);
	for (put = 0; rc == 0 && put < 2; put++) {
		for (np = 1; np <= 2; np++) {
			double base = 0, shk = 0;
			char name[32], bname[96];

			c.put = put;
			c.err = 0;
			rc = alt_ops(&map_ops, &c, &c.use_shk, np, count, &base,
				     &shk);
			if (rc == -1)
				fail("baseline map", -1);
			else if (rc != 0)
				fail("map", c.err ? c.err : -1);
			if (rc != 0) {
				rc = 0;
				continue;
			}
			snprintf(name, sizeof(name), "%s %d proc",
				 put ? "put" : "get", np);
			snprintf(bname, sizeof(bname), "rwlock map %s", name);
			bench_row("map", name, shk / 1e6, "Mops/s", bname,
				  base / 1e6);
		}
	}
	shk_seg_close(c.seg);
	shk_seg_unlink(seg_name, NULL);
	seg_name[0] = '\0';
	bench_shm_free(c.bm, blen);
}

/* ---- stack ---- */

#define STACK_CAP 1024u

struct sctx {
	int use_shk;
	shk_seg *seg;
	int own_seg;
	shk_stack *s;
	struct base_stack *bs;
	int party;
	int err;
};

static int
s_setup(void *ctx, int party, int is_producer)
{
	struct sctx *c = (struct sctx *)ctx;
	int rc;

	c->party = party;
	if (!c->use_shk) {
		/* as bench_party_seg does for the segment */
		bench_prefault(c->bs, base_stack_bytes(STACK_CAP, 8));
		return 0;
	}
	rc = bench_party_seg(seg_name, party, &c->seg, &c->own_seg);
	if (rc != 0)
		return c->err = rc;
	rc = shk_stack_open(c->seg, "stack", 0, NULL, &c->s);
	return rc != 0 ? (c->err = rc) : 0;
}

static void
s_fini(void *ctx, int party, int is_producer)
{
	struct sctx *c = (struct sctx *)ctx;

	shk_stack_close(c->s);
	c->s = NULL;
	if (c->own_seg)
		shk_seg_close(c->seg);
}

/* Push / pop on the stack in use: 0, SHK_EAGAIN (full / empty), or an
 * error (shk's code; -1 from the baseline). */
static int
s_push(struct sctx *c, const uint64_t *v)
{
	if (c->use_shk)
		return shk_stack_push(c->s, v, 0);
	switch (base_stack_push(c->bs, v)) {
	case 0:
		return 0;
	case 1:
		return SHK_EAGAIN;
	default:
		return -1;
	}
}

static int
s_pop(struct sctx *c, uint64_t *v)
{
	if (c->use_shk)
		return shk_stack_pop(c->s, v, 0);
	switch (base_stack_pop(c->bs, v)) {
	case 0:
		return 0;
	case 1:
		return SHK_EAGAIN;
	default:
		return -1;
	}
}

/*
 * Each op pushes then pops.  A pop never finds the stack empty (every
 * party pushed before it pops) and the depth stays at most the number of
 * parties, so the retry loops are only a safety net.  A popped element
 * must be one some party pushed: its party tag is checked.
 */
static int
s_work(void *ctx, int i, long n)
{
	struct sctx *c = (struct sctx *)ctx;
	uint64_t tag = (uint64_t)c->party << 40;
	long k;

	for (k = 0; k < n; k++) {
		uint64_t v = tag | (uint64_t)k;
		unsigned spins = 0;
		int rc;

		while ((rc = s_push(c, &v)) == SHK_EAGAIN) {
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		while (rc == 0 && (rc = s_pop(c, &v)) == SHK_EAGAIN) {
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		if (rc != 0) {
			if (c->use_shk && !c->err)
				c->err = rc;
			return -1;
		}
		if ((v >> 40) >= BENCH_MAX_PROCS)
			return -1;
	}
	return 0;
}

static const struct bench_stream_ops stack_ops = { s_setup, s_work, NULL,
						   s_fini };

static void
bench_stack(void)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_stack_opts o = SHK_STACK_OPTS_INIT;
	size_t blen = base_stack_bytes(STACK_CAP, 8);
	shk_stack *st = NULL;
	struct sctx c;
	long count = bench_scale(2000000);
	int rc, np, r;

	memset(&c, 0, sizeof(c));
	c.bs = (struct base_stack *)bench_shm_alloc(blen);
	if (!c.bs || base_stack_init(c.bs, STACK_CAP, 8) != 0) {
		fail("baseline stack", -1);
		bench_shm_free(c.bs, blen);
		return;
	}
	snprintf(seg_name, sizeof(seg_name), "shk-bench-%d-stack",
		 (int)getpid());
	so.len = (uint64_t)1 << 20;
	rc = shk_seg_open(seg_name, SHK_CREATE | SHK_EXCL, &so, &c.seg);
	if (rc != 0) {
		seg_name[0] = '\0';
		fail("segment", rc);
		bench_shm_free(c.bs, blen);
		return;
	}
	o.elem_len = 8;
	o.cap = STACK_CAP;
	rc = shk_stack_open(c.seg, "stack", SHK_CREATE | SHK_EXCL, &o, &st);
	shk_stack_close(st);
	if (rc != 0)
		fail("stack open", rc);
	for (np = 1; rc == 0 && np <= 2; np++) {
		double base = 0, shk = 0;
		char name[32], bname[64];

		c.err = 0;
		r = alt_ops(&stack_ops, &c, &c.use_shk, np, count, &base, &shk);
		if (r != 0) {
			fail(r == -1 ? "baseline stack" : "stack",
			     r == -1 ? -1 : (c.err ? c.err : -1));
			continue;
		}
		snprintf(name, sizeof(name), "push+pop %d proc", np);
		snprintf(bname, sizeof(bname), "mutex stack %s", name);
		bench_row("stack", name, shk / 1e6, "Mops/s", bname,
			  base / 1e6);
	}
	shk_seg_close(c.seg);
	shk_seg_unlink(seg_name, NULL);
	seg_name[0] = '\0';
	bench_shm_free(c.bs, blen);
}

/* ---- bcast ---- */

#define BC_REC 64u
#define BC_CAP 65536u

/* Reader totals over every run of a case, in shared memory. */
struct bc_totals {
	_Atomic uint64_t recv;
	_Atomic uint64_t lost;
};

struct bctx {
	shk_seg *seg;
	int own_seg;
	shk_bcast *b;
	const char *name;
	uint32_t mode;
	struct bc_totals *tot;
	uint64_t wseq; /* writer: next record's sequence number */
	uint64_t rseq; /* reader: next sequence number expected */
	uint8_t buf[BC_REC];
	int err;
};

static int
bc_setup(void *ctx, int party, int is_producer)
{
	struct bctx *c = (struct bctx *)ctx;
	int rc;

	rc = bench_party_seg(seg_name, party, &c->seg, &c->own_seg);
	if (rc != 0)
		return c->err = rc;
	/* Readers attach here, before the first barrier, so each receives
	 * every record the writer writes after it. */
	rc = shk_bcast_open(c->seg, c->name, 0,
			    is_producer ? SHK_BCAST_WRITER : SHK_BCAST_READER,
			    NULL, &c->b);
	return rc != 0 ? (c->err = rc) : 0;
}

static void
bc_fini(void *ctx, int party, int is_producer)
{
	struct bctx *c = (struct bctx *)ctx;

	shk_bcast_close(c->b);
	c->b = NULL;
	if (c->own_seg)
		shk_seg_close(c->seg);
}

static int
bc_produce(void *ctx, int i, long n)
{
	struct bctx *c = (struct bctx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		unsigned spins = 0;
		int rc;

		memcpy(c->buf, &c->wseq, sizeof(c->wseq));
		c->wseq++;
		while ((rc = shk_bcast_write(c->b, c->buf, BC_REC, 0)) ==
		       SHK_EAGAIN) {
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		if (rc != 0)
			return c->err = rc;
	}
	return 0;
}

/*
 * A reader accounts for each of the n records of a run: received, or
 * reported lost (lossy mode).  Loss counts are exact, so the sequence
 * number of each record received must be the expected one plus the
 * records lost just before it, and a run ends exactly at n.
 */
static int
bc_consume(void *ctx, int i, long n)
{
	struct bctx *c = (struct bctx *)ctx;
	uint64_t done = 0, recv = 0, lost_sum = 0;

	while (done < (uint64_t)n) {
		unsigned spins = 0;
		uint64_t lost = 0, got;
		int rc;

		while ((rc = shk_bcast_read(c->b, c->buf, sizeof(c->buf), &lost,
					    0)) == SHK_EAGAIN) {
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		if (rc < 0)
			return c->err = rc;
		memcpy(&got, c->buf, sizeof(got));
		if (rc != (int)BC_REC || got != c->rseq + lost ||
		    (c->mode == SHK_BCAST_RELIABLE && lost != 0))
			return -1;
		c->rseq = got + 1;
		done += lost + 1;
		lost_sum += lost;
		recv++;
	}
	if (done != (uint64_t)n)
		return -1;
	/* relaxed: read by the parent after the team has been reaped */
	atomic_fetch_add_explicit(&c->tot->recv, recv, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->tot->lost, lost_sum,
				  memory_order_relaxed);
	return 0;
}

static const struct bench_stream_ops bcast_ops = { bc_setup, bc_produce,
						   bc_consume, bc_fini };

static void
bench_bcast(void)
{
	static const uint32_t modes[2] = { SHK_BCAST_LOSSY,
					   SHK_BCAST_RELIABLE };
	static const int readers[3] = { 1, 2, 4 };
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	struct bctx c;
	long count = bench_scale(500000);
	double base = 0;
	int m, k, rc;

	memset(&c, 0, sizeof(c));
	if (base_spsc_stream(BC_REC, BC_CAP, count, &base) != 0) {
		fail("baseline SPSC ring", -1);
		return;
	}
	c.tot = (struct bc_totals *)bench_shm_alloc(sizeof(*c.tot));
	if (!c.tot) {
		fail("bcast totals", -1);
		return;
	}
	snprintf(seg_name, sizeof(seg_name), "shk-bench-%d-bcast",
		 (int)getpid());
	so.len = (uint64_t)4 << 20;
	rc = shk_seg_open(seg_name, SHK_CREATE | SHK_EXCL, &so, &c.seg);
	if (rc != 0) {
		seg_name[0] = '\0';
		fail("segment", rc);
		bench_shm_free(c.tot, sizeof(*c.tot));
		return;
	}
	for (m = 0; m < 2; m++) {
		shk_bcast_opts o = SHK_BCAST_OPTS_INIT;
		shk_bcast *w = NULL;

		c.mode = modes[m];
		c.name = m == 0 ? "lossy" : "reliable";
		o.mode = c.mode;
		o.cap = BC_CAP;
		o.max_record = BC_REC;
		rc = shk_bcast_open(c.seg, c.name, SHK_CREATE | SHK_EXCL,
				    SHK_BCAST_WRITER, &o, &w);
		shk_bcast_close(w);
		if (rc != 0) {
			fail("bcast open", rc);
			continue;
		}
		for (k = 0; k < 3; k++) {
			int nr = readers[k];
			int over = nr + 1 > bench_ncpus();
			double rate = 0, recv, lost;
			char name[64], row[128], procs[32] = "";

			c.wseq = 0;
			c.rseq = 0;
			c.err = 0;
			/* relaxed: no reader runs now; fork orders it */
			atomic_store_explicit(&c.tot->recv, 0,
					      memory_order_relaxed);
			atomic_store_explicit(&c.tot->lost, 0,
					      memory_order_relaxed);
			/* Oversubscribed, the parties take turns on the CPUs
			 * and a reliable writer waits for each: fewer records
			 * keep the program's run time bounded. */
			if (bench_stream(&bcast_ops, &c, 1, nr, 1,
					 over ? count / 5 + 1 : count,
					 &rate) != 0) {
				fail(c.name, c.err ? c.err : -1);
				continue;
			}
			if (over)
				snprintf(procs, sizeof(procs),
					 " (%d procs on %d CPUs)", nr + 1,
					 bench_ncpus());
			snprintf(name, sizeof(name), "%s %d reader%s%s", c.name,
				 nr, nr > 1 ? "s" : "", procs);
			if (c.mode == SHK_BCAST_RELIABLE) {
				bench_row("bcast", name, rate / 1e6, "Mmsg/s",
					  "SPSC ring 1 reader 64 B",
					  base / 1e6);
				continue;
			}
			/* Lossy: the writer's rate, and what each reader
			 * received of it (the share received over all runs
			 * and readers). */
			/* relaxed: the readers have been reaped */
			recv = (double)atomic_load_explicit(
				&c.tot->recv, memory_order_relaxed);
			lost = (double)atomic_load_explicit(
				&c.tot->lost, memory_order_relaxed);
			snprintf(row, sizeof(row), "%s written", name);
			bench_row("bcast", row, rate / 1e6, "Mmsg/s",
				  "SPSC ring 1 reader 64 B", base / 1e6);
			snprintf(row, sizeof(row),
				 "%s received per reader (%.1f%% lost)", name,
				 100 * lost / (recv + lost));
			rate *= recv / (recv + lost);
			bench_row("bcast", row, rate / 1e6, "Mmsg/s",
				  "SPSC ring 1 reader 64 B", base / 1e6);
		}
	}
	shk_seg_close(c.seg);
	shk_seg_unlink(seg_name, NULL);
	seg_name[0] = '\0';
	bench_shm_free(c.tot, sizeof(*c.tot));
}

int
main(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	printf("# structures vs same-run baselines, pinned processes (%d "
	       "CPUs), median of %d runs (map, stack: alternating rounds)\n",
	       bench_ncpus(), bench_runs());
	bench_map();
	bench_stack();
	bench_bcast();
	return failures ? 1 : 0;
}
