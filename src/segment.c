/*
 * segment.c - create, open, validate, close and unlink segments (the attach
 * table each open handle claims a record in is attach.c).
 * ALGORITHMS.md §9, with the creation lock an OFD lock on one byte
 * (shk__seg_lock, SHK__SEG_CREATE_LOCK) instead of flock(): the creator
 * holds it for writing while it initialises and publishes READY with a
 * release store; an opener takes it for reading without waiting, so it
 * can tell a slow creator (lock busy) from a dead one (lock free, state
 * not READY).  Both keep their lock until their handle is attached: a
 * creator that fails after READY removes the name first, and
 * shk__seg_unlink_unused() under the write lock sees every opener either
 * attached or not yet holding the lock.  An opener that gets the lock on
 * a file whose name was removed (st_nlink 0) starts over.  Not flock():
 * its LOCK_EX works on a read-only descriptor, so anyone who could read
 * the file could make every opener wait for a "creator at work"; a write
 * lock needs a writable description.
 *
 * What a killed process leaves behind: a creator killed mid-initialisation
 * leaves a segment that is not READY and whose lock is free: openers get
 * SHK_EBADSEG (remove it with shk_seg_unlink or `shmkit rm`).  The magic
 * is written right after the file is sized, so only a creator killed
 * between its O_EXCL open and that write (lock, fchmod, ftruncate) leaves
 * a file without it, which `shmkit rm` refuses without --force.  A process
 * killed while attached leaves an ACTIVE attach record with a dead pid: the
 * next opener that finds no free record reclaims it, `shmkit ls` counts it
 * as dead and `shmkit rm --orphans` removes segments with only dead ones.
 *
 * SysV has no lock: an opener polls the state word while the segment is
 * zero or partly formatted and its creator (shm_cpid) is alive, until the
 * open's timeout; a dead creator or a removed segment gives SHK_EBADSEG.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "registry.h"

#define DEFAULT_OPEN_TIMEOUT_NS 1000000000LL
#define ZERO_SIZE_GRACE_NS 50000000LL

static void
sleep_ns(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

static uint64_t
align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint64_t
hdr_checksum(const struct shk__seg_hdr *h)
{
	return shk__hash64(h, offsetof(struct shk__seg_hdr, checksum), 0);
}

static int
sysv_key_of(const char *name, const shk_seg_opts *o)
{
	uint64_t h;

	if (o && o->sysv_key)
		return o->sysv_key;
	if (name && name[0] == '/')
		name++;
	h = shk__hash64(name, strlen(name), 0x53484b);
	/* never IPC_PRIVATE (0) */
	return (int)((h & 0x3fffffff) | 0x40000000);
}

static uint32_t
round_pow2(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/*
 * Validates a mapped header (map_len bytes readable) and, on success, fills
 * *out with the copy it checked.  Order matters: the most precise code
 * first.
 *
 * The header is read from shared memory exactly once, into the local copy,
 * and every check and every later use works on that copy (ALGORITHMS §10):
 * a peer that rewrites the header after the check cannot change what the
 * caller adopts.  Only the immutable fields (the bytes before `checksum`,
 * plus `checksum`) are copied; the rest of *out is zero.
 */
static int
validate_hdr(const uint8_t *base, uint64_t map_len, int need_ready,
	     struct shk__seg_hdr *out)
{
	const struct shk__seg_hdr *h = (const void *)base;
	struct shk__seg_hdr c;
	uint64_t end;

	if (map_len < 8 || memcmp(base, SHK__MAGIC, 8) != 0)
		return SHK_EBADSEG;
	if (map_len < sizeof(*h))
		return SHK_ETRUNC;
	if (need_ready &&
	    /* acquire: pairs with the creator's release store of READY in
	     * format_new(); loaded before the copy below, so that the copy
	     * holds the formatted header (a SysV opener has no lock that
	     * orders it) */
	    atomic_load_explicit(&h->state, memory_order_acquire) !=
		    SHK__SEG_READY)
		return SHK_EBADSEG;
	/* Read once into a local copy; use only the copy (§10). */
	memset(&c, 0, sizeof(c));
	memcpy(&c, h, offsetof(struct shk__seg_hdr, state));
	/* Compiler barrier (a signal fence orders nothing between threads):
	 * after it the compiler must assume the shared header changed, so it
	 * cannot turn a read of the copy back into a read of *h. */
	atomic_signal_fence(memory_order_seq_cst);
	if (memcmp(c.magic, SHK__MAGIC, 8) != 0)
		return SHK_EBADSEG;
	if (c.version != SHK__FORMAT_VERSION)
		return SHK_EVERSION;
	if (c.total_len > map_len)
		return SHK_ETRUNC;
	if (hdr_checksum(&c) != c.checksum)
		return SHK_ECHECKSUM;
	/* total_len % 4096: an opener unmaps the file's tail from total_len
	 * on, which munmap refuses at an unaligned address (the mapping
	 * leaked); creators always round the length up to 4 KiB */
	if (c.hdr_len != SHK__HDR_LEN || c.total_len < SHK_SEG_MIN_LEN ||
	    c.total_len % 4096 || c.attach_cap == 0 || c.attach_cap > 1000 ||
	    c.reg_cap == 0 || c.reg_cap > SHK__MAX_OBJECTS ||
	    (c.reg_cap & (c.reg_cap - 1)))
		return SHK_ECORRUPT;
	/* regions in order, in bounds, not overlapping */
	if (c.attach_off < c.hdr_len || c.attach_off > c.total_len ||
	    (uint64_t)c.attach_cap * sizeof(struct shk__attach) >
		    c.total_len - c.attach_off)
		return SHK_ECORRUPT;
	end = c.attach_off +
	      (uint64_t)c.attach_cap * sizeof(struct shk__attach);
	if (c.reg_off < end || c.reg_off > c.total_len ||
	    (uint64_t)c.reg_cap * sizeof(struct shk__reg_ent) >
		    c.total_len - c.reg_off)
		return SHK_ECORRUPT;
	end = c.reg_off + (uint64_t)c.reg_cap * sizeof(struct shk__reg_ent);
	if (c.heap_off < end || c.heap_off > c.total_len ||
	    c.heap_len > c.total_len - c.heap_off || c.heap_off % 4096)
		return SHK_ECORRUPT;
	if (memchr(c.name, '\0', sizeof(c.name)) == NULL)
		return SHK_ECORRUPT;
	*out = c;
	return 0;
}

/*
 * Copies the validated immutable fields into the handle: from hc, the copy
 * that validate_hdr() checked (or that format_new() wrote), never from the
 * segment.  seg->len was set to the mapped length, and hc->total_len is at
 * most that (validate_hdr checked it).
 */
static void
adopt_hdr(shk_seg *seg, const struct shk__seg_hdr *hc)
{
	seg->hdr = *hc;
	seg->len = hc->total_len;
	seg->attach_off = hc->attach_off;
	seg->attach_cap = hc->attach_cap;
	seg->reg_off = hc->reg_off;
	seg->reg_cap = hc->reg_cap;
	seg->heap_off = hc->heap_off;
	seg->heap_len = hc->heap_len;
}

/*
 * Lays out and formats a new segment of len bytes at base.  The header is
 * built in a local copy, written to the segment, and returned in *out: the
 * creator adopts its own copy and never reads the header back (§10).
 */
static int
format_new(uint8_t *base, uint64_t len, const char *name, uint32_t backend,
	   uint32_t mode, uint32_t max_objects, struct shk__seg_hdr *out)
{
	struct shk__seg_hdr *h = (void *)base, c;
	uint64_t reg_off, heap_off;
	int rc;

	memset(&c, 0, sizeof(c));
	memcpy(c.magic, SHK__MAGIC, 8);
	c.version = SHK__FORMAT_VERSION;
	c.hdr_len = SHK__HDR_LEN;
	c.total_len = len;
	c.page_len = (uint32_t)shk__page_size();
	c.features = 0;
	c.backend = backend;
	c.mode = mode;
	c.creator_pid = (uint32_t)getpid();
	c.creator_uid = (uint32_t)getuid();
	c.creator_start = shk__self_start_ticks();
	c.created_ns = (uint64_t)shk__realtime_ns();
	c.attach_off = SHK__HDR_LEN;
	c.attach_cap = SHK__ATTACH_CAP;
	c.reg_cap = max_objects;
	reg_off = align_up(c.attach_off + (uint64_t)SHK__ATTACH_CAP *
						  sizeof(struct shk__attach),
			   64);
	c.reg_off = reg_off;
	heap_off = align_up(reg_off + (uint64_t)max_objects *
					      sizeof(struct shk__reg_ent),
			    4096);
	if (heap_off >= len || len - heap_off < SHK__HEAP_MIN_LEN)
		return SHK_EINVAL;
	c.heap_off = heap_off;
	c.heap_len = len - heap_off;
	/* POSIX and SysV names are stored without their optional leading
	 * '/': "/x" and "x" name the same segment (shm_open, sysv_key_of),
	 * and '/' with SHK_NAME_MAX characters would not fit the field (it
	 * kept a shorter name: one that another segment may have) */
	if (name && name[0] == '/' &&
	    (backend == SHK_BACKEND_POSIX || backend == SHK_BACKEND_SYSV))
		name++;
	snprintf(c.name, sizeof(c.name), "%s", name ? name : "");
	c.checksum = hdr_checksum(&c);
	/* relaxed: nobody maps the segment before we publish READY under
	 * the exclusive lock (or, for SysV, before the release store) */
	atomic_store_explicit(&h->state, SHK__SEG_INITIALIZING,
			      memory_order_relaxed);
	memcpy(h, &c, offsetof(struct shk__seg_hdr, state));
	shk__reg_init(base, reg_off, max_objects);
	rc = shk__heap_init(base, heap_off, len - heap_off);
	if (rc)
		return rc;
	SHK_CRASHPOINT("seg.init.before_ready");
	/* release: publishes the whole formatted segment; pairs with the
	 * acquire load of state in validate_hdr() */
	atomic_store_explicit(&h->state, SHK__SEG_READY, memory_order_release);
	*out = c;
	return 0;
}

static int
opts_check(const shk_seg_opts *in, shk_seg_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (in) {
		if (in->size == 0 || in->size > 4096)
			return SHK_EINVAL;
		memcpy(o, in, in->size < sizeof(*o) ? in->size : sizeof(*o));
	}
	if (!o->mode)
		o->mode = 0600;
	/* permission bits only: 04000 would be SHM_HUGETLB to shmget(),
	 * and a shared memory object has no use for setuid/setgid/sticky */
	if (o->mode & ~0777u)
		return SHK_EINVAL;
	if (!o->len)
		o->len = SHK__DEFAULT_LEN;
	if (o->len < SHK_SEG_MIN_LEN || o->len > SHK_SEG_MAX_LEN)
		return SHK_EINVAL;
	o->len = align_up(o->len, 4096);
	if (o->backend > SHK_BACKEND_MEMFD)
		return SHK_EINVAL;
	if (!o->max_objects)
		o->max_objects = SHK__DEFAULT_OBJECTS;
	if (o->max_objects > SHK__MAX_OBJECTS)
		return SHK_EINVAL;
	o->max_objects = round_pow2(o->max_objects);
	/* as every blocking call's timeout_ns: below SHK_FOREVER is no
	 * timeout (it waited forever) */
	if (!SHK__TIMEOUT_OK(o->open_timeout_ns))
		return SHK_EINVAL;
	if (!o->open_timeout_ns)
		o->open_timeout_ns = DEFAULT_OPEN_TIMEOUT_NS;
	return 0;
}

/* The last handle serial given out (shk_seg.serial). */
static _Atomic uint64_t seg_serial;

static shk_seg *
seg_new(const char *name, uint32_t backend, unsigned flags)
{
	shk_seg *seg = calloc(1, sizeof(*seg));

	if (!seg)
		return NULL;
	/* relaxed: only uniqueness matters, which the RMW gives; the
	 * handle is published to other threads by the caller's own means */
	seg->serial = atomic_fetch_add_explicit(&seg_serial, 1,
						memory_order_relaxed) +
		      1;
	seg->fd = -1;
	seg->shmid = -1;
	seg->slot = UINT32_MAX;
	seg->lockfd = -1;
	seg->own_idx = -1;
	seg->owner_key = shk__self_key(); /* read-only handles too */
	seg->backend = backend;
	seg->flags = flags;
	seg->name = strdup(name ? name : "");
	if (!seg->name) {
		free(seg);
		return NULL;
	}
	pthread_mutex_init(&seg->reg_mu, NULL);
	/* the handle's own reference (shk_seg_close's); relaxed: the
	 * handle is not yet published to any other thread */
	atomic_init(&seg->refs, 1);
	atomic_init(&seg->closed, 0);
	return seg;
}

static void
seg_free(shk_seg *seg)
{
	if (seg->base) {
		if (seg->backend == SHK_BACKEND_SYSV)
			shmdt(seg->base);
		else
			munmap(seg->base, seg->len);
	}
	if (seg->fd >= 0)
		close(seg->fd);
	/* in a forked child the fork handler closed it already, and the
	 * number may name another file by now */
	if (seg->lockfd >= 0 && seg->owner_key == shk__self_key())
		shk__livelock_close(seg->lockfd);
	pthread_mutex_destroy(&seg->reg_mu);
	free(seg->name);
	free(seg);
}

/* After mapping and validating: adopt the validated copy hc, attach, heap
 * state. */
static int
finish_open(shk_seg *seg, const struct shk__seg_hdr *hc)
{
	int rc;

	adopt_hdr(seg, hc);
	rc = shk__heap_attach(seg);
	if (rc)
		return rc;
	if (!(seg->flags & SHK_RDONLY)) {
		rc = shk__seg_attach(seg);
		if (rc) {
			shk__heap_detach(seg);
			return rc;
		}
	}
	return 0;
}

/* Writes the magic and state INITIALIZING into a new, still unmapped,
 * zero-filled segment file (see create_fd()).  A file system without
 * write(2) (hugetlbfs: EINVAL) gets them from format_new() only. */
static int
write_early_hdr(int fd)
{
	uint8_t b[offsetof(struct shk__seg_hdr, state) + sizeof(uint32_t)];
	uint32_t st = SHK__SEG_INITIALIZING;
	ssize_t n;

	memset(b, 0, sizeof(b));
	memcpy(b, SHK__MAGIC, 8);
	memcpy(b + offsetof(struct shk__seg_hdr, state), &st, sizeof(st));
	n = pwrite(fd, b, sizeof(b), 0);
	if (n < 0 && (errno == EINVAL || errno == EOPNOTSUPP))
		return 0;
	if (n < 0)
		return shk__errno_code(errno);
	return n == (ssize_t)sizeof(b) ? 0 : SHK_EIO;
}

/*
 * posix_fallocate(fd, 0, len), never SHK_EINTR: a signal may interrupt a
 * long one (tmpfs in older kernels checked for any pending signal between
 * pages, and gave back the pages of the interrupted call; the 6.18 kernel
 * of the development VM checks only for fatal ones).  After EINTR the rest
 * is reserved in pieces, halved at each EINTR down to 64 KiB, so that a
 * periodic signal (a profiler's) cannot keep it from finishing.  Returns
 * 0 or posix_fallocate's errno.
 */
static int
reserve_pages(int fd, uint64_t len)
{
	uint64_t off = 0, piece = len, n;
	int rc;

	while (off < len) {
		n = len - off < piece ? len - off : piece;
		rc = posix_fallocate(fd, (off_t)off, (off_t)n);
		if (rc == EINTR) {
			if (piece > 65536)
				piece = (piece / 2 + 4095) & ~(uint64_t)4095;
			continue;
		}
		if (rc)
			return rc;
		off += n;
	}
	return 0;
}

/* Creator path for fd-backed segments (POSIX, file, memfd).  On failure
 * the lock stays held (the caller removes the name, then unlocks; closing
 * the descriptor unlocks too).
 *
 * The creation lock (shk__seg_lock, for writing) is polled until
 * deadline: anyone who can open the new file may hold it for reading (an
 * opener that found it empty takes it for an instant, but a stopped one,
 * or any process of the user, can keep it), and a blocking lock would
 * wait for it for ever, past open_timeout_ns, and return EINTR to a
 * signal without SA_RESTART.  A named file is made with its owner's
 * permission bits only (open_named_fd()) and gets its mode here, once we
 * hold the lock, so that no other user can open it before then. */
static int
create_fd(shk_seg *seg, const shk_seg_opts *o, const char *label,
	  int64_t deadline, struct shk__seg_hdr *hc)
{
	void *p;
	int rc;

	SHK_CRASHPOINT("seg.create.opened");
	while ((rc = shk__seg_lock(seg->fd, F_WRLCK)) != 0) {
		if (rc != SHK_EAGAIN)
			return rc;
		if (shk__now_ns() >= deadline)
			return SHK_ETIMEDOUT;
		sleep_ns(200000);
	}
	/* the mode is not subject to the umask; a memfd too, which is
	 * opened again through /proc/PID/fd/N by anyone it was passed to
	 * (with its 0777 a read-only descriptor became a writable one) */
	(void)fchmod(seg->fd, o->mode);
	if (ftruncate(seg->fd, (off_t)o->len) != 0) {
		rc = shk__errno_code(errno);
		goto fail;
	}
	/* The magic and INITIALIZING before the (long, for a big segment)
	 * fallocate: a creator killed from here on leaves a file that tools
	 * know as a shmkit segment whose creator died (`shmkit ls` lists it,
	 * `shmkit rm` removes it), not an anonymous run of zeros.  pwrite,
	 * not the mapping: on a full tmpfs it fails where a store would
	 * raise SIGBUS.  format_new() writes both again. */
	rc = write_early_hdr(seg->fd);
	if (rc)
		goto fail;
	SHK_CRASHPOINT("seg.create.sized");
	/* Reserve the pages now: a full tmpfs fails here with ENOSPC
	 * instead of SIGBUS later (§9).  hugetlbfs has no fallocate. */
	rc = reserve_pages(seg->fd, o->len);
	if (rc && rc != EOPNOTSUPP && rc != EINVAL && rc != ENODEV) {
		rc = shk__errno_code(rc);
		goto fail;
	}
	p = mmap(NULL, o->len, PROT_READ | PROT_WRITE, MAP_SHARED, seg->fd, 0);
	if (p == MAP_FAILED) {
		rc = shk__errno_code(errno);
		goto fail;
	}
	seg->base = p;
	seg->len = o->len;
	rc = format_new(seg->base, o->len, label, seg->backend, o->mode,
			o->max_objects, hc);
	if (rc)
		goto fail;
	/* still locked: shk_seg_open() unlocks once this handle is
	 * attached, so that a failure there can still remove the name
	 * before anyone opens it */
	seg->created = 1;
	return 0;
fail:
	/* still locked: the caller removes the name first (see
	 * open_named_fd()); closing the descriptor unlocks */
	return rc;
}

/* Opener path for fd-backed segments: wait for READY, map, validate; *hc
 * receives the validated header copy.  On success the shared lock stays
 * held: shk_seg_open() drops it once the handle is attached, so that
 * shk__seg_unlink_unused(), under the exclusive lock, finds every opener
 * either attached or not yet past this point.  named: the descriptor came
 * from the name (POSIX, file), so a file whose name was removed
 * (st_nlink 0) is no longer the segment of that name: SHK_ENOENT. */
static int
open_fd_wait(shk_seg *seg, int64_t deadline, int named, struct shk__seg_hdr *hc)
{
	int64_t first_zero = 0;
	struct stat st;
	int rc, prot;
	void *p;

	prot = (seg->flags & SHK_RDONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
	for (;;) {
		if ((rc = shk__seg_lock(seg->fd, F_RDLCK)) != 0) {
			if (rc != SHK_EAGAIN)
				return rc;
			/* the creator is still initialising */
			if (shk__now_ns() >= deadline)
				return SHK_ETIMEDOUT;
			sleep_ns(200000);
			continue;
		}
		if (fstat(seg->fd, &st) != 0) {
			rc = shk__errno_code(errno);
			goto unlock;
		}
		if (named && st.st_nlink == 0) {
			/* removed since we opened it: a creator that
			 * failed after READY, or shk__seg_unlink_unused() */
			rc = SHK_ENOENT;
			goto unlock;
		}
		if (st.st_size == 0) {
			/* a creator between O_EXCL and its lock, or a foreign
			 * empty file: give it a short grace period */
			shk__seg_lock(seg->fd, F_UNLCK);
			if (!first_zero)
				first_zero = shk__now_ns();
			if (shk__now_ns() - first_zero > ZERO_SIZE_GRACE_NS ||
			    shk__now_ns() >= deadline)
				return SHK_EBADSEG;
			sleep_ns(200000);
			continue;
		}
		if ((uint64_t)st.st_size < sizeof(struct shk__seg_hdr)) {
			uint8_t m[8];
			rc = SHK_ETRUNC;
			if (pread(seg->fd, m, 8, 0) != 8 ||
			    memcmp(m, SHK__MAGIC, 8) != 0)
				rc = SHK_EBADSEG;
			goto unlock;
		}
		p = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, seg->fd,
			 0);
		if (p == MAP_FAILED) {
			rc = shk__errno_code(errno);
			goto unlock;
		}
		rc = validate_hdr(p, (uint64_t)st.st_size, 1, hc);
		if (rc) {
			munmap(p, (size_t)st.st_size);
			goto unlock;
		}
		/* keep exactly the validated length: hc->total_len, from the
		 * checked copy (<= st_size), never re-read from the segment */
		seg->base = p;
		seg->len = (uint64_t)st.st_size;
		if (hc->total_len < seg->len) {
			uint64_t tl = hc->total_len;
			/* page-aligned: total_len is a multiple of 4 KiB */
			munmap((uint8_t *)p + tl, seg->len - tl);
			seg->len = tl;
		}
		return 0; /* still locked (above) */
	unlock:
		shk__seg_lock(seg->fd, F_UNLCK);
		return rc;
	}
}

/*
 * Whether an existing named segment owned by uid may be opened: only our
 * own (the effective uid's), unless the caller passed SHK_ANY_OWNER.  The
 * mode alone is not enough: another user who made the name first with
 * mode 0666 would be handed our data (a create-or-open took it for ours).
 */
static int
owner_ok(uid_t uid, unsigned flags)
{
	return (flags & SHK_ANY_OWNER) || uid == geteuid();
}

/* name without its optional leading '/', as the header stores it */
static const char *
stored_name(const char *name)
{
	return name[0] == '/' ? name + 1 : name;
}

static int
open_named_fd(shk_seg *seg, const char *name, unsigned flags,
	      const shk_seg_opts *o, struct shk__seg_hdr *hc)
{
	int64_t deadline = shk__deadline(o->open_timeout_ns);
	int fd, rc, of, rdonly = (flags & SHK_RDONLY) != 0;
	int file = seg->backend == SHK_BACKEND_FILE;
	struct stat st;

again:
	for (;;) {
		if (flags & SHK_CREATE) {
			/* O_NOFOLLOW: as below (O_EXCL alone refuses a
			 * symlink already, with EEXIST) */
			of = O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW;
			/* the owner's bits only until create_fd() holds
			 * the creation lock, then o->mode */
			fd = file ? open(name, of, o->mode & 0700)
				  : shm_open(name, of, o->mode & 0700);
			if (fd >= 0) {
				seg->fd = shk__fd_above_stdio(fd);
				rc = create_fd(seg, o, name, deadline, hc);
				if (rc) {
					/* while we still hold the lock: with it
					 * free, the file (magic, INITIALIZING)
					 * is a dead creator's to `shmkit rm
					 * --orphans`, which could remove it and
					 * let a new creator take the name before
					 * our unlink removed the new segment */
					if (file)
						unlink(name);
					else
						shm_unlink(name);
					shk__seg_lock(seg->fd, F_UNLCK);
				}
				return rc;
			}
			if (errno != EEXIST)
				return shk__errno_code(errno);
			if (flags & SHK_EXCL)
				return SHK_EEXIST;
		}
		/* O_NONBLOCK: a FIFO (or a device) under the name must not
		 * block the open; anything but a regular file is refused
		 * below (a segment is always one).  O_NOFOLLOW: a symlink as
		 * the last component is not a segment either (ELOOP); the file
		 * backend followed it (shm_open never does), to whatever file
		 * whoever could write the directory pointed it at. */
		of = (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK |
		     O_NOFOLLOW;
		fd = file ? open(name, of) : shm_open(name, of, 0);
		if (fd >= 0)
			break;
		if (errno == ENOENT && (flags & SHK_CREATE) &&
		    shk__now_ns() < deadline)
			continue; /* unlinked between our two calls */
		if (errno == ELOOP || errno == EISDIR ||
		    (!file && errno == EINVAL))
			/* a symlink under the name (neither open follows
			 * one), a loop of them in a file path, or a directory
			 * opened for writing (glibc's shm_open turns EISDIR
			 * into EINVAL; the name was checked already): not a
			 * segment, as a FIFO is not (these were SHK_EIO and
			 * SHK_EINVAL) */
			return SHK_EBADSEG;
		return shk__errno_code(errno);
	}
	seg->fd = fd = shk__fd_above_stdio(fd);
	/* a test stops an opener here to remove and re-create the name */
	SHK_CRASHPOINT("seg.open.opened");
	if (fstat(fd, &st) != 0)
		return shk__errno_code(errno);
	if (!S_ISREG(st.st_mode))
		return SHK_EBADSEG;
	if (!owner_ok(st.st_uid, flags))
		return SHK_EACCES;
	/* back to blocking: lock waits are non-blocking anyway, and
	 * the descriptor is the caller's through shk_seg_fd() */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	rc = open_fd_wait(seg, deadline, 1, hc);
	if (rc == SHK_ENOENT && (flags & SHK_CREATE) &&
	    shk__now_ns() < deadline) {
		/* the name was removed after our open: start over */
		close(seg->fd);
		seg->fd = -1;
		goto again;
	}
	return rc;
}

/*
 * 1 when a SysV segment of len bytes that validate_hdr() refused with
 * SHK_EBADSEG looks like one a shmkit creator is formatting, or has just
 * formatted: its state word is 0 (nothing written yet), INITIALIZING, or
 * READY (published since validate_hdr() looked), and each byte of the
 * magic is either 0 or already the magic's (format_new() writes the magic
 * into the zeroed memory shmget() handed out; on a weakly ordered CPU the
 * bytes may show up in any order).  Anything else, such as a foreign
 * segment under our key, is not waited for.  A hint only: validate_hdr()
 * decides.
 */
static int
sysv_formatting(const uint8_t *base, uint64_t len)
{
	const struct shk__seg_hdr *h = (const void *)base;
	uint32_t st;
	int i;

	if (len < sizeof(*h))
		return 0;
	/* relaxed: only chooses whether to poll again; the acquire load in
	 * validate_hdr() is what orders the header */
	st = atomic_load_explicit(&h->state, memory_order_relaxed);
	if (st != 0 && st != SHK__SEG_INITIALIZING && st != SHK__SEG_READY)
		return 0;
	for (i = 0; i < 8; i++) {
		if (base[i] != 0 && base[i] != (uint8_t)SHK__MAGIC[i])
			return 0;
	}
	return 1;
}

static int
open_sysv(shk_seg *seg, const char *name, unsigned flags, const shk_seg_opts *o,
	  struct shk__seg_hdr *hc)
{
	int64_t deadline = shk__deadline(o->open_timeout_ns);
	int key = sysv_key_of(name, o), id, rc;
	struct shmid_ds ds;
	void *p;

again:
	if (flags & SHK_CREATE) {
		id = shmget(key, o->len, IPC_CREAT | IPC_EXCL | (int)o->mode);
		if (id >= 0) {
			seg->shmid = id;
			p = shmat(id, NULL, 0);
			if (p == (void *)-1) {
				rc = shk__errno_code(errno);
				shmctl(id, IPC_RMID, NULL);
				return rc;
			}
			seg->base = p;
			seg->len = o->len;
			rc = format_new(p, o->len, name ? name : "",
					SHK_BACKEND_SYSV, o->mode,
					o->max_objects, hc);
			if (rc) {
				shmctl(id, IPC_RMID, NULL);
				return rc;
			}
			seg->created = 1;
			return 0;
		}
		if (errno != EEXIST)
			return shk__errno_code(errno);
		if (flags & SHK_EXCL)
			return SHK_EEXIST;
	}
	/* The segment can be removed between any two of these calls (ENOENT
	 * from shmget; EINVAL or EIDRM from a stale id): a creating open
	 * starts over, as open_named_fd() does, and an open gets ENOENT.
	 * The owner is checked before we map anything of another user's. */
	id = shmget(key, 0, 0);
	p = (void *)-1; /* errno: the failed call's */
	if (id >= 0 && shmctl(id, IPC_STAT, &ds) == 0) {
		/* both: the creator may set shm_perm.uid to anyone's
		 * (IPC_SET needs no privilege for it), only cuid is fixed */
		if (!owner_ok(ds.shm_perm.uid, flags) ||
		    !owner_ok(ds.shm_perm.cuid, flags))
			return SHK_EACCES;
		p = shmat(id, NULL, (flags & SHK_RDONLY) ? SHM_RDONLY : 0);
	}
	if (p == (void *)-1) {
		if (errno == ENOENT || errno == EINVAL || errno == EIDRM) {
			if ((flags & SHK_CREATE) && shk__now_ns() < deadline)
				goto again;
			return SHK_ENOENT;
		}
		return shk__errno_code(errno);
	}
	seg->shmid = id;
	seg->base = p;
	seg->len = ds.shm_segsz;
	for (;;) {
		rc = validate_hdr(p, seg->len, 1, hc);
		if (rc != SHK_EBADSEG || !sysv_formatting(p, seg->len))
			break;
		/*
		 * Not READY yet, and still zero or partly formatted.  SysV
		 * has no lock to tell a slow creator from a dead one (the
		 * POSIX path's creation lock), so ask about the creator
		 * itself: wait while it lives, as the POSIX path waits while
		 * the lock is busy.  A removed segment (SHM_DEST: the creator gave up, or
		 * someone unlinked it) or a dead creator will never become
		 * READY: SHK_EBADSEG, as for a POSIX creator that died.  But
		 * the creator may have published READY, and even exited,
		 * since validate_hdr() looked: look once more before saying
		 * so.
		 */
		if (shmctl(id, IPC_STAT, &ds) != 0 ||
		    (ds.shm_perm.mode & SHM_DEST) ||
		    (kill(ds.shm_cpid, 0) != 0 && errno == ESRCH)) {
			rc = validate_hdr(p, seg->len, 1, hc);
			break;
		}
		if (shk__now_ns() >= deadline)
			return SHK_ETIMEDOUT;
		sleep_ns(200000);
	}
	/* Another name's segment under the key (two names whose keys
	 * collide, or a key given in opts) is not this name's: an open finds
	 * no segment of the name, and a create cannot make one under the
	 * taken key.  The name from the checked copy (§10). */
	if (rc == 0 && name && strcmp(hc->name, stored_name(name)) != 0)
		return (flags & SHK_CREATE) ? SHK_EEXIST : SHK_ENOENT;
	/* from the checked copy, never re-read from the segment (§10) */
	if (rc == 0 && hc->total_len < seg->len)
		seg->len = hc->total_len;
	return rc;
}

/*
 * A creating open that failed after it made the segment (finish_open():
 * no memory for the handle's heap state) removes what it made, so that
 * nothing stays under the name.  An fd-backed creator still holds the
 * exclusive lock (create_fd()), so no opener got past open_fd_wait(); one
 * that opened the file meanwhile finds it unlinked there.  SysV has no
 * lock: the segment goes only while no other live handle is attached (one
 * that maps it in between keeps a segment without a key).  memfd has no
 * name.
 */
static void
unmake(shk_seg *seg, const char *name)
{
	switch (seg->backend) {
	case SHK_BACKEND_POSIX:
		shm_unlink(name);
		break;
	case SHK_BACKEND_FILE:
		unlink(name);
		break;
	case SHK_BACKEND_SYSV:
		if (shk__seg_alone(seg))
			shmctl(seg->shmid, IPC_RMID, NULL);
		break;
	default:
		break;
	}
}

int
shk_seg_open(const char *name, unsigned flags, const shk_seg_opts *opts,
	     shk_seg **out)
{
	struct shk__seg_hdr hc;
	shk_seg_opts o;
	shk_seg *seg = NULL;
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = NULL;
	if (flags & ~(SHK_CREATE | SHK_EXCL | SHK_RDONLY | SHK_ANY_OWNER))
		return SHK_EINVAL;
	if ((flags & SHK_EXCL) && !(flags & SHK_CREATE))
		return SHK_EINVAL;
	if ((flags & SHK_RDONLY) && (flags & SHK_CREATE))
		return SHK_EINVAL;
	rc = opts_check(opts, &o);
	if (rc)
		return rc;
	switch (o.backend) {
	case SHK_BACKEND_POSIX:
		rc = shk__name_check(name, 1);
		break;
	case SHK_BACKEND_SYSV:
		rc = (name || o.sysv_key) ? 0 : SHK_EINVAL;
		if (name)
			rc = shk__name_check(name, 1);
		break;
	case SHK_BACKEND_FILE:
		rc = (name && name[0] && strlen(name) < PATH_MAX) ? 0
								  : SHK_EINVAL;
		break;
	case SHK_BACKEND_MEMFD:
		rc = (flags & SHK_CREATE) ? shk__name_check(name, 0)
					  : SHK_EINVAL;
		break;
	}
	if (rc)
		return rc;
	seg = seg_new(name, o.backend, flags);
	if (!seg)
		return SHK_ENOMEM;
	switch (o.backend) {
	case SHK_BACKEND_POSIX:
	case SHK_BACKEND_FILE:
		rc = open_named_fd(seg, name, flags, &o, &hc);
		break;
	case SHK_BACKEND_SYSV:
		rc = open_sysv(seg, name, flags, &o, &hc);
		break;
	case SHK_BACKEND_MEMFD:
		seg->fd = shk__fd_above_stdio(
			memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
		rc = seg->fd < 0
			     ? shk__errno_code(errno)
			     : create_fd(seg, &o, name,
					 shk__deadline(o.open_timeout_ns), &hc);
		if (rc == 0)
			/* the size can never change under a mapper (§9) */
			fcntl(seg->fd, F_ADD_SEALS,
			      F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		break;
	}
	if (rc == 0) {
		rc = finish_open(seg, &hc);
		if (rc && seg->created)
			unmake(seg, name);
		/* the creator's exclusive lock (create_fd()) or the
		 * opener's shared one (open_fd_wait()), held until now */
		if (seg->fd >= 0)
			shk__seg_lock(seg->fd, F_UNLCK);
	}
	if (rc) {
		seg_free(seg);
		return rc;
	}
	*out = seg;
	return 0;
}

/*
 * Makes sure that nobody can shrink the memfd behind fd while we map it: a
 * peer's ftruncate would turn our next touch of the cut pages into SIGBUS
 * (shk_seg_check, any structure's call).  A memfd without F_SEAL_SHRINK
 * gets it here, when it still takes seals and the descriptor may add them
 * (F_ADD_SEALS needs a writable one); otherwise the memfd is refused with
 * SHK_EPERM: one made without MFD_ALLOW_SEALING, one sealed with
 * F_SEAL_SEAL but not F_SEAL_SHRINK, or a read-only descriptor of an
 * unsealed one.  Only F_SEAL_SHRINK: growing cannot fault a mapper, and
 * the memfd's maker may still want its other seals to itself.  A file
 * that is not a memfd cannot be sealed and is accepted as it is: on most
 * file systems F_GET_SEALS fails, and a tmpfs file (/dev/shm, a segment
 * that lost its name) reports F_SEAL_SEAL alone, its size as exposed as
 * a POSIX segment's opened by name.
 */
static int
seal_shrink(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0 || (seals & F_SEAL_SHRINK))
		return 0;
	if (!(seals & F_SEAL_SEAL) &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0)
		return 0;
	if ((seals & F_SEAL_SEAL) && !shk__fd_is_memfd(fd))
		return 0;
	return SHK_EPERM;
}

int
shk_seg_open_fd(int fd, unsigned flags, const shk_seg_opts *opts, shk_seg **out)
{
	struct shk__seg_hdr hc;
	shk_seg_opts o;
	shk_seg *seg;
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = NULL;
	/* SHK_ANY_OWNER changes nothing here: no owner is checked */
	if (fd < 0 || (flags & ~(SHK_RDONLY | SHK_ANY_OWNER)))
		return SHK_EINVAL;
	rc = opts_check(opts, &o);
	if (rc)
		return rc;
	seg = seg_new("", SHK_BACKEND_MEMFD, flags);
	if (!seg)
		return SHK_ENOMEM;
	/* >= 3: see shk__fd_above_stdio() */
	seg->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (seg->fd < 0) {
		rc = shk__errno_code(errno);
		seg_free(seg);
		return rc;
	}
	/* before open_fd_wait() reads the size it maps */
	rc = seal_shrink(seg->fd);
	if (rc == 0)
		rc = open_fd_wait(seg, shk__deadline(o.open_timeout_ns), 0,
				  &hc);
	if (rc == 0) {
		rc = finish_open(seg, &hc);
		shk__seg_lock(seg->fd, F_UNLCK); /* open_fd_wait()'s */
	}
	if (rc) {
		seg_free(seg);
		return rc;
	}
	*out = seg;
	return 0;
}

/* sync_mutex.c (sync.h), linked in with the locks. */
SHK_HIDDEN void shk__sync_forget(const shk_seg *seg) __attribute__((weak));

void
shk__seg_ref(shk_seg *seg)
{
	/* relaxed: the caller holds a reference, so the count cannot reach
	 * 0 meanwhile; the object handle that this one is for is handed to
	 * other threads by the caller's own means, which order it */
	atomic_fetch_add_explicit(&seg->refs, 1, memory_order_relaxed);
}

void
shk__seg_unref(shk_seg *seg)
{
	if (!seg)
		return;
	/* acq_rel: the release orders this holder's uses of the handle and
	 * the mapping before the drop; the acquire, on the last drop, makes
	 * every other holder's (another thread's object close) happen
	 * before the teardown below */
	if (atomic_fetch_sub_explicit(&seg->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* the calling thread's record of lock words held through seg */
	if (shk__sync_forget)
		shk__sync_forget(seg);
	/* the heap first: flushing our magazine frees blocks under the
	 * heap lock, which needs our attach record (owner stamp) */
	shk__heap_detach(seg);
	shk__seg_detach(seg);
	seg_free(seg);
}

void
shk_seg_close(shk_seg *seg)
{
	if (!seg)
		return;
	/* The handle's own reference: the object handles opened through
	 * it keep it until their closes (shmkit.h).  A second close of the
	 * handle (the caller's error) while they keep it would drop one of
	 * their references and unmap under them: the exchange lets only
	 * the first drop the handle's.  relaxed: only this word's own
	 * order matters; the drop below orders the rest. */
	if (atomic_exchange_explicit(&seg->closed, 1, memory_order_relaxed))
		return;
	shk__seg_unref(seg);
}

/*
 * 1 when SysV segment id is a shmkit segment made under another name than
 * name (its header has the magic and a different name), so that removing
 * name does not remove it; 0 otherwise, also when it cannot be read (the
 * removal then decides, by the kernel's permissions).  The header is
 * copied out once before it is looked at (§10).
 */
static int
sysv_other_name(int id, const char *name)
{
	struct shk__seg_hdr c;
	struct shmid_ds ds;
	void *p;

	if (shmctl(id, IPC_STAT, &ds) != 0 || ds.shm_segsz < sizeof(c))
		return 0;
	p = shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1)
		return 0;
	memcpy(&c, p, offsetof(struct shk__seg_hdr, state));
	shmdt(p);
	return memcmp(c.magic, SHK__MAGIC, 8) == 0 &&
	       memchr(c.name, '\0', sizeof(c.name)) != NULL &&
	       strcmp(c.name, stored_name(name)) != 0;
}

int
shk_seg_unlink(const char *name, const shk_seg_opts *opts)
{
	shk_seg_opts o;
	int rc, id;

	rc = opts_check(opts, &o);
	if (rc)
		return rc;
	switch (o.backend) {
	case SHK_BACKEND_POSIX:
		rc = shk__name_check(name, 1);
		if (rc)
			return rc;
		return shm_unlink(name) == 0 ? 0 : shk__errno_code(errno);
	case SHK_BACKEND_SYSV:
		if (name && (rc = shk__name_check(name, 1)))
			return rc;
		if (!name && !o.sysv_key)
			return SHK_EINVAL;
		id = shmget(sysv_key_of(name, &o), 0, 0);
		if (id < 0)
			return shk__errno_code(errno);
		if (name && sysv_other_name(id, name))
			return SHK_ENOENT; /* as shk_seg_open() says */
		return shmctl(id, IPC_RMID, NULL) == 0 ? 0
						       : shk__errno_code(errno);
	case SHK_BACKEND_FILE:
		if (!name || !name[0])
			return SHK_EINVAL;
		return unlink(name) == 0 ? 0 : shk__errno_code(errno);
	default:
		return SHK_EINVAL; /* memfd has no name to remove */
	}
}

/*
 * shk__seg_unlink_unused (segment.h).  Under the exclusive lock no opener
 * is inside open_fd_wait()..finish_open() (each holds the shared lock
 * there), so every handle of the segment is either attached, and counted
 * by shk__seg_alone(), or will open the file after the unlink and find it
 * removed (st_nlink 0: it starts over).  A lock we cannot take at once
 * means an opener at work: the segment stays.
 */
int
shk__seg_unlink_unused(shk_seg *seg)
{
	int file = seg->backend == SHK_BACKEND_FILE, rc = 0;
	struct stat a, b;
	int fd;

	if (!seg->created || seg->fd < 0 ||
	    (seg->backend != SHK_BACKEND_POSIX && !file))
		return 0;
	if (shk__seg_lock(seg->fd, F_WRLCK) != 0)
		return 0;
	/* an opener of a library from before 2026-11-25 holds flock(), not
	 * our lock, while it joins: leave the segment to it */
	if (flock(seg->fd, LOCK_EX | LOCK_NB) != 0)
		goto out;
	flock(seg->fd, LOCK_UN);
	if (!shk__seg_alone(seg) || !shk__reg_empty(seg) ||
	    fstat(seg->fd, &a) != 0 || a.st_nlink == 0)
		goto out;
	/* the name must still be ours: not a segment made under it after
	 * someone removed ours */
	fd = file ? open(seg->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
		  : shm_open(seg->name, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		goto out;
	rc = fstat(fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	close(fd);
	if (rc)
		rc = (file ? unlink(seg->name) : shm_unlink(seg->name)) == 0;
out:
	shk__seg_lock(seg->fd, F_UNLCK);
	return rc;
}

int
shk_seg_fd(shk_seg *seg)
{
	if (!seg)
		return SHK_EINVAL;
	return seg->fd >= 0 ? seg->fd : SHK_ENOTSUP;
}

void *
shk_seg_base(shk_seg *seg)
{
	return seg ? seg->base : NULL;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 uapi; older headers lack it */
#define MADV_POPULATE_WRITE 23
#endif

int
shk_seg_prefault(shk_seg *seg)
{
	int adv, rc;
	long pg;
	uint64_t off;

	if (!seg || !seg->base)
		return SHK_EINVAL;
	adv = (seg->flags & SHK_RDONLY) ? MADV_POPULATE_READ
					: MADV_POPULATE_WRITE;
	do
		rc = madvise(seg->base, seg->len, adv);
	while (rc != 0 && errno == EINTR);
	if (rc == 0)
		return 0;
	if (errno != EINVAL)
		return errno == ENOMEM ? SHK_ENOMEM : SHK_EIO;
	/* a kernel without MADV_POPULATE_*: a read maps each page */
	pg = sysconf(_SC_PAGESIZE);
	if (pg <= 0)
		pg = 4096;
	for (off = 0; off < seg->len; off += (uint64_t)pg)
		(void)*(volatile const uint8_t *)(seg->base + off);
	return 0;
}

void *
shk_ptr(shk_seg *seg, uint64_t off)
{
	if (!seg || off == 0 || off >= seg->len)
		return NULL;
	return seg->base + off;
}

uint64_t
shk_off(shk_seg *seg, const void *ptr)
{
	const uint8_t *p = ptr;

	if (!seg || !p || p <= seg->base || p >= seg->base + seg->len)
		return 0;
	return (uint64_t)(p - seg->base);
}

/* shk_seg_stats up to name: the size of the struct before owner_uid */
#define SEG_STATS_OLD_LEN offsetof(shk_seg_stats, owner_uid)

/*
 * The real permission bits, owner and group of seg's file or SysV
 * segment, into st; 0, or -1 when they cannot be asked (st untouched).
 * Not the header's: chmod and chown change the file, not the header, and
 * anyone who can write the segment can rewrite the header.
 */
static int
seg_owner(shk_seg *seg, shk_seg_stats *st)
{
	struct shmid_ds ds;
	struct stat fs;

	if (seg->backend == SHK_BACKEND_SYSV) {
		if (shmctl(seg->shmid, IPC_STAT, &ds) != 0)
			return -1;
		st->mode = ds.shm_perm.mode & 0777;
		st->owner_uid = ds.shm_perm.uid;
		st->owner_gid = ds.shm_perm.gid;
		return 0;
	}
	if (seg->fd < 0 || fstat(seg->fd, &fs) != 0)
		return -1;
	st->mode = fs.st_mode & 07777;
	st->owner_uid = fs.st_uid;
	st->owner_gid = fs.st_gid;
	return 0;
}

int
shk_seg_info(shk_seg *seg, shk_seg_stats *out)
{
	const struct shk__seg_hdr *h;
	shk_attach_info ai = { .size = sizeof(ai) };
	shk_seg_stats stats, *st = &stats;
	shk_heap_stats hs;
	uint32_t cur = 0;

	if (!seg || !out || out->size < SEG_STATS_OLD_LEN)
		return SHK_EINVAL;
	h = &seg->hdr; /* the validated copy: never re-read (§10) */
	memset(st, 0, sizeof(*st));
	/* the bytes filled: as much as the caller's struct holds (the
	 * header's rule; it kept a larger size, test info_size) */
	st->size = out->size < sizeof(*st) ? out->size : (uint32_t)sizeof(*st);
	st->version = h->version;
	st->backend = h->backend;
	st->create_mode = h->mode;
	if (seg_owner(seg, st) != 0) {
		st->mode = h->mode;
		st->owner_uid = UINT32_MAX;
		st->owner_gid = UINT32_MAX;
	}
	st->len = seg->len;
	st->created_ns = h->created_ns;
	st->creator_pid = h->creator_pid;
	st->creator_uid = h->creator_uid;
	/* relaxed: a statistic (a live counter: read from the segment) */
	st->nobjects = atomic_load_explicit(&shk__hdr(seg)->reg_count,
					    memory_order_relaxed);
	st->max_objects = seg->reg_cap;
	memcpy(st->name, h->name, sizeof(st->name));
	st->name[sizeof(st->name) - 1] = '\0';
	while (shk_seg_attached(seg, &cur, &ai) == 1) {
		st->attached++;
		st->attached_alive += ai.alive;
	}
	memset(&hs, 0, sizeof(hs));
	hs.size = sizeof(hs);
	st->heap_len = seg->heap_len;
	if (shk_heap_info(seg, &hs) == 0) {
		st->heap_used = hs.used;
		st->heap_free = hs.free;
		st->heap_high_water = hs.high_water;
	}
	/* as much as the caller's struct holds (an older, shorter one) */
	memcpy(out, st, out->size < sizeof(*st) ? out->size : sizeof(*st));
	return 0;
}

int
shk_seg_check(shk_seg *seg)
{
	struct shk__seg_hdr c;
	uint32_t i;
	int rc;

	if (!seg)
		return SHK_EINVAL;
	rc = validate_hdr(seg->base, seg->len, 1, &c);
	if (rc)
		return rc;
	/* the immutable fields must still equal what we adopted: compare
	 * the checked copy with the handle's copy, all of it */
	if (memcmp(&c, &seg->hdr, offsetof(struct shk__seg_hdr, state)) != 0)
		return SHK_ECORRUPT;
	/* the attach records: state 3 is none of FREE, CLAIMING, ACTIVE, and
	 * no writer stores it (attach.c) */
	for (i = 0; i < seg->attach_cap; i++) {
		/* relaxed: one word, judged alone; every state a writer
		 * stores passes, whatever the order */
		uint64_t w = atomic_load_explicit(&shk__attach_at(seg, i)->word,
						  memory_order_relaxed);

		if (SHK__ATT_STATE(w) > SHK__ATT_ACTIVE)
			return SHK_ECORRUPT;
	}
	rc = shk__reg_check(seg);
	if (rc)
		return rc;
	return shk__heap_check(seg);
}
