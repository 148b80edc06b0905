# SPDX-License-Identifier: GPL-2.0
"""A real Debian guest: systemd, udev, DKMS, booted from its own disk.

    with RealVM(target, "name", results, balloon={}) as vm:
        vm.sh("systemctl is-system-running --wait")
        vm.reboot()

The disk is a copy-on-write overlay of the target's cached image
(scripts/build-guest-image), so each VM starts from the pristine guest and
the image is never written.  QEMU loads the image's kernel and initrd
itself, as a boot loader with one entry would; reboot() powers the guest
off and boots the same disk again (QEMU runs with -no-reboot), checking
first that the guest did not change the kernel or initrd it would boot.
The command channel is pvb-cmd.service on ttyS1 (tests/guest/pvb-cmd).

A second disk, serial pvb-ccache, is the guest's compiler cache: an ext4
image kept in $PVB_CACHE/guest-ccache (so make check-cold starts without
it), one VM at a time (flock; a VM that cannot have it compiles without).
pvb-cmd mounts it and puts ccache in front of gcc, so that a warm run's
DKMS build of an unchanged module costs seconds, not minutes of TCG.
PVB_GUEST_CCACHE=0 turns it off.

seed_ccache() fills that cache before the guest boots, natively: the
image's own root (read-only, under an overlay that is thrown away), its
own gcc, headers and dkms, the same paths, environment and commands as the
README install in the guest, chrooted on the host.  The guest then runs
every one of the README's commands itself - dkms, kbuild, modpost, signing,
depmod, modprobe - and only gcc's compile steps come from the cache, with
the compat probes' results (PVB_CONFTEST_CACHE, scripts/conftest.sh: a
probe that fails is a failed compile, which ccache does not keep; 6.1's
seven cost 70 s of TCG).  A
first run after a change to the module (or a cold one) no longer spends
10-17 minutes of TCG on two vCPUs compiling it (issue 17).
"""
import fcntl
import hashlib
import os
import re
import subprocess
import tarfile
import time

from .errors import TestFailure
from .vm import VM
from .targets import CONFTEST_CACHE

# The guest's CCACHE_DIR, as tests/guest/pvb-cmd exports it when the cache
# disk is mounted: the seeding below must fill the same place.
GUEST_CCACHE_DIR = "/var/cache/pvb-ccache/ccache"


class RealVM(VM):
    def __init__(self, target, name, results, seed=None, **kw):
        """@seed: (source tar, commands) for seed_ccache() before the first
        boot."""
        kw.setdefault("boot_timeout", 600)
        self.seed, self.seed_note = seed, None
        super().__init__(target, name, results, initrd=target.initrd, **kw)
        self.disk = os.path.join(self.dir, "disk.qcow2")
        if os.path.exists(self.disk):
            os.unlink(self.disk)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                        "-b", target.image, self.disk], check=True)
        self.boots = 0
        self.ccache = self.ccache_lock = None

    def _ccache_disk(self):
        """The compiler-cache image, locked for this VM, or None."""
        if os.environ.get("PVB_GUEST_CCACHE", "1") == "0":
            return None
        d = os.path.join(os.environ.get("PVB_CACHE", "/var/cache/pvballoon"), "guest-ccache")
        os.makedirs(d, exist_ok=True)
        img = os.path.join(d, "ccache.img")
        fd = os.open(img + ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # A guest killed mid-write leaves a journal to replay; anything
        # worse and the cache starts again (it is only a cache).
        if os.path.exists(img) and subprocess.run(["e2fsck", "-p", img], stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL).returncode >= 4:
            os.unlink(img)
        if not os.path.exists(img) and os.path.exists(img + ".seeded"):
            os.unlink(img + ".seeded")
        if not os.path.exists(img) and subprocess.run(
                ["mkfs.ext4", "-q", "-F", "-L", "pvb-ccache", img, "1G"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            os.close(fd)
            return None
        self.ccache_lock = fd
        return img

    def seed_ccache(self, src_tar, commands):
        """Run @commands (the build part of the README's install block, see
        test_guest.seed_commands()) natively on the source in @src_tar (the
        guest's /dev/vdb), chrooted into a throw-away overlay of the guest
        image, through the guest's ccache on the cache disk, as the README
        install in the guest will.  Skipped when the cache disk's stamp
        says the same source was seeded the same way before.  Returns a
        note; a failure only means the guest compiles itself."""
        if not self.ccache:
            return "no compiler cache to seed"
        h = hashlib.sha256()
        with tarfile.open(src_tar) as t:
            for m in sorted(t.getmembers(), key=lambda m: m.name):
                # What a build reads (more than `make dkms-src` ships: a
                # key too wide only seeds again): a change to the README
                # or the tests alone does not.
                if not re.match(r"[^/]+/(Makefile|Kbuild|dkms\.conf|src/|include/|scripts/)", m.name):
                    continue
                h.update(m.name.encode() + b"\0")
                if m.isfile():
                    h.update(t.extractfile(m).read())
        h.update(commands.encode() + b"\0" + "\0".join(self.target.boot_sums).encode())
        key = h.hexdigest()
        stamp = self.ccache + ".seeded"
        if os.path.exists(stamp) and open(stamp).read() == key:
            return "compiler cache already seeded with this source"
        env = {"PATH": "/usr/lib/ccache:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "LANG": "C.UTF-8", "CCACHE_DIR": GUEST_CCACHE_DIR,
               "CCACHE_MAXSIZE": "600M",
               "PVB_CONFTEST_CACHE": GUEST_CCACHE_DIR + "/" + CONFTEST_CACHE}
        script = r"""
set -e
m=$(mktemp -d /tmp/pvb-seed.XXXXXX)
# Nothing is removed through a mount: rm only after every umount worked,
# and never across file systems.  (The mount namespace drops the mounts
# anyway when it ends.)
trap 'cd /; umount "$m/cc" && umount "$m/root" && umount "$m/lower" && rm -rf --one-file-system "$m"' EXIT
mkdir "$m/lower" "$m/up" "$m/work" "$m/root" "$m/cc"
mount -o loop,ro,noload "$1" "$m/lower"
mount -t overlay overlay -o "lowerdir=$m/lower,upperdir=$m/up,workdir=$m/work" "$m/root"
mount -o loop "$2" "$m/cc"
tar xf "$3" -C "$m/root/root"
"$4" "$m/root" --bind "$m/cc:/var/cache/pvb-ccache" -- env -i %s sh -c "cd /root/pvballoon && set -ex
$5"
""" % " ".join("%s=%s" % kv for kv in env.items())
        t0 = time.time()
        try:
            os.unlink(stamp)
        except FileNotFoundError:
            pass
        with open(os.path.join(self.dir, "ccache-seed.log"), "w") as log:
            rc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script,
                                 "seed", self.target.image, self.ccache, src_tar,
                                 os.path.join(self.target.top, "scripts", "chroot-run"), commands],
                                stdout=log, stderr=subprocess.STDOUT, timeout=1200).returncode
        if rc == 0:
            with open(stamp, "w") as f:
                f.write(key)
        return "compiler cache seeded natively in %.0f s (rc %d%s)" % (
            time.time() - t0, rc, "" if rc == 0 else ", see ccache-seed.log; the guest compiles itself")

    def start(self):
        if self.ccache is None:
            self.ccache = self._ccache_disk()
        if self.seed and self.ccache:
            self.seed_note = self.seed_ccache(*self.seed)
            self.seed = None
        try:
            return super().start()
        except BaseException:
            if self.ccache_lock is not None:
                os.close(self.ccache_lock)
                self.ccache_lock = None
            raise

    def stop(self):
        try:
            if self.ccache and self.proc and self.proc.poll() is None and self.cmd_sock:
                try:
                    self.run("sync", timeout=60)
                except (TestFailure, OSError):
                    pass
            super().stop()
        finally:
            if self.ccache_lock is not None:
                os.close(self.ccache_lock)
                self.ccache_lock = None

    def qemu_argv(self):
        # The root disk first, so that it is /dev/vda (the image's fstab).
        extra, self.extra_qemu = self.extra_qemu, []
        argv = super().qemu_argv()
        self.extra_qemu = extra
        i = argv.index("-append")
        argv[i + 1] = "root=/dev/vda rw " + argv[i + 1]
        argv += ["-drive", "file=%s,if=virtio,format=qcow2,cache=unsafe" % self.disk] + extra
        if self.ccache:
            # In the last PCI slot, so that it is probed last and the
            # test's own disks keep their names (QEMU places -drive
            # if=virtio disks after the -device ones).
            argv += ["-drive", "file=%s,if=none,id=pvbcc,format=raw" % self.ccache,
                     "-device", "virtio-blk-pci,drive=pvbcc,serial=pvb-ccache,addr=0x1f"]
        return argv

    def _boot_once(self):
        super()._boot_once()
        # The channel is up early; the test wants a booted system.
        rc, out = self.run("systemctl is-system-running --wait", timeout=self.boot_timeout)
        self.boots += 1
        self.note_boot = out.strip()

    def boot_id(self):
        return self.sh("cat /proc/sys/kernel/random/boot_id").strip()

    def _go_down(self, how):
        """systemctl @how (poweroff, reboot), and wait until QEMU is gone
        (-no-reboot: a reboot ends it too)."""
        self.run("systemctl " + how, timeout=30)
        deadline = time.time() + 300
        while True:
            self.charge_cpu()       # before poll() reaps QEMU, and its CPU time with it
            if self.proc.poll() is not None:
                break
            if time.time() > deadline:
                raise TestFailure("the guest did not go down within 300 s of systemctl " + how)
            time.sleep(0.5)
        self.check_splat(phase="before " + how)
        self._kill()
        self.cmd_buf = self.qmp_buf = b""

    def poweroff(self):
        """systemctl poweroff, and wait until QEMU is gone; start() boots
        the same disk again."""
        self._go_down("poweroff")

    def reboot(self):
        """Reboot as a user would (systemctl reboot); the guest comes back
        on the same disk.  Returns the seconds it took."""
        t0 = time.time()
        rel = self.target.release
        out = self.sh("sha256sum /boot/vmlinuz-%s /boot/initrd.img-%s | cut -d' ' -f1" % (rel, rel))
        if out.split() != self.target.boot_sums:
            raise TestFailure("the guest changed its kernel or initrd; the harness boots the image's")
        self._go_down("reboot")
        self.start()
        return time.time() - t0
