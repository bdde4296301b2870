"""What the dashboard shows, as plain data read from run logs (no streamlit, no torch, no plotting).

Pages load a `RunView` once per change of the run log and hand its frames to the figure builders.
"""
from __future__ import annotations

import functools
import io
import math
import os
import re
import stat
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probes.checks import RunData, check_run
from probes.report import merge_findings
from probes.runlog import DB_NAME, RunLogError, RunReader, list_runs, rank_runs, run_status

# a run log written to within this long is "running"; older and never closed, "stopped"
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
# per-parameter series the pages read, in the order the export lists them
SERIES = ("grad_norm", "grad_nonfinite", "update_norm", "update_ratio", "weight_norm", "weight_nonfinite",
          "act_mean", "act_std", "act_zero_frac", "act_nonfinite_frac")


def log_version(run_dir: str | os.PathLike) -> tuple:
    """Changes whenever the run log changes (the database or its write-ahead log): a cache key.

    An empty write-ahead log counts as none: a reader opening a closed run creates one and removes it
    again, and that must not read as new steps."""
    parts = []
    root = Path(run_dir)
    # a torch.distributed run: every rank's log counts (rank r writes <run>/rank<r>/run.db)
    for folder in [root, *sorted(root.glob("rank[0-9]*"))]:
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

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def steps(self) -> int:
        return len(self.scalars)

    def get(self, name: str) -> pd.DataFrame:
        return self.series.get(name, pd.DataFrame(index=pd.Index([], name="step")))


# while a run is being written, its run checks (the costly part of a load: ~0.4 s at 10,000 steps x 200
# parameters) run again at most this often; the steps themselves are appended as they come
LIVE_CHECK_EVERY_S = 3.0


def load_run(run_dir: str | os.PathLike) -> RunView:
    """Everything the pages need from one run log; RunLogError (naming the file) when it cannot be read."""
    path = Path(run_dir)
    with RunReader(path) as reader:
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
                    ranks[rank] = _append(before, other.scalars(after=_last_step(before)))
            except RunLogError:
                pass
        status = run_status(path, meta)
        fresh = RunView(path=path, meta=meta, status=status, tree=tree, scalars=scalars, findings=view.findings,
                        series=series, ranks=ranks, checked_at=view.checked_at)
        if recheck is None:
            recheck = status != "running" or time.monotonic() - view.checked_at >= LIVE_CHECK_EVERY_S
        if recheck:
            data = RunData(meta=meta, tree=tree, scalars=scalars, series=fresh.get, findings=logged)
            if ranks:           # the cross-rank checks read every rank's checksums (small)
                others = RunData.from_reader(reader).ranks
                data.ranks = {r: data if r == 0 else d for r, d in others.items()}
            _check(fresh, data)
        else:                   # a watcher's finding logged since the last check is shown now
            fresh.findings = _sorted(merge_findings(fresh.findings, logged))
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


def weight_matrices(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the weight matrices (the update-ratio guide is about them; biases and norms move differently)."""
    keep = [c for c in frame.columns if c.endswith("weight") and "norm" not in c.lower()]
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


def growth_slope(values: pd.Series) -> float | None:
    """Least-squares slope per step (bytes/step for memory); None with fewer than 3 points."""
    values = values.dropna()
    if len(values) < 3:
        return None
    x = values.index.to_numpy(dtype="float64")
    y = values.to_numpy(dtype="float64")
    if np.ptp(x) == 0:
        return None
    return float(np.polyfit(x, y, 1)[0])


def memory_columns(scalars: pd.DataFrame) -> list[str]:
    return [c for c in scalars.columns if c.startswith("mem.")]


def data_wait_share(scalars: pd.DataFrame) -> float | None:
    """Share of step time spent waiting for the next batch, skipping the first step (workers start up)."""
    if "data_wait_s" not in scalars or "step_time_s" not in scalars:
        return None
    frame = scalars[["data_wait_s", "step_time_s"]].dropna().iloc[1:]
    total = float(frame["step_time_s"].sum())
    if len(frame) == 0 or total <= 0:
        return None
    return float(frame["data_wait_s"].sum()) / total


def steps_per_second(scalars: pd.DataFrame, window: int = 50) -> float | None:
    """Recent training speed: steps over wall time across the last `window` recorded steps."""
    if "time" not in scalars:
        return None
    times = scalars["time"].dropna().iloc[-window:]
    if len(times) < 2 or times.iloc[-1] <= times.iloc[0]:
        return None
    return (times.index[-1] - times.index[0]) / float(times.iloc[-1] - times.iloc[0])


def data_loading_summary(scalars: pd.DataFrame) -> dict[str, float | None]:
    """The Data loading page's numbers: wait share, median wait and median step (seconds), step 0 skipped."""
    out: dict[str, float | None] = {"share": data_wait_share(scalars), "median_wait_s": None, "median_step_s": None}
    for column, key in (("data_wait_s", "median_wait_s"), ("step_time_s", "median_step_s")):
        if column in scalars and scalars[column].notna().sum() > 1:
            out[key] = float(scalars[column].iloc[1:].median())
    return out


# the memory series a page leads with, best first: the accelerator's allocator, else the process
MAIN_MEMORY = ("mem.cuda_allocated_bytes", "mem.mps_allocated_bytes", "mem.rss_bytes")


def memory_summary(scalars: pd.DataFrame) -> dict[str, Any] | None:
    """The Memory page's numbers: which series leads, its last value, the peak and the growth per step
    after step 0 (bytes); None when the run recorded no memory."""
    cols = memory_columns(scalars)
    if not cols:
        return None
    main = next((c for c in MAIN_MEMORY if c in cols), cols[0])
    series = scalars[main].dropna()
    peak_col = "mem.cuda_peak_bytes" if "mem.cuda_peak_bytes" in cols else main
    peak = scalars[peak_col].max()
    return {"column": main, "now": float(series.iloc[-1]) if len(series) else None,
            "peak": float(peak) if pd.notna(peak) else None,
            "slope": growth_slope(series.iloc[1:]) if len(series) > 3 else None}


def rank_table(ranks: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """The Ranks page's table: per rank, steps written, median step and data wait (ms, step 0 skipped:
    start-up), the wait's share of step time, and peak memory (bytes) of the leading memory series."""
    rows = []
    for rank, scalars in sorted(ranks.items()):
        timing = data_loading_summary(scalars)
        memory = memory_summary(scalars)
        rows.append({"rank": rank, "steps": len(scalars),
                     "median step (ms)": _ms(timing["median_step_s"]),
                     "median data wait (ms)": _ms(timing["median_wait_s"]),
                     "waiting for data": timing["share"],
                     "peak memory": memory["peak"] if memory else None})
    return pd.DataFrame(rows)


def straggler(table: pd.DataFrame) -> dict[str, Any] | None:
    """The slowest rank by median step time, and how much slower it is than the fastest rank."""
    times = table.set_index("rank")["median step (ms)"].dropna() if len(table) else pd.Series(dtype=float)
    if len(times) < 2 or times.min() <= 0:
        return None
    slowest = int(times.idxmax())
    return {"rank": slowest, "ratio": float(times[slowest] / times.min()),
            "behind_steps": int(table["steps"].max() - table.set_index("rank").loc[slowest, "steps"])}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def update_summary(ratio: pd.DataFrame, norm: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: median and last update ratio, and the steps whose update was exactly zero."""
    summary = ratio.median(skipna=True).rename("median ratio").to_frame()
    summary["last ratio"] = ratio.ffill().iloc[-1] if len(ratio) else float("nan")
    zero = (norm.reindex(columns=ratio.columns) == 0).sum() if not norm.empty else 0
    summary["zero-update steps"] = zero
    return summary


def tree_counts(tree: dict[str, Any] | None) -> dict[str, int]:
    """The Registration tree page's numbers: modules, registered parameter values, trainable parameters
    in no optimizer, unregistered attributes (and modules that never ran nn.Module.__init__)."""
    tree = tree or {}
    params = [t for t in tree.get("tensors", []) if t["kind"] == "parameter" and not t.get("duplicate")]
    return {"modules": len(tree.get("modules", [])),
            "parameters": sum(int(t.get("numel") or 0) for t in params),
            "not_in_optimizer": sum(1 for t in params if t.get("requires_grad") and t.get("optimizer") is None),
            "unregistered": len(tree.get("unregistered", [])) + len(tree.get("uninitialised", []))}


def tensor_table(tree: dict[str, Any] | None) -> pd.DataFrame:
    """Parameters and buffers, plus unregistered tensors, one row each."""
    columns = ["name", "module", "kind", "shape", "dtype", "device", "numel", "trainable", "in_optimizer",
               "shared_with", "registered"]
    if not tree:
        return pd.DataFrame(columns=columns)
    rows = []
    for t in tree.get("tensors", []):
        rows.append({"name": t["name"], "module": t["module"], "kind": t["kind"],
                     "shape": "×".join(str(d) for d in t.get("shape") or []) or "scalar",
                     "dtype": t.get("dtype"), "device": t.get("device"), "numel": t.get("numel", 0),
                     "trainable": bool(t.get("requires_grad")), "in_optimizer": t.get("optimizer") is not None,
                     "shared_with": ", ".join(t.get("shared_with") or []), "registered": True})
    for u in tree.get("unregistered", []):
        rows.append({"name": u["path"], "module": u["module"], "kind": f"unregistered {u['kind']}",
                     "shape": u.get("container", ""), "dtype": None, "device": u.get("device"),
                     "numel": u.get("numel", 0), "trainable": u["kind"] != "module" or bool(u.get("numel")),
                     "in_optimizer": False, "shared_with": "", "registered": False})
    return pd.DataFrame(rows, columns=columns)


# one level of indentation in the module table: non-breaking spaces survive the table's rendering
_INDENT = "\u00a0" * 3


def module_table(tree: dict[str, Any] | None, max_depth: int | None = None) -> pd.DataFrame:
    """The modules in tree order, one row each, as torchinfo's summary lists them: the dotted path indented
    by depth (the root is "(model)", depth 0), class, parameter values owned by the module and its children
    (all, trainable, held by an optimizer) and the dtypes and devices of the module's own tensors.

    A tied weight (one tensor under several names) counts once in every subtree holding any of its names.
    One pass over the modules and one over the tensors; `max_depth` keeps the modules of depth <= max_depth."""
    columns = ["module", "path", "depth", "class", "parameters", "trainable", "in optimizer", "device", "dtype"]
    modules = (tree or {}).get("modules") or []
    if not modules:
        return pd.DataFrame(columns=columns)
    paths = [m["path"] for m in modules]
    index = {p: i for i, p in enumerate(paths)}
    n = len(modules)
    parent, depth = [-1] * n, [0] * n
    for i, path in enumerate(paths):
        if not path:
            continue
        depth[i] = path.count(".") + 1
        up = path
        while up:                       # the nearest listed ancestor (normally the path one dot up)
            up = up.rpartition(".")[0]
            j = index.get(up)
            if j is not None and j != i:
                parent[i] = j
                break
    totals = np.zeros((n, 3), dtype=np.int64)           # parameters, trainable, in optimizer
    devices: list[set] = [set() for _ in range(n)]
    dtypes: list[set] = [set() for _ in range(n)]
    owner: dict[str, int] = {}                          # parameter name -> its module's row
    duplicates = []
    for t in (tree or {}).get("tensors", []):
        i = index.get(t.get("module"))
        if i is None:
            continue
        if t.get("device"):
            devices[i].add(str(t["device"]))
        if t.get("dtype"):
            dtypes[i].add(str(t["dtype"]))
        if t.get("kind") != "parameter":
            continue
        owner[t["name"]] = i
        if t.get("duplicate"):
            duplicates.append(t)
        else:
            totals[i] += _tensor_counts(t)
    for i in sorted(range(n), key=depth.__getitem__, reverse=True):     # children before parents: sums go up
        if parent[i] >= 0:
            totals[parent[i]] += totals[i]
    # a tied weight's other names: counted in the modules above them that no earlier name already reached
    second = {t["name"] for t in duplicates}
    covered: dict[frozenset, set[int]] = {}             # per tensor: the rows that count it already
    for t in duplicates:
        group = frozenset([t["name"], *(t.get("shared_with") or [])])
        reached = covered.get(group)
        if reached is None:
            reached = covered[group] = set()
            for name in group - second:                 # its first name, counted in the sums above
                j = owner.get(name, -1)
                while j >= 0 and j not in reached:
                    reached.add(j)
                    j = parent[j]
        if not reached:                 # its first name is not in the tree: counted nowhere (as in tree_counts)
            continue
        counts, j = _tensor_counts(t), index[t["module"]]
        while j >= 0 and j not in reached:
            totals[j] += counts
            reached.add(j)
            j = parent[j]
    frame = pd.DataFrame({
        "module": [_INDENT * (d - 1) + "└ " + p if p else "(model)" for p, d in zip(paths, depth)],
        "path": paths, "depth": depth, "class": [m.get("class") for m in modules],
        "parameters": totals[:, 0], "trainable": totals[:, 1], "in optimizer": totals[:, 2],
        "device": [", ".join(sorted(s)) for s in devices], "dtype": [", ".join(sorted(s)) for s in dtypes]},
        columns=columns)
    if max_depth is not None:
        frame = frame[frame["depth"] <= max_depth].reset_index(drop=True)
    return frame


def _tensor_counts(t: dict[str, Any]) -> np.ndarray:
    numel = int(t.get("numel") or 0)
    return np.array([numel, numel if t.get("requires_grad") else 0,
                     numel if t.get("optimizer") is not None else 0], dtype=np.int64)


def default_module_depth(table: pd.DataFrame, rows: int = 200) -> int:
    """The level the module table opens at: the deepest that lists at most `rows` modules, at least 2
    (every level of a small model)."""
    if table.empty:
        return 0
    per_level = table["depth"].value_counts().sort_index().cumsum()
    fits = [int(level) for level, shown in per_level.items() if shown <= rows]
    return max(fits + [min(2, int(table["depth"].max()))])


# -- source lines -----------------------------------------------------------------------------------------
MAX_SOURCE_BYTES = 2 * 1024 * 1024
_LINE_SUFFIX = re.compile(r"\s*(\d+)(?:\s+in\s+\S.*)?")     # "13" or "13 in forward" after the last ':'


def split_location(location: str | None) -> tuple[str, int] | None:
    """'path/to/file.py:13' (or '...:13 in forward') -> ('path/to/file.py', 13); None for any other form.
    Split at the last ':', so a Windows drive letter stays in the path."""
    if not isinstance(location, str):
        return None
    path, sep, rest = location.strip().rpartition(":")
    match = _LINE_SUFFIX.fullmatch(rest) if sep else None
    if match is None or not path.lower().endswith(".py"):
        return None
    return path, int(match.group(1))


def source_excerpt(location: str | None, context: int = 2) -> tuple[int, list[str]] | None:
    """The line a location names and `context` lines either side of it, as (first line number, lines).

    The path is relative to the working folder or absolute; only a regular `.py` file under 2 MiB is read,
    and it is only read (never run). None when anything is off: no line, no such file or line, unreadable."""
    parsed = split_location(location)
    if parsed is None:
        return None
    path, line = parsed
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SOURCE_BYTES:
        return None
    lines = _source_lines(os.path.abspath(path), info.st_mtime_ns, info.st_size)
    if lines is None or not 1 <= line <= len(lines):
        return None
    first = max(1, line - max(0, context))
    return first, list(lines[first - 1:line + max(0, context)])


def excerpt_text(location: str | None, context: int = 2) -> str | None:
    """The source lines around a finding's 'file.py:line', numbered from the file's own line numbers, the
    finding's line marked with an arrow; None when the location names no readable line of a .py file."""
    excerpt = source_excerpt(location, context)
    if excerpt is None:
        return None
    first, lines = excerpt
    _, line = split_location(location)
    width = len(str(first + len(lines) - 1))
    return "\n".join(f"{'→' if n == line else ' '} {n:>{width}}  {text}" for n, text in enumerate(lines, first))


@functools.lru_cache(maxsize=64)
def _source_lines(path: str, mtime_ns: int, size: int) -> tuple[str, ...] | None:
    """A source file's lines (read once per path, modification time and size), or None when unreadable.
    Decoded as Python would (its coding line, else UTF-8), falling back to UTF-8 with replacements."""
    try:
        try:
            with tokenize.open(path) as f:
                text = f.read(MAX_SOURCE_BYTES + 1)
        except (SyntaxError, UnicodeDecodeError, LookupError):
            with open(path, "rb") as f:
                raw = f.read(MAX_SOURCE_BYTES + 1)
            text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    except (OSError, ValueError):
        return None
    lines = text.split("\n")        # Python numbers lines by newlines only (not form feeds, unlike splitlines)
    if lines and lines[-1] == "":
        lines.pop()
    return tuple(lines)


# -- export ----------------------------------------------------------------------------------------------
def statistics_frame(run: RunView) -> pd.DataFrame:
    """The run's statistics in long form: step, statistic, name, value (scalars have name '')."""
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
