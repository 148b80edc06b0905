// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_SET_MOVABLE_OPS: movable_ops are chosen by page type through
 * set_movable_ops(ops, PGTY_*) and the PG_movable_ops flag; there is no
 * per-page ops pointer, and the kernel balloon owns the PageOffline slot.
 * Since v6.17 (David Hildenbrand's "mm: convert movable_ops pages away
 * from page->mapping" work).
 */
#include <linux/migrate.h>
#include <linux/page-flags.h>

bool pvb_probe(struct page *page);
bool pvb_probe(struct page *page)
{
	return PageMovableOps(page) && set_movable_ops != NULL;
}
