"""Lambda Managed Instances: many requests at once in one environment, one awslambdaric worker
process each, with Lambda's per-request timeouts, scaling and telemetry."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config

from lambdascope.emulator import Emulator, FunctionConfig
from lambdascope.emulator.config import ConfigError
from lambdascope.emulator.invoke_result import InvokeResult

from .conftest import HANDLERS, Recording, function, wait_for


def managed(name: str = "mi", **kwargs: Any) -> FunctionConfig:
    kwargs.setdefault("memory_size_mb", 2048)
    kwargs.setdefault("timeout_s", 3.0)
    kwargs.setdefault("max_concurrency", 8)
    return function(name, "app.managed", managed_instances=True, **kwargs)


def at_once(calls: list[Callable[[], InvokeResult]]) -> list[InvokeResult]:
    """Run every call in its own thread, started together; results in call order."""
    results: list[InvokeResult | None] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait(5)
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert all(r is not None for r in results), "a request did not come back"
    return [r for r in results if r is not None]


def invoke(emu: Emulator, tail: bool = False, **event: Any) -> Callable[[], InvokeResult]:
    return lambda: emu.invoke("mi", json.dumps(event).encode(), log_type="Tail" if tail else None)


def body(result: InvokeResult) -> dict[str, Any]:
    return dict(json.loads(result.payload))


def test_eight_concurrent_requests_are_served_by_one_environment_with_eight_runtime_processes(
    make_emulator, recording: Recording
):
    emu = make_emulator([managed(recording=recording)])
    (env,) = emu.environments("mi")
    started = time.monotonic()
    results = at_once([invoke(emu, sleep_s=0.5, tag=i) for i in range(8)])
    took_s = time.monotonic() - started
    assert [r.status_code for r in results] == [200] * 8
    assert took_s < 2.0  # one after another would take 8 x 0.5 s
    assert len({body(r)["pid"] for r in results}) == 8  # a worker process each
    assert emu.environments("mi") == [env]
    ids = {r.request_id for r in results}
    reports = [recording.report_for(request_id) for request_id in ids]
    assert {r["status"] for r in reports} == {"success"}
    assert all("initDurationMs" not in r["metrics"] for r in reports)  # initialised ahead
    (init_start,) = recording.platform("platform.initStart")  # one environment
    assert init_start["initializationType"] == "lambda-managed-instances"
    starts = {r["requestId"] for r in recording.platform("platform.start")}
    assert starts == ids
    # Extensions get no INVOKE here (and the recorder registered for SHUTDOWN only).
    assert [e["eventType"] for e in recording.extension_events()] == []


def test_a_timeout_fails_only_its_request_and_the_environment_keeps_serving(
    make_emulator, recording: Recording
):
    emu = make_emulator([managed(recording=recording, timeout_s=1.0)])
    (env,) = emu.environments("mi")
    calls = [invoke(emu, sleep_s=0.3, tag=i) for i in range(5)]
    calls += [invoke(emu, sleep_s=0.3, fail=True), invoke(emu, fail=True)]
    calls += [invoke(emu, sleep_s=2.0, tag="slow")]
    results = at_once(calls)
    assert [r.function_error for r in results[:5]] == [None] * 5
    assert [body(r)["errorType"] for r in results[5:7]] == ["ValueError", "ValueError"]
    timed_out = results[7]
    assert timed_out.function_error == "Unhandled"
    assert body(timed_out)["errorType"] == "Sandbox.Timedout"
    assert body(timed_out)["errorMessage"].endswith("Task timed out after 1.00 seconds")
    report = recording.report_for(timed_out.request_id)
    assert report["status"] == "timeout"
    done = [
        r
        for r in recording.platform("platform.runtimeDone")
        if r["requestId"] == timed_out.request_id
    ]
    assert [r["status"] for r in done] == ["timeout"]
    # The same environment serves the next request, while the slow handler still runs.
    after = emu.invoke("mi", b'{"tag": "after"}')
    assert after.status_code == 200 and after.function_error is None
    assert emu.environments("mi") == [env]
    assert env.shutdown_reason is None


def test_the_ninth_concurrent_request_is_throttled_while_capacity_is_added(make_emulator):
    emu = make_emulator([managed(max_concurrency=8, max_execution_environments=2)])
    client = boto3.client(
        "lambda",
        endpoint_url=emu.invoke_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )
    held = [threading.Thread(target=invoke(emu, sleep_s=1.0), daemon=True) for _ in range(8)]
    for thread in held:
        thread.start()
    (env,) = emu.environments("mi")
    wait_for(lambda: env.free_workers() == 0, 5, "every worker of the environment to be busy")
    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        client.invoke(FunctionName="mi", Payload=b"{}")
    assert caught.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    # Lambda scales asynchronously: the throttle started a second environment.
    second = wait_for(
        lambda: [e for e in emu.environments("mi") if e is not env and e.free_workers()],
        10,
        "a second environment with free workers",
    )[0]
    assert emu.invoke("mi", b'{"tag": "ninth"}').status_code == 200
    assert second.invocations == 1
    for thread in held:
        thread.join(5)


def test_tmp_is_shared_by_every_request_of_an_environment(make_emulator):
    emu = make_emulator([managed()])
    writers = at_once([invoke(emu, write=f"from-{i}", sleep_s=0.3) for i in range(4)])
    reader = body(emu.invoke("mi", json.dumps({"read": [f"from-{i}" for i in range(4)]}).encode()))
    assert reader["read"] == {f"from-{i}": writers[i].request_id for i in range(4)}
    assert len({body(w)["pid"] for w in writers} | {reader["pid"]}) >= 4


def test_interleaved_json_logs_carry_each_requests_own_request_id(make_emulator):
    emu = make_emulator([managed()])
    results = at_once([invoke(emu, tail=True, sleep_s=0.3, tag=i) for i in range(6)])
    for result in results:
        tail = base64.b64decode(result.log_result or "").decode()
        records = [json.loads(line) for line in tail.splitlines() if line.startswith("{")]
        # The handler logged "start" then "end" while the 5 others logged theirs in between.
        assert [r["message"].split()[0] for r in records] == ["start", "end"]
        assert {r["requestId"] for r in records} == {result.request_id}
        assert tail.startswith(f"START RequestId: {result.request_id}")


def test_managed_instances_config_is_validated_with_lambdas_rules():
    with pytest.raises(ConfigError, match="only JSON"):
        FunctionConfig("m", "app.ok", HANDLERS, 2048, managed_instances=True, log_format="Text")
    with pytest.raises(ConfigError, match="2048 MB"):
        FunctionConfig("m", "app.ok", HANDLERS, 1024, managed_instances=True)
    with pytest.raises(ConfigError, match="max_concurrency.*only with managed_instances"):
        FunctionConfig("m", "app.ok", HANDLERS, max_concurrency=4)
    with pytest.raises(ConfigError, match="provisioned_concurrency"):
        FunctionConfig(
            "m", "app.ok", HANDLERS, 2048, managed_instances=True, provisioned_concurrency=1
        )
    fn = FunctionConfig("m", "app.ok", HANDLERS, 4096, managed_instances=True)
    assert (fn.log_format, fn.max_concurrency) == ("JSON", 32)  # 16 per vCPU, 2 GB per vCPU
