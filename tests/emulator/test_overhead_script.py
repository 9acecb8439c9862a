"""bench/emulator_overhead.py runs and prints its table of ratios."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "emulator_overhead.py"


def test_overhead_script_prints_ratios(capsys):
    spec = importlib.util.spec_from_file_location("emulator_overhead", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "warm overhead median" in out and "cold start, lambdascope extension" in out
    rows = [line for line in out.splitlines()[1:] if "  " in line and not line.startswith("(")]
    ratios = [float(line.split()[-1]) for line in rows]
    assert ratios and all(ratio > 0 for ratio in ratios)
