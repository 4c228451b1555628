/*
 * ls.c - `shmkit ls`: one line (or one JSON object) per shmkit segment.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void
fmt_size(char *buf, size_t len, uint64_t v)
{
	static const char units[] = "KMGTP";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(buf, len, "%" PRIu64, v);
		return;
	}
	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", d, units[u]);
}

static uint64_t
age_s(uint64_t created_ns)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return now > created_ns ? (now - created_ns) / 1000000000u : 0;
}

static void
fmt_age(char *buf, size_t len, uint64_t s)
{
	if (s < 120)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 7200)
		snprintf(buf, len, "%" PRIu64 "m", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, len, "%" PRIu64 "h", s / 3600);
	else
		snprintf(buf, len, "%" PRIu64 "d", s / 86400);
}

static void
print_text(const struct cli_seg_list *l)
{
	char size[32], objs[32], att[32], pid[16], age[16], state[64];
	size_t i, w = 4;

	for (i = 0; i < l->n; i++)
		if (strlen(l->v[i].name) > w)
			w = strlen(l->v[i].name);
	printf("%-*s %-7s %8s %7s %8s %8s %5s %s\n", (int)w, "NAME", "BACKEND",
	       "SIZE", "OBJECTS", "ATTACHED", "CREATOR", "AGE", "STATE");
	for (i = 0; i < l->n; i++) {
		const struct cli_seg_entry *e = &l->v[i];

		cli_seg_state(e, state, sizeof(state));
		if (e->rc == 0) {
			fmt_size(size, sizeof(size), e->st.len);
			snprintf(objs, sizeof(objs), "%" PRIu32,
				 e->st.nobjects);
			snprintf(att, sizeof(att), "%" PRIu32 "/%" PRIu32,
				 e->st.attached_alive, e->st.attached);
			snprintf(pid, sizeof(pid), "%" PRIu32,
				 e->st.creator_pid);
			fmt_age(age, sizeof(age), age_s(e->st.created_ns));
		} else {
			if (e->backend == SHK_BACKEND_SYSV)
				fmt_size(size, sizeof(size), e->sysv_size);
			else
				snprintf(size, sizeof(size), "-");
			snprintf(objs, sizeof(objs), "-");
			snprintf(att, sizeof(att), "-");
			snprintf(pid, sizeof(pid), "-");
			snprintf(age, sizeof(age), "-");
		}
		printf("%-*s %-7s %8s %7s %8s %8s %5s %s\n", (int)w, e->name,
		       cli_backend_name(e->backend), size, objs, att, pid, age,
		       state);
	}
}

static void
print_json(const struct cli_seg_list *l)
{
	struct cli_json j;
	char key[16];
	size_t i;

	json_init(&j, stdout);
	json_begin_obj(&j, NULL);
	json_begin_arr(&j, "segments");
	for (i = 0; i < l->n; i++) {
		const struct cli_seg_entry *e = &l->v[i];
		int orphan = cli_seg_orphaned(e);

		json_begin_obj(&j, NULL);
		/* JSON escapes every control byte, so it can carry a POSIX
		 * name exactly as it is in /dev/shm (the text table shows
		 * the cleaned copy) */
		json_str(&j, "name",
			 e->backend == SHK_BACKEND_POSIX ? e->raw : e->name);
		json_str(&j, "backend", cli_backend_name(e->backend));
		if (e->backend == SHK_BACKEND_SYSV) {
			snprintf(key, sizeof(key), "0x%08x",
				 (uint32_t)e->sysv_key);
			json_str(&j, "sysv_key", key);
			json_i64(&j, "shmid", e->shmid);
		}
		if (e->rc == 0) {
			json_str(&j, "state", orphan ? "orphaned" : "ok");
			json_null(&j, "error");
			json_u64(&j, "size", e->st.len);
			json_u64(&j, "version", e->st.version);
			json_u64(&j, "objects", e->st.nobjects);
			json_u64(&j, "max_objects", e->st.max_objects);
			json_u64(&j, "attached", e->st.attached);
			json_u64(&j, "attached_alive", e->st.attached_alive);
			json_bool(&j, "orphaned", orphan);
			json_u64(&j, "creator_pid", e->st.creator_pid);
			json_u64(&j, "creator_uid", e->st.creator_uid);
			json_u64(&j, "created_ns", e->st.created_ns);
			json_u64(&j, "age_s", age_s(e->st.created_ns));
		} else {
			json_str(&j, "state",
				 e->unfinished                ? "unfinished"
				 : cli_code_is_corrupt(e->rc) ? "corrupt"
							      : "error");
			json_str(&j, "error", shk_errname(e->rc));
			json_str(&j, "message", shk_strerror(e->rc));
			/* false, as for every entry that did not open
			 * (an unfinished one's state says what it is) */
			json_bool(&j, "orphaned", 0);
		}
		json_end_obj(&j);
	}
	json_end_arr(&j);
	json_end_obj(&j);
	json_finish(&j);
}

int
cmd_ls(int argc, char **argv)
{
	struct cli_seg_list l;
	const char *match = NULL;
	int i, json = 0, rc, r;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			return cli_cmd_help();
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if ((r = cli_opt_value(argc, argv, &i, "--match",
					      &match)) != 0) {
			if (r < 0)
				return cli_usage_error("--match needs a GLOB");
		} else if (argv[i][0] == '-') {
			return cli_usage_error("unknown option '%s'", argv[i]);
		} else {
			return cli_usage_error("unexpected argument '%s'",
					       argv[i]);
		}
	}
	rc = cli_scan(&l, match);
	if (rc) {
		cli_error("scanning segments", rc);
		return CLI_EXIT_ERR;
	}
	if (json)
		print_json(&l);
	else
		print_text(&l);
	cli_seg_list_free(&l);
	return CLI_EXIT_OK;
}
