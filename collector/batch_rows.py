"""The rows one extension batch becomes, and the builder that merges its events into them.

Pure: no I/O, no clock. Every event that knows something about an invocation contributes a
*partial* row carrying only what that event knows; the store merges the parts of one
``(function_name, request_id)`` (min/max/any/sum aggregates that skip NULLs), so late,
duplicated and out-of-order events across batches need no state here. Within one batch
:class:`BatchBuilder` merges the parts of a request already, with the same functions the store
uses (so nothing is lost): one row per request and batch instead of one per event, which makes
the inserts several times cheaper. Initialisations (:class:`ColdStartPart`) are not merged
here: they are rare.

Rows are built as insert-ready columns (times as epoch milliseconds, dates as epoch days), the
form the store inserts; :attr:`NormalizedBatch.invocation_rows` and ``log_rows`` give them as
dataclasses for callers that want rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from lambdascope.collector.extension_stats import ExtensionStatsRow
from lambdascope.collector.fields import MS_PER_DAY, clean_text, ms_to_datetime

__all__ = [
    "COLD_START_COLUMNS",
    "INVOCATION_COLUMNS",
    "LOG_COLUMNS",
    "MANAGED_INSTANCES",
    "BatchBuilder",
    "ColdStartPart",
    "Environment",
    "EventResult",
    "InvocationPart",
    "LogRow",
    "NormalizedBatch",
    "Window",
]


@dataclass(frozen=True)
class Environment:
    """The execution environment a batch comes from (its ``environment`` object)."""

    environment_id: str
    function_name: str
    function_version: str
    region: str
    memory_size_mb: int | None
    initialization_type: str
    architecture: str
    #: The function's tags (LAMBDASCOPE_TAGS on the function), sorted; () when it sent none.
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class InvocationPart:
    """What one event knows about one invocation. ``None`` = this event does not know.

    Field names are the columns of the store's ``invocation_parts`` table.
    """

    function_name: str
    request_id: str
    event_date: dt.date
    #: When the event behind this part happened: lets time-range reads prune parts.
    event_time: dt.datetime
    function_version: str = ""
    environment_id: str = ""
    region: str = ""
    architecture: str = ""
    env_memory_size_mb: int | None = None
    start_time: dt.datetime | None = None
    runtime_done_time: dt.datetime | None = None
    report_time: dt.datetime | None = None
    received_at: dt.datetime | None = None
    deadline: dt.datetime | None = None
    timeout_ms: float | None = None
    invoked_function_arn: str | None = None
    trace_id: str | None = None
    runtime_done_status: str | None = None
    runtime_done_error_type: str | None = None
    runtime_done_duration_ms: float | None = None
    runtime_done_produced_bytes: int | None = None
    report_status: str | None = None
    report_error_type: str | None = None
    report_duration_ms: float | None = None
    report_billed_duration_ms: float | None = None
    report_memory_size_mb: int | None = None
    report_max_memory_used_mb: int | None = None
    report_init_duration_ms: float | None = None
    report_restore_duration_ms: float | None = None
    timed_out_log: int = 0
    has_start: int = 0
    has_runtime_done: int = 0
    has_report: int = 0
    has_invoke: int = 0
    log_lines: int = 0
    last_sent_at: dt.datetime | None = None


@dataclass(frozen=True)
class ColdStartPart:
    """What one init event knows about one initialisation of an execution environment.

    Keyed by ``(function_name, environment_id, phase)``: a failed init is retried inside the
    first invocation with phase ``invoke`` ("suppressed init"), which is a second row.
    """

    function_name: str
    environment_id: str
    phase: str
    event_date: dt.date
    function_version: str = ""
    initialization_type: str | None = None
    init_start_time: dt.datetime | None = None
    runtime_done_time: dt.datetime | None = None
    report_time: dt.datetime | None = None
    runtime_version: str | None = None
    runtime_done_status: str | None = None
    runtime_done_error_type: str | None = None
    report_status: str | None = None
    report_error_type: str | None = None
    init_duration_ms: float | None = None
    has_init_start: int = 0
    has_runtime_done: int = 0
    has_report: int = 0
    #: The start of the environment's first request: its report carries the init's duration.
    #: Far after the init's end, the init was proactive (ahead of demand).
    first_request_time: dt.datetime | None = None


@dataclass(frozen=True)
class LogRow:
    """One log line. Field names are the columns of the store's ``logs`` table."""

    timestamp: dt.datetime
    function_name: str
    function_version: str
    environment_id: str
    request_id: str
    stream: str
    level: str
    message: str
    batch_id: str
    seq: int
    attributes: dict[str, str] = field(default_factory=dict)


INVOCATION_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(InvocationPart))
COLD_START_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ColdStartPart))
LOG_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LogRow))

_EPOCH_DATE = dt.date(1970, 1, 1)
#: Columns held as epoch milliseconds (DateTime64(3)) / epoch days (Date) in the column form.
_INVOCATION_TIMES = frozenset(
    ("event_time", "start_time", "runtime_done_time", "report_time", "received_at", "deadline")
    + ("last_sent_at",)
)


def _rows_of(cls: Any, columns: dict[str, list[Any]], times: frozenset[str]) -> list[Any]:
    """Dataclass rows from insert-ready columns (times back to datetimes, days to dates)."""
    names = list(columns)
    out = []
    for values in zip(*columns.values(), strict=True):
        row = dict(zip(names, values, strict=True))
        for name in times:
            if row.get(name) is not None:
                row[name] = ms_to_datetime(row[name])
        if "event_date" in row:
            row["event_date"] = _EPOCH_DATE + dt.timedelta(days=row["event_date"])
        out.append(cls(**row))
    return out


@dataclass(frozen=True)
class NormalizedBatch:
    """One extension batch as the store writes it, and what was accepted, ignored, rejected."""

    batch_id: str
    sent_at: dt.datetime | None
    environment: Environment
    #: ``invocation_parts`` as insert-ready columns (INVOCATION_COLUMNS): one row per request
    #: id, its events merged with the store's own aggregates. Times are epoch milliseconds.
    invocation_columns: dict[str, list[Any]]
    #: ``logs`` as insert-ready columns (LOG_COLUMNS), in delivery order.
    log_columns: dict[str, list[Any]]
    cold_start_rows: list[ColdStartPart]
    accepted_events: int
    ignored_events: int
    event_counts: dict[str, int]
    dropped_records: int = 0
    #: Events and INVOKE entries skipped because they were malformed: (field path, problem).
    #: One bad event must not cost the rest of the batch, so these are reported, not fatal.
    rejected: tuple[tuple[str, str], ...] = ()
    #: The request body as received and its Content-Encoding: kept with the batch's write
    #: intent, so a write cut short can be redone exactly (collector/store.py).
    raw_body: bytes = b""
    raw_encoding: str = ""
    #: ``extension_stats``: the extension's own figures in this batch's head (none from an
    #: older extension, or when they were malformed and rejected).
    extension_stats_rows: list[ExtensionStatsRow] = field(default_factory=list)
    #: Function log lines without a request id written while several invocations of the
    #: environment were open (Managed Instances): stored with ``request_id = ''``.
    unattributed_lines: int = 0

    @property
    def invocation_count(self) -> int:
        return len(self.invocation_columns["request_id"])

    @property
    def log_count(self) -> int:
        return len(self.log_columns["timestamp"])

    @property
    def row_count(self) -> int:
        return (
            self.invocation_count
            + self.log_count
            + len(self.cold_start_rows)
            + len(self.extension_stats_rows)
        )

    @property
    def invocation_rows(self) -> list[InvocationPart]:
        """The invocation rows as dataclasses (built on each call: for tests and tools)."""
        return _rows_of(InvocationPart, self.invocation_columns, _INVOCATION_TIMES)

    @property
    def log_rows(self) -> list[LogRow]:
        """The log rows as dataclasses (built on each call: for tests and tools)."""
        return _rows_of(LogRow, self.log_columns, frozenset(("timestamp",)))


#: The ``initializationType`` (and the batch environment's ``initialization_type``) of a Lambda
#: Managed Instances environment: it serves several requests at once.
MANAGED_INSTANCES = "lambda-managed-instances"

#: The requests whose invocation windows are open, in the order they started. On demand there
#: is at most one; a Managed Instances environment may have many open at once.
Window = tuple[str, ...]

#: What an event handler returns: the invocation windows open after the event (a log line
#: without a request id belongs to the open one when exactly one is open), and how many log
#: records Lambda dropped.
EventResult = tuple[Window, int]

#: How the store merges each column of ``invocation_parts`` (collector/sql/tables.py); the
#: parts of one request within a batch are merged here with the same functions. Unnamed
#: columns: max.
_MERGE_MIN = frozenset(("event_time", "start_time", "received_at"))
_MERGE_ANY = frozenset(
    ("invoked_function_arn", "trace_id", "runtime_done_status", "runtime_done_error_type")
    + ("report_status", "report_error_type")
)
_MERGE_SUM = frozenset(("log_lines",))
#: The non-nullable columns: 0 where no event of the request knew.
_INVOCATION_ZEROS = frozenset(
    ("timed_out_log", "has_start", "has_runtime_done", "has_report", "has_invoke", "log_lines")
)
_COLD_START_TIMES = ("init_start_time", "runtime_done_time", "report_time")


class BatchBuilder:
    """Accumulates the rows of one batch while walking its events in delivery order."""

    def __init__(self, batch_id: str, env: Environment, sent_at_ms: int | None) -> None:
        self.batch_id = batch_id
        self.env = env
        self.sent_at_ms = sent_at_ms
        #: request id -> the merged columns its events know so far.
        self.requests: dict[str, dict[str, Any]] = {}
        self.cold_starts: list[ColdStartPart] = []
        self.log_times: list[int] = []
        self.log_request_ids: list[str] = []
        self.log_streams: list[str] = []
        self.log_levels: list[str] = []
        self.log_messages: list[str] = []
        self.log_attributes: list[dict[str, str]] = []
        self.log_lines: Counter[str] = Counter()
        self.first_line_at: dict[str, int] = {}
        self.timed_out: set[str] = set()
        #: Several requests run at once here: a window opens at each ``platform.start`` beside
        #: the others instead of replacing the open one, and closes at its report too (the
        #: Managed Instances Telemetry API sends no ``platform.runtimeDone``).
        self.concurrent = env.initialization_type == MANAGED_INSTANCES
        #: Function lines without a request id written while several invocations were open:
        #: kept with ``request_id = ''`` rather than guessed.
        self.unattributed_lines = 0
        #: parse cache for parse_time_ms: the events of a batch share a few seconds.
        self.seconds: dict[str, int] = {}

    def part(self, request_id: str, when: int, **known: Any) -> None:
        """Merge what one event knows about ``request_id`` (min/max/any/sum, skipping None)."""
        row = self.requests.get(request_id)
        if row is None:
            known["event_time"] = when
            self.requests[request_id] = known
            return
        if when < row["event_time"]:
            row["event_time"] = when
        for key, value in known.items():
            if value is None:
                continue
            old = row.get(key)
            if old is None:
                row[key] = value
            elif key in _MERGE_ANY:
                continue
            elif key in _MERGE_MIN:
                if value < old:
                    row[key] = value
            elif key in _MERGE_SUM:
                row[key] = old + value
            elif value > old:
                row[key] = value

    def cold_start(self, phase: str, when: int, **known: Any) -> None:
        moment = ms_to_datetime(when)
        for key in _COLD_START_TIMES:
            if known.get(key) is not None:
                known[key] = moment
        self.cold_starts.append(
            ColdStartPart(
                function_name=self.env.function_name,
                environment_id=self.env.environment_id,
                phase=phase,
                event_date=moment.date(),
                function_version=self.env.function_version,
                **known,
            )
        )

    def log(
        self,
        when: int,
        request_id: str | None,
        stream: str,
        level: str,
        message: str,
        attributes: dict[str, str] | None = None,
    ) -> None:
        if request_id and stream != "platform":
            self.log_lines[request_id] += 1
            self.first_line_at.setdefault(request_id, when)
        self.log_times.append(when)
        self.log_request_ids.append(clean_text(request_id) if request_id else "")
        self.log_streams.append(stream)
        self.log_levels.append(clean_text(level))
        self.log_messages.append(clean_text(message))
        self.log_attributes.append(
            {clean_text(k): clean_text(v) for k, v in attributes.items()} if attributes else {}
        )

    def window_owner(self, window: Window) -> str | None:
        """The request a line without a request id belongs to: the open one when exactly one
        is open; None (and counted) when several are."""
        if len(window) == 1:
            return window[0]
        if window:
            self.unattributed_lines += 1
        return None

    def invocation_columns(self) -> dict[str, list[Any]]:
        rows = list(self.requests.values())
        count = len(rows)
        env = self.env
        constants: dict[str, Any] = {
            "function_name": env.function_name,
            "function_version": env.function_version,
            "environment_id": env.environment_id,
            "region": env.region,
            "architecture": env.architecture,
            "env_memory_size_mb": env.memory_size_mb,
            "last_sent_at": self.sent_at_ms,
        }
        columns: dict[str, list[Any]] = {}
        for name in INVOCATION_COLUMNS:
            if name in constants:
                columns[name] = [constants[name]] * count
            elif name == "request_id":
                columns[name] = list(self.requests)
            elif name == "event_date":
                columns[name] = [row["event_time"] // MS_PER_DAY for row in rows]
            else:
                default = 0 if name in _INVOCATION_ZEROS else None
                columns[name] = [row.get(name, default) for row in rows]
        return columns

    def log_columns(self) -> dict[str, list[Any]]:
        count = len(self.log_times)
        env = self.env
        columns: dict[str, list[Any]] = {
            "timestamp": self.log_times,
            "function_name": [env.function_name] * count,
            "function_version": [env.function_version] * count,
            "environment_id": [env.environment_id] * count,
            "request_id": self.log_request_ids,
            "stream": self.log_streams,
            "level": self.log_levels,
            "message": self.log_messages,
            "batch_id": [self.batch_id] * count,
            "seq": list(range(count)),
            "attributes": self.log_attributes,
        }
        return {name: columns[name] for name in LOG_COLUMNS}
