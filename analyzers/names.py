"""What the detectors call things, as people say them: finding kinds, their figures, durations.

The detectors name kinds and figures for code (``extension_overhead``, ``p99_duration_ms``);
the TUI and the HTML report show each one through here, so a name is spelled one way
everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "FIGURE_LABELS",
    "FLAGS",
    "NOT_MEASURED",
    "duration",
    "KIND_NAMES",
    "figure_label",
    "figure_line",
    "figure_value",
    "kind_name",
]

NOT_MEASURED = "-"

#: Every ``kind`` a registered detector emits (tests/tui/test_names.py keeps this complete).
KIND_NAMES: dict[str, str] = {
    "timeout": "Timeout",
    "timeout_risk": "Timeout risk",
    "errors": "Errors",
    "out_of_memory": "Out of memory",
    "high_memory": "Memory pressure",
    "memory_leak": "Memory leak",
    "throttle": "Throttle",
    "code_throttle": "Throttled by the code",
    "concurrency_near_limit": "Concurrency near its limit",
    "concurrency_starvation": "Concurrency starvation",
    "cold_starts": "Cold starts",
    "init_failure": "Init failures",
    "api_gateway_timeout": "API Gateway timeout",
    "extension_overhead": "Extension overhead",
    "data_completeness": "Missing telemetry",
    "version_regression": "Version regression",
    "cost_top": "Cost",
    "cost_spike": "Cost spike",
    "memory_rightsizing": "Memory right-sizing",
    "arm64_savings": "Arm64 savings",
}

#: Figures whose name alone would read badly; the rest are spelled out by rule (below).
FIGURE_LABELS: dict[str, str] = {
    "timeout_ms": "timeout",
    "evidence_total": "requests in evidence",
    "concentrated_on_cold_starts": "mostly on cold starts",
    "timeouts_at_memory_limit": "timeouts at the memory limit",
    "p99_share_of_timeout": "p99 share of the timeout",
    "max_share_of_timeout": "longest share of the timeout",
    "ooms": "out-of-memory kills",
    "oom_error_type": "Runtime.OutOfMemory errors",
    "oom_at_limit": "at the memory limit",
    "oom_log_line": "out-of-memory log lines",
    "oom_reported_as_timeout": "reported as timeouts",
    "high_memory": "near the memory limit",
    "succeeded_at_limit": "succeeded at the limit",
    "memory_used_pct_p95": "memory used p95",
    "max_memory_used_pct": "memory used peak",
    "warn_at_pct": "warns at",
    "peak_rss_mb_max": "peak memory",
    "gb_seconds": "GB-seconds",
    "r_squared": "fit (R²)",
}

#: Figures that are yes/no flags (1.0 or 0.0), not counts.
FLAGS = frozenset({"concentrated_on_cold_starts"})

_UNITS = ("ms", "mb", "usd")


def duration(ms: float | None) -> str:
    """``0.8 ms``, ``85 ms``, ``1.42 s``, ``12.3 s``, ``2 min 05 s``: the one way lambdascope
    writes a duration (precise where a difference matters to a reader, short beyond it)."""
    if ms is None:
        return NOT_MEASURED
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def kind_name(kind: str) -> str:
    """``Extension overhead`` for ``extension_overhead``; an unknown kind spelled out."""
    return KIND_NAMES.get(kind) or kind.replace("_", " ").capitalize()


def _unit(name: str) -> str | None:
    parts = name.split("_")
    for unit in _UNITS:
        if unit in parts:
            return unit
    if name.endswith(("_share", "_rate")) or "_share_" in name:
        return "%"
    if "pct" in parts:
        return "pct"  # already a percentage
    return None


def figure_label(name: str) -> str:
    """``p99 duration`` for ``p99_duration_ms``: the unit shows in the value, not the label."""
    if name in FIGURE_LABELS:
        return FIGURE_LABELS[name]
    return " ".join(part for part in name.split("_") if part not in (*_UNITS, "pct"))


def figure_value(name: str, value: float) -> str:
    """One figure with its unit: ``1.00 s``, ``353 ms``, ``7.5%``, ``512 MB``, ``$0.42``, ``13``."""
    if not math.isfinite(value):
        return NOT_MEASURED
    if name in FLAGS:
        return "yes" if value else "no"
    unit = _unit(name)
    if unit == "ms":
        return duration(value)
    if unit == "mb":
        return (
            f"{value:,.0f} MB" if float(value).is_integer() or value >= 100 else f"{value:.1f} MB"
        )
    if unit == "usd":
        return f"${value:,.2f}" if abs(value) >= 0.01 or value == 0 else f"${value:.4f}"
    if unit == "%":
        return f"{value * 100:.1f}%" if value < 0.1 else f"{value * 100:.0f}%"
    if unit == "pct":
        return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def figure_line(numbers: Mapping[str, float]) -> str:
    """``timeout 1.00 s · p99 duration 353 ms · 13 requests in evidence``: a finding's figures."""
    parts = []
    for name, value in numbers.items():
        if name == "evidence_total" and math.isfinite(value):
            parts.append(f"{int(value):,} requests in evidence")
        else:
            parts.append(f"{figure_label(name)} {figure_value(name, value)}")
    return " · ".join(parts)
