"""The alert engine: rules -> observations per function -> state transitions -> notifications.

One evaluation at ``now``, per rule:

1. *Observe* (I/O): read the rule's ``n`` windows ``[now - (i+1)·window, now - i·window)``
   through the detectors or the rule's SQL, plus invocation counts for ``min_invocations``.
   Detector results and counts are cached per window within an evaluation, so rules sharing a
   detector cost one query.
2. *Advance* (pure, :func:`advance`): the state machine per (rule, function)::

       inactive/resolved --breaching--> pending --for elapsed--> firing --clear--> resolved
                            (for = 0: straight to firing)  \\--not breaching--> inactive

   *breaching* = at least ``m`` of the ``n`` windows breach (a window below ``min_invocations``
   never does). *clear* (hysteresis) = not breaching, and the newest window's value is back
   past the threshold by the margin (or, for a detector rule without a metric, the finding is
   gone for the whole window); it must hold for ``resolve_for`` before resolving. While firing,
   ``renotify`` repeats the notification.
3. *Notify*: one notification per transition (firing, renotify, resolved), never one per
   evaluation, through :class:`~analyzers.alerts.notifiers.Dispatcher`.

A rule whose query fails is reported in :attr:`AlertEngine.errors` and skipped; the other rules
still run, and its alerts keep their state.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdascope.analyzers.alerts import sql
from lambdascope.analyzers.alerts.notifiers import (
    LOGGER,
    Dispatcher,
    LogNotifier,
    Notifier,
    build_notifiers,
)
from lambdascope.analyzers.alerts.payload import build_payload
from lambdascope.analyzers.alerts.rules import DetectorSource, Rule, RuleSet, SqlSource
from lambdascope.analyzers.alerts.state import AlertState, AlertStateStore, Transition
from lambdascope.analyzers.findings import Finding, severity_rank
from lambdascope.analyzers.registry import DETECTORS, Detector
from lambdascope.analyzers.window import Window, ch_time
from lambdascope.query import QueryClient

__all__ = [
    "DEFAULT_COLLECTOR_URL",
    "AlertEngine",
    "AlertLoop",
    "Observation",
    "advance",
    "observe_rule",
]

DEFAULT_COLLECTOR_URL = "http://127.0.0.1:4320"

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Observation:
    """What one evaluation saw for one (rule, function)."""

    function_name: str
    breaching: bool
    clear: bool
    #: The newest breaching window's value, else the newest window's (None: no data).
    value: float | None
    breaching_windows: int
    finding: Finding | None = None
    invocations: int | None = None
    query: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _WindowValue:
    value: float | None
    breach: bool
    clear: bool
    finding: Finding | None
    invocations: int
    query: str
    parameters: Mapping[str, Any]


def selected(
    rule: Rule, function_name: str, function_tags: Mapping[str, str] | None = None
) -> bool:
    """Whether the rule's function selector (names, globs and tags) includes ``function_name``;
    ``function_tags`` are that function's tags (a function without tags matches no tag rule)."""
    if not any(fnmatch.fnmatchcase(function_name, g) for g in rule.functions) or any(
        fnmatch.fnmatchcase(function_name, g) for g in rule.exclude_functions
    ):
        return False
    tags = function_tags or {}
    return all(
        key in tags and fnmatch.fnmatchcase(tags[key], pattern) for key, pattern in rule.tags
    )


class _Reads:
    """One evaluation's reads, cached per window (rules sharing a detector query once)."""

    def __init__(self, client: QueryClient, detectors: Mapping[str, Detector]) -> None:
        self.client = client
        self.detectors = detectors
        self._findings: dict[tuple[str, datetime, datetime], list[Finding]] = {}
        self._traffic: dict[tuple[datetime, datetime], dict[str, int]] = {}
        self._tags: dict[str, dict[str, str]] | None = None

    def tags(self, function_name: str) -> dict[str, str]:
        """The function's newest tags (LAMBDASCOPE_TAGS, carried by the extension's batches);
        read once per evaluation."""
        if self._tags is None:
            rows = self.client.query(sql.FUNCTION_TAGS, {}).dicts()
            self._tags = {r["function_name"]: dict(r["tags"]) for r in rows}
        return self._tags.get(function_name, {})

    def selects(self, rule: Rule, function_name: str) -> bool:
        if not rule.tags:  # no tag read for rules that do not ask
            return selected(rule, function_name)
        return selected(rule, function_name, self.tags(function_name))

    def findings(self, detector: str, window: Window) -> list[Finding]:
        key = (detector, window.start, window.end)
        if key not in self._findings:
            if detector not in self.detectors:
                raise LookupError(
                    f"detector {detector!r} is not registered (registered: "
                    f"{', '.join(self.detectors)})"
                )
            self._findings[key] = self.detectors[detector](self.client, window, None)
        return self._findings[key]

    def traffic(self, window: Window) -> dict[str, int]:
        key = (window.start, window.end)
        if key not in self._traffic:
            rows = self.client.query(sql.TRAFFIC, _bounds(window)).dicts()
            self._traffic[key] = {r["function_name"]: int(r["invocations"]) for r in rows}
        return self._traffic[key]

    def sql_rows(self, rule: Rule, source: SqlSource, window: Window) -> list[dict[str, Any]]:
        result = self.client.query(source.sql, _bounds(window))
        missing = {"function_name", "value"} - set(result.columns)
        if missing:
            raise ValueError(
                f"its query returned columns {', '.join(result.columns) or '(none)'}; it must "
                "return `function_name` and `value` (alias them with AS)"
            )
        return result.dicts()


def _bounds(window: Window) -> dict[str, Any]:
    return {"since": ch_time(window.start), "until": ch_time(window.end)}


def _windows(rule: Rule, now: datetime) -> list[Window]:
    """Newest first."""
    return [
        Window(start=now - rule.window * (i + 1), end=now - rule.window * i) for i in range(rule.n)
    ]


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _worst(rule: Rule, values: Sequence[float]) -> float | None:
    if not values:
        return None
    if rule.threshold is not None and rule.threshold.op in ("<", "<="):
        return min(values)
    return max(values)


def _judge(rule: Rule, value: float | None, invocations: int) -> tuple[bool, bool]:
    """(breach, clear) of one window's value."""
    if value is None:
        return False, True
    enough = invocations >= rule.min_invocations
    if rule.threshold is None:  # detector presence: value is the number of findings
        return enough and value > 0, value == 0
    return enough and rule.threshold.breached(value), rule.threshold.cleared(value, rule.margin)


def _detector_window(
    rule: Rule, source: DetectorSource, reads: _Reads, window: Window, traffic: dict[str, int]
) -> dict[str, _WindowValue]:
    groups: dict[str, list[Finding]] = {}
    for finding in reads.findings(source.detector, window):
        if source.kind and finding.kind != source.kind:
            continue
        if source.min_severity and severity_rank(finding.severity) > severity_rank(
            source.min_severity
        ):
            continue
        if not reads.selects(rule, finding.function_name):
            continue
        groups.setdefault(finding.function_name, []).append(finding)
    out = {}
    for function_name, findings in groups.items():
        findings.sort(key=lambda f: (severity_rank(f.severity), f.function_version))
        chosen = findings[0]
        if source.metric is None:
            value: float | None = float(len(findings))
        else:
            metric = source.metric
            numbers = {
                id(f): v for f in findings if (v := _number(f.numbers.get(metric))) is not None
            }
            value = _worst(rule, list(numbers.values()))
            if value is not None:
                chosen = next(f for f in findings if numbers.get(id(f)) == value)
        invocations = traffic.get(function_name)
        if invocations is None:
            invocations = int(_number(chosen.numbers.get("invocations")) or 0)
        breach, clear = _judge(rule, value, invocations)
        out[function_name] = _WindowValue(
            value,
            breach,
            clear,
            chosen,
            invocations,
            chosen.query,
            # The detector's own extra parameters (evidence caps, shares) are its constants.
            window.parameters(function_name),
        )
    return out


def _sql_window(
    rule: Rule, source: SqlSource, reads: _Reads, window: Window, traffic: dict[str, int]
) -> dict[str, _WindowValue]:
    per_function: dict[str, list[dict[str, Any]]] = {}
    for row in reads.sql_rows(rule, source, window):
        name = str(row["function_name"])
        if reads.selects(rule, name):
            per_function.setdefault(name, []).append(row)
    out = {}
    for function_name, rows in per_function.items():
        values = [v for r in rows if (v := _number(r["value"])) is not None]
        value = _worst(rule, values)
        row = next((r for r in rows if _number(r["value"]) == value), rows[0])
        invocations = (
            int(row["invocations"])
            if row.get("invocations") is not None
            else traffic.get(function_name, 0)
        )
        breach, clear = _judge(rule, value, invocations)
        request_ids = row.get("request_ids") or ()
        if isinstance(request_ids, str):
            request_ids = (request_ids,)
        finding = Finding(
            kind="sql",
            severity=rule.severity,
            function_name=function_name,
            function_version="",
            window_start=window.start,
            window_end=window.end,
            summary=(
                f"{rule.name}: value {value:g} {rule.threshold} for {function_name} over "
                f"{_span(rule.window)} ({invocations} invocations)"
                if value is not None
                else f"{rule.name}: no value for {function_name}"
            ),
            numbers={
                "value": value if value is not None else math.nan,
                "invocations": float(invocations),
            },
            evidence_request_ids=tuple(str(r) for r in request_ids),
            query=source.sql,
            recommendation=rule.description,
        )
        out[function_name] = _WindowValue(
            value, breach, clear, finding, invocations, source.sql, _bounds(window)
        )
    return out


def observe_rule(
    rule: Rule,
    reads: _Reads,
    now: datetime,
    known_functions: Sequence[str] = (),
) -> list[Observation]:
    """One rule's observations at ``now``, for every function with data or a known state."""
    windows = _windows(rule, now)
    per_window: list[dict[str, _WindowValue]] = []
    for window in windows:
        # Detector findings carry their own invocation count; ask only when the guard needs it.
        needs_traffic = rule.min_invocations > 0 or isinstance(rule.source, SqlSource)
        traffic = reads.traffic(window) if needs_traffic else {}
        if isinstance(rule.source, DetectorSource):
            per_window.append(_detector_window(rule, rule.source, reads, window, traffic))
        else:
            per_window.append(_sql_window(rule, rule.source, reads, window, traffic))
    names = sorted({n for w in per_window for n in w} | set(known_functions))
    observations = []
    for name in names:
        seen = [w.get(name) for w in per_window]
        breaching_windows = sum(1 for s in seen if s is not None and s.breach)
        breaching = breaching_windows >= rule.m
        newest = seen[0]
        shown = next((s for s in seen if s is not None and s.breach), newest)
        clear = (newest is None or newest.clear) and not breaching
        if shown is None:
            query = rule.source.sql if isinstance(rule.source, SqlSource) else ""
            parameters: Mapping[str, Any] = _bounds(windows[0])
        else:
            query, parameters = shown.query, shown.parameters
        observations.append(
            Observation(
                function_name=name,
                breaching=breaching,
                clear=clear,
                value=shown.value if shown else None,
                breaching_windows=breaching_windows,
                finding=shown.finding if shown else None,
                invocations=shown.invocations if shown else None,
                query=query,
                parameters=parameters,
            )
        )
    return observations


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _summary(rule: Rule, obs: Observation, event: str) -> str:
    if event == "resolved":
        if rule.threshold is None:
            kind = rule.source.kind if isinstance(rule.source, DetectorSource) else None
            return (
                f"no {kind or 'finding'} for {obs.function_name} in the last {_span(rule.window)}"
            )
        shown = "no data" if obs.value is None else f"{obs.value:g}"
        return (
            f"{obs.function_name} is back: {shown}, past {rule.threshold} by the "
            f"{rule.margin:g} margin"
        )
    base = obs.finding.summary if obs.finding else f"{rule.name} on {obs.function_name}"
    if (
        rule.threshold is not None
        and obs.value is not None
        and isinstance(rule.source, DetectorSource)
    ):
        base += f" ({rule.source.metric} {obs.value:g} {rule.threshold})"
    if rule.n > 1:
        base += f" [{obs.breaching_windows} of the last {rule.n} {_span(rule.window)} windows]"
    return base


def advance(
    rule: Rule, previous: AlertState | None, obs: Observation, now: datetime
) -> tuple[AlertState | None, str | None]:
    """Pure: the (rule, function)'s next state and the event that happened (None: nothing).

    Returns the new state (or ``previous`` unchanged) and one of ``pending``, ``firing``,
    ``renotify``, ``resolved``, ``cancelled`` or None.
    """
    current = previous.state if previous else "inactive"
    fn = obs.function_name
    if current in ("inactive", "resolved"):
        if not obs.breaching:
            return previous, None
        if rule.for_ <= timedelta(0):
            return (
                AlertState(
                    rule.name,
                    fn,
                    "firing",
                    since=now,
                    pending_since=now,
                    firing_since=now,
                    last_notified_at=now,
                    value=obs.value,
                ),
                "firing",
            )
        return AlertState(
            rule.name, fn, "pending", since=now, pending_since=now, value=obs.value
        ), ("pending")
    assert previous is not None
    if current == "pending":
        if not obs.breaching:
            return AlertState(rule.name, fn, "inactive", since=now, value=obs.value), "cancelled"
        pending_since = previous.pending_since or previous.since
        if now - pending_since >= rule.for_:
            return (
                replace(
                    previous,
                    state="firing",
                    since=now,
                    firing_since=now,
                    last_notified_at=now,
                    clear_since=None,
                    value=obs.value,
                ),
                "firing",
            )
        return replace(previous, value=obs.value), None
    # firing
    if obs.clear:
        clear_since = previous.clear_since or now
        if now - clear_since >= rule.resolve_for:
            return (
                AlertState(
                    rule.name,
                    fn,
                    "resolved",
                    since=now,
                    firing_since=previous.firing_since,
                    last_notified_at=now,
                    value=obs.value,
                ),
                "resolved",
            )
        return replace(previous, clear_since=clear_since, value=obs.value), None
    last = previous.last_notified_at or previous.since
    if rule.renotify > timedelta(0) and now - last >= rule.renotify:
        return replace(previous, clear_since=None, last_notified_at=now, value=obs.value), (
            "renotify"
        )
    return replace(previous, clear_since=None, value=obs.value), None


class AlertEngine:
    """Evaluates rules against the store and notifies on transitions.

    Notifiers are built from a :class:`RuleSet`'s ``notifiers:`` section (``log`` always
    exists); ``notifiers`` given here override them by name and survive :meth:`set_rules`
    (tests inject recorders this way). ``clock`` gives ``now`` when :meth:`evaluate` is called
    without one. Safe to call :meth:`set_rules` from another thread (the rules watcher) while
    evaluating.
    """

    def __init__(
        self,
        rules: RuleSet | Sequence[Rule],
        client: QueryClient,
        state: AlertStateStore,
        notifiers: Mapping[str, Notifier] | None = None,
        clock: Clock | None = None,
        *,
        collector_url: str = DEFAULT_COLLECTOR_URL,
        dispatcher: Dispatcher | None = None,
        detectors: Mapping[str, Detector] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.client = client
        self.state = state
        self.clock: Clock = clock or _utc_now
        self.collector_url = collector_url
        self.logger = logger or LOGGER
        self.dispatcher = dispatcher or Dispatcher(logger=self.logger)
        self.detectors = DETECTORS if detectors is None else detectors
        self._overrides: dict[str, Notifier] = dict(notifiers or {})
        self._notifiers: dict[str, Notifier] = {}
        self._lock = threading.Lock()
        self._rules: tuple[Rule, ...] = ()
        self._evaluating = threading.Lock()
        #: Problems of the last evaluation, one line each (rule name and cause).
        self.errors: list[str] = []
        self.set_rules(rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        with self._lock:
            return self._rules

    def set_rules(
        self, rules: RuleSet | Sequence[Rule], notifiers: Mapping[str, Notifier] | None = None
    ) -> None:
        """Use new rules (and their notifiers) from the next evaluation on; alert states are
        kept by rule name."""
        built: dict[str, Notifier] = {"log": LogNotifier(logger=self.logger)}
        if isinstance(rules, RuleSet):
            built.update(build_notifiers(rules.notifiers, logger=self.logger))
        if notifiers is not None:
            built.update(notifiers)
        built.update(self._overrides)
        with self._lock:
            self._rules = tuple(rules.rules if isinstance(rules, RuleSet) else rules)
            self._notifiers = built

    def evaluate(self, now: datetime | None = None) -> list[Transition]:
        """Evaluate every rule once at ``now`` (default: the clock); returns the transitions."""
        with self._evaluating:  # one evaluation at a time: states are read-modify-write
            now = now or self.clock()
            if now.tzinfo is None:
                now = now.replace(tzinfo=UTC)
            with self._lock:
                rules, notifiers = self._rules, dict(self._notifiers)
            errors: list[str] = []
            states = self.state.load_states()
            reads = _Reads(self.client, self.detectors)
            transitions: list[Transition] = []
            for rule in rules:
                known = [fn for (name, fn), s in states.items() if name == rule.name]
                try:
                    observations = observe_rule(rule, reads, now, known)
                except Exception as exc:  # one broken rule must not stop the others
                    message = f"rule {rule.name!r} (line {rule.line}) could not be evaluated: {exc}"
                    errors.append(message)
                    self.logger.warning("%s", message)
                    continue
                for obs in observations:
                    previous = states.get((rule.name, obs.function_name))
                    new_state, event = advance(rule, previous, obs, now)
                    if new_state is not None and new_state != previous:
                        self.state.save_state(new_state)
                    if event is not None:
                        transitions.append(
                            self._transition(rule, previous, new_state, obs, event, now)
                        )
            for transition in transitions:
                self.state.record_transition(transition)
            self._notify(transitions, notifiers, errors)
            self.errors = errors
            return transitions

    def _transition(
        self,
        rule: Rule,
        previous: AlertState | None,
        new_state: AlertState | None,
        obs: Observation,
        event: str,
        now: datetime,
    ) -> Transition:
        summary = _summary(rule, obs, event)
        finding = obs.finding if event != "resolved" else None
        state = new_state.state if new_state else "inactive"
        payload = build_payload(
            rule=rule,
            event=event,
            state=state,
            function_name=obs.function_name,
            at=now,
            value=obs.value,
            summary=summary,
            finding=finding,
            query=obs.query,
            parameters=obs.parameters,
            firing_since=new_state.firing_since if new_state else None,
            collector_url=self.collector_url,
        )
        return Transition(
            rule=rule.name,
            function_name=obs.function_name,
            event=event,
            previous=previous.state if previous else "inactive",
            state=state,
            at=now,
            severity=rule.severity,
            value=obs.value,
            threshold=str(rule.threshold) if rule.threshold else "finding present",
            summary=summary,
            finding=finding,
            query=obs.query,
            parameters=dict(obs.parameters),
            labels=rule.labels,
            notifiers=rule.notifiers,
            payload=payload,
        )

    def _notify(
        self,
        transitions: Sequence[Transition],
        notifiers: Mapping[str, Notifier],
        errors: list[str],
    ) -> None:
        jobs: list[tuple[Notifier, Mapping[str, Any]]] = []
        for transition in transitions:
            if not transition.notify:
                continue
            for name in transition.notifiers:
                notifier = notifiers.get(name)
                if notifier is None:
                    errors.append(
                        f"rule {transition.rule!r}: notifier {name!r} is not configured; "
                        "define it under `notifiers:`"
                    )
                    continue
                jobs.append((notifier, transition.payload))
        result = self.dispatcher.dispatch(jobs)
        errors.extend(message for _, message in result.failures)


class AlertLoop:
    """Runs ``engine.evaluate()`` every ``interval`` on a daemon thread until :meth:`stop`.

    For the collector: an evaluation that raises (the store is down) is logged and retried at
    the next tick, never ending the loop.
    """

    def __init__(self, engine: AlertEngine, interval: timedelta = timedelta(minutes=1)) -> None:
        if interval <= timedelta(0):
            raise ValueError(f"the alert interval must be positive, got {interval}")
        self.engine = engine
        self.interval = interval
        self.evaluations = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the alert loop is already running")
        self._thread = threading.Thread(target=self._run, name="lambdascope-alerts", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.engine.evaluate()
                self.evaluations += 1
            except Exception:
                self.failures += 1
                self.engine.logger.exception("alert evaluation failed; retrying next interval")
            self._stop.wait(self.interval.total_seconds())

    def __enter__(self) -> AlertLoop:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
