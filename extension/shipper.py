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
* at SHUTDOWN: wait up to `shutdown_report_wait_ms` for the last report, then send what is
  left within the deadline.
A batch the collector did not take is kept, with its batch_id, and retried with backoff at later
wake-ups (the collector stores a batch id once). Unsent batches are bounded in bytes; beyond
that they go to the on-disk spool if there is one, else the oldest are dropped and counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from . import log
from .batch import BATCHES_PATH, build_batch_json, gzip_bytes, new_id
from .config import CA_BUNDLE, COLLECTOR_URL, parse_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .buffer import TelemetryBuffer
    from .config import Config
    from .spool import Spool

    PostFn = Callable[[str, bytes, dict[str, str], float], tuple[int, dict[str, str], bytes]]

MAX_BACKOFF_S = 60.0
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_MISMATCH, _IP_ADDRESS_MISMATCH: the chain is
# trusted but names another host, so a CA bundle is not the fix.
_NAME_MISMATCH_CODES = (62, 63, 64)


class PendingBatch:
    __slots__ = ("sequence", "batch_id", "body", "events", "invocations")

    def __init__(
        self, sequence: int, batch_id: str, body: bytes, events: int, invocations: int
    ) -> None:
        self.sequence = sequence  # creation order, kept through the spool: oldest goes first
        self.batch_id = batch_id
        self.body = body  # gzip-compressed JSON, reused as is on every retry
        self.events = events
        self.invocations = invocations


class SendResult:
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


class CertificateVerifyError(OSError):
    """The collector's certificate failed verification (chain or host name). An OSError, so
    the sender treats it as it treats a refused connection: kept, retried, spooled."""


class CollectorPoster:
    """The sender's `post`: one request per batch over httpio, TLS for https URLs.

    The SSLContext is built at the first https send (on the sender thread, so neither `ssl` nor
    the CA store is loaded before `next`, and never for an http collector) and reused after:
    loading a CA store costs ~20 ms each time.
    """

    def __init__(self, ca_bundle: str | None = None) -> None:
        self.ca_bundle = ca_bundle  # None: the system's CA store
        self._ssl_context: Any = None

    def __call__(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, dict[str, str], bytes]:
        from . import httpio

        tls, host, port, path = parse_url(url)
        context = self.ssl_context() if tls else None
        try:
            response = httpio.request(
                host,
                port,
                "POST",
                path,
                headers,
                body,
                timeout=timeout_s,
                tls=tls,
                ssl_context=context,
            )
        except OSError as exc:
            explained = _explained(exc, self.ca_bundle) if tls else None
            if explained is not None:
                raise explained from exc
            raise
        return response.status, response.headers, response.body

    def ssl_context(self) -> Any:
        if self._ssl_context is None:
            import ssl

            # create_default_context: CERT_REQUIRED and check_hostname, the system's
            # minimum protocol version; cafile replaces the system store, it does not add to it.
            context = None
            if self.ca_bundle:
                try:
                    context = ssl.create_default_context(cafile=self.ca_bundle)
                except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                    log.error(
                        "%s=%r cannot be loaded as CA certificates (%s); verifying the "
                        "collector against the system's CA store instead"
                        % (CA_BUNDLE, self.ca_bundle, exc)
                    )
                    self.ca_bundle = None
            self._ssl_context = context or ssl.create_default_context()
        return self._ssl_context


def _explained(exc: OSError, ca_bundle: str | None) -> CertificateVerifyError | None:
    """A verification failure, reworded to say what to do; None for other errors."""
    import ssl  # loaded already: only called for https

    if not isinstance(exc, ssl.SSLCertVerificationError):
        return None
    reason = (getattr(exc, "verify_message", None) or str(exc)).rstrip(".")
    if getattr(exc, "verify_code", None) in _NAME_MISMATCH_CODES:
        advice = "the certificate must name the host of %s" % COLLECTOR_URL
    elif ca_bundle:
        advice = "the certificate must chain to a CA in %s=%s" % (CA_BUNDLE, ca_bundle)
    else:
        advice = "set %s to your CA's PEM file" % CA_BUNDLE
    return CertificateVerifyError("certificate verify failed: %s; %s" % (reason, advice))


def http_post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> tuple[int, dict[str, str], bytes]:
    """One POST with the system's CA store (a new SSLContext per call: use CollectorPoster
    to send more than once over https)."""
    return CollectorPoster()(url, body, headers, timeout_s)


def classify_status(status: int) -> str:
    """2xx taken; 408/425/429/5xx retried; other 4xx (bad batch, token, size) never succeed."""
    if 200 <= status < 300:
        return SendResult.SENT
    if status in (408, 425, 429) or status >= 500:
        return SendResult.RETRY
    return SendResult.REJECTED


def retry_after_s(headers: dict[str, str]) -> float:
    try:
        return max(0.0, min(float(headers.get("retry-after", "0")), MAX_BACKOFF_S))
    except ValueError:
        return 0.0


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
        self.url = (config.collector_url or "") + BATCHES_PATH
        self._post: PostFn = post or CollectorPoster(config.ca_bundle)
        self._stats = stats
        self.spool = spool
        self._pending: deque[PendingBatch] = deque()
        self._pending_bytes = 0
        self._cond = threading.Condition()
        self._invoke_woken = False
        self._previous_request_id: str | None = None
        self._current_request_id: str | None = None
        self._shutdown_deadline_ms: int | None = None
        self._next_attempt = 0.0  # monotonic; backoff after a failed send
        # When the last flush began: INVOKE wake-ups send at most once per flush interval.
        self._last_flush_monotonic = -1e9
        self._last_flush_wall = 0.0
        self._backoff_s = 0.0
        self._failing_since_error: str | None = None
        self._thread: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._sequence = time.time_ns()  # later processes in this environment sort after
        self.bytes_sent = 0
        self.batches_sent = 0
        self.batches_rejected = 0
        self.dropped_events = 0  # events in unsent batches that were dropped
        self.dropped_batches = 0

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

    def shutdown(self, deadline_ms: int, now_ms: int | None = None) -> bool:
        """Ask for the final flush and wait for it until `deadline_ms` (epoch ms).
        True when the final flush finished in time."""
        with self._cond:
            self._shutdown_deadline_ms = deadline_ms
            self._cond.notify_all()
        if self._thread is None:
            return True
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        self._thread.join(timeout=max(0.0, (deadline_ms - now) / 1000.0))
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

    def _final_flush(self, deadline_ms: int, last_request_id: str | None) -> None:
        budget_s = deadline_ms / 1000.0 - time.time()
        wait_s = min(self.config.shutdown_report_wait_ms / 1000.0, max(0.0, budget_s * 0.3))
        if last_request_id is not None:
            self.buffer.wait_for_report(last_request_id, wait_s)
        else:
            time.sleep(min(wait_s, 0.05))  # let an in-flight delivery land
        self.flush(
            deadline_monotonic=time.monotonic() + max(0.0, deadline_ms / 1000.0 - time.time()),
            force=True,
        )
        if self._pending:
            self._spool_pending()

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

    def _cut_batches(self) -> None:
        if not self.config.collector_url:
            return
        for _ in range(100000):
            content = self.buffer.take_batch(
                self.config.batch_max_events, self.config.batch_max_bytes
            )
            if content is None:
                return
            batch_id = new_id()
            stats = self._stats() if self._stats is not None else None
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
            )
            body = gzip_bytes(raw)
            self._sequence += 1
            self._pending.append(
                PendingBatch(
                    self._sequence,
                    batch_id,
                    body,
                    len(content.telemetry) + len(content.otlp),
                    len(content.invocations),
                )
            )
            self._pending_bytes += len(body)
            self._bound_pending()

    def _bound_pending(self) -> None:
        while len(self._pending) > 1 and self._pending_bytes > self.config.pending_max_bytes:
            oldest = self._pending.popleft()
            self._pending_bytes -= len(oldest.body)
            if self.spool is not None and self.spool.put(
                oldest.batch_id, oldest.body, oldest.events, oldest.sequence
            ):
                continue
            self.dropped_batches += 1
            self.dropped_events += oldest.events
            log.warning(
                "dropped unsent batch %s (%d events): more than %d bytes waiting for %s"
                % (oldest.batch_id, oldest.events, self.config.pending_max_bytes, self.url)
            )

    def _spool_pending(self) -> None:
        if self.spool is None:
            return
        for _ in range(len(self._pending)):
            batch = self._pending.popleft()
            self._pending_bytes -= len(batch.body)
            if not self.spool.put(batch.batch_id, batch.body, batch.events, batch.sequence):
                self.dropped_batches += 1
                self.dropped_events += batch.events

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
            self._pending.insert(position, PendingBatch(sequence, batch_id, body, events, 0))
            self._pending_bytes += len(body)

    def _send(self, batch: PendingBatch, timeout_s: float) -> str:
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "X-Lambdascope-Batch-Id": batch.batch_id,
        }
        if self.config.token:
            headers["Authorization"] = "Bearer " + self.config.token
        try:
            status, response_headers, body = self._post(self.url, batch.body, headers, timeout_s)
        except CertificateVerifyError as exc:
            self._failed(str(exc), 0.0)  # its text says all; a class name would add noise
            return SendResult.RETRY
        except Exception as exc:  # noqa: BLE001 - any network failure is retried later
            self._failed("%s: %s" % (type(exc).__name__, exc), 0.0)
            return SendResult.RETRY
        outcome = classify_status(status)
        if outcome == SendResult.SENT:
            self.bytes_sent += len(batch.body)
            self.batches_sent += 1
            if self._failing_since_error is not None:
                log.info("collector %s takes batches again" % self.url)
            self._failing_since_error = None
            self._backoff_s = 0.0
            self._next_attempt = 0.0
        elif outcome == SendResult.RETRY:
            self._failed("HTTP %d %s" % (status, _snippet(body)), retry_after_s(response_headers))
        else:
            self.batches_rejected += 1
            self.dropped_events += batch.events
            log.error(
                "collector %s rejected batch %s with HTTP %d %s; dropped it (%d events). "
                "Check LAMBDASCOPE_TOKEN and the collector's version."
                % (self.url, batch.batch_id, status, _snippet(body), batch.events)
            )
        return outcome

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


def _snippet(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").replace("\n", " ")
