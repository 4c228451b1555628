/* demo.c - `make demo`: processes exchange data through shmkit.
 *
 * Two producer processes allocate blocks from the segment's shared heap,
 * fill them and hand their offsets to a consumer process through a slot
 * array in a typed blob object; the consumer verifies each block and frees
 * it (memory allocated by one process, freed by another).  Prints what was
 * exchanged and the heap's figures. */
#include <shmkit.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEG "shmkit-demo"
#define NSLOTS 64
#define PER_PRODUCER 20000
#define BLOCK 256

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
open_slots(shk_seg *seg, unsigned flags, _Atomic uint64_t **slots)
{
	shk_obj_desc d = SHK_OBJ_DESC_INIT;

	d.kind = SHK_KIND_BLOB;
	d.type_id = 0x736c6f7473; /* "slots" */
	d.elem_len = sizeof(uint64_t);
	d.cap = NSLOTS;
	return shk_obj_open(seg, "slots", flags, &d, NULL, (void **)slots);
}

static int
producer(int id)
{
	_Atomic uint64_t *slots;
	shk_seg *seg;
	int i;

	if (shk_seg_open(SEG, 0, NULL, &seg) < 0 ||
	    open_slots(seg, 0, &slots) < 0)
		return 1;
	for (i = 0; i < PER_PRODUCER; i++) {
		uint64_t off, zero;
		uint32_t *blk;
		int s = (id * NSLOTS / 2) + i % (NSLOTS / 2), j;

		while (shk_alloc(seg, BLOCK, &off) == SHK_ENOMEM)
			usleep(10);
		blk = shk_ptr(seg, off);
		for (j = 0; j < BLOCK / 4; j++)
			blk[j] = (uint32_t)(id * 1000003 + i + j);
		/* wait until the consumer emptied the slot, then hand over:
		 * release publishes the block's contents */
		do {
			zero = 0;
		} while (!atomic_compare_exchange_weak_explicit(
			&slots[s], &zero, off, memory_order_release,
			memory_order_relaxed));
	}
	shk_seg_close(seg);
	return 0;
}

int
main(void)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_heap_stats hs = { .size = sizeof(hs) };
	_Atomic uint64_t *slots;
	long got = 0, bad = 0, want = 2L * PER_PRODUCER;
	shk_seg *seg;
	pid_t pids[2];
	double t0, t1;
	int p, rc;

	o.len = 8 << 20;
	shk_seg_unlink(SEG, NULL); /* a leftover from an interrupted run */
	rc = shk_seg_open(SEG, SHK_CREATE | SHK_EXCL, &o, &seg);
	if (rc < 0 || (rc = open_slots(seg, SHK_CREATE, &slots)) < 0) {
		fprintf(stderr, "demo: %s\n", shk_strerror(rc));
		return 1;
	}
	printf("shmkit %s demo: 2 producer processes -> 1 consumer, %d-byte "
	       "blocks from the shared heap\n",
	       SHK_VERSION_STRING, BLOCK);
	t0 = now_s();
	for (p = 0; p < 2; p++) {
		pids[p] = fork();
		if (pids[p] == 0)
			_exit(producer(p));
	}
	while (got < want) {
		int s;
		for (s = 0; s < NSLOTS; s++) {
			/* acquire: pairs with the producer's release CAS */
			uint64_t off = atomic_exchange_explicit(
				&slots[s], 0, memory_order_acquire);
			uint32_t *blk;
			if (!off)
				continue;
			blk = shk_ptr(seg, off);
			if (!blk || blk[1] != blk[0] + 1)
				bad++;
			if (shk_free(seg, off) < 0)
				bad++;
			got++;
		}
	}
	t1 = now_s();
	for (p = 0; p < 2; p++)
		waitpid(pids[p], NULL, 0);
	shk_heap_info(seg, &hs);
	printf("  blocks exchanged : %ld (%ld bad)\n", got, bad);
	printf("  bytes            : %.1f MiB in %.3f s = %.0f blocks/s\n",
	       got * (double)BLOCK / (1 << 20), t1 - t0, got / (t1 - t0));
	printf("  heap after       : %llu bytes in use, high water %llu of "
	       "%llu\n",
	       (unsigned long long)hs.used,
	       (unsigned long long)hs.high_water,
	       (unsigned long long)hs.heap_len);
	shk_seg_close(seg);
	shk_seg_unlink(SEG, NULL);
	return bad ? 1 : 0;
}
