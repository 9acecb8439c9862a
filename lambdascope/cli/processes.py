"""Run a collector as a child process: the one process that owns an embedded store.

chDB allows one engine per data path per process, so a command that needs both a collector and
a reader (the demo, the end-to-end tests) runs the collector in a child and reads through its
HTTP read API, exactly as a deployed TUI would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from types import TracebackType

_URL_PATTERN = re.compile(r"https?://[\w.\-\[\]:]+:\d+")


class CollectorStartError(RuntimeError):
    """The collector child exited or did not announce its URL in time."""


class CollectorProcess:
    """``lambdascope collector`` in a child process; a context manager that always stops it."""

    def __init__(
        self,
        store_url: str,
        *,
        database: str = "lambdascope",
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        extra_args: tuple[str, ...] = (),
        start_timeout_s: float = 60.0,
    ) -> None:
        self.store_url = store_url
        self._argv = [
            sys.executable,
            "-m",
            "lambdascope",
            "collector",
            "--store",
            store_url,
            "--database",
            database,
            "--host",
            host,
            "--port",
            str(port),
        ]
        # The token goes in the child's environment: a command line is visible to every user.
        self._token = token
        self._argv += list(extra_args)
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[str] | None = None
        self._output: deque[str] = deque(maxlen=200)
        self.url = ""

    def start(self) -> str:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self._token:
            env["LAMBDASCOPE_TOKEN"] = self._token
        self._process = subprocess.Popen(
            self._argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it cleanly
        )
        announced = threading.Event()
        threading.Thread(target=self._pump, args=(announced,), daemon=True).start()
        deadline = time.monotonic() + self._start_timeout_s
        while not announced.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise CollectorStartError(
                    f"the collector on {self.store_url} did not start:\n" + "\n".join(self._output)
                )
        return self.url

    def _pump(self, announced: threading.Event) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._output.append(line.rstrip())
            if not announced.is_set() and (match := _URL_PATTERN.search(line)):
                self.url = match.group(0)
                announced.set()

    @property
    def output(self) -> str:
        return "\n".join(self._output)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        return process.returncode

    def __enter__(self) -> CollectorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
