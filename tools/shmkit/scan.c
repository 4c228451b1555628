/*
 * scan.c - find every shmkit segment on this host.
 *
 * POSIX: regular files in /dev/shm whose first 8 bytes are the segment
 * magic; other files, and files this user cannot read, are ignored
 * silently.  SysV: every key in /proc/sysvipc/shm that opens as a shmkit
 * segment, or whose memory starts with the magic (listed as corrupt).  Each
 * segment is opened SHK_RDONLY, which maps it read-only and does not attach,
 * so listing changes nothing.
 *
 * Anyone may create entries in /dev/shm, so a name proves nothing: each
 * POSIX entry is opened once, non-blocking and without following a
 * symlink, checked through that descriptor (regular file, magic), and the
 * segment is then opened from the same descriptor (shk_seg_open_fd).  A
 * FIFO or symlink swapped in under the name after the check is never
 * opened, so it can neither hang the scan nor redirect it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define SHM_DIR "/dev/shm"
#define SEG_MAGIC "SHMKIT\0\1"
#define SCAN_OPEN_TIMEOUT_NS (200LL * 1000 * 1000)
/* docs/segment-format.md: the state word, INITIALIZING (1) -> READY (2),
 * and the attach table (256 records of 32 bytes after the header page) */
#define SEG_STATE_OFF 192
#define SEG_INITIALIZING 1u
#define SEG_ATTACH_OFF 4096
#define SEG_ATTACH_LEN (256 * 32)
/* the creation lock: an OFD lock on this byte of the file, which the
 * creator holds for writing until READY */
#define SEG_CREATE_LOCK (((off_t)1 << 50) - 1)

int
cli_code_is_corrupt(int code)
{
	return code == SHK_EBADSEG || code == SHK_EVERSION ||
	       code == SHK_ECORRUPT || code == SHK_ETRUNC ||
	       code == SHK_ECHECKSUM;
}

/*
 * Orphaned: every attach record's process died, or the segment's creation
 * never finished (e->unfinished): nobody can open it, and its name blocks
 * a new creation.
 */
int
cli_seg_orphaned(const struct cli_seg_entry *e)
{
	return e->unfinished ||
	       (e->rc == 0 && e->st.attached > 0 && e->st.attached_alive == 0);
}

void
cli_seg_state(const struct cli_seg_entry *e, char *buf, size_t len)
{
	if (e->rc == 0)
		snprintf(buf, len, "%s",
			 cli_seg_orphaned(e) ? "orphaned" : "ok");
	else if (e->unfinished)
		snprintf(buf, len, "unfinished: creator died");
	else
		snprintf(buf, len, "%s: %s",
			 cli_code_is_corrupt(e->rc) ? "corrupt" : "error",
			 shk_errname(e->rc));
}

static struct cli_seg_entry *
list_add(struct cli_seg_list *l)
{
	struct cli_seg_entry *e;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *v = realloc(l->v, cap * sizeof(*l->v));
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

void
cli_seg_list_free(struct cli_seg_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/*
 * cli_open_regular opens path (relative to dirfd, or absolute) for
 * inspection: read-only, O_NONBLOCK so that a FIFO cannot block the open,
 * O_NOFOLLOW so that a symlink is not followed.  Returns the descriptor of
 * a regular file; SHK_EBADSEG for anything else (FIFO, directory, socket,
 * device, symlink); SHK_ENOENT, SHK_EACCES, SHK_ENAMETOOLONG or SHK_EIO
 * when it cannot be opened.
 */
int
cli_open_regular(int dirfd, const char *path)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, path,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		switch (errno) {
		case ENOENT:
		case ENOTDIR:
			return SHK_ENOENT;
		case EACCES:
		case EPERM:
			return SHK_EACCES;
		case ENAMETOOLONG:
			return SHK_ENAMETOOLONG;
		case ELOOP: /* a symlink, under O_NOFOLLOW */
		case ENXIO: /* a socket */
		case ENODEV:
			return SHK_EBADSEG;
		default:
			return SHK_EIO;
		}
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		return SHK_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return SHK_EBADSEG;
	}
	return fd;
}

/* 1 when the file's first 8 bytes are the magic, 0 when they are not (or
 * it is shorter), SHK_EIO when it cannot be read. */
int
cli_fd_has_magic(int fd)
{
	char m[8];
	ssize_t got;

	got = pread(fd, m, 8, 0);
	if (got < 0)
		return SHK_EIO;
	return got == 8 && memcmp(m, SEG_MAGIC, 8) == 0;
}

/* 1 when the SysV segment's memory starts with the magic. */
static int
sysv_has_magic(int shmid, uint64_t size)
{
	void *p;
	int ok;

	if (size < 8)
		return 0;
	p = shmat(shmid, NULL, SHM_RDONLY);
	if (p == (void *)-1)
		return 0;
	ok = memcmp(p, SEG_MAGIC, 8) == 0;
	shmdt(p);
	return ok;
}

/* 1 when the SysV segment under key starts with the magic, 0 when it does
 * not, SHK_ENOENT when there is none, SHK_EACCES (or SHK_EIO) when it
 * cannot be read. */
int
cli_sysv_key_has_magic(int32_t key)
{
	struct shmid_ds ds;
	void *p;
	int id, ok;

	id = shmget((key_t)key, 0, 0);
	if (id < 0 || shmctl(id, IPC_STAT, &ds) != 0) {
		if (errno == ENOENT || errno == EIDRM || errno == EINVAL)
			return SHK_ENOENT;
		return errno == EACCES ? SHK_EACCES : SHK_EIO;
	}
	if (ds.shm_segsz < 8)
		return 0;
	p = shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1)
		return errno == EACCES ? SHK_EACCES : SHK_EIO;
	ok = memcmp(p, SEG_MAGIC, 8) == 0;
	shmdt(p);
	return ok;
}

/* The handle being read under the guard; static so that it survives a
 * siglongjmp and can still be closed. */
static shk_seg *volatile guarded_seg;

/*
 * Opens (read-only) and reads one segment's stats into e: from fd when it
 * is >= 0 (a POSIX entry its caller has checked), else by name and o.  A
 * SIGBUS while doing so means the segment was truncated under us.
 */
static void
probe(struct cli_seg_entry *e, int fd, const char *name, const shk_seg_opts *o)
{
	shk_seg *seg = NULL;
	int rc;

	guarded_seg = NULL;
	if (sigsetjmp(cli_guard_jmp, 1) == 0) {
		cli_guard_arm();
		if (fd >= 0)
			rc = shk_seg_open_fd(fd, CLI_INSPECT, o, &seg);
		else
			rc = shk_seg_open(name, CLI_INSPECT, o, &seg);
		guarded_seg = seg;
		if (rc == 0) {
			e->st.size = sizeof(e->st);
			rc = shk_seg_info(seg, &e->st);
		}
		cli_guard_disarm();
		e->rc = rc;
	} else {
		e->rc = SHK_ETRUNC;
	}
	shk_seg_close(guarded_seg);
	guarded_seg = NULL;
}

/*
 * 1 when fd's segment (it has the magic) is one whose creation never
 * finished: its state word still INITIALIZING, its attach table all zero
 * (a creator attaches only after READY, and a record, once used, is never
 * zero again), and the creator's lock free.  A live creator holds that
 * lock from before it writes the magic until READY (segment.c), so a free
 * one means it died.  A damaged READY segment whose state word was
 * scribbled has attach records: corrupt, not unfinished, and never
 * removed by rm --orphans.
 *
 * The lock is asked about (F_OFD_GETLK), not taken: only a write lock is a
 * creator's, and F_RDLCK conflicts with write locks alone, so an opener's
 * or a reader's read lock is no creator at work.  (It was flock(), whose
 * LOCK_EX any reader of the file could take to make its segment look
 * like a creation at work for ever.)
 */
static int
fd_unfinished(int fd)
{
	uint8_t att[SEG_ATTACH_LEN];
	struct flock fl;
	uint32_t st;
	size_t i;

	if (pread(fd, &st, sizeof(st), SEG_STATE_OFF) != (ssize_t)sizeof(st) ||
	    st != SEG_INITIALIZING)
		return 0;
	if (pread(fd, att, sizeof(att), SEG_ATTACH_OFF) != (ssize_t)sizeof(att))
		return 0;
	for (i = 0; i < sizeof(att); i++)
		if (att[i])
			return 0;
	memset(&fl, 0, sizeof(fl)); /* l_pid must be 0 for OFD commands */
	fl.l_type = F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = SEG_CREATE_LOCK;
	fl.l_len = 1;
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK)
		return 0; /* held for writing: a creator at work */
	/* A flock() is not asked about: a library from before 2026-11-25
	 * took one while creating, but any reader can take one too, and
	 * would then keep a dead creator's file from `rm --orphans` for
	 * ever (tests/cli.sh); such a creator at work is shown unfinished
	 * (docs/segment-format.md: one library version per host) */
	return 1;
}

/*
 * Opens named target t (POSIX: its /dev/shm file; file: its path) with
 * cli_open_regular(): the descriptor, or that function's codes.
 */
int
cli_open_target_file(const struct cli_target *t)
{
	char path[4200];
	const char *n = t->name;

	if (t->backend == SHK_BACKEND_POSIX) {
		while (*n == '/')
			n++;
		snprintf(path, sizeof(path), "%s/%s", SHM_DIR, n);
		n = path;
	}
	return cli_open_regular(AT_FDCWD, n);
}

/*
 * 1 when target t (POSIX or file) is a segment whose creation never
 * finished: the magic, and fd_unfinished().
 */
int
cli_target_unfinished(const struct cli_target *t)
{
	int fd, r;

	if (!t->name ||
	    (t->backend != SHK_BACKEND_POSIX && t->backend != SHK_BACKEND_FILE))
		return 0;
	fd = cli_open_target_file(t);
	if (fd < 0)
		return 0;
	r = cli_fd_has_magic(fd) == 1 && fd_unfinished(fd);
	close(fd);
	return r;
}

/*
 * Probes the /dev/shm entry name (relative to dirfd): 1 when it is not a
 * regular file starting with the magic, or cannot be read (not ours to
 * list), else 0 with e->rc and e->st filled through the same descriptor.
 */
static int
probe_posix(struct cli_seg_entry *e, int dirfd, const char *name,
	    const shk_seg_opts *o)
{
	int fd;

	e->unfinished = 0;
	fd = cli_open_regular(dirfd, name);
	if (fd < 0)
		return 1;
	if (cli_fd_has_magic(fd) != 1) {
		close(fd);
		return 1;
	}
	probe(e, fd, NULL, o);
	if (e->rc == SHK_EBADSEG)
		e->unfinished = fd_unfinished(fd);
	close(fd);
	return 0;
}

/* Reads e's segment again (by its name or SysV key) and refreshes e.  A
 * POSIX entry that is no longer a regular file with the magic becomes
 * SHK_EBADSEG, so it is not taken for an orphan. */
void
cli_reprobe(struct cli_seg_entry *e)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	int dirfd;

	e->unfinished = 0;
	o.open_timeout_ns = SCAN_OPEN_TIMEOUT_NS;
	o.backend = e->backend;
	o.sysv_key = e->sysv_key;
	memset(&e->st, 0, sizeof(e->st));
	if (e->backend == SHK_BACKEND_SYSV) {
		probe(e, -1, NULL, &o);
		return;
	}
	dirfd = open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || probe_posix(e, dirfd, e->raw, &o))
		e->rc = SHK_EBADSEG;
	if (dirfd >= 0)
		close(dirfd);
}

static int
scan_posix(struct cli_seg_list *l, const char *match)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	struct cli_seg_entry *e;
	struct dirent *d;
	DIR *dir;

	o.open_timeout_ns = SCAN_OPEN_TIMEOUT_NS;
	dir = opendir(SHM_DIR);
	if (!dir)
		return errno == ENOENT ? 0 : SHK_EIO;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		if (d->d_type != DT_REG && d->d_type != DT_UNKNOWN)
			continue;
		if (match && fnmatch(match, d->d_name, 0) != 0)
			continue;
		e = list_add(l);
		if (!e) {
			closedir(dir);
			return SHK_ENOMEM;
		}
		if (probe_posix(e, dirfd(dir), d->d_name, &o)) {
			l->n--; /* not a segment, or not readable by us */
			continue;
		}
		/* the name is anyone's choice: keep it as it is for open and
		 * unlink, show only a cleaned copy (a newline would forge a
		 * row of the table, an escape sequence reach the terminal) */
		snprintf(e->raw, sizeof(e->raw), "%s", d->d_name);
		cli_printable(e->name, sizeof(e->name), d->d_name);
		e->backend = SHK_BACKEND_POSIX;
		e->shmid = -1;
	}
	closedir(dir);
	return 0;
}

static int
scan_sysv(struct cli_seg_list *l, const char *match)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	struct cli_seg_entry *e;
	char line[512];
	FILE *f;

	f = fopen("/proc/sysvipc/shm", "re");
	if (!f)
		return 0; /* no SysV IPC in this kernel or namespace */
	if (!fgets(line, sizeof(line), f)) { /* column titles */
		fclose(f);
		return 0;
	}
	o.backend = SHK_BACKEND_SYSV;
	o.open_timeout_ns = SCAN_OPEN_TIMEOUT_NS;
	while (fgets(line, sizeof(line), f)) {
		long long key, shmid;
		unsigned long long size;
		unsigned perms;

		if (sscanf(line, "%lld %lld %o %llu", &key, &shmid, &perms,
			   &size) != 4)
			continue;
		if (key == 0 || key < INT32_MIN || key > INT32_MAX)
			continue; /* IPC_PRIVATE: cannot be opened by key */
		e = list_add(l);
		if (!e) {
			fclose(f);
			return SHK_ENOMEM;
		}
		e->backend = SHK_BACKEND_SYSV;
		e->sysv_key = (int32_t)key;
		e->shmid = (int32_t)shmid;
		e->sysv_size = size;
		o.sysv_key = (int32_t)key;
		probe(e, -1, NULL, &o);
		if (e->rc != 0 && !sysv_has_magic((int)shmid, size)) {
			l->n--; /* not ours */
			continue;
		}
		if (e->rc == 0 && e->st.name[0])
			cli_printable(e->name, sizeof(e->name), e->st.name);
		else
			snprintf(e->name, sizeof(e->name), "0x%08x",
				 (uint32_t)e->sysv_key);
		if (match && fnmatch(match, e->name, 0) != 0)
			l->n--;
	}
	fclose(f);
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct cli_seg_entry *x = a, *y = b;

	if (x->backend != y->backend)
		return x->backend < y->backend ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
cli_scan(struct cli_seg_list *out, const char *match)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = scan_posix(out, match);
	if (rc == 0)
		rc = scan_sysv(out, match);
	if (rc) {
		cli_seg_list_free(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), entry_cmp);
	return 0;
}
