"""The loss spy, which both loss watchers read: where each loss is computed, with its argument shapes.

A small TorchFunctionMode, pushed when the model's forward returns on a diagnostic step (only onto an empty
mode stack) and popped at backward, records the calls of the loss functions made in between, nothing else
(ctx.shared["loss_calls"]: each call's function, how the user wrote it, its line and argument shapes).
"""
from __future__ import annotations

import os
import sys

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from ..detectors._common import LOSS_MODULE_NAMES as _MODULE_NAMES
from ._base import SafeWatcher, frame_location, user_frames

# loss functions the spy records, by the name the findings use
LOSSES = {F.cross_entropy: "cross_entropy", F.nll_loss: "nll_loss", F.binary_cross_entropy: "binary_cross_entropy",
          F.binary_cross_entropy_with_logits: "binary_cross_entropy_with_logits", F.mse_loss: "mse_loss",
          F.l1_loss: "l1_loss", F.smooth_l1_loss: "smooth_l1_loss", F.huber_loss: "huber_loss"}
REGRESSION = {"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"}
_FUNCTIONAL = F.__file__
_LOSS_MODULES = os.path.join(os.path.dirname(torch.nn.__file__), "modules", "loss.py")
_SPY_CALLS = 32                 # loss calls kept per step (a loop computing hundreds is not read further)


class _LossSpy(TorchFunctionMode):
    """Records the loss function calls made while it is on the mode stack (see the module docstring)."""

    def __init__(self, record):
        super().__init__()
        self.record = record            # guarded by the watcher: it never stands between the user and func
        self.on = True

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.on:
            self.record(func, args, kwargs)
        return func(*args, **kwargs)


def _record_call(calls: list, func, args, kwargs) -> None:
    try:
        name = LOSSES.get(func) if not isinstance(func, type) else None
    except TypeError:                   # an unhashable callable: not one of ours
        return
    if name is None or len(calls) >= _SPY_CALLS:
        return
    pred = kwargs.get("input", args[0] if args else None)
    target = kwargs.get("target", args[1] if len(args) > 1 else None)
    frame = next(user_frames(3), None)
    # called as F.<name> by the user, or by an nn loss module's forward
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename != _FUNCTIONAL:
        f = f.f_back
    caller = f.f_back.f_code.co_filename if f is not None and f.f_back is not None else ""
    shown = f"nn.{_MODULE_NAMES[name]}" if caller == _LOSS_MODULES else f"F.{name}"
    call = {"loss": name, "shown": shown, "location": frame_location(frame),
            "input_shape": list(pred.shape) if isinstance(pred, torch.Tensor) else None,
            "target_shape": list(target.shape) if isinstance(target, torch.Tensor) else None}
    calls.append(call)


class LossSpy(SafeWatcher):
    """The loss spy: where each loss is computed, with its argument shapes (ctx.shared["loss_calls"])."""

    code = "loss calls"

    def _attach(self) -> None:
        self.calls: list[dict] = []
        self.ctx.shared["loss_calls"] = self.calls
        self._spy = _LossSpy(self.guard(lambda func, args, kwargs: _record_call(self.calls, func, args, kwargs)))
        self._pushed = False
        self._due = False
        self._mine: list = []

    def _step_start(self, step: int) -> None:
        self._pop()
        self.calls.clear()
        self._due = bool(self.ctx.diagnose(step))
        for h in self._mine:
            h.remove()
            self.handles.remove(h)
        self._mine = []
        if self._due:
            # registered anew each diagnostic step, after the other watchers' hooks (some are added at their
            # own step start): the modes they push in forward are popped by the time this one runs
            n = len(self.handles)
            self.hook(self.ctx.model, "forward_pre", self._forward_starts)
            self.hook(self.ctx.model, "forward", self._forward_ends)
            self._mine = self.handles[n:]

    def _forward_starts(self, module, args) -> None:
        self._pop()                     # the model's own code is not spied on (the graph covers it)

    def _forward_ends(self, module, args, output) -> None:
        if self._due and not self._pushed and torch.is_grad_enabled() \
                and torch._C._len_torch_function_stack() == 0:
            self._spy.on = True
            torch._C._push_on_torch_function_stack(self._spy)
            self._pushed = True

    def _backward(self, loss) -> None:
        self._pop()

    def _step_end(self, step: int) -> None:
        self._pop()

    def _step_failed(self, error: str) -> None:
        self._pop()

    def _detach(self) -> None:
        self._pop()
        if getattr(self, "_pushed", False):
            self._spy.on = False        # under a mode the user pushed after it: inert, popped by nobody else

    def _pop(self) -> None:
        """Off the stack, but only from its top: a mode the user pushed later is never popped by us (the spy
        then stays inert until it is on top again)."""
        if not getattr(self, "_pushed", False):
            return
        self._spy.on = False
        n = torch._C._len_torch_function_stack()
        if n and torch._C._get_function_stack_at(n - 1) is self._spy:
            torch._C._pop_torch_function_stack()
            self._pushed = False


def call_for(ctx, loss_name: str, shape=None) -> dict | None:
    """The spied call of this loss (same function; same input shape when known), if any."""
    calls = ctx.shared.get("loss_calls") or []
    same = [c for c in calls if c["loss"] == loss_name or (loss_name == "nll_loss" and c["loss"] == "cross_entropy")]
    if shape is not None:
        exact = [c for c in same if c["input_shape"] == list(shape)]
        same = exact or same
    return same[0] if same else None
