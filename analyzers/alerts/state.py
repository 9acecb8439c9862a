"""Alert states per (rule, function), their transitions, and where they are kept.

:class:`AlertStateStore` is what the engine needs: load the current states, save one, record a
transition into history. :class:`MemoryAlertStateStore` serves tests and ``alerts test``;
:class:`ClickHouseAlertStateStore` keeps them in the collector's store through a *writer* (any
object with ``command(sql, parameters)`` and ``query(sql, parameters)``, such as the collector's
clickhouse-connect client), so the analyzers never import a ClickHouse driver.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from lambdascope.analyzers.alerts import sql
from lambdascope.analyzers.findings import Finding
from lambdascope.analyzers.window import ch_time

__all__ = [
    "STATES",
    "AlertState",
    "AlertStateStore",
    "ClickHouseAlertStateStore",
    "MemoryAlertStateStore",
    "StateStoreError",
    "Transition",
    "create_alert_tables",
]

#: ``inactive`` is never stored: no row means inactive.
STATES: tuple[str, ...] = ("inactive", "pending", "firing", "resolved")


class StateStoreError(Exception):
    """The alert state could not be read or written; the message names the table and a fix."""


@dataclass(frozen=True)
class AlertState:
    rule: str
    function_name: str
    state: str
    #: When the current state was entered.
    since: datetime
    pending_since: datetime | None = None
    firing_since: datetime | None = None
    #: First evaluation at which the condition was clear while firing (hysteresis).
    clear_since: datetime | None = None
    last_notified_at: datetime | None = None
    value: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.function_name)


@dataclass(frozen=True)
class Transition:
    """One change of an alert (or a re-notification while it keeps firing).

    ``event`` is ``pending``, ``firing``, ``renotify``, ``resolved`` or ``cancelled`` (pending
    that stopped breaching before ``for`` elapsed). ``notify`` is True for the events users
    hear about: firing, renotify and resolved.
    """

    rule: str
    function_name: str
    event: str
    previous: str
    state: str
    at: datetime
    severity: str
    value: float | None
    threshold: str
    summary: str
    finding: Finding | None = None
    query: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    labels: tuple[tuple[str, str], ...] = ()
    notifiers: tuple[str, ...] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def notify(self) -> bool:
        return self.event in ("firing", "renotify", "resolved")

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.function_name)


class AlertStateStore(Protocol):
    def load_states(self) -> dict[tuple[str, str], AlertState]: ...

    def save_state(self, state: AlertState) -> None: ...

    def record_transition(self, transition: Transition) -> None: ...


class MemoryAlertStateStore:
    """States and history in memory (tests, ``lambdascope alerts test``)."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], AlertState] = {}
        self.history: list[Transition] = []
        self._lock = threading.Lock()

    def load_states(self) -> dict[tuple[str, str], AlertState]:
        with self._lock:
            return dict(self._states)

    def save_state(self, state: AlertState) -> None:
        with self._lock:
            self._states[state.key] = state

    def record_transition(self, transition: Transition) -> None:
        with self._lock:
            self.history.append(transition)


class Writer(Protocol):
    def command(self, sql: str, parameters: Any = None) -> Any: ...

    def query(self, sql: str, parameters: Any = None) -> Any: ...


def create_alert_tables(writer: Writer) -> None:
    """Create ``alert_state`` and ``alert_history`` if missing (idempotent)."""
    for ddl in sql.ALERT_TABLES_DDL:
        writer.command(ddl)


class ClickHouseAlertStateStore:
    """States in ``alert_state`` (newest row wins) and transitions in ``alert_history``."""

    def __init__(self, writer: Writer, *, create_tables: bool = True) -> None:
        self._writer = writer
        self._lock = threading.Lock()
        self._last_updated: datetime | None = None
        if create_tables:
            try:
                create_alert_tables(writer)
            except Exception as exc:
                raise StateStoreError(
                    f"cannot create the alert_state/alert_history tables: {exc}. Check that "
                    "the store is writable by the collector."
                ) from exc

    def load_states(self) -> dict[tuple[str, str], AlertState]:
        columns, rows = self._query(sql.SELECT_STATES, {}, "alert_state")
        states = {}
        for row in rows:
            r = dict(zip(columns, row, strict=True))
            state = AlertState(
                rule=r["rule"],
                function_name=r["function_name"],
                state=r["state"],
                since=_utc(r["since"]),
                pending_since=_utc_or_none(r["pending_since"]),
                firing_since=_utc_or_none(r["firing_since"]),
                clear_since=_utc_or_none(r["clear_since"]),
                last_notified_at=_utc_or_none(r["last_notified_at"]),
                value=r["value"],
            )
            states[state.key] = state
        return states

    def save_state(self, state: AlertState) -> None:
        parameters = {
            "rule": state.rule,
            "function_name": state.function_name,
            "state": state.state,
            "since": ch_time(state.since),
            "pending_since": _time_or_none(state.pending_since),
            "firing_since": _time_or_none(state.firing_since),
            "clear_since": _time_or_none(state.clear_since),
            "last_notified_at": _time_or_none(state.last_notified_at),
            "value": _finite_or_none(state.value),
            "updated_at": ch_time(self._updated_at()),
        }
        self._command(sql.INSERT_STATE, parameters, "alert_state")

    def record_transition(self, transition: Transition) -> None:
        finding = transition.finding
        parameters = {
            "at": ch_time(transition.at),
            "rule": transition.rule,
            "function_name": transition.function_name,
            "event": transition.event,
            "previous": transition.previous,
            "state": transition.state,
            "severity": transition.severity,
            "value": _finite_or_none(transition.value),
            "threshold": transition.threshold,
            "summary": transition.summary,
            "evidence_request_ids": list(finding.evidence_request_ids) if finding else [],
            "notified": 1 if transition.notify else 0,
            "payload": json.dumps(transition.payload, default=str),
        }
        self._command(sql.INSERT_HISTORY, parameters, "alert_history")

    def history(
        self, *, rule: str = "", function_name: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest transitions first, as dicts (``payload`` parsed back from JSON)."""
        columns, rows = self._query(
            sql.SELECT_HISTORY,
            {"rule": rule, "function_name": function_name, "limit": limit},
            "alert_history",
        )
        out = []
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            record["at"] = _utc(record["at"])
            record["payload"] = json.loads(record["payload"]) if record["payload"] else {}
            out.append(record)
        return out

    def _updated_at(self) -> datetime:
        # ReplacingMergeTree keeps the row with the largest updated_at: the wall clock, nudged
        # forward so two saves within one millisecond still order correctly.
        with self._lock:
            now = datetime.now(UTC)
            last = self._last_updated
            if last is not None and now <= last:
                now = last + timedelta(milliseconds=1)
            self._last_updated = now
            return now

    def _command(self, statement: str, parameters: Mapping[str, Any], table: str) -> None:
        try:
            self._writer.command(statement, parameters)
        except Exception as exc:
            raise StateStoreError(f"writing {table} failed: {exc}") from exc

    def _query(
        self, statement: str, parameters: Mapping[str, Any], table: str
    ) -> tuple[Sequence[str], list[Sequence[Any]]]:
        try:
            result = self._writer.query(statement, parameters)
        except Exception as exc:
            raise StateStoreError(
                f"reading {table} failed: {exc}. Create the tables with "
                "analyzers.alerts.create_alert_tables(writer)."
            ) from exc
        # clickhouse-connect answers column_names/result_rows, lambdascope's QueryResult
        # columns/rows: accept both so a QueryClient-like writer works too.
        columns: Sequence[str] = (
            getattr(result, "column_names", None) or getattr(result, "columns", None) or ()
        )
        rows = getattr(result, "result_rows", None)
        if rows is None:
            rows = getattr(result, "rows", [])
        return tuple(columns), list(rows)


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _utc_or_none(value: Any) -> datetime | None:
    return None if value is None else _utc(value)


def _time_or_none(value: datetime | None) -> str | None:
    return None if value is None else ch_time(value)


def _finite_or_none(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)
