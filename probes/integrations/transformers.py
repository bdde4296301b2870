"""ForgeScope in the Hugging Face Trainer:

    from probes.integrations.transformers import ForgeScopeCallback
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[ForgeScopeCallback(run_dir="runs")])

The Probe goes on the model and the optimizer the Trainer built (accelerate's wrapper: the hooks go on the
optimizer inside it, the one that really steps) when training begins. Each optimizer step is one step of the
run; the loss recorded is the one the Trainer reports for the step (the sum of the micro-batch losses it
scaled for gradient accumulation), the learning rate is read just before each step, the data wait is the
time from one step's end to the next step's start (the Trainer fetches a step's micro-batches there), and
evaluation and checkpoint saving are left out of both (evaluation metrics are recorded on the step they
follow). Every rank writes its own log of one run. The run is closed when training ends; the Trainer has no
callback for an exception, so one that ends the script, Ctrl-C included, closes it as failed (in a notebook,
where the kernel catches it, the run reads as stopped once its heartbeat is silent).
"""
from __future__ import annotations

from typing import Any

from ._trainer_run import TrainerRun, check_settings

try:
    import transformers as _transformers
    from transformers import TrainerCallback as _TrainerCallback
except ImportError as e:       # pragma: no cover - the message is the point
    raise ImportError("probes.integrations.transformers needs the Hugging Face transformers library: pip install "
                      "transformers accelerate, or install ForgeScope with its extra: pip install .[transformers]"
                      ) from e


class ForgeScopeCallback(_TrainerCallback):
    """A transformers TrainerCallback that records the run with a ForgeScope Probe. See the module docstring."""

    def __init__(self, run_dir="runs", **probe_settings: Any):
        self.run = TrainerRun("ForgeScopeCallback", run_dir, check_settings("ForgeScopeCallback", probe_settings),
                              f"transformers {_transformers.__version__}")
        self._optimizer = None

    @property
    def probe(self):
        """The Probe of the run in progress (None before training begins and after it ends)."""
        return self.run.probe

    def on_train_begin(self, args, state, control, model=None, optimizer=None, train_dataloader=None, **kwargs):
        def start():
            self._optimizer = optimizer
            meta = {"gradient_accumulation_steps": getattr(args, "gradient_accumulation_steps", None),
                    "world_size": getattr(args, "world_size", None)}
            self.run.start(model, [optimizer], train_dataloader, meta)
        self.run.safely("attach a Probe", start)

    def on_train_end(self, args, state, control, **kwargs):
        self.run.safely("close the run", self.run.close)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.run.epoch_start()

    def on_step_begin(self, args, state, control, **kwargs):
        self.run.safely("measure the data wait", self.run.batch_start)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.run.safely("read the learning rate and loss", self.run.before_optimizer_step, self._optimizer, 0, True)

    def on_step_end(self, args, state, control, **kwargs):
        self.run.batch_end()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        def end():
            self.run.pause_end()
            self.run.metrics(metrics or {})
        self.run.safely("record the evaluation metrics", end)

    def on_save(self, args, state, control, **kwargs):
        self.run.safely("leave out the checkpoint's time", self.run.pause_end)
