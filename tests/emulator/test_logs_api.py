"""The Logs API (`PUT /2020-08-15/logs`) as an extension written for it sees it."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from lambdascope.emulator import FunctionConfig

from .conftest import FIXTURES, HANDLERS, Recording, wait_for

LOGS_LAYER = FIXTURES / "logs_layer"


def logs_function(name: str, handler: str, recording: Recording, **env: str) -> FunctionConfig:
    return FunctionConfig(
        name=name,
        handler=handler,
        code_dir=HANDLERS,
        layers=(LOGS_LAYER,),
        environment={"LOGS_OUT": str(recording.path), **env},
        timeout_s=1.0,
    )


def invoke(emu, name: str, payload: bytes = b"{}") -> dict[str, Any]:
    client = boto3.client(
        "lambda",
        endpoint_url=emu.invoke_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )
    return client.invoke(FunctionName=name, Payload=payload)


def records(recording: Recording) -> list[dict[str, Any]]:
    return [x["record"] for x in recording.lines() if x["kind"] == "log"]


def subscribes(recording: Recording) -> dict[str, dict[str, Any]]:
    return {x["what"]: x for x in recording.lines() if x["kind"] == "subscribe"}


def for_request(recording: Recording, request_id: str, last_type: str) -> list[dict[str, Any]]:
    """The platform records of one invocation, once its `last_type` arrived."""

    def mine() -> list[dict[str, Any]]:
        found = [
            r
            for r in records(recording)
            if r["type"].startswith("platform.")
            and (
                isinstance(r["record"], dict)
                and r["record"].get("requestId") == request_id
                or isinstance(r["record"], str)
                and request_id in r["record"]
            )
        ]
        return found if any(r["type"] == last_type for r in found) else []

    return wait_for(mine, 5, f"{last_type} of {request_id}")


def test_logs_api_extension_gets_lambdas_logs_api_records(make_emulator, recording):
    emu = make_emulator([logs_function("talk", "app.prints", recording)])
    first = invoke(emu, "talk", b'{"n": 1}')["ResponseMetadata"]["RequestId"]
    invoke(emu, "talk", b'{"n": 2}')  # the first report arrives during the second invocation
    mine = for_request(recording, first, "platform.report")
    assert [r["type"] for r in mine] == [
        "platform.start",
        "platform.runtimeDone",
        "platform.end",
        "platform.report",
    ]
    start, done, end, report = (r["record"] for r in mine)
    assert start == {"requestId": first, "version": "$LATEST"}
    assert done == {"requestId": first, "status": "success"}
    assert end == {"requestId": first}
    assert set(report) == {"requestId", "metrics"}
    assert {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"} <= set(
        report["metrics"]
    )
    assert "initDurationMs" in report["metrics"]  # a cold start
    everything = records(recording)
    types = [r["type"] for r in everything]
    assert types[0] == "platform.logsSubscription"
    assert everything[0]["record"] == {
        "name": "logs-recorder",
        "state": "Subscribed",
        "types": ["platform", "function", "extension"],
    }
    assert {"name": "logs-recorder", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]} in [
        r["record"] for r in everything if r["type"] == "platform.extension"
    ]
    # Telemetry API only: never sent on the Logs API.
    assert not {
        "platform.initStart",
        "platform.initReport",
        "platform.telemetrySubscription",
    } & set(types)
    functions = [r["record"] for r in everything if r["type"] == "function"]
    assert "hello from print\n" in functions
    assert all(isinstance(r, str) for r in functions)
    assert any(
        r["type"] == "extension" and "logs-recorder ready" in r["record"] for r in everything
    )
    log = emu.logs.lines("talk")
    assert (
        "LOGS\tName: logs-recorder\tState: Subscribed\tTypes: [Platform, Function, Extension]\n"
        in log
    )


def test_logs_api_subscribe_answers_as_lambda(make_emulator, recording):
    emu = make_emulator([logs_function("ok", "app.ok", recording)])
    invoke(emu, "ok")
    calls = wait_for(
        lambda: (found := subscribes(recording)) and "after init" in found and found,
        5,
        "the subscribe calls",
    )
    assert calls["invalid"]["status"] == 400
    assert calls["invalid"]["body"]["errorType"] == "Logs.ValidationError"
    assert "maxItems" in calls["invalid"]["body"]["errorMessage"]
    assert (calls["subscribe"]["status"], calls["subscribe"]["body"]) == (200, "OK")
    # Idempotent: the same subscription again changes nothing.
    assert (calls["again"]["status"], calls["again"]["body"]) == (200, "OK")
    # Delivered with the next buffer flush: wait for it, then check it came once.
    wait_for(
        lambda: "platform.logsSubscription" in [r["type"] for r in records(recording)],
        5,
        "the platform.logsSubscription record",
    )
    assert [r["type"] for r in records(recording)].count("platform.logsSubscription") == 1
    assert calls["other api"]["status"] == 400
    assert "Logs API" in calls["other api"]["body"]["errorMessage"]
    assert calls["after init"]["status"] == 403
    assert calls["after init"]["body"] == {
        "errorType": "Logs.SubscriptionClosed",
        "errorMessage": "Logs API subscription is closed already",
    }


def test_an_extension_on_the_telemetry_api_cannot_subscribe_to_the_logs_api(
    make_emulator, recording
):
    emu = make_emulator([logs_function("ok", "app.ok", recording, LOGS_TELEMETRY_FIRST="1")])
    invoke(emu, "ok")
    calls = wait_for(
        lambda: (found := subscribes(recording)) and "other api" in found and found,
        5,
        "the subscribe calls",
    )
    assert calls["first"]["status"] == 200
    assert calls["subscribe"]["status"] == 400
    assert calls["subscribe"]["body"]["errorType"] == "Logs.ValidationError"
    assert "Telemetry API" in calls["subscribe"]["body"]["errorMessage"]


def test_logs_api_schema_2020_08_15_has_no_runtime_done(make_emulator, recording):
    emu = make_emulator([logs_function("ok", "app.ok", recording, LOGS_SCHEMA="2020-08-15")])
    first = invoke(emu, "ok")["ResponseMetadata"]["RequestId"]
    invoke(emu, "ok")
    mine = for_request(recording, first, "platform.report")
    assert [r["type"] for r in mine] == ["platform.start", "platform.end", "platform.report"]


def test_logs_api_reports_a_timeout_as_a_fault_and_a_handler_error_as_failure(
    make_emulator, recording
):
    emu = make_emulator(
        [
            logs_function("slow", "app.sleepy", recording),
            logs_function("bad", "app.raises", recording),
        ]
    )
    slow = invoke(emu, "slow", b'{"sleep_s": 5}')["ResponseMetadata"]["RequestId"]
    mine = for_request(recording, slow, "platform.report")
    by_type = {r["type"]: r["record"] for r in mine}
    assert by_type["platform.runtimeDone"] == {"requestId": slow, "status": "timeout"}
    assert by_type["platform.fault"] == (
        f"RequestId: {slow} Error: Task timed out after 1.00 seconds"
    )
    assert [r["type"] for r in mine][-3:] == ["platform.fault", "platform.end", "platform.report"]
    bad = invoke(emu, "bad")["ResponseMetadata"]["RequestId"]
    invoke(emu, "bad")
    mine = for_request(recording, bad, "platform.report")
    by_type = {r["type"]: r["record"] for r in mine}
    assert by_type["platform.runtimeDone"] == {"requestId": bad, "status": "failure"}
    assert "platform.fault" not in by_type
