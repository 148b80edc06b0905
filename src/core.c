// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon core: sizes and targets, statistics, the balloon's life.
 *
 * The list, the balloon lock and the kernel-visible accounting belong to the
 * migration backend (pvb_migrate.h); the core decides how many pages move
 * and when (this file), moves them (core_pages.c), and asks the front-end
 * attached (core_frontend.c) to tell the host.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>

#include "pvb_core.h"
#include "pvb_core_pages.h"

struct pvb_balloon pvb_the_balloon;

static struct pvb_balloon *pvb_from_mig(struct pvb_mig *m)
{
	return container_of(m, struct pvb_balloon, mig);
}

static int pvb_hook_migrate(struct pvb_mig *m, struct page *newpage,
			    struct page *oldpage, enum migrate_mode mode)
{
	struct pvb_balloon *b = pvb_from_mig(m);
	int rc = 0;

	/* A front-end being attached or detached: try again later. */
	if (!down_read_trylock(&b->fe_sem)) {
		rc = -EAGAIN;
	} else {
		if (b->fe && b->fe->migrate)
			rc = b->fe->migrate(b, newpage, oldpage, mode);
		up_read(&b->fe_sem);
	}
	if (rc == -EAGAIN)
		atomic_long_inc(&b->stats.migrate_eagain);
	return rc;
}

static void pvb_hook_migrated(struct pvb_mig *m, struct page *newpage,
			      struct page *oldpage)
{
	atomic_long_inc(&pvb_from_mig(m)->stats.migrated);
}

static const struct pvb_mig_hooks pvb_hooks = {
	.migrate = pvb_hook_migrate,
	.migrated = pvb_hook_migrated,
};

/**
 * pvb_pages - pages in the balloon: on the list plus isolated by compaction
 * @b: the balloon
 *
 * Return: the number of pages.
 */
unsigned long pvb_pages(struct pvb_balloon *b)
{
	unsigned long listed, isolated;

	pvb_mig_counts(&b->mig, &listed, &isolated);
	return listed + isolated;
}

/*
 * Caller holds op_lock and fe_sem for reading.  The end of a resize: wait
 * for the host to acknowledge what is in flight, then let the front-end
 * publish the new size.  Returns the resize's result.
 */
static int pvb_fe_finish(struct pvb_balloon *b, int rc, unsigned long done)
{
	lockdep_assert_held(&b->op_lock);
	lockdep_assert_held_read(&b->fe_sem);
	if (!b->fe)
		return rc;
	if (b->fe->flush) {
		int err = b->fe->flush(b);

		if (!rc)
			rc = err;
	}
	if (done && b->fe->changed)
		b->fe->changed(b);
	return rc;
}

/*
 * One round of a convergence: at most 128 MiB, so that between rounds the
 * host hears the size so far and op_lock is let go - an OOM notification
 * waits for one round, not a whole multi-GiB resize (as the in-tree driver
 * works in rounds of VIRTIO_BALLOON_ARRAY_PFNS_MAX pages).  A multiple of
 * PVB_BATCH_PAGES: rounds do not cut 2 MiB blocks in two.  128 rather than
 * 16 MiB because each round ends waiting for the host to acknowledge
 * everything in flight.
 */
#define PVB_ROUND_PAGES		(8 * PVB_BATCH_PAGES)

/**
 * pvb_target_coming - a new target is on its way
 * @b: the balloon
 *
 * A convergence in progress stops at the end of its round (-EAGAIN) and
 * leaves the balloon to the newer target: the last writer wins at once,
 * not after the whole of the older request.  Any context, no locks: the
 * virtio front-end calls it from its config-change interrupt.  Fully
 * ordered (atomic_inc_return()): a flag stored before it is seen by
 * whoever announces a target after it (pvb_size_work()).
 *
 * Return: the generation of the announcement, for pvb_set_target_from().
 */
int pvb_target_coming(struct pvb_balloon *b)
{
	return atomic_inc_return(&b->target_gen);
}

/**
 * pvb_converge - move the balloon to b->target, round by round
 * @b: the balloon; caller holds op_lock (it is let go between rounds)
 * @gen: b->target_gen when this target was announced
 * @yield: let op_lock go between rounds and give way to a newer target;
 *	false for attach, detach and unload, which must finish as one
 * @moved: if not NULL, pages inflated or deflated
 *
 * Each round ends with the front-end's flush and size report, so the
 * host's view (virtio actual) follows the balloon as it goes.
 *
 * Return: 0 at the target; -EAGAIN when a newer target or an OOM
 * notification took over between rounds (the pages moved stay); else the
 * error that stopped a round, with the target set to what was reached.
 */
static int pvb_converge(struct pvb_balloon *b, int gen, bool yield,
			unsigned long *moved)
{
	unsigned long done = 0;
	int rc = 0;

	lockdep_assert_held(&b->op_lock);
	for (;;) {
		unsigned long cur, step = 0;

		down_read(&b->fe_sem);
		cur = pvb_pages(b);
		if (b->target > cur)
			rc = pvb_do_inflate(b, min(b->target - cur, PVB_ROUND_PAGES),
					    &step);
		else if (b->target < cur)
			rc = pvb_do_deflate(b, min(cur - b->target, PVB_ROUND_PAGES),
					    &step, true);
		rc = pvb_fe_finish(b, rc, step);
		if (rc)
			b->target = pvb_pages(b);
		up_read(&b->fe_sem);
		done += step;
		if (rc || !step || b->target == pvb_pages(b))
			break;
		if (!yield) {
			cond_resched();
			continue;
		}
		mutex_unlock(&b->op_lock);
		cond_resched();
		mutex_lock(&b->op_lock);
		if (atomic_read(&b->target_gen) != gen) {
			rc = -EAGAIN;
			break;
		}
	}
	if (moved)
		*moved = done;
	return rc;
}

/* Caller holds op_lock.  A new target, and the convergence to it. */
static int pvb_retarget(struct pvb_balloon *b, unsigned long target, int gen,
			bool yield, unsigned long *moved)
{
	lockdep_assert_held(&b->op_lock);
	b->target = target;
	b->target_seq++;
	return pvb_converge(b, gen, yield, moved);
}

/**
 * pvb_set_target - move the balloon to @target pages and wait until it is
 * @b: the balloon
 * @target: pages the balloon should hold
 * @moved: if not NULL, pages inflated or deflated
 *
 * Whoever writes the target last wins: the host through a front-end, or
 * the guest through debugfs.  When the target cannot be met the balloon
 * keeps what it has and the target is set to that.
 *
 * Return: 0 on success; -ENOMEM when the allocator ran dry first; -EINTR
 * on a fatal signal; -EAGAIN when a newer target took over (all keep the
 * pages moved so far); another error from the front-end.
 */
int pvb_set_target(struct pvb_balloon *b, unsigned long target,
		   unsigned long *moved)
{
	return pvb_set_target_from(b, target, pvb_target_coming(b), moved);
}

/**
 * pvb_set_target_from - pvb_set_target() of a target announced earlier
 * @b: the balloon
 * @target: pages the balloon should hold
 * @gen: what pvb_target_coming() returned for it
 * @moved: if not NULL, pages inflated or deflated
 *
 * Anything announced after @gen ends this resize at its round's end.
 *
 * Return: as pvb_set_target().
 */
int pvb_set_target_from(struct pvb_balloon *b, unsigned long target, int gen,
			unsigned long *moved)
{
	int rc;

	if (moved)
		*moved = 0;
	if (mutex_lock_killable(&b->op_lock))
		return -EINTR;
	rc = pvb_retarget(b, target, gen, true, moved);
	mutex_unlock(&b->op_lock);
	return rc;
}

/**
 * pvb_resize - grow (@delta > 0) or shrink (@delta < 0) the balloon
 * @b: the balloon
 * @delta: pages
 * @moved: if not NULL, pages inflated or deflated
 *
 * Return: as pvb_set_target(), and -EINVAL, with nothing changed, when
 * asked to deflate more than the balloon holds.
 */
int pvb_resize(struct pvb_balloon *b, long delta, unsigned long *moved)
{
	unsigned long cur;
	int gen, rc;

	if (moved)
		*moved = 0;
	/* Bad input must not end a resize in progress (the host's target). */
	if (delta < 0 && (unsigned long)-delta > pvb_pages(b))
		return -EINVAL;
	gen = pvb_target_coming(b);
	if (mutex_lock_killable(&b->op_lock))
		return -EINTR;
	cur = pvb_pages(b);
	if (delta < 0 && (unsigned long)-delta > cur) {
		mutex_unlock(&b->op_lock);
		return -EINVAL;
	}
	rc = pvb_retarget(b, cur + delta, gen, true, moved);
	mutex_unlock(&b->op_lock);
	return rc;
}

void pvb_set_migration(struct pvb_balloon *b, bool on)
{
	WRITE_ONCE(b->migration, on);
	pvb_mig_set_isolation(&b->mig, on && b->movable);
}

/**
 * pvb_shrink - give back up to @n pages now, for memory pressure
 * @b: the balloon
 * @n: pages wanted back
 * @done: pages given back
 *
 * For an OOM notifier: not killable, and the target follows the balloon
 * down, so nobody inflates straight back into the pressure.
 *
 * Return: 0, or the front-end's error telling the host (the pages are
 * given back to the guest all the same).
 */
int pvb_shrink(struct pvb_balloon *b, unsigned long n, unsigned long *done)
{
	int rc;

	/* A resize in progress gives way at the end of its round. */
	pvb_target_coming(b);
	mutex_lock(&b->op_lock);
	down_read(&b->fe_sem);
	rc = pvb_do_deflate(b, min(n, pvb_pages(b)), done, false);
	rc = pvb_fe_finish(b, rc, *done);
	b->target = pvb_pages(b);
	b->target_seq++;
	up_read(&b->fe_sem);
	mutex_unlock(&b->op_lock);
	return rc;
}

/* Caller holds op_lock.  Empty the balloon with whatever front-end is on. */
void pvb_empty(struct pvb_balloon *b)
{
	lockdep_assert_held(&b->op_lock);
	/* A resize waiting between rounds must not carry on after this. */
	pvb_retarget(b, 0, pvb_target_coming(b), false, NULL);
}

/**
 * pvb_balloon_init - set up an empty balloon
 * @b: the balloon
 * @movable: allocate movable pages and let compaction migrate them
 * @adjust_memtotal: MemTotal follows the balloon
 * @reserve: pages of MemAvailable that inflation never takes
 * @huge: inflate whole free 2 MiB blocks first
 * @huge_keep: pages of free 2 MiB blocks the balloon leaves to the guest
 */
void pvb_balloon_init(struct pvb_balloon *b, bool movable,
		      bool adjust_memtotal, unsigned long reserve, bool huge,
		      unsigned long huge_keep)
{
	memset(b, 0, sizeof(*b));
	mutex_init(&b->op_lock);
	atomic_set(&b->target_gen, 0);
	init_rwsem(&b->fe_sem);
	b->movable = movable;
	b->adjust_memtotal = adjust_memtotal;
	b->reserve = reserve;
	b->gfp = (movable ? GFP_HIGHUSER_MOVABLE : GFP_HIGHUSER) |
		 __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN;
	b->gfp_huge = b->gfp & ~__GFP_RECLAIM;
	b->huge = huge;
	b->huge_keep = huge_keep;
	pvb_mig_init(&b->mig, &pvb_hooks, movable, adjust_memtotal);
	pvb_set_migration(b, true);
}

/**
 * pvb_balloon_destroy - give every page back; for module unload
 * @b: the balloon, with no front-end attached
 *
 * Waits for compaction to return isolated pages first, so that no page
 * keeps pointing at this module's code, and at the end for migration
 * callbacks still on their way out of it.
 */
void pvb_balloon_destroy(struct pvb_balloon *b)
{
	unsigned long done = 0, left;

	mutex_lock(&b->op_lock);
	pvb_mig_drain(&b->mig);
	left = pvb_pages(b);
	if (left) {
		down_read(&b->fe_sem);
		pvb_do_deflate(b, left, &done, false);
		pvb_fe_finish(b, 0, done);
		up_read(&b->fe_sem);
		pr_info("unload: returned %lu pages (%lu MiB) to the guest\n",
			done, done >> (20 - PAGE_SHIFT));
	}
	b->target = 0;
	WARN(pvb_pages(b), "unload: %lu pages still in the balloon\n",
	     pvb_pages(b));
	mutex_unlock(&b->op_lock);
	pvb_mig_quiesce(&b->mig);
}
