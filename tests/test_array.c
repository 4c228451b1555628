/* test_array.c - arrays: sharing, atomic counters, CAS, bounds, types. */
#include "harness.h"

#include <pthread.h>

#include "platform.h"

#if defined(__SANITIZE_ADDRESS__) || defined(SHK__TSAN)
#define SCALE_DOWN 10
#else
#define SCALE_DOWN 1
#endif

#define NPROC 4

/* Runs body(name) in a child and always unlinks the segment afterwards,
 * whatever happened to the child or its own children. */
static void
with_seg(const char *tag, void (*body)(const char *nm))
{
	char nm[64];
	pid_t pid;
	int rc;

	test_name(nm, sizeof(nm), tag);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		body(nm);
		test_leak_check(); /* the body's process, not the case's */
		_exit(0);
	}
	rc = test_wait(pid);
	shk_seg_unlink(nm, NULL);
	CHECK_EQ(rc, 0);
}

static shk_array *
open_arr(shk_seg *seg, uint32_t elem_len, uint64_t len)
{
	shk_array_opts o = SHK_ARRAY_OPTS_INIT;
	shk_array *a = NULL;

	o.elem_len = elem_len;
	o.len = len;
	o.type_id = 0x1234;
	CHECK_OK(shk_array_open(seg, "arr", SHK_CREATE, &o, &a));
	CHECK(a != NULL);
	return a;
}

static void
b_basic(const char *nm)
{
	shk_seg *seg = NULL;
	shk_array *a, *b = NULL;
	uint32_t v32 = 0;
	uint64_t v64 = 0;
	shk_array_opts o = SHK_ARRAY_OPTS_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	char line[128];

	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	a = open_arr(seg, 4, 100);
	CHECK_EQ(shk_array_len(a), 100);
	CHECK_EQ(shk_array_elem_len(a), 4);
	CHECK(((uintptr_t)shk_array_data(a) % 64) == 0);
	/* zero-filled on create */
	CHECK_OK(shk_array_load_u32(a, 99, &v32));
	CHECK_EQ(v32, 0);
	CHECK_OK(shk_array_store_u32(a, 7, 77));
	CHECK_EQ(((uint32_t *)shk_array_data(a))[7], 77);
	/* bounds */
	CHECK_RC(shk_array_load_u32(a, 100, &v32), SHK_ERANGE);
	CHECK_RC(shk_array_store_u32(a, UINT64_MAX, 1), SHK_ERANGE);
	CHECK_RC(shk_array_fetch_add_u32(a, 100, 1, NULL), SHK_ERANGE);
	CHECK_RC(shk_array_cas_u32(a, 1000, &v32, 1), SHK_ERANGE);
	/* width must match elem_len */
	CHECK_RC(shk_array_load_u64(a, 0, &v64), SHK_ETYPE);
	CHECK_RC(shk_array_store_u64(a, 0, 1), SHK_ETYPE);
	CHECK_RC(shk_array_cas_u64(a, 0, &v64, 1), SHK_ETYPE);
	CHECK_RC(shk_array_fetch_add_u64(a, 0, 1, NULL), SHK_ETYPE);
	/* bad arguments */
	CHECK_RC(shk_array_load_u32(NULL, 0, &v32), SHK_EINVAL);
	CHECK_RC(shk_array_load_u32(a, 0, NULL), SHK_EINVAL);
	CHECK_RC(shk_array_cas_u32(a, 0, NULL, 1), SHK_EINVAL);
	CHECK(shk_array_data(NULL) == NULL);
	CHECK_EQ(shk_array_len(NULL), 0);
	shk_array_close(NULL);
	o.size = 0;
	CHECK_RC(shk_array_open(seg, "x", SHK_CREATE, &o, &b), SHK_EINVAL);
	CHECK(b == NULL);
	/* an older caller's shorter struct (STYLE B3): the fields past its
	 * size are not read, so type_id stays 0 */
	{
		shk_array_opts s = SHK_ARRAY_OPTS_INIT;
		shk_array *c = NULL;

		s.size = offsetof(shk_array_opts, type_id);
		s.elem_len = 4;
		s.len = 10;
		s.type_id = 99;
		CHECK_OK(shk_array_open(seg, "short", SHK_CREATE, &s, &c));
		shk_array_close(c);
		s.size = sizeof(s);
		CHECK_RC(shk_array_open(seg, "short", 0, &s, &c), SHK_ETYPE);
		s.type_id = 0;
		CHECK_OK(shk_array_open(seg, "short", 0, &s, &c));
		CHECK_EQ(shk_array_len(c), 10);
		shk_array_close(c);
	}
	/* create needs a size */
	o.size = sizeof(o);
	CHECK_RC(shk_array_open(seg, "x", SHK_CREATE, &o, &b), SHK_EINVAL);
	CHECK_RC(shk_array_open(seg, "nope", 0, &o, &b), SHK_ENOENT);
	/* open as stored: zero len/elem_len accept */
	o.type_id = 0x1234;
	CHECK_OK(shk_array_open(seg, "arr", 0, &o, &b));
	CHECK_EQ(shk_array_len(b), 100);
	CHECK_OK(shk_array_load_u32(b, 7, &v32));
	CHECK_EQ(v32, 77);
	shk_array_close(b);
	/* wrong element size, length, type or kind */
	o.elem_len = 8;
	CHECK_RC(shk_array_open(seg, "arr", 0, &o, &b), SHK_ETYPE);
	CHECK(b == NULL);
	o.elem_len = 4;
	o.len = 99;
	CHECK_RC(shk_array_open(seg, "arr", SHK_CREATE, &o, &b), SHK_ETYPE);
	o.len = 0;
	o.type_id = 0x1235;
	CHECK_RC(shk_array_open(seg, "arr", 0, &o, &b), SHK_ETYPE);
	CHECK_RC(shk_array_open(seg, "arr", 0, NULL, &b), SHK_ETYPE);
	o.type_id = 0x1234;
	CHECK_RC(shk_array_open(seg, "arr", SHK_CREATE | SHK_EXCL, &o, &b),
		 SHK_EEXIST);
	/* describe for `shmkit info` */
	CHECK_OK(shk_obj_stat(seg, "arr", &info));
	CHECK_EQ(info.kind, SHK_KIND_ARRAY);
	CHECK(shk_obj_describe(seg, &info, line, sizeof(line)) > 0);
	CHECK(strstr(line, "len=100") != NULL);
	CHECK(strstr(line, "elem_len=4") != NULL);
	CHECK_OK(shk_seg_check(seg));
	shk_array_close(a);
	shk_seg_close(seg);
}

static void
t_basic(void)
{
	with_seg("arr-basic", b_basic);
}

static void
b_cas(const char *nm)
{
	shk_seg *seg = NULL;
	shk_array *a, *b;
	uint32_t e32;
	uint64_t e64, old = 0;

	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	a = open_arr(seg, 4, 4);
	e32 = 0;
	CHECK_EQ(shk_array_cas_u32(a, 1, &e32, 5), 1);
	CHECK_EQ(shk_array_cas_u32(a, 1, &e32, 6), 0);
	CHECK_EQ(e32, 5); /* the current value comes back */
	CHECK_EQ(shk_array_cas_u32(a, 1, &e32, 6), 1);
	CHECK_OK(shk_array_load_u32(a, 1, &e32));
	CHECK_EQ(e32, 6);
	shk_array_close(a);

	{
		shk_array_opts o = SHK_ARRAY_OPTS_INIT;

		o.elem_len = 8;
		o.len = 2;
		CHECK_OK(shk_array_open(seg, "a64", SHK_CREATE, &o, &b));
	}
	e64 = 0;
	CHECK_EQ(shk_array_cas_u64(b, 0, &e64, UINT64_MAX), 1);
	e64 = 1;
	CHECK_EQ(shk_array_cas_u64(b, 0, &e64, 2), 0);
	CHECK(e64 == UINT64_MAX);
	/* fetch_add wraps modulo 2^64 and returns the old value */
	CHECK_OK(shk_array_fetch_add_u64(b, 0, 2, &old));
	CHECK(old == UINT64_MAX);
	CHECK_OK(shk_array_load_u64(b, 0, &e64));
	CHECK_EQ(e64, 1);
	CHECK_OK(shk_array_fetch_add_u64(b, 0, (uint64_t)-1, NULL));
	CHECK_OK(shk_array_load_u64(b, 0, &e64));
	CHECK_EQ(e64, 0);
	CHECK_OK(shk_array_store_u64(b, 1, 0x0123456789abcdefULL));
	CHECK_OK(shk_array_load_u64(b, 1, &e64));
	CHECK(e64 == 0x0123456789abcdefULL);
	shk_array_close(b);
	shk_seg_close(seg);
}

static void
t_cas(void)
{
	with_seg("arr-cas", b_cas);
}

/* Two processes: each sees the other's stores (flag + payload). */
static void
b_two_procs(const char *nm)
{
	shk_seg *seg = NULL;
	shk_array *a;
	pid_t pid;
	uint64_t v = 0;
	int i, n = 200 / SCALE_DOWN;

	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	a = open_arr(seg, 8, 64);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *s2 = NULL;
		shk_array *c = NULL;

		CHECK_OK(shk_seg_open(nm, 0, NULL, &s2));
		c = open_arr(s2, 8, 64);
		/* ping-pong: element 0 is the turn counter, 1..63 payload */
		for (i = 0; i < n; i++) {
			uint64_t turn, j, *d = shk_array_data(c);

			do {
				CHECK_OK(shk_array_load_u64(c, 0, &turn));
			} while (turn != (uint64_t)(2 * i + 1));
			for (j = 1; j < 64; j++)
				CHECK_EQ(d[j], (uint64_t)i * 1000 + j);
			CHECK_OK(shk_array_store_u64(c, 0, 2 * i + 2));
		}
		shk_array_close(c);
		shk_seg_close(s2);
		_exit(0);
	}
	for (i = 0; i < n; i++) {
		uint64_t j, *d = shk_array_data(a);

		/* plain writes, published by the release store below */
		for (j = 1; j < 64; j++)
			d[j] = (uint64_t)i * 1000 + j;
		CHECK_OK(shk_array_store_u64(a, 0, 2 * i + 1));
		do {
			CHECK_OK(shk_array_load_u64(a, 0, &v));
		} while (v != (uint64_t)(2 * i + 2));
	}
	CHECK_EQ(test_wait(pid), 0);
	shk_array_close(a);
	shk_seg_close(seg);
}

static void
t_two_procs(void)
{
	with_seg("arr-two", b_two_procs);
}

/* NPROC processes x n fetch_adds (and CAS increments) on shared counters. */
static void
counter_worker(const char *nm, int id, long n)
{
	shk_seg *seg = NULL;
	shk_array *a32 = NULL, *a64 = NULL;
	shk_array_opts o = SHK_ARRAY_OPTS_INIT;
	long i;

	CHECK_OK(shk_seg_open(nm, 0, NULL, &seg));
	o.type_id = 32;
	CHECK_OK(shk_array_open(seg, "c32", 0, &o, &a32));
	o.type_id = 64;
	CHECK_OK(shk_array_open(seg, "c64", 0, &o, &a64));
	for (i = 0; i < n; i++) {
		uint64_t e;

		CHECK_OK(shk_array_fetch_add_u32(a32, 0, 1, NULL));
		CHECK_OK(
			shk_array_fetch_add_u64(a64, (uint64_t)i & 3, 3, NULL));
		/* CAS loop increment of element 4 */
		CHECK_OK(shk_array_load_u64(a64, 4, &e));
		while (shk_array_cas_u64(a64, 4, &e, e + 1) == 0)
			;
		CHECK_OK(shk_array_fetch_add_u32(a32, 1 + (uint64_t)id, 1,
						 NULL));
	}
	shk_array_close(a32);
	shk_array_close(a64);
	shk_seg_close(seg);
}

static void
create_counters(shk_seg *seg, shk_array **a32, shk_array **a64)
{
	shk_array_opts o = SHK_ARRAY_OPTS_INIT;

	o.elem_len = 4;
	o.len = 1 + NPROC;
	o.type_id = 32;
	CHECK_OK(shk_array_open(seg, "c32", SHK_CREATE, &o, a32));
	o.elem_len = 8;
	o.len = 5;
	o.type_id = 64;
	CHECK_OK(shk_array_open(seg, "c64", SHK_CREATE, &o, a64));
	/* start the 64-bit counters near 2^64 to cross the wrap */
	CHECK_OK(shk_array_store_u64(*a64, 4, UINT64_MAX - 100));
}

static void
check_counters(shk_array *a32, shk_array *a64, long n, int nw)
{
	uint64_t sum = 0, v, e;
	uint32_t c;
	int i;

	CHECK_OK(shk_array_load_u32(a32, 0, &c));
	CHECK_EQ(c, n * nw);
	for (i = 0; i < nw; i++) {
		CHECK_OK(shk_array_load_u32(a32, 1 + (uint64_t)i, &c));
		CHECK_EQ(c, n);
	}
	for (i = 0; i < 4; i++) {
		CHECK_OK(shk_array_load_u64(a64, (uint64_t)i, &v));
		sum += v;
	}
	CHECK_EQ(sum, 3 * n * nw);
	CHECK_OK(shk_array_load_u64(a64, 4, &v));
	e = UINT64_MAX - 100 + (uint64_t)(n * nw);
	CHECK(v == e);
}

static void
b_counters_procs(const char *nm)
{
	shk_seg *seg = NULL;
	shk_array *a32 = NULL, *a64 = NULL;
	pid_t pids[NPROC];
	long n = 200000 / SCALE_DOWN;
	int i;

	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	create_counters(seg, &a32, &a64);
	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0);
		if (pids[i] == 0) {
			counter_worker(nm, i, n);
			_exit(0);
		}
	}
	for (i = 0; i < NPROC; i++)
		CHECK_EQ(test_wait(pids[i]), 0);
	check_counters(a32, a64, n, NPROC);
	shk_array_close(a32);
	shk_array_close(a64);
	shk_seg_close(seg);
}

static void
t_counters_procs(void)
{
	with_seg("arr-cnt", b_counters_procs);
}

/* The same as threads, each with its own segment handle (TSan sees it). */
struct targ {
	const char *nm;
	int id;
	long n;
};

static void *
counter_thread(void *p)
{
	struct targ *t = p;

	counter_worker(t->nm, t->id, t->n);
	return NULL;
}

static void
b_counters_threads(const char *nm)
{
	shk_seg *seg = NULL;
	shk_array *a32 = NULL, *a64 = NULL;
	pthread_t th[NPROC];
	struct targ ta[NPROC];
	long n = 100000 / SCALE_DOWN;
	int i;

	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	create_counters(seg, &a32, &a64);
	for (i = 0; i < NPROC; i++) {
		ta[i].nm = nm;
		ta[i].id = i;
		ta[i].n = n;
		CHECK(pthread_create(&th[i], NULL, counter_thread, &ta[i]) ==
		      0);
	}
	for (i = 0; i < NPROC; i++)
		pthread_join(th[i], NULL);
	check_counters(a32, a64, n, NPROC);
	shk_array_close(a32);
	shk_array_close(a64);
	shk_seg_close(seg);
}

static void
t_counters_threads(void)
{
	with_seg("arr-thr", b_counters_threads);
}

/* A damaged header is SHK_ECORRUPT on open and in shk_seg_check. */
static void
b_corrupt(const char *nm)
{
	shk_seg *seg = NULL;
	shk_array *a, *b = NULL;
	shk_obj_info info = { .size = sizeof(info) };
	uint32_t *hdr;

	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &seg));
	a = open_arr(seg, 4, 16);
	CHECK_OK(shk_obj_stat(seg, "arr", &info));
	hdr = (uint32_t *)((uint8_t *)shk_seg_base(seg) + info.off);
	hdr[1] = 1000; /* elem_len */
	CHECK_RC(shk_array_open(seg, "arr", 0, NULL, &b), SHK_ETYPE);
	{
		shk_array_opts o = SHK_ARRAY_OPTS_INIT;

		o.type_id = 0x1234;
		CHECK_RC(shk_array_open(seg, "arr", 0, &o, &b), SHK_ECORRUPT);
	}
	CHECK(b == NULL);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	hdr[1] = 4;
	hdr[0] = 0; /* magic */
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	hdr[0] = 0x59524141u;
	CHECK_OK(shk_seg_check(seg));
	shk_array_close(a);
	shk_seg_close(seg);
}

static void
t_corrupt(void)
{
	with_seg("arr-bad", b_corrupt);
}

TEST_MAIN({ "basic", t_basic }, { "cas", t_cas }, { "two_procs", t_two_procs },
	  { "counters_procs", t_counters_procs },
	  { "counters_threads", t_counters_threads }, { "corrupt", t_corrupt })
