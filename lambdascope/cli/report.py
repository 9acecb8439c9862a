"""``lambdascope report``: write the HTML report of a window to a file and print its path."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

__all__ = ["default_report_path", "run"]


def default_report_path(function_name: str | None, now: datetime) -> Path:
    """``lambdascope-report-<function or fleet>-<YYYYmmdd-HHMM>.html`` in the current folder."""
    subject = re.sub(r"[^A-Za-z0-9_.-]", "_", function_name) if function_name else "fleet"
    return Path(f"lambdascope-report-{subject}-{now.astimezone(UTC):%Y%m%d-%H%M}.html")


class _Progress:
    """One status line on stderr, rewritten in place on a terminal, one line per step else."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.width = 0

    def __call__(self, step: str) -> None:
        text = f"lambdascope report: {step}"
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from lambdascope.analyzers import report
    from lambdascope.cli.options import UsageError, reader_from_args, window_from_args
    from lambdascope.cli.query import clean_error
    from lambdascope.query import QueryError

    now = datetime.now(UTC)
    window = window_from_args(args, now)
    path = args.output or default_report_path(args.function, now)
    if path.parent != Path() and not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {path.parent} does not exist")
    client = reader_from_args(args)
    progress = _Progress(sys.stderr)
    try:
        written = report.write_html_report(
            client, path, window, function_name=args.function, progress=progress
        )
    except QueryError as exc:
        progress.done()
        print(f"lambdascope report: {clean_error(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        progress.done()
        print(f"lambdascope report: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return 2
    progress.done()
    print(written)
    return 0
