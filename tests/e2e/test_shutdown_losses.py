"""A collector that is down through SHUTDOWN, end to end: the real extension in the emulator
counts what it could not send and says so in the function's log, and once the collector is
back the environment that went silent without its final flush is a finding, not a gap."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest

from lambdascope.analyzers import completeness, run_detectors
from lambdascope.cli.processes import CollectorProcess
from lambdascope.emulator import Emulator, FunctionConfig
from lambdascope.extension.layer import build_layer_dir
from lambdascope.query import CollectorQueryClient
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.e2e

HANDLERS = Path(__file__).parent / "handlers"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_final_flush_that_cannot_reach_the_collector_is_counted_and_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = tmp_path / "layer"
    build_layer_dir(layer)
    store_url = f"chdb://{tmp_path / 'store'}"
    port = _free_port()
    collector = CollectorProcess(store_url, port=port)
    url = collector.start()
    client = CollectorQueryClient(url)
    function = FunctionConfig(
        name="orders",
        handler="app.ok",
        code_dir=HANDLERS,
        timeout_s=3.0,
        layers=(layer,),
        environment={"LAMBDASCOPE_COLLECTOR_URL": url, "LAMBDASCOPE_FLUSH_POLICY": "end"},
    )
    try:
        with Emulator([function], log_dir=tmp_path / "logs") as emu:
            for n in range(2):
                emu.invoke("orders", json.dumps({"order_id": f"o-{n}"}).encode())
            wait_for(client, "SELECT count() FROM invocations", 2)
            collector.stop()  # down from here through the environment's SHUTDOWN
            emu.invoke("orders", json.dumps({"order_id": "o-lost"}).encode())
            log = emu.logs
        lines = log.lines("orders")
    finally:
        collector.stop()

    # The extension counted what it could not send and said so in the function's own log.
    shutdown = [line for line in lines if "[lambdascope]" in line and "shutdown" in line]
    assert shutdown, lines[-20:]
    assert "not sent" in shutdown[-1] and "collector unreachable" in shutdown[-1]

    # Back up: the environment never delivered its final flush, and the finding says so.
    with CollectorProcess(store_url, port=port) as back:
        assert back.url == url
        monkeypatch.setattr(completeness, "SILENT_AFTER", timedelta(seconds=1))
        time.sleep(1.5)
        findings = [
            f
            for f in run_detectors(client, since=timedelta(hours=1))
            if f.kind == "data_completeness" and f.function_name == "orders"
        ]
        assert len(findings) == 1, findings
        assert "went silent without a final flush" in findings[0].summary
