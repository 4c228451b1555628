/*
 * bench.c - `shmkit bench`: shmkit's ring and queue between two processes
 * on this machine, each figure beside a pipe baseline measured in the same
 * run, as a ratio (the project's benchmark rule; bench/ holds the full
 * benchmarks, this is the quick look a user can run anywhere).
 *
 * How it runs:
 *  - One private segment, SHK_BACKEND_MEMFD, made by this process.  It has
 *    no name, so it cannot meet a user's segment, and nothing of it is
 *    left in /dev/shm on any path: the memory goes with the last process
 *    that holds its descriptor.
 *  - Each run of a case forks two children, party 0 (producer, or the
 *    side that sends the first message of a round trip) and party 1
 *    (consumer, or the echoing side), pinned to two distinct CPUs when
 *    there are two.  They open the segment from the inherited descriptor
 *    (shk_seg_open_fd) and meet at barriers in a shared control page.  The
 *    parent only supervises: it waits for both with a deadline, kills the
 *    other child on the first failure, and reports the failed child's own
 *    message.  Children die with the parent (PR_SET_PDEATHSIG).
 *  - A run is a few warm-up runs, grown until one lasts a tenth of the run
 *    length (which also sizes the measured run to about --seconds), then
 *    the measured run.  A rate is records / span, the span being the
 *    latest end minus the earliest start of the two parties.  Rounds
 *    alternate shmkit's cases with their baseline, so that both see the
 *    same stretches of a shared machine; a figure is the median over the
 *    rounds.
 *  - Every record is checked where it arrives: its sequence number and
 *    each of its 8-byte words (a pattern derived from the sequence number),
 *    and after the measured run the receiver tries one more read, which
 *    must find nothing.  Every shmkit call that may block has a timeout,
 *    barriers give up after a few seconds, and a pipe call that would hang
 *    is ended by the parent's deadline (and each child's alarm).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define REC_LEN 64                    /* ring and latency records */
#define QELEM_LEN 8                   /* queue elements */
#define RING_CAP ((uint64_t)64 << 10) /* a pipe's default buffer */
#define QUEUE_CAP 8192u               /* 8-byte elements: 64 KiB, like it */
#define SEG_LEN ((uint64_t)1 << 20)
#define OP_TIMEOUT_NS ((int64_t)2000000000)   /* any shmkit call */
#define SYNC_TIMEOUT_NS ((int64_t)5000000000) /* a barrier */
#define MAX_ROUNDS 5
#define MAX_STREAM_N ((uint64_t)1 << 31)
#define MAX_LAT_N ((uint64_t)1 << 22) /* round-trip samples kept (32 MiB) */
/* MAX_LAT_N, or a smaller count from the test hook
 * SHMKIT_TEST_BENCH_MAX_SAMPLES (set in cmd_bench, before any fork) */
static uint64_t max_lat_n = MAX_LAT_N;
#define FAULT_AT 100 /* test hook: the record it hits */
#define PATTERN 0x9e3779b97f4a7c15ull

enum bench_case {
	C_RING_PIPE, /* baseline of ring: 64 B through a pipe */
	C_RING_COPY, /* shk_ring_write / shk_ring_read */
	C_RING_ZC,   /* shk_ring_reserve+commit / shk_ring_peek+release */
	C_Q_PIPE,    /* baseline of queue: 8 B through a pipe */
	C_QUEUE,     /* shk_queue_push / shk_queue_pop */
	C_LAT_PIPE,  /* round trip through two pipes */
	C_LAT_RING,  /* round trip through two rings */
	C_N
};

static const struct {
	const char *name; /* in error messages */
	size_t len;       /* bytes per record */
	int roundtrip;    /* 1: ping-pong; 0: one-way stream */
	int shk;          /* 1: shmkit's path; 0: the pipe baseline */
} cases[C_N] = {
	{ "ring baseline (pipe)", REC_LEN, 0, 0 },
	{ "ring (write/read)", REC_LEN, 0, 1 },
	{ "ring (reserve/peek)", REC_LEN, 0, 1 },
	{ "queue baseline (pipe)", QELEM_LEN, 0, 0 },
	{ "queue", QELEM_LEN, 0, 1 },
	{ "latency baseline (pipes)", REC_LEN, 1, 0 },
	{ "latency (rings)", REC_LEN, 1, 1 },
};

/* The benchmark groups a user names, in the order they run. */
static const struct {
	const char *what;
	int first, n; /* its cases */
} groups[] = {
	{ "ring", C_RING_PIPE, 3 },
	{ "queue", C_Q_PIPE, 2 },
	{ "latency", C_LAT_PIPE, 2 },
};
#define NGROUPS (int)(sizeof(groups) / sizeof(groups[0]))

/* Test hook SHMKIT_TEST_BENCH_FAULT, applied to shmkit's cases only. */
enum fault {
	F_NONE,
	F_SKIP,    /* party 0 leaves out record FAULT_AT (lost) */
	F_DUP,     /* party 0 sends record FAULT_AT - 1 again (duplicate) */
	F_CORRUPT, /* party 0 flips a byte of record FAULT_AT's payload */
	F_DIE,     /* party 1 kills itself at record FAULT_AT */
	F_HANG,    /* party 1 stops for 60 s at record FAULT_AT */
};

/*
 * The control page, shared (MAP_SHARED | MAP_ANONYMOUS) by the parent and
 * the two children of one run.  Plain fields written by one party are read
 * by the other only after a barrier (ctl_sync), whose release/acquire pair
 * orders them; the parent reads them after waitpid.
 */
struct ctl {
	_Atomic uint32_t arrived;
	uint8_t pad0[60];
	_Atomic uint32_t gen;
	uint8_t pad1[60];
	_Atomic uint32_t failed;
	uint8_t pad2[60];
	int64_t start_ns[2], end_ns[2];
	uint64_t next_n;  /* the next run's record count (party 0 decides) */
	uint32_t measure; /* the next run is the measured one */
	uint32_t pinned[2];
	uint64_t n;    /* measured run: records (or round trips) */
	double span;   /* measured run: ns */
	double p50_ns; /* measured round trips: quantiles */
	double p99_ns;
	char msg[2][200]; /* a failed party's reason */
};

/* One child's state. */
struct party {
	struct ctl *c;
	int idx;
	int k; /* enum bench_case */
	enum fault fault;
	int fault_done;
	shk_seg *seg;
	shk_ring *tx, *rx;
	shk_queue *q;
	int fd_tx, fd_rx;
	uint64_t buf[REC_LEN / 8];
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *
role(int k, int idx)
{
	if (cases[k].roundtrip)
		return idx == 0 ? "sender" : "echoer";
	return idx == 0 ? "producer" : "consumer";
}

/* Records why this party failed (the first reason only) and stops the
 * other party's barrier waits. */
__attribute__((format(printf, 2, 3))) static int
party_fail(struct party *p, const char *fmt, ...)
{
	char *m = p->c->msg[p->idx];
	va_list ap;

	if (!m[0]) {
		va_start(ap, fmt);
		vsnprintf(m, sizeof(p->c->msg[0]), fmt, ap);
		va_end(ap);
	}
	/* relaxed: a hint to stop; the message is read by the parent after
	 * waitpid, which orders it */
	atomic_store_explicit(&p->c->failed, 1, memory_order_relaxed);
	return -1;
}

static int
shk_fail(struct party *p, const char *call, uint64_t seq, int rc)
{
	return party_fail(p, "record %llu: %s: %s (%s)",
			  (unsigned long long)seq, call, shk_errname(rc),
			  shk_strerror(rc));
}

/*
 * ctl_sync: both parties arrive, then both go on (a sense-reversing
 * barrier).  -1 when the other party failed or did not arrive within
 * SYNC_TIMEOUT_NS.
 */
static int
ctl_sync(struct party *p)
{
	struct ctl *c = p->c;
	/* acquire: pairs with the release store of gen below */
	uint32_t g = atomic_load_explicit(&c->gen, memory_order_acquire);
	int64_t limit = now_ns() + SYNC_TIMEOUT_NS;
	unsigned spins = 0;

	/* acq_rel: the last arriver acquires the first one's writes (its
	 * release here) and publishes both through gen */
	if (atomic_fetch_add_explicit(&c->arrived, 1, memory_order_acq_rel) ==
	    1) {
		/* relaxed: ordered before the release store of gen, which
		 * every next arrival acquires first */
		atomic_store_explicit(&c->arrived, 0, memory_order_relaxed);
		atomic_store_explicit(&c->gen, g + 1, memory_order_release);
		return 0;
	}
	/* acquire: pairs with the release store of gen by the last arriver */
	while (atomic_load_explicit(&c->gen, memory_order_acquire) == g) {
		/* relaxed: see party_fail */
		if (atomic_load_explicit(&c->failed, memory_order_relaxed))
			return -1;
		if (++spins < 1000)
			continue;
		sched_yield();
		if ((spins & 255) == 0 && now_ns() > limit)
			return party_fail(p, "the other process did not "
					     "arrive at a barrier within 5 s");
	}
	return 0;
}

/* Record seq: word 0 is seq, word i is seq ^ (PATTERN * i). */
static void
rec_fill(void *dst, size_t len, uint64_t seq)
{
	unsigned char *b = (unsigned char *)dst;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		uint64_t w = i == 0 ? seq : seq ^ (PATTERN * i);

		memcpy(b + 8 * i, &w, 8);
	}
}

static int
rec_check(struct party *p, const void *src, size_t len, uint64_t seq)
{
	const unsigned char *b = (const unsigned char *)src;
	uint64_t w;
	size_t i;

	if (len != cases[p->k].len)
		return party_fail(p, "record %llu: %zu bytes, want %zu",
				  (unsigned long long)seq, len,
				  cases[p->k].len);
	memcpy(&w, b, 8);
	if (w != seq)
		return party_fail(p,
				  "record %llu: sequence number %llu: a "
				  "record was lost, duplicated or reordered",
				  (unsigned long long)seq,
				  (unsigned long long)w);
	for (i = 1; i < len / 8; i++) {
		memcpy(&w, b + 8 * i, 8);
		if (w != (seq ^ (PATTERN * i)))
			return party_fail(p,
					  "record %llu: payload word %zu "
					  "corrupted",
					  (unsigned long long)seq, i);
	}
	return 0;
}

static int
write_all(struct party *p, int fd, const void *buf, size_t len, uint64_t seq)
{
	const unsigned char *b = (const unsigned char *)buf;

	while (len > 0) {
		ssize_t w = write(fd, b, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return party_fail(p, "record %llu: pipe write: %s",
					  (unsigned long long)seq,
					  w < 0 ? strerror(errno) : "wrote 0");
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

static int
read_all(struct party *p, int fd, void *buf, size_t len, uint64_t seq)
{
	unsigned char *b = (unsigned char *)buf;

	while (len > 0) {
		ssize_t r = read(fd, b, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return party_fail(p, "record %llu: pipe read: %s",
					  (unsigned long long)seq,
					  r < 0 ? strerror(errno)
						: "end of file (the other "
						  "process is gone)");
		b += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Party 0's side of the test hook: which sequence number goes out, and
 * whether to damage it.  Returns the number to send. */
static uint64_t
fault_send(struct party *p, uint64_t seq, int *corrupt)
{
	*corrupt = 0;
	if (p->fault_done || p->idx != 0 || seq != FAULT_AT)
		return seq;
	switch (p->fault) {
	case F_SKIP:
		p->fault_done = 1;
		return seq + 1;
	case F_DUP:
		p->fault_done = 1;
		return seq - 1;
	case F_CORRUPT:
		p->fault_done = 1;
		*corrupt = 1;
		return seq;
	default:
		return seq;
	}
}

static void
fault_recv(struct party *p, uint64_t seq)
{
	struct timespec ts = { 60, 0 };

	if (p->fault_done || p->idx != 1 || seq != FAULT_AT)
		return;
	if (p->fault == F_DIE)
		raise(SIGKILL);
	if (p->fault == F_HANG) {
		p->fault_done = 1;
		nanosleep(&ts, NULL);
	}
}

/* Sends record seq the way this case does. */
static int
send_one(struct party *p, uint64_t seq)
{
	size_t len = cases[p->k].len;
	int corrupt, rc;
	uint64_t s = fault_send(p, seq, &corrupt);
	void *dst;

	switch (p->k) {
	case C_RING_COPY:
	case C_LAT_RING:
		rec_fill(p->buf, len, s);
		if (corrupt)
			((unsigned char *)p->buf)[17] ^= 1;
		rc = shk_ring_write(p->tx, p->buf, len, OP_TIMEOUT_NS);
		return rc ? shk_fail(p, "shk_ring_write", seq, rc) : 0;
	case C_RING_ZC:
		rc = shk_ring_reserve(p->tx, len, &dst, OP_TIMEOUT_NS);
		if (rc)
			return shk_fail(p, "shk_ring_reserve", seq, rc);
		rec_fill(dst, len, s);
		if (corrupt)
			((unsigned char *)dst)[17] ^= 1;
		rc = shk_ring_commit(p->tx);
		return rc ? shk_fail(p, "shk_ring_commit", seq, rc) : 0;
	case C_QUEUE:
		if (corrupt)
			s ^= (uint64_t)1 << 40;
		rc = shk_queue_push(p->q, &s, OP_TIMEOUT_NS);
		return rc ? shk_fail(p, "shk_queue_push", seq, rc) : 0;
	default: /* the pipes */
		rec_fill(p->buf, len, s);
		return write_all(p, p->fd_tx, p->buf, len, seq);
	}
}

/* Receives record seq the way this case does, and checks it. */
static int
recv_one(struct party *p, uint64_t seq)
{
	size_t len = cases[p->k].len, got;
	const void *src;
	int rc;

	fault_recv(p, seq);
	switch (p->k) {
	case C_RING_COPY:
	case C_LAT_RING:
		rc = shk_ring_read(p->rx, p->buf, sizeof(p->buf),
				   OP_TIMEOUT_NS);
		if (rc < 0)
			return shk_fail(p, "shk_ring_read", seq, rc);
		return rec_check(p, p->buf, (size_t)rc, seq);
	case C_RING_ZC:
		rc = shk_ring_peek(p->rx, &src, &got, OP_TIMEOUT_NS);
		if (rc)
			return shk_fail(p, "shk_ring_peek", seq, rc);
		if (rec_check(p, src, got, seq) != 0)
			return -1;
		rc = shk_ring_release(p->rx);
		return rc ? shk_fail(p, "shk_ring_release", seq, rc) : 0;
	case C_QUEUE:
		rc = shk_queue_pop(p->q, p->buf, OP_TIMEOUT_NS);
		if (rc)
			return shk_fail(p, "shk_queue_pop", seq, rc);
		return rec_check(p, p->buf, len, seq);
	default:
		if (read_all(p, p->fd_rx, p->buf, len, seq) != 0)
			return -1;
		return rec_check(p, p->buf, len, seq);
	}
}

/* After the measured run: nothing more may have arrived. */
static int
check_drained(struct party *p, uint64_t seq)
{
	struct pollfd pfd;
	int rc;

	switch (p->k) {
	case C_RING_COPY:
	case C_RING_ZC:
	case C_LAT_RING:
		rc = shk_ring_read(p->rx, p->buf, sizeof(p->buf), 0);
		break;
	case C_QUEUE:
		rc = shk_queue_pop(p->q, p->buf, 0);
		break;
	default:
		pfd.fd = p->fd_rx;
		pfd.events = POLLIN;
		pfd.revents = 0;
		/* POLLHUP alone: the writer closed, with nothing unread */
		rc = poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN)
			     ? 0
			     : SHK_EAGAIN;
		break;
	}
	if (rc == SHK_EAGAIN)
		return 0;
	if (rc < 0)
		return shk_fail(p, "the check for a stray record", seq, rc);
	return party_fail(p,
			  "a record arrived after the last one (%llu): "
			  "duplicated records",
			  (unsigned long long)seq);
}

/* n records (or round trips) from *seq on; with rtt, party 0 keeps the
 * time of every stride-th round trip in rtt[i / stride]. */
static int
run_records(struct party *p, uint64_t n, uint64_t *seq, double *rtt,
	    uint64_t stride)
{
	int64_t t0 = now_ns(), t1;
	uint64_t i;

	for (i = 0; i < n; i++, ++*seq) {
		if (!cases[p->k].roundtrip) {
			if ((p->idx == 0 ? send_one(p, *seq)
					 : recv_one(p, *seq)) != 0)
				return -1;
			continue;
		}
		if (p->idx == 1) {
			if (recv_one(p, *seq) != 0 || send_one(p, *seq) != 0)
				return -1;
			continue;
		}
		if (send_one(p, *seq) != 0 || recv_one(p, *seq) != 0)
			return -1;
		if (rtt) {
			t1 = now_ns();
			if (i % stride == 0)
				rtt[i / stride] = (double)(t1 - t0);
			t0 = t1;
		}
	}
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* q-quantile of the sorted v[0..n). */
static double
quantile(const double *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);

	return n ? v[i < n ? i : n - 1] : 0;
}

/*
 * The run protocol, both parties: warm-up runs until one lasts warm_ns
 * (party 0 sizes each next run from the last one's span), then the
 * measured run of about run_ns, then the check that nothing is left over.
 */
static int
party_body(struct party *p, int64_t run_ns)
{
	struct ctl *c = p->c;
	int64_t warm_ns = run_ns / 10 > 2000000 ? run_ns / 10 : 2000000;
	uint64_t seq = 0, n, max_n, stride = 1, kept = 0;
	double *rtt = NULL, span;
	int measure, rc;

	/* A latency run may be longer than MAX_LAT_N round trips (a long
	 * --seconds): it then keeps every stride-th time (max_lat_n at
	 * most), evenly spread over the run, and takes their quantiles. */
	max_n = MAX_STREAM_N;
	if (ctl_sync(p) != 0)
		return -1;
	for (;;) {
		n = c->next_n;
		measure = (int)c->measure;
		if (measure && p->idx == 0 && cases[p->k].roundtrip) {
			stride = (n + max_lat_n - 1) / max_lat_n;
			kept = (n + stride - 1) / stride;
			rtt = (double *)malloc((size_t)kept * sizeof(double));
			if (!rtt)
				return party_fail(p, "out of memory");
		}
		if (ctl_sync(p) != 0)
			goto fail;
		c->start_ns[p->idx] = now_ns();
		rc = run_records(p, n, &seq, rtt, stride);
		c->end_ns[p->idx] = now_ns();
		if (rc != 0 || ctl_sync(p) != 0)
			goto fail;
		span = (double)((c->end_ns[0] > c->end_ns[1] ? c->end_ns[0]
							     : c->end_ns[1]) -
				(c->start_ns[0] < c->start_ns[1]
					 ? c->start_ns[0]
					 : c->start_ns[1]));
		if (span < 1)
			span = 1;
		if (measure)
			break;
		if (p->idx == 0) {
			double f;

			if (span >= (double)warm_ns || n >= max_n) {
				f = (double)run_ns / span;
				c->measure = 1;
			} else {
				f = 1.5 * (double)warm_ns / span;
				f = f < 2 ? 2 : (f > 16 ? 16 : f);
			}
			f *= (double)n;
			c->next_n = f < 1 ? 1
					  : (f > (double)max_n ? max_n
							       : (uint64_t)f);
		}
		if (ctl_sync(p) != 0)
			goto fail;
	}
	if ((p->idx == 1 || cases[p->k].roundtrip) &&
	    check_drained(p, seq - 1) != 0)
		goto fail;
	if (p->idx == 0) {
		c->n = n;
		c->span = span;
		if (rtt) {
			qsort(rtt, (size_t)kept, sizeof(double), cmp_double);
			c->p50_ns = quantile(rtt, (size_t)kept, 0.50);
			c->p99_ns = quantile(rtt, (size_t)kept, 0.99);
		}
	}
	free(rtt);
	/* both checks done before either side closes its end */
	return ctl_sync(p);
fail:
	/* the reason is in msg (this party's, or the other's) */
	free(rtt);
	/* relaxed: see party_fail */
	atomic_store_explicit(&c->failed, 1, memory_order_relaxed);
	return -1;
}

/* What a child gets from the parent. */
struct run_env {
	struct ctl *c;
	shk_seg *seg; /* the parent's: its fd is inherited */
	int cpu[2];   /* -1: do not pin */
	int pipes[2][2];
	enum fault fault;
	int64_t run_ns;
	int64_t watchdog_s;
	pid_t parent;
};

static int
party_open(struct party *p, const struct run_env *e)
{
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	const char *txn = NULL, *rxn = NULL;
	int rc;

	if (!cases[p->k].shk) {
		/* party 0 writes pipe 0 and reads pipe 1; party 1 the other
		 * way round; every other end is closed, so a read sees end of
		 * file when the other process dies */
		p->fd_tx = e->pipes[p->idx][1];
		p->fd_rx = e->pipes[1 - p->idx][0];
		close(e->pipes[p->idx][0]);
		close(e->pipes[1 - p->idx][1]);
		return 0;
	}
	rc = shk_seg_open_fd(shk_seg_fd(e->seg), 0, NULL, &p->seg);
	if (rc)
		return party_fail(p, "shk_seg_open_fd: %s (%s)",
				  shk_errname(rc), shk_strerror(rc));
	/* no page faults inside the timed loops (the pipes have none) */
	rc = shk_seg_prefault(p->seg);
	if (rc)
		return party_fail(p, "shk_seg_prefault: %s", shk_errname(rc));
	if (p->k == C_QUEUE) {
		qo.elem_len = QELEM_LEN;
		rc = shk_queue_open(p->seg, "queue", 0, &qo, &p->q);
		return rc ? party_fail(p, "shk_queue_open: %s", shk_errname(rc))
			  : 0;
	}
	ro.cap = RING_CAP;
	if (p->k == C_LAT_RING) {
		txn = p->idx == 0 ? "ab" : "ba";
		rxn = p->idx == 0 ? "ba" : "ab";
	} else if (p->idx == 0) {
		txn = "stream";
	} else {
		rxn = "stream";
	}
	if (txn) {
		rc = shk_ring_open(p->seg, txn, 0, SHK_RING_PRODUCER, &ro,
				   &p->tx);
		if (rc)
			return party_fail(p, "shk_ring_open %s: %s", txn,
					  shk_errname(rc));
	}
	if (rxn) {
		rc = shk_ring_open(p->seg, rxn, 0, SHK_RING_CONSUMER, &ro,
				   &p->rx);
		if (rc)
			return party_fail(p, "shk_ring_open %s: %s", rxn,
					  shk_errname(rc));
	}
	return 0;
}

static void
party_close(struct party *p)
{
	shk_ring_close(p->tx);
	shk_ring_close(p->rx);
	shk_queue_close(p->q);
	shk_seg_close(p->seg);
}

__attribute__((noreturn)) static void
party_main(const struct run_env *e, int k, int idx)
{
	struct party p;
	struct sigaction sa;
	sigset_t none;
	cpu_set_t set;
	int rc = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = SIG_IGN; /* a dead reader: EPIPE, reported */
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* die with the parent, whatever kills it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != e->parent)
		_exit(1);
	alarm((unsigned)e->watchdog_s);
	memset(&p, 0, sizeof(p));
	p.c = e->c;
	p.idx = idx;
	p.k = k;
	p.fault = cases[k].shk ? e->fault : F_NONE;
	p.fd_tx = p.fd_rx = -1;
	if (e->cpu[idx] >= 0) {
		CPU_ZERO(&set);
		CPU_SET(e->cpu[idx], &set);
		/* the parent reads it after waitpid */
		p.c->pinned[idx] = sched_setaffinity(0, sizeof(set), &set) == 0;
	}
	if (party_open(&p, e) == 0)
		rc = party_body(&p, e->run_ns);
	party_close(&p);
	_exit(rc == 0 ? 0 : 1);
}

/* ---- the parent ---- */

static volatile sig_atomic_t stop_sig;
static volatile sig_atomic_t kid_pid[2];

static void
on_stop(int sig)
{
	int i;

	stop_sig = sig;
	for (i = 0; i < 2; i++)
		if (kid_pid[i] > 0)
			kill((pid_t)kid_pid[i], SIGKILL);
}

static void
kill_reap(pid_t *pid, int n)
{
	int i, st;

	for (i = 0; i < n; i++) {
		if (pid[i] <= 0)
			continue;
		kill(pid[i], SIGKILL);
		/* before the reap, so on_stop never kills a reaped (and
		 * perhaps reused) pid; this one is already killed */
		kid_pid[i] = 0;
		while (waitpid(pid[i], &st, 0) < 0 && errno == EINTR)
			;
		pid[i] = 0;
	}
}

/* Why a child that exited with status st failed, into buf. */
static void
child_reason(const struct ctl *c, int idx, int st, char *buf, size_t len)
{
	char m[sizeof(c->msg[0])];

	memcpy(m, c->msg[idx], sizeof(m));
	m[sizeof(m) - 1] = '\0';
	if (WIFSIGNALED(st))
		snprintf(buf, len, "died of signal %d (%s)%s%s", WTERMSIG(st),
			 strsignal(WTERMSIG(st)), m[0] ? ": " : "", m);
	else if (m[0])
		snprintf(buf, len, "%s", m);
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
}

struct bench {
	shk_seg *seg;
	struct ctl *c;
	int cpu[2];
	int pinned_all;
	int64_t run_ns;
	enum fault fault;
	sigset_t chld;
};

struct run_out {
	double rate; /* records (round trips) per second */
	double p50_ns, p99_ns;
	double run_s; /* the measured run's span */
};

/*
 * One run of case k in two fresh children.  0 and *out, 1 after printing
 * why it failed, or 128 + signal when the user interrupted.
 */
static int
run_case(struct bench *b, int k, struct run_out *out)
{
	struct run_env e;
	sigset_t stops, old;
	pid_t pid[2] = { 0, 0 };
	char why[300];
	int i, st, live = 0, failed = -1, fst = 0, rc;
	int64_t deadline;
	struct timespec ts;

	if (stop_sig)
		return 128 + stop_sig;
	memset(b->c, 0, sizeof(*b->c));
	b->c->next_n = cases[k].roundtrip ? 64 : 1024;
	memset(&e, 0, sizeof(e));
	e.c = b->c;
	e.seg = b->seg;
	e.cpu[0] = b->cpu[0];
	e.cpu[1] = b->cpu[1];
	e.fault = b->fault;
	e.run_ns = b->run_ns;
	e.watchdog_s = 10 + 3 * b->run_ns / 1000000000;
	e.parent = getpid();
	for (i = 0; i < 2; i++)
		e.pipes[i][0] = e.pipes[i][1] = -1;
	if (!cases[k].shk && (pipe(e.pipes[0]) != 0 || pipe(e.pipes[1]) != 0)) {
		cli_errorf("%s: pipe: %s", cases[k].name, strerror(errno));
		rc = CLI_EXIT_ERR;
		goto out;
	}
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGHUP);
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 2; i++) {
		/* a stop between fork and kid_pid would miss this child */
		sigprocmask(SIG_BLOCK, &stops, &old);
		pid[i] = fork();
		if (pid[i] == 0)
			party_main(&e, k, i);
		if (pid[i] > 0)
			kid_pid[i] = pid[i];
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (pid[i] < 0) {
			pid[i] = 0;
			cli_errorf("%s: fork: %s", cases[k].name,
				   strerror(errno));
			kill_reap(pid, 2);
			rc = CLI_EXIT_ERR;
			goto out;
		}
		live++;
	}
	for (i = 0; i < 2; i++) {
		if (e.pipes[i][0] >= 0)
			close(e.pipes[i][0]);
		if (e.pipes[i][1] >= 0)
			close(e.pipes[i][1]);
		e.pipes[i][0] = e.pipes[i][1] = -1;
	}
	deadline = now_ns() + e.watchdog_s * 1000000000;
	while (live > 0 && failed < 0 && !stop_sig) {
		int64_t left;

		for (i = 0; i < 2; i++) {
			int reaped;

			if (pid[i] <= 0)
				continue;
			/* reap and forget the pid with on_stop held off: it must
			 * never kill a pid that is reaped and may be reused */
			sigprocmask(SIG_BLOCK, &stops, &old);
			reaped = waitpid(pid[i], &st, WNOHANG) > 0;
			if (reaped)
				kid_pid[i] = 0;
			sigprocmask(SIG_SETMASK, &old, NULL);
			if (!reaped)
				continue;
			pid[i] = 0;
			live--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				failed = i;
				fst = st;
				break;
			}
		}
		if (live == 0 || failed >= 0 || stop_sig)
			break;
		left = deadline - now_ns();
		if (left <= 0) {
			kill_reap(pid, 2);
			cli_errorf("%s: the processes did not finish within "
				   "%lld s (hung)",
				   cases[k].name, (long long)e.watchdog_s);
			rc = CLI_EXIT_ERR;
			goto out;
		}
		if (left > 100000000)
			left = 100000000;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left;
		sigtimedwait(&b->chld, NULL, &ts);
	}
	kill_reap(pid, 2);
	if (stop_sig) {
		rc = 128 + stop_sig;
		goto out;
	}
	if (failed >= 0) {
		/* a party that only stopped because the other failed (exit 1,
		 * no message of its own): the other one's reason */
		if (WIFEXITED(fst) && !b->c->msg[failed][0] &&
		    b->c->msg[1 - failed][0])
			failed = 1 - failed;
		child_reason(b->c, failed, fst, why, sizeof(why));
		cli_errorf("%s: %s: %s", cases[k].name, role(k, failed), why);
		rc = CLI_EXIT_ERR;
		goto out;
	}
	if (b->c->n == 0 || !(b->c->span > 0)) {
		cli_errorf("%s: no result", cases[k].name);
		rc = CLI_EXIT_ERR;
		goto out;
	}
	for (i = 0; i < 2; i++)
		if (b->cpu[i] >= 0 && !b->c->pinned[i])
			b->pinned_all = 0;
	out->rate = (double)b->c->n * 1e9 / b->c->span;
	out->run_s = b->c->span / 1e9;
	out->p50_ns = b->c->p50_ns;
	out->p99_ns = b->c->p99_ns;
	rc = 0;
out:
	for (i = 0; i < 2; i++) {
		if (e.pipes[i][0] >= 0)
			close(e.pipes[i][0]);
		if (e.pipes[i][1] >= 0)
			close(e.pipes[i][1]);
	}
	return rc;
}

/* Makes the memfd segment and the objects every run opens. */
static int
bench_segment(struct bench *b)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	static const char *const rings[] = { "stream", "ab", "ba" };
	shk_queue *q = NULL;
	shk_ring *r = NULL;
	size_t i;
	int rc;

	so.backend = SHK_BACKEND_MEMFD;
	so.len = SEG_LEN;
	so.max_objects = 64;
	rc = shk_seg_open("shmkit-bench", SHK_CREATE, &so, &b->seg);
	if (rc) {
		cli_error("memfd segment", rc);
		return rc;
	}
	ro.cap = RING_CAP;
	for (i = 0; i < sizeof(rings) / sizeof(rings[0]); i++) {
		/* made by opening a role; closing frees the role for a child */
		rc = shk_ring_open(b->seg, rings[i], SHK_CREATE | SHK_EXCL,
				   SHK_RING_PRODUCER, &ro, &r);
		if (rc) {
			cli_error("ring", rc);
			return rc;
		}
		shk_ring_close(r);
	}
	qo.elem_len = QELEM_LEN;
	qo.cap = QUEUE_CAP;
	rc = shk_queue_open(b->seg, "queue", SHK_CREATE | SHK_EXCL, &qo, &q);
	if (rc) {
		cli_error("queue", rc);
		return rc;
	}
	shk_queue_close(q);
	return 0;
}

/* The first two CPUs this process may run on; how many it may use. */
static int
pick_cpus(int cpu[2])
{
	cpu_set_t set;
	int i, n = 0;

	cpu[0] = cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (n < 2)
			cpu[n] = i;
		n++;
	}
	if (n < 2)
		cpu[0] = cpu[1] = -1;
	return n;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

/* One output row. */
struct row {
	const char *group;
	const char *name;
	const char *base_name;
	const char *unit; /* JSON unit of shmkit and baseline */
	int latency;      /* 1: ns, lower is better; 0: per second */
	double shk, base;
	double shk_run_s, base_run_s; /* median measured span (JSON) */
};

/* The median measured span of case k and of its baseline kb. */
static void
run_spans(struct row *w, struct run_out res[][C_N], int rounds, int k, int kb)
{
	double v[MAX_ROUNDS], bv[MAX_ROUNDS];
	int r;

	for (r = 0; r < rounds; r++) {
		v[r] = res[r][k].run_s;
		bv[r] = res[r][kb].run_s;
	}
	w->shk_run_s = median(v, rounds);
	w->base_run_s = median(bv, rounds);
}

static void
fmt_figure(char *buf, size_t len, const struct row *r, double v)
{
	if (r->latency)
		snprintf(buf, len, "%.2f us", v / 1e3);
	else
		snprintf(buf, len, "%.2f M/s", v / 1e6);
}

static void
print_rows(const struct row *rows, int n, int ncpus, const struct bench *b,
	   int rounds, const char *date, int json)
{
	char fs[32], fb[32];
	double ratio;
	int i;

	if (json) {
		struct cli_json j;

		json_init(&j, stdout);
		json_begin_obj(&j, NULL);
		json_str(&j, "date", date);
		json_u64(&j, "cpus", (uint64_t)ncpus);
		json_bool(&j, "pinned", b->cpu[0] >= 0 && b->pinned_all);
		json_begin_arr(&j, "pinned_cpus");
		if (b->cpu[0] >= 0 && b->pinned_all) {
			json_u64(&j, NULL, (uint64_t)b->cpu[0]);
			json_u64(&j, NULL, (uint64_t)b->cpu[1]);
		}
		json_end_arr(&j);
		json_u64(&j, "rounds", (uint64_t)rounds);
		json_f64(&j, "seconds", (double)b->run_ns / 1e9, 15);
		json_begin_arr(&j, "results");
		for (i = 0; i < n; i++) {
			json_begin_obj(&j, NULL);
			json_str(&j, "group", rows[i].group);
			json_str(&j, "name", rows[i].name);
			json_str(&j, "unit", rows[i].unit);
			json_f64(&j, "shmkit", rows[i].shk, 15);
			json_str(&j, "baseline_name", rows[i].base_name);
			json_f64(&j, "baseline", rows[i].base, 15);
			json_f64(&j, "ratio", rows[i].shk / rows[i].base, 15);
			json_f64(&j, "shmkit_run_s", rows[i].shk_run_s, 6);
			json_f64(&j, "baseline_run_s", rows[i].base_run_s, 6);
			json_end_obj(&j);
		}
		json_end_arr(&j);
		json_end_obj(&j);
		json_finish(&j);
		return;
	}
	printf("shmkit bench: %d CPUs, ", ncpus);
	if (b->cpu[0] >= 0 && b->pinned_all)
		printf("pinned to CPUs %d and %d", b->cpu[0], b->cpu[1]);
	else if (b->cpu[0] < 0)
		printf("not pinned (fewer than 2 CPUs to run on)");
	else
		printf("not pinned (sched_setaffinity failed)");
	printf(", %s, median of %d rounds of about %.2f s\n", date, rounds,
	       (double)b->run_ns / 1e9);
	printf("%-24s %12s   %-24s %12s %8s\n", "NAME", "SHMKIT", "BASELINE",
	       "", "RATIO");
	for (i = 0; i < n; i++) {
		fmt_figure(fs, sizeof(fs), &rows[i], rows[i].shk);
		fmt_figure(fb, sizeof(fb), &rows[i], rows[i].base);
		ratio = rows[i].shk / rows[i].base;
		printf("%-24s %12s   %-24s %12s %*.*fx\n", rows[i].name, fs,
		       rows[i].base_name, fb, 7, ratio < 0.1 ? 4 : 2, ratio);
	}
	printf("ratio = shmkit / baseline: above 1 is faster for M/s, below "
	       "1 is faster for us\n");
}

static enum fault
test_fault(void)
{
	const char *f = getenv("SHMKIT_TEST_BENCH_FAULT");

	if (!f)
		return F_NONE;
	if (!strcmp(f, "skip"))
		return F_SKIP;
	if (!strcmp(f, "dup"))
		return F_DUP;
	if (!strcmp(f, "corrupt"))
		return F_CORRUPT;
	if (!strcmp(f, "die"))
		return F_DIE;
	if (!strcmp(f, "hang"))
		return F_HANG;
	return F_NONE;
}

/*
 * bench [--quick] [--json] [--seconds S] [WHAT...]: WHAT is ring, queue
 * or latency (default: all).  See docs/cli.md.
 */
int
cmd_bench(int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa, old_sa[3], old_chld;
	struct run_out res[MAX_ROUNDS][C_N];
	struct row rows[8];
	struct bench b;
	sigset_t old_mask;
	double secs = -1, v[2][MAX_ROUNDS], bv[2][MAX_ROUNDS];
	const char *val;
	char date[32];
	int want[NGROUPS] = { 0 }, any = 0, quick = 0, json = 0;
	int i, g, r, k, rc = 0, rounds, nrows = 0, ncpus;
	time_t t;
	struct tm tm;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		char pa[64];
		int m;

		if (cli_is_help(a)) {
			return cli_cmd_help();
		} else if (!strcmp(a, "--quick")) {
			quick = 1;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if ((m = cli_opt_value(argc, argv, &i, "--seconds",
					      &val)) != 0) {
			if (m < 0 ||
			    cli_parse_seconds(val, 0.01, 10, &secs) != 0)
				return cli_usage_error("bad --seconds (a "
						       "number from 0.01 to "
						       "10)");
		} else if (a[0] == '-') {
			cli_printable(pa, sizeof(pa), a);
			return cli_usage_error("unknown option '%s'", pa);
		} else {
			for (g = 0; g < NGROUPS; g++)
				if (!strcmp(a, groups[g].what))
					break;
			if (g == NGROUPS) {
				cli_printable(pa, sizeof(pa), a);
				return cli_usage_error(
					"unknown benchmark '%s' (ring, queue, "
					"latency)",
					pa);
			}
			want[g] = 1;
			any = 1;
		}
	}
	for (g = 0; g < NGROUPS; g++)
		if (!any)
			want[g] = 1;
	if (secs < 0)
		secs = quick ? 0.05 : 0.25;
	rounds = quick ? 3 : 5;

	memset(&b, 0, sizeof(b));
	b.run_ns = (int64_t)(secs * 1e9);
	b.fault = test_fault();
	val = getenv("SHMKIT_TEST_BENCH_MAX_SAMPLES");
	if (val && strtoull(val, NULL, 10) > 0 &&
	    strtoull(val, NULL, 10) < MAX_LAT_N)
		max_lat_n = strtoull(val, NULL, 10);
	b.pinned_all = 1;
	/* the CPUs this process may run on (taskset, cgroup cpuset), which
	 * decide pinning; the online count only when that is unknown */
	ncpus = pick_cpus(b.cpu);
	if (ncpus <= 0)
		ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	t = time(NULL);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);

	b.c = (struct ctl *)mmap(NULL, sizeof(struct ctl),
				 PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b.c == MAP_FAILED) {
		cli_errorf("mmap: %s", strerror(errno));
		return CLI_EXIT_ERR;
	}
	/* SIGCHLD is taken with sigtimedwait; a stop kills the children,
	 * and the run in progress returns 128 + signal */
	sigemptyset(&b.chld);
	sigaddset(&b.chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &b.chld, &old_mask);
	memset(&sa, 0, sizeof(sa));
	/* an inherited SIG_IGN would reap the children before waitpid */
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, &old_chld);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 3; i++) {
		sigaction(sigs[i], &sa, &old_sa[i]);
		/* nohup: a hangup stays ignored */
		if (sigs[i] == SIGHUP && old_sa[i].sa_handler == SIG_IGN)
			sigaction(SIGHUP, &old_sa[i], NULL);
	}

	if (bench_segment(&b) != 0) {
		rc = CLI_EXIT_ERR;
		goto out;
	}
	for (r = 0; r < rounds && rc == 0; r++)
		for (g = 0; g < NGROUPS && rc == 0; g++)
			for (k = groups[g].first;
			     want[g] && k < groups[g].first + groups[g].n &&
			     rc == 0;
			     k++)
				rc = run_case(&b, k, &res[r][k]);
	if (rc > 128) {
		cli_errorf("interrupted");
		goto out;
	}
	if (rc != 0)
		goto out;

#define ROW(grp, nm, bnm, unit_, lat, k, kb)                                   \
	(rows[nrows].group = (grp), rows[nrows].name = (nm),                   \
	 rows[nrows].base_name = (bnm), rows[nrows].unit = (unit_),            \
	 rows[nrows].latency = (lat),                                          \
	 run_spans(&rows[nrows], res, rounds, (k), (kb)), &rows[nrows++])
	if (want[0]) {
		struct row *w;

		for (r = 0; r < rounds; r++) {
			v[0][r] = res[r][C_RING_COPY].rate;
			v[1][r] = res[r][C_RING_ZC].rate;
			bv[0][r] = res[r][C_RING_PIPE].rate;
		}
		w = ROW("ring", "ring write/read 64 B", "pipe write/read 64 B",
			"records/s", 0, C_RING_COPY, C_RING_PIPE);
		w->shk = median(v[0], rounds);
		w->base = median(bv[0], rounds);
		w = ROW("ring", "ring reserve/peek 64 B",
			"pipe write/read 64 B", "records/s", 0, C_RING_ZC,
			C_RING_PIPE);
		w->shk = median(v[1], rounds);
		w->base = rows[nrows - 2].base;
	}
	if (want[1]) {
		struct row *w;

		for (r = 0; r < rounds; r++) {
			v[0][r] = res[r][C_QUEUE].rate;
			bv[0][r] = res[r][C_Q_PIPE].rate;
		}
		w = ROW("queue", "queue push/pop 8 B", "pipe write/read 8 B",
			"ops/s", 0, C_QUEUE, C_Q_PIPE);
		w->shk = median(v[0], rounds);
		w->base = median(bv[0], rounds);
	}
	if (want[2]) {
		struct row *w;

		for (r = 0; r < rounds; r++) {
			v[0][r] = res[r][C_LAT_RING].p50_ns;
			v[1][r] = res[r][C_LAT_RING].p99_ns;
			bv[0][r] = res[r][C_LAT_PIPE].p50_ns;
			bv[1][r] = res[r][C_LAT_PIPE].p99_ns;
		}
		w = ROW("latency", "ring round trip p50", "pipe round trip p50",
			"ns", 1, C_LAT_RING, C_LAT_PIPE);
		w->shk = median(v[0], rounds);
		w->base = median(bv[0], rounds);
		w = ROW("latency", "ring round trip p99", "pipe round trip p99",
			"ns", 1, C_LAT_RING, C_LAT_PIPE);
		w->shk = median(v[1], rounds);
		w->base = median(bv[1], rounds);
	}
#undef ROW
	print_rows(rows, nrows, ncpus, &b, rounds, date, json);
out:
	if (b.seg)
		shk_seg_close(b.seg);
	munmap(b.c, sizeof(struct ctl));
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	sigaction(SIGCHLD, &old_chld, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}
