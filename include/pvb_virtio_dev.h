/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pvballoon virtio front-end, inside: the device state its files share
 * (virtio.c, virtio_queue.c, virtio_ops.c, virtio_reset.c,
 * virtio_report.c, virtio_range.c, virtio_stats.c, virtio_takeover.c).
 * Nothing outside the front-end includes this; the rest of the module
 * sees pvb_virtio.h.
 */
#ifndef PVB_VIRTIO_DEV_H
#define PVB_VIRTIO_DEV_H

#include <linux/atomic.h>
#include <linux/lockdep.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/page_reporting.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "pvb_virtio.h"

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
/* How long acknowledged deflates may wait for the reaper (pvb_vq_ack()). */
#define PVB_REAP_DELAY_MS	20

/* One PFN buffer: owned by the device from add to ack. */
struct pvb_vbuf {
	bool busy;
	unsigned int n;
	struct page *hold_page;	/* a migrated page, freed on the ack */
	struct list_head hold;	/* deflated pages, freed on the ack */
	__virtio32 *pfns;
};

/*
 * Range discards (virtio_range.c): a range buffer holds the whole 2 MiB
 * blocks of one core batch; four of them fill the 32 descriptors of QEMU's
 * reporting queue, the smallest of the hosts'.
 */
#define PVB_RANGE_ENTRIES	(PVB_BATCH_PAGES / PVB_HUGE_PAGES)
#define PVB_RANGE_BUFS		4

/* One range buffer: owned by the device from add to ack. */
struct pvb_rbuf {
	bool busy;
	unsigned int n;
	struct scatterlist sg[PVB_RANGE_ENTRIES];
};

/*
 * One virtio-balloon device.  @lock serialises use of the inflate and
 * deflate queues and their buffers, and the range buffers; migration in
 * MIGRATE_ASYNC only try-locks it (pvb_fe_migrate()).
 */
struct pvb_virtio {
	struct virtio_device *vdev;
	struct pvb_balloon *b;
	struct virtqueue *vqs[PVB_VQ_MAX];
	struct mutex lock;
	struct task_struct *lock_owner;	/* who holds @lock: pvb_lock_mine() */
	wait_queue_head_t acked;
	struct pvb_host_profile host;
	unsigned int nbufs;			/* per queue */
	struct pvb_vbuf **infl, **defl;
	struct pvb_vbuf *mig_infl, *mig_defl;	/* one migration */
	unsigned int largest_sent;		/* PFNs, for stats */
	/* Migrations refused with -EAGAIN, by reason (see pvb_fe_migrate()). */
	atomic_long_t mig_busy_lock;	/* pv->lock held by someone else */
	atomic_long_t mig_busy_host;	/* a buffer with the host (async), or a failed wait */
	atomic_long_t mig_busy_queue;	/* no room in a queue */
	bool broken;
	bool dead;		/* reset: deflates need not tell the host */

	spinlock_t stop_lock;
	bool stop;
	bool sleeping;	/* under stop_lock: a suspend or hibernation is coming */
	bool size_pending;	/* under stop_lock: size_work held off by it */
	struct notifier_block pm_nb;
	struct delayed_work size_work;
	struct work_struct stats_work;
	struct delayed_work reap_work;
	struct work_struct recover_work;
	bool no_recover;	/* under stop_lock: removal or freeze began */
	unsigned long recoveries;
	/*
	 * The host's requests as they reached us, for the stats file: a host
	 * whose target is not followed shows here whether its notifications
	 * arrive (config_changes), are acted on (resizes) or held (stop,
	 * sleeping); stats_answered likewise for the stats queue.
	 */
	unsigned long config_changes;	/* under stop_lock */
	unsigned long resizes;
	unsigned long stats_answered;
	bool host_retry;
	unsigned long host_seq;

	struct notifier_block oom_nb;
	atomic_long_t oom_pages;
	struct page_reporting_dev_info prdev;
	bool reporting;		/* registered with page reporting */
	bool report_stop;	/* under stop_lock: no new reports */
	bool report_busy;	/* under stop_lock: a report is in flight */
	/*
	 * Written under pv->lock and stop_lock: range buffers own the
	 * reporting queue (virtio_range.c); excludes report_busy.
	 */
	bool range_busy;
	unsigned int range_bufs;
	struct pvb_rbuf ranges[PVB_RANGE_BUFS];
	unsigned long range_blocks;	/* 2 MiB blocks sent as ranges */
	unsigned long reported_pages;
	struct virtio_balloon_stat stats[PVB_VIRTIO_NR_STATS];
};

/*
 * pv->lock, with its holder recorded.  A migration in a sync mode waits for
 * the lock (on PREEMPT_RT a preempted holder is then boosted instead of
 * refusing the page), but never for a lock its own task holds: an
 * allocation under the lock (pvb_reinit()) may compact, and compaction may
 * migrate a balloon page.
 */
static inline void pvb_lock(struct pvb_virtio *pv)
{
	mutex_lock(&pv->lock);
	WRITE_ONCE(pv->lock_owner, current);
}

static inline bool pvb_trylock(struct pvb_virtio *pv)
{
	if (!mutex_trylock(&pv->lock))
		return false;
	WRITE_ONCE(pv->lock_owner, current);
	return true;
}

static inline void pvb_unlock(struct pvb_virtio *pv)
{
	lockdep_assert_held(&pv->lock);
	WRITE_ONCE(pv->lock_owner, NULL);
	mutex_unlock(&pv->lock);
}

/* Does the running task hold pv->lock?  Only it can have set the owner. */
static inline bool pvb_lock_mine(struct pvb_virtio *pv)
{
	return READ_ONCE(pv->lock_owner) == current;
}

static inline bool pvb_has(struct pvb_virtio *pv, unsigned int bit)
{
	return virtio_has_feature(pv->vdev, bit);
}

/* virtio.c: the driver and the device's start and stop. */
extern struct virtio_driver pvb_virtio_driver;
void pvb_start(struct pvb_virtio *pv);
void pvb_halt(struct pvb_virtio *pv);

/* virtio_queue.c: queues, buffers, the host's acknowledgements. */
unsigned long pvb_host_timeout(void);
void pvb_host_kick(struct virtqueue *vq);
int pvb_find_vqs(struct pvb_virtio *pv);
int pvb_alloc_bufs(struct pvb_virtio *pv);
void pvb_free_bufs(struct pvb_virtio *pv);
void pvb_vbuf_done(struct pvb_vbuf *vb);
void pvb_reap_work(struct work_struct *work);
int pvb_wait_buf(struct pvb_virtio *pv, struct pvb_vbuf *vb, const char *what);
int pvb_wait_all(struct pvb_virtio *pv, struct pvb_vbuf **bufs,
		 const char *what);
int pvb_wait_inflates(struct pvb_virtio *pv);
int pvb_wait_deflates(struct pvb_virtio *pv);
bool pvb_migration_busy(struct pvb_virtio *pv);
struct pvb_vbuf *pvb_get_buf(struct pvb_virtio *pv, int q,
			     struct pvb_vbuf **bufs, const char *what);
void pvb_fill_pfns(struct pvb_virtio *pv, struct pvb_vbuf *vb,
		   struct list_head *head, struct list_head **pos);
int pvb_queue(struct pvb_virtio *pv, int q, struct pvb_vbuf *vb);
int pvb_send(struct pvb_virtio *pv, int q, struct pvb_vbuf *vb);
void pvb_kick(struct pvb_virtio *pv, int q);

/* virtio_ops.c: what the core calls; the host's target. */
extern const struct pvb_frontend_ops pvb_virtio_ops;
void pvb_size_work(struct work_struct *work);
void pvb_config_changed(struct virtio_device *vdev);
void pvb_recheck_target(struct pvb_virtio *pv);

/* virtio_reset.c: an unresponsive host, reset and recovery. */
void pvb_declare_broken(struct pvb_virtio *pv, const char *what);
void pvb_reset(struct pvb_virtio *pv);
int pvb_reinit(struct pvb_virtio *pv);
void pvb_recover_work(struct work_struct *work);
void pvb_stop_recovery(struct pvb_virtio *pv);

/* virtio_report.c: deflate-on-OOM and free page reporting. */
int pvb_oom_notify(struct notifier_block *nb, unsigned long dummy, void *parm);
int pvb_report(struct page_reporting_dev_info *prdev,
	       struct scatterlist *sg, unsigned int nents);
bool pvb_report_idle(struct pvb_virtio *pv);
void pvb_stop_reporting(struct pvb_virtio *pv);
void pvb_start_reporting(struct pvb_virtio *pv);

/* virtio_range.c: whole blocks as ranges on the reporting queue. */
const char *pvb_range_off(struct pvb_virtio *pv);
void pvb_range_setup(struct pvb_virtio *pv);
void pvb_range_send(struct pvb_virtio *pv, struct list_head *pages,
		    struct list_head *sent);
void pvb_range_reap(struct pvb_virtio *pv);
bool pvb_range_pending(struct pvb_virtio *pv);
int pvb_range_wait(struct pvb_virtio *pv);
void pvb_range_forget(struct pvb_virtio *pv);

/* virtio_stats.c: the stats queue. */
void pvb_stats_request(struct virtqueue *vq);
int pvb_stats_give(struct pvb_virtio *pv);
void pvb_stats_work(struct work_struct *work);

#endif /* PVB_VIRTIO_DEV_H */
