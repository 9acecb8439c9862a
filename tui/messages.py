"""Messages the query workers post back to the UI thread (one module, typed payloads)."""

from __future__ import annotations

from datetime import datetime

from textual.message import Message

from lambdascope.analyzers import Finding
from lambdascope.analyzers.fleet import FunctionSummary, Invocation, LogLine
from lambdascope.analyzers.window import Window


class FleetLoaded(Message):
    """The fleet table and the findings, both read over the same ``window``; ``findings`` is
    None when the table is ready and the detectors are still running."""

    def __init__(
        self,
        fleet: list[FunctionSummary],
        findings: list[Finding] | None,
        window: Window,
        now: datetime,
        *,
        generation: int = 0,
    ) -> None:
        super().__init__()
        self.fleet = fleet
        self.findings = findings
        self.window = window
        self.now = now
        #: Which read this answers, so a slow older read cannot overwrite a newer one.
        self.generation = generation


class OpenFunction(Message):
    """The user asked for one function's view over ``window``; the app opens it."""

    def __init__(self, function_name: str, window: Window) -> None:
        super().__init__()
        self.function_name = function_name
        self.window = window


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

    def __init__(self, text: str, *, unavailable: bool, generation: int = 0) -> None:
        super().__init__()
        self.text = text
        self.unavailable = unavailable
        self.generation = generation
