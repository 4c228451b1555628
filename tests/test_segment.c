/* test_segment.c - segments: every backend, creation races, validation. */
#include "harness.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void
t_posix_roundtrip(void)
{
	char nm[64];
	shk_seg *a = NULL, *b = NULL;
	shk_seg_stats st = { .size = sizeof(st) };

	test_name(nm, sizeof(nm), "rt");
	CHECK_OK(shk_seg_open(nm, SHK_CREATE | SHK_EXCL, NULL, &a));
	CHECK(a != NULL);
	CHECK_OK(shk_seg_open(nm, 0, NULL, &b));
	CHECK_OK(shk_seg_info(b, &st));
	CHECK_EQ(st.version, 1);
	CHECK_EQ(st.attached, 2);
	CHECK_EQ(st.attached_alive, 2);
	shk_seg_close(b);
	shk_seg_close(a);
	CHECK_OK(shk_seg_unlink(nm, NULL));
	CHECK_RC(shk_seg_open(nm, 0, NULL, &a), SHK_ENOENT);
	CHECK(a == NULL);
}

TEST_MAIN({ "posix_roundtrip", t_posix_roundtrip })
