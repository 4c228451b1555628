/*
 * json.c - a small streaming JSON writer.
 *
 * Strings from a segment are untrusted bytes: control characters, quotes,
 * backslashes and every byte >= 0x80 are escaped as \uXXXX, so the output
 * is valid JSON (and plain ASCII) whatever a corrupted segment holds.
 * 64-bit values that may exceed 2^53 (type ids) are written by callers as
 * hex strings; counts and sizes are plain numbers.
 */
#include <inttypes.h>
#include <math.h>

#include "cli.h"

void
json_init(struct cli_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->need_comma[0] = 0;
	j->after_key = 0;
}

static void
put_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p >= 0x7f)
				fprintf(f, "\\u%04x", (unsigned)*p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Separator, indentation and "key": before a value. */
static void
prefix(struct cli_json *j, const char *key)
{
	int i;

	if (j->need_comma[j->depth])
		fputc(',', j->f);
	j->need_comma[j->depth] = 1;
	if (j->depth > 0) {
		fputc('\n', j->f);
		for (i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	if (key) {
		put_string(j->f, key);
		fputs(": ", j->f);
	}
}

static void
open_container(struct cli_json *j, const char *key, char c)
{
	prefix(j, key);
	fputc(c, j->f);
	if (j->depth + 1 <
	    (int)(sizeof(j->need_comma) / sizeof(j->need_comma[0])))
		j->depth++;
	j->need_comma[j->depth] = 0;
}

static void
close_container(struct cli_json *j, char c)
{
	int i, had = j->need_comma[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (had) {
		fputc('\n', j->f);
		for (i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	fputc(c, j->f);
}

void
json_begin_obj(struct cli_json *j, const char *key)
{
	open_container(j, key, '{');
}

void
json_end_obj(struct cli_json *j)
{
	close_container(j, '}');
}

void
json_begin_arr(struct cli_json *j, const char *key)
{
	open_container(j, key, '[');
}

void
json_end_arr(struct cli_json *j)
{
	close_container(j, ']');
}

void
json_str(struct cli_json *j, const char *key, const char *val)
{
	prefix(j, key);
	put_string(j->f, val);
}

void
json_u64(struct cli_json *j, const char *key, uint64_t val)
{
	prefix(j, key);
	fprintf(j->f, "%" PRIu64, val);
}

void
json_i64(struct cli_json *j, const char *key, int64_t val)
{
	prefix(j, key);
	fprintf(j->f, "%" PRId64, val);
}

void
json_bool(struct cli_json *j, const char *key, int val)
{
	prefix(j, key);
	fputs(val ? "true" : "false", j->f);
}

void
json_null(struct cli_json *j, const char *key)
{
	prefix(j, key);
	fputs("null", j->f);
}

void
json_finish(struct cli_json *j)
{
	fputc('\n', j->f);
}

/* A double with `digits` significant digits (9 round-trips a float, 17 a
 * double); NaN and infinities, which JSON cannot hold, become null. */
void
json_f64(struct cli_json *j, const char *key, double val, int digits)
{
	prefix(j, key);
	if (isfinite(val))
		fprintf(j->f, "%.*g", digits, val);
	else
		fputs("null", j->f);
}
