"""The spine, end to end: emulator + the real extension process + collector + embedded ClickHouse.

A handler that succeeds (cold, then warm) and one that times out run in the local Lambda
sandbox with the lambdascope layer attached; the extension ships the telemetry to a collector
child process that owns an embedded store; the test then reads through the read API, as the
TUI does, and runs the timeout detector.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from lambdascope.analyzers import run_detectors
from lambdascope.cli.processes import CollectorProcess
from lambdascope.emulator import Emulator, FunctionConfig
from lambdascope.extension.layer import build_layer_dir
from lambdascope.query import CollectorQueryClient, QueryClient
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.e2e

HANDLERS = Path(__file__).parent / "handlers"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    store = tmp_path_factory.mktemp("store")
    with CollectorProcess(f"chdb://{store}") as process:
        yield process


@pytest.fixture(scope="module")
def pipeline(collector: CollectorProcess, tmp_path_factory: pytest.TempPathFactory) -> dict:
    layer = tmp_path_factory.mktemp("layer")
    build_layer_dir(layer)
    env = {"LAMBDASCOPE_COLLECTOR_URL": collector.url}
    functions = [
        FunctionConfig(
            name="orders",
            handler="app.ok",
            code_dir=HANDLERS,
            timeout_s=3.0,
            layers=(layer,),
            environment=env,
        ),
        FunctionConfig(
            name="exporter",
            handler="app.slow",
            code_dir=HANDLERS,
            timeout_s=1.0,
            layers=(layer,),
            environment=env,
        ),
    ]
    with Emulator(functions) as emu:
        first = emu.invoke("orders", json.dumps({"order_id": "o-1"}).encode())
        second = emu.invoke("orders", json.dumps({"order_id": "o-2"}).encode())
        timed_out = emu.invoke("exporter", b"{}")
    # Leaving the block sent SHUTDOWN: the extensions flushed what they still held.
    client = CollectorQueryClient(collector.url)
    wait_for(client, "SELECT count() FROM invocations WHERE has_report = 1", 3)
    return {"client": client, "first": first, "second": second, "timed_out": timed_out}


def test_the_caller_sees_lambdas_responses(pipeline: dict) -> None:
    assert pipeline["first"].status_code == 200
    assert json.loads(pipeline["first"].payload) == {"ok": True, "order_id": "o-1"}
    assert pipeline["timed_out"].function_error == "Unhandled"
    body = json.loads(pipeline["timed_out"].payload)
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]


def test_store_holds_each_invocation_with_its_status_and_timings(pipeline: dict) -> None:
    client: QueryClient = pipeline["client"]
    rows = {
        r["request_id"]: r
        for r in client.query(
            "SELECT request_id, function_name, status, duration_ms, billed_duration_ms,"
            " memory_size_mb, max_memory_used_mb, init_duration_ms, cold_start, timeout_ms"
            " FROM invocations"
        ).dicts()
    }
    first = rows[pipeline["first"].request_id]
    second = rows[pipeline["second"].request_id]
    timed_out = rows[pipeline["timed_out"].request_id]
    assert len(rows) == 3

    assert first["status"] == second["status"] == "success"
    assert first["cold_start"] == 1 and first["init_duration_ms"] > 0
    assert second["cold_start"] == 0 and second["init_duration_ms"] is None
    # Lambda bills the init phase of an on-demand cold start since 2025-08-01.
    assert first["billed_duration_ms"] >= first["duration_ms"] + first["init_duration_ms"]
    assert 0 < second["duration_ms"] <= second["billed_duration_ms"] < 3000
    assert first["memory_size_mb"] == 128
    assert 0 < first["max_memory_used_mb"] <= 128

    assert timed_out["function_name"] == "exporter"
    assert timed_out["status"] == "timeout"
    assert 1000 <= timed_out["duration_ms"] < 1500
    assert timed_out["timeout_ms"] == pytest.approx(1000, abs=5)


def test_logs_are_attributed_to_their_request(pipeline: dict) -> None:
    client: QueryClient = pipeline["client"]
    for result, expected in (
        (pipeline["first"], "processing order o-1"),
        (pipeline["second"], "processing order o-2"),
        (pipeline["timed_out"], "Task timed out after 1.00 seconds"),
    ):
        messages = [
            r["message"]
            for r in client.query(
                "SELECT message FROM logs WHERE request_id = {rid:String} ORDER BY timestamp",
                {"rid": result.request_id},
            ).dicts()
        ]
        assert any(expected in m for m in messages), (result.request_id, messages)
    # Plain print() lines carry no request id: they are attributed by the invocation window.
    printed = client.query(
        "SELECT request_id FROM logs WHERE message LIKE {p:String}",
        {"p": f"done with {pipeline['second'].request_id}%"},
    ).dicts()
    assert [r["request_id"] for r in printed] == [pipeline["second"].request_id]


def test_timeout_detector_reports_exactly_the_timed_out_request(pipeline: dict) -> None:
    findings = run_detectors(pipeline["client"], since=timedelta(hours=1))
    timeouts = [f for f in findings if f.kind == "timeout"]
    assert len(timeouts) == 1
    assert timeouts[0].function_name == "exporter"
    assert timeouts[0].evidence_request_ids == (pipeline["timed_out"].request_id,)
    assert not [f for f in findings if f.function_name == "orders" and f.severity == "critical"]
