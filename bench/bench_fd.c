/*
 * bench_fd.c - pollable-fd wake-up latency (issue 4): two processes bounce
 * a signal through shmkit event fds, each side asleep in epoll_wait, against
 * the same ping-pong through two bare eventfds (inherited over fork) in the
 * same run.  One-way latency = round trip / 2; median of RUNS runs.
 */
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include "bench.h"
#include "shmkit.h"

#define RUNS 5

static char seg_name[64];

static int
ep_wait1(int ep)
{
	struct epoll_event ev;

	return epoll_wait(ep, &ev, 1, 5000) == 1 ? 0 : -1;
}

static int
ep_for(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		return -1;
	return ep;
}

/* Waits for the ponger; 1 when it exited 0. */
static int
child_ok(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* bare eventfd ping-pong: returns ns per round trip */
static double
eventfd_rtt(long n)
{
	int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);
	uint64_t v = 1;
	int64_t t0, t1;
	pid_t pid;
	long i;

	pid = fork();
	if (pid == 0) {
		int ep = ep_for(a);
		bench_pin(1);
		for (i = 0; i < n; i++) {
			if (ep_wait1(ep) || read(a, &v, 8) != 8 ||
			    write(b, &v, 8) != 8)
				_exit(1);
		}
		_exit(0);
	}
	{
		int ep = ep_for(b);
		bench_pin(0);
		t0 = bench_now_ns();
		for (i = 0; i < n; i++) {
			if (write(a, &v, 8) != 8 || ep_wait1(ep) ||
			    read(b, &v, 8) != 8)
				break;
		}
		t1 = bench_now_ns();
		close(ep);
	}
	if (!child_ok(pid))
		i = -1; /* the ponger failed: no figure */
	close(a);
	close(b);
	return i == n ? (double)(t1 - t0) / n : -1;
}

static int
open_ev(shk_seg *seg, const char *name, shk_event **e, int *ep)
{
	int rc = shk_event_open(seg, name, SHK_CREATE, NULL, e);

	if (rc < 0)
		return rc;
	rc = shk_event_fd(*e);
	if (rc < 0)
		return rc;
	*ep = ep_for(rc);
	/* consume nothing: arms the fd */
	shk_event_wait(*e, 0);
	return *ep < 0 ? -1 : 0;
}

/* wait for the event through its fd, then consume it */
static int
ev_take(shk_event *e, int ep)
{
	for (;;) {
		int rc = shk_event_wait(e, 0);
		if (rc == 0)
			return 0;
		if (rc != SHK_EAGAIN || ep_wait1(ep))
			return -1;
	}
}

static double
shk_rtt(long n)
{
	shk_seg *seg;
	shk_event *in, *out;
	int64_t t0, t1;
	pid_t pid;
	long i;
	int ep;

	pid = fork();
	if (pid == 0) {
		bench_pin(1);
		if (shk_seg_open(seg_name, 0, NULL, &seg) < 0 ||
		    open_ev(seg, "ping", &in, &ep) < 0 ||
		    shk_event_open(seg, "pong", SHK_CREATE, NULL, &out) < 0)
			_exit(1);
		for (i = 0; i < n; i++) {
			if (ev_take(in, ep) || shk_event_set(out) < 0)
				_exit(2);
		}
		_exit(0);
	}
	bench_pin(0);
	if (shk_seg_open(seg_name, 0, NULL, &seg) < 0 ||
	    open_ev(seg, "pong", &in, &ep) < 0 ||
	    shk_event_open(seg, "ping", SHK_CREATE, NULL, &out) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	usleep(20000); /* let the child arm its fd */
	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		if (shk_event_set(out) < 0 || ev_take(in, ep))
			break;
	}
	t1 = bench_now_ns();
	if (!child_ok(pid))
		i = -1; /* the ponger failed: no figure */
	shk_event_close(in);
	shk_event_close(out);
	close(ep);
	shk_seg_close(seg);
	return i == n ? (double)(t1 - t0) / n : -1;
}

int
main(void)
{
	double base[RUNS], ours[RUNS];
	long n = bench_scale(20000);
	shk_seg *seg;
	int r;

	snprintf(seg_name, sizeof(seg_name), "shk-bench-fd-%d", (int)getpid());
	if (shk_seg_open(seg_name, SHK_CREATE | SHK_EXCL, NULL, &seg) < 0)
		return 1;
	printf("# fd wake-up: epoll ping-pong between 2 pinned processes, "
	       "%d CPUs, median of %d runs of %ld round trips\n",
	       bench_ncpus(), RUNS, n);
	eventfd_rtt(n / 10 + 1); /* warm-up */
	shk_rtt(n / 10 + 1);
	for (r = 0; r < RUNS; r++) {
		base[r] = eventfd_rtt(n) / 2;
		ours[r] = shk_rtt(n) / 2;
		if (base[r] < 0 || ours[r] < 0) {
			fprintf(stderr, "bench_fd: a ping-pong failed\n");
			shk_seg_close(seg);
			shk_seg_unlink(seg_name, NULL);
			return 1;
		}
	}
	bench_row("fd", "event fd wake-up one-way (epoll)",
		  bench_median(ours, RUNS), "ns", "bare eventfd (epoll)",
		  bench_median(base, RUNS));
	shk_seg_close(seg);
	shk_seg_unlink(seg_name, NULL);
	return 0;
}
