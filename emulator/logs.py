"""CloudWatch-style function logs: what a Lambda user reads in `/aws/lambda/<name>`.

Each environment is one log stream (its AWS_LAMBDA_LOG_STREAM_NAME) holding INIT_START,
START, the function's own lines, END, REPORT, ... . Kept in memory (the last lines per
function) and, with a `log_dir`, appended to `<log_dir>/<function>/<stream>.log` so another
process (`lambdascope logs NAME --follow`) can read or follow them.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from pathlib import Path

KEEP_LINES = 10_000


def stream_file_name(log_stream: str) -> str:
    """'2026/11/24/[$LATEST]ab12…' -> '2026-11-24-LATEST-ab12….log' (safe on every OS)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", log_stream).strip("-") + ".log"


class FunctionLogs:
    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._lock = threading.Lock()
        self._lines: dict[str, deque[str]] = {}

    def write(self, function_name: str, log_stream: str, line: str) -> None:
        if not line.endswith("\n"):
            line += "\n"
        with self._lock:
            self._lines.setdefault(function_name, deque(maxlen=KEEP_LINES)).append(line)
            if self.log_dir is None:
                return
            folder = self.log_dir / function_name
            try:
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / stream_file_name(log_stream), "a", encoding="utf-8") as out:
                    out.write(line)
            except OSError:
                # Logs are a convenience: a full disk must not fail the invocation.
                self.log_dir = None

    def lines(self, function_name: str) -> list[str]:
        with self._lock:
            return list(self._lines.get(function_name, ()))


def read_function_log(log_dir: Path, function_name: str) -> list[str]:
    """Every line of a function's streams, oldest stream first (for `lambdascope logs`)."""
    folder = Path(log_dir) / function_name
    if not folder.is_dir():
        return []
    lines: list[str] = []
    for path in sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime):
        lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines(True))
    return lines
