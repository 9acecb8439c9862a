"""The per-environment HTTP API: Runtime (`/2018-06-01`), Extensions (`/2020-01-01`), Logs
(`/2020-08-15/logs`) and Telemetry (`/2022-07-01/telemetry`), served on the environment's own
loopback address.

A thin shell: it parses HTTP and routes to a `SandboxController` (the environment's
`SandboxHandlers`), which holds the rules and the state. Long polls (`next`) block in their
handler thread; HTTP/1.1 keep-alive is kept by always sending Content-Length.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Largest body the sandbox reads: a 6 MiB response plus headroom for error JSON.
MAX_BODY_BYTES = 6 * 1024 * 1024 + 100

_used_addresses: set[str] = set()
_used_lock = threading.Lock()


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        json.dumps(payload).encode("utf-8"),
        {"Content-Type": "application/json", **(headers or {})},
    )


def error_response(status: int, error_type: str, message: str) -> Response:
    return json_response(status, {"errorType": error_type, "errorMessage": message})


class SandboxController(Protocol):
    def runtime_next(self) -> Response | None: ...
    def runtime_response(
        self, request_id: str, body: bytes, headers: dict[str, str]
    ) -> Response: ...
    def runtime_error(self, request_id: str, body: bytes, headers: dict[str, str]) -> Response: ...
    def runtime_init_error(self, body: bytes, headers: dict[str, str]) -> Response: ...
    def extension_register(self, headers: dict[str, str], body: bytes) -> Response: ...
    def extension_next(self, headers: dict[str, str]) -> Response | None: ...
    def extension_error(self, kind: str, headers: dict[str, str], body: bytes) -> Response: ...
    def telemetry_subscribe(self, headers: dict[str, str], body: bytes) -> Response: ...
    def logs_subscribe(self, headers: dict[str, str], body: bytes) -> Response: ...


_INVOCATION = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")


def route(
    controller: SandboxController, method: str, path: str, headers: dict[str, str], body: bytes
) -> Response | None:
    """Dispatch one request. None means the server is closing: drop the connection."""
    path = path.split("?", 1)[0]
    if method == "GET" and path == "/2018-06-01/runtime/invocation/next":
        return controller.runtime_next()
    if method == "POST":
        match = _INVOCATION.match(path)
        if match:
            request_id, kind = match.groups()
            if kind == "response":
                return controller.runtime_response(request_id, body, headers)
            return controller.runtime_error(request_id, body, headers)
        if path == "/2018-06-01/runtime/init/error":
            return controller.runtime_init_error(body, headers)
        if path == "/2020-01-01/extension/register":
            return controller.extension_register(headers, body)
        if path == "/2020-01-01/extension/init/error":
            return controller.extension_error("init", headers, body)
        if path == "/2020-01-01/extension/exit/error":
            return controller.extension_error("exit", headers, body)
    if method == "GET" and path == "/2020-01-01/extension/event/next":
        return controller.extension_next(headers)
    if method == "PUT" and path == "/2022-07-01/telemetry":
        return controller.telemetry_subscribe(headers, body)
    if method == "PUT" and path.rstrip("/") == "/2020-08-15/logs":
        return controller.logs_subscribe(headers, body)
    return error_response(404, "NotFound", f"no such sandbox API: {method} {path}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("sandbox %s: " + format, self.server.address_label, *args)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES * 2:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES * 2:
            return None
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        read_started = time.monotonic()
        try:
            body = self._read_body()
        except ValueError:
            body = None
        if body is None:
            response: Response | None = error_response(
                413, "RequestEntityTooLarge", "request body too large or malformed"
            )
            self.close_connection = True
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            # When the body started arriving: the start of the responseDuration span.
            headers["x-emulator-read-started"] = repr(read_started)
            try:
                response = route(self.server.controller, self.command, self.path, headers, body)
            except Exception:  # a bug must not kill the sandbox: answer 500 and log it
                log.exception("sandbox API %s %s failed", self.command, self.path)
                response = error_response(500, "ServiceException", "internal emulator error")
        if response is None:
            self.close_connection = True
            return
        try:
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], controller: SandboxController) -> None:
        self.controller = controller
        self.address_label = f"{address[0]}:{address[1]}"
        super().__init__(address, _Handler)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.address_label}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def _allocate_addresses(count: int = 8) -> list[str]:
    """Random, distinct 127.77.x.y addresses (one environment each)."""
    picked: list[str] = []
    with _used_lock:
        for _ in range(200):
            address = f"127.77.{random.randint(0, 255)}.{random.randint(1, 254)}"
            if address not in _used_addresses and address not in picked:
                picked.append(address)
                if len(picked) == count:
                    break
    return picked


def open_sandbox(controller: SandboxController) -> SandboxServer:
    """A server (not started yet) on a loopback address no other environment holds until
    `release_address`: fixed extension ports then never collide between environments."""
    server = bind_sandbox(controller, _allocate_addresses())
    with _used_lock:
        _used_addresses.add(str(server.server_address[0]))
    return server


def release_address(address: str) -> None:
    with _used_lock:
        _used_addresses.discard(address)


def bind_sandbox(
    controller: SandboxController, addresses: list[str], port: int = 9001
) -> SandboxServer:
    """Bind on the first address where `port` is free; else on a free port of the first one."""
    for address in addresses:
        try:
            return SandboxServer((address, port), controller)
        except OSError:
            continue
    try:
        return SandboxServer((addresses[0], 0), controller)
    except OSError:
        # Some systems only route 127.0.0.1 (macOS without aliases): fall back to it.
        return SandboxServer(("127.0.0.1", 0), controller)
