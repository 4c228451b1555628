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
 * Pool ops/s are in bench_queue (the pool comes with the queue).
 *
 * TODO(issue 3): bcast with 1, 2, 4 readers joins this program once
 * shk_bcast lands on main.
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
	if (!c->use_shk)
		return 0;
	if (party != 0) {
		rc = shk_seg_open(seg_name, 0, NULL, &c->seg);
		if (rc != 0)
			return c->err = rc;
		c->own_seg = 1;
	}
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

static const struct bench_stream_ops map_ops = {
	m_setup, m_work, NULL, m_fini
};

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
	snprintf(seg_name, sizeof(seg_name), "shk-bench-%d-map",
		 (int)getpid());
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
			c.use_shk = 0;
			if (bench_ops(&map_ops, &c, np, count, &base) != 0) {
				fail("baseline map", -1);
				continue;
			}
			c.use_shk = 1;
			c.err = 0;
			rc = bench_ops(&map_ops, &c, np, count, &shk);
			if (rc != 0) {
				fail("map", c.err ? c.err : rc);
				rc = 0;
				continue;
			}
			snprintf(name, sizeof(name), "%s %d proc", put ? "put"
				 : "get", np);
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
	if (!c->use_shk)
		return 0;
	if (party != 0) {
		rc = shk_seg_open(seg_name, 0, NULL, &c->seg);
		if (rc != 0)
			return c->err = rc;
		c->own_seg = 1;
	}
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

static const struct bench_stream_ops stack_ops = {
	s_setup, s_work, NULL, s_fini
};

static void
bench_stack(void)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_stack_opts o = SHK_STACK_OPTS_INIT;
	size_t blen = base_stack_bytes(STACK_CAP, 8);
	shk_stack *st = NULL;
	struct sctx c;
	long count = bench_scale(2000000);
	int rc, np;

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

		c.use_shk = 0;
		if (bench_ops(&stack_ops, &c, np, count, &base) != 0) {
			fail("baseline stack", -1);
			continue;
		}
		c.use_shk = 1;
		c.err = 0;
		if (bench_ops(&stack_ops, &c, np, count, &shk) != 0) {
			fail("stack", c.err ? c.err : -1);
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

int
main(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	printf("# structures vs same-run baselines, pinned processes (%d "
	       "CPUs), median of %d runs\n",
	       bench_ncpus(), bench_runs());
	bench_map();
	bench_stack();
	return failures ? 1 : 0;
}
