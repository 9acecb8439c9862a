"""`lambdascope demo --no-tui`, shortened, runs the whole toolkit and prints a timeout finding."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.e2e
def test_demo_without_tui_prints_a_timeout_finding() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lambdascope", "demo", "--no-tui", "--duration", "6s"],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "timeout" in result.stdout
    assert "report-export" in result.stdout


def test_bad_duration_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lambdascope", "demo", "--no-tui", "--duration", "soon"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "invalid duration 'soon'" in result.stderr
