// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_BALLOON_PAGE_FINALIZE: balloon_page_finalize() replaces
 * balloon_page_delete().  Stable backports brought it to 6.1.160 and
 * 6.12.64 - the reason we probe instead of comparing versions.
 */
#include <linux/balloon_compaction.h>

void pvb_probe(struct page *page);
void pvb_probe(struct page *page)
{
	balloon_page_finalize(page);
}
