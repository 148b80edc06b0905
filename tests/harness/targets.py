# SPDX-License-Identifier: GPL-2.0
"""Targets: a kernel to boot, a tree to build against, pvballoon built for it."""
import contextlib
import fcntl
import glob
import json
import os
import re
import shutil
import subprocess

from . import initramfs

# Debian's architecture names as dkms (uname -m) spells them.
DKMS_ARCH = {"arm64": "aarch64"}


def sh(cmd, log=None, **kw):
    """Run a host command; its output goes to @log.  Raises on failure."""
    r = subprocess.run(cmd, shell=isinstance(cmd, str), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, **kw)
    if log:
        with open(log, "a") as f:
            f.write("$ %s\n%s" % (cmd if isinstance(cmd, str) else " ".join(cmd), r.stdout))
    if r.returncode:
        raise RuntimeError("%s failed (%d):\n%s" % (cmd, r.returncode, r.stdout[-3000:]))
    return r.stdout


@contextlib.contextmanager
def dkms_lock():
    """One dkms command at a time: targets share this machine's (and a
    release's chroot's) /var/lib/dkms."""
    with open("/tmp/pvballoon-dkms.lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        yield


# Where the harness's own builds of pvballoon run, whatever tree they build:
# each build binds its tree here in a mount namespace of its own, so that
# builds at once do not meet, and the compiler cache sees the same paths
# from run to run (Target.cmd).
BUILD_AT = "/var/tmp/pvballoon-build"

# scripts/conftest.sh's results by key (PVB_CONFTEST_CACHE), in this
# directory of a build root's compiler cache (ccache keeps to its own
# 0-f subdirectories); the real guest's too (RealVM, test_guest.py).
CONFTEST_CACHE = "pvb-conftest"

# PVB_COLD=1 (scripts/check-timed --cold): DKMS state left by earlier runs
# is thrown away once per run and build root, so every module is built anew.
_cold_done = set()

# DKMS builds on this machine install no /etc/modprobe.d/pvballoon.conf
# (scripts/dkms-post-install): it has no balloon device to hand over.
os.environ["PVB_NO_MODPROBE_CONF"] = "1"


def pvb_version(top):
    with open(os.path.join(top, "dkms.conf")) as f:
        return re.search(r'PACKAGE_VERSION="([^"]+)"', f.read()).group(1)


def copy_tree(top, dest):
    """The project's sources (what git tracks, or everything but build
    output when there is no git) into @dest."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    try:
        files = subprocess.run(["git", "-C", top, "ls-files", "-co", "--exclude-standard"],
                               check=True, capture_output=True, text=True).stdout.split()
    except (subprocess.CalledProcessError, FileNotFoundError):
        files = None
    if not files:
        shutil.copytree(top, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git", "results", "generated", "*.o", "*.ko"))
        return
    for f in files:
        if f.startswith("results/") or not os.path.isfile(os.path.join(top, f)):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, f)), exist_ok=True)
        shutil.copy2(os.path.join(top, f), os.path.join(dest, f))


def microvm_append():
    """Kernel arguments a microvm guest needs under TCG.  microvm has no
    HPET and no ACPI PM timer, so the kernel can measure the TSC only
    against the PIT, and under host load that fails ("tsc: Unable to
    calibrate against PIT") and the boot hangs for want of a clock.  Under
    TCG the guest's TSC is the host's, whose rate the host knows."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = float(re.search(r"^cpu MHz\s*:\s*([\d.]+)", f.read(), re.M).group(1))
    except (OSError, AttributeError):
        return ""
    return " tsc_early_khz=%d" % (mhz * 1000)


class Target:
    def __init__(self, spec, top, build_dir):
        self.spec = spec
        self.name = spec["name"]
        self.kind = spec["kind"]
        self.debug = bool(spec.get("debug"))
        self.top = top
        self.build_dir = os.path.join(build_dir, self.name)
        os.makedirs(self.build_dir, exist_ok=True)
        self.log = os.path.join(self.build_dir, "build.log")
        self.skip = None
        self.append = spec.get("append", "")
        if spec.get("machine", "").startswith("microvm"):
            self.append += microvm_append()
        # KASAN + DEBUG_PAGEALLOC under TCG is slow.
        self.boot_timeout = 600 if self.debug else 180
        self.slow = 4 if self.debug else 1
        self.kernel = self.release = self.kdir = self.moddir = None
        self.module = None
        self.initrd = self.initrd_intree = None
        self.dkms = False
        self.root = ""             # a build chroot ("" = this machine)
        # The guest's architecture (targets.json "arch"; chroot targets):
        # arm64 boots under qemu-system-aarch64 -M virt (harness/vm.py).
        self.arch = spec.get("arch", "amd64")
        self.busybox = initramfs.BUSYBOX
        self.version = None        # the Debian package version, when known
        self.notes = []            # what preparing it found worth printing

    # -------------------------------------------------------------- kernels
    def resolve(self):
        if self.kind == "debian":
            try:
                dep = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", self.spec["image_pkg"]],
                                     capture_output=True, text=True, check=True).stdout
            except subprocess.CalledProcessError:
                self.skip = "%s is not installed" % self.spec["image_pkg"]
                return
            m = re.search(r"linux-image-(\S+)", dep)
            if not m:
                self.skip = "cannot tell the kernel release of " + self.spec["image_pkg"]
                return
            self.release = m.group(1)
            self.version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "linux-image-" + self.release],
                                          capture_output=True, text=True).stdout.strip() or None
            self.kernel = "/boot/vmlinuz-" + self.release
            self.kdir = "/lib/modules/%s/build" % self.release
            self.moddir = "/lib/modules/" + self.release
            self.dkms = True
        elif self.kind == "debug":
            script = os.path.join(self.top, self.spec["script"])
            overrides = [os.path.join(self.top, self.spec["config"])] if self.spec.get("config") else []
            r = subprocess.run([script] + overrides, stdout=subprocess.PIPE,
                               stderr=open(self.log, "a"), text=True)
            if r.returncode:
                self.skip = "the debug kernel could not be built (see %s)" % self.log
                return
            cache = r.stdout.strip().splitlines()[-1]
            with open(os.path.join(cache, "release")) as f:
                self.release = f.read().strip()
            self.kernel = os.path.join(cache, "bzImage")
            self.kdir = os.path.join(cache, "build")
            self.moddir = os.path.join(cache, "modules/lib/modules", self.release)
        elif self.kind == "chroot":
            # A kernel of another Debian release, resolved against the
            # archive at every run (scripts/build-chroot-target).
            script = os.path.join(self.top, "scripts", "build-chroot-target")
            what = "%s %s" % (self.spec["suite"], self.spec["package"])
            with open(self.log, "a") as log:
                arch = ["--arch", self.arch] if self.arch != "amd64" else []
                r = subprocess.run([script] + arch + [self.spec["suite"], self.spec["package"]],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                log.write(r.stderr)
            self.notes = [ln.split(": ", 1)[-1] for ln in r.stderr.splitlines()
                          if ": resolved " in ln or ": pruning " in ln or "WARNING" in ln]
            if r.returncode:
                why = (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
                self.skip = "%s cannot be prepared: %s" % (what, why)
                return
            kdir = r.stdout.strip().splitlines()[-1]
            with open(os.path.join(kdir, "release")) as f:
                self.release = f.read().strip()
            with open(os.path.join(kdir, "version")) as f:
                self.version = f.read().strip()
            with open(os.path.join(kdir, "kdir")) as f:
                self.kdir = f.read().strip()     # as seen inside the chroot
            self.root = os.path.join(os.path.dirname(os.path.dirname(kdir)), "chroot")
            self.moddir = os.path.join(self.root, "usr/lib/modules", self.release)
            self.kernel = os.path.join(self.moddir, "vmlinuz")
            self.dkms = True
            if self.arch != "amd64":
                with open(os.path.join(kdir, "busybox")) as f:
                    self.busybox = f.read().strip()
                with open(os.path.join(kdir, "cc")) as f:
                    self.cc = f.read().strip()
        elif self.kind == "guest":
            # A real Debian guest booted from its own disk; the tests build
            # and install pvballoon inside it, as a user does.
            script = os.path.join(self.top, self.spec["script"])
            with open(self.log, "a") as log:
                r = subprocess.run([script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                log.write(r.stderr)
            if r.returncode:
                why = (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
                self.skip = "the real-guest image is unavailable: %s" % why
                return
            cache = r.stdout.strip().splitlines()[-1]
            with open(os.path.join(cache, "release")) as f:
                self.release = f.read().strip()
            self.image = os.path.join(cache, "disk.img")
            self.kernel = os.path.join(cache, "vmlinuz")
            self.initrd = os.path.join(cache, "initrd.img")
            self.boot_sums = [sh(["sha256sum", p]).split()[0] for p in (self.kernel, self.initrd)]
            self.kdir = ""
        else:
            self.skip = "unknown target kind " + self.kind
            return
        for p in filter(None, (self.kernel, self.kdir and self.root + self.kdir)):
            if not os.path.exists(p):
                self.skip = "%s is missing" % p
                return

    # ------------------------------------------------------ host or chroot
    def ccache_dir(self):
        """This target's compiler cache, on this machine: one per build
        root, since a chroot's compilers are not this machine's.  Under
        $PVB_CACHE, so make check-cold starts it empty."""
        if self.root:
            return os.path.join(os.path.dirname(self.root), "ccache")
        return os.path.join(os.environ.get("PVB_CACHE", "/var/cache/pvballoon"), "ccache")

    def cmd(self, argv, log=None, bind=None, ccache=False):
        """Run @argv where this target's kernel is built: on this machine,
        or inside the target's chroot with /proc mounted (objtool needs it),
        in a private mount namespace (scripts/chroot-run).  @bind: a
        directory to show inside, "DIR" at the same path or "DIR:PATH".

        @ccache: compile through ccache when the build root has it.  The
        suite builds the same source for nine kernels on every run (the
        W=1 build tests, the debug kernel's module, DKMS after a change),
        about 50 s of CPU each; a hit takes a tenth of that and replays the
        compiler's warnings, so the W=1 check still sees them.  ccache
        hashes the command line, paths included: builds that are to hit
        run at a fixed path (make(), BUILD_AT) or in dkms's own."""
        env = []
        binds = [bind] if bind else []
        if ccache and os.path.exists(self.root + "/usr/lib/ccache"):
            cache = self.ccache_dir()
            os.makedirs(cache, exist_ok=True)
            inside = "/var/cache/pvb-ccache" if self.root else cache
            if self.root:
                binds.append(cache + ":" + inside)
            # The probe results beside the objects (scripts/conftest.sh):
            # failed probes are failed compiles, which ccache does not keep.
            env = ["env", "PATH=/usr/lib/ccache:" + os.environ.get("PATH", "/usr/bin:/bin"),
                   "CCACHE_DIR=" + inside, "CCACHE_MAXSIZE=1G",
                   "PVB_CONFTEST_CACHE=" + inside + "/" + CONFTEST_CACHE]
        if not self.root and not binds:
            return sh(env + list(argv), log=log)
        run = [os.path.join(self.top, "scripts", "chroot-run"), self.root or "/"]
        for b in binds:
            run += ["--bind", b]
        return sh(run + ["--"] + env + list(argv), log=log)

    def make(self, src, *args, log=None):
        """make in the pvballoon tree @src, shown at BUILD_AT, through the
        compiler cache."""
        return self.cmd(["make", "-C", BUILD_AT, "KDIR=" + self.kdir] + list(args), log=log,
                        bind=src + ":" + BUILD_AT, ccache=True)

    # --------------------------------------------------------------- module
    def build_module(self):
        if self.dkms:
            self.module = self._build_dkms()
        else:
            src = os.path.join(self.build_dir, "src")
            copy_tree(self.top, src)
            # W=1, and kept: the build test checks this build's output
            # instead of building the module a second time.
            self.w1_output = self.make(src, "W=1", "-j%d" % (os.cpu_count() or 2), log=self.log)
            self.w1_tree = src
            self.module = os.path.join(src, "pvballoon.ko")

    def _build_dkms(self):
        """dkms add/build/install, the way users install pvballoon.  The
        source in /usr/src is refreshed (and re-added) only when it changed."""
        ver = pvb_version(self.top)
        mv = "pvballoon/" + ver
        usrsrc = self.root + "/usr/src/pvballoon-" + ver
        built = self.root + "/var/lib/dkms/pvballoon/%s/%s/*/module/pvballoon.ko*" % (ver, self.release)
        # What ships, as the README's `make dkms-src` stages it: a change
        # to the tests or the README rebuilds nothing.
        stage = os.path.join(self.build_dir, "dkms-src")
        shutil.rmtree(stage, ignore_errors=True)
        sh(["make", "-s", "-C", self.top, "dkms-src", "DESTDIR=" + stage])
        fresh = os.path.join(stage, "usr/src/pvballoon-" + ver)
        digest = sh("cd %s && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum" % fresh)
        with dkms_lock():
            stamp = os.path.join(usrsrc, ".pvb-digest")
            cold = os.environ.get("PVB_COLD") == "1" and self.root not in _cold_done
            _cold_done.add(self.root)
            if cold or not (os.path.exists(stamp) and open(stamp).read() == digest):
                try:
                    self.cmd(["dkms", "remove", mv, "--all"])
                except RuntimeError:
                    pass            # nothing to remove
                shutil.rmtree(usrsrc, ignore_errors=True)
                shutil.copytree(fresh, usrsrc)
                self.cmd(["dkms", "add", mv], log=self.log)
                with open(stamp, "w") as f:
                    f.write(digest)
            # Another architecture: dkms's kernel/arch form, which is
            # what BUILD_EXCLUSIVE_ARCH is matched against; the headers
            # carry the cross compiler's name (build-chroot-target).
            kver = self.release + ("/" + DKMS_ARCH[self.arch] if self.arch != "amd64" else "")
            if not glob.glob(built):
                self.cmd(["dkms", "build", mv, "-k", kver], log=self.log, ccache=True)
                self.cmd(["dkms", "install", mv, "-k", kver, "--force"], log=self.log)
            mods = glob.glob(built)
            if not mods:
                raise RuntimeError("dkms built no pvballoon.ko for " + self.release)
            # Keep our own copy: a later re-add removes dkms's.
            ko = os.path.join(self.build_dir, os.path.basename(mods[0]))
            shutil.copy2(mods[0], ko)
        return ko

    def intree(self, name):
        found = glob.glob(os.path.join(self.moddir, "kernel", "**", name + ".ko*"), recursive=True)
        return found[0] if found else None

    # ------------------------------------------------------------ initramfs
    def guest_binaries(self, host_bins):
        """The test guest's helpers (tests/guest/*.c) for this target: the
        host's static builds, or, for another architecture, the same
        sources cross-compiled in the target's chroot."""
        if self.arch == "amd64":
            return host_bins
        out = os.path.join(self.build_dir, "guest")
        os.makedirs(out, exist_ok=True)
        bins = []
        for src in sorted(glob.glob(os.path.join(self.top, "tests", "guest", "*.c"))):
            c = os.path.join(out, os.path.basename(src))
            shutil.copy(src, c)
            self.cmd([self.cc, "-static", "-O2", "-Wall", "-Werror", "-o", c[:-2], c], log=self.log,
                     bind=out)
            bins.append(c[:-2])
        return bins

    def build_initrd(self, guest_bins):
        guest_bins = self.guest_binaries(guest_bins)
        boot = initramfs.module_order(self.moddir, self.spec.get("boot_modules", []))
        init = os.path.join(self.top, "tests", "guest", "init")
        files = [("bin/" + os.path.basename(b), b, 0o755) for b in guest_bins]
        self.initrd = initramfs.build(os.path.join(self.build_dir, "initrd.cpio"), init,
                                      boot_modules=boot, extra_modules=[self.module], files=files,
                                      busybox=self.busybox)
        vb = self.intree("virtio_balloon")
        self.initrd_intree = None
        if vb:
            extra = [m for m in initramfs.module_order(self.moddir, ["virtio_balloon"])
                     if m not in boot]
            self.initrd_intree = initramfs.build(
                os.path.join(self.build_dir, "initrd-intree.cpio"), init, boot_modules=boot,
                extra_modules=[self.module] + extra, files=files, busybox=self.busybox)

    def prepare(self, guest_bins):
        self.resolve()
        if self.skip or self.kind == "guest":
            return
        self.build_module()
        self.build_initrd(guest_bins)


def load_specs(top):
    with open(os.path.join(top, "tests", "targets.json")) as f:
        return json.load(f)["targets"]
