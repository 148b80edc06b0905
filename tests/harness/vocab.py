# SPDX-License-Identifier: GPL-2.0
"""The tests' shared vocabulary: one name, one meaning.

Sizes are bytes unless the name says pages.  The guest page is 4 KiB on
every architecture pvballoon builds for (VIRTIO_BALLOON_PFN_SHIFT).
"""
DEBUGFS = "/sys/kernel/debug/pvballoon"     # the balloon's debugfs directory
SYSFS = "/sys/kernel/pvballoon"             # its sysfs directory (lockdown-safe)
PARAMS = "/sys/module/pvballoon/parameters"  # its module parameters
PAGE = 4096                                 # bytes in a guest page
MIB = 1 << 20                               # bytes
GIB = 1 << 30                               # bytes
PAGES_PER_MIB = MIB // PAGE                 # 256
ROUND = 128 * MIB                           # a resize's round (PVB_ROUND_PAGES, src/core.c)
PORTABLE_PFNS = 256                         # PFNs per buffer Firecracker and cloud-hypervisor parse


def pages(nbytes):
    """Guest pages in @nbytes."""
    return nbytes // PAGE
