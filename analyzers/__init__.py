"""SQL-backed detectors that turn stored telemetry into findings with evidence.

Every detector reads the store through :class:`lambdascope.query.QueryClient` only; its SQL
lives in :mod:`sql`. Add one with :func:`registry.register`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Importing the detector modules registers them.
from lambdascope.analyzers import coldstarts as _coldstarts  # noqa: F401
from lambdascope.analyzers import completeness as _completeness  # noqa: F401
from lambdascope.analyzers import config_checks as _config_checks  # noqa: F401
from lambdascope.analyzers import cost as _cost  # noqa: F401
from lambdascope.analyzers import errors as _errors  # noqa: F401
from lambdascope.analyzers import extension_overhead as _extension_overhead  # noqa: F401
from lambdascope.analyzers import memory as _memory  # noqa: F401
from lambdascope.analyzers import memory_leak as _memory_leak  # noqa: F401
from lambdascope.analyzers import throttles as _throttles  # noqa: F401
from lambdascope.analyzers import timeouts as _timeouts  # noqa: F401
from lambdascope.analyzers import versions as _versions  # noqa: F401
from lambdascope.analyzers.findings import SEVERITIES, Finding, severity_rank
from lambdascope.analyzers.registry import DETECTORS, Detector, register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient, QueryError

__all__ = [
    "DETECTORS",
    "SEVERITIES",
    "Detector",
    "Finding",
    "Window",
    "register",
    "run_detectors",
    "severity_rank",
]


def run_detectors(
    client: QueryClient,
    *,
    since: timedelta,
    function_name: str | None = None,
    now: datetime | None = None,
    detectors: dict[str, Detector] | None = None,
) -> list[Finding]:
    """Run every registered detector over the window ``[now - since, now)``.

    Findings are sorted most severe first, then by function, kind and version. A failing
    query raises the same :class:`QueryError` type with the detector's name added, so the
    caller knows which detector could not run.
    """
    window = Window.ending(now, since)
    findings: list[Finding] = []
    for name, detector in (DETECTORS if detectors is None else detectors).items():
        try:
            findings.extend(detector(client, window, function_name))
        except QueryError as exc:
            raise _naming_detector(exc, name) from exc
    return sorted(
        findings,
        key=lambda f: (severity_rank(f.severity), f.function_name, f.kind, f.function_version),
    )


def _naming_detector(exc: QueryError, name: str) -> QueryError:
    """The same error (class and attributes, such as a read limit's ``limit``), its message
    naming the detector: subclasses take other constructor arguments, so it is not rebuilt."""
    named = type(exc).__new__(type(exc))
    named.__dict__.update(exc.__dict__)
    named.args = (f"detector {name!r}: {exc}",)
    return named
