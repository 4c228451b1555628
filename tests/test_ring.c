/* test_ring.c - SPSC ring: geometry, wrap, stress across processes and
 * threads, blocking, crash points, corruption. */
#include "harness.h"

#include <poll.h>
#include <pthread.h>

#include "platform.h"
#include "ring.h"
#include "segment.h"

#if defined(SHK__TSAN) || defined(__SANITIZE_ADDRESS__)
#define SLOW_BUILD 1
#else
#define SLOW_BUILD 0
#endif

/*
 * Every case body runs in a child of the case process; the case process
 * removes the segment whatever happens to the body (CHECK failures exit
 * the body with _exit, children may be SIGKILLed).
 */
static char g_seg[64];

static void
guarded(const char *tag, void (*body)(void))
{
	pid_t pid;
	int st;

	test_name(g_seg, sizeof(g_seg), tag);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		body();
		test_leak_check(); /* the body's process, not the case's */
		_exit(0);
	}
	st = test_wait(pid);
	shk_seg_unlink(g_seg, NULL);
	if (st != 0)
		TEST_FAIL("case body failed (status %d)", st);
}

static shk_seg *
seg_create(uint64_t len)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_seg *seg = NULL;

	so.len = len;
	CHECK_OK(shk_seg_open(g_seg, SHK_CREATE | SHK_EXCL, &so, &seg));
	return seg;
}

static shk_seg *
seg_attach(void)
{
	shk_seg *seg = NULL;

	CHECK_OK(shk_seg_open(g_seg, 0, NULL, &seg));
	return seg;
}

static shk_ring *
ring_open(shk_seg *seg, int role, uint64_t cap, uint64_t max_record,
	  unsigned flags)
{
	shk_ring_opts o = SHK_RING_OPTS_INIT;
	shk_ring *r = NULL;

	o.cap = cap;
	o.max_record = max_record;
	o.flags = flags;
	CHECK_OK(shk_ring_open(seg, "r", SHK_CREATE, role, &o, &r));
	CHECK(r != NULL);
	return r;
}

/* Record contents: seq, then bytes derived from (seq, i), checked on
 * read.  Lengths below 8 carry only the low bytes of seq. */
static inline uint8_t
fill_byte(uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 131 + i * 7 + (seq >> 8));
}

static void
rec_fill(uint8_t *p, size_t len, uint64_t seq)
{
	size_t i;

	for (i = 0; i < len && i < 8; i++)
		p[i] = (uint8_t)(seq >> (8 * i));
	for (; i < len; i++)
		p[i] = fill_byte(seq, i);
}

static int
rec_ok(const uint8_t *p, size_t len, uint64_t seq)
{
	size_t i;

	for (i = 0; i < len && i < 8; i++)
		if (p[i] != (uint8_t)(seq >> (8 * i)))
			return 0;
	for (; i < len; i++)
		if (p[i] != fill_byte(seq, i))
			return 0;
	return 1;
}

/* Deterministic record length for seq (xorshift), in [0, max]. */
static size_t
len_for(uint64_t seq, size_t max, uint64_t salt)
{
	uint64_t x = seq * 0x9e3779b97f4a7c15ull + salt;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	switch (x & 15) {
	case 0:
		return max; /* the maximum size */
	case 1:
		return max - (x >> 8) % 8; /* near it */
	case 2:
	case 3:
		return (x >> 8) % 9; /* tiny, 8-byte boundaries */
	default:
		return (x >> 8) % (max + 1);
	}
}

/* ------------------------------------------------------------------ */

static void
b_basic(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, 1024, 0, 0);
	shk_ring *c = ring_open(seg, SHK_RING_CONSUMER, 0, 0, 0);
	shk_ring *x = NULL;
	shk_ring_opts o = SHK_RING_OPTS_INIT;
	shk_ring_stats st = { .size = sizeof(st) };
	char buf[1024];
	const void *pb;
	void *wb;
	size_t n;

	/* defaults: max_record = cap/2 - 8 */
	CHECK_OK(shk_ring_stat(p, &st));
	CHECK_EQ(st.cap, 1024);
	CHECK_EQ(st.max_record, 1024 / 2 - 8);
	CHECK_EQ(st.producer, 1);
	CHECK_EQ(st.consumer, 1);
	CHECK_OK(shk_ring_write(p, "hello", 5, SHK_TRY));
	CHECK_OK(shk_ring_write(p, "", 0, SHK_TRY));
	CHECK_OK(shk_ring_stat(c, &st));
	CHECK_EQ(st.fill, 16 + 8);
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), 0);
	CHECK_RC(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), SHK_EAGAIN);
	/* oversized record; a record too long for the caller's buffer */
	CHECK_RC(shk_ring_write(p, buf, 1024 / 2 - 7, SHK_TRY), SHK_EMSGSIZE);
	CHECK_OK(shk_ring_write(p, buf, 1024 / 2 - 8, SHK_TRY));
	CHECK_RC(shk_ring_read(c, buf, 10, SHK_TRY), SHK_EMSGSIZE);
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), 1024 / 2 - 8);
	/* a negative timeout other than SHK_FOREVER */
	CHECK_RC(shk_ring_write(p, buf, 1, -2), SHK_EINVAL);
	CHECK_RC(shk_ring_reserve(p, 1, &wb, INT64_MIN), SHK_EINVAL);
	CHECK_RC(shk_ring_read(c, buf, sizeof(buf), -2), SHK_EINVAL);
	CHECK_RC(shk_ring_peek(c, &pb, &n, -2), SHK_EINVAL);
	/* zero-copy, misuse */
	CHECK_RC(shk_ring_commit(p), SHK_EINVAL);
	CHECK_RC(shk_ring_release(c), SHK_EINVAL);
	CHECK_RC(shk_ring_peek(p, &pb, &n, SHK_TRY), SHK_EINVAL);
	CHECK_RC(shk_ring_reserve(c, 8, &wb, SHK_TRY), SHK_EINVAL);
	CHECK_OK(shk_ring_reserve(p, 3, &wb, SHK_TRY));
	CHECK(((uintptr_t)wb & 7) == 0);
	CHECK_RC(shk_ring_reserve(p, 3, &wb, SHK_TRY), SHK_EINVAL);
	memcpy(wb, "abc", 3);
	CHECK_RC(shk_ring_peek(c, &pb, &n, SHK_TRY), SHK_EAGAIN);
	CHECK_OK(shk_ring_commit(p));
	CHECK_OK(shk_ring_peek(c, &pb, &n, SHK_TRY));
	CHECK_EQ(n, 3);
	CHECK(memcmp(pb, "abc", 3) == 0);
	CHECK_OK(shk_ring_peek(c, &pb, &n, SHK_TRY)); /* same record again */
	CHECK_EQ(n, 3);
	CHECK_OK(shk_ring_release(c));
	/* roles: a live owner keeps its role */
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_PRODUCER, NULL, &x),
		 SHK_EBUSY);
	CHECK(x == NULL);
	/* bad arguments and mismatches */
	CHECK_RC(shk_ring_open(seg, "r", 0, 3, NULL, &x), SHK_EINVAL);
	o.size = 0;
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, &o, &x),
		 SHK_EINVAL);
	o.size = sizeof(o);
	o.cap = 1000;
	CHECK_RC(shk_ring_open(seg, "q", SHK_CREATE, SHK_RING_CONSUMER, &o, &x),
		 SHK_EINVAL);
	o.cap = 1024;
	o.max_record = 1024 / 2 - 7;
	CHECK_RC(shk_ring_open(seg, "q", SHK_CREATE, SHK_RING_CONSUMER, &o, &x),
		 SHK_EINVAL);
	o.max_record = 0;
	o.type_id = 0x7269;
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, &o, &x),
		 SHK_ETYPE);
	o.type_id = 0;
	o.cap = 2048;
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, &o, &x),
		 SHK_ETYPE);
	CHECK_RC(shk_ring_open(seg, "nope", 0, SHK_RING_CONSUMER, NULL, &x),
		 SHK_ENOENT);
	CHECK_RC(shk_ring_write(NULL, "a", 1, 0), SHK_EINVAL);
	CHECK_RC(shk_ring_flush(NULL), SHK_EINVAL);
	shk_ring_close(NULL);
	/* after close the role is free again */
	shk_ring_close(p);
	p = NULL;
	CHECK_OK(shk_ring_open(seg, "r", 0, SHK_RING_PRODUCER, NULL, &p));
	shk_ring_close(p);
	shk_ring_close(c);
	shk_seg_close(seg);
}

static void
t_basic(void)
{
	guarded("basic", b_basic);
}

/*
 * Every payload length from 0 to 200 (the inline copies take different
 * branches up to 64 bytes), through the copying calls: the bytes arrive
 * intact, and the reader's buffer is untouched past the length.
 */
static void
b_lengths(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, 4096, 0, 0);
	shk_ring *c = ring_open(seg, SHK_RING_CONSUMER, 4096, 0, 0);
	uint8_t in[256], out[256];
	size_t len, i;

	for (len = 0; len <= 200; len++) {
		for (i = 0; i < sizeof(in); i++)
			in[i] = (uint8_t)(len * 31 + i * 7 + 1);
		memset(out, 0xA5, sizeof(out));
		CHECK_OK(shk_ring_write(p, in, len, 0));
		CHECK_EQ(shk_ring_read(c, out, sizeof(out), 0), (int)len);
		CHECK(memcmp(in, out, len) == 0);
		for (i = len; i < sizeof(out); i++)
			if (out[i] != 0xA5)
				break;
		CHECK_EQ(i, sizeof(out));
	}
	shk_ring_close(p);
	shk_ring_close(c);
	shk_seg_close(seg);
}

static void
t_lengths(void)
{
	guarded("lengths", b_lengths);
}

/* Wrong kind: a blob by that name, and a ring opened as a blob. */
static void
b_wrong_kind(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	shk_ring *r = NULL;
	void *mem;

	d.kind = SHK_KIND_BLOB;
	d.elem_len = 1;
	d.cap = 4096;
	CHECK_OK(shk_obj_open(seg, "blob", SHK_CREATE, &d, NULL, &mem));
	CHECK_RC(shk_ring_open(seg, "blob", SHK_CREATE, SHK_RING_PRODUCER, NULL,
			       &r),
		 SHK_ETYPE);
	CHECK(r == NULL);
	r = ring_open(seg, SHK_RING_PRODUCER, 1024, 0, 0);
	d.cap = 0;
	d.elem_len = 0;
	CHECK_RC(shk_obj_open(seg, "r", 0, &d, NULL, &mem), SHK_ETYPE);
	shk_ring_close(r);
	shk_seg_close(seg);
}

static void
t_wrong_kind(void)
{
	guarded("kind", b_wrong_kind);
}

/*
 * Exact geometry, with counters starting at 2^64 - 4*cap so they wrap
 * during the test: a record that ends exactly at the end of the area, an
 * 8-byte PAD, a max_record record after a PAD, and a full ring.
 */
static void
b_geometry(void)
{
	enum { CAP = 256, MAXR = CAP / 2 - 8 };
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, CAP, 0, 0);
	shk_ring *c;
	uint8_t buf[CAP], *w;
	const void *pb;
	size_t n;
	uint64_t start = (uint64_t)0 - 4 * CAP, seq = 0, rseq = 0;
	shk_ring_stats st = { .size = sizeof(st) };
	shk_obj_info info = { .size = sizeof(info) };
	uint8_t *data;
	int round;

	CHECK_OK(shk_obj_stat(seg, "r", &info));
	data = (uint8_t *)shk_seg_base(seg) + info.off + SHK__RING_DATA_OFF;
	CHECK_OK(shk__ring_set_pos(p, start));
	c = ring_open(seg, SHK_RING_CONSUMER, 0, 0, 0);
	for (round = 0; round < 12; round++) {
		/* 1) fill exactly to the end: 256 = 120+8 + 120+8 */
		rec_fill(buf, MAXR, seq);
		CHECK_OK(shk_ring_write(p, buf, MAXR, SHK_TRY));
		seq++;
		rec_fill(buf, MAXR, seq);
		CHECK_OK(shk_ring_write(p, buf, MAXR, SHK_TRY));
		seq++;
		/* full: nothing else fits, not even an empty record */
		CHECK_RC(shk_ring_write(p, buf, 0, SHK_TRY), SHK_EAGAIN);
		CHECK_OK(shk_ring_stat(p, &st));
		CHECK_EQ(st.fill, CAP);
		while (rseq < seq) {
			CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY),
				 MAXR);
			CHECK(rec_ok(buf, MAXR, rseq));
			rseq++;
		}
		/* 2) leave exactly 8 bytes at the end: 248 = 128 + 120 */
		for (int i = 0; i < 2; i++) {
			size_t len = i ? MAXR - 8 : MAXR;

			rec_fill(buf, len, seq);
			CHECK_OK(shk_ring_write(p, buf, len, SHK_TRY));
			seq++;
		}
		for (int i = 0; i < 2; i++) {
			size_t len = i ? MAXR - 8 : MAXR;

			CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY),
				 len);
			CHECK(rec_ok(buf, len, rseq));
			rseq++;
		}
		/* a 0-byte record fits the last 8 bytes exactly ... */
		if (round & 1) {
			CHECK_OK(shk_ring_write(p, buf, 0, SHK_TRY));
			CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY),
				 0);
		}
		/* ... otherwise a max_record record goes behind an 8-byte PAD
		 * (or, after the 0-byte record, starts at offset 0) */
		CHECK_OK(shk_ring_reserve(p, MAXR, (void **)&w, SHK_TRY));
		CHECK(w == data + SHK__REC_HDR); /* at offset 0 */
		rec_fill(w, MAXR, seq);
		CHECK_OK(shk_ring_commit(p));
		CHECK_OK(shk_ring_stat(c, &st));
		CHECK_EQ(st.fill, (round & 1) ? MAXR + 8 : 8 + MAXR + 8);
		CHECK_OK(shk_ring_peek(c, &pb, &n, SHK_TRY));
		CHECK_EQ(n, MAXR);
		CHECK(rec_ok(pb, n, seq));
		CHECK_OK(shk_ring_release(c));
		seq++;
		rseq++;
		/* realign to offset 0 for the next round: 256 - 128 = 128 */
		CHECK_OK(shk_ring_write(p, buf, MAXR, SHK_TRY));
		CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), MAXR);
		CHECK_OK(shk_ring_stat(c, &st));
		CHECK_EQ(st.fill, 0);
		CHECK_EQ(st.head % CAP, 0);
	}
	/* the counters wrapped past 2^64 */
	CHECK_OK(shk_ring_stat(c, &st));
	CHECK(st.head < start);
	shk_ring_close(c);
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
t_geometry(void)
{
	guarded("geom", b_geometry);
}

/* Random sizes against a model FIFO, single thread, through the wrap of
 * the counters; try-reads and try-writes interleaved at random. */
static void
b_random_model(void)
{
	enum { CAP = 1024, MAXR = CAP / 2 - 8, QN = 4096 };
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, CAP, 0, 0);
	shk_ring *c;
	static uint64_t q[QN];
	uint8_t buf[CAP];
	uint64_t seq = 0, x = 12345, qh = 0, qt = 0;
	long i, n = test_scale(SLOW_BUILD ? 50000 : 400000);
	int rc;

	CHECK_OK(shk__ring_set_pos(p, (uint64_t)0 - 4 * CAP));
	c = ring_open(seg, SHK_RING_CONSUMER, 0, 0, 0);
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (x & 1) {
			size_t len = len_for(seq, MAXR, 7);

			rec_fill(buf, len, seq);
			rc = shk_ring_write(p, buf, len, SHK_TRY);
			if (rc == SHK_EAGAIN)
				continue;
			CHECK_OK(rc);
			CHECK(qt - qh < QN);
			q[qt++ % QN] = seq++;
		} else {
			rc = shk_ring_read(c, buf, sizeof(buf), SHK_TRY);
			if (rc == SHK_EAGAIN) {
				CHECK_EQ(qt, qh);
				continue;
			}
			CHECK(rc >= 0);
			CHECK(qh < qt);
			CHECK_EQ(rc, len_for(q[qh % QN], MAXR, 7));
			CHECK(rec_ok(buf, (size_t)rc, q[qh % QN]));
			qh++;
		}
	}
	CHECK(seq > (uint64_t)n / 4);
	shk_ring_close(c);
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
t_random_model(void)
{
	guarded("model", b_random_model);
}

/* ------------------------------------------------------------------ */
/* Stress: producer and consumer in different processes or threads     */
/* ------------------------------------------------------------------ */

struct stress {
	uint64_t cap;
	uint64_t count;
	size_t maxlen; /* 0: fixed 16-byte records (seq, check) */
	unsigned flags;
	uint64_t start;      /* initial counters */
	int blocking;        /* use SHK_FOREVER instead of spinning on EAGAIN */
	int copy;            /* shk_ring_write/read and word contents (below) */
	uint64_t max_record; /* the ring's; 0: its default */
};

static const uint64_t CHECK_K = 0x5bd1e9955bd1e995ull;

/* Contents for the copying stress: 8-byte words derived from (seq, word
 * index), the last one cut to the length; cheaper per byte than
 * rec_fill(), so that 1e7 records of up to a few hundred bytes stay fast.
 * Word 0 is seq itself. */
static void
word_fill(uint8_t *p, size_t len, uint64_t seq)
{
	size_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t w = i ? seq * CHECK_K + i : seq;

		memcpy(p + i, &w, len - i < 8 ? len - i : 8);
	}
}

static int
word_ok(const uint8_t *p, size_t len, uint64_t seq)
{
	uint8_t want[8];
	size_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t w = i ? seq * CHECK_K + i : seq;

		memcpy(want, &w, 8);
		if (memcmp(p + i, want, len - i < 8 ? len - i : 8))
			return 0;
	}
	return 1;
}

#define COPY_MAX 4096 /* largest maxlen of a copying stress */

static void
produce_copy(shk_ring *p, const struct stress *s)
{
	uint8_t buf[COPY_MAX];
	uint64_t seq;

	CHECK(s->maxlen <= sizeof(buf));
	for (seq = 0; seq < s->count; seq++) {
		size_t len = len_for(seq, s->maxlen, 99);

		word_fill(buf, len, seq);
		CHECK_OK(shk_ring_write(p, buf, len, SHK_FOREVER));
	}
	CHECK_OK(shk_ring_flush(p));
	shk_ring_close(p);
}

static void
consume_copy(shk_ring *c, const struct stress *s)
{
	uint8_t buf[COPY_MAX];
	uint64_t seq;
	int rc;

	for (seq = 0; seq < s->count; seq++) {
		rc = shk_ring_read(c, buf, sizeof(buf), SHK_FOREVER);
		if (rc < 0 || (size_t)rc != len_for(seq, s->maxlen, 99) ||
		    !word_ok(buf, (size_t)rc, seq))
			TEST_FAIL("record %llu: bad (rc %d)",
				  (unsigned long long)seq, rc);
	}
	/* nothing more: no duplicates */
	CHECK_RC(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), SHK_EAGAIN);
	shk_ring_close(c);
}

static void
produce(shk_ring *p, const struct stress *s)
{
	uint64_t seq;
	void *w;
	int rc;

	if (s->copy) {
		produce_copy(p, s);
		return;
	}
	for (seq = 0; seq < s->count; seq++) {
		size_t len = s->maxlen ? len_for(seq, s->maxlen, 99) : 16;

		while ((rc = shk_ring_reserve(p, len, &w,
					      s->blocking ? SHK_FOREVER
							  : SHK_TRY)) ==
		       SHK_EAGAIN)
			shk__cpu_relax();
		CHECK_OK(rc);
		if (s->maxlen) {
			rec_fill(w, len, seq);
		} else {
			uint64_t v[2] = { seq, seq * CHECK_K ^ 0xabcdef };
			memcpy(w, v, 16);
		}
		CHECK_OK(shk_ring_commit(p));
	}
	CHECK_OK(shk_ring_flush(p));
	shk_ring_close(p);
}

static void
consume(shk_ring *c, const struct stress *s)
{
	uint64_t seq;
	const void *pb;
	size_t n;
	int rc;

	if (s->copy) {
		consume_copy(c, s);
		return;
	}
	for (seq = 0; seq < s->count; seq++) {
		while ((rc = shk_ring_peek(c, &pb, &n,
					   s->blocking ? SHK_FOREVER
						       : SHK_TRY)) ==
		       SHK_EAGAIN)
			shk__cpu_relax();
		CHECK_OK(rc);
		if (s->maxlen) {
			if (n != len_for(seq, s->maxlen, 99) ||
			    !rec_ok(pb, n, seq))
				TEST_FAIL("record %llu: bad (len %zu)",
					  (unsigned long long)seq, n);
		} else {
			uint64_t v[2];

			CHECK_EQ(n, 16);
			memcpy(v, pb, 16);
			if (v[0] != seq || v[1] != (seq * CHECK_K ^ 0xabcdef))
				TEST_FAIL("record %llu: got seq %llu",
					  (unsigned long long)seq,
					  (unsigned long long)v[0]);
		}
		CHECK_OK(shk_ring_release(c));
	}
	/* nothing more: no duplicates */
	CHECK_RC(shk_ring_peek(c, &pb, &n, SHK_TRY), SHK_EAGAIN);
	shk_ring_close(c);
}

static void
stress_procs(const struct stress *s)
{
	shk_seg *seg = seg_create(8 << 20);
	uint64_t maxr = s->max_record;
	shk_ring *p0 = ring_open(seg, SHK_RING_PRODUCER, s->cap, maxr,
				 s->flags & SHK_RING_SPIN);
	pid_t pid;

	/* create the ring and set its counters, then hand the role over */
	CHECK_OK(shk__ring_set_pos(p0, s->start));
	shk_ring_close(p0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs = seg_attach();

		produce(ring_open(cs, SHK_RING_PRODUCER, s->cap, maxr,
				  s->flags),
			s);
		shk_seg_close(cs);
		_exit(0);
	}
	consume(ring_open(seg, SHK_RING_CONSUMER, s->cap, maxr, s->flags), s);
	CHECK_EQ(test_wait(pid), 0);
	shk_seg_close(seg);
	shk_seg_unlink(g_seg, NULL);
}

struct thr_arg {
	shk_ring *p;
	const struct stress *s;
};

static void *
producer_thread(void *arg)
{
	struct thr_arg *a = arg;

	produce(a->p, a->s);
	return NULL;
}

static void
stress_threads(const struct stress *s)
{
	shk_seg *seg = seg_create(8 << 20);
	shk_ring *p0 = ring_open(seg, SHK_RING_PRODUCER, s->cap, 0,
				 s->flags & SHK_RING_SPIN);
	struct thr_arg a = { NULL, s };
	shk_ring *c;
	pthread_t th;

	/* open both roles first: one segment handle is not meant for
	 * concurrent opens from two threads */
	CHECK_OK(shk__ring_set_pos(p0, s->start));
	shk_ring_close(p0);
	a.p = ring_open(seg, SHK_RING_PRODUCER, s->cap, 0, s->flags);
	c = ring_open(seg, SHK_RING_CONSUMER, s->cap, 0, s->flags);
	CHECK(pthread_create(&th, NULL, producer_thread, &a) == 0);
	consume(c, s);
	CHECK(pthread_join(th, NULL) == 0);
	shk_seg_close(seg);
	shk_seg_unlink(g_seg, NULL);
}

/* 1e7 small records, batched, zero-copy, across processes. */
static void
b_stress_small(void)
{
	struct stress s = { .cap = 1 << 16,
			    .flags = SHK_RING_BATCH,
			    .blocking = 1 };

	s.count = (uint64_t)test_scale(SLOW_BUILD ? 200000 : 10000000);
	s.start = (uint64_t)0 - 4 * s.cap;
	stress_procs(&s);
}

static void
t_stress_small(void)
{
	guarded("small", b_stress_small);
}

/*
 * 1e7 records of random sizes, up to the ring's max_record of 504 bytes
 * (0, tiny, near and at the maximum: len_for()), through the copying
 * calls, unbatched, in a 4 KiB ring: a record wraps behind a PAD about
 * every 16 records.
 */
static void
b_stress_random_1e7(void)
{
	struct stress s = { .cap = 4096,
			    .maxlen = 504,
			    .max_record = 504,
			    .blocking = 1,
			    .copy = 1 };

	s.count = (uint64_t)test_scale(SLOW_BUILD ? 200000 : 10000000);
	s.start = (uint64_t)0 - 4 * s.cap;
	stress_procs(&s);
}

static void
t_stress_random_1e7(void)
{
	guarded("rand7", b_stress_random_1e7);
}

/* Random sizes up to max_record in a small ring: constant wrapping. */
static void
b_stress_random(void)
{
	struct stress s = { .cap = 4096,
			    .maxlen = 4096 / 2 - 8,
			    .blocking = 1 };

	s.count = (uint64_t)test_scale(SLOW_BUILD ? 20000 : 100000);
	s.start = (uint64_t)0 - 4 * s.cap;
	stress_procs(&s);
	s.flags = SHK_RING_BATCH;
	stress_procs(&s);
}

static void
t_stress_random(void)
{
	guarded("rand", b_stress_random);
}

/* The same as threads, for ThreadSanitizer. */
static void
b_stress_threads(void)
{
	struct stress s = { .cap = 4096, .maxlen = 200 };

	s.count = (uint64_t)test_scale(SLOW_BUILD ? 20000 : 50000);
	s.start = (uint64_t)0 - 4 * s.cap;
	stress_threads(&s);
	s.flags = SHK_RING_BATCH;
	s.blocking = 1;
	s.maxlen = 0;
	s.count *= 4;
	stress_threads(&s);
	/* spin mode: blocking calls poll, publications wake nobody */
	s.flags = SHK_RING_SPIN;
	s.maxlen = 200;
	s.count /= 4;
	stress_threads(&s);
}

static void
t_stress_threads(void)
{
	guarded("thr", b_stress_threads);
}

/* ------------------------------------------------------------------ */
/* Blocking                                                            */
/* ------------------------------------------------------------------ */

static void
blocking_mode(unsigned mode)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *c = ring_open(seg, SHK_RING_CONSUMER, 1024, 0, mode);
	shk_ring *p;
	char buf[512];
	int64_t t0, dt;
	pid_t pid;

	/* a timeout returns in time (generous slack: a loaded machine) */
	t0 = test_now_ns();
	CHECK_RC(shk_ring_read(c, buf, sizeof(buf), 100000000), SHK_ETIMEDOUT);
	dt = test_now_ns() - t0;
	CHECK(dt >= 100000000 && dt < 100000000 + 250000000);

	/* a consumer blocked on an empty ring wakes when data arrives */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs = seg_attach();
		shk_ring *cp = ring_open(cs, SHK_RING_PRODUCER, 0, 0, mode);

		usleep(150000);
		CHECK_OK(shk_ring_write(cp, "wake", 4, SHK_TRY));
		/* then fill the ring and block until space frees */
		memset(buf, 'x', sizeof(buf));
		while (shk_ring_write(cp, buf, 200, SHK_TRY) == 0)
			;
		t0 = test_now_ns();
		CHECK_OK(shk_ring_write(cp, buf, 200, 5000000000LL));
		dt = test_now_ns() - t0;
		CHECK(dt >= 100000000); /* the parent waits 200 ms */
		shk_ring_close(cp);
		shk_seg_close(cs);
		_exit(0);
	}
	t0 = test_now_ns();
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), 5000000000LL), 4);
	dt = test_now_ns() - t0;
	CHECK(memcmp(buf, "wake", 4) == 0);
	CHECK(dt >= 100000000 && dt < 3000000000LL);
	/* let the producer fill up and block, then free space */
	usleep(200000);
	while (shk_ring_read(c, buf, sizeof(buf), 300000000) >= 0)
		;
	CHECK_EQ(test_wait(pid), 0);
	/* a waiting producer saw its peer die: SHK_EPEERDEAD */
	p = ring_open(seg, SHK_RING_PRODUCER, 0, 0, mode);
	shk_ring_close(c);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs = seg_attach();

		(void)ring_open(cs, SHK_RING_CONSUMER, 0, 0, mode);
		raise(SIGKILL);
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	while (shk_ring_write(p, buf, 200, SHK_TRY) == 0)
		;
	CHECK_RC(shk_ring_write(p, buf, 200, 5000000000LL), SHK_EPEERDEAD);
	/* a new consumer takes over from the dead one */
	c = ring_open(seg, SHK_RING_CONSUMER, 0, 0, mode);
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), 200);
	shk_ring_close(c);
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
b_blocking(void)
{
	blocking_mode(0);
}

static void
t_blocking(void)
{
	guarded("block", b_blocking);
}

/*
 * SHK_RING_SPIN: the mode is the ring's (an open that disagrees gets
 * SHK_ETYPE, both ways), there is no descriptor, the description shows
 * it; every blocking guarantee holds without sleeping (timeouts in time,
 * a waiting consumer sees data, a waiting producer sees space, a dead
 * peer is reported, a new consumer takes over); random sizes across
 * processes arrive intact and in order.
 */
/* Waiters on the data waitpoint of ring nm while a child consumer is
 * blocked in a 400 ms read on it (sampled after 200 ms). */
static int
blocked_waiters(shk_seg *seg, const char *nm, unsigned mode)
{
	shk_obj_info info = { .size = sizeof(info) };
	shk_ring_opts o = SHK_RING_OPTS_INIT;
	char d[256];
	const char *w;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs = seg_attach();
		shk_ring *c = NULL;
		char b[64];

		o.flags = mode;
		CHECK_OK(shk_ring_open(cs, nm, 0, SHK_RING_CONSUMER, &o, &c));
		CHECK_RC(shk_ring_read(c, b, sizeof(b), 400000000),
			 SHK_ETIMEDOUT);
		shk_ring_close(c);
		shk_seg_close(cs);
		_exit(0);
	}
	usleep(200000);
	CHECK_OK(shk_obj_stat(seg, nm, &info));
	CHECK(shk_obj_describe(seg, &info, d, sizeof(d)) > 0);
	CHECK_EQ(test_wait(pid), 0);
	w = strstr(d, "waiters=");
	CHECK(w != NULL);
	return atoi(w + 8);
}

static void
b_spin(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring_opts o = SHK_RING_OPTS_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	shk_ring *c, *r = NULL;
	struct stress st = { .cap = 4096,
			     .maxlen = 4096 / 2 - 8,
			     .blocking = 1,
			     .flags = SHK_RING_SPIN };
	char buf[256];

	o.flags = SHK_RING_SPIN;
	CHECK_OK(shk_ring_open(seg, "s", SHK_CREATE | SHK_EXCL,
			       SHK_RING_CONSUMER, &o, &c));
	CHECK_RC(shk_ring_fd(c), SHK_ENOTSUP);
	CHECK_RC(shk_ring_open(seg, "s", 0, SHK_RING_PRODUCER, NULL, &r),
		 SHK_ETYPE);
	CHECK(r == NULL);
	CHECK_RC(shk_ring_open(seg, "s", SHK_CREATE, SHK_RING_PRODUCER, NULL,
			       &r),
		 SHK_ETYPE);
	CHECK_OK(shk_obj_stat(seg, "s", &info));
	CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "mode=spin") != NULL);
	shk_ring_close(c);
	/* and a plain ring refuses a spin open */
	shk_ring_close(ring_open(seg, SHK_RING_CONSUMER, 1024, 0, 0));
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_PRODUCER, &o, &r),
		 SHK_ETYPE);
	/* a consumer blocked in a spin ring never sleeps (no waiter is
	 * counted, which is why the producer need not wake it); in a plain
	 * ring it does, past its spin budget */
	CHECK(blocked_waiters(seg, "s", SHK_RING_SPIN) == 0);
	CHECK(blocked_waiters(seg, "r", 0) == 1);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(g_seg, NULL));

	blocking_mode(SHK_RING_SPIN);
	CHECK_OK(shk_seg_unlink(g_seg, NULL));

	st.count = (uint64_t)test_scale(SLOW_BUILD ? 20000 : 100000);
	st.start = (uint64_t)0 - 4 * st.cap;
	stress_procs(&st);
}

static void
t_spin(void)
{
	guarded("spin", b_spin);
}

/* Threads: one blocked consumer woken by many single writes. */
static void *
slow_writer(void *arg)
{
	shk_ring *p = arg;
	uint64_t i;

	for (i = 0; i < 200; i++) {
		if (i % 16 == 0)
			usleep(1000);
		CHECK_OK(shk_ring_write(p, &i, sizeof(i), SHK_FOREVER));
	}
	return NULL;
}

static void
b_blocking_threads(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, 256, 0, 0);
	shk_ring *c = ring_open(seg, SHK_RING_CONSUMER, 0, 0, 0);
	pthread_t th;
	uint64_t i, v;

	CHECK(pthread_create(&th, NULL, slow_writer, p) == 0);
	for (i = 0; i < 200; i++) {
		CHECK_EQ(shk_ring_read(c, &v, sizeof(v), 5000000000LL),
			 sizeof(v));
		CHECK_EQ(v, i);
		if (i % 50 == 0)
			usleep(2000);
	}
	CHECK(pthread_join(th, NULL) == 0);
	shk_ring_close(c);
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
t_blocking_threads(void)
{
	guarded("blockthr", b_blocking_threads);
}

/* ------------------------------------------------------------------ */
/* Crash points                                                        */
/* ------------------------------------------------------------------ */

/* A producer child that writes records 0, 1, ... until SHK_CRASH kills it
 * at the nth hit of point. */
static void
crash_producer(const char *point, int nth, unsigned flags)
{
	char spec[96];
	pid_t pid;

	snprintf(spec, sizeof(spec), "%s:%d", point, nth);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs = seg_attach();
		shk_ring *p = ring_open(cs, SHK_RING_PRODUCER, 0, 0, flags);
		uint8_t buf[512];
		uint64_t seq;

		setenv("SHK_CRASH", spec, 1);
		for (seq = 0; seq < 100000; seq++) {
			size_t len = len_for(seq, 200, 5);

			rec_fill(buf, len, seq);
			int rc = shk_ring_write(p, buf, len, 2000000000LL);

			if (rc)
				TEST_FAIL("write: %s", shk_errname(rc));
		}
		_exit(2); /* never killed */
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
}

static void
b_crash_producer(void)
{
	static const struct {
		const char *point;
		unsigned flags;
	} pts[] = {
		{ "ring.reserve", 0 },
		{ "ring.commit", 0 },
		{ "ring.commit.before_publish", 0 },
		{ "ring.commit", SHK_RING_BATCH },
		{ "ring.commit.before_publish", SHK_RING_BATCH },
	};
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *c = ring_open(seg, SHK_RING_CONSUMER, 1 << 16, 0, 0);
	uint8_t buf[512];
	uint64_t base = 0;
	size_t k;
	char desc[256];
	shk_obj_info info = { .size = sizeof(info) };

	for (k = 0; k < sizeof(pts) / sizeof(pts[0]); k++) {
		/* batched, publications are rarer than commits: keep the
		 * child from filling the ring before its nth publication */
		int nths[3] = { 1, 2,
				pts[k].flags ? 3 + (int)k
					     : 2 + (int)(k * 37 % 300) };

		for (int j = 0; j < 3; j++) {
			uint64_t got = 0;
			int rc;

			crash_producer(pts[k].point, nths[j], pts[k].flags);
			CHECK_OK(shk_seg_check(seg));
			/* every published record is whole, in order; nothing
			 * else shows up */
			while ((rc = shk_ring_read(c, buf, sizeof(buf),
						   SHK_TRY)) >= 0) {
				CHECK_EQ(rc, len_for(got, 200, 5));
				CHECK(rec_ok(buf, (size_t)rc, got));
				got++;
			}
			CHECK_RC(rc, SHK_EAGAIN);
			/* what exactly was published: in unbatched mode all
			 * commits before the fatal one; batched, at most
			 * that */
			if (!strcmp(pts[k].point, "ring.reserve"))
				CHECK_EQ(got, (uint64_t)nths[j] - 1);
			else if (!pts[k].flags)
				CHECK_EQ(got, (uint64_t)nths[j] - 1);
			else if (!strcmp(pts[k].point, "ring.commit"))
				CHECK(got <= (uint64_t)nths[j] - 1);
			else /* nth publication: earlier ones, not this */
				CHECK(got >= (uint64_t)nths[j] - 1);
			base += got;
		}
	}
	CHECK(base > 0);
	/* the dead producer's role was taken over each time; a live one
	 * after the last crash works as well */
	CHECK_OK(shk_obj_stat(seg, "r", &info));
	CHECK(shk_obj_describe(seg, &info, desc, sizeof(desc)) > 0);
	CHECK(strstr(desc, "producer=dead") != NULL);
	shk_ring_close(c);
	shk_seg_close(seg);
}

static void
t_crash_producer(void)
{
	guarded("crashp", b_crash_producer);
}

static void
b_crash_consumer(void)
{
	static const char *const pts[] = {
		"ring.peek",
		"ring.release",
		"ring.release.before_publish",
	};
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, 1 << 16, 0, 0);
	uint8_t buf[512];
	uint64_t wseq = 0, rseq = 0;
	size_t k;

	for (k = 0; k < 3; k++) {
		int nths[3] = { 1, 2, 2 + (int)(k * 53 % 100) };

		for (int j = 0; j < 3; j++) {
			char spec[96];
			pid_t pid;
			int rc;

			/* enough records for the child */
			while (wseq < rseq + 200) {
				size_t len = len_for(wseq, 200, 5);

				rec_fill(buf, len, wseq);
				CHECK_OK(shk_ring_write(p, buf, len, SHK_TRY));
				wseq++;
			}
			snprintf(spec, sizeof(spec), "%s:%d", pts[k], nths[j]);
			pid = fork();
			CHECK(pid >= 0);
			if (pid == 0) {
				shk_seg *cs = seg_attach();
				shk_ring *c = ring_open(cs, SHK_RING_CONSUMER,
							0, 0, 0);
				setenv("SHK_CRASH", spec, 1);
				while (shk_ring_read(c, buf, sizeof(buf),
						     SHK_TRY) >= 0)
					;
				_exit(2);
			}
			CHECK_EQ(test_wait(pid), 128 + SIGKILL);
			/* the replacement consumer resumes exactly after
			 * the last published release: nth - 1 records */
			{
				shk_ring *c = NULL;
				uint64_t first = rseq + (uint64_t)nths[j] - 1;

				CHECK_OK(shk_ring_open(seg, "r", 0,
						       SHK_RING_CONSUMER, NULL,
						       &c));
				rc = shk_ring_read(c, buf, sizeof(buf),
						   SHK_TRY);
				CHECK_EQ(rc, len_for(first, 200, 5));
				CHECK(rec_ok(buf, (size_t)rc, first));
				rseq = first + 1;
				shk_ring_close(c);
			}
		}
	}
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
t_crash_consumer(void)
{
	guarded("crashc", b_crash_consumer);
}

/*
 * A consumer SIGKILLed while asleep in a read leaves the data waitpoint's
 * waiter count at 1.  The producer's first publication after that finds
 * nobody to wake and takes the count back (wait.h, Holders), so the
 * publications after it make no system call; before, the count stayed 1
 * and every publication made a FUTEX_WAKE for good.  A new consumer then
 * reads everything.
 */
static void
b_dead_sleeper(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, 4096, 0, 0), *c;
	shk_ring_stats st = { .size = sizeof(st) };
	uint64_t v;
	pid_t pid;
	int i;

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs = seg_attach();
		shk_ring *cr = ring_open(cs, SHK_RING_CONSUMER, 0, 0, 0);

		setenv("SHK_SPIN_NS", "0", 1);
		shk_ring_read(cr, &v, sizeof(v), SHK_FOREVER);
		_exit(3);
	}
	for (i = 0; i < 5000; i++) {
		CHECK_OK(shk_ring_stat(p, &st));
		if (st.waiters == 1)
			break;
		usleep(1000);
	}
	CHECK_EQ(st.waiters, 1);
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	for (v = 0; v < 10; v++)
		CHECK_OK(shk_ring_write(p, &v, sizeof(v), 0));
	CHECK_OK(shk_ring_stat(p, &st));
	CHECK_EQ(st.waiters, 0);
	c = ring_open(seg, SHK_RING_CONSUMER, 0, 0, 0);
	for (i = 0; i < 10; i++) {
		CHECK_EQ(shk_ring_read(c, &v, sizeof(v), 0), (int)sizeof(v));
		CHECK_EQ(v, (uint64_t)i);
	}
	shk_ring_close(c);
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
t_dead_sleeper(void)
{
	guarded("deadsl", b_dead_sleeper);
}

/* Random-time SIGKILL of a producer, then a replacement continues. */
static void
b_kill_random(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *c = ring_open(seg, SHK_RING_CONSUMER, 4096, 0, 0);
	uint8_t buf[4096];
	uint64_t expect = 0;
	int round, rc;

	for (round = 0; round < 5; round++) {
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			shk_seg *cs = seg_attach();
			shk_ring *p = ring_open(cs, SHK_RING_PRODUCER, 0, 0,
						round & 1 ? SHK_RING_BATCH : 0);
			uint64_t seq = expect;

			for (;;) {
				size_t len = len_for(seq, 2040, 11);

				rec_fill(buf, len, seq);
				if (shk_ring_write(p, buf, len, SHK_FOREVER))
					_exit(3);
				seq++;
			}
		}
		/* consume while it runs, then kill it at a random time */
		for (int i = 0; i < 200 + round * 300; i++) {
			int dead = 0;

			/* until the new child claims the producer role, the
			 * role still names the killed one: SHK_EPEERDEAD */
			while ((rc = shk_ring_read(c, buf, sizeof(buf),
						   2000000000LL)) ==
				       SHK_EPEERDEAD &&
			       dead++ < 5000)
				usleep(1000);
			CHECK(rc >= 0);
			CHECK_EQ(rc, len_for(expect, 2040, 11));
			CHECK(rec_ok(buf, (size_t)rc, expect));
			expect++;
		}
		kill(pid, SIGKILL);
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		while ((rc = shk_ring_read(c, buf, sizeof(buf), SHK_TRY)) >=
		       0) {
			CHECK_EQ(rc, len_for(expect, 2040, 11));
			CHECK(rec_ok(buf, (size_t)rc, expect));
			expect++;
		}
		CHECK_RC(rc, SHK_EAGAIN);
	}
	shk_ring_close(c);
	shk_seg_close(seg);
}

static void
t_kill_random(void)
{
	guarded("killrand", b_kill_random);
}

/* ------------------------------------------------------------------ */
/* Corruption                                                          */
/* ------------------------------------------------------------------ */

static void
b_corrupt(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, 1024, 0, 0);
	shk_ring *c = ring_open(seg, SHK_RING_CONSUMER, 0, 0, 0);
	shk_ring *x = NULL;
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__ring_hdr *h;
	uint8_t *data;
	char buf[600];
	const void *pb;
	size_t n;
	uint64_t t;

	CHECK_OK(shk_obj_stat(seg, "r", &info));
	h = (struct shk__ring_hdr *)((uint8_t *)shk_seg_base(seg) + info.off);
	data = (uint8_t *)h + SHK__RING_DATA_OFF;
	/* a record header with a length past max_record */
	CHECK_OK(shk_ring_write(p, "abcdefgh", 8, SHK_TRY));
	memcpy(data, &(uint32_t){ 5000 }, 4);
	CHECK_RC(shk_ring_peek(c, &pb, &n, SHK_TRY), SHK_ECORRUPT);
	/* longer than what was published */
	memcpy(data, &(uint32_t){ 16 }, 4);
	CHECK_RC(shk_ring_peek(c, &pb, &n, SHK_TRY), SHK_ECORRUPT);
	/* an unknown type */
	memcpy(data, &(uint32_t){ 8 }, 4);
	memcpy(data + 4, &(uint32_t){ 77 }, 4);
	CHECK_RC(shk_ring_peek(c, &pb, &n, SHK_TRY), SHK_ECORRUPT);
	memcpy(data + 4, &(uint32_t){ SHK__REC_DATA }, 4);
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), 8);
	/* tail beyond head + cap: the consumer's reload and a fresh open */
	t = atomic_load_explicit(&h->tail, memory_order_relaxed);
	atomic_store_explicit(&h->tail, t + 4096, memory_order_relaxed);
	CHECK_RC(shk_ring_peek(c, &pb, &n, SHK_TRY), SHK_ECORRUPT);
	shk_ring_close(c);
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL, &x),
		 SHK_ECORRUPT);
	CHECK(x == NULL);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	/* misaligned tail */
	atomic_store_explicit(&h->tail, t + 4, memory_order_relaxed);
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL, &x),
		 SHK_ECORRUPT);
	atomic_store_explicit(&h->tail, t, memory_order_relaxed);
	CHECK_OK(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL, &x));
	shk_ring_close(x);
	/* a bad geometry field */
	h->cap = 1000;
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL, &x),
		 SHK_ECORRUPT);
	h->cap = 1024;
	h->max_record = 1024;
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL, &x),
		 SHK_ECORRUPT);
	h->max_record = 1024 / 2 - 8;
	/* a PAD that does not reach the end */
	c = NULL;
	CHECK_OK(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL, &c));
	{
		uint64_t pos =
			atomic_load_explicit(&h->tail, memory_order_relaxed);
		uint8_t *rec = data + (pos & 1023);

		CHECK_OK(shk_ring_write(p, "12345678", 8, SHK_TRY));
		memcpy(rec, &(uint32_t){ 0 }, 4);
		memcpy(rec + 4, &(uint32_t){ SHK__REC_PAD }, 4);
		CHECK_RC(shk_ring_peek(c, &pb, &n, SHK_TRY), SHK_ECORRUPT);
	}
	shk_ring_close(c);
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
t_corrupt(void)
{
	guarded("corrupt", b_corrupt);
}

static void
b_describe(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p = ring_open(seg, SHK_RING_PRODUCER, 1024, 100, 0);
	shk_obj_info info = { .size = sizeof(info) };
	char d[256];

	CHECK_OK(shk_ring_write(p, "abc", 3, SHK_TRY));
	CHECK_OK(shk_obj_stat(seg, "r", &info));
	CHECK_EQ(info.cap, 1024);
	CHECK_EQ(info.elem_len, 100);
	CHECK(shk_obj_describe(seg, &info, d, sizeof(d)) > 0);
	if (!strstr(d, "fill=16/1024") || !strstr(d, "producer=alive") ||
	    !strstr(d, "consumer=none") || !strstr(d, "max_record=100"))
		TEST_FAIL("describe: %s", d);
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
t_describe(void)
{
	guarded("desc", b_describe);
}

/* The consumer's descriptor polls readable when data arrives from another
 * process, and not while the ring is empty. */
static void
b_fd(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *c = ring_open(seg, SHK_RING_CONSUMER, 1024, 0, 0);
	struct pollfd pfd;
	char buf[64];
	int i, fd;
	pid_t pid;

	fd = shk_ring_fd(c);
	CHECK(fd >= 0);
	CHECK_EQ(shk_ring_fd(c), fd);
	pfd.fd = fd;
	pfd.events = POLLIN;
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs = seg_attach();
		shk_ring *p = ring_open(cs, SHK_RING_PRODUCER, 0, 0, 0);

		for (i = 0; i < 3; i++) {
			usleep(50000);
			CHECK_OK(shk_ring_write(p, &i, sizeof(i), SHK_TRY));
		}
		shk_ring_close(p);
		shk_seg_close(cs);
		_exit(0);
	}
	for (i = 0; i < 3; i++) {
		int v, n;

		CHECK_EQ(poll(&pfd, 1, 5000), 1);
		while ((n = shk_ring_read(c, &v, sizeof(v), SHK_TRY)) ==
		       (int)sizeof(v)) {
			CHECK_EQ(v, i);
			i++;
		}
		CHECK_RC(n, SHK_EAGAIN);
		i--;
	}
	CHECK_EQ(test_wait(pid), 0);
	CHECK_RC(shk_ring_read(c, buf, sizeof(buf), SHK_TRY), SHK_EAGAIN);
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	shk_ring_close(c);
	shk_seg_close(seg);
}

static void
t_fd(void)
{
	guarded("fd", b_fd);
}

/* ------------------------------------------------------------------ */
/* Fork                                                                */
/* ------------------------------------------------------------------ */

/*
 * A forked child closing its copies of the parent's handles (fork policy:
 * the one call it may make on them) leaves the parent's roles and
 * positions alone.  The BATCH producer holds a record it has not
 * published when it forks; the parent then writes and flushes to tail 80
 * (records of 8 bytes: 16 each); the child closes its producer, consumer
 * and segment handles and exits.  Before the fix the child's close
 * flushed its stale pos (tail back to 32) and released both roles.
 */
static void
b_fork_close(void)
{
	shk_seg *seg = seg_create(1 << 20);
	shk_ring *p =
		ring_open(seg, SHK_RING_PRODUCER, 4096, 0, SHK_RING_BATCH);
	shk_ring *c =
		ring_open(seg, SHK_RING_CONSUMER, 4096, 0, SHK_RING_BATCH);
	shk_ring_stats st = { .size = sizeof(st) };
	uint64_t v, i;
	shk_ring *x;
	int fds[2];
	char b;
	pid_t pid;

	for (i = 0; i < 2; i++)
		CHECK_OK(shk_ring_write(p, &i, sizeof(i), 0));
	/* the first was published (the consumer had caught up), the
	 * second is pending */
	CHECK_OK(shk_ring_stat(p, &st));
	CHECK_EQ(st.tail, 16);
	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (read(fds[0], &b, 1) != 1)
			_exit(2);
		shk_ring_close(p);
		shk_ring_close(c);
		shk_seg_close(seg);
		_exit(0);
	}
	for (; i < 5; i++)
		CHECK_OK(shk_ring_write(p, &i, sizeof(i), 0));
	CHECK_OK(shk_ring_flush(p));
	CHECK_OK(shk_ring_stat(p, &st));
	CHECK_EQ(st.tail, 80);
	CHECK(write(fds[1], "x", 1) == 1);
	CHECK_EQ(test_wait(pid), 0);
	close(fds[0]);
	close(fds[1]);
	/* the parent's tail and roles are intact */
	CHECK_OK(shk_ring_stat(p, &st));
	CHECK_EQ(st.tail, 80);
	CHECK_EQ(st.head, 0);
	CHECK(st.producer && st.consumer);
	x = NULL;
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_PRODUCER, NULL, &x),
		 SHK_EBUSY);
	CHECK_RC(shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, NULL, &x),
		 SHK_EBUSY);
	CHECK(x == NULL);
	/* and every record arrives, in order */
	for (i = 0; i < 5; i++) {
		CHECK_EQ(shk_ring_read(c, &v, sizeof(v), 0), sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_RC(shk_ring_read(c, &v, sizeof(v), 0), SHK_EAGAIN);
	shk_ring_close(c);
	shk_ring_close(p);
	shk_seg_close(seg);
}

static void
t_fork_close(void)
{
	guarded("forkclose", b_fork_close);
}

TEST_MAIN({ "fd", t_fd }, { "basic", t_basic }, { "lengths", t_lengths },
	  { "wrong_kind", t_wrong_kind }, { "geometry", t_geometry },
	  { "random_model", t_random_model },
	  { "stress_small_1e7", t_stress_small },
	  { "stress_random", t_stress_random },
	  { "stress_random_1e7", t_stress_random_1e7 },
	  { "stress_threads", t_stress_threads }, { "blocking", t_blocking },
	  { "blocking_threads", t_blocking_threads },
	  { "crash_producer", t_crash_producer },
	  { "crash_consumer", t_crash_consumer },
	  { "kill_random", t_kill_random }, { "corrupt", t_corrupt },
	  { "describe", t_describe }, { "spin", t_spin },
	  { "dead_sleeper", t_dead_sleeper }, { "fork_close", t_fork_close })
