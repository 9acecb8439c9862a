"""The Invoke API: `POST /2015-03-31/functions/{name}/invocations`, shaped like Lambda's REST
API so `boto3.client("lambda", endpoint_url=...)` works unchanged. A thin HTTP shell over
an `Invoker` (the `Emulator`)."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from lambdascope.emulator.invoke_result import (
    SYNC_PAYLOAD_LIMIT,
    TOO_LARGE,
    InvokeResult,
    aws_error_body,
    payload_too_large,
)

log = logging.getLogger(__name__)

# Bodies beyond this are not even read: the connection is closed after the 413.
READ_LIMIT = 4 * SYNC_PAYLOAD_LIMIT
_PREFIX = "/2015-03-31/functions/"
_SUFFIX = "/invocations"


class Invoker(Protocol):
    """What the shell calls: `Emulator.invoke`, validation of the request included."""

    def invoke(
        self,
        name: str,
        payload: bytes = ...,
        invocation_type: str = ...,
        log_type: str | None = ...,
        qualifier: str | None = ...,
        client_context: str | None = ...,
    ) -> InvokeResult: ...


def headers_for(result: InvokeResult) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Amzn-RequestId": result.request_id}
    if result.error_type:
        headers["x-amzn-ErrorType"] = result.error_type
    if result.executed_version:
        headers["X-Amz-Executed-Version"] = result.executed_version
    if result.function_error:
        headers["X-Amz-Function-Error"] = result.function_error
    if result.log_result is not None:
        headers["X-Amz-Log-Result"] = result.log_result
    if result.retry_after_s is not None:
        headers["Retry-After"] = str(result.retry_after_s)
    return headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: InvokeServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("invoke api: " + format, *args)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _error(self, status: int, error_type: str, message: str) -> None:
        body = aws_error_body(error_type, message)
        self._send(
            status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
        )

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > READ_LIMIT:
            self.close_connection = True
            self._error(413, TOO_LARGE, payload_too_large(length, "RequestResponse") or "")
            return
        body = self.rfile.read(length) if length else b""
        if not (url.path.startswith(_PREFIX) and url.path.endswith(_SUFFIX)):
            self._error(404, "UnknownOperationException", f"no such operation: POST {url.path}")
            return
        name = unquote(url.path[len(_PREFIX) : -len(_SUFFIX)])
        qualifiers = parse_qs(url.query).get("Qualifier")
        qualifier = qualifiers[0] if qualifiers else None
        try:
            result = self.server.emulator.invoke(
                name,
                body,
                invocation_type=self.headers.get("X-Amz-Invocation-Type") or "RequestResponse",
                log_type=self.headers.get("X-Amz-Log-Type"),
                qualifier=qualifier,
                client_context=self.headers.get("X-Amz-Client-Context"),
            )
        except Exception:  # an emulator bug answers 500 instead of killing the server thread
            log.exception("invoke of %s failed", name)
            self._error(500, "ServiceException", "internal emulator error; see its log")
            return
        self._send(result.status_code, result.payload, headers_for(result))

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._error(404, "UnknownOperationException", f"no such operation: GET {self.path}")


class InvokeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: Invoker) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
