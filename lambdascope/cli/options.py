"""The options every reading command shares: the time window and where the data comes from.

One grammar everywhere: ``--since 15m`` (a window ending now) or ``--from``/``--to`` (a fixed
range in UTC), and ``--store URL`` or ``--collector URL``. The parsing functions are pure so
they are tested without a store; nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from lambdascope.analyzers.window import Window
    from lambdascope.query import QueryClient

__all__ = [
    "COLLECTOR_URL_ENV",
    "DEFAULT_COLLECTOR_URL",
    "DEFAULT_SINCE",
    "SINCE_FORMS",
    "STORE_URL_ENV",
    "WHEN_FORMS",
    "Source",
    "UsageError",
    "add_source_options",
    "add_window_options",
    "parse_duration",
    "parse_instant",
    "parse_since",
    "reader_from_args",
    "source_from_args",
    "window_from_args",
]

DEFAULT_COLLECTOR_URL = "http://127.0.0.1:4320"
COLLECTOR_URL_ENV = "LAMBDASCOPE_COLLECTOR_URL"
STORE_URL_ENV = "LAMBDASCOPE_STORE_URL"
DEFAULT_SINCE = timedelta(hours=1)

SINCE_FORMS = "a positive number with s, m, h or d, such as 90s, 15m, 6h or 7d"
WHEN_FORMS = (
    "an ISO 8601 date or time in UTC unless it says otherwise, such as 2026-12-05, "
    "2026-12-05T10:00 or 2026-12-05T10:00:00Z"
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
# Far beyond any retention, and well inside what datetime arithmetic can hold.
_MAX_SPAN = timedelta(days=3650)


class UsageError(Exception):
    """A command line that cannot run; ``main`` prints the message on one line and exits 2."""


class CliParser(argparse.ArgumentParser):
    """Reports a usage error on one line (what was wrong and where the help is) instead of
    argparse's usage block, so the reason is the first thing a user reads."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parse_since(text: str) -> timedelta:
    """``90s``, ``15m``, ``6h``, ``7d``: a window's length; raises ArgumentTypeError otherwise."""
    match = _SPAN.match(text.strip().lower())
    span = timedelta(0)
    if match:
        span = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if not match or span <= timedelta(0) or span > _MAX_SPAN:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use {SINCE_FORMS}")
    return span


def parse_duration(text: str) -> timedelta:
    """An interval or a run length: like :func:`parse_since`, also bare seconds (``90``)."""
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value) and 0 < float(value) <= _MAX_SPAN.total_seconds():
        return timedelta(seconds=float(value))
    return parse_since(value)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date or time as a UTC datetime; a time without an offset is UTC."""
    value = text.strip()
    try:
        # Python 3.11 reads "Z", offsets, a space or "T", and date-only forms (midnight).
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: use {WHEN_FORMS}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def add_window_options(parser: argparse.ArgumentParser, *, default: str = "1h") -> None:
    """``--since`` or ``--from``/``--to``."""
    when = parser.add_argument_group(
        "time window",
        "--since SPAN (the span ending now) or --from/--to (a fixed range; times are UTC\n"
        f"unless they carry an offset, a date alone is midnight). Default: the last {default}.",
    )
    exclusive = when.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--since",
        type=parse_since,
        default=None,
        metavar="SPAN",
        help=f"the window ending now: 90s, 15m, 6h, 7d (default: {default})",
    )
    exclusive.add_argument(
        "--from",
        dest="from_",
        type=parse_instant,
        default=None,
        metavar="TIME",
        help="start of a fixed window: 2026-12-05, 2026-12-05T10:00, 2026-12-05T10:00:00Z",
    )
    when.add_argument(
        "--to",
        type=parse_instant,
        default=None,
        metavar="TIME",
        help="end of the --from window (default: now)",
    )
    parser.set_defaults(window_default=parse_since(default))


def window_from_args(args: argparse.Namespace, now: datetime | None = None) -> Window:
    """The window the options name; raises :class:`UsageError` for an empty or inverted one."""
    from lambdascope.analyzers.window import Window

    now = now or datetime.now(UTC)
    if args.to is not None and args.from_ is None:
        raise UsageError(
            "--to needs --from: give both for a fixed range, or --since SPAN for a window "
            "ending now"
        )
    if args.from_ is None:
        return Window.ending(now, args.since or args.window_default)
    end = args.to or now
    if end <= args.from_:
        raise UsageError(
            f"the window is empty: --from {_iso(args.from_)} is not before "
            f"{'--to ' if args.to else 'now, '}{_iso(end)}"
        )
    return Window(start=args.from_, end=end)


def window_label(window: Window, args: argparse.Namespace) -> str:
    """``the last 1h`` or ``2026-12-05 10:00 to 11:00 UTC``: the window as the user gave it."""
    if args.from_ is None:
        return f"the last {span_text(window.end - window.start)}"
    return f"{_iso(window.start)} to {_iso(window.end)}"


def span_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SOURCE_HELP = (
    "Read through a collector's read API (--collector URL) or open a store directly\n"
    "(--store URL). Without either: $LAMBDASCOPE_COLLECTOR_URL, else $LAMBDASCOPE_STORE_URL,\n"
    "else http://127.0.0.1:4320."
)


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """``--store`` or ``--collector`` (``--url``, its old name, still works), and the token."""
    source = parser.add_argument_group("data source", SOURCE_HELP)
    exclusive = source.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--collector",
        default=None,
        metavar="URL",
        help="a collector's read API, e.g. http://127.0.0.1:4320 (env LAMBDASCOPE_COLLECTOR_URL)",
    )
    exclusive.add_argument("--url", dest="collector", default=None, help=argparse.SUPPRESS)
    exclusive.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="read a store directly through the same read limits: chdb:///path (an embedded "
        "store no collector has open) or http(s)://host:8123 (env LAMBDASCOPE_STORE_URL)",
    )
    source.add_argument(
        "--read-token-file",
        type=Path,
        metavar="FILE",
        help="file holding the collector's read token (else env LAMBDASCOPE_READ_TOKEN)",
    )
    source.add_argument(
        "--read-token",
        metavar="TOKEN",
        help="the read token itself (every user of the machine can see a command line: "
        "prefer the file or the variable)",
    )


@dataclass(frozen=True)
class Source:
    """Where a command reads: ``kind`` is ``collector`` or ``store``."""

    kind: str
    url: str


def source_from_args(
    args: argparse.Namespace, environ: os._Environ[str] | dict[str, str] | None = None
) -> Source:
    """Flags first, then ``LAMBDASCOPE_COLLECTOR_URL``, then ``LAMBDASCOPE_STORE_URL``."""
    env = os.environ if environ is None else environ
    if args.store:
        return Source("store", args.store)
    if args.collector:
        return Source("collector", args.collector)
    if env.get(COLLECTOR_URL_ENV):
        return Source("collector", env[COLLECTOR_URL_ENV])
    if env.get(STORE_URL_ENV):
        return Source("store", env[STORE_URL_ENV])
    return Source("collector", DEFAULT_COLLECTOR_URL)


def read_token(args: argparse.Namespace) -> str | None:
    """The read token of ``--read-token-file``, ``--read-token`` or the environment; warnings
    printed; raises UsageError naming the file and the fix when it cannot be used."""
    from lambdascope.collector.tokens import READ_TOKEN_ENV, TokenError, resolve_token

    try:
        token, warnings = resolve_token(
            flag_value=args.read_token,
            file=args.read_token_file,
            env=os.environ,
            env_name=READ_TOKEN_ENV,
            flag="--read-token",
        )
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    for warning in warnings:
        print(f"lambdascope {args.command}: {warning}", file=sys.stderr)
    return token


def reader_from_args(args: argparse.Namespace) -> QueryClient:
    """The collector's read API, or the store itself opened in this process (its reads go
    through the same read limits as the collector's read API)."""
    source = source_from_args(args)
    if source.kind == "store":
        return _open_store_reader(source.url)
    from lambdascope.query import CollectorQueryClient

    return CollectorQueryClient(source.url, token=read_token(args))


def _open_store_reader(url: str) -> QueryClient:
    import atexit

    from lambdascope.cli.storelock import StoreInUse, check_store_free
    from lambdascope.collector.schema import SchemaError
    from lambdascope.collector.store import Store, StoreError

    try:
        # Before chDB tries: its own refusal is a raw engine error printed by the engine itself.
        check_store_free(url)
        store = Store.open(url)
    except StoreInUse as exc:
        raise UsageError(str(exc)) from None
    except (StoreError, SchemaError) as exc:
        raise UsageError(str(exc)) from None
    atexit.register(store.close)
    return store.reader()
