"""The ``lambdascope`` command.

Each subcommand imports what it needs when it runs, so ``lambdascope --help`` and the light
commands start fast and never load the embedded ClickHouse engine they do not use.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from lambdascope.cli.options import UsageError, parse_duration
from lambdascope.cli.parser import build_parser

__all__ = ["build_parser", "main", "parse_duration"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "demo": _cmd_demo,
        "collector": _cmd_collector,
        "analyze": _cmd_analyze,
        "tui": _cmd_tui,
        "query": _cmd_query,
        "report": _cmd_report,
        "emulator": _cmd_emulator,
        "invoke": _cmd_invoke,
        "logs": _cmd_logs,
        "alerts": _cmd_alerts,
        "layer": _cmd_layer,
    }
    try:
        return handlers[args.command](args)
    except UsageError as exc:
        name = args.command + (" test" if args.command == "alerts" else "")
        print(f"lambdascope {name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do, and keep Python
        # from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


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
        ingest_workers=args.ingest_workers,
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


def _cmd_analyze(args: argparse.Namespace) -> int:
    from lambdascope.cli import analyze

    if not _apply_settings(args, "analyze"):
        return 2
    return analyze.run(args)


def _cmd_tui(args: argparse.Namespace) -> int:
    from lambdascope.cli.options import reader_from_args, window_from_args
    from lambdascope.tui.app import LambdascopeApp
    from lambdascope.tui.timewindow import TimeWindow, TimeWindowError

    if not _apply_settings(args, "tui"):
        return 2
    try:
        if args.from_ is None:
            # A span moves with the clock: the UI stays live.
            window = TimeWindow.last(window_from_args(args).end - window_from_args(args).start)
        else:
            fixed = window_from_args(args)
            window = TimeWindow.between(fixed.start, fixed.end)
    except TimeWindowError as exc:
        raise UsageError(str(exc)) from None
    LambdascopeApp(
        reader_from_args(args),
        window=window,
        function_name=args.function,
        rules_path=args.rules,
        export_dir=args.export_dir,
    ).run()
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from lambdascope.cli import query

    return query.run(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from lambdascope.cli import report

    if not _apply_settings(args, "report"):
        return 2
    return report.run(args)


def _cmd_alerts(args: argparse.Namespace) -> int:
    from lambdascope.cli import alerts as alerts_cli
    from lambdascope.cli.options import (
        reader_from_args,
        source_from_args,
        window_from_args,
    )

    if args.alerts_command == "check":
        return alerts_cli.check(args.rules)
    if not _apply_settings(args, "alerts test"):
        return 2
    window = window_from_args(args)
    source = source_from_args(args)
    return alerts_cli.test(
        args.rules,
        reader_from_args(args),
        window.end - window.start,
        now=window.end,
        collector_url=source.url if source.kind == "collector" else None,
    )


def _cmd_layer(args: argparse.Namespace) -> int:
    from lambdascope.cli.layer import build

    return build(args.arch, args.output, python_packages=not args.no_python)


def _cmd_emulator(args: argparse.Namespace) -> int:
    from lambdascope.cli.emulator_cmds import run_emulator

    return run_emulator(args)


def _cmd_invoke(args: argparse.Namespace) -> int:
    from lambdascope.cli.emulator_cmds import run_invoke

    return run_invoke(args)


def _cmd_logs(args: argparse.Namespace) -> int:
    from lambdascope.cli.emulator_cmds import run_logs

    return run_logs(args)


if __name__ == "__main__":
    sys.exit(main())
