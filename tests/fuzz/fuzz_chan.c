/*
 * fuzz_chan.c - libFuzzer target over the channels (docs/chan.md) on a
 * corrupted segment (ALGORITHMS §10): the control blocks, the parts
 * (pair rings, pub/sub log, push/pull queue of heap references), the
 * push/pull table of held messages and the heap blocks that messages
 * name.  A patched frame, reference, check word, block header, held entry
 * or control block must give an error code (SHK_ECORRUPT, ...), never a
 * crash, a sanitizer report, an access outside the object, or a hang.
 *
 * A channel opens its segment by name (shm://SEGMENT/CHANNEL, the POSIX
 * backend), so, unlike fuzz_structs.c, each input writes the image into
 * the POSIX segment shk-fuzzchan-PID (PID: the fuzzing process) and
 * removes it at the end of the input; a run killed inside an input (a
 * crash) leaves that name behind, for `shmkit rm` or rm /dev/shm/....
 *
 * The image is built once, in a child process that exits before the image
 * is used (no attach record names a live process; fuzz_structs.c says
 * why).  It holds four channels with live contents: a pair (inline and
 * heap messages pending both ways, one received by B and not released),
 * a lossy pub/sub (records pending, two subscribers), a reliable
 * pub/sub whose subscriber lags, and a push/pull
 * (references pending; a puller holding one message, so that its held
 * entry names a dead puller's block, and a sender holding a loan).  The
 * copy is taken while these are outstanding: the child dies holding them.
 *
 * Input format: fuzz_structs.c's 6-byte records {target, off0..2, value,
 * op}; the regions are the registry objects (the control blocks with the
 * held table, the rings, the log, the queue), the heap blocks of the
 * pending messages, the heap's first 8 KiB, and the whole image.  Bit 7
 * of target clear: patched before the channels are opened; set: after,
 * through the open handles' mapping, as a hostile peer would.  Every call
 * runs with timeout 0 and bounded loops; the target aborts when a
 * received message or a loan lies outside the heap (or, inline, outside
 * its ring).
 *
 * One rule of fuzz_structs.c cannot hold here: every channel handle opens
 * its own segment handle, so this process holds a dozen live attach
 * records, and a patched registry or heap lock word can name one of
 * them.  A robust lock names a live holder then, and its waiters wait
 * out the lock's internal timeout (registry 5 s, heap 10 s) whatever
 * timeout the call was given, by design (the liveness test cannot tell
 * a forged word from a holder); it first showed as a 10 s hang in
 * shk_chan_recv (push/pull: shk__heap_warm() takes the heap lock).  So
 * after the patches and after every open, unforge_locks() frees those
 * two words when they name one of our live handles.  Which records our
 * handles claim moves with the pid and the process's count of opens
 * (shk__seg_attach()), so such an input does not replay in a fresh
 * process.
 */
#include <fcntl.h>
#include <shmkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz_patch.h"
#include "heap_int.h"
#include "segment.h"

#define SEG_LEN (256u << 10)
#define MAX_REGIONS 32
#define MAX_PATCHES 64

/* Built by the child, in a shared anonymous mapping. */
struct built {
	uint32_t nregions;
	uint64_t len; /* of the image */
	struct region reg[MAX_REGIONS];
	uint8_t image[SEG_LEN];
};

static struct built *img;
static volatile uint64_t sink;
static int trace; /* env SHK_FUZZ_TRACE: print each open's code (triage) */
static char segname[64];
static char addr_pair[96], addr_ps[96], addr_psr[96], addr_pp[96];

static int
opened(const char *what, int rc)
{
	if (trace)
		fprintf(stderr, "open %s: %s\n", what, shk_errname(rc));
	return rc;
}

/* Every segment handle this process holds on the input's segment. */
static shk_seg *live[16];
static int nlive;

static void
live_add(shk_chan *c)
{
	if (c && nlive < (int)(sizeof(live) / sizeof(live[0])))
		live[nlive++] = shk_chan_seg(c);
}

static void
live_drop(shk_chan *c)
{
	int i;

	for (i = 0; c && i < nlive; i++) {
		if (live[i] == shk_chan_seg(c)) {
			live[i] = live[--nlive];
			return;
		}
	}
}

/* Frees the word at w if its owner stamp names one of our live handles
 * (the comment at the top). */
static void
unforge(_Atomic uint32_t *w)
{
	/* relaxed: this thread is the only user of the segment */
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
	int i;

	for (i = 0; i < nlive; i++) {
		if (v && (v & SHK__STAMP_MASK) == shk__seg_stamp(live[i])) {
			atomic_store_explicit(w, 0, memory_order_relaxed);
			return;
		}
	}
}

static void
unforge_locks(void)
{
	shk_seg *seg = nlive ? live[0] : NULL;

	if (!seg)
		return;
	unforge(&shk__hdr(seg)->reg_lock);
	if (seg->heap_len >= sizeof(struct heap_hdr))
		unforge(&hdr_of(seg)->lock);
}

static void
cleanup(void)
{
	if (segname[0])
		shm_unlink(segname);
}

/* An oracle's abort, without leaving the input's segment behind (a
 * sanitizer's report does leave it: the comment at the top). */
static void
die(void)
{
	cleanup();
	abort();
}

static void
add_region(uint64_t off, uint64_t len)
{
	if (img->nregions < MAX_REGIONS && len > 0) {
		img->reg[img->nregions].off = off;
		img->reg[img->nregions].len = len;
		img->nregions++;
	}
}

static void
chan_opts(shk_chan_opts *o, int pattern)
{
	*o = (shk_chan_opts)SHK_CHAN_OPTS_INIT;
	o->seg_size = SEG_LEN;
	switch (pattern) {
	case SHK_CHAN_PAIR:
		o->cap = 2048;
		o->max_msg = 4096;
		o->inline_max = 48;
		break;
	case SHK_CHAN_PUBSUB:
		o->cap = 1024;
		o->max_subs = 4;
		break;
	default:
		o->cap = 16;
		o->max_msg = 2048;
	}
}

static shk_chan *
must_open(const char *addr, int pattern, int role)
{
	shk_chan_opts o;
	shk_chan *c;

	chan_opts(&o, pattern);
	if (addr == addr_psr)
		o.mode = SHK_BCAST_RELIABLE;
	if (shk_chan_open(addr, pattern, role, &o, &c))
		abort();
	return c;
}

/* A heap message's block (from its header) as a region. */
static void
add_block(shk_seg *seg, shk_msg *m)
{
	uint64_t off = shk_off(seg, shk_msg_data(m));

	if (off >= 16)
		add_region(off - 16, 16 + shk_msg_len(m));
}

/* Runs in a child: builds the image and the region table into img. */
static void
build_child(void)
{
	shk_obj_info info = { .size = sizeof(info) };
	shk_chan *a, *b, *pub, *sub, *sub2, *rpub, *rsub, *push, *pull;
	shk_msg *m, *held, *loan;
	shk_seg *seg;
	char buf[600];
	uint32_t cur = 0;
	int i;

	memset(buf, 'm', sizeof(buf));
	a = must_open(addr_pair, SHK_CHAN_PAIR, SHK_CHAN_A);
	b = must_open(addr_pair, SHK_CHAN_PAIR, SHK_CHAN_B);
	pub = must_open(addr_ps, SHK_CHAN_PUBSUB, SHK_CHAN_PUB);
	sub = must_open(addr_ps, SHK_CHAN_PUBSUB, SHK_CHAN_SUB);
	sub2 = must_open(addr_ps, SHK_CHAN_PUBSUB, SHK_CHAN_SUB);
	rpub = must_open(addr_psr, SHK_CHAN_PUBSUB, SHK_CHAN_PUB);
	rsub = must_open(addr_psr, SHK_CHAN_PUBSUB, SHK_CHAN_SUB);
	push = must_open(addr_pp, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH);
	pull = must_open(addr_pp, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL);
	seg = shk_chan_seg(a);
	/* pair: wrap A's ring once, then leave inline and heap messages
	 * pending both ways; B keeps one received (a heap one) */
	for (i = 0; i < 40; i++) {
		if (shk_chan_send(a, buf, (size_t)(i * 37 % 120), 0) == 0 &&
		    shk_chan_recv(b, &m, 0) == 0)
			shk_msg_release(m);
	}
	shk_chan_send(a, buf, 500, 0);
	for (i = 0; i < 4; i++) {
		shk_chan_send(a, buf, (size_t)(i * 30), 0);
		shk_chan_send(b, buf, (size_t)(i * 70), 0);
	}
	if (shk_msg_loan(a, 300, &m) == 0 && shk_msg_send(a, m, 0) != 0)
		shk_msg_release(m);
	if (shk_chan_recv(b, &m, 0) != 0)
		abort();
	add_block(seg, m); /* the 500-byte heap message */
	/* pub/sub: past the end of the log once, records pending */
	for (i = 0; i < 40; i++) {
		shk_chan_send(pub, buf, (size_t)(i * 13 % 100), 0);
		if (i % 2 && shk_chan_recv(sub, &m, 0) == 0)
			shk_msg_release(m);
	}
	/* reliable pub/sub: the subscriber reads a few, then lags */
	for (i = 0; i < 12; i++) {
		shk_chan_send(rpub, buf, (size_t)(i * 29 % 90), 0);
		if (i < 4 && shk_chan_recv(rsub, &m, 0) == 0)
			shk_msg_release(m);
	}
	/* push/pull: references pending, one held, one loan outstanding */
	for (i = 0; i < 10; i++)
		shk_chan_send(push, buf, (size_t)(i * 50), 0);
	for (i = 0; i < 3; i++) {
		if (shk_chan_recv(pull, &m, 0) == 0)
			shk_msg_release(m);
	}
	if (shk_chan_recv(pull, &held, 0) != 0)
		abort();
	add_block(seg, held);
	if (shk_msg_loan(push, 200, &loan) != 0)
		abort();
	add_block(seg, loan);
	while (shk_obj_next(seg, &cur, &info) == 1)
		add_region(info.off >= 64 ? info.off - 64 : 0, info.len + 64);
	add_region(seg->heap_off, seg->heap_len < 8192 ? seg->heap_len : 8192);
	add_region(0, seg->len);
	if (seg->len > SEG_LEN)
		abort();
	/* the copy while the messages are outstanding (the comment at the
	 * top); the name goes now: each input makes its own */
	img->len = seg->len;
	memcpy(img->image, shk_seg_base(seg), seg->len);
	shm_unlink(segname);
	(void)sub2; /* a dead subscriber's slot */
	_exit(0);
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
	shm_unlink(segname); /* a leftover of a crashed run of our pid */
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0)
		build_child();
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0 || img->nregions < 2)
		abort();
}

enum {
	C_A,
	C_B,
	C_PUB,
	C_SUB,
	C_SUB2,
	C_PUSH,
	C_PULL,
	C_PULL2,
	C_RPUB,
	C_RSUB,
	C_N
};

struct run {
	shk_chan *c[C_N];
	shk_seg *seg; /* of the first open handle: the late patches' view */
	struct region ab, ba; /* the pair's rings as opened */
};

/* The oracle: a message of c lies in the heap, or (pair inline) in its
 * ring, as c's own segment handle maps them (each channel handle maps the
 * segment for itself). */
static void
must_be_in(shk_chan *c, const char *what, shk_msg *m, const struct region *ring)
{
	shk_seg *seg = shk_chan_seg(c);
	const uint8_t *base = shk_seg_base(seg);
	const uint8_t *p = shk_msg_data(m);
	uint64_t len = shk_msg_len(m), off;

	if (len == 0 && p == NULL)
		return;
	off = (uint64_t)(p - base);
	if (p >= base && off >= seg->heap_off &&
	    off - seg->heap_off <= seg->heap_len &&
	    len <= seg->heap_len - (off - seg->heap_off))
		return;
	if (ring && p >= base && off >= ring->off &&
	    off - ring->off <= ring->len &&
	    len <= ring->len - (off - ring->off))
		return;
	fprintf(stderr, "%s: message %p+%llu outside the heap%s\n", what,
		(const void *)p, (unsigned long long)len,
		ring ? " and its ring" : "");
	die();
}

static void
touch(shk_msg *m)
{
	const uint8_t *b = shk_msg_data(m);
	size_t i, n = shk_msg_len(m);
	uint64_t h = 0;

	for (i = 0; i < n; i++)
		h = h * 31 + b[i];
	sink += h;
}

/* Receives (and releases) up to n messages of c; ring: its rx ring; sub:
 * a subscriber, whose messages are copies in its own buffer. */
static void
drain_chan(shk_chan *c, int sub, int n, const struct region *ring)
{
	shk_msg *m;
	int i, rc;

	for (i = 0; i < n && c; i++) {
		rc = shk_chan_recv(c, &m, 0);
		if (rc == SHK_ECORRUPT)
			continue; /* dropped; the next goes on */
		if (rc)
			break;
		if (!sub)
			must_be_in(c, "recv", m, ring);
		touch(m);
		shk_msg_release(m);
	}
}

static void
drain(struct run *x, int k, int n, const struct region *ring)
{
	drain_chan(x->c[k], k == C_SUB || k == C_SUB2 || k == C_RSUB, n, ring);
}

static void
send_some(struct run *x, int k, int n)
{
	shk_chan *c = x->c[k];
	char buf[600];
	shk_msg *m;
	int i;

	memset(buf, 'S', sizeof(buf));
	for (i = 0; i < n && c; i++) {
		shk_chan_send(c, buf, (size_t)(i * 97 % 600), 0);
		if (k == C_PUB || k == C_RPUB)
			continue;
		if (shk_msg_loan(c, (size_t)(i * 41 % 300), &m) == 0) {
			must_be_in(c, "loan", m, NULL);
			memset(shk_msg_data(m), 'L', shk_msg_len(m));
			if (shk_msg_send(c, m, 0) != 0)
				shk_msg_release(m);
		}
	}
}

static void
stat_all(struct run *x)
{
	int k;

	for (k = 0; k < C_N; k++) {
		shk_chan_stats st = { .size = sizeof(st) };

		if (x->c[k])
			shk_chan_stat(x->c[k], &st);
	}
}

static void
exercise(struct run *x)
{
	shk_obj_info info = { .size = sizeof(info) };
	shk_chan_opts o;
	shk_chan *late;
	shk_msg *m, *busy, *keep[3];
	uint32_t cur = 0;
	char buf[256];
	int i, n = 0;

	/* the pollable descriptors of the receiving roles, on the patched
	 * memory (owned and closed by the handles): the receives below arm
	 * them, the sends signal them */
	for (i = 0; i < C_N; i++)
		if (x->c[i] && i != C_PUB && i != C_PUSH && i != C_RPUB)
			shk_chan_fd(x->c[i]);
	/* pair: both ways, a message kept across the other end's sends */
	drain(x, C_B, 12, &x->ab);
	drain(x, C_A, 12, &x->ba);
	send_some(x, C_A, 6);
	send_some(x, C_B, 6);
	if (x->c[C_B] && shk_chan_recv(x->c[C_B], &m, 0) == 0) {
		must_be_in(x->c[C_B], "recv", m, &x->ab);
		if (shk_chan_recv(x->c[C_B], &busy, 0) != SHK_EBUSY)
			die(); /* one outstanding per pair handle */
		send_some(x, C_A, 2);
		touch(m);
		shk_msg_release(m);
	}
	drain(x, C_B, 12, &x->ab);
	drain(x, C_A, 12, &x->ba);
	/* pub/sub, and a subscriber that joins the patched log */
	drain(x, C_SUB, 8, NULL);
	send_some(x, C_PUB, 8);
	drain(x, C_SUB, 16, NULL);
	drain(x, C_SUB2, 16, NULL);
	chan_opts(&o, SHK_CHAN_PUBSUB);
	if (opened("sub3", shk_chan_open(addr_ps, SHK_CHAN_PUBSUB, SHK_CHAN_SUB,
					 &o, &late)) == 0) {
		live_add(late);
		unforge_locks();
		send_some(x, C_PUB, 2);
		drain_chan(late, 1, 8, NULL);
		live_drop(late);
		shk_chan_close(late);
	}
	/* reliable pub/sub: the publisher meets the lagging subscriber */
	drain(x, C_RSUB, 4, NULL);
	send_some(x, C_RPUB, 12);
	drain(x, C_RSUB, 16, NULL);
	send_some(x, C_RPUB, 4);
	/* push/pull: messages held across sends, then released */
	for (i = 0; i < 3 && x->c[C_PULL]; i++) {
		int rc = shk_chan_recv(x->c[C_PULL], &keep[n], 0);

		if (rc == 0) {
			must_be_in(x->c[C_PULL], "pull", keep[n], NULL);
			n++;
		} else if (rc != SHK_ECORRUPT) {
			break;
		}
	}
	send_some(x, C_PUSH, 6);
	drain(x, C_PULL2, 8, NULL);
	for (i = 0; i < n; i++) {
		touch(keep[i]);
		shk_msg_release(keep[i]);
	}
	/* a puller that opens on the patched held table (its reclaim) */
	chan_opts(&o, SHK_CHAN_PUSHPULL);
	if (opened("pull3", shk_chan_open(addr_pp, SHK_CHAN_PUSHPULL,
					  SHK_CHAN_PULL, &o, &late)) == 0) {
		live_add(late);
		unforge_locks();
		drain_chan(late, 0, 8, NULL);
		live_drop(late);
		shk_chan_close(late);
	}
	drain(x, C_PULL, 8, NULL);
	stat_all(x);
	{
		shk_heap_stats hs = { .size = sizeof(hs) };

		shk_heap_info(x->seg, &hs);
	}
	opened("check", shk_seg_check(x->seg));
	while (shk_obj_next(x->seg, &cur, &info) == 1)
		shk_obj_describe(x->seg, &info, buf, sizeof(buf));
}

static void
patch(uint8_t *p, uint64_t p_len, const uint8_t *d)
{
	fuzz_patch(p, p_len, img->reg, img->nregions, d);
}

static void
part_region(shk_seg *seg, const char *name, struct region *r)
{
	shk_obj_info info = { .size = sizeof(info) };

	if (shk_obj_stat(seg, name, &info) == 0) {
		r->off = info.off;
		r->len = info.len;
	}
}

static void
open_all(struct run *x)
{
	static const struct {
		const char *what;
		const char *addr;
		int pattern, role;
	} ends[C_N] = {
		{ "A", addr_pair, SHK_CHAN_PAIR, SHK_CHAN_A },
		{ "B", addr_pair, SHK_CHAN_PAIR, SHK_CHAN_B },
		{ "pub", addr_ps, SHK_CHAN_PUBSUB, SHK_CHAN_PUB },
		{ "sub", addr_ps, SHK_CHAN_PUBSUB, SHK_CHAN_SUB },
		{ "sub2", addr_ps, SHK_CHAN_PUBSUB, SHK_CHAN_SUB },
		{ "push", addr_pp, SHK_CHAN_PUSHPULL, SHK_CHAN_PUSH },
		{ "pull", addr_pp, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL },
		{ "pull2", addr_pp, SHK_CHAN_PUSHPULL, SHK_CHAN_PULL },
		{ "rpub", addr_psr, SHK_CHAN_PUBSUB, SHK_CHAN_PUB },
		{ "rsub", addr_psr, SHK_CHAN_PUBSUB, SHK_CHAN_SUB },
	};
	shk_chan_opts o;
	int k;

	for (k = 0; k < C_N; k++) {
		/* geometry from the store (zeros), but the segment size
		 * ours, should an early patch have removed a channel */
		o = (shk_chan_opts)SHK_CHAN_OPTS_INIT;
		o.seg_size = SEG_LEN;
		opened(ends[k].what,
		       shk_chan_open(ends[k].addr, ends[k].pattern,
				     ends[k].role, &o, &x->c[k]));
		if (x->c[k] && !x->seg)
			x->seg = shk_chan_seg(x->c[k]);
		live_add(x->c[k]);
		unforge_locks();
	}
	if (x->seg) {
		char n[96];

		snprintf(n, sizeof(n), "pair.ab");
		part_region(x->seg, n, &x->ab);
		snprintf(n, sizeof(n), "pair.ba");
		part_region(x->seg, n, &x->ba);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run x;
	size_t i;
	uint8_t *p;
	int fd, k;

	memset(&x, 0, sizeof(x));
	if (!img) {
		trace = getenv("SHK_FUZZ_TRACE") != NULL;
		snprintf(segname, sizeof(segname), "shk-fuzzchan-%ld",
			 (long)getpid());
		snprintf(addr_pair, sizeof(addr_pair), "shm://%s/pair",
			 segname);
		snprintf(addr_ps, sizeof(addr_ps), "shm://%s/ps", segname);
		snprintf(addr_psr, sizeof(addr_psr), "shm://%s/psr", segname);
		snprintf(addr_pp, sizeof(addr_pp), "shm://%s/pp", segname);
		build_image();
		atexit(cleanup);
	}
	fd = shm_open(segname, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)img->len) != 0)
		abort();
	p = mmap(NULL, img->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		abort();
	memcpy(p, img->image, img->len);
	/* early patches (target bit 7 clear) before the channels open */
	for (i = 0; i + 6 <= size && i < 6 * MAX_PATCHES; i += 6)
		if (!(data[i] & 0x80))
			patch(p, img->len, data + i);
	munmap(p, img->len);
	close(fd);
	open_all(&x);
	if (x.seg) {
		/* late patches: memory changed under open handles */
		for (i = 0; i + 6 <= size && i < 6 * MAX_PATCHES; i += 6)
			if (data[i] & 0x80)
				patch(shk_seg_base(x.seg), x.seg->len,
				      data + i);
		unforge_locks();
		exercise(&x);
	}
	/* the first handle's segment last: x.seg is its */
	for (k = C_N - 1; k >= 0; k--)
		shk_chan_close(x.c[k]);
	nlive = 0;
	shm_unlink(segname);
	return 0;
}
