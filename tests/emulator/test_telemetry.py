"""Telemetry delivery to real loopback HTTP listeners: batching, replay, failures."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lambdascope.emulator import events
from lambdascope.emulator.telemetry import Subscriber, TelemetryHub

from .conftest import wait_for


class Listener:
    """A Telemetry listener that stores each POSTed batch; `status`/`delay_s` misbehave."""

    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.batches: list[list[dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if delay_s:
                    time.sleep(delay_s)
                outer.batches.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [e for batch in self.batches for e in batch]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    try:
        yield made
    finally:
        for listener in made:
            listener.close()


@pytest.fixture
def subscribers() -> Iterator[list[Subscriber]]:
    made: list[Subscriber] = []
    try:
        yield made
    finally:
        for sub in made:
            sub.stop()


def subscription(types=("platform", "function", "extension"), **buffering) -> events.Subscription:
    body = {
        "schemaVersion": "2022-12-13",
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:1/t"},
        "types": list(types),
        "buffering": buffering,
    }
    return events.parse_subscription(body)


def subscriber(made, port, **kwargs) -> Subscriber:
    types = kwargs.pop("types", ("platform", "function", "extension"))
    sub = Subscriber("ext", subscription(types, **kwargs), "127.0.0.1", port, "/t")
    made.append(sub)
    return sub


def line(i: int) -> dict:
    return events.log_record("function", f"line {i}", time.time(), "Text")


def test_batch_goes_out_timeout_ms_after_its_first_event(listeners, subscribers):
    listeners.append(Listener())
    sub = subscriber(subscribers, listeners[0].port, timeoutMs=25)
    for i in range(3):
        sub.put(line(i))
    wait_for(lambda: listeners[0].batches, 2.0, "a batch")
    assert [e["record"] for e in listeners[0].batches[0]] == ["line 0\n", "line 1\n", "line 2\n"]


def test_max_items_sends_full_batches_and_flush_sends_the_rest(listeners, subscribers):
    listeners.append(Listener())
    sub = subscriber(subscribers, listeners[0].port, timeoutMs=30_000, maxItems=1000)
    for i in range(2500):
        sub.put(line(i))
    wait_for(lambda: len(listeners[0].batches) == 2, 5.0, "two full batches")
    assert [len(b) for b in listeners[0].batches] == [1000, 1000]
    assert sub.flush(2.0)
    assert [len(b) for b in listeners[0].batches] == [1000, 1000, 500]
    assert [e["record"] for e in listeners[0].events()][-1] == "line 2499\n"


def test_unreachable_subscriber_loses_its_batch_and_others_still_get_theirs(listeners, subscribers):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    listeners.append(Listener())
    hub = TelemetryHub()
    dead = Subscriber("dead", subscription(timeoutMs=25), "127.0.0.1", dead_port, "/t")
    alive = Subscriber("alive", subscription(timeoutMs=25), "127.0.0.1", listeners[0].port, "/t")
    subscribers.extend([dead, alive])
    hub.subscribe("dead", dead)
    hub.subscribe("alive", alive)
    hub.emit(line(1))
    wait_for(lambda: dead.failed_batches == 1, 5.0, "the failed delivery")
    wait_for(lambda: listeners[0].batches, 2.0, "the healthy delivery")
    assert dead.lost_events == 1 and alive.delivered_events == 1


def test_subscriber_answering_500_counts_a_failed_batch(listeners, subscribers):
    listeners.append(Listener(status=500))
    sub = subscriber(subscribers, listeners[0].port, timeoutMs=25)
    sub.put(line(1))
    wait_for(lambda: sub.failed_batches == 1, 2.0, "the failed batch")
    assert sub.delivered_batches == 0


def test_slow_subscriber_never_blocks_emit(listeners, subscribers):
    listeners.append(Listener(delay_s=0.5))
    hub = TelemetryHub()
    sub = subscriber(subscribers, listeners[0].port, timeoutMs=25)
    hub.subscribe("ext", sub)
    started = time.monotonic()
    for i in range(500):
        hub.emit(line(i))
    assert time.monotonic() - started < 0.3
    assert sub.flush(3.0)
    assert len(listeners[0].events()) == 500


def test_late_subscriber_gets_earlier_events_replayed_until_subscriptions_close(
    listeners, subscribers
):
    listeners.append(Listener())
    hub = TelemetryHub()
    hub.emit(events.envelope("platform.initStart", {"phase": "init"}, time.time()))
    hub.emit(line(0))
    sub = subscriber(subscribers, listeners[0].port, timeoutMs=25, types=("platform",))
    hub.subscribe("ext", sub)
    hub.close_subscriptions()
    hub.emit(events.envelope("platform.start", {"requestId": "r"}, time.time()))
    assert sub.flush(2.0)
    assert [e["type"] for e in listeners[0].events()] == ["platform.initStart", "platform.start"]


def test_tcp_subscriber_gets_newline_delimited_json(subscribers):
    received: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)
        body = {
            "schemaVersion": "2022-12-13",
            "destination": {"protocol": "TCP", "URI": f"tcp://sandbox:{server.getsockname()[1]}"},
            "types": ["function"],
            "buffering": {"timeoutMs": 25},
        }
        sub = Subscriber(
            "tcp", events.parse_subscription(body), "127.0.0.1", server.getsockname()[1], ""
        )
        subscribers.append(sub)
        sub.put(line(1))
        sub.put(line(2))
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            for _ in range(100):  # bounded: two short lines arrive in one or a few reads
                if b"".join(received).count(b"\n") >= 2:
                    break
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received.append(chunk)
    lines = b"".join(received).splitlines()
    assert [json.loads(x)["record"] for x in lines] == ["line 1\n", "line 2\n"]


def test_a_subscriber_that_falls_behind_gets_logs_dropped(listeners, subscribers, monkeypatch):
    from lambdascope.emulator import telemetry

    monkeypatch.setattr(telemetry, "MAX_BUFFERED_EVENTS", 5)
    listeners.append(Listener(delay_s=0.3))
    sub = subscriber(subscribers, listeners[0].port, timeoutMs=25)
    sub.put(line(0))
    wait_for(lambda: sub._inflight, 2.0, "the first (slow) POST")
    for i in range(1, 21):
        sub.put(line(i))  # 5 fit in the buffer, 15 are dropped
    sub.put(line(21))  # room again only after the slow POST; then logsDropped goes first
    assert sub.flush(3.0)
    delivered = listeners[0].events()
    dropped = [e["record"] for e in delivered if e["type"] == "platform.logsDropped"]
    assert dropped and dropped[0]["droppedRecords"] == 16
    assert len([e for e in delivered if e["type"] == "function"]) == 6
