# SPDX-License-Identifier: GPL-2.0
"""Fragmentation scenario: a small balloon that pins a page in every 2 MiB
block, then a request for huge pages across all free memory.

One vCPU, so the holes the helper frees land on the free lists the balloon
allocates from.  Variants, each on a fresh guest:
  pvballoon            4 KiB pages only (huge_blocks=0), so that the balloon
                       pins the holes and compaction must move it
  pvballoon_nomig      the same allocation, isolation refused: the control
  virtio_balloon       the in-tree driver, inflated through QMP
  pvballoon_blocks     the defaults (whole free 2 MiB blocks from the
                       guest's surplus first): must do no worse than in-tree
  pvballoon_unmovable  movable=0 (6.12 only, for the figures; make check-long)

On the kernel_balloon backend (7.x) the kernel isolates every balloon page
itself and only our migrate callback can refuse: the control's huge-page
request then takes 110-150 s of failed migrations (15 s on 6.x).  There
make check runs a short control - one compaction pass must move nothing and
must have asked us - and the full one waits for make check-long.

Distribution kernels only in make check: a comparison of placements, which
the debug kernel makes ten times slower and no more telling.  And of those,
6.12 (movable_operations, as on 6.1) and 7.2 (kernel_balloon): 6.1's run
took 129 s of a warm make check and its migration path is 6.12's; 6.1's
migration is still checked by virtio_plain's compaction step and stress,
and tests/run --long compares on 6.1 too.  The debug
kernel watches migration in test_stress.py and in virtio_plain's
compaction step; tests/run --long runs this on it too.
"""
import statistics
import time

from harness.errors import TestFailure
from harness.runner import test
from harness.vocab import DEBUGFS as D, GIB, PAGE



def scenario(ctx, variant, short_control=False):
    intree = variant == "virtio_balloon"
    # A balloon device for the drivers that users run with one: pvballoon
    # then tells the host of each migration (virtio_ops.c), as the in-tree
    # driver does, and compaction meets the front-end's refusals too.  The
    # migration=0 and movable=0 controls need no host.
    host = not variant.endswith(("nomig", "unmovable"))
    vm = ctx.vm(variant, intree=intree, mem="1G", smp=1, balloon={} if host else None)
    with vm:
        if intree:
            vm.sh("insmod /modules/virtio_balloon.ko")
        else:
            params = "" if variant == "pvballoon_blocks" else " huge_blocks=0"
            if variant.endswith("unmovable"):
                params += " movable=0"
            vm.sh("insmod /modules/pvballoon.ko" + params)
            if variant.endswith("nomig"):
                vm.sh("echo 0 > %s/migration" % D)
            ctx.backend = vm.stats()["backend"]
        v0 = vm.vmstat()
        vm.sh("fragment 93 > /tmp/frag.out 2>&1 &")
        deadline = time.time() + 300 * ctx.target.slow
        while "ready" not in vm.sh("cat /tmp/frag.out"):
            if time.time() > deadline:
                raise TestFailure("fragment helper never got ready")
            time.sleep(1)
        holes = int(vm.sh("sed -n 's/^holes //p' /tmp/frag.out"))
        n = holes * 9 // 10
        if intree:
            target = GIB - n * PAGE
            vm.qmp("balloon", value=target)
            deadline = time.time() + 120 * ctx.target.slow
            while vm.qmp("query-balloon")["actual"] > target:
                if time.time() > deadline:
                    raise TestFailure("virtio_balloon did not reach the target")
                time.sleep(0.5)
        else:
            vm.sh("echo %d > %s/inflate" % (n, D))
        vm.sh("kill $(pidof fragment); while pidof fragment >/dev/null; do sleep 0.1; done")
        if short_control:
            r0 = vm.stats()["isolate_refused"]
            vm.sh("echo 1 > /proc/sys/vm/compact_memory", timeout=600 * ctx.target.slow)
            v1, s = vm.quiesced_counters()
            migrated = v1.get("balloon_migrate", 0) - v0.get("balloon_migrate", 0)
            ctx.note("%s %s (one compaction pass): %d refused, migrated %d"
                     % (ctx.target.name, variant, s["isolate_refused"] - r0, migrated))
            if s["isolate_refused"] == r0:
                raise TestFailure("compaction never asked to move a balloon page")
            return None, migrated, n
        free = vm.free_pages()
        want = free // 512
        vm.sh("echo %d > /proc/sys/vm/nr_hugepages" % want, timeout=600 * ctx.target.slow)
        got = int(vm.sh("cat /proc/sys/vm/nr_hugepages"))
        if intree:
            v1 = vm.vmstat()
        else:
            v1, s = vm.quiesced_counters()
        migrated = v1.get("balloon_migrate", 0) - v0.get("balloon_migrate", 0)
        inflated = v1["balloon_inflate"] - v0["balloon_inflate"]
        if not intree:
            if s["migrated"] != migrated:
                raise TestFailure("stats migrated %d != balloon_migrate delta %d" % (s["migrated"], migrated))
        vm.sh("echo 0 > /proc/sys/vm/nr_hugepages")
        ctx.note("%s %s: holes %d, balloon %d pages (balloon_inflate +%d%s), huge pages %d of %d "
                 "(%.0f%%), migrated %d%s" % (
                     ctx.target.name, variant, holes, n, inflated,
                     "" if intree else ", %d whole blocks" % s["huge_blocks"],
                     got, want, 100.0 * got / want, migrated,
                     "" if intree else ", eagain %d (lock %s, host %s, queue %s)" % (
                         s["migrate_eagain"], s.get("migrate_busy_lock", "-"),
                         s.get("migrate_busy_host", "-"), s.get("migrate_busy_queue", "-"))))
        if inflated != n:
            raise TestFailure("balloon_inflate moved by %d, want %d" % (inflated, n))
        return got / want, migrated, n


# pvballoon may trail the in-tree driver by this much (fraction of the
# possible huge pages) and still count as no worse.
MARGIN = 0.05


def no_worse(ctx, r, variant):
    """The huge-page fractions of @variant and of the in-tree driver, each
    the median of its rounds.  One boot's layout varies by up to 20 points
    for either driver (seen on 6.1: pvballoon 76% and 95% on two boots of
    the same kernel, in-tree 95% on both), so when the first round falls
    short two more rounds of both decide on the median of three: a driver
    that is really worse loses two rounds of three, one odd boot does not
    decide.  In-tree's extra rounds are shared between the comparisons.

    Still short after three, five decide: on 7.3 rt a boot lands near 90%
    or near 97% for either driver (make check, 2026-12-02: pvballoon 90 90
    97, in-tree 97 91 97), and three rounds of two drivers with the same
    odds can split that way; a driver that is really worse loses three of
    five."""
    pvb = [r[variant][0]]
    intree = r.setdefault("intree_rounds", [r["virtio_balloon"][0]])
    for rounds in (3, 5):
        if statistics.median(pvb) >= statistics.median(intree) - MARGIN:
            break
        while len(pvb) < rounds:
            pvb.append(scenario(ctx, variant)[0])
        while len(intree) < rounds:
            intree.append(scenario(ctx, "virtio_balloon")[0])
        ctx.note("%s %s rounds: %s; in-tree %s" % (
            ctx.target.name, variant, " ".join("%.0f%%" % (100 * f) for f in pvb),
            " ".join("%.0f%%" % (100 * f) for f in intree)))
    return statistics.median(pvb), statistics.median(intree)


@test("fragmentation", cost=8, debug=False, check_on=("6.12", "trixie-bpo-rt"))
def fragmentation(ctx):
    """make check compares pvballoon with its defaults (pvballoon_blocks:
    here the guest has no free whole block, so it pins the holes as the
    4 KiB-only variant does) and leaves that variant, a second comparison
    of the same placement, to the long suite: each comparison costs 35-80 s
    a round, and three rounds when its first falls short."""
    r = {}
    short = False
    long_suite = ctx.runner.long_suite
    main = "pvballoon" if long_suite else "pvballoon_blocks"
    variants = [main, "pvballoon_nomig", "virtio_balloon"]
    if long_suite:
        variants.append("pvballoon_blocks")
    for variant in variants:
        with ctx.step(variant):
            r[variant] = scenario(ctx, variant, short and variant.endswith("nomig"))
            if variant == main:
                short = ctx.backend == "kernel_balloon" and not long_suite
    if ctx.target.name == "6.12" and long_suite:
        # For the figures only (no check): the long suite.
        with ctx.step("pvballoon_unmovable"):
            r["unmovable"] = scenario(ctx, "pvballoon_unmovable")
    with ctx.step("compare"):
        for v in (main, "pvballoon_nomig", "virtio_balloon"):
            ctx.check(v in r, "variant %s did not complete" % v)
        pvb, intree = no_worse(ctx, r, main)
        nomig, first = r["pvballoon_nomig"], r[main]
        ctx.check(pvb >= intree - MARGIN, "%s got %.0f%% of the huge pages, in-tree %.0f%%"
                  % (main, 100 * pvb, 100 * intree))
        ctx.check(nomig[0] is None or nomig[0] <= pvb - 0.20,
                  "control (migration=0) got %.0f%%, pvballoon %.0f%%: the scenario does not show "
                  "what migration buys" % (100 * (nomig[0] or 0), 100 * pvb))
        ctx.check(first[1] >= first[2] // 2, "balloon_migrate moved by %d for a %d-page balloon"
                  % (first[1], first[2]))
        ctx.check(nomig[1] == 0, "pages migrated with migration=0: %d" % nomig[1])
    if not long_suite:
        return
    with ctx.step("blocks_no_worse"):
        ctx.check("pvballoon_blocks" in r and "virtio_balloon" in r, "a variant did not complete")
        blocks, intree = no_worse(ctx, r, "pvballoon_blocks")
        ctx.check(blocks >= intree - MARGIN,
                  "with whole blocks first pvballoon got %.0f%% of the huge pages, in-tree %.0f%%"
                  % (100 * blocks, 100 * intree))
