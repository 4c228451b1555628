/*
 * epoll_consumer.c - one process waits with epoll on two rings and a
 * timerfd; two forked children produce into the rings.  Runs to completion
 * by itself and prints what it received.  It fails (exit 1) when a producer
 * exits before its END (checked at every timer tick) or when nothing arrives
 * for 5 s.
 *
 *   build/release/examples/epoll_consumer
 *
 * Test hook: EPOLL_CONSUMER_HOLD_END=1 makes each producer wait 10 s
 * before its END, so that tests/examples.sh can kill one while it is
 * surely still running.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmkit.h"

#define NMSG 50
#define TIMEOUT_NS 5000000000LL

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
producer(const char *seg_name, const char *ring_name, int id)
{
	shk_seg *seg = NULL;
	shk_ring *r = NULL;
	char msg[64];
	int i, rc;

	rc = shk_seg_open(seg_name, 0, NULL, &seg);
	if (rc == 0)
		rc = shk_ring_open(seg, ring_name, 0, SHK_RING_PRODUCER, NULL,
				   &r);
	if (rc) {
		fprintf(stderr, "producer %d: %s\n", id, shk_strerror(rc));
		return 1;
	}
	for (i = 0; i < NMSG; i++) {
		int n = snprintf(msg, sizeof(msg), "producer %d message %d", id,
				 i);

		usleep(2000 * (unsigned)(id + 1));
		rc = shk_ring_write(r, msg, (size_t)n, TIMEOUT_NS);
		if (rc) {
			fprintf(stderr, "producer %d: %s\n", id,
				shk_strerror(rc));
			return 1;
		}
	}
	if (getenv("EPOLL_CONSUMER_HOLD_END"))
		sleep(10); /* test hook (above) */
	rc = shk_ring_write(r, "END", 3, TIMEOUT_NS);
	if (rc) {
		fprintf(stderr, "producer %d: END: %s\n", id, shk_strerror(rc));
		return 1;
	}
	shk_ring_close(r);
	shk_seg_close(seg);
	return 0;
}

int
main(void)
{
	static const char *const names[2] = { "left", "right" };
	char seg_name[64], buf[256];
	shk_seg *seg = NULL;
	shk_ring *rings[2] = { NULL, NULL };
	struct epoll_event ev, evs[4];
	struct itimerspec its = { { 0, 20000000 }, { 0, 20000000 } };
	int ep = -1, tfd = -1, rc, i, w, open_rings = 2, status = 1;
	uint64_t exp_ticks;
	long got[2] = { 0, 0 }, ticks = 0;
	pid_t pids[2] = { -1, -1 };
	int ended[2] = { 0, 0 }, pst[2] = { 0, 0 };
	double last;

	snprintf(seg_name, sizeof(seg_name), "shk-example-epoll-%d",
		 (int)getpid());
	rc = shk_seg_open(seg_name, SHK_CREATE | SHK_EXCL, NULL, &seg);
	if (rc) {
		fprintf(stderr, "segment: %s\n", shk_strerror(rc));
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ep < 0 || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL))
		goto out;
	ev.events = EPOLLIN;
	ev.data.u32 = 2;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev))
		goto out;
	for (i = 0; i < 2; i++) {
		int fd;

		rc = shk_ring_open(seg, names[i], SHK_CREATE, SHK_RING_CONSUMER,
				   NULL, &rings[i]);
		if (rc) {
			fprintf(stderr, "ring: %s\n", shk_strerror(rc));
			goto out;
		}
		fd = shk_ring_fd(rings[i]);
		if (fd < 0) {
			fprintf(stderr, "ring fd: %s\n", shk_strerror(fd));
			goto out;
		}
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
			goto out;
	}
	for (i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(producer(seg_name, names[i], i));
	}
	last = now_s();
	while (open_rings > 0) {
		int n = epoll_wait(ep, evs, 4, 1000), k, drain[2] = { 0, 0 };

		if (n < 0) {
			perror("epoll_wait");
			goto out;
		}
		/* at every wakeup (the timer ticks every 20 ms): a producer
		 * that exited must have written END; drain its ring once more
		 * to find it */
		for (i = 0; i < 2; i++) {
			if (pids[i] > 0 &&
			    waitpid(pids[i], &pst[i], WNOHANG) == pids[i]) {
				pids[i] = -pids[i]; /* reaped */
				drain[i] = 1;
			}
		}
		for (k = 0; k < n; k++)
			if (evs[k].data.u32 < 2)
				drain[evs[k].data.u32] = 1;
			else if (read(tfd, &exp_ticks, sizeof(exp_ticks)) > 0)
				ticks += (long)exp_ticks;
		for (w = 0; w < 2; w++) {
			if (!drain[w] || ended[w])
				continue;
			/* drain; the read that finds the ring empty re-arms
			 * the descriptor */
			while ((rc = shk_ring_read(rings[w], buf,
						   sizeof(buf) - 1, SHK_TRY)) >=
			       0) {
				last = now_s();
				buf[rc] = '\0';
				if (!strcmp(buf, "END")) {
					printf("%s: END after %ld messages\n",
					       names[w], got[w]);
					ended[w] = 1;
					open_rings--;
					break;
				}
				got[w]++;
				if (got[w] % 10 == 1)
					printf("%s: %s\n", names[w], buf);
			}
			if (rc < 0 && rc != SHK_EAGAIN) {
				fprintf(stderr, "read: %s\n", shk_strerror(rc));
				goto out;
			}
		}
		for (i = 0; i < 2; i++) {
			if (pids[i] < 0 && pids[i] != -1 && !ended[i]) {
				fprintf(stderr,
					"producer %d (%s) %s %d before its "
					"END, "
					"after %ld messages\n",
					i, names[i],
					WIFEXITED(pst[i])
						? "exited with status"
						: "was killed by signal",
					WIFEXITED(pst[i]) ? WEXITSTATUS(pst[i])
							  : WTERMSIG(pst[i]),
					got[i]);
				goto out;
			}
		}
		if (open_rings > 0 && now_s() - last > 5.0) {
			fprintf(stderr, "nothing for 5 s\n");
			goto out;
		}
	}
	printf("received %ld + %ld messages, %ld timer ticks\n", got[0], got[1],
	       ticks);
	status = got[0] == NMSG && got[1] == NMSG ? 0 : 1;
out:
	for (i = 0; i < 2; i++) {
		if (pids[i] > 0) {
			if (status) /* failed: stop the other one */
				kill(pids[i], SIGKILL);
			waitpid(pids[i], &pst[i], 0);
		}
		if (pids[i] != -1 &&
		    (!WIFEXITED(pst[i]) || WEXITSTATUS(pst[i])))
			status = 1;
		shk_ring_close(rings[i]);
	}
	if (tfd >= 0)
		close(tfd);
	if (ep >= 0)
		close(ep);
	shk_seg_close(seg);
	shk_seg_unlink(seg_name, NULL);
	return status;
}
