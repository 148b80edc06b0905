# SPDX-License-Identifier: GPL-2.0
"""Range discards (src/virtio_range.c): whole 2 MiB blocks of an inflate go
to the host as one range each on the free page reporting queue.

What the host did is read from QEMU's own trace: one
ram_block_discard_range event per discard it made, with its length - one
per 2 MiB block sent as a range, one per 4 KiB PFN from the inflate queue.
"""
import os
import re

from harness.runner import test, wait_for
from test_virtio import GUEST, load, range_state, set_balloon, touch_most
from harness.vocab import MIB, PAGE, PARAMS, pages

TRACE_DISCARD = re.compile(r"ram_block_discard_range .*\+ 0x([0-9a-f]+): madvise: (\d) fallocate: (\d)")
BLOCK = 2 * MIB
# QEMU's options for its trace of discards (-D: the file).
TRACE_ARGS = ["-trace", "enable=ram_block_discard_range", "-D"]


class Discards:
    """The host's discards since the last read, by length; and the system
    calls they took (QEMU makes a madvise(), a fallocate(), or both)."""

    def __init__(self, path):
        self.path, self.off, self.syscalls = path, 0, 0

    def read(self):
        n = {}
        self.syscalls = 0
        with open(self.path, "rb") as f:
            f.seek(self.off)
            data = f.read()
        self.off += len(data)
        for ln in data.decode(errors="replace").splitlines():
            m = TRACE_DISCARD.search(ln)
            if m:
                size = int(m.group(1), 16)
                n[size] = n.get(size, 0) + 1
                self.syscalls += int(m.group(2)) + int(m.group(3))
        return n


@test("virtio_range_discard", cost=1, check_on=("6.12", "6.12-mmio", "debug-6.12"))
def virtio_range_discard(ctx):
    """One host discard per whole block, host RSS down by the size, exact
    books, the pages intact afterwards; range_discard=0 falls back to the
    inflate queue; free page reporting shares the queue.  The debug kernel
    is here for KASAN and lockdep on the range paths: it skips what the
    Debian kernels check (contents, the parameter) and shares once."""
    trace = os.path.join(ctx.runner.results, ctx.target.name, "range.trace")
    os.makedirs(os.path.dirname(trace), exist_ok=True)
    if os.path.exists(trace):
        os.unlink(trace)
    debug = ctx.target.debug
    with ctx.vm("range", mem="1G", balloon={"free-page-reporting": "on"},
                extra_qemu=TRACE_ARGS + [trace]) as vm:
        # Without the guest's own free page reporting first: every discard
        # in the trace is then the balloon's.
        load(vm, "pvballoon", "free_page_reporting=0")
        disc = Discards(trace)
        one_discard_per_block(ctx, vm, disc)
        if not debug:
            off_by_parameter(ctx, vm, disc)
        with ctx.step("shares_queue_with_reporting"):
            vm.sh("rmmod pvballoon")
            load(vm, "pvballoon")
            s0 = vm.stats()
            ctx.check(s0["free_page_reporting"] == "on", "reporting: %s" % s0["free_page_reporting"])
            for _ in range(1 if debug else 3):
                # Free memory for page reporting while the balloon moves.
                vm.sh("dd if=/dev/zero of=/tmp/big bs=1M count=200 2>/dev/null; rm /tmp/big")
                set_balloon(ctx, vm, GUEST - SIZE)
                set_balloon(ctx, vm, GUEST)
            wait_for(ctx, "page reporting to report", lambda: vm.stats()["reported_pages"] > 0, 30)
            s1 = vm.stats()
            ctx.note("%s with page reporting: %d blocks as ranges, %d pages reported"
                     % (ctx.target.name, s1["range_blocks"], s1["reported_pages"]))
            ctx.check(s1["range_blocks"] > 0 and s1["host_broken"] == 0 and s1["host_recoveries"] == 0,
                      "ranges %d, host_broken %d, recoveries %d"
                      % (s1["range_blocks"], s1["host_broken"], s1["host_recoveries"]))
            if not debug:
                _, out = touch_most(vm)
                ctx.check("0 bad pages" in out, out[-200:])
        vm.sh("rmmod pvballoon")
        vm.check_splat()


SIZE = 256 * MIB


def one_discard_per_block(ctx, vm, disc):
    """A host-driven inflate of SIZE: every page reaches the host once, as
    part of a 2 MiB range or as a PFN; then the deflate gives it back."""
    with ctx.step("one_discard_per_block"):
        ctx.check(range_state(vm) == "on", "range_discard: %s" % range_state(vm))
        touch_most(vm)
        disc.read()
        rss0, v0, s0 = vm.qemu_rss_kib(), vm.vmstat(), vm.stats()
        secs = set_balloon(ctx, vm, GUEST - SIZE)
        rss1, v1, s1 = vm.qemu_rss_kib(), vm.vmstat(), vm.stats()
        d = disc.read()
        blocks = s1["range_blocks"] - s0["range_blocks"]
        pfns = d.get(PAGE, 0)
        freed = (rss0 - rss1) * 1024 / SIZE
        ctx.note("%s: %d MiB in %.1f s: %d blocks as ranges, %d PFNs on the inflate queue; host "
                 "discards %s; host RSS -%.1f%%" % (ctx.target.name, SIZE // MIB, secs, blocks, pfns,
                                                   d, 100 * freed))
        ctx.check(v1["balloon_inflate"] - v0["balloon_inflate"] == pages(SIZE),
                  "vmstat balloon_inflate +%d, want %d" % (v1["balloon_inflate"] - v0["balloon_inflate"],
                                                           pages(SIZE)))
        ctx.check(blocks * 512 + pfns == pages(SIZE),
                  "%d blocks and %d PFNs reached the host for %d pages" % (blocks, pfns, pages(SIZE)))
        # A guest fresh from memhog has free blocks to spare: all whole.
        ctx.check(blocks >= 0.9 * SIZE // BLOCK, "only %d of %d blocks went as ranges"
                  % (blocks, SIZE // BLOCK))
        ctx.check(d.get(BLOCK, 0) == blocks and set(d) <= {BLOCK, PAGE},
                  "host discards %s for %d ranges: want one of 2 MiB per range" % (d, blocks))
        # The debug kernel touches more memory of its own meanwhile (KASAN).
        ctx.check(freed >= (0.95 if ctx.target.debug else 0.98),
                  "host RSS fell by %.1f%% of the inflated size" % (100 * freed))
    with ctx.step("deflate_intact"):
        tot, v1 = vm.meminfo()["MemTotal"], vm.vmstat()
        set_balloon(ctx, vm, GUEST)
        v2 = vm.vmstat()
        ctx.check(v2["balloon_deflate"] - v1["balloon_deflate"] == pages(SIZE),
                  "vmstat balloon_deflate +%d" % (v2["balloon_deflate"] - v1["balloon_deflate"]))
        ctx.check(vm.meminfo()["MemTotal"] == tot + SIZE // 1024, "MemTotal not restored")
        if not ctx.target.debug:
            # The discarded pages come back zeroed by the host; memhog
            # writes and checks every page it gets.
            _, out = touch_most(vm)
            ctx.check("0 bad pages" in out, out[-200:])


def off_by_parameter(ctx, vm, disc):
    """range_discard=0: every page on the inflate queue again."""
    with ctx.step("off_by_parameter"):
        vm.sh("echo 0 > %s/range_discard" % PARAMS)
        s0 = vm.stats()
        disc.read()
        set_balloon(ctx, vm, GUEST - 64 * MIB)
        s1, d, state = vm.stats(), disc.read(), range_state(vm)
        set_balloon(ctx, vm, GUEST)
        vm.sh("echo 1 > %s/range_discard" % PARAMS)
        ctx.check(state == "off (range_discard=0)", "stats range_discard: %s" % state)
        ctx.check(s1["range_blocks"] == s0["range_blocks"] and d.get(PAGE, 0) == pages(64 * MIB)
                  and BLOCK not in d,
                  "range_discard=0: %d ranges, host discards %s"
                  % (s1["range_blocks"] - s0["range_blocks"], d))
