"""Provisioned concurrency: environments initialised ahead, spillover to on-demand."""

from __future__ import annotations

import json
import math
import threading

from .conftest import function, wait_for


def test_provisioned_environment_is_ready_before_the_first_invoke(make_emulator, recording):
    fn = function("envy", "app.env", recording=recording, provisioned_concurrency=1)
    emu = make_emulator([fn])
    (env,) = emu.environments("envy")
    assert env.initialization_type == "provisioned-concurrency" and env.state == "idle"
    init = wait_for(lambda: recording.platform("platform.initReport"), what="the init report")
    assert init[0]["initializationType"] == "provisioned-concurrency"
    assert recording.platform("platform.start") == []  # nothing was invoked yet

    result = emu.invoke("envy", b'{"names": ["AWS_LAMBDA_INITIALIZATION_TYPE"]}')
    assert json.loads(result.payload) == {
        "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"
    }
    metrics = recording.report_for(result.request_id)["metrics"]
    assert "initDurationMs" not in metrics  # the init was not part of this invocation
    assert metrics["billedDurationMs"] == math.ceil(metrics["durationMs"])
    assert emu.spillover.get("envy", 0) == 0


def test_invocations_beyond_provisioned_concurrency_spill_over(make_emulator):
    emu = make_emulator([function("pid", "app.pid", provisioned_concurrency=1, timeout_s=3.0)])
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(emu.invoke("pid", b'{"sleep_s": 0.3}')), daemon=True
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 2 and all(r.function_error is None for r in results)
    assert emu.spillover["pid"] == 1
    kinds = sorted(env.initialization_type for env in emu.environments("pid"))
    assert kinds == ["on-demand", "provisioned-concurrency"]


def test_a_provisioned_environment_lost_to_a_timeout_is_replaced(make_emulator):
    emu = make_emulator([function("slow", "app.sleepy", provisioned_concurrency=1)])
    (first,) = emu.environments("slow")
    result = emu.invoke("slow", b'{"sleep_s": 5}')
    assert json.loads(result.payload)["errorType"] == "Sandbox.Timedout"
    replacement = wait_for(
        lambda: [
            e
            for e in emu.environments("slow")
            if e is not first
            and e.initialization_type == "provisioned-concurrency"
            and e.state == "idle"
        ],
        10,
        "a new provisioned environment",
    )
    assert replacement
    again = emu.invoke("slow", b'{"sleep_s": 0}')
    assert again.function_error is None
    assert emu.spillover.get("slow", 0) == 0
