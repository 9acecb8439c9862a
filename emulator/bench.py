"""Benchmark of the emulator itself: `python -m lambdascope.emulator.bench [--runs N]`.

Measures, in one run on loopback:
- warm overhead: Invoke API round trip (HTTP keep-alive) minus the runtime's own time
  (`platform.runtimeDone` durationMs) for a handler that returns at once;
- cold start: invoke of a fresh environment, without and with one minimal external extension.
Prints JSON; `run_benchmark()` returns the same dict.
"""

from __future__ import annotations

import argparse
import http.client
import json
import stat
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lambdascope.emulator.config import FunctionConfig
from lambdascope.emulator.emulator import Emulator

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"
EXTENSION = """#!/usr/bin/env python3
import json, os, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
req = urllib.request.Request(f"http://{api}/2020-01-01/extension/register", method="POST",
    data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
    headers={"Lambda-Extension-Name": "minimal"})
ext_id = urllib.request.urlopen(req).headers["Lambda-Extension-Identifier"]
while True:
    req = urllib.request.Request(f"http://{api}/2020-01-01/extension/event/next",
        headers={"Lambda-Extension-Identifier": ext_id})
    if json.loads(urllib.request.urlopen(req).read())["eventType"] == "SHUTDOWN":
        break
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _runtime_ms(emu: Emulator, name: str, request_id: str) -> float | None:
    for env in emu.environments(name):
        for event in reversed(env.hub.emitted):
            record = event["record"]
            if (
                event["type"] == "platform.runtimeDone"
                and isinstance(record, dict)
                and record.get("requestId") == request_id
            ):
                return float(record["metrics"]["durationMs"])
    return None


def run_benchmark(runs: int = 300, cold_runs: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lambdascope-bench-") as tmp:
        root = Path(tmp)
        code = root / "code"
        code.mkdir()
        (code / "app.py").write_text(HANDLER)
        layer = root / "layer" / "extensions"
        layer.mkdir(parents=True)
        ext = layer / "minimal"
        ext.write_text(EXTENSION)
        ext.chmod(ext.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        plain = FunctionConfig("plain", "app.handler", code)
        with_ext = FunctionConfig("with_ext", "app.handler", code, layers=(root / "layer",))
        with Emulator([plain, with_ext], keep_warm_s=3600) as emu:
            conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
            emu.invoke("plain", b"{}")  # warm one environment
            round_trips: list[tuple[str, float]] = []
            for _ in range(runs):
                started = time.perf_counter()
                conn.request("POST", "/2015-03-31/functions/plain/invocations", b"{}")
                response = conn.getresponse()
                response.read()
                round_trip_ms = (time.perf_counter() - started) * 1000
                round_trips.append((response.getheader("X-Amzn-RequestId") or "", round_trip_ms))
            conn.close()
            time.sleep(0.1)  # the last runtimeDone is emitted just after its response
            overheads = []
            for request_id, round_trip_ms in round_trips:
                runtime_ms = _runtime_ms(emu, "plain", request_id)
                if runtime_ms is not None:
                    overheads.append(round_trip_ms - runtime_ms)
            colds: dict[str, list[float]] = {"plain": [], "with_ext": []}
            for _ in range(cold_runs):
                for name in colds:
                    for env in emu.environments(name):
                        env.shutdown("spindown")  # force the next invoke to be cold
                    started = time.perf_counter()
                    emu.invoke(name, b"{}")
                    colds[name].append((time.perf_counter() - started) * 1000)
    return {
        "warm_overhead_ms": {
            "median": round(statistics.median(overheads), 3),
            "p95": round(_percentile(overheads, 0.95), 3),
            "samples": len(overheads),
        },
        "cold_start_ms": {
            name: {"median": round(statistics.median(v), 1), "max": round(max(v), 1)}
            for name, v in colds.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambdascope.emulator.bench")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(run_benchmark(args.runs, args.cold_runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
