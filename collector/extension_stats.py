"""The extension's own figures (a batch's ``extension_stats``) as one ``extension_stats`` row.

Pure: no I/O, no clock. Every batch's head carries a snapshot of the extension's counters, taken
when the batch was built (extension/README.md, ``extension_stats``); each becomes one row, so
the table holds one row per environment per flush. Counters are totals since the extension
process started, and each process has its own ``environment_id``: what happened in a window is
the newest row's figure minus the newest before the window.

Older extensions send fewer keys: a missing counter is 0, a missing measurement NULL, and an
extension that sent no ``events_dropped`` mapping has its older totals (``dropped_events``,
``spool_dropped_events``) stored under the reasons ``unspecified`` and ``spool_full``.

A value the store could not hold or no extension could have produced (negative, not a number,
beyond what one execution environment can reach) makes :func:`stats_row` raise
:class:`StatsError` naming the key. The caller rejects the stats alone: they describe the
extension, not the function, and must not cost the batch's telemetry.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchMeta", "ExtensionStatsRow", "StatsError", "stats_row"]

# Bounds well past anything an execution environment can produce (Lambda's environments live
# hours, have at most 10,240 MB): a figure beyond them is a broken or hostile sender, and
# storing it would make every later sum over the function meaningless.
#: Events, batches, sends, log lines, INVOKE events.
MAX_COUNT = 10**12
#: Bytes sent or spooled.
MAX_BYTES = 10**15
#: Any duration in ms (start-up, CPU, post-runtime, shutdown): a week.
MAX_MS = 7 * 24 * 3600 * 1000
#: Peak resident memory in KiB: 64 GiB (the emulator runs on a host, not in a 10 GB sandbox).
MAX_RSS_KB = 64 * 1024 * 1024
#: Reasons in ``events_dropped``, and how long a reason's name may be.
MAX_REASONS = 32
MAX_REASON_LENGTH = 64
MAX_SHUTDOWN_REASON_LENGTH = 64


class StatsError(ValueError):
    """The stats are malformed; ``field`` is the key inside ``extension_stats``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BatchMeta:
    """What the batch's head says about where the stats come from."""

    batch_id: str
    #: When the batch was built (``sent_at_ms``); None when the batch did not say, and the
    #: store then takes the time it arrived.
    sent_at: dt.datetime | None
    function_name: str
    function_version: str
    environment_id: str


@dataclass(frozen=True)
class ExtensionStatsRow:
    """One ``extension_stats`` row; field names are the columns the collector inserts
    (collector/sql/tables.py ``EXTENSION_STATS_COLUMNS``). Counters are totals since the
    extension process started; 0 when an older extension did not send them."""

    function_name: str
    function_version: str
    environment_id: str
    batch_id: str
    sent_at: dt.datetime | None
    events_received: int = 0
    events_sent: int = 0
    #: The sum of ``events_dropped`` over every reason.
    events_dropped_total: int = 0
    events_dropped: dict[str, int] = field(default_factory=dict)
    batches_sent: int = 0
    bytes_sent: int = 0
    send_failures: int = 0
    send_retries: int = 0
    spooled_batches: int = 0
    spooled_bytes: int = 0
    invoke_events: int = 0
    invoke_records_dropped: int = 0
    otlp_exports_received: int = 0
    otlp_exports_rejected: int = 0
    otlp_exports_dropped: int = 0
    log_lines_redacted: int = 0
    log_lines_sampled_out: int = 0
    # Measurements: None when the extension did not (or could not) measure.
    startup_ms: float | None = None
    process_startup_ms: float | None = None
    peak_rss_mb: float | None = None
    cpu_ms: float | None = None
    #: Post-runtime (billed) time the extension caused since it started, and its longest flush.
    post_runtime_ms_total: float | None = None
    post_runtime_ms_max: float | None = None
    #: 1 on the last batch of an environment, built at SHUTDOWN.
    final: int = 0
    # Only on the final batch: the SHUTDOWN's reason and the final flush's figures so far.
    shutdown_reason: str = ""
    shutdown_budget_ms: float | None = None
    shutdown_elapsed_ms: float | None = None
    shutdown_batches_sent: int = 0
    shutdown_events_sent: int = 0
    shutdown_batches_unsent: int = 0
    shutdown_events_unsent: int = 0
    #: When the environment's runtime process started (the extension reads /proc).
    runtime_started_at: dt.datetime | None = None


#: Row field <- the extension's key, and the bound of each whole-number counter.
_COUNTERS: tuple[tuple[str, str, int], ...] = (
    ("events_received", "events_received", MAX_COUNT),
    ("events_sent", "events_sent", MAX_COUNT),
    ("batches_sent", "batches_sent", MAX_COUNT),
    ("bytes_sent", "bytes_sent", MAX_BYTES),
    ("send_failures", "send_failures", MAX_COUNT),
    ("send_retries", "send_retries", MAX_COUNT),
    ("spooled_batches", "spooled_batches", MAX_COUNT),
    ("spooled_bytes", "spooled_bytes", MAX_BYTES),
    ("invoke_events", "invocations", MAX_COUNT),
    ("invoke_records_dropped", "dropped_invocations", MAX_COUNT),
    ("otlp_exports_received", "otlp_received", MAX_COUNT),
    ("otlp_exports_rejected", "otlp_rejected", MAX_COUNT),
    ("otlp_exports_dropped", "otlp_dropped", MAX_COUNT),
    ("log_lines_redacted", "log_lines_redacted", MAX_COUNT),
    ("log_lines_sampled_out", "log_lines_sampled_out", MAX_COUNT),
)
_MEASUREMENTS: tuple[tuple[str, str], ...] = (
    ("startup_ms", "startup_ms"),
    ("process_startup_ms", "process_startup_ms"),
    ("cpu_ms", "cpu_ms"),
    ("post_runtime_ms_total", "post_runtime_ms_total"),
    ("post_runtime_ms_max", "post_runtime_ms_max"),
)
#: Only on the final batch.
_SHUTDOWN_COUNTERS = (
    "shutdown_batches_sent",
    "shutdown_events_sent",
    "shutdown_batches_unsent",
    "shutdown_events_unsent",
)
_SHUTDOWN_MEASUREMENTS = ("shutdown_budget_ms", "shutdown_elapsed_ms")


def stats_row(raw_stats: Any, meta: BatchMeta) -> ExtensionStatsRow | None:
    """The row of one batch's ``extension_stats``; None when the batch carries none.

    Missing keys take their defaults; unknown keys are ignored (the extension adds figures).
    Raises :class:`StatsError` naming the key of a malformed value.
    """
    if raw_stats is None:
        return None
    if not isinstance(raw_stats, dict):
        raise StatsError("", f"must be a JSON object, got {_kind(raw_stats)}")
    values: dict[str, Any] = {}
    for name, key, maximum in _COUNTERS:
        values[name] = _count(raw_stats, key, maximum)
    for name, key in _MEASUREMENTS:
        values[name] = _number(raw_stats, key, MAX_MS)
    peak_rss_kb = _number(raw_stats, "peak_rss_kb", MAX_RSS_KB)
    values["peak_rss_mb"] = None if peak_rss_kb is None else peak_rss_kb / 1024
    dropped = _dropped(raw_stats)
    values["events_dropped"] = dropped
    values["events_dropped_total"] = sum(dropped.values())
    final = raw_stats.get("final", False)
    if final is not None and not isinstance(final, bool):
        raise StatsError("final", f"must be true or false, got {_kind(final)}")
    values["final"] = int(bool(final))
    values["runtime_started_at"] = _epoch_ms(raw_stats, "runtime_started_at_ms")
    # The shutdown figures describe the final flush; on another batch they mean nothing, so a
    # stray one is not stored.
    if final:
        values["shutdown_reason"] = _reason(raw_stats)
        for name in _SHUTDOWN_COUNTERS:
            values[name] = _count(raw_stats, name, MAX_COUNT)
        for name in _SHUTDOWN_MEASUREMENTS:
            values[name] = _number(raw_stats, name, MAX_MS)
    return ExtensionStatsRow(
        function_name=meta.function_name,
        function_version=meta.function_version,
        environment_id=meta.environment_id,
        batch_id=meta.batch_id,
        sent_at=meta.sent_at,
        **values,
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _KINDS:
        if isinstance(value, kind):
            return name
    return "a value"


#: JSON's kinds in messages; bool before int, which it subclasses.
_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "a number"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "an object"),
)


def _number(stats: dict[str, Any], key: str, maximum: float) -> float | None:
    """A non-negative finite number up to ``maximum``, or None when absent (or null)."""
    value = stats.get(key)
    if value is None:
        return None
    # bool is an int subclass; true is not a duration.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatsError(key, f"must be a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:  # a JSON integer has no bound; a float does
        raise StatsError(key, "is too large for a number") from None
    if not math.isfinite(number) or number < 0:
        raise StatsError(key, f"must be a number of 0 or more, got {value!r}")
    if number > maximum:
        raise StatsError(key, f"is beyond what one execution environment can reach: {value!r}")
    return number


#: Epoch milliseconds a sandbox can have: 2000-01-01 to 2100-01-01.
EPOCH_MS_RANGE = (946_684_800_000, 4_102_444_800_000)


def _epoch_ms(stats: dict[str, Any], key: str) -> dt.datetime | None:
    number = _number(stats, key, float(EPOCH_MS_RANGE[1]))
    if number is None:
        return None
    if number < EPOCH_MS_RANGE[0]:
        raise StatsError(key, f"must be milliseconds since 1970 after 2000, got {stats[key]!r}")
    return dt.datetime.fromtimestamp(round(number) / 1000, dt.UTC)


def _count(stats: dict[str, Any], key: str, maximum: int) -> int:
    number = _number(stats, key, maximum)
    if number is None:
        return 0
    if number != math.floor(number):
        raise StatsError(key, f"must be a whole number, got {stats[key]!r}")
    return int(number)


def _dropped(stats: dict[str, Any]) -> dict[str, int]:
    """Events dropped by reason; an older extension's totals when it sent no mapping."""
    raw = stats.get("events_dropped")
    if raw is None:
        legacy = {
            "unspecified": _count(stats, "dropped_events", MAX_COUNT),
            "spool_full": _count(stats, "spool_dropped_events", MAX_COUNT),
        }
        return {reason: n for reason, n in legacy.items() if n}
    if not isinstance(raw, dict):
        raise StatsError("events_dropped", f"must be an object of reason: events, got {_kind(raw)}")
    if len(raw) > MAX_REASONS:
        raise StatsError("events_dropped", f"names more than {MAX_REASONS} reasons")
    dropped: dict[str, int] = {}
    for reason in raw:
        if not (
            isinstance(reason, str)
            and 0 < len(reason) <= MAX_REASON_LENGTH
            and reason.isascii()
            and reason.isprintable()
        ):
            raise StatsError("events_dropped", f"has a reason that is not a short name: {reason!r}")
        try:
            count = _count(raw, reason, MAX_COUNT)
        except StatsError as exc:
            raise StatsError(f"events_dropped.{reason}", exc.message) from None
        # A reason with nothing dropped says nothing; counters only grow, so leaving it out
        # never makes a later row's figure look smaller.
        if count:
            dropped[reason] = count
    return dropped


def _reason(stats: dict[str, Any]) -> str:
    value = stats.get("shutdown_reason")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise StatsError("shutdown_reason", f"must be a string, got {_kind(value)}")
    if len(value) > MAX_SHUTDOWN_REASON_LENGTH or not value.isascii() or not value.isprintable():
        raise StatsError("shutdown_reason", f"is not a short reason: {value[:80]!r}")
    return value
