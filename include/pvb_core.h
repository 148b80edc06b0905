/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pvballoon core: the balloon itself - its pages, its lock, its accounting.
 *
 * Front-ends (debugfs, virtio) call down into the core; the core calls down
 * into one migration backend (pvb_migrate.h) and the compat layer.  Nothing
 * in the core knows about virtio: a front-end that wants a host to hear
 * about the balloon attaches a struct pvb_frontend_ops.
 */

/**
 * DOC: Locking
 *
 * The locks of the module, outermost first.  Each is taken only after the
 * ones above it; functions that need one held assert it with
 * lockdep_assert_held(), which the debug-kernel target (PROVE_LOCKING)
 * checks.
 *
 * pvb_balloon.op_lock (mutex)
 *	One resize at a time: inflate, deflate, target (user writes take it
 *	killable), the OOM notifier's pvb_shrink(), front-end attach/detach,
 *	unload.  Process context only.  A resize holds it for one round of
 *	at most 128 MiB (pvb_converge()), across the host's acknowledgements,
 *	and lets it go between rounds; a newer target or an OOM notification
 *	announced meanwhile (@target_gen) ends it there.  So an OOM
 *	notification waits for one round, as the in-tree driver's waits for
 *	its balloon_lock; a resize's allocations are __GFP_NORETRY and never
 *	call the OOM killer, so that wait ends.
 *
 * pvb_balloon.fe_sem (rw_semaphore)
 *	@fe, @fe_priv and @no_fe_show.  Read-held for a whole resize (under
 *	op_lock) and while the stats file prints; write-held to attach or
 *	detach a front-end (under op_lock) and to set @no_fe_show.  Page
 *	migration runs inside compaction, possibly inside our own inflate's
 *	allocations, so it only tries: down_read_trylock(), else -EAGAIN.
 *
 * pvb_virtio.lock (mutex, pvb_virtio_dev.h)
 *	The inflate and deflate queues and their buffers (busy flags, the
 *	pages held until the host acknowledges), broken and dead.  Taken by
 *	the front-end operations (under op_lock and fe_sem), by the deflate
 *	reap work, by the reset of removal, freeze and recovery (no other
 *	lock held), by a page report that declares its host broken, and by
 *	migration with mutex_trylock() only: an inflate holding it may be
 *	what started the compaction.
 *
 * pvb_virtio.stop_lock (spinlock, irq-safe; a leaf)
 *	The stop, no_recover, sleeping, size_pending, report_stop,
 *	report_busy and range_busy flags, so that interrupts (config change,
 *	stats request), the PM notifier and a host found broken queue no work
 *	after removal or freeze began, so that a reset waits for a page
 *	report to let go of its queue, and so that page reports and range
 *	discards take turns on the reporting queue.
 *
 * The balloon lock (innermost; a leaf)
 *	The page list and page->private: pvb_lock in migrate_mops.c (an
 *	irq-safe spinlock, taken by compaction's isolate and putback), or the
 *	kernel's balloon_dev_info.pages_lock on the kernel_balloon backend.
 *	The design of upstream commit 7867015d1d38 ("stop using the page lock
 *	in balloon code and instead use only the balloon_device_lock", its
 *	opening line): one lock for the list and page->private, and no page
 *	lock in our own synchronisation.
 *
 * Free page reporting takes only stop_lock, and pvb_virtio.lock to declare
 * its host broken: the kernel sends one batch at a time.  Its queue is
 * shared with range discards (virtio_range.c), which use it under
 * pvb_virtio.lock: report_busy and range_busy (under stop_lock) say whose
 * it is, and neither takes it while the other has it.
 */
#ifndef PVB_CORE_H
#define PVB_CORE_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/migrate_mode.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/rwsem.h>
#include <linux/types.h>

#include "pvb_migrate.h"

struct page;
struct pvb_balloon;
struct seq_file;

/*
 * Pages handled per allocation round and lock round trip, and handed to
 * the front-end at once: 16 MiB, eight whole 2 MiB blocks.  A multiple of
 * PVB_HUGE_PAGES, so that with QEMU's buffers of this size a block never
 * straddles two host buffers (a hugetlbfs-backed QEMU frees a huge page
 * only when all its sub-pages arrive in one buffer).
 */
#define PVB_BATCH_PAGES		4096
#define PVB_HUGE_ORDER		9
#define PVB_HUGE_PAGES		(1UL << PVB_HUGE_ORDER)

/**
 * struct pvb_frontend_ops - how a front-end (a host) hears about the balloon
 * @inflate: @n pages on @pages (linked through page->lru, not yet in the
 *	balloon, so nothing else can see them) are about to enter the balloon.
 *	Tell the host.  May sleep.  A non-zero return aborts: the pages the
 *	host was told of stay on @pages and enter the balloon (the host may
 *	discard them), the others are moved to @unsent, which the core gives
 *	back to the allocator.
 * @deflate: @n pages on @pages have left the balloon.  Return 0 once the
 *	host is told - or once it will be: the front-end may take pages off
 *	@pages and free them itself (pvb_put_page_list()) when the host
 *	acknowledged.  The core frees what is left on @pages.  May sleep.
 *	On error the pages left on @pages were not sent, and the core puts
 *	them back into the balloon.
 * @migrate: @newpage replaces the isolated @oldpage.  Tell the host, so
 *	that it never discards a page the guest uses.  Return 0, or -EAGAIN
 *	when the host cannot be told now.  Must not sleep for %MIGRATE_ASYNC.
 * @flush: wait until the host acknowledged everything sent so far; called
 *	at the end of every round of a resize (at most 128 MiB).  May sleep.
 *	An error is the resize's.
 * @changed: the balloon size changed (for example to update a host's view).
 *	Called after @flush, at the end of every round, under op_lock; may
 *	sleep.
 * @show: optional; print "key: value" lines of the front-end's own state
 *	into the stats file.  Called with @fe_sem held for reading.
 * @oom_floor: optional; the pages of the balloon the guest must keep when
 *	it runs out of memory (a host's target it may not go below), read by
 *	the core's OOM notifier (core_oom.c), which gives back what is above
 *	it; %ULONG_MAX when the front-end answers OOM itself.  Called with
 *	@fe_sem held for reading; may sleep.  NULL: %ULONG_MAX.
 *
 * @inflate may also return before the host acknowledged (several buffers
 * in flight): the pages then enter the balloon at once.  The front-end
 * must make sure that a deflate or migration of such a page reaches the
 * host only after its inflate was acknowledged.
 */
struct pvb_frontend_ops {
	int (*inflate)(struct pvb_balloon *b, struct list_head *pages,
		       unsigned long n, struct list_head *unsent);
	int (*deflate)(struct pvb_balloon *b, struct list_head *pages,
		       unsigned long n);
	int (*migrate)(struct pvb_balloon *b, struct page *newpage,
		       struct page *oldpage, enum migrate_mode mode);
	int (*flush)(struct pvb_balloon *b);
	void (*changed)(struct pvb_balloon *b);
	void (*show)(struct pvb_balloon *b, struct seq_file *m);
	unsigned long (*oom_floor)(struct pvb_balloon *b);
};

/* Totals since load.  Updated with atomics: readers never need a lock. */
struct pvb_stats {
	atomic_long_t inflated;
	atomic_long_t deflated;
	atomic_long_t migrated;
	atomic_long_t migrate_eagain;	/* migrations refused with -EAGAIN */
	atomic_long_t alloc_failed;	/* allocations that returned NULL */
	atomic_long_t reserve_stops;	/* inflates stopped at the reserve */
	atomic_long_t huge_blocks;	/* 2 MiB blocks inflated whole */
	/* Last completed inflate/deflate: pages and nanoseconds. */
	atomic64_t last_inflate_pages, last_inflate_ns;
	atomic64_t last_deflate_pages, last_deflate_ns;
};

/**
 * struct pvb_balloon - one balloon
 * @mig: migration backend state; it owns the page list and the balloon
 *	lock (see pvb_migrate.h)
 * @op_lock: serialises inflate, deflate and target changes - the long
 *	operations.  Never taken by migration.
 * @target: pages the balloon should hold; written under @op_lock
 * @target_seq: bumped by every target change, so a front-end can tell
 *	whether someone wrote the target after it did
 * @target_gen: bumped before a new target or an OOM shrink waits for
 *	@op_lock (pvb_target_coming()): a resize in progress gives way to
 *	it at the end of its round
 * @gfp: allocation flags of ballooned pages
 * @gfp_huge: the same for whole 2 MiB blocks, which are taken only when
 *	free: no reclaim, no compaction, no kswapd
 * @huge: inflate whole free 2 MiB blocks first (module parameter)
 * @huge_keep: pages of free 2 MiB blocks left to the guest's own huge pages
 * @movable: pages are movable (registered with the migration backend)
 * @migration: 0 makes isolation refuse our pages (a test control)
 * @adjust_memtotal: MemTotal follows the balloon
 * @reserve: inflation stops when MemAvailable would fall below this many
 *	pages, so that a balloon never leaves the guest to the OOM killer
 * @stats: the counters of the stats file and /proc/vmstat's balloon lines
 * @fe_sem: protects @fe and @fe_priv; migration only try-locks it
 * @fe: the attached front-end's operations, or NULL
 * @fe_priv: the attached front-end's data
 * @no_fe_show: with no front-end attached, says why in the stats file (the
 *	virtio front-end sets it: no device, or a device another driver holds)
 * @oom_nb: the core's OOM notifier (core_oom.c)
 */
struct pvb_balloon {
	struct pvb_mig mig;
	struct mutex op_lock;
	unsigned long target;
	unsigned long target_seq;
	atomic_t target_gen;
	gfp_t gfp;
	gfp_t gfp_huge;
	bool huge;
	unsigned long huge_keep;
	bool movable;
	bool migration;
	bool adjust_memtotal;
	unsigned long reserve;
	struct pvb_stats stats;
	struct rw_semaphore fe_sem;
	const struct pvb_frontend_ops *fe;
	void *fe_priv;
	void (*no_fe_show)(struct seq_file *m);
	struct notifier_block oom_nb;
};

void pvb_balloon_init(struct pvb_balloon *b, bool movable, bool adjust_memtotal,
		      unsigned long reserve, bool huge, unsigned long huge_keep);
void pvb_balloon_destroy(struct pvb_balloon *b);

int pvb_resize(struct pvb_balloon *b, long delta, unsigned long *moved);
int pvb_set_target(struct pvb_balloon *b, unsigned long target,
		   unsigned long *moved);
int pvb_set_target_from(struct pvb_balloon *b, unsigned long target, int gen,
			unsigned long *moved);
int pvb_target_coming(struct pvb_balloon *b);

unsigned long pvb_pages(struct pvb_balloon *b);
unsigned long pvb_put_page_list(struct list_head *pages);
void pvb_set_migration(struct pvb_balloon *b, bool on);

int pvb_shrink(struct pvb_balloon *b, unsigned long n, unsigned long *done);
int pvb_core_oom_init(struct pvb_balloon *b);
void pvb_core_oom_exit(struct pvb_balloon *b);

int pvb_frontend_attach(struct pvb_balloon *b,
			const struct pvb_frontend_ops *ops, void *priv,
			bool adjust_memtotal);
void pvb_frontend_detach(struct pvb_balloon *b);
void pvb_frontend_show(struct pvb_balloon *b, struct seq_file *m);

/* The one balloon of this module. */
extern struct pvb_balloon pvb_the_balloon;

#endif /* PVB_CORE_H */
