/*
 * test_security.c - segments against another user: what a process of a
 * second uid can do to a segment it may read (or that it made first), and
 * what it must not be able to do.  These cases play the other user with a
 * forked child that switches to uid and gid 65534, so they need root (as
 * other_user_denied in test_segment.c) and are skipped without it.
 *
 * The other user's child (hostile_start) does its part, reports one byte
 * through a pipe, and keeps what it opened (descriptors, their locks)
 * until the test calls hostile_stop().
 */
#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include "platform.h"
#include "segment.h"

#define OTHER_ID 65534

/* Ends the case for the other user's child answer c (not 'r'): a skip
 * when it could not switch to OTHER_ID ('s'), else a failure. */
#define other_failed(c)                                                        \
	do {                                                                   \
		if ((c) == 's')                                                \
			SKIP("cannot switch to uid %d", OTHER_ID);             \
		TEST_FAIL("the other user's child failed: '%c'", (c));         \
	} while (0)

/* Becomes uid/gid OTHER_ID with no supplementary groups: 0, or -1. */
static int
become_other(void)
{
	if (geteuid() != 0)
		return -1;
	if (setgroups(0, NULL) || setgid(OTHER_ID) || setuid(OTHER_ID))
		return -1;
	return geteuid() == OTHER_ID ? 0 : -1;
}

static void
need_root(void)
{
	if (geteuid() != 0)
		SKIP("needs root: a forked child switches to uid %d to play "
		     "another user",
		     OTHER_ID);
}

struct hostile {
	pid_t pid;
	int done_w;
};

/*
 * Forks a child that becomes the other user and runs fn(arg), whose one
 * byte (by convention 'r': done as intended) comes back as the result;
 * 's' means the child could not switch users.  The child then keeps its
 * descriptors until hostile_stop().
 */
static char
hostile_start(struct hostile *h, char (*fn)(const char *), const char *arg)
{
	int rp[2], dp[2];
	char c = 'x';

	CHECK(pipe(rp) == 0 && pipe(dp) == 0);
	h->pid = fork();
	CHECK(h->pid >= 0);
	if (h->pid == 0) {
		close(rp[0]);
		close(dp[1]);
		c = become_other() ? 's' : fn(arg);
		if (write(rp[1], &c, 1) != 1)
			_exit(1);
		while (read(dp[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(rp[1]);
	close(dp[0]);
	if (read(rp[0], &c, 1) != 1)
		c = 'x';
	close(rp[0]);
	h->done_w = dp[1];
	return c;
}

static void
hostile_stop(struct hostile *h)
{
	close(h->done_w);
	test_wait(h->pid);
}

/* An OFD lock of type on [start, start + len) through fd: 0 or -errno. */
static int
ofd_lock(int fd, short type, uint64_t start, uint64_t len)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)start;
	fl.l_len = (off_t)len;
	return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

static int
open_shm_rdonly(const char *nm)
{
	char path[128];

	snprintf(path, sizeof(path), "/dev/shm/%s", nm);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* The other user read-locks every attach slot's liveness-lock byte that
 * no live owner holds (slot 0: the creator's, held for writing). */
static char
read_lock_livelocks(const char *nm)
{
	int fd = open_shm_rdonly(nm), n = 0;
	uint32_t i;

	if (fd < 0)
		return 'o';
	/* a write lock needs a writable description: not for a reader */
	if (ofd_lock(fd, F_WRLCK, SHK__LIVELOCK_BASE + 1, 1) != -EBADF)
		return 'w';
	for (i = 0; i < SHK__ATTACH_CAP; i++)
		n += ofd_lock(fd, F_RDLCK, SHK__LIVELOCK_BASE + i, 1) == 0;
	return n == SHK__ATTACH_CAP - 1 ? 'r' : 'l';
}

/*
 * A reader's read lock on the liveness-lock bytes (F2b of the 2026-11
 * audit) neither blocks writable opens nor keeps a dead owner alive.
 * Before, shk__livelock_try() took any refusal for a live owner, so every
 * writable open got SHK_EBUSY, and shk__livelock_held() asked with
 * F_WRLCK, so the reader's lock made a SIGKILLed owner's record alive for
 * ever (attached_alive 2, and the open SHK_EBUSY).
 */
static void
t_livelock_reader_lock(void)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_seg_stats st = { .size = sizeof(st) };
	shk_attach_info ai = { .size = sizeof(ai) };
	shk_seg *seg, *s2 = NULL;
	struct hostile h;
	uint32_t cur = 0;
	int rc, locked = 0;
	char nm[64], c;
	pid_t pid;

	need_root();
	test_name(nm, sizeof(nm), "rdlive");
	o.mode = 0644;
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &seg));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shk_seg *cs;

		if (shk_seg_open(nm, 0, NULL, &cs))
			_exit(1);
		raise(SIGKILL); /* dies attached, its record LOCKED */
	}
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	c = hostile_start(&h, read_lock_livelocks, nm);
	if (c != 'r') {
		hostile_stop(&h);
		shk_seg_close(seg);
		shk_seg_unlink(nm, NULL);
		other_failed(c);
	}
	rc = shk_seg_info(seg, &st);
	if (rc == 0 && st.attached_alive == 1)
		rc = shk_seg_open(nm, 0, NULL, &s2);
	while (s2 && shk_seg_attached(s2, &cur, &ai) == 1)
		if (ai.slot == s2->slot)
			locked = (ai.flags & SHK_ATTACH_LOCKED) != 0;
	shk_seg_close(s2);
	hostile_stop(&h);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
	CHECK_OK(rc);
	CHECK_EQ(st.attached, 2);
	/* the dead owner's record: its read-locked byte is not a holder */
	CHECK_EQ(st.attached_alive, 1);
	/* the new handle claimed its record without the liveness lock */
	CHECK(s2 != NULL);
	CHECK_EQ(locked, 0);
}

/* The other user holds flock(LOCK_EX) on a read-only descriptor, and an
 * OFD read lock on the creation-lock byte. */
static char
lock_creator(const char *nm)
{
	int fd = open_shm_rdonly(nm);

	if (fd < 0)
		return 'o';
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		return 'f';
	/* the creator's write lock needs a writable description */
	if (ofd_lock(fd, F_WRLCK, SHK__SEG_CREATE_LOCK, 1) != -EBADF)
		return 'w';
	return ofd_lock(fd, F_RDLCK, SHK__SEG_CREATE_LOCK, 1) ? 'l' : 'r';
}

/*
 * A reader cannot make openers wait for a "creator at work" (F2a of the
 * 2026-11 audit).  Before, the creator and opener locked with flock(),
 * which LOCK_EX takes on a read-only descriptor: a reader holding it made
 * every open of the segment wait until SHK_ETIMEDOUT.  Now the creator's
 * lock is an OFD write lock on one byte, which a read-only descriptor
 * cannot take, and openers take read locks, which the reader's does not
 * refuse.
 */
static void
t_reader_fakes_creator(void)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_seg *seg, *s2 = NULL, *s3 = NULL, *s4 = NULL;
	struct hostile h;
	int rc2, rc3, rc4;
	char nm[64], c;

	need_root();
	test_name(nm, sizeof(nm), "fakecr");
	o.mode = 0644;
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &seg));
	c = hostile_start(&h, lock_creator, nm);
	if (c != 'r') {
		hostile_stop(&h);
		shk_seg_close(seg);
		shk_seg_unlink(nm, NULL);
		other_failed(c);
	}
	o.mode = 0;
	o.open_timeout_ns = 200000000;
	rc2 = shk_seg_open(nm, 0, &o, &s2);
	rc3 = shk_seg_open(nm, SHK_CREATE, &o, &s3);
	rc4 = shk_seg_open(nm, SHK_RDONLY, &o, &s4);
	shk_seg_close(s2);
	shk_seg_close(s3);
	shk_seg_close(s4);
	hostile_stop(&h);
	shk_seg_close(seg);
	shk_seg_unlink(nm, NULL);
	CHECK_OK(rc2);
	CHECK_OK(rc3);
	CHECK_OK(rc4);
}

/* The backend and opts of the segment the other user makes (set before
 * hostile_start forks). */
static shk_seg_opts other_opts;
/* A directory to remove after the segment, on every path ("": none). */
static char other_dir[64];

static void
other_cleanup(const char *nm, const shk_seg_opts *o)
{
	shk_seg_unlink(nm, o);
	if (other_dir[0])
		rmdir(other_dir);
}

/* The other user makes segment nm with mode 0666, and closes it. */
static char
make_0666(const char *nm)
{
	shk_seg_opts o = other_opts;
	shk_seg *s;

	o.mode = 0666;
	if (shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &s))
		return 'c';
	shk_seg_close(s);
	return 'r';
}

/*
 * A segment that another user made first under the name, with a mode that
 * lets everyone in, is not opened as ours (F1 of the 2026-11 audit): a
 * create-or-open, a plain open and a read-only open are SHK_EACCES;
 * SHK_ANY_OWNER opens it on purpose.  Before, the create-or-open returned
 * 0 and the caller wrote its data into the other user's segment.
 */
static void
other_owner(uint32_t backend, const char *nm)
{
	static const struct {
		unsigned flags;
		int want;
	} cases[] = {
		{ SHK_CREATE, SHK_EACCES },
		{ 0, SHK_EACCES },
		{ SHK_RDONLY, SHK_EACCES },
		{ SHK_CREATE | SHK_EXCL, SHK_EEXIST },
		{ SHK_CREATE | SHK_ANY_OWNER, 0 },
		{ SHK_ANY_OWNER, 0 },
		{ SHK_RDONLY | SHK_ANY_OWNER, 0 },
	};
	int rc[sizeof(cases) / sizeof(cases[0])];
	shk_seg_stats st = { .size = sizeof(st) };
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	struct hostile h;
	size_t i;
	char c;

	o.backend = backend;
	o.open_timeout_ns = 200000000;
	other_opts = o;
	c = hostile_start(&h, make_0666, nm);
	hostile_stop(&h);
	if (c != 'r') {
		other_cleanup(nm, &o);
		if (c == 's')
			SKIP("cannot switch to uid %d", OTHER_ID);
		TEST_FAIL("backend %u: the other user's child failed: '%c'",
			  backend, c);
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		shk_seg *s = NULL;

		rc[i] = shk_seg_open(nm, cases[i].flags, &o, &s);
		if (s && shk_seg_info(s, &st) == 0 &&
		    st.creator_uid != OTHER_ID)
			rc[i] = 1; /* not the other user's segment */
		shk_seg_close(s);
	}
	other_cleanup(nm, &o);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (rc[i] != cases[i].want)
			TEST_FAIL("backend %u, flags %#x: %s, expected %s",
				  backend, cases[i].flags, shk_errname(rc[i]),
				  shk_errname(cases[i].want));
}

static void
t_other_owner_posix(void)
{
	char nm[64];

	need_root();
	other_owner(SHK_BACKEND_POSIX, test_name(nm, sizeof(nm), "own"));
}

static void
t_other_owner_sysv(void)
{
	char nm[64];

	need_root();
	other_owner(SHK_BACKEND_SYSV, test_name(nm, sizeof(nm), "own"));
}

/* The other user makes SysV segment nm (key other_opts.sysv_key) with
 * mode 0666, then names us (root) its owner with IPC_SET, which needs no
 * privilege: only cuid still says who made it. */
static char
make_0666_spoof(const char *nm)
{
	struct shmid_ds ds;
	int id;

	if (make_0666(nm) != 'r')
		return 'c';
	id = shmget(other_opts.sysv_key, 0, 0);
	if (id < 0 || shmctl(id, IPC_STAT, &ds) != 0)
		return 'i';
	ds.shm_perm.uid = 0;
	if (shmctl(id, IPC_SET, &ds) != 0)
		return 'u';
	return 'r';
}

/*
 * A SysV segment whose owner its maker set to us (shm_perm.uid) is still
 * not ours: the check also asks cuid, which nobody can change (review of
 * the F1 fix: with uid alone, create-or-open and open returned 0 here).
 */
static void
t_other_owner_sysv_spoof(void)
{
	shk_seg_opts o = SHK_SEG_OPTS_INIT;
	shk_seg *s = NULL;
	struct hostile h;
	char nm[64];
	int rc1, rc2, rc3;
	char c;

	need_root();
	test_name(nm, sizeof(nm), "spoof");
	o.backend = SHK_BACKEND_SYSV;
	o.sysv_key = 0x40000000 | (int32_t)(getpid() & 0xffffff);
	o.open_timeout_ns = 200000000;
	other_opts = o;
	c = hostile_start(&h, make_0666_spoof, nm);
	hostile_stop(&h);
	if (c != 'r') {
		other_cleanup(nm, &o);
		other_failed(c);
	}
	rc1 = shk_seg_open(nm, SHK_CREATE, &o, &s);
	shk_seg_close(s);
	s = NULL;
	rc2 = shk_seg_open(nm, 0, &o, &s);
	shk_seg_close(s);
	s = NULL;
	rc3 = shk_seg_open(nm, SHK_ANY_OWNER, &o, &s);
	shk_seg_close(s);
	other_cleanup(nm, &o);
	if (rc1 != SHK_EACCES || rc2 != SHK_EACCES || rc3 != 0)
		TEST_FAIL("create-or-open %s, open %s (both want SHK_EACCES), "
			  "SHK_ANY_OWNER %s",
			  shk_errname(rc1), shk_errname(rc2), shk_errname(rc3));
}

static void
t_other_owner_file(void)
{
	char path[96];

	need_root();
	/* a directory the other user may create in */
	snprintf(other_dir, sizeof(other_dir), "/tmp/shk-test-%d-XXXXXX",
		 (int)getpid());
	CHECK(mkdtemp(other_dir) != NULL);
	snprintf(path, sizeof(path), "%s/seg", other_dir);
	if (chmod(other_dir, 0777) != 0) {
		rmdir(other_dir);
		TEST_FAIL("chmod %s: %s", other_dir, strerror(errno));
	}
	other_owner(SHK_BACKEND_FILE, path);
}

/* The other user's end B of pair channel addr: without SHK_ANY_OWNER
 * the open is SHK_EACCES ('a' if not), with it the end opens ('o' if
 * not) and sends "hi" ('s' if not). */
static char
other_chan_end(const char *addr)
{
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_chan *c = NULL;

	if (shk_chan_open(addr, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &c) !=
	    SHK_EACCES)
		return 'a';
	o.flags = SHK_ANY_OWNER;
	if (shk_chan_open(addr, SHK_CHAN_PAIR, SHK_CHAN_B, &o, &c))
		return 'o';
	if (shk_chan_send(c, "hi", 2, 1000000000))
		return 's';
	return 'r';
}

/*
 * A channel whose ends are processes of two users: the first end creates
 * the segment with opts.seg_mode 0666, the other user's end opens it with
 * opts.flags SHK_ANY_OWNER (SHK_EACCES without), and a message travels.
 * Before 2026-11-25 shk_chan_opts had neither field: a channel's ends had
 * to be processes of one user.  Bad flags are SHK_EINVAL.
 */
static void
t_chan_two_users(void)
{
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_seg_stats st = { .size = sizeof(st) };
	shk_chan *a = NULL, *x = NULL;
	shk_msg *m = NULL;
	struct hostile h;
	char nm[64], addr[96], c;

	need_root();
	test_name(nm, sizeof(nm), "chan2u");
	snprintf(addr, sizeof(addr), "shm://%s/c", nm);
	o.flags = 0x4; /* SHK_RDONLY: not a channel flag */
	CHECK_RC(shk_chan_open(addr, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &x),
		 SHK_EINVAL);
	o.flags = 0;
	o.seg_mode = 01777;
	CHECK_RC(shk_chan_open(addr, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &x),
		 SHK_EINVAL);
	o.seg_mode = 0666;
	CHECK_OK(shk_chan_open(addr, SHK_CHAN_PAIR, SHK_CHAN_A, &o, &a));
	CHECK_OK(shk_seg_info(shk_chan_seg(a), &st));
	CHECK(st.create_mode == 0666);
	c = hostile_start(&h, other_chan_end, addr);
	if (c == 'r') {
		CHECK_OK(shk_chan_recv(a, &m, 1000000000));
		CHECK(shk_msg_len(m) == 2 && !memcmp(shk_msg_data(m), "hi", 2));
		shk_msg_release(m);
	}
	hostile_stop(&h);
	shk_chan_close(a);
	shk_seg_unlink(nm, NULL);
	if (c != 'r')
		other_failed(c);
}

TEST_MAIN({ "livelock_reader_lock", t_livelock_reader_lock },
	  { "reader_fakes_creator", t_reader_fakes_creator },
	  { "other_owner_posix", t_other_owner_posix },
	  { "other_owner_sysv", t_other_owner_sysv },
	  { "other_owner_sysv_spoof", t_other_owner_sysv_spoof },
	  { "other_owner_file", t_other_owner_file },
	  { "chan_two_users", t_chan_two_users })
