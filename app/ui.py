"""Small pieces every page uses: user text made literal for markdown, the status badges, and the page header
with its caption (the run on screen: model, steps, speed; live while the run is being written)."""
from __future__ import annotations

import re

import streamlit as st

from app.data import RunView, live_numbers, log_version
from app.summaries import steps_per_second
from app.jobs import CHECK
from app.session import current_run_path
from probes.runlog import RunLogError

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
        elif not CHECK.running:
            st.info(f"No run yet for {md(ss.model_file)}. Press **Run** in the sidebar to check it.")
        else:
            st.info("Checking the model… the page fills in when the first run finishes.")
        return
    following = run.status == "running" and ss.get("follow", True)
    # a live run's badge, step count and speed refresh on their own, twice a second, from a few rows
    st.fragment(run_every=0.5 if following else None)(_run_caption)(run, following)
    if run.downsampled:
        first, width = run.downsampled
        st.caption(f"A long run: steps before {first:,} are shown at 1 in {width:,} (each bucket's lowest and highest "
                   f"value, so spikes stay visible); the last {run.steps - first:,} steps are exact. The findings "
                   "and the exports read every step.")


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
