from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from lambdascope.analyzers.fleet import Invocation
from lambdascope.tui import figures
from lambdascope.tui.format import clock

STATUS_STYLE = {"timeout": "bold red", "error": "red", "failure": "red", "unknown": "dim"}


def memory(used_mb: int | None, size_mb: int | None) -> str:
    """``60 MB (47%)``: short enough for a column."""
    if used_mb is None:
        return figures.NOT_MEASURED
    if not size_mb:
        return figures.megabytes(used_mb)
    return f"{figures.megabytes(used_mb)} ({figures.share(used_mb, size_mb)})"


class InvocationList(DataTable[str | Text]):
    """A page of invocations, one row each; the row key is the request id."""

    COLUMNS = ("start", "request id", "duration", "status", "init", "memory", "version")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*self.COLUMNS)
        self.invocations: dict[str, Invocation] = {}

    def show(self, invocations: list[Invocation]) -> None:
        self.clear()
        self.invocations = {inv.request_id: inv for inv in invocations}
        for inv in invocations:
            status = figures.status(inv.status)
            if inv.error_type:
                status += f" {inv.error_type}"
            self.add_row(
                clock(inv.start_time),
                inv.request_id,
                Text(figures.duration(inv.duration_ms), justify="right"),
                Text(status, style=STATUS_STYLE.get(inv.status, "")),
                Text(
                    figures.duration(inv.init_duration_ms) if inv.cold_start else "",
                    style="cyan",
                    justify="right",
                ),
                memory(inv.max_memory_used_mb, inv.memory_size_mb),
                figures.version(inv.function_version),
                key=inv.request_id,
            )

    def invocation_at(self, request_id: str | None) -> Invocation | None:
        return self.invocations.get(request_id or "")

    @property
    def highlighted(self) -> Invocation | None:
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.invocation_at(row_key)
