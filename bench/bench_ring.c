/*
 * bench_ring - shmkit's SPSC ring between two pinned processes, each
 * figure beside its baseline from baselines.h measured in the same run
 * (issue 3, DESIGN §9):
 *   one-way latency p50/p99 of 64 B records, ping-pong over two rings:
 *     busy-poll (timeout 0, retried)  vs the bare cache-line ping-pong,
 *                                        target <= 1.25x
 *     blocking (SHK_FOREVER)           vs the bare futex ping-pong,
 *                                        target <= 1.2x
 *   throughput of 8 B, 64 B, 1 KiB, 64 KiB records (shk_ring_write /
 *   shk_ring_read, busy-poll), per-record publication and SHK_RING_BATCH:
 *     vs the minimal SPSC ring (same buffer bytes), target >= 0.8x
 *     vs a Unix stream socket, target >= 10x
 *   and the same stream through the zero-copy calls (reserve/commit,
 *   peek/release: no copy of the record on either side) vs the socket,
 *   in Mmsg/s at every size: a handover rate, not data moved (the
 *   payload is not touched beyond its first 8 bytes), which does not
 *   count toward the >= 10x target;
 *   the busy-poll latency and the per-record stream again on a
 *   SHK_RING_SPIN ring (no sleeper, so no waker fence), like the baselines,
 *   which never sleep either
 * Ratios are value / baseline: for latency lower is better, for
 * throughput higher is better.
 */
#include "baselines.h"
#include "ring_parties.h"

static const size_t rec_sizes[] = { 8, 64, 1024, 65536 };

static int failures;

static void
fail(const char *what, int rc)
{
	fprintf(stderr, "bench_ring: %s failed (%s)\n", what,
		rc < 0 ? shk_errname(rc) : "harness");
	failures++;
}

/* The watchdog (SIGALRM from bench_team_run) must not leave the segment. */
static void
on_alarm(int sig)
{
	if (seg_name[0])
		shk_seg_unlink(seg_name, NULL);
	_exit(3);
}

/* The p50 and p99 rows of one latency case: "<what> one-way 64 B pNN<mode>"
 * beside "<base> pNN (target <=<target>)". */
static void
lat_rows(const char *what, const char *mode, const struct bench_lat *r,
	 const char *base, const struct bench_lat *b, const char *target)
{
	char name[96], bname[96];

	snprintf(name, sizeof(name), "%s one-way 64 B p50%s", what, mode);
	snprintf(bname, sizeof(bname), "%s p50 (target <=%s)", base, target);
	bench_row("ring", name, r->p50_ns, "ns", bname, b->p50_ns);
	snprintf(name, sizeof(name), "%s one-way 64 B p99%s", what, mode);
	snprintf(bname, sizeof(bname), "%s p99 (target <=%s)", base, target);
	bench_row("ring", name, r->p99_ns, "ns", bname, b->p99_ns);
}

/*
 * Each comparison alternates its cases round by round, one measured run
 * of each per round (bench_runs_each = 1), and reports the medians over
 * the rounds: on a shared VM the speed of the two CPUs' link changes from
 * one second to the next, and alternating puts a baseline and the rings
 * beside it into the same stretches.  A case that fails in any round is
 * reported as failed and gets no row.
 */
#define MAX_ROUNDS 99

struct lat_case {
	int64_t timeout;
	unsigned flags;
	const char *spin_ns; /* SHK_SPIN_NS for the forked parties, or NULL */
	int failed;
	double p50[MAX_ROUNDS], p99[MAX_ROUNDS];
};

/* One measured run of case k (k < 0: the baseline); 0 or a failure. */
static int
lat_run(struct lat_case *lc, int base_futex, struct bench_lat *out, long n)
{
	int rc;

	if (!lc)
		return base_futex ? base_futex_pingpong(n, out)
				  : base_cacheline_pingpong(n, out);
	if (lc->spin_ns)
		setenv("SHK_SPIN_NS", lc->spin_ns, 1);
	rc = ring_pingpong(lc->timeout, lc->flags, n, out);
	if (lc->spin_ns)
		unsetenv("SHK_SPIN_NS");
	return rc;
}

/* Rounds of: baseline, then each ring case; medians into base/res. */
static int
lat_rounds(int base_futex, struct lat_case *cases, int ncases, long n,
	   struct bench_lat *base, struct bench_lat *res)
{
	double b50[MAX_ROUNDS], b99[MAX_ROUNDS];
	int rounds = bench_runs(), r, k, rc;
	struct bench_lat x;

	for (r = 0; r < rounds; r++) {
		if ((rc = lat_run(NULL, base_futex, &x, n)) != 0)
			return rc;
		b50[r] = x.p50_ns;
		b99[r] = x.p99_ns;
		for (k = 0; k < ncases; k++) {
			if (cases[k].failed)
				continue;
			if ((rc = lat_run(&cases[k], 0, &x, n)) != 0) {
				cases[k].failed = rc;
				continue;
			}
			cases[k].p50[r] = x.p50_ns;
			cases[k].p99[r] = x.p99_ns;
		}
	}
	base->p50_ns = bench_median(b50, (size_t)rounds);
	base->p99_ns = bench_median(b99, (size_t)rounds);
	for (k = 0; k < ncases; k++) {
		if (cases[k].failed)
			continue;
		res[k].p50_ns = bench_median(cases[k].p50, (size_t)rounds);
		res[k].p99_ns = bench_median(cases[k].p99, (size_t)rounds);
	}
	return 0;
}

static void
latency(void)
{
	struct lat_case spin[2] = { { .timeout = 0 },
				    { .timeout = 0, .flags = SHK_RING_SPIN } };
	/* The blocking case again with spinning off (SHK_SPIN_NS=0, read by
	 * each forked party), so the ring's sleep path is compared with the
	 * futex baseline's, which never spins. */
	struct lat_case block[2] = { { .timeout = SHK_FOREVER },
				     { .timeout = SHK_FOREVER,
				       .spin_ns = "0" } };
	struct bench_lat base, res[2];
	int rc;

	rc = lat_rounds(0, spin, 2, bench_scale(20000), &base, res);
	if (rc != 0) {
		fail("cache-line ping-pong", rc);
	} else {
		if (spin[0].failed)
			fail("ring busy-poll ping-pong", spin[0].failed);
		else
			lat_rows("busy-poll", "", &res[0], "cache-line", &base,
				 "1.25x");
		if (spin[1].failed)
			fail("ring busy-poll ping-pong (spin)", spin[1].failed);
		else
			lat_rows("busy-poll", " spin", &res[1], "cache-line",
				 &base, "1.25x");
	}
	rc = lat_rounds(1, block, 2, bench_scale(5000), &base, res);
	if (rc != 0) {
		fail("futex ping-pong", rc);
		return;
	}
	if (block[0].failed)
		fail("ring blocking ping-pong", block[0].failed);
	else
		lat_rows("blocking", "", &res[0], "futex", &base, "1.2x");
	if (block[1].failed)
		fail("ring blocking ping-pong without spin", block[1].failed);
	else
		lat_rows("blocking no-spin", "", &res[1], "futex", &base,
			 "1.2x");
}

/* The throughput cases of one record size, in the order they run. */
enum { T_SPSC, T_UDS, T_ONE, T_BATCH, T_ZC, T_SPIN, T_N };

static int
tput_run(int k, size_t len, long count, double *rate)
{
	switch (k) {
	case T_SPSC:
		return base_spsc_stream(len, RING_CAP, count, rate);
	case T_UDS:
		return base_uds_stream(len, stream_count(len, 50000, 64u << 20),
				       rate);
	case T_ONE:
		return ring_stream(&ring_st_ops, len, 0, count, rate);
	case T_BATCH:
		return ring_stream(&ring_st_ops, len, SHK_RING_BATCH, count,
				   rate);
	case T_ZC:
		return ring_stream(&ring_zc_ops, len, 0, count, rate);
	default:
		return ring_stream(&ring_st_ops, len, SHK_RING_SPIN, count,
				   rate);
	}
}

static const char *const tput_what[T_N] = {
	"spsc ring stream",    "unix socket stream",      "ring stream",
	"ring stream (batch)", "ring stream (zero-copy)", "ring stream (spin)"
};

static void
throughput(void)
{
	size_t i;

	for (i = 0; i < sizeof(rec_sizes) / sizeof(rec_sizes[0]); i++) {
		size_t len = rec_sizes[i];
		long count = stream_count(len, 1000000, 256u << 20);
		double runs[T_N][MAX_ROUNDS], med[T_N];
		int failed[T_N] = { 0 }, rounds = bench_runs(), r, k, rc;
		char sz[32], name[96], base[96];

		for (r = 0; r < rounds; r++) {
			for (k = 0; k < T_N; k++) {
				if (failed[k])
					continue;
				rc = tput_run(k, len, count, &runs[k][r]);
				if (rc != 0) {
					fail(tput_what[k], rc);
					failed[k] = 1;
				}
			}
		}
		for (k = 0; k < T_N; k++)
			med[k] = failed[k] ? 0
					   : bench_median(runs[k],
							  (size_t)rounds);
		bench_size_str(len, sz, sizeof(sz));
		if (med[T_SPSC] > 0) {
			snprintf(base, sizeof(base),
				 "SPSC ring %s (target >=0.8x)", sz);
			snprintf(name, sizeof(name), "throughput %s", sz);
			if (med[T_ONE] > 0)
				bench_rate_row("ring", name, len, med[T_ONE],
					       base, med[T_SPSC]);
			snprintf(name, sizeof(name), "throughput %s batch", sz);
			if (med[T_BATCH] > 0)
				bench_rate_row("ring", name, len, med[T_BATCH],
					       base, med[T_SPSC]);
			snprintf(name, sizeof(name), "throughput %s spin", sz);
			if (med[T_SPIN] > 0)
				bench_rate_row("ring", name, len, med[T_SPIN],
					       base, med[T_SPSC]);
		}
		if (med[T_UDS] > 0) {
			snprintf(base, sizeof(base),
				 "unix socket %s (target >=10x)", sz);
			snprintf(name, sizeof(name), "throughput %s", sz);
			if (med[T_ONE] > 0)
				bench_rate_row("ring", name, len, med[T_ONE],
					       base, med[T_UDS]);
			/* The loans hand records over without touching
			 * their payload (8 bytes of it): a rate of records,
			 * in Mmsg/s at every size, not data moved in MB/s */
			snprintf(name, sizeof(name),
				 "zero-copy %s, payload untouched", sz);
			snprintf(base, sizeof(base), "unix socket %s", sz);
			if (med[T_ZC] > 0)
				bench_row("ring", name, med[T_ZC] / 1e6,
					  "Mmsg/s", base, med[T_UDS] / 1e6);
		}
	}
}

int
main(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	bench_runs_each = 1; /* the rounds alternate the cases */
	printf("# ring vs same-run baselines, two pinned processes (%d "
	       "CPUs), median of %d alternating rounds, ring cap %u KiB\n",
	       bench_ncpus(), bench_runs(), (unsigned)(RING_CAP >> 10));
	latency();
	throughput();
	return failures ? 1 : 0;
}
