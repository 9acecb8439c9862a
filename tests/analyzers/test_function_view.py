from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lambdascope.analyzers.fleet import FunctionSummary
from lambdascope.analyzers.function_view import (
    SeriesPoint,
    bucket_seconds,
    environment_row,
    extension_row,
    function_overview,
    init_row,
    recent_invocations,
    series_points,
    version_row,
)
from lambdascope.analyzers.throttles import ConcurrencyLimits
from lambdascope.analyzers.window import Window
from tests.analyzers.fleetdata import NOW, Inv, Scenario, environment_id
from tests.analyzers.viewdata import view_store_fixture  # noqa: F401

HOUR = Window.ending(NOW, timedelta(hours=1))
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


# --- pure ------------------------------------------------------------------------------------


def test_bucket_seconds_keeps_a_chart_within_its_points():
    assert bucket_seconds(HOUR) == 60
    assert bucket_seconds(Window.ending(NOW, timedelta(minutes=5))) == 60
    assert bucket_seconds(Window.ending(NOW, timedelta(days=1))) == 12 * 60
    assert bucket_seconds(Window.ending(NOW, timedelta(days=7))) == 84 * 60


def test_series_points_fill_every_bucket_and_keep_not_measured_apart_from_zero():
    window = Window(T0, T0 + timedelta(minutes=3))
    row = {
        "bucket": (T0 + timedelta(minutes=1)).replace(tzinfo=None),  # the store's naive time
        "invocations": 5,
        "errors": 1,
        "timeouts": 0,
        "cold_starts": 1,
        "duration_quantiles_ms": [100.0, 150.0, 400.0],
        "init_quantiles_ms": [float("nan")] * 3,
        "max_init_duration_ms": None,
        "max_memory_used_mb": 70,
        "memory_size_mb": 128,
    }
    points = series_points([row], [], window, 60)
    assert [p.bucket for p in points] == [T0 + timedelta(minutes=m) for m in range(3)]
    assert points[0] == SeriesPoint(T0)
    middle = points[1]
    assert (middle.invocations, middle.errors, middle.cold_starts) == (5, 1, 1)
    assert (middle.p50_duration_ms, middle.p99_duration_ms) == (100.0, 400.0)
    assert middle.p50_init_duration_ms is None  # NaN: no init in the minute
    assert (middle.max_memory_used_mb, middle.memory_size_mb) == (70, 128)
    assert all(p.throttles is None for p in points)  # no metric stream: not measured

    throttled = series_points([row], [{"bucket": T0, "throttles": 4.0}], window, 60)
    assert [p.throttles for p in throttled] == [4.0, 0.0, 0.0]
    assert all(p.concurrency is None for p in points)  # no metric stream: unknown, not 0

    running = series_points([row], [], window, 60, [{"bucket": T0, "concurrency": 9.0}])
    assert [p.concurrency for p in running] == [9.0, 0.0, 0.0]  # no point: nothing ran


def test_environment_row_keeps_an_unreported_environment_unmeasured():
    row = {
        "environment_id": "3f2a1c9e" + "0" * 24,
        "max_used_mb": 71,
        "size_mb": 128,
        "invocations": 40,
        "first_start": T0.replace(tzinfo=None),
        "last_start": T0.replace(tzinfo=None) + timedelta(minutes=20),
        "environments": 1,
    }
    env = environment_row(row)
    assert (env.max_memory_used_mb, env.memory_size_mb, env.invocations) == (71, 128, 40)
    assert env.used_share == 71 / 128
    assert (env.first_start, env.last_start) == (T0, T0 + timedelta(minutes=20))
    unreported = environment_row({**row, "max_used_mb": None})
    assert unreported.max_memory_used_mb is None and unreported.used_share is None


def test_version_init_and_extension_rows():
    version = version_row(
        {
            "function_version": "8",
            "invocations": 30,
            "memory_size_mb": 256,
            "min_timeout_ms": 3000.0,
            "max_timeout_ms": 6000.0,
            "architectures": ["arm64", ""],
            "regions": ["eu-west-1"],
            "last_seen": T0,
        }
    )
    assert (version.memory_size_mb, version.timeout_ms, version.min_timeout_ms) == (
        256,
        6000.0,
        3000.0,
    )
    assert version.architectures == ["arm64"]
    init = init_row(
        {
            "initialization_type": "",
            "phase": "init",
            "inits": 3,
            "failed": 1,
            "init_quantiles_ms": [400.0, 900.0],
            "max_init_duration_ms": 950.0,
            "runtime_versions": ["python:3.12.v30"],
        }
    )
    assert init.initialization_type == "on-demand"  # an older extension did not say
    assert (init.p50_init_duration_ms, init.p99_init_duration_ms) == (400.0, 900.0)
    summary = FunctionSummary("f", 10, 0, 0, 1, 1.0, 2.0, 50.0, T0, events_dropped=7)
    ext = extension_row(
        {
            "environments": 2,
            "startup_ms_p95": 18.0,
            "post_runtime_ms_p95": float("nan"),
            "peak_rss_mb_max": 12.0,
        },
        summary,
    )
    assert (ext.startup_ms_p95, ext.post_runtime_ms_p95, ext.events_dropped) == (18.0, None, 7)


# --- against the store (one fleet for the module: tests/analyzers/viewdata.py) ----------------


def test_a_function_with_timeouts(view_store):
    overview = function_overview(view_store.reader, "checkout", HOUR)

    assert overview.summary is not None
    assert (overview.summary.invocations, overview.summary.timeouts) == (40, 3)
    assert overview.bucket_s == 60 and len(overview.series) == 60
    assert sum(p.invocations for p in overview.series) == 40
    assert sum(p.timeouts for p in overview.series) == 3
    assert max(p.p99_duration_ms or 0 for p in overview.series) > 2900  # interpolated
    (version,) = overview.versions
    assert (version.function_version, version.memory_size_mb, version.timeout_ms) == (
        "$LATEST",
        128,
        3000.0,
    )
    assert (version.architectures, version.regions) == (["x86_64"], ["us-east-1"])
    (init,) = overview.inits
    assert (init.initialization_type, init.phase, init.inits) == ("on-demand", "init", 1)
    assert init.max_init_duration_ms == 180.0
    assert overview.runtime_versions == ["python:3.12.v30"]
    assert (overview.max_memory_used_mb, overview.memory_size_mb) == (71, 128)
    assert overview.throttles is None and overview.extension is None
    # No CloudWatch metric stream for checkout: its concurrency is unknown, not 0.
    assert not overview.concurrency_measured and overview.peak_concurrency is None
    assert overview.reserved_concurrency is None
    (env,) = overview.environments
    assert overview.environment_count == 1
    assert env.environment_id == environment_id("checkout", "1")
    assert (env.max_memory_used_mb, env.memory_size_mb, env.invocations) == (71, 128, 40)
    assert env.first_start == NOW - timedelta(minutes=30)
    assert env.last_start == NOW - timedelta(minutes=30) + timedelta(seconds=30 * 39)

    recent = recent_invocations(view_store.reader, "checkout", HOUR, limit=5)
    assert [i.request_id for i in recent] == [f"checkout-{n:04d}" for n in (39, 38, 37, 36, 35)]


def test_cold_starts_of_a_function_scaling_out(view_store):
    overview = function_overview(view_store.reader, "search", HOUR)

    assert sum(p.cold_starts for p in overview.series) == 8
    (init,) = overview.inits
    assert init.inits == 8
    assert init.max_init_duration_ms == 1400.0 + 70 * 7
    assert max(p.max_init_duration_ms or 0 for p in overview.series) == 1890.0


def test_memory_per_environment_is_bounded_and_fullest_first(view_store):
    overview = function_overview(view_store.reader, "search", HOUR, top_environments=3)

    assert overview.environment_count == 8  # every environment, beyond the 3 listed
    assert len(overview.environments) == 3
    assert all(e.invocations == 5 for e in overview.environments)
    assert all(
        (e.max_memory_used_mb, e.memory_size_mb) == (140, 256) for e in overview.environments
    )


def test_an_out_of_memory_function_peaks_at_its_size(view_store):
    overview = function_overview(view_store.reader, "report_export", HOUR)

    assert (overview.max_memory_used_mb, overview.memory_size_mb) == (128, 128)
    assert overview.summary is not None and overview.summary.errors == 2


def test_throttles_and_the_extensions_own_figures(view_store):
    overview = function_overview(view_store.reader, "thumbnailer", HOUR)

    assert overview.throttles == 6.0  # 2 a minute for 3 minutes, counted once
    assert overview.extension is not None
    assert (overview.extension.startup_ms_p95, overview.extension.peak_rss_mb) == (18.0, 12.0)
    assert overview.extension.events_dropped == 0


def test_the_fullest_environment_comes_first_whatever_its_traffic(store):
    start = NOW - timedelta(minutes=30)
    used = {"busy": [60] * 5, "full": [120, 90], "warm": [100]}
    store.write(
        Scenario(
            [
                Inv(
                    "resize",
                    f"resize-{env}-{n}",
                    start + timedelta(minutes=n),
                    50.0,
                    environment=env,
                    max_memory_used_mb=mb,
                )
                for env, figures in used.items()
                for n, mb in enumerate(figures)
            ]
        )
    )

    overview = function_overview(store.reader, "resize", HOUR)

    order = [environment_id("resize", env) for env in ("full", "warm", "busy")]
    assert [e.environment_id for e in overview.environments] == order
    assert [(e.max_memory_used_mb, e.invocations) for e in overview.environments] == [
        (120, 2),
        (100, 1),
        (60, 5),
    ]
    assert overview.environments[0].last_start == start + timedelta(minutes=1)


def test_concurrency_from_the_metric_stream_with_the_reserved_limit_from_the_settings(view_store):
    limits = ConcurrencyLimits(reserved={"thumbnailer": 10})
    overview = function_overview(view_store.reader, "thumbnailer", HOUR, limits=limits)

    assert overview.concurrency_measured
    # 5 a minute under {FunctionName} and again under {FunctionName, Resource}: read once.
    assert [p.concurrency for p in overview.series if p.concurrency] == [5.0, 5.0, 5.0]
    assert overview.peak_concurrency == 5.0
    assert overview.reserved_concurrency == 10
    assert function_overview(view_store.reader, "thumbnailer", HOUR).reserved_concurrency is None


def test_a_function_without_invocations_in_the_window(view_store):
    overview = function_overview(view_store.reader, "nobody", HOUR)

    assert overview.summary is None
    assert overview.versions == [] and overview.inits == []
    assert all(p.invocations == 0 for p in overview.series)
