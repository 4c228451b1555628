/* test_hostile.c - a hostile process scribbles on a live segment while this
 * one uses it (ALGORITHMS.md §10: "errors are fine, crashes are not").
 *
 * Each case builds a segment holding one kind of object (or a few, or all
 * of them with the segment's own metadata: case "whole"), then forks a
 * scribbler that maps the segment's file itself and, until it is killed,
 * picks an aligned 64-bit word inside its targets, sets it to a random,
 * bit-flipped, nudged, all-ones or half-cleared value and restores it:
 * after a burst of up to 2000 stores (mode "burst"), or after every
 * store (mode "toggle", aimed at the gap between a check and the use of
 * what it checked).  Meanwhile the case process calls every operation of
 * the kind with timeout 0, plus shk_seg_check, shk_seg_info,
 * shk_heap_info, shk_obj_next/shk_obj_stat/shk_obj_describe and open/close
 * of each object by name.  Every call must return 0, a count in its range,
 * or a known SHK_E* code, within its time bound (a per-call alarm names a
 * call that hangs); a buffer filled by a read must not be overrun (guard
 * bytes), and memory handed out (ring reserve/peek, pool alloc, array
 * data, shk_alloc) must lie inside its object or heap.  The sanitizers
 * check the rest.  An object whose damage sticks (a restore can write back
 * a stale value; a handle may stay SHK_ECORRUPT) is removed with SHK_FORCE
 * and made again under a new name, with the scribbler paused; a segment
 * where nothing works any more is replaced, with a new scribbler.  Each
 * case prints one line per mode: operations, codes, recreations.
 *
 * Duration: SHK_HOSTILE_SECONDS for the whole suite (split evenly over
 * every case and mode); default 24 s, 60 s under AddressSanitizer (as
 * ALGORITHMS.md §10 asks), 4 s under ThreadSanitizer (which cannot see the
 * other process anyway), 12 s under valgrind.
 */
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#if defined(__SANITIZE_ADDRESS__)
#define HOSTILE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOSTILE_ASAN 1
#endif
#endif

enum kind {
	K_QUEUE,
	K_STACK,
	K_POOL,
	K_MAP,
	K_RING,
	K_BCAST_L,
	K_BCAST_R,
	K_ARRAY,
	K_MUTEX,
	K_RWLOCK,
	K_SEM,
	K_BARRIER,
	K_LATCH,
	K_EVENT,
	K_COND,
	K_ONCE,
	K_N
};
static const char *const kind_tag[K_N] = { "q",   "st", "p",   "m",
					   "r",   "bl", "br",  "a",
					   "mx",  "rw", "sem", "bar",
					   "lat", "ev", "cv",  "on" };

#define SEG_LEN (1u << 20)
#define MAX_TGT 32
#define NHELD 16
#define GUARD 64

/* ---- the board: shared with the scribbler (anonymous mapping) ---- */

struct board {
	_Atomic int pause;  /* the victim asks the scribbler to stop */
	_Atomic int paused; /* the scribbler says it stopped (word restored) */
	_Atomic uint32_t ntgt;
	_Atomic uint64_t tgt_off[MAX_TGT], tgt_len[MAX_TGT];
	_Atomic uint64_t bursts; /* bursts done (each restores its word) */
};
static struct board *bd;

static uint64_t
xrand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The scribbler: its own mapping of the segment's file; never returns. */
static void
scribbler(int fd, int toggle, uint64_t seed, pid_t parent)
{
	uint8_t *b;

	/* dies with the case process (a failed CHECK _exits it), also when
	 * that happened before the prctl */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	b = mmap(NULL, SEG_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED)
		_exit(2);
	for (;;) {
		uint32_t n, i;
		uint64_t off, len, orig, v, o;
		int reps, k;
		uint64_t *w;

		/* seq_cst: the pause protocol orders the victim's recreation
		 * (its stores to the segment) against our next burst */
		if (atomic_load(&bd->pause)) {
			atomic_store(&bd->paused, 1);
			while (atomic_load(&bd->pause))
				usleep(50);
			atomic_store(&bd->paused, 0);
			continue;
		}
		n = atomic_load(&bd->ntgt);
		if (!n) {
			usleep(100);
			continue;
		}
		i = (uint32_t)(xrand(&seed) % n);
		off = atomic_load(&bd->tgt_off[i]);
		len = atomic_load(&bd->tgt_len[i]);
		if (len < 8 || off + len > SEG_LEN)
			continue;
		o = (off + xrand(&seed) % len) & ~(uint64_t)7;
		if (o < off)
			o = off;
		w = (uint64_t *)(b + o);
		/* relaxed: the segment's words are the library's atomics, and
		 * we only need each store to land whole */
		orig = __atomic_load_n(w, __ATOMIC_RELAXED);
		switch (xrand(&seed) % 6) {
		case 0:
			v = xrand(&seed);
			break;
		case 1:
			v = orig ^ ((uint64_t)1 << (xrand(&seed) % 64));
			break;
		case 2:
			v = orig + xrand(&seed) % 64 - 32;
			break;
		case 3:
			v = ~(uint64_t)0;
			break;
		case 4:
			v = orig & 0xffffffff00000000ull;
			break;
		default:
			v = (orig & ~0xffffffffull) | (uint32_t)xrand(&seed);
			break;
		}
		reps = 1 + (int)(xrand(&seed) % 2000);
		for (k = 0; k < reps; k++) {
			__atomic_store_n(w, v, __ATOMIC_RELAXED);
			if (toggle)
				__atomic_store_n(w, orig, __ATOMIC_RELAXED);
		}
		__atomic_store_n(w, orig, __ATOMIC_RELAXED);
		atomic_fetch_add_explicit(&bd->bursts, 1, memory_order_relaxed);
	}
}

/* ---- operation records ---- */

#define NCODES 40
static int code_val[NCODES];
static int ncodes;

struct opstat {
	const char *name;
	uint64_t n, ok, max_ns;
	uint64_t codes[NCODES];
};
#define MAX_OPS 128
static struct opstat ops[MAX_OPS];
static int nops;
static const char *volatile cur_op = "none";
static int64_t op_t0, bound_short_ns, bound_long_ns;
static unsigned alarm_short_s, alarm_long_s;

static void
codes_init(void)
{
#define X(name, value, msg) code_val[ncodes++] = SHK_##name;
	SHK_ERRNO_MAP(X)
#undef X
}

static void
on_alarm(int sig)
{
	char b[160];
	int n;

	(void)sig;
	n = snprintf(b, sizeof(b), "  FAIL: %s did not return (hang?)\n",
		     cur_op);
	if (n > 0 && write(2, b, (size_t)n) < 0)
		n = 0;
	_exit(1);
}

/* OP(name, max, expr): runs expr, a call that must return a known code,
 * or a value from 0 to max, within the short bound (timeout-0 calls).
 * OPL: the long bound, for calls that may wait for the registry lock
 * (open, create, remove, stat: up to 5 s for a live holder). */
#define OP(name, max, expr)                                                    \
	(op_begin(name, 0), op_end(name, (long)(max), (long)(expr)))
#define OPL(name, max, expr)                                                   \
	(op_begin(name, 1), op_end(name, (long)(max), (long)(expr)))

static int op_long;

static void
op_begin(const char *name, int long_bound)
{
	cur_op = name;
	op_long = long_bound;
	alarm(long_bound ? alarm_long_s : alarm_short_s);
	op_t0 = test_now_ns();
}

static struct opstat *
op_find(const char *name)
{
	int i;

	for (i = 0; i < nops; i++)
		if (ops[i].name == name)
			return &ops[i];
	for (i = 0; i < nops; i++)
		if (!strcmp(ops[i].name, name))
			return &ops[i];
	CHECK(nops < MAX_OPS);
	ops[nops].name = name;
	return &ops[nops++];
}

static int
op_end(const char *name, long max, long rc)
{
	uint64_t ns = (uint64_t)(test_now_ns() - op_t0);
	struct opstat *s = op_find(name);
	int i;

	alarm(0);
	s->n++;
	if (ns > s->max_ns)
		s->max_ns = ns;
	if ((int64_t)ns > (op_long ? bound_long_ns : bound_short_ns))
		TEST_FAIL("%s took %.3f s (bound %.1f s)", name, ns / 1e9,
			  (op_long ? bound_long_ns : bound_short_ns) / 1e9);
	if (rc >= 0) {
		if (rc > max)
			TEST_FAIL("%s returned %ld, above its range (%ld)",
				  name, rc, max);
		s->ok++;
		return (int)rc;
	}
	for (i = 0; i < ncodes; i++)
		if (code_val[i] == rc) {
			s->codes[i]++;
			return (int)rc;
		}
	TEST_FAIL("%s returned %ld, not an SHK_E* code", name, rc);
	return (int)rc;
}

/* A buffer with guard bytes after its cap: a read must not touch them. */
static void
guard_set(uint8_t *buf, size_t cap)
{
	memset(buf + cap, 0xa5, GUARD);
}

static void
guard_check(const uint8_t *buf, size_t cap, const char *who)
{
	for (size_t i = 0; i < GUARD; i++)
		if (buf[cap + i] != 0xa5)
			TEST_FAIL("%s wrote past its buffer (byte %zu)", who,
				  cap + i);
}

/* ---- objects ---- */

struct obj {
	enum kind kind;
	int present;
	unsigned gen;
	char name[32];
	uint64_t off, len; /* as created: the object's memory */
	void *h, *h2;      /* handles (ring/bcast: second role; cond: mutex) */
	int stuck;         /* rounds in a row with SHK_ECORRUPT */
	int fdone;         /* the *_fd call was made on this handle */
	int nheld;
	uint64_t held[NHELD];
	uint64_t rounds;
};

struct run {
	shk_seg *seg;
	uint8_t *base;
	uint64_t heap_off, heap_len;
	int whole, heap_case;
	struct obj objs[K_N];
	int nobj;
	pid_t scr;
	int toggle;
	uint64_t seed;
	/* counts */
	uint64_t recreated, create_failed, segments, rounds;
	int create_fail_row;
	uint64_t hblk[32];
	size_t hlen[32];
	int nh;
};

static int
once_fn(void *arg)
{
	(void)arg;
	return 0;
}

static void
pause_scribbler(struct run *r)
{
	int64_t t0 = test_now_ns();

	atomic_store(&bd->pause, 1);
	while (!atomic_load(&bd->paused)) {
		if (test_now_ns() - t0 > bound_long_ns)
			TEST_FAIL("the scribbler did not pause (state %c)",
				  test_proc_state(r->scr));
		usleep(20);
	}
}

static void
resume_scribbler(void)
{
	atomic_store(&bd->pause, 0);
}

/* The targets: each object's memory, and for the whole case the header,
 * attach table, registry and the heap's first 8 KiB too; the heap case
 * aims at the heap's first 64 KiB, where its blocks are. */
static void
set_targets(struct run *r)
{
	uint32_t n = 0;
	int i;

	if (r->whole) {
		atomic_store(&bd->tgt_off[n], 0);
		atomic_store(&bd->tgt_len[n++], 512);
		atomic_store(&bd->tgt_off[n], 4096);
		atomic_store(&bd->tgt_len[n++], r->heap_off + 8192 - 4096);
	}
	if (r->heap_case) {
		atomic_store(&bd->tgt_off[n], r->heap_off);
		atomic_store(&bd->tgt_len[n++], 65536);
	}
	for (i = 0; i < r->nobj; i++) {
		struct obj *o = &r->objs[i];

		if (!o->present)
			continue;
		atomic_store(&bd->tgt_off[n], o->off);
		atomic_store(&bd->tgt_len[n++], o->len);
	}
	atomic_store(&bd->ntgt, n);
}

static void
obj_close(struct obj *o)
{
	switch (o->kind) {
	case K_QUEUE:
		shk_queue_close(o->h);
		break;
	case K_STACK:
		shk_stack_close(o->h);
		break;
	case K_POOL:
		shk_pool_close(o->h);
		break;
	case K_MAP:
		shk_map_close(o->h);
		break;
	case K_RING:
		shk_ring_close(o->h);
		shk_ring_close(o->h2);
		break;
	case K_BCAST_L:
	case K_BCAST_R:
		shk_bcast_close(o->h2); /* the reader first */
		shk_bcast_close(o->h);
		break;
	case K_ARRAY:
		shk_array_close(o->h);
		break;
	case K_MUTEX:
		shk_mutex_close(o->h);
		break;
	case K_RWLOCK:
		shk_rwlock_close(o->h);
		break;
	case K_SEM:
		shk_sem_close(o->h);
		break;
	case K_BARRIER:
		shk_barrier_close(o->h);
		break;
	case K_LATCH:
		shk_latch_close(o->h);
		break;
	case K_EVENT:
		shk_event_close(o->h);
		break;
	case K_COND:
		shk_cond_close(o->h);
		shk_mutex_close(o->h2);
		break;
	case K_ONCE:
		shk_once_close(o->h);
		break;
	default:
		break;
	}
	o->h = o->h2 = NULL;
	o->nheld = 0;
	o->fdone = 0;
}

/* Opens (with SHK_CREATE) the object under its current name. */
static int
obj_create(struct run *r, struct obj *o)
{
	shk_seg *s = r->seg;
	shk_sync_opts sy = SHK_SYNC_OPTS_INIT;
	shk_obj_info oi;
	int rc;

	snprintf(o->name, sizeof(o->name), "%s.%u", kind_tag[o->kind], o->gen);
	switch (o->kind) {
	case K_QUEUE: {
		shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;

		qo.elem_len = 24;
		qo.cap = 64;
		rc = OPL("queue_create", 0,
			 shk_queue_open(s, o->name, SHK_CREATE, &qo,
					(shk_queue **)&o->h));
		break;
	}
	case K_STACK: {
		shk_stack_opts so = SHK_STACK_OPTS_INIT;

		so.elem_len = 16;
		so.cap = 64;
		rc = OPL("stack_create", 0,
			 shk_stack_open(s, o->name, SHK_CREATE, &so,
					(shk_stack **)&o->h));
		break;
	}
	case K_POOL: {
		shk_pool_opts po = SHK_POOL_OPTS_INIT;

		po.block_len = 64;
		po.cap = 64;
		rc = OPL("pool_create", 0,
			 shk_pool_open(s, o->name, SHK_CREATE, &po,
				       (shk_pool **)&o->h));
		break;
	}
	case K_MAP: {
		shk_map_opts mo = SHK_MAP_OPTS_INIT;

		mo.key_len = 8;
		mo.val_len = 16;
		mo.cap = 128;
		rc = OPL("map_create", 0,
			 shk_map_open(s, o->name, SHK_CREATE, &mo,
				      (shk_map **)&o->h));
		break;
	}
	case K_RING: {
		shk_ring_opts ro = SHK_RING_OPTS_INIT;

		ro.cap = 4096;
		ro.max_record = 512;
		rc = OPL("ring_create", 0,
			 shk_ring_open(s, o->name, SHK_CREATE,
				       SHK_RING_PRODUCER, &ro,
				       (shk_ring **)&o->h));
		if (rc == 0)
			rc = OPL("ring_open_consumer", 0,
				 shk_ring_open(s, o->name, 0, SHK_RING_CONSUMER,
					       NULL, (shk_ring **)&o->h2));
		break;
	}
	case K_BCAST_L:
	case K_BCAST_R: {
		shk_bcast_opts bo = SHK_BCAST_OPTS_INIT;

		bo.cap = 4096;
		bo.max_record = 256;
		bo.max_readers = 4;
		bo.reader_timeout_ns = 1000000;
		bo.mode = o->kind == K_BCAST_L ? SHK_BCAST_LOSSY
					       : SHK_BCAST_RELIABLE;
		rc = OPL("bcast_create", 0,
			 shk_bcast_open(s, o->name, SHK_CREATE,
					SHK_BCAST_WRITER, &bo,
					(shk_bcast **)&o->h));
		if (rc == 0)
			rc = OPL("bcast_open_reader", 0,
				 shk_bcast_open(s, o->name, 0, SHK_BCAST_READER,
						&bo, (shk_bcast **)&o->h2));
		break;
	}
	case K_ARRAY: {
		shk_array_opts ao = SHK_ARRAY_OPTS_INIT;

		ao.elem_len = 8;
		ao.len = 64;
		rc = OPL("array_create", 0,
			 shk_array_open(s, o->name, SHK_CREATE, &ao,
					(shk_array **)&o->h));
		break;
	}
	case K_MUTEX:
		rc = OPL("mutex_create", 0,
			 shk_mutex_open(s, o->name, SHK_CREATE, &sy,
					(shk_mutex **)&o->h));
		break;
	case K_RWLOCK:
		rc = OPL("rwlock_create", 0,
			 shk_rwlock_open(s, o->name, SHK_CREATE, &sy,
					 (shk_rwlock **)&o->h));
		break;
	case K_SEM:
		sy.count = 2;
		sy.max = 100;
		rc = OPL("sem_create", 0,
			 shk_sem_open(s, o->name, SHK_CREATE, &sy,
				      (shk_sem **)&o->h));
		break;
	case K_BARRIER:
		sy.count = 1;
		rc = OPL("barrier_create", 0,
			 shk_barrier_open(s, o->name, SHK_CREATE, &sy,
					  (shk_barrier **)&o->h));
		break;
	case K_LATCH:
		sy.count = 1000000;
		rc = OPL("latch_create", 0,
			 shk_latch_open(s, o->name, SHK_CREATE, &sy,
					(shk_latch **)&o->h));
		break;
	case K_EVENT:
		rc = OPL("event_create", 0,
			 shk_event_open(s, o->name, SHK_CREATE, &sy,
					(shk_event **)&o->h));
		break;
	case K_COND: {
		char mn[40];

		snprintf(mn, sizeof(mn), "%s.m", o->name);
		rc = OPL("cond_create", 0,
			 shk_cond_open(s, o->name, SHK_CREATE, &sy,
				       (shk_cond **)&o->h));
		if (rc == 0)
			rc = OPL("cond_mutex_create", 0,
				 shk_mutex_open(s, mn, SHK_CREATE, &sy,
						(shk_mutex **)&o->h2));
		break;
	}
	case K_ONCE:
		rc = OPL("once_create", 0,
			 shk_once_open(s, o->name, SHK_CREATE, &sy,
				       (shk_once **)&o->h));
		break;
	default:
		rc = SHK_EINVAL;
	}
	if (rc == 0) {
		oi.size = sizeof(oi);
		rc = OPL("obj_stat", 0, shk_obj_stat(s, o->name, &oi));
		if (rc == 0 && (oi.off >= SEG_LEN || oi.len > SEG_LEN - oi.off))
			TEST_FAIL("%s: obj_stat gave off %llu len %llu",
				  o->name, (unsigned long long)oi.off,
				  (unsigned long long)oi.len);
		if (rc == 0) {
			o->off = oi.off;
			o->len = oi.len;
		}
	}
	if (rc) {
		obj_close(o);
		o->present = 0;
		r->create_failed++;
		r->create_fail_row++;
		return rc;
	}
	o->present = 1;
	o->stuck = 0;
	r->create_fail_row = 0;
	return 0;
}

/* Removes the object (SHK_FORCE: our own handles are closed, but a
 * damaged record may name a party) and makes it again, new name, with
 * the scribbler paused. */
static void
obj_recreate(struct run *r, struct obj *o)
{
	pause_scribbler(r);
	if (o->present) {
		obj_close(o);
		OPL("obj_remove_force", 0,
		    shk_obj_remove_flags(r->seg, o->name, SHK_FORCE));
		if (o->kind == K_COND) {
			char mn[40];

			snprintf(mn, sizeof(mn), "%s.m", o->name);
			OPL("obj_remove_force", 0,
			    shk_obj_remove_flags(r->seg, mn, SHK_FORCE));
		}
		o->present = 0;
	}
	o->gen++;
	obj_create(r, o);
	r->recreated++;
	set_targets(r);
	resume_scribbler();
}

/* Memory handed out must lie inside [lo, lo + len) of the mapping. */
static void
inside(const struct run *r, const char *who, const void *p, size_t n,
       uint64_t lo, uint64_t len)
{
	const uint8_t *q = p;

	if (q < r->base + lo || q > r->base + lo + len ||
	    n > (size_t)(r->base + lo + len - q))
		TEST_FAIL("%s handed out %p+%zu, outside [%llu, %llu)", who, p,
			  n, (unsigned long long)lo,
			  (unsigned long long)(lo + len));
}

static int
note(int *corrupt, int rc)
{
	if (rc == SHK_ECORRUPT)
		*corrupt = 1;
	return rc;
}

/* One round of every operation of the object's kind; returns whether one
 * of them said SHK_ECORRUPT. */
static int
obj_round(struct run *r, struct obj *o)
{
	uint8_t buf[1024 + GUARD];
	uint64_t x = xrand(&r->seed);
	int rc, corrupt = 0;
	shk_seg *s = r->seg;

#define NOTE(v) note(&corrupt, (v))
	o->rounds++;
	/* defined bytes: what the writes copy into the segment is read back
	 * as headers once the scribbler has moved a position (memcheck
	 * would report the test's own uninitialised stack) */
	memset(buf, (int)(x >> 16), sizeof(buf));
	switch (o->kind) {
	case K_QUEUE: {
		shk_queue_stats st;

		memset(buf, (int)x, 24);
		NOTE(OP("queue_push", 0, shk_queue_push(o->h, buf, 0)));
		guard_set(buf, 24);
		NOTE(OP("queue_pop", 0, shk_queue_pop(o->h, buf, 0)));
		guard_check(buf, 24, "queue_pop");
		st.size = sizeof(st);
		NOTE(OP("queue_info", 0, shk_queue_info(o->h, &st)));
		if (!o->fdone) {
			OP("queue_fd", INT_MAX, shk_queue_fd(o->h));
			o->fdone = 1;
		}
		if (o->rounds % 8 == 0) {
			shk_queue *h = NULL;

			if (OPL("queue_open", 0,
				shk_queue_open(s, o->name, 0, NULL, &h)) == 0)
				shk_queue_close(h);
		}
		break;
	}
	case K_STACK: {
		shk_stack_stats st;

		memset(buf, (int)x, 16);
		NOTE(OP("stack_push", 0, shk_stack_push(o->h, buf, 0)));
		guard_set(buf, 16);
		NOTE(OP("stack_pop", 0, shk_stack_pop(o->h, buf, 0)));
		guard_check(buf, 16, "stack_pop");
		st.size = sizeof(st);
		NOTE(OP("stack_info", 0, shk_stack_info(o->h, &st)));
		if (o->rounds % 8 == 0) {
			shk_stack *h = NULL;

			if (OPL("stack_open", 0,
				shk_stack_open(s, o->name, 0, NULL, &h)) == 0)
				shk_stack_close(h);
		}
		break;
	}
	case K_POOL: {
		shk_pool_stats st;
		uint64_t off;
		void *p = NULL;

		if (o->nheld < NHELD && (x & 1)) {
			if (NOTE(OP("pool_alloc", 0,
				    shk_pool_alloc(o->h, &off, &p))) == 0) {
				inside(r, "pool_alloc", p, 64, o->off, o->len);
				if (shk_pool_ptr(o->h, off) != p)
					TEST_FAIL("pool_ptr disagrees with "
						  "pool_alloc");
				memset(p, 0x5a, 64);
				o->held[o->nheld++] = off;
			}
		} else if (o->nheld) {
			NOTE(OP("pool_free", 0,
				shk_pool_free(o->h, o->held[--o->nheld])));
		}
		if ((x >> 8) % 16 == 0) /* not a block: SHK_EINVAL */
			NOTE(OP("pool_free_bad", 0,
				shk_pool_free(o->h, o->off + 3)));
		st.size = sizeof(st);
		NOTE(OP("pool_info", 0, shk_pool_info(o->h, &st)));
		if (o->rounds % 8 == 0) {
			shk_pool *h = NULL;

			if (OPL("pool_open", 0,
				shk_pool_open(s, o->name, 0, NULL, &h)) == 0)
				shk_pool_close(h);
		}
		break;
	}
	case K_MAP: {
		uint64_t key = x % 200;
		uint8_t val[16 + GUARD];
		uint32_t cur = 0;
		int n = 0;

		memset(val, (int)key, 16);
		/* put and delete may wait 5 s for a stripe lock whose word
		 * names a live process: the long bound */
		NOTE(OPL("map_put", 1, shk_map_put(o->h, &key, val)));
		guard_set(val, 16);
		NOTE(OP("map_get", 0, shk_map_get(o->h, &key, val)));
		guard_check(val, 16, "map_get");
		if ((x >> 9) % 3 == 0)
			NOTE(OPL("map_delete", 0, shk_map_delete(o->h, &key)));
		NOTE(OP("map_count", INT_MAX, shk_map_count(o->h)));
		if (o->rounds % 4 == 0) {
			uint8_t k2[8 + GUARD];

			guard_set(k2, 8);
			do {
				rc = NOTE(
					OP("map_next", 1,
					   shk_map_next(o->h, &cur, k2, val)));
			} while ((rc == 1 || rc == SHK_EAGAIN) && ++n < 1000);
			guard_check(k2, 8, "map_next");
			guard_check(val, 16, "map_next");
		}
		if (o->rounds % 8 == 0) {
			shk_map *h = NULL;

			if (OPL("map_open", 0,
				shk_map_open(s, o->name, 0, NULL, &h)) == 0)
				shk_map_close(h);
		}
		break;
	}
	case K_RING: {
		shk_ring_stats st;
		void *w;
		const void *rp;
		size_t len = (size_t)(x % 300);

		NOTE(OP("ring_write", 0, shk_ring_write(o->h, buf, len, 0)));
		if (NOTE(OP("ring_reserve", 0,
			    shk_ring_reserve(o->h, len, &w, 0))) == 0) {
			inside(r, "ring_reserve", w, len, o->off, o->len);
			memset(w, 0x11, len);
			NOTE(OP("ring_commit", 0, shk_ring_commit(o->h)));
		}
		NOTE(OP("ring_flush", 0, shk_ring_flush(o->h)));
		guard_set(buf, 512);
		NOTE(OP("ring_read", 512, shk_ring_read(o->h2, buf, 512, 0)));
		guard_check(buf, 512, "ring_read");
		if (NOTE(OP("ring_peek", 0,
			    shk_ring_peek(o->h2, &rp, &len, 0))) == 0) {
			if (len > 512)
				TEST_FAIL("ring_peek: len %zu > max_record",
					  len);
			inside(r, "ring_peek", rp, len, o->off, o->len);
			NOTE(OP("ring_release", 0, shk_ring_release(o->h2)));
		}
		st.size = sizeof(st);
		NOTE(OP("ring_stat", 0, shk_ring_stat(o->h, &st)));
		if (!o->fdone) {
			OP("ring_fd", INT_MAX, shk_ring_fd(o->h2));
			o->fdone = 1;
		}
		if (o->rounds % 8 == 0) {
			shk_ring *h = NULL;

			/* our own producer holds the role: SHK_EBUSY */
			if (OPL("ring_open", 0,
				shk_ring_open(s, o->name, 0, SHK_RING_PRODUCER,
					      NULL, &h)) == 0)
				shk_ring_close(h);
		}
		break;
	}
	case K_BCAST_L:
	case K_BCAST_R: {
		shk_bcast_stats st;
		uint64_t lost;

		NOTE(OP("bcast_write", 0,
			shk_bcast_write(o->h, buf, (size_t)(x % 200), 0)));
		guard_set(buf, 256);
		NOTE(OP("bcast_read", 256,
			shk_bcast_read(o->h2, buf, 256, &lost, 0)));
		guard_check(buf, 256, "bcast_read");
		st.size = sizeof(st);
		NOTE(OP("bcast_stat", 0, shk_bcast_stat(o->h, &st)));
		if (!o->fdone) {
			OP("bcast_fd", INT_MAX, shk_bcast_fd(o->h2));
			o->fdone = 1;
		}
		if (o->rounds % 8 == 0) {
			shk_bcast *h = NULL;

			if (OPL("bcast_open_reader", 0,
				shk_bcast_open(s, o->name, 0, SHK_BCAST_READER,
					       NULL, &h)) == 0) {
				NOTE(OP("bcast_read", 256,
					shk_bcast_read(h, buf, 256, NULL, 0)));
				shk_bcast_close(h);
			}
		}
		break;
	}
	case K_ARRAY: {
		uint64_t idx = x % 66, v = x; /* 64 and 65: out of range */
		uint32_t v32 = (uint32_t)x;
		void *d;

		NOTE(OP("array_load_u64", 0,
			shk_array_load_u64(o->h, idx, &v)));
		NOTE(OP("array_store_u64", 0,
			shk_array_store_u64(o->h, idx, x)));
		NOTE(OP("array_fetch_add_u64", 0,
			shk_array_fetch_add_u64(o->h, idx, 1, &v)));
		NOTE(OP("array_cas_u64", 1,
			shk_array_cas_u64(o->h, idx, &v, v + 1)));
		NOTE(OP("array_load_u32", 0,
			shk_array_load_u32(o->h, idx, &v32)));
		NOTE(OP("array_store_u32", 0,
			shk_array_store_u32(o->h, idx, v32)));
		NOTE(OP("array_fetch_add_u32", 0,
			shk_array_fetch_add_u32(o->h, idx, 1, &v32)));
		NOTE(OP("array_cas_u32", 1,
			shk_array_cas_u32(o->h, idx, &v32, v32 + 1)));
		d = shk_array_data(o->h);
		if (d)
			inside(r, "array_data", d,
			       shk_array_len(o->h) * shk_array_elem_len(o->h),
			       o->off, o->len);
		if (o->rounds % 8 == 0) {
			shk_array *h = NULL;

			if (OPL("array_open", 0,
				shk_array_open(s, o->name, 0, NULL, &h)) == 0)
				shk_array_close(h);
		}
		break;
	}
	case K_MUTEX:
		rc = NOTE(OP("mutex_lock", 0, shk_mutex_lock(o->h, 0)));
		if (rc == SHK_EOWNERDEAD)
			NOTE(OP("mutex_consistent", 0,
				shk_mutex_consistent(o->h)));
		if (rc == 0 || rc == SHK_EOWNERDEAD)
			NOTE(OP("mutex_unlock", 0, shk_mutex_unlock(o->h)));
		if (o->rounds % 8 == 0) {
			shk_mutex *h = NULL;

			if (OPL("mutex_open", 0,
				shk_mutex_open(s, o->name, 0, NULL, &h)) == 0)
				shk_mutex_close(h);
		}
		break;
	case K_RWLOCK:
		if (NOTE(OP("rwlock_rdlock", 0, shk_rwlock_rdlock(o->h, 0))) ==
		    0) {
			/* 0 when the scribbler hit our reader entry: the
			 * thread's record is checked against it */
			OP("rwlock_rdheld", UINT32_MAX,
			   shk_rwlock_rdheld(o->h));
			NOTE(OP("rwlock_rdunlock", 0,
				shk_rwlock_rdunlock(o->h)));
		}
		rc = NOTE(OP("rwlock_wrlock", 0, shk_rwlock_wrlock(o->h, 0)));
		if (rc == SHK_EOWNERDEAD)
			NOTE(OP("rwlock_consistent", 0,
				shk_rwlock_consistent(o->h)));
		if (rc == 0 || rc == SHK_EOWNERDEAD)
			NOTE(OP("rwlock_wrunlock", 0,
				shk_rwlock_wrunlock(o->h)));
		if (o->rounds % 8 == 0) {
			shk_rwlock *h = NULL;

			if (OPL("rwlock_open", 0,
				shk_rwlock_open(s, o->name, 0, NULL, &h)) == 0)
				shk_rwlock_close(h);
		}
		break;
	case K_SEM:
		NOTE(OP("sem_post", 0, shk_sem_post(o->h, 1)));
		NOTE(OP("sem_wait", 0, shk_sem_wait(o->h, 0)));
		NOTE(OP("sem_value", 100, shk_sem_value(o->h)));
		if (!o->fdone) {
			OP("sem_fd", INT_MAX, shk_sem_fd(o->h));
			o->fdone = 1;
		}
		if (o->rounds % 8 == 0) {
			shk_sem *h = NULL;

			if (OPL("sem_open", 0,
				shk_sem_open(s, o->name, 0, NULL, &h)) == 0)
				shk_sem_close(h);
		}
		break;
	case K_BARRIER:
		/* one party: every wait completes a generation */
		NOTE(OP("barrier_wait", 1, shk_barrier_wait(o->h, 0)));
		if (o->rounds % 8 == 0) {
			shk_barrier *h = NULL;

			NOTE(OP("barrier_leave", 0, shk_barrier_leave(o->h)));
			if (OPL("barrier_open", 0,
				shk_barrier_open(s, o->name, 0, NULL, &h)) == 0)
				shk_barrier_close(h);
		}
		break;
	case K_LATCH:
		rc = NOTE(OP("latch_count_down", INT_MAX,
			     shk_latch_count_down(o->h, 1)));
		NOTE(OP("latch_wait", 0, shk_latch_wait(o->h, 0)));
		NOTE(OP("latch_count", INT_MAX, shk_latch_count(o->h)));
		if (rc == 0 || rc == SHK_ERANGE) /* spent: make it again */
			o->stuck = 1 << 20;
		if (o->rounds % 8 == 0) {
			shk_latch *h = NULL;

			if (OPL("latch_open", 0,
				shk_latch_open(s, o->name, 0, NULL, &h)) == 0)
				shk_latch_close(h);
		}
		break;
	case K_EVENT:
		NOTE(OP("event_set", 0, shk_event_set(o->h)));
		NOTE(OP("event_wait", 0, shk_event_wait(o->h, 0)));
		if (x & 1)
			NOTE(OP("event_set", 0, shk_event_set(o->h)));
		NOTE(OP("event_reset", 0, shk_event_reset(o->h)));
		if (!o->fdone) {
			OP("event_fd", INT_MAX, shk_event_fd(o->h));
			o->fdone = 1;
		}
		if (o->rounds % 8 == 0) {
			shk_event *h = NULL;

			if (OPL("event_open", 0,
				shk_event_open(s, o->name, 0, NULL, &h)) == 0)
				shk_event_close(h);
		}
		break;
	case K_COND:
		NOTE(OP("cond_signal", 0, shk_cond_signal(o->h)));
		NOTE(OP("cond_broadcast", 0, shk_cond_broadcast(o->h)));
		rc = NOTE(OP("cond_mutex_lock", 0, shk_mutex_lock(o->h2, 0)));
		if (rc == SHK_EOWNERDEAD)
			NOTE(OP("mutex_consistent", 0,
				shk_mutex_consistent(o->h2)));
		if (rc == 0 || rc == SHK_EOWNERDEAD) {
			/* timeout 0: releases and retakes the mutex */
			rc = NOTE(OP("cond_wait", 0,
				     shk_cond_wait(o->h, o->h2, 0)));
			if (rc == SHK_EOWNERDEAD)
				NOTE(OP("mutex_consistent", 0,
					shk_mutex_consistent(o->h2)));
			NOTE(OP("cond_mutex_unlock", 0,
				shk_mutex_unlock(o->h2)));
		}
		if (o->rounds % 8 == 0) {
			shk_cond *h = NULL;

			if (OPL("cond_open", 0,
				shk_cond_open(s, o->name, 0, NULL, &h)) == 0)
				shk_cond_close(h);
		}
		break;
	case K_ONCE:
		NOTE(OP("once_run", 1, shk_once_run(o->h, once_fn, NULL, 0)));
		NOTE(OP("once_done", 1, shk_once_done(o->h)));
		if (o->rounds % 8 == 0) {
			shk_once *h = NULL;

			if (OPL("once_open", 0,
				shk_once_open(s, o->name, 0, NULL, &h)) == 0)
				shk_once_close(h);
		}
		break;
	default:
		break;
	}
#undef NOTE
	return corrupt;
}

/* shk_alloc / shk_free of the case's own heap blocks. */
static void
heap_round(struct run *r)
{
	uint64_t x = xrand(&r->seed), off;
	size_t len = (x & 7) ? 16 + (size_t)((x >> 3) % 3000)
			     : 20000 + (size_t)((x >> 3) % 30000);

	if (r->nh < 32 && (x & 0x100)) {
		if (OP("alloc", 0, shk_alloc(r->seg, len, &off)) == 0) {
			void *p = shk_ptr(r->seg, off);

			if (!p)
				TEST_FAIL("shk_alloc gave offset %llu, which "
					  "shk_ptr refuses",
					  (unsigned long long)off);
			inside(r, "shk_alloc", p, len, r->heap_off,
			       r->heap_len);
			memset(p, 0x5a, len < 64 ? len : 64);
			r->hblk[r->nh] = off;
			r->hlen[r->nh++] = len;
		}
	} else if (r->nh) {
		r->nh--;
		OP("free", 0, shk_free(r->seg, r->hblk[r->nh]));
	}
}

/* The generic calls: check, info, the registry walk and describe. */
static void
generic_round(struct run *r)
{
	shk_seg_stats ss;
	shk_heap_stats hs;
	shk_obj_info oi;
	shk_attach_info ai;
	uint32_t cur = 0;
	char d[256 + GUARD];
	int rc, n = 0;

	OP("seg_check", 0, shk_seg_check(r->seg));
	ss.size = sizeof(ss);
	OP("seg_info", 0, shk_seg_info(r->seg, &ss));
	hs.size = sizeof(hs);
	OP("heap_info", 0, shk_heap_info(r->seg, &hs));
	oi.size = sizeof(oi);
	while ((rc = OP("obj_next", 1, shk_obj_next(r->seg, &cur, &oi))) == 1 ||
	       rc == SHK_ECORRUPT) {
		if (++n > 4096)
			TEST_FAIL("obj_next: more than 4096 entries");
		if (rc != 1)
			continue;
		guard_set((uint8_t *)d, 256);
		OP("obj_describe", 255, shk_obj_describe(r->seg, &oi, d, 256));
		guard_check((uint8_t *)d, 256, "obj_describe");
		if (!memchr(oi.name, 0, sizeof(oi.name)))
			TEST_FAIL("obj_next: unterminated name");
	}
	cur = 0;
	n = 0;
	ai.size = sizeof(ai);
	while (OP("seg_attached", 1, shk_seg_attached(r->seg, &cur, &ai)) == 1)
		if (++n > 4096)
			TEST_FAIL("seg_attached: more than 4096 records");
	for (int i = 0; i < r->nobj; i++) {
		if (!r->objs[i].present)
			continue;
		oi.size = sizeof(oi);
		OPL("obj_stat", 0, shk_obj_stat(r->seg, r->objs[i].name, &oi));
	}
}

/* ---- a case ---- */

static double
suite_seconds(void)
{
	const char *e = getenv("SHK_HOSTILE_SECONDS");

	if (e && atof(e) > 0)
		return atof(e);
	if (test_valgrind())
		return 12;
#if defined(HOSTILE_ASAN)
	return 60;
#elif defined(TEST_TSAN)
	return 4;
#else
	return 24;
#endif
}

#define NCASES 12 /* TEST_MAIN below: each case runs both modes */

static void
seg_start(struct run *r)
{
	char nm[64];
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	pid_t parent;
	int fd;

	test_name(nm, sizeof(nm), "hostile");
	shk_seg_unlink(nm, NULL);
	so.len = SEG_LEN;
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &so, &r->seg));
	CHECK_OK(shk_seg_unlink(nm, NULL)); /* no leftovers on failure */
	r->base = shk_seg_base(r->seg);
	/* the header's heap_off and heap_len (docs/segment-format.md,
	 * offsets 88 and 96), read before anyone scribbles */
	memcpy(&r->heap_off, r->base + 88, 8);
	memcpy(&r->heap_len, r->base + 96, 8);
	CHECK(r->heap_off >= 12288 && r->heap_off + r->heap_len <= SEG_LEN);
	for (int i = 0; i < r->nobj; i++) {
		r->objs[i].present = 0;
		r->objs[i].gen = 0;
		r->objs[i].rounds = 0;
		CHECK_OK(obj_create(r, &r->objs[i]));
	}
	r->nh = 0;
	atomic_store(&bd->pause, 0);
	atomic_store(&bd->paused, 0);
	set_targets(r);
	fd = shk_seg_fd(r->seg);
	CHECK(fd >= 0);
	fflush(stdout);
	fflush(stderr);
	parent = getpid();
	r->scr = fork();
	CHECK(r->scr >= 0);
	if (r->scr == 0)
		scribbler(fd, r->toggle, r->seed ^ (uint64_t)getpid() << 20,
			  parent);
	r->segments++;
}

/* Ends the segment: the scribbler must still be running (it never stops
 * by itself), then it is killed; every handle is closed. */
static void
seg_end(struct run *r)
{
	int st;

	if (waitpid(r->scr, &st, WNOHANG) != 0)
		TEST_FAIL("the scribbler ended by itself (status %d)",
			  WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	CHECK_EQ(kill(r->scr, SIGKILL), 0);
	CHECK_EQ(test_wait(r->scr), 128 + SIGKILL);
	for (int i = 0; i < r->nobj; i++)
		if (r->objs[i].present)
			obj_close(&r->objs[i]);
	shk_seg_close(r->seg);
	r->seg = NULL;
}

static void
run_mode(const enum kind *kinds, int nk, int whole, int heap_case, int toggle,
	 const char *label)
{
	struct run *r = calloc(1, sizeof(*r));
	double secs = suite_seconds() / (NCASES * 2);
	int64_t end;
	uint64_t total = 0, ok = 0, ecorrupt = 0, other = 0, bursts = 0;
	uint64_t last_ok = 0, since = 0, min_ops;
	int i, j;

	CHECK(r);
	r->seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() ^
		  (uint64_t)test_now_ns();
	r->toggle = toggle;
	r->whole = whole;
	r->heap_case = heap_case;
	r->nobj = nk;
	for (i = 0; i < nk; i++)
		r->objs[i].kind = kinds[i];
	nops = 0;
	memset(ops, 0, sizeof(ops));
	atomic_store(&bd->bursts, 0);
	seg_start(r);
	end = test_now_ns() + (int64_t)(secs * 1e9);
	while (test_now_ns() < end) {
		r->rounds++;
		for (i = 0; i < r->nobj; i++) {
			struct obj *o = &r->objs[i];

			if (!o->present) {
				obj_recreate(r, o);
				continue;
			}
			if (obj_round(r, o))
				o->stuck++;
			else if (o->stuck < (1 << 20))
				o->stuck = 0;
			if (o->stuck >= 8 || o->rounds % 4096 == 0)
				obj_recreate(r, o);
		}
		if (r->heap_case || r->whole)
			heap_round(r);
		if (r->rounds % 16 == 0)
			generic_round(r);
		/* a segment where nothing succeeds any more, or where
		 * objects cannot be made again, is replaced */
		if (r->rounds % 256 == 0) {
			uint64_t okn = 0;

			for (j = 0; j < nops; j++)
				okn += ops[j].ok;
			since = okn == last_ok ? since + 1 : 0;
			last_ok = okn;
		}
		if (since >= 4 || r->create_fail_row >= 64) {
			bursts += atomic_load(&bd->bursts);
			atomic_store(&bd->bursts, 0);
			seg_end(r);
			seg_start(r);
			since = 0;
		}
	}
	bursts += atomic_load(&bd->bursts);
	seg_end(r);
	alarm(alarm_long_s);

	for (j = 0; j < nops; j++) {
		total += ops[j].n;
		ok += ops[j].ok;
		for (i = 0; i < ncodes; i++) {
			if (code_val[i] == SHK_ECORRUPT)
				ecorrupt += ops[j].codes[i];
			else
				other += ops[j].codes[i];
		}
	}
	fprintf(stderr,
		"  %s %s: %llu ops (%llu ok, %llu SHK_ECORRUPT, %llu other "
		"codes), %llu rounds, %llu bursts, %llu recreated, %llu "
		"creates failed, %llu segments\n",
		label, toggle ? "toggle" : "burst", (unsigned long long)total,
		(unsigned long long)ok, (unsigned long long)ecorrupt,
		(unsigned long long)other, (unsigned long long)r->rounds,
		(unsigned long long)bursts, (unsigned long long)r->recreated,
		(unsigned long long)r->create_failed,
		(unsigned long long)r->segments);
	if (getenv("SHK_HOSTILE_VERBOSE"))
		for (j = 0; j < nops; j++) {
			fprintf(stderr, "    %-22s n=%llu ok=%llu max=%.1fms",
				ops[j].name, (unsigned long long)ops[j].n,
				(unsigned long long)ops[j].ok,
				ops[j].max_ns / 1e6);
			for (i = 0; i < ncodes; i++)
				if (ops[j].codes[i])
					fprintf(stderr, " %s=%llu",
						shk_errname(code_val[i]),
						(unsigned long long)ops[j]
							.codes[i]);
			fprintf(stderr, "\n");
		}
	/* not vacuous: the victim worked, mostly with success, and the
	 * scribbler did scribble */
	min_ops = test_valgrind() ? 50 : 500;
	if (total < min_ops)
		TEST_FAIL("only %llu operations (want %llu)",
			  (unsigned long long)total,
			  (unsigned long long)min_ops);
	CHECK(ok > 0);
	CHECK(bursts > 0);
	free(r);
}

static void
run_case(const enum kind *kinds, int nk, int whole, int heap_case,
	 const char *label)
{
	const char *m = getenv("SHK_TEST_TIMEOUT_MULTIPLIER");
	int mult = m && atoi(m) > 1 ? atoi(m) : 1;
	struct sigaction sa;

	codes_init();
	bd = mmap(NULL, sizeof(*bd), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(bd != MAP_FAILED);
	/* timeout-0 calls: 2 s; calls that may wait for the registry lock
	 * (5 s for a live holder): 7 s; scaled as the harness's alarm, and
	 * five times under valgrind */
	bound_short_ns = 2000000000LL * mult * (test_valgrind() ? 5 : 1);
	bound_long_ns = 7000000000LL * mult * (test_valgrind() ? 5 : 1);
	alarm_short_s = (unsigned)(bound_short_ns / 1000000000) + 2;
	alarm_long_s = (unsigned)(bound_long_ns / 1000000000) + 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	run_mode(kinds, nk, whole, heap_case, 0, label);
	run_mode(kinds, nk, whole, heap_case, 1, label);
	munmap(bd, sizeof(*bd));
}

#define CASE1(fn, k)                                                           \
	static void fn(void)                                                   \
	{                                                                      \
		static const enum kind ks[] = { k };                           \
		run_case(ks, 1, 0, 0, &(#fn)[2]);                              \
	}

CASE1(t_queue, K_QUEUE)
CASE1(t_stack, K_STACK)
CASE1(t_pool, K_POOL)
CASE1(t_map, K_MAP)
CASE1(t_ring, K_RING)
CASE1(t_array, K_ARRAY)

static void
t_bcast(void)
{
	static const enum kind ks[] = { K_BCAST_L, K_BCAST_R };

	run_case(ks, 2, 0, 0, "bcast");
}

static void
t_heap(void)
{
	run_case(NULL, 0, 0, 1, "heap");
}

static void
t_locks(void)
{
	static const enum kind ks[] = { K_MUTEX, K_RWLOCK };

	run_case(ks, 2, 0, 0, "locks");
}

static void
t_counters(void)
{
	static const enum kind ks[] = { K_SEM, K_BARRIER, K_LATCH };

	run_case(ks, 3, 0, 0, "counters");
}

static void
t_signals(void)
{
	static const enum kind ks[] = { K_EVENT, K_COND, K_ONCE };

	run_case(ks, 3, 0, 0, "signals");
}

/* every kind, heap blocks, and the header, attach table, registry and
 * heap metadata as targets too */
static void
t_whole(void)
{
	static const enum kind ks[K_N] = {
		K_QUEUE,   K_STACK, K_POOL,  K_MAP,    K_RING, K_BCAST_L,
		K_BCAST_R, K_ARRAY, K_MUTEX, K_RWLOCK, K_SEM,  K_BARRIER,
		K_LATCH,   K_EVENT, K_COND,  K_ONCE
	};

	run_case(ks, K_N, 1, 0, "whole");
}

TEST_MAIN({ "queue", t_queue }, { "stack", t_stack }, { "pool", t_pool },
	  { "map", t_map }, { "ring", t_ring }, { "bcast", t_bcast },
	  { "array", t_array }, { "heap", t_heap }, { "locks", t_locks },
	  { "counters", t_counters }, { "signals", t_signals },
	  { "whole", t_whole })
