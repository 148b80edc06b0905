/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pvballoon core, inside: what core.c asks of core_pages.c, and what
 * core_frontend.c asks of core.c.
 */
#ifndef PVB_CORE_PAGES_H
#define PVB_CORE_PAGES_H

#include "pvb_core.h"

/**
 * pvb_do_inflate - allocate @n pages into the balloon, telling the host
 * @b: the balloon; caller holds op_lock and fe_sem for reading
 * @n: pages wanted
 * @done: pages that entered the balloon
 *
 * Return: 0, -ENOMEM when the guest had no more to spare, -EINTR on a
 * fatal signal, or the front-end's error (what it sent stays ballooned).
 */
int pvb_do_inflate(struct pvb_balloon *b, unsigned long n,
		   unsigned long *done);

/**
 * pvb_do_deflate - give @n pages of the balloon back to the guest
 * @b: the balloon; caller holds op_lock and fe_sem for reading
 * @n: pages wanted
 * @done: pages given back
 * @killable: a user's request: stop on a fatal signal, and give up with
 *	-EBUSY on pages compaction holds too long
 *
 * Return: 0, -ENOENT when the balloon ran empty, -EINTR, -EBUSY, or the
 * front-end's error (the pages it was not told of stay ballooned).
 */
int pvb_do_deflate(struct pvb_balloon *b, unsigned long n,
		   unsigned long *done, bool killable);

/* core.c: empty the balloon, op_lock held, whatever front-end is on. */
void pvb_empty(struct pvb_balloon *b);

#endif /* PVB_CORE_PAGES_H */
