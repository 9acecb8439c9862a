"""``lambdascope emulator``, ``invoke`` and ``logs``: one config file tells them all where the
emulator listens and where it writes logs, so they agree without repeating a port."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["EMULATOR_CONFIG_ENV", "emulator_url", "run_emulator", "run_invoke", "run_logs"]

EMULATOR_CONFIG_ENV = "LAMBDASCOPE_EMULATOR_CONFIG"
DEFAULT_EMULATOR_URL = "http://127.0.0.1:9000"


def default_config() -> Path | None:
    value = os.environ.get(EMULATOR_CONFIG_ENV)
    return Path(value) if value else None


def emulator_url(config: Path | None) -> str:
    """The Invoke API the emulator serves with ``config``: its ``[emulator]`` host and port."""
    if config is None:
        return DEFAULT_EMULATOR_URL
    from lambdascope.emulator.cli import DEFAULT_PORT
    from lambdascope.emulator.config import load_emulator_settings

    settings = load_emulator_settings(config)
    host = str(settings.get("host", "127.0.0.1"))
    # A wildcard address is where it listens, not where to connect.
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{int(settings.get('port', DEFAULT_PORT))}"


def _config_error(command: str, exc: Exception) -> int:
    print(f"lambdascope {command}: {exc}", file=sys.stderr)
    return 2


def run_emulator(args: argparse.Namespace) -> int:
    from lambdascope.emulator.cli import serve

    config = args.config or default_config()
    if config is None:
        print(
            f"lambdascope emulator: which functions? Pass --config FILE (a TOML fleet file) or "
            f"set {EMULATOR_CONFIG_ENV}",
            file=sys.stderr,
        )
        return 2
    return serve(config, args.host, args.port)


def run_invoke(args: argparse.Namespace) -> int:
    from lambdascope.emulator.cli import main as emulator_main
    from lambdascope.emulator.config import ConfigError, ConfigFileError

    url = args.url
    if url is None:
        try:
            url = emulator_url(args.config or default_config())
        except (ConfigError, ConfigFileError, ValueError) as exc:
            return _config_error("invoke", exc)
    argv = ["invoke", args.name, "--payload", args.payload, "--url", url]
    return emulator_main(argv + (["--tail"] if args.tail else []))


def run_logs(args: argparse.Namespace) -> int:
    from lambdascope.cli.logs import follow_function_log, print_function_log, resolve_log_dir

    config = args.config or (None if args.log_dir else default_config())
    if config is None and args.log_dir is None:
        print(
            "lambdascope logs: where are the logs? Pass --config FILE (the emulator's TOML "
            f"file), --log-dir DIR, or set {EMULATOR_CONFIG_ENV}",
            file=sys.stderr,
        )
        return 2
    try:
        log_dir = resolve_log_dir(config=config, log_dir=args.log_dir)
    except ValueError as exc:
        return _config_error("logs", exc)
    if args.follow:
        return follow_function_log(log_dir, args.name)
    return print_function_log(log_dir, args.name)
