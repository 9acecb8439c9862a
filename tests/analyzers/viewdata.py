"""One fleet for the function and invocation views, written once per test module: checkout
with its timeouts and a cold start with spans, report_export running out of memory, search
scaling out with cold starts, thumbnailer throttled and reporting the extension's figures."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest

from lambdascope.collector.firehose import parse_firehose_request
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.otlp import parse_traces
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, Scenario, clean_stats, stats_batch
from tests.analyzers.storefixtures import TestStore

COLD_REQUEST = "checkout-0000"
FAILED_SPAN = "POST payments"
_counter = itertools.count()


def view_fleet() -> Scenario:
    scenario = fleetdata.with_checkout_timeouts(fleetdata.oom_fleet())
    search = [i for i in fleetdata.cold_start_fleet().invocations if i.function_name == "search"]
    return scenario + Scenario(search)


def write_view_fleet(store: TestStore) -> Scenario:
    scenario = view_fleet()
    store.write(scenario)
    cold = scenario.by_id(COLD_REQUEST)
    spans = fleetdata.otlp_spans(
        "checkout",
        [
            {"request_id": cold.request_id, "start": cold.start_time, "duration_ms": 110.0},
            {
                "request_id": cold.request_id,
                "name": FAILED_SPAN,
                "start": cold.start_time + timedelta(milliseconds=20),
                "duration_ms": 60.0,
                "status_message": "502 from payments",
            },
            {"request_id": "checkout-0001", "start": cold.start_time, "duration_ms": 5.0},
        ],
    )
    store.store.write_otlp("otel_traces", parse_traces(spans).rows)
    records = fleetdata.function_minutes(
        "thumbnailer",
        NOW - timedelta(minutes=20),
        3,
        invocations=10.0,
        concurrency=5.0,
        throttles=2.0,
    )
    delivery = parse_firehose_request("d1", fleetdata.firehose_body(records, "d1"))
    store.store.write_metrics(delivery.request_id, delivery.points)
    stats = clean_stats(30, final=True)
    batch = stats_batch("thumbnailer", "1", NOW - timedelta(minutes=5), stats)
    store.store.write(normalize_batch(batch))
    return scenario


def report_fleet() -> Scenario:
    """What the HTML report adds to the views' fleet: a leaking function (``sessions``) and an
    expensive, over-provisioned one (``video_encode``)."""
    leak = [i for i in fleetdata.leak_fleet().invocations if i.function_name == "sessions"]
    cost = [i for i in fleetdata.cost_fleet().invocations if i.function_name == "video_encode"]
    return Scenario(leak + cost)


def write_report_fleet(store: TestStore) -> None:
    """The views' fleet (timeouts, out-of-memory kills, cold starts, throttles, the
    extension's figures) with :func:`report_fleet`: every section of the report has data."""
    write_view_fleet(store)
    store.write(report_fleet())


@pytest.fixture(scope="module", name="view_store")
def view_store_fixture(chdb_path: str) -> Iterator[TestStore]:
    store = TestStore(chdb_path, f"t_views_{os.getpid()}_{next(_counter)}")
    try:
        write_view_fleet(store)
        yield store
    finally:
        store.drop()
