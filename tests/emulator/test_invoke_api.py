"""The Invoke API as boto3 sees it."""

from __future__ import annotations

import base64
import json
import threading

import boto3
import pytest
from botocore.config import Config

from .conftest import function, wait_for


@pytest.fixture
def emu(make_emulator):
    return make_emulator(
        [
            function("ok", "app.ok"),
            function("talk", "app.prints"),
            function("bad", "app.raises"),
            function("pid", "app.pid", reserved_concurrency=1, timeout_s=3.0),
        ]
    )


@pytest.fixture
def client(emu):
    return boto3.client(
        "lambda",
        endpoint_url=emu.invoke_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


def test_request_response_returns_payload_and_executed_version(client):
    response = client.invoke(FunctionName="ok", Payload=b'{"a": 1}')
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read())["echo"] == {"a": 1}


def test_function_arn_and_qualifier_resolve(client):
    arn = "arn:aws:lambda:us-east-1:000000000000:function:ok"
    assert client.invoke(FunctionName=arn, Payload=b"{}")["StatusCode"] == 200
    assert client.invoke(FunctionName="ok", Qualifier="$LATEST")["StatusCode"] == 200


def test_unknown_function_is_resource_not_found(client):
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.invoke(FunctionName="nope", Payload=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:nope" in caught.value.response["Error"]["Message"]


def test_invalid_json_payload_is_invalid_request_content(client):
    with pytest.raises(client.exceptions.InvalidRequestContentException) as caught:
        client.invoke(FunctionName="ok", Payload=b"{not json")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Could not parse request body into json" in caught.value.response["Error"]["Message"]


def test_handler_error_sets_function_error_header(client):
    response = client.invoke(FunctionName="bad", Payload=b'{"why": "api"}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Payload"].read())
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "boom: api"


def test_log_type_tail_returns_the_invocations_log(client):
    response = client.invoke(FunctionName="talk", Payload=b'{"n": 7}', LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert log.startswith(f"START RequestId: {request_id} Version: $LATEST\n")
    assert "hello from print\n" in log
    assert "hello from logging 7" in log
    assert f"END RequestId: {request_id}\n" in log
    assert f"REPORT RequestId: {request_id}\tDuration: " in log
    assert "Init Duration: " in log  # a cold start


def test_log_tail_is_the_last_4_kb(make_emulator):
    emu = make_emulator([function("chatty", "app.big_log")])
    result = emu.invoke("chatty", b'{"lines": 300}', log_type="Tail")
    assert result.log_result is not None
    log = base64.b64decode(result.log_result)
    assert len(log) == 4096
    assert log.rstrip().splitlines()[-1].startswith(b"REPORT RequestId:")


def test_dry_run_is_204_and_runs_nothing(client, emu):
    response = client.invoke(FunctionName="ok", InvocationType="DryRun")
    assert response["StatusCode"] == 204
    assert emu.environments("ok") == []


def test_event_invocation_is_accepted_then_runs(client, emu):
    response = client.invoke(FunctionName="ok", InvocationType="Event", Payload=b"{}")
    assert response["StatusCode"] == 202
    wait_for(lambda: emu.environments("ok"), what="the async invocation to start")


def test_reserved_concurrency_throttles_with_reason_and_retry_after(client, emu):
    emu.invoke("pid", b"{}")  # warm one environment
    wait_for(lambda: emu.environments("pid")[0].state == "idle", 2, "the warm env to be idle")
    busy = threading.Thread(target=lambda: emu.invoke("pid", b'{"sleep_s": 1}'), daemon=True)
    busy.start()
    wait_for(lambda: any(env.state == "busy" for env in emu.environments("pid")), 2, "busy")
    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        client.invoke(FunctionName="pid", Payload=b"{}")
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]
    assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert emu.throttles["pid"] == 1
    busy.join(5)


def test_client_context_reaches_the_handler(make_emulator):
    emu = make_emulator([function("cc", "app.client_context")])
    client = boto3.client(
        "lambda",
        endpoint_url=emu.invoke_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}, "env": {"e": "1"}}).encode())
    response = client.invoke(FunctionName="cc", ClientContext=context.decode())
    assert json.loads(response["Payload"].read()) == {"custom": {"k": "v"}, "env": {"e": "1"}}
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="cc", ClientContext="not base64!")
