"""The ``lambdascope`` command line: every command, flag, help text and example."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from pathlib import Path

from lambdascope.cli.options import (
    CliParser,
    add_source_options,
    add_window_options,
    parse_duration,
)

__all__ = ["build_parser", "version"]

DEFAULT_STORE_URL = "chdb://" + str(Path("~/.lambdascope/store").expanduser())


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs and other multi-line texts keep their layout (examples, tables); a one-line
    description is wrapped to the terminal like any help text."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


_RAW = _Formatter
_Sub = argparse._SubParsersAction  # the type add_subparsers returns

ENVIRONMENT = """\
environment:
  LAMBDASCOPE_COLLECTOR_URL    the collector's read API, when neither --collector nor --store
  LAMBDASCOPE_STORE_URL        a store to read directly, when no collector URL is set either
  LAMBDASCOPE_READ_TOKEN       the read token (or --read-token-file FILE)
  LAMBDASCOPE_CA_BUNDLE        CA certificates for an https:// collector with a private CA"""

WINDOW = """\
time window:
  --since 15m | 6h | 7d             the span ending now (s, m, h or d)
  --from 2026-12-05T10:00 [--to 2026-12-05T11:00]
                                    a fixed range; UTC unless the time has an offset
                                    (2026-12-05T10:00+02:00); a date alone is midnight"""

MAIN_EPILOG = f"""\
commands by task:
  try it           lambdascope demo
  collect          lambdascope collector
  look             lambdascope tui | analyze | report | query
  alert            lambdascope alerts check | test
  reproduce        lambdascope emulator | invoke | logs
  ship             lambdascope layer build

{ENVIRONMENT}

exit codes:
  0  success (analyze: no finding at or above --fail-on)
  1  analyze: findings at or above --fail-on, or --function has no data in the window;
     alerts test: some rules could not be evaluated; invoke: the function failed
  2  the command could not run: bad options, unreachable collector, unreadable store

Run lambdascope COMMAND --help for a command's options and examples.
"""

COLLECTOR_EPILOG = """\
tokens:
  Functions send with the ingest token, readers (analyze, tui, query) with the read token.
  Pass them in the environment (LAMBDASCOPE_TOKEN, LAMBDASCOPE_READ_TOKEN) or in files
  (--token-file, --read-token-file), never as flags: every user of the machine can read a
  command line. Listening beyond loopback (--host 0.0.0.0) needs both tokens.

TLS:
  --tls-cert cert.pem --tls-key key.pem serves every endpoint over HTTPS; give functions
  LAMBDASCOPE_COLLECTOR_URL=https://... (and LAMBDASCOPE_CA_BUNDLE for a private CA).

read API:
  Only single SELECT queries over the lambdascope database's tables and views run, with
  limits on rows, bytes, time and memory. On a ClickHouse server, let reads run as a user
  that may only read that database (--read-store / LAMBDASCOPE_READ_STORE_URL):
    CREATE USER lambdascope_reader IDENTIFIED WITH sha256_password BY '...';
    GRANT SELECT ON lambdascope.* TO lambdascope_reader;
  The collector checks that user's grants at start and warns if it may do more.

examples:
  lambdascope collector
  LAMBDASCOPE_TOKEN=... LAMBDASCOPE_READ_TOKEN=... lambdascope collector --host 0.0.0.0
  lambdascope collector --host 0.0.0.0 --token-file /run/secrets/ingest \\
      --read-token-file /run/secrets/read --tls-cert cert.pem --tls-key key.pem
  LAMBDASCOPE_STORE_URL=https://user:pass@clickhouse:8443 lambdascope collector
"""

ANALYZE_EPILOG = f"""\
examples:
  lambdascope analyze                              the last hour, every function
  lambdascope analyze --since 24h --function checkout
  lambdascope analyze --from 2026-12-05T10:00 --to 2026-12-05T11:00
  lambdascope analyze --format json | jq '.[] | select(.severity == "critical")'
  lambdascope analyze --since 15m --fail-on warning     in CI: fail on warnings too

exit codes:
  0  no finding at or above --fail-on (default: critical)
  1  a finding at or above --fail-on, or --function NAME has no invocations in the window
  2  the command could not run (bad options, unreachable collector, unreadable store)

{ENVIRONMENT}
"""

TUI_EPILOG = f"""\
examples:
  lambdascope tui                                  the last hour, live
  lambdascope tui --since 6h --function checkout
  lambdascope tui --from 2026-12-05T10:00 --to 2026-12-05T11:00   a fixed range, not live
  lambdascope tui --store chdb://$HOME/.lambdascope/store         no collector running

{ENVIRONMENT}
"""

QUERY_EPILOG = f"""\
The query runs read-only with limits on rows, bytes, time and memory, over the lambdascope
database's tables and views. The window options bind {{since:DateTime64(3)}} and
{{until:DateTime64(3)}}, --function binds {{function_name:String}}, --param binds any other
{{NAME:Type}} placeholder; values are bound by the server, never pasted into the SQL.

formats (default: table on a terminal, tsv otherwise):
  table  aligned columns, NULL shown as NULL
  json   one array of objects; times in ISO 8601, NaN as null
  csv    RFC 4180 with a header row; NULL is an empty field
  tsv    ClickHouse's TabSeparatedWithNames: \\t \\n \\\\ escaped, NULL as \\N

examples:
  lambdascope query "SELECT function_name, count() FROM invocations GROUP BY function_name"
  lambdascope query --since 6h --format json \\
      "SELECT request_id, duration_ms FROM invocations
       WHERE start_time >= {{since:DateTime64(3)}} AND status = 'timeout'"
  lambdascope query --param fn=checkout --format csv \\
      "SELECT * FROM invocations WHERE function_name = {{fn:String}} LIMIT 100"

{ENVIRONMENT}
"""

REPORT_EPILOG = f"""\
Writes one self-contained HTML file (findings and charts) and prints its path. Progress goes
to stderr.

examples:
  lambdascope report                               the fleet, last hour
  lambdascope report --function checkout --since 24h -o checkout.html
  lambdascope report --from 2026-12-05 --to 2026-12-06

{ENVIRONMENT}
"""

ALERTS_EPILOG = f"""\
examples:
  lambdascope alerts check rules.yaml
  lambdascope alerts test rules.yaml --since 6h
  lambdascope alerts test rules.yaml --store chdb://$HOME/.lambdascope/store

alerts test exit codes:
  0  every rule was evaluated (whether or not it fired)
  1  some rules could not be evaluated (each is listed once with its reason)
  2  the rules file is invalid, or the store cannot be read

{ENVIRONMENT}
"""

EMULATOR_EPILOG = """\
The emulator reads its host, port and log folder from the [emulator] table of the TOML file
(see the emulator's README). invoke and logs read the same file, so they find it without
repeating the port: pass --config to each, or set LAMBDASCOPE_EMULATOR_CONFIG once.

examples:
  lambdascope emulator --config fleet.toml
  export LAMBDASCOPE_EMULATOR_CONFIG=fleet.toml
  lambdascope emulator & lambdascope invoke checkout --payload '{"x": 1}' --tail
  lambdascope logs checkout --follow
"""


def version() -> str:
    """The installed distribution's version, else the package's own."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("lambdascope")
    except PackageNotFoundError:
        import lambdascope

        return str(getattr(lambdascope, "__version__", "unknown"))


def _settings_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        metavar="FILE",
        help="analysis settings (TOML): reserved concurrency, account limit, prices",
    )


def _function_arg(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--function", default=None, metavar="NAME", help=what)


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="lambdascope",
        description="Observability and debugging for AWS Lambda.",
        formatter_class=_RAW,
        epilog=MAIN_EPILOG,
    )
    parser.add_argument(
        "--version", action="version", version=f"lambdascope {version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    _demo(sub)
    _collector(sub)
    _analyze(sub)
    _tui(sub)
    _query(sub)
    _report(sub)
    _alerts(sub)
    _layer(sub)
    _emulator(sub)
    return parser


def _demo(sub: _Sub) -> None:
    demo = sub.add_parser(
        "demo",
        help="run a sample fleet in the local Lambda emulator with the extension attached, "
        "collect into an embedded store, then open the TUI",
        description="Run a sample fleet in the local Lambda emulator with the extension "
        "attached, collect into an embedded store, then open the TUI on it.",
        formatter_class=_RAW,
        epilog="examples:\n  lambdascope demo\n  lambdascope demo --no-tui --duration 60s\n"
        "  lambdascope demo --store chdb://$HOME/demo-store      keep the data afterwards\n",
    )
    demo.add_argument("--no-tui", action="store_true", help="print the findings and exit")
    demo.add_argument(
        "--duration",
        type=parse_duration,
        default=timedelta(seconds=25),
        metavar="SPAN",
        help="how long to drive traffic: 90s, 2m (default: 25s)",
    )
    demo.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="store URL to keep the demo's data in (default: a temporary embedded store)",
    )


def _worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes") from None
    if not 0 <= count <= 64:
        raise argparse.ArgumentTypeError("give 0 to 64 worker processes")
    return count


def _collector(sub: _Sub) -> None:
    collector = sub.add_parser(
        "collector",
        help="run the collector (ingest and read API)",
        description="Receive telemetry from the extension, store it and serve the read API "
        "that analyze, tui, query and report use.",
        formatter_class=_RAW,
        epilog=COLLECTOR_EPILOG,
    )
    collector.add_argument(
        "--store",
        default=os.environ.get("LAMBDASCOPE_STORE_URL", DEFAULT_STORE_URL),
        metavar="URL",
        help="chdb:///path (embedded) or http(s)://user:pass@host:8123; a URL with a password "
        "belongs in LAMBDASCOPE_STORE_URL, not on the command line (default: %(default)s)",
    )
    collector.add_argument(
        "--read-store",
        default=os.environ.get("LAMBDASCOPE_READ_STORE_URL"),
        metavar="URL",
        help="ClickHouse server only: the same server as the read-only user the read API "
        "runs as (see below); default LAMBDASCOPE_READ_STORE_URL",
    )
    collector.add_argument(
        "--database", default="lambdascope", help="database to use (default: %(default)s)"
    )
    collector.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; beyond loopback both tokens are required "
        "(default: %(default)s)",
    )
    collector.add_argument(
        "--port",
        type=int,
        default=4320,
        help="port for ingest and the read API; 0 picks a free one (default: %(default)s)",
    )
    collector.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="file holding the ingest token (else LAMBDASCOPE_TOKEN)",
    )
    collector.add_argument(
        "--token",
        metavar="TOKEN",
        help="the ingest token itself (visible in the process list: avoid)",
    )
    collector.add_argument(
        "--read-token-file",
        type=Path,
        metavar="FILE",
        help="file holding the read API token (else LAMBDASCOPE_READ_TOKEN)",
    )
    collector.add_argument(
        "--read-token",
        metavar="TOKEN",
        help="the read token itself (visible in the process list: avoid)",
    )
    collector.add_argument(
        "--read-open",
        action="store_true",
        help="serve the read API without a token on a non-loopback address (only behind an "
        "authenticating proxy)",
    )
    collector.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="PEM certificate (chain): serve HTTPS"
    )
    collector.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM key of --tls-cert")
    collector.add_argument(
        "--ingest-workers",
        type=_worker_count,
        default=0,
        metavar="N",
        help="decode and normalise batches in N worker processes (one writer still owns the "
        "store); pays off with cores to spare beyond the store's own (default: 0, in the "
        "server's process)",
    )
    collector.add_argument(
        "--retention-days",
        type=int,
        default=30,
        metavar="DAYS",
        help="keep raw data this many days (default: %(default)s)",
    )
    collector.add_argument(
        "--rules",
        type=Path,
        default=None,
        metavar="FILE",
        help="alert rules file (YAML), reloaded when it changes (default: the built-in rules)",
    )
    collector.add_argument(
        "--alert-interval",
        type=parse_duration,
        default=timedelta(minutes=1),
        metavar="SPAN",
        help="how often alert rules are evaluated (default: 1m)",
    )
    collector.add_argument(
        "--cluster",
        default=None,
        metavar="NAME",
        help="create the schema ON CLUSTER NAME with Replicated tables (ClickHouse server only)",
    )
    collector.add_argument(
        "--sharded", action="store_true", help="with --cluster: Distributed tables over shards"
    )
    _settings_arg(collector)


def _analyze(sub: _Sub) -> None:
    from lambdascope.cli.analyze import DEFAULT_FAIL_ON, FAIL_ON, FORMATS

    analyze = sub.add_parser(
        "analyze",
        help="run the detectors over a window and print their findings",
        description="Run every detector over a time window and print what they found, with "
        "the request ids that prove it.",
        formatter_class=_RAW,
        epilog=ANALYZE_EPILOG,
    )
    _function_arg(analyze, "only this function")
    analyze.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default), json (one array of findings) or markdown",
    )
    analyze.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="the same as --format json",
    )
    analyze.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default=DEFAULT_FAIL_ON,
        help="exit 1 when a finding is at least this severe; none never does "
        "(default: %(default)s)",
    )
    _settings_arg(analyze)
    add_window_options(analyze)
    add_source_options(analyze)


def _tui(sub: _Sub) -> None:
    tui = sub.add_parser(
        "tui",
        help="open the terminal UI on a collector or a store",
        description="Open the terminal UI: the fleet, each function, each request and its "
        "logs, findings and alerts. Press t in the UI to change the window.",
        formatter_class=_RAW,
        epilog=TUI_EPILOG,
    )
    _function_arg(tui, "open on this function's screen")
    tui.add_argument(
        "--rules",
        type=Path,
        default=None,
        metavar="FILE",
        help="the alert rules the alerts screen lists (default: the built-in rules)",
    )
    tui.add_argument(
        "--export-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the UI's exports go (default: the current folder)",
    )
    _settings_arg(tui)
    add_window_options(tui)
    add_source_options(tui)


def _query(sub: _Sub) -> None:
    from lambdascope.cli.query import FORMATS

    query = sub.add_parser(
        "query",
        help="run one read-only SQL query",
        description="Run one read-only SQL query over the stored telemetry.",
        formatter_class=_RAW,
        epilog=QUERY_EPILOG,
    )
    query.add_argument("sql", metavar="SQL", help="one SELECT query")
    query.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="table, json, csv or tsv (default: table on a terminal, tsv otherwise)",
    )
    query.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind the {NAME:Type} placeholder (repeatable)",
    )
    _function_arg(query, "bind {function_name:String} to NAME")
    add_window_options(query)
    add_source_options(query)


def _report(sub: _Sub) -> None:
    report = sub.add_parser(
        "report",
        help="write an HTML report of a window (findings and charts)",
        description="Write an HTML report of a window: the findings and the fleet's charts.",
        formatter_class=_RAW,
        epilog=REPORT_EPILOG,
    )
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="the file to write (default: lambdascope-report-<function or fleet>-"
        "<YYYYmmdd-HHMM>.html here)",
    )
    _function_arg(report, "report on this function only")
    _settings_arg(report)
    add_window_options(report)
    add_source_options(report)


def _alerts(sub: _Sub) -> None:
    alerts = sub.add_parser(
        "alerts",
        help="validate or try out an alert rules file",
        description="Validate an alert rules file, or replay it over the recent past.",
        formatter_class=_RAW,
        epilog=ALERTS_EPILOG,
    )
    alerts_sub = alerts.add_subparsers(
        dest="alerts_command", required=True, metavar="ACTION", help="check or test"
    )
    check = alerts_sub.add_parser(
        "check",
        help="validate a rules file",
        description="Validate a rules file without reading any data: one line per problem.",
        formatter_class=_RAW,
        epilog="example:\n  lambdascope alerts check rules.yaml\n",
    )
    check.add_argument("rules", type=Path, metavar="RULES", help="the rules file (YAML)")
    test = alerts_sub.add_parser(
        "test",
        help="replay a rules file over a window and show what would have fired",
        description="Replay a rules file over a window as the collector would have evaluated "
        "it. Nothing is sent and nothing is written.",
        formatter_class=_RAW,
        epilog=ALERTS_EPILOG,
    )
    test.add_argument("rules", type=Path, metavar="RULES", help="the rules file (YAML)")
    _settings_arg(test)
    add_window_options(test)
    add_source_options(test)


def _layer(sub: _Sub) -> None:
    layer = sub.add_parser(
        "layer",
        help="build the Lambda layer (extension + tracing helper)",
        description="Build the Lambda layer: the extension, and the tracing helper with "
        "OpenTelemetry for Python functions.",
        formatter_class=_RAW,
        epilog="examples:\n  lambdascope layer build\n"
        "  lambdascope layer build --arch arm64 --output layer-arm64.zip\n",
    )
    layer_sub = layer.add_subparsers(
        dest="layer_command", required=True, metavar="ACTION", help="build"
    )
    build = layer_sub.add_parser(
        "build",
        help="write the layer zip",
        description="Write the layer zip, ready for aws lambda publish-layer-version.",
    )
    build.add_argument(
        "--arch",
        choices=("x86_64", "arm64"),
        default="x86_64",
        help="the functions' architecture (default: %(default)s)",
    )
    build.add_argument(
        "--output",
        type=Path,
        default=Path("lambdascope-layer.zip"),
        metavar="FILE",
        help="the zip to write (default: %(default)s)",
    )
    build.add_argument(
        "--no-python", action="store_true", help="leave out python/ (tracing helper, OpenTelemetry)"
    )


def _emulator(sub: _Sub) -> None:
    emulator = sub.add_parser(
        "emulator",
        help="serve functions from a config file in the local Lambda emulator",
        description="Serve the functions of a TOML file through a local Lambda Invoke API.",
        formatter_class=_RAW,
        epilog=EMULATOR_EPILOG,
    )
    config_help = "the emulator's TOML fleet file (default: $LAMBDASCOPE_EMULATOR_CONFIG)"
    emulator.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    emulator.add_argument(
        "--host", default=None, help="address to listen on (default: the file's, or 127.0.0.1)"
    )
    emulator.add_argument(
        "--port", type=int, default=None, help="port to listen on (default: the file's, or 9000)"
    )

    invoke = sub.add_parser(
        "invoke",
        help="invoke a function of a running emulator",
        description="Invoke a function of a running emulator and print its response.",
        formatter_class=_RAW,
        epilog=EMULATOR_EPILOG,
    )
    invoke.add_argument("name", metavar="NAME", help="the function to invoke")
    invoke.add_argument("--payload", default="{}", help="the event, as JSON (default: {})")
    invoke.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the emulator's TOML file: its [emulator] host and port give the URL "
        "(default: $LAMBDASCOPE_EMULATOR_CONFIG)",
    )
    invoke.add_argument(
        "--url",
        default=None,
        help="the emulator's Invoke API, overriding --config (default: the config file's "
        "host and port, else http://127.0.0.1:9000)",
    )
    invoke.add_argument("--tail", action="store_true", help="print the last 4 KB of its log")

    logs = sub.add_parser(
        "logs",
        help="read a function's CloudWatch-style log from the emulator",
        description="Print a function's log as the emulator wrote it (START, the function's "
        "lines, END, REPORT), from the log folder its config file names.",
        formatter_class=_RAW,
        epilog=EMULATOR_EPILOG,
    )
    logs.add_argument("name", metavar="NAME", help="the function")
    where = logs.add_mutually_exclusive_group()
    where.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the emulator's TOML file: its log_dir (default: $LAMBDASCOPE_EMULATOR_CONFIG)",
    )
    where.add_argument("--log-dir", type=Path, metavar="DIR", help="the emulator's log folder")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
