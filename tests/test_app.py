"""Every dashboard page through Streamlit's AppTest, on real run logs.

The pages read real SQLite run logs, recorded by the worker's own check of a sample (run in a child forked
from the test process: tests/warm.py) or by a real Probe. Where the dashboard itself starts a check (a first
visit, Run, Cancel, a model file that crashes), it starts a real worker subprocess, as a user's Run would.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import warm

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")
PAGES = ["views/findings.py", "views/tree.py", "views/gradients.py", "views/weights.py", "views/memory.py",
         "views/data_loading.py", "views/runs.py"]
BUGGY = "sample_models/unregistered_module.py"
CLEAN = "sample_models/unregistered_module_fixed.py"


def check(model: str, run_dir: Path) -> dict:
    """The run log of a 6-step check of `model`, as `python -m probes check MODEL --steps 6` records it."""
    return warm.check(model, run_dir, steps=6, device="auto")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run directory holding one checked buggy sample and one checked clean sample."""
    root = tmp_path_factory.mktemp("runs")
    buggy, clean = check(BUGGY, root), check(CLEAN, root)
    assert buggy["error"] is None and clean["error"] is None
    return root, buggy, clean


def app(monkeypatch, run_root: Path, model: str, **params) -> AppTest:
    monkeypatch.setenv("FORGESCOPE_RUN_DIR", str(run_root))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params["model"] = model
    for k, v in params.items():
        at.query_params[k] = v
    return at


def plain(markdown: str) -> str:
    """What the user reads: the markdown escapes app.ui.md adds, removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [s.value for s in at.success] + [i.value for i in at.info] + [w.value for w in at.warning]
    return plain("\n".join(str(p) for p in parts))


def wait_for_job(at: AppTest, timeout: float = 120) -> AppTest:
    """Rerun the script (as the page's polling fragment would) until the worker has finished."""
    deadline = time.monotonic() + timeout
    at.run()
    while at.session_state["job"] is not None:
        assert time.monotonic() < deadline, "the check did not finish"
        time.sleep(0.3)
        at.run()
    return at.run()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_a_buggy_run(page, runs, monkeypatch):
    root, buggy, _ = runs
    at = app(monkeypatch, root, BUGGY).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["job"] is None          # the run existed: nothing was started
    if page != "views/runs.py":
        assert Path(buggy["run_dir"]).name in text_of(at)   # the header names the run on screen


def test_findings_page_shows_the_buggy_samples_finding(runs, monkeypatch):
    root, buggy, _ = runs
    at = app(monkeypatch, root, BUGGY).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Errors"] == "1"
    text = text_of(at)
    assert "unregistered-module" in text
    assert "sample_models/unregistered_module.py:15" in text       # the line of the plain list
    assert "nn.ModuleList" in text                                  # the fix


def test_the_card_shows_the_patch_and_offers_it_only_where_it_may_write(runs, monkeypatch, listening):
    """The buggy sample's card: its patch as a diff, with Apply fix while the dashboard listens on loopback
    and was pointed at this file; shared beyond this machine, or opened on another file, the diff stays and
    the button goes, saying why. (The click itself is tested in a real browser: tests/test_browser.py.)"""
    root, buggy, _ = runs
    at = app(monkeypatch, root, BUGGY).run()
    [diff] = [c.value for c in at.code if c.language == "diff"]
    assert "+        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])" in diff
    assert [b.label for b in at.button if b.label == "Apply fix"] == ["Apply fix"]
    listening("0.0.0.0")
    monkeypatch.setenv("FORGESCOPE_ALLOW_REMOTE_RUN", "1")          # runs allowed: writes never are
    at = app(monkeypatch, root, BUGGY).run()
    assert [c.language for c in at.code].count("diff") == 1 and "Apply fix" not in [b.label for b in at.button]
    assert "listens beyond 127.0.0.1, so it never writes files" in text_of(at)
    listening("127.0.0.1")
    at = app(monkeypatch, root, CLEAN, run=Path(buggy["run_dir"]).name).run()    # the buggy run, another file
    assert "Apply fix" not in [b.label for b in at.button] and "not the model file" in text_of(at)


LIVE_LOOP = """import torch
from torch import nn
from probes import Probe


def train(run_dir):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for _ in range(4):
            loss = model.forward(torch.randn(8, 4)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            probe.step()
"""


def test_a_training_scripts_card_shows_the_patch_and_never_applies_it(tmp_path, monkeypatch):
    """A live run's finding in the training script: the diff is shown, without Apply fix (the script may be
    running), and the card says so."""
    import importlib.util
    script = tmp_path / "my_train.py"
    script.write_text(LIVE_LOOP)
    spec = importlib.util.spec_from_file_location("my_train", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.train(str(tmp_path / "runs"))
    [run] = [p.name for p in (tmp_path / "runs").iterdir() if (p / "run.db").is_file()]
    at = app(monkeypatch, tmp_path / "runs", str(script), run=run).run()
    assert not at.exception
    [diff] = [c.value for c in at.code if c.language == "diff"]
    assert "+            loss = model(torch.randn(8, 4)).pow(2).mean()" in diff
    assert "Apply fix" not in [b.label for b in at.button]
    assert "this run is a training script's" in text_of(at)
    assert script.read_text() == LIVE_LOOP


@pytest.mark.parametrize("sample, code, line, chart", [
    ("gradients_accumulate", "gradients-accumulate", 34, True),
    ("loss_input_mismatch", "loss-input-mismatch", 29, False),
    ("train_mode_off", "train-mode-off", 32, False),
])
def test_a_loop_bugs_card_names_it_with_its_line_and_chart(tmp_path, monkeypatch, sample, code, line, chart):
    model = f"sample_models/{sample}.py"
    assert check(model, tmp_path)["error"] is None
    at = app(monkeypatch, tmp_path, model).run()
    assert not at.exception, [e.value for e in at.exception]
    text = text_of(at)
    assert code in text and f"{model}:{line}" in text
    assert any(str(c.key).startswith("evidence-") for c in at.get("plotly_chart")) == chart


def test_findings_page_of_a_clean_sample_shows_none(runs, monkeypatch):
    root, _, clean = runs
    at = app(monkeypatch, root, CLEAN).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Errors"] == "0"
    assert any("No problems found" in s.value for s in at.success)


def test_tree_page_names_the_unregistered_list(runs, monkeypatch):
    root, _, _ = runs
    at = app(monkeypatch, root, BUGGY).run()
    at.switch_page("views/tree.py").run()
    assert any("hidden" in e.value and "plain list" in e.value for e in at.error)
    at.text_input(key="tree_filter").set_value("out").run()
    assert any("of 5 tensors" in c.value and c.value.startswith("2 ") for c in at.caption), \
        [c.value for c in at.caption]


def probe_run(run_root: Path, name: str) -> None:
    """A real Probe's run log of a three-level model (10 modules) whose head shares the embedding's weight."""
    import torch
    from torch import nn

    from probes import Probe

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)

        def forward(self, x):
            return self.norm(self.fc(x))

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.body = nn.Sequential(Block(), Block())
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, x):
            return self.head(self.body(self.embed(x)))

    model = Tied()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=run_root, run_name=name):
        for _ in range(2):
            loss = model(torch.arange(10)).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()


def module_rows(at: AppTest) -> list[str]:
    (table,) = [d.value for d in at.dataframe if "class" in d.value.columns]
    return [m.strip("\u00a0└ ") for m in table["module"]]


def test_tree_page_lists_the_modules_to_the_chosen_level(tmp_path, monkeypatch):
    probe_run(tmp_path, "tied")
    at = app(monkeypatch, tmp_path, BUGGY, run="tied").run()
    at.switch_page("views/tree.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.label for t in at.tabs] == ["Icicle", "Table"]
    assert at.selectbox(key="tree_table_depth").value == 3          # a small model opens fully
    assert module_rows(at) == ["(model)", "embed", "body", "body.0", "body.0.fc", "body.0.norm", "body.1",
                               "body.1.fc", "body.1.norm", "head"]
    (table,) = [d.value for d in at.dataframe if "class" in d.value.columns]
    assert list(table["parameters"][:3]) == [96, 40, 56]            # the tied weight counted once in the model
    at.selectbox(key="tree_table_depth").set_value(1).run()
    assert module_rows(at) == ["(model)", "embed", "body", "head"]
    assert "4 of 10 modules" in text_of(at)
    at.selectbox(key="tree_table_depth").set_value(2).run()
    assert module_rows(at) == ["(model)", "embed", "body", "body.0", "body.1", "head"]
    at.text_input(key="tree_filter").set_value("body.1.").run()       # the tensor table filters as before
    assert any(c.value.startswith("4 of ") and c.value.endswith(" tensors") for c in at.caption)


def test_a_finding_card_shows_the_lines_around_its_location(runs, monkeypatch):
    root, _, _ = runs
    at = app(monkeypatch, root, BUGGY).run()
    assert not at.exception
    source = (ROOT / BUGGY).read_text().splitlines()
    (code,) = [c for c in at.code if "→ 15" in c.value]              # sample_models/unregistered_module.py:15
    assert code.language == "python"
    assert code.value.splitlines() == [f"{'→' if n == 15 else ' '} {n}  {source[n - 1]}" for n in range(13, 18)]
    assert "self.hidden = [nn.Linear(width, width) for _ in range(depth)]" in code.value

def test_run_link_opens_that_run(runs, monkeypatch):
    root, buggy, clean = runs
    # a shared link: model file and run in the URL
    at = app(monkeypatch, root, BUGGY, run=Path(clean["run_dir"]).name).run()
    assert Path(clean["run_dir"]).name in text_of(at)
    assert at.query_params["run"] == Path(clean["run_dir"]).name


def test_a_live_run_shows_live_and_a_silent_one_stopped(tmp_path, monkeypatch):
    """A run being written shows its step count, speed and the follow toggle; once its writer has been
    silent past the heartbeat limit (killed), the same run shows as stopped with every step kept."""
    from probes.runlog import RunWriter
    from probes.runs import STOPPED_AFTER_S
    run = tmp_path / "live"
    writer = RunWriter(run / "run.db")
    writer.set_meta(model="LiveNet", device="cpu", status="running", started=time.time())
    for k in range(5):
        writer.write_step(k, {"loss": 1.0 / (k + 1)})
    at = app(monkeypatch, tmp_path, BUGGY, run="live").run()
    caption = text_of(at)
    assert "running" in caption and "5 steps on cpu" in caption and "steps/s" in caption
    assert at.toggle(key="follow").value is True
    writer.close()
    old = time.time() - STOPPED_AFTER_S - 5
    for f in run.iterdir():
        os.utime(f, (old, old))
    at = app(monkeypatch, tmp_path, BUGGY, run="live").run()
    caption = text_of(at)
    assert "stopped" in caption and "5 steps on cpu" in caption and "steps/s" not in caption
    assert not [t for t in at.toggle if t.key == "follow"]


def test_a_link_to_a_run_about_to_start_waits_for_it(tmp_path, monkeypatch):
    """A link opened as the run starts (its folder is there, its log not yet): the page says it waits, is
    followed, and shows the run once the log is written; no error, no fallback to another run."""
    from probes.runlog import RunWriter
    run = tmp_path / "starting"
    run.mkdir()
    at = app(monkeypatch, tmp_path, BUGGY, run="starting").run()
    assert "Waiting for run starting" in text_of(at) and not at.error
    assert at.session_state["live_path"] == str(run)          # the polling fragment watches it
    assert at.session_state["job"] is None                  # the default model is not checked instead
    writer = RunWriter(run / "run.db")
    writer.set_meta(model="LiveNet", device="cpu", status="running", started=time.time())
    writer.write_step(0, {"loss": 1.0})
    at.run()
    caption = text_of(at)
    assert "1 step on cpu" in caption and "Waiting" not in caption
    writer.close()


def write_ranks(run: Path, drift_on: int | None) -> None:
    """A two-rank run as the Probes of a torch.distributed job write it; rank 1 slower, and optionally
    with its head.weight changed from step 50."""
    from probes.runlog import RunWriter
    names = ["body.weight", "head.weight"]
    for rank in (0, 1):
        w = RunWriter(run / "run.db" if rank == 0 else run / f"rank{rank}" / "run.db")
        w.set_meta(model="Net", device="cpu", status="finished", started=time.time(), rank=rank, world_size=2,
                   param_numel=10)
        for step in range(100):
            vectors = {}
            if step % 50 == 0:
                drift = 1.5 if rank == drift_on and step >= 50 else 1.0
                vectors["param_checksum"] = (names, [2.0, 3.0 * drift])
            w.write_step(step, {"loss": 1.0, "step_time_s": 0.01 * (1 + 2 * rank), "data_wait_s": 0.001,
                                "mem.rss_bytes": 1e9 * (rank + 1)}, vectors)
        w.close()


def test_ranks_page_overlays_ranks_and_says_when_they_drift(tmp_path, monkeypatch):
    write_ranks(tmp_path / "ddp-ok", drift_on=None)
    at = app(monkeypatch, tmp_path, BUGGY, run="ddp-ok").run()
    at.switch_page("views/ranks.py").run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ranks"] == "2 of 2" and metrics["Slowest rank"] == "rank 1"
    assert [m.delta for m in at.metric if m.label == "Slowest rank"] == ["3.00x the fastest rank's step"]
    table = at.dataframe[0].value
    assert list(table["rank"]) == [0, 1] and list(table["steps"]) == [100, 100]
    assert list(table["median step (ms)"]) == [10.0, 30.0]
    assert "checksums agree" in text_of(at)
    write_ranks(tmp_path / "ddp-drift", drift_on=1)
    at = app(monkeypatch, tmp_path, BUGGY, run="ddp-drift").run()
    at.switch_page("views/ranks.py").run()
    (error,) = at.error
    assert "head.weight differ between rank 0 and rank 1 (from step 50)" in plain(error.value)
    at.switch_page("views/findings.py").run()
    assert "ranks-out-of-sync" in text_of(at)


def test_a_single_process_run_has_no_ranks_page(runs, monkeypatch):
    root, buggy, _ = runs
    at = app(monkeypatch, root, BUGGY).run()
    with pytest.raises(ValueError, match="Known pages"):      # the Ranks page is not in the navigation
        at.switch_page("views/ranks.py")
    write_ranks(root / "two-ranks", drift_on=None)
    at = app(monkeypatch, root, BUGGY, run="two-ranks").run()
    at.switch_page("views/ranks.py").run()                      # it is for a run of two ranks
    assert [h.value for h in at.header] == ["Ranks"]


def test_runs_page_compares_before_and_after(runs, monkeypatch):
    root, buggy, clean = runs
    at = app(monkeypatch, root, BUGGY).run()
    at.switch_page("views/runs.py").run()
    at.selectbox(key="compare_a").set_value(Path(buggy["run_dir"]).name)
    at.selectbox(key="compare_b").set_value(Path(clean["run_dir"]).name).run()
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Fixed"], metrics["Still there"], metrics["New"]) == ("1", "0", "0")


def test_widgets_change_what_runs(tmp_path, monkeypatch):
    """Steps and batch size set in the sidebar reach the worker; Run records a new run with them."""
    at = app(monkeypatch, tmp_path, CLEAN)
    at.run()
    wait_for_job(at)                         # first visit with no run: checked without a click
    first = at.session_state["run_path"]
    assert first and (tmp_path / first).is_dir()
    at.number_input(key="steps").set_value(3)
    at.number_input(key="batch_size").set_value(4)
    at.button[0].click()                     # Run
    at.run()
    assert at.session_state["job"] is not None
    wait_for_job(at)
    second = at.session_state["run_path"]
    assert second != first
    from probes.runlog import RunReader
    with RunReader(tmp_path / second) as reader:
        assert reader.step_count() == 3
        assert reader.meta()["batch_size"] == 4
    assert {m.label: m.value for m in at.metric}["Errors"] == "0"
    assert "3 steps" in text_of(at)


def test_a_crashing_model_file_leaves_the_dashboard_up_with_the_error(tmp_path, monkeypatch):
    model = tmp_path / "exits.py"
    shutil.copy(ROOT / "tests/fixtures/model_files/exit_at_import.py", model)
    at = app(monkeypatch, tmp_path / "runs", str(model))
    wait_for_job(at)
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert any("The last check failed" in e and "exits.py:6: the file called sys.exit(3)" in e for e in errors), errors


def test_cancel_stops_the_worker(tmp_path, monkeypatch):
    model = tmp_path / "loops.py"
    shutil.copy(ROOT / "tests/fixtures/model_files/infinite_loop.py", model)
    at = app(monkeypatch, tmp_path / "runs", str(model)).run()
    job = at.session_state["job"]
    assert job is not None and job.proc.poll() is None
    at.button[1].click().run()               # Cancel
    assert at.session_state["job"] is None
    assert job.proc.poll() is not None       # the worker process is gone
    assert any("check cancelled" in plain(e.value) for e in at.error)


def test_a_path_that_is_not_a_python_file_is_refused(tmp_path, monkeypatch):
    at = app(monkeypatch, tmp_path, "README.md").run()
    assert not at.exception
    assert any("not a Python file" in plain(e.value) for e in at.error)
    assert at.session_state["job"] is None


def test_a_typed_path_is_read_as_pasted(tmp_path, monkeypatch):
    """Quotes from a file manager's 'copy path' and a ~ are what people type: the file is found."""
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    shutil.copy(ROOT / CLEAN, home / "proj" / "model.py")
    monkeypatch.setenv("HOME", str(home))
    at = app(monkeypatch, tmp_path / "runs", CLEAN).run()
    wait_for_job(at)
    at.text_input(key="_model_input").set_value("  '~/proj/model.py' ").run()
    assert at.session_state["model_file"] == str(home / "proj" / "model.py")
    assert not [e for e in at.error if "no such file" in plain(e.value)]
    wait_for_job(at)
    assert "model.py" in text_of(at) and {m.label: m.value for m in at.metric}["Errors"] == "0"
    # an emptied field names no model: the model and its run stay on screen, the field shows the model again
    run_path = at.session_state["run_path"]
    at.text_input(key="_model_input").set_value("").run()
    assert at.session_state["model_file"] == str(home / "proj" / "model.py") and run_path
    assert at.session_state["run_path"] == run_path and at.session_state["job"] is None
    assert at.text_input(key="_model_input").value == str(home / "proj" / "model.py")


def test_the_dashboard_process_never_imports_torch_or_the_model_file(tmp_path):
    """A whole check through the app, in a fresh interpreter: the model ran, but not in this process."""
    script = f"""
import os, sys, time
sys.path.insert(0, {str(ROOT)!r})
os.environ["FORGESCOPE_RUN_DIR"] = {str(tmp_path)!r}
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({MAIN!r}, default_timeout=60)
at.query_params["model"] = {CLEAN!r}
at.run()
deadline = time.monotonic() + 120
while at.session_state["job"] is not None and time.monotonic() < deadline:
    time.sleep(0.3)
    at.run()
at.run()
print(at.session_state["run_path"] is not None, "torch" in sys.modules,
      any(name.startswith("forgescope_user_") or str(getattr(m, "__file__", "")).endswith({Path(CLEAN).name!r})
          for name, m in list(sys.modules.items())))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.stdout.split() == ["True", "False", "False"], proc.stdout + proc.stderr[-2000:]


def test_runs_watch_sees_new_runs_and_not_their_steps(tmp_path):
    """The run directory's observer counts a run folder and its log appearing; a run writing steps (or a
    rank's log one level down) raises nothing, so a busy run costs the dashboard nothing."""
    from app.watch import RunsWatch
    from probes.runlog import RunWriter
    watch = RunsWatch(tmp_path)
    try:
        time.sleep(0.2)
        writer = RunWriter(tmp_path / "new-run" / "run.db")
        deadline = time.monotonic() + 10
        while watch.version < 2 and time.monotonic() < deadline:       # the folder, then its log
            time.sleep(0.05)
        assert watch.version == 2 and watch.newest == "new-run"
        for k in range(300):
            writer.write_step(k, {"loss": 1.0})
        RunWriter(tmp_path / "new-run" / "rank1" / "run.db").close()
        writer.close()
        time.sleep(0.5)
        assert watch.version == 2
    finally:
        watch.stop()


SLOW_MODEL = '''
import time

from torch import nn


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        time.sleep(0.25)        # 20 steps take 5 s: time to kill the worker mid-run
        return self.fc(x)
'''


def test_a_worker_killed_mid_run_leaves_the_pages_with_its_steps(tmp_path, monkeypatch):
    """The worker SIGKILLed mid-run (the OOM killer's way): the page stays up, says the worker was killed
    from outside, and the run it was writing opens on Findings and Runs with the steps it recorded."""
    import signal
    model = tmp_path / "slow.py"
    model.write_text(SLOW_MODEL)
    at = app(monkeypatch, tmp_path / "runs", str(model)).run()
    job = at.session_state["job"]
    assert job is not None                  # first visit with no run: checked without a click
    try:
        deadline = time.monotonic() + 120
        while job.progress()[0] == 0:
            assert job.proc.poll() is None and time.monotonic() < deadline, "no step recorded"
            time.sleep(0.1)
        os.kill(job.proc.pid, signal.SIGKILL)
        wait_for_job(at)
    finally:
        job.cancel()
    assert not at.exception, [e.value for e in at.exception]
    result = job.result()
    steps = result["steps"]
    assert 0 < steps < 20 and result["run_dir"]
    errors = [plain(e.value) for e in at.error]
    assert any("The last check failed" in e and "slow.py: the worker process was killed from outside (SIGKILL)" in e
               and "ran out of memory" in e for e in errors), errors
    run = Path(result["run_dir"]).name
    assert at.session_state["run_path"] == run
    assert f"{steps} step{'' if steps == 1 else 's'} on cpu" in text_of(at) and run in text_of(at)
    at.switch_page("views/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    row = table[table["run"] == run].iloc[0]
    assert (row["model"], row["status"], row["steps"]) == ("Slow", "failed", steps)
    assert "killed from outside" in row["error"]
    at.switch_page("views/findings.py").run()
    assert not at.exception and "Slow" in text_of(at)
    assert any("The run stopped with an error" in plain(e.value) for e in at.error)


def test_runs_page_lists_our_runs_among_other_tools_files_and_names_a_damaged_log(tmp_path, monkeypatch):
    """A run directory shared with other tools (TensorBoard events, lightning_logs/, wandb/, a note, another
    tool's SQLite run.db at the top and in a folder) and holding a log of ours cut short and a run.db that is
    not a database at all: the Runs page lists the good runs, names each unreadable log in a warning, leaves
    the foreign databases out, and compares the two good runs by default."""
    import sqlite3

    from probes.runlog import RunWriter
    for name in ("good-old", "good-new"):
        w = RunWriter(tmp_path / name / "run.db")
        w.set_meta(model="Net", device="cpu", status="finished", started=time.time())
        for k in range(300):
            w.write_step(k, {"loss": 1.0 / (k + 1)}, {"grad_norm": ([f"p{i}" for i in range(200)], [1.0] * 200)})
        w.close()
        time.sleep(0.01)
    cut = tmp_path / "cut-short" / "run.db"
    cut.parent.mkdir()
    cut.write_bytes((tmp_path / "good-old" / "run.db").read_bytes()[:20_000])
    garbage = tmp_path / "garbage" / "run.db"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a database" * 100)
    (tmp_path / "events.out.tfevents.1700000000.host.1.0").write_bytes(b"\x00" * 64)
    (tmp_path / "lightning_logs" / "version_0").mkdir(parents=True)
    (tmp_path / "lightning_logs" / "version_0" / "hparams.yaml").write_text("lr: 0.1\n")
    (tmp_path / "wandb" / "latest-run").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("try a lower lr")
    for db_path in (tmp_path / "run.db", tmp_path / "tracker" / "run.db"):
        db_path.parent.mkdir(exist_ok=True)
        db = sqlite3.connect(db_path)
        db.execute("CREATE TABLE experiments(id INTEGER PRIMARY KEY, name TEXT)")
        db.commit()
        db.close()
    at = app(monkeypatch, tmp_path, BUGGY, run="good-new").run()
    at.switch_page("views/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["job"] is None
    table = at.dataframe[0].value
    assert sorted(table["run"]) == ["cut-short", "garbage", "good-new", "good-old"]
    status = dict(zip(table["run"], table["status"]))
    assert status == {"cut-short": "unreadable", "garbage": "unreadable", "good-new": "finished",
                      "good-old": "finished"}
    assert dict(zip(table["run"], table["steps"]))["good-new"] == 300
    (warning,) = [plain(w.value) for w in at.warning]
    assert str(cut) in warning and str(garbage) in warning and "2 run log(s) could not be read" in warning
    assert not at.error                                   # the comparison is of the two good runs
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == ("good-old", "good-new")
    assert {m.label: m.value for m in at.metric}["Fixed"] == "0"
    at.selectbox(key="open_run").set_value("cut-short").run()     # opening the damaged one names it too
    at.switch_page("views/findings.py").run()
    assert not at.exception and any(str(cut) in plain(e.value) for e in at.error)


def test_a_crashing_model_in_one_session_leaves_other_sessions_served(runs, monkeypatch):
    """Two sessions of one dashboard on one run directory: while one checks a model whose worker dies of a
    native crash (os.abort), the other renders every page of a good run, before and after the crash."""
    import signal
    root, buggy, _ = runs
    aborts = str(ROOT / "tests" / "fixtures" / "model_files" / "aborts.py")
    crashing = app(monkeypatch, root, aborts).run()
    job = crashing.session_state["job"]
    assert job is not None                  # first visit with no run: checked without a click
    other = app(monkeypatch, root, BUGGY).run()
    try:
        for page in PAGES:
            other.switch_page(page).run()
            assert not other.exception, (page, [e.value for e in other.exception])
        wait_for_job(crashing)
    finally:
        job.cancel()
    assert not crashing.exception, [e.value for e in crashing.exception]
    errors = [plain(e.value) for e in crashing.error]
    line = next(i for i, text in enumerate(Path(aborts).read_text().splitlines(), 1) if "os.abort()" in text)
    assert any("The last check failed" in e and f"aborts.py:{line} in forward" in e and "SIGABRT" in e
               for e in errors), errors
    assert job.proc.returncode == -signal.SIGABRT       # the worker did crash
    other.switch_page("views/findings.py").run()
    assert not other.exception and "unregistered-module" in text_of(other)
    assert Path(buggy["run_dir"]).name in text_of(other)
    assert not other.error


@pytest.fixture
def listening():
    """Pretend the server listens on this address (as `--server.address` would set it), for one test."""
    from streamlit import config
    saved = config.get_option("server.address")
    yield lambda address: config.set_option("server.address", address)
    config.set_option("server.address", saved)


def test_a_dashboard_listening_beyond_loopback_runs_no_model_file_without_the_opt_in(tmp_path, monkeypatch,
                                                                                       listening):
    """Shared on every interface, the dashboard shows run logs but runs no model file (not on opening one,
    not on Run, not on the Checkpoint page) and says why; FORGESCOPE_ALLOW_REMOTE_RUN=1 is the opt-in."""
    monkeypatch.delenv("FORGESCOPE_ALLOW_REMOTE_RUN", raising=False)
    listening("0.0.0.0")
    at = app(monkeypatch, tmp_path, BUGGY).run()
    assert not at.exception
    assert at.session_state["job"] is None                      # the model with no run was not checked
    assert any("does not run model files" in w.value and "--allow-remote-run" in w.value for w in at.sidebar.warning)
    run_button = next(b for b in at.sidebar.button if b.label == "Run")
    assert run_button.disabled
    at.switch_page("views/checkpoint.py").run()
    assert next(b for b in at.button if b.label == "Check checkpoint").disabled
    # the explicit opt-in
    monkeypatch.setenv("FORGESCOPE_ALLOW_REMOTE_RUN", "1")
    at = wait_for_job(app(monkeypatch, tmp_path, BUGGY))
    assert not at.sidebar.warning and at.session_state["last_result"]["findings"][0]["code"] == "unregistered-module"


def test_forgescope_ui_without_a_model_opens_on_the_newest_run_and_runs_nothing(runs, monkeypatch):
    root, buggy, clean = runs
    monkeypatch.setenv("FORGESCOPE_MODEL", "")          # `forgescope ui --logdir DIR`: no model file named
    monkeypatch.setenv("FORGESCOPE_RUN_DIR", str(root))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception and at.session_state["job"] is None
    assert not at.sidebar.error and any("Type the path" in i.value for i in at.sidebar.info)
    from probes.runs import list_runs
    newest = list_runs(root)[-1]
    assert at.session_state["run_path"] is None and newest.name in text_of(at)     # the newest run on screen
