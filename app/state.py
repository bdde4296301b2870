"""Session state, the sidebar (model file, settings, Run/Cancel, progress, watch) and the URL.

The user's model file only ever runs in a worker subprocess (probes.cli.CheckJob); this process reads the
run logs the worker writes.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

import streamlit as st

from app import server
from app.data import (RunView, extend_run, latest_run_for, list_run_summaries, live_numbers, load_run, log_version,
                      steps_per_second)
from app.watch import FileWatch, RunsWatch
from probes.cli import CheckJob
from probes.runlog import RunLogError, list_runs, rank_runs, run_status

ROOT = Path(__file__).resolve().parent.parent
# the bundled samples: beside the dashboard in a clone; an installed dashboard finds a clone's in the folder
# it was started in (the Quick start runs `forgescope ui` from the clone)
SAMPLES_DIR = next((d for d in (ROOT / "sample_models", Path("sample_models").resolve()) if d.is_dir()),
                   ROOT / "sample_models")
DEFAULT_MODEL = "sample_models/unregistered_module.py"
MODEL_ENV = "FORGESCOPE_MODEL"          # set by `forgescope ui [MODEL_FILE]`: the model to open ("" for none)
STEP_LIMITS = (1, 10_000)
BATCH_LIMITS = (1, 4096)


def run_root() -> Path:
    """Where run logs live: FORGESCOPE_RUN_DIR, else ./runs (the command line's default too)."""
    return Path(os.environ.get("FORGESCOPE_RUN_DIR", "runs"))


def display_path(path: str | os.PathLike) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def samples() -> list[str]:
    return [display_path(p) for p in sorted(SAMPLES_DIR.glob("*.py"))]


def default_model() -> str:
    """The model the dashboard opens on: `forgescope ui`'s MODEL_FILE (none without one: the run directory is
    what it shows), else the bundled sample when started from the clone (`streamlit run app/main.py`)."""
    if MODEL_ENV in os.environ:
        return os.environ[MODEL_ENV]
    return DEFAULT_MODEL if Path(DEFAULT_MODEL).is_file() else ""


def runs_blocked() -> str | None:
    """Why this dashboard runs no model file (it listens beyond this machine with no opt-in), or None."""
    ss = st.session_state
    if "_runs_blocked" not in ss:
        ss._runs_blocked = server.runs_blocked()
    return ss._runs_blocked


def model_problem(path: str) -> str | None:
    """Why this path cannot be checked (shown next to the input), or None."""
    if not path.strip():
        return "Type the path of a .py file that defines your model."
    p = Path(path)
    if p.suffix != ".py":
        return f"{path}: not a Python file (the dashboard runs .py files only)"
    if not p.exists():
        return f"{path}: no such file (paths are relative to {Path.cwd()})"
    if p.is_dir():
        return f"{path}: is a folder; give the path of a .py file"
    return None


CHECKPOINT_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".tar"}
_SKIP_DIRS = {"runs", "node_modules", "__pycache__", "site-packages", "wandb", "lightning_logs"}


def checkpoint_files(model_file: str, limit: int = 50) -> list[str]:
    """Checkpoint-looking files beside the model file and in the working folder, two levels deep at most
    (hidden folders, virtual environments and run logs skipped), newest first."""
    found: set[Path] = set()
    roots = {Path.cwd()} | ({Path(model_file).resolve().parent} if Path(model_file).is_file() else set())
    for root in roots:
        for folder, dirs, files in os.walk(root):
            depth = len(Path(folder).relative_to(root).parts)
            dirs[:] = [] if depth >= 2 else [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                                               and not (Path(folder, d) / "pyvenv.cfg").exists()]
            found.update(Path(folder, f) for f in files if Path(f).suffix in CHECKPOINT_SUFFIXES)
    newest = sorted(found, key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
    return [display_path(p) for p in newest[:limit]]


def checkpoint_problem(path: str) -> str | None:
    """Why this path cannot be a checkpoint (shown under the input), or None."""
    if not path:
        return "Type the path of a checkpoint file (saved with torch.save)."
    p = Path(path)
    if not p.exists():
        return f"{path}: no such file (paths are relative to {Path.cwd()})"
    if p.is_dir():
        return f"{path}: is a folder; give the path of a checkpoint file"
    return None


def checkpoint_key(model_file: str, checkpoint: str) -> tuple:
    """What a checkpoint result was computed from: both paths and their file times (a re-save makes it stale)."""
    def stamp(path: str):
        try:
            return Path(path).stat().st_mtime_ns
        except OSError:
            return None
    return model_file, checkpoint, stamp(model_file), stamp(checkpoint)


# -- shared, per server --------------------------------------------------------------------------------
@st.cache_resource
def file_watch() -> FileWatch:
    return FileWatch()


@st.cache_resource
def runs_watch(root: str) -> RunsWatch:
    return RunsWatch(root)


class _Devices:
    """The devices torch sees, found once per server in a subprocess (torch is not imported here)."""

    def __init__(self):
        self.found: list[str] | None = None
        threading.Thread(target=self._probe, daemon=True).start()

    def _probe(self):
        code = ("import torch\nd=['cpu']\nif torch.cuda.is_available(): d.insert(0,'cuda')\n"
                "mps=getattr(torch.backends,'mps',None)\nif mps is not None and mps.is_available(): d.insert(0,'mps')\n"
                "print(' '.join(d))")
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            self.found = out.stdout.split() or ["cpu"]
        except (OSError, subprocess.SubprocessError):
            self.found = ["cpu"]


@st.cache_resource
def devices() -> _Devices:
    return _Devices()


class _Views:
    """The runs on screen, shared by every session: each read whole once, then extended with only the
    steps written since (app.data.extend_run) whenever its log changes."""

    KEEP = 16

    def __init__(self):
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[tuple, RunView]] = OrderedDict()

    def get(self, path: str, version: tuple) -> RunView:
        with self._lock:
            cached = self._items.get(path)
            if cached is not None and cached[0] == version:
                view = cached[1]
                if view.status == "running":        # silent since: killed? (its files do not change)
                    view.status = run_status(view.path, view.meta)
            else:
                view = extend_run(cached[1]) if cached is not None else load_run(path)
            self._items[path] = (version, view)
            self._items.move_to_end(path)
            while len(self._items) > self.KEEP:
                self._items.popitem(last=False)
            return view


@st.cache_resource
def _views() -> _Views:
    return _Views()


def _load(path: str, version: tuple) -> RunView:
    return _views().get(path, version)


# -- per session ---------------------------------------------------------------------------------------
def init() -> None:
    """First script run of a session: take the model file and run from the URL (a shared link)."""
    ss = st.session_state
    if ss.get("_init"):
        return
    ss._init = True
    params = st.query_params
    ss.model_file = params.get("model") or default_model()
    ss.run_path = params.get("run")
    ss.job = None
    ss.last_result = None
    ss.auto_started = set()
    ss.seen_version = None
    ss.steps, ss.batch_size, ss.device = 20, 8, "auto"
    ss.watch = True
    if ss.run_path and not (run_root() / ss.run_path).is_dir() and not Path(ss.run_path).is_dir():
        ss.link_problem = f"The run in the link ({ss.run_path}) is not in {run_root()}; showing the newest run."
        ss.run_path = None


def sync_url() -> None:
    """Keep the view in the URL: model file and run (the page is in the path)."""
    ss = st.session_state
    wanted = {"model": ss.model_file}
    if ss.run_path:
        wanted["run"] = Path(ss.run_path).name
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    if not ss.run_path and "run" in st.query_params:
        del st.query_params["run"]


def current_run_path() -> Path | None:
    ss = st.session_state
    if ss.run_path:
        for candidate in (run_root() / Path(ss.run_path).name, Path(ss.run_path)):
            if candidate.is_dir():
                return candidate
    if model_problem(ss.model_file) is None:
        return latest_run_for(run_root(), ss.model_file)
    if not ss.model_file.strip():           # no model chosen (forgescope ui --logdir runs): the newest run
        runs = list_runs(run_root())
        return runs[-1] if runs else None
    return None


def multi_rank() -> bool:
    """Whether the run on screen was written by several torch.distributed ranks (the Ranks page shows)."""
    path = current_run_path()
    return path is not None and bool(rank_runs(path))


def current_run() -> RunView | None:
    """The run on screen, loaded once per change of its log; None when there is none yet."""
    path = current_run_path()
    if path is None:
        return None
    if log_version(path)[0] is None:        # the folder is there, its log not yet: a run about to start
        return None
    try:
        return _load(str(path), log_version(path))
    except RunLogError as e:
        st.error(str(e))
        return None


def start_check(reason: str = "") -> None:
    ss = st.session_state
    problem = runs_blocked() or model_problem(ss.model_file)
    if problem:
        ss.last_result = {"error": problem, "findings": []}
        return
    if ss.job is not None:
        ss.job.cancel()
    run_root().mkdir(parents=True, exist_ok=True)
    ss.job = CheckJob(ss.model_file, steps=int(ss.steps), batch_size=int(ss.batch_size), device=ss.device,
                      run_dir=str(run_root())).start()
    ss.job_reason = reason
    ss.last_result = None


def _finish(job: CheckJob) -> None:
    ss = st.session_state
    result = job.result() or {}
    ss.last_result = result
    if result.get("run_dir"):
        ss.run_path = Path(result["run_dir"]).name
    ss.job = None


def typed_path(text: str) -> str:
    """A path as people paste it: surrounding blanks and quotes dropped, ~ expanded."""
    return os.path.expanduser(text.strip().strip("'\"").strip())


def _on_model_change() -> None:
    ss = st.session_state
    typed = typed_path(ss._model_input)
    if not typed:           # an emptied field names no model: keep the model and the run on screen
        ss._model_input = ss.model_file
        return
    ss.model_file = typed
    ss.run_path = None
    ss.last_result = None


def _on_sample_pick() -> None:
    ss = st.session_state
    if ss._sample:
        ss.model_file = ss._sample
        ss._model_input = ss._sample
        ss.run_path = None
        ss.last_result = None


def _cancel() -> None:
    job = st.session_state.job
    if job is not None:
        job.cancel()
        _finish(job)


def sidebar() -> None:
    ss = st.session_state
    with st.sidebar:
        st.markdown("### ForgeScope")
        if "_model_input" not in ss:
            ss._model_input = ss.model_file
        st.text_input("Model file", key="_model_input", on_change=_on_model_change,
                      help="Path of a .py file defining the model (relative to where the dashboard started). "
                           "It runs in a separate worker process, never in the dashboard.")
        choices = samples()
        st.selectbox("…or a bundled sample", [""] + choices, key="_sample", on_change=_on_sample_pick,
                     format_func=lambda s: s.removeprefix("sample_models/") if s else "pick a sample")
        blocked = runs_blocked()
        problem = blocked or model_problem(ss.model_file)
        if blocked:
            st.warning(blocked, icon=":material/lock:")
        elif problem and not ss.model_file.strip():
            st.info(problem)                # nothing chosen yet: a hint, not an error
        elif problem:
            st.error(problem)
        found = devices().found
        options = ["auto"] + (found or ["cpu"])
        if ss.device not in options:
            ss.device = "auto"
        st.selectbox("Device", options, key="device",
                     help="auto picks cuda, then mps, then cpu" + ("" if found else " (looking for GPUs…)"))
        c1, c2 = st.columns(2)
        c1.number_input("Steps", *STEP_LIMITS, key="steps", step=5)
        c2.number_input("Batch size", *BATCH_LIMITS, key="batch_size", step=8)
        # first visit to a model with no run yet: check it without waiting for a click
        if (ss.job is None and problem is None and ss.model_file not in ss.auto_started
                and current_run_path() is None):
            ss.auto_started.add(ss.model_file)
            start_check("first look")
        running = ss.job is not None
        b1, b2 = st.columns(2)
        b1.button("Run", type="primary", disabled=running or problem is not None, on_click=start_check,
                  args=("run",), width="stretch")
        b2.button("Cancel", disabled=not running, on_click=_cancel, width="stretch")
        st.toggle("Watch file (re-run on save)", key="watch",
                  help="Saving the model file re-runs the check and refreshes the page.")
        run = current_run()
        live = run is not None and run.status == "running"
        # what the polling fragment follows: a run being written, or a run folder whose log is not
        # readable yet (a link opened as the run starts): the page fills in when the log appears
        path = current_run_path()
        ss.live_path = str(path) if live or (run is None and path is not None) else None
        if live:
            st.toggle("Follow the live run", value=True, key="follow",
                      help="The pages refresh as the run writes new steps. Turn off to look back at a moment.")
        following = ss.live_path is not None and ss.get("follow", True)
        # a job's progress and a live run are polled twice a second (a new step on screen within ~1 s);
        # a watched file once a second
        # and the run directory, for new runs, once a second
        period = 0.5 if ss.job is not None or following else 1.0
        st.fragment(run_every=period)(_job_panel)()


def _job_panel() -> None:
    ss = st.session_state
    if ss.watch and not runs_blocked() and model_problem(ss.model_file) is None:
        watcher = file_watch()
        watcher.watch(ss.model_file)
        version = (ss.model_file, watcher.version(ss.model_file))
        if ss.seen_version is None or ss.seen_version[0] != ss.model_file:
            ss.seen_version = version
        elif version != ss.seen_version:
            ss.seen_version = version
            start_check("file saved")
    _new_runs()
    job = ss.job
    if job is None:
        _follow_live()
        return
    if job.poll():
        _finish(job)
        st.rerun()
    done, total = job.progress()
    why = " (file saved)" if ss.get("job_reason") == "file saved" else ""
    label = f"Checking {Path(ss.model_file).name}{why}: step {done} of {total}" if done else \
        f"Starting {Path(ss.model_file).name}{why}: importing torch and the model…"
    st.progress(min(done / max(total, 1), 1.0), text=label)


def _new_runs() -> None:
    """A run that appeared in the run directory (a training script started a Probe): the Runs page lists
    it at once; other pages say so in a toast."""
    ss = st.session_state
    try:
        watch = runs_watch(str(run_root().resolve()))
    except OSError:             # an unwritable run directory: no watching (the Runs page says what is wrong)
        return
    if ss.get("runs_version") is None:
        ss.runs_version = watch.version
    elif watch.version != ss.runs_version:
        ss.runs_version = watch.version
        if ss.get("page_title") == "Runs":
            st.rerun()
        elif (watch.newest and ss.job is None and watch.newest != Path(ss.run_path or ".").name
              and (run_root() / watch.newest / "run.db").is_file()):     # not this session's own check
            st.toast(f"New run: {watch.newest} — open it from Runs", icon=":material/fiber_new:")


def _follow_live() -> None:
    """A run still being written: when its log changes, rerun the page so every chart shows the new steps."""
    ss = st.session_state
    path = ss.get("live_path")
    if path is None or not ss.get("follow", True):      # the toggle is shown only while a run is live
        return
    version = (path, log_version(path))
    if ss.get("live_version") is None or ss.live_version[0] != version[0]:
        ss.live_version = version
    elif version != ss.live_version:
        # the step counter in the header follows every half second; the charts are redrawn at most every
        # second, or less often when a page takes long to draw (a rerun must not start before the last ends)
        if time.monotonic() - ss.get("page_done", 0.0) >= max(1.0, 2 * ss.get("page_seconds", 0.0)):
            ss.live_version = version
            st.rerun()


def load_compare(name: str) -> RunView | None:
    path = run_root() / name
    try:
        return _load(str(path), log_version(path))
    except RunLogError as e:
        st.error(str(e))
        return None


def run_summaries():
    return list_run_summaries(run_root())


# -- small page helpers --------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(text) -> str:
    """User-controlled text made literal for st.markdown (names, paths, messages)."""
    return _MD_SPECIAL.sub(r"\\\1", "" if text is None else str(text))


STATUS_BADGE = {"finished": ":green-badge[finished]", "running": ":blue-badge[running]",
                "failed": ":red-badge[failed]", "stopped": ":orange-badge[stopped]"}


def header(title: str, run: RunView | None) -> None:
    st.header(title, anchor=False)
    ss = st.session_state
    if ss.get("link_problem"):
        st.warning(ss.pop("link_problem"))
    if run is None:
        path = current_run_path()
        if path is not None and log_version(path)[0] is None:
            st.info(f"Waiting for run {md(path.name)} to write its first step… the page fills in on its own.")
        elif ss.job is None:
            st.info(f"No run yet for {md(ss.model_file)}. Press **Run** in the sidebar to check it.")
        else:
            st.info("Checking the model… the page fills in when the first run finishes.")
        return
    following = run.status == "running" and ss.get("follow", True)
    # a live run's badge, step count and speed refresh on their own, twice a second, from a few rows
    st.fragment(run_every=0.5 if following else None)(_run_caption)(run, following)


def _run_caption(run: RunView, live: bool) -> None:
    meta = run.meta
    if live:
        try:
            numbers = live_numbers(run.path)
        except RunLogError:
            numbers = {"status": run.status, "steps": run.steps, "speed": steps_per_second(run.scalars)}
    else:
        numbers = {"status": run.status, "steps": run.steps,
                   "speed": steps_per_second(run.scalars) if run.status == "running" else None}
    where = meta.get("model_location") or meta.get("model_file")
    steps, speed = numbers["steps"], numbers["speed"]
    parts = [f"**{md(meta.get('model') or '?')}**", md(where) if where else None,
             f"{steps:,} step{'' if steps == 1 else 's'} on {md(meta.get('device') or '?')}",
             f"{speed:,.1f} steps/s" if speed else None, f"run {md(run.name)}"]
    st.caption(f"{STATUS_BADGE.get(numbers['status'], numbers['status'])} " + " · ".join(p for p in parts if p))
