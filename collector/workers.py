"""Decode and normalise extension batches in worker processes, so ingest uses every core.

Decoding (gunzip, JSON) and normalising are pure Python and hold the GIL: in one process
they and the writer take turns on one core however many the machine has. With workers, the
request thread hands the body to a worker process and waits for the normalised batch; the one
writer thread in the server's process still owns the store. Nothing else changes: a batch is
answered only after its rows are committed, and the write queue stays bounded.

A worker that dies (killed for memory, say) fails only the batches it held, with a 503 that
the sender retries; the pool is started again for the next ones.

It pays off only with cores to spare: the store's engine runs in the server's process and
takes a core of its own under load, and a batch costs ~2 us per event more to hand back
from a worker than to normalise in place. On two cores the workers measured no faster than
none, for more CPU per event (bench/ingest_throughput.py --ingest-workers).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import multiprocessing
import os
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from lambdascope.collector.batch_rows import NormalizedBatch
from lambdascope.collector.prepare import prepare_batch
from lambdascope.collector.wire import HttpError

__all__ = ["PrepareWorkers"]

log = logging.getLogger("lambdascope.collector")


def _prepare(body: bytes, content_encoding: str | None, max_decompressed_bytes: int) -> Any:
    """In a worker: the batch without its body (the caller has it), or the refusal."""
    try:
        batch = prepare_batch(body, content_encoding, max_decompressed_bytes)
    except HttpError as exc:
        # Sent back as plain values: an exception with keyword-only arguments does not
        # survive pickling.
        return ("refused", exc.status, exc.message, exc.extra)
    return dataclasses.replace(batch, raw_body=b"")


class PrepareWorkers:
    """A pool of ``count`` worker processes running ``prepare_batch``."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("the pool needs at least one worker")
        self.count = count
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # forkserver: the server's process runs the embedded engine's threads, which a
                # plain fork would copy mid-flight.
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["lambdascope.collector.prepare"])
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.count, mp_context=context
                )
            return self._pool

    def start(self) -> PrepareWorkers:
        """Start the workers now (not on the first batch), each with its modules imported."""
        pool = self._executor()
        for future in [pool.submit(os.getpid) for _ in range(self.count)]:
            future.result(timeout=60)
        return self

    def prepare(
        self, body: bytes, content_encoding: str | None, max_decompressed_bytes: int
    ) -> NormalizedBatch:
        """``prepare_batch`` in a worker. Raises :class:`HttpError` like it, and 503 when the
        worker died before answering."""
        pool = self._executor()
        try:
            outcome = pool.submit(_prepare, body, content_encoding, max_decompressed_bytes).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            log.warning("an ingest worker process died; starting the workers again")
            raise HttpError(
                503, "the worker decoding this batch stopped; retry", headers={"Retry-After": "2"}
            ) from None
        if isinstance(outcome, tuple):
            _, status, message, extra = outcome
            raise HttpError(status, message, **extra)
        return dataclasses.replace(outcome, raw_body=body, raw_encoding=content_encoding or "")

    def pids(self) -> list[int]:
        """The worker processes' ids (none before the first batch or after a crash)."""
        with self._lock:
            pool = self._pool
        return sorted(getattr(pool, "_processes", None) or {}) if pool else []

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
