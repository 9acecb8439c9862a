"""A self-contained HTML report: the fleet over time (plotly) and the findings with evidence.

The plotly library is embedded in the file so the report opens offline; it costs about
3.5 MB per file.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lambdascope.analyzers import run_detectors, sql
from lambdascope.analyzers.findings import Finding
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["bucket_seconds", "report_figure", "write_html_report"]


def bucket_seconds(since: timedelta) -> int:
    """About 120 points per series, never finer than a minute (CloudWatch's period)."""
    return max(60, int(since.total_seconds()) // 120)


def _series(client: QueryClient, window: Window, function_name: str | None) -> list[dict[str, Any]]:
    since = window.end - window.start
    params = {**window.parameters(function_name), "bucket_s": bucket_seconds(since)}
    return client.query(sql.TIMESERIES, params).dicts()


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def report_figure(
    client: QueryClient,
    *,
    since: timedelta,
    function_name: str | None = None,
    now: datetime | None = None,
) -> go.Figure:
    """Three stacked charts sharing the time axis, one trace per function and measure."""
    window = Window.ending(now, since)
    rows = _series(client, window, function_name)
    figure = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        subplot_titles=(
            "Duration p50 / p99 (ms)",
            "Invocations, errors and timeouts",
            "Max memory used (% of memory size)",
        ),
    )
    by_function: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_function.setdefault(row["function_name"], []).append(row)
    for name, points in sorted(by_function.items()):
        x = [p["bucket"] for p in points]
        quantiles = [list(p["duration_quantiles_ms"] or []) + [None, None] for p in points]
        figure.add_trace(
            go.Scatter(
                x=x, y=[_finite(q[0]) for q in quantiles], name=f"{name} p50", legendgroup=name
            ),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[_finite(q[1]) for q in quantiles],
                name=f"{name} p99",
                legendgroup=name,
                line={"dash": "dot"},
            ),
            row=1,
            col=1,
        )
        for measure in ("invocations", "errors", "timeouts"):
            figure.add_trace(
                go.Bar(
                    x=x, y=[p[measure] for p in points], name=f"{name} {measure}", legendgroup=name
                ),
                row=2,
                col=1,
            )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[_finite(p["max_memory_pct"]) for p in points],
                name=f"{name} memory %",
                legendgroup=name,
            ),
            row=3,
            col=1,
        )
    figure.update_layout(height=900, barmode="group", title_text="lambdascope fleet report")
    figure.update_yaxes(range=[0, 105], row=3, col=1)
    return figure


def _findings_html(findings: list[Finding]) -> str:
    if not findings:
        return "<p>No findings: nothing needs attention in this window.</p>"
    rows = []
    for f in findings:
        evidence = ", ".join(f.evidence_request_ids[:10])
        if len(f.evidence_request_ids) > 10:
            evidence += f", … ({len(f.evidence_request_ids)} in all)"
        rows.append(
            "<tr>"
            f"<td class='{html.escape(f.severity)}'>{html.escape(f.severity)}</td>"
            f"<td>{html.escape(f.kind)}</td>"
            f"<td>{html.escape(f.function_name)} ({html.escape(f.function_version)})</td>"
            f"<td>{html.escape(f.summary)}<br><small>{html.escape(f.recommendation)}</small>"
            f"<br><small>Evidence: {html.escape(evidence)}</small></td>"
            "</tr>"
        )
    return (
        "<table><tr><th>severity</th><th>kind</th><th>function</th><th>finding</th></tr>"
        + "".join(rows)
        + "</table>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: 6px; text-align: left; vertical-align: top; }
.critical { color: #b00020; font-weight: bold; }
.warning { color: #b26a00; }
.info { color: #0060a0; }
"""


def write_html_report(
    client: QueryClient,
    path: str | Path,
    since: timedelta,
    *,
    function_name: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Write the report for ``[now - since, now)`` to ``path`` and return the path."""
    window = Window.ending(now, since)
    findings = run_detectors(client, since=since, function_name=function_name, now=window.end)
    figure = report_figure(client, since=since, function_name=function_name, now=window.end)
    title = f"lambdascope report: {window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
    document = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><h2>Findings</h2>{_findings_html(findings)}"
        f"<h2>Fleet</h2>{figure.to_html(full_html=False, include_plotlyjs=True)}"
        "</body></html>"
    )
    target = Path(path)
    target.write_text(document, encoding="utf-8")
    return target
