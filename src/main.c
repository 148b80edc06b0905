// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon - a paravirtual memory balloon whose pages compaction can move.
 *
 * Module glue: parameters, load and unload.  The pieces:
 *   core.c            sizes, targets, allocation, statistics
 *   migrate_*.c       the migration backend (pvb_migrate.h)
 *   control.c         inflate/deflate/target requests users write
 *   debugfs.c         /sys/kernel/debug/pvballoon/
 *   sysfs.c           /sys/kernel/pvballoon/ (what lockdown allows)
 *   virtio*.c         the virtio-balloon front-end
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "pvb_core.h"
#include "pvb_debugfs.h"
#include "pvb_sysfs.h"
#include "pvb_virtio.h"

static bool movable = true;
module_param(movable, bool, 0444);
MODULE_PARM_DESC(movable,
		 "Allocate movable pages that compaction can migrate (default 1). 0 uses GFP_HIGHUSER like a balloon without balloon compaction: the pages pin their 2 MiB blocks.");

static bool adjust_memtotal = true;
module_param(adjust_memtotal, bool, 0444);
MODULE_PARM_DESC(adjust_memtotal,
		 "MemTotal follows the balloon, as with the in-tree driver (default 1)");

/*
 * Whole free 2 MiB blocks first.  Changeable at run time; the balloon reads
 * it at the start of each inflate.
 */
static bool huge_blocks = true;

static int pvb_huge_set(const char *val, const struct kernel_param *kp)
{
	int rc = param_set_bool(val, kp);

	if (!rc)
		WRITE_ONCE(pvb_the_balloon.huge, huge_blocks);
	return rc;
}

static const struct kernel_param_ops pvb_huge_ops = {
	.set = pvb_huge_set,
	.get = param_get_bool,
};
module_param_cb(huge_blocks, &pvb_huge_ops, &huge_blocks, 0644);
MODULE_PARM_DESC(huge_blocks,
		 "Inflate whole free 2 MiB blocks (split into movable 4 KiB pages) before single pages, so that the host can free whole huge pages (default 1)");

static unsigned int huge_keep_mb;
module_param(huge_keep_mb, uint, 0444);
MODULE_PARM_DESC(huge_keep_mb,
		 "Free 2 MiB blocks (MiB) that the balloon leaves to the guest's own huge pages before it takes 4 KiB pages instead (default 0: automatic, 1/8 of RAM)");

static unsigned int reserve_mb;
module_param(reserve_mb, uint, 0444);
MODULE_PARM_DESC(reserve_mb,
		 "MemAvailable (MiB) that inflation never takes, so the guest is not left to the OOM killer (default 0: automatic, 1/64 of RAM, at least 16 MiB)");

static int __init pvb_init(void)
{
	struct pvb_balloon *b = &pvb_the_balloon;
	int rc;

	unsigned long reserve = (unsigned long)reserve_mb << (20 - PAGE_SHIFT);
	unsigned long huge_keep;

	if (!reserve_mb)
		reserve = max(totalram_pages() / 64, 16UL << (20 - PAGE_SHIFT));
	huge_keep = (unsigned long)huge_keep_mb << (20 - PAGE_SHIFT);
	if (!huge_keep_mb)
		huge_keep = totalram_pages() / 8;
	pvb_balloon_init(b, movable, adjust_memtotal, reserve, huge_blocks,
			 huge_keep);
	rc = pvb_core_oom_init(b);
	if (rc) {
		pr_err("cannot register the OOM notifier (error %d)\n", rc);
		return rc;
	}
	rc = pvb_debugfs_init(b);
	if (rc) {
		pr_err("cannot create /sys/kernel/debug/%s (error %d); is debugfs enabled?\n",
		       KBUILD_MODNAME, rc);
		goto err_oom;
	}
	rc = pvb_sysfs_init(b);
	if (rc) {
		pr_err("cannot create /sys/kernel/%s (error %d)\n", KBUILD_MODNAME, rc);
		goto err_debugfs;
	}
	rc = pvb_virtio_init(b);
	if (rc) {
		pr_err("cannot register the virtio driver (error %d)\n", rc);
		goto err_sysfs;
	}
	pr_info("pvballoon %s loaded: migration backend %s, %s pages%s, MemTotal %s, reserve %lu MiB\n",
		PVB_VERSION, pvb_mig_backend_name,
		movable ? "movable" : "unmovable",
		huge_blocks ? " (2 MiB blocks first)" : "",
		adjust_memtotal ? "follows the balloon" : "fixed",
		reserve >> (20 - PAGE_SHIFT));
	return 0;

err_sysfs:
	pvb_sysfs_exit();
err_debugfs:
	pvb_debugfs_exit();
err_oom:
	pvb_core_oom_exit(b);
	return rc;
}

static void __exit pvb_exit(void)
{
	pvb_virtio_exit();
	pvb_sysfs_exit();
	pvb_debugfs_exit();
	pvb_core_oom_exit(&pvb_the_balloon);
	pvb_balloon_destroy(&pvb_the_balloon);
	pr_info("pvballoon %s unloaded\n", PVB_VERSION);
}

module_init(pvb_init);
module_exit(pvb_exit);

MODULE_AUTHOR("pvballoon developers");
MODULE_DESCRIPTION("Paravirtual memory balloon with movable pages");
MODULE_LICENSE("GPL");
MODULE_VERSION(PVB_VERSION);
