from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from lambdascope.analyzers.fleet import Invocation
from lambdascope.tui.format import clock, ms

STATUS_STYLE = {"timeout": "bold red", "error": "red", "failure": "red", "unknown": "dim"}


class InvocationsTable(DataTable[str | Text]):
    """A finding's invocations; the row key is the request id."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("request id", "start", "duration ms", "status", "init ms", "memory MB")
        self.invocations: dict[str, Invocation] = {}

    def show(self, invocations: list[Invocation]) -> None:
        self.clear()
        self.invocations = {inv.request_id: inv for inv in invocations}
        for inv in invocations:
            memory = "-"
            if inv.max_memory_used_mb is not None:
                memory = f"{inv.max_memory_used_mb}/{inv.memory_size_mb or '?'}"
            status = inv.status + (f" {inv.error_type}" if inv.error_type else "")
            self.add_row(
                inv.request_id,
                clock(inv.start_time),
                ms(inv.duration_ms),
                Text(status, style=STATUS_STYLE.get(inv.status, "")),
                ms(inv.init_duration_ms),
                memory,
                key=inv.request_id,
            )
