/*
 * opts.h - the options-struct rule (STYLE B3) for the structure modules'
 * open calls: every shk_*_opts starts with uint32_t size; NULL means all
 * defaults, size 0 is SHK_EINVAL (an uninitialised struct), and a
 * caller's struct shorter or longer than ours gives the common prefix.
 */
#ifndef SHK_OPTS_H
#define SHK_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "platform.h"

/*
 * shk__opts_copy copies the caller's opts (may be NULL: dst keeps its
 * defaults) over dst, an options struct of dst_len bytes set to its
 * SHK_*_OPTS_INIT, and then sets dst's size to dst_len.  Returns 0 or
 * SHK_EINVAL (size 0).
 */
static inline int
shk__opts_copy(void *dst, size_t dst_len, const void *opts)
{
	uint32_t size, own = (uint32_t)dst_len;

	if (!opts)
		return 0;
	memcpy(&size, opts, sizeof(size));
	if (size == 0)
		return SHK_EINVAL;
	memcpy(dst, opts, size < dst_len ? size : dst_len);
	memcpy(dst, &own, sizeof(own));
	return 0;
}

#endif /* SHK_OPTS_H */
