"""Messages the query workers post back to the UI thread (one module, typed payloads)."""

from __future__ import annotations

from datetime import datetime

from textual.message import Message

from lambdascope.analyzers import Finding
from lambdascope.analyzers.fleet import FunctionSummary, Invocation, LogLine


class FleetLoaded(Message):
    """The fleet table and the findings for one window."""

    def __init__(
        self, fleet: list[FunctionSummary], findings: list[Finding], window_end: datetime
    ) -> None:
        super().__init__()
        self.fleet = fleet
        self.findings = findings
        self.window_end = window_end


class InvocationsLoaded(Message):
    def __init__(self, invocations: list[Invocation]) -> None:
        super().__init__()
        self.invocations = invocations


class LogsLoaded(Message):
    def __init__(self, request_id: str, lines: list[LogLine]) -> None:
        super().__init__()
        self.request_id = request_id
        self.lines = lines


class LoadFailed(Message):
    """A query failed; ``text`` is what to show the user, ``unavailable`` when unreachable."""

    def __init__(self, text: str, *, unavailable: bool) -> None:
        super().__init__()
        self.text = text
        self.unavailable = unavailable
