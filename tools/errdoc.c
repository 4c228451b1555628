/* errdoc.c - prints docs/errors.md from SHK_ERRNO_MAP (the one list that
 * also generates shk_strerror and shk_errname). */
#include <stdio.h>

#include "shmkit.h"

int
main(void)
{
	printf("# shmkit error codes\n\n");
	printf("Generated from `SHK_ERRNO_MAP` in include/shmkit.h by "
	       "tools/errdoc.c (`make docs/errors.md`); a test checks it is "
	       "current.\n\n");
	printf("Every function returns 0 (or a count) on success and one of "
	       "these negative codes on failure. Where a POSIX errno fits, "
	       "`SHK_Exxx == -Exxx` (Linux values); shmkit's own codes are "
	       "<= -1000. `shk_strerror(code)` gives the message, "
	       "`shk_errname(code)` the name.\n\n");
	printf("| name | value | message |\n| --- | --- | --- |\n");
#define ROW(name, value, msg)                                                  \
	printf("| `SHK_" #name "` | %d | %s |\n", value, msg);
	SHK_ERRNO_MAP(ROW)
#undef ROW
	return 0;
}
