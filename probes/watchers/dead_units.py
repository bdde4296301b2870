"""dead-units: ReLU units that output zero for (nearly) every input — they get no gradient, so they stay dead.

On diagnostic steps only, a forward hook on each ReLU/ReLU6 module counts, per unit (dim 1: a Linear's
feature, a conv's channel), how many outputs are exactly zero over the batch; the counts add up over the
diagnostic steps seen. LeakyReLU/GELU/SiLU are never exactly zero and F.relu inside forward cannot be
hooked, so neither is watched. 3-D outputs are skipped: (batch, channels, length) and
(batch, time, features) cannot be told apart.
"""
from __future__ import annotations

import torch
from torch import nn

from ..detectors import dead_units
from ..detectors import thresholds as T
from ._base import SafeWatcher

RELU_LIKE = (nn.ReLU, nn.ReLU6)


class DeadUnits(SafeWatcher):
    code = dead_units.CODE

    def _attach(self) -> None:
        self._zeros: dict[tuple, torch.Tensor] = {}     # (module id, call) -> zero count per unit
        self._counts: dict[tuple, int] = {}             # (module id, call) -> values per unit
        self._steps: dict[tuple, int] = {}              # (module id, call) -> diagnostic steps seen
        self._modules: dict[tuple, nn.Module] = {}
        self._reported: set = set()
        self._calls: dict[int, int] = {}
        self._step = 0
        self._token_features: set | None = None     # Linear out_features / Conv1d out_channels of the model
        self._channels: set = set()

    def _step_start(self, step: int) -> None:
        self._step = step
        if not self.ctx.diagnose(step):
            return
        self._calls, self._seen_this_step = {}, set()
        for module in self.ctx.model.modules():
            if isinstance(module, RELU_LIKE):
                self.hook(module, "forward", self._forward)

    def _forward(self, module, args, output) -> None:
        # training forwards only: a validation pass under no_grad is not what the optimizer sees
        if not torch.is_grad_enabled() or not isinstance(output, torch.Tensor) or output.dim() not in (2, 3, 4, 5):
            return
        if output.dim() == 3:
            # (B, T, features) after a Linear, as in a transformer's feed-forward: the units are the last
            # dimension. (B, channels, L) after a Conv1d is left alone, as before: which dimension holds the
            # units is only certain where no Conv1d could have made the output
            if self._token_features is None:
                self._token_features = {m.out_features for m in self.ctx.model.modules() if isinstance(m, nn.Linear)}
                self._channels = {m.out_channels for m in self.ctx.model.modules() if isinstance(m, nn.Conv1d)}
            if output.shape[2] not in self._token_features or self._channels:
                return
            output = output.transpose(1, 2)
        units = output.shape[1]
        # one ReLU module reused after layers of other widths is told apart by width; calls of the same width
        # (the same forward run on several batches: a GAN critic on real and on generated data, whose first
        # generated batch is nearly one point) are pooled, so a unit is dead only if no input brings it alive
        key = (id(module), units)
        if output.numel() == 0:
            return
        with torch.no_grad():
            dims = [d for d in range(output.dim()) if d != 1]
            zeros = (output.detach() == 0).sum(dim=dims)
        per_unit = output.numel() // units
        if key in self._zeros and self._zeros[key].shape == zeros.shape:
            self._zeros[key] += zeros
            self._counts[key] += per_unit
        else:
            self._zeros[key], self._counts[key], self._steps[key] = zeros, per_unit, 0
        self._modules[key] = module
        self._seen_this_step.add(key)

    def _step_end(self, step: int) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        for key in getattr(self, "_seen_this_step", ()):
            self._steps[key] += 1
            if key not in self._reported and self._steps[key] >= T.DEAD_MIN_STEPS:
                self._judge(key)
        self._seen_this_step = set()

    def _judge(self, key: tuple) -> None:
        zero_frac = self._zeros[key].double().cpu() / self._counts[key]
        dead = (zero_frac >= T.DEAD_UNIT_ZERO_FRAC).nonzero().flatten().tolist()
        units = zero_frac.numel()
        # a narrow layer (one unlucky unit of two is already half) counts only when all of it is dead: then
        # nothing passes through it at all (a one-unit output ReLU that is always 0)
        if len(dead) < T.DEAD_LAYER_SHARE * units or (units < T.DEAD_MIN_UNITS and len(dead) < units):
            return
        self._reported.add(key)
        module = self._modules[key]
        name = self.ctx.module_name(module)
        widths = {k[1] for k in self._zeros if k[0] == key[0]}
        self.ctx.emit(dead_units.finding(name, type(module).__name__, units, dead, self._counts[key], self._steps[key],
                                         key[1] if len(widths) > 1 else None))
