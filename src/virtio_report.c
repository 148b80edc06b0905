// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: memory given back outside a resize -
 * deflate-on-OOM (VIRTIO_BALLOON_F_DEFLATE_ON_OOM) and free page reporting
 * (VIRTIO_BALLOON_F_REPORTING, through mm/page_reporting.c).
 *
 * Owns the oom_deflate_pages parameter.  The OOM notifier only calls the
 * core (pvb_shrink()); reporting uses its own queue and, when the host
 * sits on a report, pvb_declare_broken() and pvb_reset() (virtio_reset.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/page_reporting.h>
#include <linux/scatterlist.h>
#include <linux/virtio.h>
#include <linux/wait.h>

#include "pvb_core.h"
#include "pvb_virtio_dev.h"

/*
 * Pages the deflate-on-OOM notifier gives back per call.
 * The in-tree driver's fixed 1 MiB makes an OOM-ing guest spin through the
 * notifier (firecracker issue 4324); a bigger chunk ends it sooner.
 */
#define PVB_OOM_PAGES_MIN	1
#define PVB_OOM_PAGES_MAX	(1U << 18)	/* 1 GiB */

static unsigned int pvb_oom_deflate_pages = 4096;	/* 16 MiB */

static int pvb_oom_pages_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;

	if (kstrtouint(val, 0, &v) || v < PVB_OOM_PAGES_MIN ||
	    v > PVB_OOM_PAGES_MAX) {
		pr_err("invalid oom_deflate_pages=%s: expected a number of pages from %u to %u\n",
		       val, PVB_OOM_PAGES_MIN, PVB_OOM_PAGES_MAX);
		return -EINVAL;
	}
	*(unsigned int *)kp->arg = v;
	return 0;
}

static const struct kernel_param_ops pvb_oom_pages_ops = {
	.set = pvb_oom_pages_set,
	.get = param_get_uint,
};
module_param_cb(oom_deflate_pages, &pvb_oom_pages_ops, &pvb_oom_deflate_pages,
		0644);
MODULE_PARM_DESC(oom_deflate_pages,
		 "Pages given back per OOM notification when the host offers DEFLATE_ON_OOM (1-262144, default 4096 = 16 MiB)");

int pvb_oom_notify(struct notifier_block *nb, unsigned long dummy,
		   void *parm)
{
	struct pvb_virtio *pv = container_of(nb, struct pvb_virtio, oom_nb);
	unsigned long *freed = parm, done = 0;

	pvb_shrink(pv->b, READ_ONCE(pvb_oom_deflate_pages), &done);
	*freed += done;
	atomic_long_add(done, &pv->oom_pages);
	if (done)
		pr_info_ratelimited("out of memory: gave back %lu pages (deflate-on-oom)\n",
				    done);
	return NOTIFY_OK;
}

/*
 * A reset (dead) first: after it the queue may be about to go away, and
 * pvb_reset() waits for the reporter to let go of it before deleting it.
 */
static bool pvb_report_back(struct pvb_virtio *pv, struct virtqueue *vq)
{
	unsigned int len;

	return READ_ONCE(pv->dead) || virtqueue_get_buf(vq, &len);
}

/*
 * Take the reporting queue for a report: 1, or 0 while range buffers own
 * it (virtio_range.c), or -ESHUTDOWN when reports stopped or the host
 * cannot take one.
 */
static int pvb_report_claim(struct pvb_virtio *pv)
{
	int ret = 1;

	spin_lock_irq(&pv->stop_lock);
	if (pv->report_stop || READ_ONCE(pv->broken) || READ_ONCE(pv->dead))
		ret = -ESHUTDOWN;
	else if (pv->range_busy)
		ret = 0;
	else
		pv->report_busy = true;
	spin_unlock_irq(&pv->stop_lock);
	return ret;
}

/* Lockless, for a wait: may pvb_report_claim() have something new to say? */
static bool pvb_report_may_claim(struct pvb_virtio *pv)
{
	return !READ_ONCE(pv->range_busy) || READ_ONCE(pv->report_stop) ||
	       READ_ONCE(pv->broken) || READ_ONCE(pv->dead);
}

/**
 * pvb_report - page reporting's callback: tell the host about free pages
 * @prdev: pvb_virtio.prdev
 * @sg: the free pages, one entry per block
 * @nents: entries of @sg
 *
 * Free pages the host may still discard must not go back to the allocator,
 * so a report in flight is waited for until the host returns it or the
 * device is reset (after a reset the host touches nothing).  A host that
 * sits on it past host_timeout_ms is declared broken, which starts the
 * reset-and-recover path; removal and freeze stop reports first
 * (pvb_stop_reporting()).  The in-tree driver waits without a bound, so a
 * host that stops serving this queue hangs its removal in D state.
 *
 * Return: 0 when the host took the pages, an error (pages unreported) else.
 */
int pvb_report(struct page_reporting_dev_info *prdev,
	       struct scatterlist *sg, unsigned int nents)
{
	struct pvb_virtio *pv = container_of(prdev, struct pvb_virtio, prdev);
	unsigned long pages = 0, deadline;
	struct virtqueue *vq;
	struct scatterlist *s;
	unsigned int i;
	int err = 0;

	/*
	 * The range buffers of a resize round may have the queue: wait, but
	 * not past host_timeout_ms in all (page reporting's worker is
	 * freezable), and not once reports stop or the host broke.  Pages
	 * left unreported are reported when more memory is freed.
	 */
	deadline = jiffies + pvb_host_timeout();
	while (!(err = pvb_report_claim(pv))) {
		long left = (long)(deadline - jiffies);

		if (left <= 0 ||
		    !wait_event_timeout(pv->acked, pvb_report_may_claim(pv), left))
			return -EBUSY;
	}
	if (err < 0)
		return err;
	err = 0;
	/* Busy: pvb_reset() keeps the queue until we are done with it. */
	vq = pv->vqs[PVB_VQ_REPORTING];
	/*
	 * The queue is empty here: page reporting sends one batch at a time,
	 * and range buffers are all back before they let go of it.
	 */
	err = virtqueue_add_inbuf(vq, sg, nents, pv, GFP_NOWAIT | __GFP_NOWARN);
	if (err)
		goto out;
	pvb_host_kick(vq);
	if (!wait_event_timeout(pv->acked, pvb_report_back(pv, vq),
				pvb_host_timeout())) {
		pvb_lock(pv);
		pvb_declare_broken(pv, "a free page report");
		pvb_unlock(pv);
		wait_event(pv->acked, pvb_report_back(pv, vq));
	}
	if (READ_ONCE(pv->dead)) {
		err = -ENODEV;
		goto out;
	}
	for_each_sg(sg, s, nents, i)
		pages += s->length >> PAGE_SHIFT;
	WRITE_ONCE(pv->reported_pages, pv->reported_pages + pages);
out:
	spin_lock_irq(&pv->stop_lock);
	pv->report_busy = false;
	spin_unlock_irq(&pv->stop_lock);
	wake_up_all(&pv->acked);
	return err;
}

bool pvb_report_idle(struct pvb_virtio *pv)
{
	bool busy;

	spin_lock_irq(&pv->stop_lock);
	busy = pv->report_busy;
	spin_unlock_irq(&pv->stop_lock);
	return !busy;
}

/*
 * Unregister from page reporting without hanging on a host that sits on a
 * report: no new report starts, and one in flight gets host_timeout_ms
 * before the device is reset under it (which wakes it; the host then
 * touches none of its pages).  page_reporting_unregister() waits for the
 * reporting work, so it must come after.  Recovery must be stopped.
 */
void pvb_stop_reporting(struct pvb_virtio *pv)
{
	if (!pv->reporting)
		return;
	spin_lock_irq(&pv->stop_lock);
	WRITE_ONCE(pv->report_stop, true);
	spin_unlock_irq(&pv->stop_lock);
	/* A report waiting for the queue gives up now. */
	wake_up_all(&pv->acked);
	if (!wait_event_timeout(pv->acked, pvb_report_idle(pv),
				pvb_host_timeout()) && !pv->dead) {
		pvb_lock(pv);
		pvb_declare_broken(pv, "a free page report");
		pvb_unlock(pv);
		pvb_reset(pv);
	}
	page_reporting_unregister(&pv->prdev);
}

/* Register with page reporting again (restore, recovery). */
void pvb_start_reporting(struct pvb_virtio *pv)
{
	if (!pv->reporting)
		return;
	spin_lock_irq(&pv->stop_lock);
	WRITE_ONCE(pv->report_stop, false);
	spin_unlock_irq(&pv->stop_lock);
	if (page_reporting_register(&pv->prdev)) {
		dev_warn(&pv->vdev->dev, "free page reporting could not be registered again; it stays off\n");
		pv->reporting = false;
	}
}
