/*
 * chan.c - channels: messages between processes over the ring, bcast and
 * queue, with large messages and loans as heap blocks (chan.h has the
 * layout, docs/chan.md the guarantees).
 *
 * Shared words
 *   control block  written once, by the creator's init callback, while the
 *                  registry entry is CREATING; published by the registry's
 *                  release store of READY, read after its acquire lookup.
 *                  Immutable afterwards.  Openers validate it
 *                  (shk__kind_check_chan) and keep a copy.
 *   parts          the ring, bcast and queue keep their own protocols
 *                  (ring.c, bcast.c, queue.c).
 *   held table     push/pull only: after the control block, one entry per
 *                  message a puller holds ("Held messages" below); the
 *                  one atomic protocol of this module.
 *   heap blocks    written by one sender before it publishes the
 *                  reference (ring commit: release; queue push: release
 *                  CAS to FULL), read by one receiver after the matching
 *                  acquire (ring peek, queue pop).  So a block has one
 *                  writer, then one reader, then is freed by that reader.
 *
 * Creation: the control block first (shk__obj_open: racing creators get
 * one), then every opener creates-or-opens the parts it needs from the
 * stored geometry.  A creator killed after the control block leaves a
 * channel without (some) parts: the next opener creates them.  A creator
 * killed inside a part's creation leaves a CREATING entry, which the
 * registry recovers.  So a half-created channel is repaired, never seen.
 * An open that fails removes what it made while it is the segment's only
 * live handle (undo_open()); shk_obj_remove of the control block removes
 * the parts with it (registry.c, shk__chan_parts()).
 *
 * Receiving validates everything read from shared memory: a frame's kind
 * and length against the record; a heap reference's check word, its
 * offset against the heap region, its block header's magic, tag and
 * length.  A failing message is dropped (its ring record released or its
 * queue element already popped; a block it may name is not freed, since
 * the offset is untrusted) and SHK_ECORRUPT returned.
 *
 * Killed parties (docs/chan.md, "What a dead peer leaves"):
 *   - a sender between shk_alloc and the ring commit / queue push leaks
 *     that block (no reference to it exists);
 *   - a pair receiver holding a message leaves its ring record unreleased:
 *     the next owner of that end receives it again (at least once); killed
 *     inside shk_msg_release between the ring release and shk_free, it
 *     leaks the block (the release comes first, so a block is never freed
 *     twice);
 *   - a puller holding a message loses the message (at most once); its
 *     block is recorded in the held table and freed by a survivor (below);
 *     the queue repairs a slot a puller died inside (queue.c);
 *   - pub/sub holds nothing in shared memory per message.
 *
 * Held messages (push/pull; docs/chan.md, "What a dead peer leaves").  A
 * received message is a heap block only its puller refers to.  So that the
 * block of a puller that dies holding it is not lost for good, the puller
 * records it in the channel's held table: SHK__CHAN_HELD entries, each
 * w = state:2 | stamp:30 | tag:32 and off (chan.h).  The stamp is the
 * owner stamp of the channel handle's own segment handle (each channel
 * handle opens its own), so it dies with the handle's close or process.
 *
 *   FREE|t     --reserve (puller, CAS, acquire)------------> RSVD|s|t+1
 *   RSVD|s|t   --record (puller: off, then CAS, release)---> HELD|s|t
 *   HELD|s|t   --release, one spare kept (CAS, release)----> RSVD|s|t
 *   HELD|s|t   --release, else (CAS, release)--------------> FREE|t
 *   RSVD|s|t   --close, or s dead (CAS, release)-----------> FREE|t
 *   HELD|s|t   --s dead: claim (reclaimer r, CAS, acquire)-> RECL|r|t
 *   RECL|r|t   --r frees off, then (store, release)--------> FREE|t
 *   RECL|r|t   --r dead (CAS, release), off not freed------> FREE|t
 *
 * A puller keeps one reserved entry (its spare) between messages, so the
 * fast path is: pop, store off, one CAS RSVD -> HELD; release: one CAS
 * HELD -> RSVD (or FREE when it has a spare already), then the free.  A
 * puller that finds no FREE entry receives unrecorded (the old behaviour:
 * such a block is leaked if it dies holding it).
 *
 * Why a block is never freed twice.  A block is freed by whoever moves
 * its entry out of HELD, and only by them: the holder (its release CAS
 * HELD -> RSVD/FREE, then the free) or one reclaimer (its claim CAS HELD ->
 * RECL, then the free).  Both are CASes on the same word from the same
 * HELD value, so exactly one succeeds; a holder whose CAS fails (a
 * reclaimer judged it dead: only a live stamp misjudged, segment-format.md)
 * does not free.  The holder moves the entry out of HELD before it frees,
 * and a reclaimer frees only after its claim, so a kill between the two
 * leaks the block (entry FREE or RECL, block allocated) and never leaves
 * an entry naming a freed block as HELD.  RECL left by a dead reclaimer is
 * cleared without a free: the block is freed or leaked, never freed again.
 * A reclaimer judges the stamp between its load and its CAS; the tag makes
 * the CAS fail if the entry was freed and taken again meanwhile (ABA would
 * need 2^32 reservations of that entry in between).  All of this assumes
 * that a live handle's stamp never tests dead.  A misjudged stamp (only
 * without liveness locks, two claimers sharing one attach record:
 * segment-format.md) lets a reclaimer free a block its live holder still
 * reads, and take a reservation whose owner is about to store off: the
 * owner re-reads its word just before that store, which leaves a window
 * of a few instructions in which it could write its off into an entry
 * someone else has taken since (a later double free if that one dies).  A stamp that names a
 * live handle again (the attach record's 2^20th claim after the holder
 * died) keeps the dead holder's entries until that handle closes: they
 * look alive, as the dead owner's locks do.
 *
 * What a kill leaves (crash points): inside the queue's pop with the claim
 * READING (queue.pop.claimed, queue.pop.copied): nothing, the queue
 * delivers the message again one lap later; after the KEPT CAS, before the
 * record (chan.recv.claimed): the entry RSVD, the block leaked (the
 * repair drops a KEPT cell); after the record (chan.recv.kept,
 * chan.recv.after_pop): nothing leaked, the next reclaim frees the block
 * (until 2026-11-25 evening the record came after the pop and its wake-up
 * system calls: a leak); in a release between its CAS and the free
 * (chan.release.after_clear): the block leaked; a reclaimer after its claim (chan.reclaim.after_claim):
 * the block leaked, the entry RECL until the next reclaim clears it; after
 * its free (chan.reclaim.after_free): nothing leaked.
 *
 * Who reclaims (held_reclaim()): every push/pull open, and a sender whose
 * allocation finds the heap full (shk_chan_send, shk_msg_loan; a waiting
 * send again every PEER_SLICE_NS).  It reads each entry, tests the stamps
 * of the entries not FREE (system calls: slow paths only) and frees the
 * blocks of the dead.  An off read from the table is checked as a
 * received reference is (bounds, block header's magic, tag and length)
 * before the free; one that fails is not freed (leaked, counted corrupt).
 */
#include "chan.h"

#include <stdatomic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "queue.h"
#include "registry.h"
#include "ring.h"
#include "segment.h"
#include "shmkit.h"

#define DEFAULT_CAP_BYTES 65536u
#define DEFAULT_CAP_SLOTS 1024u
#define DEFAULT_MAX_MSG ((uint64_t)1 << 20)
#define MAX_MAX_MSG ((uint64_t)1 << 40)
#define DEFAULT_INLINE 2048u
#define DEFAULT_SUBS 16u
#define MAX_SUBS 1024u
#define CHAN_NAME_MAX (SHK_NAME_MAX - 4) /* room for ".log" */
#define SCHEME "shm://"

enum msg_state { MSG_IDLE = 0, MSG_LOAN = 1, MSG_RECV = 2 };

#define NO_ENT UINT32_MAX

/* What a message holds: its pair ring record, its heap block. */
#define HOLD_RING 0x1u
#define HOLD_BLOCK 0x2u

struct shk_msg {
	shk_chan *c;
	uint32_t state; /* enum msg_state */
	uint32_t hold;  /* HOLD_* */
	void *data;
	size_t len;
	uint64_t off;         /* the heap block (HOLD_BLOCK) */
	uint32_t ent;         /* push/pull received: held entry, or NO_ENT */
	uint64_t ent_w;       /* ... its word while HELD by us */
	struct shk_msg *next; /* free list */
	struct shk_msg *all;  /* every heap-allocated message of the handle */
};

struct shk_chan {
	shk_seg *seg;
	int pattern;
	int role;
	struct shk__chan_ctl ctl;    /* validated copy */
	uint64_t heap_lo, heap_hi;   /* where a block's header may lie */
	shk_ring *tx, *rx;           /* pair */
	shk_bcast *b;                /* pub/sub */
	shk_queue *q;                /* push/pull */
	struct shk__chan_held *held; /* push/pull: ctl.held entries */
	uint32_t spare;              /* our RSVD entry, or NO_ENT */
	uint64_t spare_w;            /* ... its word */
	uint32_t hint;               /* where a search for a FREE one starts */
	int64_t reclaim_at; /* a sender's next reclaim pass (blk_alloc_reclaim) */
	uint8_t *sub_buf;   /* sub: max_msg bytes */
	struct shk_msg inl; /* pair and sub: the one received message */
	struct shk_msg *free_msgs;
	struct shk_msg *all_msgs;
	uint64_t sent, received, lost, corrupt, outstanding;
};

/* ---- addresses and geometry ---- */

static int
name_ok(const char *s, size_t n, size_t max)
{
	size_t i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return 0;
	}
	/* "." and ".." are not names */
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	return 1;
}

/* "shm://SEG/CHAN" -> seg, chan (NUL-terminated, 64 bytes each). */
static int
parse_addr(const char *addr, char *seg, char *ch)
{
	const char *p, *slash;
	size_t n;

	if (!addr || strncmp(addr, SCHEME, sizeof(SCHEME) - 1) != 0)
		return SHK_EINVAL;
	p = addr + sizeof(SCHEME) - 1;
	slash = strchr(p, '/');
	if (!slash)
		return SHK_EINVAL;
	n = (size_t)(slash - p);
	if (!name_ok(p, n, SHK_NAME_MAX))
		return SHK_EINVAL;
	memcpy(seg, p, n);
	seg[n] = '\0';
	p = slash + 1;
	n = strlen(p);
	if (!name_ok(p, n, CHAN_NAME_MAX))
		return SHK_EINVAL;
	memcpy(ch, p, n + 1);
	return 0;
}

static int
pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Is a stored (or about to be stored) geometry valid? */
/*
 * Whether this library reads control block g's format: the current
 * version, or version 1 for a pair or pub/sub channel, whose layout
 * version 2 left unchanged (its `held` was reserved, 0); a version-1
 * push/pull channel has no held table.  Any other version is
 * SHK_EVERSION, not damage.
 */
static int
version_ok(const struct shk__chan_ctl *g)
{
	return g->version == SHK__CHAN_VERSION ||
	       (g->version == 1 && g->pattern != SHK_CHAN_PUSHPULL &&
		g->held == 0);
}

static int
geometry_ok(const struct shk__chan_ctl *g)
{
	switch (g->pattern) {
	case SHK_CHAN_PAIR:
		return pow2(g->cap) && g->cap >= 64 &&
		       g->cap <= ((uint64_t)1 << 32) && g->max_msg >= 1 &&
		       g->max_msg <= MAX_MAX_MSG && g->inline_max >= 1 &&
		       g->inline_max <= g->max_msg &&
		       g->inline_max <= g->cap / 2 - 24 && g->mode == 0 &&
		       g->max_subs == 0 && g->held == 0;
	case SHK_CHAN_PUBSUB:
		return pow2(g->cap) && g->cap >= 128 &&
		       g->cap <= ((uint64_t)1 << 32) && g->max_msg >= 1 &&
		       g->max_msg <= g->cap / 2 - 16 &&
		       g->inline_max == g->max_msg &&
		       (g->mode == SHK_BCAST_LOSSY ||
			g->mode == SHK_BCAST_RELIABLE) &&
		       g->max_subs >= 1 && g->max_subs <= MAX_SUBS &&
		       g->held == 0;
	case SHK_CHAN_PUSHPULL:
		return pow2(g->cap) && g->cap <= ((uint64_t)1 << 31) &&
		       g->max_msg >= 1 && g->max_msg <= MAX_MAX_MSG &&
		       g->inline_max == 0 && g->mode == 0 && g->max_subs == 0 &&
		       g->held == SHK__CHAN_HELD;
	default:
		return 0;
	}
}

/*
 * Could any valid stored geometry match what an opener asked (zero
 * fields: any)?  Each nonzero field is judged on its own and against the
 * other nonzero ones; defaults are not filled in (an existing channel may
 * have other values).  Run before anything is created, so options that no
 * channel can have never leave a new segment behind.
 */
static int
asked_possible(const struct shk__chan_ctl *g)
{
	uint64_t lo = g->pattern == SHK_CHAN_PAIR     ? 64
		      : g->pattern == SHK_CHAN_PUBSUB ? 128
						      : 1;
	uint64_t hi = g->pattern == SHK_CHAN_PUSHPULL ? (uint64_t)1 << 31
						      : (uint64_t)1 << 32;

	if (g->cap && (!pow2(g->cap) || g->cap < lo || g->cap > hi))
		return 0;
	switch (g->pattern) {
	case SHK_CHAN_PAIR:
		return !g->inline_max ||
		       ((!g->max_msg || g->inline_max <= g->max_msg) &&
			g->inline_max <= (g->cap ? g->cap : hi) / 2 - 24);
	case SHK_CHAN_PUBSUB:
		return g->max_msg <= (g->cap ? g->cap : hi) / 2 - 16;
	default:
		return 1;
	}
}

/* Fills the zero fields of a geometry to create with the defaults. */
static void
geometry_defaults(struct shk__chan_ctl *g)
{
	switch (g->pattern) {
	case SHK_CHAN_PAIR:
		if (!g->cap)
			g->cap = DEFAULT_CAP_BYTES;
		if (!g->max_msg)
			g->max_msg = DEFAULT_MAX_MSG;
		if (!g->inline_max) {
			g->inline_max = DEFAULT_INLINE;
			if (g->inline_max > g->max_msg)
				g->inline_max = g->max_msg;
			if (g->cap >= 64 && g->inline_max > g->cap / 2 - 24)
				g->inline_max = g->cap / 2 - 24;
		}
		break;
	case SHK_CHAN_PUBSUB:
		if (!g->cap)
			g->cap = DEFAULT_CAP_BYTES;
		if (!g->max_msg && g->cap >= 128)
			g->max_msg = g->cap / 2 - 16;
		g->inline_max = g->max_msg;
		if (!g->mode)
			g->mode = SHK_BCAST_LOSSY;
		if (!g->max_subs)
			g->max_subs = DEFAULT_SUBS;
		break;
	case SHK_CHAN_PUSHPULL:
		if (!g->cap)
			g->cap = DEFAULT_CAP_SLOTS;
		if (!g->max_msg)
			g->max_msg = DEFAULT_MAX_MSG;
		g->inline_max = 0;
		g->held = SHK__CHAN_HELD;
		break;
	}
}

/* Does the stored geometry have what the opener asked for (0: any)? */
static int
geometry_matches(const struct shk__chan_ctl *have,
		 const struct shk__chan_ctl *want)
{
	if (have->pattern != want->pattern)
		return 0;
	if (want->cap && want->cap != have->cap)
		return 0;
	if (want->max_msg && want->max_msg != have->max_msg)
		return 0;
	if (want->pattern == SHK_CHAN_PAIR && want->inline_max &&
	    want->inline_max != have->inline_max)
		return 0;
	if (want->mode && want->mode != have->mode)
		return 0;
	if (want->max_subs && want->max_subs != have->max_subs)
		return 0;
	return 1;
}

/* Bytes of a channel's object: the control block, then a push/pull
 * channel's held table (g validated: held is 0 or SHK__CHAN_HELD). */
static uint64_t
ctl_len(const struct shk__chan_ctl *g)
{
	return sizeof(*g) + (uint64_t)g->held * sizeof(struct shk__chan_held);
}

int
shk__kind_check_chan(shk_seg *seg, void *mem, const shk_obj_info *info)
{
	struct shk__chan_ctl g;

	(void)seg;
	if (info->len < sizeof(g))
		return SHK_ECORRUPT;
	/* one copy: a peer rewriting the block cannot change what we judge */
	memcpy(&g, mem, sizeof(g));
	if (g.magic == SHK__CHAN_MAGIC && !version_ok(&g))
		return SHK_EVERSION;
	if (g.magic != SHK__CHAN_MAGIC || !geometry_ok(&g) || g.tag == 0 ||
	    g.pattern != info->elem_len || g.cap != info->cap ||
	    info->len < ctl_len(&g))
		return SHK_ECORRUPT;
	return 0;
}

static const char *
pattern_name(uint32_t p)
{
	switch (p) {
	case SHK_CHAN_PAIR:
		return "pair";
	case SHK_CHAN_PUBSUB:
		return "pubsub";
	case SHK_CHAN_PUSHPULL:
		return "pushpull";
	default:
		return "?";
	}
}

static int
part_names(const char *ch, uint32_t pattern, char names[2][64])
{
	/* ch is at most CHAN_NAME_MAX bytes (parse_addr, or a registry name
	 * checked below), so the suffixes fit */
	if (strlen(ch) > CHAN_NAME_MAX)
		return 0;
	switch (pattern) {
	case SHK_CHAN_PAIR:
		snprintf(names[0], 64, "%s.ab", ch);
		snprintf(names[1], 64, "%s.ba", ch);
		return 2;
	case SHK_CHAN_PUBSUB:
		snprintf(names[0], 64, "%s.log", ch);
		return 1;
	case SHK_CHAN_PUSHPULL:
		snprintf(names[0], 64, "%s.q", ch);
		return 1;
	default:
		return 0;
	}
}

/* The kind of a pattern's parts. */
static uint32_t
part_kind(uint32_t pattern)
{
	switch (pattern) {
	case SHK_CHAN_PAIR:
		return SHK_KIND_RING;
	case SHK_CHAN_PUBSUB:
		return SHK_KIND_BCAST;
	default:
		return SHK_KIND_QUEUE;
	}
}

/* shk__chan_parts (chan.h): every name a part of channel ch may have,
 * whatever its pattern, so that a damaged control block (never read here)
 * cannot hide one. */
int
shk__chan_parts(const char *ch, struct shk__obj_part parts[SHK__OBJ_PARTS_MAX])
{
	static const uint32_t pats[] = { SHK_CHAN_PAIR, SHK_CHAN_PUBSUB,
					 SHK_CHAN_PUSHPULL };
	char names[2][64];
	int i, j, k, n = 0;

	for (i = 0; i < 3; i++) {
		k = part_names(ch, pats[i], names);
		for (j = 0; j < k && n < SHK__OBJ_PARTS_MAX; j++, n++) {
			memcpy(parts[n].name, names[j], sizeof(parts[n].name));
			parts[n].kind = part_kind(pats[i]);
			parts[n].type_id = SHK__CHAN_PART_TYPE;
		}
	}
	return n;
}

int
shk__kind_describe_chan(shk_seg *seg, void *mem, const shk_obj_info *info,
			char *buf, size_t len)
{
	struct shk__chan_ctl g;
	char names[2][64], nm[64];
	shk_obj_info pi;
	int i, n, nparts, ok = 0;

	memcpy(&g, mem, sizeof(g));
	if (g.pattern < SHK_CHAN_PAIR || g.pattern > SHK_CHAN_PUSHPULL)
		return SHK_ECORRUPT;
	memcpy(nm, info->name, sizeof(nm));
	nm[sizeof(nm) - 1] = '\0';
	nparts = part_names(nm, g.pattern, names);
	for (i = 0; i < nparts; i++) {
		pi.size = sizeof(pi);
		if (shk_obj_stat(seg, names[i], &pi) == 0 &&
		    pi.kind == part_kind(g.pattern) &&
		    pi.type_id == SHK__CHAN_PART_TYPE)
			ok++;
	}
	n = snprintf(buf, len,
		     "pattern=%s cap=%llu max_msg=%llu inline_max=%llu%s "
		     "parts=%d/%d",
		     pattern_name(g.pattern), (unsigned long long)g.cap,
		     (unsigned long long)g.max_msg,
		     (unsigned long long)g.inline_max,
		     g.pattern != SHK_CHAN_PUBSUB   ? ""
		     : g.mode == SHK_BCAST_RELIABLE ? " mode=reliable"
						    : " mode=lossy",
		     ok, nparts);
	if (n < 0)
		return SHK_EINVAL;
	return (size_t)n >= len ? (int)len - 1 : n;
}

/* ---- open and close ---- */

struct ctl_init {
	const struct shk__chan_ctl *g;
	int created;
};

static int
ctl_init(shk_seg *seg, void *mem, const shk_obj_info *info, void *arg)
{
	struct ctl_init *ci = arg;

	(void)seg;
	(void)info;
	memcpy(mem, ci->g, sizeof(*ci->g));
	ci->created = 1;
	return 0;
}

static uint32_t
new_tag(const char *name)
{
	uint64_t seed = (uint64_t)shk__realtime_ns() ^
			((uint64_t)getpid() << 32) ^ (uint64_t)shk__now_ns();
	uint32_t t = (uint32_t)shk__hash64(name, strlen(name), seed);

	return t ? t : 1;
}

/* Creates or opens the control block; *g_io holds what was asked (zero
 * fields: any) and receives the stored geometry; *created says whether
 * this call made it (also on failure). */
static int
open_ctl(shk_seg *seg, const char *ch, uint64_t type_id,
	 struct shk__chan_ctl *g_io, int *created, void **mem_out)
{
	shk_obj_desc want = SHK_OBJ_DESC_INIT;
	struct shk__chan_ctl asked = *g_io, g = *g_io;
	struct ctl_init ci = { &g, 0 };
	shk_obj_info info;
	void *mem = NULL;
	int rc, tries;

	want.kind = SHK_KIND_CHAN;
	want.type_id = type_id;
	want.elem_len = asked.pattern;
	for (tries = 0; tries < 2; tries++) {
		/* open with what was asked (0: any) */
		want.cap = asked.cap;
		rc = shk__obj_open(seg, ch, 0, &want, 0, NULL, NULL,
				   shk__kind_check_chan, &info, &mem);
		if (rc != SHK_ENOENT)
			break;
		/* missing: create with the defaults filled in */
		g = asked;
		geometry_defaults(&g);
		g.magic = SHK__CHAN_MAGIC;
		g.version = SHK__CHAN_VERSION;
		g.tag = new_tag(ch);
		if (!geometry_ok(&g))
			return SHK_EINVAL;
		want.cap = g.cap;
		/* the held table after it is zero-filled: every entry FREE */
		rc = shk__obj_open(seg, ch, SHK_CREATE, &want, ctl_len(&g),
				   ctl_init, &ci, shk__kind_check_chan, &info,
				   &mem);
		/* a racer created it with another geometry, which may still
		 * be one we accept: open again with what was asked */
		if (rc != SHK_ETYPE || ci.created)
			break;
	}
	/* even on failure: a control block this call made is its to undo */
	*created = ci.created;
	if (rc)
		return rc;
	if (ci.created)
		SHK_CRASHPOINT("chan.create.after_ctl");
	/* the copy that shk__kind_check_chan judged may differ from memory
	 * a peer scribbles on: copy, then judge the copy */
	memcpy(&g, mem, sizeof(g));
	if (g.magic == SHK__CHAN_MAGIC && !version_ok(&g))
		return SHK_EVERSION;
	if (g.magic != SHK__CHAN_MAGIC || !geometry_ok(&g) || g.tag == 0 ||
	    g.pattern != info.elem_len || g.cap != info.cap ||
	    info.len < ctl_len(&g))
		return SHK_ECORRUPT;
	if (!geometry_matches(&g, &asked))
		return SHK_ETYPE;
	*g_io = g;
	*mem_out = mem;
	return 0;
}

static int held_reclaim(shk_chan *c);
static void held_unreserve(shk_chan *c);

/* What a shk_chan_open call made, for undo_open(). */
#define MADE_CTL 0x1u
#define MADE_PART(i) (0x2u << (i)) /* part_names()' names[i] */

/* The options of the parts, from the stored geometry. */
struct part_opts {
	shk_ring_opts ro;
	shk_bcast_opts bo;
	shk_queue_opts qo;
};

/* Opens (flags 0) or creates (SHK_CREATE | SHK_EXCL) the part `name`; tx:
 * for a pair, whether it is the ring this end sends on. */
static int
part_open(shk_chan *c, const struct part_opts *po, const char *name, int tx,
	  unsigned flags)
{
	switch (c->pattern) {
	case SHK_CHAN_PAIR:
		return shk_ring_open(c->seg, name, flags,
				     tx ? SHK_RING_PRODUCER : SHK_RING_CONSUMER,
				     &po->ro, tx ? &c->tx : &c->rx);
	case SHK_CHAN_PUBSUB:
		return shk_bcast_open(c->seg, name, flags,
				      c->role == SHK_CHAN_PUB
					      ? SHK_BCAST_WRITER
					      : SHK_BCAST_READER,
				      &po->bo, &c->b);
	default:
		return shk_queue_open(c->seg, name, flags, &po->qo, &c->q);
	}
}

/*
 * Opens the part `name`, creating it when it is missing: a plain open,
 * then a creation with SHK_EXCL, so that *made says whether this call
 * created it (undo_open() removes only that).  A part that another opener
 * creates, or that someone removes, in between is looked up again; a
 * part that keeps changing under us is SHK_EAGAIN.
 */
static int
part_get(shk_chan *c, const struct part_opts *po, const char *name, int tx,
	 int *made)
{
	int rc, tries;

	for (tries = 0; tries < 16; tries++) {
		rc = part_open(c, po, name, tx, 0);
		if (rc != SHK_ENOENT)
			return rc;
		rc = part_open(c, po, name, tx, SHK_CREATE | SHK_EXCL);
		if (rc != SHK_EEXIST) {
			*made = rc == 0;
			return rc;
		}
	}
	return SHK_EAGAIN;
}

/* Opens the parts this role needs (creating the missing ones); *made
 * gets MADE_PART(i) for each part this call created. */
static int
open_parts(shk_chan *c, const char *ch, uint32_t *made)
{
	struct part_opts po = { SHK_RING_OPTS_INIT, SHK_BCAST_OPTS_INIT,
				SHK_QUEUE_OPTS_INIT };
	char names[2][64];
	int rc, i, k, n, mine;

	n = part_names(ch, c->ctl.pattern, names);
	switch (c->pattern) {
	case SHK_CHAN_PAIR: {
		uint64_t rec = SHK__CHAN_FR_INLINE_LEN + c->ctl.inline_max;

		po.ro.cap = c->ctl.cap;
		po.ro.max_record = rec < SHK__CHAN_FR_HEAP_LEN
					   ? SHK__CHAN_FR_HEAP_LEN
					   : rec;
		po.ro.type_id = SHK__CHAN_PART_TYPE;
		break;
	}
	case SHK_CHAN_PUBSUB:
		po.bo.mode = c->ctl.mode;
		po.bo.cap = c->ctl.cap;
		po.bo.max_record = c->ctl.max_msg;
		po.bo.type_id = SHK__CHAN_PART_TYPE;
		po.bo.max_readers = c->ctl.max_subs;
		break;
	default:
		po.qo.elem_len = sizeof(struct shk__chan_ref);
		po.qo.cap = c->ctl.cap;
		po.qo.type_id = SHK__CHAN_PART_TYPE;
		break;
	}
	for (i = 0; i < n; i++) {
		/* a pair's A sends on .ab (names[0]) and receives on .ba, B
		 * the other way round; each opens its sending ring first */
		k = c->pattern == SHK_CHAN_PAIR && c->role == SHK_CHAN_B ? 1 - i
									 : i;
		mine = 0;
		rc = part_get(c, &po, names[k], i == 0, &mine);
		if (mine)
			*made |= MADE_PART(k);
		if (rc)
			return rc;
	}
	if (c->role == SHK_CHAN_SUB) {
		c->sub_buf = malloc((size_t)c->ctl.max_msg);
		if (!c->sub_buf)
			return SHK_ENOMEM;
	}
	return 0;
}

/*
 * A failed shk_chan_open removes what it made (test_chan open_undo): the
 * parts it created, then the control block if it created it and no part
 * of the channel is left, then the segment if it created it and nothing
 * is left in it.  Left in place, a channel whose parts did not fit made
 * every later open fail (SHK_ENOMEM again, or SHK_ETYPE for another
 * geometry) until the segment was removed.  Objects go only while no
 * other live handle is attached to the segment, checked under the
 * registry lock: anyone else who could have found the control block, or
 * be opening the same channel at this moment, holds an attach record, and
 * a handle attached after the check looks the channel up after our
 * removal (the lock orders both).  Otherwise what we made stays, as it
 * did: a channel the next opener completes, as after a creator that died
 * half-way.  The segment goes under shk__seg_unlink_unused()'s rule.
 */
static void
undo_open(shk_seg *seg, const char *ch, int pattern, uint64_t type_id,
	  uint32_t made)
{
	struct shk__obj_part parts[SHK__OBJ_PARTS_MAX];
	char names[2][64];
	int i, n, left = 0;

	if (made && shk__reg_lock(seg) == 0) {
		if (shk__seg_alone(seg)) {
			n = part_names(ch, (uint32_t)pattern, names);
			for (i = 0; i < n; i++) {
				if (made & MADE_PART(i))
					shk__obj_remove_locked(
						seg, names[i],
						part_kind((uint32_t)pattern),
						SHK__CHAN_PART_TYPE);
			}
			n = shk__chan_parts(ch, parts);
			for (i = 0; i < n; i++)
				left |= shk__obj_find_locked(seg, parts[i].name,
							     parts[i].kind,
							     parts[i].type_id);
			if ((made & MADE_CTL) && !left)
				shk__obj_remove_locked(seg, ch, SHK_KIND_CHAN,
						       type_id);
		}
		shk__reg_unlock(seg);
	}
	shk__seg_unlink_unused(seg);
}

static int
role_ok(int pattern, int role)
{
	switch (pattern) {
	case SHK_CHAN_PAIR:
		return role == SHK_CHAN_A || role == SHK_CHAN_B;
	case SHK_CHAN_PUBSUB:
		return role == SHK_CHAN_PUB || role == SHK_CHAN_SUB;
	case SHK_CHAN_PUSHPULL:
		return role == SHK_CHAN_PUSH || role == SHK_CHAN_PULL;
	default:
		return 0;
	}
}

int
shk_chan_open(const char *addr, int pattern, int role,
	      const shk_chan_opts *opts, shk_chan **out)
{
	shk_chan_opts o = SHK_CHAN_OPTS_INIT;
	shk_seg_opts so = SHK_SEG_OPTS_INIT;
	char segname[64], ch[64];
	struct shk__chan_ctl g;
	shk_chan *c;
	void *mem = NULL;
	uint32_t made = 0;
	int rc, created = 0;

	if (!out)
		return SHK_EINVAL;
	*out = NULL;
	if (opts) {
		if (opts->size == 0)
			return SHK_EINVAL;
		memcpy(&o, opts,
		       opts->size < sizeof(o) ? opts->size : sizeof(o));
		o.size = sizeof(o);
	}
	rc = parse_addr(addr, segname, ch);
	if (rc)
		return rc;
	if (!role_ok(pattern, role))
		return SHK_EINVAL;
	memset(&g, 0, sizeof(g));
	g.pattern = (uint32_t)pattern;
	g.cap = o.cap;
	g.max_msg = o.max_msg;
	g.mode = pattern == SHK_CHAN_PUBSUB ? o.mode : 0;
	g.max_subs = pattern == SHK_CHAN_PUBSUB ? o.max_subs : 0;
	g.inline_max = pattern == SHK_CHAN_PAIR ? o.inline_max : 0;
	if ((pattern != SHK_CHAN_PUBSUB && (o.mode || o.max_subs)) ||
	    (pattern == SHK_CHAN_PUBSUB && o.mode &&
	     o.mode != SHK_BCAST_LOSSY && o.mode != SHK_BCAST_RELIABLE) ||
	    o.max_subs > MAX_SUBS || o.max_msg > MAX_MAX_MSG ||
	    (o.flags & ~SHK_ANY_OWNER) || !asked_possible(&g))
		return SHK_EINVAL;

	c = calloc(1, sizeof(*c));
	if (!c)
		return SHK_ENOMEM;
	c->pattern = pattern;
	c->role = role;
	c->spare = NO_ENT;
	c->inl.ent = NO_ENT;
	so.len = o.seg_size;
	so.mode = o.seg_mode; /* 0: the default; above 0777: SHK_EINVAL */
	rc = shk_seg_open(segname, SHK_CREATE | (o.flags & SHK_ANY_OWNER), &so,
			  &c->seg);
	if (rc)
		goto fail;
	rc = open_ctl(c->seg, ch, o.type_id, &g, &created, &mem);
	if (created)
		made |= MADE_CTL;
	if (rc)
		goto fail;
	c->ctl = g;
	/* a block header lies in the heap region, 16-byte aligned, with its
	 * payload before the region's end */
	c->heap_lo = c->seg->heap_off;
	c->heap_hi = c->seg->heap_off + c->seg->heap_len;
	rc = open_parts(c, ch, &made);
	if (rc)
		goto fail;
	if (g.held) {
		/* open_ctl() checked that the object holds the table */
		c->held = (struct shk__chan_held *)((uint8_t *)mem + sizeof(g));
		c->hint =
			(shk__seg_stamp(c->seg) * 0x9e3779b9u) % SHK__CHAN_HELD;
		/* the blocks of pullers that died holding messages */
		held_reclaim(c);
	}
	c->inl.c = c;
	*out = c;
	return 0;
fail:
	if (c->seg) {
		/* the parts' handles first: their close writes to the
		 * parts, which undo_open() may remove */
		shk_ring_close(c->tx);
		shk_ring_close(c->rx);
		shk_bcast_close(c->b);
		shk_queue_close(c->q);
		c->tx = c->rx = NULL;
		c->b = NULL;
		c->q = NULL;
		undo_open(c->seg, ch, pattern, o.type_id, made);
	}
	shk_chan_close(c);
	return rc;
}

static void msg_drop(shk_msg *m);

void
shk_chan_close(shk_chan *c)
{
	struct shk_msg *m, *next;
	int mine;

	if (!c)
		return;
	/* A forked child's copy (c->seg is NULL when the open failed before
	 * the segment): the messages it lists are its parent's, whose ring
	 * records and heap blocks the parent still uses.  The parts' and the
	 * segment's closes below tell the same by themselves. */
	mine = !c->seg || !shk__seg_inherited(c->seg);
	if (mine && c->inl.state != MSG_IDLE)
		msg_drop(&c->inl);
	for (m = c->all_msgs; m; m = next) {
		next = m->all;
		if (mine && m->state != MSG_IDLE)
			msg_drop(m);
		free(m);
	}
	if (mine)
		held_unreserve(c);
	shk_ring_close(c->tx);
	shk_ring_close(c->rx);
	shk_bcast_close(c->b);
	shk_queue_close(c->q);
	free(c->sub_buf);
	shk_seg_close(c->seg);
	free(c);
}

/* ---- heap blocks ---- */

/* Allocates a message block of len payload bytes: *off, *payload. */
static int
blk_alloc(shk_chan *c, size_t len, uint64_t *off, void **payload)
{
	struct shk__chan_blk h;
	uint8_t *p;
	int rc;

	rc = shk_alloc(c->seg, sizeof(h) + len, off);
	if (rc)
		return rc;
	p = shk_ptr(c->seg, *off);
	h.magic = SHK__CHAN_BLK_MAGIC;
	h.tag = c->ctl.tag;
	h.len = len;
	memcpy(p, &h, sizeof(h));
	*payload = p + sizeof(h);
	return 0;
}

/*
 * blk_alloc with the heap lock's wait bounded by the call's deadline dl
 * (shk__heap_lock_dl, heap.h: at least 2 ms, at most the heap's 10 s): a
 * holder stopped inside the heap's critical section (a debugger,
 * SIGSTOP) held a send with timeout 0 for 10 s before (found by fuzz_chan;
 * test_chan heap_lock_stopped).  The lock's SHK_ETIMEDOUT comes back as
 * it is.  The thread's previous bound is restored on every return.
 */
static int
blk_alloc_dl(shk_chan *c, size_t len, uint64_t *off, void **payload, int64_t dl)
{
	int64_t was = shk__heap_lock_dl;
	int rc;

	shk__heap_lock_dl = dl;
	rc = blk_alloc(c, len, off, payload);
	shk__heap_lock_dl = was;
	return rc;
}

/* blk_alloc_dl; on a full heap, a push/pull handle first frees the blocks
 * of pullers that died holding messages (held_reclaim: its frees wait the
 * heap lock's full time, outside dl) and tries again. */
#define RECLAIM_EVERY_NS 1000000LL

static int
blk_alloc_reclaim(shk_chan *c, size_t len, uint64_t *off, void **payload,
		  int64_t dl)
{
	int rc = blk_alloc_dl(c, len, off, payload, dl);
	int64_t now;

	if (rc != SHK_ENOMEM || c->pattern != SHK_CHAN_PUSHPULL)
		return rc;
	/* at most one pass per RECLAIM_EVERY_NS per handle: a pass tests
	 * the stamp of every live holder (a system call each), and a sender
	 * retrying with timeout 0 on a full heap would pay it on every call
	 * (review: 105 us per failing send with 150 holders, 0.44 us
	 * without the pass) */
	now = shk__now_ns();
	if (now < c->reclaim_at)
		return rc;
	c->reclaim_at = now + RECLAIM_EVERY_NS;
	if (held_reclaim(c) > 0)
		rc = blk_alloc_dl(c, len, off, payload, dl);
	return rc;
}

/*
 * blk_alloc, waiting up to *timeout_ns for room (a sender whose receivers
 * have not yet released their blocks).  The heap has no waitpoint to sleep
 * on, so this polls, napping 20 us doubling to 1 ms between tries; it makes
 * system calls only once the heap is full.  A block larger than the whole
 * heap (than an empty heap could give: shk__heap_max_alloc) is SHK_ENOMEM
 * at once.  A pair sender also tests, on entering the
 * wait and then every PEER_SLICE_NS, whether the receiving end died (as
 * the ring's own wait does): the blocks that end holds in the ring are
 * then freed by nobody until a new owner comes, so waiting for them is
 * the SHK_EPEERDEAD case.  A push/pull sender reclaims the blocks of
 * dead pullers (held_reclaim) on its first try and then every
 * PEER_SLICE_NS.  *timeout_ns becomes what is left of it.  The heap lock
 * waits until the deadline too (at least 2 ms: blk_alloc_dl): a lock held
 * past it is SHK_ETIMEDOUT, or SHK_EAGAIN with timeout 0.
 */
#define PEER_SLICE_NS 50000000LL

static int
blk_alloc_wait(shk_chan *c, size_t len, uint64_t *off, void **payload,
	       int64_t *timeout_ns)
{
	int64_t dl, now, nap = 20000, peer_at = 0;
	_Atomic uint32_t never = 0; /* a futex nobody wakes: a timed nap */
	int rc, reclaim = 0;

	dl = shk__deadline(*timeout_ns);
	rc = blk_alloc_reclaim(c, len, off, payload, dl);
	if (rc == SHK_ETIMEDOUT && *timeout_ns == 0)
		return SHK_EAGAIN; /* the heap lock, held: a try */
	if (rc != SHK_ENOMEM || *timeout_ns == 0 ||
	    sizeof(struct shk__chan_blk) + len > shk__heap_max_alloc(c->seg))
		return rc;
	for (;;) {
		now = shk__now_ns();
		if (now >= peer_at) {
			if (c->pattern == SHK_CHAN_PAIR) {
				rc = shk__ring_peer_dead(c->tx);
				if (rc)
					return rc;
			}
			/* not on entering: the first try reclaimed */
			reclaim = peer_at != 0;
			peer_at = now + PEER_SLICE_NS;
		}
		if (now >= dl)
			return SHK_ETIMEDOUT;
		shk__futex_wait(&never, 0, dl - now < nap ? dl : now + nap);
		if (nap < 1000000)
			nap *= 2;
		rc = reclaim ? blk_alloc_reclaim(c, len, off, payload, dl)
			     : blk_alloc_dl(c, len, off, payload, dl);
		reclaim = 0;
		if (rc != SHK_ENOMEM)
			break;
	}
	if (rc == 0 && *timeout_ns > 0) {
		now = shk__now_ns();
		/* what is left; at least a try's worth (1 ns, not 0, which
		 * would turn SHK_ETIMEDOUT into SHK_EAGAIN) */
		*timeout_ns = dl > now ? dl - now : 1;
	}
	return rc;
}

static void
blk_free(shk_chan *c, uint64_t off)
{
	uint32_t zero = 0;

	/* clear the magic first: a stale reference to the block (a frame
	 * delivered again after a receiver died mid-release) then fails
	 * validation instead of naming a block that may be reused */
	memcpy(shk_ptr(c->seg, off), &zero, sizeof(zero));
	/* a refusal (not a block start, or already free: a forged held
	 * entry or queue reference naming one) changes nothing in the heap;
	 * the caller has no one to tell, so it is only dropped */
	(void)shk_free(c->seg, off);
}

/* Validates a reference read from shared memory; *payload on success. */
static int
blk_check(shk_chan *c, uint64_t off, uint64_t len, uint64_t check,
	  void **payload)
{
	struct shk__chan_blk h;
	uint8_t *p;

	if (check != shk__chan_check(off, len, c->ctl.tag))
		return SHK_ECORRUPT;
	if (len > c->ctl.max_msg || (off & 15) || off < c->heap_lo ||
	    off >= c->heap_hi || c->heap_hi - off < sizeof(h) ||
	    c->heap_hi - off - sizeof(h) < len)
		return SHK_ECORRUPT;
	p = shk_ptr(c->seg, off);
	if (!p)
		return SHK_ECORRUPT;
	memcpy(&h, p, sizeof(h));
	if (h.magic != SHK__CHAN_BLK_MAGIC || h.tag != c->ctl.tag ||
	    h.len != len)
		return SHK_ECORRUPT;
	*payload = p + sizeof(h);
	return 0;
}

/* ---- held messages (push/pull; protocol in the comment at the top) ---- */

/* The entry of index i (i < SHK__CHAN_HELD: the table's length, checked
 * by open_ctl() against the object's length). */
static _Atomic uint64_t *
held_w(shk_chan *c, uint32_t i)
{
	return &c->held[i].w;
}

/* Reserves a FREE entry as the handle's spare unless it has one: 1 when
 * it has one, 0 when every entry is taken (the message goes unrecorded). */
static int
held_reserve(shk_chan *c)
{
	uint32_t stamp = shk__seg_stamp(c->seg), i, k;
	uint64_t w, nw;

	if (c->spare != NO_ENT)
		return 1;
	for (k = 0; k < SHK__CHAN_HELD; k++) {
		i = (c->hint + k) % SHK__CHAN_HELD;
		/* relaxed: only a guess; the CAS below decides */
		w = atomic_load_explicit(held_w(c, i), memory_order_relaxed);
		if (SHK__HELD_ST(w) != SHK__HELD_FREE)
			continue;
		nw = SHK__HELD_W(SHK__HELD_RSVD, stamp, SHK__HELD_TAG(w) + 1);
		/* acquire: pairs with the release that made the entry FREE
		 * (a holder's release, a reclaimer's clear), so our store of
		 * off comes after their last read of it; relaxed on failure:
		 * the next entry is tried */
		if (atomic_compare_exchange_strong_explicit(
			    held_w(c, i), &w, nw, memory_order_acquire,
			    memory_order_relaxed)) {
			c->spare = i;
			c->spare_w = nw;
			c->hint = (i + 1) % SHK__CHAN_HELD;
			return 1;
		}
	}
	return 0;
}

/* Records block off of m, just received, in the spare entry (which
 * held_reserve() reserved before the pop). */
static void
held_record(shk_chan *c, shk_msg *m, uint64_t off)
{
	uint32_t i = c->spare;
	uint64_t w = c->spare_w;
	uint64_t nw = SHK__HELD_W(SHK__HELD_HELD, SHK__HELD_STAMP(w),
				  SHK__HELD_TAG(w));

	c->spare = NO_ENT;
	/* acquire: a check that the entry is still our reservation before
	 * we write its off (see "a misjudged stamp" at the top), ordered
	 * before the store below also on weakly ordered CPUs (a relaxed
	 * load may be reordered after a later store there); the CAS below
	 * decides */
	if (atomic_load_explicit(held_w(c, i), memory_order_acquire) != w)
		return;
	/* relaxed: published by the release CAS below */
	atomic_store_explicit(&c->held[i].off, off, memory_order_relaxed);
	/* release: a reclaimer that claims the entry (acquire) reads the off
	 * stored above; relaxed on failure.  It fails only if a reclaimer
	 * took our reservation for a dead one's (a misjudged live stamp):
	 * the message then goes unrecorded */
	if (atomic_compare_exchange_strong_explicit(held_w(c, i), &w, nw,
						    memory_order_release,
						    memory_order_relaxed)) {
		m->ent = i;
		m->ent_w = nw;
	}
}

/*
 * A holder's release of m's entry, before its block is freed: 1 when the
 * caller frees the block, 0 when a reclaimer claimed it first (never for a
 * live handle, but for a stamp misjudged dead): then it is not ours to
 * free.  The entry becomes the handle's spare when it has none.
 */
static int
held_clear(shk_chan *c, shk_msg *m)
{
	uint32_t i = m->ent;
	uint64_t w = m->ent_w;
	int spare = c->spare == NO_ENT;
	uint64_t nw = spare ? SHK__HELD_W(SHK__HELD_RSVD, SHK__HELD_STAMP(w),
					  SHK__HELD_TAG(w))
			    : SHK__HELD_W(SHK__HELD_FREE, 0, SHK__HELD_TAG(w));

	m->ent = NO_ENT;
	/* release: our reads of the block and of off come before the entry
	 * leaves HELD, which a reclaimer acquires; the free comes after
	 * (its own release then covers this store for whoever gets the
	 * block next).  Relaxed on failure: nothing read */
	if (!atomic_compare_exchange_strong_explicit(held_w(c, i), &w, nw,
						     memory_order_release,
						     memory_order_relaxed))
		return 0;
	if (spare) {
		c->spare = i;
		c->spare_w = nw;
	}
	return 1;
}

/* Gives the spare entry back (close). */
static void
held_unreserve(shk_chan *c)
{
	uint64_t w = c->spare_w;

	if (!c->held || c->spare == NO_ENT)
		return;
	/* release: pairs with a reserver's acquire (nothing of ours in the
	 * entry is read after); relaxed on failure: a reclaimer cleared it */
	atomic_compare_exchange_strong_explicit(
		held_w(c, c->spare), &w,
		SHK__HELD_W(SHK__HELD_FREE, 0, SHK__HELD_TAG(w)),
		memory_order_release, memory_order_relaxed);
	c->spare = NO_ENT;
}

/* Frees a block named by a dead holder's entry, after checking it as a
 * received reference is checked (the offset is read from shared memory):
 * 1 freed, 0 not (left leaked; counted corrupt). */
static int
held_free_block(shk_chan *c, uint64_t off)
{
	struct shk__chan_blk h;
	uint8_t *p;

	if ((off & 15) || off < c->heap_lo || off >= c->heap_hi ||
	    c->heap_hi - off < sizeof(h) || !(p = shk_ptr(c->seg, off))) {
		c->corrupt++;
		return 0;
	}
	memcpy(&h, p, sizeof(h));
	if (h.magic != SHK__CHAN_BLK_MAGIC || h.tag != c->ctl.tag ||
	    h.len > c->ctl.max_msg || c->heap_hi - off - sizeof(h) < h.len) {
		c->corrupt++;
		return 0;
	}
	blk_free(c, off);
	return 1;
}

/* Stamps judged during one reclaim pass (each judgement makes system
 * calls). */
#define JUDGED_MAX 16

struct judged {
	uint32_t n;
	uint32_t stamp[JUDGED_MAX];
	uint8_t alive[JUDGED_MAX];
};

static int
judge(shk_chan *c, struct judged *j, uint32_t stamp)
{
	uint32_t k;
	int alive;

	if (stamp == shk__seg_stamp(c->seg))
		return 1;
	for (k = 0; k < j->n; k++)
		if (j->stamp[k] == stamp)
			return j->alive[k];
	alive = shk__stamp_alive(c->seg, stamp);
	if (j->n < JUDGED_MAX) {
		j->stamp[j->n] = stamp;
		j->alive[j->n++] = (uint8_t)alive;
	}
	return alive;
}

/*
 * Frees the blocks held by dead pullers and clears the entries that dead
 * pullers and reclaimers left (protocol at the top).  Returns how many
 * blocks it freed; 0 for a handle without a held table or a read-only
 * one.
 */
static int
held_reclaim(shk_chan *c)
{
	uint32_t me = shk__seg_stamp(c->seg), i, st;
	struct judged j = { 0 };
	uint64_t w, nw, off;
	int freed = 0, warmed = 0;

	if (!c->held || (c->seg->flags & SHK_RDONLY))
		return 0;
	for (i = 0; i < SHK__CHAN_HELD; i++) {
		/* acquire: pairs with the release CASes of the entry's
		 * owner, so a claim below reads what they stored */
		w = atomic_load_explicit(held_w(c, i), memory_order_acquire);
		st = SHK__HELD_ST(w);
		if (st == SHK__HELD_FREE || judge(c, &j, SHK__HELD_STAMP(w)))
			continue;
		if (st != SHK__HELD_HELD) {
			/* RSVD of a dead puller (it may have popped a
			 * message: leaked) or RECL of a dead reclaimer (the
			 * block freed or leaked): cleared, nothing freed.
			 * Release: pairs with a reserver's acquire; relaxed
			 * on failure: someone else cleared it */
			nw = SHK__HELD_W(SHK__HELD_FREE, 0, SHK__HELD_TAG(w));
			atomic_compare_exchange_strong_explicit(
				held_w(c, i), &w, nw, memory_order_release,
				memory_order_relaxed);
			continue;
		}
		/* a first free sets up this thread's heap magazine, with
		 * system calls, where a kill lands most often: done before
		 * the claim, so not between it and the free (a leak) */
		if (!warmed++)
			(void)shk__heap_warm(c->seg);
		/* claim it.  Acquire: pairs with the holder's release CAS
		 * to HELD (its off); relaxed on failure: another reclaimer
		 * claimed it, or it was freed and taken again (tag) */
		nw = SHK__HELD_W(SHK__HELD_RECL, me, SHK__HELD_TAG(w));
		if (!atomic_compare_exchange_strong_explicit(
			    held_w(c, i), &w, nw, memory_order_acquire,
			    memory_order_relaxed))
			continue;
		SHK_CRASHPOINT("chan.reclaim.after_claim");
		/* relaxed: ordered by the claim's acquire; nobody writes off
		 * while the entry is RECL and ours */
		off = atomic_load_explicit(&c->held[i].off,
					   memory_order_relaxed);
		freed += held_free_block(c, off);
		SHK_CRASHPOINT("chan.reclaim.after_free");
		/* release: our read of off and the free come before the entry
		 * can be reserved again (a reserver's acquire) */
		atomic_store_explicit(
			held_w(c, i),
			SHK__HELD_W(SHK__HELD_FREE, 0, SHK__HELD_TAG(w)),
			memory_order_release);
	}
	return freed;
}

/* ---- messages ---- */

static shk_msg *
msg_get(shk_chan *c)
{
	shk_msg *m = c->free_msgs;

	if (m) {
		m->ent = NO_ENT;
		c->free_msgs = m->next;
		return m;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->c = c;
	m->ent = NO_ENT;
	m->all = c->all_msgs;
	c->all_msgs = m;
	return m;
}

static void
msg_put(shk_chan *c, shk_msg *m)
{
	m->state = MSG_IDLE;
	m->hold = 0;
	m->data = NULL;
	m->len = 0;
	m->off = 0;
	m->ent = NO_ENT;
	if (m != &c->inl) {
		m->next = c->free_msgs;
		c->free_msgs = m;
	}
}

/* Gives back what m holds: the ring record first, then the block (a kill
 * in between leaks the block rather than freeing it twice). */
static void
msg_drop(shk_msg *m)
{
	shk_chan *c = m->c;

	if (m->hold & HOLD_RING)
		shk_ring_release(c->rx);
	/* this thread's heap magazine set up before the entry's clear (a
	 * load when it is so already): a receive whose warm-up gave up (its
	 * deadline, a busy heap lock) left it to this free, whose set-up,
	 * after the clear, is a heap-lock wait and system calls in which a
	 * kill leaked the block (test release_warms_first) */
	if (m->hold & HOLD_BLOCK)
		(void)shk__heap_warm(c->seg);
	/* a recorded block: its entry leaves HELD first (held_clear) */
	if ((m->hold & HOLD_BLOCK) && (m->ent == NO_ENT || held_clear(c, m))) {
		SHK_CRASHPOINT("chan.release.after_clear");
		blk_free(c, m->off);
	}
	if (c->outstanding)
		c->outstanding--;
	msg_put(c, m);
}

void
shk_msg_release(shk_msg *msg)
{
	if (!msg || msg->state == MSG_IDLE)
		return;
	msg_drop(msg);
}

void *
shk_msg_data(shk_msg *msg)
{
	return msg ? msg->data : NULL;
}

size_t
shk_msg_len(const shk_msg *msg)
{
	return msg ? msg->len : 0;
}

static int
sends(const shk_chan *c)
{
	return c->role == SHK_CHAN_A || c->role == SHK_CHAN_B ||
	       c->role == SHK_CHAN_PUB || c->role == SHK_CHAN_PUSH;
}

static int
receives(const shk_chan *c)
{
	return c->role == SHK_CHAN_A || c->role == SHK_CHAN_B ||
	       c->role == SHK_CHAN_SUB || c->role == SHK_CHAN_PULL;
}

/* Sends the reference to block off (pair frame or queue element). */
static int
send_ref(shk_chan *c, uint64_t off, uint64_t len, int64_t timeout_ns)
{
	uint64_t check = shk__chan_check(off, len, c->ctl.tag);

	if (c->pattern == SHK_CHAN_PAIR) {
		struct shk__chan_frame f = { SHK__CHAN_FR_HEAP, (uint32_t)check,
					     len, off };

		return shk_ring_write(c->tx, &f, SHK__CHAN_FR_HEAP_LEN,
				      timeout_ns);
	} else {
		struct shk__chan_ref r = { off, len, check };

		return shk_queue_push(c->q, &r, timeout_ns);
	}
}

int
shk_chan_send(shk_chan *c, const void *buf, size_t len, int64_t timeout_ns)
{
	uint64_t off;
	void *p;
	int rc;

	if (!c || !sends(c) || (!buf && len) || timeout_ns < SHK_FOREVER)
		return SHK_EINVAL;
	if (len > c->ctl.max_msg)
		return SHK_EMSGSIZE;
	if (c->pattern == SHK_CHAN_PUBSUB) {
		rc = shk_bcast_write(c->b, buf, len, timeout_ns);
	} else if (c->pattern == SHK_CHAN_PAIR && len <= c->ctl.inline_max) {
		struct shk__chan_frame f = { SHK__CHAN_FR_INLINE, 0, len, 0 };

		rc = shk_ring_reserve(c->tx, SHK__CHAN_FR_INLINE_LEN + len, &p,
				      timeout_ns);
		if (rc)
			return rc;
		memcpy(p, &f, SHK__CHAN_FR_INLINE_LEN);
		if (len)
			memcpy((uint8_t *)p + SHK__CHAN_FR_INLINE_LEN, buf,
			       len);
		rc = shk_ring_commit(c->tx);
	} else {
		rc = blk_alloc_wait(c, len, &off, &p, &timeout_ns);
		if (rc)
			return rc;
		if (len)
			memcpy(p, buf, len);
		SHK_CRASHPOINT("chan.send.after_alloc");
		rc = send_ref(c, off, len, timeout_ns);
		if (rc)
			blk_free(c, off);
	}
	if (rc == 0)
		c->sent++;
	return rc;
}

int
shk_msg_loan(shk_chan *c, size_t len, shk_msg **msg)
{
	shk_msg *m;
	int rc;

	if (!msg)
		return SHK_EINVAL;
	*msg = NULL;
	if (!c || !sends(c))
		return SHK_EINVAL;
	if (c->pattern == SHK_CHAN_PUBSUB)
		return SHK_ENOTSUP;
	if (len > c->ctl.max_msg)
		return SHK_EMSGSIZE;
	m = msg_get(c);
	if (!m)
		return SHK_ENOMEM;
	/* no deadline (0): a loan has no timeout, and as a try (2 ms) a
	 * heap lock held a little longer under load failed it (TSan,
	 * test_chan pushpull_procs: SHK_EAGAIN where callers retry on
	 * SHK_ENOMEM); so it waits the heap lock's 10 s, as shk_alloc */
	rc = blk_alloc_reclaim(c, len, &m->off, &m->data, 0);
	if (rc) {
		msg_put(c, m);
		return rc;
	}
	m->len = len;
	m->state = MSG_LOAN;
	m->hold = HOLD_BLOCK;
	c->outstanding++;
	*msg = m;
	return 0;
}

int
shk_msg_send(shk_chan *c, shk_msg *msg, int64_t timeout_ns)
{
	int rc;

	if (!c || !msg || msg->c != c || msg->state != MSG_LOAN ||
	    timeout_ns < SHK_FOREVER)
		return SHK_EINVAL;
	rc = send_ref(c, msg->off, msg->len, timeout_ns);
	if (rc)
		return rc;
	c->sent++;
	c->outstanding--;
	msg_put(c, msg);
	return 0;
}

/* Pair: the next ring record, validated, held in c->inl. */
static int
recv_pair(shk_chan *c, int64_t timeout_ns)
{
	struct shk__chan_frame f;
	const void *rec;
	size_t n;
	void *p;
	int rc;

	rc = shk_ring_peek(c->rx, &rec, &n, timeout_ns);
	if (rc)
		return rc;
	memset(&f, 0, sizeof(f));
	if (n >= SHK__CHAN_FR_INLINE_LEN)
		memcpy(&f, rec,
		       n >= SHK__CHAN_FR_HEAP_LEN ? SHK__CHAN_FR_HEAP_LEN
						  : SHK__CHAN_FR_INLINE_LEN);
	if (f.kind == SHK__CHAN_FR_INLINE && n >= SHK__CHAN_FR_INLINE_LEN &&
	    f.len == n - SHK__CHAN_FR_INLINE_LEN &&
	    f.len <= c->ctl.inline_max) {
		c->inl.data = (uint8_t *)rec + SHK__CHAN_FR_INLINE_LEN;
		c->inl.hold = HOLD_RING;
	} else if (f.kind == SHK__CHAN_FR_HEAP && n == SHK__CHAN_FR_HEAP_LEN &&
		   f.check == (uint32_t)shk__chan_check(f.off, f.len,
							c->ctl.tag) &&
		   blk_check(c, f.off, f.len,
			     shk__chan_check(f.off, f.len, c->ctl.tag),
			     &p) == 0) {
		c->inl.data = p;
		c->inl.off = f.off;
		c->inl.hold = HOLD_RING | HOLD_BLOCK;
	} else {
		shk_ring_release(c->rx);
		c->corrupt++;
		return SHK_ECORRUPT;
	}
	c->inl.len = (size_t)f.len;
	return 0;
}

/*
 * The queue's keeper for a pull (shk__queue_pop_keep): records the popped
 * block in the spare held entry while the queue cell, KEPT, still names
 * this puller, so that no kill after the queue's consuming CAS (whose
 * wake-up system calls are where a SIGKILL usually lands) leaks the block;
 * a kill before the KEPT CAS leaves the claim READING, and the queue
 * delivers the message again.  Only a reference whose check word holds
 * is recorded (the rest of blk_check() reads the block: after the pop; a
 * reclaimer checks bounds, magic, tag and length before any free), and
 * recv_drop() takes it off again when blk_check() fails.
 */
struct recv_keep {
	shk_chan *c;
	shk_msg *m;
};

static void
recv_keep(void *arg, const void *elem)
{
	struct recv_keep *rk = arg;
	struct shk__chan_ref r;

	SHK_CRASHPOINT("chan.recv.claimed");
	memcpy(&r, elem, sizeof(r));
	/* only a reference whose check word holds (arithmetic: nothing
	 * more is read in this window): a forged one recorded here would
	 * have its block, perhaps another puller's, freed by a reclaim if
	 * we died before blk_check() refused it */
	if (rk->c->spare != NO_ENT &&
	    r.check == shk__chan_check(r.off, r.len, rk->c->ctl.tag))
		held_record(rk->c, rk->m, r.off);
	SHK_CRASHPOINT("chan.recv.kept");
}

static void
recv_drop(struct recv_keep *rk)
{
	/* HELD back to the spare RSVD (or FREE), and no free: a reference
	 * that failed its check names no block of ours */
	if (rk->m->ent != NO_ENT)
		held_clear(rk->c, rk->m);
}

int
shk_chan_recv(shk_chan *c, shk_msg **msg, int64_t timeout_ns)
{
	shk_msg *m;
	uint64_t lost = 0;
	int rc;

	if (!msg)
		return SHK_EINVAL;
	*msg = NULL;
	if (!c || !receives(c) || timeout_ns < SHK_FOREVER)
		return SHK_EINVAL;
	switch (c->pattern) {
	case SHK_CHAN_PAIR:
		if (c->inl.state != MSG_IDLE)
			return SHK_EBUSY;
		rc = recv_pair(c, timeout_ns);
		if (rc)
			return rc;
		m = &c->inl;
		break;
	case SHK_CHAN_PUBSUB:
		if (c->inl.state != MSG_IDLE)
			return SHK_EBUSY;
		rc = shk_bcast_read(c->b, c->sub_buf, (size_t)c->ctl.max_msg,
				    &lost, timeout_ns);
		c->lost += lost;
		if (rc < 0)
			return rc;
		m = &c->inl;
		m->data = c->sub_buf;
		m->len = (size_t)rc;
		break;
	default: {
		struct shk__chan_ref r;
		void *p;

		/* the handle first: a popped message must not be lost to
		 * a failed allocation; then the held entry it will take (a
		 * full table: unrecorded) */
		m = msg_get(c);
		if (!m)
			return SHK_ENOMEM;
		struct recv_keep rk = { c, m };
		const struct shk__queue_keeper k = { recv_keep, &rk };

		/* this thread's heap magazine set up now (a load when it is
		 * so already), not in the release's free, after the entry's
		 * clear, where its system calls would draw a kill.  Its heap
		 * lock waits until our deadline (at least 2 ms), not the
		 * heap's 10 s; a set-up that gave up is tried again by a
		 * later call, and the receive goes on without it (the
		 * release sets up before it clears the entry: msg_drop()) */
		int64_t dl = shk__deadline(timeout_ns), was = shk__heap_lock_dl;

		shk__heap_lock_dl = dl;
		(void)shk__heap_warm(c->seg);
		shk__heap_lock_dl = was;
		if (timeout_ns > 0) {
			/* what is left; at least 1 ns (a timed call) */
			int64_t now = shk__now_ns();

			timeout_ns = dl > now ? dl - now : 1;
		}
		held_reserve(c);
		/* the block is recorded (recv_keep) before the queue lets
		 * go of its reference: docs/chan.md, "Held messages" */
		rc = shk__queue_pop_keep(c->q, &r, timeout_ns, &k);
		if (rc) {
			msg_put(c, m);
			return rc;
		}
		SHK_CRASHPOINT("chan.recv.after_pop");
		if (blk_check(c, r.off, r.len, r.check, &p)) {
			/* not ours to free (nor anybody's): off the table */
			recv_drop(&rk);
			msg_put(c, m);
			c->corrupt++;
			return SHK_ECORRUPT;
		}
		m->data = p;
		m->len = (size_t)r.len;
		m->off = r.off;
		m->hold = HOLD_BLOCK;
		break;
	}
	}
	m->state = MSG_RECV;
	c->received++;
	c->outstanding++;
	*msg = m;
	return 0;
}

int
shk_chan_fd(shk_chan *c)
{
	if (!c)
		return SHK_EINVAL;
	switch (c->role) {
	case SHK_CHAN_A:
	case SHK_CHAN_B:
		return shk_ring_fd(c->rx);
	case SHK_CHAN_SUB:
		return shk_bcast_fd(c->b);
	case SHK_CHAN_PULL:
		return shk_queue_fd(c->q);
	default:
		return SHK_EINVAL;
	}
}

shk_seg *
shk_chan_seg(shk_chan *c)
{
	return c ? c->seg : NULL;
}

int
shk_chan_stat(shk_chan *c, shk_chan_stats *st)
{
	shk_chan_stats s;

	if (!c || !st || st->size == 0)
		return SHK_EINVAL;
	memset(&s, 0, sizeof(s));
	s.size = st->size < sizeof(s) ? st->size : (uint32_t)sizeof(s);
	s.pattern = (uint32_t)c->pattern;
	s.role = (uint32_t)c->role;
	s.mode = c->ctl.mode;
	s.cap = c->ctl.cap;
	s.max_msg = c->ctl.max_msg;
	s.inline_max = c->ctl.inline_max;
	s.sent = c->sent;
	s.received = c->received;
	s.lost = c->lost;
	s.corrupt = c->corrupt;
	s.outstanding = c->outstanding;
	if (c->rx) {
		shk_ring_stats rs = { .size = sizeof(rs) };

		if (shk_ring_stat(c->rx, &rs) == 0)
			s.fill = rs.fill;
	} else if (c->q) {
		shk_queue_stats qs = { .size = sizeof(qs) };

		if (shk_queue_info(c->q, &qs) == 0)
			s.fill = qs.len;
	}
	memcpy(st, &s, s.size);
	return 0;
}
