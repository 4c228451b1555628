/*
 * bench_peers - shmkit's ring beside other IPC libraries, measured in the
 * same run and in the same process layout: two forked processes pinned to
 * CPUs 0 and 1 (bench_team_run), DESIGN §9 ("ahead of ZeroMQ ipc:// and
 * iceoryx in the same run"):
 *   throughput of 64 B and 1 KiB records, ring (busy-poll, ring_parties.h)
 *   copying (shk_ring_write / shk_ring_read) and zero-copy (reserve/commit,
 *   peek/release)
 *     vs ZeroMQ ipc:// PUSH/PULL (zmq_send / zmq_recv, blocking), its I/O
 *        threads pinned with their process, and again with them free to
 *        run on any CPU
 *     vs iceoryx 2 publish/subscribe (C binding, zero-copy: loan, write
 *        in place, publish; take, check in place, release; take
 *        busy-polled), when built with it (SHK_BENCH_IOX) and its RouDi
 *        daemon can be started
 *     vs a Unix stream socket (baselines.h)
 *   one-way latency p50/p99 of 64 B messages, ping-pong:
 *     ring busy-poll vs iceoryx busy-poll (take retried)
 *     ring blocking  vs ZeroMQ ipc:// PAIR (blocking; I/O threads pinned
 *                       and free, as above), vs a Unix socket
 * Every message carries its sequence number in its first 8 bytes; the
 * receiver checks it (stream: the consumer; ping-pong: both sides), so a
 * transport that drops, repeats or reorders fails the program instead of
 * winning.  The cases of one comparison alternate round by round (one
 * measured run each per round, after each run's own warm-up) and every
 * figure is the median over SHK_BENCH_RUNS rounds, as in bench_ring.
 * Ratios are shmkit / peer: for latency lower is better, for throughput
 * higher is better.
 *
 * iceoryx needs its daemon, RouDi: this program starts `iox-roudi` itself
 * (from $PATH, or $SHK_BENCH_ROUDI) with a small memory configuration,
 * and stops it at the end, on failure and on SIGINT, SIGTERM, SIGPIPE and
 * the watchdog.
 * Without it (not built in, no iox-roudi, a RouDi already running that is
 * not ours, RouDi failing to start) the iceoryx cases print "skipped: why"
 * and the rest runs.  SHK_BENCH_IOX=0 skips them on purpose.
 */
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <zmq.h>

#include "baselines.h"
#include "ring_parties.h"

#ifdef SHK_BENCH_IOX
#include "iceoryx_binding_c/enums.h"
#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#endif

#define MAX_ROUNDS 99
#define PP_LEN 64

static const size_t rec_sizes[] = { 64, 1024 };

static int failures;
static char zmq_path[96]; /* the running case's ipc:// socket file */
static pid_t roudi_pid;   /* the RouDi this program started, or 0 */
static pid_t roudi_owner; /* the process that started it (and stops it) */

static int roudi_reap(void);

static void
fail(const char *what, const char *why)
{
	fprintf(stderr, "bench_peers: %s failed (%s)\n", what, why);
	failures++;
}

static void
fail_rc(const char *what, int rc)
{
	fail(what, rc < 0 ? shk_errname(rc) : "harness");
}

/* A note row in the results table: "| peers | what | skipped: why |". */
static void
skip_row(const char *what, const char *why)
{
	const char *path = getenv("SHK_BENCH_OUT");

	printf("%-10s %-34s skipped: %s\n", "peers", what, why);
	fflush(stdout);
	if (path && *path) {
		FILE *f = fopen(path, "a");
		if (f) {
			fprintf(f, "| peers | %s | skipped: %s | - | - | - |\n",
				what, why);
			fclose(f);
		}
	}
}

/*
 * The watchdog (SIGALRM from bench_team_run), SIGINT and SIGTERM (run.sh's
 * timeout signals the whole process group) and SIGPIPE (stdout closed)
 * must leave no segment, no socket file and no RouDi behind.  Besides
 * shk_seg_unlink (as in bench_ring), only async-signal-safe calls.
 */
static void
on_signal(int sig)
{
	if (seg_name[0])
		shk_seg_unlink(seg_name, NULL);
	if (zmq_path[0])
		unlink(zmq_path);
	if (roudi_pid > 0 && getpid() == roudi_owner)
		roudi_reap();
	_exit(3);
}

/* ---- shmkit ring: ping-pong with the sequence checked on both sides ---- */

static int
rpp_ping(void *ctx, long n, double *rtt_ns)
{
	struct rctx *c = (struct rctx *)ctx;
	int64_t t0 = bench_now_ns(), t1;
	uint64_t got;
	long i;

	for (i = 0; i < n; i++) {
		memcpy(c->buf, &c->seq, sizeof(c->seq));
		if (send_rec(c) != 0 || recv_rec(c) != 0)
			return -1;
		memcpy(&got, c->buf, sizeof(got));
		if (got != c->seq++)
			return -1;
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static int
rpp_pong(void *ctx, long n)
{
	struct rctx *c = (struct rctx *)ctx;
	uint64_t got;
	long i;

	for (i = 0; i < n; i++) {
		if (recv_rec(c) != 0)
			return -1;
		memcpy(&got, c->buf, sizeof(got));
		if (got != c->seq++ || send_rec(c) != 0)
			return -1;
	}
	return 0;
}

static const struct bench_pp_ops rpp_ops = { pp_setup, rpp_ping, rpp_pong,
					     pp_fini };

static int
ring_pp_checked(int64_t timeout, long n, struct bench_lat *out)
{
	struct rctx c;
	int rc = case_begin(&c, PP_LEN, 0, timeout);

	if (rc != 0)
		return rc;
	rc = bench_pingpong(&rpp_ops, &c, n, out);
	if (rc != 0 && c.err)
		rc = c.err;
	case_end(&c);
	return rc;
}

/* ---- ZeroMQ ipc:// ---- */

/*
 * One ZeroMQ context per process and case, made after the fork in setup
 * (a context does not survive fork) and terminated in fini.  Its I/O
 * thread (one, the default) starts with the first socket and inherits the
 * party's CPU pin, so each side's application thread and I/O thread share
 * that side's CPU: the same two CPUs as the ring's two processes.  With
 * free_io the socket is made while the party may run on every CPU, so the
 * I/O thread may run anywhere, and then the party is pinned again.  Side 0
 * binds, side 1 connects; default high-water marks (1000 messages), so a
 * PUSH blocks rather than drops; linger 0 (every message has been
 * received and checked when fini runs); blocking calls give up after a
 * second (ZMQ_RCVTIMEO/ZMQ_SNDTIMEO) to see whether the other party
 * failed, and otherwise go on waiting.  Receives block: a ZMQ_DONTWAIT
 * busy-poll spins on the CPU its own I/O thread needs (see
 * docs/benchmarks.md).
 */
struct zctx {
	char ep[128];
	size_t len;
	int pair;    /* PAIR (ping-pong), else PUSH/PULL (stream) */
	int free_io; /* the I/O thread is not pinned */
	void *ctx, *sock;
	uint8_t *buf;
	uint64_t seq;
	int err; /* errno of the first ZeroMQ failure in this process */
};

static int
zerr(struct zctx *z)
{
	if (!z->err)
		z->err = zmq_errno();
	return -1;
}

static int
z_setup(struct zctx *z, int side)
{
	int type = z->pair ? ZMQ_PAIR : (side == 0 ? ZMQ_PUSH : ZMQ_PULL);
	int zero = 0, ms = 1000, restore = 0;
	cpu_set_t pinned, all;

	z->buf = (uint8_t *)calloc(1, z->len);
	if (!z->buf)
		return -1;
	z->ctx = zmq_ctx_new();
	if (!z->ctx)
		return zerr(z);
	if (z->free_io && sched_getaffinity(0, sizeof(pinned), &pinned) == 0) {
		bench_cpus_init();
		all = bench_cpu_mask; /* every CPU the program may use */
		restore = sched_setaffinity(0, sizeof(all), &all) == 0;
	}
	/* the context starts its I/O thread with its first socket */
	z->sock = zmq_socket(z->ctx, type);
	if (restore)
		sched_setaffinity(0, sizeof(pinned), &pinned);
	if (!z->sock ||
	    zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &ms, sizeof(ms)) != 0 ||
	    zmq_setsockopt(z->sock, ZMQ_SNDTIMEO, &ms, sizeof(ms)) != 0)
		return zerr(z);
	if ((side == 0 ? zmq_bind(z->sock, z->ep)
		       : zmq_connect(z->sock, z->ep)) != 0)
		return zerr(z);
	return 0;
}

static void
z_fini(struct zctx *z)
{
	if (z->sock)
		zmq_close(z->sock);
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	z->sock = z->ctx = NULL;
	free(z->buf);
	z->buf = NULL;
	if (z->err)
		fprintf(stderr, "bench_peers: zmq: %s\n", zmq_strerror(z->err));
}

static int
z_send(struct zctx *z)
{
	int r;

	/* EAGAIN: a second passed (ZMQ_SNDTIMEO); go on unless the team
	 * failed */
	while ((r = zmq_send(z->sock, z->buf, z->len, 0)) < 0) {
		int e = zmq_errno();

		if (e != EINTR && (e != EAGAIN || bench_aborted()))
			return zerr(z);
	}
	return (size_t)r == z->len ? 0 : -1;
}

/* Receives one message of exactly z->len bytes and checks its number. */
static int
z_recv(struct zctx *z)
{
	uint64_t got;
	int r;

	while ((r = zmq_recv(z->sock, z->buf, z->len, 0)) < 0) {
		int e = zmq_errno();

		if (e != EINTR && (e != EAGAIN || bench_aborted()))
			return zerr(z);
	}
	if ((size_t)r != z->len)
		return -1;
	memcpy(&got, z->buf, sizeof(got));
	return got == z->seq++ ? 0 : -1;
}

static int
zpp_setup(void *ctx, int side)
{
	return z_setup((struct zctx *)ctx, side);
}

static void
zpp_fini(void *ctx, int side)
{
	z_fini((struct zctx *)ctx);
}

static int
zpp_ping(void *ctx, long n, double *rtt_ns)
{
	struct zctx *z = (struct zctx *)ctx;
	int64_t t0 = bench_now_ns(), t1;
	long i;

	for (i = 0; i < n; i++) {
		memcpy(z->buf, &z->seq, sizeof(z->seq));
		if (z_send(z) != 0 || z_recv(z) != 0)
			return -1;
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static int
zpp_pong(void *ctx, long n)
{
	struct zctx *z = (struct zctx *)ctx;
	long i;

	for (i = 0; i < n; i++) {
		/* z_recv checked and counted the number; echo the message */
		if (z_recv(z) != 0 || z_send(z) != 0)
			return -1;
	}
	return 0;
}

static const struct bench_pp_ops zmq_pp_ops = { zpp_setup, zpp_ping, zpp_pong,
						zpp_fini };

static int
zst_setup(void *ctx, int party, int is_producer)
{
	return z_setup((struct zctx *)ctx, party);
}

static void
zst_fini(void *ctx, int party, int is_producer)
{
	z_fini((struct zctx *)ctx);
}

static int
zst_produce(void *ctx, int i, long n)
{
	struct zctx *z = (struct zctx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		memcpy(z->buf, &z->seq, sizeof(z->seq));
		z->seq++;
		if (z_send(z) != 0)
			return -1;
	}
	return 0;
}

static int
zst_consume(void *ctx, int i, long n)
{
	struct zctx *z = (struct zctx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		if (z_recv(z) != 0)
			return -1;
	}
	return 0;
}

static const struct bench_stream_ops zmq_st_ops = { zst_setup, zst_produce,
						    zst_consume, zst_fini };

static void
zmq_case_begin(struct zctx *z, size_t len, int pair, int free_io)
{
	static int n;

	memset(z, 0, sizeof(*z));
	z->len = len;
	z->pair = pair;
	z->free_io = free_io;
	snprintf(zmq_path, sizeof(zmq_path), "/tmp/shk-bench-zmq-%d-%d",
		 (int)getpid(), n++);
	snprintf(z->ep, sizeof(z->ep), "ipc://%s", zmq_path);
}

static void
zmq_case_end(void)
{
	unlink(zmq_path); /* ZeroMQ removes it on close; this is the backup */
	zmq_path[0] = '\0';
}

static int
zmq_pingpong(int free_io, long n, struct bench_lat *out)
{
	struct zctx z;
	int rc;

	zmq_case_begin(&z, PP_LEN, 1, free_io);
	rc = bench_pingpong(&zmq_pp_ops, &z, n, out);
	zmq_case_end();
	return rc;
}

static int
zmq_stream(size_t len, int free_io, long count, double *rate)
{
	struct zctx z;
	int rc;

	zmq_case_begin(&z, len, 0, free_io);
	rc = bench_stream(&zmq_st_ops, &z, 1, 1, 0, count, rate);
	zmq_case_end();
	return rc;
}

/* ---- iceoryx ---- */

static char iox_skip[256]; /* why the iceoryx cases do not run, or "" */

#ifdef SHK_BENCH_IOX

/*
 * RouDi's memory: one segment with a 128-byte pool (a 64 B payload plus
 * the chunk header) and a 2 KiB pool (1 KiB), 4096 and 1024 chunks: more
 * than the most a case has out at once (a subscriber queue of 256, the
 * chunks each side holds).  RouDi's built-in default reserves about
 * 140 MB of /dev/shm.
 */
static const char roudi_toml[] =
	"[general]\nversion = 1\n\n[[segment]]\n\n"
	"[[segment.mempool]]\nsize = 128\ncount = 4096\n\n"
	"[[segment.mempool]]\nsize = 2048\ncount = 1024\n";

/* RouDi's well-known Unix socket in iceoryx 2.0 (IPC channel "roudi"). */
#define ROUDI_SOCK "/tmp/roudi"

/* 1 when a process is bound to RouDi's socket (a RouDi is running). */
static int
roudi_answers(void)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	strcpy(a.sun_path, ROUDI_SOCK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* The executable for `name` on $PATH (into out), or -1. */
static int
find_exe(const char *name, char *out, size_t cap)
{
	const char *p = getenv("PATH");
	int w;

	if (strchr(name, '/')) {
		w = snprintf(out, cap, "%s", name);
		return w > 0 && (size_t)w < cap && access(out, X_OK) == 0 ? 0
									  : -1;
	}
	while (p && *p) {
		size_t n = strcspn(p, ":");

		w = snprintf(out, cap, "%.*s/%s", n ? (int)n : 1, n ? p : ".",
			     name);
		if (w > 0 && (size_t)w < cap && access(out, X_OK) == 0)
			return 0;
		p += n;
		if (*p == ':')
			p++;
	}
	return -1;
}

/*
 * The files a RouDi leaves when it dies without cleaning up: its shared
 * memory (the management segment, and the payload segment named after
 * the group) and its socket and lock files.  Set before RouDi starts, so
 * that the signal handler needs no lookups.
 */
static char roudi_files[5][160];

static void
roudi_files_init(void)
{
	struct group *g = getgrgid(getegid());

	snprintf(roudi_files[0], sizeof(roudi_files[0]),
		 "/dev/shm/iceoryx_mgmt");
	snprintf(roudi_files[1], sizeof(roudi_files[1]), "/dev/shm/%s",
		 g ? g->gr_name : "root");
	snprintf(roudi_files[2], sizeof(roudi_files[2]), "%s", ROUDI_SOCK);
	snprintf(roudi_files[3], sizeof(roudi_files[3]), "%s.lock", ROUDI_SOCK);
	snprintf(roudi_files[4], sizeof(roudi_files[4]),
		 "/tmp/iox-unique-roudi.lock");
}

/*
 * Stops the RouDi this process started: SIGTERM, up to 10 s, then
 * SIGKILL.  When it did not exit cleanly (RouDi 2.0 aborts at shutdown
 * when an application died registered), removes its files: ours held
 * RouDi's lock, so they are ours.  1 when it exited cleanly.  Only
 * async-signal-safe calls (the signal handler uses it).
 */
static int
roudi_reap(void)
{
	struct timespec ms10 = { 0, 10000000 };
	pid_t pid = roudi_pid, r = 0;
	int st = 0, i, clean;
	size_t k;

	if (pid <= 0)
		return 1;
	kill(pid, SIGTERM);
	for (i = 0; i < 1000; i++) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			break;
		nanosleep(&ms10, NULL);
	}
	if (r != pid) {
		kill(pid, SIGKILL);
		while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
			;
	}
	roudi_pid = 0;
	clean = r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	for (k = 0; !clean && k < sizeof(roudi_files) / sizeof(roudi_files[0]);
	     k++)
		unlink(roudi_files[k]);
	return clean;
}

static void
roudi_stop(void)
{
	if (roudi_pid <= 0)
		return;
	if (!roudi_reap())
		printf("# iceoryx: RouDi did not exit cleanly; its files in "
		       "/dev/shm and /tmp were removed\n");
	if (access(roudi_files[0], F_OK) == 0)
		printf("# iceoryx: %s is still there\n", roudi_files[0]);
}

/*
 * Starts iox-roudi with roudi_toml and waits until it answers; 0, or -1
 * with the reason in iox_skip.  Its output goes to a temporary log, shown
 * when it fails to start.
 */
static int
roudi_start(void)
{
	char exe[512], cfg[] = "/tmp/shk-bench-roudi-XXXXXX",
		       log[] = "/tmp/shk-bench-roudi-log-XXXXXX";
	const char *env = getenv("SHK_BENCH_ROUDI");
	int cfd, lfd, i, st;
	pid_t pid;

	if (find_exe(env && *env ? env : "iox-roudi", exe, sizeof(exe)) != 0) {
		if (env && *env)
			snprintf(iox_skip, sizeof(iox_skip),
				 "SHK_BENCH_ROUDI=%.120s is not executable",
				 env);
		else
			snprintf(iox_skip, sizeof(iox_skip),
				 "no iox-roudi on PATH (Debian package "
				 "iceoryx)");
		return -1;
	}
	if (roudi_answers()) {
		snprintf(iox_skip, sizeof(iox_skip),
			 "a RouDi not started by this benchmark is running "
			 "(%s answers); it is left alone",
			 ROUDI_SOCK);
		return -1;
	}
	cfd = mkstemp(cfg);
	if (cfd < 0) {
		snprintf(iox_skip, sizeof(iox_skip), "mkstemp: %s",
			 strerror(errno));
		return -1;
	}
	lfd = mkstemp(log);
	if (lfd < 0 || write(cfd, roudi_toml, sizeof(roudi_toml) - 1) !=
			       (ssize_t)(sizeof(roudi_toml) - 1)) {
		snprintf(iox_skip, sizeof(iox_skip), "temporary files: %s",
			 strerror(errno));
		close(cfd);
		unlink(cfg);
		if (lfd >= 0) {
			close(lfd);
			unlink(log);
		}
		return -1;
	}
	close(cfd);
	roudi_files_init();
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		dup2(lfd, 1);
		dup2(lfd, 2);
		execl(exe, "iox-roudi", "-c", cfg, "-l", "warning",
		      (char *)NULL);
		_exit(127);
	}
	if (pid < 0) {
		snprintf(iox_skip, sizeof(iox_skip), "fork: %s",
			 strerror(errno));
		close(lfd);
		unlink(log);
		unlink(cfg);
		return -1;
	}
	roudi_pid = pid;
	roudi_owner = getpid();
	/* ready when it answers on its socket; give it 10 s */
	for (i = 0; i < 1000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			roudi_pid = pid = 0;
			break;
		}
		if (roudi_answers())
			break;
		usleep(10000);
	}
	unlink(cfg);
	if (pid > 0 && i < 1000) {
		close(lfd);
		unlink(log);
		return 0;
	}
	{
		char tail[160] = "";
		off_t end = lseek(lfd, 0, SEEK_END);
		ssize_t r;
		char *nl;

		if (end > 0) {
			off_t at = end > (off_t)sizeof(tail) - 1
					   ? end - (off_t)sizeof(tail) + 1
					   : 0;
			r = pread(lfd, tail, sizeof(tail) - 1, at);
			tail[r > 0 ? r : 0] = '\0';
		}
		while ((nl = strchr(tail, '\n')) != NULL)
			*nl = ' ';
		snprintf(iox_skip, sizeof(iox_skip), "iox-roudi %s%s%.100s",
			 pid > 0 ? "did not answer within 10 s"
				 : "exited at start",
			 tail[0] ? "; its log ends: " : "", tail);
	}
	close(lfd);
	unlink(log);
	roudi_stop();
	return -1;
}

/*
 * Each party registers its own iceoryx runtime (named after its pid)
 * after the fork; a runtime does not survive fork and each process may
 * have one.  A runtime deregisters from RouDi in its static destructor,
 * so a party must leave through exit(), not _exit(): the case runs in a
 * process forked for it (party 0, which exits when the case is done), and
 * party 1 exits from its fini.  The top process never registers, so
 * RouDi's shutdown (which signals every registered process) finds no one.
 */
struct ictx {
	char inst[64]; /* the case's instance name; service "shkbench" */
	size_t len;
	int pp; /* ping-pong: a publisher and a subscriber on each side */
	iox_pub_storage_t pst;
	iox_sub_storage_t sst;
	iox_pub_t pub;
	iox_sub_t sub;
	uint64_t seq;
};

static int
i_setup(struct ictx *c, int side)
{
	char name[64];
	int64_t limit = bench_now_ns() + (int64_t)10 * 1000000000;

	snprintf(name, sizeof(name), "shkbench-%d", (int)getpid());
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(name);
	if (c->pp || side == 0) {
		iox_pub_options_t o;

		iox_pub_options_init(&o);
		o.historyCapacity = 0;
		/* no loss: a full subscriber queue makes publish wait */
		o.subscriberTooSlowPolicy =
			ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
		c->pub = iox_pub_init(&c->pst, "shkbench", c->inst,
				      side == 0 ? "ab" : "ba", &o);
	}
	if (c->pp || side == 1) {
		iox_sub_options_t o;

		iox_sub_options_init(&o);
		o.queueCapacity = 256; /* iceoryx 2.0's maximum */
		o.historyRequest = 0;
		o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
		c->sub = iox_sub_init(&c->sst, "shkbench", c->inst,
				      side == 0 ? "ba" : "ab", &o);
	}
	/* RouDi connects publishers and subscribers in its discovery loop */
	while ((c->pub && !iox_pub_has_subscribers(c->pub)) ||
	       (c->sub && iox_sub_get_subscription_state(c->sub) !=
				  SubscribeState_SUBSCRIBED)) {
		if (bench_now_ns() > limit || bench_aborted()) {
			fprintf(stderr, "bench_peers: iceoryx: no match "
					"within 10 s\n");
			return -1;
		}
		usleep(1000);
	}
	return 0;
}

static void
i_fini(struct ictx *c, int side)
{
	if (c->sub)
		iox_sub_deinit(c->sub);
	if (c->pub)
		iox_pub_deinit(c->pub);
	c->sub = NULL;
	c->pub = NULL;
	if (side != 0) {
		/* the failure word is set before fini when anything failed */
		fflush(stdout);
		exit(bench_aborted() ? 1 : 0);
	}
}

/* Loans a chunk, writes num into it in place and publishes it. */
static int
i_send(struct ictx *c, uint64_t num)
{
	enum iox_AllocationResult r;
	void *p;

	r = iox_pub_loan_chunk(c->pub, &p, (uint32_t)c->len);
	if (r != AllocationResult_SUCCESS) {
		fprintf(stderr, "bench_peers: iceoryx: loan failed (%d)\n",
			(int)r);
		return -1;
	}
	memcpy(p, &num, sizeof(num));
	iox_pub_publish_chunk(c->pub, p);
	return 0;
}

/* Takes one chunk (busy-poll), checks its number in place, releases it. */
static int
i_recv(struct ictx *c)
{
	enum iox_ChunkReceiveResult r;
	unsigned spins = 0;
	const void *p;
	uint64_t got;

	while ((r = iox_sub_take_chunk(c->sub, &p)) ==
	       ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
		if (bench_backoff(&spins) != 0)
			return -1;
	}
	if (r != ChunkReceiveResult_SUCCESS) {
		fprintf(stderr, "bench_peers: iceoryx: take failed (%d)\n",
			(int)r);
		return -1;
	}
	memcpy(&got, p, sizeof(got));
	iox_sub_release_chunk(c->sub, p);
	return got == c->seq++ ? 0 : -1;
}

static int
ipp_setup(void *ctx, int side)
{
	return i_setup((struct ictx *)ctx, side);
}

static void
ipp_fini(void *ctx, int side)
{
	i_fini((struct ictx *)ctx, side);
}

static int
ipp_ping(void *ctx, long n, double *rtt_ns)
{
	struct ictx *c = (struct ictx *)ctx;
	int64_t t0 = bench_now_ns(), t1;
	long i;

	for (i = 0; i < n; i++) {
		if (i_send(c, c->seq) != 0 || i_recv(c) != 0)
			return -1;
		t1 = bench_now_ns();
		rtt_ns[i] = (double)(t1 - t0);
		t0 = t1;
	}
	return 0;
}

static int
ipp_pong(void *ctx, long n)
{
	struct ictx *c = (struct ictx *)ctx;
	long i;

	for (i = 0; i < n; i++) {
		/* i_recv checked and counted the number; send it back */
		if (i_recv(c) != 0 || i_send(c, c->seq - 1) != 0)
			return -1;
	}
	return 0;
}

static const struct bench_pp_ops iox_pp_ops = { ipp_setup, ipp_ping, ipp_pong,
						ipp_fini };

static int
ist_setup(void *ctx, int party, int is_producer)
{
	return i_setup((struct ictx *)ctx, party);
}

static void
ist_fini(void *ctx, int party, int is_producer)
{
	i_fini((struct ictx *)ctx, party);
}

static int
ist_produce(void *ctx, int i, long n)
{
	struct ictx *c = (struct ictx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		if (i_send(c, c->seq++) != 0)
			return -1;
	}
	return 0;
}

static int
ist_consume(void *ctx, int i, long n)
{
	struct ictx *c = (struct ictx *)ctx;
	long k;

	for (k = 0; k < n; k++) {
		if (i_recv(c) != 0)
			return -1;
	}
	/* nothing may have been dropped (the policies forbid it) */
	return iox_sub_has_lost_chunks(c->sub) ? -1 : 0;
}

static const struct bench_stream_ops iox_st_ops = { ist_setup, ist_produce,
						    ist_consume, ist_fini };

struct iox_result {
	int rc;
	double rate;
	struct bench_lat lat;
};

/*
 * Runs one iceoryx case in a process forked for it (see struct ictx);
 * pp: ping-pong of n round trips into *lat, else a stream of n records of
 * len bytes into *rate.  0 or -1.
 */
static int
iox_case(int pp, size_t len, long n, double *rate, struct bench_lat *lat)
{
	static int seq;
	struct iox_result *res;
	struct ictx c;
	pid_t pid;
	int st, rc = -1;

	res = (struct iox_result *)bench_shm_alloc(sizeof(*res));
	if (!res)
		return -1;
	memset(&c, 0, sizeof(c));
	c.len = len;
	c.pp = pp;
	snprintf(c.inst, sizeof(c.inst), "c%d_%d", (int)getpid(), seq++);
	res->rc = -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		roudi_pid = 0; /* the top process owns RouDi */
		if (pp)
			res->rc = bench_pingpong(&iox_pp_ops, &c, n, &res->lat);
		else
			res->rc = bench_stream(&iox_st_ops, &c, 1, 1, 0, n,
					       &res->rate);
		fflush(stdout);
		exit(res->rc == 0 ? 0 : 1); /* deregisters the runtime */
	}
	if (pid > 0) {
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && res->rc == 0) {
			rc = 0;
			if (rate)
				*rate = res->rate;
			if (lat)
				*lat = res->lat;
		}
	}
	bench_shm_free(res, sizeof(*res));
	return rc;
}

static void
iox_begin(void)
{
	const char *e = getenv("SHK_BENCH_IOX");

	if (e && strcmp(e, "0") == 0) {
		snprintf(iox_skip, sizeof(iox_skip), "SHK_BENCH_IOX=0");
		return;
	}
	if (roudi_start() == 0)
		printf("# iceoryx: started iox-roudi (pid %d)\n",
		       (int)roudi_pid);
}

static void
iox_end(void)
{
	if (roudi_pid > 0) {
		roudi_stop();
		printf("# iceoryx: stopped iox-roudi\n");
	}
}

#else /* !SHK_BENCH_IOX */

static int
roudi_reap(void)
{
	return 1; /* never started */
}

static int
iox_case(int pp, size_t len, long n, double *rate, struct bench_lat *lat)
{
	return -1;
}

static void
iox_begin(void)
{
	snprintf(iox_skip, sizeof(iox_skip),
		 "built without the iceoryx C binding (Debian iceoryx, "
		 "libiceoryx-binding-c-dev; make bench installs them)");
}

static void
iox_end(void)
{
}

#endif /* SHK_BENCH_IOX */

/* ---- the comparisons ---- */

static void
spread(const char *what, const double *v, int rounds, const char *unit,
       double scale)
{
	double lo = v[0], hi = v[0];
	int r;

	for (r = 1; r < rounds; r++) {
		if (v[r] < lo)
			lo = v[r];
		if (v[r] > hi)
			hi = v[r];
	}
	printf("   spread %-50s %10.2f .. %-10.2f %s over %d rounds\n", what,
	       lo * scale, hi * scale, unit, rounds);
}

enum { L_RING_POLL, L_IOX_POLL, L_RING_BLOCK, L_ZMQ, L_ZMQ_FREE, L_UDS, L_N };

static const char *const lat_what[L_N] = {
	"ring busy-poll one-way 64 B",
	"iceoryx pub/sub busy-poll",
	"ring blocking one-way 64 B",
	"ZeroMQ ipc PAIR",
	"ZeroMQ ipc PAIR, I/O threads unpinned",
	"unix socket ping-pong 64 B",
};

static int
lat_run(int k, long n, struct bench_lat *out)
{
	switch (k) {
	case L_RING_POLL:
		return ring_pp_checked(0, n, out);
	case L_IOX_POLL:
		return iox_case(1, PP_LEN, n, NULL, out);
	case L_RING_BLOCK:
		return ring_pp_checked(SHK_FOREVER, n, out);
	case L_ZMQ:
	case L_ZMQ_FREE:
		return zmq_pingpong(k == L_ZMQ_FREE, n, out);
	default:
		return base_uds_pingpong(PP_LEN, n, out);
	}
}

static void
lat_pair(const char *pct, int ring, int peer, const double *rv,
	 const double *pv)
{
	char name[96], base[96];

	snprintf(name, sizeof(name), "%s %s", lat_what[ring], pct);
	snprintf(base, sizeof(base), "%s %s", lat_what[peer], pct);
	bench_row("peers", name, rv[ring], "ns", base, pv[peer]);
}

static void
latency(void)
{
	double p50[L_N][MAX_ROUNDS], p99[L_N][MAX_ROUNDS], m50[L_N], m99[L_N];
	int failed[L_N] = { 0 }, rounds = bench_runs(), r, k, rc;
	long n_poll = bench_scale(10000), n_block = bench_scale(2000);
	static const int pairs[][2] = { { L_RING_POLL, L_IOX_POLL },
					{ L_RING_BLOCK, L_ZMQ },
					{ L_RING_BLOCK, L_ZMQ_FREE },
					{ L_RING_BLOCK, L_UDS } };
	struct bench_lat x;
	size_t i;

	if (iox_skip[0])
		failed[L_IOX_POLL] = 2; /* skipped, not failed */
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < L_N; k++) {
			if (failed[k])
				continue;
			rc = lat_run(k, k < L_RING_BLOCK ? n_poll : n_block,
				     &x);
			if (rc != 0) {
				fail_rc(lat_what[k], rc);
				failed[k] = 1;
				continue;
			}
			p50[k][r] = x.p50_ns;
			p99[k][r] = x.p99_ns;
		}
	}
	for (k = 0; k < L_N; k++) {
		if (failed[k])
			continue;
		spread(lat_what[k], p50[k], rounds, "ns p50", 1);
		spread(lat_what[k], p99[k], rounds, "ns p99", 1);
		m50[k] = bench_median(p50[k], (size_t)rounds);
		m99[k] = bench_median(p99[k], (size_t)rounds);
	}
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		int a = pairs[i][0], b = pairs[i][1];

		if (failed[a] || failed[b])
			continue;
		lat_pair("p50", a, b, m50, m50);
		lat_pair("p99", a, b, m99, m99);
	}
	if (iox_skip[0])
		skip_row("iceoryx latency", iox_skip);
}

enum { T_RING, T_ZC, T_ZMQ, T_ZMQ_FREE, T_IOX, T_UDS, T_N };

static const char *const tput_what[T_N] = {
	"ring throughput",      "ring throughput zero-copy",
	"ZeroMQ ipc PUSH/PULL", "ZeroMQ ipc PUSH/PULL, I/O threads unpinned",
	"iceoryx pub/sub",      "unix socket",
};

static int
tput_run(int k, size_t len, double *rate)
{
	switch (k) {
	case T_RING:
		return ring_stream(&ring_st_ops, len, 0,
				   stream_count(len, 500000, 256u << 20), rate);
	case T_ZC:
		return ring_stream(&ring_zc_ops, len, 0,
				   stream_count(len, 500000, 256u << 20), rate);
	case T_ZMQ:
	case T_ZMQ_FREE:
		return zmq_stream(len, k == T_ZMQ_FREE,
				  stream_count(len, 200000, 64u << 20), rate);
	case T_IOX:
		return iox_case(0, len, stream_count(len, 50000, 64u << 20),
				rate, NULL);
	default:
		return base_uds_stream(len, stream_count(len, 30000, 64u << 20),
				       rate);
	}
}

static void
throughput(void)
{
	static const int pairs[][2] = {
		{ T_RING, T_ZMQ },    { T_ZC, T_ZMQ },   { T_RING, T_ZMQ_FREE },
		{ T_ZC, T_ZMQ_FREE }, { T_RING, T_IOX }, { T_ZC, T_IOX },
		{ T_RING, T_UDS },
	};
	size_t s, i;

	for (s = 0; s < sizeof(rec_sizes) / sizeof(rec_sizes[0]); s++) {
		size_t len = rec_sizes[s];
		double runs[T_N][MAX_ROUNDS], med[T_N];
		int failed[T_N] = { 0 }, rounds = bench_runs(), r, k, rc;
		char sz[32], name[96], base[96];

		bench_size_str(len, sz, sizeof(sz));
		if (iox_skip[0])
			failed[T_IOX] = 2; /* skipped, not failed */
		for (r = 0; r < rounds; r++) {
			for (k = 0; k < T_N; k++) {
				if (failed[k])
					continue;
				rc = tput_run(k, len, &runs[k][r]);
				if (rc != 0) {
					snprintf(name, sizeof(name), "%s %s",
						 tput_what[k], sz);
					fail_rc(name, rc);
					failed[k] = 1;
				}
			}
		}
		for (k = 0; k < T_N; k++) {
			if (failed[k])
				continue;
			snprintf(name, sizeof(name), "%s %s", tput_what[k], sz);
			spread(name, runs[k], rounds, "Mmsg/s", 1e-6);
			med[k] = bench_median(runs[k], (size_t)rounds);
		}
		for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
			int a = pairs[i][0], b = pairs[i][1];

			if (failed[a] || failed[b])
				continue;
			snprintf(name, sizeof(name), "%s %s", tput_what[a], sz);
			snprintf(base, sizeof(base), "%s %s", tput_what[b], sz);
			bench_rate_row("peers", name, len, med[a], base,
				       med[b]);
		}
		if (iox_skip[0]) {
			snprintf(name, sizeof(name), "iceoryx throughput %s",
				 sz);
			skip_row(name, iox_skip);
		}
	}
}

int
main(void)
{
	struct sigaction sa;
	int major, minor, patch;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL); /* stdout piped into `head` */
	bench_runs_each = 1;           /* the rounds alternate the cases */
	zmq_version(&major, &minor, &patch);
	printf("# ring vs ZeroMQ %d.%d.%d ipc:// and iceoryx, two pinned "
	       "processes (%d CPUs), median of %d alternating rounds\n",
	       major, minor, patch, bench_ncpus(), bench_runs());
	iox_begin();
	if (iox_skip[0])
		printf("# iceoryx: skipped: %s\n", iox_skip);
	latency();
	throughput();
	iox_end();
	return failures ? 1 : 0;
}
