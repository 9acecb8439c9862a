"""Failed invocations (status ``error`` or ``failure``), with minimum traffic.

Rule (one finding per function and version per window): at least 3 failed invocations and an
error rate of at least 1% -> **warning**; at least 10% -> **critical** (Datadog's 1% / 10%
rates, plus a 3-error floor so one bad request in a quiet function does not page anyone).
Out-of-memory kills and timeouts are left to their own detectors, so one request never makes
two findings.

Screen (analyzers/rollups.py): only a function version whose rollups allow at least 3 failures
and a 1% failure rate has its raw rows read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lambdascope.analyzers import rollups, sql
from lambdascope.analyzers._format import function_label, percent
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["detect_errors", "error_findings"]

MAX_EVIDENCE = 50
MAX_TYPES = 5
MIN_ERRORS = 3
WARNING_RATE = 0.01
CRITICAL_RATE = 0.10


@register("errors")
def detect_errors(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    names = rollups.flagged(rollups.screen(client, window, function_name), could_fail)
    if not names:
        return []
    params = {
        **window.parameters(function_name),
        "max_evidence": MAX_EVIDENCE,
        "function_names": names,
    }
    rows = client.query(sql.ERRORS, params).dicts()
    if not any(r["errors"] >= MIN_ERRORS for r in rows):
        return []
    type_rows = client.query(sql.ERROR_TYPES, {**params, "max_types": MAX_TYPES}).dicts()
    return with_parameters(error_findings(rows, type_rows, window), {sql.ERRORS: params})


def could_fail(row: rollups.VersionScreen) -> bool:
    """Pure: whether the rollups leave room for an ``errors`` finding on this version."""
    return (
        row.errors_max >= MIN_ERRORS
        and rollups.rate_max(row.errors_max, row.invocations_min) >= WARNING_RATE
    )


def error_findings(
    rows: Sequence[Mapping[str, Any]],
    type_rows: Sequence[Mapping[str, Any]],
    window: Window,
) -> list[Finding]:
    """Pure: the findings for the rows of :data:`sql.ERRORS` and :data:`sql.ERROR_TYPES`."""
    types: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for t in type_rows:
        key = (t["function_name"], t["function_version"])
        types.setdefault(key, []).append((t["error_type"], int(t["errors"])))
    findings = []
    for row in rows:
        invocations = int(row["invocations"])
        errors = int(row["errors"])
        rate = errors / invocations if invocations else 0.0
        if errors < MIN_ERRORS or rate < WARNING_RATE:
            continue
        key = (row["function_name"], row["function_version"])
        top = types.get(key, [])
        breakdown = ", ".join(f"{n} × {name}" for name, n in top)
        label = function_label(*key)
        summary = f"{errors} of {invocations} invocations of {label} failed ({percent(rate)})"
        if breakdown:
            summary += f": {breakdown}"
        numbers: dict[str, float] = {
            "invocations": invocations,
            "errors": errors,
            "error_rate": rate,
            "evidence_total": errors,
        }
        for name, n in top:
            numbers[f"errors_{name}"] = n
        main = top[0][0] if top else "the error"
        findings.append(
            Finding(
                kind="errors",
                severity="critical" if rate >= CRITICAL_RATE else "warning",
                function_name=key[0],
                function_version=key[1],
                window_start=window.start,
                window_end=window.end,
                summary=summary,
                numbers=numbers,
                evidence_request_ids=tuple(row["error_request_ids"]),
                query=sql.ERRORS,
                recommendation=(
                    f"Open the evidence requests' logs for the stack trace of {main}; fix the "
                    "cause or handle the input that triggers it, and retry only errors that "
                    "are transient."
                ),
            )
        )
    return findings
