from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lambdascope.analyzers.alerts import (
    DEFAULT_RULES_PATH,
    DetectorSource,
    RulesError,
    SqlSource,
    Threshold,
    load_rules,
    parse_rules,
)
from lambdascope.analyzers.alerts.rule_fields import parse_duration
from lambdascope.cli import alerts as alerts_cli

DATA = Path(__file__).parent / "data"

GOOD = """\
version: 1
defaults:
  window: 10m
  notifiers: [ops]
notifiers:
  ops: {type: webhook, url: "http://127.0.0.1:9/hook", timeout: 3s, headers: {X-Team: pay}}
  chat: {type: slack, url: "https://hooks.slack.com/services/T/B/X"}
  pager: {type: command, command: [/usr/bin/env, cat], timeout: 2s}
rules:
  - name: checkout-error-rate
    description: too many failures
    detector: errors
    metric: error_rate
    threshold: ">= 5%"
    for: 5m
    m_of_n: 2/3
    min_invocations: 20
    functions: [checkout, "pay-*"]
    exclude_functions: ["*-canary"]
    severity: critical
    labels: {team: payments, tier: 1}
    notifiers: [chat, pager]
    renotify: 1h
    resolve_margin: 20%
    resolve_for: 2m
  - name: slow-p99
    sql: |
      -- p99 per function over the window
      SELECT function_name, quantile(0.99)(duration_ms) AS value
      FROM invocations
      WHERE start_time >= {since:DateTime64(3)} AND start_time < {until:DateTime64(3)}
      GROUP BY function_name;
    threshold: "> 2500"
    resolve_margin: 100
  - name: timeouts
    detector: timeouts
    kind: timeout
"""


def test_a_complete_rules_file_parses_into_rules_with_defaults_applied():
    rules = parse_rules(GOOD, "good.yaml")

    assert [r.name for r in rules.rules] == ["checkout-error-rate", "slow-p99", "timeouts"]
    error_rate, slow, timeouts = rules.rules
    assert error_rate.source == DetectorSource("errors", metric="error_rate")
    assert error_rate.threshold == Threshold(">=", 0.05)
    assert (error_rate.window, error_rate.for_) == (timedelta(minutes=10), timedelta(minutes=5))
    assert (error_rate.m, error_rate.n, error_rate.min_invocations) == (2, 3, 20)
    assert error_rate.functions == ("checkout", "pay-*")
    assert error_rate.exclude_functions == ("*-canary",)
    assert error_rate.label_dict == {"team": "payments", "tier": "1"}
    assert error_rate.notifiers == ("chat", "pager")
    assert error_rate.renotify == timedelta(hours=1)
    assert error_rate.margin == pytest.approx(0.01)  # 20% of 5%
    assert error_rate.resolve_for == timedelta(minutes=2)
    assert error_rate.line == 10
    assert isinstance(slow.source, SqlSource)
    assert slow.source.sql.startswith("-- p99") and not slow.source.sql.endswith(";")
    assert (slow.threshold, slow.margin) == (Threshold(">", 2500), 100.0)
    assert slow.notifiers == ("ops",)  # from defaults
    assert timeouts.threshold is None and timeouts.window == timedelta(minutes=10)
    ops, chat, pager = rules.notifiers
    assert (ops.type, ops.timeout, ops.headers) == (
        "webhook",
        timedelta(seconds=3),
        (("X-Team", "pay"),),
    )
    assert chat.type == "slack" and chat.timeout == timedelta(seconds=10)
    assert pager.command == ("/usr/bin/env", "cat")


def test_the_default_rule_pack_is_valid_and_covers_every_core_detector():
    rules = load_rules(DEFAULT_RULES_PATH)

    detectors = {r.source.detector for r in rules.rules if isinstance(r.source, DetectorSource)}
    assert detectors == {
        "timeouts",
        "memory",
        "errors",
        "cold_starts",
        "throttles",
        "memory_leak",
        "version_regression",
        "cost",
        "config_checks",
    }
    by_name = {r.name: r for r in rules.rules}
    # As sensitive as Datadog on timeouts and OOMs: any one fires, at once.
    assert by_name["timeouts"].for_ == timedelta(0)
    assert by_name["timeouts"].min_invocations == 0
    assert by_name["out-of-memory"].severity == "critical"
    # Quieter on rates: M-of-N and minimum traffic.
    assert (by_name["error-rate"].m, by_name["error-rate"].n) == (2, 3)
    assert by_name["error-rate"].threshold == Threshold(">=", 0.01)
    assert all(r.renotify >= timedelta(hours=4) for r in rules.rules)
    assert all(r.description for r in rules.rules)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("invalid_yaml.yaml", "invalid_yaml.yaml:6: invalid YAML: expected ',' or ']'"),
        (
            "unknown_detector.yaml",
            "unknown_detector.yaml:7: rules[1] (slow).detector: 'latency' is not a registered "
            "detector: use one of",
        ),
        (
            "bad_threshold.yaml",
            "bad_threshold.yaml:5: rules[0] (error-rate).threshold: '=> 5%' must be an operator",
        ),
        (
            "bad_duration.yaml",
            "bad_duration.yaml:4: rules[0] (timeouts).window: '5 minutes' is not a duration",
        ),
        (
            "unknown_field.yaml",
            "unknown_field.yaml:5: rules[0] (timeouts).windw: unknown field 'windw': did you "
            "mean 'window'?",
        ),
        (
            "duplicate_name.yaml",
            "duplicate_name.yaml:6: rules[2].name: rule name 'timeouts' is already used on line 2",
        ),
        (
            "unknown_notifier.yaml",
            "unknown_notifier.yaml:6: rules[0] (timeouts).notifiers: 'pager' not defined under "
            "`notifiers:`",
        ),
        (
            "sql_not_select.yaml",
            "sql_not_select.yaml:3: rules[0] (purge).sql: must be a read-only SELECT",
        ),
        (
            "sql_without_window.yaml",
            "sql_without_window.yaml:3: rules[0] (slow-p99).sql: must filter on the window with "
            "{since:DateTime64(3)} and {until:DateTime64(3)}",
        ),
        ("bad_m_of_n.yaml", "bad_m_of_n.yaml:4: rules[0] (errors).m_of_n: needs 1 <= m <= n"),
        (
            "wrong_kind.yaml",
            "wrong_kind.yaml:4: rules[0] (oom).kind: detector 'memory' reports no kind 'oom': "
            "use high_memory, out_of_memory",
        ),
    ],
)
def test_a_broken_file_is_refused_with_its_file_line_and_field(name, expected):
    with pytest.raises(RulesError) as caught:
        load_rules(DATA / name)

    assert len(caught.value.problems) == 1
    message = str(caught.value)
    assert message.startswith(str(DATA / name).removesuffix(name))
    assert expected in message


def test_every_problem_of_a_file_is_reported_at_once_in_line_order():
    with pytest.raises(RulesError) as caught:
        load_rules(DATA / "several_problems.yaml")

    located = [(p.line, p.field) for p in caught.value.problems]
    assert located == [
        (2, "notifiers.hook.url"),
        (6, "rules[0] (a).severity"),
        (7, "rules[1] (b).threshold"),
        (10, "rules[2].name"),
    ]


def test_a_missing_or_empty_file_names_itself(tmp_path):
    with pytest.raises(RulesError, match=r"missing.yaml: cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    with pytest.raises(RulesError, match=r"empty.yaml:1: rules: the file is empty"):
        load_rules(tmp_path / "empty.yaml")


def test_sql_rules_may_not_smuggle_a_second_statement_or_other_parameters():
    base = "rules:\n  - name: q\n    threshold: '> 1'\n    sql: \"{}\"\n"
    window = "WHERE t >= {since:DateTime64(3)} AND t < {until:DateTime64(3)}"
    two = base.replace("{}", f"SELECT function_name, 1 AS value FROM x {window}; DROP TABLE x")
    with pytest.raises(RulesError, match=r":4: rules\[0\] \(q\).sql: must be a single statement"):
        parse_rules(two, "r.yaml")
    other = base.replace(
        "{}", f"SELECT function_name, 1 AS value FROM x {window} AND f = {{fn:String}}"
    )
    with pytest.raises(RulesError, match=r"only the \{since:...\} and \{until:...\}"):
        parse_rules(other, "r.yaml")
    # A semicolon inside a string literal is data, not a second statement.
    quoted = base.replace("{}", f"SELECT function_name, 1 AS value FROM x {window} AND m = ';'")
    assert parse_rules(quoted, "r.yaml").rules[0].name == "q"


def test_durations_and_thresholds_in_the_forms_users_write():
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(0) == timedelta(0)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    assert Threshold(">", 0.05).breached(0.06) and not Threshold(">", 0.05).breached(0.05)
    assert Threshold("<=", 10).breached(10)
    # Hysteresis: back past the threshold by the margin, on the good side.
    assert not Threshold(">", 0.05).cleared(0.045, margin=0.01)
    assert Threshold(">", 0.05).cleared(0.04, margin=0.01)
    assert Threshold("<", 100).cleared(110, margin=10) and not Threshold("<", 100).cleared(105, 10)


def test_alerts_check_prints_ok_or_every_problem_with_file_and_line(tmp_path, capsys):
    good = tmp_path / "rules.yaml"
    good.write_text(GOOD)

    assert alerts_cli.check(good) == 0
    out = capsys.readouterr().out
    assert out == f"{good}: 3 rules OK (notifiers: log, ops, chat, pager)\n"

    assert alerts_cli.check(DATA / "several_problems.yaml") == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith(
        "several_problems.yaml:2: notifiers.hook.url: 'ftp://example.com/x' "
        "is not an http(s):// URL"
    )
    assert err[-1].endswith("several_problems.yaml: 4 problems")
    assert len(err) == 5


def test_a_bad_default_is_reported_once_under_defaults_not_under_every_rule():
    text = (
        "defaults:\n  window: five minutes\n  threshold: '> 1'\n"
        "rules:\n  - {name: a, detector: timeouts}\n  - {name: b, detector: errors}\n"
    )

    with pytest.raises(RulesError) as caught:
        parse_rules(text, "r.yaml")

    assert [str(p) for p in caught.value.problems] == [
        "r.yaml:2: defaults.window: 'five minutes' is not a duration: use e.g. 30s, 5m or 1h",
        "r.yaml:3: defaults.threshold: unknown field 'threshold': use one of exclude_functions, "
        "for, functions, labels, m_of_n, min_invocations, notifiers, renotify, resolve_for, "
        "resolve_margin, severity, tags, window",
    ]


def test_tag_selectors_parse_and_a_malformed_one_is_refused_with_its_line():
    (rule,) = parse_rules(
        "rules:\n  - {name: a, detector: timeouts, tags: {team: payments, tier: 1}}\n", "r.yaml"
    ).rules
    assert rule.tags == (("team", "payments"), ("tier", "1"))

    with pytest.raises(RulesError) as caught:
        parse_rules("rules:\n  - name: a\n    detector: timeouts\n    tags: [team]\n", "r.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "r.yaml:4: rules[0] (a).tags: must be a mapping of tag: value (a glob), "
        "e.g. {team: payments}"
    ]
