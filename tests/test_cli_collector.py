"""`lambdascope collector` refuses impossible configurations with the fix, before starting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.analyzers import storefixtures
from tests.analyzers.storefixtures import chdb_path  # noqa: F401  (the store's fixture)

#: A migrated embedded store fed like production (tests/analyzers/storefixtures.py).
analyzer_store = storefixtures.store


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


def _lambdascope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambdascope", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_broken_settings_file_stops_every_command_that_reads_it(tmp_path: Path) -> None:
    settings = tmp_path / "lambdascope.toml"
    settings.write_text("[concurrency]\naccount_limit = 1000\n\n[concurrency.reserved]\napi = -5\n")
    rules = Path(__file__).resolve().parents[1] / "analyzers" / "alerts" / "default_rules.yaml"
    # Refused before the store is opened or a collector is asked anything: the collector URL
    # points nowhere and the store path is never created.
    commands = {
        "collector": ("collector", "--store", f"chdb://{tmp_path}/store", "--port", "0"),
        "analyze": ("analyze", "--collector", "http://127.0.0.1:9"),
        "alerts test": ("alerts", "test", str(rules), "--collector", "http://127.0.0.1:9"),
    }
    for name, args in commands.items():
        result = _lambdascope(*args, "--settings", str(settings))
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr.strip() == (
            f"lambdascope {name}: {settings}:5: concurrency.reserved.api: must be a whole "
            "number of executions (0 or more), got -5"
        )
    assert not (tmp_path / "store").exists()


def test_analyze_reads_a_valid_settings_file_then_asks_the_collector(tmp_path: Path) -> None:
    settings = tmp_path / "lambdascope.toml"
    settings.write_text("[prices.regions.eu-west-1]\nrequest_usd_per_million = 0.25\n")
    result = _lambdascope(
        "analyze", "--collector", "http://127.0.0.1:9", "--settings", str(settings)
    )
    # The settings are fine; what fails is the collector nobody runs.
    assert result.returncode == 2
    assert "lambdascope analyze:" in result.stderr and "settings" not in result.stderr


def test_analyze_applies_the_settings_file_to_the_detectors(
    analyzer_store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lambdascope.analyzers import cost, throttles
    from lambdascope.cli import main
    from lambdascope.collector.server import CollectorServer
    from tests.analyzers import fleetdata
    from tests.analyzers.test_throttles import START, write_metrics

    # The settings are process-wide: give them back after the in-process run.
    monkeypatch.setattr(throttles, "LIMITS", throttles.LIMITS)
    monkeypatch.setattr(cost, "PRICES", cost.PRICES)
    store = analyzer_store
    store.write(fleetdata.healthy_fleet())
    records = fleetdata.function_minutes("reports", START, 10, invocations=30, concurrency=9)
    write_metrics(store, records)
    settings = tmp_path / "lambdascope.toml"
    settings.write_text("[concurrency.reserved]\nreports = 10\n")
    server = CollectorServer(store.store, port=0).start()
    try:
        args = ["analyze", "--collector", server.url, "--since", "2h", "--json"]
        assert main(args) == 0
        assert json.loads(capsys.readouterr().out) == []  # a healthy fleet: nothing to say
        # A warning: under the default --fail-on critical the command still succeeds.
        assert main([*args, "--settings", str(settings)]) == 0
    finally:
        server.stop()
    (finding,) = json.loads(capsys.readouterr().out)
    assert (finding["kind"], finding["function_name"]) == ("concurrency_near_limit", "reports")
    assert "9 of its 10 reserved concurrent executions" in finding["summary"]


def test_readers_read_a_store_directly_through_the_same_sandbox(tmp_path: Path) -> None:
    store = f"chdb://{tmp_path / 'store'}"
    counted = _lambdascope("query", "--store", store, "SELECT count() FROM invocations")
    assert counted.returncode == 0, counted.stderr
    # Not a terminal: TSV with a header, as before.
    assert counted.stdout.splitlines()[1:] == ["0"]
    refused = _lambdascope("query", "--store", store, "SELECT file('/etc/passwd')")
    assert refused.returncode == 2
    assert "file" in refused.stderr and "root:" not in refused.stdout + refused.stderr
    both = _lambdascope("query", "--store", store, "--collector", "http://127.0.0.1:9", "SELECT 1")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_a_store_held_by_a_collector_names_the_fix(tmp_path: Path) -> None:
    from lambdascope.cli.processes import CollectorProcess

    store = f"chdb://{tmp_path / 'store'}"
    with CollectorProcess(store):
        result = _lambdascope("analyze", "--store", store)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()  # one line, not chDB's own lock error as well
    assert line.startswith(f"lambdascope analyze: the store {tmp_path / 'store'} is in use by ")
    assert "lambdascope collector" in line and "--collector http" in line
