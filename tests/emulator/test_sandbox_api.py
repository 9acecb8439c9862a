"""The Extensions, Telemetry and Runtime API rules, called on the handlers of an environment
without processes (the HTTP layer is a thin shell over these methods), plus the HTTP routing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lambdascope.emulator import events
from lambdascope.emulator.environment import ExecutionEnvironment
from lambdascope.emulator.sandbox_api import route
from lambdascope.emulator.sandbox_processes import build_environment, find_extensions

from .conftest import HANDLERS, RECORDER_LAYER, function


@pytest.fixture
def env() -> Iterator[ExecutionEnvironment]:
    environment = ExecutionEnvironment(function("ok", "app.ok"), lambda *_: None)
    environment.address = "127.0.0.1"
    try:
        yield environment
    finally:
        environment.hub.stop()


def register(env, name="recorder", events_=("INVOKE",), **headers):
    body = json.dumps({"events": list(events_)}).encode()
    return env.api.extension_register({"lambda-extension-name": name, **headers}, body)


def error_type(response) -> str:
    return json.loads(response.body)["errorType"]


def test_register_answers_identifier_and_function_details(env):
    response = register(env, **{"lambda-extension-accept-feature": "accountId"})
    assert response.status == 200
    assert response.headers["Lambda-Extension-Identifier"]
    assert json.loads(response.body) == {
        "functionName": "ok",
        "functionVersion": "$LATEST",
        "handler": "app.ok",
        "accountId": "000000000000",
    }


def test_register_errors_follow_lambda(env):
    assert error_type(register(env, name="")) == "Extension.InvalidExtensionName"
    assert register(env, name="one").status == 200
    duplicate = register(env, name="one")
    assert duplicate.status == 403 and error_type(duplicate) == "Extension.InvalidExtensionState"
    for i in range(9):
        assert register(env, name=f"x{i}").status == 200
    too_many = register(env, name="eleventh")
    assert too_many.status == 403 and error_type(too_many) == "Extension.TooManyExtensions"
    # an internal extension (no executable of that name) may not ask for SHUTDOWN
    assert register(env, name="internal", events_=("SHUTDOWN",)).status in (400, 403)


def test_register_is_closed_after_init(env):
    env._sandbox.init_done = True
    closed = register(env)
    assert closed.status == 403 and error_type(closed) == "Extension.RegistrationClosed"


def test_next_and_subscribe_need_a_known_identifier(env):
    missing = env.api.extension_next({})
    assert missing is not None and error_type(missing) == "Extension.MissingExtensionIdentifier"
    unknown = env.api.telemetry_subscribe({"lambda-extension-identifier": "nope"}, b"{}")
    assert error_type(unknown) == "Extension.UnknownExtensionIdentifier"


def test_subscribe_validates_then_accepts_once(env):
    identifier = register(env).headers["Lambda-Extension-Identifier"]
    headers = {"lambda-extension-identifier": identifier}
    bad = env.api.telemetry_subscribe(headers, json.dumps({"schemaVersion": "2022-12-13"}).encode())
    assert bad.status == 400 and error_type(bad) == "ValidationError"
    body = {
        "schemaVersion": "2025-01-29",
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/t"},
        "types": ["platform"],
        "buffering": {"timeoutMs": 25},
    }
    ok = env.api.telemetry_subscribe(headers, json.dumps(body).encode())
    assert ok.status == 200 and json.loads(ok.body) == "OK"
    assert env.hub.emitted[-1]["type"] == "platform.telemetrySubscription"
    assert env.api.telemetry_subscribe(headers, json.dumps(body).encode()).status == 400
    env._sandbox.init_done = True
    closed = env.api.telemetry_subscribe(headers, json.dumps(body).encode())
    assert closed.status == 403 and error_type(closed) == "Telemetry.SubscriptionClosed"


def test_runtime_posts_for_an_unknown_request_are_rejected(env):
    response = env.api.runtime_response("not-current", b"{}", {})
    assert response.status == 400 and error_type(response) == "InvalidRequestID"


def test_init_error_is_only_accepted_during_init(env):
    accepted = env.api.runtime_init_error(b'{"errorType": "Runtime.HandlerNotFound"}', {})
    assert accepted.status == 202 and env.init_error is not None
    assert env.init_error[0] == "Runtime.HandlerNotFound"
    env._sandbox.init_done = True
    assert env.api.runtime_init_error(b"{}", {}).status == 403


def test_routing_answers_404_for_unknown_paths_and_serves_the_logs_api(env):
    unknown = route(env.api, "GET", "/2018-06-01/nope", {}, b"")
    assert unknown is not None and unknown.status == 404
    logs = route(env.api, "PUT", "/2020-08-15/logs", {}, b"")
    assert logs is not None and logs.status == 403  # served: it wants an extension identifier
    assert json.loads(logs.body)["errorType"] == "Extension.MissingExtensionIdentifier"


def test_extensions_are_the_executables_of_each_layers_extensions_folder():
    assert [p.name for p in find_extensions((RECORDER_LAYER, HANDLERS))] == ["recorder"]


def test_extensions_get_the_environment_without_runtime_only_variables():
    fn = function("ok", "app.ok", environment={"_PRIVATE": "x", "PUBLIC": "y"})
    runtime, extension = build_environment(fn, "127.77.0.1:9001", "stream", base={"PATH": "/bin"})
    assert runtime["_HANDLER"] == "app.ok" and runtime["_PRIVATE"] == "x"
    assert runtime["PATH"].endswith(":/bin") and runtime["PYTHONPATH"].startswith(str(HANDLERS))
    assert extension["PUBLIC"] == "y" and extension["AWS_LAMBDA_RUNTIME_API"] == "127.77.0.1:9001"
    for name in ("_HANDLER", "_PRIVATE", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_LOG_STREAM_NAME"):
        assert name not in extension
    assert events.SANDBOX_HOSTS == ("sandbox.localdomain", "sandbox")
