// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_HAVE_MIGRATE_SYNC_NO_COPY: enum migrate_mode has MIGRATE_SYNC_NO_COPY
 * (a balloon cannot migrate without copying and must refuse it).
 * Added in v4.14; removed in v6.10 ("mm: migrate: remove
 * MIGRATE_SYNC_NO_COPY mode").  Present in 6.1, absent in 6.12.
 */
#include <linux/mm.h>
#include <linux/migrate.h>

int pvb_probe_mode = MIGRATE_SYNC_NO_COPY;
