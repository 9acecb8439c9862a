"""``lambdascope logs NAME [--follow]``: a function's log as a Lambda user reads it in CloudWatch.

The emulator appends each environment's stream (INIT_START, START, the function's lines, END,
REPORT, ...) to ``<log_dir>/<function>/<stream>.log``; this reads or follows those files.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from lambdascope.emulator.config import ConfigError, ConfigFileError, load_emulator_settings
from lambdascope.emulator.logs import read_function_log


def resolve_log_dir(*, config: Path | None, log_dir: Path | None) -> Path:
    if log_dir is not None:
        return log_dir
    assert config is not None
    try:
        settings = load_emulator_settings(config)
    except (ConfigError, ConfigFileError) as exc:
        raise ValueError(str(exc)) from exc
    if "log_dir" not in settings:
        raise ValueError(
            f"{config} has no log_dir in its [emulator] table: add log_dir = 'logs' "
            "so the emulator writes the functions' logs there"
        )
    return Path(config).parent / settings["log_dir"]


def print_function_log(log_dir: Path, name: str, out: TextIO = sys.stdout) -> int:
    lines = read_function_log(log_dir, name)
    if not lines and not (log_dir / name).is_dir():
        print(f"lambdascope logs: no log for {name!r} in {log_dir}", file=sys.stderr)
        return 1
    out.writelines(lines)
    return 0


def follow_function_log(
    log_dir: Path,
    name: str,
    out: TextIO = sys.stdout,
    *,
    poll_s: float = 0.5,
    max_polls: int | None = None,
) -> int:
    """Print every stream's existing lines, then new lines as environments write them."""
    offsets: dict[Path, int] = {}
    polls = 0
    while max_polls is None or polls < max_polls:
        polls += 1
        folder = log_dir / name
        paths = sorted(folder.glob("*.log"), key=_mtime) if folder.is_dir() else []
        for path in paths:
            with open(path, "rb") as stream:
                stream.seek(offsets.get(path, 0))
                chunk = stream.read()
            # Print whole lines only: the emulator may be mid-write.
            complete = chunk[: chunk.rfind(b"\n") + 1]
            offsets[path] = offsets.get(path, 0) + len(complete)
            out.write(complete.decode("utf-8", "replace"))
        out.flush()
        time.sleep(poll_s)
    return 0


def _mtime(path: Path) -> float:
    return path.stat().st_mtime
