/*
 * test_alloc.c - the library's allocations failing, one at a time: a
 * create that fails leaves nothing behind (shmkit.h: "on failure *out is
 * NULL and nothing leaks"), so that a retry with SHK_EXCL succeeds.  Each
 * case sweeps the failure over the 1st, 2nd, ... allocation of one call
 * until the call no longer reaches it.  The Makefile links this suite
 * with -Wl,--wrap for malloc, calloc and aligned_alloc: the library's
 * calls come to the wrappers below, which pass on to the real ones
 * (whatever a sanitizer or valgrind put there) unless armed.
 */
#include "harness.h"

#include <dirent.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_aligned_alloc(size_t a, size_t n);

/* 0: off; n: the nth allocation after arm() fails (once).  The cases are
 * single-threaded. */
static int fail_at, ncalls;

static int
fail_now(void)
{
	if (!fail_at || ++ncalls != fail_at)
		return 0;
	fail_at = 0;
	errno = ENOMEM;
	return 1;
}

void *
__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	return fail_now() ? NULL : __real_calloc(n, m);
}

void *
__wrap_aligned_alloc(size_t a, size_t n)
{
	return fail_now() ? NULL : __real_aligned_alloc(a, n);
}

static void
arm(int n)
{
	ncalls = 0;
	fail_at = n;
}

/* Disarms; 1 when the armed allocation was reached (and failed). */
static int
disarm(void)
{
	int hit = fail_at == 0;

	fail_at = 0;
	return hit;
}

static int
nfds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static int
nobjects(shk_seg *s)
{
	shk_obj_info info = { .size = sizeof(info) };
	uint32_t cur = 0;
	int n = 0;

	while (shk_obj_next(s, &cur, &info) == 1)
		n++;
	return n;
}

enum kind {
	K_RING,
	K_QUEUE,
	K_ARRAY,
	K_BCAST,
	K_MAP,
	K_POOL,
	K_STACK,
	K_MUTEX,
	K_SEM,
	K_EVENT,
	K_N
};

/* Creates object "o" of kind k with SHK_EXCL and closes its handle. */
static int
create_excl(shk_seg *s, enum kind k)
{
	const unsigned f = SHK_CREATE | SHK_EXCL;
	void *h = NULL;
	int rc;

	switch (k) {
	case K_RING: {
		shk_ring_opts o = SHK_RING_OPTS_INIT;

		o.cap = 4096;
		rc = shk_ring_open(s, "o", f, SHK_RING_PRODUCER, &o,
				   (shk_ring **)&h);
		shk_ring_close(h);
		break;
	}
	case K_QUEUE:
		rc = shk_queue_open(s, "o", f, NULL, (shk_queue **)&h);
		shk_queue_close(h);
		break;
	case K_ARRAY: {
		shk_array_opts o = SHK_ARRAY_OPTS_INIT;

		o.elem_len = 8;
		o.len = 16;
		rc = shk_array_open(s, "o", f, &o, (shk_array **)&h);
		shk_array_close(h);
		break;
	}
	case K_BCAST:
		rc = shk_bcast_open(s, "o", f, SHK_BCAST_WRITER, NULL,
				    (shk_bcast **)&h);
		shk_bcast_close(h);
		break;
	case K_MAP: {
		shk_map_opts o = SHK_MAP_OPTS_INIT;

		o.key_len = 8;
		o.val_len = 8;
		o.cap = 64;
		rc = shk_map_open(s, "o", f, &o, (shk_map **)&h);
		shk_map_close(h);
		break;
	}
	case K_POOL:
		rc = shk_pool_open(s, "o", f, NULL, (shk_pool **)&h);
		shk_pool_close(h);
		break;
	case K_STACK:
		rc = shk_stack_open(s, "o", f, NULL, (shk_stack **)&h);
		shk_stack_close(h);
		break;
	case K_MUTEX:
		rc = shk_mutex_open(s, "o", f, NULL, (shk_mutex **)&h);
		shk_mutex_close(h);
		break;
	case K_SEM:
		rc = shk_sem_open(s, "o", f, NULL, (shk_sem **)&h);
		shk_sem_close(h);
		break;
	default:
		rc = shk_event_open(s, "o", f, NULL, (shk_event **)&h);
		shk_event_close(h);
		break;
	}
	return rc;
}

/*
 * Every kind, created with SHK_EXCL while its nth allocation fails: the
 * object is not there afterwards, so the next try (the next n) does not
 * get SHK_EEXIST.  The handle was allocated after the object was made,
 * and a failure there left the object.
 */
static void
t_objects_excl(void)
{
	char nm[64];
	shk_seg *s = NULL;
	shk_obj_info info = { .size = sizeof(info) };
	int k, n, rc, hit;

	test_name(nm, sizeof(nm), "objs");
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &s));
	CHECK_OK(shk_seg_unlink(nm, NULL));
	for (k = 0; k < K_N; k++) {
		for (n = 1;; n++) {
			CHECK(n < 100);
			arm(n);
			rc = create_excl(s, (enum kind)k);
			hit = disarm();
			if (rc == 0) {
				CHECK_OK(shk_obj_remove(s, "o"));
				if (!hit)
					break;
				continue;
			}
			if (!hit || rc != SHK_ENOMEM)
				TEST_FAIL("kind %d, allocation %d: %s", k, n,
					  shk_errname(rc));
			CHECK_RC(shk_obj_stat(s, "o", &info), SHK_ENOENT);
			CHECK_EQ(nobjects(s), 0);
		}
		CHECK(n > 1); /* at least one failure was tried */
	}
	shk_seg_close(s);
}

/*
 * A segment created with SHK_EXCL while the nth allocation fails: the
 * name is gone afterwards (a retry with SHK_EXCL succeeds) and no
 * descriptor stays open.  A failure after the segment was made (the
 * handle's heap state) left a READY segment under the name.  POSIX and
 * the file backend.
 */
static void
t_segment_excl(void)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	char nm[64], path[128];
	const char *name;
	shk_seg *s = NULL;
	int b, n, rc, hit, fds;

	test_name(nm, sizeof(nm), "seg");
	snprintf(path, sizeof(path), "/dev/shm/%s-file", nm);
	for (b = 0; b < 2; b++) {
		o.backend = b ? SHK_BACKEND_FILE : SHK_BACKEND_POSIX;
		name = b ? path : nm;
		for (n = 1;; n++) {
			CHECK(n < 100);
			fds = nfds();
			arm(n);
			rc = shk_seg_open(name, SHK_CREATE | SHK_EXCL, &o, &s);
			hit = disarm();
			if (rc == 0) {
				shk_seg_close(s);
				CHECK_OK(shk_seg_unlink(name, &o));
				if (!hit)
					break;
				continue;
			}
			if (!hit || rc != SHK_ENOMEM)
				TEST_FAIL("backend %d, allocation %d: %s", b, n,
					  shk_errname(rc));
			/* removes one left behind, and fails */
			if (shk_seg_unlink(name, &o) != SHK_ENOENT)
				TEST_FAIL("backend %d, allocation %d: segment "
					  "left",
					  b, n);
			CHECK_EQ(nfds(), fds);
		}
		CHECK(n > 2); /* the 2nd comes after the creation */
	}
}

/*
 * shk_chan_open making the segment, the channel and its parts while its
 * nth allocation fails: nothing is left (docs/chan.md, "When an open
 * fails").  Pair end A, and a pub/sub subscriber (whose buffer is
 * allocated after the parts).
 */
static void
t_chan_open(void)
{
	static const int pat[2] = { SHK_CHAN_PAIR, SHK_CHAN_PUBSUB };
	static const int role[2] = { SHK_CHAN_A, SHK_CHAN_SUB };
	char nm[64], addr[160];
	shk_chan *c = NULL;
	shk_seg *s = NULL;
	int i, n, rc, hit;

	test_name(nm, sizeof(nm), "chan");
	snprintf(addr, sizeof(addr), "shm://%s/ch", nm);
	for (i = 0; i < 2; i++) {
		for (n = 1;; n++) {
			CHECK(n < 100);
			arm(n);
			rc = shk_chan_open(addr, pat[i], role[i], NULL, &c);
			hit = disarm();
			if (rc == 0) {
				shk_chan_close(c);
				CHECK_OK(shk_seg_unlink(nm, NULL));
				if (!hit)
					break;
				continue;
			}
			if (!hit)
				TEST_FAIL("pattern %d, allocation %d: %s",
					  pat[i], n, shk_errname(rc));
			CHECK(c == NULL);
			if (shk_seg_open(nm, 0, NULL, &s) != SHK_ENOENT) {
				shk_seg_close(s);
				shk_seg_unlink(nm, NULL);
				TEST_FAIL("pattern %d, allocation %d (%s): "
					  "segment left",
					  pat[i], n, shk_errname(rc));
			}
		}
		CHECK(n > 3);
	}
}

TEST_MAIN({ "objects_excl", t_objects_excl },
	  { "segment_excl", t_segment_excl }, { "chan_open", t_chan_open })
