// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: the operations the balloon core calls
 * (struct pvb_frontend_ops) to tell the host about a resize or a
 * migration, and the host's target.
 *
 * The host writes a target (config num_pages); pvb_size_work() converges
 * the core to it, and the core calls back here for each batch; actual is
 * written back whenever the balloon's size changes (pvb_fe_changed()).
 *
 * Host target and guest requests: the last writer wins.  A host target
 * change sets the balloon target; a debugfs write sets it too, and stands
 * until the host writes num_pages again.  A host target that cannot be met
 * (not enough free memory) is retried every second until it is met, the
 * guest writes a target of its own, or an OOM notification gives pages back.
 *
 * A suspend or hibernation stops a resize at its round's end
 * (pvb_pm_notify(), virtio.c), so that the freezer does not wait for all
 * of it.
 *
 * Migration sends "inflate new" and "deflate old" only when no migration
 * buffer is in flight, and keeps a reference on the old page until the
 * host acknowledged its deflate, so it never blocks in MIGRATE_ASYNC and
 * the guest never reuses a page the host may discard.
 *
 * Calls the queues (virtio_queue.c), pvb_declare_broken() and the core.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/workqueue.h>

#include "pvb_core.h"
#include "pvb_virtio_dev.h"

static unsigned int pvb_fault_round_delay_ms;
module_param_named(fault_round_delay_ms, pvb_fault_round_delay_ms, uint, 0644);
MODULE_PARM_DESC(fault_round_delay_ms,
		 "Testing aid: every resize round takes this much longer, as with a host slow to acknowledge (default 0)");

/*
 * Send and return: the pages enter the balloon while the host works on
 * them, and the next batch is allocated meanwhile.  Nothing can deflate
 * or migrate them before the host acknowledged (pvb_wait_inflates()).
 * @pages goes out in buffers of the host's size, kicked once at the end
 * (or whenever we must wait for a buffer).  On failure what was sent stays
 * on @pages - the host may discard it - and the rest moves to @unsent.
 */
static int pvb_fe_inflate(struct pvb_balloon *b, struct list_head *pages,
			  unsigned long n, struct list_head *unsent)
{
	struct pvb_virtio *pv = b->fe_priv;
	struct list_head *pos;
	LIST_HEAD(ranged);
	bool queued = false;
	int err = 0;

	pvb_lock(pv);
	/* Whole blocks as ranges first (virtio_range.c), if the host can. */
	if (!pv->dead && !pv->broken && !pvb_wait_deflates(pv))
		pvb_range_send(pv, pages, &ranged);
	pos = pages->next;
	while (pos != pages) {
		struct list_head *start = pos;
		struct pvb_vbuf *vb = ERR_PTR(-EIO);

		/* A reset device has no queues; a broken host hears nothing. */
		if (!pv->dead && !pv->broken)
			vb = pvb_get_buf(pv, PVB_VQ_INFLATE, pv->infl, "an inflate");
		if (!IS_ERR(vb)) {
			pvb_fill_pfns(pv, vb, pages, &pos);
			err = pvb_queue(pv, PVB_VQ_INFLATE, vb);
		}
		if (IS_ERR(vb) || err) {
			LIST_HEAD(sent);

			list_cut_before(&sent, pages, start);
			list_splice_init(pages, unsent);
			list_splice(&sent, pages);
			err = -EIO;
			break;
		}
		queued = true;
	}
	if (queued)
		pvb_kick(pv, PVB_VQ_INFLATE);
	/* The host has the ranges: they enter the balloon, whatever failed. */
	list_splice(&ranged, pages);
	pvb_unlock(pv);
	return err;
}

/*
 * Send and return.  With MUST_TELL_HOST the pages are freed when the host
 * acknowledges (or at a reset), never before.  Without it the spec lets
 * the driver re-use them before the acknowledgement (virtio spec,
 * "Memory Balloon Device", device operation), and they are freed as soon
 * as their buffer is queued: the guest has its memory back while the host
 * still reads the PFNs - on QEMU one MADV_WILLNEED hint each - and only
 * the next inflate or migration waits for that (pvb_wait_deflates()).
 * The in-tree driver waits for every buffer of 256 PFNs before it frees
 * them.  Each buffer takes its pages off @pages; on failure the pages
 * left there were not sent.
 */
static int pvb_fe_deflate(struct pvb_balloon *b, struct list_head *pages,
			  unsigned long n)
{
	struct pvb_virtio *pv = b->fe_priv;
	bool queued = false;
	LIST_HEAD(sent);
	int err = 0;

	pvb_lock(pv);
	/* After a reset the host forgot the balloon: nothing to tell. */
	if (pv->dead) {
		pvb_unlock(pv);
		return 0;
	}
	/* A deflate must never overtake the inflate of the same page. */
	if (pv->broken || pvb_wait_inflates(pv))
		err = -EIO;
	while (!err && !list_empty(pages)) {
		struct list_head *pos = pages->next;
		struct pvb_vbuf *vb = pvb_get_buf(pv, PVB_VQ_DEFLATE, pv->defl,
						  "a deflate");

		if (IS_ERR(vb)) {
			err = -EIO;
			break;
		}
		pvb_fill_pfns(pv, vb, pages, &pos);
		list_cut_before(&vb->hold, pages, pos);
		if (pvb_queue(pv, PVB_VQ_DEFLATE, vb)) {
			list_splice_init(&vb->hold, pages);
			err = -EIO;
		} else {
			queued = true;
			if (!pvb_has(pv, VIRTIO_BALLOON_F_MUST_TELL_HOST))
				list_splice_tail_init(&vb->hold, &sent);
		}
	}
	if (queued)
		pvb_kick(pv, PVB_VQ_DEFLATE);
	pvb_unlock(pv);
	/* No MUST_TELL_HOST: free them now (pvb_wait_deflates()). */
	pvb_put_page_list(&sent);
	return err;
}

/*
 * The end of a resize round: every inflate and range is acknowledged, and
 * with MUST_TELL_HOST every deflate (its pages freed).  Without it the
 * deflates are left to the host's pace (pvb_wait_deflates()).
 */
static int pvb_fe_flush(struct pvb_balloon *b)
{
	struct pvb_virtio *pv = b->fe_priv;
	int err;

	if (READ_ONCE(pv->dead))
		return 0;
	if (READ_ONCE(pvb_fault_round_delay_ms))
		msleep(READ_ONCE(pvb_fault_round_delay_ms));
	pvb_lock(pv);
	err = pvb_wait_inflates(pv);
	if (!err && pvb_has(pv, VIRTIO_BALLOON_F_MUST_TELL_HOST))
		err = pvb_wait_all(pv, pv->defl, "a deflate");
	pvb_unlock(pv);
	/* The host has them and may still discard them: they stay ours. */
	return err ? -EIO : 0;
}

static int pvb_fe_migrate(struct pvb_balloon *b, struct page *newpage,
			  struct page *oldpage, enum migrate_mode mode)
{
	struct pvb_virtio *pv = b->fe_priv;
	int rc = -EAGAIN;

	/*
	 * MIGRATE_ASYNC must not wait.  A sync mode waits for the lock: its
	 * holder is mostly the reaper (pvb_reap_work(), after each migration's
	 * deflate is acknowledged), and on PREEMPT_RT a holder preempted by
	 * the compacting task kept the lock for the rest of the time slice
	 * while compaction retried and gave up: on Debian's 7.3 rt kernel,
	 * 40-60k refusals and 75-80% of the possible huge pages where the
	 * in-tree driver (whose ack callback takes no lock) got 91-96%.
	 * Waiting in mutex_lock() boosts the holder instead.  Never for a
	 * lock our own task holds (see pvb_lock()).
	 */
	if (!pvb_trylock(pv)) {
		if (mode == MIGRATE_ASYNC || pvb_lock_mine(pv)) {
			atomic_long_inc(&pv->mig_busy_lock);
			return -EAGAIN;
		}
		pvb_lock(pv);
	}
	if (pv->broken || pv->dead || READ_ONCE(pv->stop))
		goto out;
	/*
	 * The old page's inflate must be acknowledged before its deflate, and
	 * the previous migration must be back.  Only sync modes may wait.
	 */
	if (mode == MIGRATE_ASYNC ? pvb_migration_busy(pv) :
	    pvb_wait_inflates(pv) || pvb_wait_deflates(pv) ||
	    pvb_wait_buf(pv, pv->mig_defl, "a migration deflate")) {
		atomic_long_inc(&pv->mig_busy_host);
		goto out;
	}
	/* Both or neither: a half-told migration cannot be undone. */
	if (!pv->vqs[PVB_VQ_INFLATE]->num_free ||
	    !pv->vqs[PVB_VQ_DEFLATE]->num_free) {
		atomic_long_inc(&pv->mig_busy_queue);
		goto out;
	}

	pv->mig_infl->n = 1;
	pv->mig_infl->pfns[0] = cpu_to_virtio32(pv->vdev, page_to_pfn(newpage));
	pv->mig_defl->n = 1;
	pv->mig_defl->pfns[0] = cpu_to_virtio32(pv->vdev, page_to_pfn(oldpage));
	if (pvb_send(pv, PVB_VQ_INFLATE, pv->mig_infl)) {
		/* Nothing told: the migration simply fails. */
		pvb_declare_broken(pv, "a migration (queue error)");
		goto out;
	}
	get_page(oldpage);
	pv->mig_defl->hold_page = oldpage;
	if (pvb_send(pv, PVB_VQ_DEFLATE, pv->mig_defl)) {
		/*
		 * The host was told to discard the new page: failing now would
		 * free it to the guest.  The migration stands; the old page,
		 * which the host was not told about, stays held (busy) until
		 * the reset of the recovery or removal releases it.
		 */
		pv->mig_defl->busy = true;
		pvb_declare_broken(pv, "a migration (queue error)");
		rc = 0;
		goto out;
	}
	rc = 0;
	/* Sync modes may wait, so the old page is freed right away. */
	if (mode != MIGRATE_ASYNC)
		pvb_wait_buf(pv, pv->mig_defl, "a migration deflate");
out:
	pvb_unlock(pv);
	return rc;
}

static void pvb_fe_changed(struct pvb_balloon *b)
{
	struct pvb_virtio *pv = b->fe_priv;
	u32 actual = pvb_pages(b);

	/* Legacy balloon config space is little endian, unlike others. */
	virtio_cwrite_le(pv->vdev, struct virtio_balloon_config, actual, &actual);
}

/* Stats lines: which host profile is in use and what was sent. */
static void pvb_fe_show(struct pvb_balloon *b, struct seq_file *m)
{
	struct pvb_virtio *pv = b->fe_priv;
	const char *held = NULL;
	unsigned long changes;

	spin_lock_irq(&pv->stop_lock);
	changes = pv->config_changes;
	if (pv->stop)
		held = "off (stopped)";
	else if (pv->sleeping)
		held = "off (a suspend is coming)";
	spin_unlock_irq(&pv->stop_lock);

	seq_puts(m, "frontend: virtio\n");
	seq_printf(m, "host_profile: %s\n", pv->host.name);
	seq_printf(m, "host_max_pfns: %u\n", pv->host.max_pfns);
	seq_printf(m, "buffers_per_queue: %u\n", pv->nbufs);
	seq_printf(m, "largest_buffer_pfns: %u\n", READ_ONCE(pv->largest_sent));
	seq_printf(m, "host_broken: %d\n", READ_ONCE(pv->broken));
	seq_printf(m, "host_recoveries: %lu\n", READ_ONCE(pv->recoveries));
	seq_printf(m, "host_requests: %s\n", held ?: "on");
	seq_printf(m, "host_config_changes: %lu\n", changes);
	seq_printf(m, "host_resizes: %lu\n", READ_ONCE(pv->resizes));
	seq_printf(m, "stats_answered: %lu\n", READ_ONCE(pv->stats_answered));
	seq_printf(m, "free_page_reporting: %s\n", pv->reporting ? "on" : "off");
	seq_printf(m, "range_discard: %s\n", pvb_range_off(pv) ?: "on");
	seq_printf(m, "range_blocks: %lu\n", READ_ONCE(pv->range_blocks));
	seq_printf(m, "reported_pages: %lu\n", READ_ONCE(pv->reported_pages));
	/* Why migrations were refused (-EAGAIN): the front-end's reasons. */
	seq_printf(m, "migrate_busy_lock: %lu\n", atomic_long_read(&pv->mig_busy_lock));
	seq_printf(m, "migrate_busy_host: %lu\n", atomic_long_read(&pv->mig_busy_host));
	seq_printf(m, "migrate_busy_queue: %lu\n", atomic_long_read(&pv->mig_busy_queue));
}

/*
 * The core's OOM notifier gives back what lies above this.  With
 * DEFLATE_ON_OOM the front-end's own notifier answers OOM (virtio_report.c).
 * Without it the host's num_pages binds: the spec lets the driver use
 * ballooned pages only above it, which is what a guest inflated itself
 * (debugfs, sysfs) beyond the host's target.
 */
static unsigned long pvb_fe_oom_floor(struct pvb_balloon *b)
{
	struct pvb_virtio *pv = b->fe_priv;
	u32 num_pages;

	if (pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM))
		return ULONG_MAX;
	virtio_cread_le(pv->vdev, struct virtio_balloon_config, num_pages,
			&num_pages);
	return num_pages;
}

const struct pvb_frontend_ops pvb_virtio_ops = {
	.inflate = pvb_fe_inflate,
	.deflate = pvb_fe_deflate,
	.migrate = pvb_fe_migrate,
	.flush = pvb_fe_flush,
	.changed = pvb_fe_changed,
	.show = pvb_fe_show,
	.oom_floor = pvb_fe_oom_floor,
};

/*
 * Is a suspend or hibernation coming?  Then size_work is to run again once
 * it is over (PM_POST_*, pvb_pm_notify() in virtio.c).
 */
static bool pvb_held_by_sleep(struct pvb_virtio *pv)
{
	bool sleeping;

	spin_lock_irq(&pv->stop_lock);
	sleeping = pv->sleeping;
	if (sleeping)
		pv->size_pending = true;
	spin_unlock_irq(&pv->stop_lock);
	return sleeping;
}

void pvb_size_work(struct work_struct *work)
{
	struct pvb_virtio *pv = container_of(to_delayed_work(work),
					     struct pvb_virtio, size_work);
	struct pvb_balloon *b = pv->b;
	u32 num_pages;
	int gen, rc;

	/* A retry, but the guest set a target since: it wrote last. */
	if (pv->host_retry && READ_ONCE(b->target_seq) != pv->host_seq) {
		pv->host_retry = false;
		return;
	}
	/*
	 * Announce, then look for a coming sleep: the notifier sets sleeping,
	 * then announces (both fully ordered), so either we see it here or
	 * its announcement ends this resize at its round's end.
	 */
	gen = pvb_target_coming(b);
	if (pvb_held_by_sleep(pv))
		return;
	virtio_cread_le(pv->vdev, struct virtio_balloon_config, num_pages,
			&num_pages);
	WRITE_ONCE(pv->resizes, pv->resizes + 1);
	rc = pvb_set_target_from(b, num_pages, gen, NULL);
	/* Cut short by a sleep that began meanwhile: resume after it. */
	if (rc == -EAGAIN)
		pvb_held_by_sleep(pv);
	pv->host_seq = READ_ONCE(b->target_seq);
	pv->host_retry = rc == -ENOMEM || rc == -EBUSY;
	if (pv->host_retry) {
		spin_lock_irq(&pv->stop_lock);
		if (!pv->stop)
			queue_delayed_work(system_freezable_wq, &pv->size_work, HZ);
		spin_unlock_irq(&pv->stop_lock);
	}
}

/*
 * Take up the host's target: after its notification (@notified, counted
 * for the stats file), or when we start listening (pvb_start()), which
 * the host's count must not include.
 */
static void pvb_take_target(struct pvb_virtio *pv, bool notified)
{
	unsigned long flags;

	spin_lock_irqsave(&pv->stop_lock, flags);
	if (notified)
		pv->config_changes++;
	if (!pv->stop) {
		pv->host_retry = false;
		/*
		 * A resize to the host's previous target may be running in
		 * size_work: it ends at its round's end and this one runs.
		 * A host that sets 8 GiB and then 0 gets no 8 GiB first.
		 */
		pvb_target_coming(pv->b);
		mod_delayed_work(system_freezable_wq, &pv->size_work, 0);
	}
	spin_unlock_irqrestore(&pv->stop_lock, flags);
}

/* The device's config-change callback: the host wrote a new target. */
void pvb_config_changed(struct virtio_device *vdev)
{
	pvb_take_target(vdev->priv, true);
}

/* Start or resume following the host's target, whatever it is now. */
void pvb_recheck_target(struct pvb_virtio *pv)
{
	pvb_take_target(pv, false);
}
