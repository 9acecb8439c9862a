"""Group commit: batches from many requests share one insert per table.

ClickHouse wants few, large inserts (each insert makes a part per table and runs the views on
it: ~95 ms of CPU in chDB for one batch, ~130 ms for sixteen). Request threads
:meth:`BatchWriter.submit` their batch and wait; one writer thread takes everything queued since
its last insert (up to ``max_group_rows`` rows) and writes it with :meth:`Store.write_many`.
Under light load a batch is written at once; under heavy load the groups grow by themselves,
and the writer waits (at most ``linger_s``) for the batches it can expect: those that request
threads announced with :meth:`BatchWriter.preparing` and are still normalising, and the next
ones of the callers its last insert answered. One insert for all of them is far cheaper than
one each. The queue is bounded by batches and by rows: when it is full, :class:`QueueFull`
tells the caller to come back later (503 + Retry-After) instead of buffering without limit.
The rows bound is what keeps memory in check; the batch bound is generous, because a fleet of
small batches (a few invocations each, the usual flush of a quiet function) needs many of
them in one commit to pay for its fixed cost. A caller is answered only
after its group was committed.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lambdascope.collector.batch_rows import NormalizedBatch
from lambdascope.collector.store import StoreError, WriteResult

__all__ = ["BatchWriter", "QueueFull"]

log = logging.getLogger("lambdascope.collector")


class QueueFull(Exception):
    """The write queue holds ``max_pending`` batches or ``max_pending_rows`` rows already;
    retry later."""


class _Writes(Protocol):
    def write_many(self, batches: Sequence[NormalizedBatch]) -> list[WriteResult]: ...


@dataclass
class _Pending:
    batch: NormalizedBatch
    done: threading.Event = field(default_factory=threading.Event)
    result: WriteResult | None = None
    error: Exception | None = None

    @property
    def rows(self) -> int:
        return self.batch.row_count


@dataclass
class WriterStats:
    groups: int = 0
    batches: int = 0
    rows: int = 0
    insert_seconds: float = 0.0
    last_group_batches: int = 0


class BatchWriter:
    def __init__(
        self,
        store: _Writes,
        *,
        max_pending: int = 64,
        max_pending_rows: int = 250_000,
        max_group_rows: int = 200_000,
        max_wait_s: float = 60.0,
        linger_s: float = 0.01,
    ) -> None:
        self._store = store
        self.max_pending = max_pending
        self.max_pending_rows = max_pending_rows
        self.max_group_rows = max_group_rows
        #: Rows of the batches in the queue.
        self._queued_rows = 0
        self.max_wait_s = max_wait_s
        self.linger_s = linger_s
        self._preparing = 0
        self._queue: collections.deque[_Pending] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = WriterStats()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def pending_rows(self) -> int:
        with self._cond:
            return self._queued_rows

    def start(self) -> BatchWriter:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lambdascope-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (bounded by ``timeout_s``), then stop the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        # Whatever is still queued (the join timed out) is refused, never silently dropped.
        with self._cond:
            leftover = list(self._queue)
            self._queue.clear()
            self._queued_rows = 0
        for pending in leftover:
            pending.error = StoreError("the collector stopped before writing this batch; retry")
            pending.done.set()

    def submit(self, batch: NormalizedBatch) -> WriteResult:
        """Queue ``batch`` and wait until it is committed (or refused).

        Raises :class:`QueueFull` when the queue is full, :class:`StoreError` when the store
        failed or the write did not finish within ``max_wait_s``.
        """
        pending = _Pending(batch)
        with self._cond:
            if self._stopping or self._thread is None:
                raise StoreError("the collector's writer is not running; retry later")
            if len(self._queue) >= self.max_pending:
                raise QueueFull(f"{len(self._queue)} batches are already waiting for the store")
            # A batch larger than the whole bound is still taken when the queue is empty.
            if self._queue and self._queued_rows + pending.rows > self.max_pending_rows:
                raise QueueFull(f"{self._queued_rows:,} rows are already waiting for the store")
            self._queue.append(pending)
            self._queued_rows += pending.rows
            self._cond.notify_all()
        if not pending.done.wait(timeout=self.max_wait_s):
            # It may still commit; a retry is then answered as a duplicate.
            raise StoreError(f"the store did not commit the batch within {self.max_wait_s:.0f} s")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    @contextlib.contextmanager
    def preparing(self) -> Iterator[None]:
        """Announce a batch being decoded and normalised, to be submitted soon: the writer
        waits for it (up to ``linger_s``) rather than start an insert without it."""
        with self._cond:
            self._preparing += 1
        try:
            yield
        finally:
            with self._cond:
                self._preparing -= 1
                self._cond.notify_all()

    def _take_group(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait(timeout=0.5)
            # Each insert has a fixed cost (a part per table, the views on it) that dwarfs its
            # per-row cost, so while more batches are on their way, wait for them (bounded): one
            # insert for all of them costs the engine far less than one each.
            # Under load the callers answered by the last insert send their next batches at
            # once: expect them too, besides those that queued during that insert. Otherwise
            # the groups settle into two halves in turn, each costing nearly as much as both.
            expected = min(self.stats.last_group_batches + len(self._queue), self.max_pending)
            deadline = time.monotonic() + self.linger_s
            while (
                (self._preparing or len(self._queue) < expected)
                and not self._stopping
                and sum(p.rows for p in self._queue) < self.max_group_rows
                and len(self._queue) < self.max_pending
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(timeout=left)  # submit() and preparing() notify
            group = [self._queue.popleft()]
            rows = group[0].rows
            while self._queue and rows + self._queue[0].rows <= self.max_group_rows:
                item = self._queue.popleft()
                rows += item.rows
                group.append(item)
            self._queued_rows -= rows
            return group

    def _run(self) -> None:
        while True:
            group = self._take_group()
            if group is None:
                return
            self._write(group)

    def _write(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            results = self._store.write_many([p.batch for p in group])
        except Exception as exc:
            if len(group) > 1 and not _store_unreachable(exc):
                # One batch the store refuses must not fail the others it was grouped with.
                for pending in group:
                    self._write([pending])
                return
            error = exc if isinstance(exc, StoreError) else StoreError(str(exc))
            if not isinstance(exc, StoreError):
                log.exception("unexpected failure writing %d batches", len(group))
            for pending in group:
                pending.error = error
                pending.done.set()
            return
        elapsed = time.perf_counter() - started
        with self._cond:
            self.stats.groups += 1
            self.stats.batches += len(group)
            self.stats.rows += sum(p.rows for p in group)
            self.stats.insert_seconds += elapsed
            self.stats.last_group_batches = len(group)
        for pending, result in zip(group, results, strict=True):
            pending.result = result
            pending.done.set()


def _store_unreachable(exc: BaseException) -> bool:
    """True when the failure is the connection, not the data: retrying alone would not help."""
    cause: BaseException | None = exc
    while cause is not None:
        if type(cause).__name__ == "OperationalError":
            return True
        cause = cause.__cause__
    return False
