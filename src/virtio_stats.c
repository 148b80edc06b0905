// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon virtio front-end: the statistics the host reads through
 * STATS_VQ (QMP qom-get <balloon> guest-stats).
 *
 * On QEMU all 16 tags the virtio spec defines are sent; QEMU 7.2 keeps
 * tags 0-9 and ignores the rest, newer versions show them all.  Elsewhere
 * only tags 0-9, as the in-tree driver of v6.1 (see virtio_host.c).
 *
 * The queue: the host asks for stats by returning the buffer we gave it;
 * we refill it from a work item (collecting stats can sleep) and hand it
 * back.  Calls nothing of pvballoon's beyond the shared device state.
 */
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/swap.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/vmstat.h>

#include "pvb_compat.h"
#include "pvb_virtio_dev.h"

/* Tags 10-15 arrived in the uapi header with v6.12 (virtio 1.3). */
#ifndef PVB_HAVE_BALLOON_S_OOM_KILL
#define VIRTIO_BALLOON_S_OOM_KILL	10
#define VIRTIO_BALLOON_S_ALLOC_STALL	11
#define VIRTIO_BALLOON_S_ASYNC_SCAN	12
#define VIRTIO_BALLOON_S_DIRECT_SCAN	13
#define VIRTIO_BALLOON_S_ASYNC_RECLAIM	14
#define VIRTIO_BALLOON_S_DIRECT_RECLAIM	15
#endif

static u64 pages_to_bytes(unsigned long pages)
{
	return (u64)pages << PAGE_SHIFT;
}

/**
 * pvb_virtio_fill_stats - fill the stats buffer from the guest's counters
 * @vdev: the device (for its endianness)
 * @st: PVB_VIRTIO_NR_STATS entries
 * @nr_tags: send only tags below this
 *
 * The same sources as /proc/meminfo and /proc/vmstat, so what the host
 * shows can be checked against the guest.
 *
 * Return: the number of entries filled.
 */
unsigned int pvb_virtio_fill_stats(struct virtio_device *vdev,
				   struct virtio_balloon_stat *st,
				   unsigned int nr_tags)
{
	unsigned long ev[NR_VM_EVENT_ITEMS];
	unsigned long stall = 0;
	unsigned int n = 0, zid;
	struct sysinfo si;

#define PUT(t, v) do {							\
		if ((t) < nr_tags) {					\
			st[n].tag = cpu_to_virtio16(vdev, t);		\
			st[n].val = cpu_to_virtio64(vdev, v);		\
			n++;						\
		}							\
	} while (0)

	all_vm_events(ev);
	si_meminfo(&si);
	for (zid = 0; zid < MAX_NR_ZONES; zid++)
		stall += ev[ALLOCSTALL_NORMAL - ZONE_NORMAL + zid];

	PUT(VIRTIO_BALLOON_S_SWAP_IN, pages_to_bytes(ev[PSWPIN]));
	PUT(VIRTIO_BALLOON_S_SWAP_OUT, pages_to_bytes(ev[PSWPOUT]));
	PUT(VIRTIO_BALLOON_S_MAJFLT, ev[PGMAJFAULT]);
	PUT(VIRTIO_BALLOON_S_MINFLT, ev[PGFAULT]);
	PUT(VIRTIO_BALLOON_S_MEMFREE, pages_to_bytes(si.freeram));
	PUT(VIRTIO_BALLOON_S_MEMTOT, pages_to_bytes(si.totalram));
	PUT(VIRTIO_BALLOON_S_AVAIL, pages_to_bytes(si_mem_available()));
	PUT(VIRTIO_BALLOON_S_CACHES,
	    pages_to_bytes(global_node_page_state(NR_FILE_PAGES)));
#ifdef CONFIG_HUGETLB_PAGE
	PUT(VIRTIO_BALLOON_S_HTLB_PGALLOC, ev[HTLB_BUDDY_PGALLOC]);
	PUT(VIRTIO_BALLOON_S_HTLB_PGFAIL, ev[HTLB_BUDDY_PGALLOC_FAIL]);
#endif
	PUT(VIRTIO_BALLOON_S_OOM_KILL, ev[OOM_KILL]);
	PUT(VIRTIO_BALLOON_S_ALLOC_STALL, stall);
	PUT(VIRTIO_BALLOON_S_ASYNC_SCAN, pages_to_bytes(ev[PGSCAN_KSWAPD]));
	PUT(VIRTIO_BALLOON_S_DIRECT_SCAN, pages_to_bytes(ev[PGSCAN_DIRECT]));
	PUT(VIRTIO_BALLOON_S_ASYNC_RECLAIM, pages_to_bytes(ev[PGSTEAL_KSWAPD]));
	PUT(VIRTIO_BALLOON_S_DIRECT_RECLAIM, pages_to_bytes(ev[PGSTEAL_DIRECT]));
#undef PUT
	return n;
}

/* Interrupt context: the host returned the buffer, so it wants stats. */
void pvb_stats_request(struct virtqueue *vq)
{
	struct pvb_virtio *pv = vq->vdev->priv;

	spin_lock(&pv->stop_lock);
	if (!pv->stop)
		queue_work(system_freezable_wq, &pv->stats_work);
	spin_unlock(&pv->stop_lock);
}

int pvb_stats_give(struct pvb_virtio *pv)
{
	struct scatterlist sg;
	unsigned int n = pvb_virtio_fill_stats(pv->vdev, pv->stats,
					       pv->host.nr_stats);

	sg_init_one(&sg, pv->stats, sizeof(pv->stats[0]) * n);
	return virtqueue_add_outbuf(pv->vqs[PVB_VQ_STATS], &sg, 1, pv, GFP_KERNEL);
}

void pvb_stats_work(struct work_struct *work)
{
	struct pvb_virtio *pv = container_of(work, struct pvb_virtio, stats_work);
	struct virtqueue *vq = pv->vqs[PVB_VQ_STATS];
	unsigned int len;

	if (!virtqueue_get_buf(vq, &len))
		return;
	if (!pvb_stats_give(pv)) {
		virtqueue_kick(vq);
		WRITE_ONCE(pv->stats_answered, pv->stats_answered + 1);
	}
}
