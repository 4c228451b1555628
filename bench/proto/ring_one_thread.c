#include "baselines.h"
#include "shmkit.h"
/*
 * ring_one_thread.c - a standalone measurement, not part of make bench:
 * the instruction cost of shk_ring_write + shk_ring_read with both ends
 * in one thread (32 writes, then 32 reads, repeated), so that no cache
 * line moves between CPUs and the VM's changing topology does not enter
 * the figure; beside a minimal ring doing the same in the same run.
 *   argv[1]: ring flags (0 plain, 1 SHK_RING_BATCH, 2 SHK_RING_SPIN)
 *   argv[2]: record length in bytes (default 8)
 * Prints ns per record for five rounds; docs/ring.md (Performance) quotes
 * the best of five.  Build from the repository root:
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Ibench -Iinclude \
 *       -o /tmp/ring_one_thread bench/proto/ring_one_thread.c \
 *       build/release/lib/libshmkit.a -lpthread
 */
int
main(int argc, char **argv)
{
	unsigned flags = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
	size_t len = argc > 2 ? (size_t)atoi(argv[2]) : 8;
	char nm[64];
	snprintf(nm, 64, "shk-r1-%d", getpid());
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	so.len = 8 << 20;
	shk_seg *seg;
	if (shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &so, &seg))
		return 1;
	shk_seg_unlink(nm, NULL);
	shk_ring_opts o = SHK_RING_OPTS_INIT;
	o.cap = 1 << 20;
	o.flags = flags;
	shk_ring *p, *c;
	if (shk_ring_open(seg, "r", SHK_CREATE, SHK_RING_PRODUCER, &o, &p))
		return 2;
	if (shk_ring_open(seg, "r", 0, SHK_RING_CONSUMER, &o, &c))
		return 3;
	uint8_t buf[256] = { 0 }, out[256];
	for (int rep = 0; rep < 5; rep++) {
		long n = 4000000;
		int64_t t0 = bench_now_ns();
		for (long i = 0; i < n; i += 32) {
			for (int k = 0; k < 32; k++)
				if (shk_ring_write(p, buf, len, 0))
					return 4;
			if (flags & SHK_RING_BATCH)
				shk_ring_flush(
					p); /* a batching side flushes before the other reads */
			for (int k = 0; k < 32; k++)
				if (shk_ring_read(c, out, sizeof out, 0) !=
				    (int)len)
					return 5;
			if (flags & SHK_RING_BATCH)
				shk_ring_flush(c);
		}
		int64_t t1 = bench_now_ns();
		/* minimal ring, same pattern */
		static uint8_t slots[1 << 20];
		static uint64_t head, tail;
		uint64_t mask = (sizeof slots / len) - 1;
		for (long i = 0; i < n; i += 32) {
			for (int k = 0; k < 32; k++) {
				memcpy(slots + (tail & mask) * len, buf, len);
				__atomic_store_n(&tail, tail + 1,
						 __ATOMIC_RELEASE);
			}
			for (int k = 0; k < 32; k++) {
				memcpy(out, slots + (head & mask) * len, len);
				__atomic_store_n(&head, head + 1,
						 __ATOMIC_RELEASE);
			}
			__asm__ volatile("" ::: "memory");
		}
		int64_t t2 = bench_now_ns();
		printf("flags %u len %zu: ring %.2f ns/rec, minimal %.2f "
		       "ns/rec\n",
		       flags, len, (t1 - t0) / (double)n,
		       (t2 - t1) / (double)n);
	}
	return 0;
}
