"""Jobs: probes/jobs.py supervises a check's worker (the command line and both dashboard pages start theirs
there), app/jobs.py is the one lifecycle of a job on a dashboard page (the sidebar's check and the checkpoint
doctor's). In this process, with no worker started: a path that cannot be checked is refused before any
process starts, and the page lifecycle runs on a stand-in job. The real worker, its crashes, hangs and kills
are tests/test_cli.py's; the pages driving real workers are tests/test_app.py's and tests/test_checkpoint.py's.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from probes.contract import CheckResult

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name, settings, says", [
    ("nope.py", {}, "nope.py: no such file"),
    ("folder", {}, "folder: is a folder; give the path of a .py file"),
    ("notes.txt", {}, "notes.txt: not a Python file (expected a .py file)"),
    ("model.py", {"checkpoint": "missing.pt"}, "missing.pt: no such file"),
    ("model.py", {"checkpoint": "folder"}, "folder: is a folder"),
])
def test_a_path_that_cannot_be_checked_is_refused_without_a_worker(tmp_path, monkeypatch, name, settings, says):
    from probes.jobs import CheckJob
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "model.py").write_text("")
    job = CheckJob(name, **settings).start()
    assert job.proc is None and job.poll()
    assert job.wait() == job.result() == CheckResult(error=says).to_dict()
    assert job.progress() == (0, job.steps) and job.run_dir() is None
    job.cancel()                # nothing to stop: still the same result
    assert job.result()["error"] == says


class StandIn:
    """What app.jobs needs of a CheckJob, without a process: over after `polls` polls."""

    made: list["StandIn"] = []

    def __init__(self, model_file, **settings):
        self.model_file, self.settings, self.polls = model_file, settings, 2
        self.cancelled = False
        self._result = None
        StandIn.made.append(self)

    def start(self):
        return self

    def poll(self):
        self.polls -= 1
        if self.polls <= 0 and self._result is None:
            self._result = CheckResult(model="Net", steps=3, run_dir="/tmp/runs/20260101-Net").to_dict()
        return self._result is not None

    def result(self):
        return self._result

    def cancel(self):
        self.cancelled = True
        self._result = CheckResult(error=f"{self.model_file}: check cancelled").to_dict()


@pytest.fixture
def slots(monkeypatch):
    """app.jobs with the stand-in job, on a bare session state (no Streamlit script running)."""
    import streamlit as st

    from app import jobs
    monkeypatch.setattr(jobs, "CheckJob", StandIn)
    StandIn.made.clear()
    for key in list(st.session_state):
        del st.session_state[key]
    yield jobs, st.session_state
    for key in list(st.session_state):
        del st.session_state[key]


def test_a_job_on_a_page_starts_polls_and_finishes_into_the_session(slots):
    jobs, ss = slots
    slot = jobs.JobSlot("my_job", "my_result")
    assert not slot.running and not slot.refuse(None) and "my_result" not in ss
    ss.my_result = {"old": True}
    job = slot.start("model.py", device="cpu", checkpoint="c.pt")
    assert slot.running and slot.job is job and ss.my_job is job and ss.my_result is None
    assert job.settings == {"device": "cpu", "checkpoint": "c.pt"}
    assert not slot.poll() and slot.running                 # still running
    assert slot.poll() and not slot.running                 # over: finished into the session
    assert ss.my_job is None and ss.my_result["model"] == "Net"
    assert not slot.poll()                                  # nothing left to poll


def test_a_new_start_cancels_the_running_job_and_cancel_finishes_it(slots):
    jobs, ss = slots
    slot = jobs.JobSlot("my_job", "my_result")
    first = slot.start("a.py")
    second = slot.start("b.py")
    assert first.cancelled and slot.job is second
    slot.cancel()
    assert second.cancelled and ss.my_job is None and ss.my_result["error"] == "b.py: check cancelled"
    slot.cancel()                                           # idle: nothing happens
    assert slot.refuse("not allowed here") and ss.my_result == CheckResult(error="not allowed here").to_dict()


def test_the_sidebar_check_starts_with_its_settings_and_shows_the_run_it_wrote(slots, tmp_path, monkeypatch):
    jobs, ss = slots
    monkeypatch.setenv("FORGESCOPE_RUN_DIR", str(tmp_path / "runs"))
    model = tmp_path / "model.py"
    model.write_text("")
    ss._runs_blocked = None
    ss.model_file, ss.steps, ss.batch_size, ss.device = str(model), 3, 4, "cpu"
    jobs.start_check("run")
    (job,) = StandIn.made
    assert job.settings == {"steps": 3, "batch_size": 4, "device": "cpu", "run_dir": str(tmp_path / "runs")}
    assert (tmp_path / "runs").is_dir() and ss.job_reason == "run" and jobs.CHECK.job is job
    while not jobs.CHECK.poll():
        pass
    assert ss.job is None and ss.last_result["steps"] == 3 and ss.run_path == "20260101-Net"
    ss.model_file = str(tmp_path / "notes.txt")             # no job for what cannot run: the reason instead
    jobs.start_check("run")
    assert len(StandIn.made) == 1 and "not a Python file" in ss.last_result["error"]


def _calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.func.id if isinstance(n.func, ast.Name) else n.func.attr
            for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def test_both_pages_and_the_command_line_use_the_one_job_module():
    """CheckJob is built in probes/jobs.py's run_check and app/jobs.py's JobSlot only; the sidebar and the
    checkpoint doctor reach it through their slots (CHECK, DOCTOR)."""
    builders = {p.relative_to(ROOT).as_posix() for pkg in ("probes", "app") for p in (ROOT / pkg).rglob("*.py")
                if "CheckJob" in _calls(p)}
    assert builders == {"probes/jobs.py", "app/jobs.py"}
    for page in ("app/sidebar.py", "app/views/checkpoint.py"):
        assert "app.jobs" in _imports(ROOT / page) and "probes.jobs" not in _imports(ROOT / page), page
    assert "CHECK" in (ROOT / "app/sidebar.py").read_text() and "DOCTOR" in (ROOT / "app/views/checkpoint.py").read_text()
    assert "run_check" in _calls(ROOT / "probes/cli.py")
