"""The scale benchmarks run end to end on tiny sizes (figures are not asserted: they depend on
the machine; bench/README-style numbers come from full runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_store_scale_times_fleet_every_detector_and_the_alert_pack() -> None:
    out = run("store_scale.py", "--invocations", "20000", "--runs", "1")
    assert "count() invocation_parts" in out
    assert "20,000 rows" in out
    assert "fleet_summary (last 1 h)" in out
    assert "detector timeouts (1 h)" in out
    assert "alerts: default pack" in out


def test_ingest_throughput_compares_end_to_end_with_raw_and_samples_memory() -> None:
    out = run("ingest_throughput.py", "--events", "5000", "--clients", "2,3", "--sustain-s", "2")
    assert "end to end, 2 clients:" in out and "end to end, 3 clients:" in out
    assert out.count("0 failed") == 2
    assert "raw insert:" in out
    assert "collector CPU:" in out
    # One table row per client count: 10 batches of 100 invocations each, one invocation row
    # per request (its events merged).
    assert re.search(r"^\| 2 \| [\d,]+ \| \d+% \| [\d.]+ us \| [\d.]+ \| 1,000 \|$", out, re.M)
    assert re.search(r"^\| 3 \| [\d,]+ \| \d+% \| [\d.]+ us \| [\d.]+ \| 1,000 \|$", out, re.M)
    assert "RSS MB start" in out
