"""The collector's HTTP layer before and after a change, measured side by side in one run.

    python bench/collector_http.py [--before REV] [--quick] [--events N] [--load-s S]
                                   [--senders 200] [--rounds R]

*Before* is the collector as of git revision REV (default: the newest commit whose
``collector/server.py`` still imports ``ThreadingHTTPServer``; when the working tree itself still
does, that is HEAD and the output says so), checked out with ``git worktree add --detach`` into a
temporary directory and removed at the end. *After* is the current working tree. Each side runs
as its own ``python -m lambdascope collector --store chdb:///<fresh dir>`` subprocess, with
``PYTHONPATH`` set to its tree (the output prints which ``collector/__init__.py`` each side
imports) and an ingest token, on 127.0.0.1. Every measurement starts a fresh collector with a
fresh store, alternating before, after (``--rounds`` times):

a) *Ingest throughput*: N telemetry events as gzip extension batches of
   ``ingest_throughput.make_batch`` (100 invocations, 500 events each), pre-built by a separate
   client process (its CPU is not the collector's) and POSTed by 16 sender threads, each waiting
   for its acknowledgement (rows committed) before sending again. Events/s = acknowledged events
   / wall time; latency = one request to its 200; collector CPU per event = the collector
   process's user + system time (``/proc/<pid>/stat``, all its threads, chDB included) / events.
b) *200 senders*: 200 threads of one client process, each with its own keep-alive connection,
   post small batches (10 invocations, 50 events) back to back for ``--load-s`` seconds. A 503
   is the collector's designed back-pressure: the sender pauses 50 ms and retries the same batch
   (counted, not an error; a batch refused 200 times in a row is given up and counted). The
   latency columns time one request to its 200; the *batch* ones time a batch from its first
   try to its acknowledgement, retries included, which is what a sender waits. Connection errors
   and other non-200 answers must be 0. The collector's resident memory is sampled every 0.5 s
   (``VmRSS``) for its peak.

Reading the tables: one row per side (the median over rounds; counts are summed, the peak RSS is
the maximum) and an ``after/before`` row of ratios. For rates a ratio above 1 means the new
collector is faster; for latencies, CPU per event and memory a ratio below 1 means it is better.
Both collectors and the client share this machine's cores (printed as ``nproc``), so absolute
figures depend on the machine; the ratios are the point. With 200 threads in one client process
the latencies include some client-side scheduling delay, the same for both sides.

Not a test: figures depend on the machine. Every loop is bounded by a count or a deadline, and
every process and worktree this script starts is stopped and removed, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ingest_throughput import (  # noqa: E402
    EVENTS_PER_BATCH,
    INVOCATIONS_PER_BATCH,
    gzip_body,
    make_batch,
)

INGEST_PATH = "/v1/extension/batches"
QUERY_PATH = "/api/v1/query"
SERVER_FILE = "collector/server.py"
OLD_SERVER_CLASS = "ThreadingHTTPServer"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
CLIENT_TIMEOUT_S = 60.0
RETRY_PAUSE_S = 0.05
MAX_ATTEMPTS = 200  # per batch: 503 pauses and reconnects, bounded (>= 10 s of retrying)
#: Small batches of the load test: their ids are made unique per request by replacing this run
#: token (8 characters, so it is whole in the batch id and in every request id).
LOAD_TOKEN = "Q7Q7Q7Q7"
LOAD_TEMPLATES = 64


class StartFailed(Exception):
    """A collector subprocess did not come up (the message carries its stderr tail)."""


# -- the two trees --------------------------------------------------------------------------------


def venv_python() -> str:
    """The project's virtualenv interpreter (the collectors' Python), else this one."""
    candidate = ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def git(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=120
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _imports_old_server(text: str) -> bool:
    return (
        any(
            line.startswith(("from http.server import", "import http.server"))
            and OLD_SERVER_CLASS in line
            for line in text.splitlines()
        )
        or f"({OLD_SERVER_CLASS})" in text
    )


def _server_at(rev: str) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{SERVER_FILE}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout if done.returncode == 0 else None


def default_before() -> tuple[str, str]:
    """(commit, note): the newest commit whose server.py still uses ThreadingHTTPServer."""
    tree_text = (ROOT / SERVER_FILE).read_text()
    head = git("rev-parse", "HEAD")
    if _imports_old_server(tree_text):
        return head, (
            f"the working tree's {SERVER_FILE} still imports {OLD_SERVER_CLASS}, so before = HEAD "
            "(before and after differ only by uncommitted changes)"
        )
    if (text := _server_at(head)) is not None and _imports_old_server(text):
        return head, (
            f"HEAD: its {SERVER_FILE} still imports {OLD_SERVER_CLASS}; the working tree's no "
            "longer does"
        )
    # Walk the commits that touched server.py, newest first (bounded): the first one without
    # the import whose parent has it removed it, and that parent is the newest with it.
    for commit in git("log", "-n", "500", "--format=%H", "HEAD", "--", SERVER_FILE).split():
        text = _server_at(commit)
        if text is not None and _imports_old_server(text):
            return commit, f"newest commit whose {SERVER_FILE} imports {OLD_SERVER_CLASS}"
        parent = git("rev-parse", "--verify", "-q", f"{commit}^", check=False)
        parent_text = _server_at(parent) if parent else None
        if parent_text is not None and _imports_old_server(parent_text):
            return parent, f"parent of {commit[:10]}, the commit that dropped {OLD_SERVER_CLASS}"
    raise RuntimeError(f"no commit found whose {SERVER_FILE} imports {OLD_SERVER_CLASS}")


def describe_rev(rev: str) -> str:
    return git("log", "-1", "--format=%h %s", rev)


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """``git worktree add --detach`` REV into a fresh /tmp directory; removed on exit."""
    path = Path(tempfile.mkdtemp(prefix="lambdascope-bench-before-"))
    path.rmdir()  # git wants to create it
    git("worktree", "add", "--detach", str(path), rev)
    try:
        yield path
    finally:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            print(f"warning: git worktree remove {path}: {done.stderr.strip()}", file=sys.stderr)
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class Side:
    name: str  # "before" / "after"
    tree: Path
    label: str
    imports: str = ""  # collector/__init__.py as imported with this side's PYTHONPATH

    def env(self, token: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDASCOPE_")}
        env.pop("PYTHONHOME", None)
        env["PYTHONPATH"] = str(self.tree)
        env["LAMBDASCOPE_TOKEN"] = token
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def check_imports(self) -> str:
        """Import the collector and ``lambdascope`` the way the collector will; both must come
        from this side's tree (PYTHONPATH must win over the editable install). Trees from
        before the parts moved under ``lambdascope`` have the collector as ``collector``."""
        code = (
            "import os, lambdascope\n"
            "if os.path.isdir(os.path.join(os.path.dirname(lambdascope.__file__), 'collector')):\n"
            "    import lambdascope.collector as collector\n"
            "else:\n"
            "    import collector\n"
            "print(collector.__file__); print(lambdascope.__file__)"
        )
        done = subprocess.run(
            [venv_python(), "-c", code],
            env=self.env("check"),
            cwd=self.tree,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise StartFailed(
                f"{self.name}: importing collector from {self.tree} failed:\n{tail(done.stderr)}"
            )
        files = done.stdout.split()
        tree = str(self.tree.resolve())
        if len(files) != 2 or not all(str(Path(f).resolve()).startswith(tree) for f in files):
            raise StartFailed(
                f"{self.name}: PYTHONPATH={tree} does not win: imports {files} instead"
            )
        self.imports = files[0]
        return files[0]


def tail(text: str, lines: int = 25) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


# -- one collector subprocess -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Collector:
    side: Side
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU of the collector process (all its threads)."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def stderr_tail(self) -> str:
        path = self.workdir / "stderr.txt"
        return tail(path.read_text(errors="replace")) if path.exists() else "    (none)"

    def query(self, sql: str, timeout: float = 300.0) -> tuple[int, bytes]:
        """POST the read API; (status, body)."""
        body = json.dumps({"sql": sql, "parameters": {}}).encode()
        return http_request(
            self.port,
            "POST",
            QUERY_PATH,
            body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"  {self.side.name}: no exit {STOP_TIMEOUT_S:.0f} s after SIGTERM: SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)


def start_collector(side: Side, parent: Path) -> Collector:
    """A collector of ``side`` on a free port with a fresh store under ``parent``, ready."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{side.name}-", dir=parent))
    token = secrets.token_hex(16)
    port = free_port()
    command = [
        venv_python(),
        "-m",
        "lambdascope",
        "collector",
        "--store",
        f"chdb://{workdir}/store",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    with (workdir / "stdout.txt").open("wb") as out, (workdir / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(command, env=side.env(token), cwd=side.tree, stdout=out, stderr=err)
    collector = Collector(side, proc, port, token, workdir)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StartFailed(
                    f"{side.name} collector exited with status {proc.returncode} before "
                    f"becoming ready; its stderr:\n{collector.stderr_tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_request(port, "GET", "/readyz", timeout=2.0)[0] == 200:
                    return collector
            time.sleep(0.2)
        raise StartFailed(
            f"{side.name} collector not ready after {READY_TIMEOUT_S:.0f} s; its stderr:\n"
            f"{collector.stderr_tail()}"
        )
    except BaseException:
        collector.stop()
        raise


@contextlib.contextmanager
def running(side: Side, parent: Path) -> Iterator[Collector]:
    collector = start_collector(side, parent)
    try:
        yield collector
    finally:
        collector.stop()
        shutil.rmtree(collector.workdir, ignore_errors=True)


class RssSampler:
    """Samples a collector's VmRSS every ``interval_s`` on a thread while in the ``with``."""

    def __init__(self, collector: Collector, interval_s: float) -> None:
        self.collector = collector
        self.interval_s = interval_s
        self.samples: list[float] = []
        self.times: list[float] = []  # time.monotonic() of each sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self.collector.rss_mb()
            if value == value:  # not NaN
                self.times.append(time.monotonic())
                self.samples.append(value)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak(self) -> float:
        return max(self.samples, default=float("nan"))


# -- the client process -----------------------------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _load_templates(invocations: int) -> list[str]:
    """JSON texts of small batches (the first ``invocations`` of make_batch's), whose ids all
    carry LOAD_TOKEN; replacing it gives each request its own batch and request ids."""
    texts = []
    per_invocation = EVENTS_PER_BATCH // INVOCATIONS_PER_BATCH
    for j in range(LOAD_TEMPLATES):
        batch = make_batch(j, LOAD_TOKEN)
        batch["telemetry"] = batch["telemetry"][: invocations * per_invocation]
        batch["invocations"] = batch["invocations"][:invocations]
        texts.append(json.dumps(batch))
    return texts


def client_main(config: dict[str, Any]) -> None:
    """Senders as ``config`` says; prints "ready", waits for "go", prints one JSON line.

    mode "count": ``batches`` pre-built full batches shared by ``senders`` threads.
    mode "load": small batches built per request until ``seconds`` have passed.
    """
    port, token, senders = int(config["port"]), str(config["token"]), int(config["senders"])
    mode = config["mode"]
    bodies: list[bytes] = []
    templates: list[str] = []
    if mode == "count":
        bodies = [gzip_body(make_batch(i, config["run"])) for i in range(config["batches"])]
    else:
        templates = _load_templates(int(config["invocations"]))
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Authorization": f"Bearer {token}",
    }
    lock = threading.Lock()
    counts = {"ok": 0, "refused": 0, "conn_errors": 0, "other": 0, "gave_up": 0}
    statuses: dict[str, int] = {}
    errors: list[str] = []
    latencies: list[list[float]] = []  # per sender: one request to its 200
    waits: list[list[float]] = []  # per sender: a batch's first try to its 200, retries included
    state = {"next": 0}
    print("ready", flush=True)
    sys.stdin.readline()  # building bodies is not part of the measurement
    started = time.perf_counter()
    deadline = time.monotonic() + (
        float(config["seconds"]) if mode == "load" else float(config["max_s"])
    )

    def take() -> int | None:
        with lock:
            i = state["next"]
            if (mode == "count" and i >= len(bodies)) or time.monotonic() >= deadline:
                return None
            state["next"] = i + 1
            return i

    def body_for(i: int) -> bytes:
        if mode == "count":
            return bodies[i]
        text = templates[i % LOAD_TEMPLATES].replace(LOAD_TOKEN, f"L{i:07d}")
        return gzip.compress(text.encode(), compresslevel=6)

    def sender() -> None:
        mine: list[float] = []
        mine_waits: list[float] = []
        with lock:
            latencies.append(mine)
            waits.append(mine_waits)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
        try:
            while (i := take()) is not None:
                body = body_for(i)
                first_try = time.perf_counter()
                for _attempt in range(MAX_ATTEMPTS):
                    t0 = time.perf_counter()
                    try:
                        conn.request("POST", INGEST_PATH, body=body, headers=headers)
                        response = conn.getresponse()
                        response.read()
                    except (OSError, http.client.HTTPException) as exc:
                        with lock:
                            counts["conn_errors"] += 1
                            if len(errors) < 5:
                                errors.append(f"{type(exc).__name__}: {exc}")
                        conn.close()
                        conn = http.client.HTTPConnection(
                            "127.0.0.1", port, timeout=CLIENT_TIMEOUT_S
                        )
                        time.sleep(RETRY_PAUSE_S)
                        continue
                    if response.status == 200:
                        done = time.perf_counter()
                        mine.append(done - t0)
                        mine_waits.append(done - first_try)
                        with lock:
                            counts["ok"] += 1
                        break
                    if response.status == 503:
                        with lock:
                            counts["refused"] += 1
                        time.sleep(RETRY_PAUSE_S)
                        continue
                    with lock:
                        counts["other"] += 1
                        key = str(response.status)
                        statuses[key] = statuses.get(key, 0) + 1
                    break
                else:
                    with lock:
                        counts["gave_up"] += 1
        finally:
            conn.close()

    cpu0 = time.process_time()
    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    join_by = time.monotonic() + float(config["max_s"]) + 2 * CLIENT_TIMEOUT_S
    for t in threads:
        t.join(timeout=max(0.1, join_by - time.monotonic()))
    elapsed = time.perf_counter() - started
    merged = sorted(v for per in latencies for v in per)
    merged_waits = sorted(v for per in waits for v in per)
    result = {
        **counts,
        "statuses": statuses,
        "errors": errors,
        "stuck_senders": sum(t.is_alive() for t in threads),
        "seconds": elapsed,
        "client_cpu_s": time.process_time() - cpu0,
        "p50_ms": _percentile(merged, 0.50) * 1000,
        "p99_ms": _percentile(merged, 0.99) * 1000,
        "max_ms": (merged[-1] if merged else float("nan")) * 1000,
        "batch_p50_ms": _percentile(merged_waits, 0.50) * 1000,
        "batch_p99_ms": _percentile(merged_waits, 0.99) * 1000,
        "batch_max_ms": (merged_waits[-1] if merged_waits else float("nan")) * 1000,
    }
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)  # stuck senders (if any) must not keep the process alive


def run_client(
    config: dict[str, Any], collector: Collector, rss_interval_s: float
) -> dict[str, Any]:
    """Start the client process, let it build its bodies, then time it against ``collector``:
    adds the collector's CPU seconds and peak RSS over the run to the client's result."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--client", json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the client process did not start")
        cpu0 = collector.cpu_seconds()
        with RssSampler(collector, rss_interval_s) as sampler:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        cpu_s = collector.cpu_seconds() - cpu0
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not line:
        raise RuntimeError("the client process ended without a result")
    result = dict(json.loads(line))
    result["collector_cpu_s"] = cpu_s
    result["peak_rss_mb"] = sampler.peak
    return result


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Run:
    side: str
    measurement: str
    result: dict[str, Any] = field(default_factory=dict)


def measure_ingest(collector: Collector, events: int, senders: int, run: str) -> dict[str, Any]:
    batches = max(1, events // EVENTS_PER_BATCH)
    config = {
        "mode": "count",
        "port": collector.port,
        "token": collector.token,
        "senders": senders,
        "batches": batches,
        "run": run,
        "max_s": 900.0,
    }
    result = run_client(config, collector, 0.5)
    result["events"] = result["ok"] * EVENTS_PER_BATCH
    result["events_s"] = result["events"] / result["seconds"]
    result["cpu_us_per_event"] = result["collector_cpu_s"] / max(1, result["events"]) * 1e6
    return result


def measure_load(
    collector: Collector, seconds: float, senders: int, invocations: int
) -> dict[str, Any]:
    config = {
        "mode": "load",
        "port": collector.port,
        "token": collector.token,
        "senders": senders,
        "seconds": seconds,
        "invocations": invocations,
        "max_s": seconds,
    }
    result = run_client(config, collector, 0.5)
    per_batch = invocations * (EVENTS_PER_BATCH // INVOCATIONS_PER_BATCH)
    result["events"] = result["ok"] * per_batch
    result["requests_s"] = result["ok"] / result["seconds"]
    result["events_s"] = result["events"] / result["seconds"]
    return result


def _line(side: str, r: dict[str, Any]) -> str:
    extra = f"; other statuses {r['statuses']}" if r["statuses"] else ""
    extra += f"; first errors {r['errors']}" if r["errors"] else ""
    extra += f"; {r['stuck_senders']} senders stuck" if r["stuck_senders"] else ""
    extra += f"; {r['gave_up']} batches given up" if r["gave_up"] else ""
    return (
        f"  {side}: {r['ok']:,} ok in {r['seconds']:.2f} s, {r['events_s']:,.0f} events/s, "
        f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms (batch, retries included: p50 "
        f"{r['batch_p50_ms']:.1f} ms, p99 {r['batch_p99_ms']:.1f} ms), {r['refused']} 503, "
        f"{r['conn_errors']} connection errors, {r['other']} other non-200; collector CPU "
        f"{r['collector_cpu_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB; client CPU "
        f"{r['client_cpu_s'] / r['seconds']:.2f} cores{extra}"
    )


# -- tables -----------------------------------------------------------------------------------


def _summary(runs: list[Run], side: str, measurement: str) -> dict[str, Any] | None:
    results = [r.result for r in runs if r.side == side and r.measurement == measurement]
    results = [r for r in results if r]
    if not results:
        return None
    out: dict[str, Any] = {"rounds": len(results)}
    for key in (
        "events_s",
        "requests_s",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "batch_p50_ms",
        "batch_p99_ms",
        "batch_max_ms",
        "cpu_us_per_event",
    ):
        values = [r[key] for r in results if key in r]
        if values:
            out[key] = statistics.median(values)
    for key in ("refused", "conn_errors", "other", "gave_up", "stuck_senders"):
        out[key] = sum(int(r[key]) for r in results)
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
    return out


def _ratio(after: dict[str, Any] | None, before: dict[str, Any] | None, key: str) -> str:
    if not after or not before or not before.get(key):
        return "n/a"
    return f"{after[key] / before[key]:.2f}x"


def print_table(
    title: str,
    columns: list[tuple[str, str, str]],  # (header, key, format) ; format "" = a count
    runs: list[Run],
    measurement: str,
    failures: dict[str, str],
) -> None:
    print(f"### {title}")
    print()
    print("| side | " + " | ".join(header for header, _, _ in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    summaries = {side: _summary(runs, side, measurement) for side in ("before", "after")}
    for side, summary in summaries.items():
        if summary is None:
            reason = failures.get(side, "not measured")
            print(f"| {side} | " + " | ".join([reason] + [""] * (len(columns) - 1)) + " |")
            continue
        cells = []
        for _, key, fmt in columns:
            value = summary.get(key)
            cells.append("" if value is None else format(value, fmt or ","))
        print(f"| {side} | " + " | ".join(cells) + " |")
    ratios = [
        _ratio(summaries["after"], summaries["before"], key) if fmt else "-"
        for _, key, fmt in columns
    ]
    print("| after/before | " + " | ".join(ratios) + " |")
    print()


INGEST_COLUMNS = [
    ("events/s", "events_s", ",.0f"),
    ("p50 ms", "p50_ms", ".1f"),
    ("p99 ms", "p99_ms", ".1f"),
    ("collector CPU us/event", "cpu_us_per_event", ".2f"),
    ("peak RSS MB", "peak_rss_mb", ".0f"),
    ("503 (retried)", "refused", ""),
    ("connection errors", "conn_errors", ""),
    ("other non-200", "other", ""),
]
LOAD_COLUMNS = [
    ("requests/s", "requests_s", ",.0f"),
    ("events/s", "events_s", ",.0f"),
    ("p50 ms", "p50_ms", ".1f"),
    ("p99 ms", "p99_ms", ".1f"),
    ("max ms", "max_ms", ".1f"),
    ("batch p50 ms", "batch_p50_ms", ".1f"),
    ("batch p99 ms", "batch_p99_ms", ".1f"),
    ("peak RSS MB", "peak_rss_mb", ".0f"),
    ("503 (retried)", "refused", ""),
    ("batches given up", "gave_up", ""),
    ("connection errors", "conn_errors", ""),
    ("other non-200", "other", ""),
]


# -- main -------------------------------------------------------------------------------------


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so the cleanup in ``finally`` blocks runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sides(before_rev: str | None) -> Iterator[tuple[list[Side], str, Path]]:
    """The before worktree (REV or the default) and the working tree, checked, and a temporary
    parent directory for the stores; all removed on exit. Yields (sides, header text, tmp)."""
    if before_rev:
        rev, note = (
            git("rev-parse", "--verify", f"{before_rev}^{{commit}}"),
            f"--before {before_rev}",
        )
    else:
        rev, note = default_before()
    tmp = Path(tempfile.mkdtemp(prefix="lambdascope-bench-http-"))
    try:
        with worktree(rev) as before_tree:
            uses_old = _imports_old_server((ROOT / SERVER_FILE).read_text())
            dirty = git("status", "--porcelain", "--", "collector", "lambdascope", check=False)
            both = [
                Side("before", before_tree, f"{describe_rev(rev)} ({note})"),
                Side(
                    "after",
                    ROOT,
                    "working tree "
                    + (
                        "with uncommitted changes in collector/ or lambdascope/"
                        if dirty
                        else "(no uncommitted changes in collector/ or lambdascope/)"
                    )
                    + (f"; its {SERVER_FILE} still uses {OLD_SERVER_CLASS}" if uses_old else ""),
                ),
            ]
            header = (
                f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}; REV = {rev}"
            )
            yield both, header, tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=None, metavar="REV", help="default: see above")
    parser.add_argument("--quick", action="store_true", help="5,000 events, 3 s load, 1 round")
    parser.add_argument("--events", type=int, default=None, help="default 200,000 (quick 5,000)")
    parser.add_argument("--load-s", type=float, default=None, help="default 20 (quick 3)")
    parser.add_argument("--senders", type=int, default=200, help="load test senders")
    parser.add_argument("--ingest-senders", type=int, default=16, help="ingest test senders")
    parser.add_argument("--batch-invocations", type=int, default=10, help="load test batches")
    parser.add_argument("--rounds", type=int, default=None, help="default 2 (quick 1)")
    args = parser.parse_args(argv)
    events = args.events or (5_000 if args.quick else 200_000)
    load_s = args.load_s or (3.0 if args.quick else 20.0)
    rounds = args.rounds or (1 if args.quick else 2)
    if events <= 0 or not 0 < load_s <= 600 or not 1 <= rounds <= 10:
        parser.error("--events must be positive, --load-s in (0, 600], --rounds in 1..10")
    if not 1 <= args.senders <= 1000 or not 1 <= args.ingest_senders <= 256:
        parser.error("--senders must be in 1..1000, --ingest-senders in 1..256")
    if not 1 <= args.batch_invocations <= 100:
        parser.error("--batch-invocations must be in 1..100")

    runs: list[Run] = []
    failures: dict[str, str] = {}
    started = time.monotonic()
    try:
        with interrupt_on_sigterm(), sides(args.before) as (both, header, tmp):
            print(header)
            for side in both:
                try:
                    imported = side.check_imports()
                except StartFailed as exc:
                    failures[side.name] = "failed to start"
                    print(f"{side.name}: {side.label}\n  cannot run: {exc}")
                    continue
                print(f"{side.name}: {side.label}\n  imports {imported}")
            batches = max(1, events // EVENTS_PER_BATCH)
            print(
                f"ingest: {batches:,} batches x {EVENTS_PER_BATCH} events = "
                f"{batches * EVENTS_PER_BATCH:,} events, {args.ingest_senders} senders; load: "
                f"{args.senders} senders x {load_s:g} s, {args.batch_invocations} invocations "
                f"per batch; {rounds} round(s), a fresh collector for each",
                flush=True,
            )
            plans: list[tuple[str, Callable[[Collector, int], dict[str, Any]]]] = [
                (
                    "ingest",
                    lambda c, r: measure_ingest(
                        c, events, args.ingest_senders, f"{c.side.name[0]}{r}"
                    ),
                ),
                (
                    "load",
                    lambda c, r: measure_load(c, load_s, args.senders, args.batch_invocations),
                ),
            ]
            for round_no in range(1, rounds + 1):
                for measurement, measure in plans:
                    for side in both:
                        if side.name in failures:
                            continue
                        try:
                            with running(side, tmp) as collector:
                                result = measure(collector, round_no)
                        except StartFailed as exc:
                            failures[side.name] = "failed to start"
                            print(f"  {side.name} ({measurement}, round {round_no}): {exc}")
                            continue
                        runs.append(Run(side.name, measurement, result))
                        print(_line(f"{measurement} {side.name} #{round_no}", result), flush=True)
            print()
            median = f" (median of {rounds} rounds)" if rounds > 1 else ""
            print(f"{header}; before = {both[0].label}")
            print()
            print_table(
                f"a) ingest: {batches * EVENTS_PER_BATCH:,} events, {args.ingest_senders} "
                f"senders waiting for their acknowledgement{median}",
                INGEST_COLUMNS,
                runs,
                "ingest",
                failures,
            )
            print_table(
                f"b) load: {args.senders} keep-alive senders, {args.batch_invocations} "
                f"invocations per batch, {load_s:g} s{median}",
                LOAD_COLUMNS,
                runs,
                "load",
                failures,
            )
            print(f"total {time.monotonic() - started:.0f} s")
    except KeyboardInterrupt:
        print("interrupted: collectors stopped, worktree removed", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # git, or a client process that did not start
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--client":
        client_main(json.loads(sys.argv[2]))
    raise SystemExit(main())
