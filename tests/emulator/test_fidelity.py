"""Behaviours where AWS's own clients (boto3, awslambdaric, an extension) saw the emulator
differ from Lambda, each checked with the client that saw it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdascope.emulator.invoke_result import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT

from .conftest import function, wait_for


def lambda_client(emu):
    return boto3.client(
        "lambda",
        endpoint_url=emu.invoke_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


@pytest.fixture
def emu(make_emulator):
    return make_emulator([function("ok", "app.ok"), function("bad", "app.raises")])


@pytest.fixture
def client(emu):
    return lambda_client(emu)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _tail(response) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def test_init_duration_after_a_reset_excludes_the_old_environments_shutdown(
    make_emulator, recording
):
    """The replaced environment's shutdown (its extension's SHUTDOWN included) is over before
    the new one's init clock starts: initStart comes after it, Init Duration excludes it."""
    emu = make_emulator([function("slow", "app.sleepy", recording=recording, timeout_s=1.0)])
    client = lambda_client(emu)
    timed_out = client.invoke(FunctionName="slow", Payload=b'{"sleep_s": 5}')
    assert timed_out["FunctionError"] == "Unhandled"
    response = client.invoke(FunctionName="slow", Payload=b'{"sleep_s": 0}', LogType="Tail")
    assert "FunctionError" not in response
    exits = wait_for(
        lambda: [x["t"] for x in recording.lines() if x["kind"] == "exit"], 5, "the old exit"
    )
    starts = wait_for(
        lambda: recording.platform("platform.initStart")[1:] and recording.telemetry(),
        5,
        "the second initStart",
    )
    second_init = [e for e in starts if e["type"] == "platform.initStart"][1]
    # iso times have millisecond precision
    assert _epoch(second_init["time"]) >= exits[0] - 0.001
    init_ms = float(re.search(r"Init Duration: ([\d.]+) ms", _tail(response)).group(1))
    cold_ms = recording.platform("platform.initReport")[0]["metrics"]["durationMs"]
    # The extension's SHUTDOWN and the runtime's kill took hundreds of ms; a clean cold init
    # of the same function is the yardstick.
    assert init_ms < cold_ms + 500


def test_sync_payload_over_6_mb_is_request_entity_too_large(client):
    payload = b'"' + b"x" * SYNC_PAYLOAD_LIMIT + b'"'
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="ok", Payload=payload)
    error = caught.value.response
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Message"] == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    )


def test_async_payload_limit_is_1_mb(client, emu):
    assert ASYNC_PAYLOAD_LIMIT == 1024 * 1024
    fits = b'"' + b"x" * (ASYNC_PAYLOAD_LIMIT - 2) + b'"'
    assert (
        client.invoke(FunctionName="ok", InvocationType="Event", Payload=fits)["StatusCode"] == 202
    )
    over = b'"' + b"x" * (ASYNC_PAYLOAD_LIMIT - 1) + b'"'
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="ok", InvocationType="Event", Payload=over)
    error = caught.value.response
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Message"] == (
        f"{len(over)} byte payload is too large for the Event invocation type (limit 1048576 bytes)"
    )


@pytest.mark.parametrize(
    "name",
    [
        "ok",
        "ok:$LATEST",
        "000000000000:function:ok",
        "000000000000:function:ok:$LATEST",
        "arn:aws:lambda:us-east-1:000000000000:function:ok",
        "arn:aws:lambda:us-east-1:000000000000:function:ok:$LATEST",
    ],
)
def test_function_name_partial_arn_and_full_arn_all_resolve(client, name):
    response = client.invoke(FunctionName=name, Payload=b'{"a": 1}')
    assert response["StatusCode"] == 200
    assert json.loads(response["Payload"].read())["echo"] == {"a": 1}


def test_another_regions_arn_is_not_reachable_from_this_region(client):
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.invoke(FunctionName="arn:aws:lambda:eu-west-1:000000000000:function:ok")
    assert caught.value.response["Error"]["Message"] == (
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    )


def test_another_accounts_function_is_access_denied(client):
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="123456789012:function:ok")
    error = caught.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "arn:aws:lambda:us-east-1:123456789012:function:ok" in error["Error"]["Message"]


def test_function_not_found_body_says_Message_with_type_header(client, emu):
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.invoke(FunctionName="nope", Payload=b"{}")
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == (
        "ResourceNotFoundException"
    )
    assert response["Type"] == "User"
    assert (
        response["Message"]
        == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"
    )
    assert "message" not in response


def test_tail_keeps_a_multi_line_error_record_apart_from_the_end_line(client):
    response = client.invoke(FunctionName="bad", Payload=b'{"why": "tail"}', LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    request_id = response["ResponseMetadata"]["RequestId"]
    lines = _tail(response).splitlines()
    end = lines.index(f"END RequestId: {request_id}")
    assert lines[end - 1].strip().startswith("raise ValueError(")
    assert lines[end + 1].startswith(f"REPORT RequestId: {request_id}\t")


def test_init_start_names_the_runtime_version_arn(make_emulator, recording):
    emu = make_emulator([function("ok", "app.ok", recording=recording)])
    lambda_client(emu).invoke(FunctionName="ok", Payload=b"{}")
    record = wait_for(lambda: recording.platform("platform.initStart"), 5, "initStart")[0]
    arn = record["runtimeVersionArn"]
    assert re.fullmatch(r"arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}", arn)
    assert arn.endswith(hashlib.sha256(record["runtimeVersion"].encode()).hexdigest())
    init_start = emu.logs.lines("ok")[0]
    assert init_start == (
        f"INIT_START Runtime Version: {record['runtimeVersion']}\tRuntime Version ARN: {arn}\n"
    )


def test_runtime_done_status_is_error_for_a_handler_exception(make_emulator, recording):
    emu = make_emulator([function("bad", "app.raises", recording=recording)])
    response = lambda_client(emu).invoke(FunctionName="bad", Payload=b"{}")
    request_id = response["ResponseMetadata"]["RequestId"]

    def done():
        found = [
            r for r in recording.platform("platform.runtimeDone") if r["requestId"] == request_id
        ]
        return found[0] if found else None

    record = wait_for(done, 5, "runtimeDone")
    assert (record["status"], record["errorType"]) == ("error", "ValueError")
