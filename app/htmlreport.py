"""A single-file HTML report of one run (findings, evidence, charts) to attach to a ticket.

Everything that came from the user's code (module and class names, file paths, exception messages) is
HTML-escaped; chart data is embedded as JSON with "</" broken up so no string can close the script tag.
plotly.js is inlined once, so the file opens offline.
"""
from __future__ import annotations

import datetime as dt
import html
import json

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from app import figures
from app.data import RunView, fmt_bytes, severity_counts
from app.summaries import data_wait_share, nonfinite_steps
from probes.stats import loader_workers
from app.evidence import evidence_chart, evidence_tables

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1f2328;background:#fff}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em}
.card{border:1px solid #d0d7de;border-radius:8px;padding:1em 1.2em;margin:1em 0}
.sev{font-weight:700;text-transform:uppercase;font-size:.8em;padding:.15em .5em;border-radius:4px;color:#fff}
.error{background:#cf222e}.warning{background:#bf8700}.info{background:#0969da}
code{background:#f6f8fa;padding:.1em .3em;border-radius:4px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left}
.muted{color:#59636e}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _figure_html(fig: go.Figure, div_id: str) -> str:
    payload = fig.to_json().replace("<", "\\u003c")     # a JSON string can never close the <script>
    return (f'<div id="{div_id}" style="width:100%"></div>'
            f'<script>(function(){{var f={payload};Plotly.newPlot("{div_id}",f.data,f.layout,'
            f'{{responsive:true,displaylogo:false}});}})();</script>')


def _table(frame) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


def render(run: RunView) -> str:
    meta = run.meta
    counts = severity_counts(run.findings)
    parts = [f"<h1>ForgeScope report: {_e(meta.get('model') or run.name)}</h1>",
             f"<p class='muted'>Run <code>{_e(run.name)}</code> · {run.steps:,} step{'' if run.steps == 1 else 's'}"
             f" on {_e(meta.get('device'))}"
             f" · status {_e(run.status)} · torch {_e(meta.get('torch'))} · model file "
             f"<code>{_e(meta.get('model_location') or meta.get('model_file'))}</code> · generated "
             f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>",
             f"<p>{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info.</p>"]
    if meta.get("error"):
        parts.append(f"<div class='card'><span class='sev error'>run failed</span> {_e(meta['error'])}</div>")
    parts.append("<h2>Findings</h2>")
    if not run.findings:
        parts.append("<p>No problems found.</p>")
    for i, f in enumerate(run.findings):
        where = " · ".join(_e(x) for x in (f.get("module") or None, f.get("location")) if x)
        card = [f"<div class='card'><span class='sev {_e(f['severity'])}'>{_e(f['severity'])}</span> "
                f"<code>{_e(f['code'])}</code> <strong>{_e(f['title'])}</strong>",
                f"<p class='muted'>{where}</p>" if where else "", f"<p>{_e(f.get('detail'))}</p>"]
        plain, tables = evidence_tables(f.get("evidence") or {})
        if len(plain):
            card.append(_table(plain))
        for name, table in tables:
            card.append(f"<p class='muted'>{_e(name)}</p>{_table(table)}")
        chart = evidence_chart(f, run)
        if chart is not None:
            card.append(_figure_html(chart, f"finding-{i}"))
        if f.get("fix"):
            card.append(f"<p><strong>Fix:</strong> {_e(f['fix'])}</p>")
        card.append("</div>")
        parts.append("".join(card))
    parts.append("<h2>Training</h2>")
    parts.append(_figure_html(figures.loss_figure(run.scalars, marks=nonfinite_steps(run), height=300), "loss"))
    grad = run.get("grad_norm")
    if not grad.empty:
        parts.append(_figure_html(figures.grad_heatmap(grad, nonfinite_steps(run)), "gradients"))
    ratio = run.get("update_ratio")
    if not ratio.empty:
        parts.append(_figure_html(figures.update_ratio_figure(ratio), "weights"))
    parts.append(_figure_html(figures.memory_figure(run.scalars), "memory"))
    share = data_wait_share(run.scalars, loader_workers(run.meta))
    parts.append(f"<p>Data wait: {_e('–' if share is None else f'{share:.0%}')} of each step.</p>")
    parts.append(_figure_html(figures.data_loading_figure(run.scalars), "data"))
    rss = run.scalars.get("mem.rss_bytes")
    if rss is not None and rss.notna().any():
        parts.append(f"<p class='muted'>Process RSS at the end: {_e(fmt_bytes(float(rss.dropna().iloc[-1])))}</p>")
    title = _e(f"ForgeScope · {meta.get('model') or run.name}")
    findings_json = json.dumps(run.findings, default=str).replace("<", "\\u003c")   # inert inside <script>
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{_CSS}</style><script>{get_plotlyjs()}</script></head><body>{''.join(parts)}"
            f"<script type='application/json' id='forgescope-findings'>"
            f"{findings_json}</script></body></html>")
