"""The HTML report: one self-contained file a Lambda user can open offline and share.

A subject (one function or the whole fleet) over a window: its counts, duration percentiles,
traffic against concurrency, cold starts by initialization type, memory per execution
environment, cost and what would save some, the lambdascope extension's own overhead, and the
findings with log excerpts of their evidence. The plotly library is embedded, about 4.5 MB.

:mod:`.data` runs every query (:mod:`.sql`); :mod:`.model`, :mod:`.charts` and :mod:`.page`
turn the rows into the page without touching the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from lambdascope.analyzers.report.data import read_report
from lambdascope.analyzers.report.model import bucket_seconds
from lambdascope.analyzers.report.page import SECTIONS, render
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["SECTIONS", "bucket_seconds", "write_html_report"]


def write_html_report(
    client: QueryClient,
    path: str | Path,
    window: Window,
    *,
    function_name: str | None = None,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> Path:
    """Write the report of ``function_name`` (the whole fleet when None) over ``window`` to
    ``path`` and return the path. ``progress`` hears each step's name ("reading findings",
    "charts", ...). ``now`` is the generated-at time (the wall clock by default).

    Raises :class:`lambdascope.query.QueryError` when a read fails and :class:`OSError` when
    the file cannot be written.
    """
    data = read_report(client, window, function_name, progress=progress, now=now)
    if progress is not None:
        progress("charts")
    document = render(data)
    if progress is not None:
        progress("writing")
    target = Path(path)
    target.write_text(document, encoding="utf-8")
    return target
