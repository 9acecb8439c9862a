"""OTLP exports the extension forwards undecoded in its batches' ``otlp[]`` items
(extension/README.md): decoded into otel_* rows under the batch's function and invocation,
stored exactly once with the batch, a malformed item rejected alone."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.otlp_batch import BatchWithOtlp, attach, decode_items
from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store
from lambdascope.extension.batch import build_batch_json, environment_info
from lambdascope.extension.otlp import otlp_item
from lambdascope.query import CollectorQueryClient
from tests.collector.conftest import load_event
from tests.collector.test_otlp_proto import (
    RID,
    TRACE_ID,
    logs_request,
    metrics_request,
    trace_request,
)
from tests.collector.test_server import INGEST, request

OTHER_RID = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def item(
    signal: str,
    body: bytes,
    *,
    content_type: str = PROTOBUF,
    gzipped: bool = True,
    request_id: str | None = OTHER_RID,
) -> dict[str, Any]:
    """An item exactly as the extension's receiver builds it."""
    payload = gzip.compress(body) if gzipped else body
    return otlp_item(
        signal, content_type, "gzip" if gzipped else "", request_id, 1795503600300, payload
    )


def json_traces(request_id: str | None) -> bytes:
    raw = load_event("otlp_traces")
    raw["resourceSpans"][0]["resource"]["attributes"][1]["value"]["stringValue"] = "not-used"
    spans = raw["resourceSpans"][0]["scopeSpans"][0]["spans"]
    if request_id is None:  # the SDK did not tag the span with faas.invocation_id
        spans[0]["attributes"] = spans[0]["attributes"][1:]
    return json.dumps(raw).encode()


def batch_body(batch_id: str, items: list[dict[str, Any]]) -> bytes:
    environment = environment_info(
        {"functionName": "checkout-fn", "functionVersion": "7"},
        {"AWS_REGION": "eu-west-1"},
        "ab" * 16,
        "x86_64",
    )
    return build_batch_json(
        batch_id, 1795503600500, {"name": "lambdascope"}, environment, None, [], [], otlp=items
    )


# --- pure -----------------------------------------------------------------------------------


def test_items_in_both_encodings_decode_under_the_batchs_function() -> None:
    decoded = decode_items(
        [
            item("traces", trace_request().SerializeToString()),
            item("logs", json.dumps({"resourceLogs": []}).encode(), content_type=JSON),
            item("metrics", metrics_request().SerializeToString(), gzipped=False),
            item("traces", json_traces(None), content_type=JSON, request_id=RID),
        ],
        "checkout-fn",
    )
    assert decoded.rejected == []
    spans = decoded.rows["otel_traces"]
    assert {row.FunctionName for row in spans} == {"checkout-fn"}
    # A span's own faas.invocation_id wins, then its parent's; a span without either gets the
    # item's request id (the extension's guess of the open invocation).
    assert [(row.SpanId, row.RequestId) for row in spans] == [
        ("eee19b7ec3c1b174", RID),  # tagged, the item said OTHER_RID
        ("0102030405060708", RID),  # its child, untagged: the parent's, not the guess
        ("eee19b7ec3c1b174", RID),  # untagged, the item said RID
        ("0102030405060708", RID),
    ]
    assert len(decoded.rows["otel_metrics"]) == 5
    assert decoded.rows["otel_logs"] == []


def test_an_item_without_a_request_id_keeps_rows_untagged() -> None:
    untagged = item("traces", json_traces(None), request_id=None, content_type=JSON)
    decoded = decode_items([untagged], "checkout-fn")
    assert [row.RequestId for row in decoded.rows["otel_traces"]] == ["", ""]


def _bomb() -> dict[str, Any]:
    return item("traces", b"\x00" * 2_000_000)


@pytest.mark.parametrize(
    ("bad", "field", "problem"),
    [
        ("not an object", "otlp[1]", "must be an object"),
        ({**item("traces", b""), "signal": "profiles"}, "otlp[1].signal", "'profiles'"),
        ({**item("traces", b""), "signal": ["traces"]}, "otlp[1].signal", "['traces']"),
        ({**item("traces", b""), "body_b64": "%%%"}, "otlp[1].body_b64", "not valid base64"),
        ({**item("traces", b""), "body_b64": None}, "otlp[1].body_b64", "a base64 string"),
        (
            {**item("traces", b"\x0a\x00", gzipped=False), "content_encoding": "gzip"},
            "otlp[1].body_b64",
            "not valid gzip",
        ),
        ({**item("traces", b""), "content_encoding": "br"}, "otlp[1].content_encoding", "'br'"),
        ({**item("traces", b""), "content_type": None}, "otlp[1].content_type", "non-empty"),
        (item("traces", b"\x0a\xff"), "otlp[1]", "not a protobuf ExportTraceServiceRequest"),
        (item("logs", b"[1]", content_type=JSON), "otlp[1]", "OTLP/JSON object"),
        (item("logs", b"{}", content_type="text/plain"), "otlp[1]", "is not OTLP"),
        (_bomb(), "otlp[1].body_b64", "decompresses to more than 1000000 bytes"),
    ],
)
def test_a_malformed_item_is_rejected_alone_and_named(bad: Any, field: str, problem: str) -> None:
    good = item("traces", trace_request().SerializeToString())
    decoded = decode_items([good, bad, good], "checkout-fn", max_item_bytes=1_000_000)
    assert len(decoded.rows["otel_traces"]) == 4
    assert len(decoded.rejected) == 1
    assert decoded.rejected[0][0] == field
    assert problem in decoded.rejected[0][1]


def test_all_items_together_are_bounded_too() -> None:
    good = item("traces", trace_request().SerializeToString())
    size = len(trace_request().SerializeToString())
    decoded = decode_items([good, good, good], "f", max_total_bytes=2 * size + 10)
    assert len(decoded.rows["otel_traces"]) == 4
    assert [field for field, _ in decoded.rejected] == ["otlp[2].body_b64"]


def test_partly_invalid_spans_in_an_item_keep_the_rest_and_say_so() -> None:
    export = trace_request()
    export.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01"
    decoded = decode_items([item("traces", export.SerializeToString())], "f")
    assert len(decoded.rows["otel_traces"]) == 1
    assert decoded.rejected[0][0] == "otlp[0]"
    assert decoded.rejected[0][1].startswith("1 spans rejected: ")


def test_otlp_that_is_not_a_list_is_one_rejection() -> None:
    decoded = decode_items({"signal": "traces"}, "f")
    assert decoded.rejected == [("otlp", "must be a list of export requests, got dict")]


def test_attach_adds_rows_and_rejections_to_the_normalised_batch() -> None:
    raw = json.loads(batch_body("b1", [item("traces", b"\x0a\xff")]))
    raw["telemetry"] = [{"type": "platform.start"}]  # no time: a rejected event
    batch = attach(normalize_batch(raw), raw)
    assert isinstance(batch, BatchWithOtlp)
    assert [field for field, _ in batch.rejected] == ["telemetry[0].time", "otlp[0]"]
    plain = normalize_batch(load_event("timeout"))
    assert attach(plain, load_event("timeout")) is plain


# --- through the collector ------------------------------------------------------------------


def post_batch(server: CollectorServer, body: bytes) -> tuple[int, Any]:
    status, _, reply = request(
        server.url,
        "POST",
        INGEST,
        gzip.compress(body),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    return status, reply


def test_a_batchs_otlp_items_land_in_the_otel_tables(server: CollectorServer) -> None:
    items = [
        item("traces", trace_request(request_id=None).SerializeToString(), request_id=RID),
        item("logs", logs_request().SerializeToString()),
        item("metrics", metrics_request().SerializeToString(), gzipped=False),
        {**item("traces", b""), "body_b64": "%%%"},
    ]
    status, reply = post_batch(server, batch_body("b" * 32, items))
    assert status == 200
    assert reply["rejected_events"] == [
        {"field": "otlp[3].body_b64", "error": "is not valid base64"}
    ]
    client = CollectorQueryClient(server.url)
    spans = client.query(
        "SELECT SpanName, FunctionName, RequestId FROM otel_traces WHERE TraceId = {t:String}"
        " ORDER BY Timestamp",
        {"t": TRACE_ID},
    ).rows
    assert spans == [
        ("app.handler", "checkout-fn", RID),
        ("DynamoDB.PutItem", "checkout-fn", RID),
    ]
    logs = client.query("SELECT FunctionName, RequestId FROM otel_logs ORDER BY Timestamp").rows
    # The first record names its invocation itself; the second gets the item's request id.
    assert logs == [("checkout-fn", RID), ("checkout-fn", OTHER_RID)]
    assert client.query("SELECT count() FROM otel_metrics").scalar() == 5


def test_a_retried_batch_stores_its_spans_once(server: CollectorServer) -> None:
    body = batch_body("c" * 32, [item("traces", trace_request().SerializeToString())])
    first = post_batch(server, body)
    again = post_batch(server, body)
    assert (first[0], first[1]["duplicate"], again[0], again[1]["duplicate"]) == (
        200,
        False,
        200,
        True,
    )
    count = CollectorQueryClient(server.url).query("SELECT count() FROM otel_traces").scalar()
    assert count == 2


def test_a_retry_after_a_lost_batch_record_stores_the_spans_once(store: Store) -> None:
    # The batch's otel rows were committed but its `batches` row was not (the collector died
    # in between): the retry is written again, and the insert's deduplication token (the
    # batch id) drops the rows already there.
    raw = json.loads(batch_body("d" * 32, [item("traces", trace_request().SerializeToString())]))
    batch = attach(normalize_batch(raw), raw)
    assert not store.write(batch).duplicate
    store._client.command("TRUNCATE TABLE batches")
    assert not store.write(batch).duplicate
    assert store._client.query("SELECT count() FROM otel_traces").result_rows == [(2,)]
