/* test_pool.c - fixed-size block pool: no block handed out twice across
 * processes and threads, double/foreign frees, exhaustion, crash points,
 * corruption. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/prctl.h>

#include "platform.h"
#include "pool.h"
#include "segment.h"

#if defined(SHK__TSAN) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static void
setup(char *nm, size_t n, const char *tag, shk_seg **seg)
{
	test_name(nm, n, tag);
	shk_seg_unlink(nm, NULL);
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, seg));
}

static shk_pool *
create_pool(shk_seg *seg, uint64_t cap, uint64_t block_len)
{
	shk_pool_opts o = SHK_POOL_OPTS_INIT;
	shk_pool *p = NULL;

	o.cap = cap;
	o.block_len = block_len;
	CHECK_OK(shk_pool_open(seg, "p", SHK_CREATE | SHK_EXCL, &o, &p));
	return p;
}

static void
t_basic(void)
{
	char nm[64], buf[160];
	shk_seg *seg;
	shk_pool *p, *p2 = NULL;
	shk_pool_opts o = SHK_POOL_OPTS_INIT;
	shk_pool_stats st = { .size = sizeof(st) };
	shk_obj_info info = { .size = sizeof(info) };
	uint64_t off[16], x;
	void *ptr;
	int i, j;

	setup(nm, sizeof(nm), "pbasic", &seg);
	p = create_pool(seg, 16, 100); /* rounded to 128 */
	CHECK_OK(shk_pool_info(p, &st));
	CHECK_EQ(st.block_len, 128);
	CHECK_EQ(st.cap, 16);
	CHECK_EQ(st.in_use, 0);
	for (i = 0; i < 16; i++) {
		CHECK_OK(shk_pool_alloc(p, &off[i], &ptr));
		CHECK(ptr == shk_ptr(seg, off[i]));
		CHECK(ptr == shk_pool_ptr(p, off[i]));
		CHECK_EQ(off[i] % 64, 0);
		memset(ptr, i, 128);
		for (j = 0; j < i; j++)
			CHECK(off[j] != off[i]);
	}
	CHECK_RC(shk_pool_alloc(p, &x, NULL), SHK_ENOMEM);
	CHECK_OK(shk_pool_info(p, &st));
	CHECK_EQ(st.in_use, 16);
	CHECK_OK(shk_obj_stat(seg, "p", &info));
	CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "in_use=16/16") != NULL);
	/* foreign offsets and double free */
	CHECK_RC(shk_pool_free(p, off[3] + 8), SHK_EINVAL);
	CHECK_RC(shk_pool_free(p, 0), SHK_EINVAL);
	CHECK_RC(shk_pool_free(p, off[0] - 128), SHK_EINVAL);
	CHECK_RC(shk_pool_free(p, UINT64_MAX), SHK_EINVAL);
	CHECK(shk_pool_ptr(p, off[3] + 8) == NULL);
	CHECK_OK(shk_pool_free(p, off[3]));
	CHECK_RC(shk_pool_free(p, off[3]), SHK_EINVAL);
	CHECK_OK(shk_pool_alloc(p, &x, NULL));
	CHECK_EQ(x, off[3]); /* LIFO reuse */
	for (i = 0; i < 16; i++)
		CHECK_OK(shk_pool_free(p, off[i]));
	CHECK_OK(shk_seg_check(seg));
	CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "free_listed=16 leaked=0") != NULL);
	/* opens: match, and mismatches */
	CHECK_OK(shk_pool_open(seg, "p", 0, NULL, &p2));
	shk_pool_close(p2);
	/* an opener's block_len is rounded as on create, then must equal
	 * the stored size (128): the creator's own 100 opens it */
	o.block_len = 100;
	CHECK_OK(shk_pool_open(seg, "p", 0, &o, &p2));
	shk_pool_close(p2);
	o.block_len = 128;
	CHECK_OK(shk_pool_open(seg, "p", 0, &o, &p2));
	shk_pool_close(p2);
	o.block_len = 129;
	CHECK_RC(shk_pool_open(seg, "p", 0, &o, &p2), SHK_ETYPE);
	CHECK(p2 == NULL);
	o.block_len = 64;
	CHECK_RC(shk_pool_open(seg, "p", 0, &o, &p2), SHK_ETYPE);
	CHECK(p2 == NULL);
	o.block_len = 0;
	o.type_id = 3;
	CHECK_RC(shk_pool_open(seg, "p", 0, &o, &p2), SHK_ETYPE);
	o.size = 0;
	CHECK_RC(shk_pool_open(seg, "p", 0, &o, &p2), SHK_EINVAL);
	CHECK_RC(shk_pool_alloc(NULL, &x, NULL), SHK_EINVAL);
	CHECK_RC(shk_pool_free(NULL, 0), SHK_EINVAL);
	shk_pool_close(NULL);
	shk_pool_close(p);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* Each worker keeps up to `hold` blocks, claims each block's first word
 * (0 -> id) to prove nobody else holds it, fills it, checks it, frees. */
static void
churn(shk_pool *p, uint64_t id, long iters, int hold)
{
	uint64_t off[8];
	_Atomic uint64_t *w;
	int n = 0, i;
	long k;
	uint64_t seed = id * 7919;

	for (k = 0; k < iters; k++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		if (n < hold && ((seed >> 33) & 1)) {
			uint64_t o;
			int rc = shk_pool_alloc(p, &o, (void **)&w);
			if (rc == SHK_ENOMEM)
				continue;
			CHECK_OK(rc);
			uint64_t z = 0;
			if (!atomic_compare_exchange_strong(w, &z, id))
				TEST_FAIL("block %llu handed out twice "
					  "(held by %llu)",
					  (unsigned long long)o,
					  (unsigned long long)z);
			memset((char *)w + 8, (int)(id & 0xff), 56);
			off[n++] = o;
		} else if (n > 0) {
			i = (int)((seed >> 40) % (uint64_t)n);
			w = shk_pool_ptr(p, off[i]);
			CHECK(w != NULL);
			CHECK_EQ(atomic_load(w), id);
			for (int b = 8; b < 64; b++)
				CHECK_EQ(((unsigned char *)w)[b], id & 0xff);
			atomic_store(w, 0);
			CHECK_OK(shk_pool_free(p, off[i]));
			off[i] = off[--n];
		}
	}
	while (n > 0) {
		w = shk_pool_ptr(p, off[--n]);
		atomic_store(w, 0);
		CHECK_OK(shk_pool_free(p, off[n]));
	}
}

static void
t_procs(void)
{
	char nm[64];
	shk_seg *seg;
	shk_pool *p;
	pid_t pid[4];
	long iters = SANITIZED ? 50000 : test_scale(1000000);
	int i;

	setup(nm, sizeof(nm), "pprocs", &seg);
	p = create_pool(seg, 12, 64); /* 4 x up to 4 held > 12: exhaustion */
	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		CHECK(pid[i] >= 0);
		if (pid[i] == 0) {
			shk_seg *s2;
			shk_pool *p2;
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			CHECK_OK(shk_seg_open(nm, 0, NULL, &s2));
			CHECK_OK(shk_pool_open(s2, "p", 0, NULL, &p2));
			churn(p2, (uint64_t)i + 1, iters, 4);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++)
		if (test_wait(pid[i]) != 0) {
			shk_seg_unlink(nm, NULL);
			TEST_FAIL("worker %d failed", i);
		}
	CHECK_OK(shk_seg_check(seg));
	{
		shk_pool_stats st = { .size = sizeof(st) };
		CHECK_OK(shk_pool_info(p, &st));
		CHECK_EQ(st.in_use, 0);
	}
	shk_pool_close(p);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

struct targ {
	shk_pool *p;
	uint64_t id;
	long iters;
};

static void *
thr(void *arg)
{
	struct targ *a = arg;

	churn(a->p, a->id, a->iters, 3);
	return NULL;
}

static void
t_threads(void)
{
	char nm[64];
	shk_seg *seg;
	shk_pool *p;
	pthread_t th[4];
	struct targ a[4];
	int i;

	setup(nm, sizeof(nm), "pthr", &seg);
	p = create_pool(seg, 4, 64); /* 4 blocks under 4 threads */
	for (i = 0; i < 4; i++) {
		a[i].p = p;
		a[i].id = (uint64_t)i + 1;
		a[i].iters = SANITIZED ? 30000 : test_scale(300000);
		CHECK(pthread_create(&th[i], NULL, thr, &a[i]) == 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK_OK(shk_seg_check(seg));
	shk_pool_close(p);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* A process killed inside alloc or free leaks at most that one block; the
 * pool stays consistent and usable; nothing is handed out twice. */
static void
t_kill(void)
{
	static const char *points[] = { "pool.alloc.popped:1000",
					"pool.free.marked:1000" };
	char nm[64], buf[160];
	size_t k;

	for (k = 0; k < 2; k++) {
		shk_seg *seg;
		shk_pool *p;
		shk_obj_info info = { .size = sizeof(info) };
		shk_pool_stats st = { .size = sizeof(st) };
		pid_t pid;

		setup(nm, sizeof(nm), "pkill", &seg);
		p = create_pool(seg, 8, 64);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			shk_seg *s2;
			shk_pool *p2;
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			setenv("SHK_CRASH", points[k], 1);
			CHECK_OK(shk_seg_open(nm, 0, NULL, &s2));
			CHECK_OK(shk_pool_open(s2, "p", 0, NULL, &p2));
			churn(p2, 9, 100000, 4);
			_exit(0);
		}
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		CHECK_OK(shk_seg_check(seg));
		CHECK_OK(shk_obj_stat(seg, "p", &info));
		CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
		CHECK(strstr(buf, "leaked=1") != NULL);
		/* the survivors still get the 7 other blocks, each once */
		CHECK_OK(shk_pool_info(p, &st));
		for (uint64_t i = 0; i < 8 - st.in_use - 1; i++) {
			uint64_t o;
			CHECK_OK(shk_pool_alloc(p, &o, NULL));
		}
		CHECK_RC(shk_pool_alloc(p, NULL, NULL), SHK_ENOMEM);
		printf("  %s: %s\n", points[k], buf);
		fflush(stdout);
		shk_pool_close(p);
		shk_seg_close(seg);
		CHECK_OK(shk_seg_unlink(nm, NULL));
	}
}

static void
t_corrupt(void)
{
	char nm[64];
	shk_seg *seg;
	shk_pool *p, *p2 = NULL;
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__pool_hdr *h;
	_Atomic uint32_t *next;
	uint64_t save, o;

	setup(nm, sizeof(nm), "pcor", &seg);
	p = create_pool(seg, 8, 64);
	CHECK_OK(shk_obj_stat(seg, "p", &info));
	h = (struct shk__pool_hdr *)((char *)shk_seg_base(seg) + info.off);
	next = (_Atomic uint32_t *)((char *)h + h->next_off);
	save = atomic_load(&h->head);
	atomic_store(&h->head, SHK__TL_WORD(100, 5));
	CHECK_RC(shk_pool_alloc(p, &o, NULL), SHK_ECORRUPT);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	CHECK_RC(shk_pool_open(seg, "p", 0, NULL, &p2), SHK_ECORRUPT);
	atomic_store(&h->head, save);
	/* a cycle in the free list */
	atomic_store(&next[5], 2);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	atomic_store(&next[5], 6);
	/* a listed block marked in use */
	atomic_store((_Atomic uint32_t *)((char *)h + h->state_off) + 0,
		     SHK__POOL_ALLOC | shk__seg_stamp(seg));
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	CHECK_RC(shk_pool_alloc(p, &o, NULL), SHK_ECORRUPT);
	shk_pool_close(p);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/*
 * describe never takes offsets from the header that the check read: a
 * peer may rewrite state_off or next_off between shk__kind_check_pool and
 * shk__kind_describe_pool.  Before, describe re-read them and indexed with
 * the new value (SIGSEGV).  Called directly with the header damaged after
 * the check, then raced through shk_obj_describe (not under TSan, which
 * would report the deliberate race on the plain header field).
 */
static void
t_describe_toctou(void)
{
	char nm[64], buf[160];
	shk_seg *seg;
	shk_pool *p;
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__pool_hdr *h;
	uint64_t so, no;
	int rc;

	setup(nm, sizeof(nm), "pdtoc", &seg);
	p = create_pool(seg, 64, 16);
	/* a crash must leave no segment behind: the mapping lives on */
	CHECK_OK(shk_seg_unlink(nm, NULL));
	CHECK_OK(shk_obj_stat(seg, "p", &info));
	h = (struct shk__pool_hdr *)((char *)shk_seg_base(seg) + info.off);
	so = h->state_off;
	no = h->next_off;
	CHECK_OK(shk_seg_check(seg));
	h->state_off = 1ULL << 40;
	h->next_off = 1ULL << 40;
	rc = shk__kind_describe_pool(seg, h, &info, buf, sizeof(buf));
	CHECK(rc > 0);
	CHECK(strstr(buf, "in_use=0/64") != NULL);
	CHECK(strstr(buf, "free_listed=64 leaked=0") != NULL);
	h->state_off = so;
	h->next_off = no;
	test_describe_flipping(seg, &info, &h->state_off, so);
	CHECK_OK(shk_seg_check(seg));
	shk_pool_close(p);
	shk_seg_close(seg);
}

struct dbusy {
	shk_pool *p;
	_Atomic int stop;
};

static void *
dbusy_thr(void *arg)
{
	struct dbusy *d = arg;
	uint64_t o[2];

	/* relaxed: a stop flag, nothing published with it */
	while (!atomic_load_explicit(&d->stop, memory_order_relaxed)) {
		for (int i = 0; i < 2; i++)
			CHECK_OK(shk_pool_alloc(d->p, &o[i], NULL));
		for (int i = 0; i < 2; i++)
			CHECK_OK(shk_pool_free(d->p, o[i]));
	}
	return NULL;
}

/* describe while two threads allocate and free: leaked = cap - in_use -
 * listed comes from one moment of the pool, so it is never negative (a
 * block freed between the state scan and the list walk was counted both
 * in use and listed) and never more than the blocks in transit: a thread
 * makes no pop or push while the head stays unchanged, so during one scan
 * it can finish at most one pop (its block read before the mark) and
 * begin at most one free (its block read after the unmark), two blocks
 * per thread. */
static void
t_describe_busy(void)
{
	char nm[64], buf[160];
	shk_seg *seg;
	shk_obj_info info = { .size = sizeof(info) };
	struct dbusy d = { .stop = 0 };
	pthread_t th[2];
	long k, n = SANITIZED ? 3000 : test_scale(200000), full = 0;

	setup(nm, sizeof(nm), "pdbusy", &seg);
	d.p = create_pool(seg, 8, 64);
	CHECK_OK(shk_obj_stat(seg, "p", &info));
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, dbusy_thr, &d) == 0);
	for (k = 0; k < n; k++) {
		const char *l;
		long long leaked;

		CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
		l = strstr(buf, "leaked=");
		if (!l) {
			CHECK(strstr(buf, "(busy)") != NULL);
			continue;
		}
		leaked = strtoll(l + 7, NULL, 10);
		if (leaked < 0 || leaked > 4)
			TEST_FAIL("describe %ld: %s", k, buf);
		full++;
	}
	/* relaxed: see dbusy_thr */
	atomic_store_explicit(&d.stop, 1, memory_order_relaxed);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(full > 0);
	printf("  %ld of %ld describes gave leaked=\n", full, n);
	CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "in_use=0/8 block=64 free_listed=8 leaked=0") !=
	      NULL);
	shk_pool_close(d.p);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* A create-or-open (SHK_CREATE, no SHK_EXCL) of an existing pool with NULL
 * opts or zero geometry fields opens the stored pool ("on open 0 accepts
 * the stored value"); the defaults are for a new one only.  Failed with
 * SHK_ETYPE when the defaults were filled before the lookup. */
static void
t_create_open_defaults(void)
{
	char nm[64];
	shk_seg *seg;
	shk_pool *a = NULL, *b = NULL;
	shk_pool_opts o = SHK_POOL_OPTS_INIT;
	shk_pool_stats st = { .size = sizeof(st) };

	setup(nm, sizeof(nm), "pcod", &seg);
	o.block_len = 16;
	o.cap = 4;
	CHECK_OK(shk_pool_open(seg, "x", SHK_CREATE | SHK_EXCL, &o, &a));
	CHECK_OK(shk_pool_open(seg, "x", SHK_CREATE, NULL, &b));
	CHECK_OK(shk_pool_info(b, &st));
	CHECK_EQ(st.block_len, 16);
	CHECK_EQ(st.cap, 4);
	shk_pool_close(b);
	b = NULL;
	o = (shk_pool_opts)SHK_POOL_OPTS_INIT;
	o.cap = 4; /* one field given, the other stored */
	CHECK_OK(shk_pool_open(seg, "x", SHK_CREATE, &o, &b));
	shk_pool_close(b);
	b = NULL;
	o.cap = 0;
	o.block_len = 16;
	CHECK_OK(shk_pool_open(seg, "x", SHK_CREATE, &o, &b));
	shk_pool_close(b);
	b = NULL;
	CHECK_OK(shk_pool_open(seg, "x", 0, NULL, &b));
	shk_pool_close(b);
	b = NULL;
	/* a nonzero field still has to match */
	o.block_len = 0;
	o.cap = 8;
	CHECK_EQ(shk_pool_open(seg, "x", SHK_CREATE, &o, &b), SHK_ETYPE);
	CHECK(b == NULL);
	/* SHK_EXCL: the object exists */
	CHECK_EQ(shk_pool_open(seg, "x", SHK_CREATE | SHK_EXCL, NULL, &b),
		 SHK_EEXIST);
	/* SHK_EXCL without SHK_CREATE is still a misuse */
	CHECK_EQ(shk_pool_open(seg, "x", SHK_EXCL, NULL, &b), SHK_EINVAL);
	/* the caller's nonzero values are range-checked */
	o = (shk_pool_opts)SHK_POOL_OPTS_INIT;
	o.block_len = (1ull << 30) + 1;
	CHECK_EQ(shk_pool_open(seg, "x", SHK_CREATE, &o, &b), SHK_EINVAL);
	/* a new pool: the defaults */
	CHECK_EQ(shk_pool_open(seg, "y", 0, NULL, &b), SHK_ENOENT);
	CHECK_OK(shk_pool_open(seg, "y", SHK_CREATE, NULL, &b));
	CHECK_OK(shk_pool_info(b, &st));
	CHECK_EQ(st.block_len, 64);
	CHECK_EQ(st.cap, 64);
	shk_pool_close(b);
	shk_pool_close(a);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

TEST_MAIN({ "basic", t_basic }, { "procs", t_procs }, { "threads", t_threads },
	  { "kill", t_kill }, { "corrupt", t_corrupt },
	  { "describe_toctou", t_describe_toctou },
	  { "describe_busy", t_describe_busy },
	  { "create_open_defaults", t_create_open_defaults })
