"""The extension's own figures: one `extension_stats` row per batch, tolerant of older
extensions, malformed figures rejected alone, and stored once however often a batch comes."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import fields
from typing import Any

import pytest

from lambdascope.collector import sql
from lambdascope.collector.batch_rows import NormalizedBatch
from lambdascope.collector.extension_stats import (
    BatchMeta,
    ExtensionStatsRow,
    StatsError,
    stats_row,
)
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.prepare import prepare_batch
from lambdascope.collector.store import Store, StoreError
from tests.collector.conftest import load_event

SENT = dt.datetime(2026, 11, 24, 7, 0, 5, 250000, tzinfo=dt.UTC)
META = BatchMeta("b-1", SENT, "checkout", "$LATEST", "env-1")

#: What the extension sends in its final batch (extension/agent.py self_stats and the final
#: flush's figures, extension/final_flush.py).
FINAL_STATS: dict[str, Any] = {
    "peak_rss_kb": 12_800,
    "cpu_ms": 91.5,
    "startup_ms": 18.25,
    "process_startup_ms": 21.0,
    "bytes_sent": 48_213,
    "dropped_events": 800,
    "dropped_invocations": 0,
    "post_runtime_ms_total": 12.5,
    "post_runtime_ms_max": 3.25,
    "invocations": 40,
    "spool_dropped_events": 0,
    "events_received": 2_400,
    "events_sent": 1_600,
    "batches_sent": 12,
    "events_dropped": {
        "buffer_full": 0,
        "rejected": 0,
        "unsent_overflow": 0,
        "shutdown_unspooled": 800,
        "shutdown_unbatched": 0,
        "spool_full": 0,
    },
    "send_failures": 3,
    "send_retries": 2,
    "spooled_batches": 0,
    "spooled_bytes": 0,
    "otlp_received": 5,
    "otlp_rejected": 1,
    "otlp_dropped": 0,
    "log_lines_redacted": 2,
    "log_lines_sampled_out": 7,
    "final": True,
    "shutdown_reason": "spindown",
    "shutdown_budget_ms": 1550,
    "shutdown_elapsed_ms": 1449,
    "shutdown_batches_sent": 0,
    "shutdown_events_sent": 0,
    "shutdown_batches_unsent": 11,
    "shutdown_events_unsent": 800,
}


def test_the_row_holds_every_figure_the_extension_sends() -> None:
    row = stats_row(FINAL_STATS, META)

    assert row == ExtensionStatsRow(
        function_name="checkout",
        function_version="$LATEST",
        environment_id="env-1",
        batch_id="b-1",
        sent_at=SENT,
        events_received=2_400,
        events_sent=1_600,
        events_dropped_total=800,
        events_dropped={"shutdown_unspooled": 800},
        batches_sent=12,
        bytes_sent=48_213,
        send_failures=3,
        send_retries=2,
        invoke_events=40,
        otlp_exports_received=5,
        otlp_exports_rejected=1,
        log_lines_redacted=2,
        log_lines_sampled_out=7,
        startup_ms=18.25,
        process_startup_ms=21.0,
        peak_rss_mb=12.5,
        cpu_ms=91.5,
        post_runtime_ms_total=12.5,
        post_runtime_ms_max=3.25,
        final=1,
        shutdown_reason="spindown",
        shutdown_budget_ms=1550.0,
        shutdown_elapsed_ms=1449.0,
        shutdown_batches_unsent=11,
        shutdown_events_unsent=800,
    )


def test_the_inserted_columns_are_the_rows_fields() -> None:
    assert tuple(f.name for f in fields(ExtensionStatsRow)) == sql.EXTENSION_STATS_COLUMNS


def test_an_older_extension_gets_defaults_and_its_drop_totals_as_reasons() -> None:
    older = {
        "startup_ms": 25.0,
        "process_startup_ms": None,  # unknown: the launcher could not say
        "peak_rss_kb": 11_264,
        "bytes_sent": 900,
        "dropped_events": 30,
        "spool_dropped_events": 4,
        "post_runtime_ms_total": 0.0,
        "invocations": 3,
    }

    row = stats_row(older, META)

    assert row is not None
    assert (row.startup_ms, row.process_startup_ms, row.peak_rss_mb) == (25.0, None, 11.0)
    assert row.events_dropped == {"unspecified": 30, "spool_full": 4}
    assert row.events_dropped_total == 34
    assert (row.events_received, row.send_failures, row.invoke_events) == (0, 0, 3)
    assert (row.final, row.shutdown_reason, row.post_runtime_ms_max) == (0, "", None)
    assert stats_row({}, META) == ExtensionStatsRow("checkout", "$LATEST", "env-1", "b-1", SENT)


def test_no_stats_no_row() -> None:
    assert stats_row(None, META) is None


def test_shutdown_figures_count_only_on_the_final_batch() -> None:
    stray = {"final": False, "shutdown_reason": "spindown", "shutdown_events_unsent": 5}

    row = stats_row(stray, META)

    assert row is not None
    assert (row.final, row.shutdown_reason, row.shutdown_events_unsent) == (0, "", 0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"events_sent": -1}, "events_sent"),
        ({"events_sent": "12"}, "events_sent"),
        ({"events_sent": True}, "events_sent"),
        ({"events_sent": 1.5}, "events_sent"),
        ({"events_sent": 10**30}, "events_sent"),
        ({"startup_ms": float("nan")}, "startup_ms"),
        ({"startup_ms": -3.0}, "startup_ms"),
        ({"peak_rss_kb": 10**12}, "peak_rss_kb"),
        ({"events_dropped": [800]}, "events_dropped"),
        ({"events_dropped": {"buffer_full": -5}}, "events_dropped.buffer_full"),
        ({"events_dropped": {"": 5}}, "events_dropped"),
        ({"final": "yes"}, "final"),
        ({"shutdown_reason": 7}, "shutdown_reason"),
        ({"shutdown_events_unsent": -800}, "shutdown_events_unsent"),
        ({"runtime_started_at_ms": 1_700_000}, "runtime_started_at_ms"),  # seconds, not ms
        ({"runtime_started_at_ms": 10**16}, "runtime_started_at_ms"),
        ({"runtime_started_at_ms": "soon"}, "runtime_started_at_ms"),
    ],
)
def test_a_malformed_figure_is_refused_by_name(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(StatsError) as refused:
        stats_row({**FINAL_STATS, **changes}, META)

    assert refused.value.field == field
    assert refused.value.message


def test_malformed_stats_are_rejected_alone_and_the_batch_is_kept() -> None:
    good = normalize_batch(load_event("text_batch_1"))
    raw = load_event("text_batch_1")
    raw["extension_stats"] = {**FINAL_STATS, "events_sent": -1}

    batch = normalize_batch(raw)

    assert batch.extension_stats_rows == []
    assert [f for f, _ in batch.rejected] == ["extension_stats.events_sent"]
    assert batch.invocation_count == good.invocation_count > 0
    assert batch.log_count == good.log_count > 0
    not_an_object = normalize_batch({**load_event("text_batch_1"), "extension_stats": [1]})
    assert [f for f, _ in not_an_object.rejected] == ["extension_stats"]


def test_a_batch_carries_its_stats_row_and_counts_it() -> None:
    raw = load_event("text_batch_1")
    plain = normalize_batch(raw)
    raw["extension_stats"] = FINAL_STATS

    batch = normalize_batch(raw)

    (row,) = batch.extension_stats_rows
    assert (row.batch_id, row.environment_id) == (raw["batch_id"], plain.environment.environment_id)
    assert row.sent_at == batch.sent_at
    assert batch.rejected == ()
    assert batch.row_count == plain.row_count + 1


# Through the store.


def with_stats(name: str, stats: dict[str, Any], **extra: Any) -> dict[str, Any]:
    raw = load_event(name)
    raw["extension_stats"] = stats
    raw.update(extra)
    return raw


def received(raw: dict[str, Any]) -> NormalizedBatch:
    """A batch as the ingest endpoint prepares it: with its body, to redo a write from."""
    return prepare_batch(json.dumps(raw).encode(), None, 64 * 1024 * 1024)


def stored_rows(store: Store) -> list[dict[str, Any]]:
    return store.reader().query("SELECT * FROM extension_stats ORDER BY time").dicts()


def test_the_store_keeps_one_row_per_batch_with_its_figures(store: Store) -> None:
    first = with_stats("text_batch_1", {**FINAL_STATS, "final": False})
    second = with_stats("text_batch_2", FINAL_STATS)

    store.write(received(first))
    store.write(received(second))
    assert store.write(received(second)).duplicate is True

    rows = stored_rows(store)
    assert [r["batch_id"] for r in rows] == [first["batch_id"], second["batch_id"]]
    final = rows[1]
    assert (
        final["time"]
        == final["sent_at"]
        == dt.datetime.fromtimestamp(second["sent_at_ms"] / 1000, dt.UTC)
    )
    assert final["events_dropped"] == {"shutdown_unspooled": 800}
    assert (final["final"], final["shutdown_reason"], final["shutdown_events_unsent"]) == (
        1,
        "spindown",
        800,
    )
    assert final["peak_rss_mb"] == 12.5
    assert rows[0]["final"] == 0 and rows[0]["shutdown_reason"] == ""


def test_without_sent_at_the_row_takes_the_time_it_arrived(store: Store) -> None:
    raw = with_stats("text_batch_1", FINAL_STATS)
    del raw["sent_at_ms"]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)

    store.write(received(raw))

    (row,) = stored_rows(store)
    assert row["sent_at"] is None
    assert row["time"] == row["received_at"] >= before


@pytest.mark.parametrize("dies_at", ["extension_stats", "logs", "invocation_parts"])
def test_a_retried_batch_is_stored_once_whatever_cut_its_write_short(
    store: Store, monkeypatch: pytest.MonkeyPatch, dies_at: str
) -> None:
    batch = received(with_stats("text_batch_1", FINAL_STATS))
    real = store._put

    def put(table: str, *args: Any, **kwargs: Any) -> None:
        if table == dies_at:
            raise OSError("killed")
        real(table, *args, **kwargs)

    monkeypatch.setattr(store, "_put", put)
    with pytest.raises(StoreError, match="no row is ever stored twice"):
        store.write(batch)
    monkeypatch.undo()

    # The retry finds the batch's ledger row and writes its group again under the same token.
    assert store.write(batch).duplicate is True
    assert store.write(batch).duplicate is True
    again = Store(store._client, url=store.url, database=store.database)
    assert again.write(batch).duplicate is True
    assert [r["batch_id"] for r in stored_rows(store)] == [batch.batch_id]


def test_a_batch_in_two_groups_is_stored_once(store: Store) -> None:
    first = received(with_stats("text_batch_1", FINAL_STATS))
    second = received(with_stats("timeout", {**FINAL_STATS, "final": False}))

    store.write_many([first])
    assert [r.duplicate for r in store.write_many([first, second])] == [True, False]

    assert sorted(r["batch_id"] for r in stored_rows(store)) == sorted(
        [first.batch_id, second.batch_id]
    )


def test_the_runtime_start_is_a_moment() -> None:
    row = stats_row({"runtime_started_at_ms": 1_764_000_000_123}, META)

    assert row is not None
    assert row.runtime_started_at == dt.datetime(2025, 11, 24, 16, 0, 0, 123000, tzinfo=dt.UTC)
