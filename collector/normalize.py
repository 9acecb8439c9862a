"""Turn one extension batch into store rows. Pure functions: no I/O, no clock, no globals.

The batch format is docs/architecture.md §1. Every Telemetry API event that knows something
about an invocation contributes a *partial* row carrying only what that event knows; the store
merges the parts of one ``(function_name, request_id)`` (min/max/any/sum aggregates that skip
NULLs), so late, duplicated and out-of-order events across batches need no state here. Within
one batch the parts of a request are merged here already, with the same functions the store
uses (so nothing is lost): one row per request and batch instead of one per event, which makes
the inserts several times cheaper. The same holds for initialisations (:class:`ColdStartPart`,
not merged here: they are rare).

Rows are built as insert-ready columns (times as epoch milliseconds, dates as epoch days), the
form the store inserts; :attr:`NormalizedBatch.invocation_rows` and ``log_rows`` give them as
dataclasses for callers that want rows.

Log lines become :class:`LogRow`\\ s. Text-format ``function`` lines carry no request id unless
awslambdaric's logging wrote them, so the rest are attributed by the invocation window: from
``platform.start(X)`` to ``platform.runtimeDone(X)``, in delivery order, with the batch's
``open_request_id`` opening a window that started in an earlier batch. ``extension`` lines are
never attributed: what an extension writes during an invocation is not the function's log.

Malformed input raises :class:`BatchError` naming the offending field. Unknown event types and
unknown fields are ignored (AWS keeps adding them); unknown types are counted.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from lambdascope.collector.extension_stats import (
    BatchMeta,
    ExtensionStatsRow,
    StatsError,
    stats_row,
)

__all__ = [
    "COLD_START_COLUMNS",
    "INVOCATION_COLUMNS",
    "LOG_COLUMNS",
    "SCHEMA_VERSION",
    "BatchError",
    "ColdStartPart",
    "Environment",
    "InvocationPart",
    "LogRow",
    "NormalizedBatch",
    "clean_text",
    "normalize_batch",
    "parse_text_line",
    "parse_time",
]

#: The batch schema version this collector understands.
SCHEMA_VERSION = 1

_MAX_ID_LENGTH = 256

#: awslambdaric's Text format: ``[LEVEL]\t<ts>Z\t<request id>\t<message>``.
_RIC_LINE = re.compile(
    r"^\[(?P<level>[A-Za-z]+)\]\t(?P<ts>[0-9T:.\-+Z]+)\t(?P<rid>[^\t]*)\t(?P<msg>.*)$", re.S
)
#: awslambdaric's line for an exception that escaped the handler (or a ``Runtime.*`` error):
#: ``[ERROR] ValueError: boom`` then ``Traceback (most recent call last):`` and the frames,
#: joined with ``\r`` on stdout and ``\n`` in a telemetry frame; it names no time and no
#: request id. Custom logging formats such as ``[%(levelname)s] %(message)s`` look the same.
#: Upper-case level names only: a line starting ``[Error]`` is more likely prose.
_LEVEL_PREFIX_LINE = re.compile(
    r"^\[(?P<level>ERROR|WARNING|WARN|INFO|DEBUG|CRITICAL|FATAL)\](?: |\r\n?|\n|\Z)(?P<msg>.*)",
    re.S,
)
#: lambdascope's extension writes ``[lambdascope] LEVEL message`` (extension/log.py).
_LAMBDASCOPE_LINE = re.compile(r"^\[lambdascope\] (?P<level>DEBUG|INFO|WARNING|ERROR) ")
#: Lambda's own timeout line: ``<ISO ts> <request id> Task timed out after 3.00 seconds``.
_TIMEOUT_LINE = re.compile(
    r"^\S+\s+(?P<rid>[0-9A-Za-z][0-9A-Za-z-]{7,})\s+Task timed out after [0-9.]+ seconds"
)
#: ``RequestId: <id> Error: Runtime exited with error: signal: killed`` (crash / OOM).
_REQUEST_ID_ERROR_LINE = re.compile(r"^RequestId: (?P<rid>\S+) Error: ")
_FRACTION = re.compile(r"\.(\d+)")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BatchError(ValueError):
    """A batch is malformed; ``field`` is the path of the offending field: ``telemetry[3].type``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Environment:
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

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DATE = dt.date(1970, 1, 1)
_MS_PER_DAY = 86_400_000
#: What the store's columns can hold: a Date (UInt16 days) ends on 2149-06-06, memory sizes
#: are UInt32, byte and record counts UInt64. A value past them would fail the whole insert on
#: every retry, so the event carrying it is rejected instead (by name, the rest kept).
_MAX_STORED_MS = 65_536 * _MS_PER_DAY - 1
_STORED_TIMES = "1970-01-01 to 2149-06-06"
#: The same bounds for the other sources' normalisers (CloudWatch metric streams).
EPOCH = _EPOCH
MAX_STORED_MS = _MAX_STORED_MS
_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1
#: Columns held as epoch milliseconds (DateTime64(3)) / epoch days (Date) in the column form.
_INVOCATION_TIMES = frozenset(
    ("event_time", "start_time", "runtime_done_time", "report_time", "received_at", "deadline")
    + ("last_sent_at",)
)


def _ms_to_datetime(ms: int) -> dt.datetime:
    # Exact, unlike fromtimestamp(ms / 1000), which can land a microsecond off.
    return _EPOCH + dt.timedelta(milliseconds=ms)


def _rows_of(cls: Any, columns: dict[str, list[Any]], times: frozenset[str]) -> list[Any]:
    """Dataclass rows from insert-ready columns (times back to datetimes, days to dates)."""
    names = list(columns)
    out = []
    for values in zip(*columns.values(), strict=True):
        row = dict(zip(names, values, strict=True))
        for name in times:
            if row.get(name) is not None:
                row[name] = _ms_to_datetime(row[name])
        if "event_date" in row:
            row["event_date"] = _EPOCH_DATE + dt.timedelta(days=row["event_date"])
        out.append(cls(**row))
    return out


@dataclass(frozen=True)
class NormalizedBatch:
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


# ---------------------------------------------------------------------------------------------
# Field readers: each names the field it failed on.


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BatchError(path, f"must be a JSON object, got {_kind(value)}")
    return value


def _join(prefix: str, field: str) -> str:
    """The path of ``field`` relative to ``prefix`` (either may be "": the other one)."""
    return f"{prefix}.{field}" if prefix and field else prefix or field


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (legal in JSON escapes) become U+FFFD.

    ClickHouse strings are bytes; one unencodable character would fail the whole insert and
    turn a batch into one that is refused on every retry.
    """
    if text.isascii():  # the common case, and much cheaper than encoding
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _str(obj: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if type(value) is str:
        return value if value.isascii() else clean_text(value)
    if value is None:
        if required:
            raise BatchError(_join(path, key), "is required")
        return None
    if not isinstance(value, str):
        raise BatchError(_join(path, key), f"must be a string, got {_kind(value)}")
    return clean_text(value)


def _id(obj: dict[str, Any], key: str, path: str) -> str:
    value = _str(obj, key, path, required=True)
    assert value is not None
    if not value.strip():
        raise BatchError(_join(path, key), "must not be empty")
    if len(value) > _MAX_ID_LENGTH:
        raise BatchError(_join(path, key), f"is longer than {_MAX_ID_LENGTH} characters")
    return value


def _num(obj: dict[str, Any], key: str, path: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is float:
        if math.isfinite(value):
            return value
    # bool is an int subclass; True is not a duration.
    elif type(value) is int or (isinstance(value, int | float) and not isinstance(value, bool)):
        try:
            number = float(value)
        except OverflowError:  # JSON integers have no bound; a float does
            raise BatchError(_join(path, key), "is too large for a number") from None
        if math.isfinite(number):
            return number
    raise BatchError(_join(path, key), f"must be a number, got {_kind(value)}")


def _int(obj: dict[str, Any], key: str, path: str, maximum: int = _UINT32_MAX) -> int | None:
    value = _num(obj, key, path)
    if value is None:
        return None
    number = int(round(value))
    if not 0 <= number <= maximum:
        raise BatchError(_join(path, key), f"must be between 0 and {maximum}, got {number}")
    return number


def _epoch_ms(obj: dict[str, Any], key: str, path: str) -> float | None:
    """A time in epoch milliseconds the store can hold."""
    value = _num(obj, key, path)
    if value is not None and not 0 <= value <= _MAX_STORED_MS:
        raise BatchError(
            _join(path, key), f"is outside the times the store holds ({_STORED_TIMES})"
        )
    return value


def parse_time(text: Any, path: str = "time") -> dt.datetime:
    """Parse Lambda's ISO-8601 time (``2026-11-24T07:00:00.123Z``) into an aware UTC datetime."""
    if not isinstance(text, str) or not text:
        raise BatchError(path, f"must be an ISO-8601 time string, got {_kind(text)}")
    # fromisoformat takes at most 6 fractional digits; some sources send nanoseconds.
    normal = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(3, "0"), text.strip(), count=1)
    try:
        parsed = dt.datetime.fromisoformat(normal)
    except ValueError:
        raise BatchError(path, f"is not an ISO-8601 time: {text[:64]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _parse_ms(text: Any, path: str, seconds: dict[str, int]) -> int:
    """:func:`parse_time` as epoch milliseconds (floored, as DateTime64(3) stores it).

    Lambda's own form (``2026-11-24T07:00:00.123Z``) takes a fast path: ``seconds`` caches the
    epoch second of each ``YYYY-MM-DDTHH:MM:SS`` prefix, and a batch's events share a few.
    Anything else goes through :func:`parse_time`.
    """
    if (
        type(text) is str
        and len(text) == 24
        and text[19] == "."
        and text[23] == "Z"
        and text.isascii()
        and text[20:23].isdigit()
    ):
        prefix = text[:19]
        base = seconds.get(prefix)
        if base is None:
            try:
                parsed = dt.datetime.fromisoformat(prefix)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None and not parsed.microsecond:
                base = (parsed.replace(tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(seconds=1)
                seconds[prefix] = base
        if base is not None:
            ms = base * 1000 + int(text[20:23])
            if 0 <= ms <= _MAX_STORED_MS:
                return ms
            raise BatchError(path, f"is outside the times the store holds ({_STORED_TIMES})")
    ms = _datetime_to_ms(parse_time(text, path))
    if not 0 <= ms <= _MAX_STORED_MS:
        raise BatchError(path, f"is outside the times the store holds ({_STORED_TIMES})")
    return ms


def _datetime_to_ms(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(milliseconds=1)


def _from_ms(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000.0, tz=dt.UTC)


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


# ---------------------------------------------------------------------------------------------
# Text lines


class TextLine(NamedTuple):
    level: str
    request_id: str | None
    message: str


#: Level spellings stored under one name (Python's): WARN and FATAL are the Node, Java and Go
#: loggers' and Lambda's JSON format's names for WARNING and CRITICAL.
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
#: The usual spellings and how each is stored: a dict look-up on the hot path, not a call.
_LEVELS = {
    name: _LEVEL_ALIASES.get(name, name)
    for name in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL")
}
#: pino's and bunyan's numeric levels (the usual JSON loggers of Node.js functions). Python's
#: own numbers differ (30 is WARNING there) but Python formatters write the name instead.
_NUMERIC_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARNING", 50: "ERROR", 60: "CRITICAL"}


def _level_name(name: str) -> str:
    """``name`` upper-cased, with WARN and FATAL under Python's names."""
    upper = name.upper()
    return _LEVEL_ALIASES.get(upper, upper)


def parse_text_line(raw: str) -> TextLine:
    """Split one Text-format line into level, request id (when the line names one) and message.

    awslambdaric's logging lines carry both; its unhandled-exception line (``[ERROR] Type: msg``
    and the traceback) carries a level only; Lambda's timeout and crash lines carry the request
    id; anything else (``print`` output) carries neither. Lines without a request id are
    attributed by window.
    """
    line = raw[:-1] if raw.endswith("\n") else raw
    # This runs for every function line and most are print output: the bracket test keeps the
    # regular expressions off them, as the fixed words do for the two Lambda lines below.
    if line.startswith("["):
        match = _RIC_LINE.match(line)
        if match:
            level, _, request_id, message = match.groups()
            # awslambdaric joins a stack trace's lines with \r to keep them in one record.
            return TextLine(
                _LEVELS.get(level) or _level_name(level),
                request_id or None,
                message.replace("\r", "\n"),
            )
        match = _LEVEL_PREFIX_LINE.match(line)
        if match:
            level, message = match.groups()
            return TextLine(_LEVELS[level], None, message.replace("\r", "\n"))
    else:
        match = _TIMEOUT_LINE.match(line) if "Task timed out after" in line else None
        if match is None and line.startswith("RequestId: "):
            match = _REQUEST_ID_ERROR_LINE.match(line)
        if match:
            return TextLine("", match.group("rid"), line)
    return TextLine("", None, line.replace("\r", "\n"))


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


# ---------------------------------------------------------------------------------------------
# Platform lines, rendered the way CloudWatch Logs shows them (TAB separated).


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "?"


def _render_report(request_id: str, record: dict[str, Any], metrics: dict[str, Any]) -> str:
    parts = [f"REPORT RequestId: {request_id}"]
    if metrics.get("durationMs") is not None:
        parts.append(f"Duration: {_ms(metrics.get('durationMs'))} ms")
    if metrics.get("billedDurationMs") is not None:
        parts.append(f"Billed Duration: {metrics['billedDurationMs']:.0f} ms")
    if metrics.get("memorySizeMB") is not None:
        parts.append(f"Memory Size: {metrics['memorySizeMB']:.0f} MB")
    if metrics.get("maxMemoryUsedMB") is not None:
        parts.append(f"Max Memory Used: {metrics['maxMemoryUsedMB']:.0f} MB")
    if metrics.get("initDurationMs") is not None:
        parts.append(f"Init Duration: {_ms(metrics['initDurationMs'])} ms")
    if metrics.get("restoreDurationMs") is not None:
        parts.append(f"Restore Duration: {_ms(metrics['restoreDurationMs'])} ms")
    status = record.get("status")
    if isinstance(status, str) and status.lower() != "success":
        parts.append(f"Status: {status}")
        if isinstance(record.get("errorType"), str):
            parts.append(f"Error Type: {record['errorType']}")
    return "\t".join(parts) + "\t"


# ---------------------------------------------------------------------------------------------
# The batch


def _environment(batch: dict[str, Any]) -> Environment:
    env = _obj(batch.get("environment"), "environment")
    memory = _int(env, "memory_size_mb", "environment")
    return Environment(
        environment_id=_str(env, "environment_id", "environment") or "",
        function_name=_id(env, "function_name", "environment"),
        function_version=_str(env, "function_version", "environment") or "$LATEST",
        region=_str(env, "region", "environment") or "",
        memory_size_mb=memory,
        initialization_type=_str(env, "initialization_type", "environment") or "",
        architecture=_str(env, "architecture", "environment") or "",
        tags=_tags(env.get("tags")),
    )


#: Lambda's own limits on tags (50 per function, keys 128 and values 256 characters).
MAX_TAGS = 50


def _tags(value: Any) -> tuple[tuple[str, str], ...]:
    """The batch's `environment.tags` object, kept within Lambda's limits; tags are optional
    metadata, so a malformed one is skipped rather than costing the batch."""
    if not isinstance(value, dict):
        return ()
    tags = [
        (k, v)
        for k, v in value.items()
        if isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 128 and len(v) <= 256
    ]
    return tuple(sorted(tags)[:MAX_TAGS])


#: How the store merges each column of ``invocation_parts`` (collector/sql.py); the parts of
#: one request within a batch are merged here with the same functions. Unnamed columns: max.
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


class _Builder:
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
        #: parse cache for _parse_ms: the events of a batch share a few seconds.
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
        moment = _ms_to_datetime(when)
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
                columns[name] = [row["event_time"] // _MS_PER_DAY for row in rows]
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


def normalize_batch(batch: Any) -> NormalizedBatch:
    """Validate one extension batch and turn it into partial invocation rows and log rows."""
    batch = _obj(batch, "batch")
    version = batch.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise BatchError("schema_version", f"must be an integer, got {_kind(version)}")
    if version > SCHEMA_VERSION:
        raise BatchError(
            "schema_version",
            f"version {version} is newer than this collector understands ({SCHEMA_VERSION}): "
            "upgrade the collector",
        )
    batch_id = _id(batch, "batch_id", "")
    sent_at_ms = _epoch_ms(batch, "sent_at_ms", "batch")
    sent_at = _from_ms(sent_at_ms) if sent_at_ms is not None else None
    sent_at_whole_ms = math.floor(sent_at_ms) if sent_at_ms is not None else None
    env = _environment(batch)
    window = _str(batch, "open_request_id", "") or None
    telemetry = batch.get("telemetry")
    if not isinstance(telemetry, list):
        raise BatchError("telemetry", f"must be a list of events, got {_kind(telemetry)}")
    invocations = batch.get("invocations", [])
    if invocations is None:
        invocations = []
    if not isinstance(invocations, list):
        raise BatchError("invocations", f"must be a list, got {_kind(invocations)}")

    out = _Builder(batch_id, env, sent_at_whole_ms)
    counts: dict[str, int] = {}
    ignored = 0
    dropped = 0
    rejected: list[tuple[str, str]] = []
    # Errors are raised with the field's path relative to where they were found and prefixed
    # on the way out (telemetry[3] + record + metrics.durationMs): most batches have none, so
    # no path is formatted for the events that are fine.
    for index, event in enumerate(telemetry):
        try:
            if type(event) is not dict:
                raise BatchError("", f"must be a JSON object, got {_kind(event)}")
            kind = event.get("type")
            if type(kind) is not str or not kind:
                raise BatchError("type", f"must be a non-empty string, got {_kind(kind)}")
            when = _parse_ms(event.get("time"), "time", out.seconds)
            handler = _HANDLERS.get(kind)
            if handler is not None:
                try:
                    window, dropped_now = handler(out, event.get("record"), when, window)
                except BatchError as exc:
                    raise BatchError(_join("record", exc.field), exc.message) from None
        except BatchError as exc:
            rejected.append((_join(f"telemetry[{index}]", exc.field), exc.message))
            continue
        counts[kind] = counts.get(kind, 0) + 1
        if handler is None:
            ignored += 1
        else:
            dropped += dropped_now

    for index, entry in enumerate(invocations):
        try:
            _invoke_entry(out, _obj(entry, ""))
        except BatchError as exc:
            rejected.append((_join(f"invocations[{index}]", exc.field), exc.message))

    for request_id, count in out.log_lines.items():
        out.part(
            request_id,
            out.first_line_at[request_id],
            log_lines=count,
            timed_out_log=int(request_id in out.timed_out),
        )

    # The extension's own figures: malformed ones are rejected alone, like a malformed event.
    meta = BatchMeta(batch_id, sent_at, env.function_name, env.function_version, env.environment_id)
    try:
        stats = stats_row(batch.get("extension_stats"), meta)
    except StatsError as exc:
        rejected.append((_join("extension_stats", exc.field), exc.message))
        stats = None

    return NormalizedBatch(
        batch_id=batch_id,
        sent_at=sent_at,
        environment=env,
        invocation_columns=out.invocation_columns(),
        log_columns=out.log_columns(),
        cold_start_rows=out.cold_starts,
        accepted_events=sum(counts.values()),
        ignored_events=ignored,
        event_counts=counts,
        dropped_records=dropped,
        rejected=tuple(rejected),
        extension_stats_rows=[stats] if stats is not None else [],
    )


def _invoke_entry(out: _Builder, entry: dict[str, Any]) -> None:
    request_id = _id(entry, "request_id", "")
    deadline_ms = _epoch_ms(entry, "deadline_ms", "")
    received_ms = _epoch_ms(entry, "received_at_ms", "")
    timeout_ms = None
    if deadline_ms is not None and received_ms is not None:
        # deadline - receipt is the configured timeout minus the INVOKE's delivery delay (tens of
        # ms on a busy host). Lambda timeouts are whole seconds, so round to the nearest one.
        remaining_ms = max(0.0, deadline_ms - received_ms)
        timeout_ms = float(max(1000, round(remaining_ms / 1000) * 1000))
    anchor = received_ms if received_ms is not None else deadline_ms
    when = math.floor(anchor) if anchor is not None else out.sent_at_ms
    if when is None:
        raise BatchError("received_at_ms", "is required when sent_at_ms is missing")
    out.part(
        request_id,
        when,
        received_at=math.floor(received_ms) if received_ms is not None else None,
        deadline=math.floor(deadline_ms) if deadline_ms is not None else None,
        timeout_ms=timeout_ms,
        invoked_function_arn=_str(entry, "invoked_function_arn", ""),
        trace_id=_str(entry, "trace_id", ""),
        has_invoke=1,
    )


# Each handler gets (builder, record, time, open window) and returns (window, dropped); a
# BatchError it raises names the field relative to the record ("" for the record itself).
_Result = tuple[str | None, int]


def _platform_start(out: _Builder, record: Any, when: int, w: Any) -> _Result:
    record = _obj(record, "")
    request_id = _id(record, "requestId", "")
    out.part(request_id, when, start_time=when, has_start=1)
    version = _str(record, "version", "") or out.env.function_version
    out.log(when, request_id, "platform", "", f"START RequestId: {request_id} Version: {version}")
    return request_id, 0


def _platform_runtime_done(out: _Builder, record: Any, when: int, window: str | None) -> _Result:
    record = _obj(record, "")
    request_id = _id(record, "requestId", "")
    metrics = _obj(record.get("metrics") or {}, "metrics")
    out.part(
        request_id,
        when,
        runtime_done_time=when,
        runtime_done_status=_lower(_str(record, "status", "")),
        runtime_done_error_type=_str(record, "errorType", ""),
        runtime_done_duration_ms=_num(metrics, "durationMs", "metrics"),
        runtime_done_produced_bytes=_int(metrics, "producedBytes", "metrics", _UINT64_MAX),
        has_runtime_done=1,
    )
    out.log(when, request_id, "platform", "", f"END RequestId: {request_id}")
    # Lines after runtimeDone(X) are no longer X's; a runtimeDone for another request (a
    # lost window) leaves the open one alone.
    return (None if window in (None, request_id) else window), 0


def _platform_report(out: _Builder, record: Any, when: int, window: str | None) -> _Result:
    record = _obj(record, "")
    request_id = _id(record, "requestId", "")
    metrics = _obj(record.get("metrics") or {}, "metrics")
    out.part(
        request_id,
        when,
        report_time=when,
        report_status=_lower(_str(record, "status", "")),
        report_error_type=_str(record, "errorType", ""),
        report_duration_ms=_num(metrics, "durationMs", "metrics"),
        report_billed_duration_ms=_num(metrics, "billedDurationMs", "metrics"),
        report_memory_size_mb=_int(metrics, "memorySizeMB", "metrics"),
        report_max_memory_used_mb=_int(metrics, "maxMemoryUsedMB", "metrics"),
        report_init_duration_ms=_num(metrics, "initDurationMs", "metrics"),
        report_restore_duration_ms=_num(metrics, "restoreDurationMs", "metrics"),
        has_report=1,
    )
    out.log(when, request_id, "platform", "", _render_report(request_id, record, metrics))
    return window, 0


def _phase(record: dict[str, Any], restore: bool) -> str:
    # SnapStart restores have no phase field; they are their own kind of initialisation.
    if restore:
        return "restore"
    return _lower(_str(record, "phase", "")) or "init"


def _init_start(out: _Builder, record: Any, when: int, w: Any, *, restore: bool = False) -> _Result:
    record = _obj(record, "")
    phase = _phase(record, restore)
    runtime_version = _str(record, "runtimeVersion", "")
    out.cold_start(
        phase,
        when,
        initialization_type=_str(record, "initializationType", ""),
        init_start_time=when,
        runtime_version=runtime_version,
        has_init_start=1,
    )
    line = "RESTORE_START" if restore else "INIT_START"
    if runtime_version:
        line += f" Runtime Version: {runtime_version}"
    if isinstance(record.get("runtimeVersionArn"), str):
        line += f"\tRuntime Version ARN: {record['runtimeVersionArn']}"
    out.log(when, None, "platform", "", line)
    return w, 0


def _init_runtime_done(
    out: _Builder, record: Any, when: int, w: Any, *, restore: bool = False
) -> _Result:
    record = _obj(record, "")
    out.cold_start(
        _phase(record, restore),
        when,
        initialization_type=_str(record, "initializationType", ""),
        runtime_done_time=when,
        runtime_done_status=_lower(_str(record, "status", "")),
        runtime_done_error_type=_str(record, "errorType", ""),
        has_runtime_done=1,
    )
    return w, 0


def _init_report(
    out: _Builder, record: Any, when: int, w: Any, *, restore: bool = False
) -> _Result:
    record = _obj(record, "")
    metrics = _obj(record.get("metrics") or {}, "metrics")
    phase = _phase(record, restore)
    status = _lower(_str(record, "status", ""))
    error_type = _str(record, "errorType", "")
    duration = _num(metrics, "durationMs", "metrics")
    out.cold_start(
        phase,
        when,
        initialization_type=_str(record, "initializationType", ""),
        report_time=when,
        report_status=status,
        report_error_type=error_type,
        init_duration_ms=duration,
        has_report=1,
    )
    if restore:
        line = f"RESTORE_REPORT Restore Duration: {_ms(duration)} ms"
    else:
        line = f"INIT_REPORT Init Duration: {_ms(duration)} ms\tPhase: {phase}"
    if status:
        line += f"\tStatus: {status}"
    if error_type:
        line += f"\tError Type: {error_type}"
    out.log(when, None, "platform", "ERROR" if status not in (None, "success") else "", line)
    return w, 0


def _extension_state(out: _Builder, record: Any, when: int, w: Any) -> _Result:
    record = _obj(record, "")
    events = record.get("events")
    names = ", ".join(str(e) for e in events) if isinstance(events, list) else ""
    line = (
        f"EXTENSION\tName: {_str(record, 'name', '') or '?'}"
        f"\tState: {_str(record, 'state', '') or '?'}\tEvents: [{names}]"
    )
    if isinstance(record.get("errorType"), str):
        line += f"\tError Type: {record['errorType']}"
    out.log(when, None, "platform", "", line)
    return w, 0


def _subscription(out: _Builder, record: Any, when: int, w: Any) -> _Result:
    record = _obj(record, "")
    types = record.get("types")
    names = ", ".join(str(x).title() for x in types) if isinstance(types, list) else ""
    out.log(
        when,
        None,
        "platform",
        "",
        f"TELEMETRY\tName: {_str(record, 'name', '') or '?'}"
        f"\tState: {_str(record, 'state', '') or '?'}\tTypes: [{names}]",
    )
    return w, 0


def _logs_dropped(out: _Builder, record: Any, when: int, w: Any) -> _Result:
    record = _obj(record, "")
    dropped = _int(record, "droppedRecords", "", _UINT64_MAX) or 0
    dropped_bytes = _int(record, "droppedBytes", "", _UINT64_MAX) or 0
    reason = _str(record, "reason", "") or ""
    out.log(
        when,
        None,
        "platform",
        "WARNING",
        f"LOGS_DROPPED\tDropped Records: {dropped}\tDropped Bytes: {dropped_bytes}"
        f"\tReason: {reason}",
    )
    return w, dropped


#: Where JSON loggers put the level, most common first: "level" (Lambda's JSON format,
#: Powertools, pino, zap, structlog), "levelname" (python-json-logger's default), "severity"
#: (Google Cloud's structured logging), "log.level" (Elastic's ECS loggers, a flat dotted key).
_LEVEL_KEYS = ("level", "levelname", "severity", "log.level")
#: Where they put the message: "message" (Lambda, Powertools, python-json-logger, ECS), "msg"
#: (pino, zap, bunyan), "event" (structlog), "errorMessage" (awslambdaric's JSON-format record
#: for an unhandled exception, which has no "message").
_MESSAGE_KEYS = ("message", "msg", "event", "errorMessage")
#: Where they put the request id: Lambda's JSON format, Powertools, Lambda's ``aws_request_id``
#: logging attribute as python-json-logger formats pick it up.
_REQUEST_ID_KEYS = ("requestId", "function_request_id", "aws_request_id")


def _structured_text(raw: str) -> dict[str, Any] | None:
    """A Text-format line that is itself a JSON log object (Powertools, structlog), else None."""
    # Most lines are not JSON: decide on the first character without copying the line.
    if not raw.startswith("{"):
        if not raw[:1].isspace():
            return None
        raw = raw.lstrip()
        if not raw.startswith("{"):
            return None
    text = raw.rstrip()
    if not text.endswith("}"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    # "message" or "msg" makes a log object; "event" and "errorMessage" are common payload
    # keys too (a printed API response), so those count only beside a level.
    if "message" in parsed or "msg" in parsed:
        return parsed
    if ("event" in parsed or "errorMessage" in parsed) and _level_key(parsed) is not None:
        return parsed
    return None


def _level_key(record: dict[str, Any]) -> str | None:
    for key in _LEVEL_KEYS:
        if key in record:
            return key
    return None


def _structured_level(value: Any) -> str:
    if isinstance(value, str):
        return _level_name(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        # pino/bunyan numbers by name; any other number kept as it is rather than guessed.
        return _NUMERIC_LEVELS.get(value, str(value))
    return ""


def _error_text(record: dict[str, Any]) -> str:
    """awslambdaric's JSON-format exception record as its Text format shows it (less the
    ``[ERROR]``): ``Type: message``, then the traceback."""
    text = _json_text(record.get("errorMessage", ""))
    error_type = record.get("errorType")
    if isinstance(error_type, str) and error_type:
        text = f"{error_type}: {text}" if text else error_type
    frames = record.get("stackTrace")
    if isinstance(frames, list) and frames and all(isinstance(f, str) for f in frames):
        text += "\nTraceback (most recent call last):\n" + "".join(frames).rstrip("\n")
    return text


def _log_structured(
    out: _Builder, stream: str, record: dict[str, Any], when: int, window: str | None
) -> None:
    """A JSON log object: level, request id and message from whichever logger's keys it has;
    the other keys become attributes. ``extension`` lines are never a request's."""
    used = ["timestamp"]
    request_id: Any = None
    if stream != "extension":
        for key in _REQUEST_ID_KEYS:
            request_id = record.get(key)
            if request_id:
                break
        if not isinstance(request_id, str) or not request_id:
            request_id = window
        # Kept out of the attributes as before; Powertools' function_request_id stays in them.
        used.append("requestId")
    level_key = _level_key(record)
    level = ""
    if level_key is not None:
        level = _structured_level(record[level_key])
        used.append(level_key)
    message_key = next((k for k in _MESSAGE_KEYS if k in record), "message")
    used.append(message_key)
    if message_key == "errorMessage":
        text = _error_text(record)
        used.append("stackTrace")  # now in the message; errorType stays an attribute
    else:
        text = _json_text(record.get(message_key, ""))
    if text.endswith("\n"):
        text = text[:-1]
    extra = {str(k): _json_text(v) for k, v in record.items() if k not in used and v is not None}
    out.log(when, request_id, stream, level, text, extra)


def _function_line(out: _Builder, record: Any, when: int, window: str | None) -> _Result:
    if isinstance(record, str):
        structured = _structured_text(record)
        if structured is not None:
            _log_structured(out, "function", structured, when, window)
            return window, 0
        line = parse_text_line(record)
        request_id = line.request_id or window
        out.log(when, request_id, "function", line.level, line.message)
        if line.request_id and "Task timed out after" in line.message:
            out.timed_out.add(line.request_id)
        return window, 0
    if isinstance(record, dict):
        _log_structured(out, "function", record, when, window)
        return window, 0
    raise BatchError("", f"must be a log line string or a JSON log object, got {_kind(record)}")


def _extension_line(out: _Builder, record: Any, when: int, window: str | None) -> _Result:
    """What an extension (lambdascope's own or another) wrote: kept on its own stream and never
    attributed to the open invocation, whose log is the customer's function's.

    lambdascope's extension writes only here (Lambda and the emulator both turn an external
    extension's stdout and stderr into ``extension`` events). ``[lambdascope] ...`` lines on
    the ``function`` stream come from lambdascope_tracing inside the function (the timeout
    capture's "about to time out; stuck at ..."), which belong to the request: left alone.
    """
    if isinstance(record, str):
        structured = _structured_text(record)
        if structured is not None:
            _log_structured(out, "extension", structured, when, window)
            return window, 0
        line = parse_text_line(record)
        level = line.level
        if not level and line.message.startswith("[lambdascope] "):
            match = _LAMBDASCOPE_LINE.match(line.message)
            if match:
                # The whole line stays the message: its prefix says which extension wrote it.
                level = match.group("level")
        out.log(when, None, "extension", level, line.message)
        return window, 0
    if isinstance(record, dict):
        _log_structured(out, "extension", record, when, window)
        return window, 0
    raise BatchError("", f"must be a log line string or a JSON log object, got {_kind(record)}")


_HANDLERS: dict[str, Any] = {
    "platform.start": _platform_start,
    "platform.runtimeDone": _platform_runtime_done,
    "platform.report": _platform_report,
    "platform.initStart": _init_start,
    "platform.initRuntimeDone": _init_runtime_done,
    "platform.initReport": _init_report,
    "platform.restoreStart": functools.partial(_init_start, restore=True),
    "platform.restoreRuntimeDone": functools.partial(_init_runtime_done, restore=True),
    "platform.restoreReport": functools.partial(_init_report, restore=True),
    "platform.extension": _extension_state,
    "platform.telemetrySubscription": _subscription,
    "platform.logsDropped": _logs_dropped,
    "function": _function_line,
    "extension": _extension_line,
}
