# SPDX-License-Identifier: GPL-2.0
"""One QEMU/TCG guest: boot, command channel on ttyS1, QMP, splat checks.

    with VM(target, "name", results) as vm:
        vm.sh("insmod /modules/pvballoon.ko")
        vm.qmp("balloon", value=512 << 20)

Leaving the block collects the guest's dmesg, kills QEMU and fails (raises
TestFailure) if any WARNING/BUG/Oops/KASAN/lockdep/list corruption/Bad page
line appeared in the guest log.
"""
import base64
import ctypes
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .budget import BUDGET
from .errors import TestFailure, BootFailure
from .pool import RESET

# QEMU's CPU time per group ("target/group" -> seconds), for the summary:
# on a machine kept busy by the suite, CPU, not wall time, says which
# groups a cut would pay off in.  A shared guest's time goes to the group
# that had it.
GUEST_CPU = {}
_GUEST_CPU_LOCK = threading.Lock()
_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """User plus system CPU seconds of process @pid, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return None


def guest_cpu():
    """A copy of GUEST_CPU."""
    with _GUEST_CPU_LOCK:
        return dict(GUEST_CPU)


# Lines that fail a test wherever they appear in a guest log.
SPLAT = re.compile(
    r"WARNING:|BUG:|Oops|KASAN:|kernel BUG|Kernel panic|general protection fault"
    r"|possible circular locking|possible recursive locking|inconsistent lock state"
    r"|suspicious RCU usage|DEBUG_LOCKS_WARN_ON|list_add corruption|list_del corruption"
    r"|Bad page|kmemleak: .*suspected memory leak|UBSAN:|Call Trace:")
# tests/guest/init's answer to a line that is not "<id> <base64>".
DAMAGED = re.compile(rb"(?:^|\n)@@PVB-DAMAGED ([^\r\n]*)")

# What tests/guest/init and the real guest's pvb-cmd print on the console
# once they listen on the command channel.
READY = b"PVB-INIT: command channel ready"

QEMU = "qemu-system-x86_64"
QEMU_ARM64 = "qemu-system-aarch64"


# QEMU dies with the runner: a runner killed by CI's timeout or ^C left its
# guests running before.  PR_SET_PDEATHSIG fires when the *thread* that
# forked the child ends, and guests outlive the worker thread that booted
# them (shared guests), so one thread that lives as long as the runner
# starts them all.
_spawn_q = queue.Queue()


def _pdeathsig():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)        # PR_SET_PDEATHSIG


def _spawner():
    while True:
        argv, kw, box, done = _spawn_q.get()
        try:
            box.append(subprocess.Popen(argv, preexec_fn=_pdeathsig, **kw))
        except Exception as e:          # handed to the caller
            box.append(e)
        done.set()


threading.Thread(target=_spawner, name="qemu-spawner", daemon=True).start()


def spawn(argv, **kw):
    """subprocess.Popen(@argv), from the spawner thread."""
    box, done = [], threading.Event()
    _spawn_q.put((argv, kw, box, done))
    done.wait()
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]



def parse_kv(out):
    """"key: value" or "key value" lines, as a dict of ints (or strings)."""
    d = {}
    for ln in out.splitlines():
        parts = ln.replace(":", " ").split()
        if len(parts) >= 2:
            try:
                d[parts[0]] = int(parts[1])
            except ValueError:
                d[parts[0]] = parts[1]
    return d

class VM:
    def __init__(self, target, name, results, mem="1G", smp=1, balloon=None,
                 extra_qemu=(), append="", boot_timeout=None, initrd=None):
        self.target = target
        self.name = name
        self.dir = os.path.join(results, target.name, name)
        os.makedirs(self.dir, exist_ok=True)
        self.mem = mem
        self.smp = smp
        self.balloon = balloon          # None, or a dict of device options
        self.extra_qemu = list(extra_qemu)
        self.append = append
        self.boot_timeout = boot_timeout or target.boot_timeout
        self.initrd = initrd or target.initrd
        self.proc = None
        self.group = self.group_of(name)
        self.cpu_mark = 0.0
        self.cmd_sock = None
        self.qmp_sock = None
        self.qmp_buf = b""
        self.cmd_buf = b""
        self.events = []
        self.seq = 0
        self.tmp = tempfile.mkdtemp(prefix="pvb-vm-")
        self.console = os.path.join(self.dir, "console.log")
        self.qmp_log = open(os.path.join(self.dir, "qmp.log"), "a")
        self.cmd_log = open(os.path.join(self.dir, "commands.log"), "a")
        self.boot_attempts = 0
        self.boot_seconds = None
        self.pool = self.pool_key = None    # set by Ctx.vm(share=True)
        self.ctx = None

    # ---------------------------------------------------------------- boot
    def arm64(self):
        return getattr(self.target, "arch", "amd64") == "arm64"

    def kernel_cmdline(self):
        # arm64's virt machine: the console is its PL011, the command
        # channel a virtio console (tests/guest/init reads pvb.cmd=).
        con = "console=ttyAMA0 pvb.cmd=hvc0" if self.arm64() else "console=ttyS0"
        # unknown_nmi_panic: a guest that stops answering is sent an NMI
        # (hang_report()), and the panic says where its CPU was;
        # panic_print=0x9: any panic also lists every task with its stack
        # and, under lockdep, the locks held - a deadlock's two sides.
        nmi = "" if self.arm64() else " unknown_nmi_panic panic_print=0x9"
        # suspend.pm_test_delay=0: a pm_test suspend (virtio_plain,
        # virtio_target_rounds) holds the devices suspended for
        # pm_test_delay seconds with mdelay(), a busy loop: 5 s of a core
        # under TCG for each suspend, which checks nothing of ours.
        # The lockup detectors' clocks are the host's: a TCG guest given a
        # sixth of a core by a loaded host (a cold make check with a CPU
        # hog: debug kernel, chroots and DKMS building beside the guests)
        # runs a boot-time stretch that takes 3 s unloaded long enough to
        # be called a soft lockup ("stuck for 22s! [swapper/0:1]" at 114 s
        # into a 6.12 boot).  Limits for emulated guests, as syzkaller
        # boots its VMs with: a real lockup of ours still trips them.
        slow = " watchdog_thresh=55 rcupdate.rcu_cpu_stall_timeout=100 workqueue.watchdog_thresh=140"
        return (con + " panic=-1 oops=panic panic_on_warn=1 "
                "no_hash_pointers suspend.pm_test_delay=0" + slow + nmi + " " + self.target.append + " "
                + self.append).strip()

    def qemu_argv(self):
        cmdline = self.kernel_cmdline()
        machine = self.target.spec.get("machine")
        if self.arm64():
            # cortex-a57: ARMv8.0, no pointer authentication or SVE to
            # emulate, which TCG would spend most of its time on.
            head = [QEMU_ARM64, "-M", machine or "virt", "-cpu", "cortex-a57"]
            con = ["-serial", "chardev:con"]
            cmd = ["-device", "virtio-serial-pci,id=vser", "-device", "virtconsole,chardev=cmd"]
        else:
            head = [QEMU] + (["-M", machine] if machine else [])
            con = ["-device", "isa-serial,chardev=con"]
            cmd = ["-device", "isa-serial,chardev=cmd"]
        argv = head + [
                "-accel", "tcg", "-m", self.mem, "-smp", str(self.smp),
                "-nodefaults", "-display", "none", "-no-reboot",
                "-kernel", self.target.kernel, "-initrd", self.initrd,
                "-append", cmdline.strip(),
                "-chardev", "file,id=con,append=on,path=" + self.console] + con + [
                "-chardev", "socket,id=cmd,path=%s/cmd.sock,server=on,wait=off" % self.tmp] + cmd + [
                "-qmp", "unix:%s/qmp.sock,server=on,wait=off" % self.tmp]
        if self.balloon is not None:
            opts = ",".join("%s=%s" % kv for kv in self.balloon.items())
            dev = self.target.spec.get("balloon_device", "virtio-balloon-pci")
            argv += ["-device", dev + ",id=balloon0" + ("," + opts if opts else "")]
        return argv + self.extra_qemu

    def _connect(self, path, deadline):
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BootFailure("QEMU exited with %s: %s" % (self.proc.returncode, self._qemu_err()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                return s
            except OSError:
                s.close()
                time.sleep(0.05)
        raise BootFailure("cannot connect to " + path)

    def _qemu_err(self):
        try:
            with open(os.path.join(self.dir, "qemu.stderr")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def _boot_once(self):
        self.boot_attempts += 1
        with open(self.console, "a") as f:
            f.write("\n==== pvballoon harness: boot attempt %d ====\n" % self.boot_attempts)
        # Splats are looked for in this boot's part of the log only.
        self.console_start = os.path.getsize(self.console)
        argv = self.qemu_argv()
        with open(os.path.join(self.dir, "qemu.argv"), "w") as f:
            f.write(" ".join(argv) + "\n")
        self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(self.dir, "qemu.stderr"), "a"))
        self.cpu_mark = 0.0
        start = time.time()
        deadline = start + self.boot_timeout
        self.qmp_sock = self._connect(self.tmp + "/qmp.sock", deadline)
        self.cmd_sock = self._connect(self.tmp + "/cmd.sock", deadline)
        # The greeting; QEMU may send an event (RESUME) ahead of it, and
        # taking that for the greeting would pair every later command with
        # the answer to the one before.
        while "QMP" not in self._qmp_read():
            pass
        self.qmp("qmp_capabilities")
        self._knock(start, deadline)

    def _knock(self, start, deadline):
        # The guest drops what arrives before it opens the port: knock until
        # it answers.  A boot whose console stops moving is stuck (a timer
        # that never ticks): give up on it early rather than at the deadline.
        #
        # A loaded machine can make one command take the guest longer than
        # a knock waits: then knocks pile up faster than the guest answers
        # them.  So each knock waits twice as long as the last (up to 16 s),
        # a late answer to an earlier knock counts, and bytes on the command
        # channel count as progress as much as console output does (a real
        # guest's console is quiet once its login prompt is up).
        #
        # A knock sent before the guest opened the port is lost, and the
        # next one waits for the doubled timeout (up to 16 s after a guest
        # that became ready just after a lost knock).  So while the console
        # has not yet said "command channel ready" (tests/guest/init,
        # pvb-cmd), watch for it rather than knock, with a knock every 10 s
        # in case a guest never says it.
        seen, moved = None, time.time()
        stall = 60 * self.target.slow
        wait = 2
        ready, read_to, last_knock = False, self.console_start, start
        while True:
            now = time.time()
            if now > deadline:
                raise BootFailure("guest did not answer on the command channel within %ds"
                                  % self.boot_timeout)
            size = (os.path.getsize(self.console), len(self.cmd_buf))
            if size != seen:
                seen, moved = size, now
            elif now - moved > stall:
                raise BootFailure("guest boot stalled: no console output for %d s" % stall)
            if self.proc.poll() is not None:
                raise BootFailure("guest died during boot (QEMU exit %s)" % self.proc.returncode)
            if not ready:
                with open(self.console, "rb") as f:
                    # Re-read a marker's length back: it may have been cut.
                    f.seek(max(self.console_start, read_to - len(READY)))
                    chunk = f.read()
                    read_to = f.tell()
                ready = READY in chunk
                if not ready and now - last_knock < 10:
                    time.sleep(0.1)
                    continue
                last_knock = now
            try:
                rc, out = self.run("echo pvb-sync", timeout=wait, _sync=True)
                if rc == 0 and "pvb-sync" in out:
                    break
            except (ConnectionError, TestFailure) as e:
                # QEMU went away mid-knock (a guest that panicked exits with
                # -no-reboot): a dead boot, which start() retries.  The
                # suite's own time budget running out is not one.
                if BUDGET.exhausted():
                    raise
                raise BootFailure("guest died during boot (%s)" % e)
            except TimeoutError:
                if re.search(rb"@@PVB-END c\d+ 0\r?\n", self.cmd_buf):
                    self.cmd_buf = b""
                    break
                wait = min(wait * 2, 16)
        self.boot_seconds = time.time() - start
        self.cmd_log.write("# booted in %.1f s\n" % self.boot_seconds)

    def start(self):
        """Boot; retry (and say so) only when the guest dies before the
        command channel is up - never after a test has begun."""
        for attempt in range(3):
            try:
                self._boot_once()
                self.check_splat(phase="boot")
                return self
            except BootFailure as e:
                self._kill()
                splat = self.splat_lines()
                if attempt == 2:
                    raise BootFailure("%s; console: %s" % (e, splat[:3] or self.console_tail()))
                print("# %s/%s: boot attempt %d failed before the test began (%s%s); retrying"
                      % (self.target.name, self.name, attempt + 1, e,
                         ": " + splat[0] if splat else ""), flush=True)
                self.cmd_buf = b""
                self.qmp_buf = b""
        return self

    # ------------------------------------------------------- command channel
    def run(self, script, timeout=120, _sync=False):
        """Run a shell script in the guest.  Returns (rc, output)."""
        self.seq += 1
        cid = "c%d" % self.seq
        line = "%s %s\n" % (cid, base64.b64encode(script.encode()).decode())
        t0 = time.time()
        if not _sync:
            self.cmd_log.write("$ %s\n" % script)
        self.cmd_sock.sendall(line.encode())
        end = re.compile(rb"@@PVB-END %s (\d+)\r?\n" % cid.encode())
        begin = b"@@PVB-BEGIN " + cid.encode() + b"\n"
        deadline = time.time() + timeout
        while True:
            m = end.search(self.cmd_buf)
            if m:
                b = self.cmd_buf.find(begin)
                out = self.cmd_buf[b + len(begin):m.start()] if b >= 0 else b""
                self.cmd_buf = self.cmd_buf[m.end():]
                out = out.decode(errors="replace").replace("\r", "")
                if out.endswith("\n"):
                    out = out[:-1]
                rc = int(m.group(1))
                if not _sync:
                    # The time each command took: where a test's minutes go.
                    self.cmd_log.write(out + ("\n" if out else "") + "[rc=%d %.1fs]\n"
                                       % (rc, time.time() - t0))
                    self.cmd_log.flush()
                return rc, out
            bad = None if _sync else DAMAGED.search(self.cmd_buf)
            if bad:
                # tests/guest/init got a line that is not "<id> <base64>"
                # (at boot the knocks that arrive before the port is open
                # lose bytes: those are expected).
                raise TestFailure("the guest received a damaged command line (it read %r) for: %s"
                                  % (bad.group(1)[:60], script[:200]))
            if BUDGET.exhausted():
                raise TestFailure("stopped: " + BUDGET.why())
            left = deadline - time.time()
            if left <= 0:
                if _sync:
                    raise TimeoutError
                raise TestFailure("guest command timed out after %ds: %s\n%s"
                                  % (timeout, script[:200], self.hang_report()))
            if self.proc.poll() is not None:
                raise TestFailure("guest died while running: %s (%s)"
                                  % (script[:200], (self.splat_lines() or ["no splat"])[0]))
            self.cmd_sock.settimeout(min(left, 0.5))
            try:
                data = self.cmd_sock.recv(65536)
                if not data:
                    raise TestFailure("command channel closed")
                self.cmd_buf += data
            except socket.timeout:
                pass

    def hang_report(self):
        """Where a guest that stopped answering is: an NMI, which the
        kernel turns into a panic (unknown_nmi_panic) whose backtrace
        shows what its CPU was running - spinning somewhere, or idle with
        every task asleep.  The guest is gone afterwards; the command had
        failed anyway.  Returns the console's lines from the panic on."""
        if self.arm64() or self.proc.poll() is not None:
            return ""
        start = os.path.getsize(self.console)
        try:
            self.qmp("inject-nmi")
        except (TestFailure, OSError) as e:
            return "(no NMI sent: %s)" % e
        # panic=-1 restarts at once, before the "end Kernel panic" line,
        # and -no-reboot makes that QEMU's exit: the report is complete
        # when QEMU is gone.  The task list crawls out of a 16550.
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            time.sleep(0.5)
        with open(self.console, errors="replace") as f:
            f.seek(start)
            text = f.read()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            return "an NMI got no answer on the console within 60 s"
        return ("after an NMI, the guest's console (every task's state follows in %s):\n%s"
                % (self.console, "\n".join(lines[:30])))

    def sh(self, script, timeout=120):
        """Run a script that must succeed; return its output."""
        rc, out = self.run(script, timeout)
        if rc != 0:
            raise TestFailure("guest command failed (rc=%d): %s\n%s" % (rc, script[:300], out[-1500:]))
        return out

    def read_kv(self, path):
        """A guest file of "key: value" or "key value" lines, as a dict of ints."""
        return parse_kv(self.sh("cat " + path))


    def vmstat(self):
        return self.read_kv("/proc/vmstat")

    def meminfo(self):
        """/proc/meminfo in KiB."""
        return self.read_kv("/proc/meminfo")

    def stats(self):
        return self.read_kv("/sys/kernel/debug/pvballoon/stats")

    def free_slack(self):
        """Pages by which free memory may move without the balloon doing
        anything.  0 on distribution kernels; on the KASAN kernel the
        quarantine of freed objects holds up to 1/32 of RAM and drains
        when it likes."""
        if not self.target.debug:
            return 0
        return self.meminfo()["MemTotal"] // 4 // 32

    def same_free(self, before, after):
        """Free memory is back: within 1% (plus the KASAN slack)."""
        return abs(after - before) <= before // 100 + self.free_slack()

    def quiesced_counters(self):
        """(vmstat, pvballoon stats) read when no migration can be in
        flight: isolation is switched off and isolated pages have come
        back, so kcompactd cannot move the numbers between the two reads.
        Switches migration back on afterwards."""
        d = "/sys/kernel/debug/pvballoon"
        self.sh("echo 0 > %s/migration; n=0; while ! grep -q '^isolated: 0$' %s/stats; do "
                "sleep 0.1; n=$((n+1)); [ $n -lt 600 ] || exit 1; done" % (d, d))
        v, s = self.vmstat(), self.stats()
        self.sh("echo 1 > %s/migration" % d)
        return v, s

    def free_pages(self):
        """MemFree plus the pages parked on per-CPU free lists, in pages."""
        out = self.sh("grep MemFree /proc/meminfo; grep -E '^ +count:' /proc/zoneinfo")
        free = 0
        for ln in out.splitlines():
            p = ln.split()
            if p[0] == "MemFree:":
                free += int(p[1]) // 4
            elif p[0] == "count:":
                free += int(p[1])
        return free

    # ------------------------------------------------------------------ QMP
    def _qmp_read(self, timeout=60):
        deadline = time.time() + timeout
        while b"\n" not in self.qmp_buf:
            if BUDGET.exhausted():
                raise TestFailure("stopped: " + BUDGET.why())
            left = deadline - time.time()
            if left <= 0:
                raise TestFailure("QMP timed out")
            self.qmp_sock.settimeout(left)
            data = self.qmp_sock.recv(65536)
            if not data:
                raise TestFailure("QMP connection closed")
            self.qmp_buf += data
        line, self.qmp_buf = self.qmp_buf.split(b"\n", 1)
        self.qmp_log.write(line.decode() + "\n")
        self.qmp_log.flush()
        return json.loads(line)

    def qmp(self, cmd, **args):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.qmp_log.write(">> " + json.dumps(req) + "\n")
        self.qmp_sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self._qmp_read()
            if "event" in msg:
                self.events.append(msg)
                continue
            if "error" in msg:
                raise TestFailure("QMP %s failed: %s" % (cmd, msg["error"]))
            return msg.get("return")

    def qemu_rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        return 0

    # -------------------------------------------------------------- teardown
    def console_text(self):
        try:
            with open(self.console, errors="replace") as f:
                f.seek(getattr(self, "console_start", 0))
                return f.read()
        except OSError:
            return ""

    def console_tail(self, n=15):
        return "\n".join(self.console_text().splitlines()[-n:])

    def splat_lines(self):
        return [ln for ln in self.console_text().splitlines() if SPLAT.search(ln)]

    def check_splat(self, phase="test"):
        lines = self.splat_lines()
        if lines:
            raise TestFailure("guest log has a splat (%s): %s" % (phase, " | ".join(lines[:4])))

    def group_of(self, name):
        """The group a guest named "<group>-<guest>" belongs to, as
        "target/group" (the key of GUEST_CPU)."""
        return "%s/%s" % (self.target.name, name.split("-")[0])

    def charge_cpu(self):
        """Add QEMU's CPU time since the last mark to the group's."""
        pid = getattr(self.proc, "pid", None)
        now = proc_cpu(pid) if pid else None
        if now is None:
            return
        with _GUEST_CPU_LOCK:
            GUEST_CPU[self.group] = GUEST_CPU.get(self.group, 0.0) + now - self.cpu_mark
        self.cpu_mark = now

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.charge_cpu()
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        for s in (self.cmd_sock, self.qmp_sock):
            if s:
                s.close()
        self.cmd_sock = self.qmp_sock = None

    def stop(self):
        try:
            if self.proc and self.proc.poll() is None and self.cmd_sock:
                try:
                    # kmemleak reports only what points into our module.
                    self.kmemleak_check()
                    rc, out = self.run("dmesg", timeout=60)
                    with open(os.path.join(self.dir, "dmesg.log"), "a") as f:
                        f.write(out)
                except (TestFailure, OSError):
                    if self.proc.poll() is None:
                        raise
        finally:
            self._kill()
            self.cmd_log.close()
            self.qmp_log.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.check_splat()

    def kmemleak_check(self):
        """Debug kernel: scan now; fail if a leak points into pvballoon."""
        if not self.target.debug:
            return
        rc, out = self.run("[ -e /sys/kernel/debug/kmemleak ] || exit 0; "
                           "echo scan > /sys/kernel/debug/kmemleak; "
                           "cat /sys/kernel/debug/kmemleak", timeout=300)
        if "pvb" in out or "pvballoon" in out:
            with open(os.path.join(self.dir, "kmemleak.log"), "w") as f:
                f.write(out)
            raise TestFailure("kmemleak reports a leak in pvballoon")

    def reset_for_reuse(self):
        """Make a guest whose group is done fit for the next one (see
        harness/pool.py): True if it is, False if it must be stopped.
        Raises TestFailure for a splat or a leak of the group's."""
        if not (self.proc and self.proc.poll() is None and self.cmd_sock):
            return False
        self.check_splat()
        self.kmemleak_check()
        try:
            # The next group counts its own messages (lifecycle: ten loads).
            rc, out = self.run("dmesg -c", timeout=60)
            with open(os.path.join(self.dir, "dmesg.log"), "a") as f:
                f.write(out)
            rc, out = self.run(RESET, timeout=120)
            if rc or "reset-done" not in out:
                return False
            if self.balloon is not None:
                rc, out = self.run("for d in /sys/bus/virtio/devices/*; do cat $d/device; done")
                if "0x0005" not in out:
                    return False
                self.qmp("balloon", value=self.mem_bytes())
                self.qmp("qom-set", path="/machine/peripheral/balloon0",
                         property="guest-stats-polling-interval", value=0)
        except (TestFailure, OSError, TimeoutError, KeyError):
            return False
        self.check_splat()
        return True

    def mem_bytes(self):
        n, unit = int(self.mem[:-1]), self.mem[-1].upper()
        return n << {"M": 20, "G": 30}[unit]

    def handed_to(self, group_dir):
        """Another group takes this guest, paused in the pool: it runs
        again, and its splats are looked for from here on."""
        self.charge_cpu()
        self.group = self.group_of(group_dir)
        self.qmp("cont")
        with open(self.console, "a") as f:
            f.write("\n==== pvballoon harness: guest handed to %s ====\n" % group_dir)
        self.console_start = os.path.getsize(self.console)
        self.cmd_log.write("\n==== handed to %s ====\n" % group_dir)
        self.events = []

    def __enter__(self):
        if self.proc and self.proc.poll() is None:
            return self             # a shared guest, already up
        return self.start()

    def __exit__(self, typ, val, tb):
        try:
            if typ is None and self.pool is not None:
                try:
                    if self.pool.put_back(self, self.ctx):
                        return False
                except TestFailure:
                    # A splat or leak of this group's: it fails, and the
                    # guest stops as it would have without sharing.
                    try:
                        self.stop()
                    except TestFailure:
                        pass
                    raise
            self.stop()
        except TestFailure:
            if typ is None:
                raise
        return False
