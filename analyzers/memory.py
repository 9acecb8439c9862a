"""Memory pressure: out-of-memory kills and invocations near the memory limit.

Rules (one finding per function and version per window):

* ``out_of_memory`` (**critical**): a request that shows a signal of a kill: errorType
  ``Runtime.OutOfMemory``, a runtime OOM log line (``MemoryError``, ``JavaScript heap out of
  memory``, ``java.lang.OutOfMemoryError``, ...), or Max Memory Used == Memory Size on a
  request that failed or timed out (how an OOM that Lambda reported as a timeout shows). A
  request showing several counts once. Lambda never lets an invocation succeed above its
  memory size, so one that succeeded at the limit was not killed.
* ``high_memory`` (only without OOM): at least 2 invocations (or the only one) used at least
  the early-warning share of the memory size (95% unless ``[memory] warn_at_percent`` says
  otherwise). Datadog warns on any single one; requiring two keeps one odd payload quiet.
  **critical** when an invocation succeeded with Max Memory Used at the size itself (the next
  byte is a kill), **warning** otherwise.

Every finding carries the headroom: the p95 and the peak of Max Memory Used as a share of the
size. Below the early-warning share nothing is reported; the fleet table shows the headroom.

Screen (analyzers/rollups.py): raw rows are read only for a function whose rollups show an
``Runtime.OutOfMemory`` error type or Max Memory Used at 95% of the size or more, or which has
an out-of-memory log line in the window. Log lines have no rollup (a pattern match on every
ingested line would tax ingest), so that check reads the window's log lines, never invocation
rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lambdascope.analyzers import rollups, sql
from lambdascope.analyzers._format import function_label, percent
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["configure", "detect_memory_pressure", "memory_findings", "suggested_memory_mb"]

MAX_EVIDENCE = 50
DEFAULT_HIGH_SHARE = 0.95
HIGH_SHARE = DEFAULT_HIGH_SHARE
HIGH_MIN_COUNT = 2


def configure(warn_at_share: float) -> None:
    """Set the early-warning share of the memory size (process-wide), 0 < share <= 1."""
    global HIGH_SHARE
    if not 0.0 < warn_at_share <= 1.0:
        raise ValueError(f"the early-warning share must be in (0, 1], got {warn_at_share}")
    HIGH_SHARE = warn_at_share


@register("memory")
def detect_memory_pressure(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    params = {
        **window.parameters(function_name),
        "high_share": HIGH_SHARE,
        "max_evidence": MAX_EVIDENCE,
        "oom_pattern": sql.OOM_LOG_PATTERN,
    }
    names = set(rollups.flagged(rollups.screen(client, window, function_name), could_run_out))
    lines = client.query(sql.OOM_LOG_FUNCTIONS, params).rows
    names.update(str(r[0]) for r in lines)
    if not names:
        return []
    params["function_names"] = sorted(names)
    findings = memory_findings(client.query(sql.MEMORY, params).dicts(), window)
    return with_parameters(findings, {sql.MEMORY: params})


def could_run_out(row: rollups.VersionScreen) -> bool:
    """Pure: whether the rollups leave room for an ``out_of_memory`` or ``high_memory``
    finding (an OOM at the limit is 100% of the size; the log-line signal is checked apart)."""
    # A hair below the share, so float rounding of used * 100 / size never hides one.
    return row.oom_errors > 0 or (row.max_memory_used_pct or 0.0) >= HIGH_SHARE * 100 - 1e-6


def _finite(value: Any) -> float:
    if value is None:
        return math.nan
    number = float(value)
    return number if math.isfinite(number) else math.nan


def suggested_memory_mb(max_used_mb: float) -> int:
    """30% headroom over the peak, rounded up to a 64 MB step (Lambda allows 128-10,240 MB)."""
    return int(min(10240, max(128, math.ceil(max_used_mb * 1.3 / 64) * 64)))


def memory_findings(rows: Sequence[Mapping[str, Any]], window: Window) -> list[Finding]:
    """Pure: the findings for the rows of :data:`sql.MEMORY`."""
    findings = []
    for row in rows:
        invocations = int(row["invocations"])
        size = row["largest_memory_size_mb"]
        used = row["peak_memory_used_mb"]
        label = function_label(row["function_name"], row["function_version"])
        ooms = int(row["ooms"])
        high = int(row["high_memory"])
        at_limit = int(row.get("succeeded_at_limit") or 0)
        headroom = {
            "memory_used_pct_p95": float(_finite(row.get("memory_used_pct_p95"))),
            "max_memory_used_pct": float(100.0 * used / size) if size and used else math.nan,
        }
        common = {
            "function_name": row["function_name"],
            "function_version": row["function_version"],
            "window_start": window.start,
            "window_end": window.end,
            "query": sql.MEMORY,
        }
        size_text = f"{size} MB" if size else "an unknown memory size"
        # After an OOM the real peak is unknown (it was capped at the size): double it.
        raise_to = f" to at least {min(10240, 2 * size)} MB" if size else ""
        if ooms:
            findings.append(
                Finding(
                    kind="out_of_memory",
                    severity="critical",
                    summary=f"{ooms} of {invocations} invocations of {label} ran out of "
                    f"memory at {size_text}",
                    numbers={
                        "invocations": invocations,
                        "ooms": ooms,
                        "oom_error_type": int(row["oom_error_type"]),
                        "oom_at_limit": int(row["oom_at_limit"]),
                        "oom_log_line": int(row["oom_log_line"]),
                        "oom_reported_as_timeout": int(row["oom_reported_as_timeout"]),
                        "memory_size_mb": float(size or math.nan),
                        "max_memory_used_mb": float(used if used is not None else math.nan),
                        **headroom,
                        "evidence_total": ooms,
                    },
                    evidence_request_ids=tuple(row["oom_request_ids"]),
                    recommendation=(
                        f"Raise the memory size{raise_to} (more memory also brings more CPU), "
                        "or stream and release large objects instead of holding them; the "
                        "evidence requests' logs show what was being processed."
                    ),
                    **common,
                )
            )
        elif size and high >= min(HIGH_MIN_COUNT, invocations):
            summary = (
                f"{label} used up to {used} of {size} MB "
                f"({percent(used / size)}) in {high} of {invocations} invocations"
            )
            if at_limit:
                summary += f"; {at_limit} reached the limit itself"
            findings.append(
                Finding(
                    kind="high_memory",
                    severity="critical" if at_limit else "warning",
                    summary=summary,
                    numbers={
                        "invocations": invocations,
                        "high_memory": high,
                        "succeeded_at_limit": at_limit,
                        "memory_size_mb": float(size),
                        "max_memory_used_mb": float(used),
                        "max_memory_share": used / size,
                        **headroom,
                        "warn_at_pct": HIGH_SHARE * 100.0,
                        "evidence_total": high,
                    },
                    evidence_request_ids=tuple(row["high_memory_request_ids"]),
                    recommendation=(
                        f"One larger payload away from an out-of-memory kill: raise the "
                        f"memory size to {suggested_memory_mb(used)} MB, or find what the "
                        "evidence requests keep in memory."
                    ),
                    **common,
                )
            )
    return findings
