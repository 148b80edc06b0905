# SPDX-License-Identifier: GPL-2.0
"""Guests shared between test groups (issue 17: share boots between checks).

A boot costs 5-15 s of a distribution kernel under TCG and 15-30 s of the
debug kernel, beside the other guests of make check; most groups need the
same plain guest (1 GiB, a balloon device, nothing loaded).  A group opts in
with ctx.vm(..., share=True).  When it ends with every step passed, its
guest is put back here if, and only if, it can be made as it was at boot:

  - no splat in its console since it was handed out (the group that had it
    fails otherwise, as at a normal stop), and on the debug kernel a clean
    kmemleak scan;
  - pvballoon and virtio_balloon unload, and every user process but init
    and the command loop is gone (a helper left running, a loop);
  - the sysctls that tests change are back at their defaults, /tmp is
    empty, caches are dropped;
  - the balloon device is still there (virtio_takeover, which ends with
    device_del, takes a shared guest but cannot hand its own on), its
    target is 0 and stats polling is off.

Anything else - a failed step, an unload that fails, a guest that does not
answer - and the guest is stopped as before.  The next group with the same
configuration (target, memory, vCPUs, command line, device options, QEMU
arguments, initramfs) gets it; its results directory holds a SHARED file
naming the directory with the guest's logs.  One idle guest per
configuration, paused (QMP stop) while it waits; a target's idle guests
stop when its last group has run.
"""
import os
import threading

from .errors import TestFailure

# What tests change and a fresh guest has: put back before reuse.
RESET = r"""
# This script's pid and its parent's, the command loop (tests/guest/init);
# $$ is init's in a subshell.
read -r self _ _ loop _ < /proc/self/stat
for p in /proc/[0-9]*; do
	p=${p#/proc/}
	case "$p" in 1|"$self"|"$loop") continue ;; esac
	[ ! -e /proc/$p/exe ] || kill -9 "$p" 2>/dev/null
done
sleep 0.3
rmmod pvballoon 2>/dev/null; rmmod virtio_balloon 2>/dev/null
if grep -qE '^(pvballoon|virtio_balloon) ' /proc/modules; then echo "module left"; exit 1; fi
echo 0 > /proc/sys/vm/overcommit_memory
echo 0 > /proc/sys/vm/nr_hugepages
[ ! -w /sys/power/pm_test ] || echo none > /sys/power/pm_test
for f in /tmp/* /tmp/.[!.]*; do
	case "$f" in /tmp/.cmd|/tmp/.out|"/tmp/*"|"/tmp/.[!.]*") ;; *) rm -rf "$f" ;; esac
done
sync; echo 3 > /proc/sys/vm/drop_caches
echo reset-done
"""


class Pool:
    def __init__(self):
        self.lock = threading.Lock()
        self.idle = {}              # key -> VM
        self.handed = 0             # boots saved, for the summary

    @staticmethod
    def key(target, kw):
        return (target.name, kw.get("mem", "1G"), kw.get("smp", 1), kw.get("append", ""),
                repr(sorted((kw.get("balloon") or {}).items())) if kw.get("balloon") is not None else None,
                tuple(kw.get("extra_qemu", ())), kw.get("initrd"))

    def get(self, key):
        with self.lock:
            vm = self.idle.pop(key, None)
            if vm:
                self.handed += 1
            return vm

    def put_back(self, vm, ctx):
        """@vm's group is done with it: keep it for the next group if it can
        be reset (True), or leave it to the caller to stop (False).  Raises
        TestFailure for a splat or a leak, as stop() would."""
        if any(r[1] == "fail" for r in ctx.results):
            return False
        if not vm.reset_for_reuse():
            return False
        with self.lock:
            if vm.pool_key in self.idle:
                return False
            # Paused while it waits: an idle guest under TCG still takes
            # about 5% of a core (two strays: 5.5 min of CPU in 50 min),
            # and with ten of them idle a make check that takes 19 min had
            # half its results after 18.  QEMU's virtual clock stops with
            # the guest, so it sees no jump.
            try:
                vm.qmp("stop")
            except (TestFailure, OSError):
                return False
            self.idle[vm.pool_key] = vm
        return True

    def drain(self, target_name=None):
        """Stop the idle guests (of one target): [(vm, error)] for those
        whose stop found something."""
        with self.lock:
            keys = [k for k in self.idle if target_name is None or k[0] == target_name]
            vms = [self.idle.pop(k) for k in keys]
        errors = []
        for vm in vms:
            try:
                vm.qmp("cont")          # stop() asks the guest for dmesg
            except (TestFailure, OSError):
                pass                    # stop() kills it all the same
            try:
                vm.stop()
            except (TestFailure, OSError) as e:
                errors.append((vm, str(e)))
        return errors


def note_shared(vm, results_dir):
    """The group's own directory says where the shared guest's logs are."""
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "SHARED"), "w") as f:
        f.write("this group ran on a shared guest; its logs: %s\n" % vm.dir)
