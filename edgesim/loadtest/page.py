"""The HTML report: one self-contained page of plots drawn from the report document.

The plots are inline SVG made here: no script, no stylesheet or font from
anywhere, so the page opens offline, in a mail attachment or a CI artefact,
exactly as written. Three plots (latency over time, throughput and hit
ratio over time, the latency distribution) and the summary numbers.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

from edgesim.loadtest.report import function_line, percent

__all__ = ["render"]

_W, _H = 760, 260  # plot size in px
_L, _R, _T, _B = 64, 64, 28, 40  # margins
_COLORS = {"p50": "#2b8a3e", "p90": "#e67700", "p99": "#c92a2a", "rps": "#1864ab", "hit": "#7048e8"}

Points = Sequence[tuple[float, float]]


def _nice(top: float) -> tuple[float, list[float]]:
    """A round axis maximum at or above ``top`` and ticks up to it."""
    if top <= 0:
        return 1.0, [0.0, 0.5, 1.0]
    step = 10 ** math.floor(math.log10(top / 4))
    for factor in (1, 2, 2.5, 5, 10):
        if top / (step * factor) <= 5:
            step *= factor
            break
    count = math.ceil(top / step - 1e-9)
    return step * count, [step * i for i in range(count + 1)]


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _text(x: float, y: float, content: str, cls: str = "tick", anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">'
        f"{html.escape(content)}</text>"
    )


def _axes(
    x_max: float,
    x_label: str,
    y_ticks: list[float],
    y_max: float,
    y_label: str,
    x_ticks: bool = True,
) -> str:
    pw, ph = _W - _L - _R, _H - _T - _B
    parts = [f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" class="frame"/>']
    for tick in y_ticks:
        y = _T + ph - tick / y_max * ph
        parts.append(f'<line x1="{_L}" x2="{_L + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{_L - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt(tick)}</text>'
        )
    for tick in _nice(x_max)[1] if x_ticks else []:
        if tick > x_max * 1.0001:
            break
        x = _L + tick / x_max * pw
        parts.append(_text(x, _T + ph + 16, _fmt(tick), anchor="middle"))
    parts.append(_text(_L + pw / 2, _H - 6, x_label, "label", "middle"))
    parts.append(
        f'<text x="14" y="{_T + ph / 2}" class="label" text-anchor="middle" '
        f'transform="rotate(-90 14 {_T + ph / 2})">{html.escape(y_label)}</text>'
    )
    return "".join(parts)


def _line(points: Points, x_max: float, y_max: float, color: str, name: str) -> str:
    pw, ph = _W - _L - _R, _H - _T - _B
    coords = " ".join(
        f"{_L + x / x_max * pw:.1f},{_T + ph - min(y, y_max) / y_max * ph:.1f}" for x, y in points
    )
    return (
        f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2" '
        f'data-series="{html.escape(name)}"><title>{html.escape(name)}</title></polyline>'
    )


def _legend(items: list[tuple[str, str]]) -> str:
    parts, x = [], _L
    for name, color in items:
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{x + 16}" y="18" class="tick">{html.escape(name)}</text>')
        x += 24 + 8 * len(name)
    return "".join(parts)


def _svg(plot_id: str, title: str, body: str) -> str:
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg id="{plot_id}" class="plot" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{html.escape(title)}">{body}</svg></figure>'
    )


def _mid(row: dict[str, Any]) -> float:
    return float(row["t"]) + float(row["seconds"]) / 2


def _latency_plot(timeline: list[dict[str, Any]]) -> str:
    x_max = max((r["t"] + r["seconds"] for r in timeline), default=1.0)
    top = max((r["p99_ms"] for r in timeline if r["answered"]), default=1.0)
    y_max, ticks = _nice(top * 1.1)
    body = _axes(x_max, "seconds into the measurement", ticks, y_max, "latency (ms)")
    for key in ("p50", "p90", "p99"):
        points = [(_mid(r), r[f"{key}_ms"]) for r in timeline if r["answered"]]
        body += _line(points, x_max, y_max, _COLORS[key], key)
    body += _legend([(k, _COLORS[k]) for k in ("p50", "p90", "p99")])
    return _svg("latency-over-time", "Latency over time (per second)", body)


def _throughput_plot(timeline: list[dict[str, Any]]) -> str:
    x_max = max((r["t"] + r["seconds"] for r in timeline), default=1.0)
    top = max((r["requests_per_s"] for r in timeline), default=1.0)
    y_max, ticks = _nice(top * 1.1)
    body = _axes(
        x_max, "seconds into the measurement", ticks, y_max, "answered requests per second"
    )
    body += _line(
        [(_mid(r), r["requests_per_s"]) for r in timeline], x_max, y_max, _COLORS["rps"], "req/s"
    )
    ratios = [(_mid(r), r["hit_ratio"] * y_max) for r in timeline if r["hit_ratio"] is not None]
    if ratios:  # the hit ratio on the right-hand axis, 0 to 100%
        body += _line(ratios, x_max, y_max, _COLORS["hit"], "hit ratio")
        ph = _H - _T - _B
        for share in (0, 0.5, 1):
            y = _T + ph - share * ph
            body += f'<text x="{_W - _R + 6}" y="{y + 4:.1f}" class="tick">{share:.0%}</text>'
    body += _legend(
        [("req/s", _COLORS["rps"])] + ([("hit ratio (right)", _COLORS["hit"])] if ratios else [])
    )
    return _svg("throughput-over-time", "Throughput and cache hit ratio over time", body)


def _distribution_plot(buckets: list[list[int]], latency: dict[str, float]) -> str:
    """Counts in log-spaced latency bins, with the percentiles marked."""
    if not buckets:
        return _svg(
            "latency-distribution",
            "Latency distribution",
            _axes(1, "latency (ms)", [0, 1], 1, "requests"),
        )
    low = max(1, buckets[0][0])
    high = max(low * 2, buckets[-1][1] + 1)
    bins = 48
    span = math.log(high / low)
    counts = [0] * bins
    for b_low, b_high, n in buckets:
        mid = max(low, (b_low + b_high) / 2)
        counts[min(bins - 1, int(math.log(mid / low) / span * bins))] += n
    y_max, ticks = _nice(max(counts) * 1.1)
    pw, ph = _W - _L - _R, _H - _T - _B
    body = _axes(1, "latency", ticks, y_max, "requests", x_ticks=False)
    for i, n in enumerate(counts):
        if n:
            h = n / y_max * ph
            x = _L + i / bins * pw
            edge = low * math.exp(span * i / bins) / 1000
            body += (
                f'<rect x="{x:.1f}" y="{_T + ph - h:.1f}" width="{pw / bins - 1:.1f}" '
                f'height="{h:.1f}" '
                f'class="bar"><title>{n:,} requests from {edge:.3g} ms</title></rect>'
            )
    for decade in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for step in (1, 2, 5):  # 1-2-5 ticks on the log axis
            value = step * 10**decade
            if low <= value <= high:
                x = _L + math.log(value / low) / span * pw
                body += _text(x, _T + ph + 16, f"{_fmt(value / 1000)} ms", anchor="middle")
    for key in ("p50", "p99", "p99.9"):
        value = latency[key] * 1000
        if low <= value <= high:
            x = _L + math.log(value / low) / span * pw
            body += f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_T}" y2="{_T + ph}" class="mark"/>'
            body += f'<text x="{x + 3:.1f}" y="{_T + 12}" class="tick">{key}</text>'
    return _svg("latency-distribution", "Latency distribution (log scale)", body)


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _numbers(doc: dict[str, Any]) -> str:
    lat = doc["latency_ms"]
    rows = [
        ("target", doc["target"]),
        ("load", f"{doc['load']['mode']}, {doc['load']['processes']} generator process(es)"),
        ("measured", f"{doc['duration_s']:.1f} s, {doc['requests']:,} requests"),
        ("throughput", f"{doc['throughput_rps']:,.0f} req/s answered"),
        (
            "latency",
            ", ".join(f"{k} {lat[k]:.2f} ms" for k in ("p50", "p90", "p99", "p99.9", "max")),
        ),
        ("statuses", ", ".join(f"{k}: {v:,}" for k, v in doc["statuses"].items()) or "-"),
        ("X-Cache", ", ".join(f"{k}: {v:,}" for k, v in doc["x_cache"].items()) or "-"),
        (
            "hit ratio / origin offload",
            f"{percent(doc['hit_ratio'])} / {percent(doc['origin_offload'])}",
        ),
        ("errors", ", ".join(f"{k}: {v:,}" for k, v in doc["errors"].items()) or "none"),
    ]
    edge = doc.get("edge") or {}
    for name, f in edge.get("functions", {}).items():
        rows.append((f"function {name}", function_line(f)))
    cost = doc.get("cost")
    if cost and cost["functions"]:
        rows.append(
            (
                "AWS cost (functions)",
                f"${cost['per_million_requests_usd']:,.4f} per million requests, "
                f"${cost['per_month_usd']:,.2f} per month at this rate "
                f"(list prices as of {cost['prices']['as_of']})",
            )
        )
    return _table(rows)


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #212529; max-width: 820px; }
h1 { font-size: 20px; } figure { margin: 16px 0; }
figcaption { font-weight: 600; margin-bottom: 4px; } table { border-collapse: collapse; }
th { text-align: left; padding: 2px 16px 2px 0; vertical-align: top; }
.frame { fill: #fff; stroke: #adb5bd; } .grid { stroke: #e9ecef; }
.tick { font-size: 11px; fill: #495057; } .label { font-size: 12px; fill: #212529; }
.bar { fill: #4dabf7; } .mark { stroke: #c92a2a; stroke-dasharray: 4 3; }
.warning { color: #c92a2a; }
"""


def render(doc: dict[str, Any]) -> str:
    """The whole page for a report document."""
    warnings = "".join(f'<p class="warning">Warning: {html.escape(w)}</p>' for w in doc["warnings"])
    data = html.escape(
        json.dumps({k: doc[k] for k in ("latency_ms", "throughput_rps", "hit_ratio")})
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>edgesim loadtest: {html.escape(doc['target'])}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>edgesim loadtest, {html.escape(doc['started_at'])}</h1>{warnings}"
        f"{_numbers(doc)}"
        f"{_latency_plot(doc['timeline'])}{_throughput_plot(doc['timeline'])}"
        f"{_distribution_plot(doc['histogram']['buckets'], doc['latency_ms'])}"
        f'<p data-summary="{data}"></p></body></html>\n'
    )
