/*
 * platform.h - the only place that talks to the kernel directly: futexes,
 * clocks, page size, CPU relax, process liveness, name checks, crash points.
 */
#ifndef SHK_PLATFORM_H
#define SHK_PLATFORM_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "shmkit.h"

/* Lock-free 32- and 64-bit atomics are address-free, hence valid across
 * processes (STYLE B5). */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define SHK_HIDDEN __attribute__((visibility("hidden")))
#define SHK_CACHELINE 64
#define SHK_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHK_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Internal invariants only; never for caller input or segment contents. */
#define SHK_ASSERT(c)                                                          \
	do {                                                                   \
		if (SHK_UNLIKELY(!(c)))                                        \
			shk__panic(__FILE__, __LINE__, #c);                    \
	} while (0)
SHK_HIDDEN _Noreturn void shk__panic(const char *file, int line,
				     const char *what);

/*
 * initial-exec TLS: reached without a call to __tls_get_addr (the library
 * is -fPIC); costs static TLS, so only for a few bytes (heap.c: the thread
 * identity byte; wait.c: the adaptive spin counters; platform.c: the
 * fork handlers' flag).
 */
#if defined(__GNUC__)
#define SHK__TLS_IE __attribute__((tls_model("initial-exec")))
/* for a hot static function the compiler would otherwise call */
#define SHK__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define SHK__TLS_IE
#define SHK__ALWAYS_INLINE inline
#endif

/*
 * SHK_FENCE_SEQ_CST(word) orders a preceding store before a following load
 * (the sleeper protocol, STYLE B6).  ThreadSanitizer ignores standalone
 * fences (google/sanitizers#1415), so under SAN=thread the fence becomes a
 * seq_cst RMW on the atomic word it orders, which TSan understands.
 */
#if defined(__SANITIZE_THREAD__)
#define SHK__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHK__TSAN 1
#endif
#endif
#ifdef SHK__TSAN
#define SHK_FENCE_SEQ_CST(word)                                                \
	((void)atomic_fetch_add_explicit((word), 0, memory_order_seq_cst))
#else
#define SHK_FENCE_SEQ_CST(word)                                                \
	((void)(word), atomic_thread_fence(memory_order_seq_cst))
#endif

/*
 * SHK_WAKER_FENCE(word): the waker's half of the sleeper protocol (wait.h),
 * a full store->load fence on every publish.  On x86-64 a locked add to the
 * stack is a full barrier that costs less than MFENCE (Linux's smp_mb does
 * the same); elsewhere, and under TSan, SHK_FENCE_SEQ_CST.
 *
 * An asymmetric fence (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) on the
 * sleeper, a compiler barrier on the waker) was tried and measured: on the
 * 2-vCPU development VM each sleep then cost 1-40 us of IPIs, which made the
 * sleeping paths several times slower for a small gain on publishing; see
 * docs/waiting.md.
 */
#if defined(SHK__TSAN) || !defined(__x86_64__)
#define SHK_WAKER_FENCE(word) SHK_FENCE_SEQ_CST(word)
#else
#define SHK_WAKER_FENCE(word)                                                  \
	do {                                                                   \
		(void)(word);                                                  \
		__asm__ __volatile__("lock; addl $0,-8(%%rsp)" ::              \
					     : "memory", "cc");                \
	} while (0)
#endif

/*
 * shk__single_threaded: 1 while this process has never had a second
 * thread created through glibc (glibc's __libc_single_threaded, 2.32 and
 * later), else 0; 0 where the C library cannot tell (and in the child of a
 * multithreaded parent, and in dlmopen'ed copies of libc).  Callers use it
 * to skip process-local locks that only order threads of one process.  A
 * call that finds 1 cannot be joined by another thread before it returns,
 * as long as the library does not create threads itself (it does not).
 * Threads made by raw clone(CLONE_THREAD) are not seen: two of them share
 * the process's owner stamp, so the second to take a robust lock that the
 * first holds gets SHK_EDEADLK (map.c), never a second hold.
 */
#if defined(__GLIBC__) &&                                                      \
	(__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#include <sys/single_threaded.h>
static inline int
shk__single_threaded(void)
{
	/* a plain char, written by glibc only while the process has one
	 * thread (before pthread_create makes the second) */
	return __libc_single_threaded != 0;
}
#else
static inline int
shk__single_threaded(void)
{
	return 0;
}
#endif

static inline void
shk__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * shk__cas_backoff: after a lost CAS on a contended word, wait a little
 * before the next try, twice as long each time up to SHK__BACKOFF_MAX
 * pauses: the line holding the word then stays with one party for a few
 * operations instead of moving on every attempt.  Only retries pay.
 * *spins starts at 0.
 */
#define SHK__BACKOFF_MAX 64u
static inline void
shk__cas_backoff(unsigned *spins)
{
	unsigned i, n = *spins ? *spins : 1;

	for (i = 0; i < n; i++)
		shk__cpu_relax();
	if (n < SHK__BACKOFF_MAX)
		*spins = n * 2;
}

/* Clocks, in nanoseconds. */
SHK_HIDDEN int64_t shk__now_ns(void);      /* CLOCK_MONOTONIC */
SHK_HIDDEN int64_t shk__realtime_ns(void); /* CLOCK_REALTIME */

/* A timeout argument is SHK_FOREVER (-1), 0 (try) or a positive number of
 * ns; the public calls reject any other negative value with SHK_EINVAL. */
#define SHK__TIMEOUT_OK(t) ((t) >= SHK_FOREVER)

/*
 * shk__deadline turns a timeout (SHK_FOREVER, 0, or ns) into an absolute
 * CLOCK_MONOTONIC deadline; INT64_MAX means forever.
 */
SHK_HIDDEN int64_t shk__deadline(int64_t timeout_ns);

/*
 * shk__futex_wait sleeps while *word == expected, until woken or the
 * absolute CLOCK_MONOTONIC deadline (INT64_MAX: forever).  Shared (never
 * FUTEX_PRIVATE_FLAG), so wakers in other processes find the sleeper.
 * Returns 0 (woken or spurious), SHK_EAGAIN (value differed),
 * SHK_ETIMEDOUT, SHK_EINTR.  Callers always re-check their condition.
 */
SHK_HIDDEN int shk__futex_wait(_Atomic uint32_t *word, uint32_t expected,
			       int64_t deadline_ns);
/* shk__futex_wake wakes up to n sleepers on word; returns how many. */
SHK_HIDDEN int shk__futex_wake(_Atomic uint32_t *word, int n);

SHK_HIDDEN size_t shk__page_size(void);

/*
 * Process identity: (pid, start time in clock ticks since boot, field 22 of
 * /proc/PID/stat) is unique per boot, so a reused pid is told apart.
 */
SHK_HIDDEN int shk__proc_start_ticks(pid_t pid, uint64_t *ticks);
SHK_HIDDEN uint64_t shk__self_start_ticks(void);
/* This process's PID and time namespaces (inodes of /proc/self/ns/pid and
 * /ns/time), 0 when /proc cannot tell; cached like the start time. */
SHK_HIDDEN uint64_t shk__self_pidns(void);
SHK_HIDDEN uint64_t shk__self_timens(void);
/* A key for caches of this process's identity: its pid and a count of the
 * fork()s that led to it since the library was first used; a forked child
 * never has its parent's key.  (A child made by a raw clone() runs no fork
 * handlers: only its pid tells it apart.) */
SHK_HIDDEN uint64_t shk__self_key(void);
/* 1 if the process (pid, start_ticks) runs; an exited process that is not
 * yet reaped (zombie) counts as dead.  start_ticks 0 (unknown to the
 * process itself) and a /proc entry we cannot read skip the start-time
 * check.  Async-signal-safe (shk_sem_post reaches it), as is
 * shk__pid_running. */
SHK_HIDDEN int shk__pid_alive(uint32_t pid, uint64_t start_ticks);
/* shk__pid_alive() without the start-time test, for a process whose start
 * time cannot be compared (recorded in another time namespace): a reused
 * pid is taken for the process. */
SHK_HIDDEN int shk__pid_running(uint32_t pid);

/*
 * Liveness locks (docs/design.md, Liveness).  A process that attaches to a
 * segment with a file behind it holds an OFD write lock on one byte per
 * attach slot, at SHK__LIVELOCK_BASE + slot (far past any segment's end),
 * through a description of the file that it alone holds: the kernel drops
 * the lock when the process dies, in any PID namespace.
 *
 * shk__livelock_open(fd) opens such a description (/proc/thread-self/fd/N,
 * checked to be fd's file; read and write, close-on-exec) and registers
 * it with this file's fork handlers, which close it in every child that
 * fork() makes (the child's reference would otherwise keep its parent's
 * locks after the parent died).  Returns the descriptor, or -1 when there is none to be had (no
 * /proc, no OFD locks); the caller then goes without.
 * shk__livelock_close() closes one (never call close() on it directly).
 * shk__livelock_try() takes slot's lock without waiting: 1 taken, 0 held
 * (write-locked) through another description, SHK__LIVELOCK_READERS when
 * only read locks stand in the way (anyone who can read the file can take
 * one; no owner holds the slot, and the caller claims it without the lock,
 * as a process without a liveness-lock descriptor does), or a negative
 * errno.
 * shk__livelock_unlock() gives it back.
 * shk__livelock_held(fd, slot) asks, through any descriptor of the file,
 * whether some other description holds slot's lock for writing (a read
 * lock is not an owner's): 1 yes, 0 no, -1 the kernel could not say.
 */
/* shk__fd_above_stdio(fd): fd moved to a number >= 3 (close-on-exec; the
 * old number closed), or fd itself when it is one already or cannot be
 * moved.  A descriptor the library keeps must not sit at 0-2, where a
 * program that started with stdio closed later dup2()s /dev/null or a
 * log over it: the segment's descriptor would then answer the liveness
 * lock queries for another file.  shk__livelock_open() keeps none that
 * stays at 0-2, and attach.c asks nothing through a segment descriptor
 * that stayed there. */
SHK_HIDDEN int shk__fd_above_stdio(int fd);
#define SHK__LIVELOCK_BASE ((uint64_t)1 << 50)
#define SHK__LIVELOCK_READERS 2 /* shk__livelock_try(): see above */
/*
 * The creation lock of a segment's file (segment.c, docs/segment-format.md):
 * an OFD lock on the byte just below the liveness locks.  The creator
 * holds it for writing while it initialises, which needs a writable
 * description; an opener holds it for reading, which a read-only one can.
 * (It was an flock(), whose LOCK_EX a mere reader could take.)
 * shk__seg_lock(fd, type) takes (F_WRLCK, F_RDLCK) or drops (F_UNLCK) it
 * through fd without waiting: 0, SHK_EAGAIN when another description's
 * lock conflicts, or an errno-mapped code.
 */
#define SHK__SEG_CREATE_LOCK (SHK__LIVELOCK_BASE - 1)
SHK_HIDDEN int shk__seg_lock(int fd, short type);
/* shk__fd_is_memfd(fd): 1 when fd is a memfd (its /proc link starts with
 * "/memfd:"; without /proc, when its file is on the device of a memfd of
 * our own), else 0.  Tells a memfd made without MFD_ALLOW_SEALING from a
 * tmpfs file: both report only F_SEAL_SEAL. */
SHK_HIDDEN int shk__fd_is_memfd(int fd);
SHK_HIDDEN int shk__livelock_open(int fd);
SHK_HIDDEN void shk__livelock_close(int lfd);
/* shk__fork_close_add registers fd, a descriptor this process keeps, to
 * be closed in every child that fork() makes, as the liveness-lock
 * descriptors are (a doorbell's bound socket: a child's copy would keep
 * its path live after this process died).  0, or SHK_ENOMEM (or an
 * errno-mapped code from fstat).  shk__fork_close unregisters and closes
 * it; it closes nothing that is not registered (in a forked child, the
 * handler closed the child's copy already: the number may name another
 * file by now). */
SHK_HIDDEN int shk__fork_close_add(int fd);
SHK_HIDDEN void shk__fork_close(int fd);
SHK_HIDDEN int shk__livelock_try(int lfd, uint32_t slot);
SHK_HIDDEN void shk__livelock_unlock(int lfd, uint32_t slot);
SHK_HIDDEN int shk__livelock_held(int fd, uint32_t slot);

/* Whether a process pid exists at all (kill(pid, 0), EPERM counting as
 * yes); 0 for pid 0 and for pids past INT_MAX, which kill() would read as
 * a process group or every process. */
SHK_HIDDEN int shk__pid_exists(uint32_t pid);

/*
 * shk__name_check validates a POSIX-style shm or object name: optional
 * leading '/', then 1..SHK_NAME_MAX of [A-Za-z0-9._-], not "." or "..".
 * Returns 0, SHK_EINVAL or SHK_ENAMETOOLONG.
 */
SHK_HIDDEN int shk__name_check(const char *name, int allow_slash);

/* FNV-1a 64-bit over len bytes. */
SHK_HIDDEN uint64_t shk__hash64(const void *p, size_t len, uint64_t seed);

/*
 * Async-signal-safe text building (snprintf() is not): shk__put_str copies
 * the string s to p, shk__put_num writes v in base 10 or 16 (lower case)
 * with at least width digits (zero-padded); both return the end of what
 * they wrote, without a terminating NUL.  The caller sizes the buffer.
 */
SHK_HIDDEN char *shk__put_str(char *p, const char *s);
SHK_HIDDEN char *shk__put_num(char *p, uint64_t v, unsigned base,
			      unsigned width);

/* Maps errno to a SHK_E code (SHK_Exxx == -Exxx where one fits). */
SHK_HIDDEN int shk__errno_code(int err);

/*
 * SHK_CRASHPOINT("module.step") marks a place where tests may kill the
 * process: in builds with SHK_TEST_HOOKS, the environment variable
 * SHK_CRASH="module.step:N" makes the Nth hit raise SIGKILL, and
 * "module.step:N:stop" SIGSTOP (the test holds the process there, does
 * something, then sends SIGCONT).  Empty in release builds.
 */
#ifdef SHK_TEST_HOOKS
SHK_HIDDEN void shk__crashpoint(const char *name);
#define SHK_CRASHPOINT(name) shk__crashpoint(name)
#else
#define SHK_CRASHPOINT(name) ((void)0)
#endif

#endif /* SHK_PLATFORM_H */
