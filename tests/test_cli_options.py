"""The command line's contract: every flag parses, every bad value is one line and exit 2, the
outputs parse, and the exit codes CI gates on. No store and no sockets unless a test says so."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lambdascope.analyzers import Finding
from lambdascope.cli import main
from lambdascope.cli import report as report_cli
from lambdascope.cli.analyze import exit_code, findings_json, findings_markdown
from lambdascope.cli.emulator_cmds import emulator_url
from lambdascope.cli.options import (
    DEFAULT_COLLECTOR_URL,
    UsageError,
    parse_instant,
    parse_since,
    source_from_args,
    window_from_args,
)
from lambdascope.cli.parser import build_parser, version
from lambdascope.cli.query import clean_error, format_csv, format_json, format_table, format_tsv
from lambdascope.cli.storelock import redact_command
from lambdascope.query import QueryResult

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
RULES = Path(__file__).resolve().parents[1] / "analyzers" / "alerts" / "default_rules.yaml"


def _usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``main(argv)``, expect exit 2 with one line on stderr, and return that line."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    (line,) = captured.err.splitlines()
    return line


# --- the window grammar ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("6h", timedelta(hours=6)),
        ("7d", timedelta(days=7)),
        ("1.5h", timedelta(minutes=90)),
        (" 2D ", timedelta(days=2)),
    ],
)
def test_since_reads_s_m_h_d(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "5x", "0", "0m", "-5m", "15", "inf", "nanm", "1e20d", "2w"])
def test_since_refuses_anything_else_naming_the_forms(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="90s, 15m, 6h or 7d"):
        parse_since(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05", datetime(2026, 12, 5, tzinfo=UTC)),
        ("2026-12-05T10:00", datetime(2026, 12, 5, 10, tzinfo=UTC)),
        ("2026-12-05T10:00:00Z", datetime(2026, 12, 5, 10, tzinfo=UTC)),
        ("2026-12-05 10:00", datetime(2026, 12, 5, 10, tzinfo=UTC)),
        ("2026-12-05T12:00+02:00", datetime(2026, 12, 5, 10, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_and_naive_means_utc(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "05/12/2026", "2026-13-01", "10:00"])
def test_bad_times_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="2026-12-05T10:00:00Z"):
        parse_instant(text)


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["analyze", *argv])


def test_the_window_defaults_to_the_last_hour() -> None:
    window = window_from_args(_args(), NOW)
    assert (window.start, window.end) == (NOW - timedelta(hours=1), NOW)


def test_since_ends_now_and_from_to_is_fixed() -> None:
    assert window_from_args(_args("--since", "15m"), NOW).start == NOW - timedelta(minutes=15)
    fixed = window_from_args(_args("--from", "2026-12-04", "--to", "2026-12-05T06:00Z"), NOW)
    assert (fixed.start, fixed.end) == (datetime(2026, 12, 4, tzinfo=UTC), NOW - timedelta(hours=6))
    open_ended = window_from_args(_args("--from", "2026-12-05T11:00"), NOW)
    assert open_ended.end == NOW


def test_an_empty_or_half_window_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not before"):
        window_from_args(_args("--from", "2026-12-05T11:00", "--to", "2026-12-05T10:00"), NOW)
    with pytest.raises(UsageError, match="--to needs --from"):
        window_from_args(_args("--to", "2026-12-05T10:00"), NOW)


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "--since", "5x"],
        ["analyze", "--since", "0"],
        ["analyze", "--from", "nope"],
        ["analyze", "--since", "1h", "--from", "2026-12-05"],
        ["analyze", "--to", "2026-12-05"],
        ["analyze", "--from", "2999-01-01"],
        ["analyze", "--format", "yaml"],
        ["analyze", "--fail-on", "sometimes"],
        ["tui", "--since", "5x"],
        ["report", "--from", "tomorrow"],
        ["query", "SELECT 1", "--since", "-1h"],
        ["query", "SELECT 1", "--param", "novalue", "--store", "chdb:///nonexistent/x"],
        ["query", "SELECT 1", "--format", "xml"],
        ["alerts", "test", str(RULES), "--since", "forever"],
        ["analyze", "--store", "chdb:///x", "--collector", "http://127.0.0.1:9"],
        ["demo", "--duration", "soon"],
        ["collector", "--alert-interval", "0s"],
        ["layer", "build", "--arch", "sparc"],
        ["nosuchcommand"],
    ],
)
def test_every_bad_value_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    line = _usage_error(capsys, argv)
    assert line.startswith("lambdascope")


def test_a_bad_since_names_the_accepted_forms(capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error(capsys, ["analyze", "--since", "5x"])
    assert "'5x' is not a duration" in line and "90s, 15m, 6h or 7d" in line


# --- help and version ------------------------------------------------------------------------


def test_version_is_the_distribution_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"lambdascope {version()}"
    assert version()[0].isdigit()


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_every_flag_and_command_has_help_and_every_command_examples() -> None:
    missing = []
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.help is None:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    top = build_parser()
    (commands,) = (a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in commands.choices.items():
        assert parser.epilog and "example" in parser.epilog, name


def test_the_old_url_flag_still_names_the_collector_but_is_not_advertised() -> None:
    args = build_parser().parse_args(["analyze", "--url", "http://10.0.0.1:4320"])
    assert source_from_args(args, {}).url == "http://10.0.0.1:4320"
    (analyze,) = (p for p in _parsers(build_parser()) if p.prog == "lambdascope analyze")
    assert "--url" not in analyze.format_help()


def test_the_source_comes_from_flags_then_the_environment() -> None:
    env = {"LAMBDASCOPE_COLLECTOR_URL": "http://c:1", "LAMBDASCOPE_STORE_URL": "chdb:///s"}
    plain = _args()
    assert source_from_args(plain, {}).url == DEFAULT_COLLECTOR_URL
    assert source_from_args(plain, env) == source_from_args(_args("--collector", "http://c:1"), {})
    assert source_from_args(plain, {"LAMBDASCOPE_STORE_URL": "chdb:///s"}).kind == "store"
    assert source_from_args(_args("--store", "chdb:///t"), env).url == "chdb:///t"


# --- analyze ---------------------------------------------------------------------------------


def _finding(severity: str, **extra: Any) -> Finding:
    return Finding(
        kind="timeouts",
        severity=severity,
        function_name="checkout",
        function_version="7",
        window_start=NOW - timedelta(hours=1),
        window_end=NOW,
        summary="3 of 10 | invocations timed out",
        numbers={"rate": float("nan"), "timeouts": 3.0},
        evidence_request_ids=("r1", "r2", "r3", "r4"),
        recommendation="raise the timeout",
        **extra,
    )


def test_analyze_json_is_one_array_even_when_empty() -> None:
    assert json.loads(findings_json([])) == []
    (document,) = json.loads(findings_json([_finding("critical")]))
    assert document["window_start"] == "2026-12-05T11:00:00Z"
    assert document["numbers"] == {"rate": None, "timeouts": 3.0}
    assert {"kind", "severity", "function_name", "function_version", "window_end", "summary"} <= (
        document.keys()
    )
    assert document["evidence_request_ids"] == ["r1", "r2", "r3", "r4"]
    assert document["recommendation"] == "raise the timeout"


@pytest.mark.parametrize(
    ("severities", "fail_on", "code"),
    [
        ([], "critical", 0),
        (["warning", "info"], "critical", 0),
        (["warning"], "warning", 1),
        (["critical"], "critical", 1),
        (["info"], "warning", 0),
        (["info"], "info", 1),
        (["critical"], "none", 0),
    ],
)
def test_analyze_fails_on_findings_at_or_above_the_level(
    severities: list[str], fail_on: str, code: int
) -> None:
    assert exit_code([_finding(s) for s in severities], fail_on) == code


def test_analyze_markdown_escapes_cells() -> None:
    text = findings_markdown([_finding("warning")], "the last 1h")
    assert "3 of 10 \\| invocations" in text and "(+1 more)" in text
    assert "- checkout (timeouts): raise the timeout" in text


class _Fleet:
    """A reader whose fleet has two functions and no findings."""

    def query(self, sql: str, parameters: Any = None) -> QueryResult:
        if "function_name" in sql and parameters and "since" in parameters:
            return QueryResult(("function_name",), ("String",), [("api",), ("checkout",)])
        return QueryResult(("x",), ("UInt8",), [])


def test_analyze_of_an_unknown_function_lists_those_seen_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lambdascope.cli import analyze

    monkeypatch.setattr(analyze, "functions_seen", lambda client, window: ["api", "checkout"])
    monkeypatch.setattr("lambdascope.cli.options.reader_from_args", lambda args: _Fleet())
    assert main(["analyze", "--function", "nosuch", "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert captured.err.strip() == (
        "lambdascope analyze: no invocations of nosuch in the last 1h; "
        "functions seen: api, checkout"
    )


# --- query formats ---------------------------------------------------------------------------

RESULT = QueryResult(
    columns=("name", "n", "at", "ratio"),
    types=("String", "Nullable(UInt64)", "DateTime64(3, 'UTC')", "Float64"),
    rows=[
        ("tab\there\nnew\\line", None, datetime(2026, 12, 5, 10, tzinfo=UTC), float("nan")),
        ("plain", 12345, datetime(2026, 12, 5, 11, tzinfo=UTC), 0.5),
    ],
)


def test_tsv_escapes_like_clickhouse() -> None:
    header, first, second = format_tsv(RESULT).splitlines()
    assert header == "name\tn\tat\tratio"
    assert first == "tab\\there\\nnew\\\\line\t\\N\t2026-12-05T10:00:00+00:00\tnan"
    assert second.split("\t")[:2] == ["plain", "12345"]


def test_json_is_one_array_with_iso_times_and_nan_as_null() -> None:
    rows = json.loads(format_json(RESULT))
    assert rows[0] == {
        "name": "tab\there\nnew\\line",
        "n": None,
        "at": "2026-12-05T10:00:00+00:00",
        "ratio": None,
    }
    assert json.loads(format_json(QueryResult(("a",), ("UInt8",), []))) == []


def test_csv_round_trips_through_the_csv_module() -> None:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(format_csv(RESULT))))
    assert rows[0] == ["name", "n", "at", "ratio"]
    assert rows[1][:2] == ["tab\there\nnew\\line", ""]


def test_table_aligns_and_shows_null() -> None:
    lines = format_table(RESULT).splitlines()
    assert lines[0].split() == ["name", "n", "at", "ratio"]
    assert "NULL" in lines[2] and "\\n" in lines[2]  # one row per line
    # Numbers are right-aligned: NULL and 12345 end in the same column.
    assert lines[2].index("NULL") + len("NULL") == lines[3].index("12345") + len("12345")
    assert lines[-1] == "(2 rows)"


def test_query_errors_lose_the_echoed_sql_and_settings() -> None:
    raw = (
        "query failed: Code: 47. DB::Exception: Unknown expression identifier `nosuch`. In scope "
        "SELECT nosuch FROM invocations SETTINGS readonly = '1', max_result_rows = '100000', "
        "max_memory_usage = '2147483648'. (UNKNOWN_IDENTIFIER) (version 25.1.1.1)"
    )
    cleaned = clean_error(raw, "SELECT nosuch FROM invocations")
    assert cleaned == "Unknown expression identifier `nosuch` (UNKNOWN_IDENTIFIER)"
    refused = "function file() is not allowed: it reads files or the network"
    assert clean_error(refused) == refused


# --- alerts test, report, emulator URL, lock message ----------------------------------------


class _Empty:
    def query(self, sql: str, parameters: Any = None) -> QueryResult:
        if sql == "SELECT 1":
            return QueryResult(("1",), ("UInt8",), [(1,)])
        raise RuntimeError("the rule's table is missing")


def test_alerts_test_reports_each_rule_once_with_one_conclusion() -> None:
    import io

    from lambdascope.cli import alerts

    out, err = io.StringIO(), io.StringIO()
    code = alerts.test(RULES, _Empty(), timedelta(hours=1), now=NOW, out=out, err=err)
    text = out.getvalue()
    assert code == 1
    assert text.count("the rule's table is missing") == 17  # once per rule, not per evaluation
    assert err.getvalue() == ""
    conclusion = text.rstrip().splitlines()[-1]
    assert conclusion == (
        "17 rules: 17 error; nothing would have been notified; 17 could not be evaluated "
        "(see above)."
    )


def test_report_writes_the_default_file_and_prints_its_path(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lambdascope.analyzers import report

    calls: list[Any] = []

    def fake(
        client: Any, path: Any, window: Any, *, function_name: Any = None, progress: Any = None
    ) -> Path:
        calls.append((path, window, function_name))
        progress("findings")
        Path(path).write_text("<html></html>")
        return Path(path)

    monkeypatch.setattr(report, "write_html_report", fake)
    monkeypatch.setattr("lambdascope.cli.options.reader_from_args", lambda args: _Fleet())
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--function", "checkout", "--since", "6h"]) == 0
    captured = capsys.readouterr()
    (path, window, function_name) = calls[0]
    assert captured.out.strip() == str(path)
    assert str(path).startswith("lambdascope-report-checkout-") and str(path).endswith(".html")
    assert window.end - window.start == timedelta(hours=6) and function_name == "checkout"
    assert "lambdascope report: findings" in captured.err
    assert report_cli.default_report_path(None, NOW) == Path(
        "lambdascope-report-fleet-20261205-1200.html"
    )


def test_invoke_takes_the_emulator_url_from_its_config(tmp_path: Path) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text("[emulator]\nhost = '0.0.0.0'\nport = 9123\n")
    assert emulator_url(config) == "http://127.0.0.1:9123"
    config.write_text("[emulator]\nlog_dir = 'logs'\n")
    assert emulator_url(config) == "http://127.0.0.1:9000"
    assert emulator_url(None) == "http://127.0.0.1:9000"


def test_logs_without_a_config_says_what_to_pass(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAMBDASCOPE_EMULATOR_CONFIG", raising=False)
    line = _usage_error(capsys, ["logs", "checkout"])
    assert "--config FILE" in line and "LAMBDASCOPE_EMULATOR_CONFIG" in line


def test_a_holders_command_line_hides_tokens_and_passwords() -> None:
    shown = redact_command(
        [
            "lambdascope",
            "collector",
            "--token",
            "s3cret",
            "--read-token=r3ad",
            "--store",
            "http://u:pw@host:8123",
        ]
    )
    assert "s3cret" not in shown and "r3ad" not in shown and "pw" not in shown
    assert "http://u:***@host:8123" in shown


def test_tui_gets_the_window_source_and_function(monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdascope.tui import app

    opened: list[dict[str, Any]] = []

    class FakeApp:
        def __init__(self, client: Any, **kwargs: Any) -> None:
            opened.append(kwargs)

        def run(self) -> None:
            pass

    monkeypatch.setattr(app, "LambdascopeApp", FakeApp)
    monkeypatch.setattr("lambdascope.cli.options.reader_from_args", lambda args: _Fleet())
    assert main(["tui", "--since", "6h", "--function", "checkout"]) == 0
    assert main(["tui", "--from", "2026-12-05T10:00", "--to", "2026-12-05T11:00"]) == 0
    live, fixed = opened
    assert live["window"].span == timedelta(hours=6) and live["function_name"] == "checkout"
    assert (fixed["window"].start, fixed["window"].live) == (
        datetime(2026, 12, 5, 10, tzinfo=UTC),
        False,
    )
