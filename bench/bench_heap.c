/*
 * bench_heap.c - shared-heap alloc+free against glibc malloc+free, and
 * segment create/open/close against raw shm_open + ftruncate + mmap.
 *
 * Two allocation patterns per size, single process, single thread:
 *   pair   alloc then free at once (the free-list fast path)
 *   batch  alloc 256 blocks, then free them in allocation order
 * Each heap figure is the median of 15 short runs after a warm-up, in ns
 * per alloc+free, beside glibc in the same process (runs alternate between
 * the two); segment figures are medians of 5 runs.
 */
#include "bench.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "shmkit.h"

#define RUNS 5
#define HEAP_RUNS 15 /* short alternating runs per heap figure */
#define BATCH 256

static volatile uint64_t sink;

static double
run_shk_pair(shk_seg *s, size_t len, long n)
{
	int64_t t0 = bench_now_ns();
	uint64_t off;
	long i;

	for (i = 0; i < n; i++) {
		if (shk_alloc(s, len, &off))
			abort();
		sink += off;
		if (shk_free(s, off))
			abort();
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double
run_libc_pair(size_t len, long n)
{
	int64_t t0 = bench_now_ns();
	long i;

	for (i = 0; i < n; i++) {
		void *p = malloc(len);

		if (!p)
			abort();
		sink += (uintptr_t)p;
		*(volatile char *)p = 0;
		free(p);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double
run_shk_batch(shk_seg *s, size_t len, long n)
{
	static uint64_t offs[BATCH];
	int64_t t0 = bench_now_ns();
	long i, j, rounds = n / BATCH;

	for (i = 0; i < rounds; i++) {
		for (j = 0; j < BATCH; j++) {
			if (shk_alloc(s, len, &offs[j]))
				abort();
		}
		for (j = 0; j < BATCH; j++) {
			if (shk_free(s, offs[j]))
				abort();
		}
	}
	return (double)(bench_now_ns() - t0) / (double)(rounds * BATCH);
}

static double
run_libc_batch(size_t len, long n)
{
	static void *ps[BATCH];
	int64_t t0 = bench_now_ns();
	long i, j, rounds = n / BATCH;

	for (i = 0; i < rounds; i++) {
		for (j = 0; j < BATCH; j++) {
			ps[j] = malloc(len);
			if (!ps[j])
				abort();
			*(volatile char *)ps[j] = 0;
		}
		for (j = 0; j < BATCH; j++)
			free(ps[j]);
	}
	return (double)(bench_now_ns() - t0) / (double)(rounds * BATCH);
}

/*
 * Medians of HEAP_RUNS runs of n / 3 operations of fn (shmkit) and lfn
 * (glibc), taken alternately: a slow stretch of the shared VM then hits
 * both sides alike, and several short runs outvote it.
 */
static void
median_pair(double (*fn)(shk_seg *, size_t, long), double (*lfn)(size_t, long),
	    shk_seg *s, size_t len, long n, double *a, double *b)
{
	double va[HEAP_RUNS], vb[HEAP_RUNS];
	int r;

	fn(s, len, n / 4 + 1); /* warm-up */
	lfn(len, n / 4 + 1);
	for (r = 0; r < HEAP_RUNS; r++) {
		va[r] = fn(s, len, n / 3 + 1);
		vb[r] = lfn(len, n / 3 + 1);
	}
	*a = bench_quantile(va, HEAP_RUNS, 0.5);
	*b = bench_quantile(vb, HEAP_RUNS, 0.5);
}

/* ------------------------------------------------------------------ */

static double
seg_cycle(const char *nm, long n)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	int64_t t0 = bench_now_ns();
	long i;

	o.len = 1 << 20;
	for (i = 0; i < n; i++) {
		shk_seg *s = NULL;

		if (shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &s))
			abort();
		shk_seg_close(s);
		if (shk_seg_unlink(nm, NULL))
			abort();
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double
raw_cycle(const char *nm, long n)
{
	int64_t t0 = bench_now_ns();
	long i;

	for (i = 0; i < n; i++) {
		int fd = shm_open(nm, O_CREAT | O_EXCL | O_RDWR, 0600);
		void *p;

		if (fd < 0 || ftruncate(fd, 1 << 20))
			abort();
		p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 0);
		if (p == MAP_FAILED)
			abort();
		*(volatile char *)p = 1;
		munmap(p, 1 << 20);
		close(fd);
		shm_unlink(nm);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double
seg_reopen(const char *nm, long n)
{
	int64_t t0 = bench_now_ns();
	long i;

	for (i = 0; i < n; i++) {
		shk_seg *s = NULL;

		if (shk_seg_open(nm, 0, NULL, &s))
			abort();
		shk_seg_close(s);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double
raw_reopen(const char *nm, long n)
{
	int64_t t0 = bench_now_ns();
	long i;

	for (i = 0; i < n; i++) {
		int fd = shm_open(nm, O_RDWR, 0600);
		struct stat stt;
		void *p;

		if (fd < 0 || fstat(fd, &stt))
			abort();
		p = mmap(NULL, (size_t)stt.st_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			abort();
		sink += *(volatile char *)p;
		munmap(p, (size_t)stt.st_size);
		close(fd);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double
median2(double (*fn)(const char *, long), const char *nm, long n)
{
	double v[RUNS];
	int r;

	fn(nm, n / 4 + 1);
	for (r = 0; r < RUNS; r++)
		v[r] = fn(nm, n);
	return bench_quantile(v, RUNS, 0.5);
}

int
main(void)
{
	static const size_t sizes[] = { 16, 64, 256, 1024, 4096, 16384, 65536 };
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_seg *s = NULL;
	char nm[64], nm2[64], name[64];
	size_t i;
	long n = bench_scale(200000), ns = bench_scale(500);

	snprintf(nm, sizeof(nm), "/shk-bench-heap-%d", (int)getpid());
	snprintf(nm2, sizeof(nm2), "/shk-bench-raw-%d", (int)getpid());
	bench_pin(0);
	/* glibc baseline without returning memory to the kernel between
	 * batches (its default trim threshold would make it look slow) */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	o.len = 64 << 20;
	if (shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &s)) {
		fprintf(stderr, "bench_heap: cannot create %s\n", nm);
		return 1;
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double a, b;

		median_pair(run_shk_pair, run_libc_pair, s, sizes[i], n, &a,
			    &b);
		snprintf(name, sizeof(name), "alloc+free pair %zu B", sizes[i]);
		bench_row("heap", name, a, "ns/op", "glibc malloc+free", b);
		median_pair(run_shk_batch, run_libc_batch, s, sizes[i], n, &a,
			    &b);
		snprintf(name, sizeof(name), "alloc+free batch256 %zu B",
			 sizes[i]);
		bench_row("heap", name, a, "ns/op", "glibc malloc+free", b);
	}
	shk_seg_close(s);
	shk_seg_unlink(nm, NULL);

	{
		double a = median2(seg_cycle, nm, ns);
		double b = median2(raw_cycle, nm2, ns);

		bench_row("segment", "create+close+unlink 1 MiB", a / 1000,
			  "us/op", "raw shm_open..shm_unlink", b / 1000);
	}
	o.len = 1 << 20;
	if (shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &s) == 0) {
		int fd = shm_open(nm2, O_CREAT | O_EXCL | O_RDWR, 0600);
		double a, b;

		if (fd < 0 || ftruncate(fd, 1 << 20))
			abort();
		close(fd);
		a = median2(seg_reopen, nm, ns);
		b = median2(raw_reopen, nm2, ns);
		bench_row("segment", "open+close 1 MiB", a / 1000, "us/op",
			  "raw shm_open+mmap+munmap", b / 1000);
		shm_unlink(nm2);
		shk_seg_close(s);
		shk_seg_unlink(nm, NULL);
	}
	return 0;
}
