/* SPDX-License-Identifier: GPL-2.0 */
/* pvballoon virtio-balloon front-end: QEMU's virtio-balloon-pci device. */
#ifndef PVB_VIRTIO_H
#define PVB_VIRTIO_H

#include <linux/types.h>
#include <linux/virtio_balloon.h>

struct pvb_balloon;
struct virtio_device;

/* Module parameters that belong to the front-end (src/main.c). */
extern unsigned int pvb_oom_deflate_pages;
extern bool pvb_takeover;
extern bool pvb_give_back;
extern unsigned int pvb_host_timeout_ms;
extern bool pvb_fault_noack;

int pvb_virtio_init(struct pvb_balloon *b);
void pvb_virtio_exit(void);

/* src/virtio_stats.c: the STATS_VQ buffer. */
#define PVB_VIRTIO_NR_STATS	16
unsigned int pvb_virtio_fill_stats(struct virtio_device *vdev,
				   struct virtio_balloon_stat *st);

#endif /* PVB_VIRTIO_H */
