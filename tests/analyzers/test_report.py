from __future__ import annotations

from datetime import timedelta

from lambdascope.analyzers.report import bucket_seconds, report_figure, write_html_report
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW


def test_report_charts_carry_the_fleets_numbers(store):
    store.write(fleetdata.timeout_fleet())

    figure = report_figure(store.reader, since=timedelta(hours=1), now=NOW)

    traces = {trace.name: trace for trace in figure.data}
    assert sum(traces["checkout timeouts"].y) == 3
    assert sum(traces["checkout invocations"].y) == 40
    assert sum(traces["thumbnailer invocations"].y) == 30
    assert max(traces["thumbnailer memory %"].y) == 250 * 100 / 512
    assert max(traces["checkout p99"].y) >= 2900


def test_html_report_lists_findings_and_embeds_the_charts(store, tmp_path):
    store.write(fleetdata.timeout_fleet())

    path = write_html_report(store.reader, tmp_path / "fleet.html", timedelta(hours=1), now=NOW)

    text = path.read_text(encoding="utf-8")
    assert "3 of 40 invocations of checkout timed out at its 3.0 s limit" in text
    assert "checkout-0007, checkout-0019, checkout-0031" in text
    assert "Plotly.newPlot" in text
    assert 'src="https://cdn.plot.ly' not in text  # plotly.js is embedded: opens offline
    assert len(text) > 1_000_000


def test_empty_window_report_says_so(store, tmp_path):
    path = write_html_report(store.reader, tmp_path / "empty.html", timedelta(hours=1), now=NOW)

    assert "No findings" in path.read_text(encoding="utf-8")


def test_buckets_are_never_finer_than_a_minute():
    assert bucket_seconds(timedelta(minutes=15)) == 60
    assert bucket_seconds(timedelta(days=1)) == 720
