"""Figure builders: data in, plotly figure out. Pure functions (no streamlit, no run log access).

Every axis carries its unit; every figure reads at 1280x720 on a shared screen, in dark and light themes
(colours are chosen to keep contrast on both backgrounds; the template follows the page's theme).
"""
from __future__ import annotations

import html
import math
from typing import Any, Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.data import downsample, growth_slope, layer_of, per_layer_norm

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
        slope = growth_slope(scalars[col])
        label = MEMORY_LABELS.get(col, col.removeprefix("mem."))
        if slope is not None:
            kib = slope / 1024 if abs(slope / 1024) >= 0.05 else 0.0     # a flat line reads +0.0, not -0.0
            label += f" ({kib:+,.1f} KiB/step)"
        fig.add_trace(go.Scatter(x=data.index, y=data[col], mode="lines", name=label))
    return _layout(fig, "Memory per step (slope = least-squares growth)", "step", "memory (MiB)")


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


def rank_figure(ranks: dict[int, pd.DataFrame], column: str, *, title: str, y_title: str, scale: float = 1.0,
                max_steps: int = 2000) -> go.Figure:
    """One line per rank of a torch.distributed run for a scalar column (step time, data wait, memory)."""
    fig = go.Figure()
    for rank, scalars in sorted(ranks.items()):
        if column in scalars and not scalars[column].dropna().empty:
            data = downsample(scalars[[column]].dropna(), max_steps, how="max") * scale
            fig.add_trace(go.Scatter(x=data.index, y=data[column], mode="lines", name=f"rank {rank}",
                                     line=dict(color=DEVICE_COLOURS[rank % len(DEVICE_COLOURS)])))
    if not fig.data:
        return empty_figure(f"No rank recorded {column}")
    return _layout(fig, title, "step", y_title)


def series_figure(x: list[float], y: list[float], *, y_title: str, title: str | None = None,
                  reference: float | None = None, height: int = SMALL_HEIGHT) -> go.Figure:
    """A small line from evidence numbers (a finding's own steps and values)."""
    if not x or not y:
        return empty_figure("No values")
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers", marker=dict(size=4)))
    if reference is not None:
        fig.add_hline(y=reference, line=dict(color=RED, dash="dash"))
    return _layout(fig, title, "step", y_title, height=height, legend=False)


# -- registration tree ------------------------------------------------------------------------------------
def tree_frame(tree: dict[str, Any], colour_by: str = "device") -> pd.DataFrame:
    """One row per module (and per unregistered attribute): id, parent, label, size, colour key, hover."""
    tensors = tree.get("tensors", [])
    own: dict[str, list[dict]] = {}
    for t in tensors:
        own.setdefault(t["module"], []).append(t)
    rows = []
    for m in tree.get("modules", []):
        path = m["path"]
        mine = own.get(path, [])
        rows.append({"id": path or "(model)", "parent": (layer_of(path) or "(model)") if path else "",
                     "label": (path.rsplit(".", 1)[-1] if path else m["class"]) + f" · {m['label']}",
                     "own": sum(t.get("numel", 0) for t in mine if not t.get("duplicate")),
                     "key": _colour_key(m, mine, colour_by), "class": m["class"],
                     "location": m.get("location") or "", "registered": True})
    for u in tree.get("unregistered", []):
        parent = u["module"] or "(model)"
        rows.append({"id": f"{parent}/{u['attribute']} (unregistered)", "parent": parent,
                     "label": f"{u['attribute']} · UNREGISTERED {u['container']} of {u['kind']}s",
                     "own": max(int(u.get("numel") or 0), 1), "key": "unregistered", "class": u["container"],
                     "location": u.get("location") or "", "registered": False})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # total = own + descendants (branchvalues="total" needs parents at least as large as their children)
    # every node counts 1 besides its parameters, so containers without tensors still get a visible block
    own = dict(zip(frame["id"], frame["own"].astype(float) + 1.0))
    parent_of = dict(zip(frame["id"], frame["parent"]))
    totals = dict(own)
    params = dict(zip(frame["id"], frame["own"].astype(float).where(frame["registered"], 0.0)))
    real = dict(params)
    for node_id, value in own.items():
        seen, parent = {node_id}, parent_of.get(node_id)
        while parent and parent in totals and parent not in seen:
            totals[parent] += value
            real[parent] += params[node_id]
            seen.add(parent)
            parent = parent_of.get(parent)
    frame["size"] = frame["id"].map(totals)
    frame["params"] = frame["id"].map(real).astype("int64")
    return frame


def _colour_key(module: dict, tensors: list[dict], colour_by: str) -> str:
    if not tensors:
        return "no own tensors"
    if colour_by == "trainable":
        flags = {bool(t.get("requires_grad")) for t in tensors if t["kind"] == "parameter"}
        return "no parameters" if not flags else ("trainable" if flags == {True} else
                                                  "frozen" if flags == {False} else "partly frozen")
    if colour_by == "in optimizer":
        params = [t for t in tensors if t["kind"] == "parameter" and t.get("requires_grad")]
        if not params:
            return "no trainable parameters"
        inside = {t.get("optimizer") is not None for t in params}
        return "in optimizer" if inside == {True} else "NOT in optimizer" if inside == {False} else "partly"
    devices = sorted({t.get("device") or "?" for t in tensors})
    return " + ".join(devices)


KEY_COLOURS = {"unregistered": RED, "NOT in optimizer": RED, "partly": ORANGE, "partly frozen": ORANGE,
               "frozen": GREY, "trainable": GREEN, "in optimizer": GREEN, "no own tensors": "#c9cbd4",
               "no parameters": "#c9cbd4", "no trainable parameters": "#c9cbd4"}


# The browser's cost of an icicle grows with every node sent, drawn or not (about 0.3 s per 1,000 nodes in
# plotly.js alone, more inside Streamlit): past this many nodes only the levels on screen are sent, and
# deeper ones are reached by focusing on a module. Below it, everything goes and clicking zooms to any depth.
TREE_NODES_SENT = 600


def default_tree_depth(tree: dict[str, Any] | None, lowest: int = 2, highest: int = 4) -> int:
    """The deepest icicle depth (levels, the root counting 1) that draws at most TREE_NODES_SENT blocks."""
    counts: dict[int, int] = {}
    for m in (tree or {}).get("modules", []):
        level = m["path"].count(".") + 2 if m["path"] else 1
        counts[level] = counts.get(level, 0) + 1
    depth, shown = lowest, sum(n for level, n in counts.items() if level <= lowest)
    while depth < highest and shown + counts.get(depth + 1, 0) <= TREE_NODES_SENT:
        depth += 1
        shown += counts.get(depth, 0)
    return depth


def focus_choices(tree: dict[str, Any] | None) -> list[str]:
    """Modules worth focusing the icicle on: the model ('') and every module that has children."""
    return [m["path"] for m in (tree or {}).get("modules", []) if not m["path"] or m.get("children")]


def _subtree(frame: pd.DataFrame, root: str, max_depth: int) -> pd.DataFrame:
    """The rows under `root` (its id; '' for the model), cut to max_depth levels when the subtree is large;
    the root's own row becomes the top (parent '')."""
    root_id = root or "(model)"
    parent_of = dict(zip(frame["id"], frame["parent"]))
    memo: dict[str, int | None] = {root_id: 0}      # levels below the root; None: not under it

    def level(node: str) -> int | None:
        chain = []
        while node not in memo and node and len(chain) <= len(parent_of):
            chain.append(node)
            node = parent_of.get(node, "")
        base = memo.get(node)
        for i, n in enumerate(reversed(chain), 1):
            memo[n] = None if base is None else base + i
        return memo[chain[0]] if chain else base

    levels = frame["id"].map(level)
    keep = levels.notna()
    if keep.sum() > TREE_NODES_SENT:
        keep &= levels < max_depth
    out = frame[keep].copy()
    out.loc[out["id"] == root_id, "parent"] = ""
    return out


def tree_figure(tree: dict[str, Any] | None, colour_by: str = "device", *, max_depth: int = 4, root: str = "",
                height: int = 520) -> go.Figure:
    """The module hierarchy as an icicle sized by parameter count; unregistered attributes in red.

    `root` focuses on one module's subtree. A large tree is sent only to max_depth levels (TREE_NODES_SENT)."""
    if not tree or not tree.get("modules"):
        return empty_figure("No registration tree recorded in this run")
    frame = tree_frame(tree, colour_by)
    if root and root not in set(frame["id"]):
        root = ""
    frame = _subtree(frame, root, max_depth)
    keys = list(dict.fromkeys(frame["key"]))
    palette = {}
    others = iter(DEVICE_COLOURS * 4)
    for k in keys:
        palette[k] = KEY_COLOURS.get(k) or next(others)
    colours = [palette[k] for k in frame["key"]]
    e = html.escape     # module, class and file names come from the user's code: plotly renders tags in text
    hover = [f"{e(i)}<br>{e(c)}<br>{n:,} parameters<br>{e(k)}" + (f"<br>{e(loc)}" if loc else "")
             for i, c, n, k, loc in zip(frame["id"], frame["class"], frame["params"], frame["key"], frame["location"])]
    fig = go.Figure(go.Icicle(ids=frame["id"], parents=frame["parent"], labels=[e(x) for x in frame["label"]],
                              values=frame["size"], branchvalues="total", marker=dict(colors=colours),
                              hovertext=hover, hoverinfo="text", maxdepth=max_depth,
                              tiling=dict(orientation="v"), root=dict(color="rgba(0,0,0,0)")))
    # the colour key, as coloured squares in the title line (an icicle has no legend of its own)
    key_text = "  ".join(f"<span style='color:{palette[k]}'>■</span> {html.escape(k)}" for k in keys)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60, b=10),
                      title=dict(text=f"Modules sized by parameter count (click a block to zoom)<br>"
                                      f"<sup>{html.escape(colour_by)}: {key_text}</sup>"))
    return fig
