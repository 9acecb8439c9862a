"""A collector killed with SIGKILL while senders keep retrying, as the extension does: each
batch is sent again under its own batch id until it is answered 200. Shared by the short test
(tests/collector/test_crash.py) and the long benchmark (bench/crash_exactly_once.py).

Everything runs on loopback; every loop is bounded by a deadline.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INVOCATIONS_PER_BATCH = 10
FUNCTION_LINES_PER_INVOCATION = 2


def make_batches(run: str, batches: int, now_ms: int) -> list[dict[str, Any]]:
    """``batches`` extension batches of INVOCATIONS_PER_BATCH invocations each, stamped now."""
    out = []
    for index in range(batches):
        telemetry: list[dict[str, Any]] = []
        for k in range(INVOCATIONS_PER_BATCH):
            rid = f"{run}-{index:05d}-{k:02d}"
            start = now_ms - 60_000 + index * 50 + k

            def at(ms: int) -> str:
                seconds, millis = divmod(ms, 1000)
                return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"

            telemetry += [
                {"time": at(start), "type": "platform.start", "record": {"requestId": rid}},
                {"time": at(start + 1), "type": "function", "record": f"order {k} taken\n"},
                {"time": at(start + 2), "type": "function", "record": f"order {k} done\n"},
                {
                    "time": at(start + 3),
                    "type": "platform.report",
                    "record": {
                        "requestId": rid,
                        "status": "success",
                        "metrics": {
                            "durationMs": 3.0,
                            "billedDurationMs": 3,
                            "memorySizeMB": 128,
                            "maxMemoryUsedMB": 60,
                        },
                    },
                },
            ]
        out.append(
            {
                "schema_version": 1,
                "batch_id": f"{run}{index:010d}".rjust(32, "0")[-32:],
                "sent_at_ms": now_ms,
                "extension": {"name": "lambdascope", "version": "0.1.0"},
                "environment": {
                    "environment_id": f"{run}env{index % 8}".rjust(32, "0")[-32:],
                    "function_name": "orders",
                    "function_version": "$LATEST",
                    "region": "us-east-1",
                    "memory_size_mb": 128,
                    "initialization_type": "on-demand",
                    "architecture": "x86_64",
                },
                "open_request_id": None,
                "telemetry": telemetry,
                "invocations": [],
            }
        )
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collector:
    """``lambdascope collector`` as a child process on a fixed port and store."""

    def __init__(self, store_dir: Path, port: int) -> None:
        self.store_dir = store_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.log = store_dir.parent / "collector.log"

    def start(self, timeout_s: float = 60.0) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LAMBDASCOPE_TOKEN": ""}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lambdascope",
                    "collector",
                    "--store",
                    f"chdb://{self.store_dir}",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the collector exited: {self.log.read_text()[-2000:]}")
            try:
                if request(self.port, "GET", "/readyz", timeout_s=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the collector did not become ready")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def request(
    port: int, method: str, path: str, body: bytes | None = None, timeout_s: float = 10.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def query(port: int, sql: str) -> Any:
    status, reply = request(port, "POST", "/api/v1/query", json.dumps({"sql": sql}).encode())
    assert status == 200, reply
    return json.loads(reply)["rows"][0][0]


@dataclass
class Round:
    invocations: int
    kills: int
    sends: int = 0
    stored_invocations: int = 0
    function_lines: int = 0
    repeated_lines: int = 0
    rollup_invocations: int = 0
    batches_acknowledged: set[str] = field(default_factory=set)

    @property
    def exactly_once(self) -> bool:
        expected_lines = self.invocations * FUNCTION_LINES_PER_INVOCATION
        return (
            self.stored_invocations == self.invocations
            and self.function_lines == expected_lines
            and self.repeated_lines == 0
            and self.rollup_invocations == self.invocations
        )


def run_round(
    work_dir: Path,
    *,
    batches: int,
    senders: int,
    kills: int,
    seed: int,
    deadline_s: float = 120.0,
) -> Round:
    """Send ``batches`` batches from ``senders`` threads while the collector is killed
    ``kills`` times at random moments and restarted; then count what the store holds."""
    rng = random.Random(seed)
    run = f"r{seed:x}"
    payloads = [json.dumps(b).encode() for b in make_batches(run, batches, int(time.time() * 1000))]
    collector = Collector(work_dir / "store", free_port())
    result = Round(invocations=batches * INVOCATIONS_PER_BATCH, kills=kills)
    lock = threading.Lock()
    deadline = time.monotonic() + deadline_s
    collector.start()
    try:

        def send(mine: list[bytes]) -> None:
            for body in mine:
                while time.monotonic() < deadline:
                    with lock:
                        result.sends += 1
                    try:
                        status, reply = request(collector.port, "POST", INGEST, body, 5.0)
                    except OSError:
                        status, reply = 0, b""
                    if status == 200:
                        with lock:
                            result.batches_acknowledged.add(json.loads(reply)["batch_id"])
                        break
                    time.sleep(0.05)  # down or busy: the extension retries the same batch

        threads = [
            threading.Thread(target=send, args=(payloads[i::senders],)) for i in range(senders)
        ]
        for thread in threads:
            thread.start()
        # Each kill lands mid-run: once a random share of the batches was answered, after a
        # random few milliseconds more (a group may be anywhere in its write then).
        for threshold in sorted(rng.uniform(0.1, 0.8) for _ in range(kills)):
            while time.monotonic() < deadline:
                with lock:
                    answered = len(result.batches_acknowledged)
                if answered >= threshold * batches:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            collector.kill()
            collector.start()
        for thread in threads:
            thread.join(timeout=max(1.0, deadline - time.monotonic()))
        port = collector.port
        result.stored_invocations = query(port, "SELECT count() FROM invocations")
        result.function_lines = query(port, "SELECT count() FROM logs WHERE stream = 'function'")
        result.repeated_lines = query(
            port,
            "SELECT count() FROM (SELECT batch_id, seq FROM logs GROUP BY batch_id, seq "
            "HAVING count() > 1)",
        )
        result.rollup_invocations = query(port, "SELECT sum(invocations) FROM invocation_minutes")
    finally:
        collector.stop()
    return result


INGEST = "/v1/extension/batches"
