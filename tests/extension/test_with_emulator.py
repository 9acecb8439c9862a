"""The extension, as built by `build_layer_dir`, attached to a function in the real emulator."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

from lambdascope.emulator import Emulator, FunctionConfig
from lambdascope.extension.layer import build_layer_dir
from tests.extension.fakes import FakeCollector

HANDLER = """
def handler(event, context):
    print("working on", event["n"])
    if event["n"] == 2:
        raise ValueError("bad input")
    return {"n": event["n"]}
"""


def with_extension(
    tmp_path: Path,
    name: str,
    source: str,
    environment: dict[str, str],
    *,
    python_packages: bool = False,
    **config: Any,
) -> FunctionConfig:
    """A function whose app.py is ``source``, with the layer as `build_layer_dir` makes it."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(source)
    layer = tmp_path / "layer"
    build_layer_dir(layer, python_packages=python_packages)
    return FunctionConfig(
        name=name,
        handler="app.handler",
        code_dir=code,
        layers=(layer,),
        environment=environment,
        **config,
    )


def test_every_invocation_reaches_the_collector_once(tmp_path: Path) -> None:
    collector = FakeCollector().start()
    env = {
        "LAMBDASCOPE_COLLECTOR_URL": collector.url,
        "LAMBDASCOPE_SPOOL_DIR": str(tmp_path / "spool"),
    }
    fn = with_extension(tmp_path, "checkout", HANDLER, env, memory_size_mb=128, timeout_s=3.0)
    try:
        with Emulator([fn]) as emu:
            results = [emu.invoke("checkout", b'{"n": %d}' % n) for n in range(3)]
        # leaving the emulator shuts the environment down: the SHUTDOWN flush runs
    finally:
        collector.stop()

    assert [r.status_code for r in results] == [200, 200, 200]
    assert results[2].function_error == "Unhandled"
    telemetry = collector.stored_telemetry()
    request_ids = [e["record"]["requestId"] for e in telemetry if e["type"] == "platform.start"]
    summary = [
        (e["type"], e["record"].get("requestId") if isinstance(e["record"], dict) else e["record"])
        for e in telemetry
    ]
    assert len(request_ids) == 3, summary
    counts = Counter(
        (e["type"], e["record"].get("requestId"))
        for e in telemetry
        if isinstance(e["record"], dict)
    )
    for request_id in request_ids:
        for kind in ("platform.start", "platform.runtimeDone", "platform.report"):
            assert counts[(kind, request_id)] == 1, (kind, request_id)
    assert counts[("platform.initStart", None)] == 1
    lines = [e["record"] for e in telemetry if e["type"] == "function"]
    assert sum("working on" in str(line) for line in lines) == 3

    invocations = collector.stored_invocations()
    assert [r["request_id"] for r in invocations] == request_ids
    for record in invocations:
        assert 2000 <= record["deadline_ms"] - record["received_at_ms"] <= 3100
        assert record["proc"]["samples"] >= 2
    batches = collector.stored_batches()
    assert {b["environment"]["function_name"] for b in batches} == {"checkout"}
    assert len({b["environment"]["environment_id"] for b in batches}) == 1
    stats = batches[-1]["extension_stats"]
    assert stats["dropped_events"] == 0
    assert 0 < stats["peak_rss_kb"] < 100_000
    assert stats["startup_ms"] > 0


TRACED_HANDLER = """
import lambdascope_tracing
from opentelemetry import trace

@lambdascope_tracing.instrument
def handler(event, context):
    with trace.get_tracer("app").start_as_current_span("work"):
        pass
    if event.get("fail"):
        raise RuntimeError("card declined")
    return {"statusCode": 200}
"""


def _spans(batches: list[dict]) -> list[tuple[str | None, dict]]:
    """(request id the extension tagged, span) for every span of every OTLP payload."""
    found: list[tuple[str | None, dict]] = []
    for batch in batches:
        for item in batch.get("otlp", []):
            assert item["signal"] == "traces" and item["content_type"] == "application/json"
            body = json.loads(base64.b64decode(item["body_b64"]))
            for resource in body["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    found.extend((item["request_id"], span) for span in scope["spans"])
    return found


def test_helper_spans_reach_the_collector_once_tagged_with_their_invocation(
    tmp_path: Path,
) -> None:
    collector = FakeCollector().start()
    env = {
        "LAMBDASCOPE_COLLECTOR_URL": collector.url,
        "LAMBDASCOPE_SPOOL_DIR": str(tmp_path / "spool"),
    }
    fn = with_extension(
        tmp_path,
        "checkout",
        TRACED_HANDLER,
        env,
        python_packages=True,
        memory_size_mb=256,
        timeout_s=3.0,
    )
    events = [b'{"n": 0}', b'{"fail": true}', b'{"n": 2}']
    try:
        with Emulator([fn]) as emu:
            results = [emu.invoke("checkout", body) for body in events]
    finally:
        collector.stop()
    assert [r.function_error for r in results] == [None, "Unhandled", None]
    telemetry = collector.stored_telemetry()
    request_ids = [e["record"]["requestId"] for e in telemetry if e["type"] == "platform.start"]
    assert len(request_ids) == 3
    spans = _spans(collector.stored_batches())
    roots = [(tag, span) for tag, span in spans if span["name"] == "checkout"]
    assert len(spans) == 6 and len(roots) == 3  # each exactly once
    for (tag, span), request_id, cold in zip(roots, request_ids, (True, False, False), strict=True):
        attributes = {a["key"]: a["value"] for a in span["attributes"]}
        assert tag == request_id
        assert attributes["faas.invocation_id"] == {"stringValue": request_id}
        assert attributes["faas.coldstart"] == {"boolValue": cold}
        assert attributes["faas.name"] == {"stringValue": "checkout"}
        assert attributes["faas.max_memory"] == {"intValue": str(256 * 1024 * 1024)}
        assert attributes["cloud.resource_id"]["stringValue"].endswith(":function:checkout")
        assert attributes["faas.instance"]["stringValue"]
    assert roots[1][1]["status"]["code"] == 2  # the failed invocation's span is an error
    assert [e["name"] for e in roots[1][1]["events"]] == ["exception"]


FAULTY_HANDLER = """
import time

def handler(event, context):
    print("working on", event["n"], event["mode"])
    if event["mode"] == "error":
        raise ValueError("bad input")
    if event["mode"] == "timeout":
        time.sleep(5)
    if event["mode"] == "oom":
        blocks = []
        for _ in range(400):
            blocks.append(bytearray(1024 * 1024))
            time.sleep(0.002)
    return {"n": event["n"]}
"""


def test_every_outcome_reaches_the_collector_once_across_an_outage(tmp_path: Path) -> None:
    """Cold, warm, error, timeout and out-of-memory invocations, the last three while the
    collector is down (the timeout and the OOM kill reset the environment, so their records
    leave at SHUTDOWN, into the spool, and the next extension process sends them)."""
    first = FakeCollector().start()
    second: FakeCollector | None = None
    # The spool is the default one under /tmp, which survives the resets.
    env = {"LAMBDASCOPE_COLLECTOR_URL": first.url}
    fn = with_extension(tmp_path, "orders", FAULTY_HANDLER, env, memory_size_mb=128, timeout_s=1.0)
    plan = ["ok", "ok", "error", "timeout", "oom", "ok", "ok"]
    results = []
    try:
        with Emulator([fn]) as emu:
            for n, mode in enumerate(plan):
                if n == 2:
                    first.stop()  # the collector goes away
                if n == 6:  # and comes back on the same address
                    second = FakeCollector(port=first.port).start()
                payload = json.dumps({"n": n, "mode": mode}).encode()
                results.append(emu.invoke("orders", payload))
        # leaving the emulator shuts the environment down: the SHUTDOWN flush runs
    finally:
        first.stop() if second is None else second.stop()

    errors = [r.function_error for r in results]
    assert errors == [None, None, "Unhandled", "Unhandled", "Unhandled", None, None]
    assert second is not None
    batches = {**first.stored, **second.stored}
    assert len(batches) == len(first.stored) + len(second.stored)  # no batch stored twice
    telemetry = [event for batch in batches.values() for event in batch["telemetry"]]
    counts = Counter(
        (e["type"], e["record"].get("requestId"))
        for e in telemetry
        if isinstance(e["record"], dict)
    )
    statuses = {
        e["record"]["requestId"]: e["record"]["status"]
        for e in telemetry
        if e["type"] == "platform.report"
    }
    for result in results:
        for kind in ("platform.start", "platform.runtimeDone", "platform.report"):
            assert counts[(kind, result.request_id)] == 1, (kind, result.request_id)
    assert [statuses[r.request_id] for r in results] == [
        "success",
        "success",
        "error",
        "timeout",
        "error",
        "success",
        "success",
    ]
    lines = [str(e["record"]) for e in telemetry if e["type"] == "function"]
    for n, mode in enumerate(plan):
        assert sum(f"working on {n} {mode}" in line for line in lines) == 1, (n, mode)
    # Three environments (the timeout and the OOM kill reset it), and nothing dropped.
    assert counts[("platform.initStart", None)] == 3
    invocations = [r for batch in batches.values() for r in batch["invocations"]]
    assert sorted(r["request_id"] for r in invocations) == sorted(r.request_id for r in results)
    for batch in batches.values():
        stats = batch["extension_stats"]
        assert (stats["dropped_events"], stats["spool_dropped_events"]) == (0, 0)
