/*
 * bench_structs - shmkit's other structures beside same-run baselines.
 *
 *   map get / put (replace) ops/s, 8-byte keys, 64-byte values, 32768
 *   keys in 65536 slots (load 1/2), uniformly random keys, 1 and 2
 *   processes; baseline: an rwlock-protected open-addressing hash map
 *   with the same keys, values and capacity (baselines.h).  Ratio > 1:
 *   shmkit is faster.
 *
 * TODO(issue 3): stack and pool ops/s and bcast with 1, 2, 4 readers
 * join this program once those structures land on main.
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
	return failures ? 1 : 0;
}
