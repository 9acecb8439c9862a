from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from lambdascope.analyzers import Finding

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


class FindingsTable(DataTable[str | Text]):
    """Findings, most severe first; the row key indexes :attr:`findings`."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("severity", "kind", "function", "summary")
        self.findings: list[Finding] = []

    def show(self, findings: list[Finding]) -> None:
        self.clear()
        self.findings = list(findings)
        for index, finding in enumerate(self.findings):
            self.add_row(
                Text(finding.severity, style=SEVERITY_STYLE.get(finding.severity, "")),
                finding.kind,
                finding.function_name,
                finding.summary,
                key=str(index),
            )

    def finding_at(self, row_key: str | None) -> Finding | None:
        if row_key is None or not row_key.isdigit() or int(row_key) >= len(self.findings):
            return None
        return self.findings[int(row_key)]
