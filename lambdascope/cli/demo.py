"""``lambdascope demo``: the whole toolkit on one laptop, on loopback only.

1. start a collector (child process) on an embedded store;
2. build the extension's layer and attach it to a sample fleet in the local Lambda emulator;
3. drive traffic for a while (progress bar), so cold starts, timeouts and slow inits happen;
4. shut the environments down (the extensions flush on SHUTDOWN) and wait for the data;
5. open the TUI, or print the findings (``--no-tui``);
6. stop everything it started, on success, error or Ctrl-C.
"""

from __future__ import annotations

import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from lambdascope.cli.processes import CollectorProcess
from lambdascope.query import CollectorQueryClient, QueryClient

FLEET_DIR = Path(__file__).parent / "demo_fleet"


@dataclass(frozen=True)
class DemoFunction:
    name: str
    handler: str
    timeout_s: float
    memory_size_mb: int
    weight: int
    reserved_concurrency: int | None = None
    #: LAMBDASCOPE_TAGS: what alert rules can select on (``tags: {team: shop}``).
    tags: str = "team=shop"

    def payload(self, rng: random.Random, nth: int) -> dict[str, Any]:
        """The ``nth`` (0-based) event this worker sends to this function."""
        if self.name == "report-export":
            # Every fifth export, the second one first, is large enough to outlive the 1 s timeout.
            return {"rows": 10_000 if nth % 5 == 1 else rng.randint(100, 1500)}
        if self.name == "checkout":
            return {"order_id": f"o-{rng.randint(1000, 9999)}"}
        return {"key": f"img-{rng.randint(1, 99)}.png"}


FLEET = (
    DemoFunction(
        "checkout",
        "checkout.handler",
        timeout_s=3.0,
        memory_size_mb=256,
        weight=5,
        tags="team=shop,tier=critical",
    ),
    DemoFunction(
        "report-export", "report_export.handler", timeout_s=1.0, memory_size_mb=512, weight=3
    ),
    # One reserved environment and a slow init: callers arriving together are throttled (429).
    DemoFunction(
        "thumbnailer",
        "thumbnailer.handler",
        timeout_s=3.0,
        memory_size_mb=1024,
        weight=2,
        reserved_concurrency=1,
    ),
)


def run_demo(
    *,
    duration: timedelta = timedelta(seconds=25),
    open_tui: bool = True,
    store_url: str | None = None,
    concurrency: int = 3,
    console: Console | None = None,
) -> int:
    console = console or Console()
    workdir = Path(tempfile.mkdtemp(prefix="lambdascope-demo-"))
    store_url = store_url or f"chdb://{workdir / 'store'}"
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    collector = CollectorProcess(store_url)
    started_at = datetime.now(UTC)
    try:
        with console.status("starting the collector on the embedded store..."):
            collector_url = collector.start()
        console.print(f"collector: {collector_url} (store {store_url})")
        sent = _drive_fleet(workdir, collector_url, duration, concurrency, console)
        client = CollectorQueryClient(collector_url)
        _wait_for_ingest(client, expected=sum(sent.values()), console=console)
        since = datetime.now(UTC) - started_at + timedelta(minutes=1)
        _configure_analyzers()
        if open_tui:
            from lambdascope.tui.app import LambdascopeApp

            LambdascopeApp(client, since=since).run()
        else:
            from lambdascope.analyzers import run_detectors
            from lambdascope.cli.render import print_findings

            print_findings(run_detectors(client, since=since), console)
        return 0
    except KeyboardInterrupt:
        console.print("interrupted: stopping everything the demo started")
        return 130
    finally:
        collector.stop()
        signal.signal(signal.SIGTERM, previous_sigterm)
        shutil.rmtree(workdir, ignore_errors=True)


def _configure_analyzers() -> None:
    """The demo knows its fleet's reserved concurrency, as a user's settings file would say
    (``--settings``): the throttle finding then names the limit instead of guessing."""
    from lambdascope.analyzers import throttles

    reserved = {f.name: f.reserved_concurrency for f in FLEET if f.reserved_concurrency}
    throttles.configure(throttles.ConcurrencyLimits(reserved=reserved))


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _drive_fleet(
    workdir: Path,
    collector_url: str,
    duration: timedelta,
    concurrency: int,
    console: Console,
) -> Counter[str]:
    """Invoke the fleet from ``concurrency`` threads for ``duration``; count what was sent."""
    from lambdascope.emulator import Emulator, FunctionConfig, MetricStreamConfig
    from lambdascope.extension.layer import build_layer_dir

    layer = workdir / "layer"
    build_layer_dir(layer)
    functions = [
        FunctionConfig(
            name=fn.name,
            handler=fn.handler,
            code_dir=FLEET_DIR,
            memory_size_mb=fn.memory_size_mb,
            timeout_s=fn.timeout_s,
            layers=(layer,),
            environment={"LAMBDASCOPE_COLLECTOR_URL": collector_url, "LAMBDASCOPE_TAGS": fn.tags},
            reserved_concurrency=fn.reserved_concurrency,
        )
        for fn in FLEET
    ]
    # Throttles never reach an extension: like CloudWatch, the emulator streams them as
    # metrics through a Firehose-style delivery (every 2 s here instead of every minute).
    metric_stream = MetricStreamConfig(f"{collector_url}/v1/firehose/metrics", period_s=2.0)
    sent: Counter[str] = Counter()
    throttled: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + duration.total_seconds()

    def worker(seed: int, emu: Emulator) -> None:
        rng = random.Random(seed)
        weights = [fn.weight for fn in FLEET]
        calls: Counter[str] = Counter()
        while not stop.is_set() and time.monotonic() < deadline:
            fn = rng.choices(FLEET, weights)[0]
            payload = fn.payload(rng, calls[fn.name])
            calls[fn.name] += 1
            try:
                result = emu.invoke(fn.name, _json_bytes(payload))
            except Exception as exc:  # keep driving: one failed call is not the demo's end
                with lock:
                    failures.append(f"{fn.name}: {exc}")
                stop.wait(0.2)
                continue
            with lock:
                if result.status_code == 429:
                    throttled[fn.name] += 1
                else:
                    sent[fn.name] += 1
            stop.wait(rng.uniform(0.05, 0.25))

    progress = Progress(
        TextColumn("[bold]driving traffic[/]"),
        BarColumn(),
        TextColumn("{task.fields[invocations]} invocations"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    emu = Emulator(functions, metric_stream=metric_stream)
    emu.start()
    try:
        threads = [
            threading.Thread(target=worker, args=(seed, emu), daemon=True)
            for seed in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            with progress:
                task = progress.add_task("traffic", total=duration.total_seconds(), invocations=0)
                while any(t.is_alive() for t in threads):
                    remaining = max(0.0, deadline - time.monotonic())
                    progress.update(
                        task,
                        completed=duration.total_seconds() - remaining,
                        invocations=sum(sent.values()),
                    )
                    time.sleep(0.2)
                progress.update(task, completed=duration.total_seconds())
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
    finally:
        # SHUTDOWN reaches every extension, which flushes what it still holds to the collector.
        with console.status("shutting down the environments (the extensions flush)..."):
            emu.stop()
    if failures:
        console.print(f"[yellow]{len(failures)} invocations failed to run[/]: {failures[0]}")
    console.print(
        "invoked: " + ", ".join(f"{name} x{count}" for name, count in sorted(sent.items()))
    )
    if throttled:
        console.print(
            "throttled (429): "
            + ", ".join(f"{name} x{count}" for name, count in sorted(throttled.items()))
        )
    return sent


def _wait_for_ingest(
    client: QueryClient, *, expected: int, console: Console, timeout_s: float = 15.0
) -> int:
    """Wait until the store holds every invocation we sent (bounded), and say if it does not."""
    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        stored = int(client.query("SELECT count() FROM invocations").scalar() or 0)
        if stored >= expected:
            break
        time.sleep(0.25)
    if stored < expected:
        console.print(f"[yellow]the store holds {stored} of {expected} invocations[/]")
    else:
        console.print(f"stored: {stored} invocations")
    return stored


def _json_bytes(payload: dict[str, Any]) -> bytes:
    import json

    return json.dumps(payload).encode()


if __name__ == "__main__":
    sys.exit(run_demo())
