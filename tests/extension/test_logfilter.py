"""Redaction and sampling of function/extension log records (extension/logfilter.py)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.config import load_config
from lambdascope.extension.listener import TelemetryHandler
from lambdascope.extension.logfilter import LogFilter, Redactor, keep_request, request_hash_fraction
from tests.extension.fakes import (
    FakeCollector,
    FakeLambdaApi,
    event,
    extension_env,
    report_event,
    start_extension,
    stop_process,
)


@pytest.mark.parametrize(
    ("line", "secret", "kept"),
    [
        ("key AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE", "key "),
        ("temp ASIAY34FZKBOKMUTVV7A ok", "ASIAY34FZKBOKMUTVV7A", " ok"),
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key=",
        ),
        ('{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "wJalrXUtnFEMI", "Sec"),
        ("Authorization: Bearer eyJhbGciOi.J9x-_y/z+=", "eyJhbGciOi", "Bearer "),
        ("login user=bob password=hunter2 next", "hunter2", "user=bob password="),
        ("db passwd: 's3 cr3t' host=x", "s3 cr3t", "host=x"),
        ("url?api_key=abc123&x=1", "abc123", "&x=1"),
    ],
)
def test_builtin_patterns_hide_secrets_and_keep_the_rest(line: str, secret: str, kept: str) -> None:
    cleaned = Redactor().text(line)
    assert secret not in cleaned
    assert "[REDACTED]" in cleaned and kept in cleaned


def test_ordinary_lines_are_untouched() -> None:
    line = "processed order 42 in 12 ms (token bucket empty: no)"
    assert Redactor().text("processed order 42 in 12 ms") == "processed order 42 in 12 ms"
    assert "token bucket" in Redactor().text(line)
    assert Redactor().text("the bearer of bad news") == "the bearer of bad news"


def test_user_patterns_apply_and_a_bad_one_is_logged_not_fatal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    redactor = Redactor([r"\d{4}-\d{4}-\d{4}-\d{4}", "(unclosed", r"ssn \d+"])
    assert redactor.text("card 4111-1111-1111-1111 ssn 123") == "card [REDACTED] [REDACTED]"
    assert "'(unclosed' is not a valid regular expression" in capsys.readouterr().err


def test_json_format_records_are_redacted_field_by_field() -> None:
    record = {
        "timestamp": "2026-11-24T07:00:00Z",
        "level": "INFO",
        "requestId": "req-1",
        "message": "calling with password=hunter2",
        "header": "Bearer abc.defghij",
        "count": 3,
    }
    cleaned = Redactor().record(record)
    assert cleaned["message"] == "calling with password=[REDACTED]"
    assert cleaned["header"] == "Bearer [REDACTED]"
    assert cleaned["requestId"] == "req-1" and cleaned["count"] == 3


def _window(request_id: str, lines: Sequence[object]) -> list[dict]:
    return (
        [event("platform.start", {"requestId": request_id})]
        + [event("function", line) for line in lines]
        + [event("platform.runtimeDone", {"requestId": request_id, "status": "success"})]
    )


def _ids_with_decision(rate: float, keep: bool, count: int) -> list[str]:
    found = []
    for n in range(10_000):
        request_id = f"req-{n}"
        if keep_request(request_id, rate) == keep:
            found.append(request_id)
            if len(found) == count:
                return found
    raise AssertionError("no request ids found")


def test_sampling_keeps_or_drops_whole_invocations() -> None:
    kept_id, dropped_id = _ids_with_decision(0.5, True, 1)[0], _ids_with_decision(0.5, False, 1)[0]
    log_filter = LogFilter(sample_rate=0.5)
    events = _window(kept_id, ["a\n", "b\n"]) + _window(dropped_id, ["c\n", "d\n"])
    events.append(report_event(dropped_id))
    out = log_filter.apply(events)
    lines = [e["record"] for e in out if e["type"] == "function"]
    assert lines == ["a\n", "b\n"]
    # platform events are never sampled
    assert [e["type"] for e in out].count("platform.start") == 2
    assert any(e["type"] == "platform.report" for e in out)
    assert log_filter.sampled_out_lines == 2


def test_errors_timeouts_and_oom_lines_survive_sampling() -> None:
    log_filter = LogFilter(sample_rate=0.0)
    lines: list[object] = [
        "[INFO]\t2026-11-24T07:00:00Z\treq\tfine\n",
        "[ERROR]\t2026-11-24T07:00:00Z\treq\tboom\n",
        "Traceback (most recent call last):\n",
        "2026-11-24T07:00:03Z req Task timed out after 3.00 seconds\n",
        "MemoryError\n",
        {"level": "ERROR", "message": "json boom", "requestId": "r"},
        {"level": "INFO", "message": "json fine", "requestId": "r"},
    ]
    out = log_filter.apply(_window("r", lines))
    kept = [e["record"] for e in out if e["type"] == "function"]
    assert kept == lines[1:6]


def test_sampling_uses_the_request_id_of_json_records_and_is_stable() -> None:
    assert request_hash_fraction("abc") == request_hash_fraction("abc")
    assert 0.0 <= request_hash_fraction("abc") < 1.0
    ids = [f"{n:08x}-0000" for n in range(2000)]
    share = sum(keep_request(i, 0.25) for i in ids) / len(ids)
    assert 0.2 < share < 0.3
    dropped = _ids_with_decision(0.5, False, 1)[0]
    # a JSON record names its request even outside a window
    record = {"level": "INFO", "message": "x", "requestId": dropped}
    assert LogFilter(sample_rate=0.5).apply([event("function", record)]) == []
    # lines outside any invocation (init) are kept
    assert len(LogFilter(sample_rate=0.0).apply([event("function", "init line\n")])) == 1


def test_extension_lines_are_redacted_but_not_sampled() -> None:
    log_filter = LogFilter(sample_rate=0.0)
    out = log_filter.apply(_window("r", []) + [event("extension", "token=abc\n")])
    assert out[-1]["record"] == "token=[REDACTED]\n"
    assert log_filter.redacted_lines == 1


def test_listener_applies_the_filter_before_buffering() -> None:
    buffer = TelemetryBuffer()
    handler = TelemetryHandler(buffer, LogFilter())
    body = b'[{"time": "t", "type": "function", "record": "password=hunter2\\n"}]'
    assert handler("POST", "/", {}, body) == (200, b"")
    content = buffer.take_batch(10, 1 << 20)
    assert content is not None and "hunter2" not in content.telemetry[0]


def test_invalid_settings_fall_back_with_a_message() -> None:
    config, problems = load_config({"LAMBDASCOPE_LOG_SAMPLE_RATE": "1.5"})
    assert config.log_sample_rate == 1.0
    assert problems == ["LAMBDASCOPE_LOG_SAMPLE_RATE='1.5' is outside 0..1; using the default 1"]
    config, problems = load_config({"LAMBDASCOPE_LOG_SAMPLE_RATE": "half"})
    assert config.log_sample_rate == 1.0 and "is not a number" in problems[0]
    config, problems = load_config({"LAMBDASCOPE_LOG_SAMPLE_RATE": "nan"})
    assert config.log_sample_rate == 1.0 and problems
    config, problems = load_config(
        {"LAMBDASCOPE_LOG_SAMPLE_RATE": "0.1", "LAMBDASCOPE_REDACT": r"a\,b, c ,"}
    )
    assert (config.log_sample_rate, config.redact_patterns, problems) == (0.1, ("a,b", "c"), [])
    config, problems = load_config({"LAMBDASCOPE_OTLP_PORT": "off"})
    assert config.otlp_port is None and problems == []
    config, problems = load_config({"LAMBDASCOPE_OTLP_PORT": "99999"})
    assert config.otlp_port == 4318 and "LAMBDASCOPE_OTLP_PORT" in problems[0]


def test_the_agent_redacts_before_sending(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    env = extension_env(
        lambda_api,
        LAMBDASCOPE_COLLECTOR_URL=collector.url,
        LAMBDASCOPE_REDACT=r"order-\d+",
        LAMBDASCOPE_LOG_SAMPLE_RATE="2",
    )
    process = start_extension(env)
    try:
        assert lambda_api.wait_next_calls(1)
        lambda_api.invoke("req-1")
        lines = ["paid order-77 with password=hunter2\n", "key AKIAIOSFODNN7EXAMPLE\n"]
        assert lambda_api.post_telemetry(_window("req-1", lines)) == 200
        assert lambda_api.wait_next_calls(2)
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
    assert "LAMBDASCOPE_LOG_SAMPLE_RATE='2' is outside 0..1" in stderr
    stored = [e["record"] for e in collector.stored_telemetry() if e["type"] == "function"]
    assert stored == ["paid [REDACTED] with password=[REDACTED]\n", "key [REDACTED]\n"]
    assert collector.stored_batches()[-1]["extension_stats"]["log_lines_redacted"] == 2
