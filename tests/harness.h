/*
 * harness.h - shmkit's test harness (STYLE B10).
 *
 * A test file defines its cases and ends with
 *   TEST_MAIN({"name", fn}, {"other", fn2})
 * Each case runs in a forked child under alarm(); `--no-fork` runs cases in
 * the parent; a case name as argument runs only that case.  SKIP(...)
 * exits 77.  The binary prints one line per case and a summary line
 *   # cases: P passed, F failed, S skipped
 * that tests/run.sh adds up.  Exit status: 0 all passed (or skipped),
 * 1 otherwise.
 *
 * Shared-memory names: test_name(buf, "case") gives "shk-test-<pid>-case";
 * tests remove every segment they create.
 *
 * Under valgrind (`make valgrind`): test_valgrind() is true, and each case
 * process ends with a leak check of its own (test_leak_check): a block
 * definitely lost fails the case.  The check is the case's, not each
 * process's at exit (valgrind runs with --leak-check=no): a forked worker
 * inherits its parent's handles and drops the pointers it never uses, so
 * valgrind's exit check would count them as lost in every worker.  The
 * alarm() per case is TEST_ALARM_S times SHK_TEST_TIMEOUT_MULTIPLIER.
 */
#ifndef SHK_TEST_HARNESS_H
#define SHK_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmkit.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define TEST_HAVE_VALGRIND 1
#endif
#endif

struct test_case {
	const char *name;
	void (*fn)(void);
};

#define TEST_FAIL(...)                                                         \
	do {                                                                   \
		fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);         \
		fprintf(stderr, __VA_ARGS__);                                  \
		fprintf(stderr, "\n");                                         \
		fflush(stderr);                                                \
		_exit(1);                                                      \
	} while (0)

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			TEST_FAIL("CHECK(%s)", #c);                            \
	} while (0)

#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long va_ = (long long)(a), vb_ = (long long)(b);          \
		if (va_ != vb_)                                                \
			TEST_FAIL("CHECK_EQ(%s, %s): %lld != %lld", #a, #b,    \
				  va_, vb_);                                   \
	} while (0)

#define CHECK_OK(expr)                                                         \
	do {                                                                   \
		int rc_ = (expr);                                              \
		if (rc_ < 0)                                                   \
			TEST_FAIL("%s returned %s (%s)", #expr,                \
				  shk_errname(rc_), shk_strerror(rc_));        \
	} while (0)

/* CHECK_RC(expr, SHK_EXXX): the call must return exactly that code. */
#define CHECK_RC(expr, want)                                                   \
	do {                                                                   \
		int rc_ = (expr), w_ = (want);                                 \
		if (rc_ != w_)                                                 \
			TEST_FAIL("%s returned %s, expected %s", #expr,        \
				  shk_errname(rc_), shk_errname(w_));          \
	} while (0)

#define SKIP(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "  SKIP: ");                                   \
		fprintf(stderr, __VA_ARGS__);                                  \
		fprintf(stderr, "\n");                                         \
		fflush(stderr);                                                \
		_exit(77);                                                     \
	} while (0)

static inline const char *
test_name(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "shk-test-%d-%s", (int)getpid(), tag);
	return buf;
}

/* A fresh 1 MiB segment named for tag, whose name is removed at once, so
 * that no failure path leaves it in /dev/shm; other handles open its
 * descriptor (shk_seg_fd, inherited by children). */
static inline shk_seg *
test_seg_unlinked(const char *tag)
{
	char nm[64];
	shk_seg *s = NULL;
	shk_seg_opts o = SHK_SEG_OPTS_INIT;

	test_name(nm, sizeof(nm), tag);
	shk_seg_unlink(nm, NULL);
	o.len = 1 << 20;
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, &o, &s));
	CHECK_OK(shk_seg_unlink(nm, NULL));
	CHECK(shk_seg_fd(s) >= 0);
	return s;
}

/* The state letter of /proc/PID/stat (R, S, Z, ...), '?' if unreadable. */
static inline char
test_proc_state(pid_t pid)
{
	char path[64], buf[512], *q;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	q = strrchr(buf, ')');
	return q && q[1] == ' ' ? q[2] : '?';
}

/* A pid that names no process here (30000 down to 1000), for records and
 * holders that must not be found by kill(pid, 0); 0 if none is free. */
static inline pid_t
test_unused_pid(void)
{
	pid_t n;

	for (n = 30000; n > 1000; n--)
		if (kill(n, 0) != 0 && errno == ESRCH)
			return n;
	return 0;
}

static inline int64_t
test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Scales iteration counts: SHK_TEST_SCALE (default 1.0). */
static inline long
test_scale(long n)
{
	const char *s = getenv("SHK_TEST_SCALE");
	double f = s ? atof(s) : 1.0;
	long r = (long)(n * (f > 0 ? f : 1.0));
	return r > 0 ? r : 1;
}

/*
 * A thread body that flips the 64-bit word *field between good and 2^40
 * until stop is set: a peer rewriting a header field while the code under
 * test reads it (tests that shared memory is read once, then trusted only
 * as the copy).  Relaxed throughout: the race is the point (the field is
 * plain, hence the __atomic builtins); not for TSan builds.
 */
struct test_flip {
	uint64_t *field;
	uint64_t good;
	_Atomic int stop;
};

static inline void *
test_flipper(void *arg)
{
	struct test_flip *f = arg;

	while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
		__atomic_store_n(f->field, (uint64_t)1 << 40, __ATOMIC_RELAXED);
		__atomic_store_n(f->field, f->good, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * For 300 ms, describes the object (shk_obj_describe) while a
 * test_flipper thread flips *field between good and 2^40: every call must
 * give a description or SHK_ECORRUPT, never crash.  A no-op under TSan,
 * where the flipping is a reported race by design.
 */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif

static inline void
test_describe_flipping(shk_seg *seg, const shk_obj_info *info, uint64_t *field,
		       uint64_t good)
{
#ifndef TEST_TSAN
	struct test_flip f = { field, good, 0 };
	char buf[256];
	pthread_t t;
	int64_t t0;
	int rc;

	CHECK(pthread_create(&t, NULL, test_flipper, &f) == 0);
	t0 = test_now_ns();
	while (test_now_ns() - t0 < 300000000LL) {
		rc = shk_obj_describe(seg, info, buf, sizeof(buf));
		CHECK(rc > 0 || rc == SHK_ECORRUPT);
	}
	atomic_store(&f.stop, 1);
	pthread_join(t, NULL);
#else
	(void)seg;
	(void)info;
	(void)field;
	(void)good;
#endif
}

/*
 * A signal storm: a thread that sends SIGUSR1 (whose handler does
 * nothing) to thread `target` every period_us until test_storm_stop(), as
 * a program with a periodic timer signal gets them: every futex sleep of
 * the target then ends early with EINTR.  If victim is not 0, the thread
 * also SIGKILLs it once, kill_after_ns after the start (the target may be
 * blocked in the call under test).  SIGUSR1 is used because the harness's
 * alarm() owns SIGALRM.
 */
struct test_storm {
	pthread_t target;
	long period_us;
	pid_t victim;
	int64_t kill_after_ns;
	pthread_t thread;
	_Atomic int stop;
};

static inline void
test_storm_handler(int sig)
{
	(void)sig;
}

static inline void *
test_storm_body(void *arg)
{
	struct test_storm *st = arg;
	int64_t t0 = test_now_ns();

	while (!atomic_load(&st->stop)) {
		usleep((useconds_t)st->period_us);
		pthread_kill(st->target, SIGUSR1);
		if (st->victim && test_now_ns() - t0 >= st->kill_after_ns) {
			kill(st->victim, SIGKILL);
			st->victim = 0;
		}
	}
	return NULL;
}

static inline void
test_storm_start(struct test_storm *st, long period_us, pid_t victim,
		 int64_t kill_after_ns)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = test_storm_handler; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		TEST_FAIL("sigaction: %s", strerror(errno));
	st->target = pthread_self();
	st->period_us = period_us;
	st->victim = victim;
	st->kill_after_ns = kill_after_ns;
	atomic_store(&st->stop, 0);
	if (pthread_create(&st->thread, NULL, test_storm_body, st) != 0)
		TEST_FAIL("pthread_create failed");
}

static inline void
test_storm_stop(struct test_storm *st)
{
	atomic_store(&st->stop, 1);
	pthread_join(st->thread, NULL);
	signal(SIGUSR1, SIG_IGN);
}

/* True when the test runs under valgrind (the header is needed to tell;
 * without it, never).  For the few cases that cannot mean anything there
 * (tight timing bounds, fork storms): they SKIP, saying why. */
static inline int
test_valgrind(void)
{
#ifdef TEST_HAVE_VALGRIND
	return RUNNING_ON_VALGRIND != 0;
#else
	return 0;
#endif
}

/*
 * Under valgrind: a full leak search now, in the case process at the end
 * of its case; any block definitely lost fails the case (memcheck prints
 * where it was allocated).  "Possibly lost" (an interior pointer only) is
 * not counted, as with --errors-for-leak-kinds=definite.  The harness
 * parent allocates nothing before it forks a case, so every block here is
 * the case's own.  Not under valgrind: nothing.
 */
static inline void
test_leak_check(void)
{
#ifdef TEST_HAVE_VALGRIND
	unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;

	if (!RUNNING_ON_VALGRIND)
		return;
	VALGRIND_DO_LEAK_CHECK;
	VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
	(void)dubious;
	(void)reachable;
	(void)suppressed;
	if (leaked)
		TEST_FAIL("valgrind: %lu bytes definitely lost (above)",
			  leaked);
#endif
}

/* Waits for a child; returns its exit status, or 128+signal. */
static inline int
test_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

#ifndef TEST_ALARM_S
#define TEST_ALARM_S 120
#endif

static inline int
test_main(int argc, char **argv, const struct test_case *cases, size_t n)
{
	int fork_mode = 1, passed = 0, failed = 0, skipped = 0;
	const char *only = NULL, *mult_s;
	unsigned alarm_s = TEST_ALARM_S;
	size_t i;

	if (getenv("SHK_TEST_VALGRIND") && !test_valgrind()) {
		/* make valgrind: built without the header, no leak checks */
		fprintf(stderr, "SHK_TEST_VALGRIND is set, but this binary "
				"does not see valgrind: rebuild it with "
				"valgrind/memcheck.h installed\n");
		return 1;
	}
	mult_s = getenv("SHK_TEST_TIMEOUT_MULTIPLIER");
	if (mult_s && atoi(mult_s) > 1)
		alarm_s *= (unsigned)atoi(mult_s);

	for (i = 1; i < (size_t)argc; i++) {
		if (!strcmp(argv[i], "--no-fork"))
			fork_mode = 0;
		else if (!strcmp(argv[i], "--list")) {
			for (size_t j = 0; j < n; j++)
				printf("%s\n", cases[j].name);
			return 0;
		} else
			only = argv[i];
	}
	for (i = 0; i < n; i++) {
		int64_t t0;
		int rc;

		if (only && strcmp(only, cases[i].name))
			continue;
		t0 = test_now_ns();
		fflush(stdout);
		if (fork_mode) {
			pid_t pid = fork();
			if (pid == 0) {
				alarm(alarm_s);
				cases[i].fn();
				test_leak_check();
				fflush(stdout);
				_exit(0);
			}
			rc = test_wait(pid);
		} else {
			cases[i].fn();
			rc = 0;
		}
		if (rc == 0) {
			passed++;
			printf("PASS %s (%.0f ms)\n", cases[i].name,
			       (test_now_ns() - t0) / 1e6);
		} else if (rc == 77) {
			skipped++;
			printf("SKIP %s\n", cases[i].name);
		} else {
			failed++;
			printf("FAIL %s (status %d%s)\n", cases[i].name, rc,
			       rc == 128 + SIGALRM ? ", timed out" : "");
		}
		fflush(stdout);
	}
	printf("# cases: %d passed, %d failed, %d skipped\n", passed, failed,
	       skipped);
	return failed ? 1 : 0;
}

#define TEST_MAIN(...)                                                         \
	int main(int argc, char **argv)                                        \
	{                                                                      \
		static const struct test_case cases_[] = { __VA_ARGS__ };      \
		return test_main(argc, argv, cases_,                           \
				 sizeof(cases_) / sizeof(cases_[0]));          \
	}

#endif /* SHK_TEST_HARNESS_H */
