/*
 * doorbell.h - pollable file descriptors for waitpoints (DESIGN §6,
 * ALGORITHMS §6 "Pollable fd").
 *
 * A reader that wants poll/epoll opens a doorbell on the waitpoint its data
 * arrives on and gets a file descriptor.  When a non-blocking read finds
 * nothing, the structure calls shk__doorbell_arm(): the listener marks
 * itself armed in shared memory (wp->armed, wp->listeners), issues the
 * seq_cst fence and re-checks the condition.  A waker that sees armed != 0
 * after its own fence (wait.h) calls shk__doorbell_notify(), which sends one
 * byte to each armed listener's Unix datagram socket (MSG_DONTWAIT; a full
 * socket means a wake is already pending).  The busy fast path makes no
 * system call.  When the reader consumes data it calls
 * shk__doorbell_drain() to disarm and empty the socket; an arm empties
 * it again before its re-check when a byte may have come since its last
 * empty (wp->seq moved, or it rang itself), and every
 * SHK__DOORBELL_SKIP_MAX-th arm empties anyway, so a stale byte outlives
 * at most that many SHK_EAGAINs, and a try on an empty structure makes no
 * system call in the common case.
 */
#ifndef SHK_DOORBELL_H
#define SHK_DOORBELL_H

#include "platform.h"
#include "segment.h"
#include "wait.h"

struct shk__doorbell;

/* An arm that finds no reason to empty the socket skips the empty at most
 * this many times in a row (doorbell.c, empty_due()). */
#define SHK__DOORBELL_SKIP_MAX 64

#ifdef SHK_TEST_HOOKS
/* Tests: the number of times a doorbell emptied its socket (arm, drain). */
SHK_HIDDEN extern _Atomic unsigned long shk__doorbell_test_empties;
#endif

/*
 * shk__doorbell_open creates the listener of seg's attach slot on wp and
 * returns it in *out; shk__doorbell_fd gives its descriptor (readable when
 * signalled).  One listener per waitpoint per segment handle: while one is
 * open (in this process, or in a forked relative sharing the handle),
 * another gets SHK_EBUSY and the first keeps working.  A file left by a
 * dead listener of the slot is replaced.  Codes: SHK_EINVAL, SHK_ENOMEM,
 * SHK_EBUSY, or an errno mapped code.
 */
SHK_HIDDEN int shk__doorbell_open(shk_seg *seg, shk__waitpoint *wp,
				  struct shk__doorbell **out);
SHK_HIDDEN int shk__doorbell_fd(const struct shk__doorbell *db);

/*
 * shk__doorbell_arm is called when the reader found no data and is about
 * to return to its event loop.  It empties the socket (unless no byte can
 * have come since its last empty, up to SHK__DOORBELL_SKIP_MAX arms in a
 * row), arms the listener
 * (if not armed yet), fences, then calls pred(arg): if the condition
 * already holds it makes the fd readable itself, so no wake-up is lost,
 * and a byte left by an earlier wake whose data is gone (taken by another
 * handle, or sent while a drain disarmed) does not keep the fd readable
 * (doorbell.c has the argument).  NULL db is a no-op.
 */
SHK_HIDDEN void shk__doorbell_arm(struct shk__doorbell *db, shk__wait_pred pred,
				  void *arg);

/* Disarms, then empties the socket (call after consuming).  NULL: no-op.
 * Arm and drain may run in several threads on one doorbell: each arming
 * or disarming (wp->armed, the holder entry, the doorbell's own flag) is
 * one step under the doorbell's mutex. */
SHK_HIDDEN void shk__doorbell_drain(struct shk__doorbell *db);

/*
 * shk__doorbell_close disarms, unlinks the path and closes the descriptor.
 * In a forked child (a copy of the parent's listener) it only closes the
 * child's descriptor: the parent's listener keeps working.  NULL: no-op.
 */
SHK_HIDDEN void shk__doorbell_close(struct shk__doorbell *db);

/*
 * shk__doorbell_abandon closes like shk__doorbell_close, for a listener
 * whose object is gone (removed with SHK_FORCE, its memory maybe reused):
 * it writes nothing to the waitpoint (no disarm: an armed listener's
 * count and holder entry stay there), but unlinks its path and closes
 * its descriptor.  NULL: no-op.
 */
SHK_HIDDEN void shk__doorbell_abandon(struct shk__doorbell *db);

/*
 * shk__doorbell_notify signals every armed listener of wp.  Called by
 * shk__wake_slow() only; never blocks.  Async-signal-safe (shk_sem_post
 * is): it makes only async-signal-safe calls (getuid, lstat, socket,
 * sendto) and builds paths without snprintf.
 */
SHK_HIDDEN void shk__doorbell_notify(shk_seg *seg, shk__waitpoint *wp);

#endif /* SHK_DOORBELL_H */
