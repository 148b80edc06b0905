// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon migration backend for kernels 6.0 - 6.16: our own
 * struct movable_operations, installed on each ballooned page with
 * __SetPageMovable().
 *
 * Locking - the design of David Hildenbrand's "mm/balloon_compaction: use
 * balloon_device_lock instead of page lock" (seed 001):
 *
 *   One balloon lock, pvb_lock, an irq-safe spinlock, protects the page
 *   list, the listed/isolated counts and page->private of every ballooned
 *   page.  While page->private points to the balloon the page is on the
 *   list or isolated; while it is clear the page is being inflated or was
 *   deflated, and isolation refuses it.  Inflate sets page->private under
 *   pvb_lock, deflate clears it under pvb_lock while it takes the page off
 *   the list, and isolation looks the balloon up through page->private
 *   under pvb_lock.
 *
 *   The page lock is not our synchronisation.  We take it only because
 *   __SetPageMovable() and __ClearPageMovable() assert it on these kernels
 *   (VM_BUG_ON_PAGE under CONFIG_DEBUG_VM); the migration core takes it
 *   around our callbacks.  Lock order: page lock, then pvb_lock.
 *
 * The races this prevents:
 *  - dequeue vs isolate (seed 000, Khlebnikov's "redesign ballooned pages
 *    management"): compaction's lockless scan picks a page that deflate is
 *    taking off the list at the same moment.  Both would list_del() it, or
 *    compaction would migrate a page that is being freed.  Here the loser
 *    sees page->private clear under pvb_lock and backs off.
 *  - double isolation (seed 002, the zsmalloc report on Minchan Kim's
 *    non-LRU migration series): a page released and re-marked while another
 *    thread still holds it isolated gets isolated a second time.  We never
 *    deflate an isolated page - it is off the list, so dequeue cannot find
 *    it - and the core clears PG_isolated only after putback or migration.
 *  - rmmod vs callbacks: no page may keep a pointer to pvb_mops after the
 *    module is gone.  pvb_mig_drain() waits for isolated pages to come
 *    back, and deflate clears the movable mark of every page under its page
 *    lock, which a thread inside one of our callbacks still holds.
 *  - rmmod vs a callback's last instructions: the isolated count reaches
 *    zero, and the page lock is dropped, while the callback still runs our
 *    code (the unlock, the accounting, put_page(), the return); preempted
 *    there - any time on PREEMPT_RT - it could resume in freed module text.
 *    Each callback runs in an SRCU read section and pvb_mig_quiesce()
 *    waits for them after the last page has left.  Not try_module_get() in
 *    isolate, which the issue that found this suggested: rmmod would then
 *    fail with EAGAIN whenever compaction holds one of our pages.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/lockdep.h>
#include <linux/migrate.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/vmstat.h>

#include "pvb_migrate.h"

#ifdef PVB_BACKEND_MOPS

const char *const pvb_mig_backend_name = PVB_BACKEND_NAME;

static DEFINE_SPINLOCK(pvb_lock);

static const struct movable_operations pvb_mops;

/*
 * Kernel-visible accounting of @n pages of @page's zone entering (@n > 0)
 * or leaving (@n < 0) the balloon.
 */
static void pvb_mig_account(struct pvb_mig *m, struct page *page, long n)
{
	if (m->adjust_managed)
		adjust_managed_page_count(page, -n);
	pvb_mod_balloon_pages(page, n);
}

/*
 * The same for a list: one call per run of pages of one zone rather than
 * one per page (two atomics on shared counters each).
 */
static void pvb_mig_account_list(struct pvb_mig *m, struct list_head *pages,
				 int sign)
{
	struct page *page, *first = NULL;
	long run = 0;

	list_for_each_entry(page, pages, lru) {
		if (run && page_zone(page) != page_zone(first)) {
			pvb_mig_account(m, first, sign * run);
			run = 0;
		}
		if (!run)
			first = page;
		run++;
	}
	if (run)
		pvb_mig_account(m, first, sign * run);
}

/**
 * pvb_mig_enqueue - put freshly allocated pages into the balloon
 * @m: the backend
 * @pages: pages linked through page->lru, each with one reference that
 *	the balloon keeps; the list is empty on return
 *
 * The pages are marked offline and movable before they become visible:
 * isolation of a page whose page->private is still clear is refused, so
 * the one pvb_lock round trip per batch is what publishes them.
 */
void pvb_mig_enqueue(struct pvb_mig *m, struct list_head *pages)
{
	unsigned long flags, n = 0;
	struct page *page;

	list_for_each_entry(page, pages, lru) {
		__SetPageOffline(page);
		if (m->movable) {
			lock_page(page);
			__SetPageMovable(page, &pvb_mops);
			unlock_page(page);
		}
		n++;
	}
	pvb_mig_account_list(m, pages, 1);

	spin_lock_irqsave(&pvb_lock, flags);
	list_for_each_entry(page, pages, lru)
		set_page_private(page, (unsigned long)m);
	list_splice_init(pages, &m->pages);
	m->nr_listed += n;
	m->list_gen++;
	spin_unlock_irqrestore(&pvb_lock, flags);

	count_vm_events(BALLOON_INFLATE, n);
}

/**
 * pvb_mig_dequeue - take up to @n pages out of the balloon
 * @m: the backend
 * @pages: where the pages go, linked through page->lru; the balloon's
 *	reference travels with them
 * @n: pages wanted
 *
 * Takes the newest pages first, so pages that entered together (a 2 MiB
 * block, say) leave together.  Isolated pages are not on the list and are
 * never taken.
 *
 * Return: the number of pages moved to @pages.
 */
unsigned long pvb_mig_dequeue(struct pvb_mig *m, struct list_head *pages,
			      unsigned long n)
{
	struct page *page, *tmp;
	unsigned long flags, got = 0;
	LIST_HEAD(taken);

	spin_lock_irqsave(&pvb_lock, flags);
	list_for_each_entry_safe(page, tmp, &m->pages, lru) {
		if (got == n)
			break;
		list_move_tail(&page->lru, &taken);
		set_page_private(page, 0);
		got++;
	}
	m->nr_listed -= got;
	m->list_gen++;
	spin_unlock_irqrestore(&pvb_lock, flags);

	list_for_each_entry(page, &taken, lru) {
		if (m->movable) {
			/*
			 * Waits for a compaction thread that found the page
			 * before we cleared page->private: it holds the page
			 * lock while it is inside pvb_mops_isolate().
			 */
			lock_page(page);
			__ClearPageMovable(page);
			unlock_page(page);
		}
		__ClearPageOffline(page);
	}
	pvb_mig_account_list(m, &taken, -1);
	count_vm_events(BALLOON_DEFLATE, got);
	list_splice_tail(&taken, pages);
	return got;
}

void pvb_mig_counts(struct pvb_mig *m, unsigned long *listed,
		    unsigned long *isolated)
{
	unsigned long flags;

	spin_lock_irqsave(&pvb_lock, flags);
	*listed = m->nr_listed;
	*isolated = m->nr_isolated;
	spin_unlock_irqrestore(&pvb_lock, flags);
}

/* Pages checked per hold of the balloon lock in pvb_mig_verify(). */
#define PVB_VERIFY_BATCH	1024
/* Walks begun again before one goes through without letting go. */
#define PVB_VERIFY_RESTARTS	3

/**
 * pvb_mig_verify - walk the list and check every page, for tests
 * @m: the backend
 * @c: the findings
 *
 * A walk of a multi-GiB balloon under a spinlock with interrupts off would
 * hold off interrupts for as long as it takes (issue 14).  So the lock is
 * let go every PVB_VERIFY_BATCH pages, and @m->list_gen tells, once it is
 * taken again, whether the list is as it was: then the walk goes on from
 * the same page, else it begins again.  After PVB_VERIFY_RESTARTS such
 * restarts (a list that changes all the time: the stress test) one walk
 * holds the lock throughout, so that it ends.
 */
void pvb_mig_verify(struct pvb_mig *m, struct pvb_mig_check *c)
{
	unsigned long flags, gen, breaks = 0, restarts = 0;
	struct page *page;

again:
	memset(c, 0, sizeof(*c));
	spin_lock_irqsave(&pvb_lock, flags);
	list_for_each_entry(page, &m->pages, lru) {
		c->walked++;
		if (page_private(page) != (unsigned long)m || !PageOffline(page) ||
		    (m->movable && !__PageMovable(page)))
			c->bad++;
		if (c->walked % PVB_VERIFY_BATCH || restarts >= PVB_VERIFY_RESTARTS)
			continue;
		gen = m->list_gen;
		spin_unlock_irqrestore(&pvb_lock, flags);
		breaks++;
		cond_resched();
		spin_lock_irqsave(&pvb_lock, flags);
		if (m->list_gen != gen) {
			/* @page may be gone: its ->lru cannot be followed. */
			spin_unlock_irqrestore(&pvb_lock, flags);
			restarts++;
			goto again;
		}
	}
	c->listed = m->nr_listed;
	c->isolated = m->nr_isolated;
	spin_unlock_irqrestore(&pvb_lock, flags);
	c->breaks = breaks;
	c->restarts = restarts;
}

void pvb_mig_set_isolation(struct pvb_mig *m, bool allow)
{
	WRITE_ONCE(m->allow_isolate, allow);
}

void pvb_mig_set_adjust_managed(struct pvb_mig *m, bool adjust)
{
	WRITE_ONCE(m->adjust_managed, adjust);
}

/* The mode in force, for the stats file (it can differ from the parameter). */
bool pvb_mig_adjust_managed(struct pvb_mig *m)
{
	return READ_ONCE(m->adjust_managed);
}

unsigned long pvb_mig_isolate_refused(struct pvb_mig *m)
{
	return atomic_long_read(&m->isolate_refused);
}

/* Callbacks in flight, for pvb_mig_quiesce(). */
DEFINE_STATIC_SRCU(pvb_cb_srcu);

static bool pvb_mops_isolate(struct page *page, isolate_mode_t mode)
{
	struct pvb_mig *m;
	unsigned long flags;
	bool ok = false;
	int idx;

	idx = srcu_read_lock(&pvb_cb_srcu);
	spin_lock_irqsave(&pvb_lock, flags);
	m = (struct pvb_mig *)page_private(page);
	/* !m: being inflated, or deflated under us: not ours to give. */
	if (m && READ_ONCE(m->allow_isolate)) {
		list_del(&page->lru);
		m->nr_listed--;
		m->nr_isolated++;
		m->list_gen++;
		ok = true;
	}
	spin_unlock_irqrestore(&pvb_lock, flags);
	if (m && !ok)
		atomic_long_inc(&m->isolate_refused);
	srcu_read_unlock(&pvb_cb_srcu, idx);
	return ok;
}

/* Caller holds pvb_lock. */
static void pvb_mig_unisolate_locked(struct pvb_mig *m)
{
	lockdep_assert_held(&pvb_lock);
	if (!--m->nr_isolated)
		wake_up_all(&m->isolated_wq);
}

static void pvb_mops_putback(struct page *page)
{
	struct pvb_mig *m;
	unsigned long flags;
	int idx;

	idx = srcu_read_lock(&pvb_cb_srcu);
	spin_lock_irqsave(&pvb_lock, flags);
	m = (struct pvb_mig *)page_private(page);
	if (!WARN_ON_ONCE(!m)) {
		list_add(&page->lru, &m->pages);
		m->nr_listed++;
		m->list_gen++;
		pvb_mig_unisolate_locked(m);
	}
	spin_unlock_irqrestore(&pvb_lock, flags);
	srcu_read_unlock(&pvb_cb_srcu, idx);
}

/*
 * Move the balloon from @page to @newpage.  Both are locked by the
 * migration core; @page is isolated, so only we can reach it.
 */
static int __pvb_mops_migrate(struct page *newpage, struct page *page,
			      enum migrate_mode mode)
{
	unsigned long flags;
	struct pvb_mig *m;
	int rc;

	spin_lock_irqsave(&pvb_lock, flags);
	m = (struct pvb_mig *)page_private(page);
	spin_unlock_irqrestore(&pvb_lock, flags);
	/* An isolated page cannot be deflated: this is a bug, not input. */
	if (WARN_ON_ONCE(!m))
		return -EAGAIN;
	if (pvb_migrate_mode_nocopy(mode))
		return -EINVAL;

	/* The host first (it may refuse); nothing has changed yet. */
	rc = m->hooks->migrate(m, newpage, page, mode);
	if (rc)
		return rc;

	get_page(newpage);	/* the balloon's reference */
	__SetPageOffline(newpage);
	__SetPageMovable(newpage, &pvb_mops);
	pvb_mig_account(m, newpage, 1);

	spin_lock_irqsave(&pvb_lock, flags);
	set_page_private(newpage, (unsigned long)m);
	list_add(&newpage->lru, &m->pages);
	m->nr_listed++;
	m->list_gen++;
	set_page_private(page, 0);
	/* Counted before anyone can see the move finished. */
	pvb_count_migrate_event();
	m->hooks->migrated(m, newpage, page);
	pvb_mig_unisolate_locked(m);
	spin_unlock_irqrestore(&pvb_lock, flags);

	__ClearPageMovable(page);
	__ClearPageOffline(page);
	pvb_mig_account(m, page, -1);

	put_page(page);		/* drop the balloon's reference */
	return MIGRATEPAGE_SUCCESS;
}

static int pvb_mops_migrate(struct page *newpage, struct page *page,
			    enum migrate_mode mode)
{
	int idx = srcu_read_lock(&pvb_cb_srcu);
	int rc = __pvb_mops_migrate(newpage, page, mode);

	srcu_read_unlock(&pvb_cb_srcu, idx);
	return rc;
}

static const struct movable_operations pvb_mops = {
	.isolate_page = pvb_mops_isolate,
	.migrate_page = pvb_mops_migrate,
	.putback_page = pvb_mops_putback,
};

void pvb_mig_init(struct pvb_mig *m, const struct pvb_mig_hooks *hooks,
		  bool movable, bool adjust_managed)
{
	INIT_LIST_HEAD(&m->pages);
	m->nr_listed = 0;
	m->nr_isolated = 0;
	m->list_gen = 0;
	init_waitqueue_head(&m->isolated_wq);
	m->hooks = hooks;
	m->movable = movable;
	m->allow_isolate = true;
	m->adjust_managed = adjust_managed;
	atomic_long_set(&m->isolate_refused, 0);
}

/**
 * pvb_mig_drain - wait until compaction has given back every isolated page
 * @m: the backend
 *
 * For module unload: isolation is switched off first, so the wait ends -
 * compaction puts back or migrates what it holds within one pass - and it
 * cannot be cut short, because an isolated page still points at our code.
 */
void pvb_mig_drain(struct pvb_mig *m)
{
	unsigned long listed, isolated;
	unsigned int waited = 0;

	pvb_mig_set_isolation(m, false);
	for (;;) {
		pvb_mig_counts(m, &listed, &isolated);
		if (!isolated)
			return;
		wait_event_timeout(m->isolated_wq,
				   ({ pvb_mig_counts(m, &listed, &isolated);
				      !isolated; }), HZ);
		if (isolated && ++waited % 10 == 0)
			pr_warn("still waiting for %lu isolated pages to come back from compaction\n",
				isolated);
	}
}

/**
 * pvb_mig_quiesce - wait for every callback still running our code
 * @m: the backend, whose balloon is empty
 *
 * For module unload, after the last page has left the balloon (no page
 * points at pvb_mops any more, so no new callback can start).
 */
void pvb_mig_quiesce(struct pvb_mig *m)
{
	synchronize_srcu(&pvb_cb_srcu);
}

#endif /* PVB_BACKEND_MOPS */
