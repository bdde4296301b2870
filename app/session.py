"""One browser session: its state on the first script run (from the URL, for a shared link), the URL kept in
step with it, and the run it shows (or compares)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import server
from app.caches import run_view
from app.data import RunView, latest_run_for, list_run_summaries, log_version
from app.paths import default_model, model_problem, run_root
from probes.contract import CHECK_DEFAULTS
from probes.runlog import RunLogError
from probes.runs import list_runs, rank_runs


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
    ss.steps, ss.batch_size, ss.device = CHECK_DEFAULTS.steps, CHECK_DEFAULTS.batch_size, CHECK_DEFAULTS.device
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


def runs_blocked() -> str | None:
    """Why this dashboard runs no model file (it listens beyond this machine with no opt-in), or None."""
    ss = st.session_state
    if "_runs_blocked" not in ss:
        ss._runs_blocked = server.runs_blocked()
    return ss._runs_blocked


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
        return run_view(str(path), log_version(path))
    except RunLogError as e:
        st.error(str(e))
        return None


def load_compare(name: str) -> RunView | None:
    path = run_root() / name
    try:
        return run_view(str(path), log_version(path))
    except RunLogError as e:
        st.error(str(e))
        return None


def run_summaries():
    return list_run_summaries(run_root())
