/*
 * bench.h - shared helpers for shmkit's benchmark programs (header only).
 *
 * Rules (README "Benchmarks"): every figure is printed beside a baseline
 * measured in the same run, as a ratio; results are the median of several
 * runs after a warm-up; processes are pinned to distinct CPUs when the
 * machine has them.  bench_row() appends a Markdown row to the file named
 * by $SHK_BENCH_OUT (bench/run.sh sets it to bench/results/latest.md).
 */
#ifndef SHK_BENCH_H
#define SHK_BENCH_H

#include <errno.h>
#include <sched.h>
#include <signal.h>
#if defined(__cplusplus) && __cplusplus <= 202002L
/*
 * bench_boost.cpp includes this header as C++17, which has no
 * <stdatomic.h>: spell the C11 atomics used here as C++23's <stdatomic.h>
 * does (std::atomic<T> has the size and representation of T).
 */
#include <atomic>
#define _Atomic(T) std::atomic<T>
using std::atomic_fetch_add_explicit;
using std::atomic_load_explicit;
using std::atomic_store_explicit;
using std::memory_order_acq_rel;
using std::memory_order_acquire;
using std::memory_order_relaxed;
using std::memory_order_release;
#else
#include <stdatomic.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmkit.h"

static inline int64_t
bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * CPUs.  The benchmarks use the CPUs of the affinity mask the program
 * started with (taskset -c 1,3 bench_x runs its parties on CPUs 1 and 3),
 * not every online CPU: bench_cpus_init() records that mask the first
 * time it is called, before bench_pin() narrows it, and forked parties
 * inherit the record.
 */
static cpu_set_t bench_cpu_mask; /* the starting affinity mask */
static int bench_cpu_count = -1; /* CPUs in it; -1: not read yet */
static int bench_pin_reported;   /* a failed pin was reported */

static inline int
bench_cpus_init(void)
{
	if (bench_cpu_count >= 0)
		return bench_cpu_count;
	CPU_ZERO(&bench_cpu_mask);
	if (sched_getaffinity(0, sizeof(bench_cpu_mask), &bench_cpu_mask) !=
		    0 ||
	    CPU_COUNT(&bench_cpu_mask) < 1) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		int i;

		CPU_ZERO(&bench_cpu_mask);
		for (i = 0; i < (n < 1 ? 1 : n) && i < CPU_SETSIZE; i++)
			CPU_SET(i, &bench_cpu_mask);
	}
	bench_cpu_count = CPU_COUNT(&bench_cpu_mask);
	return bench_cpu_count;
}

/* Number of CPUs the benchmark may use (its starting affinity mask). */
static inline int
bench_ncpus(void)
{
	return bench_cpus_init();
}

/* The CPU number of the i-th CPU (i mod count) of the starting mask. */
static inline int
bench_cpu_nth(int i)
{
	int n = bench_cpus_init(), c, k = 0;

	i = (i < 0 ? -i : i) % n;
	for (c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &bench_cpu_mask) && k++ == i)
			return c;
	return 0; /* not reached: the mask holds n CPUs */
}

/*
 * bench_pin pins the calling process to the cpu-th CPU (cpu mod count) of
 * the starting affinity mask; 0 on success.  A failure is reported once
 * per process on stderr and as a note row in $SHK_BENCH_OUT: the figures
 * that follow were measured unpinned.
 */
static inline int
bench_pin(int cpu)
{
	int c = bench_cpu_nth(cpu), e;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(c, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0)
		return 0;
	e = errno;
	if (!bench_pin_reported) {
		const char *path = getenv("SHK_BENCH_OUT");

		bench_pin_reported = 1;
		fprintf(stderr,
			"bench: pinning process %d to CPU %d failed (%s); "
			"its figures are unpinned\n",
			(int)getpid(), c, strerror(e));
		if (path && *path) {
			FILE *f = fopen(path, "a");
			if (f) {
				fprintf(f,
					"| note | pinning to CPU %d failed "
					"(%s): figures of this program are "
					"unpinned | - | - | - | - |\n",
					c, strerror(e));
				fclose(f);
			}
		}
	}
	errno = e;
	return -1;
}

static int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts v in place and returns the q-quantile (0.5 = median). */
static inline double
bench_quantile(double *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* Scales iteration counts: SHK_BENCH_SCALE (default 1.0; CI smoke: 0.01). */
static inline long
bench_scale(long n)
{
	const char *s = getenv("SHK_BENCH_SCALE");
	double f = s ? atof(s) : 1.0;
	long r = (long)(n * (f > 0 ? f : 1.0));
	return r > 0 ? r : 1;
}

/*
 * bench_row prints one result line and appends a Markdown table row:
 *   | group | case | value unit | baseline name | baseline value | ratio |
 * ratio is value / baseline (for times: < 1 is faster than the baseline;
 * say which in `unit`, e.g. "ns/op" or "Mmsg/s").
 */
static inline void
bench_row(const char *group, const char *name, double value, const char *unit,
	  const char *base_name, double base_value)
{
	double ratio = base_value != 0 ? value / base_value : 0;
	const char *path = getenv("SHK_BENCH_OUT");
	char rs[32];

	/* two decimals, or two significant digits below 0.1 (0.0045, not
	 * 0.00: ratios to peers many times slower) */
	snprintf(rs, sizeof(rs), ratio != 0 && ratio < 0.1 ? "%.2g" : "%.2f",
		 ratio);
	printf("%-10s %-34s %12.2f %-8s | %-28s %12.2f | x%s\n", group, name,
	       value, unit, base_name, base_value, rs);
	fflush(stdout);
	if (path && *path) {
		FILE *f = fopen(path, "a");
		if (f) {
			fprintf(f, "| %s | %s | %.2f %s | %s | %.2f | %s |\n",
				group, name, value, unit, base_name, base_value,
				rs);
			fclose(f);
		}
	}
}

/*
 * bench_rate_row is bench_row for a throughput of records of rec_len
 * bytes: Mmsg/s below 4 KiB, MB/s (10^6 bytes) from 4 KiB up.
 */
static inline void
bench_rate_row(const char *group, const char *name, size_t rec_len,
	       double msgs_per_s, const char *base_name, double base_msgs_per_s)
{
	if (rec_len >= 4096)
		bench_row(group, name, msgs_per_s * (double)rec_len / 1e6,
			  "MB/s", base_name,
			  base_msgs_per_s * (double)rec_len / 1e6);
	else
		bench_row(group, name, msgs_per_s / 1e6, "Mmsg/s", base_name,
			  base_msgs_per_s / 1e6);
}

/* Cost of one bench_now_ns() call in ns (it is inside every latency). */
static inline double
bench_clock_cost_ns(void)
{
	int64_t t0 = bench_now_ns(), t1 = t0;
	int i;

	for (i = 0; i < 100000; i++)
		t1 = bench_now_ns();
	return (double)(t1 - t0) / 100000;
}

/* Formats a record size: "8 B", "64 KiB". */
static inline const char *
bench_size_str(size_t len, char *buf, size_t cap)
{
	if (len >= 1024 && len % 1024 == 0)
		snprintf(buf, cap, "%zu KiB", len / 1024);
	else
		snprintf(buf, cap, "%zu B", len);
	return buf;
}

/*
 * Multi-process harness.  Benchmarks run their parties as real processes
 * (fork), pinned to distinct CPUs where the machine has them: party i runs
 * on CPU i mod ncpus, party 0 is the calling process.  Parties meet at
 * barriers in a MAP_SHARED|MAP_ANONYMOUS control page and each stamps the
 * CLOCK_MONOTONIC time it started and ended its part of a run; the span of
 * a run is the latest end minus the earliest start.
 */
#define BENCH_MAX_PROCS 64
#define BENCH_RUNS 5         /* measured runs; the median is reported */
#define BENCH_BARRIER_S 120  /* a barrier waits this long, then fails */
#define BENCH_WATCHDOG_S 600 /* a party still running after this dies */

/* Zeroed shared anonymous memory, inherited across fork(); NULL on error. */
static inline void *
bench_shm_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/*
 * bench_prefault maps every page of [p, p + len) writable in the calling
 * process now, what shk_seg_prefault does for a segment: a baseline's
 * memory gets it where shmkit's does, so that neither side's figures
 * include the first touch of each page (page tables are per process, and
 * a forked party starts without entries for shared memory).  Best effort:
 * a kernel without MADV_POPULATE_WRITE leaves the faults in.
 */
static inline void
bench_prefault(void *p, size_t len)
{
	if (p)
		(void)madvise(p, len, MADV_POPULATE_WRITE);
}

static inline void
bench_shm_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

static inline void
bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * bench_backoff is called by every busy-poll loop (baselines and shmkit
 * alike, so both pay the same) after each failed poll: it spins, and
 * after BENCH_SPIN_YIELD failed polls in a row (tens of microseconds)
 * yields the CPU once, so that a peer preempted on an oversubscribed
 * machine gets to run.  Returns -1 when the team aborted.
 */
#define BENCH_SPIN_YIELD 16384u

static inline int bench_aborted(void);

/*
 * bench_party_seg gives a benchmark party its segment: party 0 keeps the
 * handle it inherited (*seg, opened before the fork); every other party
 * opens `name` itself and owns that handle (*own = 1; close it in fini).
 * Either way the party then prefaults the segment (shk_seg_prefault), so
 * that no figure includes first-touch page faults; baselines give their
 * own memory the same (bench_prefault).  Returns 0 or shk's code.
 */
static inline int
bench_party_seg(const char *name, int party, shk_seg **seg, int *own)
{
	int rc;

	if (party != 0) {
		rc = shk_seg_open(name, 0, NULL, seg);
		if (rc != 0)
			return rc;
		*own = 1;
	}
	return shk_seg_prefault(*seg);
}

static inline int
bench_backoff(unsigned *spins)
{
	bench_relax();
	if ((++*spins & (BENCH_SPIN_YIELD - 1)) == 0) {
		sched_yield();
		if (bench_aborted())
			return -1;
	}
	return 0;
}

struct bench_team_ctl {
	_Atomic(uint32_t) arrived;
	uint8_t pad0[60];
	_Atomic(uint32_t) gen;
	uint8_t pad1[60];
	_Atomic(uint32_t) failed;
	uint8_t pad2[60];
	int64_t start_ns[BENCH_MAX_PROCS];
	int64_t end_ns[BENCH_MAX_PROCS];
	double val[BENCH_MAX_PROCS];
};

struct bench_team {
	struct bench_team_ctl *ctl;
	int n;   /* parties */
	int idx; /* this party, 0 .. n-1 (0 is the parent) */
	void *ctx;
};

typedef int (*bench_team_fn)(struct bench_team *t);

/* The running team's failure word, so that wait loops can give up. */
static _Atomic(uint32_t) *bench_fail_word;

/*
 * bench_aborted says whether another party of the running team failed;
 * spin loops call it now and then (it is one relaxed load).
 */
static inline int
bench_aborted(void)
{
	/* relaxed: a hint to stop; nothing is published through it */
	return bench_fail_word &&
	       atomic_load_explicit(bench_fail_word, memory_order_relaxed);
}

/*
 * bench_team_sync waits until all parties arrive (a sense-reversing
 * barrier); -1 when a party failed or BENCH_BARRIER_S passed.  It spins,
 * then yields, so that oversubscribed machines still make progress.
 */
static inline int
bench_team_sync(struct bench_team *t)
{
	struct bench_team_ctl *c = t->ctl;
	/* acquire: pairs with the release increment of gen below */
	uint32_t g = atomic_load_explicit(&c->gen, memory_order_acquire);
	int64_t limit = 0;
	long spins = 0;

	if (atomic_fetch_add_explicit(&c->arrived, 1, memory_order_acq_rel) +
		    1 ==
	    (uint32_t)t->n) {
		/* relaxed: ordered before the release store of gen */
		atomic_store_explicit(&c->arrived, 0, memory_order_relaxed);
		atomic_store_explicit(&c->gen, g + 1, memory_order_release);
		return 0;
	}
	while (atomic_load_explicit(&c->gen, memory_order_acquire) == g) {
		if (atomic_load_explicit(&c->failed, memory_order_relaxed))
			return -1;
		if (++spins < 2000) {
			bench_relax();
			continue;
		}
		sched_yield();
		if ((spins & 1023) == 0) {
			int64_t now = bench_now_ns();
			if (limit == 0)
				limit = now +
					(int64_t)BENCH_BARRIER_S * 1000000000;
			else if (now > limit)
				return -1;
		}
	}
	return 0;
}

/* Marks this party's run start / end (call right after a sync / when done). */
static inline void
bench_team_start(struct bench_team *t)
{
	t->ctl->start_ns[t->idx] = bench_now_ns();
}

static inline void
bench_team_end(struct bench_team *t)
{
	t->ctl->end_ns[t->idx] = bench_now_ns();
}

/* Span of the last run in ns; valid after a sync that follows the ends. */
static inline double
bench_team_span_ns(const struct bench_team *t)
{
	int64_t lo = t->ctl->start_ns[0], hi = t->ctl->end_ns[0];
	int i;

	for (i = 1; i < t->n; i++) {
		if (t->ctl->start_ns[i] < lo)
			lo = t->ctl->start_ns[i];
		if (t->ctl->end_ns[i] > hi)
			hi = t->ctl->end_ns[i];
	}
	return hi > lo ? (double)(hi - lo) : 1.0;
}

/*
 * bench_team_run runs fn in n pinned parties (n-1 forked children plus the
 * caller as party 0) and waits for the children.  Returns 0 when every
 * party returned 0; otherwise kills the remaining children and returns -1.
 * Children start with a private copy of ctx (fork), so per-process handles
 * opened in fn stay per process.
 */
static inline int
bench_team_run(int n, bench_team_fn fn, void *ctx)
{
	struct bench_team_ctl *ctl;
	struct bench_team t;
	pid_t pids[BENCH_MAX_PROCS];
	int i, rc = 0, st;

	if (n < 1 || n > BENCH_MAX_PROCS)
		return -1;
	ctl = (struct bench_team_ctl *)bench_shm_alloc(sizeof(*ctl));
	if (!ctl)
		return -1;
	t.ctl = ctl;
	t.n = n;
	t.ctx = ctx;
	bench_fail_word = &ctl->failed;
	fflush(stdout);
	fflush(stderr);
	for (i = 1; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			n = i;
			rc = -1;
			atomic_store_explicit(&ctl->failed, 1,
					      memory_order_relaxed);
			break;
		}
		if (pids[i] == 0) {
			int r;

			alarm(BENCH_WATCHDOG_S);
			bench_pin(i);
			t.idx = i;
			r = fn(&t);
			if (r != 0)
				atomic_store_explicit(&ctl->failed, 1,
						      memory_order_relaxed);
			_exit(r == 0 ? 0 : 1);
		}
	}
	if (rc == 0) {
		cpu_set_t saved;
		int have = sched_getaffinity(0, sizeof(saved), &saved) == 0;

		bench_pin(0);
		t.idx = 0;
		alarm(BENCH_WATCHDOG_S);
		rc = fn(&t) == 0 ? 0 : -1;
		alarm(0);
		if (have)
			sched_setaffinity(0, sizeof(saved), &saved);
	}
	if (rc != 0) {
		atomic_store_explicit(&ctl->failed, 1, memory_order_relaxed);
		for (i = 1; i < n; i++)
			kill(pids[i], SIGKILL);
	}
	for (i = 1; i < n; i++) {
		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			rc = -1;
	}
	bench_fail_word = NULL;
	bench_shm_free(ctl, sizeof(*ctl));
	return rc;
}

/* Median of v[0..n) (v is reordered): the middle value, or the mean of
 * the two middle values when n is even (median{100, 300} = 200). */
static inline double
bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Runs per measurement inside bench_pingpong/bench_stream when positive:
 * a program that alternates cases itself (one run each, round by round)
 * sets it to 1 and takes the medians over its rounds.
 */
static int bench_runs_each;

/* Number of measured runs: BENCH_RUNS, or $SHK_BENCH_RUNS. */
static inline int
bench_runs(void)
{
	const char *s = getenv("SHK_BENCH_RUNS");
	int r = s ? atoi(s) : BENCH_RUNS;
	return r < 1 ? 1 : (r > 99 ? 99 : r);
}

/* Runs inside one bench_pingpong/bench_stream call. */
static inline int
bench_runs_inner(void)
{
	return bench_runs_each > 0 ? bench_runs_each : bench_runs();
}

/*
 * One-way latency from a ping-pong (DESIGN §9: one-way = round trip / 2).
 * ping() runs n round trips and stores each round trip's ns in rtt_ns[];
 * pong() echoes n.  setup()/fini() (optional) run in each process: side 0
 * pings, side 1 pongs.  A warm-up of n/4 + 1 round trips precedes the
 * measured runs; p50 and p99 are the medians over runs of each run's
 * quantiles.
 */
struct bench_lat {
	double p50_ns;
	double p99_ns;
};

struct bench_pp_ops {
	int (*setup)(void *ctx, int side);
	int (*ping)(void *ctx, long n, double *rtt_ns);
	int (*pong)(void *ctx, long n);
	void (*fini)(void *ctx, int side);
};

struct bench_pp_job {
	const struct bench_pp_ops *ops;
	void *ctx;
	long n;
	int runs;
	double *samples;
	struct bench_lat out;
};

static inline int
bench_pp_fn(struct bench_team *t)
{
	struct bench_pp_job *j = (struct bench_pp_job *)t->ctx;
	double p50[99], p99[99];
	long warm = j->n / 4 + 1;
	int side = t->idx, r, rc = 0;

	if (j->ops->setup && j->ops->setup(j->ctx, side) != 0) {
		atomic_store_explicit(&t->ctl->failed, 1, memory_order_relaxed);
		return -1;
	}
	if (bench_team_sync(t) != 0) {
		rc = -1;
		goto out;
	}
	rc = side == 0 ? j->ops->ping(j->ctx, warm, j->samples)
		       : j->ops->pong(j->ctx, warm);
	for (r = 0; rc == 0 && r < j->runs; r++) {
		if (bench_team_sync(t) != 0) {
			rc = -1;
			break;
		}
		if (side == 1) {
			rc = j->ops->pong(j->ctx, j->n);
			continue;
		}
		rc = j->ops->ping(j->ctx, j->n, j->samples);
		p50[r] = bench_quantile(j->samples, (size_t)j->n, 0.50) / 2;
		p99[r] = bench_quantile(j->samples, (size_t)j->n, 0.99) / 2;
	}
	if (rc == 0 && side == 0) {
		j->out.p50_ns = bench_median(p50, (size_t)j->runs);
		j->out.p99_ns = bench_median(p99, (size_t)j->runs);
	}
out:
	if (rc != 0)
		atomic_store_explicit(&t->ctl->failed, 1, memory_order_relaxed);
	if (j->ops->fini)
		j->ops->fini(j->ctx, side);
	return rc;
}

/* Runs the ping-pong; 0 and *out on success, -1 on failure. */
static inline int
bench_pingpong(const struct bench_pp_ops *ops, void *ctx, long n,
	       struct bench_lat *out)
{
	struct bench_pp_job j;
	int rc;

	memset(&j, 0, sizeof(j));
	j.ops = ops;
	j.ctx = ctx;
	j.n = n < 1 ? 1 : n;
	j.runs = bench_runs_inner();
	j.samples = (double *)calloc((size_t)j.n, sizeof(double));
	if (!j.samples)
		return -1;
	rc = bench_team_run(2, bench_pp_fn, &j);
	free(j.samples);
	if (rc == 0)
		*out = j.out;
	return rc;
}

/*
 * Streaming throughput with nprod producers and ncons consumers (parties
 * 0 .. nprod-1 produce, the rest consume).  Producer i sends its share of
 * count; a consumer takes its share of count, or all of count when
 * each_consumer_gets_all (broadcast).  The figure is count / span of the
 * run, in messages per second, median over runs after a warm-up of
 * count/10 + 1 messages.  produce()/consume() get the party's index within
 * its role and its message count.  With ncons 0 the producers are plain
 * workers and the figure is operations per second (see bench_ops).
 */
struct bench_stream_ops {
	int (*setup)(void *ctx, int party, int is_producer);
	int (*produce)(void *ctx, int i, long n);
	int (*consume)(void *ctx, int i, long n);
	void (*fini)(void *ctx, int party, int is_producer);
};

struct bench_stream_job {
	const struct bench_stream_ops *ops;
	void *ctx;
	long count;
	int nprod, ncons, all, runs;
	double rate;
};

static inline long
bench_share(long count, int parts, int i)
{
	return count / parts + (i < count % parts ? 1 : 0);
}

static inline int
bench_stream_fn(struct bench_team *t)
{
	struct bench_stream_job *j = (struct bench_stream_job *)t->ctx;
	int prod = t->idx < j->nprod;
	int i = prod ? t->idx : t->idx - j->nprod;
	double rates[99];
	int r, rc = 0;

	if (j->ops->setup && j->ops->setup(j->ctx, t->idx, prod) != 0) {
		atomic_store_explicit(&t->ctl->failed, 1, memory_order_relaxed);
		return -1;
	}
	for (r = -1; rc == 0 && r < j->runs; r++) {
		long count = r < 0 ? j->count / 10 + 1 : j->count;
		long n = prod ? bench_share(count, j->nprod, i)
			      : (j->all ? count
					: bench_share(count, j->ncons, i));

		if (bench_team_sync(t) != 0) {
			rc = -1;
			break;
		}
		bench_team_start(t);
		rc = prod ? j->ops->produce(j->ctx, i, n)
			  : j->ops->consume(j->ctx, i, n);
		bench_team_end(t);
		if (rc != 0 || bench_team_sync(t) != 0) {
			rc = -1;
			break;
		}
		if (t->idx == 0 && r >= 0)
			rates[r] = (double)count * 1e9 / bench_team_span_ns(t);
	}
	if (rc == 0 && t->idx == 0)
		j->rate = bench_median(rates, (size_t)j->runs);
	if (rc != 0)
		atomic_store_explicit(&t->ctl->failed, 1, memory_order_relaxed);
	if (j->ops->fini)
		j->ops->fini(j->ctx, t->idx, prod);
	return rc;
}

/* Runs the stream; 0 and *msgs_per_s on success, -1 on failure. */
static inline int
bench_stream(const struct bench_stream_ops *ops, void *ctx, int nprod,
	     int ncons, int each_consumer_gets_all, long count,
	     double *msgs_per_s)
{
	struct bench_stream_job j;
	int rc;

	if (nprod < 1 || ncons < 0 || nprod + ncons > BENCH_MAX_PROCS)
		return -1;
	memset(&j, 0, sizeof(j));
	j.ops = ops;
	j.ctx = ctx;
	j.count = count < 1 ? 1 : count;
	j.nprod = nprod;
	j.ncons = ncons;
	j.all = each_consumer_gets_all;
	j.runs = bench_runs_inner();
	rc = bench_team_run(nprod + ncons, bench_stream_fn, &j);
	if (rc == 0)
		*msgs_per_s = j.rate;
	return rc;
}

/*
 * bench_ops runs nworkers pinned processes, each doing its share of count
 * operations through ops->produce; *ops_per_s is count / span.
 */
static inline int
bench_ops(const struct bench_stream_ops *ops, void *ctx, int nworkers,
	  long count, double *ops_per_s)
{
	return bench_stream(ops, ctx, nworkers, 0, 0, count, ops_per_s);
}

#endif /* SHK_BENCH_H */
