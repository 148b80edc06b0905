// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: drives a virtio-balloon device (virtio
 * device id 5; QEMU, Firecracker, cloud-hypervisor, crosvm, over virtio-pci
 * or virtio-mmio) and connects it to the balloon core.  The buffer shapes
 * each host takes are chosen in virtio_host.c.
 *
 * The host writes a target (config num_pages); a worker converges the core
 * to it and writes back config actual.  Whatever changes the balloon - the
 * host, debugfs, an OOM notification - the core calls us to tell the host
 * (struct pvb_frontend_ops), and we report the new size in actual.
 *
 * Host target and guest requests: the last writer wins.  A host target
 * change sets the balloon target; a debugfs write sets it too, and stands
 * until the host writes num_pages again.  A host target that cannot be met
 * (not enough free memory) is retried every second until it is met, the
 * guest writes a target of its own, or an OOM notification gives pages back.
 *
 * Ordering with the host (MUST_TELL_HOST and migration):
 *  - a page enters the balloon as soon as its inflate buffer is sent,
 *    but its deflate or migration is sent only after every inflate buffer
 *    was acknowledged (pvb_wait_inflates()), so the host always processes
 *    a page's inflate before its deflate;
 *  - a deflated page is freed only after the host acknowledged the
 *    deflate buffer;
 *  - migration sends "inflate new" and "deflate old" only when no
 *    migration buffer is in flight, and keeps a reference on the old page
 *    until the host acknowledged its deflate, so it never blocks in
 *    MIGRATE_ASYNC and the guest never reuses a page the host may discard.
 *
 * A host that sits on a buffer for PVB_HOST_TIMEOUT is declared broken:
 * operations fail with -EIO at once, and a worker resets the device,
 * empties the balloon without telling the host (after a reset it touches
 * none of our pages), negotiates and sets up the queues again and rebuilds
 * the balloon from the host's target (pvb_recover_work()).  With recover=0
 * the balloon stops talking to it instead; either way, on removal the
 * device is reset before the pages go back, so unload never hangs.
 *
 * FREE_PAGE_HINT is not offered: it only serves live migration (QEMU skips
 * hinted free pages), pvballoon does not implement it, and a host without
 * it migrates the guest correctly, only more slowly.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/oom.h>
#include <linux/poison.h>
#include <linux/page_reporting.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "pvb_compat_virtio.h"
#include "pvb_core.h"
#include "pvb_virtio.h"

/* ------------------------------------------------- module parameters */

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

static bool pvb_takeover;
module_param_named(takeover, pvb_takeover, bool, 0444);
MODULE_PARM_DESC(takeover,
		 "Take virtio-balloon devices over from the driver bound to them (the in-tree virtio_balloon) on load (default 0)");

static bool pvb_give_back = true;
module_param_named(give_back, pvb_give_back, bool, 0444);
MODULE_PARM_DESC(give_back,
		 "On unload, offer devices taken over back to their driver (default 1)");

static unsigned int pvb_host_timeout_ms = 30000;
module_param_named(host_timeout_ms, pvb_host_timeout_ms, uint, 0644);
MODULE_PARM_DESC(host_timeout_ms,
		 "A host that does not acknowledge a buffer in this time is declared broken (default 30000)");

static bool pvb_recover = true;
module_param_named(recover, pvb_recover, bool, 0644);
MODULE_PARM_DESC(recover,
		 "Reset and restart a device whose host did not acknowledge in time, instead of failing every later request (default 1)");

static bool pvb_fault_noack;
module_param_named(fault_noack, pvb_fault_noack, bool, 0644);
MODULE_PARM_DESC(fault_noack,
		 "Testing aid: stop notifying the host, so that it never acknowledges a buffer (default 0)");

#define PVB_HOST_TIMEOUT	msecs_to_jiffies(READ_ONCE(pvb_host_timeout_ms))

enum {
	PVB_VQ_INFLATE,
	PVB_VQ_DEFLATE,
	PVB_VQ_STATS,
	PVB_VQ_FREE_PAGE,
	PVB_VQ_REPORTING,
	PVB_VQ_MAX
};

/*
 * PFNs per queue that may be with the host at once: four buffers of 4096
 * for QEMU, 64 of 256 elsewhere (virtio_host.c).  The host works on some
 * while we fill the next.  A buffer takes one descriptor; the count is
 * capped below the queue size (QEMU 128, Firecracker 256), which keeps one
 * descriptor free for a migration.
 */
#define PVB_PFNS_IN_FLIGHT	(4 * PVB_BATCH_PFNS_QEMU)

/* One PFN buffer: owned by the device from add to ack. */
struct pvb_vbuf {
	bool busy;
	unsigned int n;
	struct page *hold_page;	/* a migrated page, freed on the ack */
	struct list_head hold;	/* deflated pages, freed on the ack */
	__virtio32 *pfns;
};

/*
 * One virtio-balloon device.  @lock serialises use of the inflate and
 * deflate queues and their buffers; migration only try-locks it.
 */
struct pvb_virtio {
	struct virtio_device *vdev;
	struct pvb_balloon *b;
	struct virtqueue *vqs[PVB_VQ_MAX];
	struct mutex lock;
	wait_queue_head_t acked;
	struct pvb_host_profile host;
	unsigned int nbufs;			/* per queue */
	struct pvb_vbuf **infl, **defl;
	struct pvb_vbuf *mig_infl, *mig_defl;	/* one migration */
	unsigned int largest_sent;		/* PFNs, for stats */
	bool broken;
	bool dead;		/* reset: deflates need not tell the host */

	spinlock_t stop_lock;
	bool stop;
	struct delayed_work size_work;
	struct work_struct stats_work;
	struct work_struct reap_work;
	struct work_struct recover_work;
	bool no_recover;	/* under stop_lock: removal or freeze began */
	unsigned long recoveries;
	bool host_retry;
	unsigned long host_seq;

	struct notifier_block oom_nb;
	atomic_long_t oom_pages;
	struct page_reporting_dev_info prdev;
	bool reporting;		/* registered with page reporting */
	bool report_stop;	/* under stop_lock: no new reports */
	bool report_busy;	/* under stop_lock: a report is in flight */
	unsigned long reported_pages;
	struct virtio_balloon_stat stats[PVB_VIRTIO_NR_STATS];
};

static struct pvb_vbuf *pvb_vbuf_alloc(unsigned int npfns)
{
	struct pvb_vbuf *vb = kzalloc(sizeof(*vb), GFP_KERNEL);

	if (!vb)
		return NULL;
	/* Separate, so that 4096 PFNs take 16 KiB and not 32. */
	vb->pfns = kcalloc(npfns, sizeof(vb->pfns[0]), GFP_KERNEL);
	if (!vb->pfns) {
		kfree(vb);
		return NULL;
	}
	INIT_LIST_HEAD(&vb->hold);
	return vb;
}

static void pvb_vbuf_free(struct pvb_vbuf *vb)
{
	if (vb)
		kfree(vb->pfns);
	kfree(vb);
}

static bool pvb_has(struct pvb_virtio *pv, unsigned int bit)
{
	return virtio_has_feature(pv->vdev, bit);
}

/* ------------------------------------------------------------ host I/O */

/* Interrupt context: only wake; buffers are reclaimed in process context. */
static void pvb_vq_ack(struct virtqueue *vq)
{
	struct pvb_virtio *pv = vq->vdev->priv;

	wake_up_all(&pv->acked);
	/* Deflated and migrated pages wait for this to be freed. */
	if (vq == pv->vqs[PVB_VQ_DEFLATE])
		schedule_work(&pv->reap_work);
}

/* The host is done with @vb: free what waited for it. */
static void pvb_vbuf_done(struct pvb_vbuf *vb)
{
	struct page *page, *tmp;

	if (vb->hold_page) {
		put_page(vb->hold_page);
		vb->hold_page = NULL;
	}
	list_for_each_entry_safe(page, tmp, &vb->hold, lru) {
		list_del(&page->lru);
		put_page(page);
	}
	WRITE_ONCE(vb->busy, false);
}

/* Caller holds pv->lock.  Collect what the host acknowledged. */
static void pvb_reap(struct pvb_virtio *pv)
{
	static const int qs[] = { PVB_VQ_INFLATE, PVB_VQ_DEFLATE };
	struct pvb_vbuf *vb;
	unsigned int len, i;

	lockdep_assert_held(&pv->lock);
	if (pv->broken || pv->dead)
		return;
	for (i = 0; i < ARRAY_SIZE(qs); i++)
		while ((vb = virtqueue_get_buf(pv->vqs[qs[i]], &len)))
			pvb_vbuf_done(vb);
}

static void pvb_reap_work(struct work_struct *work)
{
	struct pvb_virtio *pv = container_of(work, struct pvb_virtio, reap_work);

	mutex_lock(&pv->lock);
	pvb_reap(pv);
	mutex_unlock(&pv->lock);
}

static void pvb_declare_broken(struct pvb_virtio *pv, const char *what)
{
	bool recover = READ_ONCE(pvb_recover);
	unsigned long flags;

	lockdep_assert_held(&pv->lock);
	if (!pv->broken)
		dev_err(&pv->vdev->dev,
			"host did not acknowledge %s within %u ms: %s\n",
			what, READ_ONCE(pvb_host_timeout_ms),
			recover ? "resetting the device" :
			"balloon stops talking to it (recover=0)");
	WRITE_ONCE(pv->broken, true);
	if (!recover)
		return;
	spin_lock_irqsave(&pv->stop_lock, flags);
	if (!pv->no_recover)
		queue_work(system_freezable_wq, &pv->recover_work);
	spin_unlock_irqrestore(&pv->stop_lock, flags);
}

/*
 * Caller holds pv->lock.  Wait until @vb is back from the host: 0, or
 * -ETIMEDOUT when the host sat on it (it still has it), or -EIO when the
 * host was already declared broken.
 */
static int pvb_wait_buf(struct pvb_virtio *pv, struct pvb_vbuf *vb,
			const char *what)
{
	lockdep_assert_held(&pv->lock);
	if (!READ_ONCE(vb->busy))
		return 0;
	if (pv->broken)
		return -EIO;
	if (!wait_event_timeout(pv->acked, ({ pvb_reap(pv); !vb->busy; }),
				PVB_HOST_TIMEOUT)) {
		pvb_declare_broken(pv, what);
		return -ETIMEDOUT;
	}
	return 0;
}

/* Caller holds pv->lock.  Wait for every buffer of @bufs. */
static int pvb_wait_all(struct pvb_virtio *pv, struct pvb_vbuf **bufs,
			const char *what)
{
	unsigned int i;
	int err;

	lockdep_assert_held(&pv->lock);
	for (i = 0; i < pv->nbufs; i++) {
		err = pvb_wait_buf(pv, bufs[i], what);
		if (err)
			return err;
	}
	return 0;
}

static struct pvb_vbuf *pvb_idle_buf(struct pvb_virtio *pv,
				     struct pvb_vbuf **bufs)
{
	unsigned int i;

	pvb_reap(pv);
	for (i = 0; i < pv->nbufs; i++)
		if (!READ_ONCE(bufs[i]->busy))
			return bufs[i];
	return NULL;
}

/* Caller holds pv->lock.  Tell the host about buffers added to queue @q. */
static void pvb_kick(struct pvb_virtio *pv, int q)
{
	lockdep_assert_held(&pv->lock);
	/* The fault_noack testing aid plays a host that never answers. */
	if (!READ_ONCE(pvb_fault_noack))
		virtqueue_kick(pv->vqs[q]);
}

/*
 * Caller holds pv->lock.  A free buffer of @bufs (queue @q), waiting for
 * the host to return one if all are out - after a kick, so that it has
 * seen every buffer we added; an ERR_PTR as pvb_wait_buf() on failure.
 */
static struct pvb_vbuf *pvb_get_buf(struct pvb_virtio *pv, int q,
				    struct pvb_vbuf **bufs, const char *what)
{
	struct pvb_vbuf *vb = pvb_idle_buf(pv, bufs);

	lockdep_assert_held(&pv->lock);
	if (vb)
		return vb;
	if (pv->broken)
		return ERR_PTR(-EIO);
	pvb_kick(pv, q);
	if (!wait_event_timeout(pv->acked, pvb_idle_buf(pv, bufs),
				PVB_HOST_TIMEOUT)) {
		pvb_declare_broken(pv, what);
		return ERR_PTR(-ETIMEDOUT);
	}
	return pvb_idle_buf(pv, bufs);
}

/*
 * Caller holds pv->lock and made sure @vb is free.  Queue it as one
 * descriptor - never a chain: Firecracker reads only a chain's head - and
 * leave the kick to the caller.
 */
static int pvb_queue(struct pvb_virtio *pv, int q, struct pvb_vbuf *vb)
{
	struct scatterlist sg;
	int err;

	lockdep_assert_held(&pv->lock);
	sg_init_one(&sg, vb->pfns, vb->n * sizeof(vb->pfns[0]));
	err = virtqueue_add_outbuf(pv->vqs[q], &sg, 1, vb, GFP_KERNEL);
	if (err)
		return err;
	vb->busy = true;
	if (vb->n > pv->largest_sent)
		WRITE_ONCE(pv->largest_sent, vb->n);
	return 0;
}

/* Caller holds pv->lock.  Queue @vb and kick. */
static int pvb_send(struct pvb_virtio *pv, int q, struct pvb_vbuf *vb)
{
	int err = pvb_queue(pv, q, vb);

	lockdep_assert_held(&pv->lock);
	if (!err)
		pvb_kick(pv, q);
	return err;
}

/*
 * The PFNs of up to pv->host.max_pfns pages of @head, from *@pos on, into
 * @vb; *@pos moves past them (to the head when the list is done).
 */
static void pvb_fill_pfns(struct pvb_virtio *pv, struct pvb_vbuf *vb,
			  struct list_head *head, struct list_head **pos)
{
	/* PFN shift 12 is the guest page size on every arch we build for. */
	BUILD_BUG_ON(PAGE_SHIFT != VIRTIO_BALLOON_PFN_SHIFT);
	vb->n = 0;
	while (*pos != head && vb->n < pv->host.max_pfns) {
		struct page *page = list_entry(*pos, struct page, lru);

		vb->pfns[vb->n++] = cpu_to_virtio32(pv->vdev, page_to_pfn(page));
		*pos = (*pos)->next;
	}
}

/* Caller holds pv->lock.  Every inflate the host has not acknowledged. */
static int pvb_wait_inflates(struct pvb_virtio *pv)
{
	int err = pvb_wait_all(pv, pv->infl, "an inflate");

	lockdep_assert_held(&pv->lock);
	return err ?: pvb_wait_buf(pv, pv->mig_infl, "a migration inflate");
}

/*
 * Caller holds pv->lock.  Is an inflate, or the last migration, still with
 * the host?  For MIGRATE_ASYNC, which must not wait for them.
 */
static bool pvb_migration_busy(struct pvb_virtio *pv)
{
	unsigned int i;

	lockdep_assert_held(&pv->lock);
	pvb_reap(pv);
	for (i = 0; i < pv->nbufs; i++)
		if (pv->infl[i]->busy)
			return true;
	return pv->mig_infl->busy || pv->mig_defl->busy;
}

/* ---------------------------------------------------- core front-end ops */

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
	struct list_head *pos = pages->next;
	bool queued = false;
	int err = 0;

	mutex_lock(&pv->lock);
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
	mutex_unlock(&pv->lock);
	return err;
}

/*
 * Send and return: the pages are freed when the host acknowledges (or at a
 * reset), never before - MUST_TELL_HOST.  Each buffer takes its pages off
 * @pages; on failure the pages left there were not sent.
 */
static int pvb_fe_deflate(struct pvb_balloon *b, struct list_head *pages,
			  unsigned long n)
{
	struct pvb_virtio *pv = b->fe_priv;
	bool queued = false;
	int err = 0;

	mutex_lock(&pv->lock);
	/* After a reset the host forgot the balloon: nothing to tell. */
	if (pv->dead) {
		mutex_unlock(&pv->lock);
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
		}
	}
	if (queued)
		pvb_kick(pv, PVB_VQ_DEFLATE);
	mutex_unlock(&pv->lock);
	return err;
}

/* The end of a resize: everything sent is acknowledged, deflated pages freed. */
static int pvb_fe_flush(struct pvb_balloon *b)
{
	struct pvb_virtio *pv = b->fe_priv;
	int err;

	if (READ_ONCE(pv->dead))
		return 0;
	mutex_lock(&pv->lock);
	err = pvb_wait_inflates(pv);
	if (!err)
		err = pvb_wait_all(pv, pv->defl, "a deflate");
	mutex_unlock(&pv->lock);
	/* The host has them and may still discard them: they stay ours. */
	return err ? -EIO : 0;
}

static int pvb_fe_migrate(struct pvb_balloon *b, struct page *newpage,
			  struct page *oldpage, enum migrate_mode mode)
{
	struct pvb_virtio *pv = b->fe_priv;
	int rc = -EAGAIN;

	/*
	 * Never wait for the lock: an inflate holding it may be what
	 * triggered this compaction.
	 */
	if (!mutex_trylock(&pv->lock))
		return -EAGAIN;
	if (pv->broken || pv->dead || READ_ONCE(pv->stop))
		goto out;
	/*
	 * The old page's inflate must be acknowledged before its deflate, and
	 * the previous migration must be back.  Only sync modes may wait.
	 */
	if (mode == MIGRATE_ASYNC ? pvb_migration_busy(pv) :
	    pvb_wait_inflates(pv) ||
	    pvb_wait_buf(pv, pv->mig_defl, "a migration deflate"))
		goto out;
	/* Both or neither: a half-told migration cannot be undone. */
	if (!pv->vqs[PVB_VQ_INFLATE]->num_free ||
	    !pv->vqs[PVB_VQ_DEFLATE]->num_free)
		goto out;

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
	mutex_unlock(&pv->lock);
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

	seq_puts(m, "frontend: virtio\n");
	seq_printf(m, "host_profile: %s\n", pv->host.name);
	seq_printf(m, "host_max_pfns: %u\n", pv->host.max_pfns);
	seq_printf(m, "buffers_per_queue: %u\n", pv->nbufs);
	seq_printf(m, "largest_buffer_pfns: %u\n", READ_ONCE(pv->largest_sent));
	seq_printf(m, "host_broken: %d\n", READ_ONCE(pv->broken));
	seq_printf(m, "host_recoveries: %lu\n", READ_ONCE(pv->recoveries));
	seq_printf(m, "free_page_reporting: %s\n", pv->reporting ? "on" : "off");
	seq_printf(m, "reported_pages: %lu\n", READ_ONCE(pv->reported_pages));
}

static const struct pvb_frontend_ops pvb_virtio_ops = {
	.inflate = pvb_fe_inflate,
	.deflate = pvb_fe_deflate,
	.migrate = pvb_fe_migrate,
	.flush = pvb_fe_flush,
	.changed = pvb_fe_changed,
	.show = pvb_fe_show,
};

/* ------------------------------------------------------- host target */

static void pvb_size_work(struct work_struct *work)
{
	struct pvb_virtio *pv = container_of(to_delayed_work(work),
					     struct pvb_virtio, size_work);
	struct pvb_balloon *b = pv->b;
	u32 num_pages;
	int rc;

	/* A retry, but the guest set a target since: it wrote last. */
	if (pv->host_retry && READ_ONCE(b->target_seq) != pv->host_seq) {
		pv->host_retry = false;
		return;
	}
	virtio_cread_le(pv->vdev, struct virtio_balloon_config, num_pages,
			&num_pages);
	rc = pvb_set_target(b, num_pages, NULL);
	pv->host_seq = READ_ONCE(b->target_seq);
	pv->host_retry = rc == -ENOMEM || rc == -EBUSY;
	if (pv->host_retry) {
		spin_lock_irq(&pv->stop_lock);
		if (!pv->stop)
			queue_delayed_work(system_freezable_wq, &pv->size_work, HZ);
		spin_unlock_irq(&pv->stop_lock);
	}
}

static void pvb_config_changed(struct virtio_device *vdev)
{
	struct pvb_virtio *pv = vdev->priv;
	unsigned long flags;

	spin_lock_irqsave(&pv->stop_lock, flags);
	if (!pv->stop) {
		pv->host_retry = false;
		mod_delayed_work(system_freezable_wq, &pv->size_work, 0);
	}
	spin_unlock_irqrestore(&pv->stop_lock, flags);
}

/* ---------------------------------------------------------- stats queue */

/*
 * The host asks for stats by returning the buffer we gave it; we refill it
 * from a work item (collecting stats can sleep) and hand it back.
 */
static void pvb_stats_request(struct virtqueue *vq)
{
	struct pvb_virtio *pv = vq->vdev->priv;

	spin_lock(&pv->stop_lock);
	if (!pv->stop)
		queue_work(system_freezable_wq, &pv->stats_work);
	spin_unlock(&pv->stop_lock);
}

static int pvb_stats_give(struct pvb_virtio *pv)
{
	struct scatterlist sg;
	unsigned int n = pvb_virtio_fill_stats(pv->vdev, pv->stats,
					       pv->host.nr_stats);

	sg_init_one(&sg, pv->stats, sizeof(pv->stats[0]) * n);
	return virtqueue_add_outbuf(pv->vqs[PVB_VQ_STATS], &sg, 1, pv, GFP_KERNEL);
}

static void pvb_stats_work(struct work_struct *work)
{
	struct pvb_virtio *pv = container_of(work, struct pvb_virtio, stats_work);
	struct virtqueue *vq = pv->vqs[PVB_VQ_STATS];
	unsigned int len;

	if (!virtqueue_get_buf(vq, &len))
		return;
	if (!pvb_stats_give(pv))
		virtqueue_kick(vq);
}

/* -------------------------------------------------------- deflate on OOM */

static int pvb_oom_notify(struct notifier_block *nb, unsigned long dummy,
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

/* ------------------------------------------------- free page reporting */

static void pvb_reset(struct pvb_virtio *pv);

/*
 * A reset (dead) first: after it the queue may be about to go away, and
 * pvb_reset() waits for the reporter to let go of it before deleting it.
 */
static bool pvb_report_back(struct pvb_virtio *pv, struct virtqueue *vq)
{
	unsigned int len;

	return READ_ONCE(pv->dead) || virtqueue_get_buf(vq, &len);
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
static int pvb_report(struct page_reporting_dev_info *prdev,
		      struct scatterlist *sg, unsigned int nents)
{
	struct pvb_virtio *pv = container_of(prdev, struct pvb_virtio, prdev);
	struct virtqueue *vq;
	unsigned long pages = 0;
	struct scatterlist *s;
	unsigned int i;
	int err = 0;

	spin_lock_irq(&pv->stop_lock);
	if (pv->report_stop || READ_ONCE(pv->broken) || READ_ONCE(pv->dead))
		err = -ESHUTDOWN;
	else
		pv->report_busy = true;
	spin_unlock_irq(&pv->stop_lock);
	if (err)
		return err;
	/* Busy: pvb_reset() keeps the queue until we are done with it. */
	vq = pv->vqs[PVB_VQ_REPORTING];
	/* The queue is empty here: page reporting sends one batch at a time. */
	err = virtqueue_add_inbuf(vq, sg, nents, pv, GFP_NOWAIT | __GFP_NOWARN);
	if (err)
		goto out;
	if (!READ_ONCE(pvb_fault_noack))
		virtqueue_kick(vq);
	if (!wait_event_timeout(pv->acked, pvb_report_back(pv, vq),
				PVB_HOST_TIMEOUT)) {
		mutex_lock(&pv->lock);
		pvb_declare_broken(pv, "a free page report");
		mutex_unlock(&pv->lock);
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

static bool pvb_report_idle(struct pvb_virtio *pv)
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
static void pvb_stop_reporting(struct pvb_virtio *pv)
{
	if (!pv->reporting)
		return;
	spin_lock_irq(&pv->stop_lock);
	pv->report_stop = true;
	spin_unlock_irq(&pv->stop_lock);
	if (!wait_event_timeout(pv->acked, pvb_report_idle(pv),
				PVB_HOST_TIMEOUT) && !pv->dead) {
		mutex_lock(&pv->lock);
		pvb_declare_broken(pv, "a free page report");
		mutex_unlock(&pv->lock);
		pvb_reset(pv);
	}
	page_reporting_unregister(&pv->prdev);
}

/* Register with page reporting again (restore, recovery). */
static void pvb_start_reporting(struct pvb_virtio *pv)
{
	if (!pv->reporting)
		return;
	spin_lock_irq(&pv->stop_lock);
	pv->report_stop = false;
	spin_unlock_irq(&pv->stop_lock);
	if (page_reporting_register(&pv->prdev)) {
		dev_warn(&pv->vdev->dev, "free page reporting could not be registered again; it stays off\n");
		pv->reporting = false;
	}
}

/* ---------------------------------------------------------- the device */

static int pvb_find_vqs(struct pvb_virtio *pv)
{
	struct virtqueue_info info[PVB_VQ_MAX] = {
		[PVB_VQ_INFLATE] = { .name = "inflate", .callback = pvb_vq_ack },
		[PVB_VQ_DEFLATE] = { .name = "deflate", .callback = pvb_vq_ack },
	};
	int err;

	/* A NULL name leaves a queue out (features not negotiated). */
	if (pvb_has(pv, VIRTIO_BALLOON_F_STATS_VQ))
		info[PVB_VQ_STATS] = (struct virtqueue_info){
			.name = "stats", .callback = pvb_stats_request };
	if (pvb_has(pv, VIRTIO_BALLOON_F_REPORTING))
		info[PVB_VQ_REPORTING] = (struct virtqueue_info){
			.name = "reporting", .callback = pvb_vq_ack };
	err = pvb_virtio_find_vqs(pv->vdev, PVB_VQ_MAX, pv->vqs, info);
	if (err)
		return err;
	if (pvb_has(pv, VIRTIO_BALLOON_F_STATS_VQ)) {
		/* Prime the stats queue: the host answers by returning it. */
		err = pvb_stats_give(pv);
		if (err) {
			pv->vdev->config->del_vqs(pv->vdev);
			return err;
		}
		virtqueue_kick(pv->vqs[PVB_VQ_STATS]);
	}
	return 0;
}

static void pvb_start(struct pvb_virtio *pv)
{
	spin_lock_irq(&pv->stop_lock);
	pv->stop = false;
	spin_unlock_irq(&pv->stop_lock);
	virtio_device_ready(pv->vdev);
	pvb_config_changed(pv->vdev);
}

static void pvb_halt(struct pvb_virtio *pv)
{
	spin_lock_irq(&pv->stop_lock);
	pv->stop = true;
	spin_unlock_irq(&pv->stop_lock);
	cancel_delayed_work_sync(&pv->size_work);
	cancel_work_sync(&pv->stats_work);
}

/*
 * Reset the device and drop its queues.  Before a reset every buffer the
 * host holds must be back - or, from a broken host, forgotten: after the
 * reset the host touches nothing, so the pages we held for it are free.
 */
static void pvb_reset(struct pvb_virtio *pv)
{
	unsigned int i;

	mutex_lock(&pv->lock);
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
	mutex_unlock(&pv->lock);
	cancel_work_sync(&pv->reap_work);
	/* A report woken by the reset may still be looking at its queue. */
	wait_event(pv->acked, pvb_report_idle(pv));
	pv->vdev->config->del_vqs(pv->vdev);
	/* Anything that still reaches for a queue now oopses, never a UAF. */
	memset(pv->vqs, 0, sizeof(pv->vqs));
}

static void pvb_free_bufs(struct pvb_virtio *pv)
{
	unsigned int i;

	for (i = 0; pv->infl && i < pv->nbufs; i++)
		pvb_vbuf_free(pv->infl[i]);
	for (i = 0; pv->defl && i < pv->nbufs; i++)
		pvb_vbuf_free(pv->defl[i]);
	kfree(pv->infl);
	kfree(pv->defl);
	pvb_vbuf_free(pv->mig_infl);
	pvb_vbuf_free(pv->mig_defl);
	pv->infl = pv->defl = NULL;
	pv->mig_infl = pv->mig_defl = NULL;
	pv->nbufs = 0;
}

/*
 * The host profile's buffers: as many as keep PVB_PFNS_IN_FLIGHT PFNs with
 * the host, but fewer than the smaller queue has descriptors.  All or
 * nothing: on failure no buffer is left and nbufs is 0.
 */
static int pvb_alloc_bufs(struct pvb_virtio *pv)
{
	unsigned int ring = min(virtqueue_get_vring_size(pv->vqs[PVB_VQ_INFLATE]),
				virtqueue_get_vring_size(pv->vqs[PVB_VQ_DEFLATE]));
	unsigned int i;

	if (ring < 2)
		return -ENOSPC;
	pv->nbufs = clamp(PVB_PFNS_IN_FLIGHT / pv->host.max_pfns, 1U, ring - 1);
	pv->infl = kcalloc(pv->nbufs, sizeof(*pv->infl), GFP_KERNEL);
	pv->defl = kcalloc(pv->nbufs, sizeof(*pv->defl), GFP_KERNEL);
	if (!pv->infl || !pv->defl)
		goto fail;
	for (i = 0; i < pv->nbufs; i++) {
		pv->infl[i] = pvb_vbuf_alloc(pv->host.max_pfns);
		pv->defl[i] = pvb_vbuf_alloc(pv->host.max_pfns);
		if (!pv->infl[i] || !pv->defl[i])
			goto fail;
	}
	pv->mig_infl = pvb_vbuf_alloc(1);
	pv->mig_defl = pvb_vbuf_alloc(1);
	if (!pv->mig_infl || !pv->mig_defl)
		goto fail;
	return 0;
fail:
	pvb_free_bufs(pv);
	return -ENOMEM;
}

static void pvb_free(struct pvb_virtio *pv)
{
	pvb_free_bufs(pv);
	kfree(pv);
}

/*
 * After a reset: the queues again, and buffers sized for them (they may
 * have come back with another size); all buffers are idle after the reset.
 * The device is left to pvb_start().
 */
static int pvb_reinit(struct pvb_virtio *pv)
{
	int err = pvb_find_vqs(pv);

	if (err)
		return err;
	mutex_lock(&pv->lock);
	pvb_free_bufs(pv);
	err = pvb_alloc_bufs(pv);
	if (!err) {
		pv->dead = false;
		pv->broken = false;
	}
	mutex_unlock(&pv->lock);
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
static void pvb_recover_work(struct work_struct *work)
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
static void pvb_stop_recovery(struct pvb_virtio *pv)
{
	spin_lock_irq(&pv->stop_lock);
	pv->no_recover = true;
	spin_unlock_irq(&pv->stop_lock);
	cancel_work_sync(&pv->recover_work);
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
	INIT_WORK(&pv->reap_work, pvb_reap_work);
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
	 * With DEFLATE_ON_OOM the balloon is memory the guest may take back
	 * any time, so MemTotal does not follow it (as in-tree).
	 */
	err = pvb_frontend_attach(b, &pvb_virtio_ops, pv,
				  !pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	if (err) {
		dev_err(&vdev->dev, "the balloon already has a host\n");
		goto out_del_vqs;
	}
	if (pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM)) {
		pv->oom_nb.notifier_call = pvb_oom_notify;
		pv->oom_nb.priority = 80;	/* as in-tree: before others */
		err = register_oom_notifier(&pv->oom_nb);
		if (err)
			goto out_detach;
	}
	if (pvb_has(pv, VIRTIO_BALLOON_F_REPORTING)) {
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
	pvb_start(pv);
	dev_info(&vdev->dev, "pvballoon drives this virtio-balloon: host %s (%s), buffers of up to %u PFNs, %u in flight per queue\n",
		 pv->host.name, pv->host.why, pv->host.max_pfns, pv->nbufs);
	dev_info(&vdev->dev, "negotiated features%s%s%s%s%s\n",
		 pvb_has(pv, VIRTIO_BALLOON_F_MUST_TELL_HOST) ? " must-tell-host" : "",
		 pvb_has(pv, VIRTIO_BALLOON_F_STATS_VQ) ? " stats" : "",
		 pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM) ? " deflate-on-oom" : "",
		 pvb_has(pv, VIRTIO_BALLOON_F_PAGE_POISON) ? " page-poison" : "",
		 pv->reporting ? " free-page-reporting" : "");
	return 0;

out_oom:
	if (pvb_has(pv, VIRTIO_BALLOON_F_DEFLATE_ON_OOM))
		unregister_oom_notifier(&pv->oom_nb);
out_detach:
	pvb_frontend_detach(b);
out_del_vqs:
	virtio_reset_device(vdev);
	pvb_stop_recovery(pv);
	cancel_work_sync(&pv->reap_work);
	vdev->config->del_vqs(vdev);
out_free:
	pvb_free(pv);
	return err;
}

static void pvb_remove(struct virtio_device *vdev)
{
	struct pvb_virtio *pv = vdev->priv;
	unsigned long pages;

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
	int rc;

	pvb_stop_recovery(pv);
	pvb_halt(pv);
	rc = pvb_set_target(pv->b, 0, NULL);
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

static struct virtio_driver pvb_virtio_driver = {
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

/* ------------------------------------------------------------ takeover */

/* Devices taken from another driver, to give back on unload. */
#define PVB_MAX_TAKEN	4
static struct device *pvb_taken[PVB_MAX_TAKEN];

static int pvb_take_one(struct device *dev, void *data)
{
	struct virtio_device *vdev = dev_to_virtio(dev);
	unsigned int i;

	if (vdev->id.device != VIRTIO_ID_BALLOON || !dev->driver ||
	    dev->driver == &pvb_virtio_driver.driver)
		return 0;
	for (i = 0; i < PVB_MAX_TAKEN && pvb_taken[i]; i++)
		;
	if (i == PVB_MAX_TAKEN)
		return 0;
	pr_info("takeover: unbinding %s from %s\n", dev_name(dev), dev->driver->name);
	pvb_taken[i] = get_device(dev);
	device_release_driver(dev);
	return 0;
}

/* Where a virtio-balloon device is while pvballoon has none. */
struct pvb_elsewhere {
	struct seq_file *m;		/* the stats file, or NULL: dmesg */
	unsigned int ours, others;
};

#define PVB_FIX_TAKEOVER "modprobe -r pvballoon && modprobe pvballoon takeover=1"

/*
 * Is a balloon device ours, or held by another driver?  A balloon without
 * its device shrinks the guest and tells no host, so say so, with the way
 * out: in dmesg after loading, and in the stats file.
 */
static int pvb_whose(struct device *dev, void *data)
{
	struct virtio_device *vdev = dev_to_virtio(dev);
	struct device_driver *drv = READ_ONCE(dev->driver);
	struct pvb_elsewhere *w = data;

	if (vdev->id.device != VIRTIO_ID_BALLOON)
		return 0;
	if (drv == &pvb_virtio_driver.driver) {
		w->ours++;
		return 0;
	}
	w->others++;
	if (w->m) {
		seq_printf(w->m, "device: %s\n", dev_name(dev));
		seq_printf(w->m, "device_driver: %s\n", drv ? drv->name : "none");
		seq_puts(w->m, "fix: " PVB_FIX_TAKEOVER "\n");
	} else if (drv) {
		pr_warn("%s is driven by %s, not pvballoon: the host will not see this balloon; fix: " PVB_FIX_TAKEOVER "; at every boot: /etc/modprobe.d/pvballoon.conf (README: Installing in a real guest)\n",
			dev_name(dev), drv->name);
	} else {
		pr_warn("%s has no driver: fix: " PVB_FIX_TAKEOVER "\n", dev_name(dev));
	}
	return 0;
}

/* pvb_balloon.no_fe_show: the stats file's word on a missing front-end. */
static void pvb_no_device_show(struct seq_file *m)
{
	struct pvb_elsewhere w = { .m = m };

	bus_for_each_dev(pvb_virtio_driver.driver.bus, NULL, &w, pvb_whose);
	if (!w.others)
		seq_puts(m, "device: none\n");
}

/**
 * pvb_virtio_init - register the virtio driver
 * @b: the balloon
 *
 * With takeover=1, devices already bound to another driver (the in-tree
 * virtio_balloon, loaded first by udev) are unbound and probed again, so
 * that we get them.
 *
 * Return: 0 or an error from driver registration.
 */
int pvb_virtio_init(struct pvb_balloon *b)
{
	struct pvb_elsewhere w = { };
	unsigned int i;
	int err;

	err = register_virtio_driver(&pvb_virtio_driver);
	if (err)
		return err;
	if (pvb_takeover)
		bus_for_each_dev(pvb_virtio_driver.driver.bus, NULL, NULL,
				 pvb_take_one);
	for (i = 0; i < PVB_MAX_TAKEN && pvb_taken[i]; i++) {
		/* Not device_attach(): it would find the old driver first. */
		err = device_driver_attach(&pvb_virtio_driver.driver, pvb_taken[i]);
		if (pvb_taken[i]->driver != &pvb_virtio_driver.driver)
			pr_warn("takeover: %s did not bind to pvballoon (error %d)\n",
				dev_name(pvb_taken[i]), err);
	}
	bus_for_each_dev(pvb_virtio_driver.driver.bus, NULL, &w, pvb_whose);
	if (!w.ours && !w.others)
		pr_info("no virtio-balloon device: the balloon works from debugfs and sysfs, but no host is told (stats: frontend: none)\n");
	down_write(&b->fe_sem);
	b->no_fe_show = pvb_no_device_show;
	up_write(&b->fe_sem);
	return 0;
}

void pvb_virtio_exit(void)
{
	struct pvb_balloon *b = &pvb_the_balloon;
	unsigned int i;

	down_write(&b->fe_sem);
	b->no_fe_show = NULL;
	up_write(&b->fe_sem);
	unregister_virtio_driver(&pvb_virtio_driver);
	for (i = 0; i < PVB_MAX_TAKEN && pvb_taken[i]; i++) {
		if (pvb_give_back) {
			int err = device_attach(pvb_taken[i]);

			pr_info("give back: %s %s\n", dev_name(pvb_taken[i]),
				err > 0 ? "bound again" : "left unbound (its driver is gone)");
		}
		put_device(pvb_taken[i]);
		pvb_taken[i] = NULL;
	}
}
