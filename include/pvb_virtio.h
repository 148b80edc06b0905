/* SPDX-License-Identifier: GPL-2.0 */
/* pvballoon virtio-balloon front-end: a virtio-balloon device of any host. */
#ifndef PVB_VIRTIO_H
#define PVB_VIRTIO_H

#include <linux/types.h>
#include <linux/virtio_balloon.h>

#include "pvb_core.h"

struct virtio_device;

int pvb_virtio_init(struct pvb_balloon *b);
void pvb_virtio_exit(void);

/* src/virtio_stats.c: the STATS_VQ buffer. */
#define PVB_VIRTIO_NR_STATS	16
unsigned int pvb_virtio_fill_stats(struct virtio_device *vdev,
				   struct virtio_balloon_stat *st,
				   unsigned int nr_tags);

/* src/virtio_host.c: the host behind a device and what it accepts. */
#define PVB_BATCH_PFNS_QEMU	PVB_BATCH_PAGES

/**
 * struct pvb_host_profile - buffer shapes for one host
 * @name: "qemu" or "generic"
 * @why: what identified it, for dmesg
 * @max_pfns: PFNs per inflate/deflate buffer (one descriptor each)
 * @nr_stats: stats tags sent: 0 .. @nr_stats - 1
 */
struct pvb_host_profile {
	const char *name;
	char why[96];
	unsigned int max_pfns;
	unsigned int nr_stats;
};

void pvb_host_identify(struct virtio_device *vdev, struct pvb_host_profile *p);

#endif /* PVB_VIRTIO_H */
