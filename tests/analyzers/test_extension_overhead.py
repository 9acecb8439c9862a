"""extension_overhead: the lambdascope extension's start-up, post-runtime time and memory against
its budget, which the settings file may change."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lambdascope.analyzers import DETECTORS, Window, extension_overhead, run_detectors
from lambdascope.analyzers.extension_overhead import ExtensionBudget, extension_overhead_findings
from lambdascope.analyzers.settings import SettingsError, apply_settings, parse_settings
from lambdascope.collector.normalize import normalize_batch
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, clean_stats, stats_batch

HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _restore_budget(monkeypatch):
    # apply_settings sets it process-wide: put the current one back after each test.
    monkeypatch.setattr(extension_overhead, "BUDGET", extension_overhead.BUDGET)


def detect(store):
    return run_detectors(
        store.reader,
        since=HOUR,
        now=NOW,
        detectors={"extension_overhead": DETECTORS["extension_overhead"]},
    )


def write_stats(store, function_name, environment, rows):
    """Batches of one environment: (minutes before NOW, its figures)."""
    for minutes, stats in rows:
        batch = stats_batch(function_name, environment, NOW - timedelta(minutes=minutes), stats)
        store.store.write(normalize_batch(batch))


def test_a_clean_fleet_has_no_finding(store):
    store.write(fleetdata.healthy_fleet())
    for name in ("checkout", "thumbnailer", "report_export"):
        write_stats(
            store,
            name,
            "1",
            [(20, clean_stats(20, final=False)), (10, clean_stats(40, final=True))],
        )

    assert detect(store) == []


def test_a_slow_start_up_is_over_budget(store):
    write_stats(store, "checkout", "1", [(30, {**clean_stats(10, final=False), "startup_ms": 120})])
    write_stats(store, "checkout", "2", [(25, clean_stats(10, final=False))])

    (finding,) = detect(store)

    assert (finding.kind, finding.function_name, finding.severity) == (
        "extension_overhead",
        "checkout",
        "warning",
    )
    # Two environments: the p95 of 18 ms and 120 ms is the slow one.
    assert finding.summary == (
        "checkout: the lambdascope extension costs more than its budget: start-up p95 120 ms "
        "(budget 50 ms) over 2 environments"
    )
    assert finding.numbers["startup_ms_p95"] == 120.0
    assert "precompiled" in finding.recommendation


def test_post_runtime_time_and_memory_over_budget(store):
    # The `end` flush policy: 12 ms after each of the last 10 invocations' code finished.
    def at(invocations: int, post_runtime_ms_total: float) -> dict:
        return {
            **clean_stats(invocations, final=False),
            "post_runtime_ms_total": post_runtime_ms_total,
            "post_runtime_ms_max": 14.0,
            "peak_rss_kb": 52 * 1024,
        }

    write_stats(store, "orders", "1", [(40, at(10, 20.0)), (20, at(20, 140.0))])

    (finding,) = detect(store)

    assert finding.summary == (
        "orders: the lambdascope extension costs more than its budget: 12.0 ms after the "
        "function's code finished (p95 per invocation, budget 5 ms); peak memory 52 MB "
        "(budget 40 MB)"
    )
    assert finding.numbers["post_runtime_ms_p95"] == 12.0
    assert finding.numbers["post_runtime_ms_max"] == 14.0
    assert "LAMBDASCOPE_FLUSH_POLICY=background" in finding.recommendation
    assert "LAMBDASCOPE_BUFFER_MAX_BYTES" in finding.recommendation


def test_the_budget_is_a_setting(store):
    write_stats(store, "checkout", "1", [(30, {**clean_stats(10, final=False), "startup_ms": 120})])

    apply_settings(parse_settings("[extension]\nstartup_ms_p95 = 150\npeak_rss_mb = 64.5\n"))

    assert detect(store) == []
    configured = extension_overhead.BUDGET
    assert configured == ExtensionBudget(150.0, 5.0, 64.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[extension]\nstartup_ms_p95 = 0\n", "s.toml:2: extension.startup_ms_p95: must be a"),
        ("[extension]\npeak_rss_mb = true\n", "s.toml:2: extension.peak_rss_mb: must be a"),
        ("[extension]\npost_runtime_ms_p95 = 'x'\n", "extension.post_runtime_ms_p95: must be"),
        ("[extension]\nstartup = 3\n", "s.toml:2: extension.startup: unknown key"),
        ("extension = 3\n", "s.toml:1: extension: must be a table"),
    ],
)
def test_a_bad_budget_is_refused_by_line_and_key(text, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings(text, "s.toml")


def test_budget_values_must_be_positive():
    with pytest.raises(ValueError, match="peak_rss_mb must be a positive number"):
        ExtensionBudget(peak_rss_mb=-1)


def test_without_figures_nothing_is_over_budget():
    window = Window.ending(NOW, HOUR)
    row = {
        "function_name": "checkout",
        "environments": 1,
        "startup_ms_p95": None,
        "startup_ms_max": None,
        "invocations": 0,
        "post_runtime_ms_p95": float("nan"),
        "post_runtime_ms_max": None,
        "peak_rss_mb_max": None,
    }

    assert extension_overhead_findings([row], window) == []
