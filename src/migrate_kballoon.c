// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon migration backend for kernels 7.0 and later: the kernel's own
 * balloon API (<linux/balloon.h>).
 *
 * Since v6.17 non-LRU movable pages carry no ops pointer: the ops are
 * chosen by page type, and the kernel balloon owns the PageOffline slot.
 * A module can no longer register movable_operations of its own, so our
 * pages live on the list of an embedded struct balloon_dev_info and the
 * kernel's balloon core isolates, puts back and migrates them.
 *
 * What the kernel does for us here, and the movable_ops backend does
 * itself on older kernels - so neither is counted twice:
 *  - PageOffline, the movable_ops mark and page->private;
 *  - the balloon_inflate / balloon_deflate / balloon_migrate vm events;
 *  - NR_BALLOON_PAGES (meminfo "Balloon:");
 *  - MemTotal, through bdi.adjust_managed_page_count.
 *
 * Locking: the list and page->private are protected by the kernel's global
 * balloon_pages_lock (seed 001's design, upstream since v7.0).  It is not
 * exported, so we never walk the list ourselves: our own state is an atomic
 * page count.  Isolation cannot be refused here - the kernel does not ask -
 * so the migration switch and movable=0 refuse in the migrate callback,
 * and compaction puts the page back.
 *
 * rmmod: bdi.migratepage points into this module.  The kernel calls it
 * only for an isolated page, and a page can be isolated only while it is
 * in the balloon (page->private set).  pvb_balloon_destroy() deflates until
 * nr_pages is zero, which includes every isolated page, so nothing can
 * reach our callback once it returns.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/srcu.h>
#include <linux/vmstat.h>

#include "pvb_migrate.h"

#ifdef PVB_BACKEND_KBALLOON

const char *const pvb_mig_backend_name = PVB_BACKEND_NAME;

static struct pvb_mig *pvb_mig_from_bdi(struct balloon_dev_info *bdi)
{
	return container_of(bdi, struct pvb_mig, bdi);
}

/**
 * pvb_mig_enqueue - put freshly allocated pages into the balloon
 * @m: the backend
 * @pages: pages linked through page->lru, each with one reference that
 *	the balloon keeps; the list is empty on return
 *
 * One kernel balloon lock round trip for the whole batch.
 */
void pvb_mig_enqueue(struct pvb_mig *m, struct list_head *pages)
{
	unsigned long n = list_count_nodes(pages);

	/* Counted first: the count may be high for a moment, never low. */
	atomic_long_add(n, &m->nr_pages);
	n -= balloon_page_list_enqueue(&m->bdi, pages);
	WARN_ON_ONCE(n);
}

/**
 * pvb_mig_dequeue - take up to @n pages out of the balloon
 * @m: the backend
 * @pages: where the pages go, linked through page->lru
 * @n: pages wanted
 *
 * The kernel takes the newest pages first; isolated pages are not on its
 * list and are never taken.  PageOffline stays set until the page is
 * freed (the kernel clears it then), so the caller may only free the
 * pages or enqueue them again.
 *
 * Return: the number of pages moved to @pages.
 */
unsigned long pvb_mig_dequeue(struct pvb_mig *m, struct list_head *pages,
			      unsigned long n)
{
	LIST_HEAD(taken);
	unsigned long got;

	got = balloon_page_list_dequeue(&m->bdi, &taken, n);
	atomic_long_sub(got, &m->nr_pages);
	/* The kernel hands them over newest last; keep our usual order. */
	list_splice_tail(&taken, pages);
	return got;
}

/*
 * One snapshot of the counts.  bdi.isolated_pages is written under the
 * kernel's lock, which we cannot take; a snapshot is all we need.  Returns
 * false if the raw numbers break an invariant (more isolated than held).
 */
static bool pvb_kb_counts(struct pvb_mig *m, unsigned long *listed,
			  unsigned long *isolated)
{
	long total = atomic_long_read(&m->nr_pages);
	long iso = READ_ONCE(m->bdi.isolated_pages);
	bool sane = total >= 0 && iso >= 0 && iso <= total;

	iso = clamp(iso, 0L, max(total, 0L));
	*isolated = iso;
	*listed = max(total, 0L) - iso;
	return sane;
}

void pvb_mig_counts(struct pvb_mig *m, unsigned long *listed,
		    unsigned long *isolated)
{
	pvb_kb_counts(m, listed, isolated);
}

/**
 * pvb_mig_verify - check what can be checked without the kernel's lock
 * @m: the backend
 * @c: the findings
 *
 * The list belongs to the kernel and its lock is not exported, so it is
 * not walked: walking it unlocked could follow a page that compaction is
 * isolating.  @c->walked reports the count, and @c->bad counts a broken
 * invariant (more pages isolated than in the balloon).
 */
void pvb_mig_verify(struct pvb_mig *m, struct pvb_mig_check *c)
{
	memset(c, 0, sizeof(*c));
	if (!pvb_kb_counts(m, &c->listed, &c->isolated))
		c->bad = 1;
	c->walked = c->listed;
}

void pvb_mig_set_isolation(struct pvb_mig *m, bool allow)
{
	WRITE_ONCE(m->migrate_ok, allow);
}

/* Only called with the balloon empty: the kernel counts per page. */
void pvb_mig_set_adjust_managed(struct pvb_mig *m, bool adjust)
{
	WRITE_ONCE(m->bdi.adjust_managed_page_count, adjust);
}

/* The mode in force, for the stats file (it can differ from the parameter). */
bool pvb_mig_adjust_managed(struct pvb_mig *m)
{
	return READ_ONCE(m->bdi.adjust_managed_page_count);
}

unsigned long pvb_mig_isolate_refused(struct pvb_mig *m)
{
	return atomic_long_read(&m->isolate_refused);
}

/*
 * The kernel moved nothing yet: tell the host (through the core's hook)
 * that @newpage replaces @page.  On 0 the kernel puts @newpage on the list
 * and drops @page; on an error it puts @page back.  We never return
 * -ENOENT ("old page deflated, new one not inflated").
 */
/*
 * Callbacks in flight: the kernel may still be inside pvb_kb_migrate()'s
 * last instructions when the balloon empties; pvb_mig_quiesce() waits for
 * them (see migrate_mops.c, "rmmod vs a callback's last instructions").
 */
DEFINE_STATIC_SRCU(pvb_cb_srcu);

static int pvb_kb_migrate(struct balloon_dev_info *bdi, struct page *newpage,
			  struct page *page, enum migrate_mode mode)
{
	struct pvb_mig *m = pvb_mig_from_bdi(bdi);
	int idx = srcu_read_lock(&pvb_cb_srcu);
	int rc;

	if (!READ_ONCE(m->migrate_ok) || !m->movable) {
		atomic_long_inc(&m->isolate_refused);
		/* Not -EAGAIN: the migration core would retry in a loop. */
		rc = -EBUSY;
		goto out;
	}
	rc = m->hooks->migrate(m, newpage, page, mode);
	if (!rc)
		m->hooks->migrated(m, newpage, page);
out:
	srcu_read_unlock(&pvb_cb_srcu, idx);
	return rc;
}

void pvb_mig_init(struct pvb_mig *m, const struct pvb_mig_hooks *hooks,
		  bool movable, bool adjust_managed)
{
	balloon_devinfo_init(&m->bdi);
	m->bdi.migratepage = pvb_kb_migrate;
	m->bdi.adjust_managed_page_count = adjust_managed;
	atomic_long_set(&m->nr_pages, 0);
	m->hooks = hooks;
	m->movable = movable;
	m->migrate_ok = true;
	atomic_long_set(&m->isolate_refused, 0);
}

/**
 * pvb_mig_drain - switch migration off and wait for isolated pages
 * @m: the backend
 *
 * Compaction may isolate again afterwards (the kernel does not ask us),
 * but every such page is refused and put back; the caller's deflate waits
 * for those.  This only shortens that wait.
 */
void pvb_mig_drain(struct pvb_mig *m)
{
	unsigned int waited = 0;

	pvb_mig_set_isolation(m, false);
	while (READ_ONCE(m->bdi.isolated_pages)) {
		msleep(20);
		if (++waited % 500 == 0)
			pr_warn("still waiting for %lu isolated pages to come back from compaction\n",
				READ_ONCE(m->bdi.isolated_pages));
	}
}

/**
 * pvb_mig_quiesce - wait for every callback still running our code
 * @m: the backend, whose balloon is empty
 *
 * For module unload, after the last page has left the balloon (the kernel
 * calls pvb_kb_migrate() only for balloon pages).
 */
void pvb_mig_quiesce(struct pvb_mig *m)
{
	synchronize_srcu(&pvb_cb_srcu);
}

#endif /* PVB_BACKEND_KBALLOON */
