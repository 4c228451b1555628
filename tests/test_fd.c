/* test_fd.c - pollable fds of every kind that has one, through epoll:
 * a reader asleep in epoll_wait wakes soon after another process writes
 * (issue 4: within 1 ms), and no wake-up is lost over many rounds.  Then
 * the doorbell's paths: the same for every environment, one listener per
 * waitpoint per segment handle, forked children, stale files. */
#include "harness.h"

#include <fcntl.h>

#include <sys/file.h>

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "doorbell.h"
#include "platform.h"
#include "queue.h"
#include "segment.h"
#include "sync.h"

#define ROUNDS 300

struct shared {
	_Atomic int armed_round; /* reader is about to sleep for this round */
	_Atomic int64_t t_write;
};

/* One kind under test: the reader consumes with a non-blocking call until
 * it reports SHK_EAGAIN (which re-arms the fd); the writer produces one
 * item per round. */
struct kind {
	const char *name;
	int (*open)(shk_seg *seg, int create, int reader, void **h);
	int (*fd)(void *h);
	int (*produce)(void *h);
	int (*consume)(void *h); /* 1 got one, 0 nothing (SHK_EAGAIN), <0 */
	void (*close)(void *h);
};

static int
q_open(shk_seg *seg, int create, int reader, void **h)
{
	shk_queue_opts o = SHK_QUEUE_OPTS_INIT;
	o.cap = 64;
	o.elem_len = 8;
	return shk_queue_open(seg, "fdq", create ? SHK_CREATE : 0, &o,
			      (shk_queue **)h);
}
static int
q_fd(void *h)
{
	return shk_queue_fd(h);
}
static int
q_produce(void *h)
{
	uint64_t v = 7;
	return shk_queue_push(h, &v, SHK_FOREVER);
}
static int
q_consume(void *h)
{
	uint64_t v;
	int rc = shk_queue_pop(h, &v, 0);
	return rc == SHK_EAGAIN ? 0 : rc == 0 ? 1 : rc;
}
static void
q_close(void *h)
{
	shk_queue_close(h);
}

static int
e_open(shk_seg *seg, int create, int reader, void **h)
{
	return shk_event_open(seg, "fde", create ? SHK_CREATE : 0, NULL,
			      (shk_event **)h);
}
static int
e_fd(void *h)
{
	return shk_event_fd(h);
}
static int
e_produce(void *h)
{
	return shk_event_set(h);
}
static int
e_consume(void *h)
{
	int rc = shk_event_wait(h, 0);
	return rc == SHK_EAGAIN ? 0 : rc == 0 ? 1 : rc;
}
static void
e_close(void *h)
{
	shk_event_close(h);
}

static int
s_open(shk_seg *seg, int create, int reader, void **h)
{
	return shk_sem_open(seg, "fds", create ? SHK_CREATE : 0, NULL,
			    (shk_sem **)h);
}
static int
s_fd(void *h)
{
	return shk_sem_fd(h);
}
static int
s_produce(void *h)
{
	return shk_sem_post(h, 1);
}
static int
s_consume(void *h)
{
	int rc = shk_sem_wait(h, 0);
	return rc == SHK_EAGAIN ? 0 : rc == 0 ? 1 : rc;
}
static void
s_close(void *h)
{
	shk_sem_close(h);
}

static int
r_open(shk_seg *seg, int create, int reader, void **h)
{
	shk_ring_opts o = SHK_RING_OPTS_INIT;
	o.cap = 4096;
	return shk_ring_open(seg, "fdr", create ? SHK_CREATE : 0,
			     reader ? SHK_RING_CONSUMER : SHK_RING_PRODUCER, &o,
			     (shk_ring **)h);
}
static int
r_fd(void *h)
{
	return shk_ring_fd(h);
}
static int
r_produce(void *h)
{
	uint64_t v = 7;
	return shk_ring_write(h, &v, sizeof(v), SHK_FOREVER);
}
static int
r_consume(void *h)
{
	uint64_t v;
	int rc = shk_ring_read(h, &v, sizeof(v), 0);
	return rc == SHK_EAGAIN ? 0 : rc >= 0 ? 1 : rc;
}
static void
r_close(void *h)
{
	shk_ring_close(h);
}

static int
b_open(shk_seg *seg, int create, int reader, void **h)
{
	shk_bcast_opts o = SHK_BCAST_OPTS_INIT;
	o.cap = 4096;
	return shk_bcast_open(seg, "fdb", create ? SHK_CREATE : 0,
			      reader ? SHK_BCAST_READER : SHK_BCAST_WRITER, &o,
			      (shk_bcast **)h);
}
static int
b_fd(void *h)
{
	return shk_bcast_fd(h);
}
static int
b_produce(void *h)
{
	uint64_t v = 7;
	return shk_bcast_write(h, &v, sizeof(v), SHK_FOREVER);
}
static int
b_consume(void *h)
{
	uint64_t v, lost = 0;
	int rc = shk_bcast_read(h, &v, sizeof(v), &lost, 0);
	return rc == SHK_EAGAIN ? 0 : rc >= 0 ? 1 : rc;
}
static void
b_close(void *h)
{
	shk_bcast_close(h);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void
run_kind(const struct kind *k)
{
	struct shared *sh;
	int64_t lat[ROUNDS];
	struct epoll_event ev;
	shk_seg *seg;
	char nm[64];
	void *h;
	int ep, fd, r, got;
	pid_t pid;

	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	test_name(nm, sizeof(nm), k->name);
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	CHECK_OK(k->open(seg, 1, 1, &h));
	fd = k->fd(h);
	CHECK_OK(fd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.u32 = 1;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	/* arm: consume until empty */
	while ((got = k->consume(h)) == 1)
		;
	CHECK_EQ(got, 0);
	pid = fork();
	if (pid == 0) {
		shk_seg *cs;
		void *ch;
		if (shk_seg_open(nm, 0, NULL, &cs) || k->open(cs, 1, 0, &ch))
			_exit(2);
		for (r = 1; r <= ROUNDS; r++) {
			while (atomic_load(&sh->armed_round) != r)
				sched_yield();
			usleep(300); /* the reader is asleep in epoll_wait */
			atomic_store(&sh->t_write, test_now_ns());
			if (k->produce(ch) < 0)
				_exit(3);
		}
		k->close(ch);
		shk_seg_close(cs);
		_exit(0);
	}
	for (r = 1; r <= ROUNDS; r++) {
		int n = 0;
		atomic_store(&sh->armed_round, r);
		for (;;) {
			int rc = epoll_wait(ep, &ev, 1, 5000);
			if (rc != 1) {
				kill(pid, SIGKILL);
				test_wait(pid);
				shk_seg_unlink(nm, NULL);
				TEST_FAIL("%s: no wake-up in round %d", k->name,
					  r);
			}
			got = k->consume(h);
			CHECK(got >= 0);
			if (got == 1)
				break;
			/* spurious readiness: consume() re-armed, sleep on */
		}
		lat[r - 1] = test_now_ns() - atomic_load(&sh->t_write);
		while ((got = k->consume(h)) == 1)
			n++;
		CHECK_EQ(got, 0);
		CHECK_EQ(n, 0); /* one item per round */
	}
	CHECK_EQ(test_wait(pid), 0);
	qsort(lat, ROUNDS, sizeof(lat[0]), cmp_i64);
	printf("  %s fd: %d rounds, epoll woke p50 %.3f ms, p99 %.3f ms after "
	       "the write\n",
	       k->name, ROUNDS, lat[ROUNDS / 2] / 1e6,
	       lat[ROUNDS * 99 / 100] / 1e6);
#if !defined(__SANITIZE_ADDRESS__) && !defined(SHK__TSAN)
	CHECK(lat[ROUNDS / 2] < 1000000);
#endif
	close(ep);
	k->close(h);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

static const struct kind kq = { "queue",   q_open,    q_fd,
				q_produce, q_consume, q_close };
static const struct kind ke = { "event",   e_open,    e_fd,
				e_produce, e_consume, e_close };
static const struct kind ks = { "sem",     s_open,    s_fd,
				s_produce, s_consume, s_close };

static const struct kind kr = { "ring",    r_open,    r_fd,
				r_produce, r_consume, r_close };
static const struct kind kb = { "bcast",   b_open,    b_fd,
				b_produce, b_consume, b_close };

static void
t_queue(void)
{
	run_kind(&kq);
}
static void
t_ring(void)
{
	run_kind(&kr);
}
static void
t_bcast(void)
{
	run_kind(&kb);
}
static void
t_event(void)
{
	run_kind(&ke);
}
static void
t_sem(void)
{
	run_kind(&ks);
}

/* 1 if fd polls readable within ms, else 0. */
static int
readable(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int n;

	do {
		n = poll(&p, 1, ms);
	} while (n < 0 && errno == EINTR);
	return n == 1 && (p.revents & POLLIN);
}

/* The listener (a login session, XDG_RUNTIME_DIR set) and a waker of the
 * same user without XDG_RUNTIME_DIR (a cron job, a service) must find the
 * same socket path.  Each process caches the directory at its first
 * doorbell use, so the waker is forked before the listener sets its
 * environment and opens the fd.  Failed when the directory came from the
 * environment: the wake-up went to /tmp/shmkit-UID, the listener was in
 * $XDG_RUNTIME_DIR/shmkit. */
static void
t_xdg(void)
{
	char nm[64], xdg[] = "/tmp/shk-test-xdg-XXXXXX", sub[64];
	int pfd[2], fd, n, st;
	shk_seg *seg;
	shk_event *ev;
	pid_t pid;
	char c = 1;

	test_name(nm, sizeof(nm), "xdg");
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	CHECK_OK(shk_event_open(seg, "ev", SHK_CREATE, NULL, &ev));
	CHECK(pipe(pfd) == 0);
	pid = fork();
	if (pid == 0) {
		shk_seg *cs;
		shk_event *ce;

		unsetenv("XDG_RUNTIME_DIR");
		if (read(pfd[0], &c, 1) != 1)
			_exit(2);
		if (shk_seg_open(nm, 0, NULL, &cs) ||
		    shk_event_open(cs, "ev", 0, NULL, &ce))
			_exit(3);
		if (shk_event_set(ce))
			_exit(4);
		shk_event_close(ce);
		shk_seg_close(cs);
		_exit(0);
	}
	CHECK(mkdtemp(xdg) != NULL);
	CHECK(setenv("XDG_RUNTIME_DIR", xdg, 1) == 0);
	fd = shk_event_fd(ev);
	n = fd >= 0 ? readable(fd, 0) : -1; /* not set yet */
	CHECK(write(pfd[1], &c, 1) == 1);
	st = test_wait(pid);
	if (fd >= 0 && n == 0)
		n = readable(fd, 2000);
	shk_event_close(ev);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
	snprintf(sub, sizeof(sub), "%s/shmkit", xdg);
	rmdir(sub); /* made only when the environment picked the directory */
	rmdir(xdg);
	CHECK_OK(fd);
	CHECK_EQ(st, 0);
	CHECK_EQ(n, 1);
}

/* Two handles on one semaphore through the same segment handle: the
 * second fd is refused (SHK_EBUSY) and the first keeps being signalled,
 * also after the second handle is closed; another segment handle gets its
 * own listener.  Failed when the second bind unlinked the first's path:
 * the first fd was never signalled again. */
static void
t_two_handles(void)
{
	shk_seg *seg, *seg2;
	shk_sem *a, *b, *c;
	int fa, rb, fc, n1, n2, n3, n4;
	char nm[64];

	test_name(nm, sizeof(nm), "2h");
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	CHECK_OK(shk_sem_open(seg, "s", SHK_CREATE, NULL, &a));
	CHECK_OK(shk_sem_open(seg, "s", 0, NULL, &b));
	CHECK_OK(shk_seg_open(nm, 0, NULL, &seg2));
	CHECK_OK(shk_sem_open(seg2, "s", 0, NULL, &c));
	fa = shk_sem_fd(a);
	CHECK_OK(fa);
	rb = shk_sem_fd(b);
	CHECK_OK(shk_sem_post(c, 1));
	n1 = readable(fa, 2000);
	shk_sem_wait(a, 0); /* consume, re-arm */
	shk_sem_close(b);
	CHECK_OK(shk_sem_post(c, 1));
	n2 = readable(fa, 2000);
	shk_sem_wait(a, 0);
	fc = shk_sem_fd(c);
	CHECK_OK(shk_sem_post(a, 1));
	n3 = readable(fa, 2000);
	n4 = fc >= 0 ? readable(fc, 2000) : -1;
	shk_sem_close(a);
	shk_sem_close(c);
	shk_seg_close(seg2);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
	CHECK_EQ(n1, 1);
	CHECK_EQ(n2, 1);
	CHECK_RC(rb, SHK_EBUSY);
	CHECK_OK(fc);
	CHECK_EQ(n3, 1);
	CHECK_EQ(n4, 1);
}

/* A forked child using its parent's handles (against the fork policy, but
 * it happens: cleanup code after fork) must not break the parent's fd:
 * asking for an fd on the inherited segment handle gets SHK_EBUSY, and
 * closing the inherited handle that owns the fd leaves the parent's
 * listener armed and bound.  Failed when the child's open unlinked and
 * re-bound the path, and its close disarmed and unlinked it. */
static void
t_fork_child(void)
{
	shk_sem *a, *c;
	shk_seg *seg;
	int fa, st, n;
	char nm[64];
	pid_t pid;

	test_name(nm, sizeof(nm), "forkfd");
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	CHECK_OK(shk_sem_open(seg, "s", SHK_CREATE, NULL, &a));
	CHECK_OK(shk_sem_open(seg, "s", 0, NULL, &c));
	fa = shk_sem_fd(a);
	CHECK_OK(fa);
	pid = fork();
	if (pid == 0) {
		int rc = shk_sem_fd(c);

		shk_sem_close(c);
		shk_sem_close(a);
		_exit(rc == SHK_EBUSY ? 0 : 1);
	}
	st = test_wait(pid);
	CHECK_OK(shk_sem_post(c, 1));
	n = readable(fa, 2000);
	shk_sem_close(a);
	shk_sem_close(c);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
	CHECK_EQ(n, 1);
	CHECK_EQ(st, 0);
}

/* A forked child takes a's descriptor (binding the slot's path) and dies
 * without closing it, leaving a stale socket file; its exit status. */
static int
leave_stale_file(shk_sem *a)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(shk_sem_fd(a) >= 0 ? 0 : 1);
	return test_wait(pid);
}

/* A listener that dies without closing leaves its socket file; the next
 * listener of the same attach slot replaces it and is signalled. */
static void
t_stale(void)
{
	shk_sem *a, *b;
	shk_seg *seg;
	int fa, st, n;
	char nm[64];

	test_name(nm, sizeof(nm), "stalefd");
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	CHECK_OK(shk_sem_open(seg, "s", SHK_CREATE, NULL, &a));
	CHECK_OK(shk_sem_open(seg, "s", 0, NULL, &b));
	st = leave_stale_file(a);
	fa = shk_sem_fd(a);
	CHECK_OK(shk_sem_post(b, 1));
	n = fa >= 0 ? readable(fa, 2000) : -1;
	shk_sem_close(a);
	shk_sem_close(b);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
	CHECK_EQ(st, 0);
	CHECK_OK(fa);
	CHECK_EQ(n, 1);
}

/* Binds a datagram socket at dir/name, with its mtime age_s in the past;
 * returns the socket (keep: a live listener) or closes it (stale) and
 * returns 0. */
static int
sock_file(const char *dir, const char *name, int age_s, int keep)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timespec ts[2];
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);

	CHECK(s >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", dir, name);
	unlink(a.sun_path);
	CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age_s;
	ts[1] = ts[0];
	CHECK(utimensat(AT_FDCWD, a.sun_path, ts, 0) == 0);
	if (keep)
		return s;
	close(s);
	return 0;
}

static int
file_there(const char *dir, const char *name)
{
	char p[160];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static void
unlink_in(const char *dir, const char *name)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
}

/*
 * A killed listener's socket file used to stay in /tmp/shmkit-UID until a
 * later listener of the same segment instance, waitpoint and slot replaced
 * it, so files of segments long gone piled up.  Each process now sweeps
 * the directory once, at its first listener: a child process with a fresh
 * listener removes an old stale file of the listener form, and leaves a
 * live listener's file, a stale one younger than 2 s and a file of another
 * form.
 */
static void
t_sweep(void)
{
	static const char *stale = "00000000deadbeef-40-7",
			  *live = "00000000deadbeef-40-8",
			  *young = "00000000deadbeef-40-9",
			  *other = "deadbeef-not-a-listener";
	char dir[64], nm[64];
	int ls, st;
	pid_t pid;

	snprintf(dir, sizeof(dir), "/tmp/shmkit-%u", (unsigned)getuid());
	mkdir(dir, 0700);
	CHECK_EQ(sock_file(dir, stale, 3600, 0), 0);
	ls = sock_file(dir, live, 3600, 1);
	CHECK_EQ(sock_file(dir, young, 0, 0), 0);
	CHECK_EQ(sock_file(dir, other, 3600, 0), 0);
	CHECK(file_there(dir, stale));
	test_name(nm, sizeof(nm), "sweep");
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *seg = NULL;
		shk_sem *a = NULL;
		int rc;

		if (shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg) ||
		    shk_seg_unlink(nm, NULL) ||
		    shk_sem_open(seg, "s", SHK_CREATE, NULL, &a))
			_exit(2);
		rc = shk_sem_fd(a) >= 0 ? 0 : 3;
		shk_sem_close(a);
		shk_seg_close(seg);
		_exit(rc);
	}
	st = test_wait(pid);
	CHECK_EQ(st, 0);
	CHECK(!file_there(dir, stale));
	CHECK(file_there(dir, live));
	CHECK(file_there(dir, young));
	CHECK(file_there(dir, other));
	close(ls);
	unlink_in(dir, live);
	unlink_in(dir, young);
	unlink_in(dir, other);
}

/* While another process holds the doorbell directory's lock (stopped or
 * dying inside the short section that replaces a stale file), an fd call
 * that meets a stale file gives up with SHK_EBUSY after about 100 ms
 * instead of waiting on it; it used to wait as long as the lock was held
 * (found by review, 2026-11-23).  With flood, a signal every 100 us
 * (SA_RESTART off) ends each of its 1 ms sleeps early: the wait must still
 * last about 100 ms of clock time.  It counted 100 sleeps and gave up
 * after about 10 ms (audit, 2026-11-25). */
static void
stale_locked(int flood)
{
	struct test_storm storm;
	shk_sem *a, *b;
	shk_seg *seg;
	int fa, first, st, holder_st, p[2];
	char nm[64], dir[64], c;
	int64_t t0, dt;
	pid_t holder;

	test_name(nm, sizeof(nm), "stalelk");
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	CHECK_OK(shk_sem_open(seg, "s", SHK_CREATE, NULL, &a));
	CHECK_OK(shk_sem_open(seg, "s", 0, NULL, &b));
	st = leave_stale_file(a);
	snprintf(dir, sizeof(dir), "/tmp/shmkit-%u", (unsigned)getuid());
	CHECK(pipe(p) == 0);
	holder = fork();
	if (holder == 0) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY);

		if (fd < 0 || flock(fd, LOCK_EX) != 0)
			_exit(1);
		if (write(p[1], "l", 1) != 1)
			_exit(1);
		usleep(1500000);
		_exit(0);
	}
	CHECK(read(p[0], &c, 1) == 1);
	if (flood)
		test_storm_start(&storm, 100, 0, 0);
	t0 = test_now_ns();
	fa = first = shk_sem_fd(a);
	dt = test_now_ns() - t0;
	if (flood)
		test_storm_stop(&storm);
	holder_st = test_wait(holder);
	close(p[0]);
	close(p[1]);
	/* the lock is free again: the stale file is replaced */
	if (fa == SHK_EBUSY)
		fa = shk_sem_fd(a);
	CHECK_OK(shk_sem_post(b, 1));
	CHECK_EQ(fa >= 0 ? readable(fa, 2000) : -1, 1);
	shk_sem_close(a);
	shk_sem_close(b);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
	CHECK_EQ(st, 0);
	CHECK_EQ(holder_st, 0);
	if (dt < 90000000LL || dt >= 1000000000LL)
		TEST_FAIL("the fd call waited %lld ms for the lock (rc %s)",
			  (long long)(dt / 1000000), shk_errname(first));
}

static void
t_stale_locked(void)
{
	stale_locked(0);
}

static void
t_stale_locked_flood(void)
{
	stale_locked(1);
}

/*
 * A listener forks a child that does not touch shmkit, then dies without
 * closing: its socket file must read stale (connect: ECONNREFUSED) while
 * the child lives, so that the slot's next listener replaces it and a
 * waker's byte is not swallowed.  The child's copy of the socket, closed
 * only at exec (SOCK_CLOEXEC), kept the dead listener's path live, and the
 * next listener of the slot got SHK_EBUSY until the child exited; the
 * fork handler now closes it in the child.
 */
static void
t_fork_parent_dies(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int ready[2], hold[2], started[2], s, rc, found = 0;
	char nm[64], dir[64], pre[24], c;
	struct dirent *e;
	shk_seg *seg;
	pid_t p, child = 0;
	DIR *d;

	test_name(nm, sizeof(nm), "forkdies");
	/* the listener's orphan becomes ours to reap */
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	CHECK(pipe(ready) == 0 && pipe(hold) == 0 && pipe(started) == 0);
	p = fork();
	CHECK(p >= 0);
	if (p == 0) {
		shk_seg *ps = NULL;
		shk_sem *m = NULL;
		pid_t k;

		if (shk_seg_open(nm, 0, NULL, &ps) ||
		    shk_sem_open(ps, "s", SHK_CREATE, NULL, &m) ||
		    shk_sem_fd(m) < 0)
			_exit(2);
		k = fork();
		if (k == 0) { /* lives on, holding nothing of shmkit's */
			alarm(20);
			close(hold[1]);
			/* running, so its fork handlers are done (from fork()
			 * until they ran it held its copies) */
			if (write(started[1], "s", 1) != 1 ||
			    read(hold[0], &c, 1) < 0)
				_exit(3);
			_exit(0);
		}
		if (k < 0 || read(started[0], &c, 1) != 1)
			_exit(4);
		/* tell the test the child's pid, then die without closing */
		_exit(write(ready[1], &k, sizeof(k)) == sizeof(k) ? 0 : 5);
	}
	rc = test_wait(p);
	shk_seg_unlink(nm, NULL); /* the handle is all the rest needs */
	CHECK_EQ(rc, 0);
	CHECK_EQ(read(ready[0], &child, sizeof(child)), sizeof(child));
	close(hold[0]);
	/* the dead listener's file: the segment instance names it */
	snprintf(dir, sizeof(dir), "/tmp/shmkit-%u", (unsigned)getuid());
	snprintf(pre, sizeof(pre), "%016llx-",
		 (unsigned long long)shk__seg_instance(seg));
	d = opendir(dir);
	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, pre, strlen(pre)) != 0)
			continue;
		found++;
		CHECK(strlen(dir) + 1 + strlen(e->d_name) < sizeof(a.sun_path));
		strcpy(a.sun_path, dir);
		strcat(a.sun_path, "/");
		strcat(a.sun_path, e->d_name);
	}
	closedir(d);
	s = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(s >= 0);
	rc = found == 1 ? connect(s, (struct sockaddr *)&a, sizeof(a)) : 0;
	if (rc != 0)
		CHECK_EQ(errno, ECONNREFUSED);
	close(s);
	close(hold[1]); /* the child exits */
	CHECK_EQ(test_wait(child), 0);
	close(ready[0]);
	close(ready[1]);
	close(started[0]);
	close(started[1]);
	if (found == 1)
		unlink(a.sun_path);
	shk_seg_close(seg);
	CHECK_EQ(found, 1);
	if (rc == 0)
		TEST_FAIL("the dead listener's path is live while its child "
			  "runs");
}

/*
 * Threads waiting on one semaphore or event handle that has a descriptor.
 * Each wait empties and re-arms the handle's doorbell, whose per-handle
 * state (armed, its holder entry in the waitpoint) was read and written
 * without synchronisation, as was the handle's doorbell pointer, which
 * shk_sem_fd set while waits read it.  Two threads doing 20000 waits each
 * left the shared armed count at 3-22 after close (it must be 0) and up to
 * all 10 holder entries taken (so every post paid a sendto for good, and
 * no dead listener could be repaired any more).  Under TSan the first
 * waits also race with shk_sem_fd's store of the pointer.
 */
struct fdt {
	shk_sem *s;
	shk_event *e;
	long iters;
	_Atomic int started, fd_ready;
};

/* One wait on t's object, and a post or set every 8th (i). */
static void
fdt_one(struct fdt *t, long i)
{
	if (t->s) {
		shk_sem_wait(t->s, 0);
		if (i % 8 == 0)
			shk_sem_post(t->s, 1);
	} else {
		shk_event_wait(t->e, 0);
		if (i % 8 == 0)
			shk_event_set(t->e);
	}
}

static void *
fdt_body(void *arg)
{
	struct fdt *t = arg;
	long i;

	/* seq_cst: test flags.  Waits race with the descriptor's creation
	 * first, then t->iters run with it. */
	atomic_fetch_add(&t->started, 1);
	for (i = 0; !atomic_load(&t->fd_ready); i++)
		fdt_one(t, i);
	for (i = 0; i < t->iters; i++)
		fdt_one(t, i);
	return NULL;
}

static void
t_fd_threads(void)
{
	shk_seg *seg = test_seg_unlinked("fdthr");
	int kind;

	for (kind = 0; kind < 2; kind++) {
		struct fdt t = { NULL, NULL, test_scale(50000), 0, 0 };
		shk__waitpoint *wp;
		pthread_t th[2];
		uint32_t i, held = 0;

		if (kind == 0) {
			CHECK_OK(shk_sem_open(seg, "fds", SHK_CREATE, NULL,
					      &t.s));
			wp = &t.s->m->wp;
		} else {
			CHECK_OK(shk_event_open(seg, "fde", SHK_CREATE, NULL,
						&t.e));
			wp = &t.e->m->wp;
		}
		for (i = 0; i < 2; i++)
			CHECK(pthread_create(&th[i], NULL, fdt_body, &t) == 0);
		while (atomic_load(&t.started) < 2)
			sched_yield();
		CHECK((kind == 0 ? shk_sem_fd(t.s) : shk_event_fd(t.e)) >= 0);
		atomic_store(&t.fd_ready, 1);
		for (i = 0; i < 2; i++)
			CHECK(pthread_join(th[i], NULL) == 0);
		if (kind == 0)
			shk_sem_close(t.s);
		else
			shk_event_close(t.e);
		/* relaxed: the test reads what the closed handle left */
		for (i = 0; i < SHK__WP_HOLDERS; i++)
			held += (atomic_load_explicit(&wp->holders[i],
						      memory_order_relaxed) &
				 SHK__WP_ARMED) != 0;
		CHECK_EQ(atomic_load_explicit(&wp->armed, memory_order_relaxed),
			 0);
		CHECK_EQ(held, 0);
	}
	shk_seg_close(seg);
}

/*
 * The documented poll loop (consume until SHK_EAGAIN, poll again) must
 * sleep while there is nothing to consume.  A doorbell byte whose data is
 * gone kept the descriptor readable for good, and the loop spun: a unit
 * or an auto-reset set that another handle took (sem, event, queue: the
 * wait emptied the socket only after its own success), or a byte sent
 * between a drain's recv and its disarm (ring, bcast; planted here).
 * Before the fix the loop below saw about 1e5 readable polls in 200 ms
 * for each kind; now each stale byte costs one when a waker sent it (it
 * bumped the waitpoint's seq first), and at most SHK__DOORBELL_SKIP_MAX
 * when nothing says it came (a byte from outside the library: arms skip
 * the empty while seq stands still, and every SHK__DOORBELL_SKIP_MAX-th
 * one empties anyway).
 */

/* Sends one byte to the doorbell socket fd is bound to, as a waker whose
 * data someone else took would have. */
static void
plant_byte(int fd)
{
	struct sockaddr_un a;
	socklen_t al = sizeof(a);
	char b = 1;
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);

	CHECK(s >= 0);
	memset(&a, 0, sizeof(a));
	CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
	CHECK(a.sun_family == AF_UNIX && a.sun_path[0] != '\0');
	CHECK_EQ(sendto(s, &b, 1, 0, (struct sockaddr *)&a, al), 1);
	close(s);
}

/* How often fd polled readable in 200 ms of the documented loop; every
 * consume must find nothing (there is nothing to find). */
static long
loop_readable(const struct kind *k, void *h, int fd)
{
	int64_t end = test_now_ns() + 200000000LL;
	long n = 0;
	int rc;

	while (test_now_ns() < end) {
		struct pollfd p = { fd, POLLIN, 0 };

		rc = poll(&p, 1, 200);
		CHECK(rc >= 0);
		if (rc == 0)
			continue;
		n++;
		rc = k->consume(h);
		if (rc != 0)
			TEST_FAIL("%s: consume found %d with nothing there",
				  k->name, rc);
	}
	return n;
}

/* The waitpoint a's doorbell listens on, where the test can reach it
 * (sem, event, queue; NULL for ring and bcast, whose handles are opaque
 * here). */
static shk__waitpoint *
kind_wp(const struct kind *k, void *a)
{
	if (k == &ks)
		return &((shk_sem *)a)->m->wp;
	if (k == &ke)
		return &((shk_event *)a)->m->wp;
	if (k == &kq)
		return &((shk_queue *)a)->hdr->not_empty;
	return NULL;
}

static void
no_spin(const struct kind *k, int other_takes)
{
	shk_seg *seg = test_seg_unlinked("nospin"), *seg2 = NULL;
	void *a = NULL, *b = NULL, *w = NULL;
	shk__waitpoint *wp;
	long taken, planted, woken = -1;
	int fd;

	/* a: the reader with the descriptor; b: another handle on another
	 * segment handle (another attach slot) that takes, or the writer */
	CHECK_OK(k->open(seg, 1, 1, &a));
	CHECK_OK(shk_seg_open_fd(shk_seg_fd(seg), 0, NULL, &seg2));
	CHECK_OK(k->open(seg2, 0, !!other_takes, other_takes ? &b : &w));
	fd = k->fd(a);
	CHECK_OK(fd);
	CHECK_EQ(k->consume(a), 0); /* nothing there: armed */
	taken = 0;
	if (other_takes) {
		CHECK_OK(k->produce(b));
		CHECK_EQ(k->consume(b), 1); /* b wins: a's byte is stale */
		taken = loop_readable(k, a, fd);
	}
	plant_byte(fd);
	planted = loop_readable(k, a, fd);
	wp = kind_wp(k, a);
	if (wp) {
		/* a waker's byte: seq bumped first, as shk__wake_slow()
		 * does (release, as there) */
		atomic_fetch_add_explicit(&wp->seq, 1, memory_order_release);
		plant_byte(fd);
		woken = loop_readable(k, a, fd);
	}
	if (b)
		k->close(b);
	if (w)
		k->close(w);
	k->close(a);
	shk_seg_close(seg2);
	shk_seg_close(seg);
	fprintf(stderr,
		"  %s: readable polls in 200 ms: %ld after another "
		"handle took, %ld after a planted byte, %ld after a planted "
		"byte with seq bumped\n",
		k->name, taken, planted, woken);
	CHECK(taken <= 2);
	/* at least one: a descriptor that never became readable would
	 * pass the bounds without testing anything */
	CHECK(planted >= 1);
	CHECK(planted <= SHK__DOORBELL_SKIP_MAX + 2);
	if (wp) {
		CHECK(woken >= 1);
		CHECK(woken <= 2);
	}
}

static void
t_no_spin(void)
{
	no_spin(&ks, 1);
	no_spin(&ke, 1);
	no_spin(&kq, 1);
	no_spin(&kr, 0);
	no_spin(&kb, 0);
}

/*
 * A consumer that tries with timeout 0 before it polls: each SHK_EAGAIN
 * arms the doorbell, and each arm emptied the socket (a recvmmsg, about
 * 400 ns against 12 for the try itself, docs/waiting.md).  Now an arm
 * empties only when a byte may have come since the last empty (the
 * waitpoint's seq moved, or it rang itself), and every
 * SHK__DOORBELL_SKIP_MAX-th arm anyway.  Before: one empty per try.
 */
static void
t_try_empties(void)
{
	const struct kind *kinds[] = { &ks, &ke, &kq, &kr, &kb };
	unsigned long before, n;
	size_t i;
	int t;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct kind *k = kinds[i];
		shk_seg *seg = test_seg_unlinked("tryemp");
		void *a;

		CHECK_OK(k->open(seg, 1, 1, &a));
		CHECK_OK(k->fd(a));
		CHECK_EQ(k->consume(a), 0); /* armed, emptied */
		/* relaxed: this thread's own calls made the increments */
		before = atomic_load_explicit(&shk__doorbell_test_empties,
					      memory_order_relaxed);
		for (t = 0; t < 10000; t++)
			CHECK_EQ(k->consume(a), 0);
		n = atomic_load_explicit(&shk__doorbell_test_empties,
					 memory_order_relaxed) -
		    before;
		k->close(a);
		shk_seg_close(seg);
		fprintf(stderr, "  %s: %lu empties in 10000 tries\n", k->name,
			n);
		CHECK(n <= 10000 / SHK__DOORBELL_SKIP_MAX + 4);
	}
}

/*
 * A forked child's copy of a listener: the fork handler closed its
 * descriptor, and the number may name one of the child's own sockets by
 * now.  Handles must not be used across fork(), but if one is (a try with
 * timeout 0, which arms), the doorbell must not read from that number:
 * it took the child's own datagram before.
 */
/* Nor may the child's copy disarm: a pop that finds an element drains
 * (disarm, then empty), and the child's took back the parent's share of
 * the waitpoint's armed count, so the parent, armed in its own eyes, got
 * no byte for the next push. */
static void
fork_no_disarm(void)
{
	shk_seg *seg = test_seg_unlinked("forkdis"), *seg2;
	shk__waitpoint *wp;
	void *a, *w;
	int fa;
	pid_t pid;

	CHECK_OK(kq.open(seg, 1, 1, &a));
	CHECK_OK(shk_seg_open_fd(shk_seg_fd(seg), 0, NULL, &seg2));
	CHECK_OK(kq.open(seg2, 0, 0, &w));
	fa = kq.fd(a);
	CHECK_OK(fa);
	CHECK_EQ(kq.consume(a), 0); /* armed */
	wp = kind_wp(&kq, a);
	CHECK_EQ(atomic_load(&wp->armed), 1);
	CHECK_OK(kq.produce(w));
	CHECK_EQ(readable(fa, 2000), 1);
	pid = fork();
	if (pid == 0)
		_exit(kq.consume(a) == 1 ? 0 : 1); /* found it: drains */
	CHECK_EQ(test_wait(pid), 0);
	/* the parent's share is still counted, and a push reaches it */
	CHECK_EQ(atomic_load(&wp->armed), 1);
	CHECK_EQ(kq.consume(a), 0); /* the child took it; re-arms */
	CHECK_OK(kq.produce(w));
	CHECK_EQ(readable(fa, 2000), 1);
	CHECK_EQ(kq.consume(a), 1);
	kq.close(w);
	kq.close(a);
	shk_seg_close(seg2);
	shk_seg_close(seg);
}

static void
t_fork_no_socket_op(void)
{
	shk_seg *seg = test_seg_unlinked("forkop");
	shk_sem *a;
	int fa;
	pid_t pid;

	CHECK_OK(shk_sem_open(seg, "s", SHK_CREATE, NULL, &a));
	fa = shk_sem_fd(a);
	CHECK_OK(fa);
	pid = fork();
	if (pid == 0) {
		int sv[2], i, peer;
		char c = 'x';

		/* the closed doorbell's number names the child's socket */
		if (fcntl(fa, F_GETFD) != -1)
			_exit(10); /* not closed by the fork handler */
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0)
			_exit(11);
		/* the peer above fa (socketpair may have put it there) */
		peer = fcntl(sv[1], F_DUPFD, fa + 1);
		if (peer < 0 || (sv[0] != fa && dup2(sv[0], fa) != fa))
			_exit(12);
		if (send(peer, &c, 1, 0) != 1)
			_exit(16);
		/* past SHK__DOORBELL_SKIP_MAX arms, so one would empty */
		for (i = 0; i < 2 * SHK__DOORBELL_SKIP_MAX; i++)
			if (shk_sem_wait(a, 0) != SHK_EAGAIN)
				_exit(13);
		c = 0;
		if (recv(fa, &c, 1, MSG_DONTWAIT) != 1 || c != 'x')
			_exit(14); /* the doorbell took the child's datagram */
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 0);
	/* the parent's listener still works */
	CHECK_OK(shk_sem_post(a, 1));
	CHECK_EQ(readable(fa, 2000), 1);
	shk_sem_close(a);
	shk_seg_close(seg);
	fork_no_disarm();
}

TEST_MAIN({ "ring_fd_epoll", t_ring }, { "bcast_fd_epoll", t_bcast },
	  { "queue_fd_epoll", t_queue }, { "event_fd_epoll", t_event },
	  { "sem_fd_epoll", t_sem }, { "fd_xdg_runtime_dir", t_xdg },
	  { "fd_two_handles", t_two_handles },
	  { "fd_fork_child", t_fork_child }, { "fd_stale_file", t_stale },
	  { "fd_stale_locked", t_stale_locked },
	  { "fd_stale_locked_flood", t_stale_locked_flood },
	  { "fd_sweep", t_sweep },
	  { "fd_fork_parent_dies", t_fork_parent_dies },
	  { "fd_threads", t_fd_threads }, { "fd_no_spin", t_no_spin },
	  { "fd_try_empties", t_try_empties },
	  { "fd_fork_no_socket_op", t_fork_no_socket_op })
