/*
 * rmobj.c - `shmkit rm TARGET --object NAME...`: removes objects from a
 * segment's registry (shk_obj_remove_flags).  An object that records a
 * live party (a ring's producer, a mutex's holder, ...) is refused with
 * SHK_EBUSY unless --force is given (SHK_FORCE).
 */
#include <stdio.h>

#include "cli.h"

int
cli_rm_objects(const struct cli_target *t, const char *const *objs, int n,
	       int force)
{
	shk_seg_opts o;
	shk_seg *seg = NULL;
	char what[200];
	int i, rc, failed = 0;

	cli_target_opts(t, &o);
	/* writable: a removal writes the registry (this attaches us to the
	 * segment, not to its objects); SHK_ANY_OWNER: the operator named
	 * the segment, as `rm TARGET` removes one of any owner */
	rc = shk_seg_open(t->name, SHK_ANY_OWNER, &o, &seg);
	if (rc) {
		cli_target_error(t, rc);
		return CLI_EXIT_ERR;
	}
	for (i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "%s object %s", t->label, objs[i]);
		rc = shk_obj_remove_flags(seg, objs[i], force ? SHK_FORCE : 0);
		if (rc == 0)
			continue;
		failed = 1;
		if (rc == SHK_EBUSY)
			cli_errorf("%s (in use by a live process; not removed "
				   "without --force): %s (%s)",
				   what, shk_errname(rc), shk_strerror(rc));
		else
			cli_error(what, rc);
	}
	shk_seg_close(seg);
	return failed ? CLI_EXIT_ERR : CLI_EXIT_OK;
}
