// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: the inflate and deflate queues, their PFN
 * buffers, and the wait for the host's acknowledgement.
 *
 * Owns the queues' setup (pvb_find_vqs()), the buffers (sized by the host
 * profile of virtio_host.c), and the host_timeout_ms and fault_noack
 * parameters.  Everything here runs under pvb_virtio.lock except the
 * interrupt callback, which only wakes waiters.  A wait that outlasts
 * host_timeout_ms declares the host broken (virtio_reset.c).
 *
 * Ordering with the host (MUST_TELL_HOST and migration), kept by the
 * operations of virtio_ops.c with the waits below:
 *  - a page enters the balloon as soon as its inflate buffer is sent,
 *    but its deflate or migration is sent only after every inflate buffer
 *    was acknowledged (pvb_wait_inflates()), so the host always processes
 *    a page's inflate before its deflate;
 *  - with MUST_TELL_HOST a deflated page is freed only after the host
 *    acknowledged the deflate buffer (pvb_vbuf_done()); without it, at
 *    once, and then nothing is inflated before every deflate buffer is
 *    back (pvb_wait_deflates());
 *  - range buffers (virtio_range.c) count as inflates;
 *  - every buffer is one descriptor, never a chain (pvb_queue()).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/wait.h>

#include "pvb_compat_virtio.h"
#include "pvb_core.h"
#include "pvb_virtio_dev.h"

static unsigned int pvb_host_timeout_ms = 30000;
module_param_named(host_timeout_ms, pvb_host_timeout_ms, uint, 0644);
MODULE_PARM_DESC(host_timeout_ms,
		 "A host that does not acknowledge a buffer in this time is declared broken (default 30000)");

static bool pvb_fault_noack;
module_param_named(fault_noack, pvb_fault_noack, bool, 0644);
MODULE_PARM_DESC(fault_noack,
		 "Testing aid: stop notifying the host, so that it never acknowledges a buffer (default 0)");

/* host_timeout_ms in jiffies, read anew at every wait. */
unsigned long pvb_host_timeout(void)
{
	return msecs_to_jiffies(READ_ONCE(pvb_host_timeout_ms));
}

/*
 * Tell the host about the buffers added to @vq - unless the fault_noack
 * testing aid plays a host that never answers.
 */
void pvb_host_kick(struct virtqueue *vq)
{
	if (!READ_ONCE(pvb_fault_noack))
		virtqueue_kick(vq);
}

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

/* Interrupt context: only wake; buffers are reclaimed in process context. */
static void pvb_vq_ack(struct virtqueue *vq)
{
	struct pvb_virtio *pv = vq->vdev->priv;

	wake_up_all(&pv->acked);
	/*
	 * Deflated and migrated pages wait for a reap to be freed.  Not at
	 * once: a reaper after every migration's acknowledgement took
	 * pv->lock between compaction's migrations, and on PREEMPT_RT, where
	 * the compacting task preempts it, held the lock against them (see
	 * pvb_fe_migrate()).  Every path that waits for buffers reaps on its
	 * own; this only frees what nobody waits for, a little later, once
	 * per PVB_REAP_DELAY_MS however many acknowledgements came.
	 */
	if (vq == pv->vqs[PVB_VQ_DEFLATE])
		schedule_delayed_work(&pv->reap_work,
				      msecs_to_jiffies(PVB_REAP_DELAY_MS));
}

/* The host is done with @vb: free what waited for it. */
void pvb_vbuf_done(struct pvb_vbuf *vb)
{
	if (vb->hold_page) {
		put_page(vb->hold_page);
		vb->hold_page = NULL;
	}
	pvb_put_page_list(&vb->hold);
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
	pvb_range_reap(pv);
}

void pvb_reap_work(struct work_struct *work)
{
	struct pvb_virtio *pv = container_of(to_delayed_work(work),
					     struct pvb_virtio, reap_work);

	pvb_lock(pv);
	pvb_reap(pv);
	pvb_unlock(pv);
}

/*
 * Caller holds pv->lock.  Wait until @vb is back from the host: 0, or
 * -ETIMEDOUT when the host sat on it (it still has it), or -EIO when the
 * host was already declared broken.
 */
int pvb_wait_buf(struct pvb_virtio *pv, struct pvb_vbuf *vb,
		 const char *what)
{
	lockdep_assert_held(&pv->lock);
	if (!READ_ONCE(vb->busy))
		return 0;
	if (pv->broken)
		return -EIO;
	if (!wait_event_timeout(pv->acked, ({ pvb_reap(pv); !vb->busy; }),
				pvb_host_timeout())) {
		pvb_declare_broken(pv, what);
		return -ETIMEDOUT;
	}
	return 0;
}

/* Caller holds pv->lock.  Wait for every buffer of @bufs. */
int pvb_wait_all(struct pvb_virtio *pv, struct pvb_vbuf **bufs,
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
void pvb_kick(struct pvb_virtio *pv, int q)
{
	lockdep_assert_held(&pv->lock);
	pvb_host_kick(pv->vqs[q]);
}

/*
 * Caller holds pv->lock.  A free buffer of @bufs (queue @q), waiting for
 * the host to return one if all are out - after a kick, so that it has
 * seen every buffer we added; an ERR_PTR as pvb_wait_buf() on failure.
 */
struct pvb_vbuf *pvb_get_buf(struct pvb_virtio *pv, int q,
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
				pvb_host_timeout())) {
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
int pvb_queue(struct pvb_virtio *pv, int q, struct pvb_vbuf *vb)
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
int pvb_send(struct pvb_virtio *pv, int q, struct pvb_vbuf *vb)
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
void pvb_fill_pfns(struct pvb_virtio *pv, struct pvb_vbuf *vb,
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

/*
 * Caller holds pv->lock.  Every inflate the host has not acknowledged:
 * inflate buffers, range buffers (virtio_range.c), a migration's inflate.
 */
int pvb_wait_inflates(struct pvb_virtio *pv)
{
	int err = pvb_wait_all(pv, pv->infl, "an inflate");

	lockdep_assert_held(&pv->lock);
	err = err ?: pvb_range_wait(pv);
	return err ?: pvb_wait_buf(pv, pv->mig_infl, "a migration inflate");
}

/*
 * Caller holds pv->lock.  Without MUST_TELL_HOST deflated pages are freed
 * as soon as their buffer is sent (pvb_fe_deflate()), so the allocator
 * may hand one out again before the host has read its deflate.  Before
 * anything is inflated - a resize's pages or a migration's new page -
 * every deflate must be back: the host processes its queues in no
 * particular order, and a deflate read after the page's new inflate
 * would tell it the page is in use while it is in the balloon.
 */
int pvb_wait_deflates(struct pvb_virtio *pv)
{
	lockdep_assert_held(&pv->lock);
	if (pvb_has(pv, VIRTIO_BALLOON_F_MUST_TELL_HOST))
		return 0;	/* deflated pages are held until the ack */
	return pvb_wait_all(pv, pv->defl, "a deflate");
}

/*
 * Caller holds pv->lock.  Is an inflate, the last migration, or (without
 * MUST_TELL_HOST) a deflate still with the host?  For MIGRATE_ASYNC, which
 * must not wait for them.
 */
bool pvb_migration_busy(struct pvb_virtio *pv)
{
	bool defl = !pvb_has(pv, VIRTIO_BALLOON_F_MUST_TELL_HOST);
	unsigned int i;

	lockdep_assert_held(&pv->lock);
	pvb_reap(pv);
	for (i = 0; i < pv->nbufs; i++)
		if (pv->infl[i]->busy || (defl && pv->defl[i]->busy))
			return true;
	return pv->mig_infl->busy || pv->mig_defl->busy ||
	       pvb_range_pending(pv);
}

int pvb_find_vqs(struct pvb_virtio *pv)
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
	pvb_range_setup(pv);
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

void pvb_free_bufs(struct pvb_virtio *pv)
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
int pvb_alloc_bufs(struct pvb_virtio *pv)
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
