"""The numbers a finding and a dashboard page both show, computed once (plain data in, plain data out; no torch).

A detector measures with these and stores what it measured in its finding's evidence; the pages and the
evidence charts draw the same functions' output (or the evidence itself), never a second computation. So
the Memory page's slope is the memory-growth finding's slope, the Data loading page's share is the
dataloader-stall finding's share, and the Weights page's weight matrices are the ones update-ratio judged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

# -- which parameters -----------------------------------------------------------------------------------


def parameters(tree: dict | None) -> list[dict]:
    """The model's parameters, each once (a tied weight's second name dropped), in tree order."""
    return [t for t in (tree or {}).get("tensors", []) if t["kind"] == "parameter" and not t.get("duplicate")]


def weight_matrices(tree: dict | None) -> list[dict]:
    """Parameters with 2+ dimensions: biases and norm scales start at 0/1, so their ratios mean little."""
    return [t for t in parameters(tree) if t.get("shape") and len(t["shape"]) >= 2]


def judged_weights(tree: dict | None) -> list[dict]:
    """The parameters whose update ratio is judged (and charted): the weight matrices, or every parameter
    with values when the model has none (a model of vectors)."""
    return weight_matrices(tree) or [t for t in parameters(tree) if t.get("numel")]


def finite(frame: pd.DataFrame) -> pd.DataFrame:
    """NaN where a value is +-inf (a statistic over steps reads the finite values only)."""
    return frame.replace([np.inf, -np.inf], np.nan)


def medians(frame: pd.DataFrame, names, min_steps: int = 1) -> dict[str, tuple[float, int]]:
    """name -> (median over its finite recorded steps, number of those steps), for each of `names` in the
    frame with at least `min_steps` finite values; in the order of `names`."""
    frame = finite(frame)
    out = {}
    for name in names:
        if name not in frame.columns:
            continue
        values = frame[name].dropna()
        if len(values) >= min_steps:
            out[name] = (float(values.median()), len(values))
    return out


# -- memory -----------------------------------------------------------------------------------------------
def theil_sen(steps: np.ndarray, values: np.ndarray) -> float:
    """Median of pairwise slopes: one outlier step (a cache filled once) cannot make a trend."""
    i, j = np.triu_indices(len(steps), k=1)
    dx = steps[j] - steps[i]
    return float(np.median((values[j] - values[i]) / dx)) if len(dx) else 0.0


@dataclass(frozen=True)
class MemoryTrend:
    """A memory series' robust trend over its window: the last `window` steps after the first `skip`."""
    column: str
    steps: np.ndarray               # the window's steps
    values: np.ndarray              # bytes at those steps
    slope: float                    # bytes per step (Theil-Sen)
    half_slopes: tuple[float, float]   # the same over each half of the window (a one-time jump climbs in one)

    @property
    def fitted_growth(self) -> float:
        return self.slope * float(self.steps[-1] - self.steps[0])

    @property
    def growth(self) -> float:
        return float(self.values[-1] - self.values[0])


def memory_trend(scalars: pd.DataFrame, column: str, *, skip: int = 1, window: int = 200,
                 min_steps: int = 2) -> MemoryTrend | None:
    """The trend of one `mem.*` column, skipping the first `skip` steps (step 0 allocates optimizer state,
    autograd buffers, caches) and keeping the last `window`; None with fewer than `min_steps` points."""
    if column not in scalars.columns:
        return None
    values = scalars[column].dropna()
    if values.empty:
        return None
    values = values[values.index >= values.index.min() + skip].iloc[-window:]
    if len(values) < max(2, min_steps):
        return None
    x, y = values.index.to_numpy(dtype=float), values.to_numpy(dtype=float)
    half = len(x) // 2
    return MemoryTrend(column, x, y, theil_sen(x, y), (theil_sen(x[:half], y[:half]), theil_sen(x[half:], y[half:])))


# -- waiting for data ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataWait:
    """How long a loop waits for its batches, robustly: the median wait against the lower quartile of the
    compute (a busy machine only ever adds to what a step needs), after the loader's start-up."""
    steps: int                      # steps counted
    median_wait_s: float
    median_step_s: float
    compute_s: float                # the `quantile` of (step time - wait)
    share: float                    # median wait / (median wait + compute)


def data_wait(scalars: pd.DataFrame, num_workers=None, quantile: float = 0.25) -> DataWait | None:
    """The wait for data per step; None when the run recorded no wait (or no step after start-up).

    Start-up is skipped: worker k of a DataLoader delivers batch k first, and that batch carries the worker's
    own start-up (its processes start one after another); without workers only the first batch does."""
    if "data_wait_s" not in scalars.columns or "step_time_s" not in scalars.columns:
        return None
    frame = scalars[["data_wait_s", "step_time_s"]].dropna()
    warmup = max(1, num_workers) if isinstance(num_workers, int) and not isinstance(num_workers, bool) else 1
    frame = frame.iloc[warmup:]
    frame = frame[frame["step_time_s"] > 0]
    if frame.empty:
        return None
    wait = float(frame["data_wait_s"].median())
    compute = float((frame["step_time_s"] - frame["data_wait_s"]).clip(lower=0).quantile(quantile))
    share = wait / (wait + compute) if wait + compute > 0 else 0.0
    return DataWait(len(frame), wait, float(frame["step_time_s"].median()), compute, share)


def loader_workers(meta: dict | None):
    """num_workers of the run's DataLoader as the Probe recorded it (None when there is no DataLoader)."""
    return ((meta or {}).get("loader") or {}).get("num_workers")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
