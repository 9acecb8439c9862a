"""The read interface's errors: each says which URL or limit failed and what to do."""

from __future__ import annotations

__all__ = ["QueryError", "ReadLimitError", "StoreUnavailableError"]


class QueryError(Exception):
    """The store refused or failed a query (bad SQL, unknown column, limit exceeded)."""


class StoreUnavailableError(QueryError):
    """The collector's read API or the ClickHouse store could not be reached."""


class ReadLimitError(QueryError):
    """The query hit one of the read limits (rows, bytes, time, memory); ``limit`` names it."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit
