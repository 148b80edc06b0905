// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: range discards.  Each whole 2 MiB block of
 * an inflate goes to the host as one range on the free page reporting
 * queue, instead of 512 PFNs on the inflate queue.
 *
 * Why: the inflate queue carries 4 KiB PFNs, and the hosts free them one
 * PFN at a time - QEMU's balloon_inflate_page() makes one
 * ram_block_discard_range() (one madvise()) per PFN, cloud-hypervisor one
 * release per PFN.  Per GiB that is 262144 system calls on the host, about
 * as long as the guest's own work.  The reporting queue
 * (VIRTIO_BALLOON_F_REPORTING) carries scatter-gather entries of any
 * length, and every host discards an entry as one range:
 *
 *  - QEMU (hw/virtio/virtio-balloon.c, virtio_balloon_handle_report()):
 *    one ram_block_discard_range() per device-writable entry that is
 *    aligned to its RAM block's page size (2 MiB on hugetlbfs) - so one
 *    madvise(), or one fallocate(PUNCH_HOLE) for file-backed memory, per
 *    block.  It acknowledges without discarding while discards are
 *    inhibited (VFIO, postcopy), as it then ignores the inflate queue too,
 *    or when poison_val is non-zero - which pvb_range_off() rules out.
 *  - Firecracker (>= 1.14, process_free_page_reporting_queue()): one
 *    discard_range() per descriptor.
 *  - cloud-hypervisor (>= v22, process_reporting_queue()): one
 *    release_memory_range() per descriptor (punch hole, then
 *    MADV_DONTNEED).
 *  - crosvm (--balloon-page-reporting): one remove_range() per entry.
 *
 * Within the virtio spec (device-types/balloon, "Free Page Reporting"): the
 * driver offers pages on the reporting queue, the device may discard them,
 * and the driver must not use them until the device has returned the
 * buffer, after which their content is undefined (zero on all of the
 * above).  Our blocks stay in the balloon - allocated, counted in
 * `actual`, /proc/vmstat and MemTotal exactly as inflate-queue pages - and
 * nothing deflates or migrates them before their buffer is back
 * (pvb_wait_inflates() waits for range buffers too).  Deflate tells the
 * host through the deflate queue as for every page, which costs it a
 * MADV_WILLNEED hint at most.  A host that ignores the entries
 * acknowledges them having freed nothing: the pages are still the
 * balloon's and nothing is lost, only less memory is returned - as with a
 * host that ignores the inflate queue.
 *
 * The reporting queue is shared with mm's free page reporting
 * (pvb_report()), which the kernel runs one batch at a time: the range
 * buffers own the queue from the first sent until the end of the resize
 * round (pvb_range_wait()), a report waits for that, and an inflate that
 * finds a report in flight sends its blocks on the inflate queue.
 *
 * Owns the range_discard parameter.  Everything here runs under
 * pvb_virtio.lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/list.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/virtio.h>
#include <linux/wait.h>

#include "pvb_virtio_dev.h"

static bool pvb_range_discard = true;
module_param_named(range_discard, pvb_range_discard, bool, 0644);
MODULE_PARM_DESC(range_discard,
		 "Hand whole 2 MiB blocks to the host as one range each on the free page reporting queue, when the host offers it (default 1)");

/**
 * pvb_range_off - why range discards are off for this device
 * @pv: the device
 *
 * Return: NULL when they are on, else the reason, for the stats file.
 */
const char *pvb_range_off(struct pvb_virtio *pv)
{
	if (!pvb_has(pv, VIRTIO_BALLOON_F_REPORTING))
		return "off (the host offers no reporting queue)";
	/*
	 * QEMU acknowledges but never discards entries while poison_val is
	 * non-zero (virtio.c writes it): blocks must take the inflate queue.
	 */
	if (pvb_has(pv, VIRTIO_BALLOON_F_PAGE_POISON) && !want_init_on_free())
		return "off (page poisoning)";
	if (!READ_ONCE(pvb_range_discard))
		return "off (range_discard=0)";
	if (!pv->range_bufs)
		return "off (the reporting queue holds no range buffer)";
	return NULL;
}

/* Caller holds pv->lock.  Collect the range buffers the host returned. */
void pvb_range_reap(struct pvb_virtio *pv)
{
	struct pvb_rbuf *rb;
	unsigned int len;

	lockdep_assert_held(&pv->lock);
	/* Only while we own the queue: otherwise its buffers are a report's. */
	if (!pv->range_busy)
		return;
	while ((rb = virtqueue_get_buf(pv->vqs[PVB_VQ_REPORTING], &len)))
		WRITE_ONCE(rb->busy, false);
}

static struct pvb_rbuf *pvb_range_idle(struct pvb_virtio *pv)
{
	unsigned int i;

	pvb_range_reap(pv);
	for (i = 0; i < pv->range_bufs; i++)
		if (!READ_ONCE(pv->ranges[i].busy))
			return &pv->ranges[i];
	return NULL;
}

static bool pvb_range_all_idle(struct pvb_virtio *pv)
{
	unsigned int i;

	pvb_range_reap(pv);
	for (i = 0; i < pv->range_bufs; i++)
		if (READ_ONCE(pv->ranges[i].busy))
			return false;
	return true;
}

/* Caller holds pv->lock.  Is a range buffer still with the host? */
bool pvb_range_pending(struct pvb_virtio *pv)
{
	lockdep_assert_held(&pv->lock);
	return !pvb_range_all_idle(pv);
}

/* Give the queue back to free page reporting, which may wait for it. */
static void pvb_range_release(struct pvb_virtio *pv)
{
	spin_lock_irq(&pv->stop_lock);
	WRITE_ONCE(pv->range_busy, false);
	spin_unlock_irq(&pv->stop_lock);
	wake_up_all(&pv->acked);
}

/**
 * pvb_range_wait - wait until the host returned every range buffer
 * @pv: the device; caller holds pv->lock
 *
 * Then the pages of the ranges may be deflated or migrated, and free page
 * reporting may have the queue again.
 *
 * Return: 0, -ETIMEDOUT when the host sat on a buffer for host_timeout_ms
 * (it is declared broken), or -EIO when it already was.
 */
int pvb_range_wait(struct pvb_virtio *pv)
{
	lockdep_assert_held(&pv->lock);
	if (!pv->range_busy)
		return 0;
	if (pv->broken)
		return -EIO;
	if (!wait_event_timeout(pv->acked, pvb_range_all_idle(pv),
				pvb_host_timeout())) {
		pvb_declare_broken(pv, "a range discard");
		return -ETIMEDOUT;
	}
	pvb_range_release(pv);
	return 0;
}

/* Caller holds pv->lock; the device was reset: the host has no buffer. */
void pvb_range_forget(struct pvb_virtio *pv)
{
	unsigned int i;

	lockdep_assert_held(&pv->lock);
	for (i = 0; i < pv->range_bufs; i++)
		WRITE_ONCE(pv->ranges[i].busy, false);
	if (pv->range_busy)
		pvb_range_release(pv);
}

/* How many range buffers the reporting queue (one descriptor an entry) holds. */
void pvb_range_setup(struct pvb_virtio *pv)
{
	struct virtqueue *vq = pv->vqs[PVB_VQ_REPORTING];

	pv->range_bufs = 0;
	if (vq)
		pv->range_bufs = min_t(unsigned int, PVB_RANGE_BUFS,
				       virtqueue_get_vring_size(vq) /
				       PVB_RANGE_ENTRIES);
}

/*
 * Caller holds pv->lock.  An idle range buffer, with the queue ours; NULL
 * when free page reporting has the queue (send on the inflate queue
 * instead), or an ERR_PTR when the host sat on every buffer.
 */
static struct pvb_rbuf *pvb_range_get(struct pvb_virtio *pv)
{
	struct pvb_rbuf *rb;
	bool ours;

	spin_lock_irq(&pv->stop_lock);
	ours = pv->range_busy || !pv->report_busy;
	if (ours)
		WRITE_ONCE(pv->range_busy, true);
	spin_unlock_irq(&pv->stop_lock);
	if (!ours)
		return NULL;
	rb = pvb_range_idle(pv);
	if (rb)
		return rb;
	pvb_host_kick(pv->vqs[PVB_VQ_REPORTING]);
	if (!wait_event_timeout(pv->acked, pvb_range_idle(pv),
				pvb_host_timeout())) {
		pvb_declare_broken(pv, "a range discard");
		return ERR_PTR(-ETIMEDOUT);
	}
	return pvb_range_idle(pv);
}

/*
 * The last entry of the whole 2 MiB block that starts at @pos - 512 pages
 * in a row with ascending PFNs from an aligned one, as pvb_alloc_batch()
 * lays out a block - or NULL.
 */
static struct list_head *pvb_block_end(struct list_head *head,
				       struct list_head *pos)
{
	unsigned long pfn = page_to_pfn(list_entry(pos, struct page, lru));
	unsigned long i;

	if (!IS_ALIGNED(pfn, PVB_HUGE_PAGES))
		return NULL;
	for (i = 1; i < PVB_HUGE_PAGES; i++) {
		pos = pos->next;
		if (pos == head ||
		    page_to_pfn(list_entry(pos, struct page, lru)) != pfn + i)
			return NULL;
	}
	return pos;
}

/* Queue @rb; its pages move from @pending to @sent.  False on error. */
static bool pvb_range_queue(struct pvb_virtio *pv, struct pvb_rbuf *rb,
			    struct list_head *pending, struct list_head *sent)
{
	sg_mark_end(&rb->sg[rb->n - 1]);
	/* One descriptor per entry: pvb_validate() turns indirect off. */
	if (virtqueue_add_inbuf(pv->vqs[PVB_VQ_REPORTING], rb->sg, rb->n, rb,
				GFP_KERNEL))
		return false;
	WRITE_ONCE(rb->busy, true);
	WRITE_ONCE(pv->range_blocks, pv->range_blocks + rb->n);
	list_splice_tail_init(pending, sent);
	return true;
}

/**
 * pvb_range_send - send the whole 2 MiB blocks of an inflate as ranges
 * @pv: the device, neither dead nor broken; caller holds pv->lock
 * @pages: pages about to enter the balloon
 * @sent: where the pages of the blocks sent go
 *
 * Blocks go out PVB_RANGE_ENTRIES to a buffer, kicked once at the end.
 * The rest of @pages - and every block when range discards are off, the
 * queue is a report's, or a buffer could not be added - stays on @pages
 * for the inflate queue.  A host that sat on the buffers is declared
 * broken (pvb_range_get()); the inflate queue then fails too.
 */
void pvb_range_send(struct pvb_virtio *pv, struct list_head *pages,
		    struct list_head *sent)
{
	struct list_head *pos = pages->next;
	struct pvb_rbuf *rb = NULL;
	LIST_HEAD(pending);
	bool queued = false;

	lockdep_assert_held(&pv->lock);
	if (pvb_range_off(pv))
		return;
	while (pos != pages) {
		struct list_head *end = pvb_block_end(pages, pos);
		struct list_head *next;

		if (!end) {
			pos = pos->next;
			continue;
		}
		if (!rb) {
			rb = pvb_range_get(pv);
			if (IS_ERR_OR_NULL(rb))
				break;
			sg_init_table(rb->sg, PVB_RANGE_ENTRIES);
			rb->n = 0;
		}
		next = end->next;
		sg_set_page(&rb->sg[rb->n++], list_entry(pos, struct page, lru),
			    PVB_HUGE_PAGES << PAGE_SHIFT, 0);
		list_bulk_move_tail(&pending, pos, end);
		pos = next;
		if (rb->n == PVB_RANGE_ENTRIES) {
			bool ok = pvb_range_queue(pv, rb, &pending, sent);

			rb = NULL;
			if (!ok)
				break;
			queued = true;
		}
	}
	/* A part-filled buffer, unless the loop stopped on an error. */
	if (pos == pages && rb && rb->n) {
		if (pvb_range_queue(pv, rb, &pending, sent))
			queued = true;
	}
	/* Not sent: back to the inflate queue's share. */
	list_splice(&pending, pages);
	if (queued)
		pvb_host_kick(pv->vqs[PVB_VQ_REPORTING]);
}
