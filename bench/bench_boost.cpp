/*
 * bench_boost - shmkit beside Boost.Interprocess, the library its users
 * would otherwise pick (README), measured in the same run with the same
 * harness as the other programs: every party a fork()ed process pinned to
 * CPU (party mod ncpus) (bench_team_run), a warm-up before each measured
 * run, the cases of one comparison alternating round by round (one run of
 * each per round, as in bench_peers), every figure the median over
 * SHK_BENCH_RUNS rounds.  Ratios are shmkit / Boost; the unit says which
 * way is better (ns: lower, Mmsg/s and Mops/s: higher).
 *
 *   queue      shk_queue (shk_queue_push/pop, blocking) vs message_queue
 *              (send/receive, blocking), 64 B and 1 KiB elements, capacity
 *              1024 both: throughput 1P1C and 2P2C, and one-way latency of
 *              64 B over two queues (one each way), p50 and p99
 *   mutex      lock; ++counter; unlock: shk_mutex vs interprocess_mutex in
 *              shared memory, 1 process, and 2 processes on one counter
 *   semaphore  one-way latency of a ping-pong over two semaphores:
 *              shk_sem vs interprocess_semaphore, p50 and p99
 *   heap       alloc + free of 64 B and 1 KiB: shk_alloc/shk_free vs
 *              managed_shared_memory::allocate/deallocate, 1 and 2
 *              processes on one segment
 *   robust     not a timing: a process holding the mutex is SIGKILLed and
 *              the next locker asks with a 500 ms timeout (shk_mutex_lock;
 *              interprocess_mutex::timed_lock), once after the holder died
 *              and once while it waits; rows say what each returned, and
 *              when
 *
 * Everything is checked, so that a broken run fails instead of winning:
 * every message carries producer << 40 | sequence in its first and last 8
 * bytes, each consumer checks that each producer's numbers rise (1
 * consumer: by exactly one) and both ends of a message agree, and the
 * producers' and consumers' per-party counts and hash sums must match
 * after each run; ping-pongs check the number both ways; the mutex
 * counter must equal the number of increments; each semaphore ping
 * carries a number that the pong checks and answers; each heap block
 * carries a tag checked before it is freed, and the heap's live blocks
 * (shmkit) or free bytes (Boost) must be back where they were.
 *
 * Queue and semaphore waits last at most a second at a time (shmkit:
 * timeout 1 s; Boost: timed_send, timed_receive, timed_wait with a
 * deadline read once per run and renewed when it passes; a semaphore wait
 * tries first), then look whether another party failed and wait again;
 * ten empty waits in a row fail the run.  Neither side reads a clock per
 * call that does not sleep.  The mutex figures use the plain calls
 * (shk_mutex_lock with SHK_FOREVER, interprocess_mutex::lock).
 *
 * Names: shmkit segments shk-bench-PID-boost-N, Boost objects (POSIX shm,
 * /dev/shm) shk-bench-PID-bx-N-K; removed after each case, on failure, and
 * on SIGINT, SIGTERM, SIGPIPE and the watchdog (SIGALRM).
 */
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <boost/version.hpp>

#include <exception>
#include <new>

#include "bench.h"

#include "shmkit.h"

namespace bi = boost::interprocess;
namespace pt = boost::posix_time;

#define MAX_ROUNDS 99
#define MAXP 8
#define QCAP 1024u                    /* queue capacity, both sides */
#define WAIT_NS ((int64_t)1000000000) /* one blocking wait, then a look */
#define LOCK_TIMEOUT_MS 500           /* robustness: the next locker's */
#define SEQ_MASK (((uint64_t)1 << 40) - 1)
#define ECHO ((uint64_t)1 << 63)    /* semaphore pong: number ^ ECHO */
#define HEAP_LEN ((size_t)16 << 20) /* both heaps' segments */
#define SYNC_LEN ((size_t)1 << 20)  /* mutex and semaphore segments */

static const size_t rec_sizes[] = { 64, 1024 };

static int failures;
static pid_t top_pid;
static char shk_name[64];    /* the running case's segment, or "" */
static char bx_name[2][64];  /* the running case's Boost objects, or "" */
static char bx_path[2][72];  /* the same with the leading '/' shm wants */
static pid_t robust_kids[2]; /* robustness children still running */

/*
 * The watchdog (SIGALRM from bench_team_run), SIGINT and SIGTERM (run.sh's
 * timeout signals the process group) and SIGPIPE leave no segment and no
 * Boost object behind; the top process also kills the robustness
 * children.  Besides shk_seg_unlink (as in bench_peers), only
 * async-signal-safe calls.
 */
static void
on_signal(int sig)
{
	int k;

	if (shk_name[0])
		shk_seg_unlink(shk_name, NULL);
	for (k = 0; k < 2; k++) {
		if (bx_path[k][0])
			shm_unlink(bx_path[k]);
	}
	if (getpid() == top_pid) {
		for (k = 0; k < 2; k++) {
			if (robust_kids[k] > 0)
				kill(robust_kids[k], SIGKILL);
		}
	}
	_exit(3);
}

/* Names the next case's segment and Boost objects. */
static void
case_names(void)
{
	static int n;
	int k;

	snprintf(shk_name, sizeof(shk_name), "shk-bench-%d-boost-%d",
		 (int)getpid(), n);
	for (k = 0; k < 2; k++) {
		snprintf(bx_name[k], sizeof(bx_name[k]),
			 "shk-bench-%d-bx-%d-%d", (int)getpid(), n, k);
		snprintf(bx_path[k], sizeof(bx_path[k]),
			 "/shk-bench-%d-bx-%d-%d", (int)getpid(), n, k);
	}
	n++;
}

/* Removes the case's objects (those not made are simply not there). */
static void
case_end(void)
{
	int k;

	if (shk_name[0])
		shk_seg_unlink(shk_name, NULL);
	shk_name[0] = '\0';
	for (k = 0; k < 2; k++) {
		if (bx_name[k][0])
			bi::shared_memory_object::remove(bx_name[k]);
		bx_name[k][0] = '\0';
		bx_path[k][0] = '\0';
	}
}

static void
fail(const char *what, const char *why)
{
	fprintf(stderr, "bench_boost: %s failed (%s)\n", what, why);
	failures++;
}

/* A failure inside a party (any process): says what; returns -1. */
static int
shk_err(const char *what, int rc)
{
	fprintf(stderr, "bench_boost[%d]: %s: %s\n", (int)getpid(), what,
		shk_errname(rc));
	return -1;
}

static int
bx_err(const char *what, const std::exception &e)
{
	fprintf(stderr, "bench_boost[%d]: %s: %s\n", (int)getpid(), what,
		e.what());
	return -1;
}

static int
bad(const char *what)
{
	fprintf(stderr, "bench_boost[%d]: %s\n", (int)getpid(), what);
	return -1;
}

/*
 * prefault_named does for a Boost object what bench_party_seg does for a
 * segment: it maps every page of this process's mappings of
 * /dev/shm/NAME now (Boost does not say where it mapped a message_queue),
 * so that no figure includes a first-touch page fault.  0, or -1 when no
 * mapping was found.
 */
static int
prefault_named(const char *name)
{
	char want[96], line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "/dev/shm/%s", name);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		int at = 0;
		char *path;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &at) <
			    2 ||
		    at == 0)
			continue;
		path = line + at;
		path[strcspn(path, "\n")] = '\0';
		if (strcmp(path, want) == 0 && hi > lo) {
			bench_prefault((void *)lo, hi - lo);
			found = 1;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

/*
 * gave_up is called after a blocking call waited WAIT_NS and saw nothing:
 * 1 when another party failed (the caller gives up), or when STALL_WAITS
 * waits in a row saw nothing, so that a lost message fails the run in
 * seconds, not at the watchdog; else 0 (wait again).
 */
#define STALL_WAITS 10

static int
gave_up(int *waits)
{
	if (bench_aborted())
		return 1;
	if (++*waits < STALL_WAITS)
		return 0;
	bad("nothing moved for 10 s");
	return 1;
}

/* Boost's deadlines are absolute, on the clock its timed calls use. */
static pt::ptime
deadline_ms(long ms)
{
	return pt::microsec_clock::universal_time() + pt::milliseconds(ms);
}

/*
 * Per-party tally of streamed messages: count and a sum of a hash of each
 * message's number.  Each party writes only its own slot; the parent reads
 * them after the team has exited (bench_team_run's waitpid orders it).
 */
struct tally {
	uint64_t n, sum;
	uint8_t pad[48];
};

static uint64_t
mix(uint64_t v)
{
	return (v + 1) * 0x9e3779b97f4a7c15ull;
}

static int
tally_check(const struct tally *t, int np, int n)
{
	uint64_t sn = 0, ss = 0, rn = 0, rs = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (i < np) {
			sn += t[i].n;
			ss += t[i].sum;
		} else {
			rn += t[i].n;
			rs += t[i].sum;
		}
	}
	if (sn == 0 || sn != rn || ss != rs)
		return bad("messages sent and received do not add up");
	return 0;
}

/* ---- alternating rounds ---- */

/* One measured run of one side: its figure into v[0] (and v[1]). */
typedef int (*run_fn)(void *ctx, double *v);

struct side {
	const char *what;
	run_fn run;
	void *ctx;
	double v[2][MAX_ROUNDS];
	double med[2];
};

static void
spread(const char *what, const char *which, const double *v, int rounds)
{
	double lo = v[0], hi = v[0];
	int r;

	for (r = 1; r < rounds; r++) {
		if (v[r] < lo)
			lo = v[r];
		if (v[r] > hi)
			hi = v[r];
	}
	printf("   spread %-48s %12.2f .. %-12.2f %s over %d rounds\n", what,
	       lo, hi, which, rounds);
}

/*
 * alternate runs a and b by turns, one measured run of each per round, and
 * leaves the medians over the rounds in a->med and b->med (nv figures per
 * run, named by units[]).  0, or -1 when a run failed.
 */
static int
alternate(struct side *a, struct side *b, int nv, const char *const *units)
{
	struct side *s[2] = { a, b };
	int rounds = bench_runs(), r, k, i;

	for (r = 0; r < rounds; r++) {
		for (k = 0; k < 2; k++) {
			double v[2] = { 0, 0 };

			if (s[k]->run(s[k]->ctx, v) != 0) {
				fail(s[k]->what, "see above");
				return -1;
			}
			s[k]->v[0][r] = v[0];
			s[k]->v[1][r] = v[1];
		}
	}
	for (k = 0; k < 2; k++) {
		for (i = 0; i < nv; i++) {
			spread(s[k]->what, units[i], s[k]->v[i], rounds);
			s[k]->med[i] = bench_median(s[k]->v[i], (size_t)rounds);
		}
	}
	return 0;
}

/* ---- queue: shk_queue vs message_queue ---- */

struct qctx {
	int boost;
	size_t len;
	int nprod, ncons;
	long count;
	shk_seg *seg; /* the parent's; a child's own when own_seg */
	int own_seg;
	shk_queue *q[2];
	bi::message_queue *pmq[2]; /* the parent's (party 0 uses them) */
	bi::message_queue *mq[2];
	uint8_t *buf;
	uint64_t seq;
	uint64_t last[MAXP]; /* consumer: last number seen per producer */
	pt::ptime dl;        /* Boost: the deadline of a wait */
	struct tally *tally;
	int party;
};

/* Opens queue 0 ("ab"), and 1 ("ba") when two_way, in this party. */
static int
q_attach(struct qctx *c, int party, int two_way)
{
	int k, nq = two_way ? 2 : 1, rc;

	c->party = party;
	c->seq = 0;
	memset(c->last, 0xff, sizeof(c->last));
	c->buf = (uint8_t *)calloc(1, c->len);
	if (!c->buf)
		return -1;
	if (!c->boost) {
		shk_queue_opts o = SHK_QUEUE_OPTS_INIT;

		rc = bench_party_seg(shk_name, party, &c->seg, &c->own_seg);
		if (rc != 0)
			return shk_err("segment", rc);
		o.elem_len = (uint32_t)c->len;
		o.cap = QCAP;
		for (k = 0; k < nq; k++) {
			rc = shk_queue_open(c->seg, k ? "ba" : "ab", 0, &o,
					    &c->q[k]);
			if (rc != 0)
				return shk_err("shk_queue_open", rc);
		}
		return 0;
	}
	try {
		for (k = 0; k < nq; k++) {
			c->mq[k] = party == 0
					   ? c->pmq[k]
					   : new bi::message_queue(
						     bi::open_only, bx_name[k]);
			if (prefault_named(bx_name[k]) != 0)
				return bad("message_queue: no mapping");
		}
	} catch (const std::exception &e) {
		return bx_err("message_queue open", e);
	}
	return 0;
}

static void
q_detach(struct qctx *c)
{
	int k;

	for (k = 0; k < 2; k++) {
		shk_queue_close(c->q[k]);
		c->q[k] = NULL;
		if (c->mq[k] != c->pmq[k])
			delete c->mq[k];
		c->mq[k] = NULL;
	}
	free(c->buf);
	c->buf = NULL;
	if (c->own_seg)
		shk_seg_close(c->seg);
	c->own_seg = 0;
}

static int
q_send(struct qctx *c, int k)
{
	int rc, waits = 0;

	if (c->boost) {
		try {
			while (!c->mq[k]->timed_send(c->buf, c->len, 0,
						     c->dl)) {
				if (gave_up(&waits))
					return -1;
				c->dl = deadline_ms(1000);
			}
		} catch (const std::exception &e) {
			return bx_err("message_queue send", e);
		}
		return 0;
	}
	while ((rc = shk_queue_push(c->q[k], c->buf, WAIT_NS)) ==
	       SHK_ETIMEDOUT) {
		if (gave_up(&waits))
			return -1;
	}
	return rc == 0 ? 0 : shk_err("shk_queue_push", rc);
}

static int
q_recv(struct qctx *c, int k)
{
	int rc, waits = 0;

	if (c->boost) {
		try {
			bi::message_queue::size_type got = 0;
			unsigned prio = 0;

			while (!c->mq[k]->timed_receive(c->buf, c->len, got,
							prio, c->dl)) {
				if (gave_up(&waits))
					return -1;
				c->dl = deadline_ms(1000);
			}
			if (got != c->len || prio != 0)
				return bad("message_queue: wrong size");
		} catch (const std::exception &e) {
			return bx_err("message_queue receive", e);
		}
		return 0;
	}
	while ((rc = shk_queue_pop(c->q[k], c->buf, WAIT_NS)) ==
	       SHK_ETIMEDOUT) {
		if (gave_up(&waits))
			return -1;
	}
	return rc == 0 ? 0 : shk_err("shk_queue_pop", rc);
}

/* A message's number goes into its first and last 8 bytes. */
static void
stamp(struct qctx *c, uint64_t v)
{
	memcpy(c->buf, &v, sizeof(v));
	memcpy(c->buf + c->len - sizeof(v), &v, sizeof(v));
}

static int
unstamp(struct qctx *c, uint64_t *v)
{
	uint64_t tail;

	memcpy(v, c->buf, sizeof(*v));
	memcpy(&tail, c->buf + c->len - sizeof(tail), sizeof(tail));
	return *v == tail ? 0 : bad("message torn (its two ends differ)");
}

static int
qst_setup(void *ctx, int party, int is_producer)
{
	return q_attach((struct qctx *)ctx, party, 0);
}

static void
qst_fini(void *ctx, int party, int is_producer)
{
	q_detach((struct qctx *)ctx);
}

static int
qst_produce(void *ctx, int i, long n)
{
	struct qctx *c = (struct qctx *)ctx;
	struct tally *t = &c->tally[c->party];
	long k;

	if (c->boost)
		c->dl = deadline_ms(1000);
	for (k = 0; k < n; k++) {
		uint64_t v = (uint64_t)i << 40 | c->seq++;

		stamp(c, v);
		if (q_send(c, 0) != 0)
			return -1;
		t->n++;
		t->sum += mix(v);
	}
	return 0;
}

static int
qst_consume(void *ctx, int i, long n)
{
	struct qctx *c = (struct qctx *)ctx;
	struct tally *t = &c->tally[c->party];
	long k;

	if (c->boost)
		c->dl = deadline_ms(1000);
	for (k = 0; k < n; k++) {
		uint64_t v, p, s;

		if (q_recv(c, 0) != 0 || unstamp(c, &v) != 0)
			return -1;
		p = v >> 40;
		s = v & SEQ_MASK;
		if (p >= (uint64_t)c->nprod)
			return bad("message from no producer");
		/* last starts at all ones: + 1 wraps to 0 */
		if (c->ncons == 1 ? s != c->last[p] + 1
				  : c->last[p] != UINT64_MAX && s <= c->last[p])
			return bad("message out of order, repeated or lost");
		c->last[p] = s;
		t->n++;
		t->sum += mix(v);
	}
	return 0;
}

static const struct bench_stream_ops q_st_ops = { qst_setup, qst_produce,
						  qst_consume, qst_fini };

static int
qpp_setup(void *ctx, int side)
{
	return q_attach((struct qctx *)ctx, side, 1);
}

static void
qpp_fini(void *ctx, int side)
{
	q_detach((struct qctx *)ctx);
}

/* Side 0 sends on queue 0 ("ab") and receives on 1; side 1 the reverse. */
static int
qpp_ping(void *ctx, long n, double *rtt_ns)
{
	struct qctx *c = (struct qctx *)ctx;
	int64_t t0, t1;
	uint64_t v;
	long i;

	if (c->boost)
		c->dl = deadline_ms(1000);
	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		stamp(c, c->seq);
		if (q_send(c, 0) != 0 || q_recv(c, 1) != 0 ||
		    unstamp(c, &v) != 0)
			return -1;
		if (v != c->seq++)
			return bad("ping-pong: wrong echo");
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static int
qpp_pong(void *ctx, long n)
{
	struct qctx *c = (struct qctx *)ctx;
	uint64_t v;
	long i;

	if (c->boost)
		c->dl = deadline_ms(1000);
	for (i = 0; i < n; i++) {
		if (q_recv(c, 0) != 0 || unstamp(c, &v) != 0)
			return -1;
		if (v != c->seq++)
			return bad("ping-pong: wrong ping");
		if (q_send(c, 1) != 0) /* the same message back */
			return -1;
	}
	return 0;
}

static const struct bench_pp_ops q_pp_ops = { qpp_setup, qpp_ping, qpp_pong,
					      qpp_fini };

static int
qrun_stream(void *ctx, double *v)
{
	struct qctx *c = (struct qctx *)ctx;
	int n = c->nprod + c->ncons;

	memset(c->tally, 0, sizeof(*c->tally) * (size_t)n);
	if (bench_stream(&q_st_ops, c, c->nprod, c->ncons, 0, c->count,
			 &v[0]) != 0)
		return -1;
	v[0] /= 1e6; /* Mmsg/s (the sizes here are below 4 KiB) */
	return tally_check(c->tally, c->nprod, n);
}

static int
qrun_pp(void *ctx, double *v)
{
	struct qctx *c = (struct qctx *)ctx;
	struct bench_lat lat;

	if (bench_pingpong(&q_pp_ops, c, c->count, &lat) != 0)
		return -1;
	v[0] = lat.p50_ns;
	v[1] = lat.p99_ns;
	return 0;
}

/*
 * queue_case makes the shmkit segment with nq queues and the nq Boost
 * message queues of len-byte elements, and compares them: a stream of
 * np producers and nc consumers (pp 0) or a ping-pong (pp 1).
 */
static void
queue_case(size_t len, int pp, int np, int nc)
{
	static const char *const rate_unit[] = { "Mmsg/s" };
	static const char *const lat_unit[] = { "ns p50", "ns p99" };
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	shk_queue_opts qo = SHK_QUEUE_OPTS_INIT;
	struct qctx cs = {}, cb = {};
	struct side a = {}, b = {};
	char sz[32], name[96], bname[128], note[48] = "";
	int nq = pp ? 2 : 1, k, rc;

	bench_size_str(len, sz, sizeof(sz));
	if (!pp && np + nc > bench_ncpus())
		snprintf(note, sizeof(note), " (%d procs on %d CPUs)", np + nc,
			 bench_ncpus());
	if (pp)
		snprintf(name, sizeof(name), "queue one-way %s", sz);
	else
		snprintf(name, sizeof(name), "queue %dP%dC %s%s", np, nc, sz,
			 note);
	snprintf(bname, sizeof(bname), "message_queue %s",
		 name + strlen("queue "));
	case_names();
	cs.len = cb.len = len;
	cs.nprod = cb.nprod = np;
	cs.ncons = cb.ncons = nc;
	cs.count = cb.count = pp ? bench_scale(5000) : bench_scale(200000);
	cb.boost = 1;
	cs.tally = cb.tally = (struct tally *)bench_shm_alloc(
		sizeof(struct tally) * BENCH_MAX_PROCS);
	so.len = (uint64_t)8 << 20;
	rc = cs.tally ? shk_seg_open(shk_name, SHK_CREATE | SHK_EXCL, &so,
				     &cs.seg)
		      : -1;
	if (rc != 0) {
		shk_name[0] = '\0';
		fail(name, rc < 0 ? shk_errname(rc) : "no memory");
		goto out;
	}
	qo.elem_len = (uint32_t)len;
	qo.cap = QCAP;
	for (k = 0; k < nq; k++) {
		shk_queue *q = NULL;

		rc = shk_queue_open(cs.seg, k ? "ba" : "ab",
				    SHK_CREATE | SHK_EXCL, &qo, &q);
		shk_queue_close(q);
		if (rc != 0) {
			fail(name, shk_errname(rc));
			goto out;
		}
	}
	try {
		for (k = 0; k < nq; k++)
			cb.pmq[k] = new bi::message_queue(
				bi::create_only, bx_name[k], QCAP, len);
	} catch (const std::exception &e) {
		fail(bname, e.what());
		goto out;
	}
	a.what = name;
	a.run = pp ? qrun_pp : qrun_stream;
	a.ctx = &cs;
	b.what = bname;
	b.run = a.run;
	b.ctx = &cb;
	if (alternate(&a, &b, pp ? 2 : 1, pp ? lat_unit : rate_unit) != 0)
		goto out;
	if (pp) {
		char n2[160], b2[160];

		snprintf(n2, sizeof(n2), "%s p50", name);
		snprintf(b2, sizeof(b2), "%s p50", bname);
		bench_row("boost", n2, a.med[0], "ns", b2, b.med[0]);
		snprintf(n2, sizeof(n2), "%s p99", name);
		snprintf(b2, sizeof(b2), "%s p99", bname);
		bench_row("boost", n2, a.med[1], "ns", b2, b.med[1]);
	} else {
		bench_row("boost", name, a.med[0], "Mmsg/s", bname, b.med[0]);
	}
out:
	for (k = 0; k < 2; k++)
		delete cb.pmq[k];
	if (cs.seg)
		shk_seg_close(cs.seg);
	case_end();
	bench_shm_free(cs.tally, sizeof(struct tally) * BENCH_MAX_PROCS);
}

/* ---- what the mutex, semaphore and heap parties map ---- */

/*
 * struct mem: a party's view of the case's shmkit segment (boost 0) or
 * Boost managed segment (boost 1).  Party 0 uses the parent's handle,
 * every other party opens its own (as bench_party_seg does), and each
 * prefaults what it maps.
 */
struct mem {
	int boost, party;
	shk_seg *seg; /* the parent's; a child's own when own_seg */
	int own_seg;
	bi::managed_shared_memory *pms, *ms; /* the parent's; this party's */
};

static int
mem_attach(struct mem *m, int party)
{
	int rc;

	m->party = party;
	if (!m->boost) {
		rc = bench_party_seg(shk_name, party, &m->seg, &m->own_seg);
		return rc == 0 ? 0 : shk_err("segment", rc);
	}
	try {
		m->ms = party == 0 ? m->pms
				   : new bi::managed_shared_memory(
					     bi::open_only, bx_name[0]);
	} catch (const std::exception &e) {
		return bx_err("managed_shared_memory open", e);
	}
	return prefault_named(bx_name[0]) == 0
		       ? 0
		       : bad("managed_shared_memory: no mapping");
}

static void
mem_detach(struct mem *m)
{
	if (m->own_seg)
		shk_seg_close(m->seg);
	m->own_seg = 0;
	if (m->ms != m->pms)
		delete m->ms;
	m->ms = NULL;
}

/* The parent makes both segments of len bytes; 0, or -1 (reported). */
static int
mem_begin(struct mem *s, struct mem *b, size_t len, const char *what)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	int rc;

	case_names();
	b->boost = 1;
	so.len = len;
	rc = shk_seg_open(shk_name, SHK_CREATE | SHK_EXCL, &so, &s->seg);
	if (rc != 0) {
		shk_name[0] = '\0';
		fail(what, shk_errname(rc));
		return -1;
	}
	try {
		b->pms = new bi::managed_shared_memory(bi::create_only,
						       bx_name[0], len);
	} catch (const std::exception &e) {
		fail(what, e.what());
		return -1;
	}
	return 0;
}

static void
mem_end(struct mem *s, struct mem *b)
{
	delete b->pms;
	b->pms = NULL;
	if (s->seg)
		shk_seg_close(s->seg);
	s->seg = NULL;
	case_end();
}

/* An 8-byte word in the shmkit segment (a blob object); NULL on error. */
static uint64_t *
shk_word(shk_seg *seg, const char *name, unsigned flags)
{
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	void *p = NULL;
	int rc;

	d.kind = SHK_KIND_BLOB;
	d.elem_len = sizeof(uint64_t);
	d.cap = 1;
	rc = shk_obj_open(seg, name, flags, &d, NULL, &p);
	if (rc != 0)
		shk_err("shk_obj_open", rc);
	return (uint64_t *)p;
}

/* ---- mutex: shk_mutex vs interprocess_mutex ---- */

struct mctx {
	struct mem m;
	int nproc;
	long count;
	shk_mutex *mx;
	bi::interprocess_mutex *bm;
	uint64_t *cnt; /* the counter the mutex guards, in this process */
	struct tally *tally;
};

static int
m_setup(void *ctx, int party, int is_producer)
{
	struct mctx *c = (struct mctx *)ctx;
	int rc;

	if (mem_attach(&c->m, party) != 0)
		return -1;
	if (!c->m.boost) {
		rc = shk_mutex_open(c->m.seg, "m", 0, NULL, &c->mx);
		if (rc != 0)
			return shk_err("shk_mutex_open", rc);
		c->cnt = shk_word(c->m.seg, "n", 0);
		return c->cnt ? 0 : -1;
	}
	try {
		c->bm = c->m.ms->find<bi::interprocess_mutex>("m").first;
		c->cnt = c->m.ms->find<uint64_t>("n").first;
	} catch (const std::exception &e) {
		return bx_err("find", e);
	}
	return c->bm && c->cnt ? 0 : bad("interprocess_mutex not found");
}

static void
m_fini(void *ctx, int party, int is_producer)
{
	struct mctx *c = (struct mctx *)ctx;

	shk_mutex_close(c->mx);
	c->mx = NULL;
	mem_detach(&c->m);
}

static int
m_work(void *ctx, int i, long n)
{
	struct mctx *c = (struct mctx *)ctx;
	uint64_t *cnt = c->cnt;
	long k;
	int rc;

	if (c->m.boost) {
		bi::interprocess_mutex *m = c->bm;

		try {
			for (k = 0; k < n; k++) {
				m->lock();
				++*cnt;
				m->unlock();
			}
		} catch (const std::exception &e) {
			return bx_err("interprocess_mutex", e);
		}
	} else {
		for (k = 0; k < n; k++) {
			rc = shk_mutex_lock(c->mx, SHK_FOREVER);
			if (rc != 0)
				return shk_err("shk_mutex_lock", rc);
			++*cnt;
			rc = shk_mutex_unlock(c->mx);
			if (rc != 0)
				return shk_err("shk_mutex_unlock", rc);
		}
	}
	c->tally[c->m.party].n += (uint64_t)n;
	return 0;
}

static const struct bench_stream_ops m_ops = { m_setup, m_work, NULL, m_fini };

/* ns per lock+increment+unlock over all processes; checks the counter. */
static int
mrun(void *ctx, double *v)
{
	struct mctx *c = (struct mctx *)ctx;
	uint64_t want = 0;
	double rate;
	int i;

	memset(c->tally, 0, sizeof(*c->tally) * (size_t)c->nproc);
	*c->cnt = 0; /* the parent's view; no party runs now */
	if (bench_ops(&m_ops, c, c->nproc, c->count, &rate) != 0)
		return -1;
	for (i = 0; i < c->nproc; i++)
		want += c->tally[i].n;
	if (want == 0 || *c->cnt != want)
		return bad("the counter lost increments");
	v[0] = 1e9 / rate;
	return 0;
}

static void
mutex_case(int nproc)
{
	static const char *const unit[] = { "ns/op" };
	struct mctx cs = {}, cb = {};
	struct side a = {}, b = {};
	shk_mutex *m = NULL;
	char name[96], bname[96];
	int rc;

	snprintf(name, sizeof(name), "mutex lock+inc+unlock, %d proc%s", nproc,
		 nproc > 1 ? "s" : "");
	snprintf(bname, sizeof(bname), "interprocess_mutex, %d proc%s", nproc,
		 nproc > 1 ? "s" : "");
	cs.nproc = cb.nproc = nproc;
	cs.count = cb.count = bench_scale(nproc > 1 ? 500000 : 2000000);
	cs.tally = cb.tally = (struct tally *)bench_shm_alloc(
		sizeof(struct tally) * BENCH_MAX_PROCS);
	if (!cs.tally || mem_begin(&cs.m, &cb.m, SYNC_LEN, name) != 0)
		goto out;
	rc = shk_mutex_open(cs.m.seg, "m", SHK_CREATE | SHK_EXCL, NULL, &m);
	shk_mutex_close(m);
	cs.cnt =
		rc == 0 ? shk_word(cs.m.seg, "n", SHK_CREATE | SHK_EXCL) : NULL;
	if (!cs.cnt) {
		fail(name, rc != 0 ? shk_errname(rc) : "shk_obj_open");
		goto out;
	}
	try {
		cb.m.pms->construct<bi::interprocess_mutex>("m")();
		cb.cnt = cb.m.pms->construct<uint64_t>("n")(0);
	} catch (const std::exception &e) {
		fail(bname, e.what());
		goto out;
	}
	a = { name, mrun, &cs, {}, {} };
	b = { bname, mrun, &cb, {}, {} };
	if (alternate(&a, &b, 1, unit) == 0)
		bench_row("boost", name, a.med[0], "ns/op", bname, b.med[0]);
out:
	mem_end(&cs.m, &cb.m);
	bench_shm_free(cs.tally, sizeof(struct tally) * BENCH_MAX_PROCS);
}

/* ---- semaphore ping-pong: shk_sem vs interprocess_semaphore ---- */

struct sctx {
	struct mem m;
	long count;
	shk_sem *s[2];  /* 0 "ping" (side 0 posts), 1 "pong" */
	shk_sem *ps[2]; /* the parent's handles, for srun's check */
	bi::interprocess_semaphore *bs[2];
	uint64_t *word; /* the number a ping carries, in this process */
	uint64_t seq;
	pt::ptime dl;
};

static const char *const sem_names[2] = { "ping", "pong" };

static int
spp_setup(void *ctx, int side)
{
	struct sctx *c = (struct sctx *)ctx;
	int k, rc;

	c->seq = 0;
	if (mem_attach(&c->m, side) != 0)
		return -1;
	if (!c->m.boost) {
		for (k = 0; k < 2; k++) {
			rc = shk_sem_open(c->m.seg, sem_names[k], 0, NULL,
					  &c->s[k]);
			if (rc != 0)
				return shk_err("shk_sem_open", rc);
		}
		c->word = shk_word(c->m.seg, "w", 0);
		return c->word ? 0 : -1;
	}
	try {
		for (k = 0; k < 2; k++)
			c->bs[k] = c->m.ms->find<bi::interprocess_semaphore>(
						  sem_names[k])
					   .first;
		c->word = c->m.ms->find<uint64_t>("w").first;
	} catch (const std::exception &e) {
		return bx_err("find", e);
	}
	return c->bs[0] && c->bs[1] && c->word
		       ? 0
		       : bad("interprocess_semaphore not found");
}

static void
spp_fini(void *ctx, int side)
{
	struct sctx *c = (struct sctx *)ctx;

	shk_sem_close(c->s[0]);
	shk_sem_close(c->s[1]);
	c->s[0] = c->s[1] = NULL;
	mem_detach(&c->m);
}

static int
s_post(struct sctx *c, int k)
{
	int rc;

	if (c->m.boost) {
		try {
			c->bs[k]->post();
		} catch (const std::exception &e) {
			return bx_err("interprocess_semaphore post", e);
		}
		return 0;
	}
	rc = shk_sem_post(c->s[k], 1);
	return rc == 0 ? 0 : shk_err("shk_sem_post", rc);
}

/*
 * Boost's wait tries first (sem_trywait, no clock): only a wait that
 * would sleep anyway pays for timed_wait's conversion of the deadline.
 */
static int
s_wait(struct sctx *c, int k)
{
	int rc, waits = 0;

	if (c->m.boost) {
		try {
			if (c->bs[k]->try_wait())
				return 0;
			while (!c->bs[k]->timed_wait(c->dl)) {
				if (gave_up(&waits))
					return -1;
				c->dl = deadline_ms(1000);
			}
		} catch (const std::exception &e) {
			return bx_err("interprocess_semaphore wait", e);
		}
		return 0;
	}
	while ((rc = shk_sem_wait(c->s[k], WAIT_NS)) == SHK_ETIMEDOUT) {
		if (gave_up(&waits))
			return -1;
	}
	return rc == 0 ? 0 : shk_err("shk_sem_wait", rc);
}

/*
 * The word is plain memory: the semaphores order it (a post releases what
 * was written before it; the wait that takes that unit acquires it), as
 * they would order any data they guard.
 */
static int
spp_ping(void *ctx, long n, double *rtt_ns)
{
	struct sctx *c = (struct sctx *)ctx;
	int64_t t0, t1;
	long i;

	if (c->m.boost)
		c->dl = deadline_ms(1000);
	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		*c->word = c->seq;
		if (s_post(c, 0) != 0 || s_wait(c, 1) != 0)
			return -1;
		if (*c->word != (c->seq++ ^ ECHO))
			return bad("semaphore ping-pong: wrong answer");
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static int
spp_pong(void *ctx, long n)
{
	struct sctx *c = (struct sctx *)ctx;
	long i;

	if (c->m.boost)
		c->dl = deadline_ms(1000);
	for (i = 0; i < n; i++) {
		if (s_wait(c, 0) != 0)
			return -1;
		if (*c->word != c->seq)
			return bad("semaphore ping-pong: wrong ping");
		*c->word = c->seq++ ^ ECHO;
		if (s_post(c, 1) != 0)
			return -1;
	}
	return 0;
}

static const struct bench_pp_ops s_pp_ops = { spp_setup, spp_ping, spp_pong,
					      spp_fini };

/* After a ping-pong both semaphores must be back at 0. */
static int
srun(void *ctx, double *v)
{
	struct sctx *c = (struct sctx *)ctx;
	struct bench_lat lat;
	int k;

	if (bench_pingpong(&s_pp_ops, c, c->count, &lat) != 0)
		return -1;
	for (k = 0; k < 2; k++) {
		bi::interprocess_semaphore *bs =
			c->m.boost ? c->m.pms->find<bi::interprocess_semaphore>(
						     sem_names[k])
					     .first
				   : NULL;

		if (bs ? bs->try_wait() : shk_sem_value(c->ps[k]) != 0)
			return bad("a semaphore is not back at 0");
	}
	v[0] = lat.p50_ns;
	v[1] = lat.p99_ns;
	return 0;
}

static void
sem_case(void)
{
	static const char *const unit[] = { "ns p50", "ns p99" };
	static const char *const pct[] = { "p50", "p99" };
	struct sctx cs = {}, cb = {};
	struct side a = {}, b = {};
	const char *name = "semaphore ping-pong one-way";
	const char *bname = "interprocess_semaphore ping-pong";
	int rc = 0, k;

	cs.count = cb.count = bench_scale(5000);
	if (mem_begin(&cs.m, &cb.m, SYNC_LEN, name) != 0)
		goto out;
	/* the parent keeps handles on both: srun checks their counts */
	for (k = 0; rc == 0 && k < 2; k++)
		rc = shk_sem_open(cs.m.seg, sem_names[k], SHK_CREATE | SHK_EXCL,
				  NULL, &cs.ps[k]);
	if (rc != 0 || !shk_word(cs.m.seg, "w", SHK_CREATE | SHK_EXCL)) {
		fail(name, rc != 0 ? shk_errname(rc) : "shk_obj_open");
		goto out;
	}
	try {
		for (k = 0; k < 2; k++)
			cb.m.pms->construct<bi::interprocess_semaphore>(
				sem_names[k])(0);
		cb.m.pms->construct<uint64_t>("w")(0);
	} catch (const std::exception &e) {
		fail(bname, e.what());
		goto out;
	}
	a = { name, srun, &cs, {}, {} };
	b = { bname, srun, &cb, {}, {} };
	if (alternate(&a, &b, 2, unit) == 0) {
		for (k = 0; k < 2; k++) {
			char n2[96], b2[96];

			snprintf(n2, sizeof(n2), "%s %s", name, pct[k]);
			snprintf(b2, sizeof(b2), "%s %s", bname, pct[k]);
			bench_row("boost", n2, a.med[k], "ns", b2, b.med[k]);
		}
	}
out:
	shk_sem_close(cs.ps[0]);
	shk_sem_close(cs.ps[1]);
	mem_end(&cs.m, &cb.m);
}

/* ---- heap: shk_alloc/shk_free vs managed_shared_memory ---- */

struct hctx {
	struct mem m;
	int nproc;
	size_t len;
	long count;
};

static int
h_setup(void *ctx, int party, int is_producer)
{
	return mem_attach(&((struct hctx *)ctx)->m, party);
}

static void
h_fini(void *ctx, int party, int is_producer)
{
	mem_detach(&((struct hctx *)ctx)->m);
}

/* A block's tag goes into its first and last 8 bytes. */
static void
h_tag(void *p, size_t len, uint64_t tag)
{
	memcpy(p, &tag, sizeof(tag));
	memcpy((uint8_t *)p + len - sizeof(tag), &tag, sizeof(tag));
}

static int
h_check(const void *p, size_t len, uint64_t tag)
{
	uint64_t a, b;

	memcpy(&a, p, sizeof(a));
	memcpy(&b, (const uint8_t *)p + len - sizeof(b), sizeof(b));
	return a == tag && b == tag
		       ? 0
		       : bad("a heap block changed under its owner");
}

/*
 * One op allocates a block and tags it, then checks the tag of the block
 * the previous op allocated and frees that one: one alloc and one free
 * per op, each process holding one block at a time, so that a block
 * handed to two owners at once shows.
 */
static int
h_work(void *ctx, int i, long n)
{
	struct hctx *c = (struct hctx *)ctx;
	bi::managed_shared_memory *ms = c->m.ms;
	uint64_t tag0 = (uint64_t)c->m.party << 40, prev_off = 0, off = 0;
	void *prev = NULL, *p;
	long k;
	int rc;

	try {
		for (k = 0; k <= n; k++) {
			p = NULL;
			if (k < n && ms) {
				p = ms->allocate(c->len);
			} else if (k < n) {
				rc = shk_alloc(c->m.seg, c->len, &off);
				if (rc != 0)
					return shk_err("shk_alloc", rc);
				p = shk_ptr(c->m.seg, off);
				if (!p)
					return bad("shk_alloc: offset outside");
			}
			if (p)
				h_tag(p, c->len, tag0 | (uint64_t)k);
			if (prev &&
			    h_check(prev, c->len, tag0 | (uint64_t)(k - 1)))
				return -1;
			if (prev && ms) {
				ms->deallocate(prev);
			} else if (prev) {
				rc = shk_free(c->m.seg, prev_off);
				if (rc != 0)
					return shk_err("shk_free", rc);
			}
			prev = p;
			prev_off = off;
		}
	} catch (const std::exception &e) {
		return bx_err("managed_shared_memory", e);
	}
	return 0;
}

static const struct bench_stream_ops h_ops = { h_setup, h_work, NULL, h_fini };

/* What must be back after a run: shmkit's live blocks, Boost's free bytes. */
static int
h_level(struct hctx *c, uint64_t *level)
{
	shk_heap_stats st;
	int rc;

	if (c->m.boost) {
		*level = c->m.pms->get_free_memory();
		return 0;
	}
	st.size = sizeof(st);
	rc = shk_heap_info(c->m.seg, &st);
	*level = st.nallocs;
	return rc == 0 ? 0 : shk_err("shk_heap_info", rc);
}

/* Mops/s over all processes; every block must be back afterwards. */
static int
hrun(void *ctx, double *v)
{
	struct hctx *c = (struct hctx *)ctx;
	uint64_t before, after;

	if (h_level(c, &before) != 0 ||
	    bench_ops(&h_ops, c, c->nproc, c->count, &v[0]) != 0 ||
	    h_level(c, &after) != 0)
		return -1;
	v[0] /= 1e6;
	return after == before ? 0
			       : bad("the heap did not get every block back");
}

static void
heap_case(size_t len, int nproc)
{
	static const char *const unit[] = { "Mops/s" };
	struct hctx cs = {}, cb = {};
	struct side a = {}, b = {};
	char sz[32], name[96], bname[96];

	bench_size_str(len, sz, sizeof(sz));
	snprintf(name, sizeof(name), "heap alloc+free %s, %d proc%s", sz, nproc,
		 nproc > 1 ? "s" : "");
	snprintf(bname, sizeof(bname), "managed_shared_memory %s, %d proc%s",
		 sz, nproc, nproc > 1 ? "s" : "");
	cs.len = cb.len = len;
	cs.nproc = cb.nproc = nproc;
	cs.count = cb.count = bench_scale(1000000);
	if (mem_begin(&cs.m, &cb.m, HEAP_LEN, name) == 0) {
		a = { name, hrun, &cs, {}, {} };
		b = { bname, hrun, &cb, {}, {} };
		if (alternate(&a, &b, 1, unit) == 0)
			bench_row("boost", name, a.med[0], "Mops/s", bname,
				  b.med[0]);
	}
	mem_end(&cs.m, &cb.m);
}

/* ---- robustness: the holder of the mutex is SIGKILLed ---- */

struct rshared {
	_Atomic(uint32_t) ready;
	int64_t kill_ns; /* written by the killer, read after its waitpid */
};

/* The holder: takes the mutex through handles of its own, says so, and
 * waits to be killed. */
static void
hold(int boost, struct rshared *sh)
{
	if (boost) {
		try {
			bi::managed_shared_memory ms(bi::open_only, bx_name[0]);
			bi::interprocess_mutex *m =
				ms.find<bi::interprocess_mutex>("m").first;

			if (!m)
				_exit(1);
			m->lock(); /* free: the holder does not wait */
			/* release: pairs with the parent's acquire load */
			atomic_store_explicit(&sh->ready, 1,
					      memory_order_release);
			for (;;)
				pause();
		} catch (...) {
			_exit(1);
		}
	} else {
		shk_seg *s = NULL;
		shk_mutex *m = NULL;

		if (shk_seg_open(shk_name, 0, NULL, &s) != 0 ||
		    shk_mutex_open(s, "m", 0, NULL, &m) != 0 ||
		    shk_mutex_lock(m, SHK_FOREVER) != 0)
			_exit(1);
		/* release: pairs with the parent's acquire load */
		atomic_store_explicit(&sh->ready, 1, memory_order_release);
		for (;;)
			pause();
	}
}

static void
reap(int k)
{
	int st;

	if (robust_kids[k] <= 0)
		return;
	kill(robust_kids[k], SIGKILL);
	while (waitpid(robust_kids[k], &st, 0) < 0 && errno == EINTR)
		;
	robust_kids[k] = 0;
}

/* A note row: the outcome of each side, and no ratio. */
static void
note_row(const char *name, const char *value, const char *base_name,
	 const char *base_value)
{
	const char *path = getenv("SHK_BENCH_OUT");

	printf("%-10s %s: %s | %s: %s\n", "boost", name, value, base_name,
	       base_value);
	fflush(stdout);
	if (path && *path) {
		FILE *f = fopen(path, "a");

		if (f) {
			fprintf(f, "| boost | %s | %s | %s | %s | - |\n", name,
				value, base_name, base_value);
			fclose(f);
		}
	}
}

/*
 * robust_case: a child takes the mutex and is SIGKILLed, before the
 * parent's lock call (waiting 0) or 50 ms into it (waiting 1, by a second
 * child); the parent's lock call waits at most LOCK_TIMEOUT_MS.  Writes
 * the outcome into out; returns 0 when shmkit reported SHK_EOWNERDEAD and
 * recovered the mutex, or for Boost whenever the run completed (its
 * outcome is reported, whatever it is), else -1.
 */
static int
robust_case(int boost, int waiting, char *out, size_t cap)
{
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	struct rshared *sh;
	shk_seg *seg = NULL;
	shk_mutex *m = NULL;
	bi::managed_shared_memory *ms = NULL;
	bi::interprocess_mutex *bm = NULL;
	int64_t t0, t1, limit;
	int rc = -1, got = 0, st;
	bool acquired = false;

	snprintf(out, cap, "did not run");
	sh = (struct rshared *)bench_shm_alloc(sizeof(*sh));
	if (!sh)
		return -1;
	case_names();
	if (boost) {
		try {
			ms = new bi::managed_shared_memory(
				bi::create_only, bx_name[0], (size_t)64 << 10);
			bm = ms->construct<bi::interprocess_mutex>("m")();
		} catch (const std::exception &e) {
			snprintf(out, cap, "setup: %s", e.what());
			goto out;
		}
	} else {
		so.len = SYNC_LEN;
		got = shk_seg_open(shk_name, SHK_CREATE | SHK_EXCL, &so, &seg);
		if (got == 0)
			got = shk_mutex_open(seg, "m", SHK_CREATE | SHK_EXCL,
					     NULL, &m);
		if (got != 0) {
			if (!seg)
				shk_name[0] = '\0';
			snprintf(out, cap, "setup: %s", shk_errname(got));
			goto out;
		}
	}
	fflush(stdout);
	fflush(stderr);
	robust_kids[0] = fork();
	if (robust_kids[0] == 0) {
		hold(boost, sh);
		_exit(1); /* not reached: hold waits to be killed */
	}
	if (robust_kids[0] < 0) {
		robust_kids[0] = 0;
		snprintf(out, cap, "fork: %s", strerror(errno));
		goto out;
	}
	limit = bench_now_ns() + (int64_t)5 * 1000000000;
	/* acquire: pairs with the holder's release store */
	while (!atomic_load_explicit(&sh->ready, memory_order_acquire)) {
		if (bench_now_ns() > limit ||
		    waitpid(robust_kids[0], &st, WNOHANG) != 0) {
			snprintf(out, cap, "the holder did not take the mutex");
			goto out;
		}
		usleep(1000);
	}
	if (!waiting) {
		reap(0); /* SIGKILL, and wait until it is gone */
	} else {
		robust_kids[1] = fork();
		if (robust_kids[1] == 0) {
			usleep(50000);
			sh->kill_ns = bench_now_ns();
			kill(robust_kids[0], SIGKILL);
			_exit(0);
		}
		if (robust_kids[1] < 0) {
			robust_kids[1] = 0;
			snprintf(out, cap, "fork: %s", strerror(errno));
			goto out;
		}
	}
	t0 = bench_now_ns();
	if (boost) {
		try {
			acquired = bm->timed_lock(deadline_ms(LOCK_TIMEOUT_MS));
		} catch (const std::exception &e) {
			snprintf(out, cap, "timed_lock threw: %s", e.what());
			goto out;
		}
	} else {
		got = shk_mutex_lock(m, (int64_t)LOCK_TIMEOUT_MS * 1000000);
	}
	t1 = bench_now_ns();
	if (waiting) {
		/* the killer exits on its own; its kill_ns is then ours */
		while (waitpid(robust_kids[1], &st, 0) < 0 && errno == EINTR)
			;
		robust_kids[1] = 0;
		reap(0);
		if (sh->kill_ns == 0 || sh->kill_ns > t1) {
			snprintf(out, cap, "%s returned before the kill",
				 boost ? "timed_lock" : "shk_mutex_lock");
			goto out;
		}
	}
	{
		char when[64];

		if (waiting)
			snprintf(when, sizeof(when),
				 "%.2f ms after the kill (%.2f ms wait)",
				 (double)(t1 - sh->kill_ns) / 1e6,
				 (double)(t1 - t0) / 1e6);
		else
			snprintf(when, sizeof(when), "after %.2f ms",
				 (double)(t1 - t0) / 1e6);
		if (boost) {
			snprintf(out, cap, "%s %s",
				 acquired ? "true (acquired)"
					  : "false (timed out)",
				 when);
			rc = 0;
			goto out;
		}
		snprintf(out, cap, "%s %s", shk_errname(got), when);
	}
	if (got == SHK_EOWNERDEAD) {
		/* recovered: consistent, unlock, and the mutex is free */
		if (shk_mutex_consistent(m) == 0 && shk_mutex_unlock(m) == 0 &&
		    shk_mutex_lock(m, 0) == 0 && shk_mutex_unlock(m) == 0)
			rc = 0;
		else
			snprintf(out + strlen(out), cap - strlen(out),
				 ", then not recovered");
	}
out:
	reap(1);
	reap(0);
	shk_mutex_close(m);
	if (seg)
		shk_seg_close(seg);
	delete ms; /* unmaps only: the dead holder's mutex stays locked */
	case_end();
	bench_shm_free(sh, sizeof(*sh));
	return rc;
}

static void
robustness(void)
{
	static const char *const what[2] = {
		"robust: mutex holder SIGKILLed, then lock (500 ms timeout)",
		"robust: mutex holder SIGKILLed while the next locker waits "
		"(500 ms timeout)",
	};
	char shk_out[160], bx_out[160];
	int waiting, rs, rb;

	for (waiting = 0; waiting < 2; waiting++) {
		rs = robust_case(0, waiting, shk_out, sizeof(shk_out));
		rb = robust_case(1, waiting, bx_out, sizeof(bx_out));
		note_row(what[waiting], shk_out,
			 "interprocess_mutex::timed_lock", bx_out);
		if (rs != 0)
			fail(what[waiting], "shmkit did not report and recover "
					    "the dead holder");
		if (rb != 0)
			fail(what[waiting], "the Boost side did not run");
	}
}

static int
wanted(int argc, char **argv, const char *group)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], group) == 0)
			return 1;
	}
	return argc < 2;
}

int
main(int argc, char **argv)
{
	static const char *const groups[] = { "queue", "mutex", "sem", "heap",
					      "robust" };
	struct sigaction sa;
	size_t s;
	int i;

	for (i = 1; i < argc; i++) {
		for (s = 0; s < sizeof(groups) / sizeof(groups[0]); s++) {
			if (strcmp(argv[i], groups[s]) == 0)
				break;
		}
		if (s == sizeof(groups) / sizeof(groups[0])) {
			fprintf(stderr,
				"usage: %s [queue] [mutex] [sem] [heap] "
				"[robust]   (default: all)\n",
				argv[0]);
			return 2;
		}
	}

	top_pid = getpid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	bench_runs_each = 1; /* the rounds alternate the cases */
	printf("# shmkit vs Boost.Interprocess %d.%d.%d, pinned processes "
	       "(%d CPUs), median of %d alternating rounds\n",
	       BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
	       BOOST_VERSION % 100, bench_ncpus(), bench_runs());
	for (s = 0; s < sizeof(rec_sizes) / sizeof(rec_sizes[0]); s++) {
		if (!wanted(argc, argv, "queue"))
			break;
		queue_case(rec_sizes[s], 0, 1, 1);
		queue_case(rec_sizes[s], 0, 2, 2);
	}
	if (wanted(argc, argv, "queue"))
		queue_case(64, 1, 1, 1);
	if (wanted(argc, argv, "mutex")) {
		mutex_case(1);
		mutex_case(2);
	}
	if (wanted(argc, argv, "sem"))
		sem_case();
	for (s = 0; s < sizeof(rec_sizes) / sizeof(rec_sizes[0]); s++) {
		if (!wanted(argc, argv, "heap"))
			break;
		heap_case(rec_sizes[s], 1);
		heap_case(rec_sizes[s], 2);
	}
	if (wanted(argc, argv, "robust"))
		robustness();
	return failures ? 1 : 0;
}
