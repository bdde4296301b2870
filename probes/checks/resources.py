"""Training run checks about resources: memory that grows step over step, and a loop waiting for data."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..findings import Finding
from . import thresholds as T
from .base import RunData
from .training import _fmt, module_location


def theil_sen(steps: np.ndarray, values: np.ndarray) -> float:
    """Median of pairwise slopes: one outlier step (a cache filled once) cannot make a trend."""
    i, j = np.triu_indices(len(steps), k=1)
    dx = steps[j] - steps[i]
    return float(np.median((values[j] - values[i]) / dx)) if len(dx) else 0.0


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


# -- memory-growth ------------------------------------------------------------------------------------
def memory_growth(data: RunData) -> list[Finding]:
    found = []
    for column, label, slope_min, floor in (
            ("mem.cuda_allocated_bytes", "CUDA allocated memory", T.MEMORY_CUDA_SLOPE, T.MEMORY_CUDA_FLOOR),
            ("mem.rss_bytes", "process RSS", T.MEMORY_RSS_SLOPE, T.MEMORY_RSS_FLOOR)):
        if column not in data.scalars.columns:
            continue
        values = data.scalars[column].dropna()
        values = values[values.index >= values.index.min() + T.MEMORY_SKIP_STEPS].iloc[-T.MEMORY_WINDOW:] \
            if not values.empty else values
        if len(values) < T.MEMORY_MIN_STEPS:
            continue
        x, y = values.index.to_numpy(dtype=float), values.to_numpy(dtype=float)
        slope = theil_sen(x, y)
        growth = slope * (x[-1] - x[0])
        half = len(x) // 2
        halves = [theil_sen(x[:half], y[:half]), theil_sen(x[half:], y[half:])]
        # sustained: both halves of the window climb too (a one-time jump climbs in one half only)
        if slope < slope_min or growth < floor or min(halves) < slope_min / 2:
            continue
        found.append(Finding(
            code="memory-growth", severity="warning",
            title=f"{label[0].upper() + label[1:]} grows {_mib(slope)} per step ({_mib(y[-1] - y[0])} over "
                  f"steps {int(x[0])}-{int(x[-1])})",
            detail=(f"{label[0].upper() + label[1:]} rose steadily from {_mib(y[0])} to {_mib(y[-1])}: something "
                    f"keeps a reference every step. The usual culprit is accumulating a tensor that carries "
                    f"its autograd graph (total_loss += loss, a list of outputs or losses), which keeps every "
                    f"step's activations alive; the run will eventually run out of memory."),
            module=None, location=None,
            evidence={"series": column, "slope_bytes_per_step": slope, "growth_bytes": float(y[-1] - y[0]),
                      "fitted_growth_bytes": growth, "half_slopes": halves,
                      "steps": [int(s) for s in x[:50]], "bytes": [float(v) for v in y[:50]],
                      "threshold_bytes_per_step": slope_min, "floor_bytes": floor},
            fix=("Store plain numbers, not tensors: total_loss += loss.item() (or loss.detach()); run "
                 "validation under torch.no_grad().")))
        break           # CUDA memory says it more precisely; RSS would repeat it
    return found


# -- dataloader-stall ---------------------------------------------------------------------------------
def dataloader_stall(data: RunData) -> list[Finding]:
    s = data.scalars
    if "data_wait_s" not in s.columns or "step_time_s" not in s.columns:
        return []
    frame = s[["data_wait_s", "step_time_s"]].dropna()
    # skip start-up: worker k of a DataLoader delivers batch k first, and that batch carries the worker's own
    # start-up (its processes are started one after another); without workers only the first batch does
    workers = (data.meta.get("loader") or {}).get("num_workers")
    warmup = max(1, workers) if isinstance(workers, int) else 1
    frame = frame.iloc[warmup:]
    frame = frame[frame["step_time_s"] > 0]
    if len(frame) < T.DATA_WAIT_MIN_STEPS:
        return []
    median_wait = float(frame["data_wait_s"].median())
    # a busy machine only ever adds time to the model's compute: its lower quartile is what a step needs
    compute = float((frame["step_time_s"] - frame["data_wait_s"]).clip(lower=0).quantile(T.DATA_COMPUTE_QUANTILE))
    median_share = median_wait / (median_wait + compute) if median_wait + compute > 0 else 0.0
    if median_share < T.DATA_WAIT_SHARE or median_wait < T.DATA_WAIT_MIN_S:
        return []
    loader = data.meta.get("loader") or {}
    cpus = data.meta.get("cpus")
    workers = loader.get("num_workers")
    cuda = str(data.meta.get("device", "")).startswith("cuda")
    advice = []
    suggested = None
    if isinstance(workers, int):
        cap = min(cpus or T.DATA_WAIT_MAX_WORKERS, T.DATA_WAIT_MAX_WORKERS)
        if workers < cap:
            suggested = max(cap, 2) if workers == 0 else min(cap, workers * 2)
            advice.append(f"raise num_workers from {workers} to {suggested}"
                          + (f" ({cpus} CPUs available)" if cpus else ""))
        else:
            advice.append(f"num_workers={workers} already uses the {cpus or 'available'} CPUs: make each "
                          f"sample cheaper (decode/resize once and cache, or move augmentation to the GPU)")
        if cuda and not loader.get("pin_memory"):
            advice.append("set pin_memory=True")
        if cuda and (workers or suggested) and not loader.get("persistent_workers"):
            advice.append("set persistent_workers=True (workers are not restarted every epoch)")
    else:
        advice.append("load data in background workers (a DataLoader with num_workers > 0) or prefetch")
    fix = "; ".join(advice)
    return [Finding(
        code="dataloader-stall", severity="warning",
        title=f"The loop waits for data {median_share:.0%} of each step ({median_wait * 1e3:.1f} ms per step)",
        detail=(f"Over {len(frame)} steps (the first, with worker start-up, not counted) the median step spent "
                f"{median_wait * 1e3:.1f} ms of {float(frame['step_time_s'].median()) * 1e3:.1f} ms waiting for "
                f"the next batch: the {'GPU' if cuda else 'model'} idles while "
                f"{loader.get('class', 'the loader')} prepares data."),
        module=None, location=data.meta.get("loader_location"),     # where make_loader() builds it, if known
        evidence={"median_share": median_share, "median_wait_s": median_wait,
                  "median_step_s": float(frame["step_time_s"].median()), "steps": len(frame),
                  "loader": loader, "cpus": cpus, "device": data.meta.get("device"),
                  "suggested_num_workers": suggested},
        fix=fix[0].upper() + fix[1:] + ".")]
