# SPDX-License-Identifier: GPL-2.0
"""The time budget of a test run.

CI gives .ci/run 90 minutes and kills it silently after that.  The suite
keeps its own clock instead: PVB_T0 (seconds since the epoch) is when the
run started - .ci/run sets it before installing packages, so apt counts -
and PVB_BUDGET is how many seconds it may take.  Past the budget no test
starts, guests still running are stopped at their next command, and the
run ends with a clear verdict and the slowest groups named.

    PVB_BUDGET=5100        .ci/run: 85 of CI's 90 minutes
    PVB_WARN=2700          warn loudly past 45 minutes (default)
"""
import os
import time


class Budget:
    def __init__(self):
        self.start = float(os.environ.get("PVB_T0") or time.time())
        limit = os.environ.get("PVB_BUDGET")
        self.limit = float(limit) if limit else None
        self.warn = float(os.environ.get("PVB_WARN") or 2700)

    def elapsed(self):
        return time.time() - self.start

    def exhausted(self):
        return self.limit is not None and self.elapsed() > self.limit

    def why(self):
        return ("the run's time budget of %d s (PVB_BUDGET) is spent: %d s since it started"
                % (self.limit, self.elapsed()))


BUDGET = Budget()
