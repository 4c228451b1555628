/*
 * baselines.h - the reference points every shmkit figure is measured
 * against, in the same run (header only; needs bench.h).
 *
 * Each baseline is the smallest honest program for its job, between two
 * real processes (fork) sharing MAP_SHARED|MAP_ANONYMOUS memory or a
 * kernel object, pinned to distinct CPUs by bench_team_run():
 *
 *   cache-line ping-pong  two 64-byte lines, one written by each side; the
 *                         pinger stores a sequence number, the ponger spins
 *                         until it sees it and stores it back (busy-poll).
 *   futex ping-pong       the same with a futex: store, FUTEX_WAKE always,
 *                         FUTEX_WAIT until the other side's word changes;
 *                         no spinning, no waiter count.
 *   SPSC ring             Lamport ring of fixed-size slots (one record per
 *                         slot), head and tail on their own lines, each
 *                         side caching the other's index; records copied
 *                         in and out with memcpy, published one at a time.
 *   pipe, Unix socket     ping-pong of a message (write, then read the
 *                         echo) and streaming of records (write() per
 *                         record, read() until the record is complete);
 *                         the socket is a SOCK_STREAM socketpair.
 *   rwlock hash map       open addressing, linear probing, 8-byte keys
 *                         (0 = empty) hashed by a multiplicative hash,
 *                         fixed-size values, in shared memory under one
 *                         process-shared pthread rwlock (for map).
 *   mutex array stack     a fixed array of fixed-size elements and a depth
 *                         count in shared memory under one process-shared
 *                         pthread mutex; push copies in at depth, pop
 *                         copies out from depth - 1 (for stack).
 *
 * Busy-poll loops back off through bench_backoff() (a yield after a long
 * run of failed polls), exactly as the shmkit benchmarks' loops do.
 *
 * Every streamed record carries its sequence number in its first 8 bytes
 * and the consumer checks it, so a broken transport fails the benchmark
 * instead of reporting a fast wrong answer.  Latency functions return
 * one-way latency (round trip / 2); stream functions return messages/s.
 */
#ifndef SHK_BENCH_BASELINES_H
#define SHK_BENCH_BASELINES_H

#include <linux/futex.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "bench.h"

#define BASE_LINE 64

/* ---- cache-line ping-pong (busy-poll) ---- */

struct base_cl_shared {
	_Atomic uint64_t ping;
	uint8_t pad0[BASE_LINE - 8];
	_Atomic uint64_t pong;
	uint8_t pad1[BASE_LINE - 8];
};

struct base_cl {
	struct base_cl_shared *sh;
	uint64_t seq; /* per process: the last sequence number exchanged */
};

/* Spins until *w == want; -1 if the team aborted meanwhile. */
static inline int
base_spin_until(_Atomic uint64_t *w, uint64_t want)
{
	unsigned spins = 0;

	/* acquire: pairs with the release store of the other side */
	while (atomic_load_explicit(w, memory_order_acquire) != want) {
		if (bench_backoff(&spins) != 0)
			return -1;
	}
	return 0;
}

static inline int
base_cl_ping(void *ctx, long n, double *rtt_ns)
{
	struct base_cl *c = (struct base_cl *)ctx;
	int64_t t0 = bench_now_ns(), t1;
	long i;

	for (i = 0; i < n; i++) {
		uint64_t s = ++c->seq;

		/* release: pairs with the acquire spin in base_cl_pong() */
		atomic_store_explicit(&c->sh->ping, s, memory_order_release);
		if (base_spin_until(&c->sh->pong, s) != 0)
			return -1;
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static inline int
base_cl_pong(void *ctx, long n)
{
	struct base_cl *c = (struct base_cl *)ctx;
	long i;

	for (i = 0; i < n; i++) {
		uint64_t s = ++c->seq;

		if (base_spin_until(&c->sh->ping, s) != 0)
			return -1;
		/* release: pairs with the acquire spin in base_cl_ping() */
		atomic_store_explicit(&c->sh->pong, s, memory_order_release);
	}
	return 0;
}

static const struct bench_pp_ops base_cl_ops = { NULL, base_cl_ping,
						 base_cl_pong, NULL };

/* One-way latency of the bare cache-line ping-pong; 0 or -1. */
static inline int
base_cacheline_pingpong(long n, struct bench_lat *out)
{
	struct base_cl c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.sh = (struct base_cl_shared *)bench_shm_alloc(sizeof(*c.sh));
	if (!c.sh)
		return -1;
	rc = bench_pingpong(&base_cl_ops, &c, n, out);
	bench_shm_free(c.sh, sizeof(*c.sh));
	return rc;
}

/* ---- futex ping-pong (blocking) ---- */

struct base_fx_shared {
	_Atomic uint32_t ping;
	uint8_t pad0[BASE_LINE - 4];
	_Atomic uint32_t pong;
	uint8_t pad1[BASE_LINE - 4];
};

struct base_fx {
	struct base_fx_shared *sh;
	uint32_t seq;
};

/* Shared (not FUTEX_PRIVATE_FLAG): the two sides are processes. */
static inline long
base_futex(_Atomic uint32_t *w, int op, uint32_t val)
{
	return syscall(SYS_futex, (void *)w, op, val, NULL, NULL, 0);
}

static inline int
base_fx_wait_for(_Atomic uint32_t *w, uint32_t want)
{
	unsigned waits = 0;
	uint32_t v;

	/* acquire: pairs with the release store in base_fx_post() */
	while ((v = atomic_load_explicit(w, memory_order_acquire)) != want) {
		base_futex(w, FUTEX_WAIT, v);
		if ((++waits & 0xfff) == 0 && bench_aborted())
			return -1;
	}
	return 0;
}

static inline void
base_fx_post(_Atomic uint32_t *w, uint32_t v)
{
	/* release: pairs with the acquire load in base_fx_wait_for() */
	atomic_store_explicit(w, v, memory_order_release);
	base_futex(w, FUTEX_WAKE, 1);
}

static inline int
base_fx_ping(void *ctx, long n, double *rtt_ns)
{
	struct base_fx *c = (struct base_fx *)ctx;
	int64_t t0 = bench_now_ns(), t1;
	long i;

	for (i = 0; i < n; i++) {
		uint32_t s = ++c->seq;

		base_fx_post(&c->sh->ping, s);
		if (base_fx_wait_for(&c->sh->pong, s) != 0)
			return -1;
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static inline int
base_fx_pong(void *ctx, long n)
{
	struct base_fx *c = (struct base_fx *)ctx;
	long i;

	for (i = 0; i < n; i++) {
		uint32_t s = ++c->seq;

		if (base_fx_wait_for(&c->sh->ping, s) != 0)
			return -1;
		base_fx_post(&c->sh->pong, s);
	}
	return 0;
}

static const struct bench_pp_ops base_fx_ops = { NULL, base_fx_ping,
						 base_fx_pong, NULL };

/* One-way latency of the bare futex ping-pong; 0 or -1. */
static inline int
base_futex_pingpong(long n, struct bench_lat *out)
{
	struct base_fx c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.sh = (struct base_fx_shared *)bench_shm_alloc(sizeof(*c.sh));
	if (!c.sh)
		return -1;
	rc = bench_pingpong(&base_fx_ops, &c, n, out);
	bench_shm_free(c.sh, sizeof(*c.sh));
	return rc;
}

/* ---- minimal SPSC ring (streaming) ---- */

struct base_spsc_shared {
	_Atomic uint64_t head; /* written by the producer only */
	uint8_t pad0[BASE_LINE - 8];
	_Atomic uint64_t tail; /* written by the consumer only */
	uint8_t pad1[BASE_LINE - 8];
	/* slots follow, nslots * rec_len bytes */
};

struct base_spsc {
	struct base_spsc_shared *sh;
	uint8_t *slots;
	size_t map_len;
	size_t rec_len;
	uint64_t mask;
	uint64_t pos;    /* own index (head or tail), process-local */
	uint64_t cached; /* the other side's index, last seen */
	uint64_t seq;    /* next record's sequence number */
	uint8_t *buf;    /* the local source / destination record */
};

static inline int
base_spsc_setup(void *ctx, int party, int is_producer)
{
	struct base_spsc *r = (struct base_spsc *)ctx;

	bench_prefault(r->sh, r->map_len); /* as the rings' parties do */
	r->buf = (uint8_t *)calloc(1, r->rec_len);
	return r->buf ? 0 : -1;
}

static inline void
base_spsc_fini(void *ctx, int party, int is_producer)
{
	struct base_spsc *r = (struct base_spsc *)ctx;

	free(r->buf);
	r->buf = NULL;
}

static inline int
base_spsc_produce(void *ctx, int i, long n)
{
	struct base_spsc *r = (struct base_spsc *)ctx;
	uint64_t cap = r->mask + 1;
	unsigned spins = 0;
	long k;

	for (k = 0; k < n; k++) {
		while (r->pos - r->cached >= cap) {
			/* acquire: pairs with the release of tail in
			 * base_spsc_consume(); the slot is free again */
			r->cached = atomic_load_explicit(&r->sh->tail,
							 memory_order_acquire);
			if (r->pos - r->cached < cap)
				break;
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		memcpy(r->buf, &r->seq, sizeof(r->seq));
		r->seq++;
		memcpy(r->slots + (r->pos & r->mask) * r->rec_len, r->buf,
		       r->rec_len);
		r->pos++;
		/* release: publishes the record; pairs with the acquire of
		 * head in base_spsc_consume() */
		atomic_store_explicit(&r->sh->head, r->pos,
				      memory_order_release);
	}
	return 0;
}

static inline int
base_spsc_consume(void *ctx, int i, long n)
{
	struct base_spsc *r = (struct base_spsc *)ctx;
	unsigned spins = 0;
	uint64_t got;
	long k;

	for (k = 0; k < n; k++) {
		while (r->cached == r->pos) {
			/* acquire: pairs with the release of head in
			 * base_spsc_produce(); the record is visible */
			r->cached = atomic_load_explicit(&r->sh->head,
							 memory_order_acquire);
			if (r->cached != r->pos)
				break;
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		memcpy(r->buf, r->slots + (r->pos & r->mask) * r->rec_len,
		       r->rec_len);
		r->pos++;
		/* release: frees the slot; pairs with the acquire of tail in
		 * base_spsc_produce() */
		atomic_store_explicit(&r->sh->tail, r->pos,
				      memory_order_release);
		memcpy(&got, r->buf, sizeof(got));
		if (got != r->seq++)
			return -1;
	}
	return 0;
}

static const struct bench_stream_ops base_spsc_ops = {
	base_spsc_setup, base_spsc_produce, base_spsc_consume, base_spsc_fini
};

static inline size_t
base_pow2_floor(size_t v)
{
	size_t p = 1;

	while (p <= v / 2)
		p *= 2;
	return p;
}

/*
 * Streams count records of rec_len (>= 8) bytes through a minimal SPSC
 * ring of buf_len bytes (rounded down to a power-of-two number of slots,
 * at least 2); messages/s in *rate.
 */
static inline int
base_spsc_stream(size_t rec_len, size_t buf_len, long count, double *rate)
{
	struct base_spsc r;
	size_t nslots;
	int rc;

	if (rec_len < 8)
		return -1;
	memset(&r, 0, sizeof(r));
	nslots = base_pow2_floor(buf_len / rec_len);
	if (nslots < 2)
		nslots = 2;
	r.rec_len = rec_len;
	r.mask = nslots - 1;
	r.map_len = sizeof(*r.sh) + nslots * rec_len;
	r.sh = (struct base_spsc_shared *)bench_shm_alloc(r.map_len);
	if (!r.sh)
		return -1;
	r.slots = (uint8_t *)(r.sh + 1);
	rc = bench_stream(&base_spsc_ops, &r, 1, 1, 0, count, rate);
	bench_shm_free(r.sh, r.map_len);
	return rc;
}

/* ---- pipes and Unix domain sockets ---- */

struct base_fd {
	int a[2]; /* direction 0 -> 1: a[1] written by side 0, a[0] read */
	int b[2]; /* direction 1 -> 0 (ping-pong only) */
	int sock; /* a and b are the two ends of one socketpair */
	size_t len;
	uint64_t seq;
	uint8_t *buf;
};

static inline int
base_write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static inline int
base_read_all(int fd, uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t r = read(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* fds the side sends on and receives from. */
static inline int
base_fd_tx(const struct base_fd *f, int side)
{
	if (f->sock)
		return side == 0 ? f->a[0] : f->a[1];
	return side == 0 ? f->a[1] : f->b[1];
}

static inline int
base_fd_rx(const struct base_fd *f, int side)
{
	if (f->sock)
		return side == 0 ? f->a[0] : f->a[1];
	return side == 0 ? f->b[0] : f->a[0];
}

static inline int
base_fd_setup_pp(void *ctx, int side)
{
	struct base_fd *f = (struct base_fd *)ctx;

	f->buf = (uint8_t *)calloc(1, f->len);
	return f->buf ? 0 : -1;
}

static inline void
base_fd_fini_pp(void *ctx, int side)
{
	struct base_fd *f = (struct base_fd *)ctx;

	free(f->buf);
	f->buf = NULL;
}

static inline int
base_fd_ping(void *ctx, long n, double *rtt_ns)
{
	struct base_fd *f = (struct base_fd *)ctx;
	int tx = base_fd_tx(f, 0), rx = base_fd_rx(f, 0);
	int64_t t0 = bench_now_ns(), t1;
	long i;

	for (i = 0; i < n; i++) {
		if (base_write_all(tx, f->buf, f->len) != 0 ||
		    base_read_all(rx, f->buf, f->len) != 0)
			return -1;
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static inline int
base_fd_pong(void *ctx, long n)
{
	struct base_fd *f = (struct base_fd *)ctx;
	int tx = base_fd_tx(f, 1), rx = base_fd_rx(f, 1);
	long i;

	for (i = 0; i < n; i++) {
		if (base_read_all(rx, f->buf, f->len) != 0 ||
		    base_write_all(tx, f->buf, f->len) != 0)
			return -1;
	}
	return 0;
}

static const struct bench_pp_ops base_fd_pp_ops = { base_fd_setup_pp,
						    base_fd_ping, base_fd_pong,
						    base_fd_fini_pp };

static inline int
base_fd_setup_st(void *ctx, int party, int is_producer)
{
	return base_fd_setup_pp(ctx, party);
}

static inline void
base_fd_fini_st(void *ctx, int party, int is_producer)
{
	base_fd_fini_pp(ctx, party);
}

static inline int
base_fd_produce(void *ctx, int i, long n)
{
	struct base_fd *f = (struct base_fd *)ctx;
	int tx = base_fd_tx(f, 0);
	long k;

	for (k = 0; k < n; k++) {
		memcpy(f->buf, &f->seq, sizeof(f->seq));
		f->seq++;
		if (base_write_all(tx, f->buf, f->len) != 0)
			return -1;
	}
	return 0;
}

static inline int
base_fd_consume(void *ctx, int i, long n)
{
	struct base_fd *f = (struct base_fd *)ctx;
	int rx = base_fd_rx(f, 1);
	uint64_t got;
	long k;

	for (k = 0; k < n; k++) {
		if (base_read_all(rx, f->buf, f->len) != 0)
			return -1;
		memcpy(&got, f->buf, sizeof(got));
		if (got != f->seq++)
			return -1;
	}
	return 0;
}

static const struct bench_stream_ops base_fd_st_ops = {
	base_fd_setup_st, base_fd_produce, base_fd_consume, base_fd_fini_st
};

static inline int
base_fd_open(struct base_fd *f, int sock, size_t len)
{
	memset(f, 0, sizeof(*f));
	f->a[0] = f->a[1] = f->b[0] = f->b[1] = -1;
	f->sock = sock;
	f->len = len;
	if (sock)
		return socketpair(AF_UNIX, SOCK_STREAM, 0, f->a);
	if (pipe(f->a) != 0)
		return -1;
	return pipe(f->b);
}

static inline void
base_fd_close(struct base_fd *f)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (f->a[i] >= 0)
			close(f->a[i]);
		if (f->b[i] >= 0)
			close(f->b[i]);
	}
}

/* One-way latency of a msg_len-byte ping-pong over pipes (sock 0) or a
 * Unix stream socketpair (sock 1); 0 or -1. */
static inline int
base_fd_pingpong(int sock, size_t msg_len, long n, struct bench_lat *out)
{
	struct base_fd f;
	int rc = -1;

	if (msg_len < 1)
		return -1;
	if (base_fd_open(&f, sock, msg_len) == 0)
		rc = bench_pingpong(&base_fd_pp_ops, &f, n, out);
	base_fd_close(&f);
	return rc;
}

/* Streams count records of rec_len (>= 8) bytes over a pipe (sock 0) or
 * a Unix stream socketpair (sock 1); messages/s in *rate. */
static inline int
base_fd_stream(int sock, size_t rec_len, long count, double *rate)
{
	struct base_fd f;
	int rc = -1;

	if (rec_len < 8)
		return -1;
	if (base_fd_open(&f, sock, rec_len) == 0)
		rc = bench_stream(&base_fd_st_ops, &f, 1, 1, 0, count, rate);
	base_fd_close(&f);
	return rc;
}

static inline int
base_pipe_pingpong(size_t msg_len, long n, struct bench_lat *out)
{
	return base_fd_pingpong(0, msg_len, n, out);
}

static inline int
base_uds_pingpong(size_t msg_len, long n, struct bench_lat *out)
{
	return base_fd_pingpong(1, msg_len, n, out);
}

static inline int
base_pipe_stream(size_t rec_len, long count, double *rate)
{
	return base_fd_stream(0, rec_len, count, rate);
}

static inline int
base_uds_stream(size_t rec_len, long count, double *rate)
{
	return base_fd_stream(1, rec_len, count, rate);
}

/* ---- rwlock hash map ---- */

struct base_map {
	pthread_rwlock_t lock;
	uint64_t mask;
	uint32_t val_len;
	uint32_t slot_len;
	uint8_t pad[40];
	/* slots follow: uint64_t key, then val_len bytes, slot_len each */
};

static inline size_t
base_map_bytes(uint64_t cap, uint32_t val_len)
{
	return sizeof(struct base_map) + cap * ((8 + val_len + 7) & ~7u);
}

/* Builds the map in mem (base_map_bytes long, shared); cap a power of 2. */
static inline int
base_map_init(void *mem, uint64_t cap, uint32_t val_len)
{
	struct base_map *m = (struct base_map *)mem;
	pthread_rwlockattr_t a;
	int rc;

	m->mask = cap - 1;
	m->val_len = val_len;
	m->slot_len = (8 + val_len + 7) & ~7u;
	if (pthread_rwlockattr_init(&a) != 0)
		return -1;
	pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	rc = pthread_rwlock_init(&m->lock, &a);
	pthread_rwlockattr_destroy(&a);
	return rc == 0 ? 0 : -1;
}

/* The slot holding key, or the empty slot where it would go; NULL: full. */
static inline uint8_t *
base_map_find(struct base_map *m, uint64_t key)
{
	uint8_t *slots = (uint8_t *)(m + 1);
	uint64_t i = (key * 0x9e3779b97f4a7c15ull) & m->mask, k, probes;

	for (probes = 0; probes <= m->mask; probes++) {
		uint8_t *s = slots + i * m->slot_len;

		memcpy(&k, s, 8);
		if (k == key || k == 0)
			return s;
		i = (i + 1) & m->mask;
	}
	return NULL;
}

/* 0 found, 1 missing, -1 error. */
static inline int
base_map_get(struct base_map *m, uint64_t key, void *val)
{
	uint8_t *s;
	uint64_t k = 0;

	if (pthread_rwlock_rdlock(&m->lock) != 0)
		return -1;
	s = base_map_find(m, key);
	if (s)
		memcpy(&k, s, 8);
	if (s && k == key)
		memcpy(val, s + 8, m->val_len);
	pthread_rwlock_unlock(&m->lock);
	return s && k == key ? 0 : 1;
}

static inline int
base_map_put(struct base_map *m, uint64_t key, const void *val)
{
	uint8_t *s;

	if (key == 0 || pthread_rwlock_wrlock(&m->lock) != 0)
		return -1;
	s = base_map_find(m, key);
	if (s) {
		memcpy(s, &key, 8);
		memcpy(s + 8, val, m->val_len);
	}
	pthread_rwlock_unlock(&m->lock);
	return s ? 0 : -1;
}

/* ---- mutex array stack ---- */

struct base_stack {
	pthread_mutex_t lock;
	uint64_t cap;
	uint64_t depth;
	uint32_t elem_len;
	uint8_t pad[20];
	/* cap elements of elem_len bytes follow */
};

static inline size_t
base_stack_bytes(uint64_t cap, uint32_t elem_len)
{
	return sizeof(struct base_stack) + cap * elem_len;
}

/* Builds an empty stack in mem (base_stack_bytes long, shared); 0 or -1. */
static inline int
base_stack_init(void *mem, uint64_t cap, uint32_t elem_len)
{
	struct base_stack *s = (struct base_stack *)mem;
	pthread_mutexattr_t a;
	int rc;

	s->cap = cap;
	s->depth = 0;
	s->elem_len = elem_len;
	if (pthread_mutexattr_init(&a) != 0)
		return -1;
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	rc = pthread_mutex_init(&s->lock, &a);
	pthread_mutexattr_destroy(&a);
	return rc == 0 ? 0 : -1;
}

/* 0 pushed, 1 full, -1 error. */
static inline int
base_stack_push(struct base_stack *s, const void *elem)
{
	uint8_t *slots = (uint8_t *)(s + 1);
	int full;

	if (pthread_mutex_lock(&s->lock) != 0)
		return -1;
	full = s->depth >= s->cap;
	if (!full) {
		memcpy(slots + s->depth * s->elem_len, elem, s->elem_len);
		s->depth++;
	}
	pthread_mutex_unlock(&s->lock);
	return full;
}

/* 0 popped, 1 empty, -1 error. */
static inline int
base_stack_pop(struct base_stack *s, void *elem)
{
	uint8_t *slots = (uint8_t *)(s + 1);
	int empty;

	if (pthread_mutex_lock(&s->lock) != 0)
		return -1;
	empty = s->depth == 0;
	if (!empty) {
		s->depth--;
		memcpy(elem, slots + s->depth * s->elem_len, s->elem_len);
	}
	pthread_mutex_unlock(&s->lock);
	return empty;
}

#endif /* SHK_BENCH_BASELINES_H */
