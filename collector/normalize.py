"""Turn one extension batch into store rows: the collector's entry point for batches.

Pure: no I/O, no clock, no globals. The batch format is docs/architecture.md §1. Its events
are walked in delivery order and each goes to the module for its source:

* ``platform.*`` Telemetry API events: collector/telemetry.py (invocation and cold-start
  parts, platform lines);
* ``function`` and ``extension`` log lines: collector/log_lines.py;
* the INVOKE records of ``invocations[]``: collector/invoke.py;
* the extension's own figures in ``extension_stats``: collector/extension_stats.py.

They all add to one :class:`~lambdascope.collector.batch_rows.BatchBuilder`, which merges the
parts of a request within the batch (collector/batch_rows.py). The batch's
``open_request_id`` (``open_request_ids`` from a Managed Instances environment, where several
may be open) opens the invocation windows that started in an earlier batch, so log lines
without a request id are attributed across batches too.

A batch that cannot be read as a whole (its head, its environment, ``telemetry`` not a list)
raises :class:`~lambdascope.collector.fields.BatchError` naming the offending field; a
malformed event, INVOKE record or ``extension_stats`` is rejected alone and named in
``NormalizedBatch.rejected``. Unknown event types and unknown fields are ignored (AWS keeps
adding them); unknown types are counted.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from lambdascope.collector.batch_rows import BatchBuilder, Environment, NormalizedBatch
from lambdascope.collector.extension_stats import BatchMeta, StatsError, stats_row
from lambdascope.collector.fields import (
    BatchError,
    join_path,
    json_kind,
    parse_time_ms,
    read_epoch_ms,
    read_id,
    read_int,
    read_object,
    read_str,
)
from lambdascope.collector.invoke import add_invoke
from lambdascope.collector.log_lines import LOG_HANDLERS
from lambdascope.collector.telemetry import PLATFORM_HANDLERS

__all__ = ["MAX_TAGS", "SCHEMA_VERSION", "normalize_batch"]

#: The batch schema version this collector understands.
SCHEMA_VERSION = 1

#: The handler of each event type this collector knows; other types are counted and ignored.
_HANDLERS: dict[str, Any] = {**PLATFORM_HANDLERS, **LOG_HANDLERS}


def _from_ms(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000.0, tz=dt.UTC)


def _environment(batch: dict[str, Any]) -> Environment:
    env = read_object(batch.get("environment"), "environment")
    memory = read_int(env, "memory_size_mb", "environment")
    return Environment(
        environment_id=read_str(env, "environment_id", "environment") or "",
        function_name=read_id(env, "function_name", "environment"),
        function_version=read_str(env, "function_version", "environment") or "$LATEST",
        region=read_str(env, "region", "environment") or "",
        memory_size_mb=memory,
        initialization_type=read_str(env, "initialization_type", "environment") or "",
        architecture=read_str(env, "architecture", "environment") or "",
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


def normalize_batch(batch: Any) -> NormalizedBatch:
    """Validate one extension batch and turn it into partial invocation rows and log rows."""
    batch = read_object(batch, "batch")
    version = batch.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise BatchError("schema_version", f"must be an integer, got {json_kind(version)}")
    if version > SCHEMA_VERSION:
        raise BatchError(
            "schema_version",
            f"version {version} is newer than this collector understands ({SCHEMA_VERSION}): "
            "upgrade the collector",
        )
    batch_id = read_id(batch, "batch_id", "")
    sent_at_ms = read_epoch_ms(batch, "sent_at_ms", "batch")
    sent_at = _from_ms(sent_at_ms) if sent_at_ms is not None else None
    sent_at_whole_ms = math.floor(sent_at_ms) if sent_at_ms is not None else None
    env = _environment(batch)
    window = _open_windows(batch)
    telemetry = batch.get("telemetry")
    if not isinstance(telemetry, list):
        raise BatchError("telemetry", f"must be a list of events, got {json_kind(telemetry)}")
    invocations = batch.get("invocations", [])
    if invocations is None:
        invocations = []
    if not isinstance(invocations, list):
        raise BatchError("invocations", f"must be a list, got {json_kind(invocations)}")

    out = BatchBuilder(batch_id, env, sent_at_whole_ms)
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
                raise BatchError("", f"must be a JSON object, got {json_kind(event)}")
            kind = event.get("type")
            if type(kind) is not str or not kind:
                raise BatchError("type", f"must be a non-empty string, got {json_kind(kind)}")
            when = parse_time_ms(event.get("time"), "time", out.seconds)
            handler = _HANDLERS.get(kind)
            if handler is not None:
                try:
                    window, dropped_now = handler(out, event.get("record"), when, window)
                except BatchError as exc:
                    raise BatchError(join_path("record", exc.field), exc.message) from None
        except BatchError as exc:
            rejected.append((join_path(f"telemetry[{index}]", exc.field), exc.message))
            continue
        counts[kind] = counts.get(kind, 0) + 1
        if handler is None:
            ignored += 1
        else:
            dropped += dropped_now

    for index, entry in enumerate(invocations):
        try:
            add_invoke(out, read_object(entry, ""))
        except BatchError as exc:
            rejected.append((join_path(f"invocations[{index}]", exc.field), exc.message))

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
        rejected.append((join_path("extension_stats", exc.field), exc.message))
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
        unattributed_lines=out.unattributed_lines,
    )


#: More requests open at once than one environment runs (Managed Instances allow 16 per vCPU).
MAX_OPEN_REQUESTS = 1024


def _open_windows(batch: dict[str, Any]) -> tuple[str, ...]:
    """The invocation windows open before the batch's first event: ``open_request_ids`` when
    the extension sent it (Managed Instances: several may be open), else ``open_request_id``."""
    several = batch.get("open_request_ids")
    if isinstance(several, list):
        # A request id is at most 256 characters (as everywhere else in a batch); anything
        # else cannot name a request and is left out rather than stored on every line.
        return tuple(
            dict.fromkeys(
                r for r in several[:MAX_OPEN_REQUESTS] if isinstance(r, str) and 0 < len(r) <= 256
            )
        )
    one = read_str(batch, "open_request_id", "")
    return (one,) if one else ()
