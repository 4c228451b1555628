/*
 * registry.h - the directory of named objects in a segment (DESIGN §3).
 *
 * Entries live in a fixed open-addressed table (linear probing on the
 * name's hash), so lookups are O(1).  Readers look up without a lock;
 * creation and removal take the registry's robust lock.  Each structure
 * module creates and opens its objects through shk__obj_open(), passing an
 * init callback that formats the object's memory while the entry is
 * CREATING, and validates an existing object with its own check function.
 */
#ifndef SHK_REGISTRY_H
#define SHK_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "platform.h"
#include "segment.h"

enum shk__ent_state {
	SHK__ENT_FREE = 0,     /* never used: ends a probe sequence */
	SHK__ENT_CREATING = 1, /* being initialised (registry lock held) */
	SHK__ENT_READY = 2,
	SHK__ENT_DELETED = 3, /* tombstone: probing continues */
};

/* One registry entry: 128 bytes, fields immutable while READY. */
struct shk__reg_ent {
	_Atomic uint32_t state;
	uint32_t kind;
	uint64_t type_id;
	uint32_t elem_len;
	uint32_t align;
	uint64_t cap;
	uint64_t off;
	uint64_t len;
	uint32_t creator_pid;
	uint32_t name_hash;
	uint64_t created_ns;
	char name[64];
};
_Static_assert(sizeof(struct shk__reg_ent) == 128, "registry entry size");

/* Formats a new object's memory (zero-filled, len bytes at mem).  Returns
 * 0 or a code (the creation is then undone). */
typedef int (*shk__obj_init_fn)(shk_seg *seg, void *mem,
				const shk_obj_info *info, void *arg);
/* Validates an existing object's memory; 0 or SHK_ECORRUPT.  An open
 * through a writable handle runs it under the registry lock (registry.c),
 * so it must not take that lock (no shk_obj_stat and the like); a
 * read-only handle, shk_seg_check and shk_obj_describe run it without. */
typedef int (*shk__obj_check_fn)(shk_seg *seg, void *mem,
				 const shk_obj_info *info);

/*
 * shk__obj_open: the one way to create or open a named object.
 *   want    kind, type_id, elem_len, align, cap requested
 *   len     bytes of object memory to allocate on create (ignored on open)
 *   init    formats the memory on create (NULL: zero-filled is valid)
 *   check   validates on open (NULL: none)
 * flags: SHK_CREATE, SHK_EXCL as for segments, and SHK__OPEN_VIEW: the
 * caller only reads or writes the memory it gets (shk_obj_open), so a
 * read-only segment handle may open an existing object; without it a
 * read-only handle gets SHK_EPERM (a structure's open writes to attach).
 * Fills *info and *mem.  Codes: SHK_EINVAL, SHK_ENAMETOOLONG, SHK_ENOENT,
 * SHK_EEXIST, SHK_ETYPE, SHK_ENOMEM, SHK_ENOSPC (table full),
 * SHK_ECORRUPT, SHK_ETIMEDOUT, SHK_EPERM.
 */
#define SHK__OPEN_VIEW 0x100u
SHK_HIDDEN int shk__obj_open(shk_seg *seg, const char *name, unsigned flags,
			     const shk_obj_desc *want, uint64_t len,
			     shk__obj_init_fn init, void *arg,
			     shk__obj_check_fn check, shk_obj_info *info,
			     void **mem);

/*
 * shk__obj_open for a kind whose zero geometry fields (want->elem_len,
 * want->cap) mean "as stored" for an existing object and "the default" for
 * a new one (queue, stack, pool).  Unless flags ask for a new object only
 * (SHK_EXCL) or both fields are set, it first looks the object up with
 * want's fields (zeros accept); only when that says SHK_ENOENT and flags
 * have SHK_CREATE does it call defaults(want), which fills the zero fields
 * and returns the object's length (0: SHK_EINVAL), and create it.  A
 * creator of another geometry racing us between the two finds our
 * creation failing with SHK_ETYPE against our defaults: the lookup is
 * tried again, at most 100 times (a review measured 6% SHK_ETYPE in such a
 * race before, 2026-11-25).  Codes as shk__obj_open.
 */
SHK_HIDDEN int shk__obj_open_dflt(shk_seg *seg, const char *name,
				  unsigned flags, const shk_obj_desc *want,
				  uint64_t (*defaults)(shk_obj_desc *want),
				  shk__obj_init_fn init, void *arg,
				  shk__obj_check_fn check, shk_obj_info *info,
				  void **mem);

/*
 * Several registry steps under one hold of the lock (chan.c's undo of a
 * failed open).  shk__reg_lock returns 0 or a code of the lock
 * (SHK_ETIMEDOUT, SHK_EPERM on a read-only handle).  With it held:
 * shk__obj_find_locked says whether `name` is a READY object of that kind
 * and type id (1) or not (0); shk__obj_remove_locked removes such an
 * object (1) or finds none (0).  Neither removes a channel's parts (see
 * shk_obj_remove).
 */
SHK_HIDDEN int shk__reg_lock(shk_seg *seg);
SHK_HIDDEN void shk__reg_unlock(shk_seg *seg);
SHK_HIDDEN int shk__obj_find_locked(shk_seg *seg, const char *name,
				    uint32_t kind, uint64_t type_id);
SHK_HIDDEN int shk__obj_remove_locked(shk_seg *seg, const char *name,
				      uint32_t kind, uint64_t type_id);

/*
 * Each kind's busy hook (shk__kind_busy_<kind>, in the kind's module):
 * returns 1 when the object at mem (described by info, a validated entry)
 * records a live party (shk__stamp_alive(), which counts our own process's
 * handles too), else 0.  shk_obj_remove calls it under the registry lock
 * and answers SHK_EBUSY for 1; it must not take that lock.  The object's
 * memory is untrusted: read only within info->len, and a damaged object
 * is not busy (it can be removed).
 */
typedef int (*shk__obj_busy_fn)(shk_seg *seg, void *mem,
				const shk_obj_info *info);

/*
 * A reference to one object: its registry entry at one creation.  A
 * handle that records parties in the object (a ring's role, a bcast's
 * writer role or reader slot) keeps one, fills it with shk__obj_ref_init()
 * from the info its open got, and:
 *  - records its party through shk__obj_attach(), which runs attach(arg)
 *    under the registry lock while the entry still holds that object, and
 *    returns attach's code, or SHK_ENOENT (attach not run) when the object
 *    was removed since the open looked it up (the caller starts over with
 *    SHK_CREATE); so a removal either sees the party (SHK_EBUSY) or comes
 *    before it, never between its check and the party's record;
 *  - asks shk__obj_live() (1: the entry still holds the object; lock-free,
 *    no system call) before it writes to the object from a slow path or at
 *    close: an object removed with SHK_FORCE may be someone else's memory.
 */
struct shk__obj_ref {
	uint64_t off;
	uint64_t created_ns;
	uint32_t slot;
	uint32_t hash;
};
SHK_HIDDEN void shk__obj_ref_init(struct shk__obj_ref *ref,
				  const shk_obj_info *info);
SHK_HIDDEN int shk__obj_attach(shk_seg *seg, const struct shk__obj_ref *ref,
			       int (*attach)(void *arg), void *arg);
SHK_HIDDEN int shk__obj_live(shk_seg *seg, const struct shk__obj_ref *ref);

/* 1 when no entry holds an object or one being created. */
SHK_HIDDEN int shk__reg_empty(shk_seg *seg);

/*
 * A part that belongs to an object and goes with it (shk_obj_remove): a
 * channel's rings, bcast or queue (chan.c, shk__chan_parts).
 */
struct shk__obj_part {
	char name[64];
	uint32_t kind;
	uint64_t type_id;
};
#define SHK__OBJ_PARTS_MAX 4

/* Formats the registry table of a segment being created. */
SHK_HIDDEN void shk__reg_init(uint8_t *base, uint64_t reg_off,
			      uint32_t reg_cap);
/* Validates every entry (tools, shk_seg_check): 0 or SHK_ECORRUPT. */
SHK_HIDDEN int shk__reg_check(shk_seg *seg);

#ifdef SHK_TEST_HOOKS
/* Tests: called by shk__reg_check() and shk__obj_open() for entry slot
 * after they copied the entry and before they run the object's check (the
 * test changes the registry there). */
SHK_HIDDEN extern void (*shk__reg_check_hook)(shk_seg *seg, uint32_t slot);
/* Tests: called by shk__obj_attach() before it takes the registry lock
 * (the test removes the object there). */
SHK_HIDDEN extern void (*shk__reg_attach_hook)(shk_seg *seg);
#endif

#endif /* SHK_REGISTRY_H */
