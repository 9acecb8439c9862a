"""The default rule pack and the ClickHouse state store on the real pipeline's data (chDB)."""

from __future__ import annotations

import io
from datetime import timedelta

from lambdascope.analyzers.alerts import (
    DEFAULT_RULES_PATH,
    AlertEngine,
    ClickHouseAlertStateStore,
    MemoryAlertStateStore,
    load_rules,
    parse_rules,
)
from lambdascope.cli import alerts as alerts_cli
from lambdascope.query import StoreUnavailableError
from tests.analyzers import fleetdata
from tests.analyzers.alerts.fakes import Recorder
from tests.analyzers.fleetdata import NOW

# fleetdata's functions start at NOW - 30m, one invocation every 30 s; checkout's second
# timeout (checkout-0019) starts at NOW - 20.5m.
AFTER_SECOND_TIMEOUT = NOW - timedelta(minutes=18)


def default_engine(reader, state=None):
    recorder = Recorder("log")
    engine = AlertEngine(
        load_rules(DEFAULT_RULES_PATH),
        reader,
        state or MemoryAlertStateStore(),
        {"log": recorder},
        collector_url="http://127.0.0.1:4320",
    )
    return engine, recorder


def replay(engine: AlertEngine, *, minutes: int = 60, step: int = 5) -> list:
    transitions = []
    for m in range(0, minutes + 1, step):
        transitions += engine.evaluate(NOW - timedelta(minutes=minutes - m))
        assert engine.errors == []
    return transitions


def test_the_default_pack_fires_the_timeout_rule_on_a_timeout_scenario(store):
    store.write(fleetdata.timeout_fleet())
    engine, recorder = default_engine(store.reader)

    (transition,) = engine.evaluate(AFTER_SECOND_TIMEOUT)

    assert (transition.rule, transition.function_name, transition.event) == (
        "timeouts",
        "checkout",
        "firing",
    )
    assert transition.severity == "critical"
    assert transition.finding is not None
    assert transition.finding.evidence_request_ids == ("checkout-0019",)
    assert transition.summary == "1 of 10 invocations of checkout timed out at its 3.0 s limit"
    (payload,) = recorder.payloads
    assert payload["finding"]["numbers"]["timeout_ms"] == 3000.0
    assert "{since:DateTime64(3, 'UTC')}" in payload["query"]["sql"]
    assert payload["tui"]["request_id"] == "checkout-0019"
    assert payload["tui"]["command"].startswith("lambdascope tui --collector http://127.0.0.1:4320")


def test_replaying_the_hour_notifies_once_per_transition(store):
    store.write(fleetdata.timeout_fleet())
    engine, recorder = default_engine(store.reader)

    transitions = replay(engine)

    # Timeouts at NOW-26.5m, -20.5m and -14.5m, evaluated every 5 minutes over 5-minute
    # windows: [-20m, -15m) has none, so the alert resolves there and fires again at -10m.
    # Evaluations that find it still firing notify nothing.
    assert [(t.rule, t.function_name, t.event, t.at) for t in transitions] == [
        ("timeouts", "checkout", "firing", NOW - timedelta(minutes=25)),
        ("timeouts", "checkout", "resolved", NOW - timedelta(minutes=15)),
        ("timeouts", "checkout", "firing", NOW - timedelta(minutes=10)),
        ("timeouts", "checkout", "resolved", NOW - timedelta(minutes=5)),
    ]
    assert [p["event"] for p in recorder.payloads] == [t.event for t in transitions]
    assert [p["tui"]["request_id"] for p in recorder.payloads[::2]] == [
        "checkout-0007",
        "checkout-0031",
    ]


def test_the_default_pack_fires_nothing_on_a_healthy_fleet(store):
    store.write(fleetdata.healthy_fleet())
    engine, recorder = default_engine(store.reader)

    assert replay(engine) == []
    assert recorder.payloads == []


def test_state_and_history_persist_in_the_store_across_a_restart(store):
    store.write(fleetdata.timeout_fleet())
    writer = store.store._client  # what the collector passes: its clickhouse-connect client
    engine, _ = default_engine(store.reader, ClickHouseAlertStateStore(writer))
    engine.evaluate(AFTER_SECOND_TIMEOUT)

    restarted_state = ClickHouseAlertStateStore(writer)  # CREATE ... IF NOT EXISTS again
    (state,) = restarted_state.load_states().values()
    assert (state.rule, state.function_name, state.state) == ("timeouts", "checkout", "firing")
    assert state.firing_since == AFTER_SECOND_TIMEOUT
    restarted, recorder = default_engine(store.reader, restarted_state)
    assert restarted.evaluate(AFTER_SECOND_TIMEOUT + timedelta(minutes=1)) == []
    assert recorder.payloads == []  # deduplicated across the restart
    restarted.evaluate(NOW)

    history = restarted_state.history(rule="timeouts")
    assert [(h["event"], h["previous"], h["state"]) for h in history] == [
        ("resolved", "firing", "resolved"),
        ("firing", "inactive", "firing"),
    ]
    firing = history[1]
    assert firing["evidence_request_ids"] == ["checkout-0019"]
    assert firing["notified"] == 1
    assert firing["payload"]["finding"]["summary"].startswith("1 of 10 invocations of checkout")
    (resolved_state,) = restarted_state.load_states().values()
    assert resolved_state.state == "resolved"


def test_a_sql_rule_runs_read_only_against_the_store_with_bound_window(store):
    store.write(fleetdata.healthy_fleet())
    rules = parse_rules(
        """
rules:
  - name: slow-p99
    sql: |
      SELECT function_name, quantile(0.99)(duration_ms) AS value, count() AS invocations,
             arraySlice(groupArray(request_id), 1, 3) AS request_ids
      FROM invocations
      WHERE start_time >= {since:DateTime64(3)} AND start_time < {until:DateTime64(3)}
      GROUP BY function_name
    threshold: "> 2000"
    window: 1h
""",
        "rules.yaml",
    )
    engine = AlertEngine(rules, store.reader, MemoryAlertStateStore(), {"log": Recorder("log")})

    (transition,) = engine.evaluate(NOW)

    assert (transition.function_name, transition.event) == ("report_export", "firing")
    assert transition.value is not None and 2500 < transition.value <= 2600
    assert transition.finding is not None
    assert transition.finding.numbers["invocations"] == 20.0
    assert len(transition.finding.evidence_request_ids) == 3


def test_alerts_test_replays_the_default_pack_and_prints_what_would_fire(store):
    store.write(fleetdata.timeout_fleet())
    out, err = io.StringIO(), io.StringIO()

    code = alerts_cli.test(
        DEFAULT_RULES_PATH,
        store.reader,
        timedelta(minutes=30),
        now=AFTER_SECOND_TIMEOUT,
        out=out,
        err=err,
    )

    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert (
        "Replaying 17 rules over the last 30m (6 evaluations, every 5m); nothing is sent." in text
    )
    assert "FIRING    critical  timeouts on checkout: 1 of 10 invocations" in text
    assert "Firing now:\n  timeouts on checkout" in text
    # Fired at NOW-23m on checkout-0007 and still firing at NOW-18m: notified once.
    assert text.count("FIRING") == 1
    assert "open request checkout-0007" in text
    assert err.getvalue() == ""
    assert "  timeouts    " in text and " fired " in text
    assert text.rstrip().endswith("17 rules: 1 fired, 16 quiet.")


def test_alerts_test_on_a_healthy_fleet_says_nothing_would_fire(store):
    store.write(fleetdata.healthy_fleet())
    out = io.StringIO()

    code = alerts_cli.test(
        DEFAULT_RULES_PATH, store.reader, timedelta(minutes=10), now=AFTER_SECOND_TIMEOUT, out=out
    )

    assert code == 0
    assert "(2 evaluations, every 5m)" in out.getvalue()
    assert out.getvalue().rstrip().endswith("17 rules: 17 quiet; nothing would have been notified.")
    assert "Firing now" not in out.getvalue()


class Unreachable:
    def query(self, sql, parameters=None):
        raise StoreUnavailableError(
            "cannot reach the collector's read API at http://127.0.0.1:9: connection refused"
        )


def test_alerts_test_without_a_store_exits_2_and_names_the_url():
    out, err = io.StringIO(), io.StringIO()

    code = alerts_cli.test(
        DEFAULT_RULES_PATH, Unreachable(), timedelta(minutes=10), out=out, err=err
    )

    assert code == 2
    # One line: the store is one problem, not one per rule and evaluation.
    (line,) = err.getvalue().splitlines()
    assert line.startswith("lambdascope alerts test: cannot reach")
    assert "http://127.0.0.1:9" in line
    assert out.getvalue() == ""
