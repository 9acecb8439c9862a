"""Cost: what each function costs, what changed since yesterday, and what would save money.

The model (Datadog's, minus its gaps): billed GB-seconds x the GB-second price of the
function's architecture (and region, when the price table says so) + requests x the request
price; plus ephemeral storage above the free 512 MB and provisioned concurrency when the price
table knows the function's configuration. Init billing: since 2025-08-01 an on-demand cold
start's billed duration already includes the init, so it is counted once, and reported as its
share (``init_share``). The share of billed time after the runtime finished (extensions
working after the response) is ``post_runtime_share``.

Rules (one finding per function and kind per window; projections to a 730-hour month assume
the window's rate continues):

* ``cost_top`` (**info**): the :data:`TOP_N` most expensive functions whose projected monthly
  cost is at least :data:`MIN_TOP_MONTHLY_USD`.
* ``cost_spike`` (**warning**): the last 24 hours cost more than :data:`SPIKE_FACTOR` x the 24
  hours before, and at least :data:`MIN_SPIKE_DAILY_USD` (from the per-minute rollups).
* ``memory_rightsizing`` (**info**): at least :data:`MIN_RIGHTSIZING_INVOCATIONS` invocations,
  p99 Max Memory Used at most :data:`RIGHTSIZING_P99_SHARE` of the memory size, and a smaller
  size (peak + 30%, 64 MB steps) saves at least :data:`MIN_MONTHLY_SAVING_USD` a month.
* ``arm64_savings`` (**info**): an x86_64 function whose duration cost would drop by the
  GB-second price difference (~20%) on arm64, worth at least :data:`MIN_MONTHLY_SAVING_USD` a
  month.

Of the savings findings, only the :data:`MAX_SAVINGS_FINDINGS` largest of each kind are kept.

Prices come from :class:`PriceTable` (AWS's us-east-1 list prices by default); override them
with :func:`configure` and :meth:`PriceTable.from_file`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from analyzers import cost_sql as sql
from analyzers._format import percent
from analyzers.findings import Finding
from analyzers.memory import suggested_memory_mb
from analyzers.registry import register
from analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = [
    "CostRow",
    "PriceTable",
    "configure",
    "cost_findings",
    "cost_rows",
    "cost_table",
    "detect_cost",
    "spike_findings",
]

HOURS_PER_MONTH = 730.0
TOP_N = 3
MIN_TOP_MONTHLY_USD = 10.0
SPIKE_FACTOR = 2.0
MIN_SPIKE_DAILY_USD = 1.0
MIN_RIGHTSIZING_INVOCATIONS = 50
RIGHTSIZING_P99_SHARE = 0.6
MIN_MONTHLY_SAVING_USD = 5.0
FREE_EPHEMERAL_MB = 512
MAX_SAVINGS_FINDINGS = 5


@dataclass(frozen=True)
class PriceTable:
    """USD prices and the configuration CloudWatch does not report.

    ``regions`` maps a region to overrides of ``gb_second_usd`` / ``request_usd_per_million``
    / ``ephemeral_gb_second_usd`` / ``provisioned_gb_second_usd``.
    ``ephemeral_storage_mb`` and ``provisioned_concurrency`` map function names to their
    configured ephemeral storage (MB) and provisioned concurrency (environments).
    """

    gb_second_usd: Mapping[str, float] = field(
        default_factory=lambda: {"x86_64": 0.0000166667, "arm64": 0.0000133334}
    )
    request_usd_per_million: float = 0.20
    ephemeral_gb_second_usd: float = 0.0000000309
    provisioned_gb_second_usd: Mapping[str, float] = field(
        default_factory=lambda: {"x86_64": 0.0000041667, "arm64": 0.0000033334}
    )
    regions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    ephemeral_storage_mb: Mapping[str, int] = field(default_factory=dict)
    provisioned_concurrency: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "price table") -> PriceTable:
        """Defaults overridden by ``data``; an unknown key or a bad value names itself."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: must be a mapping of price names to values")
        known = {f.name for f in fields(cls)}
        base = cls()
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(
                    f"{source}: unknown key {key!r}; use one of {', '.join(sorted(known))}"
                )
            default = getattr(base, key)
            if isinstance(default, Mapping):
                if not isinstance(value, Mapping):
                    raise ValueError(f"{source}: {key} must be a mapping")
                if key == "regions":
                    value = {
                        str(region): _region_overrides(overrides, f"{source}: regions.{region}")
                        for region, overrides in value.items()
                    }
                else:
                    for k, v in value.items():
                        _check_number(v, f"{source}: {key}.{k}")
                    value = {**default, **value} if key.endswith("_usd") else dict(value)
            else:
                _check_number(value, f"{source}: {key}")
            changes[key] = value
        return replace(base, **changes)

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """A JSON file (or YAML, which JSON is a subset of) holding :meth:`from_dict`'s keys."""
        text = Path(path).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"{path}: not JSON or YAML: {exc}") from None
        return cls.from_dict(data, str(path))

    def _price(self, name: str, region: str, architecture: str | None = None) -> float:
        value: Any = self.regions.get(region, {}).get(name, getattr(self, name))
        if architecture is None:
            return float(value)
        default = getattr(self, name)
        return float(value.get(architecture, default.get(architecture, default["x86_64"])))

    def gb_second(self, architecture: str, region: str) -> float:
        return self._price("gb_second_usd", region, architecture)

    def request(self, region: str) -> float:
        return self._price("request_usd_per_million", region) / 1_000_000

    def ephemeral_gb_second(self, region: str) -> float:
        return self._price("ephemeral_gb_second_usd", region)

    def provisioned_gb_second(self, architecture: str, region: str) -> float:
        return self._price("provisioned_gb_second_usd", region, architecture)


_REGIONAL = (
    "gb_second_usd",
    "request_usd_per_million",
    "ephemeral_gb_second_usd",
    "provisioned_gb_second_usd",
)


def _region_overrides(overrides: Any, where: str) -> dict[str, Any]:
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{where}: must be a mapping of price names to values")
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in _REGIONAL:
            raise ValueError(f"{where}: unknown key {key!r}; use one of {', '.join(_REGIONAL)}")
        if isinstance(value, Mapping):
            for arch, price in value.items():
                _check_number(price, f"{where}.{key}.{arch}")
            out[key] = dict(value)
        else:
            _check_number(value, f"{where}.{key}")
            out[key] = value
    return out


def _check_number(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"{where}: must not be negative, got {value}")


PRICES = PriceTable()


def configure(prices: PriceTable) -> None:
    """Set the price table :func:`detect_cost` uses (process-wide)."""
    global PRICES
    PRICES = prices


@dataclass(frozen=True)
class CostRow:
    """One function's cost over a window, in USD."""

    function_name: str
    architecture: str
    region: str
    invocations: int
    gb_seconds: float
    request_cost_usd: float
    duration_cost_usd: float
    ephemeral_cost_usd: float
    provisioned_cost_usd: float
    init_share: float
    post_runtime_share: float
    memory_size_mb: int
    p99_memory_used_mb: float
    max_memory_used_mb: float
    monthly_factor: float

    @property
    def total_cost_usd(self) -> float:
        return (
            self.request_cost_usd
            + self.duration_cost_usd
            + self.ephemeral_cost_usd
            + self.provisioned_cost_usd
        )

    @property
    def monthly_cost_usd(self) -> float:
        return self.total_cost_usd * self.monthly_factor

    def numbers(self) -> dict[str, float]:
        return {
            "invocations": self.invocations,
            "gb_seconds": self.gb_seconds,
            "request_cost_usd": self.request_cost_usd,
            "duration_cost_usd": self.duration_cost_usd,
            "ephemeral_cost_usd": self.ephemeral_cost_usd,
            "provisioned_cost_usd": self.provisioned_cost_usd,
            "total_cost_usd": self.total_cost_usd,
            "monthly_cost_usd": self.monthly_cost_usd,
            "init_share": self.init_share,
            "post_runtime_share": self.post_runtime_share,
            "memory_size_mb": self.memory_size_mb,
        }


def cost_rows(
    rows: Sequence[Mapping[str, Any]], window: Window, prices: PriceTable
) -> list[CostRow]:
    """Pure: price the rows of :data:`analyzers.cost_sql.COST`."""
    hours = (window.end - window.start).total_seconds() / 3600
    out = []
    for r in rows:
        name, arch, region = r["function_name"], r["architecture"], r["region"]
        gb_s = float(r["gb_seconds"] or 0)
        memory_mb = int(r["largest_memory_size_mb"] or 0)
        ephemeral_mb = prices.ephemeral_storage_mb.get(name, FREE_EPHEMERAL_MB)
        ephemeral = (
            max(0, ephemeral_mb - FREE_EPHEMERAL_MB)
            / 1024
            * float(r["billed_seconds"] or 0)
            * prices.ephemeral_gb_second(region)
        )
        # Provisioned environments are billed for every second they are configured.
        provisioned = (
            prices.provisioned_concurrency.get(name, 0)
            * memory_mb
            / 1024
            * hours
            * 3600
            * prices.provisioned_gb_second(arch, region)
        )
        with_done = float(r["gb_seconds_with_runtime_done"] or 0)
        out.append(
            CostRow(
                function_name=name,
                architecture=arch,
                region=region,
                invocations=int(r["invocations"]),
                gb_seconds=gb_s,
                request_cost_usd=int(r["invocations"]) * prices.request(region),
                duration_cost_usd=gb_s * prices.gb_second(arch, region),
                ephemeral_cost_usd=ephemeral,
                provisioned_cost_usd=provisioned,
                init_share=float(r["init_gb_seconds"] or 0) / gb_s if gb_s else 0.0,
                post_runtime_share=(
                    float(r["post_runtime_gb_seconds"] or 0) / with_done if with_done else 0.0
                ),
                memory_size_mb=memory_mb,
                p99_memory_used_mb=float(r["p99_memory_used_mb"] or 0),
                max_memory_used_mb=float(r["peak_memory_used_mb"] or 0),
                monthly_factor=HOURS_PER_MONTH / hours if hours else 0.0,
            )
        )
    return out


def cost_table(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[CostRow]:
    """Every function's cost over the window, most expensive first (for reports and the TUI)."""
    rows = client.query(sql.COST, window.parameters(function_name)).dicts()
    return sorted(cost_rows(rows, window, PRICES), key=lambda c: -c.total_cost_usd)


@register("cost")
def detect_cost(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    params = window.parameters(function_name)
    priced = cost_rows(client.query(sql.COST, params).dicts(), window, PRICES)
    findings = cost_findings(priced, window)
    # The rollup query runs only for functions whose current rate projects to at least a
    # tenth of the spike floor a day: a cheaper one cannot have spiked past the floor today
    # without showing in the window.
    candidates = sorted(
        {
            c.function_name
            for c in priced
            if c.monthly_cost_usd * 24 / HOURS_PER_MONTH >= MIN_SPIKE_DAILY_USD / 10
        }
    )
    if candidates:
        day_rows = client.query(
            sql.DAY_OVER_DAY, {"until": params["until"], "function_names": candidates}
        ).dicts()
        findings += spike_findings(day_rows, priced, window, PRICES)
    return findings


def _money(usd: float) -> str:
    return f"${usd:,.2f}" if usd >= 0.01 else f"${usd:.4f}"


def _common(row: CostRow, window: Window, query: str) -> dict[str, Any]:
    return {
        "function_name": row.function_name,
        "function_version": "",
        "window_start": window.start,
        "window_end": window.end,
        "query": query,
    }


def cost_findings(priced: Sequence[CostRow], window: Window) -> list[Finding]:
    """Pure: top spenders, right-sizing and arm64 findings for the priced rows."""
    hours = (window.end - window.start).total_seconds() / 3600
    fleet_total = sum(c.total_cost_usd for c in priced)
    findings = []
    ranked = sorted(priced, key=lambda c: -c.total_cost_usd)
    for rank, c in enumerate(ranked[:TOP_N], start=1):
        if c.monthly_cost_usd < MIN_TOP_MONTHLY_USD:
            continue
        summary = (
            f"{c.function_name} cost {_money(c.total_cost_usd)} in {hours:g} h "
            f"(~{_money(c.monthly_cost_usd)}/month at this rate): {c.invocations:,} requests, "
            f"{c.gb_seconds:,.0f} GB-s on {c.architecture} in {c.region}"
        )
        if c.init_share >= 0.05:
            summary += f"; inits are {percent(c.init_share)} of billed time"
        if c.post_runtime_share >= 0.05:
            summary += f"; {percent(c.post_runtime_share)} is billed after the response"
        findings.append(
            Finding(
                kind="cost_top",
                severity="info",
                summary=summary,
                numbers={
                    **c.numbers(),
                    "rank": rank,
                    "fleet_share": c.total_cost_usd / fleet_total,
                },
                recommendation=(
                    "The biggest line on the bill: duration dominates, so shorter invocations, "
                    "right-sized memory and arm64 are the levers; the other cost findings say "
                    "which apply."
                ),
                **_common(c, window, sql.COST),
            )
        )
    # Savings: only the largest few of each kind, so a big fleet gets a short to-do list
    # rather than one info line per function.
    for make in (_rightsizing, _arm64):
        candidates = [f for c in priced if (f := make(c, window)) is not None]
        candidates.sort(key=lambda f: (-f.numbers["monthly_saving_usd"], f.function_name))
        findings += candidates[:MAX_SAVINGS_FINDINGS]
    return findings


def _rightsizing(c: CostRow, window: Window) -> Finding | None:
    if c.invocations < MIN_RIGHTSIZING_INVOCATIONS or not c.memory_size_mb:
        return None
    if c.p99_memory_used_mb > RIGHTSIZING_P99_SHARE * c.memory_size_mb:
        return None
    suggested = suggested_memory_mb(c.max_memory_used_mb)
    if suggested >= c.memory_size_mb:
        return None
    monthly_saving = c.duration_cost_usd * (1 - suggested / c.memory_size_mb) * c.monthly_factor
    if monthly_saving < MIN_MONTHLY_SAVING_USD:
        return None
    return Finding(
        kind="memory_rightsizing",
        severity="info",
        summary=(
            f"{c.function_name} uses at most {c.max_memory_used_mb:.0f} of {c.memory_size_mb} "
            f"MB (p99 {c.p99_memory_used_mb:.0f} MB): {suggested} MB would save about "
            f"{_money(monthly_saving)}/month"
        ),
        numbers={
            **c.numbers(),
            "p99_memory_used_mb": c.p99_memory_used_mb,
            "max_memory_used_mb": c.max_memory_used_mb,
            "suggested_memory_mb": suggested,
            "monthly_saving_usd": monthly_saving,
        },
        recommendation=(
            f"Set the memory size to {suggested} MB (30% above the peak). Less memory also "
            "means less CPU: if the function is CPU-bound its duration grows and eats the "
            "saving, so measure with AWS Lambda Power Tuning before and after."
        ),
        **_common(c, window, sql.COST),
    )


def _arm64(c: CostRow, window: Window) -> Finding | None:
    if c.architecture != "x86_64":
        return None
    x86 = PRICES.gb_second("x86_64", c.region)
    arm = PRICES.gb_second("arm64", c.region)
    if x86 <= 0 or arm >= x86:
        return None
    monthly_saving = c.duration_cost_usd * (1 - arm / x86) * c.monthly_factor
    if monthly_saving < MIN_MONTHLY_SAVING_USD:
        return None
    return Finding(
        kind="arm64_savings",
        severity="info",
        summary=(
            f"{c.function_name} runs on x86_64: arm64 (Graviton) bills {percent(1 - arm / x86)} "
            f"less per GB-second, about {_money(monthly_saving)}/month"
        ),
        numbers={**c.numbers(), "monthly_saving_usd": monthly_saving},
        recommendation=(
            "Switch the architecture to arm64 after checking that native dependencies "
            "(wheels, binaries, layers) have arm64 builds; Graviton often runs faster too."
        ),
        **_common(c, window, sql.COST),
    )


def spike_findings(
    day_rows: Sequence[Mapping[str, Any]],
    priced: Sequence[CostRow],
    window: Window,
    prices: PriceTable,
) -> list[Finding]:
    """Pure: day-over-day spikes from :data:`analyzers.cost_sql.DAY_OVER_DAY` rows, priced with
    each function's current memory size and architecture (from the window's rows)."""
    current = {c.function_name: c for c in priced}
    findings = []
    for r in day_rows:
        c = current.get(r["function_name"])
        if c is None:
            continue
        gb_second = prices.gb_second(c.architecture, c.region) * c.memory_size_mb / 1024
        request = prices.request(c.region)

        def daily(
            billed_ms: Any, invocations: Any, gb_second: float = gb_second, request: float = request
        ) -> float:
            return float(billed_ms or 0) / 1000 * gb_second + int(invocations or 0) * request

        today = daily(r["today_billed_ms"], r["today_invocations"])
        yesterday = daily(r["yesterday_billed_ms"], r["yesterday_invocations"])
        if today < MIN_SPIKE_DAILY_USD or today <= SPIKE_FACTOR * yesterday:
            continue
        factor = today / yesterday if yesterday else math.inf
        how_much = f"{factor:.1f}x" if yesterday else "up from nothing"
        findings.append(
            Finding(
                kind="cost_spike",
                severity="warning",
                function_name=c.function_name,
                function_version="",
                window_start=window.end - timedelta(days=1),
                window_end=window.end,
                summary=(
                    f"{c.function_name} cost {_money(today)} in the last 24 h against "
                    f"{_money(yesterday)} the day before ({how_much})"
                ),
                numbers={
                    "today_cost_usd": today,
                    "yesterday_cost_usd": yesterday,
                    "spike_factor": factor,
                    "today_invocations": int(r["today_invocations"] or 0),
                    "yesterday_invocations": int(r["yesterday_invocations"] or 0),
                    "today_billed_seconds": float(r["today_billed_ms"] or 0) / 1000,
                    "yesterday_billed_seconds": float(r["yesterday_billed_ms"] or 0) / 1000,
                },
                query=sql.DAY_OVER_DAY,
                recommendation=(
                    "Compare requests and billed seconds between the two days: more requests "
                    "point at a caller (a retry loop, a recursive trigger, a new client); "
                    "longer invocations point at a slow dependency or a new version."
                ),
            )
        )
    return findings
