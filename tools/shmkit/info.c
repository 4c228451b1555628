/*
 * info.c - `shmkit info` (header, attach table, objects) and
 * `shmkit check` (shk_seg_check on the whole segment).
 *
 * info first copies everything out of the segment (under the SIGBUS
 * guard) and renders text or JSON from the copies, so a segment truncated
 * under us gives one error line and exit 1, never a crash or half output.
 */
#include <inttypes.h>
#include <limits.h> /* PATH_MAX */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define DESC_LEN 256

struct obj_row {
	shk_obj_info info;
	int desc_rc; /* shk_obj_describe's result: length or a code */
	char desc[DESC_LEN];
};

struct info_data {
	shk_seg_stats st;
	int check_rc;
	shk_attach_info *att;
	uint32_t natt;
	struct obj_row *obj;
	uint32_t nobj;
};

static void
info_free(struct info_data *d)
{
	free(d->att);
	free(d->obj);
	memset(d, 0, sizeof(*d));
}

/* Reads the segment into d.  Called with the guard armed. */
static int
collect(shk_seg *seg, void *arg)
{
	struct info_data *d = arg;
	shk_attach_info ai;
	uint32_t cur = 0, cap;
	int rc;

	d->st.size = sizeof(d->st);
	rc = shk_seg_info(seg, &d->st);
	if (rc)
		return rc;
	d->check_rc = shk_seg_check(seg);

	/* attach records: at most `attached` plus a few racing openers */
	cap = d->st.attached + 16;
	d->att = calloc(cap, sizeof(*d->att));
	if (!d->att)
		return SHK_ENOMEM;
	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(ai);
	while (d->natt < cap && shk_seg_attached(seg, &cur, &ai) == 1)
		d->att[d->natt++] = ai;

	/* objects: the registry has max_objects slots, so at most that many */
	cap = d->st.max_objects;
	d->obj = calloc(cap ? cap : 1, sizeof(*d->obj));
	if (!d->obj)
		return SHK_ENOMEM;
	cur = 0;
	while (d->nobj < cap) {
		struct obj_row *r = &d->obj[d->nobj];

		r->info.size = sizeof(r->info);
		rc = shk_obj_next(seg, &cur, &r->info);
		if (rc == SHK_ECORRUPT) {
			/* a damaged entry: list it and go on */
			r->info.name[sizeof(r->info.name) - 1] = '\0';
			r->desc_rc = rc;
			snprintf(r->desc, sizeof(r->desc), "corrupt: %s",
				 shk_errname(rc));
			d->nobj++;
			continue;
		}
		if (rc != 1)
			break;
		r->info.name[sizeof(r->info.name) - 1] = '\0';
		r->desc_rc = shk_obj_describe(seg, &r->info, r->desc,
					      sizeof(r->desc));
		if (r->desc_rc < 0)
			snprintf(r->desc, sizeof(r->desc), "%s: %s",
				 cli_code_is_corrupt(r->desc_rc) ? "corrupt"
								 : "error",
				 shk_errname(r->desc_rc));
		d->nobj++;
	}
	return rc < 0 ? rc : 0;
}

static void
fmt_time(char *buf, size_t len, uint64_t ns)
{
	time_t s = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!gmtime_r(&s, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%" PRIu64 "ns", ns);
}

static void
print_text(const struct cli_target *t, const struct info_data *d)
{
	const shk_seg_stats *st = &d->st;
	char name[PATH_MAX], hdr[sizeof(st->name) + 1], tbuf[64];
	size_t w = 4;
	uint32_t i;
	int differs = cli_header_name(t, st, hdr, sizeof(hdr));

	cli_printable(name, sizeof(name), t->name ? t->name : hdr);
	fmt_time(tbuf, sizeof(tbuf), st->created_ns);
	printf("name:        %s", name[0] ? name : t->label);
	if (differs) {
		cli_printable(name, sizeof(name), hdr);
		printf(" (header: %s)", name);
	}
	printf("\n");
	printf("backend:     %s\n", cli_backend_name(st->backend));
	printf("version:     %" PRIu32 "\n", st->version);
	printf("size:        %" PRIu64 " bytes\n", st->len);
	/* mode and owner: the file's now (shk_seg_stats); the header's
	 * creation mode too, when it differs */
	printf("mode:        %04" PRIo32, st->mode);
	if (st->create_mode != st->mode)
		printf(" (created %04" PRIo32 ")", st->create_mode);
	printf("\n");
	if (st->owner_uid == UINT32_MAX)
		printf("owner:       unknown\n");
	else
		printf("owner:       uid %" PRIu32 ", gid %" PRIu32 "\n",
		       st->owner_uid, st->owner_gid);
	printf("creator:     pid %" PRIu32 ", uid %" PRIu32 "\n",
	       st->creator_pid, st->creator_uid);
	printf("created:     %s\n", tbuf);
	printf("heap:        %" PRIu64 " bytes: used %" PRIu64 ", free %" PRIu64
	       ", high-water %" PRIu64 "\n",
	       st->heap_len, st->heap_used, st->heap_free, st->heap_high_water);
	printf("objects:     %" PRIu32 " of %" PRIu32 "\n", st->nobjects,
	       st->max_objects);
	printf("attached:    %" PRIu32 " (%" PRIu32 " alive)%s\n", st->attached,
	       st->attached_alive,
	       st->attached && !st->attached_alive ? " orphaned" : "");
	if (d->natt) {
		int foreign = 0;

		printf("  %-5s %-10s %-6s %-5s %s\n", "SLOT", "PID", "ALIVE",
		       "GEN", "START_TICKS");
		for (i = 0; i < d->natt; i++) {
			const shk_attach_info *a = &d->att[i];
			const char *alive = a->alive ? "yes" : "no";

			if (a->flags & SHK_ATTACH_UNTESTED) {
				alive = "yes*";
				foreign = 1;
			}
			printf("  %-5" PRIu32 " %-10" PRIu32 " %-6s %-5" PRIu32
			       " %" PRIu64 "\n",
			       a->slot, a->pid, alive, a->generation,
			       a->start_ticks);
		}
		if (foreign)
			printf("  * another PID namespace: cannot be tested "
			       "from here, counted alive\n");
	}
	if (d->check_rc)
		printf("check:       %s (%s)\n", shk_errname(d->check_rc),
		       shk_strerror(d->check_rc));
	else
		printf("check:       ok\n");
	printf("\n");
	for (i = 0; i < d->nobj; i++)
		if (strlen(d->obj[i].info.name) > w)
			w = strlen(d->obj[i].info.name);
	printf("%-*s %-7s %-18s %8s %10s %12s %s\n", (int)w, "NAME", "KIND",
	       "TYPE", "ELEM", "CAP", "BYTES", "STATE");
	for (i = 0; i < d->nobj; i++) {
		const struct obj_row *r = &d->obj[i];
		char oname[64], desc[DESC_LEN];

		cli_printable(oname, sizeof(oname), r->info.name);
		cli_printable(desc, sizeof(desc), r->desc);
		printf("%-*s %-7s 0x%016" PRIx64 " %8" PRIu64 " %10" PRIu64
		       " %12" PRIu64 "%s%s\n",
		       (int)w, oname, shk_kind_name(r->info.kind),
		       r->info.type_id, r->info.elem_len, r->info.cap,
		       r->info.len, desc[0] ? " " : "", desc);
	}
}

static void
print_json(const struct cli_target *t, const struct info_data *d)
{
	const shk_seg_stats *st = &d->st;
	struct cli_json j;
	char buf[64], hdr[sizeof(st->name) + 1];
	uint32_t i;

	json_init(&j, stdout);
	json_begin_obj(&j, NULL);
	cli_header_name(t, st, hdr, sizeof(hdr));
	json_str(&j, "name", t->name ? t->name : hdr[0] ? hdr : t->label);
	json_str(&j, "header_name", hdr);
	json_str(&j, "backend", cli_backend_name(st->backend));
	json_u64(&j, "version", st->version);
	json_u64(&j, "size", st->len);
	snprintf(buf, sizeof(buf), "%04" PRIo32, st->mode);
	json_str(&j, "mode", buf);
	snprintf(buf, sizeof(buf), "%04" PRIo32, st->create_mode);
	json_str(&j, "create_mode", buf);
	if (st->owner_uid == UINT32_MAX) {
		json_null(&j, "owner_uid");
		json_null(&j, "owner_gid");
	} else {
		json_u64(&j, "owner_uid", st->owner_uid);
		json_u64(&j, "owner_gid", st->owner_gid);
	}
	json_u64(&j, "creator_pid", st->creator_pid);
	json_u64(&j, "creator_uid", st->creator_uid);
	json_u64(&j, "created_ns", st->created_ns);
	json_begin_obj(&j, "heap");
	json_u64(&j, "len", st->heap_len);
	json_u64(&j, "used", st->heap_used);
	json_u64(&j, "free", st->heap_free);
	json_u64(&j, "high_water", st->heap_high_water);
	json_end_obj(&j);
	json_u64(&j, "nobjects", st->nobjects);
	json_u64(&j, "max_objects", st->max_objects);
	json_u64(&j, "attached_count", st->attached);
	json_u64(&j, "attached_alive", st->attached_alive);
	json_bool(&j, "orphaned", st->attached && !st->attached_alive);
	if (d->check_rc)
		json_str(&j, "check", shk_errname(d->check_rc));
	else
		json_str(&j, "check", "ok");
	json_begin_arr(&j, "attached");
	for (i = 0; i < d->natt; i++) {
		json_begin_obj(&j, NULL);
		json_u64(&j, "slot", d->att[i].slot);
		json_u64(&j, "pid", d->att[i].pid);
		json_bool(&j, "alive", d->att[i].alive != 0);
		json_bool(&j, "other_pid_namespace",
			  (d->att[i].flags & SHK_ATTACH_OTHER_PIDNS) != 0);
		json_bool(&j, "other_time_namespace",
			  (d->att[i].flags & SHK_ATTACH_OTHER_TIMENS) != 0);
		json_bool(&j, "liveness_lock",
			  (d->att[i].flags & SHK_ATTACH_LOCKED) != 0);
		json_bool(&j, "alive_untested",
			  (d->att[i].flags & SHK_ATTACH_UNTESTED) != 0);
		json_u64(&j, "generation", d->att[i].generation);
		json_u64(&j, "start_ticks", d->att[i].start_ticks);
		json_end_obj(&j);
	}
	json_end_arr(&j);
	json_begin_arr(&j, "objects");
	for (i = 0; i < d->nobj; i++) {
		const struct obj_row *r = &d->obj[i];

		json_begin_obj(&j, NULL);
		json_str(&j, "name", r->info.name);
		json_str(&j, "kind", shk_kind_name(r->info.kind));
		json_u64(&j, "kind_id", r->info.kind);
		snprintf(buf, sizeof(buf), "0x%016" PRIx64, r->info.type_id);
		json_str(&j, "type_id", buf);
		json_u64(&j, "elem_len", r->info.elem_len);
		json_u64(&j, "align", r->info.align);
		json_u64(&j, "cap", r->info.cap);
		json_u64(&j, "off", r->info.off);
		json_u64(&j, "len", r->info.len);
		json_u64(&j, "creator_pid", r->info.creator_pid);
		json_u64(&j, "created_ns", r->info.created_ns);
		json_u64(&j, "slot", r->info.slot);
		json_str(&j, "state", r->desc);
		if (r->desc_rc < 0)
			json_str(&j, "error", shk_errname(r->desc_rc));
		else
			json_null(&j, "error");
		json_end_obj(&j);
	}
	json_end_arr(&j);
	json_end_obj(&j);
	json_finish(&j);
}

/* Parses [--json] [--sysv|--file] TARGET. */
static int
parse_one_target(int argc, char **argv, int allow_json, int *json,
		 struct cli_target *t)
{
	uint32_t backend = SHK_BACKEND_POSIX;
	const char *arg = NULL;
	int i, r, opts_done = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && cli_is_help(a)) {
			return cli_cmd_help();
		} else if (!opts_done && a[0] == '-') {
			if (!strcmp(a, "--"))
				opts_done = 1;
			else if (allow_json && !strcmp(a, "--json"))
				*json = 1;
			else if ((r = cli_backend_flag(a, &backend)) < 0)
				return CLI_EXIT_USAGE;
			else if (r == 0)
				return cli_usage_error("unknown option '%s'",
						       a);
		} else if (arg) {
			return cli_usage_error("unexpected argument '%s'", a);
		} else {
			arg = a;
		}
	}
	if (!arg)
		return cli_usage_error("missing segment name");
	return cli_target_set(t, backend, arg);
}

int
cmd_info(int argc, char **argv)
{
	struct cli_target t;
	struct info_data d;
	int rc, json = 0;

	rc = parse_one_target(argc, argv, 1, &json, &t);
	if (rc)
		return rc;
	memset(&d, 0, sizeof(d));
	rc = cli_guarded_read(&t, collect, &d);
	if (rc) {
		info_free(&d);
		cli_target_error(&t, rc);
		return CLI_EXIT_ERR;
	}
	if (json)
		print_json(&t, &d);
	else
		print_text(&t, &d);
	rc = d.check_rc;
	info_free(&d);
	if (rc) {
		/* the output above shows the details; say it once on stderr */
		fflush(stdout);
		cli_target_error(&t, rc);
		return CLI_EXIT_ERR;
	}
	return CLI_EXIT_OK;
}

static shk_seg *volatile check_seg;

int
cmd_check(int argc, char **argv)
{
	struct cli_target t;
	shk_seg_opts o;
	shk_seg *seg = NULL;
	int rc, json = 0;

	rc = parse_one_target(argc, argv, 0, &json, &t);
	if (rc)
		return rc;
	cli_target_opts(&t, &o);
	check_seg = NULL;
	if (sigsetjmp(cli_guard_jmp, 1) == 0) {
		cli_guard_arm();
		rc = shk_seg_open(t.name, CLI_INSPECT, &o, &seg);
		check_seg = seg;
		if (rc == 0)
			rc = shk_seg_check(seg);
		cli_guard_disarm();
	} else {
		rc = SHK_ETRUNC;
	}
	shk_seg_close(check_seg);
	check_seg = NULL;
	if (rc) {
		cli_target_error(&t, rc);
		return CLI_EXIT_ERR;
	}
	printf("%s: ok\n", t.label);
	return CLI_EXIT_OK;
}
