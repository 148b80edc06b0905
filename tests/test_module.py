# SPDX-License-Identifier: GPL-2.0
"""Module lifecycle, parameters, build and DKMS (issue: foundation)."""
import glob
import os
import re
import shutil
import subprocess

from harness.errors import Skip
from harness.runner import test
from harness.targets import copy_tree, dkms_lock, pvb_version, sh
from harness.vocab import DEBUGFS, PARAMS

FILES = {"inflate", "deflate", "target", "stats", "migration", "verify"}


@test("lifecycle", cost=1)
def lifecycle(ctx):
    ver = pvb_version(ctx.target.top)
    with ctx.vm("load", mem="1G", share=True) as vm:
        with ctx.step("load_unload_10x"):
            for i in range(10):
                vm.sh("insmod /modules/pvballoon.ko")
                present = set(vm.sh("ls %s" % DEBUGFS).split())
                ctx.check(present == FILES, "load %d: debugfs has %s, want %s"
                          % (i, sorted(present), sorted(FILES)))
                vm.sh("rmmod pvballoon")
                rc, _ = vm.run("[ -e %s ]" % DEBUGFS)
                ctx.check(rc != 0, "unload %d: %s is still there" % (i, DEBUGFS))
            ctx.check("pvballoon" not in vm.sh("cat /proc/modules"), "module still listed")
            log = vm.sh("dmesg")
            loads = re.findall(r"pvballoon: pvballoon (\S+) loaded: migration backend (\S+),", log)
            ctx.check(len(loads) == 10, "want 10 load lines in dmesg, found %d" % len(loads))
            ctx.check(all(v == ver for v, _ in loads), "version in dmesg %s != %s" % (loads[0][0], ver))
            ctx.note("%s: backend %s" % (ctx.target.name, loads[0][1]))
            unloads = log.count("pvballoon %s unloaded" % ver)
            ctx.check(unloads == 10, "want 10 unload lines, found %d" % unloads)
        with ctx.step("bad_parameter"):
            for param, expect in (("oom_deflate_pages=0", "invalid oom_deflate_pages=0"),
                                  ("oom_deflate_pages=1x", "invalid oom_deflate_pages=1x"),
                                  ("oom_deflate_pages=999999999", "invalid oom_deflate_pages"),
                                  ("movable=maybe", "movable")):
                vm.sh("dmesg -c > /dev/null")
                rc, out = vm.run("insmod /modules/pvballoon.ko %s" % param)
                ctx.check(rc != 0, "insmod with %s succeeded" % param)
                msg = vm.sh("dmesg")
                ctx.check(expect in msg, "no clear message for %s; dmesg: %s" % (param, msg[-300:]))
                rc, _ = vm.run("[ -e %s ]" % DEBUGFS)
                ctx.check(rc != 0, "debugfs directory exists after a refused load (%s)" % param)
            # And a good value is taken.
            vm.sh("insmod /modules/pvballoon.ko oom_deflate_pages=512")
            got = vm.sh("cat %s/oom_deflate_pages" % PARAMS)
            ctx.check(got.strip() == "512", "oom_deflate_pages reads %r" % got)
            vm.sh("rmmod pvballoon")


@test("command_channel", cost=0, targets=("6.12",))
def command_channel(ctx):
    """The harness's own channel (tests/guest/init): a background process
    that dies while the guest reads the next command must not eat part of
    it.  It did when PID 1 read the commands (a 120 s timeout after a kill
    in the stress test; this loop hung after 117, 307 and 365 commands in
    three runs): the orphan's SIGCHLD restarted ash's read and dropped what
    it had read."""
    with ctx.vm("load", mem="1G", share=True) as vm:
        with ctx.step("orphan_exits_during_read"):
            pad = "#" + "x" * 200 + "\n"
            for i in range(400):
                # Three that exit 0.5-40 ms later: some while the next
                # line arrives.
                vm.sh(" ".join("usleep %d &" % (1000 * ((i + k * 13) % 40) + 500)
                                for k in range(3)) + " :", timeout=30)
                out = vm.sh(pad + "echo ok%d" % i, timeout=30)
                ctx.check(out.strip() == "ok%d" % i, "command %d answered %r" % (i, out[-100:]))


# Which pvballoon headers each layer may include: dependencies point one way
# (front-ends -> core -> migration backend -> compat).  Files not listed
# here (main.c) may include anything.
LAYERS = [
    (r"core\w*\.c|migrate_\w+\.c", {"pvb_core.h", "pvb_core_pages.h", "pvb_migrate.h",
                                                  "pvb_compat.h", "pvb_conftest.h"}),
    (r"control\.c|debugfs\.c|sysfs\.c", {"pvb_core.h", "pvb_control.h", "pvb_debugfs.h", "pvb_sysfs.h",
                                         "pvb_compat.h", "pvb_conftest.h", "pvb_migrate.h"}),
    (r"virtio\w*\.c", {"pvb_core.h", "pvb_virtio.h", "pvb_virtio_dev.h", "pvb_compat.h",
                       "pvb_compat_virtio.h", "pvb_conftest.h", "pvb_migrate.h"}),
]
MAX_SOURCE_LINES = 450


def layering_faults(top):
    """Includes that run against the layers, and source files grown past a sitting's read."""
    faults = []
    for path in sorted(glob.glob(os.path.join(top, "src", "*.c"))):
        name = os.path.basename(path)
        text = open(path).read()
        if text.count("\n") > MAX_SOURCE_LINES:
            faults.append("%s has %d lines (> %d)" % (name, text.count("\n"), MAX_SOURCE_LINES))
        own = re.findall(r'^#include "([^"]+)"', text, re.M)
        for pattern, allowed in LAYERS:
            if re.fullmatch(pattern, name):
                faults += ["%s includes %s" % (name, h) for h in own if h not in allowed]
    return faults


@test("build", cost=1)
def build(ctx):
    """W=1 build free of warnings, and make clean leaves the tree as it was."""
    t = ctx.target
    with ctx.step("w1_no_warnings"):
        src = os.path.join(t.build_dir, "w1")
        copy_tree(t.top, src)
        before = sorted(os.path.relpath(p, src) for p in glob.glob(src + "/**", recursive=True))
        if getattr(t, "w1_tree", None):
            # prepare built the guests' module with W=1 (Target.build_module):
            # its output is checked, and a copy of its tree is cleaned below.
            shutil.rmtree(src)
            shutil.copytree(t.w1_tree, src, symlinks=True)
            out = t.w1_output
        else:
            out = t.make(src, "W=1", "-j%d" % (os.cpu_count() or 2))
        warnings = [ln for ln in out.splitlines() if "warning:" in ln or "error:" in ln]
        ctx.check(not warnings, "compiler warnings: %s" % warnings[:5])
        ctx.check(os.path.exists(os.path.join(src, "pvballoon.ko")), "no pvballoon.ko")
        ctx.check(os.path.exists(os.path.join(src, "generated", "pvb_conftest.h")),
                  "no generated/pvb_conftest.h")
    with ctx.step("make_clean"):
        t.make(src, "clean")
        after = sorted(os.path.relpath(p, src) for p in glob.glob(src + "/**", recursive=True))
        extra = sorted(set(after) - set(before))
        ctx.check(not extra, "make clean left %s" % extra[:10])
    with ctx.step("layers"):
        ctx.check(not layering_faults(t.top), "layering: %s" % layering_faults(t.top)[:5])
    if not t.debug:
        return
    # The debug kernel's source tree carries the kernel's own style tools.
    scripts = os.path.join(os.path.dirname(t.kdir), "src", "scripts")
    files = sorted(glob.glob(os.path.join(t.top, "src", "*.c")) +
                   glob.glob(os.path.join(t.top, "include", "*.h")))
    with ctx.step("checkpatch_clean"):
        r = subprocess.run(["perl", os.path.join(scripts, "checkpatch.pl"), "--no-tree", "--terse",
                            "--show-types", "-f"] + files, capture_output=True, text=True)
        bad = [ln for ln in r.stdout.splitlines() if re.search(r": (ERROR|WARNING|CHECK):", ln)]
        ctx.check(not bad, "checkpatch: %d findings, e.g. %s" % (len(bad), bad[:3]))
    with ctx.step("kernel_doc_clean"):
        r = subprocess.run(["perl", os.path.join(scripts, "kernel-doc"), "-none", "-Wall"] + files,
                           capture_output=True, text=True)
        bad = [ln for ln in (r.stdout + r.stderr).splitlines() if "warning" in ln or "error" in ln]
        ctx.check(r.returncode == 0 and not bad, "kernel-doc -Wall: %d warnings, e.g. %s" % (len(bad), bad[:3]))


@test("dkms", cost=0)
def dkms(ctx):
    t = ctx.target
    if not t.dkms:
        raise Skip("the DKMS path is tested on the Debian kernels; this kernel has no "
                   "/lib/modules tree for dkms install")
    ver = pvb_version(t.top)
    with ctx.step("installed"):
        st = t.cmd(["dkms", "status", "pvballoon/" + ver, "-k", t.release])
        ctx.check("installed" in st, "dkms status: %r" % st)
        mods = glob.glob(t.root + "/lib/modules/%s/updates/dkms/pvballoon.ko*" % t.release)
        ctx.check(mods, "dkms install put no module under /lib/modules/%s/updates/dkms" % t.release)
        info = t.cmd(["modinfo", "-F", "vermagic", mods[0][len(t.root):]])
        ctx.check(info.split()[0] == t.release, "vermagic %s != %s" % (info.split()[0], t.release))
        dep = t.cmd(["modinfo", "-k", t.release, "-n", "pvballoon"]).strip()
        ctx.check("updates/dkms" in dep, "depmod does not resolve pvballoon to the dkms module: %s" % dep)
        ctx.check(t.module and os.path.exists(t.module), "the guests' module did not come from dkms")
    with ctx.step("untested_arch_refused"):
        # dkms.conf's BUILD_EXCLUSIVE_ARCH names what the suite boots
        # (x86_64, aarch64): for any other architecture dkms refuses with
        # its "skipped" status, 77, before building anything.
        try:
            with dkms_lock():
                out = t.cmd(["dkms", "build", "pvballoon/" + ver, "-k", t.release + "/ppc64le"])
            ctx.check(False, "dkms built pvballoon for ppc64le: %s" % out[-300:])
        except RuntimeError as e:
            ctx.check("failed (77)" in str(e) and "BUILD_EXCLUSIVE" in str(e),
                      "dkms build for ppc64le: %s" % str(e)[-400:])


FUZZ_SECONDS = 10          # make check's slice (2-4 million runs here); make fuzz runs 600
FUZZ_MIN_RUNS = 100000     # fewer means the fuzzer barely ran


@test("fuzz_control", cost=0, targets=("6.12",))
def fuzz_control(ctx):
    """The control-write parser of src/control.c under libFuzzer (tests/fuzz): every
    input agrees with a reference reading of the grammar, and a malformed write
    reaches the core not at all."""
    t = ctx.target
    with ctx.step("no_invariant_broken"):
        env = dict(os.environ, PVB_FUZZ_DIR=os.path.join(t.build_dir, "fuzz"))
        r = subprocess.run([os.path.join(t.top, "tests", "fuzz", "run"), str(FUZZ_SECONDS)],
                           capture_output=True, text=True, env=env)
        out = r.stdout + r.stderr
        m = re.search(r"^Done (\d+) runs", out, re.M)
        runs = int(m.group(1)) if m else 0
        ctx.note("fuzz: %d runs in %d s" % (runs, FUZZ_SECONDS))
        ctx.check(r.returncode == 0, "the fuzzer found an input that breaks the parser: %s" % out[-800:])
        ctx.check(runs >= FUZZ_MIN_RUNS, "only %d runs (want >= %d): %s" % (runs, FUZZ_MIN_RUNS, out[-400:]))
