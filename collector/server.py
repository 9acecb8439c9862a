"""The collector's HTTP service: ingest (extension batches) and the read API.

A thin shell over :mod:`collector.wire` (decoding, auth), :mod:`collector.normalize` (pure) and
:class:`collector.store.Store`. Each request runs on its own thread, so a slow client or a slow
insert never blocks the others; at most ``max_pending_writes`` batches wait for the store at
once, and the next one is told to come back (503 + Retry-After) instead of queueing without
bound. A batch is acknowledged only after its rows are committed.

Endpoints::

    POST /v1/extension/batches   docs/architecture.md §1
    POST /api/v1/query           docs/architecture.md §3
    POST /v1/traces, /v1/logs, /v1/metrics
                                 OTLP/HTTP (protobuf or JSON) into otel_traces / otel_logs /
                                 otel_metrics; replies in the request's encoding
    POST /v1/firehose/metrics    CloudWatch Metric Streams via Firehose (JSON records)
    GET  /healthz, /readyz       liveness; readiness = the store answers
    GET  /metrics                Prometheus text format
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from collector import firehose, otlp, otlp_batch, otlp_proto
from collector.normalize import BatchError, normalize_batch
from collector.schema import DEFAULT_RETENTION_DAYS, SchemaError
from collector.store import Store, StoreError
from collector.wire import HttpError, Metrics, bearer_matches, decode_body, json_bytes, parse_json
from collector.writer import BatchWriter, QueueFull
from lambdascope.query import QueryError, jsonable

if TYPE_CHECKING:
    from analyzers.alerts import AlertService
    from collector.cluster import ClusterConfig

__all__ = ["CollectorServer", "run_collector"]

log = logging.getLogger("lambdascope.collector")

DEFAULT_PORT = 4320
#: Lambda delivers telemetry batches up to ~2 x 1 MiB; an extension batch holds a few of them.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_PENDING_WRITES = 32
RETRY_AFTER_S = 2
#: A client that stalls mid-request loses its connection after this long.
SOCKET_TIMEOUT_S = 30.0

INGEST_PATH = "/v1/extension/batches"
QUERY_PATH = "/api/v1/query"
OTLP_TRACES_PATH = "/v1/traces"
OTLP_LOGS_PATH = "/v1/logs"
OTLP_METRICS_PATH = "/v1/metrics"
#: OTLP/HTTP path -> signal (collector.otlp_proto.SIGNALS).
OTLP_PATHS = {OTLP_TRACES_PATH: "traces", OTLP_LOGS_PATH: "logs", OTLP_METRICS_PATH: "metrics"}
FIREHOSE_PATH = "/v1/firehose/metrics"
POST_PATHS = (INGEST_PATH, QUERY_PATH, *OTLP_PATHS, FIREHOSE_PATH)


class CollectorServer:
    """The collector's HTTP server on a background thread (``port=0`` picks a free port)."""

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        ingest_token: str | None = None,
        read_token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_pending_writes: int = DEFAULT_MAX_PENDING_WRITES,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.ingest_token = ingest_token or None
        self.read_token = read_token or None
        self.max_body_bytes = max_body_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.max_pending_writes = max_pending_writes
        self.metrics = Metrics()
        self.writer = BatchWriter(store, max_pending=max_pending_writes)
        # Decoding and normalising is pure Python: more threads at it than cores only make them
        # (and the writer, which needs the GIL to serialise a group) wait longer for the GIL.
        self._cpu_slots = threading.BoundedSemaphore(max(1, min(4, os.cpu_count() or 1)))
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the collector server is not started: call start() first")
        host, port = self._httpd.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}"

    def start(self) -> CollectorServer:
        handler = type("Handler", (_Handler,), {"app": self})
        server_class = _Server6 if ":" in self.host else _Server
        self._httpd = server_class((self.host, self.port), handler)
        self.writer.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="lambdascope-collector",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting, write what is queued (bounded), close the socket."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self.writer.stop(timeout_s=drain_timeout_s)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=drain_timeout_s)
        self._httpd = None
        self._thread = None

    def render_metrics(self) -> str:
        stats = self.writer.stats
        self.metrics.set("lambdascope_write_queue_depth", self.writer.pending)
        self.metrics.set("lambdascope_write_queue_capacity", self.writer.max_pending)
        self.metrics.set("lambdascope_insert_groups", stats.groups)
        self.metrics.set("lambdascope_insert_seconds_total", stats.insert_seconds)
        return self.metrics.render()

    def __enter__(self) -> CollectorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- endpoints ------------------------------------------------------------------------

    def ingest(self, body: bytes, content_encoding: str | None) -> dict[str, Any]:
        with self.writer.preparing(), self._cpu_slots:
            data = decode_body(body, content_encoding, self.max_decompressed_bytes)
            raw = parse_json(data)
            del data
            try:
                batch = normalize_batch(raw)
            except BatchError as exc:
                raise HttpError(400, str(exc), field=exc.field) from None
            # OTLP exports forwarded by the extension; a bad one is rejected alone.
            batch = otlp_batch.attach(batch, raw, max_total_bytes=self.max_decompressed_bytes)
            del raw
        try:
            result = self.writer.submit(batch)
        except QueueFull as exc:
            self.metrics.inc("lambdascope_batches_refused_total", reason="queue_full")
            raise HttpError(
                503,
                f"the collector is busy: {exc}; retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        except StoreError as exc:
            log.warning("%s", exc)
            self.metrics.inc("lambdascope_batches_refused_total", reason="store_unavailable")
            raise HttpError(
                503,
                f"the store is unavailable, nothing was stored: {exc}",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        if result.duplicate:
            self.metrics.inc("lambdascope_batches_total", outcome="duplicate")
        else:
            self.metrics.inc("lambdascope_batches_total", outcome="stored")
            self.metrics.inc("lambdascope_telemetry_events_total", batch.accepted_events)
            self.metrics.inc("lambdascope_events_ignored_total", batch.ignored_events)
            self.metrics.inc("lambdascope_events_rejected_total", len(batch.rejected))
            self.metrics.inc("lambdascope_extension_dropped_records_total", batch.dropped_records)
            self.metrics.inc(
                "lambdascope_rows_written_total", result.invocation_rows, table="invocation_parts"
            )
            self.metrics.inc("lambdascope_rows_written_total", result.log_rows, table="logs")
            self.metrics.inc(
                "lambdascope_rows_written_total", result.cold_start_rows, table="cold_start_parts"
            )
            for table, rows in getattr(batch, "otel_rows", {}).items():
                self.metrics.inc("lambdascope_rows_written_total", len(rows), table=table)
        return {
            "batch_id": batch.batch_id,
            "accepted_events": batch.accepted_events,
            "ignored_events": batch.ignored_events,
            "duplicate": result.duplicate,
            # Malformed events were skipped, the rest stored: say which, so they can be fixed.
            "rejected_events": [
                {"field": field, "error": message} for field, message in batch.rejected[:20]
            ],
            "rejected_count": len(batch.rejected),
        }

    def otlp(
        self, path: str, body: bytes, content_encoding: str | None, content_type: str | None
    ) -> bytes:
        """One OTLP/HTTP export (protobuf or JSON, gzip or not): the ``Export*ServiceResponse``
        in the request's encoding, with a partial success naming what was rejected.

        Raises :class:`HttpError`: 400 for a body that is not an export request, 415 for
        another content type, 503 + Retry-After when the store does not take the rows.
        """
        signal = otlp_proto.SIGNALS[OTLP_PATHS[path]]
        media = otlp_proto.media_type(content_type)
        if media not in otlp_proto.MEDIA_TYPES:
            raise HttpError(
                415,
                f"Content-Type {media!r} is not OTLP/HTTP: send application/x-protobuf "
                "(OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf) or application/json (http/json)",
            )
        data = decode_body(body, content_encoding, self.max_decompressed_bytes)
        try:
            parsed = otlp_proto.parse_payload(signal, data, media)
        except otlp.OtlpError as exc:
            raise HttpError(400, str(exc)) from None
        try:
            written = self.store.write_otlp(signal.table, parsed.rows)
        except StoreError as exc:
            log.warning("%s", exc)
            raise HttpError(
                503,
                f"the store is unavailable, nothing was stored: {exc}",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        self.metrics.inc("lambdascope_rows_written_total", written, table=signal.table)
        if parsed.rejected:
            self.metrics.inc("lambdascope_otlp_rejected_total", parsed.rejected, table=signal.table)
        return otlp_proto.response_body(signal, media, parsed.rejected, "; ".join(parsed.errors))

    def firehose(
        self,
        body: bytes,
        content_encoding: str | None,
        request_id: str | None,
        access_key: str | None,
    ) -> dict[str, Any]:
        """Firehose HTTP endpoint delivery: every reply carries the request id and a timestamp."""
        shown_id = request_id or ""

        def refuse(status: int, message: str, **headers: str) -> HttpError:
            payload = firehose.reply_body(shown_id, int(time.time() * 1000), message)
            return HttpError(status, message, headers=headers, payload=payload)

        if not bearer_matches(f"Bearer {access_key}" if access_key else None, self.ingest_token):
            raise refuse(401, "wrong or missing X-Amz-Firehose-Access-Key")
        try:
            data = parse_json(decode_body(body, content_encoding, self.max_decompressed_bytes))
            delivery = firehose.parse_firehose_request(request_id, data)
        except HttpError as exc:
            raise refuse(exc.status, exc.message) from None
        except firehose.FirehoseError as exc:
            raise refuse(exc.status, str(exc)) from None
        try:
            written = self.store.write_metrics(delivery.request_id, delivery.points)
        except StoreError as exc:
            log.warning("%s", exc)
            raise refuse(
                503, f"the store is unavailable: {exc}", **{"Retry-After": str(RETRY_AFTER_S)}
            ) from None
        self.metrics.inc("lambdascope_rows_written_total", written, table="cloudwatch_metrics")
        if delivery.skipped_lines:
            self.metrics.inc("lambdascope_metric_lines_skipped_total", delivery.skipped_lines)
        return firehose.reply_body(delivery.request_id, int(time.time() * 1000))

    def query(self, body: bytes, content_encoding: str | None) -> dict[str, Any]:
        request = parse_json(decode_body(body, content_encoding, self.max_decompressed_bytes))
        if not isinstance(request, dict):
            raise HttpError(400, 'body must be a JSON object: {"sql": "...", "parameters": {...}}')
        sql_text = request.get("sql")
        if not isinstance(sql_text, str) or not sql_text.strip():
            raise HttpError(400, "sql: must be a non-empty string holding one SELECT query")
        parameters = request.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise HttpError(400, "parameters: must be a JSON object of placeholder values")
        try:
            result = self.store.reader().query(sql_text, parameters)
        except QueryError as exc:
            raise _query_refusal(exc) from None
        return {
            "columns": list(result.columns),
            "types": list(result.types),
            "rows": [[jsonable(v) for v in row] for row in result.rows],
        }


def _query_refusal(exc: QueryError) -> HttpError:
    cause = exc.__cause__
    if type(cause).__name__ == "OperationalError":  # the store itself is unreachable
        return HttpError(
            503, f"the store is unavailable: {cause}", headers={"Retry-After": str(RETRY_AFTER_S)}
        )
    message = str(exc)
    if "READONLY" in message or "readonly mode" in message:
        message = (
            "the read API is read-only: only queries that read (SELECT, SHOW, DESCRIBE, "
            f"EXPLAIN) run here. The store said: {message}"
        )
    return HttpError(400, message)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    app: CollectorServer
    protocol_version = "HTTP/1.1"
    server_version = "lambdascope-collector"
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._reply(200, {"status": "ok"})
        elif path == "/readyz":
            if self.app.store.ping():
                self._reply(200, {"status": "ready"})
            else:
                self._reply(503, {"status": "unavailable", "error": "the store does not answer"})
        elif path == "/metrics":
            self._send(200, self.app.render_metrics().encode(), "text/plain; version=0.0.4")
        elif path in POST_PATHS:
            self._reply(405, {"error": f"use POST for {path}"}, {"Allow": "POST"})
        else:
            self._reply(404, {"error": f"no such endpoint: GET {path}"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == INGEST_PATH:
                self._authorize(self.app.ingest_token, "ingest")
                body = self._read_body()
                reply = self.app.ingest(body, self.headers.get("Content-Encoding"))
            elif path == QUERY_PATH:
                self._authorize(self.app.read_token, "read")
                body = self._read_body()
                reply = self.app.query(body, self.headers.get("Content-Encoding"))
            elif path == FIREHOSE_PATH:
                # Firehose authenticates with its access key header, not a bearer token, and
                # expects its request id back in every reply, refusals included.
                try:
                    body = self._read_body()
                except HttpError as exc:
                    exc.payload = firehose.reply_body(
                        self.headers.get("X-Amz-Firehose-Request-Id") or "",
                        int(time.time() * 1000),
                        exc.message,
                    )
                    raise
                reply = self.app.firehose(
                    body,
                    self.headers.get("Content-Encoding"),
                    self.headers.get("X-Amz-Firehose-Request-Id"),
                    self.headers.get("X-Amz-Firehose-Access-Key"),
                )
            elif path in OTLP_PATHS:
                self._otlp(path)  # answers in the request's encoding, refusals included
                return
            elif path in ("/healthz", "/readyz", "/metrics"):
                raise HttpError(405, f"use GET for {path}", headers={"Allow": "GET"})
            else:
                raise HttpError(404, f"no such endpoint: POST {path}")
        except HttpError as exc:
            self.app.metrics.inc(
                "lambdascope_requests_total", path=_route(path), code=str(exc.status)
            )
            self._reply(exc.status, exc.body(), exc.headers)
            return
        except Exception:  # a bug must not take the connection down with a traceback
            log.exception("unexpected failure on POST %s", path)
            self.app.metrics.inc("lambdascope_requests_total", path=_route(path), code="500")
            self._reply(500, {"error": "internal error in the collector; see its log"})
            return
        self.app.metrics.inc("lambdascope_requests_total", path=_route(path), code="200")
        self._reply(200, reply)

    def _otlp(self, path: str) -> None:
        media = otlp_proto.media_type(self.headers.get("Content-Type"))
        if media not in otlp_proto.MEDIA_TYPES:
            media = otlp_proto.JSON
        try:
            self._authorize(self.app.ingest_token, "ingest")
            payload = self.app.otlp(
                path,
                self._read_body(),
                self.headers.get("Content-Encoding"),
                self.headers.get("Content-Type"),
            )
        except HttpError as exc:
            # OTLP/HTTP: a refusal carries a google.rpc.Status in the request's encoding.
            self.app.metrics.inc("lambdascope_requests_total", path=path, code=str(exc.status))
            status = otlp_proto.status_body(media, otlp_proto.rpc_code(exc.status), exc.message)
            self._send(exc.status, status, media, exc.headers)
            return
        self.app.metrics.inc("lambdascope_requests_total", path=path, code="200")
        self._send(200, payload, media)

    def _authorize(self, token: str | None, what: str) -> None:
        if not bearer_matches(self.headers.get("Authorization"), token):
            self.close_connection = True
            raise HttpError(
                401,
                f"missing or wrong bearer token for the {what} API: send "
                "'Authorization: Bearer <token>' with the collector's token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise HttpError(411, "chunked bodies are not accepted: send Content-Length")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            raise HttpError(411, "Content-Length is required")
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise HttpError(400, f"Content-Length {length_header!r} is not a number") from None
        if length < 0:
            self.close_connection = True
            raise HttpError(400, "Content-Length must not be negative")
        if length > self.app.max_body_bytes:
            # The unread body would be parsed as the next request: drop the connection.
            self.close_connection = True
            raise HttpError(
                413,
                f"body of {length} bytes exceeds the limit of {self.app.max_body_bytes}: "
                "send smaller batches",
            )
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise HttpError(
                408, f"the body did not arrive within {SOCKET_TIMEOUT_S:.0f} s"
            ) from None
        if len(body) < length:
            self.close_connection = True
            raise HttpError(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json_bytes(body), "application/json", headers)

    def _send(
        self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _route(path: str) -> str:
    return path if path in POST_PATHS else "other"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_collector(
    store_url: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    database: str = "lambdascope",
    ingest_token: str | None = None,
    read_token: str | None = None,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    rules_path: str | Path | None = None,
    alert_interval: timedelta = timedelta(minutes=1),
    cluster: ClusterConfig | None = None,
) -> None:
    """Open the store, serve until SIGINT/SIGTERM, then stop cleanly (writes in flight finish).

    Without an ingest token anyone who reaches the port could write, so the collector then
    binds to loopback only and says so. Exits with status 2 when the store cannot be opened.
    """
    if not ingest_token and not is_loopback(host):
        print(
            f"lambdascope collector: no ingest token configured, so binding to 127.0.0.1 "
            f"instead of {host}; set --token (LAMBDASCOPE_TOKEN) to listen on other addresses",
            file=sys.stderr,
        )
        host = "127.0.0.1"
    if rules_path is not None:
        _check_rules(Path(rules_path))
    try:
        store = Store.open(store_url, database, retention_days=retention_days, cluster=cluster)
    except (StoreError, SchemaError) as exc:
        print(f"lambdascope collector: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # Signal handlers can only be installed from the main thread; elsewhere the caller
        # stops the collector by other means (KeyboardInterrupt does not reach other threads).
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
    server = CollectorServer(store, host, port, ingest_token=ingest_token, read_token=read_token)
    alerts: AlertService | None = None
    try:
        try:
            server.start()
        except OSError as exc:
            print(
                f"lambdascope collector: cannot listen on {host}:{port}: {exc.strerror}. "
                "Is another collector running? Choose another --port.",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        print(
            f"lambdascope collector listening on {server.url} "
            f"(store {store.url}, database {store.database})",
            flush=True,
        )
        if rules_path is not None:
            alerts = _start_alerts(store, Path(rules_path), alert_interval, server.url)
        while not stop.wait(timeout=0.5):
            pass
    finally:
        if alerts is not None:
            alerts.stop()
        server.stop()
        store.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start_alerts(
    store: Store, rules_path: Path, interval: timedelta, collector_url: str
) -> AlertService:
    """Evaluate the alert rules inside the collector; an invalid rules file refuses to start."""
    from analyzers.alerts import (
        ALERT_TABLES_DDL,
        AlertService,
        ClickHouseAlertStateStore,
        RulesError,
    )

    store.create_tables(ALERT_TABLES_DDL)
    state = ClickHouseAlertStateStore(store.open_writer(), create_tables=False)
    service = AlertService(
        rules_path, store.reader(), state, interval=interval, collector_url=collector_url
    )
    try:
        service.start()
    except RulesError as exc:
        print(f"lambdascope collector: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"alert rules from {rules_path}, evaluated every {interval}", flush=True)
    return service


def _check_rules(rules_path: Path) -> None:
    """Refuse to start on an invalid rules file, before announcing the collector as up."""
    from analyzers.alerts import RulesError, load_rules

    try:
        load_rules(rules_path)
    except RulesError as exc:
        print(f"lambdascope collector: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
