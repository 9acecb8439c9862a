"""Version regressions: what got worse when a function's version changed.

When a function ran more than one version (``function_version``) in the window or the window
before it, the newest version (first seen last, and running in the window) is compared with
the one it replaced. Each version needs :data:`MIN_INVOCATIONS` invocations (and
:data:`MIN_COLD_STARTS` cold starts for init), so a canary's first requests do not decide
anything. A ``version_regression`` (**warning**; **critical** with new error types) lists
plainly what regressed:

* init p95 or duration p95: at least +20% *and* +50 ms (both, so a 2 ms function going to
  3 ms is not a regression and a 10 s one gaining 50 ms is not either);
* peak Max Memory Used: at least +20% and +16 MB;
* cost per invocation (billed GB-s x the GB-second price + the request price): at least +20%;
* error types the old version never showed, at least :data:`MIN_NEW_ERRORS` times.

Evidence: the new version's requests that failed with a new error type, else its slowest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lambdascope.analyzers import cost, rollups
from lambdascope.analyzers import versions_sql as sql
from lambdascope.analyzers._format import finite as _finite
from lambdascope.analyzers._format import function_label
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window, ch_time
from lambdascope.query import QueryClient

__all__ = ["Regression", "detect_version_regressions", "version_findings"]

MIN_INVOCATIONS = 20
MIN_COLD_STARTS = 3
SLOWER_SHARE = 0.20
SLOWER_MS = 50.0
MEMORY_SHARE = 0.20
MEMORY_MB = 16.0
COST_SHARE = 0.20
MIN_NEW_ERRORS = 2
MAX_EVIDENCE = 20


@register("version_regression")
def detect_version_regressions(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    previous = window.start - (window.end - window.start)
    both = rollups.by_function(rollups.screen(client, Window(previous, window.end), function_name))
    names = sorted(name for name, rows in both.items() if could_regress(rows))
    if not names:
        return []
    params = {
        **window.parameters(function_name),
        "previous": ch_time(previous),
        "max_evidence": MAX_EVIDENCE,
        "function_names": names,
    }
    findings = version_findings(client.query(sql.VERSIONS, params).dicts(), window, cost.PRICES)
    return with_parameters(findings, {sql.VERSIONS: params})


def could_regress(rows: Sequence[rollups.VersionScreen]) -> bool:
    """Pure: whether one function's rollups over the window and the one before it show two
    versions that could each have :data:`MIN_INVOCATIONS` invocations."""
    busy = {r.function_version for r in rows if r.function_version}
    busy = {
        v
        for v in busy
        if sum(r.invocations_max for r in rows if r.function_version == v) >= MIN_INVOCATIONS
    }
    return len(busy) >= 2


@dataclass(frozen=True)
class Regression:
    """One figure that got worse: ``name`` in plain words, old and new values, the unit."""

    name: str
    old: float
    new: float
    unit: str

    def text(self) -> str:
        change = f" (+{(self.new / self.old - 1) * 100:.0f}%)" if self.old else ""
        if self.unit == "$":
            return f"{self.name} ${self.old:.7f} → ${self.new:.7f}{change}"
        return f"{self.name} {self.old:.0f} → {self.new:.0f} {self.unit}{change}"


def _worse(old: float | None, new: float | None, share: float, absolute: float) -> bool:
    if old is None or new is None:
        return False
    return new >= old * (1 + share) and new - old >= absolute


def _cost_per_invocation(row: Mapping[str, Any], prices: cost.PriceTable) -> float:
    region = row["region_name"]
    return float(row["gb_seconds_per_invocation"] or 0) * prices.gb_second(
        row["arch"], region
    ) + prices.request(region)


def compare(
    old: Mapping[str, Any], new: Mapping[str, Any], prices: cost.PriceTable
) -> tuple[list[Regression], dict[str, int]]:
    """Pure: what regressed from ``old`` to ``new`` (rows of :data:`sql.VERSIONS`), and the
    new error types with their counts."""
    found = []
    if min(int(old["cold_starts"]), int(new["cold_starts"])) >= MIN_COLD_STARTS:
        o, n = _finite(old["init_p95_ms"]), _finite(new["init_p95_ms"])
        if _worse(o, n, SLOWER_SHARE, SLOWER_MS):
            found.append(Regression("init p95", o or 0.0, n or 0.0, "ms"))
    o, n = _finite(old["duration_p95_ms"]), _finite(new["duration_p95_ms"])
    if _worse(o, n, SLOWER_SHARE, SLOWER_MS):
        found.append(Regression("duration p95", o or 0.0, n or 0.0, "ms"))
    o, n = _finite(old["peak_memory_used_mb"]), _finite(new["peak_memory_used_mb"])
    if _worse(o, n, MEMORY_SHARE, MEMORY_MB):
        found.append(Regression("max memory used", o or 0.0, n or 0.0, "MB"))
    o, n = _cost_per_invocation(old, prices), _cost_per_invocation(new, prices)
    if _worse(o, n, COST_SHARE, 0.0) and o > 0:
        found.append(Regression("cost per invocation", o, n, "$"))
    old_types = set(old["failure_types"][0])
    new_types = {
        str(t): int(c)
        for t, c in zip(*new["failure_types"], strict=True)
        if t not in old_types and c >= MIN_NEW_ERRORS
    }
    return found, new_types


def version_findings(
    rows: Sequence[Mapping[str, Any]], window: Window, prices: cost.PriceTable
) -> list[Finding]:
    """Pure: the findings for the rows of :data:`sql.VERSIONS` (ordered by first seen)."""
    by_function: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_function.setdefault(row["function_name"], []).append(row)
    findings = []
    for name, versions in sorted(by_function.items()):
        if len(versions) < 2:
            continue
        old, new = versions[-2], versions[-1]
        if not new["invocations_in_window"]:
            continue
        if min(int(old["invocations"]), int(new["invocations"])) < MIN_INVOCATIONS:
            continue
        regressions, new_types = compare(old, new, prices)
        if not regressions and not new_types:
            continue
        parts = [r.text() for r in regressions]
        parts += [f"new error {t} ({n}×)" for t, n in sorted(new_types.items())]
        old_label = function_label(name, old["function_version"])
        new_label = function_label(name, new["function_version"])
        evidence = [rid for t, rid in new["failed_requests"] if t in new_types]
        if not evidence:
            evidence = list(new["slowest_request_ids"])
        numbers: dict[str, float] = {
            "old_invocations": int(old["invocations"]),
            "new_invocations": int(new["invocations"]),
            "regressions": len(regressions) + len(new_types),
        }
        for column in ("init_p95_ms", "duration_p95_ms", "peak_memory_used_mb"):
            numbers[f"old_{column}"] = _finite(old[column]) or math.nan
            numbers[f"new_{column}"] = _finite(new[column]) or math.nan
        numbers["old_cost_per_invocation_usd"] = _cost_per_invocation(old, prices)
        numbers["new_cost_per_invocation_usd"] = _cost_per_invocation(new, prices)
        for t, n in new_types.items():
            numbers[f"new_errors_{t}"] = n
        findings.append(
            Finding(
                kind="version_regression",
                severity="critical" if new_types else "warning",
                function_name=name,
                function_version=str(new["function_version"]),
                window_start=window.start,
                window_end=window.end,
                summary=f"{new_label} regressed against {old_label}: " + ", ".join(parts),
                numbers=numbers,
                evidence_request_ids=tuple(evidence),
                query=sql.VERSIONS,
                recommendation=(
                    f"Diff what changed between {old_label} and {new_label} (code, "
                    "dependencies, configuration); the evidence requests show the new "
                    f"behaviour. If it hurts users, shift the alias back to {old_label} "
                    "while you look."
                ),
            )
        )
    return findings
