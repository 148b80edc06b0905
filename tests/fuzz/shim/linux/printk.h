/* SPDX-License-Identifier: GPL-2.0 */
#ifndef PVB_FUZZ_LINUX_PRINTK_H
#define PVB_FUZZ_LINUX_PRINTK_H
#include <stdio.h>
#define KBUILD_MODNAME "pvballoon"
/* Formatted for real (catches format/argument mismatches under ASan), then dropped. */
#define pr_warn_ratelimited(fmt, ...) do {				\
		char __buf[512];					\
		snprintf(__buf, sizeof(__buf), pr_fmt(fmt), ##__VA_ARGS__); \
	} while (0)
#define pr_info_ratelimited(fmt, ...) pr_warn_ratelimited(fmt, ##__VA_ARGS__)
#endif
