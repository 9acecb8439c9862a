"""The demo's sample fleet and the traffic that makes each of its problems happen.

Every function in ``demo_fleet/`` has one problem lambdascope exists to find (and checkout has
none, for contrast). Most are called by a few workers picking functions at random by weight;
the leaking function, the oversized one and the webhook are each called one call after another
by a worker of their own, so each keeps one warm environment and its memory climbs (or its
bill, or its errors, grow) where a detector can see it, however busy the machine is.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

FLEET_DIR = Path(__file__).parent / "demo_fleet"

#: The share of its memory size the near-the-limit function is driven to (after measuring
#: what its runtime and extensions hold on their own), and the early-warning share the demo's
#: analysis uses (as a settings file's ``[memory] warn_at_percent = 90`` would).
NEAR_LIMIT_SHARE = 0.95
MEMORY_WARN_AT_SHARE = 0.90


@dataclass(frozen=True)
class DemoFunction:
    name: str
    handler: str
    timeout_s: float
    memory_size_mb: int
    #: Relative share of the random workers' calls; 0 for a function with a worker of its own.
    weight: int
    reserved_concurrency: int | None = None
    #: LAMBDASCOPE_TAGS: what alert rules can select on (``tags: {team: shop}``).
    tags: str = "team=shop"
    #: Seconds between the calls of its own worker (weight 0).
    pause_s: float = 0.0
    environment: dict[str, str] = field(default_factory=dict)
    #: Lambda Managed Instances: this many requests at once in one environment.
    max_concurrency: int | None = None
    #: Calls sent together every ``burst_every_s`` (0: no bursts).
    burst_size: int = 0
    burst_every_s: float = 0.0


FLEET = (
    # Healthy: quick, logs what it does, never near its limits.
    DemoFunction(
        "checkout",
        "checkout.handler",
        timeout_s=3.0,
        memory_size_mb=256,
        weight=5,
        tags="team=shop,tier=critical",
    ),
    # Timeouts: every fifth export waits on a slow downstream past its 1 s timeout; the tracing
    # helper logs where it was stuck just before the deadline.
    DemoFunction(
        "report-export", "report_export.handler", timeout_s=1.0, memory_size_mb=512, weight=3
    ),
    # A 1.5 s init and one reserved environment: slow cold starts and throttles (429) when
    # uploads arrive three at a time.
    DemoFunction(
        "thumbnailer",
        "thumbnailer.handler",
        timeout_s=3.0,
        memory_size_mb=1024,
        weight=2,
        reserved_concurrency=1,
        burst_size=3,
        burst_every_s=1.5,
    ),
    # Runs at about 95% of its 128 MB.
    DemoFunction("pdf-render", "pdf_render.handler", timeout_s=3.0, memory_size_mb=128, weight=2),
    # Every fourth upload, the second one first, is read whole: killed for memory.
    DemoFunction("csv-import", "csv_import.handler", timeout_s=3.0, memory_size_mb=256, weight=2),
    # Errors start a third of the way in: the provider begins declining cards. Webhooks
    # arrive steadily, one after another.
    DemoFunction(
        "payments-webhook",
        "payments_webhook.handler",
        timeout_s=3.0,
        memory_size_mb=256,
        weight=0,
        tags="team=payments,tier=critical",
        pause_s=0.1,
    ),
    # Keeps every session: 3 MB more per warm invocation of its one environment.
    DemoFunction(
        "session-cache",
        "session_cache.handler",
        timeout_s=3.0,
        memory_size_mb=1024,
        weight=0,
        pause_s=0.05,
    ),
    # Lambda Managed Instances: bursts of six order events share one environment.
    DemoFunction(
        "order-events",
        "order_events.handler",
        timeout_s=3.0,
        memory_size_mb=2048,
        weight=0,
        max_concurrency=8,
        burst_size=6,
        burst_every_s=1.0,
    ),
    # 10 GB for a model that needs a fraction of it: the right-sizing what-if.
    DemoFunction(
        "ml-score", "ml_score.handler", timeout_s=3.0, memory_size_mb=10240, weight=0, pause_s=0.0
    ),
)


@dataclass
class Traffic:
    """What the workers sent, were refused, and could not send."""

    sent: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


@dataclass
class Payloads:
    """The events each function gets; ``document_mb`` is set once the baseline is known."""

    document_mb: int = 50
    started: float = field(default_factory=time.monotonic)
    duration_s: float = 25.0
    #: Calls so far per function, over every worker: the same calls misbehave however the
    #: workers happen to share them out.
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_event(self, fn: DemoFunction, rng: random.Random) -> dict[str, Any]:
        with self.lock:
            nth = self.calls[fn.name]
            self.calls[fn.name] += 1
        return self.event(fn, rng, nth)

    def event(self, fn: DemoFunction, rng: random.Random, nth: int) -> dict[str, Any]:
        """The ``nth`` (0-based) event sent to ``fn``."""
        if fn.name == "report-export":
            # Every fifth export, the second one first, outlives the 1 s timeout.
            return {"rows": 10_000 if nth % 5 == 1 else rng.randint(100, 1500)}
        if fn.name == "checkout":
            return {"order_id": f"o-{rng.randint(1000, 9999)}"}
        if fn.name == "pdf-render":
            return {"document_mb": self.document_mb}
        if fn.name == "csv-import":
            return {"key": f"upload-{nth}.csv", "upload_mb": 400 if nth % 4 == 1 else 20}
        if fn.name == "payments-webhook":
            declining = time.monotonic() - self.started > self.duration_s / 3
            card = "declined" if declining and rng.random() < 0.4 else "ok"
            return {"payment_id": f"p-{rng.randint(1000, 9999)}", "card": card}
        if fn.name == "session-cache":
            return {"user": f"u-{nth}"}
        if fn.name == "order-events":
            return {"order_id": f"o-{nth}"}
        if fn.name == "ml-score":
            return {"customer": f"c-{rng.randint(1, 999)}"}
        return {"key": f"img-{rng.randint(1, 99)}.png"}


def max_memory_used_mb(log_result: str | None) -> int | None:
    """Max Memory Used from the REPORT line of a Tail log (``LogType=Tail``)."""
    tail = base64.b64decode(log_result or "").decode(errors="replace")
    found = re.search(r"Max Memory Used: (\d+) MB", tail)
    return int(found[1]) if found else None


def near_limit_document_mb(baseline_mb: int, memory_size_mb: int) -> int:
    """The document that brings a sandbox holding ``baseline_mb`` to about 95% of its size."""
    return max(1, int(memory_size_mb * NEAR_LIMIT_SHARE) - baseline_mb)


def drive(
    emu: Any,
    duration: timedelta,
    concurrency: int,
    console: Console,
    seed: int = 0,
) -> Traffic:
    """Invoke the fleet for ``duration``: ``concurrency`` random workers plus one worker for
    each function that needs its own (weight 0). Shows a progress bar."""
    pdf = next(fn for fn in FLEET if fn.name == "pdf-render")
    payloads = Payloads(duration_s=duration.total_seconds())
    # What the runtime and the extensions hold before the document is loaded.
    first = emu.invoke(pdf.name, json.dumps({"document_mb": 0}).encode(), log_type="Tail")
    baseline = max_memory_used_mb(first.log_result) or 30
    payloads.document_mb = near_limit_document_mb(baseline, pdf.memory_size_mb)
    traffic = Traffic()
    traffic.sent[pdf.name] += 1
    payloads.calls[pdf.name] += 1
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + duration.total_seconds()
    mixed = [fn for fn in FLEET if fn.weight]
    weights = [fn.weight for fn in mixed]

    def call(fn: DemoFunction, event: dict[str, Any]) -> None:
        try:
            result = emu.invoke(fn.name, json.dumps(event).encode())
        except Exception as exc:  # keep driving: one failed call is not the demo's end
            with lock:
                traffic.failures.append(f"{fn.name}: {exc}")
            stop.wait(0.2)
            return
        with lock:
            if result.status_code == 429:
                traffic.throttled[fn.name] += 1
            else:
                traffic.sent[fn.name] += 1

    def random_worker(worker_seed: int) -> None:
        rng = random.Random(worker_seed)
        while not stop.is_set() and time.monotonic() < deadline:
            fn = rng.choices(mixed, weights)[0]
            call(fn, payloads.next_event(fn, rng))
            stop.wait(rng.uniform(0.05, 0.25))

    def own_worker(fn: DemoFunction) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(f"{seed}-{fn.name}")
            for _ in range(100_000):
                if stop.is_set() or time.monotonic() >= deadline:
                    return
                call(fn, payloads.next_event(fn, rng))
                stop.wait(fn.pause_s)

        return run

    targets: list[Callable[[], None]] = [
        functools.partial(random_worker, seed + n) for n in range(concurrency)
    ]

    def bursts(fn: DemoFunction, size: int, every_s: float) -> Callable[[], None]:
        # Uploads arrive together: more at once than the reserved environments can take.
        def run() -> None:
            rng = random.Random(f"{seed}-{fn.name}-bursts")
            for _ in range(100_000):
                if stop.wait(every_s) or time.monotonic() >= deadline:
                    return
                callers = [
                    threading.Thread(target=call, args=(fn, payloads.next_event(fn, rng)))
                    for _ in range(size)
                ]
                for caller in callers:
                    caller.start()
                for caller in callers:
                    caller.join(fn.timeout_s + 5)

        return run

    targets += [own_worker(fn) for fn in FLEET if not fn.weight and not fn.burst_size]
    targets += [bursts(fn, fn.burst_size, fn.burst_every_s) for fn in FLEET if fn.burst_size]
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    progress = Progress(
        TextColumn("[bold]driving traffic[/]"),
        BarColumn(),
        TextColumn("{task.fields[invocations]} invocations"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    for thread in threads:
        thread.start()
    try:
        with progress:
            total = duration.total_seconds()
            task = progress.add_task("traffic", total=total, invocations=0)
            while any(t.is_alive() for t in threads):
                remaining = max(0.0, deadline - time.monotonic())
                with lock:
                    invocations = sum(traffic.sent.values())
                progress.update(task, completed=total - remaining, invocations=invocations)
                time.sleep(0.2)
            progress.update(task, completed=total)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    return traffic
