"""The detector registry: a detector is a function from (client, window, function) to findings.

Register one with ``@register("name")``; ``run_detectors`` runs every registered detector.
"""

from __future__ import annotations

from collections.abc import Callable

from lambdascope.analyzers.findings import Finding
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["DETECTORS", "Detector", "register"]

Detector = Callable[[QueryClient, Window, str | None], list[Finding]]

#: name -> detector, in registration order.
DETECTORS: dict[str, Detector] = {}


def register(name: str) -> Callable[[Detector], Detector]:
    def decorate(detector: Detector) -> Detector:
        if name in DETECTORS and DETECTORS[name] is not detector:
            raise ValueError(f"a detector named {name!r} is already registered")
        DETECTORS[name] = detector
        return detector

    return decorate
