"""The one result type every detector returns."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

__all__ = ["SEVERITIES", "Finding", "severity_rank", "with_parameters"]

#: Most urgent first; ``run_detectors`` sorts by this order.
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")


def severity_rank(severity: str) -> int:
    """0 for critical, 1 for warning, 2 for info; unknown severities sort last."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return len(SEVERITIES)


@dataclass(frozen=True)
class Finding:
    """Something a detector found, with the figures and the request ids that prove it.

    ``query`` is the SQL that produced the finding, so a user can re-run it with
    ``lambdascope query``, and ``parameters`` the values its ``{name:Type}`` placeholders
    were bound to (empty when not recorded); ``numbers`` holds every figure the summary
    mentions.
    """

    kind: str
    severity: str
    function_name: str
    function_version: str
    window_start: datetime
    window_end: datetime
    summary: str
    numbers: dict[str, float] = field(default_factory=dict)
    evidence_request_ids: tuple[str, ...] = ()
    query: str = ""
    recommendation: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Finding.severity {self.severity!r} is not one of {', '.join(SEVERITIES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (ISO-8601 UTC times, no NaN or infinity) for ``--json`` output."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "function_name": self.function_name,
            "function_version": self.function_version,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "summary": self.summary,
            "numbers": {k: _json_number(v) for k, v in self.numbers.items()},
            "evidence_request_ids": list(self.evidence_request_ids),
            "query": self.query,
            "recommendation": self.recommendation,
        }


def with_parameters(
    findings: list[Finding], parameters: Mapping[str, Mapping[str, Any]]
) -> list[Finding]:
    """``findings``, each carrying the parameters its ``query`` ran with (``parameters`` maps a
    query's text to them). The detectors' pure functions build findings from rows and never
    see the parameters; the detector that ran the query attaches them here."""
    return [
        replace(f, parameters=dict(parameters[f.query]))
        if f.query in parameters and not f.parameters
        else f
        for f in findings
    ]


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_number(value: float) -> float | None:
    # JSON has no NaN/inf; None says "not measured" without breaking strict parsers.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
