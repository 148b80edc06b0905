/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pvballoon compat for the virtio API (used by the virtio front-end only,
 * so the core does not pull in virtio headers).  Named after the newest API.
 */
#ifndef PVB_COMPAT_VIRTIO_H
#define PVB_COMPAT_VIRTIO_H

#include <linux/virtio_config.h>

#include "pvb_conftest.h"

#define PVB_MAX_VQS	8

#ifndef PVB_HAVE_VIRTQUEUE_INFO
/* v6.11 passes one struct per queue; older kernels take two arrays. */
struct virtqueue_info {
	const char *name;
	vq_callback_t *callback;
	bool ctx;
};
#endif

/**
 * pvb_virtio_find_vqs - virtio_find_vqs() with the v6.11 calling convention
 * @vdev: the device
 * @nvqs: number of queues (at most PVB_MAX_VQS)
 * @vqs: the queues found
 * @info: name and callback of each queue; a NULL name skips the queue
 *
 * Return: 0 or the transport's error.
 */
static inline int pvb_virtio_find_vqs(struct virtio_device *vdev,
				      unsigned int nvqs,
				      struct virtqueue *vqs[],
				      struct virtqueue_info info[])
{
#ifdef PVB_HAVE_VIRTQUEUE_INFO
	return virtio_find_vqs(vdev, nvqs, vqs, info, NULL);
#else
	vq_callback_t *cb[PVB_MAX_VQS];
	const char *names[PVB_MAX_VQS];
	unsigned int i;

	if (nvqs > PVB_MAX_VQS)
		return -EINVAL;
	for (i = 0; i < nvqs; i++) {
		cb[i] = info[i].callback;
		names[i] = info[i].name;
	}
	return virtio_find_vqs(vdev, nvqs, vqs, cb, names, NULL);
#endif
}

#endif /* PVB_COMPAT_VIRTIO_H */
