# SPDX-License-Identifier: GPL-2.0
"""The movable balloon core through debugfs (issue: private movable core)."""
import re

from harness.errors import Skip
from harness.runner import test
from harness.vm import parse_kv
from harness.vocab import DEBUGFS as D, PAGES_PER_MIB, PARAMS, SYSFS

# Keys of stats that a refused write must leave exactly as they were.
STABLE = ("current", "target", "listed", "isolated", "inflated", "deflated",
          "alloc_failed", "last_inflate_pages", "last_deflate_pages")

BAD_SIZES = [
    ("empty", ""), ("newline_only", "\\n"), ("negative", "-5"), ("plus_sign", "+5"),
    ("non_numeric", "abc"), ("trailing_garbage", "12abc"), ("trailing_space", "12 "),
    ("leading_space", " 12"), ("unknown_suffix", "12X"), ("two_letter_suffix", "12KB"),
    ("decimal_point", "1.5M"), ("hex", "0x10"), ("overflow_u64", "99999999999999999999"),
    ("overflow_shift", "17179869184G"), ("over_long_max", "9223372036854775808"),
    ("over_long_write", "1" * 40), ("embedded_nul", "12\\0"), ("nul_then_digits", "1\\x002"),
    ("leading_newline", "\\n12"), ("two_newlines", "12\\n\\n"), ("suffix_only", "M"),
]


def write(vm, f, s):
    """One write(2) of @s (C escapes) to debugfs file @f: 'ok N' or 'err E'."""
    return vm.sh("pvbwrite %s/%s '%s'" % (D, f, s)).strip()


def stable(stats):
    return {k: stats[k] for k in STABLE}


def meminfo_kib(vm, key):
    return vm.meminfo()[key]


def verify(ctx, vm):
    v = vm.read_kv(D + "/verify")
    s = vm.stats()
    ctx.check(v["bad"] == 0, "verify: %d listed pages are not proper balloon pages" % v["bad"])
    ctx.check(v["walked"] == v["listed"], "verify: list has %d pages, counter says %d"
              % (v["walked"], v["listed"]))
    ctx.check(s["current"] == s["listed"] + s["isolated"],
              "current %d != listed %d + isolated %d" % (s["current"], s["listed"], s["isolated"]))
    return v


def kernel_balloon_pages(ctx, vm, want):
    """Kernels 6.15+ count balloon pages themselves (nr_balloon_pages,
    meminfo Balloon:).  Whichever side counts, it must count once."""
    # Fold the per-CPU deltas, or the node counter lags by a few pages.
    vm.sh("echo 1 > /proc/sys/vm/stat_refresh")
    v = vm.vmstat()
    if "nr_balloon_pages" not in v:
        ctx.note("%s: no nr_balloon_pages before 6.15" % ctx.target.name)
        return
    bal = meminfo_kib(vm, "Balloon")
    ctx.check(v["nr_balloon_pages"] == want and bal == want * 4,
              "nr_balloon_pages %d, meminfo Balloon %d kB; the balloon holds %d pages"
              % (v["nr_balloon_pages"], bal, want))


@test("core", cost=2)
def core(ctx):
    with ctx.vm("core", mem="1G", share=True) as vm:
        vm.sh("insmod /modules/pvballoon.ko")
        with ctx.step("inflate_256M_exact"):
            v0, f0, t0 = vm.vmstat(), vm.free_pages(), meminfo_kib(vm, "MemTotal")
            vm.sh("echo 256M > %s/inflate" % D)
            v1, f1, t1, s1 = vm.vmstat(), vm.free_pages(), meminfo_kib(vm, "MemTotal"), vm.stats()
            d = v1["balloon_inflate"] - v0["balloon_inflate"]
            ctx.note("inflate 256M: balloon_inflate +%d, free -%d MiB, MemTotal -%d KiB, %d MiB/s"
                     % (d, (f0 - f1) // PAGES_PER_MIB, t0 - t1, s1["last_inflate_mib_s"]))
            ctx.check(d == 256 * PAGES_PER_MIB, "balloon_inflate moved by %d, want 256 * PAGES_PER_MIB" % d)
            ctx.check(s1["current"] == 256 * PAGES_PER_MIB and s1["inflated"] == 256 * PAGES_PER_MIB and s1["target"] == 256 * PAGES_PER_MIB,
                      "stats disagree: %s" % s1)
            # A fresh 1 GiB guest has far more free 2 MiB blocks than
            # huge_keep_mb (1/8 of RAM): the inflate takes whole blocks.
            ctx.check(s1["huge_blocks"] >= 64, "only %d whole 2 MiB blocks in a 256 MiB inflate"
                      % s1["huge_blocks"])
            ctx.check(f0 - f1 >= 250 * PAGES_PER_MIB - vm.free_slack(),
                      "free memory dropped by only %d MiB" % ((f0 - f1) // PAGES_PER_MIB))
            ctx.check(t0 - t1 == 256 * 1024, "MemTotal dropped by %d KiB, want 262144" % (t0 - t1))
            ctx.check(v1["balloon_deflate"] == v0["balloon_deflate"], "balloon_deflate moved")
            v = verify(ctx, vm)
            if s1["backend"] == "movable_ops":
                # A quiet list is walked in batches of 1024 with the lock
                # (and interrupts) let go between them, never begun again.
                ctx.check(v["breaks"] >= v["walked"] // 1024 - 1 and v["restarts"] == 0,
                          "verify walked %d pages with %d lock breaks, %d restarts"
                          % (v["walked"], v["breaks"], v["restarts"]))
            kernel_balloon_pages(ctx, vm, 256 * PAGES_PER_MIB)
        with ctx.step("deflate_128M_then_all_exact"):
            vm.sh("echo 128M > %s/deflate" % D)
            v2, s2 = vm.vmstat(), vm.stats()
            ctx.check(v2["balloon_deflate"] - v0["balloon_deflate"] == 128 * PAGES_PER_MIB,
                      "balloon_deflate moved by %d after 128M" % (v2["balloon_deflate"] - v0["balloon_deflate"]))
            ctx.check(s2["current"] == 128 * PAGES_PER_MIB, "current %d after deflating 128M" % s2["current"])
            vm.sh("echo all > %s/deflate" % D)
            v3, s3, f3, t3 = vm.vmstat(), vm.stats(), vm.free_pages(), meminfo_kib(vm, "MemTotal")
            ctx.check(v3["balloon_deflate"] - v0["balloon_deflate"] == 256 * PAGES_PER_MIB,
                      "balloon_deflate moved by %d in all" % (v3["balloon_deflate"] - v0["balloon_deflate"]))
            ctx.check(v3["balloon_inflate"] - v0["balloon_inflate"] == 256 * PAGES_PER_MIB, "balloon_inflate moved")
            ctx.check(s3["current"] == 0 and s3["deflated"] == 256 * PAGES_PER_MIB, "stats after all: %s" % s3)
            ctx.check(t3 == t0, "MemTotal %d KiB, was %d" % (t3, t0))
            kernel_balloon_pages(ctx, vm, 0)
            ctx.check(vm.same_free(f0, f3), "free memory %d MiB, was %d MiB"
                      % (f3 // PAGES_PER_MIB, f0 // PAGES_PER_MIB))
        with ctx.step("huge_blocks_off"):
            vm.sh("echo 0 > %s/huge_blocks" % PARAMS)
            b0 = vm.stats()["huge_blocks"]
            vm.sh("echo 64M > %s/inflate; echo all > %s/deflate" % (D, D))
            s = vm.stats()
            vm.sh("echo 1 > %s/huge_blocks" % PARAMS)
            ctx.check(s["huge_blocks"] == b0 and s["current"] == 0,
                      "huge_blocks=0 still took whole blocks: %s" % s)
        with ctx.step("size_suffixes_round_up"):
            for arg, pages in (("1", 1), ("5K", 2), ("4K", 1), ("1k", 1), ("2m", 512), ("3", 3)):
                before = vm.stats()["current"]
                r = write(vm, "inflate", arg + "\\n")
                after = vm.stats()["current"]
                ctx.check(r.startswith("ok") and after - before == pages,
                          "inflate %r: %s, balloon grew by %d, want %d" % (arg, r, after - before, pages))
            vm.sh("echo all > %s/deflate" % D)
        with ctx.step("bad_input_table"):
            vm.sh("echo 100 > %s/inflate" % D)
            s0 = stable(vm.stats())
            bad = []
            # One round trip for the whole table: each write, then the
            # stats it left.
            cases = [(f, name, arg) for f in ("inflate", "deflate", "target")
                     for name, arg in BAD_SIZES + [("word_all", "all" if f != "deflate" else "ALL")]]
            out = vm.sh("; ".join("echo '@@ %s %s'; pvbwrite %s/%s '%s'; cat %s/stats"
                                  % (f, name, D, f, arg, D) for f, name, arg in cases))
            for chunk in out.split("@@ ")[1:]:
                head, _, rest = chunk.partition("\n")
                r, _, st = rest.partition("\n")
                s = stable(parse_kv(st))
                if r.strip() != "err EINVAL" or s != s0:
                    bad.append("%s: %s%s" % (head, r.strip(), "" if s == s0 else ", stats changed"))
                    s0 = s          # report each bad write once
            ctx.check(len(out.split("@@ ")) == len(cases) + 1, "the table did not run: %s" % out[-300:])
            mig = (("two", "2"), ("word", "yes"), ("empty", ""), ("padded", "01"),
                   ("space", "1 "), ("nul", "1\\0"))
            out = vm.sh("; ".join("echo '@@ migration %s'; pvbwrite %s/migration '%s'; cat %s/migration"
                                  % (name, D, arg, D) for name, arg in mig))
            for chunk in out.split("@@ ")[1:]:
                head, r, now = (chunk.split("\n") + ["", ""])[:3]
                if r.strip() != "err EINVAL" or now.strip() != "1":
                    bad.append("%s: %s, now %s" % (head, r.strip(), now.strip()))
            ctx.check(len(out.split("@@ ")) == len(mig) + 1, "the table did not run: %s" % out[-300:])
            ctx.check(not bad, "; ".join(bad))
            ctx.note("bad input: %d writes refused with EINVAL, stats unchanged"
                     % (3 * (len(BAD_SIZES) + 1) + 6))
        with ctx.step("deflate_more_than_held"):
            vm.sh("dmesg -c >/dev/null")
            s0 = stable(vm.stats())
            r = write(vm, "deflate", "101")
            ctx.check(r == "err EINVAL", "deflate 101 of 100: %s" % r)
            ctx.check(stable(vm.stats()) == s0, "stats changed")
            ctx.check("balloon holds 100" in vm.sh("dmesg"), "no clear message in dmesg")
            ctx.check(write(vm, "deflate", "all") == "ok 3", "deflate all failed")
        with ctx.step("target_converges"):
            for t in (5000, 100, 70000, 0):
                r = write(vm, "target", "%d\\n" % t)
                s = vm.stats()
                ctx.check(r.startswith("ok") and s["current"] == t and s["target"] == t,
                          "target %d: %s, stats current %d target %d" % (t, r, s["current"], s["target"]))
                ctx.check(vm.sh("cat %s/target" % D).strip() == str(t), "target reads back wrong")
        with ctx.step("partial_inflate_no_oom"):
            vm.sh("dmesg -c >/dev/null")
            f0 = vm.free_pages()
            r = write(vm, "inflate", "4G")
            s, msg = vm.stats(), vm.sh("dmesg")
            ctx.note("inflate 4G in a 1 GiB guest: %s, kept %d MiB, reserve %d MiB"
                     % (r, s["current"] // PAGES_PER_MIB, s["reserve"] // PAGES_PER_MIB))
            ctx.check(r == "err ENOMEM", "inflate 4G: %s" % r)
            ctx.check(s["current"] > (f0 // 2), "kept only %d pages of %d free" % (s["current"], f0))
            ctx.check(s["current"] == s["inflated"] - s["deflated"], "stats inconsistent: %s" % s)
            ctx.check(re.search(r"ran dry after %d of 1048576 pages" % s["current"], msg),
                      "dmesg does not say how far it got: %s" % msg[-400:])
            ctx.check("oom" not in msg.lower(), "the OOM killer woke: %s" % msg[-400:])
            ctx.check(vm.sh("echo alive; ls / | wc -l").startswith("alive"), "guest unusable")
            vm.sh("echo all > %s/deflate" % D)
            f1 = vm.free_pages()
            ctx.check(vm.same_free(f0, f1), "free memory %d MiB, was %d MiB" % (f1 // PAGES_PER_MIB, f0 // PAGES_PER_MIB))
        with ctx.step("oom_gives_back_own_share"):
            # No host here: what the guest ballooned itself comes back
            # before the OOM killer runs (core_oom.c).  MemTotal follows
            # the balloon, so the default overcommit heuristic would refuse
            # memhog's mmap outright: let it map, so that it faults.
            vm.sh("dmesg -c >/dev/null; echo 1 > /proc/sys/vm/overcommit_memory; "
                  "echo 512M > %s/inflate" % D)
            k0, free = vm.vmstat()["oom_kill"], vm.free_pages()
            want = free // PAGES_PER_MIB + 128
            rc, out = vm.run("memhog %d" % want, timeout=300 * ctx.target.slow)
            s, k1, msg = vm.stats(), vm.vmstat()["oom_kill"], vm.sh("dmesg")
            ctx.note("%s: memhog %d MiB with %d MiB free and a 512 MiB balloon: rc %d, balloon now %d MiB"
                     % (ctx.target.name, want, free // PAGES_PER_MIB, rc, s["current"] // PAGES_PER_MIB))
            ctx.check(rc == 0 and "0 bad pages" in out, "memhog failed (%d): %s" % (rc, out[-200:]))
            ctx.check(k1 == k0, "the OOM killer ran %d times" % (k1 - k0))
            ctx.check(s["current"] <= (512 - 128) * PAGES_PER_MIB, "the balloon kept %d pages" % s["current"])
            ctx.check("the guest had ballooned itself" in msg, "dmesg does not say: %s" % msg[-300:])
            verify(ctx, vm)
            vm.sh("echo all > %s/deflate; echo 0 > /proc/sys/vm/overcommit_memory" % D)
        with ctx.step("rmmod_inflated"):
            f0, t0 = vm.free_pages(), meminfo_kib(vm, "MemTotal")
            vm.sh("echo 200M > %s/inflate" % D)
            t_mid = meminfo_kib(vm, "MemTotal")
            vm.sh("dmesg -c >/dev/null; rmmod pvballoon")
            f1, t1 = vm.free_pages(), meminfo_kib(vm, "MemTotal")
            ctx.check("returned 51200 pages" in vm.sh("dmesg"), "unload did not report the pages")
            ctx.check(t_mid == t0 - 200 * 1024 and t1 == t0, "MemTotal %d -> %d -> %d" % (t0, t_mid, t1))
            ctx.check(vm.same_free(f0, f1), "free memory %d MiB after rmmod, was %d MiB"
                      % (f1 // PAGES_PER_MIB, f0 // PAGES_PER_MIB))
        with ctx.step("adjust_memtotal_off"):
            vm.sh("insmod /modules/pvballoon.ko adjust_memtotal=0")
            t0 = meminfo_kib(vm, "MemTotal")
            vm.sh("echo 64M > %s/inflate" % D)
            ctx.check(meminfo_kib(vm, "MemTotal") == t0, "MemTotal moved with adjust_memtotal=0")
            ctx.check(vm.stats()["current"] == 16384, "inflate failed")
            vm.sh("rmmod pvballoon")


S = SYSFS


@test("sysfs_lockdown", cost=1, debug=False)
def sysfs_lockdown(ctx):
    """/sys/kernel/pvballoon: the same requests and parser as debugfs, and
    what still works once the kernel is locked down (Secure Boot turns on
    lockdown=integrity, which refuses every debugfs write)."""
    with ctx.vm("sysfs", mem="1G") as vm:
        vm.sh("insmod /modules/pvballoon.ko")
        with ctx.step("sysfs_requests"):
            v0 = vm.vmstat()
            r = vm.sh("pvbwrite %s/inflate 64M" % S).strip()
            v1, s = vm.vmstat(), vm.stats()
            ctx.check(r == "ok 3" and s["current"] == 16384 and v1["balloon_inflate"] - v0["balloon_inflate"] == 16384,
                      "sysfs inflate 64M: %s, current %d" % (r, s["current"]))
            ctx.check(vm.sh("cat %s/current %s/target" % (S, S)).split() == ["16384", "16384"],
                      "current/target read back wrong")
            vm.sh("echo 1000 > %s/target" % S)
            ctx.check(vm.stats()["current"] == 1000, "sysfs target 1000: %s" % vm.stats())
            bad = []
            # A write of nothing never reaches a sysfs store (the write
            # returns 0): nothing to refuse there.
            for name, arg in [b for b in BAD_SIZES if b[0] != "empty"]:
                r = vm.sh("pvbwrite %s/deflate '%s'" % (S, arg)).strip()
                if r != "err EINVAL":
                    bad.append("%s: %s" % (name, r))
            ctx.check(not bad and vm.stats()["current"] == 1000, "sysfs took bad input: %s" % "; ".join(bad))
            ctx.check(vm.sh("pvbwrite %s/deflate all" % S).strip() == "ok 3" and vm.stats()["current"] == 0,
                      "sysfs deflate all")
        with ctx.step("lockdown_integrity"):
            vm.sh("mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security")
            rc, _ = vm.run("[ -w /sys/kernel/security/lockdown ]")
            if rc:
                raise Skip("this kernel has no lockdown LSM")
            vm.sh("echo integrity > /sys/kernel/security/lockdown")
            ctx.check("[integrity]" in vm.sh("cat /sys/kernel/security/lockdown"), "lockdown not raised")
            r = vm.sh("pvbwrite %s/inflate 16M" % D).strip()
            ctx.check(r == "err EPERM", "debugfs write under lockdown: %s (want EPERM)" % r)
            c0 = int(vm.sh("cat %s/current" % S))
            r = vm.sh("pvbwrite %s/inflate 16M" % S).strip()
            s = vm.stats()                       # read-only debugfs files stay readable
            ctx.check(r == "ok 3" and s["current"] == c0 + 4096,
                      "sysfs inflate under lockdown: %s, current %d -> %d" % (r, c0, s["current"]))
            vm.sh("echo 0 > %s/target" % S)
            ctx.check(vm.sh("cat %s/current" % S).strip() == "0", "sysfs target 0 under lockdown")
            vm.sh("rmmod pvballoon")
