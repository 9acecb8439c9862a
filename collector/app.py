"""The collector's HTTP endpoints as a Starlette application: a thin shell over
``CollectorServer`` (server.py), whose methods do the work on worker threads.

What this layer bounds, so that no client can take the collector's memory or threads:

* **Bodies in memory.** A request must say its ``Content-Length``; one over
  ``max_body_bytes`` is refused before its body is read (413), and all bodies being read or
  processed at once share ``max_inflight_body_bytes`` (past it: 503 + Retry-After, unread).
  Decompression runs inside the work below, a few at a time (``CollectorServer.decode``).
* **Threads.** Ingest work (decode, normalise, wait for the commit) runs on at most
  ``ingest_threads`` threads; reads on at most ``max_concurrent_reads``, each with its own
  store handle, so a slow read never holds up a fast one; past ``max_waiting_reads`` queued
  reads, 503 + Retry-After.
* **Time.** A body that does not arrive within ``body_timeout_s`` gets 408; the server bounds
  the headers (collector/httpserver.py) and every read runs under the store's time limit.

Every reply keeps the endpoint's own format (docs/architecture.md, collector/README.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lambdascope.collector import firehose, otlp_proto
from lambdascope.collector.wire import HttpError, Metrics, bearer_matches, json_bytes

__all__ = ["build_app"]

log = logging.getLogger("lambdascope.collector")

T = TypeVar("T")


class _Pingable(Protocol):
    def ping(self) -> bool: ...


class CollectorService(Protocol):
    """What the HTTP shell needs from the collector's service (``CollectorServer``): its
    limits, its tokens, and the work of each endpoint, called on worker threads."""

    ingest_token: str | None
    read_token: str | None
    max_body_bytes: int
    max_inflight_body_bytes: int
    max_concurrent_reads: int
    max_waiting_reads: int
    ingest_threads: int
    body_timeout_s: float
    retry_after_s: int
    metrics: Metrics

    @property
    def store(self) -> _Pingable: ...

    def ingest(self, body: bytes, content_encoding: str | None) -> dict[str, Any]: ...

    def query(self, body: bytes, content_encoding: str | None) -> dict[str, Any]: ...

    def otlp(
        self, path: str, body: bytes, content_encoding: str | None, content_type: str | None
    ) -> bytes: ...

    def firehose(
        self,
        body: bytes,
        content_encoding: str | None,
        request_id: str | None,
        access_key: str | None,
    ) -> dict[str, Any]: ...

    def render_metrics(self) -> str: ...


INGEST_PATH = "/v1/extension/batches"
QUERY_PATH = "/api/v1/query"
OTLP_PATHS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
FIREHOSE_PATH = "/v1/firehose/metrics"
POST_PATHS = (INGEST_PATH, QUERY_PATH, *OTLP_PATHS, FIREHOSE_PATH)
GET_PATHS = ("/healthz", "/readyz", "/metrics")


class _BodyBudget:
    """Bytes of request bodies the collector holds at once, across all requests."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            # One body is always let through alone, however large (it is under max_body_bytes).
            if self._used and self._used + size > self.limit:
                return False
            self._used += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self._used -= size


class _Endpoints:
    def __init__(self, service: CollectorService) -> None:
        self.service = service
        self.budget = _BodyBudget(service.max_inflight_body_bytes)
        # Created lazily: anyio limiters belong to the event loop that first uses them.
        self._ingest_limiter: anyio.CapacityLimiter | None = None
        self._read_limiter: anyio.CapacityLimiter | None = None
        self._reads_waiting = 0

    # -- helpers --------------------------------------------------------------------------

    async def _run(self, limiter: anyio.CapacityLimiter, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=limiter)

    @property
    def ingest_limiter(self) -> anyio.CapacityLimiter:
        if self._ingest_limiter is None:
            self._ingest_limiter = anyio.CapacityLimiter(self.service.ingest_threads)
        return self._ingest_limiter

    @property
    def read_limiter(self) -> anyio.CapacityLimiter:
        if self._read_limiter is None:
            self._read_limiter = anyio.CapacityLimiter(self.service.max_concurrent_reads)
        return self._read_limiter

    def _authorize(self, request: Request, token: str | None, what: str) -> None:
        if not bearer_matches(request.headers.get("authorization"), token):
            raise HttpError(
                401,
                f"missing or wrong bearer token for the {what} API: send "
                "'Authorization: Bearer <token>' with the collector's token",
                headers={"WWW-Authenticate": "Bearer", "Connection": "close"},
            )

    async def _with_body(
        self, request: Request, handle: Callable[[bytes], Awaitable[Response]]
    ) -> Response:
        """Read the body within the bounds above, then ``handle`` it; the body's share of the
        budget is held until the reply is ready."""
        length = self._content_length(request)
        if not self.budget.take(length):
            self.service.metrics.inc("lambdascope_requests_refused_total", reason="body_budget")
            raise HttpError(
                503,
                "the collector holds as many request bodies as it may; retry later",
                headers={"Retry-After": str(self.service.retry_after_s), "Connection": "close"},
            )
        try:
            body = await self._read(request, length)
            return await handle(body)
        finally:
            self.budget.give_back(length)

    def _content_length(self, request: Request) -> int:
        headers = request.headers
        close = {"Connection": "close"}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise HttpError(
                411, "chunked bodies are not accepted: send Content-Length", headers=close
            )
        text = headers.get("content-length")
        if text is None:
            raise HttpError(411, "Content-Length is required", headers=close)
        try:
            length = int(text)
        except ValueError:
            raise HttpError(
                400, f"Content-Length {text!r} is not a number", headers=close
            ) from None
        if length < 0:
            raise HttpError(400, "Content-Length must not be negative", headers=close)
        limit = self.service.max_body_bytes
        if length > limit:
            raise HttpError(
                413,
                f"body of {length} bytes exceeds the limit of {limit}: send smaller batches",
                headers=close,
            )
        return length

    async def _read(self, request: Request, length: int) -> bytes:
        timeout_s = self.service.body_timeout_s
        body = bytearray()
        try:
            async with asyncio.timeout(timeout_s):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > length:
                        break
        except TimeoutError:
            raise HttpError(
                408,
                f"the body did not arrive within {timeout_s:.0f} s",
                headers={"Connection": "close"},
            ) from None
        if len(body) != length:
            raise HttpError(
                400,
                f"body has {len(body)} bytes, Content-Length said {length}",
                headers={"Connection": "close"},
            )
        return bytes(body)

    def _count(self, path: str, status: int) -> None:
        route = path if path in POST_PATHS else "other"
        self.service.metrics.inc("lambdascope_requests_total", path=route, code=str(status))

    # -- endpoints ------------------------------------------------------------------------

    async def ingest(self, request: Request) -> Response:
        async def handle(body: bytes) -> Response:
            encoding = request.headers.get("content-encoding")
            reply = await self._run(
                self.ingest_limiter, functools.partial(self.service.ingest, body, encoding)
            )
            return _json(200, reply)

        return await self._json_endpoint(request, "ingest", handle)

    async def query(self, request: Request) -> Response:
        async def handle(body: bytes) -> Response:
            encoding = request.headers.get("content-encoding")
            limit = self.service.max_concurrent_reads + self.service.max_waiting_reads
            if self._reads_waiting >= limit:
                self.service.metrics.inc("lambdascope_reads_refused_total", reason="busy")
                raise HttpError(
                    503,
                    f"{self._reads_waiting} reads are running or waiting already; retry later",
                    headers={"Retry-After": str(self.service.retry_after_s)},
                )
            self._reads_waiting += 1
            try:
                reply = await self._run(
                    self.read_limiter, functools.partial(self.service.query, body, encoding)
                )
            finally:
                self._reads_waiting -= 1
            return Response(json_bytes(reply), 200, media_type="application/json")

        return await self._json_endpoint(request, "read", handle)

    async def _json_endpoint(
        self, request: Request, api: str, handle: Callable[[bytes], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        try:
            token = self.service.ingest_token if api == "ingest" else self.service.read_token
            self._authorize(request, token, api)
            response = await self._with_body(request, handle)
        except HttpError as exc:
            self._count(path, exc.status)
            return _json(exc.status, exc.body(), exc.headers)
        except Exception:  # a bug must not take the connection down with a traceback
            log.exception("unexpected failure on POST %s", path)
            self._count(path, 500)
            return _json(500, {"error": "internal error in the collector; see its log"})
        self._count(path, response.status_code)
        return response

    async def otlp(self, request: Request) -> Response:
        path = request.url.path
        content_type = request.headers.get("content-type")
        media = otlp_proto.media_type(content_type)
        if media not in otlp_proto.MEDIA_TYPES:
            media = otlp_proto.JSON

        async def handle(body: bytes) -> Response:
            encoding = request.headers.get("content-encoding")
            payload = await self._run(
                self.ingest_limiter,
                functools.partial(self.service.otlp, path, body, encoding, content_type),
            )
            return Response(payload, 200, media_type=media)

        try:
            self._authorize(request, self.service.ingest_token, "ingest")
            response = await self._with_body(request, handle)
        except HttpError as exc:
            # OTLP/HTTP: a refusal carries a google.rpc.Status in the request's encoding.
            self._count(path, exc.status)
            status = otlp_proto.status_body(media, otlp_proto.rpc_code(exc.status), exc.message)
            return Response(status, exc.status, headers=exc.headers, media_type=media)
        except Exception:
            log.exception("unexpected failure on POST %s", path)
            self._count(path, 500)
            status = otlp_proto.status_body(media, otlp_proto.rpc_code(500), "internal error")
            return Response(status, 500, media_type=media)
        self._count(path, 200)
        return response

    async def firehose(self, request: Request) -> Response:
        # Firehose authenticates with its access key header, not a bearer token, and expects
        # its request id back in every reply, refusals included.
        path = request.url.path
        headers = request.headers
        request_id = headers.get("x-amz-firehose-request-id")

        async def handle(body: bytes) -> Response:
            reply = await self._run(
                self.ingest_limiter,
                functools.partial(
                    self.service.firehose,
                    body,
                    headers.get("content-encoding"),
                    request_id,
                    headers.get("x-amz-firehose-access-key"),
                ),
            )
            return _json(200, reply)

        try:
            response = await self._with_body(request, handle)
        except HttpError as exc:
            if exc.payload is None:
                exc.payload = firehose.reply_body(
                    request_id or "", int(time.time() * 1000), exc.message
                )
            self._count(path, exc.status)
            return _json(exc.status, exc.body(), exc.headers)
        except Exception:
            log.exception("unexpected failure on POST %s", path)
            self._count(path, 500)
            payload = firehose.reply_body(
                request_id or "", int(time.time() * 1000), "internal error"
            )
            return _json(500, payload)
        self._count(path, 200)
        return response

    async def healthz(self, request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ready = await anyio.to_thread.run_sync(self.service.store.ping)
        if ready:
            return _json(200, {"status": "ready"})
        return _json(503, {"status": "unavailable", "error": "the store does not answer"})

    async def metrics(self, request: Request) -> Response:
        text = self.service.render_metrics()
        return Response(text.encode(), 200, media_type="text/plain; version=0.0.4")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(body), status, headers=headers, media_type="application/json")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _json(404, {"error": f"no such endpoint: {request.method} {request.url.path}"})


async def _wrong_method(request: Request, exc: Exception) -> Response:
    path = request.url.path
    allowed = "POST" if path in POST_PATHS else "GET"
    headers = getattr(exc, "headers", None) or {"Allow": allowed}
    return _json(405, {"error": f"use {allowed} for {path}"}, dict(headers))


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return await _not_found(request, exc)
    if status == 405:
        return await _wrong_method(request, exc)
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return _json(status, {"error": str(detail)})


def build_app(service: CollectorService) -> Starlette:
    """The collector's endpoints (docs/architecture.md) over ``service``."""
    endpoints = _Endpoints(service)
    routes = [
        Route(INGEST_PATH, endpoints.ingest, methods=["POST"]),
        Route(QUERY_PATH, endpoints.query, methods=["POST"]),
        Route(FIREHOSE_PATH, endpoints.firehose, methods=["POST"]),
        *(Route(path, endpoints.otlp, methods=["POST"]) for path in OTLP_PATHS),
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/readyz", endpoints.readyz, methods=["GET"]),
        Route("/metrics", endpoints.metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_exception})
