"""The tables' common ground: vi keys, refills that keep the user's place, export rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable


class NavTable(DataTable[Any]):
    """A row-cursor table with k9s/less keys (j/k, g/G) that survives live refreshes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "First row", show=False),
        Binding("G", "scroll_bottom", "Last row", show=False),
    ]

    #: The file name stem an export of this table gets.
    export_name = "table"

    def on_mount(self) -> None:
        self.cursor_type = "row"

    def _update_dimensions(self, new_rows: Iterable[Any]) -> None:
        super()._update_dimensions(new_rows)
        # DataTable keeps each drawn line, the header's included, until something clears its
        # cache; when new rows widen the columns, a header drawn before them kept its old
        # widths over the new rows' (seen in the finding screen at 80x24).
        self._line_cache.clear()

    @property
    def cursor_key(self) -> str | None:
        """The highlighted row's key, or None for an empty table."""
        if not self.row_count:
            return None
        value = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return None if value is None else str(value)

    def refill(
        self, rows: Iterable[tuple[str, Sequence[Any]]], columns: Sequence[str] | None = None
    ) -> None:
        """Replace every row (and the columns, when given), keeping the cursor on the same row
        key and the scroll offset, so a refresh every few seconds does not throw the reader
        back to the top."""
        key, scroll_y = self.cursor_key, self.scroll_y
        self.clear(columns=columns is not None)
        if columns is not None:
            self.add_columns(*columns)
        added = [self.add_row(*cells, key=row_key) for row_key, cells in rows]
        # Measure the new rows now, not on the table's next idle: no frame in between draws
        # the columns at their headers' widths with the new rows cut to fit (a page of rows
        # is cheap to measure twice).
        self._update_dimensions(added)
        if key is not None and key in self.rows:
            self.move_cursor(row=self.get_row_index(key), scroll=False)
        if scroll_y:
            # The new rows' height is known only after the next layout.
            self.call_after_refresh(self.scroll_to, y=scroll_y, animate=False)

    def export_columns(self) -> list[str]:
        return [str(column.label) for column in self.ordered_columns]

    def export_rows(self) -> list[list[str]]:
        """The rows as shown, as plain text."""
        return [
            [cell.plain if isinstance(cell, Text) else str(cell) for cell in self.get_row_at(i)]
            for i in range(self.row_count)
        ]
