/*
 * test_sync_mutex.c - shk_mutex: robust recovery after SIGKILL, the
 * not-recoverable state, a stopped holder, mutual exclusion across
 * processes and threads, timeouts, describe.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "lock.h"
#include "platform.h"
#include "sync.h"

#ifdef SHK__TSAN
#define SLOW 20
#elif defined(__SANITIZE_ADDRESS__)
#define SLOW 10
#else
#define SLOW 1
#endif

/* Protected state: invariant a == b, plus an intent record. */
struct prot {
	uint64_t a;
	uint64_t b;
	_Atomic uint32_t started;
	_Atomic uint32_t in_cs;
	_Atomic int64_t t_detect; /* waiter's EOWNERDEAD time */
	_Atomic int32_t waiter_rc;
	uint32_t pad;
};

/*
 * The segment's name is removed right after creation, so no failure path
 * can leave it in /dev/shm; other handles (children, threads) open the
 * inherited descriptor, each getting its own attach record (owner stamp).
 */
static int g_fd = -1;

static shk_seg *
seg_create(const char *tag)
{
	shk_seg *s = test_seg_unlinked(tag);

	g_fd = shk_seg_fd(s);
	return s;
}

/* Another handle on the test segment (a fresh owner identity). */
static int
seg_reopen(shk_seg **out)
{
	return shk_seg_open_fd(g_fd, 0, NULL, out);
}

/* In a forked child: its own segment handle (*seg) and mutex "m"; exits
 * with status 2 when either cannot be opened. */
static shk_mutex *
child_mutex(shk_seg **seg)
{
	shk_mutex *m = NULL;

	if (seg_reopen(seg) || shk_mutex_open(*seg, "m", 0, NULL, &m))
		_exit(2);
	return m;
}

static struct prot *
prot_open(shk_seg *s)
{
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	void *p = NULL;

	d.kind = SHK_KIND_BLOB;
	d.elem_len = sizeof(struct prot);
	d.cap = 1;
	CHECK_OK(shk_obj_open(s, "prot", SHK_CREATE, &d, NULL, &p));
	return p;
}

static void
t_basic(void)
{
	char buf[160];
	shk_seg *s, *s2 = NULL;
	shk_mutex *m = NULL, *m2 = NULL;
	shk_sync_opts bad = { 0 };
	shk_obj_info info = { .size = sizeof(info) };
	int64_t t0, dt;

	s = seg_create("mbasic");
	CHECK_RC(shk_mutex_open(s, "m", SHK_CREATE, &bad, &m), SHK_EINVAL);
	CHECK(m == NULL);
	CHECK_RC(shk_mutex_open(s, "m", 0, NULL, &m), SHK_ENOENT);
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	CHECK_OK(seg_reopen(&s2));
	CHECK_OK(shk_mutex_open(s2, "m", 0, NULL, &m2));
	CHECK_RC(shk_mutex_lock(NULL, 0), SHK_EINVAL);

	CHECK_OK(shk_mutex_lock(m, SHK_FOREVER));
	CHECK_RC(shk_mutex_lock(m, 0), SHK_EDEADLK);
	CHECK_RC(shk_mutex_lock(m2, 0), SHK_EAGAIN);
	CHECK_RC(shk_mutex_unlock(m2), SHK_EPERM);
	CHECK_RC(shk_mutex_consistent(m), SHK_EINVAL);
	t0 = test_now_ns();
	CHECK_RC(shk_mutex_lock(m2, 50000000), SHK_ETIMEDOUT);
	dt = test_now_ns() - t0;
	CHECK(dt >= 50000000 && dt < 50000000 + 500000000LL);

	CHECK_OK(shk_obj_stat(s, "m", &info));
	CHECK_EQ(info.kind, SHK_KIND_MUTEX);
	CHECK_OK(shk_obj_describe(s, &info, buf, sizeof(buf)));
	{
		char want[64];
		snprintf(want, sizeof(want), "locked owner=%d(alive)",
			 (int)getpid());
		CHECK(strstr(buf, want) != NULL);
	}
	CHECK_OK(shk_mutex_unlock(m));
	CHECK_OK(shk_obj_describe(s, &info, buf, sizeof(buf)));
	CHECK(strcmp(buf, "unlocked") == 0);
	CHECK_OK(shk_mutex_lock(m2, 0));
	CHECK_OK(shk_mutex_unlock(m2));
	{
		shk_sem *x = NULL;
		CHECK_RC(shk_sem_open(s, "m", 0, NULL, &x), SHK_ETYPE);
		CHECK(x == NULL);
	}
	shk_mutex_close(m2);
	shk_mutex_close(m);
	shk_mutex_close(NULL);
	shk_seg_close(s2);
	shk_seg_close(s);
}

/* Child: loop lock / dirty the state / unlock, mostly holding the lock. */
static void
holder_loop(void)
{
	shk_seg *s = NULL;
	shk_mutex *m = NULL;
	struct prot *p;

	m = child_mutex(&s);
	p = prot_open(s);
	for (;;) {
		int rc = shk_mutex_lock(m, SHK_FOREVER);
		if (rc == SHK_EOWNERDEAD)
			_exit(3); /* nobody died while we ran */
		if (rc)
			_exit(4);
		p->a++;
		atomic_store_explicit(&p->started, 1, memory_order_relaxed);
		for (int i = 0; i < 2000; i++)
			shk__cpu_relax();
		p->b++;
		shk_mutex_unlock(m);
	}
}

/* Child: waits for the lock; records when it took it over. */
static void
waiter_proc(void)
{
	shk_seg *s = NULL;
	shk_mutex *m = NULL;
	struct prot *p;
	int rc;

	m = child_mutex(&s);
	p = prot_open(s);
	atomic_store_explicit(&p->in_cs, 1, memory_order_release);
	rc = shk_mutex_lock(m, 5000000000LL);
	atomic_store_explicit(&p->t_detect, test_now_ns(),
			      memory_order_relaxed);
	atomic_store_explicit(&p->waiter_rc, rc, memory_order_release);
	if (rc == SHK_EOWNERDEAD) {
		p->b = p->a;
		shk_mutex_consistent(m);
	}
	if (rc == 0 || rc == SHK_EOWNERDEAD)
		shk_mutex_unlock(m);
	_exit(0);
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void
t_kill_rounds(void)
{
	shk_seg *s;
	shk_mutex *m = NULL;
	struct prot *p;
	int rounds = (int)test_scale(200 / SLOW > 20 ? 200 / SLOW : 20);
	int dead = 0, waited = 0, r, nd = 0;
	int64_t det[256], max_det = 0;

	s = seg_create("mkill");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	p = prot_open(s);
	srand((unsigned)getpid());
	for (r = 0; r < rounds; r++) {
		pid_t h, w = -1;
		int64_t tk, td;
		int rc, with_waiter = (r % 4) == 3;

		atomic_store_explicit(&p->started, 0, memory_order_relaxed);
		atomic_store_explicit(&p->in_cs, 0, memory_order_relaxed);
		atomic_store_explicit(&p->waiter_rc, 1, memory_order_relaxed);
		h = fork();
		CHECK(h >= 0);
		if (h == 0)
			holder_loop();
		while (!atomic_load_explicit(&p->started, memory_order_relaxed))
			usleep(100);
		if (with_waiter) {
			w = fork();
			CHECK(w >= 0);
			if (w == 0)
				waiter_proc();
			while (!atomic_load_explicit(&p->in_cs,
						     memory_order_acquire))
				usleep(100);
			usleep(2000); /* let it go to sleep in lock */
		}
		usleep((useconds_t)(rand() % 1000));
		tk = test_now_ns();
		kill(h, SIGKILL);
		CHECK_EQ(test_wait(h), 128 + SIGKILL);
		if (with_waiter) {
			CHECK_EQ(test_wait(w), 0);
			rc = atomic_load_explicit(&p->waiter_rc,
						  memory_order_acquire);
			CHECK(rc == 0 || rc == SHK_EOWNERDEAD);
			td = atomic_load_explicit(&p->t_detect,
						  memory_order_relaxed);
			if (rc == SHK_EOWNERDEAD) {
				waited++;
				dead++;
				if (nd < 256)
					det[nd++] = td - tk;
				if (td - tk > max_det)
					max_det = td - tk;
			}
			/* the waiter may have released before the kill and
			 * the holder died in a later critical section */
			rc = shk_mutex_lock(m, 1000000000);
			if (rc == SHK_EOWNERDEAD) {
				p->b = p->a;
				CHECK_OK(shk_mutex_consistent(m));
			} else {
				CHECK_OK(rc);
			}
			CHECK_EQ(p->a, p->b);
			CHECK_OK(shk_mutex_unlock(m));
			continue;
		}
		rc = shk_mutex_lock(m, 1000000000);
		td = test_now_ns();
		if (rc == SHK_EOWNERDEAD) {
			dead++;
			if (nd < 256)
				det[nd++] = td - tk;
			if (td - tk > max_det)
				max_det = td - tk;
			p->b = p->a; /* repair */
			CHECK_OK(shk_mutex_consistent(m));
		} else {
			CHECK_OK(rc);
		}
		CHECK_EQ(p->a, p->b);
		CHECK_OK(shk_mutex_unlock(m));
	}
	/* The holder spends most of its loop inside the lock. */
	CHECK(dead >= rounds / 2);
	qsort(det, (size_t)nd, sizeof(det[0]), cmp64);
	fprintf(stderr,
		"  %d rounds, %d owner-dead (%d seen by a sleeping waiter); "
		"kill->EOWNERDEAD median %.2f ms, max %.2f ms\n",
		rounds, dead, waited, nd ? det[nd / 2] / 1e6 : 0.0,
		max_det / 1e6);
	/* 100 ms budget from the kill (reaping included); a loaded machine
	 * gets 4x slack on the worst round, none on the median. */
	CHECK(nd == 0 || det[nd / 2] < 100000000);
	CHECK(max_det < 400000000);
	shk_mutex_close(m);
	shk_seg_close(s);
}

/* Child: takes the lock and dies holding it. */
static void
die_holding(void)
{
	shk_seg *s = NULL;
	shk_mutex *m = NULL;

	m = child_mutex(&s);
	if (shk_mutex_lock(m, SHK_FOREVER))
		_exit(3);
	raise(SIGKILL);
	_exit(4);
}

/*
 * A waiter whose sleeps keep ending early, by signals of a periodic timer
 * (here SIGUSR1 every 2 ms), still tests the holder every 20 ms: the
 * holder, killed 100 ms into the wait, is found dead well before the 3 s
 * deadline.  The liveness test used to run only when a 20 ms sleep ran to
 * its end, so such a waiter recovered the lock only at its deadline (and
 * never with SHK_FOREVER).
 */
static void
t_signal_storm(void)
{
	struct test_storm st;
	shk_seg *s;
	shk_mutex *m = NULL;
	int ready[2], rc;
	int64_t t0, dt;
	pid_t c;
	char ch;

	s = seg_create("mstorm");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	CHECK(pipe(ready) == 0);
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		shk_seg *cs = NULL;
		shk_mutex *cm = child_mutex(&cs);

		if (shk_mutex_lock(cm, SHK_FOREVER))
			_exit(3);
		if (write(ready[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(ready[1]);
	CHECK_EQ(read(ready[0], &ch, 1), 1);
	close(ready[0]);
	test_storm_start(&st, 2000, c, 100000000);
	t0 = test_now_ns();
	rc = shk_mutex_lock(m, 3000000000LL);
	dt = test_now_ns() - t0;
	test_storm_stop(&st);
	CHECK_EQ(test_wait(c), 128 + SIGKILL);
	CHECK_RC(rc, SHK_EOWNERDEAD);
	if (dt >= 1000000000)
		TEST_FAIL("dead holder found after %lld ms (killed at 100 ms)",
			  (long long)(dt / 1000000));
	CHECK_OK(shk_mutex_consistent(m));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

static int
lock_in_child(int64_t timeout_ns)
{
	pid_t c = fork();

	CHECK(c >= 0);
	if (c == 0) {
		shk_seg *s = NULL;
		shk_mutex *m = NULL;
		int rc;
		m = child_mutex(&s);
		rc = shk_mutex_lock(m, timeout_ns);
		if (rc == 0)
			shk_mutex_unlock(m);
		_exit(rc == SHK_ENOTRECOVERABLE ? 10 : rc == 0 ? 11 : 12);
	}
	return test_wait(c);
}

static void
t_notrecoverable(void)
{
	char buf[128];
	shk_seg *s;
	shk_mutex *m = NULL;
	shk_obj_info info = { .size = sizeof(info) };
	pid_t c, w;

	s = seg_create("mnotrec");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	c = fork();
	CHECK(c >= 0);
	if (c == 0)
		die_holding();
	CHECK_EQ(test_wait(c), 128 + SIGKILL);
	CHECK_OK(shk_obj_stat(s, "m", &info));
	CHECK_OK(shk_obj_describe(s, &info, buf, sizeof(buf)));
	CHECK(strstr(buf, "(dead)") != NULL);
	/* even a try recovers the dead owner's lock */
	CHECK_RC(shk_mutex_lock(m, 0), SHK_EOWNERDEAD);
	CHECK_OK(shk_obj_describe(s, &info, buf, sizeof(buf)));
	CHECK(strstr(buf, "inconsistent") != NULL);
	/* a waiter asleep when the lock turns unrecoverable is woken */
	w = fork();
	CHECK(w >= 0);
	if (w == 0)
		_exit(lock_in_child(10000000000LL));
	usleep(50000);
	CHECK_OK(shk_mutex_unlock(m)); /* without consistent */
	CHECK_EQ(test_wait(w), 10);
	CHECK_RC(shk_mutex_lock(m, SHK_FOREVER), SHK_ENOTRECOVERABLE);
	CHECK_RC(shk_mutex_lock(m, 0), SHK_ENOTRECOVERABLE);
	CHECK_EQ(lock_in_child(0), 10);
	CHECK_OK(shk_obj_describe(s, &info, buf, sizeof(buf)));
	CHECK(strcmp(buf, "notrecoverable") == 0);
	shk_mutex_close(m);

	/* the consistent path: usable again afterwards */
	CHECK_OK(shk_obj_remove(s, "m"));
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	c = fork();
	CHECK(c >= 0);
	if (c == 0)
		die_holding();
	CHECK_EQ(test_wait(c), 128 + SIGKILL);
	CHECK_RC(shk_mutex_lock(m, SHK_FOREVER), SHK_EOWNERDEAD);
	CHECK_OK(shk_mutex_consistent(m));
	CHECK_OK(shk_mutex_unlock(m));
	CHECK_EQ(lock_in_child(SHK_FOREVER), 11);
	CHECK_OK(shk_mutex_lock(m, 0));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

static void
t_sigstop(void)
{
	shk_seg *s;
	shk_mutex *m = NULL;
	struct prot *p;
	pid_t c;
	int64_t t0;

	s = seg_create("mstop");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	p = prot_open(s);
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		shk_seg *cs = NULL;
		shk_mutex *cm = NULL;
		cm = child_mutex(&cs);
		if (shk_mutex_lock(cm, SHK_FOREVER))
			_exit(3);
		atomic_store_explicit(&p->started, 1, memory_order_release);
		raise(SIGSTOP);
		shk_mutex_unlock(cm);
		_exit(0);
	}
	while (!atomic_load_explicit(&p->started, memory_order_acquire))
		usleep(100);
	/* wait until it is really stopped */
	{
		int st;
		CHECK(waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st));
	}
	CHECK_RC(shk_mutex_lock(m, 0), SHK_EAGAIN);
	t0 = test_now_ns();
	CHECK_RC(shk_mutex_lock(m, 100000000), SHK_ETIMEDOUT);
	CHECK(test_now_ns() - t0 >= 100000000);
	kill(c, SIGCONT);
	CHECK_OK(shk_mutex_lock(m, 5000000000LL));
	CHECK_OK(shk_mutex_unlock(m));
	CHECK_EQ(test_wait(c), 0);
	shk_mutex_close(m);
	shk_seg_close(s);
}

static long
excl_iters(void)
{
	return test_scale(1000000 / SLOW);
}

static void
t_exclusion_procs(void)
{
	shk_seg *s;
	struct prot *p;
	pid_t c[4];
	long n = excl_iters();
	int i;

	s = seg_create("mexcl");
	{
		shk_mutex *m = NULL;
		CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
		shk_mutex_close(m);
	}
	p = prot_open(s);
	for (i = 0; i < 4; i++) {
		c[i] = fork();
		CHECK(c[i] >= 0);
		if (c[i] == 0) {
			shk_seg *cs = NULL;
			shk_mutex *cm = NULL;
			cm = child_mutex(&cs);
			for (long k = 0; k < n; k++) {
				if (shk_mutex_lock(cm, SHK_FOREVER))
					_exit(3);
				p->a++;
				shk_mutex_unlock(cm);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++)
		CHECK_EQ(test_wait(c[i]), 0);
	CHECK_EQ(p->a, 4 * n);
	shk_seg_close(s);
}

struct targ {
	shk_mutex *m;
	uint64_t *counter;
	long n;
	int rc;
};

static void *
excl_thread(void *arg)
{
	struct targ *t = arg;

	for (long k = 0; !t->rc && k < t->n; k++) {
		t->rc = shk_mutex_lock(t->m, SHK_FOREVER);
		if (t->rc)
			break;
		(*t->counter)++;
		t->rc = shk_mutex_unlock(t->m);
	}
	return NULL;
}

/* Threads sharing one mapping and one handle (what TSan can check). */
static void
t_exclusion_threads(void)
{
	shk_seg *s;
	shk_mutex *m = NULL;
	struct prot *p;
	pthread_t th[4];
	struct targ a[4];
	long n = test_scale(50000 / SLOW);
	int i;

	s = seg_create("mthr");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	p = prot_open(s);
	for (i = 0; i < 4; i++) {
		a[i] = (struct targ){ m, &p->a, n, 0 };
		CHECK(pthread_create(&th[i], NULL, excl_thread, &a[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_OK(a[i].rc);
	}
	CHECK_EQ(p->a, 4 * n);
	shk_mutex_close(m);
	shk_seg_close(s);
}

static void *
unlock_other(void *arg)
{
	return (void *)(intptr_t)shk_mutex_unlock(arg);
}

static void *
try_other(void *arg)
{
	return (void *)(intptr_t)shk_mutex_lock(arg, 0);
}

/* A thread cannot unlock or re-take another thread's hold. */
static void
t_thread_owner(void)
{
	shk_seg *s;
	shk_mutex *m = NULL;
	pthread_t th;
	void *r;

	s = seg_create("mtown");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	CHECK_OK(shk_mutex_lock(m, 0));
	CHECK(pthread_create(&th, NULL, unlock_other, m) == 0);
	pthread_join(th, &r);
	CHECK_EQ((intptr_t)r, SHK_EPERM);
	CHECK(pthread_create(&th, NULL, try_other, m) == 0);
	pthread_join(th, &r);
	CHECK_EQ((intptr_t)r, SHK_EAGAIN);
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

struct twait {
	shk_mutex *m;
	int64_t timeout_ns;
	int rc;
	int64_t took_ns;
};

static void *
twait_thread(void *arg)
{
	struct twait *w = arg;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	w->rc = shk_mutex_lock(w->m, w->timeout_ns);
	clock_gettime(CLOCK_MONOTONIC, &b);
	w->took_ns =
		(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
	if (w->rc == 0)
		w->rc = shk_mutex_unlock(w->m) ? -1000 : 0;
	return NULL;
}

/*
 * Threads of one handle share its owner stamp, so the shared word alone
 * cannot tell them apart: a thread waits for another's hold as for any
 * live owner (a timed lock times out, a blocking one is woken by the
 * unlock), where the holder itself gets SHK_EDEADLK.
 */
static void
t_thread_wait(void)
{
	shk_seg *s;
	shk_mutex *m = NULL;
	pthread_t th;
	struct twait w;

	s = seg_create("mtwait");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	CHECK_OK(shk_mutex_lock(m, SHK_FOREVER));
	w = (struct twait){ m, 50000000, 0, 0 };
	CHECK(pthread_create(&th, NULL, twait_thread, &w) == 0);
	pthread_join(th, NULL);
	CHECK_RC(w.rc, SHK_ETIMEDOUT);
	CHECK(w.took_ns >= 45000000);
	CHECK_RC(shk_mutex_lock(m, SHK_FOREVER), SHK_EDEADLK);
	w = (struct twait){ m, SHK_FOREVER, 1, 0 };
	CHECK(pthread_create(&th, NULL, twait_thread, &w) == 0);
	usleep(30000); /* it spins, then sleeps on the word */
	CHECK_OK(shk_mutex_unlock(m));
	pthread_join(th, NULL);
	CHECK_OK(w.rc);
	CHECK(w.took_ns >= 25000000);
	CHECK_OK(shk_mutex_lock(m, 0)); /* free again */
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

struct tuse {
	shk_mutex *lock_via, *unlock_via;
	int lock_rc, relock_rc, unlock_rc;
};

static void *
tuse_thread(void *arg)
{
	struct tuse *u = arg;

	u->lock_rc = shk_mutex_lock(u->lock_via, SHK_FOREVER);
	u->relock_rc = shk_mutex_lock(u->unlock_via, 0);
	u->unlock_rc = shk_mutex_unlock(u->unlock_via);
	return NULL;
}

/*
 * Two object handles on one mutex through one segment handle share the
 * owner stamp too.  What a thread holds is recorded per thread, not per
 * handle: another thread locking through the other handle waits (it used
 * to get SHK_EDEADLK), the holder's re-lock through either handle is
 * SHK_EDEADLK, and the holder may unlock through either.
 */
static void
t_two_handles(void)
{
	shk_seg *s;
	shk_mutex *a = NULL, *b = NULL;
	pthread_t th;
	struct twait w;
	struct tuse u;

	s = seg_create("mtwoh");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &a));
	CHECK_OK(shk_mutex_open(s, "m", 0, NULL, &b));
	CHECK_OK(shk_mutex_lock(a, SHK_FOREVER));
	CHECK_RC(shk_mutex_lock(b, 0), SHK_EDEADLK);
	CHECK_RC(shk_mutex_lock(b, 10000000), SHK_EDEADLK);
	w = (struct twait){ b, 50000000, 0, 0 };
	CHECK(pthread_create(&th, NULL, twait_thread, &w) == 0);
	pthread_join(th, NULL);
	CHECK_RC(w.rc, SHK_ETIMEDOUT);
	CHECK(w.took_ns >= 45000000);
	CHECK_RC(shk_mutex_unlock(b), 0); /* the holder, through b */
	CHECK_RC(shk_mutex_unlock(a), SHK_EPERM);
	u = (struct tuse){ a, b, 1, 1, 1 };
	CHECK(pthread_create(&th, NULL, tuse_thread, &u) == 0);
	pthread_join(th, NULL);
	CHECK_OK(u.lock_rc);
	CHECK_RC(u.relock_rc, SHK_EDEADLK);
	CHECK_OK(u.unlock_rc);
	CHECK_OK(shk_mutex_lock(a, 0)); /* free again */
	CHECK_OK(shk_mutex_unlock(a));
	shk_mutex_close(b);
	shk_mutex_close(a);
	shk_seg_close(s);
}

/*
 * What a thread holds is recorded by the word's address, which a later
 * mapping may reuse: an entry left by a handle closed while held, or a
 * fork() child's copy of its parent's list, must not make a later lock
 * SHK_EDEADLK or an unlock succeed.  Review finding: both did, when the
 * new mapping landed at the old address (usual for a reopen).
 */
static void
t_stale_held(void)
{
	shk_seg *s, *s2 = NULL;
	shk_mutex *m = NULL, *m2 = NULL;
	pid_t pid;
	int st, fd;

	s = seg_create("mstale");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	/* a fork child's inherited list: the parent holds m */
	CHECK_OK(shk_mutex_lock(m, SHK_FOREVER));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		fd = dup(g_fd);
		shk_mutex_close(m); /* the inherited copies, first: the new */
		shk_seg_close(s);   /* mapping may then take their address */
		if (fd < 0 || shk_seg_open_fd(fd, 0, NULL, &s2) ||
		    shk_mutex_open(s2, "m", 0, NULL, &m))
			_exit(2);
		close(fd);
		if (shk_mutex_lock(m, 0) != SHK_EAGAIN)
			_exit(3);
		if (shk_mutex_lock(m, 20000000) != SHK_ETIMEDOUT)
			_exit(4);
		if (shk_mutex_unlock(m) != SHK_EPERM)
			_exit(5);
		shk_mutex_close(m);
		shk_seg_close(s2);
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
	/* closed while held, then reopened: a new owner finds the old
	 * holder gone (its attach record was freed) */
	fd = dup(g_fd);
	CHECK(fd >= 0);
	shk_mutex_close(m);
	shk_seg_close(s);
	CHECK_OK(shk_seg_open_fd(fd, 0, NULL, &s2));
	close(fd);
	g_fd = shk_seg_fd(s2);
	CHECK_OK(shk_mutex_open(s2, "m", 0, NULL, &m2));
	CHECK_RC(shk_mutex_unlock(m2), SHK_EPERM);
	CHECK_RC(shk_mutex_lock(m2, 0), SHK_EOWNERDEAD);
	CHECK_OK(shk_mutex_consistent(m2));
	CHECK_OK(shk_mutex_unlock(m2));
	CHECK_OK(shk_mutex_lock(m2, 0));
	CHECK_OK(shk_mutex_unlock(m2));
	shk_mutex_close(m2);
	shk_seg_close(s2);
}

/* A thread holds at most SHK__SYNC_HELD_MAX (64) lock words at once; the
 * next lock is SHK_ENOMEM and takes nothing. */
static void
t_held_max(void)
{
	shk_seg *s;
	shk_mutex *m[65];
	char name[16];
	int i;

	s = seg_create("mheld");
	for (i = 0; i < 65; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		CHECK_OK(shk_mutex_open(s, name, SHK_CREATE, NULL, &m[i]));
	}
	for (i = 0; i < 64; i++)
		CHECK_OK(shk_mutex_lock(m[i], 0));
	CHECK_RC(shk_mutex_lock(m[64], 0), SHK_ENOMEM);
	CHECK_OK(shk_mutex_unlock(m[10]));
	CHECK_OK(shk_mutex_lock(m[64], 0));
	CHECK_RC(shk_mutex_lock(m[10], 0), SHK_ENOMEM);
	for (i = 0; i < 65; i++)
		if (i != 10)
			CHECK_OK(shk_mutex_unlock(m[i]));
	CHECK_RC(shk_mutex_unlock(m[10]), SHK_EPERM);
	for (i = 0; i < 65; i++)
		shk_mutex_close(m[i]);
	shk_seg_close(s);
}

/*
 * Segment handles closed while this thread held a mutex through each
 * (Python's `with seg:` left by an exception): the thread's record of
 * those words goes with the handle.  It stayed, and after
 * SHK__SYNC_HELD_MAX such closes every lock of the thread was SHK_ENOMEM
 * for good.  Each word stays taken in the segment: the next locker takes
 * it over from the closed handle's stamp.
 */
static void
t_held_after_close(void)
{
	shk_seg *keep = seg_create("mhclose"), *s = NULL;
	shk_mutex *m = NULL;
	char name[16];
	int i;

	for (i = 0; i < 70; i++) { /* past SHK__SYNC_HELD_MAX (64) */
		snprintf(name, sizeof(name), "m%d", i);
		CHECK_OK(seg_reopen(&s));
		CHECK_OK(shk_mutex_open(s, name, SHK_CREATE, NULL, &m));
		CHECK_OK(shk_mutex_lock(m, 0));
		shk_mutex_close(m);
		shk_seg_close(s);
	}
	CHECK_OK(shk_mutex_open(keep, "fresh", SHK_CREATE, NULL, &m));
	CHECK_OK(shk_mutex_lock(m, 0));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	CHECK_OK(shk_mutex_open(keep, "m0", 0, NULL, &m));
	CHECK_RC(shk_mutex_lock(m, 0), SHK_EOWNERDEAD);
	CHECK_OK(shk_mutex_consistent(m));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(keep);
}

/*
 * A timed lock (timeout > 0) that expires returns SHK_ETIMEDOUT, never the
 * try's SHK_EAGAIN, however small the timeout: the deadline may pass before
 * the shared word is tried (it used to pass while the handle's thread lock
 * was taken).
 */
static void
t_timed_expiry(void)
{
	static const int64_t tiny[] = { 1, 10, 100, 1000, 10000 };
	shk_seg *s = seg_create("mexp"), *s2 = NULL;
	shk_mutex *m = NULL, *m2 = NULL;
	size_t i;

	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	CHECK_OK(seg_reopen(&s2));
	CHECK_OK(shk_mutex_open(s2, "m", 0, NULL, &m2));
	CHECK_OK(shk_mutex_lock(m, 0));
	for (i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++)
		CHECK_RC(shk_mutex_lock(m2, tiny[i]), SHK_ETIMEDOUT);
	CHECK_RC(shk_mutex_lock(m2, 0), SHK_EAGAIN);
	CHECK_OK(shk_mutex_unlock(m));
	/* free: a timed lock succeeds even with a tiny timeout */
	CHECK_OK(shk_mutex_lock(m2, 1));
	CHECK_OK(shk_mutex_unlock(m2));
	shk_mutex_close(m2);
	shk_mutex_close(m);
	shk_seg_close(s2);
	shk_seg_close(s);
}

/* Times shared by wake_handoff's processes. */
struct handoff {
	_Atomic int64_t t_call[2]; /* when each waiter called lock */
	_Atomic int64_t t_got;     /* when the second waiter got the lock */
	_Atomic int32_t rc[2];
	uint32_t pad;
};

static pid_t
handoff_waiter(struct handoff *h, int i, int64_t timeout_ns)
{
	pid_t c = fork();

	CHECK(c >= 0);
	if (c == 0) {
		shk_seg *s = NULL;
		shk_mutex *m = NULL;
		int rc;

		m = child_mutex(&s);
		atomic_store(&h->t_call[i], test_now_ns());
		rc = shk_mutex_lock(m, timeout_ns);
		if (rc == 0 && i == 1)
			atomic_store(&h->t_got, test_now_ns());
		atomic_store(&h->rc[i], rc);
		if (rc == 0)
			shk_mutex_unlock(m);
		_exit(0);
	}
	return c;
}

/*
 * Two waiters sleep on a held lock: w0 (timeout T) and w1 (no deadline
 * soon), w0 first in the futex queue.  Right at w0's deadline the holder
 * unlocks (waking one sleeper: w0) and another locker takes the lock
 * before w0 runs (simulated on the word), so w0 wakes past its deadline to
 * a held lock without WAITERS and leaves with SHK_ETIMEDOUT.  A waiter that
 * leaves after sleeping must pass the wake on: here, set WAITERS again, so
 * that the holder's unlock wakes w1 at once instead of w1 noticing at the
 * end of its 20 ms sleep slice.  The wake is swept around the deadline,
 * since the window is a few microseconds wide.  Checked: WAITERS is set
 * after w0 left (deterministic); reported: w1's latency from the final
 * unlock (scheduler noise on a loaded machine, so not asserted).  A
 * round where w0 had already left when the wake came is not judged.
 */
static void
t_wake_handoff(void)
{
	shk_seg *s = seg_create("mhand");
	shk_mutex *m = NULL;
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	struct handoff *h;
	void *p = NULL;
	int64_t worst = 0, sum = 0, t_rel, lat;
	const int64_t T = 30000000;
	int r, rounds = 32, lost = 0, slow = 0;

	d.kind = SHK_KIND_BLOB;
	d.elem_len = sizeof(struct handoff);
	d.cap = 1;
	CHECK_OK(shk_obj_open(s, "h", SHK_CREATE, &d, NULL, &p));
	h = p;
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	for (r = 0; r < rounds; r++) {
		/* wake from 30 us before to 10 us after the deadline */
		int64_t delta = -30000 + (r % 9) * 5000;
		pid_t c0, c1;
		uint32_t v;
		int early;

		memset(h, 0, sizeof(*h));
		CHECK_OK(shk_mutex_lock(m, 0));
		c0 = handoff_waiter(h, 0, T);
		while (!atomic_load(&h->t_call[0]))
			usleep(100);
		/* w1 starts 5 ms later: its sleep slices (20 ms) then end
		 * 5 ms after w0's, so w0 is first in the queue at T */
		while (test_now_ns() < atomic_load(&h->t_call[0]) + 5000000)
			usleep(200);
		c1 = handoff_waiter(h, 1, 2000000000LL);
		while (test_now_ns() <
		       atomic_load(&h->t_call[0]) + T + delta - 200000)
			usleep(100);
		while (test_now_ns() < atomic_load(&h->t_call[0]) + T + delta)
			;
		/* an unlock that wakes one sleeper, and another locker's
		 * CAS 0 -> stamp before any sleeper runs, as one step:
		 * the word stays ours, without WAITERS */
		early = atomic_load(&h->rc[0]) != 0;
		atomic_fetch_and(&m->m->word, ~SHK__LOCK_WAITERS);
		shk__futex_wake(&m->m->word, 1);
		CHECK_EQ(test_wait(c0), 0);
		CHECK_RC(atomic_load(&h->rc[0]), SHK_ETIMEDOUT);
		/* If w0 had left before the wake, the wake went to w1,
		 * which sets WAITERS itself once it runs: give it 12 ms,
		 * short of the end of its own slice (15 ms after w0's
		 * deadline), after which it would set WAITERS even had
		 * the wake been lost.  5 ms was too short for the TSan
		 * build on a loaded 2-CPU machine (3 failures in 4 runs). */
		while (test_now_ns() <
		       atomic_load(&h->t_call[0]) + T + 12000000)
			usleep(200);
		v = atomic_load(&m->m->word);
		lost += !early && !(v & SHK__LOCK_WAITERS);
		t_rel = test_now_ns();
		CHECK_OK(shk_mutex_unlock(m));
		CHECK_EQ(test_wait(c1), 0);
		CHECK_OK(atomic_load(&h->rc[1]));
		lat = atomic_load(&h->t_got) - t_rel;
		sum += lat;
		if (lat > worst)
			worst = lat;
		slow += lat > 2000000;
		if (getenv("SHK_TEST_VERBOSE"))
			fprintf(stderr,
				"  round %d delta %lld us: %s, %.3f ms\n", r,
				(long long)delta / 1000,
				early                   ? "early"
				: v & SHK__LOCK_WAITERS ? "waiters"
							: "LOST",
				lat / 1e6);
	}
	fprintf(stderr,
		"  wake_handoff: %d rounds, %d lost the wake; w1 latency mean "
		"%.3f ms, worst %.3f ms, %d over 2 ms\n",
		rounds, lost, sum / 1e6 / rounds, worst / 1e6, slow);
	CHECK_EQ(lost, 0);
	shk_mutex_close(m);
	shk_seg_close(s);
}

/*
 * A holder whose main thread has exited (pthread_exit) while another
 * thread runs on is alive: /proc/PID/stat shows the leader as Z, and
 * until 2026-11-23 that counted as dead, so a second process took the
 * lock over (SHK_EOWNERDEAD) while the holder still ran (found by
 * review).  Now the other threads are looked at.  The lock is the other
 * thread's: one the leader held when it exited would be abandoned at its
 * exit (thread_exit).
 */
static _Atomic uint32_t *lx_release, *lx_started;

static void *
lx_thread(void *arg)
{
	int64_t t0 = test_now_ns();

	if (shk_mutex_lock(arg, SHK_FOREVER))
		_exit(3);
	atomic_store_explicit(lx_started, 1, memory_order_release);
	while (!atomic_load_explicit(lx_release, memory_order_acquire)) {
		if (test_now_ns() - t0 > 10000000000LL)
			_exit(5); /* the test failed: never linger */
		usleep(1000);
	}
	_exit(0); /* the whole process; the lock dies with it */
	return NULL;
}

static void
t_leader_exited(void)
{
	shk_seg *s;
	shk_mutex *m = NULL;
	struct prot *p;
	pid_t c;
	int64_t t0;

	s = seg_create("mlead");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	p = prot_open(s);
	lx_release = &p->in_cs; /* reused as the release flag */
	lx_started = &p->started;
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		shk_seg *cs = NULL;
		shk_mutex *cm = NULL;
		pthread_t th;

		cm = child_mutex(&cs);
		if (pthread_create(&th, NULL, lx_thread, cm))
			_exit(4);
		pthread_exit(NULL); /* main thread only */
	}
	while (!atomic_load_explicit(&p->started, memory_order_acquire))
		usleep(100);
	t0 = test_now_ns();
	while (test_proc_state(c) != 'Z') { /* the leader's thread is gone */
		CHECK(test_now_ns() - t0 < 5000000000LL);
		usleep(1000);
	}
	CHECK_RC(shk_mutex_lock(m, 0), SHK_EAGAIN);
	CHECK_RC(shk_mutex_lock(m, 100000000), SHK_ETIMEDOUT);
	/* now the whole process exits: a dead owner */
	atomic_store_explicit(lx_release, 1, memory_order_release);
	CHECK_EQ(test_wait(c), 0);
	CHECK_RC(shk_mutex_lock(m, 5000000000LL), SHK_EOWNERDEAD);
	CHECK_OK(shk_mutex_consistent(m));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

/*
 * A holder this process may not look at in /proc (mounted with hidepid=2,
 * as systemd's ProtectProc=invisible does; another user's process) is
 * alive: the child, running as nobody in its own mount namespace with
 * such a /proc, must time out on the parent's lock, not take it over.
 */
static void
t_hidden_proc(void)
{
	shk_seg *s;
	shk_mutex *m = NULL;
	pid_t c;
	int st;

	if (geteuid() != 0)
		SKIP("needs root (a private /proc mount and setuid)");
	s = seg_create("mhide");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	CHECK_OK(shk_mutex_lock(m, SHK_FOREVER));
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		shk_seg *cs = NULL;
		shk_mutex *cm;
		char path[64];
		int rc;

		if (unshare(CLONE_NEWNS) ||
		    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) ||
		    mount("proc", "/proc", "proc",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2"))
			_exit(77);
		cm = child_mutex(&cs);
		if (setgid(65534) || setuid(65534))
			_exit(77);
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)getppid());
		if (access(path, F_OK) == 0)
			_exit(77); /* hidepid had no effect here */
		rc = shk_mutex_lock(cm, 200000000);
		_exit(rc == SHK_ETIMEDOUT ? 0 : rc == SHK_EOWNERDEAD ? 5 : 6);
	}
	CHECK(waitpid(c, &st, 0) == c);
	CHECK(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		SKIP("no private /proc with hidepid=2 here");
	if (WEXITSTATUS(st) == 5)
		TEST_FAIL("the child took over a live holder's lock");
	CHECK_EQ(WEXITSTATUS(st), 0);
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

/*
 * The holder of the test mutex (a child_mutex() of its own), until the
 * test closes done_fd; ready_fd says it holds the lock.  Returns the
 * holder's exit status, or 77 when want is not 0 and not our pid.
 */
typedef int (*enter_fn)(int ready_fd, int done_fd, pid_t arg);

static int
ns_holder(int ready_fd, int done_fd, pid_t want)
{
	shk_seg *cs = NULL;
	shk_mutex *cm;
	char c;

	if (want && getpid() != want)
		return 77;
	cm = child_mutex(&cs);
	if (shk_mutex_lock(cm, SHK_FOREVER))
		return 3;
	if (write(ready_fd, "r", 1) != 1)
		return 4;
	c = 0;
	if (read(done_fd, &c, 1) < 0) /* EOF: the test is done */
		return 5;
	if (c == 'k') /* die holding it */
		raise(SIGKILL);
	return shk_mutex_unlock(cm) ? 6 : 0;
}

/*
 * A holder child running enter(ready, done, arg), started once it holds
 * the lock (it wrote to ready); skips the case when enter() returned 77
 * (`what` is not possible here).  done: our end, closed or written to
 * let the holder go on.
 */
struct holder {
	pid_t pid;
	int ready; /* our read end */
	int done;  /* our write end */
};

static struct holder
start_holder(enter_fn enter, pid_t arg, const char *what)
{
	int ready[2], done[2], st;
	struct holder h;
	char ch;

	CHECK(pipe(ready) == 0 && pipe(done) == 0);
	h.pid = fork();
	CHECK(h.pid >= 0);
	if (h.pid == 0) {
		close(ready[0]);
		close(done[1]);
		_exit(enter(ready[1], done[0], arg));
	}
	close(ready[1]);
	close(done[0]);
	h.ready = ready[0];
	h.done = done[1];
	if (read(h.ready, &ch, 1) != 1) {
		st = test_wait(h.pid);
		if (st == 77)
			SKIP("%s: not possible here", what);
		TEST_FAIL("holder failed before locking (status %d)", st);
	}
	return h;
}

/*
 * One live holder this process cannot judge as it judges its own: a
 * forked child runs enter(), which sets up the holder's surroundings
 * (namespaces, mounts) and returns ns_holder()'s status from whichever
 * process ends up holding, or 77 when the setup is not possible here (the
 * case is skipped).  Once the holder holds the lock, pid `absent` (if not
 * 0) must be nobody here, and this process must get SHK_EAGAIN and then
 * SHK_ETIMEDOUT, never take the lock over; after the holder lets go it
 * takes the lock normally.
 */
static void
foreign_holder_case(const char *tag, enter_fn enter, pid_t arg, pid_t absent)
{
	struct holder h;
	shk_seg *s;
	shk_mutex *m = NULL;
	int st;

	if (geteuid() != 0)
		SKIP("needs root (namespaces, mounts)");
	s = seg_create(tag);
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	h = start_holder(enter, arg, tag);
	if (absent)
		CHECK(kill(absent, 0) != 0 && errno == ESRCH);
	st = shk_mutex_lock(m, 0);
	if (st == SHK_EOWNERDEAD)
		TEST_FAIL("took over the lock of a live holder");
	CHECK_RC(st, SHK_EAGAIN);
	CHECK_RC(shk_mutex_lock(m, 200000000), SHK_ETIMEDOUT);
	close(h.done);
	CHECK_EQ(test_wait(h.pid), 0);
	close(h.ready);
	CHECK_OK(shk_mutex_lock(m, 1000000000));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

/* Forks, runs body in the child and returns the child's exit status. */
static int
fork_wait(enter_fn body, int ready_fd, int done_fd, pid_t arg)
{
	pid_t p = fork();

	if (p < 0)
		return 77;
	if (p == 0)
		_exit(body(ready_fd, done_fd, arg));
	return test_wait(p);
}

/*
 * A holder in another PID namespace (a container sharing /dev/shm) is
 * alive: its recorded pid means nothing here.  The holder runs as pid N
 * of a new PID namespace, N chosen free in ours, so that our kill(N, 0)
 * finds nothing; this process must time out on its lock, not take it
 * over.  Chain: child -> unshare(PID, mount) -> init of the namespace
 * (mounts its /proc, sets ns_last_pid) -> holder.
 */
static int
pidns_init(int ready_fd, int done_fd, pid_t n)
{
	char v[16];
	int fd, len;

	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL))
		return 77;
	fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
	len = snprintf(v, sizeof(v), "%d", (int)n - 1);
	if (fd < 0 || write(fd, v, (size_t)len) != len)
		return 77;
	close(fd);
	return fork_wait(ns_holder, ready_fd, done_fd, n);
}

static int
pidns_enter(int ready_fd, int done_fd, pid_t n)
{
	if (unshare(CLONE_NEWPID | CLONE_NEWNS))
		return 77;
	return fork_wait(pidns_init, ready_fd, done_fd, n);
}

static void
t_other_pidns(void)
{
	pid_t n = test_unused_pid();

	CHECK(n != 0);
	foreign_holder_case("mpidns", pidns_enter, n, n);
}

/*
 * A holder in another PID namespace that dies holding the lock is seen
 * dead from here, by its attach record's liveness lock (an OFD lock the
 * kernel drops at its death): the next lock returns SHK_EOWNERDEAD at
 * once, where it used to wait forever (such a record counted as alive).
 */
static void
t_other_pidns_dies(void)
{
	struct holder h;
	shk_seg *s;
	shk_mutex *m = NULL;
	int64_t t0;
	pid_t n;

	if (geteuid() != 0)
		SKIP("needs root (namespaces, mounts)");
	n = test_unused_pid();
	CHECK(n != 0);
	s = seg_create("mpidnsd");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	h = start_holder(pidns_enter, n, "a PID namespace");
	CHECK_RC(shk_mutex_lock(m, 0), SHK_EAGAIN); /* alive: held */
	CHECK_EQ(write(h.done, "k", 1), 1);
	/* the namespace's init reports its holder's death by SIGKILL */
	CHECK_EQ(test_wait(h.pid), 128 + SIGKILL);
	t0 = test_now_ns();
	CHECK_RC(shk_mutex_lock(m, 2000000000), SHK_EOWNERDEAD);
	CHECK(test_now_ns() - t0 < 1000000000);
	CHECK_OK(shk_mutex_consistent(m));
	CHECK_OK(shk_mutex_unlock(m));
	close(h.done);
	close(h.ready);
	shk_mutex_close(m);
	shk_seg_close(s);
}

/*
 * A holder in another time namespace (same PID namespace) is alive: the
 * kernel shifts the start times in /proc/PID/stat by the reader's
 * boot-time offset, so the holder's recorded start time never matches
 * what this process reads.  The holder runs in a time namespace whose
 * boot clock is 1000 s ahead.
 */
static int
timens_enter(int ready_fd, int done_fd, pid_t unused)
{
	int fd;

	(void)unused;
	if (unshare(CLONE_NEWTIME))
		return 77;
	fd = open("/proc/self/timens_offsets", O_WRONLY);
	if (fd < 0 || write(fd, "boottime 1000 0", 15) != 15)
		return 77;
	close(fd);
	/* the first process in the new namespace holds */
	return fork_wait(ns_holder, ready_fd, done_fd, 0);
}

static void
t_other_timens(void)
{
	foreign_holder_case("mtimens", timens_enter, 0, 0);
}

/*
 * A child forked into a new PID namespace by a process that is pid 1 of
 * its own has the same pid number as its parent, so a per-pid cache of
 * this process's identity (start time, PID namespace) would hand it the
 * parent's.  A holds the lock as pid 1 of namespace X, then forks B, pid 1
 * of namespace Y with its own /proc: B must see A as another namespace's
 * (alive) and time out, not test pid 1 of Y (itself) against A's start
 * time and take A's lock over.  Then B closes its copy of A's segment
 * handle (the fork policy allows that): A's attach record must stay A's
 * (detach used to check the pid number alone, and freed it).
 */
static int
mount_own_proc(void)
{
	return mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) ||
	       mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL);
}

static int
nested_holder(void)
{
	shk_seg *cs = NULL, *bs = NULL;
	shk_mutex *cm, *bm;
	pid_t b;
	int rc;

	if (getpid() != 1 || mount_own_proc())
		return 77;
	cm = child_mutex(&cs); /* caches pid 1's identity here */
	if (shk_mutex_lock(cm, SHK_FOREVER))
		return 3;
	if (unshare(CLONE_NEWPID | CLONE_NEWNS))
		return 77;
	usleep(30000); /* B's start time (10 ms ticks) differs from ours */
	b = fork();
	if (b < 0)
		return 77;
	if (b == 0) {
		if (getpid() != 1 || mount_own_proc())
			_exit(77);
		bm = child_mutex(&bs);
		rc = shk_mutex_lock(bm, 200000000);
		if (rc != SHK_ETIMEDOUT)
			_exit(rc == SHK_EOWNERDEAD ? 5 : 6);
		/* closing our copy of A's segment handle (the fork policy
		 * allows it) must leave A's attach record alone; cm, the
		 * copy of a handle A holds locked, is left alone */
		shk_seg_close(cs);
		rc = shk_mutex_lock(bm, 0);
		_exit(rc == SHK_EAGAIN ? 0 : rc == SHK_EOWNERDEAD ? 7 : 8);
	}
	rc = test_wait(b);
	if (rc) /* 5: B took the lock over (and died holding it) */
		return rc;
	return shk_mutex_unlock(cm) ? 4 : 0;
}

static void
t_pidns_same_pid(void)
{
	shk_seg *s;
	shk_mutex *m = NULL;
	pid_t c, a;
	int st;

	if (geteuid() != 0)
		SKIP("needs root (PID namespaces)");
	s = seg_create("mpid1");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		if (unshare(CLONE_NEWPID | CLONE_NEWNS))
			_exit(77);
		a = fork();
		if (a < 0)
			_exit(77);
		if (a == 0)
			_exit(nested_holder());
		_exit(test_wait(a));
	}
	st = test_wait(c);
	if (st == 77)
		SKIP("no nested PID namespaces with their own /proc here");
	if (st == 5)
		TEST_FAIL("pid 1 of a new PID namespace took over its parent's "
			  "lock (the parent's cached identity)");
	if (st == 7)
		TEST_FAIL("closing the copy of its parent's handle freed the "
			  "parent's attach record");
	CHECK_EQ(st, 0);
	CHECK_OK(shk_mutex_lock(m, 1000000000));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

/*
 * A holder that has no /proc (a chroot or mount namespace without it, in
 * our PID namespace) cannot read its own start time and records 0.  We
 * can read its /proc entry, but 0 is no start time: it must count as
 * alive while its pid exists, not as a reused pid (start time mismatch)
 * whose lock we may take over.
 */
static int
noproc_enter(int ready_fd, int done_fd, pid_t unused)
{
	(void)unused;
	if (unshare(CLONE_NEWNS) ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) ||
	    mount("none", "/proc", "tmpfs", 0, NULL) ||
	    access("/proc/self/stat", F_OK) == 0)
		return 77;
	return ns_holder(ready_fd, done_fd, 0);
}

static void
t_holder_without_proc(void)
{
	foreign_holder_case("mnoproc", noproc_enter, 0, 0);
}

/* The description of mutex "m" in s contains want. */
static void
describe_has(shk_seg *s, const char *want)
{
	shk_obj_info info = { .size = sizeof(info) };
	char buf[256];

	CHECK_OK(shk_obj_stat(s, "m", &info));
	CHECK_OK(shk_obj_describe(s, &info, buf, sizeof(buf)));
	if (!strstr(buf, want))
		TEST_FAIL("describe = \"%s\", wanted \"%s\"", buf, want);
}

struct texit {
	shk_mutex *m;
	int64_t timeout_ns;
	_Atomic int go; /* lock_then_exit: set when the thread may exit */
	int rc;
	int64_t took_ns;
};

/* Locks x->m and exits holding it (once x->go is set, when asked to wait
 * for it). */
static void *
lock_then_exit(void *arg)
{
	struct texit *x = arg;

	x->rc = shk_mutex_lock(x->m, 0);
	/* seq_cst: a test flag */
	while (x->timeout_ns && !atomic_load(&x->go))
		usleep(1000);
	return NULL;
}

/* Locks x->m within x->timeout_ns, repairs after SHK_EOWNERDEAD, and
 * unlocks: x->rc is the lock's code, x->took_ns its time. */
static void *
lock_repair(void *arg)
{
	struct texit *x = arg;
	int64_t t0 = test_now_ns();

	x->rc = shk_mutex_lock(x->m, x->timeout_ns);
	x->took_ns = test_now_ns() - t0;
	if (x->rc == SHK_EOWNERDEAD && shk_mutex_consistent(x->m))
		x->rc = -1000;
	if ((x->rc == 0 || x->rc == SHK_EOWNERDEAD) && shk_mutex_unlock(x->m))
		x->rc = -1001;
	return NULL;
}

/* In a forked child: ends the process once its leader thread has exited
 * (its destructors ran), status 0; 5 if that takes over 5 s. */
static void *
end_after_leader(void *arg)
{
	int64_t t0 = test_now_ns();

	(void)arg;
	while (test_proc_state(getpid()) != 'Z') {
		if (test_now_ns() - t0 > 5000000000LL)
			_exit(5);
		usleep(1000);
	}
	_exit(0);
	return NULL;
}

static void
exit_holding(shk_mutex *m)
{
	struct texit x = { m, 0, 0, 1, 0 };
	pthread_t th;

	CHECK(pthread_create(&th, NULL, lock_then_exit, &x) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(x.rc);
}

/*
 * A thread that exits holding a mutex.  The word names the segment
 * handle's stamp, which lives on with the process, so it stayed held for
 * good: the handle's other threads timed out (SHK_FOREVER waited for ever)
 * and got SHK_EPERM from unlock, and so did a second segment handle of the
 * process and every other process.  The exiting thread's record of held
 * words now marks it abandoned: the next locker anywhere gets
 * SHK_EOWNERDEAD, as after a holder process died (POSIX robust mutexes
 * report a dead thread the same way).  Before the fix the first timed lock
 * here returned SHK_ETIMEDOUT.
 */
static void
t_thread_exit(void)
{
	shk_seg *s, *s2 = NULL, *cs = NULL;
	shk_mutex *m = NULL, *m2 = NULL;
	struct texit x, w;
	pthread_t th, tw;
	int64_t t0;
	pid_t pid;

	s = seg_create("mtexit");
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &m));
	/* a thread of this handle */
	exit_holding(m);
	CHECK_RC(shk_mutex_unlock(m), SHK_EPERM);
	describe_has(s, "abandoned");
	t0 = test_now_ns();
	CHECK_RC(shk_mutex_lock(m, 200000000), SHK_EOWNERDEAD);
	CHECK(test_now_ns() - t0 < 100000000LL * SLOW);
	CHECK_OK(shk_mutex_consistent(m));
	CHECK_OK(shk_mutex_unlock(m));
	CHECK_OK(shk_mutex_lock(m, 0));
	CHECK_OK(shk_mutex_unlock(m));

	/* a waiter asleep in the lock when the holder exits (SHK_FOREVER
	 * would have waited for ever: bounded here so the old behaviour
	 * fails instead of hanging) */
	x = (struct texit){ m, 1, 0, 1, 0 };
	CHECK(pthread_create(&th, NULL, lock_then_exit, &x) == 0);
	while (shk__lock_owner(&m->m->word) == 0)
		usleep(1000);
	w = (struct texit){ m, 2000000000LL * SLOW, 0, 1, 0 };
	CHECK(pthread_create(&tw, NULL, lock_repair, &w) == 0);
	usleep(50000); /* it spins, then sleeps on the word */
	t0 = test_now_ns();
	atomic_store(&x.go, 1);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(x.rc);
	CHECK(pthread_join(tw, NULL) == 0);
	CHECK_RC(w.rc, SHK_EOWNERDEAD);
	CHECK(test_now_ns() - t0 < 100000000LL * SLOW);

	/* another process */
	exit_holding(m);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_mutex *cm = child_mutex(&cs);
		int rc = shk_mutex_lock(cm, 200000000);

		if (rc != SHK_EOWNERDEAD)
			_exit(3);
		if (shk_mutex_consistent(cm) || shk_mutex_unlock(cm))
			_exit(4);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 0);

	/* a second segment handle of this process */
	exit_holding(m);
	CHECK_OK(seg_reopen(&s2));
	CHECK_OK(shk_mutex_open(s2, "m", 0, NULL, &m2));
	CHECK_RC(shk_mutex_lock(m2, 0), SHK_EOWNERDEAD);
	CHECK_OK(shk_mutex_consistent(m2));
	CHECK_OK(shk_mutex_unlock(m2));
	shk_mutex_close(m2);
	shk_seg_close(s2);

	/* the thread closed its segment handle before exiting: the word
	 * names a closed handle, recovered as before */
	{
		struct texit y = { NULL, 0, 0, 1, 0 };

		CHECK_OK(seg_reopen(&s2));
		CHECK_OK(shk_mutex_open(s2, "m", 0, NULL, &y.m));
		CHECK(pthread_create(&th, NULL, lock_then_exit, &y) == 0);
		CHECK(pthread_join(th, NULL) == 0);
		CHECK_OK(y.rc);
		shk_mutex_close(y.m);
		shk_seg_close(s2);
		CHECK_RC(shk_mutex_lock(m, 0), SHK_EOWNERDEAD);
		CHECK_OK(shk_mutex_consistent(m));
		CHECK_OK(shk_mutex_unlock(m));
	}

	/* a forked child whose copy of this thread exits: what this thread
	 * holds is the parent's, and stays held.  Another thread ends the
	 * child once its leader is gone (a sanitizer's own thread would
	 * keep it alive) */
	CHECK_OK(shk_mutex_lock(m, 0));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (pthread_create(&th, NULL, end_after_leader, NULL))
			_exit(2);
		pthread_exit(NULL);
	}
	CHECK_EQ(test_wait(pid), 0);
	CHECK_RC(shk_mutex_lock(m, 0), SHK_EDEADLK);
	describe_has(s, "locked owner=");
	CHECK_OK(shk_mutex_unlock(m));
	CHECK_OK(shk_mutex_lock(m, 0));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	shk_seg_close(s);
}

/*
 * Locks taken by another key's destructor while the thread exits: the C
 * library calls the destructors of the keys that have values in rounds
 * (glibc: a new one only while some key was set again, at most
 * PTHREAD_DESTRUCTOR_ITERATIONS).  The record's destructor ran once and
 * was armed again only by a later lock, which gave it no round after the
 * last: a lock taken there stayed held for good (the try below was
 * SHK_EAGAIN for the mutex of the last round).  Now it runs in every
 * round, and a lock asked for after its last run is refused with
 * SHK_ENOMEM.  Either way no mutex stays held: each is free, or
 * abandoned (SHK_EOWNERDEAD).
 */
#ifndef PTHREAD_DESTRUCTOR_ITERATIONS
#define PTHREAD_DESTRUCTOR_ITERATIONS 4
#endif
#ifdef TEST_TSAN
/* TSan finalises the thread in the last round, before the other keys'
 * destructors, which then crash in any instrumented code: locks taken in
 * the two rounds before it, whose release runs in the next one */
#define ER_N (PTHREAD_DESTRUCTOR_ITERATIONS - 2)
#else
#define ER_N PTHREAD_DESTRUCTOR_ITERATIONS
#endif
static shk_mutex *er_m[ER_N];
static int er_rc[ER_N];
static int er_rounds;
static pthread_key_t er_key;

static void
er_dtor(void *v)
{
	er_rc[er_rounds] = shk_mutex_lock(er_m[er_rounds], 0);
	if (++er_rounds < ER_N)
		pthread_setspecific(er_key, v);
}

static void *
er_thread(void *arg)
{
	(void)arg;
	/* the record's key first: a later key's destructor runs after
	 * the record's in each round */
	if (shk_mutex_lock(er_m[0], 0) || shk_mutex_unlock(er_m[0]) ||
	    pthread_key_create(&er_key, er_dtor) ||
	    pthread_setspecific(er_key, (void *)1))
		return (void *)1;
	return NULL;
}

static void
t_thread_exit_rounds(void)
{
	shk_seg *s = seg_create("mtrounds");
	pthread_t th;
	void *r;
	char nm[8];
	int i, rc;

	for (i = 0; i < ER_N; i++) {
		snprintf(nm, sizeof(nm), "m%d", i);
		CHECK_OK(shk_mutex_open(s, nm, SHK_CREATE, NULL, &er_m[i]));
	}
	CHECK(pthread_create(&th, NULL, er_thread, NULL) == 0);
	CHECK(pthread_join(th, &r) == 0);
	CHECK(r == NULL);
	CHECK_EQ(er_rounds, ER_N);
	CHECK(er_rc[0] == 0);
	for (i = 0; i < ER_N; i++) {
		CHECK(er_rc[i] == 0 || er_rc[i] == SHK_ENOMEM);
		rc = shk_mutex_lock(er_m[i], 0);
		CHECK_RC(rc, er_rc[i] == 0 ? SHK_EOWNERDEAD : 0);
		if (rc == SHK_EOWNERDEAD)
			CHECK_OK(shk_mutex_consistent(er_m[i]));
		CHECK_OK(shk_mutex_unlock(er_m[i]));
		shk_mutex_close(er_m[i]);
	}
	pthread_key_delete(er_key);
	shk_seg_close(s);
}

TEST_MAIN({ "basic", t_basic }, { "kill_rounds", t_kill_rounds },
	  { "notrecoverable", t_notrecoverable }, { "sigstop", t_sigstop },
	  { "exclusion_procs", t_exclusion_procs },
	  { "exclusion_threads", t_exclusion_threads },
	  { "thread_owner", t_thread_owner }, { "thread_wait", t_thread_wait },
	  { "two_handles", t_two_handles }, { "held_max", t_held_max },
	  { "held_after_close", t_held_after_close },
	  { "stale_held", t_stale_held }, { "timed_expiry", t_timed_expiry },
	  { "wake_handoff", t_wake_handoff },
	  { "leader_exited", t_leader_exited },
	  { "hidden_proc", t_hidden_proc }, { "other_pidns", t_other_pidns },
	  { "other_pidns_dies", t_other_pidns_dies },
	  { "other_timens", t_other_timens },
	  { "pidns_same_pid", t_pidns_same_pid },
	  { "holder_without_proc", t_holder_without_proc },
	  { "signal_storm", t_signal_storm }, { "thread_exit", t_thread_exit },
	  { "thread_exit_rounds", t_thread_exit_rounds })
