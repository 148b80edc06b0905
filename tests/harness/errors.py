# SPDX-License-Identifier: GPL-2.0
class TestFailure(Exception):
    """A check failed: the test is 'not ok'."""


class BootFailure(TestFailure):
    """The guest did not come up (before any test step ran)."""


class Skip(Exception):
    """The test cannot apply here; the message says why."""
