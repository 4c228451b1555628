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

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline int64_t
bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Pins the calling process/thread to CPU (cpu mod ncpus); 0 on success. */
static inline int
bench_pin(int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (n < 1)
		return -1;
	CPU_ZERO(&set);
	CPU_SET((int)(cpu % n), &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static inline int
bench_ncpus(void)
{
	return (int)sysconf(_SC_NPROCESSORS_ONLN);
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

	printf("%-10s %-34s %12.2f %-8s | %-28s %12.2f | x%.2f\n", group, name,
	       value, unit, base_name, base_value, ratio);
	fflush(stdout);
	if (path && *path) {
		FILE *f = fopen(path, "a");
		if (f) {
			fprintf(f, "| %s | %s | %.2f %s | %s | %.2f | %.2f |\n",
				group, name, value, unit, base_name,
				base_value, ratio);
			fclose(f);
		}
	}
}

#endif /* SHK_BENCH_H */
