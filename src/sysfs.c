// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon sysfs interface, /sys/kernel/pvballoon/ (root only):
 *
 *   inflate    (w)  grow the balloon: "<pages>" or "<size>K|M|G"
 *   deflate    (w)  shrink it the same way, or "all"
 *   target     (rw) the desired size in pages; writing converges
 *   current    (r)  pages in the balloon
 *
 * The same requests, with the same parser, as the debugfs files of those
 * names (control.c).  Why both: under kernel lockdown (Secure Boot, or
 * lockdown=integrity) the kernel refuses writes to every debugfs file,
 * while sysfs keeps working.  Counters and the rest stay in debugfs, whose
 * read-only stats file lockdown still allows.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kobject.h>
#include <linux/sysfs.h>

#include "pvb_control.h"
#include "pvb_core.h"
#include "pvb_sysfs.h"

static struct kobject *pvb_kobj;
static struct pvb_balloon *pvb_sysfs_balloon;

static ssize_t inflate_store(struct kobject *kobj, struct kobj_attribute *attr,
			     const char *buf, size_t len)
{
	return pvb_ctl_resize(pvb_sysfs_balloon, buf, len, 1);
}

static ssize_t deflate_store(struct kobject *kobj, struct kobj_attribute *attr,
			     const char *buf, size_t len)
{
	return pvb_ctl_resize(pvb_sysfs_balloon, buf, len, -1);
}

static ssize_t target_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%lu\n", READ_ONCE(pvb_sysfs_balloon->target));
}

static ssize_t target_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t len)
{
	return pvb_ctl_target(pvb_sysfs_balloon, buf, len);
}

static ssize_t pvb_current_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", pvb_pages(pvb_sysfs_balloon));
}

static struct kobj_attribute pvb_attr_inflate = __ATTR_WO(inflate);
static struct kobj_attribute pvb_attr_deflate = __ATTR_WO(deflate);
static struct kobj_attribute pvb_attr_target = __ATTR(target, 0600, target_show, target_store);
/* Spelt out: "current" is a macro (get_current()) that __ATTR_RO would expand. */
static struct kobj_attribute pvb_attr_current = {
	.attr = { .name = "current", .mode = 0444 },
	.show = pvb_current_show,
};

static struct attribute *pvb_attrs[] = {
	&pvb_attr_inflate.attr,
	&pvb_attr_deflate.attr,
	&pvb_attr_target.attr,
	&pvb_attr_current.attr,
	NULL,
};

static const struct attribute_group pvb_attr_group = {
	.attrs = pvb_attrs,
};

/**
 * pvb_sysfs_init - create /sys/kernel/pvballoon/
 * @b: the balloon its files control
 *
 * Return: 0, or -ENOMEM or the error sysfs gave.
 */
int pvb_sysfs_init(struct pvb_balloon *b)
{
	int rc;

	pvb_sysfs_balloon = b;
	pvb_kobj = kobject_create_and_add(KBUILD_MODNAME, kernel_kobj);
	if (!pvb_kobj)
		return -ENOMEM;
	rc = sysfs_create_group(pvb_kobj, &pvb_attr_group);
	if (rc) {
		kobject_put(pvb_kobj);
		pvb_kobj = NULL;
	}
	return rc;
}

void pvb_sysfs_exit(void)
{
	if (!pvb_kobj)
		return;
	sysfs_remove_group(pvb_kobj, &pvb_attr_group);
	kobject_put(pvb_kobj);
	pvb_kobj = NULL;
}
