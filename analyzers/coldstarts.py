"""Cold starts that users feel.

Only on-demand inits that a request waited for count: provisioned-concurrency inits and
SnapStart restores happen before any request arrives, and a proactive init (Lambda initialised
the environment ahead of demand; it then sat idle more than 10 s before its first request,
Datadog's rule) kept nobody waiting. They are counted apart in the finding's figures.

Rules (one finding per function and version per window):

* frequent: cold starts are more than 1% of the invocations (Datadog's threshold), there were
  at least 3 of them, and the init p95 is at least 500 ms (a fast init is not worth anyone's
  attention) -> **info**; with a cold-start rate of at least 5% and an init p95 of at least
  1 s -> **warning**;
* slow: even one or two cold starts whose init p95 is at least 1 s -> **info** (a function with
  one or two environments pays its slow init rarely, but every user who hits it waits);
  **warning** when they are at least 5% of the invocations.

The finding explains the init's anatomy from the environment's init events: the time until
the runtime was ready (extensions registering, the runtime starting and the function's code
outside the handler) and the time the init then waited for the extensions; and the
lambdascope extension's own start-up.

Screen (analyzers/rollups.py): only a function version whose rollups show a cold start with an
init of 500 ms or more has its raw rows read.
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
SLOW_INIT_P95_MS = 1000.0


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
    rows = client.query(sql.COLD_STARTS, params).dicts()
    own_params = {**window.parameters(function_name), "function_names": names}
    own = {
        str(r["function_name"]): r["own_startup_p50_ms"]
        for r in client.query(sql.COLD_START_OWN_STARTUP, own_params).dicts()
    }
    findings = cold_start_findings(rows, window, own)
    return with_parameters(
        findings, {sql.COLD_STARTS: params, sql.COLD_START_OWN_STARTUP: own_params}
    )


def could_start_cold(row: rollups.VersionScreen) -> bool:
    """Pure: whether the rollups leave room for a ``cold_starts`` finding on this version."""
    longest = row.max_init_duration_ms or 0.0
    frequent = (
        row.cold_starts_max >= MIN_COLD_STARTS
        and rollups.rate_max(row.cold_starts_max, row.invocations_min) > MIN_RATE
        and longest >= MIN_INIT_P95_MS
    )
    return frequent or (row.cold_starts_max >= 1 and longest >= SLOW_INIT_P95_MS)


def _q(values: Sequence[Any], index: int) -> float | None:
    if len(values) <= index or values[index] is None:
        return None
    value = float(values[index])
    return value if math.isfinite(value) else None


def _anatomy(row: Mapping[str, Any], own_startup_ms: float | None) -> tuple[str, dict[str, float]]:
    """Pure: the sentence and figures that say where a cold start's time went.

    With the runtime's start (from the lambdascope extension): extensions starting, the
    runtime and the function's code, extensions after. Without it: until the runtime was
    ready (extensions starting included), extensions after."""
    before = _q([row.get("extensions_before_runtime_p50_ms")], 0)
    runtime_and_function = _q([row.get("runtime_and_function_p50_ms")], 0)
    until_ready = _q([row.get("runtime_init_p50_ms")], 0)
    after = _q([row.get("extensions_after_runtime_p50_ms")], 0)
    numbers: dict[str, float] = {}
    parts = []
    extensions = runtime = None
    if int(row.get("inits_with_runtime_start") or 0) and None not in (before, runtime_and_function):
        assert before is not None and runtime_and_function is not None
        numbers["extensions_before_runtime_p50_ms"] = before
        numbers["runtime_and_function_init_p50_ms"] = runtime_and_function
        parts.append(f"extensions starting {duration_text(before)}")
        parts.append(f"runtime and function code {duration_text(runtime_and_function)}")
        extensions, runtime = before + (after or 0.0), runtime_and_function
    elif int(row.get("inits_with_phases") or 0) and until_ready is not None:
        numbers["runtime_init_p50_ms"] = until_ready
        parts.append(f"{duration_text(until_ready)} until the runtime was ready")
        extensions, runtime = after, until_ready
    if parts and after is not None:
        numbers["extensions_after_runtime_p50_ms"] = after
        parts.append(f"waiting for extensions after it {duration_text(after)}")
    own = _q([own_startup_ms], 0)
    if own is not None:
        numbers["lambdascope_startup_p50_ms"] = own
        parts.append(f"lambdascope's own start-up {duration_text(own)}")
    if not parts:
        return "", numbers
    dominant = ""
    if runtime is not None and extensions is not None:
        dominant = (
            "; extensions dominate"
            if extensions > runtime
            else "; the runtime and function code dominate"
        )
    return " (median init: " + ", ".join(parts) + dominant + ")", numbers


def duration_text(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def cold_start_findings(
    rows: Sequence[Mapping[str, Any]],
    window: Window,
    own_startup_ms: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Pure: the findings for the rows of :data:`sql.COLD_STARTS`, with the lambdascope
    extension's own start-up per function (:data:`sql.COLD_START_OWN_STARTUP`)."""
    own_startup_ms = own_startup_ms or {}
    findings = []
    for row in rows:
        invocations = int(row["invocations"])
        cold = int(row["cold_starts"])
        rate = cold / invocations if invocations else 0.0
        quantiles = list(row["init_quantiles_ms"] or [])
        p50, p95, p99 = _q(quantiles, 0), _q(quantiles, 1), _q(quantiles, 2)
        if cold == 0 or p95 is None:
            continue
        frequent = cold >= MIN_COLD_STARTS and rate > MIN_RATE and p95 >= MIN_INIT_P95_MS
        slow = p95 >= SLOW_INIT_P95_MS
        if not (frequent or slow):
            continue
        severity = "warning" if rate >= WARNING_RATE and p95 >= WARNING_INIT_P95_MS else "info"
        label = function_label(row["function_name"], row["function_version"])
        anatomy, phase_numbers = _anatomy(row, own_startup_ms.get(row["function_name"]))
        ahead = int(row.get("ahead_of_demand_inits") or 0) + int(row.get("proactive_inits") or 0)
        not_felt = (
            f"; {ahead} init{'s' if ahead != 1 else ''} ahead of demand not counted"
            if ahead
            else ""
        )
        findings.append(
            Finding(
                kind="cold_starts",
                severity=severity,
                function_name=row["function_name"],
                function_version=row["function_version"],
                window_start=window.start,
                window_end=window.end,
                summary=f"{cold} of {invocations} invocations of {label} were cold starts "
                f"({percent(rate)}), init p95 {duration_text(p95)}{anatomy}{not_felt}",
                numbers={
                    "invocations": invocations,
                    "cold_starts": cold,
                    "cold_start_rate": rate,
                    "init_p50_ms": number(p50),
                    "init_p95_ms": p95,
                    "init_p99_ms": number(p99),
                    "max_init_duration_ms": number(row["max_init_duration_ms"]),
                    **phase_numbers,
                    "proactive_inits": int(row.get("proactive_inits") or 0),
                    "provisioned_or_snapstart_inits": int(row.get("ahead_of_demand_inits") or 0),
                    "evidence_total": cold,
                },
                evidence_request_ids=tuple(row["cold_start_request_ids"]),
                query=sql.COLD_STARTS,
                recommendation=_recommendation(phase_numbers),
            )
        )
    return findings


def _recommendation(phases: Mapping[str, float]) -> str:
    runtime = phases.get("runtime_and_function_init_p50_ms", phases.get("runtime_init_p50_ms"))
    extensions = phases.get("extensions_before_runtime_p50_ms", 0.0) + phases.get(
        "extensions_after_runtime_p50_ms", 0.0
    )
    if runtime is not None and extensions > runtime:
        return (
            "Users wait mostly for extensions: remove the ones the function does not need, "
            "or ask their vendors for a faster start; then lazy-load heavy imports, raise "
            "memory (more CPU during init), or use provisioned concurrency / SnapStart."
        )
    return (
        "Users wait for these inits: lazy-load heavy imports and create clients "
        "once outside the handler, trim the package, raise memory (more CPU during "
        "init), or use provisioned concurrency / SnapStart for steady traffic."
    )
