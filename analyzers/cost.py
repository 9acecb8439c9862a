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
with :func:`configure` and :meth:`PriceTable.from_file`, or the ``[prices]`` table of a
settings file (:mod:`settings`).

Screen (analyzers/rollups.py): the rollups bound each function's cost from both sides
(:func:`cost_bounds`: billed GB-s, requests, its architectures and regions, the memory sizes
and peaks), and only a function that could make a finding has its raw rows read
(:func:`cost_candidates`): one whose upper bound reaches a floor and is not beaten by the
lower bounds of enough others (the top 3, the 5 largest arm64 savings), whose right-sizing
saving could reach the floor, or whose last 24 hours could have doubled (the day-over-day
figures are rollups anyway). The others enter the fleet total (``fleet_share``) at the middle
of their bounds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from lambdascope.analyzers import cost_sql as sql
from lambdascope.analyzers import rollups
from lambdascope.analyzers._format import percent
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.memory import suggested_memory_mb
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = [
    "CostBounds",
    "CostRow",
    "PriceTable",
    "PriceTableError",
    "configure",
    "estimated_costs",
    "cost_bounds",
    "cost_candidates",
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
            raise PriceTableError(f"{source}: must be a mapping of price names to values", ())
        known = {f.name for f in fields(cls)}
        base = cls()
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise PriceTableError(
                    f"{source}: unknown key {key!r}; use one of {', '.join(sorted(known))}",
                    (str(key),),
                )
            default = getattr(base, key)
            if isinstance(default, Mapping):
                if not isinstance(value, Mapping):
                    raise PriceTableError(f"{source}: {key} must be a mapping", (key,))
                if key == "regions":
                    value = {
                        str(region): _region_overrides(
                            overrides, f"{source}: regions.{region}", ("regions", str(region))
                        )
                        for region, overrides in value.items()
                    }
                else:
                    for k, v in value.items():
                        _check_number(v, f"{source}: {key}.{k}", (key, str(k)))
                    value = {**default, **value} if key.endswith("_usd") else dict(value)
            else:
                _check_number(value, f"{source}: {key}", (key,))
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

    def highest(self, name: str) -> float:
        """The highest ``name`` price of any architecture and region in the table."""
        values: list[Any] = [getattr(self, name)]
        values += [r[name] for r in self.regions.values() if name in r]
        flat = [float(p) for v in values for p in (v.values() if isinstance(v, Mapping) else (v,))]
        return max(flat, default=0.0)


_REGIONAL = (
    "gb_second_usd",
    "request_usd_per_million",
    "ephemeral_gb_second_usd",
    "provisioned_gb_second_usd",
)


class PriceTableError(ValueError):
    """A price table key or value that cannot be used; ``key`` is its path in the table."""

    def __init__(self, message: str, key: tuple[str, ...]) -> None:
        super().__init__(message)
        self.key = key


def _region_overrides(overrides: Any, where: str, path: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(overrides, Mapping):
        raise PriceTableError(f"{where}: must be a mapping of price names to values", path)
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in _REGIONAL:
            raise PriceTableError(
                f"{where}: unknown key {key!r}; use one of {', '.join(_REGIONAL)}",
                (*path, str(key)),
            )
        if isinstance(value, Mapping):
            for arch, price in value.items():
                _check_number(price, f"{where}.{key}.{arch}", (*path, key, str(arch)))
            out[key] = dict(value)
        else:
            _check_number(value, f"{where}.{key}", (*path, key))
            out[key] = value
    return out


def _check_number(value: Any, where: str, path: tuple[str, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PriceTableError(f"{where}: must be a number, got {value!r}", path)
    if value < 0:
        raise PriceTableError(f"{where}: must not be negative, got {value}", path)


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
    """Pure: price the rows of :data:`cost_sql.COST`."""
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


def estimated_costs(
    rows: Sequence[Mapping[str, Any]], window: Window, prices: PriceTable
) -> dict[str, float]:
    """Pure: each function's estimated cost over the window in USD, from rollup rows (such as
    :data:`sql.FLEET_TRENDS`'s: ``requests``, ``billed_gb_seconds``, ``billed_seconds``,
    ``memory_size_mb``, ``architectures``, ``regions``), by the same model as
    :func:`cost_rows` but without reading a raw row.

    A rollup row that saw more than one architecture or region (a deploy that switched) is
    priced at the mean of their prices: the rollups do not say how its GB-seconds split.
    """
    hours = (window.end - window.start).total_seconds() / 3600
    out: dict[str, float] = {}
    largest: dict[str, tuple[int, float]] = {}
    for r in rows:
        name = str(r["function_name"])
        # No report yet says nothing of the architecture: Lambda's default is x86_64.
        archs = sorted(r.get("architectures") or ()) or ["x86_64"]
        regions = sorted(r.get("regions") or ()) or [""]
        gb_second = _mean([prices.gb_second(a, g) for a in archs for g in regions])
        request = _mean([prices.request(g) for g in regions])
        ephemeral_mb = prices.ephemeral_storage_mb.get(name, FREE_EPHEMERAL_MB)
        ephemeral = (
            max(0, ephemeral_mb - FREE_EPHEMERAL_MB)
            / 1024
            * float(r.get("billed_seconds") or 0)
            * _mean([prices.ephemeral_gb_second(g) for g in regions])
        )
        out[name] = (
            out.get(name, 0.0)
            + float(r.get("billed_gb_seconds") or 0) * gb_second
            + int(r.get("requests") or 0) * request
            + ephemeral
        )
        provisioned = _mean([prices.provisioned_gb_second(a, g) for a in archs for g in regions])
        size = int(r.get("memory_size_mb") or 0)
        if size >= largest.get(name, (0, 0.0))[0]:
            largest[name] = (size, provisioned)
    # Provisioned environments are billed for every second of the window they are configured,
    # at the function's memory size (the largest the window saw).
    for name, (size, provisioned) in largest.items():
        environments = prices.provisioned_concurrency.get(name, 0)
        out[name] += environments * size / 1024 * hours * 3600 * provisioned
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def cost_table(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[CostRow]:
    """Every function's cost over the window, most expensive first (for reports and the TUI)."""
    params = {**window.parameters(function_name), "function_names": []}
    rows = client.query(sql.COST, params).dicts()
    return sorted(cost_rows(rows, window, PRICES), key=lambda c: -c.total_cost_usd)


@dataclass(frozen=True)
class CostBounds:
    """What the rollups say one function cost over a window, as bounds in USD (the window's,
    not monthly), and the figures its spike check is priced with."""

    function_name: str
    low_usd: float
    high_usd: float
    #: Whether the rollups show one architecture and one region: then the function is one
    #: cost row, and its lower bound may rank it.
    one_row: bool
    arm64_saving_low_usd: float
    arm64_saving_high_usd: float
    rightsizing_saving_high_usd: float
    memory_size_mb_low: int
    memory_size_mb_high: int
    gb_second_low: float
    gb_second_high: float
    request_low: float
    request_high: float


def cost_bounds(
    rows: Sequence[rollups.VersionScreen], window: Window, prices: PriceTable
) -> CostBounds:
    """Pure: one function's cost bounds from its rollup rows (:mod:`rollups`): billed
    GB-s and invocations from the widened window at the highest price of its architectures and
    regions, and from the minutes certainly inside it at the lowest."""
    name = rows[0].function_name
    hours = (window.end - window.start).total_seconds() / 3600
    archs = sorted({a for r in rows for a in r.architectures}) or sorted(prices.gb_second_usd)
    # No report yet: any region of the table could be the one its requests are billed in.
    regions = sorted({g for r in rows for g in r.regions}) or ["", *sorted(prices.regions)]
    gb = [prices.gb_second(a, g) for a in archs for g in regions]
    request = [prices.request(g) for g in regions]
    provisioned = [prices.provisioned_gb_second(a, g) for a in archs for g in regions]
    size_high = max((r.max_memory_size_mb or 0) for r in rows)
    size_low = max(r.memory_size_mb_min for r in rows)
    configured = prices.provisioned_concurrency.get(name, 0) * hours * 3600 / 1024
    ephemeral_mb = prices.ephemeral_storage_mb.get(name, FREE_EPHEMERAL_MB)
    duration_low = sum(r.billed_gb_seconds_min for r in rows) * min(gb)
    duration_high = sum(r.billed_gb_seconds for r in rows) * max(gb)
    low = (
        duration_low
        + sum(r.invocations_min for r in rows) * min(request)
        + configured * size_low * min(provisioned)
    )
    high = (
        duration_high
        + sum(r.invocations_max for r in rows) * max(request)
        + max(0, ephemeral_mb - FREE_EPHEMERAL_MB)
        / 1024
        * sum(r.billed_seconds for r in rows)
        * max(prices.ephemeral_gb_second(g) for g in regions)
        + configured * size_high * max(provisioned)
    )
    one_row = len(archs) == 1 and len(regions) == 1
    arm_shares = [_arm64_share(prices, g) for g in regions]
    arm_high = duration_high * max(arm_shares) if "x86_64" in archs else 0.0
    arm_low = duration_low * min(arm_shares) if archs == ["x86_64"] and one_row else 0.0
    rightsizing_high = 0.0
    suggested_low = suggested_memory_mb(max(r.peak_memory_used_mb_min for r in rows))
    invocations_high = sum(r.invocations_max for r in rows)
    if invocations_high >= MIN_RIGHTSIZING_INVOCATIONS and suggested_low < size_high:
        rightsizing_high = duration_high * (1 - suggested_low / size_high)
    return CostBounds(
        function_name=name,
        low_usd=low,
        high_usd=high,
        one_row=one_row,
        arm64_saving_low_usd=arm_low,
        arm64_saving_high_usd=arm_high,
        rightsizing_saving_high_usd=rightsizing_high,
        memory_size_mb_low=size_low,
        memory_size_mb_high=size_high,
        gb_second_low=min(gb),
        gb_second_high=max(gb),
        request_low=min(request),
        request_high=max(request),
    )


def _arm64_share(prices: PriceTable, region: str) -> float:
    """The share of the duration cost arm64 saves over x86_64 in ``region`` (0 if none)."""
    x86 = prices.gb_second("x86_64", region)
    arm = prices.gb_second("arm64", region)
    return 1 - arm / x86 if x86 > 0 and arm < x86 else 0.0


def _kth_largest(values: Sequence[float], k: int) -> float:
    ordered = sorted(values, reverse=True)
    return ordered[k - 1] if len(ordered) >= k else 0.0


def spike_floor_functions(bounds: Sequence[CostBounds], window: Window) -> list[str]:
    """Pure: the functions whose rate could project to a tenth of the spike floor a day (the
    exact check's candidates are among them)."""
    monthly = HOURS_PER_MONTH / ((window.end - window.start).total_seconds() / 3600)
    floor = MIN_SPIKE_DAILY_USD / 10
    return sorted(
        b.function_name for b in bounds if b.high_usd * monthly * 24 / HOURS_PER_MONTH >= floor
    )


def cost_candidates(
    bounds: Sequence[CostBounds], day_rows: Sequence[Mapping[str, Any]], window: Window
) -> list[str]:
    """Pure: the functions that could make a cost finding, so their raw rows must be read.

    A function is left out when its upper bound cannot reach a finding's floor, or when enough
    functions certainly beat it: the top list needs a cost above the third-largest lower bound
    (of one-row functions), the arm64 list a saving above the fifth-largest lower bound; a
    spike needs today's upper bound above twice yesterday's lower bound (``day_rows`` from
    :data:`cost_sql.DAY_OVER_DAY`).
    """
    monthly = HOURS_PER_MONTH / ((window.end - window.start).total_seconds() / 3600)
    third = _kth_largest([b.low_usd for b in bounds if b.one_row], TOP_N)
    fifth = _kth_largest([b.arm64_saving_low_usd for b in bounds], MAX_SAVINGS_FINDINGS)
    out = set()
    for b in bounds:
        if b.high_usd * monthly >= MIN_TOP_MONTHLY_USD and b.high_usd >= third:
            out.add(b.function_name)
        arm64 = b.arm64_saving_high_usd
        if arm64 * monthly >= MIN_MONTHLY_SAVING_USD and arm64 >= fifth:
            out.add(b.function_name)
        if b.rightsizing_saving_high_usd * monthly >= MIN_MONTHLY_SAVING_USD:
            out.add(b.function_name)
    by_name = {b.function_name: b for b in bounds}
    for r in day_rows:
        found = by_name.get(r["function_name"])
        if found is None:
            continue
        b = found
        today = (
            float(r["today_billed_ms"] or 0)
            / 1000
            * b.memory_size_mb_high
            / 1024
            * (b.gb_second_high)
            + int(r["today_invocations"] or 0) * b.request_high
        )
        yesterday = (
            float(r["yesterday_billed_ms"] or 0)
            / 1000
            * b.memory_size_mb_low
            / 1024
            * (b.gb_second_low)
            + int(r["yesterday_invocations"] or 0) * b.request_low
        )
        if today >= MIN_SPIKE_DAILY_USD and today > SPIKE_FACTOR * yesterday:
            out.add(b.function_name)
    return sorted(out)


@register("cost")
def detect_cost(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    screened = rollups.by_function(rollups.screen(client, window, function_name))
    bounds = [cost_bounds(rows, window, PRICES) for _, rows in sorted(screened.items())]
    params = window.parameters(function_name)
    # The day-over-day figures come from the rollups too; they are needed only for functions
    # whose rate could project to a tenth of the spike floor a day: a cheaper one cannot have
    # spiked past the floor today without showing in the window.
    day_rows: list[dict[str, Any]] = []
    spiky = spike_floor_functions(bounds, window)
    day_params = {"until": params["until"], "function_names": spiky}
    if spiky:
        day_rows = client.query(sql.DAY_OVER_DAY, day_params).dicts()
    names = cost_candidates(bounds, day_rows, window)
    if not names:
        return []
    cost_params = {**params, "function_names": names}
    priced = cost_rows(client.query(sql.COST, cost_params).dicts(), window, PRICES)
    # The functions not read raw enter the fleet total (fleet_share) at the middle of their
    # bounds.
    others = sum((b.low_usd + b.high_usd) / 2 for b in bounds if b.function_name not in names)
    findings = cost_findings(priced, window, others_usd=others)
    candidates = {
        c.function_name
        for c in priced
        if c.monthly_cost_usd * 24 / HOURS_PER_MONTH >= MIN_SPIKE_DAILY_USD / 10
    }
    findings += spike_findings(
        [r for r in day_rows if r["function_name"] in candidates], priced, window, PRICES
    )
    return with_parameters(findings, {sql.COST: cost_params, sql.DAY_OVER_DAY: day_params})


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


def cost_findings(
    priced: Sequence[CostRow], window: Window, *, others_usd: float = 0.0
) -> list[Finding]:
    """Pure: top spenders, right-sizing and arm64 findings for the priced rows; ``others_usd``
    is what the functions not priced here cost (for ``fleet_share``)."""
    hours = (window.end - window.start).total_seconds() / 3600
    fleet_total = sum(c.total_cost_usd for c in priced) + others_usd
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
    """Pure: day-over-day spikes from :data:`cost_sql.DAY_OVER_DAY` rows, priced with
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
