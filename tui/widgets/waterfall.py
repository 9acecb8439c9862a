from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from lambdascope.tui import figures


@dataclass(frozen=True)
class Bar:
    """One row of a waterfall: ``length_ms`` from ``offset_ms`` after the first bar's start."""

    label: str
    offset_ms: float
    length_ms: float
    style: str = "cyan"


class Waterfall(Widget):
    """Bars on one time axis, each with its label and length: where a request's time went.

    Drawn at the widget's width, so the same bars use the space of a wide terminal.
    """

    DEFAULT_CSS = """
    Waterfall {
        height: auto;
    }
    """

    LABEL_WIDTH = 26
    FIGURE_WIDTH = 10

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.bars: list[Bar] = []

    def show(self, bars: list[Bar]) -> None:
        self.bars = list(bars)
        self.refresh(layout=True)

    @property
    def text(self) -> str:
        return self.render_bars(self.size.width or 80).plain

    def render(self) -> Text:
        return self.render_bars(self.size.width or 80)

    def render_bars(self, width: int) -> Text:
        if not self.bars:
            return Text("Nothing to draw.", style="dim")
        label_width = min(self.LABEL_WIDTH, max(8, width // 3))
        track = max(10, width - label_width - self.FIGURE_WIDTH - 2)
        end = max(bar.offset_ms + bar.length_ms for bar in self.bars) or 1.0
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, bar in enumerate(self.bars):
            label = bar.label
            if len(label) > label_width:
                label = label[: label_width - 1] + "…"
            text.append(label.ljust(label_width) + " ", style="bold" if index == 0 else "")
            first = min(track - 1, round(bar.offset_ms / end * track))
            cells = max(1, round(bar.length_ms / end * track))
            cells = min(cells, track - first)
            text.append(" " * first)
            text.append("█" * cells, style=bar.style)
            text.append(" " * (track - first - cells))
            text.append(" " + figures.duration(bar.length_ms).rjust(self.FIGURE_WIDTH))
            if index < len(self.bars) - 1:
                text.append("\n")
        return text
