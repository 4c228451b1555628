/*
 * test_sync_mutex.c - shk_mutex: robust recovery after SIGKILL, the
 * not-recoverable state, a stopped holder, mutual exclusion across
 * processes and threads, timeouts, describe.
 */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>

#include "platform.h"

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
	char nm[64];
	shk_seg *s = NULL;
	shk_seg_opts o = SHK_SEG_OPTS_INIT;

	test_name(nm, sizeof(nm), tag);
	shk_seg_unlink(nm, NULL);
	o.len = 1 << 20;
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &s));
	CHECK_OK(shk_seg_unlink(nm, NULL));
	g_fd = shk_seg_fd(s);
	CHECK(g_fd >= 0);
	return s;
}

/* Another handle on the test segment (a fresh owner identity). */
static int
seg_reopen(shk_seg **out)
{
	return shk_seg_open_fd(g_fd, 0, NULL, out);
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

	if (seg_reopen(&s) || shk_mutex_open(s, "m", 0, NULL,
							      &m))
		_exit(2);
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

	if (seg_reopen(&s) || shk_mutex_open(s, "m", 0, NULL,
							      &m))
		_exit(2);
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
		while (!atomic_load_explicit(&p->started,
					     memory_order_relaxed))
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
	fprintf(stderr, "  %d rounds, %d owner-dead (%d seen by a sleeping waiter); "
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

	if (seg_reopen(&s) || shk_mutex_open(s, "m", 0, NULL,
							      &m))
		_exit(2);
	if (shk_mutex_lock(m, SHK_FOREVER))
		_exit(3);
	raise(SIGKILL);
	_exit(4);
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
		if (seg_reopen(&s) ||
		    shk_mutex_open(s, "m", 0, NULL, &m))
			_exit(2);
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
		if (seg_reopen(&cs) ||
		    shk_mutex_open(cs, "m", 0, NULL, &cm))
			_exit(2);
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
			if (seg_reopen(&cs) ||
			    shk_mutex_open(cs, "m", 0, NULL, &cm))
				_exit(2);
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

TEST_MAIN({ "basic", t_basic }, { "kill_rounds", t_kill_rounds },
	  { "notrecoverable", t_notrecoverable }, { "sigstop", t_sigstop },
	  { "exclusion_procs", t_exclusion_procs },
	  { "exclusion_threads", t_exclusion_threads },
	  { "thread_owner", t_thread_owner })
