from __future__ import annotations

import pytest

from lambdascope.extension import config
from lambdascope.extension.config import default_spool_dir, load_config, runtime_api_host


def test_defaults_without_any_variable() -> None:
    config, problems = load_config({})
    assert problems == []
    assert config.collector_url is None
    assert config.token is None
    assert config.telemetry_port == 4243
    assert config.log_level == "WARNING"
    assert config.flush_interval_ms == 1000
    assert (config.telemetry_max_items, config.telemetry_max_bytes) == (1000, 262144)
    assert config.telemetry_timeout_ms == 100


def test_the_end_policy_keeps_telemetry_deliveries_prompt() -> None:
    # It waits for each invocation's runtimeDone before `next`: the delay is billed.
    config, _ = load_config({"LAMBDASCOPE_FLUSH_POLICY": "end"})
    assert config.telemetry_timeout_ms == 25
    config, _ = load_config(
        {"LAMBDASCOPE_FLUSH_POLICY": "end", "LAMBDASCOPE_TELEMETRY_TIMEOUT_MS": "500"}
    )
    assert config.telemetry_timeout_ms == 500


def test_valid_values_are_used() -> None:
    config, problems = load_config(
        {
            "LAMBDASCOPE_COLLECTOR_URL": "https://collector.example:4320/base/",
            "LAMBDASCOPE_TOKEN": "t0k",
            "LAMBDASCOPE_LISTEN_HOST": "127.0.0.5",
            "LAMBDASCOPE_TELEMETRY_PORT": "5000",
            "LAMBDASCOPE_LOG_LEVEL": "debug",
            "LAMBDASCOPE_FLUSH_INTERVAL_MS": "250",
            "LAMBDASCOPE_SPOOL_MAX_BYTES": "0",
            "LAMBDASCOPE_FLUSH_POLICY": "End",
        }
    )
    assert problems == []
    assert config.collector_url == "https://collector.example:4320/base"
    assert config.token == "t0k"
    assert config.listen_host == "127.0.0.5"
    assert config.telemetry_port == 5000
    assert config.log_level == "DEBUG"
    assert config.flush_interval_ms == 250
    assert config.spool_max_bytes == 0
    assert config.flush_policy == "end"
    assert "t0k" not in repr(config)


@pytest.mark.parametrize(
    ("name", "value", "attribute", "default", "words"),
    [
        ("LAMBDASCOPE_TELEMETRY_PORT", "http", "telemetry_port", 4243, "not a whole number"),
        ("LAMBDASCOPE_TELEMETRY_PORT", "70000", "telemetry_port", 4243, "outside 0..65535"),
        ("LAMBDASCOPE_FLUSH_INTERVAL_MS", "-5", "flush_interval_ms", 1000, "outside"),
        ("LAMBDASCOPE_TELEMETRY_MAX_ITEMS", "10", "telemetry_max_items", 1000, "outside"),
        ("LAMBDASCOPE_TELEMETRY_TIMEOUT_MS", "5", "telemetry_timeout_ms", 100, "outside"),
        ("LAMBDASCOPE_LOG_LEVEL", "loud", "log_level", "WARNING", "not one of"),
        ("LAMBDASCOPE_FLUSH_POLICY", "sometimes", "flush_policy", "background", "not one of"),
        ("LAMBDASCOPE_COLLECTOR_URL", "collector:4320", "collector_url", None, "http://"),
        ("LAMBDASCOPE_COLLECTOR_URL", "ftp://x", "collector_url", None, "http://"),
    ],
)
def test_invalid_values_fall_back_to_the_default_with_a_message(
    name: str, value: str, attribute: str, default: object, words: str
) -> None:
    config, problems = load_config({name: value})
    assert getattr(config, attribute) == default
    assert len(problems) == 1
    assert name in problems[0] and words in problems[0]


def test_blank_values_mean_default_silently() -> None:
    config, problems = load_config({"LAMBDASCOPE_TELEMETRY_PORT": " ", "LAMBDASCOPE_TOKEN": ""})
    assert problems == []
    assert config.telemetry_port == 4243 and config.token is None


@pytest.mark.parametrize(
    ("value", "host"),
    [("127.0.0.1:9001", "127.0.0.1"), ("127.1.2.3:9001", "127.1.2.3"), ("[::1]:9001", "::1")],
)
def test_runtime_api_host(value: str, host: str) -> None:
    assert runtime_api_host(value) == host


def test_default_spool_dir_is_per_function_under_tmpdir() -> None:
    assert default_spool_dir({}, "checkout") == "/tmp/lambdascope-spool/checkout"
    assert default_spool_dir({"TMPDIR": "/var/t/"}, "a/../b") == "/var/t/lambdascope-spool/a_.._b"
    assert default_spool_dir({}, "") == "/tmp/lambdascope-spool/function"


def test_tags_are_parsed_and_a_malformed_pair_is_reported_and_skipped() -> None:
    loaded, problems = config.load_config(
        {config.TAGS: "team=payments, tier = critical,,oops, =x, empty="}
    )
    assert loaded.tags == {"team": "payments", "tier": "critical", "empty": ""}
    assert len(problems) == 2
    assert all(config.TAGS in p for p in problems)
    assert "'oops'" in problems[0]
