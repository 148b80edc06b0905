# SPDX-License-Identifier: GPL-2.0
"""The real guest under libvirt: the same disk, booted as a libvirt domain
(Debian's libvirt-daemon-system, qemu:///system, TCG), driven with virsh.

    with LibvirtVM(target, "libvirt", results, disk=vm.disk) as lv:
        lv.virsh("setmem", lv.domain, "786432", "--live")

The domain is transient (virsh create): it exists while the guest runs, and
a reboot or poweroff ends it (on_reboot destroy, as -no-reboot does for the
plain QEMU guests), after which start() creates it again.  The command
channel is the guest's ttyS1 as a libvirt unix serial; the console its
ttyS0 as a file.  QEMU runs as root without relabelling (seclabel static,
relabel no), so libvirt never changes the ownership of the cached image.
QMP goes through libvirt (virsh qemu-monitor-command), so the helpers that
use vm.qmp() work unchanged.
"""
import json
import os
import subprocess
import time
from xml.sax.saxutils import escape

from .errors import BootFailure, TestFailure
from .realvm import RealVM
from .vm import VM

URI = "qemu:///system"


def virsh(*args, timeout=120, check=True):
    r = subprocess.run(["virsh", "-c", URI] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode:
        raise TestFailure("virsh %s: %s" % (" ".join(map(str, args)), (r.stderr or r.stdout).strip()))
    return r.stdout


def ensure_libvirtd():
    """Debian's libvirt, running.  CI machines and containers may have no
    systemd to start it: start the daemons by hand then."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([os.path.join(top, "scripts", "install-deps"), "libvirt"],
                       capture_output=True, text=True)
    if r.returncode:
        raise TestFailure("install-deps libvirt: %s" % (r.stdout + r.stderr)[-1000:])
    os.makedirs("/var/log/libvirt", exist_ok=True)
    os.makedirs("/run/libvirt", exist_ok=True)
    # libvirtd hands QEMU's output to virtlogd.
    if not os.path.exists("/run/libvirt/virtlogd-sock"):
        subprocess.run(["virtlogd", "-d"], capture_output=True)
    if subprocess.run(["virsh", "-c", URI, "version"], capture_output=True).returncode == 0:
        return
    subprocess.run(["libvirtd", "-d"], capture_output=True)
    deadline = time.time() + 60
    while subprocess.run(["virsh", "-c", URI, "version"], capture_output=True).returncode:
        if time.time() > deadline:
            raise TestFailure("libvirtd did not come up (started by hand: no systemd here)")
        time.sleep(0.5)


class DomainProc:
    """What the harness needs of a Popen, for the QEMU that libvirt runs."""

    def __init__(self, domain, pid):
        self.domain, self.pid, self.returncode = domain, pid, None

    def poll(self):
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            self.returncode = 0
        return self.returncode

    def kill(self):
        virsh("destroy", self.domain, check=False)

    def wait(self):
        while self.poll() is None:
            time.sleep(0.2)
        return self.returncode


class LibvirtVM(RealVM):
    def __init__(self, target, name, results, disk, mem_mib=1024, smp=2):
        VM.__init__(self, target, name, results, mem="%dM" % mem_mib, smp=smp, balloon={},
                    boot_timeout=600, initrd=target.initrd)
        self.disk = disk
        self.mem_mib = mem_mib
        self.boots = 0
        self.domain = "pvb-%s-%d" % (name, os.getpid())

    def domain_xml(self):
        cmdline = "root=/dev/vda rw " + self.kernel_cmdline()
        return """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <currentMemory unit='MiB'>{mem}</currentMemory>
  <vcpu>{smp}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='{console}' append='on'/>
      <target port='0'/>
    </serial>
    <serial type='unix'>
      <source mode='bind' path='{sock}'/>
      <target port='1'/>
    </serial>
    <video><model type='none'/></video>
    <memballoon model='virtio' freePageReporting='on'>
      <stats period='2'/>
    </memballoon>
  </devices>
</domain>
""".format(name=self.domain, mem=self.mem_mib, smp=self.smp, kernel=escape(self.target.kernel),
           initrd=escape(self.initrd), cmdline=escape(cmdline), disk=escape(self.disk),
           console=escape(self.console), sock=escape(self.tmp + "/cmd.sock"))

    def _boot_once(self):
        self.boot_attempts += 1
        with open(self.console, "a") as f:
            f.write("\n==== pvballoon harness: libvirt boot attempt %d ====\n" % self.boot_attempts)
        self.console_start = os.path.getsize(self.console)
        xml = os.path.join(self.dir, "domain.xml")
        with open(xml, "w") as f:
            f.write(self.domain_xml())
        start = time.time()
        deadline = start + self.boot_timeout
        r = subprocess.run(["virsh", "-c", URI, "create", xml], capture_output=True, text=True)
        if r.returncode:
            raise BootFailure("virsh create: " + (r.stderr or r.stdout).strip())
        with open("/run/libvirt/qemu/%s.pid" % self.domain) as f:
            self.proc = DomainProc(self.domain, int(f.read().strip()))
        self.cmd_sock = self._connect(self.tmp + "/cmd.sock", deadline)
        self._knock(start, deadline)
        rc, out = self.run("systemctl is-system-running --wait", timeout=self.boot_timeout)
        self.boots += 1
        self.note_boot = out.strip()

    def _qemu_err(self):
        try:
            with open("/var/log/libvirt/qemu/%s.log" % self.domain) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def qmp(self, cmd, **args):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.qmp_log.write(">> " + json.dumps(req) + "\n")
        out = virsh("qemu-monitor-command", self.domain, json.dumps(req))
        self.qmp_log.write(out.strip() + "\n")
        self.qmp_log.flush()
        msg = json.loads(out)
        if "error" in msg:
            raise TestFailure("QMP %s failed: %s" % (cmd, msg["error"]))
        return msg.get("return")

    def dommemstat(self):
        out = virsh("dommemstat", self.domain)
        return {k: int(v) for k, v in (ln.split() for ln in out.splitlines() if ln.strip())}

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.charge_cpu()
            self.proc.kill()
            self.proc.wait()
        if self.cmd_sock:
            self.cmd_sock.close()
        self.cmd_sock = self.qmp_sock = None
