# SPDX-License-Identifier: GPL-2.0
"""pvballoon test harness: QEMU guests, QMP, a guest command channel, KTAP."""
