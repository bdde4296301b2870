"""The trainer callbacks with the real libraries: a real Lightning `Trainer.fit` and a real Hugging Face
`Trainer.train` on tiny models, each run read back from its run log (steps, loss, learning rate, data wait,
validation metrics, a loop bug reported while training runs), and a plain Probe on an accelerate-prepared
model and optimizer."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from probes import Probe, ProbeWarning, RunReader

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "integrations"

L = pytest.importorskip("lightning.pytorch", reason="pip install -r requirements-dev.txt (lightning)")
transformers = pytest.importorskip("transformers", reason="pip install -r requirements-dev.txt (transformers)")
accelerate = pytest.importorskip("accelerate", reason="pip install -r requirements-dev.txt (accelerate)")

from probes.integrations import lightning as fs_lightning            # noqa: E402
from probes.integrations import transformers as fs_transformers      # noqa: E402

WAIT_S = 0.002              # each sample takes this long to load: data wait a step can be told from noise


class Samples(torch.utils.data.Dataset):
    """Deterministic (features, class) pairs that take WAIT_S each to load."""

    def __init__(self, n=96, features=8, classes=3, as_dict=False):
        self.n, self.features, self.classes, self.as_dict = n, features, classes, as_dict

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        time.sleep(WAIT_S)
        x = torch.randn(self.features, generator=torch.Generator().manual_seed(i))
        y = torch.tensor(i % self.classes)
        return {"x": x, "labels": y} if self.as_dict else (x, y)


# -- Lightning --------------------------------------------------------------------------------------------
class Steps:
    """A LightningModule's steps as the docs write them; `direct=True` calls a submodule's forward() directly
    in training_step (hooks skipped: forward-called-directly); `fail_at` raises in training_step at that batch.
    A mixin, so that the same steps go on `lightning`'s and on `pytorch_lightning`'s LightningModule."""

    def __init__(self, direct=False, fail_at=None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
        self.direct, self.fail_at = direct, fail_at
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.seen_live: list = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if batch_idx == self.fail_at:
            raise RuntimeError(f"a bad batch at {batch_idx}")
        x, y = batch
        out = self.net.forward(x) if self.direct else self(x)     # the bug, when direct
        loss = nn.functional.cross_entropy(out, y)
        self.losses.append(float(loss.detach()))
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class Classifier(Steps, L.LightningModule):
    pass


class LiveReader(L.Callback):
    """Reads the run log while training runs, after batch 8: what the dashboard would show at that moment."""

    def __init__(self, forgescope):
        self.forgescope = forgescope

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == 8 and not pl_module.seen_live:
            with RunReader(self.forgescope.probe.run_path) as reader:
                pl_module.seen_live.append([f["code"] for f in reader.findings()])


def fit(tmp_path, module, name, trainer_module=L, **trainer_kw):
    callback = fs_lightning.ForgeScopeCallback(run_dir=tmp_path, run_name=name, grad_norm=1)
    settings = dict(max_epochs=2, accumulate_grad_batches=2, limit_val_batches=3, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                    accelerator="cpu", devices=1)
    settings.update(trainer_kw)
    trainer = trainer_module.Trainer(callbacks=[callback, LiveReader(callback)], **settings)
    loader = torch.utils.data.DataLoader(Samples(), batch_size=8)
    trainer.fit(module, loader, torch.utils.data.DataLoader(Samples(24), batch_size=8))
    return RunReader(tmp_path / name)


def test_lightning_fit_is_read_back_with_every_step_its_loss_lr_data_wait_and_validation(tmp_path):
    torch.manual_seed(0)
    module = Classifier()
    run = fit(tmp_path, module, "lightning")
    meta, scalars = run.meta(), run.scalars()
    # 96 samples / 8 = 12 batches an epoch, 2 per optimizer step, 2 epochs
    assert meta["status"] == "finished" and meta["steps"] == 12 and len(scalars) == 12
    assert meta["trainer"].startswith("lightning ")
    # the loss training_step returned, the mean over the two micro-batches of each step
    expected = np.array(module.losses).reshape(-1, 2).mean(axis=1)
    np.testing.assert_allclose(scalars["loss"].to_numpy(), expected, rtol=1e-5)
    # the learning rate each step used: StepLR halves it every 2 optimizer steps
    np.testing.assert_allclose(scalars["lr"].to_numpy(), [0.1 * 0.5 ** (i // 2) for i in range(12)])
    # two batches of 8 samples per step, WAIT_S each: at least 32 ms of loading; below the step's own time
    wait = scalars["data_wait_s"].to_numpy()
    assert np.median(wait) >= 16 * WAIT_S and (wait <= scalars["step_time_s"].to_numpy() + 1e-6).all()
    # the validation pass after the first epoch: its metric on the step after it, and its time in no step
    assert scalars["val_loss"].notna().sum() == 1 and not np.isnan(scalars["val_loss"].iloc[6])
    assert run.series("grad_norm").notna().all().all()       # real gradients on every step (after the closure)
    assert {f["code"] for f in run.findings() if f["severity"] in ("error", "warning")} <= {"dataloader-stall"}


def test_lightning_loop_bug_is_reported_while_training_runs(tmp_path):
    torch.manual_seed(0)
    module = Classifier(direct=True)
    run = fit(tmp_path, module, "direct")
    found = [f for f in run.findings() if f["code"] == "forward-called-directly"]
    assert len(found) == 1 and found[0]["module"] == "net"
    line = next(i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1) if "# the bug, when direct" in text)
    assert found[0]["location"] == f"{Path(__file__).name}:{line}" or found[0]["location"].endswith(f"test_integrations.py:{line}")
    assert module.seen_live and "forward-called-directly" in module.seen_live[0]      # in the log mid-training


def test_lightning_exception_and_the_pytorch_lightning_package(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="a bad batch at 5"):
        fit(tmp_path, Classifier(fail_at=5), "crash", max_epochs=1)
    meta = RunReader(tmp_path / "crash").meta()
    assert meta["status"] == "failed" and "a bad batch at 5" in meta["error"] and meta["steps"] == 2
    # the same callback in a pytorch_lightning Trainer (a different Callback base class)
    pl = pytest.importorskip("pytorch_lightning", reason="pip install -r requirements-dev.txt (pytorch_lightning)")

    class Module(Steps, pl.LightningModule):
        pass

    torch.manual_seed(0)
    run = fit(tmp_path, Module(), "pl", trainer_module=pl, max_steps=3)
    assert run.meta()["status"] == "finished" and len(run.scalars()) == 3


def test_callback_settings_are_checked_when_it_is_built():
    with pytest.raises(ValueError, match=r"ForgeScopeCallback\(grad_norm=-1\)"):
        fs_lightning.ForgeScopeCallback(grad_norm=-1)
    with pytest.raises(TypeError, match="unexpected setting 'grad_norms'"):
        fs_transformers.ForgeScopeCallback(grad_norms=1)


def test_a_run_log_that_cannot_be_written_warns_and_training_goes_on(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    torch.manual_seed(0)
    module = Classifier()
    callback = fs_lightning.ForgeScopeCallback(run_dir=blocked / "runs")
    trainer = L.Trainer(max_steps=4, callbacks=[callback], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", devices=1, limit_val_batches=0)
    with pytest.warns(ProbeWarning, match="cannot open a run log"):
        trainer.fit(module, torch.utils.data.DataLoader(Samples(32), batch_size=8))
    assert trainer.global_step == 4 and len(module.losses) == 4


# -- Hugging Face Trainer ---------------------------------------------------------------------------------
class TinyClassifier(nn.Module):
    """A model as the Trainer takes one: keyword inputs, a dict with the loss. `softmax=True` is the bug of a
    custom head that feeds probabilities to cross-entropy."""

    def __init__(self, softmax=False):
        super().__init__()
        self.encoder = nn.Linear(8, 16)
        self.head = nn.Linear(16, 3)
        self.softmax = softmax

    def forward(self, x, labels=None):
        logits = self.head(torch.relu(self.encoder(x)))
        scores = torch.softmax(logits, dim=-1) if self.softmax else logits
        return {"loss": nn.functional.cross_entropy(scores, labels), "logits": logits}


class Logs(transformers.TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))


def train(tmp_path, model, name, **args_kw):
    settings = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, gradient_accumulation_steps=2,
                    max_steps=10, report_to=[], use_cpu=True, logging_steps=1, save_strategy="no", disable_tqdm=True,
                    eval_strategy="steps", eval_steps=5, learning_rate=1e-2, lr_scheduler_type="linear",
                    dataloader_num_workers=0)
    settings.update(args_kw)
    logs = Logs()
    trainer = transformers.Trainer(model=model, args=transformers.TrainingArguments(**settings),
                                   train_dataset=Samples(80, as_dict=True), eval_dataset=Samples(16, as_dict=True),
                                   callbacks=[fs_transformers.ForgeScopeCallback(run_dir=tmp_path, run_name=name),
                                              logs])
    trainer.train()
    return RunReader(tmp_path / name), logs.logs


def test_hf_trainer_is_read_back_with_every_step_its_loss_lr_data_wait_and_evaluation(tmp_path):
    torch.manual_seed(0)
    run, logs = train(tmp_path, TinyClassifier(), "hf")
    meta, scalars = run.meta(), run.scalars()
    assert meta["status"] == "finished" and meta["steps"] == 10 and len(scalars) == 10
    assert meta["trainer"].startswith("transformers ") and meta["optimizers"][0]["class"] == "AcceleratedOptimizer"
    per_step = [entry for entry in logs if "loss" in entry and "train_runtime" not in entry]
    assert len(per_step) == 10
    # the loss and learning rate the Trainer itself logged for each step
    np.testing.assert_allclose(scalars["loss"].to_numpy(), [e["loss"] for e in per_step], rtol=1e-5)
    np.testing.assert_allclose(scalars["lr"].to_numpy(), [e["learning_rate"] for e in per_step], rtol=1e-6)
    wait = scalars["data_wait_s"].to_numpy()
    assert np.median(wait) >= 4 * WAIT_S and (wait <= scalars["step_time_s"].to_numpy() + 1e-6).all()
    evaluations = [e for e in logs if "eval_loss" in e]
    assert len(evaluations) == 2
    assert scalars["eval_loss"].iloc[5] == pytest.approx(evaluations[0]["eval_loss"])
    assert meta["final_metrics"]["eval_loss"] == pytest.approx(evaluations[1]["eval_loss"])   # after the last step
    assert {f["code"] for f in run.findings() if f["severity"] in ("error", "warning")} <= {"dataloader-stall"}


def test_hf_trainer_loop_bug_is_reported(tmp_path):
    torch.manual_seed(0)
    run, _ = train(tmp_path, TinyClassifier(softmax=True), "softmax", eval_strategy="no")
    found = [f for f in run.findings() if f["code"] == "loss-input-mismatch"]
    assert len(found) == 1 and found[0]["severity"] == "error" and "softmax" in found[0]["title"].lower()


def test_hf_trainer_exception_that_ends_the_script_closes_the_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(FIXTURES / "hf_crash.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 1 and "simulated at the fourth step" in proc.stderr
    meta = RunReader(tmp_path / "crash").meta()
    assert meta["status"] == "failed" and "simulated at the fourth step" in meta["error"] and meta["steps"] == 3


# -- accelerate without a trainer ---------------------------------------------------------------------------
def test_plain_probe_on_an_accelerate_prepared_model_and_optimizer(tmp_path):
    torch.manual_seed(0)
    accelerator = accelerate.Accelerator(cpu=True, gradient_accumulation_steps=2)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(Samples(64), batch_size=8)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    with Probe(model, optimizer, run_dir=tmp_path, run_name="accelerate", grad_norm=1) as probe:
        for x, y in probe.wrap(loader):
            with accelerator.accumulate(model):
                loss = nn.functional.cross_entropy(model(x), y)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
    run = RunReader(tmp_path / "accelerate")
    # 8 batches, a real step every 2 (accelerate skips the others): 4 steps, each with its gradients
    assert len(run.scalars()) == 4 and run.series("grad_norm").notna().all().all()
    assert run.scalars()["data_wait_s"].min() >= 8 * WAIT_S
    # the loader really waits (WAIT_S a sample): that is the one thing to say
    assert {f["code"] for f in run.findings() if f["severity"] in ("error", "warning")} <= {"dataloader-stall"}


# -- several ranks ------------------------------------------------------------------------------------------
def test_lightning_ddp_on_two_ranks_writes_one_run_with_a_log_per_rank(tmp_path):
    """Lightning starts the second rank itself (it runs the script again): each rank's callback attaches its
    own Probe, rank 0 names the run, and both logs hold every step."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(FIXTURES / "lightning_ddp.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 128 samples over 2 ranks, batches of 8, two batches per optimizer step: 4 steps on each rank
    for path, rank in ((tmp_path / "ddp", 0), (tmp_path / "ddp" / "rank1", 1)):
        run = RunReader(path)
        meta = run.meta()
        assert meta["status"] == "finished" and meta["rank"] == rank and meta["world_size"] == 2
        assert len(run.scalars()) == 4 and run.scalars()["loss"].notna().all()
    report = subprocess.run([sys.executable, "-m", "probes", "report", str(tmp_path / "ddp"), "--json"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    # in sync (no ranks-out-of-sync); on this 2-core machine two ranks can wait on their loaders, which is said
    codes = {f["code"] for f in json.loads(report.stdout)["findings"]}
    assert report.returncode == 0 and codes <= {"dataloader-stall"}, report.stdout


def test_hf_trainer_under_torchrun_on_two_ranks_writes_one_run_with_a_log_per_rank(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           str(FIXTURES / "hf_ddp.py"), str(tmp_path)], capture_output=True, text=True,
                          timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for path, rank in ((tmp_path / "ddp", 0), (tmp_path / "ddp" / "rank1", 1)):
        run = RunReader(path)
        meta = run.meta()
        assert meta["status"] == "finished" and meta["rank"] == rank and meta["world_size"] == 2
        assert len(run.scalars()) == 6 and run.scalars()["loss"].notna().all()
