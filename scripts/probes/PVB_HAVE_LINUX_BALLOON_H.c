// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_LINUX_BALLOON_H: the balloon API header is <linux/balloon.h>,
 * with one global balloon lock and the core doing migration bookkeeping.
 * Since v7.0 (renamed from <linux/balloon_compaction.h>).
 */
#include <linux/balloon.h>

struct balloon_dev_info pvb_probe_info;
