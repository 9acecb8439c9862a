"""Reading through a collector's read API (``POST /api/v1/query``): the only way to read an
embedded store from outside the collector that owns it."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from lambdascope.query.errors import QueryError, StoreUnavailableError
from lambdascope.query.result import QueryResult, jsonable, revive

__all__ = ["CA_BUNDLE_ENV", "CollectorQueryClient"]

#: A PEM file of CA certificates for an https:// collector signed by a private CA.
CA_BUNDLE_ENV = "LAMBDASCOPE_CA_BUNDLE"


class CollectorQueryClient:
    """Reads through a collector's read API: ``POST {url}/api/v1/query``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 35.0,
        ca_bundle: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        # A little over the collector's own 30 s read limit, so its refusal arrives first.
        self._timeout_s = timeout_s
        self._ssl_context: ssl.SSLContext | None = None
        ca_bundle = ca_bundle or os.environ.get(CA_BUNDLE_ENV) or None
        if self.url.startswith("https:"):
            # Verified against the system's CAs, or the given bundle for a private CA.
            self._ssl_context = ssl.create_default_context(cafile=ca_bundle)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        bound = {name: _parameter(value) for name, value in (parameters or {}).items()}
        body = json.dumps({"sql": sql, "parameters": bound}).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v1/query",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(
                request, timeout=self._timeout_s, context=self._ssl_context
            ) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code == 503:  # the collector is up but its store is not
                raise StoreUnavailableError(
                    f"the collector at {self.url} cannot reach its store: {message}"
                ) from exc
            raise QueryError(
                f"collector at {self.url} refused the query ({exc.code}): {message}"
            ) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(
                f"cannot reach the collector's read API at {self.url}: {exc}. "
                "Start it with `lambdascope collector` or pass the right --collector URL."
            ) from exc
        types = tuple(payload.get("types") or ())
        columns = tuple(payload.get("columns") or ())
        rows = [
            tuple(revive(v, t) for v, t in zip(row, types, strict=True))
            for row in payload.get("rows") or ()
        ]
        return QueryResult(columns=columns, types=types, rows=rows)


def _parameter(value: Any) -> Any:
    """A parameter as JSON, with datetimes in the text form ClickHouse parses for DateTime64."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return jsonable(value)


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", exc.reason))
    except Exception:
        return str(exc.reason)
