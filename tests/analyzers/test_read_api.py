"""The detectors and read models give the same answers through the collector's HTTP read API
(JSON parameters and values) as in-process: this is how `lambdascope analyze` and the TUI run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from lambdascope.analyzers import run_detectors
from lambdascope.analyzers.fleet import finding_invocations, fleet_summary, request_log_view
from lambdascope.collector.server import CollectorServer
from lambdascope.query import CollectorQueryClient
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, TIMED_OUT


@pytest.fixture
def collector(store) -> Iterator[CollectorQueryClient]:
    server = CollectorServer(store.store, host="127.0.0.1", port=0).start()
    try:
        yield CollectorQueryClient(server.url, timeout_s=10.0)
    finally:
        server.stop(drain_timeout_s=5.0)


def test_findings_and_evidence_through_the_read_api_match_in_process(store, collector):
    store.write(fleetdata.with_checkout_timeouts(fleetdata.oom_fleet()))

    remote = run_detectors(collector, since=timedelta(hours=1), now=NOW)
    local = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert remote == local
    assert [(f.kind, f.function_name) for f in remote] == [
        ("timeout", "checkout"),
        ("out_of_memory", "report_export"),
        ("timeout", "report_export"),
    ]
    assert fleet_summary(collector, since=timedelta(hours=1), now=NOW) == fleet_summary(
        store.reader, since=timedelta(hours=1), now=NOW
    )
    timeout = next(f for f in remote if f.function_name == "checkout")
    invocations = finding_invocations(collector, timeout)
    assert [i.request_id for i in invocations] == list(TIMED_OUT)
    assert request_log_view(collector, invocations[0]) == request_log_view(
        store.reader, invocations[0]
    )
