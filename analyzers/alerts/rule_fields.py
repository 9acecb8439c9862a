"""Reading single fields of a rules file: a YAML node checked and converted to a value of the
rule model, each problem recorded with its line and field so that a file's problems are all
reported at once; and the pure parsers behind them (durations, numbers and shares, SQL)."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import yaml

from lambdascope.analyzers.alerts.rules import OPERATORS, RuleProblem, RulesError, Threshold

__all__ = [
    "FieldReader",
    "listing",
    "node_line",
    "parse_duration",
    "parse_number",
    "sql_problem",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_N = 60


def parse_duration(value: Any) -> timedelta:
    """``90s``, ``5m``, ``1h``, ``2d``, ``250ms``; a bare number is seconds."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a duration: use e.g. 30s, 5m or 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative: durations are 0 or more")
        return timedelta(seconds=float(value))
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration: use e.g. 30s, 5m or 1h")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class FieldReader:
    """Reads the nodes of one rules file; ``problems`` collects what is wrong, in the order
    found."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[RuleProblem] = []
        self._loader: Any = None

    def root(self, text: str) -> yaml.Node | None:
        """The document's node tree (None when empty); invalid YAML is a RulesError at once."""
        try:
            self._loader = yaml.SafeLoader(text)
            try:
                root = self._loader.get_single_node()
            finally:
                self._loader.dispose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            detail = exc.problem or exc.context or str(exc)
            if exc.context and exc.context_mark is not None and exc.problem:
                # "expected ',' or ']'" alone hides where the unclosed bracket opened.
                detail += f" ({exc.context} on line {exc.context_mark.line + 1})"
            raise RulesError([RuleProblem(self.path, line, "", f"invalid YAML: {detail}")]) from exc
        except yaml.YAMLError as exc:
            raise RulesError([RuleProblem(self.path, 0, "", f"invalid YAML: {exc}")]) from exc
        return root

    def problem(self, node: yaml.Node | int, fieldname: str, message: str) -> None:
        line = node if isinstance(node, int) else node_line(node)
        self.problems.append(RuleProblem(self.path, line, fieldname, message))

    def value(self, node: yaml.Node) -> Any:
        return self._loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, fieldname: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """key -> (key node, value node); duplicate or non-string keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, fieldname, "must be a mapping of `key: value` lines")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                self.problem(key_node, fieldname, f"key {key!r} must be a string")
                continue
            if key in out:
                self.problem(
                    key_node,
                    f"{fieldname}.{key}" if fieldname else key,
                    f"appears twice (first on line {node_line(out[key][0])}); keep one",
                )
                continue
            out[key] = (key_node, value_node)
        return out

    def duration(self, node: yaml.Node, where: str) -> timedelta | None:
        try:
            return parse_duration(self.value(node))
        except ValueError as exc:
            self.problem(node, where, str(exc))
            return None

    def threshold(self, node: yaml.Node, where: str) -> Threshold | None:
        raw = self.value(node)
        text = str(raw).strip() if not isinstance(raw, bool) else ""
        for op in OPERATORS:
            if text.startswith(op):
                number = parse_number(text[len(op) :])
                if number is not None:
                    return Threshold(op, number)
                break
        self.problem(
            node,
            where,
            f'{raw!r} must be an operator ({listing(OPERATORS)}) and a number, e.g. "> 0.05" '
            'or ">= 5%"',
        )
        return None

    def margin(self, node: yaml.Node, where: str) -> tuple[float, bool] | None:
        raw = self.value(node)
        text = str(raw).strip()
        if not isinstance(raw, bool):
            if text.endswith("%"):
                number = parse_number(text)
                if number is not None and number >= 0:
                    return number, True
            elif isinstance(raw, int | float) and raw >= 0:
                return float(raw), False
        self.problem(node, where, f"{raw!r} must be a number >= 0 or a share such as 10%")
        return None

    def m_of_n(self, node: yaml.Node, where: str) -> tuple[int, int] | None:
        raw = self.value(node)
        match = re.match(r"^\s*(\d+)\s*(?:/|of)\s*(\d+)\s*$", str(raw))
        if isinstance(raw, dict) and set(raw) == {"m", "n"}:
            m, n = raw["m"], raw["n"]
        elif match:
            m, n = int(match.group(1)), int(match.group(2))
        else:
            self.problem(node, where, f"{raw!r} must look like 2/3 (2 of the last 3 windows)")
            return None
        if not (isinstance(m, int) and isinstance(n, int) and 1 <= m <= n <= _MAX_N):
            self.problem(node, where, f"needs 1 <= m <= n <= {_MAX_N}, got {m}/{n}")
            return None
        return m, n

    def string_list(self, node: yaml.Node, where: str) -> tuple[str, ...] | None:
        raw = self.value(node)
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
            self.problem(node, where, 'must be a list of names, e.g. [checkout, "pay-*"]')
            return None
        return tuple(raw)


def parse_number(text: str) -> float | None:
    text = text.strip()
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1].strip(), 0.01
    try:
        value = float(text)
    except ValueError:
        return None
    return value * scale if value == value else None


def sql_problem(text: Any) -> str | None:
    """Why ``text`` cannot be a rule's query, or None. The store also runs it read-only."""
    if not isinstance(text, str) or not text.strip():
        return "must be a SELECT statement"
    body = re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S).strip().rstrip(";").strip()
    if not re.match(r"^(SELECT|WITH)\b", body, re.I):
        return "must be a read-only SELECT (or WITH ... SELECT) statement"
    if ";" in re.sub(r"'(?:[^'\\]|\\.)*'", "''", body):
        return "must be a single statement: remove the ';' inside it"
    missing = [p for p in ("since", "until") if not re.search(r"\{" + p + r"\s*:", body)]
    if missing:
        return (
            "must filter on the window with "
            + " and ".join(f"{{{p}:DateTime64(3)}}" for p in missing)
            + " (bound by the engine, never formatted into the text)"
        )
    if re.search(r"\{(?!since\s*:|until\s*:)\w+\s*:", body):
        return "may use only the {since:...} and {until:...} parameters"
    return None


def listing(values: Collection[str]) -> str:
    return ", ".join(sorted(values))
