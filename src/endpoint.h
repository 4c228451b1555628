/*
 * endpoint.h - glue shared by the handles of the ring, bcast and queue
 * (endpoint.c has the protocol comment):
 *   - single-owner roles held through an owner stamp in shared memory
 *     (the ring's producer and consumer, the bcast writer);
 *   - a consistent snapshot of a pair of free-running counters, for the
 *     check, describe and stat paths;
 *   - the default geometry of a new record buffer (ring, bcast);
 *   - the pollable descriptor of a reading endpoint: a doorbell
 *     (doorbell.h) opened on the waitpoint its data arrives on at the
 *     first call of shk_*_fd(), armed when a read comes back empty,
 *     drained when a read finds data.  Process-local; one per handle, used
 *     by the handle's owner like the rest of the handle.
 */
#ifndef SHK_ENDPOINT_H
#define SHK_ENDPOINT_H

#include <stdatomic.h>
#include <stdint.h>

#include "doorbell.h"
#include "platform.h"
#include "segment.h"
#include "wait.h"

/*
 * shk__role_claim takes the role word *w (an owner stamp, 0 = none) for
 * stamp, from nobody or from a dead owner.  Returns 0, or SHK_EBUSY when a
 * live owner (or this handle's own stamp) holds it or the CAS kept losing.
 * Lock-free, bounded (16 tries).
 */
SHK_HIDDEN int shk__role_claim(shk_seg *seg, _Atomic uint32_t *w,
			       uint32_t stamp);

/* shk__role_release gives the role back if stamp still holds it (one that
 * judged us dead and took over keeps it). */
SHK_HIDDEN void shk__role_release(_Atomic uint32_t *w, uint32_t stamp);

/* "none", "alive" or "dead" for a role word's value (tools, stats). */
SHK_HIDDEN const char *shk__role_state(shk_seg *seg, uint32_t stamp);

/*
 * shk__record_geometry fills the zero fields of a new record buffer's
 * geometry (ring, bcast): *cap becomes the smallest power of two from
 * default_cap (doubling, at most max_cap) whose half, less a record header
 * of hdr_len bytes, holds *max_record; then a zero *max_record becomes the
 * largest record that *cap allows.  The caller validates the result.
 */
static inline void
shk__record_geometry(uint64_t *cap, uint64_t *max_record, uint64_t default_cap,
		     uint64_t max_cap, uint32_t hdr_len)
{
	if (!*cap) {
		*cap = default_cap;
		while (*max_record > *cap / 2 - hdr_len && *cap < max_cap)
			*cap <<= 1;
	}
	if (!*max_record)
		*max_record = *cap / 2 - hdr_len;
}

/*
 * shk__snap_pair reads *other between two equal acquire loads of *moving
 * (the counter that runs ahead), so the pair is one the writers really
 * had at some instant.  Returns 1 with the values, 0 when *moving kept
 * changing (a live object: 64 tries).
 */
SHK_HIDDEN int shk__snap_pair(_Atomic uint64_t *moving, _Atomic uint64_t *other,
			      uint64_t *moving_val, uint64_t *other_val);

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
 * (no-op while no descriptor was asked for).  The arm empties the socket
 * before it re-checks (shk__doorbell_arm()) when a byte may have come
 * since its last empty, also when it stayed armed since the last call
 * (and every SHK__DOORBELL_SKIP_MAX-th arm anyway): a stale byte (one
 * sent between a drain's disarm and its recv, or planted) kept the fd
 * readable with nothing to read, and the poll loop spun (test
 * fd_no_spin). */
static inline void
shk__pollfd_idle(struct shk__pollfd *pf, shk__wait_pred pred, void *arg)
{
	if (pf->db) {
		shk__doorbell_arm(pf->db, pred, arg);
		pf->armed = 1;
	}
}

/* A read found data: disarm and empty the socket, if armed. */
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

/* Closes the descriptor, if one was opened, of an object that is gone
 * (removed with SHK_FORCE): its waitpoint is left alone
 * (shk__doorbell_abandon()). */
static inline void
shk__pollfd_abandon(struct shk__pollfd *pf)
{
	shk__doorbell_abandon(pf->db);
	pf->db = NULL;
	pf->armed = 0;
}

#endif /* SHK_ENDPOINT_H */
