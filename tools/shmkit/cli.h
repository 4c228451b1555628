/*
 * cli.h - shared declarations of the shmkit command-line tool.
 *
 * The tool uses only the public API in shmkit.h.  Every command first
 * collects what it needs from segment memory (under the SIGBUS guard, since
 * a segment may be truncated under us) into process-local structs, and
 * only then renders text or JSON from those copies.
 */
#ifndef SHK_CLI_H
#define SHK_CLI_H

#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "shmkit.h"

/* Exit codes. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_ERR 1   /* the operation failed; one line on stderr */
#define CLI_EXIT_USAGE 2 /* bad command line; usage on stderr */
#define CLI_EXIT_HELP 3  /* internal: COMMAND --help printed; main exits 0 */

/* Which segment a command names. */
struct cli_target {
	uint32_t backend; /* enum shk_backend */
	const char *name; /* POSIX name, SysV name, or file path; NULL: key */
	int32_t sysv_key; /* SysV: explicit key (0: derived from name) */
	char label[80];   /* how messages name it */
};

/* One segment found by cli_scan. */
struct cli_seg_entry {
	char name[256]; /* for display: cli_printable() of the /dev/shm
			     file name, or the SysV header name, or the key */
	char raw[256];  /* POSIX: the /dev/shm file name as it is, for
			     opening and unlinking; never printed raw */
	uint32_t backend;
	int32_t sysv_key;
	int32_t shmid;
	uint64_t sysv_size; /* SysV: the kernel's size */
	int rc;             /* 0, or why the segment could not be opened */
	int unfinished;     /* POSIX: SHK_EBADSEG, the magic, and its
			       creator died before READY (fd_unfinished();
			       cli_seg_orphaned counts it) */
	shk_seg_stats st;   /* valid when rc == 0 */
};

struct cli_seg_list {
	struct cli_seg_entry *v;
	size_t n;
	size_t cap;
};

/* main.c */
extern const char *cli_cmd;
void cli_error(const char *what, int code);
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_is_help(const char *arg);
int cli_cmd_help(void);
int cli_parse_size(const char *s, uint64_t *out);
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_mode(const char *s, uint32_t *out);
int cli_parse_seconds(const char *s, double min, double max, double *out);
int cli_target_set(struct cli_target *t, uint32_t backend, const char *arg);
int cli_backend_flag(const char *a, uint32_t *backend);
void cli_target_opts(const struct cli_target *t, shk_seg_opts *o);
int cli_header_name(const struct cli_target *t, const shk_seg_stats *st,
		    char *hdr, size_t len);
const char *cli_backend_name(uint32_t backend);
void cli_printable(char *dst, size_t len, const char *src);
void cli_test_pause(void);
int cli_opt_value(int argc, char **argv, int *i, const char *opt,
		  const char **val);

/* guard.c: SIGBUS while reading segment memory becomes SHK_ETRUNC.
 * Use as:
 *	if (sigsetjmp(cli_guard_jmp, 1) == 0) {
 *		cli_guard_arm();
 *		... read the segment ...
 *		cli_guard_disarm();
 *	} else {
 *		... the segment was truncated under us ...
 *	}
 * Locals changed inside the guarded block must be volatile. */
extern sigjmp_buf cli_guard_jmp;
void cli_guard_install(void);
void cli_guard_arm(void);
void cli_guard_disarm(void);

/* The flags of every open that only inspects a segment (ls, info, dump,
 * watch, check, rm's test that a SysV name is a segment): read-only,
 * without attaching, and whoever owns it, so that root or an operator can
 * look at other users' segments (the library opens only the caller's own
 * without SHK_ANY_OWNER). */
#define CLI_INSPECT (SHK_RDONLY | SHK_ANY_OWNER)

/* Opens t read-only and runs fn(seg, arg) with the guard armed (after
 * cli_test_pause()); closes the segment again.  Returns fn's code, the
 * open's, or SHK_ETRUNC when the segment shrank under the read.  What fn
 * allocates must be reachable from statics or arg if it is to survive a
 * SIGBUS. */
int cli_guarded_read(const struct cli_target *t,
		     int (*fn)(shk_seg *seg, void *arg), void *arg);

/* json.c: a tiny streaming writer that always emits valid JSON. */
struct cli_json {
	FILE *f;
	int depth;
	int need_comma[32];
	int after_key;
};
void json_init(struct cli_json *j, FILE *f);
void json_begin_obj(struct cli_json *j, const char *key);
void json_end_obj(struct cli_json *j);
void json_begin_arr(struct cli_json *j, const char *key);
void json_end_arr(struct cli_json *j);
void json_str(struct cli_json *j, const char *key, const char *val);
void json_u64(struct cli_json *j, const char *key, uint64_t val);
void json_i64(struct cli_json *j, const char *key, int64_t val);
void json_bool(struct cli_json *j, const char *key, int val);
void json_null(struct cli_json *j, const char *key);
void json_f64(struct cli_json *j, const char *key, double val, int digits);
void json_finish(struct cli_json *j);

/* scan.c */
int cli_scan(struct cli_seg_list *out, const char *match);
void cli_seg_list_free(struct cli_seg_list *l);
void cli_seg_state(const struct cli_seg_entry *e, char *buf, size_t len);
int cli_code_is_corrupt(int code);
int cli_seg_orphaned(const struct cli_seg_entry *e);
void cli_reprobe(struct cli_seg_entry *e);
int cli_open_regular(int dirfd, const char *path);
int cli_fd_has_magic(int fd);
int cli_open_target_file(const struct cli_target *t);
int cli_target_unfinished(const struct cli_target *t);
void cli_target_error(const struct cli_target *t, int code);
int cli_sysv_key_has_magic(int32_t key);

/* rmobj.c: rm TARGET --object NAME...: removes each object (with force,
 * also one in use); returns an exit code, having said why on failure */
int cli_rm_objects(const struct cli_target *t, const char *const *objs, int n,
		   int force);

/* commands */
int cmd_ls(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_hold(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_bridge(int argc, char **argv);

#endif /* SHK_CLI_H */
