"""The background sender: ships buffered telemetry to the collector without ever delaying
the function.

Flush policy (default):
* right after an INVOKE wake-up, on this thread, while the function runs, when the last flush
  is at least `flush_interval_ms` old (or a batch is full): a function invoked rarely sends at
  every wake-up, a busy one once per interval, not beside every invocation. It first waits up
  to `invoke_report_wait_ms` for the previous invocation's `platform.report` (which Lambda
  produces only after that invocation ended) so it rides along; `next` is never delayed;
* when buffered data is `flush_interval_ms` old while the environment runs (long invocations,
  or the emulator, which never freezes an environment);
* at SHUTDOWN: the final flush (final_flush.py) sends what is left within the deadline.
A batch the collector did not take is kept, with its batch_id, and retried with backoff at later
wake-ups (the collector stores a batch id once). Unsent batches are bounded in bytes; beyond
that they go to the on-disk spool if there is one, else the oldest are dropped and counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from . import log
from .batch import BATCHES_PATH
from .final_flush import FinalFlush
from .pending import BatchAssembler, PendingBatch
from .poster import (
    MAX_BACKOFF_S,
    CertificateVerifyError,
    CollectorPoster,
    SendResult,
    classify_status,
    retry_after_s,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .buffer import TelemetryBuffer
    from .config import Config
    from .spool import Spool

    PostFn = Callable[[str, bytes, dict[str, str], float], tuple[int, dict[str, str], bytes]]


class Shipper:
    def __init__(
        self,
        config: Config,
        buffer: TelemetryBuffer,
        environment: dict[str, Any],
        extension: dict[str, str],
        post: PostFn | None = None,
        stats: Callable[[], dict[str, Any]] | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.config = config
        self.buffer = buffer
        self.environment = environment
        self.extension = extension
        self.assembler = BatchAssembler(environment, extension, stats)
        self.url = (config.collector_url or "") + BATCHES_PATH
        self._post: PostFn = post or CollectorPoster(config.ca_bundle)
        self.spool = spool
        self._pending: deque[PendingBatch] = deque()
        self._pending_bytes = 0
        self._cond = threading.Condition()
        self._invoke_woken = False
        self._previous_request_id: str | None = None
        self._current_request_id: str | None = None
        self._shutdown_deadline_ms: int | None = None
        self.shutdown_reason = ""  # the SHUTDOWN event's, for the final batch and its log line
        self._next_attempt = 0.0  # monotonic; backoff after a failed send
        # When the last flush began: INVOKE wake-ups send at most once per flush interval.
        self._last_flush_monotonic = -1e9
        self._last_flush_wall = 0.0
        self._backoff_s = 0.0
        self._failing_since_error: str | None = None
        self._thread: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._book = threading.Lock()  # the counters below: the final flush sends in parallel
        self.bytes_sent = 0
        self.batches_sent = 0
        self.events_sent = 0  # telemetry events plus OTLP export requests the collector took
        self.batches_rejected = 0
        self.send_failures = 0  # sends answered by no 2xx/4xx: network error, 408/429/5xx
        self.send_retries = 0  # sends of a batch tried before (or back from the spool)
        self.spooled_batches = 0  # written to the spool by this process
        self.spooled_events = 0
        self.spooled_bytes = 0
        self.dropped_events = 0  # events in unsent batches that were dropped: the sum of
        self.dropped_by_reason = {
            "rejected": 0,  # the collector answered 4xx
            "unsent_overflow": 0,  # beyond LAMBDASCOPE_PENDING_MAX_BYTES, no spool took them
            "shutdown_unspooled": 0,  # not sent at SHUTDOWN and the spool could not take them
            "shutdown_unbatched": 0,  # still buffered when the final flush ran out of time
        }
        self.dropped_batches = 0
        # The final flush's outcome (what its summary line says); None before SHUTDOWN.
        self.shutdown_figures: dict[str, Any] | None = None

    # -- control (called by the main loop; all return at once) ----------------------------

    def start(self) -> Shipper:
        self._thread = threading.Thread(target=self._run, name="lambdascope-sender", daemon=True)
        self._thread.start()
        return self

    def notify_invoke(self, request_id: str, wake: bool = True) -> None:
        """Note the new invocation; `wake` starts the background flush (default policy)."""
        with self._cond:
            self._previous_request_id = self._current_request_id
            self._current_request_id = request_id
            # Waking the thread only to find nothing due would still cost a context switch
            # beside the handler that just started.
            if wake and self._flush_due(self.config.flush_interval_ms / 1000.0):
                self._invoke_woken = True
                self._cond.notify_all()

    def shutdown(self, deadline_ms: int, now_ms: int | None = None, reason: str = "") -> bool:
        """Ask for the final flush and wait for it until `deadline_ms` (epoch ms); `reason` is
        the SHUTDOWN event's `shutdownReason`. True when the final flush finished in time."""
        with self._cond:
            self.shutdown_reason = reason
            self._shutdown_deadline_ms = deadline_ms
            self._cond.notify_all()
        if self._thread is None:
            return True
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        self._thread.join(timeout=max(0.0, (deadline_ms - now) / 1000.0))
        return not self._thread.is_alive()

    def wait_stopped(self, deadline_ms: int) -> bool:
        """Wait for the sender thread to end, until `deadline_ms` (epoch ms); True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout=max(0.0, deadline_ms / 1000.0 - time.time()))
        return not self._thread.is_alive()

    @property
    def pending_batches(self) -> int:
        return len(self._pending)

    # -- the sender thread ----------------------------------------------------------------

    def _run(self) -> None:
        if self.config.background_nice:
            from .priority import lower_thread_priority

            lower_thread_priority(self.config.background_nice)
        interval_s = self.config.flush_interval_ms / 1000.0
        for _ in range(10**12):  # bounded only by the sandbox's life; ends at SHUTDOWN
            with self._cond:
                self._cond.wait_for(
                    lambda: self._invoke_woken or self._shutdown_deadline_ms is not None,
                    timeout=interval_s,
                )
                shutdown_deadline = self._shutdown_deadline_ms
                woken = self._invoke_woken
                self._invoke_woken = False
                previous = self._previous_request_id
                last = self._current_request_id
            try:
                if shutdown_deadline is not None:
                    self._final_flush(shutdown_deadline, last)
                    return
                if woken:
                    self.buffer.wait_for_report(
                        previous, self.config.invoke_report_wait_ms / 1000.0
                    )
                    self.flush()
                elif self.buffer.oldest_age_s() >= interval_s or self._pending:
                    self.flush()
            except Exception as exc:  # noqa: BLE001 - the sender must outlive its own bugs
                log.error("sender error (data kept for the next attempt): %r" % (exc,))
                if shutdown_deadline is not None:
                    return

    def _flush_due(self, interval_s: float) -> bool:
        """Whether an INVOKE wake-up should send now. A busy function is woken hundreds of
        times a second; one send per wake-up would put a gzip and a POST beside nearly every
        invocation, so wake-ups send at most once per `flush_interval_ms` unless a batch is
        full. Both clocks are checked: a frozen sandbox may not advance the monotonic one, and
        after a long freeze the data waiting is old whatever it says."""
        if self._pending and time.monotonic() >= self._next_attempt:
            return True  # a batch the collector did not take is due for its retry
        if (
            time.monotonic() - self._last_flush_monotonic >= interval_s
            or abs(time.time() - self._last_flush_wall) >= interval_s
        ):
            return True
        return (
            len(self.buffer) >= self.config.batch_max_events
            or self.buffer.buffered_bytes >= self.config.batch_max_bytes
        )

    def flush(self, deadline_monotonic: float | None = None, force: bool = False) -> bool:
        """Batch everything buffered and send every unsent batch, oldest first.
        Returns True when nothing is left unsent. `force` ignores the retry backoff."""
        lock_timeout = -1.0
        if deadline_monotonic is not None:
            lock_timeout = max(0.0, deadline_monotonic - time.monotonic())
        if not self._send_lock.acquire(timeout=lock_timeout):
            return False  # a background send holds the connection; it keeps the data
        try:
            return self._flush_locked(deadline_monotonic, force)
        finally:
            self._send_lock.release()

    def _flush_locked(self, deadline_monotonic: float | None, force: bool) -> bool:
        self._last_flush_monotonic = time.monotonic()
        self._last_flush_wall = time.time()
        self._cut_batches()
        if not force and time.monotonic() < self._next_attempt:
            return not self._pending
        for _ in range(100000):
            if self._shutdown_deadline_ms is not None and deadline_monotonic is None:
                return False  # SHUTDOWN came: the final flush takes over between two sends
            # Spooled batches are older than the ones in memory: they go first.
            self._load_spooled()
            if not self._pending:
                return True
            if deadline_monotonic is not None:
                remaining = deadline_monotonic - time.monotonic()
                if remaining <= 0.01:
                    return False
                timeout = min(self.config.send_timeout_ms / 1000.0, remaining)
            else:
                timeout = self.config.send_timeout_ms / 1000.0
            batch = self._pending[0]
            outcome = self._send(batch, timeout)
            if outcome == SendResult.RETRY:
                return False
            self._pending.popleft()
            self._pending_bytes -= len(batch.body)
        return not self._pending

    # -- batches ----------------------------------------------------------------------------

    def _cut_batches(self) -> None:
        if not self.config.collector_url:
            return
        for _ in range(100000):
            batch = self._cut_one(self.config.batch_max_events, self.config.batch_max_bytes)
            if batch is None:
                return
            self._pending.append(batch)
            self._pending_bytes += len(batch.body)
            self._bound_pending()

    def _cut_one(self, max_events: int, max_bytes: int, level: int = 5) -> PendingBatch | None:
        content = self.buffer.take_batch(max_events, max_bytes)
        if content is None:
            return None
        return self.assembler.build(content, level)

    def _bound_pending(self) -> None:
        while len(self._pending) > 1 and self._pending_bytes > self.config.pending_max_bytes:
            oldest = self._pending.popleft()
            self._pending_bytes -= len(oldest.body)
            if self.spool_put(oldest):
                continue
            self.count_dropped(oldest.events, "unsent_overflow")
            log.warning(
                "dropped unsent batch %s (%d events): more than %d bytes waiting for %s"
                % (oldest.batch_id, oldest.events, self.config.pending_max_bytes, self.url)
            )

    def spool_put(self, batch: PendingBatch) -> bool:
        """Write `batch` to the spool and count it; False when there is none or it refused."""
        if self.spool is None or not self.spool.put(
            batch.batch_id, batch.body, batch.events, batch.sequence
        ):
            return False
        with self._book:
            self.spooled_batches += 1
            self.spooled_events += batch.events
            self.spooled_bytes += len(batch.body)
        return True

    def count_dropped(self, events: int, reason: str, batches: int = 1) -> None:
        """Count lost events under `reason`, a key of `dropped_by_reason`."""
        with self._book:
            self.dropped_batches += batches
            self.dropped_events += events
            self.dropped_by_reason[reason] = self.dropped_by_reason.get(reason, 0) + events

    def _load_spooled(self) -> None:
        if self.spool is None or not self.spool.maybe_nonempty:
            return
        item = self.spool.take_oldest()
        if item is not None:
            batch_id, body, events, sequence = item
            position = 0
            for position, pending in enumerate(self._pending):  # noqa: B007 - used below
                if pending.sequence > sequence:
                    break
            else:
                position = len(self._pending)
            batch = PendingBatch(sequence, batch_id, body, events, 0, attempts=1)
            self._pending.insert(position, batch)
            self._pending_bytes += len(body)

    # -- sending ----------------------------------------------------------------------------

    def _send(self, batch: PendingBatch, timeout_s: float) -> str:
        outcome, error, retry_after = self.attempt(batch, timeout_s)
        if outcome == SendResult.RETRY:
            self._failed(error or "", retry_after)
        return outcome

    def attempt(self, batch: PendingBatch, timeout_s: float) -> tuple[str, str | None, float]:
        """One POST of `batch` and its bookkeeping (safe from several threads at once):
        (outcome, the failure's text for RETRY, Retry-After seconds). Logs a rejection; a
        failure is the caller's to report."""
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "X-Lambdascope-Batch-Id": batch.batch_id,
        }
        if self.config.token:
            headers["Authorization"] = "Bearer " + self.config.token
        with self._book:
            if batch.attempts:
                self.send_retries += 1
            batch.attempts += 1
        try:
            status, response_headers, body = self._post(self.url, batch.body, headers, timeout_s)
        except CertificateVerifyError as exc:
            return self._failure(str(exc), 0.0)  # its text says all; a class name: noise
        except Exception as exc:  # noqa: BLE001 - any network failure is retried later
            return self._failure("%s: %s" % (type(exc).__name__, exc), 0.0)
        outcome = classify_status(status)
        if outcome == SendResult.RETRY:
            return self._failure(
                "HTTP %d %s" % (status, _snippet(body)), retry_after_s(response_headers)
            )
        if outcome == SendResult.SENT:
            with self._book:
                self.bytes_sent += len(batch.body)
                self.batches_sent += 1
                self.events_sent += batch.events
                recovered = self._failing_since_error is not None
                self._failing_since_error = None
                self._backoff_s = 0.0
                self._next_attempt = 0.0
            if recovered:
                log.info("collector %s takes batches again" % self.url)
        else:
            with self._book:
                self.batches_rejected += 1
            self.count_dropped(batch.events, "rejected")
            log.error(
                "collector %s rejected batch %s with HTTP %d %s; dropped it (%d events). "
                "Check LAMBDASCOPE_TOKEN and the collector's version."
                % (self.url, batch.batch_id, status, _snippet(body), batch.events)
            )
        return outcome, None, 0.0

    def _failure(self, error: str, retry_after: float) -> tuple[str, str | None, float]:
        with self._book:
            self.send_failures += 1
        return SendResult.RETRY, error, retry_after

    def _failed(self, error: str, retry_after: float) -> None:
        # One line per failure streak (and when the error changes), never one per event.
        if self._failing_since_error != error:
            log.warning(
                "cannot send to collector %s: %s; keeping %d unsent batch(es) for retry"
                % (self.url, error, len(self._pending))
            )
        self._failing_since_error = error
        self._backoff_s = min(MAX_BACKOFF_S, max(1.0, self._backoff_s * 2))
        self._next_attempt = time.monotonic() + max(self._backoff_s, retry_after)

    # -- SHUTDOWN -----------------------------------------------------------------------------

    def _final_flush(self, deadline_ms: int, last_request_id: str | None) -> None:
        """The final flush (final_flush.py) before `deadline_ms`, once it has the connection."""
        flush = FinalFlush(self, deadline_ms)
        # Not held by anyone else at SHUTDOWN (the `end` policy's flush runs on the main
        # thread, which is here); bounded all the same.
        if not self._send_lock.acquire(timeout=flush.budget_s):
            log.warning("shutdown: a send still running kept the final flush from starting")
            return
        try:
            flush.run(last_request_id)
        finally:
            self._send_lock.release()

    def hand_over_pending(self, put: Callable[[PendingBatch], None]) -> None:
        """Give every unsent batch, oldest first, to `put` (the final flush's sends)."""
        for batch in self._pending:
            put(batch)
        self._pending.clear()
        self._pending_bytes = 0


def _snippet(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").replace("\n", " ")
