// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_BALLOON_S_OOM_KILL: <uapi/linux/virtio_balloon.h> defines the
 * stats tags 10-15 (OOM kills, allocation stalls, scan and reclaim
 * counters).  Since v6.12; older headers stop at tag 9.
 */
#include <linux/virtio_balloon.h>

int pvb_probe_tag = VIRTIO_BALLOON_S_OOM_KILL;
