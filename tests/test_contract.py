"""The check's contract (probes/contract.py): one set of defaults that every caller reads, a config that
round-trips through the worker's JSON file and refuses what it does not know, one result shape. No torch."""
from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from probes.contract import CHECK_DEFAULTS, PUBLIC_FIELDS, CheckConfig, CheckResult, ContractError


def test_the_command_line_defaults_and_help_are_the_configs():
    from probes.cli import build_parser
    parser = build_parser()
    check = parser.parse_args(["check", "m.py"])
    d = CHECK_DEFAULTS
    assert (check.steps, check.batch_size, check.device, check.run_dir, check.timeout, check.model,
            check.compile_check) == (d.steps, d.batch_size, d.device, d.run_dir, d.timeout, d.model, d.compile_check)
    assert parser.parse_args(["checkpoint", "m.py", "c.pt"]).timeout == d.timeout
    commands = next(a for a in parser._actions if a.dest == "command").choices
    help_text = commands["check"].format_help()
    for said in (f"training steps (default {d.steps})", f"batch size (default {d.batch_size})",
                 f"where run logs go (default {d.run_dir})", f"(default {d.timeout:g})"):
        assert said in " ".join(help_text.split()), said
    # what the help says today: the contract's values are the documented ones
    assert (d.steps, d.batch_size, d.device, d.run_dir, d.timeout) == (20, 8, "auto", "runs", 120.0)


def test_a_job_and_run_check_take_their_defaults_from_the_config():
    import inspect

    from probes.jobs import CheckJob, run_check
    job = CheckJob("m.py")
    assert job.config == dataclasses.replace(CHECK_DEFAULTS, model_file="m.py")
    assert (job.steps, job.timeout) == (CHECK_DEFAULTS.steps, CHECK_DEFAULTS.timeout)
    assert CheckJob(CheckConfig("m.py", steps=3), batch_size=2).config == CheckConfig("m.py", steps=3, batch_size=2)
    # no default of its own anywhere in the signature: settings are CheckConfig's fields
    assert [p.default for p in inspect.signature(run_check).parameters.values()] == [inspect.Parameter.empty] * 2
    with pytest.raises(TypeError, match="stepz"):
        CheckJob("m.py", stepz=3)


def test_the_dashboard_and_its_launcher_read_the_same_defaults(monkeypatch, tmp_path):
    import argparse
    from pathlib import Path

    from app import launch, paths
    monkeypatch.delenv(paths.RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert str(paths.run_root()) == CHECK_DEFAULTS.run_dir
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    _, env = launch.command(parser.parse_args([]))       # `forgescope ui` with no --logdir
    assert env[paths.RUN_DIR_ENV] == str(Path(CHECK_DEFAULTS.run_dir).resolve())


def test_a_config_round_trips_through_json():
    config = CheckConfig("model.py", steps=3, batch_size=4, device="cpu", model="Big", run_dir="/tmp/r",
                         run_name="n", timeout=7.5, compile_check=True, checkpoint="c.pt", seed=1,
                         deadline=12.5, result_file="r.json", fault_file="f.txt", run_file="d.txt")
    assert CheckConfig.from_json(config.to_json()) == config
    assert CheckConfig.from_json(json.dumps({"model_file": "m.py"})) == \
        dataclasses.replace(CHECK_DEFAULTS, model_file="m.py")
    assert set(json.loads(config.to_json())) == {f.name for f in dataclasses.fields(CheckConfig)}


@pytest.mark.parametrize("text, says", [
    ('{"model_file": "m.py", "stepz": 3}', "the check config has unknown key stepz (known: model_file, steps,"),
    ('{"steps": 3}', "the check config has no model_file"),
    ('{"model_file": "m.py", "steps": "3"}', "the check config: steps must be a whole number, got '3'"),
    ('{"model_file": "m.py", "steps": true}', "steps must be a whole number, got True"),
    ('{"model_file": "m.py", "steps": 0}', "steps must be at least 1, got 0"),
    ('{"model_file": "m.py", "timeout": -1}', "timeout must be more than 0 seconds, got -1"),
    ('{"model_file": "m.py", "device": "tpu"}', "device must be one of auto, cpu, cuda, mps, got 'tpu'"),
    ('{"model_file": "m.py", "model": 3}', "model must be a string or null, got 3"),
    ('["m.py"]', "the check config must be a JSON object, got list"),
    ("steps=3", "the check config is not JSON"),
])
def test_a_config_with_an_unknown_missing_or_wrong_key_is_refused_by_name(text, says):
    with pytest.raises(ContractError) as refused:
        CheckConfig.from_json(text)
    assert says in str(refused.value)


def test_one_result_shape_whose_public_fields_come_first():
    names = [f.name for f in dataclasses.fields(CheckResult)]
    assert tuple(names[:len(PUBLIC_FIELDS)]) == PUBLIC_FIELDS
    from probes import cli
    assert cli.PUBLIC_FIELDS is PUBLIC_FIELDS
    result = CheckResult(model="MLP", device="cpu", steps=3, run_dir="runs/x", findings=[{"code": "c"}],
                         stage="train", notes=["n"], checkpoint={"tensors": 2})
    assert CheckResult.from_dict(result.to_dict()) == result
    assert result.public() == {"model": "MLP", "device": "cpu", "steps": 3, "run_dir": "runs/x", "error": None,
                               "findings": [{"code": "c"}]}
    assert CheckResult().to_dict() == {"model": None, "device": None, "steps": 0, "run_dir": None, "error": None,
                                       "findings": [], "error_location": None, "stage": None, "notes": None,
                                       "checkpoint": None}
    with pytest.raises(ContractError, match="the check result has unknown key status"):
        CheckResult.from_dict({"status": "finished"})
    with pytest.raises(ContractError, match="the check result: steps must be a whole number, got '3'"):
        CheckResult.from_dict({"steps": "3"})


def test_the_contract_the_command_line_and_the_jobs_do_not_import_torch():
    import subprocess
    code = ("import sys; import probes.contract, probes.jobs, probes.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
