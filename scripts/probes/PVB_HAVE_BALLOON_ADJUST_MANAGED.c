// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_BALLOON_ADJUST_MANAGED: struct balloon_dev_info has an
 * adjust_managed_page_count flag and the kernel balloon core adjusts
 * MemTotal itself.  Since v7.0.
 */
#include <linux/balloon.h>

void pvb_probe(struct balloon_dev_info *b);
void pvb_probe(struct balloon_dev_info *b)
{
	b->adjust_managed_page_count = true;
}
