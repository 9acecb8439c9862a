"""Lambda Managed Instances end to end: eight requests at once in one execution environment of
the emulator, with the lambdascope extension attached, through the collector and its embedded
store to the detectors. Each stored invocation, each request's log lines and the findings must
be those of that request, however the eight interleaved."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lambdascope.analyzers import run_detectors
from lambdascope.cli.processes import CollectorProcess
from lambdascope.emulator import Emulator, FunctionConfig
from lambdascope.extension.layer import build_layer_dir
from lambdascope.query import CollectorQueryClient
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.e2e

HANDLERS = Path(__file__).parent / "handlers"
#: Four succeed, three raise (the errors detector's floor), one outlives its 1 s timeout.
EVENTS = [{"tag": f"ok-{n}"} for n in range(4)]
EVENTS += [{"tag": f"fail-{n}", "fail": True} for n in range(3)]
EVENTS += [{"tag": "slow", "sleep_s": 2.5}]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    layer = tmp_path_factory.mktemp("layer")
    build_layer_dir(layer)
    store = tmp_path_factory.mktemp("store")
    with CollectorProcess(f"chdb://{store}") as collector:
        function = FunctionConfig(
            name="orders-mi",
            handler="concurrent.handler",
            code_dir=HANDLERS,
            timeout_s=1.0,
            memory_size_mb=2048,
            layers=(layer,),
            environment={"LAMBDASCOPE_COLLECTOR_URL": collector.url},
            managed_instances=True,
            max_concurrency=8,
        )
        started = datetime.now(UTC)
        with Emulator([function]) as emu, ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda e: emu.invoke("orders-mi", json.dumps(e).encode()), EVENTS)
            )
            environments = len(emu.environments("orders-mi"))
        client = CollectorQueryClient(collector.url)
        wait_for(client, "SELECT count() FROM invocations WHERE has_report = 1", len(EVENTS))
        now = datetime.now(UTC) + timedelta(minutes=1)
        since = now - started + timedelta(minutes=1)
        yield {
            "client": client,
            "results": dict(zip([e["tag"] for e in EVENTS], results, strict=True)),
            "environments": environments,
            "findings": run_detectors(client, since=since, now=now),
        }


def test_eight_requests_run_at_once_in_one_environment(run: dict) -> None:
    assert run["environments"] == 1
    rows = (
        run["client"]
        .query(
            "SELECT uniqExact(environment_id), count() FROM invocations WHERE function_name = "
            "'orders-mi'"
        )
        .rows
    )
    assert rows == [(1, 8)]


def test_each_stored_invocation_has_its_own_status(run: dict) -> None:
    by_id = {
        r["request_id"]: r
        for r in run["client"]
        .query(
            "SELECT request_id, status, duration_ms FROM invocations "
            "WHERE function_name = 'orders-mi'"
        )
        .dicts()
    }
    for tag, result in run["results"].items():
        stored = by_id[result.request_id]
        expected = "timeout" if tag == "slow" else "error" if tag.startswith("fail") else "success"
        assert stored["status"] == expected, (tag, stored)
        if expected == "success":
            assert 250 <= stored["duration_ms"] < 1000


def test_each_requests_log_lines_are_its_own(run: dict) -> None:
    client = run["client"]
    for tag, result in run["results"].items():
        messages = [
            r[0]
            for r in client.query(
                "SELECT message FROM logs WHERE request_id = {rid:String} AND stream = 'function'",
                {"rid": result.request_id},
            ).rows
        ]
        mine = [m for m in messages if "start " in m or "working on " in m or "end " in m]
        assert mine, (tag, messages)
        # Every line of this request names this request's tag, never another's.
        assert all(f" {tag}" in m or f'{tag}"' in m for m in mine), (tag, mine)


def test_the_findings_are_the_errors_and_the_timeout(run: dict) -> None:
    kinds = {f.kind: f for f in run["findings"] if f.function_name == "orders-mi"}
    assert set(kinds) >= {"errors", "timeout"}
    assert set(kinds["errors"].evidence_request_ids) == {
        run["results"][t].request_id for t in ("fail-0", "fail-1", "fail-2")
    }
    assert kinds["timeout"].evidence_request_ids == (run["results"]["slow"].request_id,)
    assert not {"out_of_memory", "high_memory", "memory_leak"} & set(kinds)
