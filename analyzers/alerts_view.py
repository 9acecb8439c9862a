"""Read models of the alerts screen: each rule's state per function, its history, its query.

The rules come from the rules file (what the collector evaluates with ``--rules FILE``); the
states and transitions from the ``alert_state`` and ``alert_history`` tables the collector's
alert engine keeps (their SQL is :mod:`lambdascope.analyzers.alerts.sql`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdascope.analyzers._format import finite as _finite
from lambdascope.analyzers.alerts import sql
from lambdascope.analyzers.alerts.rules import Rule, RuleSet, SqlSource
from lambdascope.analyzers.window import Window, ch_time
from lambdascope.query import QueryClient, QueryError

__all__ = [
    "ALERT_TABLES_MISSING",
    "AlertHistoryEntry",
    "AlertRow",
    "AlertsView",
    "alert_history",
    "alert_rows",
    "alert_window",
    "alerts_view",
    "bind_for_display",
    "history_entry",
    "is_missing_table",
    "rule_query",
]

#: What to do when the store holds no alert tables.
ALERT_TABLES_MISSING = (
    "This store has no alert state: the collector evaluates alert rules only when started "
    "with them. Run `lambdascope collector --rules FILE` (or "
    "`lambdascope alerts test FILE --since 1h` to preview them)."
)
#: The screen shows the states in this order, most urgent first; ``resolved`` shows as ``ok``.
STATE_ORDER = ("firing", "pending", "ok")
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class AlertRow:
    """One rule on one function (or a rule no function has breached: ``function_name`` '')."""

    rule_name: str
    function_name: str
    state: str
    #: When the state was entered; None for a rule that never left ``ok``.
    since: datetime | None
    value: float | None
    threshold: str
    severity: str
    pending_since: datetime | None = None
    firing_since: datetime | None = None
    #: How far back one evaluation of the rule reads (its windows); None for a rule no longer
    #: in the rules file.
    lookback: timedelta | None = None

    @property
    def active(self) -> bool:
        return self.state in ("firing", "pending")


@dataclass(frozen=True)
class AlertHistoryEntry:
    at: datetime
    rule_name: str
    function_name: str
    event: str
    previous: str
    state: str
    value: float | None
    threshold: str
    summary: str
    evidence_request_ids: tuple[str, ...]
    #: The query the engine ran for this transition and its parameters ('' / {} if unknown).
    query: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class AlertsView:
    rows: list[AlertRow]
    #: The store has no ``alert_state`` / ``alert_history`` tables (see ALERT_TABLES_MISSING).
    tables_missing: bool = False


def _threshold(rule: Rule) -> str:
    return str(rule.threshold) if rule.threshold is not None else "finding present"


def is_missing_table(exc: QueryError, table: str) -> bool:
    """Whether ``exc`` says ``table`` does not exist: ClickHouse's UNKNOWN_TABLE, or the
    collector's read API refusing a table its store does not hold."""
    text = str(exc).lower()
    return table in text and any(
        marker in text
        for marker in ("unknown_table", "unknown table", "does not exist", "doesn't exist")
    )


def alert_rows(rules: RuleSet, states: Sequence[Mapping[str, Any]]) -> list[AlertRow]:
    """Pure: the rules with their stored states (rows of :data:`sql.SELECT_STATES`), most
    urgent first, then in the rules file's order; a rule without states is one ``ok`` row."""
    by_rule: dict[str, list[Mapping[str, Any]]] = {}
    for state in states:
        by_rule.setdefault(str(state["rule"]), []).append(state)
    order = {rule.name: index for index, rule in enumerate(rules.rules)}
    rows: list[AlertRow] = []
    for rule in rules.rules:
        stored = by_rule.pop(rule.name, [])
        if not stored:
            rows.append(AlertRow(rule.name, "", "ok", None, None, _threshold(rule), rule.severity))
        rows += [_state_row(rule.name, s, rule) for s in stored]
    # States of rules no longer in the file: the engine keeps them until it runs again.
    for name, stored in by_rule.items():
        rows += [_state_row(name, s, None) for s in stored]
    return sorted(
        rows,
        key=lambda r: (STATE_ORDER.index(r.state), order.get(r.rule_name, len(order))),
    )


def _state_row(rule_name: str, state: Mapping[str, Any], rule: Rule | None) -> AlertRow:
    stored = str(state["state"])
    return AlertRow(
        rule_name=rule_name,
        function_name=str(state["function_name"]),
        state=stored if stored in ("firing", "pending") else "ok",
        since=state["since"],
        value=_finite(state["value"]),
        threshold=_threshold(rule) if rule is not None else "-",
        severity=rule.severity if rule is not None else "-",
        pending_since=state.get("pending_since"),
        firing_since=state.get("firing_since"),
        lookback=rule.lookback if rule is not None else None,
    )


def alerts_view(client: QueryClient, rules: RuleSet) -> AlertsView:
    """The rules and their current states; ``tables_missing`` when no collector ran alerts."""
    try:
        states = client.query(sql.SELECT_STATES, {}).dicts()
    except QueryError as exc:
        if not is_missing_table(exc, "alert_state"):
            raise
        return AlertsView(alert_rows(rules, []), tables_missing=True)
    return AlertsView(alert_rows(rules, states))


def history_entry(row: Mapping[str, Any]) -> AlertHistoryEntry:
    """Pure: a row of :data:`sql.SELECT_HISTORY`, with the query its payload recorded."""
    try:
        payload = json.loads(row.get("payload") or "{}")
    except ValueError:
        payload = {}
    query = payload.get("query") if isinstance(payload, dict) else None
    query = query if isinstance(query, dict) else {}
    parameters = query.get("parameters")
    return AlertHistoryEntry(
        at=row["at"],
        rule_name=str(row["rule"]),
        function_name=str(row["function_name"]),
        event=str(row["event"]),
        previous=str(row["previous"]),
        state=str(row["state"]),
        value=_finite(row["value"]),
        threshold=str(row["threshold"]),
        summary=str(row["summary"]),
        evidence_request_ids=tuple(str(r) for r in row.get("evidence_request_ids") or ()),
        query=str(query.get("sql") or ""),
        parameters=parameters if isinstance(parameters, dict) else {},
    )


def alert_history(
    client: QueryClient, rule_name: str, *, function_name: str = "", limit: int = HISTORY_LIMIT
) -> list[AlertHistoryEntry]:
    """A rule's transitions (of one function, or all with ``''``), newest first."""
    params = {"rule": rule_name, "function_name": function_name, "limit": limit}
    return [history_entry(row) for row in client.query(sql.SELECT_HISTORY, params).dicts()]


def rule_query(
    rule: Rule | None,
    history: Sequence[AlertHistoryEntry],
    *,
    function_name: str = "",
    now: datetime | None = None,
) -> tuple[str, Mapping[str, Any]]:
    """Pure: the query behind a rule and its parameters: as the engine last ran it for the
    function (from its newest transition), else as it would run over the newest window."""
    for entry in history:
        if entry.query and (not function_name or entry.function_name == function_name):
            return entry.query, entry.parameters
    if rule is None or not isinstance(rule.source, SqlSource):
        # A detector's query is the detector's own: known once it has run for the rule.
        return "", {}
    end = now or datetime.now(UTC)
    return rule.source.sql, {"since": ch_time(end - rule.window), "until": ch_time(end)}


_PLACEHOLDER = re.compile(r"\{(\w+):([^{}]+)\}")


def bind_for_display(query: str, parameters: Mapping[str, Any]) -> str:
    """Pure: ``query`` with each ``{name:Type}`` shown as its value, to read, never to run
    (queries always run with bound parameters). Unknown names stay as written."""

    def literal(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if value is None:
            return "NULL"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list | tuple):
            return "[" + ", ".join(literal(v) for v in value) + "]"
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return literal(parameters[name]) if name in parameters else match.group(0)

    return _PLACEHOLDER.sub(replace, query)


def alert_window(row: AlertRow, now: datetime | None = None) -> Window:
    """Pure: the window around an alert: from one lookback before it began to now."""
    end = now or datetime.now(UTC)
    began = row.pending_since or row.firing_since or row.since or end
    lookback = row.lookback or timedelta(minutes=15)
    return Window(min(began - lookback, end - lookback), end)
