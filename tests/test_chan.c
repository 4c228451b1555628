/*
 * test_chan.c - channels (docs/chan.md): each pattern end to end between
 * processes with stamped messages, loans, limits and codes, corrupt
 * references in flight, killed peers, a half-created channel, and heap
 * use back at its start once every message is released.
 */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "chan.h"
#include "heap.h"
#include "heap_int.h"

#define SEG_SIZE ((uint64_t)8 << 20)

/* fork() whose child dies with the case process, so that a failed
 * check never leaves a sender or receiver behind, blocked for ever. */
static pid_t
spawn(void)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
	}
	return pid;
}

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A stamped message: {producer, seq, len, sum} then bytes derived from
 * (producer, seq); at least 16 bytes. */
struct stamp {
	uint32_t prod, seq, len, sum;
};

static void
stamp_fill(uint8_t *p, size_t len, uint32_t prod, uint32_t seq)
{
	struct stamp s = { prod, seq, (uint32_t)len, 0 };
	uint64_t x = ((uint64_t)prod << 32) | seq;
	uint32_t sum = 0;
	size_t i;

	for (i = sizeof(s); i < len; i++) {
		if ((i & 7) == 0 || i == sizeof(s))
			x = mix64(x);
		p[i] = (uint8_t)(x >> ((i & 7) * 8));
		sum = sum * 31 + p[i];
	}
	s.sum = sum;
	memcpy(p, &s, sizeof(s));
}

/* 0 when p holds a well-formed stamped message of len bytes. */
static int
stamp_check(const uint8_t *p, size_t len, uint32_t *prod, uint32_t *seq)
{
	struct stamp s;
	uint32_t sum = 0;
	size_t i;

	if (len < sizeof(s))
		return -1;
	memcpy(&s, p, sizeof(s));
	if (s.len != len)
		return -2;
	for (i = sizeof(s); i < len; i++)
		sum = sum * 31 + p[i];
	if (sum != s.sum)
		return -3;
	*prod = s.prod;
	*seq = s.seq;
	return 0;
}

/* Sizes across inline_max, with the edges and max_msg. */
static size_t
pick_len(uint64_t *rng, size_t inline_max, size_t max_msg)
{
	uint64_t r = mix64((*rng)++);
	size_t lo = sizeof(struct stamp);

	switch (r % 10) {
	case 0:
		return max_msg;
	case 1:
		return inline_max;
	case 2:
		return inline_max + 1 <= max_msg ? inline_max + 1 : max_msg;
	case 3:
	case 4:
	case 5:
		return lo + (size_t)((r >> 8) % (inline_max - lo + 1));
	default:
		return lo + (size_t)((r >> 8) % (max_msg - lo + 1));
	}
}

static void
addr_of(char *buf, size_t n, const char *seg, const char *ch)
{
	snprintf(buf, n, "shm://%s/%s", seg, ch);
}

static uint64_t
heap_used(shk_chan *c)
{
	shk_heap_stats hs = { .size = sizeof(hs) };

	CHECK_OK(shk_heap_info(shk_chan_seg(c), &hs));
	return hs.used;
}

static shk_chan_opts
pair_opts(void)
{
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;

	o.seg_size = SEG_SIZE;
	o.cap = 16384;
	o.max_msg = 65536;
	o.inline_max = 512;
	return o;
}

/* Sends n stamped messages as producer prod: every third one as a loan. */
static void
send_stamped(shk_chan *c, uint32_t prod, uint32_t n, size_t inline_max,
	     size_t max_msg, uint64_t seed)
{
	static uint8_t buf[1 << 17];
	shk_chan_stats st = { .size = sizeof(st) };
	uint64_t rng = seed;
	uint32_t i;
	int loans;

	/* pub/sub has no loans (SHK_ENOTSUP, tested in pubsub_lossy) */
	CHECK_OK(shk_chan_stat(c, &st));
	loans = st.pattern != SHK_CHAN_PUBSUB;

	for (i = 0; i < n; i++) {
		size_t len = pick_len(&rng, inline_max, max_msg);

		if (i % 3 == 2 && loans) {
			shk_msg *m;

			int rc;

			/* a loan does not wait: a full heap is SHK_ENOMEM */
			int64_t t0 = test_now_ns();

			while ((rc = shk_msg_loan(c, len, &m)) == SHK_ENOMEM &&
			       test_now_ns() - t0 < 10000000000LL)
				usleep(200);
			CHECK_OK(rc);
			CHECK_EQ(shk_msg_len(m), len);
			stamp_fill(shk_msg_data(m), len, prod, i);
			CHECK_OK(shk_msg_send(c, m, SHK_FOREVER));
		} else {
			/* waits for ring, queue or heap room */
			stamp_fill(buf, len, prod, i);
			CHECK_OK(shk_chan_send(c, buf, len, SHK_FOREVER));
		}
	}
}

/* Receives n stamped messages of producer prod, in order. */
static void
recv_stamped(shk_chan *c, uint32_t prod, uint32_t n)
{
	uint32_t i, p, s;
	shk_msg *m;

	for (i = 0; i < n; i++) {
		CHECK_OK(shk_chan_recv(c, &m, 10000000000LL));
		CHECK_EQ(stamp_check(shk_msg_data(m), shk_msg_len(m), &p, &s),
			 0);
		CHECK_EQ(p, prod);
		CHECK_EQ(s, i);
		shk_msg_release(m);
	}
}

/* ---- addresses, roles, opts ---- */

static void
t_addr(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT, bad = SHK_CHAN_OPTS_INIT;
	static const char *const bads[] = {
		"",
		"shm:/x/y",
		"tcp://x/y",
		"shm://",
		"shm://seg",
		"shm://seg/",
		"shm:///chan",
		"shm://seg/ch/extra",
		"shm://se g/ch",
		"shm://seg/c h",
		"shm://seg/..",
		"shm://./ch",
		"shm://seg/"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"shm://"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aa/c",
		"SHM://seg/ch",
	};
	shk_chan *c = (shk_chan *)&o;
	size_t i;

	test_name(seg, sizeof(seg), "addr");
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		int rc = shk_chan_open(bads[i], SHK_CHAN_PAIR, SHK_CHAN_A, NULL,
				       &c);

		if (rc != SHK_EINVAL)
			TEST_FAIL("address '%s': %s", bads[i], shk_errname(rc));
		CHECK(c == NULL);
	}
	CHECK_RC(shk_chan_open(NULL, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &c),
		 SHK_EINVAL);
	addr_of(a, sizeof(a), seg, "ch");
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, NULL),
		 SHK_EINVAL);
	/* roles of another pattern, unknown patterns */
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_PUB, NULL, &c),
		 SHK_EINVAL);
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_A, NULL, &c),
		 SHK_EINVAL);
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_SUB, NULL, &c),
		 SHK_EINVAL);
	CHECK_RC(shk_chan_open(a, 9, SHK_CHAN_A, NULL, &c), SHK_EINVAL);
	bad.size = 0;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &bad, &c),
		 SHK_EINVAL);
	/* geometry that cannot be: inline_max beyond the ring */
	o.seg_size = SEG_SIZE;
	o.cap = 1024;
	o.inline_max = 1000;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &c),
		 SHK_EINVAL);
	o.inline_max = 0;
	o.cap = 1000; /* not a power of two */
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &c),
		 SHK_EINVAL);
	CHECK(c == NULL);
	o.cap = 64; /* below the log's minimum */
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, &o, &c),
		 SHK_EINVAL);
	o.cap = 1024;
	o.max_msg = 1000; /* beyond cap/2 - 16 */
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_SUB, &o, &c),
		 SHK_EINVAL);
	o.cap = 3;
	o.max_msg = 0;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &c),
		 SHK_EINVAL);
	/* none of them made the segment */
	{
		shk_seg *s;

		CHECK_RC(shk_seg_open(seg, 0, NULL, &s), SHK_ENOENT);
	}
	/* NULL-safety of the message and handle calls */
	CHECK_RC(shk_chan_send(NULL, "x", 1, 0), SHK_EINVAL);
	CHECK_RC(shk_chan_recv(NULL, NULL, 0), SHK_EINVAL);
	CHECK(shk_msg_data(NULL) == NULL);
	CHECK_EQ(shk_msg_len(NULL), 0);
	shk_msg_release(NULL);
	shk_chan_close(NULL);
	CHECK_RC(shk_chan_fd(NULL), SHK_EINVAL);
	CHECK(shk_chan_seg(NULL) == NULL);
	shk_seg_unlink(seg, NULL);
}

/* ---- pair ---- */

static void
t_pair_basic(void)
{
	char seg[64], a[160], big[4096];
	shk_chan_opts o = pair_opts();
	shk_chan *ca, *cb;
	shk_msg *m, *m2;
	uint64_t used0, off;
	char desc[256];
	shk_obj_info info = { .size = sizeof(info) };
	shk_chan_stats st = { .size = sizeof(st) };

	test_name(seg, sizeof(seg), "pair_basic");
	addr_of(a, sizeof(a), seg, "ch");
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca));
	/* B accepts the stored geometry with default opts */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
	used0 = heap_used(ca);

	/* inline, in place in the ring */
	CHECK_OK(shk_chan_send(ca, "hello", 5, 0));
	CHECK_OK(shk_chan_send(ca, "", 0, 0));
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	CHECK_EQ(shk_msg_len(m), 5);
	CHECK(memcmp(shk_msg_data(m), "hello", 5) == 0);
	CHECK(shk_off(shk_chan_seg(cb), shk_msg_data(m)) != 0);
	/* one outstanding received message per pair handle */
	CHECK_RC(shk_chan_recv(cb, &m2, 0), SHK_EBUSY);
	CHECK(m2 == NULL);
	shk_msg_release(m);
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	CHECK_EQ(shk_msg_len(m), 0);
	shk_msg_release(m);
	CHECK_RC(shk_chan_recv(cb, &m, 0), SHK_EAGAIN);

	/* a large message travels as a heap block */
	memset(big, 'z', sizeof(big));
	CHECK_OK(shk_chan_send(ca, big, sizeof(big), 0));
	CHECK(heap_used(ca) > used0);
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	CHECK_EQ(shk_msg_len(m), sizeof(big));
	CHECK(memcmp(shk_msg_data(m), big, sizeof(big)) == 0);
	shk_msg_release(m);
	CHECK_EQ(heap_used(ca), used0);

	/* a loan is read in place: the same offset on both sides */
	CHECK_OK(shk_msg_loan(cb, 65536, &m));
	off = shk_off(shk_chan_seg(cb), shk_msg_data(m));
	CHECK(off != 0);
	memset(shk_msg_data(m), 7, shk_msg_len(m));
	CHECK_OK(shk_msg_send(cb, m, 0));
	CHECK_OK(shk_chan_recv(ca, &m, 0));
	CHECK_EQ(shk_off(shk_chan_seg(ca), shk_msg_data(m)), off);
	CHECK_EQ(((uint8_t *)shk_msg_data(m))[65535], 7);
	shk_msg_release(m);
	/* a loan dropped unsent frees its block */
	CHECK_OK(shk_msg_loan(ca, 10, &m));
	CHECK(heap_used(ca) > used0);
	shk_msg_release(m);
	CHECK_EQ(heap_used(ca), used0);

	/* limits */
	CHECK_RC(shk_chan_send(ca, big, 65537, 0), SHK_EMSGSIZE);
	CHECK_RC(shk_msg_loan(ca, 65537, &m), SHK_EMSGSIZE);
	CHECK(m == NULL);
	CHECK_RC(shk_chan_send(ca, NULL, 1, 0), SHK_EINVAL);
	/* a message of another handle is not ours to send */
	CHECK_OK(shk_msg_loan(ca, 10, &m));
	CHECK_RC(shk_msg_send(cb, m, 0), SHK_EINVAL);
	shk_msg_release(m);

	/* stats and describe */
	CHECK_OK(shk_chan_stat(ca, &st));
	CHECK_EQ(st.pattern, SHK_CHAN_PAIR);
	CHECK_EQ(st.role, SHK_CHAN_A);
	CHECK_EQ(st.cap, 16384);
	CHECK_EQ(st.max_msg, 65536);
	CHECK_EQ(st.inline_max, 512);
	CHECK_EQ(st.sent, 3);
	CHECK_EQ(st.received, 1);
	CHECK_EQ(st.outstanding, 0);
	CHECK_OK(shk_obj_stat(shk_chan_seg(ca), "ch", &info));
	CHECK_EQ(info.kind, SHK_KIND_CHAN);
	CHECK(shk_obj_describe(shk_chan_seg(ca), &info, desc, sizeof(desc)) >
	      0);
	if (!strstr(desc, "pattern=pair") || !strstr(desc, "parts=2/2") ||
	    !strstr(desc, "inline_max=512"))
		TEST_FAIL("describe: %s", desc);
	CHECK_OK(shk_seg_check(shk_chan_seg(ca)));
	CHECK_EQ(heap_used(ca), used0);
	shk_chan_close(ca);
	shk_chan_close(cb);
	shk_seg_unlink(seg, NULL);
}

static void
t_pair_roles(void)
{
	char seg[64], a[160];
	shk_chan_opts o = pair_opts();
	shk_chan *ca, *cb, *x;
	shk_msg *m;

	test_name(seg, sizeof(seg), "pair_roles");
	addr_of(a, sizeof(a), seg, "ch");
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca));
	/* single-owner ends */
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &x),
		 SHK_EBUSY);
	CHECK(x == NULL);
	/* the stored pattern and geometry must match */
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, NULL, &x),
		 SHK_ETYPE);
	o.cap = 32768;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &x),
		 SHK_ETYPE);
	o = pair_opts();
	o.inline_max = 256;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &x),
		 SHK_ETYPE);
	o = pair_opts();
	o.type_id = 42;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &x),
		 SHK_ETYPE);
	/* a part that is not a channel part */
	{
		char a2[160];
		shk_ring *r;

		CHECK_OK(shk_ring_open(shk_chan_seg(ca), "other.ab", SHK_CREATE,
				       SHK_RING_PRODUCER, NULL, &r));
		shk_ring_close(r);
		addr_of(a2, sizeof(a2), seg, "other");
		CHECK_RC(shk_chan_open(a2, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &x),
			 SHK_ETYPE);
	}
	/* a pair end cannot be used with the other pattern's calls */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
	CHECK(shk_chan_fd(cb) >= 0);
	CHECK_OK(shk_chan_send(ca, "x", 1, 0));
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	shk_msg_release(m);
	/* close gives the role back */
	shk_chan_close(cb);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
	shk_chan_close(cb);
	shk_chan_close(ca);
	shk_seg_unlink(seg, NULL);
}

/* A in this process, B in a child: stamped both ways, one way at a time. */
static void
t_pair_procs(void)
{
	char seg[64], a[160];
	shk_chan_opts o = pair_opts();
	uint32_t n = (uint32_t)test_scale(1500);
	shk_chan *ca;
	uint64_t used0;
	pid_t pid;

	test_name(seg, sizeof(seg), "pair_procs");
	addr_of(a, sizeof(a), seg, "ch");
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca));
	used0 = heap_used(ca);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan *cb;

		CHECK_OK(
			shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
		recv_stamped(cb, 1, n);
		send_stamped(cb, 2, n, 512, 65536, 99);
		shk_chan_close(cb);
		_exit(0);
	}
	send_stamped(ca, 1, n, 512, 65536, 7);
	recv_stamped(ca, 2, n);
	CHECK_EQ(test_wait(pid), 0);
	CHECK_EQ(heap_used(ca), used0);
	shk_chan_close(ca);
	shk_seg_unlink(seg, NULL);
}

/* ---- push/pull ---- */

#define NPUSH 3
#define NPULL 3

/* Puller: receives until a zero-length message, marking each stamped one
 * in the array "seen" and checking per-producer order. */
static int
puller(const char *a, const char *seg)
{
	uint32_t last[NPUSH + 1], p, s;
	shk_chan *c;
	shk_msg *m;
	shk_seg *sg;
	shk_array *arr;
	int rc;

	memset(last, 0, sizeof(last));
	if (shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &c))
		return 10;
	if (shk_seg_open(seg, 0, NULL, &sg) ||
	    shk_array_open(sg, "seen", 0, NULL, &arr))
		return 11;
	for (;;) {
		rc = shk_chan_recv(c, &m, 10000000000LL);
		if (rc)
			return 12;
		if (shk_msg_len(m) == 0) {
			shk_msg_release(m);
			break;
		}
		if (stamp_check(shk_msg_data(m), shk_msg_len(m), &p, &s) ||
		    p < 1 || p > NPUSH)
			return 13;
		/* FIFO per producer, as one consumer sees it */
		if (last[p] && s + 1 <= last[p])
			return 14;
		last[p] = s + 1;
		shk_array_fetch_add_u32(arr, (uint64_t)(p - 1) * 100000 + s, 1,
					NULL);
		shk_msg_release(m);
	}
	shk_array_close(arr);
	shk_seg_close(sg);
	shk_chan_close(c);
	return 0;
}

static void
t_pushpull_procs(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_array_opts ao = SHK_ARRAY_OPTS_INIT;
	uint32_t n = (uint32_t)test_scale(1000), v;
	pid_t pids[NPUSH + NPULL];
	shk_chan *c;
	shk_array *arr;
	uint64_t used0, i;
	int k;

	test_name(seg, sizeof(seg), "pushpull_procs");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = SEG_SIZE;
	o.cap = 64;
	o.max_msg = 20000;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &c));
	used0 = heap_used(c);
	ao.elem_len = 4;
	ao.len = NPUSH * 100000;
	CHECK_OK(
		shk_array_open(shk_chan_seg(c), "seen", SHK_CREATE, &ao, &arr));
	for (k = 0; k < NPULL; k++) {
		pids[k] = spawn();
		CHECK(pids[k] >= 0);
		if (pids[k] == 0)
			_exit(puller(a, seg));
	}
	for (k = 0; k < NPUSH; k++) {
		pids[NPULL + k] = spawn();
		CHECK(pids[NPULL + k] >= 0);
		if (pids[NPULL + k] == 0) {
			shk_chan *p;

			CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL,
					       SHK_CHAN_PUSH, NULL, &p));
			send_stamped(p, (uint32_t)k + 1, n, 200, 20000,
				     (uint64_t)k * 1000);
			shk_chan_close(p);
			_exit(0);
		}
	}
	for (k = 0; k < NPUSH; k++)
		CHECK_EQ(test_wait(pids[NPULL + k]), 0);
	for (k = 0; k < NPULL; k++)
		CHECK_OK(shk_chan_send(c, "", 0, SHK_FOREVER));
	for (k = 0; k < NPULL; k++)
		CHECK_EQ(test_wait(pids[k]), 0);
	/* every message delivered exactly once */
	for (k = 0; k < NPUSH; k++)
		for (i = 0; i < n; i++) {
			CHECK_OK(shk_array_load_u32(
				arr, (uint64_t)k * 100000 + i, &v));
			if (v != 1)
				TEST_FAIL("producer %d seq %llu seen %u times",
					  k + 1, (unsigned long long)i, v);
		}
	shk_array_close(arr);
	CHECK_OK(shk_obj_remove(shk_chan_seg(c), "seen"));
	CHECK_EQ(heap_used(c), used0);
	shk_chan_close(c);
	shk_seg_unlink(seg, NULL);
}

static void
t_pushpull_basic(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl, *x;
	shk_msg *m[5], *lm;
	uint64_t used0;
	int i;

	test_name(seg, sizeof(seg), "pushpull_basic");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = SEG_SIZE;
	o.cap = 4;
	o.max_msg = 1000;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, &o, &pl));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, NULL, &ps));
	used0 = heap_used(ps);
	/* full queue: EAGAIN, then a timeout */
	for (i = 0; i < 4; i++)
		CHECK_OK(shk_chan_send(ps, &i, sizeof(i), 0));
	CHECK_RC(shk_chan_send(ps, &i, sizeof(i), 0), SHK_EAGAIN);
	CHECK_OK(shk_msg_loan(ps, 8, &lm));
	CHECK_RC(shk_msg_send(ps, lm, 0), SHK_EAGAIN);
	/* several outstanding at once */
	for (i = 0; i < 4; i++) {
		CHECK_OK(shk_chan_recv(pl, &m[i], 0));
		CHECK_EQ(*(int *)shk_msg_data(m[i]), i);
		CHECK(shk_off(shk_chan_seg(pl), shk_msg_data(m[i])) != 0);
	}
	/* the failed loan stayed ours: retry it */
	CHECK_OK(shk_msg_send(ps, lm, 0));
	CHECK_OK(shk_chan_recv(pl, &m[4], 0));
	CHECK_EQ(shk_msg_len(m[4]), 8);
	CHECK_RC(shk_chan_recv(pl, &lm, 0), SHK_EAGAIN);
	for (i = 0; i < 5; i++)
		shk_msg_release(m[i]);
	/* roles */
	CHECK_RC(shk_chan_recv(ps, &lm, 0), SHK_EINVAL);
	CHECK_RC(shk_chan_send(pl, "x", 1, 0), SHK_EINVAL);
	CHECK_RC(shk_msg_loan(pl, 1, &lm), SHK_EINVAL);
	CHECK_RC(shk_chan_fd(ps), SHK_EINVAL);
	CHECK(shk_chan_fd(pl) >= 0);
	CHECK_RC(shk_chan_send(ps, "x", 1001, 0), SHK_EMSGSIZE);
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &x),
		 SHK_ETYPE);
	o.max_msg = 999;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &x),
		 SHK_ETYPE);
	/* close releases what is outstanding: received and loaned */
	CHECK_OK(shk_chan_send(ps, "abc", 3, 0));
	CHECK_OK(shk_chan_recv(pl, &m[0], 0));
	CHECK_OK(shk_msg_loan(ps, 500, &lm));
	CHECK(heap_used(ps) > used0);
	shk_chan_close(pl);
	shk_chan_close(ps);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	CHECK_EQ(heap_used(pl), used0);
	shk_chan_close(pl);
	shk_seg_unlink(seg, NULL);
}

/* ---- pub/sub ---- */

static void
t_pubsub_procs(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	uint32_t n = (uint32_t)test_scale(2000), i;
	int sync_fd[2], k;
	pid_t pids[2];
	shk_chan *pub;
	char ch;

	test_name(seg, sizeof(seg), "pubsub_procs");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = SEG_SIZE;
	o.mode = SHK_BCAST_RELIABLE;
	o.cap = 8192;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, &o, &pub));
	CHECK(pipe(sync_fd) == 0);
	for (k = 0; k < 2; k++) {
		pids[k] = spawn();
		CHECK(pids[k] >= 0);
		if (pids[k] == 0) {
			shk_chan *sub;
			shk_chan_stats st = { .size = sizeof(st) };

			CHECK_OK(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_SUB,
					       NULL, &sub));
			CHECK(write(sync_fd[1], "s", 1) == 1);
			recv_stamped(sub, 1, n);
			CHECK_OK(shk_chan_stat(sub, &st));
			CHECK_EQ(st.lost, 0);
			CHECK_EQ(st.mode, SHK_BCAST_RELIABLE);
			shk_chan_close(sub);
			_exit(0);
		}
	}
	for (k = 0; k < 2; k++)
		CHECK(read(sync_fd[0], &ch, 1) == 1);
	{
		static uint8_t buf[4096];
		uint64_t rng = 5;

		for (i = 0; i < n; i++) {
			size_t len = pick_len(&rng, 1000, 4080);

			stamp_fill(buf, len, 1, i);
			CHECK_OK(shk_chan_send(pub, buf, len, SHK_FOREVER));
		}
	}
	for (k = 0; k < 2; k++)
		CHECK_EQ(test_wait(pids[k]), 0);
	close(sync_fd[0]);
	close(sync_fd[1]);
	shk_chan_close(pub);
	shk_seg_unlink(seg, NULL);
}

static void
t_pubsub_lossy(void)
{
	char seg[64], a[160], buf[100];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan_stats st = { .size = sizeof(st) };
	shk_chan *pub, *sub, *x;
	shk_msg *m, *m2;
	int i;

	test_name(seg, sizeof(seg), "pubsub_lossy");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = SEG_SIZE;
	o.cap = 1024;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_SUB, &o, &sub));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, NULL, &pub));
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, NULL, &x),
		 SHK_EBUSY);
	CHECK_RC(shk_msg_loan(pub, 10, &m), SHK_ENOTSUP);
	CHECK_RC(shk_chan_send(pub, buf, 1024 / 2 - 15, 0), SHK_EMSGSIZE);
	CHECK_RC(shk_chan_recv(pub, &m, 0), SHK_EINVAL);
	CHECK_RC(shk_chan_send(sub, buf, 1, 0), SHK_EINVAL);
	CHECK(shk_chan_fd(sub) >= 0);
	/* the lossy publisher never waits: the subscriber is lapped */
	for (i = 0; i < 200; i++) {
		memset(buf, i, sizeof(buf));
		CHECK_OK(shk_chan_send(pub, buf, sizeof(buf), 0));
	}
	CHECK_OK(shk_chan_recv(sub, &m, 0));
	CHECK_EQ(shk_msg_len(m), sizeof(buf));
	CHECK_RC(shk_chan_recv(sub, &m2, 0), SHK_EBUSY);
	shk_msg_release(m);
	CHECK_OK(shk_chan_stat(sub, &st));
	CHECK(st.lost > 0);
	CHECK_EQ(st.received, 1);
	while (shk_chan_recv(sub, &m, 0) == 0)
		shk_msg_release(m);
	CHECK_OK(shk_chan_stat(sub, &st));
	CHECK(st.lost + st.received == 200);
	shk_chan_close(pub);
	shk_chan_close(sub);
	shk_seg_unlink(seg, NULL);
}

/* ---- blocking and timeouts ---- */

static void
t_timeouts(void)
{
	char seg[64], a[160], a2[160], buf[600];
	shk_chan_opts o = pair_opts();
	shk_chan *ca, *cb, *pl;
	shk_msg *m;
	int64_t t0, dt;
	int i;

	test_name(seg, sizeof(seg), "timeouts");
	addr_of(a, sizeof(a), seg, "ch");
	addr_of(a2, sizeof(a2), seg, "q");
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
	CHECK_OK(
		shk_chan_open(a2, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	t0 = test_now_ns();
	CHECK_RC(shk_chan_recv(cb, &m, 50000000), SHK_ETIMEDOUT);
	dt = test_now_ns() - t0;
	if (dt < 45000000 || dt > 500000000)
		TEST_FAIL("recv waited %lld ns for 50 ms", (long long)dt);
	t0 = test_now_ns();
	CHECK_RC(shk_chan_recv(pl, &m, 30000000), SHK_ETIMEDOUT);
	dt = test_now_ns() - t0;
	if (dt < 25000000 || dt > 500000000)
		TEST_FAIL("pull waited %lld ns for 30 ms", (long long)dt);
	/* fill A's ring; then a send waits and times out */
	memset(buf, 1, sizeof(buf));
	for (i = 0; shk_chan_send(ca, buf, 500, 0) == 0; i++)
		;
	CHECK(i > 0);
	while (shk_chan_send(ca, buf, 1, 0) == 0)
		;
	CHECK_RC(shk_chan_send(ca, buf, 500, 0), SHK_EAGAIN);
	t0 = test_now_ns();
	CHECK_RC(shk_chan_send(ca, buf, 500, 40000000), SHK_ETIMEDOUT);
	dt = test_now_ns() - t0;
	if (dt < 35000000 || dt > 500000000)
		TEST_FAIL("send waited %lld ns for 40 ms", (long long)dt);
	/* a heap message that cannot be sent frees its block */
	{
		uint64_t used = heap_used(ca);

		CHECK_RC(shk_chan_send(ca, buf, 600, 0), SHK_EAGAIN);
		CHECK_EQ(heap_used(ca), used);
	}
	while (shk_chan_recv(cb, &m, 0) == 0)
		shk_msg_release(m);
	CHECK_RC(shk_chan_send(ca, buf, 500, -2), SHK_EINVAL);
	shk_chan_close(pl);
	shk_chan_close(ca);
	shk_chan_close(cb);
	shk_seg_unlink(seg, NULL);
}

/* A receiver blocked forever is woken by a send from another process;
 * a poll on its fd too. */
static void
t_wake(void)
{
	char seg[64], a[160], a2[160];
	shk_chan_opts o = pair_opts();
	shk_chan *cb, *pl;
	shk_msg *m;
	struct pollfd pf;
	int64_t t0;
	pid_t pid;
	int rc;

	test_name(seg, sizeof(seg), "wake");
	addr_of(a, sizeof(a), seg, "ch");
	addr_of(a2, sizeof(a2), seg, "q");
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &cb));
	CHECK_OK(
		shk_chan_open(a2, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan *ca, *ps;

		CHECK_OK(
			shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &ca));
		CHECK_OK(shk_chan_open(a2, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH,
				       NULL, &ps));
		usleep(100000);
		CHECK_OK(shk_chan_send(ca, "wake", 4, 0));
		usleep(100000);
		CHECK_OK(shk_chan_send(ps, "pull", 4, 0));
		usleep(100000);
		CHECK_OK(shk_chan_send(ca, "poll", 4, 0));
		shk_chan_close(ps);
		shk_chan_close(ca);
		_exit(0);
	}
	t0 = test_now_ns();
	CHECK_OK(shk_chan_recv(cb, &m, SHK_FOREVER));
	CHECK(test_now_ns() - t0 >= 50000000);
	CHECK(memcmp(shk_msg_data(m), "wake", 4) == 0);
	shk_msg_release(m);
	CHECK_OK(shk_chan_recv(pl, &m, SHK_FOREVER));
	CHECK(memcmp(shk_msg_data(m), "pull", 4) == 0);
	shk_msg_release(m);
	pf.fd = shk_chan_fd(cb);
	CHECK(pf.fd >= 0);
	pf.events = POLLIN;
	/* a try that finds nothing arms the fd (the message may have come
	 * already on a slow machine) */
	rc = shk_chan_recv(cb, &m, 0);
	if (rc == SHK_EAGAIN) {
		CHECK_EQ(poll(&pf, 1, 5000), 1);
		rc = shk_chan_recv(cb, &m, 0);
	}
	CHECK_OK(rc);
	CHECK(memcmp(shk_msg_data(m), "poll", 4) == 0);
	shk_msg_release(m);
	CHECK_EQ(test_wait(pid), 0);
	shk_chan_close(pl);
	shk_chan_close(cb);
	shk_seg_unlink(seg, NULL);
}

/* ---- untrusted references ---- */

static struct shk__chan_ctl *
ctl_of(shk_seg *s, const char *name, uint32_t pattern)
{
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	void *p;

	d.kind = SHK_KIND_CHAN;
	d.elem_len = pattern;
	CHECK_OK(shk_obj_open(s, name, 0, &d, NULL, &p));
	return p;
}

static void
t_corrupt(void)
{
	char seg[64], a[160], a2[160];
	shk_chan_opts o = pair_opts();
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	struct shk__chan_ref refs[6];
	struct shk__chan_frame f;
	struct shk__chan_ctl *ctl;
	shk_chan *cb, *pl, *ps;
	shk_queue *q;
	shk_ring *r;
	shk_msg *m;
	shk_seg *s;
	uint64_t boff, slen;
	uint32_t tag;
	size_t i;

	test_name(seg, sizeof(seg), "corrupt");
	addr_of(a, sizeof(a), seg, "ch");
	addr_of(a2, sizeof(a2), seg, "q");
	CHECK_OK(shk_chan_open(a2, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, &o, &pl));
	CHECK_OK(
		shk_chan_open(a2, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, NULL, &ps));
	s = shk_chan_seg(pl);
	slen = SEG_SIZE;
	ctl = ctl_of(s, "q", SHK_CHAN_PUSHPULL);
	tag = ctl->tag;
	/* a real block whose header has the channel's tag and the length but
	 * not the block magic (a freed message block looks so) */
	CHECK_OK(shk_alloc(s, 64, &boff));
	memset(shk_ptr(s, boff), 0x5a, 64);
	{
		struct shk__chan_blk h = { 0x12345678u, tag, 16 };

		memcpy(shk_ptr(s, boff), &h, sizeof(h));
	}
	qo.elem_len = sizeof(struct shk__chan_ref);
	qo.type_id = SHK__CHAN_PART_TYPE;
	CHECK_OK(shk_queue_open(s, "q.q", 0, &qo, &q));
	refs[0] = (struct shk__chan_ref){ boff, 16, 0 }; /* bad check */
	refs[1] = (struct shk__chan_ref){ boff, 16,
					  shk__chan_check(boff, 16, tag) };
	refs[2] = (struct shk__chan_ref){
		slen - 8, 16, shk__chan_check(slen - 8, 16, tag)
	}; /* past the heap */
	refs[3] =
		(struct shk__chan_ref){ 1ull << 50, 16,
					shk__chan_check(1ull << 50, 16, tag) };
	refs[4] = (struct shk__chan_ref){
		boff, 1ull << 45, shk__chan_check(boff, 1ull << 45, tag)
	};
	refs[5] = (struct shk__chan_ref){ boff + 8, 16,
					  shk__chan_check(boff + 8, 16, tag) };
	for (i = 0; i < 6; i++)
		CHECK_OK(shk_queue_push(q, &refs[i], 0));
	CHECK_OK(shk_chan_send(ps, "good", 4, 0));
	for (i = 0; i < 6; i++)
		CHECK_RC(shk_chan_recv(pl, &m, 0), SHK_ECORRUPT);
	CHECK_OK(shk_chan_recv(pl, &m, 0));
	CHECK(memcmp(shk_msg_data(m), "good", 4) == 0);
	shk_msg_release(m);
	{
		shk_chan_stats st = { .size = sizeof(st) };

		CHECK_OK(shk_chan_stat(pl, &st));
		CHECK_EQ(st.corrupt, 6);
	}
	shk_queue_close(q);

	/* pair: forged frames through the raw ring, B end open */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &cb));
	ctl = ctl_of(s, "ch", SHK_CHAN_PAIR);
	tag = ctl->tag;
	{
		struct shk__chan_blk h = { 0x12345678u, tag, 16 };

		memcpy(shk_ptr(s, boff), &h, sizeof(h));
	}
	ro.type_id = SHK__CHAN_PART_TYPE;
	CHECK_OK(shk_ring_open(s, "ch.ab", 0, SHK_RING_PRODUCER, &ro, &r));
	f = (struct shk__chan_frame){ 0x99, 0, 0, 0 }; /* unknown kind */
	CHECK_OK(shk_ring_write(r, &f, 16, 0));
	f = (struct shk__chan_frame){ SHK__CHAN_FR_INLINE, 0, 100, 0 };
	CHECK_OK(shk_ring_write(r, &f, 16, 0)); /* length beyond record */
	CHECK_OK(shk_ring_write(r, &f, 8, 0));  /* short record */
	f = (struct shk__chan_frame){
		SHK__CHAN_FR_HEAP, (uint32_t)shk__chan_check(boff, 16, tag), 16,
		boff
	}; /* the block's header is garbage */
	CHECK_OK(shk_ring_write(r, &f, 24, 0));
	f = (struct shk__chan_frame){
		SHK__CHAN_FR_HEAP,
		(uint32_t)shk__chan_check(1ull << 50, 16, tag), 16, 1ull << 50
	};
	CHECK_OK(shk_ring_write(r, &f, 24, 0));
	f = (struct shk__chan_frame){ SHK__CHAN_FR_HEAP, 0, 16, boff };
	CHECK_OK(shk_ring_write(r, &f, 24, 0)); /* bad check */
	f = (struct shk__chan_frame){ SHK__CHAN_FR_INLINE, 0, 2, 0 };
	memcpy(&f.off, "ok", 2);
	CHECK_OK(shk_ring_write(r, &f, 18, 0));
	for (i = 0; i < 6; i++)
		CHECK_RC(shk_chan_recv(cb, &m, 0), SHK_ECORRUPT);
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	CHECK_EQ(shk_msg_len(m), 2);
	CHECK(memcmp(shk_msg_data(m), "ok", 2) == 0);
	shk_msg_release(m);
	shk_ring_close(r);
	CHECK_OK(shk_free(s, boff));

	/* a damaged control block: open and describe say so */
	{
		shk_obj_info info = { .size = sizeof(info) };
		char desc[256];
		shk_chan *x;

		ctl->max_msg = 0;
		CHECK_OK(shk_obj_stat(s, "ch", &info));
		CHECK_RC(shk_obj_describe(s, &info, desc, sizeof(desc)),
			 SHK_ECORRUPT);
		CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &x),
			 SHK_ECORRUPT);
		ctl->max_msg = 65536;
		CHECK_OK(shk_obj_describe(s, &info, desc, sizeof(desc)));
		test_describe_flipping(s, &info, &ctl->cap, ctl->cap);
	}
	shk_chan_close(cb);
	shk_chan_close(ps);
	shk_chan_close(pl);
	shk_seg_unlink(seg, NULL);
}

/* ---- killed peers ---- */

/* B receives a message and is killed holding it; a new B receives it
 * again (at least once) and releases it; heap back at the start. */
static void
t_kill_pair_receiver(void)
{
	char seg[64], a[160], big[3000];
	shk_chan_opts o = pair_opts();
	shk_chan *ca, *cb;
	shk_msg *m;
	uint64_t used0;
	int fds[2];
	pid_t pid;
	char ch;

	test_name(seg, sizeof(seg), "kill_pair_rx");
	addr_of(a, sizeof(a), seg, "ch");
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca));
	used0 = heap_used(ca);
	memset(big, 'b', sizeof(big));
	CHECK_OK(shk_chan_send(ca, big, sizeof(big), 0)); /* heap */
	CHECK_OK(shk_chan_send(ca, "two", 3, 0));         /* inline */
	CHECK(pipe(fds) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_OK(
			shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
		CHECK_OK(shk_chan_recv(cb, &m, 0));
		CHECK_EQ(shk_msg_len(m), sizeof(big));
		CHECK(write(fds[1], "r", 1) == 1);
		pause();
		_exit(0);
	}
	CHECK(read(fds[0], &ch, 1) == 1);
	/* the end is held by a live process */
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb),
		 SHK_EBUSY);
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	CHECK_EQ(shk_msg_len(m), sizeof(big));
	CHECK(memcmp(shk_msg_data(m), big, sizeof(big)) == 0);
	shk_msg_release(m);
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	CHECK_EQ(shk_msg_len(m), 3);
	shk_msg_release(m);
	CHECK_EQ(heap_used(ca), used0);
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(cb);
	shk_chan_close(ca);
	shk_seg_unlink(seg, NULL);
}

/* A is killed while B waits: B learns SHK_EPEERDEAD; a new A takes the
 * end over and its messages arrive. */
static void
t_kill_pair_sender(void)
{
	char seg[64], a[160];
	shk_chan_opts o = pair_opts();
	shk_chan *ca, *cb;
	shk_msg *m;
	int fds[2];
	pid_t pid;
	char ch;
	int rc;

	test_name(seg, sizeof(seg), "kill_pair_tx");
	addr_of(a, sizeof(a), seg, "ch");
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &cb));
	CHECK(pipe(fds) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_OK(
			shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &ca));
		CHECK_OK(shk_chan_send(ca, "first", 5, 0));
		CHECK(write(fds[1], "r", 1) == 1);
		pause();
		_exit(0);
	}
	CHECK(read(fds[0], &ch, 1) == 1);
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	shk_msg_release(m);
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	rc = shk_chan_recv(cb, &m, 3000000000LL);
	CHECK_RC(rc, SHK_EPEERDEAD);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &ca));
	CHECK_OK(shk_chan_send(ca, "again", 5, 0));
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	CHECK(memcmp(shk_msg_data(m), "again", 5) == 0);
	shk_msg_release(m);
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(ca);
	shk_chan_close(cb);
	shk_seg_unlink(seg, NULL);
}

/* A puller killed holding a message does not wedge the other pullers;
 * its block is the one leak (counted). */
static void
t_kill_puller(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	shk_msg *m;
	uint64_t used0, used1;
	int fds[2], i;
	pid_t pid;
	char ch;

	test_name(seg, sizeof(seg), "kill_puller");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = SEG_SIZE;
	o.cap = 8;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	used0 = heap_used(ps);
	for (i = 0; i < 8; i++)
		CHECK_OK(shk_chan_send(ps, &i, sizeof(i), 0));
	used1 = heap_used(ps);
	CHECK(pipe(fds) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan *p2;

		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL,
				       NULL, &p2));
		CHECK_OK(shk_chan_recv(p2, &m, 0));
		CHECK_EQ(*(int *)shk_msg_data(m), 0);
		CHECK(write(fds[1], "r", 1) == 1);
		pause();
		_exit(0);
	}
	CHECK(read(fds[0], &ch, 1) == 1);
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	for (i = 1; i < 8; i++) {
		CHECK_OK(shk_chan_recv(pl, &m, 1000000000));
		CHECK_EQ(*(int *)shk_msg_data(m), i);
		shk_msg_release(m);
	}
	/* the queue has room again: 8 more go through */
	for (i = 0; i < 8; i++)
		CHECK_OK(shk_chan_send(ps, &i, sizeof(i), 0));
	for (i = 0; i < 8; i++) {
		CHECK_OK(shk_chan_recv(pl, &m, 0));
		shk_msg_release(m);
	}
	/* exactly the dead puller's block stays in use ... */
	CHECK_EQ(heap_used(ps) - used0, (used1 - used0) / 8);
	/* ... until the next open frees it (the held table; it stayed in
	 * use for good before 2026-11-25) */
	shk_chan_close(pl);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	CHECK_EQ(heap_used(ps), used0);
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(pl);
	shk_chan_close(ps);
	shk_seg_unlink(seg, NULL);
}

/* The block offset of a received heap message. */
static uint64_t
msg_off(shk_chan *c, shk_msg *m)
{
	return shk_off(shk_chan_seg(c), shk_msg_data(m)) -
	       sizeof(struct shk__chan_blk);
}

/* A child puller: opens, receives n messages (1 s each) and holds them,
 * writes the first one's block offset to fd, then waits on in_fd: at "c" it checks each held
 * message's stamp against seq0 + i and releases them (exit 0); never
 * returns.  crash: SHK_CRASH for the child, NULL none (exit 3 when it
 * did not kill); release: release the first message at once (after the
 * "r"). */
static void
held_child(const char *a, uint32_t n, uint32_t seq0, int fd, int in_fd,
	   const char *crash, int release)
{
	shk_chan *p;
	shk_msg *m[64];
	uint32_t i, prod, seq;
	uint64_t off;
	char ch;

	CHECK(n <= 64);
	if (crash)
		setenv("SHK_CRASH", crash, 1);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &p));
	for (i = 0; i < n; i++) {
		CHECK_OK(shk_chan_recv(p, &m[i], 1000000000));
		CHECK_EQ(stamp_check(shk_msg_data(m[i]), shk_msg_len(m[i]),
				     &prod, &seq),
			 0);
		CHECK_EQ(seq, seq0 + i);
	}
	off = n ? msg_off(p, m[0]) : 0;
	CHECK(write(fd, &off, sizeof(off)) == sizeof(off));
	if (release)
		shk_msg_release(m[0]);
	if (crash)
		_exit(3); /* the crash point did not kill us */
	if (in_fd < 0 || read(in_fd, &ch, 1) != 1)
		pause();
	for (i = 0; i < n; i++) {
		CHECK_EQ(stamp_check(shk_msg_data(m[i]), shk_msg_len(m[i]),
				     &prod, &seq),
			 0);
		CHECK_EQ(seq, seq0 + i);
		shk_msg_release(m[i]);
	}
	shk_chan_close(p);
	_exit(0);
}

/* Sends a stamped message of len bytes with seq, timeout 0. */
static int
send_seq(shk_chan *c, size_t len, uint32_t seq)
{
	static uint8_t buf[32768];

	stamp_fill(buf, len, 1, seq);
	return shk_chan_send(c, buf, len, 0);
}

/* Receives one (timeout 0) and checks its stamp: seq, or any when
 * UINT32_MAX. */
static void
recv_seq(shk_chan *c, uint32_t want)
{
	shk_msg *m;
	uint32_t prod, seq;

	CHECK_OK(shk_chan_recv(c, &m, 0));
	CHECK_EQ(stamp_check(shk_msg_data(m), shk_msg_len(m), &prod, &seq), 0);
	if (want != UINT32_MAX)
		CHECK_EQ(seq, want);
	shk_msg_release(m);
}

/* Kills the child of a held_child() once it has written its "r". */
static void
kill_holder(pid_t pid, int fd, uint64_t *off)
{
	uint64_t o = 0;

	CHECK(read(fd, &o, sizeof(o)) == sizeof(o));
	if (off)
		*off = o;
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
}

/*
 * 200 pullers, one after another, each killed holding a message, on a
 * small heap: the next opener frees each dead puller's block (the held
 * table), so every send goes through and the heap ends where it began.
 * Before 2026-11-25 each kill leaked its block: the heap of the 256 KiB
 * segment ran out (SHK_ENOMEM) after a few dozen kills.
 */
static void
t_kill_puller_reclaim(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	uint64_t used0;
	uint32_t i;
	int fds[2];
	pid_t pid;

	test_name(seg, sizeof(seg), "puller_reclaim");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = 256 << 10;
	o.cap = 4;
	o.max_msg = 8192;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	used0 = heap_used(ps);
	CHECK(pipe(fds) == 0);
	for (i = 0; i < 200; i++) {
		CHECK_OK(send_seq(ps, 4000, i));
		pid = spawn();
		CHECK(pid >= 0);
		if (pid == 0)
			held_child(a, 1, i, fds[1], -1, NULL, 0);
		kill_holder(pid, fds[0], NULL);
	}
	/* the last dead puller's block: freed by the next open */
	CHECK(heap_used(ps) > used0);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	CHECK_EQ(heap_used(ps), used0);
	CHECK_OK(shk_seg_check(shk_chan_seg(ps)));
	CHECK_OK(send_seq(ps, 4000, 7));
	recv_seq(pl, 7);
	CHECK_EQ(heap_used(ps), used0);
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(pl);
	shk_chan_close(ps);
	shk_seg_unlink(seg, NULL);
}

/*
 * A puller killed holding every message that filled the heap: the next
 * send finds the heap full, frees the dead puller's blocks and goes
 * through, with timeout 0 and without any new opener.  Before 2026-11-25:
 * SHK_ENOMEM for ever.
 */
static void
t_kill_puller_heap_full(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	uint64_t used0;
	uint32_t i, n = 0;
	int fds[2], rc;
	pid_t pid;

	test_name(seg, sizeof(seg), "puller_heap_full");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = 256 << 10;
	o.cap = 64;
	o.max_msg = 8192;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	used0 = heap_used(ps);
	while ((rc = send_seq(ps, 4000, n)) == 0)
		n++;
	CHECK_EQ(rc, SHK_ENOMEM);
	CHECK(n >= 4 && n <= 64);
	CHECK(pipe(fds) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0)
		held_child(a, n, 0, fds[1], -1, NULL, 0);
	kill_holder(pid, fds[0], NULL);
	/* a sender reclaims at most once a millisecond (chan.c,
	 * RECLAIM_EVERY_NS): the failed send above made a pass */
	usleep(2000);
	for (i = 0; i < n; i++)
		CHECK_OK(send_seq(ps, 4000, 100 + i));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	for (i = 0; i < n; i++)
		recv_seq(pl, 100 + i);
	CHECK_EQ(heap_used(ps), used0);
	CHECK_OK(shk_seg_check(shk_chan_seg(ps)));
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(pl);
	shk_chan_close(ps);
	shk_seg_unlink(seg, NULL);
}

/*
 * Kills in the held table's windows (chan.c, "What a kill leaves"): a
 * puller after its pop returned; a puller inside its release, after the
 * entry is cleared, before the free; a reclaimer (an opener) after it
 * claimed a dead puller's entry, and after it freed the block; a puller
 * inside the queue's pop with the cell claimed, before it records the
 * block (chan.recv.claimed) and after (chan.recv.kept).  Each leaks at
 * most the one block documented, and none is ever freed twice: after the
 * kill the sender sends more blocks of the same size (one of them at the
 * freed block's offset in the fourth case), the next opener's reclaim
 * runs, and each is then received intact; the heap check passes and the
 * heap ends at its start plus the leak.  Before 2026-11-25 these crash
 * points did not exist (the children were not killed there).  Until
 * the evening of 2026-11-25 the block was recorded after the pop returned, and a kill at
 * chan.recv.after_pop leaked it (run against that code, this test fails
 * there: the heap ends one block up).
 */
static void
t_held_crash(void)
{
	static const struct {
		const char *crash;
		int in_reclaimer; /* killed opening, after a killed holder */
		int release;      /* the holder releases its message */
		int leak;         /* blocks leaked */
	} cases[] = {
		{ "chan.recv.after_pop:1", 0, 0, 0 },
		{ "chan.release.after_clear:1", 0, 1, 1 },
		{ "chan.reclaim.after_claim:1", 1, 0, 1 },
		{ "chan.reclaim.after_free:1", 1, 0, 0 },
		/* last: their cells stay READING until a producer one lap
		 * later (16 sends on) repairs them, which these sends with
		 * timeout 0 never reach */
		{ "chan.recv.claimed:1", 0, 0, 1 },
		{ "chan.recv.kept:1", 0, 0, 0 },
	};
	const size_t len = 20000; /* a large block: reused in place */
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	uint64_t used0, blk, off = 0, off2;
	uint32_t i, k;
	int fds[2], reused;
	pid_t pid;

	test_name(seg, sizeof(seg), "held_crash");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = 1 << 20;
	o.cap = 16;
	o.max_msg = 32768;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	CHECK(pipe(fds) == 0);
	used0 = heap_used(ps);
	CHECK_OK(send_seq(ps, len, 0));
	blk = heap_used(ps) - used0;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	recv_seq(pl, 0);
	shk_chan_close(pl);
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		CHECK_OK(send_seq(ps, len, 1));
		pid = spawn();
		CHECK(pid >= 0);
		if (pid == 0)
			held_child(a, 1, 1, fds[1], -1,
				   cases[k].in_reclaimer ? NULL
							 : cases[k].crash,
				   cases[k].release);
		if (cases[k].in_reclaimer) {
			kill_holder(pid, fds[0], &off);
			/* an opener killed in its reclaim of that block */
			pid = spawn();
			CHECK(pid >= 0);
			if (pid == 0) {
				setenv("SHK_CRASH", cases[k].crash, 1);
				shk_chan_open(a, SHK_CHAN_PUSHPULL,
					      SHK_CHAN_PULL, NULL, &pl);
				_exit(3);
			}
		} else if (!cases[k].release) {
			/* killed before the "r" */
		} else {
			CHECK(read(fds[0], &off, sizeof(off)) == sizeof(off));
		}
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		/* blocks of the same size: the last case puts one where the
		 * freed block was, which a second free would take */
		for (i = 0; i < 4; i++)
			CHECK_OK(send_seq(ps, len, 10 + i));
		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL,
				       NULL, &pl));
		reused = 0;
		for (i = 0; i < 4; i++) {
			shk_msg *m;
			uint32_t prod, seq;

			CHECK_OK(shk_chan_recv(pl, &m, 0));
			CHECK_EQ(stamp_check(shk_msg_data(m), shk_msg_len(m),
					     &prod, &seq),
				 0);
			CHECK_EQ(seq, 10 + i);
			off2 = msg_off(pl, m);
			reused |= off2 == off;
			shk_msg_release(m);
		}
		if (k == 3)
			CHECK(reused);
		CHECK_OK(shk_seg_check(shk_chan_seg(ps)));
		used0 += (uint64_t)cases[k].leak * blk;
		CHECK_EQ(heap_used(ps), used0);
		shk_chan_close(pl);
	}
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(ps);
	shk_seg_unlink(seg, NULL);
}

/* Blocks in use in c's heap, from a walk of it (shk__heap_scan): the
 * heap's byte counts may drift by a few blocks when a process is killed
 * inside an allocation or a free (shmkit.h, shk_heap_stats); this count
 * does not. */
static uint64_t
live_blocks(shk_chan *c)
{
	struct shk__heap_report r;

	CHECK_OK(shk__heap_scan(shk_chan_seg(c), &r));
	return r.small_live + r.large_live;
}

/* Marks seq (below n) received in the bitmap seen, counts it in *got;
 * 1 when it was received before. */
static uint32_t
note_seq(uint8_t *seen, uint32_t n, uint32_t seq, uint32_t *got)
{
	uint32_t was;

	CHECK(seq < n);
	was = (seen[seq / 8] >> (seq % 8)) & 1;
	seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	++*got;
	return was;
}

/*
 * Busy pullers killed at random moments while a sender (a process with
 * its own handle) streams into a queue that is often full (the sender then
 * sleeps, so every pop makes a wake-up system call, where a SIGKILL lands
 * most often).  One puller at a time receives, checks each message's
 * stamp, reports its sequence number on a pipe and releases it, until it
 * is killed 1-4 ms after its start; the next one's open frees what the
 * dead one held.  After the last kill the sender stops, a last puller
 * drains the queue, and a lap more of sends makes the queue deliver again
 * the claims of pullers killed inside its pop.  Checks: no message is
 * received twice or torn, every send goes through, at most one message
 * lost per kill (the one a puller held), the heap check passes, and at
 * most one block per kill is left in use (counted by a walk of the heap).
 * Prints the blocks leaked.  It does not fail against the code before
 * 2026-11-25 evening, which leaked more but within that bound (held_crash
 * and kill_puller_redelivered do); compiled without crash points, as a
 * program is, five runs each leaked 109 blocks in 1000 kills before and 38
 * after (docs/chan.md, "What a dead peer leaves").  The test library's
 * crash points (a getenv() each) widen the windows.
 */
static void
t_kill_busy_puller(void)
{
	const uint32_t n = 1u << 24, len = 200;
	const int kills_max = test_valgrind() ? 10 : 200;
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	shk_msg *m;
	uint64_t live0, live, x = 12345;
	uint8_t *seen = calloc(n / 8, 1);
	_Atomic uint32_t *shared; /* [0] stop, [1] messages sent */
	uint32_t seq, prod, got = 0, dup = 0, i;
	int fds[2], kills = 0, st = 0;
	pid_t sender, pid;

	CHECK(seen != NULL);
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED);
	test_name(seg, sizeof(seg), "busy_puller");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = 1 << 20;
	o.cap = 32;
	o.max_msg = 1024;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	live0 = live_blocks(ps);
	CHECK(pipe(fds) == 0);
	CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
	sender = spawn();
	CHECK(sender >= 0);
	if (sender == 0) {
		uint8_t buf[1024];
		shk_chan *cs;

		/* a handle of its own (handles belong to their process) */
		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH,
				       NULL, &cs));
		for (i = 0; i < n && !atomic_load(&shared[0]); i++) {
			stamp_fill(buf, len, 1, i);
			/* 10 s: the pullers come and go */
			CHECK_OK(shk_chan_send(cs, buf, len, 10000000000LL));
			atomic_store(&shared[1], i + 1);
		}
		shk_chan_close(cs);
		_exit(0);
	}
	for (kills = 0; kills < kills_max; kills++) {
		pid = spawn();
		CHECK(pid >= 0);
		if (pid == 0) {
			CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL,
					       SHK_CHAN_PULL, NULL, &pl));
			for (;;) {
				int rc = shk_chan_recv(pl, &m, 1000000000);

				if (rc == SHK_ETIMEDOUT)
					continue;
				CHECK_OK(rc);
				CHECK_EQ(stamp_check(shk_msg_data(m),
						     shk_msg_len(m), &prod,
						     &seq),
					 0);
				CHECK(write(fds[1], &seq, sizeof(seq)) ==
				      sizeof(seq));
				shk_msg_release(m);
			}
		}
		x = mix64(x);
		usleep((useconds_t)(1000 + x % 3000));
		kill(pid, SIGKILL);
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		while (read(fds[0], &seq, sizeof(seq)) == sizeof(seq))
			dup += note_seq(seen, n, seq, &got);
	}
	atomic_store(&shared[0], 1);
	/* the rest, by a puller of our own (its open frees the last dead
	 * puller's block) */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	for (;;) {
		int rc = shk_chan_recv(pl, &m, 200000000);

		if (rc == SHK_ETIMEDOUT && waitpid(sender, &st, WNOHANG) != 0)
			break;
		if (rc == SHK_ETIMEDOUT)
			continue;
		CHECK_OK(rc);
		CHECK_EQ(stamp_check(shk_msg_data(m), shk_msg_len(m), &prod,
				     &seq),
			 0);
		dup += note_seq(seen, n, seq, &got);
		shk_msg_release(m);
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* a lap of sends more (numbered from the top, which the sender
	 * never reached), so that the claims of pullers killed inside the
	 * queue's pop are delivered again (one lap later), and all of it
	 * received */
	for (i = 0; i <= o.cap; i++) {
		uint8_t buf[1024];

		stamp_fill(buf, len, 1, n - 1 - i);
		CHECK_OK(shk_chan_send(ps, buf, len, 1000000000));
		while (shk_chan_recv(pl, &m, i == o.cap ? 100000000 : 0) == 0) {
			CHECK_EQ(stamp_check(shk_msg_data(m), shk_msg_len(m),
					     &prod, &seq),
				 0);
			dup += note_seq(seen, n, seq, &got);
			shk_msg_release(m);
		}
	}
	CHECK_EQ(dup, 0);
	CHECK_OK(shk_seg_check(shk_chan_seg(ps)));
	live = live_blocks(ps);
	fprintf(stderr,
		"  %d kills, %u of %llu messages received, %llu blocks "
		"leaked\n",
		kills, got,
		(unsigned long long)(atomic_load(&shared[1]) + o.cap + 1),
		(unsigned long long)(live - live0));
	/* lost: at most the one a puller held */
	CHECK(got + (uint32_t)kills >= atomic_load(&shared[1]) + o.cap + 1);
	CHECK(got > (uint32_t)kills);
	CHECK(live >= live0);
	CHECK(live - live0 <= (uint64_t)kills);
	munmap((void *)shared, 4096);
	free(seen);
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(pl);
	shk_chan_close(ps);
	shk_seg_unlink(seg, NULL);
}

/*
 * A puller killed inside the queue's pop, its claim READING (crash point
 * queue.pop.copied: the element copied, nothing recorded): the sender's
 * push one lap later delivers the message again, and the next puller
 * receives it, after the ones sent since; nothing leaks.  Killed with its
 * claim KEPT and the block recorded (chan.recv.kept): the repair drops the
 * cell, the next opener frees the block, and the message is not delivered
 * again.  Before 2026-11-25 evening the first case lost the message and
 * leaked its block (this test fails there: seq 0 never arrives).
 */
static void
t_kill_puller_redelivered(void)
{
	static const struct {
		const char *crash;
		int again; /* the message is delivered again */
	} cases[] = { { "queue.pop.copied:1", 1 }, { "chan.recv.kept:1", 0 } };
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	shk_msg *m;
	uint64_t live0;
	uint32_t i, k, prod, seq;
	pid_t pid;

	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		test_name(seg, sizeof(seg), "redeliver");
		addr_of(a, sizeof(a), seg, "ch");
		o.seg_size = 1 << 20;
		o.cap = 4;
		o.max_msg = 1024;
		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o,
				       &ps));
		live0 = live_blocks(ps);
		CHECK_OK(send_seq(ps, 300, 0));
		pid = spawn();
		CHECK(pid >= 0);
		if (pid == 0) {
			setenv("SHK_CRASH", cases[k].crash, 1);
			CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL,
					       SHK_CHAN_PULL, NULL, &pl));
			shk_chan_recv(pl, &m, 1000000000);
			_exit(3); /* the crash point did not kill us */
		}
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		/* a lap: the fourth send finds the dead claim (after the
		 * queue's T) and repairs it; delivered again, message 0
		 * takes that send's place, which times out (full) */
		for (i = 1; i <= 4; i++) {
			uint8_t buf[300];

			stamp_fill(buf, sizeof(buf), 1, i);
			CHECK_RC(shk_chan_send(ps, buf, sizeof(buf), 200000000),
				 i == 4 && cases[k].again ? SHK_ETIMEDOUT : 0);
		}
		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL,
				       NULL, &pl));
		for (i = 1; i <= 4; i++) {
			CHECK_OK(shk_chan_recv(pl, &m, 1000000000));
			CHECK_EQ(stamp_check(shk_msg_data(m), shk_msg_len(m),
					     &prod, &seq),
				 0);
			/* 1..3, then 0 delivered again, or 4 */
			CHECK_EQ(seq, i < 4 ? i : cases[k].again ? 0 : 4);
			shk_msg_release(m);
		}
		if (cases[k].again) {
			CHECK_OK(send_seq(ps, 300, 4));
			recv_seq(pl, 4);
		}
		CHECK_RC(shk_chan_recv(pl, &m, 0), SHK_EAGAIN);
		CHECK_OK(shk_seg_check(shk_chan_seg(ps)));
		CHECK_EQ(live_blocks(ps), live0);
		shk_chan_close(pl);
		shk_chan_close(ps);
		CHECK_OK(shk_seg_unlink(seg, NULL));
	}
}

/*
 * A forged reference naming a live puller's block (a valid offset, length
 * and header, a wrong check word), popped by a puller killed before it
 * validated it (chan.recv.after_pop): the next opener's reclaim must not
 * free that block.  The reference is never recorded: only one whose check
 * word holds is.  A review found that the first keeper (2026-11-25)
 * recorded any popped offset, and the reclaim freed the live puller's
 * block, which the next message then took (this test fails there: the
 * holder's message reads seq 2).
 */
static void
t_held_forged(void)
{
	const size_t len = 20000;
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	struct shk__chan_ref r;
	shk_chan *ps, *pa, *pl;
	shk_queue *q;
	shk_msg *m, *m2;
	uint32_t prod, seq;
	pid_t pid;

	test_name(seg, sizeof(seg), "held_forged");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = 1 << 20;
	o.cap = 16;
	o.max_msg = 32768;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pa));
	CHECK_OK(send_seq(ps, len, 1));
	CHECK_OK(shk_chan_recv(pa, &m, 0)); /* held by a live puller */
	qo.elem_len = sizeof(struct shk__chan_ref);
	qo.type_id = SHK__CHAN_PART_TYPE;
	CHECK_OK(shk_queue_open(shk_chan_seg(ps), "ch.q", 0, &qo, &q));
	r = (struct shk__chan_ref){ msg_off(pa, m), len, 0 };
	CHECK_OK(shk_queue_push(q, &r, 0));
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		setenv("SHK_CRASH", "chan.recv.after_pop:1", 1);
		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL,
				       NULL, &pl));
		shk_chan_recv(pl, &m2, 1000000000);
		_exit(3); /* the crash point did not kill us */
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	/* a reclaim, then a message of the same size: it must not land in
	 * the live puller's block */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	CHECK_OK(send_seq(ps, len, 2));
	CHECK_EQ(stamp_check(shk_msg_data(m), shk_msg_len(m), &prod, &seq), 0);
	CHECK_EQ(seq, 1);
	recv_seq(pl, 2);
	shk_msg_release(m);
	CHECK_OK(shk_seg_check(shk_chan_seg(ps)));
	shk_queue_close(q);
	shk_chan_close(pl);
	shk_chan_close(pa);
	shk_chan_close(ps);
	CHECK_OK(shk_seg_unlink(seg, NULL));
}

/*
 * The held table has 256 entries (docs/chan.md, limits): a puller that
 * holds 300 messages works as before, and killed holding them leaves the
 * 44 it could not record leaked; the other 256 are freed by the next
 * opener.  Before 2026-11-25 all 300 stayed in use.
 */
static void
t_held_table_full(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	uint64_t used0, blk;
	uint32_t i;
	int fds[2];
	pid_t pid;

	test_name(seg, sizeof(seg), "held_full");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = SEG_SIZE;
	o.cap = 512;
	o.max_msg = 1024;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	used0 = heap_used(ps);
	CHECK_OK(send_seq(ps, 100, 0));
	blk = heap_used(ps) - used0;
	recv_seq(pl, 0);
	CHECK_EQ(heap_used(ps), used0);
	/* one handle holds 300, then releases them */
	{
		shk_msg *m[300];

		for (i = 0; i < 300; i++)
			CHECK_OK(send_seq(ps, 100, i));
		for (i = 0; i < 300; i++)
			CHECK_OK(shk_chan_recv(pl, &m[i], 0));
		for (i = 0; i < 300; i++)
			shk_msg_release(m[i]);
	}
	CHECK_EQ(heap_used(ps), used0);
	shk_chan_close(pl);
	/* a child holds 60 (through held_child), but first 240 more in a
	 * handle of its own: 300 in all, 256 recorded */
	for (i = 0; i < 300; i++)
		CHECK_OK(send_seq(ps, 100, i));
	CHECK(pipe(fds) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan *p;
		shk_msg *m;

		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL,
				       NULL, &p));
		for (i = 0; i < 240; i++)
			CHECK_OK(shk_chan_recv(p, &m, 0));
		held_child(a, 60, 240, fds[1], -1, NULL, 0);
	}
	kill_holder(pid, fds[0], NULL);
	CHECK_EQ(heap_used(ps), used0 + 300 * blk);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	CHECK_EQ(heap_used(ps), used0 + 44 * blk);
	CHECK_OK(shk_seg_check(shk_chan_seg(ps)));
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(pl);
	shk_chan_close(ps);
	shk_seg_unlink(seg, NULL);
}

/*
 * A live puller holding messages keeps them: other openers' reclaims and
 * a sender that fills the heap (and reclaims on the way) free none of
 * them; the holder then finds each one intact and releases it.
 */
static void
t_held_live(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	static uint8_t buf[4000];
	shk_chan *ps, *pl, *p2;
	uint64_t used0, off;
	uint32_t i, n = 0;
	int up[2], down[2], rc;
	pid_t pid;

	test_name(seg, sizeof(seg), "held_live");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = 256 << 10;
	o.cap = 64;
	o.max_msg = 8192;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	used0 = heap_used(ps);
	CHECK(pipe(up) == 0);
	CHECK(pipe(down) == 0);
	for (i = 0; i < 3; i++)
		CHECK_OK(send_seq(ps, 4000, i));
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0)
		held_child(a, 3, 0, up[1], down[0], NULL, 0);
	CHECK(read(up[0], &off, sizeof(off)) == sizeof(off));
	/* openers reclaim; a sender fills the heap, reclaiming */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, NULL, &p2));
	while ((rc = send_seq(p2, 4000, 100 + n)) == 0)
		n++;
	CHECK_EQ(rc, SHK_ENOMEM);
	CHECK(n >= 1);
	CHECK_RC(shk_chan_send(p2, buf, sizeof(buf), 120000000), SHK_ETIMEDOUT);
	/* the holder checks its three and releases them */
	CHECK(write(down[1], "c", 1) == 1);
	CHECK_EQ(test_wait(pid), 0);
	for (i = 0; i < n; i++)
		recv_seq(pl, 100 + i);
	CHECK_EQ(heap_used(ps), used0);
	CHECK_OK(shk_seg_check(shk_chan_seg(ps)));
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	shk_chan_close(p2);
	shk_chan_close(pl);
	shk_chan_close(ps);
	shk_seg_unlink(seg, NULL);
}

/* A sender killed between its heap allocation and the queue push leaks
 * that one block (docs/chan.md); the channel goes on. */
static void
t_kill_sender_mid_send(void)
{
	char seg[64], a[160], buf[1000];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	shk_msg *m;
	uint64_t used0, used1;
	pid_t pid;

	test_name(seg, sizeof(seg), "kill_mid_send");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = SEG_SIZE;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, &o, &pl));
	used0 = heap_used(pl);
	memset(buf, 3, sizeof(buf));
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan *p;

		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH,
				       NULL, &p));
		setenv("SHK_CRASH", "chan.send.after_alloc:1", 1);
		shk_chan_send(p, buf, sizeof(buf), 0);
		_exit(3);
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	used1 = heap_used(pl);
	CHECK(used1 > used0);
	CHECK_RC(shk_chan_recv(pl, &m, 0), SHK_EAGAIN);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, NULL, &ps));
	CHECK_OK(shk_chan_send(ps, buf, sizeof(buf), 0));
	CHECK_OK(shk_chan_recv(pl, &m, 0));
	CHECK_EQ(shk_msg_len(m), sizeof(buf));
	shk_msg_release(m);
	CHECK_EQ(heap_used(pl), used1);
	shk_chan_close(ps);
	shk_chan_close(pl);
	shk_seg_unlink(seg, NULL);
}

/* The publisher is killed while a subscriber waits: SHK_EPEERDEAD; a new
 * publisher takes the role over. */
static void
t_kill_publisher(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *pub, *sub;
	shk_msg *m;
	int fds[2];
	pid_t pid;
	char ch;

	test_name(seg, sizeof(seg), "kill_pub");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = SEG_SIZE;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_SUB, &o, &sub));
	CHECK(pipe(fds) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, NULL,
				       &pub));
		CHECK(write(fds[1], "r", 1) == 1);
		pause();
		_exit(0);
	}
	CHECK(read(fds[0], &ch, 1) == 1);
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, NULL, &pub),
		 SHK_EBUSY);
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	CHECK_RC(shk_chan_recv(sub, &m, 3000000000LL), SHK_EPEERDEAD);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, NULL, &pub));
	CHECK_OK(shk_chan_send(pub, "news", 4, 0));
	CHECK_OK(shk_chan_recv(sub, &m, 0));
	CHECK(memcmp(shk_msg_data(m), "news", 4) == 0);
	shk_msg_release(m);
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(pub);
	shk_chan_close(sub);
	shk_seg_unlink(seg, NULL);
}

/* A sender waits for heap room as for queue or ring room: SHK_ENOMEM on a
 * try, SHK_ETIMEDOUT after its timeout, and a release by a receiver in
 * another process lets a waiting send through. */
static void
t_heap_full(void)
{
	static char buf[60000];
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *ps, *pl;
	shk_msg *m;
	uint64_t used0;
	int64_t t0, dt;
	int k, rc;
	pid_t pid;

	test_name(seg, sizeof(seg), "heap_full");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = 512 << 10;
	o.cap = 64;
	o.max_msg = 1 << 20; /* more than the heap */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &ps));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &pl));
	used0 = heap_used(ps);
	for (k = 0; (rc = shk_chan_send(ps, buf, sizeof(buf), 0)) == 0; k++)
		CHECK(k < 64);
	CHECK_RC(rc, SHK_ENOMEM);
	CHECK(k >= 1);
	t0 = test_now_ns();
	CHECK_RC(shk_chan_send(ps, buf, sizeof(buf), 40000000), SHK_ETIMEDOUT);
	dt = test_now_ns() - t0;
	if (dt < 35000000 || dt > 500000000)
		TEST_FAIL("send waited %lld ns for 40 ms", (long long)dt);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan *p2;

		CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL,
				       NULL, &p2));
		usleep(100000);
		CHECK_OK(shk_chan_recv(p2, &m, 0));
		shk_msg_release(m);
		shk_chan_close(p2);
		_exit(0);
	}
	t0 = test_now_ns();
	CHECK_OK(shk_chan_send(ps, buf, sizeof(buf), SHK_FOREVER));
	CHECK(test_now_ns() - t0 >= 50000000);
	CHECK_EQ(test_wait(pid), 0);
	/* larger than the whole heap: at once, whatever the timeout */
	{
		static char huge[600 << 10];
		shk_heap_stats hs = { .size = sizeof(hs) };

		t0 = test_now_ns();
		CHECK_RC(shk_chan_send(ps, huge, sizeof(huge), SHK_FOREVER),
			 SHK_ENOMEM);
		CHECK(test_now_ns() - t0 < 100000000);
		/* smaller than the heap region, but more than its block
		 * chain (the region less the heap's header) could ever
		 * give: at once too, not after the timeout */
		CHECK_OK(shk_heap_info(shk_chan_seg(ps), &hs));
		CHECK(hs.heap_len - 1024 <= sizeof(huge));
		t0 = test_now_ns();
		CHECK_RC(shk_chan_send(ps, huge, (size_t)hs.heap_len - 1024,
				       2000000000LL),
			 SHK_ENOMEM);
		CHECK(test_now_ns() - t0 < 100000000);
	}
	for (k = 0; shk_chan_recv(pl, &m, 0) == 0; k++)
		shk_msg_release(m);
	CHECK(k >= 1);
	CHECK_EQ(heap_used(ps), used0);
	shk_chan_close(pl);
	shk_chan_close(ps);
	shk_seg_unlink(seg, NULL);
}

/* A pair sender waiting for heap room whose receiving end has died gets
 * SHK_EPEERDEAD, as it does waiting for ring room: the dead end's blocks
 * stay in the ring until a new owner comes.  A new B takes them. */
static void
t_heap_full_peer_dead(void)
{
	static char buf[60000];
	char seg[64], a[160], ch;
	shk_chan_opts o = pair_opts();
	shk_chan *ca, *cb;
	shk_msg *m;
	int64_t t0, dt;
	int k, n, rc, fds[2];
	pid_t pid;

	test_name(seg, sizeof(seg), "heap_peer_dead");
	addr_of(a, sizeof(a), seg, "ch");
	o.seg_size = 512 << 10;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca));
	CHECK(pipe(fds) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_OK(
			shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
		CHECK(write(fds[1], "r", 1) == 1);
		pause();
		_exit(0);
	}
	CHECK(read(fds[0], &ch, 1) == 1);
	/* the heap fills before the ring (32-byte records in 16 KiB) */
	for (n = 0; (rc = shk_chan_send(ca, buf, sizeof(buf), 0)) == 0; n++)
		CHECK(n < 64);
	CHECK_RC(rc, SHK_ENOMEM);
	CHECK(n >= 1);
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	t0 = test_now_ns();
	CHECK_RC(shk_chan_send(ca, buf, sizeof(buf), 3000000000LL),
		 SHK_EPEERDEAD);
	dt = test_now_ns() - t0;
	if (dt > 1000000000LL)
		TEST_FAIL("EPEERDEAD after %lld ns", (long long)dt);
	/* a new B receives what the dead one left, and room comes back */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
	for (k = 0; k < n; k++) {
		CHECK_OK(shk_chan_recv(cb, &m, 0));
		CHECK_EQ(shk_msg_len(m), sizeof(buf));
		shk_msg_release(m);
	}
	CHECK_OK(shk_chan_send(ca, buf, sizeof(buf), 0));
	close(fds[0]);
	close(fds[1]);
	shk_chan_close(cb);
	shk_chan_close(ca);
	shk_seg_unlink(seg, NULL);
}

/* The creator is killed after the control block, before the parts: the
 * next opener completes the channel. */
static void
t_half_created(void)
{
	char seg[64], a[160], desc[256];
	shk_chan_opts o = pair_opts();
	shk_obj_info info = { .size = sizeof(info) };
	shk_chan *ca, *cb;
	shk_msg *m;
	pid_t pid;

	test_name(seg, sizeof(seg), "half_created");
	addr_of(a, sizeof(a), seg, "ch");
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		setenv("SHK_CRASH", "chan.create.after_ctl:1", 1);
		shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca);
		_exit(3);
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
	CHECK_OK(shk_obj_stat(shk_chan_seg(cb), "ch", &info));
	CHECK(shk_obj_describe(shk_chan_seg(cb), &info, desc, sizeof(desc)) >
	      0);
	if (!strstr(desc, "parts=2/2"))
		TEST_FAIL("describe: %s", desc);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca));
	CHECK_OK(shk_chan_send(ca, "x", 1, 0));
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	shk_msg_release(m);
	shk_chan_close(ca);
	shk_chan_close(cb);
	shk_seg_unlink(seg, NULL);
}

/* The number of objects in segment s. */
static int
nobjects(shk_seg *s)
{
	shk_obj_info info = { .size = sizeof(info) };
	uint32_t cur = 0;
	int n = 0, rc;

	while ((rc = shk_obj_next(s, &cur, &info)) == 1)
		n++;
	CHECK_EQ(rc, 0);
	return n;
}

/*
 * A failed shk_chan_open removes what it made (docs/chan.md, "When an
 * open fails"), while no other handle is attached to the segment: left,
 * a channel whose parts did not fit made every later open fail until the
 * segment was removed (SHK_ENOMEM again, SHK_ETYPE for another geometry).
 */
static void
t_open_undo(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT, big = SHK_CHAN_OPTS_INIT;
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	shk_seg *s = NULL;
	shk_chan *c = NULL;

	test_name(seg, sizeof(seg), "undo");
	addr_of(a, sizeof(a), seg, "ch");
	/* two 512 KiB rings do not fit in 1 MiB: ch and ch.ab are made,
	 * ch.ba is not; the segment it made goes too */
	o.seg_size = 1 << 20;
	o.cap = 1 << 19;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &c),
		 SHK_ENOMEM);
	CHECK(c == NULL);
	CHECK_RC(shk_seg_open(seg, 0, NULL, &s), SHK_ENOENT);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &c));
	shk_chan_close(c);
	CHECK_OK(shk_seg_unlink(seg, NULL));

	/* a segment that was there stays, emptied (default 4 MiB: one
	 * 2 MiB ring fits, two do not; end B makes ch.ba first) */
	CHECK_OK(shk_seg_open(seg, SHK_CREATE | SHK_EXCL, NULL, &s));
	shk_seg_close(s);
	big.cap = 2 << 20;
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, &big, &c),
		 SHK_ENOMEM);
	CHECK_OK(shk_seg_open(seg, 0, NULL, &s));
	CHECK_EQ(nobjects(s), 0);
	shk_seg_close(s);
	o.seg_size = 0;
	o.cap = 4096;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &c));
	shk_chan_close(c);
	CHECK_OK(shk_seg_unlink(seg, NULL));

	/* a full registry (2 objects: the control block and ch.ab) */
	so.max_objects = 2;
	CHECK_OK(shk_seg_open(seg, SHK_CREATE | SHK_EXCL, &so, &s));
	shk_seg_close(s);
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &c),
		 SHK_ENOSPC);
	CHECK_OK(shk_seg_open(seg, 0, NULL, &s));
	CHECK_EQ(nobjects(s), 0);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, NULL, &c));
	shk_chan_close(c);
	shk_seg_close(s);
	CHECK_OK(shk_seg_unlink(seg, NULL));

	/* another live handle on the segment (it may be opening the same
	 * channel): what the open made stays */
	CHECK_OK(shk_seg_open(seg, SHK_CREATE | SHK_EXCL, NULL, &s));
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &big, &c),
		 SHK_ENOMEM);
	CHECK_OK(shk_obj_stat(s, "ch", &info));
	CHECK_OK(shk_obj_stat(s, "ch.ab", &info));
	shk_seg_close(s);
	/* and an open that made nothing (the control block and ch.ab were
	 * there) removes nothing */
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &big, &c),
		 SHK_ENOMEM);
	CHECK_OK(shk_seg_open(seg, 0, NULL, &s));
	CHECK_EQ(nobjects(s), 2);
	shk_seg_close(s);
	CHECK_OK(shk_seg_unlink(seg, NULL));
}

/*
 * shk_obj_remove of a channel removes its parts with its control block
 * (docs/chan.md, "Removing a channel"): it removed the control block
 * only, and the next open made a new one that took the old rings over,
 * delivering the old channel's inline messages and failing its heap ones
 * as corrupt.  Objects that are not channel parts stay, whatever their
 * names.
 */
static void
t_obj_remove(void)
{
	char seg[64], a[160], b[160], p[160], big[4000];
	shk_chan_opts o = pair_opts();
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	shk_seg *s = NULL;
	shk_ring *r = NULL;
	shk_chan *c = NULL;
	shk_msg *m = NULL;

	test_name(seg, sizeof(seg), "objrm");
	addr_of(a, sizeof(a), seg, "ch");
	addr_of(b, sizeof(b), seg, "pp");
	addr_of(p, sizeof(p), seg, "ps");
	memset(big, 'x', sizeof(big));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &c));
	CHECK_OK(shk_chan_send(c, "old", 3, 0));
	CHECK_OK(shk_chan_send(c, big, sizeof(big), 0)); /* a heap block */
	shk_chan_close(c);
	CHECK_OK(shk_chan_open(b, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, NULL, &c));
	shk_chan_close(c);
	CHECK_OK(shk_chan_open(p, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, NULL, &c));
	shk_chan_close(c);
	CHECK_OK(shk_seg_open(seg, 0, NULL, &s));
	/* a user's ring named like a pair part, beside the push/pull "pp" */
	ro.cap = 4096;
	CHECK_OK(shk_ring_open(s, "pp.ab", SHK_CREATE, SHK_RING_PRODUCER, &ro,
			       &r));
	shk_ring_close(r);
	CHECK_EQ(nobjects(s), 8);
	CHECK_OK(shk_obj_remove(s, "ch"));
	CHECK_RC(shk_obj_stat(s, "ch.ab", &info), SHK_ENOENT);
	CHECK_RC(shk_obj_stat(s, "ch.ba", &info), SHK_ENOENT);
	CHECK_OK(shk_obj_remove(s, "pp"));
	CHECK_RC(shk_obj_stat(s, "pp.q", &info), SHK_ENOENT);
	CHECK_OK(shk_obj_stat(s, "pp.ab", &info));
	CHECK_OK(shk_obj_remove(s, "ps"));
	CHECK_RC(shk_obj_stat(s, "ps.log", &info), SHK_ENOENT);
	CHECK_EQ(nobjects(s), 1);
	/* the channel made again under the name is a new, empty one */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &c));
	CHECK_RC(shk_chan_recv(c, &m, 0), SHK_EAGAIN);
	shk_chan_close(c);
	shk_seg_close(s);
	CHECK_OK(shk_seg_unlink(seg, NULL));
}

/* Racing first openers, each creating the segment and the channel. */
static void
t_race_create(void)
{
	char seg[64], a[160];
	pid_t pids[6];
	shk_chan *c;
	shk_obj_info info;
	uint32_t cur = 0;
	int k, nchan = 0;

	test_name(seg, sizeof(seg), "race");
	addr_of(a, sizeof(a), seg, "ch");
	for (k = 0; k < 6; k++) {
		pids[k] = spawn();
		CHECK(pids[k] >= 0);
		if (pids[k] == 0) {
			shk_chan_opts o = pair_opts();
			shk_chan *x;
			int role = k % 2 ? SHK_CHAN_PUSH : SHK_CHAN_PULL;

			if (shk_chan_open(a, SHK_CHAN_PUSHPULL, role, &o, &x))
				_exit(1);
			shk_chan_close(x);
			_exit(0);
		}
	}
	for (k = 0; k < 6; k++)
		CHECK_EQ(test_wait(pids[k]), 0);
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL, &c));
	info.size = sizeof(info);
	while (shk_obj_next(shk_chan_seg(c), &cur, &info) == 1)
		if (info.kind == SHK_KIND_CHAN || info.kind == SHK_KIND_QUEUE)
			nchan++;
	CHECK_EQ(nchan, 2);
	shk_chan_close(c);
	shk_seg_unlink(seg, NULL);
}

/* ---- threads (the TSan variant) ---- */

struct thr_arg {
	const char *addr;
	int pattern, role;
	uint32_t prod, n;
	_Atomic int *ready; /* pub/sub: the subscriber is attached */
};

static void *
thr_send(void *p)
{
	struct thr_arg *t = p;
	shk_chan *c;

	/* seq_cst: a test flag, no ordering subtleties wanted */
	while (t->ready && !atomic_load(t->ready))
		usleep(100);
	CHECK_OK(shk_chan_open(t->addr, t->pattern, t->role, NULL, &c));
	send_stamped(c, t->prod, t->n,
		     t->pattern == SHK_CHAN_PUBSUB ? 1000 : 512,
		     t->pattern == SHK_CHAN_PUBSUB ? 4080 : 8000, t->prod);
	shk_chan_close(c);
	return NULL;
}

static void *
thr_recv(void *p)
{
	struct thr_arg *t = p;
	shk_chan *c;

	CHECK_OK(shk_chan_open(t->addr, t->pattern, t->role, NULL, &c));
	if (t->ready)
		atomic_store(t->ready, 1);
	recv_stamped(c, t->prod, t->n);
	shk_chan_close(c);
	return NULL;
}

static void
t_threads(void)
{
	char seg[64], a[160];
	shk_chan_opts o = pair_opts();
	struct thr_arg s = { 0 }, r = { 0 };
	pthread_t ts, tr;
	shk_chan *keep;
	_Atomic int ready = 0;

	test_name(seg, sizeof(seg), "threads");
	addr_of(a, sizeof(a), seg, "ch");
	o.max_msg = 8000;
	/* a pushpull channel with one pusher and one puller keeps order */
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &keep));
	s = (struct thr_arg){ a, SHK_CHAN_PUSHPULL,         SHK_CHAN_PUSH,
			      1, (uint32_t)test_scale(800), NULL };
	r = s;
	r.role = SHK_CHAN_PULL;
	CHECK(pthread_create(&ts, NULL, thr_send, &s) == 0);
	CHECK(pthread_create(&tr, NULL, thr_recv, &r) == 0);
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	shk_chan_close(keep);
	/* and a pair */
	addr_of(a, sizeof(a), seg, "pair");
	o.inline_max = 512;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &keep));
	shk_chan_close(keep);
	s = (struct thr_arg){
		a, SHK_CHAN_PAIR, SHK_CHAN_A, 1, (uint32_t)test_scale(800), NULL
	};
	r = s;
	r.role = SHK_CHAN_B;
	CHECK(pthread_create(&ts, NULL, thr_send, &s) == 0);
	CHECK(pthread_create(&tr, NULL, thr_recv, &r) == 0);
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	/* and a reliable pub/sub */
	addr_of(a, sizeof(a), seg, "news");
	o = (shk_chan_opts)SHK_CHAN_OPTS_INIT;
	o.mode = SHK_BCAST_RELIABLE;
	o.cap = 8192;
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, &o, &keep));
	shk_chan_close(keep);
	s = (struct thr_arg){ a, SHK_CHAN_PUBSUB,           SHK_CHAN_PUB,
			      1, (uint32_t)test_scale(800), &ready };
	r = s;
	r.role = SHK_CHAN_SUB;
	CHECK(pthread_create(&ts, NULL, thr_send, &s) == 0);
	CHECK(pthread_create(&tr, NULL, thr_recv, &r) == 0);
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	shk_seg_unlink(seg, NULL);
}

/*
 * A forked child closing its copies of the parent's channel ends (the
 * one call the fork policy lets it make on them) leaves the parent's
 * ends alone: a received heap message and an unsent loan stay allocated
 * and intact, the ring record stays held, and both ends are still
 * refused to a second opener.  Before the fix the child's close released
 * the parent's messages (ring record and heap blocks) and both roles.
 */
static void
fork_close_body(const char *a)
{
	shk_chan_opts o = pair_opts();
	shk_chan *ca, *cb, *x = NULL;
	shk_msg *m, *loan, *m2;
	char big[4096];
	uint64_t used;
	pid_t pid;

	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &ca));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &cb));
	memset(big, 'z', sizeof(big));
	CHECK_OK(shk_chan_send(cb, big, sizeof(big), 0));
	CHECK_OK(shk_chan_send(cb, "next", 4, 0));
	CHECK_OK(shk_chan_recv(ca, &m, 0));
	CHECK_OK(shk_msg_loan(ca, 8192, &loan));
	memset(shk_msg_data(loan), 7, 8192);
	used = heap_used(ca);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan_close(ca);
		shk_chan_close(cb);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 0);
	CHECK_EQ(heap_used(ca), used);
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, NULL, &x),
		 SHK_EBUSY);
	CHECK_RC(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_B, NULL, &x),
		 SHK_EBUSY);
	CHECK(x == NULL);
	/* the received message is still ours (one at a time) and intact */
	CHECK_RC(shk_chan_recv(ca, &m2, 0), SHK_EBUSY);
	CHECK_EQ(shk_msg_len(m), sizeof(big));
	CHECK(memcmp(shk_msg_data(m), big, sizeof(big)) == 0);
	shk_msg_release(m);
	CHECK_OK(shk_chan_recv(ca, &m, 0));
	CHECK_EQ(shk_msg_len(m), 4);
	CHECK(memcmp(shk_msg_data(m), "next", 4) == 0);
	shk_msg_release(m);
	/* the loan too */
	CHECK_OK(shk_msg_send(ca, loan, 0));
	CHECK_OK(shk_chan_recv(cb, &m, 0));
	CHECK_EQ(shk_msg_len(m), 8192);
	CHECK_EQ(((uint8_t *)shk_msg_data(m))[8191], 7);
	shk_msg_release(m);
	shk_chan_close(ca);
	shk_chan_close(cb);
}

static void
t_fork_close(void)
{
	char seg[64], a[160];
	pid_t pid;
	int st;

	test_name(seg, sizeof(seg), "fork_close");
	addr_of(a, sizeof(a), seg, "ch");
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		fork_close_body(a);
		_exit(0);
	}
	st = test_wait(pid);
	shk_seg_unlink(seg, NULL);
	CHECK_EQ(st, 0);
}

/*
 * A channel is in use while one of its parts records a live party (pair:
 * the rings' producers and consumers; pub/sub: the log's writer and
 * readers): shk_obj_remove is SHK_EBUSY and removes nothing, control block
 * and parts alike; it removed them all under the open ends, whose sends
 * and receives then went into freed memory.  Push/pull parts record no
 * parties (docs/registry.md).
 */
static void
t_obj_remove_busy(void)
{
	char seg[64], a[160], p[160];
	shk_chan_opts o = pair_opts();
	shk_obj_info info = { .size = sizeof(info) };
	shk_seg *s = NULL;
	shk_chan *c = NULL, *pub = NULL, *sub = NULL;

	test_name(seg, sizeof(seg), "objrmb");
	addr_of(a, sizeof(a), seg, "ch");
	addr_of(p, sizeof(p), seg, "ps");
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &c));
	CHECK_OK(shk_chan_open(p, SHK_CHAN_PUBSUB, SHK_CHAN_PUB, NULL, &pub));
	CHECK_OK(shk_chan_open(p, SHK_CHAN_PUBSUB, SHK_CHAN_SUB, NULL, &sub));
	CHECK_OK(shk_seg_open(seg, 0, NULL, &s));
	CHECK_OK(shk_seg_unlink(seg, NULL)); /* no leftovers on any path */
	CHECK_RC(shk_obj_remove(s, "ch"), SHK_EBUSY);
	CHECK_OK(shk_obj_stat(s, "ch", &info));
	CHECK_OK(shk_obj_stat(s, "ch.ab", &info));
	CHECK_OK(shk_obj_stat(s, "ch.ba", &info));
	CHECK_OK(shk_chan_send(c, "still", 5, 0));
	shk_chan_close(c);
	CHECK_OK(shk_obj_remove(s, "ch"));
	CHECK_RC(shk_obj_stat(s, "ch.ab", &info), SHK_ENOENT);
	/* pub/sub: a subscriber alone keeps it */
	shk_chan_close(pub);
	CHECK_RC(shk_obj_remove(s, "ps"), SHK_EBUSY);
	CHECK_OK(shk_obj_stat(s, "ps.log", &info));
	shk_chan_close(sub);
	CHECK_OK(shk_obj_remove(s, "ps"));
	CHECK_EQ(nobjects(s), 0);
	shk_seg_close(s);
}

/*
 * Control-block versions: a pair channel of format 1 (made before the
 * push/pull held table; its layout is unchanged) still opens, while a
 * push/pull channel of format 1 (no held table) and an unknown version
 * are SHK_EVERSION, not SHK_ECORRUPT (review of 2026-11-25: every
 * version-1 channel was refused as corrupt).
 */
static void
t_ctl_version(void)
{
	static const struct {
		int pattern, role, role2;
		uint32_t version;
		int want;
	} cases[] = {
		{ SHK_CHAN_PAIR, SHK_CHAN_A, SHK_CHAN_B, 1, 0 },
		{ SHK_CHAN_PUBSUB, SHK_CHAN_PUB, SHK_CHAN_SUB, 1, 0 },
		{ SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, SHK_CHAN_PULL, 1,
		  SHK_EVERSION },
		{ SHK_CHAN_PAIR, SHK_CHAN_A, SHK_CHAN_B, 9, SHK_EVERSION },
	};
	size_t k;

	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		shk_obj_info info = { .size = sizeof(info) };
		struct shk__chan_ctl *g;
		shk_chan *c = NULL, *d = NULL;
		char seg[64], a[160];

		test_name(seg, sizeof(seg), "ctlver");
		addr_of(a, sizeof(a), seg, "ch");
		CHECK_OK(shk_chan_open(a, cases[k].pattern, cases[k].role, NULL,
				       &c));
		CHECK_OK(shk_obj_stat(shk_chan_seg(c), "ch", &info));
		g = (struct shk__chan_ctl *)((char *)shk_seg_base(
						     shk_chan_seg(c)) +
					     info.off);
		g->version = cases[k].version;
		CHECK_RC(shk_chan_open(a, cases[k].pattern, cases[k].role2,
				       NULL, &d),
			 cases[k].want);
		shk_chan_close(d);
		shk_chan_close(c);
		shk_seg_unlink(seg, NULL);
	}
}

/*
 * A peer stopped (a debugger, SIGSTOP) inside the heap's critical
 * section: a channel call with a timeout waits for the heap lock until its
 * own deadline (at least 2 ms), not the heap's 10 s (found by fuzz_chan:
 * a push/pull shk_chan_recv with timeout 0 returned after 10.00 s; each
 * call below took 10 s before the fix).  Fresh handles, so that each call
 * needs the lock (a magazine set-up).  A receive whose warm-up gave up
 * still hands out a queued message.  Once the peer goes on, everything
 * works and nothing is left behind.
 */
#define STOPPED_MAX_NS 3000000000LL /* vs 10 s before; sanitizers, load */
#define BIG 20000 /* over the small classes: a large block, under the lock */

static void
t_heap_lock_stopped(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *push1, *push2, *pull;
	shk_msg *m = NULL, *l = NULL, *m2 = NULL;
	uint64_t used0;
	int64_t t0, dt;
	int fd[2], st, k;
	char b, big[BIG] = { 0 };
	pid_t pid;

	o.seg_size = 1 << 20;
	o.cap = 16;
	o.max_msg = 65536;
	test_name(seg, sizeof(seg), "hlstop");
	addr_of(a, sizeof(a), seg, "ch");
	CHECK_OK(
		shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &push1));
	used0 = heap_used(push1);
	CHECK_OK(shk_chan_send(push1, "a", 1, 0));
	CHECK_OK(
		shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &push2));
	CHECK_OK(shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, &o, &pull));
	CHECK(pipe(fd) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan *c;
		shk_seg *s;

		close(fd[0]);
		if (shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, NULL,
				  &c))
			_exit(2);
		s = shk_chan_seg(c);
		if (shk__heap_lock(s, s->heap_local))
			_exit(3);
		if (write(fd[1], "L", 1) != 1)
			_exit(4);
		raise(SIGSTOP); /* stopped holding the heap lock */
		shk__heap_unlock(s, s->heap_local);
		shk_chan_close(c);
		_exit(0);
	}
	close(fd[1]);
	CHECK(read(fd[0], &b, 1) == 1 && b == 'L');
	close(fd[0]);
	CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st));

	t0 = test_now_ns();
	CHECK_RC(shk_chan_send(push2, big, BIG, 0), SHK_EAGAIN);
	dt = test_now_ns() - t0;
	CHECK(dt < STOPPED_MAX_NS);
	t0 = test_now_ns();
	CHECK_RC(shk_chan_send(push2, big, BIG, 50000000), SHK_ETIMEDOUT);
	dt = test_now_ns() - t0;
	CHECK(dt >= 40000000 && dt < STOPPED_MAX_NS);
	/* the warm-up gives up; the receive goes on with the queued one */
	t0 = test_now_ns();
	CHECK_OK(shk_chan_recv(pull, &m, 0));
	dt = test_now_ns() - t0;
	CHECK(dt < STOPPED_MAX_NS);
	CHECK(shk_msg_len(m) == 1 && *(char *)shk_msg_data(m) == 'a');
	t0 = test_now_ns();
	CHECK_RC(shk_chan_recv(pull, &m2, 50000000), SHK_ETIMEDOUT);
	dt = test_now_ns() - t0;
	CHECK(m2 == NULL && dt >= 40000000 && dt < STOPPED_MAX_NS);

	CHECK(kill(pid, SIGCONT) == 0);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	      WEXITSTATUS(st) == 0);
	shk_msg_release(m);
	big[0] = 'b';
	CHECK_OK(shk_chan_send(push2, big, BIG, 0));
	CHECK_OK(shk_msg_loan(push2, BIG, &l));
	memset(shk_msg_data(l), 'c', BIG);
	CHECK_OK(shk_msg_send(push2, l, 0));
	for (k = 0; k < 2; k++) {
		CHECK_OK(shk_chan_recv(pull, &m, 0));
		CHECK(*(char *)shk_msg_data(m) == (k ? 'c' : 'b'));
		shk_msg_release(m);
	}
	CHECK_RC(shk_chan_recv(pull, &m, 0), SHK_EAGAIN);
	/* the set-up that gave up released its claim: a later one made the
	 * magazine (a claim kept with no magazine stayed so for good) */
	CHECK(((struct heap_local *)shk_chan_seg(pull)->heap_local)->mag_off !=
	      0);
	CHECK_OK(shk_seg_check(shk_chan_seg(push1)));
	shk_chan_close(push2);
	shk_chan_close(pull);
	CHECK_OK(shk_seg_check(shk_chan_seg(push1)));
	CHECK_EQ(heap_used(push1), used0);
	shk_chan_close(push1);
	shk_seg_unlink(seg, NULL);
}

/*
 * A receive whose magazine set-up gave up (the heap lock busy past its
 * deadline) hands the message out anyway; its release must set the
 * magazine up before it clears the held entry.  Set up after the clear,
 * in the free, the set-up's heap-lock wait and system calls were a window
 * in which a kill leaked the block (the entry already cleared, so no
 * reclaim saw it).  The puller is killed in the set-up (crash point
 * heap.mag.carved): the block must come back through a reclaim.
 */
static void
t_release_warms_first(void)
{
	char seg[64], a[160];
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *push1, *push2;
	shk_seg *s;
	uint64_t used0;
	int to[2], from[2], st;
	char b;
	pid_t pid;

	o.seg_size = 1 << 20;
	o.cap = 16;
	o.max_msg = 65536;
	test_name(seg, sizeof(seg), "rwarm");
	addr_of(a, sizeof(a), seg, "ch");
	CHECK_OK(
		shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &push1));
	used0 = heap_used(push1);
	CHECK_OK(shk_chan_send(push1, "a", 1, 0));
	CHECK(used0 < heap_used(push1));
	s = shk_chan_seg(push1);
	CHECK(pipe(to) == 0 && pipe(from) == 0);
	pid = spawn();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_chan *pl;
		shk_msg *m = NULL;

		close(to[1]);
		close(from[0]);
		if (shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL, NULL,
				  &pl))
			_exit(2);
		if (write(from[1], "O", 1) != 1 || read(to[0], &b, 1) != 1)
			_exit(4);
		/* the parent holds the heap lock: the warm-up gives up */
		if (shk_chan_recv(pl, &m, 0) ||
		    ((struct heap_local *)shk_chan_seg(pl)->heap_local)
				    ->mag_off != 0)
			_exit(3);
		if (write(from[1], "R", 1) != 1 || read(to[0], &b, 1) != 1)
			_exit(4);
		setenv("SHK_CRASH", "heap.mag.carved:1", 1);
		shk_msg_release(m); /* killed in the magazine's set-up */
		_exit(5);
	}
	close(to[0]);
	close(from[1]);
	CHECK(read(from[0], &b, 1) == 1 && b == 'O');
	CHECK_OK(shk__heap_lock(s, s->heap_local));
	/* the child receives once the lock is held */
	CHECK(write(to[1], "G", 1) == 1);
	CHECK(read(from[0], &b, 1) == 1 && b == 'R');
	shk__heap_unlock(s, s->heap_local);
	CHECK(write(to[1], "U", 1) == 1);
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
	      WTERMSIG(st) == SIGKILL);
	close(to[1]);
	close(from[0]);
	/* a new pusher's open reclaims what the dead puller held */
	CHECK_OK(
		shk_chan_open(a, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH, &o, &push2));
	shk__heap_reclaim(shk_chan_seg(push2));
	CHECK_OK(shk_seg_check(s));
	if (heap_used(push1) != used0)
		TEST_FAIL("heap used %llu after the reclaim, %llu before the "
			  "send: the block leaked",
			  (unsigned long long)heap_used(push1),
			  (unsigned long long)used0);
	shk_chan_close(push2);
	shk_chan_close(push1);
	shk_seg_unlink(seg, NULL);
}

TEST_MAIN({ "addr", t_addr }, { "pair_basic", t_pair_basic },
	  { "pair_roles", t_pair_roles }, { "pair_procs", t_pair_procs },
	  { "pushpull_basic", t_pushpull_basic },
	  { "pushpull_procs", t_pushpull_procs },
	  { "pubsub_procs", t_pubsub_procs },
	  { "pubsub_lossy", t_pubsub_lossy }, { "timeouts", t_timeouts },
	  { "wake", t_wake }, { "corrupt", t_corrupt },
	  { "kill_pair_receiver", t_kill_pair_receiver },
	  { "kill_pair_sender", t_kill_pair_sender },
	  { "heap_full", t_heap_full },
	  { "heap_full_peer_dead", t_heap_full_peer_dead },
	  { "kill_puller", t_kill_puller },
	  { "kill_puller_reclaim", t_kill_puller_reclaim },
	  { "kill_puller_heap_full", t_kill_puller_heap_full },
	  { "held_crash", t_held_crash }, { "held_live", t_held_live },
	  { "kill_busy_puller", t_kill_busy_puller },
	  { "kill_puller_redelivered", t_kill_puller_redelivered },
	  { "held_forged", t_held_forged },
	  { "held_table_full", t_held_table_full },
	  { "kill_sender_mid_send", t_kill_sender_mid_send },
	  { "kill_publisher", t_kill_publisher },
	  { "half_created", t_half_created }, { "race_create", t_race_create },
	  { "open_undo", t_open_undo }, { "obj_remove", t_obj_remove },
	  { "obj_remove_busy", t_obj_remove_busy }, { "threads", t_threads },
	  { "fork_close", t_fork_close }, { "ctl_version", t_ctl_version },
	  { "heap_lock_stopped", t_heap_lock_stopped },
	  { "release_warms_first", t_release_warms_first })
