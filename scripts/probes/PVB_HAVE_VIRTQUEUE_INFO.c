// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_VIRTQUEUE_INFO: virtio_find_vqs() takes an array of
 * struct virtqueue_info (callback + name per queue) instead of separate
 * callbacks[] and names[] arrays.  Since v6.11.
 */
#include <linux/virtio_config.h>

int pvb_probe(struct virtio_device *vdev, struct virtqueue *vqs[]);
int pvb_probe(struct virtio_device *vdev, struct virtqueue *vqs[])
{
	struct virtqueue_info info[1] = {};

	return virtio_find_vqs(vdev, 1, vqs, info, NULL);
}
