"""The shared read interface: values survive the HTTP hop, and failures say what to do."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lambdascope.query import (
    CollectorQueryClient,
    QueryError,
    StoreUnavailableError,
    jsonable,
    revive,
)


def test_datetimes_survive_the_json_round_trip() -> None:
    moment = dt.datetime(2026, 11, 24, 7, 0, 0, 123000, tzinfo=dt.UTC)
    assert revive(jsonable(moment), "DateTime64(3, 'UTC')") == moment
    assert revive(jsonable(moment), "Nullable(DateTime64(3, 'UTC'))") == moment
    naive = moment.replace(tzinfo=None)
    assert revive(jsonable(naive), "DateTime64(3)") == moment
    assert jsonable(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert jsonable(float("nan")) is None


class _Handler(BaseHTTPRequestHandler):
    status = 200
    reply: dict = {}
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        type(self).seen.append(
            {"body": json.loads(self.rfile.read(length)), "auth": self.headers["Authorization"]}
        )
        body = json.dumps(self.reply).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_collector() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_collector_client_binds_parameters_and_revives_types(fake_collector) -> None:
    url, handler = fake_collector
    handler.reply = {
        "columns": ["request_id", "start_time"],
        "types": ["String", "DateTime64(3, 'UTC')"],
        "rows": [["r-1", "2026-11-24T07:00:00.123000+00:00"]],
    }
    since = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
    result = CollectorQueryClient(url, token="s3cret").query(
        "SELECT 1 WHERE t >= {since:DateTime64(3)}", {"since": since, "fn": "it's"}
    )
    assert result.dicts() == [
        {"request_id": "r-1", "start_time": dt.datetime(2026, 11, 24, 7, 0, 0, 123000, dt.UTC)}
    ]
    sent = handler.seen[0]
    assert sent["auth"] == "Bearer s3cret"
    assert sent["body"]["parameters"] == {"since": "2026-11-24 06:00:00.000000", "fn": "it's"}


def test_refused_query_carries_the_collectors_message(fake_collector) -> None:
    url, handler = fake_collector
    handler.status, handler.reply = 400, {"error": "Unknown column nope"}
    with pytest.raises(QueryError, match="Unknown column nope"):
        CollectorQueryClient(url).query("SELECT nope")


def test_collector_without_its_store_is_unavailable(fake_collector) -> None:
    url, handler = fake_collector
    handler.status, handler.reply = 503, {"error": "store down"}
    with pytest.raises(StoreUnavailableError, match="store down"):
        CollectorQueryClient(url).query("SELECT 1")


def test_unreachable_collector_says_how_to_fix_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreUnavailableError, match="lambdascope collector"):
        CollectorQueryClient(f"http://127.0.0.1:{port}", timeout_s=2).query("SELECT 1")
