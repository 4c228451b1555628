/*
 * poll_variants.c - a standalone prototype, not part of the library or of
 * make bench: one-way latency of 64-byte payloads in 72-byte records
 * (8-byte header), ping-pong between two pinned processes, for four ways
 * for the consumer to wait, beside the bare cache-line ping-pong of
 * baselines.h, all interleaved in each round (docs/ring.md, "Targets not
 * met, and why"):
 *   tail        poll the producer's index (what src/ring.c does)
 *   hdr         poll the record header, stamped with its position
 *   tail+touch  poll the index, and load the record's two lines each time
 *   hdr+touch   poll the header, and load the payload's second line
 * Records never wrap mid-record (the area is skipped to its end), and the
 * old bytes at a header's place never look like the new stamp here, which
 * a real ring would have to ensure.  Output per round: p50/p99 in ns and
 * their ratios to the baseline's.
 *
 * Build and run from the repository root:
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Ibench -Iinclude \
 *       -o /tmp/poll_variants bench/proto/poll_variants.c -lpthread
 *   SHK_BENCH_RUNS=3 /tmp/poll_variants 8
 */
#include "baselines.h"
#define AREA 65536u
#define REC 72u
struct dir {
	_Alignas(64) _Atomic uint64_t tail;
	char p0[56];
	_Alignas(64) _Atomic uint64_t head;
	char p1[56];
	_Alignas(64) uint8_t data[AREA];
};
struct sh {
	struct dir d[2];
};
struct ctx {
	struct sh *sh;
	int variant;
	uint64_t ppos[2], cpos[2];
	uint8_t buf[64];
	uint64_t seq;
};

static inline uint64_t
wrap(uint64_t pos)
{
	return (pos % AREA) + REC > AREA ? pos + (AREA - pos % AREA) : pos;
}

static inline void
produce(struct ctx *c, int d)
{
	struct dir *x = &c->sh->d[d];
	uint64_t pos = wrap(c->ppos[d]);
	uint8_t *p = x->data + pos % AREA;
	memcpy(c->buf, &c->seq, 8);
	memcpy(p + 8, c->buf, 64);
	if (c->variant == 0 || c->variant == 2) {
		atomic_store_explicit((_Atomic uint64_t *)p, 64,
				      memory_order_relaxed);
		atomic_store_explicit(&x->tail, pos + REC,
				      memory_order_release);
	} else {
		atomic_store_explicit((_Atomic uint64_t *)p,
				      64 | ((pos + 1) << 8),
				      memory_order_release);
	}
	c->ppos[d] = pos + REC;
}
static inline void
consume(struct ctx *c, int d)
{
	struct dir *x = &c->sh->d[d];
	uint64_t pos = wrap(c->cpos[d]);
	uint8_t *p = x->data + pos % AREA;
	_Atomic uint64_t *h = (_Atomic uint64_t *)p;
	volatile uint64_t sink;
	if (c->variant == 0) {
		while (atomic_load_explicit(&x->tail, memory_order_acquire) <
		       pos + REC)
			__builtin_ia32_pause();
	} else if (c->variant == 2) {
		while (atomic_load_explicit(&x->tail, memory_order_acquire) <
		       pos + REC) {
			sink = *(volatile uint64_t *)(p + 64);
			sink = *(volatile uint64_t *)(p);
			__builtin_ia32_pause();
		}
	} else if (c->variant == 1) {
		while (atomic_load_explicit(h, memory_order_acquire) !=
		       (64 | ((pos + 1) << 8)))
			__builtin_ia32_pause();
	} else {
		while (atomic_load_explicit(h, memory_order_acquire) !=
		       (64 | ((pos + 1) << 8))) {
			sink = *(volatile uint64_t *)(p + 64);
			__builtin_ia32_pause();
		}
	}
	(void)sink;
	memcpy(c->buf, p + 8, 64);
	c->cpos[d] = pos + REC;
	atomic_store_explicit(&x->head, pos + REC, memory_order_release);
}
static int
ping(void *v, long n, double *rtt)
{
	struct ctx *c = v;
	int64_t t0 = bench_now_ns(), t1;
	for (long i = 0; i < n; i++) {
		c->seq++;
		produce(c, 0);
		consume(c, 1);
		t1 = bench_now_ns();
		rtt[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}
static int
pong(void *v, long n)
{
	struct ctx *c = v;
	for (long i = 0; i < n; i++) {
		consume(c, 0);
		produce(c, 1);
	}
	return 0;
}
static const struct bench_pp_ops ops = { NULL, ping, pong, NULL };
int
main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5;
	long n = 20000;
	const char *nm[] = { "tail", "hdr", "tail+touch", "hdr+touch" };
	for (int k = 0; k < reps; k++) {
		struct bench_lat b, r[4];
		if (base_cacheline_pingpong(n, &b) != 0)
			return 1;
		printf("base %4.0f/%4.0f", b.p50_ns, b.p99_ns);
		for (int v = 0; v < 4; v++) {
			struct ctx c;
			memset(&c, 0, sizeof c);
			c.variant = v;
			c.sh = bench_shm_alloc(sizeof(struct sh));
			if (!c.sh || bench_pingpong(&ops, &c, n, &r[v]) != 0)
				return 1;
			bench_shm_free(c.sh, sizeof(struct sh));
			printf(" | %s %4.0f/%4.0f (%.2f/%.2f)", nm[v],
			       r[v].p50_ns, r[v].p99_ns, r[v].p50_ns / b.p50_ns,
			       r[v].p99_ns / b.p99_ns);
		}
		printf("\n");
		fflush(stdout);
	}
}
