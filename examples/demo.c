/* demo.c - `make demo`: processes exchange data through shmkit.
 *
 * 1. Streaming: a producer process sends 64-byte records (sequence number +
 *    checksum) through a shmkit ring to a consumer process, which verifies
 *    every one; the same number of records then goes through a pipe in the
 *    same run, as the baseline.
 * 2. Round trips: two processes bounce a record over two rings (blocking
 *    reads), against the same ping-pong over two pipes.
 * 3. Heap hand-off: two producer processes allocate blocks from the
 *    segment's shared heap, fill them and hand their offsets to a consumer
 *    through a slot array in a typed blob object; the consumer verifies each
 *    block and frees it (allocated by one process, freed by another).
 * 4. Channel messages of 1 MiB: a sender process fills each message and
 *    passes it through a pair channel to a receiver process, once as a loan
 *    (written in place in the segment's heap, only its offset travels) and
 *    once copied in by shk_chan_send; the same messages then go through a
 *    Unix stream socket as the baseline.
 * Every figure is measured on this machine in this run. */
#include <shmkit.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define SEG "shmkit-demo"
#define NSLOTS 64
#define PER_PRODUCER 20000
#define BLOCK 256

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
open_slots(shk_seg *seg, unsigned flags, _Atomic uint64_t **slots)
{
	shk_obj_desc d = SHK_OBJ_DESC_INIT;

	d.kind = SHK_KIND_BLOB;
	d.type_id = 0x736c6f7473; /* "slots" */
	d.elem_len = sizeof(uint64_t);
	d.cap = NSLOTS;
	return shk_obj_open(seg, "slots", flags, &d, NULL, (void **)slots);
}

static int
producer(int id)
{
	_Atomic uint64_t *slots;
	shk_seg *seg;
	int i;

	if (shk_seg_open(SEG, 0, NULL, &seg) < 0 ||
	    open_slots(seg, 0, &slots) < 0)
		return 1;
	for (i = 0; i < PER_PRODUCER; i++) {
		uint64_t off, zero;
		uint32_t *blk;
		int s = (id * NSLOTS / 2) + i % (NSLOTS / 2), j;

		while (shk_alloc(seg, BLOCK, &off) == SHK_ENOMEM)
			usleep(10);
		blk = shk_ptr(seg, off);
		for (j = 0; j < BLOCK / 4; j++)
			blk[j] = (uint32_t)(id * 1000003 + i + j);
		/* wait until the consumer emptied the slot, then hand over:
		 * release publishes the block's contents */
		for (;;) {
			zero = 0;
			if (atomic_compare_exchange_weak_explicit(
				    &slots[s], &zero, off, memory_order_release,
				    memory_order_relaxed))
				break;
			sched_yield(); /* three spinners may share two CPUs */
		}
	}
	shk_seg_close(seg);
	return 0;
}

static int
heap_demo(shk_seg *seg)
{
	shk_heap_stats hs = { .size = sizeof(hs) },
		       hs0 = { .size = sizeof(hs0) };
	_Atomic uint64_t *slots;
	long got = 0, bad = 0, want = 2L * PER_PRODUCER;
	pid_t pids[2];
	double t0, t1;
	int p, rc;

	rc = open_slots(seg, SHK_CREATE, &slots);
	if (rc < 0) {
		fprintf(stderr, "demo: slots: %s\n", shk_strerror(rc));
		return 1;
	}
	printf("\n3. heap hand-off: 2 producer processes -> 1 consumer, "
	       "%d-byte blocks\n",
	       BLOCK);
	shk_heap_info(seg, &hs0); /* the objects so far: rings, slots */
	t0 = now_s();
	for (p = 0; p < 2; p++) {
		pids[p] = fork();
		if (pids[p] == 0)
			_exit(producer(p));
	}
	while (got < want) {
		long before = got;
		int s;

		for (s = 0; s < NSLOTS; s++) {
			/* acquire: pairs with the producer's release CAS */
			uint64_t off = atomic_exchange_explicit(
				&slots[s], 0, memory_order_acquire);
			uint32_t *blk;
			if (!off)
				continue;
			blk = shk_ptr(seg, off);
			if (!blk || blk[1] != blk[0] + 1)
				bad++;
			if (shk_free(seg, off) < 0)
				bad++;
			got++;
		}
		if (got == before)
			sched_yield(); /* nothing yet: let a producer run */
	}
	t1 = now_s();
	for (p = 0; p < 2; p++)
		waitpid(pids[p], NULL, 0);
	shk_heap_info(seg, &hs);
	printf("  blocks exchanged : %ld (%ld bad)\n", got, bad);
	printf("  bytes            : %.1f MiB in %.3f s = %.0f blocks/s\n",
	       got * (double)BLOCK / (1 << 20), t1 - t0, got / (t1 - t0));
	printf("  heap in use      : %llu bytes before (the objects), %llu "
	       "after: %s\n",
	       (unsigned long long)hs0.used, (unsigned long long)hs.used,
	       hs.used == hs0.used ? "every block came back"
				   : "blocks missing");
	printf("  heap high water  : %llu of %llu bytes\n",
	       (unsigned long long)hs.high_water,
	       (unsigned long long)hs.heap_len);
	if (hs.used != hs0.used)
		bad++;
	return bad ? 1 : 0;
}

/* --- 1 and 2: rings against pipes --- */

#define REC 64
#define NSTREAM 1000000L
#define NPING 20000L

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	return x ^ (x >> 33);
}

/* Streaming batches publication (SHK_RING_BATCH); the ping-pong does not,
 * since each side blocks on the other ring right after writing. */
static int
open_ring(shk_seg *seg, const char *name, int role, shk_ring **r)
{
	shk_ring_opts ro = SHK_RING_OPTS_INIT;

	ro.cap = 1 << 20;
	ro.flags = strcmp(name, "stream") == 0 ? SHK_RING_BATCH : 0;
	return shk_ring_open(seg, name, SHK_CREATE, role, &ro, r);
}

static int
stream_producer(void)
{
	shk_seg *seg;
	shk_ring *r;
	long i;

	if (shk_seg_open(SEG, 0, NULL, &seg) < 0 ||
	    open_ring(seg, "stream", SHK_RING_PRODUCER, &r) < 0)
		return 1;
	for (i = 0; i < NSTREAM; i++) {
		uint64_t *rec;
		if (shk_ring_reserve(r, REC, (void **)&rec, SHK_FOREVER) < 0)
			return 2;
		rec[0] = (uint64_t)i;
		rec[1] = mix((uint64_t)i);
		shk_ring_commit(r); /* written in place: no copy */
	}
	shk_ring_close(r);
	shk_seg_close(seg);
	return 0;
}

static int
stream_demo(shk_seg *seg)
{
	char buf[REC];
	long i, bad = 0;
	double t0, t_ring, t_pipe;
	shk_ring *r;
	pid_t pid;
	int p[2];

	if (open_ring(seg, "stream", SHK_RING_CONSUMER, &r) < 0)
		return 1;
	printf("\n1. streaming %ld records of %d bytes, producer process -> "
	       "consumer process\n",
	       NSTREAM, REC);
	t0 = now_s();
	pid = fork();
	if (pid == 0)
		_exit(stream_producer());
	for (i = 0; i < NSTREAM; i++) {
		const uint64_t *rec;
		size_t len;
		if (shk_ring_peek(r, (const void **)&rec, &len, 5000000000LL) <
		    0)
			return 1;
		if (len != REC || rec[0] != (uint64_t)i || rec[1] != mix(i))
			bad++;
		shk_ring_release(r);
	}
	t_ring = now_s() - t0;
	waitpid(pid, NULL, 0);
	shk_ring_close(r);
	/* baseline: the same records through a pipe, one write each */
	if (pipe(p) < 0)
		return 1;
	t0 = now_s();
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		for (i = 0; i < NSTREAM; i++) {
			memset(buf, 0, sizeof(buf));
			((uint64_t *)buf)[0] = (uint64_t)i;
			((uint64_t *)buf)[1] = mix((uint64_t)i);
			if (write(p[1], buf, REC) != REC)
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	for (i = 0; i < NSTREAM; i++) {
		size_t got = 0;
		while (got < REC) {
			ssize_t n = read(p[0], buf + got, REC - got);
			if (n <= 0)
				return 1;
			got += (size_t)n;
		}
	}
	t_pipe = now_s() - t0;
	close(p[0]);
	waitpid(pid, NULL, 0);
	printf("  shmkit ring : %6.2f M records/s (%5.0f MB/s), %ld bad\n",
	       NSTREAM / t_ring / 1e6, NSTREAM * (double)REC / t_ring / 1e6,
	       bad);
	printf("  pipe        : %6.2f M records/s (baseline, same run)\n",
	       NSTREAM / t_pipe / 1e6);
	printf("  ring / pipe : %.1fx\n", t_pipe / t_ring);
	return bad ? 1 : 0;
}

static int
ping_side(int me)
{
	shk_ring *in, *out;
	shk_seg *seg;
	char buf[REC];
	long i;

	if (shk_seg_open(SEG, 0, NULL, &seg) < 0)
		return 1;
	if (open_ring(seg, me ? "pong" : "ping", SHK_RING_CONSUMER, &in) < 0 ||
	    open_ring(seg, me ? "ping" : "pong", SHK_RING_PRODUCER, &out) < 0)
		return 1;
	for (i = 0; i < NPING; i++) {
		if (me == 0 && shk_ring_write(out, buf, REC, SHK_FOREVER) < 0)
			return 2;
		if (shk_ring_read(in, buf, sizeof(buf), SHK_FOREVER) < 0)
			return 3;
		if (me == 1 && shk_ring_write(out, buf, REC, SHK_FOREVER) < 0)
			return 2;
	}
	shk_ring_close(in);
	shk_ring_close(out);
	shk_seg_close(seg);
	return 0;
}

static int
ping_demo(void)
{
	double t0, t_ring, t_pipe;
	char buf[REC] = { 0 };
	int a[2], b[2], st;
	pid_t pid;
	long i;

	printf("\n2. round trips of a %d-byte record between two processes "
	       "(blocking reads)\n",
	       REC);
	t0 = now_s();
	pid = fork();
	if (pid == 0)
		_exit(ping_side(1));
	st = ping_side(0);
	t_ring = now_s() - t0;
	waitpid(pid, NULL, 0);
	if (st)
		return st;
	if (pipe(a) < 0 || pipe(b) < 0)
		return 1;
	t0 = now_s();
	pid = fork();
	if (pid == 0) {
		for (i = 0; i < NPING; i++) {
			if (read(a[0], buf, REC) != REC ||
			    write(b[1], buf, REC) != REC)
				_exit(1);
		}
		_exit(0);
	}
	for (i = 0; i < NPING; i++) {
		if (write(a[1], buf, REC) != REC || read(b[0], buf, REC) != REC)
			return 1;
	}
	t_pipe = now_s() - t0;
	waitpid(pid, NULL, 0);
	printf("  shmkit rings: %6.2f us per round trip\n",
	       t_ring / NPING * 1e6);
	printf("  pipes       : %6.2f us per round trip (baseline, same run)\n",
	       t_pipe / NPING * 1e6);
	printf("  pipe / ring : %.1fx\n", t_pipe / t_ring);
	return 0;
}

/* --- 4: 1 MiB messages through a channel, by loan and by copy --- */

#define CHAN "shm://shmkit-demo-chan/big"
#define BIG (1 << 20)
#define NBIG 1000L

/* Message i: every byte (i & 0xff), then i in its first and last 8. */
static void
fill_big(unsigned char *p, long i)
{
	uint64_t v = (uint64_t)i;

	memset(p, (int)(i & 0xff), BIG);
	memcpy(p, &v, 8);
	memcpy(p + BIG - 8, &v, 8);
}

static int
big_ok(const unsigned char *p, size_t len, long i)
{
	uint64_t a, z;

	memcpy(&a, p, 8);
	memcpy(&z, p + BIG - 8, 8);
	return len == BIG && a == (uint64_t)i && z == (uint64_t)i &&
	       p[BIG / 2] == (unsigned char)(i & 0xff);
}

static int
open_big(int role, shk_chan **c)
{
	shk_chan_opts co = SHK_CHAN_OPTS_INIT;

	co.seg_size = 64 << 20; /* the heap holds the messages in flight */
	co.cap = 1024;          /* ring bytes: at most 32 messages in flight */
	co.inline_max = 256;    /* anything longer travels as a heap block */
	co.max_msg = BIG;
	return shk_chan_open(CHAN, SHK_CHAN_PAIR, role, &co, c);
}

/* The sending process: NBIG messages by loan (loan = 1) or by copy. */
static int
big_sender(int loan)
{
	unsigned char *buf = loan ? NULL : malloc(BIG);
	shk_chan *c;
	shk_msg *m;
	long i;
	int rc = 0;

	if ((!loan && !buf) || open_big(SHK_CHAN_A, &c) < 0)
		return 1;
	for (i = 0; i < NBIG && rc == 0; i++) {
		if (!loan) {
			fill_big(buf, i);
			rc = shk_chan_send(c, buf, BIG, 5000000000LL);
			continue;
		}
		rc = shk_msg_loan(c, BIG, &m);
		if (rc == 0) {
			fill_big(shk_msg_data(m), i); /* in place */
			rc = shk_msg_send(c, m, 5000000000LL);
			if (rc < 0)
				shk_msg_release(m);
		}
	}
	shk_chan_close(c);
	free(buf);
	return rc < 0 ? 2 : 0;
}

/* One run through the channel; returns seconds, or -1. */
static double
big_run(int loan, long *bad)
{
	shk_chan *c;
	shk_msg *m;
	double t0;
	pid_t pid;
	long i;
	int st;

	if (open_big(SHK_CHAN_B, &c) < 0)
		return -1;
	t0 = now_s();
	pid = fork();
	if (pid == 0)
		_exit(big_sender(loan));
	for (i = 0; i < NBIG; i++) {
		if (shk_chan_recv(c, &m, 5000000000LL) < 0)
			break;
		/* read in place, in the block the sender wrote */
		if (!big_ok(shk_msg_data(m), shk_msg_len(m), i))
			++*bad;
		shk_msg_release(m);
	}
	t0 = now_s() - t0;
	waitpid(pid, &st, 0);
	shk_chan_close(c);
	return i == NBIG && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? t0 : -1;
}

/* One run of the baseline through a Unix stream socket; seconds or -1. */
static double
sock_run(unsigned char *buf, long *bad)
{
	double t0;
	pid_t pid;
	long i;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	t0 = now_s();
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		for (i = 0; i < NBIG; i++) {
			size_t put = 0;
			fill_big(buf, i);
			while (put < BIG) {
				ssize_t n = write(sv[1], buf + put, BIG - put);
				if (n <= 0)
					_exit(1);
				put += (size_t)n;
			}
		}
		_exit(0);
	}
	close(sv[1]);
	for (i = 0; i < NBIG; i++) {
		size_t got = 0;
		while (got < BIG) {
			ssize_t n = read(sv[0], buf + got, BIG - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got < BIG)
			break;
		if (!big_ok(buf, BIG, i))
			++*bad;
	}
	t0 = now_s() - t0;
	close(sv[0]);
	waitpid(pid, NULL, 0);
	return i == NBIG ? t0 : -1;
}

static int
big_demo(void)
{
	unsigned char *buf = malloc(BIG);
	double t[3] = { 1e9, 1e9, 1e9 }, v;
	long bad = 0;
	int r, k;

	if (!buf)
		return 1;
	printf("\n4. %ld messages of 1 MiB, sender process -> receiver "
	       "process (best of 3 rounds)\n",
	       NBIG);
	/* loans, copies and the socket alternate in each round; the first
	 * round also pays the first touch of the channel segment's pages */
	shk_seg_unlink("shmkit-demo-chan", NULL);
	for (r = 0; r < 3; r++)
		for (k = 0; k < 3; k++) {
			v = k < 2 ? big_run(k == 0, &bad) : sock_run(buf, &bad);
			if (v < 0) {
				shk_seg_unlink("shmkit-demo-chan", NULL);
				free(buf);
				return 1;
			}
			t[k] = v < t[k] ? v : t[k];
		}
	shk_seg_unlink("shmkit-demo-chan", NULL);
	free(buf);
	printf("  channel, loans    : %7.0f messages/s (%5.1f GB/s), filled "
	       "in place, only the offset travels\n",
	       NBIG / t[0], NBIG * (double)BIG / t[0] / 1e9);
	printf("  channel, copies   : %7.0f messages/s (%5.1f GB/s), "
	       "shk_chan_send copies into the heap\n",
	       NBIG / t[1], NBIG * (double)BIG / t[1] / 1e9);
	printf("  Unix socket       : %7.0f messages/s (%5.1f GB/s, baseline, "
	       "same run)\n",
	       NBIG / t[2], NBIG * (double)BIG / t[2] / 1e9);
	printf("  loans / socket    : %.1fx, copies / socket: %.1fx, %ld bad\n",
	       t[2] / t[0], t[2] / t[1], bad);
	return bad ? 1 : 0;
}

int
main(void)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_seg_stats st = { .size = sizeof(st) };
	shk_seg *seg;
	int rc;

	o.len = 16 << 20;
	shk_seg_unlink(SEG, NULL); /* a leftover from an interrupted run */
	rc = shk_seg_open(SEG, SHK_CREATE | SHK_EXCL, &o, &seg);
	if (rc < 0) {
		fprintf(stderr, "demo: %s: %s\n", SEG, shk_strerror(rc));
		return 1;
	}
	printf("shmkit %s demo (segment /dev/shm/%s, %ld CPUs)\n",
	       SHK_VERSION_STRING, SEG, sysconf(_SC_NPROCESSORS_ONLN));
	rc = stream_demo(seg);
	if (!rc)
		rc = ping_demo();
	if (!rc)
		rc = heap_demo(seg);
	if (!rc)
		rc = big_demo();
	if (!rc && shk_seg_info(seg, &st) == 0)
		printf("\nsegment: %u objects, %u attached, heap %llu of %llu "
		       "bytes in use\n",
		       st.nobjects, st.attached,
		       (unsigned long long)st.heap_used,
		       (unsigned long long)st.heap_len);
	shk_seg_close(seg);
	shk_seg_unlink(SEG, NULL);
	if (rc)
		fprintf(stderr, "demo failed\n");
	return rc;
}
