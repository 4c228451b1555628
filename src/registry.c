/*
 * registry.c - named objects in a segment (registry.h has the contract).
 *
 * Shared words: each entry's `state` (FREE -> CREATING -> READY -> DELETED
 * -> CREATING ...), written only under the registry lock (hdr->reg_lock,
 * lock.h).  All other entry fields are written while the entry is FREE,
 * DELETED or CREATING, under the lock, and published by the release store
 * of READY.  hdr->reg_count, the number of READY entries (a statistic for
 * shk_seg_info), is also written only under the lock, after the state
 * store it follows; recover() recounts it.  Writable handles look names up
 * and run the kind's check of an object they open under the lock, so no
 * removal (and no creator reusing the block) comes between; read-only
 * handles (tools) look up without it and re-validate the copy they took
 * (an entry still CREATING is no object yet: SHK_ENOENT, stat_nolock());
 * shk__reg_check() and shk_obj_describe() re-validate likewise, and count
 * a failed object check only if the entry still holds that object
 * afterwards.  Those lock-free copies read the entry's fields with relaxed
 * atomic loads, and a creator writes them with relaxed atomic stores
 * (ent_ld32()), so a copy that races with a creator is a torn value the
 * re-validation rejects, not a data race.  The objects' memory that the
 * lock-free readers check may still be written plainly by whoever reuses a
 * removed object's block (a creator's zero-fill, its init, a user): those
 * reads race in the C11 sense, validated after the fact; on a writable
 * handle only shk__reg_check() and shk_obj_describe() make them.
 *
 * What a killed process leaves behind: a creator killed under the lock
 * after its CREATING store leaves one CREATING entry; the next locker gets
 * SHK_EOWNERDEAD (read-only lookups meanwhile find no such object) and
 * marks every CREATING entry DELETED, returning its memory to the heap
 * (recover(): only an offset that describes a block of the heap region and
 * that no other live entry uses is freed; anything else is only marked,
 * since entries are untrusted), then recounts reg_count, which a creator
 * killed between READY and its count, or a remover killed between DELETED
 * and its count, left one off.  Four kills leak one block (no damage:
 * shk_seg_check says ok): a creator killed between
 * shk__heap_alloc_aligned() and its CREATING store (the allocator has
 * linearised, no entry names the block yet: a few stores, the memset
 * comes after CREATING); a creator whose init failed, killed between
 * DELETED and the free; a remover killed between DELETED and the free; a
 * recoverer killed between DELETED and the free.  The block keeps the
 * owner stamp of its allocation, the creator's, so the heap scan
 * (shk__heap_scan) counts it as dead_owner at once in the three cases
 * where the creator is the dead process, but a dead remover's leak only
 * once the creator's handle is gone too: while the creator lives it is an
 * ordinary live block (test remover_killed).  Stamping it with the
 * remover's own stamp would write heap metadata (a large block's header
 * word 1, which heap lock holders rewrite when a neighbour splits or
 * merges; a small block's side word) from outside the heap.  An entry's
 * state other than FREE, CREATING, READY or DELETED is damage: lookups
 * that reach it return SHK_ECORRUPT, scans skip it.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "lock.h"

#define LOCK_TIMEOUT_NS 5000000000LL
/* A clock step back up to this far keeps a slot's creation times rising
 * (created_stamp()) */
#define CREATED_SKEW_NS 1000000000ULL

/* Each kind's consistency check, linked in when the kind's module is. */
#define KIND_CHECK(k)                                                          \
	SHK_HIDDEN int shk__kind_check_##k(shk_seg *, void *,                  \
					   const shk_obj_info *)               \
		__attribute__((weak));
KIND_CHECK(array)
KIND_CHECK(ring)
KIND_CHECK(queue)
KIND_CHECK(stack)
KIND_CHECK(bcast)
KIND_CHECK(map)
KIND_CHECK(pool)
KIND_CHECK(sync)
KIND_CHECK(chan)
#undef KIND_CHECK

/*
 * Each kind's busy hook (registry.h, shk__obj_busy_fn), for the kinds
 * whose objects record their parties.  Strong references, unlike the
 * checks: a program linked with libshmkit.a that removes objects without
 * using their kinds must still refuse to remove one in use (a weak hook
 * would be left out of such a link, and every object judged unused, as
 * with shk__chan_parts below).
 */
#define KIND_BUSY(k)                                                           \
	SHK_HIDDEN int shk__kind_busy_##k(shk_seg *, void *,                   \
					  const shk_obj_info *);
KIND_BUSY(ring)
KIND_BUSY(bcast)
KIND_BUSY(queue)
KIND_BUSY(stack)
KIND_BUSY(sync)
#undef KIND_BUSY

/* The parts of channel `name` (chan.c).  A strong reference: a program
 * linked with libshmkit.a that only removes objects must still remove a
 * channel's parts with it (a weak one left chan.o out of such a link, and
 * the parts behind; review finding). */
SHK_HIDDEN int shk__chan_parts(const char *name,
			       struct shk__obj_part parts[SHK__OBJ_PARTS_MAX]);

static shk__obj_check_fn
kind_check(uint32_t kind)
{
	switch (kind) {
	case SHK_KIND_ARRAY:
		return shk__kind_check_array;
	case SHK_KIND_RING:
		return shk__kind_check_ring;
	case SHK_KIND_QUEUE:
		return shk__kind_check_queue;
	case SHK_KIND_STACK:
		return shk__kind_check_stack;
	case SHK_KIND_BCAST:
		return shk__kind_check_bcast;
	case SHK_KIND_MAP:
		return shk__kind_check_map;
	case SHK_KIND_POOL:
		return shk__kind_check_pool;
	case SHK_KIND_CHAN:
		return shk__kind_check_chan;
	default:
		if (kind >= SHK_KIND_MUTEX && kind <= SHK_KIND_ONCE)
			return shk__kind_check_sync;
		return NULL;
	}
}

/* A channel's parts are judged by their own kinds (obj_busy()). */
static shk__obj_busy_fn
kind_busy(uint32_t kind)
{
	switch (kind) {
	case SHK_KIND_RING:
		return shk__kind_busy_ring;
	case SHK_KIND_BCAST:
		return shk__kind_busy_bcast;
	case SHK_KIND_QUEUE:
		return shk__kind_busy_queue;
	case SHK_KIND_STACK:
		return shk__kind_busy_stack;
	default:
		if (kind >= SHK_KIND_MUTEX && kind <= SHK_KIND_ONCE)
			return shk__kind_busy_sync;
		return NULL;
	}
}

const char *
shk_kind_name(uint32_t kind)
{
	static const char *const names[] = {
		[SHK_KIND_NONE] = "none",       [SHK_KIND_BLOB] = "blob",
		[SHK_KIND_ARRAY] = "array",     [SHK_KIND_RING] = "ring",
		[SHK_KIND_QUEUE] = "queue",     [SHK_KIND_STACK] = "stack",
		[SHK_KIND_BCAST] = "bcast",     [SHK_KIND_MAP] = "map",
		[SHK_KIND_POOL] = "pool",       [SHK_KIND_MUTEX] = "mutex",
		[SHK_KIND_RWLOCK] = "rwlock",   [SHK_KIND_SEM] = "sem",
		[SHK_KIND_BARRIER] = "barrier", [SHK_KIND_LATCH] = "latch",
		[SHK_KIND_EVENT] = "event",     [SHK_KIND_COND] = "cond",
		[SHK_KIND_ONCE] = "once",       [SHK_KIND_CHAN] = "chan",
	};

	if (kind < sizeof(names) / sizeof(names[0]) && names[kind])
		return names[kind];
	return "unknown";
}

static struct shk__reg_ent *
ents(shk_seg *seg)
{
	return (struct shk__reg_ent *)(seg->base + seg->reg_off);
}

static uint32_t
name_hash(const char *name)
{
	return (uint32_t)shk__hash64(name, strlen(name), 0x6f626a);
}

/*
 * Entry fields other than state.  Lock-free readers (read-only handles,
 * shk__reg_check(), shk_obj_describe(), shk__obj_live()) copy them while a
 * creator, under the lock, may be writing the same slot: they read a copy
 * and then re-validate it (seqlock style).  A plain read racing with a
 * write is undefined behaviour in C11 (and what TSan reports), so every
 * access that can overlap one goes through these relaxed atomic loads and
 * stores, one per field (a name byte by byte); a copy torn by a creator is
 * then only a stale value, which the re-validation rejects.  relaxed: the
 * order comes from the slot's version and state, not from these.
 *
 * The protocol is Boehm's seqlock, with created_ns as the version (it
 * rises with every creation in the slot, created_stamp()) and state as
 * the "writer inside" mark (anything but READY).  Writer, a creator under
 * the lock, in a slot left FREE or DELETED (by a remover, recover() or a
 * failed init, all before our lock acquire): a release store of created_ns
 * (carries that FREE or DELETED to a reader that acquires the new
 * version), a release fence, then the other field stores (a reader that
 * copied one of them then sees the new version on its re-read), the
 * release store of CREATING, a release fence before the object's memset
 * and init, and the release store of READY.  Reader (ent_begin(), then
 * fill_info(), then state_after_copy() and its re-read of created_ns): an
 * acquire load of created_ns, an acquire load of state that must be READY,
 * the relaxed field loads, an acquire fence, and an acquire load of state
 * and a load of created_ns that must show READY and the same version.  A
 * copy that passes is all one creation's.  Both fences came in after a
 * memory-ordering audit: with the creator's field stores ordered by
 * nothing but its acquire-only lock CAS, a reader on a machine that is not
 * multi-copy atomic (POWER) could accept a torn copy, such as a new
 * offset under the old name and kind.  Accesses under the lock (which
 * excludes every writer) stay plain.
 */
static inline uint32_t
ent_ld32(const uint32_t *p)
{
	return atomic_load_explicit((_Atomic uint32_t *)(uintptr_t)p,
				    memory_order_relaxed);
}

static inline uint64_t
ent_ld64(const uint64_t *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)p,
				    memory_order_relaxed);
}

static inline void
ent_st32(uint32_t *p, uint32_t v)
{
	atomic_store_explicit((_Atomic uint32_t *)(uintptr_t)p, v,
			      memory_order_relaxed);
}

static inline void
ent_st64(uint64_t *p, uint64_t v)
{
	atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)p, v,
			      memory_order_relaxed);
}

static inline char
ent_ldc(const char *p)
{
	return (char)atomic_load_explicit((_Atomic unsigned char *)(uintptr_t)p,
					  memory_order_relaxed);
}

/* 1 when entry e's name (read as above) is name. */
static int
ent_name_is(const struct shk__reg_ent *e, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(e->name); i++) {
		char c = ent_ldc(&e->name[i]);

		if (c != name[i])
			return 0;
		if (c == '\0')
			return 1;
	}
	return 1; /* 64 bytes equal: strncmp's answer */
}

/*
 * The creation time of a new object in entry e (the lock held): now on
 * CLOCK_REALTIME, or one ns after the previous object of the slot (a
 * DELETED entry keeps its created_ns) when the clock reads no later than
 * that, by less than CREATED_SKEW_NS.  A stale handle (registry.h,
 * shk__obj_ref) tells its object from a later one in the same slot by
 * created_ns (offset and name hash are often the same: the same name
 * probes to the same slot, and the heap hands the same block out again),
 * so two creations in one tick of a coarse clock, or after the clock
 * stepped back a little, must not get the same time.  A step back of
 * CREATED_SKEW_NS or more is taken as it is, so that creation times do
 * not run ahead of the clock for long; an object then created at exactly
 * the ns an earlier object of its slot got, at the same offset and with
 * the same name hash, would pass for it (docs/registry.md).
 */
static uint64_t
created_stamp(const struct shk__reg_ent *e)
{
	uint64_t now = (uint64_t)shk__realtime_ns();
	/* relaxed (ent_ld64()): only lock holders write it, and we hold it */
	uint64_t prev = ent_ld64(&e->created_ns);

	if (now <= prev && prev - now < CREATED_SKEW_NS && prev != UINT64_MAX)
		return prev + 1;
	return now;
}

void
shk__reg_init(uint8_t *base, uint64_t reg_off, uint32_t reg_cap)
{
	/* fresh memory is zero: every entry FREE; be explicit anyway */
	memset(base + reg_off, 0,
	       (size_t)reg_cap * sizeof(struct shk__reg_ent));
}

/* Copies entry e (relaxed field loads, see ent_ld32()). */
static void
fill_info(const struct shk__reg_ent *e, uint32_t slot, shk_obj_info *info)
{
	size_t i;

	info->size = sizeof(*info); /* the bytes filled: the header's rule */
	info->kind = ent_ld32(&e->kind);
	info->type_id = ent_ld64(&e->type_id);
	info->elem_len = ent_ld32(&e->elem_len);
	info->align = ent_ld32(&e->align);
	info->cap = ent_ld64(&e->cap);
	info->off = ent_ld64(&e->off);
	info->len = ent_ld64(&e->len);
	info->created_ns = ent_ld64(&e->created_ns);
	info->creator_pid = ent_ld32(&e->creator_pid);
	info->slot = slot;
	for (i = 0; i < sizeof(info->name); i++)
		info->name[i] = ent_ldc(&e->name[i]);
	info->name[sizeof(info->name) - 1] = '\0';
}

/* Entry fields must describe memory inside the heap region. */
static int
ent_valid(shk_seg *seg, const shk_obj_info *i)
{
	if (i->kind == SHK_KIND_NONE || i->kind > SHK_KIND_MAX)
		return 0;
	if (i->off < seg->heap_off || i->off > seg->heap_off + seg->heap_len ||
	    i->len > seg->heap_off + seg->heap_len - i->off || i->len == 0)
		return 0;
	if (i->off % 64)
		return 0;
	/* a blob is elem_len * cap bytes (shk_obj_open stores exactly that
	 * len), and its users size their views by elem_len * cap: more than
	 * len would reach past the block, and the mapping */
	if (i->kind == SHK_KIND_BLOB &&
	    (i->elem_len == 0 || i->cap > i->len / i->elem_len))
		return 0;
	if (shk__name_check(i->name, 0))
		return 0;
	return 1;
}

/* Probe for name; returns the slot or -1.  *free_slot gets the first
 * reusable slot seen (or -1).  Caller holds the lock (or re-validates). */
static int
probe(shk_seg *seg, const char *name, uint32_t h, int *free_slot)
{
	uint32_t mask = seg->reg_cap - 1, i;
	struct shk__reg_ent *t = ents(seg);

	*free_slot = -1;
	for (i = 0; i < seg->reg_cap; i++) {
		uint32_t s = (h + i) & mask;
		/* acquire: pairs with the release stores of state below */
		uint32_t st =
			atomic_load_explicit(&t[s].state, memory_order_acquire);
		if (st == SHK__ENT_FREE) {
			if (*free_slot < 0)
				*free_slot = (int)s;
			return -1;
		}
		if (st == SHK__ENT_DELETED) {
			if (*free_slot < 0)
				*free_slot = (int)s;
			continue;
		}
		/* relaxed field loads: read-only handles probe without
		 * the lock (stat_nolock()) */
		if (ent_ld32(&t[s].name_hash) == h && ent_name_is(&t[s], name))
			return (int)s;
	}
	return -1;
}

/*
 * 1 when off, the memory of half-made entry i, may go back to the heap: the
 * entry describes memory inside the heap region (ent_valid) and no other
 * READY or CREATING entry names the same offset (a damaged off must not
 * free a live object's block, nor free one block twice).
 */
static int
undo_off_ok(shk_seg *seg, uint32_t i, const shk_obj_info *info)
{
	struct shk__reg_ent *t = ents(seg);
	uint32_t j;

	if (!ent_valid(seg, info))
		return 0;
	for (j = 0; j < seg->reg_cap; j++) {
		/* relaxed: we hold the lock; state only changes under it */
		uint32_t st =
			atomic_load_explicit(&t[j].state, memory_order_relaxed);

		if (j != i &&
		    (st == SHK__ENT_READY || st == SHK__ENT_CREATING) &&
		    t[j].off == info->off)
			return 0;
	}
	return 1;
}

/*
 * After a dead registry-lock owner: undo half-made entries, then recount
 * the objects.  A holder killed between a state store and its count's
 * update (READY then +1 in creation, DELETED then -1 in removal) left
 * reg_count one off, and nothing else corrects it: a count one low then
 * wrapped to 4294967295 at the next removal (test count_after_kill).  The
 * holder dies holding the lock, so the next locker gets SHK_EOWNERDEAD and
 * runs this; a recoverer killed here leaves the lock naming it, and the
 * next one starts over.
 */
static void
recover(shk_seg *seg)
{
	struct shk__reg_ent *t = ents(seg);
	shk_obj_info info;
	uint32_t i, st, nready = 0;

	for (i = 0; i < seg->reg_cap; i++) {
		/* relaxed: we hold the lock; state only changes under it */
		st = atomic_load_explicit(&t[i].state, memory_order_relaxed);
		nready += st == SHK__ENT_READY;
		if (st != SHK__ENT_CREATING)
			continue;
		/* one copy of the untrusted fields, checked, then used */
		memset(&info, 0, sizeof(info));
		fill_info(&t[i], i, &info);
		/* DELETED before the free: a recoverer killed in between
		 * leaks the block, where the other order would let the next
		 * recoverer free it again after someone reallocated it.
		 * release: pairs with the acquire loads in probe() */
		atomic_store_explicit(&t[i].state, SHK__ENT_DELETED,
				      memory_order_release);
		SHK_CRASHPOINT("reg.recover.before_free");
		if (undo_off_ok(seg, i, &info))
			shk_free(seg, info.off);
	}
	/* relaxed: a statistic, written only under the lock; shk_seg_info()
	 * reads a snapshot */
	atomic_store_explicit(&shk__hdr(seg)->reg_count, nready,
			      memory_order_relaxed);
}

static int
reg_lock(shk_seg *seg)
{
	_Atomic uint32_t *w = &shk__hdr(seg)->reg_lock;
	int rc;

	pthread_mutex_lock(&seg->reg_mu);
	rc = shk__lock_acquire(seg, w, LOCK_TIMEOUT_NS);
	if (rc == SHK_EOWNERDEAD) {
		recover(seg);
		shk__lock_consistent(seg, w);
		rc = 0;
	}
	/* SHK_EDEADLK: the word names this handle, which does not hold it
	 * (reg_mu serialises the handle's threads, and no holder takes the
	 * lock again): a forged or damaged word (test_registry
	 * lock_names_self; it leaked out of the opens as an undocumented
	 * code) */
	if (rc == SHK_EDEADLK)
		rc = SHK_ECORRUPT;
	if (rc)
		pthread_mutex_unlock(&seg->reg_mu);
	return rc;
}

static void
reg_unlock(shk_seg *seg)
{
	shk__lock_release(seg, &shk__hdr(seg)->reg_lock);
	pthread_mutex_unlock(&seg->reg_mu);
}

static int
matches(const shk_obj_info *have, const shk_obj_desc *want)
{
	if (have->kind != want->kind || have->type_id != want->type_id)
		return 0;
	if (want->elem_len && want->elem_len != have->elem_len)
		return 0;
	if (want->cap && want->cap != have->cap)
		return 0;
	return 1;
}

static int
desc_check(const shk_obj_desc *d)
{
	if (!d || d->size < sizeof(*d))
		return SHK_EINVAL;
	if (d->kind == SHK_KIND_NONE || d->kind > SHK_KIND_MAX)
		return SHK_EINVAL;
	if (d->elem_len > UINT32_MAX || d->align > 4096 ||
	    (d->align & (d->align - 1)))
		return SHK_EINVAL;
	return 0;
}

/*
 * The start of a lock-free copy of entry e (the seqlock reader at
 * ent_ld32()): loads the slot's version into *c, then returns the state.
 * The caller copies the fields (fill_info()) only when the state is READY
 * and takes the copy only if state_after_copy() and a re-read of
 * created_ns then show READY and *c again.
 */
static uint32_t
ent_begin(struct shk__reg_ent *e, uint64_t *c)
{
	/* acquire: pairs with the creator's release store of created_ns,
	 * so the FREE or DELETED that came before that creation is visible
	 * to the state load below (a READY we then read is this version's
	 * or a later one's, never an earlier one's) */
	*c = atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)&e->created_ns,
				  memory_order_acquire);
	/* acquire: pairs with the release store of READY, so the fields of
	 * the creation whose READY we read are visible to the copy */
	return atomic_load_explicit(&e->state, memory_order_acquire);
}

/*
 * The state of entry e, read after the caller copied its fields, for a
 * re-validation of that copy (the caller then re-reads created_ns).  An
 * acquire fence orders our reads of the entry (and of the object's memory)
 * before the re-reads (a seqlock reader, as in treiber.c): it pairs with
 * the creator's release fences (ent_ld32()), so a field or object byte we
 * copied from a later creation makes the re-read of created_ns show that
 * creation's version; a remover's DELETED store comes before its free,
 * and so before anything the block's next owner writes.  The state load
 * itself is acquire, so that the caller's re-read of created_ns (and of
 * off, name_hash: entry_is()) is no older than the creation whose READY it
 * returns: a relaxed one could return a later creation's READY with this
 * creation's created_ns.  Under TSan, which ignores standalone fences
 * (and gcc 12 refuses this one with -Werror=tsan), the acquire load
 * alone; an RMW, as map.c uses there, would fault on a read-only handle's
 * mapping.
 */
static uint32_t
state_after_copy(struct shk__reg_ent *e)
{
#ifndef SHK__TSAN
	atomic_thread_fence(memory_order_acquire);
#endif
	/* acquire: see above */
	return atomic_load_explicit(&e->state, memory_order_acquire);
}

static int entry_still(struct shk__reg_ent *e, const shk_obj_info *info,
		       uint32_t hash);
static int stat_nolock(shk_seg *seg, const char *name, shk_obj_info *info);
#ifdef SHK_TEST_HOOKS
void (*shk__reg_check_hook)(shk_seg *seg, uint32_t slot); /* registry.h */
void (*shk__reg_attach_hook)(shk_seg *seg);               /* registry.h */
#endif

/* An object found in an entry copied into *info (READY when copied): the
 * entry's fields, the type, then the kind's check. */
static int
found_ok(shk_seg *seg, const shk_obj_desc *want, shk__obj_check_fn check,
	 const shk_obj_info *info)
{
	if (!ent_valid(seg, info))
		return SHK_ECORRUPT;
	if (!matches(info, want))
		return SHK_ETYPE;
	return check ? check(seg, seg->base + info->off, info) : 0;
}

/* Opening an object found in entry e on a read-only handle, which cannot
 * take the lock: the check runs on memory that a removal may have freed
 * and someone reused meanwhile.  Such an object is gone, not damaged:
 * whatever the check said of the new owner's bytes, SHK_ENOENT (test
 * open_during_remove; it returned SHK_ECORRUPT).  A removal after this
 * re-check is the caller's race (docs/registry.md).  (A writable handle
 * runs found_ok() under the lock, where no removal can come between.) */
static int
open_found(shk_seg *seg, struct shk__reg_ent *e, uint32_t h,
	   const shk_obj_desc *want, shk__obj_check_fn check,
	   shk_obj_info *info, void **mem)
{
	int rc;

#ifdef SHK_TEST_HOOKS
	if (shk__reg_check_hook)
		shk__reg_check_hook(seg, info->slot);
#endif
	rc = found_ok(seg, want, check, info);
	if (!entry_still(e, info, h))
		return SHK_ENOENT;
	if (rc)
		return rc;
	if (mem)
		*mem = seg->base + info->off;
	return 0;
}

int
shk__obj_open_dflt(shk_seg *seg, const char *name, unsigned flags,
		   const shk_obj_desc *want,
		   uint64_t (*defaults)(shk_obj_desc *), shk__obj_init_fn init,
		   void *arg, shk__obj_check_fn check, shk_obj_info *info,
		   void **mem)
{
	int lookup = !(flags & SHK_CREATE) ||
		     (!(flags & SHK_EXCL) && (!want->elem_len || !want->cap));
	shk_obj_desc w;
	uint64_t len;
	int rc, tries;

	for (tries = 0;; tries++) {
		rc = SHK_ENOENT;
		if (lookup)
			rc = shk__obj_open(seg, name, flags & ~SHK_CREATE, want,
					   0, NULL, NULL, check, info, mem);
		if (rc != SHK_ENOENT || !(flags & SHK_CREATE))
			return rc;
		w = *want;
		len = defaults(&w);
		if (!len)
			return SHK_EINVAL;
		rc = shk__obj_open(seg, name, flags, &w, len, init, arg, check,
				   info, mem);
		/* made meanwhile by a creator of another geometry, which
		 * our zero fields accept: look it up again */
		if (rc != SHK_ETYPE || !lookup || tries >= 99)
			return rc;
	}
}

int
shk__obj_open(shk_seg *seg, const char *name, unsigned flags,
	      const shk_obj_desc *want, uint64_t len, shk__obj_init_fn init,
	      void *arg, shk__obj_check_fn check, shk_obj_info *info,
	      void **mem)
{
	struct shk__reg_ent *e;
	shk_obj_info tmp;
	uint32_t h;
	int rc, slot, free_slot;
	uint64_t off = 0;
	size_t i, nlen;

	if (!seg || (flags & ~(SHK_CREATE | SHK_EXCL | SHK__OPEN_VIEW)))
		return SHK_EINVAL;
	if ((flags & SHK_EXCL) && !(flags & SHK_CREATE))
		return SHK_EINVAL;
	rc = shk__name_check(name, 0);
	if (rc)
		return rc;
	rc = desc_check(want);
	if (rc)
		return rc;
	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	h = name_hash(name);
	nlen = strlen(name);
	if (seg->slot == UINT32_MAX) {
		/* A read-only handle can neither take the registry lock (a
		 * write) nor create, nor attach to a structure (a role stamp,
		 * a reader slot: writes): only shk_obj_open's plain view of
		 * an existing object, found without the lock as
		 * shk_obj_stat finds it. */
		if ((flags & SHK_CREATE) || !(flags & SHK__OPEN_VIEW))
			return SHK_EPERM;
		rc = stat_nolock(seg, name, info);
		if (rc)
			return rc;
		return open_found(seg, &ents(seg)[info->slot], h, want, check,
				  info, mem);
	}
	rc = reg_lock(seg);
	if (rc)
		return rc;
	slot = probe(seg, name, h, &free_slot);
	if (slot >= 0) {
		e = &ents(seg)[slot];
		/* relaxed: we hold the lock; state only changes under it.
		 * probe() stops at FREE and DELETED; a CREATING entry
		 * cannot be seen under the lock (reg_lock recovers it), so
		 * anything but READY is damage. */
		if (atomic_load_explicit(&e->state, memory_order_relaxed) !=
		    SHK__ENT_READY) {
			reg_unlock(seg);
			return SHK_ECORRUPT;
		}
		fill_info(e, (uint32_t)slot, info);
		/* The kind's check under the lock: no removal, and so no
		 * creator reusing the block, can come between our lookup and
		 * the check's reads.  Run after the lock, the check read the
		 * object's memory while a creator zero-filled and formatted
		 * it for a new object (a data race, which TSan reported:
		 * test threads_create_remove_open), and a create-or-open
		 * whose object was removed meanwhile answered SHK_ENOENT.
		 * The cost: the registry is held while the kind's check
		 * runs (O(cap) for a queue, pool, stack or map). */
		rc = (flags & SHK_EXCL) ? SHK_EEXIST
					: found_ok(seg, want, check, info);
		reg_unlock(seg);
		if (rc == 0 && mem)
			*mem = seg->base + info->off;
		return rc;
	}
	if (!(flags & SHK_CREATE)) {
		rc = SHK_ENOENT;
		goto out;
	}
	if (free_slot < 0) {
		rc = SHK_ENOSPC;
		goto out;
	}
	if (len == 0 || len > seg->heap_len) {
		rc = len ? SHK_ENOMEM : SHK_EINVAL;
		goto out;
	}
	rc = shk__heap_alloc_aligned(seg, len, 64, &off);
	if (rc)
		goto out;
	/* From here to the CREATING store a kill leaks the block (no entry
	 * names it yet): keep it to a few stores, the memset comes after. */
	e = &ents(seg)[free_slot];
	/* The slot is FREE or DELETED here; the seqlock writer of
	 * ent_ld32().  release: the new version, created_ns, first; it
	 * carries the FREE or DELETED store (before our lock acquire) to a
	 * reader's acquire load of it (ent_begin()) */
	atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)&e->created_ns,
			      created_stamp(e), memory_order_release);
	/* release fence: created_ns (and that FREE or DELETED) before the
	 * field stores below; pairs with the acquire fence of a reader that
	 * copies one of them (state_after_copy()), whose re-read of
	 * created_ns then shows the new version */
	atomic_thread_fence(memory_order_release);
	/* relaxed stores (ent_st32()): lock-free readers may be copying
	 * this slot's previous entry; ordered by the fence above */
	ent_st32(&e->kind, want->kind);
	ent_st64(&e->type_id, want->type_id);
	ent_st32(&e->elem_len, (uint32_t)want->elem_len);
	ent_st32(&e->align, (uint32_t)want->align);
	ent_st64(&e->cap, want->cap);
	ent_st64(&e->off, off);
	ent_st64(&e->len, len);
	ent_st32(&e->creator_pid, (uint32_t)getpid());
	ent_st32(&e->name_hash, h);
	for (i = 0; i < sizeof(e->name); i++)
		atomic_store_explicit(
			(_Atomic unsigned char *)(uintptr_t)&e->name[i],
			(unsigned char)(i < nlen ? name[i] : 0),
			memory_order_relaxed);
	/* release: publishes the fields for recover() and tools */
	atomic_store_explicit(&e->state, SHK__ENT_CREATING,
			      memory_order_release);
	/* release fence: CREATING before the memset and init of the block
	 * (a release store orders only what precedes it).  A lock-free
	 * reader that checked the block's previous object (open_found(),
	 * shk__reg_check(), shk_obj_describe()) and read bytes we write
	 * here sees CREATING or later on its re-check, after its acquire
	 * fence (state_after_copy()).  The memset and init are plain
	 * writes, so this holds for the hardware, not as a C11
	 * happens-before (those reads race: file comment). */
	atomic_thread_fence(memory_order_release);
	memset(seg->base + off, 0, (size_t)len);
	fill_info(e, (uint32_t)free_slot, info);
	SHK_CRASHPOINT("reg.create.before_init");
	if (init) {
		rc = init(seg, seg->base + off, info, arg);
		if (rc) {
			/* DELETED before the free: a kill in between leaks
			 * the block, where a CREATING entry left behind
			 * would have recover() free it a second time */
			/* release: pairs with the acquire loads in probe() */
			atomic_store_explicit(&e->state, SHK__ENT_DELETED,
					      memory_order_release);
			SHK_CRASHPOINT("reg.create.undo");
			shk_free(seg, off);
			goto out;
		}
	}
	/* release: publishes the initialised object; pairs with the acquire
	 * load in probe() of every later opener */
	atomic_store_explicit(&e->state, SHK__ENT_READY, memory_order_release);
	/* a kill here leaves the count one low: recover() recounts */
	SHK_CRASHPOINT("reg.create.ready");
	/* relaxed: a statistic, changed only under the lock */
	atomic_fetch_add_explicit(&shk__hdr(seg)->reg_count, 1,
				  memory_order_relaxed);
	if (mem)
		*mem = seg->base + off;
	rc = 0;
out:
	reg_unlock(seg);
	return rc;
}

int
shk_obj_open(shk_seg *seg, const char *name, unsigned flags,
	     const shk_obj_desc *desc, shk_obj_info *info, void **ptr)
{
	uint64_t len;

	if (!desc || desc->size < sizeof(*desc))
		return SHK_EINVAL;
	if ((flags & SHK_CREATE) && desc->kind != SHK_KIND_BLOB)
		return SHK_EINVAL;
	if (flags & SHK_CREATE) {
		if (!desc->elem_len || !desc->cap ||
		    desc->cap > UINT64_MAX / desc->elem_len)
			return SHK_EINVAL;
	}
	if (flags & ~(SHK_CREATE | SHK_EXCL))
		return SHK_EINVAL;
	len = desc->elem_len * desc->cap;
	return shk__obj_open(seg, name, flags | SHK__OPEN_VIEW, desc, len, NULL,
			     NULL, kind_check(desc->kind), info, ptr);
}

/*
 * Lock-free lookup for read-only handles: copy, then re-validate.  The
 * copy counts once the entry still has the state read after it, with the
 * same creation time and name (a copy torn by a remover or creator is
 * taken again).  READY is the object.  CREATING is no object yet: a
 * creation in progress (the creator holds the lock and publishes READY
 * when done) or one whose creator died and that no writable handle has
 * recovered yet (recover() runs only under the lock, which read-only
 * handles cannot take): SHK_ENOENT, as shk_obj_next skips it and a
 * writable lookup finds no such object (it waits for the live creator's
 * READY, or recovers the dead one's entry).  This returned SHK_EAGAIN for
 * a dead creator's entry, for good while only read-only handles looked
 * (test rdonly_creating).  A state no writer stores is damage,
 * SHK_ECORRUPT, as on a writable handle.  SHK_EAGAIN only for copies that
 * kept tearing.
 */
static int
stat_nolock(shk_seg *seg, const char *name, shk_obj_info *info)
{
	uint32_t h = name_hash(name);
	int slot, free_slot, tries;

	for (tries = 0; tries < 8; tries++) {
		struct shk__reg_ent *e;
		uint32_t st, st0;
		uint64_t c;

		slot = probe(seg, name, h, &free_slot);
		if (slot < 0)
			return SHK_ENOENT;
		e = &ents(seg)[slot];
		st0 = ent_begin(e, &c);
		fill_info(e, (uint32_t)slot, info);
		st = state_after_copy(e);
		/* relaxed: ordered after the copy by state_after_copy() */
		if (st != st0 || ent_ld64(&e->created_ns) != c ||
		    info->created_ns != c || strcmp(info->name, name) != 0)
			continue; /* torn: the slot changed hands */
		if (st == SHK__ENT_READY)
			return ent_valid(seg, info) ? 0 : SHK_ECORRUPT;
		if (st == SHK__ENT_CREATING)
			return SHK_ENOENT;
		if (st > SHK__ENT_DELETED)
			return SHK_ECORRUPT;
		/* DELETED since probe() read it: look again */
	}
	return SHK_EAGAIN;
}

int
shk_obj_stat(shk_seg *seg, const char *name, shk_obj_info *info)
{
	int slot, free_slot, rc;

	if (!seg || !info || info->size < sizeof(*info))
		return SHK_EINVAL;
	rc = shk__name_check(name, 0);
	if (rc)
		return rc;
	if (seg->slot == UINT32_MAX)
		return stat_nolock(seg, name, info);
	rc = reg_lock(seg);
	if (rc)
		return rc;
	slot = probe(seg, name, name_hash(name), &free_slot);
	/* relaxed: we hold the lock; anything but READY here is damage,
	 * as in shk__obj_open() */
	if (slot >= 0 &&
	    atomic_load_explicit(&ents(seg)[slot].state,
				 memory_order_relaxed) != SHK__ENT_READY) {
		reg_unlock(seg);
		return SHK_ECORRUPT;
	}
	if (slot >= 0)
		fill_info(&ents(seg)[slot], (uint32_t)slot, info);
	reg_unlock(seg);
	if (slot < 0)
		return SHK_ENOENT;
	return ent_valid(seg, info) ? 0 : SHK_ECORRUPT;
}

int
shk_obj_next(shk_seg *seg, uint32_t *cursor, shk_obj_info *info)
{
	if (!seg || !cursor || !info || info->size < sizeof(*info))
		return SHK_EINVAL;
	while (*cursor < seg->reg_cap) {
		uint32_t s = (*cursor)++, tries = 0;
		struct shk__reg_ent *e = &ents(seg)[s];
		uint64_t c;
		uint32_t st;

	again:
		/* acquire loads: the seqlock reader's start (ent_begin()) */
		st = ent_begin(e, &c);
		if (st == SHK__ENT_READY || st > SHK__ENT_DELETED) {
			fill_info(e, s, info);
			/* a copy torn by a remover and creator is taken
			 * again (the seqlock reader at ent_ld32(); it was
			 * taken as it was until 2026-11-25); an entry that
			 * keeps changing is skipped, as one removed */
			if (st == SHK__ENT_READY &&
			    (info->created_ns != c ||
			     !entry_still(e, info, ent_ld32(&e->name_hash)))) {
				if (++tries < 8)
					goto again;
				continue;
			}
			/* as shk_obj_stat: the entry must describe memory
			 * inside the heap and carry a valid name; a state
			 * word no writer stores is damage too.  The cursor
			 * is past it, so the caller may go on. */
			if (st != SHK__ENT_READY || !ent_valid(seg, info))
				return SHK_ECORRUPT;
			return 1;
		}
	}
	return 0;
}

/* Removes READY entry e (the lock held): DELETED, the count, the block. */
static int
remove_locked(shk_seg *seg, struct shk__reg_ent *e)
{
	uint64_t off = e->off;
	uint32_t n;

	/* release: pairs with the acquire loads in probe() */
	atomic_store_explicit(&e->state, SHK__ENT_DELETED,
			      memory_order_release);
	/* a kill here leaves the count one high: recover() recounts */
	SHK_CRASHPOINT("reg.remove.deleted");
	/* relaxed: a statistic, changed only under the lock (so a load and
	 * a store are one step).  Never below 0: a count damaged low must
	 * not wrap to 4294967295 in shk_seg_info() and `shmkit ls`. */
	n = atomic_load_explicit(&shk__hdr(seg)->reg_count,
				 memory_order_relaxed);
	if (n)
		atomic_store_explicit(&shk__hdr(seg)->reg_count, n - 1,
				      memory_order_relaxed);
	SHK_CRASHPOINT("reg.remove.before_free");
	return shk_free(seg, off);
}

/* The READY entry `name` with that kind and type id (the lock held), or
 * NULL. */
static struct shk__reg_ent *
find_locked(shk_seg *seg, const char *name, uint32_t kind, uint64_t type_id)
{
	struct shk__reg_ent *e;
	int slot, free_slot;

	if (shk__name_check(name, 0))
		return NULL;
	slot = probe(seg, name, name_hash(name), &free_slot);
	if (slot < 0)
		return NULL;
	e = &ents(seg)[slot];
	/* relaxed: we hold the lock; state only changes under it */
	if (atomic_load_explicit(&e->state, memory_order_relaxed) !=
		    SHK__ENT_READY ||
	    e->kind != kind || e->type_id != type_id)
		return NULL;
	return e;
}

int
shk__reg_lock(shk_seg *seg)
{
	if (seg->slot == UINT32_MAX)
		return SHK_EPERM; /* read-only handle: the lock is a write */
	return reg_lock(seg);
}

void
shk__reg_unlock(shk_seg *seg)
{
	reg_unlock(seg);
}

int
shk__obj_find_locked(shk_seg *seg, const char *name, uint32_t kind,
		     uint64_t type_id)
{
	return find_locked(seg, name, kind, type_id) != NULL;
}

int
shk__obj_remove_locked(shk_seg *seg, const char *name, uint32_t kind,
		       uint64_t type_id)
{
	struct shk__reg_ent *e = find_locked(seg, name, kind, type_id);

	if (!e)
		return 0;
	remove_locked(seg, e);
	return 1;
}

int
shk__reg_empty(shk_seg *seg)
{
	uint32_t i, st;

	for (i = 0; i < seg->reg_cap; i++) {
		/* acquire: pairs with the release stores of state */
		st = atomic_load_explicit(&ents(seg)[i].state,
					  memory_order_acquire);
		if (st == SHK__ENT_READY || st == SHK__ENT_CREATING)
			return 0;
	}
	return 1;
}

/*
 * 1 when READY entry e (the lock held) names an object that records a live
 * party: its kind's busy hook says so.  A damaged entry, or a kind that
 * records no parties, is not busy.
 */
static int
ent_busy(shk_seg *seg, struct shk__reg_ent *e, uint32_t slot)
{
	shk__obj_busy_fn fn;
	shk_obj_info info;

	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	fill_info(e, slot, &info);
	fn = kind_busy(info.kind);
	if (!fn || !ent_valid(seg, &info))
		return 0;
	return fn(seg, seg->base + info.off, &info);
}

/* 1 when object `name` (READY entry e, the lock held) or, for a channel,
 * one of its parts records a live party. */
static int
obj_busy(shk_seg *seg, const char *name, struct shk__reg_ent *e, uint32_t slot)
{
	struct shk__obj_part parts[SHK__OBJ_PARTS_MAX];
	struct shk__reg_ent *pe;
	int i, n;

	if (ent_busy(seg, e, slot))
		return 1;
	if (e->kind != SHK_KIND_CHAN)
		return 0;
	n = shk__chan_parts(name, parts);
	for (i = 0; i < n; i++) {
		pe = find_locked(seg, parts[i].name, parts[i].kind,
				 parts[i].type_id);
		if (pe && ent_busy(seg, pe, (uint32_t)(pe - ents(seg))))
			return 1;
	}
	return 0;
}

/*
 * A channel's control block takes its parts with it (test_chan
 * obj_remove): removed alone, it left them behind, and the next
 * shk_chan_open made a new control block that took the old rings over (it
 * delivered the old channel's inline messages, and failed its heap ones
 * as corrupt).  The parts go first, under the same hold of the lock: a
 * remover killed in between leaves a channel without (some) parts, which
 * its next opener completes, never parts without a channel.  The parts
 * are found by name, kind and channel part type id, never through the
 * control block's (untrusted) contents.
 *
 * Without SHK_FORCE an object that records a live party is not removed
 * (SHK_EBUSY): a removal freed the block under a ring's producer, whose
 * next writes went into whatever reused it (a blob, heap metadata: test
 * remove_busy).  The parties are judged under the lock, and a structure
 * records its long-lived parties (roles, reader slots) under the same lock
 * (shk__obj_attach()), so a party either shows here or finds the object
 * gone.  Locks held and sleepers are recorded by their own calls, without
 * the lock: those show here only once recorded.
 */
int
shk_obj_remove_flags(shk_seg *seg, const char *name, unsigned flags)
{
	struct shk__obj_part parts[SHK__OBJ_PARTS_MAX];
	struct shk__reg_ent *e;
	int i, n, rc, slot, free_slot;

	if (!seg || (flags & ~SHK_FORCE))
		return SHK_EINVAL;
	if (seg->slot == UINT32_MAX)
		return SHK_EPERM; /* read-only handle: a removal writes */
	rc = shk__name_check(name, 0);
	if (rc)
		return rc;
	rc = reg_lock(seg);
	if (rc)
		return rc;
	slot = probe(seg, name, name_hash(name), &free_slot);
	/* relaxed: we hold the lock; state only changes under it */
	if (slot < 0 ||
	    atomic_load_explicit(&ents(seg)[slot].state,
				 memory_order_relaxed) != SHK__ENT_READY) {
		reg_unlock(seg);
		return SHK_ENOENT;
	}
	e = &ents(seg)[slot];
	if (!(flags & SHK_FORCE) && obj_busy(seg, name, e, (uint32_t)slot)) {
		reg_unlock(seg);
		return SHK_EBUSY;
	}
	if (e->kind == SHK_KIND_CHAN) {
		n = shk__chan_parts(name, parts);
		for (i = 0; i < n; i++)
			shk__obj_remove_locked(seg, parts[i].name,
					       parts[i].kind, parts[i].type_id);
	}
	rc = remove_locked(seg, e);
	reg_unlock(seg);
	return rc;
}

int
shk_obj_remove(shk_seg *seg, const char *name)
{
	return shk_obj_remove_flags(seg, name, 0);
}

/*
 * 1 when entry e still holds the object that info copied: READY, same
 * creation time, offset and name hash.  A removal (DELETED) or a removal
 * and a new creation in the same slot (another created_ns) since the copy
 * shows as a change; so does a copy torn by a creator writing the fields.
 */
static int
entry_is(struct shk__reg_ent *e, uint64_t created_ns, uint64_t off,
	 uint32_t hash)
{
	uint32_t st = state_after_copy(e);

	/* relaxed field loads (ent_ld32()): a creator may be writing the
	 * slot; ordered after our copy by the fence in state_after_copy(),
	 * and after its acquire load of state, so a later creation's READY
	 * comes with that creation's created_ns, never ours */
	return st == SHK__ENT_READY && ent_ld64(&e->created_ns) == created_ns &&
	       ent_ld64(&e->off) == off && ent_ld32(&e->name_hash) == hash;
}

static int
entry_still(struct shk__reg_ent *e, const shk_obj_info *info, uint32_t hash)
{
	return entry_is(e, info->created_ns, info->off, hash);
}

void
shk__obj_ref_init(struct shk__obj_ref *ref, const shk_obj_info *info)
{
	ref->off = info->off;
	ref->created_ns = info->created_ns;
	ref->slot = info->slot;
	ref->hash = name_hash(info->name);
}

int
shk__obj_live(shk_seg *seg, const struct shk__obj_ref *ref)
{
	return ref->slot < seg->reg_cap &&
	       entry_is(&ents(seg)[ref->slot], ref->created_ns, ref->off,
			ref->hash);
}

int
shk__obj_attach(shk_seg *seg, const struct shk__obj_ref *ref,
		int (*attach)(void *arg), void *arg)
{
	int rc;

#ifdef SHK_TEST_HOOKS
	if (shk__reg_attach_hook)
		shk__reg_attach_hook(seg);
#endif
	rc = reg_lock(seg);
	if (rc)
		return rc;
	/* under the lock: the entry cannot change while attach runs */
	rc = shk__obj_live(seg, ref) ? attach(arg) : SHK_ENOENT;
	reg_unlock(seg);
	return rc;
}

/* A READY entry that shk__reg_check() judged, for the overlap test. */
struct check_ent {
	uint64_t off, len, created_ns;
	uint32_t slot, hash;
};

static int
check_ent_cmp(const void *a, const void *b)
{
	const struct check_ent *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * Checks every READY entry and its object, without the registry lock (read-
 * only handles cannot take it), while others may remove and create objects.
 * An entry read READY may be removed, its block reused, and the slot given
 * to a new object while we read it: the copy is taken only if the entry
 * still holds it afterwards, and a failed check counts only if the entry
 * still holds the same object after it; otherwise the entry changed under
 * us and proves nothing (test check_during_remove: a check racing with a
 * removal reported SHK_ECORRUPT on a sound segment).
 *
 * Besides each entry's fields and its kind's check: the count of READY
 * entries must not exceed the capacity; each object must be one live heap
 * block of its own (shk__heap_block_check(): off the payload start of a
 * handed-out block with room for len; an entry pointed at another
 * object's middle or at free space passed before 2026-11-25); and no two
 * objects may overlap (two entries naming one block).  An overlap counts
 * only if both entries still hold their objects after it was seen: each
 * then stayed READY from its copy on, so both were live at once.
 */
int
shk__reg_check(shk_seg *seg)
{
	struct shk__reg_ent *t = ents(seg);
	struct check_ent *seen;
	shk_obj_info info;
	uint32_t i, hash, n = 0;
	int waits = 0, rc = 0;

	/* relaxed: a statistic written under the lock; the number of READY
	 * entries, which never exceeds the capacity (a holder killed
	 * between a state store and the count leaves it one off, within
	 * it, until recover() recounts) */
	if (atomic_load_explicit(&shk__hdr(seg)->reg_count,
				 memory_order_relaxed) > seg->reg_cap)
		return SHK_ECORRUPT;
	/* without the memory, the overlap pass is left out (the entries'
	 * own checks still run): a healthy segment is not reported broken
	 * for want of memory */
	seen = malloc((size_t)seg->reg_cap * sizeof(*seen));
	for (i = 0; i < seg->reg_cap && !rc; i++) {
		shk__obj_check_fn fn;
		uint64_t c;
		/* acquire loads: the seqlock reader's start (ent_begin()) */
		uint32_t st = ent_begin(&t[i], &c);

		if (st > SHK__ENT_DELETED) {
			rc = SHK_ECORRUPT;
			break;
		}
		if (st != SHK__ENT_READY)
			continue;
		memset(&info, 0, sizeof(info));
		info.size = sizeof(info);
		fill_info(&t[i], i, &info);
		hash = ent_ld32(&t[i].name_hash);
		/* entry_still() re-reads created_ns against info's copy */
		if (info.created_ns != c || !entry_still(&t[i], &info, hash))
			continue; /* removed or re-created meanwhile */
		/* the object is the one whose READY we have now read
		 * (acquire, through the fence): its init is visible */
		if (!ent_valid(seg, &info) || hash != name_hash(info.name))
			rc = SHK_ECORRUPT;
#ifdef SHK_TEST_HOOKS
		if (shk__reg_check_hook)
			shk__reg_check_hook(seg, i);
#endif
		/* its memory is a live block before the kind's check reads
		 * it as an object */
		if (!rc && shk__heap_block_check(seg, info.off, info.len,
						 &waits) == SHK_ECORRUPT)
			rc = SHK_ECORRUPT;
		fn = kind_check(info.kind);
		if (!rc && fn)
			rc = fn(seg, seg->base + info.off, &info);
		if (rc) {
			if (!entry_still(&t[i], &info, hash))
				rc = 0; /* changed under us: proves nothing */
			continue;
		}
		if (!seen)
			continue;
		seen[n].off = info.off;
		seen[n].len = info.len;
		seen[n].created_ns = info.created_ns;
		seen[n].slot = i;
		seen[n].hash = hash;
		n++;
	}
	if (!rc && n > 1) {
		/* each entry against the one before it that reaches furthest
		 * (comparing neighbours only missed a over c when b, between
		 * them, had changed under us: review, 2026-11-25) */
		const struct check_ent *far;

		qsort(seen, n, sizeof(*seen), check_ent_cmp);
		far = &seen[0];
		for (i = 1; i < n && !rc; i++) {
			const struct check_ent *b = &seen[i];

			/* len <= the heap's end - off (ent_valid()) */
			if (far->off + far->len > b->off &&
			    entry_is(&t[far->slot], far->created_ns, far->off,
				     far->hash) &&
			    entry_is(&t[b->slot], b->created_ns, b->off,
				     b->hash))
				rc = SHK_ECORRUPT;
			if (b->off + b->len > far->off + far->len)
				far = b;
		}
	}
	free(seen);
	return rc;
}

/* Each kind's live-state description, linked in with the kind's module:
 * writes at most len bytes (NUL included) into buf, returns the length. */
#define KIND_DESCRIBE(k)                                                       \
	SHK_HIDDEN int shk__kind_describe_##k(shk_seg *, void *,               \
					      const shk_obj_info *, char *,    \
					      size_t) __attribute__((weak));
KIND_DESCRIBE(array)
KIND_DESCRIBE(ring)
KIND_DESCRIBE(queue)
KIND_DESCRIBE(stack)
KIND_DESCRIBE(bcast)
KIND_DESCRIBE(map)
KIND_DESCRIBE(pool)
KIND_DESCRIBE(sync)
KIND_DESCRIBE(chan)
#undef KIND_DESCRIBE

typedef int (*describe_fn)(shk_seg *, void *, const shk_obj_info *, char *,
			   size_t);

static describe_fn
kind_describe(uint32_t kind)
{
	switch (kind) {
	case SHK_KIND_ARRAY:
		return shk__kind_describe_array;
	case SHK_KIND_RING:
		return shk__kind_describe_ring;
	case SHK_KIND_QUEUE:
		return shk__kind_describe_queue;
	case SHK_KIND_STACK:
		return shk__kind_describe_stack;
	case SHK_KIND_BCAST:
		return shk__kind_describe_bcast;
	case SHK_KIND_MAP:
		return shk__kind_describe_map;
	case SHK_KIND_POOL:
		return shk__kind_describe_pool;
	case SHK_KIND_CHAN:
		return shk__kind_describe_chan;
	default:
		if (kind >= SHK_KIND_MUTEX && kind <= SHK_KIND_ONCE)
			return shk__kind_describe_sync;
		return NULL;
	}
}

int
shk_obj_describe(shk_seg *seg, const shk_obj_info *info, char *buf, size_t len)
{
	shk__obj_check_fn check;
	describe_fn fn;
	int rc;

	if (!seg || !info || !buf || len == 0 || info->size < sizeof(*info))
		return SHK_EINVAL;
	buf[0] = '\0';
	if (!ent_valid(seg, info))
		return SHK_ECORRUPT;
	check = kind_check(info->kind);
	rc = check ? check(seg, seg->base + info->off, info) : 0;
	fn = kind_describe(info->kind);
	if (rc == 0 && fn)
		rc = fn(seg, seg->base + info->off, info, buf, len);
	/* info is the caller's copy of an entry (shk_obj_next, stat): the
	 * object may have been removed since, and its block reused.  A
	 * failure counts as damage only while the entry still holds the
	 * object (as in shk__reg_check()); otherwise it is gone. */
	if (rc < 0 && rc != SHK_EINVAL &&
	    (info->slot >= seg->reg_cap ||
	     !entry_still(&ents(seg)[info->slot], info,
			  name_hash(info->name)))) {
		buf[0] = '\0';
		return SHK_ENOENT;
	}
	return rc;
}
