"""``lambdascope analyze``: run the detectors over a window and print their findings.

Exit codes are a contract CI pipelines gate on: 0 when no finding reaches ``--fail-on``, 1 when
one does (or ``--function`` names a function with no data in the window), 2 when the command
cannot run (bad options, unreachable collector, unreadable store).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lambdascope.analyzers import Finding
    from lambdascope.analyzers.window import Window
    from lambdascope.query import QueryClient

__all__ = [
    "FAIL_ON",
    "FORMATS",
    "exit_code",
    "findings_json",
    "findings_markdown",
    "functions_seen",
    "run",
]

FORMATS = ("table", "json", "markdown")
#: ``--fail-on`` levels, strictest last; ``none`` never fails on findings.
FAIL_ON = ("info", "warning", "critical", "none")
DEFAULT_FAIL_ON = "critical"

#: The fields of one finding in ``--format json``, in this order.
JSON_FIELDS = (
    "kind",
    "severity",
    "function_name",
    "function_version",
    "window_start",
    "window_end",
    "summary",
    "numbers",
    "evidence_request_ids",
    "recommendation",
    "query",
)


def exit_code(findings: Sequence[Finding], fail_on: str) -> int:
    """1 when a finding is at least as severe as ``fail_on``, else 0."""
    from lambdascope.analyzers import severity_rank

    if fail_on == "none":
        return 0
    threshold = severity_rank(fail_on)
    return 1 if any(severity_rank(f.severity) <= threshold for f in findings) else 0


def findings_json(findings: Sequence[Finding]) -> str:
    """One JSON document: an array of findings, ``[]`` when there are none."""
    documents = []
    for finding in findings:
        data = finding.to_dict()
        documents.append({name: data.get(name) for name in JSON_FIELDS})
    return json.dumps(documents, indent=2, allow_nan=False)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: Sequence[Finding], window_label: str) -> str:
    """A Markdown table (for a pull request comment or a ticket) and the recommendations."""
    lines = [f"### lambdascope findings ({len(findings)}, {window_label})", ""]
    if not findings:
        return "\n".join([*lines, "No findings: every detector came back clean."]) + "\n"
    lines += [
        "| severity | kind | function | summary | evidence (request ids) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in findings:
        ids = list(f.evidence_request_ids)
        evidence = ", ".join(f"`{i}`" for i in ids[:3]) + (
            f" (+{len(ids) - 3} more)" if len(ids) > 3 else ""
        )
        lines.append(
            f"| {f.severity} | {_cell(f.kind)} | {_cell(f.function_name)}:"
            f"{_cell(f.function_version)} | {_cell(f.summary)} | {evidence} |"
        )
    advice = [f for f in findings if f.recommendation]
    if advice:
        lines += ["", "**Recommendations**", ""]
        lines += [f"- {f.function_name} ({f.kind}): {f.recommendation}" for f in advice]
    return "\n".join(lines) + "\n"


def functions_seen(client: QueryClient, window: Window) -> list[str]:
    """The functions with invocations in the window (the fleet table's rows)."""
    from lambdascope.analyzers import sql

    rows = client.query(sql.FLEET, window.parameters(None)).dicts()
    return sorted({str(r["function_name"]) for r in rows})


def _not_seen(function_name: str, seen: list[str], label: str) -> str:
    if not seen:
        return f"no invocations of {function_name} in {label}; no function has data in it"
    shown = ", ".join(seen[:20]) + (f" (+{len(seen) - 20} more)" if len(seen) > 20 else "")
    return f"no invocations of {function_name} in {label}; functions seen: {shown}"


def run(args: argparse.Namespace) -> int:
    from lambdascope.analyzers import run_detectors
    from lambdascope.cli.options import reader_from_args, window_from_args, window_label
    from lambdascope.cli.query import clean_error
    from lambdascope.query import QueryError

    window = window_from_args(args)
    label = window_label(window, args)
    client = reader_from_args(args)
    try:
        if args.function is not None:
            seen = functions_seen(client, window)
            if args.function not in seen:
                print(
                    f"lambdascope analyze: {_not_seen(args.function, seen, label)}", file=sys.stderr
                )
                if args.format == "json":
                    print("[]")
                return 1
        findings = run_detectors(
            client,
            since=window.end - window.start,
            now=window.end,
            function_name=args.function,
        )
    except QueryError as exc:
        print(f"lambdascope analyze: {clean_error(str(exc))}", file=sys.stderr)
        return 2
    output: dict[str, Any] = {
        "json": lambda: print(findings_json(findings)),
        "markdown": lambda: sys.stdout.write(findings_markdown(findings, label)),
    }
    if args.format in output:
        output[args.format]()
    else:
        from lambdascope.cli.render import print_findings

        print_findings(findings)
    return exit_code(findings, args.fail_on)
