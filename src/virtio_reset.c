// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: a host that stops answering, the device's
 * reset, and the recovery that follows.
 *
 * A host that sits on a buffer for host_timeout_ms is declared broken
 * (pvb_declare_broken()): operations fail with -EIO at once, and a worker
 * resets the device, empties the balloon without telling the host (after a
 * reset it touches none of our pages), negotiates and sets up the queues
 * again and rebuilds the balloon from the host's target
 * (pvb_recover_work()).  With recover=0 the balloon stops talking to it
 * instead; either way, on removal the device is reset before the pages go
 * back, so unload never hangs.
 *
 * Owns the recover parameter.  Calls the queues (virtio_queue.c), the
 * device's start and halt (virtio.c), page reporting's stop and start
 * (virtio_report.c) and the core.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/lockdep.h>
#include <linux/module.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "pvb_core.h"
#include "pvb_virtio_dev.h"

static bool pvb_recover = true;
module_param_named(recover, pvb_recover, bool, 0644);
MODULE_PARM_DESC(recover,
		 "Reset and restart a device whose host did not acknowledge in time, instead of failing every later request (default 1)");

/**
 * pvb_declare_broken - the host sat on a buffer for host_timeout_ms
 * @pv: the device; caller holds pv->lock
 * @what: the buffer, for dmesg ("an inflate", "a free page report", ...)
 *
 * From now on operations fail with -EIO at once instead of waiting again;
 * with recover=1 the recovery worker is queued, unless removal or freeze
 * began (no_recover).  Said once in dmesg per breakage.
 */
void pvb_declare_broken(struct pvb_virtio *pv, const char *what)
{
	bool recover = READ_ONCE(pvb_recover);
	unsigned long flags;

	lockdep_assert_held(&pv->lock);
	if (!pv->broken)
		dev_err(&pv->vdev->dev,
			"host did not acknowledge %s within %u ms: %s\n",
			what, jiffies_to_msecs(pvb_host_timeout()),
			recover ? "resetting the device" :
			"balloon stops talking to it (recover=0)");
	WRITE_ONCE(pv->broken, true);
	/* Waiters for the host give up now (pvb_report_may_claim()). */
	wake_up_all(&pv->acked);
	if (!recover)
		return;
	spin_lock_irqsave(&pv->stop_lock, flags);
	if (!pv->no_recover)
		queue_work(system_freezable_wq, &pv->recover_work);
	spin_unlock_irqrestore(&pv->stop_lock, flags);
}

/*
 * Reset the device and drop its queues.  Before a reset every buffer the
 * host holds must be back - or, from a broken host, forgotten: after the
 * reset the host touches nothing, so the pages we held for it are free.
 */
void pvb_reset(struct pvb_virtio *pv)
{
	unsigned int i;

	pvb_lock(pv);
	pvb_wait_inflates(pv);
	pvb_wait_all(pv, pv->defl, "a deflate at reset");
	pvb_wait_buf(pv, pv->mig_defl, "a migration deflate at reset");
	virtio_reset_device(pv->vdev);
	WRITE_ONCE(pv->dead, true);
	wake_up_all(&pv->acked);
	for (i = 0; i < pv->nbufs; i++) {
		pvb_vbuf_done(pv->infl[i]);
		pvb_vbuf_done(pv->defl[i]);
	}
	pvb_vbuf_done(pv->mig_infl);
	pvb_vbuf_done(pv->mig_defl);
	pvb_range_forget(pv);
	pvb_unlock(pv);
	cancel_delayed_work_sync(&pv->reap_work);
	/* A report woken by the reset may still be looking at its queue. */
	wait_event(pv->acked, pvb_report_idle(pv));
	pv->vdev->config->del_vqs(pv->vdev);
	/* Anything that still reaches for a queue now oopses, never a UAF. */
	memset(pv->vqs, 0, sizeof(pv->vqs));
}

/*
 * After a reset: the queues again, and buffers sized for them (they may
 * have come back with another size); all buffers are idle after the reset.
 * The device is left to pvb_start().
 */
int pvb_reinit(struct pvb_virtio *pv)
{
	int err = pvb_find_vqs(pv);

	if (err)
		return err;
	pvb_lock(pv);
	pvb_free_bufs(pv);
	err = pvb_alloc_bufs(pv);
	if (!err) {
		pv->dead = false;
		pv->broken = false;
	}
	pvb_unlock(pv);
	if (err) {
		virtio_reset_device(pv->vdev);
		pv->vdev->config->del_vqs(pv->vdev);
		memset(pv->vqs, 0, sizeof(pv->vqs));
	}
	return err;
}

/*
 * After our own reset the device status is 0 and the host has forgotten
 * the features: negotiate again as virtio_device_restore() does for a
 * resume (ACKNOWLEDGE, DRIVER, the features we had, FEATURES_OK) before
 * the queues are set up.  Without it QEMU takes the new queues for a
 * legacy device's and stops answering after the first few buffers.
 */
static int pvb_renegotiate(struct virtio_device *vdev)
{
	int err;

	virtio_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	virtio_add_status(vdev, VIRTIO_CONFIG_S_DRIVER);
	err = vdev->config->finalize_features(vdev);
	if (err)
		return err;
	if (!virtio_has_feature(vdev, VIRTIO_F_VERSION_1))
		return 0;	/* legacy devices have no FEATURES_OK */
	virtio_add_status(vdev, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -ENODEV;
	return 0;
}

/**
 * pvb_recover_work - start again with a host that did not answer in time
 * @work: pvb_virtio.recover_work
 *
 * As a suspend and resume would: reset the device - after which the host
 * touches none of our pages and forgets the balloon - empty the balloon
 * without telling it (buffers it held are forgotten, their pages freed),
 * set the queues up again and rebuild the balloon from the host's target.
 * The in-tree driver has no such path; before this, one slow acknowledgement
 * made every later inflate and deflate fail, the OOM notifier included.
 * A reset that cannot be followed by new queues leaves the device dead:
 * the balloon then stays empty and every inflate fails with -EIO.
 */
void pvb_recover_work(struct work_struct *work)
{
	struct pvb_virtio *pv = container_of(work, struct pvb_virtio,
					     recover_work);
	struct device *dev = &pv->vdev->dev;
	unsigned long pages = pvb_pages(pv->b);
	int err;

	pvb_halt(pv);
	/* The reset also wakes a page report that waits on the dead host. */
	pvb_reset(pv);
	pvb_stop_reporting(pv);
	pvb_set_target(pv->b, 0, NULL);
	err = pvb_renegotiate(pv->vdev);
	if (!err)
		err = pvb_reinit(pv);
	if (err) {
		dev_err(dev, "recovery: the device did not come back after its reset (error %d); the balloon stays empty\n",
			err);
		return;
	}
	pvb_start_reporting(pv);
	WRITE_ONCE(pv->recoveries, pv->recoveries + 1);
	dev_info(dev, "recovery %lu: device reset and restarted, %lu pages returned to the guest; rebuilding the balloon from the host's target\n",
		 pv->recoveries, pages);
	pvb_start(pv);
}

/* No recovery from now on, and none running: for removal and freeze. */
void pvb_stop_recovery(struct pvb_virtio *pv)
{
	spin_lock_irq(&pv->stop_lock);
	pv->no_recover = true;
	spin_unlock_irq(&pv->stop_lock);
	cancel_work_sync(&pv->recover_work);
}
