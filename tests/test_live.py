"""The live-watch sample as a user runs it: a real training script in its own process, read back by `report`."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_train_live_script_trains_and_its_run_reads_back_clean(tmp_path):
    proc = subprocess.run([sys.executable, "sample_models/train_live.py", "--epochs", "2", "--run-dir",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("run log: ") and len([x for x in lines if x.startswith("epoch ")]) == 2
    accuracy = float(lines[-1].rsplit(" ", 1)[-1].rstrip("%"))
    assert accuracy > 60.0                  # it learns (4 classes: chance is 25%)
    report = subprocess.run([sys.executable, "-m", "probes", "report", str(tmp_path), "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    result = json.loads(report.stdout)
    assert result["error"] is None and result["model"] == "Classifier"
    assert result["steps"] == 2 * 2048 // 32                    # every step of both epochs
    # validation runs under model.eval() + no_grad, the optimizer holds everything: nothing to report
    assert [f["code"] for f in result["findings"] if f["severity"] != "info"] == []
    from probes.runlog import RunReader
    from probes.runs import list_runs
    with RunReader(list_runs(tmp_path)[-1]) as reader:
        meta = reader.meta()
    assert meta["status"] == "finished" and meta["loader"]["batch_size"] == 32


LOOP_SCRIPT = ROOT / "tests/fixtures/loops/train_with_bug.py"
# what each loop bug is reported as while the run is still going, and the module it names
LOOP_BUGS = {
    "forward-called-directly": None,
    "eval-mode-missing": "body.2",
    "memory-growth": None,
    "dataloader-stall": None,
    "param-not-in-optimizer": "head",
    "layer-created-in-forward": None,
    "nonfinite-values": None,
    "loss-input-mismatch": None,
    "loss-shape-broadcast": None,
    "gradients-accumulate": "",
    "param-unreached": "aux",
    "train-mode-off": "body.2",
    "optimizer-not-stepping": "",
}


def report(run_dir) -> dict:
    proc = subprocess.run([sys.executable, "-m", "probes", "report", str(run_dir), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout)
    text = subprocess.run([sys.executable, "-m", "probes", "report", str(run_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120).stdout
    facts = text.splitlines()[1]           # "  model Net · device cpu · 8 training steps · running · ..."
    result["status"] = next(s for s in ("running", "finished", "stopped", "failed") if f" · {s}" in facts)
    return result


@pytest.mark.parametrize("bug", [*LOOP_BUGS, "none"])
def test_a_loop_bug_is_reported_while_the_run_is_still_going(bug, tmp_path):
    """A real training script with the bug in its own loop: `report` on the run while the script is still
    inside its Probe already names the bug (status running); after the script ends the run is finished and
    still says it. The clean loop reports nothing."""
    gate = tmp_path / "go-on"
    proc = subprocess.Popen([sys.executable, str(LOOP_SCRIPT), bug, str(tmp_path / "runs"), str(gate)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.poll() is not None else ""
        live = report(tmp_path / "runs")
        gate.touch()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert live["status"] == "running" and live["error"] is None and live["steps"] > 0
    problems = {f["code"]: f for f in live["findings"] if f["severity"] != "info"}
    if bug == "none":
        assert problems == {}
        return
    assert list(problems) == [bug], problems
    if LOOP_BUGS[bug] is not None:
        assert problems[bug]["module"] == LOOP_BUGS[bug]
    done = report(tmp_path / "runs")
    assert done["status"] == "finished" and done["steps"] == live["steps"]
    assert bug in [f["code"] for f in done["findings"]]
