"""torch.distributed for real: `torchrun --nproc_per_node=2` (gloo, CPU) on the DDP sample, one log per
rank under one run, and ranks-out-of-sync found from the logs; the cross-rank check on hand-written logs."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from probes.detectors import RunData, check_run
from probes.report import report_run
from probes.textreport import render
from probes.runlog import RunReader, RunWriter
from probes.runs import rank_runs

ROOT = Path(__file__).resolve().parent.parent


def torchrun(*args: str, run_dir: Path, ranks: int = 2, env: dict | None = None) -> subprocess.CompletedProcess:
    # `python -m torch.distributed.run` is the `torchrun` command, from this interpreter's environment
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                           "sample_models/train_ddp.py", "--epochs", "1", "--run-dir", str(run_dir), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_two_ranks_write_one_run_with_a_log_each(tmp_path):
    torchrun("--run-name", "ddp", run_dir=tmp_path)
    run = tmp_path / "ddp"
    ranks = rank_runs(run)
    assert sorted(ranks) == [0, 1] and ranks[1] == run / "rank1"
    steps = {}
    for rank, path in ranks.items():
        with RunReader(path) as reader:
            meta = reader.meta()
            steps[rank] = reader.step_count()
            checksums = reader.series("param_checksum")
        assert (meta["rank"], meta["world_size"], meta["backend"]) == (rank, 2, "gloo")
        assert meta["model"] == "Classifier" and meta["status"] == "finished"
        assert list(checksums.index) == [0]            # every 50 steps: step 0 of 32
    assert steps[0] == steps[1] == 2048 // 2 // 32     # each rank trained on its half of the data
    result = report_run(run)
    assert result["ranks"] == 2 and result["error"] is None
    assert [f["code"] for f in result["findings"] if f["severity"] != "info"] == []


def test_eight_ranks_write_one_run_and_report_reads_every_rank(tmp_path):
    # 8 processes on a 2-core machine: one thread each (torch would start a pool per core in every rank)
    torchrun("--run-name", "ddp8", run_dir=tmp_path, ranks=8, env={"OMP_NUM_THREADS": "1"})
    run = tmp_path / "ddp8"
    ranks = rank_runs(run)
    assert sorted(ranks) == list(range(8)) and ranks[0] == run
    assert all(ranks[r] == run / f"rank{r}" for r in range(1, 8))
    assert not [p for p in tmp_path.iterdir() if p != run]          # no rank went off under a name of its own
    for rank, path in ranks.items():
        with RunReader(path) as reader:
            meta = reader.meta()
            steps = reader.step_count()
            checksums = reader.series("param_checksum")
        assert (meta["rank"], meta["world_size"], meta["backend"]) == (rank, 8, "gloo")
        assert meta["status"] == "finished" and meta["steps"] == steps
        assert steps == 2048 // 8 // 32                 # each rank trained on its eighth of the data
        assert list(checksums.index) == [0] and checksums.shape[1] == 6      # 3 Linear layers' weight and bias
    result = report_run(run)
    assert result["ranks"] == 8 and result["error"] is None and result["steps"] == 8
    assert [f["code"] for f in result["findings"] if f["severity"] != "info"] == []
    summary = result["rank_summary"]
    assert (summary["found"], summary["world_size"]) == (8, 8) and summary["median_step_s"] > 0
    assert "ranks: 8 of 8 logged" in render(result, "report")


def test_a_warm_start_loaded_on_rank_0_only_is_ranks_out_of_sync(tmp_path):
    torchrun("--bug", run_dir=tmp_path)                # the default run name, agreed by both ranks
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert run.name.endswith("-Classifier") and sorted(rank_runs(run)) == [0, 1]
    proc = subprocess.run([sys.executable, "-m", "probes", "report", str(run), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr                # an error found
    (found,) = [f for f in json.loads(proc.stdout)["findings"] if f["severity"] != "info"]
    assert found["code"] == "ranks-out-of-sync" and found["severity"] == "error"
    assert found["module"] == "module"                      # every parameter: the whole (wrapped) model
    assert found["location"].startswith("sample_models/train_ddp.py:")
    ev = found["evidence"]
    assert ev["first_step"] == 0 and ev["ranks"] == [0, 1] and ev["count"] == 6
    norms = ev["parameters"][0]["norms"]
    assert abs(norms["0"] - norms["1"]) / norms["0"] > 0.01


# -- the check on logs written by hand ------------------------------------------------------------------
NAMES = ["enc.weight", "enc.bias", "head.weight", "head.bias"]


def write_rank(run: Path, rank: int, norms_by_step: dict[int, list[float]], numel: int = 100) -> None:
    path = run / "run.db" if rank == 0 else run / f"rank{rank}" / "run.db"
    w = RunWriter(path)
    w.set_meta(model="Net", device="cpu", status="finished", started=time.time(), rank=rank, world_size=3,
               param_numel=numel)
    for step, norms in norms_by_step.items():
        w.write_step(step, {"loss": 1.0, "step_time_s": 0.01 * (rank + 1)}, {"param_checksum": (NAMES, norms)})
    w.close()


def run_findings(run: Path) -> list:
    with RunReader(run) as reader:
        return [f for f in check_run(RunData.from_reader(reader)) if f.code == "ranks-out-of-sync"]


def test_replicas_in_step_are_clean_and_a_drift_is_found_at_its_step(tmp_path):
    same = {s: [1.0 + s, 0.5, 2.0, 0.1] for s in (0, 50, 100, 150)}
    for rank in range(3):
        write_rank(tmp_path / "ok", rank, same)
    assert run_findings(tmp_path / "ok") == []
    drifted = {s: [v * (1.01 if s >= 100 and i == 2 else 1) for i, v in enumerate(vals)]
               for s, vals in same.items()}
    write_rank(tmp_path / "bad", 0, same)
    write_rank(tmp_path / "bad", 1, same)
    write_rank(tmp_path / "bad", 2, drifted)         # rank 2 changed head.weight around step 100
    (f,) = run_findings(tmp_path / "bad")
    assert f.module == "head" and f.evidence["first_step"] == 100 and f.evidence["ranks"] == [0, 2]
    assert [p["name"] for p in f.evidence["parameters"]] == ["head.weight"]
    assert f.evidence["steps_apart"] == 2 and f.evidence["steps_compared"] == 4
    assert "head.weight differ between rank 0 and rank 2 (from step 100)" in f.title


def test_float_noise_and_sharded_ranks_are_not_out_of_sync(tmp_path):
    base = {0: [1.0, 0.5, 2.0, 0.1]}
    write_rank(tmp_path / "noise", 0, base)
    write_rank(tmp_path / "noise", 1, {0: [v * (1 + 3e-7) for v in base[0]]})    # float32 rounding
    assert run_findings(tmp_path / "noise") == []
    write_rank(tmp_path / "shards", 0, base, numel=100)
    write_rank(tmp_path / "shards", 1, {0: [3.0, 0.2, 1.0, 0.4]}, numel=60)      # each holds its own part
    assert run_findings(tmp_path / "shards") == []


def test_a_rank_log_not_written_yet_is_left_out(tmp_path):
    write_rank(tmp_path, 0, {0: [1.0, 0.5, 2.0, 0.1]})
    (tmp_path / "rank1").mkdir()
    (tmp_path / "rank1" / "run.db").write_bytes(b"")      # created, nothing in it yet
    with RunReader(tmp_path) as reader:
        data = RunData.from_reader(reader)
    assert list(data.ranks) == [0]
    assert np.isclose(data.scalars["step_time_s"].iloc[0], 0.01)
