"""The check's stages (probes/check.py), in this process: no worker, no fork, torch imported once.

Each stage is a method of Check; a failure's result names the stage it failed in (`stage`) and its message is
the one `python -m probes check` prints (tests/test_cli.py checks those through the real command line, and
what only a process shows: crashes, hangs, kills). The worker's own entry point refuses a config it cannot
read, by name.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from probes.check import STAGES, Check  # noqa: E402
from probes.contract import CheckConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "fixtures" / "model_files"


class Recorded(Check):
    """A Check that keeps the names of the stages it entered, in order."""

    def __init__(self, config):
        super().__init__(config)
        self.entered: list[str] = []

    def _begin(self, stage, doing):
        self.entered.append(stage)
        super()._begin(stage, doing)


def config(path: Path, tmp_path: Path, **settings) -> CheckConfig:
    return CheckConfig(str(path), device="cpu", run_dir=str(tmp_path / "runs"), **{"steps": 2, **settings})


def line_of(path: Path, snippet: str) -> int:
    (line,) = [i for i, text in enumerate(path.read_text().splitlines(), 1) if snippet in text]
    return line


def test_a_clean_sample_runs_every_stage_in_order(tmp_path):
    check = Recorded(config(ROOT / "sample_models" / "mlp.py", tmp_path))
    result = check.run()
    # inputs inferred from the first layer: one forward without gradients gives their targets
    assert check.entered == ["load", "build", "batches", "forward", "optimizer", "attach", "train", "close"]
    assert result["error"] is None and result["stage"] is None and result["steps"] == 2
    assert result["model"] == "MLP" and result["device"] == "cpu" and Path(result["run_dir"], "run.db").is_file()
    assert [s for s in STAGES if s in check.entered] == check.entered         # STAGES is their order


def test_the_stages_one_by_one(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGESCOPE_TEST_MARKER", str(tmp_path / "eval.txt"))
    check = Check(config(MODELS / "hook_train_eval_step.py", tmp_path, steps=3, batch_size=4))
    try:
        check.load()
        assert check.hooks.train_step and check.hooks.eval_step and check.result.device == "cpu"
        assert check.build() and type(check.model).__name__ == "Tiny" and check.model.training
        check.batches()
        assert tuple(check.inputs.shape) == (4, 3) and check.targets is not None
        check.forward()                     # targets given, no lazy layer: nothing to do
        assert check.stage == "batches"
        check.optimizer()
        assert isinstance(check.opt, torch.optim.Adam)
        check.attach()
        assert check.probe is not None and Path(check.result.run_dir).is_dir()
        check.train()
        assert check.probe.step_count == 3 and tuple(check.last_batch[0].shape) == (4, 3)
        check.evaluate()
        assert (tmp_path / "eval.txt").read_text().startswith("eval_step training=True batch=(4, 3)")
    finally:
        check.close()
    assert check.result.steps == 3 and check.result.error is None


@pytest.mark.parametrize("name, stage, says", [
    ("missing_import.py", "load", lambda p: f"{p.name}:{line_of(p, 'import forgescope_no_such_package_xyz')}: "
                                           f"ModuleNotFoundError: No module named 'forgescope_no_such_package_xyz'"),
    ("exit_at_import.py", "load", lambda p: f"{p.name}:{line_of(p, 'sys.exit(3)')}: the file called sys.exit(3) while "
                                           f"being imported"),
    ("no_model.py", "load", lambda p: "no model found"),
    ("ctor_raises.py", "build", lambda p: f"{p.name}:{line_of(p, 'raise ValueError')} in __init__: ValueError: hidden "
                                         f"size must be even"),
    ("make_batch_not_a_pair.py", "batches", lambda p: f"{p.name}:{line_of(p, 'def make_batch')}: make_batch(8) must "
                                                     f"give (inputs, targets), got Tensor"),
    ("bad_shape.py", "forward", lambda p: f"{p.name}:13 in forward: mat1 and mat2 shapes cannot be multiplied (8x32 and "
                                         f"64x4); module b (Linear 64→4) received input of shape (8, 32)"),
    ("loss_not_scalar.py", "train", lambda p: f"{p.name}:{line_of(p, 'def loss_fn')}: the loss is (8, 1), not a scalar"),
    ("forward_returns_none.py", "train", lambda p: f"{p.name}:{line_of(p, 'def forward')}: forward returned None"),
])
def test_a_failure_names_its_stage_with_the_command_lines_message(tmp_path, name, stage, says):
    path = MODELS / name
    check = Recorded(config(path, tmp_path, batch_size=8))
    result = check.run()
    assert result["stage"] == stage and check.entered[-2:] == [stage, "close"], check.entered
    assert says(path) in result["error"], result["error"]
    assert "Traceback" not in result["error"]


def test_a_model_that_never_ran_module_init_stops_at_build_with_the_finding(tmp_path):
    check = Recorded(config(MODELS / "never_super.py", tmp_path))
    result = check.run()
    assert check.entered == ["load", "build", "close"] and result["stage"] == "build"
    assert result["error"] is None and [f["code"] for f in result["findings"]] == ["missing-super-init"]


def test_the_checkpoint_doctor_runs_load_build_compare(tmp_path):
    from probes.checkpoint_check import CheckpointCheck
    path = ROOT / "sample_models" / "mlp.py"
    probe = Check(config(path, tmp_path))
    probe.load()
    probe.build()
    probe.close()
    torch.save({"epoch": 1, "model": probe.model.state_dict()}, tmp_path / "train.pt")
    recorded = []

    class Doctor(CheckpointCheck):
        def _begin(self, stage, doing):
            recorded.append(stage)
            super()._begin(stage, doing)

    result = Doctor(CheckConfig(str(path), checkpoint=str(tmp_path / "train.pt"))).run()
    assert recorded == ["load", "build", "compare", "close"]
    assert result["error"] is None and result["findings"] == [] and result["device"] == "cpu"
    assert result["checkpoint"]["found_under"] == "model" and result["checkpoint"]["other_keys"] == ["epoch"]


@pytest.mark.parametrize("config_text, says", [
    ('{{"model_file": "m.py", "stepz": 3, "result_file": "{result}", "fault_file": "{fault}"}}',
     "ForgeScope's check worker cannot run this check: the check config has unknown key stepz"),
    ('{{"steps": 3, "result_file": "{result}", "fault_file": "{fault}"}}', "the check config has no model_file"),
    ('{{"model_file": "m.py", "result_file": "{result}"}}', "names no result_file and fault_file"),
])
def test_the_worker_refuses_a_config_it_cannot_read_by_name(tmp_path, capsys, config_text, says):
    from probes import worker
    result_file, fault_file = tmp_path / "result.json", tmp_path / "fault.txt"
    config_file = tmp_path / "config.json"
    config_file.write_text(config_text.format(result=result_file, fault=fault_file))
    assert worker.main(["probes.worker", str(config_file)]) == 2
    assert says in capsys.readouterr().err
    result = json.loads(result_file.read_text())
    assert says in result["error"] and result["findings"] == [] and not fault_file.exists()
