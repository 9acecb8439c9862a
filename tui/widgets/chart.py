from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static


def _values(series: Sequence[float | None]) -> list[float]:
    # A bucket without a figure draws at the floor, keeping the x axis as time.
    return [value or 0.0 for value in series]


class Chart(Vertical):
    """A title with the window's figures and one or two sparklines over the window's buckets."""

    DEFAULT_CSS = """
    Chart {
        height: auto;
    }
    Chart > .chart-title {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    Chart > Sparkline {
        height: 1;
    }
    Chart > .chart-second {
        color: $text-muted;
    }
    """

    def __init__(self, title: str, *, second: bool = True, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._title = Static(Text(title, style="bold"), classes="chart-title")
        self._first = Sparkline([], summary_function=max)
        self._second = Sparkline([], summary_function=max, classes="chart-second")
        self._second.display = second
        self._bar = Static("", classes="chart-bar")
        self._bar.display = False

    def compose(self) -> ComposeResult:
        yield self._title
        yield self._first
        yield self._second
        yield self._bar

    @property
    def title_text(self) -> str:
        rendered = self._title.content
        return rendered.plain if isinstance(rendered, Text) else str(rendered)

    def show(
        self,
        title: Text | str,
        first: Sequence[float | None],
        second: Sequence[float | None] | None = None,
        bar: Text | None = None,
    ) -> None:
        self._title.update(title)
        self._first.display = True
        self._first.data = _values(first)
        self._second.display = second is not None
        if second is not None:
            self._second.data = _values(second)
        self._bar.display = bar is not None
        if bar is not None:
            self._bar.update(bar)

    def note(self, title: Text | str, text: Text | str) -> None:
        """``text`` in place of the sparklines: why there is nothing to draw (an empty line
        would read as a measured zero)."""
        self._title.update(title)
        self._first.display = False
        self._second.display = False
        self._bar.display = True
        self._bar.update(text)

    @property
    def note_text(self) -> str:
        """What the line under the sparklines (a share bar or a note) says."""
        if not self._bar.display:
            return ""
        rendered = self._bar.content
        return rendered.plain if isinstance(rendered, Text) else str(rendered)


def share_bar(part: float | None, whole: float | None, width: int = 20) -> Text:
    """``███████████░░░░░░░░░``: ``part`` of ``whole``, red from 90%."""
    if part is None or not whole:
        return Text("░" * width, style="dim")
    ratio = min(part / whole, 1.0)
    filled = round(ratio * width)
    style = "red" if ratio >= 0.9 else "yellow" if ratio >= 0.75 else "green"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    return text
