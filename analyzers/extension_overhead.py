"""The lambdascope extension's own cost, against its budget.

The extension runs in every execution environment of an observed function, so its cost is the
function's: its start-up is part of every cold start's init, the time it spends after the
runtime finished (the ``end`` flush policy's sends) is billed and holds the environment from
its next invocation, and its memory comes out of the function's. Its figures are in every
batch (``extension_stats``). Rule, per function over the window (the budgets are settable,
``[extension]`` in the settings file):

* start-up p95 over the function's environments above :attr:`ExtensionBudget.startup_ms_p95`
  (50 ms);
* post-runtime time per invocation, p95, above :attr:`ExtensionBudget.post_runtime_ms_p95`
  (5 ms);
* the largest peak resident memory of an environment above
  :attr:`ExtensionBudget.peak_rss_mb` (40 MB).

Any of them -> one ``extension_overhead`` finding, **warning**: the function still runs, it
pays more than it should for being observed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lambdascope.analyzers import sql
from lambdascope.analyzers._format import finite as _finite
from lambdascope.analyzers._format import number
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = [
    "ExtensionBudget",
    "configure",
    "detect_extension_overhead",
    "extension_overhead_findings",
]


@dataclass(frozen=True)
class ExtensionBudget:
    """What the extension may cost a function (each a positive number)."""

    #: Start-up (module import to the first event/next), p95 over environments, ms.
    startup_ms_p95: float = 50.0
    #: Post-runtime (billed) time per invocation, p95, ms.
    post_runtime_ms_p95: float = 5.0
    #: Peak resident memory of one environment's extension process, MB.
    peak_rss_mb: float = 40.0

    def __post_init__(self) -> None:
        for name in ("startup_ms_p95", "post_runtime_ms_p95", "peak_rss_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")


BUDGET = ExtensionBudget()


def configure(budget: ExtensionBudget) -> None:
    """Set the budget :func:`detect_extension_overhead` compares with (process-wide)."""
    global BUDGET
    BUDGET = budget


@register("extension_overhead")
def detect_extension_overhead(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    params = window.parameters(function_name)
    rows = client.query(sql.EXTENSION_OVERHEAD, params).dicts()
    findings = extension_overhead_findings(rows, window, BUDGET)
    return with_parameters(findings, {sql.EXTENSION_OVERHEAD: params})


def extension_overhead_findings(
    rows: Sequence[Mapping[str, Any]], window: Window, budget: ExtensionBudget | None = None
) -> list[Finding]:
    """Pure: the findings for the rows of :data:`sql.EXTENSION_OVERHEAD`."""
    budget = budget or BUDGET
    findings = []
    for row in rows:
        environments = int(row["environments"] or 0)
        startup = _finite(row["startup_ms_p95"])
        post_runtime = _finite(row["post_runtime_ms_p95"])
        invocations = int(row["invocations"] or 0)
        peak = _finite(row["peak_rss_mb_max"])
        over = []
        advice = []
        if startup is not None and startup > budget.startup_ms_p95:
            advice.append(
                "Start-up adds to every cold start's init: deploy the layer as `lambdascope "
                "layer build` makes it (precompiled modules, no compiling at each cold start)."
            )
            over.append(
                f"start-up p95 {startup:.0f} ms (budget {budget.startup_ms_p95:g} ms) over "
                f"{environments} environment{'s' if environments != 1 else ''}"
            )
        # Without invocations in the window, no post-runtime time was measured.
        if invocations and post_runtime is not None and post_runtime > budget.post_runtime_ms_p95:
            advice.append(
                "Time after the code finished is billed on every invocation: use the background "
                "flush policy (LAMBDASCOPE_FLUSH_POLICY=background) unless fresher data is "
                "worth it."
            )
            over.append(
                f"{post_runtime:.1f} ms after the function's code finished (p95 per "
                f"invocation, budget {budget.post_runtime_ms_p95:g} ms)"
            )
        if peak is not None and peak > budget.peak_rss_mb:
            advice.append(
                "Its memory comes out of the function's: lower LAMBDASCOPE_BUFFER_MAX_BYTES and "
                "LAMBDASCOPE_OTLP_BUFFER_MAX_BYTES."
            )
            over.append(f"peak memory {peak:.0f} MB (budget {budget.peak_rss_mb:g} MB)")
        if not over:
            continue
        name = str(row["function_name"])
        findings.append(
            Finding(
                kind="extension_overhead",
                severity="warning",
                function_name=name,
                function_version="",
                window_start=window.start,
                window_end=window.end,
                summary=f"{name}: the lambdascope extension costs more than its budget: "
                + "; ".join(over),
                numbers={
                    "environments": environments,
                    "startup_ms_p95": number(startup),
                    "startup_ms_max": number(_finite(row["startup_ms_max"])),
                    "startup_ms_budget": budget.startup_ms_p95,
                    "invocations": invocations,
                    "post_runtime_ms_p95": number(post_runtime),
                    "post_runtime_ms_max": number(_finite(row["post_runtime_ms_max"])),
                    "post_runtime_ms_budget": budget.post_runtime_ms_p95,
                    "peak_rss_mb_max": number(peak),
                    "peak_rss_mb_budget": budget.peak_rss_mb,
                },
                query=sql.EXTENSION_OVERHEAD,
                recommendation=" ".join(advice),
            )
        )
    return findings
