from __future__ import annotations

from textual.widgets import DataTable

from lambdascope.analyzers.fleet import FunctionSummary
from lambdascope.tui.format import clock, ms, pct


class FleetTable(DataTable[str]):
    """One row per function over the window."""

    COLUMNS = (
        "function",
        "invocations",
        "errors",
        "timeouts",
        "cold starts",
        "p50 ms",
        "p99 ms",
        "max mem",
        "last seen",
    )

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*self.COLUMNS)

    def show(self, rows: list[FunctionSummary]) -> None:
        self.clear()
        for row in rows:
            self.add_row(
                row.function_name,
                str(row.invocations),
                str(row.errors),
                str(row.timeouts),
                str(row.cold_starts),
                ms(row.p50_duration_ms),
                ms(row.p99_duration_ms),
                pct(row.max_memory_pct),
                clock(row.last_seen),
                key=row.function_name,
            )
