"""layer-created-in-forward: a layer (or a weight) built while the model's forward runs.

`self.fc = nn.Linear(...)` or `nn.Linear(...)(x)` inside forward makes fresh random weights on every
call: the optimizer updates tensors that the next forward throws away. Building a layer registers its
parameters, and PyTorch's global registration hooks see that. Whether the model's forward is running is
read from the stack only then (registrations are rare), so a forward costs nothing extra. Lazy layers
materialise without registering anything, so they stay quiet.
"""
from __future__ import annotations

import sys

from torch import nn
from torch.nn.modules import module as nn_module

from ..findings import Finding
from ..tree import describe_module
from ._base import SafeWatcher, frame_location, frame_module, user_frames


_FORWARD_FRAMES = frozenset({"_call_impl", "forward"})


class LayerCreatedInForward(SafeWatcher):
    code = "layer-created-in-forward"

    def _attach(self) -> None:
        self._reported: set = set()
        self._step = 0
        self.handles += [
            nn_module.register_module_parameter_registration_hook(self.guard(self._on_parameter)),
            nn_module.register_module_module_registration_hook(self.guard(self._on_module)),
        ]

    def _in_forward(self) -> bool:
        """Is the model's forward (through model(x) or model.forward(x)) on the stack right now?"""
        model = self.ctx.model
        f = sys._getframe(2)
        while f is not None:
            if f.f_code.co_name in _FORWARD_FRAMES and f.f_locals.get("self") is model:
                return True
            f = f.f_back
        return False

    def _on_parameter(self, module, name, param) -> None:
        if param is not None and self._in_forward() and not self._in_model(param):
            self._built(module, name, param.numel())

    def _on_module(self, parent, name, sub) -> None:
        # a parameter-free layer built in forward (nn.ReLU()) is harmless; a known one is a re-assignment
        if sub is not None and self.ctx.module_name(sub) is None and self._in_forward():
            numel = sum(p.numel() for p in sub.parameters())
            if numel:
                self._built(sub, name, numel)

    def _in_model(self, param) -> bool:
        return any(p is param for p in self.ctx.model.parameters())

    def _built(self, layer: nn.Module, name: str, numel: int) -> None:
        # the line that builds it: the innermost user frame running a method of a module in the model
        frames = list(user_frames(2))
        owner_frame = next((f for f in frames if self._model_module(frame_module(f)) is not None), None)
        frame = owner_frame or (frames[0] if frames else None)
        owner = self._model_module(frame_module(owner_frame)) if owner_frame else None
        where = frame_location(frame)
        if where in self._reported:
            return
        self._reported.add(where)
        owner_name = self.ctx.module_name(owner) if owner is not None else None
        fresh = self.ctx.module_name(layer) is None
        cls = type(layer).__name__ if fresh else "nn.Parameter"
        label = describe_module(layer) if fresh else f"nn.Parameter {name}"
        who = f"{type(owner).__name__}.forward" if owner is not None else "forward"
        self.ctx.emit(Finding(
            code=self.code, severity="error",
            title=f"{cls} built inside {who}: new random weights on every call",
            detail=(f"A {label} is constructed while the model's forward runs, so every "
                    f"call starts from fresh random weights. The optimizer (built once, before) updates "
                    f"weights that the next forward throws away: this part of the model never learns."),
            module=owner_name, location=where,
            evidence={"class": cls, "layer": label, "numel": numel, "step": self._step},
            fix=(f"Build the layer once in __init__ (self.<name> = {cls}(...)) and only call it in forward; "
                 f"for a layer whose input size is unknown until forward, use a Lazy module (nn.LazyLinear).")))

    def _model_module(self, module):
        return module if module is not None and self.ctx.module_name(module) is not None else None

    def _step_start(self, step: int) -> None:
        self._step = step
