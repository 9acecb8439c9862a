"""Config files: the good one loads; each broken one fails with a message naming the
function and the field."""

from __future__ import annotations

import io
import json
import threading

import pytest

from lambdascope.emulator import cli
from lambdascope.emulator.config import (
    ConfigError,
    ConfigFileError,
    load_config,
    load_emulator_settings,
)

from .conftest import FIXTURES, HANDLERS, RECORDER_LAYER, wait_for

CONFIGS = FIXTURES / "configs"


def test_good_config_loads_every_field_with_paths_relative_to_the_file():
    checkout, report = load_config(CONFIGS / "good.toml")
    assert checkout.name == "checkout" and checkout.handler == "app.ok"
    assert checkout.code_dir.resolve() == HANDLERS.resolve()
    assert [p.resolve() for p in checkout.layers] == [RECORDER_LAYER.resolve()]
    assert (checkout.memory_size_mb, checkout.timeout_s) == (256, 2)
    assert (checkout.reserved_concurrency, checkout.provisioned_concurrency) == (3, 1)
    assert checkout.architecture == "arm64"
    assert (checkout.log_format, checkout.log_level) == ("JSON", "DEBUG")
    assert checkout.environment == {"STAGE": "dev"}
    assert (report.memory_size_mb, report.timeout_s, report.log_format) == (128, 3.0, "Text")
    assert load_emulator_settings(CONFIGS / "good.toml") == {
        "keep_warm_s": 60,
        "account_concurrency": 10,
    }


@pytest.mark.parametrize(
    ("file", "field", "words"),
    [
        ("bad_memory.toml", "memory_size_mb", "64 is outside 128-10240 MB"),
        ("bad_timeout.toml", "timeout_s", "0.5 is outside 1-900 s"),
        ("unknown_field.toml", "memory", "unknown field"),
        ("missing_handler.toml", "handler", "is required"),
        ("bad_code_dir.toml", "code_dir", "is not a directory"),
        ("duplicate.toml", "name", "used by two functions"),
    ],
)
def test_broken_configs_name_function_and_field(file, field, words):
    with pytest.raises(ConfigError) as caught:
        load_config(CONFIGS / file)
    assert caught.value.function_name == "checkout"
    assert caught.value.field_name == field
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("file", "words"),
    [
        ("not_toml.toml", "not valid TOML"),
        ("no_functions.toml", "needs at least one [[functions]] table"),
        ("does_not_exist.toml", "cannot read the config file"),
    ],
)
def test_unreadable_config_files_name_the_file(file, words):
    with pytest.raises(ConfigFileError) as caught:
        load_config(CONFIGS / file)
    assert file in str(caught.value) and words in str(caught.value)


def test_serve_reports_a_bad_config_with_exit_code_2(capsys):
    assert cli.serve(CONFIGS / "bad_memory.toml", stop_event=threading.Event()) == 2
    assert "memory_size_mb" in capsys.readouterr().err


def test_serve_runs_the_fleet_until_stopped_and_invoke_calls_it():
    stop = threading.Event()
    out = io.StringIO()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            cli.serve(CONFIGS / "good.toml", "127.0.0.1", 0, stop_event=stop, out=out)
        ),
        daemon=True,
    )
    thread.start()
    try:
        url = wait_for(
            lambda: [w for w in out.getvalue().split() if w.startswith("http://")],
            10,
            "the serving line",
        )[0]
        status, headers, body = cli.invoke(url, "report", b'{"n": 1}', log_type="Tail")
        assert status == 200 and json.loads(body) == {"printed": True}
        assert "X-Amz-Log-Result" in headers
        status, headers, _ = cli.invoke(url, "nope")
        assert status == 404 and headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    finally:
        stop.set()
        thread.join(10)
    assert codes == [0]


def _write(tmp_path, emulator_table: str):
    path = tmp_path / "fleet.toml"
    path.write_text(
        f"[emulator]\n{emulator_table}\n[[functions]]\nname = 'f'\nhandler = 'app.ok'\n"
        f"code_dir = '{HANDLERS}'\n"
    )
    return path


def test_metric_stream_and_isolation_come_from_the_emulator_table(tmp_path):
    path = _write(
        tmp_path,
        "metric_stream_url = 'http://127.0.0.1:4320/v1/firehose/metrics'\n"
        "metric_stream_access_key = 'k'\nmetric_period_s = 2\nmetric_stream_gzip = true\n"
        "isolation = 'none'\n",
    )
    emu = cli.build_emulator(path)
    assert emu.namespaced is False
    assert emu.metric_stream is not None
    config = emu.metric_stream.config
    assert (config.url, config.access_key, config.period_s, config.gzip) == (
        "http://127.0.0.1:4320/v1/firehose/metrics",
        "k",
        2,
        True,
    )
    assert cli.build_emulator(_write(tmp_path, "")).metric_stream is None


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("metric_period_s = 2", "metric_period_s but no metric_stream_url"),
        ("metric_stream_url = 'udp://x'", "metric stream url 'udp://x'"),
        ("metric_stream_url = 'http://127.0.0.1:1/'\nmetric_period_s = 0", "period_s"),
        ("isolation = 'chroot'", "isolation 'chroot'"),
    ],
)
def test_bad_metric_stream_or_isolation_settings_name_the_field(tmp_path, table, words):
    with pytest.raises(ConfigFileError, match=words):
        cli.build_emulator(_write(tmp_path, table))
