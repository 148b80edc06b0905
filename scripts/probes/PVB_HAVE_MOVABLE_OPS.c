// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_MOVABLE_OPS: struct movable_operations, installed per page with
 * __SetPageMovable(page, &ops).  A module can own its migration callbacks.
 * Since v6.0, commit 68f2736a8583 ("mm: Convert all PageMovable users to
 * movable_operations"); gone in v6.17, where ops are chosen by page type.
 */
#include <linux/migrate.h>

static bool probe_isolate(struct page *page, isolate_mode_t mode) { return false; }
static const struct movable_operations probe_ops = {
	.isolate_page = probe_isolate,
};

void pvb_probe(struct page *page);
void pvb_probe(struct page *page)
{
	__SetPageMovable(page, &probe_ops);
}
