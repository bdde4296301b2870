"""The numbers and frames each page shows, from a run's view model (app.data.RunView): per-layer norms, binned
series, memory growth, data wait, ranks side by side, update sizes. Where a finding measures the same thing,
the number comes from probes.stats, as the detector's does: the page and the card cannot disagree.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from app.data import RunView
from probes.detectors import thresholds as T
from probes import stats
from probes.stats import MemoryTrend, RankSpread, data_wait, judged_weights, memory_trend


# -- per-layer views --------------------------------------------------------------------------------------
def layer_of(name: str) -> str:
    """'encoder.0.fc.weight' -> 'encoder.0.fc' (the module owning a parameter); '' for the model's own."""
    return name.rsplit(".", 1)[0] if "." in name else ""


def per_layer_norm(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-parameter norms combined per layer: sqrt(sum of squares) over a module's parameters."""
    if frame.empty:
        return frame
    groups: dict[str, list[str]] = {}
    for col in frame.columns:
        groups.setdefault(layer_of(col) or "(model)", []).append(col)
    values = frame.to_numpy(dtype="float64", copy=False)
    cols = {name: [frame.columns.get_loc(c) for c in members] for name, members in groups.items()}
    with np.errstate(over="ignore", invalid="ignore"):
        out = {name: np.sqrt(np.sum(np.square(values[:, idx]), axis=1)) for name, idx in cols.items()}
    return pd.DataFrame(out, index=frame.index)


def weight_matrices(frame: pd.DataFrame, tree: dict[str, Any] | None) -> pd.DataFrame:
    """Only the weights the update-ratio finding judges (probes.stats.judged_weights: the parameters with 2+
    dimensions, read from the registration tree; biases and norm scales move differently)."""
    names = {t["name"] for t in judged_weights(tree)}
    keep = [c for c in frame.columns if c in names]
    return frame[keep] if keep else frame


def downsample(frame: pd.DataFrame, max_rows: int, how: str = "mean") -> pd.DataFrame:
    """At most max_rows rows: consecutive steps binned (mean, or max to keep spikes), index = first step."""
    n = len(frame)
    if n <= max_rows or n == 0:
        return frame
    bins = np.arange(n) * max_rows // n
    grouped = frame.groupby(bins)
    out = grouped.max() if how == "max" else grouped.mean()
    out.index = frame.index.to_numpy()[np.searchsorted(bins, np.arange(len(out)))]
    out.index.name = frame.index.name
    return out


def nonfinite_steps(run: RunView) -> list[int]:
    """Steps where the loss, a gradient or a weight was NaN/Inf."""
    steps: set[int] = set()
    loss = run.scalars.get("loss")
    if loss is not None and loss.notna().any():
        # a missing loss reads as NaN too: count NaN only once the loss is being recorded (after its first value)
        values = loss.to_numpy(dtype="float64")
        recorded = loss.index.to_numpy() >= loss.first_valid_index()
        steps.update(int(s) for s in loss.index[~np.isfinite(values) & recorded])
    for name in ("grad_nonfinite", "weight_nonfinite"):
        frame = run.get(name)
        if not frame.empty:
            steps.update(int(s) for s in frame.index[(frame.fillna(0) > 0).any(axis=1)])
    return sorted(steps)


def growth(scalars: pd.DataFrame, column: str) -> MemoryTrend | None:
    """A memory column's growth per step as the memory-growth finding measures it (probes.stats.memory_trend:
    Theil-Sen over the last steps, step 0 left out); None with fewer than 3 steps in the window (the finding
    judges from 4 on)."""
    return memory_trend(scalars, column, skip=T.MEMORY_SKIP_STEPS, window=T.MEMORY_WINDOW, min_steps=3)


def memory_columns(scalars: pd.DataFrame) -> list[str]:
    return [c for c in scalars.columns if c.startswith("mem.")]


def data_wait_share(scalars: pd.DataFrame, num_workers=None) -> float | None:
    """Share of a step spent waiting for the next batch, as the dataloader-stall finding measures it
    (probes.stats.data_wait: the median wait against the lower quartile of the compute, start-up left out)."""
    return data_loading_summary(scalars, num_workers)["share"]


def steps_per_second(scalars: pd.DataFrame, window: int = 50) -> float | None:
    """Recent training speed: steps over wall time across the last `window` recorded steps."""
    if "time" not in scalars:
        return None
    times = scalars["time"].dropna().iloc[-window:]
    if len(times) < 2 or times.iloc[-1] <= times.iloc[0]:
        return None
    return (times.index[-1] - times.index[0]) / float(times.iloc[-1] - times.iloc[0])


def data_loading_summary(scalars: pd.DataFrame, num_workers=None) -> dict[str, float | None]:
    """The Data loading page's numbers, the dataloader-stall finding's own (probes.stats.data_wait): wait share,
    median wait and median step (seconds), after the loader's start-up (one step per worker, at least one)."""
    wait = data_wait(scalars, num_workers, T.DATA_COMPUTE_QUANTILE)
    if wait is None:
        return {"share": None, "median_wait_s": None, "median_step_s": None, "steps": 0}
    return {"share": wait.share, "median_wait_s": wait.median_wait_s, "median_step_s": wait.median_step_s,
            "steps": wait.steps}


# the memory series a page leads with, best first: the accelerator's allocator, else the process
MAIN_MEMORY = ("mem.cuda_allocated_bytes", "mem.mps_allocated_bytes", "mem.rss_bytes")


def memory_summary(scalars: pd.DataFrame) -> dict[str, Any] | None:
    """The Memory page's numbers: which series leads, its last value, the peak and the growth per step
    (bytes, as the memory-growth finding measures it: `growth`) and the steps that growth is over; None when the
    run recorded no memory."""
    main, peak = memory_peak(scalars)
    if main is None:
        return None
    series = scalars[main].dropna()
    trend = growth(scalars, main)
    return {"column": main, "now": float(series.iloc[-1]) if len(series) else None, "peak": peak,
            "slope": trend.slope if trend else None,
            "window": (int(trend.steps[0]), int(trend.steps[-1])) if trend else None}


def memory_peak(scalars: pd.DataFrame) -> tuple[str | None, float | None]:
    """The leading memory series (MAIN_MEMORY's first recorded, else the first mem.* column) and its peak
    in bytes (the allocator's own per-step peak where it records one); (None, None) without memory."""
    cols = memory_columns(scalars)
    if not cols:
        return None, None
    main = next((c for c in MAIN_MEMORY if c in cols), cols[0])
    peak = scalars["mem.cuda_peak_bytes" if "mem.cuda_peak_bytes" in cols else main].max()
    return main, float(peak) if pd.notna(peak) else None


# -- the ranks of a torch.distributed run ------------------------------------------------------------------
def rank_spread(ranks: dict[int, pd.DataFrame]) -> RankSpread:
    """Each rank's median step and data wait (the Data loading page's numbers, rank by rank) and the ranks
    out of line with the others (probes.stats.rank_spread: the stragglers `report` names too)."""
    return stats.rank_spread(ranks, T.DATA_COMPUTE_QUANTILE)


def rank_table(ranks: dict[int, pd.DataFrame], spread: RankSpread | None = None) -> pd.DataFrame:
    """The Ranks page's table: per rank, steps written, median step and data wait (ms, step 0 skipped:
    start-up), the step against the median rank's, the wait's share of step time, and peak memory (bytes)
    of the leading memory series."""
    spread = spread or rank_spread(ranks)
    typical = spread.median_step_s
    rows = []
    for t in spread.timings:
        rows.append({"rank": t.rank, "steps": t.steps, "median step (ms)": _ms(t.median_step_s),
                     "vs median rank": t.median_step_s / typical if t.median_step_s is not None and typical
                     else None,
                     "median data wait (ms)": _ms(t.median_wait_s), "waiting for data": t.wait_share,
                     "peak memory": memory_peak(ranks[t.rank])[1]})
    return pd.DataFrame(rows)


def straggler(table: pd.DataFrame) -> dict[str, Any] | None:
    """The slowest rank by median step time, and how much slower it is than the fastest rank."""
    times = table.set_index("rank")["median step (ms)"].dropna() if len(table) else pd.Series(dtype=float)
    if len(times) < 2 or times.min() <= 0:
        return None
    slowest = int(times.idxmax())
    return {"rank": slowest, "ratio": float(times[slowest] / times.min()),
            "behind_steps": int(table["steps"].max() - table.set_index("rank").loc[slowest, "steps"])}


def rank_notes(spread: RankSpread, table: pd.DataFrame) -> dict[str, dict[int, str]]:
    """What each chart names a rank for, rank -> why (a legend's few words): "step" the stragglers (against
    the median rank's step), "wait" the ranks waiting longer for data, "memory" the ranks whose peak memory
    is out of line (the same robust rule, its floor OUTLIER_FLOOR of the median rank's peak)."""
    step = {o.rank: f"{o.ratio:.2f}x median" for o in spread.stragglers}
    wait = {o.rank: f"{o.value * 1000:.3g} ms a step" for o in spread.waiting}
    peaks = table.set_index("rank")["peak memory"].dropna() if len(table) else pd.Series(dtype=float)
    centre = float(peaks.median()) if len(peaks) else 0.0
    memory = {r: f"{peaks[r] / centre:.2f}x median peak" for r, _ in
              stats.high_outliers(peaks.to_dict(), stats.OUTLIER_FLOOR * centre)} if centre > 0 else {}
    return {"step": step, "wait": wait, "memory": memory}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def update_summary(ratio: pd.DataFrame, norm: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: median and last update ratio, and the steps whose update was exactly zero."""
    summary = ratio.median(skipna=True).rename("median ratio").to_frame()
    summary["last ratio"] = ratio.ffill().iloc[-1] if len(ratio) else float("nan")
    zero = (norm.reindex(columns=ratio.columns) == 0).sum() if not norm.empty else 0
    summary["zero-update steps"] = zero
    return summary
