"""The extension's own log: one line per message on stderr, warning level by default.

Not the `logging` module: importing it costs ~12 ms of start-up, and everything this process
writes to stderr becomes `extension` telemetry that is delivered back to its own listener, so
the log stays minimal and is never written from the Telemetry listener per event.
"""

from __future__ import annotations

import sys

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40

LEVELS = {"DEBUG": DEBUG, "INFO": INFO, "WARNING": WARNING, "WARN": WARNING, "ERROR": ERROR}
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}

_level = WARNING


def set_level(level: int) -> None:
    global _level
    _level = level


def enabled(level: int) -> bool:
    return level >= _level


def log(level: int, message: str) -> None:
    """Write one line `[lambdascope] LEVEL message`; never raises (a closed stderr is ignored)."""
    if level < _level:
        return
    try:
        sys.stderr.write("[lambdascope] %s %s\n" % (_NAMES.get(level, str(level)), message))
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - logging must never take the agent down
        pass


def debug(message: str) -> None:
    log(DEBUG, message)


def info(message: str) -> None:
    log(INFO, message)


def warning(message: str) -> None:
    log(WARNING, message)


def error(message: str) -> None:
    log(ERROR, message)
