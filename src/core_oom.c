// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon core: the guest's own share of the balloon under OOM.
 *
 * A balloon the guest inflated itself (debugfs or sysfs, with no host
 * target behind it) is memory the guest lent, and nobody else is owed it:
 * when the guest runs out of memory it comes back before the OOM killer
 * picks a process.  What a host asked for is the host's: the virtio
 * front-end gives it back only when the host offered DEFLATE_ON_OOM
 * (virtio_report.c), as the in-tree driver does, and otherwise holds the
 * guest to the host's num_pages - the virtio spec lets a driver use
 * ballooned pages only above the host's target (5.5.6.1, "the driver MAY
 * use pages from the balloon when num_pages is less than the actual
 * number of pages in the balloon").  The front-end says where that floor
 * is (pvb_frontend_ops.oom_floor); with no front-end attached there is
 * none.  Before this notifier, a guest-inflated balloon stayed put while
 * the OOM killer ran (issue 14).
 *
 * Calls only the core (pvb_shrink()).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/oom.h>
#include <linux/notifier.h>

#include "pvb_core.h"

/* Per notification, as the virtio front-end's default (16 MiB). */
#define PVB_OOM_CORE_PAGES	4096UL

static int pvb_core_oom_notify(struct notifier_block *nb, unsigned long dummy,
			       void *parm)
{
	struct pvb_balloon *b = container_of(nb, struct pvb_balloon, oom_nb);
	unsigned long *freed = parm, floor = 0, pages, done = 0;

	down_read(&b->fe_sem);
	if (b->fe)
		floor = b->fe->oom_floor ? b->fe->oom_floor(b) : ULONG_MAX;
	up_read(&b->fe_sem);
	pages = pvb_pages(b);
	if (pages <= floor)
		return NOTIFY_OK;
	pvb_shrink(b, min(pages - floor, PVB_OOM_CORE_PAGES), &done);
	*freed += done;
	if (done)
		pr_info_ratelimited("out of memory: gave back %lu pages the guest had ballooned itself\n",
				    done);
	return NOTIFY_OK;
}

/**
 * pvb_core_oom_init - give the guest's own share back under OOM
 * @b: the balloon, initialised
 *
 * Return: 0 or the error of register_oom_notifier().
 */
int pvb_core_oom_init(struct pvb_balloon *b)
{
	b->oom_nb.notifier_call = pvb_core_oom_notify;
	return register_oom_notifier(&b->oom_nb);
}

void pvb_core_oom_exit(struct pvb_balloon *b)
{
	unregister_oom_notifier(&b->oom_nb);
}
