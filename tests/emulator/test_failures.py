"""Memory, crashing extensions, account concurrency and async retries."""

from __future__ import annotations

import json
import threading
import time

from lambdascope.emulator import Emulator

from .conftest import FIXTURES, Recording, function, wait_for


def test_out_of_memory_kills_the_runtime_like_lambda(make_emulator, recording):
    emu = make_emulator([function("hog", "app.memory_hog", recording=recording, timeout_s=5.0)])
    result = emu.invoke("hog", b'{"mb": 400}')
    assert result.function_error == "Unhandled"
    body = json.loads(result.payload)
    assert body["errorType"] == "Runtime.OutOfMemory"
    message = f"RequestId: {result.request_id} Error: Runtime exited with error: signal: killed"
    assert body["errorMessage"] == message

    report = recording.report_for(result.request_id)
    assert report["status"] == "error" and report["errorType"] == "Runtime.OutOfMemory"
    assert report["metrics"]["maxMemoryUsedMB"] == 128
    lines = [e["record"] for e in recording.telemetry() if e["type"] == "function"]
    assert message + "\n" in lines
    wait_for(
        lambda: any(e.get("shutdownReason") == "failure" for e in recording.extension_events()),
        what="SHUTDOWN failure",
    )
    again = emu.invoke("hog", b'{"mb": 1}')
    assert again.function_error is None
    assert "initDurationMs" in recording.report_for(again.request_id)["metrics"]


def test_extension_crashing_during_init_fails_the_init(make_emulator):
    fn = function("ok", "app.ok")
    fn = type(fn)(**{**fn.__dict__, "layers": (FIXTURES / "crasher_layer",)})
    emu = make_emulator([fn])
    result = emu.invoke("ok", b"{}")
    assert result.function_error == "Unhandled"
    body = json.loads(result.payload)
    assert body["errorType"] == "Extension.Crash"
    assert body["errorMessage"] == (
        "extension crasher exited with status 3 during init; its last output: crasher: cannot start"
    )


def test_account_concurrency_limit_throttles_every_function(make_emulator):
    emu = make_emulator(
        [function("a", "app.pid", timeout_s=3.0), function("b", "app.ok")], account_concurrency=1
    )
    busy = threading.Thread(target=lambda: emu.invoke("a", b'{"sleep_s": 1}'), daemon=True)
    busy.start()
    wait_for(lambda: emu.environments("a"), what="a busy environment")
    throttled = emu.invoke("b", b"{}")
    busy.join(5)
    assert throttled.status_code == 429
    assert throttled.error_type == "TooManyRequestsException"
    assert json.loads(throttled.payload)["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert throttled.retry_after_s is not None


def test_async_function_errors_are_retried_twice_then_dropped(make_emulator, recording):
    emu: Emulator = make_emulator(
        [function("bad", "app.raises", recording=recording)], async_retry_delays_s=(0.05, 0.05)
    )
    accepted = emu.invoke("bad", b"{}", invocation_type="Event")
    assert accepted.status_code == 202 and accepted.payload == b""
    wait_for(lambda: accepted.request_id in emu.async_dropped, 10, "the event to be dropped")
    assert emu.async_attempts[accepted.request_id] == 3
    starts = wait_for(
        lambda: (
            [r["requestId"] for r in recording.platform("platform.start")][2:]
            and [r["requestId"] for r in recording.platform("platform.start")]
        ),
        what="three starts",
    )
    assert starts == [accepted.request_id] * 3  # retries keep the request id


def test_async_success_runs_once(make_emulator, recording: Recording):
    emu = make_emulator([function("ok", "app.ok", recording=recording)])
    accepted = emu.invoke("ok", b'{"x": 1}', invocation_type="Event")
    report = recording.report_for(accepted.request_id)
    assert report["status"] == "success"
    assert emu.async_attempts[accepted.request_id] == 1


def test_an_extension_that_never_finishes_init_is_bounded_by_the_init_limit(
    make_emulator, recording, monkeypatch
):
    from lambdascope.emulator import environment

    monkeypatch.setattr(environment, "INIT_TIMEOUT_S", 1.0)  # Lambda's is 10 s
    fn = function("ok", "app.ok", recording=recording, environment={"RECORDER_HANG_IN_INIT": "1"})
    emu = make_emulator([fn])
    started = time.monotonic()
    result = emu.invoke("ok", b"{}")
    assert 0.9 < time.monotonic() - started < 3
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "Sandbox.Timedout"
    init_report = wait_for(lambda: recording.platform("platform.initReport"), what="initReport")
    assert init_report[0]["status"] == "timeout"


def test_a_response_over_6_mb_is_refused_like_lambda(make_emulator, recording):
    emu = make_emulator([function("huge", "app.huge", recording=recording, timeout_s=3.0)])
    result = emu.invoke("huge", b"{}")
    assert result.function_error == "Unhandled"
    body = json.loads(result.payload)
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size (6291456 bytes)" in body["errorMessage"]
    report = recording.report_for(result.request_id)
    assert report["status"] == "error"
    assert report["errorType"] == "Function.ResponseSizeTooLarge"
