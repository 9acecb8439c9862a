"""The alert rule model: the frozen dataclasses a rules file becomes, the comparisons the
engine evaluates a rule by, and the problems that make a file invalid. ``rules_file.py``
reads and validates the file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = [
    "DEFAULT_NOTIFIER_TIMEOUT",
    "NOTIFIER_TYPES",
    "OPERATORS",
    "DetectorSource",
    "NotifierConfig",
    "Rule",
    "RuleProblem",
    "RuleSet",
    "RulesError",
    "SqlSource",
    "Threshold",
]

OPERATORS: tuple[str, ...] = (">=", "<=", ">", "<")
NOTIFIER_TYPES: tuple[str, ...] = ("webhook", "slack", "command", "log")
DEFAULT_NOTIFIER_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong in a rules file, located as precisely as YAML allows."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class RulesError(ValueError):
    """A rules file is invalid; ``problems`` lists every problem with its file and line."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Threshold:
    """``value op number``; ``breached`` is the alert condition, ``cleared`` its hysteresis."""

    op: str
    value: float

    def breached(self, observed: float) -> bool:
        return {
            ">": observed > self.value,
            ">=": observed >= self.value,
            "<": observed < self.value,
            "<=": observed <= self.value,
        }[self.op]

    def cleared(self, observed: float, margin: float) -> bool:
        """True when ``observed`` is back on the good side by at least ``margin``."""
        if self.op in (">", ">="):
            return observed <= self.value - margin and not self.breached(observed)
        return observed >= self.value + margin and not self.breached(observed)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class DetectorSource:
    """Findings of a registered detector, optionally one kind, at or above a severity."""

    detector: str
    kind: str | None = None
    metric: str | None = None
    min_severity: str | None = None


@dataclass(frozen=True)
class SqlSource:
    """A read-only SELECT returning ``function_name`` and ``value`` (and optionally
    ``invocations`` and ``request_ids``) for the window ``{since:...}`` to ``{until:...}``."""

    sql: str


@dataclass(frozen=True)
class NotifierConfig:
    name: str
    type: str
    url: str = ""
    command: tuple[str, ...] = ()
    timeout: timedelta = DEFAULT_NOTIFIER_TIMEOUT
    headers: tuple[tuple[str, str], ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Rule:
    name: str
    source: DetectorSource | SqlSource
    #: None for a detector rule without ``metric``: it breaches while a matching finding exists.
    threshold: Threshold | None = None
    window: timedelta = timedelta(minutes=5)
    for_: timedelta = timedelta(0)
    m: int = 1
    n: int = 1
    min_invocations: int = 0
    functions: tuple[str, ...] = ("*",)
    exclude_functions: tuple[str, ...] = ()
    #: Every (key, value glob) must match one of the function's tags (LAMBDASCOPE_TAGS).
    tags: tuple[tuple[str, str], ...] = ()
    severity: str = "warning"
    labels: tuple[tuple[str, str], ...] = ()
    notifiers: tuple[str, ...] = ("log",)
    renotify: timedelta = timedelta(0)
    #: Hysteresis: absolute, or a share of the threshold when ``resolve_margin_relative``.
    resolve_margin: float = 0.1
    resolve_margin_relative: bool = True
    resolve_for: timedelta = timedelta(0)
    description: str = ""
    line: int = 0

    @property
    def margin(self) -> float:
        """The hysteresis margin in the threshold's own unit."""
        if self.threshold is None:
            return 0.0
        if self.resolve_margin_relative:
            return abs(self.threshold.value) * self.resolve_margin
        return self.resolve_margin

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def lookback(self) -> timedelta:
        """How far back one evaluation reads: ``n`` windows."""
        return self.window * self.n


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    notifiers: tuple[NotifierConfig, ...] = ()
    path: str = "<rules>"

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(f"no rule named {name!r} in {self.path}")
