"""Command-line entry points the `lambdascope` CLI wires up:
`lambdascope emulator --config FILE` -> `serve()`, `lambdascope invoke NAME` -> `invoke()`.
Also runnable alone: `python -m lambdascope.emulator.cli --config FILE`."""

from __future__ import annotations

import argparse
import base64
import http.client
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO
from urllib.parse import quote, urlsplit

from lambdascope.emulator.config import (
    ConfigError,
    ConfigFileError,
    load_config,
    load_emulator_settings,
)
from lambdascope.emulator.emulator import Emulator
from lambdascope.emulator.memory_limit import MEMORY_LIMIT_MODES, MemoryLimitError
from lambdascope.emulator.metrics import MetricStreamConfig, MetricStreamError
from lambdascope.emulator.sandboxfs import ISOLATION_MODES, IsolationError

DEFAULT_PORT = 9000


def build_emulator(
    config_path: str | Path, host: str | None = None, port: int | None = None
) -> Emulator:
    """An Emulator (not started) from a config file; explicit host/port win over the file."""
    settings = load_emulator_settings(config_path)
    return Emulator(
        load_config(config_path),
        host=host or settings.get("host", "127.0.0.1"),
        port=port if port is not None else int(settings.get("port", DEFAULT_PORT)),
        keep_warm_s=float(settings.get("keep_warm_s", 300.0)),
        account_concurrency=int(settings.get("account_concurrency", 1000)),
        log_dir=Path(config_path).parent / settings["log_dir"] if "log_dir" in settings else None,
        metric_stream=metric_stream_config(settings, config_path),
        isolation=_isolation(settings, config_path),
        memory_limit=_memory_limit(settings, config_path),
    )


def _isolation(settings: dict[str, object], config_path: str | Path) -> str:
    mode = settings.get("isolation", "auto")
    if mode not in ISOLATION_MODES:
        raise ConfigFileError(
            f"{config_path}: [emulator] isolation {mode!r}: use one of {ISOLATION_MODES}"
        )
    return str(mode)


def _memory_limit(settings: dict[str, object], config_path: str | Path) -> str:
    mode = settings.get("memory_limit", "auto")
    if mode not in MEMORY_LIMIT_MODES:
        raise ConfigFileError(
            f"{config_path}: [emulator] memory_limit {mode!r}: use one of {MEMORY_LIMIT_MODES}"
        )
    return str(mode)


def metric_stream_config(
    settings: dict[str, object], config_path: str | Path
) -> MetricStreamConfig | None:
    """The `[emulator]` table's metric stream settings; None without `metric_stream_url`."""
    url = settings.get("metric_stream_url")
    extra = [k for k in settings if k.startswith("metric_") and k != "metric_stream_url"]
    if url is None:
        if extra:
            raise ConfigFileError(
                f"{config_path}: [emulator] sets {extra[0]} but no metric_stream_url: add "
                "metric_stream_url = 'http://127.0.0.1:4320/v1/firehose'"
            )
        return None
    if not isinstance(url, str):
        raise ConfigFileError(f"{config_path}: [emulator] metric_stream_url must be a string")
    key = settings.get("metric_stream_access_key")
    name = settings.get("metric_stream_name", "lambdascope-emulator")
    use_gzip = settings.get("metric_stream_gzip", False)
    if key is not None and not isinstance(key, str):
        raise ConfigFileError(f"{config_path}: [emulator] metric_stream_access_key: a string")
    if not isinstance(name, str) or not isinstance(use_gzip, bool):
        raise ConfigFileError(
            f"{config_path}: [emulator] metric_stream_name is a string, "
            "metric_stream_gzip true or false"
        )
    try:
        return MetricStreamConfig(
            url,
            access_key=key,
            period_s=settings.get("metric_period_s", 60.0),  # type: ignore[arg-type]
            retry_duration_s=settings.get("metric_stream_retry_s", 300.0),  # type: ignore[arg-type]
            gzip=use_gzip,
            stream_name=name,
        )
    except MetricStreamError as exc:
        raise ConfigFileError(f"{config_path}: [emulator] {exc}") from exc


def serve(
    config_path: str | Path,
    host: str | None = None,
    port: int | None = None,
    *,
    stop_event: threading.Event | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Serve the configured functions until SIGINT/SIGTERM (or `stop_event`); exit code."""
    try:
        emu = build_emulator(config_path, host, port)
    except (ConfigError, ConfigFileError, IsolationError, MemoryLimitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        emu.start()
    except OSError as exc:
        print(f"error: cannot listen on {emu.host}:{emu.port}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        names = ", ".join(emu.functions)
        print(f"Lambda emulator serving {names} at {emu.invoke_url}", file=out, flush=True)
        print(
            "  e.g. aws lambda invoke --endpoint-url "
            f"{emu.invoke_url} --function-name {next(iter(emu.functions))} out.json",
            file=out,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0


def invoke(
    url: str,
    name: str,
    payload: bytes = b"{}",
    *,
    invocation_type: str = "RequestResponse",
    log_type: str | None = None,
    timeout_s: float = 960.0,
) -> tuple[int, dict[str, str], bytes]:
    """Call a running emulator's Invoke API: (status, headers, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    headers = {"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"}
    if log_type:
        headers["X-Amz-Log-Type"] = log_type
    try:
        conn.request(
            "POST", f"/2015-03-31/functions/{quote(name, safe='')}/invocations", payload, headers
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lambdascope.emulator", description="Local Lambda emulator"
    )
    sub = parser.add_subparsers(dest="command")
    serve_cmd = sub.add_parser("serve", help="serve the functions of a config file")
    serve_cmd.add_argument("--config", required=True, type=Path)
    serve_cmd.add_argument("--host", default=None)
    serve_cmd.add_argument("--port", type=int, default=None)
    invoke_cmd = sub.add_parser("invoke", help="invoke a function of a running emulator")
    invoke_cmd.add_argument("name")
    invoke_cmd.add_argument("--payload", default="{}")
    invoke_cmd.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    invoke_cmd.add_argument("--tail", action="store_true", help="print the log tail")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.config, args.host, args.port)
    if args.command == "invoke":
        try:
            status, headers, body = invoke(
                args.url, args.name, args.payload.encode(), log_type="Tail" if args.tail else None
            )
        except OSError as exc:
            print(f"error: no emulator at {args.url}: {exc}", file=sys.stderr)
            return 1
        if args.tail and "X-Amz-Log-Result" in headers:
            print(base64.b64decode(headers["X-Amz-Log-Result"]).decode(), file=sys.stderr)
        print(body.decode("utf-8", errors="replace"))
        failed = status >= 300 or "X-Amz-Function-Error" in headers
        if status >= 300:
            print(f"error: HTTP {status} {headers.get('x-amzn-ErrorType', '')}", file=sys.stderr)
        return 1 if failed else 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
