"""What the sweeper's unit tests share."""

import subprocess
import sys

import pytest

from taskvec_ir.runs.sweeping.recovery import Heartbeats


@pytest.fixture
def dead_pid() -> int:
    """The id of a process of this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def no_heartbeats() -> Heartbeats:
    """Heartbeats of an in-memory study: one process, nobody else to watch."""
    return Heartbeats(None, 1, 2)
