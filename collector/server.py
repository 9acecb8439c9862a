"""The collector's service: ingest (extension batches, OTLP, Firehose) and the read API.

:class:`CollectorServer` holds the work of each endpoint as plain methods (called on worker
threads) over :mod:`wire` (decoding, auth), :mod:`normalize` (pure) and
:class:`store.Store`; :mod:`app` is the HTTP shell around them and
:mod:`httpserver` serves it with uvicorn. At most ``max_pending_writes`` batches (and the
writer's bound on their rows) wait for the store at once, and the next one is told to come
back (503 + Retry-After) instead of queueing without bound. A batch is acknowledged only
after its rows are committed.

Endpoints::

    POST /v1/extension/batches   docs/architecture.md §1
    POST /api/v1/query           docs/architecture.md §3 (the read sandbox)
    POST /v1/traces, /v1/logs, /v1/metrics
                                 OTLP/HTTP (protobuf or JSON) into otel_traces / otel_logs /
                                 otel_metrics; replies in the request's encoding
    POST /v1/firehose/metrics    CloudWatch Metric Streams via Firehose (JSON or OpenTelemetry 1.0)
    GET  /healthz, /readyz       liveness; readiness = the store answers
    GET  /metrics                Prometheus text format
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from lambdascope.collector import firehose, otlp, otlp_proto
from lambdascope.collector.app import OTLP_PATHS, build_app
from lambdascope.collector.httpserver import HttpServer, ServerLimits, TlsFiles
from lambdascope.collector.prepare import prepare_batch
from lambdascope.collector.store import Store, StoreError
from lambdascope.collector.wire import HttpError, Metrics, bearer_matches, decode_body, parse_json
from lambdascope.collector.workers import PrepareWorkers
from lambdascope.collector.writer import BatchWriter, QueueFull
from lambdascope.query import QueryError, jsonable

__all__ = ["CollectorServer"]

log = logging.getLogger("lambdascope.collector")

DEFAULT_PORT = 4320
#: Lambda delivers telemetry batches up to ~2 x 1 MiB; an extension batch holds a few of them.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
#: Batches waiting for the store at once. Generous: the writer's queue is bounded by rows too
#: (collector/writer.py), and a fleet of small batches needs many in each commit.
DEFAULT_MAX_PENDING_WRITES = 256
#: Request bodies held at once across all requests (each is at most DEFAULT_MAX_BODY_BYTES).
DEFAULT_MAX_INFLIGHT_BODY_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_READS = 4
DEFAULT_MAX_WAITING_READS = 32
RETRY_AFTER_S = 2
#: A client that stalls mid-body gets 408 after this long.
SOCKET_TIMEOUT_S = 30.0


class CollectorServer:
    """The collector's service and its HTTP server on a background thread (``port=0`` picks a
    free port)."""

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
        *,
        tls: TlsFiles | None = None,
        max_inflight_body_bytes: int = DEFAULT_MAX_INFLIGHT_BODY_BYTES,
        max_concurrent_reads: int = DEFAULT_MAX_CONCURRENT_READS,
        max_waiting_reads: int = DEFAULT_MAX_WAITING_READS,
        body_timeout_s: float = SOCKET_TIMEOUT_S,
        limits: ServerLimits | None = None,
        ingest_workers: int = 0,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.ingest_token = ingest_token or None
        self.read_token = read_token or None
        self.max_body_bytes = max_body_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.max_pending_writes = max_pending_writes
        self.max_inflight_body_bytes = max(max_inflight_body_bytes, max_body_bytes)
        self.max_concurrent_reads = max(1, max_concurrent_reads)
        self.max_waiting_reads = max(0, max_waiting_reads)
        self.body_timeout_s = body_timeout_s
        self.retry_after_s = RETRY_AFTER_S
        self.tls = tls
        self.limits = limits or ServerLimits()
        self.metrics = Metrics()
        self.writer = BatchWriter(store, max_pending=max_pending_writes)
        # Decoding (gunzip included) and normalising is pure Python: more threads at it than
        # cores only make them (and the writer, which needs the GIL to serialise a group) wait
        # longer for the GIL, and each decompressed body may take max_decompressed_bytes.
        self._cpu_slots = threading.BoundedSemaphore(max(1, min(4, os.cpu_count() or 1)))
        #: Threads for ingest work: those waiting for their commit, plus those preparing one.
        self.ingest_threads = max_pending_writes + 8
        self._http: HttpServer | None = None
        #: Worker processes that decode and normalise batches (None: request threads do).
        self.workers = PrepareWorkers(ingest_workers) if ingest_workers > 0 else None

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the collector server is not started: call start() first")
        return self._http.url

    def start(self) -> CollectorServer:
        """Listen (raises OSError when the port is taken), then serve on a background thread."""
        http = HttpServer(build_app(self), self.host, self.port, limits=self.limits, tls=self.tls)
        if self.workers is not None:
            self.workers.start()
        self.writer.start()
        try:
            http.start()
        except BaseException:
            self.writer.stop()
            if self.workers is not None:
                self.workers.stop()
            raise
        self._http = http
        return self

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish (their batches are written), then
        write what is still queued (bounded) and close the socket."""
        if self._http is None:
            return
        self._http.stop()
        self._http = None
        self.writer.stop(timeout_s=drain_timeout_s)
        if self.workers is not None:
            self.workers.stop()

    def render_metrics(self) -> str:
        stats = self.writer.stats
        self.metrics.set("lambdascope_write_queue_depth", self.writer.pending)
        self.metrics.set("lambdascope_write_queue_capacity", self.writer.max_pending)
        self.metrics.set("lambdascope_write_queue_rows", self.writer.pending_rows)
        self.metrics.set("lambdascope_write_queue_rows_capacity", self.writer.max_pending_rows)
        self.metrics.set("lambdascope_insert_groups", stats.groups)
        self.metrics.set("lambdascope_insert_seconds_total", stats.insert_seconds)
        return self.metrics.render()

    def __enter__(self) -> CollectorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- endpoints ------------------------------------------------------------------------

    def ingest(self, body: bytes, content_encoding: str | None) -> dict[str, Any]:
        if self.workers is not None:
            with self.writer.preparing():
                batch = self.workers.prepare(body, content_encoding, self.max_decompressed_bytes)
        else:
            with self.writer.preparing(), self._cpu_slots:
                batch = prepare_batch(body, content_encoding, self.max_decompressed_bytes)
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
        if result.written_elsewhere:
            self.metrics.inc("lambdascope_batches_refused_total", reason="written_elsewhere")
            raise HttpError(
                503,
                f"batch {batch.batch_id} is being written by another collector of this store; "
                "retry, and it is answered as a duplicate once that write is complete",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        if result.duplicate:
            self.metrics.inc("lambdascope_batches_total", outcome="duplicate")
        else:
            self.metrics.inc("lambdascope_batches_total", outcome="stored")
            self.metrics.inc("lambdascope_telemetry_events_total", batch.accepted_events)
            self.metrics.inc("lambdascope_events_ignored_total", batch.ignored_events)
            self.metrics.inc("lambdascope_events_rejected_total", len(batch.rejected))
            self.metrics.inc("lambdascope_extension_dropped_records_total", batch.dropped_records)
            # Lines of a Managed Instances environment that named no request while several ran.
            self.metrics.inc(
                "lambdascope_log_lines_unattributed_total",
                getattr(batch, "unattributed_lines", 0),
            )
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
        with self._cpu_slots:
            data = decode_body(body, content_encoding, self.max_decompressed_bytes)
            try:
                parsed = otlp_proto.parse_payload(signal, data, media)
            except otlp.OtlpError as exc:
                raise HttpError(400, str(exc)) from None
            del data
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
        """Firehose HTTP endpoint delivery: every reply carries the request id and a timestamp.

        Records that cannot be stored are skipped and counted by reason, the rest stored, and
        the reply is 200 (:mod:`firehose` says why); a delivery that is not
        Firehose's format, or holds the OpenTelemetry 0.7.0 format, is refused with 400.
        """
        shown_id = request_id or ""

        def refuse(status: int, message: str, **headers: str) -> HttpError:
            payload = firehose.reply_body(shown_id, int(time.time() * 1000), message)
            return HttpError(status, message, headers=headers, payload=payload)

        if not bearer_matches(f"Bearer {access_key}" if access_key else None, self.ingest_token):
            raise refuse(401, "wrong or missing X-Amz-Firehose-Access-Key")
        try:
            with self._cpu_slots:
                data = parse_json(decode_body(body, content_encoding, self.max_decompressed_bytes))
                delivery = firehose.parse_firehose_request(request_id, data)
        except HttpError as exc:
            raise refuse(exc.status, exc.message) from None
        except firehose.FirehoseError as exc:
            # Firehose retries it and only its own error logs would show why: say it here too.
            log.warning("Firehose delivery %s refused: %s", shown_id, exc)
            raise refuse(exc.status, str(exc)) from None
        try:
            written = self.store.write_metrics(delivery.request_id, delivery.points)
        except StoreError as exc:
            log.warning("%s", exc)
            raise refuse(
                503, f"the store is unavailable: {exc}", **{"Retry-After": str(RETRY_AFTER_S)}
            ) from None
        self.metrics.inc("lambdascope_rows_written_total", written, table="cloudwatch_metrics")
        # Skipped records are acknowledged (a retry cannot fix them): the counter and the log
        # line are where they show.
        for reason, count in sorted(delivery.skipped.items()):
            self.metrics.inc("lambdascope_metric_lines_skipped_total", count, reason=reason)
        if delivery.skipped:
            log.warning(
                "Firehose delivery %s: stored %d metric data points, skipped %s",
                delivery.request_id,
                written,
                ", ".join(f"{n} {reason}" for reason, n in sorted(delivery.skipped.items())),
            )
        return firehose.reply_body(delivery.request_id, int(time.time() * 1000))

    def query(self, body: bytes, content_encoding: str | None) -> dict[str, Any]:
        with self._cpu_slots:
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
    status = getattr(exc, "status", 400)
    extra = {"reason": reason} if (reason := getattr(exc, "reason", None)) else {}
    return HttpError(status, str(exc), **extra)
