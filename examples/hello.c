/* hello.c - the README example: `hello write` creates a segment and a
 * typed object and fills it; `hello read` (another process) opens both by
 * name, checks the type and reads. */
#include <shmkit.h>
#include <stdio.h>
#include <string.h>

struct point {
	double x, y;
};
#define POINT_TYPE 0x706f696e74ull /* our tag for struct point */

int
main(int argc, char **argv)
{
	shk_obj_desc d = SHK_OBJ_DESC_INIT;
	struct point *pts;
	shk_seg *seg;
	int rc, i, writer = argc > 1 && strcmp(argv[1], "write") == 0;

	d.kind = SHK_KIND_BLOB;
	d.type_id = POINT_TYPE;
	d.elem_len = sizeof(struct point);
	d.cap = 4;
	rc = shk_seg_open("hello-shmkit", writer ? SHK_CREATE : 0, NULL, &seg);
	if (rc < 0) {
		fprintf(stderr, "open: %s\n", shk_strerror(rc));
		return 1;
	}
	rc = shk_obj_open(seg, "points", writer ? SHK_CREATE : 0, &d, NULL,
			  (void **)&pts);
	if (rc < 0) {
		fprintf(stderr, "points: %s (%s)\n", shk_strerror(rc),
			shk_errname(rc));
		shk_seg_close(seg);
		return 1;
	}
	for (i = 0; i < 4; i++) {
		if (writer)
			pts[i] = (struct point){ i, i * i };
		else
			printf("point %d: (%g, %g)\n", i, pts[i].x, pts[i].y);
	}
	shk_seg_close(seg);
	if (!writer)
		shk_seg_unlink("hello-shmkit", NULL);
	return 0;
}
