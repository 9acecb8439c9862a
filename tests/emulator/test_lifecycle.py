"""The environment's lifecycle with real processes: awslambdaric as the runtime and the
recording extension, checked against Lambda's event order and fields."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import threading
import time

from lambdascope.emulator import Emulator

from .conftest import Recording, function, wait_for

PLATFORM_INIT = [
    "platform.initStart",
    "platform.telemetrySubscription",
    "platform.initRuntimeDone",
    "platform.extension",
    "platform.initReport",
]
PER_INVOCATION = ["platform.start", "platform.runtimeDone", "platform.report"]


def platform_types(recording: Recording) -> list[str]:
    return [t for t in recording.types() if t.startswith("platform.")]


def test_cold_then_warm_start_follow_lambdas_order_and_billing(make_emulator, recording):
    emu = make_emulator([function("ok", "app.ok", recording=recording)])
    first = emu.invoke("ok", b'{"n": 1}')
    second = emu.invoke("ok", b'{"n": 2}')

    assert first.status_code == 200 and first.function_error is None
    assert json.loads(first.payload)["echo"] == {"n": 1}
    assert json.loads(second.payload)["count"] == 2  # same runtime process: a warm start
    assert json.loads(second.payload)["request_id"] == second.request_id

    cold = recording.report_for(first.request_id)["metrics"]
    warm = recording.report_for(second.request_id)["metrics"]
    assert cold["initDurationMs"] > 0
    assert "initDurationMs" not in warm
    assert cold["billedDurationMs"] == math.ceil(cold["durationMs"] + cold["initDurationMs"])
    assert warm["billedDurationMs"] == math.ceil(warm["durationMs"])
    for metrics in (cold, warm):
        assert metrics["memorySizeMB"] == 128
        assert 5 <= metrics["maxMemoryUsedMB"] < 128  # measured from /proc, not made up

    assert platform_types(recording) == PLATFORM_INIT + PER_INVOCATION * 2
    init_start = recording.platform("platform.initStart")[0]
    assert init_start["initializationType"] == "on-demand"
    assert init_start["phase"] == "init"
    assert init_start["functionName"] == "ok"
    assert init_start["instanceMaxMemory"] == 128 * 1024 * 1024
    assert recording.platform("platform.extension")[0] == {
        "name": "recorder",
        "state": "Ready",
        "events": ["INVOKE", "SHUTDOWN"],
    }
    subscription = recording.platform("platform.telemetrySubscription")[0]
    assert subscription["types"] == ["platform", "function", "extension"]

    done = recording.platform("platform.runtimeDone")[1]
    assert done["status"] == "success"
    assert [s["name"] for s in done["spans"]] == [
        "responseLatency",
        "responseDuration",
        "runtimeOverhead",
    ]
    start = recording.platform("platform.start")[0]
    assert start["functionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:ok"

    invokes = [e for e in recording.extension_events() if e["eventType"] == "INVOKE"]
    assert [e["requestId"] for e in invokes] == [first.request_id, second.request_id]
    assert invokes[0]["invokedFunctionArn"].endswith(":function:ok")
    assert invokes[0]["tracing"]["value"].startswith("Root=1-")
    received = [x["t"] for x in recording.lines() if x["kind"] == "event"][0]
    # deadlineMs is the invocation start plus the 1 s timeout
    assert 0.2 < invokes[0]["deadlineMs"] / 1000 - received <= 1.0


def test_runtime_and_extensions_see_lambdas_environment_variables(make_emulator, recording):
    emu = make_emulator(
        [function("envy", "app.env", recording=recording, environment={"MY_SETTING": "on"})]
    )
    names = [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_LOG_FORMAT",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "TZ",
        "_X_AMZN_TRACE_ID",
        "MY_SETTING",
    ]
    result = emu.invoke("envy", json.dumps({"names": names}).encode())
    seen = json.loads(result.payload)
    assert seen["AWS_LAMBDA_FUNCTION_NAME"] == "envy"
    assert seen["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert seen["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert seen["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert seen["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/envy"
    assert re.fullmatch(
        r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", seen["AWS_LAMBDA_LOG_STREAM_NAME"]
    )
    assert seen["AWS_LAMBDA_LOG_FORMAT"] == "Text"
    assert seen["AWS_REGION"] == seen["AWS_DEFAULT_REGION"] == "us-east-1"
    assert seen["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert seen["_HANDLER"] == "app.env"
    assert seen["TZ"] == ":UTC"
    assert seen["MY_SETTING"] == "on"
    assert seen["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    host, port = seen["AWS_LAMBDA_RUNTIME_API"].split(":")
    assert host.startswith("127.") and host != "127.0.0.1"  # the environment's own address
    assert port == "9001" or int(port) > 0

    start = wait_for(lambda: [x for x in recording.lines() if x["kind"] == "start"], what="start")
    ext_env = start[0]["env"]
    assert ext_env["AWS_LAMBDA_RUNTIME_API"] == seen["AWS_LAMBDA_RUNTIME_API"]
    assert ext_env["AWS_LAMBDA_FUNCTION_NAME"] == "envy"
    assert ext_env["MY_SETTING"] == "on"
    for runtime_only in ("_HANDLER", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_LOG_STREAM_NAME"):
        assert runtime_only not in ext_env


def test_timeout_kills_runtime_reports_timeout_and_next_invoke_is_cold(make_emulator, recording):
    emu = make_emulator([function("slow", "app.sleepy", recording=recording)])
    started = time.monotonic()
    result = emu.invoke("slow", b'{"sleep_s": 5}')
    elapsed = time.monotonic() - started

    assert 0.9 <= elapsed < 2.5
    assert result.status_code == 200 and result.function_error == "Unhandled"
    assert json.loads(result.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
    }
    report = recording.report_for(result.request_id)
    assert report["status"] == "timeout"
    done = [r for r in recording.platform("platform.runtimeDone")]
    assert done[-1]["status"] == "timeout" and done[-1]["requestId"] == result.request_id
    lines = [e["record"] for e in recording.telemetry() if e["type"] == "function"]
    pattern = (
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
        + re.escape(result.request_id)
        + r" Task timed out after 1\.00 seconds\n"
    )
    assert any(re.fullmatch(pattern, line) for line in lines)
    wait_for(
        lambda: any(e.get("shutdownReason") == "timeout" for e in recording.extension_events()),
        what="SHUTDOWN with reason timeout",
    )
    # the report reached the extension before SHUTDOWN did
    kinds = [
        ("report", x["t"])
        if x["kind"] == "telemetry" and x["event"]["type"] == "platform.report"
        else (x["kind"], x["t"])
        for x in recording.lines()
    ]
    order = [k for k, _ in kinds if k in ("report", "event")]
    assert order.index("report") < len(order) - 1 and order[-1] == "event"

    again = emu.invoke("slow", b'{"sleep_s": 0}')
    assert again.function_error is None
    assert "initDurationMs" in recording.report_for(again.request_id)["metrics"]


def test_handler_error_is_unhandled_and_environment_stays_warm(make_emulator, recording):
    emu = make_emulator([function("bad", "app.raises", recording=recording)])
    result = emu.invoke("bad", b'{"why": "tests"}')
    assert result.status_code == 200 and result.function_error == "Unhandled"
    body = json.loads(result.payload)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom: tests"
    assert body["stackTrace"]

    report = recording.report_for(result.request_id)
    assert report["status"] == "error" and report["errorType"] == "ValueError"
    done = recording.platform("platform.runtimeDone")[0]
    assert done["status"] == "error" and done["errorType"] == "ValueError"
    lines = [e["record"] for e in recording.telemetry() if e["type"] == "function"]
    error_lines = [line for line in lines if line.startswith("[ERROR] ValueError: boom: tests")]
    # awslambdaric frames its records (_LAMBDA_TELEMETRY_LOG_FD): the traceback is one record
    assert len(error_lines) == 1 and "\nTraceback (most recent call last):\n" in error_lines[0]

    again = emu.invoke("bad", b"{}")
    assert "initDurationMs" not in recording.report_for(again.request_id)["metrics"]


def test_import_error_fails_init_and_the_next_invoke_reinitialises(make_emulator, recording):
    emu = make_emulator([function("broken", "broken.handler", recording=recording)])
    result = emu.invoke("broken", b"{}")
    assert result.status_code == 200 and result.function_error == "Unhandled"
    body = json.loads(result.payload)
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "a_module_that_does_not_exist" in body["errorMessage"]

    report = recording.report_for(result.request_id)
    assert report["status"] == "error" and report["errorType"] == "Runtime.ImportModuleError"
    runtime_done = recording.platform("platform.initRuntimeDone")[0]
    assert runtime_done["status"] == "error"
    assert runtime_done["errorType"] == "Runtime.ImportModuleError"
    init_report = recording.platform("platform.initReport")[0]
    assert init_report["status"] == "error"
    assert init_report["errorType"] == "Runtime.ImportModuleError"

    second = emu.invoke("broken", b"{}")
    assert json.loads(second.payload)["errorType"] == "Runtime.ImportModuleError"
    # Each invocation got a fresh environment: its init, then the retry inside the invocation
    # (suppressed init, phase "invoke"), both failing.
    phases = wait_for(
        lambda: (
            [r["phase"] for r in recording.platform("platform.initStart")]
            if len(recording.platform("platform.initStart")) == 4
            else None
        ),
        what="a second environment's init",
    )
    assert phases == ["init", "invoke", "init", "invoke"]


def test_report_comes_only_after_extensions_call_next(make_emulator, recording):
    fn = function(
        "ok", "app.ok", recording=recording, environment={"RECORDER_DELAY_S": "0.4"}, timeout_s=2.0
    )
    emu = make_emulator([fn])
    emu.invoke("ok", b"{}")  # cold start, out of the way
    recording.report_for(emu.invoke("ok", b"{}").request_id)  # wait until the env is idle
    started = time.monotonic()
    result = emu.invoke("ok", b"{}")
    answered_after = time.monotonic() - started

    assert answered_after < 0.35  # the caller does not wait for the extension
    report = recording.report_for(result.request_id)
    done = [
        r for r in recording.platform("platform.runtimeDone") if r["requestId"] == result.request_id
    ]
    assert report["metrics"]["durationMs"] >= 400
    assert done[0]["metrics"]["durationMs"] < 300


def test_function_log_lines_become_function_records_in_order(make_emulator, recording):
    emu = make_emulator([function("talk", "app.prints", recording=recording)])
    result = emu.invoke("talk", b'{"n": 3}')
    recording.report_for(result.request_id)
    events = recording.telemetry()
    kinds = [(e["type"], e["record"]) for e in events]
    start = next(i for i, (t, r) in enumerate(kinds) if t == "platform.start")
    done = next(i for i, (t, r) in enumerate(kinds) if t == "platform.runtimeDone")
    inside = [r for t, r in kinds[start:done] if t == "function"]
    # print() (stdout) and logging (framed descriptor) are two pipes, as in Lambda: both lines
    # land inside the invocation window, in either order.
    assert len(inside) == 2 and "hello from print\n" in inside
    logged = next(r for r in inside if r != "hello from print\n")
    assert re.fullmatch(
        r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t"
        + re.escape(result.request_id)
        + r"\thello from logging 3\n",
        logged,
    )
    extension_lines = [r for t, r in kinds if t == "extension"]
    assert any(line.startswith("recorder subscribed on port") for line in extension_lines)


def test_json_log_format_passes_objects(make_emulator, recording):
    emu = make_emulator([function("talk", "app.prints", recording=recording, log_format="JSON")])
    result = emu.invoke("talk", b'{"n": 4}')
    recording.report_for(result.request_id)
    records = [e["record"] for e in recording.telemetry() if e["type"] == "function"]
    objects = [r for r in records if isinstance(r, dict)]
    assert any(
        o["level"] == "INFO"
        and o["message"] == "hello from logging 4"
        and o["requestId"] == result.request_id
        for o in objects
    )


def test_runtime_killed_from_outside_is_an_exit_error_and_env_is_replaced(make_emulator, recording):
    emu = make_emulator([function("pid", "app.pid", recording=recording, timeout_s=3.0)])
    first_pid = json.loads(emu.invoke("pid", b"{}").payload)["pid"]
    results = []
    worker = threading.Thread(
        target=lambda: results.append(emu.invoke("pid", b'{"sleep_s": 2}')), daemon=True
    )
    worker.start()
    wait_for(lambda: len(recording.platform("platform.start")) == 2, what="second start")
    os.kill(first_pid, signal.SIGKILL)
    worker.join(5)
    assert results, "the invocation did not return"
    body = json.loads(results[0].payload)
    assert results[0].function_error == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Runtime exited with error: signal: killed")
    report = recording.report_for(results[0].request_id)
    assert report["status"] == "error" and report["errorType"] == "Runtime.ExitError"

    after = emu.invoke("pid", b"{}")
    assert json.loads(after.payload)["pid"] != first_pid
    assert "initDurationMs" in recording.report_for(after.request_id)["metrics"]


def test_idle_runtime_killed_from_outside_is_replaced(make_emulator):
    emu = make_emulator([function("pid", "app.pid")])
    first_pid = json.loads(emu.invoke("pid", b"{}").payload)["pid"]
    os.kill(first_pid, signal.SIGKILL)
    wait_for(lambda: not emu.environments("pid"), what="the dead environment to go")
    after = emu.invoke("pid", b"{}")
    assert after.function_error is None
    assert json.loads(after.payload)["pid"] != first_pid


def test_extension_that_never_calls_next_is_bounded_by_the_timeout(make_emulator, recording):
    fn = function(
        "ok", "app.ok", recording=recording, environment={"RECORDER_NEVER_NEXT": "1"}, timeout_s=2
    )
    emu = make_emulator([fn])
    started = time.monotonic()
    result = emu.invoke("ok", b"{}")
    assert result.function_error is None  # the runtime answered: the caller is served
    assert time.monotonic() - started < 2.0  # before the deadline the extension runs into
    report = recording.report_for(result.request_id, timeout_s=5)
    assert report["status"] == "timeout"
    again = emu.invoke("ok", b"{}")
    assert again.function_error is None
    assert json.loads(again.payload)["count"] == 1  # a fresh environment


def test_concurrent_invocations_get_separate_environments(make_emulator):
    emu = make_emulator([function("pid", "app.pid")])
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
    pids = {json.loads(r.payload)["pid"] for r in results}
    assert len(results) == 2 and len(pids) == 2
    addresses = {env.address for env in emu.environments("pid")}
    assert len(addresses) == 2


def test_idle_environments_spin_down_after_keep_warm(make_emulator, recording):
    emu = make_emulator([function("ok", "app.ok", recording=recording)], keep_warm_s=0.3)
    emu.invoke("ok", b"{}")
    wait_for(
        lambda: any(e.get("shutdownReason") == "spindown" for e in recording.extension_events()),
        what="SHUTDOWN spindown",
    )
    wait_for(lambda: not emu.environments("ok"), what="the pool to drop it")
    again = emu.invoke("ok", b"{}")
    assert json.loads(again.payload)["count"] == 1


def test_stop_sends_spindown_and_leaves_no_process(recording):
    emu = Emulator([function("ok", "app.ok", recording=recording)]).start()
    try:
        emu.invoke("ok", b"{}")
        pids = [pid for env in emu.environments("ok") for pid in env.pids()]
        assert len(pids) == 2  # the runtime and the recorder
    finally:
        started = time.monotonic()
        emu.stop()
        emu.stop()  # idempotent
    assert time.monotonic() - started < 4
    assert any(e.get("shutdownReason") == "spindown" for e in recording.extension_events())
    assert any(x["kind"] == "exit" for x in recording.lines())
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} survived stop()"


def test_stop_during_an_invocation_answers_the_caller_and_kills_everything(recording):
    emu = Emulator([function("slow", "app.sleepy", recording=recording, timeout_s=5.0)]).start()
    results = []
    worker = threading.Thread(
        target=lambda: results.append(emu.invoke("slow", b'{"sleep_s": 4}')), daemon=True
    )
    try:
        worker.start()
        wait_for(lambda: recording.platform("platform.start"), what="the invocation to start")
        pids = [pid for env in emu.environments("slow") for pid in env.pids()]
    finally:
        started = time.monotonic()
        emu.stop()
    worker.join(5)
    assert time.monotonic() - started < 4.5
    assert results and results[0].function_error == "Unhandled"
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} survived stop()"
    assert emu.invoke("slow", b"{}").status_code == 503


def test_stop_right_after_an_invocation_delivers_its_report_before_shutdown(recording):
    fn = function("ok", "app.ok", recording=recording, environment={"RECORDER_DELAY_S": "0.3"})
    emu = Emulator([fn]).start()
    try:
        result = emu.invoke("ok", b"{}")  # answered while the extension still works on it
    finally:
        emu.stop()
    order = [
        ("report", x["event"]["record"]["requestId"])
        if x["kind"] == "telemetry" and x["event"]["type"] == "platform.report"
        else (x["kind"], x.get("event", {}).get("eventType"))
        for x in recording.lines()
        if x["kind"] in ("event", "telemetry")
    ]
    assert ("report", result.request_id) in order
    assert order.index(("report", result.request_id)) < order.index(("event", "SHUTDOWN"))
    assert recording.report_for(result.request_id)["status"] == "success"


def test_slow_module_init_shows_in_init_duration_and_billing(make_emulator, recording):
    emu = make_emulator([function("slowinit", "slow_init.handler", recording=recording)])
    result = emu.invoke("slowinit", b"{}")
    assert json.loads(result.payload) == {"slow_init": True}
    metrics = recording.report_for(result.request_id)["metrics"]
    assert metrics["initDurationMs"] >= 500  # the module sleeps 0.5 s at import
    assert metrics["billedDurationMs"] >= 500 + math.floor(metrics["durationMs"])
    init_report = recording.platform("platform.initReport")[0]
    assert init_report["metrics"]["durationMs"] >= 500
