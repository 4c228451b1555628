/*
 * doorbell.c - pollable file descriptors: a Unix datagram "doorbell" per
 * listener (ALGORITHMS §6, the default mechanism; doorbell.h has the
 * protocol).
 *
 * Why a datagram socket and not an eventfd: an eventfd must be handed to
 * the waker (SCM_RIGHTS over a rendezvous socket, or fork), while a socket
 * bound to a path the waker can compute from shared memory needs no
 * hand-over, works between unrelated processes, and its permissions come
 * from a 0700 directory.  Costs one sendto() per wake of an armed listener.
 *
 * Shared words (in the waitpoint):
 *   armed      number of armed listeners; listeners increment it when they
 *              arm and decrement it when they drain (seq_cst RMWs).
 *   listeners  bitmap of attach slots (slot % 64) that ever listened on this
 *              waitpoint; bits are only set, never cleared, so two
 *              listeners that share a bit cannot clear each other's.  A
 *              stale bit costs the notifier a failed sendto() (ENOENT)
 *              while someone is armed; it never loses a wake-up.
 * Per listener, armed and held (its share of armed, its holder entry)
 * change together under the listener's mutex, so threads sharing a handle
 * never count it twice or lose its entry.
 * What a killed listener leaves behind: armed stays incremented, with its
 * holder entry (wait.h): wakers keep calling notify (extra system calls, no
 * lost data) until one of them repairs the count, within REPAIR_EVERY
 * wakes (wait.c); a listener that found no free entry leaves it for good.
 * Its socket file stays until a later listener of the same slot replaces
 * it, or until the sweep (sweep_stale()) that each process runs once, at
 * its first listener, removes it.
 * A listener whose object was removed (SHK_FORCE) closes through
 * shk__doorbell_abandon(): its count and entry stay in the old memory, as
 * a killed listener's would, because that memory may be another object's
 * now; its socket file goes as at any close.
 *
 * Paths: one per (segment instance, waitpoint, attach slot), so one
 * listener per waitpoint per segment handle (a handle is one attach slot).
 * A second listener there, from another object handle on the same segment
 * handle, or from a forked child using its parent's segment handle, gets
 * SHK_EBUSY: notify finds one path per slot, and telling two listeners of
 * one slot apart would need more shared state per waitpoint.  An opener
 * replaces only a stale file (one no socket is bound to any more); it
 * never unlinks a live listener's path.  Of a live listener's path, only
 * the process that bound it unlinks it; a stale file (nobody bound to it)
 * is also removed by an opener of its slot or by a sweep.
 *
 * The directory is /tmp/shmkit-UID whatever the environment says, because
 * the waker computes the listener's path in its own process: a path from
 * per-process settings (XDG_RUNTIME_DIR is unset in cron jobs and many
 * services) would send wake-ups where nobody listens.
 */
#include "doorbell.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct shk__doorbell {
	shk_seg *seg;
	shk__waitpoint *wp;
	int fd;
	/* armed and held are this listener's share of wp's armed count and
	 * its holder entry: mu makes each arm and disarm (the shared RMWs
	 * and these two fields together) one step for the threads that wait
	 * on one handle (a semaphore's or event's, shmkit.h) */
	pthread_mutex_t mu;
	int armed;
	int held; /* our holder entry in wp while armed (wait.h), or -1 */
	uint32_t slot;
	uint64_t owner_key; /* shk__self_key() of the process that bound the
			     * socket (a forked child's pid can equal it) */
	dev_t dev; /* the socket file it bound: close unlinks only this */
	ino_t ino;
	struct sockaddr_un addr;
	/* When an arm may skip emptying the socket (empty_due()), under mu:
	 * wp->seq as loaded just before the last empty an arm made, and the
	 * arms that skipped since.  self_rung: ring_self() sent a byte since
	 * (an atomic: ring_self() runs outside mu). */
	uint32_t seq_at_empty;
	uint32_t skips;
	_Atomic int self_rung;
};

#ifdef SHK_TEST_HOOKS
_Atomic unsigned long shk__doorbell_test_empties;
#endif

/* One datagram socket per process for sending (created once). */
static _Atomic int send_fd = -1;

static int
sender(void)
{
	/* acquire: pairs with the release CAS below (the fd is set up) */
	int fd = atomic_load_explicit(&send_fd, memory_order_acquire), exp = -1;
	int nfd;

	if (fd >= 0)
		return fd;
	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (nfd < 0)
		return -1;
	/* release: publishes the new descriptor to other threads */
	if (!atomic_compare_exchange_strong_explicit(&send_fd, &exp, nfd,
						     memory_order_release,
						     memory_order_acquire)) {
		close(nfd);
		return exp;
	}
	return nfd;
}

#define DIR_LOCK_WAIT_NS 100000000LL /* the directory lock's wait */

/* The directory holding this user's doorbells: /tmp/shmkit-UID, 0700,
 * owned by us.  Never taken from the environment: listener and waker must
 * compute the same path (see the top of the file).  Once it passed the
 * check (dir_check()), db_dir_ok caches that; a failure is not cached (a
 * listener may create the directory later). */
#define DIR_LEN 32 /* "/tmp/shmkit-" and a 32-bit uid, with room */
static _Atomic int db_dir_ok;
static pthread_once_t db_atfork_once = PTHREAD_ONCE_INIT;

/*
 * The directory lock (dir_lock()) is an flock, which a fork()ed child
 * would inherit and hold for as long as it lives.  This process-local
 * mutex is held around every hold of the flock, and the atfork handlers
 * take it, so no fork happens while this process holds the flock.
 */
static pthread_mutex_t db_lock_mu = PTHREAD_MUTEX_INITIALIZER;

static void
db_prefork(void)
{
	pthread_mutex_lock(&db_lock_mu);
}

static void
db_postfork(void)
{
	pthread_mutex_unlock(&db_lock_mu);
}

static void
db_atfork(void)
{
	pthread_atfork(db_prefork, db_postfork, db_postfork);
}

/* The directory's name into dir (DIR_LEN bytes).  Async-signal-safe. */
static void
dir_name(char *dir)
{
	char *p = shk__put_str(dir, "/tmp/shmkit-");

	*shk__put_num(p, (uint64_t)getuid(), 10, 1) = '\0';
}

/* 0 when dir is a directory of ours that only we can use, else a code.
 * Async-signal-safe (lstat, atomics): a waker's notify runs it, maybe in
 * a signal handler (shk_sem_post). */
static int
dir_check(const char *dir)
{
	struct stat st;

	/* relaxed: a flag this process sets once the check passed; a
	 * thread that misses it checks again */
	if (atomic_load_explicit(&db_dir_ok, memory_order_relaxed))
		return 0;
	if (lstat(dir, &st) != 0)
		return shk__errno_code(errno);
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return SHK_EACCES; /* someone else's, or open to others */
	atomic_store_explicit(&db_dir_ok, 1, memory_order_relaxed);
	return 0;
}

/* For a listener: the directory, created when missing, into dir (DIR_LEN
 * bytes); registers the fork handlers of the directory lock first.  Not
 * for the notify path (pthread_once, pthread_atfork and mkdir are not
 * async-signal-safe, and a waker needs no directory of its own). */
static int
doorbell_dir(char *dir)
{
	pthread_once(&db_atfork_once, db_atfork);
	dir_name(dir);
	/* relaxed: as in dir_check() */
	if (!atomic_load_explicit(&db_dir_ok, memory_order_relaxed) &&
	    mkdir(dir, 0700) != 0 && errno != EEXIST)
		return shk__errno_code(errno);
	return dir_check(dir);
}

/* Path of the listener of (segment instance, waitpoint, attach slot) in
 * directory dir.  Async-signal-safe (no snprintf): notify builds it. */
static int
listener_path(const char *dir, shk_seg *seg, shk__waitpoint *wp, uint32_t slot,
	      struct sockaddr_un *a)
{
	/* from the validated header: a peer cannot redirect the path */
	uint64_t id = shk__seg_instance(seg);
	/* the directory, '/', 16 + 16 hex digits, 10 decimal ones, '-' x2 */
	char buf[DIR_LEN + 48], *p;

	p = shk__put_str(buf, dir);
	*p++ = '/';
	p = shk__put_num(p, id, 16, 16);
	*p++ = '-';
	p = shk__put_num(p, (uint64_t)((uint8_t *)wp - seg->base), 16, 1);
	*p++ = '-';
	p = shk__put_num(p, slot, 10, 1);
	*p = '\0';
	if ((size_t)(p - buf) >= sizeof(a->sun_path))
		return SHK_ENAMETOOLONG;
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, buf, (size_t)(p - buf) + 1);
	return 0;
}

/* Whether a socket is bound at a's path: 1 yes, 0 no (no file, or a file
 * nobody is bound to: a dead or closed listener's), or a negative code. */
static int
path_live(const struct sockaddr_un *a)
{
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	if (s < 0)
		return shk__errno_code(errno);
	if (connect(s, (const struct sockaddr *)a, sizeof(*a)) == 0)
		rc = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		rc = 0;
	else
		rc = shk__errno_code(errno);
	close(s);
	return rc;
}

/* Takes the directory's flock (returns the descriptor to close), or a
 * negative code; tries every 1 ms and gives up with SHK_EBUSY once wait_ns
 * of monotonic time have passed (0: one try).  Time, not a count of
 * sleeps: a signal ends each sleep early. */
static int
dir_lock(int64_t wait_ns)
{
	char dir[DIR_LEN];
	int64_t deadline;
	int fd, rc;

	rc = doorbell_dir(dir);
	if (rc)
		return rc;
	pthread_mutex_lock(&db_lock_mu);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = shk__errno_code(errno);
		goto fail;
	}
	/* Bounded: another process of this user holds it only for a probe,
	 * an unlink and a bind, unless it is stopped or dying there; then
	 * this open gives up with SHK_EBUSY rather than wait on it. */
	deadline = shk__now_ns() + wait_ns;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rc = shk__errno_code(errno);
			close(fd);
			goto fail;
		}
		if (shk__now_ns() >= deadline) {
			close(fd);
			rc = SHK_EBUSY;
			goto fail;
		}
		usleep(1000);
	}
	return fd;
fail:
	pthread_mutex_unlock(&db_lock_mu);
	return rc;
}

static void
dir_unlock(int fd)
{
	close(fd); /* releases the flock: no other copy exists (above) */
	pthread_mutex_unlock(&db_lock_mu);
}

/* Notes which file db's bind created, for shk__doorbell_close(). */
static int
bound(struct shk__doorbell *db)
{
	struct stat st;

	if (lstat(db->addr.sun_path, &st) != 0)
		return shk__errno_code(errno);
	db->dev = st.st_dev;
	db->ino = st.st_ino;
	return 0;
}

/*
 * Binds db->fd at db->addr.  A file already there is replaced only when
 * it is stale (path_live() says nobody is bound to it); a live listener's
 * path is left alone and the caller gets SHK_EBUSY.  Probe, unlink and
 * bind run under the directory's flock, so two openers replacing the same
 * stale file cannot unlink each other's new socket; a plain bind needs no
 * lock (it fails while any file is there).  If another opener binds
 * between our unlink and bind, the next probe finds it live.
 */
static int
bind_listener(struct shk__doorbell *db)
{
	const struct sockaddr *sa = (const struct sockaddr *)&db->addr;
	int lk, rc = SHK_EBUSY, tries;

	if (bind(db->fd, sa, sizeof(db->addr)) == 0)
		return bound(db);
	if (errno != EADDRINUSE)
		return shk__errno_code(errno);
	lk = dir_lock(DIR_LOCK_WAIT_NS);
	if (lk < 0)
		return lk;
	for (tries = 0; tries < 4; tries++) {
		rc = path_live(&db->addr);
		if (rc != 0) {
			if (rc == 1)
				rc = SHK_EBUSY;
			break;
		}
		if (unlink(db->addr.sun_path) != 0 && errno != ENOENT) {
			rc = shk__errno_code(errno);
			break;
		}
		if (bind(db->fd, sa, sizeof(db->addr)) == 0) {
			rc = bound(db);
			break;
		}
		rc = errno == EADDRINUSE ? SHK_EBUSY : shk__errno_code(errno);
		if (rc != SHK_EBUSY)
			break;
	}
	dir_unlock(lk);
	return rc;
}

static int
hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Whether name has the form listener_path() gives: 16 hex digits, '-',
 * hex digits, '-', decimal digits. */
static int
listener_name(const char *p)
{
	int i;

	for (i = 0; i < 16; i++)
		if (!hex_digit(*p++))
			return 0;
	if (*p++ != '-' || !hex_digit(*p))
		return 0;
	while (hex_digit(*p))
		p++;
	if (*p++ != '-' || !*p)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

#define SWEEP_MAX 4096    /* directory entries one sweep examines */
#define SWEEP_MIN_AGE_S 2 /* younger files are left alone (below) */

/*
 * Removes the socket files of listeners that died without closing (a
 * killed process's: nobody is bound to them), which would otherwise stay
 * until a later listener of the same segment instance, waitpoint and slot
 * replaced them, for ever once the segment is gone.  Run once per process,
 * at its first listener, under the directory's flock, which it only tries
 * once: a busy lock means someone is replacing a file, and the sweep is
 * left for another process.  A file whose mtime is less than
 * SWEEP_MIN_AGE_S old is left alone: bind() creates the file an instant
 * before the socket is bound to it, and a probe in that instant reads
 * "stale".  Under the flock no opener replaces a file (bind_listener()),
 * and the only other writer, a closing listener, unlinks only a file it is
 * bound to; the second lstat() makes sure the file unlinked is the one
 * probed.  Examines at most SWEEP_MAX entries.
 */
static void
sweep_stale(void)
{
	struct sockaddr_un a;
	struct dirent *e;
	struct stat st, st2;
	char dir[DIR_LEN];
	time_t now = time(NULL);
	DIR *d;
	int lk, n = 0, len;

	if (doorbell_dir(dir))
		return;
	lk = dir_lock(0);
	if (lk < 0)
		return;
	d = opendir(dir);
	while (d && (e = readdir(d)) && n++ < SWEEP_MAX) {
		if (!listener_name(e->d_name))
			continue;
		memset(&a, 0, sizeof(a));
		a.sun_family = AF_UNIX;
		len = snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", dir,
			       e->d_name);
		if (len < 0 || (size_t)len >= sizeof(a.sun_path))
			continue;
		if (lstat(a.sun_path, &st) != 0 || !S_ISSOCK(st.st_mode) ||
		    st.st_uid != getuid() ||
		    st.st_mtime > now - SWEEP_MIN_AGE_S)
			continue;
		if (path_live(&a) != 0)
			continue;
		if (lstat(a.sun_path, &st2) == 0 && st2.st_dev == st.st_dev &&
		    st2.st_ino == st.st_ino)
			unlink(a.sun_path);
	}
	if (d)
		closedir(d);
	dir_unlock(lk);
}

/* The pid of the process that swept (or decided to): a fork()ed child
 * inherits its parent's, which is not its own, so it sweeps once too. */
static _Atomic pid_t swept_by;

int
shk__doorbell_open(shk_seg *seg, shk__waitpoint *wp, struct shk__doorbell **out)
{
	struct shk__doorbell *db;
	char dir[DIR_LEN];
	int rc;

	if (!out)
		return SHK_EINVAL;
	*out = NULL;
	if (!seg || !wp || seg->slot == UINT32_MAX ||
	    !shk__in_seg(seg, (uint64_t)((uint8_t *)wp - seg->base),
			 sizeof(*wp)))
		return SHK_EINVAL;
	db = calloc(1, sizeof(*db));
	if (!db)
		return SHK_ENOMEM;
	db->seg = seg;
	db->wp = wp;
	db->slot = seg->slot;
	db->held = -1;
	db->skips = SHK__DOORBELL_SKIP_MAX; /* the first arm empties */
	pthread_mutex_init(&db->mu, NULL);
	db->owner_key = shk__self_key();
	rc = doorbell_dir(dir);
	if (!rc)
		rc = listener_path(dir, seg, wp, seg->slot, &db->addr);
	if (rc)
		goto fail;
	db->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (db->fd < 0) {
		rc = shk__errno_code(errno);
		goto fail;
	}
	/* closed in every forked child (before it is bound: no fork can
	 * copy it bound and unregistered), so that a child outliving us
	 * does not keep our path live */
	rc = shk__fork_close_add(db->fd);
	if (rc) {
		close(db->fd);
		goto fail;
	}
	rc = bind_listener(db);
	if (rc)
		goto fail_fd;
	/* relaxed: a process-local flag; the sweep passes no data */
	if (atomic_exchange_explicit(&swept_by, getpid(),
				     memory_order_relaxed) != getpid())
		sweep_stale();
	*out = db;
	return 0;
fail_fd:
	/* a file our bind may have made stays, stale: the next opener of
	 * the slot replaces it */
	shk__fork_close(db->fd);
fail:
	pthread_mutex_destroy(&db->mu);
	free(db);
	return rc;
}

int
shk__doorbell_fd(const struct shk__doorbell *db)
{
	return db ? db->fd : SHK_EINVAL;
}

/* Whether db is this process's listener, not a forked child's copy of
 * its parent's: the fork handler closed the child's copy of the socket,
 * and the number may name one of the child's own files by now, which a
 * recvmmsg() would read from.  A system call (getpid, in shk__self_key()):
 * only on the paths that make a socket call anyway, and at most once per
 * arm or drain (ring_self() and empty_socket() leave it to their
 * callers: four per wake-and-consume round cost about 450 ns, measured). */
static int
db_mine(const struct shk__doorbell *db)
{
	return db->owner_key == shk__self_key();
}

/* db_mine() asked once per call: *mine is -1 until then */
static int
db_mine_once(const struct shk__doorbell *db, int *mine)
{
	if (*mine < 0)
		*mine = db_mine(db);
	return *mine;
}

static void
ring_self(struct shk__doorbell *db)
{
	char b = 1;
	int s = sender(); /* the caller checked db_mine() */

	/* relaxed, before the send: the next arm then empties
	 * (empty_due()); a flag seen late costs at most
	 * SHK__DOORBELL_SKIP_MAX readable polls, as below */
	atomic_store_explicit(&db->self_rung, 1, memory_order_relaxed);
	if (s >= 0)
		sendto(s, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&db->addr,
		       sizeof(db->addr));
}

/*
 * Takes every pending doorbell byte off the socket: one system call takes
 * up to 16; fewer means it is empty.  Not in a forked child: the caller
 * checked db_mine().
 */
static void
empty_socket(struct shk__doorbell *db)
{
	struct mmsghdr msgs[16];
	struct iovec iov[16];
	char buf[16];
	int i, n;

#ifdef SHK_TEST_HOOKS
	/* relaxed: a statistic the tests read after the calls */
	atomic_fetch_add_explicit(&shk__doorbell_test_empties, 1,
				  memory_order_relaxed);
#endif
	for (i = 0; i < 16; i++) {
		iov[i].iov_base = &buf[i];
		iov[i].iov_len = 1;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	do {
		n = recvmmsg(db->fd, msgs, 16, MSG_DONTWAIT, NULL);
	} while (n == 16);
}

/*
 * Whether this arm must empty the socket (call under db->mu).  An empty
 * is a recvmmsg() (about 400 ns, docs/waiting.md), which a consumer that
 * tries with timeout 0 before polling paid on every SHK_EAGAIN.  Only two
 * things send a byte: a waker (shk__wake_slow(), which bumps wp->seq,
 * release, before it calls shk__doorbell_notify(), the only sender to a
 * listener), and ring_self().  So when seq is what it was just before the
 * last empty and we did not ring ourselves since, no byte can have come
 * since that empty but one from a waker whose bump we saw before it and
 * whose sendto() landed after it (it was descheduled between the two), or
 * one that is not from this library (a peer of our uid with a socket).
 * Such a byte can keep the fd readable with nothing to read; every
 * SHK__DOORBELL_SKIP_MAX-th arm empties anyway, which bounds that to as
 * many readable polls of the documented loop.
 * No wake-up is lost by a skip: a skip leaves bytes, it never takes one,
 * and the fence and re-check after the arm (shk__doorbell_arm()) are the
 * same whether or not the socket was emptied.
 */
static int
empty_due(struct shk__doorbell *db)
{
	/* acquire: pairs with the release increment in shk__wake_slow(),
	 * made before that waker's notify; a stale value only costs an
	 * empty, or a skip bounded as above */
	uint32_t s = atomic_load_explicit(&db->wp->seq, memory_order_acquire);
	/* relaxed: a hint set before ring_self()'s send (above); the load
	 * spares the common case a locked exchange */
	int rung = atomic_load_explicit(&db->self_rung, memory_order_relaxed) &&
		   atomic_exchange_explicit(&db->self_rung, 0,
					    memory_order_relaxed);

	if (s == db->seq_at_empty && !rung &&
	    ++db->skips < SHK__DOORBELL_SKIP_MAX)
		return 0;
	db->seq_at_empty = s;
	db->skips = 0;
	return 1;
}

void
shk__doorbell_arm(struct shk__doorbell *db, shk__wait_pred pred, void *arg)
{
	uint64_t bit;
	int armed_here = 0, mine = -1; /* db_mine_once() */

	if (!db)
		return;
	/* Empty first, then arm, then re-check: the descriptor is then
	 * readable exactly when pred held at the re-check or a waker
	 * published after it.  A byte left from an earlier publication
	 * (one another handle consumed, or one sent between a drain's
	 * recv and its disarm) made the fd readable for good while pred
	 * stayed false, and the documented loop (read until SHK_EAGAIN,
	 * poll again) spun at full CPU (test fd_no_spin).  No wake-up is
	 * lost: a byte taken here was sent after its waker published
	 * (shk__wake: publish, fence, load armed, notify), and our
	 * receipt of it comes before the fence and re-check below (the
	 * socket's queue lock orders the send before the receive), so the
	 * re-check sees that publication, or a later consumer's work; a
	 * waker that publishes after the empty either sees armed (ours,
	 * new or kept) and sends a byte that stays, or we see its data
	 * (the Dekker pair below).  The empty is skipped when no byte can
	 * have come since the last one (empty_due(): every
	 * SHK__DOORBELL_SKIP_MAX-th arm empties anyway); a skip only
	 * leaves bytes, so it loses no wake-up either. */
	pthread_mutex_lock(&db->mu);
	if (empty_due(db)) {
		/* not under mu: a system call */
		pthread_mutex_unlock(&db->mu);
		if (db_mine_once(db, &mine))
			empty_socket(db);
		pthread_mutex_lock(&db->mu);
	}
	/* Two threads that both found armed 0 counted one listener twice
	 * in wp->armed and overwrote each other's holder entry, which then
	 * stayed taken for good (test fd_threads): wakers paid a sendto per
	 * publication for ever and dead listeners could not be repaired. */
	/* a forked child's copy (db_mine()) does not arm: the count would
	 * be its parent's; the getpid comes only with a first arm, after a
	 * drain, which a wake's empty accompanies */
	if (!db->armed && db_mine_once(db, &mine)) {
		bit = (uint64_t)1 << (db->slot % 64);
		/* relaxed load: a hint only; the RMW below is what counts */
		if (!(atomic_load_explicit(&db->wp->listeners,
					   memory_order_relaxed) &
		      bit))
			/* seq_cst: the bit is visible before armed, which
			 * the waker reads after its fence */
			atomic_fetch_or_explicit(&db->wp->listeners, bit,
						 memory_order_seq_cst);
		/* seq_cst RMW and fence: order our armed store before the
		 * re-check of the data below; pair with SHK_WAKER_FENCE in
		 * shk__wake() and with the seq_cst RMW and loads of
		 * shk__wake_sc() (Dekker: either the waker sees armed or
		 * we see its data).  As in shk__wait_checked(), C11 wants
		 * the fence for the store->load order; x86's locked add
		 * alone would give it */
		atomic_fetch_add_explicit(&db->wp->armed, 1,
					  memory_order_seq_cst);
		SHK_FENCE_SEQ_CST(&db->wp->armed);
		/* after the increment; cleared before the decrement in
		 * shk__doorbell_drain() (wait.h, Holders) */
		db->held = shk__wp_hold(db->wp, shk__seg_stamp(db->seg) |
							SHK__WP_ARMED);
		db->armed = 1;
		armed_here = 1;
	}
	pthread_mutex_unlock(&db->mu);
	/* Armed by another thread of the handle: its increment and fence
	 * happen before this point (the mutex), but the Dekker pair with
	 * the waker's fence is about our own re-check, so fence here too */
	if (!armed_here)
		SHK_FENCE_SEQ_CST(&db->wp->armed);
	if (pred && pred(arg) && db_mine_once(db, &mine))
		ring_self(db);
}

void
shk__doorbell_drain(struct shk__doorbell *db)
{
	/* A forked child's copy (db_mine()) must not disarm: armed and the
	 * holder entry are its parent's, which would stay armed in its own
	 * eyes with nobody counted, and get no byte (test
	 * fd_fork_no_socket_op).  The getpid is paid on a path that makes a
	 * system call anyway (the empty). */
	if (!db || !db_mine(db))
		return;
	/* Disarm first, then empty: a waker that saw us armed before the
	 * disarm has mostly sent its byte by the time we empty.  One that
	 * sends later (it loaded armed, then was descheduled) leaves a
	 * byte behind: the next arm empties it when that waker's seq bump
	 * came after the last arm's empty, and otherwise one of the next
	 * SHK__DOORBELL_SKIP_MAX arms does (empty_due()), so it costs a
	 * few spurious readable polls at most, never a spin. */
	pthread_mutex_lock(&db->mu);
	if (db->armed) {
		shk__wp_unhold(db->wp, db->held);
		db->held = -1;
		/* release: after the holder entry's clear (wait.c,
		 * shk__wp_unhold()); a stale nonzero value only costs the
		 * waker a notify */
		atomic_fetch_sub_explicit(&db->wp->armed, 1,
					  memory_order_release);
		db->armed = 0;
	}
	pthread_mutex_unlock(&db->mu);
	empty_socket(db);
}

static void
db_close(struct shk__doorbell *db, int disarm)
{
	struct stat st;

	if (!db)
		return;
	/* A forked child closing its copy of the parent's handle must not
	 * disarm (armed counts the parent's arm once), drain the parent's
	 * pending byte, or unlink its path; nor close the descriptor, which
	 * the fork handler closed (the number may name another file of the
	 * child's by now).  A child of raw clone() or _Fork(), which runs no
	 * fork handlers, keeps its copy open until it exits. */
	if (db->owner_key == shk__self_key()) {
		if (disarm)
			shk__doorbell_drain(db);
		/* unlink before close: while our socket is open the path is
		 * live, so no opener replaces it between lstat and unlink;
		 * and unlink only the file we bound (a tmp cleaner may have
		 * removed it and a later listener bound there) */
		if (lstat(db->addr.sun_path, &st) == 0 &&
		    st.st_dev == db->dev && st.st_ino == db->ino)
			unlink(db->addr.sun_path);
		shk__fork_close(db->fd);
	}
	pthread_mutex_destroy(&db->mu);
	free(db);
}

void
shk__doorbell_close(struct shk__doorbell *db)
{
	db_close(db, 1);
}

void
shk__doorbell_abandon(struct shk__doorbell *db)
{
	/* the waitpoint may be another object's memory: no disarm (the
	 * socket's pending bytes go with its close) */
	db_close(db, 0);
}

void
shk__doorbell_notify(shk_seg *seg, shk__waitpoint *wp)
{
	struct sockaddr_un a;
	char dir[DIR_LEN];
	uint64_t bits;
	uint32_t slot;
	char b = 1;
	int s;

	if (!seg)
		return;
	/* Async-signal-safe from here on (shk_sem_post runs it): no
	 * pthread_once, no mkdir (a missing directory has no listener),
	 * no snprintf. */
	dir_name(dir);
	if (dir_check(dir))
		return;
	s = sender();
	if (s < 0)
		return;
	/* acquire: pairs with the seq_cst fetch_or in shk__doorbell_arm() */
	bits = atomic_load_explicit(&wp->listeners, memory_order_acquire);
	while (bits) {
		uint32_t b0 = (uint32_t)__builtin_ctzll(bits);

		bits &= bits - 1;
		for (slot = b0; slot < seg->attach_cap; slot += 64) {
			/* only attached slots can listen: skip the others
			 * without a system call (acquire: pairs with the
			 * release store of ACTIVE in shk__seg_attach()) */
			uint64_t w = atomic_load_explicit(
				&shk__attach_at(seg, slot)->word,
				memory_order_acquire);
			if (SHK__ATT_STATE(w) != SHK__ATT_ACTIVE)
				continue;
			if (listener_path(dir, seg, wp, slot, &a))
				return;
			/* EAGAIN: a wake is already pending; ENOENT or
			 * ECONNREFUSED: nobody listens there */
			sendto(s, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&a,
			       sizeof(a));
		}
	}
}
