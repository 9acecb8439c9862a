"""Minimal fakes for the extension's functional tests: a Lambda Extensions/Telemetry API and a
collector, each a ThreadingHTTPServer on 127.0.0.1 with a free port."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTENSION_ID = "d3b5a1c2-0000-4000-8000-00000000abcd"
REGISTER_BODY = {"functionName": "checkout", "functionVersion": "$LATEST", "handler": "app.handler"}


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class FakeLambdaApi:
    """Register, event/next (events the test pushes) and Telemetry subscribe."""

    def __init__(self) -> None:
        self.registrations: list[tuple[dict[str, str], Any]] = []
        self.register_statuses: list[int] = []  # answered first, then 200
        self.subscriptions: list[tuple[dict[str, str], Any]] = []
        self.next_headers: list[dict[str, str]] = []
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cond = threading.Condition()
        fake = self

        class Handler(_QuietHandler):
            def do_POST(self) -> None:
                body = self._body()
                if self.path == "/2020-01-01/extension/register":
                    with fake._cond:
                        fake.registrations.append((dict(self.headers), json.loads(body or b"{}")))
                        status = fake.register_statuses.pop(0) if fake.register_statuses else 200
                        fake._cond.notify_all()
                    if status != 200:
                        self._reply(status, b'{"errorType": "Extension.Test"}')
                        return
                    self._reply(
                        200,
                        json.dumps(REGISTER_BODY).encode(),
                        {"Lambda-Extension-Identifier": EXTENSION_ID},
                    )
                else:
                    self._reply(202, b'{"status":"OK"}')

            def do_PUT(self) -> None:
                body = self._body()
                with fake._cond:
                    fake.subscriptions.append((dict(self.headers), json.loads(body)))
                    fake._cond.notify_all()
                self._reply(200, b'"OK"')

            def do_GET(self) -> None:
                with fake._cond:
                    fake.next_headers.append(dict(self.headers))
                    fake._cond.notify_all()
                try:
                    event = fake.events.get(timeout=20)
                except queue.Empty:
                    self._reply(500, b'{"errorType":"Test.NoEvent"}')
                    return
                self._reply(200, json.dumps(event).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.runtime_api = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeLambdaApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def wait_next_calls(self, count: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.next_headers) >= count, timeout=timeout)

    @property
    def telemetry_port(self) -> int:
        uri = self.subscriptions[-1][1]["destination"]["URI"]
        return int(uri.rsplit(":", 1)[1].strip("/"))

    def post_telemetry(self, events: list[dict[str, Any]] | bytes) -> int:
        """POST to the extension's listener as Lambda would (sandbox.localdomain = 127.0.0.1)."""
        body = events if isinstance(events, bytes) else json.dumps(events).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.telemetry_port, timeout=5)
        try:
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def invoke(self, request_id: str, timeout_ms: int = 3000, trace: str | None = None) -> None:
        event: dict[str, Any] = {
            "eventType": "INVOKE",
            "deadlineMs": int(time.time() * 1000) + timeout_ms,
            "requestId": request_id,
            "invokedFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:checkout",
        }
        if trace:
            event["tracing"] = {"type": "X-Amzn-Trace-Id", "value": trace}
        self.events.put(event)

    def shutdown_event(self, budget_ms: int = 2000, reason: str = "spindown") -> None:
        self.events.put(
            {
                "eventType": "SHUTDOWN",
                "deadlineMs": int(time.time() * 1000) + budget_ms,
                "shutdownReason": reason,
            }
        )


class FakeCollector:
    """Records every batch POST; answers the scripted statuses first, then 200.
    Stores a batch id once, as the real collector does."""

    def __init__(
        self, statuses: list[int] | None = None, port: int = 0, delay_s: float = 0.0
    ) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self.statuses = list(statuses or [])
        self.delay_s = delay_s  # each request takes this long before its answer
        self.active = 0  # requests being answered now
        self.max_concurrent = 0  # the most requests answered at once
        self._cond = threading.Condition()
        fake = self

        class Handler(_QuietHandler):
            def do_POST(self) -> None:
                with fake._cond:
                    fake.active += 1
                    fake.max_concurrent = max(fake.max_concurrent, fake.active)
                try:
                    self._answer()
                finally:
                    with fake._cond:
                        fake.active -= 1

            def _answer(self) -> None:
                raw = self._body()
                headers = dict(self.headers)
                body = gzip.decompress(raw) if headers.get("Content-Encoding") == "gzip" else raw
                batch = json.loads(body)
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                with fake._cond:
                    fake.requests.append((headers, batch))
                    status = fake.statuses.pop(0) if fake.statuses else 200
                    duplicate = batch["batch_id"] in fake.stored
                    if status == 200 and not duplicate:
                        fake.stored[batch["batch_id"]] = batch
                    fake._cond.notify_all()
                if status == 200:
                    reply = {
                        "batch_id": batch["batch_id"],
                        "accepted_events": len(batch["telemetry"]),
                        "duplicate": duplicate,
                    }
                    self._reply(200, json.dumps(reply).encode())
                else:
                    self._reply(status, b'{"error":"store unavailable"}', {"Retry-After": "0"})

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeCollector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout=timeout)

    def stored_batches(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self.stored.values())

    def stored_telemetry(self) -> list[dict[str, Any]]:
        return [event for batch in self.stored_batches() for event in batch["telemetry"]]

    def stored_invocations(self) -> list[dict[str, Any]]:
        return [record for batch in self.stored_batches() for record in batch["invocations"]]


class HangingCollector:
    """A collector address that accepts connections (the kernel's backlog) and never answers:
    every request to it ends only at its sender's timeout."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HangingCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def extension_env(api: FakeLambdaApi, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": api.runtime_api,
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "checkout",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDASCOPE_LISTEN_HOST": "127.0.0.1",
        "LAMBDASCOPE_TELEMETRY_PORT": "0",
        "LAMBDASCOPE_SPOOL_MAX_BYTES": "0",
        "LAMBDASCOPE_OTLP_PORT": "0",  # the fixed 4318 would collide between parallel tests
    }
    env.update(overrides)
    return env


def start_extension(env: dict[str, str], name: str = "lambdascope") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lambdascope.extension", name],
        cwd=str(REPO_ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_process(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Kill the process if still running and return its (stdout, stderr)."""
    if process.poll() is None:
        process.kill()
    stdout, stderr = process.communicate(timeout=10)
    return stdout, stderr


def event(kind: str, record: Any, time_text: str = "2026-11-24T07:00:00.000Z") -> dict[str, Any]:
    return {"time": time_text, "type": kind, "record": record}


def invocation_events(request_id: str) -> list[dict[str, Any]]:
    """platform.start, a Text-format function line and platform.runtimeDone of one invocation."""
    return [
        event("platform.start", {"requestId": request_id, "version": "$LATEST"}),
        event("function", f"hello from {request_id}\n"),
        event(
            "platform.runtimeDone",
            {"requestId": request_id, "status": "success", "metrics": {"durationMs": 12.5}},
        ),
    ]


def report_event(request_id: str) -> dict[str, Any]:
    return event(
        "platform.report",
        {
            "requestId": request_id,
            "status": "success",
            "metrics": {
                "durationMs": 12.5,
                "billedDurationMs": 13,
                "memorySizeMB": 128,
                "maxMemoryUsedMB": 60,
            },
        },
    )
