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
    waits = scalars["data_wait_s"].to_numpy(dtype=np.float64)
    steps = scalars["step_time_s"].to_numpy(dtype=np.float64)
    both = ~(np.isnan(waits) | np.isnan(steps))          # in numpy: a page reads this for each of 64 ranks
    warmup = max(1, num_workers) if isinstance(num_workers, int) and not isinstance(num_workers, bool) else 1
    waits, steps = waits[both][warmup:], steps[both][warmup:]
    waits, steps = waits[steps > 0], steps[steps > 0]
    if not len(steps):
        return None
    wait = float(np.median(waits))
    compute = float(np.quantile(np.clip(steps - waits, 0, None), quantile))
    share = wait / (wait + compute) if wait + compute > 0 else 0.0
    return DataWait(len(steps), wait, float(np.median(steps)), compute, share)


def loader_workers(meta: dict | None):
    """num_workers of the run's DataLoader as the Probe recorded it (None when there is no DataLoader)."""
    return ((meta or {}).get("loader") or {}).get("num_workers")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- the ranks of a torch.distributed run -----------------------------------------------------------------
# A rank is out of line when its value lies above the ranks' median by more than OUTLIER_Z robust standard
# deviations (the modified z-score of Iglewicz and Hoaglin: 1.4826 x the median absolute deviation). Ranks
# that agree to the microsecond have a MAD near 0, so the deviation counts as at least OUTLIER_FLOOR of the
# median rank's step: a rank must lose over OUTLIER_Z x OUTLIER_FLOOR (7%) of a step to be named.
OUTLIER_Z = 3.5
OUTLIER_FLOOR = 0.02


@dataclass(frozen=True)
class RankTiming:
    """One rank's step: steps written, and its median step and data wait (seconds) as data_wait reads them."""
    rank: int
    steps: int
    median_step_s: float | None
    median_wait_s: float | None
    wait_share: float | None        # data_wait's share: the median wait against the compute


@dataclass(frozen=True)
class OutOfLine:
    """A rank named for being out of line with the others: its value, and how far above the median rank."""
    rank: int
    value: float                    # seconds (the rank's median step, or its median wait)
    ratio: float                    # value / the median rank's value
    score: float                    # robust standard deviations above the median rank


@dataclass(frozen=True)
class RankSpread:
    """The ranks side by side: each rank's timing, the median rank's, and the ranks out of line (worst
    first): stragglers by step time, and ranks waiting for their data longer than the others."""
    timings: list[RankTiming]
    median_step_s: float | None
    median_wait_s: float | None
    stragglers: list[OutOfLine]
    waiting: list[OutOfLine]

    @property
    def named(self) -> list[int]:
        """Every rank named (a straggler or waiting for data), worst straggler first."""
        return list(dict.fromkeys([o.rank for o in self.stragglers] + [o.rank for o in self.waiting]))


def high_outliers(values: dict[int, float], floor: float, z: float = OUTLIER_Z) -> list[tuple[int, float]]:
    """(key, score) of the values more than z robust standard deviations above their median, the deviation
    taken as at least `floor` (same unit as the values); highest first. Needs 3 values: with 2, each is as
    far from their median as the other."""
    if len(values) < 3:
        return []
    keys = list(values)
    x = np.array([values[k] for k in keys], dtype=np.float64)
    centre = float(np.median(x))
    scale = max(1.4826 * float(np.median(np.abs(x - centre))), floor)
    if not scale > 0:
        return []
    scores = (x - centre) / scale
    out = [(keys[i], float(scores[i])) for i in np.flatnonzero(scores > z)]
    return sorted(out, key=lambda kv: -kv[1])


def rank_spread(ranks: dict[int, pd.DataFrame], quantile: float = 0.25) -> RankSpread:
    """Each rank's scalars -> its timing (data_wait, start-up left out), and the ranks out of line."""
    timings = []
    for rank, scalars in sorted(ranks.items()):
        wait = data_wait(scalars, None, quantile)
        step = wait.median_step_s if wait else _median_step(scalars)
        timings.append(RankTiming(rank, len(scalars), step, wait.median_wait_s if wait else None,
                                  wait.share if wait else None))
    steps = {t.rank: t.median_step_s for t in timings if t.median_step_s is not None}
    waits = {t.rank: t.median_wait_s for t in timings if t.median_wait_s is not None}
    typical = float(np.median(list(steps.values()))) if steps else None
    typical_wait = float(np.median(list(waits.values()))) if waits else None
    floor = OUTLIER_FLOOR * (typical or 0.0)

    def named(values: dict[int, float], centre: float | None) -> list[OutOfLine]:
        return [OutOfLine(r, values[r], values[r] / centre if centre else math.inf, score)
                for r, score in high_outliers(values, floor)]

    return RankSpread(timings, typical, typical_wait, named(steps, typical), named(waits, typical_wait))


def _median_step(scalars: pd.DataFrame) -> float | None:
    if "step_time_s" not in scalars.columns:
        return None
    times = scalars["step_time_s"].dropna().iloc[1:]
    return float(times.median()) if len(times) else None
