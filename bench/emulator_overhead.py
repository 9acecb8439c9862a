"""The emulator's own cost, as ratios measured side by side in one run (not a timed test).

    python bench/emulator_overhead.py [--quick]

Measures on loopback:
- warm overhead: Invoke API round trip (HTTP keep-alive, as boto3 does) minus the runtime's
  own time (`platform.runtimeDone` durationMs), median and p95, against the 2 ms target and
  against a bare stdlib HTTP round trip on the same machine;
- cold start: an invoke of a fresh environment (init included) without and with the
  lambdascope extension (the layer from `lambdascope.extension.layer.build_layer_dir`), against
  a bare `python -c pass`; with private mount namespaces against without, and with the
  kernel's memory limit (a cgroup per environment) against sampled memory, where possible.
Every loop is bounded; the full run takes well under a minute.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lambdascope.emulator.bench import HANDLER, _percentile, _runtime_ms  # noqa: E402
from lambdascope.emulator.config import FunctionConfig  # noqa: E402
from lambdascope.emulator.emulator import Emulator  # noqa: E402
from lambdascope.emulator.memory_limit import probe_cgroup  # noqa: E402
from lambdascope.emulator.sandboxfs import probe_namespace  # noqa: E402
from lambdascope.extension.layer import build_layer_dir  # noqa: E402

WARM_TARGET_MS = 2.0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bare_http_round_trip_ms(runs: int) -> list[float]:
    """Round trips to a do-nothing stdlib HTTP server: the floor any Python server pays."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as the emulator's servers: no delayed-ACK stalls

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            conn.request("POST", "/", b"{}")
            conn.getresponse().read()
            samples.append((time.perf_counter() - started) * 1000)
        conn.close()
        return samples
    finally:
        server.shutdown()
        server.server_close()


def python_start_ms(runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def warm_overhead_ms(emu: Emulator, runs: int) -> list[float]:
    emu.invoke("plain", b"{}")  # warm one environment
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    round_trips: list[tuple[str, float]] = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.request("POST", "/2015-03-31/functions/plain/invocations", b"{}")
        response = conn.getresponse()
        response.read()
        round_trips.append(
            (response.getheader("X-Amzn-RequestId") or "", (time.perf_counter() - started) * 1000)
        )
    conn.close()
    time.sleep(0.1)  # the last runtimeDone is emitted just after its response
    overheads = []
    for request_id, round_trip_ms in round_trips:
        runtime_ms = _runtime_ms(emu, "plain", request_id)
        if runtime_ms is not None:
            overheads.append(round_trip_ms - runtime_ms)
    return overheads


def cold_start_ms(emu: Emulator, runs: int) -> dict[str, list[float]]:
    """Alternating plain / with the extension, so drift hits both alike."""
    colds: dict[str, list[float]] = {"plain": [], "with_ext": []}
    for _ in range(runs):
        for name in colds:
            for env in emu.environments(name):
                env.shutdown("spindown")  # the next invoke is cold
            started = time.perf_counter()
            result = emu.invoke(name, b"{}")
            if result.function_error is not None:
                raise RuntimeError(f"{name} failed: {result.payload!r}")
            colds[name].append((time.perf_counter() - started) * 1000)
    return colds


def run(quick: bool) -> list[tuple[str, float, str, float]]:
    warm_runs, cold_runs, baseline_runs = (150, 3, 5) if quick else (1000, 15, 10)
    rows: list[tuple[str, float, str, float]] = []
    namespaces, _ = probe_namespace()
    modes = ["none", "namespace"] if namespaces else ["none"]
    with tempfile.TemporaryDirectory(prefix="lambdascope-bench-") as tmp:
        root = Path(tmp)
        code = root / "code"
        code.mkdir()
        (code / "app.py").write_text(HANDLER)
        layer = root / "layer"
        build_layer_dir(layer)
        functions = [
            FunctionConfig("plain", "app.handler", code),
            FunctionConfig("with_ext", "app.handler", code, layers=(layer,)),
        ]
        bare = _median(bare_http_round_trip_ms(warm_runs))
        python = _median(python_start_ms(baseline_runs))
        colds: dict[str, dict[str, list[float]]] = {}
        for mode in modes:
            with Emulator(functions, keep_warm_s=3600, isolation=mode) as emu:
                if mode == modes[-1]:
                    overheads = warm_overhead_ms(emu, warm_runs)
                    median, p95 = _median(overheads), _percentile(overheads, 0.95)
                    rows.append(
                        (f"warm overhead median ({mode})", median, "target", WARM_TARGET_MS)
                    )
                    rows.append((f"warm overhead p95 ({mode})", p95, "target", WARM_TARGET_MS))
                    rows.append(
                        (f"warm overhead median ({mode})", median, "bare HTTP round trip", bare)
                    )
                colds[mode] = cold_start_ms(emu, cold_runs)
        # The kernel's memory limit (a cgroup per environment) against summing the processes'
        # peaks: what holding the sandbox to its memory size costs a cold start.
        sampled: dict[str, list[float]] | None = None
        if probe_cgroup()[0] is not None:
            with Emulator(
                functions, keep_warm_s=3600, isolation="none", memory_limit="sampling"
            ) as emu:
                sampled = cold_start_ms(emu, cold_runs)
        for mode in modes:
            plain, with_ext = _median(colds[mode]["plain"]), _median(colds[mode]["with_ext"])
            rows.append((f"cold start, no extension ({mode})", plain, "python -c pass", python))
            rows.append(
                (f"cold start, lambdascope extension ({mode})", with_ext, "no extension", plain)
            )
        if "namespace" in colds:
            for name, label in (("plain", "no extension"), ("with_ext", "lambdascope extension")):
                rows.append(
                    (
                        f"cold start, {label} (namespace)",
                        _median(colds["namespace"][name]),
                        "same without namespace",
                        _median(colds["none"][name]),
                    )
                )
        if sampled is not None:
            for name, label in (("plain", "no extension"), ("with_ext", "lambdascope extension")):
                rows.append(
                    (
                        f"cold start, {label} (cgroup memory)",
                        _median(colds["none"][name]),
                        "same, sampled memory",
                        _median(sampled[name]),
                    )
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/emulator_overhead.py")
    parser.add_argument("--quick", action="store_true", help="fewer samples (~10 s)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = run(args.quick)
    width = max(len(r[0]) for r in rows)
    base_width = max(len(r[2]) for r in rows)
    print(f"{'measure':<{width}}  {'ms':>8}  {'against':<{base_width}}  {'ms':>8}  {'ratio':>6}")
    for name, value, against, base in rows:
        ratio = value / base if base else float("nan")
        print(f"{name:<{width}}  {value:8.2f}  {against:<{base_width}}  {base:8.2f}  {ratio:6.2f}")
    print(f"({time.monotonic() - started:.1f} s; {sys.platform}, Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
