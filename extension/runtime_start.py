"""When the function's runtime process started, read from /proc.

Lambda runs the init in three steps: the extensions start and register, then the runtime
starts, then the function's code outside the handler runs; the Telemetry API says when the
init began (initStart) and when the runtime finished it (initRuntimeDone), not when the
runtime started. Extensions share the sandbox's process table with the runtime, so its start
time splits the extensions' part of a cold start from the runtime's and the function's.
"""

from __future__ import annotations

import os
import time

#: How far before this extension's own start a runtime process may have started (it starts
#: after every extension registered, so never before: this only absorbs clock-tick rounding).
_SLACK_S = 1.0


def _started_s(pid: str, tick: float, boot_offset_s: float) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            fields = stat_file.read().rpartition(b")")[2].split()
        return boot_offset_s + int(fields[19]) / tick
    except (OSError, ValueError, IndexError):
        return None


def _is_runtime(pid: str, runtime_api: bytes) -> bool:
    # The runtime alone gets _HANDLER; extensions get AWS_LAMBDA_RUNTIME_API too.
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ_file:
            variables = environ_file.read().split(b"\0")
    except OSError:
        return False
    return b"AWS_LAMBDA_RUNTIME_API=" + runtime_api in variables and any(
        v.startswith(b"_HANDLER=") for v in variables
    )


def runtime_started_at_ms(runtime_api: str) -> int | None:
    """Epoch milliseconds (in the kernel's 10 ms clock ticks) at which the runtime process of
    this sandbox started; None when /proc does not show it (another PID namespace, not
    readable, not started yet)."""
    try:
        tick = float(os.sysconf("SC_CLK_TCK"))
        boot_offset_s = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        names = os.listdir("/proc")
    except (OSError, ValueError, AttributeError):
        return None
    me = str(os.getpid())
    mine = _started_s(me, tick, boot_offset_s)
    if mine is None:
        return None
    api = runtime_api.encode()
    found: float | None = None
    for name in names:
        if not name.isdigit() or name == me:
            continue
        started = _started_s(name, tick, boot_offset_s)
        # Only processes started with or after this extension: on a shared host (a local
        # emulator) that skips nearly every environ read.
        if started is None or started < mine - _SLACK_S:
            continue
        if _is_runtime(name, api) and (found is None or started < found):
            found = started
    return None if found is None else round(found * 1000)
