/*
 * pollfd.c - lazy doorbell set-up for the reading endpoints' shk_*_fd()
 * (pollfd.h).  No shared words of its own: doorbell.c has the protocol.
 */
#include "pollfd.h"

int
shk__pollfd_get(struct shk__pollfd *pf, shk_seg *seg, shk__waitpoint *wp,
		shk__wait_pred pred, void *arg)
{
	int rc;

	if (!pf->db) {
		rc = shk__doorbell_open(seg, wp, &pf->db);
		if (rc)
			return rc;
		/* readable at once when data is already there */
		shk__doorbell_arm(pf->db, pred, arg);
		pf->armed = 1;
	}
	return shk__doorbell_fd(pf->db);
}
