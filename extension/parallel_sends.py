"""The final flush's concurrent sends: a few threads, started at SHUTDOWN, that each send
queued batches over their own connection and stop by the deadlines they are given."""

from __future__ import annotations

import threading
import time
from collections import deque

from .poster import SendResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .pending import PendingBatch

    AttemptFn = Callable[[PendingBatch, float], tuple[str, str | None, float]]

# Concurrent sends (one connection each) at SHUTDOWN: batches cut before SHUTDOWN (kept for
# retry) and spooled ones cannot be merged without changing their batch_id.
SHUTDOWN_CONNECTIONS = 4
# A send is not started with less time than this left: it could not finish.
SHUTDOWN_MIN_SEND_S = 0.02


class ParallelSends:
    """The final flush's sends: up to SHUTDOWN_CONNECTIONS threads (started at SHUTDOWN, one
    connection each) take batches from a queue in order. Each batch is handed to one thread
    once, so nothing is sent twice within the flush. After a failure no send starts (the
    collector is down or overloaded: the rest is spooled), none starts after `start_by`, no
    send's timeout reaches past `send_deadline`, and no wait of the caller either: a send
    still without an answer then counts as not sent (spooled; the collector stores a batch
    id once should it arrive after all)."""

    def __init__(
        self,
        attempt: AttemptFn,
        send_timeout_s: float,
        send_deadline: float,
        start_by: float,
    ) -> None:
        self.attempt = attempt  # one POST and its bookkeeping, safe from several threads
        self.send_deadline = send_deadline  # monotonic
        self.start_by = start_by  # monotonic; moved to send_deadline for the final batch
        self.send_timeout_s = send_timeout_s
        self.cond = threading.Condition()
        self.queue: deque[PendingBatch] = deque()
        self.in_flight: list[PendingBatch] = []
        self.sent: list[PendingBatch] = []
        self.rejected: list[PendingBatch] = []
        self.failed: list[PendingBatch] = []
        self.error: str | None = None  # the first failure in this flush
        self.unanswered = 0  # sends still waiting for an answer at the deadline
        self.stopped = False  # a send failed: no more start
        self.closed = False  # answers from now on no longer count
        self.threads = 0
        self.idle = 0

    def _may_start(self, now: float) -> bool:
        return (
            not self.stopped
            and not self.closed
            and now < self.start_by
            and self.send_deadline - now >= SHUTDOWN_MIN_SEND_S
        )

    def may_start(self, final: bool = False) -> bool:
        """Whether a send could still start (`final`: the final batch's, after `start_by`)."""
        with self.cond:
            now = time.monotonic()
            if final:
                return (
                    not self.stopped
                    and not self.closed
                    and (self.send_deadline - now >= SHUTDOWN_MIN_SEND_S)
                )
            return self._may_start(now)

    def put(self, batch: PendingBatch, final: bool = False) -> None:
        start = False
        with self.cond:
            if final:
                self.start_by = self.send_deadline
            self.queue.append(batch)
            if self.threads < SHUTDOWN_CONNECTIONS and len(self.queue) > self.idle:
                self.threads += 1
                start = True
            self.cond.notify()
        if start:
            try:
                threading.Thread(
                    target=self._work, name="lambdascope-shutdown-send", daemon=True
                ).start()
            except RuntimeError:  # no thread to be had: the batch stays queued, then spooled
                with self.cond:
                    self.threads -= 1
                    self.cond.notify_all()

    def _take(self) -> PendingBatch | None:
        for _ in range(100000):
            now = time.monotonic()
            if not self._may_start(now):
                return None
            if self.queue:
                return self.queue.popleft()
            self.idle += 1
            try:
                self.cond.wait(self.start_by - now)
            finally:
                self.idle -= 1
        return None

    def _work(self) -> None:
        for _ in range(100000):
            with self.cond:
                batch = self._take()
                if batch is None:
                    self.threads -= 1
                    self.cond.notify_all()
                    return
                self.in_flight.append(batch)
                timeout_s = max(
                    0.001, min(self.send_timeout_s, self.send_deadline - time.monotonic())
                )
            try:
                outcome, error, _retry_after = self.attempt(batch, timeout_s)
            except Exception as exc:  # noqa: BLE001 - a bug must not hide the batch
                outcome, error = SendResult.RETRY, repr(exc)
            with self.cond:
                self.in_flight.remove(batch)
                if not self.closed:
                    if outcome == SendResult.SENT:
                        self.sent.append(batch)
                    elif outcome == SendResult.REJECTED:
                        self.rejected.append(batch)
                    else:
                        self.failed.append(batch)
                        self.stopped = True
                        if self.error is None:
                            self.error = error
                self.cond.notify_all()
        with self.cond:
            self.threads -= 1
            self.cond.notify_all()

    def wait(self) -> None:
        """Until every queued batch got its answer, or none can start and none is in flight,
        or `send_deadline`."""
        with self.cond:
            for _ in range(100000):
                now = time.monotonic()
                if now >= self.send_deadline:
                    return
                can_start = self._may_start(now) and self.threads > 0
                if not self.in_flight and (not self.queue or not can_start):
                    return
                until = self.send_deadline
                if self.queue and can_start:
                    until = min(until, self.start_by)
                self.cond.wait(max(0.001, until - now))

    def wait_for_room(self) -> bool:
        """Until fewer batches wait than there are connections; False when none can start."""
        with self.cond:
            for _ in range(100000):
                now = time.monotonic()
                if not self._may_start(now):
                    return False
                if len(self.queue) < SHUTDOWN_CONNECTIONS:
                    return True
                self.cond.wait(self.start_by - now)
            return False

    def take_unsent(self) -> list[PendingBatch]:
        """The batches without a 2xx or 4xx answer: queued, failed, and (when time is up) in
        flight, whose answers no longer count."""
        with self.cond:
            unsent = list(self.queue) + self.failed
            self.queue.clear()
            self.failed = []
            if self.in_flight:
                unsent += self.in_flight
                self.unanswered += len(self.in_flight)
                self.closed = True
                self.cond.notify_all()
            return unsent

    def sent_batches(self) -> list[PendingBatch]:
        with self.cond:
            return list(self.sent)

    def close(self) -> tuple[list[PendingBatch], list[PendingBatch]]:
        """Stop: idle threads end, late answers no longer count. (sent, rejected)"""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
            return list(self.sent), list(self.rejected)
