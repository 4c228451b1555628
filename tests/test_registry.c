/* test_registry.c - named, typed objects: create/open/type checks, racing
 * create-or-open, remove, iteration, a creator killed mid-creation. */
#include "harness.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "heap.h"
#include "lock.h"
#include "registry.h"
#include "segment.h"

static shk_seg *
mkseg(char *nm, const char *tag, uint32_t max_objects)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_seg *seg;

	o.max_objects = max_objects;
	o.len = 1 << 20;
	test_name(nm, 64, tag);
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &seg));
	return seg;
}

static shk_obj_desc
blob(uint64_t type, uint64_t elem, uint64_t cap)
{
	shk_obj_desc d = SHK_OBJ_DESC_INIT;

	d.kind = SHK_KIND_BLOB;
	d.type_id = type;
	d.elem_len = elem;
	d.cap = cap;
	return d;
}

static void
t_create_open_types(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "types", 0);
	shk_obj_desc d = blob(0xabc, 8, 16), w;
	shk_obj_info info = { .size = sizeof(info) };
	void *p = NULL, *q = NULL;

	CHECK_RC(shk_obj_open(seg, "o", 0, &d, NULL, &p), SHK_ENOENT);
	CHECK_OK(shk_obj_open(seg, "o", SHK_CREATE | SHK_EXCL, &d, &info, &p));
	CHECK(p != NULL);
	CHECK_EQ(info.kind, SHK_KIND_BLOB);
	CHECK_EQ(info.type_id, 0xabc);
	CHECK_EQ(info.elem_len, 8);
	CHECK_EQ(info.cap, 16);
	CHECK(info.len >= 128);
	CHECK_EQ(info.off % 64, 0);
	CHECK(shk_ptr(seg, info.off) == p);
	CHECK_EQ(shk_off(seg, p), info.off);
	/* the memory is zero-filled */
	CHECK_EQ(((uint64_t *)p)[15], 0);
	CHECK_RC(shk_obj_open(seg, "o", SHK_CREATE | SHK_EXCL, &d, NULL, &q),
		 SHK_EEXIST);
	CHECK_OK(shk_obj_open(seg, "o", SHK_CREATE, &d, NULL, &q));
	CHECK(p == q);
	/* mismatches */
	w = blob(0xabd, 8, 16);
	CHECK_RC(shk_obj_open(seg, "o", 0, &w, NULL, &q), SHK_ETYPE);
	w = blob(0xabc, 4, 16);
	CHECK_RC(shk_obj_open(seg, "o", 0, &w, NULL, &q), SHK_ETYPE);
	w = blob(0xabc, 8, 32);
	CHECK_RC(shk_obj_open(seg, "o", 0, &w, NULL, &q), SHK_ETYPE);
	w = blob(0xabc, 0, 0); /* 0 accepts the stored sizes */
	CHECK_OK(shk_obj_open(seg, "o", 0, &w, NULL, &q));
	w.kind = SHK_KIND_RING;
	CHECK_RC(shk_obj_open(seg, "o", 0, &w, NULL, &q), SHK_ETYPE);
	/* only blobs are created through shk_obj_open */
	CHECK_RC(shk_obj_open(seg, "r", SHK_CREATE, &w, NULL, &q), SHK_EINVAL);
	/* bad names and descriptors */
	CHECK_RC(shk_obj_open(seg, "", SHK_CREATE, &d, NULL, &q), SHK_EINVAL);
	CHECK_RC(shk_obj_open(seg, "a/b", SHK_CREATE, &d, NULL, &q),
		 SHK_EINVAL);
	CHECK_RC(shk_obj_open(seg,
			      "0123456789012345678901234567890123456789"
			      "012345678901234567890123456789",
			      SHK_CREATE, &d, NULL, &q),
		 SHK_ENAMETOOLONG);
	w = blob(1, 0, 4);
	CHECK_RC(shk_obj_open(seg, "z", SHK_CREATE, &w, NULL, &q), SHK_EINVAL);
	w.size = 0;
	CHECK_RC(shk_obj_open(seg, "z", SHK_CREATE, &w, NULL, &q), SHK_EINVAL);
	w = blob(1, 1 << 20, 1 << 20);
	CHECK_RC(shk_obj_open(seg, "z", SHK_CREATE, &w, NULL, &q), SHK_ENOMEM);
	CHECK_RC(shk_obj_open(NULL, "z", SHK_CREATE, &d, NULL, &q), SHK_EINVAL);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

static void
t_stat_next_remove(void)
{
	char nm[64], on[32];
	shk_seg *seg = mkseg(nm, "iter", 64), *ro;
	shk_obj_desc d = blob(7, 16, 4);
	shk_obj_info info = { .size = sizeof(info) };
	uint32_t cur = 0;
	int i, n = 0, seen[40] = { 0 };

	for (i = 0; i < 40; i++) {
		snprintf(on, sizeof(on), "obj%d", i);
		CHECK_OK(shk_obj_open(seg, on, SHK_CREATE, &d, NULL, NULL));
	}
	CHECK_OK(shk_obj_stat(seg, "obj7", &info));
	CHECK_EQ(info.type_id, 7);
	CHECK(strcmp(info.name, "obj7") == 0);
	CHECK_RC(shk_obj_stat(seg, "nope", &info), SHK_ENOENT);
	while (shk_obj_next(seg, &cur, &info) == 1) {
		CHECK(sscanf(info.name, "obj%d", &i) == 1);
		CHECK(i >= 0 && i < 40);
		seen[i]++;
		n++;
	}
	CHECK_EQ(n, 40);
	for (i = 0; i < 40; i++)
		CHECK_EQ(seen[i], 1);
	/* read-only handles look up without the lock */
	CHECK_OK(shk_seg_open(nm, SHK_RDONLY, NULL, &ro));
	CHECK_OK(shk_obj_stat(ro, "obj39", &info));
	CHECK_RC(shk_obj_open(ro, "obj39", SHK_CREATE, &d, NULL, NULL),
		 SHK_EPERM);
	/* remove; the name can be created again (tombstones are reused) */
	for (i = 0; i < 40; i += 2) {
		snprintf(on, sizeof(on), "obj%d", i);
		CHECK_OK(shk_obj_remove(seg, on));
		CHECK_RC(shk_obj_remove(seg, on), SHK_ENOENT);
		CHECK_RC(shk_obj_stat(ro, on, &info), SHK_ENOENT);
	}
	CHECK_OK(shk_obj_stat(ro, "obj39", &info));
	{
		shk_seg_stats st = { .size = sizeof(st) };
		CHECK_OK(shk_seg_info(seg, &st));
		CHECK_EQ(st.nobjects, 20);
	}
	for (i = 0; i < 40; i += 2) {
		snprintf(on, sizeof(on), "obj%d", i);
		CHECK_OK(shk_obj_open(seg, on, SHK_CREATE | SHK_EXCL, &d, NULL,
				      NULL));
	}
	CHECK_OK(shk_seg_check(seg));
	CHECK_OK(shk_seg_check(ro));
	shk_seg_close(ro);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

static void
t_registry_full(void)
{
	char nm[64], on[32];
	shk_seg *seg = mkseg(nm, "full", 16);
	shk_obj_desc d = blob(0, 8, 1);
	int i;

	for (i = 0; i < 16; i++) {
		snprintf(on, sizeof(on), "o%d", i);
		CHECK_OK(shk_obj_open(seg, on, SHK_CREATE, &d, NULL, NULL));
	}
	CHECK_RC(shk_obj_open(seg, "one-more", SHK_CREATE, &d, NULL, NULL),
		 SHK_ENOSPC);
	/* every name is still found in a full table */
	for (i = 0; i < 16; i++) {
		shk_obj_info info = { .size = sizeof(info) };
		snprintf(on, sizeof(on), "o%d", i);
		CHECK_OK(shk_obj_stat(seg, on, &info));
	}
	CHECK_RC(shk_obj_open(seg, "absent", 0, &d, NULL, NULL), SHK_ENOENT);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/* Racing processes create-or-open the same names: one object each. */
static void
t_create_or_open_race(void)
{
	enum { NPROC = 8, NOBJ = 50 };
	char nm[64];
	shk_seg *seg = mkseg(nm, "orace", 0);
	shk_obj_desc d = blob(3, 8, NPROC);
	_Atomic uint32_t *go;
	pid_t pids[NPROC];
	int p, i;

	go = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	for (p = 0; p < NPROC; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			shk_seg *c;
			if (shk_seg_open(nm, 0, NULL, &c))
				_exit(1);
			atomic_fetch_add(go, 1);
			while (atomic_load(go) < NPROC)
				sched_yield();
			for (i = 0; i < NOBJ; i++) {
				char on[32];
				uint64_t *w;
				snprintf(on, sizeof(on), "shared%d", i);
				if (shk_obj_open(c, on, SHK_CREATE, &d, NULL,
						 (void **)&w))
					_exit(2);
				/* each racer marks its own element */
				atomic_fetch_add((_Atomic uint64_t *)&w[p], 1);
			}
			shk_seg_close(c);
			_exit(0);
		}
	}
	for (p = 0; p < NPROC; p++)
		CHECK_EQ(test_wait(pids[p]), 0);
	{
		shk_seg_stats st = { .size = sizeof(st) };
		CHECK_OK(shk_seg_info(seg, &st));
		CHECK_EQ(st.nobjects, NOBJ);
	}
	for (i = 0; i < NOBJ; i++) {
		char on[32];
		uint64_t *w;
		snprintf(on, sizeof(on), "shared%d", i);
		CHECK_OK(shk_obj_open(seg, on, 0, &d, NULL, (void **)&w));
		for (p = 0; p < NPROC; p++)
			CHECK_EQ(w[p], 1); /* every racer used the one object */
	}
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/* A creator killed while it holds the registry lock, mid-creation: the
 * next user recovers (EOWNERDEAD inside), the name is free again. */
static void
t_creator_killed(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "rkill", 0);
	shk_obj_desc d = blob(1, 8, 8);
	shk_obj_info info = { .size = sizeof(info) };
	pid_t pid = fork();

	if (pid == 0) {
		shk_seg *c;
		setenv("SHK_CRASH", "reg.create.before_init:1", 1);
		if (shk_seg_open(nm, 0, NULL, &c))
			_exit(1);
		shk_obj_open(c, "victim", SHK_CREATE, &d, NULL, NULL);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	CHECK_RC(shk_obj_stat(seg, "victim", &info), SHK_ENOENT);
	CHECK_OK(shk_obj_open(seg, "victim", SHK_CREATE | SHK_EXCL, &d, NULL,
			      NULL));
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/*
 * Two deaths in a row: a creator killed mid-creation, then the process
 * that recovers its entry killed in the middle of that recovery (crash
 * point between marking the entry DELETED and freeing its block).  The
 * next recovery must not free the block a second time: meanwhile this
 * process has allocated it again, and it must stay ours.  (Freeing before
 * marking DELETED would do exactly that.)  The recoverer's death leaks the
 * block instead, which is the documented cost.
 */
#define BIG ((size_t)4096 * 40)

static void
t_recoverer_killed(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "rrec", 0);
	shk_obj_desc d = blob(1, 4096, 40); /* 160 KiB: no magazine keeps it */
	shk_obj_desc small = blob(1, 8, 8);
	uint64_t held[16], off, fence;
	uint8_t *p;
	pid_t pid;
	int i, n, fd;
	size_t j;

	/* nameless at once: a failed check leaves nothing in /dev/shm */
	CHECK_OK(shk_seg_unlink(nm, NULL));
	fd = shk_seg_fd(seg);
	CHECK(fd >= 0);
	for (i = 0; i < 2; i++) {
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			shk_seg *c;

			setenv("SHK_CRASH",
			       i == 0 ? "reg.create.before_init:1"
				      : "reg.recover.before_free:1",
			       1);
			if (shk_seg_open_fd(fd, 0, NULL, &c))
				_exit(1);
			shk_obj_open(c, i == 0 ? "victim" : "bystander",
				     SHK_CREATE, &d, NULL, NULL);
			_exit(0);
		}
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		/* a block right after the creator's, so that its block,
		 * freed, would not merge with the free space behind it */
		if (i == 0)
			CHECK_OK(shk_alloc(seg, BIG, &fence));
	}
	/* take every 160 KiB block the heap has left: had the dead
	 * recoverer freed the creator's block, one of these is it */
	for (n = 0; n < 16 && shk_alloc(seg, BIG, &held[n]) == 0; n++)
		memset(shk_seg_base(seg) + held[n], 0xa5, BIG);
	CHECK(n >= 2 && n < 16);
	/* the third recovery (this process, inside the open), with room for
	 * the small object it creates */
	CHECK_OK(shk_free(seg, held[--n]));
	CHECK_OK(shk_obj_open(seg, "probe", SHK_CREATE, &small, NULL, NULL));
	/* every block we hold is still ours */
	while (shk_alloc(seg, BIG, &off) == 0)
		for (i = 0; i < n; i++)
			if (off == held[i])
				TEST_FAIL("block %d was handed out again", i);
	for (i = 0; i < n; i++) {
		p = (uint8_t *)shk_seg_base(seg) + held[i];
		for (j = 0; j < BIG; j++)
			if (p[j] != 0xa5)
				TEST_FAIL("block %d was overwritten", i);
	}
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/* Iterates the registry: *good entries returned, *bad SHK_ECORRUPT. */
static void
next_counts(shk_seg *seg, int *good, int *bad)
{
	shk_obj_info info = { .size = sizeof(info) };
	uint32_t cur = 0;
	int rc;

	*good = *bad = 0;
	while ((rc = shk_obj_next(seg, &cur, &info)) != 0) {
		CHECK(rc == 1 || rc == SHK_ECORRUPT);
		if (rc == 1)
			CHECK(strcmp(info.name, "e") == 0 ||
			      strcmp(info.name, "f") == 0);
		(rc == 1 ? (*good)++ : (*bad)++);
	}
}

/* Damaged entries: stat, next and check report SHK_ECORRUPT, never crash. */
static void
t_corrupt_entry(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "rbad", 0);
	shk_obj_desc d = blob(1, 8, 8);
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__reg_ent *e;
	uint64_t off;
	int good, bad;

	CHECK_OK(shk_obj_open(seg, "f", SHK_CREATE, &d, NULL, NULL));
	CHECK_OK(shk_obj_open(seg, "e", SHK_CREATE, &d, &info, NULL));
	e = (struct shk__reg_ent *)(seg->base + seg->reg_off) + info.slot;
	off = e->off;
	e->off = seg->len + 4096; /* outside */
	CHECK_RC(shk_obj_stat(seg, "e", &info), SHK_ECORRUPT);
	/* iteration reports the damaged entry and goes on past it */
	next_counts(seg, &good, &bad);
	CHECK_EQ(good, 1);
	CHECK_EQ(bad, 1);
	/* a state word no writer stores: damage too */
	e->off = off;
	next_counts(seg, &good, &bad);
	CHECK_EQ(good, 2);
	CHECK_EQ(bad, 0);
	atomic_store(&e->state, 77);
	next_counts(seg, &good, &bad);
	CHECK_EQ(good, 1);
	CHECK_EQ(bad, 1);
	atomic_store(&e->state, SHK__ENT_READY);
	e->off = seg->len + 4096;
	CHECK_RC(shk_obj_open(seg, "e", 0, &d, NULL, NULL), SHK_ECORRUPT);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	e->off = off;
	e->len = UINT64_MAX - 5;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	e->len = 64;
	e->kind = 200;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	e->kind = SHK_KIND_BLOB;
	e->name[0] = '/';
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/* A blob's elem_len * cap is its size, and readers size their views by it
 * (the Python binding did): an entry whose elem_len * cap exceeds its len
 * is damage, for open, stat, next and check alike.  Blobs of any shape
 * that create made pass. */
static void
t_blob_size_entry(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "rblob", 0);
	shk_obj_desc d = blob(1, 8, 8), any = blob(1, 0, 0);
	shk_obj_info info = { .size = sizeof(info) };
	static const uint64_t shapes[][2] = { { 1, 1 },    { 3, 5 },
					      { 7, 4099 }, { 4096, 3 },
					      { 1, 65 },   { 24, 1 } };
	struct shk__reg_ent *e;
	uint32_t cur;
	int good, bad, rc;
	size_t i;

	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		shk_obj_desc s = blob(2, shapes[i][0], shapes[i][1]);
		char on[16];

		snprintf(on, sizeof(on), "s%zu", i);
		CHECK_OK(shk_obj_open(seg, on, SHK_CREATE, &s, NULL, NULL));
	}
	CHECK_OK(shk_obj_open(seg, "b", SHK_CREATE, &d, &info, NULL));
	CHECK_OK(shk_seg_check(seg));
	e = (struct shk__reg_ent *)(seg->base + seg->reg_off) + info.slot;
	CHECK_EQ(e->len, 64);
	e->cap = (uint64_t)1 << 32; /* a peer scribbles cap */
	CHECK_RC(shk_obj_open(seg, "b", 0, &any, NULL, NULL), SHK_ECORRUPT);
	CHECK_RC(shk_obj_stat(seg, "b", &info), SHK_ECORRUPT);
	good = bad = 0;
	for (cur = 0; (rc = shk_obj_next(seg, &cur, &info)) != 0;) {
		CHECK(rc == 1 || rc == SHK_ECORRUPT);
		(rc == 1 ? good++ : bad++);
	}
	CHECK_EQ(good, 6);
	CHECK_EQ(bad, 1);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	e->cap = 9; /* one element past the block */
	CHECK_RC(shk_obj_open(seg, "b", 0, &any, NULL, NULL), SHK_ECORRUPT);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	e->cap = 8;
	e->elem_len = 0;
	CHECK_RC(shk_obj_open(seg, "b", 0, &any, NULL, NULL), SHK_ECORRUPT);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	e->elem_len = 8;
	CHECK_OK(shk_obj_open(seg, "b", 0, &any, NULL, NULL));
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/* Threads sharing one handle (one owner stamp) create and remove objects
 * concurrently: no SHK_EDEADLK, one object per name. */
struct th_arg {
	shk_seg *seg;
	int id;
	int errors;
};

static void *
th_worker(void *p)
{
	struct th_arg *a = p;
	shk_obj_desc d = blob(9, 8, 4);
	int i;

	for (i = 0; i < 200; i++) {
		char on[32];
		uint64_t *w;
		snprintf(on, sizeof(on), "t%d", i % 20);
		if (shk_obj_open(a->seg, on, SHK_CREATE, &d, NULL,
				 (void **)&w) < 0)
			a->errors++;
		snprintf(on, sizeof(on), "own%d-%d", a->id, i % 5);
		if (shk_obj_open(a->seg, on, SHK_CREATE | SHK_EXCL, &d, NULL,
				 NULL) < 0 ||
		    shk_obj_remove(a->seg, on) < 0)
			a->errors++;
	}
	return NULL;
}

static void
t_threads_share_handle(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "thr", 0);
	struct th_arg a[4];
	pthread_t th[4];
	shk_seg_stats st = { .size = sizeof(st) };
	int i;

	for (i = 0; i < 4; i++) {
		a[i] = (struct th_arg){ seg, i, 0 };
		pthread_create(&th[i], NULL, th_worker, &a[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(a[i].errors, 0);
	}
	CHECK_OK(shk_seg_info(seg, &st));
	CHECK_EQ(st.nobjects, 20);
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

static void
t_errno_values(void)
{
	/* where a POSIX errno fits, SHK_Exxx == -Exxx */
	CHECK_EQ(SHK_ENOENT, -ENOENT);
	CHECK_EQ(SHK_EAGAIN, -EAGAIN);
	CHECK_EQ(SHK_ENOMEM, -ENOMEM);
	CHECK_EQ(SHK_EEXIST, -EEXIST);
	CHECK_EQ(SHK_EINVAL, -EINVAL);
	CHECK_EQ(SHK_EMSGSIZE, -EMSGSIZE);
	CHECK_EQ(SHK_ETIMEDOUT, -ETIMEDOUT);
	CHECK_EQ(SHK_EOWNERDEAD, -EOWNERDEAD);
	CHECK_EQ(SHK_ENOTRECOVERABLE, -ENOTRECOVERABLE);
	CHECK(SHK_EBADSEG <= -1000 && SHK_ETYPE <= -1000);
}

static void
t_kind_names(void)
{
	CHECK(strcmp(shk_kind_name(SHK_KIND_RING), "ring") == 0);
	CHECK(strcmp(shk_kind_name(SHK_KIND_MUTEX), "mutex") == 0);
	CHECK(strcmp(shk_kind_name(999), "unknown") == 0);
}

/* A segment whose name is gone at once (no leftovers on any path); other
 * handles open *fd. */
static shk_seg *
mkseg_anon(const char *tag, int *fd)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, tag, 0);

	CHECK_OK(shk_seg_unlink(nm, NULL));
	*fd = shk_seg_fd(seg);
	CHECK(*fd >= 0);
	return seg;
}

/* A child takes the registry lock and exits holding it: the next locker
 * gets SHK_EOWNERDEAD and runs the registry's recovery. */
static void
die_holding_reg_lock(int fd)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *c = NULL;

		if (shk_seg_open_fd(fd, 0, NULL, &c) ||
		    shk__lock_acquire(c, &shk__hdr(c)->reg_lock, SHK_FOREVER))
			_exit(1);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 0);
}

static struct shk__reg_ent *
ent_at(shk_seg *seg, uint32_t slot)
{
	return (struct shk__reg_ent *)(seg->base + seg->reg_off) + slot;
}

/* A slot that no name uses (FREE). */
static uint32_t
free_ent(shk_seg *seg, uint32_t from)
{
	uint32_t i;

	for (i = from; i < seg->reg_cap; i++) {
		if (atomic_load(&ent_at(seg, i)->state) == SHK__ENT_FREE)
			return i;
	}
	TEST_FAIL("no free registry slot");
}

/*
 * An entry whose state word holds garbage is damage, not a live object:
 * open (with or without SHK_CREATE), stat and iteration return
 * SHK_ECORRUPT (iteration then goes on past it), remove does not see it;
 * the state restored, it is usable again.
 */
static void
t_bad_state(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("rstate", &fd);
	shk_obj_desc d = blob(1, 8, 8);
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__reg_ent *e;
	uint32_t cur = 0;
	void *p = NULL;

	CHECK_OK(shk_obj_open(seg, "e", SHK_CREATE, &d, &info, NULL));
	e = ent_at(seg, info.slot);
	atomic_store(&e->state, 7);
	CHECK_RC(shk_obj_open(seg, "e", 0, &d, NULL, &p), SHK_ECORRUPT);
	CHECK_RC(shk_obj_open(seg, "e", SHK_CREATE, &d, NULL, &p),
		 SHK_ECORRUPT);
	CHECK(p == NULL);
	CHECK_RC(shk_obj_stat(seg, "e", &info), SHK_ECORRUPT);
	CHECK_RC(shk_obj_remove(seg, "e"), SHK_ENOENT);
	CHECK_RC(shk_obj_next(seg, &cur, &info), SHK_ECORRUPT);
	CHECK_EQ(info.slot, e - ent_at(seg, 0));
	CHECK_EQ(shk_obj_next(seg, &cur, &info), 0);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	atomic_store(&e->state, SHK__ENT_READY);
	CHECK_OK(shk_obj_open(seg, "e", 0, &d, NULL, &p));
	CHECK_OK(shk_obj_remove(seg, "e"));
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/*
 * Recovery after a dead registry-lock owner frees the memory of CREATING
 * entries, which are untrusted: forged ones that name a live object's
 * block, a block named twice, or an offset outside the heap must not
 * reach the heap's free.  Checked: the live object's block is not handed
 * out again, the heap stays consistent, the forged entries are gone.
 */
static void
t_recover_bad_off(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("rrecov", &fd);
	shk_obj_desc d = blob(1, 64, 16);
	shk_obj_info live = { .size = sizeof(live) };
	shk_obj_info info = { .size = sizeof(info) };
	static const char *const ghosts[] = { "ghost0", "ghost1", "ghost2",
					      "ghost3" };
	uint64_t bad_off[4];
	uint32_t slot = 0;
	int i;

	CHECK_OK(shk_obj_open(seg, "live", SHK_CREATE, &d, &live, NULL));
	bad_off[0] = live.off;                   /* a live object's block */
	bad_off[1] = seg->len + 4096;            /* outside the segment */
	bad_off[2] = seg->heap_off + 64 * 3 + 8; /* misaligned */
	bad_off[3] = 0;                          /* the segment header */
	for (i = 0; i < 4; i++) {
		struct shk__reg_ent *e;

		slot = free_ent(seg, slot);
		e = ent_at(seg, slot++);
		memcpy(e, ent_at(seg, live.slot), sizeof(*e));
		memset(e->name, 0, sizeof(e->name));
		strcpy(e->name, ghosts[i]);
		e->off = bad_off[i];
		atomic_store(&e->state, SHK__ENT_CREATING);
	}
	die_holding_reg_lock(fd);
	/* the next locker recovers */
	CHECK_OK(shk_obj_stat(seg, "live", &info));
	for (i = 0; i < 4; i++)
		CHECK_RC(shk_obj_stat(seg, ghosts[i], &info), SHK_ENOENT);
	CHECK_OK(shk_seg_check(seg));
	/* the live block was not freed: new objects of its size land
	 * elsewhere */
	for (i = 0; i < 4; i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "new%d", i);
		CHECK_OK(shk_obj_open(seg, nm, SHK_CREATE, &d, &info, NULL));
		CHECK(info.off != live.off);
	}
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/* The check of t_check_during_remove: a remover that runs while
 * shk_seg_check is inside the object's check, and a new owner of the
 * freed block that fills it. */
static shk_seg *cdr_seg;
static uint64_t cdr_off, cdr_len, cdr_off2;
static int cdr_fired;

static void
remove_under_check(shk_seg *seg, uint32_t slot)
{
	(void)seg;
	(void)slot;
	if (cdr_fired++)
		return;
	CHECK_OK(shk_obj_remove(cdr_seg, "s"));
	CHECK_OK(shk_alloc(cdr_seg, cdr_len, &cdr_off2));
	memset(shk_ptr(cdr_seg, cdr_off2), 0xa5, cdr_len);
}

/* Creates the stack "s" (a large block) and arms remove_under_check() for
 * it: the hook's next call removes it and reuses its block. */
static void
arm_remove_under_check(shk_seg *seg)
{
	shk_stack_opts so = SHK_STACK_OPTS_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	shk_stack *st = NULL;

	so.elem_len = 8;
	so.cap = 4096;
	CHECK_OK(shk_stack_open(seg, "s", SHK_CREATE, &so, &st));
	shk_stack_close(st);
	CHECK_OK(shk_obj_stat(seg, "s", &info));
	CHECK_OK(shk_seg_check(seg)); /* sound before the hook's removal */
	cdr_seg = seg;
	cdr_off = info.off;
	cdr_len = info.len;
	cdr_fired = 0;
	shk__reg_check_hook = remove_under_check;
}

/*
 * shk_seg_check runs without the registry lock while others remove and
 * create objects.  An object removed, and its block reused, after the
 * check read its entry READY is no damage: the check must not report its
 * new contents (it returned SHK_ECORRUPT for a sound segment).  The hook
 * removes the object between the entry copy and the object's check.
 */
static void
t_check_during_remove(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "cdr", 0);
	shk_obj_info info = { .size = sizeof(info) };

	arm_remove_under_check(seg);
	CHECK_OK(shk_seg_check(seg));
	shk__reg_check_hook = NULL;
	CHECK_EQ(cdr_fired, 1);
	/* the new owner took the object's block: its bytes were checked as
	 * a stack's */
	CHECK_EQ(cdr_off2, cdr_off);
	CHECK_RC(shk_obj_stat(seg, "s", &info), SHK_ENOENT);
	CHECK_OK(shk_free(seg, cdr_off2));
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/*
 * A read-only handle's open runs the object's check without the registry
 * lock (it cannot take it): an object removed (and its block reused)
 * between the lookup and the check is gone, SHK_ENOENT; the open returned
 * SHK_ECORRUPT on the new owner's bytes.  (A writable handle runs the
 * check under the lock, where no removal can come between: test
 * create_open_during_remove.)
 */
static void
t_open_during_remove(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "odr", 0), *ro = NULL;
	shk_stack_opts so = SHK_STACK_OPTS_INIT;
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	shk_stack *st = NULL;
	void *p = NULL;

	so.elem_len = 8;
	so.cap = 4096;
	d.kind = SHK_KIND_STACK;
	CHECK_OK(shk_seg_open(nm, SHK_RDONLY, NULL, &ro));
	arm_remove_under_check(seg);
	CHECK_RC(shk_obj_open(ro, "s", 0, &d, NULL, &p), SHK_ENOENT);
	shk__reg_check_hook = NULL;
	CHECK(p == NULL);
	CHECK_EQ(cdr_fired, 1);
	CHECK_EQ(cdr_off2, cdr_off); /* the block was reused */
	CHECK_OK(shk_free(seg, cdr_off2));
	/* no removal: the open works as before */
	CHECK_OK(shk_stack_open(seg, "s", SHK_CREATE, &so, &st));
	shk_stack_close(st);
	cdr_fired = 1; /* the hook does nothing now */
	shk__reg_check_hook = remove_under_check;
	CHECK_OK(shk_obj_open(ro, "s", 0, &d, NULL, &p));
	CHECK(p != NULL);
	shk__reg_check_hook = NULL;
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(ro);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/*
 * Tools describe objects from entries they listed earlier (shmkit info,
 * watch): an object removed since, whose block another owner reused, is
 * gone (SHK_ENOENT), not damaged; it was described as SHK_ECORRUPT.  An
 * object that is still there and damaged stays SHK_ECORRUPT.
 */
static void
t_describe_after_remove(void)
{
	char nm[64], line[128];
	shk_seg *seg = mkseg(nm, "dar", 0);
	shk_stack_opts so = SHK_STACK_OPTS_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	shk_stack *st = NULL;
	uint64_t off2, magic;

	so.elem_len = 8;
	so.cap = 4096;
	CHECK_OK(shk_stack_open(seg, "s", SHK_CREATE, &so, &st));
	shk_stack_close(st);
	CHECK_OK(shk_obj_stat(seg, "s", &info));
	CHECK(shk_obj_describe(seg, &info, line, sizeof(line)) > 0);
	/* damage while listed: still reported */
	memcpy(&magic, shk_ptr(seg, info.off), 8);
	memset(shk_ptr(seg, info.off), 0x5a, 8);
	CHECK_RC(shk_obj_describe(seg, &info, line, sizeof(line)),
		 SHK_ECORRUPT);
	memcpy(shk_ptr(seg, info.off), &magic, 8);
	CHECK(shk_obj_describe(seg, &info, line, sizeof(line)) > 0);
	/* removed, and the block reused */
	CHECK_OK(shk_obj_remove(seg, "s"));
	CHECK_OK(shk_alloc(seg, info.len, &off2));
	CHECK_EQ(off2, info.off);
	memset(shk_ptr(seg, off2), 0xa5, info.len);
	CHECK_RC(shk_obj_describe(seg, &info, line, sizeof(line)), SHK_ENOENT);
	CHECK_EQ(line[0], '\0');
	CHECK_OK(shk_free(seg, off2));
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/*
 * A read-only segment handle opens an existing object through
 * shk_obj_open (found without the lock, type-checked, the kind's check
 * run) and gets memory it can read and not write; creating and the
 * structures' opens, which write, are SHK_EPERM.  Before 2026-11-24 every
 * open on a read-only handle was SHK_EINVAL.
 */
static void
t_rdonly_open(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "rdo", 64), *ro;
	shk_obj_desc d = blob(7, 8, 4), wrong = blob(8, 8, 4);
	shk_obj_desc ad = SHK_OBJ_DESC_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	shk_array_opts ao = SHK_ARRAY_OPTS_INIT;
	shk_array *a = NULL;
	uint64_t *w, *r;
	pid_t pid;

	CHECK_OK(shk_obj_open(seg, "b", SHK_CREATE, &d, NULL, (void **)&w));
	for (int i = 0; i < 4; i++)
		w[i] = 100 + (uint64_t)i;
	ao.elem_len = 8;
	ao.len = 8;
	CHECK_OK(shk_array_open(seg, "arr", SHK_CREATE, &ao, &a));
	CHECK_OK(shk_seg_open(nm, SHK_RDONLY, NULL, &ro));
	CHECK_OK(shk_obj_open(ro, "b", 0, &d, &info, (void **)&r));
	CHECK_EQ(info.cap, 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(r[i], 100 + (uint64_t)i);
	w[2] = 7;
	CHECK_EQ(r[2], 7); /* the same memory */
	CHECK_RC(shk_obj_open(ro, "b", 0, &wrong, NULL, NULL), SHK_ETYPE);
	CHECK_RC(shk_obj_open(ro, "nope", 0, &d, NULL, NULL), SHK_ENOENT);
	CHECK_RC(shk_obj_open(ro, "b", SHK_CREATE, &d, NULL, NULL), SHK_EPERM);
	CHECK_RC(shk_obj_open(ro, "c", SHK_CREATE | SHK_EXCL, &d, NULL, NULL),
		 SHK_EPERM);
	CHECK_RC(shk_obj_remove(ro, "b"), SHK_EPERM); /* was SHK_EINVAL */
	CHECK_OK(shk_obj_stat(seg, "b", &info));
	/* any kind, as on a writable handle: the array's memory, checked */
	ad.kind = SHK_KIND_ARRAY;
	CHECK_OK(shk_obj_open(ro, "arr", 0, &ad, &info, NULL));
	CHECK_EQ(info.kind, SHK_KIND_ARRAY);
	/* a structure's open attaches (writes): refused */
	{
		shk_array *a2 = NULL;
		CHECK_RC(shk_array_open(ro, "arr", 0, NULL, &a2), SHK_EPERM);
		CHECK(a2 == NULL);
	}
	/* the view is read-only: a write faults (in a child) */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* not a sanitizer's report */
		*(volatile uint64_t *)r = 1;
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 128 + SIGSEGV);
	shk_seg_close(ro);
	shk_array_close(a);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/* t_rdonly_creating: shk__obj_open's init callback, run while the entry is
 * CREATING and this process holds the registry lock, looks the name up
 * through a read-only handle (which takes no lock). */
static shk_seg *rc_ro;
static int rc_stat_rc, rc_open_rc, rc_listed;

static int
lookup_in_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	shk_obj_info ri = { .size = sizeof(ri) };
	shk_obj_desc d = blob(1, 8, 8);
	uint32_t cur = 0;

	(void)seg;
	(void)mem;
	(void)arg;
	rc_stat_rc = shk_obj_stat(rc_ro, info->name, &ri);
	rc_open_rc = shk_obj_open(rc_ro, info->name, 0, &d, &ri, NULL);
	while (shk_obj_next(rc_ro, &cur, &ri) == 1)
		rc_listed += strcmp(ri.name, info->name) == 0;
	return 0;
}

/*
 * A name whose entry is CREATING is no object yet.  A read-only handle
 * (lock-free lookup) gets SHK_ENOENT for it from shk_obj_stat and
 * shk_obj_open, as shk_obj_next skips it and a writable handle finds no
 * such object: (1) a creator killed mid-creation, before any writable
 * handle recovers its entry (this was SHK_EAGAIN, for good while only
 * read-only handles looked); (2) a creation in progress.  A damaged state
 * word is SHK_ECORRUPT on both kinds of handle (the read-only one said
 * SHK_EAGAIN).
 */
static void
t_rdonly_creating(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("rcre", &fd), *ro;
	shk_obj_desc d = blob(1, 8, 8);
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__reg_ent *e;
	uint32_t cur = 0;
	pid_t pid;
	int n = 0;

	CHECK_OK(shk_seg_open_fd(fd, SHK_RDONLY, NULL, &ro));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *c;

		setenv("SHK_CRASH", "reg.create.before_init:1", 1);
		if (shk_seg_open_fd(fd, 0, NULL, &c))
			_exit(1);
		shk_obj_open(c, "victim", SHK_CREATE, &d, NULL, NULL);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	/* (1) the dead creator's entry is still CREATING: nobody locked */
	CHECK_RC(shk_obj_stat(ro, "victim", &info), SHK_ENOENT);
	CHECK_RC(shk_obj_open(ro, "victim", 0, &d, &info, NULL), SHK_ENOENT);
	while (shk_obj_next(ro, &cur, &info) == 1)
		n++;
	CHECK_EQ(n, 0);
	/* a writable handle recovers it (SHK_EOWNERDEAD inside): the same */
	CHECK_RC(shk_obj_stat(seg, "victim", &info), SHK_ENOENT);
	CHECK_RC(shk_obj_stat(ro, "victim", &info), SHK_ENOENT);
	/* (2) a live creation: CREATING while its init runs */
	rc_ro = ro;
	rc_stat_rc = rc_open_rc = 1;
	rc_listed = 0;
	CHECK_OK(shk__obj_open(seg, "live", SHK_CREATE | SHK__OPEN_VIEW, &d, 64,
			       lookup_in_init, NULL, NULL, &info, NULL));
	CHECK_RC(rc_stat_rc, SHK_ENOENT);
	CHECK_RC(rc_open_rc, SHK_ENOENT);
	CHECK_EQ(rc_listed, 0);
	/* published READY: found */
	CHECK_OK(shk_obj_stat(ro, "live", &info));
	CHECK_OK(shk_obj_open(ro, "live", 0, &d, &info, NULL));
	/* a damaged state word: SHK_ECORRUPT on both handles */
	e = ent_at(seg, info.slot);
	atomic_store(&e->state, 7);
	CHECK_RC(shk_obj_stat(seg, "live", &info), SHK_ECORRUPT);
	CHECK_RC(shk_obj_stat(ro, "live", &info), SHK_ECORRUPT);
	CHECK_RC(shk_obj_open(ro, "live", 0, &d, &info, NULL), SHK_ECORRUPT);
	atomic_store(&e->state, SHK__ENT_READY);
	CHECK_OK(shk_obj_stat(ro, "live", &info));
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(ro);
	shk_seg_close(seg);
}

/* A child opens fd, arms crash point `crash` and removes (remove != 0)
 * or creates `name`, and is killed there. */
static void
die_at(int fd, const char *crash, const char *name, int remove)
{
	shk_obj_desc d = blob(1, 8, 8);
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *c;

		setenv("SHK_CRASH", crash, 1);
		if (shk_seg_open_fd(fd, 0, NULL, &c))
			_exit(1);
		if (remove)
			shk_obj_remove(c, name);
		else
			shk_obj_open(c, name, SHK_CREATE, &d, NULL, NULL);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
}

static uint32_t
nobjects(shk_seg *seg)
{
	shk_seg_stats st = { .size = sizeof(st) };

	CHECK_OK(shk_seg_info(seg, &st));
	return st.nobjects;
}

/*
 * The object count (shk_seg_info's nobjects, `shmkit ls`) after a creator
 * killed between publishing READY and counting, and a remover killed
 * between marking DELETED and uncounting: both die holding the registry
 * lock, and the next locker's recovery recounts.  The count stayed one low
 * (then wrapped to 4294967295 at a removal) or one high.  A count damaged
 * low does not wrap at a removal either.
 */
static void
t_count_after_kill(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("rcnt", &fd);
	shk_obj_desc d = blob(1, 8, 8);
	shk_obj_info info = { .size = sizeof(info) };

	CHECK_OK(shk_obj_open(seg, "a", SHK_CREATE, &d, NULL, NULL));
	die_at(fd, "reg.create.ready:1", "b", 0);
	/* the next locker recovers; "b" was published */
	CHECK_OK(shk_obj_stat(seg, "b", &info));
	CHECK_EQ(nobjects(seg), 2);
	CHECK_OK(shk_obj_remove(seg, "a"));
	CHECK_OK(shk_obj_remove(seg, "b"));
	CHECK_EQ(nobjects(seg), 0);
	/* a remover killed after DELETED, before the count */
	CHECK_OK(shk_obj_open(seg, "c", SHK_CREATE, &d, NULL, NULL));
	CHECK_OK(shk_obj_open(seg, "e", SHK_CREATE, &d, NULL, NULL));
	die_at(fd, "reg.remove.deleted:1", "c", 1);
	CHECK_RC(shk_obj_stat(seg, "c", &info), SHK_ENOENT);
	CHECK_EQ(nobjects(seg), 1);
	/* a count damaged low: a removal leaves it at 0 */
	atomic_store(&shk__hdr(seg)->reg_count, 0);
	CHECK_OK(shk_obj_remove(seg, "e"));
	CHECK_EQ(nobjects(seg), 0);
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/*
 * A remover killed between marking the entry DELETED and freeing the
 * block (crash point reg.remove.before_free) leaks the block, which still
 * carries the owner stamp of its allocation, the creator's: the heap scan
 * counts it as an ordinary live block while the creator's handle lives,
 * and as dead_owner only once that handle is closed.  Objects are large
 * heap blocks (header word 1 holds the stamp) or small ones (the side
 * word): one of each.  A leak is no damage: shk_seg_check says ok.
 */
static void
t_remover_killed(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("rrmk", &fd), *cr;
	shk_obj_desc big = blob(1, 4096, 8), small = blob(1, 8, 8);
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__heap_report r0, r1, r2;

	/* the creator: a handle of its own, so that it can close */
	CHECK_OK(shk_seg_open_fd(fd, 0, NULL, &cr));
	CHECK_OK(shk_obj_open(cr, "big", SHK_CREATE, &big, NULL, NULL));
	CHECK_OK(shk_obj_open(cr, "small", SHK_CREATE, &small, NULL, NULL));
	memset(&r0, 0, sizeof(r0));
	CHECK_OK(shk__heap_scan(seg, &r0));
	CHECK_EQ(r0.large_live, 1); /* "big" */
	CHECK_EQ(r0.small_live, 1); /* "small" */
	die_at(fd, "reg.remove.before_free:1", "big", 1);
	die_at(fd, "reg.remove.before_free:1", "small", 1);
	/* the next locker recovers the lock; both names are gone */
	CHECK_RC(shk_obj_stat(seg, "big", &info), SHK_ENOENT);
	CHECK_RC(shk_obj_stat(seg, "small", &info), SHK_ENOENT);
	CHECK_EQ(nobjects(seg), 0);
	/* the blocks are still allocated, under the living creator's
	 * stamp: not dead_owner */
	memset(&r1, 0, sizeof(r1));
	CHECK_OK(shk__heap_scan(seg, &r1));
	CHECK_EQ(r1.large_live, r0.large_live);
	CHECK_EQ(r1.small_live, r0.small_live);
	CHECK_EQ(r1.dead_owner, r0.dead_owner);
	CHECK_OK(shk_seg_check(seg));
	/* the creator's handle closed: both leaks count as dead_owner */
	shk_seg_close(cr);
	memset(&r2, 0, sizeof(r2));
	CHECK_OK(shk__heap_scan(seg, &r2));
	CHECK_EQ(r2.large_live, r0.large_live);
	CHECK_EQ(r2.small_live, r0.small_live);
	CHECK_EQ(r2.dead_owner, r0.dead_owner + 2);
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

static int
failing_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	(void)seg;
	(void)mem;
	(void)info;
	(void)arg;
	return SHK_ENOMEM;
}

/*
 * A creator whose init failed, killed between marking its entry DELETED
 * and freeing the block (crash point reg.create.undo): the name does not
 * exist, the registry is sound, and the block is leaked under the dead
 * creator's stamp, so the heap scan counts it as dead_owner.  Before the
 * kill, a failed init returns its code and leaves nothing.
 */
static void
t_create_undo_killed(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("rundo", &fd);
	shk_obj_desc d = blob(1, 4096, 8);
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__heap_report r0, r1;
	pid_t pid;

	memset(&r0, 0, sizeof(r0));
	CHECK_OK(shk__heap_scan(seg, &r0));
	CHECK_RC(shk__obj_open(seg, "x", SHK_CREATE, &d, 32768, failing_init,
			       NULL, NULL, &info, NULL),
		 SHK_ENOMEM);
	CHECK_RC(shk_obj_stat(seg, "x", &info), SHK_ENOENT);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *c;
		shk_obj_info ci = { .size = sizeof(ci) };

		setenv("SHK_CRASH", "reg.create.undo:1", 1);
		if (shk_seg_open_fd(fd, 0, NULL, &c))
			_exit(1);
		shk__obj_open(c, "x", SHK_CREATE, &d, 32768, failing_init, NULL,
			      NULL, &ci, NULL);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	/* the next locker recovers the lock: no such object */
	CHECK_RC(shk_obj_stat(seg, "x", &info), SHK_ENOENT);
	CHECK_EQ(nobjects(seg), 0);
	CHECK_OK(shk_seg_check(seg));
	memset(&r1, 0, sizeof(r1));
	CHECK_OK(shk__heap_scan(seg, &r1));
	CHECK_EQ(r1.large_live, r0.large_live + 1);
	CHECK_EQ(r1.dead_owner, r0.dead_owner + 1);
	/* and the name can be made again */
	CHECK_OK(shk_obj_open(seg, "x", SHK_CREATE, &d, NULL, NULL));
	shk_seg_close(seg);
}

/*
 * Four threads share one handle and mix create-or-open, open, remove, stat
 * and iteration on six names (three blobs, three mutexes).  No
 * create-or-open answers SHK_ENOENT: one whose object was removed between
 * its lookup and the kind's check did (about once in 4000 calls), since
 * the check ran after the registry lock.  Under SAN=thread no race is
 * reported: the kind's check (shk__kind_check_sync) read the object's
 * memory while a creator zero-filled it for a new object, and lock-free
 * copies of entries (shk_obj_next, entry_still()) read fields plainly
 * while a creator wrote them.
 */
struct mix_arg {
	shk_seg *seg;
	int id;
	int bad;      /* codes no call may return */
	int enoent;   /* SHK_ENOENT from a create-or-open */
	int last_bad; /* the last of them */
};

static void *
mix_worker(void *p)
{
	struct mix_arg *a = p;
	shk_obj_desc d = blob(0x6d6978, 8, 4), any = blob(0x6d6978, 0, 0);
	shk_obj_info info = { .size = sizeof(info) };
	uint32_t x = 0x9e3779b9u * (uint32_t)(a->id + 1), cur;
	int i, rc;

	for (i = 0; i < 5000; i++) {
		char on[16];
		shk_mutex *m = NULL;
		void *mem;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		/* blobs b0..b2, mutexes m0..m2: one kind per name */
		snprintf(on, sizeof(on), "%c%u", (x >> 8) & 1 ? 'm' : 'b',
			 (x >> 9) % 3);
		switch (x % 5) {
		case 0:
		case 1:
			if (on[0] == 'm') {
				rc = shk_mutex_open(a->seg, on, SHK_CREATE,
						    NULL, &m);
				shk_mutex_close(m);
			} else {
				rc = shk_obj_open(a->seg, on, SHK_CREATE, &d,
						  NULL, &mem);
			}
			if (rc == SHK_ENOENT)
				a->enoent++;
			else if (rc != 0)
				a->bad++, a->last_bad = rc;
			break;
		case 2:
			rc = on[0] == 'm'
				     ? shk_mutex_open(a->seg, on, 0, NULL, &m)
				     : shk_obj_open(a->seg, on, 0, &any, NULL,
						    &mem);
			shk_mutex_close(m);
			if (rc != 0 && rc != SHK_ENOENT)
				a->bad++, a->last_bad = rc;
			break;
		case 3:
			rc = shk_obj_remove(a->seg, on);
			if (rc != 0 && rc != SHK_ENOENT)
				a->bad++, a->last_bad = rc;
			break;
		default:
			rc = shk_obj_stat(a->seg, on, &info);
			if (rc != 0 && rc != SHK_ENOENT)
				a->bad++, a->last_bad = rc;
			/* the lock-free iteration copies entries that
			 * creators may be writing */
			cur = 0;
			while ((rc = shk_obj_next(a->seg, &cur, &info)) == 1)
				;
			if (rc != 0)
				a->bad++, a->last_bad = rc;
			break;
		}
	}
	return NULL;
}

static void
t_threads_create_remove_open(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("mix", &fd);
	struct mix_arg a[4];
	pthread_t th[4];
	int i;

	for (i = 0; i < 4; i++) {
		a[i] = (struct mix_arg){ .seg = seg, .id = i };
		CHECK(pthread_create(&th[i], NULL, mix_worker, &a[i]) == 0);
	}
	for (i = 0; i < 4; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	for (i = 0; i < 4; i++) {
		if (a[i].bad)
			TEST_FAIL("thread %d: %d unexpected codes, last %s", i,
				  a[i].bad, shk_errname(a[i].last_bad));
		CHECK_EQ(a[i].enoent, 0);
	}
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/*
 * A create-or-open on a writable handle found the object under the lock,
 * dropped the lock, ran the kind's check and then found the object removed
 * meanwhile: SHK_ENOENT, though it was asked to create it.  The hook, run
 * where that check starts, removes the object.  Now the check runs under
 * the lock, where no removal can come between: the hook is not reached
 * from a writable open (it would wait for the lock it holds), and the
 * open finds the object.
 */
static const char *rm_hook_name;
static int rm_hook_fired;

static void
remove_in_open(shk_seg *seg, uint32_t slot)
{
	(void)slot;
	if (rm_hook_fired++)
		return;
	CHECK_OK(shk_obj_remove(seg, rm_hook_name));
}

static void
t_create_open_during_remove(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("cor", &fd);
	shk_obj_desc d = blob(5, 8, 4);
	shk_obj_info info = { .size = sizeof(info) }, info2 = info;
	shk_mutex *m = NULL;
	void *p = NULL;

	CHECK_OK(shk_obj_open(seg, "o", SHK_CREATE, &d, &info, &p));
	rm_hook_name = "o";
	rm_hook_fired = 0;
	shk__reg_check_hook = remove_in_open;
	CHECK_OK(shk_obj_open(seg, "o", SHK_CREATE, &d, &info2, &p));
	CHECK_OK(shk_obj_open(seg, "o", 0, &d, NULL, &p));
	shk__reg_check_hook = NULL;
	CHECK_EQ(rm_hook_fired, 0);
	CHECK(p != NULL);
	CHECK_EQ(info2.created_ns, info.created_ns);
	CHECK_OK(shk_obj_stat(seg, "o", &info));
	CHECK_EQ(info.off, info2.off);
	/* the same through a structure's create-or-open */
	CHECK_OK(shk_mutex_open(seg, "mx", SHK_CREATE, NULL, &m));
	shk_mutex_close(m);
	m = NULL;
	rm_hook_name = "mx";
	rm_hook_fired = 0;
	shk__reg_check_hook = remove_in_open;
	CHECK_OK(shk_mutex_open(seg, "mx", SHK_CREATE, NULL, &m));
	shk__reg_check_hook = NULL;
	CHECK_EQ(rm_hook_fired, 0);
	CHECK(m != NULL);
	CHECK_OK(shk_mutex_lock(m, 0));
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	CHECK_OK(shk_obj_stat(seg, "mx", &info));
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/* 1 when every one of n bytes at p is v. */
static int
all_bytes(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != v)
			return 0;
	return 1;
}

/*
 * shk_obj_remove of a ring whose producer lives is SHK_EBUSY, from another
 * handle and from the producer's own: it freed the ring under the
 * producer, a blob made next got the ring's block, and the producer's
 * next write (which returned 0) changed 25 bytes of the blob.  Now the
 * blob goes elsewhere and the write lands in the ring.  Likewise for the
 * consumer; a role whose process died does not count.
 */
static void
t_remove_busy_ring(void)
{
	int fd;
	shk_seg *sa = mkseg_anon("rbr", &fd), *sb = NULL;
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_obj_info ri = { .size = sizeof(ri) }, bi = { .size = sizeof(bi) };
	shk_obj_desc d;
	shk_ring *p = NULL, *c = NULL;
	char buf[64];
	void *mem = NULL;
	pid_t pid;

	CHECK_OK(shk_seg_open_fd(fd, 0, NULL, &sb));
	ro.cap = 4096;
	CHECK_OK(
		shk_ring_open(sa, "r", SHK_CREATE, SHK_RING_PRODUCER, &ro, &p));
	CHECK_OK(shk_obj_stat(sb, "r", &ri));
	CHECK_RC(shk_obj_remove(sb, "r"), SHK_EBUSY);
	CHECK_RC(shk_obj_remove(sa, "r"), SHK_EBUSY);
	CHECK_OK(shk_obj_stat(sb, "r", &ri));
	/* nothing was freed: a blob of the ring's size goes elsewhere */
	d = blob(1, 1, ri.len);
	CHECK_OK(shk_obj_open(sb, "b", SHK_CREATE, &d, &bi, &mem));
	CHECK(bi.off != ri.off);
	memset(mem, 0xa5, ri.len);
	CHECK_OK(shk_ring_write(p, "0123456789abcdefghijklmnop", 25, 0));
	CHECK(all_bytes(mem, ri.len, 0xa5));
	shk_ring_close(p);
	/* the consumer counts too */
	CHECK_OK(shk_ring_open(sb, "r", 0, SHK_RING_CONSUMER, NULL, &c));
	CHECK_RC(shk_obj_remove(sa, "r"), SHK_EBUSY);
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), 0), 25);
	CHECK(memcmp(buf, "0123456789abcdefghijklmnop", 25) == 0);
	shk_ring_close(c);
	/* a producer whose process died does not */
	pid = fork();
	if (pid == 0) {
		shk_seg *sc = NULL;

		if (shk_seg_open_fd(fd, 0, NULL, &sc) ||
		    shk_ring_open(sc, "r", 0, SHK_RING_PRODUCER, NULL, &p))
			_exit(2);
		_exit(0); /* dies holding the role */
	}
	CHECK_EQ(test_wait(pid), 0);
	CHECK_OK(shk_obj_remove(sa, "r"));
	CHECK_RC(shk_obj_stat(sb, "r", &ri), SHK_ENOENT);
	CHECK_OK(shk_obj_remove(sa, "b"));
	CHECK_OK(shk_seg_check(sa));
	shk_seg_close(sb);
	shk_seg_close(sa);
}

/* Blocks on the semaphore (until posted, or 10 s). */
static void *
sem_sleeper(void *arg)
{
	return (void *)(intptr_t)shk_sem_wait(arg, 10000000000LL);
}

static int once_rc;

/* A once's function: its object records us as the runner. */
static int
remove_in_once(void *arg)
{
	once_rc = shk_obj_remove(arg, "o");
	return 0;
}

/* Waits until the description of object name contains what (5 s). */
static void
wait_described(shk_seg *seg, const char *name, const char *what)
{
	shk_obj_info info = { .size = sizeof(info) };
	char line[256];
	int i;

	for (i = 0; i < 5000; i++) {
		CHECK_OK(shk_obj_stat(seg, name, &info));
		if (shk_obj_describe(seg, &info, line, sizeof(line)) > 0 &&
		    strstr(line, what))
			return;
		usleep(1000);
	}
	TEST_FAIL("%s never showed '%s'", name, what);
}

/*
 * The other kinds that record parties: a bcast's writer and readers, a
 * mutex's holder, an rwlock's writer and readers, a once's runner, and a
 * sleeper on a sync object's waitpoint.  Each is SHK_EBUSY while the party
 * lives, and removable once it has left or died.  Kinds that record none
 * (a blob, an array, an open queue handle) are removed as before.
 */
static void
t_remove_busy_kinds(void)
{
	int fd;
	shk_seg *sa = mkseg_anon("rbk", &fd), *sb = NULL;
	shk_bcast *w = NULL, *rd = NULL;
	shk_mutex *m = NULL;
	shk_rwlock *rw = NULL;
	shk_once *o = NULL;
	shk_sem *sem = NULL;
	shk_queue *q = NULL;
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	shk_array_opts ao = SHK_ARRAY_OPTS_INIT;
	shk_array *arr = NULL;
	pthread_t t;
	void *ret;
	pid_t pid;

	CHECK_OK(shk_seg_open_fd(fd, 0, NULL, &sb));
	/* bcast: the writer, then a reader */
	CHECK_OK(shk_bcast_open(sa, "bc", SHK_CREATE, SHK_BCAST_WRITER, NULL,
				&w));
	CHECK_RC(shk_obj_remove(sb, "bc"), SHK_EBUSY);
	CHECK_OK(shk_bcast_open(sb, "bc", 0, SHK_BCAST_READER, NULL, &rd));
	shk_bcast_close(w);
	CHECK_RC(shk_obj_remove(sa, "bc"), SHK_EBUSY);
	shk_bcast_close(rd);
	/* a reader whose process died does not count */
	pid = fork();
	if (pid == 0) {
		shk_seg *sc = NULL;

		if (shk_seg_open_fd(fd, 0, NULL, &sc) ||
		    shk_bcast_open(sc, "bc", 0, SHK_BCAST_READER, NULL, &rd))
			_exit(2);
		_exit(0);
	}
	CHECK_EQ(test_wait(pid), 0);
	CHECK_OK(shk_obj_remove(sa, "bc"));
	/* mutex: held, then released */
	CHECK_OK(shk_mutex_open(sa, "m", SHK_CREATE, NULL, &m));
	CHECK_OK(shk_mutex_lock(m, 0));
	CHECK_RC(shk_obj_remove(sb, "m"), SHK_EBUSY);
	CHECK_OK(shk_mutex_unlock(m));
	shk_mutex_close(m);
	CHECK_OK(shk_obj_remove(sb, "m"));
	/* rwlock: a reader, then the writer */
	CHECK_OK(shk_rwlock_open(sa, "rw", SHK_CREATE, NULL, &rw));
	CHECK_OK(shk_rwlock_rdlock(rw, 0));
	CHECK_RC(shk_obj_remove(sb, "rw"), SHK_EBUSY);
	CHECK_OK(shk_rwlock_rdunlock(rw));
	CHECK_OK(shk_rwlock_wrlock(rw, 0));
	CHECK_RC(shk_obj_remove(sb, "rw"), SHK_EBUSY);
	CHECK_OK(shk_rwlock_wrunlock(rw));
	shk_rwlock_close(rw);
	CHECK_OK(shk_obj_remove(sb, "rw"));
	/* once: its runner */
	CHECK_OK(shk_once_open(sa, "o", SHK_CREATE, NULL, &o));
	once_rc = 1;
	CHECK_OK(shk_once_run(o, remove_in_once, sb, 0));
	CHECK_EQ(once_rc, SHK_EBUSY);
	shk_once_close(o);
	CHECK_OK(shk_obj_remove(sb, "o"));
	/* semaphore: a thread asleep in shk_sem_wait */
	CHECK_OK(shk_sem_open(sa, "s", SHK_CREATE, NULL, &sem));
	CHECK(pthread_create(&t, NULL, sem_sleeper, sem) == 0);
	wait_described(sb, "s", "waiters=1");
	CHECK_RC(shk_obj_remove(sb, "s"), SHK_EBUSY);
	CHECK_OK(shk_sem_post(sem, 1));
	CHECK(pthread_join(t, &ret) == 0);
	CHECK_EQ((int)(intptr_t)ret, 0);
	shk_sem_close(sem);
	CHECK_OK(shk_obj_remove(sb, "s"));
	/* no records: an open queue or array handle does not count (the
	 * documented precondition stays the caller's) */
	qo.elem_len = 8;
	qo.cap = 16;
	CHECK_OK(shk_queue_open(sa, "q", SHK_CREATE, &qo, &q));
	CHECK_OK(shk_obj_remove(sb, "q"));
	shk_queue_close(q);
	ao.elem_len = 8;
	ao.len = 16;
	CHECK_OK(shk_array_open(sa, "a", SHK_CREATE, &ao, &arr));
	CHECK_OK(shk_obj_remove(sb, "a"));
	shk_array_close(arr);
	CHECK_EQ(nobjects(sa), 0);
	CHECK_OK(shk_seg_check(sa));
	shk_seg_close(sb);
	shk_seg_close(sa);
}

/*
 * SHK_FORCE removes an object whatever it records; the stale handles then
 * leave the memory alone where they can tell: a ring's close released its
 * role into the block, which a new ring had taken with a producer of the
 * same segment handle (same stamp), and so freed that ring's producer
 * role under its live owner (a second producer got in); a ring's or
 * bcast's wait on a removed object slept until its timeout, on whatever
 * reused the block.
 */
static void
t_remove_force(void)
{
	int fd;
	shk_seg *sa = mkseg_anon("rfo", &fd), *sb = NULL;
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	shk_obj_info ri = { .size = sizeof(ri) }, i2 = { .size = sizeof(i2) };
	shk_obj_desc d;
	shk_ring *p = NULL, *p2 = NULL, *p3 = NULL;
	shk_bcast *rd = NULL, *w = NULL;
	char rec[24] = { 0 }, buf[64];
	void *mem = NULL;
	int64_t t0;
	int rc, n = 0;

	CHECK_OK(shk_seg_open_fd(fd, 0, NULL, &sb));
	CHECK_RC(shk_obj_remove_flags(sb, "x", 0x1), SHK_EINVAL);
	CHECK_RC(shk_obj_remove_flags(sb, "x", SHK_FORCE), SHK_ENOENT);
	ro.cap = 4096;
	CHECK_OK(
		shk_ring_open(sa, "r", SHK_CREATE, SHK_RING_PRODUCER, &ro, &p));
	CHECK_OK(shk_obj_stat(sb, "r", &ri));
	CHECK_RC(shk_obj_remove_flags(sb, "r", 0), SHK_EBUSY);
	/* through sa, whose heap cache takes the block back for its next
	 * allocation (another handle's would not reuse it at once) */
	CHECK_OK(shk_obj_remove_flags(sa, "r", SHK_FORCE));
	CHECK_RC(shk_obj_stat(sb, "r", &ri), SHK_ENOENT);
	/* a new ring takes the block; its producer is handle sa, as p's */
	CHECK_OK(shk_ring_open(sa, "r2", SHK_CREATE, SHK_RING_PRODUCER, &ro,
			       &p2));
	CHECK_OK(shk_obj_stat(sb, "r2", &i2));
	CHECK_EQ(i2.off, ri.off);
	shk_ring_close(p); /* stale: leaves r2's producer role alone */
	CHECK_RC(shk_ring_open(sb, "r2", 0, SHK_RING_PRODUCER, NULL, &p3),
		 SHK_EBUSY);
	CHECK_RC(shk_obj_remove(sb, "r2"), SHK_EBUSY);
	/* a producer waiting for room on a ring removed meanwhile */
	while ((rc = shk_ring_write(p2, rec, sizeof(rec), 0)) == 0)
		n++;
	CHECK_RC(rc, SHK_EAGAIN);
	CHECK(n > 0);
	CHECK_OK(shk_obj_remove_flags(sb, "r2", SHK_FORCE));
	/* its block reused: zero-filled, so the ring still looks full */
	d = blob(1, 1, i2.len);
	CHECK_OK(shk_obj_open(sb, "b", SHK_CREATE, &d, NULL, &mem));
	t0 = test_now_ns();
	CHECK_RC(shk_ring_write(p2, rec, sizeof(rec), 5000000000LL),
		 SHK_ENOENT);
	CHECK(test_now_ns() - t0 < 2000000000LL);
	shk_ring_close(p2);
	CHECK_OK(shk_obj_remove(sb, "b"));
	/* a bcast reader waiting for data on a buffer removed meanwhile */
	bo.cap = 4096;
	CHECK_OK(shk_bcast_open(sa, "bc", SHK_CREATE, SHK_BCAST_WRITER, &bo,
				&w));
	CHECK_OK(shk_bcast_open(sa, "bc", 0, SHK_BCAST_READER, NULL, &rd));
	CHECK_OK(shk_obj_stat(sb, "bc", &i2));
	CHECK_OK(shk_obj_remove_flags(sb, "bc", SHK_FORCE));
	d = blob(1, 1, i2.len);
	CHECK_OK(shk_obj_open(sb, "b", SHK_CREATE, &d, &ri, &mem));
	CHECK_EQ(ri.off, i2.off);
	t0 = test_now_ns();
	CHECK_RC(shk_bcast_read(rd, buf, sizeof(buf), NULL, 5000000000LL),
		 SHK_ENOENT);
	CHECK(test_now_ns() - t0 < 2000000000LL);
	memset(mem, 0x5a, ri.len);
	shk_bcast_close(rd); /* stale: leave the blob alone */
	shk_bcast_close(w);
	CHECK(all_bytes(mem, ri.len, 0x5a));
	CHECK_OK(shk_obj_remove(sb, "b"));
	CHECK_EQ(nobjects(sa), 0);
	shk_seg_close(sb);
	shk_seg_close(sa);
}

/*
 * A stale handle with a pollable descriptor closes without touching the
 * block: closing a ring consumer or bcast reader whose descriptor was
 * armed disarmed on the old waitpoint (its holder entry and armed count)
 * after a SHK_FORCE removal, which changed 5 bytes of a blob made next in
 * the same block.  Its socket file still goes.
 */
static void
close_stale_fd(shk_seg *sa, const char *name, uint64_t len, int fd,
	       void (*close_fn)(void *), void *h)
{
	shk_obj_info bi = { .size = sizeof(bi) };
	shk_obj_desc d = blob(1, 1, len);
	struct sockaddr_un a;
	socklen_t alen = sizeof(a);
	struct stat st;
	void *mem = NULL;

	memset(&a, 0, sizeof(a));
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	CHECK_EQ(lstat(a.sun_path, &st), 0);
	CHECK_OK(shk_obj_remove_flags(sa, name, SHK_FORCE));
	CHECK_OK(shk_obj_open(sa, "b", SHK_CREATE, &d, &bi, &mem));
	memset(mem, 0xff, bi.len);
	close_fn(h);
	CHECK(all_bytes(mem, bi.len, 0xff));
	CHECK_EQ(lstat(a.sun_path, &st), -1);
	CHECK_EQ(errno, ENOENT);
	CHECK_OK(shk_obj_remove(sa, "b"));
}

static void
ring_close_v(void *h)
{
	shk_ring_close(h);
}

static void
bcast_close_v(void *h)
{
	shk_bcast_close(h);
}

static void
t_remove_force_fd(void)
{
	int sfd, fd;
	shk_seg *sa = mkseg_anon("rffd", &sfd);
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	shk_obj_info i = { .size = sizeof(i) };
	shk_ring *c = NULL;
	shk_bcast *w = NULL, *rd = NULL;

	ro.cap = 4096;
	CHECK_OK(
		shk_ring_open(sa, "r", SHK_CREATE, SHK_RING_CONSUMER, &ro, &c));
	fd = shk_ring_fd(c); /* armed at once: the ring is empty */
	CHECK(fd >= 0);
	CHECK_OK(shk_obj_stat(sa, "r", &i));
	close_stale_fd(sa, "r", i.len, fd, ring_close_v, c);
	bo.cap = 4096;
	CHECK_OK(shk_bcast_open(sa, "bc", SHK_CREATE, SHK_BCAST_WRITER, &bo,
				&w));
	CHECK_OK(shk_bcast_open(sa, "bc", 0, SHK_BCAST_READER, NULL, &rd));
	fd = shk_bcast_fd(rd);
	CHECK(fd >= 0);
	CHECK_OK(shk_obj_stat(sa, "bc", &i));
	close_stale_fd(sa, "bc", i.len, fd, bcast_close_v, rd);
	shk_bcast_close(w);
	CHECK_EQ(nobjects(sa), 0);
	CHECK_OK(shk_seg_check(sa));
	shk_seg_close(sa);
}

/*
 * A call asleep when its object is removed with SHK_FORCE wakes up
 * without writing to the block, and returns SHK_ENOENT: it gave back its
 * waiter count and holder entry on the old waitpoint and ran its
 * predicate on whatever took the block before its dead-peer test noticed
 * the removal; with a blob of 0xff bytes there, a ring producer's write
 * returned SHK_ECORRUPT and changed 5 bytes of the blob (a bcast reader
 * likewise).  Each sleeper is a child process (its own segment handle);
 * the parent removes and reuses the block through its own handle, whose
 * heap cache hands the block out again at once.
 */
enum { SL_RING_PRODUCER, SL_BCAST_READER, SL_BCAST_WRITER };

static int
sleeper_child(int sfd, int what)
{
	shk_seg *s = NULL;
	shk_ring *p = NULL;
	shk_bcast *b = NULL;
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	char rec[24] = { 0 }, buf[64];
	int rc;

	if (shk_seg_open_fd(sfd, 0, NULL, &s))
		return 2;
	bo.reader_timeout_ns = 50000000;
	switch (what) {
	case SL_RING_PRODUCER:
		if (shk_ring_open(s, "o", 0, SHK_RING_PRODUCER, NULL, &p))
			return 3;
		while ((rc = shk_ring_write(p, rec, sizeof(rec), 0)) == 0)
			;
		if (rc != SHK_EAGAIN)
			return 4;
		rc = shk_ring_write(p, rec, sizeof(rec), SHK_FOREVER);
		break;
	case SL_BCAST_READER:
		if (shk_bcast_open(s, "o", 0, SHK_BCAST_READER, NULL, &b))
			return 3;
		rc = shk_bcast_read(b, buf, sizeof(buf), NULL, SHK_FOREVER);
		break;
	default:
		if (shk_bcast_open(s, "o", 0, SHK_BCAST_WRITER, &bo, &b))
			return 3;
		while ((rc = shk_bcast_write(b, rec, sizeof(rec), 0)) == 0)
			;
		if (rc != SHK_EAGAIN)
			return 4;
		rc = shk_bcast_write(b, rec, sizeof(rec), SHK_FOREVER);
		break;
	}
	if (rc == SHK_ENOENT)
		return 0;
	return rc == SHK_ECORRUPT ? 5 : rc == 0 ? 6 : 7;
}

static void
force_sleeper(int sfd, shk_seg *sa, int what, const char *asleep)
{
	shk_obj_info oi = { .size = sizeof(oi) }, bi = { .size = sizeof(bi) };
	shk_obj_desc d;
	void *mem = NULL;
	pid_t pid;

	CHECK_OK(shk_obj_stat(sa, "o", &oi));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(sleeper_child(sfd, what));
	wait_described(sa, "o", asleep);
	usleep(2000); /* from its count to its futex_wait */
	CHECK_OK(shk_obj_remove_flags(sa, "o", SHK_FORCE));
	d = blob(1, 1, oi.len);
	CHECK_OK(shk_obj_open(sa, "b", SHK_CREATE, &d, &bi, &mem));
	CHECK_EQ(bi.off, oi.off);
	memset(mem, 0xff, bi.len);
	CHECK_EQ(test_wait(pid), 0);
	CHECK(all_bytes(mem, bi.len, 0xff));
	CHECK_OK(shk_obj_remove(sa, "b"));
}

static void
t_remove_force_sleeper(void)
{
	int sfd;
	shk_seg *sa = mkseg_anon("rfsl", &sfd);
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	shk_ring *r = NULL;
	shk_bcast *w = NULL, *rd = NULL;

	/* a ring producer waiting for room */
	ro.cap = 4096;
	CHECK_OK(
		shk_ring_open(sa, "o", SHK_CREATE, SHK_RING_PRODUCER, &ro, &r));
	shk_ring_close(r);
	force_sleeper(sfd, sa, SL_RING_PRODUCER, "waiters=0/1");
	/* a bcast reader waiting for data */
	bo.cap = 4096;
	CHECK_OK(
		shk_bcast_open(sa, "o", SHK_CREATE, SHK_BCAST_WRITER, &bo, &w));
	force_sleeper(sfd, sa, SL_BCAST_READER, "waiters=1/0");
	shk_bcast_close(w);
	/* a reliable bcast writer waiting for a live reader (ours) */
	bo.mode = SHK_BCAST_RELIABLE;
	CHECK_OK(shk_bcast_open(sa, "o", SHK_CREATE, SHK_BCAST_READER, &bo,
				&rd));
	force_sleeper(sfd, sa, SL_BCAST_WRITER, "waiters=0/1");
	shk_bcast_close(rd);
	CHECK_EQ(nobjects(sa), 0);
	CHECK_OK(shk_seg_check(sa));
	shk_seg_close(sa);
}

/*
 * Creation times rise within a slot: a stale handle (after a SHK_FORCE
 * removal) tells its object from a later one in the same slot, at the
 * same offset and with the same name, by created_ns alone.  With a clock
 * that reads no later than the slot's previous creation (a coarse tick,
 * or a small step back; faked here by moving the DELETED entry's time
 * ahead) the new object got the clock's time, which may equal the old
 * one's.  Now it gets one ns more than the previous; a step back of a
 * second or more is taken as it is.
 */
static void
t_created_ns_rises(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("crns", &fd);
	shk_obj_desc d = blob(1, 8, 8);
	shk_obj_info i1 = { .size = sizeof(i1) }, i2 = { .size = sizeof(i2) };
	struct timespec ts;
	uint64_t ahead, now;
	void *p = NULL;

	CHECK_OK(shk_obj_open(seg, "x", SHK_CREATE, &d, &i1, &p));
	CHECK_OK(shk_obj_remove(seg, "x"));
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	ahead = now + 500000000u; /* the clock stepped back by 0.5 s */
	ent_at(seg, i1.slot)->created_ns = ahead;
	CHECK_OK(shk_obj_open(seg, "x", SHK_CREATE, &d, &i2, &p));
	CHECK_EQ(i2.slot, i1.slot);
	CHECK_EQ(i2.created_ns, ahead + 1);
	CHECK_OK(shk_obj_remove(seg, "x"));
	/* stepped back by 10 s: the clock's time */
	ahead = now + 10000000000u;
	ent_at(seg, i1.slot)->created_ns = ahead;
	CHECK_OK(shk_obj_open(seg, "x", SHK_CREATE, &d, &i2, &p));
	CHECK_EQ(i2.slot, i1.slot);
	CHECK(i2.created_ns >= now && i2.created_ns < ahead);
	CHECK_OK(shk_obj_remove(seg, "x"));
	/* a damaged time at the top does not wrap to 0 */
	ent_at(seg, i1.slot)->created_ns = UINT64_MAX;
	CHECK_OK(shk_obj_open(seg, "x", SHK_CREATE, &d, &i2, &p));
	CHECK(i2.created_ns >= now && i2.created_ns != UINT64_MAX);
	CHECK_OK(shk_obj_remove(seg, "x"));
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/*
 * t_rdonly_stat_recreate: read-only handles (lock-free lookups: stat_nolock,
 * shk__reg_check) copy entries while a writer removes and re-creates
 * objects in the same few slots.  Every copy a lookup returns must be one
 * creation's: each creation n encodes n and its name in type_id and
 * derives elem_len, cap and len from n, and the writer logs each
 * creation's offset, which the main thread compares with the (n, off)
 * pairs the readers saw.  This guards the seqlock protocol of registry.c
 * (created_ns as the version, the creator's release fences, the readers'
 * acquire loads and fence).  It cannot show the reordering that the
 * memory-ordering audit found (a torn copy accepted on POWER, which is
 * not multi-copy atomic): x86 keeps stores in order, so it passes on x86
 * without the fences too.
 */
#define RSR_ROUNDS 100000
#define RSR_SAMPLES 65536 /* the last ones each reader saw */

struct rsr_arg {
	shk_seg *ro;
	_Atomic int *stop;
	_Atomic int *seen; /* objects seen by either reader */
	uint64_t gen[RSR_SAMPLES], off[RSR_SAMPLES];
	int nsamples, good, bad;
	char why[128];
};

static shk_obj_desc
rsr_desc(uint32_t n, char name)
{
	return blob(((uint64_t)n << 8) | (unsigned char)name, 1 + n % 7,
		    1 + n % 13);
}

/* 1 when info, found under name nm, is one creation's copy; otherwise
 * counts it bad and says why */
static int
rsr_one_creation(struct rsr_arg *a, const shk_obj_info *info, const char *nm)
{
	uint64_t n = info->type_id >> 8;

	if (strcmp(info->name, nm) != 0 || info->kind != SHK_KIND_BLOB ||
	    (info->type_id & 0xff) != (unsigned char)nm[0] ||
	    info->elem_len != 1 + n % 7 || info->cap != 1 + n % 13 ||
	    info->len != info->elem_len * info->cap || n == 0 ||
	    n > RSR_ROUNDS) {
		a->bad++;
		snprintf(a->why, sizeof(a->why),
			 "torn: name %s type %#llx elem %u cap %llu len %llu",
			 info->name, (unsigned long long)info->type_id,
			 (unsigned)info->elem_len,
			 (unsigned long long)info->cap,
			 (unsigned long long)info->len);
		return 0;
	}
	a->gen[a->good % RSR_SAMPLES] = n;
	a->off[a->good % RSR_SAMPLES] = info->off;
	if (++a->good <= RSR_SAMPLES)
		a->nsamples = a->good;
	/* relaxed: a count the writer polls; nothing is published by it */
	atomic_fetch_add_explicit(a->seen, 1, memory_order_relaxed);
	return 1;
}

static void *
rsr_reader(void *p)
{
	struct rsr_arg *a = p;
	shk_obj_info info = { .size = sizeof(info) };
	static const char *const names[] = { "a", "b" };
	uint32_t cur;
	int k = 0, rc;

	/* relaxed: a flag polled in a loop; nothing is published by it */
	while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
		const char *nm = names[k++ & 1];

		if ((k & 63) == 0 && (rc = shk__reg_check(a->ro)) != 0) {
			a->bad++;
			snprintf(a->why, sizeof(a->why), "reg_check: %s",
				 shk_errname(rc));
			continue;
		}
		if ((k & 15) == 0) {
			/* iteration copies entries lock-free too */
			cur = 0;
			while ((rc = shk_obj_next(a->ro, &cur, &info)) == 1)
				if (info.name[0] != 'f')
					rsr_one_creation(a, &info, info.name);
			if (rc != 0) {
				a->bad++;
				snprintf(a->why, sizeof(a->why), "next: %s",
					 shk_errname(rc));
			}
			continue;
		}
		rc = shk_obj_stat(a->ro, nm, &info);
		if (rc == SHK_ENOENT || rc == SHK_EAGAIN)
			continue;
		if (rc != 0) {
			a->bad++;
			snprintf(a->why, sizeof(a->why), "stat: %s",
				 shk_errname(rc));
			continue;
		}
		rsr_one_creation(a, &info, nm);
	}
	return NULL;
}

static void
t_rdonly_stat_recreate(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "rsr", 4), *ro[2];
	struct rsr_arg *a[2];
	pthread_t th[2];
	_Atomic int stop = 0, seen = 0;
	uint64_t *log = calloc(RSR_ROUNDS + 1, sizeof(*log));
	shk_obj_info info = { .size = sizeof(info) };
	uint32_t n, rounds = RSR_ROUNDS;
	int i, j, rc;

	CHECK(log != NULL);
#ifdef TEST_TSAN
	rounds = RSR_ROUNDS / 10;
#endif
	if (test_valgrind())
		rounds = RSR_ROUNDS / 20;
	for (i = 0; i < 2; i++) {
		CHECK_OK(shk_seg_open(nm, SHK_RDONLY, NULL, &ro[i]));
		a[i] = calloc(1, sizeof(*a[i]));
		CHECK(a[i] != NULL);
		a[i]->ro = ro[i];
		a[i]->stop = &stop;
		a[i]->seen = &seen;
		CHECK(pthread_create(&th[i], NULL, rsr_reader, a[i]) == 0);
	}
	/* on past the planned rounds (up to RSR_ROUNDS) until a reader has
	 * seen an object: under valgrind, which runs one thread at a time,
	 * the readers once saw none in the planned rounds (CI, 2026-11-25) */
	for (n = 1; n <= rounds ||
		    (n <= RSR_ROUNDS &&
		     !atomic_load_explicit(&seen, memory_order_relaxed));
	     n++) {
		char on[2] = { n & 1 ? 'a' : 'b', 0 };
		shk_obj_desc d = rsr_desc(n, on[0]);
		void *mem;

		/* past the plan: a system call, so that valgrind's scheduler
		 * lets the readers run (it did not, for 100000 rounds) */
		if (n > rounds)
			usleep(100);

		rc = shk_obj_remove(seg, on);
		CHECK(rc == 0 || rc == SHK_ENOENT);
		/* a filler of changing size moves the next blocks */
		if (n % 3 == 0) {
			shk_obj_desc f = blob(1, 64, 1 + n % 5);

			rc = shk_obj_remove(seg, "f");
			CHECK(rc == 0 || rc == SHK_ENOENT);
			CHECK_OK(shk_obj_open(seg, "f", SHK_CREATE, &f, NULL,
					      &mem));
		}
		CHECK_OK(shk_obj_open(seg, on, SHK_CREATE | SHK_EXCL, &d, &info,
				      &mem));
		log[n] = info.off;
	}
	/* relaxed: the join below orders everything */
	atomic_store_explicit(&stop, 1, memory_order_relaxed);
	for (i = 0; i < 2; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	for (i = 0; i < 2; i++) {
		if (a[i]->bad)
			TEST_FAIL("reader %d: %d bad copies, last %s", i,
				  a[i]->bad, a[i]->why);
		for (j = 0; j < a[i]->nsamples; j++)
			if (a[i]->off[j] != log[a[i]->gen[j]])
				TEST_FAIL("reader %d: creation %llu at off "
					  "%llu, seen at %llu",
					  i, (unsigned long long)a[i]->gen[j],
					  (unsigned long long)log[a[i]->gen[j]],
					  (unsigned long long)a[i]->off[j]);
	}
	/* the readers saw objects, not only ENOENT: the test looked */
	fprintf(stderr, "  %u rounds, %d seen, %d and %d objects read\n", n - 1,
		atomic_load(&seen), a[0]->good, a[1]->good);
	CHECK(a[0]->good + a[1]->good > 0);
	for (i = 0; i < 2; i++) {
		shk_seg_close(ro[i]);
		free(a[i]);
	}
	free(log);
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

/*
 * A structure's open records its party (a ring's role) under the registry
 * lock, after checking that the object is still there: a removal between
 * the open's lookup and its claim (the hook) left the open with a role in
 * a freed block and returned 0.  Now a create-or-open starts over and
 * makes the ring again; a plain open answers SHK_ENOENT.
 */
static int attach_fired;

static void
remove_before_attach(shk_seg *seg)
{
	if (attach_fired++)
		return;
	CHECK_OK(shk_obj_remove(seg, "r"));
}

static void
t_remove_before_attach(void)
{
	int fd;
	shk_seg *sa = mkseg_anon("rba", &fd);
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	shk_obj_info i1 = { .size = sizeof(i1) }, i2 = { .size = sizeof(i2) };
	shk_ring *p = NULL, *c = NULL;
	shk_bcast *b = NULL;
	char buf[8];

	ro.cap = 4096;
	CHECK_OK(
		shk_ring_open(sa, "r", SHK_CREATE, SHK_RING_PRODUCER, &ro, &p));
	shk_ring_close(p);
	p = NULL;
	CHECK_OK(shk_obj_stat(sa, "r", &i1));
	attach_fired = 0;
	shk__reg_attach_hook = remove_before_attach;
	CHECK_RC(shk_ring_open(sa, "r", 0, SHK_RING_CONSUMER, NULL, &c),
		 SHK_ENOENT);
	CHECK(c == NULL);
	CHECK_EQ(attach_fired, 1);
	CHECK_RC(shk_obj_stat(sa, "r", &i2), SHK_ENOENT);
	/* create-or-open: starts over, makes a new ring and attaches */
	CHECK_OK(
		shk_ring_open(sa, "r", SHK_CREATE, SHK_RING_PRODUCER, &ro, &p));
	attach_fired = 0;
	shk_ring_close(p);
	p = NULL;
	CHECK_OK(
		shk_ring_open(sa, "r", SHK_CREATE, SHK_RING_PRODUCER, &ro, &p));
	shk__reg_attach_hook = NULL;
	CHECK_EQ(attach_fired, 2);
	CHECK_OK(shk_obj_stat(sa, "r", &i2));
	CHECK(i2.created_ns != i1.created_ns);
	CHECK_RC(shk_obj_remove(sa, "r"), SHK_EBUSY);
	CHECK_OK(shk_ring_write(p, "x", 1, 0));
	CHECK_OK(shk_ring_open(sa, "r", 0, SHK_RING_CONSUMER, NULL, &c));
	CHECK_EQ(shk_ring_read(c, buf, sizeof(buf), 0), 1);
	shk_ring_close(c);
	shk_ring_close(p);
	CHECK_OK(shk_obj_remove(sa, "r"));
	/* the same for a bcast reader */
	bo.cap = 4096;
	CHECK_OK(shk_bcast_open(sa, "r", SHK_CREATE | SHK_EXCL,
				SHK_BCAST_WRITER, &bo, &b));
	shk_bcast_close(b);
	b = NULL;
	attach_fired = 0;
	shk__reg_attach_hook = remove_before_attach;
	CHECK_RC(shk_bcast_open(sa, "r", 0, SHK_BCAST_READER, NULL, &b),
		 SHK_ENOENT);
	shk__reg_attach_hook = NULL;
	CHECK(b == NULL);
	CHECK_EQ(attach_fired, 1);
	CHECK_EQ(nobjects(sa), 0);
	CHECK_OK(shk_seg_check(sa));
	shk_seg_close(sa);
}

/*
 * shk_seg_check judges where each READY entry points: at the payload of a
 * live heap block of its own with room for the object (a small block and
 * a large one), never inside another object, at a freed block, or at an
 * object another entry names.  Before 2026-11-25 an entry moved onto
 * another object passed the check (`shmkit dump` then showed the other
 * object's bytes).  Each forgery is undone after, and the check is ok.
 */
static void
t_check_entry_block(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("rblk", &fd);
	shk_obj_desc ds = blob(1, 64, 16), dl = blob(1, 1024, 64);
	shk_obj_info a = { .size = sizeof(a) }, b = { .size = sizeof(b) };
	shk_obj_info l = { .size = sizeof(l) };
	struct shk__reg_ent *eb, *el;
	uint64_t fs, fl, keep_b, keep_l;

	CHECK_OK(shk_obj_open(seg, "a", SHK_CREATE, &ds, &a, NULL));
	CHECK_OK(shk_obj_open(seg, "b", SHK_CREATE, &ds, &b, NULL));
	CHECK_OK(shk_obj_open(seg, "l", SHK_CREATE, &dl, &l, NULL));
	/* a freed small block of a's size and a freed large one of l's */
	CHECK_OK(shk__heap_alloc_aligned(seg, a.len, 64, &fs));
	CHECK_OK(shk__heap_alloc_aligned(seg, l.len, 64, &fl));
	CHECK_OK(shk_free(seg, fs));
	CHECK_OK(shk_free(seg, fl));
	CHECK_OK(shk_seg_check(seg));
	eb = ent_at(seg, b.slot);
	el = ent_at(seg, l.slot);
	keep_b = eb->off;
	keep_l = el->off;
	/* b names a's block: both fit it, the two overlap */
	eb->off = a.off;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	/* b inside a's block: no block starts there */
	eb->off = a.off + 64;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	/* b at a freed small block */
	eb->off = fs;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	eb->off = keep_b;
	CHECK_OK(shk_seg_check(seg));
	/* l inside its own block, at a freed large block, at a small one */
	el->off = keep_l + 64;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	el->off = fl;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	el->off = a.off;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	el->off = keep_l;
	CHECK_OK(shk_seg_check(seg));
	/* a longer len than the block holds (the blob's cap follows) */
	el->len += 4096;
	el->cap += 4;
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	el->len -= 4096;
	el->cap -= 4;
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/*
 * shk_seg_check judges the registry's count and the attach table: a count
 * of READY entries above the capacity (info showed "objects: 65286 of
 * 16"), and an attach record in state 3 (none of FREE, CLAIMING, ACTIVE),
 * both passed before 2026-11-25.
 */
static void
t_check_count_attach(void)
{
	int fd;
	shk_seg *seg = mkseg_anon("rcnt", &fd);
	shk_obj_desc d = blob(1, 8, 8);
	_Atomic uint32_t *cnt = &shk__hdr(seg)->reg_count;
	_Atomic uint64_t *w = &shk__attach_at(seg, seg->attach_cap - 1)->word;
	uint32_t keep;
	uint64_t keepw;

	CHECK_OK(shk_obj_open(seg, "e", SHK_CREATE, &d, NULL, NULL));
	keep = atomic_load(cnt);
	CHECK_EQ(keep, 1);
	atomic_store(cnt, seg->reg_cap + 1);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	atomic_store(cnt, seg->reg_cap); /* within the capacity: a count */
	CHECK_OK(shk_seg_check(seg));
	atomic_store(cnt, keep);
	keepw = atomic_load(w);
	CHECK_EQ(SHK__ATT_STATE(keepw), SHK__ATT_FREE);
	atomic_store(w, ~(uint64_t)0);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	atomic_store(w, keepw);
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
}

/* The hook of t_check_during_free: removes "s" (its block goes back to
 * the heap, free) while the check is between its copy and its judgment. */
static void
free_under_check(shk_seg *seg, uint32_t slot)
{
	(void)seg;
	(void)slot;
	if (cdr_fired++)
		return;
	CHECK_OK(shk_obj_remove(cdr_seg, "s"));
}

/* An object removed, its block free, after the check copied its entry is
 * no damage: the block test must not count it (the entry changed). */
static void
t_check_during_free(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "cdf", 0);

	arm_remove_under_check(seg);
	shk__reg_check_hook = free_under_check;
	CHECK_OK(shk_seg_check(seg));
	shk__reg_check_hook = NULL;
	CHECK_EQ(cdr_fired, 1);
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* Threads that create and remove objects (small and large blocks) through
 * their own handles while the main thread checks: never SHK_ECORRUPT. */
struct churn_arg {
	const char *nm;
	int id;
	_Atomic int *stop;
	int err;
};

static void *
churn(void *p)
{
	struct churn_arg *c = p;
	shk_seg *seg = NULL;
	char name[32];
	unsigned i = 0;

	if (shk_seg_open(c->nm, 0, NULL, &seg)) {
		c->err = 1;
		return NULL;
	}
	while (!atomic_load(c->stop)) {
		shk_obj_desc d = blob(1, 64, (i % 3) ? 4 : 512);

		snprintf(name, sizeof(name), "c%d-%u", c->id, i % 8);
		if (i / 8 % 2 == 0) {
			if (shk_obj_open(seg, name, SHK_CREATE, &d, NULL, NULL))
				c->err = 1;
		} else if (shk_obj_remove(seg, name)) {
			c->err = 1;
		}
		i++;
	}
	shk_seg_close(seg);
	return NULL;
}

static void
t_check_while_churn(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "chn", 64), *ro = NULL;
	struct churn_arg ca[2];
	pthread_t th[2];
	_Atomic int stop = 0;
	int64_t t0;
	int i, n = 0;

	CHECK_OK(shk_seg_open(nm, SHK_RDONLY, NULL, &ro));
	for (i = 0; i < 2; i++) {
		ca[i] = (struct churn_arg){ nm, i, &stop, 0 };
		CHECK_EQ(pthread_create(&th[i], NULL, churn, &ca[i]), 0);
	}
	t0 = test_now_ns();
	while (test_now_ns() - t0 < 500000000LL) {
		CHECK_OK(shk_seg_check(seg));
		CHECK_OK(shk_seg_check(ro));
		n++;
	}
	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++) {
		CHECK_EQ(pthread_join(th[i], NULL), 0);
		CHECK_EQ(ca[i].err, 0);
	}
	CHECK(n > 0);
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(ro);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/*
 * A registry lock word that names the caller's own handle, which does not
 * hold it (seg->reg_mu serialises the handle's threads; no holder takes
 * the lock again), is damage: a creating open returns SHK_ECORRUPT, a
 * documented code, and works again once the word is free.  Before, the
 * lock's SHK_EDEADLK came out of the open (found with fuzz_chan's probe of
 * the heap lock, which had the same hole).
 */
static void
t_lock_names_self(void)
{
	char nm[64];
	shk_seg *seg = mkseg(nm, "lkself", 0);
	_Atomic uint32_t *w = &shk__hdr(seg)->reg_lock;
	shk_mutex *m = NULL;

	CHECK_EQ(atomic_load(w), 0);
	/* seq_cst: test scribbling on a quiescent segment */
	atomic_store(w, shk__seg_stamp(seg));
	CHECK_RC(shk_mutex_open(seg, "m", SHK_CREATE, NULL, &m), SHK_ECORRUPT);
	CHECK(m == NULL);
	atomic_store(w, 0);
	CHECK_OK(shk_mutex_open(seg, "m", SHK_CREATE, NULL, &m));
	shk_mutex_close(m);
	CHECK_OK(shk_seg_check(seg));
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
}

TEST_MAIN({ "create_open_types", t_create_open_types },
	  { "lock_names_self", t_lock_names_self },
	  { "create_undo_killed", t_create_undo_killed },
	  { "rdonly_open", t_rdonly_open },
	  { "stat_next_remove", t_stat_next_remove },
	  { "registry_full", t_registry_full },
	  { "create_or_open_race", t_create_or_open_race },
	  { "creator_killed", t_creator_killed },
	  { "recoverer_killed", t_recoverer_killed },
	  { "corrupt_entry", t_corrupt_entry },
	  { "blob_size_entry", t_blob_size_entry },
	  { "threads_share_handle", t_threads_share_handle },
	  { "errno_values", t_errno_values }, { "kind_names", t_kind_names },
	  { "bad_state", t_bad_state },
	  { "recover_bad_off", t_recover_bad_off },
	  { "check_during_remove", t_check_during_remove },
	  { "describe_after_remove", t_describe_after_remove },
	  { "open_during_remove", t_open_during_remove },
	  { "rdonly_creating", t_rdonly_creating },
	  { "count_after_kill", t_count_after_kill },
	  { "remover_killed", t_remover_killed },
	  { "threads_create_remove_open", t_threads_create_remove_open },
	  { "create_open_during_remove", t_create_open_during_remove },
	  { "remove_busy_ring", t_remove_busy_ring },
	  { "remove_busy_kinds", t_remove_busy_kinds },
	  { "remove_force", t_remove_force },
	  { "remove_force_fd", t_remove_force_fd },
	  { "remove_force_sleeper", t_remove_force_sleeper },
	  { "created_ns_rises", t_created_ns_rises },
	  { "rdonly_stat_recreate", t_rdonly_stat_recreate },
	  { "remove_before_attach", t_remove_before_attach },
	  { "check_entry_block", t_check_entry_block },
	  { "check_count_attach", t_check_count_attach },
	  { "check_during_free", t_check_during_free },
	  { "check_while_churn", t_check_while_churn })
