"""CloudWatch Metric Streams through Firehose's HTTP endpoint delivery."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from collector.firehose import FirehoseError, parse_firehose_request
from collector.server import CollectorServer
from collector.store import Store
from lambdascope.query import CollectorQueryClient
from tests.collector.conftest import load_event
from tests.collector.test_server import request

REQUEST_ID = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f"
PATH = "/v1/firehose/metrics"


def deliver(
    base_url: str, body: Any, *, key: str | None = None, request_id: str = REQUEST_ID
) -> tuple[int, dict[str, str], Any]:
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": request_id,
    }
    if key is not None:
        headers["X-Amz-Firehose-Access-Key"] = key
    return request(base_url, "POST", PATH, json.dumps(body).encode(), headers)


def test_records_become_metric_points() -> None:
    parsed = parse_firehose_request(REQUEST_ID, load_event("firehose_metrics"))
    assert [p.metric_name for p in parsed.points] == [
        "Throttles",
        "Duration",
        "ConcurrentExecutions",
    ]
    throttles, duration, concurrency = parsed.points
    assert throttles.timestamp == dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
    assert (throttles.function_name, throttles.value_sum, throttles.value_count) == (
        "checkout",
        7.0,
        60.0,
    )
    assert (duration.resource, duration.unit) == ("checkout:prod", "Milliseconds")
    assert duration.extra_statistics == {"p99": 790.1}
    assert (concurrency.function_name, concurrency.value_max) == ("", 12.0)
    assert parsed.skipped_lines == 0


def test_lines_that_are_not_data_points_are_skipped_and_counted() -> None:
    body = load_event("firehose_metrics")
    junk = base64.b64encode(b'not json\n{"metric_name": "x"}\n').decode()
    body["records"].append({"data": junk})
    parsed = parse_firehose_request(REQUEST_ID, body)
    assert (len(parsed.points), parsed.skipped_lines) == (3, 2)


@pytest.mark.parametrize(
    ("header", "mutate", "message"),
    [
        (None, lambda b: b, "X-Amz-Firehose-Request-Id header is missing"),
        ("other-id", lambda b: b, "differs from the X-Amz-Firehose-Request-Id"),
        (REQUEST_ID, lambda b: {**b, "records": "x"}, "records: must be a list"),
        (REQUEST_ID, lambda b: {**b, "records": [{"data": "%%%"}]}, "is not base64"),
    ],
)
def test_invalid_deliveries_are_400(header: str | None, mutate: Any, message: str) -> None:
    with pytest.raises(FirehoseError) as caught:
        parse_firehose_request(header, mutate(load_event("firehose_metrics")))
    assert caught.value.status == 400
    assert message in str(caught.value)


def test_delivery_is_stored_once_and_answered_in_firehose_format(server: CollectorServer) -> None:
    status, headers, body = deliver(server.url, load_event("firehose_metrics"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["requestId"] == REQUEST_ID and isinstance(body["timestamp"], int)
    assert "errorMessage" not in body
    # Firehose retries with the same request id: stored once.
    assert deliver(server.url, load_event("firehose_metrics"))[0] == 200
    rows = (
        CollectorQueryClient(server.url)
        .query(
            "SELECT metric_name, function_name, value_sum FROM cloudwatch_metrics"
            " WHERE namespace = {ns:String} ORDER BY metric_name",
            {"ns": "AWS/Lambda"},
        )
        .rows
    )
    assert rows == [
        ("ConcurrentExecutions", "", 400.0),
        ("Duration", "checkout", 4210.0),
        ("Throttles", "checkout", 7.0),
    ]


def test_refusals_carry_the_request_id_and_an_error_message(server: CollectorServer) -> None:
    status, _, body = deliver(server.url, load_event("firehose_metrics"), request_id="other")
    assert status == 400
    assert body["requestId"] == "other"
    assert "differs" in body["errorMessage"]


def test_oversized_delivery_is_413_in_firehose_format(store: Store) -> None:
    with CollectorServer(store, port=0, max_body_bytes=100) as small:
        status, _, body = deliver(small.url, load_event("firehose_metrics"))
    assert status == 413
    assert body["requestId"] == REQUEST_ID
    assert "exceeds the limit of 100" in body["errorMessage"]


def test_access_key_is_checked_when_a_token_is_configured(store: Store) -> None:
    with CollectorServer(store, port=0, ingest_token="k3y") as secured:
        missing = deliver(secured.url, load_event("firehose_metrics"))
        wrong = deliver(secured.url, load_event("firehose_metrics"), key="nope")
        right = deliver(secured.url, load_event("firehose_metrics"), key="k3y")
    assert (missing[0], wrong[0], right[0]) == (401, 401, 200)
    assert wrong[2]["errorMessage"] == "wrong or missing X-Amz-Firehose-Access-Key"
