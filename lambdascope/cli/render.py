"""Plain-terminal rendering of findings (for ``analyze`` and ``demo --no-tui``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from lambdascope.analyzers import Finding

_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def findings_table(findings: Sequence[Finding]) -> Table:
    table = Table(title=f"lambdascope findings ({len(findings)})", show_lines=False)
    table.add_column("severity")
    table.add_column("kind")
    table.add_column("function")
    table.add_column("summary", overflow="fold")
    table.add_column("evidence (request ids)", overflow="fold")
    for finding in findings:
        ids = finding.evidence_request_ids
        evidence = ", ".join(ids[:3]) + (f" (+{len(ids) - 3} more)" if len(ids) > 3 else "")
        table.add_row(
            f"[{_SEVERITY_STYLE.get(finding.severity, '')}]{finding.severity}[/]",
            finding.kind,
            f"{finding.function_name}:{finding.function_version}",
            finding.summary,
            evidence,
        )
    return table


def print_findings(findings: Sequence[Finding], console: Console | None = None) -> None:
    console = console or Console()
    if not findings:
        console.print("No findings: every detector came back clean for this window.")
        return
    console.print(findings_table(findings))
    for finding in findings:
        if finding.recommendation:
            console.print(f"- {finding.function_name} ({finding.kind}): {finding.recommendation}")
