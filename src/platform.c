/*
 * platform.c - raw system calls and process facts (STYLE B1: the only file
 * that makes raw syscalls).
 */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void
shk__panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "shmkit: internal invariant failed at %s:%d: %s\n",
		file, line, what);
	abort();
}

int64_t
shk__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
shk__realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
shk__deadline(int64_t timeout_ns)
{
	int64_t now;

	if (timeout_ns < 0)
		return INT64_MAX;
	now = shk__now_ns();
	if (timeout_ns > INT64_MAX - now)
		return INT64_MAX;
	return now + timeout_ns;
}

int
shk__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline_ns)
{
	struct timespec ts, *tsp = NULL;
	long r;

	if (deadline_ns != INT64_MAX) {
		if (deadline_ns <= shk__now_ns())
			return SHK_ETIMEDOUT;
		ts.tv_sec = deadline_ns / 1000000000;
		ts.tv_nsec = deadline_ns % 1000000000;
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so
	 * EINTR restarts do not drift.  Not private: the word is shared. */
	r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected,
		    tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r == 0)
		return 0;
	switch (errno) {
	case EAGAIN:
		return SHK_EAGAIN;
	case ETIMEDOUT:
		return SHK_ETIMEDOUT;
	case EINTR:
		return SHK_EINTR;
	default:
		return shk__errno_code(errno);
	}
}

int
shk__futex_wake(_Atomic uint32_t *word, int n)
{
	long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL,
			 0);
	return r < 0 ? shk__errno_code(errno) : (int)r;
}

size_t
shk__page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

/*
 * Formatting and parsing that are async-signal-safe, unlike snprintf() and
 * strtoull() (not on POSIX's list; a locale or a malloc() may lie behind
 * them): shk_sem_post(), which is documented async-signal-safe, reaches
 * pid_alive() when it repairs a dead waiter's count (wait.c), and the
 * doorbell's notify builds a path.
 */
char *
shk__put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

char *
shk__put_num(char *p, uint64_t v, unsigned base, unsigned width)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[64];
	unsigned n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v || n < width);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* The decimal number at s (digits only, at least one) into *v; returns the
 * character after it, or NULL when s starts with no digit.  Wraps past
 * 2^64 (the kernel's numbers never get there). */
static const char *
parse_dec(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (*s < '0' || *s > '9')
		return NULL;
	while (*s >= '0' && *s <= '9')
		x = x * 10 + (uint64_t)(*s++ - '0');
	*v = x;
	return s;
}

/* "/proc/PID" followed by tail, in buf (64 bytes hold every tail used
 * here). */
static void
proc_path(char *buf, pid_t pid, const char *tail)
{
	char *p =
		shk__put_num(shk__put_str(buf, "/proc/"), (uint64_t)pid, 10, 1);

	*shk__put_str(p, tail) = '\0';
}

/* Reads field 3 (state) and field 22 (start time) of /proc/PID/stat.
 * Async-signal-safe. */
static int
proc_stat(pid_t pid, uint64_t *ticks, char *state)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;

	proc_path(path, pid, "/stat");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return SHK_ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return SHK_ESRCH;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: parse after the
	 * last ')'.  Then field 3 (state) follows; starttime is field 22. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return SHK_ESRCH;
	p++;
	*state = p[1];
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	if (!p)
		return SHK_ESRCH;
	/* no digits (never from the kernel): unknown, as strtoull gave */
	if (!parse_dec(p + 1, ticks))
		*ticks = 0;
	return 0;
}

int
shk__proc_start_ticks(pid_t pid, uint64_t *ticks)
{
	char state;

	return proc_stat(pid, ticks, &state);
}

/*
 * Bumped in every child that fork() makes (pthread_atfork), so that
 * shk__self_key() differs from the parent's even where the pid number does
 * not: pid 1 of a namespace forking pid 1 of a new PID namespace, or a
 * child moved by setns() that happens to get its parent's number.
 */
static _Atomic uint32_t fork_epoch;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/*
 * The liveness-lock descriptors this process holds (shk__livelock_open),
 * and the other descriptors to be closed in a forked child
 * (shk__fork_close_add: doorbell sockets).  lk_mu is held across fork() (prepare handler), so the child's copy of
 * the table matches its copy of the descriptor table: no open or close is
 * half done.
 *
 * The application's own fork handlers may run on the forking thread while
 * it holds lk_mu: prepare handlers registered before ours run after ours,
 * parent and child handlers registered before ours run before ours (ours
 * are registered at this process's first shk__self_key()), and a child
 * handler that opens the child's own handles (handles do not survive
 * fork()) is the natural use.  lk_forking (this thread's) says that this
 * thread holds lk_mu for fork(): such calls use the table without locking
 * it again, and in the child the first of them (or our child handler)
 * closes the parent's lock descriptors first (child_cleanup), so that
 * what the child opens is the child's and stays open.  To tell the child
 * from the parent there: fork_mark, a page that fork() zeroes in the
 * child (MADV_WIPEONFORK, Linux 4.14), set to 1 in every process that has
 * run our handlers; without it, lk_fork_pid, the forking process's pid,
 * which cannot tell pid 1 of a namespace from pid 1 of a new one that it
 * forks.
 */
static pthread_mutex_t lk_mu = PTHREAD_MUTEX_INITIALIZER;
struct lk_ent {
	int fd;
	dev_t dev; /* its file, so that a child closes only what it names */
	ino_t ino;
};
static struct lk_ent *lk_fds;
static size_t lk_n, lk_cap;
/* initial-exec: read in the fork handlers, where a first access to a
 * dynamic TLS block (a dlopen()ed library: Python's ctypes) could
 * allocate */
static _Thread_local int lk_forking SHK__TLS_IE;
static pid_t lk_fork_pid;
static int lk_child_done;
static volatile uint8_t *fork_mark;

/* In a forked child, before it runs anything else of ours: a new fork
 * epoch, and the parent's lock descriptors closed (our reference to
 * their descriptions would keep the parent's locks after it died).  Once
 * per fork. */
static void
child_cleanup(void)
{
	size_t i;

	if (lk_child_done)
		return;
	lk_child_done = 1;
	/* relaxed: the child is single-threaded here */
	atomic_fetch_add_explicit(&fork_epoch, 1, memory_order_relaxed);
	for (i = 0; i < lk_n; i++) {
		struct stat st;

		/* the number must still name the lock's file here: an
		 * application's child handler that ran before ours may have
		 * closed it and opened something else there */
		if (fstat(lk_fds[i].fd, &st) == 0 &&
		    st.st_dev == lk_fds[i].dev && st.st_ino == lk_fds[i].ino)
			close(lk_fds[i].fd);
	}
	lk_n = 0;
	if (fork_mark)
		*fork_mark = 1; /* for this child's own forks */
}

/* 1 on the forking thread inside fork() (it holds lk_mu), after the
 * child's cleanup where this is the child; 0 otherwise. */
static int
in_fork(void)
{
	if (!lk_forking)
		return 0;
	if (fork_mark ? *fork_mark == 0 : getpid() != lk_fork_pid)
		child_cleanup();
	return 1;
}

/*
 * Takes lk_mu with every signal blocked: fork() is async-signal-safe, and
 * a handler that forks on this thread while it holds lk_mu would wait for
 * it in atfork_prepare() for ever.  *old receives the mask to restore.
 * Inside fork() on the forking thread, lk_mu is held already.
 */
static void
lk_lock(sigset_t *old)
{
	sigset_t all;

	if (in_fork())
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
	pthread_mutex_lock(&lk_mu);
}

static void
lk_unlock(const sigset_t *old)
{
	if (lk_forking)
		return;
	pthread_mutex_unlock(&lk_mu);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/*
 * lk_mu is held from atfork_prepare() to atfork_parent()/atfork_child(),
 * through fork() itself and the application's handlers that run in
 * between: signals stay blocked on the forking thread for as long (as in
 * lk_lock()), or a handler that forks there (a SIGCHLD handler respawning
 * a worker) would wait in atfork_prepare() for the mutex its own thread
 * holds.  lk_fork_mask: the mask to restore, the forking thread's (only
 * one thread at a time holds lk_mu).
 */
static sigset_t lk_fork_mask;

static void
atfork_prepare(void)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_mutex_lock(&lk_mu);
	lk_fork_mask = old;
	if (fork_mark)
		*fork_mark = 1; /* we are the parent of this fork */
	lk_fork_pid = getpid();
	lk_child_done = 0;
	lk_forking = 1;
}

static void
atfork_parent(void)
{
	sigset_t old = lk_fork_mask;

	lk_forking = 0;
	pthread_mutex_unlock(&lk_mu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void
atfork_child(void)
{
	sigset_t old = lk_fork_mask;

	child_cleanup();
	lk_forking = 0;
	/* the forking thread locked it in atfork_prepare(); it is this
	 * thread (a default mutex does not check the owner) */
	pthread_mutex_unlock(&lk_mu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void
atfork_register(void)
{
#ifdef MADV_WIPEONFORK
	void *pg = mmap(NULL, shk__page_size(), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (pg != MAP_FAILED &&
	    madvise(pg, shk__page_size(), MADV_WIPEONFORK) == 0) {
		fork_mark = pg;
		*fork_mark = 1;
	} else if (pg != MAP_FAILED) {
		munmap(pg, shk__page_size());
	}
#endif
	/* on failure (ENOMEM) the key is the pid alone, and children keep
	 * references to liveness locks (their parent then counts as alive
	 * until they exit or close them) */
	(void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

uint64_t
shk__self_key(void)
{
	pthread_once(&atfork_once, atfork_register);
	/* an application's child handler that runs before ours gets the
	 * child's key too */
	(void)in_fork();
	/* relaxed: written only by this process's fork handler, before
	 * any other thread exists in it */
	return (uint64_t)atomic_load_explicit(&fork_epoch, memory_order_relaxed)
		       << 32 |
	       (uint32_t)getpid();
}

static int
livelock_fcntl(int fd, int cmd, short type, uint32_t slot, short *got)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl)); /* l_pid must be 0 for OFD commands */
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)(SHK__LIVELOCK_BASE + slot);
	fl.l_len = 1;
	if (fcntl(fd, cmd, &fl) != 0)
		return -errno;
	if (got)
		*got = fl.l_type;
	return 0;
}

/*
 * A new open file description of fd's file, through /proc, or -1.
 * /proc/thread-self/fd, not /proc/self/fd: /proc/self names the thread
 * group leader, whose descriptor table is not ours after this thread's
 * unshare(CLONE_FILES) (its number N may name another file there) and is
 * gone once the leader has exited.  /proc/self/fd is the fallback before
 * Linux 3.17.  Whatever the path gave, it must be fd's file (device and
 * inode), or a lock taken through it would guard nothing.
 */
int
shk__fd_above_stdio(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return fd;
	close(fd);
	return nfd;
}

static int
reopen_fd(int fd)
{
	static const char *const dirs[] = { "/proc/thread-self/fd",
					    "/proc/self/fd" };
	struct stat a, b;
	char path[64];
	int lfd = -1;
	size_t i;

	if (fstat(fd, &a) != 0)
		return -1;
	for (i = 0; i < 2 && lfd < 0; i++) {
		snprintf(path, sizeof(path), "%s/%d", dirs[i], fd);
		lfd = shk__fd_above_stdio(
			open(path, O_RDWR | O_CLOEXEC | O_NOCTTY));
		/* one left at 0-2 (no number above free) would be replaced
		 * by the program's dup2() there, its lock dropped while its
		 * record says LOCKED: better none */
		if (lfd >= 0 &&
		    (lfd < 3 || fstat(lfd, &b) != 0 || a.st_dev != b.st_dev ||
		     a.st_ino != b.st_ino)) {
			close(lfd);
			lfd = -1;
		}
	}
	return lfd;
}

/* Enters fd (its file: st) in the table; lk_mu held.  0, or -1 when the
 * table cannot grow. */
static int
lk_add(int fd, const struct stat *st)
{
	if (lk_n == lk_cap) {
		size_t cap = lk_cap ? lk_cap * 2 : 16;
		struct lk_ent *p = realloc(lk_fds, cap * sizeof(*p));

		if (!p)
			return -1;
		lk_fds = p;
		lk_cap = cap;
	}
	lk_fds[lk_n].fd = fd;
	lk_fds[lk_n].dev = st->st_dev;
	lk_fds[lk_n].ino = st->st_ino;
	lk_n++;
	return 0;
}

int
shk__livelock_open(int fd)
{
	short got = F_UNLCK;
	struct stat st;
	sigset_t old;
	int lfd;

	pthread_once(&atfork_once, atfork_register);
	lk_lock(&old);
	/* a new open file description of the same file (not a dup): ours
	 * alone, so that its locks live exactly as long as this process */
	lfd = reopen_fd(fd);
	if (lfd >= 0 && (livelock_fcntl(lfd, F_OFD_GETLK, F_WRLCK, 0, &got) ||
			 fstat(lfd, &st) != 0)) {
		close(lfd); /* no OFD locks on this kernel or file system */
		lfd = -1;
	}
	if (lfd >= 0 && lk_add(lfd, &st) != 0) {
		close(lfd);
		lfd = -1;
	}
	lk_unlock(&old);
	return lfd;
}

void
shk__livelock_close(int lfd)
{
	shk__fork_close(lfd);
}

int
shk__fork_close_add(int fd)
{
	struct stat st;
	sigset_t old;
	int rc;

	if (fstat(fd, &st) != 0)
		return shk__errno_code(errno);
	pthread_once(&atfork_once, atfork_register);
	lk_lock(&old);
	rc = lk_add(fd, &st) ? SHK_ENOMEM : 0;
	lk_unlock(&old);
	return rc;
}

void
shk__fork_close(int fd)
{
	sigset_t old;
	size_t i;

	lk_lock(&old);
	for (i = 0; i < lk_n; i++) {
		if (lk_fds[i].fd == fd) {
			lk_fds[i] = lk_fds[--lk_n];
			close(fd);
			break;
		}
	}
	lk_unlock(&old);
}

int
shk__fd_is_memfd(int fd)
{
	static const char *const dirs[] = { "/proc/thread-self/fd",
					    "/proc/self/fd" };
	char path[64], link[8];
	struct stat st;
	int probe, r;
	ssize_t n;
	dev_t dev;
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%d", dirs[i], fd);
		/* truncated to 8 bytes: only the prefix matters */
		n = readlink(path, link, sizeof(link));
		if (n >= 0)
			return n >= 7 && memcmp(link, "/memfd:", 7) == 0;
	}
	/* No /proc: memfds live on the kernel's internal tmpfs mount, whose
	 * device no mounted tmpfs (/dev/shm) shares: compare with a memfd of
	 * our own.  (A hugetlbfs memfd is on another internal mount and goes
	 * unrecognised here.)  Not st_nlink 0: a POSIX segment whose name was
	 * removed has none either. */
	probe = memfd_create("shk-probe", MFD_CLOEXEC);
	if (probe < 0)
		return 0;
	r = fstat(fd, &st) == 0;
	dev = r ? st.st_dev : 0;
	r = r && fstat(probe, &st) == 0 && st.st_dev == dev;
	close(probe);
	return r;
}

int
shk__seg_lock(int fd, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl)); /* l_pid must be 0 for OFD commands */
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)SHK__SEG_CREATE_LOCK;
	fl.l_len = 1;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return SHK_EAGAIN;
	return shk__errno_code(errno);
}

int
shk__livelock_try(int lfd, uint32_t slot)
{
	int rc = livelock_fcntl(lfd, F_OFD_SETLK, F_WRLCK, slot, NULL);
	short got = F_WRLCK;

	if (rc != -EAGAIN && rc != -EACCES)
		return rc ? rc : 1;
	/* Refused.  Only a write lock is an owner's (one needs a writable
	 * description); a read lock is anyone's who can read the file, and
	 * taking it for an owner let a reader make every writable open
	 * SHK_EBUSY.  Ask for write locks alone: F_RDLCK conflicts with
	 * nothing else.  If there is none, the slot is free of owners, but
	 * its lock cannot be ours: the caller goes on without it. */
	if (livelock_fcntl(lfd, F_OFD_GETLK, F_RDLCK, slot, &got) != 0 ||
	    got != F_UNLCK)
		return 0;
	return SHK__LIVELOCK_READERS;
}

void
shk__livelock_unlock(int lfd, uint32_t slot)
{
	(void)livelock_fcntl(lfd, F_OFD_SETLK, F_UNLCK, slot, NULL);
}

int
shk__livelock_held(int fd, uint32_t slot)
{
	short got = F_UNLCK;

	/* F_RDLCK: only a write lock conflicts with it, and only a write
	 * lock is an owner's; a read lock, which anyone who can read the
	 * file may take, kept a dead owner's record alive for ever */
	if (fd < 0 || livelock_fcntl(fd, F_OFD_GETLK, F_RDLCK, slot, &got))
		return -1;
	return got != F_UNLCK;
}

/*
 * A value of this process's identity, read once per shk__self_key(): a
 * forked child reads its own, also when its pid number equals its
 * parent's.  (key, value) pairs are written and read as one 64-bit word
 * each; a racing thread at worst reads again.
 */
static uint64_t
self_cached(_Atomic uint64_t *ckey, _Atomic uint64_t *cval,
	    uint64_t (*read_value)(void))
{
	uint64_t key = shk__self_key(), v;

	/* acquire: pairs with the release store of *ckey below */
	if (atomic_load_explicit(ckey, memory_order_acquire) == key)
		/* relaxed: published by the release store of *ckey */
		return atomic_load_explicit(cval, memory_order_relaxed);
	v = read_value();
	/* relaxed: published by the release store of *ckey */
	atomic_store_explicit(cval, v, memory_order_relaxed);
	atomic_store_explicit(ckey, key, memory_order_release);
	return v;
}

static uint64_t
read_start_ticks(void)
{
	uint64_t t = 0;

	shk__proc_start_ticks(getpid(), &t);
	return t;
}

/* The inode of a namespace link in /proc/self/ns, 0 when /proc cannot
 * tell.  A process never changes its own PID or time namespace (unshare()
 * and setns() move only its later children), so caching is sound. */
static uint64_t
ns_inode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static uint64_t
read_pidns(void)
{
	return ns_inode("/proc/self/ns/pid");
}

static uint64_t
read_timens(void)
{
	return ns_inode("/proc/self/ns/time");
}

uint64_t
shk__self_start_ticks(void)
{
	static _Atomic uint64_t ckey, cval;

	return self_cached(&ckey, &cval, read_start_ticks);
}

uint64_t
shk__self_pidns(void)
{
	static _Atomic uint64_t ckey, cval;

	return self_cached(&ckey, &cval, read_pidns);
}

uint64_t
shk__self_timens(void)
{
	static _Atomic uint64_t ckey, cval;

	return self_cached(&ckey, &cval, read_timens);
}

/* A directory entry as getdents64(2) fills it (linux_dirent64). */
struct dirent64_raw {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/*
 * Whether a process whose /proc/PID/stat says Z still has a live thread:
 * the thread-group leader shows Z once its own thread has exited
 * (pthread_exit() in main) while other threads run on.  Such a process
 * is alive and still holds what it held.  Async-signal-safe (it runs
 * inside shk_sem_post(), see proc_stat()): the task directory is read
 * with getdents64 into a stack buffer, not with opendir(), which calls
 * malloc().
 */
static int
other_task_live(pid_t pid)
{
	_Alignas(8) char dents[1024];
	char path[64], buf[512], *p;
	const struct dirent64_raw *d;
	const char *end;
	uint64_t tid;
	long n, off;
	ssize_t len;
	int dfd, fd, live = 0;

	proc_path(path, pid, "/task");
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	while (!live &&
	       (n = syscall(SYS_getdents64, dfd, dents, sizeof(dents))) > 0) {
		for (off = 0; !live && off < n; off += d->d_reclen) {
			d = (const struct dirent64_raw *)(dents + off);
			if (d->d_reclen == 0 || d->d_reclen > n - off)
				break; /* never from the kernel */
			end = parse_dec(d->d_name, &tid);
			if (!end || *end || tid == 0 || tid > INT_MAX ||
			    tid == (uint64_t)pid)
				continue;
			p = shk__put_num(path, tid, 10, 1);
			*shk__put_str(p, "/stat") = '\0';
			fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			len = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (len <= 0)
				continue;
			buf[len] = '\0';
			/* the state follows the last ')', as in proc_stat() */
			p = strrchr(buf, ')');
			if (p && p[1] == ' ' && p[2] && p[2] != 'Z' &&
			    p[2] != 'X')
				live = 1;
		}
	}
	close(dfd);
	return live;
}

int
shk__pid_exists(uint32_t pid)
{
	if (pid == 0 || pid > INT_MAX)
		return 0;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* shk__pid_alive(), and shk__pid_running() when check_ticks is 0. */
static int
pid_alive(uint32_t pid, uint64_t start_ticks, int check_ticks)
{
	uint64_t t;
	char state;

	if (pid == 0 || pid > INT_MAX)
		return 0;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return 0;
	if (proc_stat((pid_t)pid, &t, &state) != 0) {
		/* Gone since the kill() above, or hidden from us: /proc
		 * mounted with hidepid (systemd's ProtectProc=invisible)
		 * hides other users' processes, and /proc may not be mounted
		 * at all.  A process that still exists is taken for alive:
		 * its start time cannot be checked, so a recycled pid keeps a
		 * dead holder's claim until that process exits too, which
		 * costs waiters their timeouts; taking a live holder's lock
		 * would cost its data. */
		return kill((pid_t)pid, 0) == 0 || errno == EPERM;
	}
	/* a zombie has exited: whatever it held is not held any more; but
	 * a leader shows Z too while other threads of it still run */
	if ((state == 'Z' || state == 'X') && !other_task_live((pid_t)pid))
		return 0;
	/* start_ticks 0: the holder could not read its own start time (it
	 * had no /proc); like a hidden holder, it is alive while its pid
	 * exists (test test_sync_mutex holder_without_proc) */
	return !check_ticks || start_ticks == 0 || t == start_ticks;
}

int
shk__pid_alive(uint32_t pid, uint64_t start_ticks)
{
	return pid_alive(pid, start_ticks, 1);
}

int
shk__pid_running(uint32_t pid)
{
	return pid_alive(pid, 0, 0);
}

int
shk__name_check(const char *name, int allow_slash)
{
	size_t i, n;

	if (!name)
		return SHK_EINVAL;
	if (name[0] == '/' && allow_slash)
		name++;
	n = strlen(name);
	if (n == 0)
		return SHK_EINVAL;
	if (n > SHK_NAME_MAX)
		return SHK_ENAMETOOLONG;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return SHK_EINVAL;
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return SHK_EINVAL;
	}
	return 0;
}

uint64_t
shk__hash64(const void *p, size_t len, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ull ^ seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

int
shk__errno_code(int err)
{
	switch (err) {
	case EPERM:
		return SHK_EPERM;
	case ENOENT:
		return SHK_ENOENT;
	case ESRCH:
		return SHK_ESRCH;
	case EINTR:
		return SHK_EINTR;
	case EBADF:
		return SHK_EBADF;
	case EAGAIN:
		return SHK_EAGAIN;
	case ENOMEM:
		return SHK_ENOMEM;
	case EACCES:
		return SHK_EACCES;
	case EBUSY:
		return SHK_EBUSY;
	case EEXIST:
		return SHK_EEXIST;
	case EINVAL:
		return SHK_EINVAL;
	case ENOSPC:
		return SHK_ENOSPC;
	case EFBIG:
		return SHK_ENOSPC;
	case EPIPE:
		return SHK_EPIPE;
	case ERANGE:
		return SHK_ERANGE;
	case ENAMETOOLONG:
		return SHK_ENAMETOOLONG;
	case ENOSYS:
		return SHK_ENOSYS;
	case EMSGSIZE:
		return SHK_EMSGSIZE;
	case EOPNOTSUPP:
		return SHK_ENOTSUP;
	case ETIMEDOUT:
		return SHK_ETIMEDOUT;
	default:
		return SHK_EIO;
	}
}

#ifdef SHK_TEST_HOOKS
void
shk__crashpoint(const char *name)
{
	static _Atomic long hits;
	const char *spec = getenv("SHK_CRASH");
	char *end;
	size_t n;
	long want;

	if (!spec)
		return;
	n = strlen(name);
	if (strncmp(spec, name, n) != 0 || spec[n] != ':')
		return;
	want = strtol(spec + n + 1, &end, 10);
	/* relaxed: a per-process hit counter; only this process reads it */
	if (atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed) + 1 ==
	    want)
		raise(strcmp(end, ":stop") ? SIGKILL : SIGSTOP);
}
#endif
