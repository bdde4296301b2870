"""`python -m probes checkpoint MODEL_FILE CHECKPOINT`: real checkpoints written with torch.save, compared
with the model a worker builds from the file; pickled code is refused and never runs."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
MODEL = "sample_models/train_live.py"          # Classifier: net.0, net.3, net.5 Linear layers


def doctor(checkpoint: Path, model: str = MODEL) -> tuple[int, dict, str]:
    args = [sys.executable, "-m", "probes", "checkpoint", model, str(checkpoint)]
    text = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=180)
    proc = subprocess.run(args + ["--json"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == text.returncode
    return proc.returncode, json.loads(proc.stdout), text.stdout + text.stderr


@pytest.fixture(scope="module")
def state():
    sys.path.insert(0, str(ROOT / "sample_models"))
    try:
        from train_live import Classifier
    finally:
        sys.path.pop(0)
    return Classifier, Classifier().state_dict()


def the_finding(result: dict) -> dict:
    (found,) = result["findings"]
    assert found["code"] == "state-dict-mismatch"
    return found


def test_a_matching_checkpoint_is_clean_and_a_training_checkpoint_is_found_inside(state, tmp_path):
    _, sd = state
    torch.save(sd, tmp_path / "weights.pt")
    code, result, _ = doctor(tmp_path / "weights.pt")
    assert code == 0 and result["findings"] == [] and result["model"] == "Classifier" and result["error"] is None
    torch.save({"epoch": 7, "model": sd, "optimizer": {"state": {}, "param_groups": []}}, tmp_path / "train.pt")
    code, result, text = doctor(tmp_path / "train.pt")
    assert code == 0 and result["findings"] == []
    assert "6 tensors under 'model'; it also holds epoch, optimizer" in text


def test_a_module_prefix_from_ddp_is_named_with_the_exact_fix(state, tmp_path):
    _, sd = state
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "ddp.pt")
    code, result, _ = doctor(tmp_path / "ddp.pt")
    f = the_finding(result)
    assert code == 1 and f["severity"] == "error" and f["evidence"]["prefix"] == "module."
    assert f["evidence"]["missing"] == [] and f["evidence"]["unexpected"] == []    # nothing else is wrong
    assert "k.removeprefix('module.')" in f["fix"] and f["location"] == str(tmp_path / "ddp.pt")


def test_missing_unexpected_and_reshaped_keys_are_listed(state, tmp_path):
    Classifier, sd = state
    changed = dict(sd)
    del changed["net.5.bias"]
    changed["head.weight"] = torch.zeros(4, 64)
    torch.save(changed, tmp_path / "keys.pt")
    code, result, _ = doctor(tmp_path / "keys.pt")
    ev = the_finding(result)["evidence"]
    assert code == 1 and ev["missing"] == ["net.5.bias"] and ev["unexpected"] == ["head.weight"]
    torch.save(Classifier(hidden=128).state_dict(), tmp_path / "wider.pt")
    code, result, _ = doctor(tmp_path / "wider.pt")
    ev = the_finding(result)["evidence"]
    assert code == 1 and ev["counts"]["shape"] == 5 and ev["missing"] == []
    assert {"key": "net.0.weight", "model": [64, 20], "checkpoint": [128, 20]} in ev["shape"]


def test_a_different_dtype_loads_with_a_warning(state, tmp_path):
    _, sd = state
    torch.save({k: v.half() for k, v in sd.items()}, tmp_path / "half.pt")
    code, result, _ = doctor(tmp_path / "half.pt")
    f = the_finding(result)
    assert code == 0 and f["severity"] == "warning" and f["evidence"]["counts"]["dtype"] == 6
    assert f["evidence"]["dtype"][0]["model"] == "float32" and f["evidence"]["dtype"][0]["checkpoint"] == "float16"


class Payload:
    """Unpickling this would create a file: the proof that the doctor never runs pickled code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_is_refused_and_never_runs(state, tmp_path):
    _, sd = state
    marker = tmp_path / "ran.txt"
    torch.save({"model": sd, "extra": Payload(str(marker))}, tmp_path / "evil.pt")
    code, result, text = doctor(tmp_path / "evil.pt")
    f = the_finding(result)
    assert code == 1 and not marker.exists()
    assert f["evidence"]["refused"] in ("io.open", "builtins.open") and "refused, not run" in f["title"]
    assert "torch.save(model.state_dict(), path)" in f["fix"]


def test_not_a_checkpoint_and_a_missing_file_are_clear_errors(tmp_path):
    junk = tmp_path / "notes.pt"
    junk.write_text("these are my notes, not weights")
    code, result, _ = doctor(junk)
    assert code == 2 and result["error"].startswith(f"{junk}: not a PyTorch checkpoint")
    code, result, _ = doctor(tmp_path / "nowhere.pt")
    assert code == 2 and result["error"] == f"{tmp_path / 'nowhere.pt'}: no such file"


# -- the dashboard's Checkpoint page: the same doctor, started from the page ---------------------------
def test_the_checkpoint_page_checks_a_path_in_the_worker(state, tmp_path, monkeypatch):
    """AppTest on the real page: the model file and its checkpoints in one folder (the page offers them,
    newest first); a training checkpoint loads clean and says what else it holds; a DDP checkpoint gets the
    finding with the fix; a file carrying pickled code is refused and its code never runs."""
    import shutil
    import time

    from streamlit.testing.v1 import AppTest
    _, sd = state
    work = tmp_path / "project"
    work.mkdir()
    model_file = work / "train_live.py"
    shutil.copy(ROOT / MODEL, model_file)
    torch.save({f"module.{k}": v for k, v in sd.items()}, work / "ddp.pt")
    marker = tmp_path / "ran.txt"
    torch.save({"model": sd, "extra": Payload(str(marker))}, work / "evil.pth")
    torch.save({"epoch": 3, "model": sd, "optimizer": {"state": {}, "param_groups": []}}, work / "train.ckpt")
    # saved milliseconds apart, the three can share a file-system timestamp: set their ages apart
    for age, name in enumerate(("train.ckpt", "evil.pth", "ddp.pt")):
        os.utime(work / name, (time.time() - 60 * age, time.time() - 60 * age))
    runs = tmp_path / "runs"
    (runs / "earlier").mkdir(parents=True)       # a run folder to show: no automatic check of the model starts
    monkeypatch.setenv("FORGESCOPE_RUN_DIR", str(runs))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.query_params["model"] = str(model_file)
    at.query_params["run"] = "earlier"
    at.run()
    at.switch_page("views/checkpoint.py").run()
    assert not at.exception, [e.value for e in at.exception]
    offered = at.selectbox(key="_ckpt_pick").options
    assert [Path(p).name for p in offered[1:]] == ["train.ckpt", "evil.pth", "ddp.pt"], offered   # newest first

    def check(name: str) -> str:
        at.selectbox(key="_ckpt_pick").set_value(next(p for p in offered if p.endswith(name))).run()
        at.button(key="ckpt_check").click().run()
        deadline = time.monotonic() + 120
        while at.session_state["ckpt_job"] is not None:
            assert time.monotonic() < deadline, "the checkpoint check did not finish"
            time.sleep(0.3)
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        parts = [m.value for m in at.markdown] + [s.value for s in at.success] + [e.value for e in at.error]
        return re.sub(r"\\(.)", r"\1", "\n".join(str(p) for p in parts))

    shown = check("train.ckpt")
    assert "The checkpoint loads into Classifier" in shown and "torch.load(path, weights_only=True)['model']" in shown
    assert "6 tensors under 'model'; it also holds epoch, optimizer" in shown
    shown = check("ddp.pt")
    assert "state-dict-mismatch" in shown and "k.removeprefix('module.')" in shown
    assert "prefix: **module.**" in shown and "missing: ****" not in shown     # empty lists are not listed
    assert "loads into" not in shown
    shown = check("evil.pth")
    assert "refused, not run" in shown and not marker.exists()
