"""The collector's HTTP service on 127.0.0.1 with real HTTP requests."""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from lambdascope.collector.batch_rows import NormalizedBatch
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store, StoreError, WriteResult
from lambdascope.query import CollectorQueryClient, DirectQueryClient, QueryError
from tests.collector.conftest import load_event

INGEST = "/v1/extension/batches"
QUERY = "/api/v1/query"
R1 = "8f5a2c1e-1111-4c3d-9e8f-0a1b2c3d4e5f"
R2 = "2a7d9e4b-2222-4f6a-8b1c-3d5e7f9a1b2c"
REPO = Path(__file__).resolve().parents[2]


def request(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Mapping[str, str], Any]:
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        content_type = response.getheader("Content-Type", "")
        payload: Any = json.loads(data) if content_type.startswith("application/json") else data
        # HTTP header names are case-insensitive: so is this mapping.
        return response.status, response.headers, payload
    finally:
        conn.close()


def post_json(
    base_url: str, path: str, body: Any, **headers: str
) -> tuple[int, Mapping[str, str], Any]:
    data = json.dumps(body).encode()
    return request(base_url, "POST", path, data, {"Content-Type": "application/json", **headers})


def test_health_and_readiness(server: CollectorServer) -> None:
    assert request(server.url, "GET", "/healthz")[::2] == (200, {"status": "ok"})
    assert request(server.url, "GET", "/readyz")[0] == 200


def test_valid_batch_is_stored_and_readable_through_the_read_api(server: CollectorServer) -> None:
    status, _, body = post_json(server.url, INGEST, load_event("text_batch_1"))
    assert status == 200
    assert body == {
        "batch_id": "0b6f3c7e9a4d4e1f8c2a5b7d9e0f1a21",
        "accepted_events": 14,
        "ignored_events": 1,
        "duplicate": False,
        "rejected_events": [],
        "rejected_count": 0,
    }
    # Acknowledged means committed: readable at once.
    client = CollectorQueryClient(server.url)
    rows = client.query(
        "SELECT request_id, start_time, status, timeout_ms FROM invocations"
        " WHERE function_name = {fn:String} AND request_id = {rid:String}",
        {"fn": "checkout", "rid": R1},
    ).dicts()
    assert rows == [
        {
            "request_id": R1,
            "start_time": dt.datetime(2026, 11, 24, 7, 0, 0, 210000, tzinfo=dt.UTC),
            "status": "success",
            "timeout_ms": 3000.0,
        }
    ]


def test_a_retried_batch_is_acknowledged_as_duplicate_and_stored_once(
    server: CollectorServer,
) -> None:
    batch = load_event("text_batch_1")
    assert post_json(server.url, INGEST, batch)[2]["duplicate"] is False
    assert post_json(server.url, INGEST, batch)[2]["duplicate"] is True
    count = CollectorQueryClient(server.url).query("SELECT count() FROM logs").scalar()
    assert count == 12


def invocation_view(store: Store) -> list[dict[str, Any]]:
    rows = store.reader().query("SELECT * FROM invocations ORDER BY request_id").dicts()
    return [dict(row) for row in rows]


def test_a_request_split_across_two_batches_merges_in_the_view(
    server: CollectorServer, store: Store, chdb_url: str
) -> None:
    """Each batch stores one merged row per request; the store merges the batches' rows, and
    the result is the same as if every event had come in one batch."""
    first, second = load_event("text_batch_1"), load_event("text_batch_2")
    assert post_json(server.url, INGEST, first)[0] == 200
    assert post_json(server.url, INGEST, second)[0] == 200
    split = invocation_view(store)
    r1 = next(row for row in split if row["request_id"] == R1)
    # start and runtimeDone came in the first batch, the report in the second.
    assert (r1["has_start"], r1["has_runtime_done"], r1["has_report"]) == (1, 1, 1)
    assert (r1["status"], r1["duration_ms"], r1["timeout_ms"]) == ("success", 20.87, 3000.0)

    together = load_event("text_batch_1")
    together["batch_id"] = "0b6f3c7e9a4d4e1f8c2a5b7d9e0f1a99"
    together["sent_at_ms"] = second["sent_at_ms"]
    together["telemetry"] += second["telemetry"]
    other = Store.open(chdb_url, f"{store.database}_together")
    try:
        other.write(normalize_batch(together))
        assert invocation_view(other) == split
    finally:
        other._client.command(f"DROP DATABASE IF EXISTS `{other.database}`")
        other.close()


def test_a_retried_batch_stores_its_merged_rows_once(server: CollectorServer) -> None:
    batch = load_event("text_batch_1")
    post_json(server.url, INGEST, batch)
    client = CollectorQueryClient(server.url)
    query = "SELECT request_id, log_lines, has_invoke FROM invocations ORDER BY request_id"
    before = client.query(query).rows
    assert post_json(server.url, INGEST, batch)[2]["duplicate"] is True
    # log_lines is a sum: a second copy of the rows would double it, even after a merge.
    assert client.query(query).rows == before
    assert sorted(before) == sorted([(R1, 2, 1), (R2, 1, 1)])


def test_gzip_batch_is_accepted(server: CollectorServer) -> None:
    data = gzip.compress(json.dumps(load_event("timeout")).encode())
    status, _, body = request(
        server.url,
        "POST",
        INGEST,
        data,
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert (status, body["accepted_events"]) == (200, 4)
    client = CollectorQueryClient(server.url)
    assert client.query("SELECT status FROM invocations").rows == [("timeout",)]


def test_malformed_json_is_400_saying_where(server: CollectorServer) -> None:
    status, _, body = request(server.url, "POST", INGEST, b'{"batch_id": "x",', {})
    assert status == 400
    assert body["error"].startswith("body is not valid JSON")
    assert "line 1 column 18" in body["error"]


def test_invalid_batch_is_400_naming_the_field(server: CollectorServer) -> None:
    batch = load_event("text_batch_1")
    del batch["environment"]["function_name"]
    status, _, body = post_json(server.url, INGEST, batch)
    assert status == 400
    assert body["field"] == "environment.function_name"
    assert body["error"].startswith("environment.function_name: ")


def test_one_malformed_event_is_named_and_the_rest_of_the_batch_is_stored(
    server: CollectorServer,
) -> None:
    batch = load_event("text_batch_1")
    del batch["telemetry"][6]["record"]["requestId"]
    status, _, body = post_json(server.url, INGEST, batch)
    assert status == 200
    assert body["rejected_count"] == 1
    assert body["rejected_events"] == [
        {"field": "telemetry[6].record.requestId", "error": "is required"}
    ]
    client = CollectorQueryClient(server.url)
    assert client.query("SELECT count() FROM logs").scalar() > 0


def test_values_the_store_cannot_hold_are_named_and_the_rest_is_stored(
    server: CollectorServer,
) -> None:
    # Each of these used to fail the whole insert, so the batch was answered 503 (or 500) on
    # every retry and none of it was ever stored.
    batch = load_event("text_batch_1")
    batch["telemetry"][7]["time"] = "9999-12-31T23:59:59.999Z"
    batch["telemetry"][9]["record"]["metrics"]["producedBytes"] = -1
    batch["invocations"][1]["deadline_ms"] = 1e30
    status, _, body = post_json(server.url, INGEST, batch)
    assert status == 200
    assert [e["field"] for e in body["rejected_events"]] == [
        "telemetry[7].time",
        "telemetry[9].record.metrics.producedBytes",
        "invocations[1].deadline_ms",
    ]
    client = CollectorQueryClient(server.url)
    assert client.query("SELECT count() FROM logs").scalar() > 0
    status, _, body = post_json(server.url, INGEST, {**batch, "sent_at_ms": 1e20})
    assert status == 400
    assert body["field"] == "batch.sent_at_ms"


def test_bad_gzip_is_400(server: CollectorServer) -> None:
    status, _, body = request(
        server.url, "POST", INGEST, b"not gzip at all", {"Content-Encoding": "gzip"}
    )
    assert status == 400
    assert "gzip" in body["error"]


def test_gzip_bomb_is_413(store: Store) -> None:
    with CollectorServer(store, port=0, max_decompressed_bytes=1_000_000) as small:
        bomb = gzip.compress(b" " * 20_000_000)
        status, _, body = request(small.url, "POST", INGEST, bomb, {"Content-Encoding": "gzip"})
    assert status == 413
    assert "decompresses to more than 1000000 bytes" in body["error"]


def test_oversized_body_is_413_without_reading_it(store: Store) -> None:
    with CollectorServer(store, port=0, max_body_bytes=1000) as small:
        status, headers, body = request(small.url, "POST", INGEST, b"x" * 5000, {})
        assert status == 413
        assert "exceeds the limit of 1000" in body["error"]
        assert headers.get("Connection") == "close"
        # The server is still fine for the next client.
        assert request(small.url, "GET", "/healthz")[0] == 200


def test_ingest_token_is_required_when_configured(store: Store) -> None:
    batch = load_event("timeout")
    with CollectorServer(store, port=0, ingest_token="s3cret") as secured:
        missing = post_json(secured.url, INGEST, batch)
        wrong = post_json(secured.url, INGEST, batch, Authorization="Bearer nope")
        right = post_json(secured.url, INGEST, batch, Authorization="Bearer s3cret")
        # The read API has its own token, unset here.
        readable = CollectorQueryClient(secured.url).query("SELECT count() FROM invocations")
    assert (missing[0], wrong[0], right[0]) == (401, 401, 200)
    assert "bearer token" in wrong[2]["error"]
    assert missing[1]["WWW-Authenticate"] == "Bearer"
    assert readable.scalar() == 1


def test_read_token_is_required_when_configured(store: Store) -> None:
    with CollectorServer(store, port=0, read_token="r34d") as secured:
        with pytest.raises(QueryError, match="401"):
            CollectorQueryClient(secured.url).query("SELECT 1")
        with pytest.raises(QueryError, match="401"):
            CollectorQueryClient(secured.url, token="bad").query("SELECT 1")
        assert CollectorQueryClient(secured.url, token="r34d").query("SELECT 1").scalar() == 1


def test_read_api_binds_parameters_server_side(server: CollectorServer) -> None:
    tricky = "o'brien\\\"; DROP TABLE logs; --"
    result = CollectorQueryClient(server.url).query(
        "SELECT {s:String} AS s, {n:UInt32} + 1 AS n, toDateTime64({t:String}, 3, 'UTC') AS t",
        {"s": tricky, "n": 41, "t": "2026-11-24 07:00:00.123"},
    )
    assert result.columns == ("s", "n", "t")
    assert result.rows == [(tricky, 42, dt.datetime(2026, 11, 24, 7, 0, 0, 123000, tzinfo=dt.UTC))]
    assert result.types[2] == "DateTime64(3, 'UTC')"


def test_bad_sql_is_400_with_the_stores_message(server: CollectorServer) -> None:
    status, _, body = post_json(server.url, QUERY, {"sql": "SELECT count( FROM logs"})
    assert status == 400
    assert "cannot parse the query" in body["error"]
    status, _, body = post_json(server.url, QUERY, {"sql": "SELECT nope FROM invocations"})
    assert status == 400
    assert "nope" in body["error"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([1], "JSON object"),
        ({"parameters": {}}, "sql: must be a non-empty string"),
        ({"sql": "SELECT 1", "parameters": [1]}, "parameters: must be a JSON object"),
    ],
)
def test_malformed_query_requests_are_400(
    server: CollectorServer, body: Any, fragment: str
) -> None:
    status, _, reply = post_json(server.url, QUERY, body)
    assert status == 400
    assert fragment in reply["error"]


def test_writes_through_the_read_api_are_refused_and_leave_everything_working(
    server: CollectorServer,
) -> None:
    client = CollectorQueryClient(server.url)
    for sql in (
        "INSERT INTO logs (message) VALUES ('forged')",
        "DROP TABLE logs",
        "ALTER TABLE logs DELETE WHERE 1",
    ):
        status, _, body = post_json(server.url, QUERY, {"sql": sql})
        assert (status, body["reason"]) == (403, "statement"), sql
        assert "readonly" in body["error"], sql
    for sql, reason in (
        ("SELECT 1 SETTINGS readonly = 0", "settings"),
        ("SELECT * FROM file('/etc/passwd', LineAsString)", "table_function"),
    ):
        status, _, body = post_json(server.url, QUERY, {"sql": sql})
        assert (status, body["reason"]) == (403, reason), sql
    # Reads and ingest still work afterwards, and nothing was written.
    assert client.query("SELECT count() FROM logs").scalar() == 0
    assert post_json(server.url, INGEST, load_event("timeout"))[0] == 200
    assert client.query("SELECT count() FROM logs").scalar() == 4


def test_text_that_is_not_valid_unicode_is_stored_with_replacement_characters(
    server: CollectorServer,
) -> None:
    batch = load_event("timeout")
    # JSON may escape lone surrogates, which UTF-8 cannot encode.
    batch["telemetry"][1]["record"] = "bad \ud800 surrogate\n"
    batch["environment"]["region"] = "us-\udfffeast-1"
    assert post_json(server.url, INGEST, batch)[0] == 200
    messages = CollectorQueryClient(server.url).query("SELECT message FROM logs").rows
    assert ("bad \ufffd surrogate",) in messages


def test_a_body_that_never_arrives_times_out_with_408(
    server: CollectorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "body_timeout_s", 0.3)
    parts = urllib.parse.urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/extension/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 408")
    assert request(server.url, "GET", "/healthz")[0] == 200


def test_unknown_paths_and_methods(server: CollectorServer) -> None:
    assert request(server.url, "GET", "/nope")[0] == 404
    assert request(server.url, "POST", "/nope", b"{}")[0] == 404
    status, headers, _ = request(server.url, "GET", INGEST)
    assert (status, headers["Allow"]) == (405, "POST")


def test_metrics_count_batches_and_rows(server: CollectorServer) -> None:
    post_json(server.url, INGEST, load_event("timeout"))
    post_json(server.url, INGEST, load_event("timeout"))
    request(server.url, "POST", INGEST, b"{", {})
    status, headers, text = request(server.url, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    lines = text.decode().splitlines()
    assert 'lambdascope_batches_total{outcome="stored"} 1' in lines
    assert 'lambdascope_batches_total{outcome="duplicate"} 1' in lines
    assert 'lambdascope_rows_written_total{table="logs"} 4' in lines
    assert f'lambdascope_requests_total{{code="400",path="{INGEST}"}} 1' in lines
    assert "lambdascope_write_queue_depth 0" in lines
    assert "lambdascope_write_queue_rows 0" in lines
    assert "lambdascope_write_queue_rows_capacity 250000" in lines


class _FailingStore:
    """A store whose backend is down."""

    url = "http://127.0.0.1:1"
    database = "lambdascope"

    def write_many(self, batches: Sequence[NormalizedBatch]) -> list[WriteResult]:
        raise StoreError("cannot reach the ClickHouse server at http://127.0.0.1:1")

    def ping(self) -> bool:
        return False

    def reader(self) -> DirectQueryClient:
        raise AssertionError("not used")


def test_store_failure_is_503_with_retry_after_never_an_ack() -> None:
    with CollectorServer(_FailingStore(), port=0) as failing:  # type: ignore[arg-type]
        status, headers, body = post_json(failing.url, INGEST, load_event("timeout"))
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        assert "nothing was stored" in body["error"]
        assert request(failing.url, "GET", "/readyz")[0] == 503
        assert request(failing.url, "GET", "/healthz")[0] == 200


class _SlowStore(_FailingStore):
    """A store whose writes wait until the test releases them."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.groups: list[list[str]] = []

    def write_many(self, batches: Sequence[NormalizedBatch]) -> list[WriteResult]:
        self.entered.set()
        self.release.wait(timeout=10)
        self.groups.append([b.batch_id for b in batches])
        return [WriteResult(b.batch_id, duplicate=False) for b in batches]

    def ping(self) -> bool:
        return True


@pytest.fixture
def slow_server() -> Iterator[tuple[CollectorServer, _SlowStore]]:
    store = _SlowStore()
    server = CollectorServer(store, port=0, max_pending_writes=1).start()  # type: ignore[arg-type]
    try:
        yield server, store
    finally:
        store.release.set()
        server.stop()


def test_full_write_queue_answers_503_and_a_slow_write_blocks_no_one(
    slow_server: tuple[CollectorServer, _SlowStore],
) -> None:
    server, store = slow_server
    replies: dict[str, Any] = {}

    def send(name: str) -> None:
        replies[name] = post_json(server.url, INGEST, load_event(name))

    senders = [threading.Thread(target=send, args=(name,)) for name in ("timeout", "json_logs")]
    senders[0].start()
    try:
        assert store.entered.wait(timeout=10)
        # The first write is in flight; the second batch waits in the queue (capacity 1).
        senders[1].start()
        deadline = time.monotonic() + 10
        while server.writer.pending < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.writer.pending == 1
        # Other requests are still served...
        assert request(server.url, "GET", "/healthz")[0] == 200
        # ...and a batch beyond the queue bound is told to come back.
        status, headers, body = post_json(server.url, INGEST, load_event("text_batch_1"))
        assert status == 503 and headers["Retry-After"] == "2"
        assert "busy" in body["error"]
        assert replies == {}  # nothing acknowledged before its commit
    finally:
        store.release.set()
        for sender in senders:
            sender.join(timeout=10)
    assert replies["timeout"][0] == replies["json_logs"][0] == 200


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_run_collector_serves_until_sigterm(tmp_path: Path) -> None:
    code = (
        "from lambdascope.cli.collector import run_collector; "
        f"run_collector('chdb://{tmp_path / 'store'}', port=0, ingest_token='t')"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("lambdascope collector listening on http://127.0.0.1:"), line
        url = line.split()[4]
        batch = load_event("timeout")
        assert post_json(url, INGEST, batch, Authorization="Bearer t")[0] == 200
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()


def test_run_collector_exits_2_with_the_fix_when_the_store_cannot_open() -> None:
    code = (
        "from lambdascope.cli.collector import run_collector; "
        "run_collector('chdb://relative/x', port=0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=_child_env(),
    )
    assert done.returncode == 2
    assert "use chdb:///absolute/path" in done.stderr


def test_stop_lets_a_batch_in_flight_finish_and_answers_it(
    slow_server: tuple[CollectorServer, _SlowStore],
) -> None:
    """SIGTERM (run_collector calls stop) drains: a batch whose write is under way when the
    collector is told to stop is still written and acknowledged."""
    server, store = slow_server
    replies: dict[str, Any] = {}
    sender = threading.Thread(
        target=lambda: replies.setdefault("r", post_json(server.url, INGEST, load_event("timeout")))
    )
    sender.start()
    assert store.entered.wait(timeout=10)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    time.sleep(0.3)  # stop() is now waiting for the request in flight
    assert stopper.is_alive() and replies == {}
    store.release.set()
    stopper.join(timeout=15)
    sender.join(timeout=15)
    assert not stopper.is_alive()
    assert replies["r"][0] == 200
    assert store.groups == [[load_event("timeout")["batch_id"]]]
