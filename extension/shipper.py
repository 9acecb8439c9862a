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
* at SHUTDOWN (`_final_flush`): what is left goes out in parallel (up to
  `SHUTDOWN_CONNECTIONS` connections) and merged (the buffer is cut into batches of up to
  `SHUTDOWN_BATCH_MAX_BYTES`, not the configured small size) within the deadline, then one
  last batch marked `final` carries the flush's figures; what got no answer is spooled, and
  one line says what was sent, spooled and dropped.
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
from .buffer import BatchContent
from .parallel_sends import ParallelSends
from .pending import BatchAssembler, PendingBatch, content_bytes, content_events, merged
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

# The final flush at SHUTDOWN. Lambda gives external extensions 2,000 ms for the whole shutdown
# phase (deadlineMs); the runtime takes up to 300 ms of it first, and the agent exits 150 ms
# before the deadline.
# What is buffered is cut into batches this large (uncompressed JSON; never smaller than the
# configured batch size): a full default buffer (4 MiB) is two requests, not one per
# LAMBDASCOPE_BATCH_MAX_EVENTS, and even incompressible OTLP payloads stay near 2 MiB
# compressed, far below the collector's 16 MiB body limit. Larger batches would gain nothing:
# the gzip costs the same per byte, and a smaller unit overlaps it with the sends and can
# stop at the deadline.
SHUTDOWN_BATCH_MAX_BYTES = 2 * 1024 * 1024
SHUTDOWN_BATCH_MAX_EVENTS = 20000
# gzip level for batches cut at SHUTDOWN: on a 128 MB function (a fraction of a vCPU) the
# compression, not the network, is what the budget runs out on; level 1 takes about half the
# CPU of level 5 for a slightly larger body.
SHUTDOWN_GZIP_LEVEL = 1
# Sends end this long (or 10% of the flush's budget, if more) before the flush's deadline (no
# send timeout reaches past it): the time to spool what got no answer and write the summary
# line, on a CPU that may be a small share of a vCPU.
SHUTDOWN_SPOOL_MARGIN_S = 0.1
# No send of data starts later than this before the sends' end: room for the final batch.
SHUTDOWN_FINAL_RESERVE_S = 0.1


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
        self._shutdown_reason = ""
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
        self._unspooled_late = 0  # events of those the final flush had no time to spool

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
            self._shutdown_reason = reason
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
            if self._spool_put(oldest):
                continue
            self._drop(oldest.events, "unsent_overflow")
            log.warning(
                "dropped unsent batch %s (%d events): more than %d bytes waiting for %s"
                % (oldest.batch_id, oldest.events, self.config.pending_max_bytes, self.url)
            )

    def _spool_put(self, batch: PendingBatch) -> bool:
        if self.spool is None or not self.spool.put(
            batch.batch_id, batch.body, batch.events, batch.sequence
        ):
            return False
        with self._book:
            self.spooled_batches += 1
            self.spooled_events += batch.events
            self.spooled_bytes += len(batch.body)
        return True

    def _drop(self, events: int, reason: str, batches: int = 1) -> None:
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
        outcome, error, retry_after = self._attempt(batch, timeout_s)
        if outcome == SendResult.RETRY:
            self._failed(error or "", retry_after)
        return outcome

    def _attempt(self, batch: PendingBatch, timeout_s: float) -> tuple[str, str | None, float]:
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
            self._drop(batch.events, "rejected")
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
        """Send what is left before `deadline_ms`: batches cut earlier and the buffer cut into
        large batches, over up to SHUTDOWN_CONNECTIONS connections at once; then the batch
        marked `final` with the flush's figures; spool what got no answer; one summary line.
        Returns before the deadline whatever the collector does."""
        started = time.monotonic()
        budget_s = max(0.0, deadline_ms / 1000.0 - time.time())
        send_deadline = started + budget_s - max(SHUTDOWN_SPOOL_MARGIN_S, budget_s * 0.1)
        sends = ParallelSends(
            self._attempt,
            self.config.send_timeout_ms / 1000.0,
            send_deadline,
            send_deadline - SHUTDOWN_FINAL_RESERVE_S,
        )
        # Not held by anyone else at SHUTDOWN (the `end` policy's flush runs on the main
        # thread, which is here); bounded all the same.
        if not self._send_lock.acquire(timeout=budget_s):
            log.warning("shutdown: a send still running kept the final flush from starting")
            return
        try:
            # Batches cut before SHUTDOWN leave at once, while the last report is on its way.
            for batch in self._pending:
                sends.put(batch)
            self._pending.clear()
            self._pending_bytes = 0
            wait_s = min(self.config.shutdown_report_wait_ms / 1000.0, budget_s * 0.3)
            if last_request_id is not None:
                self.buffer.wait_for_report(last_request_id, wait_s)
            else:
                time.sleep(min(wait_s, 0.05))  # let an in-flight delivery land
            self._shutdown_sends(sends, started, budget_s)
        except BaseException:
            # A bug must not lose what was handed to the sends: keep it for the next process.
            self._spool_or_drop(sends.take_unsent(), started + budget_s)
            raise
        finally:
            sends.close()
            self._send_lock.release()

    def _shutdown_sends(self, sends: ParallelSends, started: float, budget_s: float) -> None:
        deadline = started + budget_s
        spool_dropped_before = self.spool.dropped_events if self.spool is not None else 0
        limits = (
            max(self.config.batch_max_events, SHUTDOWN_BATCH_MAX_EVENTS),
            max(self.config.batch_max_bytes, SHUTDOWN_BATCH_MAX_BYTES),
        )
        # 1. What is buffered, merged into large batches, each sent as soon as it is cut; the
        # last one is held back: it becomes the final batch.
        held = self._cut_rest(sends, None, limits, sends.start_by)
        # 2. Batches an earlier process spooled, while there is time (else they stay there).
        self._feed_spooled(sends)
        sends.wait()
        if self.buffer.has_data():  # arrived meanwhile (the last report, say)
            held = self._cut_rest(sends, held, limits, sends.send_deadline)
            sends.wait()
        unsent = sends.take_unsent()
        spooled, unspooled = self._spool_or_drop(unsent, deadline)
        # 3. The final batch, with the figures of the batches before it: sent unless a send
        # failed or time is up, then spooled (an empty one only when it can be sent).
        can_send = sends.may_start(final=True)
        final: PendingBatch | None = None
        unbatched = 0
        if held is not None and time.monotonic() >= deadline:
            unbatched = content_events(held)  # no time left even to spool it
        elif held is not None or can_send:
            sent_so_far = sends.sent_batches()
            final = self.assembler.build(
                held or BatchContent(None, [], [], 0),
                SHUTDOWN_GZIP_LEVEL,
                {
                    "shutdown_reason": self._shutdown_reason or None,
                    "shutdown_budget_ms": int(budget_s * 1000),
                    "shutdown_elapsed_ms": int((time.monotonic() - started) * 1000),
                    "shutdown_batches_sent": len(sent_so_far),
                    "shutdown_events_sent": sum(b.events for b in sent_so_far),
                    "shutdown_batches_unsent": len(unsent),
                    "shutdown_events_unsent": sum(b.events for b in unsent),
                },
            )
            rest = [final]
            if can_send:
                sends.put(final, final=True)
                sends.wait()
                rest = sends.take_unsent()
            unsent += rest
            more_spooled, more_unspooled = self._spool_or_drop(rest, deadline)
            spooled += more_spooled
            unspooled += more_unspooled
        sent, rejected = sends.close()
        unbatched += len(self.buffer)
        if unbatched:
            self._drop(unbatched, "shutdown_unbatched", batches=0)
        figures: dict[str, Any] = {
            "elapsed_ms": int((time.monotonic() - started) * 1000),
            "batches_sent": len(sent),
            "events_sent": sum(b.events for b in sent),
            "final_sent": final is not None and any(b is final for b in sent),
            "batches_unsent": len(unsent),
            "events_unsent": sum(b.events for b in unsent),
            "error": sends.error,
            "batches_unanswered": sends.unanswered,
            "batches_spooled": len(spooled),
            "events_spooled": sum(b.events for b in spooled),
            "bytes_spooled": sum(len(b.body) for b in spooled),
            "events_unspooled": sum(b.events for b in unspooled),
            "events_spool_full": (
                self.spool.dropped_events - spool_dropped_before if self.spool is not None else 0
            ),
            "events_rejected": sum(b.events for b in rejected),
            "events_unbatched": unbatched,
        }
        self.shutdown_figures = figures
        self._log_shutdown(figures)

    def _cut_rest(
        self,
        sends: ParallelSends,
        held: BatchContent | None,
        limits: tuple[int, int],
        until: float,
    ) -> BatchContent | None:
        """Cut the buffer into batches of up to `limits` (events, bytes) until `until`
        (monotonic): each full one goes to `sends`, the last one is returned unbuilt (`held`
        is topped up first)."""
        max_events, max_bytes = limits
        for _ in range(100000):
            if time.monotonic() >= until:
                break
            if held is not None:
                if not self.buffer.has_data():
                    break
                events, size = content_events(held), content_bytes(held)
                if events < max_events and size < max_bytes:
                    more = self.buffer.take_batch(max_events - events, max_bytes - size)
                    if more is None:
                        break
                    held = merged(held, more)
                    continue
                sends.put(self.assembler.build(held, SHUTDOWN_GZIP_LEVEL))
            held = self.buffer.take_batch(max_events, max_bytes)
            if held is None:
                break
        return held

    def _feed_spooled(self, sends: ParallelSends) -> None:
        if self.spool is None:
            return
        for _ in range(100000):
            # A few at a time: a file taken from the spool and not sent is written back.
            if not self.spool.maybe_nonempty or not sends.wait_for_room():
                return
            item = self.spool.take_oldest()
            if item is None:
                return
            batch_id, body, events, sequence = item
            sends.put(PendingBatch(sequence, batch_id, body, events, 0, attempts=1))

    def _spool_or_drop(
        self, batches: list[PendingBatch], deadline: float
    ) -> tuple[list[PendingBatch], list[PendingBatch]]:
        """Spool `batches` (oldest first) for the next extension process in this environment;
        those the spool cannot take, or that the deadline leaves no time for, are dropped."""
        spooled: list[PendingBatch] = []
        dropped: list[PendingBatch] = []
        for batch in sorted(batches, key=lambda b: b.sequence):
            if time.monotonic() >= deadline:
                self._unspooled_late += batch.events
            elif self._spool_put(batch):
                spooled.append(batch)
                continue
            self._drop(batch.events, "shutdown_unspooled")
            dropped.append(batch)
        return spooled, dropped

    def _log_shutdown(self, f: dict[str, Any]) -> None:
        """One line: what the final flush sent, what it could not and where that went."""
        reason = " (%s)" % self._shutdown_reason if self._shutdown_reason else ""
        parts = [
            "shutdown%s: sent %s (%s events) in %d ms"
            % (reason, _batches(f["batches_sent"]), _count(f["events_sent"]), f["elapsed_ms"])
        ]
        if f["batches_unsent"]:
            if f["error"]:
                why = _describe_failure(f["error"])
            elif f["batches_unanswered"]:
                why = "no answer before the SHUTDOWN deadline"
            else:
                why = "no time left before the SHUTDOWN deadline"
            parts.append(
                "%s (%s events) not sent to %s: %s"
                % (_batches(f["batches_unsent"]), _count(f["events_unsent"]), self.url, why)
            )
        if f["batches_spooled"]:
            parts.append(
                "spooled %s (%s events, %s bytes) to %s for the next extension process"
                % (
                    _batches(f["batches_spooled"]),
                    _count(f["events_spooled"]),
                    _count(f["bytes_spooled"]),
                    self.spool.directory if self.spool is not None else "?",
                )
            )
        late = self._unspooled_late
        reasons = [
            (f["events_unspooled"] - late, "not spooled: " + self._unspooled_reason()),
            (late, "not spooled: no time left"),
            (f["events_spool_full"], "spool full: its oldest batches deleted"),
            (f["events_rejected"], "rejected by the collector"),
            (f["events_unbatched"], "still buffered at the deadline"),
        ]
        reasons = [(n, text) for n, text in reasons if n]
        dropped = sum(n for n, _text in reasons)
        if dropped:
            if len(reasons) == 1:
                detail = reasons[0][1]
            else:
                detail = ", ".join("%s: %s" % (text, _count(n)) for n, text in reasons)
            parts.append("%s events dropped (%s)" % (_count(dropped), detail))
        line = "; ".join(parts)
        if f["batches_unsent"] or dropped:
            log.warning(line)
        else:
            log.info(line)

    def _unspooled_reason(self) -> str:
        if self.spool is None:
            return "no spool, LAMBDASCOPE_SPOOL_MAX_BYTES=0"
        return "spool %s full, too small or not writable" % self.spool.directory


def _describe_failure(error: str) -> str:
    if error.startswith("HTTP "):
        return "collector answered " + error
    if error.startswith("certificate verify failed"):
        return error
    if "timed out" in error or error.startswith(("TimeoutError", "timeout")):
        return "no answer in time (%s)" % error
    return "collector unreachable (%s)" % error


def _count(number: int) -> str:
    return "{:,}".format(number)


def _batches(number: int) -> str:
    return "%s batch%s" % (_count(number), "" if number == 1 else "es")


def _snippet(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").replace("\n", " ")
