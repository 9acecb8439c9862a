"""One invocation: its START/END/REPORT figures, the extension's figures from its execution
environment, where its time went (init, runtime, post-runtime, its spans), and its log, with a
timed-out request's last line before the deadline highlighted."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static

from lambdascope.analyzers.invocation_view import (
    EnvironmentExtension,
    InvocationView,
    Span,
    invocation_view,
)
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui import figures
from lambdascope.tui.format import clock, error_text
from lambdascope.tui.messages import LoadFailed
from lambdascope.tui.widgets.request_log import RequestLog
from lambdascope.tui.widgets.status_line import StatusLine
from lambdascope.tui.widgets.waterfall import Bar, Waterfall

STATUS_STYLE = {"success": "green", "timeout": "bold red", "error": "red", "failure": "red"}


def _ms_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def _span_depths(spans: list[Span]) -> dict[str, int]:
    parents = {span.span_id: span.parent_span_id for span in spans}
    depths: dict[str, int] = {}
    for span in spans:
        depth, parent, seen = 0, span.parent_span_id, {span.span_id}
        while parent in parents and parent not in seen:
            seen.add(parent)
            depth += 1
            parent = parents[parent]
        depths[span.span_id] = depth
    return depths


def waterfall_bars(view: InvocationView) -> list[Bar]:
    """Init phases, the runtime, the extensions' post-runtime time and the spans, on the
    axis that starts with the first of them."""
    detail = view.detail
    invocation = detail.invocation
    starts = [invocation.start_time] + [i.start_time for i in view.inits]
    starts += [s.start_time for s in view.spans]
    origin = min(starts)
    bars = []
    for init in view.inits:
        kind = figures.initialization_type(init.initialization_type)
        if init.proactive:
            kind += ", proactive"  # ahead of demand: nobody waited for it
        label = {"invoke": "init, retried", "restore": "restore"}.get(init.phase, "init")
        failed = init.status not in ("success", "unknown")
        init_at = _ms_between(origin, init.start_time)
        bars.append(
            Bar(
                f"{label} ({kind})" + (" failed" if failed else ""),
                init_at,
                init.init_duration_ms or 0.0,
                "red" if failed else "magenta",
            )
        )
        if init.runtime_init_ms is not None and init.extensions_after_runtime_ms:
            # The phase split only says something when the extensions kept the init going.
            bars.append(
                Bar("  until the runtime was ready", init_at, init.runtime_init_ms, "magenta")
            )
            bars.append(
                Bar(
                    "  waiting for extensions",
                    init_at + init.runtime_init_ms,
                    init.extensions_after_runtime_ms,
                    "yellow",
                )
            )
    runtime = detail.runtime_duration_ms or invocation.duration_ms
    at = _ms_between(origin, invocation.start_time)
    if runtime is not None:
        timed_out = invocation.status == "timeout"
        label = "runtime (timed out)" if timed_out else "runtime"
        style = STATUS_STYLE.get(invocation.status, "cyan")
        bars.append(Bar(label, at, runtime, "red" if timed_out else style))
        post = detail.post_runtime_ms
        if post:
            bars.append(Bar("post-runtime (extensions)", at + runtime, post, "yellow"))
    depths = _span_depths(view.spans)
    for span in view.spans:
        bars.append(
            Bar(
                "  " * depths[span.span_id] + span.name,
                _ms_between(origin, span.start_time),
                span.duration_ms,
                "red" if span.failed else "blue",
            )
        )
    return bars


def environment_text(extension: EnvironmentExtension) -> Text:
    """The extension's figures from the request's environment, labelled as the environment's:
    the store keeps no /proc figures per request, and these must not read as this request's."""
    text = Text("environment (not this request): ", style="bold")
    parts = [f"extension peak RSS {figures.megabytes(extension.peak_rss_mb)}"]
    if extension.startup_ms is not None:
        parts.append(f"start-up {figures.duration(extension.startup_ms)}")
    if extension.cpu_ms is not None:
        parts.append(f"CPU {figures.duration(extension.cpu_ms)} since it started")
    text.append(" · ".join(parts))
    return text


def figures_text(view: InvocationView) -> Text:
    """The request in one header line, Lambda's START/END/REPORT figures in another, and how
    completely it reached the collector."""
    detail = view.detail
    inv = detail.invocation
    text = Text()
    text.append(inv.request_id, style="bold")
    status = figures.status(inv.status) + (f" {inv.error_type}" if inv.error_type else "")
    text.append("  " + status, style=STATUS_STYLE.get(inv.status, "dim"))
    text.append(
        f"  {clock(inv.start_time)} UTC · version {figures.version(inv.function_version)}",
        style="dim",
    )
    if inv.cold_start:
        text.append(" · cold start", style="cyan")
    text.append("\n")
    report = [
        f"duration {figures.duration(inv.duration_ms)}",
        f"billed {figures.duration(inv.billed_duration_ms)}",
        f"memory {figures.memory(inv.max_memory_used_mb, inv.memory_size_mb)}",
    ]
    if inv.init_duration_ms is not None:
        report.append(f"init {figures.duration(inv.init_duration_ms)}")
    if detail.restore_duration_ms is not None:
        report.append(f"restore {figures.duration(detail.restore_duration_ms)}")
    if inv.timeout_ms is not None:
        report.append(f"timeout {figures.duration(inv.timeout_ms)}")
    text.append(" · ".join(report))
    missing = detail.missing
    text.append("\n")
    if missing:
        text.append("incomplete: never received " + ", ".join(missing), style="bold yellow")
    else:
        text.append("complete: start, runtimeDone and report received", style="dim")
    delay = detail.delivery_delay
    if detail.late and delay is not None:
        text.append(f" · its last event arrived {figures.delay(delay)} after the end", style="dim")
    if view.environment_extension is not None:
        text.append("\n")
        text.append_text(environment_text(view.environment_extension))
    last = view.last_line_before_deadline
    if last is not None:
        text.append("\nlast line before the deadline: ", style="bold yellow")
        text.append(f"{clock(last.timestamp)} {last.message}")
    elif inv.status == "timeout":
        text.append("\nthe function wrote nothing before the deadline", style="bold yellow")
    return text


class InvocationScreen(Screen[None]):
    DEFAULT_CSS = """
    InvocationScreen #status {
        height: auto;
        padding: 0 1;
    }
    InvocationScreen #status.error {
        color: $error;
        text-style: bold;
    }
    InvocationScreen #figures {
        height: auto;
        padding: 0 1;
    }
    InvocationScreen .section {
        padding: 0 1;
        text-style: bold;
        color: $accent;
    }
    InvocationScreen #waterfall-box {
        height: auto;
        max-height: 7;
        padding: 0 1;
    }
    InvocationScreen.tall #waterfall-box {
        max-height: 16;
    }
    InvocationScreen RequestLog {
        padding: 0 1;
    }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "refresh", "Refresh"),
    ]

    class Loaded(Message):
        def __init__(self, view: InvocationView | None) -> None:
            super().__init__()
            self.view = view

    def __init__(
        self, client: QueryClient, request_id: str, function_name: str, window: Window
    ) -> None:
        super().__init__()
        self.client = client
        self.request_id = request_id
        self.function_name = function_name
        self.window = window
        self.view: InvocationView | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusLine(f"Loading {self.request_id}…", id="status")
        yield Static("", id="figures")
        yield Label("Where the time went", classes="section")
        with VerticalScroll(id="waterfall-box"):
            yield Waterfall(id="waterfall")
        yield Label("Log", classes="section")
        yield RequestLog(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.function_name} · {self.request_id}"
        self.set_class(self.app.size.height >= 40, "tall")
        self.query_one(RequestLog).focus()
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self._status("Refreshing…")
        self.load()

    @work(thread=True, exclusive=True, group="invocation")
    def load(self) -> None:
        try:
            view = invocation_view(self.client, self.request_id, self.function_name, self.window)
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(LoadFailed(error_text(exc), unavailable=unavailable))
            return
        self.post_message(self.Loaded(view))

    def _status(self, text: str) -> None:
        self.query_one("#status", StatusLine).say(text)

    @on(LoadFailed)
    def show_error(self, message: LoadFailed) -> None:
        self.query_one("#status", StatusLine).failed(message.text, unavailable=message.unavailable)

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        view = self.view = message.view
        if view is None:
            # Nothing was read: either the request started outside the window, or the store
            # has dropped it, being older than the store keeps raw data (its retention).
            self._status(
                f"{self.request_id} is not in the store between {clock(self.window.start)[:5]} "
                f"and {clock(self.window.end)[:5]} UTC: it started outside that window, or it "
                "is older than the store keeps invocations (its retention period)."
            )
            return
        self._status("")
        self.query_one("#figures", Static).update(figures_text(view))
        self.query_one(Waterfall).show(waterfall_bars(view))
        self.query_one(RequestLog).show(view.logs, highlight=view.last_line_before_deadline)
