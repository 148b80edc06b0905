/* SPDX-License-Identifier: GPL-2.0 */
/* pvballoon debugfs interface: /sys/kernel/debug/pvballoon/ */
#ifndef PVB_DEBUGFS_H
#define PVB_DEBUGFS_H

#include <linux/types.h>

struct pvb_balloon;

int pvb_debugfs_init(struct pvb_balloon *b);
void pvb_debugfs_exit(void);

#endif /* PVB_DEBUGFS_H */
