"""Small formatting helpers shared by the detectors' summaries."""

from __future__ import annotations

import math
from typing import Any


def function_label(function_name: str, function_version: str) -> str:
    """``checkout`` for $LATEST, ``checkout:7`` for a published version."""
    if function_version in ("", "$LATEST"):
        return function_name
    return f"{function_name}:{function_version}"


def seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


def percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def number(value: Any) -> float:
    """A figure for ``Finding.numbers``: None (not measured) becomes NaN."""
    return float("nan") if value is None else float(value)


def finite(value: Any) -> float | None:
    """A stored figure as a float; None when it is missing or not finite (NaN from an empty
    aggregate, inf from a division by zero): not measured."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
