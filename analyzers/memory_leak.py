"""Memory leaks: Max Memory Used climbing across the warm invocations of one environment.

No anchor detects this; users spot it by eye until the out-of-memory kill. Allocators rarely
give memory back, so memory that rises and then stays flat (a plateau: caches filled, pools
warmed) is not a leak. Rule, per execution environment, over its warm invocations in start
order (x = invocation number, y = Max Memory Used in MB):

* at least :data:`MIN_INVOCATIONS` warm invocations;
* least-squares slope >= :data:`MIN_SLOPE_MB` MB per invocation with a good fit
  (R² >= :data:`MIN_R_SQUARED`);
* still growing at the end: the slope over the last third is at least
  :data:`MIN_LAST_THIRD_RATIO` of the slope over the first third (a plateau's last third is
  flat).

In a Lambda Managed Instances environment requests overlap and Max Memory Used is the
environment's, not one request's: the series is the environment's invocations in start order
(concurrent ones included), so a leak is memory climbing over the environment's lifetime, and
the finding says the memory is shared by up to that many requests at once.

One ``memory_leak`` finding per function and version, about its steepest leaking environment
(the others are counted): the slope, the invocations left before Max Memory Used reaches the
memory size, the environment id, and that environment's requests as evidence.
**critical** when fewer than :data:`CRITICAL_INVOCATIONS_LEFT` invocations are left,
**warning** otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lambdascope.analyzers import memory_leak_sql as sql
from lambdascope.analyzers._format import function_label
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["Leak", "detect_memory_leaks", "fit_leak", "memory_leak_findings"]

MIN_INVOCATIONS = 10
MIN_SLOPE_MB = 0.5
MIN_R_SQUARED = 0.8
MIN_LAST_THIRD_RATIO = 0.5
CRITICAL_INVOCATIONS_LEFT = 100
MAX_POINTS = 2000
MAX_EVIDENCE = 50


@register("memory_leak")
def detect_memory_leaks(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    params = {
        **window.parameters(function_name),
        "min_invocations": MIN_INVOCATIONS,
        "min_slope_mb": MIN_SLOPE_MB,
        "max_points": MAX_POINTS,
    }
    findings = memory_leak_findings(client.query(sql.LEAK_CANDIDATES, params).dicts(), window)
    return with_parameters(findings, {sql.LEAK_CANDIDATES: params})


@dataclass(frozen=True)
class Leak:
    slope_mb_per_invocation: float
    r_squared: float
    first_third_slope: float
    last_third_slope: float


def _slope(ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope of ys over 0..n-1, and R²."""
    n = len(ys)
    mean_x = (n - 1) / 2
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(ys))
    syy = sum((y - mean_y) ** 2 for y in ys)
    if sxx == 0:
        return 0.0, 0.0
    slope = sxy / sxx
    r_squared = (sxy * sxy) / (sxx * syy) if syy else 0.0
    return slope, r_squared


def fit_leak(memory_mb: Sequence[float]) -> Leak | None:
    """Pure: the leak in one environment's Max Memory Used series, or None (flat, noisy,
    too short, or a plateau)."""
    if len(memory_mb) < MIN_INVOCATIONS:
        return None
    slope, r_squared = _slope(memory_mb)
    if slope < MIN_SLOPE_MB or r_squared < MIN_R_SQUARED:
        return None
    third = max(3, len(memory_mb) // 3)
    first, _ = _slope(memory_mb[:third])
    last, _ = _slope(memory_mb[-third:])
    if last < MIN_LAST_THIRD_RATIO * max(first, MIN_SLOPE_MB):
        return None
    return Leak(slope, r_squared, first, last)


def _evidence(request_ids: Sequence[str]) -> tuple[str, ...]:
    # Evenly spaced along the climb, always ending with the newest request.
    if len(request_ids) <= MAX_EVIDENCE:
        return tuple(request_ids)
    step = (len(request_ids) - 1) / (MAX_EVIDENCE - 1)
    return tuple(request_ids[round(i * step)] for i in range(MAX_EVIDENCE))


def memory_leak_findings(rows: Sequence[Mapping[str, Any]], window: Window) -> list[Finding]:
    """Pure: the findings for the rows of :data:`memory_leak_sql.LEAK_CANDIDATES`."""
    leaks: dict[tuple[str, str], list[tuple[Leak, Mapping[str, Any]]]] = {}
    checked: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["function_name"], row["function_version"])
        checked[key] = checked.get(key, 0) + 1
        leak = fit_leak([float(p[2]) for p in row["points"]])
        if leak is not None:
            leaks.setdefault(key, []).append((leak, row))
    findings = []
    for key, found in sorted(leaks.items()):
        leak, row = max(found, key=lambda x: x[0].slope_mb_per_invocation)
        points = row["points"]
        last_mb = float(points[-1][2])
        size = row["memory_size_mb"]
        left = (
            max(0, math.ceil((float(size) - last_mb) / leak.slope_mb_per_invocation))
            if size
            else None
        )
        label = function_label(*key)
        in_flight = int(row.get("max_in_flight") or 1)
        summary = (
            f"Memory of {label} grows {leak.slope_mb_per_invocation:.1f} MB per warm "
            f"invocation in environment {row['environment_id']} "
            f"({points[0][2]:.0f} to {last_mb:.0f} MB over {len(points)} invocations)"
        )
        if in_flight > 1:
            summary += (
                f"; the memory is the environment's, shared by up to {in_flight} requests "
                "at once, so it climbs over the environment's life, not one request's"
            )
        if left is not None:
            summary += f": out of memory at {size} MB in about {left} more invocations"
        if len(found) > 1:
            summary += f"; {len(found)} environments leak"
        findings.append(
            Finding(
                kind="memory_leak",
                severity=(
                    "critical"
                    if left is not None and left < CRITICAL_INVOCATIONS_LEFT
                    else "warning"
                ),
                function_name=key[0],
                function_version=key[1],
                window_start=window.start,
                window_end=window.end,
                summary=summary,
                numbers={
                    "slope_mb_per_invocation": leak.slope_mb_per_invocation,
                    "r_squared": leak.r_squared,
                    "first_third_slope_mb": leak.first_third_slope,
                    "last_third_slope_mb": leak.last_third_slope,
                    "invocations_left": float("nan") if left is None else float(left),
                    "memory_size_mb": float("nan") if not size else float(size),
                    "last_memory_used_mb": last_mb,
                    "warm_invocations": int(row["warm_invocations"]),
                    "leaking_environments": len(found),
                    "environments_checked": checked[key],
                    "max_concurrent_requests": in_flight,
                    "evidence_total": len(points),
                },
                evidence_request_ids=_evidence([p[1] for p in points]),
                query=sql.LEAK_CANDIDATES,
                recommendation=(
                    "Something outlives each invocation: look for module-level lists, dicts "
                    "or caches that grow per request, clients created in the handler, and "
                    "listeners never removed. Compare what the first and last evidence "
                    "requests process; a bounded cache (LRU) or clearing per-request state "
                    "fixes most leaks. Until then, the environment is killed at the limit."
                ),
            )
        )
    return findings
