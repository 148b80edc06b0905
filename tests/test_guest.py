# SPDX-License-Identifier: GPL-2.0
"""The real guest: a Debian 12 disk with systemd and udev
(scripts/build-guest-image), the project copied in, the README's own
install commands run in it, then what a user does, a reboot, and the
README's removal commands.

The commands come from README.md's blocks marked <!-- guest-test: NAME -->,
so the README cannot drift from what is tested.  Checks are numbers: who
drives the device, MemFree and vmstat deltas, QMP actual, QEMU's RSS.
"""
import os
import re
import subprocess
import tarfile
import time

from harness.errors import TestFailure
from harness.libvirtvm import LibvirtVM, ensure_libvirtd, virsh
from harness.realvm import RealVM
from harness.vm import parse_kv
from harness.runner import test
from harness.targets import CONFTEST_CACHE, copy_tree, pvb_version
from harness.vocab import DEBUGFS as D, MIB, pages

GUEST = 1024 * MIB
SRC = "/root/pvballoon"


def readme_block(top, name):
    """The shell block that follows <!-- guest-test: @name --> in README.md."""
    with open(os.path.join(top, "README.md")) as f:
        text = f.read()
    m = re.search(r"<!-- guest-test: %s -->\s*```sh\n(.*?)```" % re.escape(name), text, re.S)
    if not m:
        raise TestFailure("README.md has no block marked guest-test: %s" % name)
    return m.group(1)


def seed_commands(install):
    """The build part of the README's install block, for the natively run
    seeding of the guest's compiler cache (RealVM.seed_ccache()): its
    commands less apt-get (the image has the packages) and modprobe, with
    dkms install as dkms build (nothing is installed into the throw-away
    overlay).  Derived, not copied, so that the seeding builds what the
    README builds."""
    cmds = []
    for ln in install.splitlines():
        ln = re.sub(r"(^|\s)#\s.*$", "", ln).strip()
        if not ln or ln.startswith(("apt-get ", "modprobe ")):
            continue
        cmds.append(ln.replace("dkms install ", "dkms build "))
    if not any("dkms build " in c for c in cmds):
        raise TestFailure("README.md's install block has no dkms install to seed the compiler cache from")
    return "\n".join(cmds)


def source_disk(ctx):
    """The project's files as a tar on a raw disk (the guest's /dev/vdb):
    the copy a user would scp or clone."""
    d = os.path.join(ctx.runner.results, ctx.target.name, "src")
    copy_tree(ctx.runner.top, d)
    tar = os.path.join(ctx.runner.results, ctx.target.name, "pvballoon-src.tar")
    with tarfile.open(tar, "w") as t:
        t.add(d, arcname="pvballoon")
    size = os.path.getsize(tar)
    with open(tar, "ab") as f:           # whole sectors for the block device
        f.write(b"\0" * (-size % 512 + 10240))
    return tar


def driver_of_balloon(vm):
    """The driver bound to the virtio-balloon device (device id 5), or
    "none"."""
    return vm.sh("for d in /sys/bus/virtio/devices/*; do [ \"$(cat $d/device)\" = 0x0005 ] || continue; "
                 "[ -e $d/driver ] && basename $(readlink $d/driver) || echo none; done").strip() or "no device"


def actual(vm):
    return vm.qmp("query-balloon")["actual"]


def wait_actual(vm, size, timeout=120):
    t0 = time.time()
    vm.qmp("balloon", value=size)
    while actual(vm) != size:
        if time.time() - t0 > timeout:
            raise TestFailure("QMP balloon %d MiB: actual stuck at %d MiB" % (size // MIB, actual(vm) // MIB))
        time.sleep(0.5)
    return time.time() - t0


def compiler_cache(vm):
    """What the harness's compiler cache (RealVM) did for the last build."""
    if not vm.ccache:
        return "no compiler cache"
    st = parse_kv(vm.sh("ccache --print-stats 2>/dev/null | tr '\\t' ' '"))
    hits = sum(v for k, v in st.items() if k.endswith("cache_hit"))
    return "compiler cache: %d hits, %d misses" % (hits, st.get("cache_miss", 0))


def user_session(ctx, vm, what):
    """What a user does with the balloon: debugfs inflate and deflate,
    vmstat and stats, then the host's QMP balloon and guest-stats."""
    # Touch nearly all free memory, then free it, so that the host backs
    # whatever pages the balloon takes.
    avail = vm.meminfo()["MemAvailable"] // 1024 - 96
    vm.sh("mkdir -p /mnt/touch && mount -t tmpfs -o size=%dM tmpfs /mnt/touch && "
          "dd if=/dev/zero of=/mnt/touch/f bs=1M count=%d status=none; umount /mnt/touch"
          % (avail + 8, avail), timeout=300)
    # A systemd guest is never idle: drop the page cache so that the
    # inflate does not push MemFree under a watermark and make kswapd
    # give back cache while we measure (CI saw -232 MiB for 256 MiB).
    vm.sh("sync; echo 3 > /proc/sys/vm/drop_caches")
    v0, m0, rss0 = vm.vmstat(), vm.meminfo(), vm.qemu_rss_kib()
    vm.sh("echo 256M > %s/inflate" % D)
    v1, m1, rss1, s = vm.vmstat(), vm.meminfo(), vm.qemu_rss_kib(), vm.stats()
    free_drop = (m0["MemFree"] - m1["MemFree"]) // 1024
    ctx.note("%s: inflate 256M: vmstat +%d, MemFree -%d MiB, actual %d MiB, QEMU RSS -%d MiB"
             % (what, v1["balloon_inflate"] - v0["balloon_inflate"], free_drop, actual(vm) // MIB,
                (rss0 - rss1) // 1024))
    ctx.check(v1["balloon_inflate"] - v0["balloon_inflate"] == 65536 and s["current"] == 65536,
              "vmstat +%d, stats current %d" % (v1["balloon_inflate"] - v0["balloon_inflate"], s["current"]))
    ctx.check(224 <= free_drop <= 288, "MemFree fell by %d MiB for a 256 MiB inflate" % free_drop)
    ctx.check(actual(vm) == GUEST - 256 * MIB, "the host sees actual %d MiB" % (actual(vm) // MIB))
    ctx.check(rss0 - rss1 >= 200 * 1024, "QEMU's RSS fell by only %d MiB" % ((rss0 - rss1) // 1024))
    vm.sh("echo all > %s/deflate" % D)
    v2 = vm.vmstat()
    ctx.check(v2["balloon_deflate"] - v1["balloon_deflate"] == 65536 and actual(vm) == GUEST,
              "deflate all: vmstat -%d, actual %d MiB" % (v2["balloon_deflate"] - v1["balloon_deflate"],
                                                         actual(vm) // MIB))
    secs = wait_actual(vm, GUEST - 512 * MIB)
    tot = vm.meminfo()["MemTotal"]
    vm.qmp("qom-set", path="/machine/peripheral/balloon0", property="guest-stats-polling-interval", value=1)
    time.sleep(3)
    host = vm.qmp("qom-get", path="/machine/peripheral/balloon0", property="guest-stats")["stats"]
    ctx.note("%s: QMP balloon to 512 MiB in %.1f s; guest-stats total-memory %d MiB, MemTotal %d MiB"
             % (what, secs, host["stat-total-memory"] // MIB, tot // 1024))
    ctx.check(host["stat-total-memory"] == tot * 1024, "guest-stats total-memory %d != MemTotal %d KiB"
              % (host["stat-total-memory"], tot))
    ctx.check(vm.stats()["current"] == 131072, "host target not followed: %s" % vm.stats())
    wait_actual(vm, GUEST)


@test("real_guest", cost=20, targets=("debian12",))
def real_guest(ctx):
    top = ctx.runner.top
    tar = source_disk(ctx)
    install, remove = readme_block(top, "install"), readme_block(top, "remove")
    extra = ["-drive", "file=%s,if=virtio,format=raw,readonly=on" % tar]
    with RealVM(ctx.target, "guest", ctx.runner.results, mem="1G", smp=2, balloon={},
                extra_qemu=extra, seed=(tar, seed_commands(install))) as vm:
        with ctx.step("stock_guest"):
            ctx.note("debian12: booted %s (%s) in %.0f s" % (vm.sh("uname -r").strip(), vm.note_boot,
                                                            vm.boot_seconds))
            ctx.check(driver_of_balloon(vm) == "virtio_balloon",
                      "before install the balloon is driven by %s" % driver_of_balloon(vm))
        with ctx.step("readme_install"):
            vm.sh("mkdir -p %s && tar xf /dev/vdb -C /root" % SRC)
            vm.sh("[ -z \"$CCACHE_DIR\" ] || ccache -z >/dev/null")
            # The harness's caches, when pvb-cmd mounted them: the probe
            # results beside the compiler's (RealVM.seed_ccache()).
            cache = "[ -z \"$CCACHE_DIR\" ] || export PVB_CONFTEST_CACHE=$CCACHE_DIR/%s\n" % CONFTEST_CACHE
            t0 = time.time()
            rc, out = vm.run("cd %s && %sPS4='+ [$SECONDS s] ' && set -ex\n%s" % (SRC, cache, install),
                             timeout=1800)
            took = time.time() - t0
            with open(os.path.join(vm.dir, "install.log"), "w") as f:
                f.write(out)
            # DKMS keeps the build's output in make.log, not on stdout
            # (<kernel>/<arch>/log/ once installed).
            probes = re.search(r"pvballoon: (probed .*|probe results for .*)", vm.sh(
                "cat /var/lib/dkms/pvballoon/*/build/make.log /var/lib/dkms/pvballoon/*/*/*/log/make.log "
                "2>/dev/null || true"))
            ctx.note("debian12: README install commands took %.0f s (rc %d; %s; %s; %s)"
                     % (took, rc, compiler_cache(vm), vm.seed_note or "not seeded",
                        probes.group(1) if probes else "no probe line"))
            ctx.check(rc == 0, "README install failed (rc %d): %s" % (rc, out[-1500:]))
            ctx.check(driver_of_balloon(vm) == "pvballoon",
                      "after the README's install the balloon is driven by %s" % driver_of_balloon(vm))
            ctx.check(vm.sh("cat /etc/modprobe.d/pvballoon.conf").startswith("# pvballoon:"),
                      "no /etc/modprobe.d/pvballoon.conf")
            s = vm.stats()
            ctx.check(s.get("frontend") == "virtio", "stats frontend %s" % s.get("frontend"))
        with ctx.step("user_commands"):
            user_session(ctx, vm, "installed")
        with ctx.step("reboot_keeps_pvballoon"):
            secs = vm.reboot()
            ctx.note("debian12: reboot took %.0f s" % secs)
            ctx.check(driver_of_balloon(vm) == "pvballoon",
                      "after reboot the balloon is driven by %s" % driver_of_balloon(vm))
            wait_actual(vm, GUEST - 256 * MIB)
            ctx.check(vm.stats()["current"] == 65536, "after reboot: %s" % vm.stats())
            wait_actual(vm, GUEST)
        with ctx.step("readme_remove"):
            rc, out = vm.run("cd /root && PS4='+ [$SECONDS s] ' && set -ex\n" + remove, timeout=600)
            ctx.check(rc == 0, "README removal failed (rc %d): %s" % (rc, out[-1500:]))
            ctx.check(driver_of_balloon(vm) == "virtio_balloon",
                      "after removal the balloon is driven by %s" % driver_of_balloon(vm))
            rc, _ = vm.run("[ -e /etc/modprobe.d/pvballoon.conf ]")
            ctx.check(rc != 0, "removal left /etc/modprobe.d/pvballoon.conf")
            rc, out = vm.run("find /lib/modules -name 'pvballoon.ko*'; ls /var/lib/dkms")
            ctx.check("pvballoon" not in out, "removal left: %s" % out)
        with ctx.step("reboot_after_removal"):
            vm.reboot()
            ctx.check(driver_of_balloon(vm) == "virtio_balloon",
                      "after removal and reboot the balloon is driven by %s" % driver_of_balloon(vm))
            secs = wait_actual(vm, GUEST - 256 * MIB)
            ctx.note("debian12: in-tree driver after removal: 256 MiB in %.1f s" % secs)
            wait_actual(vm, GUEST)


def deb_disk(ctx):
    """make deb on this machine; the .deb as a tar on a raw disk."""
    top = ctx.runner.top
    for cmd in (["scripts/install-deps", "deb"], ["scripts/make-deb"]):
        r = subprocess.run(cmd, cwd=top, capture_output=True, text=True)
        if r.returncode:
            raise TestFailure("%s failed: %s" % (" ".join(cmd), (r.stdout + r.stderr)[-1500:]))
    ctx.note("debian12: make deb: %s" % r.stdout.strip().splitlines()[0])
    deb = "pvballoon-dkms_%s_all.deb" % pvb_version(top)
    tar = os.path.join(ctx.runner.results, ctx.target.name, "deb.tar")
    os.makedirs(os.path.dirname(tar), exist_ok=True)
    with tarfile.open(tar, "w") as t:
        t.add(os.path.join(top, "dist", deb), arcname=deb)
    size = os.path.getsize(tar)
    with open(tar, "ab") as f:
        f.write(b"\0" * (-size % 512 + 10240))
    return tar, deb


def libvirt_session(ctx, vm):
    """The installed guest's disk under libvirt: what README's libvirt
    section tells the user (virsh setmem --live, dommemstat with --period,
    <memballoon freePageReporting='on'>), checked in numbers."""
    ensure_libvirtd()
    vm.poweroff()
    lv = LibvirtVM(ctx.target, "libvirt", ctx.runner.results, disk=vm.disk)
    try:
        with ctx.step("libvirt_boot"):
            lv.start()
            ctx.note("debian12 under libvirt (%s): booted in %.0f s" % (
                virsh("version", "--daemon").splitlines()[-1].strip(), lv.boot_seconds))
            ctx.check(driver_of_balloon(lv) == "pvballoon",
                      "under libvirt the balloon is driven by %s" % driver_of_balloon(lv))
            ctx.check("freePageReporting='on'" in virsh("dumpxml", lv.domain), "no freePageReporting in the domain")
        with ctx.step("virsh_setmem"):
            # The domain has freePageReporting on: the guest's free pages
            # were handed back before the balloon takes them, so QEMU's RSS
            # cannot tell the balloon's share (it rose by 8 MiB in one run).
            # The balloon's own RSS effect is checked by user_commands (QMP,
            # no reporting); here: libvirt's target reaches the guest exactly.
            rss0, v0 = lv.qemu_rss_kib(), lv.vmstat()
            t0 = time.time()
            virsh("setmem", lv.domain, 768 * 1024, "--live")
            wait_for(lambda: lv.dommemstat().get("actual") == 768 * 1024, 120,
                     "virsh dommemstat actual stays at %s KiB" % lv.dommemstat().get("actual"))
            secs = time.time() - t0
            s, v1, rss1 = lv.stats(), lv.vmstat(), lv.qemu_rss_kib()
            ctx.note("debian12: virsh setmem 768M --live: balloon %d MiB in %.1f s, QEMU RSS %+d MiB "
                     "(free page reporting on)" % (s["current"] // 256, secs, (rss1 - rss0) // 1024))
            ctx.check(s["current"] == pages(256 * MIB), "virsh setmem 768M: balloon %d pages" % s["current"])
            ctx.check(v1["balloon_inflate"] - v0["balloon_inflate"] == pages(256 * MIB),
                      "balloon_inflate moved by %d" % (v1["balloon_inflate"] - v0["balloon_inflate"]))
        with ctx.step("virsh_dommemstat"):
            virsh("dommemstat", lv.domain, "--period", 2, "--live")
            time.sleep(5)
            m, st = lv.meminfo(), lv.dommemstat()
            ctx.note("debian12: virsh dommemstat: %s" % " ".join("%s %s" % kv for kv in sorted(st.items())))
            ctx.check(st.get("available") == m["MemTotal"],
                      "dommemstat available %s KiB, guest MemTotal %d KiB" % (st.get("available"), m["MemTotal"]))
            ctx.check(abs(st.get("unused", 0) - m["MemFree"]) <= m["MemTotal"] // 10,
                      "dommemstat unused %s KiB, guest MemFree %d KiB" % (st.get("unused"), m["MemFree"]))
            ctx.check(st.get("last_update", 0) > 0 and "usable" in st and "disk_caches" in st,
                      "dommemstat lacks stats: %s" % st)
        with ctx.step("libvirt_free_page_reporting"):
            virsh("setmem", lv.domain, 1024 * 1024, "--live")
            wait_for(lambda: lv.stats()["current"] == 0, 120, "deflate to 1 GiB: %s" % lv.stats())
            r0 = lv.stats()["reported_pages"]
            lv.sh("dd if=/dev/zero of=/tmp/big bs=1M count=300 2>/dev/null")
            rss1 = lv.qemu_rss_kib()
            lv.sh("rm /tmp/big")
            best = [rss1]

            def dropped():
                best[0] = min(best[0], lv.qemu_rss_kib())
                return (rss1 - best[0]) * 1024 >= 0.7 * 300 * MIB
            wait_for(dropped, 60, "QEMU RSS %d -> %d MiB after freeing 300 MiB" % (rss1 // 1024, best[0] // 1024))
            s = lv.stats()
            ctx.note("debian12: libvirt freePageReporting: QEMU RSS %d -> %d MiB, %d MiB reported"
                     % (rss1 // 1024, best[0] // 1024, (s["reported_pages"] - r0) // 256))
            ctx.check(s["free_page_reporting"] == "on" and s["reported_pages"] - r0 >= 256 * 200,
                      "stats: reporting %s, %d pages" % (s["free_page_reporting"], s["reported_pages"] - r0))
        with ctx.step("libvirt_poweroff"):
            lv.poweroff()
    finally:
        lv.stop()
    vm.start()


def wait_for(fn, timeout, why):
    deadline = time.time() + timeout
    while not fn():
        if time.time() > deadline:
            raise TestFailure(why)
        time.sleep(0.5)


@test("real_guest_package", cost=20, targets=("debian12",), long=True)
def real_guest_package(ctx):
    """The package route (make check-long): apt install of the .deb that
    make deb builds, a reboot, the same disk under libvirt, apt purge, a
    reboot."""
    tar, deb = deb_disk(ctx)
    extra = ["-drive", "file=%s,if=virtio,format=raw,readonly=on" % tar]
    with RealVM(ctx.target, "package", ctx.runner.results, mem="1G", smp=2, balloon={},
                extra_qemu=extra) as vm:
        with ctx.step("apt_install"):
            vm.sh("tar xf /dev/vdb -C /root")
            t0 = time.time()
            rc, out = vm.run("cd /root && apt-get install -y ./%s" % deb, timeout=1800)
            with open(os.path.join(vm.dir, "apt-install.log"), "w") as f:
                f.write(out)
            ctx.note("debian12: apt install ./%s took %.0f s (rc %d)" % (deb, time.time() - t0, rc))
            ctx.check(rc == 0, "apt install failed: %s" % out[-1500:])
            rc, out = vm.run("dpkg-query -W -f='${Conffiles}' pvballoon-dkms")
            ctx.check("/etc/modprobe.d/pvballoon.conf" in out, "not a conffile: %s" % out)
            ctx.check("installed" in vm.sh("dkms status pvballoon"), "dkms status: not installed")
            vm.sh("modprobe pvballoon")
            ctx.check(driver_of_balloon(vm) == "pvballoon",
                      "after apt install and modprobe the balloon is driven by %s" % driver_of_balloon(vm))
        with ctx.step("user_commands"):
            user_session(ctx, vm, "package")
        with ctx.step("reboot_keeps_pvballoon"):
            vm.reboot()
            ctx.check(driver_of_balloon(vm) == "pvballoon",
                      "after reboot the balloon is driven by %s" % driver_of_balloon(vm))
        libvirt_session(ctx, vm)
        with ctx.step("apt_purge"):
            rc, out = vm.run("apt-get purge -y pvballoon-dkms && rmmod pvballoon && modprobe virtio_balloon",
                             timeout=600)
            ctx.check(rc == 0, "apt purge failed: %s" % out[-1500:])
            out = vm.sh("[ ! -e /etc/modprobe.d/pvballoon.conf ] || echo conf-left; "
                        "find /lib/modules -name 'pvballoon.ko*'")
            ctx.check(not out.strip(), "purge left: %s" % out)
            ctx.check(driver_of_balloon(vm) == "virtio_balloon",
                      "after purge the balloon is driven by %s" % driver_of_balloon(vm))
        with ctx.step("reboot_after_purge"):
            vm.reboot()
            ctx.check(driver_of_balloon(vm) == "virtio_balloon",
                      "after purge and reboot the balloon is driven by %s" % driver_of_balloon(vm))
            wait_actual(vm, GUEST - 256 * MIB)
            wait_actual(vm, GUEST)
