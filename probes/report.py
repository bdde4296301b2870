"""`python -m probes report RUN_DIR`: a recorded run, finished or still being written, as a result dict."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .detectors import RunData, check_run, explained_elsewhere
from .detectors import thresholds as T
from .runlog import DB_NAME, RunLogError, RunReader
from .runs import list_runs, run_status
from .stats import rank_spread


def merge_findings(*groups: list[dict]) -> list[dict]:
    """Findings from several sources, each said once (same code, module, location and title).

    One bug, one finding: parameters of a layer built inside forward are, of course, in no optimizer;
    layer-created-in-forward says why, so param-not-in-optimizer does not say it again for them."""
    seen, merged = set(), []
    for group in groups:
        for f in group:
            key = (f["code"], f.get("module"), f.get("location"), f.get("title"))
            if key not in seen:
                seen.add(key)
                merged.append(f)
    return [f for f in merged if not explained_elsewhere(f, merged)]


def resolve_run(run_dir: str | Path) -> Path:
    """A run directory, or the newest run inside a folder of runs."""
    root = Path(run_dir)
    if (root / DB_NAME).is_file():
        return root
    if not root.exists():
        raise RunLogError(f"{root}: no such directory")
    runs = list_runs(root)
    if not runs:
        raise RunLogError(f"{root}: no run log here (expected a run directory holding {DB_NAME}, "
                          f"or a folder of runs)")
    return runs[-1]


def rank_summary(data: RunData) -> dict[str, Any] | None:
    """A torch.distributed run's ranks in a few numbers, however many there are: the logs found and the
    world size, the median rank's step and data wait (seconds), the stragglers and the ranks waiting longer
    for data than the others, worst first (probes.stats.rank_spread: the ranks the Ranks page names);
    None for a run of one process."""
    if not data.ranks:
        return None
    spread = rank_spread({r: d.scalars for r, d in data.ranks.items()}, T.DATA_COMPUTE_QUANTILE)
    shares = {t.rank: t.wait_share for t in spread.timings}
    return {"found": len(data.ranks), "world_size": data.meta.get("world_size"),
            "median_step_s": spread.median_step_s, "median_wait_s": spread.median_wait_s,
            "stragglers": [{"rank": o.rank, "median_step_s": o.value, "vs_median": o.ratio}
                           for o in spread.stragglers],
            "waiting_for_data": [{"rank": o.rank, "median_wait_s": o.value, "share": shares.get(o.rank)}
                                 for o in spread.waiting]}


def report_run(run_dir: str | Path) -> dict[str, Any]:
    base: dict[str, Any] = {"model": None, "device": None, "steps": 0, "run_dir": str(run_dir), "error": None,
                            "findings": []}
    try:
        path = resolve_run(run_dir)
        with RunReader(path) as reader:
            data = RunData.from_reader(reader)
            steps = reader.step_count()
            # a run still being written has not run its checks yet: run them now, report each finding once
            findings = merge_findings(data.findings, [f.to_dict() for f in check_run(data)])
            meta, scalars, ranks = data.meta, data.scalars, len(data.ranks)
            per_rank = rank_summary(data)
    except RunLogError as e:
        return {**base, "error": str(e)}
    loss = None
    if "loss" in scalars and scalars["loss"].notna().any():
        loss = float(scalars["loss"].dropna().iloc[-1])
    status = run_status(path, meta)       # a run never closed whose writer went silent reads as stopped
    error = meta.get("error") if status == "failed" else None
    from .findings import notes
    return {"model": meta.get("model"), "device": meta.get("device"), "steps": steps, "run_dir": str(path),
            "error": error, "findings": findings, "status": status, "ranks": ranks, "rank_summary": per_rank,
            "notes": notes(meta.get("not_recorded"), meta.get("not_watched")),
            "loss": loss if loss is None or math.isfinite(loss) else loss}
