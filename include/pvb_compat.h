/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pvballoon compat layer: the only place that looks at the probe results in
 * generated/pvb_conftest.h (scripts/conftest.sh, scripts/probes/).  Shims are
 * named after the newest kernel API and say which kernel changed it.
 */
#ifndef PVB_COMPAT_H
#define PVB_COMPAT_H

#include <linux/migrate_mode.h>
#include <linux/mm.h>
#include <linux/vmstat.h>

#include "pvb_conftest.h"

/*
 * Migration backend, chosen by probe, not by version number:
 *  - v6.0 .. v6.16: a private struct movable_operations per page;
 *  - v6.17 and later: ops are per page type and the kernel balloon owns
 *    PageOffline, so we go through the kernel balloon API.
 */
#if defined(PVB_HAVE_MOVABLE_OPS)
#define PVB_BACKEND_MOPS 1
#define PVB_BACKEND_NAME "movable_ops"
#elif defined(PVB_HAVE_LINUX_BALLOON_H) && defined(PVB_HAVE_BALLOON_ADJUST_MANAGED)
/*
 * v7.0 and later: <linux/balloon.h>, the kernel does the migration
 * bookkeeping and the vm events itself, and adjusts MemTotal when asked.
 */
#define PVB_BACKEND_KBALLOON 1
#define PVB_BACKEND_NAME "kernel_balloon"
#elif defined(PVB_HAVE_SET_MOVABLE_OPS)
/*
 * v6.17 .. v6.19: per-type movable ops, but the older balloon API of
 * <linux/balloon_compaction.h> (per-device pages_lock, driver-side
 * migration bookkeeping).  Not built or tested yet: refuse clearly rather
 * than ship an untested migration path.
 */
#error "pvballoon: kernels 6.17 - 6.19 (balloon_compaction.h with per-type movable ops) are not supported yet; 6.0 - 6.16 and 7.0+ are"
#else
#error "pvballoon: this kernel has neither struct movable_operations nor the balloon API (see generated/pvb_conftest.h)"
#endif

/*
 * MIGRATE_SYNC_NO_COPY (v4.14 .. v6.9) asks the driver to move a page
 * without copying it; a balloon page cannot be handed over that way.
 */
static inline bool pvb_migrate_mode_nocopy(enum migrate_mode mode)
{
#ifdef PVB_HAVE_MIGRATE_SYNC_NO_COPY
	return mode == MIGRATE_SYNC_NO_COPY;
#else
	return false;
#endif
}

/* balloon_migrate in /proc/vmstat needs CONFIG_BALLOON_COMPACTION. */
static inline void pvb_count_migrate_event(void)
{
#ifdef PVB_HAVE_BALLOON_MIGRATE_EVENT
	count_vm_event(BALLOON_MIGRATE);
#endif
}

/*
 * nr_balloon_pages / meminfo Balloon: (v6.15).  Only for backends that do
 * not use the kernel balloon API, which keeps the counter itself.
 */
static inline void pvb_mod_balloon_pages(struct page *page, long delta)
{
#ifdef PVB_HAVE_NR_BALLOON_PAGES
	mod_node_page_state(page_pgdat(page), NR_BALLOON_PAGES, delta);
#endif
}

#endif /* PVB_COMPAT_H */
