# SPDX-License-Identifier: GPL-2.0
"""The virtio-balloon front-end, driven from the host through QMP.

Every scenario that does not depend on pvballoon's own interface runs twice,
with pvballoon and with the in-tree virtio_balloon on the same kernel and
QEMU: a check that cannot tell the two apart measures the device, and a
check that fails for in-tree is checking the wrong thing.
"""
import contextlib
import fcntl
import os
import re
import subprocess
import time

from harness.errors import Skip, TestFailure
from harness.runner import test, wait_for
from harness.vocab import DEBUGFS as D, MIB, PAGE, PARAMS, PORTABLE_PFNS, ROUND, pages

GUEST = 1024 * MIB           # the guests of these tests have 1 GiB, unless said
DRIVERS = ("pvballoon", "virtio_balloon")
BALLOON = "/machine/peripheral/balloon0"


def load(vm, driver, params=""):
    if driver == "pvballoon":
        vm.sh("insmod /modules/pvballoon.ko " + params)
    else:
        vm.sh("insmod /modules/virtio_balloon.ko")


def touch_most(vm, leave_mib=48):
    """Touch (and check) most of the guest's available memory: what a
    busy guest looks like to the host."""
    mib = vm.meminfo()["MemAvailable"] // 1024 - leave_mib
    out = vm.sh("memhog %d" % mib)
    return mib, out


def actual(vm):
    return vm.qmp("query-balloon")["actual"]


def set_balloon(ctx, vm, size, what=""):
    """QMP balloon to @size bytes of guest memory; wait until query-balloon
    reports it.  Returns the seconds it took."""
    t0 = time.time()
    vm.qmp("balloon", value=size)
    deadline = t0 + 180 * ctx.target.slow
    while actual(vm) != size:
        if time.time() > deadline:
            raise TestFailure("%sballoon did not reach %d MiB: actual %d MiB\n%s"
                              % (what, size // MIB, actual(vm) // MIB, why_stuck(vm)))
        time.sleep(0.2)
    return time.time() - t0


def why_stuck(vm):
    """The guest's side of a host target it did not follow, for the
    failure message: did the notifications arrive (interrupts,
    host_config_changes), were they acted on (host_resizes), or held
    (host_requests)?  A CI run once lost a whole group to this with
    nothing to tell why."""
    rc, out = vm.run("grep -E '^(current|target|host_|stats_answered)' %s/stats 2>&1; "
                     "grep -iE 'virtio|balloon' /proc/interrupts; dmesg | tail -n 8" % D, timeout=60)
    return out


def resize_under_way(ctx, vm):
    """Wait (up to a minute) for the first round of a host resize from an
    empty balloon: actual has moved, the rest is still to come."""
    deadline = time.time() + 60 * ctx.target.slow
    while actual(vm) == GUEST and time.time() < deadline:
        time.sleep(0.01)


def range_state(vm):
    """The stats file's range_discard line: "on", or "off (why)"."""
    return vm.sh("sed -n 's/^range_discard: //p' %s/stats" % D).strip()


def need_pm_test(vm):
    """Skip the step unless the guest can fake a suspend (pm_test, mem)."""
    rc, _ = vm.run("[ -w /sys/power/pm_test ] && grep -qw mem /sys/power/state")
    if rc:
        raise Skip("no /sys/power/pm_test or no mem sleep state in this guest")


# ------------------------------------------------------------------ boot A
def features(ctx, vm, driver, config):
    """The feature bits the driver negotiated, kept for the parity check.

    On a target that compares features only (Ctx.parity_features_only:
    6.1 in make check) the in-tree driver's bits are read here too, from
    the same device: pvballoon unbinds (the device is reset), the in-tree
    driver binds and negotiates, then pvballoon again - no boot of its own."""
    def read(who):
        f = vm.sh("cat /sys/bus/virtio/devices/*/features").strip()
        ctx.features[(config, who)] = f
        ctx.note("%s %s %s: negotiated features %s" % (ctx.target.name, who, config, f[:40]))
    ctx.features = getattr(ctx, "features", {})
    read(driver)
    if driver == "pvballoon" and ctx.parity_features_only:
        vm.sh("rmmod pvballoon && insmod /modules/virtio_balloon.ko")
        read("virtio_balloon")
        vm.sh("rmmod virtio_balloon && insmod /modules/pvballoon.ko")


def check_features(ctx, config):
    """pvballoon negotiates what the in-tree driver does, bit for bit."""
    with ctx.step("negotiated_features_match_in_tree"):
        f = getattr(ctx, "features", {})
        a, b = f.get((config, "pvballoon")), f.get((config, "virtio_balloon"))
        ctx.check(a and b and a == b, "features differ: pvballoon %s, in-tree %s" % (a, b))


def plain_device(ctx, driver):
    # The in-tree driver's run boots its own guest: on one pvballoon had
    # used, its convergence freed 90-92% of host RSS (99-100% fresh), and
    # that check measures the device, not the guest's past.
    vm = ctx.vm(driver, intree=True, mem="1G", balloon={}, share=driver == "pvballoon")
    with vm:
        load(vm, driver)
        features(ctx, vm, driver, "plain")
        pvb = driver == "pvballoon"
        with ctx.step(driver + "/convergence"):
            touch_most(vm)
            rss0, v0, tot0 = vm.qemu_rss_kib(), vm.vmstat(), vm.meminfo()["MemTotal"]
            secs = set_balloon(ctx, vm, GUEST // 2)
            rss1, v1, tot1 = vm.qemu_rss_kib(), vm.vmstat(), vm.meminfo()["MemTotal"]
            freed = (rss0 - rss1) * 1024
            ctx.note("%s %s: 512 MiB in %.1f s, host RSS -%d MiB (%.0f%%)"
                     % (ctx.target.name, driver, secs, freed // MIB, 100.0 * freed / (GUEST // 2)))
            ctx.check(v1["balloon_inflate"] - v0["balloon_inflate"] == 131072,
                      "balloon_inflate moved by %d, want 131072" % (v1["balloon_inflate"] - v0["balloon_inflate"]))
            ctx.check(freed >= 0.9 * GUEST // 2, "host RSS dropped by only %d MiB" % (freed // MIB))
            ctx.check(tot0 - tot1 == 512 * 1024, "MemTotal dropped by %d KiB" % (tot0 - tot1))
            if pvb:
                s = vm.stats()
                ctx.check(s["current"] == 131072 and s["target"] == 131072, "stats: %s" % s)
                ctx.check(s["host_requests"] == "on" and s["host_config_changes"] >= 1
                          and s["host_resizes"] >= 1, "the host's requests as counted: %s" % s)
                ctx.check(s["adjust_memtotal"] == 1, "MemTotal follows, stats say adjust_memtotal %s"
                          % s["adjust_memtotal"])
            set_balloon(ctx, vm, GUEST)
            v2 = vm.vmstat()
            ctx.check(v2["balloon_deflate"] - v1["balloon_deflate"] == 131072, "balloon_deflate moved by %d"
                      % (v2["balloon_deflate"] - v1["balloon_deflate"]))
            ctx.check(vm.meminfo()["MemTotal"] == tot0, "MemTotal not restored")
            _, out = touch_most(vm)
            ctx.check("0 bad pages" in out, "guest memory after deflate: " + out)
        with ctx.step(driver + "/guest_stats"):
            answered0 = vm.stats()["stats_answered"] if pvb else 0
            vm.qmp("qom-set", path=BALLOON, property="guest-stats-polling-interval", value=1)
            time.sleep(2)
            a = vm.vmstat()["pgfault"]
            time.sleep(2.5)
            host = vm.qmp("qom-get", path=BALLOON, property="guest-stats")["stats"]
            b, mi = vm.vmstat()["pgfault"], vm.meminfo()
            if pvb:
                answered = vm.stats()["stats_answered"] - answered0
                ctx.check(answered >= 1, "%d stats requests answered in 4.5 s of 1 s polling" % answered)
            ctx.note("%s %s guest-stats: %s" % (ctx.target.name, driver,
                     ", ".join("%s=%s" % (k[5:], v) for k, v in sorted(host.items()))))
            ctx.check(host["stat-total-memory"] == mi["MemTotal"] * 1024,
                      "stat-total-memory %d != MemTotal %d KiB" % (host["stat-total-memory"], mi["MemTotal"]))
            ctx.check(a <= host["stat-minor-faults"] <= b, "stat-minor-faults %d not within guest pgfault "
                      "%d..%d" % (host["stat-minor-faults"], a, b))
            for key, mkey in (("stat-free-memory", "MemFree"), ("stat-available-memory", "MemAvailable")):
                h, g = host[key], mi[mkey] * 1024
                ctx.check(abs(h - g) <= 0.1 * g + 8 * MIB, "%s %d MiB vs guest %s %d MiB"
                          % (key, h // MIB, mkey, g // MIB))
            ctx.check(host["stat-major-faults"] <= vm.vmstat()["pgmajfault"], "stat-major-faults too high")
        with ctx.step(driver + "/compaction_with_host"):
            # The fragmentation shape (see test_frag.py): balloon pages in
            # the holes of many 2 MiB blocks, so compaction must move them.
            vm.sh("fragment 90 > /tmp/frag.out 2>&1 &")
            wait_for(ctx, "the fragment helper", lambda: "ready" in vm.sh("cat /tmp/frag.out"), 300)
            holes = int(vm.sh("sed -n 's/^holes //p' /tmp/frag.out"))
            # 4 KiB pages: the fragment helper leaves about 10% of
            # MemAvailable free, and whole 2 MiB blocks are taken first
            # when the free blocks beyond huge_keep (1/8 of RAM) cover the
            # inflate - then the balloon sits in no hole and compaction has
            # nothing of it to move (a cold make check: 6 blocks taken,
            # balloon_migrate +0).  Whole blocks are test_frag's subject.
            huge = PARAMS + "/huge_blocks"
            if pvb:
                vm.sh("echo 0 > " + huge)
            set_balloon(ctx, vm, GUEST - holes * 9 // 10 * PAGE)
            if pvb:
                vm.sh("echo 1 > " + huge)
            vm.sh("kill $(pidof fragment); while pidof fragment >/dev/null; do sleep 0.1; done")
            v0 = vm.vmstat()
            # One pass on the debug kernel (KASAN makes a pass slow; the
            # check is that pages moved at all), two elsewhere.
            passes = "1" if ctx.target.debug else "1 2"
            vm.sh("for i in %s; do echo 1 > /proc/sys/vm/compact_memory; done" % passes, timeout=600)
            moved = vm.vmstat()["balloon_migrate"] - v0["balloon_migrate"]
            ctx.note("%s %s: compaction migrated %d of %d ballooned pages"
                     % (ctx.target.name, driver, moved, holes * 9 // 10))
            ctx.check(moved > 0, "no ballooned page migrated")
            if pvb:
                s = vm.stats()
                ctx.check(s["migrated"] >= moved and s["current"] == holes * 9 // 10, "stats: %s" % s)
            set_balloon(ctx, vm, GUEST)
            mib, out = touch_most(vm)
            ctx.check("0 bad pages" in out, "a page the guest uses lost its content: " + out)
            rss = vm.qemu_rss_kib() * 1024
            ctx.check(rss >= mib * MIB, "host RSS %d MiB after the guest touched %d MiB" % (rss // MIB, mib))
        if not pvb:
            return
        # targets.json "virtio_light" (make check on the debug kernel, the
        # cloud flavour, 6.12-mmio and sid: 6.12 and 7.3 rt make them on
        # the same kernel or backend): two steps of control logic - whose target
        # stands, where the reserve stops the balloon - that the other
        # kernels check on the same code, and that cost a guest filled to
        # its reserve there (50-100 s beside the other guests).  The long
        # suite runs them everywhere.
        light = ctx.target.spec.get("virtio_light") and not ctx.runner.long_suite
        if not light:
            guest_requests_visible(ctx, vm)
        with ctx.step("pvballoon/rapid_targets_and_zero"):
            for mib in (900, 300, 700, 100, 800, 450, 1000, 200, 600):
                vm.qmp("balloon", value=mib * MIB)
            set_balloon(ctx, vm, 600 * MIB)
            ctx.check(vm.stats()["current"] == pages(GUEST - 600 * MIB),
                      "after rapid changes: %s" % vm.stats())
            set_balloon(ctx, vm, GUEST)                       # num_pages = 0
            ctx.check(vm.stats()["current"] == 0, "target 0 not reached: %s" % vm.stats())
        if not light:
            host_target_too_big(ctx, vm)
        with ctx.step("pvballoon/suspend_resume"):
            need_pm_test(vm)
            set_balloon(ctx, vm, GUEST - 256 * MIB)
            s0 = vm.stats()
            vm.sh("echo devices > /sys/power/pm_test; echo mem > /sys/power/state; echo none > /sys/power/pm_test")
            wait_for(ctx, "the balloon to be rebuilt", lambda: vm.stats()["current"] == 65536, 60)
            s1 = vm.stats()
            ctx.check(s1["deflated"] - s0["deflated"] == 65536 and s1["inflated"] - s0["inflated"] == 65536,
                      "suspend/resume did not empty and rebuild the balloon: %s -> %s" % (s0, s1))
            ctx.check(actual(vm) == GUEST - 256 * MIB, "actual after resume %d MiB" % (actual(vm) // MIB))
        with ctx.step("pvballoon/unload_inflated"):
            set_balloon(ctx, vm, GUEST // 2)
            tot = vm.meminfo()["MemTotal"]
            vm.sh("dmesg -c > /dev/null; rmmod pvballoon")
            ctx.check(actual(vm) == GUEST, "host not told: actual %d MiB" % (actual(vm) // MIB))
            ctx.check(vm.meminfo()["MemTotal"] == tot + 512 * 1024, "MemTotal not restored")
            ctx.check("released: 131072 pages" in vm.sh("dmesg"), "no release message")
            _, out = touch_most(vm)
            ctx.check("0 bad pages" in out, out)


def guest_requests_visible(ctx, vm):
    """A guest write and a host target: the last writer wins, and the
    host sees the guest's (virtio_plain, pvballoon)."""
    with ctx.step("pvballoon/guest_requests_visible"):
        vm.sh("echo 64M > %s/inflate" % D)
        ctx.check(actual(vm) == GUEST - 64 * MIB, "debugfs inflate: actual %d MiB" % (actual(vm) // MIB))
        set_balloon(ctx, vm, GUEST - 256 * MIB)          # the host writes last
        ctx.check(vm.stats()["current"] == 65536, "host target not followed")
        vm.sh("echo 128M > %s/deflate" % D)               # then the guest
        time.sleep(2)
        ctx.check(actual(vm) == GUEST - 128 * MIB and vm.stats()["target"] == pages(128 * MIB),
                  "guest write did not stand: actual %d MiB" % (actual(vm) // MIB))
        vm.sh("echo 0 > %s/target" % D)
        ctx.check(actual(vm) == GUEST, "target 0: actual %d MiB" % (actual(vm) // MIB))


def host_target_too_big(ctx, vm):
    """A host target the guest cannot meet: the reserve stops the
    balloon, nobody is OOM-killed, actual tells the truth."""
    with ctx.step("pvballoon/host_target_too_big"):
        v0, tot = vm.vmstat(), vm.meminfo()["MemTotal"]
        vm.qmp("balloon", value=16 * MIB)
        wait_for(ctx, "the balloon to stop growing",
                 lambda: vm.stats()["reserve_stops"] > 0 and vm.stats()["current"] * 4 > tot * 0.7, 120)
        time.sleep(3)
        s, v1 = vm.stats(), vm.vmstat()
        ctx.note("%s host target 16 MiB: balloon holds %d MiB, %d reserve stops, oom_kill +%d"
                 % (ctx.target.name, s["current"] // 256, s["reserve_stops"], v1["oom_kill"] - v0["oom_kill"]))
        ctx.check(v1["oom_kill"] == v0["oom_kill"], "the OOM killer woke")
        ctx.check(vm.sh("echo alive; ls /proc | wc -l").startswith("alive"), "guest unusable")
        # The host target is retried every second: compare a balloon
        # size that held still across the read of actual.
        def agrees():
            c1, a, c2 = vm.stats()["current"], actual(vm), vm.stats()["current"]
            return c1 == c2 and a == GUEST - c1 * PAGE
        wait_for(ctx, "actual to match the balloon", agrees, 30)
        set_balloon(ctx, vm, GUEST)


def each_driver(ctx, scenario, config):
    """Run @scenario with pvballoon, then with the in-tree driver, and
    check that both negotiated the same features for device @config.

    On a debug kernel (make check) pvballoon alone: KASAN and lockdep
    watch our code, and the parity runs are the distribution kernels' job
    (tests/run --long makes them there too).  On 6.1 the in-tree driver
    binds to pvballoon's guest for the feature bits only (targets.json
    "parity", see features())."""
    scenario(ctx, "pvballoon")
    if ctx.parity_features_only:
        check_features(ctx, config)
        return
    if not ctx.parity:
        return
    if not ctx.target.initrd_intree:
        raise Skip("no in-tree virtio_balloon module for the parity run")
    scenario(ctx, "virtio_balloon")
    check_features(ctx, config)


@test("virtio_plain", cost=4)
def virtio_plain(ctx):
    each_driver(ctx, plain_device, "plain")


# ------------------------------------------------------------------ boot B
def oom_reporting(ctx, driver):
    vm = ctx.vm(driver + "-oom", intree=True, mem="1G", share=True,
                balloon={"deflate-on-oom": "on", "free-page-reporting": "on"})
    with vm:
        load(vm, driver)
        features(ctx, vm, driver, "oom+reporting")
        with ctx.step(driver + "/free_page_reporting"):
            rss0 = vm.qemu_rss_kib()
            vm.sh("dd if=/dev/zero of=/tmp/big bs=1M count=300 2>/dev/null")
            rss1 = vm.qemu_rss_kib()
            vm.sh("rm /tmp/big")
            best = [rss1]

            def dropped():
                best[0] = min(best[0], vm.qemu_rss_kib())
                return (rss1 - best[0]) * 1024 >= 0.7 * 300 * MIB
            try:
                wait_for(ctx, "host RSS to drop", dropped, 40)
            finally:
                ctx.note("%s %s reporting: RSS %d -> %d -> %d MiB" % (
                    ctx.target.name, driver, rss0 // 1024, rss1 // 1024, best[0] // 1024))
            if driver == "pvballoon":
                s = vm.stats()
                ctx.check(s["free_page_reporting"] == "on" and s["reported_pages"] * PAGE >= 0.7 * 300 * MIB,
                          "stats: reporting %s, %d pages reported" % (s["free_page_reporting"],
                                                                     s["reported_pages"]))
        with ctx.step(driver + "/deflate_on_oom"):
            tot0 = vm.meminfo()["MemTotal"]
            # The balloon at 60% of the guest's memory.
            target = GUEST - (tot0 * 1024 * 6 // 10) // PAGE * PAGE
            set_balloon(ctx, vm, target)
            ctx.check(vm.meminfo()["MemTotal"] == tot0, "MemTotal moved with deflate-on-oom")
            if driver == "pvballoon":
                # The mode in force, not the parameter (which is 1).
                ctx.check(vm.stats()["adjust_memtotal"] == 0,
                          "MemTotal stays with deflate-on-oom, stats say adjust_memtotal %s"
                          % vm.stats()["adjust_memtotal"])
            v0, free = vm.vmstat(), vm.free_pages()
            want = free // 256 + 200
            rc, out = vm.run("memhog %d" % want, timeout=600 * ctx.target.slow)
            v1, act = vm.vmstat(), actual(vm)
            ctx.note("%s %s deflate-on-oom: memhog %d MiB (free was %d MiB): rc %d, balloon gave back %d MiB"
                     % (ctx.target.name, driver, want, free // 256, rc, (act - target) // MIB))
            ctx.check(rc == 0 and "0 bad pages" in out, "memhog failed (%d): %s" % (rc, out[-200:]))
            ctx.check(v1["oom_kill"] == v0["oom_kill"], "the OOM killer killed %d" % (v1["oom_kill"] - v0["oom_kill"]))
            ctx.check(act >= target + 150 * MIB, "the balloon did not shrink: actual %d MiB" % (act // MIB))


@test("virtio_oom_reporting", cost=3)
def virtio_oom_reporting(ctx):
    each_driver(ctx, oom_reporting, "oom+reporting")


# ------------------------------------------------------------------ boot C
# make check: not on 6.12, whose kernel the cloud flavour (trixie-cloud,
# the kernel cloud images boot) and the debug kernel take over on.
@test("virtio_takeover", cost=1,
      check_on=("6.1", "sid", "debug-6.12", "trixie-cloud", "debug-rt-6.12"))
def virtio_takeover(ctx):
    if not ctx.target.initrd_intree:
        raise Skip("no in-tree virtio_balloon module")
    with ctx.vm("takeover", intree=True, mem="1G", balloon={}, share=True) as vm:
        load(vm, "virtio_balloon")
        set_balloon(ctx, vm, GUEST * 3 // 4, "in-tree ")
        with ctx.step("says_who_holds_the_device"):
            # What a user gets after a plain modprobe in a guest where udev
            # loaded the in-tree driver first: a balloon no host hears of.
            vm.sh("dmesg -c > /dev/null; insmod /modules/pvballoon.ko")
            msg, s = vm.sh("dmesg"), vm.stats()
            vm.sh("rmmod pvballoon")
            ctx.check("driven by virtio_balloon, not pvballoon" in msg and "takeover=1" in msg,
                      "no clear message about the device held by virtio_balloon: %s" % msg[-400:])
            ctx.check(s.get("frontend") == "none", "stats frontend: %s" % s.get("frontend"))
        with ctx.step("take_over"):
            vm.sh("insmod /modules/pvballoon.ko takeover=1")
            bound = vm.sh("ls /sys/bus/virtio/drivers/pvballoon/ 2>/dev/null | grep virtio || true")
            ctx.check(bound.strip(), "pvballoon did not bind the device")
            wait_for(ctx, "pvballoon to reach the host target", lambda: vm.stats()["current"] == 65536, 60)
            ctx.check(actual(vm) == GUEST * 3 // 4, "actual %d MiB" % (actual(vm) // MIB))
            set_balloon(ctx, vm, GUEST // 2)
            ctx.check(vm.stats()["current"] == 131072, "pvballoon does not follow the host")
        with ctx.step("give_back"):
            vm.sh("rmmod pvballoon")
            bound = vm.sh("ls /sys/bus/virtio/drivers/virtio_balloon/ | grep virtio || true")
            ctx.check(bound.strip(), "the in-tree driver did not get the device back")
            set_balloon(ctx, vm, GUEST * 3 // 4, "in-tree after give-back ")
        with ctx.step("device_removal_inflated"):
            vm.sh("insmod /modules/pvballoon.ko takeover=1 give_back=0")
            set_balloon(ctx, vm, GUEST // 2)
            tot = vm.meminfo()["MemTotal"]
            vm.sh("dmesg -c >/dev/null")
            vm.qmp("device_del", id="balloon0")
            # The device leaves sysfs before remove() has returned the pages.
            wait_for(ctx, "the guest to release the device",
                     lambda: "released:" in vm.sh("dmesg"), 60)
            ctx.check(not vm.sh("ls /sys/bus/virtio/devices/").strip(), "device still there")
            s = vm.stats()
            ctx.check(s["current"] == 0, "pages left in the balloon: %s" % s)
            ctx.check(vm.meminfo()["MemTotal"] == tot + 512 * 1024, "MemTotal not restored")
            ctx.check("released: 131072 pages" in vm.sh("dmesg"), "wrong release message")
            _, out = touch_most(vm)
            ctx.check("0 bad pages" in out, out)
            vm.sh("rmmod pvballoon")


# ------------------------------------------------------------------ boot D
def poisoned_guest(ctx, driver):
    with ctx.vm(driver + "-poison", intree=True, mem="1G", append="page_poison=1", share=True,
                balloon={"free-page-reporting": "on"}) as vm:
        load(vm, driver)
        features(ctx, vm, driver, "page_poison=1")
        with ctx.step(driver + "/page_poison_negotiated"):
            f = ctx.features[("page_poison=1", driver)]
            ctx.check(f[4] == "1" and f[5] == "1",
                      "a guest that poisons free pages must accept PAGE_POISON and keep REPORTING: %s" % f[:8])
            if driver == "pvballoon":
                # QEMU would acknowledge ranges without discarding them
                # (poison_val != 0): blocks must take the inflate queue.
                state = range_state(vm)
                ctx.check(state == "off (page poisoning)", "range_discard: %s" % state)
            set_balloon(ctx, vm, GUEST - 128 * MIB)
            set_balloon(ctx, vm, GUEST)


@test("virtio_page_poison", cost=1, debug=False)
def virtio_page_poison(ctx):
    each_driver(ctx, poisoned_guest, "page_poison=1")


# ------------------------------------------------------------------ boot D2
@test("virtio_oom_floor", cost=1, targets=("6.12",))
def virtio_oom_floor(ctx):
    """A host without DEFLATE_ON_OOM: under OOM the guest takes back what it
    ballooned itself above the host's target, and never goes below that
    target (virtio spec 5.5.6.1; core_oom.c)."""
    with ctx.vm("oom-floor", mem="1G", balloon={}, share=True) as vm:
        load(vm, "pvballoon")
        with ctx.step("gives_back_only_above_host_target"):
            set_balloon(ctx, vm, GUEST - 256 * MIB)
            vm.sh("echo 1 > /proc/sys/vm/overcommit_memory; dmesg -c >/dev/null; "
                  "echo 256M > %s/inflate" % D)
            ctx.check(vm.stats()["current"] == pages(512 * MIB), "inflate: %s" % vm.stats())
            k0, free = vm.vmstat()["oom_kill"], vm.free_pages()
            want = free // 256 + 128
            rc, out = vm.run("memhog %d" % want, timeout=300 * ctx.target.slow)
            s, k1, act = vm.stats(), vm.vmstat()["oom_kill"], actual(vm)
            ctx.note("%s: host target 256 MiB, guest's own 256 MiB more; memhog %d MiB: rc %d, "
                     "balloon %d MiB, actual %d MiB" % (ctx.target.name, want, rc,
                                                       s["current"] // 256, act // MIB))
            ctx.check(rc == 0 and "0 bad pages" in out, "memhog failed (%d): %s" % (rc, out[-200:]))
            ctx.check(k1 == k0, "the OOM killer ran %d times" % (k1 - k0))
            ctx.check(pages(256 * MIB) <= s["current"] <= pages(384 * MIB),
                      "balloon %d pages: want the host's 65536 kept and the guest's share given" % s["current"])
            ctx.check(act == GUEST - s["current"] * PAGE, "actual %d MiB, balloon %d pages"
                      % (act // MIB, s["current"]))


# ------------------------------------------------------------------ boot E
# make check: not on 6.12, whose kernel the debug kernel runs this on
# (lockdep and KASAN on the timeout and reset paths).
@test("virtio_unresponsive_host", cost=1, check_on=("6.1", "sid", "debug-6.12", "debug-rt-6.12"))
def virtio_unresponsive_host(ctx):
    """A host that never acknowledges: only the balloon stalls, and only for
    host_timeout_ms; user space and rmmod carry on (recover=0: the driver
    stops talking to it).  A host that was only slow: the driver resets the
    device and carries on (recover=1, the default).  QEMU always answers,
    so the fault_noack testing aid stops notifying it."""
    with ctx.vm("noack", mem="1G", balloon={}, share=True) as vm:
        vm.sh("insmod /modules/pvballoon.ko host_timeout_ms=3000 recover=0")
        set_balloon(ctx, vm, GUEST - 64 * MIB)
        tot = vm.meminfo()["MemTotal"]
        with ctx.step("stalls_only_the_balloon"):
            vm.sh("dmesg -c > /dev/null; echo 1 > %s/fault_noack" % PARAMS)
            vm.qmp("balloon", value=GUEST // 2)
            t0 = time.time()
            ctx.check(vm.sh("echo alive").strip() == "alive", "user space stalled")
            r = vm.sh("pvbwrite %s/inflate 1M" % D, timeout=60).strip()
            waited = time.time() - t0
            ctx.note("%s: a guest inflate against a silent host: %s after %.1f s" % (ctx.target.name, r, waited))
            ctx.check(r == "err EIO", "debugfs inflate against a silent host: %s" % r)
            ctx.check(waited < 30, "user space waited %.0f s" % waited)
            ctx.check("did not acknowledge" in vm.sh("dmesg"), "no message about the silent host")
        with ctx.step("rmmod_returns_every_page"):
            t0 = time.time()
            vm.sh("dmesg -c > /dev/null; rmmod pvballoon", timeout=60)
            ctx.check(time.time() - t0 < 30, "rmmod took %.0f s" % (time.time() - t0))
            msg = vm.sh("dmesg")
            ctx.check("host was unresponsive; device reset first" in msg, "no reset on removal: " + msg[-300:])
            ctx.check(vm.meminfo()["MemTotal"] >= tot + 64 * 1024, "MemTotal not restored")
            _, out = touch_most(vm)
            ctx.check("0 bad pages" in out, out)
        with ctx.step("recovers_when_the_host_answers"):
            vm.sh("insmod /modules/pvballoon.ko host_timeout_ms=3000")
            set_balloon(ctx, vm, GUEST - 64 * MIB)
            v0 = vm.vmstat()
            vm.sh("dmesg -c > /dev/null; echo 1 > %s/fault_noack" % PARAMS)
            vm.qmp("balloon", value=GUEST // 2)
            wait_for(ctx, "the host to be declared unresponsive",
                     lambda: "did not acknowledge" in vm.sh("dmesg"), 60)
            # The host answers again: the next reset-and-restart sticks.
            t0 = time.time()
            vm.sh("echo 0 > %s/fault_noack" % PARAMS)
            wait_for(ctx, "the balloon to reach the host's target again",
                     lambda: actual(vm) == GUEST // 2 and vm.stats()["host_broken"] == 0, 90)
            s, v1 = vm.stats(), vm.vmstat()
            ctx.note("%s: recovered %.1f s after the host answered again: %d recoveries, balloon %d MiB, "
                     "oom_kill +%d" % (ctx.target.name, time.time() - t0, s["host_recoveries"],
                                       s["current"] // 256, v1["oom_kill"] - v0["oom_kill"]))
            ctx.check(s["host_recoveries"] >= 1 and s["current"] == (GUEST // 2) // PAGE,
                      "after recovery: %s" % s)
            ctx.check("recovery 1: device reset and restarted" in vm.sh("dmesg"),
                      "dmesg does not tell the recovery")
            set_balloon(ctx, vm, GUEST)           # deflate works again
            ctx.check(vm.stats()["current"] == 0, "deflate after recovery: %s" % vm.stats())
            vm.sh("rmmod pvballoon")
            _, out = touch_most(vm)
            ctx.check("0 bad pages" in out, out)


# The rounds are the core's logic, whose locks lockdep sees in every debug
# group that resizes; the debug kernels run this in the long suite.
@test("virtio_target_rounds", cost=1, targets=("6.12", "debug-6.12", "debug-rt-6.12"),
      check_on=("6.12",))
def virtio_target_rounds(ctx):
    """A resize works in rounds: the host sees actual move as the balloon
    grows, and a new host target ends a resize to the old one at its
    round's end instead of after the whole of it (issue 14, item 7)."""
    big = 640 * MIB
    with ctx.vm("rounds", mem="1G", balloon={}, share=True) as vm:
        load(vm, "pvballoon")
        with ctx.step("actual_follows_the_balloon"):
            seen = set()
            vm.qmp("balloon", value=GUEST - big)
            deadline = time.time() + 180 * ctx.target.slow
            while time.time() < deadline:
                a = actual(vm)
                seen.add(a)
                if a == GUEST - big:
                    break
                time.sleep(0.02)
            between = sorted(GUEST - a for a in seen if GUEST - big < a < GUEST)
            ctx.note("%s: actual seen at %s MiB of balloon on the way to %d MiB"
                     % (ctx.target.name, [b // MIB for b in between], big // MIB))
            ctx.check(actual(vm) == GUEST - big, "the balloon did not reach %d MiB" % (big // MIB))
            ctx.check(len(between) >= 2, "actual jumped from 0 to %d MiB: the host saw no progress"
                      % (big // MIB))
        with ctx.step("new_target_ends_the_old_one"):
            set_balloon(ctx, vm, GUEST)      # from empty, whatever the step before left
            v0 = vm.vmstat()
            vm.qmp("balloon", value=GUEST - big)
            resize_under_way(ctx, vm)
            vm.qmp("balloon", value=GUEST)
            set_balloon(ctx, vm, GUEST)
            wait_for(ctx, "the balloon to empty", lambda: vm.stats()["current"] == 0, 60)
            inflated = (vm.vmstat()["balloon_inflate"] - v0["balloon_inflate"]) * PAGE
            ctx.note("%s: host target %d MiB, then 0 after the first round: %d MiB inflated"
                     % (ctx.target.name, big // MIB, inflated // MIB))
            ctx.check(0 < inflated <= 3 * ROUND, "inflated %d MiB of the abandoned %d MiB target"
                      % (inflated // MIB, big // MIB))
        with ctx.step("bad_write_keeps_host_target"):
            # A deflate of more than the balloon holds is refused and
            # changes nothing: it must not end the host's resize either.
            vm.qmp("balloon", value=GUEST - big)
            resize_under_way(ctx, vm)
            r = vm.sh("pvbwrite %s/deflate 4G" % D).strip()
            ctx.check(r == "err EINVAL", "deflate 4G: %s" % r)
            wait_for(ctx, "the host's target after a refused write",
                     lambda: actual(vm) == GUEST - big, 120)
            set_balloon(ctx, vm, GUEST)
        with ctx.step("suspend_mid_resize"):
            # A suspend that comes mid-resize: the freezer waits for the
            # resize's (freezable) work and gives up after 20 s.  Each
            # round is made to take 6 s more (fault_round_delay_ms, as a
            # slow host would), so the rest of the resize would take 24 s:
            # the PM notifier must stop it at its round's end (before, the
            # suspend failed: "Freezing of tasks failed").  Freeze then
            # empties the balloon with the host told, and resume rebuilds
            # it to the host's target, exactly.
            need_pm_test(vm)
            delay = 6
            vm.sh("echo %d > %s/fault_round_delay_ms" % (delay * 1000, PARAMS))
            vm.qmp("balloon", value=GUEST - big)
            resize_under_way(ctx, vm)
            done = (GUEST - actual(vm)) // ROUND
            s0 = vm.stats()
            # pm_test "devices": freeze, suspend the devices, resume (no
            # wait: suspend.pm_test_delay=0, harness/vm.py).
            t0 = time.time()
            rc, out = vm.run("dmesg -c > /dev/null; echo devices > /sys/power/pm_test; "
                             "echo mem > /sys/power/state; r=$?; echo none > /sys/power/pm_test; "
                             "dmesg | grep -i 'freez' | tail -n 3; exit $r", timeout=120)
            took = time.time() - t0
            # Freeze empties the balloon: what it gave back is what the
            # resize had inflated when it stopped.  Read before resume's
            # rebuild could deflate anything (it only inflates).
            gave = vm.stats()["deflated"] - s0["deflated"]
            vm.sh("echo 0 > %s/fault_round_delay_ms" % PARAMS)
            ctx.note("%s: suspend (pm_test devices) during a %d MiB resize of %d s rounds took %.1f s;"
                     " %d round(s) in when it began, the freeze gave back %d MiB"
                     % (ctx.target.name, big // MIB, delay, took, done, gave * PAGE // MIB))
            ctx.check(rc == 0, "suspend during a resize failed (rc %d): %s" % (rc, out[-400:]))
            # Without the notifier the freezer gives up after 20 s (rc
            # above).  With it, the resize stops at the end of the round
            # under way, or of the next if one began before the notifier
            # ran: a count, not a time, so a loaded machine cannot fail
            # it (the time bound it replaced, 5 + 6 x (rounds + 2) + 10 s,
            # failed at 36 s in a cold make check with a CPU hog).
            ctx.check(done + 2 < big // ROUND, "%d of %d rounds were in before the suspend began: "
                      "the step proves nothing on a host this slow" % (done, big // ROUND))
            ctx.check(0 < gave <= pages((done + 2) * ROUND),
                      "the resize went on during the suspend: %d MiB inflated, %d round(s) in when it began"
                      % (gave * PAGE // MIB, done))
            ctx.check(took < 120 * ctx.target.slow / 2, "suspend during a resize took %.0f s" % took)
            wait_for(ctx, "the host's target after resume", lambda: actual(vm) == GUEST - big,
                     180 * ctx.target.slow)
            ctx.check(vm.stats()["current"] == pages(big), "after resume: %s" % vm.stats())
            set_balloon(ctx, vm, GUEST)


def report_and_wait(ctx, vm, what, fn, timeout=60):
    """Free 300 MiB the guest had touched, so that page reporting has
    blocks to report; wait for @fn."""
    vm.sh("dd if=/dev/zero of=/tmp/big bs=1M count=300 2>/dev/null; rm /tmp/big")
    wait_for(ctx, what, fn, timeout)


@test("virtio_reporting_silent_host", cost=1, targets=("debug-6.12", "debug-rt-6.12", "sid"))
def virtio_reporting_silent_host(ctx):
    """A host that stops serving the reporting queue: the report waits
    host_timeout_ms, the host is declared broken, and removal does not hang
    (the in-tree driver waits without a bound, in D state).  With recovery,
    reporting works again once the host answers."""
    with ctx.vm("report-noack", mem="1G", balloon={"free-page-reporting": "on"}) as vm:
        vm.sh("insmod /modules/pvballoon.ko host_timeout_ms=3000 recover=0")
        with ctx.step("report_times_out"):
            vm.sh("dmesg -c > /dev/null; echo 1 > %s/fault_noack" % PARAMS)
            report_and_wait(ctx, vm, "the report to time out",
                            lambda: "did not acknowledge a free page report" in vm.sh("dmesg"))
            ctx.check(vm.stats()["host_broken"] == 1, "host not declared broken: %s" % vm.stats())
        with ctx.step("rmmod_does_not_hang"):
            t0 = time.time()
            vm.sh("rmmod pvballoon", timeout=60)
            ctx.note("%s: rmmod with a report the host sits on: %.1f s" % (ctx.target.name, time.time() - t0))
            ctx.check(time.time() - t0 < 20, "rmmod took %.0f s" % (time.time() - t0))
            _, out = touch_most(vm)
            ctx.check("0 bad pages" in out, out)
        with ctx.step("reporting_recovers"):
            vm.sh("insmod /modules/pvballoon.ko host_timeout_ms=3000")
            vm.sh("dmesg -c > /dev/null; echo 1 > %s/fault_noack" % PARAMS)
            report_and_wait(ctx, vm, "the report to time out",
                            lambda: "did not acknowledge a free page report" in vm.sh("dmesg"))
            vm.sh("echo 0 > %s/fault_noack" % PARAMS)
            wait_for(ctx, "the recovery", lambda: vm.stats()["host_recoveries"] >= 1 and
                     vm.stats()["host_broken"] == 0, 60)
            r0 = vm.stats()["reported_pages"]
            report_and_wait(ctx, vm, "reports after the recovery",
                            lambda: vm.stats()["reported_pages"] - r0 >= 256 * 64)
            ctx.check(vm.stats()["free_page_reporting"] == "on", "reporting off: %s" % vm.stats())
            set_balloon(ctx, vm, GUEST - 128 * MIB)
            ctx.check(vm.stats()["current"] == pages(128 * MIB), "after recovery: %s" % vm.stats())
            vm.sh("rmmod pvballoon")


# ------------------------------------------------------- hugetlbfs host
HUGETLBFS = "/dev/hugepages"


@contextlib.contextmanager
def host_huge_pages(n):
    """Hold the host's hugetlbfs for one guest at a time, with @n free 2 MiB
    huge pages that no one has reserved; yields False if the host cannot
    provide them (fragmented host memory).  A guest's shared mapping
    reserves its pages when QEMU maps it, after this check: without the
    lock held for the guest's whole life, two guests counted the same free
    pages and one failed to start.  Never shrinks the pool."""
    with open("/tmp/pvballoon-hugetlbfs.lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.ismount(HUGETLBFS):
            os.makedirs(HUGETLBFS, exist_ok=True)
            subprocess.run(["mount", "-t", "hugetlbfs", "none", HUGETLBFS], check=True)
        free = host_meminfo("HugePages_Free") - host_meminfo("HugePages_Rsvd")
        if free < n:
            with open("/proc/sys/vm/nr_hugepages") as f:
                total = int(f.read())
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(total + n - free))
        yield host_meminfo("HugePages_Free") - host_meminfo("HugePages_Rsvd") >= n


def reserve_host_huge_pages(n):
    """host_huge_pages() for a caller that runs one guest at a time."""
    with host_huge_pages(n) as ok:
        return ok


def host_meminfo(key):
    with open("/proc/meminfo") as f:
        for ln in f:
            if ln.startswith(key + ":"):
                return int(ln.split()[1])
    return 0


@test("virtio_hugetlbfs", cost=2, debug=False, check_on=("6.12", "sid"))
def virtio_hugetlbfs(ctx):
    """Guest RAM in a shared file on host hugetlbfs: a host huge page is
    freed only when all 512 of its 4 KiB pages arrive in one buffer.  The
    file's allocated size is this guest's alone, whatever else runs.

    make check compares on 6.12 (the mops backend, as on 6.1) and 7.2 (the
    kernel_balloon backend); 6.1 in the long suite."""
    freed = {}
    # pvballoon_ranges: QEMU's free-page-reporting on, so that whole blocks
    # go as ranges (src/virtio_range.c), which QEMU discards with one
    # fallocate(PUNCH_HOLE) each; the guest's own free page reporting off,
    # so that every hole punched is the balloon's.
    runs = [("pvballoon", "pvballoon", {}, ""), ("virtio_balloon", "virtio_balloon", {}, ""),
            ("pvballoon_ranges", "pvballoon", {"free-page-reporting": "on"}, "free_page_reporting=0")]
    for name, driver, dev, params in runs:
        with ctx.step(name + "/host_huge_pages_freed"), \
                host_huge_pages(GUEST // (2 * MIB) + 8) as ok:
            if not ok:
                raise Skip("the host cannot reserve %d huge pages" % (GUEST // (2 * MIB) + 8))
            path = os.path.join(HUGETLBFS, "pvb-%d-%s-%s" % (os.getpid(), ctx.target.name, name))
            mem = ["-object", "memory-backend-file,id=ram0,size=%d,mem-path=%s,share=on"
                   % (GUEST, path), "-machine", "memory-backend=ram0"]
            try:
                with ctx.vm("hugetlbfs-" + name, intree=True, mem="1G", balloon=dev,
                            extra_qemu=mem) as vm:
                    load(vm, driver, params)
                    touch_most(vm)
                    b0 = os.stat(path).st_blocks * 512
                    set_balloon(ctx, vm, GUEST - 256 * MIB)
                    b1 = os.stat(path).st_blocks * 512
                    freed[name] = (b0 - b1) / (256 * MIB)
                    ctx.note("%s %s on hugetlbfs: inflating 256 MiB freed %d MiB of host huge pages"
                             % (ctx.target.name, name, (b0 - b1) // MIB))
                    set_balloon(ctx, vm, GUEST)
                    _, out = touch_most(vm)
                    ctx.check("0 bad pages" in out, "guest memory after deflate: " + out)
                    if driver == "pvballoon":
                        # A guest that just freed what it touched has free
                        # 2 MiB blocks to spare: whole blocks, 252-256 MiB
                        # freed in our runs.  4 KiB pages in QEMU-sized
                        # buffers free about 218 MiB: not enough.
                        ctx.check(freed[name] >= 0.9, "%s freed %.0f%% of the inflated size"
                                  % (name, 100 * freed[name]))
            finally:
                if os.path.exists(path):
                    os.unlink(path)
    with ctx.step("tells_the_drivers_apart"):
        ctx.check(len(freed) == 3 and freed["pvballoon"] >= freed["virtio_balloon"] + 0.25,
                  "pvballoon freed %s, in-tree %s" % (freed.get("pvballoon"), freed.get("virtio_balloon")))


# ------------------------------------------------------ buffer shapes
# What QEMU received, from its own trace events rather than the driver's
# counters: one virtqueue_pop per element (with its number of descriptors),
# then one virtio_balloon_handle_output per PFN of it.
TRACE_POP = re.compile(r"virtqueue_pop vq (\S+) elem \S+ in_num (\d+) out_num (\d+)")
TRACE_PFN = re.compile(r"virtio_balloon_handle_output ")
SHAPE_MIB = 512


def trace_elements(path):
    """[vq, descriptors, PFNs] of every element QEMU popped that carried
    PFNs (inflate, deflate), in order."""
    elems = []
    with open(path, errors="replace") as f:
        for ln in f:
            m = TRACE_POP.search(ln)
            if m:
                elems.append([m.group(1), int(m.group(3)), 0])
            elif TRACE_PFN.search(ln) and elems:
                elems[-1][2] += 1
    return [e for e in elems if e[2]]


def timed_balloon(vm, size, timeout):
    """QMP balloon to @size; seconds until query-balloon says so, polled
    finely enough to time a sub-second inflate."""
    t0 = time.time()
    vm.qmp("balloon", value=size)
    while actual(vm) != size:
        if time.time() - t0 > timeout:
            raise TestFailure("balloon stuck at %d MiB (target %d MiB)"
                              % (actual(vm) // MIB, size // MIB))
        time.sleep(0.005)
    return time.time() - t0


def shapes_run(ctx, profile):
    """A host-driven inflate and deflate of SHAPE_MIB with host=@profile,
    traced.  Returns (elements, host RSS freed fraction)."""
    trace = os.path.join(ctx.runner.results, ctx.target.name, "shapes-%s.trace" % profile)
    os.makedirs(os.path.dirname(trace), exist_ok=True)
    if os.path.exists(trace):
        os.unlink(trace)
    extra = ["-trace", "enable=virtqueue_pop", "-trace", "enable=virtio_balloon_handle_output",
             "-D", trace]
    with ctx.vm("shapes-" + profile, mem="1G", balloon={}, extra_qemu=extra) as vm:
        load(vm, "pvballoon", "host=" + profile)
        s = vm.stats()
        want = "qemu" if profile in ("auto", "qemu") else "generic"
        ctx.check(s.get("host_profile") == want, "host=%s: stats say host_profile %s"
                  % (profile, s.get("host_profile")))
        touch_most(vm)
        rss0, v0 = vm.qemu_rss_kib(), vm.vmstat()
        timed_balloon(vm, GUEST - SHAPE_MIB * MIB, 120 * ctx.target.slow)
        rss1, v1 = vm.qemu_rss_kib(), vm.vmstat()
        timed_balloon(vm, GUEST, 120 * ctx.target.slow)
        v2 = vm.vmstat()
        s = vm.stats()
    want = pages(SHAPE_MIB * MIB)
    ctx.check(v1["balloon_inflate"] - v0["balloon_inflate"] == want and
              v2["balloon_deflate"] - v1["balloon_deflate"] == want,
              "vmstat moved by +%d/-%d, want %d" % (v1["balloon_inflate"] - v0["balloon_inflate"],
                                                    v2["balloon_deflate"] - v1["balloon_deflate"], want))
    freed = (rss0 - rss1) * 1024 / (SHAPE_MIB * MIB)
    elems = trace_elements(trace)
    ctx.check(elems, "no balloon element in QEMU's trace %s" % trace)
    ctx.check(s["largest_buffer_pfns"] == max(e[2] for e in elems),
              "stats largest_buffer_pfns %d, QEMU saw %d" % (s["largest_buffer_pfns"],
                                                             max(e[2] for e in elems)))
    ctx.note("%s host=%s: %d elements, %d-%d PFNs and %d descriptor(s) each; host RSS -%.0f%%"
             % (ctx.target.name, profile, len(elems), min(e[2] for e in elems),
                max(e[2] for e in elems), max(e[1] for e in elems), 100 * freed))
    ctx.check(freed >= 0.9, "host RSS fell by %.0f%% of the inflated size" % (100 * freed))
    return elems, freed


# Timed rounds of SHAPE_MIB each.  Tried in make check: 2 rounds of
# 256 MiB (half the time) failed once beside other guests, at 0.74x and
# 0.75x, where three pairs of 512 MiB have passed every run (1.02-1.46x
# on an idle machine, 0.86-1.03x beside other guests).
PACE_ROUNDS = 3
PACE_MIN_RATIO = 0.85        # generic's inflate speed against qemu's, at least
# make check compares the pace on virtio-mmio only: Firecracker's
# transport, and the host whose 256-PFN limit the generic profile obeys.
# The driver's buffer code is the same on virtio-pci (cloud-hypervisor's
# transport), whose shapes make check still checks from QEMU's trace;
# the comparison there (65 s of a guest) is the long suite's.
PACE_CHECK_ON = ("6.12-mmio",)


def pace_run(ctx):
    """Host-driven inflate throughput of the generic and qemu profiles,
    untraced, in one guest, rounds taken in turn so that both see the same
    host load: {profile: [MiB/s per round]}.  A first, untimed round
    takes the host from backing every page to backing none (its THPs
    split): every timed round then finds what the one before left."""
    speed = {"generic": [], "qemu": []}
    with ctx.vm("pace", mem="1G", balloon={}, share=True) as vm:
        for rnd in range(PACE_ROUNDS + 1):
            for profile in speed:
                load(vm, "pvballoon", "host=" + profile)
                secs = timed_balloon(vm, GUEST - SHAPE_MIB * MIB, 120 * ctx.target.slow)
                timed_balloon(vm, GUEST, 120 * ctx.target.slow)
                vm.sh("rmmod pvballoon")
                if rnd:
                    speed[profile].append(SHAPE_MIB / secs)
                else:
                    break
    return speed


def generic_keeps_pace(ctx):
    """The generic profile's inflate against the qemu profile's, in
    pairs of rounds (pace_run())."""
    with ctx.step("generic_keeps_pace"):
        speed = pace_run(ctx)
        best = {p: max(v) for p, v in speed.items()}
        # Each generic round against the qemu round right after it: the
        # two saw the same host load.  A machine busy with other work
        # (CI's other guests) moved single rounds by 40% (255-414 MiB/s
        # for qemu in one run), so the best pair decides, not the best
        # round of each, which may come from different moments.
        pairs = [g / q for g, q in zip(speed["generic"], speed["qemu"])]
        ctx.note("%s inflate of %d MiB: generic %s MiB/s, qemu %s MiB/s; pairs %s; best %.2fx"
                 % (ctx.target.name, SHAPE_MIB, "/".join("%.0f" % v for v in speed["generic"]),
                    "/".join("%.0f" % v for v in speed["qemu"]),
                    "/".join("%.2f" % r for r in pairs), best["generic"] / best["qemu"]))
        ctx.check(max(pairs) >= PACE_MIN_RATIO,
                  "generic profile below %.2fx of qemu's in every pair of rounds: %s"
                  % (PACE_MIN_RATIO, ["%.2f" % r for r in pairs]))


@test("virtio_buffer_shapes", cost=2, debug=False, targets=("6.12", "6.12-mmio"))
def virtio_buffer_shapes(ctx):
    """The generic profile sends what every host parses - one descriptor
    of at most 256 PFNs per element - and keeps pace with the qemu
    profile (make check: on virtio-mmio, PACE_CHECK_ON); auto on QEMU
    keeps whole 2 MiB blocks in big elements."""
    with ctx.step("generic/one_descriptor_of_256_pfns"):
        elems, _ = shapes_run(ctx, "generic")
        bad = [e for e in elems if e[1] != 1 or e[2] > PORTABLE_PFNS]
        ctx.check(not bad, "%d of %d elements break the portable shape, e.g. %d descriptors of "
                  "%d PFNs" % (len(bad), len(elems), bad[0][1] if bad else 0, bad[0][2] if bad else 0))
    with ctx.step("auto/qemu_buffers"):
        elems, _ = shapes_run(ctx, "auto")
        ctx.check(max(e[2] for e in elems) > PORTABLE_PFNS,
                  "auto on QEMU sent no element of more than %d PFNs" % PORTABLE_PFNS)
        ctx.check(all(e[1] == 1 for e in elems), "auto sent chained descriptors")
    if ctx.runner.long_suite or ctx.target.name in PACE_CHECK_ON:
        generic_keeps_pace(ctx)
    if ctx.target.spec.get("balloon_device", "virtio-balloon-pci") != "virtio-balloon-pci":
        return
    with ctx.step("modern_device_identified"):
        with ctx.vm("modern", mem="512M", balloon={"disable-legacy": "on"}) as vm:
            load(vm, "pvballoon")
            s, msg = vm.stats(), vm.sh("dmesg")
            ctx.check(s.get("host_profile") == "qemu", "modern virtio-pci: host_profile %s"
                      % s.get("host_profile"))
            ctx.check("subsystem 1af4:1100" in msg, "dmesg does not say why: %s" % msg[-300:])
