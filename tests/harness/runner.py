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
import concurrent.futures
import contextlib
import glob
import importlib
import os
import subprocess
import sys
import threading
import time
import traceback

from .errors import TestFailure, Skip
from .targets import Target, load_specs
from .vm import VM

TESTS = []


def test(name, cost=1, targets=None):
    """Register a test.  @cost: rough boot-equivalents, to schedule the
    longest first.  @targets: target names it applies to (default: all)."""
    def deco(fn):
        TESTS.append((name, fn, cost, targets))
        return fn
    return deco


class Ctx:
    def __init__(self, runner, target, name):
        self.runner = runner
        self.target = target
        self.name = name
        self.results = []          # (name, status, message)
        self.notes = []
        self._vms = []

    def vm(self, name, intree=False, **kw):
        if intree and not self.target.initrd_intree:
            raise Skip("no in-tree virtio_balloon module for this kernel")
        kw.setdefault("initrd", self.target.initrd_intree if intree else self.target.initrd)
        return VM(self.target, "%s-%s" % (self.name, name), self.runner.results, **kw)

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


class Runner:
    def __init__(self, top, results, jobs, only_targets=None, only_tests=None):
        self.top = top
        self.results = results
        self.jobs = jobs
        self.only_targets = only_targets
        self.only_tests = only_tests
        self.lock = threading.Lock()
        self.n = 0
        self.counts = {"ok": 0, "fail": 0, "skip": 0}

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

    def run_one(self, target, name, fn):
        ctx = Ctx(self, target, name)
        start = time.time()
        try:
            fn(ctx)
        except Skip as e:
            ctx.results.append(("%s/%s" % (target.name, name), "skip", str(e), []))
        except Exception as e:
            detail = str(e) if isinstance(e, TestFailure) else traceback.format_exc()
            ctx.results.append(("%s/%s" % (target.name, name), "fail", detail, []))
        if not ctx.results:
            ctx.results.append(("%s/%s" % (target.name, name), "ok", "", []))
        ctx.results[-1][3].append("%s/%s took %.0f s" % (target.name, name, time.time() - start))
        for full, status, msg, notes in ctx.results:
            self.emit(full, status, msg, notes)

    def run(self):
        t0 = time.time()
        print("KTAP version 1")
        self.load_tests()
        bins = self.build_guest_bins()
        targets = []
        for spec in load_specs(self.top):
            if self.only_targets and spec["name"] not in self.only_targets:
                continue
            t = Target(spec, self.top, os.path.join(self.results, "build"))
            print("# preparing target %s" % t.name, flush=True)
            try:
                t.prepare(bins)
            except Exception as e:
                t.skip = None
                t.error = str(e)
            else:
                t.error = None
            targets.append(t)
        print("# targets ready after %.0f s" % (time.time() - t0), flush=True)
        work = []
        for t in targets:
            if t.skip:
                self.emit("%s" % t.name, "skip", t.skip)
                continue
            if t.error:
                self.emit("%s/build" % t.name, "fail", t.error)
                continue
            print("# %s: kernel %s, module %s" % (t.name, t.release, t.module), flush=True)
            for name, fn, cost, only in TESTS:
                if only and t.name not in only:
                    continue
                if self.only_tests and name not in self.only_tests:
                    continue
                work.append((cost * t.slow, t, name, fn))
        work.sort(key=lambda w: -w[0])
        with concurrent.futures.ThreadPoolExecutor(self.jobs) as ex:
            futs = [ex.submit(self.run_one, t, name, fn) for _, t, name, fn in work]
            for f in futs:
                f.result()
        print("# wall time %.0f s, results in %s" % (time.time() - t0, self.results))
        print("%d passed, %d failed, %d skipped"
              % (self.counts["ok"], self.counts["fail"], self.counts["skip"]))
        return 1 if self.counts["fail"] else 0
