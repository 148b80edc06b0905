# SPDX-License-Identifier: GPL-2.0
"""Busybox initramfs for the test guests, written as a newc cpio archive."""
import lzma
import os
import stat
import subprocess

BUSYBOX = "/bin/busybox"


class Cpio:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b"", target=None, rdev=(0, 0)):
        if target is not None:
            data = target.encode()
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
        self.ino += 1
        self.f.write(hdr.encode() + name_b)
        self.f.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.f.write(data)
        self.f.write(b"\0" * ((4 - len(data) % 4) % 4))

    def mkdir(self, name):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        name = name.strip("/")
        if "/" in name:
            self.mkdir(os.path.dirname(name))
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name.strip("/"), stat.S_IFLNK | 0o777, target=target)

    def chardev(self, name, major, minor):
        self._entry(name.strip("/"), stat.S_IFCHR | 0o600, rdev=(major, minor))

    def close(self):
        self._entry("TRAILER!!!", 0)
        self.f.close()


def read_module(path):
    """A kernel module's bytes, decompressed if the distribution compressed it."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
    return data


def module_order(moddir, names):
    """Paths of @names and their dependencies from modules.dep, dependencies
    first; modules built into the kernel are left out."""
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for ln in f:
            mod, _, rest = ln.partition(":")
            deps[mod] = rest.split()
    byname = {}
    for mod in deps:
        base = os.path.basename(mod).split(".ko")[0].replace("-", "_")
        byname[base] = mod
    order = []

    def visit(mod):
        if mod in order:
            return
        for d in reversed(deps.get(mod, [])):
            visit(d)
        order.append(mod)

    for n in names:
        if n in byname:
            visit(byname[n])
    return [os.path.join(moddir, m) for m in order]


def modname(path):
    return os.path.basename(path).split(".ko")[0].replace("-", "_")


def build(out, init_script, boot_modules=(), extra_modules=(), files=(), busybox=BUSYBOX):
    """Write an initramfs to @out.

    @boot_modules: module paths loaded by /init, in order.
    @extra_modules: module paths placed under /modules for tests to insmod.
    @files: (guest path, host path, mode) tuples.
    @busybox: a static busybox of the guest's architecture.
    """
    c = Cpio(out)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "root",
              "etc", "modules"):
        c.mkdir(d)
    with open(busybox, "rb") as f:
        c.file("bin/busybox", f.read(), 0o755)
    c.symlink("bin/sh", "busybox")
    c.chardev("dev/console", 5, 1)
    with open(init_script, "rb") as f:
        c.file("init", f.read(), 0o755)
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    names = []
    for p in list(boot_modules):
        c.file("modules/%s.ko" % modname(p), read_module(p))
        names.append(modname(p))
    c.file("modules/boot.order", ("\n".join(names) + "\n").encode() if names else b"")
    for p in extra_modules:
        c.file("modules/%s.ko" % modname(p), read_module(p))
    for gpath, hpath, mode in files:
        with open(hpath, "rb") as f:
            c.file(gpath, f.read(), mode)
    c.close()
    return out
