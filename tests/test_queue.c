/* test_queue.c - the bounded MPMC queue: ordering, no loss, no duplicate
 * across real processes (and threads for TSan), blocking and timeouts,
 * killed and stopped producers and consumers, corruption, pollable fd. */
#include "harness.h"

#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "platform.h"
#include "queue.h"
#include "segment.h"

#if defined(SHK__TSAN) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define MAXP 8

/* State shared by the test's processes (anonymous shared mapping). */
struct shared {
	/* elements received by consumer i at count[8 * i] (own line each) */
	_Atomic uint64_t count[8 * MAXP];
	/* elements received after a later one of their producer: each one
	 * a dead consumer's claim delivered again (docs/queue.md) */
	_Atomic uint64_t late;
	/* set by consumer 0 once its queue is open (struct cfg, gate) */
	_Atomic uint32_t ready;
	uint64_t per_prod;
	_Atomic uint64_t bits[]; /* MAXP bitmaps of per_prod bits */
};

/* In every forked child: die with the test case (no orphans on timeout). */
static void
child_init(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static struct shared *
map_shared(uint64_t per_prod, size_t *len_out)
{
	size_t words = (size_t)((per_prod + 63) / 64);
	size_t len = sizeof(struct shared) + MAXP * words * 8;
	struct shared *s = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(s != MAP_FAILED);
	s->per_prod = per_prod;
	*len_out = len;
	return s;
}

static uint64_t
consumed(struct shared *s)
{
	uint64_t n = 0;

	for (int i = 0; i < MAXP; i++)
		n += atomic_load(&s->count[8 * i]);
	return n;
}

static _Atomic uint64_t *
bitmap(struct shared *s, uint32_t prod)
{
	return s->bits + (size_t)prod * ((s->per_prod + 63) / 64);
}

static uint32_t
chk(uint32_t prod, uint64_t seq)
{
	uint64_t x = (seq + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)prod << 40);

	x ^= x >> 29;
	return (uint32_t)(x * 0xbf58476d1ce4e5b9ull >> 32);
}

/* Element encodings: 8 bytes {prod:8 | seq:40 | chk:16}, or 16 and more
 * bytes {u32 prod, u32 chk, u64 seq, filler}. */
static void
encode(void *e, uint32_t len, uint32_t prod, uint64_t seq)
{
	if (len == 8) {
		uint64_t v = ((uint64_t)prod << 56) | (seq << 16) |
			     (chk(prod, seq) & 0xffff);
		memcpy(e, &v, 8);
	} else {
		uint32_t c = chk(prod, seq);
		memcpy(e, &prod, 4);
		memcpy((char *)e + 4, &c, 4);
		memcpy((char *)e + 8, &seq, 8);
		if (len > 16)
			memset((char *)e + 16, (int)(c & 0xff), len - 16);
	}
}

static void
decode(const void *e, uint32_t len, uint32_t *prod, uint64_t *seq)
{
	if (len == 8) {
		uint64_t v;
		memcpy(&v, e, 8);
		*prod = (uint32_t)(v >> 56);
		*seq = (v >> 16) & 0xffffffffffull;
		CHECK(*prod < MAXP);
		CHECK_EQ(v & 0xffff, chk(*prod, *seq) & 0xffff);
	} else {
		uint32_t c;
		memcpy(prod, e, 4);
		memcpy(&c, (const char *)e + 4, 4);
		memcpy(seq, (const char *)e + 8, 8);
		CHECK(*prod < MAXP);
		CHECK_EQ(c, chk(*prod, *seq));
		for (uint32_t i = 16; i < len; i++)
			CHECK_EQ(((const unsigned char *)e)[i], c & 0xff);
	}
}

struct cfg {
	const char *seg_name;
	const char *q_name;
	struct shared *s;
	shk_seg *seg; /* threads: the shared segment handle */
	shk_queue *q; /* threads: a handle opened by the main thread */
	uint32_t elem_len;
	uint32_t nprod;
	uint64_t total; /* elements that will be pushed in all */
	uint32_t id;
	/* consumer 0 must reach its crash point (its 10th claim: 9
	 * consumed before it): producers wait for its open, the other
	 * consumers until it consumed 9.  Under ASan in CI beside another
	 * run, consumer 0 was once descheduled while the others moved every
	 * element, and exited 0 instead of dying at its 10th claim */
	int gate;
};

/* With c->gate: consumer 0 says it is ready; producers wait for that, the
 * other consumers for its 9th element (10 s at most; it may then have
 * died). */
static void
gate_pass(const struct cfg *c, int consumer)
{
	int i;

	if (!c->gate)
		return;
	if (consumer && c->id == 0) {
		atomic_store(&c->s->ready, 1);
		return;
	}
	for (i = 0; i < 10000 && !(consumer ? atomic_load(&c->s->count[0]) >= 9
					    : atomic_load(&c->s->ready));
	     i++)
		usleep(1000);
}

static shk_queue *
open_q(const struct cfg *c, shk_seg **segp)
{
	shk_queue *q = NULL;
	shk_queue_opts o = SHK_QUEUE_OPTS_INIT;

	if (c->q) {
		*segp = c->seg;
		return c->q;
	}
	CHECK_OK(shk_seg_open(c->seg_name, 0, NULL, segp));
	o.elem_len = c->elem_len;
	CHECK_OK(shk_queue_open(*segp, c->q_name, 0, &o, &q));
	return q;
}

static void
close_q(const struct cfg *c, shk_seg *seg, shk_queue *q)
{
	if (c->q)
		return;
	shk_queue_close(q);
	shk_seg_close(seg);
}

static void
produce(const struct cfg *c, uint64_t n)
{
	shk_seg *seg;
	shk_queue *q = open_q(c, &seg);
	unsigned char e[64];
	uint64_t i;

	gate_pass(c, 0);
	for (i = 0; i < n; i++) {
		encode(e, c->elem_len, c->id, i);
		CHECK_OK(shk_queue_push(q, e, SHK_FOREVER));
	}
	close_q(c, seg, q);
}

static uint64_t
lost_of(shk_queue *q)
{
	shk_queue_stats st = { .size = sizeof(st) };

	CHECK_OK(shk_queue_info(q, &st));
	return st.lost;
}

/* Pops until everything pushed is received or counted lost; checks
 * checksums, per-producer order and duplicates.  An element that comes
 * after a later one of its producer is counted in s->late (the tests allow
 * one per consumer killed with a claim: its element is delivered again,
 * one lap later), not failed. */
static void
consume(const struct cfg *c)
{
	shk_seg *seg;
	shk_queue *q = open_q(c, &seg);
	unsigned char e[64];
	int64_t last[MAXP];
	uint32_t prod;
	uint64_t seq, old;
	int rc;

	gate_pass(c, 1);
	for (int i = 0; i < MAXP; i++)
		last[i] = -1;
	for (;;) {
		rc = shk_queue_pop(q, e, 20000000);
		if (rc == SHK_ETIMEDOUT) {
			if (consumed(c->s) + lost_of(q) >= c->total)
				break;
			continue;
		}
		CHECK_OK(rc);
		decode(e, c->elem_len, &prod, &seq);
		CHECK(prod < c->nprod && seq < c->s->per_prod);
		if ((int64_t)seq <= last[prod]) {
			atomic_fetch_add(&c->s->late, 1);
		} else {
			last[prod] = (int64_t)seq;
		}
		old = atomic_fetch_or(&bitmap(c->s, prod)[seq / 64],
				      (uint64_t)1 << (seq % 64));
		if (old & ((uint64_t)1 << (seq % 64)))
			TEST_FAIL("duplicate: producer %u seq %llu", prod,
				  (unsigned long long)seq);
		atomic_store_explicit(
			&c->s->count[8 * c->id],
			atomic_load_explicit(&c->s->count[8 * c->id],
					     memory_order_relaxed) +
				1,
			memory_order_relaxed);
	}
	close_q(c, seg, q);
}

/* Bits set for producer prod, below n. */
static uint64_t
count_bits(struct shared *s, uint32_t prod, uint64_t n)
{
	uint64_t k = 0, i;

	for (i = 0; i < n; i++)
		k += (atomic_load(&bitmap(s, prod)[i / 64]) >> (i % 64)) & 1;
	return k;
}

static void
setup(char *nm, size_t nmlen, const char *tag, shk_seg **seg, uint64_t seglen)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;

	so.len = seglen;
	test_name(nm, nmlen, tag);
	shk_seg_unlink(nm, NULL);
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &so, seg));
}

static shk_queue *
create_q(shk_seg *seg, const char *name, uint64_t cap, uint32_t elem_len)
{
	shk_queue_opts o = SHK_QUEUE_OPTS_INIT;
	shk_queue *q = NULL;

	o.cap = cap;
	o.elem_len = elem_len;
	CHECK_OK(shk_queue_open(seg, name, SHK_CREATE | SHK_EXCL, &o, &q));
	return q;
}

static void
t_basic(void)
{
	char nm[64], buf[128];
	shk_seg *seg;
	shk_queue *q, *q2 = NULL;
	shk_queue_opts o = SHK_QUEUE_OPTS_INIT;
	shk_queue_stats st = { .size = sizeof(st) };
	shk_obj_info info = { .size = sizeof(info) };
	uint64_t v, i;

	setup(nm, sizeof(nm), "qbasic", &seg, 0);
	q = create_q(seg, "q", 8, 8);
	CHECK_RC(shk_queue_pop(q, &v, 0), SHK_EAGAIN);
	for (i = 0; i < 8; i++)
		CHECK_OK(shk_queue_push(q, &i, 0));
	CHECK_RC(shk_queue_push(q, &i, 0), SHK_EAGAIN);
	CHECK_RC(shk_queue_push(q, &i, 1000000), SHK_ETIMEDOUT);
	CHECK_OK(shk_queue_info(q, &st));
	CHECK_EQ(st.len, 8);
	CHECK_EQ(st.cap, 8);
	CHECK_EQ(st.elem_len, 8);
	CHECK_EQ(st.lost, 0);
	CHECK_OK(shk_obj_stat(seg, "q", &info));
	CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "fill=8/8") != NULL);
	/* FIFO over several laps */
	for (i = 0; i < 8 * 5; i++) {
		CHECK_OK(shk_queue_pop(q, &v, 0));
		CHECK_EQ(v, i);
		v = i + 8;
		CHECK_OK(shk_queue_push(q, &v, 0));
	}
	/* a second handle sees the same queue */
	CHECK_OK(shk_queue_open(seg, "q", 0, NULL, &q2));
	CHECK_OK(shk_queue_pop(q2, &v, 0));
	CHECK_EQ(v, 40);
	shk_queue_close(q2);
	/* wrong element size, type, capacity, kind */
	o.elem_len = 16;
	CHECK_RC(shk_queue_open(seg, "q", 0, &o, &q2), SHK_ETYPE);
	CHECK(q2 == NULL);
	o.elem_len = 0;
	o.type_id = 7;
	CHECK_RC(shk_queue_open(seg, "q", 0, &o, &q2), SHK_ETYPE);
	o.type_id = 0;
	o.cap = 16;
	CHECK_RC(shk_queue_open(seg, "q", 0, &o, &q2), SHK_ETYPE);
	{
		shk_obj_desc d = SHK_OBJ_DESC_INIT;
		void *p;
		d.kind = SHK_KIND_BLOB;
		d.elem_len = 8;
		d.cap = 8;
		CHECK_OK(shk_obj_open(seg, "blob", SHK_CREATE, &d, NULL, &p));
		CHECK_RC(shk_queue_open(seg, "blob", 0, NULL, &q2), SHK_ETYPE);
	}
	/* bad arguments */
	o = (shk_queue_opts)SHK_QUEUE_OPTS_INIT;
	o.cap = 12;
	CHECK_RC(shk_queue_open(seg, "q3", SHK_CREATE, &o, &q2), SHK_EINVAL);
	o.size = 0;
	CHECK_RC(shk_queue_open(seg, "q3", SHK_CREATE, &o, &q2), SHK_EINVAL);
	CHECK_RC(shk_queue_open(seg, "q3", 0, NULL, &q2), SHK_ENOENT);
	CHECK_RC(shk_queue_open(NULL, "q3", 0, NULL, &q2), SHK_EINVAL);
	CHECK_RC(shk_queue_push(NULL, &v, 0), SHK_EINVAL);
	CHECK_RC(shk_queue_pop(q, NULL, 0), SHK_EINVAL);
	CHECK_RC(shk_queue_pop(q, &v, -5), SHK_EINVAL);
	CHECK_RC(shk_queue_info(q, NULL), SHK_EINVAL);
	CHECK_RC(shk_queue_fd(NULL), SHK_EINVAL);
	shk_queue_close(NULL);
	/* NULL opts create the defaults */
	CHECK_OK(shk_queue_open(seg, "dflt", SHK_CREATE, NULL, &q2));
	CHECK_OK(shk_queue_info(q2, &st));
	CHECK_EQ(st.cap, 1024);
	CHECK_EQ(st.elem_len, 8);
	shk_queue_close(q2);
	CHECK_OK(shk_seg_check(seg));
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* Runs np producers and nc consumers as processes; producer 0 runs with
 * SHK_CRASH=crash0 and consumer 0 with SHK_CRASH=crashc when given.
 * Returns the queue's lost count. */
static uint64_t
run_procs(const char *tag, uint32_t np, uint32_t nc, uint64_t per_prod,
	  uint32_t elem_len, uint64_t cap, const char *crash0,
	  const char *crashc, uint64_t total, struct shared **sp, size_t *slen)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	struct cfg c;
	pid_t pids[2 * MAXP];
	uint32_t i, n = 0;
	uint64_t lost;
	int st;

	setup(nm, sizeof(nm), tag, &seg, 0);
	q = create_q(seg, "q", cap, elem_len);
	memset(&c, 0, sizeof(c));
	c.seg_name = nm;
	c.q_name = "q";
	c.s = map_shared(per_prod, slen);
	c.elem_len = elem_len;
	c.gate = crashc != NULL;
	c.nprod = np;
	c.total = total;
	for (i = 0; i < nc; i++) {
		pids[n] = fork();
		CHECK(pids[n] >= 0);
		if (pids[n] == 0) {
			child_init();
			if (i == 0 && crashc)
				setenv("SHK_CRASH", crashc, 1);
			c.id = i;
			consume(&c);
			_exit(0);
		}
		n++;
	}
	for (i = 0; i < np; i++) {
		pids[n] = fork();
		CHECK(pids[n] >= 0);
		if (pids[n] == 0) {
			child_init();
			if (i == 0 && crash0)
				setenv("SHK_CRASH", crash0, 1);
			c.id = i;
			produce(&c, per_prod);
			_exit(0);
		}
		n++;
	}
	/* Reap in exit order: a killed child must not stay a zombie, which
	 * the liveness test counts as alive (platform.h). */
	for (i = 0; i < n; i++) {
		pid_t w;
		uint32_t j;

		do
			w = waitpid(-1, &st, 0);
		while (w < 0 && errno == EINTR);
		CHECK(w > 0);
		for (j = 0; j < n && pids[j] != w; j++)
			;
		CHECK(j < n);
		st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if ((j == 0 && crashc) || (j == nc && crash0))
			CHECK_EQ(st, 128 + SIGKILL);
		else if (st != 0) {
			for (j = 0; j < n; j++)
				kill(pids[j], SIGKILL);
			shk_seg_unlink(nm, NULL);
			TEST_FAIL("child %u exited with status %d", j, st);
		}
	}
	lost = lost_of(q);
	CHECK_OK(shk_seg_check(seg));
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
	*sp = c.s;
	return lost;
}

static void
mpmc_procs(const char *tag, uint32_t np, uint32_t nc, uint64_t total,
	   uint32_t elem_len, uint64_t cap)
{
	struct shared *s;
	size_t slen;
	uint64_t per = total / np, lost;
	int64_t t0 = test_now_ns();

	lost = run_procs(tag, np, nc, per, elem_len, cap, NULL, NULL, per * np,
			 &s, &slen);
	CHECK_EQ(lost, 0);
	CHECK_EQ(atomic_load(&s->late), 0);
	CHECK_EQ(consumed(s), per * np);
	for (uint32_t p = 0; p < np; p++)
		CHECK_EQ(count_bits(s, p, per), per);
	printf("  %uP%uC %u-byte elements, cap %llu: %llu elements in "
	       "%.2f s\n",
	       np, nc, elem_len, (unsigned long long)cap,
	       (unsigned long long)(per * np), (test_now_ns() - t0) / 1e9);
	fflush(stdout);
	munmap(s, slen);
}

static void
t_mpmc_procs_8(void)
{
	mpmc_procs("qm8", 2, 2, SANITIZED ? 200000 : test_scale(10000000), 8,
		   1024);
}

static void
t_mpmc_procs_24(void)
{
	mpmc_procs("qm24", 3, 2, SANITIZED ? 60000 : test_scale(1000000), 24,
		   64);
}

static void *
thr_produce(void *arg)
{
	struct cfg *c = arg;

	produce(c, c->s->per_prod);
	return NULL;
}

static void *
thr_consume(void *arg)
{
	consume(arg);
	return NULL;
}

static void
t_mpmc_threads(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	struct cfg c[6];
	pthread_t th[6];
	struct shared *s;
	size_t slen;
	uint32_t np = 3, nc = 3, i;
	uint64_t per = SANITIZED ? 20000 : test_scale(300000);

	setup(nm, sizeof(nm), "qthr", &seg, 0);
	q = create_q(seg, "q", 16, 16);
	s = map_shared(per, &slen);
	for (i = 0; i < np + nc; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].q_name = "q";
		c[i].s = s;
		c[i].seg = seg;
		c[i].elem_len = 16;
		c[i].nprod = np;
		c[i].total = np * per;
		c[i].id = i < np ? i : i - np;
		/* one handle per thread, opened here: the registry lock is
		 * per segment handle, so threads sharing one do not open
		 * objects concurrently */
		CHECK_OK(shk_queue_open(seg, "q", 0, NULL, &c[i].q));
		CHECK(pthread_create(&th[i], NULL,
				     i < np ? thr_produce : thr_consume,
				     &c[i]) == 0);
	}
	for (i = 0; i < np + nc; i++) {
		pthread_join(th[i], NULL);
		shk_queue_close(c[i].q);
	}
	CHECK_EQ(atomic_load(&s->late), 0);
	CHECK_EQ(lost_of(q), 0);
	CHECK_EQ(consumed(s), np * per);
	for (i = 0; i < np; i++)
		CHECK_EQ(count_bits(s, i, per), per);
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
	munmap(s, slen);
}

/* Polls (up to 5 s) until `want` threads sleep in pop (pop = 1) or push. */
static int
wait_waiters(shk_queue *q, int pop, uint32_t want)
{
	shk_queue_stats st = { .size = sizeof(st) };
	int i;

	for (i = 0; i < 5000; i++) {
		CHECK_OK(shk_queue_info(q, &st));
		if ((pop ? st.pop_waiters : st.push_waiters) == want)
			return 1;
		usleep(1000);
	}
	return 0;
}

/* Blocking: a consumer asleep on empty wakes when data arrives; a timeout
 * returns on time; a producer asleep on full wakes when space frees. */
static void
t_blocking(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	uint64_t v = 0;
	int64_t t0, el;
	pid_t pid;
	int i;

	setup(nm, sizeof(nm), "qblk", &seg, 0);
	q = create_q(seg, "q", 4, 8);
	t0 = test_now_ns();
	CHECK_RC(shk_queue_pop(q, &v, 30000000), SHK_ETIMEDOUT);
	el = test_now_ns() - t0;
	CHECK(el >= 30000000);
	CHECK(el < 30000000 + 500000000); /* generous: loaded CI box */

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		child_init();
		shk_seg *s2;
		shk_queue *q2;
		uint64_t x;
		CHECK_OK(shk_seg_open(nm, 0, NULL, &s2));
		CHECK_OK(shk_queue_open(s2, "q", 0, NULL, &q2));
		/* asleep on empty, then woken by the parent's push */
		CHECK_OK(shk_queue_pop(q2, &x, 5000000000LL));
		CHECK_EQ(x, 42);
		/* wait until the parent sleeps on full, then free space */
		CHECK(wait_waiters(q2, 0, 1));
		for (i = 0; i < 5; i++) {
			CHECK_OK(shk_queue_pop(q2, &x, 5000000000LL));
			CHECK_EQ(x, (uint64_t)i);
		}
		_exit(0);
	}
	CHECK(wait_waiters(q, 1, 1)); /* the child sleeps on empty */
	v = 42;
	CHECK_OK(shk_queue_push(q, &v, 0));
	{
		/* the child takes it before we fill the queue */
		shk_queue_stats st = { .size = sizeof(st) };
		for (i = 0; i < 5000; i++) {
			CHECK_OK(shk_queue_info(q, &st));
			if (st.len == 0)
				break;
			usleep(1000);
		}
		CHECK_EQ(st.len, 0);
	}
	for (i = 0; i < 4; i++) {
		v = (uint64_t)i;
		CHECK_OK(shk_queue_push(q, &v, 5000000000LL));
	}
	/* full now: sleeps until the child pops */
	v = 4;
	CHECK_RC(shk_queue_push(q, &v, 0), SHK_EAGAIN);
	CHECK_OK(shk_queue_push(q, &v, 5000000000LL));
	CHECK_EQ(test_wait(pid), 0);
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* A producer killed at each crash point: consumers carry on within about
 * T plus detection, exactly one element is lost, all else is delivered. */
static void
t_kill_producer(void)
{
	static const char *points[] = { "queue.push.claimed:100",
					"queue.push.advanced:100",
					"queue.push.written:100" };
	uint64_t per = SANITIZED ? 3000 : 20000;

	for (size_t k = 0; k < sizeof(points) / sizeof(points[0]); k++) {
		struct shared *s;
		size_t slen;
		int64_t t0 = test_now_ns();
		uint64_t lost;

		/* 99 delivered + 1 lost from producer 0 */
		lost = run_procs("qkp", 3, 2, per, 16, 16, points[k], NULL,
				 2 * per + 100, &s, &slen);
		CHECK_EQ(lost, 1);
		/* producer 0 delivered seqs 0..98; 99 died with it */
		CHECK_EQ(count_bits(s, 0, per), 99);
		CHECK_EQ(count_bits(s, 0, 99), 99);
		CHECK_EQ(count_bits(s, 1, per), per);
		CHECK_EQ(count_bits(s, 2, per), per);
		CHECK_EQ(atomic_load(&s->late), 0);
		printf("  %s: lost 1, the rest delivered in %.2f s\n",
		       points[k], (test_now_ns() - t0) / 1e9);
		fflush(stdout);
		munmap(s, slen);
	}
}

/* A consumer killed holding a claim: the producer one lap later delivers
 * its element again; nothing is lost or duplicated, and that one element
 * arrives after later ones of its producer.  Until 2026-11-25 evening the
 * repair dropped it (lost 1; this test fails against that code). */
static void
t_kill_consumer(void)
{
	/* the 10th claim: early, so that producers still come one lap
	 * later; at the 50th, consumer 0 of 2 once finished under ASan with
	 * fewer claims (exit 0, not killed) on a loaded machine */
	static const char *points[] = { "queue.pop.claimed:10",
					"queue.pop.copied:10" };
	uint64_t per = SANITIZED ? 3000 : 20000;

	for (size_t k = 0; k < sizeof(points) / sizeof(points[0]); k++) {
		struct shared *s;
		size_t slen;
		uint64_t lost, got = 0;

		lost = run_procs("qkc", 2, 2, per, 16, 16, NULL, points[k],
				 2 * per, &s, &slen);
		CHECK_EQ(lost, 0);
		for (uint32_t p = 0; p < 2; p++)
			got += count_bits(s, p, per);
		CHECK_EQ(got, 2 * per);
		CHECK_EQ(consumed(s), 2 * per);
		CHECK(atomic_load(&s->late) <= 1);
		munmap(s, slen);
	}
}

static void
stop_at_50th_claim(const char *point)
{
	static int hits;

	if (!strcmp(point, "queue.push.claimed") && ++hits == 50)
		raise(SIGSTOP);
}

/* A producer stopped (SIGSTOP) between claim and publish for 10 T is
 * alive: it is waited for, never skipped; after SIGCONT its element is
 * delivered and nothing is lost. */
static void
t_sigstop_producer(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	struct cfg c;
	struct shared *s;
	size_t slen;
	uint64_t per = 2000;
	pid_t stopped, other, cons;
	int st;

	setup(nm, sizeof(nm), "qstop", &seg, 0);
	q = create_q(seg, "q", 16, 16);
	memset(&c, 0, sizeof(c));
	c.seg_name = nm;
	c.q_name = "q";
	c.s = s = map_shared(per, &slen);
	c.elem_len = 16;
	c.nprod = 2;
	c.total = 2 * per;
	cons = fork();
	CHECK(cons >= 0);
	if (cons == 0) {
		child_init();
		consume(&c);
		_exit(0);
	}
	stopped = fork();
	CHECK(stopped >= 0);
	if (stopped == 0) {
		child_init();
		shk__queue_test_hook = stop_at_50th_claim;
		c.id = 0;
		produce(&c, per);
		_exit(0);
	}
	CHECK(waitpid(stopped, &st, WUNTRACED) == stopped);
	CHECK(WIFSTOPPED(st));
	other = fork();
	CHECK(other >= 0);
	if (other == 0) {
		child_init();
		c.id = 1;
		produce(&c, per);
		_exit(0);
	}
	/* 10 T: the consumer tests the owner repeatedly and finds it alive */
	usleep(10 * SHK__QUEUE_STUCK_NS / 1000);
	CHECK_EQ(lost_of(q), 0);
	CHECK(consumed(s) < 2 * per);
	kill(stopped, SIGCONT);
	CHECK_EQ(test_wait(stopped), 0);
	CHECK_EQ(test_wait(other), 0);
	CHECK_EQ(test_wait(cons), 0);
	CHECK_EQ(lost_of(q), 0);
	CHECK_EQ(count_bits(s, 0, per), per);
	CHECK_EQ(count_bits(s, 1, per), per);
	CHECK_EQ(atomic_load(&s->late), 0);
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
	munmap(s, slen);
}

/* ------------------------------------------------------------------ */
/* Pass-on: a wake taken by a sleeper that could not use it            */
/* ------------------------------------------------------------------ */

static const char *po_point; /* where the stalled party stops */
static _Atomic int po_armed, po_stalled, po_release;
static _Atomic int64_t po_t_last;    /* time of the last waiter's success */
static _Atomic int64_t po_t_unstall; /* the stalled party's publication */
static shk_queue *po_q;

static void
po_hook(const char *point)
{
	/* seq_cst throughout: test bookkeeping, not under test */
	if (po_point && !strcmp(point, po_point) &&
	    atomic_exchange(&po_armed, 0)) {
		atomic_store(&po_stalled, 1);
		while (!atomic_load(&po_release))
			usleep(100);
	}
}

static void *
po_waiter(void *arg)
{
	uint64_t v = 7;
	int pop = *(int *)arg;

	if (pop)
		CHECK_OK(shk_queue_pop(po_q, &v, SHK_FOREVER));
	else
		CHECK_OK(shk_queue_push(po_q, &v, SHK_FOREVER));
	atomic_store(&po_t_last, test_now_ns()); /* the later one stays */
	return NULL;
}

static void *
po_staller(void *arg)
{
	uint64_t v = 1;
	int pop = *(int *)arg;

	/* the other kind of party than the waiters */
	atomic_store(&po_armed, 1);
	if (pop)
		CHECK_OK(shk_queue_push(po_q, &v, SHK_FOREVER));
	else
		CHECK_OK(shk_queue_pop(po_q, &v, SHK_FOREVER));
	atomic_store(&po_t_unstall, test_now_ns());
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Two waiters sleep (SHK_SPIN_NS=0).  pop side: producer A claims cell p
 * and stalls; a push at p + 1 wakes one consumer, which finds p still
 * being written and sleeps again; A then publishes p and wakes one
 * consumer.  The other must get p + 1 at once, not at its next 10 ms
 * dead-owner slice.  push side, mirrored: a full queue, consumer X stalls
 * reading cell p, a pop of p + 1 wakes a producer that finds p still
 * being read.  Returns the median over the trials of the time from the
 * stalled party's publication to the second waiter's success.
 */
static int64_t
pass_on_trials(int pop)
{
	enum { TRIALS = 7 };
	char nm[64];
	shk_seg *seg;
	struct shk__waitpoint *wp;
	int64_t d[TRIALS];
	uint64_t v = 2;
	int t;

	setup(nm, sizeof(nm), pop ? "qpo" : "qpu", &seg, 0);
	po_q = create_q(seg, "q", pop ? 8 : 2, 8);
	wp = pop ? &po_q->hdr->not_empty : &po_q->hdr->not_full;
	po_point = pop ? "queue.push.claimed" : "queue.pop.claimed";
	shk__queue_test_hook = po_hook;
	for (t = 0; t < TRIALS; t++) {
		pthread_t w1, w2, st;
		int64_t t0;

		atomic_store(&po_stalled, 0);
		atomic_store(&po_release, 0);
		if (!pop) /* full: two elements in two cells */
			for (int k = 0; k < 2; k++)
				CHECK_OK(shk_queue_push(po_q, &v, 0));
		CHECK(pthread_create(&w1, NULL, po_waiter, &pop) == 0);
		CHECK(pthread_create(&w2, NULL, po_waiter, &pop) == 0);
		t0 = test_now_ns();
		/* relaxed: polling a count */
		while (atomic_load_explicit(&wp->waiters,
					    memory_order_relaxed) < 2) {
			CHECK(test_now_ns() - t0 < 5000000000LL);
			usleep(100);
		}
		CHECK(pthread_create(&st, NULL, po_staller, &pop) == 0);
		while (!atomic_load(&po_stalled))
			usleep(50);
		/* the other side's operation on the next cell wakes one
		 * waiter, which cannot proceed and sleeps again */
		if (pop)
			CHECK_OK(shk_queue_push(po_q, &v, 0));
		else
			CHECK_OK(shk_queue_pop(po_q, &v, 0));
		usleep(2000);
		atomic_store(&po_release, 1);
		CHECK(pthread_join(st, NULL) == 0);
		CHECK(pthread_join(w1, NULL) == 0);
		CHECK(pthread_join(w2, NULL) == 0);
		d[t] = atomic_load(&po_t_last) - atomic_load(&po_t_unstall);
		/* empty again (push side: the two waiters' elements) */
		while (shk_queue_pop(po_q, &v, 0) == 0)
			;
	}
	shk__queue_test_hook = NULL;
	shk_queue_close(po_q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
	qsort(d, TRIALS, sizeof(d[0]), cmp_i64);
	return d[TRIALS / 2];
}

static void
t_pass_on(void)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		int64_t pop_ns, push_ns;

		child_init();
		/* a fresh process reads it (wait.c), so waiters sleep */
		setenv("SHK_SPIN_NS", "0", 1);
		pop_ns = pass_on_trials(1);
		push_ns = pass_on_trials(0);
		printf("  pass_on: median %.3f ms (pop side), %.3f ms (push "
		       "side) from the stalled party's publication to the "
		       "second waiter's success\n",
		       pop_ns / 1e6, push_ns / 1e6);
		/* without the pass-on rule, about 8 ms: the rest of the
		 * sleeper's 10 ms slice */
		CHECK(pop_ns < 3000000);
		CHECK(push_ns < 3000000);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 0);
}

/* Scribbled control words give SHK_ECORRUPT, never a crash. */
static void
t_corrupt(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q, *q2 = NULL;
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__queue_hdr *h;
	struct shk__queue_cell *cell;
	uint64_t v = 1, save;

	setup(nm, sizeof(nm), "qcor", &seg, 0);
	q = create_q(seg, "q", 8, 8);
	CHECK_OK(shk_queue_push(q, &v, 0));
	CHECK_OK(shk_obj_stat(seg, "q", &info));
	h = (struct shk__queue_hdr *)((char *)shk_seg_base(seg) + info.off);
	cell = (struct shk__queue_cell *)((char *)h + SHK__QUEUE_HDR_LEN);
	save = atomic_load(&cell->ctl);
	/* invalid state */
	atomic_store(&cell->ctl, save | (7ull << SHK__QC_ST_SHIFT));
	CHECK_RC(shk_queue_open(seg, "q", 0, NULL, &q2), SHK_ECORRUPT);
	CHECK(q2 == NULL);
	CHECK_RC(shk_queue_pop(q, &v, 0), SHK_ECORRUPT);
	CHECK_RC(shk_queue_pop(q, &v, 1000000), SHK_ECORRUPT);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	/* position of another cell */
	atomic_store(&cell->ctl, save + (3ull << SHK__QC_POS_SHIFT));
	CHECK_RC(shk_queue_pop(q, &v, 0), SHK_ECORRUPT);
	CHECK_RC(shk_queue_open(seg, "q", 0, NULL, &q2), SHK_ECORRUPT);
	atomic_store(&cell->ctl, save);
	/* positions far apart */
	atomic_store(&h->dequeue_pos, 1000);
	CHECK_RC(shk_queue_open(seg, "q", 0, NULL, &q2), SHK_ECORRUPT);
	atomic_store(&h->dequeue_pos, 0);
	/* header */
	h->cell_len = 4096;
	CHECK_RC(shk_queue_open(seg, "q", 0, NULL, &q2), SHK_ECORRUPT);
	h->cell_len = 16;
	CHECK_OK(shk_queue_open(seg, "q", 0, NULL, &q2));
	CHECK_OK(shk_queue_pop(q2, &v, 0));
	CHECK_EQ(v, 1);
	shk_queue_close(q2);
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/*
 * A peer scribbles a position forward by laps after our open.  The cell
 * under the forged position then lies a lap or more behind it, which no
 * run of the protocol leaves (queue.c, push_try()/pop_try()): a blocking
 * call must say SHK_ECORRUPT instead of taking the queue for full (push)
 * or empty (pop) until its deadline, which is never for SHK_FOREVER.
 */
static void
t_corrupt_positions(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__queue_hdr *h;
	shk_queue *q2 = NULL;
	struct pollfd pfd;
	uint64_t v = 1;

	setup(nm, sizeof(nm), "qcpos", &seg, 0);
	q = create_q(seg, "q", 8, 8);
	CHECK_OK(shk_queue_push(q, &v, 0)); /* enq 1, deq 0 */
	CHECK_OK(shk_obj_stat(seg, "q", &info));
	h = (struct shk__queue_hdr *)((char *)shk_seg_base(seg) + info.off);
	/* enqueue_pos four laps ahead: cell 1 is (FREE, 1) */
	atomic_store(&h->enqueue_pos, 1 + 4 * 8);
	CHECK_RC(shk_queue_push(q, &v, 50000000), SHK_ECORRUPT);
	/* one lap ahead: the cell is still FREE for the lap before */
	atomic_store(&h->enqueue_pos, 1 + 8);
	CHECK_RC(shk_queue_push(q, &v, 50000000), SHK_ECORRUPT);
	CHECK_RC(shk_queue_push(q, &v, SHK_FOREVER), SHK_ECORRUPT);
	atomic_store(&h->enqueue_pos, 1);
	/* dequeue_pos one lap ahead: cell 0 is (FULL, 0), which only its
	 * consumer's claim lets a position pass */
	atomic_store(&h->dequeue_pos, 8);
	CHECK_RC(shk_queue_pop(q, &v, 50000000), SHK_ECORRUPT);
	CHECK_RC(shk_queue_pop(q, &v, SHK_FOREVER), SHK_ECORRUPT);
	/* and further: cell 2 is (FREE, 2) */
	atomic_store(&h->dequeue_pos, 2 + 3 * 8);
	CHECK_RC(shk_queue_pop(q, &v, 0), SHK_ECORRUPT);
	/* (an open now fails on the positions) */
	CHECK_RC(shk_queue_open(seg, "q", 0, NULL, &q2), SHK_ECORRUPT);
	/* a pollable fd armed on the forged position is readable, so a
	 * poller pops and learns of it (it used to read as empty) */
	pfd.fd = shk_queue_fd(q);
	CHECK_OK(pfd.fd);
	pfd.events = POLLIN;
	CHECK_EQ(poll(&pfd, 1, 0), 1);
	CHECK_RC(shk_queue_pop(q, &v, 0), SHK_ECORRUPT);
	/* repaired positions: the queue works again */
	atomic_store(&h->dequeue_pos, 0);
	v = 0;
	CHECK_OK(shk_queue_pop(q, &v, 0));
	CHECK_EQ(v, 1);
	CHECK_RC(shk_queue_pop(q, &v, 0), SHK_EAGAIN);
	/* the fd of a sound, empty queue is quiet again */
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

static void
die_at_pop_claim(const char *point)
{
	if (!strcmp(point, "queue.pop.claimed"))
		raise(SIGKILL);
}

/* A consumer killed between its claim and advancing dequeue_pos, on a
 * full queue, lets a producer repair the claim one lap ahead of
 * dequeue_pos: enqueue_pos = dequeue_pos + cap + 1 is a legal state.  A
 * later open must accept it (it took it for forged positions, SHK_ECORRUPT,
 * seen in test_queue random_kills under valgrind), and a consumer passes
 * the repaired cell.  The repair delivers the dead claim's element again,
 * as the element of position cap (so the queue stays full and the
 * producer's own push times out): the survivors arrive in order, then it.
 * Until 2026-11-25 evening the repair dropped it (lost 1) and the push
 * went through. */
static void
t_dead_consumer_positions(void)
{
	char nm[64];
	shk_seg *seg, *seg2;
	shk_queue *q, *q2 = NULL;
	shk_queue_stats st = { .size = sizeof(st) };
	struct shk__queue_hdr *h;
	shk_obj_info info = { .size = sizeof(info) };
	uint64_t v, i;
	pid_t pid;

	setup(nm, sizeof(nm), "qdcp", &seg, 0);
	q = create_q(seg, "q", 16, 8);
	for (v = 0; v < 16; v++)
		CHECK_OK(shk_queue_push(q, &v, 0));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs;
		shk_queue *cq = NULL;

		child_init();
		CHECK_OK(shk_seg_open(nm, 0, NULL, &cs));
		CHECK_OK(shk_queue_open(cs, "q", 0, NULL, &cq));
		shk__queue_test_hook = die_at_pop_claim;
		shk_queue_pop(cq, &v, 0);
		_exit(3); /* not reached: the hook kills it */
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	CHECK_OK(shk_obj_stat(seg, "q", &info));
	h = (struct shk__queue_hdr *)((char *)shk_seg_base(seg) + info.off);
	CHECK_EQ(atomic_load(&h->dequeue_pos), 0); /* claimed, not advanced */
	/* full; the dead claim of cell 0 is repaired after T: its element
	 * delivered again at position 16, so the queue is still full */
	v = 16;
	CHECK_RC(shk_queue_push(q, &v, 200000000), SHK_ETIMEDOUT);
	CHECK_EQ(atomic_load(&h->enqueue_pos), 17);
	CHECK_EQ(atomic_load(&h->dequeue_pos), 0);
	CHECK_OK(shk_queue_info(q, &st));
	CHECK_EQ(st.lost, 0);
	CHECK_EQ(st.len, 16); /* the estimate is capped at the capacity */
	/* a new opener (another handle on the segment) and the checker
	 * accept the state */
	CHECK_OK(shk_seg_open(nm, 0, NULL, &seg2));
	CHECK_OK(shk_queue_open(seg2, "q", 0, NULL, &q2));
	CHECK_OK(shk_seg_check(seg2));
	for (i = 1; i <= 16; i++) {
		CHECK_OK(shk_queue_pop(q2, &v, 0));
		CHECK_EQ(v, i % 16);
	}
	CHECK_RC(shk_queue_pop(q2, &v, 0), SHK_EAGAIN);
	v = 16;
	CHECK_OK(shk_queue_push(q, &v, 0));
	CHECK_OK(shk_queue_pop(q2, &v, 0));
	CHECK_EQ(v, 16);
	shk_queue_close(q2);
	shk_seg_close(seg2);
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* Runs one push (push != 0) or pop of *v on queue "q" of segment nm in a
 * child with SHK_CRASH=crash; returns its wait status (128 + signal). */
static int
crash_child(const char *nm, const char *crash, int push, uint64_t v)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs;
		shk_queue *cq = NULL;

		child_init();
		setenv("SHK_CRASH", crash, 1);
		CHECK_OK(shk_seg_open(nm, 0, NULL, &cs));
		CHECK_OK(shk_queue_open(cs, "q", 0, NULL, &cq));
		if (push)
			shk_queue_push(cq, &v, 0);
		else
			shk_queue_pop(cq, &v, 0);
		_exit(3); /* the crash point did not kill us */
	}
	return test_wait(pid);
}

/*
 * Who delivers a dead consumer's element again (cap 2): a consumer killed
 * with its claim READING at position 0 (dequeue_pos moved on), then a
 * producer killed after claiming position 1 (enqueue_pos stays 1).  A live
 * pop passes the dead producer's cell and reaches dequeue_pos 2, where
 * cell 0 holds the dead claim of lap 0: with enqueue_pos at 1 it must not
 * publish it again (dequeue_pos would reach enqueue_pos + 2, beyond I3,
 * and the next open would take the positions for damage); it waits, and
 * the next push delivers it.  Found by review (2026-11-25): republishing
 * by any consumer passes the other tests.
 */
static void
t_redeliver_behind(void)
{
	char nm[64];
	shk_seg *seg, *seg2;
	shk_queue *q, *q2 = NULL;
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__queue_hdr *h;
	uint64_t v;

	setup(nm, sizeof(nm), "qrb", &seg, 0);
	q = create_q(seg, "q", 2, 8);
	CHECK_OK(shk_obj_stat(seg, "q", &info));
	h = (struct shk__queue_hdr *)((char *)shk_seg_base(seg) + info.off);
	v = 100;
	CHECK_OK(shk_queue_push(q, &v, 0)); /* position 0 */
	CHECK_EQ(crash_child(nm, "queue.pop.copied:1", 0, 0), 128 + SIGKILL);
	CHECK_EQ(crash_child(nm, "queue.push.claimed:1", 1, 1), 128 + SIGKILL);
	CHECK_EQ(atomic_load(&h->enqueue_pos), 1);
	/* passes the dead producer's cell (after T), then waits */
	CHECK_RC(shk_queue_pop(q, &v, 200000000), SHK_ETIMEDOUT);
	CHECK_EQ(atomic_load(&h->dequeue_pos), 2);
	CHECK_OK(shk_seg_open(nm, 0, NULL, &seg2));
	CHECK_OK(shk_queue_open(seg2, "q", 0, NULL, &q2));
	shk_queue_close(q2);
	shk_seg_close(seg2);
	CHECK_OK(shk_seg_check(seg));
	/* the next push finds the dead claim at its position and delivers
	 * 100 again, then its own */
	v = 200;
	CHECK_OK(shk_queue_push(q, &v, 1000000000));
	CHECK_OK(shk_queue_pop(q, &v, 1000000000));
	CHECK_EQ(v, 100);
	CHECK_OK(shk_queue_pop(q, &v, 1000000000));
	CHECK_EQ(v, 200);
	CHECK_RC(shk_queue_pop(q, &v, 0), SHK_EAGAIN);
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* A consumer killed with its claim READING at position 0 of a cap-2 queue,
 * then one more push (enqueue_pos 2 = 0 + cap): a live pop takes the
 * element of position 1, then finds the dead claim a lap behind with
 * enqueue_pos at its next lap, publishes it again itself (no producer has
 * to come) and receives it.  Before 2026-11-25 evening it was lost. */
static void
t_redeliver_by_consumer(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	shk_queue_stats st = { .size = sizeof(st) };
	uint64_t v;

	setup(nm, sizeof(nm), "qrc", &seg, 0);
	q = create_q(seg, "q", 2, 8);
	v = 100;
	CHECK_OK(shk_queue_push(q, &v, 0));
	CHECK_EQ(crash_child(nm, "queue.pop.copied:1", 0, 0), 128 + SIGKILL);
	v = 101;
	CHECK_OK(shk_queue_push(q, &v, 0));
	CHECK_OK(shk_queue_pop(q, &v, 1000000000));
	CHECK_EQ(v, 101);
	CHECK_OK(shk_queue_pop(q, &v, 1000000000));
	CHECK_EQ(v, 100);
	CHECK_RC(shk_queue_pop(q, &v, 0), SHK_EAGAIN);
	CHECK_OK(shk_queue_info(q, &st));
	CHECK_EQ(st.lost, 0);
	CHECK_OK(shk_seg_check(seg));
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* The pollable fd becomes readable when a producer in another process
 * pushes, and is quiet again once the queue was drained. */
static void
t_fd(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	struct pollfd pfd;
	uint64_t v;
	pid_t pid;
	int fd, round, next[2];

	setup(nm, sizeof(nm), "qfd", &seg, 0);
	q = create_q(seg, "q", 64, 8);
	fd = shk_queue_fd(q);
	CHECK_OK(fd);
	CHECK_EQ(shk_queue_fd(q), fd);
	pfd.fd = fd;
	pfd.events = POLLIN;
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	/* the producer starts a round after the consumer has checked that
	 * the last one left the queue empty (a sleep alone raced with a
	 * slow consumer under valgrind) */
	CHECK(pipe(next) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		child_init();
		shk_seg *s2;
		shk_queue *q2;
		char c;
		CHECK_OK(shk_seg_open(nm, 0, NULL, &s2));
		CHECK_OK(shk_queue_open(s2, "q", 0, NULL, &q2));
		for (round = 0; round < 20; round++) {
			if (round > 0)
				CHECK(read(next[0], &c, 1) == 1);
			usleep(5000);
			for (v = 0; v < 3; v++)
				CHECK_OK(shk_queue_push(q2, &v, SHK_FOREVER));
		}
		_exit(0);
	}
	for (round = 0; round < 20; round++) {
		int n = 0;
		CHECK_EQ(poll(&pfd, 1, 5000), 1);
		while (n < 3) {
			int rc = shk_queue_pop(q, &v, 0);
			if (rc == SHK_EAGAIN) {
				CHECK_EQ(poll(&pfd, 1, 5000), 1);
				continue;
			}
			CHECK_OK(rc);
			CHECK_EQ(v, (uint64_t)n);
			n++;
		}
		CHECK_RC(shk_queue_pop(q, &v, 0), SHK_EAGAIN);
		CHECK(write(next[1], "n", 1) == 1);
	}
	CHECK_EQ(test_wait(pid), 0);
	close(next[0]);
	close(next[1]);
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

static pid_t
spawn(struct cfg *c, int producer, uint32_t id, _Atomic uint64_t *pushes)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid)
		return pid;
	child_init();
	c->id = id;
	if (producer) {
		shk_seg *seg;
		shk_queue *q = open_q(c, &seg);
		unsigned char e[16];
		for (uint64_t i = 0; i < c->s->per_prod; i++) {
			encode(e, 16, id, i);
			CHECK_OK(shk_queue_push(q, e, SHK_FOREVER));
			atomic_store(&pushes[id], i + 1);
		}
	} else {
		consume(c); /* total is unreachable: runs until killed */
	}
	_exit(0);
}

/* Random-time SIGKILLs of producers and consumers while traffic flows:
 * never a duplicate, per-producer order kept, every recorded push
 * delivered except at most one element per kill. */
static void
t_random_kills(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	struct cfg c;
	struct shared *s;
	size_t slen;
	_Atomic uint64_t *pushes;
	pid_t prod[2], cons[2];
	uint32_t next_id = 2, pkills = 0, ckills = 0, round, i;
	uint64_t per = SANITIZED ? 5000 : 40000, recorded = 0, bits = 0, lost;
	unsigned seed = (unsigned)getpid();

	setup(nm, sizeof(nm), "qrk", &seg, 0);
	q = create_q(seg, "q", 16, 16);
	memset(&c, 0, sizeof(c));
	c.seg_name = nm;
	c.q_name = "q";
	c.s = s = map_shared(per, &slen);
	c.elem_len = 16;
	c.nprod = MAXP;
	c.total = UINT64_MAX;
	pushes = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(pushes != MAP_FAILED);
	for (i = 0; i < 2; i++) {
		prod[i] = spawn(&c, 1, i, pushes);
		cons[i] = spawn(&c, 0, 0, pushes);
	}
	for (round = 0; round < 10; round++) {
		usleep(5000 + rand_r(&seed) % 25000);
		i = rand_r(&seed) % 2;
		if (round % 2 == 0 && next_id < MAXP) {
			kill(prod[i], SIGKILL);
			if (test_wait(prod[i]) == 128 + SIGKILL)
				pkills++;
			prod[i] = spawn(&c, 1, next_id++, pushes);
		} else {
			kill(cons[i], SIGKILL);
			test_wait(cons[i]);
			ckills++;
			cons[i] = spawn(&c, 0, 0, pushes);
		}
	}
	for (i = 0; i < 2; i++)
		CHECK_EQ(test_wait(prod[i]), 0);
	for (i = 0; i < 2; i++) {
		kill(cons[i], SIGKILL);
		test_wait(cons[i]);
		ckills++;
	}
	/* drain what is left as one more consumer */
	{
		unsigned char e[16];
		uint32_t pr;
		uint64_t seq, old;
		int rc, idle = 0;
		while (idle < 3) {
			rc = shk_queue_pop(q, e, 50000000);
			if (rc == SHK_ETIMEDOUT) {
				idle++;
				continue;
			}
			CHECK_OK(rc);
			decode(e, 16, &pr, &seq);
			old = atomic_fetch_or(&bitmap(s, pr)[seq / 64],
					      (uint64_t)1 << (seq % 64));
			CHECK(!(old & ((uint64_t)1 << (seq % 64))));
		}
	}
	lost = lost_of(q);
	for (i = 0; i < MAXP; i++) {
		recorded += atomic_load(&pushes[i]);
		bits += count_bits(s, i, per);
	}
	printf("  %u producer and %u consumer kills: %llu pushes recorded, "
	       "%llu received (%llu late), %llu lost\n",
	       pkills, ckills, (unsigned long long)recorded,
	       (unsigned long long)bits,
	       (unsigned long long)atomic_load(&s->late),
	       (unsigned long long)lost);
	fflush(stdout);
	CHECK(lost <= pkills + ckills);
	CHECK(atomic_load(&s->late) <= ckills);
	CHECK(bits + lost + ckills >= recorded);
	CHECK(bits <= recorded + pkills);
	CHECK_OK(shk_seg_check(seg));
	shk_queue_close(q);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
	munmap(s, slen);
	munmap((void *)pushes, 4096);
}

/* A create-or-open with zero fields racing a creator of another geometry
 * (that creates the queue between our lookup and our creation): our
 * creation then finds its queue, and the lookup is tried again, so the
 * open succeeds and never says SHK_ETYPE.  A review measured 6% SHK_ETYPE
 * in this loop when the lookup was not retried (2026-11-25); the helper
 * (shk__obj_open_dflt) serves the stack and the pool too. */
static void
t_create_open_race(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *q;
	long ok = 0, etype = 0;
	int64_t t0;
	pid_t pid;
	int rc;

	setup(nm, sizeof(nm), "qcor", &seg, 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
		shk_seg *cs;

		child_init();
		CHECK_OK(shk_seg_open(nm, 0, NULL, &cs));
		qo.elem_len = 16;
		qo.cap = 64;
		for (;;) {
			if (!shk_queue_open(cs, "q", SHK_CREATE, &qo, &q))
				shk_queue_close(q);
			shk_obj_remove(cs, "q");
		}
	}
	t0 = test_now_ns();
	while (test_now_ns() - t0 < 500000000LL) {
		rc = shk_queue_open(seg, "q", SHK_CREATE, NULL, &q);
		if (rc == 0) {
			ok++;
			shk_queue_close(q);
		} else if (rc == SHK_ETYPE) {
			etype++;
		} else {
			CHECK_OK(rc);
		}
		shk_obj_remove(seg, "q");
	}
	kill(pid, SIGKILL);
	test_wait(pid);
	printf("  %ld opens, %ld SHK_ETYPE\n", ok, etype);
	CHECK(ok > 0);
	CHECK_EQ(etype, 0);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* A create-or-open (SHK_CREATE, no SHK_EXCL) of an existing queue with NULL
 * opts or zero geometry fields opens the stored queue ("on open 0 accepts
 * the stored value"); the defaults are for a new one only.  Failed with
 * SHK_ETYPE when the defaults were filled before the lookup. */
static void
t_create_open_defaults(void)
{
	char nm[64];
	shk_seg *seg;
	shk_queue *a = NULL, *b = NULL;
	shk_queue_opts o = SHK_QUEUE_OPTS_INIT;
	shk_queue_stats st = { .size = sizeof(st) };

	setup(nm, sizeof(nm), "qcod", &seg, 1 << 20);
	o.elem_len = 16;
	o.cap = 4;
	CHECK_OK(shk_queue_open(seg, "x", SHK_CREATE | SHK_EXCL, &o, &a));
	CHECK_OK(shk_queue_open(seg, "x", SHK_CREATE, NULL, &b));
	CHECK_OK(shk_queue_info(b, &st));
	CHECK_EQ(st.elem_len, 16);
	CHECK_EQ(st.cap, 4);
	shk_queue_close(b);
	b = NULL;
	o = (shk_queue_opts)SHK_QUEUE_OPTS_INIT;
	o.cap = 4; /* one field given, the other stored */
	CHECK_OK(shk_queue_open(seg, "x", SHK_CREATE, &o, &b));
	shk_queue_close(b);
	b = NULL;
	o.cap = 0;
	o.elem_len = 16;
	CHECK_OK(shk_queue_open(seg, "x", SHK_CREATE, &o, &b));
	shk_queue_close(b);
	b = NULL;
	CHECK_OK(shk_queue_open(seg, "x", 0, NULL, &b));
	shk_queue_close(b);
	b = NULL;
	/* a nonzero field still has to match */
	o.elem_len = 0;
	o.cap = 8;
	CHECK_EQ(shk_queue_open(seg, "x", SHK_CREATE, &o, &b), SHK_ETYPE);
	CHECK(b == NULL);
	/* SHK_EXCL: the object exists */
	CHECK_EQ(shk_queue_open(seg, "x", SHK_CREATE | SHK_EXCL, NULL, &b),
		 SHK_EEXIST);
	/* SHK_EXCL without SHK_CREATE is still a misuse */
	CHECK_EQ(shk_queue_open(seg, "x", SHK_EXCL, NULL, &b), SHK_EINVAL);
	/* the caller's nonzero values are range-checked */
	o = (shk_queue_opts)SHK_QUEUE_OPTS_INIT;
	o.cap = 3; /* not a power of two */
	CHECK_EQ(shk_queue_open(seg, "x", SHK_CREATE, &o, &b), SHK_EINVAL);
	/* a new queue: the defaults */
	CHECK_EQ(shk_queue_open(seg, "y", 0, NULL, &b), SHK_ENOENT);
	CHECK_OK(shk_queue_open(seg, "y", SHK_CREATE, NULL, &b));
	CHECK_OK(shk_queue_info(b, &st));
	CHECK_EQ(st.elem_len, 8);
	CHECK_EQ(st.cap, 1024);
	shk_queue_close(b);
	shk_queue_close(a);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

TEST_MAIN({ "basic", t_basic }, { "mpmc_procs_8", t_mpmc_procs_8 },
	  { "mpmc_procs_24", t_mpmc_procs_24 },
	  { "mpmc_threads", t_mpmc_threads }, { "blocking", t_blocking },
	  { "kill_producer", t_kill_producer },
	  { "kill_consumer", t_kill_consumer },
	  { "redeliver_behind", t_redeliver_behind },
	  { "redeliver_by_consumer", t_redeliver_by_consumer },
	  { "sigstop_producer", t_sigstop_producer }, { "corrupt", t_corrupt },
	  { "corrupt_positions", t_corrupt_positions },
	  { "dead_consumer_positions", t_dead_consumer_positions },
	  { "fd", t_fd }, { "pass_on", t_pass_on },
	  { "random_kills", t_random_kills },
	  { "create_open_defaults", t_create_open_defaults },
	  { "create_open_race", t_create_open_race })
