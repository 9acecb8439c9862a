"""Group commit: many requests, few inserts, every caller answered after its commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from lambdascope.collector.batch_rows import NormalizedBatch
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.store import Store, StoreError, WriteResult
from lambdascope.collector.writer import BatchWriter, QueueFull
from tests.collector.conftest import load_event


def batch(batch_id: str, name: str = "timeout") -> NormalizedBatch:
    raw = load_event(name)
    raw["batch_id"] = batch_id
    return normalize_batch(raw)


class _GatedStore:
    """Records each group; the first write waits until released, so others queue up."""

    def __init__(self, fail_first: bool = False) -> None:
        self.groups: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_first = fail_first

    def write_many(self, batches: Sequence[NormalizedBatch]) -> list[WriteResult]:
        first = not self.groups
        self.groups.append([b.batch_id for b in batches])
        if first:
            self.entered.set()
            self.release.wait(timeout=10)
            if self.fail_first:
                raise StoreError("store down")
        return [WriteResult(b.batch_id, duplicate=False) for b in batches]


@pytest.fixture
def gated() -> Iterator[tuple[BatchWriter, _GatedStore]]:
    store = _GatedStore()
    writer = BatchWriter(store, max_pending=3).start()
    try:
        yield writer, store
    finally:
        store.release.set()
        writer.stop()


def _submit_in_threads(writer: BatchWriter, ids: list[str]) -> tuple[list[threading.Thread], dict]:
    outcomes: dict[str, Any] = {}

    def submit(batch_id: str) -> None:
        try:
            outcomes[batch_id] = writer.submit(batch(batch_id))
        except Exception as exc:
            outcomes[batch_id] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    return threads, outcomes


def _wait_pending(writer: BatchWriter, count: int) -> None:
    deadline = time.monotonic() + 10
    while writer.pending < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.pending == count


def test_batches_queued_during_an_insert_share_the_next_one(
    gated: tuple[BatchWriter, _GatedStore],
) -> None:
    writer, store = gated
    first, first_outcome = _submit_in_threads(writer, ["a"])
    assert store.entered.wait(timeout=10)
    others, outcomes = _submit_in_threads(writer, ["b", "c", "d"])
    _wait_pending(writer, 3)
    with pytest.raises(QueueFull):
        writer.submit(batch("e"))
    store.release.set()
    for thread in first + others:
        thread.join(timeout=10)
    assert store.groups[0] == ["a"]
    assert sorted(store.groups[1]) == ["b", "c", "d"]
    assert {k: v.duplicate for k, v in {**first_outcome, **outcomes}.items()} == {
        "a": False,
        "b": False,
        "c": False,
        "d": False,
    }


def test_a_store_failure_reaches_every_waiter_of_the_group_and_the_writer_goes_on() -> None:
    store = _GatedStore(fail_first=True)
    writer = BatchWriter(store).start()
    try:
        threads, outcomes = _submit_in_threads(writer, ["a"])
        assert store.entered.wait(timeout=10)
        store.release.set()
        for thread in threads:
            thread.join(timeout=10)
        assert isinstance(outcomes["a"], StoreError)
        assert writer.submit(batch("b")).batch_id == "b"
    finally:
        writer.stop()


class _PickyStore(_GatedStore):
    """Refuses any group holding batch "bad", like a store refusing one batch's data."""

    def write_many(self, batches: Sequence[NormalizedBatch]) -> list[WriteResult]:
        results = super().write_many(batches)
        if any(b.batch_id == "bad" for b in batches):
            raise StoreError("Cannot parse input: bad")
        return results


def test_a_batch_the_store_refuses_fails_alone_not_its_whole_group() -> None:
    store = _PickyStore()
    writer = BatchWriter(store).start()
    try:
        first, _ = _submit_in_threads(writer, ["a"])
        assert store.entered.wait(timeout=10)
        others, outcomes = _submit_in_threads(writer, ["b", "bad", "c"])
        _wait_pending(writer, 3)
        store.release.set()
        for thread in first + others:
            thread.join(timeout=10)
    finally:
        writer.stop()
    assert isinstance(outcomes["bad"], StoreError)
    assert outcomes["b"].duplicate is False and outcomes["c"].duplicate is False
    assert sorted(store.groups[1]) == ["b", "bad", "c"]  # tried together first


def test_groups_are_bounded_by_rows(gated: tuple[BatchWriter, _GatedStore]) -> None:
    writer, store = gated
    one = batch("x")
    rows = len(one.invocation_rows) + len(one.log_rows) + len(one.cold_start_rows)
    writer.max_group_rows = rows * 2 - 1  # room for one batch per group, not two
    first, _ = _submit_in_threads(writer, ["a"])
    assert store.entered.wait(timeout=10)
    others, _ = _submit_in_threads(writer, ["b", "c"])
    _wait_pending(writer, 2)
    store.release.set()
    for thread in first + others:
        thread.join(timeout=10)
    assert sorted(store.groups[1:]) == [["b"], ["c"]]


def test_the_queue_is_bounded_by_rows_too(gated: tuple[BatchWriter, _GatedStore]) -> None:
    writer, store = gated
    one = batch("x")
    writer.max_pending = 100
    writer.max_pending_rows = one.row_count * 2  # two batches' rows, whatever their count
    first, _ = _submit_in_threads(writer, ["a"])
    assert store.entered.wait(timeout=10)
    others, outcomes = _submit_in_threads(writer, ["b", "c"])
    _wait_pending(writer, 2)
    with pytest.raises(QueueFull, match="rows are already waiting"):
        writer.submit(batch("d"))
    store.release.set()
    for thread in first + others:
        thread.join(timeout=10)
    assert sorted(store.groups[1]) == ["b", "c"]
    # The rows left the queue with their group: the next batch is taken.
    assert not writer.submit(batch("e")).duplicate


def test_a_batch_larger_than_the_rows_bound_is_taken_when_nothing_waits(
    gated: tuple[BatchWriter, _GatedStore],
) -> None:
    writer, store = gated
    writer.max_pending_rows = 1
    store.release.set()
    assert not writer.submit(batch("big")).duplicate


def test_stop_writes_what_is_queued_then_refuses(gated: tuple[BatchWriter, _GatedStore]) -> None:
    writer, store = gated
    first, _ = _submit_in_threads(writer, ["a"])
    assert store.entered.wait(timeout=10)
    others, outcomes = _submit_in_threads(writer, ["b"])
    _wait_pending(writer, 1)
    store.release.set()
    writer.stop()
    for thread in first + others:
        thread.join(timeout=10)
    assert outcomes["b"].duplicate is False
    with pytest.raises(StoreError, match="not running"):
        writer.submit(batch("c"))


def test_write_many_on_the_store_skips_stored_and_repeated_batches(store: Store) -> None:
    store.write(batch("old"))
    results = store.write_many([batch("old"), batch("new", "json_logs"), batch("new", "json_logs")])
    assert [(r.batch_id, r.duplicate) for r in results] == [
        ("old", True),
        ("new", False),
        ("new", True),
    ]
    reader = store.reader()
    assert store._client.command("SELECT count() FROM batches") == 2
    assert reader.query("SELECT count() FROM logs").scalar() == 4 + 6


class _RecordingStore:
    def __init__(self) -> None:
        self.groups: list[list[str]] = []

    def write_many(self, batches: Sequence[NormalizedBatch]) -> list[WriteResult]:
        self.groups.append([b.batch_id for b in batches])
        return [WriteResult(b.batch_id, duplicate=False) for b in batches]


def test_a_batch_still_being_prepared_joins_the_insert_of_the_one_queued_before_it() -> None:
    store = _RecordingStore()
    # A long linger: the writer waits for the announced batch, however slow this test is.
    writer = BatchWriter(store, linger_s=30.0).start()
    try:
        with writer.preparing():
            threads, outcomes = _submit_in_threads(writer, ["first"])
            _wait_pending(writer, 1)
            late, late_outcomes = _submit_in_threads(writer, ["second"])
            _wait_pending(writer, 2)
        for thread in threads + late:
            thread.join(timeout=10)
    finally:
        writer.stop()
    assert store.groups == [["first", "second"]]
    assert outcomes["first"].duplicate is False and late_outcomes["second"].duplicate is False


def test_waiting_for_batches_being_prepared_is_bounded() -> None:
    store = _RecordingStore()
    writer = BatchWriter(store, linger_s=0.2).start()
    try:
        with writer.preparing():  # never submitted while the first waits
            result = writer.submit(batch("alone"))
            assert result.duplicate is False  # answered although a batch is still announced
    finally:
        writer.stop()
    assert store.groups == [["alone"]]
