"""OTLP/HTTP protobuf: requests built with the opentelemetry-proto classes, as an SDK's
``http/protobuf`` exporter sends them, and replies in the request's encoding."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from lambdascope.collector import otlp_proto
from lambdascope.collector.otlp import OtlpError
from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store
from lambdascope.query import CollectorQueryClient
from tests.collector.test_server import request

PROTOBUF = {"Content-Type": "application/x-protobuf"}
RID = "8f5a2c1e-1111-4c3d-9e8f-0a1b2c3d4e5f"
TRACE_ID = "5b8efff798038103d269b633813fc60c"
ROOT_SPAN = "eee19b7ec3c1b174"
CHILD_SPAN = "0102030405060708"
T0 = 1_795_503_600_210_000_000  # 2026-11-24T07:00:00.21Z in nanoseconds


def kv(key: str, value: str | int | bool | float | list[str]) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        items = [AnyValue(string_value=v) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=items)))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def resource(service: str = "checkout") -> Resource:
    return Resource(
        attributes=[
            kv("service.name", service),
            kv("faas.name", service),
            kv("faas.max_memory", 134_217_728),
        ]
    )


def trace_request(
    *, request_id: str | None = RID, trace_id: str = TRACE_ID, service: str = "checkout"
) -> ExportTraceServiceRequest:
    root_attributes = [kv("faas.coldstart", True), kv("order.items", ["a", "b"])]
    if request_id:
        root_attributes.append(kv("faas.invocation_id", request_id))
    root = Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(ROOT_SPAN),
        name="app.handler",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 20_500_000,
        attributes=root_attributes,
        events=[
            Span.Event(
                time_unix_nano=T0 + 15_000_000,
                name="exception",
                attributes=[kv("exception.type", "ValueError")],
            )
        ],
        links=[
            Span.Link(
                trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
                span_id=bytes.fromhex("b7ad6b7169203331"),
            )
        ],
        status=Status(code=Status.STATUS_CODE_ERROR, message="payment declined"),
    )
    child = Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(CHILD_SPAN),
        parent_span_id=bytes.fromhex(ROOT_SPAN),
        name="DynamoDB.PutItem",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=T0 + 2_000_000,
        end_time_unix_nano=T0 + 10_000_000,
    )
    scope = InstrumentationScope(name="app", version="1.2.0")
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=resource(service),
                scope_spans=[ScopeSpans(scope=scope, spans=[root, child])],
            )
        ]
    )


def logs_request(request_id: str = RID) -> ExportLogsServiceRequest:
    record = LogRecord(
        time_unix_nano=T0,
        severity_number=17,  # ERROR
        severity_text="ERROR",
        body=AnyValue(string_value="payment declined"),
        attributes=[kv("faas.invocation_id", request_id), kv("order.id", "o-1")],
        trace_id=bytes.fromhex(TRACE_ID),
        span_id=bytes.fromhex(ROOT_SPAN),
        flags=1,
    )
    observed_only = LogRecord(
        observed_time_unix_nano=T0 + 6_000_000,
        severity_number=9,
        body=AnyValue(string_value="retrying"),
    )
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=resource(),
                scope_logs=[
                    ScopeLogs(
                        scope=InstrumentationScope(name="app"),
                        log_records=[record, observed_only],
                    )
                ],
            )
        ]
    )


def metrics_request() -> ExportMetricsServiceRequest:
    point = {"start_time_unix_nano": T0 - 60_000_000_000, "time_unix_nano": T0}
    metrics = [
        m.Metric(
            name="queue.depth",
            unit="1",
            gauge=m.Gauge(data_points=[m.NumberDataPoint(as_double=3.5, **point)]),
        ),
        m.Metric(
            name="orders",
            unit="{order}",
            sum=m.Sum(
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE,
                is_monotonic=True,
                data_points=[
                    m.NumberDataPoint(as_int=42, attributes=[kv("region", "eu")], **point)
                ],
            ),
        ),
        m.Metric(
            name="http.server.duration",
            unit="ms",
            histogram=m.Histogram(
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_DELTA,
                data_points=[
                    m.HistogramDataPoint(
                        count=6,
                        sum=61.5,
                        min=1.5,
                        max=30.0,
                        bucket_counts=[2, 3, 1],
                        explicit_bounds=[5.0, 25.0],
                        **point,
                    )
                ],
            ),
        ),
        m.Metric(
            name="latency",
            unit="ms",
            summary=m.Summary(
                data_points=[
                    m.SummaryDataPoint(
                        count=10,
                        sum=100.0,
                        quantile_values=[
                            m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=8.0),
                            m.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=40.0),
                        ],
                        **point,
                    )
                ]
            ),
        ),
        m.Metric(
            name="payload.size",
            unit="By",
            exponential_histogram=m.ExponentialHistogram(
                data_points=[
                    m.ExponentialHistogramDataPoint(
                        count=4, sum=4096.0, min=512.0, max=2048.0, scale=1, **point
                    )
                ]
            ),
        ),
    ]
    return ExportMetricsServiceRequest(
        resource_metrics=[
            m.ResourceMetrics(
                resource=resource(),
                scope_metrics=[
                    m.ScopeMetrics(scope=InstrumentationScope(name="app"), metrics=metrics)
                ],
            )
        ]
    )


def read_status(body: bytes) -> tuple[int, str]:
    """Decode a protobuf google.rpc.Status (code = field 1, message = field 2)."""
    code, message, position = 0, "", 0
    while position < len(body):
        key = body[position]
        position += 1
        value, shift = 0, 0
        while True:
            byte = body[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if key == 0x08:
            code = value
        elif key == 0x12:
            message = body[position : position + value].decode()
            position += value
        else:
            raise AssertionError(f"unexpected field key {key:#x} in a Status")
    return code, message


# --- pure -----------------------------------------------------------------------------------


def test_protobuf_ids_become_hex_and_enums_and_int64s_read_as_in_json() -> None:
    signal = otlp_proto.SIGNALS["traces"]
    parsed = otlp_proto.parse_payload(
        signal, trace_request().SerializeToString(), otlp_proto.PROTOBUF
    )
    assert parsed.rejected == 0
    root, child = parsed.rows
    assert (root.TraceId, root.SpanId, root.ParentSpanId) == (TRACE_ID, ROOT_SPAN, "")
    assert child.ParentSpanId == ROOT_SPAN
    assert root.LinksSpanId == ["b7ad6b7169203331"]
    assert (root.SpanKind, root.StatusCode, child.SpanKind) == ("Server", "Error", "Client")
    assert root.Timestamp == dt.datetime(2026, 11, 24, 7, 0, 0, 210000, tzinfo=dt.UTC)
    assert root.Duration == 20_500_000
    assert root.ResourceAttributes["faas.max_memory"] == "134217728"
    assert root.SpanAttributes["order.items"] == '["a","b"]'
    assert (root.FunctionName, root.RequestId) == ("checkout", RID)


@pytest.mark.parametrize(
    "body",
    [b"\x0a\xff", b'{"resourceSpans": []}', b"\x0a\x03\x0a\x01"],
    ids=["length-past-the-end", "json-sent-as-protobuf", "truncated-nested"],
)
def test_bytes_that_are_not_an_export_request_are_an_otlp_error(body: bytes) -> None:
    with pytest.raises(OtlpError, match="not a protobuf ExportTraceServiceRequest"):
        otlp_proto.parse_payload(otlp_proto.SIGNALS["traces"], body, otlp_proto.PROTOBUF)


def test_an_empty_protobuf_body_is_an_empty_request() -> None:
    for signal in otlp_proto.SIGNALS.values():
        assert otlp_proto.parse_payload(signal, b"", otlp_proto.PROTOBUF).rows == []


# --- endpoints ------------------------------------------------------------------------------


def test_protobuf_traces_are_stored_and_answered_in_protobuf(server: CollectorServer) -> None:
    body = trace_request().SerializeToString()
    status, headers, reply = request(server.url, "POST", "/v1/traces", body, PROTOBUF)
    assert (status, headers["Content-Type"]) == (200, "application/x-protobuf")
    response = ExportTraceServiceResponse.FromString(reply)
    assert not response.HasField("partial_success")
    rows = (
        CollectorQueryClient(server.url)
        .query(
            "SELECT SpanId, ParentSpanId, SpanKind, StatusCode, RequestId, FunctionName,"
            " Events.Name, Links.TraceId FROM otel_traces WHERE TraceId = {t:String}"
            " ORDER BY Timestamp",
            {"t": TRACE_ID},
        )
        .rows
    )
    assert rows == [
        (ROOT_SPAN, "", "Server", "Error", RID, "checkout", ["exception"],
         ["0af7651916cd43dd8448eb211c80319c"]),
        (CHILD_SPAN, ROOT_SPAN, "Client", "Unset", RID, "checkout", [], []),
    ]  # fmt: skip


def test_gzipped_protobuf_logs_are_stored(server: CollectorServer) -> None:
    body = gzip.compress(logs_request().SerializeToString())
    status, headers, reply = request(
        server.url, "POST", "/v1/logs", body, {**PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert status == 200
    assert not ExportLogsServiceResponse.FromString(reply).HasField("partial_success")
    rows = (
        CollectorQueryClient(server.url)
        .query(
            "SELECT SeverityText, SeverityNumber, Body, TraceId, SpanId, TraceFlags, RequestId,"
            " Timestamp FROM otel_logs ORDER BY Timestamp"
        )
        .rows
    )
    assert rows[0][:7] == ("ERROR", 17, "payment declined", TRACE_ID, ROOT_SPAN, 1, RID)
    # No time: the observed time stands in.
    assert rows[1][2] == "retrying"
    assert rows[1][7] == dt.datetime(2026, 11, 24, 7, 0, 0, 216000, tzinfo=dt.UTC)


def test_protobuf_metrics_of_every_kind_are_stored(server: CollectorServer) -> None:
    body = metrics_request().SerializeToString()
    status, _, reply = request(server.url, "POST", "/v1/metrics", body, PROTOBUF)
    assert status == 200
    assert not ExportMetricsServiceResponse.FromString(reply).HasField("partial_success")
    rows = (
        CollectorQueryClient(server.url)
        .query(
            "SELECT MetricName, MetricType, Value, Count, Sum, Min, Max, BucketCounts,"
            " ExplicitBounds, Quantiles, QuantileValues, AggregationTemporality, IsMonotonic,"
            " Attributes, FunctionName FROM otel_metrics ORDER BY MetricName"
        )
        .rows
    )
    assert rows == [
        ("http.server.duration", "Histogram", 0.0, 6, 61.5, 1.5, 30.0, [2, 3, 1], [5.0, 25.0],
         [], [], "Delta", False, {}, "checkout"),
        ("latency", "Summary", 0.0, 10, 100.0, None, None, [], [], [0.5, 0.99], [8.0, 40.0],
         "Unspecified", False, {}, "checkout"),
        ("orders", "Sum", 42.0, 0, 0.0, None, None, [], [], [], [], "Cumulative", True,
         {"region": "eu"}, "checkout"),
        ("payload.size", "ExponentialHistogram", 0.0, 4, 4096.0, 512.0, 2048.0, [], [], [], [],
         "Unspecified", False, {}, "checkout"),
        ("queue.depth", "Gauge", 3.5, 0, 0.0, None, None, [], [], [], [], "Unspecified", False,
         {}, "checkout"),
    ]  # fmt: skip


def test_partially_invalid_protobuf_export_answers_a_protobuf_partial_success(
    server: CollectorServer,
) -> None:
    export = trace_request()
    export.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01\x02\x03"  # 3 bytes
    status, _, reply = request(
        server.url, "POST", "/v1/traces", export.SerializeToString(), PROTOBUF
    )
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(reply).partial_success
    assert partial.rejected_spans == 1
    assert "spans[1].traceId" in partial.error_message
    count = CollectorQueryClient(server.url).query("SELECT count() FROM otel_traces").scalar()
    assert count == 1


def test_bad_protobuf_is_400_with_a_protobuf_status(server: CollectorServer) -> None:
    status, headers, reply = request(server.url, "POST", "/v1/metrics", b"\x0a\xff", PROTOBUF)
    assert (status, headers["Content-Type"]) == (400, "application/x-protobuf")
    code, message = read_status(reply)
    assert code == 3  # INVALID_ARGUMENT
    assert "not a protobuf ExportMetricsServiceRequest" in message


def test_bad_gzip_and_gzip_bombs_are_refused_in_protobuf(store: Store) -> None:
    with CollectorServer(store, port=0, max_decompressed_bytes=10_000) as small:
        headers = {**PROTOBUF, "Content-Encoding": "gzip"}
        status, _, reply = request(small.url, "POST", "/v1/traces", b"not gzip", headers)
        assert status == 400
        assert "gzip" in read_status(reply)[1]
        bomb = gzip.compress(b"\x00" * 1_000_000)
        status, _, reply = request(small.url, "POST", "/v1/traces", bomb, headers)
        assert status == 413
        assert read_status(reply)[0] == 8  # RESOURCE_EXHAUSTED


def test_missing_token_is_401_in_the_requests_encoding(store: Store) -> None:
    with CollectorServer(store, port=0, ingest_token="s3cret") as secured:
        body = trace_request().SerializeToString()
        status, headers, reply = request(secured.url, "POST", "/v1/traces", body, PROTOBUF)
        assert (status, headers["Content-Type"]) == (401, "application/x-protobuf")
        assert read_status(reply)[0] == 16  # UNAUTHENTICATED
        status, _, _ = request(
            secured.url,
            "POST",
            "/v1/traces",
            body,
            {**PROTOBUF, "Authorization": "Bearer s3cret"},
        )
        assert status == 200


def test_an_identical_retried_export_is_stored_once(server: CollectorServer) -> None:
    body = trace_request().SerializeToString()
    for _ in range(2):
        assert request(server.url, "POST", "/v1/traces", body, PROTOBUF)[0] == 200
    # A different export (another trace) is not mistaken for a retry.
    other = trace_request(trace_id="ab" * 16).SerializeToString()
    assert request(server.url, "POST", "/v1/traces", other, PROTOBUF)[0] == 200
    count = CollectorQueryClient(server.url).query("SELECT count() FROM otel_traces").scalar()
    assert count == 4


class _DownStore:
    url = "http://127.0.0.1:1"
    database = "lambdascope"

    def write_otlp(self, table: str, rows: object) -> int:
        from lambdascope.collector.store import StoreError

        raise StoreError("cannot reach the ClickHouse server at http://127.0.0.1:1")

    def write_many(self, batches: object) -> list[object]:
        raise AssertionError("not used")


def test_store_down_is_503_with_retry_after_in_protobuf() -> None:
    with CollectorServer(_DownStore(), port=0) as down:  # type: ignore[arg-type]
        body = trace_request().SerializeToString()
        status, headers, reply = request(down.url, "POST", "/v1/traces", body, PROTOBUF)
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        code, message = read_status(reply)
        assert code == 14  # UNAVAILABLE
        assert "nothing was stored" in message
