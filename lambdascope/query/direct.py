"""Reading a ClickHouse store directly through ``clickhouse-connect``: a server from any process,
or the embedded engine from the process that owns it. Every read is read-only, bounded by the
read limits and bound server-side."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from lambdascope.query.errors import QueryError, ReadLimitError
from lambdascope.query.result import QueryResult

__all__ = ["READ_SETTINGS", "DirectQueryClient", "bound_parameters"]

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
                sql,
                parameters=bound_parameters(sql, parameters),
                settings=self._settings,
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
