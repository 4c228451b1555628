/*
 * ring_parties.h - the shmkit ring's benchmark parties (header only; needs
 * bench.h): two pinned processes on one fresh segment per case, exchanging
 * records through shk_ring_write/shk_ring_read or the zero-copy calls
 * (reserve/commit, peek/release), busy-polling (timeout 0, retried through
 * bench_backoff) or blocking (SHK_FOREVER).  bench_ring and bench_peers
 * both measure these, so the ring figures of both programs come from the
 * same code.  Every streamed record carries its sequence number in its
 * first 8 bytes and the consumer checks it.
 */
#ifndef SHK_BENCH_RING_PARTIES_H
#define SHK_BENCH_RING_PARTIES_H

#include "bench.h"

#include "shmkit.h"

#define RING_CAP ((uint64_t)1 << 20) /* = the SPSC baseline's buffer */
#define SEG_LEN ((uint64_t)8 << 20)
#define LAT_LEN 64

/* The running case's segment name; "" between cases. */
static char seg_name[64];

struct rctx {
	shk_seg *seg;    /* parent's handle, or the child's own */
	int own_seg;     /* this process opened seg in setup */
	unsigned flags;  /* shk_ring_opts.flags */
	int64_t timeout; /* 0: busy-poll; SHK_FOREVER: blocking */
	size_t len;
	shk_ring *tx, *rx;
	uint8_t *buf;
	uint64_t seq;
	int err; /* first shmkit error seen in this process */
};

static inline int
open_ring(struct rctx *c, const char *name, int role, shk_ring **out)
{
	shk_ring_opts o = SHK_RING_OPTS_INIT;
	int rc;

	o.flags = c->flags;
	o.cap = RING_CAP;
	rc = shk_ring_open(c->seg, name, SHK_CREATE, role, &o, out);
	if (rc != 0 && !c->err)
		c->err = rc;
	return rc;
}

static inline int
rctx_attach(struct rctx *c, int side, int two_way)
{
	int rc;

	/* prefaulted: no party takes a page fault on the ring's first lap */
	rc = bench_party_seg(seg_name, side, &c->seg, &c->own_seg);
	if (rc != 0)
		return c->err = rc;
	c->buf = (uint8_t *)calloc(1, c->len);
	if (!c->buf)
		return -1;
	if (side == 0 || two_way) {
		rc = open_ring(c, side == 0 ? "ab" : "ba", SHK_RING_PRODUCER,
			       &c->tx);
		if (rc != 0)
			return rc;
	}
	if (side == 1 || two_way)
		return open_ring(c, side == 0 ? "ba" : "ab", SHK_RING_CONSUMER,
				 &c->rx);
	return 0;
}

static inline void
rctx_detach(struct rctx *c)
{
	shk_ring_close(c->tx);
	shk_ring_close(c->rx);
	c->tx = c->rx = NULL;
	free(c->buf);
	c->buf = NULL;
	if (c->own_seg)
		shk_seg_close(c->seg);
}

/* Sends buf as one record: busy-polls when c->timeout is 0. */
static inline int
send_rec(struct rctx *c)
{
	unsigned spins = 0;
	int rc;

	while ((rc = shk_ring_write(c->tx, c->buf, c->len, c->timeout)) ==
	       SHK_EAGAIN) {
		if (bench_backoff(&spins) != 0)
			return -1;
	}
	if (rc != 0 && !c->err)
		c->err = rc;
	return rc;
}

static inline int
recv_rec(struct rctx *c)
{
	unsigned spins = 0;
	int rc;

	while ((rc = shk_ring_read(c->rx, c->buf, c->len, c->timeout)) ==
	       SHK_EAGAIN) {
		if (bench_backoff(&spins) != 0)
			return -1;
	}
	if (rc < 0) {
		if (!c->err)
			c->err = rc;
		return rc;
	}
	return (size_t)rc == c->len ? 0 : -1;
}

static inline int
pp_setup(void *ctx, int side)
{
	return rctx_attach((struct rctx *)ctx, side, 1) == 0 ? 0 : -1;
}

static inline void
pp_fini(void *ctx, int side)
{
	rctx_detach((struct rctx *)ctx);
}

static inline int
pp_ping(void *ctx, long n, double *rtt_ns)
{
	struct rctx *c = (struct rctx *)ctx;
	int64_t t0 = bench_now_ns(), t1;
	long i;

	for (i = 0; i < n; i++) {
		if (send_rec(c) != 0 || recv_rec(c) != 0)
			return -1;
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static inline int
pp_pong(void *ctx, long n)
{
	struct rctx *c = (struct rctx *)ctx;
	long i;

	for (i = 0; i < n; i++) {
		if (recv_rec(c) != 0 || send_rec(c) != 0)
			return -1;
	}
	return 0;
}

static const struct bench_pp_ops ring_pp_ops = { pp_setup, pp_ping, pp_pong,
						 pp_fini };

static inline int
st_setup(void *ctx, int party, int is_producer)
{
	return rctx_attach((struct rctx *)ctx, party, 0) == 0 ? 0 : -1;
}

static inline void
st_fini(void *ctx, int party, int is_producer)
{
	rctx_detach((struct rctx *)ctx);
}

static inline int
st_produce(void *ctx, int i, long n)
{
	struct rctx *c = (struct rctx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		memcpy(c->buf, &c->seq, sizeof(c->seq));
		c->seq++;
		if (send_rec(c) != 0)
			return -1;
	}
	return shk_ring_flush(c->tx) == 0 ? 0 : -1;
}

static inline int
st_consume(void *ctx, int i, long n)
{
	struct rctx *c = (struct rctx *)ctx;
	uint64_t got;
	long k;

	for (k = 0; k < n; k++) {
		if (recv_rec(c) != 0)
			return -1;
		memcpy(&got, c->buf, sizeof(got));
		if (got != c->seq++)
			return -1;
	}
	return shk_ring_flush(c->rx) == 0 ? 0 : -1;
}

static const struct bench_stream_ops ring_st_ops = { st_setup, st_produce,
						     st_consume, st_fini };

/*
 * Zero-copy stream (loans): the producer reserves the record in the ring,
 * writes its sequence number in place and commits; the consumer peeks,
 * checks the number in place and releases.  The application touches the
 * same 8 bytes as in the copying stream and in the socket baseline, whose
 * producer writes them into its buffer before send(); what the loans save
 * is the copy of the whole record on each side.
 */
static inline int
zc_produce(void *ctx, int i, long n)
{
	struct rctx *c = (struct rctx *)ctx;
	unsigned spins = 0;
	void *p;
	long k;
	int rc;

	for (k = 0; k < n; k++) {
		while ((rc = shk_ring_reserve(c->tx, c->len, &p, c->timeout)) ==
		       SHK_EAGAIN) {
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		if (rc != 0)
			goto err;
		memcpy(p, &c->seq, sizeof(c->seq));
		c->seq++;
		if ((rc = shk_ring_commit(c->tx)) != 0)
			goto err;
	}
	return shk_ring_flush(c->tx) == 0 ? 0 : -1;
err:
	if (!c->err)
		c->err = rc;
	return -1;
}

static inline int
zc_consume(void *ctx, int i, long n)
{
	struct rctx *c = (struct rctx *)ctx;
	unsigned spins = 0;
	const void *p;
	uint64_t got;
	size_t len;
	long k;
	int rc;

	for (k = 0; k < n; k++) {
		while ((rc = shk_ring_peek(c->rx, &p, &len, c->timeout)) ==
		       SHK_EAGAIN) {
			if (bench_backoff(&spins) != 0)
				return -1;
		}
		if (rc != 0)
			goto err;
		memcpy(&got, p, sizeof(got));
		if (len != c->len || got != c->seq++)
			return -1;
		if ((rc = shk_ring_release(c->rx)) != 0)
			goto err;
	}
	return shk_ring_flush(c->rx) == 0 ? 0 : -1;
err:
	if (!c->err)
		c->err = rc;
	return -1;
}

static const struct bench_stream_ops ring_zc_ops = { st_setup, zc_produce,
						     zc_consume, st_fini };

/* A fresh segment per case: no state carries over between cases. */
static inline int
case_begin(struct rctx *c, size_t len, unsigned flags, int64_t timeout)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	static int n;
	int rc;

	memset(c, 0, sizeof(*c));
	c->len = len;
	c->flags = flags;
	c->timeout = timeout;
	snprintf(seg_name, sizeof(seg_name), "shk-bench-%d-%d", (int)getpid(),
		 n++);
	so.len = SEG_LEN;
	rc = shk_seg_open(seg_name, SHK_CREATE | SHK_EXCL, &so, &c->seg);
	if (rc != 0)
		seg_name[0] = '\0';
	return rc;
}

static inline void
case_end(struct rctx *c)
{
	shk_seg_close(c->seg);
	shk_seg_unlink(seg_name, NULL);
	seg_name[0] = '\0';
}

static inline int
ring_pingpong(int64_t timeout, unsigned flags, long n, struct bench_lat *out)
{
	struct rctx c;
	int rc = case_begin(&c, LAT_LEN, flags, timeout);

	if (rc != 0)
		return rc;
	rc = bench_pingpong(&ring_pp_ops, &c, n, out);
	if (rc != 0 && c.err)
		rc = c.err;
	case_end(&c);
	return rc;
}

static inline int
ring_stream(const struct bench_stream_ops *ops, size_t len, unsigned flags,
	    long count, double *rate)
{
	struct rctx c;
	int rc = case_begin(&c, len, flags, 0);

	if (rc != 0)
		return rc;
	rc = bench_stream(ops, &c, 1, 1, 0, count, rate);
	if (rc != 0 && c.err)
		rc = c.err;
	case_end(&c);
	return rc;
}

static inline long
stream_count(size_t rec_len, long max_count, size_t bytes_cap)
{
	long n = (long)(bytes_cap / rec_len);

	if (n > max_count)
		n = max_count;
	return bench_scale(n < 64 ? 64 : n);
}

#endif /* SHK_BENCH_RING_PARTIES_H */
