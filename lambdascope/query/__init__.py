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

from lambdascope.query.direct import READ_SETTINGS, DirectQueryClient, bound_parameters
from lambdascope.query.errors import QueryError, ReadLimitError, StoreUnavailableError
from lambdascope.query.http_api import CA_BUNDLE_ENV, CollectorQueryClient
from lambdascope.query.result import QueryClient, QueryResult, jsonable, revive

__all__ = [
    "CA_BUNDLE_ENV",
    "READ_SETTINGS",
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
