"""Figure builders: data in, plotly figure out. Pure functions (no streamlit, no run log access).

Every axis carries its unit; every figure reads at 1280x720 on a shared screen, in dark and light themes
(colours are chosen to keep contrast on both backgrounds; the template follows the page's theme).
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.summaries import downsample, growth, per_layer_norm

RED, ORANGE, BLUE, GREEN, GREY, PURPLE = "#e5484d", "#f08c00", "#3b82f6", "#2fa86b", "#8b8d98", "#9b6dd7"
DEVICE_COLOURS = [BLUE, GREEN, ORANGE, PURPLE, "#14b8a6", "#eab308"]
# the update-ratio guide: ||dW||/||W|| around 1e-3 per step is the usual healthy range for weight matrices
UPDATE_RATIO_BAND = (1e-4, 1e-2)
HEIGHT = 360
SMALL_HEIGHT = 220


def _layout(fig: go.Figure, title: str | None, x: str, y: str, *, height: int = HEIGHT, log_y: bool = False,
            legend: bool = True) -> go.Figure:
    top = 50 if title else 20
    # the legend goes under the x-axis title (above the plot it collides with the title once it wraps);
    # plotly places it in plot-area fractions, so 60 px below the axis is a height-dependent fraction
    below = -60 / max(height - top - 50, 60)
    fig.update_layout(title=title, height=height, margin=dict(l=60, r=20, t=top, b=50),
                      showlegend=legend, legend=dict(orientation="h", yanchor="top", y=below, x=0),
                      hovermode="x unified")
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def empty_figure(message: str, height: int = SMALL_HEIGHT) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def _positive(frame: pd.DataFrame) -> pd.DataFrame:
    """For log axes: zero/negative/non-finite values become gaps, not errors."""
    values = frame.to_numpy(dtype="float64", copy=True)
    values[~np.isfinite(values) | (values <= 0)] = np.nan
    return pd.DataFrame(values, index=frame.index, columns=frame.columns)


def top_columns(frame: pd.DataFrame, n: int) -> list[str]:
    """The n columns with the largest median (the layers worth a line when there are too many)."""
    if frame.shape[1] <= n:
        return list(frame.columns)
    med = frame.median(skipna=True).fillna(-np.inf)
    return list(med.sort_values(ascending=False).index[:n])


# -- gradients --------------------------------------------------------------------------------------------
def grad_heatmap(grad_norm: pd.DataFrame, nonfinite_steps: Iterable[int] = (), *, max_steps: int = 400,
                 max_layers: int = 300) -> go.Figure:
    """Layer x step heatmap of log10 gradient norm per layer, steps binned to at most max_steps columns."""
    if grad_norm.empty:
        return empty_figure("No gradient norms recorded in this run")
    layers = per_layer_norm(grad_norm)
    layers = downsample(layers, max_steps, how="mean")
    if layers.shape[1] > max_layers:     # keep model order, take every k-th layer
        k = math.ceil(layers.shape[1] / max_layers)
        layers = layers.iloc[:, ::k]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log10(_positive(layers).to_numpy().T)
    fig = go.Figure(go.Heatmap(
        z=z, x=layers.index.to_numpy(), y=list(layers.columns), colorscale="Viridis",
        colorbar=dict(title=dict(text="log₁₀ ‖g‖")),
        hovertemplate="step %{x}<br>%{y}<br>log₁₀ ‖grad‖ = %{z:.2f}<extra></extra>"))
    for step in list(nonfinite_steps)[:50]:
        fig.add_vline(x=step, line=dict(color=RED, width=2, dash="dot"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    height = min(900, max(HEIGHT, 14 * layers.shape[1] + 120))
    _layout(fig, "Gradient norm per layer (log₁₀)", "step", "layer (model order, input at top)", height=height,
            legend=False)
    fig.update_layout(hovermode="closest")
    return fig


def layer_lines(frame: pd.DataFrame, columns: list[str], *, title: str, y_title: str, log_y: bool = True,
                max_steps: int = 1000, band: tuple[float, float] | None = None,
                marks: Iterable[int] = ()) -> go.Figure:
    """One line per chosen column over steps (binned to max_steps), optional guide band and step marks."""
    if frame.empty or not columns:
        return empty_figure("Nothing recorded for this chart")
    data = downsample(frame[columns], max_steps)
    if log_y:
        data = _positive(data)
    fig = go.Figure()
    for col in columns:
        fig.add_trace(go.Scatter(x=data.index, y=data[col], mode="lines", name=col or "(model)"))
    if band:
        fig.add_hrect(y0=band[0], y1=band[1], fillcolor=GREEN, opacity=0.12, line_width=0,
                      annotation_text="usual range", annotation_position="top left")
    for step in list(marks)[:50]:
        fig.add_vline(x=step, line=dict(color=RED, width=1.5, dash="dot"))
    return _layout(fig, title, "step", y_title, log_y=log_y)


def layer_bars(values: dict[str, float], *, title: str, x_title: str, log_x: bool = True,
               highlight: Iterable[str] = (), height: int = SMALL_HEIGHT) -> go.Figure:
    """Horizontal bars, one per layer in model order; highlighted layers in red."""
    if not values:
        return empty_figure("No values")
    names = list(values)
    hot = set(highlight)
    fig = go.Figure(go.Bar(x=[values[n] for n in names], y=names, orientation="h",
                           marker_color=[RED if n in hot else BLUE for n in names],
                           hovertemplate="%{y}: %{x:.3g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    _layout(fig, title, x_title, "layer", height=max(height, 18 * len(names) + 80), legend=False)
    fig.update_xaxes(type="log" if log_x else "linear")
    fig.update_layout(hovermode="closest")
    return fig


def paired_bars(values: dict[str, tuple[float, float]], *, names: tuple[str, str], title: str, x_title: str,
                height: int = SMALL_HEIGHT) -> go.Figure:
    """Two horizontal bars per layer (a before and an after), in model order."""
    if not values:
        return empty_figure("No values")
    layers = list(values)
    fig = go.Figure([go.Bar(x=[values[n][k] for n in layers], y=layers, orientation="h", name=names[k],
                            marker_color=(BLUE, RED)[k], hovertemplate="%{y}: %{x:.3g}<extra>" + names[k] + "</extra>")
                     for k in (0, 1)])
    fig.update_yaxes(autorange="reversed", automargin=True)
    _layout(fig, title, x_title, "layer", height=max(height, 30 * len(layers) + 170), legend=True)
    # two legend entries: between the (short) title and the plot, where a card's narrow column has room
    fig.update_layout(barmode="group", hovermode="closest", margin=dict(t=110),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


# -- weights ----------------------------------------------------------------------------------------------
def update_ratio_figure(update_ratio: pd.DataFrame, *, max_lines: int = 12) -> go.Figure:
    cols = top_columns(update_ratio.dropna(axis=1, how="all"), max_lines)
    return layer_lines(update_ratio, cols, title="Update ratio ‖ΔW‖/‖W‖ per step",
                       y_title="‖ΔW‖ / ‖W‖ (ratio, log)", band=UPDATE_RATIO_BAND)


def update_norm_figure(update_norm: pd.DataFrame, *, max_lines: int = 12) -> go.Figure:
    cols = top_columns(update_norm.dropna(axis=1, how="all"), max_lines)
    return layer_lines(update_norm, cols, title="Weight change ‖ΔW‖ per step", y_title="‖ΔW‖ (L2 norm, log)")


# -- memory -----------------------------------------------------------------------------------------------
MEMORY_LABELS = {"mem.cuda_allocated_bytes": "CUDA allocated", "mem.cuda_reserved_bytes": "CUDA reserved",
                 "mem.cuda_peak_bytes": "CUDA peak in step", "mem.rss_bytes": "process RSS",
                 "mem.mps_allocated_bytes": "MPS allocated"}


def memory_figure(scalars: pd.DataFrame, *, max_steps: int = 2000) -> go.Figure:
    cols = [c for c in scalars.columns if c.startswith("mem.")]
    if not cols:
        return empty_figure("No memory recorded in this run")
    data = downsample(scalars[cols], max_steps, how="max") / (1 << 20)
    fig = go.Figure()
    for col in cols:
        trend = growth(scalars, col)
        label = MEMORY_LABELS.get(col, col.removeprefix("mem."))
        if trend is not None:
            kib = trend.slope / 1024 if abs(trend.slope / 1024) >= 0.05 else 0.0     # a flat line reads +0.0, not -0.0
            label += f" ({kib:+,.1f} KiB/step)"
        fig.add_trace(go.Scatter(x=data.index, y=data[col], mode="lines", name=label))
    return _layout(fig, "Memory per step (growth: median slope over the last steps, step 0 left out)", "step",
                   "memory (MiB)")


# -- data loading -----------------------------------------------------------------------------------------
def data_loading_figure(scalars: pd.DataFrame, *, max_steps: int = 600) -> go.Figure:
    if "step_time_s" not in scalars or scalars["step_time_s"].dropna().empty:
        return empty_figure("No step times recorded in this run")
    wait = scalars["data_wait_s"] if "data_wait_s" in scalars else pd.Series(0.0, index=scalars.index)
    frame = pd.DataFrame({"wait": wait.fillna(0.0), "step": scalars["step_time_s"]}).dropna()
    frame["compute"] = (frame["step"] - frame["wait"]).clip(lower=0)
    frame = downsample(frame, max_steps) * 1000.0
    fig = go.Figure()
    fig.add_trace(go.Bar(x=frame.index, y=frame["wait"], name="waiting for data", marker_color=ORANGE))
    fig.add_trace(go.Bar(x=frame.index, y=frame["compute"], name="compute", marker_color=BLUE))
    fig.update_layout(barmode="stack", bargap=0.05)
    return _layout(fig, "Data wait vs compute per step", "step", "time (ms)")


# -- loss, runs -------------------------------------------------------------------------------------------
def loss_figure(scalars: pd.DataFrame, *, marks: Iterable[int] = (), reference: float | None = None,
                height: int = SMALL_HEIGHT, max_steps: int = 2000) -> go.Figure:
    if "loss" not in scalars or scalars["loss"].dropna().empty:
        return empty_figure("No loss recorded (pass it with probe.log(loss=...))")
    data = downsample(scalars[["loss"]], max_steps)
    fig = go.Figure(go.Scatter(x=data.index, y=data["loss"], mode="lines+markers", name="loss",
                                 marker=dict(size=4)))
    if reference is not None:
        fig.add_hline(y=reference, line=dict(color=GREEN, dash="dash"), annotation_text="expected at start")
    for step in list(marks)[:50]:
        fig.add_vline(x=step, line=dict(color=RED, width=1.5, dash="dot"))
    return _layout(fig, None, "step", "loss", height=height, legend=False)


def compare_figure(runs: dict[str, pd.DataFrame], column: str, *, y_title: str, log_y: bool = False,
                   max_steps: int = 2000) -> go.Figure:
    """One line per run for a scalar column (before/after a fix)."""
    fig = go.Figure()
    for name, scalars in runs.items():
        if column in scalars and not scalars[column].dropna().empty:
            data = downsample(scalars[[column]], max_steps)
            fig.add_trace(go.Scatter(x=data.index, y=data[column], mode="lines", name=name))
    if not fig.data:
        return empty_figure(f"Neither run recorded {column}")
    return _layout(fig, None, "step", y_title, log_y=log_y)


MAX_RANK_LINES = 8          # up to this many ranks, a line each; more, the spread across ranks as a band
NAMED_COLOURS = [RED, ORANGE, PURPLE, GREEN, "#14b8a6", "#eab308"]


def rank_figure(ranks: dict[int, pd.DataFrame], column: str, *, title: str, y_title: str, scale: float = 1.0,
                max_steps: int = 1000, named: dict[int, str] | None = None, skip: int = 0) -> go.Figure:
    """A scalar column (step time, data wait, memory) across the ranks of a torch.distributed run, steps
    binned to at most max_steps (`skip`: each rank's first steps left out, e.g. the start-up step).

    Up to MAX_RANK_LINES ranks: one line per rank (a bin's max: spikes stay). More: the ranks not named
    as a band per bin (each rank's mean over the bin, then the median, the middle half and min-max across
    ranks), and each rank of `named` (rank -> why, e.g. stragglers) as its own labelled line: a legend of
    a handful of entries, however many ranks."""
    present = {r: _recorded(s[column], skip) for r, s in sorted(ranks.items()) if column in s}
    present = {r: f for r, f in present.items() if len(f)}
    if not present:
        return empty_figure(f"No rank recorded {column}")
    fig = go.Figure()
    if len(present) <= MAX_RANK_LINES:
        for rank, values in present.items():
            data = downsample(values.to_frame(), max_steps, how="max") * scale
            fig.add_trace(go.Scatter(x=data.index, y=data[column], mode="lines", name=f"rank {rank}",
                                     line=dict(color=DEVICE_COLOURS[rank % len(DEVICE_COLOURS)])))
        return _layout(fig, title, "step", y_title)
    shown = [r for r in (named or {}) if r in present][:len(NAMED_COLOURS)]
    first = next(iter(present.values())).index
    if all(f.index.equals(first) for f in present.values()):       # the usual case: every rank at every step
        frame = pd.DataFrame(np.column_stack([f.to_numpy() for f in present.values()]), index=first,
                             columns=list(present))
    else:
        frame = pd.concat(present, axis=1)
    binned = downsample(frame, max_steps) * scale
    others = binned[[r for r in present if r not in shown]]
    x, values = binned.index, others.to_numpy(dtype=np.float64)
    quantiles = [0.0, 0.25, 0.5, 0.75, 1.0]
    if not np.isnan(values).any():
        low, q1, mid, q3, high = np.quantile(values, quantiles, axis=1)
    else:
        with warnings.catch_warnings():         # a bin no rank recorded: a gap
            warnings.simplefilter("ignore", RuntimeWarning)
            low, q1, mid, q3, high = np.nanquantile(values, quantiles, axis=1)
    n = others.shape[1]
    label = f"{n} ranks" if not shown else f"{n} others"
    for lo, hi, band, ends, alpha in ((low, high, "min–max", ("min", "max"), 0.15),
                                      (q1, q3, "middle half", ("25%", "75%"), 0.35)):
        group = f"{label}: {band}"
        fig.add_trace(go.Scatter(x=x, y=hi, mode="lines", line=dict(width=0, color=BLUE), legendgroup=group,
                                 showlegend=False, name=f"{label}: {ends[1]}",
                                 hovertemplate=f"{ends[1]} %{{y:.4g}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=x, y=lo, mode="lines", line=dict(width=0, color=BLUE), fill="tonexty",
                                 fillcolor=f"rgba(59,130,246,{alpha})", legendgroup=group, name=group,
                                 hovertemplate=f"{ends[0]} %{{y:.4g}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=mid, mode="lines", name=f"{label}: median", line=dict(color=BLUE, width=2)))
    for colour, rank in zip(NAMED_COLOURS, shown):
        fig.add_trace(go.Scatter(x=x, y=binned[rank], mode="lines", line=dict(color=colour, width=1.5),
                                 name=f"rank {rank} ({named[rank]})" if named[rank] else f"rank {rank}"))
    return _layout(fig, title, "step", y_title)


def _recorded(values: pd.Series, skip: int) -> pd.Series:
    """The steps a series has a value at, its first `skip` of them left out (numpy: 64 ranks per chart)."""
    array = values.to_numpy(dtype=np.float64)
    keep = np.flatnonzero(~np.isnan(array))[skip:]
    return pd.Series(array[keep], index=values.index[keep], name=values.name)


def series_figure(x: list[float], y: list[float], *, y_title: str, title: str | None = None,
                  reference: float | None = None, height: int = SMALL_HEIGHT) -> go.Figure:
    """A small line from evidence numbers (a finding's own steps and values)."""
    if not x or not y:
        return empty_figure("No values")
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers", marker=dict(size=4)))
    if reference is not None:
        fig.add_hline(y=reference, line=dict(color=RED, dash="dash"))
    return _layout(fig, title, "step", y_title, height=height, legend=False)
