"""The HTML report: one offline page with every section, its charts and the findings' text.

The store is written once per module; each report is written once and read by several tests.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from lambdascope.analyzers import throttles
from lambdascope.analyzers.report import SECTIONS, charts, colors, model, write_html_report
from lambdascope.analyzers.report.data import excerpt_requests
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryError
from tests.analyzers import viewdata
from tests.analyzers.fleetdata import NOW, PAYMENTS_LINE
from tests.analyzers.storefixtures import TestStore

HOUR = Window.ending(NOW, timedelta(hours=1))
_counter = itertools.count()


@pytest.fixture(scope="module")
def report_store(chdb_path: str) -> Iterator[TestStore]:
    store = TestStore(chdb_path, f"t_report_{os.getpid()}_{next(_counter)}")
    try:
        viewdata.write_report_fleet(store)
        yield store
    finally:
        store.drop()


@pytest.fixture(scope="module")
def fleet_report(report_store: TestStore, tmp_path_factory: pytest.TempPathFactory):
    steps: list[str] = []
    path = write_html_report(
        report_store.reader,
        tmp_path_factory.mktemp("report") / "fleet.html",
        HOUR,
        progress=steps.append,
    )
    return path.read_text(encoding="utf-8"), steps


@pytest.fixture(scope="module")
def thumbnailer_report(report_store: TestStore, tmp_path_factory: pytest.TempPathFactory) -> str:
    limits = throttles.LIMITS
    throttles.configure(throttles.ConcurrencyLimits(reserved={"thumbnailer": 4}))
    try:
        path = write_html_report(
            report_store.reader,
            tmp_path_factory.mktemp("report") / "thumbnailer.html",
            HOUR,
            function_name="thumbnailer",
        )
    finally:
        throttles.configure(limits)
    return path.read_text(encoding="utf-8")


def test_every_section_and_chart_is_there(fleet_report):
    text, _ = fleet_report
    text = text.replace("\\u002f", "/")  # plotly's JSON escapes the slash
    for section_id in SECTIONS:
        assert f"<h2 id='{section_id}'>" in text
    for title in (
        charts.DURATION_TITLE,
        charts.TRAFFIC_TITLE,
        charts.OUTCOMES_TITLE,
        charts.COLD_START_RATE_TITLE,
        charts.INIT_HISTOGRAM_TITLE,
        charts.INIT_PHASES_TITLE,
        charts.MEMORY_TITLE,
        charts.COST_TITLE,
    ):
        assert title in text
    assert text.count("Plotly.newPlot") == 8


def test_the_page_fetches_nothing(fleet_report):
    text, _ = fleet_report
    assert "<script src" not in text.lower()
    assert not re.search(r"<script[^>]*\ssrc\s*=", text, re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*['\"]?(https?:)?//", text, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", text.split("<script")[0])
    # plotly.js is inlined once, for every chart
    assert text.count("plotly.js v") == 1


def test_header_says_subject_window_and_counts(fleet_report):
    text, steps = fleet_report
    assert "the whole fleet" in text
    assert f"{HOUR.start:%Y-%m-%d %H:%M} UTC to {HOUR.end:%Y-%m-%d %H:%M} UTC" in text
    assert "Generated:" in text
    # checkout 40 + thumbnailer 30 + report_export 20 + search 40 + sessions 80 + video 120
    assert "<b>330</b>invocations" in text
    assert "<b>6</b>throttles" in text  # thumbnailer's metric stream: 3 minutes of 2
    assert steps[:2] == ["reading the fleet", "reading findings"]
    assert steps[-2:] == ["charts", "writing"]


def test_findings_read_as_text_most_severe_first(fleet_report):
    text, _ = fleet_report
    findings = text[text.index("<h2 id='findings'>") :]
    assert "<b>Timeout</b> · checkout" in findings
    assert "3 of 40 invocations of checkout timed out at its 3.0 s limit" in findings
    assert "checkout-0007" in findings
    assert "<b>Memory leak</b> · sessions" in findings
    assert "What to do:" in findings
    assert "timeout 3.00 s" in findings  # a figure with its unit
    # the evidence request's own log lines, the last ones
    assert "Last log lines of checkout-0007:" in findings
    assert PAYMENTS_LINE in findings
    severities = re.findall(r"class='severity'[^>]*>(\w+)<", findings)
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)
    assert severities[0] == "critical"


def test_memory_shows_the_leak_and_the_size(fleet_report):
    text, _ = fleet_report
    assert "leaks 1.5 MB per invocation" in text
    assert "memory size 256 MB (sessions" in text


def test_cost_and_the_right_sizing_what_if(fleet_report):
    text, _ = fleet_report
    cost = text[text.index("<h2 id='cost'>") : text.index("<h2 id='extension-overhead'>")]
    assert "video_encode" in cost
    assert "memory 10,240 MB → 2,624 MB" in cost
    assert "x86_64 → arm64" in cost


def test_extension_overhead_table(fleet_report):
    text, _ = fleet_report
    section = text[text.index("<h2 id='extension-overhead'>") : text.index("<h2 id='findings'>")]
    assert "thumbnailer" in section
    assert "18 ms" in section  # its start-up
    assert "12.0 MB" in section  # its peak memory


def test_function_report_draws_throttles_against_concurrency(thumbnailer_report):
    text = thumbnailer_report
    assert "lambdascope report: thumbnailer" in text
    assert "reserved concurrency 4" in text
    assert '"name":"throttles"' in text
    assert "concurrency (peak)" in text
    assert '"name":"p90"' in text
    assert "timeout 10.0 s" in text


def test_empty_window_says_so(report_store, tmp_path):
    window = Window.ending(NOW - timedelta(days=20), timedelta(hours=1))
    path = write_html_report(report_store.reader, tmp_path / "empty.html", window)
    text = path.read_text(encoding="utf-8")
    assert "No findings: nothing needs attention in this window." in text
    for section_id in SECTIONS:
        assert f"<h2 id='{section_id}'>" in text


def test_a_failed_read_raises_query_error(tmp_path):
    class Broken:
        def query(self, sql, parameters=None):
            raise QueryError("store unreachable")

    with pytest.raises(QueryError):
        write_html_report(Broken(), tmp_path / "x.html", HOUR)  # type: ignore[arg-type]


# --- pure parts ---


@pytest.mark.parametrize(
    ("since", "bucket_minutes"),
    [
        (timedelta(minutes=5), 1),
        (timedelta(hours=1), 1),
        (timedelta(hours=3), 2),
        (timedelta(hours=24), 15),
        (timedelta(days=7), 120),
        (timedelta(days=30), 360),
    ],
)
def test_buckets_fit_the_window(since, bucket_minutes):
    window = Window.ending(NOW, since)
    assert model.bucket_seconds(window) == bucket_minutes * 60
    points = len(model.bucket_starts(window, bucket_minutes * 60))
    assert points <= model.MAX_POINTS + 1
    if since >= timedelta(hours=1):
        assert points >= 60


def _series_row(bucket: datetime, invocations: int, p99: float) -> dict:
    return {
        "function_name": "checkout",
        "bucket": bucket,
        "invocations": invocations,
        "errors": 1,
        "timeouts": 0,
        "cold_starts": 1,
        "duration_quantiles_ms": [p99 / 2, p99 * 0.8, p99],
        "timeout_ms": 3000.0,
    }


def _three_buckets() -> tuple[Window, list[datetime]]:
    window = Window(
        datetime(2025, 1, 1, 12, 0, tzinfo=UTC), datetime(2025, 1, 1, 12, 3, tzinfo=UTC)
    )
    return window, model.bucket_starts(window, 60)


def test_an_empty_bucket_is_a_gap_not_a_line_across_it():
    window, buckets = _three_buckets()
    rows = [_series_row(buckets[0], 10, 200.0), _series_row(buckets[2], 5, 400.0)]
    series = model.function_series(rows, [], buckets)["checkout"]
    assert series.p99_ms == [200.0, None, 400.0]
    assert series.invocations == [10, 0, 5]
    assert series.cold_start_rate == [0.1, None, 0.2]
    assert series.throttles == [None, None, None]  # no metric stream: unknown, not 0

    data = _data(window, buckets, series)
    (p50, p90, p99) = charts.duration_figure(data).data
    assert list(p99.y) == [200.0, None, 400.0]
    assert p99.connectgaps is False


def test_meaning_colours_are_the_same_in_every_chart():
    window, buckets = _three_buckets()
    rows = [_series_row(b, 10, 200.0) for b in buckets]
    metric_rows = [
        {"function_name": "checkout", "bucket": b, "throttles": 2.0, "concurrency": 3.0,
         "has_concurrency": 1}
        for b in buckets
    ]  # fmt: skip
    series = model.function_series(rows, metric_rows, buckets)["checkout"]
    data = _data(window, buckets, series)

    def colour(figure, name):
        (trace,) = [t for t in figure.data if t.name == name]
        return trace.marker.color

    traffic, outcomes = charts.traffic_figure(data), charts.outcomes_figure(data)
    assert colour(traffic, "errors") == colour(outcomes, "errors") == colors.ERRORS
    assert colour(traffic, "timeouts") == colour(outcomes, "timeouts") == colors.TIMEOUTS
    assert colour(traffic, "throttles") == colour(outcomes, "throttles") == colors.THROTTLES
    timeout_line = charts.duration_figure(data).layout.shapes[0]
    assert timeout_line.line.color == colors.TIMEOUTS
    assert colour(charts.cold_start_rate_figure(data), "cold-start rate (%)") == colors.COLD_STARTS


def _data(window: Window, buckets: list[datetime], series: model.FunctionSeries):
    from lambdascope.analyzers.fleet import FunctionSummary

    summary = FunctionSummary(
        function_name="checkout", invocations=30, errors=3, timeouts=1, cold_starts=3,
        p50_duration_ms=100.0, p99_duration_ms=400.0, max_memory_pct=50.0, last_seen=None,
        throttles=6,
    )  # fmt: skip
    return model.ReportData(
        window=window,
        function_name="checkout",
        generated_at=window.end,
        bucket_s=60,
        buckets=buckets,
        summaries=[summary],
        charted=["checkout"],
        left_out=[],
        series={"checkout": series},
        total=series,
    )


def test_init_kinds_say_who_waited():
    def kind(initialization_type: str, phase: str = "init", proactive: int = 0) -> str:
        return model.init_kind(
            {"initialization_type": initialization_type, "phase": phase, "proactive": proactive}
        )

    assert kind("on-demand") == kind("") == model.ON_DEMAND
    assert kind("on-demand", proactive=1) == model.PROACTIVE
    assert kind("provisioned-concurrency") == model.PROVISIONED
    assert kind("snap-start", phase="restore") == kind("", phase="restore") == model.SNAPSTART


def test_log_excerpts_quote_the_first_evidence_of_the_most_severe_findings():
    from lambdascope.analyzers.findings import Finding

    def finding(severity: str, *ids: str) -> Finding:
        return Finding(
            kind="errors", severity=severity, function_name="f", function_version="$LATEST",
            window_start=HOUR.start, window_end=HOUR.end, summary="", evidence_request_ids=ids,
        )  # fmt: skip

    chosen = excerpt_requests([finding("critical", "a", "b", "c"), finding("info", "b", "d")])
    assert [rid for rid, _ in chosen] == ["a", "b", "d"]


def test_the_tui_and_the_cli_call_one_signature():
    import inspect

    parameters = inspect.signature(write_html_report).parameters
    assert list(parameters)[:3] == ["client", "path", "window"]
    assert {"function_name", "progress"} <= set(parameters)
