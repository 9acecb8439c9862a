"""A minimal HTTP/1.1 client and server on plain sockets.

Why not `http.client` / `http.server`: importing them costs 20-35 ms of the cold start
(email, ssl, mimetypes, ...), and the extension only needs small JSON requests to the local
Lambda API, one listener that accepts POSTs, and one POST to the collector.
"""

from __future__ import annotations

import socket
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpError(Exception):
    """A malformed HTTP message; the text says which part."""


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def __repr__(self) -> str:
        return "Response(%d, %r, %r)" % (self.status, self.headers, self.body[:200])


def _read_headers(rfile) -> dict[str, str]:  # type: ignore[no-untyped-def]
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise HttpError("header line longer than %d bytes" % MAX_HEADER_LINE)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise HttpError("connection closed inside the headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise HttpError("header line without a colon: %r" % line[:80])
        key = name.strip().lower()
        value = value.strip()
        # Repeated headers are joined as RFC 9110 allows; only a few matter to us.
        headers[key] = headers[key] + ", " + value if key in headers else value
    raise HttpError("more than %d header lines" % MAX_HEADERS)


def _read_body(rfile, headers: dict[str, str], max_bytes: int, until_eof: bool) -> bytes:  # type: ignore[no-untyped-def]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = rfile.readline(MAX_HEADER_LINE)
            if not size_line:
                raise HttpError("connection closed inside a chunked body")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpError("bad chunk size line %r" % size_line[:40]) from None
            if size == 0:
                _read_headers(rfile)  # trailers
                return b"".join(parts)
            total += size
            if total > max_bytes:
                raise HttpError("body larger than %d bytes" % max_bytes)
            parts.append(rfile.read(size))
            rfile.readline(8)
    length_text = headers.get("content-length")
    if length_text is not None:
        try:
            length = int(length_text)
        except ValueError:
            raise HttpError("bad Content-Length %r" % length_text) from None
        if length < 0 or length > max_bytes:
            raise HttpError("Content-Length %d outside 0..%d" % (length, max_bytes))
        body = rfile.read(length) if length else b""
        if len(body) != length:
            raise HttpError("connection closed after %d of %d body bytes" % (len(body), length))
        return body
    if until_eof:
        body = rfile.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise HttpError("body larger than %d bytes" % max_bytes)
        return body
    return b""


def _request_bytes(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None,
    body: bytes,
    keep_alive: bool,
) -> bytes:
    host_header = host if port in (80, 443) else "%s:%d" % (host, port)
    if ":" in host and not host.startswith("["):
        host_header = "[%s]:%d" % (host, port)
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + host_header]
    if not keep_alive:
        lines.append("Connection: close")
    for name, value in (headers or {}).items():
        lines.append("%s: %s" % (name, value))
    if body or method in ("POST", "PUT"):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _read_response(
    rfile,
    method: str,
    host: str,
    port: int,
    max_response_bytes: int,
    until_eof: bool,  # type: ignore[no-untyped-def]
) -> Response:
    status_line = rfile.readline(MAX_HEADER_LINE)
    if not status_line:
        raise ConnectionResetError("%s:%d closed the connection before answering" % (host, port))
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HttpError("bad status line %r from %s:%d" % (status_line[:80], host, port))
    try:
        status = int(parts[1])
    except ValueError:
        raise HttpError("bad status code in %r" % status_line[:80]) from None
    response_headers = _read_headers(rfile)
    no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
    data = b"" if no_body else _read_body(rfile, response_headers, max_response_bytes, until_eof)
    return Response(status, response_headers, data)


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    timeout: float | None = None,
    tls: bool = False,
    max_response_bytes: int = 16 * 1024 * 1024,
    ssl_context: Any = None,
) -> Response:
    """Send one request on a new connection and read the whole response.

    `timeout` None blocks forever (Lambda's `event/next`: the sandbox may be frozen mid-call).
    `tls` wraps the connection in `ssl_context` (an `ssl.SSLContext`; built with
    `ssl.create_default_context()` when None), which verifies the certificate and `host`.
    Raises OSError for network failures (ssl.SSLError, a certificate that fails verification
    included) and HttpError for a malformed response.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if tls:
            if ssl_context is None:
                # Only for https: the import and the system CA store cost ~25 ms. Callers that
                # send more than once pass a context they keep.
                import ssl

                ssl_context = ssl.create_default_context()
            # The handshake (and the verification) happens here, before any byte of the
            # request, so a refused certificate never sees the Authorization header.
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        sock.sendall(_request_bytes(host, port, method, path, headers, body, keep_alive=False))
        rfile = sock.makefile("rb")
        try:
            return _read_response(rfile, method, host, port, max_response_bytes, True)
        finally:
            rfile.close()
    finally:
        sock.close()


class Connection:
    """One kept-alive HTTP/1.1 connection for a series of requests (the Lambda API).

    A new connection per call makes the platform accept and set up a connection for every
    `event/next`, work that lands while the function runs; one kept connection avoids it, as
    the runtime client does. A kept connection the server has closed meanwhile (between
    invocations, or across a freeze) fails before any answer arrives: the request is then sent
    once more on a fresh connection, which is safe because the server never saw it.
    Requests are serialised; raises like :func:`request`.
    """

    def __init__(self, host: str, port: int, max_response_bytes: int = 16 * 1024 * 1024) -> None:
        self.host, self.port = host, port
        self._max_response_bytes = max_response_bytes
        self._sock: socket.socket | None = None
        self._rfile: Any = None
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        timeout: float | None = None,
    ) -> Response:
        data = _request_bytes(self.host, self.port, method, path, headers, body, keep_alive=True)
        with self._lock:
            for attempt in (1, 2):
                reused = self._sock is not None
                if self._sock is None:
                    self._open(timeout)
                assert self._sock is not None
                try:
                    self._sock.settimeout(timeout)
                    self._sock.sendall(data)
                    response = _read_response(
                        self._rfile, method, self.host, self.port, self._max_response_bytes, False
                    )
                except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                    self.close()
                    if reused and attempt == 1:
                        continue  # the server dropped the idle connection: send it again
                    raise
                except BaseException:
                    self.close()
                    raise
                if response.headers.get("connection", "").lower() == "close":
                    self.close()
                return response
        raise AssertionError("unreachable")

    def _open(self, timeout: float | None) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:  # noqa: SIM105 - contextlib costs start-up time
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._sock = sock
        self._rfile = sock.makefile("rb")

    def close(self) -> None:
        rfile, sock = self._rfile, self._sock
        self._rfile = self._sock = None
        for closeable in (rfile, sock):
            if closeable is not None:
                try:  # noqa: SIM105 - contextlib costs start-up time
                    closeable.close()
                except OSError:
                    pass


class HttpServer:
    """A small threaded HTTP/1.1 server with keep-alive, for POSTs of JSON.

    `handler(method, path, headers, body) -> (status, body)` (or `(status, body, content
    type)`; application/json otherwise) runs on the connection's thread
    and must not raise (a raise answers 500). Bounded: at most `max_connections` connections
    are served at once and bodies above `max_body_bytes` get 413.
    """

    def __init__(
        self,
        host: str,
        port: int,
        handler: Callable[[str, str, dict[str, str], bytes], tuple[Any, ...]],
        max_body_bytes: int = 8 * 1024 * 1024,
        max_connections: int = 32,
        name: str = "lambdascope-http",
        niceness: int = 0,
    ) -> None:
        self._handler = handler
        self._niceness = niceness
        self._max_body_bytes = max_body_bytes
        self._slots = threading.BoundedSemaphore(max_connections)
        self._name = name
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        family, _type, _proto, _canon, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(64)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self.port: int = sock.getsockname()[1]
        self.host = host
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:  # noqa: SIM105 - contextlib costs start-up time
            # shutdown() wakes the thread blocked in accept(); close() alone does not on Linux.
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=2.0)

    def _accept_loop(self) -> None:
        if self._niceness:
            # Connection threads start from this one and inherit its priority.
            from .priority import lower_thread_priority

            lower_thread_priority(self._niceness)
        while not self._closed:
            try:
                conn, _peer = self._sock.accept()
            except OSError:
                if self._closed:
                    return
                continue
            if not self._slots.acquire(blocking=False):
                conn.close()
                continue
            try:
                threading.Thread(
                    target=self._serve_connection,
                    args=(conn,),
                    name=self._name + "-conn",
                    daemon=True,
                ).start()
            except RuntimeError:
                self._slots.release()
                conn.close()

    def _serve_connection(self, conn: socket.socket) -> None:
        try:
            rfile = conn.makefile("rb")
            try:
                for _ in range(1_000_000):  # keep-alive requests on this connection
                    if not self._serve_one(conn, rfile):
                        break
            finally:
                rfile.close()
        except OSError:
            pass
        finally:
            try:
                conn.close()
            finally:
                self._slots.release()

    def _serve_one(self, conn: socket.socket, rfile) -> bool:  # type: ignore[no-untyped-def]
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if not line:
            return False
        if line in (b"\r\n", b"\n"):
            return True  # tolerated stray CRLF between requests
        keep_alive = True
        try:
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                raise HttpError("bad request line %r" % line[:80])
            method, path, version = parts
            headers = _read_headers(rfile)
            connection = headers.get("connection", "").lower()
            if connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive"):
                keep_alive = False
            if "expect" in headers and headers["expect"].lower() == "100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                body = _read_body(rfile, headers, self._max_body_bytes, False)
            except HttpError as exc:
                status = 413 if "larger" in str(exc) or "outside" in str(exc) else 400
                self._respond(conn, status, b'{"error": "%s"}' % _json_text(str(exc)), False)
                return False
            content_type = "application/json"
            try:
                answer = self._handler(method, path, headers, body)
                status, payload = answer[0], answer[1]
                if len(answer) > 2:
                    content_type = answer[2]
            except Exception as exc:  # noqa: BLE001 - one bad request must not kill the listener
                status, payload = 500, b'{"error": "%s"}' % _json_text(repr(exc))
        except HttpError as exc:
            self._respond(conn, 400, b'{"error": "%s"}' % _json_text(str(exc)), False)
            return False
        self._respond(conn, status, payload, keep_alive, content_type)
        return keep_alive

    @staticmethod
    def _respond(
        conn: socket.socket,
        status: int,
        payload: bytes,
        keep_alive: bool,
        content_type: str = "application/json",
    ) -> None:
        head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            status,
            _REASONS.get(status, "Status"),
            content_type,
            len(payload),
            "" if keep_alive else "Connection: close\r\n",
        )
        conn.sendall(head.encode("latin-1") + payload)


def _json_text(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace('"', '\\"').encode("ascii", "replace")
