"""CloudWatch AWS/Lambda metrics streamed as Firehose HTTP endpoint deliveries."""

from __future__ import annotations

import base64
import gzip
import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lambdascope.emulator.metrics import (
    DataPoint,
    MetricAggregator,
    MetricStreamConfig,
    MetricStreamError,
    backoff_delay,
    delivery_outcome,
    dimension_sets,
    firehose_body,
    firehose_headers,
    metric_record,
    pack_records,
    period_start_ms,
)

from .conftest import function, wait_for

# --- pure parts -------------------------------------------------------------------------------


def test_periods_start_on_the_period_boundary():
    assert period_start_ms(1_764_000_059.999, 60) == 1_764_000_000_000
    assert period_start_ms(1_764_000_060.0, 60) == 1_764_000_060_000
    assert period_start_ms(1_764_000_003.5, 2) == 1_764_000_002_000


def test_aggregator_keeps_min_max_sum_count_per_period_and_dimensions():
    agg = MetricAggregator(60)
    dims = {"FunctionName": "f"}
    agg.add("Duration", dims, 10.0, 1_764_000_001)
    agg.add("Duration", dims, 30.0, 1_764_000_050)
    agg.add("Duration", dims, 5.0, 1_764_000_061)  # next period
    agg.add("Duration", {"FunctionName": "g"}, 7.0, 1_764_000_002)
    closed = agg.drain(now_s=1_764_000_060)
    assert [(p.timestamp_ms, dict(p.dimensions)) for p in closed] == [
        (1_764_000_000_000, {"FunctionName": "f"}),
        (1_764_000_000_000, {"FunctionName": "g"}),
    ]
    f = closed[0]
    assert (f.minimum, f.maximum, f.total, f.count, f.unit) == (10.0, 30.0, 40.0, 2, "Milliseconds")
    rest = agg.drain()  # the open period too (the final flush)
    assert [(p.timestamp_ms, p.total) for p in rest] == [(1_764_000_060_000, 5.0)]
    assert agg.drain() == []


def test_dimension_sets_follow_cloudwatch():
    assert dimension_sets("Invocations", "f", "f") == [
        {"FunctionName": "f"},
        {"FunctionName": "f", "Resource": "f"},
        {},
    ]
    assert dimension_sets("ProvisionedConcurrencyUtilization", "f", "f") == [
        {"FunctionName": "f"},
        {"FunctionName": "f", "Resource": "f"},
    ]
    assert dimension_sets("ClaimedAccountConcurrency", "", "") == [{}]


def test_metric_record_is_the_metric_stream_json_format():
    point = DataPoint(1_764_000_000_000, "Throttles", (("FunctionName", "f"),), "Count", 1, 1, 3, 3)
    record = metric_record(point, stream_name="s", account_id="000000000000", region="eu-west-1")
    assert record == {
        "metric_stream_name": "s",
        "account_id": "000000000000",
        "region": "eu-west-1",
        "namespace": "AWS/Lambda",
        "metric_name": "Throttles",
        "dimensions": {"FunctionName": "f"},
        "timestamp": 1_764_000_000_000,
        "value": {"max": 1, "min": 1, "sum": 3, "count": 3},
        "unit": "Count",
    }


def test_records_are_packed_under_firehose_record_limit():
    lines = ['{"a":' + str(i) + "}" for i in range(5)]  # 8 bytes each with the newline
    assert pack_records(lines, max_bytes=16) == [
        b'{"a":0}\n{"a":1}\n',
        b'{"a":2}\n{"a":3}\n',
        b'{"a":4}\n',
    ]
    assert pack_records([], max_bytes=16) == []


def test_firehose_request_body_and_headers():
    body = firehose_body("rid", 123, [b"x\n"])
    assert body == {"requestId": "rid", "timestamp": 123, "records": [{"data": "eAo="}]}
    config = MetricStreamConfig("http://127.0.0.1:1/v1/firehose", access_key="k", gzip=True)
    headers = firehose_headers(config, "rid")
    assert headers["X-Amz-Firehose-Protocol-Version"] == "1.0"
    assert headers["X-Amz-Firehose-Request-Id"] == "rid"
    assert headers["X-Amz-Firehose-Access-Key"] == "k"
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["X-Amz-Firehose-Source-Arn"].startswith("arn:aws:firehose:us-east-1:")
    no_key = firehose_headers(MetricStreamConfig("http://127.0.0.1:1/"), "rid")
    assert "X-Amz-Firehose-Access-Key" not in no_key and "Content-Encoding" not in no_key


def test_only_200_is_success_and_413_is_permanent():
    assert delivery_outcome(200) == "delivered"
    assert delivery_outcome(413) == "permanent"
    assert [delivery_outcome(s) for s in (202, 204, 400, 429, 500, 503, None)] == ["retry"] * 7


def test_backoff_doubles_from_one_second_with_jitter_and_a_cap():
    rng = random.Random(7)
    for attempt, base in [(0, 1.0), (1, 2.0), (2, 4.0), (10, 120.0)]:
        for _ in range(50):
            assert base * 0.85 <= backoff_delay(attempt, 1.0, rng) <= base * 1.15


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"url": "ftp://x/"}, "url"),
        ({"url": "http://127.0.0.1:1/", "period_s": 0}, "period_s"),
        ({"url": "http://127.0.0.1:1/", "retry_duration_s": -1}, "retry_duration_s"),
    ],
)
def test_bad_metric_stream_config_names_the_field(kwargs, field):
    with pytest.raises(MetricStreamError, match=field):
        MetricStreamConfig(**kwargs)


# --- delivery to a real receiver on loopback ----------------------------------------------------


class Receiver:
    """A Firehose HTTP endpoint that answers `statuses` in turn (then 200) and records all."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                reply = json.dumps({"requestId": self.headers.get("X-Amz-Firehose-Request-Id")})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/firehose"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def points(self) -> list[dict[str, Any]]:
        """Every metric data point delivered with 200 (retried copies counted once)."""
        seen: set[str] = set()
        out = []
        with self.lock:
            requests = list(self.requests)
        for headers, body in requests:
            if headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            parsed = json.loads(body)
            if parsed["requestId"] in seen:
                continue
            seen.add(parsed["requestId"])
            for record in parsed["records"]:
                for line in base64.b64decode(record["data"]).decode().splitlines():
                    out.append(json.loads(line))
        return out


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    statuses = getattr(request, "param", [])
    server = Receiver(statuses)
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def _sum(points: list[dict[str, Any]], metric: str, dimensions: dict[str, str]) -> float:
    return sum(
        p["value"]["sum"]
        for p in points
        if p["metric_name"] == metric and p["dimensions"] == dimensions
    )


@pytest.mark.parametrize("receiver", [[500]], indirect=True)
def test_metrics_reach_a_firehose_endpoint_with_retry_and_throttles(make_emulator, receiver):
    stream = MetricStreamConfig(
        receiver.url, access_key="secret", period_s=1.0, initial_backoff_s=0.05, gzip=True
    )
    emu = make_emulator(
        [
            function("counted", "app.ok"),
            function("failing", "app.raises"),
            function("blocked", "app.ok", reserved_concurrency=0),
        ],
        metric_stream=stream,
    )
    assert emu.invoke("counted").status_code == 200
    assert emu.invoke("counted").status_code == 200
    assert emu.invoke("failing").function_error == "Unhandled"
    throttled = emu.invoke("blocked")
    assert throttled.status_code == 429
    emu.stop()  # the final flush delivers the open period

    # The first delivery was refused with 500 and retried with the same request id.
    first_headers, first_body = receiver.requests[0]
    second_headers, second_body = receiver.requests[1]
    assert first_headers["X-Amz-Firehose-Request-Id"] == second_headers["X-Amz-Firehose-Request-Id"]
    assert first_body == second_body
    assert (
        json.loads(gzip.decompress(first_body))["requestId"]
        == (first_headers["X-Amz-Firehose-Request-Id"])
    )
    for headers, _ in receiver.requests:
        assert headers["X-Amz-Firehose-Protocol-Version"] == "1.0"
        assert headers["X-Amz-Firehose-Access-Key"] == "secret"
        assert headers["Content-Type"] == "application/json"
        assert headers["Content-Encoding"] == "gzip"

    points = receiver.points()
    assert all(p["namespace"] == "AWS/Lambda" and p["timestamp"] % 1000 == 0 for p in points)
    assert _sum(points, "Invocations", {"FunctionName": "counted"}) == 2
    assert _sum(points, "Invocations", {"FunctionName": "counted", "Resource": "counted"}) == 2
    assert _sum(points, "Errors", {"FunctionName": "counted"}) == 0
    assert _sum(points, "Errors", {"FunctionName": "failing"}) == 1
    # A throttled request counts as a Throttle, never as an Invocation or an Error.
    assert _sum(points, "Throttles", {"FunctionName": "blocked"}) == 1
    assert _sum(points, "Invocations", {"FunctionName": "blocked"}) == 0
    assert _sum(points, "Invocations", {}) == 3
    assert _sum(points, "Throttles", {}) == 1
    durations = [p for p in points if p["metric_name"] == "Duration"]
    assert durations and all(p["unit"] == "Milliseconds" for p in durations)
    concurrency = [
        p for p in points if p["metric_name"] == "ConcurrentExecutions" and p["dimensions"] == {}
    ]
    assert concurrency and max(p["value"]["max"] for p in concurrency) >= 1


def test_closed_periods_are_delivered_while_running(make_emulator, receiver):
    stream = MetricStreamConfig(receiver.url, period_s=0.5, initial_backoff_s=0.05)
    emu = make_emulator([function("live", "app.ok")], metric_stream=stream)
    emu.invoke("live")
    # Without stop(): the period closes and its points arrive within about a second.
    wait_for(
        lambda: _sum(receiver.points(), "Invocations", {"FunctionName": "live"}) == 1,
        timeout_s=5.0,
        what="the Invocations data point",
    )


@pytest.mark.parametrize("receiver", [[413]], indirect=True)
def test_413_is_not_retried(make_emulator, receiver):
    stream = MetricStreamConfig(receiver.url, period_s=60, initial_backoff_s=0.05)
    emu = make_emulator([function("big", "app.ok")], metric_stream=stream)
    emu.invoke("big")
    emu.stop()
    assert len(receiver.requests) == 1
    assert emu.metric_stream is not None and emu.metric_stream.deliveries[0].outcome == "permanent"


def test_an_unreachable_endpoint_never_delays_invocations(make_emulator):
    # Nothing listens on port 9 of 127.0.0.1 (discard): every delivery fails and retries.
    stream = MetricStreamConfig(
        "http://127.0.0.1:9/v1/firehose", period_s=0.2, retry_duration_s=0.5, initial_backoff_s=0.1
    )
    emu = make_emulator([function("alone", "app.ok")], metric_stream=stream)
    for _ in range(5):
        assert emu.invoke("alone").status_code == 200
    emu.stop()
    assert emu.metric_stream is not None
    deliveries = emu.metric_stream.deliveries
    assert deliveries and all(d.outcome == "expired" for d in deliveries)
    assert all(d.attempts >= 2 for d in deliveries)


def test_provisioned_concurrency_and_async_metrics(make_emulator, receiver):
    stream = MetricStreamConfig(receiver.url, period_s=60, initial_backoff_s=0.05)
    emu = make_emulator(
        [function("warm", "app.pid", provisioned_concurrency=1, timeout_s=3.0)],
        metric_stream=stream,
    )
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(emu.invoke("warm", b'{"sleep_s": 0.3}')), daemon=True
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 2
    assert emu.invoke("warm", b"{}", invocation_type="Event").status_code == 202
    wait_for(lambda: emu.async_attempts, what="the async invocation")
    emu.stop()
    points = receiver.points()
    fn = {"FunctionName": "warm"}
    assert _sum(points, "ProvisionedConcurrencyInvocations", fn) == 2
    assert _sum(points, "ProvisionedConcurrencySpilloverInvocations", fn) == 1
    assert _sum(points, "AsyncEventsReceived", fn) == 1
    assert _sum(points, "Invocations", fn) == 3
    utilization = [
        p
        for p in points
        if p["metric_name"] == "ProvisionedConcurrencyUtilization" and p["dimensions"] == fn
    ]
    assert utilization and utilization[0]["value"]["max"] == 1.0
    assert utilization[0]["unit"] == "None"
    claimed = [p for p in points if p["metric_name"] == "ClaimedAccountConcurrency"]
    assert claimed and max(p["value"]["max"] for p in claimed) >= 2


def test_post_runtime_extensions_duration_measures_extension_time(
    make_emulator, receiver, recording
):
    stream = MetricStreamConfig(receiver.url, period_s=60, initial_backoff_s=0.05)
    fn = function("ext", "app.ok", recording=recording, environment={"RECORDER_DELAY_S": "0.2"})
    emu = make_emulator([fn], metric_stream=stream)
    result = emu.invoke("ext", b"{}")
    recording.report_for(result.request_id)
    emu.stop()
    points = [
        p
        for p in receiver.points()
        if p["metric_name"] == "PostRuntimeExtensionsDuration"
        and p["dimensions"] == {"FunctionName": "ext"}
    ]
    assert len(points) == 1 and points[0]["unit"] == "Milliseconds"
    assert 150 <= points[0]["value"]["max"] < 1000
