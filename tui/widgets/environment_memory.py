"""Memory used against the configured size, one line per execution environment, the fullest
first: which environment runs closest to an out-of-memory kill, how busy it was and when. An
environment that ran several requests at once (Lambda Managed Instances) also says how many:
its memory is shared by them."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from lambdascope.analyzers.function_view import EnvironmentMemory
from lambdascope.tui import figures
from lambdascope.tui.format import clock
from lambdascope.tui.widgets.chart import share_bar

#: An environment id is 32 hex characters; its first 8 tell the environments of a window apart.
SHORT_ID = 8
BAR_WIDTH = 10


def short_id(environment_id: str) -> str:
    return environment_id[:SHORT_ID]


def _style(env: EnvironmentMemory) -> str:
    # The thresholds of share_bar, so the figure and the bar agree.
    share = env.used_share
    if share is None:
        return "dim"
    return "red" if share >= 0.9 else "yellow" if share >= 0.75 else ""


def _seen(env: EnvironmentMemory) -> str:
    first, last = clock(env.first_start)[:5], clock(env.last_start)[:5]
    return first if first == last else f"{first}–{last}"


def _columns(env: EnvironmentMemory, layout: int, one_size: bool) -> list[Text]:
    """One environment's cells, from the widest ``layout`` (0) to the narrowest (2)."""
    used, size = env.max_memory_used_mb, env.memory_size_mb
    if layout == 0:
        memory = figures.memory(used, size)
    elif used is None:
        memory = figures.NOT_MEASURED
    elif one_size:
        # The title names the one configured size: the row keeps what differs.
        memory = f"{figures.megabytes(used)} {figures.share(used, size)}"
    else:
        memory = f"{used:,}/{figures.megabytes(size)} {figures.share(used, size)}"
    runs = f"{env.invocations:,} invocation{'s' if env.invocations != 1 else ''}"
    at_once = f" · {env.max_in_flight} at once" if env.max_in_flight > 1 else ""
    cells = [Text(short_id(env.environment_id), style="bold")]
    if layout == 0:
        cells.append(share_bar(used, size, BAR_WIDTH))
    cells.append(Text(memory, style=_style(env)))
    cells.append(Text((runs if layout < 2 else f"{env.invocations:,} inv") + at_once))
    cells.append(Text(_seen(env), style="dim"))
    return cells


def _table(environments: Sequence[EnvironmentMemory], layout: int, one_size: bool) -> list[Text]:
    rows = [_columns(env, layout, one_size) for env in environments]
    widths = [max(len(row[i].plain) for row in rows) for i in range(len(rows[0]))]
    gap = "  " if layout < 2 else " "
    lines = []
    for row in rows:
        line = Text(no_wrap=True, overflow="ellipsis")
        for index, (cell, width) in enumerate(zip(row, widths, strict=True)):
            if index:
                line.append(gap)
            # Figures align right, the time range left.
            pad = " " * (width - len(cell.plain))
            if index in (0, len(row) - 1):
                line.append_text(cell)
                line.append(pad)
            else:
                line.append(pad)
                line.append_text(cell)
        line.rstrip()
        lines.append(line)
    return lines


def environment_lines(
    environments: Sequence[EnvironmentMemory], total: int, width: int
) -> list[Text]:
    """Pure: a title and one line per environment, in the widest layout that fits ``width``
    (a bar and spelt-out figures on a wide terminal, the figures alone on a narrow one)."""
    title = Text("memory by environment", style="bold")
    sizes = {env.memory_size_mb for env in environments if env.memory_size_mb}
    one_size = len(sizes) == 1
    if not environments:
        title.append(" · no invocation in the window", style="dim")
        return [title]
    if total > len(environments):
        title.append(f" · fullest {len(environments)} of {total}")
    else:
        title.append(f" · {total} environment{'s' if total != 1 else ''}")
    # The configured size when there is room: the memory chart beside this one says it too.
    of_size = f" · of {figures.megabytes(next(iter(sizes)))}" if one_size else ""
    if of_size and len(title.plain) + len(of_size) <= width:
        title.append(of_size, style="dim")
    for layout in range(3):
        lines = _table(environments, layout, one_size)
        if all(len(line.plain) <= width for line in lines):
            break
    return [title, *lines]


class EnvironmentMemoryRows(Widget):
    """:func:`environment_lines` at the widget's width, at most ``rows`` environments."""

    DEFAULT_CSS = """
    EnvironmentMemoryRows {
        height: auto;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.environments: list[EnvironmentMemory] = []
        self.total = 0
        self.rows = 2
        #: Until the first read, the title alone (not "no invocation").
        self.loaded = False

    def show(self, environments: Sequence[EnvironmentMemory], total: int, rows: int) -> None:
        self.environments = list(environments)
        self.total = total
        self.rows = rows
        self.loaded = True
        self.refresh(layout=True)

    def set_rows(self, rows: int) -> None:
        if rows != self.rows:
            self.rows = rows
            self.refresh(layout=True)

    def lines(self, width: int) -> list[Text]:
        if not self.loaded:
            return [Text("memory by environment", style="bold")]
        return environment_lines(self.environments[: self.rows], self.total, width)

    @property
    def text(self) -> str:
        return "\n".join(line.plain for line in self.lines(self.size.width or 80))

    def render(self) -> Text:
        return Text("\n", no_wrap=True, overflow="ellipsis").join(self.lines(self.size.width or 80))
