/*
 * bench_baseline - measures the reference points themselves (baselines.h)
 * and prints them against each other, so that a reader of
 * bench/results/latest.md sees what the machine can do without shmkit:
 * futex vs busy-poll, pipe vs futex, Unix socket vs pipe, pipe vs a
 * shared-memory ring.  The shmkit benchmarks measure their own baselines
 * again in their own runs; these rows are context, not their references.
 */
#include "baselines.h"

/* Streaming record sizes (issue 3) and the SPSC ring's buffer. */
static const size_t rec_sizes[] = { 8, 64, 1024, 65536 };
#define SPSC_BUF_LEN ((size_t)1 << 20)

static int failures;

static void
fail(const char *what)
{
	fprintf(stderr, "bench_baseline: %s failed\n", what);
	failures++;
}

/* Records to stream: ~bytes_cap bytes, at most max_count records. */
static long
stream_count(size_t rec_len, long max_count, size_t bytes_cap)
{
	long n = (long)(bytes_cap / rec_len);

	if (n > max_count)
		n = max_count;
	return bench_scale(n < 64 ? 64 : n);
}

/*
 * Each comparison alternates its cases round by round, one measured run
 * of each per round (bench_runs_each = 1), and reports the medians over
 * the rounds, as bench_ring does: on a shared VM the machine's speed
 * changes from one second to the next, and alternating puts the cases of
 * a ratio into the same stretches.  A case that fails in any round gets
 * no row.
 */
#define MAX_ROUNDS 99

enum { L_CL, L_FX, L_PP, L_US, L_N };
static const char *const lat_what[L_N] = { "cache-line ping-pong",
					   "futex ping-pong", "pipe ping-pong",
					   "unix socket ping-pong" };

static int
lat_run(int k, struct bench_lat *out)
{
	long n_spin = bench_scale(20000), n_sys = bench_scale(5000);

	switch (k) {
	case L_CL:
		return base_cacheline_pingpong(n_spin, out);
	case L_FX:
		return base_futex_pingpong(n_sys, out);
	case L_PP:
		return base_pipe_pingpong(64, n_sys, out);
	default:
		return base_uds_pingpong(64, n_sys, out);
	}
}

static void
latency(void)
{
	double p50[L_N][MAX_ROUNDS], p99[L_N][MAX_ROUNDS];
	struct bench_lat m[L_N];
	int ok[L_N] = { 1, 1, 1, 1 }, rounds = bench_runs(), r, k;
	struct bench_lat x;

	for (r = 0; r < rounds; r++)
		for (k = 0; k < L_N; k++) {
			if (!ok[k])
				continue;
			if (lat_run(k, &x) != 0) {
				fail(lat_what[k]);
				ok[k] = 0;
				continue;
			}
			p50[k][r] = x.p50_ns;
			p99[k][r] = x.p99_ns;
		}
	for (k = 0; k < L_N; k++)
		if (ok[k]) {
			m[k].p50_ns = bench_median(p50[k], (size_t)rounds);
			m[k].p99_ns = bench_median(p99[k], (size_t)rounds);
		}
	if (ok[L_CL] && ok[L_FX]) {
		bench_row("baseline", "futex ping-pong one-way p50",
			  m[L_FX].p50_ns, "ns", "cache-line ping-pong p50",
			  m[L_CL].p50_ns);
		bench_row("baseline", "futex ping-pong one-way p99",
			  m[L_FX].p99_ns, "ns", "cache-line ping-pong p99",
			  m[L_CL].p99_ns);
	}
	if (ok[L_FX] && ok[L_PP]) {
		bench_row("baseline", "pipe ping-pong 64 B p50", m[L_PP].p50_ns,
			  "ns", "futex ping-pong p50", m[L_FX].p50_ns);
		bench_row("baseline", "pipe ping-pong 64 B p99", m[L_PP].p99_ns,
			  "ns", "futex ping-pong p99", m[L_FX].p99_ns);
	}
	if (ok[L_PP] && ok[L_US]) {
		bench_row("baseline", "unix socket ping-pong 64 B p50",
			  m[L_US].p50_ns, "ns", "pipe ping-pong 64 B p50",
			  m[L_PP].p50_ns);
		bench_row("baseline", "unix socket ping-pong 64 B p99",
			  m[L_US].p99_ns, "ns", "pipe ping-pong 64 B p99",
			  m[L_PP].p99_ns);
	}
}

enum { S_SPSC, S_PIPE, S_UDS, S_N };
static const char *const st_what[S_N] = { "spsc ring stream", "pipe stream",
					  "unix socket stream" };

static int
st_run(int k, size_t len, double *rate)
{
	switch (k) {
	case S_SPSC:
		return base_spsc_stream(len, SPSC_BUF_LEN,
					stream_count(len, 1000000, 256u << 20),
					rate);
	case S_PIPE:
		return base_pipe_stream(
			len, stream_count(len, 50000, 64u << 20), rate);
	default:
		return base_uds_stream(len, stream_count(len, 50000, 64u << 20),
				       rate);
	}
}

static void
streaming(void)
{
	size_t i;

	for (i = 0; i < sizeof(rec_sizes) / sizeof(rec_sizes[0]); i++) {
		size_t len = rec_sizes[i];
		double v[S_N][MAX_ROUNDS], m[S_N];
		char sz[32], name[96], base[96];
		int ok[S_N] = { 1, 1, 1 }, rounds = bench_runs(), r, k;

		for (r = 0; r < rounds; r++)
			for (k = 0; k < S_N; k++) {
				if (ok[k] && st_run(k, len, &v[k][r]) != 0) {
					fail(st_what[k]);
					ok[k] = 0;
				}
			}
		for (k = 0; k < S_N; k++)
			m[k] = ok[k] ? bench_median(v[k], (size_t)rounds) : 0;
		bench_size_str(len, sz, sizeof(sz));
		if (ok[S_SPSC] && ok[S_PIPE]) {
			snprintf(name, sizeof(name), "pipe stream %s", sz);
			snprintf(base, sizeof(base), "SPSC ring %s", sz);
			bench_rate_row("baseline", name, len, m[S_PIPE], base,
				       m[S_SPSC]);
		}
		if (ok[S_PIPE] && ok[S_UDS]) {
			snprintf(name, sizeof(name), "unix socket stream %s",
				 sz);
			snprintf(base, sizeof(base), "pipe stream %s", sz);
			bench_rate_row("baseline", name, len, m[S_UDS], base,
				       m[S_PIPE]);
		}
	}
}

int
main(void)
{
	bench_runs_each = 1; /* the rounds alternate the cases */
	printf("# baselines between two pinned processes (%d CPUs); "
	       "median of %d alternating rounds; clock read %.1f ns (inside "
	       "every "
	       "latency sample)\n",
	       bench_ncpus(), bench_runs(), bench_clock_cost_ns());
	latency();
	streaming();
	return failures ? 1 : 0;
}
