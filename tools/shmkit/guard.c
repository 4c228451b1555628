/*
 * guard.c - survive a segment that shrinks under us.
 *
 * A page of a shared mapping past the end of its file raises SIGBUS when
 * touched (ALGORITHMS §9).  POSIX shm cannot be sealed against another
 * process's ftruncate, so the tool reads segment memory only while this
 * guard is armed: the handler jumps back to the command, which reports
 * SHK_ETRUNC and exits 1 (or, in `ls`, marks that one segment).  Outside
 * an armed region SIGBUS keeps its default action: a fault there is a bug
 * in the tool, not something to hide.  A SIGBUS inside shk_seg_open
 * leaves the half-opened handle (descriptor, mapping, read lock)
 * behind: the handle is the library's until the open returns, so there
 * is nothing here to close.  Each command exits after that error; `ls`
 * goes on, keeping one per segment truncated at that moment (docs/cli.md).
 */
#include <string.h>
#include <unistd.h>

#include "cli.h"

sigjmp_buf cli_guard_jmp;
static volatile sig_atomic_t guard_armed;

static void
on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	(void)si;
	(void)uctx;
	if (guard_armed) {
		guard_armed = 0;
		/* sigsetjmp(.., 1) saved the mask: SIGBUS is unblocked again */
		siglongjmp(cli_guard_jmp, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void
cli_guard_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

void
cli_guard_arm(void)
{
	guard_armed = 1;
}

void
cli_guard_disarm(void)
{
	guard_armed = 0;
}

/* The guarded handle; static so that it survives a siglongjmp. */
static shk_seg *volatile guarded_seg;

int
cli_guarded_read(const struct cli_target *t, int (*fn)(shk_seg *seg, void *arg),
		 void *arg)
{
	shk_seg_opts o;
	shk_seg *seg = NULL;
	int rc;

	cli_target_opts(t, &o);
	guarded_seg = NULL;
	if (sigsetjmp(cli_guard_jmp, 1) == 0) {
		cli_guard_arm();
		rc = shk_seg_open(t->name, CLI_INSPECT, &o, &seg);
		guarded_seg = seg;
		if (rc == 0) {
			cli_test_pause();
			rc = fn(seg, arg);
		}
		cli_guard_disarm();
	} else {
		rc = SHK_ETRUNC;
	}
	shk_seg_close(guarded_seg);
	guarded_seg = NULL;
	return rc;
}
