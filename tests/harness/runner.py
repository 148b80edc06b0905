# SPDX-License-Identifier: GPL-2.0
"""Test registry and runner: every test on every target, KTAP output.

A test is a function decorated with @test; it gets a Ctx.  Checks that can
share one guest boot are steps of one test:

    @test("lifecycle")
    def lifecycle(ctx):
        with ctx.vm("load") as vm:
            with ctx.step("load_unload_10x"):
                ...
            with ctx.step("bad_parameter"):
                ...

Each step is one KTAP line "ok N <target>/<test>/<step>".
"""
import contextlib
import glob
import heapq
import importlib
import os
import subprocess
import sys
import threading
import time
import traceback

from .budget import BUDGET
from .errors import TestFailure, Skip
from .targets import Target, load_specs
from .pool import Pool, note_shared
from .vm import VM, guest_cpu

TESTS = []


def test(name, cost=1, targets=None, debug=None, long=False, check_on=None):
    """Register a test.

    @cost: rough boot-equivalents, to schedule the longest first.
    @targets: target names it applies to (default: all).
    @check_on: the targets make check runs it on, when fewer than
    @targets: a comparison that the other distribution kernels already
    make, on a kernel whose code paths for it are the same (the long
    suite runs it on every target).
    @debug: None runs it on every target; True only on debug kernels
    (KASAN, lockdep, DEBUG_VM: short, dense runs of the paths those tools
    watch); False only on distribution kernels (long comparisons, which a
    debug kernel under TCG makes ten times slower and no more telling).
    @long: only in the long suite (tests/run --long, make check-long):
    many-round comparisons that make check keeps a short version of.
    """
    def deco(fn):
        TESTS.append((name, fn, cost, targets, debug, long, check_on))
        return fn
    return deco


def wait_for(ctx, what, fn, timeout):
    """Poll @fn every half second until it is true; fail after @timeout
    seconds (times the target's slowness)."""
    deadline = time.time() + timeout * ctx.target.slow
    while not fn():
        if time.time() > deadline:
            raise TestFailure("timed out waiting for " + what)
        time.sleep(0.5)


def applies(spec, target, long_suite):
    """Does test @spec run on @target?  The long suite runs everything
    everywhere, as make check did before it had a time budget."""
    _, _, _, only, debug, long, check_on = spec
    if only and target.name not in only:
        return False
    if long_suite:
        return True
    if check_on and target.name not in check_on:
        return False
    if debug is not None and debug != target.debug:
        return False
    return not long


class Ctx:
    def __init__(self, runner, target, name):
        self.runner = runner
        # Side-by-side runs of the in-tree driver: everywhere in the long
        # suite, on distribution kernels only in make check.  A target
        # whose spec says "parity": "features" (6.1) binds the in-tree
        # driver only for the feature-bit comparison in make check: its
        # scenarios are the other kernels' (6.12 has the same migration
        # path), and its run of them checked the tests, not pvballoon.
        long_suite = getattr(runner, "long_suite", True)
        self.parity = long_suite or not target.debug
        self.parity_features_only = not long_suite and target.spec.get("parity") == "features"
        self.target = target
        self.name = name
        self.results = []          # (name, status, message)
        self.notes = []
        self._vms = []

    def vm(self, name, intree=False, share=False, **kw):
        """A guest for this group.  @share: the group leaves the guest as
        it found it (see harness/pool.py), so it may get one another group
        used, and give its own to the next; such guests boot with the
        in-tree driver's initramfs (a superset) whether @intree or not."""
        if intree and not self.target.initrd_intree:
            raise Skip("no in-tree virtio_balloon module for this kernel")
        if share and self.target.initrd_intree:
            intree = True
        kw.setdefault("initrd", self.target.initrd_intree if intree else self.target.initrd)
        full = "%s-%s" % (self.name, name)
        if share and not self.runner.long_suite:
            key = Pool.key(self.target, kw)
            vm = self.runner.pool.get(key)
            if vm:
                try:
                    vm.handed_to(full)
                except (TestFailure, OSError):
                    vm._kill()              # it will not run again: boot anew
                    vm = None
            if vm:
                note_shared(vm, os.path.join(self.runner.results, self.target.name, full))
            else:
                vm = VM(self.target, full, self.runner.results, **kw)
                vm.pool_key = key
            vm.pool, vm.ctx = self.runner.pool, self
            return vm
        return VM(self.target, full, self.runner.results, **kw)

    def check(self, cond, msg):
        if not cond:
            raise TestFailure(msg)

    def note(self, msg):
        """A diagnostic line printed under the result (figures, ratios)."""
        self.notes.append(msg)

    @contextlib.contextmanager
    def step(self, name):
        full = "%s/%s/%s" % (self.target.name, self.name, name)
        n0 = len(self.notes)
        t0 = time.time()
        try:
            yield
        except Skip as e:
            self.results.append((full, "skip", str(e), self.notes[n0:]))
        except TestFailure as e:
            self.results.append((full, "fail", str(e), self.notes[n0:]))
        except Exception as e:          # a harness bug is a failure too
            self.results.append((full, "fail", "%s: %s\n%s" % (
                type(e).__name__, e, traceback.format_exc()), self.notes[n0:]))
        else:
            self.results.append((full, "ok", "", self.notes[n0:]))
        with self.runner.lock:
            self.runner.steps.append((full, time.time() - t0))


class Runner:
    def __init__(self, top, results, jobs, only_targets=None, only_tests=None, long_suite=False):
        self.top = top
        self.results = results
        self.jobs = jobs
        self.only_targets = only_targets
        self.only_tests = only_tests
        self.long_suite = long_suite
        # Re-entrant: prepare() reports a failed target (emit() takes the
        # lock) while holding the condition built on it.
        self.lock = threading.RLock()
        self.n = 0
        self.counts = {"ok": 0, "fail": 0, "skip": 0}
        self.phases = []            # (what, seconds)
        self.groups = []            # (target/test, seconds)
        self.steps = []             # (target/test/step, seconds)
        self.warned = False
        self.pool = Pool()          # guests shared between groups
        self.pending = {}           # target name -> groups queued or running

    def may_skip(self, name):
        """Did the user allow target @name to be skipped when its kernel
        cannot be had (PVB_SKIP_UNAVAILABLE: names, comma-separated, or
        "all")?"""
        allowed = set(filter(None, os.environ.get("PVB_SKIP_UNAVAILABLE", "").split(",")))
        return bool(allowed & {name, "all"})

    def emit(self, name, status, msg="", notes=()):
        with self.lock:
            self.n += 1
            self.counts[status] += 1
            for ln in notes:
                print("# " + ln)
            if status == "ok":
                print("ok %d %s" % (self.n, name))
            elif status == "skip":
                print("ok %d %s # SKIP %s" % (self.n, name, msg))
            else:
                print("not ok %d %s" % (self.n, name))
                for ln in msg.splitlines()[:40]:
                    print("#   " + ln)
            sys.stdout.flush()

    def build_guest_bins(self):
        out = os.path.join(self.results, "build", "guest")
        os.makedirs(out, exist_ok=True)
        bins = []
        for src in sorted(glob.glob(os.path.join(self.top, "tests", "guest", "*.c"))):
            b = os.path.join(out, os.path.basename(src)[:-2])
            subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", b, src], check=True)
            bins.append(b)
        return bins

    def load_tests(self):
        sys.path.insert(0, os.path.join(self.top, "tests"))
        for f in sorted(glob.glob(os.path.join(self.top, "tests", "test_*.py"))):
            importlib.import_module(os.path.basename(f)[:-3])

    def slowest(self, n=6):
        with self.lock:
            top = sorted(self.groups, key=lambda g: -g[1])[:n]
        return ", ".join("%s %.0f s" % g for g in top) or "none finished"

    def check_clock(self):
        """Warn once, loudly, when the run passes the warning mark."""
        if self.warned or BUDGET.elapsed() < BUDGET.warn:
            return
        self.warned = True
        print("# WARNING: make check has run %.0f min, past the %.0f-minute mark that keeps a cold "
              "CI run (90 min) safe; slowest groups so far: %s"
              % (BUDGET.elapsed() / 60, BUDGET.warn / 60, self.slowest()), flush=True)

    def run_one(self, target, name, fn):
        ctx = Ctx(self, target, name)
        start = time.time()
        if BUDGET.exhausted():
            self.emit("%s/%s" % (target.name, name), "fail",
                      "not run: %s; slowest groups: %s" % (BUDGET.why(), self.slowest()))
            self.group_done(target)
            return
        try:
            fn(ctx)
        except Skip as e:
            ctx.results.append(("%s/%s" % (target.name, name), "skip", str(e), []))
        except Exception as e:
            detail = str(e) if isinstance(e, TestFailure) else traceback.format_exc()
            ctx.results.append(("%s/%s" % (target.name, name), "fail", detail, []))
        if not ctx.results:
            ctx.results.append(("%s/%s" % (target.name, name), "ok", "", []))
        took = time.time() - start
        with self.lock:
            self.groups.append(("%s/%s" % (target.name, name), took))
        ctx.results[-1][3].append("%s/%s took %.0f s" % (target.name, name, took))
        for full, status, msg, notes in ctx.results:
            self.emit(full, status, msg, notes)
        self.group_done(target)
        self.check_clock()

    def group_done(self, target):
        with self.lock:
            self.pending[target.name] -= 1
            last = not self.pending[target.name]
        if last:
            self.stop_shared(target.name)

    def stop_shared(self, target_name=None):
        """Stop the idle shared guests (of a target whose groups have all
        run); a splat or leak found on the way fails a result of its own."""
        for vm, err in self.pool.drain(target_name):
            self.emit("%s/shared_guest/%s" % (vm.target.name, os.path.basename(vm.dir)), "fail", err)

    def prepare(self, t, bins):
        """Build what @t needs (kernel, module, initramfs) and queue its
        tests.  Runs in a thread of its own, beside the guests of targets
        that are ready: a debug kernel builds while the others test."""
        t0 = time.time()
        try:
            t.prepare(bins)
        except Exception as e:
            t.error = "%s\n%s" % (e, traceback.format_exc()[-1500:])
        else:
            t.error = None
        took = time.time() - t0
        with self.cv:
            self.phases.append(("prepare " + t.name, took))
            for ln in t.notes:
                print("# %s: %s" % (t.name, ln))
            if t.skip:
                # Coverage must not vanish while CI stays green: a target
                # that cannot be had fails, unless the user said to skip it.
                if self.may_skip(t.name):
                    self.emit(t.name, "skip", t.skip)
                else:
                    self.emit("%s/prepare" % t.name, "fail", "%s\n(PVB_SKIP_UNAVAILABLE=%s, or "
                              "--skip-unavailable %s, reports it skipped instead)"
                              % (t.skip, t.name, t.name))
            elif t.error:
                self.emit("%s/prepare" % t.name, "fail", t.error)
            else:
                print("# %s ready after %.0f s: kernel %s%s, module %s"
                      % (t.name, took, t.release, " (Debian %s)" % t.version if t.version else "",
                         t.module), flush=True)
                with open(os.path.join(self.results, "kernels.tsv"), "a") as f:
                    f.write("%s\t%s\t%s\n" % (t.name, t.release, t.version or ""))
                for spec in TESTS:
                    name, fn, cost = spec[:3]
                    if not applies(spec, t, self.long_suite):
                        continue
                    if t.spec.get("tests") and name not in t.spec["tests"]:
                        continue
                    # "check_tests": what make check runs of a target whose
                    # full set has its own make target (named with -t).
                    if (not self.only_targets and t.spec.get("check_tests")
                            and name not in t.spec["check_tests"]):
                        continue
                    if self.only_tests and name not in self.only_tests:
                        continue
                    self.seq += 1
                    self.pending[t.name] = self.pending.get(t.name, 0) + 1
                    heapq.heappush(self.ready, (-cost * t.slow, self.seq, t, name, fn))
            self.preparing -= 1
            self.cv.notify_all()

    def worker(self):
        while True:
            with self.cv:
                while not self.ready and self.preparing:
                    self.cv.wait()
                if not self.ready:
                    return
                _, _, t, name, fn = heapq.heappop(self.ready)
            self.run_one(t, name, fn)

    def run(self):
        t0 = time.time()
        print("KTAP version 1")
        self.load_tests()
        bins = self.build_guest_bins()
        targets = []
        for spec in load_specs(self.top):
            if self.only_targets and spec["name"] not in self.only_targets:
                continue
            # "check": false - a target of its own make target (named with -t).
            if not self.only_targets and spec.get("check") is False:
                continue
            targets.append(Target(spec, self.top, os.path.join(self.results, "build")))
        self.cv = threading.Condition(self.lock)
        self.ready = []
        self.seq = 0
        self.preparing = len(targets)
        preps = [threading.Thread(target=self.prepare, args=(t, bins), daemon=True) for t in targets]
        workers = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.jobs)]
        for th in preps + workers:
            th.start()
        for th in preps + workers:
            th.join()
        self.stop_shared()
        self.summary(time.time() - t0)
        # The plan comes last, as TAP allows: steps are only known once run.
        print("1..%d" % self.n)
        print("%d passed, %d failed, %d skipped"
              % (self.counts["ok"], self.counts["fail"], self.counts["skip"]))
        return 1 if self.counts["fail"] else 0

    def summary(self, wall):
        """Where the time went: phases, the slowest groups, guest time per
        target, and the total against the budget."""
        print("# ---- time ----")
        for what, secs in self.phases:
            print("# %-28s %6.0f s" % (what, secs))
        per_target = {}
        for g, secs in self.groups:
            per_target[g.split("/")[0]] = per_target.get(g.split("/")[0], 0) + secs
        for tname, secs in sorted(per_target.items()):
            print("# %-28s %6.0f s of guest time" % ("tests " + tname, secs))
        print("# slowest groups: %s" % self.slowest(10))
        # CPU, not wall time, is what a busy machine runs out of.
        t = os.times()
        cpu = t.user + t.system + t.children_user + t.children_system
        guest = guest_cpu()
        qemu = sum(guest.values())
        print("# CPU: %.1f min in all over %.1f min on %d cores; QEMU %.1f min, the rest (builds, "
              "chroots, this harness) %.1f min" % (cpu / 60, wall / 60, os.cpu_count() or 1,
                                                   qemu / 60, max(0, cpu - qemu) / 60))
        if guest:
            by_cpu = sorted(guest.items(), key=lambda g: -g[1])
            print("# most guest CPU: %s" % ", ".join("%s %.0f s" % g for g in by_cpu[:12]))
            os.makedirs(self.results, exist_ok=True)
            with open(os.path.join(self.results, "guest_cpu.tsv"), "w") as f:
                f.writelines("%s\t%.1f\n" % g for g in by_cpu)
        print("# boots saved by shared guests: %d" % self.pool.handed)
        with self.lock:
            steps = sorted(self.steps, key=lambda g: -g[1])
        print("# slowest steps: %s" % ", ".join("%s %.0f s" % g for g in steps[:12]))
        os.makedirs(self.results, exist_ok=True)
        with open(os.path.join(self.results, "steps.tsv"), "w") as f:
            f.writelines("%s\t%.1f\n" % g for g in steps)
        total = BUDGET.elapsed()
        print("# wall time %.0f s in the runner, %.0f s (%.1f min) since the run began; results in %s"
              % (wall, total, total / 60, self.results))
        if total > BUDGET.warn:
            print("# WARNING: this run took %.1f min: past the %.0f-minute mark. A cold CI run has "
                  "90 minutes; move long runs out of make check (see tests/harness/runner.py)."
                  % (total / 60, BUDGET.warn / 60))
        if BUDGET.exhausted():
            print("# FAILED: %s. Slowest groups: %s" % (BUDGET.why(), self.slowest(10)))
