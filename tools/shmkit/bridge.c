/*
 * bridge.c - `shmkit bridge ADDR ENDPOINT`: forwards the messages of a
 * shmkit channel to and from a ZeroMQ socket, so that processes on other
 * hosts (directly through libzmq, or through a second bridge in front of
 * their own channel) take part in it over TCP.
 *
 * One thread, one loop: take what is ready on each side without blocking
 * (shk_chan_recv / zmq_msg_recv with timeout 0), hand it to the other side
 * without blocking, and when neither moved, sleep in zmq_poll on the
 * ZeroMQ socket and the channel's pollable descriptor.  A message one side
 * gave and the other did not take yet (ZeroMQ's queue or the channel is
 * full) is held, and its side is not read again until it is taken: flow
 * control passes through, and nothing is dropped on the way except what
 * the patterns themselves drop (ZeroMQ PUB with no subscriber or a slow
 * one, a lossy shmkit subscriber) and messages the other side cannot
 * carry (longer than the channel's max_msg: counted, reported once).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cli.h"

static volatile sig_atomic_t stop_sig, stop_count;

static void
on_stop(int sig)
{
	stop_sig = sig;
	stop_count++; /* a second signal cuts the linger short */
}

#define LINGER_MAX_S 86400.0 /* --linger: at most a day, or forever */

/* --max-frame's default: 64 MiB, well above the channels' default max_msg
 * (1 MiB), so that a frame somewhat too long for the channel is still read,
 * dropped and counted, while a peer cannot make us allocate without bound
 * (security audit, 2026-11-25) */
#define DEFAULT_MAX_FRAME ((int64_t)64 << 20)

struct bridge {
	int pattern;     /* SHK_CHAN_* */
	int out, in;     /* directions that run: shm -> zmq, zmq -> shm */
	shk_chan *c_out; /* the channel handle we receive from */
	shk_chan *c_in;  /* the channel handle we send to */
	void *zctx, *zsock;
	shk_msg *held_out; /* taken from the channel, not yet by ZeroMQ */
	zmq_msg_t held_in; /* taken from ZeroMQ, not yet by the channel */
	int have_in;
	int out_blocked; /* ZeroMQ would not take a message just now */
	uint64_t n_out, n_in, too_big, corrupt, count;
	int linger_ms;     /* after a stop signal; -1 forever */
	int64_t max_frame; /* ZMQ_MAXMSGSIZE: -1 no limit */
	const char *addr, *ep;
};

/* Stopped by a signal, or --count messages forwarded. */
static int
done(const struct bridge *b)
{
	return stop_sig || (b->count && b->n_out + b->n_in >= b->count);
}

/* No new message may be taken from either side: stopped, or the messages
 * forwarded and held reach --count (a held one is forwarded before the
 * bridge stops, so counting it when it is taken makes exactly N go
 * through, whichever direction each of them takes). */
static int
full_count(const struct bridge *b)
{
	return stop_sig ||
	       (b->count &&
		b->n_out + b->n_in + !!b->held_out + b->have_in >= b->count);
}

/* shm -> zmq: up to 64 messages; 1 if one moved, 0 if none, -1 on error */
static int
pump_out(struct bridge *b)
{
	int k, rc, moved = 0;

	b->out_blocked = 0;
	for (k = 0; k < 64 && !done(b); k++) {
		if (!b->held_out) {
			int ev = 0;
			size_t evlen = sizeof(ev);

			if (full_count(b))
				break;

			/* take a message only when ZeroMQ would take it
			 * now, so that one is rarely held (and lost if we
			 * are stopped then) */
			if (zmq_getsockopt(b->zsock, ZMQ_EVENTS, &ev, &evlen) ==
				    0 &&
			    !(ev & ZMQ_POLLOUT)) {
				b->out_blocked = 1;
				break;
			}
			rc = shk_chan_recv(b->c_out, &b->held_out, 0);
			if (rc == SHK_EAGAIN)
				break; /* also arms the channel's fd */
			if (rc == SHK_ECORRUPT) {
				/* dropped by the channel, which goes on */
				if (b->corrupt++ == 0)
					cli_error(b->addr, rc);
				continue;
			}
			if (rc < 0) {
				cli_error(b->addr, rc);
				return -1;
			}
		}
		if (zmq_send(b->zsock, shk_msg_data(b->held_out),
			     shk_msg_len(b->held_out), ZMQ_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				/* held: ZeroMQ's queue is full */
				b->out_blocked = 1;
				break;
			}
			cli_errorf("%s: %s", b->ep, zmq_strerror(errno));
			return -1;
		}
		shk_msg_release(b->held_out);
		b->held_out = NULL;
		b->n_out++;
		moved = 1;
	}
	return moved;
}

/* zmq -> shm: as pump_out */
static int
pump_in(struct bridge *b)
{
	int k, rc, moved = 0;

	for (k = 0; k < 64 && !done(b); k++) {
		if (!b->have_in) {
			if (full_count(b))
				break;
			zmq_msg_init(&b->held_in);
			if (zmq_msg_recv(&b->held_in, b->zsock, ZMQ_DONTWAIT) <
			    0) {
				int e = errno;

				zmq_msg_close(&b->held_in);
				if (e == EAGAIN || e == EINTR)
					break;
				cli_errorf("%s: %s", b->ep, zmq_strerror(e));
				return -1;
			}
			b->have_in = 1;
		}
		rc = shk_chan_send(b->c_in, zmq_msg_data(&b->held_in),
				   zmq_msg_size(&b->held_in), 0);
		if (rc == SHK_ENOMEM)
			/* the heap is full now, or could never hold it: a
			 * short wait tells them apart (a message no empty
			 * heap could hold is SHK_ENOMEM at once, one that
			 * waits for room SHK_ETIMEDOUT) */
			rc = shk_chan_send(b->c_in, zmq_msg_data(&b->held_in),
					   zmq_msg_size(&b->held_in), 1000000);
		if (rc == SHK_EAGAIN || rc == SHK_ETIMEDOUT)
			break; /* held: the channel or its heap is full */
		if (rc == SHK_EMSGSIZE || rc == SHK_ENOMEM) {
			if (b->too_big++ == 0)
				cli_errorf("%s: a %zu-byte message is longer "
					   "than the channel's max_msg or "
					   "than its heap can hold: dropped "
					   "(counted at exit)",
					   b->ep, zmq_msg_size(&b->held_in));
		} else if (rc < 0) {
			cli_error(b->addr, rc);
			return -1;
		} else {
			b->n_in++;
		}
		zmq_msg_close(&b->held_in);
		b->have_in = 0;
		moved = 1;
	}
	return moved;
}

/* Sleeps until a side may move, at most 200 ms (1 ms while the channel or
 * its heap is full: there is no descriptor for space). */
static int
wait_sides(struct bridge *b)
{
	zmq_pollitem_t it[2];
	int n = 1, fd, take = !full_count(b);

	memset(it, 0, sizeof(it));
	it[0].socket = b->zsock;
	/* a side we may not take from is not waited on: its message would
	 * wake us at once, again and again */
	if (b->in && !b->have_in && take)
		it[0].events |= ZMQ_POLLIN;
	if (b->out && b->out_blocked)
		it[0].events |= ZMQ_POLLOUT;
	else if (b->out && take) {
		/* pump_out's last shk_chan_recv found nothing: armed */
		fd = shk_chan_fd(b->c_out);
		if (fd < 0) {
			cli_error(b->addr, fd);
			return -1;
		}
		it[1].fd = fd;
		it[1].events = ZMQ_POLLIN;
		n = 2;
	}
	if (zmq_poll(it, n, b->have_in ? 1 : 200) < 0 && errno != EINTR) {
		cli_errorf("zmq_poll: %s", zmq_strerror(errno));
		return -1;
	}
	return 0;
}

static int64_t
now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Stopped by a signal: keeps offering what it holds to the side that
 * should take it, in slices of 100 ms, for --linger (default 1 s; -1
 * forever) or until a second signal.  What is still held then is named
 * in the last line.  The linger is measured on the monotonic clock: a
 * slice in which both sides are offered something lasts 100 ms in all,
 * and one whose offers fail at once is slept out (counting slices made
 * the first last twice as long and the second end at once).
 */
static void
flush_held(struct bridge *b)
{
	int64_t end =
		b->linger_ms < 0 ? INT64_MAX : now_mono_ms() + b->linger_ms;
	int64_t now, slice_end;

	while ((b->have_in || b->held_out) && stop_count < 2 &&
	       (now = now_mono_ms()) < end) {
		slice_end = end - now > 100 ? now + 100 : end;
		if (b->have_in) {
			int rc = shk_chan_send(b->c_in,
					       zmq_msg_data(&b->held_in),
					       zmq_msg_size(&b->held_in),
					       (slice_end - now) * 1000000);
			if (rc == 0) {
				b->n_in++;
				zmq_msg_close(&b->held_in);
				b->have_in = 0;
			} else if (rc != SHK_EAGAIN && rc != SHK_ETIMEDOUT &&
				   rc != SHK_ENOMEM) {
				cli_error(b->addr, rc);
				break;
			}
		}
		now = now_mono_ms();
		if (b->held_out) {
			int zms = now < slice_end ? (int)(slice_end - now) : 0;

			zmq_setsockopt(b->zsock, ZMQ_SNDTIMEO, &zms,
				       sizeof(zms));
			if (zmq_send(b->zsock, shk_msg_data(b->held_out),
				     shk_msg_len(b->held_out), 0) >= 0) {
				shk_msg_release(b->held_out);
				b->held_out = NULL;
				b->n_out++;
			}
		}
		/* an offer that failed at once: wait out the slice (a
		 * signal ends the wait; a second one ends the linger) */
		now = now_mono_ms();
		if ((b->have_in || b->held_out) && now < slice_end)
			poll(NULL, 0, (int)(slice_end - now));
	}
}

/* --linger SECONDS|forever: 0 .. LINGER_MAX_S (cli_parse_seconds) */
static int
parse_linger(const char *s, int *ms)
{
	double v;

	if (!strcmp(s, "forever")) {
		*ms = -1;
		return 0;
	}
	if (cli_parse_seconds(s, 0, LINGER_MAX_S, &v) != 0)
		return -1;
	*ms = (int)(v * 1000 + 0.5);
	return 0;
}

static int
parse_pattern(const char *s, int *p)
{
	if (!strcmp(s, "pair"))
		*p = SHK_CHAN_PAIR;
	else if (!strcmp(s, "pubsub"))
		*p = SHK_CHAN_PUBSUB;
	else if (!strcmp(s, "pushpull"))
		*p = SHK_CHAN_PUSHPULL;
	else
		return -1;
	return 0;
}

static const char *
pattern_name(int p)
{
	return p == SHK_CHAN_PAIR
		       ? "pair"
		       : (p == SHK_CHAN_PUBSUB ? "pubsub" : "pushpull");
}

/* The channel role and ZeroMQ socket type for a pattern and direction. */
static void
roles(const struct bridge *b, int end_b, int *role, int *ztype)
{
	switch (b->pattern) {
	case SHK_CHAN_PAIR:
		*role = end_b ? SHK_CHAN_B : SHK_CHAN_A;
		*ztype = ZMQ_PAIR;
		break;
	case SHK_CHAN_PUBSUB:
		*role = b->out ? SHK_CHAN_SUB : SHK_CHAN_PUB;
		*ztype = b->out ? ZMQ_PUB : ZMQ_SUB;
		break;
	default:
		*role = b->out ? SHK_CHAN_PULL : SHK_CHAN_PUSH;
		*ztype = b->out ? ZMQ_PUSH : ZMQ_PULL;
	}
}

static int
open_zmq(struct bridge *b, int ztype, int bind, char *last, size_t last_len)
{
	int linger = b->linger_ms; /* what ZeroMQ still holds at exit */
	size_t len = last_len;

	b->zctx = zmq_ctx_new();
	if (!b->zctx) {
		cli_errorf("zmq_ctx_new: %s", zmq_strerror(errno));
		return -1;
	}
	b->zsock = zmq_socket(b->zctx, ztype);
	if (!b->zsock) {
		cli_errorf("zmq_socket: %s", zmq_strerror(errno));
		return -1;
	}
	zmq_setsockopt(b->zsock, ZMQ_LINGER, &linger, sizeof(linger));
	/* before bind/connect, which copy the options into each connection:
	 * a peer sending a longer frame is disconnected by ZeroMQ before the
	 * frame is allocated, so a remote peer cannot make the bridge hold
	 * more than this per message */
	if (zmq_setsockopt(b->zsock, ZMQ_MAXMSGSIZE, &b->max_frame,
			   sizeof(b->max_frame)) < 0) {
		cli_errorf("ZMQ_MAXMSGSIZE: %s", zmq_strerror(errno));
		return -1;
	}
	if (ztype == ZMQ_SUB)
		zmq_setsockopt(b->zsock, ZMQ_SUBSCRIBE, "", 0);
	if ((bind ? zmq_bind(b->zsock, b->ep) : zmq_connect(b->zsock, b->ep)) <
	    0) {
		char ep[200];

		cli_printable(ep, sizeof(ep), b->ep);
		cli_errorf("%s %s: %s", bind ? "bind" : "connect", ep,
			   zmq_strerror(errno));
		return -1;
	}
	if (zmq_getsockopt(b->zsock, ZMQ_LAST_ENDPOINT, last, &len) < 0 ||
	    !last[0])
		cli_printable(last, last_len, b->ep);
	return 0;
}

static uint64_t
now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * After a setup step that follows the channel's open failed: removes the
 * segment again if this open created it (its creator is this process, at
 * or after t0_ns, the time just before the open) and nobody else has
 * attached to it since, so that a bridge that never ran leaves nothing
 * behind.  A segment that existed, or that someone else has joined, stays.
 */
static void
undo_create(struct bridge *b, uint64_t t0_ns)
{
	shk_seg_stats st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	if (shk_seg_info(shk_chan_seg(b->c_out ? b->c_out : b->c_in), &st) ||
	    st.creator_pid != (uint32_t)getpid() || st.created_ns < t0_ns ||
	    st.attached != 1)
		return;
	shk_seg_unlink(st.name, NULL); /* channels are POSIX segments */
}

/*
 * bridge ADDR ENDPOINT [--pattern pair|pubsub|pushpull] [--end a|b]
 *        [--out|--in] [--bind|--connect] [--count N] [--linger S]
 *        [--max-frame BYTES] [--mode OCTAL] [--any-owner].  See docs/cli.md.
 */
int
cmd_bridge(int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct bridge b;
	shk_chan_opts co = SHK_CHAN_OPTS_INIT;
	struct sigaction sa, old_sa[3];
	const char *pos[2] = { NULL, NULL }, *val;
	char last[256], addr[200];
	int i, m, npos = 0, bind = 1, end_b = 1, role, ztype, rc = 0;
	int end_set = 0, bind_set = 0, sigs_set = 0;
	uint64_t t0_ns;

	memset(&b, 0, sizeof(b));
	b.pattern = SHK_CHAN_PAIR;
	b.linger_ms = 1000;
	b.max_frame = DEFAULT_MAX_FRAME;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (cli_is_help(a)) {
			return cli_cmd_help();
		} else if ((m = cli_opt_value(argc, argv, &i, "--pattern",
					      &val))) {
			if (m < 0 || parse_pattern(val, &b.pattern) != 0)
				return cli_usage_error(
					"bad --pattern (pair, pubsub or "
					"pushpull)");
		} else if ((m = cli_opt_value(argc, argv, &i, "--end", &val))) {
			if (m < 0 || (strcmp(val, "a") && strcmp(val, "b")))
				return cli_usage_error("bad --end (a or b)");
			end_b = val[0] == 'b';
			end_set = 1;
		} else if ((m = cli_opt_value(argc, argv, &i, "--count",
					      &val))) {
			if (m < 0 || cli_parse_u64(val, &b.count) != 0 ||
			    b.count == 0)
				return cli_usage_error("bad --count (N > 0)");
		} else if ((m = cli_opt_value(argc, argv, &i, "--linger",
					      &val))) {
			if (m < 0 || parse_linger(val, &b.linger_ms) != 0)
				return cli_usage_error(
					"bad --linger (seconds, 0 to 86400, "
					"or forever)");
		} else if ((m = cli_opt_value(argc, argv, &i, "--max-frame",
					      &val))) {
			uint64_t v;

			if (m < 0)
				return cli_usage_error("bad --max-frame");
			if (!strcmp(val, "unlimited"))
				b.max_frame = -1;
			else if (cli_parse_size(val, &v) != 0 || v == 0 ||
				 v > INT64_MAX)
				return cli_usage_error(
					"bad --max-frame (BYTES with an "
					"optional K, M or G suffix, or "
					"unlimited)");
			else
				b.max_frame = (int64_t)v;
		} else if ((m = cli_opt_value(argc, argv, &i, "--mode",
					      &val))) {
			if (m < 0 || cli_parse_mode(val, &co.seg_mode))
				return cli_usage_error("bad --mode (octal)");
		} else if (!strcmp(a, "--any-owner")) {
			co.flags |= SHK_ANY_OWNER;
		} else if (!strcmp(a, "--out")) {
			b.out = 1;
		} else if (!strcmp(a, "--in")) {
			b.in = 1;
		} else if (!strcmp(a, "--bind")) {
			bind_set |= 1;
		} else if (!strcmp(a, "--connect")) {
			bind_set |= 2;
		} else if (a[0] == '-' && a[1]) {
			return cli_usage_error("unknown option '%s'", a);
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			return cli_usage_error("unexpected argument '%s'", a);
		}
	}
	if (npos < 2)
		return cli_usage_error("usage: shmkit bridge shm://SEGMENT/"
				       "CHANNEL ENDPOINT [options]");
	if (bind_set == 3)
		return cli_usage_error("--bind and --connect cannot be used "
				       "together");
	bind = bind_set != 2;
	if (b.pattern == SHK_CHAN_PAIR) {
		if (b.out || b.in)
			return cli_usage_error("--out and --in are for pubsub "
					       "and pushpull (a pair bridge "
					       "runs both ways)");
		b.out = b.in = 1;
	} else {
		if (end_set)
			return cli_usage_error("--end is for pair");
		if (b.out && b.in)
			return cli_usage_error("--out and --in cannot be used "
					       "together (a %s bridge runs "
					       "one way)",
					       pattern_name(b.pattern));
		if (b.out == b.in)
			return cli_usage_error("%s needs one of --out "
					       "(channel to ZeroMQ) or --in "
					       "(ZeroMQ to channel)",
					       pattern_name(b.pattern));
	}
	b.addr = pos[0];
	b.ep = pos[1];
	cli_printable(addr, sizeof(addr), b.addr);
	roles(&b, end_b, &role, &ztype);

	/* the ZeroMQ socket first: it does not need the channel, and the
	 * channel's open may create the segment, which a bad endpoint must
	 * not leave behind */
	if (open_zmq(&b, ztype, bind, last, sizeof(last)) != 0) {
		rc = CLI_EXIT_ERR;
		goto out;
	}
	t0_ns = now_realtime_ns();
	rc = shk_chan_open(b.addr, b.pattern, role, &co, &b.c_out);
	if (rc < 0) {
		cli_error(addr, rc);
		rc = CLI_EXIT_ERR;
		goto out;
	}
	if (b.pattern == SHK_CHAN_PAIR) {
		b.c_in = b.c_out;
	} else if (b.in) {
		b.c_in = b.c_out;
		b.c_out = NULL;
	}
	/* the channel's descriptor now (wait_sides needs it), so that
	 * running out of descriptors is a setup failure */
	if (b.out && (rc = shk_chan_fd(b.c_out)) < 0) {
		cli_error(addr, rc);
		undo_create(&b, t0_ns);
		rc = CLI_EXIT_ERR;
		goto out;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: zmq_poll returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigs_set = 1;
	for (i = 0; i < 3; i++) {
		sigaction(sigs[i], &sa, &old_sa[i]);
		/* nohup: a hangup stays ignored */
		if (sigs[i] == SIGHUP && old_sa[i].sa_handler == SIG_IGN)
			sigaction(SIGHUP, &old_sa[i], NULL);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("bridge: %s (%s%s) %s %s (%s)\n", addr, pattern_name(b.pattern),
	       b.pattern == SHK_CHAN_PAIR ? (end_b ? ", end b" : ", end a")
					  : "",
	       b.pattern == SHK_CHAN_PAIR ? "<->" : (b.out ? "->" : "<-"), last,
	       bind ? "bind" : "connect");

	rc = 0;
	while (!done(&b)) {
		int o = 0, n = 0;

		if (b.out && (o = pump_out(&b)) < 0)
			break;
		if (b.in && (n = pump_in(&b)) < 0)
			break;
		if (o > 0 || n > 0 || done(&b))
			continue;
		if (wait_sides(&b) != 0)
			break;
	}
	if (!done(&b))
		rc = CLI_EXIT_ERR;
	else
		flush_held(&b);
	printf("bridge: %llu messages %s -> %s, %llu %s -> %s",
	       (unsigned long long)b.n_out, "shm", "zmq",
	       (unsigned long long)b.n_in, "zmq", "shm");
	if (b.too_big)
		printf(", %llu too long for the channel",
		       (unsigned long long)b.too_big);
	if (b.corrupt)
		printf(", %llu corrupt", (unsigned long long)b.corrupt);
	if (b.held_out || b.have_in)
		printf(", %d held at exit (not forwarded)",
		       !!b.held_out + b.have_in);
	printf("\n");
out:
	if (b.have_in)
		zmq_msg_close(&b.held_in);
	if (b.held_out)
		shk_msg_release(b.held_out);
	if (b.zsock)
		zmq_close(b.zsock);
	/* ZeroMQ sends what it queued for up to the linger; a (second)
	 * signal interrupts the wait (EINTR), and the exit drops the rest */
	while (b.zctx && zmq_ctx_term(b.zctx) != 0 && errno == EINTR &&
	       stop_count < 2)
		;
	if (sigs_set)
		for (i = 0; i < 3; i++)
			sigaction(sigs[i], &old_sa[i], NULL);
	shk_chan_close(b.c_out ? b.c_out : b.c_in);
	return rc;
}
