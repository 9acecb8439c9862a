"""Child processes of an environment: launching in their own process group, reading their
output line by line, measuring their memory from /proc, killing the whole group."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path


def launch(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    pass_fds: tuple[int, ...] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (own process group) with stdout+stderr on one pipe.
    `preexec_fn` runs in the child after those are set up, just before exec."""
    return subprocess.Popen(
        argv,
        cwd=str(cwd),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        pass_fds=pass_fds,
        preexec_fn=preexec_fn,
    )


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group (children of a handler or an extension included).

    Never after the leader was reaped: its pid (= the group id) may belong to an unrelated
    process by then."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def wait_and_clean_group(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the leader to exit, kill what is left of its group while the leader's pid is
    still held by its zombie (so the group id cannot have been reused), then reap it."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    signal_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2.0)


def memory_kb(pid: int, field: str = "VmRSS") -> int:
    """A /proc/<pid>/status memory field in kB (VmRSS now, VmHWM peak); 0 when unavailable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


# awslambdaric's log frames: type (0xa55a....), length, timestamp in microseconds, message.
FRAME_MAGIC = b"\xa5\x5a"
FRAME_HEADER_BYTES = 16


def split_lines(buffer: bytes) -> tuple[list[tuple[bytes, float | None]], bytes]:
    """Complete lines (newline kept) and the unfinished rest."""
    lines = buffer.split(b"\n")
    rest = lines.pop()
    return [(line + b"\n", None) for line in lines], rest


def split_frames(buffer: bytes) -> tuple[list[tuple[bytes, float | None]], bytes]:
    """Complete frames of the `_LAMBDA_TELEMETRY_LOG_FD` protocol (message, epoch s) and the
    unfinished rest. Bytes that are not a frame are passed on as text rather than lost."""
    records: list[tuple[bytes, float | None]] = []
    while len(buffer) >= FRAME_HEADER_BYTES:
        if buffer[:2] != FRAME_MAGIC:
            records.append((buffer, None))
            return records, b""
        length = int.from_bytes(buffer[4:8], "big")
        end = FRAME_HEADER_BYTES + length
        if len(buffer) < end:
            break
        stamp_us = int.from_bytes(buffer[8:16], "big")
        records.append((buffer[FRAME_HEADER_BYTES:end], stamp_us / 1e6 if stamp_us else None))
        buffer = buffer[end:]
    return records, buffer


class LineReader:
    """Reads a child's output pipe from its own thread and hands over complete lines.

    `sync()` lets the environment wait until everything the child wrote so far has been
    handed over (a handler prints, then posts its response: its lines must come first).
    """

    def __init__(
        self,
        stream: object,
        on_line: Callable[[str, float], None],
        name: str,
        *,
        framed: bool = False,
    ) -> None:
        self._split = split_frames if framed else split_lines
        self._fd = stream.fileno()  # type: ignore[attr-defined]
        self._stream = stream  # keep the file object alive: it owns the descriptor
        self._on_line = on_line
        self._partial = b""
        self._lock = threading.Lock()
        self._eof = threading.Event()
        os.set_blocking(self._fd, False)
        self._thread = threading.Thread(target=self._run, name=f"reader-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._eof.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.2)
            except (OSError, ValueError):
                break
            if not ready:
                continue
            with self._lock:
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    break
                records, self._partial = self._split(self._partial + data)
                now = time.time()
                for record, stamp in records:
                    self._deliver(record, stamp or now)
        with self._lock:
            if self._partial:
                self._deliver(self._partial, time.time())
                self._partial = b""
            self._eof.set()
            with contextlib.suppress(OSError):
                self._stream.close()  # type: ignore[attr-defined]

    def _deliver(self, line: bytes, t: float) -> None:
        try:
            self._on_line(line.decode("utf-8", errors="replace"), t)
        except Exception:  # a consumer bug must not stop the reader
            import logging

            logging.getLogger(__name__).exception("log line consumer failed")

    def sync(self, timeout_s: float = 0.2) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._eof.is_set():
                    return
                try:
                    ready, _, _ = select.select([self._fd], [], [], 0)
                except (OSError, ValueError):
                    return
                if not ready:
                    return
            time.sleep(0.001)

    def wait_eof(self, timeout_s: float) -> bool:
        return self._eof.wait(timeout_s)
