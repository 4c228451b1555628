/* test_wait.c - futex waiting, the sleeper protocol, doorbell fds and the
 * robust lock, across real processes. */
#include "harness.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include "doorbell.h"
#include "lock.h"
#include "platform.h"
#include "segment.h"
#include "sync.h"
#include "wait.h"

struct shared {
	shk__waitpoint wp[2];
	_Atomic uint32_t flag[2];
	_Atomic uint32_t lock;
	uint32_t pad;
	uint64_t counter;
};

static struct shared *
map_shared(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	memset(p, 0, 4096);
	return p;
}

struct flag_arg {
	_Atomic uint32_t *flag;
	uint32_t want;
};

static int
flag_is(void *arg)
{
	struct flag_arg *a = arg;
	/* acquire: pairs with the release store of the flag by the waker */
	return atomic_load_explicit(a->flag, memory_order_acquire) == a->want;
}

static void
t_timeout_on_time(void)
{
	struct shared *s = map_shared();
	struct flag_arg a = { &s->flag[0], 1 };
	int64_t t0 = test_now_ns(), el;

	CHECK_RC(shk__wait(&s->wp[0], flag_is, &a, 0), SHK_EAGAIN);
	CHECK_RC(shk__wait(&s->wp[0], flag_is, &a, 30000000), SHK_ETIMEDOUT);
	el = test_now_ns() - t0;
	CHECK(el >= 30000000);
	CHECK(el < 30000000 + 50000000); /* generous: loaded 2-core CI */
	CHECK_EQ(atomic_load(&s->wp[0].waiters), 0);
}

static void
t_wake_across_processes(void)
{
	struct shared *s = map_shared();
	pid_t pid = fork();

	if (pid == 0) {
		struct flag_arg a = { &s->flag[0], 1 };
		_exit(shk__wait(&s->wp[0], flag_is, &a, 5000000000LL) == 0 ? 0
									   : 1);
	}
	/* let the child go to sleep, then publish and wake */
	while (atomic_load(&s->wp[0].waiters) == 0)
		usleep(1000);
	atomic_store_explicit(&s->flag[0], 1, memory_order_release);
	shk__wake(NULL, &s->wp[0], 1);
	CHECK_EQ(test_wait(pid), 0);
}

/* 1e5 sleep/wake cycles between two processes: a lost wake-up would hang
 * the ping-pong (the alarm fails the case).  Every 64th round the child
 * sleeps a little before answering, so the parent takes the futex path. */
static void
t_no_lost_wakeup(void)
{
	struct shared *s = map_shared();
	long rounds = test_scale(100000);
	long i;
	pid_t pid;

	pid = fork();

	if (pid == 0) {
		/* child: wait for flag[1] == i+1, answer flag[0] = i+1 */
		for (i = 0; i < rounds; i++) {
			struct flag_arg a = { &s->flag[1], (uint32_t)(i + 1) };
			if (shk__wait(&s->wp[1], flag_is, &a, 10000000000LL))
				_exit(2);
			if ((i & 63) == 0)
				usleep(20);
			atomic_store_explicit(&s->flag[0], (uint32_t)(i + 1),
					      memory_order_release);
			shk__wake(NULL, &s->wp[0], 1);
		}
		_exit(0);
	}
	for (i = 0; i < rounds; i++) {
		struct flag_arg a = { &s->flag[0], (uint32_t)(i + 1) };
		atomic_store_explicit(&s->flag[1], (uint32_t)(i + 1),
				      memory_order_release);
		shk__wake(NULL, &s->wp[1], 1);
		CHECK_OK(shk__wait(&s->wp[0], flag_is, &a, 10000000000LL));
	}
	CHECK_EQ(test_wait(pid), 0);
	CHECK_EQ(atomic_load(&s->wp[0].waiters), 0);
}

static shk_seg *
test_seg(const char *tag, char *nm)
{
	shk_seg *seg;

	test_name(nm, 64, tag);
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	return seg;
}

static int
cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

/* 1e5 arm/poll/wake cycles through a doorbell fd, between two processes:
 * no lost wake-up (a lost one hangs poll until the 5 s timeout and fails),
 * and wake-up latency of a sleeping poller measured on every 64th cycle,
 * where the waker first lets the poller fall asleep. */
struct db_shared {
	shk__waitpoint wp[2];
	_Atomic uint32_t flag[2];
	_Atomic int64_t t_pub;
};

static void
t_doorbell_wakes_poll(void)
{
	char nm[64];
	shk_seg *seg = test_seg("db", nm);
	struct db_shared *s;
	long i, n = test_scale(100000), nlat = 0;
	int64_t *lat;
	uint64_t off;
	pid_t pid;
	int spurious = 0;

#if defined(__SANITIZE_ADDRESS__) || defined(SHK__TSAN)
	n = 5000;
#endif
	lat = calloc((size_t)n / 64 + 2, sizeof(*lat));
	CHECK_OK(shk_alloc(seg, sizeof(*s), &off));
	s = shk_ptr(seg, off);
	memset(s, 0, sizeof(*s));
	pid = fork();
	if (pid == 0) {
		/* waker: publish flag = i, wake, wait for the ack */
		shk_seg *cs;
		struct db_shared *c;
		if (shk_seg_open(nm, 0, NULL, &cs))
			_exit(3);
		c = shk_ptr(cs, off);
		for (i = 1; i <= n; i++) {
			struct flag_arg a = { &c->flag[1], (uint32_t)i };
			while (atomic_load(&c->wp[0].armed) == 0)
				sched_yield();
			if ((i & 63) == 0)
				usleep(300); /* let the poller fall asleep */
			atomic_store(&c->t_pub, test_now_ns());
			atomic_store_explicit(&c->flag[0], (uint32_t)i,
					      memory_order_release);
			shk__wake(cs, &c->wp[0], 1);
			if (shk__wait(&c->wp[1], flag_is, &a, 5000000000LL))
				_exit(4);
		}
		shk_seg_close(cs);
		_exit(0);
	}
	{
		struct shk__doorbell *db;
		struct pollfd pfd;
		CHECK_OK(shk__doorbell_open(seg, &s->wp[0], &db));
		pfd.fd = shk__doorbell_fd(db);
		pfd.events = POLLIN;
		for (i = 1; i <= n; i++) {
			struct flag_arg a = { &s->flag[0], (uint32_t)i };
			shk__doorbell_arm(db, flag_is, &a);
			if (poll(&pfd, 1, 5000) != 1) {
				kill(pid, SIGKILL);
				TEST_FAIL("lost wake-up at cycle %ld", i);
			}
			if (!flag_is(&a)) {
				spurious++; /* re-arm and poll again */
				shk__doorbell_drain(db);
				i--;
				continue;
			}
			if ((i & 63) == 0)
				lat[nlat++] =
					test_now_ns() - atomic_load(&s->t_pub);
			shk__doorbell_drain(db);
			atomic_store_explicit(&s->flag[1], (uint32_t)i,
					      memory_order_release);
			shk__wake(seg, &s->wp[1], 1);
		}
		shk__doorbell_close(db);
	}
	CHECK_EQ(test_wait(pid), 0);
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp_i64);
	printf("  doorbell: %ld cycles, %d spurious; sleeping poller woken in "
	       "p50 %.3f ms, p99 %.3f ms (%ld samples)\n",
	       n, spurious, lat[nlat / 2] / 1e6, lat[nlat * 99 / 100] / 1e6,
	       nlat);
	CHECK(spurious < n);
#if !defined(__SANITIZE_ADDRESS__) && !defined(SHK__TSAN)
	CHECK(lat[nlat / 2] < 1000000); /* median within 1 ms */
#endif
	free(lat);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

static void
t_doorbell_arm_sees_data(void)
{
	char nm[64];
	shk_seg *seg = test_seg("db2", nm);
	struct shk__doorbell *db;
	shk__waitpoint wp;
	struct pollfd pfd;
	_Atomic uint32_t flag = 1;
	struct flag_arg a = { &flag, 1 };
	uint64_t off;
	shk__waitpoint *w;

	(void)wp;
	CHECK_OK(shk_alloc(seg, sizeof(*w), &off));
	w = shk_ptr(seg, off);
	memset(w, 0, sizeof(*w));
	CHECK_OK(shk__doorbell_open(seg, w, &db));
	/* data already there when arming: the fd must turn readable */
	shk__doorbell_arm(db, flag_is, &a);
	pfd.fd = shk__doorbell_fd(db);
	pfd.events = POLLIN;
	CHECK_EQ(poll(&pfd, 1, 1000), 1);
	shk__doorbell_drain(db);
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	CHECK_EQ(atomic_load(&w->armed), 0);
	shk__doorbell_close(db);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/* A pred that never holds, and a check that counts its calls. */
struct slice_arg {
	_Atomic int checks;
	_Atomic int stop;
	shk__waitpoint *wp;
};

static int
never(void *arg)
{
	(void)arg;
	return 0;
}

static int
count_check(void *arg)
{
	struct slice_arg *a = arg;

	atomic_fetch_add(&a->checks, 1);
	return 0;
}

/* Wakes a->wp every 2 ms until a->stop: a peer whose activity wakes the
 * sleeper over and over, without making its condition true. */
static void *
waker_storm(void *arg)
{
	struct slice_arg *a = arg;

	while (!atomic_load(&a->stop)) {
		usleep(2000);
		shk__wake(NULL, a->wp, 1);
	}
	return NULL;
}

/*
 * shk__wait_checked calls its check every slice of clock time, whatever
 * ends its sleeps early: signals (EINTR every 2 ms) or wakes that leave the
 * condition false (every 2 ms).  300 ms with 20 ms slices: about 14 calls.
 * The check used to run only after a sleep that ran its whole slice, so
 * each storm kept it from ever running: a writer waiting for a dead
 * reader's count (polled by try-readers, each of which wakes it) or a once
 * waiter with a dead runner waited until its deadline, or for ever.
 */
static void
t_check_every_slice(void)
{
	struct shared *s = map_shared();
	struct slice_arg a = { 0, 0, &s->wp[0] };
	struct test_storm st;
	pthread_t t;

	test_storm_start(&st, 2000, 0, 0);
	CHECK_RC(shk__wait_checked(NULL, &s->wp[0], never, &a, 300000000,
				   count_check, 20000000),
		 SHK_ETIMEDOUT);
	test_storm_stop(&st);
	if (atomic_load(&a.checks) < 5)
		TEST_FAIL("signals: %d checks in 300 ms of 20 ms slices",
			  atomic_load(&a.checks));

	atomic_store(&a.checks, 0);
	CHECK(pthread_create(&t, NULL, waker_storm, &a) == 0);
	CHECK_RC(shk__wait_checked(NULL, &s->wp[0], never, &a, 300000000,
				   count_check, 20000000),
		 SHK_ETIMEDOUT);
	atomic_store(&a.stop, 1);
	pthread_join(t, NULL);
	if (atomic_load(&a.checks) < 5)
		TEST_FAIL("wakes: %d checks in 300 ms of 20 ms slices",
			  atomic_load(&a.checks));
	CHECK_EQ(atomic_load(&s->wp[0].waiters), 0);
}

static void
t_lock_owner_dead(void)
{
	char nm[64];
	shk_seg *seg = test_seg("lk", nm);
	struct shared *s;
	uint64_t off;
	int round;

	CHECK_OK(shk_alloc(seg, sizeof(*s), &off));
	s = shk_ptr(seg, off);
	memset(s, 0, sizeof(*s));
	for (round = 0; round < 20; round++) {
		int p[2], rc;
		char c;
		int64_t t0;
		pid_t pid;

		CHECK(pipe(p) == 0);
		pid = fork();
		if (pid == 0) {
			shk_seg *cs;
			if (shk_seg_open(nm, 0, NULL, &cs))
				_exit(3);
			if (shk__lock_acquire(
				    cs,
				    &((struct shared *)shk_ptr(cs, off))->lock,
				    -1) < 0)
				_exit(4);
			write(p[1], "x", 1);
			pause();
			_exit(0);
		}
		CHECK_EQ(read(p[0], &c, 1), 1);
		kill(pid, SIGKILL);
		test_wait(pid);
		t0 = test_now_ns();
		rc = shk__lock_acquire(seg, &s->lock, 5000000000LL);
		CHECK_RC(rc, SHK_EOWNERDEAD);
		CHECK((test_now_ns() - t0) < 100000000 * 3);
		CHECK_OK(shk__lock_consistent(seg, &s->lock));
		CHECK_OK(shk__lock_release(seg, &s->lock));
		close(p[0]);
		close(p[1]);
	}
	/* unlock without making it consistent: not recoverable */
	{
		pid_t pid = fork();
		if (pid == 0) {
			shk_seg *cs;
			if (shk_seg_open(nm, 0, NULL, &cs))
				_exit(3);
			shk__lock_acquire(
				cs, &((struct shared *)shk_ptr(cs, off))->lock,
				-1);
			raise(SIGKILL);
		}
		test_wait(pid);
		CHECK_RC(shk__lock_acquire(seg, &s->lock, 5000000000LL),
			 SHK_EOWNERDEAD);
		CHECK_OK(shk__lock_release(seg, &s->lock));
		CHECK_RC(shk__lock_acquire(seg, &s->lock, 0),
			 SHK_ENOTRECOVERABLE);
	}
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

struct mt_arg {
	shk_seg *seg;
	struct shared *s;
	long n;
};

static void *
mt_worker(void *p)
{
	struct mt_arg *a = p;
	long i;

	for (i = 0; i < a->n; i++) {
		if (shk__lock_acquire(a->seg, &a->s->lock, -1))
			abort();
		a->s->counter++;
		shk__lock_release(a->seg, &a->s->lock);
	}
	return NULL;
}

/* Mutual exclusion between threads (each its own handle = own stamp);
 * also the TSan variant of the lock protocol. */
static void
t_lock_threads(void)
{
	char nm[64];
	shk_seg *seg = test_seg("lt", nm), *h[4];
	struct mt_arg a[4];
	pthread_t th[4];
	struct shared *s;
	uint64_t off;
	long n = test_scale(50000);
	int i;

#ifdef SHK__TSAN
	n = 5000;
#endif
	CHECK_OK(shk_alloc(seg, sizeof(*s), &off));
	s = shk_ptr(seg, off);
	memset(s, 0, sizeof(*s));
	for (i = 0; i < 4; i++) {
		CHECK_OK(shk_seg_open(nm, 0, NULL, &h[i]));
		a[i].seg = h[i];
		a[i].s = shk_ptr(h[i], off);
		a[i].n = n;
		pthread_create(&th[i], NULL, mt_worker, &a[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		shk_seg_close(h[i]);
	}
	CHECK_EQ(s->counter, 4 * n);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/* SHK_SPIN_NS=0: no spinning, the waiter goes to sleep at once. */
static void
t_spin_zero(void)
{
	struct shared *s = map_shared();
	pid_t pid;

	setenv("SHK_SPIN_NS", "0", 1);
	CHECK_EQ(shk__spin_ns(), 0);
	pid = fork();
	if (pid == 0) {
		struct flag_arg a = { &s->flag[0], 1 };
		_exit(shk__wait(&s->wp[0], flag_is, &a, 5000000000LL) == 0 ? 0
									   : 1);
	}
	while (atomic_load(&s->wp[0].waiters) == 0)
		usleep(100);
	atomic_store_explicit(&s->flag[0], 1, memory_order_release);
	shk__wake(NULL, &s->wp[0], 1);
	CHECK_EQ(test_wait(pid), 0);
}

/*
 * Adaptive spin: with a 100 ms spin budget, four waits on a waitpoint that
 * the spin does not satisfy (they time out after it) teach the thread to
 * sleep on it at once, so its next wait shows up as a waiter well before
 * 100 ms; a wait on another waitpoint still spins its 100 ms first.
 */
static int64_t
until_waiting(struct shared *s, int phase, int w)
{
	int64_t t0;

	while (atomic_load(&s->flag[1]) != (uint32_t)phase)
		usleep(100);
	t0 = test_now_ns();
	while (atomic_load(&s->wp[w].waiters) == 0)
		usleep(100);
	return test_now_ns() - t0;
}

static void
t_spin_adaptive(void)
{
	struct shared *s = map_shared();
	int64_t other, same;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		struct flag_arg never = { &s->flag[1], 7 };
		struct flag_arg a1 = { &s->flag[0], 1 },
				a2 = { &s->flag[0], 2 };
		int i;

		setenv("SHK_SPIN_NS", "100000000", 1);
		if (shk__spin_ns() != 100000000)
			_exit(2);
		for (i = 0; i < 4; i++)
			if (shk__wait(&s->wp[0], flag_is, &never,
				      120000000LL) != SHK_ETIMEDOUT)
				_exit(3);
		/* relaxed here and below: go-aheads for the parent's clock */
		atomic_store_explicit(&s->flag[1], 1, memory_order_relaxed);
		if (shk__wait(&s->wp[1], flag_is, &a1, 5000000000LL) != 0)
			_exit(4);
		atomic_store_explicit(&s->flag[1], 2, memory_order_relaxed);
		_exit(shk__wait(&s->wp[0], flag_is, &a2, 5000000000LL) == 0
			      ? 0
			      : 1);
	}
	other = until_waiting(s, 1, 1);
	atomic_store_explicit(&s->flag[0], 1, memory_order_release);
	shk__wake(NULL, &s->wp[1], 1);
	same = until_waiting(s, 2, 0);
	atomic_store_explicit(&s->flag[0], 2, memory_order_release);
	shk__wake(NULL, &s->wp[0], 1);
	CHECK_EQ(test_wait(pid), 0);
	/* the other waitpoint spun its budget; the taught one slept at once
	 * (slack for a loaded machine) */
	if (other < 90000000)
		TEST_FAIL("the other waitpoint did not spin: waiter after "
			  "%lld ns",
			  (long long)other);
	if (same >= 60000000)
		TEST_FAIL("the taught waitpoint spun first: waiter after "
			  "%lld ns",
			  (long long)same);
}

/* The holder entries of wp in use (wait.h, Holders). */
static int
holders_used(shk__waitpoint *wp)
{
	unsigned i;
	int n = 0;

	for (i = 0; i < SHK__WP_HOLDERS; i++)
		n += atomic_load(&wp->holders[i]) != 0;
	return n;
}

struct rep_shared {
	shk__waitpoint wp;
	_Atomic uint32_t flag;
};

/*
 * A sleeper (k 0) or an armed doorbell listener (k 1) SIGKILLed while it
 * counts in waiters or armed: the waker's first wake that reaches nobody
 * repairs the count, which was too high for good before the holder
 * entries (every later publication then made a FUTEX_WAKE, or a doorbell
 * sendto, that reached nobody).  A live holder is never repaired.
 */
static void
t_dead_holder_repaired(void)
{
	char nm[64];
	shk_seg *seg = test_seg("rep", nm);
	struct rep_shared *s;
	uint64_t off;
	int k, i;

	CHECK_OK(shk_alloc(seg, sizeof(*s), &off));
	s = shk_ptr(seg, off);
	memset(s, 0, sizeof(*s));
	for (k = 0; k < 2; k++) {
		_Atomic uint32_t *cnt = k ? &s->wp.armed : &s->wp.waiters;
		pid_t pid = fork();

		if (pid == 0) {
			shk_seg *cs;
			struct rep_shared *c;
			struct shk__doorbell *db;
			struct flag_arg a;

			if (shk_seg_open(nm, 0, NULL, &cs))
				_exit(3);
			c = shk_ptr(cs, off);
			a.flag = &c->flag;
			a.want = 1;
			if (k == 0) {
				setenv("SHK_SPIN_NS", "0", 1);
				shk__wait_checked(cs, &c->wp, flag_is, &a,
						  10000000000LL, NULL, 0);
			} else if (shk__doorbell_open(cs, &c->wp, &db) == 0) {
				shk__doorbell_arm(db, flag_is, &a);
				pause();
			}
			_exit(4);
		}
		CHECK(pid > 0);
		for (i = 0; i < 5000 && (atomic_load(cnt) != 1 ||
					 holders_used(&s->wp) != 1);
		     i++)
			usleep(1000);
		CHECK_EQ(atomic_load(cnt), 1);
		CHECK_EQ(holders_used(&s->wp), 1);
		CHECK_EQ(shk__wp_repair(seg, &s->wp, k ? SHK__WP_ARMED : 0), 0);
		CHECK_EQ(atomic_load(cnt), 1); /* alive: left alone */
		kill(pid, SIGKILL);
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		for (i = 0; i < 200 && atomic_load(cnt) != 0; i++)
			shk__wake(seg, &s->wp, 1);
		CHECK_EQ(atomic_load(cnt), 0);
		CHECK_EQ(holders_used(&s->wp), 0);
		printf("  %s killed: count repaired by wake %d\n",
		       k ? "armed listener" : "sleeper", i);
		CHECK_EQ(i, 1); /* this thread's first wake that missed */
	}
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/*
 * Holder entries on their own: all ten can be taken and the eleventh
 * holder goes unrecorded; an entry of a dead stamp is cleared once and
 * takes one off its own kind's count, never below zero, and never off the
 * other kind's; a stamp of 0 and entries with bit 31 are left alone.
 */
static void
t_holders_unit(void)
{
	char nm[64];
	shk_seg *seg = test_seg("hold", nm);
	struct rep_shared *s;
	uint32_t me = shk__seg_stamp(seg), dead;
	uint64_t off;
	int i;

	CHECK_OK(shk_alloc(seg, sizeof(*s), &off));
	s = shk_ptr(seg, off);
	memset(s, 0, sizeof(*s));
	CHECK(me != 0);
	/* our attach slot at the previous generation: closed, so dead */
	dead = SHK__STAMP(SHK__STAMP_SLOT(me),
			  (SHK__STAMP_GEN(me) - 1) & SHK__GEN_MASK);
	if (SHK__STAMP_GEN(dead) == 0)
		dead = SHK__STAMP(SHK__STAMP_SLOT(me), SHK__GEN_MASK);
	CHECK_EQ(shk__wp_hold(&s->wp, 0), -1);
	for (i = 0; i < (int)SHK__WP_HOLDERS; i++)
		CHECK_EQ(shk__wp_hold(&s->wp, me), i);
	CHECK_EQ(shk__wp_hold(&s->wp, me), -1);
	CHECK_EQ(shk__wp_repair(seg, &s->wp, 0), 0); /* all alive */
	for (i = 0; i < (int)SHK__WP_HOLDERS; i++)
		shk__wp_unhold(&s->wp, i);
	shk__wp_unhold(&s->wp, -1);
	CHECK_EQ(holders_used(&s->wp), 0);

	/* two dead sleepers, one dead listener, a count of one each */
	atomic_store(&s->wp.waiters, 1);
	atomic_store(&s->wp.armed, 1);
	CHECK_EQ(shk__wp_hold(&s->wp, dead), 0);
	CHECK_EQ(shk__wp_hold(&s->wp, dead), 1);
	CHECK_EQ(shk__wp_hold(&s->wp, dead | SHK__WP_ARMED), 2);
	atomic_store(&s->wp.holders[3], 0x80000000u | dead); /* not ours */
	CHECK_EQ(shk__wp_repair(seg, &s->wp, 0), 2);
	CHECK_EQ(atomic_load(&s->wp.waiters), 0); /* not wrapped */
	CHECK_EQ(atomic_load(&s->wp.armed), 1);
	CHECK_EQ(shk__wp_repair(seg, &s->wp, 0), 0); /* once only */
	CHECK_EQ(shk__wp_repair(seg, &s->wp, SHK__WP_ARMED), 1);
	CHECK_EQ(atomic_load(&s->wp.armed), 0);
	CHECK_EQ(atomic_load(&s->wp.holders[3]), 0x80000000u | dead);
	CHECK_EQ(holders_used(&s->wp), 1);
	CHECK_EQ(shk__wp_repair(NULL, &s->wp, 0), 0);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/*
 * A waiters count that wrapped (UINT32_MAX: a decrement into memory a
 * forced removal gave to a new object, or a hostile peer) made every real
 * sleeper's increment land on 0, so wakers saw nobody asleep and every
 * wake-up on the waitpoint was lost for good: each sleep lasted its slice
 * (here 2 s; the sync kinds' is 10 ms, the probe saw 10-14 ms instead of
 * 0.02 ms).  Now the first sleeper that finds it wrapped takes the bias
 * back.  The bound (1 s) leaves room for valgrind and a loaded machine.
 */
struct wrap_arg {
	struct shared *sh;
	_Atomic int asleep;
	_Atomic int64_t t_done;
	int rc;
};

static void *
wrap_sleeper(void *arg)
{
	struct wrap_arg *a = arg;
	struct flag_arg f = { &a->sh->flag[0], 1 };

	atomic_store(&a->asleep, 1);
	a->rc = shk__wait_checked(NULL, &a->sh->wp[0], flag_is, &f,
				  10000 * 1000000LL, NULL, 2000 * 1000000LL);
	atomic_store(&a->t_done, test_now_ns());
	return NULL;
}

static void
t_wrapped_waiters(void)
{
	struct shared *sh = map_shared();
	int64_t worst = 0, lat;
	int round;

	/* relaxed: the test plants the value with no sleeper there */
	atomic_store_explicit(&sh->wp[0].waiters, UINT32_MAX,
			      memory_order_relaxed);
	for (round = 0; round < 3; round++) {
		struct wrap_arg a = { sh, 0, 0, 1 };
		pthread_t t;
		int64_t t_wake;

		atomic_store(&sh->flag[0], 0);
		CHECK(pthread_create(&t, NULL, wrap_sleeper, &a) == 0);
		while (!atomic_load(&a.asleep))
			sched_yield();
		usleep(200000); /* past its spin: asleep on the futex */
		atomic_store(&sh->flag[0], 1);
		t_wake = test_now_ns();
		shk__wake(NULL, &sh->wp[0], INT_MAX);
		CHECK(pthread_join(t, NULL) == 0);
		CHECK_EQ(a.rc, 0);
		lat = (atomic_load(&a.t_done) - t_wake) / 1000000LL;
		fprintf(stderr,
			"  round %d: woke %lld ms after the wake, "
			"waiters then %u\n",
			round, (long long)lat,
			(unsigned)atomic_load(&sh->wp[0].waiters));
		if (lat > worst)
			worst = lat;
	}
	CHECK(worst < 1000);
	CHECK_EQ(atomic_load(&sh->wp[0].waiters), 0);
	munmap(sh, 4096);
}

/*
 * The same for shk_cond_wait, which counts itself in with
 * shk__wp_count_in() on its own path: its sleeps are 20 ms slices, so a
 * wrapped count costs each wake-up up to a slice rather than all of it;
 * what the test can tell for sure is that the first sleeper takes the
 * bias back (the count ends at 0, not UINT32_MAX).
 */
struct cwrap_arg {
	shk_cond *c;
	shk_mutex *m;
	_Atomic int asleep;
	_Atomic int done;
	int rc;
};

static void *
cwrap_sleeper(void *arg)
{
	struct cwrap_arg *a = arg;

	CHECK_OK(shk_mutex_lock(a->m, SHK_FOREVER));
	atomic_store(&a->asleep, 1);
	while (!atomic_load(&a->done)) {
		a->rc = shk_cond_wait(a->c, a->m, 10000 * 1000000LL);
		if (a->rc)
			break;
	}
	CHECK_OK(shk_mutex_unlock(a->m));
	return NULL;
}

static void
t_wrapped_waiters_cond(void)
{
	char nm[64];
	shk_seg *seg = test_seg("cwrap", nm);
	int round;

	for (round = 0; round < 3; round++) {
		struct cwrap_arg a = { NULL, NULL, 0, 0, 1 };
		pthread_t t;

		CHECK_OK(shk_cond_open(seg, "c", SHK_CREATE, NULL, &a.c));
		CHECK_OK(shk_mutex_open(seg, "m", SHK_CREATE, NULL, &a.m));
		/* relaxed: the test plants the value with no sleeper there */
		atomic_store_explicit(&a.c->m->wp.waiters, UINT32_MAX,
				      memory_order_relaxed);
		CHECK(pthread_create(&t, NULL, cwrap_sleeper, &a) == 0);
		while (!atomic_load(&a.asleep))
			sched_yield();
		usleep(100000); /* asleep in shk_cond_wait */
		CHECK_OK(shk_mutex_lock(a.m, SHK_FOREVER));
		atomic_store(&a.done, 1);
		CHECK_OK(shk_cond_signal(a.c));
		CHECK_OK(shk_mutex_unlock(a.m));
		CHECK(pthread_join(t, NULL) == 0);
		CHECK_EQ(a.rc, 0);
		fprintf(stderr, "  round %d: waiters then %u\n", round,
			(unsigned)atomic_load(&a.c->m->wp.waiters));
		CHECK_EQ(atomic_load(&a.c->m->wp.waiters), 0);
		shk_cond_close(a.c);
		shk_mutex_close(a.m);
	}
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

TEST_MAIN({ "timeout_on_time", t_timeout_on_time },
	  { "spin_adaptive", t_spin_adaptive }, { "spin_zero", t_spin_zero },
	  { "wake_across_processes", t_wake_across_processes },
	  { "no_lost_wakeup_1e5", t_no_lost_wakeup },
	  { "doorbell_wakes_poll", t_doorbell_wakes_poll },
	  { "doorbell_arm_sees_data", t_doorbell_arm_sees_data },
	  { "lock_owner_dead", t_lock_owner_dead },
	  { "lock_threads", t_lock_threads },
	  { "check_every_slice", t_check_every_slice },
	  { "wrapped_waiters", t_wrapped_waiters },
	  { "wrapped_waiters_cond", t_wrapped_waiters_cond },
	  { "dead_holder_repaired", t_dead_holder_repaired },
	  { "holders_unit", t_holders_unit })
