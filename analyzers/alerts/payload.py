"""What a notification says: one JSON payload per transition, and its Slack rendering (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdascope.analyzers.alerts.rules import DetectorSource, Rule
from lambdascope.analyzers.findings import Finding
from lambdascope.query import jsonable

__all__ = ["PAYLOAD_VERSION", "build_payload", "slack_message", "tui_command"]

PAYLOAD_VERSION = 1
_ICONS = {
    "firing": ":rotating_light:",
    "renotify": ":rotating_light:",
    "resolved": ":white_check_mark:",
}


def tui_command(collector_url: str, window: timedelta) -> str:
    """The command that opens the TUI on the same store, over at least the alert's window."""
    minutes = max(60, int(window.total_seconds() // 60))
    since = f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
    return f"lambdascope tui --collector {collector_url} --since {since}"


def build_payload(
    *,
    rule: Rule,
    event: str,
    state: str,
    function_name: str,
    at: datetime,
    value: float | None,
    summary: str,
    finding: Finding | None,
    query: str,
    parameters: Mapping[str, Any],
    firing_since: datetime | None,
    collector_url: str,
) -> dict[str, Any]:
    """The JSON body every notifier receives (the generic webhook posts it as is)."""
    request_ids = list(finding.evidence_request_ids) if finding else []
    command = tui_command(collector_url, rule.lookback)
    source: dict[str, Any]
    if isinstance(rule.source, DetectorSource):
        source = {
            "detector": rule.source.detector,
            "kind": rule.source.kind,
            "metric": rule.source.metric,
            "min_severity": rule.source.min_severity,
        }
    else:
        source = {"sql": rule.source.sql}
    threshold = str(rule.threshold) if rule.threshold else "finding present"
    text = f"[{rule.severity.upper()}] {event.upper()} {rule.name} on {function_name}: {summary}"
    if request_ids and event != "resolved":
        text += f" (open: {command}, request {request_ids[0]})"
    return {
        "schema_version": PAYLOAD_VERSION,
        "event": event,
        "state": state,
        "rule": {
            "name": rule.name,
            "description": rule.description,
            "severity": rule.severity,
            "labels": rule.label_dict,
            "source": source,
            "threshold": threshold,
            "window_s": rule.window.total_seconds(),
            "for_s": rule.for_.total_seconds(),
            "m_of_n": f"{rule.m}/{rule.n}",
            "min_invocations": rule.min_invocations,
        },
        "function_name": function_name,
        "severity": rule.severity,
        "value": jsonable(value),
        "threshold": threshold,
        "at": _iso(at),
        "firing_since": _iso(firing_since) if firing_since else None,
        "summary": summary,
        "finding": finding.to_dict() if finding else None,
        "query": {"sql": query, "parameters": jsonable(dict(parameters))},
        "tui": {
            "command": command,
            "request_id": request_ids[0] if request_ids else None,
            "request_ids": request_ids,
            "how": _how(command, function_name, finding, request_ids),
        },
        "text": text,
    }


def _how(command: str, function_name: str, finding: Finding | None, request_ids: list[str]) -> str:
    # The TUI lists the detectors' findings; a SQL rule's result is not one of them.
    where = (
        f"open the {finding.kind} finding of {function_name}"
        if finding is not None and finding.kind != "sql"
        else f"select {function_name}"
    )
    if request_ids:
        return f"run `{command}`, {where} and open request {request_ids[0]}"
    return f"run `{command}` and {where}"


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack-compatible body: ``text`` for notifications and clients without blocks."""
    finding = payload.get("finding") or {}
    numbers = finding.get("numbers") or {}
    tui = payload.get("tui") or {}
    icon = _ICONS.get(str(payload.get("event")), ":bell:")
    rule = payload.get("rule") or {}
    header = (
        f"{icon} *{str(payload.get('event', '')).upper()}* `{rule.get('name', '')}` on "
        f"*{payload.get('function_name', '')}* ({payload.get('severity', '')})"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": header}},
        {"type": "section", "text": {"type": "mrkdwn", "text": str(payload.get("summary", ""))}},
    ]
    if numbers:
        fields = [
            {"type": "mrkdwn", "text": f"*{name}*\n{_fmt(value)}"}
            for name, value in list(numbers.items())[:10]  # Slack allows 10 fields
        ]
        blocks.append({"type": "section", "fields": fields})
    if finding.get("recommendation"):
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*What to do:* {finding['recommendation']}"},
            }
        )
    context = [f"Open: `{tui.get('command', '')}`"]
    if tui.get("request_id"):
        context.append(f"request `{tui['request_id']}`")
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]}
    )
    query = (payload.get("query") or {}).get("sql", "")
    if query:
        # Slack caps a text object at 3000 characters.
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"```{query.strip()[:2800]}```"},
            }
        )
    return {"text": str(payload.get("text", "")), "blocks": blocks}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
