/*
 * seg.c - `shmkit create`, `shmkit rm` (also --orphans) and the debugging
 * aid `shmkit hold`.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
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

/*
 * Whether the library makes a segment of len bytes (0: its default) with
 * nobj registry entries (0: its default): it makes one on the memfd
 * backend, which has no name, and closes it again, so nothing is left.
 * Returns 0, SHK_EINVAL (refused), or another code (no answer here).
 */
static int
probe_len(uint64_t len, uint64_t nobj)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_seg *seg = NULL;
	int rc;

	o.backend = SHK_BACKEND_MEMFD;
	o.len = len;
	o.max_objects = (uint32_t)nobj;
	rc = shk_seg_open("shmkit-create-probe", SHK_CREATE, &o, &seg);
	shk_seg_close(seg);
	return rc;
}

/*
 * The smallest size, a multiple of 4 KiB, with which the library makes a
 * segment of nobj registry entries (0: the default 256), found by asking
 * it (probe_len) rather than by copying its layout; UINT64_MAX when it
 * refuses that many entries at any size, or 0 when it cannot tell.  The
 * registry takes 128 bytes an entry (shmkit.h), and the header, attach
 * table and smallest heap fit in 64 KiB, so a registry's size
 * rounded up plus 128 KiB must be enough: if that is refused, the entry
 * count itself is.  Each probe is binary-searched between the largest size
 * known to be refused and the smallest known to work.
 */
static uint64_t
min_create_len(uint64_t nobj)
{
	uint64_t n = 1, lo, hi;
	int rc;

	while (n < (nobj ? nobj : 256) && n < ((uint64_t)1 << 20))
		n <<= 1;
	if (n * 128 > ((uint64_t)16 << 20)) {
		/* Not probed at this count: each probe's memory is reserved.
		 * A count the library refuses at any size is a limit, which
		 * every larger count is over too: when it refuses the largest
		 * count probed (16 MiB of registry), it refuses this one (until
		 * 2026-11-25 --objects 131073 and up were a bare SHK_EINVAL,
		 * exit 1, where 65537 was this usage error). */
		return min_create_len(((uint64_t)16 << 20) / 128) == UINT64_MAX
			       ? UINT64_MAX
			       : 0;
	}
	hi = ((n * 128 + 4095) & ~(uint64_t)4095) + (128 << 10);
	if (hi < SHK_SEG_MIN_LEN)
		hi = SHK_SEG_MIN_LEN;
	rc = probe_len(hi, nobj);
	if (rc)
		return rc == SHK_EINVAL ? UINT64_MAX : 0;
	lo = SHK_SEG_MIN_LEN - 4096; /* refused: below the minimum */
	while (hi - lo > 4096) {
		uint64_t mid = (lo + (hi - lo) / 2) & ~(uint64_t)4095;

		rc = probe_len(mid, nobj);
		if (rc == 0)
			hi = mid;
		else if (rc == SHK_EINVAL)
			lo = mid;
		else
			return 0;
	}
	return hi;
}

/* BYTES as --size takes it: the largest of G, M, K that divides it. */
static void
fmt_bytes(char *buf, size_t len, uint64_t v)
{
	if (v && v % (1u << 30) == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(v >> 30));
	else if (v && v % (1u << 20) == 0)
		snprintf(buf, len, "%lluM", (unsigned long long)(v >> 20));
	else if (v && v % 1024 == 0)
		snprintf(buf, len, "%lluK", (unsigned long long)(v >> 10));
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/*
 * After the library refused to create a segment (SHK_EINVAL): if the
 * size is why, says so with the smallest size that works, as a usage
 * error; else returns 0 and the caller reports the library's code.
 */
static int
explain_create_einval(uint64_t size, uint64_t nobj)
{
	char have[32], need[32], objs[64];
	uint64_t min;

	if (probe_len(size, nobj) != SHK_EINVAL)
		return 0; /* the size and count are fine: something else */
	min = min_create_len(nobj);
	if (min == UINT64_MAX)
		return cli_usage_error("--objects %llu: the library refuses "
				       "that many registry entries at any "
				       "size",
				       (unsigned long long)nobj);
	if (!min || (size && size >= min))
		return 0;
	fmt_bytes(need, sizeof(need), min);
	if (nobj)
		snprintf(objs, sizeof(objs), "%llu object%s",
			 (unsigned long long)nobj, nobj == 1 ? "" : "s");
	else
		snprintf(objs, sizeof(objs), "the default 256 objects");
	if (!size)
		return cli_usage_error("the default size is too small for the "
				       "header, attach table and a registry "
				       "of %s plus the smallest heap: use "
				       "--size %s or more",
				       objs, need);
	fmt_bytes(have, sizeof(have), size);
	return cli_usage_error("--size %s is too small for the header, attach "
			       "table and a registry of %s plus the smallest "
			       "heap: at least %s",
			       have, objs, need);
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
	int i, r, nblobs = 0, rc, opts_done = 0;
	char what[160];

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (opts_done) {
			if (arg)
				return cli_usage_error(
					"unexpected argument '%s'", a);
			arg = a;
		} else if (!strcmp(a, "--")) {
			opts_done = 1;
		} else if (cli_is_help(a)) {
			return cli_cmd_help();
		} else if ((r = cli_backend_flag(a, &backend)) != 0) {
			if (r < 0)
				return CLI_EXIT_USAGE;
		} else if ((r = cli_opt_value(argc, argv, &i, "--size", &v))) {
			if (r < 0 || cli_parse_size(v, &size) || size == 0)
				return cli_usage_error("bad --size (BYTES, "
						       "suffix K, M or G)");
			if (size > SHK_SEG_MAX_LEN)
				return cli_usage_error("--size %s is above the "
						       "largest segment, 1T",
						       v);
		} else if ((r = cli_opt_value(argc, argv, &i, "--mode", &v))) {
			uint32_t m;

			if (r < 0 || cli_parse_mode(v, &m))
				return cli_usage_error("bad --mode (octal)");
			mode = m;
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
		} else if (a[0] == '-') {
			return cli_usage_error("unknown option '%s'", a);
		} else if (arg) {
			return cli_usage_error("unexpected argument '%s'", a);
		} else {
			arg = a;
		}
	}
	if (!arg)
		return cli_usage_error("missing segment name");
	if ((rc = cli_target_set(&t, backend, arg)) != 0)
		return rc;
	cli_target_opts(&t, &o);
	o.len = size;
	o.mode = (uint32_t)mode;
	o.max_objects = (uint32_t)nobj;
	rc = shk_seg_open(t.name, SHK_CREATE | SHK_EXCL, &o, &seg);
	if (rc == SHK_EINVAL && (r = explain_create_einval(size, nobj)) != 0)
		return r;
	if (rc) {
		cli_target_error(&t, rc);
		return CLI_EXIT_ERR;
	}
	for (i = 0; i < nblobs; i++) {
		shk_obj_desc d = SHK_OBJ_DESC_INIT;

		d.kind = SHK_KIND_BLOB;
		d.elem_len = blobs[i].elem_len;
		d.cap = blobs[i].cap;
		rc = shk_obj_open(seg, blobs[i].name, SHK_CREATE | SHK_EXCL, &d,
				  NULL, NULL);
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

/* Reports (one line) that rm without --force leaves t alone, and why. */
static int
rm_refuse(const struct cli_target *t, const char *why, int code)
{
	char what[200];

	snprintf(what, sizeof(what), "%s (%s; not removed without --force)",
		 t->label, why);
	cli_error(what, code);
	return code;
}

/* What rm_live() found: how many live attach records, and some pids. */
#define RM_LIVE_PIDS 4
struct rm_live {
	uint32_t n;
	uint32_t pid[RM_LIVE_PIDS];
};

/* The handle rm_live() opened; static so that it survives a siglongjmp. */
static shk_seg *volatile rm_live_seg;

/*
 * Counts the live processes in t's attach table (the library's verdict,
 * shk_attach_info.alive: one it cannot test counts as alive) into *l.
 * Opens read-only without attaching, whoever owns it (CLI_INSPECT), with
 * the SIGBUS guard armed.  Returns 0, or the open's code (or SHK_ETRUNC):
 * then the table could not be read and nothing is known about attachers.
 * The same table serves every backend (a SysV segment's processes are in
 * it too; shm_nattch would also count shmkit's own inspecting tools).
 */
static int
rm_live(const struct cli_target *t, struct rm_live *l)
{
	shk_seg_opts o;
	shk_seg *seg = NULL;
	shk_attach_info a;
	uint32_t cur = 0;
	int rc;

	memset(l, 0, sizeof(*l));
	cli_target_opts(t, &o);
	rm_live_seg = NULL;
	if (sigsetjmp(cli_guard_jmp, 1) == 0) {
		cli_guard_arm();
		rc = shk_seg_open(t->name, CLI_INSPECT, &o, &seg);
		rm_live_seg = seg;
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		while (rc == 0 && shk_seg_attached(seg, &cur, &a) == 1) {
			if (!a.alive)
				continue;
			if (l->n < RM_LIVE_PIDS)
				l->pid[l->n] = a.pid;
			l->n++;
		}
		cli_guard_disarm();
	} else {
		rc = SHK_ETRUNC;
	}
	shk_seg_close(rm_live_seg);
	rm_live_seg = NULL;
	return rc;
}

/*
 * rm without --force leaves a segment alone while its attach table shows a
 * live process (SHK_EBUSY, as rm --object does for an object in use):
 * prints one line naming how many and their pids, and returns SHK_EBUSY;
 * 0 when there is none, or when the table cannot be read (a damaged
 * segment, which rm removes: that is what it is for).
 */
static int
rm_refuse_live(const struct cli_target *t)
{
	struct rm_live l;
	char pids[80];
	size_t off = 0;
	uint32_t i;

	if (rm_live(t, &l) != 0 || l.n == 0)
		return 0;
	pids[0] = '\0';
	for (i = 0; i < l.n && i < RM_LIVE_PIDS && off < sizeof(pids); i++)
		off += (size_t)snprintf(pids + off, sizeof(pids) - off, "%s%lu",
					i ? ", " : "", (unsigned long)l.pid[i]);
	cli_errorf("%s (attached by %lu live process%s, pid%s %s%s; --force "
		   "removes it anyway): %s (%s)",
		   t->label, (unsigned long)l.n, l.n == 1 ? "" : "es",
		   l.n == 1 ? "" : "s", pids, l.n > RM_LIVE_PIDS ? ", ..." : "",
		   shk_errname(SHK_EBUSY), shk_strerror(SHK_EBUSY));
	return SHK_EBUSY;
}

/*
 * rm_guard lets rm (without --force) remove only what is shown to be a
 * shmkit segment, and otherwise prints why not and returns the code:
 *
 * POSIX and file: a regular file whose first 8 bytes, actually read, are
 * the magic.  It is opened O_NONBLOCK | O_NOFOLLOW, so a FIFO cannot hang
 * rm and a symlink is refused (unlink would remove the link, not what it
 * points to); a file this user cannot read is refused, even one it could
 * unlink.
 *
 * SysV by key: a segment whose memory starts with the magic.  SysV by name
 * (the library derives the key): one that opens, or that fails only a check
 * the library makes after the magic matched (SHK_EVERSION, SHK_ETRUNC,
 * SHK_ECHECKSUM, SHK_ECORRUPT).  SHK_ETIMEDOUT proves nothing: another
 * program's zero-filled segment whose creator still runs looks like a
 * shmkit segment being set up.
 *
 * A segment that fails validation is still shmkit's: removing a damaged
 * segment is what rm is for.  *seen receives the file it checked (POSIX and
 * file backends), which rm_file() then removes only if its name still
 * names that file.  A file-backend target is checked through dfd, its
 * directory (rm_dir()), as base; other backends pass dfd -1.
 */
static int
rm_guard(const struct cli_target *t, int dfd, const char *base,
	 struct stat *seen)
{
	shk_seg_opts o;
	shk_seg *seg = NULL;
	int fd, rc;

	if (t->backend == SHK_BACKEND_SYSV && !t->name) {
		rc = cli_sysv_key_has_magic(t->sysv_key);
		if (rc == 1)
			return 0;
		if (rc == SHK_ENOENT) {
			cli_error(t->label, rc);
			return rc;
		}
		if (rc == 0)
			return rm_refuse(t, "no shmkit magic", SHK_EBADSEG);
		return rm_refuse(t,
				 "cannot read it to look for the "
				 "shmkit magic",
				 rc);
	}
	if (t->backend == SHK_BACKEND_SYSV) {
		cli_target_opts(t, &o);
		o.open_timeout_ns = 200 * 1000 * 1000;
		rc = shk_seg_open(t->name, CLI_INSPECT, &o, &seg);
		shk_seg_close(seg);
		if (rc == 0 || rc == SHK_EVERSION || rc == SHK_ETRUNC ||
		    rc == SHK_ECHECKSUM || rc == SHK_ECORRUPT)
			return 0;
		if (rc == SHK_ENOENT || rc == SHK_EINVAL ||
		    rc == SHK_ENAMETOOLONG) {
			cli_error(t->label, rc);
			return rc;
		}
		return rm_refuse(t, "not shown to be a shmkit segment", rc);
	}
	fd = dfd >= 0 ? cli_open_regular(dfd, base) : cli_open_target_file(t);
	if (fd == SHK_ENOENT || fd == SHK_ENAMETOOLONG) {
		cli_error(t->label, fd);
		return fd;
	}
	if (fd == SHK_EBADSEG)
		return rm_refuse(t, "not a regular file", SHK_EBADSEG);
	if (fd < 0)
		return rm_refuse(t,
				 "cannot read it to look for the "
				 "shmkit magic",
				 fd);
	rc = cli_fd_has_magic(fd);
	if (rc == 1 && fstat(fd, seen) != 0)
		rc = SHK_EIO;
	close(fd);
	if (rc == 1)
		return 0;
	if (rc == 0)
		return rm_refuse(t, "no shmkit magic", SHK_EBADSEG);
	return rm_refuse(t, "cannot read it to look for the shmkit magic", rc);
}

/* errno (open, fstatat, unlinkat) as a code for cli_error() */
static int
rm_errno(int e)
{
	switch (e) {
	case ENOENT:
		return SHK_ENOENT;
	case EACCES:
		return SHK_EACCES;
	case EPERM:
		return SHK_EPERM;
	case ENAMETOOLONG:
		return SHK_ENAMETOOLONG;
	default:
		return SHK_EIO;
	}
}

/*
 * A file-backend segment is checked and removed through a descriptor of its
 * directory, opened once before the check: unlink(path) after the check
 * resolved the directories again, and the owner of one of them could swap
 * it for a symlink in between, so that root's `rm --file /home/u/d/passwd`
 * removed /etc/passwd (security audit, 2026-11-25; tests/cli.sh).
 * rm_dir opens path's directory and sets *base to the last component;
 * returns the descriptor or a code.
 */
static int
rm_dir(const char *path, const char **base)
{
	char dir[4200];
	const char *slash = strrchr(path, '/');
	int dfd;

	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
		*base = path;
	} else if ((size_t)(slash - path) >= sizeof(dir)) {
		return SHK_ENAMETOOLONG;
	} else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = 0;
		if (slash == path)
			snprintf(dir, sizeof(dir), "/");
		*base = slash + 1;
	}
	if (!(*base)[0])
		return SHK_EINVAL;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return dfd >= 0 ? dfd : rm_errno(errno);
}

/* Removes base from directory dfd; with seen (rm_guard()'s file), only
 * while the name is still that regular file (else SHK_EBADSEG). */
static int
rm_file(int dfd, const char *base, const struct stat *seen)
{
	struct stat st;

	if (seen) {
		if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return rm_errno(errno);
		if (!S_ISREG(st.st_mode) || st.st_dev != seen->st_dev ||
		    st.st_ino != seen->st_ino)
			return SHK_EBADSEG;
	}
	return unlinkat(dfd, base, 0) == 0 ? 0 : rm_errno(errno);
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
		rc = shk_seg_unlink(
			e->backend == SHK_BACKEND_SYSV ? NULL : e->raw, &o);
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
	static struct cli_target tv[MAX_TARGETS];
	uint32_t backend = SHK_BACKEND_POSIX;
	const char *targets[MAX_TARGETS], *match = NULL, *backend_flag = NULL;
	const char *objs[MAX_TARGETS], *obj;
	int i, r, n = 0, orphans = 0, dry_run = 0, force = 0, failed = 0;
	int opts_done = 0, nobj = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && cli_is_help(a)) {
			return cli_cmd_help();
		} else if (opts_done || a[0] != '-') {
			if (n == MAX_TARGETS)
				return cli_usage_error("too many names");
			targets[n++] = a;
		} else if (!strcmp(a, "--")) {
			opts_done = 1;
		} else if ((r = cli_backend_flag(a, &backend)) != 0) {
			if (r < 0)
				return CLI_EXIT_USAGE;
			backend_flag = a;
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
		} else if ((r = cli_opt_value(argc, argv, &i, "--object",
					      &obj))) {
			if (r < 0)
				return cli_usage_error("--object needs a NAME");
			if (nobj == MAX_TARGETS)
				return cli_usage_error("too many objects");
			objs[nobj++] = obj;
		} else {
			return cli_usage_error("unknown option '%s'", a);
		}
	}
	if (nobj) {
		/* objects of one segment: --force is SHK_FORCE here */
		if (orphans)
			return cli_usage_error(
				"--orphans and --object cannot be used "
				"together");
		if (dry_run)
			return cli_usage_error(
				"--dry-run and --object cannot be used "
				"together");
		if (match)
			return cli_usage_error("--match needs --orphans");
		if (n != 1)
			return cli_usage_error(
				"--object takes exactly one TARGET");
		if ((r = cli_target_set(&tv[0], backend, targets[0])) != 0)
			return r;
		return cli_rm_objects(&tv[0], objs, nobj, force);
	}
	if (orphans) {
		/* --orphans picks by state, over every backend: an option
		 * that would choose otherwise must not be silently ignored */
		if (force)
			return cli_usage_error(
				"--orphans and --force cannot be "
				"used together");
		if (backend_flag)
			return cli_usage_error("--orphans and %s cannot be "
					       "used together (--orphans "
					       "scans every backend)",
					       backend_flag);
		if (n)
			return cli_usage_error(
				"--orphans takes no names (use --match)");
		return rm_orphans(dry_run, match);
	}
	if (match)
		return cli_usage_error("--match needs --orphans");
	if (n == 0)
		return cli_usage_error("missing segment name");
	/* every name is checked before anything is removed */
	for (i = 0; i < n; i++)
		if ((r = cli_target_set(&tv[i], backend, targets[i])) != 0)
			return r;
	for (i = 0; i < n; i++) {
		struct cli_target t = tv[i];
		const char *base = NULL;
		struct stat seen;
		shk_seg_opts o;
		int rc, dfd = -1;

		if (t.backend == SHK_BACKEND_FILE &&
		    (dfd = rm_dir(t.name, &base)) < 0) {
			cli_error(t.label, dfd);
			failed = 1;
			continue;
		}
		if (!force && (rm_guard(&t, dfd, base, &seen) != 0 ||
			       rm_refuse_live(&t) != 0)) {
			failed = 1; /* rm_guard or rm_refuse_live said why */
			if (dfd >= 0)
				close(dfd);
			continue;
		}
		if (dry_run) {
			printf("would remove %s\n", t.label);
			if (dfd >= 0)
				close(dfd);
			continue;
		}
		cli_target_opts(&t, &o);
		cli_test_pause(); /* tests/cli.sh swaps a directory here */
		if (dfd >= 0) {
			rc = rm_file(dfd, base, force ? NULL : &seen);
			close(dfd);
		} else {
			rc = shk_seg_unlink(t.name, &o);
		}
		if (rc) {
			cli_error(t.label, rc);
			failed = 1;
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
	int i, n = 0, r, rc, opts_done = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && !strcmp(a, "--")) {
			opts_done = 1;
		} else if (!opts_done && cli_is_help(a)) {
			return cli_cmd_help();
		} else if (!opts_done &&
			   (r = cli_backend_flag(a, &backend)) != 0) {
			if (r < 0)
				return CLI_EXIT_USAGE;
		} else if (!opts_done && a[0] == '-') {
			return cli_usage_error("unknown option '%s'", a);
		} else if (n == 2) {
			return cli_usage_error("unexpected argument '%s'", a);
		} else {
			pos[n++] = a;
		}
	}
	if (n != 2)
		return cli_usage_error("usage: shmkit hold TARGET SECONDS");
	if (cli_parse_u64(pos[1], &secs) || secs > 86400 * 365)
		return cli_usage_error("bad SECONDS");
	if ((rc = cli_target_set(&t, backend, pos[0])) != 0)
		return rc;
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
	if (fflush(stdout) != 0) {
		/* whoever waits for this line will not see it: do not hold
		 * (main reports the lost output, exit 1) */
		shk_seg_close(seg);
		return CLI_EXIT_OK;
	}
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
