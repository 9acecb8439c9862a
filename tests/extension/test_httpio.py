"""The small HTTP layer on loopback: keep-alive, chunked bodies, limits, client parsing."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator

import pytest

from lambdascope.extension import httpio


@pytest.fixture
def echo_server() -> Iterator[httpio.HttpServer]:
    def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if path == "/boom":
            raise RuntimeError("handler bug")
        return 200, (method + " " + path + " ").encode() + body

    server = httpio.HttpServer("127.0.0.1", 0, handler, max_body_bytes=1000).start()
    try:
        yield server
    finally:
        server.close()


def test_keep_alive_connection_serves_several_requests(echo_server: httpio.HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    try:
        for number in range(3):
            connection.request("POST", "/x", body=b"n%d" % number)
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"POST /x n%d" % number)
    finally:
        connection.close()


def test_chunked_body_is_read(echo_server: httpio.HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    try:
        connection.request("POST", "/c", body=iter([b"ab", b"cd"]), encode_chunked=True)
        response = connection.getresponse()
        assert response.read() == b"POST /c abcd"
    finally:
        connection.close()


def test_oversized_body_gets_413_and_a_handler_error_500(echo_server: httpio.HttpServer) -> None:
    response = httpio.request(
        "127.0.0.1", echo_server.port, "POST", "/", body=b"x" * 2000, timeout=5
    )
    assert response.status == 413
    response = httpio.request("127.0.0.1", echo_server.port, "POST", "/boom", body=b"", timeout=5)
    assert response.status == 500 and b"handler bug" in response.body
    # the server still works afterwards
    response = httpio.request("127.0.0.1", echo_server.port, "GET", "/ok", timeout=5)
    assert (response.status, response.body) == (200, b"GET /ok ")


def test_garbage_request_line_gets_400(echo_server: httpio.HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as sock:
        sock.sendall(b"HELLO\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


def test_client_reads_headers_and_reports_refused_connections() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        httpio.request("127.0.0.1", port, "GET", "/", timeout=2)


def test_close_stops_the_accept_thread() -> None:
    server = httpio.HttpServer("127.0.0.1", 0, lambda *a: (200, b"")).start()
    port = server.port
    server.close()
    with pytest.raises(OSError):
        httpio.request("127.0.0.1", port, "GET", "/", timeout=2)


class _CountingServer:
    """A raw loopback server that answers each request on a connection, counts connections,
    and closes every connection after `close_after` answers (a platform dropping idle ones)."""

    def __init__(self, close_after: int) -> None:
        self.connections = 0
        self.close_after = close_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for _ in range(20):
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as rfile:
                for _ in range(self.close_after):
                    line = rfile.readline()
                    if not line:
                        break
                    while rfile.readline() not in (b"\r\n", b""):
                        pass
                    body = b"answer %d" % self.connections
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                    conn.sendall(body)

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()


def test_kept_connection_is_reused_for_several_requests() -> None:
    server = _CountingServer(close_after=100)
    connection = httpio.Connection("127.0.0.1", server.port)
    try:
        bodies = [connection.request("GET", "/next", timeout=5).body for _ in range(3)]
    finally:
        connection.close()
        server.close()
    assert bodies == [b"answer 1"] * 3
    assert server.connections == 1


def test_kept_connection_closed_by_the_server_is_reopened_and_the_request_resent() -> None:
    server = _CountingServer(close_after=1)
    connection = httpio.Connection("127.0.0.1", server.port)
    try:
        first = connection.request("GET", "/next", timeout=5).body
        second = connection.request("GET", "/next", timeout=5).body
    finally:
        connection.close()
        server.close()
    assert (first, second) == (b"answer 1", b"answer 2")
    assert server.connections == 2


def test_kept_connection_reports_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = httpio.Connection("127.0.0.1", port)
    with pytest.raises(OSError):
        connection.request("GET", "/next", timeout=2)
