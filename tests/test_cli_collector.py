"""`lambdascope collector` refuses impossible configurations with the fix, before starting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _collector(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambdascope", "collector", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cluster_mode_on_the_embedded_store_says_to_use_a_server(tmp_path: Path) -> None:
    result = _collector("--store", f"chdb://{tmp_path}", "--cluster", "main")
    assert result.returncode == 2
    assert "needs a ClickHouse server" in result.stderr


def test_sharded_without_a_cluster_names_the_missing_flag() -> None:
    result = _collector("--sharded")
    assert result.returncode == 2
    assert "--sharded needs --cluster NAME" in result.stderr


def test_unreachable_server_store_is_a_clear_error() -> None:
    result = _collector("--store", "http://127.0.0.1:9/nowhere", "--port", "0")
    assert result.returncode == 2
    assert "127.0.0.1:9" in result.stderr
