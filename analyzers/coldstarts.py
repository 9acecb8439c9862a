"""Cold starts that users feel.

Rule (one finding per function and version per window): cold starts are more than 1% of the
invocations (Datadog's threshold), there were at least 3 of them, and the init p95 is at least
500 ms (a fast init is not worth anyone's attention) -> **info**; with a cold-start rate of at
least 5% and an init p95 of at least 1 s -> **warning**.

Screen (analyzers/rollups.py): only a function version whose rollups allow 3 cold starts, a
rate above 1% and an init of 500 ms (the p95 is at most the longest) has its raw rows read.

Known gap: the ``invocations`` view does not carry the initialization type or the time between
init and the first invocation, so provisioned-concurrency and proactive inits are not yet
excluded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lambdascope.analyzers import rollups, sql
from lambdascope.analyzers._format import function_label, number, percent
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["cold_start_findings", "detect_cold_starts"]

MAX_EVIDENCE = 50
MIN_RATE = 0.01
MIN_COLD_STARTS = 3
MIN_INIT_P95_MS = 500.0
WARNING_RATE = 0.05
WARNING_INIT_P95_MS = 1000.0


@register("cold_starts")
def detect_cold_starts(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    names = rollups.flagged(rollups.screen(client, window, function_name), could_start_cold)
    if not names:
        return []
    params = {
        **window.parameters(function_name),
        "max_evidence": MAX_EVIDENCE,
        "function_names": names,
    }
    findings = cold_start_findings(client.query(sql.COLD_STARTS, params).dicts(), window)
    return with_parameters(findings, {sql.COLD_STARTS: params})


def could_start_cold(row: rollups.VersionScreen) -> bool:
    """Pure: whether the rollups leave room for a ``cold_starts`` finding on this version."""
    return (
        row.cold_starts_max >= MIN_COLD_STARTS
        and rollups.rate_max(row.cold_starts_max, row.invocations_min) > MIN_RATE
        and (row.max_init_duration_ms or 0.0) >= MIN_INIT_P95_MS
    )


def _q(values: Sequence[Any], index: int) -> float | None:
    if len(values) <= index or values[index] is None:
        return None
    value = float(values[index])
    return value if math.isfinite(value) else None


def cold_start_findings(rows: Sequence[Mapping[str, Any]], window: Window) -> list[Finding]:
    """Pure: the findings for the rows of :data:`sql.COLD_STARTS`."""
    findings = []
    for row in rows:
        invocations = int(row["invocations"])
        cold = int(row["cold_starts"])
        rate = cold / invocations if invocations else 0.0
        quantiles = list(row["init_quantiles_ms"] or [])
        p50, p95, p99 = _q(quantiles, 0), _q(quantiles, 1), _q(quantiles, 2)
        if cold < MIN_COLD_STARTS or rate <= MIN_RATE or p95 is None or p95 < MIN_INIT_P95_MS:
            continue
        severity = "warning" if rate >= WARNING_RATE and p95 >= WARNING_INIT_P95_MS else "info"
        label = function_label(row["function_name"], row["function_version"])
        findings.append(
            Finding(
                kind="cold_starts",
                severity=severity,
                function_name=row["function_name"],
                function_version=row["function_version"],
                window_start=window.start,
                window_end=window.end,
                summary=f"{cold} of {invocations} invocations of {label} were cold starts "
                f"({percent(rate)}), init p95 {p95:.0f} ms",
                numbers={
                    "invocations": invocations,
                    "cold_starts": cold,
                    "cold_start_rate": rate,
                    "init_p50_ms": number(p50),
                    "init_p95_ms": p95,
                    "init_p99_ms": number(p99),
                    "max_init_duration_ms": number(row["max_init_duration_ms"]),
                    "evidence_total": cold,
                },
                evidence_request_ids=tuple(row["cold_start_request_ids"]),
                query=sql.COLD_STARTS,
                recommendation=(
                    "Users wait for these inits: lazy-load heavy imports and create clients "
                    "once outside the handler, trim the package, raise memory (more CPU during "
                    "init), or use provisioned concurrency / SnapStart for steady traffic."
                ),
            )
        )
    return findings
