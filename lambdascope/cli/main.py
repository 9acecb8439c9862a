"""The ``lambdascope`` command.

Each subcommand imports what it needs when it runs, so ``lambdascope --help`` and the light
commands start fast and never load the embedded ClickHouse engine they do not use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambdascope.query import QueryClient

DEFAULT_COLLECTOR_URL = "http://127.0.0.1:4320"
DEFAULT_STORE_URL = "chdb://" + str(Path("~/.lambdascope/store").expanduser())

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
  LAMBDASCOPE_TOKEN=... LAMBDASCOPE_READ_TOKEN=... lambdascope collector --host 0.0.0.0
  lambdascope collector --host 0.0.0.0 --token-file /run/secrets/ingest \\
      --read-token-file /run/secrets/read --tls-cert cert.pem --tls-key key.pem
"""


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``1h``, ``2d`` (a bare number is seconds)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        if value and value[-1] in units:
            return timedelta(seconds=float(value[:-1]) * units[value[-1]])
        return timedelta(seconds=float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number with s, m, h or d, e.g. 15m or 1h"
        ) from None


def _reader_args(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--collector",
        default=os.environ.get("LAMBDASCOPE_COLLECTOR_URL", DEFAULT_COLLECTOR_URL),
        help="base URL of a collector's read API (default: %(default)s)",
    )
    source.add_argument(
        "--store",
        metavar="URL",
        help="read a store directly instead: chdb:///path (an embedded store no collector "
        "is running on) or http(s)://host:8123",
    )
    parser.add_argument(
        "--read-token-file",
        type=Path,
        metavar="FILE",
        help="file holding the collector's read token (else LAMBDASCOPE_READ_TOKEN)",
    )
    parser.add_argument(
        "--read-token",
        help="the read token itself (visible in the process list: prefer the file or variable)",
    )


def _settings_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        metavar="FILE",
        help="analysis settings (TOML): reserved concurrency, account limit, prices",
    )


def _apply_settings(args: argparse.Namespace, command: str) -> bool:
    """Load ``--settings`` into the detectors; False (after saying why) when it is unusable."""
    if args.settings is None:
        return True
    from lambdascope.analyzers.settings import SettingsError, apply_settings, load_settings

    try:
        apply_settings(load_settings(args.settings))
    except SettingsError as exc:
        print(f"lambdascope {command}: {exc}", file=sys.stderr)
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lambdascope",
        description="Observability and debugging for AWS Lambda.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a sample fleet in the local Lambda emulator with the extension attached, "
        "collect into the embedded store, then open the TUI",
    )
    demo.add_argument("--no-tui", action="store_true", help="print the findings and exit")
    demo.add_argument(
        "--duration",
        type=parse_duration,
        default=timedelta(seconds=25),
        help="how long to drive traffic (default: 25s)",
    )
    demo.add_argument(
        "--store",
        default=None,
        help="store URL to keep the demo's data (default: a temporary embedded store)",
    )

    collector = sub.add_parser(
        "collector",
        help="run the collector (ingest and read API)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COLLECTOR_EPILOG,
    )
    collector.add_argument(
        "--store",
        default=os.environ.get("LAMBDASCOPE_STORE_URL", DEFAULT_STORE_URL),
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
    collector.add_argument("--database", default="lambdascope", help="(default: %(default)s)")
    collector.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; beyond loopback both tokens are required "
        "(default: %(default)s)",
    )
    collector.add_argument("--port", type=int, default=4320, help="(default: %(default)s)")
    collector.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="file holding the ingest token (else LAMBDASCOPE_TOKEN)",
    )
    collector.add_argument(
        "--token", help="the ingest token itself (visible in the process list: avoid)"
    )
    collector.add_argument(
        "--read-token-file",
        type=Path,
        metavar="FILE",
        help="file holding the read API token (else LAMBDASCOPE_READ_TOKEN)",
    )
    collector.add_argument(
        "--read-token", help="the read token itself (visible in the process list: avoid)"
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
        "--retention-days", type=int, default=30, help="keep raw data this many days"
    )
    collector.add_argument(
        "--rules", type=Path, default=None, help="alert rules file (YAML), hot-reloaded"
    )
    collector.add_argument(
        "--alert-interval",
        type=parse_duration,
        default=timedelta(minutes=1),
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

    analyze = sub.add_parser("analyze", help="run the detectors and print their findings")
    _reader_args(analyze)
    analyze.add_argument("--since", type=parse_duration, default=timedelta(hours=1))
    analyze.add_argument("--function", default=None, help="only this function")
    analyze.add_argument("--json", action="store_true", help="one JSON object per finding")
    _settings_arg(analyze)

    tui = sub.add_parser("tui", help="open the terminal UI on a collector or a store")
    _reader_args(tui)
    tui.add_argument(
        "--since",
        type=parse_duration,
        default=timedelta(hours=1),
        help="the time window, ending now (default: 1h; t or :since changes it in the UI)",
    )
    tui.add_argument("--function", default=None, metavar="NAME", help="open this function")
    tui.add_argument(
        "--rules",
        type=Path,
        default=None,
        metavar="FILE",
        help="the alert rules the alerts screen lists (default: the built-in rules)",
    )
    _settings_arg(tui)

    query = sub.add_parser("query", help="run a read-only SQL query through the read API")
    _reader_args(query)
    query.add_argument("sql")
    query.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind a {NAME:Type} placeholder (repeatable)",
    )
    layer = sub.add_parser("layer", help="build the Lambda layer (extension + tracing helper)")
    layer_sub = layer.add_subparsers(dest="layer_command", required=True, metavar="ACTION")
    layer_build = layer_sub.add_parser("build", help="write the layer zip")
    layer_build.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64")
    layer_build.add_argument("--output", type=Path, default=Path("lambdascope-layer.zip"))
    layer_build.add_argument(
        "--no-python", action="store_true", help="leave out python/ (tracing helper, OpenTelemetry)"
    )

    alerts = sub.add_parser("alerts", help="validate or try out an alert rules file")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    alerts_check = alerts_sub.add_parser("check", help="validate a rules file")
    alerts_check.add_argument("rules", type=Path)
    alerts_test = alerts_sub.add_parser(
        "test", help="evaluate a rules file against the store and show what would fire"
    )
    alerts_test.add_argument("rules", type=Path)
    _reader_args(alerts_test)
    alerts_test.add_argument("--since", type=parse_duration, default=timedelta(hours=1))
    _settings_arg(alerts_test)

    emulator = sub.add_parser(
        "emulator", help="serve functions from a config file in the local Lambda emulator"
    )
    emulator.add_argument("--config", required=True, type=Path, help="TOML fleet file")
    emulator.add_argument("--host", default=None)
    emulator.add_argument("--port", type=int, default=None)

    invoke = sub.add_parser("invoke", help="invoke a function of a running emulator")
    invoke.add_argument("name")
    invoke.add_argument("--payload", default="{}", help="the event, as JSON")
    invoke.add_argument("--url", default="http://127.0.0.1:9000", help="the emulator's Invoke API")
    invoke.add_argument("--tail", action="store_true", help="print the last 4 KB of its log")

    logs = sub.add_parser("logs", help="read a function's CloudWatch-style log from the emulator")
    logs.add_argument("name")
    where = logs.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the emulator's TOML file (its log_dir)")
    where.add_argument("--log-dir", type=Path, help="the emulator's log folder")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {
        "demo": _cmd_demo,
        "collector": _cmd_collector,
        "analyze": _cmd_analyze,
        "tui": _cmd_tui,
        "query": _cmd_query,
        "emulator": _cmd_emulator,
        "invoke": _cmd_invoke,
        "logs": _cmd_logs,
        "alerts": _cmd_alerts,
        "layer": _cmd_layer,
    }[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


def _cmd_demo(args: argparse.Namespace) -> int:
    from lambdascope.cli.demo import run_demo

    return run_demo(duration=args.duration, open_tui=not args.no_tui, store_url=args.store)


def _cmd_collector(args: argparse.Namespace) -> int:
    from lambdascope.cli.collector import run_collector
    from lambdascope.collector.cluster import ClusterError, cluster_from_args
    from lambdascope.collector.httpserver import TlsFiles

    try:
        cluster = cluster_from_args(args.cluster, args.sharded)
    except ClusterError as exc:
        print(f"lambdascope collector: {exc}", file=sys.stderr)
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("lambdascope collector: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    from lambdascope.collector.tokens import INGEST_TOKEN_ENV, READ_TOKEN_ENV

    ingest_token = _token(args, "token", INGEST_TOKEN_ENV)
    read_token = _token(args, "read_token", READ_TOKEN_ENV)
    # The alert engine runs in this process, so the detectors it runs see these settings.
    if not _apply_settings(args, "collector"):
        return 2

    run_collector(
        store_url=args.store,
        host=args.host,
        port=args.port,
        database=args.database,
        ingest_token=ingest_token,
        read_token=read_token,
        retention_days=args.retention_days,
        rules_path=args.rules,
        alert_interval=args.alert_interval,
        cluster=cluster,
        read_open=args.read_open,
        tls=TlsFiles(args.tls_cert, args.tls_key) if args.tls_cert else None,
        read_store_url=args.read_store,
    )
    return 0


def _token(args: argparse.Namespace, name: str, env_name: str) -> str | None:
    """The token of ``--NAME-file``, ``--NAME`` or ``env_name``, warnings printed; exits 2
    (naming the file and the fix) when it cannot be used."""
    from lambdascope.collector.tokens import TokenError, resolve_token

    flag = "--" + name.replace("_", "-")
    try:
        token, warnings = resolve_token(
            flag_value=getattr(args, name),
            file=getattr(args, f"{name}_file"),
            env=os.environ,
            env_name=env_name,
            flag=flag,
        )
    except TokenError as exc:
        print(f"lambdascope {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for warning in warnings:
        print(f"lambdascope {args.command}: {warning}", file=sys.stderr)
    return token


def _reader(args: argparse.Namespace) -> QueryClient:
    """The collector's read API, or with ``--store`` the store itself, opened in this process
    (its reads go through the same sandbox as the collector's read API)."""
    from lambdascope.collector.tokens import READ_TOKEN_ENV
    from lambdascope.query import CollectorQueryClient

    if getattr(args, "store", None):
        return _open_store_reader(args)
    return CollectorQueryClient(args.collector, token=_token(args, "read_token", READ_TOKEN_ENV))


def _open_store_reader(args: argparse.Namespace) -> QueryClient:
    import atexit

    from lambdascope.collector.schema import SchemaError
    from lambdascope.collector.store import Store, StoreError

    try:
        store = Store.open(args.store)
    except (StoreError, SchemaError) as exc:
        print(f"lambdascope {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    atexit.register(store.close)
    return store.reader()


def _cmd_analyze(args: argparse.Namespace) -> int:
    from lambdascope.analyzers import run_detectors
    from lambdascope.query import QueryError

    if not _apply_settings(args, "analyze"):
        return 2
    try:
        findings = run_detectors(_reader(args), since=args.since, function_name=args.function)
    except QueryError as exc:
        print(f"lambdascope analyze: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for finding in findings:
            print(json.dumps(finding.to_dict()))
    else:
        from lambdascope.cli.render import print_findings

        print_findings(findings)
    return 0


def _cmd_tui(args: argparse.Namespace) -> int:
    from lambdascope.tui.app import LambdascopeApp

    if not _apply_settings(args, "tui"):
        return 2
    LambdascopeApp(
        _reader(args), since=args.since, function_name=args.function, rules_path=args.rules
    ).run()
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from lambdascope.query import QueryError, jsonable

    parameters = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"lambdascope query: --param {item!r} must look like NAME=VALUE", file=sys.stderr)
            return 2
        parameters[name] = value
    try:
        result = _reader(args).query(args.sql, parameters)
    except QueryError as exc:
        print(f"lambdascope query: {exc}", file=sys.stderr)
        return 2
    print("\t".join(result.columns))
    for row in result.rows:
        print("\t".join(str(jsonable(v)) for v in row))
    return 0


def _cmd_alerts(args: argparse.Namespace) -> int:
    from lambdascope.cli import alerts as alerts_cli

    if args.alerts_command == "check":
        return alerts_cli.check(args.rules)
    if not _apply_settings(args, "alerts test"):
        return 2
    return alerts_cli.test(args.rules, _reader(args), args.since, collector_url=args.collector)


def _cmd_layer(args: argparse.Namespace) -> int:
    from lambdascope.cli.layer import build

    return build(args.arch, args.output, python_packages=not args.no_python)


def _cmd_emulator(args: argparse.Namespace) -> int:
    from lambdascope.emulator.cli import serve

    return serve(args.config, args.host, args.port)


def _cmd_invoke(args: argparse.Namespace) -> int:
    from lambdascope.emulator.cli import main as emulator_main

    argv = ["invoke", args.name, "--payload", args.payload, "--url", args.url]
    return emulator_main(argv + (["--tail"] if args.tail else []))


def _cmd_logs(args: argparse.Namespace) -> int:
    from lambdascope.cli.logs import follow_function_log, print_function_log, resolve_log_dir

    try:
        log_dir = resolve_log_dir(config=args.config, log_dir=args.log_dir)
    except ValueError as exc:
        print(f"lambdascope logs: {exc}", file=sys.stderr)
        return 2
    if args.follow:
        return follow_function_log(log_dir, args.name)
    return print_function_log(log_dir, args.name)


if __name__ == "__main__":
    sys.exit(main())
