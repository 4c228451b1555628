/*
 * bench_sync.c - shk_mutex and shk_sem against their baselines, measured
 * in the same run:
 *   - uncontended lock/unlock: shk_mutex vs a glibc robust process-shared
 *     pthread mutex placed in the same segment;
 *   - contended lock/increment/unlock by 2 processes: the same pair;
 *   - semaphore ping-pong between 2 processes (post/wait round trip) vs a
 *     bare futex ping-pong written here, once with shmkit's default spin
 *     before sleeping and once with SHK_SPIN_NS=0 (each side sleeps at
 *     once, like the futex baseline, which never spins).
 * Each comparison alternates its cases round by round (baseline, then
 * shmkit, SHK_BENCH_RUNS rounds after a warm-up) and reports the medians
 * over the rounds, as bench_ring does: on a shared VM the machine's speed
 * changes from one second to the next.  SHK_BENCH_SCALE scales the
 * iteration counts (bench_scale()).
 *
 * Every call's return code is checked and every counter is compared with
 * the number of increments made; any failure ends the program with a
 * message and exit status 1 (docs/benchmarks.md: a program exits 0 only
 * when its records checked out).
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

#define MAX_ROUNDS 99

struct shared {
	pthread_mutex_t pm;
	uint8_t pad0[64];
	uint64_t counter;
	uint8_t pad1[56];
	_Atomic uint32_t go;
	uint8_t pad2[60];
	_Atomic uint32_t futex_word;
	uint8_t pad3[60];
	int64_t pp_ns; /* the pinger's measured time (forked ping-pongs) */
	uint8_t pad4[56];
};

static shk_seg *g_seg;
static struct shared *g_sh;
static int g_fd;
/* SHK_BENCH_SYNC_FAULT (tests/bench.sh): the uncontended shk_mutex case
 * loses one increment, which the counter check must catch */
static int g_fault;

static void
die(const char *what, int rc)
{
	fprintf(stderr, "bench_sync: %s: %s\n", what, shk_strerror(rc));
	exit(1);
}

static void
fail(const char *what)
{
	fprintf(stderr, "bench_sync: %s\n", what);
	exit(1);
}

/* A forked party's failure: says what failed, exits 1 at once. */
static void
child_fail(const char *what, int rc)
{
	fprintf(stderr, "bench_sync: child %d: %s: %s\n", (int)getpid(), what,
		rc < 0 ? shk_strerror(rc) : strerror(rc));
	_exit(1);
}

/* Forks a party: pinned to CPU `cpu`, with a watchdog; dies on error. */
static pid_t
fork_party(int cpu)
{
	pid_t c;

	fflush(stdout);
	fflush(stderr);
	c = fork();
	if (c < 0) {
		perror("bench_sync: fork");
		exit(1);
	}
	if (c == 0) {
		alarm(BENCH_WATCHDOG_S); /* a hung peer must not hang us */
		bench_pin(cpu);
	}
	return c;
}

/* Waits for child c; 0 when it exited 0, else says how it ended. */
static int
reap(pid_t c, const char *what)
{
	int st;

	while (waitpid(c, &st, 0) < 0) {
		if (errno != EINTR) {
			perror("bench_sync: waitpid");
			return -1;
		}
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		fprintf(stderr, "bench_sync: %s: child killed by signal %d\n",
			what, WTERMSIG(st));
	else
		fprintf(stderr, "bench_sync: %s: child exited %d\n", what,
			WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return -1;
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

/* One locked increment through shk_mutex; 0 or shk's code. */
static int
shk_inc(shk_mutex *m)
{
	int rc = shk_mutex_lock(m, SHK_FOREVER);

	if (rc != 0)
		return rc; /* EOWNERDEAD too: no party dies holding it here */
	g_sh->counter++;
	return shk_mutex_unlock(m);
}

/* The same through the pthread mutex; 0 or an errno value. */
static int
pthread_inc(void)
{
	int rc = pthread_mutex_lock(&g_sh->pm);

	if (rc != 0)
		return rc; /* EOWNERDEAD too: no party dies holding it here */
	g_sh->counter++;
	return pthread_mutex_unlock(&g_sh->pm);
}

static void
check_counter(const char *what, uint64_t want)
{
	if (g_sh->counter != want) {
		fprintf(stderr,
			"bench_sync: %s: counter is %llu after %llu "
			"increments\n",
			what, (unsigned long long)g_sh->counter,
			(unsigned long long)want);
		exit(1);
	}
}

static double
uncontended_shk(long n)
{
	shk_mutex *m = mutex_on(g_seg);
	int64_t t0;
	int rc;

	g_sh->counter = 0;
	t0 = bench_now_ns();
	for (long i = 0; i < n; i++)
		if ((rc = shk_inc(m)) != 0)
			die("shk_mutex_lock/unlock, uncontended", rc);
	t0 = bench_now_ns() - t0;
	shk_mutex_close(m);
	if (g_fault)
		g_sh->counter--;
	check_counter("shk_mutex, uncontended", (uint64_t)n);
	return (double)t0 / (double)n;
}

static double
uncontended_pthread(long n)
{
	int64_t t0;
	int rc;

	g_sh->counter = 0;
	t0 = bench_now_ns();
	for (long i = 0; i < n; i++)
		if ((rc = pthread_inc()) != 0) {
			fprintf(stderr, "bench_sync: pthread mutex: %s\n",
				strerror(rc));
			exit(1);
		}
	t0 = bench_now_ns() - t0;
	check_counter("pthread mutex, uncontended", (uint64_t)n);
	return (double)t0 / (double)n;
}

/* Two processes each do n lock/increment/unlock; returns ns per op
 * (total time / 2n). */
static double
contended(int use_shk, long n)
{
	const char *what =
		use_shk ? "shk_mutex, 2 procs" : "pthread mutex, 2 procs";
	pid_t c[2];
	int64_t t0;
	int i, bad = 0;

	g_sh->counter = 0;
	atomic_store(&g_sh->go, 0);
	for (i = 0; i < 2; i++) {
		c[i] = fork_party(i);
		if (c[i] == 0) {
			shk_mutex *m = NULL;
			int rc;

			if (use_shk)
				m = mutex_on(reopen());
			while (!atomic_load(&g_sh->go))
				;
			for (long k = 0; k < n; k++) {
				rc = use_shk ? shk_inc(m) : pthread_inc();
				if (rc != 0)
					child_fail(what, rc);
			}
			_exit(0);
		}
	}
	usleep(20000);
	t0 = bench_now_ns();
	atomic_store(&g_sh->go, 1);
	for (i = 0; i < 2; i++)
		if (reap(c[i], what) != 0)
			bad = 1;
	t0 = bench_now_ns() - t0;
	if (bad)
		exit(1);
	check_counter(what, 2 * (uint64_t)n);
	return (double)t0 / (double)(2 * n);
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

/* FUTEX_WAIT; EAGAIN (the word changed) and EINTR are fine, the rest not. */
static void
futex_wait_word(_Atomic uint32_t *w, uint32_t v)
{
	if (syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0) <
		    0 &&
	    errno != EAGAIN && errno != EINTR)
		child_fail("futex wait", errno);
}

static void
futex_wake_word(_Atomic uint32_t *w)
{
	if (syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0) < 0)
		child_fail("futex wake", errno);
}

/*
 * Runs a ping-pong of n round trips as two forked parties, the pinger on
 * CPU 0 and the ponger on CPU 1, so that both read SHK_SPIN_NS afresh;
 * the pinger times its loop into g_sh->pp_ns.  Returns ns per one-way
 * hand-off; exits when a party failed.
 */
static double
pingpong(void (*ping)(long), void (*pong)(long), long n, const char *what)
{
	pid_t c[2];
	int bad = 0;

	g_sh->pp_ns = 0;
	c[1] = fork_party(1);
	if (c[1] == 0) {
		pong(n);
		_exit(0);
	}
	c[0] = fork_party(0);
	if (c[0] == 0) {
		usleep(20000);
		ping(n);
		_exit(0);
	}
	if (reap(c[0], what) != 0) {
		kill(c[1], SIGKILL);
		bad = 1;
	}
	if (reap(c[1], what) != 0)
		bad = 1;
	if (bad)
		exit(1);
	if (g_sh->pp_ns <= 0)
		fail("ping-pong: the pinger reported no time");
	return (double)g_sh->pp_ns / (double)(2 * n);
}

/*
 * Bare futex ping-pong: the word says whose turn it is (0 pinger, 1
 * ponger); each side flips it, wakes the other, and sleeps while it is not
 * its turn.  The ponger checks each turn and the word's final value.
 */
static void
futex_pong(long n)
{
	_Atomic uint32_t *w = &g_sh->futex_word;

	for (long k = 0; k < n; k++) {
		while (atomic_load(w) != 1)
			futex_wait_word(w, 0);
		atomic_store(w, 0);
		futex_wake_word(w);
	}
}

static void
futex_ping(long n)
{
	_Atomic uint32_t *w = &g_sh->futex_word;
	int64_t t0 = bench_now_ns();

	for (long k = 0; k < n; k++) {
		if (atomic_load(w) != 0)
			child_fail("futex ping-pong: word not 0 at a turn",
				   EPROTO);
		atomic_store(w, 1);
		futex_wake_word(w);
		while (atomic_load(w) != 0)
			futex_wait_word(w, 1);
	}
	g_sh->pp_ns = bench_now_ns() - t0;
}

static double
pingpong_futex(long n)
{
	atomic_store(&g_sh->futex_word, 0);
	return pingpong(futex_ping, futex_pong, n, "futex ping-pong");
}

/* Opens semaphore `name` through a fresh handle of the segment. */
static shk_sem *
sem_on(const char *name)
{
	shk_sem *s = NULL;
	int rc = shk_sem_open(reopen(), name, 0, NULL, &s);

	if (rc)
		child_fail("shk_sem_open", rc);
	return s;
}

/* Both semaphores must be back at 0 after a ping-pong. */
static void
sem_check_zero(shk_sem *s, const char *name)
{
	int v = shk_sem_value(s);

	if (v != 0) {
		fprintf(stderr,
			"bench_sync: sem ping-pong: %s's count is %d, not 0, "
			"at the end\n",
			name, v);
		_exit(1);
	}
}

static void
sem_pong(long n)
{
	shk_sem *a = sem_on("ping"), *b = sem_on("pong");
	int rc;

	for (long k = 0; k < n; k++) {
		if ((rc = shk_sem_wait(a, SHK_FOREVER)) != 0)
			child_fail("shk_sem_wait (pong side)", rc);
		if ((rc = shk_sem_post(b, 1)) != 0)
			child_fail("shk_sem_post (pong side)", rc);
	}
}

static void
sem_ping(long n)
{
	shk_sem *a = sem_on("ping"), *b = sem_on("pong");
	int64_t t0 = bench_now_ns();
	int rc;

	for (long k = 0; k < n; k++) {
		if ((rc = shk_sem_post(a, 1)) != 0)
			child_fail("shk_sem_post (ping side)", rc);
		if ((rc = shk_sem_wait(b, SHK_FOREVER)) != 0)
			child_fail("shk_sem_wait (ping side)", rc);
	}
	t0 = bench_now_ns() - t0;
	/* the ponger's last post was taken by our last wait, and each of our
	 * posts by one of its waits: both counts are 0 */
	sem_check_zero(a, "ping");
	sem_check_zero(b, "pong");
	g_sh->pp_ns = t0;
}

static double
pingpong_sem(long n)
{
	return pingpong(sem_ping, sem_pong, n, "sem ping-pong");
}

/* The same with SHK_SPIN_NS=0: each party sleeps at once (forked parties
 * read it afresh, src/wait.c). */
static double
pingpong_sem_nospin(long n)
{
	double x;

	setenv("SHK_SPIN_NS", "0", 1);
	x = pingpong_sem(n);
	unsetenv("SHK_SPIN_NS");
	return x;
}

/*
 * Rounds of: the baseline, then each shmkit case, one run of each per
 * round after a warm-up of each; medians over the rounds into *base and
 * res[].
 */
static void
rounds(double (*base_fn)(long), double (*const *fns)(long), int nfns, long n,
       double *base, double *res)
{
	static double v[8][MAX_ROUNDS];
	int r, k, runs = bench_runs();

	base_fn(n / 10 + 1); /* warm-up */
	for (k = 0; k < nfns; k++)
		fns[k](n / 10 + 1);
	for (r = 0; r < runs; r++) {
		v[0][r] = base_fn(n);
		for (k = 0; k < nfns; k++)
			v[k + 1][r] = fns[k](n);
	}
	*base = bench_median(v[0], (size_t)runs);
	for (k = 0; k < nfns; k++)
		res[k] = bench_median(v[k + 1], (size_t)runs);
}

int
main(void)
{
	static double (*const unc[])(long) = { uncontended_shk };
	static double (*const con[])(long) = { contended_shk };
	static double (*const pp[])(long) = { pingpong_sem,
					      pingpong_sem_nospin };
	char nm[64];
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	pthread_mutexattr_t a;
	shk_sem *sa = NULL, *sb = NULL;
	void *p = NULL;
	int rc;
	long n_unc = bench_scale(2000000), n_con = bench_scale(500000);
	long n_pp = bench_scale(20000);
	double x[2], base;

	g_fault = getenv("SHK_BENCH_SYNC_FAULT") != NULL;
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
	if ((rc = pthread_mutexattr_init(&a)) != 0 ||
	    (rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) !=
		    0 ||
	    (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) != 0 ||
	    (rc = pthread_mutex_init(&g_sh->pm, &a)) != 0) {
		fprintf(stderr, "bench_sync: pthread mutex init: %s\n",
			strerror(rc));
		return 1;
	}
	if ((rc = shk_sem_open(g_seg, "ping", SHK_CREATE, NULL, &sa)) ||
	    (rc = shk_sem_open(g_seg, "pong", SHK_CREATE, NULL, &sb)))
		die("shk_sem_open", rc);

	printf("bench_sync: %d CPUs; median of %d alternating rounds\n",
	       bench_ncpus(), bench_runs());
	bench_pin(0);
	rounds(uncontended_pthread, unc, 1, n_unc, &base, x);
	bench_row("sync", "mutex lock+unlock, uncontended", x[0], "ns/op",
		  "pthread robust pshared", base);
	rounds(contended_pthread, con, 1, n_con, &base, x);
	bench_row("sync", "mutex lock+inc+unlock, 2 procs", x[0], "ns/op",
		  "pthread robust pshared", base);
	rounds(pingpong_futex, pp, 2, n_pp, &base, x);
	bench_row("sync", "sem ping-pong one-way, 2 procs", x[0], "ns",
		  "bare futex ping-pong", base);
	bench_row("sync", "sem ping-pong one-way no-spin", x[1], "ns",
		  "bare futex ping-pong", base);
	shk_sem_close(sa);
	shk_sem_close(sb);
	shk_seg_close(g_seg);
	return 0;
}
