/*
 * json.c - a small streaming JSON writer.
 *
 * Strings from a segment are untrusted bytes: control characters, quotes
 * and backslashes are escaped, a well-formed UTF-8 sequence becomes its
 * code point as \uXXXX (a surrogate pair above U+FFFF), and every other
 * byte >= 0x80 becomes \udcXX, as Python's surrogateescape decodes file
 * names (os.fsdecode), so a /dev/shm name round-trips exactly.  The
 * output is valid JSON (and plain ASCII) whatever a corrupted segment
 * holds.
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

/*
 * The length of the well-formed UTF-8 sequence at p (2 to 4 bytes) and its
 * code point in *cp, or 1 for anything else (an ASCII byte, a stray or
 * truncated sequence, an overlong form, a surrogate, above U+10FFFF):
 * RFC 3629's table, so every string comes out as the code points a strict
 * decoder finds.
 */
static int
utf8_next(const unsigned char *p, uint32_t *cp)
{
	uint32_t c = p[0], min;
	int n, i;

	if (c < 0xc2 || c > 0xf4)
		return 1;
	n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
	c &= n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 1;
		c = c << 6 | (p[i] & 0x3fu);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 1;
	*cp = c;
	return n;
}

static void
put_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		uint32_t cp;
		int n = utf8_next(p, &cp);

		if (n > 1) { /* a valid multi-byte sequence: its code point */
			if (cp >= 0x10000) {
				cp -= 0x10000;
				fprintf(f, "\\u%04x\\u%04x",
					0xd800u + (unsigned)(cp >> 10),
					0xdc00u + (unsigned)(cp & 0x3ff));
			} else {
				fprintf(f, "\\u%04x", (unsigned)cp);
			}
			p += n;
			continue;
		}
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
			if (*p >= 0x80) /* not UTF-8: surrogateescape */
				fprintf(f, "\\u%04x", 0xdc00u + (unsigned)*p);
			else if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", (unsigned)*p);
			else
				fputc(*p, f);
		}
		p++;
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
