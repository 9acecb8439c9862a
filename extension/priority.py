"""Background threads give the CPU to the function first.

A sandbox has a slice of a vCPU (a full one only from 1,769 MB); whatever the extension's
sender, sampler and telemetry listener do while the handler runs competes with it for that
slice. Linux keeps a nice value per thread, so raising it on those threads alone makes the
scheduler run them when the function leaves the CPU idle (waiting on I/O, or after its
response), while the thread that answers `event/next` keeps the default priority and
invocations still end promptly. Raising one's own nice value needs no privilege.
"""

from __future__ import annotations

import os
import threading

MAX_NICE = 19


def lower_thread_priority(niceness: int) -> bool:
    """Add `niceness` (capped at 19) to the calling thread's nice value; threads it starts
    inherit it. False when the platform has no per-thread priority or refuses it."""
    if niceness <= 0:
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(MAX_NICE, current + niceness))
    except (AttributeError, OSError):
        return False
    return True
