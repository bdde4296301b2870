"""The sidebar: the model file (typed or a bundled sample), the check's settings, Run and Cancel, the watch
toggles, and the polling fragment under them (a saved model file re-checks it, a new run in the run directory
is announced, a live run is followed, a running check shows its progress)."""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from app.caches import devices, file_watch, runs_watch
from app.data import log_version
from app.jobs import CHECK, cannot_run, check_progress, start_check
from app.paths import run_root, samples, typed_path
from app.session import current_run, current_run_path, runs_blocked

STEP_LIMITS = (1, 10_000)
BATCH_LIMITS = (1, 4096)


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
        problem = cannot_run(ss.model_file)
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
        if (not CHECK.running and problem is None and ss.model_file not in ss.auto_started
                and current_run_path() is None):
            ss.auto_started.add(ss.model_file)
            start_check("first look")
        running = CHECK.running
        b1, b2 = st.columns(2)
        b1.button("Run", type="primary", disabled=running or problem is not None, on_click=start_check,
                  args=("run",), width="stretch")
        b2.button("Cancel", disabled=not running, on_click=CHECK.cancel, width="stretch")
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
        # a job's progress and a live run are polled twice a second (a new step on screen within ~1 s); a
        # watched file, and the run directory for new runs, once a second
        period = 0.5 if CHECK.running or following else 1.0
        # run inline by this full rerun, the poll must not rerun the app for a changed log: the page below
        # is about to draw it. (It did: at 1,000 steps/s the log always changed by then, so every rerun
        # restarted here and the page, its step counter and charts, was never drawn while the run went on.)
        ss.full_run = True
        try:
            st.fragment(run_every=period)(_poll)()
        finally:
            ss.full_run = False


def _poll() -> None:
    ss = st.session_state
    if ss.watch and cannot_run(ss.model_file) is None:
        watcher = file_watch()
        watcher.watch(ss.model_file)
        version = (ss.model_file, watcher.version(ss.model_file))
        if ss.seen_version is None or ss.seen_version[0] != ss.model_file:
            ss.seen_version = version
        elif version != ss.seen_version:
            ss.seen_version = version
            start_check("file saved")
    _new_runs()
    if not CHECK.running:
        _follow_live()
        return
    CHECK.show_progress(check_progress)


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
        elif (watch.newest and not CHECK.running and watch.newest != Path(ss.run_path or ".").name
              and (run_root() / watch.newest / "run.db").is_file()):     # not this session's own check
            st.toast(f"New run: {watch.newest} — open it from Runs", icon=":material/fiber_new:")


def _follow_live() -> None:
    """A run still being written: when its log changes, rerun the page so every chart shows the new steps."""
    ss = st.session_state
    path = ss.get("live_path")
    if path is None or not ss.get("follow", True):      # the toggle is shown only while a run is live
        return
    version = (path, log_version(path))
    if ss.get("live_version") is None or ss.live_version[0] != version[0] or ss.get("full_run"):
        ss.live_version = version
    elif version != ss.live_version:
        # the step counter in the header follows every half second; the charts are redrawn at most every
        # second, or less often when a page takes long to draw (a rerun must not start before the last ends)
        if time.monotonic() - ss.get("page_done", 0.0) >= max(1.0, 2 * ss.get("page_seconds", 0.0)):
            ss.live_version = version
            st.rerun()
