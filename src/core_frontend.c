// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon core: a front-end (a host) attaches to the balloon and
 * detaches from it; its lines of the stats file.
 *
 * A front-end is attached to an empty balloon (the host knows nothing of
 * pages ballooned before it came) and leaves it empty, so that MemTotal's
 * mode changes only while no page is held.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/lockdep.h>
#include <linux/mutex.h>
#include <linux/printk.h>
#include <linux/rwsem.h>
#include <linux/seq_file.h>

#include "pvb_core.h"
#include "pvb_core_pages.h"

/*
 * MemTotal follows the balloon or not: switch only an empty balloon.  A
 * page taken in one mode and returned in the other would leave MemTotal
 * above the machine's memory or below it for good.
 */
static int pvb_set_adjust(struct pvb_balloon *b, bool adjust)
{
	lockdep_assert_held(&b->op_lock);
	if (pvb_pages(b)) {
		pr_warn("%lu pages still ballooned: MemTotal keeps its current mode\n",
			pvb_pages(b));
		return -EBUSY;
	}
	pvb_mig_set_adjust_managed(&b->mig, adjust);
	return 0;
}

/**
 * pvb_frontend_attach - connect a front-end (a host)
 * @b: the balloon
 * @ops: how to tell the host
 * @priv: the front-end's data (b->fe_priv)
 * @adjust_memtotal: whether MemTotal may follow the balloon with this
 *	front-end (not with virtio DEFLATE_ON_OOM, as in-tree)
 *
 * The host knows nothing of pages ballooned before it came, so the
 * balloon is emptied first and then follows the host.
 *
 * Return: 0, or -EBUSY if a front-end is already attached or the balloon
 * could not be emptied.
 */
int pvb_frontend_attach(struct pvb_balloon *b,
			const struct pvb_frontend_ops *ops, void *priv,
			bool adjust_memtotal)
{
	int rc = 0;

	mutex_lock(&b->op_lock);
	if (b->fe) {
		rc = -EBUSY;
		goto out;
	}
	if (pvb_pages(b)) {
		pr_info("a host attached: returning the %lu pages ballooned from the guest before\n",
			pvb_pages(b));
		pvb_empty(b);
	}
	rc = pvb_set_adjust(b, b->adjust_memtotal && adjust_memtotal);
	if (rc)
		goto out;
	down_write(&b->fe_sem);
	b->fe = ops;
	b->fe_priv = priv;
	up_write(&b->fe_sem);
out:
	mutex_unlock(&b->op_lock);
	return rc;
}

/**
 * pvb_frontend_detach - disconnect the front-end, emptying the balloon
 * @b: the balloon
 *
 * Every page goes back to the guest, and the front-end is told while it is
 * still attached.  If it cannot be told (a broken host), the front-end is
 * expected to have reset its device first and to let deflate succeed.
 */
void pvb_frontend_detach(struct pvb_balloon *b)
{
	mutex_lock(&b->op_lock);
	pvb_empty(b);
	down_write(&b->fe_sem);
	b->fe = NULL;
	b->fe_priv = NULL;
	up_write(&b->fe_sem);
	if (pvb_pages(b))
		pvb_empty(b);
	pvb_set_adjust(b, b->adjust_memtotal);
	mutex_unlock(&b->op_lock);
}

/**
 * pvb_frontend_show - the attached front-end's lines of the stats file
 * @b: the balloon
 * @m: the stats file
 *
 * Prints "frontend: none" when no host is attached, and what @b->no_fe_show
 * knows about why.
 */
void pvb_frontend_show(struct pvb_balloon *b, struct seq_file *m)
{
	down_read(&b->fe_sem);
	if (b->fe && b->fe->show) {
		b->fe->show(b, m);
	} else if (!b->fe) {
		seq_puts(m, "frontend: none\n");
		if (b->no_fe_show)
			b->no_fe_show(m);
	}
	up_read(&b->fe_sem);
}
