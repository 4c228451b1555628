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

static void
latency(void)
{
	struct bench_lat cl, fx, pp, us;
	long n_spin = bench_scale(20000), n_sys = bench_scale(5000);
	int ok_cl, ok_fx, ok_pp, ok_us;

	ok_cl = base_cacheline_pingpong(n_spin, &cl) == 0;
	if (!ok_cl)
		fail("cache-line ping-pong");
	ok_fx = base_futex_pingpong(n_sys, &fx) == 0;
	if (!ok_fx)
		fail("futex ping-pong");
	ok_pp = base_pipe_pingpong(64, n_sys, &pp) == 0;
	if (!ok_pp)
		fail("pipe ping-pong");
	ok_us = base_uds_pingpong(64, n_sys, &us) == 0;
	if (!ok_us)
		fail("unix socket ping-pong");

	if (ok_cl && ok_fx) {
		bench_row("baseline", "futex ping-pong one-way p50", fx.p50_ns,
			  "ns", "cache-line ping-pong p50", cl.p50_ns);
		bench_row("baseline", "futex ping-pong one-way p99", fx.p99_ns,
			  "ns", "cache-line ping-pong p99", cl.p99_ns);
	}
	if (ok_fx && ok_pp) {
		bench_row("baseline", "pipe ping-pong 64 B p50", pp.p50_ns,
			  "ns", "futex ping-pong p50", fx.p50_ns);
		bench_row("baseline", "pipe ping-pong 64 B p99", pp.p99_ns,
			  "ns", "futex ping-pong p99", fx.p99_ns);
	}
	if (ok_pp && ok_us) {
		bench_row("baseline", "unix socket ping-pong 64 B p50",
			  us.p50_ns, "ns", "pipe ping-pong 64 B p50",
			  pp.p50_ns);
		bench_row("baseline", "unix socket ping-pong 64 B p99",
			  us.p99_ns, "ns", "pipe ping-pong 64 B p99",
			  pp.p99_ns);
	}
}

static void
streaming(void)
{
	size_t i;

	for (i = 0; i < sizeof(rec_sizes) / sizeof(rec_sizes[0]); i++) {
		size_t len = rec_sizes[i];
		double spsc = 0, pipe_r = 0, uds = 0;
		char sz[32], name[96], base[96];
		int ok_r, ok_p, ok_u;

		bench_size_str(len, sz, sizeof(sz));
		ok_r = base_spsc_stream(len, SPSC_BUF_LEN,
					stream_count(len, 1000000, 256u << 20),
					&spsc) == 0;
		if (!ok_r)
			fail("spsc ring stream");
		ok_p = base_pipe_stream(len,
					stream_count(len, 50000, 64u << 20),
					&pipe_r) == 0;
		if (!ok_p)
			fail("pipe stream");
		ok_u = base_uds_stream(len, stream_count(len, 50000, 64u << 20),
				       &uds) == 0;
		if (!ok_u)
			fail("unix socket stream");
		if (ok_r && ok_p) {
			snprintf(name, sizeof(name), "pipe stream %s", sz);
			snprintf(base, sizeof(base), "SPSC ring %s", sz);
			bench_rate_row("baseline", name, len, pipe_r, base,
				       spsc);
		}
		if (ok_p && ok_u) {
			snprintf(name, sizeof(name), "unix socket stream %s",
				 sz);
			snprintf(base, sizeof(base), "pipe stream %s", sz);
			bench_rate_row("baseline", name, len, uds, base,
				       pipe_r);
		}
	}
}

int
main(void)
{
	printf("# baselines between two pinned processes (%d CPUs); "
	       "median of %d runs; clock read %.1f ns (inside every "
	       "latency sample)\n",
	       bench_ncpus(), bench_runs(), bench_clock_cost_ns());
	latency();
	streaming();
	return failures ? 1 : 0;
}
