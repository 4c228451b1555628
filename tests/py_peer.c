/*
 * py_peer.c - the C side of the Python binding's tests (python/tests).
 *
 * Uses only include/shmkit.h, as any C program sharing data with Python
 * would.  Each command opens the segment the Python test created, does one
 * job and prints what it saw on stdout, one line per event, flushed, so the
 * test can follow along:
 *
 *   layout                        sizeof/offsetof of every struct the
 *                                 binding mirrors, as JSON
 *   ring-write SEG RING N         produce N stamped records
 *   ring-read SEG RING N          consume N stamped records, verify each
 *   array SEG NAME                check Python's u32 pattern, write ours
 *   array-add SEG NAME IDX N      N atomic fetch_adds of 1 on element IDX
 *   queue-push SEG NAME N         push u64 i*i, i < N
 *   queue-pop SEG NAME N          pop N u64 elements, verify i*i + 1
 *   bcast-write SEG NAME N        wait for a line on stdin, write N seqs
 *   map-put SEG NAME N            put "k%07d" -> (u64)i*11
 *   map-check SEG NAME N          verify Python's puts ("p%07d" -> i*13)
 *   mutex-hold SEG NAME MS        lock, hold MS milliseconds, unlock
 *   mutex-die SEG NAME            lock, then SIGKILL itself holding it
 *   mutex-lock SEG NAME MS        lock with a timeout; print the result
 *
 * Stamped records (both directions): record i is L = 8 + (i * 37) % 200
 * bytes: u32 i, u32 L (little-endian), then byte j = (i * 7 + j) & 0xff;
 * the FNV-1a 64 hash of all records is printed.  The Python tests build
 * the same records.
 */
#include <shmkit.h>

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The type id of the Python binding's NumPy dtype convention. */
#define SHK_NP_TYPE(kind, size)                                                \
	((uint64_t)0x4E50 << 48 | (uint64_t)(kind) << 40 | (uint64_t)(size))

static shk_seg *seg;

static void
die(const char *what, int rc)
{
	printf("error %s %s\n", what, shk_errname(rc));
	fflush(stdout);
	exit(2);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line to the test, flushed at once (it follows along). */
static void
say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static uint64_t
fnv(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static size_t
stamp(uint32_t i, unsigned char *buf)
{
	uint32_t len = 8 + (i * 37) % 200, j;

	memcpy(buf, &i, 4);
	memcpy(buf + 4, &len, 4);
	for (j = 8; j < len; j++)
		buf[j] = (unsigned char)((i * 7 + j) & 0xff);
	return len;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

#define FIELD(s, f) printf("%s\"%s\": %zu", n++ ? ", " : "", #f, offsetof(s, f))
#define STRUCT(s, fields)                                                      \
	do {                                                                   \
		int n = 0;                                                     \
		printf("%s\"%s\": {\"sizeof\": %zu, \"fields\": {",            \
		       ns++ ? ", " : "", #s, sizeof(s));                       \
		fields;                                                        \
		printf("}}");                                                  \
	} while (0)

static void
layout(void)
{
	int ns = 0;

	printf("{");
	STRUCT(shk_seg_opts, FIELD(shk_seg_opts, size);
	       FIELD(shk_seg_opts, mode); FIELD(shk_seg_opts, backend);
	       FIELD(shk_seg_opts, max_objects); FIELD(shk_seg_opts, len);
	       FIELD(shk_seg_opts, open_timeout_ns);
	       FIELD(shk_seg_opts, sysv_key); FIELD(shk_seg_opts, reserved));
	STRUCT(shk_seg_stats, FIELD(shk_seg_stats, size);
	       FIELD(shk_seg_stats, version); FIELD(shk_seg_stats, backend);
	       FIELD(shk_seg_stats, mode); FIELD(shk_seg_stats, len);
	       FIELD(shk_seg_stats, created_ns);
	       FIELD(shk_seg_stats, creator_pid);
	       FIELD(shk_seg_stats, creator_uid);
	       FIELD(shk_seg_stats, nobjects);
	       FIELD(shk_seg_stats, max_objects);
	       FIELD(shk_seg_stats, attached);
	       FIELD(shk_seg_stats, attached_alive);
	       FIELD(shk_seg_stats, heap_len); FIELD(shk_seg_stats, heap_used);
	       FIELD(shk_seg_stats, heap_free);
	       FIELD(shk_seg_stats, heap_high_water);
	       FIELD(shk_seg_stats, name); FIELD(shk_seg_stats, owner_uid);
	       FIELD(shk_seg_stats, owner_gid);
	       FIELD(shk_seg_stats, create_mode);
	       FIELD(shk_seg_stats, reserved));
	STRUCT(shk_attach_info, FIELD(shk_attach_info, size);
	       FIELD(shk_attach_info, slot); FIELD(shk_attach_info, pid);
	       FIELD(shk_attach_info, alive);
	       FIELD(shk_attach_info, start_ticks);
	       FIELD(shk_attach_info, generation);
	       FIELD(shk_attach_info, flags));
	STRUCT(shk_heap_stats, FIELD(shk_heap_stats, size);
	       FIELD(shk_heap_stats, nclasses); FIELD(shk_heap_stats, heap_len);
	       FIELD(shk_heap_stats, used); FIELD(shk_heap_stats, free);
	       FIELD(shk_heap_stats, high_water);
	       FIELD(shk_heap_stats, nallocs);
	       FIELD(shk_heap_stats, class_size);
	       FIELD(shk_heap_stats, class_used));
	STRUCT(shk_obj_desc, FIELD(shk_obj_desc, size);
	       FIELD(shk_obj_desc, kind); FIELD(shk_obj_desc, type_id);
	       FIELD(shk_obj_desc, elem_len); FIELD(shk_obj_desc, align);
	       FIELD(shk_obj_desc, cap));
	STRUCT(shk_obj_info, FIELD(shk_obj_info, size);
	       FIELD(shk_obj_info, kind); FIELD(shk_obj_info, type_id);
	       FIELD(shk_obj_info, elem_len); FIELD(shk_obj_info, align);
	       FIELD(shk_obj_info, cap); FIELD(shk_obj_info, off);
	       FIELD(shk_obj_info, len); FIELD(shk_obj_info, created_ns);
	       FIELD(shk_obj_info, creator_pid); FIELD(shk_obj_info, slot);
	       FIELD(shk_obj_info, name));
	STRUCT(shk_array_opts, FIELD(shk_array_opts, size);
	       FIELD(shk_array_opts, elem_len); FIELD(shk_array_opts, len);
	       FIELD(shk_array_opts, type_id));
	STRUCT(shk_map_opts, FIELD(shk_map_opts, size);
	       FIELD(shk_map_opts, key_len); FIELD(shk_map_opts, val_len);
	       FIELD(shk_map_opts, reserved); FIELD(shk_map_opts, cap);
	       FIELD(shk_map_opts, type_id));
	STRUCT(shk_ring_opts, FIELD(shk_ring_opts, size);
	       FIELD(shk_ring_opts, flags); FIELD(shk_ring_opts, cap);
	       FIELD(shk_ring_opts, max_record); FIELD(shk_ring_opts, type_id));
	STRUCT(shk_ring_stats, FIELD(shk_ring_stats, size);
	       FIELD(shk_ring_stats, max_record); FIELD(shk_ring_stats, cap);
	       FIELD(shk_ring_stats, head); FIELD(shk_ring_stats, tail);
	       FIELD(shk_ring_stats, fill); FIELD(shk_ring_stats, producer);
	       FIELD(shk_ring_stats, consumer); FIELD(shk_ring_stats, waiters);
	       FIELD(shk_ring_stats, reserved));
	STRUCT(shk_bcast_opts, FIELD(shk_bcast_opts, size);
	       FIELD(shk_bcast_opts, mode); FIELD(shk_bcast_opts, cap);
	       FIELD(shk_bcast_opts, max_record);
	       FIELD(shk_bcast_opts, type_id);
	       FIELD(shk_bcast_opts, max_readers);
	       FIELD(shk_bcast_opts, reserved);
	       FIELD(shk_bcast_opts, reader_timeout_ns));
	STRUCT(shk_bcast_stats, FIELD(shk_bcast_stats, size);
	       FIELD(shk_bcast_stats, max_record); FIELD(shk_bcast_stats, cap);
	       FIELD(shk_bcast_stats, mode);
	       FIELD(shk_bcast_stats, max_readers);
	       FIELD(shk_bcast_stats, tail); FIELD(shk_bcast_stats, next_seq);
	       FIELD(shk_bcast_stats, readers); FIELD(shk_bcast_stats, writer);
	       FIELD(shk_bcast_stats, min_cursor));
	STRUCT(shk_queue_opts, FIELD(shk_queue_opts, size);
	       FIELD(shk_queue_opts, elem_len); FIELD(shk_queue_opts, cap);
	       FIELD(shk_queue_opts, type_id));
	STRUCT(shk_queue_stats, FIELD(shk_queue_stats, size);
	       FIELD(shk_queue_stats, elem_len); FIELD(shk_queue_stats, cap);
	       FIELD(shk_queue_stats, len); FIELD(shk_queue_stats, lost);
	       FIELD(shk_queue_stats, type_id);
	       FIELD(shk_queue_stats, pop_waiters);
	       FIELD(shk_queue_stats, push_waiters));
	STRUCT(shk_chan_opts, FIELD(shk_chan_opts, size);
	       FIELD(shk_chan_opts, mode); FIELD(shk_chan_opts, seg_size);
	       FIELD(shk_chan_opts, cap); FIELD(shk_chan_opts, max_msg);
	       FIELD(shk_chan_opts, inline_max); FIELD(shk_chan_opts, type_id);
	       FIELD(shk_chan_opts, max_subs); FIELD(shk_chan_opts, flags);
	       FIELD(shk_chan_opts, seg_mode); FIELD(shk_chan_opts, reserved));
	STRUCT(shk_chan_stats, FIELD(shk_chan_stats, size);
	       FIELD(shk_chan_stats, pattern); FIELD(shk_chan_stats, role);
	       FIELD(shk_chan_stats, mode); FIELD(shk_chan_stats, cap);
	       FIELD(shk_chan_stats, max_msg);
	       FIELD(shk_chan_stats, inline_max); FIELD(shk_chan_stats, sent);
	       FIELD(shk_chan_stats, received); FIELD(shk_chan_stats, lost);
	       FIELD(shk_chan_stats, corrupt);
	       FIELD(shk_chan_stats, outstanding); FIELD(shk_chan_stats, fill));
	STRUCT(shk_pool_opts, FIELD(shk_pool_opts, size);
	       FIELD(shk_pool_opts, reserved); FIELD(shk_pool_opts, block_len);
	       FIELD(shk_pool_opts, cap); FIELD(shk_pool_opts, type_id));
	STRUCT(shk_pool_stats, FIELD(shk_pool_stats, size);
	       FIELD(shk_pool_stats, reserved);
	       FIELD(shk_pool_stats, block_len); FIELD(shk_pool_stats, cap);
	       FIELD(shk_pool_stats, in_use); FIELD(shk_pool_stats, type_id));
	STRUCT(shk_stack_opts, FIELD(shk_stack_opts, size);
	       FIELD(shk_stack_opts, elem_len); FIELD(shk_stack_opts, cap);
	       FIELD(shk_stack_opts, type_id));
	STRUCT(shk_stack_stats, FIELD(shk_stack_stats, size);
	       FIELD(shk_stack_stats, elem_len); FIELD(shk_stack_stats, cap);
	       FIELD(shk_stack_stats, depth); FIELD(shk_stack_stats, type_id));
	STRUCT(shk_sync_opts, FIELD(shk_sync_opts, size);
	       FIELD(shk_sync_opts, flags); FIELD(shk_sync_opts, count);
	       FIELD(shk_sync_opts, max));
	printf("}\n");
}

static void
ring_write(const char *name, long n)
{
	unsigned char rec[256];
	shk_ring *r;
	uint64_t h = 0xcbf29ce484222325ull;
	long i;
	size_t len;
	int rc = shk_ring_open(seg, name, 0, SHK_RING_PRODUCER, NULL, &r);

	if (rc < 0)
		die("ring_open", rc);
	say("ready %llu", (unsigned long long)n);
	for (i = 0; i < n; i++) {
		len = stamp((uint32_t)i, rec);
		h = fnv(h, rec, len);
		rc = shk_ring_write(r, rec, len, 5000000000ll);
		if (rc < 0)
			die("ring_write", rc);
	}
	say("fnv=%016llx", (unsigned long long)h);
	shk_ring_close(r);
}

static void
ring_read(const char *name, long n)
{
	unsigned char rec[256], want[256];
	shk_ring *r;
	uint64_t h = 0xcbf29ce484222325ull;
	long i;
	size_t len;
	int rc = shk_ring_open(seg, name, 0, SHK_RING_CONSUMER, NULL, &r);

	if (rc < 0)
		die("ring_open", rc);
	say("ready %llu", (unsigned long long)n);
	for (i = 0; i < n; i++) {
		rc = shk_ring_read(r, rec, sizeof(rec), 5000000000ll);
		if (rc < 0)
			die("ring_read", rc);
		len = stamp((uint32_t)i, want);
		if ((size_t)rc != len || memcmp(rec, want, len) != 0) {
			say("mismatch at %llu", (unsigned long long)i);
			exit(3);
		}
		h = fnv(h, rec, len);
	}
	say("fnv=%016llx", (unsigned long long)h);
	shk_ring_close(r);
}

static shk_array *
array_open(const char *name)
{
	shk_array_opts o = SHK_ARRAY_OPTS_INIT;
	shk_array *a;
	int rc;

	o.elem_len = 4;
	o.type_id = SHK_NP_TYPE('u', 4);
	rc = shk_array_open(seg, name, 0, &o, &a);
	if (rc < 0)
		die("array_open", rc);
	return a;
}

static void
array_check(const char *name)
{
	shk_array *a = array_open(name);
	uint32_t *v = shk_array_data(a);
	uint64_t i, n = shk_array_len(a), bad = 0;

	for (i = 0; i < n; i++)
		bad += v[i] != (uint32_t)(i * 3 + 1);
	say("len=%llu", (unsigned long long)n);
	say("bad=%llu", (unsigned long long)bad);
	for (i = 0; i < n; i++)
		v[i] = (uint32_t)(i * 5 + 2);
	say("wrote %llu", (unsigned long long)n);
	shk_array_close(a);
}

static void
array_add(const char *name, long idx, long n)
{
	shk_array *a = array_open(name);
	long i;
	int rc;

	say("ready %llu", (unsigned long long)n);
	for (i = 0; i < n; i++) {
		rc = shk_array_fetch_add_u32(a, (uint64_t)idx, 1, NULL);
		if (rc < 0)
			die("fetch_add", rc);
	}
	say("done %llu", (unsigned long long)n);
	shk_array_close(a);
}

static shk_queue *
queue_open(const char *name)
{
	shk_queue_opts o = SHK_QUEUE_OPTS_INIT;
	shk_queue *q;
	int rc;

	o.elem_len = 8;
	o.type_id = SHK_NP_TYPE('u', 8);
	rc = shk_queue_open(seg, name, 0, &o, &q);
	if (rc < 0)
		die("queue_open", rc);
	return q;
}

static void
queue_push(const char *name, long n)
{
	shk_queue *q = queue_open(name);
	uint64_t v;
	long i;
	int rc;

	for (i = 0; i < n; i++) {
		v = (uint64_t)i * (uint64_t)i;
		rc = shk_queue_push(q, &v, 5000000000ll);
		if (rc < 0)
			die("queue_push", rc);
	}
	say("pushed %llu", (unsigned long long)n);
	shk_queue_close(q);
}

static void
queue_pop(const char *name, long n)
{
	shk_queue *q = queue_open(name);
	uint64_t v, bad = 0;
	long i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = shk_queue_pop(q, &v, 5000000000ll);
		if (rc < 0)
			die("queue_pop", rc);
		bad += v != (uint64_t)i * (uint64_t)i + 1;
	}
	say("popped %llu", (unsigned long long)n);
	say("bad=%llu", (unsigned long long)bad);
	shk_queue_close(q);
}

static void
bcast_write(const char *name, long n)
{
	shk_bcast *b;
	char line[16];
	uint64_t i;
	int rc = shk_bcast_open(seg, name, 0, SHK_BCAST_WRITER, NULL, &b);

	if (rc < 0)
		die("bcast_open", rc);
	say("ready %llu", (unsigned long long)n);
	if (!fgets(line, sizeof(line), stdin))
		die("stdin", SHK_EPIPE);
	for (i = 0; i < (uint64_t)n; i++) {
		rc = shk_bcast_write(b, &i, sizeof(i), 0);
		if (rc < 0)
			die("bcast_write", rc);
	}
	say("wrote %llu", (unsigned long long)n);
	shk_bcast_close(b);
}

static shk_map *
map_open(const char *name)
{
	shk_map_opts o = SHK_MAP_OPTS_INIT;
	shk_map *m;
	int rc;

	o.key_len = 8;
	o.val_len = 8;
	rc = shk_map_open(seg, name, 0, &o, &m);
	if (rc < 0)
		die("map_open", rc);
	return m;
}

static void
map_put(const char *name, long n)
{
	shk_map *m = map_open(name);
	char key[24]; /* 8 bytes used: "k%07ld" for i < 10^7 */
	uint64_t v;
	long i;
	int rc;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%07ld", i);
		v = (uint64_t)i * 11;
		rc = shk_map_put(m, key, &v);
		if (rc < 0)
			die("map_put", rc);
	}
	say("put %llu", (unsigned long long)n);
	shk_map_close(m);
}

static void
map_check(const char *name, long n)
{
	shk_map *m = map_open(name);
	char key[24]; /* 8 bytes used: "k%07ld" for i < 10^7 */
	uint64_t v, bad = 0;
	long i;
	int rc;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "p%07ld", i);
		rc = shk_map_get(m, key, &v);
		bad += rc != 0 || v != (uint64_t)i * 13;
	}
	say("count=%llu", (unsigned long long)shk_map_count(m));
	say("bad=%llu", (unsigned long long)bad);
	shk_map_close(m);
}

static shk_mutex *
mutex_open(const char *name)
{
	shk_mutex *mu;
	int rc = shk_mutex_open(seg, name, 0, NULL, &mu);

	if (rc < 0)
		die("mutex_open", rc);
	return mu;
}

static void
mutex_cmd(const char *cmd, const char *name, long ms)
{
	shk_mutex *mu = mutex_open(name);
	int rc;

	if (strcmp(cmd, "mutex-lock") == 0) {
		rc = shk_mutex_lock(mu, ms * 1000000ll);
		printf("lock %s\n", shk_errname(rc));
		fflush(stdout);
		if (rc == SHK_EOWNERDEAD)
			rc = shk_mutex_consistent(mu);
		if (rc == 0)
			shk_mutex_unlock(mu);
		shk_mutex_close(mu);
		return;
	}
	rc = shk_mutex_lock(mu, 5000000000ll);
	if (rc < 0)
		die("mutex_lock", rc);
	say("locked %llu", (unsigned long long)getpid());
	if (strcmp(cmd, "mutex-die") == 0)
		kill(getpid(), SIGKILL);
	sleep_ms(ms);
	say("unlocking %llu", (unsigned long long)ms);
	shk_mutex_unlock(mu);
	shk_mutex_close(mu);
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	long n = argc > 4 ? atol(argv[4]) : 0;
	int rc;

	if (strcmp(cmd, "layout") == 0) {
		layout();
		return 0;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: py_peer CMD SEG NAME [N [M]]\n");
		return 2;
	}
	rc = shk_seg_open(argv[2], 0, NULL, &seg);
	if (rc < 0)
		die("seg_open", rc);
	if (strcmp(cmd, "ring-write") == 0)
		ring_write(argv[3], n);
	else if (strcmp(cmd, "ring-read") == 0)
		ring_read(argv[3], n);
	else if (strcmp(cmd, "array") == 0)
		array_check(argv[3]);
	else if (strcmp(cmd, "array-add") == 0)
		array_add(argv[3], n, argc > 5 ? atol(argv[5]) : 0);
	else if (strcmp(cmd, "queue-push") == 0)
		queue_push(argv[3], n);
	else if (strcmp(cmd, "queue-pop") == 0)
		queue_pop(argv[3], n);
	else if (strcmp(cmd, "bcast-write") == 0)
		bcast_write(argv[3], n);
	else if (strcmp(cmd, "map-put") == 0)
		map_put(argv[3], n);
	else if (strcmp(cmd, "map-check") == 0)
		map_check(argv[3], n);
	else if (strncmp(cmd, "mutex-", 6) == 0)
		mutex_cmd(cmd, argv[3], n);
	else {
		fprintf(stderr, "py_peer: unknown command %s\n", cmd);
		shk_seg_close(seg);
		return 2;
	}
	shk_seg_close(seg);
	return 0;
}
