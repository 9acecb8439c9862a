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
    for clients in (2, 3):
        row = rf"^\| {clients} \| [\d,]+ \| \d+% \| [\d.]+ us \| [\d.]+ \| \d+ \| 1,000 \|$"
        assert re.search(row, out, re.M)
    # The reason, stage by stage, in the same run.
    assert re.search(r"^\| normalise \| [\d.]+ \| [\d.]+ \|$", out, re.M)
    assert "| store: one commit, as the collector makes it |" in out
    assert "1 sender waits for each commit:" in out
    assert "RSS MB start" in out


def _table_cells(out: str, title: str, side: str) -> dict[str, str]:
    """The row of ``side`` in the markdown table under the heading containing ``title``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("###") and title in line)
    header = [cell.strip() for cell in lines[start + 2].strip("|").split("|")]
    for line in lines[start + 4 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == side:
            return dict(zip(header, cells, strict=True))
    raise AssertionError(f"no row {side!r} in the table {title!r}:\n{out}")


def test_collector_http_compares_before_and_after_side_by_side() -> None:
    out = run(
        "collector_http.py", "--quick", "--events", "1000", "--load-s", "2", "--senders", "40"
    )
    assert "machine: nproc=" in out and "REV = " in out
    assert "before:" in out and "after:" in out and out.count("  imports ") == 2
    for title in ("a) ingest", "b) load"):
        for side in ("before", "after"):
            row = _table_cells(out, title, side)
            assert re.fullmatch(r"[\d,]+", row["events/s"]), row
            assert row["connection errors"] == "0", row
            assert row["other non-200"] == "0", row
        assert _table_cells(out, title, "after/before")["events/s"].endswith("x")
    assert "requests/s" in out and "503 (retried)" in out and "peak RSS MB" in out


def test_read_limits_reports_status_memory_and_a_fast_read_beside_a_slow_one() -> None:
    out = run("read_limits.py", "--quick")
    assert "oversized read:" in out and "GB before JSON encoding" in out
    oversized = _table_cells(out, "oversized read", "after")
    assert re.fullmatch(r"\d{3}", oversized["HTTP status"]), oversized
    assert oversized["peak - before MB"], oversized
    allowed = _table_cells(out, "large but allowed read", "after")
    assert allowed["HTTP status"] == "200", allowed
    fast = _table_cells(out, "a fast read while a slow read runs", "after")
    assert re.fullmatch(r"\d{3}", fast["slow read status"]), fast
    assert fast["it answered"] in ("while the slow read ran", "after the slow read"), fast
    assert "connection errors: 0" in out


def test_tui_paint_times_each_screens_queries_beside_its_paint_and_refresh() -> None:
    # One window (the last hour), one run and one paint each: the tables, not the figures.
    out = run(
        "tui_paint.py",
        "--quick",
        "--invocations",
        "30000",
        "--hours",
        "1",
        "--runs",
        "1",
        "--paints",
        "1",
    )
    assert "machine: nproc=" in out
    assert re.search(r"^build: [\d.]+ s \([\d.]+ s inserting", out, re.M)
    assert "counted: 30,000 invocation rows, 30,000 in the per-minute rollups" in out
    number = r"[\d,]+ / [\d,]+"
    for title, window in (
        ("fleet (fleet_summary + run_detectors)", "last 1 h"),
        ("function fn-00 (function_overview + recent_invocations)", "last 1 h"),
        ("invocations fn-00 (invocations_page, 42 rows a page)", "last 1 h, first page"),
    ):
        row = _table_cells(out, title, window)
        assert int(row["rows"]) > 0, row
        for column in ("query ms", "first paint ms", "refresh ms"):
            assert re.fullmatch(number, row[f"{column} (median / max)"]), row
        assert re.fullmatch(r"[\d,]+", row["of which reads"]), row
        assert re.fullmatch(r"[\d.]+x", row["paint/query"]), row
        assert row["first paint < 1 s"] in ("met", "met (max over)", "**not met**"), row
        assert row["refresh < 300 ms"] in ("met", "met (max over)", "**not met**"), row
    assert "last 1 h, failed, page" in out
