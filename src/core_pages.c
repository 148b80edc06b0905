// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon core: pages into and out of the balloon.
 *
 * Allocation (whole 2 MiB blocks from the guest's surplus first, never
 * below the reserve, never the OOM killer), the inflate and deflate loops
 * that hand each batch to the front-end, and the timing of the last of
 * each.  core.c decides how many pages move; the migration backend
 * (pvb_migrate.h) keeps the list they go on.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/ktime.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>

#include "pvb_core.h"
#include "pvb_core_pages.h"

/* How long a deflate waits for compaction to hand back isolated pages. */
#define PVB_ISOLATED_WAIT_MS	10000

/**
 * pvb_put_page_list() - give pages that left the balloon back to the guest
 * @pages: the pages, linked through page->lru; empty on return
 *
 * The core frees what it allocated with this, and so does a front-end for
 * the pages it took off a @deflate list to free once the host acknowledged
 * them (struct pvb_frontend_ops): one place drops the balloon's reference.
 *
 * Return: how many pages there were.
 */
unsigned long pvb_put_page_list(struct list_head *pages)
{
	struct page *page, *tmp;
	unsigned long n = 0;

	list_for_each_entry_safe(page, tmp, pages, lru) {
		list_del(&page->lru);
		put_page(page);
		n++;
	}
	return n;
}

static unsigned long pvb_list_count(struct list_head *pages)
{
	struct list_head *pos;
	unsigned long n = 0;

	list_for_each(pos, pages)
		n++;
	return n;
}

/*
 * Free 2 MiB blocks the guest can spare for the balloon: those beyond
 * b->huge_keep pages.  Read without the zone locks - a hint, not a count.
 */
static unsigned long pvb_surplus_blocks(struct pvb_balloon *b)
{
	unsigned long free = 0;
	unsigned int o;
	int nid, z;

	for_each_online_node(nid) {
		pg_data_t *pgdat = NODE_DATA(nid);

		for (z = 0; z < MAX_NR_ZONES; z++) {
			struct zone *zone = &pgdat->node_zones[z];

			if (!populated_zone(zone))
				continue;
			/* ARRAY_SIZE: MAX_ORDER changed meaning in v6.4. */
			for (o = PVB_HUGE_ORDER; o < ARRAY_SIZE(zone->free_area); o++)
				/* Unlocked: a hint is not worth the zone lock. */
				free += data_race(zone->free_area[o].nr_free) << o;
		}
	}
	return free > b->huge_keep ? (free - b->huge_keep) >> PVB_HUGE_ORDER : 0;
}

/*
 * Allocate up to @want pages onto @batch.  __GFP_NORETRY: one round of
 * reclaim at most and never the OOM killer; __GFP_NOMEMALLOC: never the
 * emergency reserves; __GFP_NOWARN: running dry is the expected way for a
 * big inflate to end, not something to splat about.
 *
 * That alone still lets a balloon take the guest down to its min
 * watermark, and the next allocation of a user process then wakes the OOM
 * killer.  So we also stop while MemAvailable (free plus reclaimable, less
 * the watermarks) is above b->reserve: the balloon may take page cache,
 * never the last of the guest's memory.
 *
 * Whole 2 MiB blocks first, while the guest has free ones (*@huge): one
 * allocation instead of 512, and the host gets 512 contiguous PFNs in a
 * row - in one buffer on QEMU - so it can drop a whole huge page of its own
 * (hugetlbfs, THP) instead of splitting it, or merge them into ranges.
 * The block is split into 4 KiB pages that stay individually movable, so
 * compaction can still take it apart when the guest wants huge pages of
 * its own.  When no free block is left, *@huge
 * is cleared and the rest of this operation uses 4 KiB pages: asking again
 * would only fail again, and reclaim or compaction for a balloon block
 * would cost the guest more than it saves the host.
 *
 * The guest's own huge pages (THP, hugetlbfs) come from the same free
 * blocks, so the balloon takes blocks only from the surplus: it leaves
 * b->huge_keep pages of them free, and below that takes 4 KiB pages, which
 * the allocator serves from fragments first.
 */
static unsigned long pvb_alloc_batch(struct pvb_balloon *b,
				     struct list_head *batch,
				     unsigned long want, bool *huge)
{
	long avail = si_mem_available();
	unsigned long k = 0, i, blocks = 0;

	if (avail < 0 || (unsigned long)avail <= b->reserve) {
		atomic_long_inc(&b->stats.reserve_stops);
		return 0;
	}
	want = min_t(unsigned long, want, avail - b->reserve);
	if (*huge)
		blocks = pvb_surplus_blocks(b);
	while (*huge && want - k >= PVB_HUGE_PAGES) {
		struct page *page = NULL;

		if (blocks) {
			page = alloc_pages(b->gfp_huge, PVB_HUGE_ORDER);
			blocks--;
		}
		if (!page) {
			*huge = false;
			break;
		}
		split_page(page, PVB_HUGE_ORDER);
		for (i = 0; i < PVB_HUGE_PAGES; i++) {
			/*
			 * The allocator clears ->private of the head page
			 * only; a tail page may carry what its last user
			 * left there.  The backends read private == 0 as
			 * "not in the balloon" (isolation refuses it), so
			 * it must be clear before the page is marked movable.
			 */
			set_page_private(&page[i], 0);
			list_add_tail(&page[i].lru, batch);
		}
		k += PVB_HUGE_PAGES;
		atomic_long_inc(&b->stats.huge_blocks);
	}
	for (; k < want; k++) {
		struct page *page = alloc_page(b->gfp);

		if (!page) {
			atomic_long_inc(&b->stats.alloc_failed);
			break;
		}
		list_add_tail(&page->lru, batch);
	}
	return k;
}

static void pvb_record(atomic64_t *pages, atomic64_t *ns, unsigned long n,
		       ktime_t start)
{
	if (!n)
		return;
	atomic64_set(pages, n);
	atomic64_set(ns, ktime_to_ns(ktime_sub(ktime_get(), start)));
}

/* Caller holds op_lock and fe_sem for reading. */
int pvb_do_inflate(struct pvb_balloon *b, unsigned long n,
		   unsigned long *done)
{
	ktime_t start = ktime_get();
	/*
	 * Whole blocks only when the surplus covers the whole inflate.  A mix
	 * - the few surplus blocks, then single pages in the holes of a
	 * fragmented guest - left compaction idle on 7.2 (huge pages after
	 * fragmentation 85% against in-tree's 94%, balloon_migrate +0 in two
	 * rounds of three); single pages alone get in-tree's figure.
	 */
	bool huge = READ_ONCE(b->huge) &&
		    pvb_surplus_blocks(b) >= DIV_ROUND_UP(n, PVB_HUGE_PAGES);
	unsigned long got = 0;
	LIST_HEAD(batch);
	int rc = 0;

	lockdep_assert_held(&b->op_lock);
	lockdep_assert_held_read(&b->fe_sem);

	while (got < n) {
		unsigned long want = min_t(unsigned long, n - got,
					   PVB_BATCH_PAGES);
		unsigned long k;

		if (fatal_signal_pending(current)) {
			rc = -EINTR;
			break;
		}
		k = pvb_alloc_batch(b, &batch, want, &huge);
		if (k && b->fe && b->fe->inflate) {
			LIST_HEAD(unsent);

			rc = b->fe->inflate(b, &batch, k, &unsent);
			/* What the host heard of is ballooned, whatever came after. */
			k -= pvb_put_page_list(&unsent);
		}
		pvb_mig_enqueue(&b->mig, &batch);
		got += k;
		atomic_long_add(k, &b->stats.inflated);
		if (rc)
			break;
		if (k < want) {
			rc = -ENOMEM;
			break;
		}
		cond_resched();
	}
	pvb_record(&b->stats.last_inflate_pages, &b->stats.last_inflate_ns,
		   got, start);
	*done = got;
	return rc;
}

/* Caller holds op_lock and fe_sem for reading. */
int pvb_do_deflate(struct pvb_balloon *b, unsigned long n,
		   unsigned long *done, bool killable)
{
	ktime_t start = ktime_get();
	unsigned long got = 0, waited_ms = 0;
	LIST_HEAD(batch);
	int rc = 0;

	lockdep_assert_held(&b->op_lock);
	lockdep_assert_held_read(&b->fe_sem);

	while (got < n) {
		unsigned long want = min_t(unsigned long, n - got,
					   PVB_BATCH_PAGES);
		unsigned long k;

		if (killable && fatal_signal_pending(current)) {
			rc = -EINTR;
			break;
		}
		k = pvb_mig_dequeue(&b->mig, &batch, want);
		if (!k) {
			/*
			 * What is left is isolated by compaction; it comes
			 * back (putback or migration) within one pass.
			 */
			if (!pvb_pages(b)) {
				rc = -ENOENT;
				break;
			}
			if (killable && waited_ms >= PVB_ISOLATED_WAIT_MS) {
				rc = -EBUSY;
				break;
			}
			usleep_range(1000, 2000);
			waited_ms += 2;
			continue;
		}
		if (b->fe && b->fe->deflate) {
			rc = b->fe->deflate(b, &batch, k);
			if (rc) {
				/*
				 * The host was not told of what is left on
				 * @batch: those pages must not be reused.
				 * They go back into the balloon (the vm
				 * events count them out and in); the ones
				 * sent are deflated.
				 */
				unsigned long left = pvb_list_count(&batch);

				pvb_mig_enqueue(&b->mig, &batch);
				got += k - left;
				atomic_long_add(k - left, &b->stats.deflated);
				break;
			}
		}
		pvb_put_page_list(&batch);
		got += k;
		atomic_long_add(k, &b->stats.deflated);
		cond_resched();
	}
	pvb_record(&b->stats.last_deflate_pages, &b->stats.last_deflate_ns,
		   got, start);
	*done = got;
	return rc;
}
