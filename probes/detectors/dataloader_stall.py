"""dataloader-stall: the loop waits for data a large share of each step (the median wait against the lower
quartile of the compute time); the advice fits the loader, the CPUs and the device. A run check."""
from __future__ import annotations

from ..findings import Finding
from ..stats import data_wait, loader_workers
from . import thresholds as T
from .base import RunData

CODE = "dataloader-stall"


def dataloader_stall(data: RunData) -> list[Finding]:
    # the share the Data loading page shows too (probes.stats): the median wait against the lower quartile of
    # the compute, after the loader's start-up
    wait = data_wait(data.scalars, loader_workers(data.meta), T.DATA_COMPUTE_QUANTILE)
    if wait is None or wait.steps < T.DATA_WAIT_MIN_STEPS:
        return []
    median_wait, median_share = wait.median_wait_s, wait.share
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
        code=CODE, severity="warning",
        title=f"The loop waits for data {median_share:.0%} of each step ({median_wait * 1e3:.1f} ms per step)",
        detail=(f"Over {wait.steps} steps (the first, with worker start-up, not counted) the median step spent "
                f"{median_wait * 1e3:.1f} ms of {wait.median_step_s * 1e3:.1f} ms waiting for "
                f"the next batch: the {'GPU' if cuda else 'model'} idles while "
                f"{loader.get('class', 'the loader')} prepares data."),
        module=None, location=data.meta.get("loader_location"),     # where make_loader() builds it, if known
        evidence={"median_share": median_share, "median_wait_s": median_wait,
                  "median_step_s": wait.median_step_s, "steps": wait.steps,
                  "loader": loader, "cpus": cpus, "device": data.meta.get("device"),
                  "suggested_num_workers": suggested},
        fix=fix[0].upper() + fix[1:] + ".")]
