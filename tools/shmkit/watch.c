/*
 * watch.c - `shmkit watch`: the live part of `shmkit info` (attached
 * processes, heap, each object's shk_obj_describe line), refreshed every
 * interval, with the rate per second of every `key=NUMBER` field that
 * changed since the refresh before, so that a moving ring or queue shows.
 *
 * Each refresh opens the segment read-only, copies what it shows under the
 * SIGBUS guard and closes it again, so a segment removed or truncated
 * while we watch is reported (one error line, exit 1) at the next refresh
 * instead of being watched for ever through a stale mapping; so is an
 * object found corrupt (its line says so, then one error line, exit 1).
 * Between
 * refreshes SIGINT and SIGTERM are blocked except inside ppoll, so they
 * end the watch (exit 0) at once and never in the middle of a refresh.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define DESC_LEN 256
#define LINE_LEN 1024
#define WATCH_MIN_INTERVAL 0.05
#define WATCH_MAX_INTERVAL 86400.0

struct wobj {
	shk_obj_info info;
	char desc[DESC_LEN]; /* printable: cli_printable of the describe
				text, or "corrupt: SHK_E..." */
};

struct snap {
	shk_seg_stats st;
	struct timespec mono; /* CLOCK_MONOTONIC when it was taken */
	struct timespec wall; /* CLOCK_REALTIME, for the heading */
	struct wobj *obj;
	uint32_t nobj;
	int corrupt; /* the code of the first object found corrupt, or 0 */
};

static volatile sig_atomic_t watch_stop;

static void
on_stop(int sig)
{
	(void)sig;
	watch_stop = 1;
}

static void
snap_free(struct snap *s)
{
	free(s->obj);
	memset(s, 0, sizeof(*s));
}

/* Reads the segment into s.  Called with the guard armed. */
static int
collect(shk_seg *seg, void *arg)
{
	struct snap *s = arg;
	uint32_t cur = 0, cap;
	char raw[DESC_LEN];
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &s->mono);
	clock_gettime(CLOCK_REALTIME, &s->wall);
	s->st.size = sizeof(s->st);
	rc = shk_seg_info(seg, &s->st);
	if (rc)
		return rc;
	cap = s->st.max_objects;
	s->obj = calloc(cap ? cap : 1, sizeof(*s->obj));
	if (!s->obj)
		return SHK_ENOMEM;
	while (s->nobj < cap) {
		struct wobj *o = &s->obj[s->nobj];
		int n;

		o->info.size = sizeof(o->info);
		rc = shk_obj_next(seg, &cur, &o->info);
		if (rc == SHK_ECORRUPT) {
			/* a damaged entry: list it and go on */
			o->info.name[sizeof(o->info.name) - 1] = '\0';
			snprintf(o->desc, sizeof(o->desc), "corrupt: %s",
				 shk_errname(rc));
			if (!s->corrupt)
				s->corrupt = rc;
			s->nobj++;
			continue;
		}
		if (rc != 1)
			break;
		o->info.name[sizeof(o->info.name) - 1] = '\0';
		n = shk_obj_describe(seg, &o->info, raw, sizeof(raw));
		if (n < 0) {
			snprintf(o->desc, sizeof(o->desc), "%s: %s",
				 cli_code_is_corrupt(n) ? "corrupt" : "error",
				 shk_errname(n));
			if (cli_code_is_corrupt(n) && !s->corrupt)
				s->corrupt = n;
		} else
			cli_printable(o->desc, sizeof(o->desc), raw);
		s->nobj++;
	}
	return rc < 0 ? rc : 0;
}

static int
take_snap(const struct cli_target *t, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	return cli_guarded_read(t, collect, s);
}

static double
ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(a->tv_sec - b->tv_sec) +
	       (double)(a->tv_nsec - b->tv_nsec) / 1e9;
}

/* "+1.2M/s": 1000-based suffixes, sign always shown. */
static void
fmt_rate(char *buf, size_t len, double r)
{
	static const char suf[] = " KMGTPE";
	double a = r < 0 ? -r : r;
	int i = 0;

	while (a >= 999.95 && i < 6) {
		a /= 1000;
		r /= 1000;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%+.1f/s", r);
	else
		snprintf(buf, len, "%+.1f%c/s", r, suf[i]);
}

/*
 * If tok is "key=DIGITS", stores the key's length and the value and
 * returns 1.
 */
static int
key_number(const char *tok, size_t toklen, size_t *keylen, uint64_t *val)
{
	const char *eq = memchr(tok, '=', toklen);
	uint64_t v = 0;
	size_t i;

	if (!eq || eq == tok || (size_t)(eq - tok) + 1 == toklen)
		return 0;
	for (i = (size_t)(eq - tok) + 1; i < toklen; i++) {
		unsigned d = (unsigned)(tok[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*keylen = (size_t)(eq - tok);
	*val = v;
	return 1;
}

/* The value of "key=DIGITS" in desc (first such token), or 0 if none. */
static int
find_key(const char *desc, const char *key, size_t keylen, uint64_t *val)
{
	const char *p = desc;

	while (*p) {
		size_t n, kl;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n && key_number(p, n, &kl, val) && kl == keylen &&
		    !memcmp(p, key, keylen))
			return 1;
		p += n;
	}
	return 0;
}

/*
 * Copies cur into out, adding " (+R/s)" after each key=NUMBER token whose
 * value differs from the same key's in prev (NULL: no rates).
 */
static void
annotate(char *out, size_t len, const char *cur, const char *prev, double dt)
{
	const char *p = cur;
	size_t k = 0;

	out[0] = '\0';
	while (*p && k + 1 < len) {
		size_t n = strcspn(p, " "), kl;
		uint64_t v, pv;
		char rate[32];

		if (n == 0) { /* a space */
			out[k++] = *p++;
			continue;
		}
		k += (size_t)snprintf(out + k, len - k, "%.*s", (int)n, p);
		if (k >= len) {
			k = len - 1;
			break;
		}
		if (prev && dt > 0 && key_number(p, n, &kl, &v) &&
		    find_key(prev, p, kl, &pv) && pv != v) {
			fmt_rate(rate, sizeof(rate),
				 (double)(int64_t)(v - pv) / dt);
			k += (size_t)snprintf(out + k, len - k, " (%s)", rate);
			if (k >= len) {
				k = len - 1;
				break;
			}
		}
		p += n;
	}
	out[k] = '\0';
}

static void
fmt_wall(char *buf, size_t len, const struct timespec *ts)
{
	struct tm tm;
	time_t s = ts->tv_sec;
	char b[48];

	if (!gmtime_r(&s, &tm) ||
	    !strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, len, "%lld", (long long)s);
		return;
	}
	snprintf(buf, len, "%s.%03ldZ", b, ts->tv_nsec / 1000000);
}

/* prev: the refresh before (NULL for the first). */
static void
print_snap(const struct cli_target *t, const struct snap *s,
	   const struct snap *prev, uint64_t n)
{
	const shk_seg_stats *st = &s->st;
	char name[2 * PATH_MAX], hdr[sizeof(st->name) + 1], pname[PATH_MAX];
	char tbuf[64], rate[32], line[LINE_LEN];
	double dt = prev ? ts_diff(&s->mono, &prev->mono) : 0;
	size_t w = 4, kw = 4;
	uint32_t i, j = 0;
	/* rates only against the same segment: one removed and made again
	 * under the name starts from its own figures, not the old one's */
	const struct snap *rp =
		prev && prev->st.created_ns == st->created_ns ? prev : NULL;

	/* the TARGET as given, and the header's name when it differs (a
	 * copied or renamed file), as info shows them */
	if (cli_header_name(t, st, hdr, sizeof(hdr))) {
		char ph[sizeof(hdr) * 4];

		cli_printable(pname, sizeof(pname), t->name);
		cli_printable(ph, sizeof(ph), hdr);
		snprintf(name, sizeof(name), "%s (header: %s)", pname, ph);
	} else {
		cli_printable(name, sizeof(name), t->name ? t->name : hdr);
	}
	fmt_wall(tbuf, sizeof(tbuf), &s->wall);
	if (prev)
		printf("== %s %s refresh %" PRIu64 " (%.3f s after the last)\n",
		       tbuf, name[0] ? name : t->label, n, dt);
	else
		printf("== %s %s refresh %" PRIu64 "\n", tbuf,
		       name[0] ? name : t->label, n);
	printf("attached:    %" PRIu32 " (%" PRIu32 " alive)%s\n", st->attached,
	       st->attached_alive,
	       st->attached && !st->attached_alive ? " orphaned" : "");
	printf("heap:        used %" PRIu64, st->heap_used);
	if (rp && dt > 0 && rp->st.heap_used != st->heap_used) {
		int64_t d = (int64_t)(st->heap_used - rp->st.heap_used);

		fmt_rate(rate, sizeof(rate), (double)d / dt);
		printf(" (%+" PRId64 ", %s)", d, rate);
	}
	printf(", free %" PRIu64 ", high-water %" PRIu64 " of %" PRIu64 "\n",
	       st->heap_free, st->heap_high_water, st->heap_len);
	printf("objects:     %" PRIu32 " of %" PRIu32 "\n", st->nobjects,
	       st->max_objects);
	if (!s->nobj)
		return;
	for (i = 0; i < s->nobj; i++) {
		if (strlen(s->obj[i].info.name) > w)
			w = strlen(s->obj[i].info.name);
		if (strlen(shk_kind_name(s->obj[i].info.kind)) > kw)
			kw = strlen(shk_kind_name(s->obj[i].info.kind));
	}
	printf("%-*s %-*s %s\n", (int)w, "NAME", (int)kw, "KIND", "STATE");
	for (i = 0; i < s->nobj; i++) {
		const struct wobj *o = &s->obj[i];
		const char *pdesc = NULL;
		char oname[64];

		/* both lists are in registry slot order: walk prev along; an
		 * object made again in its slot is a new one (created_ns) */
		while (rp && j < rp->nobj &&
		       rp->obj[j].info.slot < o->info.slot)
			j++;
		if (rp && j < rp->nobj &&
		    rp->obj[j].info.slot == o->info.slot &&
		    rp->obj[j].info.kind == o->info.kind &&
		    rp->obj[j].info.created_ns == o->info.created_ns &&
		    !strcmp(rp->obj[j].info.name, o->info.name))
			pdesc = rp->obj[j].desc;
		annotate(line, sizeof(line), o->desc, pdesc, dt);
		cli_printable(oname, sizeof(oname), o->info.name);
		printf("%-*s %-*s %s\n", (int)w, oname, (int)kw,
		       shk_kind_name(o->info.kind), line);
	}
}

/*
 * Sleeps until deadline (CLOCK_MONOTONIC) or until SIGINT/SIGTERM, which
 * are blocked outside this ppoll (orig: the mask to wait with).
 */
static void
sleep_until(const struct timespec *deadline, const sigset_t *orig)
{
	struct timespec now, left;

	while (!watch_stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = deadline->tv_sec - now.tv_sec;
		left.tv_nsec = deadline->tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_nsec += 1000000000L;
			left.tv_sec--;
		}
		/* late (a refresh outlasted the interval): still one ppoll,
		 * with no wait, as the only place a pending stop gets in */
		if (left.tv_sec < 0)
			left.tv_sec = left.tv_nsec = 0;
		if (ppoll(NULL, 0, &left, orig) == 0)
			return;
		/* EINTR: a signal; the loop checks watch_stop */
	}
}

int
cmd_watch(int argc, char **argv)
{
	uint32_t backend = SHK_BACKEND_POSIX;
	const char *arg = NULL, *v;
	struct cli_target t;
	struct snap cur, prev;
	struct sigaction sa;
	sigset_t block, orig;
	struct timespec next;
	double interval = 1.0;
	uint64_t count = 0, n;
	int i, r, rc = 0, opts_done = 0, tty;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && cli_is_help(a)) {
			return cli_cmd_help();
		} else if (opts_done || a[0] != '-') {
			if (arg)
				return cli_usage_error(
					"unexpected argument '%s'", a);
			arg = a;
		} else if (!strcmp(a, "--")) {
			opts_done = 1;
		} else if ((r = cli_backend_flag(a, &backend)) != 0) {
			if (r < 0)
				return CLI_EXIT_USAGE;
		} else if ((r = cli_opt_value(argc, argv, &i, "--interval",
					      &v))) {
			if (r < 0 ||
			    cli_parse_seconds(v, WATCH_MIN_INTERVAL,
					      WATCH_MAX_INTERVAL, &interval))
				return cli_usage_error(
					"bad --interval (SECONDS, 0.05 to "
					"86400, e.g. 0.2)");
		} else if ((r = cli_opt_value(argc, argv, &i, "--count", &v))) {
			if (r < 0 || cli_parse_u64(v, &count) || count == 0)
				return cli_usage_error("bad --count (N > 0)");
		} else {
			return cli_usage_error("unknown option '%s'", a);
		}
	}
	if (!arg)
		return cli_usage_error("missing segment name");
	if ((rc = cli_target_set(&t, backend, arg)) != 0)
		return rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);

	tty = isatty(STDOUT_FILENO);
	memset(&prev, 0, sizeof(prev));
	for (n = 1; !watch_stop; n++) {
		rc = take_snap(&t, &cur);
		if (rc) {
			snap_free(&cur);
			fflush(stdout);
			cli_target_error(&t, rc);
			rc = CLI_EXIT_ERR;
			break;
		}
		if (tty)
			fputs("\033[H\033[2J", stdout);
		else if (n > 1)
			putchar('\n');
		print_snap(&t, &cur, n > 1 ? &prev : NULL, n);
		if (fflush(stdout) != 0) {
			snap_free(&cur);
			cli_error("writing output", SHK_EIO);
			rc = CLI_EXIT_ERR;
			break;
		}
		snap_free(&prev);
		prev = cur;
		if (cur.corrupt) {
			/* damage, as a segment that turned corrupt: the
			 * refresh above shows which object; exit 1 */
			cli_target_error(&t, cur.corrupt);
			rc = CLI_EXIT_ERR;
			break;
		}
		if (count && n >= count)
			break;
		next = prev.mono;
		next.tv_sec += (time_t)interval;
		next.tv_nsec +=
			(long)((interval - (double)(time_t)interval) * 1e9);
		if (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		sleep_until(&next, &orig);
	}
	snap_free(&prev);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return rc;
}
