"""What the training loop feeds a Probe besides its steps: the wait for each batch (probe.wrap), the loader's
settings, and the loss of each .backward() (captured, or given with probe.log(loss=...)). A part of
probes.probe.Probe (its base class).
"""
from __future__ import annotations

import math
import time
from typing import Any

import torch

from . import _loss_capture
from .loader import loader_settings


class LoopInputs:
    """The data-wait and loss side of a Probe (see probes/probe.py for the attributes both sides share)."""

    # -- data and loss ----------------------------------------------------------------------------
    def _on_data_wait(self, seconds: float) -> None:
        self._data_wait += seconds
        if self.step_count == 0 and not self._waited_before_first_step:
            # the first step starts when the loop first asks for data, not when the Probe was built
            self._waited_before_first_step = True
            self._step_t0 = time.perf_counter() - seconds

    def _on_loader(self, loader) -> None:
        if self._writer is not None and self._recording:
            self._guarded(lambda: self._writer.set_meta(loader=loader_settings(loader)))

    def _forward_hook(self):
        # a closure, not a bound method: copy.deepcopy(model) (an EMA copy) copies a bound method's
        # Probe too, sqlite connection and all; a plain function is copied by reference
        def hook(module, args):
            self._forward_ran = True
        return hook

    def _on_backward(self, loss: torch.Tensor) -> None:
        if not self._recording:
            return
        if (self._forward_ran or _loss_capture.listeners() == 1) and loss.requires_grad:
            self._backward_calls += 1
            if len(self._losses) < 1024:
                self._losses.append(loss.detach())
        if self._forward_ran or _loss_capture.listeners() == 1:
            for w in self.watchers:
                w.backward(loss)
            # the walk of this loss's graph is for this backward only: holding its nodes any longer would keep
            # their metadata (kept-graph markers) alive
            self._shared.pop("walk", None)

    def _read_loss(self) -> float | None:
        if "loss" in self._logged:
            return _to_float(self._logged["loss"])
        if not self._losses:
            return None
        values = [_to_float(t) for t in self._losses]
        return sum(values) / len(values)         # gradient accumulation: the mean of the micro-batches


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        value = value.float().mean() if value.numel() != 1 else value
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
