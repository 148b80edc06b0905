/* SPDX-License-Identifier: GPL-2.0 */
/* pvballoon sysfs interface: /sys/kernel/pvballoon/ (sysfs.c) */
#ifndef PVB_SYSFS_H
#define PVB_SYSFS_H

struct pvb_balloon;

int pvb_sysfs_init(struct pvb_balloon *b);
void pvb_sysfs_exit(void);

#endif /* PVB_SYSFS_H */
