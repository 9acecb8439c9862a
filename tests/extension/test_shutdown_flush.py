"""The final flush at SHUTDOWN: what is held goes out merged and in parallel within the
deadline, what cannot is spooled and said in one line and in the batch stats, and the flush
returns before its deadline whatever the collector does. Loopback only; every wait bounded."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdascope.extension.agent import Agent
from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.config import load_config
from lambdascope.extension.shipper import Shipper
from lambdascope.extension.spool import Spool, parse_spool_name
from tests.extension.fakes import (
    REGISTER_BODY,
    FakeCollector,
    HangingCollector,
    closed_port,
    event,
)

SMALL_BATCHES = {"LAMBDASCOPE_BATCH_MAX_EVENTS": "50"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _lines(count: int, tag: str = "line") -> list[dict[str, Any]]:
    return [event("function", f"{tag} {number}\n") for number in range(count)]


def _shipper(url: str, spool: Spool | None = None, **env: str) -> Shipper:
    """A sender with the real poster (loopback) and a small batch size."""
    environ = {"LAMBDASCOPE_COLLECTOR_URL": url, **SMALL_BATCHES, **env}
    config, problems = load_config(environ)
    assert problems == []
    return Shipper(
        config,
        TelemetryBuffer(),
        {"environment_id": "e" * 32},
        {"name": "lambdascope", "version": "0.1.0"},
        stats=lambda: {"invocations": 7},
        spool=spool,
    )


@contextlib.contextmanager
def _collector(**kwargs: Any) -> Iterator[FakeCollector]:
    fake = FakeCollector(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()


def _shutdown(shipper: Shipper, budget_ms: int) -> tuple[bool, float]:
    """Run the final flush as the agent does; (finished in time, seconds it took)."""
    shipper.start()
    started = time.monotonic()
    done = shipper.shutdown(deadline_ms=_now_ms() + budget_ms, reason="spindown")
    elapsed = time.monotonic() - started
    assert shipper._thread is not None
    shipper._thread.join(timeout=5)
    assert not shipper._thread.is_alive()
    return done, elapsed


def _no_send_threads_left(timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(t.name == "lambdascope-shutdown-send" for t in threading.enumerate()):
            return True
        time.sleep(0.02)
    return False


def _summary(err: str) -> str:
    lines = [line for line in err.splitlines() if "shutdown" in line]
    assert len(lines) == 1, err
    return lines[0]


def _spooled(directory: Path) -> list[tuple[str, int, dict[str, Any]]]:
    """(batch_id, events, batch) of every spooled file, oldest first."""
    found = []
    for path in sorted(directory.iterdir()):
        parsed = parse_spool_name(path.name)
        assert parsed is not None, path.name
        found.append((parsed[1], parsed[2], json.loads(gzip.decompress(path.read_bytes()))))
    return found


# -- everything out within the budget ----------------------------------------------------------


def test_a_small_batch_size_still_sends_everything_within_a_short_budget() -> None:
    """2,000 events at 50 per batch are 40 round trips of 50 ms (2 s one after another); the
    final flush sends them merged, well within a 500 ms budget."""
    with _collector(delay_s=0.05) as collector:
        shipper = _shipper(collector.url)
        events = _lines(2000)
        shipper.buffer.append_events(events)
        done, elapsed = _shutdown(shipper, budget_ms=500)
        assert done and elapsed < 0.5
        assert collector.stored_telemetry() == events  # all of it, once, in order
        assert len(collector.requests) <= 3
        batches = collector.stored_batches()
        stats = batches[-1]["extension_stats"]
        assert stats["final"] is True and stats["shutdown_reason"] == "spindown"
        assert stats["invocations"] == 7  # the agent's figures travel with it
        assert all(b["extension_stats"]["final"] is False for b in batches[:-1])
    figures = shipper.shutdown_figures
    assert figures is not None
    assert (figures["batches_unsent"], figures["events_sent"]) == (0, 2000)
    assert figures["final_sent"] is True
    assert shipper.events_sent == 2000 and shipper.send_failures == 0
    assert _no_send_threads_left()


def test_batches_cut_before_shutdown_go_out_in_parallel_each_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Batches kept for retry cannot be merged (their batch_id is fixed): 16 of them at 100 ms
    each would need 1.6 s one after another, more than the budget."""
    with _collector(statuses=[503]) as collector:
        shipper = _shipper(collector.url)
        shipper.buffer.append_events(_lines(800))
        assert shipper.flush() is False  # the collector answered 503: 16 batches kept
        assert shipper.pending_batches == 16
        first_id = collector.requests[0][1]["batch_id"]
        collector.delay_s = 0.1
        done, elapsed = _shutdown(shipper, budget_ms=1500)
        assert done and elapsed < 1.5
        assert collector.max_concurrent >= 2
        shutdown_ids = [batch["batch_id"] for _headers, batch in collector.requests[1:]]
        assert len(shutdown_ids) == len(set(shutdown_ids)) == 17  # 16 + the final batch
        assert first_id in shutdown_ids  # retried under its own id
        assert [len(b["telemetry"]) for b in collector.stored_batches()].count(50) == 16
        assert sorted(e["record"] for e in collector.stored_telemetry()) == sorted(
            e["record"] for e in _lines(800)
        )
        final = collector.stored_batches()[-1]
        assert final["telemetry"] == [] and final["extension_stats"]["final"] is True
        assert final["extension_stats"]["shutdown_batches_sent"] == 16
        assert final["extension_stats"]["shutdown_events_sent"] == 800
        assert final["extension_stats"]["shutdown_batches_unsent"] == 0
    assert shipper.send_retries == 1 and shipper.send_failures == 1
    assert "WARNING shutdown" not in capsys.readouterr().err  # all sent: nothing to warn about
    assert _no_send_threads_left()


def test_shutdown_during_a_background_flush_takes_over_between_two_sends() -> None:
    """A background flush sends kept batches one after another; SHUTDOWN stops it after the
    send in flight and the final flush sends the rest in parallel: 20 x 100 ms would not fit."""
    with _collector(delay_s=0.1) as collector:
        shipper = _shipper(collector.url, LAMBDASCOPE_INVOKE_REPORT_WAIT_MS="0")
        for number in range(20):
            shipper.buffer.append_events(_lines(50, tag=f"kept {number}"))
            shipper._cut_batches()
        shipper.start()
        shipper.notify_invoke("r1")  # the background flush starts sending
        assert collector.wait_for(lambda c: len(c.requests) >= 1, timeout=5)
        started = time.monotonic()
        done = shipper.shutdown(deadline_ms=_now_ms() + 1500, reason="spindown")
        assert done and time.monotonic() - started < 1.5
        assert shipper._thread is not None
        shipper._thread.join(timeout=5)
        ids = [batch["batch_id"] for _headers, batch in collector.requests]
        assert len(ids) == len(set(ids)) == 21  # 20 kept + the final batch, each once
        assert collector.stored_batches()[-1]["extension_stats"]["final"] is True
        assert len(collector.stored_telemetry()) == 1000
    assert _no_send_threads_left()


# -- what cannot be sent ------------------------------------------------------------------------


def _agent(tmp_path: Path, url: str, **env: str) -> Agent:
    environ = {
        "LAMBDASCOPE_COLLECTOR_URL": url,
        "LAMBDASCOPE_SPOOL_DIR": str(tmp_path / "spool"),
        "LAMBDASCOPE_PROC_SAMPLE_INTERVAL_MS": "0",
        **SMALL_BATCHES,
        **env,
    }
    config, problems = load_config(environ)
    assert problems == []
    agent = Agent("lambdascope", config, environ)
    agent.start_shipper(REGISTER_BODY)  # starts the sender thread
    assert agent.shipper is not None
    return agent


def test_an_unreachable_collector_at_shutdown_is_one_line_a_spool_and_the_same_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    agent = _agent(tmp_path, url)
    assert agent.shipper is not None
    events = _lines(2000)
    agent.buffer.append_events(events)
    started = time.monotonic()
    assert agent.shipper.shutdown(deadline_ms=_now_ms() + 500, reason="timeout") is True
    assert time.monotonic() - started < 0.5
    err = capsys.readouterr().err
    line = _summary(err)
    assert len(err.splitlines()) == 1, err  # no other line about it
    match = re.fullmatch(
        r"\[lambdascope\] WARNING shutdown \(timeout\): sent 0 batches \(0 events\) in \d+ ms; "
        r"1 batch \(2,000 events\) not sent to "
        + re.escape(url + "/v1/extension/batches")
        + r": collector unreachable \(ConnectionRefusedError: \[Errno 111\] Connection refused\); "
        r"spooled 1 batch \(2,000 events, ([\d,]+) bytes\) to "
        + re.escape(str(tmp_path / "spool"))
        + r" for the next extension process",
        line,
    )
    assert match, line
    ((batch_id, spooled_events, spooled),) = _spooled(tmp_path / "spool")
    spooled_bytes = sum(p.stat().st_size for p in (tmp_path / "spool").iterdir())
    assert spooled_events == 2000 and int(match.group(1).replace(",", "")) == spooled_bytes
    # The figures the line gives are the ones the stats carry.
    stats = agent.self_stats()
    assert stats["spooled_batches"] == 1 and stats["spooled_bytes"] == spooled_bytes
    assert stats["send_failures"] == 1 and stats["events_sent"] == 0
    assert stats["events_received"] == 2000
    assert set(stats["events_dropped"].values()) == {0} and stats["dropped_events"] == 0
    figures = agent.shipper.shutdown_figures
    assert figures is not None
    assert (figures["batches_unsent"], figures["events_unsent"]) == (1, 2000)
    assert (figures["batches_spooled"], figures["bytes_spooled"]) == (1, spooled_bytes)
    # The spooled batch is the environment's final one: it says so, with the figures of the
    # batches before it (none), and its telemetry.
    head = spooled["extension_stats"]
    assert head["final"] is True and head["shutdown_reason"] == "timeout"
    assert head["shutdown_batches_unsent"] == 0 and head["shutdown_batches_sent"] == 0
    assert spooled["telemetry"] == events and spooled["batch_id"] == batch_id

    # The next extension process in this environment sends it, under its batch_id.
    with _collector() as collector:
        spool = Spool(str(tmp_path / "spool"), 16 * 1024 * 1024)
        second = _shipper(collector.url, spool)
        assert second.flush() is True
        assert [b["batch_id"] for b in collector.stored_batches()] == [batch_id]
        assert collector.stored_telemetry() == events
    assert second.send_retries == 1  # back from the spool: a retry
    assert not list((tmp_path / "spool").iterdir())


def test_without_a_spool_the_line_and_the_stats_count_the_dropped_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    agent = _agent(tmp_path, url, LAMBDASCOPE_SPOOL_MAX_BYTES="0")
    assert agent.shipper is not None
    agent.buffer.append_events(_lines(500))
    assert agent.shipper.shutdown(deadline_ms=_now_ms() + 500, reason="spindown") is True
    line = _summary(capsys.readouterr().err)
    assert line.endswith(
        f"1 batch (500 events) not sent to {url}/v1/extension/batches: collector unreachable "
        "(ConnectionRefusedError: [Errno 111] Connection refused); 500 events dropped "
        "(not spooled: no spool, LAMBDASCOPE_SPOOL_MAX_BYTES=0)"
    ), line
    stats = agent.self_stats()
    assert stats["events_dropped"]["shutdown_unspooled"] == 500
    assert stats["dropped_events"] == 500 and stats["spooled_batches"] == 0


def test_a_full_spool_deletes_its_oldest_batches_and_the_line_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = Spool(str(tmp_path / "spool"), max_bytes=20000)
    assert spool.put("a" * 32, b"\x1f\x8b" + bytes(15000), 300, sequence=1)  # older data
    shipper = _shipper(f"http://127.0.0.1:{closed_port()}", spool)
    shipper.buffer.append_events(_lines(2000))  # compresses to several kB: no room for both
    done, _elapsed = _shutdown(shipper, budget_ms=500)
    assert done
    line = _summary(capsys.readouterr().err)
    assert "300 events dropped (spool full: its oldest batches deleted)" in line, line
    assert [events for _id, events, _batch in _spooled(tmp_path / "spool")] == [2000]
    assert spool.dropped_events == 300


# -- the deadline ---------------------------------------------------------------------------------


def test_the_flush_returns_before_its_deadline_when_the_collector_hangs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = Spool(str(tmp_path / "spool"), 16 * 1024 * 1024)
    with HangingCollector() as hanging:
        shipper = _shipper(hanging.url, spool, LAMBDASCOPE_SEND_TIMEOUT_MS="3000")
        # batches kept from before SHUTDOWN (one each: LAMBDASCOPE_PENDING_MAX_BYTES is far)
        for number in range(10):
            shipper.buffer.append_events(_lines(50, tag=f"old {number}"))
            shipper._cut_batches()
        shipper.buffer.append_events(_lines(300, tag="new"))
        assert shipper.pending_batches == 10
        done, elapsed = _shutdown(shipper, budget_ms=1500)
        assert done, "the final flush must end before its deadline"
        assert elapsed < 2.0  # not the 3 s of LAMBDASCOPE_SEND_TIMEOUT_MS
        assert _no_send_threads_left(timeout_s=1.0)  # each send ended by the deadline
    line = _summary(capsys.readouterr().err)
    assert f"not sent to {hanging.url}/v1/extension/batches: no answer " in line, line
    spooled = _spooled(tmp_path / "spool")
    # Nothing lost, nothing twice: the ten kept batches (their ids) and the rest.
    assert sum(events for _id, events, _batch in spooled) == 800
    assert len({batch_id for batch_id, _events, _batch in spooled}) == len(spooled)
    figures = shipper.shutdown_figures
    assert figures is not None
    assert figures["events_spooled"] == figures["events_unsent"] == 800
    assert figures["batches_sent"] == 0


def test_a_collector_that_fails_midway_leaves_every_batch_either_stored_or_spooled_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = Spool(str(tmp_path / "spool"), 16 * 1024 * 1024)
    with _collector(statuses=[200, 200, 503, 503, 503, 503]) as collector:
        shipper = _shipper(collector.url, spool)
        for number in range(12):
            shipper.buffer.append_events(_lines(50, tag=f"kept {number}"))
            shipper._cut_batches()
        shipper.buffer.append_events(_lines(100, tag="new"))
        done, _elapsed = _shutdown(shipper, budget_ms=800)
        assert done
        requested = [batch["batch_id"] for _headers, batch in collector.requests]
        stored = set(collector.stored)
    assert len(requested) == len(set(requested))  # nothing sent twice within the flush
    spooled_ids = [batch_id for batch_id, _events, _batch in _spooled(tmp_path / "spool")]
    assert not stored & set(spooled_ids)
    assert len(stored) + len(spooled_ids) == 13  # 12 kept + the final batch with the rest
    line = _summary(capsys.readouterr().err)
    assert "collector answered HTTP 503" in line, line
    figures = shipper.shutdown_figures
    assert figures is not None
    assert figures["batches_sent"] == len(stored)
    assert figures["batches_spooled"] == len(spooled_ids)
    assert figures["events_sent"] + figures["events_spooled"] == 700
