/*
 * test_intr.c - shk_interruptible: with it on, a signal handler that runs
 * while a blocking call sleeps ends the call with SHK_EINTR, having taken
 * nothing and undone its waiting, and so does any sleep that ends short of
 * the deadline without the condition; with it off (the default), the call
 * waits on to its deadline.  One process: a storm thread (harness.h)
 * sends SIGUSR1, handled without SA_RESTART, to the waiting thread every
 * 100 ms.
 */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL
#define LONG_WAIT (5000 * MS) /* what an interrupted call must not wait */

#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		const char *g_ = (got), *w_ = (want);                          \
		if (strcmp(g_, w_) != 0)                                       \
			TEST_FAIL("%s is \"%s\", want \"%s\"", #got, g_, w_);  \
	} while (0)

static shk_seg *
seg_create(const char *tag)
{
	return test_seg_unlinked(tag);
}

/* The object's one-line description (shk_obj_describe). */
static const char *
describe(shk_seg *s, const char *name)
{
	static char buf[256];
	shk_obj_info in = { .size = sizeof(in) };

	CHECK_OK(shk_obj_stat(s, name, &in));
	CHECK(shk_obj_describe(s, &in, buf, sizeof(buf)) >= 0);
	return buf;
}

/* Storm state for the calls below: started by intr_begin, with the mode
 * given; intr_end stops it and restores the default. */
static struct test_storm g_storm;
static int64_t g_t0;

static void
intr_begin(int on)
{
	CHECK_EQ(shk_interruptible(on), 0); /* every case starts at 0 */
	test_storm_start(&g_storm, 100000, 0, 0);
	g_t0 = test_now_ns();
}

/* Stops the storm; returns the ms since intr_begin. */
static int64_t
intr_end(void)
{
	int64_t dt = (test_now_ns() - g_t0) / MS;

	test_storm_stop(&g_storm);
	shk_interruptible(0);
	return dt;
}

/* An interrupted call returns at the first signal (100 ms), far from
 * LONG_WAIT; the bound leaves room for a loaded machine. */
static void
check_interrupted(int rc, const char *what)
{
	int64_t dt = intr_end();

	if (rc != SHK_EINTR)
		TEST_FAIL("%s: got %s, want SHK_EINTR", what, shk_errname(rc));
	if (dt >= 2500)
		TEST_FAIL("%s: interrupted after %lld ms (signals every 100)",
			  what, (long long)dt);
}

static void
t_setting(void)
{
	CHECK_EQ(shk_interruptible(0), 0); /* the default */
	CHECK_EQ(shk_interruptible(5), 0);
	CHECK_EQ(shk_interruptible(1), 1); /* stored as 0 or 1 */
	CHECK_EQ(shk_interruptible(0), 1);
	CHECK_EQ(shk_interruptible(0), 0);
}

/* Off, the default: the signals end sleeps, the call waits on. */
static void
t_off_waits_on(void)
{
	shk_seg *s = seg_create("ioff");
	shk_sem *sem = NULL;
	int rc;
	int64_t dt;

	CHECK_OK(shk_sem_open(s, "sem", SHK_CREATE, NULL, &sem));
	intr_begin(0);
	rc = shk_sem_wait(sem, 450 * MS);
	dt = intr_end();
	CHECK_RC(rc, SHK_ETIMEDOUT);
	if (dt < 440)
		TEST_FAIL("timed out after %lld ms, want 450", (long long)dt);
	shk_sem_close(sem);
	shk_seg_close(s);
}

/* On, with no signal: a sleep that ends at a slice (20 ms for the sync
 * objects) without the condition returns too, so that a handler that ran
 * while the thread was awake between two sleeps is seen by the caller
 * before a later sleep could take anything. */
static void
t_slice_returns(void)
{
	shk_seg *s = seg_create("islice");
	shk_sem *sem = NULL;
	int64_t t0, dt;
	int rc;

	CHECK_OK(shk_sem_open(s, "sem", SHK_CREATE, NULL, &sem));
	CHECK_EQ(shk_interruptible(1), 0);
	t0 = test_now_ns();
	rc = shk_sem_wait(sem, LONG_WAIT);
	dt = (test_now_ns() - t0) / MS;
	shk_interruptible(0);
	CHECK_RC(rc, SHK_EINTR);
	if (dt >= 2500)
		TEST_FAIL("returned after %lld ms (slices of 20)",
			  (long long)dt);
	CHECK_STR(describe(s, "sem"), "count=0 max=2147483647 waiters=0");
	/* a short timeout still ends as a timeout */
	CHECK_EQ(shk_interruptible(1), 0);
	rc = shk_sem_wait(sem, 5 * MS);
	shk_interruptible(0);
	CHECK_RC(rc, SHK_ETIMEDOUT);
	shk_sem_close(sem);
	shk_seg_close(s);
}

static void
t_sem(void)
{
	shk_seg *s = seg_create("isem");
	shk_sem *sem = NULL;

	CHECK_OK(shk_sem_open(s, "sem", SHK_CREATE, NULL, &sem));
	intr_begin(1);
	check_interrupted(shk_sem_wait(sem, LONG_WAIT), "sem wait");
	CHECK_STR(describe(s, "sem"), "count=0 max=2147483647 waiters=0");
	CHECK_OK(shk_sem_post(sem, 1));
	CHECK_OK(shk_sem_wait(sem, 0)); /* the unit is there to take */
	shk_sem_close(sem);
	shk_seg_close(s);
}

static void
t_queue_ring(void)
{
	shk_seg *s = seg_create("iqr");
	shk_queue *q = NULL;
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	shk_ring *p = NULL, *c = NULL;
	uint64_t v = 0;
	char buf[64];

	qo.elem_len = sizeof(v);
	qo.cap = 4;
	CHECK_OK(shk_queue_open(s, "q", SHK_CREATE, &qo, &q));
	intr_begin(1);
	check_interrupted(shk_queue_pop(q, &v, LONG_WAIT), "queue pop");
	v = 42;
	CHECK_OK(shk_queue_push(q, &v, 0));
	v = 0;
	CHECK_OK(shk_queue_pop(q, &v, 0));
	CHECK_EQ(v, 42);
	shk_queue_close(q);

	CHECK_OK(
		shk_ring_open(s, "r", SHK_CREATE, SHK_RING_PRODUCER, NULL, &p));
	CHECK_OK(shk_ring_open(s, "r", 0, SHK_RING_CONSUMER, NULL, &c));
	intr_begin(1);
	check_interrupted(shk_ring_read(c, buf, sizeof(buf), LONG_WAIT),
			  "ring read");
	CHECK_OK(shk_ring_write(p, "abc", 3, 0));
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), 0), 3);
	shk_ring_close(c);
	shk_ring_close(p);
	shk_seg_close(s);
}

struct holder {
	shk_mutex *m;
	_Atomic int state; /* 1: holds the lock; 2: asked to unlock */
};

static void *
holder_body(void *arg)
{
	struct holder *h = arg;

	if (shk_mutex_lock(h->m, SHK_FOREVER) != 0)
		return NULL;
	atomic_store(&h->state, 1);
	while (atomic_load(&h->state) != 2)
		usleep(1000);
	shk_mutex_unlock(h->m);
	return NULL;
}

/* A mutex held by another thread of the handle (threads take it in turn):
 * the waiter is interrupted and does not hold it; then it locks. */
static void
t_mutex_cond(void)
{
	shk_seg *s = seg_create("imc");
	struct holder h;
	shk_cond *cv = NULL;
	pthread_t th;

	h.m = NULL;
	atomic_store(&h.state, 0);
	CHECK_OK(shk_mutex_open(s, "m", SHK_CREATE, NULL, &h.m));
	CHECK(pthread_create(&th, NULL, holder_body, &h) == 0);
	while (atomic_load(&h.state) != 1)
		usleep(1000);
	intr_begin(1);
	check_interrupted(shk_mutex_lock(h.m, LONG_WAIT), "mutex lock");
	CHECK_RC(shk_mutex_unlock(h.m), SHK_EPERM); /* not ours */
	atomic_store(&h.state, 2);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(shk_mutex_lock(h.m, 1000 * MS));

	/* cond: interrupted with the mutex held again */
	CHECK_OK(shk_cond_open(s, "cv", SHK_CREATE, NULL, &cv));
	intr_begin(1);
	check_interrupted(shk_cond_wait(cv, h.m, LONG_WAIT), "cond wait");
	CHECK_OK(shk_mutex_unlock(h.m));
	CHECK_STR(describe(s, "m"), "unlocked");
	shk_cond_close(cv);
	shk_mutex_close(h.m);
	shk_seg_close(s);
}

/* A barrier wait withdraws its arrival, as at a timeout. */
static void
t_barrier(void)
{
	shk_seg *s = seg_create("ibar");
	shk_sync_opts o = SHK_SYNC_OPTS_INIT;
	shk_barrier *b = NULL;

	o.count = 2;
	CHECK_OK(shk_barrier_open(s, "b", SHK_CREATE, &o, &b));
	intr_begin(1);
	check_interrupted(shk_barrier_wait(b, LONG_WAIT), "barrier wait");
	CHECK_STR(describe(s, "b"), "parties=2 arrived=0 gen=0 waiters=0");
	shk_barrier_close(b);
	shk_seg_close(s);
}

/*
 * The EINTR retry loop (the Python binding's) must still see a dead peer.
 * With signals faster than the 50 ms dead-peer slice, every call's sleep
 * ended by a signal returned SHK_EINTR before its slice's check was due,
 * and the next call started a new slice: a ring consumer whose producer
 * was SIGKILLed got SHK_EINTR for ever (10 ms signals).  Now an
 * interrupted call runs the check first.  Same for a bcast reader whose
 * writer died.
 */
static void
peer_dead_loop(int bcast)
{
	shk_seg *s = seg_create("ipd"), *cs = NULL;
	shk_ring *c = NULL, *p = NULL;
	shk_bcast *br = NULL, *bw = NULL;
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	struct test_storm st;
	int ready[2], rc, n_eintr = 0;
	int64_t t0, dt;
	char buf[64], ch;
	pid_t pid;

	if (bcast)
		CHECK_OK(shk_bcast_open(s, "b", SHK_CREATE, SHK_BCAST_READER,
					&bo, &br));
	else
		CHECK_OK(shk_ring_open(s, "r", SHK_CREATE, SHK_RING_CONSUMER,
				       NULL, &c));
	CHECK(pipe(ready) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) { /* the peer: opens its side, then waits to die */
		if (shk_seg_open_fd(shk_seg_fd(s), 0, NULL, &cs) ||
		    (bcast ? shk_bcast_open(cs, "b", 0, SHK_BCAST_WRITER, NULL,
					    &bw)
			   : shk_ring_open(cs, "r", 0, SHK_RING_PRODUCER, NULL,
					   &p)) ||
		    write(ready[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	CHECK_EQ(read(ready[0], &ch, 1), 1);
	kill(pid, SIGKILL);
	CHECK_EQ(waitpid(pid, &rc, 0), pid);
	close(ready[0]);
	close(ready[1]);
	CHECK_EQ(shk_interruptible(1), 0);
	test_storm_start(&st, 10000, 0, 0); /* a signal every 10 ms */
	t0 = test_now_ns();
	do {
		uint64_t lost = 0;

		rc = bcast ? shk_bcast_read(br, buf, sizeof(buf), &lost,
					    SHK_FOREVER)
			   : shk_ring_read(c, buf, sizeof(buf), SHK_FOREVER);
	} while (rc == SHK_EINTR && ++n_eintr &&
		 test_now_ns() - t0 < 5000 * MS);
	dt = (test_now_ns() - t0) / MS;
	test_storm_stop(&st);
	shk_interruptible(0);
	if (bcast)
		shk_bcast_close(br);
	else
		shk_ring_close(c);
	shk_seg_close(s);
	fprintf(stderr, "  %s: %s after %lld ms, %d SHK_EINTR\n",
		bcast ? "bcast reader" : "ring consumer", shk_errname(rc),
		(long long)dt, n_eintr);
	CHECK_RC(rc, SHK_EPEERDEAD);
	CHECK(dt < 1000);
}

static void
t_peer_dead_ring(void)
{
	peer_dead_loop(0);
}

static void
t_peer_dead_bcast(void)
{
	peer_dead_loop(1);
}

TEST_MAIN({ "setting", t_setting }, { "off_waits_on", t_off_waits_on },
	  { "slice_returns", t_slice_returns }, { "sem", t_sem },
	  { "queue_ring", t_queue_ring }, { "mutex_cond", t_mutex_cond },
	  { "barrier", t_barrier }, { "intr_peer_dead_ring", t_peer_dead_ring },
	  { "intr_peer_dead_bcast", t_peer_dead_bcast })
