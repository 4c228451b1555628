/* test_stack.c - bounded lock-free LIFO: LIFO order, 2-4 nodes under many
 * processes and threads with tags near 2^32, kills at each crash point,
 * corruption. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "platform.h"
#include "segment.h"
#include "stack.h"

#if defined(SHK__TSAN) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define NW 4

static void
setup(char *nm, size_t n, const char *tag, shk_seg **seg)
{
	test_name(nm, n, tag);
	shk_seg_unlink(nm, NULL);
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, seg));
}

static shk_stack *
create_stack(shk_seg *seg, uint64_t cap, uint32_t elem_len)
{
	shk_stack_opts o = SHK_STACK_OPTS_INIT;
	shk_stack *s = NULL;

	o.cap = cap;
	o.elem_len = elem_len;
	CHECK_OK(shk_stack_open(seg, "s", SHK_CREATE | SHK_EXCL, &o, &s));
	return s;
}

static struct shk__stack_hdr *
hdr_of(shk_seg *seg)
{
	shk_obj_info info = { .size = sizeof(info) };

	CHECK_OK(shk_obj_stat(seg, "s", &info));
	return (struct shk__stack_hdr *)((char *)shk_seg_base(seg) + info.off);
}

/* Test hook: start both tags just below 2^32, so they wrap mid-run. */
static void
tags_near_wrap(shk_seg *seg)
{
	struct shk__stack_hdr *h = hdr_of(seg);
	uint64_t t = atomic_load(&h->top), f = atomic_load(&h->free);

	atomic_store(&h->top, SHK__TL_WORD(SHK__TL_IDX(t), 0xfffffff0u));
	atomic_store(&h->free, SHK__TL_WORD(SHK__TL_IDX(f), 0xffffffe0u));
}

static void
t_basic(void)
{
	char nm[64], buf[160];
	shk_seg *seg;
	shk_stack *s, *s2 = NULL;
	shk_stack_opts o = SHK_STACK_OPTS_INIT;
	shk_stack_stats st = { .size = sizeof(st) };
	shk_obj_info info = { .size = sizeof(info) };
	uint64_t v, i;
	int64_t t0;

	setup(nm, sizeof(nm), "sbasic", &seg);
	s = create_stack(seg, 4, 8);
	CHECK_RC(shk_stack_pop(s, &v, 0), SHK_EAGAIN);
	t0 = test_now_ns();
	CHECK_RC(shk_stack_pop(s, &v, 20000000), SHK_ETIMEDOUT);
	CHECK(test_now_ns() - t0 >= 20000000);
	for (i = 0; i < 4; i++)
		CHECK_OK(shk_stack_push(s, &i, 0));
	CHECK_RC(shk_stack_push(s, &i, 0), SHK_EAGAIN);
	CHECK_OK(shk_stack_info(s, &st));
	CHECK_EQ(st.depth, 4);
	CHECK_OK(shk_obj_stat(seg, "s", &info));
	CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "depth=4/4 free=0 leaked=0") != NULL);
	for (i = 4; i-- > 0;) {
		CHECK_OK(shk_stack_pop(s, &v, 0));
		CHECK_EQ(v, i);
	}
	CHECK_OK(shk_seg_check(seg));
	o.elem_len = 16;
	CHECK_RC(shk_stack_open(seg, "s", 0, &o, &s2), SHK_ETYPE);
	o.elem_len = 0;
	o.type_id = 9;
	CHECK_RC(shk_stack_open(seg, "s", 0, &o, &s2), SHK_ETYPE);
	CHECK(s2 == NULL);
	o.size = 0;
	CHECK_RC(shk_stack_open(seg, "s", 0, &o, &s2), SHK_EINVAL);
	CHECK_OK(shk_stack_open(seg, "s", 0, NULL, &s2));
	shk_stack_close(s2);
	CHECK_RC(shk_stack_push(NULL, &v, 0), SHK_EINVAL);
	CHECK_RC(shk_stack_pop(s, NULL, 0), SHK_EINVAL);
	shk_stack_close(NULL);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* Shared across processes: a bitmap of popped elements per worker. */
struct shared {
	_Atomic uint64_t popped[NW];
	_Atomic uint64_t pushed[NW];
	_Atomic uint64_t bits[];
};

static long
per_worker(void)
{
	return SANITIZED ? 20000 : test_scale(300000);
}

/* Each worker pushes its own unique elements (id << 32 | seq) and pops
 * whatever is on top, marking each popped element; a second pop of the
 * same element is a duplicate. */
static void
work(shk_stack *s, struct shared *sh, uint32_t id, long n)
{
	uint64_t words = ((uint64_t)n + 63) / 64, seq = 0, v, old;
	long k;
	int rc;

	for (k = 0; k < 2 * n; k++) {
		if ((k & 1) == 0 && seq < (uint64_t)n) {
			v = ((uint64_t)id << 32) | seq;
			rc = shk_stack_push(s, &v, 0);
			if (rc == SHK_EAGAIN)
				continue;
			CHECK_OK(rc);
			seq++;
			atomic_fetch_add(&sh->pushed[id], 1);
		} else {
			rc = shk_stack_pop(s, &v, 0);
			if (rc == SHK_EAGAIN)
				continue;
			CHECK_OK(rc);
			uint32_t who = (uint32_t)(v >> 32);
			uint64_t q = v & 0xffffffffu;
			CHECK(who < NW && q < (uint64_t)n);
			old = atomic_fetch_or(&sh->bits[who * words + q / 64],
					      (uint64_t)1 << (q % 64));
			if (old & ((uint64_t)1 << (q % 64)))
				TEST_FAIL("duplicate element %u/%llu", who,
					  (unsigned long long)q);
			atomic_fetch_add(&sh->popped[id], 1);
		}
	}
}

static struct shared *
map_shared(long n, size_t *len)
{
	struct shared *sh;

	*len = sizeof(*sh) + NW * (((size_t)n + 63) / 64) * 8;
	sh = mmap(NULL, *len, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	return sh;
}

/* Drains the stack and checks: pushed == popped + killed losses, every
 * element at most once. */
static void
drain_and_count(shk_stack *s, struct shared *sh, long n, uint64_t *pushed,
		uint64_t *popped)
{
	uint64_t v, words = ((uint64_t)n + 63) / 64, old;

	while (shk_stack_pop(s, &v, 0) == 0) {
		uint32_t who = (uint32_t)(v >> 32);
		uint64_t q = v & 0xffffffffu;
		CHECK(who < NW && q < (uint64_t)n);
		old = atomic_fetch_or(&sh->bits[who * words + q / 64],
				      (uint64_t)1 << (q % 64));
		CHECK(!(old & ((uint64_t)1 << (q % 64))));
		atomic_fetch_add(&sh->popped[0], 1);
	}
	*pushed = *popped = 0;
	for (int i = 0; i < NW; i++) {
		*pushed += atomic_load(&sh->pushed[i]);
		*popped += atomic_load(&sh->popped[i]);
	}
}

static void
t_procs(void)
{
	char nm[64];
	shk_seg *seg;
	shk_stack *s;
	struct shared *sh;
	size_t len;
	long n = per_worker();
	uint64_t pushed, popped;
	pid_t pid[NW];
	int i;

	setup(nm, sizeof(nm), "sprocs", &seg);
	s = create_stack(seg, 3, 8);
	tags_near_wrap(seg);
	sh = map_shared(n, &len);
	for (i = 0; i < NW; i++) {
		pid[i] = fork();
		CHECK(pid[i] >= 0);
		if (pid[i] == 0) {
			shk_seg *s2;
			shk_stack *st2;
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			CHECK_OK(shk_seg_open(nm, 0, NULL, &s2));
			CHECK_OK(shk_stack_open(s2, "s", 0, NULL, &st2));
			work(st2, sh, (uint32_t)i, n);
			_exit(0);
		}
	}
	/* while they run: every walk that finds both heads stable also
	 * finds the stacked nodes' depth entries counting down to 1 */
	for (;;) {
		int running = 0;

		for (i = 0; i < NW; i++) {
			siginfo_t si;

			memset(&si, 0, sizeof(si));
			/* WNOWAIT: test_wait() reaps it below */
			if (waitid(P_PID, (id_t)pid[i], &si,
				   WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == 0)
				running++;
		}
		if (!running)
			break;
		CHECK_OK(shk_seg_check(seg));
	}
	for (i = 0; i < NW; i++)
		if (test_wait(pid[i]) != 0) {
			shk_seg_unlink(nm, NULL);
			TEST_FAIL("worker %d failed", i);
		}
	CHECK_OK(shk_seg_check(seg));
	{
		/* the depth after the run is exact: pushes - pops */
		shk_stack_stats st = { .size = sizeof(st) };
		uint64_t in = 0, out = 0;

		for (i = 0; i < NW; i++) {
			in += atomic_load(&sh->pushed[i]);
			out += atomic_load(&sh->popped[i]);
		}
		CHECK_OK(shk_stack_info(s, &st));
		CHECK_EQ(st.depth, in - out);
	}
	drain_and_count(s, sh, n, &pushed, &popped);
	CHECK_EQ(pushed, popped);
	CHECK(pushed > 0);
	/* the tags wrapped past 2^32 */
	CHECK(SHK__TL_TAG(atomic_load(&hdr_of(seg)->top)) < 0xfffffff0u);
	printf("  %d processes, 3 nodes: %llu pushes and pops\n", NW,
	       (unsigned long long)pushed);
	fflush(stdout);
	munmap(sh, len);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

struct targ {
	shk_stack *s;
	struct shared *sh;
	uint32_t id;
	long n;
};

static void *
thr(void *arg)
{
	struct targ *a = arg;

	work(a->s, a->sh, a->id, a->n);
	return NULL;
}

static void
t_threads(void)
{
	char nm[64];
	shk_seg *seg;
	shk_stack *s;
	struct shared *sh;
	struct targ a[NW];
	pthread_t th[NW];
	size_t len;
	long n = per_worker() / 2;
	uint64_t pushed, popped;
	int i;

	setup(nm, sizeof(nm), "sthr", &seg);
	s = create_stack(seg, 2, 8);
	tags_near_wrap(seg);
	sh = map_shared(n, &len);
	for (i = 0; i < NW; i++) {
		a[i].s = s;
		a[i].sh = sh;
		a[i].id = (uint32_t)i;
		a[i].n = n;
		CHECK(pthread_create(&th[i], NULL, thr, &a[i]) == 0);
	}
	for (i = 0; i < NW; i++)
		pthread_join(th[i], NULL);
	CHECK_OK(shk_seg_check(seg));
	drain_and_count(s, sh, n, &pushed, &popped);
	CHECK_EQ(pushed, popped);
	munmap(sh, len);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* A worker killed at each crash point: the stack passes its check, the
 * survivors continue, nothing is duplicated, at most one element is lost
 * (a node leaked) per kill. */
static void
t_kill(void)
{
	static const char *points[] = { "stack.push.taken:500",
					"stack.pop.taken:500" };
	long n = 5000;

	for (size_t k = 0; k < 2; k++) {
		char nm[64], buf[160];
		shk_seg *seg;
		shk_stack *s;
		struct shared *sh;
		shk_obj_info info = { .size = sizeof(info) };
		size_t len;
		uint64_t pushed, popped;
		pid_t pid[NW];
		int i, st;

		setup(nm, sizeof(nm), "skill", &seg);
		s = create_stack(seg, 4, 8);
		sh = map_shared(n, &len);
		for (i = 0; i < NW; i++) {
			pid[i] = fork();
			CHECK(pid[i] >= 0);
			if (pid[i] == 0) {
				shk_seg *s2;
				shk_stack *st2;
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				if (i == 0)
					setenv("SHK_CRASH", points[k], 1);
				CHECK_OK(shk_seg_open(nm, 0, NULL, &s2));
				CHECK_OK(
					shk_stack_open(s2, "s", 0, NULL, &st2));
				work(st2, sh, (uint32_t)i, n);
				_exit(0);
			}
		}
		for (i = 0; i < NW; i++) {
			st = test_wait(pid[i]);
			CHECK_EQ(st, i == 0 ? 128 + SIGKILL : 0);
		}
		CHECK_OK(shk_seg_check(seg));
		CHECK_OK(shk_obj_stat(seg, "s", &info));
		CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
		CHECK(strstr(buf, "leaked=1") != NULL);
		drain_and_count(s, sh, n, &pushed, &popped);
		/* push.taken: the element was never counted as pushed; pop:
		 * one pushed element was taken and lost */
		CHECK_EQ(pushed - popped, k == 0 ? 0 : 1);
		printf("  %s: %s\n", points[k], buf);
		fflush(stdout);
		munmap(sh, len);
		shk_stack_close(s);
		shk_seg_close(seg);
		CHECK_OK(shk_seg_unlink(nm, NULL));
	}
}

static void
t_corrupt(void)
{
	char nm[64];
	shk_seg *seg;
	shk_stack *s, *s2 = NULL;
	struct shk__stack_hdr *h;
	_Atomic uint32_t *next;
	uint64_t v = 5, save;

	setup(nm, sizeof(nm), "scor", &seg);
	s = create_stack(seg, 8, 8);
	CHECK_OK(shk_stack_push(s, &v, 0));
	h = hdr_of(seg);
	next = (_Atomic uint32_t *)((char *)h + h->next_off);
	save = atomic_load(&h->top);
	atomic_store(&h->top, SHK__TL_WORD(4000, 1));
	CHECK_RC(shk_stack_pop(s, &v, 0), SHK_ECORRUPT);
	CHECK_RC(shk_stack_pop(s, &v, 1000000), SHK_ECORRUPT);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	CHECK_RC(shk_stack_open(seg, "s", 0, NULL, &s2), SHK_ECORRUPT);
	/* node on both lists: top -> 0, free starts at 1 -> ... -> 7 -> 0 */
	atomic_store(&h->top, save);
	atomic_store(&next[7], 0);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	atomic_store(&next[7], SHK__TL_NIL);
	CHECK_OK(shk_seg_check(seg));
	CHECK_OK(shk_stack_pop(s, &v, 0));
	CHECK_EQ(v, 5);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/*
 * Blocking across processes, with the sleep path forced (SHK_SPIN_NS=0 in
 * the child): a child blocked popping an empty stack wakes when the
 * parent pushes, and one blocked pushing onto a full stack wakes when the
 * parent pops.  The parent acts only once the waitpoint counts the child
 * asleep, so the wake-up (shk__wake_sc after the push's seq_cst CAS) is
 * what ends the wait, within a second.
 */
/* A stack of one 8-byte node in a new segment, full (holding 7) or empty;
 * returns the waiter count of the side that then blocks. */
static _Atomic uint32_t *
one_node_stack(char *nm, size_t n, const char *tag, int full, shk_seg **seg,
	       shk_stack **s)
{
	struct shk__stack_hdr *h;
	uint64_t v = 7;

	setup(nm, n, tag, seg);
	*s = create_stack(*seg, 1, 8);
	h = hdr_of(*seg);
	if (full)
		CHECK_OK(shk_stack_push(*s, &v, 0));
	return full ? &h->not_full.waiters : &h->not_empty.waiters;
}

static void
t_blocking(void)
{
	int dir;

	for (dir = 0; dir < 2; dir++) {
		char nm[64];
		shk_seg *seg;
		shk_stack *s;
		_Atomic uint32_t *waiters = one_node_stack(
			nm, sizeof(nm), dir ? "sblkfull" : "sblkempty", dir,
			&seg, &s);
		uint64_t v = 7;
		int64_t t0;
		pid_t pid;
		int i;

		pid = fork();
		if (pid == 0) {
			shk_seg *cseg;
			shk_stack *cs;
			uint64_t w = 43;
			int rc;

			setenv("SHK_SPIN_NS", "0", 1);
			if (shk_seg_open(nm, 0, NULL, &cseg) ||
			    shk_stack_open(cseg, "s", 0, NULL, &cs))
				_exit(2);
			rc = dir ? shk_stack_push(cs, &w, 5000000000LL)
				 : shk_stack_pop(cs, &w, 5000000000LL);
			if (rc != 0 || (!dir && w != 42))
				_exit(3);
			shk_stack_close(cs);
			shk_seg_close(cseg);
			_exit(0);
		}
		CHECK(pid > 0);
		for (i = 0; i < 2000 && atomic_load(waiters) == 0; i++)
			usleep(1000);
		CHECK(atomic_load(waiters) != 0); /* the child sleeps */
		t0 = test_now_ns();
		if (dir) {
			CHECK_OK(shk_stack_pop(s, &v, 0));
			CHECK_EQ(v, 7);
		} else {
			v = 42;
			CHECK_OK(shk_stack_push(s, &v, 0));
		}
		CHECK_EQ(test_wait(pid), 0);
		CHECK(test_now_ns() - t0 < 1000000000LL);
		if (dir) {
			CHECK_OK(shk_stack_pop(s, &v, 0));
			CHECK_EQ(v, 43);
		}
		shk_stack_close(s);
		shk_seg_close(seg);
		CHECK_OK(shk_seg_unlink(nm, NULL));
	}
}

/*
 * A party killed between its CAS and its wake (crash points
 * stack.push.before_wake, stack.pop.before_wake) must not leave a sleeper
 * asleep to its deadline: sleepers re-check every slice.  dir 0: the
 * parent sleeps in pop on an empty stack and a child's push dies before
 * waking it; dir 1: the parent sleeps in push on a full stack and a
 * child's pop dies so.  Before the slices, the parent slept its whole 3 s.
 */
static void
t_waker_killed(void)
{
	int dir;

	for (dir = 0; dir < 2; dir++) {
		char nm[64];
		shk_seg *seg;
		shk_stack *s;
		_Atomic uint32_t *waiters = one_node_stack(
			nm, sizeof(nm), dir ? "swkfull" : "swkempty", dir, &seg,
			&s);
		uint64_t v;
		int64_t t0, dt;
		pid_t pid;
		int rc;

		pid = fork();
		if (pid == 0) {
			shk_seg *cseg;
			shk_stack *cs;
			uint64_t w = 42;
			int i;

			if (shk_seg_open(nm, 0, NULL, &cseg) ||
			    shk_stack_open(cseg, "s", 0, NULL, &cs))
				_exit(2);
			/* until the parent sleeps, then a little longer */
			for (i = 0; i < 5000 && atomic_load(waiters) == 0; i++)
				usleep(1000);
			usleep(20000);
			setenv("SHK_CRASH",
			       dir ? "stack.pop.before_wake:1"
				   : "stack.push.before_wake:1",
			       1);
			if (dir)
				shk_stack_pop(cs, &w, 0);
			else
				shk_stack_push(cs, &w, 0);
			_exit(3); /* the crash point did not fire */
		}
		CHECK(pid > 0);
		setenv("SHK_SPIN_NS", "0", 1);
		t0 = test_now_ns();
		v = 43;
		rc = dir ? shk_stack_push(s, &v, 3000000000LL)
			 : shk_stack_pop(s, &v, 3000000000LL);
		dt = test_now_ns() - t0;
		unsetenv("SHK_SPIN_NS");
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		CHECK_RC(rc, 0);
		if (!dir)
			CHECK_EQ(v, 42);
		if (dt >= 1000000000LL)
			TEST_FAIL("%s: the sleeper returned after %lld ms",
				  dir ? "push" : "pop",
				  (long long)(dt / 1000000));
		shk_stack_close(s);
		shk_seg_close(seg);
		CHECK_OK(shk_seg_unlink(nm, NULL));
	}
}

/*
 * describe never takes next_off from the header that the check read: a
 * peer may rewrite it between shk__kind_check_stack and
 * shk__kind_describe_stack.  Before, describe re-read it and walked from
 * the new value (SIGSEGV).  Called directly with the header damaged after
 * the check, then raced through shk_obj_describe (not under TSan, which
 * would report the deliberate race on the plain header field).
 */
static void
t_describe_toctou(void)
{
	char nm[64], buf[200];
	shk_seg *seg;
	shk_stack *s;
	shk_obj_info info = { .size = sizeof(info) };
	struct shk__stack_hdr *h;
	uint64_t no, v = 3;
	int rc;

	setup(nm, sizeof(nm), "sdtoc", &seg);
	s = create_stack(seg, 64, 8);
	/* a crash must leave no segment behind: the mapping lives on */
	CHECK_OK(shk_seg_unlink(nm, NULL));
	CHECK_OK(shk_stack_push(s, &v, 0));
	CHECK_OK(shk_obj_stat(seg, "s", &info));
	h = hdr_of(seg);
	no = h->next_off;
	CHECK_OK(shk_seg_check(seg));
	h->next_off = 1ULL << 40;
	rc = shk__kind_describe_stack(seg, h, &info, buf, sizeof(buf));
	CHECK(rc > 0);
	CHECK(strstr(buf, "depth=1/64 free=63 leaked=0") != NULL);
	h->next_off = no;
	test_describe_flipping(seg, &info, &h->next_off, no);
	CHECK_OK(shk_seg_check(seg));
	shk_stack_close(s);
	shk_seg_close(seg);
}

/* The depth entries of the nodes on the stack, top first (SKSTACK2). */
static _Atomic uint32_t *
depth_array(struct shk__stack_hdr *h)
{
	return (_Atomic uint32_t *)((char *)h + h->next_off + 4 * h->cap);
}

/*
 * Depth, both layouts: shk_stack_info matches a model after each of random
 * pushes and pops, and describe agrees.  SKSTACK1 (made through the test
 * hook, as earlier versions made every stack) keeps the counter and its
 * nodes right after next[]; SKSTACK2 has depth[] between them and no
 * counter traffic.
 */
static void
depth_case(int v1)
{
	char nm[64], buf[160];
	shk_seg *seg;
	shk_stack *s, *s2;
	struct shk__stack_hdr *h;
	shk_stack_stats st = { .size = sizeof(st) };
	shk_obj_info info = { .size = sizeof(info) };
	uint64_t v, model = 0, rng = 12345, k, top[64];

	setup(nm, sizeof(nm), v1 ? "sdep1" : "sdep2", &seg);
	shk__stack_create_v1 = v1;
	s = create_stack(seg, 64, 8);
	shk__stack_create_v1 = 0;
	h = hdr_of(seg);
	CHECK_EQ(h->magic, v1 ? SHK__STACK_MAGIC : SHK__STACK_MAGIC2);
	CHECK_EQ(h->nodes_off,
		 (h->next_off + (v1 ? 4 : 8) * 64 + 63) & ~(uint64_t)63);
	/* a second handle opened on the existing object */
	CHECK_OK(shk_stack_open(seg, "s", 0, NULL, &s2));
	for (k = 0; k < 5000; k++) {
		shk_stack *x = (k & 1) ? s2 : s;

		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((rng >> 33) % 100 < 55) {
			v = k;
			if (model < 64) {
				CHECK_OK(shk_stack_push(x, &v, 0));
				top[model++] = v;
			} else {
				CHECK_RC(shk_stack_push(x, &v, 0), SHK_EAGAIN);
			}
		} else if (model > 0) {
			CHECK_OK(shk_stack_pop(x, &v, 0));
			CHECK_EQ(v, top[--model]);
		} else {
			CHECK_RC(shk_stack_pop(x, &v, 0), SHK_EAGAIN);
		}
		CHECK_OK(shk_stack_info(s, &st));
		CHECK_EQ(st.depth, model);
	}
	CHECK_OK(shk_obj_stat(seg, "s", &info));
	CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
	{
		char want[32];

		snprintf(want, sizeof(want), "depth=%llu/64 ",
			 (unsigned long long)model);
		CHECK(strstr(buf, want) != NULL);
		CHECK(strstr(buf, v1 ? "format=SKSTACK1" : "format=SKSTACK2") !=
		      NULL);
	}
	if (v1)
		CHECK_EQ(atomic_load(&h->depth), (int64_t)model);
	else
		CHECK_EQ(atomic_load(&h->depth), 0);
	CHECK_OK(shk_seg_check(seg));
	shk_stack_close(s2);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

static void
t_depth(void)
{
	depth_case(0);
	depth_case(1);
}

static shk_stack *race_other;

/* Runs once inside a push, between its read of the top's depth entry and
 * its CAS: two pops through another handle, so the CAS fails and the push
 * must read the depth of the new top. */
static void
race_two_pops(void)
{
	uint64_t v;

	shk__stack_cas_hook = NULL;
	CHECK_OK(shk_stack_pop(race_other, &v, 0));
	CHECK_EQ(v, 2);
	CHECK_OK(shk_stack_pop(race_other, &v, 0));
	CHECK_EQ(v, 1);
}

/* A push whose CAS loses to two pops records the depth below the top it
 * finally links to (2), not the one it first read (4). */
static void
t_depth_race(void)
{
	char nm[64];
	shk_seg *seg;
	shk_stack *s;
	shk_stack_stats st = { .size = sizeof(st) };
	uint64_t v;

	setup(nm, sizeof(nm), "sdepr", &seg);
	s = create_stack(seg, 8, 8);
	CHECK_OK(shk_stack_open(seg, "s", 0, NULL, &race_other));
	for (v = 0; v < 3; v++)
		CHECK_OK(shk_stack_push(s, &v, 0));
	shk__stack_cas_hook = race_two_pops;
	v = 7;
	CHECK_OK(shk_stack_push(s, &v, 0));
	CHECK(shk__stack_cas_hook == NULL);
	CHECK_OK(shk_stack_info(s, &st));
	CHECK_EQ(st.depth, 2);
	CHECK_OK(shk_seg_check(seg));
	CHECK_OK(shk_stack_pop(s, &v, 0));
	CHECK_EQ(v, 7);
	CHECK_OK(shk_stack_info(s, &st));
	CHECK_EQ(st.depth, 1);
	shk_stack_close(race_other);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/*
 * Damaged depth entries (SKSTACK2): a stable walk that finds the entries
 * of the stacked nodes not counting down by one to 1 is corruption; info
 * never reports more than cap; a magic that names neither layout, or one
 * whose layout does not fit the object, is refused at open.
 */
static void
t_depth_corrupt(void)
{
	char nm[64];
	shk_seg *seg;
	shk_stack *s, *s2 = NULL;
	struct shk__stack_hdr *h;
	shk_stack_stats st = { .size = sizeof(st) };
	_Atomic uint32_t *dep;
	uint64_t v, top;
	uint32_t save, t;

	setup(nm, sizeof(nm), "sdepc", &seg);
	/* 64 nodes: the two layouts place the nodes apart (with a few
	 * nodes, padding to 64 bytes gives both the same offset) */
	s = create_stack(seg, 64, 8);
	for (v = 0; v < 3; v++)
		CHECK_OK(shk_stack_push(s, &v, 0));
	h = hdr_of(seg);
	dep = depth_array(h);
	top = atomic_load(&h->top);
	t = SHK__TL_IDX(top);
	CHECK_EQ(atomic_load(&dep[t]), 3);
	save = atomic_load(&dep[t]);
	atomic_store(&dep[t], 0xfffffff0u);
	CHECK_OK(shk_stack_info(s, &st));
	CHECK_EQ(st.depth, 64);
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	atomic_store(&dep[t], save);
	CHECK_OK(shk_seg_check(seg));
	/* the bottom node (two links below the top) must say 1 */
	{
		_Atomic uint32_t *next =
			(_Atomic uint32_t *)((char *)h + h->next_off);
		uint32_t b = atomic_load(&next[atomic_load(&next[t])]);

		save = atomic_load(&dep[b]);
		CHECK_EQ(save, 1);
		atomic_store(&dep[b], 2);
		CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
		atomic_store(&dep[b], save);
		CHECK_OK(shk_seg_check(seg));
	}
	/* magics */
	h->magic = 0x334b434154534b53ull; /* "SKSTACK3" */
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	CHECK_RC(shk_stack_open(seg, "s", 0, NULL, &s2), SHK_ECORRUPT);
	h->magic = SHK__STACK_MAGIC; /* SKSTACK1: nodes_off disagrees */
	CHECK_RC(shk_seg_check(seg), SHK_ECORRUPT);
	CHECK_RC(shk_stack_open(seg, "s", 0, NULL, &s2), SHK_ECORRUPT);
	CHECK(s2 == NULL);
	h->magic = SHK__STACK_MAGIC2;
	CHECK_OK(shk_seg_check(seg));
	for (v = 3; v-- > 0;) {
		uint64_t got;

		CHECK_OK(shk_stack_pop(s, &got, 0));
		CHECK_EQ(got, v);
	}
	CHECK_OK(shk_stack_info(s, &st));
	CHECK_EQ(st.depth, 0);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

static void
die_in_cas_window(void)
{
	raise(SIGKILL);
}

/*
 * Review: a pusher SIGKILLed in top_push after it stored its node's link
 * and depth entry but before its CAS, and a popper killed right after its
 * pop CAS, leave a stack whose check passes, whose depth is exact (the two
 * leaked nodes count nowhere) and which keeps working to its full
 * remaining capacity with depth entries that count down.
 */
static void
t_depth_kill(void)
{
	char nm[64], buf[160];
	shk_seg *seg;
	shk_stack *s;
	shk_stack_stats st = { .size = sizeof(st) };
	shk_obj_info info = { .size = sizeof(info) };
	uint64_t v;
	pid_t pid;
	int k;

	setup(nm, sizeof(nm), "sdepk", &seg);
	s = create_stack(seg, 8, 8);
	for (v = 0; v < 3; v++)
		CHECK_OK(shk_stack_push(s, &v, 0));
	for (k = 0; k < 2; k++) {
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			shk_seg *s2;
			shk_stack *st2;

			if (k == 1)
				setenv("SHK_CRASH", "stack.pop.taken:1", 1);
			CHECK_OK(shk_seg_open(nm, 0, NULL, &s2));
			CHECK_OK(shk_stack_open(s2, "s", 0, NULL, &st2));
			if (k == 0) {
				shk__stack_cas_hook = die_in_cas_window;
				v = 99;
				shk_stack_push(st2, &v, 0);
			} else {
				shk_stack_pop(st2, &v, 0);
			}
			_exit(0);
		}
		if (test_wait(pid) != 128 + SIGKILL) {
			shk_seg_unlink(nm, NULL);
			TEST_FAIL("child %d was not killed", k);
		}
		CHECK_OK(shk_seg_check(seg));
	}
	CHECK_OK(shk_stack_info(s, &st));
	CHECK_EQ(st.depth, 2);
	CHECK_OK(shk_obj_stat(seg, "s", &info));
	CHECK(shk_obj_describe(seg, &info, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "depth=2/8 free=4 leaked=2") != NULL);
	/* fill the 6 usable nodes, checking depth and check each time */
	for (v = 2; v < 6; v++) {
		CHECK_OK(shk_stack_push(s, &v, 0));
		CHECK_OK(shk_stack_info(s, &st));
		CHECK_EQ(st.depth, v + 1);
		CHECK_OK(shk_seg_check(seg));
	}
	CHECK_RC(shk_stack_push(s, &v, 0), SHK_EAGAIN);
	for (v = 6; v-- > 0;) {
		uint64_t got;

		CHECK_OK(shk_stack_pop(s, &got, 0));
		CHECK_EQ(got, v);
		CHECK_OK(shk_stack_info(s, &st));
		CHECK_EQ(st.depth, v);
		CHECK_OK(shk_seg_check(seg));
	}
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

struct live_arg {
	shk_seg *seg;
	shk_stack *s;
	_Atomic int *stop;
	long checks, stable;
};

static void *
live_checker(void *arg)
{
	struct live_arg *a = arg;
	shk_stack_stats st = { .size = sizeof(st) };

	while (!atomic_load(a->stop)) {
		CHECK_OK(shk_seg_check(a->seg));
		CHECK_OK(shk_stack_info(a->s, &st));
		CHECK(st.depth <= 4);
		a->checks++;
	}
	return NULL;
}

/* Review: shk_seg_check and shk_stack_info run throughout a threads run
 * (the TSan variant of the live checks in procs); no false ECORRUPT. */
static void
t_depth_live_threads(void)
{
	char nm[64];
	shk_seg *seg;
	shk_stack *s;
	struct shared *sh;
	struct targ a[NW];
	pthread_t th[NW], ck;
	struct live_arg la;
	_Atomic int stop = 0;
	size_t len;
	long n = per_worker();
	uint64_t pushed, popped;
	shk_stack_stats st = { .size = sizeof(st) };
	int i;

	setup(nm, sizeof(nm), "sdepl", &seg);
	s = create_stack(seg, 4, 8);
	tags_near_wrap(seg);
	sh = map_shared(n, &len);
	la.seg = seg;
	la.s = s;
	la.stop = &stop;
	la.checks = 0;
	CHECK(pthread_create(&ck, NULL, live_checker, &la) == 0);
	for (i = 0; i < NW - 1; i++) {
		a[i].s = s;
		a[i].sh = sh;
		a[i].id = (uint32_t)i;
		a[i].n = n;
		CHECK(pthread_create(&th[i], NULL, thr, &a[i]) == 0);
	}
	for (i = 0; i < NW - 1; i++)
		pthread_join(th[i], NULL);
	atomic_store(&stop, 1);
	pthread_join(ck, NULL);
	CHECK(la.checks > 0);
	CHECK_OK(shk_seg_check(seg));
	pushed = popped = 0;
	for (i = 0; i < NW; i++) {
		pushed += atomic_load(&sh->pushed[i]);
		popped += atomic_load(&sh->popped[i]);
	}
	CHECK_OK(shk_stack_info(s, &st));
	CHECK_EQ(st.depth, pushed - popped);
	drain_and_count(s, sh, n, &pushed, &popped);
	CHECK_EQ(pushed, popped);
	munmap(sh, len);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* Review: rounds of racing pushes and pops by NW threads, each round ended
 * by a barrier, after which the stack is quiet: check passes and info's
 * depth equals pushes minus pops.  A push that kept a stale depth read
 * leaves a wrong entry that survives into a quiet point. */
struct round_arg {
	shk_stack *s;
	shk_seg *seg;
	pthread_barrier_t *bar;
	_Atomic int64_t *net;
	uint32_t id;
	int rounds;
};

static void *
round_worker(void *arg)
{
	struct round_arg *a = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (a->id + 1), v;
	shk_stack_stats st = { .size = sizeof(st) };
	int r, k, rc;

	for (r = 0; r < a->rounds; r++) {
		for (k = 0; k < 64; k++) {
			rng = rng * 6364136223846793005ULL + 1;
			if ((rng >> 40) & 1) {
				v = k;
				rc = shk_stack_push(a->s, &v, 0);
				if (rc == 0)
					atomic_fetch_add(a->net, 1);
				else
					CHECK_RC(rc, SHK_EAGAIN);
			} else {
				rc = shk_stack_pop(a->s, &v, 0);
				if (rc == 0)
					atomic_fetch_sub(a->net, 1);
				else
					CHECK_RC(rc, SHK_EAGAIN);
			}
		}
		pthread_barrier_wait(a->bar);
		if (a->id == 0) {
			CHECK_OK(shk_seg_check(a->seg));
			CHECK_OK(shk_stack_info(a->s, &st));
			CHECK_EQ(st.depth, (uint64_t)atomic_load(a->net));
		}
		pthread_barrier_wait(a->bar);
	}
	return NULL;
}

static void
t_depth_rounds(void)
{
	char nm[64];
	shk_seg *seg;
	shk_stack *s;
	pthread_barrier_t bar;
	pthread_t th[NW];
	struct round_arg a[NW];
	_Atomic int64_t net = 0;
	int i;

	setup(nm, sizeof(nm), "sdepr2", &seg);
	s = create_stack(seg, 4, 8);
	CHECK(pthread_barrier_init(&bar, NULL, NW) == 0);
	for (i = 0; i < NW; i++) {
		a[i].s = s;
		a[i].seg = seg;
		a[i].bar = &bar;
		a[i].net = &net;
		a[i].id = (uint32_t)i;
		a[i].rounds = SANITIZED ? 300 : 3000;
		CHECK(pthread_create(&th[i], NULL, round_worker, &a[i]) == 0);
	}
	for (i = 0; i < NW; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	shk_stack_close(s);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

/* A create-or-open (SHK_CREATE, no SHK_EXCL) of an existing stack with NULL
 * opts or zero geometry fields opens the stored stack ("on open 0 accepts
 * the stored value"); the defaults are for a new one only.  Failed with
 * SHK_ETYPE when the defaults were filled before the lookup. */
static void
t_create_open_defaults(void)
{
	char nm[64];
	shk_seg *seg;
	shk_stack *a = NULL, *b = NULL;
	shk_stack_opts o = SHK_STACK_OPTS_INIT;
	shk_stack_stats st = { .size = sizeof(st) };

	setup(nm, sizeof(nm), "scod", &seg);
	o.elem_len = 16;
	o.cap = 4;
	CHECK_OK(shk_stack_open(seg, "x", SHK_CREATE | SHK_EXCL, &o, &a));
	CHECK_OK(shk_stack_open(seg, "x", SHK_CREATE, NULL, &b));
	CHECK_OK(shk_stack_info(b, &st));
	CHECK_EQ(st.elem_len, 16);
	CHECK_EQ(st.cap, 4);
	shk_stack_close(b);
	b = NULL;
	o = (shk_stack_opts)SHK_STACK_OPTS_INIT;
	o.cap = 4; /* one field given, the other stored */
	CHECK_OK(shk_stack_open(seg, "x", SHK_CREATE, &o, &b));
	shk_stack_close(b);
	b = NULL;
	o.cap = 0;
	o.elem_len = 16;
	CHECK_OK(shk_stack_open(seg, "x", SHK_CREATE, &o, &b));
	shk_stack_close(b);
	b = NULL;
	CHECK_OK(shk_stack_open(seg, "x", 0, NULL, &b));
	shk_stack_close(b);
	b = NULL;
	/* a nonzero field still has to match */
	o.elem_len = 0;
	o.cap = 8;
	CHECK_EQ(shk_stack_open(seg, "x", SHK_CREATE, &o, &b), SHK_ETYPE);
	CHECK(b == NULL);
	/* SHK_EXCL: the object exists */
	CHECK_EQ(shk_stack_open(seg, "x", SHK_CREATE | SHK_EXCL, NULL, &b),
		 SHK_EEXIST);
	/* SHK_EXCL without SHK_CREATE is still a misuse */
	CHECK_EQ(shk_stack_open(seg, "x", SHK_EXCL, NULL, &b), SHK_EINVAL);
	/* the caller's nonzero values are range-checked */
	o = (shk_stack_opts)SHK_STACK_OPTS_INIT;
	o.elem_len = (1u << 20) + 1;
	CHECK_EQ(shk_stack_open(seg, "x", SHK_CREATE, &o, &b), SHK_EINVAL);
	/* a new stack: the defaults */
	CHECK_EQ(shk_stack_open(seg, "y", 0, NULL, &b), SHK_ENOENT);
	CHECK_OK(shk_stack_open(seg, "y", SHK_CREATE, NULL, &b));
	CHECK_OK(shk_stack_info(b, &st));
	CHECK_EQ(st.elem_len, 8);
	CHECK_EQ(st.cap, 1024);
	shk_stack_close(b);
	shk_stack_close(a);
	shk_seg_close(seg);
	CHECK_OK(shk_seg_unlink(nm, NULL));
}

TEST_MAIN({ "basic", t_basic }, { "procs", t_procs }, { "threads", t_threads },
	  { "kill", t_kill }, { "corrupt", t_corrupt },
	  { "blocking", t_blocking }, { "waker_killed", t_waker_killed },
	  { "describe_toctou", t_describe_toctou }, { "depth", t_depth },
	  { "depth_race", t_depth_race }, { "depth_corrupt", t_depth_corrupt },
	  { "depth_kill", t_depth_kill },
	  { "depth_live_threads", t_depth_live_threads },
	  { "depth_rounds", t_depth_rounds },
	  { "create_open_defaults", t_create_open_defaults })
