"""`lambdascope collector --rules FILE`: the alert engine runs inside the collector process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lambdascope.cli.processes import CollectorProcess, CollectorStartError
from tests.collector.conftest import load_event


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Webhook]]]:
    handler = type("Webhook", (_Webhook,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _recent_timeout_batch() -> dict:
    """The sample timeout batch, moved to a minute ago so it falls in the rule's window."""
    batch = load_event("timeout")
    shift = datetime.now(UTC) - timedelta(minutes=1) - datetime(2026, 11, 24, 7, 20, tzinfo=UTC)
    for event in batch["telemetry"]:
        moved = datetime.fromisoformat(event["time"].replace("Z", "+00:00")) + shift
        event["time"] = moved.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    shift_ms = int(shift.total_seconds() * 1000)
    batch["sent_at_ms"] += shift_ms
    for entry in batch["invocations"]:
        entry["deadline_ms"] += shift_ms
        entry["received_at_ms"] += shift_ms
    batch["batch_id"] = uuid.uuid4().hex
    return batch


def test_a_timeout_fires_the_rule_and_reaches_the_webhook(tmp_path: Path, webhook) -> None:
    url, handler = webhook
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\n"
        f"notifiers:\n  hook: {{type: webhook, url: '{url}', timeout: 5s}}\n"
        "rules:\n"
        "  - name: timeouts\n    detector: timeouts\n    kind: timeout\n"
        "    window: 5m\n    for: 0m\n    severity: critical\n    notifiers: [hook]\n"
    )
    store = tmp_path / "store"
    with CollectorProcess(
        f"chdb://{store}", extra_args=("--rules", str(rules), "--alert-interval", "1s")
    ) as collector:
        import urllib.request

        request = urllib.request.Request(
            f"{collector.url}/v1/extension/batches",
            data=json.dumps(_recent_timeout_batch()).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        deadline = time.monotonic() + 20
        while not handler.received and time.monotonic() < deadline:
            time.sleep(0.2)
    assert handler.received, collector.output
    notification = handler.received[0]
    text = json.dumps(notification)
    assert "firing" in text
    assert "exporter" in text
    assert "7e57ab1e-4444-4c3d-8e9f-5a6b7c8d9e0f" in text


def test_an_invalid_rules_file_stops_the_collector_with_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - name: x\n    detector: nope\n")
    with pytest.raises(CollectorStartError) as caught:
        CollectorProcess(f"chdb://{tmp_path / 'store'}", extra_args=("--rules", str(rules))).start()
    assert f"{rules}:4" in str(caught.value)
