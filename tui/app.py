"""The lambdascope terminal UI: the fleet, its findings, and each finding's evidence."""

from __future__ import annotations

from datetime import datetime, timedelta

from textual.app import App
from textual.binding import Binding

from lambdascope.query import QueryClient
from lambdascope.tui.screens.main import MainScreen

__all__ = ["LambdascopeApp"]


class LambdascopeApp(App[None]):
    """``client`` is the only way to the store; ``now`` pins the window's end (tests, replays)."""

    TITLE = "lambdascope"
    CSS_PATH = "lambdascope.tcss"
    BINDINGS = [Binding("q", "quit", "Quit")]

    def __init__(
        self,
        client: QueryClient,
        *,
        since: timedelta = timedelta(hours=1),
        now: datetime | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.since = since
        self.now = now

    def get_default_screen(self) -> MainScreen:
        return MainScreen(self.client, since=self.since, now=self.now)
