/*
 * bench_queue - shmkit's bounded MPMC queue, P producers and C consumers
 * as pinned processes, beside a same-run baseline: a bounded ring of
 * 8-byte elements under one process-shared pthread mutex (the classic
 * lock-based MPMC queue), with the same capacity and the same busy-poll
 * retry loop.  Elements are 8 bytes: producer index << 40 | sequence;
 * each consumer checks that each producer's sequence numbers it sees rise.
 *
 *   bench_queue            1P1C and 2P2C; also 4P4C with >= 8 CPUs and
 *                          8P8C with >= 16 CPUs
 *   bench_queue P C ...    the given (producers, consumers) pairs
 *
 * Ratio = shmkit / baseline in Mmsg/s: above 1, shmkit is faster.
 *
 * Also pool ops/s (one op = shk_pool_alloc + write 8 bytes + shk_pool_free,
 * 1024 blocks of 64 B) with 1 and 2 processes, beside a free-index stack
 * under a process-shared pthread mutex, and (1 process) beside glibc
 * malloc(64)/free (DESIGN §9: within 2x).  The stack's rows are in
 * bench_structs.
 */
#include "baselines.h"

#include "shmkit.h"

#define QCAP 4096u
#define SEG_LEN ((uint64_t)8 << 20)
#define MAXP 32

static char seg_name[64];
#define MAX_ROUNDS 99 /* bench_runs() is at most 99 */

static int failures;

static void
on_alarm(int sig)
{
	if (seg_name[0])
		shk_seg_unlink(seg_name, NULL);
	_exit(3);
}

struct mutex_q {
	pthread_mutex_t lock;
	uint64_t head, tail;
	uint64_t slot[QCAP];
};

struct qctx {
	int use_shk;
	int nprod;
	shk_seg *seg;
	int own_seg;
	shk_queue *q;
	struct mutex_q *mq;
	uint64_t seq;
	uint64_t last[MAXP]; /* consumer: last sequence seen per producer */
	int err;
};

static int
mq_push(struct mutex_q *m, uint64_t v)
{
	int ok;

	pthread_mutex_lock(&m->lock);
	ok = m->tail - m->head < QCAP;
	if (ok)
		m->slot[m->tail++ % QCAP] = v;
	pthread_mutex_unlock(&m->lock);
	return ok ? 0 : SHK_EAGAIN;
}

static int
mq_pop(struct mutex_q *m, uint64_t *v)
{
	int ok;

	pthread_mutex_lock(&m->lock);
	ok = m->tail != m->head;
	if (ok)
		*v = m->slot[m->head++ % QCAP];
	pthread_mutex_unlock(&m->lock);
	return ok ? 0 : SHK_EAGAIN;
}

static int
q_setup(void *ctx, int party, int is_producer)
{
	struct qctx *c = (struct qctx *)ctx;
	shk_queue_opts o = SHK_QUEUE_OPTS_INIT;
	int rc;

	memset(c->last, 0xff, sizeof(c->last));
	if (!c->use_shk)
		return 0;
	rc = bench_party_seg(seg_name, party, &c->seg, &c->own_seg);
	if (rc != 0)
		return c->err = rc;
	o.elem_len = 8;
	o.cap = QCAP;
	rc = shk_queue_open(c->seg, "q", 0, &o, &c->q);
	return rc != 0 ? (c->err = rc) : 0;
}

static void
q_fini(void *ctx, int party, int is_producer)
{
	struct qctx *c = (struct qctx *)ctx;

	shk_queue_close(c->q);
	c->q = NULL;
	if (c->own_seg)
		shk_seg_close(c->seg);
}

static int
q_produce(void *ctx, int i, long n)
{
	struct qctx *c = (struct qctx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		uint64_t v = (uint64_t)i << 40 | c->seq++;
		unsigned spins = 0;
		int rc;

		while ((rc = c->use_shk ? shk_queue_push(c->q, &v, 0)
					: mq_push(c->mq, v)) == SHK_EAGAIN) {
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		if (rc != 0)
			return c->err = rc;
	}
	return 0;
}

static int
q_consume(void *ctx, int i, long n)
{
	struct qctx *c = (struct qctx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		unsigned spins = 0;
		uint64_t v, p, s;
		int rc;

		while ((rc = c->use_shk ? shk_queue_pop(c->q, &v, 0)
					: mq_pop(c->mq, &v)) == SHK_EAGAIN) {
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		if (rc != 0)
			return c->err = rc;
		p = v >> 40;
		s = v & (((uint64_t)1 << 40) - 1);
		if (p >= (uint64_t)c->nprod ||
		    (c->last[p] != UINT64_MAX && s <= c->last[p]))
			return -1;
		c->last[p] = s;
	}
	return 0;
}

static const struct bench_stream_ops q_ops = { q_setup, q_produce, q_consume,
					       q_fini };

static void
run_case(int np, int nc)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	pthread_mutexattr_t ma;
	shk_queue *q = NULL;
	struct qctx c;
	long count = bench_scale(1000000);
	double base = 0, shk = 0, vb[MAX_ROUNDS], vs[MAX_ROUNDS];
	char name[64], bname[96];
	int rc, r, rounds = bench_runs();

	memset(&c, 0, sizeof(c));
	c.nprod = np;
	c.mq = (struct mutex_q *)bench_shm_alloc(sizeof(*c.mq));
	if (!c.mq) {
		failures++;
		return;
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&c.mq->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	snprintf(seg_name, sizeof(seg_name), "shk-bench-%d-q%dp%dc",
		 (int)getpid(), np, nc);
	so.len = SEG_LEN;
	rc = shk_seg_open(seg_name, SHK_CREATE | SHK_EXCL, &so, &c.seg);
	if (rc == 0) {
		qo.elem_len = 8;
		qo.cap = QCAP;
		rc = shk_queue_open(c.seg, "q", SHK_CREATE | SHK_EXCL, &qo, &q);
		shk_queue_close(q);
	} else {
		seg_name[0] = '\0';
	}
	/* rounds alternate the baseline and the queue (bench_runs_each = 1) */
	for (r = 0; rc == 0 && r < rounds; r++) {
		c.use_shk = 0;
		if (bench_stream(&q_ops, &c, np, nc, 0, count, &vb[r]) != 0) {
			rc = -1;
			break;
		}
		c.use_shk = 1;
		if (bench_stream(&q_ops, &c, np, nc, 0, count, &vs[r]) != 0)
			rc = c.err ? c.err : -1;
	}
	if (rc == 0) {
		base = bench_median(vb, (size_t)rounds);
		shk = bench_median(vs, (size_t)rounds);
		snprintf(name, sizeof(name), "throughput %dP%dC 8 B", np, nc);
		snprintf(bname, sizeof(bname), "mutex queue %dP%dC", np, nc);
		bench_row("queue", name, shk / 1e6, "Mmsg/s", bname,
			  base / 1e6);
	} else {
		fprintf(stderr, "bench_queue: %dP%dC failed (%s)\n", np, nc,
			rc < 0 ? shk_errname(rc) : "harness");
		failures++;
	}
	if (seg_name[0]) {
		shk_seg_close(c.seg);
		shk_seg_unlink(seg_name, NULL);
		seg_name[0] = '\0';
	}
	bench_shm_free(c.mq, sizeof(*c.mq));
}

/* ---- pool ---- */

#define PCAP 1024u
#define PBLK 64u

struct mutex_pool {
	pthread_mutex_t lock;
	uint32_t top;
	uint32_t free_idx[PCAP];
	uint8_t blocks[PCAP][PBLK];
};

struct pctx {
	int mode; /* 0 mutex pool, 1 shk_pool, 2 malloc */
	shk_seg *seg;
	int own_seg;
	shk_pool *p;
	struct mutex_pool *mp;
	int err;
};

static int
p_setup(void *ctx, int party, int is_producer)
{
	struct pctx *c = (struct pctx *)ctx;
	int rc;

	if (c->mode != 1)
		return 0;
	rc = bench_party_seg(seg_name, party, &c->seg, &c->own_seg);
	if (rc != 0)
		return c->err = rc;
	rc = shk_pool_open(c->seg, "pool", 0, NULL, &c->p);
	return rc != 0 ? (c->err = rc) : 0;
}

static void
p_fini(void *ctx, int party, int is_producer)
{
	struct pctx *c = (struct pctx *)ctx;

	shk_pool_close(c->p);
	c->p = NULL;
	if (c->own_seg)
		shk_seg_close(c->seg);
}

static int
p_work(void *ctx, int i, long n)
{
	struct pctx *c = (struct pctx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		if (c->mode == 1) {
			uint64_t off;
			void *ptr;
			int rc = shk_pool_alloc(c->p, &off, &ptr);

			if (rc == 0) {
				memcpy(ptr, &k, sizeof(k));
				rc = shk_pool_free(c->p, off);
			}
			if (rc != 0)
				return c->err = rc;
		} else if (c->mode == 0) {
			struct mutex_pool *m = c->mp;
			uint32_t b;

			pthread_mutex_lock(&m->lock);
			b = m->top ? m->free_idx[--m->top] : PCAP;
			pthread_mutex_unlock(&m->lock);
			if (b >= PCAP)
				return -1;
			memcpy(m->blocks[b], &k, sizeof(k));
			pthread_mutex_lock(&m->lock);
			m->free_idx[m->top++] = b;
			pthread_mutex_unlock(&m->lock);
		} else {
			void *volatile ptr = malloc(PBLK);

			if (!ptr)
				return -1;
			memcpy(ptr, &k, sizeof(k));
			free(ptr);
		}
	}
	return 0;
}

static const struct bench_stream_ops p_ops = { p_setup, p_work, NULL, p_fini };

static void
run_pool(void)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_pool_opts po = SHK_POOL_OPTS_INIT;
	pthread_mutexattr_t ma;
	shk_pool *p = NULL;
	struct pctx c;
	long count = bench_scale(2000000);
	double base, shk, mal;
	double vb[MAX_ROUNDS], vs[MAX_ROUNDS], vm[MAX_ROUNDS];
	char name[32], bname[64];
	uint32_t b;
	int rc, np, r, rounds = bench_runs();

	memset(&c, 0, sizeof(c));
	c.mp = (struct mutex_pool *)bench_shm_alloc(sizeof(*c.mp));
	if (!c.mp) {
		failures++;
		return;
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&c.mp->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	for (b = 0; b < PCAP; b++)
		c.mp->free_idx[b] = b;
	c.mp->top = PCAP;
	snprintf(seg_name, sizeof(seg_name), "shk-bench-%d-pool",
		 (int)getpid());
	so.len = SEG_LEN;
	rc = shk_seg_open(seg_name, SHK_CREATE | SHK_EXCL, &so, &c.seg);
	if (rc != 0) {
		seg_name[0] = '\0';
	} else {
		po.block_len = PBLK;
		po.cap = PCAP;
		rc = shk_pool_open(c.seg, "pool", SHK_CREATE | SHK_EXCL, &po,
				   &p);
		shk_pool_close(p);
	}
	for (np = 1; rc == 0 && np <= 2; np++) {
		/* rounds alternate the mutex pool, the pool and (1 process)
		 * malloc (bench_runs_each = 1) */
		for (r = 0; rc == 0 && r < rounds; r++) {
			c.mode = 0;
			if (bench_ops(&p_ops, &c, np, count, &vb[r]) != 0) {
				rc = -1;
				break;
			}
			c.mode = 1;
			if (bench_ops(&p_ops, &c, np, count, &vs[r]) != 0) {
				rc = c.err ? c.err : -1;
				break;
			}
			c.mode = 2;
			if (np == 1 &&
			    bench_ops(&p_ops, &c, 1, count, &vm[r]) != 0)
				rc = -1;
		}
		if (rc != 0)
			break;
		base = bench_median(vb, (size_t)rounds);
		shk = bench_median(vs, (size_t)rounds);
		snprintf(name, sizeof(name), "alloc+free %d proc", np);
		snprintf(bname, sizeof(bname), "mutex pool %d proc", np);
		bench_row("pool", name, shk / 1e6, "Mops/s", bname, base / 1e6);
		if (np == 1) {
			mal = bench_median(vm, (size_t)rounds);
			bench_row("pool", name, shk / 1e6, "Mops/s",
				  "glibc malloc+free", mal / 1e6);
		}
	}
	if (rc != 0) {
		fprintf(stderr, "bench_queue: pool failed (%s)\n",
			rc < 0 ? shk_errname(rc) : "harness");
		failures++;
	}
	if (seg_name[0]) {
		shk_seg_close(c.seg);
		shk_seg_unlink(seg_name, NULL);
		seg_name[0] = '\0';
	}
	bench_shm_free(c.mp, sizeof(*c.mp));
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	int i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	if (argc > 1 && (argc - 1) % 2 != 0) {
		fprintf(stderr, "usage: %s [PRODUCERS CONSUMERS]...\n",
			argv[0]);
		return 2;
	}
	bench_runs_each = 1; /* the rounds alternate the cases */
	printf("# queue vs same-run mutex queue, pinned processes (%d CPUs), "
	       "median of %d alternating rounds, cap %u\n",
	       bench_ncpus(), bench_runs(), QCAP);
	if (argc == 1) {
		/* every party on a CPU of its own where the machine has them:
		 * 4P4C from 8 CPUs, 8P8C from 16 (issue 3's scaling rows) */
		run_case(1, 1);
		run_case(2, 2);
		if (bench_ncpus() >= 8)
			run_case(4, 4);
		if (bench_ncpus() >= 16)
			run_case(8, 8);
		run_pool();
	}
	for (i = 1; i + 1 < argc; i += 2) {
		int np = atoi(argv[i]), nc = atoi(argv[i + 1]);

		if (np < 1 || nc < 1 || np > MAXP ||
		    np + nc > BENCH_MAX_PROCS) {
			fprintf(stderr, "bench_queue: bad counts %d %d\n", np,
				nc);
			return 2;
		}
		run_case(np, nc);
	}
	return failures ? 1 : 0;
}
