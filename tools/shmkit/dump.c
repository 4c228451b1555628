/*
 * dump.c - `shmkit dump`: the bytes of one named object, as a hex + ASCII
 * listing (hexdump -C style) or as typed elements (--as).
 *
 * The selected bytes are first copied out of the segment under the SIGBUS
 * guard (the segment may be truncated under us), and only the copy is
 * rendered, so a truncation gives one SHK_ETRUNC line and exit 1, never a
 * crash or half output.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Without --length, at most this many bytes are shown. */
#define DUMP_DEFAULT_CAP ((uint64_t)64 << 10)

enum elem_fmt { FMT_UINT, FMT_INT, FMT_FLOAT };

struct elem_type {
	const char *name;
	enum elem_fmt fmt;
	unsigned size;
};

static const struct elem_type elem_types[] = {
	{ "u8", FMT_UINT, 1 },   { "u16", FMT_UINT, 2 },
	{ "u32", FMT_UINT, 4 },  { "u64", FMT_UINT, 8 },
	{ "i8", FMT_INT, 1 },    { "i16", FMT_INT, 2 },
	{ "i32", FMT_INT, 4 },   { "i64", FMT_INT, 8 },
	{ "f32", FMT_FLOAT, 4 }, { "f64", FMT_FLOAT, 8 },
};

struct dump_args {
	struct cli_target t;
	const char *obj;
	const struct elem_type *as; /* NULL: hex + ASCII */
	uint64_t offset;
	uint64_t length; /* valid when has_length */
	int has_length;
	int json;
};

struct dump_data {
	shk_obj_info info;
	uint64_t offset;    /* first byte shown, from the object's start */
	uint64_t length;    /* bytes copied into buf */
	uint64_t not_shown; /* bytes past the default cap */
	unsigned char *buf;
};

static const struct elem_type *
find_type(const char *name)
{
	size_t k;

	for (k = 0; k < sizeof(elem_types) / sizeof(elem_types[0]); k++)
		if (!strcmp(name, elem_types[k].name))
			return &elem_types[k];
	return NULL;
}

static int
parse_args(int argc, char **argv, struct dump_args *a)
{
	uint32_t backend = SHK_BACKEND_POSIX;
	const char *target = NULL, *v;
	int i, r, opts_done = 0;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (!opts_done && cli_is_help(s)) {
			return cli_cmd_help();
		} else if (opts_done || s[0] != '-') {
			if (!target)
				target = s;
			else if (!a->obj)
				a->obj = s;
			else
				return cli_usage_error(
					"unexpected argument '%s'", s);
		} else if (!strcmp(s, "--")) {
			opts_done = 1;
		} else if (!strcmp(s, "--json")) {
			a->json = 1;
		} else if ((r = cli_backend_flag(s, &backend)) != 0) {
			if (r < 0)
				return CLI_EXIT_USAGE;
		} else if ((r = cli_opt_value(argc, argv, &i, "--as", &v))) {
			a->as = r > 0 ? find_type(v) : NULL;
			if (!a->as)
				return cli_usage_error(
					"bad --as (u8, u16, u32, u64, i8, i16, "
					"i32, i64, f32 or f64)");
		} else if ((r = cli_opt_value(argc, argv, &i, "--offset",
					      &v))) {
			if (r < 0 || cli_parse_size(v, &a->offset))
				return cli_usage_error("bad --offset (BYTES, "
						       "suffix K, M or G)");
		} else if ((r = cli_opt_value(argc, argv, &i, "--length",
					      &v))) {
			if (r < 0 || cli_parse_size(v, &a->length) ||
			    a->length == 0)
				return cli_usage_error("bad --length (BYTES > "
						       "0, suffix K, M or G)");
			a->has_length = 1;
		} else {
			return cli_usage_error("unknown option '%s'", s);
		}
	}
	if (!target)
		return cli_usage_error("missing segment name");
	if (!a->obj)
		return cli_usage_error("missing object name");
	if (!a->obj[0])
		return cli_usage_error("bad object name");
	if ((r = cli_target_set(&a->t, backend, target)) != 0)
		return r;
	if (a->as && a->offset % a->as->size)
		return cli_usage_error("--offset must be a multiple of %u "
				       "with --as %s",
				       a->as->size, a->as->name);
	return 0;
}

/*
 * Picks the range to show from the object's length; 0, or SHK_ERANGE
 * with why in msg.
 */
static int
select_range(const struct dump_args *a, struct dump_data *d, char *msg,
	     size_t msglen)
{
	uint64_t olen = d->info.len;

	d->offset = a->offset;
	if (a->offset >= olen) {
		snprintf(msg, msglen,
			 "offset %" PRIu64 " is past the object's last byte "
			 "(%" PRIu64 " bytes)",
			 a->offset, olen);
		return SHK_ERANGE;
	}
	if (a->has_length) {
		if (a->length > olen - a->offset) {
			snprintf(msg, msglen,
				 "offset %" PRIu64 " + length %" PRIu64
				 " is past the end of the object (%" PRIu64
				 " bytes)",
				 a->offset, a->length, olen);
			return SHK_ERANGE;
		}
		d->length = a->length;
		d->not_shown = 0;
		return 0;
	}
	d->length = olen - a->offset;
	d->not_shown = 0;
	if (d->length > DUMP_DEFAULT_CAP) {
		d->not_shown = d->length - DUMP_DEFAULT_CAP;
		d->length = DUMP_DEFAULT_CAP;
	}
	return 0;
}

/* The copy; static so that it survives a siglongjmp. */
static unsigned char *volatile dump_buf;

struct collect_arg {
	const struct dump_args *a;
	struct dump_data *d;
	char *msg;
	size_t msglen;
};

/* Finds the object and copies the selected bytes into dump_buf.  Called
 * with the guard armed (cli_guarded_read). */
static int
collect_cb(shk_seg *seg, void *arg)
{
	struct collect_arg *c = arg;
	struct dump_data *d = c->d;
	const unsigned char *src;
	uint64_t first, last;
	int rc;

	memset(&d->info, 0, sizeof(d->info));
	d->info.size = sizeof(d->info);
	rc = shk_obj_stat(seg, c->a->obj, &d->info);
	if (rc)
		return rc;
	d->info.name[sizeof(d->info.name) - 1] = '\0';
	rc = select_range(c->a, d, c->msg, c->msglen);
	if (rc)
		return rc;
	/* the registry entry is untrusted: the range must be inside this
	 * mapping (the library checked it against the heap; this keeps the
	 * tool safe on its own) */
	first = d->info.off + d->offset;
	last = first + d->length - 1;
	src = shk_ptr(seg, first);
	if (!src || last < first || !shk_ptr(seg, last))
		return SHK_ECORRUPT;
	dump_buf = malloc(d->length);
	if (!dump_buf)
		return SHK_ENOMEM;
	memcpy(dump_buf, src, d->length);
	return 0;
}

/*
 * Opens the segment read-only, finds the object and copies the selected
 * bytes into d->buf.  Returns 0, a code, or SHK_ERANGE with msg set.
 */
static int
collect(const struct dump_args *a, struct dump_data *d, char *msg,
	size_t msglen)
{
	struct collect_arg c = { a, d, msg, msglen };
	int rc;

	dump_buf = NULL;
	rc = cli_guarded_read(&a->t, collect_cb, &c);
	d->buf = dump_buf;
	dump_buf = NULL;
	if (rc) {
		free(d->buf);
		d->buf = NULL;
	}
	return rc;
}

static void
hex_line(uint64_t off, const unsigned char *p, size_t n)
{
	char line[80];
	size_t i, k = 0;

	for (i = 0; i < 16; i++) {
		if (i == 8)
			line[k++] = ' ';
		if (i < n)
			k += (size_t)snprintf(line + k, sizeof(line) - k,
					      " %02x", p[i]);
		else
			k += (size_t)snprintf(line + k, sizeof(line) - k,
					      "   ");
	}
	line[k] = '\0';
	printf("%08" PRIx64 " %s  |", off, line);
	for (i = 0; i < n; i++)
		putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
	printf("|\n");
}

/* hexdump -C layout; offsets from the object's start; runs of lines equal
 * to the one before are shown as one "*"; the last line is the end. */
static void
print_hex(const struct dump_data *d)
{
	uint64_t i;
	int starred = 0;

	for (i = 0; i < d->length; i += 16) {
		size_t n = d->length - i < 16 ? (size_t)(d->length - i) : 16;

		if (i > 0 && n == 16 &&
		    !memcmp(d->buf + i, d->buf + i - 16, 16)) {
			if (!starred)
				printf("*\n");
			starred = 1;
			continue;
		}
		starred = 0;
		hex_line(d->offset + i, d->buf + i, n);
	}
	printf("%08" PRIx64 "\n", d->offset + d->length);
}

/* Element i of the copy as the type, little-endian on this host. */
static void
elem_get(const struct elem_type *t, const unsigned char *p, uint64_t *u,
	 int64_t *s, double *f)
{
	switch (t->size) {
	case 1: {
		uint8_t v = p[0];
		*u = v;
		*s = (int8_t)v;
		break;
	}
	case 2: {
		uint16_t v;
		memcpy(&v, p, 2);
		*u = v;
		*s = (int16_t)v;
		break;
	}
	case 4: {
		uint32_t v;
		float x;
		memcpy(&v, p, 4);
		memcpy(&x, p, 4);
		*u = v;
		*s = (int32_t)v;
		*f = x;
		break;
	}
	default: {
		uint64_t v;
		double x;
		memcpy(&v, p, 8);
		memcpy(&x, p, 8);
		*u = v;
		*s = (int64_t)v;
		*f = x;
		break;
	}
	}
}

static void
print_typed(const struct dump_args *a, const struct dump_data *d)
{
	const struct elem_type *t = a->as;
	uint64_t n = d->length / t->size, i, first = d->offset / t->size;
	uint64_t u = 0;
	int64_t s = 0;
	double f = 0;

	for (i = 0; i < n; i++) {
		elem_get(t, d->buf + i * t->size, &u, &s, &f);
		printf("[%" PRIu64 "] ", first + i);
		if (t->fmt == FMT_UINT)
			printf("%" PRIu64 "\n", u);
		else if (t->fmt == FMT_INT)
			printf("%" PRId64 "\n", s);
		else if (t->size == 4)
			printf("%.9g\n", f);
		else
			printf("%.17g\n", f);
	}
	if (d->length % t->size)
		printf("(%" PRIu64 " trailing bytes, less than one %s, "
		       "not shown)\n",
		       d->length % t->size, t->name);
}

static void
print_json(const struct dump_args *a, const struct dump_data *d)
{
	struct cli_json j;

	json_init(&j, stdout);
	json_begin_obj(&j, NULL);
	json_str(&j, "object", d->info.name);
	json_str(&j, "kind", shk_kind_name(d->info.kind));
	json_u64(&j, "elem_len", d->info.elem_len);
	json_u64(&j, "object_len", d->info.len);
	json_u64(&j, "offset", d->offset);
	json_u64(&j, "length", d->length);
	json_u64(&j, "not_shown", d->not_shown);
	if (!a->as) {
		static const char hx[] = "0123456789abcdef";
		char *h = malloc(d->length * 2 + 1);
		uint64_t i;

		if (h) {
			for (i = 0; i < d->length; i++) {
				h[2 * i] = hx[d->buf[i] >> 4];
				h[2 * i + 1] = hx[d->buf[i] & 15];
			}
			h[2 * d->length] = '\0';
			json_str(&j, "hex", h);
			free(h);
		} else {
			json_null(&j, "hex");
		}
	} else {
		const struct elem_type *t = a->as;
		uint64_t n = d->length / t->size, i, u = 0;
		int64_t s = 0;
		double f = 0;

		json_str(&j, "as", t->name);
		json_u64(&j, "first_index", d->offset / t->size);
		json_begin_arr(&j, "values");
		for (i = 0; i < n; i++) {
			elem_get(t, d->buf + i * t->size, &u, &s, &f);
			if (t->fmt == FMT_UINT)
				json_u64(&j, NULL, u);
			else if (t->fmt == FMT_INT)
				json_i64(&j, NULL, s);
			else
				json_f64(&j, NULL, f, t->size == 4 ? 9 : 17);
		}
		json_end_arr(&j);
		json_u64(&j, "trailing_bytes", d->length % t->size);
	}
	json_end_obj(&j);
	json_finish(&j);
}

int
cmd_dump(int argc, char **argv)
{
	struct dump_args a;
	struct dump_data d;
	char what[300], msg[200], oname[64];
	int rc;

	rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	memset(&d, 0, sizeof(d));
	msg[0] = '\0';
	rc = collect(&a, &d, msg, sizeof(msg));
	if (rc) {
		/* segment errors name the segment, object errors both */
		cli_printable(oname, sizeof(oname), a.obj);
		if (rc == SHK_ERANGE)
			snprintf(what, sizeof(what), "%s: %s: %s", a.t.label,
				 oname, msg);
		else if (rc == SHK_ENOENT && d.info.size)
			snprintf(what, sizeof(what), "%s: object %s", a.t.label,
				 oname);
		else if (d.info.size)
			snprintf(what, sizeof(what), "%s: %s", a.t.label,
				 oname);
		else
			snprintf(what, sizeof(what), "%s", a.t.label);
		if (!d.info.size)
			cli_target_error(&a.t, rc);
		else
			cli_error(what, rc);
		return CLI_EXIT_ERR;
	}
	if (a.json)
		print_json(&a, &d);
	else if (a.as)
		print_typed(&a, &d);
	else
		print_hex(&d);
	if (!a.json && d.not_shown)
		printf("(%" PRIu64 " more bytes not shown: --offset %" PRIu64
		       " --length %" PRIu64 " shows them)\n",
		       d.not_shown, d.offset + d.length, d.not_shown);
	free(d.buf);
	return CLI_EXIT_OK;
}
