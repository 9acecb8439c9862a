"""Data completeness: what the store is missing about a function, and why.

Every other detector judges what arrived; this one says what did not. Per function over the
window, from the per-minute rollups and the extension's own figures (``extension_stats``):

* **invocations without a REPORT**: started minus reported over the window's minutes (crashes,
  timeouts without a report, telemetry lost), less one per environment still running, which
  may hold its last invocation's report until its next invocation or SHUTDOWN. They count
  from :data:`MIN_UNREPORTED` (3), like the errors detector's floor;
* **events the extension dropped**, by reason (its buffer full, refused by the collector, not
  sent at shutdown and not spooled...): each environment's newest totals in the window minus
  its newest totals before it;
* **environments that went silent without a final flush**: no batch of theirs was marked
  ``final`` and their newest batch is older than :data:`SILENT_AFTER` (15 minutes, settable:
  ``[completeness] silent_after_minutes``) at the window's end. The sandbox was killed, its
  collector unreachable through SHUTDOWN, or it was frozen and reclaimed; what it still held
  is lost;
* **events not sent at shutdown**: what the final flushes could not send before their final
  batch (spooled for a later extension process, or dropped as the reasons say).

Rule: one ``data_completeness`` finding per function when any of these is non-zero (the
unreported invocations from :data:`MIN_UNREPORTED`): **warning**; **critical** when a large
share is lost: at least :data:`CRITICAL_SHARE` (10%) of the invocations have no REPORT, or the
extension dropped at least 10% of the events it received in the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from lambdascope.analyzers import sql
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window, ch_time
from lambdascope.query import QueryClient

__all__ = [
    "completeness_findings",
    "configure",
    "delivery_parameters",
    "detect_data_completeness",
]

MIN_UNREPORTED = 3
CRITICAL_SHARE = 0.10
#: How long an environment without a final flush may stay quiet before it counts as silent.
SILENT_AFTER = timedelta(minutes=15)
#: How far before the window an environment's previous batch is looked for, to tell what it
#: dropped before the window from what it dropped in it (Lambda recycles environments within
#: hours; one older than this is counted from its first batch in the window).
BASELINE = timedelta(days=1)

#: The reasons of ``events_dropped`` (extension/README.md) in users' words, read after a count
#: of events ("790 not sent at shutdown and not spooled") or alone.
DROP_REASONS = {
    "buffer_full": "lost to a full buffer",
    "otlp_buffer_full": "lost to a full OpenTelemetry buffer",
    "rejected": "refused by the collector",
    "unsent_overflow": "beyond the limit of batches waiting for the collector",
    "spool_full": "deleted from a full spool",
    "shutdown_unspooled": "not sent at shutdown and not spooled",
    "shutdown_unbatched": "still buffered when shutdown ran out of time",
    "unspecified": "for a reason an older extension does not report",
}


def configure(silent_after: timedelta) -> None:
    """Set how long an environment may stay quiet before it went silent (process-wide)."""
    global SILENT_AFTER
    if silent_after <= timedelta(0):
        raise ValueError(f"silent_after must be a positive duration, got {silent_after}")
    SILENT_AFTER = silent_after


def delivery_parameters(window: Window, function_name: str | None = None) -> dict[str, Any]:
    """The parameters of :data:`lambdascope.analyzers.sql.EXTENSION_DELIVERY` for ``window``."""
    return {
        **window.parameters(function_name),
        "baseline_since": ch_time(window.start - BASELINE),
        "silent_before": ch_time(window.end - SILENT_AFTER),
    }


@register("data_completeness")
def detect_data_completeness(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    invocation_rows = client.query(
        sql.UNREPORTED_INVOCATIONS, window.parameters(function_name)
    ).dicts()
    delivery = delivery_parameters(window, function_name)
    delivery_rows = client.query(sql.EXTENSION_DELIVERY, delivery).dicts()
    findings = completeness_findings(invocation_rows, delivery_rows, window)
    return with_parameters(findings, {sql.EXTENSION_DELIVERY: delivery})


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _reason(name: str) -> str:
    return DROP_REASONS.get(name, name.replace("_", " "))


def completeness_findings(
    invocation_rows: Sequence[Mapping[str, Any]],
    delivery_rows: Sequence[Mapping[str, Any]],
    window: Window,
) -> list[Finding]:
    """Pure: the findings for the rows of :data:`sql.UNREPORTED_INVOCATIONS` and
    :data:`sql.EXTENSION_DELIVERY`."""
    invocations = {str(r["function_name"]): r for r in invocation_rows}
    delivery = {str(r["function_name"]): r for r in delivery_rows}
    findings = []
    for name in sorted(invocations.keys() | delivery.keys()):
        inv = invocations.get(name, {})
        ext = delivery.get(name, {})
        total = int(inv.get("invocations") or 0)
        open_environments = int(ext.get("open_environments") or 0)
        unreported = max(int(inv.get("unreported") or 0) - open_environments, 0)
        dropped_by_reason = {
            str(reason): int(events)
            for reason, events in (ext.get("events_dropped") or {}).items()
            if int(events) > 0
        }
        dropped = int(ext.get("events_dropped_total") or 0)
        received = int(ext.get("events_received") or 0)
        silent = int(ext.get("silent_environments") or 0)
        unsent = int(ext.get("shutdown_events_unsent") or 0)
        if unreported < MIN_UNREPORTED and not (dropped or silent or unsent):
            continue

        parts = []
        if unreported:
            verb = "has" if unreported == 1 else "have"
            of = _plural(total, "invocation", "invocations")
            parts.append(f"{unreported} of {of} {verb} no REPORT")
        if dropped:
            ranked = sorted(dropped_by_reason.items(), key=lambda item: (-item[1], item[0]))
            why = ", ".join(
                _reason(reason) if events == dropped else f"{events} {_reason(reason)}"
                for reason, events in ranked
            )
            was = "was" if dropped == 1 else "were"
            text = f"{_plural(dropped, 'event', 'events')} {was} dropped by the extension"
            parts.append(f"{text} ({why})" if why else text)
        if silent:
            parts.append(
                f"{_plural(silent, 'environment', 'environments')} went silent without a "
                "final flush"
            )
        if unsent:
            was = "was" if unsent == 1 else "were"
            parts.append(f"{_plural(unsent, 'event', 'events')} {was} not sent at shutdown")

        unreported_share = unreported / total if total else 0.0
        dropped_share = min(dropped / received, 1.0) if received else 0.0
        lost_share = max(unreported_share, dropped_share)
        summary = f"{name}: " + ", ".join(parts)
        numbers: dict[str, float] = {
            "invocations": total,
            "unreported_invocations": unreported,
            "reports_pending": min(open_environments, int(inv.get("unreported") or 0)),
            "events_received": received,
            "events_dropped": dropped,
            "environments": int(ext.get("environments") or 0),
            "silent_environments": silent,
            "shutdown_events_unsent": unsent,
            "lost_share": lost_share,
        }
        for reason, events in dropped_by_reason.items():
            numbers[f"events_dropped_{reason}"] = events
        findings.append(
            Finding(
                kind="data_completeness",
                severity="critical" if lost_share >= CRITICAL_SHARE else "warning",
                function_name=name,
                function_version="",
                window_start=window.start,
                window_end=window.end,
                summary=summary,
                numbers=numbers,
                query=sql.EXTENSION_DELIVERY,
                recommendation=_recommendation(unreported, dropped_by_reason, silent, unsent),
            )
        )
    return findings


def _recommendation(
    unreported: int, dropped_by_reason: Mapping[str, int], silent: int, unsent: int
) -> str:
    """What to do, for the losses this function shows."""
    advice = []
    if unreported:
        advice.append(
            "Invocations without a REPORT crashed, timed out before Lambda could report them, "
            "or lost their telemetry: look for them in the function's logs."
        )
    if dropped_by_reason.keys() & {"buffer_full", "otlp_buffer_full", "unsent_overflow"}:
        advice.append(
            "The extension could not keep up: raise LAMBDASCOPE_BUFFER_MAX_EVENTS / "
            "LAMBDASCOPE_BUFFER_MAX_BYTES, or check that the collector answers quickly."
        )
    if dropped_by_reason.keys() & {"rejected"}:
        advice.append("The collector refused batches: its log says why.")
    if silent or unsent or dropped_by_reason.keys() & {"shutdown_unspooled", "shutdown_unbatched"}:
        advice.append(
            "Data was lost when environments shut down: check that the collector is reachable "
            "and answers within the shutdown deadline (the extension's shutdown line in the "
            "function's log says why it could not send), and keep its spool "
            "(LAMBDASCOPE_SPOOL_MAX_BYTES above 0): after a timeout or crash the environment's "
            "next extension process sends what was spooled."
        )
    if dropped_by_reason.keys() & {"spool_full"}:
        advice.append("The spool was full: raise LAMBDASCOPE_SPOOL_MAX_BYTES.")
    return " ".join(advice)
