"""The final flush at SHUTDOWN: what is left goes out in parallel and merged into large batches
within the deadline, then one last batch marked `final` carries the flush's figures; what got
no answer is spooled for the next extension process, and one line says what was sent, spooled
and dropped."""

from __future__ import annotations

import time

from . import log
from .buffer import BatchContent
from .parallel_sends import ParallelSends
from .pending import PendingBatch, content_bytes, content_events, merged

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    from .buffer import TelemetryBuffer
    from .config import Config
    from .pending import BatchAssembler
    from .spool import Spool

    class Shipper(Protocol):
        """What the final flush takes over from the sender (shipper.py): its configuration,
        buffer, spool and batch numbering, and its one-send bookkeeping."""

        config: Config
        buffer: TelemetryBuffer
        assembler: BatchAssembler
        spool: Spool | None
        url: str
        shutdown_reason: str
        shutdown_figures: dict[str, Any] | None

        def attempt(
            self, batch: PendingBatch, timeout_s: float
        ) -> tuple[str, str | None, float]: ...

        def hand_over_pending(self, put: Callable[[PendingBatch], None]) -> None: ...

        def spool_put(self, batch: PendingBatch) -> bool: ...

        def count_dropped(self, events: int, reason: str, batches: int = 1) -> None: ...


# Lambda gives external extensions 2,000 ms for the whole shutdown phase (deadlineMs); the
# runtime takes up to 300 ms of it first, and the agent exits 150 ms before the deadline.
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


class FinalFlush:
    """One shipper's flush at SHUTDOWN, to end before `deadline_ms` (epoch ms). The budget is
    measured when it is made; `run` is called once, by the sender thread holding the send
    lock."""

    def __init__(self, shipper: Shipper, deadline_ms: int) -> None:
        self.shipper = shipper
        self.started = time.monotonic()
        self.budget_s = max(0.0, deadline_ms / 1000.0 - time.time())
        self.deadline = self.started + self.budget_s
        send_deadline = (
            self.started + self.budget_s - max(SHUTDOWN_SPOOL_MARGIN_S, self.budget_s * 0.1)
        )
        self.sends = ParallelSends(
            shipper.attempt,
            shipper.config.send_timeout_ms / 1000.0,
            send_deadline,
            send_deadline - SHUTDOWN_FINAL_RESERVE_S,
        )
        self.unspooled_late = 0  # events of those the flush had no time to spool

    def run(self, last_request_id: str | None) -> None:
        """Send what is left: batches cut earlier and the buffer cut into large batches, over
        up to SHUTDOWN_CONNECTIONS connections at once; then the batch marked `final` with the
        flush's figures; spool what got no answer; one summary line. Returns before the
        deadline whatever the collector does."""
        shipper = self.shipper
        try:
            # Batches cut before SHUTDOWN leave at once, while the last report is on its way.
            shipper.hand_over_pending(self.sends.put)
            wait_s = min(shipper.config.shutdown_report_wait_ms / 1000.0, self.budget_s * 0.3)
            if last_request_id is not None:
                shipper.buffer.wait_for_report(last_request_id, wait_s)
            else:
                time.sleep(min(wait_s, 0.05))  # let an in-flight delivery land
            self._send_all()
        except BaseException:
            # A bug must not lose what was handed to the sends: keep it for the next process.
            self._spool_or_drop(self.sends.take_unsent())
            raise
        finally:
            self.sends.close()

    def _send_all(self) -> None:
        shipper, sends = self.shipper, self.sends
        config, spool = shipper.config, shipper.spool
        spool_dropped_before = spool.dropped_events if spool is not None else 0
        limits = (
            max(config.batch_max_events, SHUTDOWN_BATCH_MAX_EVENTS),
            max(config.batch_max_bytes, SHUTDOWN_BATCH_MAX_BYTES),
        )
        # 1. What is buffered, merged into large batches, each sent as soon as it is cut; the
        # last one is held back: it becomes the final batch.
        held = self._cut_rest(None, limits, sends.start_by)
        # 2. Batches an earlier process spooled, while there is time (else they stay there).
        self._feed_spooled()
        sends.wait()
        if shipper.buffer.has_data():  # arrived meanwhile (the last report, say)
            held = self._cut_rest(held, limits, sends.send_deadline)
            sends.wait()
        unsent = sends.take_unsent()
        spooled, unspooled = self._spool_or_drop(unsent)
        # 3. The final batch, with the figures of the batches before it: sent unless a send
        # failed or time is up, then spooled (an empty one only when it can be sent).
        can_send = sends.may_start(final=True)
        final: PendingBatch | None = None
        unbatched = 0
        if held is not None and time.monotonic() >= self.deadline:
            unbatched = content_events(held)  # no time left even to spool it
        elif held is not None or can_send:
            sent_so_far = sends.sent_batches()
            final = shipper.assembler.build(
                held or BatchContent(None, [], [], 0),
                SHUTDOWN_GZIP_LEVEL,
                {
                    "shutdown_reason": shipper.shutdown_reason or None,
                    "shutdown_budget_ms": int(self.budget_s * 1000),
                    "shutdown_elapsed_ms": int((time.monotonic() - self.started) * 1000),
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
            more_spooled, more_unspooled = self._spool_or_drop(rest)
            spooled += more_spooled
            unspooled += more_unspooled
        sent, rejected = sends.close()
        unbatched += len(shipper.buffer)
        if unbatched:
            shipper.count_dropped(unbatched, "shutdown_unbatched", batches=0)
        figures: dict[str, Any] = {
            "elapsed_ms": int((time.monotonic() - self.started) * 1000),
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
                spool.dropped_events - spool_dropped_before if spool is not None else 0
            ),
            "events_rejected": sum(b.events for b in rejected),
            "events_unbatched": unbatched,
        }
        shipper.shutdown_figures = figures
        self._log(figures)

    def _cut_rest(
        self,
        held: BatchContent | None,
        limits: tuple[int, int],
        until: float,
    ) -> BatchContent | None:
        """Cut the buffer into batches of up to `limits` (events, bytes) until `until`
        (monotonic): each full one goes to the sends, the last one is returned unbuilt (`held`
        is topped up first)."""
        buffer, assembler = self.shipper.buffer, self.shipper.assembler
        max_events, max_bytes = limits
        for _ in range(100000):
            if time.monotonic() >= until:
                break
            if held is not None:
                if not buffer.has_data():
                    break
                events, size = content_events(held), content_bytes(held)
                if events < max_events and size < max_bytes:
                    more = buffer.take_batch(max_events - events, max_bytes - size)
                    if more is None:
                        break
                    held = merged(held, more)
                    continue
                self.sends.put(assembler.build(held, SHUTDOWN_GZIP_LEVEL))
            held = buffer.take_batch(max_events, max_bytes)
            if held is None:
                break
        return held

    def _feed_spooled(self) -> None:
        spool = self.shipper.spool
        if spool is None:
            return
        for _ in range(100000):
            # A few at a time: a file taken from the spool and not sent is written back.
            if not spool.maybe_nonempty or not self.sends.wait_for_room():
                return
            item = spool.take_oldest()
            if item is None:
                return
            batch_id, body, events, sequence = item
            self.sends.put(PendingBatch(sequence, batch_id, body, events, 0, attempts=1))

    def _spool_or_drop(
        self, batches: list[PendingBatch]
    ) -> tuple[list[PendingBatch], list[PendingBatch]]:
        """Spool `batches` (oldest first) for the next extension process in this environment;
        those the spool cannot take, or that the deadline leaves no time for, are dropped."""
        spooled: list[PendingBatch] = []
        dropped: list[PendingBatch] = []
        for batch in sorted(batches, key=lambda b: b.sequence):
            if time.monotonic() >= self.deadline:
                self.unspooled_late += batch.events
            elif self.shipper.spool_put(batch):
                spooled.append(batch)
                continue
            self.shipper.count_dropped(batch.events, "shutdown_unspooled")
            dropped.append(batch)
        return spooled, dropped

    def _log(self, f: dict[str, Any]) -> None:
        """One line: what the final flush sent, what it could not and where that went."""
        shipper = self.shipper
        reason = " (%s)" % shipper.shutdown_reason if shipper.shutdown_reason else ""
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
                % (_batches(f["batches_unsent"]), _count(f["events_unsent"]), shipper.url, why)
            )
        if f["batches_spooled"]:
            parts.append(
                "spooled %s (%s events, %s bytes) to %s for the next extension process"
                % (
                    _batches(f["batches_spooled"]),
                    _count(f["events_spooled"]),
                    _count(f["bytes_spooled"]),
                    shipper.spool.directory if shipper.spool is not None else "?",
                )
            )
        late = self.unspooled_late
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
        spool = self.shipper.spool
        if spool is None:
            return "no spool, LAMBDASCOPE_SPOOL_MAX_BYTES=0"
        return "spool %s full, too small or not writable" % spool.directory


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
