/*
 * main.c - shmkit command-line tool: dispatch, usage, messages, and the
 * small parsers every command shares.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char *cli_cmd = "shmkit";

/* The usage, one entry per command (two for rm); `target`: it takes a
 * TARGET, which the last lines explain. */
static const struct {
	const char *cmd;
	int target;
	const char *text;
} usage_cmds[] = {
	{ "ls", 0,
	  "  ls [--json] [--match GLOB]   list shmkit segments (POSIX, "
	  "SysV)\n" },
	{ "info", 1,
	  "  info [--json] TARGET         header, attached processes, "
	  "objects\n" },
	{ "check", 1,
	  "  check TARGET                 validate a whole segment\n" },
	{ "create", 1,
	  "  create TARGET [--size BYTES] [--mode OCTAL] [--objects N]\n"
	  "                [--blob NAME:ELEM_LEN:CAP]...\n" },
	{ "rm", 1,
	  "  rm [--force] [--dry-run] TARGET...\n"
	  "                               remove segments (one in use only\n"
	  "                               with --force)\n" },
	{ "rm", 0,
	  "  rm --orphans [--dry-run] [--match GLOB]\n"
	  "                               remove segments whose attachers "
	  "died\n" },
	{ "rm", 1,
	  "  rm TARGET --object NAME [--object NAME]... [--force]\n"
	  "                               remove objects from a segment (one\n"
	  "                               in use only with --force)\n" },
	{ "dump", 1,
	  "  dump TARGET OBJECT [--as TYPE] [--offset BYTES] [--length "
	  "BYTES]\n"
	  "                [--json]       an object's bytes: hex, or as TYPE\n"
	  "                               (u8..u64, i8..i64, f32, f64)\n" },
	{ "watch", 1,
	  "  watch TARGET [--interval SECONDS] [--count N]\n"
	  "                               live state and rates, refreshed\n" },
	{ "hold", 1,
	  "  hold TARGET SECONDS          debugging aid: attach, sleep, "
	  "detach\n" },
	{ "bench", 0,
	  "  bench [--quick] [--json] [--seconds S] [ring|queue|latency]...\n"
	  "                               ring and queue speed between two\n"
	  "                               processes, beside a pipe "
	  "baseline\n" },
	{ "bridge", 0,
	  "  bridge shm://SEGMENT/CHANNEL ENDPOINT [--pattern pair|pubsub|\n"
	  "                pushpull] [--end a|b] [--out|--in] "
	  "[--bind|--connect]\n"
	  "                [--count N] [--linger SECONDS|forever]\n"
	  "                [--max-frame BYTES|unlimited] [--mode OCTAL]\n"
	  "                [--any-owner]\n"
	  "                               forward a channel to and from a\n"
	  "                               ZeroMQ socket (tcp://HOST:PORT)\n" },
	{ "version", 0,
	  "  version                      print the tool's and the library's "
	  "version\n" },
};

static const char usage_target[] =
	"TARGET is NAME (POSIX shm), --sysv NAME|0xKEY (SysV shm) or\n"
	"--file PATH (mapped file).  See docs/cli.md.\n";

static void
usage(FILE *f)
{
	size_t i;

	fputs("usage: shmkit [--help] COMMAND [ARGS]\n\ncommands:\n", f);
	for (i = 0; i < sizeof(usage_cmds) / sizeof(usage_cmds[0]); i++)
		fputs(usage_cmds[i].text, f);
	fputs("\n", f);
	fputs(usage_target, f);
	fputs("shmkit COMMAND --help (or -h) shows that command's usage.\n", f);
}

int
cli_is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/*
 * Prints the usage lines of the running command (cli_cmd) to stdout, each
 * with "shmkit " before the command (continuation lines move along with
 * it), and returns CLI_EXIT_HELP.
 */
int
cli_cmd_help(void)
{
	size_t i;
	int target = 0;

	fputs("usage:\n", stdout);
	for (i = 0; i < sizeof(usage_cmds) / sizeof(usage_cmds[0]); i++) {
		const char *p = usage_cmds[i].text;

		if (strcmp(usage_cmds[i].cmd, cli_cmd))
			continue;
		target |= usage_cmds[i].target;
		while (*p) {
			size_t n = strcspn(p, "\n");

			/* "  cmd ...": a command line; else a continuation */
			if (p[2] != ' ')
				printf("  shmkit %.*s\n", (int)n - 2, p + 2);
			else
				printf("       %.*s\n", (int)n, p);
			p += n + (p[n] == '\n');
		}
	}
	fputs("\n", stdout);
	fputs(target ? usage_target : "See docs/cli.md.\n", stdout);
	return CLI_EXIT_HELP;
}

/* Copies src into dst with anything not printable ASCII replaced by '?',
 * so a hostile segment cannot send escape sequences to a terminal. */
void
cli_printable(char *dst, size_t len, const char *src)
{
	size_t i;

	if (len == 0)
		return;
	for (i = 0; i + 1 < len && src[i]; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[i] = '\0';
}

void
cli_error(const char *what, int code)
{
	char w[300];

	cli_printable(w, sizeof(w), what);
	fprintf(stderr, "shmkit: %s: %s: %s (%s)\n", cli_cmd, w,
		shk_errname(code), shk_strerror(code));
}

/* cli_error for target t; a segment whose creator died before it was
 * ready (SHK_EBADSEG on open, SHK_EEXIST on create) is named as such. */
void
cli_target_error(const struct cli_target *t, int code)
{
	char w[300];

	if ((code == SHK_EBADSEG || code == SHK_EEXIST) &&
	    cli_target_unfinished(t)) {
		cli_printable(w, sizeof(w), t->label);
		fprintf(stderr,
			"shmkit: %s: %s: %s (its creation never finished: "
			"the creator died before it was ready; 'shmkit rm' "
			"removes it)\n",
			cli_cmd, w, shk_errname(code));
		return;
	}
	cli_error(t->label, code);
}

void
cli_errorf(const char *fmt, ...)
{
	char raw[400], msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* the message may quote arguments or names: no control bytes */
	cli_printable(msg, sizeof(msg), raw);
	fprintf(stderr, "shmkit: %s: %s\n", cli_cmd, msg);
}

int
cli_usage_error(const char *fmt, ...)
{
	char raw[400], msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* usage errors quote the user's arguments: no control bytes */
	cli_printable(msg, sizeof(msg), raw);
	fprintf(stderr, "shmkit: %s: %s (try 'shmkit %s --help')\n", cli_cmd,
		msg, cli_cmd);
	return CLI_EXIT_USAGE;
}

int
cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)s[0]))
		return SHK_EINVAL;
	errno = 0;
	/* base 10: a count's leading 0 is no octal prefix (010 was 8, 09 an
	 * error); docs/cli.md takes hex only for --sysv keys */
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return SHK_EINVAL;
	*out = v;
	return 0;
}

/* SECONDS: what strtod reads whole (1.5, 2, 1e-1, .1, 0x1p-3), finite,
 * from min to max; not nan, inf, empty or with trailing text. */
int
cli_parse_seconds(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (!s || !s[0])
		return SHK_EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || !(v >= min && v <= max))
		return SHK_EINVAL;
	*out = v;
	return 0;
}

/* Permission bits in octal, 1 to 0777 (--mode of create and bridge):
 * 0, or SHK_EINVAL. */
int
cli_parse_mode(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s[0])
		return SHK_EINVAL;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v == 0 || v > 0777)
		return SHK_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* BYTES with an optional K, M or G suffix (powers of 1024). */
int
cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)s[0]))
		return SHK_EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return SHK_EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		return SHK_EINVAL;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return SHK_EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return SHK_ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

/*
 * Matches argv[*i] against "--opt VALUE" or "--opt=VALUE".  Returns 1 and
 * sets *val (advancing *i past a separate value), 0 when argv[*i] is some
 * other word, or -1 when the value is missing.
 */
int
cli_opt_value(int argc, char **argv, int *i, const char *opt, const char **val)
{
	size_t n = strlen(opt);
	const char *a = argv[*i];

	if (strncmp(a, opt, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

/*
 * Under --sysv an argument that starts with "0x" (or "0X") is always a key,
 * never a name: hex digits for a nonzero value that fits a key_t (32
 * bits).  Returns 0 and *key, or a usage error (printed) saying why not.
 */
static int
parse_sysv_key(const char *s, int32_t *key)
{
	uint64_t v = 0;
	size_t i;

	if (!s[2])
		return cli_usage_error("bad SysV key '%s' (no hex digits "
				       "after 0x)",
				       s);
	for (i = 2; s[i]; i++) {
		int c = (unsigned char)s[i], d;

		if (!isxdigit(c))
			return cli_usage_error("bad SysV key '%s' ('%c' is "
					       "not a hex digit)",
					       s, s[i]);
		d = isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
		v = v * 16 + (uint64_t)d;
		if (v > UINT32_MAX)
			return cli_usage_error("bad SysV key '%s' (wider than "
					       "32 bits: at most 0xffffffff)",
					       s);
	}
	if (v == 0)
		return cli_usage_error("bad SysV key '%s' (0 is IPC_PRIVATE, "
				       "which no one can open by key)",
				       s);
	*key = (int32_t)(uint32_t)v;
	return 0;
}

/*
 * info names a segment by the TARGET as given: the header keeps the name
 * the segment was created with, which a copied or renamed file (or /dev/shm
 * file) does not change (until 2026-11-25 info showed only the header's,
 * so a copy showed the original's name).  SysV by key has no name given:
 * the header's is shown.  cli_header_name: *hdr receives the header's name (NUL-ended);
 * returns 1 when it names something else than the target: a POSIX or SysV
 * name is compared without its optional leading '/' (the library stores
 * it so), a file path also by its realpath (a file created by its full
 * path and named relatively here is the same), and a path longer than the
 * header's 63 bytes by the part the header kept.
 */
int
cli_header_name(const struct cli_target *t, const shk_seg_stats *st, char *hdr,
		size_t len)
{
	char real[PATH_MAX];
	const char *n = t->name;
	size_t hl;

	snprintf(hdr, len, "%.*s", (int)sizeof(st->name), st->name);
	if (!n)
		return 0;
	if (t->backend != SHK_BACKEND_FILE && n[0] == '/')
		n++;
	hl = strlen(hdr);
	if (!strcmp(n, hdr) ||
	    (hl == sizeof(st->name) - 1 && !strncmp(n, hdr, hl)))
		return 0;
	if (t->backend != SHK_BACKEND_FILE || !realpath(n, real))
		return 1;
	return strcmp(real, hdr) != 0 &&
	       !(hl == sizeof(st->name) - 1 && !strncmp(real, hdr, hl));
}

/* Sets t from a TARGET argument; 0, or a usage error (printed). */
int
cli_target_set(struct cli_target *t, uint32_t backend, const char *arg)
{
	memset(t, 0, sizeof(*t));
	t->backend = backend;
	if (!arg || !arg[0])
		return cli_usage_error("bad segment name (empty)");
	cli_printable(t->label, sizeof(t->label), arg);
	if (backend == SHK_BACKEND_SYSV && arg[0] == '0' &&
	    (arg[1] == 'x' || arg[1] == 'X')) {
		t->name = NULL;
		return parse_sysv_key(arg, &t->sysv_key);
	}
	t->name = arg;
	return 0;
}

/*
 * The backend flags, --sysv and --file: returns 1 when a is one (and sets
 * *backend), 0 when it is neither, or -1 after a usage error when an
 * earlier flag chose the other backend (repeating the same one is fine).
 */
int
cli_backend_flag(const char *a, uint32_t *backend)
{
	uint32_t b;

	if (!strcmp(a, "--sysv"))
		b = SHK_BACKEND_SYSV;
	else if (!strcmp(a, "--file"))
		b = SHK_BACKEND_FILE;
	else
		return 0;
	if (*backend != SHK_BACKEND_POSIX && *backend != b) {
		cli_usage_error("--%s and --%s cannot be used together",
				cli_backend_name(*backend),
				cli_backend_name(b));
		return -1;
	}
	*backend = b;
	return 1;
}

void
cli_target_opts(const struct cli_target *t, shk_seg_opts *o)
{
	shk_seg_opts init = SHK_SEG_OPTS_INIT;

	*o = init;
	o->backend = t->backend;
	o->sysv_key = t->sysv_key;
}

const char *
cli_backend_name(uint32_t backend)
{
	switch (backend) {
	case SHK_BACKEND_POSIX:
		return "posix";
	case SHK_BACKEND_SYSV:
		return "sysv";
	case SHK_BACKEND_FILE:
		return "file";
	case SHK_BACKEND_MEMFD:
		return "memfd";
	default:
		return "unknown";
	}
}

/*
 * Test hook: with SHMKIT_TEST_PAUSE=PATH in the environment, a command that
 * has just opened its segment creates PATH and waits (at most 10 s) until
 * someone removes it.  tests/cli.sh uses it to truncate a segment under a
 * running `shmkit info`, which must then report SHK_ETRUNC, not crash.
 * O_EXCL | O_NOFOLLOW: an inherited variable must not make the tool follow
 * a symlink, or write into a file that exists (security audit, 2026-11-25);
 * with one there it does not pause.
 */
void
cli_test_pause(void)
{
	const char *p = getenv("SHMKIT_TEST_PAUSE");
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int fd, i;

	if (!p || !p[0])
		return;
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return;
	close(fd);
	for (i = 0; i < 1000 && access(p, F_OK) == 0; i++)
		nanosleep(&ts, NULL);
}

static int
cmd_version(int argc, char **argv)
{
	int v = shk_version();

	if (argc > 1 && cli_is_help(argv[1]))
		return cli_cmd_help();
	if (argc > 1 && argv[1][0] == '-')
		return cli_usage_error("unknown option '%s'", argv[1]);
	if (argc > 1)
		return cli_usage_error("unexpected argument '%s'", argv[1]);
	printf("shmkit %d.%d.%d (library %d.%d.%d)\n", SHK_VERSION_MAJOR,
	       SHK_VERSION_MINOR, SHK_VERSION_PATCH, v / 10000, v / 100 % 100,
	       v % 100);
	return CLI_EXIT_OK;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "ls", cmd_ls },           { "info", cmd_info },
	{ "check", cmd_check },     { "create", cmd_create },
	{ "rm", cmd_rm },           { "hold", cmd_hold },
	{ "version", cmd_version }, { "bench", cmd_bench },
	{ "dump", cmd_dump },       { "watch", cmd_watch },
	{ "bridge", cmd_bridge },
};

/*
 * Every exit that may have written stdout goes through here: output that
 * was lost (a full disk, /dev/full, a closed pipe) must not exit 0.  A
 * command that flushed earlier (hold, watch, bench) leaves an empty
 * buffer, whose fflush succeeds, but the stream's error flag stays set:
 * both are asked.  (Until 2026-11-25 `--help` and `--version` returned
 * before this check, and `hold` ignored its fflush.)
 */
static int
finish_output(int rc)
{
	int bad = fflush(stdout) != 0;

	if ((bad || ferror(stdout)) && rc == CLI_EXIT_OK) {
		cli_error("writing output", SHK_EIO);
		rc = CLI_EXIT_ERR;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	size_t i;
	int rc;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		cli_cmd = "help";
		usage(stdout);
		return finish_output(CLI_EXIT_OK);
	}
	if (!strcmp(argv[1], "--version")) {
		cli_cmd = "version";
		return finish_output(cmd_version(1, argv + 1));
	}
	cli_guard_install();
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		cli_cmd = commands[i].name;
		rc = commands[i].fn(argc - 1, argv + 1);
		if (rc == CLI_EXIT_HELP)
			rc = CLI_EXIT_OK;
		return finish_output(rc);
	}
	{
		char c[64];

		cli_printable(c, sizeof(c), argv[1]);
		fprintf(stderr, "shmkit: unknown command '%s'\n", c);
	}
	usage(stderr);
	return CLI_EXIT_USAGE;
}
