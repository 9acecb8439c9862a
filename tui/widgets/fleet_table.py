from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdascope.analyzers.fleet import FunctionSummary
from lambdascope.tui.figures import duration
from lambdascope.tui.format import ago, pct, share
from lambdascope.tui.widgets.nav_table import NavTable


@dataclass(frozen=True)
class Column:
    label: str
    cell: Callable[[FunctionSummary, datetime], str]
    #: What ``s`` sorts by; numbers sort largest first, the name A to Z.
    key: Callable[[FunctionSummary], Any]


def _rate(part: int, row: FunctionSummary) -> float:
    return part / row.invocations if row.invocations else 0.0


def _or_low(value: float | None) -> float:
    return -1.0 if value is None else value


def _seen(row: FunctionSummary) -> float:
    return row.last_seen.timestamp() if row.last_seen else 0.0


# Throttles are not a column: Lambda's throttles never reach a sandbox, so only CloudWatch
# metric streams count them, and those are not part of the rollups this table reads. The
# throttles detector reports them as findings. Init p95 is not a column either: the rollups
# keep the slowest init of each minute, so the table shows that.
COLUMNS: tuple[Column, ...] = (
    Column("Function", lambda r, _: r.function_name, lambda r: r.function_name),
    Column("Invocations", lambda r, _: f"{r.invocations:,}", lambda r: r.invocations),
    Column("Errors", lambda r, _: share(r.errors, r.invocations), lambda r: _rate(r.errors, r)),
    Column("Timeouts", lambda r, _: f"{r.timeouts:,}", lambda r: r.timeouts),
    Column(
        "Cold starts",
        lambda r, _: share(r.cold_starts, r.invocations),
        lambda r: _rate(r.cold_starts, r),
    ),
    Column("Slowest init", lambda r, _: duration(r.max_init_ms), lambda r: _or_low(r.max_init_ms)),
    Column("p50", lambda r, _: duration(r.p50_duration_ms), lambda r: _or_low(r.p50_duration_ms)),
    Column("p99", lambda r, _: duration(r.p99_duration_ms), lambda r: _or_low(r.p99_duration_ms)),
    Column(
        "Memory peak",
        lambda r, _: pct(r.max_memory_pct),
        lambda r: _or_low(r.max_memory_pct),
    ),
    Column("Last seen", lambda r, now: ago(r.last_seen, now), _seen),
)


class FleetTable(NavTable):
    """One row per function over the window; ``s`` sorts, the screen's filter narrows."""

    export_name = "fleet"

    def on_mount(self) -> None:
        super().on_mount()
        self.zebra_stripes = True
        self.add_columns(*(column.label for column in COLUMNS))
        self.summaries: list[FunctionSummary] = []
        self.sort_index = 0
        self.name_filter = ""
        self.now = datetime.now(UTC)

    @property
    def sort_label(self) -> str:
        return COLUMNS[self.sort_index].label

    def show(self, rows: list[FunctionSummary], now: datetime) -> None:
        self.summaries = list(rows)
        self.now = now
        self._render_rows()

    def cycle_sort(self) -> str:
        """Sort by the next column; returns its name."""
        self.sort_index = (self.sort_index + 1) % len(COLUMNS)
        self._render_rows()
        return self.sort_label

    def set_filter(self, text: str) -> None:
        self.name_filter = text.strip()
        self._render_rows()

    def _render_rows(self) -> None:
        column = COLUMNS[self.sort_index]
        needle = self.name_filter.lower()
        rows = [r for r in self.summaries if needle in r.function_name.lower()]
        rows.sort(key=lambda r: r.function_name)  # ties stay in name order
        rows.sort(key=column.key, reverse=self.sort_index != 0)
        self.refill((r.function_name, [c.cell(r, self.now) for c in COLUMNS]) for r in rows)
