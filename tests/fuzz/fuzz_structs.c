/*
 * fuzz_structs.c - libFuzzer target over the structures' data paths on a
 * corrupted segment (ALGORITHMS §10).  fuzz_segment.c only opens, checks
 * and describes a patched image; this target also runs every structure's
 * operations on it: a patched counter, index, link, length or heap header
 * must give an error code (SHK_ECORRUPT, ...), never a crash, a sanitizer
 * report, an access outside the object, or a hang.
 *
 * The image is built once, in a child process that exits before the image
 * is used, so no attach record names a live process (a lock word patched
 * to name one would wait out its lock's timeout, seconds, on every call).
 * The copy is taken while the builder still holds a read hold of the
 * rwlock, so the image has the share of a reader that died.
 * It holds one object of every structure kind with live contents: rings
 * (wrapped, records pending; one SHK_RING_SPIN), a queue, a stack, two
 * broadcast buffers (lossy, reliable), a map, a pool with blocks
 * allocated, an array, a mutex, a semaphore, a reader-writer lock (a
 * read hold left by the builder, who exits: a dead reader's share), a
 * barrier, a latch (counted down part-way), two events (auto-reset, set;
 * manual), a condition variable, two once-flags (one run, one not) and a
 * few heap blocks.  Channels open their segment by name: fuzz_chan.c.
 *
 * Input format: repeated 6-byte records
 *   {u8 target, u8 off0, u8 off1, u8 off2, u8 value, u8 op}
 * target bits 0-6 pick a region: object i (from 64 bytes before its
 * memory, so the heap's block header is in reach, to its end), a heap
 * block from shk_alloc, the heap's first 8 KiB (its metadata), or the
 * whole image;
 * the 24-bit offset is taken modulo the region's length.  op picks a byte
 * store, a byte xor, an 8-byte fill, or a signed add of value to the
 * aligned u32 or u64 there (counters, indices and links move by small
 * steps), a store of a small signed value to it, or a store to the
 * aligned u64 of an offset into another region (a forged link).
 * A patch whose target has bit 7 clear is applied before the segment is
 * opened (the open-time checks see it); bit 7 set applies it after every
 * handle is open, as a hostile or broken peer would, so the data paths
 * meet memory that changed behind the validated handles.
 * The data paths all run with timeout 0 and bounded loops; the target
 * also aborts when a ring, pool, array or heap call hands out memory
 * outside its object (or the heap), which no sanitizer would notice.
 */
#include <shmkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz_patch.h"
#include "segment.h"

#define IMG_LEN (512u << 10)
#define MAX_REGIONS 32
#define NHEAP 6
#define MAX_PATCHES 64

/* Built by the child, in a shared anonymous mapping. */
struct built {
	uint32_t nregions;
	uint32_t nheap;
	struct region reg[MAX_REGIONS];
	uint64_t heap_blocks[NHEAP];
	shk_rwlock *rw; /* the builder's, read-held (build_objects()) */
	uint8_t image[IMG_LEN];
};

static struct built *img;
static volatile uint64_t sink;
static int trace; /* env SHK_FUZZ_TRACE: print each open's code (triage) */

static int
opened(const char *what, int rc)
{
	if (trace)
		fprintf(stderr, "open %s: %s\n", what, shk_errname(rc));
	return rc;
}

static void
touch(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0;
	size_t i;

	for (i = 0; i < len; i++)
		h = h * 31 + b[i];
	sink += h;
}

static void
add_region(uint64_t off, uint64_t len)
{
	if (img->nregions < MAX_REGIONS) {
		img->reg[img->nregions].off = off;
		img->reg[img->nregions].len = len;
		img->nregions++;
	}
}

static void
build_ring(shk_seg *seg, const char *name, uint64_t cap, unsigned flags)
{
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_ring *p = NULL, *c = NULL;
	char rec[64], buf[256];
	int i;

	ro.cap = cap;
	ro.flags = flags;
	if (shk_ring_open(seg, name, SHK_CREATE, SHK_RING_PRODUCER, &ro, &p))
		abort();
	if (shk_ring_open(seg, name, 0, SHK_RING_CONSUMER, &ro, &c))
		abort();
	memset(rec, 'r', sizeof(rec));
	/* fill and drain past the end of the data area once (a PAD record
	 * at the wrap), then leave records of several lengths pending */
	for (i = 0; i < (int)(cap / 40) + 2; i++) {
		if (shk_ring_write(p, rec, (size_t)(i % 40), 0) == 0)
			shk_ring_read(c, buf, sizeof(buf), 0);
	}
	for (i = 0; i < 5; i++)
		shk_ring_write(p, rec, (size_t)(i * 7 % 33), 0);
	shk_ring_close(c);
	shk_ring_close(p);
}

static int
once_fn(void *arg)
{
	(void)arg;
	sink++;
	return 0;
}

static void
build_objects(shk_seg *seg)
{
	build_ring(seg, "ring", 512, 0);
	build_ring(seg, "spin", 256, SHK_RING_SPIN);
	{
		shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
		shk_queue *q;
		uint64_t v;

		qo.cap = 16;
		qo.elem_len = 8;
		if (shk_queue_open(seg, "queue", SHK_CREATE, &qo, &q))
			abort();
		/* wrap the indices once, leave 5 elements */
		for (v = 0; v < 20; v++) {
			shk_queue_push(q, &v, 0);
			if (v < 15)
				shk_queue_pop(q, &v, 0);
		}
		shk_queue_close(q);
	}
	{
		shk_stack_opts so = SHK_STACK_OPTS_INIT;
		shk_stack *s;
		uint64_t v;

		so.cap = 16;
		so.elem_len = 8;
		if (shk_stack_open(seg, "stack", SHK_CREATE, &so, &s))
			abort();
		for (v = 0; v < 8; v++)
			shk_stack_push(s, &v, 0);
		shk_stack_pop(s, &v, 0);
		shk_stack_close(s);
	}
	{
		shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
		shk_bcast *w, *r;
		char rec[48], buf[256];
		int i;

		bo.cap = 512;
		bo.max_readers = 4;
		bo.mode = SHK_BCAST_LOSSY;
		if (shk_bcast_open(seg, "bcast", SHK_CREATE, SHK_BCAST_WRITER,
				   &bo, &w))
			abort();
		if (shk_bcast_open(seg, "bcast", 0, SHK_BCAST_READER, &bo, &r))
			abort();
		memset(rec, 'b', sizeof(rec));
		for (i = 0; i < 30; i++) {
			shk_bcast_write(w, rec, (size_t)(i % 48), 0);
			if (i % 3 == 0)
				shk_bcast_read(r, buf, sizeof(buf), NULL, 0);
		}
		shk_bcast_close(r);
		shk_bcast_close(w);
		bo.mode = SHK_BCAST_RELIABLE;
		bo.cap = 256;
		if (shk_bcast_open(seg, "bcastr", SHK_CREATE, SHK_BCAST_WRITER,
				   &bo, &w))
			abort();
		if (shk_bcast_open(seg, "bcastr", 0, SHK_BCAST_READER, &bo, &r))
			abort();
		for (i = 0; i < 12; i++) {
			shk_bcast_write(w, rec, (size_t)(i * 5 % 40), 0);
			shk_bcast_read(r, buf, sizeof(buf), NULL, 0);
		}
		shk_bcast_write(w, rec, 20, 0);
		shk_bcast_close(r);
		shk_bcast_close(w);
	}
	{
		shk_map_opts mo = SHK_MAP_OPTS_INIT;
		shk_map *m;
		uint64_t k, v;

		mo.cap = 16;
		mo.key_len = 8;
		mo.val_len = 8;
		if (shk_map_open(seg, "map", SHK_CREATE, &mo, &m))
			abort();
		for (k = 1; k <= 9; k++) {
			v = k * 100;
			shk_map_put(m, &k, &v);
		}
		k = 4;
		shk_map_delete(m, &k); /* a tombstone */
		shk_map_close(m);
	}
	{
		shk_pool_opts po = SHK_POOL_OPTS_INIT;
		shk_pool *p;
		uint64_t off[6];
		int i;

		po.cap = 8;
		po.block_len = 64;
		if (shk_pool_open(seg, "pool", SHK_CREATE, &po, &p))
			abort();
		for (i = 0; i < 6; i++)
			shk_pool_alloc(p, &off[i], NULL);
		shk_pool_free(p, off[1]);
		shk_pool_free(p, off[4]);
		shk_pool_close(p);
	}
	{
		shk_array_opts ao = SHK_ARRAY_OPTS_INIT;
		shk_array *a;

		ao.len = 16;
		ao.elem_len = 8;
		if (shk_array_open(seg, "array", SHK_CREATE, &ao, &a))
			abort();
		shk_array_store_u64(a, 3, 42);
		shk_array_close(a);
		ao.elem_len = 4;
		if (shk_array_open(seg, "array4", SHK_CREATE, &ao, &a))
			abort();
		shk_array_close(a);
	}
	{
		shk_sync_opts so = SHK_SYNC_OPTS_INIT;
		shk_mutex *m;
		shk_sem *s;

		if (shk_mutex_open(seg, "mutex", SHK_CREATE, &so, &m) == 0)
			shk_mutex_close(m);
		so.count = 2;
		if (shk_sem_open(seg, "sem", SHK_CREATE, &so, &s) == 0)
			shk_sem_close(s);
	}
	{
		shk_sync_opts so = SHK_SYNC_OPTS_INIT;
		shk_rwlock *rw;
		shk_barrier *b;
		shk_latch *l;
		shk_event *e;
		shk_cond *c;
		shk_once *o;

		/* a read hold the builder never gives back: the copy is taken
		 * while it is held, so a dead reader's share is in the image */
		if (shk_rwlock_open(seg, "rwlock", SHK_CREATE, &so, &rw))
			abort();
		if (shk_rwlock_rdlock(rw, 0) != 0)
			abort();
		img->rw = rw;
		so.count = 3;
		if (shk_barrier_open(seg, "barrier", SHK_CREATE, &so, &b))
			abort();
		shk_barrier_close(b);
		so.count = 5;
		if (shk_latch_open(seg, "latch", SHK_CREATE, &so, &l))
			abort();
		shk_latch_count_down(l, 2);
		shk_latch_close(l);
		so.count = 0;
		so.flags = SHK_EVENT_SET;
		if (shk_event_open(seg, "event", SHK_CREATE, &so, &e))
			abort();
		shk_event_close(e);
		so.flags = SHK_EVENT_MANUAL;
		if (shk_event_open(seg, "eventm", SHK_CREATE, &so, &e))
			abort();
		shk_event_close(e);
		so.flags = 0;
		if (shk_cond_open(seg, "cond", SHK_CREATE, &so, &c))
			abort();
		shk_cond_close(c);
		if (shk_once_open(seg, "once", SHK_CREATE, &so, &o))
			abort();
		if (shk_once_run(o, once_fn, NULL, 0) != 1)
			abort();
		shk_once_close(o);
		if (shk_once_open(seg, "once2", SHK_CREATE, &so, &o))
			abort();
		shk_once_close(o);
	}
	{
		static const size_t lens[NHEAP] = {
			16, 40, 100, 700, 1500, 5000
		};
		uint64_t tmp;
		int i;

		for (i = 0; i < NHEAP; i++) {
			if (shk_alloc(seg, lens[i], &img->heap_blocks[i]))
				abort();
			memset(shk_ptr(seg, img->heap_blocks[i]), 'h', lens[i]);
		}
		/* a freed neighbour of each size, for the free lists */
		shk_alloc(seg, 40, &tmp);
		shk_free(seg, tmp);
		shk_alloc(seg, 3000, &tmp);
		shk_free(seg, tmp);
		img->nheap = NHEAP;
	}
}

/* Runs in a child: builds the image and the region table into img. */
static void
build_child(void)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	shk_seg *seg;
	uint32_t cur = 0;
	uint64_t heap_off, heap_len;
	int fd, i;
	void *m;

	o.backend = SHK_BACKEND_MEMFD;
	o.len = IMG_LEN;
	o.max_objects = 32;
	if (shk_seg_open("fuzz", SHK_CREATE, &o, &seg) < 0)
		abort();
	build_objects(seg);
	while (shk_obj_next(seg, &cur, &info) == 1)
		add_region(info.off >= 64 ? info.off - 64 : 0, info.len + 64);
	for (i = 0; i < NHEAP; i++)
		add_region(img->heap_blocks[i] - 16, 64);
	heap_off = seg->heap_off;
	heap_len = seg->heap_len;
	add_region(heap_off, heap_len < 8192 ? heap_len : 8192);
	add_region(0, IMG_LEN);
	/* copied with the read hold held (the comment at the top); the
	 * child exits before the image is used */
	fd = dup(shk_seg_fd(seg));
	m = mmap(NULL, IMG_LEN, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		abort();
	memcpy(img->image, m, IMG_LEN);
	munmap(m, IMG_LEN);
	close(fd);
	shk_rwlock_rdunlock(img->rw);
	shk_rwlock_close(img->rw);
	shk_seg_close(seg);
}

static void
build_image(void)
{
	pid_t pid;
	int st;

	img = mmap(NULL, sizeof(*img), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (img == MAP_FAILED)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		build_child();
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0 || img->nregions < 2)
		abort();
}

/* Handles of one run, opened before the late patches. */
enum {
	O_RING,
	O_SPIN,
	O_QUEUE,
	O_STACK,
	O_BCAST,
	O_BCASTR,
	O_MAP,
	O_POOL,
	O_ARRAY,
	O_ARRAY4,
	O_MUTEX,
	O_SEM,
	O_RWLOCK,
	O_BARRIER,
	O_LATCH,
	O_EVENT,
	O_EVENTM,
	O_COND,
	O_ONCE,
	O_ONCE2,
	O_N
};
static const char *const names[O_N] = { "ring",   "spin",    "queue", "stack",
					"bcast",  "bcastr",  "map",   "pool",
					"array",  "array4",  "mutex", "sem",
					"rwlock", "barrier", "latch", "event",
					"eventm", "cond",    "once",  "once2" };

struct run {
	shk_seg *seg;
	struct region mem[O_N]; /* object memory as opened */
	shk_ring *rp[2], *rc[2];
	shk_queue *q;
	shk_stack *s;
	shk_bcast *bw[2], *br[2];
	shk_map *m;
	shk_pool *p;
	shk_array *a, *a4;
	shk_mutex *mu;
	shk_sem *sem;
	shk_rwlock *rw;
	shk_barrier *bar;
	shk_latch *lat;
	shk_event *ev[2];
	shk_cond *cond;
	shk_once *once[2];
};

/* The oracle: memory handed out must lie inside the object's memory. */
static void
must_be_in(struct run *x, int obj, const void *p, uint64_t len)
{
	const uint8_t *base = shk_seg_base(x->seg);
	const struct region *r = &x->mem[obj];
	const uint8_t *b = p;

	if (b < base + r->off || len > r->len ||
	    (uint64_t)(b - (base + r->off)) > r->len - len) {
		fprintf(stderr, "%s: %p+%llu outside object [%llu, +%llu)\n",
			names[obj], p, (unsigned long long)len,
			(unsigned long long)r->off, (unsigned long long)r->len);
		abort();
	}
}

static void
open_all(struct run *x)
{
	shk_ring_opts ro = SHK_RING_OPTS_INIT;
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	shk_obj_info info = { .size = sizeof(info) };
	shk_seg *seg = x->seg;
	int i;

	for (i = 0; i < 2; i++) {
		const char *n = names[O_RING + i];

		ro.flags = i ? SHK_RING_SPIN : 0;
		opened(n, shk_ring_open(seg, n, 0, SHK_RING_CONSUMER, &ro,
					&x->rc[i]));
		opened(n, shk_ring_open(seg, n, 0, SHK_RING_PRODUCER, &ro,
					&x->rp[i]));
	}
	opened("queue", shk_queue_open(seg, "queue", 0, NULL, &x->q));
	opened("stack", shk_stack_open(seg, "stack", 0, NULL, &x->s));
	bo.reader_timeout_ns = 1000;
	for (i = 0; i < 2; i++) {
		const char *n = names[O_BCAST + i];

		opened(n, shk_bcast_open(seg, n, 0, SHK_BCAST_READER, &bo,
					 &x->br[i]));
		opened(n, shk_bcast_open(seg, n, 0, SHK_BCAST_WRITER, &bo,
					 &x->bw[i]));
	}
	opened("map", shk_map_open(seg, "map", 0, NULL, &x->m));
	opened("pool", shk_pool_open(seg, "pool", 0, NULL, &x->p));
	opened("array", shk_array_open(seg, "array", 0, NULL, &x->a));
	opened("array4", shk_array_open(seg, "array4", 0, NULL, &x->a4));
	opened("mutex", shk_mutex_open(seg, "mutex", 0, NULL, &x->mu));
	opened("sem", shk_sem_open(seg, "sem", 0, NULL, &x->sem));
	opened("rwlock", shk_rwlock_open(seg, "rwlock", 0, NULL, &x->rw));
	opened("barrier", shk_barrier_open(seg, "barrier", 0, NULL, &x->bar));
	opened("latch", shk_latch_open(seg, "latch", 0, NULL, &x->lat));
	opened("event", shk_event_open(seg, "event", 0, NULL, &x->ev[0]));
	opened("eventm", shk_event_open(seg, "eventm", 0, NULL, &x->ev[1]));
	opened("cond", shk_cond_open(seg, "cond", 0, NULL, &x->cond));
	opened("once", shk_once_open(seg, "once", 0, NULL, &x->once[0]));
	opened("once2", shk_once_open(seg, "once2", 0, NULL, &x->once[1]));
	for (i = 0; i < O_N; i++) {
		if (shk_obj_stat(seg, names[i], &info) == 0) {
			x->mem[i].off = info.off;
			x->mem[i].len = info.len;
			if (trace) {
				char buf[256];

				shk_obj_describe(seg, &info, buf, sizeof(buf));
				fprintf(stderr, "%s: %s\n", names[i], buf);
			}
		}
	}
}

static void
close_all(struct run *x)
{
	int i;

	for (i = 0; i < 2; i++) {
		shk_ring_close(x->rp[i]);
		shk_ring_close(x->rc[i]);
		shk_bcast_close(x->bw[i]);
		shk_bcast_close(x->br[i]);
	}
	shk_queue_close(x->q);
	shk_stack_close(x->s);
	shk_map_close(x->m);
	shk_pool_close(x->p);
	shk_array_close(x->a);
	shk_array_close(x->a4);
	shk_mutex_close(x->mu);
	shk_sem_close(x->sem);
	shk_rwlock_close(x->rw);
	shk_barrier_close(x->bar);
	shk_latch_close(x->lat);
	shk_event_close(x->ev[0]);
	shk_event_close(x->ev[1]);
	shk_cond_close(x->cond);
	shk_once_close(x->once[0]);
	shk_once_close(x->once[1]);
}

static void
consume_ring(struct run *x, int i, int n)
{
	shk_ring *c = x->rc[i];
	const void *pb;
	size_t len;
	char buf[256];

	if (!c)
		return;
	while (n-- > 0) {
		if (shk_ring_peek(c, &pb, &len, 0) != 0)
			break;
		must_be_in(x, O_RING + i, pb, len);
		touch(pb, len);
		shk_ring_release(c);
	}
	shk_ring_read(c, buf, sizeof(buf), 0);
	shk_ring_read(c, buf, 4, 0);
}

static void
run_ring(struct run *x, int i)
{
	shk_ring *p = x->rp[i];
	char rec[128];
	void *wb;
	int k;

	memset(rec, 'w', sizeof(rec));
	consume_ring(x, i, 12);
	for (k = 0; k < 6 && p; k++) {
		shk_ring_write(p, rec, (size_t)(k * 13 % 100), 0);
		if (shk_ring_reserve(p, (size_t)(k * 9), &wb, 0) == 0) {
			must_be_in(x, O_RING + i, wb, (uint64_t)k * 9);
			memset(wb, 'x', (size_t)(k * 9));
			shk_ring_commit(p);
		}
		consume_ring(x, i, 1);
	}
	shk_ring_flush(p);
	{
		shk_ring_stats st = { .size = sizeof(st) };

		shk_ring_stat(p ? p : x->rc[i], &st);
	}
}

static void
run_queue_stack(struct run *x)
{
	uint64_t v = 7;
	int i;

	if (x->q) {
		shk_queue_stats st = { .size = sizeof(st) };

		for (i = 0; i < 20; i++)
			if (shk_queue_pop(x->q, &v, 0) != 0)
				break;
		for (i = 0; i < 20; i++)
			if (shk_queue_push(x->q, &v, 0) != 0)
				break;
		for (i = 0; i < 4; i++)
			shk_queue_pop(x->q, &v, 0);
		shk_queue_info(x->q, &st);
	}
	if (x->s) {
		shk_stack_stats st = { .size = sizeof(st) };

		for (i = 0; i < 20; i++)
			if (shk_stack_pop(x->s, &v, 0) != 0)
				break;
		for (i = 0; i < 20; i++)
			if (shk_stack_push(x->s, &v, 0) != 0)
				break;
		for (i = 0; i < 4; i++)
			shk_stack_pop(x->s, &v, 0);
		shk_stack_info(x->s, &st);
	}
}

static void
run_bcast(struct run *x, int k)
{
	shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;
	shk_bcast *w = x->bw[k], *r = x->br[k], *r2 = NULL;
	const char *name = names[O_BCAST + k];
	char rec[64], buf[256];
	uint64_t lost;
	int i;

	bo.reader_timeout_ns = 1000;
	memset(rec, 'B', sizeof(rec));
	for (i = 0; i < 8; i++) {
		if (w)
			shk_bcast_write(w, rec, (size_t)(i * 11 % 60), 0);
		if (r &&
		    shk_bcast_read(r, buf, i & 1 ? sizeof(buf) : 8, &lost, 0) <
			    0 &&
		    i > 4)
			break;
	}
	/* a join on the patched memory */
	opened(name,
	       shk_bcast_open(x->seg, name, 0, SHK_BCAST_READER, &bo, &r2));
	for (i = 0; i < 16 && r; i++)
		if (shk_bcast_read(r, buf, sizeof(buf), &lost, 0) < 0)
			break;
	for (i = 0; i < 3 && w; i++)
		shk_bcast_write(w, rec, 30, 0);
	for (i = 0; i < 8 && r2; i++)
		if (shk_bcast_read(r2, buf, sizeof(buf), &lost, 0) < 0)
			break;
	if (w) {
		shk_bcast_stats st = { .size = sizeof(st) };

		shk_bcast_stat(w, &st);
	}
	shk_bcast_close(r2);
}

static void
run_map(struct run *x)
{
	shk_map *m = x->m;
	uint64_t k, v;
	uint32_t cur = 0;
	int i;

	if (!m)
		return;
	for (k = 0; k <= 12; k++)
		shk_map_get(m, &k, &v);
	for (i = 0; i < 40; i++)
		if (shk_map_next(m, &cur, &k, &v) != 1)
			break;
	shk_map_count(m);
	for (k = 2; k <= 6; k++)
		shk_map_delete(m, &k);
	for (k = 10; k <= 16; k++) {
		v = k;
		shk_map_put(m, &k, &v);
	}
	k = 1;
	shk_map_put(m, &k, &v);
	shk_map_count(m);
}

static void
run_pool_heap(struct run *x)
{
	shk_seg *seg = x->seg;
	uint64_t off[10], hoff[4];
	void *ptr;
	int i, n = 0;

	if (x->p) {
		shk_pool_stats st = { .size = sizeof(st) };

		for (i = 0; i < 10; i++) {
			if (shk_pool_alloc(x->p, &off[n], &ptr) != 0)
				break;
			must_be_in(x, O_POOL, ptr, 64);
			if (shk_pool_ptr(x->p, off[n]) != ptr)
				abort();
			memset(ptr, 'p', 64);
			n++;
		}
		for (i = 0; i < n; i++)
			shk_pool_free(x->p, off[i]);
		if (n > 0)
			shk_pool_free(x->p, off[0]);
		shk_pool_info(x->p, &st);
	}
	for (i = 0; i < (int)img->nheap; i++)
		shk_free(seg, img->heap_blocks[i]);
	shk_free(seg, img->heap_blocks[0]);
	for (i = 0; i < 4; i++) {
		static const size_t lens[4] = { 24, 100, 1200, 6000 };

		hoff[i] = 0;
		if (shk_alloc(seg, lens[i], &hoff[i]) == 0) {
			uint8_t *b = shk_ptr(seg, hoff[i]);

			if (b == NULL || hoff[i] < seg->heap_off ||
			    hoff[i] - seg->heap_off > seg->heap_len ||
			    lens[i] >
				    seg->heap_len - (hoff[i] - seg->heap_off)) {
				fprintf(stderr,
					"shk_alloc: %llu+%zu outside "
					"the heap\n",
					(unsigned long long)hoff[i], lens[i]);
				abort();
			}
			memset(b, 'a', lens[i]);
		}
	}
	for (i = 0; i < 4; i++)
		if (hoff[i])
			shk_free(seg, hoff[i]);
	{
		shk_heap_stats hs = { .size = sizeof(hs) };

		shk_heap_info(seg, &hs);
	}
}

static void
run_array_sync(struct run *x)
{
	uint64_t v;
	uint32_t v4;

	if (x->a) {
		shk_array_load_u64(x->a, 3, &v);
		shk_array_store_u64(x->a, 15, 1);
		shk_array_fetch_add_u64(x->a, 0, 5, &v);
		shk_array_cas_u64(x->a, 1, &v, 2);
		shk_array_load_u64(x->a, 16, &v);
		must_be_in(x, O_ARRAY, shk_array_data(x->a),
			   shk_array_len(x->a) * shk_array_elem_len(x->a));
	}
	if (x->a4) {
		shk_array_load_u32(x->a4, 0, &v4);
		shk_array_fetch_add_u32(x->a4, 15, 1, &v4);
		shk_array_store_u32(x->a4, 2, 9);
		must_be_in(x, O_ARRAY4, shk_array_data(x->a4),
			   shk_array_len(x->a4) * shk_array_elem_len(x->a4));
	}
	if (x->mu) {
		int rc = shk_mutex_lock(x->mu, 0);

		if (rc == SHK_EOWNERDEAD)
			shk_mutex_consistent(x->mu);
		if (rc == 0 || rc == SHK_EOWNERDEAD)
			shk_mutex_unlock(x->mu);
	}
	if (x->sem) {
		shk_sem_wait(x->sem, 0);
		shk_sem_post(x->sem, 1);
		shk_sem_value(x->sem);
	}
}

/* Takes m (timeout 0), repairing a dead holder's state; 1 when held. */
static int
mutex_take(shk_mutex *m)
{
	int rc = shk_mutex_lock(m, 0);

	if (rc == SHK_EOWNERDEAD)
		rc = shk_mutex_consistent(m);
	return rc == 0;
}

static void
run_sync2(struct run *x)
{
	int i, rc;

	if (x->rw) {
		/* a read hold, a nested one, then the write hold (which
		 * reclaims the dead builder's share) */
		for (i = 0; i < 2; i++) {
			rc = shk_rwlock_rdlock(x->rw, 0);
			if (rc == SHK_EOWNERDEAD)
				shk_rwlock_consistent(x->rw);
			if (rc == 0 || rc == SHK_EOWNERDEAD)
				shk_rwlock_rdunlock(x->rw);
		}
		shk_rwlock_rdheld(x->rw);
		rc = opened("wrlock", shk_rwlock_wrlock(x->rw, 0));
		if (rc == SHK_EOWNERDEAD)
			shk_rwlock_consistent(x->rw);
		if (rc == 0 || rc == SHK_EOWNERDEAD)
			shk_rwlock_wrunlock(x->rw);
		rc = shk_rwlock_rdlock(x->rw, 0);
		if (rc == 0 || rc == SHK_EOWNERDEAD)
			shk_rwlock_rdunlock(x->rw);
	}
	if (x->bar) {
		shk_barrier_wait(x->bar, 0); /* withdrawn: not complete */
		shk_barrier_leave(x->bar);
		shk_barrier_wait(x->bar, 0);
		shk_barrier_leave(x->bar);
		shk_barrier_wait(x->bar, 0); /* one party left: serial */
	}
	if (x->lat) {
		shk_latch_count(x->lat);
		shk_latch_wait(x->lat, 0);
		shk_latch_count_down(x->lat, 2);
		shk_latch_count_down(x->lat, 100);
		shk_latch_count_down(x->lat, 1);
		shk_latch_wait(x->lat, 0);
	}
	for (i = 0; i < 2; i++) {
		if (!x->ev[i])
			continue;
		shk_event_wait(x->ev[i], 0);
		shk_event_set(x->ev[i]);
		shk_event_wait(x->ev[i], 0);
		shk_event_wait(x->ev[i], 0);
		shk_event_reset(x->ev[i]);
		shk_event_wait(x->ev[i], 0);
	}
	if (x->cond) {
		shk_cond_signal(x->cond);
		shk_cond_broadcast(x->cond);
		if (x->mu && mutex_take(x->mu)) {
			/* timeout 0: releases m and takes it back */
			rc = shk_cond_wait(x->cond, x->mu, 0);
			if (rc == SHK_EOWNERDEAD)
				shk_mutex_consistent(x->mu);
			if (rc != SHK_EBUSY && rc != SHK_EPERM &&
			    rc != SHK_ENOTRECOVERABLE)
				shk_mutex_unlock(x->mu);
		}
	}
	for (i = 0; i < 2; i++) {
		if (!x->once[i])
			continue;
		shk_once_done(x->once[i]);
		shk_once_run(x->once[i], once_fn, NULL, 0);
		shk_once_done(x->once[i]);
	}
}

/*
 * The pollable descriptors (owned and closed by the handles), asked for
 * on the patched memory: each arms or registers in the object's doorbell
 * state, which the later reads (timeout 0: arm) and writes (signal an
 * armed reader) then use.
 */
static void
open_fds(struct run *x)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (x->rc[i])
			shk_ring_fd(x->rc[i]); /* SHK_ENOTSUP for spin */
		if (x->br[i])
			shk_bcast_fd(x->br[i]);
		if (x->ev[i])
			shk_event_fd(x->ev[i]);
	}
	if (x->q)
		shk_queue_fd(x->q);
	if (x->sem)
		shk_sem_fd(x->sem);
}

static void
exercise(struct run *x)
{
	shk_obj_info info = { .size = sizeof(info) };
	uint32_t cur = 0;
	char buf[256];

	open_fds(x);
	run_ring(x, 0);
	run_ring(x, 1);
	run_queue_stack(x);
	run_bcast(x, 0);
	run_bcast(x, 1);
	run_map(x);
	run_pool_heap(x);
	run_array_sync(x);
	run_sync2(x);
	opened("check", shk_seg_check(x->seg));
	while (shk_obj_next(x->seg, &cur, &info) == 1)
		shk_obj_describe(x->seg, &info, buf, sizeof(buf));
}

static void
patch(uint8_t *p, uint64_t p_len, const uint8_t *d)
{
	fuzz_patch(p, p_len, img->reg, img->nregions, d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	struct run x;
	size_t i;
	uint8_t *p;
	int fd;

	memset(&x, 0, sizeof(x));
	if (!img) {
		trace = getenv("SHK_FUZZ_TRACE") != NULL;
		build_image();
	}
	/* sealable: shk_seg_open_fd refuses a memfd it cannot seal
	 * against shrinking (it adds F_SEAL_SHRINK at the first open) */
	fd = memfd_create("fuzz-structs", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, IMG_LEN) != 0)
		abort();
	p = mmap(NULL, IMG_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		abort();
	memcpy(p, img->image, IMG_LEN);
	/* early patches (target bit 7 clear) before the segment is opened */
	for (i = 0; i + 6 <= size && i < 6 * MAX_PATCHES; i += 6)
		if (!(data[i] & 0x80))
			patch(p, IMG_LEN, data + i);
	munmap(p, IMG_LEN);
	o.open_timeout_ns = 1000000;
	if (opened("segment", shk_seg_open_fd(fd, 0, &o, &x.seg)) == 0) {
		open_all(&x);
		/* late patches: memory changed under open handles, as a
		 * hostile or broken peer would */
		for (i = 0; i + 6 <= size && i < 6 * MAX_PATCHES; i += 6)
			if (data[i] & 0x80)
				patch(shk_seg_base(x.seg), x.seg->len,
				      data + i);
		exercise(&x);
		close_all(&x);
		shk_seg_close(x.seg);
	}
	close(fd);
	return 0;
}
