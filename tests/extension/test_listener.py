from __future__ import annotations

import json

import pytest

from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.listener import (
    TelemetryHandler,
    choose_listen_host,
    parse_telemetry_body,
)
from tests.extension.fakes import invocation_events


def test_parse_accepts_an_array_of_events_with_unknown_fields() -> None:
    events = invocation_events("a")
    events[0]["record"]["tenantId"] = "t-1"
    events[0]["newField"] = 1
    assert parse_telemetry_body(json.dumps(events).encode()) == (events, 0)


def test_parse_skips_items_that_are_not_events_and_keeps_the_rest() -> None:
    events = invocation_events("a")
    body = json.dumps([events[0], 7, {"record": {}}, events[1]]).encode()
    assert parse_telemetry_body(body) == ([events[0], events[1]], 2)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not JSON"),
        (b'"text"', "expected an array"),
        (b"[1, 2]", "event 0 is a JSON int"),
        (b'[{"record": {}}, {"time": "x"}]', "event 0 has no string field"),
    ],
)
def test_parse_names_what_is_wrong(body: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_telemetry_body(body)


def test_handler_appends_good_deliveries_and_answers_400_to_bad_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    buffer = TelemetryBuffer()
    handler = TelemetryHandler(buffer)
    assert handler("POST", "/", {}, json.dumps(invocation_events("a")).encode()) == (200, b"")
    assert len(buffer) == 3
    status, body = handler("POST", "/", {}, b"garbage")
    assert status == 400 and b"not JSON" in body
    handler("POST", "/", {}, b"garbage again")
    assert len(buffer) == 3
    err = capsys.readouterr().err
    assert err.count("malformed Telemetry API delivery") == 1  # rate-limited, no flood


def test_listen_host_order() -> None:
    assert choose_listen_host("10.0.0.1", "127.0.0.1", lambda _h: True) == "10.0.0.1"
    assert choose_listen_host(None, "127.0.0.1", lambda h: h == "sandbox.localdomain") == (
        "sandbox.localdomain"
    )
    assert choose_listen_host(None, "127.3.4.5", lambda _h: False) == "127.3.4.5"
