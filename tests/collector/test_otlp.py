"""OTLP/HTTP JSON: parsing into otel_traces / otel_logs rows, and the endpoints.

Protobuf is in test_otlp_proto.py, metrics in test_otlp_metrics.py, the extension batches'
``otlp[]`` items in test_otlp_batch.py."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

import pytest

from lambdascope.collector.otlp import OtlpError, parse_logs, parse_traces
from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store
from lambdascope.query import CollectorQueryClient
from tests.collector.conftest import load_event
from tests.collector.test_server import post_json, request

RID = "8f5a2c1e-1111-4c3d-9e8f-0a1b2c3d4e5f"
TRACE_ID = "5b8efff798038103d269b633813fc60c"


def spans(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return raw["resourceSpans"][0]["scopeSpans"][0]["spans"]


def test_spans_keep_ids_times_kinds_status_and_attributes() -> None:
    parsed = parse_traces(load_event("otlp_traces"))
    assert (parsed.rejected, len(parsed.rows)) == (0, 2)
    root, child = parsed.rows
    assert (root.TraceId, root.SpanId, root.ParentSpanId) == (TRACE_ID, "eee19b7ec3c1b174", "")
    assert root.Timestamp == dt.datetime(2026, 11, 24, 7, 0, 0, 210000, tzinfo=dt.UTC)
    assert root.Duration == 20_500_000  # nanoseconds
    assert (root.SpanKind, root.StatusCode, root.StatusMessage) == (
        "Server",
        "Error",
        "payment declined",
    )
    assert (root.ServiceName, root.FunctionName, root.RequestId) == ("checkout", "checkout", RID)
    assert root.SpanAttributes["faas.coldstart"] == "true"
    assert root.SpanAttributes["order.items"] == '["a","b"]'
    assert root.ResourceAttributes["faas.max_memory"] == "134217728"
    assert (root.EventsName, root.EventsAttributes) == (
        ["exception"],
        [{"exception.type": "ValueError"}],
    )
    assert root.LinksSpanId == ["b7ad6b7169203331"]
    # Enum names and integer times sent as JSON numbers are accepted too.
    assert (child.SpanKind, child.StatusCode, child.Duration) == ("Client", "Unset", 8_000_000)
    assert child.ParentSpanId == "eee19b7ec3c1b174"


def test_descendants_of_the_invocation_span_inherit_its_request_id() -> None:
    raw = load_event("otlp_traces")
    root, child = spans(raw)
    grandchild = {**child, "spanId": "0a0b0c0d0e0f1011", "parentSpanId": child["spanId"]}
    orphan = {**child, "spanId": "1112131415161718", "parentSpanId": "ffffffffffffffff"}
    other_trace = {**child, "spanId": "2122232425262728", "traceId": "1" * 32}
    looped = {**child, "spanId": "3132333435363738", "parentSpanId": "3132333435363738"}
    spans(raw).extend([grandchild, orphan, other_trace, looped])
    parsed = parse_traces(raw)
    assert [row.RequestId for row in parsed.rows] == [RID, RID, RID, "", "", ""]


def test_base64_ids_from_protobuf_minded_sdks_are_converted_to_hex() -> None:
    raw = load_event("otlp_traces")
    spans(raw)[1]["spanId"] = "AQIDBAUGBwg="
    assert parse_traces(raw).rows[1].SpanId == "0102030405060708"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("traceId", "xyz", "traceId: must be 32 hex digits"),
        ("spanId", None, "traceId and spanId are required"),
        ("startTimeUnixNano", "soon", "startTimeUnixNano: must be an integer"),
    ],
)
def test_invalid_spans_are_rejected_one_by_one(field: str, value: Any, message: str) -> None:
    raw = load_event("otlp_traces")
    spans(raw)[1][field] = value
    parsed = parse_traces(raw)
    assert (parsed.rejected, len(parsed.rows)) == (1, 1)
    assert message in parsed.errors[0]
    assert "resourceSpans[0].scopeSpans[0].spans[1]" in parsed.errors[0]


def test_numbers_json_allows_but_64_bits_do_not_are_rejected_not_a_crash() -> None:
    raw = load_event("otlp_traces")
    spans(raw)[0]["attributes"].append({"key": "huge", "value": {"intValue": float("inf")}})
    spans(raw)[0]["links"] = 7  # not a list: no links
    spans(raw)[1]["endTimeUnixNano"] = 1e999  # what json.loads makes of it: infinity
    parsed = parse_traces(raw)
    assert (parsed.rejected, len(parsed.rows)) == (1, 1)
    assert "endTimeUnixNano: must be an integer" in parsed.errors[0]
    assert parsed.rows[0].SpanAttributes["huge"] == "Infinity"
    assert parsed.rows[0].LinksSpanId == []


@pytest.mark.parametrize(
    "body", [[], {"resourceSpans": {}}, {"resourceSpans": [{"scopeSpans": 3}]}]
)
def test_a_body_that_is_not_an_export_request_is_an_error(body: Any) -> None:
    with pytest.raises(OtlpError):
        parse_traces(body)


def test_empty_request_is_fine() -> None:
    assert parse_traces({}).rows == []
    assert parse_logs({"resourceLogs": []}).rows == []


def test_log_records_keep_severity_body_trace_and_request() -> None:
    parsed = parse_logs(load_event("otlp_logs"))
    assert parsed.rejected == 0
    first, second = parsed.rows
    assert (first.SeverityText, first.SeverityNumber, first.Body) == (
        "ERROR",
        17,
        "payment declined",
    )
    assert (first.TraceId, first.SpanId, first.TraceFlags) == (TRACE_ID, "eee19b7ec3c1b174", 1)
    assert (first.RequestId, first.FunctionName) == (RID, "checkout")
    assert first.LogAttributes == {"faas.invocation_id": RID, "order.id": "o-1"}
    assert (first.ScopeName, first.ScopeVersion) == ("app", "1.2.0")
    # No timeUnixNano: the observed time stands in. A structured body is kept as JSON.
    assert second.Timestamp == dt.datetime(2026, 11, 24, 7, 0, 0, 216000, tzinfo=dt.UTC)
    assert second.SeverityNumber == 9
    assert json.loads(second.Body) == {"event": "retry", "attempt": 2}


def test_out_of_range_severity_is_rejected() -> None:
    raw = load_event("otlp_logs")
    raw["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"] = 99
    parsed = parse_logs(raw)
    assert parsed.rejected == 1
    assert "severityNumber" in parsed.errors[0]


# --- endpoints --------------------------------------------------------------------------------


def test_traces_endpoint_stores_spans_readable_with_the_otel_schema(
    server: CollectorServer,
) -> None:
    status, _, body = post_json(server.url, "/v1/traces", load_event("otlp_traces"))
    assert (status, body) == (200, {})
    client = CollectorQueryClient(server.url)
    rows = client.query(
        "SELECT SpanName, Duration, StatusCode, RequestId, Events.Name FROM otel_traces"
        " WHERE TraceId = {t:String} ORDER BY Timestamp",
        {"t": TRACE_ID},
    ).rows
    assert rows == [
        ("app.handler", 20_500_000, "Error", RID, ["exception"]),
        ("DynamoDB.PutItem", 8_000_000, "Unset", RID, []),  # its parent's request
    ]
    # The trace-id lookup table is kept by a materialized view.
    lookup = client.query(
        "SELECT Start FROM otel_traces_trace_id_ts WHERE TraceId = {t:String}", {"t": TRACE_ID}
    )
    assert lookup.rows == [(dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC),)]


def test_partially_invalid_export_answers_partial_success(server: CollectorServer) -> None:
    raw = load_event("otlp_traces")
    spans(raw)[0]["traceId"] = "nope"
    status, _, body = post_json(server.url, "/v1/traces", raw)
    assert status == 200
    assert body["partialSuccess"]["rejectedSpans"] == 1
    assert "traceId" in body["partialSuccess"]["errorMessage"]
    count = CollectorQueryClient(server.url).query("SELECT count() FROM otel_traces").scalar()
    assert count == 1


def test_logs_endpoint_accepts_gzip(server: CollectorServer) -> None:
    data = gzip.compress(json.dumps(load_event("otlp_logs")).encode())
    status, _, body = request(
        server.url,
        "POST",
        "/v1/logs",
        data,
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert (status, body) == (200, {})
    rows = (
        CollectorQueryClient(server.url)
        .query("SELECT SeverityText, Body FROM otel_logs ORDER BY Timestamp")
        .rows
    )
    assert rows[0] == ("ERROR", "payment declined")


def test_other_content_types_are_415_naming_both_otlp_encodings(server: CollectorServer) -> None:
    status, headers, body = request(
        server.url, "POST", "/v1/traces", b"spans", {"Content-Type": "text/plain"}
    )
    assert status == 415
    assert headers["Content-Type"] == "application/json"
    assert "application/x-protobuf" in body["message"]
    assert "application/json" in body["message"]


def test_otlp_bad_json_and_wrong_shape_are_400_with_a_status(server: CollectorServer) -> None:
    status, _, body = request(
        server.url, "POST", "/v1/logs", b"{", {"Content-Type": "application/json"}
    )
    assert (status, body["code"]) == (400, 3)  # google.rpc.Code INVALID_ARGUMENT
    assert "not valid JSON" in body["message"]
    status, _, body = post_json(server.url, "/v1/logs", {"resourceLogs": "x"})
    assert status == 400
    assert "resourceLogs" in body["message"]


def test_otlp_needs_the_ingest_token(store: Store) -> None:
    with CollectorServer(store, port=0, ingest_token="s3cret") as secured:
        assert post_json(secured.url, "/v1/traces", load_event("otlp_traces"))[0] == 401
        ok = post_json(
            secured.url, "/v1/traces", load_event("otlp_traces"), Authorization="Bearer s3cret"
        )
        assert ok[0] == 200
