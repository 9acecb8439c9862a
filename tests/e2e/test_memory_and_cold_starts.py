"""Memory limits and cold starts as Lambda has them, from the sandbox to the findings.

Real emulator environments with the lambdascope layer, a collector child process owning an
embedded store, and the detectors reading it: a function killed for allocating past its
memory size, one that stays just under it, one steady at 80%, a provisioned-concurrency
function and a one-environment function with a 1.2 s init.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lambdascope.analyzers import run_detectors
from lambdascope.analyzers.fleet import fleet_summary
from lambdascope.cli.processes import CollectorProcess
from lambdascope.emulator import Emulator, FunctionConfig
from lambdascope.extension.layer import build_layer_dir
from lambdascope.query import CollectorQueryClient
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.e2e

HANDLERS = Path(__file__).parent / "handlers"
SIZE_MB = 128


def max_memory_used_mb(result) -> int:
    tail = base64.b64decode(result.log_result or "").decode()
    found = re.search(r"Max Memory Used: (\d+) MB", tail)
    assert found, tail
    return int(found[1])


def hold(emu: Emulator, name: str, hold_mb: int, log: bool = False):
    payload = json.dumps({"hold_mb": hold_mb}).encode()
    return emu.invoke(name, payload, log_type="Tail" if log else None)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    layer = tmp_path_factory.mktemp("layer")
    build_layer_dir(layer)
    store = tmp_path_factory.mktemp("store")
    with CollectorProcess(f"chdb://{store}") as collector:
        env = {"LAMBDASCOPE_COLLECTOR_URL": collector.url}

        def function(name: str, handler: str, **extra) -> FunctionConfig:
            return FunctionConfig(
                name=name,
                handler=handler,
                code_dir=HANDLERS,
                timeout_s=5.0,
                memory_size_mb=SIZE_MB,
                layers=(layer,),
                environment=env,
                **extra,
            )

        functions = [
            function("hog", "memory.hold"),
            function("holder", "memory.hold"),
            function("steady", "memory.hold"),
            function("warm-pool", "slow_init.handler", provisioned_concurrency=1),
            function("thumbs", "slow_init.handler"),
        ]
        started = datetime.now(UTC)
        results: dict[str, list] = {}
        with Emulator(functions) as emu:
            # What the sandbox holds with nothing allocated: the runtime and the extension.
            baseline = [hold(emu, name, 0, log=True) for name in ("holder", "steady")]
            baseline_mb = max(max_memory_used_mb(r) for r in baseline)
            results["holder"] = [
                hold(emu, "holder", SIZE_MB - baseline_mb - 4, log=True) for _ in range(3)
            ]
            steady_mb = round(0.8 * SIZE_MB) - baseline_mb
            results["steady"] = [hold(emu, "steady", steady_mb, log=True) for _ in range(3)]
            results["hog"] = [hold(emu, "hog", 150, log=True)]
            results["warm-pool"] = [emu.invoke("warm-pool", b"{}") for _ in range(3)]
            results["thumbs"] = [emu.invoke("thumbs", b"{}") for _ in range(30)]
        client = CollectorQueryClient(collector.url)
        wait_for(client, "SELECT count() FROM invocations WHERE has_report = 1", 2 + 3 + 3 + 1 + 33)
        now = datetime.now(UTC) + timedelta(minutes=1)
        findings = run_detectors(client, since=now - started + timedelta(minutes=1), now=now)
        fleet = {
            r.function_name: r
            for r in fleet_summary(client, since=now - started + timedelta(minutes=1), now=now)
        }
        yield {
            "client": client,
            "results": results,
            "baseline_mb": baseline_mb,
            "findings": findings,
            "fleet": fleet,
        }


def found(run: dict, function_name: str) -> dict[str, object]:
    return {f.kind: f for f in run["findings"] if f.function_name == function_name}


def test_one_allocation_past_the_memory_size_is_killed_and_found(run: dict) -> None:
    (killed,) = run["results"]["hog"]
    assert json.loads(killed.payload)["errorType"] == "Runtime.OutOfMemory"
    assert max_memory_used_mb(killed) == SIZE_MB
    oom = found(run, "hog")["out_of_memory"]
    assert oom.severity == "critical"
    assert oom.evidence_request_ids == (killed.request_id,)


def test_holding_close_to_the_size_succeeds_under_it_and_is_high_memory(run: dict) -> None:
    results = run["results"]["holder"]
    assert all(r.function_error is None for r in results)
    used = [max_memory_used_mb(r) for r in results]
    assert all(SIZE_MB * 0.95 <= mb <= SIZE_MB for mb in used), (run["baseline_mb"], used)
    kinds = found(run, "holder")
    assert "out_of_memory" not in kinds
    assert kinds["high_memory"].severity in ("warning", "critical")


def test_eighty_percent_shows_its_headroom_and_no_finding(run: dict) -> None:
    assert all(r.function_error is None for r in run["results"]["steady"])
    assert not {"out_of_memory", "high_memory"} & set(found(run, "steady"))
    steady = run["fleet"]["steady"]
    assert steady.memory_pct_p95 is not None and 70 <= steady.memory_pct_p95 <= 90
    assert steady.max_memory_pct is not None and 70 <= steady.max_memory_pct <= 90


def test_provisioned_inits_are_not_cold_starts_users_felt(run: dict) -> None:
    assert all(r.function_error is None for r in run["results"]["warm-pool"])
    assert "cold_starts" not in found(run, "warm-pool")
    assert run["fleet"]["warm-pool"].cold_starts == 0
    inits = (
        run["client"]
        .query(
            "SELECT initialization_type, init_duration_ms FROM cold_starts "
            "WHERE function_name = 'warm-pool'"
        )
        .rows
    )
    assert inits and all(t == "provisioned-concurrency" for t, _ in inits)
    assert all(ms >= 1200 for _, ms in inits)  # slow, but nobody waited for it


def test_a_slow_init_in_one_environment_is_found_with_its_phases(run: dict) -> None:
    finding = found(run, "thumbs")["cold_starts"]
    assert finding.numbers["cold_starts"] == 1
    assert finding.numbers["init_p95_ms"] >= 1200
    # The extension saw the runtime process start: the init splits in three.
    numbers = finding.numbers
    assert numbers["runtime_and_function_init_p50_ms"] >= 1200
    assert 0 < numbers["extensions_before_runtime_p50_ms"] < 1000
    assert numbers["extensions_after_runtime_p50_ms"] >= 0
    parts = (
        numbers["extensions_before_runtime_p50_ms"]
        + numbers["runtime_and_function_init_p50_ms"]
        + numbers["extensions_after_runtime_p50_ms"]
    )
    assert parts == pytest.approx(numbers["init_p95_ms"], abs=30)  # one init: p50 = p95
    assert numbers["lambdascope_startup_p50_ms"] > 0
    assert "extensions starting" in finding.summary
    assert "the runtime and function code dominate" in finding.summary
