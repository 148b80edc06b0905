/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pvballoon migration backend: the narrow interface between the core and
 * the kernel's page migration.  Exactly one backend is built, chosen by the
 * compat probes (pvb_compat.h):
 *
 *  - src/migrate_mops.c      private struct movable_operations (6.0 - 6.16)
 *  - src/migrate_kballoon.c  the kernel balloon API (7.0 and later; 6.17 -
 *                            6.19 are refused at build time, pvb_compat.h)
 *
 * The backend owns the page list, the balloon lock and everything the
 * kernel itself would account for a balloon page: PageOffline, the movable
 * mark, page->private, the balloon_* vm events, NR_BALLOON_PAGES and
 * MemTotal.  The core owns sizes, targets, allocation and its own stats.
 */
#ifndef PVB_MIGRATE_H
#define PVB_MIGRATE_H

#include <linux/list.h>
#include <linux/migrate_mode.h>
#include <linux/types.h>
#include <linux/wait.h>

#include "pvb_compat.h"

struct page;
struct pvb_mig;

/**
 * struct pvb_mig_hooks - what the backend asks of the core during migration
 * @migrate: tell whoever must know that @newpage replaces @oldpage; 0 to
 *	go ahead, -EAGAIN (or another error) to fail this migration.
 * @migrated: the move is done (stats).
 */
struct pvb_mig_hooks {
	int (*migrate)(struct pvb_mig *m, struct page *newpage,
		       struct page *oldpage, enum migrate_mode mode);
	void (*migrated)(struct pvb_mig *m, struct page *newpage,
			 struct page *oldpage);
};

#ifdef PVB_BACKEND_MOPS
/**
 * struct pvb_mig - movable_operations backend state
 * @pages: pages in the balloon and not isolated, newest first
 * @nr_listed: length of @pages
 * @nr_isolated: pages isolated by compaction (off @pages, still ours)
 * @isolated_wq: woken when @nr_isolated drops to zero (unload waits there)
 * @hooks: the core's migrate and migrated callbacks
 * @movable: pages were allocated movable and registered for migration
 * @allow_isolate: the migration switch; off refuses isolation
 * @adjust_managed: MemTotal follows the balloon
 * @isolate_refused: isolations refused by the switch (stats)
 * @list_gen: bumped by every change of @pages, so that pvb_mig_verify()
 *	can let go of the lock mid-walk and know whether its place holds
 *
 * @pages, @nr_listed, @nr_isolated, @list_gen and page->private of every
 * ballooned page are protected by the one balloon lock in migrate_mops.c.
 */
struct pvb_mig {
	struct list_head pages;
	unsigned long nr_listed;
	unsigned long nr_isolated;
	wait_queue_head_t isolated_wq;
	const struct pvb_mig_hooks *hooks;
	bool movable;
	bool allow_isolate;
	bool adjust_managed;
	atomic_long_t isolate_refused;
	unsigned long list_gen;
};
#endif

#ifdef PVB_BACKEND_KBALLOON
#include <linux/balloon.h>
/**
 * struct pvb_mig - kernel balloon API backend state
 * @bdi: the kernel's balloon descriptor; the kernel owns its list and
 *	locks it with its own (global, unexported) balloon lock
 * @nr_pages: pages in the balloon, isolated ones included.  Raised before
 *	pages are handed to the kernel and lowered after they came back, so
 *	it never reads lower than the truth.
 * @hooks: the core's migrate and migrated callbacks
 * @migrate_ok: the migration switch; the kernel isolates our pages without
 *	asking, so "off" refuses in the migrate callback instead
 * @movable: pages were allocated movable; if not, every migration is
 *	refused (the kernel marks all balloon pages movable)
 * @isolate_refused: migrations refused by the switch or by @movable (stats)
 */
struct pvb_mig {
	struct balloon_dev_info bdi;
	atomic_long_t nr_pages;
	const struct pvb_mig_hooks *hooks;
	bool movable;
	bool migrate_ok;
	atomic_long_t isolate_refused;
};
#endif

extern const char *const pvb_mig_backend_name;

void pvb_mig_init(struct pvb_mig *m, const struct pvb_mig_hooks *hooks,
		  bool movable, bool adjust_managed);
void pvb_mig_drain(struct pvb_mig *m);
void pvb_mig_quiesce(struct pvb_mig *m);

void pvb_mig_enqueue(struct pvb_mig *m, struct list_head *pages);
unsigned long pvb_mig_dequeue(struct pvb_mig *m, struct list_head *pages,
			      unsigned long n);
void pvb_mig_counts(struct pvb_mig *m, unsigned long *listed,
		    unsigned long *isolated);
void pvb_mig_set_isolation(struct pvb_mig *m, bool allow);
void pvb_mig_set_adjust_managed(struct pvb_mig *m, bool adjust);
bool pvb_mig_adjust_managed(struct pvb_mig *m);
unsigned long pvb_mig_isolate_refused(struct pvb_mig *m);

/**
 * struct pvb_mig_check - what pvb_mig_verify() found
 * @walked: pages found by walking the list
 * @listed: the list length counter
 * @isolated: the isolated counter
 * @bad: listed pages whose page->private, PageOffline or movable mark is
 *	not what a ballooned page must have
 * @breaks: times the walk let go of the lock (and interrupts) on the way
 * @restarts: walks begun again because the list changed meanwhile
 */
struct pvb_mig_check {
	unsigned long walked, listed, isolated, bad, breaks, restarts;
};
void pvb_mig_verify(struct pvb_mig *m, struct pvb_mig_check *c);

#endif /* PVB_MIGRATE_H */
