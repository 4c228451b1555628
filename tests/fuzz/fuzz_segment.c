/*
 * fuzz_segment.c - libFuzzer target over segment and registry images
 * (ALGORITHMS §10).  Each input is a list of patches applied to a valid
 * segment image holding one object of every kind; the patched image is
 * opened read-only and read-write from a memfd, checked, iterated and
 * described.  Any code is fine; a crash, hang or sanitizer report is not.
 *
 * Input format: repeated 5-byte records {u16 offset/8 into the first 64 KiB
 * ... little endian, u8 value, u8 width, u8 selector}.
 */
#include <shmkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define IMG_LEN (256u << 10)

static uint8_t *image;

static void
build_image(void)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	shk_seg *seg;
	void *p;

	o.backend = SHK_BACKEND_MEMFD;
	o.len = IMG_LEN;
	o.max_objects = 16;
	if (shk_seg_open("fuzz", SHK_CREATE, &o, &seg) < 0)
		abort();
	d.kind = SHK_KIND_BLOB;
	d.elem_len = 8;
	d.cap = 8;
	shk_obj_open(seg, "blob", SHK_CREATE, &d, NULL, &p);
	{
		shk_ring_opts ro = SHK_RING_OPTS_INIT;
		shk_ring *r;
		ro.cap = 4096;
		if (shk_ring_open(seg, "ring", SHK_CREATE, SHK_RING_PRODUCER,
				  &ro, &r) == 0) {
			shk_ring_write(r, "hello", 5, 0);
			shk_ring_close(r);
		}
	}
	{
		shk_sync_opts so = SHK_SYNC_OPTS_INIT;
		shk_mutex *m;
		shk_sem *s;
		if (shk_mutex_open(seg, "mutex", SHK_CREATE, &so, &m) == 0)
			shk_mutex_close(m);
		so.count = 3;
		if (shk_sem_open(seg, "sem", SHK_CREATE, &so, &s) == 0)
			shk_sem_close(s);
	}
	{
		shk_map_opts mo = SHK_MAP_OPTS_INIT;
		shk_map *m;
		mo.cap = 16;
		mo.key_len = 8;
		mo.val_len = 8;
		if (shk_map_open(seg, "map", SHK_CREATE, &mo, &m) == 0) {
			uint64_t k = 1, v = 2;
			shk_map_put(m, &k, &v);
			shk_map_close(m);
		}
	}
	{
		shk_array_opts ao = SHK_ARRAY_OPTS_INIT;
		shk_array *a;
		ao.len = 16;
		ao.elem_len = 8;
		if (shk_array_open(seg, "array", SHK_CREATE, &ao, &a) == 0)
			shk_array_close(a);
	}
	/* copy the image after closing, so that no attach record names this
	 * (live) process: a lock word patched to name it would then wait out
	 * the registry lock's 5 s timeout on every call */
	{
		int fd = dup(shk_seg_fd(seg));
		void *m;
		shk_seg_close(seg);
		m = mmap(NULL, IMG_LEN, PROT_READ, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			abort();
		image = malloc(IMG_LEN);
		memcpy(image, m, IMG_LEN);
		munmap(m, IMG_LEN);
		close(fd);
	}
}

static void
exercise(shk_seg *seg)
{
	shk_obj_info info = { .size = sizeof(info) };
	shk_seg_stats st = { .size = sizeof(st) };
	shk_attach_info ai = { .size = sizeof(ai) };
	uint32_t cur = 0;
	char buf[256];

	shk_seg_info(seg, &st);
	shk_seg_check(seg);
	while (shk_seg_attached(seg, &cur, &ai) == 1)
		;
	cur = 0;
	while (shk_obj_next(seg, &cur, &info) == 1) {
		shk_obj_desc d = SHK_OBJ_DESC_INIT;
		shk_obj_info oi = { .size = sizeof(oi) };
		volatile const uint8_t *mem = NULL;

		shk_obj_describe(seg, &info, buf, sizeof(buf));
		shk_obj_stat(seg, info.name, &info);
		/* the plain open of any kind (lock-free on a read-only
		 * handle): the kind's check, then a read of the object's
		 * first and last byte, which must be inside the mapping */
		d.kind = info.kind;
		if (shk_obj_open(seg, info.name, 0, &d, &oi, (void **)&mem) ==
			    0 &&
		    oi.len > 0)
			(void)(mem[0] + mem[oi.len - 1]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_seg *seg;
	size_t i;
	int fd;
	uint8_t *p;

	if (!image)
		build_image();
	/* sealable: shk_seg_open_fd refuses a memfd it cannot seal
	 * against shrinking (it adds F_SEAL_SHRINK at the first open) */
	fd = memfd_create("fuzz-img", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, IMG_LEN) != 0)
		abort();
	p = mmap(NULL, IMG_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	memcpy(p, image, IMG_LEN);
	for (i = 0; i + 5 <= size; i += 5) {
		uint32_t off =
			((uint32_t)data[i] | (uint32_t)data[i + 1] << 8) *
			(data[i + 4] & 1 ? 1 : 8);
		off %= IMG_LEN;
		switch (data[i + 3] % 3) {
		case 0:
			p[off] = data[i + 2];
			break;
		case 1:
			p[off] ^= data[i + 2];
			break;
		default:
			if (off + 8 <= IMG_LEN)
				memset(p + off, data[i + 2], 8);
		}
	}
	if (size >= 1 && data[0] == 0xee) /* sometimes truncate */
		ftruncate(fd, (off_t)(data[size - 1] * 1024u));
	munmap(p, IMG_LEN);
	o.open_timeout_ns = 1000000;
	if (shk_seg_open_fd(fd, SHK_RDONLY, &o, &seg) == 0) {
		exercise(seg);
		shk_seg_close(seg);
	}
	if (shk_seg_open_fd(fd, 0, &o, &seg) == 0) {
		exercise(seg);
		shk_seg_close(seg);
	}
	close(fd);
	return 0;
}
