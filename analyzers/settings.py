"""The analysis settings file: what CloudWatch does not publish, in TOML.

Reserved concurrency, the account's concurrency limit and prices are configuration, not
telemetry. ``lambdascope analyze``, ``lambdascope alerts test`` and ``lambdascope collector``
(its alert engine) read them from ``--settings FILE``::

    [concurrency]
    account_limit = 3000            # the account's concurrent executions (AWS default 1,000)

    [concurrency.reserved]          # function name -> reserved concurrency
    checkout = 100
    "report-export" = 10

    [prices]                        # overrides of analyzers.cost.PriceTable, USD
    request_usd_per_million = 0.20
    gb_second_usd = { x86_64 = 0.0000166667, arm64 = 0.0000133334 }

    [prices.regions.eu-central-1]   # per-region overrides
    gb_second_usd = { x86_64 = 0.0000180000 }

    [prices.ephemeral_storage_mb]   # function name -> configured /tmp size
    video-encode = 10240

    [prices.provisioned_concurrency]  # function name -> provisioned environments
    checkout = 5

    [extension]                     # what the lambdascope extension may cost a function
    startup_ms_p95 = 50             # start-up, p95 over environments
    post_runtime_ms_p95 = 5         # time after the function's code finished, p95 per invocation
    peak_rss_mb = 40                # peak resident memory of one environment's extension

    [completeness]
    silent_after_minutes = 15       # no batch and no final flush for this long: went silent

    [memory]
    warn_at_percent = 95            # Max Memory Used at this share of the size: high memory

Every table and key is optional; a missing one keeps the default. A bad file raises
:class:`SettingsError` naming the file, the key and its line (``file:line: key: problem``).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from lambdascope.analyzers import completeness, cost, extension_overhead, memory, throttles
from lambdascope.analyzers.cost import PriceTable, PriceTableError
from lambdascope.analyzers.extension_overhead import ExtensionBudget
from lambdascope.analyzers.throttles import ConcurrencyLimits

__all__ = ["Settings", "SettingsError", "apply_settings", "load_settings", "parse_settings"]

_TOP = ("concurrency", "prices", "extension", "completeness", "memory")
_CONCURRENCY = ("account_limit", "reserved")
_EXTENSION = ("startup_ms_p95", "post_runtime_ms_p95", "peak_rss_mb")
_COMPLETENESS = ("silent_after_minutes",)
_MEMORY = ("warn_at_percent",)


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the file, the line and the key."""


@dataclass(frozen=True)
class Settings:
    limits: ConcurrencyLimits = field(default_factory=ConcurrencyLimits)
    prices: PriceTable = field(default_factory=PriceTable)
    extension_budget: ExtensionBudget = field(default_factory=ExtensionBudget)
    silent_after: timedelta = completeness.SILENT_AFTER
    memory_warn_at_share: float = memory.DEFAULT_HIGH_SHARE


def load_settings(path: str | Path) -> Settings:
    """Read and check a settings file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the settings file: {exc.strerror}") from None
    return parse_settings(text, str(path))


def apply_settings(settings: Settings) -> None:
    """Make the detectors use these limits, prices, budgets and thresholds (process-wide)."""
    throttles.configure(settings.limits)
    cost.configure(settings.prices)
    extension_overhead.configure(settings.extension_budget)
    completeness.configure(settings.silent_after)
    memory.configure(settings.memory_warn_at_share)


def parse_settings(text: str, source: str = "settings") -> Settings:
    """Pure: the settings in ``text`` (TOML); ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)" or "(at end of document)": the
        # latter is the last line that says anything.
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        line = found[1] if found else (lines[-1] if lines else None)
        where = f"{source}:{line}" if line else source
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        raise SettingsError(f"{where}: not valid TOML: {message}") from None

    def fail(key: Sequence[str], problem: str) -> SettingsError:
        line = locate(text, key)
        where = f"{source}:{line}" if line else source
        return SettingsError(f"{where}: {'.'.join(key)}: {problem}")

    for key in data:
        if key not in _TOP:
            raise fail([key], f"unknown table; use {' or '.join(_TOP)}")
    limits = _limits(data.get("concurrency", {}), fail)
    prices_data = data.get("prices", {})
    if not isinstance(prices_data, Mapping):
        raise fail(["prices"], "must be a table of price overrides")
    try:
        prices = PriceTable.from_dict(prices_data, "prices")
    except PriceTableError as exc:
        problem = str(exc).split(": ", 2)[-1]
        raise fail(["prices", *exc.key], problem) from None
    return Settings(
        limits=limits,
        prices=prices,
        extension_budget=_extension_budget(data.get("extension", {}), fail),
        silent_after=_silent_after(data.get("completeness", {}), fail),
        memory_warn_at_share=_memory_warn_at(data.get("memory", {}), fail),
    )


def _limits(data: Any, fail: Any) -> ConcurrencyLimits:
    if not isinstance(data, Mapping):
        raise fail(["concurrency"], "must be a table with account_limit and reserved")
    for key in data:
        if key not in _CONCURRENCY:
            raise fail(["concurrency", key], f"unknown key; use {' or '.join(_CONCURRENCY)}")
    account = data.get("account_limit", ConcurrencyLimits().account_concurrency)
    if isinstance(account, bool) or not isinstance(account, int) or account <= 0:
        raise fail(
            ["concurrency", "account_limit"],
            f"must be a positive whole number of executions, got {account!r}",
        )
    reserved = data.get("reserved", {})
    if not isinstance(reserved, Mapping):
        raise fail(["concurrency", "reserved"], "must be a table of function name = executions")
    for name, value in reserved.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(
                ["concurrency", "reserved", name],
                f"must be a whole number of executions (0 or more), got {value!r}",
            )
    return ConcurrencyLimits(account_concurrency=account, reserved=dict(reserved))


def _positive_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


def _extension_budget(data: Any, fail: Any) -> ExtensionBudget:
    if not isinstance(data, Mapping):
        raise fail(["extension"], f"must be a table with {', '.join(_EXTENSION)}")
    for key, value in data.items():
        if key not in _EXTENSION:
            raise fail(["extension", key], f"unknown key; use {', '.join(_EXTENSION)}")
        if not _positive_number(value):
            unit = "MB" if key == "peak_rss_mb" else "ms"
            raise fail(["extension", key], f"must be a positive number of {unit}, got {value!r}")
    return ExtensionBudget(**{key: float(value) for key, value in data.items()})


def _silent_after(data: Any, fail: Any) -> timedelta:
    if not isinstance(data, Mapping):
        raise fail(["completeness"], "must be a table with silent_after_minutes")
    for key in data:
        if key not in _COMPLETENESS:
            raise fail(["completeness", key], f"unknown key; use {', '.join(_COMPLETENESS)}")
    minutes = data.get("silent_after_minutes", completeness.SILENT_AFTER / timedelta(minutes=1))
    if not _positive_number(minutes):
        raise fail(
            ["completeness", "silent_after_minutes"],
            f"must be a positive number of minutes, got {minutes!r}",
        )
    return timedelta(minutes=minutes)


def _memory_warn_at(data: Any, fail: Any) -> float:
    if not isinstance(data, Mapping):
        raise fail(["memory"], "must be a table with warn_at_percent")
    for key in data:
        if key not in _MEMORY:
            raise fail(["memory", key], f"unknown key; use {', '.join(_MEMORY)}")
    percent = data.get("warn_at_percent", memory.DEFAULT_HIGH_SHARE * 100.0)
    if not _positive_number(percent) or percent > 100:
        raise fail(
            ["memory", "warn_at_percent"],
            f"must be a percentage of the memory size above 0 and at most 100, got {percent!r}",
        )
    return float(percent) / 100.0


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(r"^\s*((?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_.\- ]+?))\s*=")


def _split_key(text: str) -> list[str]:
    """A TOML (dotted, possibly quoted) key as its parts."""
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_\-]+)", text)
    return [next(p for p in groups if p) if any(groups) else "" for groups in parts]


def locate(text: str, key: Sequence[str]) -> int | None:
    """Pure: the line (1-based) where ``key`` (a path of table and key names) is set in a TOML
    text: the line of the key itself, else of the closest enclosing assignment or table."""
    wanted = list(key)
    best: tuple[int, int] | None = None  # (matched parts, line)
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_key(header[1])
            path = table
        else:
            assignment = _ASSIGNMENT.match(line)
            if not assignment:
                continue
            path = table + _split_key(assignment[1])
        if path == wanted[: len(path)] and (best is None or len(path) > best[0]):
            best = (len(path), number)
    return None if best is None else best[1]
