// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_BALLOON_MIGRATE_EVENT: the balloon_migrate line of /proc/vmstat
 * exists (CONFIG_BALLOON_COMPACTION, CONFIG_BALLOON_MIGRATION from v7.0).
 */
#include <linux/mm.h>
#include <linux/vmstat.h>

int pvb_probe_item = BALLOON_MIGRATE;
