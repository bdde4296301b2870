"""What the dashboard shows, as plain data read from run logs (no streamlit, no torch, no plotting).

Pages load a `RunView` once per change of the run log and hand its frames to the figure builders.
"""
from __future__ import annotations

import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from probes import replica
from probes._logschema import is_published
from probes.detectors import RunData, check_run
from probes.report import merge_findings
from probes.runlog import DB_NAME, RunLogError, RunReader
from probes.runs import list_runs, rank_runs, run_status

from app import longrun

# a run log written to within this long is "running"; older and never closed, "stopped"
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
# per-parameter series the pages read, in the order the export lists them
SERIES = ("grad_norm", "grad_nonfinite", "update_norm", "update_ratio", "weight_norm", "weight_nonfinite",
          "act_mean", "act_std", "act_zero_frac", "act_nonfinite_frac")


def log_version(run_dir: str | os.PathLike) -> tuple:
    """Changes whenever the run log changes (the database or its write-ahead log; for a log published in
    pieces on a shared filesystem, what probes.replica.version reads): a cache key.

    An empty write-ahead log counts as none: a reader opening a closed run creates one and removes it
    again, and that must not read as new steps."""
    parts = []
    root = Path(run_dir)
    # a torch.distributed run: every rank's log counts (rank r writes <run>/rank<r>/run.db)
    for folder in [root, *sorted(root.glob("rank[0-9]*"))]:
        if is_published(folder):
            parts.append(replica.version(folder) if (folder / DB_NAME).is_file() else None)
            continue
        for name in (DB_NAME, DB_NAME + "-wal"):
            try:
                st = os.stat(folder / name)
                parts.append((st.st_mtime_ns, st.st_size) if st.st_size else None)
            except OSError:
                parts.append(None)
    return tuple(parts)


@dataclass
class RunView:
    path: Path
    meta: dict[str, Any]
    status: str
    tree: dict[str, Any] | None
    scalars: pd.DataFrame
    findings: list[dict]
    series: dict[str, pd.DataFrame] = field(default_factory=dict)
    ranks: dict[int, pd.DataFrame] = field(default_factory=dict)    # scalars of each rank; {} for one process
    checked_at: float = 0.0         # when the run checks last ran over it (time.monotonic())
    long: Any = None                # a long run held downsampled (app.longrun.LongRun); None: every step exact
    checked_status: Any = None      # the run's status in its meta when a long run's checks last ran

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def steps(self) -> int:
        return self.long.steps if self.long is not None else len(self.scalars)

    @property
    def downsampled(self) -> tuple[int, int] | None:
        """(the first step shown exact, the bucket width before it) when old steps are bucketed, else None."""
        if self.long is None or self.long.boundary is None or self.long.width <= 1:
            return None
        return self.long.boundary, self.long.width

    def get(self, name: str) -> pd.DataFrame:
        return self.series.get(name, pd.DataFrame(index=pd.Index([], name="step")))


# while a run is being written, its run checks (the costly part of a load: ~0.4 s at 10,000 steps x 200
# parameters) run again at most this often; the steps themselves are appended as they come
LIVE_CHECK_EVERY_S = 3.0


def load_run(run_dir: str | os.PathLike) -> RunView:
    """Everything the pages need from one run log; RunLogError (naming the file) when it cannot be read."""
    path = Path(run_dir)
    with RunReader(path) as reader:
        if reader.step_count() > longrun.LONG_AFTER and not rank_runs(path):     # held downsampled
            return longrun.load(path, reader)
        series = {name: reader.series(name) for name in reader.series_names() if name != "scalars"}
        data = RunData.from_reader(reader, loaded=series)
        view = RunView(path=path, meta=data.meta, status=run_status(path, data.meta), tree=data.tree,
                       scalars=data.scalars, findings=[], series=series,
                       ranks={rank: d.scalars for rank, d in data.ranks.items()})
        _check(view, data)
    return view


def extend_run(view: RunView, *, recheck: bool | None = None) -> RunView:
    """`view` brought up to date by reading only what was written after its last step (per series and per
    rank); the tree, meta and logged findings are re-read (small). The run checks run again when `recheck`
    says so, by default when the last check is LIVE_CHECK_EVERY_S old or the run has ended. A run log
    that was started over (another run under the same name) is loaded whole."""
    path = view.path
    with RunReader(path) as reader:
        meta = reader.meta()
        if meta.get("started") != view.meta.get("started"):
            return load_run(path)
        if view.long is not None:
            return longrun.extend(view, reader)
        last = _last_step(view.scalars)
        scalars = _append(view.scalars, reader.scalars(after=last))
        series = dict(view.series)
        for name in reader.series_names():
            if name != "scalars":
                series[name] = _append(view.get(name), reader.series(name, after=_last_step(view.get(name))))
        tree, logged = reader.tree(), reader.findings()
        ranks = dict(view.ranks)
        for rank, rank_path in rank_runs(path).items():
            if rank_path == path:
                ranks[rank] = scalars
                continue
            try:
                with RunReader(rank_path) as other:
                    before = ranks.get(rank, pd.DataFrame())
                    # as RunData._rank reads a rank: its scalars without the wall-time column
                    ranks[rank] = _append(before, other.series("scalars", after=_last_step(before)))
            except RunLogError:
                pass
        status = run_status(path, meta)
        fresh = RunView(path=path, meta=meta, status=status, tree=tree, scalars=scalars, findings=view.findings,
                        series=series, ranks=ranks, checked_at=view.checked_at)
        if recheck is None:
            recheck = status != "running" or time.monotonic() - view.checked_at >= LIVE_CHECK_EVERY_S
        if recheck:
            data = RunData(meta=meta, tree=tree, scalars=scalars, series=fresh.get, findings=logged)
            if ranks:           # the cross-rank checks read every rank's checksums (small), not its steps again
                data.ranks = RunData.rank_logs(path, data, ranks)
            _check(fresh, data)
        else:                   # a watcher's finding logged since the last check is shown now
            fresh.findings = _sorted(merge_findings(fresh.findings, logged))
    if fresh.steps > longrun.LONG_AFTER and not ranks:     # grown long: held downsampled from now on
        longrun.from_view(fresh)
    return fresh


def live_numbers(run_dir: str | os.PathLike, window: int = 50) -> dict[str, Any]:
    """Status, step count and recent speed of a run, from a few rows: what the live header shows twice a
    second without reloading the run."""
    path = Path(run_dir)
    with RunReader(path) as reader:
        meta = reader.meta()
        steps = reader.step_count()
        recent = reader.recent_step_times(window)
    speed = None
    if len(recent) >= 2 and recent[-1][1] > recent[0][1]:
        speed = (recent[-1][0] - recent[0][0]) / (recent[-1][1] - recent[0][1])
    return {"status": run_status(path, meta), "steps": steps, "speed": speed}


def _check(view: RunView, data: RunData) -> None:
    view.findings = _sorted(merge_findings(data.findings, [f.to_dict() for f in check_run(data)]))
    view.checked_at = time.monotonic()


def _sorted(findings: list[dict]) -> list[dict]:
    return sorted(findings, key=lambda f: SEVERITY_ORDER.get(f["severity"], 3))


def _last_step(frame: pd.DataFrame) -> int | None:
    return int(frame.index[-1]) if len(frame) else None


def _append(frame: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if new.empty:
        return frame
    if frame.empty:
        return new
    return pd.concat([frame, new])


@dataclass
class RunSummary:
    path: Path
    name: str
    model: str | None
    model_file: str | None
    status: str
    steps: int
    started: float | None
    error: str | None = None
    location: str | None = None         # file:line of the model class (runs of a training script)


def list_run_summaries(run_root: str | os.PathLike) -> list[RunSummary]:
    """The runs under run_root, newest first; unreadable logs are listed with their error, not hidden."""
    out = []
    for path in reversed(list_runs(run_root)):
        try:
            with RunReader(path) as reader:
                meta = reader.meta()
                steps = reader.step_count()
            out.append(RunSummary(path, path.name, meta.get("model"), meta.get("model_file"),
                                  run_status(path, meta), steps, meta.get("started"), meta.get("error"),
                                  meta.get("model_location")))
        except RunLogError as e:
            out.append(RunSummary(path, path.name, None, None, "unreadable", 0, None, str(e)))
    # newest first by when each run started (a log's file time also moves when a reader checkpoints it)
    out.sort(key=lambda r: r.started if r.started is not None else _mtime(r.path), reverse=True)
    return out


def _mtime(run: Path) -> float:
    try:
        return (run / DB_NAME).stat().st_mtime
    except OSError:
        return 0.0


def latest_run_for(run_root: str | os.PathLike, model_file: str | os.PathLike) -> Path | None:
    """The newest run whose model file is this one."""
    target = Path(model_file).resolve()
    for summary in list_run_summaries(run_root):
        if summary.model_file and Path(summary.model_file).resolve() == target:
            return summary.path
    return None


def severity_counts(findings: list[dict]) -> dict[str, int]:
    counts = {s: 0 for s in SEVERITY_ORDER}
    for f in findings:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    return counts


# -- export ----------------------------------------------------------------------------------------------
def statistics_frame(run: RunView) -> pd.DataFrame:
    """The run's statistics in long form: step, statistic, name, value (scalars have name ''). Every step
    exact: a run shown downsampled is read again from its log."""
    if run.long is not None:
        with RunReader(run.path) as reader:
            run = RunView(path=run.path, meta=run.meta, status=run.status, tree=run.tree, scalars=reader.scalars(),
                          findings=[], series={name: reader.series(name) for name in SERIES})
    parts = []
    scal = run.scalars.drop(columns=["time"], errors="ignore")
    if not scal.empty:
        long = scal.reset_index().melt(id_vars="step", var_name="statistic", value_name="value")
        long.insert(2, "name", "")
        parts.append(long)
    for stat in SERIES:
        frame = run.get(stat)
        if frame.empty:
            continue
        long = frame.reset_index().melt(id_vars="step", var_name="name", value_name="value")
        long.insert(1, "statistic", stat)
        parts.append(long[["step", "statistic", "name", "value"]])
    if not parts:
        return pd.DataFrame(columns=["step", "statistic", "name", "value"])
    out = pd.concat(parts, ignore_index=True)
    return out.dropna(subset=["value"])


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def fmt_bytes(n: float | None) -> str:
    if n is None or not math.isfinite(n):
        return "–"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{sign}{n:,.1f} {unit}" if unit != "B" else f"{sign}{n:,.0f} B"
        n /= 1024
    return f"{sign}{n:.1f} TiB"
