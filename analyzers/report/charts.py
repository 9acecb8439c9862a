"""The report's charts: pure functions from :class:`.model.ReportData` to plotly figures.

Colours come from :mod:`.colors` only, so errors are the same red in every chart. Time charts
share the window as their x axis and leave a gap where a bucket measured nothing
(``connectgaps=False``): a line drawn across an hour without traffic would invent one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lambdascope.analyzers.names import duration
from lambdascope.analyzers.report import colors, model

__all__ = [
    "COLD_START_RATE_TITLE",
    "COST_TITLE",
    "DURATION_TITLE",
    "INIT_HISTOGRAM_TITLE",
    "INIT_PHASES_TITLE",
    "MEMORY_TITLE",
    "OUTCOMES_TITLE",
    "TRAFFIC_TITLE",
    "cold_start_rate_figure",
    "cost_figure",
    "duration_figure",
    "init_histogram_figure",
    "init_phases_figure",
    "memory_figure",
    "outcomes_figure",
    "traffic_figure",
]

DURATION_TITLE = "Duration p50 / p90 / p99"
TRAFFIC_TITLE = "Invocations, errors, timeouts and throttles against concurrency"
OUTCOMES_TITLE = "Outcomes by function"
COLD_START_RATE_TITLE = "Cold-start rate"
INIT_HISTOGRAM_TITLE = "Init duration by initialization type"
INIT_PHASES_TITLE = "Where the median cold start goes"
MEMORY_TITLE = "Max Memory Used per execution environment"
COST_TITLE = "Cost per function over the window"

_FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"
#: Durations further apart than this (largest over smallest) are drawn on a log axis.
LOG_SPREAD = 30
PERCENTILES = (("p50", colors.P50), ("p90", colors.P90), ("p99", colors.P99))


def _layout(figure: go.Figure, title: str, *, height: int = 380) -> go.Figure:
    figure.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"},
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 30, "t": 60, "b": 40},
        font={"family": _FONT, "size": 12},
        legend={"orientation": "h", "y": -0.18, "x": 0, "traceorder": "normal"},
        hoverlabel={"namelength": -1},
    )
    return figure


def _time_axis(figure: go.Figure, data: model.ReportData) -> None:
    figure.update_xaxes(range=[data.window.start, data.window.end])
    figure.update_layout(hovermode="x unified")


def _line(
    x: Sequence[datetime], y: Sequence[float | None], name: str, color: str, **kwargs: object
) -> go.Scatter:
    return go.Scatter(
        x=list(x),
        y=list(y),
        name=name,
        mode="lines+markers",
        marker={"size": 4, "color": color},
        line={"color": color, "width": 2},
        connectgaps=False,
        **kwargs,
    )


def duration_figure(data: model.ReportData) -> go.Figure:
    """One function: its p50, p90 and p99 with its timeout dashed. The fleet: the p99 of each
    most-invoked function, buttons switching every trace to p50 or p90."""
    figure = go.Figure()
    if data.function_name:
        s = data.total
        for (name, color), values in zip(PERCENTILES, (s.p50_ms, s.p90_ms, s.p99_ms), strict=True):
            figure.add_trace(_line(s.buckets, values, name, color))
        if s.timeout_ms:
            figure.add_hline(
                y=s.timeout_ms,
                line={"color": colors.TIMEOUTS, "dash": "dash", "width": 1.5},
                annotation_text=f"timeout {duration(s.timeout_ms)}",
                annotation_font_color=colors.TIMEOUTS,
            )
    else:
        charted = [data.series[n] for n in data.charted if n in data.series]
        for pick, (percentile, _) in enumerate(PERCENTILES):
            for i, s in enumerate(charted):
                values = (s.p50_ms, s.p90_ms, s.p99_ms)[pick]
                figure.add_trace(
                    _line(
                        s.buckets,
                        values,
                        f"{s.name} {percentile}",
                        colors.FUNCTIONS[i % len(colors.FUNCTIONS)],
                        legendgroup=s.name,
                        visible=percentile == "p99",
                    )
                )
        n = len(charted)
        figure.update_layout(
            updatemenus=[
                {
                    "type": "buttons",
                    "direction": "right",
                    "x": 1,
                    "xanchor": "right",
                    "y": 1.15,
                    "active": 2,
                    "buttons": [
                        {
                            "label": percentile,
                            "method": "restyle",
                            "args": [{"visible": [k == pick for k in range(3) for _ in range(n)]}],
                        }
                        for pick, (percentile, _) in enumerate(PERCENTILES)
                    ],
                }
            ]
        )
    _layout(figure, DURATION_TITLE)
    if _spread(figure) > LOG_SPREAD:
        # A 60 s batch job beside 100 ms APIs: on a linear axis the APIs are one flat line.
        figure.update_yaxes(title_text="ms (log scale)", type="log", dtick=1)
    else:
        figure.update_yaxes(title_text="ms", rangemode="tozero")
    _time_axis(figure, data)
    return figure


def _spread(figure: go.Figure) -> float:
    values = [v for trace in figure.data for v in (trace.y or ()) if v]
    return max(values) / min(values) if values else 1.0


def traffic_figure(data: model.ReportData) -> go.Figure:
    """Stacked per bucket: invocations that succeeded, errors, timeouts, and the requests
    Lambda throttled; concurrency on the right axis, with the reserved concurrency dashed."""
    s = data.total
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    x = s.buckets
    for name, values, color in (
        ("succeeded", s.succeeded, colors.INVOCATIONS),
        ("errors", s.errors, colors.ERRORS),
        ("timeouts", s.timeouts, colors.TIMEOUTS),
    ):
        figure.add_trace(go.Bar(x=x, y=values, name=name, marker_color=color), secondary_y=False)
    if any(t is not None for t in s.throttles):
        figure.add_trace(
            go.Bar(x=x, y=s.throttles, name="throttles", marker_color=colors.THROTTLES),
            secondary_y=False,
        )
    if any(c is not None for c in s.concurrency):
        figure.add_trace(
            _line(x, s.concurrency, "concurrency (peak)", colors.CONCURRENCY), secondary_y=True
        )
        if data.reserved_concurrency is not None:
            figure.add_trace(
                go.Scatter(
                    x=[data.window.start, data.window.end],
                    y=[data.reserved_concurrency] * 2,
                    name=f"reserved concurrency {data.reserved_concurrency}",
                    mode="lines",
                    line={"color": colors.LIMIT, "dash": "dash", "width": 1.5},
                ),
                secondary_y=True,
            )
        figure.update_yaxes(
            title_text="concurrent executions",
            rangemode="tozero",
            tickmode="auto",
            showgrid=False,
            secondary_y=True,
        )
    _layout(figure, TRAFFIC_TITLE)
    figure.update_layout(barmode="stack", bargap=0.1)
    figure.update_yaxes(title_text=f"per {_bucket_text(data.bucket_s)}", secondary_y=False)
    _time_axis(figure, data)
    return figure


def outcomes_figure(data: model.ReportData) -> go.Figure:
    """Each function's invocations over the window by outcome, the most invoked on top."""
    summaries = sorted(data.summaries, key=lambda s: (s.invocations, s.function_name))
    names = [s.function_name for s in summaries]
    figure = go.Figure()
    for name, values, color in (
        (
            "succeeded",
            [max(0, s.invocations - s.errors - s.timeouts) for s in summaries],
            colors.INVOCATIONS,
        ),
        ("errors", [s.errors for s in summaries], colors.ERRORS),
        ("timeouts", [s.timeouts for s in summaries], colors.TIMEOUTS),
        ("throttles", [s.throttles or 0 for s in summaries], colors.THROTTLES),
    ):
        figure.add_trace(go.Bar(y=names, x=values, name=name, orientation="h", marker_color=color))
    _layout(figure, OUTCOMES_TITLE, height=max(220, 90 + 34 * len(names)))
    figure.update_layout(barmode="stack")
    figure.update_xaxes(title_text="requests in the window")
    return figure


def cold_start_rate_figure(data: model.ReportData) -> go.Figure:
    s = data.total
    rate = [None if r is None else 100 * r for r in s.cold_start_rate]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Bar(
            x=s.buckets,
            y=s.cold_starts,
            name="cold starts",
            marker_color=colors.PROACTIVE_INIT,
            opacity=0.6,
        ),
        secondary_y=True,
    )
    figure.add_trace(
        _line(s.buckets, rate, "cold-start rate (%)", colors.COLD_STARTS), secondary_y=False
    )
    _layout(figure, COLD_START_RATE_TITLE, height=320)
    figure.update_yaxes(title_text="% of invocations", rangemode="tozero", secondary_y=False)
    figure.update_yaxes(
        title_text="cold starts",
        rangemode="tozero",
        tickmode="auto",
        showgrid=False,
        secondary_y=True,
    )
    _time_axis(figure, data)
    return figure


_INIT_COLORS = {
    model.ON_DEMAND: colors.ON_DEMAND_INIT,
    model.PROACTIVE: colors.PROACTIVE_INIT,
    model.PROVISIONED: colors.PROVISIONED_INIT,
    model.SNAPSTART: colors.SNAPSTART_INIT,
}


def init_histogram_figure(data: model.ReportData) -> go.Figure:
    """Init durations stacked by initialization type: only the on-demand ones kept a request
    waiting; provisioned, proactive and SnapStart inits ran ahead of demand."""
    figure = go.Figure()
    for kind in model.INIT_KINDS:
        values = data.inits.get(kind) or []
        if values:
            figure.add_trace(
                go.Histogram(
                    x=values,
                    name=f"{kind} ({len(values)})",
                    marker_color=_INIT_COLORS[kind],
                    nbinsx=40,
                )
            )
    _layout(figure, INIT_HISTOGRAM_TITLE, height=320)
    figure.update_layout(barmode="stack", bargap=0.05)
    figure.update_xaxes(title_text="init duration (ms)", rangemode="tozero")
    figure.update_yaxes(title_text="initializations")
    return figure


def init_phases_figure(data: model.ReportData) -> go.Figure:
    """Per function, the median felt init split into the extensions starting, the runtime and
    function code, and the extensions after it."""
    phases = list(reversed(data.phases))
    labels = [p.label for p in phases]
    figure = go.Figure()
    for name, values, color in (
        (
            "extensions starting",
            [p.extensions_before_runtime_ms for p in phases],
            colors.EXTENSIONS_BEFORE,
        ),
        (
            "runtime and function code",
            [p.runtime_and_function_ms for p in phases],
            colors.RUNTIME_AND_FUNCTION,
        ),
        (
            "extensions after the runtime",
            [p.extensions_after_runtime_ms for p in phases],
            colors.EXTENSIONS_AFTER,
        ),
    ):
        if any(v is not None for v in values):
            figure.add_trace(
                go.Bar(y=labels, x=values, name=name, orientation="h", marker_color=color)
            )
    _layout(figure, INIT_PHASES_TITLE, height=max(220, 90 + 34 * len(labels)))
    figure.update_layout(barmode="stack")
    figure.update_xaxes(title_text="median ms of the cold starts users felt")
    return figure


def memory_figure(data: model.ReportData) -> go.Figure:
    """Max Memory Used of each invocation of the fullest environments, the memory size dashed
    and each leak's slope written at its last point."""
    figure = go.Figure()
    sizes: dict[int, list[str]] = {}
    for i, env in enumerate(data.environments):
        color = colors.ENVIRONMENTS[i % len(colors.ENVIRONMENTS)]
        figure.add_trace(
            go.Scatter(
                x=env.times,
                y=env.used_mb,
                name=env.label,
                mode="lines+markers",
                marker={"size": 4, "color": color},
                line={"color": color, "width": 1.5},
                text=env.request_ids,
                hovertemplate="%{y:.0f} MB · %{text}<extra>" + env.label + "</extra>",
            )
        )
        if env.memory_size_mb:
            sizes.setdefault(env.memory_size_mb, [])
            if env.function_name not in sizes[env.memory_size_mb]:
                sizes[env.memory_size_mb].append(env.function_name)
        if env.leak_mb_per_invocation is not None and env.times:
            text = f"leaks {env.leak_mb_per_invocation:.1f} MB per invocation"
            if env.invocations_left is not None:
                text += f"; out of memory in ~{env.invocations_left:.0f} invocations"
            figure.add_annotation(
                x=env.times[-1],
                y=env.used_mb[-1],
                text=text,
                showarrow=True,
                arrowcolor=colors.MEMORY,
                font={"color": colors.MEMORY},
                ax=-40,
                ay=-40,
            )
    for size, functions in sorted(sizes.items()):
        figure.add_trace(
            go.Scatter(
                x=[data.window.start, data.window.end],
                y=[size, size],
                name=f"memory size {size:,} MB ({', '.join(functions)})",
                mode="lines",
                line={"color": colors.MEMORY, "dash": "dash", "width": 1.5},
                hoverinfo="name",
            )
        )
    _layout(figure, MEMORY_TITLE)
    figure.update_yaxes(title_text="MB", rangemode="tozero")
    figure.update_xaxes(range=[data.window.start, data.window.end])
    return figure


def cost_figure(data: model.ReportData) -> go.Figure:
    rows = sorted(data.costs, key=lambda c: c.total_cost_usd)
    figure = go.Figure(
        go.Bar(
            y=[c.function_name for c in rows],
            x=[c.total_cost_usd for c in rows],
            orientation="h",
            marker_color=colors.COST,
            text=[f"${c.total_cost_usd:,.4f} (~${c.monthly_cost_usd:,.2f}/month)" for c in rows],
            textposition="auto",
            name="cost",
        )
    )
    _layout(figure, COST_TITLE, height=max(220, 90 + 34 * len(rows)))
    figure.update_xaxes(title_text="USD over the window")
    return figure


def _bucket_text(bucket_s: int) -> str:
    minutes = bucket_s // 60
    if minutes % 60 == 0:
        hours = minutes // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return "minute" if minutes == 1 else f"{minutes} minutes"
