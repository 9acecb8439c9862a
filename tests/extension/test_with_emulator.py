"""The extension, as built by `build_layer_dir`, attached to a function in the real emulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from emulator import Emulator, FunctionConfig
from extension.layer import build_layer_dir
from tests.extension.fakes import FakeCollector

HANDLER = """
def handler(event, context):
    print("working on", event["n"])
    if event["n"] == 2:
        raise ValueError("bad input")
    return {"n": event["n"]}
"""


def test_every_invocation_reaches_the_collector_once(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    layer = tmp_path / "layer"
    build_layer_dir(layer)
    collector = FakeCollector().start()
    fn = FunctionConfig(
        name="checkout",
        handler="app.handler",
        code_dir=code,
        memory_size_mb=128,
        timeout_s=3.0,
        layers=(layer,),
        environment={
            "LAMBDASCOPE_COLLECTOR_URL": collector.url,
            "LAMBDASCOPE_SPOOL_DIR": str(tmp_path / "spool"),
        },
    )
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
