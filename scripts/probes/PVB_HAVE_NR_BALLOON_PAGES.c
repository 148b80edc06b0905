// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_NR_BALLOON_PAGES: node stat NR_BALLOON_PAGES, shown as
 * nr_balloon_pages in /proc/vmstat and Balloon: in /proc/meminfo.
 * Since v6.15 ("meminfo: add a per node counter for balloon drivers").
 */
#include <linux/mm.h>
#include <linux/mmzone.h>

int pvb_probe_item = NR_BALLOON_PAGES;
