/*
 * pollfd.h - the pollable descriptor of a reading endpoint (ring
 * consumer, bcast reader, queue): a doorbell (doorbell.h) opened on the
 * waitpoint its data arrives on at the first call of the endpoint's
 * shk_*_fd(), armed when a read comes back empty, drained when a read
 * finds data.  Process-local; one per handle, used by the handle's owner
 * like the rest of the handle.
 */
#ifndef SHK_POLLFD_H
#define SHK_POLLFD_H

#include "doorbell.h"
#include "platform.h"
#include "segment.h"
#include "wait.h"

struct shk__pollfd {
	struct shk__doorbell *db; /* NULL until shk__pollfd_get() */
	int armed;                /* armed since the last drain */
};

/*
 * shk__pollfd_get opens the doorbell on wp at the first call and arms it
 * at once with pred(arg), so the descriptor is readable from the start
 * when data already waits; returns the descriptor (>= 0), or the code of
 * shk__doorbell_open() (pf unchanged).
 */
SHK_HIDDEN int shk__pollfd_get(struct shk__pollfd *pf, shk_seg *seg,
			       shk__waitpoint *wp, shk__wait_pred pred,
			       void *arg);

/* A read found nothing and goes back to the event loop: ask for a signal
 * (no-op while no descriptor was asked for). */
static inline void
shk__pollfd_idle(struct shk__pollfd *pf, shk__wait_pred pred, void *arg)
{
	if (pf->db) {
		shk__doorbell_arm(pf->db, pred, arg);
		pf->armed = 1;
	}
}

/* A read found data: empty the socket and disarm, if armed. */
static inline void
shk__pollfd_consumed(struct shk__pollfd *pf)
{
	if (pf->armed) {
		shk__doorbell_drain(pf->db);
		pf->armed = 0;
	}
}

/* Closes the descriptor, if one was opened. */
static inline void
shk__pollfd_close(struct shk__pollfd *pf)
{
	shk__doorbell_close(pf->db);
	pf->db = NULL;
	pf->armed = 0;
}

#endif /* SHK_POLLFD_H */
