"""The sender's retry, drop and spool logic, with an in-memory `post` (no sockets)."""

from __future__ import annotations

import contextlib
import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.config import load_config, parse_url
from lambdascope.extension.poster import classify_status
from lambdascope.extension.shipper import Shipper
from lambdascope.extension.spool import Spool
from tests.extension.fakes import invocation_events


class RecordingPost:
    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, dict[str, Any], dict[str, str], float]] = []

    def __call__(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, dict[str, str], bytes]:
        self.calls.append((url, json.loads(gzip.decompress(body)), headers, timeout_s))
        outcome = self.outcomes.pop(0) if self.outcomes else 200
        if isinstance(outcome, Exception):
            raise outcome
        return outcome, {}, b'{"error": "nope"}' if outcome != 200 else b"{}"


def make_shipper(
    post: RecordingPost, spool: Spool | None = None, **env: str
) -> tuple[Shipper, TelemetryBuffer]:
    environ = {"LAMBDASCOPE_COLLECTOR_URL": "http://127.0.0.1:9/base", "LAMBDASCOPE_TOKEN": "t"}
    environ.update(env)
    config, problems = load_config(environ)
    assert problems == []
    buffer = TelemetryBuffer()
    shipper = Shipper(
        config,
        buffer,
        {"environment_id": "e" * 32},
        {"name": "lambdascope", "version": "0.1.0"},
        post=post,
        stats=lambda: {"dropped_events": 0},
        spool=spool,
    )
    return shipper, buffer


def test_flush_posts_one_batch_with_headers_and_stats() -> None:
    post = RecordingPost([200])
    shipper, buffer = make_shipper(post)
    buffer.append_events(invocation_events("a"))
    buffer.add_invocation({"request_id": "a"})
    assert shipper.flush() is True
    ((url, batch, headers, _timeout),) = post.calls
    assert url == "http://127.0.0.1:9/base/v1/extension/batches"
    assert headers["Authorization"] == "Bearer t"
    assert headers["Content-Encoding"] == "gzip"
    assert batch["telemetry"] == invocation_events("a")
    assert batch["invocations"] == [{"request_id": "a"}]
    assert batch["extension_stats"] == {"dropped_events": 0, "final": False}
    assert shipper.bytes_sent > 0 and shipper.batches_sent == 1


def test_retryable_failure_keeps_the_batch_and_its_id(capsys: pytest.CaptureFixture[str]) -> None:
    post = RecordingPost([503, ConnectionRefusedError(111, "Connection refused"), 200])
    shipper, buffer = make_shipper(post)
    buffer.append_events(invocation_events("a"))
    assert shipper.flush() is False
    assert shipper.pending_batches == 1
    # inside the backoff window nothing is sent
    assert shipper.flush() is False and len(post.calls) == 1
    assert shipper.flush(force=True) is False
    assert shipper.flush(force=True) is True
    ids = [batch["batch_id"] for _u, batch, _h, _t in post.calls]
    assert len(ids) == 3 and len(set(ids)) == 1
    err = capsys.readouterr().err
    assert err.count("cannot send to collector http://127.0.0.1:9/base/v1/extension/batches") == 2
    assert "HTTP 503" in err and "Connection refused" in err


def test_the_same_failure_is_logged_once_per_streak(capsys: pytest.CaptureFixture[str]) -> None:
    post = RecordingPost([OSError("down")] * 5)
    shipper, buffer = make_shipper(post)
    for number in range(5):
        buffer.append_events(invocation_events(str(number)))
        shipper.flush(force=True)
    assert len(post.calls) == 5
    assert capsys.readouterr().err.count("cannot send to collector") == 1


def test_rejected_batch_is_dropped_counted_and_logged(capsys: pytest.CaptureFixture[str]) -> None:
    post = RecordingPost([400, 200])
    shipper, buffer = make_shipper(post)
    buffer.append_events(invocation_events("a"))
    assert shipper.flush() is True
    assert shipper.dropped_events == 3 and shipper.batches_rejected == 1
    assert "rejected batch" in capsys.readouterr().err
    buffer.append_events(invocation_events("b"))
    assert shipper.flush() is True
    assert post.calls[-1][1]["telemetry"] == invocation_events("b")


def test_unsent_batches_beyond_the_memory_bound_drop_the_oldest() -> None:
    post = RecordingPost([OSError("down")] * 50)
    shipper, buffer = make_shipper(post, LAMBDASCOPE_PENDING_MAX_BYTES="0")
    for number in range(3):
        buffer.append_events(invocation_events(str(number)))
        shipper.flush(force=True)
    assert shipper.pending_batches == 1  # the newest is kept
    assert shipper.dropped_batches == 2 and shipper.dropped_events == 6


def test_unsent_batches_go_to_the_spool_and_come_back(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "spool"), max_bytes=10**6)
    post = RecordingPost([OSError("down")] * 3)
    shipper, buffer = make_shipper(post, spool, LAMBDASCOPE_PENDING_MAX_BYTES="0")
    for number in range(3):
        buffer.append_events(invocation_events(str(number)))
        shipper.flush(force=True)
    # nothing lost: what does not fit in memory waits on disk
    assert len(spool) >= 1 and len(spool) + shipper.pending_batches == 3
    assert shipper.dropped_events == 0
    # the collector is back: everything is delivered, oldest first, under the same ids
    assert shipper.flush(force=True) is True
    delivered = [call[1] for call in post.calls[3:]]
    assert [b["telemetry"][0]["record"]["requestId"] for b in delivered] == ["0", "1", "2"]
    assert delivered[0]["batch_id"] == post.calls[0][1]["batch_id"]  # retried under its id
    assert len({b["batch_id"] for b in delivered}) == 3
    assert len(spool) == 0


def test_final_flush_spools_what_could_not_be_sent(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "spool"), max_bytes=10**6)
    post = RecordingPost([OSError("down")])
    shipper, buffer = make_shipper(post, spool)
    buffer.append_events(invocation_events("a"))
    shipper.start()
    assert shipper.shutdown(deadline_ms=_now_ms() + 1500) is True
    assert len(spool) == 1


def test_shutdown_returns_within_the_deadline_when_the_collector_hangs() -> None:
    class HangingPost(RecordingPost):
        def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Any:
            time.sleep(min(timeout_s, 5))
            raise TimeoutError("timed out")

    shipper, buffer = make_shipper(HangingPost([]))
    buffer.append_events(invocation_events("a"))
    shipper.start()
    started = time.monotonic()
    shipper.shutdown(deadline_ms=_now_ms() + 400)
    assert time.monotonic() - started < 1.0
    assert shipper._thread is not None
    shipper._thread.join(timeout=5)  # the hung send ends at its own timeout
    assert not shipper._thread.is_alive()


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "sent"),
        (202, "sent"),
        (429, "retry"),
        (503, "retry"),
        (500, "retry"),
        (400, "rejected"),
        (401, "rejected"),
        (413, "rejected"),
    ],
)
def test_classify_status(status: int, outcome: str) -> None:
    assert classify_status(status) == outcome


def test_parse_url() -> None:
    assert parse_url("http://127.0.0.1:4320") == (False, "127.0.0.1", 4320, "")
    assert parse_url("https://c.example/x/") == (True, "c.example", 443, "/x")
    assert parse_url("http://[::1]:8080/a") == (False, "::1", 8080, "/a")


def _wait_for_calls(post: RecordingPost, count: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(post.calls) >= count:
            return True
        time.sleep(0.01)
    return len(post.calls) >= count


@contextlib.contextmanager
def _after_a_first_send(
    outcomes: list[Any] | None = None, interval_ms: int = 60000, **env: str
) -> Iterator[tuple[Shipper, TelemetryBuffer, RecordingPost]]:
    """A running sender whose first wake-up (invocation r0) has tried to send a batch."""
    post = RecordingPost(outcomes or [])
    shipper, buffer = make_shipper(
        post,
        LAMBDASCOPE_FLUSH_INTERVAL_MS=str(interval_ms),
        LAMBDASCOPE_INVOKE_REPORT_WAIT_MS="0",
        **env,
    )
    shipper.start()
    try:
        buffer.append_events(invocation_events("r0"))
        shipper.notify_invoke("r0")
        assert _wait_for_calls(post, 1, 2.0)
        yield shipper, buffer, post
    finally:
        shipper.shutdown(deadline_ms=_now_ms() + 1000)


def _invocations(shipper: Shipper, buffer: TelemetryBuffer, numbers: range) -> None:
    for k in numbers:
        buffer.append_events(invocation_events(f"r{k}"))
        shipper.notify_invoke(f"r{k}")


def test_a_busy_function_sends_once_per_interval_not_at_every_wake_up() -> None:
    with _after_a_first_send(interval_ms=700) as (shipper, buffer, post):
        started = time.monotonic()  # the first wake-up sent at once
        _invocations(shipper, buffer, range(1, 6))  # five more within the interval
        time.sleep(0.2)
        assert len(post.calls) == 1, "a wake-up within the interval must not send"
        # The data waiting goes once it is an interval old, in one batch, nothing lost.
        assert _wait_for_calls(post, 2, 3.0)
        assert time.monotonic() - started >= 0.5
        sent = [e for call in post.calls for e in call[1]["telemetry"]]
        assert sent == [e for k in range(6) for e in invocation_events(f"r{k}")]


def test_a_full_batch_is_sent_at_the_next_wake_up_within_the_interval() -> None:
    with _after_a_first_send(LAMBDASCOPE_BATCH_MAX_EVENTS="3") as (shipper, buffer, post):
        _invocations(shipper, buffer, range(1, 2))  # three events: a full batch
        assert _wait_for_calls(post, 2, 2.0)


def test_a_wake_up_after_a_long_freeze_sends_even_if_the_monotonic_clock_stood_still() -> None:
    with _after_a_first_send() as (shipper, buffer, post):
        _invocations(shipper, buffer, range(1, 2))
        time.sleep(0.1)
        assert len(post.calls) == 1  # within the interval: nothing sent
        # A sandbox frozen for an hour: the wall clock moved on, the monotonic one need not.
        shipper._last_flush_wall -= 3600
        shipper.notify_invoke("r2")
        assert _wait_for_calls(post, 2, 2.0)


def test_while_the_collector_is_down_wake_ups_retry_only_when_the_backoff_ends() -> None:
    down = [OSError("down"), OSError("down")]
    with _after_a_first_send(down) as (shipper, buffer, post):  # kept, retried after 1 s
        _invocations(shipper, buffer, range(1, 6))
        time.sleep(0.3)
        assert len(post.calls) == 1, "a wake-up during the backoff must not try again"
        # ... nor cut what arrived into a batch per invocation: it waits in the buffer.
        assert shipper.pending_batches == 1
        time.sleep(1.0)
        shipper.notify_invoke("r6")
        assert _wait_for_calls(post, 2, 2.0)
        assert post.calls[1][1]["batch_id"] == post.calls[0][1]["batch_id"]  # the same batch
