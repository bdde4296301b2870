"""A finding's evidence, drawn: a small table of its numbers and, where a picture helps, a chart.

Pure functions over a finding dict and the run's data; the Findings page and the HTML report share them.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app import figures
from app.data import RunView, fmt_bytes


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_fmt(v) for v in value[:8])
        return shown + (f", … ({len(value)} in all)" if len(value) > 8 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in list(value.items())[:8])
    return str(value)


# evidence keys that only feed the chart (long step/value lists): not repeated in the table
_CHART_ONLY = {"steps", "values", "bytes"}


def evidence_tables(evidence: dict[str, Any]) -> tuple[pd.DataFrame, list[tuple[str, pd.DataFrame]]]:
    """(key/value table of the plain numbers, [(name, table)] for lists of records such as layers)."""
    rows, tables = [], []
    for key, value in evidence.items():
        if key in _CHART_ONLY:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            frame = pd.DataFrame(value[:20])
            tables.append((key, frame.map(_fmt) if hasattr(frame, "map") else frame.applymap(_fmt)))
        else:
            rows.append({"evidence": key.replace("_", " "), "value": _fmt(value)})
    return pd.DataFrame(rows, columns=["evidence", "value"]), tables


def _bytes_series(evidence: dict) -> go.Figure | None:
    steps, values = evidence.get("steps"), evidence.get("bytes")
    if not steps or not values:
        return None
    return figures.series_figure(steps, [v / (1 << 20) for v in values], y_title="memory (MiB)",
                                 title=f"{evidence.get('series', 'memory')}: "
                                       f"{fmt_bytes(evidence.get('slope_bytes_per_step'))}/step")


def memory_chart(ev: dict, run: RunView | None) -> go.Figure | None:
    return _bytes_series(ev)


def exploding_chart(ev: dict, run: RunView | None) -> go.Figure | None:
    """exploding-gradients: the total gradient norm per step when it grew over the run, else as for depth."""
    if ev.get("steps") and ev.get("values"):
        fig = figures.series_figure(ev["steps"], ev["values"], y_title="total ‖grad‖ (log)",
                                    title="Total gradient norm per step")
        fig.update_yaxes(type="log")
        return fig
    return gradient_depth_chart(ev, run)


def gradient_depth_chart(ev: dict, run: RunView | None) -> go.Figure | None:
    """vanishing- and exploding-gradients across depth: the finding's own blocks in depth order (what it
    measured; a chart computed again from the run could disagree with the card)."""
    if not ev.get("blocks"):
        return None
    hot = {d.get("module") for d in ev.get("layers", []) if isinstance(d, dict)}
    return figures.layer_bars({b["block"] or "(model)": b["grad_rms"] for b in ev["blocks"]
                               if b.get("grad_rms") and np.isfinite(b["grad_rms"])},
                              title="RMS gradient per weight, by block",
                              x_title="RMS gradient (log)", highlight={h or "(model)" for h in hot})


def accumulated_gradients_chart(ev: dict, run: RunView | None) -> go.Figure | None:
    if not ev.get("parameters"):
        return None
    # the watched gradients: what the optimizer applied at the previous step, and what .grad held at this
    # one, never cleared in between
    return figures.paired_bars({p["name"]: (p["applied_norm"], p["now_norm"]) for p in ev["parameters"]
                                if isinstance(p, dict) and "applied_norm" in p},
                               names=("applied at the previous step", "in .grad at this step"),
                               title=f"‖grad‖ piles up: step {ev.get('step', '?')}", x_title="‖grad‖ (L2 norm)")


def update_ratio_chart(ev: dict, run: RunView | None) -> go.Figure | None:
    """update-ratio: the median ||dW||/||W|| of every weight the finding judged, those it names highlighted
    (an older log's finding holds only the named ones)."""
    judged = ev.get("judged") or ev.get("layers") or []
    values = {d["name"]: float(d["update_ratio"]) for d in judged
              if isinstance(d, dict) and isinstance(d.get("update_ratio"), (int, float)) and d["update_ratio"] > 0}
    if not values:
        return None
    hot = {d.get("name") for d in ev.get("layers", []) if isinstance(d, dict)}
    fig = figures.layer_bars(values, title="Median ‖ΔW‖/‖W‖ per weight (usual band shaded)",
                             x_title="update ratio (log)", highlight=hot)
    fig.add_vrect(x0=figures.UPDATE_RATIO_BAND[0], x1=figures.UPDATE_RATIO_BAND[1], fillcolor=figures.GREEN,
                  opacity=0.12, line_width=0)
    return fig


def nonfinite_chart(ev: dict, run: RunView | None) -> go.Figure | None:
    """nonfinite-values: the loss, with the step the finding names marked."""
    if run is None:
        return None
    return figures.loss_figure(run.scalars, marks=[ev["step"]] if isinstance(ev.get("step"), int) else ())


def initial_loss_chart(ev: dict, run: RunView | None) -> go.Figure | None:
    return figures.loss_figure(run.scalars, reference=ev.get("expected")) if run is not None else None


def data_wait_chart(ev: dict, run: RunView | None) -> go.Figure | None:
    return figures.data_loading_figure(run.scalars) if run is not None else None


# the chart each finding code gets (probes/catalog.py names it); the other codes have none
CHARTS = {"memory-growth": memory_chart, "vanishing-gradients": gradient_depth_chart,
          "exploding-gradients": exploding_chart,
          "gradients-accumulate": accumulated_gradients_chart, "update-ratio": update_ratio_chart,
          "nonfinite-values": nonfinite_chart, "suspicious-initial-loss": initial_loss_chart,
          "dataloader-stall": data_wait_chart}


def evidence_chart(finding: dict[str, Any], run: RunView | None) -> go.Figure | None:
    """A small chart for the findings where a picture says more than the numbers; None otherwise."""
    chart = CHARTS.get(finding["code"])
    return chart(finding.get("evidence") or {}, run) if chart is not None else None
