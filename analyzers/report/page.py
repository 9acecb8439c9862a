"""The report's HTML: one self-contained page (plotly.js inlined once, no fetch of any URL).

Pure: :func:`render` turns :class:`.model.ReportData` into text. Every string from the store
(function names, summaries, log lines) is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from html import escape

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from lambdascope.analyzers import extension_overhead
from lambdascope.analyzers._format import function_label
from lambdascope.analyzers.findings import Finding
from lambdascope.analyzers.names import NOT_MEASURED, duration, figure_line, kind_name
from lambdascope.analyzers.report import charts, colors, model

__all__ = ["SECTIONS", "render"]

#: Section ids, in page order, and their headings.
SECTIONS = {
    "summary": "At a glance",
    "duration": "Duration",
    "traffic": "Traffic, errors and throttles",
    "cold-starts": "Cold starts",
    "memory": "Memory",
    "cost": "Cost",
    "extension-overhead": "The lambdascope extension's own overhead",
    "findings": "Findings",
}
MAX_EVIDENCE_SHOWN = 10

_CONFIG = {"displaylogo": False, "responsive": True}

_STYLE = f"""
:root {{ color-scheme: light; }}
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  margin: 0 auto; max-width: 1200px; padding: 1.5em 2em 4em; color: #1d2327; }}
h1 {{ margin-bottom: .2em; }}
h2 {{ margin-top: 2.2em; border-bottom: 2px solid #e3e7ea; padding-bottom: .2em; }}
.meta {{ color: #5f6b73; margin: .2em 0; }}
nav a {{ margin-right: 1em; color: {colors.CONCURRENCY}; }}
.counts {{ display: flex; flex-wrap: wrap; gap: 1em; margin: 1em 0; }}
.count {{ border: 1px solid #e3e7ea; border-left: 6px solid; border-radius: 4px;
  padding: .5em 1em; min-width: 8em; }}
.count b {{ display: block; font-size: 1.6em; }}
.invocations {{ border-left-color: {colors.INVOCATIONS}; }}
.errors {{ border-left-color: {colors.ERRORS}; }} .errors b {{ color: {colors.ERRORS}; }}
.timeouts {{ border-left-color: {colors.TIMEOUTS}; }} .timeouts b {{ color: {colors.TIMEOUTS}; }}
.throttles {{ border-left-color: {colors.THROTTLES}; }}
.throttles b {{ color: {colors.THROTTLES}; }}
.cold-starts {{ border-left-color: {colors.COLD_STARTS}; }}
.cold-starts b {{ color: {colors.COLD_STARTS}; }}
table {{ border-collapse: collapse; width: 100%; margin: .8em 0; }}
td, th {{ border-bottom: 1px solid #e3e7ea; padding: 5px 8px; text-align: left;
  vertical-align: top; }}
td.n, th.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.over {{ color: {colors.ERRORS}; font-weight: 600; }}
.finding {{ border: 1px solid #e3e7ea; border-left: 6px solid; border-radius: 4px;
  padding: .6em 1em; margin: 1em 0; }}
.severity {{ font-weight: 700; text-transform: uppercase; font-size: .8em; }}
.figures {{ color: #3d474d; font-size: .92em; }}
.evidence {{ font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .88em; }}
pre {{ background: #f5f7f8; padding: .6em .8em; white-space: pre-wrap; font-size: .85em;
  border-radius: 3px; }}
.note {{ color: #5f6b73; }}
"""


def render(data: model.ReportData) -> str:
    """The whole page."""
    title = f"lambdascope report: {data.subject}"
    body = [
        f"<h1>{escape(title)}</h1>",
        _nav(data),
        _summary(data),
        _section("duration", _duration(data)),
        _section("traffic", _traffic(data)),
        _section("cold-starts", _cold_starts(data)),
        _section("memory", _memory(data)),
        _section("cost", _cost(data)),
        _section("extension-overhead", _extension(data)),
        _section("findings", _findings(data)),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style>"
        # plotly.js inlined once for every chart: the file opens offline, from an email too.
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        "</head><body>" + "\n".join(body) + "</body></html>\n"
    )


def _section(section_id: str, content: str) -> str:
    return f"<section><h2 id='{section_id}'>{escape(SECTIONS[section_id])}</h2>{content}</section>"


def _chart(figure: go.Figure, name: str) -> str:
    return str(
        figure.to_html(
            full_html=False, include_plotlyjs=False, config=_CONFIG, div_id=f"chart-{name}"
        )
    )


def _note(text: str) -> str:
    return f"<p class='note'>{escape(text)}</p>"


def _utc(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


def _span(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _nav(data: model.ReportData) -> str:
    links = " ".join(
        f"<a href='#{sid}'>{escape(heading)}</a>"
        for sid, heading in SECTIONS.items()
        if sid != "summary"
    )
    return f"<nav>{links}</nav>"


def _summary(data: model.ReportData) -> str:
    w = data.window
    throttles = data.count("throttles")
    counts = [
        ("invocations", "invocations", data.count("invocations")),
        ("errors", "errors", data.count("errors")),
        ("timeouts", "timeouts", data.count("timeouts")),
        ("throttles", "throttles", throttles),
        ("cold-starts", "cold starts", data.count("cold_starts")),
    ]
    cards = "".join(
        f"<div class='count {css}'><b>{NOT_MEASURED if value is None else f'{value:,}'}</b>"
        f"{label}</div>"
        for css, label, value in counts
    )
    notes = []
    if throttles is None:
        notes.append(
            "Throttles unknown: no CloudWatch metric stream sent this subject's points (a "
            "throttled request never reaches the sandbox, so only the stream sees it)."
        )
    severities = [f.severity for f in data.findings]
    found = ", ".join(
        f"{severities.count(s)} {s}" for s in ("critical", "warning", "info") if s in severities
    )
    return _section(
        "summary",
        f"<p class='meta'><b>Subject:</b> {escape(data.subject)}</p>"
        f"<p class='meta'><b>Window:</b> {_utc(w.start)} to {_utc(w.end)} "
        f"({_span(w.end - w.start)}; charts in {_span(timedelta(seconds=data.bucket_s))} "
        "buckets; times in UTC)</p>"
        f"<p class='meta'><b>Generated:</b> {_utc(data.generated_at)}</p>"
        f"<div class='counts'>{cards}</div>"
        + "".join(_note(n) for n in notes)
        + f"<p>Findings: <a href='#findings'>{escape(found or 'none')}</a></p>",
    )


def _duration(data: model.ReportData) -> str:
    out = [_chart(charts.duration_figure(data), "duration")]
    if not data.function_name:
        out.append(
            _note(
                "One line per function, the most invoked first; the buttons switch every "
                "line between p50, p90 and p99."
            )
        )
    if data.left_out:
        out.append(_note("Not drawn (fewer invocations): " + ", ".join(data.left_out) + "."))
    return "".join(out)


def _traffic(data: model.ReportData) -> str:
    out = [_chart(charts.traffic_figure(data), "traffic")]
    if all(c is None for c in data.total.concurrency):
        out.append(_note("Concurrency unknown: no CloudWatch metric stream reported it."))
    if not data.function_name:
        out.append(_chart(charts.outcomes_figure(data), "outcomes"))
    return "".join(out)


def _cold_starts(data: model.ReportData) -> str:
    out = [_chart(charts.cold_start_rate_figure(data), "cold-start-rate")]
    if any(data.inits.values()):
        out.append(_chart(charts.init_histogram_figure(data), "init-histogram"))
    else:
        out.append(_note("No initialization reported its duration in this window."))
    if data.phases:
        out.append(_chart(charts.init_phases_figure(data), "init-phases"))
        out.append(
            _note(
                "The split needs the lambdascope extension's record of when the runtime "
                "started; without it, 'runtime and function code' includes the extensions "
                "starting."
            )
        )
    return "".join(out)


def _memory(data: model.ReportData) -> str:
    if not data.environments:
        return _note("No invocation reported Max Memory Used in this window.")
    out = [_chart(charts.memory_figure(data), "memory")]
    shown = len(data.environments)
    out.append(
        _note(
            f"The {shown} fullest of {data.environment_count} execution environments (by "
            "Max Memory Used as a share of the memory size), and every leaking one."
        )
    )
    return "".join(out)


def _money(usd: float) -> str:
    return f"${usd:,.2f}" if abs(usd) >= 0.01 or usd == 0 else f"${usd:.4f}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(
        f"<th class='n'>{escape(h)}</th>" if i in numeric else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='n'>{cell}</td>" if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cost(data: model.ReportData) -> str:
    if not data.costs:
        return _note("Nothing billed in this window.")
    out = [
        _chart(charts.cost_figure(data), "cost"),
        _table(
            ["function", "architecture", "region", "requests", "GB-s", "cost", "per month"],
            (
                (
                    escape(c.function_name),
                    escape(c.architecture),
                    escape(c.region),
                    f"{c.invocations:,}",
                    f"{c.gb_seconds:,.1f}",
                    _money(c.total_cost_usd),
                    "~" + _money(c.monthly_cost_usd),
                )
                for c in data.costs
            ),
            {3, 4, 5, 6},
        ),
        _note("Estimated from the price table in use; per month at this window's rate."),
    ]
    savings = [f for f in data.findings if f.kind in ("memory_rightsizing", "arm64_savings")]
    out.append("<h3>What if</h3>")
    if savings:
        out.append(
            _table(
                ["function", "change", "saving per month", "why"],
                (_what_if(f) for f in savings),
                {2},
            )
        )
    else:
        out.append(_note("No right-sizing or architecture change would save money here."))
    return "".join(out)


def _what_if(f: Finding) -> Sequence[str]:
    n = f.numbers
    if f.kind == "memory_rightsizing":
        change = (
            f"memory {n.get('memory_size_mb', 0):,.0f} MB → "
            f"{n.get('suggested_memory_mb', 0):,.0f} MB (peak used "
            f"{n.get('max_memory_used_mb', 0):,.0f} MB, "
            f"p99 {n.get('p99_memory_used_mb', 0):,.0f} MB)"
        )
    else:
        change = "x86_64 → arm64"
    return (
        escape(f.function_name),
        escape(change),
        _money(n.get("monthly_saving_usd", 0.0)),
        escape(f.recommendation),
    )


def _extension(data: model.ReportData) -> str:
    if not data.extension:
        return _note("The lambdascope extension sent no figures of its own in this window.")
    budget = extension_overhead.BUDGET

    def cell(value: float | None, limit: float, text: str) -> str:
        if value is None:
            return NOT_MEASURED
        return f"<span class='over'>{text}</span>" if value > limit else text

    rows = (
        (
            escape(e.function_name),
            f"{e.environments:,}",
            cell(e.startup_ms_p95, budget.startup_ms_p95, duration(e.startup_ms_p95)),
            cell(
                e.post_runtime_ms_p95, budget.post_runtime_ms_p95, duration(e.post_runtime_ms_p95)
            ),
            cell(e.peak_rss_mb, budget.peak_rss_mb, f"{e.peak_rss_mb or 0:,.1f} MB"),
        )
        for e in data.extension
    )
    return _table(
        [
            "function",
            "environments",
            f"start-up p95 (budget {duration(budget.startup_ms_p95)})",
            f"after the response p95 (budget {duration(budget.post_runtime_ms_p95)})",
            f"peak memory (budget {budget.peak_rss_mb:g} MB)",
        ],
        rows,
        {1, 2, 3, 4},
    ) + _note(
        "Start-up adds to each cold start's init; time after the response is billed on every "
        "invocation; its memory comes out of the function's."
    )


def _findings(data: model.ReportData) -> str:
    if not data.findings:
        return _note("No findings: nothing needs attention in this window.")
    return "".join(_finding(f, data) for f in data.findings)


def _finding(f: Finding, data: model.ReportData) -> str:
    color = colors.SEVERITIES.get(f.severity, colors.CONCURRENCY)
    subject = function_label(f.function_name, f.function_version) if f.function_name else "fleet"
    parts = [
        f"<div class='finding' style='border-left-color:{color}'>",
        f"<span class='severity' style='color:{color}'>{escape(f.severity)}</span> · "
        f"<b>{escape(kind_name(f.kind))}</b> · {escape(subject)}",
        f"<p>{escape(f.summary)}</p>",
    ]
    if f.numbers:
        parts.append(f"<p class='figures'>{escape(figure_line(f.numbers))}</p>")
    if f.recommendation:
        parts.append(f"<p><b>What to do:</b> {escape(f.recommendation)}</p>")
    if f.evidence_request_ids:
        ids = list(f.evidence_request_ids[:MAX_EVIDENCE_SHOWN])
        more = len(f.evidence_request_ids) - len(ids)
        text = ", ".join(ids) + (f", and {more} more" if more > 0 else "")
        parts.append(f"<p class='evidence'>Evidence: {escape(text)}</p>")
        for rid in f.evidence_request_ids:
            lines = data.log_excerpts.get(rid)
            if lines:
                rendered = "\n".join(
                    f"{line.timestamp:%H:%M:%S}.{line.timestamp.microsecond // 1000:03d} "
                    f"{line.stream:<8} {line.level:<5} {line.message.rstrip()}"
                    for line in lines
                )
                parts.append(
                    f"<p class='evidence'>Last log lines of {escape(rid)}:</p>"
                    f"<pre>{escape(rendered)}</pre>"
                )
    parts.append("</div>")
    return "".join(parts)
