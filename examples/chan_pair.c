/* chan_pair.c - two processes talk over a pair channel: the parent (end A)
 * sends small messages (copied through the ring) and one large loan
 * (written in place in the segment's heap); the child (end B) answers each
 * one.  Prints what each side saw; exits 0 when every reply matched. */
#include <shmkit.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 5
#define BIG (256 * 1024)

static int
child(const char *addr)
{
	shk_chan *c;
	shk_msg *m;
	char reply[64];
	int rc, i;

	rc = shk_chan_open(addr, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &c);
	if (rc < 0) {
		fprintf(stderr, "B: open: %s\n", shk_strerror(rc));
		return 1;
	}
	for (i = 0; i < N + 1; i++) {
		rc = shk_chan_recv(c, &m, 5000000000LL); /* 5 s */
		if (rc < 0) {
			fprintf(stderr, "B: recv: %s\n", shk_strerror(rc));
			shk_chan_close(c);
			return 1;
		}
		/* read in place: in the ring, or in the sender's block */
		snprintf(reply, sizeof(reply), "got %zu bytes", shk_msg_len(m));
		shk_msg_release(m);
		rc = shk_chan_send(c, reply, strlen(reply), SHK_FOREVER);
		if (rc < 0) {
			fprintf(stderr, "B: send: %s\n", shk_strerror(rc));
			shk_chan_close(c);
			return 1;
		}
	}
	shk_chan_close(c);
	return 0;
}

static int
expect_reply(shk_chan *c, size_t len)
{
	char want[64];
	shk_msg *m;
	int rc, ok;

	rc = shk_chan_recv(c, &m, 5000000000LL);
	if (rc < 0) {
		fprintf(stderr, "A: recv: %s\n", shk_strerror(rc));
		return 0;
	}
	snprintf(want, sizeof(want), "got %zu bytes", len);
	ok = shk_msg_len(m) == strlen(want) &&
	     memcmp(shk_msg_data(m), want, strlen(want)) == 0;
	printf("A: reply '%.*s'%s\n", (int)shk_msg_len(m),
	       (const char *)shk_msg_data(m), ok ? "" : " (wrong)");
	shk_msg_release(m);
	return ok;
}

int
main(void)
{
	char seg[64], addr[128], text[64];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *c;
	shk_msg *m;
	int rc, i, good = 0, st = 1;
	pid_t pid;

	snprintf(seg, sizeof(seg), "chan-pair-example-%d", (int)getpid());
	snprintf(addr, sizeof(addr), "shm://%s/talk", seg);
	o.max_msg = BIG;
	/* the first opener creates the segment and the channel */
	rc = shk_chan_open(addr, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &c);
	if (rc < 0) {
		fprintf(stderr, "A: open: %s\n", shk_strerror(rc));
		return 1;
	}
	pid = fork();
	if (pid == 0)
		_exit(child(addr));
	for (i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "hello %d", i);
		rc = shk_chan_send(c, text, strlen(text), SHK_FOREVER);
		if (rc < 0)
			break;
		good += expect_reply(c, strlen(text));
	}
	/* zero copy: borrow a heap block, write it in place, send its
	 * offset; B reads the same bytes in its own mapping */
	if (rc >= 0)
		rc = shk_msg_loan(c, BIG, &m);
	if (rc >= 0) {
		memset(shk_msg_data(m), 'x', shk_msg_len(m));
		rc = shk_msg_send(c, m, SHK_FOREVER);
		if (rc < 0)
			shk_msg_release(m);
		else
			good += expect_reply(c, BIG);
	}
	if (rc < 0)
		fprintf(stderr, "A: %s\n", shk_strerror(rc));
	if (pid > 0)
		waitpid(pid, &st, 0);
	shk_chan_close(c);
	shk_seg_unlink(seg, NULL);
	printf("%d of %d replies matched; B exited %d\n", good, N + 1,
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return good == N + 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
