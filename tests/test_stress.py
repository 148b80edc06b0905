# SPDX-License-Identifier: GPL-2.0
"""Concurrency: inflate, deflate, compaction and the migration switch at
once; rmmod while compaction is isolating our pages."""
import time

from harness.errors import TestFailure
from harness.runner import test
from harness.vocab import DEBUGFS as D, PAGES_PER_MIB


LOOPS = r"""
cd /sys/kernel/debug/pvballoon
(while :; do echo 4096 > inflate; done) >/dev/null 2>&1 &
(while :; do echo 4096 > deflate; done) >/dev/null 2>&1 &
(while :; do echo 1 > /proc/sys/vm/compact_memory; done) >/dev/null 2>&1 &
(while :; do echo 0 > migration; usleep 200000; echo 1 > migration; usleep 800000; done) >/dev/null 2>&1 &
(while :; do echo 300 > target; cat stats > /dev/null; done) >/dev/null 2>&1 &
jobs -p > /tmp/loops.pid
"""


# make check: the kernels whose migration paths differ - 6.12 (movable_ops,
# as 6.1), the debug kernels, and 7.3 rt (kernel_balloon, as sid's 7.2, on
# PREEMPT_RT).  6.1 and sid run it in the long suite: the same backends,
# 80 s of a warm make check between them.
@test("stress", cost=4, check_on=("6.12", "debug-6.12", "trixie-bpo-rt", "debug-rt-6.12"))
def stress(ctx):
    # On the debug kernel, freed pages are unmapped too: a migration that
    # copies a page we already gave back faults at once.
    append = "debug_pagealloc=on" if ctx.target.debug else ""
    with ctx.vm("stress", mem="1G", smp=2, append=append) as vm:
        vm.sh("insmod /modules/pvballoon.ko")
        v0, f0 = vm.vmstat(), vm.free_pages()
        # The debug kernel's checkers are what this run is for: half a
        # minute there, a third of one on the distribution kernels (make
        # check; with two vCPUs busy it costs twice its length in host
        # CPU, and three times that beside the other guests).  A minute in
        # the long suite; make soak runs these loops for 30 minutes.
        secs = 60 if ctx.runner.long_suite else 30 if ctx.target.debug else 20
        with ctx.step("concurrent"):
            vm.sh(LOOPS)
            end = time.time() + secs
            samples = 0
            seen_isolated = 0
            restarts = 0
            while time.time() < end:
                out = vm.sh("cat %s/verify; cat %s/stats" % (D, D))
                kv = {}
                for ln in out.splitlines():
                    k, _, v = ln.partition(": ")
                    kv.setdefault(k, v)
                # verify: one walk of the list under the balloon lock.
                walked, listed, isolated = int(kv["walked"]), int(kv["listed"]), int(kv["isolated"])
                if int(kv["bad"]) or walked != listed:
                    raise TestFailure("sample %d: list walk %d, listed %d, bad %s"
                                      % (samples, walked, listed, kv["bad"]))
                samples += 1
                seen_isolated = max(seen_isolated, isolated)
                restarts = max(restarts, int(kv.get("restarts", 0)))
            # A loop dies only when its write (a compaction pass) returns.
            vm.sh("kill $(cat /tmp/loops.pid); for p in $(cat /tmp/loops.pid); do "
                  "while [ -e /proc/$p ]; do sleep 0.1; done; done", timeout=300)
            s = vm.stats()
            ctx.check(s["current"] == s["listed"] + s["isolated"],
                      "current %d != listed %d + isolated %d" % (s["current"], s["listed"], s["isolated"]))
            ctx.note("stress %d s: %d samples, inflated %d, deflated %d, migrated %d, eagain %d, "
                     "isolate_refused %d, max isolated seen %d, verify restarts up to %d"
                     % (secs, samples, s["inflated"], s["deflated"], s["migrated"], s["migrate_eagain"],
                        s["isolate_refused"], seen_isolated, restarts))
            ctx.check(s["inflated"] > 10000 and s["deflated"] > 10000, "the loops did not run: %s" % s)
            ctx.check(s["migrated"] > 0, "compaction never migrated a balloon page")
        with ctx.step("no_page_leaked"):
            vm.sh("echo 1 > %s/migration; echo all > %s/deflate" % (D, D))
            v1, s = vm.quiesced_counters()
            di = v1["balloon_inflate"] - v0["balloon_inflate"]
            dd = v1["balloon_deflate"] - v0["balloon_deflate"]
            ctx.check(s["current"] == 0 and s["inflated"] == s["deflated"], "stats: %s" % s)
            ctx.check(di == s["inflated"] and dd == s["deflated"],
                      "vmstat +%d/-%d vs stats %d/%d" % (di, dd, s["inflated"], s["deflated"]))
            ctx.check(v1["balloon_migrate"] - v0["balloon_migrate"] == s["migrated"],
                      "balloon_migrate delta != stats migrated")
            vm.sh("rmmod pvballoon")
            f1 = vm.free_pages()
            ctx.check(vm.same_free(f0, f1), "free memory %d MiB, was %d MiB" % (f1 // PAGES_PER_MIB, f0 // PAGES_PER_MIB))
        with ctx.step("rmmod_during_compaction"):
            f0 = vm.free_pages()
            for i in range(3):
                vm.sh("insmod /modules/pvballoon.ko; echo 100M > %s/inflate" % D)
                vm.sh("(while :; do echo 1 > /proc/sys/vm/compact_memory; done) >/dev/null 2>&1 & "
                      "echo $! > /tmp/c.pid; sleep 1")
                vm.sh("rmmod pvballoon")
                vm.sh("kill $(cat /tmp/c.pid)")
            f1 = vm.free_pages()
            ctx.check(vm.same_free(f0, f1), "free memory %d MiB, was %d MiB" % (f1 // PAGES_PER_MIB, f0 // PAGES_PER_MIB))
            ctx.check("pvballoon" not in vm.sh("cat /proc/modules"), "module still loaded")
