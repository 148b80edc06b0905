/* SPDX-License-Identifier: GPL-2.0 */
/* pvballoon control writes, shared by debugfs.c and sysfs.c (control.c). */
#ifndef PVB_CONTROL_H
#define PVB_CONTROL_H

#include <linux/types.h>

struct pvb_balloon;

/* Longest accepted write: "18446744073709551615G\n" and then some. */
#define PVB_WRITE_MAX	32

int pvb_parse_pages(const char *buf, size_t len, unsigned long *pages,
		    bool allow_all, bool *all);
ssize_t pvb_ctl_resize(struct pvb_balloon *b, const char *buf, size_t len,
		       int sign);
ssize_t pvb_ctl_target(struct pvb_balloon *b, const char *buf, size_t len);

#endif /* PVB_CONTROL_H */
