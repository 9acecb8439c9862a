from __future__ import annotations

from rich.text import Text

from lambdascope.analyzers import Finding
from lambdascope.tui.names import kind_name
from lambdascope.tui.widgets.nav_table import NavTable

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


class FindingsTable(NavTable):
    """Findings, most severe first; the row key indexes :attr:`findings`."""

    export_name = "findings"

    def on_mount(self) -> None:
        super().on_mount()
        self.add_columns("Severity", "Kind", "Function", "Summary")
        self.findings: list[Finding] = []
        self._by_key: dict[str, Finding] = {}

    def show(self, findings: list[Finding], name_filter: str = "") -> None:
        """Show ``findings`` (already sorted most severe first) of the functions whose name
        contains ``name_filter``."""
        needle = name_filter.lower()
        self.findings = list(findings)
        # Keyed by what the finding is about rather than its place, so the cursor stays on
        # the same finding when a refresh reorders the list.
        self._by_key = {}
        rows = []
        for finding in self.findings:
            base = f"{finding.kind}|{finding.function_name}|{finding.function_version}"
            key, n = base, 1
            while key in self._by_key:
                n += 1
                key = f"{base}|{n}"
            self._by_key[key] = finding
            if needle in finding.function_name.lower():
                severity = Text(finding.severity, style=SEVERITY_STYLE.get(finding.severity, ""))
                rows.append(
                    (
                        key,
                        (severity, kind_name(finding.kind), finding.function_name, finding.summary),
                    )
                )
        self.refill(rows)

    def finding_at(self, row_key: str | None) -> Finding | None:
        return self._by_key.get(row_key or "")
