"""Per-invocation samples from /proc and the extension's own cost.

In a Lambda Managed Instances environment requests overlap, so no figure here is one
request's: :class:`EnvironmentSampler` gives each request the environment's figures over its
lifetime and says so (`proc.scope = "environment"`); memory there is the environment's.

In Lambda the execution environment is a micro-VM, so machine-wide /proc figures (/proc/stat,
/proc/meminfo, /proc/net/dev, file-nr, loadavg) *are* the environment's. On a developer machine
(the emulator) they describe the whole host: read them as upper bounds there.
Sampling runs on a background thread only while an invocation is in progress; a frozen sandbox
costs nothing. The parsers are pure functions over file text.
"""

from __future__ import annotations

import os
import threading
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK")) or 100
    except (ValueError, OSError, AttributeError):
        return 100


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def parse_cpu_jiffies(stat_text: str) -> tuple[int, int] | None:
    """/proc/stat first line -> (user + nice, system + irq + softirq) in clock ticks."""
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            fields = line.split()[1:]
            try:
                values = [int(v) for v in fields[:7]]
            except ValueError:
                return None
            while len(values) < 7:
                values.append(0)
            return values[0] + values[1], values[2] + values[5] + values[6]
    return None


def parse_net_bytes(net_dev_text: str) -> tuple[int, int]:
    """/proc/net/dev -> (received, transmitted) bytes over every interface but loopback."""
    rx = tx = 0
    for line in net_dev_text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep or name.strip() == "lo":
            continue
        fields = rest.split()
        if len(fields) >= 9:
            try:
                rx += int(fields[0])
                tx += int(fields[8])
            except ValueError:
                continue
    return rx, tx


def parse_meminfo_used_kb(meminfo_text: str) -> int | None:
    """MemTotal - MemAvailable (kB): memory in use in the environment."""
    values: dict[str, int] = {}
    for line in meminfo_text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable", "MemFree"):
            try:
                values[key] = int(rest.split()[0])
            except (ValueError, IndexError):
                continue
    total = values.get("MemTotal")
    available = values.get("MemAvailable", values.get("MemFree"))
    if total is None or available is None:
        return None
    return max(0, total - available)


def parse_first_int(text: str) -> int | None:
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def parse_loadavg_threads(loadavg_text: str) -> int | None:
    """/proc/loadavg 4th field `running/total` -> total threads (scheduling entities)."""
    fields = loadavg_text.split()
    if len(fields) >= 4 and "/" in fields[3]:
        try:
            return int(fields[3].split("/")[1])
        except ValueError:
            return None
    return None


def parse_status_kb(status_text: str, key: str) -> int | None:
    """A `kB` line of /proc/self/status, e.g. VmHWM (peak resident memory)."""
    for line in status_text.splitlines():
        if line.startswith(key + ":"):
            return parse_first_int(line[len(key) + 1 :])
    return None


def tmp_used_kb(path: str = "/tmp") -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024


def self_usage() -> dict[str, Any]:
    """The extension process's own cost so far: peak RSS and CPU time."""
    times = os.times()
    status = _read("/proc/self/status") or ""
    return {
        "peak_rss_kb": parse_status_kb(status, "VmHWM"),
        "cpu_ms": round((times.user + times.system) * 1000.0, 1),
    }


def sample_levels() -> dict[str, int | None]:
    """The instantaneous figures whose maxima are kept."""
    meminfo = _read("/proc/meminfo")
    file_nr = _read("/proc/sys/fs/file-nr")
    loadavg = _read("/proc/loadavg")
    return {
        "max_env_memory_used_kb": parse_meminfo_used_kb(meminfo) if meminfo else None,
        "max_open_fds": parse_first_int(file_nr) if file_nr else None,
        "max_threads": parse_loadavg_threads(loadavg) if loadavg else None,
        "max_tmp_used_kb": tmp_used_kb(),
    }


def sample_counters() -> dict[str, int | None]:
    """The cumulative figures whose difference over the invocation is reported."""
    stat = _read("/proc/stat")
    net = _read("/proc/net/dev")
    cpu = parse_cpu_jiffies(stat) if stat else None
    rx_tx = parse_net_bytes(net) if net else None
    return {
        "cpu_user_ticks": cpu[0] if cpu else None,
        "cpu_system_ticks": cpu[1] if cpu else None,
        "net_rx_bytes": rx_tx[0] if rx_tx else None,
        "net_tx_bytes": rx_tx[1] if rx_tx else None,
    }


def merge_maxima(maxima: dict[str, int | None], sample: dict[str, int | None]) -> None:
    for key, value in sample.items():
        if value is None:
            continue
        current = maxima.get(key)
        if current is None or value > current:
            maxima[key] = value


def summarise(
    start: Mapping[str, int | None],
    end: Mapping[str, int | None],
    maxima: Mapping[str, int | None],
    samples: int,
    ticks_per_s: int,
) -> dict[str, Any]:
    """The `proc` object of an invocation record."""

    def delta(key: str) -> int | None:
        a, b = start.get(key), end.get(key)
        return None if a is None or b is None else max(0, b - a)

    user, system = delta("cpu_user_ticks"), delta("cpu_system_ticks")
    result: dict[str, Any] = {
        "cpu_user_ms": None if user is None else user * 1000 // ticks_per_s,
        "cpu_system_ms": None if system is None else system * 1000 // ticks_per_s,
        "net_rx_bytes": delta("net_rx_bytes"),
        "net_tx_bytes": delta("net_tx_bytes"),
        "samples": samples,
    }
    result.update(maxima)
    return result


class ProcSampler:
    """Samples /proc while an invocation runs, on its own thread.

    The main loop only hands over INVOKE records (`rollover`, O(1)), so reading /proc never
    delays its `next` call; each finished record, with its `proc` object, goes to `sink`.
    """

    def __init__(
        self,
        interval_s: float,
        sink: Callable[[dict[str, Any]], None],
        niceness: int = 0,
        finished: Callable[[str], bool] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self._niceness = niceness
        self._sink = sink
        #: Whether a request's runtime is done (its platform.runtimeDone arrived): samples
        #: after that describe no invocation, and would only take CPU from the next one.
        self._finished = finished
        self._lock = threading.Lock()  # guards the queue and the open invocation's figures
        self._process = threading.RLock()  # one closer/opener at a time (thread or finish())
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._stopped = False
        self._record: dict[str, Any] | None = None
        self._start: dict[str, int | None] = {}
        self._maxima: dict[str, int | None] = {}
        self._samples = 0
        self._ticks = _clock_ticks()
        self._thread = threading.Thread(target=self._run, name="lambdascope-proc", daemon=True)

    def start(self) -> ProcSampler:
        self._thread.start()
        return self

    def rollover(self, record: dict[str, Any]) -> None:
        """A new invocation began: close the open one and open `record` (on the thread)."""
        with self._lock:
            self._queue.append(record)
        self._wake.set()

    def finish(self) -> None:
        """Close the open invocation now and hand its record to the sink (SHUTDOWN, the `end`
        flush policy)."""
        with self._process:
            self._drain()
            finished = self._end()
            if finished is not None:
                self._sink(finished)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=1.0)

    def _running(self) -> bool:
        """An invocation is open and its runtime not known to be done."""
        with self._lock:
            record = self._record
        if record is None:
            return False
        return self._finished is None or not self._finished(str(record.get("request_id")))

    def _drain(self) -> bool:
        """Close the open invocation and open each queued one; True when any was opened.
        One reading of /proc serves as the end of one invocation and the start of the next:
        it is taken at an INVOKE, beside the handler that just started."""
        opened = False
        with self._process:
            for _ in range(100000):
                with self._lock:
                    if not self._queue:
                        return opened
                    record = self._queue.popleft()
                counters, levels = sample_counters(), sample_levels()
                finished = self._end(counters, levels)
                if finished is not None:
                    self._sink(finished)
                self._begin(record, counters, levels)
                opened = True
        return opened

    def _begin(
        self,
        record: dict[str, Any],
        counters: dict[str, int | None],
        levels: dict[str, int | None],
    ) -> None:
        with self._lock:
            self._record = record
            self._start = counters
            self._maxima = {}
            merge_maxima(self._maxima, levels)
            self._samples = 1

    def _end(
        self,
        counters: dict[str, int | None] | None = None,
        levels: dict[str, int | None] | None = None,
    ) -> dict[str, Any] | None:
        with self._lock:
            if self._record is None:
                return None
        if counters is None or levels is None:
            counters, levels = sample_counters(), sample_levels()
        with self._lock:
            record = self._record
            if record is None:
                return None
            merge_maxima(self._maxima, levels)
            result = dict(record)
            result["proc"] = summarise(
                self._start, counters, self._maxima, self._samples + 1, self._ticks
            )
            self._record = None
            return result

    def _run(self) -> None:
        if self._niceness:
            from .priority import lower_thread_priority

            lower_thread_priority(self._niceness)
        for _ in range(10**12):
            if self._stopped:
                return
            self._wake.wait(self.interval_s if self._running() else None)
            self._wake.clear()
            if self._stopped:
                return
            try:
                if self._drain():
                    continue  # the invocation just opened was sampled as it opened
                if not self._running():
                    continue
                levels = sample_levels()
                with self._lock:
                    if self._record is not None:
                        merge_maxima(self._maxima, levels)
                        self._samples += 1
            except Exception:  # noqa: BLE001 - sampling is best effort, never fatal
                continue


class EnvironmentSampler:
    """Samples /proc for a Lambda Managed Instances environment, where requests overlap.

    /proc describes the environment, and there several requests (each in its own runtime
    process for Python) share it: its memory, CPU and network cannot be split among them.
    So while any request is open the environment is sampled, and each request's record gets
    the environment's figures over that request's own lifetime (`proc.scope` is
    `"environment"`, with the most requests open at once during it). Requests open and close
    on the Telemetry API's `platform.start` and `platform.report` (no INVOKE event reaches
    extensions there); the /proc reads happen on this sampler's thread.
    """

    def __init__(
        self,
        interval_s: float,
        sink: Callable[[dict[str, Any]], None],
        niceness: int = 0,
    ) -> None:
        self.interval_s = interval_s
        self._niceness = niceness
        self._sink = sink
        self._lock = threading.Lock()
        self._process = threading.RLock()
        #: ("open", record) / ("close", request id), in arrival order.
        self._queue: deque[tuple[str, Any]] = deque()
        #: request id -> [record, start counters, maxima, samples, most open at once]
        self._open: dict[str, list[Any]] = {}
        self._wake = threading.Event()
        self._stopped = False
        self._ticks = _clock_ticks()
        self._thread = threading.Thread(target=self._run, name="lambdascope-proc", daemon=True)

    def start(self) -> EnvironmentSampler:
        self._thread.start()
        return self

    def open(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._queue.append(("open", record))
        self._wake.set()

    def close(self, request_id: str) -> None:
        with self._lock:
            self._queue.append(("close", request_id))
        self._wake.set()

    def finish(self) -> None:
        """Close every open request now (SHUTDOWN) and hand their records to the sink."""
        with self._process:
            self._drain()
            for request_id in list(self._open):
                self._close(request_id, sample_counters(), sample_levels())

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=1.0)

    def open_count(self) -> int:
        with self._process:
            return len(self._open)

    def _drain(self) -> bool:
        changed = False
        with self._process:
            for _ in range(100000):
                with self._lock:
                    if not self._queue:
                        return changed
                    op, value = self._queue.popleft()
                counters, levels = sample_counters(), sample_levels()
                if op == "open":
                    request_id = str(value.get("request_id"))
                    if request_id not in self._open:
                        maxima: dict[str, int | None] = {}
                        merge_maxima(maxima, levels)
                        self._open[request_id] = [value, counters, maxima, 1, 0]
                        self._merge(levels, 0)
                elif value in self._open:
                    self._close(value, counters, levels)
                changed = True
        return changed

    def _merge(self, levels: dict[str, int | None], samples: int) -> None:
        in_flight = len(self._open)
        for entry in self._open.values():
            merge_maxima(entry[2], levels)
            entry[3] += samples
            entry[4] = max(entry[4], in_flight)

    def _close(
        self, request_id: str, counters: dict[str, int | None], levels: dict[str, int | None]
    ) -> None:
        record, start, maxima, samples, most = self._open.pop(request_id)
        merge_maxima(maxima, levels)
        result = dict(record)
        proc = summarise(start, counters, maxima, samples + 1, self._ticks)
        proc["scope"] = "environment"
        proc["max_concurrent_requests"] = max(most, 1)
        result["proc"] = proc
        self._sink(result)

    def _run(self) -> None:
        if self._niceness:
            from .priority import lower_thread_priority

            lower_thread_priority(self._niceness)
        for _ in range(10**12):
            if self._stopped:
                return
            with self._process:
                running = bool(self._open)
            self._wake.wait(self.interval_s if running else None)
            self._wake.clear()
            if self._stopped:
                return
            try:
                if self._drain():
                    continue
                with self._process:
                    if self._open:
                        self._merge(sample_levels(), 1)
            except Exception:  # noqa: BLE001 - sampling is best effort, never fatal
                continue
