"""The live-watch sample as a user runs it: a real training script in its own process, read back by `report`."""
import json
import subprocess
import sys
from pathlib import Path

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
    from probes.runlog import RunReader, list_runs
    with RunReader(list_runs(tmp_path)[-1]) as reader:
        meta = reader.meta()
    assert meta["status"] == "finished" and meta["loader"]["batch_size"] == 32
