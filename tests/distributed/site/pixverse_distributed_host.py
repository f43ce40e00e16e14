"""``[core] hostname_callable`` of the distributed test: each process reports the name the test gave it.

Every component runs on one machine, so the real host name cannot tell the two workers (or the two
triggerers) apart; with this, a task instance's ``hostname`` and a triggerer job's ``hostname`` name
the process ("worker-2", "triggerer-1").
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The process's name from ``PIXVERSE_DISTRIBUTED_NAME``, else the machine's."""
    return os.environ.get("PIXVERSE_DISTRIBUTED_NAME") or socket.getfqdn()
