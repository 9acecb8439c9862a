"""What the detectors call things, as people say them: the analyzers' names, which the HTML
report shares (:mod:`lambdascope.analyzers.names`)."""

from __future__ import annotations

from lambdascope.analyzers.names import (
    FIGURE_LABELS,
    FLAGS,
    KIND_NAMES,
    figure_label,
    figure_line,
    figure_value,
    kind_name,
)

__all__ = [
    "FIGURE_LABELS",
    "FLAGS",
    "KIND_NAMES",
    "figure_label",
    "figure_line",
    "figure_value",
    "kind_name",
]
