"""The alert rules file: YAML in, frozen dataclasses out, errors with file, line and field.

:func:`parse_rules` is pure (text in, :class:`RuleSet` out); :func:`load_rules` reads a file.
Every problem found is reported at once, each as ``path:line: field: message`` so an editor can
jump to it. The format (see ``default_rules.yaml`` for a commented example)::

    version: 1
    defaults: {window: 5m, notifiers: [log]}        # applied to every rule (optional)
    notifiers:                                      # name -> how to deliver (optional)
      ops: {type: webhook, url: "http://127.0.0.1:9000/hook", timeout: 5s}
    rules:
      - name: checkout-timeouts
        detector: timeouts          # or `sql: SELECT function_name, value FROM ...`
        kind: timeout               # only this finding kind (optional)
        metric: timeout_share       # a number of the finding; omit to alert on its presence
        threshold: "> 0.05"         # operator and number (`5%` means 0.05)
        window: 5m                  # each evaluation looks at this much time
        for: 5m                     # breaching this long before firing (pending meanwhile)
        m_of_n: 2/3                 # breaching in 2 of the last 3 windows
        min_invocations: 20         # a window with less traffic never breaches
        functions: [checkout, "pay-*"]
        exclude_functions: ["*-canary"]
        severity: critical
        labels: {team: payments}
        notifiers: [ops, log]
        renotify: 1h                # repeat while firing (0 = never)
        resolve_margin: 10%         # hysteresis: back past the threshold by 10% of it
        resolve_for: 0m             # and clear this long before resolving
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from lambdascope.analyzers.alerts.rule_fields import FieldReader, listing, node_line, sql_problem
from lambdascope.analyzers.alerts.rules import (
    DEFAULT_NOTIFIER_TIMEOUT,
    NOTIFIER_TYPES,
    DetectorSource,
    NotifierConfig,
    Rule,
    RuleProblem,
    RulesError,
    RuleSet,
    SqlSource,
    Threshold,
)
from lambdascope.analyzers.findings import SEVERITIES

__all__ = ["KNOWN_KINDS", "load_rules", "parse_rules"]

#: Finding kinds of the built-in detectors, so a misspelt ``kind`` is caught by ``check``
#: instead of silently never matching. Detectors registered elsewhere are not checked.
KNOWN_KINDS: dict[str, tuple[str, ...]] = {
    "timeouts": ("timeout", "timeout_risk"),
    "memory": ("out_of_memory", "high_memory"),
    "cold_starts": ("cold_starts",),
    "errors": ("errors",),
    "throttles": ("throttle", "concurrency_near_limit", "concurrency_starvation", "code_throttle"),
    "memory_leak": ("memory_leak",),
    "version_regression": ("version_regression",),
    "cost": ("cost_top", "cost_spike", "memory_rightsizing", "arm64_savings"),
    "config_checks": ("init_failure", "api_gateway_timeout"),
}

_RULE_FIELDS = {
    "name",
    "description",
    "detector",
    "kind",
    "metric",
    "min_severity",
    "sql",
    "threshold",
    "window",
    "for",
    "m_of_n",
    "min_invocations",
    "functions",
    "exclude_functions",
    "tags",
    "severity",
    "labels",
    "notifiers",
    "renotify",
    "resolve_margin",
    "resolve_for",
}
# What makes a rule this rule (its source and threshold) cannot come from `defaults:`.
_DEFAULTABLE = _RULE_FIELDS - {
    "name",
    "description",
    "detector",
    "kind",
    "metric",
    "min_severity",
    "sql",
    "threshold",
}
_NOTIFIER_FIELDS = {"type", "url", "command", "timeout", "headers"}
_TOP_FIELDS = {"version", "defaults", "notifiers", "rules"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def load_rules(path: str | Path, *, detectors: Collection[str] | None = None) -> RuleSet:
    """Read and parse a rules file; :class:`RulesError` names the file and line of each problem."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(
            [RuleProblem(shown, 0, "", f"cannot read the rules file: {exc.strerror or exc}")]
        ) from exc
    except UnicodeDecodeError as exc:
        raise RulesError(
            [RuleProblem(shown, 0, "", f"not UTF-8 text ({exc.reason}): save it as UTF-8")]
        ) from exc
    return parse_rules(text, shown, detectors=detectors)


def parse_rules(
    text: str, path: str = "<rules>", *, detectors: Collection[str] | None = None
) -> RuleSet:
    """Pure: the :class:`RuleSet` in ``text``. ``detectors`` are the names a rule may use
    (default: every registered detector)."""
    if detectors is None:
        from lambdascope.analyzers.registry import DETECTORS

        detectors = tuple(DETECTORS)
    return _Parser(path, tuple(detectors)).parse(text)


# -- the parser ---------------------------------------------------------------------------------


class _Parser(FieldReader):
    def __init__(self, path: str, detectors: tuple[str, ...]) -> None:
        super().__init__(path)
        self.detectors = detectors

    def parse(self, text: str) -> RuleSet:
        root = self.root(text)
        if root is None:
            raise RulesError(
                [RuleProblem(self.path, 1, "rules", "the file is empty: add a `rules:` list")]
            )
        top = self.mapping(root, "")
        if self.problems:
            raise RulesError(self.problems)
        for key, (key_node, _) in top.items():
            if key not in _TOP_FIELDS:
                self.problem(key_node, key, _unknown(key, _TOP_FIELDS))
        if "version" in top:
            version_node = top["version"][1]
            if self.value(version_node) != 1:
                self.problem(version_node, "version", "only version 1 is supported")
        defaults: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if "defaults" in top:
            defaults = self.mapping(top["defaults"][1], "defaults")
            for key, (key_node, _) in defaults.items():
                if key not in _DEFAULTABLE:
                    self.problem(key_node, f"defaults.{key}", _unknown(key, _DEFAULTABLE))
        notifiers = self.notifiers(top["notifiers"][1]) if "notifiers" in top else []
        notifier_names = {n.name for n in notifiers} | {"log"}
        rules: list[Rule] = []
        if "rules" not in top:
            self.problem(root, "rules", "missing: add a `rules:` list (it may be empty: [])")
        else:
            rules_node = top["rules"][1]
            if not isinstance(rules_node, yaml.SequenceNode):
                self.problem(rules_node, "rules", "must be a list of rules (`- name: ...`)")
            else:
                seen: dict[str, int] = {}
                for index, rule_node in enumerate(rules_node.value):
                    rule = self.rule(rule_node, index, defaults, notifier_names)
                    if rule is None:
                        continue
                    if rule.name in seen:
                        self.problem(
                            rule.line,
                            f"rules[{index}].name",
                            f"rule name {rule.name!r} is already used on line "
                            f"{seen[rule.name]}: names must be unique",
                        )
                        continue
                    seen[rule.name] = rule.line
                    rules.append(rule)
        if self.problems:
            unique = list(dict.fromkeys(self.problems))  # a bad default fails every rule
            raise RulesError(sorted(unique, key=lambda p: p.line))
        return RuleSet(rules=tuple(rules), notifiers=tuple(notifiers), path=self.path)

    # -- notifiers

    def notifiers(self, node: yaml.Node) -> list[NotifierConfig]:
        out = []
        for name, (key_node, value_node) in self.mapping(node, "notifiers").items():
            where = f"notifiers.{name}"
            if not _NAME.match(name):
                self.problem(key_node, where, "use letters, digits, '_', '-', '.' or ':'")
                continue
            fields = self.mapping(value_node, where)
            if not fields:
                continue
            for key, (k_node, _) in fields.items():
                if key not in _NOTIFIER_FIELDS:
                    self.problem(k_node, f"{where}.{key}", _unknown(key, _NOTIFIER_FIELDS))
            if "type" not in fields:
                self.problem(
                    value_node, f"{where}.type", f"missing: one of {listing(NOTIFIER_TYPES)}"
                )
                continue
            kind = self.value(fields["type"][1])
            if kind not in NOTIFIER_TYPES:
                self.problem(
                    fields["type"][1],
                    f"{where}.type",
                    f"{kind!r} is not one of {listing(NOTIFIER_TYPES)}",
                )
                continue
            url = ""
            command: tuple[str, ...] = ()
            if kind in ("webhook", "slack"):
                if "url" not in fields:
                    self.problem(value_node, f"{where}.url", f"missing: a {kind} needs a url")
                    continue
                url = str(self.value(fields["url"][1]))
                if not re.match(r"^https?://[^/\s]+", url):
                    self.problem(
                        fields["url"][1], f"{where}.url", f"{url!r} is not an http(s):// URL"
                    )
                    continue
            if kind == "command":
                if "command" not in fields:
                    self.problem(
                        value_node, f"{where}.command", "missing: the program and its arguments"
                    )
                    continue
                raw = self.value(fields["command"][1])
                # A list is run without a shell, so payload text can never be interpreted.
                if isinstance(raw, str):
                    raw = [raw]
                if not (
                    isinstance(raw, list) and raw and all(isinstance(a, str | int) for a in raw)
                ):
                    self.problem(
                        fields["command"][1],
                        f"{where}.command",
                        "must be a list: [program, arg, ...] (run without a shell)",
                    )
                    continue
                command = tuple(str(a) for a in raw)
            timeout = DEFAULT_NOTIFIER_TIMEOUT
            if "timeout" in fields:
                parsed = self.duration(fields["timeout"][1], f"{where}.timeout")
                if parsed is not None:
                    if parsed <= timedelta(0) or parsed > timedelta(minutes=5):
                        self.problem(
                            fields["timeout"][1], f"{where}.timeout", "must be > 0 and <= 5m"
                        )
                    else:
                        timeout = parsed
            headers: tuple[tuple[str, str], ...] = ()
            if "headers" in fields:
                raw_headers = self.value(fields["headers"][1])
                if not isinstance(raw_headers, dict):
                    self.problem(fields["headers"][1], f"{where}.headers", "must be a mapping")
                else:
                    headers = tuple((str(k), str(v)) for k, v in raw_headers.items())
            out.append(
                NotifierConfig(
                    name=name,
                    type=kind,
                    url=url,
                    command=command,
                    timeout=timeout,
                    headers=headers,
                    line=node_line(key_node),
                )
            )
        return out

    # -- rules

    def rule(
        self,
        node: yaml.Node,
        index: int,
        defaults: Mapping[str, tuple[yaml.Node, yaml.Node]],
        notifier_names: set[str],
    ) -> Rule | None:
        where = f"rules[{index}]"
        own = self.mapping(node, where)
        if not own:
            return None
        before = len(self.problems)
        name = ""
        if "name" not in own:
            self.problem(node, f"{where}.name", "missing: every rule needs a unique name")
        else:
            name = str(self.value(own["name"][1]))
            if not _NAME.match(name):
                self.problem(
                    own["name"][1],
                    f"{where}.name",
                    f"{name!r}: use letters, digits, '_', '-', '.' or ':' (at most 128)",
                )
            else:
                where = f"rules[{index}] ({name})"
        for key, (key_node, _) in own.items():
            if key not in _RULE_FIELDS:
                self.problem(key_node, f"{where}.{key}", _unknown(key, _RULE_FIELDS))
        fields = {**{k: v for k, v in defaults.items() if k in _DEFAULTABLE}, **own}

        def get(key: str) -> yaml.Node | None:
            return fields[key][1] if key in fields else None

        def at(key: str) -> str:
            # A value inherited from `defaults:` is reported there, once, not under each rule.
            return f"{where}.{key}" if key in own or key not in defaults else f"defaults.{key}"

        source = self.source(own, node, where)
        threshold: Threshold | None = None
        threshold_node = get("threshold")
        if threshold_node is not None:
            if isinstance(source, DetectorSource) and not source.metric:
                self.problem(
                    threshold_node,
                    at("threshold"),
                    "a detector rule compares a number of its finding: add `metric` (e.g. "
                    "timeout_share), or drop the threshold to alert while the finding exists",
                )
            else:
                threshold = self.threshold(threshold_node, at("threshold"))
        elif isinstance(source, SqlSource) or (
            isinstance(source, DetectorSource) and source.metric
        ):
            self.problem(
                node,
                at("threshold"),
                'missing: a rule with `sql` or `metric` needs one, e.g. threshold: "> 0.05"',
            )

        kwargs: dict[str, Any] = {}
        for key, attr in (
            ("window", "window"),
            ("for", "for_"),
            ("renotify", "renotify"),
            ("resolve_for", "resolve_for"),
        ):
            value_node = get(key)
            if value_node is not None:
                parsed = self.duration(value_node, at(key))
                if parsed is not None:
                    kwargs[attr] = parsed
        window_node = get("window")
        if "window" in kwargs and kwargs["window"] < timedelta(seconds=1) and window_node:
            self.problem(window_node, at("window"), "must be at least 1s")
        if (node_mn := get("m_of_n")) is not None:
            parsed_mn = self.m_of_n(node_mn, at("m_of_n"))
            if parsed_mn:
                kwargs["m"], kwargs["n"] = parsed_mn
        if (node_min := get("min_invocations")) is not None:
            raw = self.value(node_min)
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                self.problem(
                    node_min, at("min_invocations"), f"{raw!r} must be a whole number >= 0"
                )
            else:
                kwargs["min_invocations"] = raw
        for key in ("functions", "exclude_functions"):
            if (value_node := get(key)) is not None:
                globs = self.string_list(value_node, at(key))
                if globs is not None:
                    if key == "functions" and not globs:
                        self.problem(value_node, at(key), "is empty: list names or globs")
                    kwargs[key] = globs
        if (node_tags := get("tags")) is not None:
            tags = self.value(node_tags)
            if (
                not isinstance(tags, dict)
                or not tags
                or not all(isinstance(k, str) and k for k in tags)
                or not all(isinstance(v, (str, int, float)) for v in tags.values())
            ):
                self.problem(
                    node_tags,
                    at("tags"),
                    "must be a mapping of tag: value (a glob), e.g. {team: payments}",
                )
            else:
                kwargs["tags"] = tuple(sorted((k, str(v)) for k, v in tags.items()))
        if (node_sev := get("severity")) is not None:
            severity = self.value(node_sev)
            if severity not in SEVERITIES:
                self.problem(
                    node_sev, at("severity"), f"{severity!r} is not one of {listing(SEVERITIES)}"
                )
            else:
                kwargs["severity"] = severity
        if (node_labels := get("labels")) is not None:
            labels = self.value(node_labels)
            if not isinstance(labels, dict) or not all(isinstance(k, str) for k in labels):
                self.problem(node_labels, at("labels"), "must be a mapping of name: value")
            else:
                kwargs["labels"] = tuple(sorted((k, str(v)) for k, v in labels.items()))
        if (node_notifiers := get("notifiers")) is not None:
            names = self.string_list(node_notifiers, at("notifiers"))
            if names is not None:
                unknown = [n for n in names if n not in notifier_names]
                if unknown:
                    self.problem(
                        node_notifiers,
                        at("notifiers"),
                        f"{', '.join(map(repr, unknown))} not defined under `notifiers:` "
                        f"(defined: {', '.join(sorted(notifier_names))})",
                    )
                else:
                    kwargs["notifiers"] = names
        if (node_margin := get("resolve_margin")) is not None:
            margin = self.margin(node_margin, at("resolve_margin"))
            if margin is not None:
                kwargs["resolve_margin"], kwargs["resolve_margin_relative"] = margin
        if "description" in own:
            kwargs["description"] = str(self.value(own["description"][1]))
        if len(self.problems) > before or source is None:
            return None
        return Rule(name=name, source=source, threshold=threshold, line=node_line(node), **kwargs)

    def source(
        self, own: Mapping[str, tuple[yaml.Node, yaml.Node]], node: yaml.Node, where: str
    ) -> DetectorSource | SqlSource | None:
        has_detector, has_sql = "detector" in own, "sql" in own
        if has_detector == has_sql:
            self.problem(
                node,
                f"{where}.detector",
                f"a rule needs exactly one of `detector` (one of {listing(self.detectors)}) "
                "or `sql`",
            )
            return None
        if has_sql:
            sql_node = own["sql"][1]
            for key in ("kind", "metric", "min_severity"):
                if key in own:
                    self.problem(own[key][0], f"{where}.{key}", "only applies to detector rules")
            text = self.value(sql_node)
            problem = sql_problem(text)
            if problem:
                self.problem(sql_node, f"{where}.sql", problem)
                return None
            return SqlSource(sql=str(text).strip().rstrip(";").strip())
        detector_node = own["detector"][1]
        detector = self.value(detector_node)
        if detector not in self.detectors:
            self.problem(
                detector_node,
                f"{where}.detector",
                f"{detector!r} is not a registered detector: use one of {listing(self.detectors)}",
            )
            return None
        kind = metric = min_severity = None
        if "kind" in own:
            kind = str(self.value(own["kind"][1]))
            known = KNOWN_KINDS.get(detector)
            if known is not None and kind not in known:
                self.problem(
                    own["kind"][1],
                    f"{where}.kind",
                    f"detector {detector!r} reports no kind {kind!r}: use {listing(known)}",
                )
                return None
        if "metric" in own:
            metric = self.value(own["metric"][1])
            if not isinstance(metric, str) or not metric:
                self.problem(own["metric"][1], f"{where}.metric", "must be a finding number name")
                return None
        if "min_severity" in own:
            min_severity = self.value(own["min_severity"][1])
            if min_severity not in SEVERITIES:
                self.problem(
                    own["min_severity"][1],
                    f"{where}.min_severity",
                    f"{min_severity!r} is not one of {listing(SEVERITIES)}",
                )
                return None
        return DetectorSource(
            detector=str(detector), kind=kind, metric=metric, min_severity=min_severity
        )


def _unknown(key: str, allowed: Collection[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(sorted(allowed))}"
    return f"unknown field {key!r}: {hint}"
