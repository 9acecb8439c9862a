"""Every endpoint as a stranger would try it: no token, a wrong token, bodies too large or too
compressed, headers that never end, plain HTTP against TLS. Each refusal is a 4xx (or the
documented 503) and stores nothing."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from lambdascope.collector.httpserver import ServerLimits, TlsFiles
from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store
from lambdascope.query import CollectorQueryClient
from tests.collector.conftest import load_event

INGEST_TOKEN = "ingest-0123456789"
READ_TOKEN = "read-9876543210"

#: Every endpoint that takes data, with a body it would accept from the right client.
WRITE_ENDPOINTS = {
    "/v1/extension/batches": ("application/json", json.dumps(load_event("timeout")).encode()),
    "/v1/traces": ("application/json", b'{"resourceSpans": []}'),
    "/v1/logs": ("application/json", b'{"resourceLogs": []}'),
    "/v1/metrics": ("application/json", b'{"resourceMetrics": []}'),
    "/v1/firehose/metrics": (
        "application/json",
        json.dumps({"requestId": "r-1", "timestamp": 1, "records": []}).encode(),
    ),
}
QUERY_BODY = json.dumps({"sql": "SELECT count() FROM invocations"}).encode()


def send(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout_s: float = 10.0,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout_s, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def stored_rows(store: Store) -> int:
    tables = ("invocation_parts", "logs", "otel_traces", "otel_logs", "otel_metrics")
    return sum(
        int(store._client.command(f"SELECT count() FROM {table}")) for table in tables
    ) + int(store._client.command("SELECT count() FROM cloudwatch_metrics"))


@pytest.fixture
def guarded(store: Store) -> Iterator[CollectorServer]:
    server = CollectorServer(
        store, port=0, ingest_token=INGEST_TOKEN, read_token=READ_TOKEN
    ).start()
    try:
        yield server
    finally:
        server.stop()


def _auth_headers(path: str, token: str | None) -> dict[str, str]:
    if token is None:
        return {}
    if path == "/v1/firehose/metrics":
        return {"X-Amz-Firehose-Access-Key": token, "X-Amz-Firehose-Request-Id": "r-1"}
    return {"Authorization": f"Bearer {token}"}


BAD_TOKENS = [None, "wrong", "", INGEST_TOKEN[:-1], INGEST_TOKEN + "x", READ_TOKEN[::-1]]


@pytest.mark.parametrize("path", [*WRITE_ENDPOINTS, "/api/v1/query"])
def test_every_endpoint_refuses_a_missing_or_wrong_token_and_stores_nothing(
    guarded: CollectorServer, store: Store, path: str
) -> None:
    if path == "/api/v1/query":
        content_type, body = "application/json", QUERY_BODY
    else:
        content_type, body = WRITE_ENDPOINTS[path]
    for token in BAD_TOKENS:
        headers = {"Content-Type": content_type, **_auth_headers(path, token)}
        assert send(guarded.url, "POST", path, body, headers)[0] == 401, token
    for scheme in ("Basic", "bearer-ish", ""):  # not a bearer token at all
        headers = {"Content-Type": content_type, "Authorization": f"{scheme} {INGEST_TOKEN}"}
        assert send(guarded.url, "POST", path, body, headers)[0] == 401, scheme
    assert stored_rows(store) == 0


def test_the_ingest_token_does_not_open_the_read_api(guarded: CollectorServer) -> None:
    headers = {"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "application/json"}
    assert send(guarded.url, "POST", "/api/v1/query", QUERY_BODY, headers)[0] == 401


def test_the_read_token_does_not_open_ingest(guarded: CollectorServer, store: Store) -> None:
    for path, (content_type, body) in WRITE_ENDPOINTS.items():
        headers = {"Content-Type": content_type, **_auth_headers(path, READ_TOKEN)}
        assert send(guarded.url, "POST", path, body, headers)[0] == 401, path
    assert stored_rows(store) == 0


def test_the_right_tokens_are_served(guarded: CollectorServer, store: Store) -> None:
    for path, (content_type, body) in WRITE_ENDPOINTS.items():
        headers = {"Content-Type": content_type, **_auth_headers(path, INGEST_TOKEN)}
        assert send(guarded.url, "POST", path, body, headers)[0] == 200, path
    headers = {"Authorization": f"Bearer {READ_TOKEN}", "Content-Type": "application/json"}
    status, _, reply = send(guarded.url, "POST", "/api/v1/query", QUERY_BODY, headers)
    assert status == 200 and json.loads(reply)["rows"] == [[1]]


def test_health_and_metrics_answer_without_a_token_and_name_no_function(
    guarded: CollectorServer,
) -> None:
    headers = {"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "application/json"}
    body = json.dumps(load_event("timeout")).encode()
    assert send(guarded.url, "POST", "/v1/extension/batches", body, headers)[0] == 200
    assert send(guarded.url, "GET", "/healthz")[0] == 200
    assert send(guarded.url, "GET", "/readyz")[0] == 200
    status, _, text = send(guarded.url, "GET", "/metrics")
    assert status == 200
    function_name = load_event("timeout")["environment"]["function_name"]
    assert function_name.encode() not in text


@pytest.mark.parametrize("path", [*WRITE_ENDPOINTS, "/api/v1/query"])
def test_a_gzip_bomb_is_413_on_every_endpoint_and_stores_nothing(store: Store, path: str) -> None:
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
    with CollectorServer(store, port=0, max_decompressed_bytes=100_000) as small:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        status, _, _ = send(small.url, "POST", path, bomb, headers)
    assert status == 413
    assert stored_rows(store) == 0


@pytest.mark.parametrize("path", [*WRITE_ENDPOINTS, "/api/v1/query"])
def test_an_oversized_body_is_413_before_it_is_read(store: Store, path: str) -> None:
    with CollectorServer(store, port=0, max_body_bytes=1_000) as small:
        parts = urllib.parse.urlsplit(small.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            # Announce 10 MB and send none of it: the refusal must not wait for the body.
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 10000000\r\n\r\n".encode()
            )
            reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413")
    assert "connection: close" in reply.lower()
    assert stored_rows(store) == 0


def test_chunked_bodies_are_refused_with_411(guarded: CollectorServer) -> None:
    parts = urllib.parse.urlsplit(guarded.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/extension/batches HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + INGEST_TOKEN.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        assert sock.recv(4096).decode().startswith("HTTP/1.1 411")


def test_headers_that_never_finish_lose_their_connection(store: Store) -> None:
    limits = ServerLimits(header_timeout_s=0.5)
    with CollectorServer(store, port=0, limits=limits) as server:
        parts = urllib.parse.urlsplit(server.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(b"POST /v1/extension/batches HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            for _ in range(10):  # one header line now and then, never the blank line
                time.sleep(0.2)
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    break
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(4096) == b""  # closed by the collector
            assert time.monotonic() - started < 3
        # Others are still served.
        assert send(server.url, "GET", "/healthz")[0] == 200


def test_a_silent_connection_is_closed_after_the_header_timeout(store: Store) -> None:
    with CollectorServer(store, port=0, limits=ServerLimits(header_timeout_s=0.3)) as server:
        parts = urllib.parse.urlsplit(server.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            started = time.monotonic()
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(16) == b""
            assert time.monotonic() - started < 3


def test_oversized_headers_are_refused(store: Store) -> None:
    with CollectorServer(store, port=0, limits=ServerLimits(max_header_bytes=4096)) as server:
        status, _, _ = send(server.url, "GET", "/healthz", headers={"X-Big": "a" * 10_000})
        assert status == 400
        assert send(server.url, "GET", "/healthz")[0] == 200


def test_bodies_beyond_the_memory_budget_wait_their_turn_with_503(store: Store) -> None:
    """One request holding a large body in memory leaves no room for a second one; the second
    is told to come back, unread, and served once the first is done."""
    with CollectorServer(
        store, port=0, max_body_bytes=100_000, max_inflight_body_bytes=150_000
    ) as server:
        parts = urllib.parse.urlsplit(server.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as holder:
            holder.sendall(
                b"POST /v1/extension/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"
            )
            time.sleep(0.3)  # the first body is being read: its 100 kB are taken
            body = json.dumps(load_event("timeout")).encode().ljust(60_000)
            status, headers, _ = send(server.url, "POST", "/v1/extension/batches", body)
            assert status == 503 and headers["Retry-After"] == "2"
        time.sleep(0.3)
        status, _, _ = send(server.url, "POST", "/v1/extension/batches", body)
        assert status == 200


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> TlsFiles:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for pem in cert.cert_chain_pems[1:]:
        cert_file.write_bytes(cert_file.read_bytes() + pem.bytes())
    cert.private_key_pem.write_to_path(str(key_file))
    return TlsFiles(cert_file, key_file)


def test_tls_serves_every_endpoint_over_https(
    store: Store, ca: trustme.CA, tls_files: TlsFiles, tmp_path: Path
) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with CollectorServer(
        store, port=0, ingest_token=INGEST_TOKEN, read_token=READ_TOKEN, tls=tls_files
    ) as server:
        assert server.url.startswith("https://127.0.0.1:")
        for path, (content_type, body) in WRITE_ENDPOINTS.items():
            headers = {"Content-Type": content_type, **_auth_headers(path, INGEST_TOKEN)}
            status, _, _ = send(server.url, "POST", path, body, headers, context=context)
            assert status == 200, path
        assert send(server.url, "GET", "/healthz", context=context)[0] == 200
        # The read client verifies the certificate against a private CA bundle.
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        client = CollectorQueryClient(server.url, token=READ_TOKEN, ca_bundle=str(bundle))
        assert client.query("SELECT count() FROM invocations").scalar() == 1
        # Without the CA, the certificate is refused: nothing is sent.
        untrusted = CollectorQueryClient(server.url, token=READ_TOKEN, ca_bundle=None)
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            untrusted.query("SELECT 1")
        # Plain HTTP on the TLS port gets no answer.
        plain = server.url.replace("https://", "http://")
        with pytest.raises((http.client.HTTPException, OSError)):
            send(plain, "GET", "/healthz")


def test_tls_files_that_cannot_be_used_are_named(tls_files: TlsFiles, tmp_path: Path) -> None:
    from lambdascope.collector.httpserver import TlsError

    with pytest.raises(TlsError, match="does not exist"):
        TlsFiles(tmp_path / "missing.pem", tls_files.key_file).check()
    wrong_key = tmp_path / "other.key"
    trustme.CA().issue_cert("x").private_key_pem.write_to_path(str(wrong_key))
    with pytest.raises(TlsError, match="cannot use TLS certificate"):
        TlsFiles(tls_files.cert_file, wrong_key).check()


def _run(*args: str, env: dict[str, Any] | None = None) -> Any:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "lambdascope", "collector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(root), **(env or {})},
    )


def test_a_network_address_without_tokens_refuses_to_start(tmp_path: Path) -> None:
    clean = {"LAMBDASCOPE_TOKEN": "", "LAMBDASCOPE_READ_TOKEN": ""}
    done = _run("--store", f"chdb://{tmp_path}", "--host", "0.0.0.0", "--port", "0", env=clean)
    assert done.returncode == 2
    assert "without an ingest token" in done.stderr and "--token-file" in done.stderr
    token_only = {**clean, "LAMBDASCOPE_TOKEN": "t"}
    done = _run("--store", f"chdb://{tmp_path}", "--host", "0.0.0.0", "--port", "0", env=token_only)
    assert done.returncode == 2
    assert "without a read token" in done.stderr and "--read-open" in done.stderr


def test_a_token_flag_warns_that_it_is_visible_in_the_process_list(tmp_path: Path) -> None:
    # A port that is taken stops the collector right after the warnings are printed.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = _run("--store", f"chdb://{tmp_path}", "--port", port, "--token", "visible")
    assert "--token on the command line is visible to every user" in done.stderr


def test_both_tls_files_are_needed(tmp_path: Path) -> None:
    done = _run("--store", f"chdb://{tmp_path}", "--tls-cert", str(tmp_path / "c.pem"))
    assert done.returncode == 2 and "--tls-cert and --tls-key go together" in done.stderr
