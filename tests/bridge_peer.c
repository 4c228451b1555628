/*
 * bridge_peer.c - the two kinds of peer tests/bridge.sh puts around
 * `shmkit bridge`: a process on a shmkit channel, and a process that
 * speaks ZeroMQ directly (as one on another host would).
 *
 *   bridge_peer shm-send ADDR PATTERN ROLE N SIZES
 *   bridge_peer shm-recv ADDR PATTERN ROLE N
 *   bridge_peer zmq-send ENDPOINT TYPE bind|connect N SIZES
 *   bridge_peer zmq-recv ENDPOINT TYPE bind|connect N
 *   bridge_peer shm-fill ADDR PATTERN ROLE N SIZES
 *   bridge_peer zmq-pair ENDPOINT bind|connect N SIZES M
 *
 * PATTERN is pair, pubsub or pushpull; ROLE a, b, pub, sub, push or pull;
 * TYPE pair, pub, sub, push or pull.  SIZES is "small" (16..200 bytes),
 * "mixed" (one in eight from 3000 to 70000 bytes, the rest small: a pair
 * channel carries those as heap blocks) or a fixed length.  Message k
 * (from 0) is {u32 magic, u32 len, u64 k} and then byte i of the payload
 * is (k * 131 + i) & 0xff.  A receiver checks every byte and that k counts
 * up from 0 with no gap: it exits 1 naming the first message that is
 * missing, repeated, reordered or damaged, or 1 when 10 s pass with no
 * message.  A sender that is given "hold" as a further argument waits for
 * a line on stdin before it sends (so the test can connect the far end
 * first).  A channel the shm side creates takes its seg_size and max_msg
 * from BRIDGE_PEER_SEG_SIZE and BRIDGE_PEER_MAX_MSG when they are set,
 * and its permission bits from BRIDGE_PEER_SEG_MODE (octal).
 * Prints "N messages ok" on success.  shm-fill sends as shm-send does,
 * but each send with timeout 0, and stops at the first SHK_EAGAIN: it
 * prints "K messages ok" (K < N, else it exits 1: never full).  zmq-pair
 * is a ZeroMQ PAIR socket that sends N messages (printing "N sent"), then
 * receives M, checked as zmq-recv does, and then exits 1 if a further
 * message comes within 1.5 s.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "shmkit.h"

#define MAGIC 0x62726467u /* "brdg" */
#define HDR 16
#define TIMEOUT_NS 10000000000ll

static unsigned char buf[2 << 20];

static size_t
msg_len(const char *sizes, uint64_t k)
{
	uint64_t h = (k + 1) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 29;
	if (!strcmp(sizes, "small"))
		return HDR + (size_t)(h % 185);
	if (!strcmp(sizes, "mixed"))
		return (h & 7) == 0 ? 3000 + (size_t)((h >> 3) % 67001)
				    : HDR + (size_t)(h % 185);
	return (size_t)strtoull(sizes, NULL, 10);
}

static void
fill(unsigned char *p, size_t len, uint64_t k)
{
	uint32_t m = MAGIC, l = (uint32_t)len;
	size_t i;

	memcpy(p, &m, 4);
	memcpy(p + 4, &l, 4);
	memcpy(p + 8, &k, 8);
	for (i = HDR; i < len; i++)
		p[i] = (unsigned char)((k * 131 + i) & 0xff);
}

/* 0 when p is message k, else prints why and returns 1 */
static int
check(const unsigned char *p, size_t len, uint64_t k)
{
	uint32_t m, l;
	uint64_t got;
	size_t i;

	if (len < HDR) {
		fprintf(stderr, "message %llu: %zu bytes, too short\n",
			(unsigned long long)k, len);
		return 1;
	}
	memcpy(&m, p, 4);
	memcpy(&l, p + 4, 4);
	memcpy(&got, p + 8, 8);
	if (m != MAGIC || l != len) {
		fprintf(stderr, "message %llu: bad header (len %zu)\n",
			(unsigned long long)k, len);
		return 1;
	}
	if (got != k) {
		fprintf(stderr, "message %llu: got number %llu (%s)\n",
			(unsigned long long)k, (unsigned long long)got,
			got > k ? "lost ones" : "repeated or reordered");
		return 1;
	}
	for (i = HDR; i < len; i++)
		if (p[i] != (unsigned char)((k * 131 + i) & 0xff)) {
			fprintf(stderr, "message %llu: byte %zu damaged\n",
				(unsigned long long)k, i);
			return 1;
		}
	return 0;
}

static int
parse_role(const char *s)
{
	static const char *names[] = { "a", "b", "pub", "sub", "push", "pull" };
	int i;

	for (i = 0; i < 6; i++)
		if (!strcmp(s, names[i]))
			return i + 1; /* SHK_CHAN_A .. SHK_CHAN_PULL */
	return -1;
}

static int
parse_pattern(const char *s)
{
	if (!strcmp(s, "pair"))
		return SHK_CHAN_PAIR;
	if (!strcmp(s, "pubsub"))
		return SHK_CHAN_PUBSUB;
	if (!strcmp(s, "pushpull"))
		return SHK_CHAN_PUSHPULL;
	return -1;
}

static void
hold(int argc, char **argv, int at)
{
	char line[16];

	if (argc > at && !strcmp(argv[at], "hold")) {
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			exit(1);
	}
}

static int
shm_side(int argc, char **argv, int send, int fill_only)
{
	shk_chan *c;
	shk_msg *m;
	uint64_t n = strtoull(argv[5], NULL, 10), k;
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	const char *e;
	int rc;

	/* a channel this peer creates: geometry from the environment */
	if ((e = getenv("BRIDGE_PEER_SEG_SIZE")))
		o.seg_size = strtoull(e, NULL, 10);
	if ((e = getenv("BRIDGE_PEER_MAX_MSG")))
		o.max_msg = strtoull(e, NULL, 10);
	if ((e = getenv("BRIDGE_PEER_SEG_MODE")))
		o.seg_mode = (uint32_t)strtoul(e, NULL, 8);
	rc = shk_chan_open(argv[2], parse_pattern(argv[3]), parse_role(argv[4]),
			   &o, &c);

	if (rc < 0) {
		fprintf(stderr, "open %s: %s\n", argv[2], shk_strerror(rc));
		return 1;
	}
	if (send)
		hold(argc, argv, 7);
	else {
		printf("ready\n");
		fflush(stdout);
	}
	for (k = 0; k < n; k++) {
		if (send) {
			size_t len = msg_len(argv[6], k);

			fill(buf, len, k);
			rc = shk_chan_send(c, buf, len,
					   fill_only ? 0 : TIMEOUT_NS);
			if (rc == SHK_EAGAIN && fill_only) {
				n = k; /* full: done */
				break;
			}
			if (rc < 0) {
				fprintf(stderr, "send %llu: %s\n",
					(unsigned long long)k,
					shk_strerror(rc));
				break;
			}
			continue;
		}
		rc = shk_chan_recv(c, &m, TIMEOUT_NS);
		if (rc < 0) {
			fprintf(stderr, "recv %llu: %s\n",
				(unsigned long long)k, shk_strerror(rc));
			break;
		}
		rc = check(shk_msg_data(m), shk_msg_len(m), k);
		shk_msg_release(m);
		if (rc)
			break;
	}
	shk_chan_close(c);
	if (fill_only && n == strtoull(argv[5], NULL, 10)) {
		fprintf(stderr, "%llu messages sent and never full\n",
			(unsigned long long)n);
		return 1;
	}
	if (k < n)
		return 1;
	printf("%llu messages ok\n", (unsigned long long)n);
	return 0;
}

static int
ztype(const char *s)
{
	if (!strcmp(s, "pair"))
		return ZMQ_PAIR;
	if (!strcmp(s, "pub"))
		return ZMQ_PUB;
	if (!strcmp(s, "sub"))
		return ZMQ_SUB;
	if (!strcmp(s, "push"))
		return ZMQ_PUSH;
	return ZMQ_PULL;
}

static int
zmq_side(int argc, char **argv, int send)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ztype(argv[3]));
	uint64_t n = strtoull(argv[5], NULL, 10), k;
	int tmo = 10000, linger = 5000, rc = 0;

	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	if (ztype(argv[3]) == ZMQ_SUB)
		zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
	if ((!strcmp(argv[4], "bind") ? zmq_bind(s, argv[2])
				      : zmq_connect(s, argv[2])) < 0) {
		fprintf(stderr, "%s: %s\n", argv[2], zmq_strerror(errno));
		return 1;
	}
	if (send)
		hold(argc, argv, 7);
	else {
		printf("ready\n");
		fflush(stdout);
	}
	for (k = 0; k < n && rc == 0; k++) {
		if (send) {
			size_t len = msg_len(argv[6], k);

			fill(buf, len, k);
			if (zmq_send(s, buf, len, 0) < 0) {
				fprintf(stderr, "send %llu: %s\n",
					(unsigned long long)k,
					zmq_strerror(errno));
				rc = 1;
			}
			continue;
		}
		int len = zmq_recv(s, buf, sizeof(buf), 0);
		if (len < 0) {
			fprintf(stderr, "recv %llu: %s\n",
				(unsigned long long)k, zmq_strerror(errno));
			rc = 1;
		} else if ((size_t)len > sizeof(buf)) {
			fprintf(stderr, "message %llu: %d bytes, too long\n",
				(unsigned long long)k, len);
			rc = 1;
		} else {
			rc = check(buf, (size_t)len, k);
		}
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
	if (rc == 0)
		printf("%llu messages ok\n", (unsigned long long)n);
	return rc;
}

/* zmq-pair: argv[3] bind|connect, [4] N, [5] SIZES, [6] M */
static int
zmq_pair(char **argv)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
	uint64_t n = strtoull(argv[4], NULL, 10),
		 m = strtoull(argv[6], NULL, 10);
	uint64_t k;
	int tmo = 10000, linger = 5000, rc = 0, len;

	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	if ((!strcmp(argv[3], "bind") ? zmq_bind(s, argv[2])
				      : zmq_connect(s, argv[2])) < 0) {
		fprintf(stderr, "%s: %s\n", argv[2], zmq_strerror(errno));
		return 1;
	}
	for (k = 0; k < n && rc == 0; k++) {
		size_t l = msg_len(argv[5], k);

		fill(buf, l, k);
		if (zmq_send(s, buf, l, 0) < 0) {
			fprintf(stderr, "send %llu: %s\n",
				(unsigned long long)k, zmq_strerror(errno));
			rc = 1;
		}
	}
	if (rc == 0)
		printf("%llu sent\n", (unsigned long long)n);
	for (k = 0; k < m && rc == 0; k++) {
		len = zmq_recv(s, buf, sizeof(buf), 0);
		if (len < 0 || (size_t)len > sizeof(buf)) {
			fprintf(stderr, "recv %llu: %s\n",
				(unsigned long long)k,
				len < 0 ? zmq_strerror(errno) : "too long");
			rc = 1;
		} else {
			rc = check(buf, (size_t)len, k);
		}
	}
	tmo = 1500;
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	if (rc == 0 && zmq_recv(s, buf, sizeof(buf), 0) >= 0) {
		fprintf(stderr, "a message beyond the %llu expected\n",
			(unsigned long long)m);
		rc = 1;
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
	if (rc == 0)
		printf("%llu messages ok\n", (unsigned long long)m);
	return rc;
}

int
main(int argc, char **argv)
{
	int send;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 6) {
		fprintf(stderr, "usage: see the comment in bridge_peer.c\n");
		return 2;
	}
	if (!strcmp(argv[1], "zmq-pair"))
		return argc < 7 ? 2 : zmq_pair(argv);
	if (!strcmp(argv[1], "shm-fill"))
		return argc < 7 ? 2 : shm_side(argc, argv, 1, 1);
	send = !strcmp(argv[1] + 4, "send");
	if ((send && argc < 7) || (!send && strcmp(argv[1] + 4, "recv"))) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	if (!strncmp(argv[1], "shm-", 4))
		return shm_side(argc, argv, send, 0);
	if (!strncmp(argv[1], "zmq-", 4))
		return zmq_side(argc, argv, send);
	fprintf(stderr, "bad mode %s\n", argv[1]);
	return 2;
}
