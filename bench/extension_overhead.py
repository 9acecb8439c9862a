"""What the lambdascope extension costs a function, measured side by side in one run with the
emulator: `python bench/extension_overhead.py [--quick] [--warm N] [--cold N]`.

Rows (with their targets):
* init: cold-start init duration (platform.initReport) without vs with the extension, medians;
  the extension's ready time (process start to first `next`, its own extension_stats.startup_ms);
* per invocation: client-observed latency of warm invocations without vs with, median and p99
  (invocations interleaved, so drift on the machine hits both alike);
* post-runtime time: report durationMs - runtimeDone durationMs (Lambda's
  PostRuntimeExtensionsDuration), default `background` policy and the `end` policy;
* the extension's peak RSS (its own extension_stats.peak_rss_kb);
* peer comparison: added handler duration (runtimeDone durationMs over the untraced baseline)
  of one handler traced by OpenTelemetry's AwsLambdaInstrumentor (which flushes the SDK at the
  end of every invocation) with the SDK's OTLP/protobuf exporter, sending either to a "remote"
  collector on loopback behind an injected 20 ms delay (the usual set-up across a network) or
  to the lambdascope extension's local receiver; and lambdascope_tracing's own helper.

Not a test: figures depend on the machine. Loops are bounded; the default run takes about a
minute, `--quick` a few seconds.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from lambdascope.emulator import Emulator, FunctionConfig  # noqa: E402
from lambdascope.extension.layer import build_layer_dir  # noqa: E402

REMOTE_DELAY_S = 0.020

# A do-nothing external extension (register, then `next` forever; stdlib sockets, no
# telemetry): what the emulator's Extensions API costs any extension. Comparing with it
# separates lambdascope's own cost from the cost of having an extension at all.
NULL_EXTENSION = """import http.client, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
# one kept-alive connection, like lambdascope's (a new one per call costs the platform more)
api = http.client.HTTPConnection(host, int(port))
def call(method, path, body, headers):
    api.request(method, path, body, headers)
    response = api.getresponse()
    return response, response.read()
response, _ = call("POST", "/2020-01-01/extension/register",
                   b'{"events": ["INVOKE", "SHUTDOWN"]}', {"Lambda-Extension-Name": "null"})
headers = {"Lambda-Extension-Identifier": response.getheader("Lambda-Extension-Identifier")}
for _ in range(10 ** 9):
    if b"SHUTDOWN" in call("GET", "/2020-01-01/extension/event/next", None, headers)[1]:
        break
"""

PLAIN = """
from opentelemetry import trace

def handler(event, context):
    with trace.get_tracer("app").start_as_current_span("work"):
        pass
    return {"ok": True}
"""

TRACED_EXT = """
import lambdascope_tracing
from opentelemetry import trace

@lambdascope_tracing.instrument
def handler(event, context):
    with trace.get_tracer("app").start_as_current_span("work"):
        pass
    return {"ok": True, "last_flush_ms": lambdascope_tracing.stats["last_flush_ms"]}
"""

# The usual OpenTelemetry Lambda set-up: AwsLambdaInstrumentor wraps the handler and flushes the
# provider at the end of every invocation; the SDK's OTLP/protobuf exporter sends the spans to
# OTLP_TRACES_URL: a collector across the network (20 ms away) for the peer, or, unset, the
# lambdascope extension's local receiver (localhost:4318 in Lambda; the emulator gives each
# environment its own loopback address, the host of AWS_LAMBDA_RUNTIME_API).
INSTRUMENTED = """
import os
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

sandbox = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)[0]
url = os.environ.get("OTLP_TRACES_URL") or f"http://{sandbox}:4318/v1/traces"
provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("bench")


def handler(event, context):
    with tracer.start_as_current_span("work"):
        pass
    return {"ok": True}


AwsLambdaInstrumentor().instrument(tracer_provider=provider)
"""


def serve_sink(delay_s: float, record_path: str) -> None:
    """A loopback HTTP endpoint, run in its own process (`--serve-sink`) so that its work does
    not compete with the emulator for the bench process's GIL: the lambdascope collector
    (records each batch) or a "remote" OTLP collector (answers after `delay_s`). Prints its URL,
    serves until stdin closes."""
    record = open(record_path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the process
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if delay_s:
                time.sleep(delay_s)
            reply = b"{}"
            entry: dict[str, Any] = {"path": self.path}
            if self.path.startswith("/v1/extension/batches"):
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") else raw
                batch = json.loads(body)
                entry["batch"] = batch
                reply = json.dumps({"batch_id": batch["batch_id"], "duplicate": False}).encode()
            with lock:
                record.write(json.dumps(entry) + "\n")
                record.flush()
            # One write: separate header and body writes meet Nagle's algorithm and the
            # client's delayed ACK, adding ~40 ms per request that no real collector has.
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(reply)}\r\n\r\n"
            self.wfile.write(head.encode("latin-1") + reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    server.shutdown()
    server.server_close()
    record.close()


class _Sink:
    """The bench's handle on a `serve_sink` process."""

    def __init__(self, folder: Path, name: str, delay_s: float = 0.0) -> None:
        self.record_path = folder / f"{name}.jsonl"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-sink", str(delay_s), str(self.record_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the {name} sink did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def entries(self) -> list[dict[str, Any]]:
        if not self.record_path.exists():
            return []
        lines = self.record_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def _events(emu: Emulator, name: str) -> list[dict[str, Any]]:
    return [event for env in emu.environments(name) for event in list(env.hub.emitted)]


def _by_request(events: list[dict[str, Any]], kind: str) -> dict[str, float]:
    out = {}
    for event in events:
        record = event.get("record")
        if event.get("type") == kind and isinstance(record, dict) and "requestId" in record:
            out[record["requestId"]] = float(record["metrics"]["durationMs"])
    return out


def _init_durations(emu: Emulator, name: str) -> list[float]:
    return [
        float(e["record"]["metrics"]["durationMs"])
        for e in _events(emu, name)
        if e.get("type") == "platform.initReport"
    ]


def run(warm: int, cold: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lambdascope-bench-") as tmp:
        root = Path(tmp)
        code = {}
        for name, source in (
            ("plain", PLAIN),
            ("traced_ext", TRACED_EXT),
            ("instrumented", INSTRUMENTED),
        ):
            folder = root / "code" / name
            folder.mkdir(parents=True)
            (folder / "app.py").write_text(source)
            code[name] = folder
        layer_ext = root / "layer-ext"
        launcher = build_layer_dir(layer_ext, python_packages=True)
        if Path("/bin/bash").exists():
            # /bin/sh is bash in Lambda's images; here it may be dash, which has no
            # $EPOCHREALTIME for the extension's process-start figure.
            text = launcher.read_text().replace("#!/bin/sh", "#!/bin/bash", 1)
            launcher.write_text(text)
        layer_py = root / "layer-py"  # only python/: the untraced and "remote" functions
        shutil.copytree(layer_ext / "python", layer_py / "python")
        layer_null = root / "layer-null"
        shutil.copytree(layer_py, layer_null)
        null = layer_null / "extensions" / "null"
        null.parent.mkdir()
        null.write_text(f"#!{os.path.realpath(sys.executable)} -I\n{NULL_EXTENSION}")
        null.chmod(0o755)

        collector = _Sink(root, "collector")
        remote = _Sink(root, "remote", delay_s=REMOTE_DELAY_S)
        ext_env = {
            "LAMBDASCOPE_COLLECTOR_URL": collector.url,
            "LAMBDASCOPE_SPOOL_DIR": str(root / "spool"),
            # the interpreter itself, not a version-manager shim (pyenv's costs ~50 ms)
            "LAMBDASCOPE_PYTHON": os.path.realpath(sys.executable),
        }
        functions = [
            FunctionConfig("plain", "app.handler", code["plain"], layers=(layer_py,)),
            FunctionConfig("null", "app.handler", code["plain"], layers=(layer_null,)),
            FunctionConfig(
                "ext", "app.handler", code["plain"], layers=(layer_ext,), environment=ext_env
            ),
            FunctionConfig(
                "ext_end",
                "app.handler",
                code["plain"],
                layers=(layer_ext,),
                environment={**ext_env, "LAMBDASCOPE_FLUSH_POLICY": "end"},
            ),
            FunctionConfig(
                "traced_ext",
                "app.handler",
                code["traced_ext"],
                layers=(layer_ext,),
                environment=ext_env,
            ),
            FunctionConfig(
                "instrumented_ext",
                "app.handler",
                code["instrumented"],
                layers=(layer_ext,),
                environment=ext_env,
            ),
            FunctionConfig(
                "remote",
                "app.handler",
                code["instrumented"],
                layers=(layer_py,),
                environment={"OTLP_TRACES_URL": remote.url + "/v1/traces"},
            ),
        ]
        results: dict[str, Any] = {}
        try:
            # Sampled memory: a memory cgroup costs the emulator 7-13 ms per process it moves
            # in, an artefact of running locally that would be charged to the extension here.
            with Emulator(functions, keep_warm_s=3600, memory_limit="sampling") as emu:
                results = _measure(emu, warm, cold)
        finally:
            collector.stop()
            remote.stop()
        batches = [entry["batch"] for entry in collector.entries() if "batch" in entry]
        stats = [b["extension_stats"] for b in batches if "extension_stats" in b]
        first_by_env: dict[str, float] = {}
        for batch in batches:
            env_id = batch["environment"]["environment_id"]
            extension_stats = batch.get("extension_stats", {})
            startup = extension_stats.get("process_startup_ms") or extension_stats.get("startup_ms")
            if startup is not None and batch["environment"]["function_name"] == "ext":
                first_by_env.setdefault(env_id, float(startup))
        results["ready_ms"] = list(first_by_env.values())
        results["peak_rss_kb"] = max((s.get("peak_rss_kb") or 0 for s in stats), default=0)
        results["dropped"] = sum(s.get("dropped_events", 0) for s in stats)
        results["otlp_payloads"] = sum(len(b.get("otlp", [])) for b in batches)
        results["remote_requests"] = len(remote.entries())
    return results


def _measure(emu: Emulator, warm: int, cold: int) -> dict[str, Any]:
    names = ["plain", "null", "ext", "ext_end", "traced_ext", "instrumented_ext", "remote"]
    for name in names:
        emu.invoke(name, b"{}")  # one warm environment each
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    latency: dict[str, list[float]] = {name: [] for name in names}
    flush_ms: list[float] = []
    deadline = time.monotonic() + 300
    try:
        for _ in range(warm):
            if time.monotonic() > deadline:
                break
            for name in names:  # interleaved
                started = time.perf_counter()
                connection.request("POST", f"/2015-03-31/functions/{name}/invocations", b"{}")
                response = connection.getresponse()
                body = response.read()
                latency[name].append((time.perf_counter() - started) * 1000.0)
                if name == "traced_ext":
                    value = json.loads(body).get("last_flush_ms")
                    if value is not None:
                        flush_ms.append(float(value))
    finally:
        connection.close()
    time.sleep(0.3)  # the last reports are emitted just after the responses
    runtime: dict[str, list[float]] = {}
    post_runtime: dict[str, list[float]] = {}
    for name in names:
        events = _events(emu, name)
        done = _by_request(events, "platform.runtimeDone")
        reports = _by_request(events, "platform.report")
        runtime[name] = list(done.values())
        post_runtime[name] = [reports[r] - done[r] for r in reports if r in done]
    init: dict[str, list[float]] = {"plain": [], "null": [], "ext": []}
    cold_latency: dict[str, list[float]] = {"plain": [], "null": [], "ext": []}
    for _ in range(cold):
        for name in init:
            for env in emu.environments(name):
                env.shutdown("spindown")  # the next invoke starts a new environment
            before = len(_init_durations(emu, name))
            started = time.perf_counter()
            emu.invoke(name, b"{}")
            cold_latency[name].append((time.perf_counter() - started) * 1000.0)
            after = _init_durations(emu, name)
            if len(after) > before:
                init[name].append(after[-1])
    return {
        "latency": latency,
        "runtime": runtime,
        "post_runtime": post_runtime,
        "init": init,
        "cold_latency": cold_latency,
        "flush_ms": flush_ms,
    }


def _row(
    label: str, none: float, null: float, ext: float, target: str, met: bool | None, digits: int
) -> tuple[str, ...]:
    fmt = "%." + str(digits) + "f"
    return (
        label,
        fmt % none if none == none else "",
        fmt % null if null == null else "",
        fmt % ext,
        f"{ext / none:.2f}x ({ext - none:+.2f})" if none == none and none else "",
        f"{ext / null:.2f}x ({ext - null:+.2f})" if null == null and null else "",
        target,
        "" if met is None else ("ok" if met else "MISSED"),
    )


def table(r: dict[str, Any]) -> str:
    lat, run_ms, post = r["latency"], r["runtime"], r["post_runtime"]
    nan = float("nan")
    init = {name: _median(values) for name, values in r["init"].items()}
    cold = {name: _median(values) for name, values in r["cold_latency"].items()}
    ready = _median(r["ready_ms"])
    rows: list[tuple[str, ...]] = [
        (
            "metric",
            "no ext",
            "null ext",
            "lambdascope",
            "vs no ext",
            "vs null ext",
            "target",
            "",
        ),
        _row(
            "cold init duration, median ms",
            init["plain"],
            init["null"],
            init["ext"],
            "<= +40 ms",
            init["ext"] - init["plain"] <= 40,
            1,
        ),
        _row(
            "cold invoke latency, median ms",
            cold["plain"],
            cold["null"],
            cold["ext"],
            "",
            None,
            1,
        ),
        _row(
            "extension ready (process start to 1st next), median ms",
            nan,
            nan,
            ready,
            "<= 40 ms",
            ready <= 40,
            1,
        ),
    ]
    for label, fn, share, floor in (("median", _median, 0.02, 1.0), ("p99", _p99, 0.05, 0.0)):
        base, with_ext = fn(lat["plain"]), fn(lat["ext"])
        rows.append(
            _row(
                f"warm client latency, {label} ms",
                base,
                fn(lat["null"]),
                with_ext,
                "<= 2% or 1 ms" if label == "median" else "<= 5%",
                with_ext - base <= max(base * share, floor),
                2,
            )
        )
    rows += [
        _row(
            "post-runtime ms, median (default background policy)",
            _median(post["plain"]),
            _median(post["null"]),
            _median(post["ext"]),
            "< 1 ms",
            _median(post["ext"]) < 1,
            3,
        ),
        _row(
            "post-runtime ms, median (opt-in end policy)",
            _median(post["plain"]),
            _median(post["null"]),
            _median(post["ext_end"]),
            "",
            None,
            2,
        ),
        _row(
            "extension peak RSS MB",
            nan,
            nan,
            r["peak_rss_kb"] / 1024,
            "< 25 MB",
            r["peak_rss_kb"] / 1024 < 25,
            1,
        ),
    ]
    added_helper = _median(run_ms["traced_ext"]) - _median(run_ms["ext"])
    added_ext = _median(run_ms["instrumented_ext"]) - _median(run_ms["ext"])
    added_remote = _median(run_ms["remote"]) - _median(run_ms["plain"])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [
        "",
        "peer comparison: handler duration added by tracing (runtimeDone durationMs over the "
        "untraced handler, 2 spans per invocation), median ms",
        "  AwsLambdaInstrumentor + OTLP/protobuf to a collector across the network "
        f"({REMOTE_DELAY_S * 1000:.0f} ms away): {added_remote:+.2f}",
        f"  the same handler exporting to the lambdascope extension:                  "
        f"{added_ext:+.2f}"
        + (f"  ({added_remote / added_ext:.0f}x less)" if added_ext > 0 else ""),
        f"  lambdascope_tracing (the layer's helper) exporting to the extension:      "
        f"{added_helper:+.2f}",
        "  lambdascope_tracing's flush after the handler (one loopback POST): median "
        f"{_median(r['flush_ms']):.3f} ms, p99 {_p99(r['flush_ms']):.3f} ms",
        "",
        f"samples: {len(lat['plain'])} warm invocations per function (interleaved), "
        f"{len(r['init']['ext'])} cold starts per column; OTLP payloads forwarded by the "
        f"extension: {r['otlp_payloads']}; events dropped: {r['dropped']}",
        "null ext = a do-nothing extension (register, then next on one kept connection): the "
        "emulator's cost of any extension",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/extension_overhead.py")
    parser.add_argument("--quick", action="store_true", help="a few seconds, rough figures")
    parser.add_argument("--warm", type=int, default=None, help="warm invocations per function")
    parser.add_argument("--cold", type=int, default=None, help="cold starts per function")
    parser.add_argument(
        "--serve-sink", nargs=2, metavar=("DELAY_S", "FILE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve_sink:
        serve_sink(float(args.serve_sink[0]), args.serve_sink[1])
        return 0
    warm = args.warm if args.warm is not None else (30 if args.quick else 500)
    cold = args.cold if args.cold is not None else (2 if args.quick else 8)
    warm, cold = max(1, min(warm, 5000)), max(1, min(cold, 100))
    started = time.monotonic()
    results = run(warm, cold)
    print(table(results))
    print(f"(run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
