"""Kinds and figures as people read them."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import lambdascope.analyzers as analyzers
from lambdascope.tui.names import KIND_NAMES, figure_label, figure_line, figure_value, kind_name


def emitted_kinds() -> set[str]:
    """Every ``kind="..."`` a detector module passes to ``Finding``."""
    kinds = set()
    for path in Path(analyzers.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "kind"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                kinds.add(node.value.value)
    return kinds


def test_every_kind_a_detector_emits_has_a_human_name():
    kinds = emitted_kinds()
    assert {"timeout", "extension_overhead", "out_of_memory", "memory_leak"} <= kinds
    assert kinds - set(KIND_NAMES) == set()
    assert kind_name("extension_overhead") == "Extension overhead"
    assert kind_name("high_memory") == "Memory pressure"
    assert kind_name("something_new") == "Something new"


def test_figures_read_with_units_and_no_glued_suffixes():
    assert figure_value("timeout_ms", 1000) == "1.00 s"
    assert figure_value("p99_duration_ms", 353.3) == "353 ms"
    assert figure_value("post_runtime_ms_p95", 3.24) == "3.2 ms"
    assert figure_value("timeout_share", 0.075) == "7.5%"
    assert figure_value("cold_start_rate", 0.5) == "50%"
    assert figure_value("memory_size_mb", 512) == "512 MB"
    assert figure_value("monthly_saving_usd", 12.5) == "$12.50"
    assert figure_value("timeouts", 13) == "13"
    assert figure_value("init_p95_ms", math.nan) == "-"
    assert figure_label("p99_duration_ms") == "p99 duration"
    assert figure_label("post_runtime_ms_p95") == "post runtime p95"
    assert figure_label("peak_rss_mb_budget") == "peak rss budget"
    line = figure_line(
        {
            "timeout_ms": 1000.0,
            "p99_duration_ms": 353.3,
            "evidence_total": 13,
            "concentrated_on_cold_starts": 0.0,
        }
    )
    assert line == (
        "timeout 1.00 s · p99 duration 353 ms · 13 requests in evidence · mostly on cold starts no"
    )
