"""Timeouts, and functions at risk of timing out.

Rules (one finding per function and version per window, never one per invocation):

* ``timeout``: any invocation whose status is ``timeout``. **critical** when at least 5% of the
  function's invocations timed out or at least 10 did; otherwise **warning** (a timeout is a
  failed request, so it is never mere info). In a low-traffic function (< 20 invocations) a
  single timeout is already >= 5%, hence critical.
* ``timeout_risk`` (**warning**, only when nothing timed out): the p99 duration is at least 80%
  of the configured timeout (CloudWatch alarm libraries' rule) or some invocation took at
  least 95% of it (Datadog's "approaching timeout"). Evidence: invocations above 90%.

The configured timeout comes from ``timeout_ms`` (the INVOKE deadline), else from Lambda's
"Task timed out after N.NN seconds" log line.

Screen (analyzers/rollups.py): only a function with a possible timeout in the rollups, or an
invocation there lasting at least 80% of its shortest configured timeout, has its raw rows read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lambdascope.analyzers import rollups, sql
from lambdascope.analyzers._format import function_label, number, percent, seconds
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["detect_timeouts", "timeout_findings"]

MAX_EVIDENCE = 50
CRITICAL_SHARE = 0.05
CRITICAL_COUNT = 10
RISK_P99_SHARE = 0.80
RISK_MAX_SHARE = 0.95
NEAR_SHARE = 0.90
#: Timeouts count as "concentrated on cold starts" when at least half of them are cold starts
#: and cold starts are at least twice as common among timeouts as among all invocations.
COLD_CONCENTRATION = 0.5


@register("timeouts")
def detect_timeouts(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    names = rollups.flagged(rollups.screen(client, window, function_name), could_time_out)
    if not names:
        return []
    params = {
        **window.parameters(function_name),
        "near_share": NEAR_SHARE,
        "max_evidence": MAX_EVIDENCE,
        "function_names": names,
    }
    rows = client.query(sql.TIMEOUTS, params).dicts()
    missing = sorted(
        {r["function_name"] for r in rows if r["timeouts"] and not r["configured_timeout_ms"]}
    )
    log_timeouts: dict[tuple[str, str], float] = {}
    if missing:
        log_rows = client.query(
            sql.TIMEOUT_FROM_LOGS,
            {"since": params["since"], "until": params["until"], "function_names": missing},
        ).dicts()
        log_timeouts = {
            (r["function_name"], r["function_version"]): r["timeout_ms"]
            for r in log_rows
            if r["timeout_ms"]
        }
    return with_parameters(timeout_findings(rows, log_timeouts, window), {sql.TIMEOUTS: params})


def could_time_out(row: rollups.VersionScreen) -> bool:
    """Pure: whether the rollups leave room for a ``timeout`` or ``timeout_risk`` finding (a
    p99 at 80% of the timeout needs an invocation that long; a risk without a configured
    timeout is never reported)."""
    if row.timeouts_max > 0:
        return True
    return bool(row.min_timeout_ms) and row.max_duration_ms >= RISK_P99_SHARE * (
        row.min_timeout_ms or 0.0
    )


def timeout_findings(
    rows: Sequence[Mapping[str, Any]],
    log_timeouts: Mapping[tuple[str, str], float],
    window: Window,
) -> list[Finding]:
    """Pure: the findings for the rows of :data:`sql.TIMEOUTS`."""
    findings = []
    for row in rows:
        key = (row["function_name"], row["function_version"])
        timeout_ms = row["configured_timeout_ms"] or log_timeouts.get(key)
        if row["timeouts"]:
            findings.append(_timeout_finding(row, timeout_ms, window))
        elif timeout_ms:
            risk = _risk_finding(row, timeout_ms, window)
            if risk is not None:
                findings.append(risk)
    return findings


def _timeout_finding(row: Mapping[str, Any], timeout_ms: float | None, window: Window) -> Finding:
    invocations = int(row["invocations"])
    timeouts = int(row["timeouts"])
    share = timeouts / invocations
    cold = int(row["cold_start_timeouts"])
    cold_share_overall = int(row["cold_starts"]) / invocations
    concentrated = (
        cold / timeouts >= COLD_CONCENTRATION and cold / timeouts >= 2 * cold_share_overall
    )
    at_memory_limit = int(row["timeouts_at_memory_limit"])
    label = function_label(row["function_name"], row["function_version"])
    limit = f"at its {seconds(timeout_ms)} limit" if timeout_ms else "(limit unknown)"
    summary = f"{timeouts} of {invocations} invocations of {label} timed out {limit}"
    if concentrated:
        summary += f", {cold} of them on cold starts"
    if at_memory_limit:
        summary += f", {at_memory_limit} at the memory limit"
    severity = "critical" if share >= CRITICAL_SHARE or timeouts >= CRITICAL_COUNT else "warning"
    return Finding(
        kind="timeout",
        severity=severity,
        function_name=row["function_name"],
        function_version=row["function_version"],
        window_start=window.start,
        window_end=window.end,
        summary=summary,
        numbers={
            "invocations": invocations,
            "timeouts": timeouts,
            "timeout_share": share,
            "timeout_ms": number(timeout_ms),
            "cold_start_timeouts": cold,
            "cold_start_share": cold_share_overall,
            "concentrated_on_cold_starts": 1.0 if concentrated else 0.0,
            "timeouts_at_memory_limit": at_memory_limit,
            "p99_duration_ms": number(row["p99_duration_ms"]),
            "evidence_total": timeouts,
        },
        evidence_request_ids=tuple(row["timeout_request_ids"]),
        query=sql.TIMEOUTS,
        recommendation=_recommend(timeout_ms, concentrated, at_memory_limit, timeouts),
    )


def _recommend(
    timeout_ms: float | None, concentrated: bool, at_memory_limit: int, timeouts: int
) -> str:
    limit = seconds(timeout_ms) if timeout_ms else "timeout"
    if at_memory_limit * 2 >= timeouts:
        return (
            "These invocations also used all their memory: likely an out-of-memory stall "
            "that Lambda reported as a timeout. Raise the memory size or cut what the "
            "handler keeps in memory, then check the evidence requests' logs."
        )
    if concentrated:
        return (
            "Most timeouts are cold starts, so initialisation eats the budget: lazy-load "
            "heavy imports and clients, slim the package, raise memory (more CPU during "
            "init) or use provisioned concurrency. Raising the timeout only hides it."
        )
    return (
        "Open the evidence requests' logs to see what they were waiting on; give downstream "
        f"calls (HTTP, AWS SDK, databases) their own timeouts well below the {limit} limit, "
        "or raise the function timeout if the work legitimately takes longer."
    )


def _risk_finding(row: Mapping[str, Any], timeout_ms: float, window: Window) -> Finding | None:
    p99 = row["p99_duration_ms"]
    longest = row["max_duration_ms"]
    p99_share = (p99 or 0.0) / timeout_ms
    max_share = (longest or 0.0) / timeout_ms
    if p99_share < RISK_P99_SHARE and max_share < RISK_MAX_SHARE:
        return None
    label = function_label(row["function_name"], row["function_version"])
    invocations = int(row["invocations"])
    near = int(row["near_timeouts"])
    if p99_share >= RISK_P99_SHARE:
        summary = (
            f"{label} is close to its {seconds(timeout_ms)} timeout: p99 "
            f"{seconds(p99)} ({percent(p99_share)} of it) over {invocations} invocations"
        )
    else:
        summary = (
            f"{label} came within {percent(1 - max_share)} of its {seconds(timeout_ms)} "
            f"timeout: longest invocation {seconds(longest)}"
        )
    return Finding(
        kind="timeout_risk",
        severity="warning",
        function_name=row["function_name"],
        function_version=row["function_version"],
        window_start=window.start,
        window_end=window.end,
        summary=summary,
        numbers={
            "invocations": invocations,
            "timeout_ms": timeout_ms,
            "p99_duration_ms": number(p99),
            "max_duration_ms": number(longest),
            "p99_share_of_timeout": p99_share,
            "max_share_of_timeout": max_share,
            "near_timeouts": near,
            "evidence_total": near,
        },
        evidence_request_ids=tuple(row["near_timeout_request_ids"]),
        query=sql.TIMEOUTS,
        recommendation=(
            "Nothing timed out yet, but the slowest invocations are close: find what they "
            "wait on in the evidence requests' logs, bound downstream calls with their own "
            f"timeouts, or raise the {seconds(timeout_ms)} timeout before it starts failing."
        ),
    )
