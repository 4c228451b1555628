/*
 * bench_chan - messages through a pair channel between two pinned
 * processes, beside a Unix stream socket measured in the same rounds
 * (DESIGN §9: "large messages by loan: cost independent of size").
 *
 * For each size (64 B, 4 KiB, 64 KiB, 1 MiB), three cases alternate round
 * by round; a figure is the median over the rounds:
 *   loan    the sender takes a heap block (shk_msg_loan), writes the
 *           message number into its first 8 bytes, and sends the offset
 *           (shk_msg_send); the receiver reads the number in place and
 *           releases the block.  Nothing else of the message is touched:
 *           this is the cost of handing a message over.
 *   copy    shk_chan_send copies the whole message from a buffer (inline
 *           through the ring up to 256 B, into a heap block above), the
 *           receiver reads the number in place and releases it.
 *   socket  (baseline) write() of the whole message into a Unix stream
 *           socket, read() of all of it on the other side.
 * Every message carries its number; the receiver checks it and that none
 * is missing or repeated.  Rows: loan and copy each beside the socket
 * (above 1: faster), and each size's loan rate beside the 64 B loan rate
 * (about 1 when a loan costs the same whatever the size).
 */
#include <sys/socket.h>

#include "bench.h"

#define CHAN_SEG "shk-bench-chan"
#define ADDR "shm://" CHAN_SEG "/c"
#define ROUNDS_MAX 15

enum { K_LOAN, K_COPY, K_SOCK, K_N };
static const char *kind_name[K_N] = { "loan", "copy", "socket" };
static const size_t sizes[] = { 64, 4096, 65536, 1 << 20 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* the last run's span, set by party 0 (this process) after the run */
static double last_span_ns;

struct ctx {
	int kind;
	size_t len;
	long n;     /* messages in the measured run */
	int sv[2];  /* socket case */
	int failed; /* set by the party that saw a bad message */
};

static int
open_chan(int role, shk_chan **c)
{
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;

	o.seg_size = 96 << 20; /* 32 messages of 1 MiB in flight, and more */
	o.cap = 1024;          /* ring bytes: at most 32 heap references */
	o.inline_max = 256;
	o.max_msg = 1 << 20;
	return shk_chan_open(ADDR, SHK_CHAN_PAIR, role, &o, c);
}

/* After a run: both ends stamped; party 0 takes the span. */
static int
end_sync(struct bench_team *t)
{
	if (bench_team_sync(t) != 0)
		return -1;
	if (t->idx == 0)
		last_span_ns = bench_team_span_ns(t);
	return 0;
}

static int
fail(const char *what, long i, int rc)
{
	fprintf(stderr, "bench_chan: %s at message %ld: %s\n", what, i,
		rc < 0 ? shk_strerror(rc) : "wrong message number");
	return -1;
}

static int
chan_party(struct bench_team *t)
{
	struct ctx *x = t->ctx;
	unsigned char *buf = NULL;
	shk_chan *c;
	shk_msg *m;
	uint64_t v;
	long i;
	int rc;

	rc = open_chan(t->idx == 0 ? SHK_CHAN_A : SHK_CHAN_B, &c);
	if (rc < 0)
		return fail("open", -1, rc);
	rc = shk_seg_prefault(shk_chan_seg(c));
	if (rc == 0 && t->idx == 0 && x->kind == K_COPY) {
		buf = calloc(1, x->len);
		rc = buf ? 0 : SHK_ENOMEM;
	}
	if (rc < 0 || bench_team_sync(t) != 0) {
		free(buf);
		shk_chan_close(c);
		return rc < 0 ? fail("setup", -1, rc) : -1;
	}
	bench_team_start(t);
	for (i = 0; i < x->n; i++) {
		v = (uint64_t)i;
		if (t->idx == 1) {
			rc = shk_chan_recv(c, &m, 10000000000ll);
			if (rc < 0)
				break;
			memcpy(&v, shk_msg_data(m), sizeof(v));
			if (shk_msg_len(m) != x->len || v != (uint64_t)i) {
				shk_msg_release(m);
				rc = 1;
				break;
			}
			shk_msg_release(m);
		} else if (x->kind == K_COPY) {
			memcpy(buf, &v, sizeof(v));
			rc = shk_chan_send(c, buf, x->len, 10000000000ll);
			if (rc < 0)
				break;
		} else {
			rc = shk_msg_loan(c, x->len, &m);
			if (rc < 0)
				break;
			memcpy(shk_msg_data(m), &v, sizeof(v)); /* in place */
			rc = shk_msg_send(c, m, 10000000000ll);
			if (rc < 0) {
				shk_msg_release(m);
				break;
			}
		}
	}
	bench_team_end(t);
	free(buf);
	shk_chan_close(c);
	if (i < x->n)
		return fail(t->idx ? "recv" : "send", i, rc);
	return end_sync(t);
}

static int
sock_party(struct bench_team *t)
{
	struct ctx *x = t->ctx;
	unsigned char *buf = calloc(1, x->len);
	int fd = x->sv[t->idx];
	uint64_t v;
	size_t done;
	ssize_t r;
	long i;

	close(x->sv[1 - t->idx]);
	if (!buf || bench_team_sync(t) != 0) {
		free(buf);
		return -1;
	}
	bench_team_start(t);
	for (i = 0; i < x->n; i++) {
		v = (uint64_t)i;
		if (t->idx == 0)
			memcpy(buf, &v, sizeof(v));
		for (done = 0; done < x->len; done += (size_t)r) {
			r = t->idx == 0 ? write(fd, buf + done, x->len - done)
					: read(fd, buf + done, x->len - done);
			if (r <= 0)
				break;
		}
		if (done < x->len)
			break;
		if (t->idx == 1) {
			memcpy(&v, buf, sizeof(v));
			if (v != (uint64_t)i)
				break;
		}
	}
	bench_team_end(t);
	free(buf);
	if (i < x->n)
		return fail(t->idx ? "socket read" : "socket write", i, 1);
	return end_sync(t);
}

static int
party(struct bench_team *t)
{
	struct ctx *x = t->ctx;

	return x->kind == K_SOCK ? sock_party(t) : chan_party(t);
}

/* One run of kind k for messages of len bytes; msgs/s, or -1. */
static double
run_one(int k, size_t len, long n)
{
	struct ctx x = { .kind = k, .len = len, .n = n };
	int rc;

	if (k == K_SOCK && socketpair(AF_UNIX, SOCK_STREAM, 0, x.sv) < 0)
		return -1;
	last_span_ns = 0;
	rc = bench_team_run(2, party, &x);
	if (k == K_SOCK) {
		close(x.sv[0]);
		close(x.sv[1]);
	}
	if (rc != 0 || !(last_span_ns > 0))
		return -1;
	return (double)n * 1e9 / last_span_ns;
}

/* Messages per run: about the same bytes for the copying cases. */
static long
count_for(size_t len)
{
	long n = len <= 4096 ? 100000 : (len <= 65536 ? 20000 : 2000);

	n = bench_scale(n);
	return n < 100 ? 100 : n;
}

int
main(void)
{
	double v[NSIZES][K_N][ROUNDS_MAX], med[NSIZES][K_N];
	int rounds = bench_runs(), r, k, rc = 0;
	size_t s;
	char nm[80], bn[80], sz[32];

	if (rounds > ROUNDS_MAX)
		rounds = ROUNDS_MAX;
	printf("# pair channel vs same-run Unix stream socket, 2 pinned "
	       "processes (%d CPUs), median of %d rounds\n",
	       bench_ncpus(), rounds);
	shk_seg_unlink(CHAN_SEG, NULL);
	/* warm-up: every case once, small */
	for (s = 0; s < NSIZES && rc == 0; s++)
		for (k = 0; k < K_N && rc == 0; k++)
			if (run_one(k, sizes[s], count_for(sizes[s]) / 10 + 1) <
			    0)
				rc = 1;
	for (r = 0; r < rounds && rc == 0; r++)
		for (s = 0; s < NSIZES && rc == 0; s++)
			for (k = 0; k < K_N && rc == 0; k++) {
				/* loans: the same count at every size, so
				 * that their rates compare */
				long n = k == K_LOAN ? count_for(64) / 5
						     : count_for(sizes[s]);

				v[s][k][r] = run_one(k, sizes[s], n);
				if (v[s][k][r] < 0)
					rc = 1;
			}
	shk_seg_unlink(CHAN_SEG, NULL);
	if (rc) {
		fprintf(stderr, "bench_chan: a run failed\n");
		return 1;
	}
	for (s = 0; s < NSIZES; s++)
		for (k = 0; k < K_N; k++)
			med[s][k] = bench_median(v[s][k], (size_t)rounds);
	for (s = 0; s < NSIZES; s++) {
		bench_size_str(sizes[s], sz, sizeof(sz));
		snprintf(bn, sizeof(bn), "unix socket %s", sz);
		for (k = K_LOAN; k <= K_COPY; k++) {
			/* a loan's payload is not touched beyond its
			 * first 8 bytes: a handover rate, not data moved */
			snprintf(nm, sizeof(nm), "pair %s %s%s", kind_name[k],
				 sz, k == K_LOAN ? ", payload untouched" : "");
			bench_row("chan", nm, med[s][k] / 1e3, "kmsg/s", bn,
				  med[s][K_SOCK] / 1e3);
		}
	}
	for (s = 1; s < NSIZES; s++) {
		bench_size_str(sizes[s], sz, sizeof(sz));
		snprintf(nm, sizeof(nm), "pair loan %s, payload untouched", sz);
		bench_row("chan", nm, med[s][K_LOAN] / 1e3, "kmsg/s",
			  "pair loan 64 B", med[0][K_LOAN] / 1e3);
	}
	return 0;
}
