from __future__ import annotations

from rich.text import Text

from lambdascope.analyzers.fleet import Invocation
from lambdascope.tui import figures
from lambdascope.tui.format import clock
from lambdascope.tui.widgets.nav_table import NavTable

STATUS_STYLE = {"timeout": "bold red", "error": "red", "failure": "red", "unknown": "dim"}


class InvocationsTable(NavTable):
    """A finding's invocations; the row key is the request id.

    The request id comes last: a UUID is 36 columns, and at 80 columns the figures that
    tell one request from another (when, how it ended, how long) should be the ones seen.
    """

    export_name = "finding-invocations"

    def on_mount(self) -> None:
        super().on_mount()
        self.add_columns("Start (UTC)", "Status", "Duration", "Memory", "Init", "Request")
        self.invocations: dict[str, Invocation] = {}

    def show(self, invocations: list[Invocation]) -> None:
        self.invocations = {inv.request_id: inv for inv in invocations}
        rows = []
        for inv in invocations:
            status = figures.status(inv.status) + (f" {inv.error_type}" if inv.error_type else "")
            memory = figures.NOT_MEASURED
            if inv.max_memory_used_mb is not None:
                memory = f"{inv.max_memory_used_mb}/{inv.memory_size_mb or '?'} MB"
            rows.append(
                (
                    inv.request_id,
                    (
                        clock(inv.start_time),
                        Text(status, style=STATUS_STYLE.get(inv.status, "")),
                        figures.duration(inv.duration_ms),
                        memory,
                        figures.duration(inv.init_duration_ms),
                        inv.request_id,
                    ),
                )
            )
        self.refill(rows)

    def invocation_at(self, row_key: str | None) -> Invocation | None:
        return self.invocations.get(row_key or "")
