/*
 * seg.c - `shmkit create`, `shmkit rm` (also --orphans) and the debugging
 * aid `shmkit hold`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_BLOBS 64
#define MAX_TARGETS 256

struct blob_spec {
	char name[SHK_NAME_MAX + 1];
	uint64_t elem_len;
	uint64_t cap;
};

/* NAME:ELEM_LEN:CAP */
static int
parse_blob(const char *s, struct blob_spec *b)
{
	const char *c1 = strchr(s, ':'), *c2;
	char num[32];
	size_t n;

	if (!c1 || (size_t)(c1 - s) > SHK_NAME_MAX || c1 == s)
		return SHK_EINVAL;
	c2 = strchr(c1 + 1, ':');
	if (!c2)
		return SHK_EINVAL;
	memcpy(b->name, s, (size_t)(c1 - s));
	b->name[c1 - s] = '\0';
	n = (size_t)(c2 - c1 - 1);
	if (n == 0 || n >= sizeof(num))
		return SHK_EINVAL;
	memcpy(num, c1 + 1, n);
	num[n] = '\0';
	if (cli_parse_size(num, &b->elem_len) || b->elem_len == 0)
		return SHK_EINVAL;
	if (cli_parse_size(c2 + 1, &b->cap) || b->cap == 0)
		return SHK_EINVAL;
	return 0;
}

int
cmd_create(int argc, char **argv)
{
	static struct blob_spec blobs[MAX_BLOBS];
	uint32_t backend = SHK_BACKEND_POSIX;
	const char *arg = NULL, *v;
	struct cli_target t;
	shk_seg_opts o;
	shk_seg *seg = NULL;
	uint64_t size = 0, nobj = 0, mode = 0;
	int i, r, nblobs = 0, rc;
	char what[160];

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--sysv")) {
			backend = SHK_BACKEND_SYSV;
		} else if (!strcmp(a, "--file")) {
			backend = SHK_BACKEND_FILE;
		} else if ((r = cli_opt_value(argc, argv, &i, "--size", &v))) {
			if (r < 0 || cli_parse_size(v, &size) || size == 0)
				return cli_usage_error("bad --size (BYTES, "
						       "suffix K, M or G)");
		} else if ((r = cli_opt_value(argc, argv, &i, "--mode", &v))) {
			char *end;

			if (r < 0 || !v[0])
				return cli_usage_error("bad --mode (octal)");
			errno = 0;
			mode = strtoull(v, &end, 8);
			if (errno || *end || mode == 0 || mode > 0777)
				return cli_usage_error("bad --mode (octal)");
		} else if ((r = cli_opt_value(argc, argv, &i, "--objects",
					      &v))) {
			if (r < 0 || cli_parse_u64(v, &nobj) || nobj == 0 ||
			    nobj > UINT32_MAX)
				return cli_usage_error("bad --objects");
		} else if ((r = cli_opt_value(argc, argv, &i, "--blob", &v))) {
			if (nblobs == MAX_BLOBS)
				return cli_usage_error("too many --blob");
			if (r < 0 || parse_blob(v, &blobs[nblobs]))
				return cli_usage_error(
					"bad --blob (NAME:ELEM_LEN:CAP)");
			nblobs++;
		} else if (a[0] == '-' && a[1] == '-') {
			return cli_usage_error("unknown option '%s'", a);
		} else if (arg) {
			return cli_usage_error("unexpected argument '%s'", a);
		} else {
			arg = a;
		}
	}
	if (!arg)
		return cli_usage_error("missing segment name");
	if (cli_target_set(&t, backend, arg))
		return cli_usage_error("bad segment name");
	cli_target_opts(&t, &o);
	o.len = size;
	o.mode = (uint32_t)mode;
	o.max_objects = (uint32_t)nobj;
	rc = shk_seg_open(t.name, SHK_CREATE | SHK_EXCL, &o, &seg);
	if (rc) {
		cli_error(t.label, rc);
		return CLI_EXIT_ERR;
	}
	for (i = 0; i < nblobs; i++) {
		shk_obj_desc d = SHK_OBJ_DESC_INIT;

		d.kind = SHK_KIND_BLOB;
		d.elem_len = blobs[i].elem_len;
		d.cap = blobs[i].cap;
		rc = shk_obj_open(seg, blobs[i].name, SHK_CREATE | SHK_EXCL,
				  &d, NULL, NULL);
		if (rc) {
			/* all or nothing: do not leave a half-made segment */
			shk_seg_close(seg);
			shk_seg_unlink(t.name, &o);
			snprintf(what, sizeof(what), "%s: blob %s", t.label,
				 blobs[i].name);
			cli_error(what, rc);
			return CLI_EXIT_ERR;
		}
	}
	shk_seg_close(seg);
	return CLI_EXIT_OK;
}

/* 1 when the POSIX shm or file target starts with the segment magic, 0
 * when it is readable and does not, -1 when it cannot be read. */
static int
target_has_magic(const struct cli_target *t)
{
	char path[4200], m[8];
	const char *n = t->name;
	ssize_t got;
	int fd;

	if (t->backend == SHK_BACKEND_POSIX) {
		while (*n == '/')
			n++;
		snprintf(path, sizeof(path), "/dev/shm/%s", n);
		n = path;
	}
	fd = open(n, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	got = pread(fd, m, 8, 0);
	close(fd);
	if (got < 0)
		return -1;
	return got == 8 && memcmp(m, "SHMKIT\0\1", 8) == 0;
}

/*
 * Refuses (without --force) to remove something that is positively not a
 * shmkit segment.  A segment that fails validation is still shmkit's
 * (removing a corrupt segment is what rm is for).
 */
static int
rm_guard(const struct cli_target *t)
{
	shk_seg_opts o;
	shk_seg *seg = NULL;
	int rc;

	if (t->backend != SHK_BACKEND_SYSV) {
		rc = target_has_magic(t);
		return rc == 0 ? SHK_EBADSEG : 0; /* unreadable: let unlink
						     report it */
	}
	cli_target_opts(t, &o);
	o.open_timeout_ns = 200 * 1000 * 1000;
	rc = shk_seg_open(t->name, SHK_RDONLY, &o, &seg);
	shk_seg_close(seg);
	return rc == SHK_EBADSEG ? SHK_EBADSEG : 0;
}

static int
rm_orphans(int dry_run, const char *match)
{
	struct cli_seg_list l;
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	size_t i;
	int rc, failed = 0;

	rc = cli_scan(&l, match);
	if (rc) {
		cli_error("scanning segments", rc);
		return CLI_EXIT_ERR;
	}
	for (i = 0; i < l.n; i++) {
		struct cli_seg_entry *e = &l.v[i];

		if (!cli_seg_orphaned(e))
			continue;
		if (dry_run) {
			printf("would remove %s\n", e->name);
			continue;
		}
		/* look again right before removing, to narrow the window in
		 * which a new attacher could appear */
		cli_reprobe(e);
		if (!cli_seg_orphaned(e))
			continue;
		o.backend = e->backend;
		o.sysv_key = e->sysv_key;
		rc = shk_seg_unlink(e->backend == SHK_BACKEND_SYSV ? NULL
								 : e->name,
				    &o);
		if (rc) {
			cli_error(e->name, rc);
			failed = 1;
			continue;
		}
		printf("removed %s\n", e->name);
	}
	cli_seg_list_free(&l);
	return failed ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

int
cmd_rm(int argc, char **argv)
{
	uint32_t backend = SHK_BACKEND_POSIX;
	const char *targets[MAX_TARGETS], *match = NULL;
	int i, r, n = 0, orphans = 0, dry_run = 0, force = 0, failed = 0;
	int opts_done = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (opts_done || a[0] != '-' || a[1] != '-') {
			if (n == MAX_TARGETS)
				return cli_usage_error("too many names");
			targets[n++] = a;
		} else if (!strcmp(a, "--")) {
			opts_done = 1;
		} else if (!strcmp(a, "--sysv")) {
			backend = SHK_BACKEND_SYSV;
		} else if (!strcmp(a, "--file")) {
			backend = SHK_BACKEND_FILE;
		} else if (!strcmp(a, "--orphans")) {
			orphans = 1;
		} else if (!strcmp(a, "--dry-run")) {
			dry_run = 1;
		} else if (!strcmp(a, "--force")) {
			force = 1;
		} else if ((r = cli_opt_value(argc, argv, &i, "--match",
					      &match))) {
			if (r < 0)
				return cli_usage_error("--match needs a GLOB");
		} else {
			return cli_usage_error("unknown option '%s'", a);
		}
	}
	if (orphans) {
		if (n)
			return cli_usage_error(
				"--orphans takes no names (use --match)");
		return rm_orphans(dry_run, match);
	}
	if (match)
		return cli_usage_error("--match needs --orphans");
	if (n == 0)
		return cli_usage_error("missing segment name");
	for (i = 0; i < n; i++) {
		struct cli_target t;
		shk_seg_opts o;
		int rc;

		if (cli_target_set(&t, backend, targets[i])) {
			cli_error(targets[i], SHK_EINVAL);
			failed = 1;
			continue;
		}
		rc = force ? 0 : rm_guard(&t);
		if (rc == 0 && !dry_run) {
			cli_target_opts(&t, &o);
			rc = shk_seg_unlink(t.name, &o);
		}
		if (rc) {
			cli_error(t.label, rc);
			failed = 1;
		} else if (dry_run) {
			printf("would remove %s\n", t.label);
		}
	}
	return failed ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

static volatile sig_atomic_t hold_stop;

static void
on_stop(int sig)
{
	(void)sig;
	hold_stop = 1;
}

/*
 * hold TARGET SECONDS: opens the segment (which attaches this process),
 * prints one line, sleeps, then closes (which detaches).  SIGTERM and
 * SIGINT end the sleep early and still detach; SIGKILL leaves the attach
 * record behind, which is how tests make an orphaned segment.
 */
int
cmd_hold(int argc, char **argv)
{
	uint32_t backend = SHK_BACKEND_POSIX;
	const char *pos[2];
	struct cli_target t;
	struct sigaction sa;
	struct timespec end, now, ts = { 0, 20 * 1000 * 1000 };
	shk_seg_opts o;
	shk_seg *seg = NULL;
	uint64_t secs;
	int i, n = 0, rc;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--sysv"))
			backend = SHK_BACKEND_SYSV;
		else if (!strcmp(a, "--file"))
			backend = SHK_BACKEND_FILE;
		else if (a[0] == '-' && a[1] == '-')
			return cli_usage_error("unknown option '%s'", a);
		else if (n == 2)
			return cli_usage_error("unexpected argument '%s'", a);
		else
			pos[n++] = a;
	}
	if (n != 2)
		return cli_usage_error("usage: shmkit hold TARGET SECONDS");
	if (cli_parse_u64(pos[1], &secs) || secs > 86400 * 365)
		return cli_usage_error("bad SECONDS");
	if (cli_target_set(&t, backend, pos[0]))
		return cli_usage_error("bad segment name");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	cli_target_opts(&t, &o);
	rc = shk_seg_open(t.name, 0, &o, &seg);
	if (rc) {
		cli_error(t.label, rc);
		return CLI_EXIT_ERR;
	}
	printf("holding %s pid %ld\n", t.label, (long)getpid());
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)secs;
	while (!hold_stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		nanosleep(&ts, NULL);
	}
	shk_seg_close(seg);
	return CLI_EXIT_OK;
}
