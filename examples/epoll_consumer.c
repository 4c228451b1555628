/*
 * epoll_consumer.c - one process waits with epoll on two rings and a
 * timerfd; two forked children produce into the rings.  Runs to completion
 * by itself and prints what it received.
 *
 *   build/release/examples/epoll_consumer
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmkit.h"

#define NMSG 50

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
		if (shk_ring_write(r, msg, (size_t)n, SHK_FOREVER))
			return 1;
	}
	shk_ring_write(r, "END", 3, SHK_FOREVER);
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
	int ep = -1, tfd = -1, rc, i, open_rings = 2, status = 1;
	long got[2] = { 0, 0 }, ticks = 0;
	pid_t pids[2] = { -1, -1 };

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
	while (open_rings > 0) {
		int n = epoll_wait(ep, evs, 4, 5000), k;

		if (n <= 0) {
			fprintf(stderr, "epoll_wait: nothing for 5 s\n");
			goto out;
		}
		for (k = 0; k < n; k++) {
			uint32_t w = evs[k].data.u32;
			uint64_t exp;

			if (w == 2) {
				if (read(tfd, &exp, sizeof(exp)) > 0)
					ticks += (long)exp;
				continue;
			}
			if (!rings[w])
				continue;
			/* drain; the read that finds the ring empty re-arms
			 * the descriptor */
			while ((rc = shk_ring_read(rings[w], buf,
						   sizeof(buf) - 1, SHK_TRY)) >=
			       0) {
				buf[rc] = '\0';
				if (!strcmp(buf, "END")) {
					printf("%s: END after %ld messages\n",
					       names[w], got[w]);
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
	}
	printf("received %ld + %ld messages, %ld timer ticks\n", got[0], got[1],
	       ticks);
	status = got[0] == NMSG && got[1] == NMSG ? 0 : 1;
out:
	for (i = 0; i < 2; i++) {
		if (pids[i] > 0) {
			int st;

			waitpid(pids[i], &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				status = 1;
		}
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
