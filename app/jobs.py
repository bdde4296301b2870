"""The jobs a session runs in a worker subprocess (probes.jobs.CheckJob; the dashboard never runs the user's
file itself): the sidebar's check of the model file and the Checkpoint doctor's. Both go through one
lifecycle, `JobSlot`: refused with the reason as their result, started (replacing one still running),
polled from a fragment with a progress bar, cancelled, finished (result kept, page rerun).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from app.paths import model_problem, run_root
from app.session import runs_blocked
from probes.contract import CheckResult
from probes.jobs import CheckJob


@dataclass(frozen=True)
class JobSlot:
    """One kind of job, at most one running per session: the job in st.session_state[job_key] (None when
    idle), its result dict (CheckResult.to_dict()) in st.session_state[result_key] once it is over."""

    job_key: str
    result_key: str
    on_finish: Callable[[dict[str, Any]], None] | None = None

    @property
    def job(self) -> CheckJob | None:
        return st.session_state.get(self.job_key)

    @property
    def running(self) -> bool:
        return self.job is not None

    def refuse(self, problem: str | None) -> bool:
        """With a problem, no job: the problem is the result (True). False when there is none."""
        if problem:
            st.session_state[self.result_key] = CheckResult(error=problem).to_dict()
        return bool(problem)

    def start(self, model_file: str, **settings: Any) -> CheckJob:
        """A worker on `model_file` with CheckConfig's `settings`; a job still running is cancelled first."""
        ss = st.session_state
        if self.job is not None:
            self.job.cancel()
        ss[self.job_key] = job = CheckJob(model_file, **settings).start()
        ss[self.result_key] = None
        return job

    def poll(self) -> bool:
        """True when the job has just finished (its result is in the session now)."""
        job = self.job
        if job is None or not job.poll():
            return False
        self._finish(job)
        return True

    def cancel(self) -> None:
        """Stop the worker; the result says the check was cancelled, with what it had recorded."""
        job = self.job
        if job is not None:
            job.cancel()
            self._finish(job)

    def show_progress(self, progress: Callable[[CheckJob], tuple[float, str]]) -> None:
        """From a polling fragment: a finished job reruns the whole page (its result shows); a running one
        shows `progress(job)`: (share done, label)."""
        job = self.job
        if job is None:
            return
        if self.poll():
            st.rerun(scope="app")
        share, label = progress(job)
        st.progress(share, text=label)

    def _finish(self, job: CheckJob) -> None:
        result = job.result() or {}
        st.session_state[self.result_key] = result
        st.session_state[self.job_key] = None
        if self.on_finish is not None:
            self.on_finish(result)


def cannot_run(model_file: str) -> str | None:
    """Why this dashboard will not run this model file (not a .py file; shared beyond this machine), or None."""
    return runs_blocked() or model_problem(model_file)


def _show_its_run(result: dict[str, Any]) -> None:
    if result.get("run_dir"):
        st.session_state.run_path = Path(result["run_dir"]).name


CHECK = JobSlot("job", "last_result", on_finish=_show_its_run)     # the sidebar's check of the model file
DOCTOR = JobSlot("ckpt_job", "ckpt_result")                         # the Checkpoint doctor page's


def start_check(reason: str = "") -> None:
    """Check the sidebar's model file with the sidebar's settings: on Run, a first look, a saved file."""
    ss = st.session_state
    if CHECK.refuse(cannot_run(ss.model_file)):
        return
    run_root().mkdir(parents=True, exist_ok=True)
    CHECK.start(ss.model_file, steps=int(ss.steps), batch_size=int(ss.batch_size), device=ss.device,
                run_dir=str(run_root()))
    ss.job_reason = reason


def check_progress(job: CheckJob) -> tuple[float, str]:
    """The sidebar's progress bar: steps done of steps asked for, once the first is recorded."""
    ss = st.session_state
    done, total = job.progress()
    why = {"file saved": " (file saved)", "fix applied": " (fix applied)"}.get(ss.get("job_reason"), "")
    label = f"Checking {Path(ss.model_file).name}{why}: step {done} of {total}" if done else \
        f"Starting {Path(ss.model_file).name}{why}: importing torch and the model…"
    return min(done / max(total, 1), 1.0), label
