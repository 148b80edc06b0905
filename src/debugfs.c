// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon debugfs interface, /sys/kernel/debug/pvballoon/ (root only):
 *
 *   inflate    (w)  grow the balloon: "<pages>" or "<size>K|M|G"
 *   deflate    (w)  shrink it the same way, or "all"
 *   target     (rw) the desired size in pages; writing converges
 *   migration  (rw) 1: compaction may move our pages; 0: isolation refused
 *   stats      (r)  "key: value" lines
 *   verify     (r)  walks the page list and checks every page (tests)
 *
 * Writes return when the balloon has moved.  A malformed write fails with
 * -EINVAL and changes nothing (control.c).  Under kernel lockdown debugfs
 * refuses every write: sysfs.c offers inflate, deflate and target there,
 * and stats stays readable (a read-only file).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "pvb_control.h"
#include "pvb_core.h"
#include "pvb_debugfs.h"

static struct dentry *pvb_dir;

/* Copy a user write into @buf (PVB_WRITE_MAX + 1 bytes). */
static ssize_t pvb_copy_write(char *buf, const char __user *ubuf, size_t len)
{
	if (!len || len > PVB_WRITE_MAX)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	return len;
}

static ssize_t pvb_resize_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *ppos, int sign)
{
	char buf[PVB_WRITE_MAX + 1];
	ssize_t n = pvb_copy_write(buf, ubuf, len);

	if (n < 0)
		return n;
	return pvb_ctl_resize(file_inode(file)->i_private, buf, len, sign);
}

static ssize_t pvb_inflate_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	return pvb_resize_write(file, ubuf, len, ppos, 1);
}

static ssize_t pvb_deflate_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	return pvb_resize_write(file, ubuf, len, ppos, -1);
}

static ssize_t pvb_target_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *ppos)
{
	char buf[PVB_WRITE_MAX + 1];
	ssize_t n = pvb_copy_write(buf, ubuf, len);

	if (n < 0)
		return n;
	return pvb_ctl_target(file_inode(file)->i_private, buf, len);
}

static ssize_t pvb_target_read(struct file *file, char __user *ubuf,
			       size_t len, loff_t *ppos)
{
	struct pvb_balloon *b = file_inode(file)->i_private;
	char buf[24];
	int n = scnprintf(buf, sizeof(buf), "%lu\n", READ_ONCE(b->target));

	return simple_read_from_buffer(ubuf, len, ppos, buf, n);
}

static ssize_t pvb_migration_write(struct file *file, const char __user *ubuf,
				   size_t len, loff_t *ppos)
{
	struct pvb_balloon *b = file_inode(file)->i_private;
	char buf[PVB_WRITE_MAX + 1];
	ssize_t n;

	n = pvb_copy_write(buf, ubuf, len);
	if (n < 0)
		return n;
	if (len == 2 && buf[1] != '\n')
		return -EINVAL;
	if (len > 2 || (buf[0] != '0' && buf[0] != '1'))
		return -EINVAL;
	pvb_set_migration(b, buf[0] == '1');
	return len;
}

static ssize_t pvb_migration_read(struct file *file, char __user *ubuf,
				  size_t len, loff_t *ppos)
{
	struct pvb_balloon *b = file_inode(file)->i_private;
	char buf[3] = { READ_ONCE(b->migration) ? '1' : '0', '\n', 0 };

	return simple_read_from_buffer(ubuf, len, ppos, buf, 2);
}

/* MiB/s of @pages moved in @ns nanoseconds. */
static u64 pvb_mib_s(u64 pages, u64 ns)
{
	if (!ns)
		return 0;
	return div64_u64(pages * NSEC_PER_SEC, ns) >> (20 - PAGE_SHIFT);
}

static int pvb_stats_show(struct seq_file *m, void *v)
{
	struct pvb_balloon *b = m->private;
	struct pvb_stats *s = &b->stats;
	unsigned long listed, isolated;
	u64 ip = atomic64_read(&s->last_inflate_pages);
	u64 in = atomic64_read(&s->last_inflate_ns);
	u64 dp = atomic64_read(&s->last_deflate_pages);
	u64 dn = atomic64_read(&s->last_deflate_ns);

	/* One lock round trip: current == listed + isolated, always. */
	pvb_mig_counts(&b->mig, &listed, &isolated);
	seq_printf(m, "current: %lu\n", listed + isolated);
	seq_printf(m, "target: %lu\n", READ_ONCE(b->target));
	seq_printf(m, "listed: %lu\n", listed);
	seq_printf(m, "isolated: %lu\n", isolated);
	seq_printf(m, "inflated: %lu\n", atomic_long_read(&s->inflated));
	seq_printf(m, "deflated: %lu\n", atomic_long_read(&s->deflated));
	seq_printf(m, "migrated: %lu\n", atomic_long_read(&s->migrated));
	seq_printf(m, "migrate_eagain: %lu\n",
		   atomic_long_read(&s->migrate_eagain));
	seq_printf(m, "isolate_refused: %lu\n",
		   pvb_mig_isolate_refused(&b->mig));
	seq_printf(m, "alloc_failed: %lu\n", atomic_long_read(&s->alloc_failed));
	seq_printf(m, "reserve_stops: %lu\n",
		   atomic_long_read(&s->reserve_stops));
	seq_printf(m, "reserve: %lu\n", b->reserve);
	seq_printf(m, "huge_blocks: %lu\n", atomic_long_read(&s->huge_blocks));
	seq_printf(m, "last_inflate_pages: %llu\n", ip);
	seq_printf(m, "last_inflate_us: %llu\n", div_u64(in, NSEC_PER_USEC));
	seq_printf(m, "last_inflate_mib_s: %llu\n", pvb_mib_s(ip, in));
	seq_printf(m, "last_deflate_pages: %llu\n", dp);
	seq_printf(m, "last_deflate_us: %llu\n", div_u64(dn, NSEC_PER_USEC));
	seq_printf(m, "last_deflate_mib_s: %llu\n", pvb_mib_s(dp, dn));
	seq_printf(m, "backend: %s\n", pvb_mig_backend_name);
	seq_printf(m, "movable: %d\n", b->movable);
	seq_printf(m, "migration: %d\n", READ_ONCE(b->migration));
	/*
	 * The mode in force: a virtio host with DEFLATE_ON_OOM turns it off
	 * whatever the parameter says (as in-tree), and it switches only while
	 * the balloon is empty.
	 */
	seq_printf(m, "adjust_memtotal: %d\n", pvb_mig_adjust_managed(&b->mig));
	pvb_frontend_show(b, m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(pvb_stats);

static int pvb_verify_show(struct seq_file *m, void *v)
{
	struct pvb_balloon *b = m->private;
	struct pvb_mig_check c;

	pvb_mig_verify(&b->mig, &c);
	seq_printf(m, "walked: %lu\n", c.walked);
	seq_printf(m, "listed: %lu\n", c.listed);
	seq_printf(m, "isolated: %lu\n", c.isolated);
	seq_printf(m, "bad: %lu\n", c.bad);
	seq_printf(m, "breaks: %lu\n", c.breaks);
	seq_printf(m, "restarts: %lu\n", c.restarts);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(pvb_verify);

static const struct file_operations pvb_inflate_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = pvb_inflate_write,
	.llseek = noop_llseek,
};

static const struct file_operations pvb_deflate_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = pvb_deflate_write,
	.llseek = noop_llseek,
};

static const struct file_operations pvb_target_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = pvb_target_read,
	.write = pvb_target_write,
	.llseek = default_llseek,
};

static const struct file_operations pvb_migration_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = pvb_migration_read,
	.write = pvb_migration_write,
	.llseek = default_llseek,
};

int pvb_debugfs_init(struct pvb_balloon *b)
{
	pvb_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	if (IS_ERR(pvb_dir))
		return PTR_ERR(pvb_dir);
	debugfs_create_file("inflate", 0200, pvb_dir, b, &pvb_inflate_fops);
	debugfs_create_file("deflate", 0200, pvb_dir, b, &pvb_deflate_fops);
	debugfs_create_file("target", 0600, pvb_dir, b, &pvb_target_fops);
	debugfs_create_file("migration", 0600, pvb_dir, b,
			    &pvb_migration_fops);
	debugfs_create_file("stats", 0400, pvb_dir, b, &pvb_stats_fops);
	debugfs_create_file("verify", 0400, pvb_dir, b, &pvb_verify_fops);
	return 0;
}

void pvb_debugfs_exit(void)
{
	debugfs_remove_recursive(pvb_dir);
	pvb_dir = NULL;
}
