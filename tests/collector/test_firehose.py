"""CloudWatch Metric Streams through Firehose's HTTP endpoint delivery."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import random
import time
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from lambdascope.collector.firehose import FirehoseError, parse_firehose_request
from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store
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


# -- records that cannot be stored, and the OpenTelemetry 1.0.0 output format ----------------

STREAM_ARN = "arn:aws:cloudwatch:us-east-1:000000000000:metric-stream/lambda-stream"
T0_MS = 1795503600000  # 2026-11-24T07:00Z, the fixture's minute
#: For rows read back from the store: older ones than the retention are dropped by its TTL.
RECENT_MS = (int(time.time()) // 60 - 5) * 60_000


def json_line(metric_name: str = "Invocations", **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "metric_stream_name": "lambda-stream",
        "account_id": "000000000000",
        "region": "us-east-1",
        "namespace": "AWS/Lambda",
        "metric_name": metric_name,
        "dimensions": {"FunctionName": "checkout"},
        "timestamp": T0_MS,
        "value": {"max": 1.0, "min": 0.0, "sum": 5.0, "count": 5.0},
        "unit": "Count",
    }
    item.update(changes)
    return item


def record(*lines: dict[str, Any] | str) -> dict[str, str]:
    """A JSON format record; a str line is sent as it is."""
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    return {"data": base64.b64encode(text.encode() + b"\n").decode()}


def delivery(*records: dict[str, str]) -> dict[str, Any]:
    return {"requestId": REQUEST_ID, "timestamp": T0_MS, "records": list(records)}


def skip_counters(base_url: str) -> dict[str, int]:
    """``lambdascope_metric_lines_skipped_total`` by reason, from /metrics."""
    status, _, text = request(base_url, "GET", "/metrics")
    assert status == 200
    prefix = 'lambdascope_metric_lines_skipped_total{reason="'
    counters = {}
    for line in text.decode().splitlines():
        if line.startswith(prefix):
            labels, value = line.split(" ")
            counters[labels[len(prefix) : -2]] = int(value)
    return counters


def stored(base_url: str, columns: str = "metric_name, function_name, value_sum") -> list[Any]:
    return (
        CollectorQueryClient(base_url)
        .query(f"SELECT {columns} FROM cloudwatch_metrics ORDER BY metric_name, timestamp")
        .rows
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"timestamp": 1e20}, "timestamp_out_of_range"),
        ({"timestamp": -1e15}, "timestamp_out_of_range"),
        ({"timestamp": 10**30}, "timestamp_out_of_range"),
        ({"timestamp": -1}, "timestamp_out_of_range"),
        ({"timestamp": 5662310400000}, "timestamp_out_of_range"),  # 2149-06-07
        ({"timestamp": float("nan")}, "bad_value"),
        ({"timestamp": "2026-11-24T07:00:00Z"}, "bad_value"),
        ({"timestamp": True}, "bad_value"),
        ({"value": {"max": 1.0, "min": float("nan"), "sum": 5.0, "count": 5.0}}, "bad_value"),
        ({"value": {"max": float("inf"), "min": 0.0, "sum": 5.0, "count": 5.0}}, "bad_value"),
        ({"value": {"max": 1.0, "min": 0.0, "sum": 10**400, "count": 5.0}}, "bad_value"),
        ({"value": {"max": 1.0, "min": 0.0, "sum": 5.0, "count": -1.0}}, "bad_value"),
        ({"value": {"max": 0.0, "min": 1.0, "sum": 5.0, "count": 5.0}}, "bad_value"),
        ({"value": {"max": 1.0, "min": 0.0, "sum": 5.0}}, "bad_value"),
        ({"value": {"max": 1.0, "min": 0.0, "sum": "5", "count": 5.0}}, "bad_value"),
        ({"value": [1.0, 0.0, 5.0, 5.0]}, "bad_value"),
        ({"value": None}, "bad_value"),
    ],
)
def test_a_data_point_the_store_cannot_hold_is_skipped_with_its_reason(
    changes: dict[str, Any], reason: str
) -> None:
    parsed = parse_firehose_request(REQUEST_ID, delivery(record(json_line(**changes), json_line())))
    assert [p.metric_name for p in parsed.points] == ["Invocations"]
    assert parsed.skipped == {reason: 1}


def test_lines_that_are_not_data_points_are_skipped_by_reason() -> None:
    nested = "[" * 100_000 + "]" * 100_000  # RecursionError in json.loads
    lines: list[dict[str, Any] | str] = ["{not json", "[1, 2]", nested, '{"metric_name": "x"}']
    lines.append(json_line())
    parsed = parse_firehose_request(REQUEST_ID, delivery(record(*lines)))
    assert len(parsed.points) == 1
    assert parsed.skipped == {"bad_json": 3, "unsupported_format": 1}
    assert parsed.skipped_lines == 4


def test_a_json_record_with_a_stray_control_byte_keeps_its_good_lines() -> None:
    # Control bytes are what tells a protobuf record from a JSON one; a JSON record holding
    # one (or bytes that are not UTF-8) is still read line by line.
    data = json.dumps(json_line("A")).encode() + b'\n{"x\x00": 1}\n' + b"{\xff\n"
    data += json.dumps(json_line("B")).encode()
    parsed = parse_firehose_request(REQUEST_ID, delivery({"data": base64.b64encode(data).decode()}))
    assert [p.metric_name for p in parsed.points] == ["A", "B"]
    assert parsed.skipped == {"bad_json": 2}


def test_store_time_bounds_are_inclusive() -> None:
    last_ms = 5662310399999  # 2149-06-06T23:59:59.999Z, the store's last instant
    parsed = parse_firehose_request(
        REQUEST_ID, delivery(record(json_line(timestamp=0), json_line(timestamp=last_ms)))
    )
    assert [p.timestamp for p in parsed.points] == [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2149, 6, 6, 23, 59, 59, 999000, tzinfo=dt.UTC),
    ]


def test_an_extra_statistic_that_is_not_a_number_is_left_out_not_the_point() -> None:
    value = {"max": 1.0, "min": 0.0, "sum": 5.0, "count": 5.0, "p99": None, "tm90": 0.5}
    parsed = parse_firehose_request(REQUEST_ID, delivery(record(json_line(value=value))))
    assert parsed.points[0].extra_statistics == {"tm90": 0.5}
    assert parsed.skipped == {}


def test_bad_records_are_skipped_counted_and_the_rest_stored(server: CollectorServer) -> None:
    bad_min = {"max": 1.0, "min": float("nan"), "sum": 5.0, "count": 5.0}
    body = delivery(
        record(json_line("Throttles", timestamp=RECENT_MS), json_line("Errors", timestamp=1e20)),
        record(json_line("Errors", timestamp=-1e15)),
        record(json_line("Errors", value=bad_min), "{garbage"),
        record(json_line("Invocations", timestamp=RECENT_MS)),
    )
    status, headers, reply = deliver(server.url, body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert reply["requestId"] == REQUEST_ID and isinstance(reply["timestamp"], int)
    assert "errorMessage" not in reply
    assert stored(server.url) == [("Invocations", "checkout", 5.0), ("Throttles", "checkout", 5.0)]
    assert skip_counters(server.url) == {
        "bad_json": 1,
        "bad_value": 1,
        "timestamp_out_of_range": 2,
    }


def test_a_delivery_of_only_bad_records_is_acknowledged(server: CollectorServer) -> None:
    # Retrying cannot fix a bad record: a refusal would only have Firehose resend it for the
    # stream's whole retry duration. 200, and the counters say what was left out.
    body = delivery(record(json_line(timestamp=1e20)), record("not json"))
    status, _, reply = deliver(server.url, body)
    assert status == 200
    assert reply["requestId"] == REQUEST_ID and "errorMessage" not in reply
    assert stored(server.url) == []
    assert skip_counters(server.url) == {"bad_json": 1, "timestamp_out_of_range": 1}


# OpenTelemetry 1.0.0: size-delimited ExportMetricsServiceRequest messages (AWS CloudWatch user
# guide, "CloudWatch metric stream output in OpenTelemetry 1.0.0 format").


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def text_value(value: str | dict[str, str]) -> AnyValue:
    if isinstance(value, dict):
        pairs = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in value.items()]
        return AnyValue(kvlist_value=KeyValueList(values=pairs))
    return AnyValue(string_value=value)


def summary_metric(
    metric_name: str,
    dimensions: dict[str, str],
    start_ms: int,
    stats: dict[float, float],
    *,
    total: float,
    count: int,
    unit: str = "{Count}",
) -> Metric:
    """A metric as CloudWatch streams it: a Summary with one data point."""
    attributes: dict[str, str | dict[str, str]] = {
        "Namespace": "AWS/Lambda",
        "MetricName": metric_name,
        "Dimensions": dimensions,
    }
    point = SummaryDataPoint(
        attributes=[KeyValue(key=k, value=text_value(v)) for k, v in attributes.items()],
        start_time_unix_nano=start_ms * 1_000_000,
        time_unix_nano=(start_ms + 60_000) * 1_000_000,
        count=count,
        sum=total,
        quantile_values=[
            SummaryDataPoint.ValueAtQuantile(quantile=q, value=v) for q, v in stats.items()
        ],
    )
    return Metric(
        name=f"amazonaws.com/AWS/Lambda/{metric_name}",
        unit=unit,
        summary=Summary(data_points=[point]),
    )


def export_request(*metrics: Metric) -> bytes:
    resource = {
        "cloud.provider": "aws",
        "cloud.account.id": "000000000000",
        "cloud.region": "us-east-1",
        "aws.exporter.arn": STREAM_ARN,
    }
    message = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(
                    attributes=[KeyValue(key=k, value=text_value(v)) for k, v in resource.items()]
                ),
                scope_metrics=[ScopeMetrics(metrics=list(metrics))],
            )
        ]
    )
    return message.SerializeToString()


def otel_record(*messages: bytes) -> dict[str, str]:
    data = b"".join(varint(len(message)) + message for message in messages)
    return {"data": base64.b64encode(data).decode()}


def fixture_as_otel(start_ms: int = T0_MS) -> list[bytes]:
    """The firehose_metrics event's data points in the OpenTelemetry 1.0.0 format."""
    throttles = summary_metric(
        "Throttles",
        {"FunctionName": "checkout"},
        start_ms,
        {0.0: 0.0, 1.0: 1.0},
        total=7.0,
        count=60,
    )
    duration = summary_metric(
        "Duration",
        {"FunctionName": "checkout", "Resource": "checkout:prod"},
        start_ms,
        {0.0: 11.2, 0.99: 790.1, 1.0: 812.5},
        total=4210.0,
        count=40,
        unit="ms",
    )
    concurrency = summary_metric(
        "ConcurrentExecutions", {}, start_ms + 60_000, {0.0: 3.0, 1.0: 12.0}, total=400.0, count=60
    )
    return [export_request(throttles, duration), export_request(concurrency)]


def test_otel_records_become_the_same_points_as_json_records() -> None:
    first, second = fixture_as_otel()
    otel = parse_firehose_request(REQUEST_ID, delivery(otel_record(first), otel_record(second)))
    from_json = parse_firehose_request(REQUEST_ID, load_event("firehose_metrics"))
    assert otel.points == from_json.points
    assert otel.skipped == {}


def test_otel_percentiles_units_and_several_messages_in_one_record() -> None:
    metric = summary_metric(
        "Duration",
        {"FunctionName": "api"},
        T0_MS,
        {0.0: 1.0, 0.5: 2.0, 0.999: 9.0, 1.0: 10.0},
        total=30.0,
        count=7,
        unit="ms",
    )
    rate = summary_metric("Bytes", {}, T0_MS, {0.0: 0.0, 1.0: 0.0}, total=0, count=1, unit="By/s")
    odd = summary_metric("Odd", {}, T0_MS, {0.0: 0.0, 1.0: 0.0}, total=0, count=1, unit="kg")
    parsed = parse_firehose_request(
        REQUEST_ID, delivery(otel_record(export_request(metric), export_request(rate, odd)))
    )
    duration, rate_point, odd_point = parsed.points
    assert duration.extra_statistics == {"p50": 2.0, "p99.9": 9.0}
    assert (duration.value_min, duration.value_max, duration.value_count) == (1.0, 10.0, 7.0)
    assert (duration.unit, rate_point.unit, odd_point.unit) == (
        "Milliseconds",
        "Bytes/Second",
        "kg",
    )
    assert duration.metric_stream_name == "lambda-stream"


def test_otel_data_points_that_cannot_be_stored_are_skipped_by_reason() -> None:
    far = summary_metric("Far", {}, 10**13, {0.0: 0.0, 1.0: 1.0}, total=1.0, count=1)
    no_max = summary_metric("NoMax", {}, T0_MS, {0.0: 0.0}, total=1.0, count=1)
    nan_sum = summary_metric("NaN", {}, T0_MS, {0.0: 0.0, 1.0: 1.0}, total=math.nan, count=1)
    gauge = Metric(
        name="amazonaws.com/AWS/Lambda/Gauge",
        gauge=Gauge(data_points=[NumberDataPoint(as_double=1.0), NumberDataPoint(as_double=2.0)]),
    )
    nameless = summary_metric("Nameless", {}, T0_MS, {0.0: 0.0, 1.0: 1.0}, total=1.0, count=1)
    del nameless.summary.data_points[0].attributes[:]
    good = summary_metric("Good", {}, T0_MS, {0.0: 0.0, 1.0: 1.0}, total=1.0, count=1)
    message = export_request(far, no_max, nan_sum, gauge, nameless, good)
    parsed = parse_firehose_request(REQUEST_ID, delivery(otel_record(message)))
    assert [p.metric_name for p in parsed.points] == ["Good"]
    assert parsed.skipped == {
        "timestamp_out_of_range": 1,
        "bad_value": 2,
        "unsupported_format": 3,
    }


def test_otel_0_7_records_are_refused_with_the_fix() -> None:
    # 0.7.0 data points carry StringKeyValue labels in field 1, reserved in the 1.0 protos.
    label = b"\x0a\x09Namespace\x12\x0aAWS/Lambda"
    point = SummaryDataPoint(start_time_unix_nano=T0_MS * 1_000_000, count=1, sum=1.0)
    metric = Metric(name="amazonaws.com/AWS/Lambda/Throttles")
    metric.summary.data_points.add().ParseFromString(
        b"\x0a" + varint(len(label)) + label + point.SerializeToString()
    )
    with pytest.raises(FirehoseError) as caught:
        parse_firehose_request(REQUEST_ID, delivery(otel_record(export_request(metric))))
    assert caught.value.status == 400
    assert "records[0] holds" in str(caught.value)
    assert "OpenTelemetry 0.7.0" in str(caught.value)
    assert "OpenTelemetry 1.0 (opentelemetry1.0) or JSON (json)" in str(caught.value)


def test_otel_delivery_is_stored(server: CollectorServer) -> None:
    start_ms = RECENT_MS
    status, _, reply = deliver(server.url, delivery(*map(otel_record, fixture_as_otel(start_ms))))
    assert status == 200 and reply["requestId"] == REQUEST_ID and "errorMessage" not in reply
    columns = (
        "metric_name, namespace, function_name, resource, dimensions, timestamp, unit,"
        " value_min, value_max, value_sum, value_count, extra_statistics, metric_stream_name,"
        " account_id, region"
    )
    start = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC)
    common = ("lambda-stream", "000000000000", "us-east-1")
    rows = [tuple(row) for row in stored(server.url, columns)]
    # The CloudWatch period's start (start_time_unix_nano), as the JSON format's timestamp.
    assert [row[5] for row in rows] == [start + dt.timedelta(minutes=1), start, start]
    assert [row[:5] + row[6:] for row in rows] == [
        (
            "ConcurrentExecutions", "AWS/Lambda", "", "", {}, "Count",
            3.0, 12.0, 400.0, 60.0, {}, *common,
        ),
        (
            "Duration", "AWS/Lambda", "checkout", "checkout:prod",
            {"FunctionName": "checkout", "Resource": "checkout:prod"}, "Milliseconds",
            11.2, 812.5, 4210.0, 40.0, {"p99": 790.1}, *common,
        ),
        (
            "Throttles", "AWS/Lambda", "checkout", "", {"FunctionName": "checkout"}, "Count",
            0.0, 1.0, 7.0, 60.0, {}, *common,
        ),
    ]  # fmt: skip


def test_malformed_size_delimited_records_are_skipped_and_counted(
    server: CollectorServer,
) -> None:
    first, second = fixture_as_otel(RECENT_MS)
    framed = varint(len(second)) + second
    bad = [
        framed[:-3],  # cut short: the length announces more than remains
        framed + b"\x80",  # ends inside a varint
        framed + b"\xff" * 11,  # a varint longer than ten bytes
        b"\x05\x01\x02\x03\x04\x05",  # frames fine, but is not a protobuf message
        b"\xff\xfe",  # neither JSON nor size-delimited protobuf
    ]
    records = [otel_record(first)] + [{"data": base64.b64encode(b).decode()} for b in bad]
    status, _, reply = deliver(server.url, delivery(*records))
    assert status == 200 and "errorMessage" not in reply
    assert stored(server.url) == [("Duration", "checkout", 4210.0), ("Throttles", "checkout", 7.0)]
    assert skip_counters(server.url) == {"bad_protobuf": 5}


def test_random_and_mangled_records_are_skipped_never_a_500() -> None:
    """Whatever bytes a record holds, parsing answers: points, skips, or a 400 refusal."""
    rng = random.Random(20261124)
    valid = b"".join(varint(len(m)) + m for m in fixture_as_otel())
    samples = [rng.randbytes(rng.randrange(1, 64)) for _ in range(200)]
    for _ in range(300):
        mangled = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            mangled[rng.randrange(len(mangled))] = rng.randrange(256)
        samples.append(bytes(mangled[: rng.randrange(1, len(mangled) + 1)]))
    for sample in samples:
        body = delivery({"data": base64.b64encode(sample).decode()})
        try:
            parse_firehose_request(REQUEST_ID, body)
        except FirehoseError as exc:
            assert exc.status == 400
