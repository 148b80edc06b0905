# SPDX-License-Identifier: GPL-2.0
"""The soak: everything that happens to a balloon in production, at once,
on the debug kernel (KASAN, lockdep, DEBUG_VM, debug_pagealloc), phase
after phase, with the books checked at the end of every phase.

Running through each whole phase, in the guest: debugfs inflate, deflate
and target writers, compaction, the migration switch, stats and vmstat
polling, and a walk of the page list under the balloon lock every few
seconds; on the host: a QMP target that flaps every 1-2 s.  Into each
phase, in turn: the device hot-unplugged and plugged back (QMP
device_del / device_add), rmmod and insmod (the debugfs writers and
readers pause for it: an open file pins the module), and an allocator
that pushes the guest into OOM against an inflated deflate-on-oom
balloon (the writers and the host's flapping wait for that one, so that
the memory it needs is the balloon's; compaction and polling go on).

After each phase, with everything stopped and the balloon emptied: the
list walk agrees with the stats and finds no bad page; /proc/vmstat's
balloon deltas since the module was loaded equal the stats file's
inflated, deflated and migrated; no OOM kill; MemTotal and free memory
back to the phase-0 baseline within 1% (plus the KASAN quarantine's
slack); no splat in the console.

make soak runs it for PVB_SOAK_SECONDS (1800) on the debug kernel, with
1 GiB and phases of PHASE seconds; make check runs one phase of
SLICE_PHASE seconds with 512 MiB on 6.12.
"""
import os
import random
import threading
import time

from harness.errors import TestFailure
from harness.runner import test, wait_for
from harness.vocab import DEBUGFS as D, MIB, PAGES_PER_MIB, pages

SLICE = 40                       # make check's slice, seconds: one phase
PHASE = 60                       # one phase of make soak, seconds (the checks come on top)
SLICE_PHASE = 40                 # and of the slice
BALLOON = "/machine/peripheral/balloon0"
DEVICE = {"driver": "virtio-balloon-pci", "id": "balloon0", "deflate-on-oom": "on"}

# The guest's side.  Every loop pauses while /tmp/pause exists and takes
# full paths: the module (and its debugfs directory) comes and goes.
LOOPS = r"""
D=/sys/kernel/debug/pvballoon
rm -f /tmp/paused.*
w() { while :; do
	if [ -e /tmp/pause ]; then touch /tmp/paused.$1; usleep 100000;
	else rm -f /tmp/paused.$1; eval "$2"; fi
done >/dev/null 2>&1; }
w inflate 'echo 4096 > $D/inflate; echo 24M > $D/inflate' &
w deflate 'echo 8192 > $D/deflate; usleep 50000' &
w target 'echo 12000 > $D/target; echo 3000 > $D/target; usleep 300000' &
w migration 'echo 0 > $D/migration; usleep 200000; echo 1 > $D/migration; usleep 800000' &
w stats 'cat $D/stats /sys/kernel/pvballoon/*; usleep 100000' &
(while :; do echo 1 > /proc/sys/vm/compact_memory; usleep 200000; done) >/dev/null 2>&1 &
(while :; do cat /proc/vmstat /proc/meminfo /proc/zoneinfo >/dev/null; usleep 100000; done) &
jobs -p > /tmp/soak.pid
"""
PAUSABLE = 5                     # the w loops above


class Host:
    """The host's side: a QMP target that flaps, on its own thread; all
    QMP goes through this lock."""

    def __init__(self, vm, guest):
        self.vm = vm
        self.guest = guest               # bytes of guest memory
        self.lock = threading.Lock()
        self.flapping = threading.Event()
        self.done = threading.Event()
        self.flaps = self.refused = 0
        self.rng = random.Random(14)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def qmp(self, cmd, **args):
        with self.lock:
            return self.vm.qmp(cmd, **args)

    def _run(self):
        while not self.done.is_set():
            if self.flapping.is_set():
                size = self.guest - self.rng.randrange(0, self.guest // 2 // MIB) * MIB
                try:
                    self.qmp("balloon", value=size)
                    self.flaps += 1
                except TestFailure:
                    self.refused += 1          # no device at the moment
            time.sleep(1 + self.rng.random())

    def stop(self):
        self.done.set()
        self.thread.join()

    def actual(self):
        return self.qmp("query-balloon")["actual"]


def walk(vm, where):
    """One walk of the list under the balloon lock (debugfs verify)."""
    kv = vm.read_kv(D + "/verify")
    if kv["bad"] or kv["walked"] != kv["listed"]:
        raise TestFailure("%s: list walk %d, listed %d, bad %d"
                          % (where, kv["walked"], kv["listed"], kv["bad"]))


def pause(ctx, vm):
    """Pause the debugfs writers and readers, and wait until each has
    finished the write it was in (a target write converges first)."""
    # A loop counts once it has seen the pause after this point.
    vm.sh("touch /tmp/pause; rm -f /tmp/paused.*")
    wait_for(ctx, "the writers to pause",
         lambda: int(vm.sh("ls /tmp/paused.* 2>/dev/null | wc -l")) == PAUSABLE, 120)


def resume(vm):
    vm.sh("rm -f /tmp/pause")


def bound(vm):
    return "frontend: virtio" in vm.sh("cat %s/stats 2>/dev/null || true" % D)


def replug(ctx, vm, host):
    """device_del with the balloon in use, then device_add: pvballoon lets
    the device go (returning what the host held) and takes the new one."""
    host.qmp("device_del", id="balloon0")
    wait_for(ctx, "the guest to release the balloon device",
         lambda: not vm.sh("grep -l 0x0005 /sys/bus/virtio/devices/*/device 2>/dev/null || true").strip(), 60)
    # QEMU lets the ID go when the guest's ACPI eject completes
    # (DEVICE_DELETED), a moment after the guest has let the device go.
    def added():
        try:
            host.qmp("device_add", **DEVICE)
            return True
        except TestFailure as e:
            if "Duplicate device ID" not in str(e):
                raise
            return False
    wait_for(ctx, "QEMU to delete the old device", added, 60)
    wait_for(ctx, "pvballoon to drive the new device", lambda: bound(vm), 60)


def reload(ctx, vm):
    """rmmod, insmod, with compaction running and the host flapping.  An
    open debugfs file pins the module (rmmod: EAGAIN), and with five
    writers and readers one almost always is: they pause for it (a
    write in flight finishes first).  Returns /proc/vmstat as the new
    module found it."""
    pause(ctx, vm)
    vm.sh("n=0; until rmmod pvballoon 2>/dev/null; do "
          "n=$((n+1)); [ $n -lt 600 ] || exit 1; usleep 50000; done", timeout=300 * ctx.target.slow)
    v = vm.vmstat()
    vm.sh("insmod /modules/pvballoon.ko")
    resume(vm)
    wait_for(ctx, "pvballoon to drive the device after insmod", lambda: bound(vm), 60)
    return v


def oom_push(ctx, vm, host):
    """An allocation an eighth of the guest beyond free memory against a
    deflate-on-oom balloon of a quarter: the balloon must give it back, no
    OOM kill."""
    quarter = host.guest // 4
    with host.lock:
        host.flapping.clear()          # a flap in flight lands first
    pause(ctx, vm)
    host.qmp("balloon", value=host.guest - quarter)
    wait_for(ctx, "the host's balloon", lambda: host.actual() == host.guest - quarter, 120)
    if vm.stats()["current"] != pages(quarter):
        raise TestFailure("soak: the balloon holds %d pages, the host asked for %d"
                          % (vm.stats()["current"], pages(quarter)))
    k0, free = vm.vmstat()["oom_kill"], vm.free_pages()
    want = free // PAGES_PER_MIB + host.guest // 8 // MIB
    rc, out = vm.run("memhog %d" % want, timeout=300 * ctx.target.slow)
    if rc or "0 bad pages" not in out:
        raise TestFailure("soak: memhog %d MiB failed (%d): %s" % (want, rc, out[-200:]))
    if vm.vmstat()["oom_kill"] != k0:
        raise TestFailure("soak: the OOM killer ran although the balloon held a quarter of the guest")
    gave = (host.actual() - (host.guest - quarter)) // MIB
    resume(vm)
    host.flapping.set()
    return want, gave


def books(ctx, vm, host, v_load, base, phase):
    """Everything stopped, the balloon emptied: the checks of one phase."""
    host.flapping.clear()
    vm.sh("kill $(cat /tmp/soak.pid); for p in $(cat /tmp/soak.pid); do "
          "while [ -e /proc/$p ]; do usleep 100000; done; done; rm -f /tmp/pause", timeout=300)
    time.sleep(2)
    host.qmp("balloon", value=host.guest)
    vm.sh("echo 0 > %s/target; echo all > %s/deflate" % (D, D), timeout=300)
    wait_for(ctx, "the host to see an empty balloon", lambda: host.actual() == host.guest, 120)
    walk(vm, "phase %d" % phase)
    v, s = vm.quiesced_counters()
    where = "phase %d" % phase
    ctx.check(s["current"] == 0 and s["listed"] == 0 and s["isolated"] == 0, "%s: not empty: %s" % (where, s))
    for key, stat in (("balloon_inflate", "inflated"), ("balloon_deflate", "deflated"),
                      ("balloon_migrate", "migrated")):
        ctx.check(v[key] - v_load[key] == s[stat], "%s: vmstat %s +%d, stats %s %d"
                  % (where, key, v[key] - v_load[key], stat, s[stat]))
    ctx.check(v["oom_kill"] == base["oom_kill"], "%s: %d OOM kills" % (where, v["oom_kill"] - base["oom_kill"]))
    m, f = vm.meminfo(), vm.free_pages()
    ctx.check(abs(m["MemTotal"] - base["MemTotal"]) <= base["MemTotal"] // 100,
              "%s: MemTotal %d KiB, was %d" % (where, m["MemTotal"], base["MemTotal"]))
    ctx.check(vm.same_free(base["free"], f), "%s: free %d MiB, was %d MiB"
              % (where, f // PAGES_PER_MIB, base["free"] // PAGES_PER_MIB))
    vm.check_splat(phase=where)
    return s


# make check runs the slice on 6.12: on the debug kernel under TCG one
# phase took 11 minutes beside the other guests.  make soak runs the long
# suite's version of this test on the debug kernel (tests/run --long).
@test("soak", cost=3, targets=("6.12", "debug-6.12"), debug=False)
def soak(ctx):
    secs = int(os.environ.get("PVB_SOAK_SECONDS", SLICE))
    # The slice: a smaller guest and a shorter phase (what the debug
    # kernel costs under TCG is mostly touching memory).
    mib, phase_secs = (1024, PHASE) if secs > SLICE else (512, SLICE_PHASE)
    append = "debug_pagealloc=on" if ctx.target.debug else ""
    with ctx.vm("soak", mem="%dM" % mib, smp=2, append=append, balloon={"deflate-on-oom": "on"}) as vm:
        host = Host(vm, mib * MIB)
        try:
            with ctx.step("phases"):
                v_load = vm.vmstat()
                vm.sh("insmod /modules/pvballoon.ko")
                wait_for(ctx, "pvballoon to drive the device", lambda: bound(vm), 60)
                m = vm.meminfo()
                base = {"MemTotal": m["MemTotal"], "free": vm.free_pages(), "oom_kill": v_load["oom_kill"]}
                end = time.time() + secs
                phase = 0
                totals = {"inflated": 0, "deflated": 0, "migrated": 0, "migrate_eagain": 0,
                          "walks": 0, "replugs": 0, "reloads": 0, "ooms": 0}
                while phase == 0 or time.time() < end:
                    t0 = time.time()
                    vm.sh(LOOPS)
                    host.flapping.set()
                    events = ["replug", "reload", "oom"]
                    while time.time() - t0 < phase_secs or events:
                        if events and time.time() - t0 > (4 - len(events)) * phase_secs / 4:
                            ev = events.pop(0)
                            if ev == "replug":
                                replug(ctx, vm, host)
                                totals["replugs"] += 1
                            elif ev == "reload":
                                # The figures of the module that goes.
                                s = vm.stats()
                                for k in ("inflated", "deflated", "migrated", "migrate_eagain"):
                                    totals[k] += s[k]
                                v_load = reload(ctx, vm)
                                totals["reloads"] += 1
                            else:
                                want, gave = oom_push(ctx, vm, host)
                                totals["ooms"] += 1
                        walk(vm, "phase %d" % phase)
                        totals["walks"] += 1
                        time.sleep(2)
                    s = books(ctx, vm, host, v_load, base, phase)
                    phase += 1
                for k in ("inflated", "deflated", "migrated", "migrate_eagain"):
                    totals[k] += s[k]
                ctx.note("soak %d s, %d phases: inflated %d, deflated %d, migrated %d (eagain %d) pages; "
                         "%d list walks, %d replugs, %d reloads, %d OOM pushes (last: memhog %d MiB, "
                         "balloon gave %d MiB); host flapped %d times (%d refused: no device)"
                         % (secs, phase, totals["inflated"], totals["deflated"], totals["migrated"],
                            totals["migrate_eagain"], totals["walks"], totals["replugs"], totals["reloads"],
                            totals["ooms"], want, gave, host.flaps, host.refused))
                ctx.check(totals["migrated"] > 0, "compaction never migrated a balloon page")
                ctx.check(host.flaps > phase, "the host's target hardly flapped: %d" % host.flaps)
        finally:
            host.stop()
