"""The one query interface through which the analyzers, the TUI and scripts read the store.

Two transports, one behaviour:

* :class:`CollectorQueryClient` sends SQL text and its parameters to a collector's read API
  (``POST /api/v1/query``). This is the only way to read an embedded (chDB) store, because
  chDB allows one engine per data path and the collector owns it.
* :class:`DirectQueryClient` talks to ClickHouse through ``clickhouse-connect``: a ClickHouse
  server (``http(s)://``) from any process, or ``chdb://`` from the process that owns the store
  (the collector itself and in-process tests).

Both run every query read-only, bind parameters server-side (``{name:Type}`` placeholders;
values are never formatted into SQL) and return a :class:`QueryResult` whose values are plain
Python types: ``datetime`` (UTC-aware) for DateTime columns, ``str`` for UUIDs and Decimals.

Errors: :class:`QueryError` (the store refused or failed the query) and
:class:`StoreUnavailableError` (the collector or store could not be reached); both say which
URL failed and what to do.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import os
import re
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CollectorQueryClient",
    "DirectQueryClient",
    "QueryClient",
    "QueryError",
    "QueryResult",
    "ReadLimitError",
    "StoreUnavailableError",
    "bound_parameters",
    "jsonable",
    "revive",
]

#: Settings applied to every read: the engine refuses writes, and a query that would return
#: too much, run too long or take too much memory fails with an error naming the limit, instead
#: of being cut short silently (a truncated result would look complete).
READ_SETTINGS: dict[str, Any] = {
    "readonly": 1,
    "max_result_rows": 100_000,
    "max_result_bytes": 64 * 1024 * 1024,
    "result_overflow_mode": "throw",
    "max_execution_time": 30,
    "timeout_overflow_mode": "throw",
    "max_memory_usage": 2 * 1024 * 1024 * 1024,
}

#: ClickHouse error codes of the read limits above -> what to tell the user.
_ROWS = f"{READ_SETTINGS['max_result_rows']:,} rows"
_BYTES = f"{READ_SETTINGS['max_result_bytes'] // (1024 * 1024)} MB"
_LIMIT_ERRORS = {
    "TOO_MANY_ROWS_OR_BYTES": f"the result is over the read limit of {_ROWS} or {_BYTES}",
    "TOO_MANY_ROWS": f"the result is over the read limit of {_ROWS}",
    "TOO_MANY_BYTES": f"the result is over the read limit of {_BYTES}",
    "TIMEOUT_EXCEEDED": "the query ran past the read limit of "
    f"{READ_SETTINGS['max_execution_time']} s",
    "MEMORY_LIMIT_EXCEEDED": "the query needed more than the read limit of "
    f"{READ_SETTINGS['max_memory_usage'] // (1024**3)} GB of memory",
}


#: A PEM file of CA certificates for an https:// collector signed by a private CA.
CA_BUNDLE_ENV = "LAMBDASCOPE_CA_BUNDLE"


class QueryError(Exception):
    """The store refused or failed a query (bad SQL, unknown column, limit exceeded)."""


class StoreUnavailableError(QueryError):
    """The collector's read API or the ClickHouse store could not be reached."""


class ReadLimitError(QueryError):
    """The query hit one of the read limits (rows, bytes, time, memory); ``limit`` names it."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows and self.rows[0] else None


@runtime_checkable
class QueryClient(Protocol):
    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult: ...


def jsonable(value: Any) -> Any:
    """Turn one ClickHouse value into something ``json.dumps`` accepts, losslessly enough."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(
        value, uuid.UUID | decimal.Decimal | ipaddress.IPv4Address | ipaddress.IPv6Address
    ):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def revive(value: Any, type_name: str) -> Any:
    """Inverse of :func:`jsonable` for the types that JSON cannot carry (DateTime, Date)."""
    if value is None:
        return None
    bare = type_name
    for wrapper in ("Nullable(", "LowCardinality("):
        while bare.startswith(wrapper):
            bare = bare[len(wrapper) : -1]
    if bare.startswith("DateTime") and isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if bare == "Date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def _normalise_row(row: Sequence[Any]) -> tuple[Any, ...]:
    out = []
    for value in row:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        elif isinstance(value, uuid.UUID | decimal.Decimal):
            value = str(value)
        out.append(value)
    return tuple(out)


class DirectQueryClient:
    """Reads a ClickHouse store through ``clickhouse-connect`` (server, or chDB in its owner)."""

    def __init__(self, client: Any, *, settings: Mapping[str, Any] | None = None) -> None:
        self._client = client
        self._settings = {**READ_SETTINGS, **(settings or {})}

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        return self.run(self._client, sql, parameters)

    def run(
        self, client: Any, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> QueryResult:
        """``sql`` on ``client`` with this reader's settings, bound server-side."""
        try:
            result = client.query(
                sql, parameters=bound_parameters(sql, parameters), settings=self._settings
            )
        except Exception as exc:  # clickhouse-connect raises several unrelated types
            text = str(exc)
            for code, what in _LIMIT_ERRORS.items():
                if f"({code})" in text:
                    raise ReadLimitError(
                        f"{what}: aggregate, filter or add a LIMIT", limit=code
                    ) from exc
            raise QueryError(f"query failed: {text}") from exc
        return QueryResult(
            columns=tuple(result.column_names),
            types=tuple(t.name for t in result.column_types),
            rows=[_normalise_row(r) for r in result.result_rows],
        )


_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")


def bound_parameters(sql: str, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters ``sql`` names as ``{name:Type}`` placeholders, and no others.

    clickhouse-connect binds values server-side only when the query holds placeholders for
    them; given a parameter the text does not name, it falls back to formatting values into the
    text itself (``%(name)s``), which a value could break out of. The ``_64`` suffix is its
    DateTime64 hint for the name without it.
    """
    if not parameters:
        return {}
    names = set(_PLACEHOLDER.findall(sql))
    return {
        name: value
        for name, value in parameters.items()
        if name in names or (name.endswith("_64") and name[:-3] in names)
    }


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
