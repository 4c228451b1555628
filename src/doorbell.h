/*
 * doorbell.h - pollable file descriptors for waitpoints (issue 4 owns the
 * implementation in doorbell.c).  A reader that wants to use poll/epoll gets
 * an fd for a waitpoint; before it sleeps it arms the waitpoint (a flag in
 * shared memory); a waker that sees armed != 0 after its seq_cst fence
 * (wait.h) signals the fd.  The busy fast path stays free of system calls.
 */
#ifndef SHK_DOORBELL_H
#define SHK_DOORBELL_H

#include "platform.h"
#include "segment.h"
#include "wait.h"

/*
 * shk__doorbell_notify signals every armed listener of wp.  Called by
 * shk__wake_slow() only; must not block.
 */
SHK_HIDDEN void shk__doorbell_notify(shk_seg *seg, shk__waitpoint *wp);

#endif /* SHK_DOORBELL_H */
