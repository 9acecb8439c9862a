"""Exactly once through kill -9, at length: rounds of ~500 invocations in which the collector
is killed (SIGKILL) at random points and restarted while senders retry every unanswered batch
under its own id, as the extension does.

    python bench/crash_exactly_once.py [--rounds 5] [--batches 50] [--kills 3] [--seed N]

One table row per round: what was sent, how often the collector died, how many sends it took,
and what the store holds: invocations, function log lines, log lines stored more than once,
invocations counted by the per-minute rollups. Exactly once means stored = sent, lines = 2 per
invocation, repeats = 0, rollups = sent. Known losses are none here by construction: every
sender retries until answered (a real extension drops only what its bounded buffers or a dead
environment lose, and counts it). Every loop is bounded; every process started is stopped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.collector.crashing import INVOCATIONS_PER_BATCH, run_round  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=50, help="per round (10 invocations each)")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--kills", type=int, default=3, help="per round")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    print(
        f"{args.rounds} rounds x {args.batches * INVOCATIONS_PER_BATCH} invocations, "
        f"{args.senders} senders, {args.kills} kills per round, seed {args.seed}"
    )
    print()
    print(
        "| round | invocations sent | kills | sends | stored | function lines (expected) "
        "| lines stored twice | rollup invocations | exactly once |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    failures = 0
    started = time.monotonic()
    for number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="lambdascope-crash-") as work:
            result = run_round(
                Path(work),
                batches=args.batches,
                senders=args.senders,
                kills=args.kills,
                seed=args.seed + number,
            )
        failures += not result.exactly_once
        print(
            f"| {number} | {result.invocations:,} | {result.kills} | {result.sends:,} "
            f"| {result.stored_invocations:,} | {result.function_lines:,} "
            f"({result.invocations * 2:,}) | {result.repeated_lines:,} "
            f"| {result.rollup_invocations:,} | {'yes' if result.exactly_once else 'NO'} |",
            flush=True,
        )
    print()
    print(
        f"{args.rounds - failures} of {args.rounds} rounds exactly once; "
        f"total {time.monotonic() - started:.0f} s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
