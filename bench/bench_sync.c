/*
 * bench_sync.c - shk_mutex and shk_sem against their baselines, measured
 * in the same run:
 *   - uncontended lock/unlock: shk_mutex vs a glibc robust process-shared
 *     pthread mutex placed in the same segment;
 *   - contended lock/increment/unlock by 2 processes: the same pair;
 *   - semaphore ping-pong between 2 processes (post/wait round trip) vs a
 *     bare futex ping-pong written here.
 * Each figure is the median of RUNS runs.  SHK_BENCH_SCALE scales the
 * iteration counts (bench_scale()).
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bench.h"
#include "shmkit.h"

#define RUNS 5

struct shared {
	pthread_mutex_t pm;
	uint8_t pad0[64];
	uint64_t counter;
	uint8_t pad1[56];
	_Atomic uint32_t go;
	uint8_t pad2[60];
	_Atomic uint32_t futex_word;
	uint8_t pad3[60];
};

static shk_seg *g_seg;
static struct shared *g_sh;
static int g_fd;

static void
die(const char *what, int rc)
{
	fprintf(stderr, "bench_sync: %s: %s\n", what, shk_strerror(rc));
	exit(1);
}

static shk_seg *
reopen(void)
{
	shk_seg *s = NULL;
	int rc = shk_seg_open_fd(g_fd, 0, NULL, &s);

	if (rc)
		die("shk_seg_open_fd", rc);
	return s;
}

static shk_mutex *
mutex_on(shk_seg *s)
{
	shk_mutex *m = NULL;
	int rc = shk_mutex_open(s, "m", SHK_CREATE, NULL, &m);

	if (rc)
		die("shk_mutex_open", rc);
	return m;
}

static double
uncontended_shk(long n)
{
	shk_mutex *m = mutex_on(g_seg);
	int64_t t0 = bench_now_ns();

	for (long i = 0; i < n; i++) {
		shk_mutex_lock(m, SHK_FOREVER);
		g_sh->counter++;
		shk_mutex_unlock(m);
	}
	t0 = bench_now_ns() - t0;
	shk_mutex_close(m);
	return (double)t0 / (double)n;
}

static double
uncontended_pthread(long n)
{
	int64_t t0 = bench_now_ns();

	for (long i = 0; i < n; i++) {
		if (pthread_mutex_lock(&g_sh->pm) == EOWNERDEAD)
			pthread_mutex_consistent(&g_sh->pm);
		g_sh->counter++;
		pthread_mutex_unlock(&g_sh->pm);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

/* Two processes each do n lock/increment/unlock; returns ns per op
 * (total time / 2n). */
static double
contended(int use_shk, long n)
{
	pid_t c[2];
	int64_t t0;
	int i;

	atomic_store(&g_sh->go, 0);
	for (i = 0; i < 2; i++) {
		c[i] = fork();
		if (c[i] < 0) {
			perror("fork");
			exit(1);
		}
		if (c[i] == 0) {
			shk_mutex *m = NULL;
			bench_pin(i);
			if (use_shk)
				m = mutex_on(reopen());
			while (!atomic_load(&g_sh->go))
				;
			for (long k = 0; k < n; k++) {
				if (use_shk) {
					shk_mutex_lock(m, SHK_FOREVER);
					g_sh->counter++;
					shk_mutex_unlock(m);
				} else {
					pthread_mutex_lock(&g_sh->pm);
					g_sh->counter++;
					pthread_mutex_unlock(&g_sh->pm);
				}
			}
			_exit(0);
		}
	}
	usleep(20000);
	t0 = bench_now_ns();
	atomic_store(&g_sh->go, 1);
	for (i = 0; i < 2; i++)
		waitpid(c[i], NULL, 0);
	return (double)(bench_now_ns() - t0) / (double)(2 * n);
}

static void
futex_wait_word(_Atomic uint32_t *w, uint32_t v)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void
futex_wake_word(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/*
 * Bare futex ping-pong: the word says whose turn it is (0 parent, 1
 * child); each side flips it, wakes the other, and sleeps while it is not
 * its turn.  Returns ns per one-way hand-off.
 */
static double
pingpong_futex(long n)
{
	_Atomic uint32_t *w = &g_sh->futex_word;
	int64_t t0;
	pid_t c;

	atomic_store(w, 0);
	c = fork();
	if (c == 0) {
		bench_pin(1);
		for (long k = 0; k < n; k++) {
			while (atomic_load(w) != 1)
				futex_wait_word(w, 0);
			atomic_store(w, 0);
			futex_wake_word(w);
		}
		_exit(0);
	}
	bench_pin(0);
	usleep(20000);
	t0 = bench_now_ns();
	for (long k = 0; k < n; k++) {
		atomic_store(w, 1);
		futex_wake_word(w);
		while (atomic_load(w) != 0)
			futex_wait_word(w, 1);
	}
	t0 = bench_now_ns() - t0;
	waitpid(c, NULL, 0);
	return (double)t0 / (double)(2 * n);
}

static double
pingpong_sem(long n)
{
	shk_sem *a = NULL, *b = NULL;
	int64_t t0;
	pid_t c;
	int rc;

	if ((rc = shk_sem_open(g_seg, "ping", SHK_CREATE, NULL, &a)) ||
	    (rc = shk_sem_open(g_seg, "pong", SHK_CREATE, NULL, &b)))
		die("shk_sem_open", rc);
	c = fork();
	if (c == 0) {
		shk_seg *s = reopen();
		shk_sem *ca = NULL, *cb = NULL;
		bench_pin(1);
		if (shk_sem_open(s, "ping", 0, NULL, &ca) ||
		    shk_sem_open(s, "pong", 0, NULL, &cb))
			_exit(1);
		for (long k = 0; k < n; k++) {
			shk_sem_wait(ca, SHK_FOREVER);
			shk_sem_post(cb, 1);
		}
		_exit(0);
	}
	bench_pin(0);
	usleep(20000);
	t0 = bench_now_ns();
	for (long k = 0; k < n; k++) {
		shk_sem_post(a, 1);
		shk_sem_wait(b, SHK_FOREVER);
	}
	t0 = bench_now_ns() - t0;
	waitpid(c, NULL, 0);
	shk_sem_close(a);
	shk_sem_close(b);
	return (double)t0 / (double)(2 * n);
}

static double
median_of(double (*fn)(long), long n)
{
	double v[RUNS];

	fn(n / 10 + 1); /* warm-up */
	for (int i = 0; i < RUNS; i++)
		v[i] = fn(n);
	return bench_quantile(v, RUNS, 0.5);
}

static double
contended_shk(long n)
{
	return contended(1, n);
}

static double
contended_pthread(long n)
{
	return contended(0, n);
}

int
main(void)
{
	char nm[64];
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	pthread_mutexattr_t a;
	void *p = NULL;
	int rc;
	long n_unc = bench_scale(2000000), n_con = bench_scale(500000);
	long n_pp = bench_scale(20000);
	double x, base;

	snprintf(nm, sizeof(nm), "shk-bench-sync-%d", (int)getpid());
	o.len = 1 << 20;
	rc = shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &g_seg);
	if (rc)
		die("shk_seg_open", rc);
	shk_seg_unlink(nm, NULL); /* nothing left behind, whatever happens */
	g_fd = shk_seg_fd(g_seg);
	d.kind = SHK_KIND_BLOB;
	d.elem_len = sizeof(struct shared);
	d.cap = 1;
	rc = shk_obj_open(g_seg, "shared", SHK_CREATE, &d, NULL, &p);
	if (rc)
		die("shk_obj_open", rc);
	g_sh = p;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&g_sh->pm, &a);

	printf("bench_sync: %d CPUs; median of %d runs\n", bench_ncpus(), RUNS);
	bench_pin(0);
	base = median_of(uncontended_pthread, n_unc);
	x = median_of(uncontended_shk, n_unc);
	bench_row("sync", "mutex lock+unlock, uncontended", x, "ns/op",
		  "pthread robust pshared", base);
	base = median_of(contended_pthread, n_con);
	x = median_of(contended_shk, n_con);
	bench_row("sync", "mutex lock+inc+unlock, 2 procs", x, "ns/op",
		  "pthread robust pshared", base);
	base = median_of(pingpong_futex, n_pp);
	x = median_of(pingpong_sem, n_pp);
	bench_row("sync", "sem ping-pong one-way, 2 procs", x, "ns",
		  "bare futex ping-pong", base);
	shk_seg_close(g_seg);
	return 0;
}
