from __future__ import annotations

import time
from datetime import datetime, timedelta

from lambdascope.analyzers.alerts import (
    AlertEngine,
    AlertLoop,
    MemoryAlertStateStore,
    Observation,
    advance,
    parse_rules,
)
from lambdascope.analyzers.alerts.notifiers import Dispatcher
from tests.analyzers.alerts.fakes import FakeClient, Recorder, World, minute


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: float = 1) -> None:
        self.now += timedelta(minutes=minutes)


def engine_for(world: World, rules_yaml: str, store: MemoryAlertStateStore | None = None):
    rules = parse_rules(
        "notifiers: {rec: {type: log}}\n" + rules_yaml,
        "rules.yaml",
        detectors=("errors", "timeouts"),
    )
    recorder = Recorder("rec")
    clock = FakeClock(minute(0))
    engine = AlertEngine(
        rules,
        FakeClient(world),
        store or MemoryAlertStateStore(),
        {"rec": recorder},
        clock,
        collector_url="http://127.0.0.1:4320",
        dispatcher=Dispatcher(max_workers=2),
        detectors=world.detectors(),
    )
    return engine, recorder, clock


def run(engine: AlertEngine, clock: FakeClock, start: float, end: float) -> dict[float, list]:
    """Evaluate once a minute over [start, end]; the transitions by minute."""
    clock.now = minute(start)
    out = {}
    for _ in range(int(end - start) + 1):
        transitions = engine.evaluate()
        if transitions:
            out[(clock.now - minute(0)).total_seconds() / 60] = [
                (t.event, t.function_name) for t in transitions
            ]
        clock.tick()
    return out


ERROR_RATE = """
rules:
  - name: error-rate
    detector: errors
    metric: error_rate
    threshold: "> 5%"
    window: 5m
    for: 3m
    resolve_margin: 40%
    notifiers: [rec]
"""


def error_burst() -> World:
    # 10 invocations a minute for an hour; 1 failure a minute from minute 10 to 29.
    world = World()
    world.set("checkout", 0, 10, invocations=10)
    world.set("checkout", 10, 30, invocations=10, errors=1)
    world.set("checkout", 30, 60, invocations=10)
    return world


def test_pending_until_for_elapses_then_one_firing_and_one_resolved_notification():
    engine, recorder, clock = engine_for(error_burst(), ERROR_RATE)

    transitions = run(engine, clock, 5, 50)

    # The 5-minute rate passes 5% at minute 13 (3 failures in 50), fires 3 minutes later.
    assert transitions == {
        13: [("pending", "checkout")],
        16: [("firing", "checkout")],
        34: [("resolved", "checkout")],
    }
    # Deduplicated: 19 evaluations while firing, one notification each way.
    assert recorder.events == [("firing", "checkout"), ("resolved", "checkout")]


def test_hysteresis_holds_the_alert_until_the_value_is_past_the_margin():
    engine, recorder, clock = engine_for(error_burst(), ERROR_RATE)
    run(engine, clock, 5, 32)

    # Minute 33: the rate is 4% (2 of 50), below 5% but not below the 3% margin: still firing.
    clock.now = minute(33)
    assert engine.evaluate() == []
    (state,) = engine.state.load_states().values()
    assert (state.state, state.value) == ("firing", 0.04)
    clock.now = minute(34)
    (resolved,) = engine.evaluate()
    assert (resolved.event, resolved.previous, resolved.state) == ("resolved", "firing", "resolved")
    assert resolved.value == 0.02


def test_no_margin_resolves_as_soon_as_the_threshold_is_no_longer_breached():
    engine, _, clock = engine_for(
        error_burst(), ERROR_RATE.replace("resolve_margin: 40%", "resolve_margin: 0")
    )

    assert run(engine, clock, 5, 50)[33] == [("resolved", "checkout")]


def test_renotify_repeats_while_firing_and_stops_once_resolved():
    engine, recorder, clock = engine_for(
        error_burst(), ERROR_RATE.replace("for: 3m", "for: 3m\n    renotify: 8m")
    )

    transitions = run(engine, clock, 5, 50)

    assert transitions[24] == [("renotify", "checkout")]
    assert transitions[32] == [("renotify", "checkout")]
    assert [e for e, _ in recorder.events] == ["firing", "renotify", "renotify", "resolved"]


def test_a_breach_shorter_than_for_is_cancelled_without_notifying():
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 11, invocations=10, errors=5)  # one bad minute
    engine, recorder, clock = engine_for(world, ERROR_RATE.replace("for: 3m", "for: 10m"))

    transitions = run(engine, clock, 5, 30)

    # Minute 10 leaves the 5-minute window at minute 16.
    assert transitions == {11: [("pending", "checkout")], 16: [("cancelled", "checkout")]}
    assert recorder.payloads == []


M_OF_N = """
rules:
  - name: error-rate-2-of-3
    detector: errors
    metric: error_rate
    threshold: "> 5%"
    window: 1m
    m_of_n: 2/3
    notifiers: [rec]
"""


def test_m_of_n_ignores_a_single_bad_window_and_fires_on_two_of_three():
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 11, invocations=10, errors=2)  # alone: never fires
    world.set("checkout", 20, 21, invocations=10, errors=2)
    world.set("checkout", 22, 23, invocations=10, errors=2)  # 2 of [20, 23)
    engine, recorder, clock = engine_for(world, M_OF_N)

    transitions = run(engine, clock, 5, 40)

    # At minute 24 only [22, 23) of the last three breaches, and the newest is clear.
    assert transitions == {23: [("firing", "checkout")], 24: [("resolved", "checkout")]}
    (firing, _) = recorder.payloads
    assert "[2 of the last 3 1m windows]" in firing["summary"]
    assert firing["rule"]["m_of_n"] == "2/3"


TIMEOUTS = """
rules:
  - name: timeouts
    detector: timeouts
    kind: timeout
    window: 5m
    min_invocations: 20
    functions: ["*"]
    exclude_functions: ["*-canary"]
    severity: critical
    labels: {team: payments}
    notifiers: [rec]
"""


def test_minimum_traffic_and_the_function_selector_decide_who_can_fire():
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 11, invocations=10, timeouts=("checkout-7",))
    world.set("quiet", 0, 60, invocations=1)
    world.set("quiet", 10, 11, invocations=1, timeouts=("quiet-1",))
    world.set("pay-canary", 0, 60, invocations=10)
    world.set("pay-canary", 10, 11, invocations=10, timeouts=("canary-1",))
    engine, recorder, clock = engine_for(world, TIMEOUTS)

    transitions = run(engine, clock, 5, 20)

    # quiet had 5 invocations in the window (< 20); pay-canary is excluded.
    assert transitions == {11: [("firing", "checkout")], 16: [("resolved", "checkout")]}


TAGGED = """
rules:
  - name: payments-timeouts
    detector: timeouts
    window: 5m
    tags: {team: payments, tier: "crit*"}
    notifiers: [rec]
"""


def test_a_tag_selector_picks_the_functions_carrying_every_tag():
    world = World()
    world.tags = {
        "checkout": {"team": "payments", "tier": "critical"},
        "refunds": {"team": "payments", "tier": "batch"},  # tier does not match
        "search": {"team": "discovery", "tier": "critical"},  # team does not match
    }
    for name in ("checkout", "refunds", "search", "untagged"):
        world.set(name, 0, 60, invocations=10)
        world.set(name, 10, 11, invocations=10, timeouts=(f"{name}-1",))
    engine, recorder, clock = engine_for(world, TAGGED)

    transitions = run(engine, clock, 5, 20)

    assert transitions == {11: [("firing", "checkout")], 16: [("resolved", "checkout")]}
    # Tags are read at most once per evaluation (and only when a finding needs them).
    assert 0 < world.queries.count("tags") <= world.queries.count("timeouts")


def test_rules_without_tags_never_read_them():
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    engine, recorder, clock = engine_for(world, TIMEOUTS)

    run(engine, clock, 5, 8)

    assert "tags" not in world.queries


def test_a_detector_finding_must_be_gone_for_a_whole_window_before_resolving():
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 11, invocations=10, timeouts=("checkout-7", "checkout-8"))
    engine, recorder, clock = engine_for(world, TIMEOUTS)

    transitions = run(engine, clock, 5, 30)

    # The timeout at minute 10 stays in the 5-minute window until minute 15 inclusive.
    assert transitions == {11: [("firing", "checkout")], 16: [("resolved", "checkout")]}
    firing, resolved = recorder.payloads
    assert firing["event"] == "firing" and firing["severity"] == "critical"
    assert firing["summary"] == "2 of 50 invocations of checkout timed out"
    assert firing["finding"]["evidence_request_ids"] == ["checkout-7", "checkout-8"]
    assert firing["finding"]["numbers"]["timeouts"] == 2
    assert firing["finding"]["recommendation"] == "bound downstream calls"
    assert firing["query"]["sql"] == "SELECT timeouts FROM invocations"
    assert firing["query"]["parameters"] == {
        "since": "2026-11-24 06:06:00.000",
        "until": "2026-11-24 06:11:00.000",
        "function_name": "checkout",
    }
    assert (
        firing["tui"]["command"] == "lambdascope tui --collector http://127.0.0.1:4320 --since 1h"
    )
    assert firing["tui"]["request_id"] == "checkout-7"
    assert "open request checkout-7" in firing["tui"]["how"]
    assert firing["rule"]["labels"] == {"team": "payments"}
    assert firing["text"].startswith("[CRITICAL] FIRING timeouts on checkout: 2 of 50")
    assert resolved["event"] == "resolved" and resolved["finding"] is None
    assert resolved["summary"] == "no timeout for checkout in the last 5m"
    assert resolved["firing_since"] == "2026-11-24T06:11:00Z"


def test_state_survives_a_restart_so_a_firing_alert_is_not_notified_again():
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 13, invocations=10, timeouts=("checkout-7",))
    store = MemoryAlertStateStore()
    first, first_recorder, clock = engine_for(world, TIMEOUTS, store)
    run(first, clock, 10, 12)

    second, second_recorder, clock = engine_for(world, TIMEOUTS, store)
    transitions = run(second, clock, 13, 20)

    assert first_recorder.events == [("firing", "checkout")]
    assert transitions == {18: [("resolved", "checkout")]}
    assert second_recorder.events == [("resolved", "checkout")]
    assert [t.event for t in store.history] == ["firing", "resolved"]


SQL_AND_BROKEN = """
rules:
  - name: sql-error-rate
    sql: |
      SELECT function_name, countIf(status = 'error') / count() AS value,
             groupArrayIf(request_id, status = 'error') AS request_ids
      FROM invocations
      WHERE start_time >= {since:DateTime64(3)} AND start_time < {until:DateTime64(3)}
      GROUP BY function_name
    threshold: "> 5%"
    window: 5m
    severity: warning
    description: Look at the failing requests first.
    notifiers: [rec]
  - name: timeouts
    detector: timeouts
    window: 5m
    notifiers: [rec]
"""


def test_a_sql_rule_fires_with_its_query_parameters_and_evidence():
    engine, recorder, clock = engine_for(error_burst(), SQL_AND_BROKEN)

    transitions = run(engine, clock, 5, 40)

    # The default 10% margin resolves below 4.5%: at 4% (minute 33).
    assert transitions == {13: [("firing", "checkout")], 33: [("resolved", "checkout")]}
    firing = recorder.payloads[0]
    assert firing["rule"]["source"]["sql"].startswith("SELECT function_name, countIf")
    assert firing["query"]["sql"] == firing["rule"]["source"]["sql"]
    assert firing["query"]["parameters"] == {
        "since": "2026-11-24 06:08:00.000",
        "until": "2026-11-24 06:13:00.000",
    }
    assert firing["value"] == 0.06
    assert firing["finding"]["evidence_request_ids"] == ["checkout-e"]
    assert firing["finding"]["recommendation"] == "Look at the failing requests first."
    assert (
        firing["summary"]
        == "sql-error-rate: value 0.06 > 0.05 for checkout over 5m (50 invocations)"
    )


def test_a_failing_rule_is_reported_and_the_other_rules_still_run():
    world = error_burst()
    world.set("checkout", 20, 21, invocations=10, errors=1, timeouts=("checkout-20",))
    world.fail_sql = True
    engine, recorder, clock = engine_for(world, SQL_AND_BROKEN)
    clock.now = minute(21)

    (transition,) = engine.evaluate()

    assert (transition.rule, transition.event) == ("timeouts", "firing")
    assert recorder.events == [("firing", "checkout")]
    (error,) = engine.errors
    assert error.startswith("rule 'sql-error-rate' (line 4) could not be evaluated: query failed")
    assert "duraton_ms" in error


def test_a_sql_rule_without_the_value_column_says_how_to_fix_it():
    yaml = SQL_AND_BROKEN.replace("/ count() AS value", "/ count() AS wrong")
    engine, _, clock = engine_for(error_burst(), yaml)
    clock.now = minute(20)

    engine.evaluate()

    (error,) = engine.errors
    assert "returned columns function_name, wrong; it must return `function_name` and `value`" in (
        error
    )


def test_rules_sharing_a_detector_and_window_query_it_once_per_evaluation():
    yaml = TIMEOUTS + TIMEOUTS.replace("rules:\n", "").replace("name: timeouts", "name: again")
    world = error_burst()
    engine, _, clock = engine_for(world, yaml)
    clock.now = minute(20)

    engine.evaluate()

    assert world.queries.count("timeouts") == 1
    assert world.queries.count("traffic") == 1


def test_advance_is_a_pure_state_machine():
    rules = parse_rules(ERROR_RATE.replace("[rec]", "[log]"), "r.yaml", detectors=("errors",))
    rule = rules.rules[0]
    breaching = Observation("f", breaching=True, clear=False, value=0.1, breaching_windows=1)
    quiet = Observation("f", breaching=False, clear=True, value=0.0, breaching_windows=0)

    assert advance(rule, None, quiet, minute(0)) == (None, None)
    pending, event = advance(rule, None, breaching, minute(0))
    assert pending is not None
    assert (pending.state, event) == ("pending", "pending")
    still, event = advance(rule, pending, breaching, minute(2))
    assert still is not None
    assert (still.state, event) == ("pending", None)
    firing, event = advance(rule, still, breaching, minute(3))
    assert firing is not None
    assert (firing.state, event, firing.firing_since) == ("firing", "firing", minute(3))
    resolved, event = advance(rule, firing, quiet, minute(9))
    assert resolved is not None
    assert (resolved.state, event, resolved.firing_since) == ("resolved", "resolved", minute(3))
    again, event = advance(rule, resolved, breaching, minute(10))
    assert again is not None
    assert (again.state, event) == ("pending", "pending")


class BrokenStateStore(MemoryAlertStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def load_states(self):
        self.loads += 1
        if self.loads == 1:
            raise ConnectionError("store unavailable")
        return super().load_states()


def test_the_loop_evaluates_on_its_interval_and_survives_a_failing_evaluation():
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 11, invocations=10, timeouts=("checkout-7",))
    state = BrokenStateStore()
    engine, recorder, clock = engine_for(world, TIMEOUTS, state)
    clock.now = minute(11)
    loop = AlertLoop(engine, timedelta(milliseconds=20))

    loop.start()
    try:
        deadline = time.monotonic() + 10
        while loop.evaluations < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        loop.stop()

    assert loop.failures == 1
    assert loop.evaluations >= 2
    assert recorder.events == [("firing", "checkout")]  # deduplicated across evaluations
