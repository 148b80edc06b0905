// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: the device's life - probe, remove,
 * suspend and resume, feature validation - for a virtio-balloon device
 * (virtio device id 5; QEMU, Firecracker, cloud-hypervisor, crosvm, over
 * virtio-pci or virtio-mmio).
 *
 * The front-end is split by job, each file a room of its own:
 *   virtio.c           the device's life (this file)
 *   virtio_queue.c     inflate/deflate queues, buffers, waits for the host
 *   virtio_ops.c       the operations the core calls; the host's target
 *   virtio_reset.c     an unresponsive host: reset and recovery
 *   virtio_report.c    deflate-on-OOM and free page reporting
 *   virtio_range.c     whole 2 MiB blocks as ranges on the reporting queue
 *   virtio_stats.c     the stats queue
 *   virtio_host.c      which host it is and the buffer shapes it takes
 *   virtio_takeover.c  driver registration; devices of another driver
 * They share include/pvb_virtio_dev.h and call the core (pvb_core.h); the
 * core calls them only through struct pvb_frontend_ops.
 *
 * FREE_PAGE_HINT is not offered: it only serves live migration (QEMU skips
 * hinted free pages), pvballoon does not implement it, and a host without
 * it migrates the guest correctly, only more slowly.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/oom.h>
#include <linux/poison.h>
#include <linux/page_reporting.h>
#include <linux/slab.h>
#include <linux/suspend.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "pvb_core.h"
#include "pvb_virtio_dev.h"

/*
 * DRIVER_OK, unless already set: before any buffer of ours can reach a
 * queue (the virtio spec lets a driver notify only after DRIVER_OK).
 */
static void pvb_ready(struct pvb_virtio *pv)
{
	if (!(pv->vdev->config->get_status(pv->vdev) & VIRTIO_CONFIG_S_DRIVER_OK))
		virtio_device_ready(pv->vdev);
}

/*
 * Let the host's target and stats requests in.  A stats request that came
 * while we were stopped was dropped: look for its buffer now.
 */
void pvb_start(struct pvb_virtio *pv)
{
	pvb_ready(pv);
	spin_lock_irq(&pv->stop_lock);
	pv->stop = false;
	if (pv->vqs[PVB_VQ_STATS])
		queue_work(system_freezable_wq, &pv->stats_work);
	spin_unlock_irq(&pv->stop_lock);
	pvb_recheck_target(pv);
}

void pvb_halt(struct pvb_virtio *pv)
{
	spin_lock_irq(&pv->stop_lock);
	pv->stop = true;
	spin_unlock_irq(&pv->stop_lock);
	/* A resize in size_work ends at its round's end, not at the target. */
	pvb_target_coming(pv->b);
	cancel_delayed_work_sync(&pv->size_work);
	cancel_work_sync(&pv->stats_work);
}

/**
 * pvb_pm_notify - a suspend or hibernation is coming, or is over
 * @nb: pvb_virtio.pm_nb
 * @action: PM_*_PREPARE or PM_POST_*
 * @data: unused
 *
 * The freezer waits for size_work, a freezable work, and gives up after
 * 20 s (freeze_timeout_msecs): a host-driven resize of many GiB - or one a
 * slow host acknowledges - would make the suspend fail.  Before the freezer
 * starts, the resize is told to stop at the end of its round (at most
 * 128 MiB) and size_work starts none until the sleep is over; freeze then
 * empties the balloon and restore, or PM_POST_* after a failed suspend,
 * brings it back to the host's target.  The in-tree driver has no
 * notifier: its fill/leak loops are bounded to 256 pages per work item.
 *
 * Return: NOTIFY_DONE.
 */
static int pvb_pm_notify(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	struct pvb_virtio *pv = container_of(nb, struct pvb_virtio, pm_nb);

	switch (action) {
	case PM_SUSPEND_PREPARE:
	case PM_HIBERNATION_PREPARE:
	case PM_RESTORE_PREPARE:
		spin_lock_irq(&pv->stop_lock);
		pv->sleeping = true;
		spin_unlock_irq(&pv->stop_lock);
		pvb_target_coming(pv->b);
		break;
	case PM_POST_SUSPEND:
	case PM_POST_HIBERNATION:
	case PM_POST_RESTORE:
		/*
		 * Only a resize the sleep held off or cut short is taken up
		 * again: otherwise a target the guest wrote meanwhile stands.
		 */
		spin_lock_irq(&pv->stop_lock);
		pv->sleeping = false;
		if (pv->size_pending && !pv->stop)
			mod_delayed_work(system_freezable_wq, &pv->size_work, 0);
		pv->size_pending = false;
		spin_unlock_irq(&pv->stop_lock);
		break;
	}
	return NOTIFY_DONE;
}

static bool pvb_free_page_reporting = true;
module_param_named(free_page_reporting, pvb_free_page_reporting, bool, 0444);
MODULE_PARM_DESC(free_page_reporting,
		 "Report free guest memory to a host that offers VIRTIO_BALLOON_F_REPORTING (default 1; range discards use the queue either way)");

static void pvb_free(struct pvb_virtio *pv)
{
	pvb_free_bufs(pv);
	kfree(pv);
}

static int pvb_probe(struct virtio_device *vdev)
{
	struct pvb_balloon *b = &pvb_the_balloon;
	struct pvb_virtio *pv;
	int err;

	if (!vdev->config->get) {
		dev_err(&vdev->dev, "config access disabled\n");
		return -EINVAL;
	}
	pv = kzalloc(sizeof(*pv), GFP_KERNEL);
	if (!pv)
		return -ENOMEM;
	pvb_host_identify(vdev, &pv->host);
	pv->vdev = vdev;
	pv->b = b;
	vdev->priv = pv;
	mutex_init(&pv->lock);
	init_waitqueue_head(&pv->acked);
	spin_lock_init(&pv->stop_lock);
	pv->stop = true;
	INIT_DELAYED_WORK(&pv->size_work, pvb_size_work);
	INIT_WORK(&pv->stats_work, pvb_stats_work);
	INIT_DELAYED_WORK(&pv->reap_work, pvb_reap_work);
	INIT_WORK(&pv->recover_work, pvb_recover_work);

	err = pvb_find_vqs(pv);
	if (err)
		goto out_free;
	err = pvb_alloc_bufs(pv);
	if (err)
		goto out_del_vqs;

	if (pvb_has(pv, VIRTIO_BALLOON_F_PAGE_POISON)) {
		/* 0: pages are zeroed on free; else the poison byte. */
		u32 poison_val = 0;

		if (!want_init_on_free())
			memset(&poison_val, PAGE_POISON, sizeof(poison_val));
		virtio_cwrite_le(vdev, struct virtio_balloon_config, poison_val,
				 &poison_val);
	}

	/*
	 * From attach on, a debugfs write may send buffers: the device must
	 * be live first.  Interrupts are harmless meanwhile: stop still holds
	 * off the host's target and stats requests until pvb_start().
	 */
	pvb_ready(pv);
	/*
	 * With DEFLATE_ON_OOM the balloon is memory the guest may take back
	 * any time, so MemTotal does not follow it (as in-tree).
	 */
	err = pvb_frontend_attach(b, &pvb_virtio_ops, pv,
				  !pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	if (err) {
		dev_err(&vdev->dev, "cannot attach: the balloon already has a host, or its pages could not be given back (error %d)\n",
			err);
		goto out_del_vqs;
	}
	if (pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM)) {
		pv->oom_nb.notifier_call = pvb_oom_notify;
		pv->oom_nb.priority = 80;	/* as in-tree: before others */
		err = register_oom_notifier(&pv->oom_nb);
		if (err)
			goto out_detach;
	}
	if (pvb_has(pv, VIRTIO_BALLOON_F_REPORTING) && pvb_free_page_reporting) {
		if (virtqueue_get_vring_size(pv->vqs[PVB_VQ_REPORTING]) <
		    PAGE_REPORTING_CAPACITY) {
			err = -ENOSPC;
			goto out_oom;
		}
		pv->prdev.report = pvb_report;
		err = page_reporting_register(&pv->prdev);
		if (err)
			goto out_oom;
		pv->reporting = true;
	}
	pv->pm_nb.notifier_call = pvb_pm_notify;
	err = register_pm_notifier(&pv->pm_nb);
	if (err)
		goto out_reporting;
	pvb_start(pv);
	dev_info(&vdev->dev, "pvballoon drives this virtio-balloon: host %s (%s), buffers of up to %u PFNs, %u in flight per queue\n",
		 pv->host.name, pv->host.why, pv->host.max_pfns, pv->nbufs);
	dev_info(&vdev->dev, "negotiated features%s%s%s%s%s\n",
		 pvb_has(pv, VIRTIO_BALLOON_F_MUST_TELL_HOST) ? " must-tell-host" : "",
		 pvb_has(pv, VIRTIO_BALLOON_F_STATS_VQ) ? " stats" : "",
		 pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM) ? " deflate-on-oom" : "",
		 pvb_has(pv, VIRTIO_BALLOON_F_PAGE_POISON) ? " page-poison" : "",
		 pv->reporting ? " free-page-reporting" : "");
	if (pvb_has(pv, VIRTIO_BALLOON_F_REPORTING))
		dev_info(&vdev->dev, "range discards %s\n",
			 pvb_range_off(pv) ?:
			 "on: whole 2 MiB blocks go to the host as one range each on the reporting queue");
	return 0;

out_reporting:
	if (pv->reporting)
		page_reporting_unregister(&pv->prdev);
out_oom:
	if (pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM))
		unregister_oom_notifier(&pv->oom_nb);
out_detach:
	pvb_frontend_detach(b);
out_del_vqs:
	virtio_reset_device(vdev);
	pvb_stop_recovery(pv);
	cancel_delayed_work_sync(&pv->reap_work);
	vdev->config->del_vqs(vdev);
out_free:
	pvb_free(pv);
	return err;
}

static void pvb_remove(struct virtio_device *vdev)
{
	struct pvb_virtio *pv = vdev->priv;
	unsigned long pages;

	unregister_pm_notifier(&pv->pm_nb);
	pvb_stop_recovery(pv);
	pages = pvb_pages(pv->b);

	/* A reporter stuck on a dead host is woken by the reset. */
	if (pv->broken && !pv->dead)
		pvb_reset(pv);
	pvb_stop_reporting(pv);
	if (pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM))
		unregister_oom_notifier(&pv->oom_nb);
	pvb_halt(pv);
	/* Every page back to the guest, telling the host while it listens. */
	if (!pv->broken)
		pvb_set_target(pv->b, 0, NULL);
	/*
	 * A host that stopped answering may still hold inflate buffers: only
	 * after a reset can it no longer discard what the guest gets back.
	 */
	if (pv->broken && !pv->dead)
		pvb_reset(pv);
	pvb_frontend_detach(pv->b);
	if (!pv->dead) {
		u32 actual = 0;

		virtio_cwrite_le(vdev, struct virtio_balloon_config, actual,
				 &actual);
		pvb_reset(pv);
	}
	dev_info(&vdev->dev, "released: %lu pages returned to the guest%s\n",
		 pages, pv->broken ? " (host was unresponsive; device reset first)" : "");
	pvb_free(pv);
}

#ifdef CONFIG_PM_SLEEP
/*
 * Suspend: the balloon is emptied (with the host told) and rebuilt on
 * resume from the host's target, as the host may have changed it meanwhile.
 */
static int pvb_freeze(struct virtio_device *vdev)
{
	struct pvb_virtio *pv = vdev->priv;
	int rc, tries;

	pvb_stop_recovery(pv);
	pvb_halt(pv);
	/* An OOM notification may cut in (-EAGAIN): empty is what we want. */
	for (tries = 0; tries < 3; tries++) {
		rc = pvb_set_target(pv->b, 0, NULL);
		if (rc != -EAGAIN)
			break;
	}
	if (rc && !pv->broken) {
		spin_lock_irq(&pv->stop_lock);
		pv->no_recover = false;
		spin_unlock_irq(&pv->stop_lock);
		pvb_start(pv);
		return rc;
	}
	/*
	 * The queues go away with the reset: page reporting must not use
	 * them until restore registers it again.
	 */
	pvb_stop_reporting(pv);
	if (!pv->dead)
		pvb_reset(pv);
	return 0;
}

static int pvb_restore(struct virtio_device *vdev)
{
	struct pvb_virtio *pv = vdev->priv;
	int err = pvb_reinit(pv);

	if (err)
		return err;
	spin_lock_irq(&pv->stop_lock);
	pv->no_recover = false;
	spin_unlock_irq(&pv->stop_lock);
	pvb_start_reporting(pv);
	pvb_start(pv);
	return 0;
}
#endif

static int pvb_validate(struct virtio_device *vdev)
{
	/*
	 * PAGE_POISON tells the host what our free pages contain.  Without
	 * poisoning or init_on_free there is nothing to tell; and if the host
	 * cannot be told, reporting (which may zero free pages) is unsafe.
	 */
	if (!want_init_on_free() && !page_poisoning_enabled_static())
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_PAGE_POISON);
	else if (!virtio_has_feature(vdev, VIRTIO_BALLOON_F_PAGE_POISON))
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_REPORTING);
	/* No allocation in virtqueue_add during page reporting. */
	__virtio_clear_bit(vdev, VIRTIO_RING_F_INDIRECT_DESC);
	__virtio_clear_bit(vdev, VIRTIO_F_ACCESS_PLATFORM);
	return 0;
}

static const struct virtio_device_id pvb_id_table[] = {
	{ VIRTIO_ID_BALLOON, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, pvb_id_table);

static unsigned int pvb_features[] = {
	VIRTIO_BALLOON_F_MUST_TELL_HOST,
	VIRTIO_BALLOON_F_STATS_VQ,
	VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
	VIRTIO_BALLOON_F_PAGE_POISON,
	VIRTIO_BALLOON_F_REPORTING,
};

struct virtio_driver pvb_virtio_driver = {
	.feature_table = pvb_features,
	.feature_table_size = ARRAY_SIZE(pvb_features),
	.driver.name = KBUILD_MODNAME,
	.id_table = pvb_id_table,
	.validate = pvb_validate,
	.probe = pvb_probe,
	.remove = pvb_remove,
	.config_changed = pvb_config_changed,
#ifdef CONFIG_PM_SLEEP
	.freeze = pvb_freeze,
	.restore = pvb_restore,
#endif
};
