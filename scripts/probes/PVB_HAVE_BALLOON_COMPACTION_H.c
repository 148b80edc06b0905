// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_BALLOON_COMPACTION_H: the balloon API header is
 * <linux/balloon_compaction.h>.  v3.8 (commit 18468d93e53b) to v6.19.
 */
#include <linux/balloon_compaction.h>

struct balloon_dev_info pvb_probe_info;
