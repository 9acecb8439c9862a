"""One function over the window: its figures over time (concurrency against its reserved
limit beside its errors and throttles), memory used per execution environment, its
configuration as observed, the extension's cost, and its recent invocations (Enter opens
one)."""

from __future__ import annotations

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from lambdascope.analyzers.fleet import Invocation
from lambdascope.analyzers.function_view import (
    FunctionOverview,
    function_overview,
    recent_invocations,
)
from lambdascope.analyzers.invocation_view import InvocationFilters
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui import figures
from lambdascope.tui.format import clock, error_text
from lambdascope.tui.messages import LoadFailed
from lambdascope.tui.screens.invocation import InvocationScreen
from lambdascope.tui.screens.invocations import InvocationsScreen
from lambdascope.tui.widgets.chart import Chart, share_bar
from lambdascope.tui.widgets.environment_memory import EnvironmentMemoryRows
from lambdascope.tui.widgets.invocation_list import InvocationList
from lambdascope.tui.widgets.status_line import StatusLine

#: From this height the charts are drawn taller.
TALL = 40
#: Environments listed beside the memory chart: as many as its height holds.
ENVIRONMENT_ROWS, TALL_ENVIRONMENT_ROWS = 2, 6
NO_METRIC_STREAM = "no CloudWatch metric stream for this function: concurrency unknown"


def window_label(window: Window) -> str:
    return f"{clock(window.start)[:5]}–{clock(window.end)[:5]} UTC"


def concurrency_title(overview: FunctionOverview) -> Text:
    """``concurrency peak 9 of 10 reserved``: the window's peak against the function's reserved
    concurrency from the analysis settings (the limit at which Lambda throttles it)."""
    peak, reserved = overview.peak_concurrency, overview.reserved_concurrency
    title = Text("concurrency ", style="bold")
    if peak is None:
        title.append("unknown")
        return title
    full = reserved is not None and peak >= reserved
    title.append(f"peak {figures.count(peak)}", style="bold red" if full else "")
    if reserved is not None:
        title.append(f" of {reserved:,} reserved")
    return title


def concurrency_bar(overview: FunctionOverview) -> Text:
    """The peak's share of the reserved concurrency, or why there is no limit to draw."""
    peak, reserved = overview.peak_concurrency, overview.reserved_concurrency
    if reserved is None:
        return Text("no reserved concurrency in the settings", style="dim")
    bar = share_bar(peak, reserved)
    bar.append(" of reserved", style="dim")
    return bar


def configuration_text(overview: FunctionOverview) -> Text:
    """The configuration as the invocations showed it, the inits and the extension's cost."""
    text = Text()
    versions = overview.versions
    newest = versions[0] if versions else None
    parts = []
    if newest is not None:
        parts.append(figures.megabytes(newest.memory_size_mb))
        timeout = f"timeout {figures.duration(newest.timeout_ms)}"
        if newest.min_timeout_ms is not None and newest.min_timeout_ms != newest.timeout_ms:
            timeout += f" (was {figures.duration(newest.min_timeout_ms)})"
        parts.append(timeout)
        parts += newest.architectures + overview.runtime_versions + newest.regions
    text.append("config     ", style="bold")
    text.append(" · ".join(parts) if parts else "no invocation in the window")
    if len(versions) > 1:
        text.append("\nversions   ", style="bold")
        text.append(
            " · ".join(
                f"{figures.version(v.function_version)}: {v.invocations} "
                f"({figures.megabytes(v.memory_size_mb)}, {figures.duration(v.timeout_ms)})"
                for v in versions
            )
        )
    elif newest is not None:
        text.append(f"  version {figures.version(newest.function_version)}", style="dim")
    text.append("\ninits      ", style="bold")
    if not overview.inits:
        text.append("none in the window", style="dim")
    else:
        inits = []
        for init in overview.inits:
            kind = figures.initialization_type(init.initialization_type)
            if init.phase == "invoke":
                kind += " retried in the first invocation"
            elif init.phase == "restore":
                kind += " restore"
            line = (
                f"{kind} {init.inits}: p50 {figures.duration(init.p50_init_duration_ms)}, "
                f"max {figures.duration(init.max_init_duration_ms)}"
            )
            if init.failed:
                line += f", {init.failed} failed"
            inits.append(line)
        text.append(" · ".join(inits))
    text.append("\nextension  ", style="bold")
    ext = overview.extension
    if ext is None:
        text.append("no figures from the lambdascope extension in the window", style="dim")
    else:
        text.append(
            f"start-up p95 {figures.duration(ext.startup_ms_p95)} · "
            f"post-runtime p95 {figures.duration(ext.post_runtime_ms_p95)} · "
            f"peak {figures.megabytes(ext.peak_rss_mb)}"
        )
        dropped = f" · {ext.events_dropped:,} events dropped"
        text.append(dropped, style="bold red" if ext.events_dropped else "")
        if ext.silent_environments:
            text.append(f" · {ext.silent_environments} environments went silent", style="bold red")
    return text


class FunctionScreen(Screen[None]):
    DEFAULT_CSS = """
    FunctionScreen #status {
        height: auto;
        padding: 0 1;
    }
    FunctionScreen #status.error {
        color: $error;
        text-style: bold;
    }
    FunctionScreen #charts {
        grid-size: 2;
        grid-gutter: 0 2;
        height: auto;
        padding: 0 1;
    }
    FunctionScreen.tall Chart > Sparkline {
        height: 3;
    }
    FunctionScreen #configuration {
        height: auto;
        padding: 0 1;
        margin-top: 1;
    }
    FunctionScreen .section {
        padding: 0 1;
        text-style: bold;
        color: $accent;
        margin-top: 1;
    }
    FunctionScreen #recent {
        height: 1fr;
        min-height: 4;
    }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "refresh", "Refresh"),
        Binding("i", "invocations", "All invocations"),
        Binding("s", "slowest", "Slowest"),
        Binding("f", "failed", "Failed"),
    ]

    class Loaded(Message):
        def __init__(self, overview: FunctionOverview, recent: list[Invocation]) -> None:
            super().__init__()
            self.overview = overview
            self.recent = recent

    def __init__(self, client: QueryClient, function_name: str, window: Window) -> None:
        super().__init__()
        self.client = client
        self.function_name = function_name
        self.window = window
        self.overview: FunctionOverview | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusLine("Loading…", id="status")
        # Concurrency beside the errors and throttles it explains; the environments' memory
        # beside the memory chart.
        with Grid(id="charts"):
            yield Chart("invocations", id="traffic-chart")
            yield Chart("concurrency", second=False, id="concurrency-chart")
            yield Chart("duration", id="duration-chart")
            yield Chart("cold starts", id="cold-chart")
            yield Chart("memory", second=False, id="memory-chart")
            yield EnvironmentMemoryRows(id="environments")
        yield Static("", id="configuration")
        yield Label(
            "Recent invocations  (Enter: open · i: all · s: slowest · f: failed)",
            classes="section",
        )
        yield InvocationList(id="recent")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.function_name} · {window_label(self.window)}"
        self._set_tall(self.app.size.height >= TALL)
        self.query_one(InvocationList).focus()
        self.load()

    def on_resize(self, event: events.Resize) -> None:
        self._set_tall(event.size.height >= TALL)

    def _set_tall(self, tall: bool) -> None:
        self.set_class(tall, "tall")
        rows = TALL_ENVIRONMENT_ROWS if tall else ENVIRONMENT_ROWS
        self.query_one(EnvironmentMemoryRows).set_rows(rows)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self._status("Refreshing…")
        self.load()

    def _open_invocations(self, filters: InvocationFilters) -> None:
        self.app.push_screen(
            InvocationsScreen(self.client, self.function_name, self.window, filters=filters)
        )

    def action_invocations(self) -> None:
        self._open_invocations(InvocationFilters())

    def action_slowest(self) -> None:
        self._open_invocations(InvocationFilters(order="slowest"))

    def action_failed(self) -> None:
        self._open_invocations(InvocationFilters(status="failed"))

    @work(thread=True, exclusive=True, group="function")
    def load(self) -> None:
        try:
            overview = function_overview(self.client, self.function_name, self.window)
            recent = recent_invocations(self.client, self.function_name, self.window)
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(LoadFailed(error_text(exc), unavailable=unavailable))
            return
        self.post_message(self.Loaded(overview, recent))

    def _status(self, text: str) -> None:
        self.query_one("#status", StatusLine).say(text)

    @on(LoadFailed)
    def show_error(self, message: LoadFailed) -> None:
        self.query_one("#status", StatusLine).failed(message.text, unavailable=message.unavailable)

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        overview = self.overview = message.overview
        summary = overview.summary
        if summary is None:
            self._status(
                f"{self.function_name} was not invoked in the window ({window_label(self.window)})."
            )
        elif summary.unreported:
            self._status(
                f"{summary.unreported} of {summary.invocations} invocations have no report "
                "yet (crashed, timed out without one, or still running)."
            )
        else:
            self._status("")
        self._show_charts(overview)
        environments = self.query_one(EnvironmentMemoryRows)
        environments.show(overview.environments, overview.environment_count, environments.rows)
        self.query_one("#configuration", Static).update(configuration_text(overview))
        self.query_one(InvocationList).show(message.recent)

    def _show_charts(self, overview: FunctionOverview) -> None:
        series = overview.series
        summary = overview.summary
        p50 = summary.p50_duration_ms if summary else None
        p99 = summary.p99_duration_ms if summary else None
        self.query_one("#duration-chart", Chart).show(
            Text.assemble(
                ("duration ", "bold"),
                f"p99 {figures.duration(p99)} · p50 {figures.duration(p50)}",
            ),
            [p.p99_duration_ms for p in series],
            [p.p50_duration_ms for p in series],
        )
        invocations = summary.invocations if summary else 0
        errors = summary.errors if summary else 0
        timeouts = summary.timeouts if summary else 0
        traffic = Text.assemble(
            (f"{invocations:,} invocations", "bold"),
            " · ",
            (f"{errors:,} errors", "red" if errors else ""),
            " · ",
            (f"{timeouts:,} timeouts", "red" if timeouts else ""),
        )
        throttles = overview.throttles
        if throttles is not None:
            traffic.append(" · ")
            traffic.append(f"{throttles:,.0f} throttled", style="red" if throttles else "")
        self.query_one("#traffic-chart", Chart).show(
            traffic,
            [p.invocations for p in series],
            [p.errors + p.timeouts + (p.throttles or 0) for p in series],
        )
        concurrency = self.query_one("#concurrency-chart", Chart)
        if overview.concurrency_measured:
            concurrency.show(
                concurrency_title(overview),
                [p.concurrency for p in series],
                bar=concurrency_bar(overview),
            )
        else:
            concurrency.note(concurrency_title(overview), Text(NO_METRIC_STREAM, style="dim"))
        cold_starts = summary.cold_starts if summary else 0
        init_p50 = [i.p50_init_duration_ms for i in overview.inits if i.p50_init_duration_ms]
        cold = Text.assemble((f"{cold_starts:,} cold starts", "bold"))
        if init_p50:
            cold.append(f" · init p50 {figures.duration(max(init_p50))}")
        self.query_one("#cold-chart", Chart).show(
            cold,
            [p.cold_starts for p in series],
            [p.max_init_duration_ms for p in series],
        )
        used, size = overview.max_memory_used_mb, overview.memory_size_mb
        bar = share_bar(used, size)
        bar.append(" peak", style="dim")
        title = Text.assemble(("memory ", "bold"), figures.memory(used, size))
        if summary is not None and summary.memory_pct_p95 is not None:
            # The headroom most invocations leave, beside the peak one left.
            title.append(f" · p95 {summary.memory_pct_p95:.0f}%")
        self.query_one("#memory-chart", Chart).show(
            title,
            [p.max_memory_used_mb for p in series],
            bar=bar,
        )

    @on(DataTable.RowSelected, "#recent")
    def open_invocation(self, event: DataTable.RowSelected) -> None:
        invocation = self.query_one(InvocationList).invocation_at(event.row_key.value)
        if invocation is not None:
            self.app.push_screen(
                InvocationScreen(
                    self.client, invocation.request_id, self.function_name, self.window
                )
            )
