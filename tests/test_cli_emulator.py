"""`lambdascope emulator`, `invoke` and `logs`: the emulator as a user drives it from a shell."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HANDLERS = Path(__file__).parent / "e2e" / "handlers"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lambdascope(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambdascope", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    config = tmp_path / "fleet.toml"
    config.write_text(
        f'[emulator]\nport = {port}\nlog_dir = "logs"\n\n'
        f'[[functions]]\nname = "orders"\nhandler = "app.ok"\ncode_dir = "{HANDLERS}"\n'
        "timeout_s = 3\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "lambdascope", "emulator", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert f"127.0.0.1:{port}" in first_line, first_line
        yield f"http://127.0.0.1:{port}", config
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_invoke_and_read_the_log_like_cloudwatch(served: tuple[str, Path]) -> None:
    url, config = served
    result = _lambdascope("invoke", "orders", "--payload", '{"order_id": "o-7"}', "--url", url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "order_id": "o-7"}

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logs = _lambdascope("logs", "orders", "--config", str(config))
        if "REPORT RequestId:" in logs.stdout:
            break
        time.sleep(0.2)
    assert logs.returncode == 0, logs.stderr
    assert "START RequestId:" in logs.stdout
    assert "processing order o-7" in logs.stdout
    assert "Init Duration:" in logs.stdout


def test_unknown_function_is_a_clear_error(served: tuple[str, Path]) -> None:
    url, _ = served
    result = _lambdascope("invoke", "nope", "--url", url)
    assert result.returncode == 1
    assert "ResourceNotFoundException" in result.stderr + result.stdout


def test_invalid_config_names_the_function_and_field(tmp_path: Path) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text(
        f'[[functions]]\nname = "orders"\nhandler = "app.ok"\ncode_dir = "{HANDLERS}"\n'
        "memory_size_mb = 64\n"
    )
    result = _lambdascope("emulator", "--config", str(config))
    assert result.returncode == 2
    assert "orders" in result.stderr and "memory_size_mb" in result.stderr


def test_logs_without_a_log_dir_says_how_to_get_one(tmp_path: Path) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text(
        f'[[functions]]\nname = "orders"\nhandler = "app.ok"\ncode_dir = "{HANDLERS}"\n'
    )
    result = _lambdascope("logs", "orders", "--config", str(config))
    assert result.returncode == 2
    assert "log_dir" in result.stderr
