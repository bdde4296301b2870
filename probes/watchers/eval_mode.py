"""eval-mode-missing: Dropout/BatchNorm in training mode under no_grad / inference_mode.

That is a validation (or inference) pass without `model.eval()`: Dropout drops units at random, so the
predictions are noisy, and BatchNorm normalises with the batch's statistics and overwrites its running
statistics with validation data. One forward pre-hook on the model (O(1)): when a forward starts with
gradients off while the model is in training mode, the few Dropout/BatchNorm modules are checked for
`training`. Deliberate uses stay clean: a model put in eval mode with Dropout switched back on (Monte-Carlo
dropout), BatchNorm recalibration with momentum None (swa_utils.update_bn), and a deep copy of the model (an
EMA copy: our hooks do nothing on it). Judging at the model's entry,
not at each module, keeps a no_grad block inside a training forward (a frozen backbone) clean. Reported
once per run; then the hook goes.
"""
from __future__ import annotations

import torch
from torch import nn

from ..findings import Finding
from ._base import SafeWatcher, frame_location, frame_module, user_frames

MODE_SENSITIVE = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


def _sensitive(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0            # Dropout(0) behaves the same in both modes
    return isinstance(module, MODE_SENSITIVE)


class EvalModeMissing(SafeWatcher):
    code = "eval-mode-missing"

    def _attach(self) -> None:
        self._sensitive: list[nn.Module] = []
        self._find_modules()
        self.hook(self.ctx.model, "forward_pre", self._pre_forward)

    def _step_start(self, step: int) -> None:
        if self.handles and self.ctx.diagnose(step):
            self._find_modules()        # layers added since attach (rare: the tree changed)

    def _find_modules(self) -> None:
        self._sensitive = [m for m in self.ctx.model.modules() if isinstance(m, MODE_SENSITIVE)]

    def _pre_forward(self, model, args) -> None:
        # grad on at the model's entry is a training forward, even with a no_grad block inside (a frozen
        # backbone); the module list is read only for gradient-free forwards
        if torch.is_grad_enabled() or not self._sensitive:
            return
        if not model.training:
            return      # model.eval() was called: a layer still in training mode was switched on on purpose
                        # (Monte-Carlo dropout turns Dropout back on after eval())
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.momentum is None
               for m in self._sensitive):
            return      # BatchNorm recalibration (swa_utils.update_bn): a cumulative average, in train mode
                        # under no_grad, on purpose
        running = [m for m in self._sensitive if m.training and _sensitive(m)]
        if not running:
            return
        self._report(running)
        for h in self.handles:          # reported once per run: nothing more to watch
            h.remove()
        self.handles = []

    def _report(self, running: list[nn.Module]) -> None:
        names = self.ctx.module_name
        modules = [(names(m), type(m).__name__) for m in running if names(m) is not None]
        kinds = sorted({cls for _, cls in modules})
        # the line that ran the validation forward: the innermost user frame outside any module's code
        frames = list(user_frames(2))
        caller = next((f for f in frames if frame_module(f) is None), frames[0] if frames else None)
        context = "torch.inference_mode()" if torch.is_inference_mode_enabled() else "torch.no_grad()"
        bn = any("BatchNorm" in cls for cls in kinds)
        self.ctx.emit(Finding(
            code=self.code, severity="warning",
            title=f"{'/'.join(kinds)} ran in training mode under {context}: model.eval() is missing",
            detail=("A forward pass ran without gradients while the model was in training mode — a "
                    "validation or inference pass without model.eval(). "
                    + ("Dropout drops units at random, so the predictions are noisy. " if any(
                        "Dropout" in c for c in kinds) else "")
                    + ("BatchNorm normalises with each batch's own statistics and overwrites its running "
                       "statistics with validation data." if bn else "")).strip(),
            module=modules[0][0] if modules else None, location=frame_location(caller),
            evidence={"modules": [name for name, _ in modules][:20], "classes": kinds,
                      "count": len(modules), "context": context},
            fix=("Call model.eval() before validation and model.train() after it (torch.no_grad() only "
                 "turns off gradients, not Dropout or BatchNorm's training behaviour).")))
