from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from textual import events

from lambdascope.analyzers.fleet import FunctionSummary
from lambdascope.tui.figures import NOT_MEASURED, duration, money, sparkline
from lambdascope.tui.format import ago, pct, share
from lambdascope.tui.widgets.nav_table import NavTable


@dataclass(frozen=True)
class Column:
    label: str
    cell: Callable[[FunctionSummary, datetime], str]
    #: What ``s`` sorts by; numbers sort largest first, the name A to Z.
    key: Callable[[FunctionSummary], Any]
    #: Which columns a narrow terminal keeps: the lowest numbers (see :func:`fitting`).
    priority: int


def _rate(part: int, row: FunctionSummary) -> float:
    return part / row.invocations if row.invocations else 0.0


def _headroom(row: FunctionSummary) -> str:
    """Max Memory Used as a share of the size: ``81/84%`` (p95/peak), or the peak alone."""
    if row.memory_pct_p95 is None or row.max_memory_pct is None:
        return pct(row.max_memory_pct)
    return f"{row.memory_pct_p95:.0f}/{row.max_memory_pct:.0f}%"


def _or_low(value: float | None) -> float:
    return -1.0 if value is None else value


def _seen(row: FunctionSummary) -> float:
    return row.last_seen.timestamp() if row.last_seen else 0.0


def _latest(values: Sequence[float | None]) -> float:
    """The trend sorts by its latest measured bucket: what is slow now."""
    return next((v for v in reversed(values) if v is not None), -1.0)


def _count(value: int | None) -> str:
    """A count that may be unknown: ``-`` (not 0) when nothing measured it."""
    return NOT_MEASURED if value is None else f"{value:,}"


# Throttles come from CloudWatch metric streams (Lambda's throttles never reach a sandbox):
# "-" for a function the store has no stream for, since unknown is not zero. "Init p95" is
# the p95 of on-demand initializations only: provisioned-concurrency and SnapStart inits
# happen before a request arrives, so no request waits for them.
#: The sparkline column: shown on screen, left out of exports.
TREND = "p99 trend"

COLUMNS: tuple[Column, ...] = (
    Column("Function", lambda r, _: r.function_name, lambda r: r.function_name, 0),
    Column("Invocations", lambda r, _: f"{r.invocations:,}", lambda r: r.invocations, 1),
    Column("Errors", lambda r, _: share(r.errors, r.invocations), lambda r: _rate(r.errors, r), 2),
    Column("Timeouts", lambda r, _: f"{r.timeouts:,}", lambda r: r.timeouts, 6),
    Column(
        "Throttles",
        lambda r, _: _count(r.throttles),
        lambda r: _or_low(r.throttles),
        5,
    ),
    Column(
        "Cold starts",
        lambda r, _: share(r.cold_starts, r.invocations),
        lambda r: _rate(r.cold_starts, r),
        7,
    ),
    Column(
        "Init p95",
        lambda r, _: duration(r.init_p95_ms),
        lambda r: _or_low(r.init_p95_ms),
        9,
    ),
    Column(
        "p50", lambda r, _: duration(r.p50_duration_ms), lambda r: _or_low(r.p50_duration_ms), 10
    ),
    Column(
        "p99", lambda r, _: duration(r.p99_duration_ms), lambda r: _or_low(r.p99_duration_ms), 3
    ),
    Column(TREND, lambda r, _: sparkline(r.p99_trend), lambda r: _latest(r.p99_trend), 8),
    Column(
        "Memory p95/peak",
        lambda r, _: _headroom(r),
        lambda r: _or_low(r.memory_pct_p95 if r.memory_pct_p95 is not None else r.max_memory_pct),
        11,
    ),
    Column("Cost", lambda r, _: money(r.cost_usd), lambda r: _or_low(r.cost_usd), 4),
    Column("Last seen", lambda r, now: ago(r.last_seen, now), _seen, 12),
)

#: A cell's padding on each side (DataTable's default) and the vertical scrollbar's width.
CELL_PADDING = 1
SCROLLBAR = 2


def fitting(widths: Sequence[int], priorities: Sequence[int], available: int) -> list[int]:
    """Pure: the indexes of the columns to show, in table order: the most important ones whose
    widths (content, without padding) fit in ``available`` cells; the first always shows."""
    order = sorted(range(len(widths)), key=lambda i: priorities[i])
    chosen: set[int] = set()
    used = 0
    for i in order:
        width = widths[i] + 2 * CELL_PADDING
        if chosen and used + width > available:
            continue
        chosen.add(i)
        used += width
    return sorted(chosen)


class FleetTable(NavTable):
    """One row per function over the window; ``s`` sorts, the screen's filter narrows.

    A terminal too narrow for every column shows the ones that matter most (the function,
    invocations, errors, p99 and cost first) and brings the others back when it widens."""

    export_name = "fleet"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # State lives from construction: the fleet's first read can answer before the table
        # is mounted, and mounting must not throw those rows away.
        self.summaries: list[FunctionSummary] = []
        self.sort_index = 0
        self.name_filter = ""
        self.now = datetime.now(UTC)
        self.shown: list[int] = []

    def on_mount(self) -> None:
        super().on_mount()
        self.zebra_stripes = True
        self._render_rows()

    @property
    def sort_label(self) -> str:
        return COLUMNS[self.sort_index].label

    @property
    def shown_labels(self) -> list[str]:
        return [COLUMNS[i].label for i in self.shown]

    def show(self, rows: list[FunctionSummary], now: datetime) -> None:
        self.summaries = list(rows)
        self.now = now
        self._render_rows()

    def cycle_sort(self) -> str:
        """Sort by the next column shown; returns its name."""
        following = [i for i in self.shown if i > self.sort_index]
        self.sort_index = following[0] if following else 0
        self._render_rows()
        return self.sort_label

    def set_filter(self, text: str) -> None:
        self.name_filter = text.strip()
        self._render_rows()

    def on_resize(self, event: events.Resize) -> None:
        self._render_rows()

    def export_columns(self) -> list[str]:
        """Every column, whatever fits the terminal; the trend is a picture, not a figure."""
        return [c.label for c in COLUMNS if c.label != TREND]

    def export_rows(self) -> list[list[str]]:
        return [[c.cell(r, self.now) for c in COLUMNS if c.label != TREND] for r in self._sorted()]

    def _sorted(self) -> list[FunctionSummary]:
        """The rows the filter keeps, in the chosen order."""
        column = COLUMNS[self.sort_index]
        needle = self.name_filter.lower()
        rows = [r for r in self.summaries if needle in r.function_name.lower()]
        rows.sort(key=lambda r: r.function_name)  # ties stay in name order
        rows.sort(key=column.key, reverse=self.sort_index != 0)
        return rows

    def _render_rows(self) -> None:
        rows = self._sorted()
        cells = [[c.cell(r, self.now) for c in COLUMNS] for r in rows]
        widths = [
            max([len(c.label), *(len(row[i]) for row in cells)]) for i, c in enumerate(COLUMNS)
        ]
        available = self.size.width - SCROLLBAR if self.size.width else 10_000
        shown = fitting(widths, [c.priority for c in COLUMNS], available)
        columns = None
        if shown != self.shown:
            self.shown = shown
            columns = self.shown_labels
        self.refill(
            (
                (r.function_name, [row[i] for i in shown])
                for r, row in zip(rows, cells, strict=True)
            ),
            columns,
        )
