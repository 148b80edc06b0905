// SPDX-License-Identifier: GPL-2.0
/*
 * PVB_CONFTEST_SANITY: the probe machinery itself works against this
 * kernel tree.  If this one fails, every other answer is meaningless and
 * conftest.sh stops the build.
 */
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/vmstat.h>

unsigned long pvb_probe(void);
unsigned long pvb_probe(void)
{
	return totalram_pages();
}
