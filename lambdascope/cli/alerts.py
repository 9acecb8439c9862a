"""``lambdascope alerts check RULES`` and ``lambdascope alerts test RULES``.

``check`` validates a rules file offline. ``test`` replays the rules over the recent past
against the store, with states in memory and notifications captured instead of sent, and
prints what would have been notified and what would be firing now.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from lambdascope.query import QueryClient, QueryError

__all__ = ["check", "test"]

#: A replay never runs more evaluations than this, whatever ``since`` and the windows are.
MAX_STEPS = 60


def check(path: str | Path, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate a rules file: 0 and a one-line summary when valid, else 2 and one line per
    problem as ``file:line: field: message``."""
    from lambdascope.analyzers.alerts import RulesError, load_rules

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        rules = load_rules(path)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=err)
        return 2
    notifiers = ", ".join(["log", *(n.name for n in rules.notifiers)])
    print(f"{path}: {len(rules.rules)} rules OK (notifiers: {notifiers})", file=out)
    return 0


@dataclass
class _Capture:
    """Stands in for every configured notifier: records instead of sending."""

    name: str
    timeout_s: float = 1.0
    payloads: list[Mapping[str, Any]] = field(default_factory=list)

    def send(self, payload: Mapping[str, Any]) -> None:
        self.payloads.append(payload)


def test(
    path: str | Path,
    client: QueryClient,
    since: timedelta = timedelta(hours=1),
    *,
    now: datetime | None = None,
    collector_url: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Replay the rules over ``[now - since, now]`` and print what would fire.

    Evaluates every ``step`` (the shortest rule window, coarser when that would exceed
    :data:`MAX_STEPS` evaluations), so ``for`` durations and M-of-N windows behave as they would
    in the collector. Nothing is sent and nothing is written to the store. Each rule is then
    reported once: fired, pending, quiet, or the one reason it could not be evaluated.

    Returns 0 when every rule could be evaluated, 1 when some could not, 2 when the file is
    invalid or the store cannot be read at all.
    """
    from lambdascope.analyzers.alerts import (
        DEFAULT_COLLECTOR_URL,
        AlertEngine,
        MemoryAlertStateStore,
        RulesError,
        load_rules,
    )
    from lambdascope.analyzers.alerts.notifiers import Dispatcher

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        rules = load_rules(path)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        return 2
    if since <= timedelta(0):
        print(f"lambdascope alerts test: --since must be positive, got {since}", file=err)
        return 2
    now = now or datetime.now(UTC)
    if not rules.rules:
        print(f"{path}: no rules to evaluate", file=out)
        return 0
    # One read first: an unreachable store is one problem, not one per rule and evaluation.
    try:
        client.query("SELECT 1")
    except QueryError as exc:
        print(f"lambdascope alerts test: {exc}", file=err)
        return 2
    step = min(r.window for r in rules.rules)
    step = max(step, since / MAX_STEPS)
    names = {"log", *(n.name for n in rules.notifiers)}
    # The engine logs each failing rule at every evaluation; the replay reports each rule once.
    quiet = logging.getLogger("lambdascope.cli.alerts.replay")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    engine = AlertEngine(
        rules,
        client,
        MemoryAlertStateStore(),
        {name: _Capture(name) for name in names},
        collector_url=collector_url or DEFAULT_COLLECTOR_URL,
        dispatcher=Dispatcher(max_workers=1, logger=quiet),
        logger=quiet,
    )
    steps = max(1, int(since / step))
    times = [now - step * (steps - i - 1) for i in range(steps)]
    print(
        f"Replaying {len(rules.rules)} rules over the last {_span(since)} "
        f"({len(times)} evaluations, every {_span(step)}); nothing is sent.",
        file=out,
    )
    transitions = []
    errors: dict[str, str] = {}
    try:
        for at in times:
            transitions.extend(engine.evaluate(at))
            for message in engine.errors:
                rule_name, reason = _rule_error(message, [r.name for r in rules.rules])
                errors.setdefault(rule_name, reason)
    except QueryError as exc:
        print(f"lambdascope alerts test: {exc}", file=err)
        return 2
    notified = [t for t in transitions if t.notify]
    if notified:
        print("\nWould have notified:", file=out)
    for t in notified:
        print(
            f"{_clock(t.at)}  {t.event.upper():8}  {t.severity:8}  {t.rule} on "
            f"{t.function_name}: {t.summary}",
            file=out,
        )
    states = engine.state.load_states()
    firing = sorted((s for s in states.values() if s.state == "firing"), key=lambda s: s.key)
    pending = sorted((s for s in states.values() if s.state == "pending"), key=lambda s: s.key)
    if firing:
        print("\nFiring now:", file=out)
        for s in firing:
            print(
                f"  {s.rule} on {s.function_name} (since {_clock(s.firing_since or s.since)})",
                file=out,
            )
        last = next((t for t in reversed(notified) if t.event != "resolved" and t.payload), None)
        if last is not None:
            print(f"\nOpen the evidence: {last.payload['tui']['how']}", file=out)
    if pending:
        print("\nPending (would fire if it continues):", file=out)
        for s in pending:
            rule = rules.rule(s.rule)
            print(f"  {s.rule} on {s.function_name} (for {_span(rule.for_)})", file=out)
    outcomes = _outcomes(rules.rules, notified, pending, errors)
    print("\nRules:", file=out)
    width = max(len(r.name) for r in rules.rules)
    for rule in rules.rules:
        outcome, detail = outcomes[rule.name]
        line = f"  {rule.name:{width}}  {outcome:7}  {rule.severity:8}"
        print(f"{line}  {detail}".rstrip(), file=out)
    counts = {k: sum(1 for o, _ in outcomes.values() if o == k) for k in _OUTCOMES}
    summary = ", ".join(f"{counts[k]} {k}" for k in _OUTCOMES if counts[k])
    if not notified:
        summary += "; nothing would have been notified"
    if errors:
        summary += f"; {len(errors)} could not be evaluated (see above)"
    print(f"\n{len(rules.rules)} rules: {summary}.", file=out)
    return 1 if errors else 0


_OUTCOMES = ("fired", "pending", "quiet", "error")


def _rule_error(message: str, names: list[str]) -> tuple[str, str]:
    """(rule name, reason) of one of the engine's error lines."""
    for name in names:
        prefix = f"rule {name!r}"
        if message.startswith(prefix):
            reason = message[len(prefix) :]
            marker = "could not be evaluated: "
            if marker in reason:
                reason = reason.split(marker, 1)[1]
            return name, reason.lstrip(" :")
    return "", message


def _outcomes(
    rules: Sequence[Any],
    notified: Sequence[Any],
    pending: Sequence[Any],
    errors: Mapping[str, str],
) -> dict[str, tuple[str, str]]:
    """Each rule's one outcome: an error wins, then fired, then pending, else quiet."""
    outcomes: dict[str, tuple[str, str]] = {}
    for rule in rules:
        fired = sorted({t.function_name for t in notified if t.rule == rule.name})
        waiting = sorted({s.function_name for s in pending if s.rule == rule.name})
        if rule.name in errors:
            outcomes[rule.name] = ("error", errors[rule.name])
        elif fired:
            outcomes[rule.name] = ("fired", "on " + ", ".join(fired))
        elif waiting:
            outcomes[rule.name] = ("pending", "on " + ", ".join(waiting))
        else:
            outcomes[rule.name] = ("quiet", "")
    return outcomes


def _clock(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
