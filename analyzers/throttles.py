"""Throttles: Lambda turning requests away, concurrency near its limits, functions starving each
other of the account's concurrency, and throttling *inside* the code (downstream AWS services).

Rules (one finding per function per window):

* ``throttle``: ``Throttles`` from CloudWatch metric streams (a throttled request never reaches
  a sandbox, so no extension sees it). Any throttle fires once the function had at least
  :data:`MIN_ATTEMPTS` attempts (Invocations + Throttles) in the window, or at least
  :data:`MIN_THROTTLES_LOW_TRAFFIC` throttles without that much traffic (the minimum-traffic
  guard: CloudWatch alarm libraries fire on any throttle, which pages on one stray request).
  **critical** above 10% of attempts (Datadog's threshold), **warning** otherwise.
* ``concurrency_near_limit`` (**warning**): the account's claimed concurrency (or concurrency in
  use) reached 80% of the account limit, or unreserved executions in use reached 80% of the
  unreserved pool (the limit minus the known reservations, at least 100), or a function with a
  known reserved concurrency reached 80% of it without being throttled yet: the early warning
  before throttles start.
* ``concurrency_starvation`` (**warning**, on the function doing the starving): another
  function was throttled while this function, which has no reserved concurrency, held at least
  half of the account's concurrency in the same minutes and more than the throttled one.
* ``code_throttle``: requests whose logs or spans name a throttling error
  (``ThrottlingException``, ``ProvisionedThroughputExceededException``,
  ``TooManyRequestsException``, ``SlowDown``, ``RequestLimitExceeded``): a downstream service
  rate-limited the code; Lambda did not throttle anything. **warning** from
  :data:`CODE_MIN_REQUESTS` requests, **info** below. Evidence: the requests, oldest first.

Reserved concurrency and the account limit are configuration, not metrics: set them with
:func:`configure` (the account default is AWS's 1,000).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lambdascope.analyzers import throttles_sql as sql
from lambdascope.analyzers._format import percent
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = [
    "ConcurrencyLimits",
    "configure",
    "detect_throttles",
    "throttle_findings",
]

MAX_EVIDENCE = 50
MIN_ATTEMPTS = 20
MIN_THROTTLES_LOW_TRAFFIC = 3
CRITICAL_SHARE = 0.10
NEAR_LIMIT_SHARE = 0.80
STARVING_SHARE = 0.50
#: ...and only while the unreserved pool was this full (the early-warning share): otherwise the
#: throttled function hit a limit of its own.
STARVED_POOL_SHARE = NEAR_LIMIT_SHARE
CODE_MIN_REQUESTS = 3
UNRESERVED_MINIMUM = 100


@dataclass(frozen=True)
class ConcurrencyLimits:
    """Limits CloudWatch does not publish: the account's concurrency limit and each function's
    reserved concurrency (function name -> executions)."""

    account_concurrency: int = 1000
    reserved: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.account_concurrency <= 0:
            raise ValueError(
                f"account_concurrency must be a positive number of executions, got "
                f"{self.account_concurrency}"
            )
        for name, value in self.reserved.items():
            if value < 0:
                raise ValueError(f"reserved concurrency of {name!r} must be >= 0, got {value}")


LIMITS = ConcurrencyLimits()


def configure(limits: ConcurrencyLimits) -> None:
    """Set the limits :func:`detect_throttles` compares with (process-wide)."""
    global LIMITS
    LIMITS = limits


@register("throttles")
def detect_throttles(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    params = window.parameters(function_name)
    rows = client.query(sql.FUNCTION_THROTTLES, params).dicts()
    # The account's figures belong to no one function: only a fleet-wide run reports them.
    account = [] if function_name else client.query(sql.ACCOUNT_CONCURRENCY, params).dicts()
    minutes: list[dict[str, Any]] = []
    if any(r["throttles"] > 0 for r in rows):
        minutes = client.query(sql.THROTTLED_MINUTES, params).dicts()
    code_params = {**params, "pattern": sql.CODE_THROTTLE_PATTERN, "max_evidence": MAX_EVIDENCE}
    code = client.query(sql.CODE_THROTTLES, code_params).dicts()
    return with_parameters(
        throttle_findings(rows, account, minutes, code, window, LIMITS),
        {
            sql.FUNCTION_THROTTLES: params,
            sql.ACCOUNT_CONCURRENCY: params,
            sql.CODE_THROTTLES: code_params,
        },
    )


def throttle_findings(
    rows: Sequence[Mapping[str, Any]],
    account: Sequence[Mapping[str, Any]],
    minutes: Sequence[Mapping[str, Any]],
    code: Sequence[Mapping[str, Any]],
    window: Window,
    limits: ConcurrencyLimits = ConcurrencyLimits(),
) -> list[Finding]:
    """Pure: the findings for the rows of the queries in :mod:`throttles_sql`."""
    findings: list[Finding] = []
    starvers = _starvation(minutes, limits)
    starved_by = {victim: s for s in starvers for victim in s.victims}
    for row in rows:
        name = row["function_name"]
        throttles = float(row["throttles"] or 0)
        reserved = limits.reserved.get(name)
        peak = float(row["max_concurrency"] or 0) if row["has_concurrency"] else None
        if throttles > 0:
            finding = _throttle_finding(row, reserved, peak, starved_by.get(name), window)
            if finding is not None:
                findings.append(finding)
        elif reserved and peak is not None and peak >= NEAR_LIMIT_SHARE * reserved:
            findings.append(_function_near_limit(name, peak, reserved, row, window))
    findings += [_starvation_finding(s, window) for s in starvers]
    findings += _account_findings(account, limits, window)
    findings += [f for r in code if (f := _code_finding(r, window)) is not None]
    return findings


def _common(name: str, version: str, window: Window, query: str) -> dict[str, Any]:
    return {
        "function_name": name,
        "function_version": version,
        "window_start": window.start,
        "window_end": window.end,
        "query": query,
    }


def _throttle_finding(
    row: Mapping[str, Any],
    reserved: int | None,
    peak: float | None,
    starver: _Starver | None,
    window: Window,
) -> Finding | None:
    name = row["function_name"]
    throttles = float(row["throttles"])
    attempts = throttles + float(row["invocations"] or 0)
    share = throttles / attempts
    if attempts < MIN_ATTEMPTS and throttles < MIN_THROTTLES_LOW_TRAFFIC:
        return None
    severity = "critical" if share > CRITICAL_SHARE and attempts >= MIN_ATTEMPTS else "warning"
    summary = (
        f"Lambda throttled {throttles:.0f} of {attempts:.0f} requests to {name} "
        f"({percent(share)}) in {int(row['throttled_minutes'])} minute(s)"
    )
    if reserved is not None and peak is not None and peak >= NEAR_LIMIT_SHARE * reserved:
        summary += f", at its reserved concurrency of {reserved}"
        recommendation = (
            f"The function hit its own reserved concurrency ({reserved}): raise it if the "
            "traffic is legitimate, or smooth bursts (SQS, retries with backoff) if not."
        )
    elif starver is not None:
        summary += (
            f", while {starver.function_name} held {percent(starver.share)} of the "
            "account's concurrency"
        )
        recommendation = (
            f"The account's unreserved pool ran out because {starver.function_name} took "
            f"most of it: give {name} reserved concurrency, or cap "
            f"{starver.function_name} with its own reserved concurrency."
        )
    elif peak is not None and reserved is None:
        summary += f", peaking at {peak:.0f} concurrent executions"
        recommendation = (
            f"{name} was turned away at {peak:.0f} concurrent executions: if that is its "
            "reserved concurrency, raise it; otherwise the account limit was reached "
            "(ask for an increase). Async and stream callers retry; synchronous callers got "
            "a 429 TooManyRequestsException."
        )
    else:
        recommendation = (
            "Check the function's reserved concurrency and the account's concurrency limit; "
            "synchronous callers got a 429 TooManyRequestsException."
        )
    return Finding(
        kind="throttle",
        severity=severity,
        summary=summary,
        numbers={
            "throttles": throttles,
            "invocations": float(row["invocations"] or 0),
            "attempts": attempts,
            "throttle_share": share,
            "throttled_minutes": int(row["throttled_minutes"]),
            "max_concurrency": float("nan") if peak is None else peak,
            "reserved_concurrency": float("nan") if reserved is None else float(reserved),
        },
        recommendation=recommendation,
        **_common(name, "", window, sql.FUNCTION_THROTTLES),
    )


def _function_near_limit(
    name: str, peak: float, reserved: int, row: Mapping[str, Any], window: Window
) -> Finding:
    return Finding(
        kind="concurrency_near_limit",
        severity="warning",
        summary=f"{name} reached {peak:.0f} of its {reserved} reserved concurrent executions "
        f"({percent(peak / reserved)}); it is throttled beyond that",
        numbers={
            "max_concurrency": peak,
            "reserved_concurrency": float(reserved),
            "concurrency_share": peak / reserved,
            "invocations": float(row["invocations"] or 0),
        },
        recommendation=(
            f"Raise {name}'s reserved concurrency before a burst gets throttled, or smooth "
            "the traffic with a queue."
        ),
        **_common(name, "", window, sql.FUNCTION_THROTTLES),
    )


def _account_findings(
    account: Sequence[Mapping[str, Any]], limits: ConcurrencyLimits, window: Window
) -> list[Finding]:
    findings = []
    limit = limits.account_concurrency
    # AWS keeps at least 100 executions unreserved, whatever is reserved.
    pool = max(UNRESERVED_MINIMUM, limit - sum(limits.reserved.values()))
    for row in account:
        claimed = float(row["max_claimed"] or 0)
        in_use = float(row["max_concurrency"] or 0)
        unreserved = float(row["max_unreserved"] or 0)
        peak = max(claimed, in_use)
        share = peak / limit
        if limits.reserved and unreserved / pool > share:
            summary = (
                f"account {row['account_id']} in {row['region']}: {unreserved:.0f} of its "
                f"{pool} unreserved concurrent executions in use ({percent(unreserved / pool)})"
            )
            share = unreserved / pool
        else:
            what = "claimed" if claimed >= in_use else "in use"
            summary = (
                f"account {row['account_id']} in {row['region']}: {peak:.0f} of its "
                f"{limit} concurrent executions {what} ({percent(share)})"
            )
        if share < NEAR_LIMIT_SHARE:
            continue
        findings.append(
            Finding(
                kind="concurrency_near_limit",
                severity="warning",
                summary=summary,
                numbers={
                    "max_claimed_concurrency": claimed,
                    "max_concurrency": in_use,
                    "max_unreserved_concurrency": unreserved,
                    "account_concurrency_limit": float(limit),
                    "unreserved_pool": float(pool),
                    "concurrency_share": share,
                },
                recommendation=(
                    "Every function without reserved concurrency is throttled once the "
                    "account's pool is used up: ask AWS for a higher concurrency limit, cap "
                    "bursty functions with reserved concurrency, or reserve concurrency for "
                    "the functions that must not be throttled."
                ),
                **_common("", "", window, sql.ACCOUNT_CONCURRENCY),
            )
        )
    return findings


@dataclass
class _Starver:
    function_name: str
    share: float
    peak: float
    minutes: int
    victims: dict[str, float]  # throttled function -> its throttles in those minutes


def _starvation(minutes: Sequence[Mapping[str, Any]], limits: ConcurrencyLimits) -> list[_Starver]:
    """Which function held the account's concurrency in the minutes another was throttled."""
    account: dict[Any, float] = {}
    per_minute: dict[Any, dict[str, tuple[float, float]]] = {}
    for r in minutes:
        if r["function_name"] == "":
            account[r["minute"]] = float(r["concurrency"] or 0)
        else:
            per_minute.setdefault(r["minute"], {})[r["function_name"]] = (
                float(r["throttles"] or 0),
                float(r["concurrency"] or 0),
            )
    victims = sorted({f for m in per_minute.values() for f, (t, _) in m.items() if t > 0})
    found: dict[str, _Starver] = {}
    for victim in victims:
        if victim in limits.reserved:
            continue  # throttled at its own reservation, not starved
        throttled = [m for m, fns in per_minute.items() if fns.get(victim, (0, 0))[0] > 0]
        in_use = [account.get(m) or sum(c for _, c in per_minute[m].values()) for m in throttled]
        total = sum(in_use)
        if total <= 0:
            continue
        # Starvation needs a pool that actually ran dry: a function throttled while the account
        # had room to spare hit a limit of its own (a reservation we were not told about).
        unreserved_pool = limits.account_concurrency - sum(limits.reserved.values())
        if max(in_use) < STARVED_POOL_SHARE * unreserved_pool:
            continue
        victim_peak = max(per_minute[m][victim][1] for m in throttled)
        candidates = {f for m in throttled for f in per_minute[m]} - {victim}
        best: tuple[float, str, float] | None = None
        for other in sorted(candidates - set(limits.reserved)):
            held = [per_minute[m].get(other, (0.0, 0.0))[1] for m in throttled]
            share = sum(held) / total
            dominates = share >= STARVING_SHARE and max(held) > victim_peak
            if dominates and (best is None or share > best[0]):
                best = (share, other, max(held))
        if best is None:
            continue
        share, other, peak = best
        starver = found.setdefault(other, _Starver(other, share, peak, len(throttled), {}))
        starver.share = max(starver.share, share)
        starver.minutes = max(starver.minutes, len(throttled))
        starver.victims[victim] = sum(per_minute[m][victim][0] for m in throttled)
    return [found[name] for name in sorted(found)]


def _starvation_finding(s: _Starver, window: Window) -> Finding:
    victims = ", ".join(f"{name} ({n:.0f} throttles)" for name, n in sorted(s.victims.items()))
    return Finding(
        kind="concurrency_starvation",
        severity="warning",
        summary=f"{s.function_name} held {percent(s.share)} of the account's concurrency "
        f"(peak {s.peak:.0f}) in the {s.minutes} minute(s) when {victims} "
        f"{'was' if len(s.victims) == 1 else 'were'} throttled",
        numbers={
            "concurrency_share": s.share,
            "max_concurrency": s.peak,
            "throttled_minutes": s.minutes,
            "starved_functions": len(s.victims),
            "starved_throttles": sum(s.victims.values()),
        },
        recommendation=(
            f"{s.function_name} has no reserved concurrency, so its bursts take the shared "
            f"pool: cap it with reserved concurrency (below {s.peak:.0f}), or reserve "
            f"concurrency for {', '.join(sorted(s.victims))}."
        ),
        **_common(s.function_name, "", window, sql.THROTTLED_MINUTES),
    )


def _code_finding(row: Mapping[str, Any], window: Window) -> Finding | None:
    requests = int(row["requests"])
    if requests <= 0:
        return None
    names, counts = row["exception_counts"]
    by_name = sorted(zip(names, counts, strict=True), key=lambda x: (-x[1], x[0]))
    breakdown = ", ".join(f"{n} × {name}" for name, n in by_name)
    name = row["function_name"]
    numbers: dict[str, float] = {"requests": requests, "evidence_total": requests}
    for exception, n in by_name:
        numbers[f"requests_{exception}"] = int(n)
    return Finding(
        kind="code_throttle",
        severity="warning" if requests >= CODE_MIN_REQUESTS else "info",
        summary=f"{requests} request(s) of {name} were throttled by a downstream service "
        f"inside the code ({breakdown}); Lambda itself did not throttle them",
        numbers=numbers,
        evidence_request_ids=tuple(row["request_ids"]),
        recommendation=(
            "A service the code calls is rate-limiting it: retry with exponential backoff "
            "and jitter (the AWS SDKs' adaptive retry mode), batch calls, or raise that "
            "service's capacity (DynamoDB on-demand or more provisioned throughput, a higher "
            "API quota). Lowering the function's concurrency also lowers the call rate."
        ),
        **_common(name, row["function_version"], window, sql.CODE_THROTTLES),
    )
