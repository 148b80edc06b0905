/* SPDX-License-Identifier: GPL-2.0 */
#ifndef PVB_FUZZ_LINUX_MM_H
#define PVB_FUZZ_LINUX_MM_H
#include <linux/types.h>
#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#endif
