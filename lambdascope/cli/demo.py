"""``lambdascope demo``: the whole toolkit on one laptop, on loopback only.

1. start a collector (child process) on an embedded store;
2. build the extension's layer and attach it to a sample fleet in the local Lambda emulator
   (``demo_fleet/``: one problem per function, see ``demo_traffic``);
3. drive traffic for a while (progress bar);
4. shut the environments down (the extensions flush on SHUTDOWN) and wait for the data;
5. open the TUI, or print what was found in 80 columns (``--no-tui``) and the next commands;
6. stop everything it started, on success, error or Ctrl-C. The store stays, for the next
   commands.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from rich.console import Console

from lambdascope.cli.demo_traffic import FLEET, FLEET_DIR, MEMORY_WARN_AT_SHARE, Traffic, drive
from lambdascope.cli.processes import CollectorProcess
from lambdascope.query import CollectorQueryClient, QueryClient

if TYPE_CHECKING:
    from lambdascope.analyzers import Finding

#: What a store directory the demo made holds, so a later run only ever deletes its own.
DEMO_MARKER = ".lambdascope-demo"
SUMMARY_WIDTH = 80


def default_store_dir() -> Path:
    """Where the demo keeps its store between runs (replaced by each run)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lambdascope" / "demo-store"


def _fresh_store(directory: Path) -> str:
    """An empty embedded store at ``directory``; a previous demo's store there is replaced,
    anything else is left alone (the caller is told to pick another place)."""
    if directory.exists():
        if not (directory / DEMO_MARKER).exists():
            raise FileExistsError(
                f"{directory} exists and is not a demo store: pass --store chdb:///another/path"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / DEMO_MARKER).write_text("lambdascope demo store; each demo run replaces it\n")
    return f"chdb://{directory}"


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
    try:
        store_url = store_url or _fresh_store(default_store_dir())
    except (OSError, FileExistsError) as exc:
        console.print(f"[red]cannot prepare the demo store[/]: {exc}")
        return 2
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    collector = CollectorProcess(store_url)
    started_at = datetime.now(UTC)
    try:
        with console.status("starting the collector on the embedded store..."):
            collector_url = collector.start()
        console.print(f"collector: {collector_url} (store {store_url})")
        traffic = _drive_fleet(workdir, collector_url, duration, concurrency, console)
        client = CollectorQueryClient(collector_url)
        _wait_for_ingest(client, expected=sum(traffic.sent.values()), console=console)
        since = datetime.now(UTC) - started_at + timedelta(minutes=1)
        _configure_analyzers()
        if open_tui:
            from lambdascope.tui.app import LambdascopeApp

            LambdascopeApp(client, since=since).run()
        else:
            from lambdascope.analyzers import run_detectors

            findings = run_detectors(client, since=since)
            for line in summary_lines(findings, store_url, SUMMARY_WIDTH):
                console.print(line, highlight=False, markup=False, soft_wrap=True)
        return 0
    except KeyboardInterrupt:
        console.print("interrupted: stopping everything the demo started")
        return 130
    finally:
        collector.stop()
        signal.signal(signal.SIGTERM, previous_sigterm)
        shutil.rmtree(workdir, ignore_errors=True)


def summary_lines(findings: Sequence[Finding], store_url: str, width: int) -> list[str]:
    """Pure: what the demo found, one line per finding (function, problem, evidence) in
    ``width`` columns, the most severe first, then the commands to go further."""
    from lambdascope.tui.names import kind_name

    order = {"critical": 0, "warning": 1, "info": 2}
    ranked = sorted(findings, key=lambda f: (order.get(f.severity, 3), f.function_name, f.kind))
    name_w = min(max([len("function")] + [len(f.function_name) for f in ranked]), 18)
    kind_w = min(max([len("problem")] + [len(kind_name(f.kind)) for f in ranked]), 22)
    count = f"{len(ranked)} problem{'s' if len(ranked) != 1 else ''}"
    lines = [f"lambdascope found {count} in the demo fleet, the most severe first:", ""]
    lines.append(_fit(f"{'function':<{name_w}}  {'problem':<{kind_w}}  evidence", width))
    for f in ranked:
        name, kind = _fit(f.function_name, name_w), _fit(kind_name(f.kind), kind_w)
        lines.append(_fit(f"{name:<{name_w}}  {kind:<{kind_w}}  {_evidence(f)}", width))
    lines += [
        "",
        "Next:",
        f"  lambdascope tui --store {store_url}",
        f"  lambdascope report --store {store_url} --since 1h",
    ]
    return lines


def _evidence(finding: Finding) -> str:
    """The finding's summary on one line, without the function's name (its own column)."""
    text = " ".join(finding.summary.split())
    name = finding.function_name
    for label in (f"{name}:{finding.function_version}", name):
        text = text.replace(f"{label}: ", "").replace(f" of {label}", "")
        if text.startswith(f"{label} "):
            text = text[len(label) + 1 :]
    return text[:1].upper() + text[1:]


def _fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _configure_analyzers() -> None:
    """The demo knows its fleet's reserved concurrency, as a user's settings file would say
    (``--settings``): the throttle finding then names the limit instead of guessing. It also
    warns about memory from 90% of the size, as ``[memory] warn_at_percent = 90`` would."""
    from lambdascope.analyzers import extension_overhead, memory, throttles

    reserved = {f.name: f.reserved_concurrency for f in FLEET if f.reserved_concurrency}
    throttles.configure(throttles.ConcurrencyLimits(reserved=reserved))
    memory.configure(MEMORY_WARN_AT_SHARE)
    # The emulator starts every sandbox of the fleet on this one machine at once, where Lambda
    # gives each its own CPU share: the extension's start-up here says more about the laptop
    # than about the extension ([extension] startup_ms_p95 in a settings file).
    extension_overhead.configure(extension_overhead.ExtensionBudget(startup_ms_p95=500.0))


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _drive_fleet(
    workdir: Path,
    collector_url: str,
    duration: timedelta,
    concurrency: int,
    console: Console,
) -> Traffic:
    """Run the fleet in the emulator with the extension attached and drive its traffic."""
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
            environment={
                "LAMBDASCOPE_COLLECTOR_URL": collector_url,
                "LAMBDASCOPE_TAGS": fn.tags,
                **fn.environment,
            },
            reserved_concurrency=fn.reserved_concurrency,
            managed_instances=fn.max_concurrency is not None,
            max_concurrency=fn.max_concurrency,
        )
        for fn in FLEET
    ]
    # Throttles never reach an extension: like CloudWatch, the emulator streams them as
    # metrics through a Firehose-style delivery (every 2 s here instead of every minute).
    metric_stream = MetricStreamConfig(f"{collector_url}/v1/firehose/metrics", period_s=2.0)
    emu = Emulator(functions, metric_stream=metric_stream)
    emu.start()
    try:
        traffic = drive(emu, duration, concurrency, console)
    finally:
        # SHUTDOWN reaches every extension, which flushes what it still holds to the collector.
        with console.status("shutting down the environments (the extensions flush)..."):
            emu.stop()
    if traffic.failures:
        console.print(
            f"[yellow]{len(traffic.failures)} invocations failed to run[/]: {traffic.failures[0]}"
        )
    console.print(
        "invoked: " + ", ".join(f"{name} x{n}" for name, n in sorted(traffic.sent.items())),
        highlight=False,
    )
    if traffic.throttled:
        console.print(
            "throttled (429): "
            + ", ".join(f"{name} x{n}" for name, n in sorted(traffic.throttled.items())),
            highlight=False,
        )
    return traffic


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


if __name__ == "__main__":
    sys.exit(run_demo())
