"""Batch assembly: buffer contents become a PendingBatch, gzipped once and numbered in creation
order, kept as is until the collector answers (a retry, or a copy back from the spool, is the
same request with the same batch_id); and the measures used to merge contents into the final
flush's large batches."""

from __future__ import annotations

import time

from .batch import build_batch_json, gzip_bytes, new_id
from .buffer import BatchContent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class PendingBatch:
    __slots__ = ("sequence", "batch_id", "body", "events", "invocations", "attempts")

    def __init__(
        self,
        sequence: int,
        batch_id: str,
        body: bytes,
        events: int,
        invocations: int,
        attempts: int = 0,
    ) -> None:
        self.sequence = sequence  # creation order, kept through the spool: oldest goes first
        self.batch_id = batch_id
        self.body = body  # gzip-compressed JSON, reused as is on every retry
        self.events = events  # telemetry events plus OTLP export requests
        self.invocations = invocations
        self.attempts = attempts  # sends tried so far (1 for a batch back from the spool)


class BatchAssembler:
    """Builds the batches of one extension process: its `extension` and `environment` objects
    and, in each batch, the `extension_stats` of the moment."""

    def __init__(
        self,
        environment: dict[str, Any],
        extension: dict[str, str],
        stats: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.environment = environment
        self.extension = extension
        self._stats = stats
        self._sequence = time.time_ns()  # later processes in this environment sort after

    def build(
        self, content: BatchContent, level: int = 5, final: dict[str, Any] | None = None
    ) -> PendingBatch:
        """A batch of `content`; `final` (the final flush's figures) marks the last batch of
        this environment, sent at SHUTDOWN."""
        batch_id = new_id()
        stats: dict[str, Any] = dict(self._stats()) if self._stats is not None else {}
        stats["final"] = final is not None
        if final is not None:
            stats.update(final)
        raw = build_batch_json(
            batch_id,
            int(time.time() * 1000),
            self.extension,
            self.environment,
            content.open_request_id,
            content.telemetry,
            content.invocations,
            stats,
            content.otlp,
            content.open_request_ids,
        )
        self._sequence += 1
        return PendingBatch(
            self._sequence,
            batch_id,
            gzip_bytes(raw, level),
            len(content.telemetry) + len(content.otlp),
            len(content.invocations),
        )


def content_events(content: BatchContent) -> int:
    return len(content.telemetry) + len(content.otlp)


def content_bytes(content: BatchContent) -> int:
    """As the buffer counts them: JSON text of the events, base64 plus 160 per OTLP item."""
    return content.telemetry_bytes + sum(
        len(item.get("body_b64") or "") + 160 for item in content.otlp
    )


def merged(first: BatchContent, then: BatchContent) -> BatchContent:
    """`first` followed by `then`, both taken from the buffer in this order."""
    return BatchContent(
        first.open_request_id,
        first.telemetry + then.telemetry,
        first.invocations + then.invocations,
        first.telemetry_bytes + then.telemetry_bytes,
        first.otlp + then.otlp,
        open_request_ids=first.open_request_ids,
    )
