"""ForgeScope in PyTorch Lightning 2.x (the `lightning` package or `pytorch_lightning`):

    from probes.integrations.lightning import ForgeScopeCallback
    trainer = Trainer(callbacks=[ForgeScopeCallback(run_dir="runs")])

The Probe goes on the LightningModule and the optimizers the trainer built, when training starts (after the
sanity-check validation). Each optimizer step is one step of the run; the loss recorded is the one your
training_step returned (the mean over micro-batches with accumulate_grad_batches), the learning rate is read
just before each step, the data wait is the time from one batch's end to the next batch's start, and the
validation passes are left out of both (their metrics are recorded on the step they follow). Every rank of a
DDP run writes its own log of one run. The run is closed when training ends, on an exception and on Ctrl-C.

Any Probe setting may be given (`grad_norm=1`, `diagnose=...`, `run_name=...`); bad ones fail here, when the
callback is built.
"""
from __future__ import annotations

from typing import Any

from ._trainer_run import TrainerRun, check_settings

_BASES = []
for _name in ("lightning.pytorch", "pytorch_lightning"):
    try:
        _module = __import__(_name, fromlist=["Callback"])
        _BASES.append(_module.Callback)
    except ImportError:
        pass
if not _BASES:
    raise ImportError("probes.integrations.lightning needs PyTorch Lightning 2.x: pip install lightning "
                      "(or pytorch_lightning), or install ForgeScope with its extra: pip install .[lightning]")


def _version() -> str:
    for name in ("lightning", "pytorch_lightning"):
        try:
            return f"{name} {__import__(name).__version__}"
        except Exception:       # noqa: BLE001
            continue
    return "lightning"


class ForgeScopeCallback(*_BASES):
    """A Lightning Callback that records the run with a ForgeScope Probe. See the module docstring."""

    def __init__(self, run_dir="runs", **probe_settings: Any):
        super().__init__()
        self.run = TrainerRun("ForgeScopeCallback", run_dir, check_settings("ForgeScopeCallback", probe_settings),
                              _version())

    @property
    def probe(self):
        """The Probe of the run in progress (None before training starts and after it ends)."""
        return self.run.probe

    # -- the run ---------------------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        def start():
            meta = {"accumulate_grad_batches": getattr(trainer, "accumulate_grad_batches", None),
                    "world_size": getattr(trainer, "world_size", None),
                    "automatic_optimization": bool(getattr(pl_module, "automatic_optimization", True))}
            self.run.start(pl_module, list(trainer.optimizers), getattr(trainer, "train_dataloader", None), meta)
        self.run.safely("attach a Probe", start)

    def on_train_end(self, trainer, pl_module) -> None:
        self.run.safely("close the run", self.run.close)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        why = ("KeyboardInterrupt: training interrupted" if isinstance(exception, KeyboardInterrupt)
               else f"{type(exception).__name__}: {exception}")
        self.run.safely("close the run", self.run.close, why)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self.run.probe is not None:          # fit ended some other way (an early exit in a hook)
            self.run.safely("close the run", self.run.close)

    # -- each batch and step ---------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.run.epoch_start()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.run.safely("measure the data wait", self.run.batch_start)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.run.batch_end()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        def before():
            optimizers = list(trainer.optimizers)
            index = next((i for i, o in enumerate(optimizers) if o is optimizer
                          or getattr(optimizer, "optimizer", None) is o), 0)
            # automatic optimization divides each micro-batch's loss by accumulate_grad_batches before backward
            self.run.before_optimizer_step(optimizer, index, bool(getattr(pl_module, "automatic_optimization", True)))
        self.run.safely("read the learning rate and loss", before)

    # -- validation: not data wait, not training time; its metrics recorded ---------------------------------
    def on_validation_end(self, trainer, pl_module) -> None:
        def end():
            if getattr(trainer, "sanity_checking", False):
                return
            self.run.pause_end()
            self.run.metrics(dict(getattr(trainer, "callback_metrics", {}) or {}))
        self.run.safely("record the validation metrics", end)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.run.safely("leave out the checkpoint's time", self.run.pause_end)
