"""train-mode-off, seen at each optimizer step: the model still in eval mode (model.train() not called back
after a validation pass) while the optimizer steps."""
from __future__ import annotations

import torch
from torch import nn

from ..detectors import train_mode_off
from ._base import SafeWatcher, frame_location, frame_module, stepping_optimizer, user_frames
from ._modes import MODE_SENSITIVE, sensitive as _sensitive


class TrainModeOff(SafeWatcher):
    """train-mode-off: the model is in eval mode during training steps (model.train() not called back after a
    validation pass), so Dropout is off and BatchNorm's statistics are frozen while the optimizer steps.

    O(1) per step: a pre-hook on the model notes whether each grad-enabled forward ran in eval mode (and the
    line of the first eval-mode forward without gradients after training ones: the validation pass), and a
    pre-step hook on each optimizer checks, when a backward ran, whether the model is still in eval mode
    with Dropout/BatchNorm switched off. A model that trains with only its BatchNorm layers frozen (the root
    in training mode) is a deliberate choice and stays clean; so does an attack or an inference pass in
    eval mode followed by model.train() before the update."""

    code = train_mode_off.CODE

    def _attach(self) -> None:
        self._modules = [m for m in self.ctx.model.modules() if isinstance(m, MODE_SENSITIVE)]
        self._done = not self._modules       # nothing that behaves differently in eval mode
        self._eval_forward = False          # the last grad-enabled forward ran in eval mode
        self._trained_since = True          # a training-mode forward since the last validation pass was noted
        self._validation_at: str | None = None
        self._backward_at: str | None = None
        self._backwards = 0
        if self._done:
            return
        self.hook(self.ctx.model, "forward_pre", self._pre_forward)
        for opt in self.ctx.optimizers:
            self.hook(stepping_optimizer(opt), "step_ready", self._before_step)

    def _root(self) -> nn.Module:
        """The user's model: inside DataParallel/DDP, `model.module.eval()` leaves the wrapper's flag alone."""
        model = self.ctx.model
        return model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model

    def _pre_forward(self, model, args) -> None:
        model = self._root()
        if torch.is_grad_enabled():
            self._eval_forward = not model.training
            if model.training:
                self._trained_since = True
        elif not model.training and self._trained_since:
            self._trained_since = False
            frames = list(user_frames(2))
            caller = next((f for f in frames if frame_module(f) is None), frames[0] if frames else None)
            self._validation_at = frame_location(caller)

    def _step_start(self, step: int) -> None:
        self._backwards = 0

    def _backward(self, loss) -> None:
        if not self._done and self._eval_forward and not self._root().training and not self._backwards:
            self._backward_at = frame_location(next(user_frames(2), None))
        self._backwards += 1

    def _before_step(self, optimizer, args, kwargs) -> None:
        if self._done or not self._backwards or not self._eval_forward or self._root().training:
            return
        off = [m for m in self._modules if not m.training and _sensitive(m)]
        if not off:
            return
        self._done = True
        names = self.ctx.module_name
        modules = [(names(m), type(m).__name__) for m in off if names(m) is not None]
        self.ctx.emit(train_mode_off.finding(modules, self._validation_at, self._backward_at))
        self.detach()                   # reported once per run (safe from inside an optimizer hook)
