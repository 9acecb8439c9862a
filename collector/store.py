"""The ClickHouse store behind one URL: ``chdb:///abs/path`` (embedded) or ``http(s)://...``.

Both go through ``clickhouse_connect.get_client(dsn=url)``; the only differences are made here
(where the embedded data lives, HTTP session handling). Writes are column-oriented inserts that
return only once ClickHouse has committed them, so the server never acknowledges a batch it has
not stored.

Exceptions::

    StoreError            the store cannot be opened, written or read (names the URL and a fix)
    schema.SchemaError    the store's schema is newer than this code, or a migration failed
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect

from lambdascope.collector import firehose, otlp, schema, sql
from lambdascope.collector.access import grant_problems
from lambdascope.collector.batch_rows import (
    COLD_START_COLUMNS,
    INVOCATION_COLUMNS,
    LOG_COLUMNS,
    NormalizedBatch,
)
from lambdascope.collector.cluster import (
    ClusterConfig,
    ClusterError,
    check_store_url,
    insert_settings,
    rewrite,
)
from lambdascope.collector.prepare import prepare_batch
from lambdascope.collector.readguard import (
    GuardedRead,
    QueryRefused,
    ReadPolicy,
    ReadRefused,
    guard_read,
)
from lambdascope.collector.store_urls import (
    DEFAULT_STORE_URL,
    StoreError,
    database_in_url,
    open_failure,
    redact_url,
    resolve_url,
)
from lambdascope.collector.wire import HttpError
from lambdascope.query import DirectQueryClient, QueryError, QueryResult

__all__ = ["DEFAULT_STORE_URL", "Store", "StoreError", "WriteResult", "redact_url"]

log = logging.getLogger("lambdascope.collector")

#: Tables of the collector's own bookkeeping that the read API does not serve: the ledger
#: keeps request bodies as received, which no reader needs.
INTERNAL_TABLES = frozenset({"batches"})
#: Groups this process wrote or redid, not to be redone when one of their batches comes again.
COMPLETED_GROUPS_KEPT = 100_000
#: Idle read handles kept open (the collector runs at most a few reads at once).
READ_POOL_SIZE = 8


@dataclass(frozen=True)
class WriteResult:
    batch_id: str
    duplicate: bool
    invocation_rows: int = 0
    log_rows: int = 0
    cold_start_rows: int = 0
    #: Another collector claimed this batch first and writes it: nothing of it was stored
    #: here, and its sender should retry (the retry is answered as a duplicate once the other
    #: write is complete, or completes it).
    written_elsewhere: bool = False


class Store:
    """One store database, opened (created, migrated) once per process."""

    #: The cluster the schema was created on (None: one server or the embedded engine), so
    #: other packages' DDL on this store can use collector.cluster.rewrite too.
    cluster: ClusterConfig | None = None
    #: The bound on a batch body's decompressed size when a write is redone from its intent.
    max_decompressed_bytes = 64 * 1024 * 1024

    def __init__(self, client: Any, *, url: str, database: str, connect: Any | None = None) -> None:
        self._client = client
        self.url = url
        self.database = database
        # Reads get handles of their own (read_client): on chDB, clickhouse-connect applies a
        # query's settings with SET, and readonly=1 would stick to a handle ingest shares.
        self._connect = connect
        self._connect_writer: Any | None = None  # set by open(): writes wait for every shard
        #: Idle read handles, for reads running at once (see read_client).
        self._read_pool: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=READ_POOL_SIZE)
        self.is_server = False
        self.has_read_user = False
        #: Other collectors may write to this store at once (a server store): after its
        #: ``batches`` rows, a group checks that it claimed each of its batches first.
        self.shared_writers = False
        # Serialises the "seen this batch?" check with the inserts, so a retried batch racing
        # its original is answered duplicate once the first commit landed.
        self._write_lock = threading.Lock()
        #: The tags last written per function: a batch carrying the same ones writes nothing
        #: (most batches do), so tags cost an insert only when they change or at start.
        self._tags_written: dict[str, tuple[tuple[str, str], ...]] = {}
        #: A second write handle and its thread, for inserting two tables at once.
        self._side: tuple[Any, concurrent.futures.ThreadPoolExecutor] | None = None
        #: Column types per (table, columns), asked of the store once: see _put.
        self._column_types: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        self._completed_groups: OrderedDict[str, None] = OrderedDict()
        self._seen_sql = sql.SELECT_BATCHES_SEEN

    @classmethod
    def open(
        cls,
        url: str,
        database: str = "lambdascope",
        *,
        retention_days: int = schema.DEFAULT_RETENTION_DAYS,
        cluster: ClusterConfig | None = None,
        read_url: str | None = None,
    ) -> Store:
        """Open the store at ``url``, create ``database`` if needed and migrate its schema.

        A server URL with a path (``http://host:8123/mydb``) names the database itself.
        ``cluster`` (a server only) creates the schema in its cluster form: collector/cluster.py.
        ``read_url`` (a server only) is the same server as the user that reads run as, one
        that may only read ``database`` (docs/architecture.md §3).
        """
        try:
            check_store_url(url, cluster)
        except ClusterError as exc:
            raise StoreError(str(exc)) from exc
        read_dsn: tuple[str, dict[str, Any]] | None = None
        if read_url:
            servers = ("http://", "https://")
            if not (url.startswith(servers) and read_url.startswith(servers)):
                raise StoreError(
                    "a separate read user (--read-store) needs a ClickHouse server store: the "
                    "embedded store has no users, its reads are sandboxed by the collector"
                )
            read_dsn = resolve_url(read_url)
        database = database_in_url(url) or database
        if not sql.IDENTIFIER.match(database):
            raise StoreError(
                f"invalid database name {database!r}: use letters, digits and underscores, "
                "starting with a letter"
            )
        dsn, extra = resolve_url(url)
        shown = redact_url(url)
        try:
            admin = clickhouse_connect.get_client(dsn=dsn, **extra)
        except Exception as exc:
            raise StoreError(open_failure(shown, exc)) from exc
        try:
            for ddl in rewrite(sql.CREATE_DATABASE.format(database=database), cluster, database):
                admin.command(ddl)
            # Only the write handle: read handles run readonly=1, which refuses other settings.
            write_extra: dict[str, Any] = dict(extra)
            if settings := insert_settings(cluster):
                write_extra["settings"] = settings
            client = clickhouse_connect.get_client(dsn=dsn, database=database, **write_extra)
        except Exception as exc:
            raise StoreError(open_failure(shown, exc)) from exc
        finally:
            admin.close()
        try:
            schema.migrate(
                client, retention_days=retention_days, cluster=cluster, database=database
            )
        except schema.SchemaError:
            client.close()
            raise
        except Exception as exc:
            client.close()
            raise StoreError(f"cannot prepare the schema in {shown} ({database}): {exc}") from exc

        def connect() -> Any:
            if read_dsn is not None:
                read_url_dsn, read_extra = read_dsn
                return clickhouse_connect.get_client(
                    dsn=read_url_dsn, database=database, **read_extra
                )
            return clickhouse_connect.get_client(dsn=dsn, database=database, **extra)

        def connect_writer() -> Any:
            return clickhouse_connect.get_client(dsn=dsn, database=database, **write_extra)

        try:
            store = cls(client, url=shown, database=database, connect=connect)
            store._connect_writer = connect_writer
        except Exception as exc:
            client.close()
            raise StoreError(open_failure(shown, exc)) from exc
        store.cluster = cluster
        if cluster is not None or not _numbers_claims(client):
            store._seen_sql = sql.SELECT_BATCHES_SEEN_BY_TIME
        store.is_server = dsn.startswith(("http://", "https://"))
        store.shared_writers = store.is_server
        store.has_read_user = read_dsn is not None
        return store

    def write(self, batch: NormalizedBatch) -> WriteResult:
        """Store one normalised batch; returns after ClickHouse committed every row."""
        return self.write_many([batch])[0]

    def write_many(self, batches: Sequence[NormalizedBatch]) -> list[WriteResult]:
        """Store several batches with one insert per table; returns after the commit.

        Exactly once, whatever crashes (docs/architecture.md, "Exactly once"). The group's
        ``batches`` rows go first, with each body as received and the group's deduplication
        token, then every table's rows under that token. A batch id already in ``batches`` (or
        repeated within ``batches``) is answered ``duplicate=True`` and stored no more; if its
        group's write may have been cut short (written within the last REDO_WINDOW_MINUTES and
        not completed by this process), the group is first written again from the kept bodies
        under the same token: each table keeps what it had committed and gets what it missed.
        """
        if not batches:
            return []
        ids = [b.batch_id for b in batches]
        elsewhere: set[str] = set()
        with self._write_lock:
            try:
                seen = self._client.query(
                    self._seen_sql, parameters={"batch_ids": sorted(set(ids))}
                ).result_rows
                stored = {str(row[0]) for row in seen}
                for token in self._groups_to_redo(seen):
                    self._redo_group(token)
                fresh: list[NormalizedBatch] = []
                for batch in batches:
                    if batch.batch_id not in stored:
                        stored.add(batch.batch_id)
                        fresh.append(batch)
                if fresh:
                    elsewhere = self._insert_batches(fresh)
            except Exception as exc:
                shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
                raise StoreError(
                    f"writing batch {shown} to {self.url} ({self.database}) did not complete: "
                    f"{exc}. Its retry completes the write; no row is ever stored twice"
                ) from exc
        written = {id(b) for b in fresh}
        return [
            WriteResult(b.batch_id, duplicate=False, written_elsewhere=True)
            if id(b) in written and b.batch_id in elsewhere
            else WriteResult(
                b.batch_id,
                duplicate=False,
                invocation_rows=b.invocation_count,
                log_rows=b.log_count,
                cold_start_rows=len(b.cold_start_rows),
            )
            if id(b) in written
            else WriteResult(b.batch_id, duplicate=True)
            for b in batches
        ]

    def _groups_to_redo(self, seen: Sequence[Sequence[Any]]) -> list[str]:
        """The tokens of groups, among those of the batches seen again, whose write may have
        been cut short: recent enough to redo safely, and not completed by this process."""
        horizon = datetime.now(UTC) - timedelta(minutes=sql.REDO_WINDOW_MINUTES)
        tokens = set()
        for _batch_id, token, received_at in seen:
            if not token or token in self._completed_groups:
                continue
            if received_at.tzinfo is None:
                received_at = received_at.replace(tzinfo=UTC)
            if received_at >= horizon:
                tokens.add(str(token))
        return sorted(tokens)

    def _redo_group(self, token: str) -> None:
        """Write a group's rows again from its kept bodies, under its own token."""
        rows = self._client.query(
            sql.SELECT_GROUP_BODIES, parameters={"group_token": token}
        ).result_rows
        if rows:
            # The batches another collector claimed first are its to write, as when the group
            # was first written (_insert_batches).
            winners = self._claims([str(batch_id) for batch_id, _encoding, _body in rows])
            rows = [row for row in rows if winners.get(str(row[0])) == token]
        if rows and all(body for _batch_id, _encoding, body in rows):
            try:
                group = [
                    prepare_batch(_as_bytes(body), encoding or None, self.max_decompressed_bytes)
                    for _batch_id, encoding, body in rows
                ]
            except HttpError as exc:
                # A kept body this version cannot read again must not hold its batches'
                # retries back for ever: what the first attempt committed stays.
                log.warning("cannot write group %s again from its kept bodies: %s", token, exc)
                self._completed(token)
                return
            log.warning(
                "a batch arrived again whose write may have been cut short: writing its group "
                "of %d batches again; the store keeps one copy of every row",
                len(group),
            )
            self._write_rows(group, token)
        self._completed(token)

    def _completed(self, token: str) -> None:
        self._completed_groups[token] = None
        while len(self._completed_groups) > COMPLETED_GROUPS_KEPT:
            self._completed_groups.popitem(last=False)

    def _claims(self, batch_ids: Sequence[str]) -> dict[str, str]:
        """The group token that claimed each batch first."""
        rows = self._client.query(
            self._seen_sql, parameters={"batch_ids": sorted(set(batch_ids))}
        ).result_rows
        return {str(batch_id): str(token) for batch_id, token, _received_at in rows}

    def _insert_batches(self, batches: list[NormalizedBatch]) -> set[str]:
        """The group's ledger rows (with the bodies to redo it from), then its rows; returns
        the ids of the batches another collector claimed first, which are left to it."""
        token = group_token(batches)
        settings = {"insert_deduplication_token": token, "insert_deduplicate": 1}
        # A batch built without its body (by a tool, not the ingest endpoint) cannot be redone.
        redo = all(b.raw_body for b in batches)
        self._put(
            "batches",
            sql.BATCH_COLUMNS,
            [
                [
                    b.batch_id,
                    b.sent_at,
                    b.environment.function_name,
                    b.environment.environment_id,
                    b.accepted_events,
                    b.invocation_count,
                    b.log_count,
                    b.dropped_records,
                    token if redo else "",
                    b.raw_encoding,
                    b.raw_body if redo else b"",
                ]
                for b in batches
            ],
            settings,
            column_oriented=False,
        )
        elsewhere: set[str] = set()
        if self.shared_writers:
            # A retry sent to another collector while this one was writing the batch: both
            # passed the "seen?" check. The first claim writes it; the others leave it.
            winners = self._claims([b.batch_id for b in batches])
            elsewhere = {b.batch_id for b in batches if winners.get(b.batch_id) != token}
            if elsewhere:
                log.warning(
                    "%d batches of this group were claimed first by another collector, which "
                    "writes them: their senders are told to retry",
                    len(elsewhere),
                )
        kept = [b for b in batches if b.batch_id not in elsewhere]
        if kept:
            self._write_rows(kept, token)
        self._completed(token)
        return elsewhere

    def _write_rows(self, batches: list[NormalizedBatch], token: str) -> None:
        """Every table's rows of the group, one insert per table, under ``token``."""
        settings = {"insert_deduplication_token": token, "insert_deduplicate": 1}
        cold_starts = [row for b in batches for row in b.cold_start_rows]
        log_blocks = [b.log_columns for b in batches]
        # The extension's own figures, under the same token: one row per batch, once.
        stats = [row for b in batches for row in b.extension_stats_rows]

        def small_tables(client: Any | None = None) -> None:
            self._insert_columns("logs", LOG_COLUMNS, log_blocks, settings, client)
            self._insert("cold_start_parts", COLD_START_COLUMNS, cold_starts, settings, client)
            self._insert("extension_stats", sql.EXTENSION_STATS_COLUMNS, stats, settings, client)

        # The other tables go in on a second handle while invocation_parts (the slow one: its
        # materialized view) goes in on this one: an insert's fixed cost is mostly the engine
        # writing parts, which runs without the GIL, so a commit takes about as long as its
        # slowest table instead of the sum. All finish before the group is answered.
        side = self._side_writer()
        side_done: concurrent.futures.Future[None] | None = None
        if side is not None:
            side_done = side[1].submit(small_tables, side[0])
        try:
            self._insert_columns(
                "invocation_parts",
                INVOCATION_COLUMNS,
                [b.invocation_columns for b in batches],
                settings,
            )
            if side_done is None:
                small_tables()
        finally:
            # Never return (or let a retry start) while the other inserts still run.
            if side_done is not None:
                concurrent.futures.wait([side_done])
        if side_done is not None:
            side_done.result()  # its failure fails the batch like any other
        # OTLP exports the batch carried (collector/otlp_batch.py), under the batch's token.
        for table, (names, columns) in _OTLP_TABLES.items():
            rows = [row for b in batches for row in getattr(b, "otel_rows", {}).get(table, ())]
            if rows:
                data = [[getattr(row, name) for row in rows] for name in names]
                self._put(table, columns, data, settings)
        self._insert_tags(batches, settings)

    def _insert_tags(self, batches: list[NormalizedBatch], settings: dict[str, Any]) -> None:
        """The functions' tags (function_tags), when a batch carries new ones."""
        changed: dict[str, tuple[tuple[str, str], ...]] = {}
        for b in batches:
            env = b.environment
            if env.tags and self._tags_written.get(env.function_name) != env.tags:
                changed[env.function_name] = env.tags
        if not changed:
            return
        now = datetime.now(UTC)
        self._put(
            "function_tags",
            sql.FUNCTION_TAG_COLUMNS,
            [[name, dict(tags), now] for name, tags in sorted(changed.items())],
            settings,
            column_oriented=False,
        )
        self._tags_written.update(changed)

    def _side_writer(self) -> tuple[Any, concurrent.futures.ThreadPoolExecutor] | None:
        """A second write handle and its thread (opened on first use), or None when this store
        cannot open another handle."""
        if self._side is None and self._connect_writer is not None:
            client = self._connect_writer()
            executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="lambdascope-store-side"
            )
            self._side = (client, executor)
        return self._side

    def _insert_columns(
        self,
        table: str,
        columns: tuple[str, ...],
        blocks: Sequence[Mapping[str, list[Any]]],
        settings: dict[str, Any],
        client: Any | None = None,
    ) -> None:
        """Insert column blocks (one per batch) as one insert: the columns are concatenated,
        never turned into rows."""
        blocks = [block for block in blocks if block[columns[0]]]
        if not blocks:
            return
        if len(blocks) == 1:
            data = [blocks[0][name] for name in columns]
        else:
            data = []
            for name in columns:
                column: list[Any] = []
                for block in blocks:
                    column.extend(block[name])
                data.append(column)
        self._put(table, columns, data, settings, client=client)

    def _insert(
        self,
        table: str,
        columns: tuple[str, ...],
        rows: list[Any],
        settings: dict[str, Any],
        client: Any | None = None,
    ) -> None:
        if not rows:
            return
        self._put(
            table,
            columns,
            [[getattr(row, name) for row in rows] for name in columns],
            settings,
            client=client,
        )

    def _put(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        settings: dict[str, Any] | None = None,
        *,
        client: Any | None = None,
        column_oriented: bool = True,
    ) -> None:
        """One insert. The column types are asked of the store once per table and column list:
        left to itself clickhouse-connect runs a DESCRIBE before every insert, which cost the
        embedded engine 2-6 ms each, a seventh of an ingest group's time."""
        client = client or self._client
        key = (table, tuple(columns))
        types = self._column_types.get(key)
        if types is None:
            context = client.create_insert_context(table, list(columns))
            types = self._column_types[key] = list(context.column_types)
        try:
            client.insert(
                table,
                data,
                column_names=columns,
                column_types=types,
                column_oriented=column_oriented,
                settings=settings,
            )
        except Exception:
            self._column_types.pop(key, None)  # a migrated table is described again on retry
            raise

    def write_otlp(self, table: str, rows: Sequence[Any]) -> int:
        """Insert OTLP rows (``otel_traces`` / ``otel_logs`` / ``otel_metrics``); returns the
        count. A retry of the same rows within the deduplication window is dropped by
        ClickHouse (identical insert blocks), the only deduplication OTLP allows."""
        names, columns = _OTLP_TABLES[table]
        if not rows:
            return 0
        data = [[getattr(row, name) for row in rows] for name in names]
        with self._write_lock:
            try:
                self._put(table, columns, data)
            except Exception as exc:
                raise StoreError(
                    f"writing {len(rows)} rows to {table} in {self.url} ({self.database}) "
                    f"failed: {exc}"
                ) from exc
        return len(rows)

    def write_metrics(self, request_id: str, points: Sequence[Any]) -> int:
        """Insert CloudWatch metric points of one Firehose delivery, once per request id.

        Firehose retries a delivery with the same request id; it is the insert's deduplication
        token, so a retry after a lost acknowledgement stores nothing twice.
        """
        if not points:
            return 0
        columns = firehose.METRIC_COLUMNS
        data = [[getattr(p, name) for p in points] for name in columns]
        settings = {"insert_deduplication_token": f"firehose-{request_id}", "insert_deduplicate": 1}
        with self._write_lock:
            try:
                self._put("cloudwatch_metrics", columns, data, settings)
            except Exception as exc:
                raise StoreError(
                    f"writing {len(points)} metric points to {self.url} ({self.database}) "
                    f"failed: {exc}"
                ) from exc
        return len(points)

    def open_writer(self) -> Any:
        """A separate clickhouse-connect client on this database, for a writer with its own
        thread (the alert engine's state), so it never shares a handle with ingest."""
        if self._connect_writer is not None:
            return self._connect_writer()
        if self._connect is None:
            return self._client
        return self._connect()

    def create_tables(self, statements: Sequence[str]) -> None:
        """Run another package's DDL (the alert tables) in this store's form: on the cluster,
        with Replicated engines, when the store is a cluster."""
        for statement in statements:
            for ddl in rewrite(statement, self.cluster, self.database):
                self._client.command(ddl)

    def reader(self) -> DirectQueryClient:
        """A read-only query client on this store (``readonly=1``, row and time limits)."""
        return _StoreReader(self)

    def read_client(self) -> Any:
        """Take a read handle from the pool (or open one); give it back with
        :meth:`release_read_client`. Each concurrent read has its own handle: queries on one
        handle run one after another, so a shared one would let a slow read hold up the rest."""
        try:
            return self._read_pool.get_nowait()
        except queue.Empty:
            pass
        if self._connect is None:  # a store made around one client (tests): share it
            return self._client
        return self._connect()

    def release_read_client(self, client: Any, *, broken: bool = False) -> None:
        """Return a handle to the pool; a broken one (or one past the pool's size) is closed."""
        if client is self._client:
            return
        if not broken:
            try:
                self._read_pool.put_nowait(client)
                return
            except queue.Full:
                pass
        with contextlib.suppress(Exception):
            client.close()

    def read_access_warnings(self) -> list[str]:
        """What a platform team should know about who reads run as, checked at start: on a
        ClickHouse server, reads should run as a user that may only read this database."""
        if not self.is_server:
            return []
        fix = (
            f"create a user that may only read it (CREATE USER lambdascope_reader ...; GRANT "
            f"SELECT ON {self.database}.* TO lambdascope_reader) and give it with --read-store "
            "or LAMBDASCOPE_READ_STORE_URL"
        )
        if not self.has_read_user:
            return [
                "WARNING: the read API runs as the store's write user, which may change "
                f"{self.database}; {fix}"
            ]
        client = self.read_client()
        lines: list[str] | None = None
        failure: Exception | None = None
        try:
            for statement in sql.SHOW_GRANTS:
                try:
                    lines = [str(row[0]) for row in client.query(statement).result_rows]
                    break
                except Exception as exc:  # an older server without FINAL: try the plain form
                    failure = exc
        finally:
            self.release_read_client(client, broken=lines is None)
        if lines is None:
            return [f"WARNING: cannot check the read user's grants ({failure}); {fix}"]
        problems = grant_problems(lines, self.database)
        if not problems:
            return []
        listed = "; ".join(problems)
        return [
            f"WARNING: the read user may do more than read {self.database}: {listed}. Revoke "
            f"these, or {fix}"
        ]

    def read_policy(self, *, refresh: bool = False) -> ReadPolicy:
        """What reads may reach (collector/readguard.py): this database's tables and views,
        asked of the store on first use and kept. ``refresh`` asks again, for a query naming a
        table the kept list lacks: another package may have created it since (the alert
        tables)."""
        policy: ReadPolicy | None = getattr(self, "_read_policy", None)
        if policy is None or refresh:
            # On the write handle: an internal question, never a user's read through the
            # sandbox (which refuses system.tables). Its database is this store's.
            rows = self._client.query(sql.SELECT_TABLE_ENGINES).result_rows
            names = {str(row[0]) for row in rows} - INTERNAL_TABLES
            policy = ReadPolicy(self.database, frozenset(names))
            self._read_policy = policy
        return policy

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            self._client.command(sql.SELECT_ONE)
        except Exception:
            return False
        return True

    def close(self) -> None:
        if self._side is not None:
            side_client, executor = self._side
            self._side = None
            executor.shutdown(wait=True)
            with contextlib.suppress(Exception):
                side_client.close()
        idle = []
        while True:
            try:
                idle.append(self._read_pool.get_nowait())
            except queue.Empty:
                break
        for client in [self._client, *idle]:
            # Closing a dead connection has nothing left to report.
            with contextlib.suppress(Exception):
                client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_OTLP_TABLES = {
    "otel_traces": (otlp.SPAN_FIELDS, otlp.SPAN_COLUMNS),
    "otel_logs": (otlp.LOG_FIELDS, otlp.LOG_COLUMNS),
    "otel_metrics": (otlp.METRIC_FIELDS, otlp.METRIC_COLUMNS),
}


class _StoreReader(DirectQueryClient):
    """DirectQueryClient on a read handle of the store's pool, one per query at a time.

    Every query passes the read sandbox first (collector/readguard.py): the store runs the SQL
    the sandbox regenerated, and a refusal raises :class:`~collector.readguard.QueryRefused`
    (a QueryError carrying the HTTP status). A handle whose query failed in the engine is
    closed rather than reused: a result cut off mid-stream (a read limit) can leave it unusable.
    """

    #: Refusals a newer table list may lift: the table (or parameterized view) was created
    #: after the list was read.
    _MAYBE_NEW_TABLE = frozenset({"table", "table_function"})

    def __init__(self, store: Store) -> None:
        super().__init__(None)
        self._store = store

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        guarded = self._guard(sql)
        client = self._store.read_client()
        try:
            result = self.run(client, guarded.sql, parameters)
        except QueryError:
            self._store.release_read_client(client, broken=True)
            raise
        self._store.release_read_client(client)
        return result

    def _guard(self, sql: str) -> GuardedRead:
        try:
            policy = self._store.read_policy()
            try:
                return guard_read(sql, policy)
            except ReadRefused as refusal:
                if refusal.reason not in self._MAYBE_NEW_TABLE:
                    raise QueryRefused.from_refusal(refusal) from refusal
                fresh = self._store.read_policy(refresh=True)
                try:
                    return guard_read(sql, fresh)
                except ReadRefused as again:
                    raise QueryRefused.from_refusal(again) from again
        except QueryError:
            raise
        except Exception as exc:  # the table list could not be read: the store is at fault
            raise QueryError(f"query failed: cannot list the store's tables: {exc}") from exc


def _numbers_claims(client: Any) -> bool:
    """Whether the ledger keeps each row's block number (a server older than the setting
    skipped it): the claims' order, else their time."""
    engines = dict(client.query(sql.SELECT_TABLE_ENGINES).result_rows)
    return "enable_block_number_column = 1" in str(engines.get("batches", ""))


def group_token(batches: Sequence[NormalizedBatch]) -> str:
    """The deduplication token of a group's inserts: its batch id alone, or a hash of its
    sorted batch ids, so the same group written again is recognised."""
    if len(batches) == 1:
        return batches[0].batch_id
    joined = "\n".join(sorted(b.batch_id for b in batches)).encode()
    return "group-" + hashlib.sha256(joined).hexdigest()


def _as_bytes(value: Any) -> bytes:
    """A String column as read back: bytes, or text when the client decoded it."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
