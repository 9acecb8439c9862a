"""Why no detector fired: which of a detector's thresholds a function's counts did not reach.

A quiet findings list next to a fleet showing errors or cold starts reads like a bug; this
says, from the fleet table's own figures and the thresholds the detectors use (their module
constants, so the two cannot drift apart), which minimum a count fell short of. It speaks only
when the function-wide figure settles it: the detectors count per version, so a function
whose total reaches a minimum may still have no version that does, and then nothing is said.
The timeout detector reports any timeout, so it has no threshold to explain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lambdascope.analyzers import coldstarts, errors
from lambdascope.analyzers._format import percent
from lambdascope.analyzers.fleet import FunctionSummary

__all__ = ["below_thresholds", "cold_starts_below", "errors_below"]


def _counted(count: int, what: str, invocations: int) -> str:
    noun = what if count == 1 else f"{what}s"
    return f"{count:,} {noun} in {invocations:,} invocations"


def errors_below(row: FunctionSummary) -> str | None:
    """Pure: the ``errors`` detector's threshold ``row``'s failed invocations did not reach."""
    if not row.errors or not row.invocations:
        return None
    counted = f"{row.function_name}: {_counted(row.errors, 'error', row.invocations)}"
    if row.errors < errors.MIN_ERRORS:
        return f"{counted}, below the errors detector's minimum of {errors.MIN_ERRORS}"
    rate = row.errors / row.invocations
    if rate < errors.WARNING_RATE:
        return (
            f"{counted} ({percent(rate)}), below the errors detector's "
            f"{percent(errors.WARNING_RATE)} rate"
        )
    return None


def cold_starts_below(row: FunctionSummary) -> str | None:
    """Pure: the ``cold_starts`` detector's threshold ``row``'s cold starts did not reach."""
    if not row.cold_starts or not row.invocations:
        return None
    if row.max_init_ms is not None and row.max_init_ms >= coldstarts.SLOW_INIT_P95_MS:
        return None  # a slow init is reported however few cold starts paid it
    counted = f"{row.function_name}: {_counted(row.cold_starts, 'cold start', row.invocations)}"
    if row.cold_starts < coldstarts.MIN_COLD_STARTS:
        return f"{counted}, below the cold-start detector's minimum of {coldstarts.MIN_COLD_STARTS}"
    rate = row.cold_starts / row.invocations
    if rate <= coldstarts.MIN_RATE:
        return (
            f"{counted} ({percent(rate)}), not above the cold-start detector's "
            f"{percent(coldstarts.MIN_RATE)} rate"
        )
    # The init p95 is at most the slowest init, so a slowest init below the floor settles it.
    if row.max_init_ms is not None and row.max_init_ms < coldstarts.MIN_INIT_P95_MS:
        return (
            f"{counted}, the slowest init {row.max_init_ms:,.0f} ms, below the cold-start "
            f"detector's {coldstarts.MIN_INIT_P95_MS:,.0f} ms init p95 floor"
        )
    return None


_EXPLAINED = {"errors": errors_below, "cold_starts": cold_starts_below}


def below_thresholds(
    fleet: Sequence[FunctionSummary], detectors: Iterable[str] | None = None
) -> list[str]:
    """Pure: for each function, the thresholds the detectors that ran (``detectors``, every
    registered one when None) did not see reached, as sentences, function by function."""
    ran = set(_EXPLAINED) if detectors is None else set(detectors) & set(_EXPLAINED)
    return [
        text
        for row in fleet
        for name, below in _EXPLAINED.items()
        if name in ran and (text := below(row)) is not None
    ]
