"""A scripted world for engine tests: per-minute samples instead of a store.

``World.samples[(function, minute)]`` holds what happened in that minute (invocations, errors,
timed-out request ids). The fake ``errors`` and ``timeouts`` detectors turn a window of samples
into findings the way the real ones do (one per function), and :class:`FakeClient` answers the
engine's traffic query and SQL rules from the same samples, so tests script time precisely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdascope.analyzers.alerts import sql as alert_sql
from lambdascope.analyzers.findings import Finding
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient, QueryError, QueryResult

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def minute(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


@dataclass
class Sample:
    invocations: int = 0
    errors: int = 0
    timeouts: tuple[str, ...] = ()


@dataclass
class World:
    samples: dict[tuple[str, datetime], Sample] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    fail_sql: bool = False
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def set(self, function_name: str, start: float, end: float, **values: Any) -> None:
        """The same sample in every minute of ``[start, end)``."""
        for m in range(int(start), int(end)):
            self.samples[(function_name, minute(m))] = Sample(**values)

    def in_window(self, window: Window) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = {}
        for (name, at), sample in self.samples.items():
            if window.start <= at < window.end:
                out.setdefault(name, []).append(sample)
        return out

    def detectors(self) -> dict[str, Any]:
        return {"errors": self.detect_errors, "timeouts": self.detect_timeouts}

    def detect_errors(
        self, client: QueryClient, window: Window, function_name: str | None
    ) -> list[Finding]:
        self.queries.append("errors")
        findings = []
        for name, samples in sorted(self.in_window(window).items()):
            invocations = sum(s.invocations for s in samples)
            errors = sum(s.errors for s in samples)
            if not errors:
                continue
            rate = errors / invocations
            findings.append(
                Finding(
                    kind="errors",
                    severity="critical" if rate >= 0.1 else "warning",
                    function_name=name,
                    function_version="$LATEST",
                    window_start=window.start,
                    window_end=window.end,
                    summary=f"{errors} of {invocations} invocations of {name} failed",
                    numbers={"invocations": invocations, "errors": errors, "error_rate": rate},
                    evidence_request_ids=(f"{name}-err-1",),
                    query="SELECT errors FROM invocations WHERE {since:DateTime64(3, 'UTC')}",
                    recommendation="fix it",
                )
            )
        return findings

    def detect_timeouts(
        self, client: QueryClient, window: Window, function_name: str | None
    ) -> list[Finding]:
        self.queries.append("timeouts")
        findings = []
        for name, samples in sorted(self.in_window(window).items()):
            ids = tuple(i for s in samples for i in s.timeouts)
            if not ids:
                continue
            invocations = sum(s.invocations for s in samples)
            findings.append(
                Finding(
                    kind="timeout",
                    severity="critical",
                    function_name=name,
                    function_version="$LATEST",
                    window_start=window.start,
                    window_end=window.end,
                    summary=f"{len(ids)} of {invocations} invocations of {name} timed out",
                    numbers={"invocations": invocations, "timeouts": len(ids)},
                    evidence_request_ids=ids,
                    query="SELECT timeouts FROM invocations",
                    recommendation="bound downstream calls",
                )
            )
        return findings


class FakeClient:
    """Answers the traffic query and ``SELECT ... AS value`` SQL rules from the world."""

    def __init__(self, world: World) -> None:
        self.world = world

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        params = dict(parameters or {})
        if sql == alert_sql.FUNCTION_TAGS:
            self.world.queries.append("tags")
            return QueryResult(
                ("function_name", "tags"),
                ("String", "Map(String, String)"),
                sorted(self.world.tags.items()),
            )
        window = Window(_parse(params["since"]), _parse(params["until"]))
        per_function = self.world.in_window(window)
        if sql == alert_sql.TRAFFIC:
            self.world.queries.append("traffic")
            return QueryResult(
                ("function_name", "invocations"),
                ("String", "UInt64"),
                [(n, sum(s.invocations for s in v)) for n, v in sorted(per_function.items())],
            )
        self.world.queries.append("sql")
        if self.world.fail_sql:
            raise QueryError("query failed: Code: 47. Unknown identifier 'duraton_ms'")
        if "AS wrong" in sql:
            return QueryResult(("function_name", "wrong"), ("String", "Float64"), [("x", 1.0)])
        rows = []
        for name, samples in sorted(per_function.items()):
            invocations = sum(s.invocations for s in samples)
            errors = sum(s.errors for s in samples)
            rows.append((name, errors / invocations if invocations else 0.0, [f"{name}-e"]))
        return QueryResult(
            ("function_name", "value", "request_ids"), ("String", "Float64", "Array(String)"), rows
        )


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


class Recorder:
    """A notifier that keeps what it was sent."""

    def __init__(self, name: str = "rec", timeout_s: float = 1.0) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.payloads: list[Mapping[str, Any]] = []

    def send(self, payload: Mapping[str, Any]) -> None:
        self.payloads.append(payload)

    @property
    def events(self) -> list[tuple[str, str]]:
        return [(p["event"], p["function_name"]) for p in self.payloads]
