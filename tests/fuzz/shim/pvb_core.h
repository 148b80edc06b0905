/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The part of the balloon core src/control.c calls, played by the fuzz
 * target (fuzz_control.c): it records each request instead of moving pages.
 */
#ifndef PVB_FUZZ_CORE_H
#define PVB_FUZZ_CORE_H
#include <linux/types.h>

struct pvb_balloon {
	unsigned long pages;	/* the balloon's size */
	int calls;		/* requests that reached the core */
	long last_delta;	/* pvb_resize()'s */
	unsigned long last_target;	/* pvb_set_target()'s */
	int fail;		/* the error the core answers with, or 0 */
};

unsigned long pvb_pages(struct pvb_balloon *b);
int pvb_resize(struct pvb_balloon *b, long delta, unsigned long *moved);
int pvb_set_target(struct pvb_balloon *b, unsigned long target,
		   unsigned long *moved);
#endif
