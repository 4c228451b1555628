/*
 * endpoint.c - role words, counter snapshots and lazy doorbell set-up
 * shared by the ring, bcast and queue handles (endpoint.h).
 *
 * Shared words
 *   role word   a uint32 owner stamp (segment.h), 0 = no owner.  Written
 *               only by CAS: a claimer (0 or a dead owner's stamp -> its
 *               own) in shk__role_claim(), the owner (its stamp -> 0) in
 *               shk__role_release().
 *   counters    shk__snap_pair() only reads; the structures own them.
 *   doorbells   doorbell.c has their protocol.
 *
 * Happens-before: everything the last owner published -> its release CAS
 * to 0 in shk__role_release() -> the next owner's acquire load/CAS in
 * shk__role_claim() -> its reads of the structure's counters.  A claim
 * over a dead owner has no such edge from the dead party's last writes;
 * the structures validate what they read after a claim.
 *
 * Killed mid-operation: a claim or release is one CAS.  An owner killed
 * while holding a role leaves its stamp; the next claimer sees the stamp
 * dead and takes the role over (the structures say what the dead owner's
 * half-done work leaves behind).
 */
#include "endpoint.h"

int
shk__role_claim(shk_seg *seg, _Atomic uint32_t *w, uint32_t stamp)
{
	int i;

	for (i = 0; i < 16; i++) {
		/* acquire: pairs with the release CAS to 0 in
		 * shk__role_release() (the last owner's publications) */
		uint32_t cur = atomic_load_explicit(w, memory_order_acquire);

		if (cur && (cur == stamp || shk__stamp_alive(seg, cur)))
			return SHK_EBUSY;
		/* acq_rel: as the load above, and orders our claim before
		 * our reads of the counters */
		if (atomic_compare_exchange_strong_explicit(
			    w, &cur, stamp, memory_order_acq_rel,
			    memory_order_acquire))
			return 0;
	}
	return SHK_EBUSY;
}

void
shk__role_release(_Atomic uint32_t *w, uint32_t stamp)
{
	/* release: our last publication happens before the next owner's
	 * claim; pairs with the acquire in shk__role_claim() */
	atomic_compare_exchange_strong_explicit(
		w, &stamp, 0, memory_order_release, memory_order_relaxed);
}

const char *
shk__role_state(shk_seg *seg, uint32_t stamp)
{
	if (!stamp)
		return "none";
	return shk__stamp_alive(seg, stamp) ? "alive" : "dead";
}

int
shk__snap_pair(_Atomic uint64_t *moving, _Atomic uint64_t *other,
	       uint64_t *moving_val, uint64_t *other_val)
{
	int i;

	for (i = 0; i < 64; i++) {
		/* acquire: the snapshot is ordered; pairs with the release
		 * stores of the counters' writers (ring: publish_tail() and
		 * publish_head(); bcast: shk_bcast_write()) */
		uint64_t m1 =
			atomic_load_explicit(moving, memory_order_acquire);
		uint64_t o = atomic_load_explicit(other, memory_order_acquire);
		uint64_t m2 =
			atomic_load_explicit(moving, memory_order_acquire);

		if (m1 == m2) {
			*moving_val = m1;
			*other_val = o;
			return 1;
		}
	}
	return 0;
}

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
