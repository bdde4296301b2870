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

from ..detectors import layer_created_in_forward
from ..tree import describe_module
from ._base import SafeWatcher, frame_location, frame_module, user_frames


_FORWARD_FRAMES = frozenset({"_call_impl", "forward"})


class LayerCreatedInForward(SafeWatcher):
    code = layer_created_in_forward.CODE

    def _attach(self) -> None:
        self._reported: set = set()
        self._pending: dict[int, tuple] = {}        # id(layer) -> (layer, site): built, not yet assigned
        self._step = 0
        self.hook(None, "parameter_registration", self._on_parameter)
        self.hook(None, "module_registration", self._on_module)

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
        if param is None or not self._in_forward() or self._in_model(param):
            return
        if self.ctx.module_name(module) is None:
            # a layer being constructed (nn.Linear(...) registers its weight): where it ends up is known
            # only when it is assigned (self.fc = ...) or never (a local); report it then, or at step end
            if id(module) not in self._pending:
                self._pending[id(module)] = (module, self._site(module, name))
        else:           # self.w = nn.Parameter(...) inside forward, on a module of the model
            site = self._site(module, name)
            site["param_numel"] = param.numel()
            self._report(site, self._path(module, name))

    def _on_module(self, parent, name, sub) -> None:
        # a parameter-free layer built in forward (nn.ReLU()) is harmless; a known one is a re-assignment
        if sub is None or self.ctx.module_name(sub) is not None or not self._in_forward():
            return
        pending = self._pending.pop(id(sub), None)
        site = pending[1] if pending else (self._site(sub, name) if any(True for _ in sub.parameters()) else None)
        if site is not None:
            self._report(site, self._path(parent, name))

    def _in_model(self, param) -> bool:
        return any(p is param for p in self.ctx.model.parameters())

    def _path(self, parent: nn.Module, name: str) -> str | None:
        """The dotted name the new layer or weight gets in the model, when it is assigned to one of its
        modules (self.fc = ... in forward); None for a local that nothing keeps."""
        owner = self.ctx.module_name(parent)
        return None if owner is None else f"{owner}.{name}" if owner else name

    def _site(self, layer: nn.Module, name: str) -> dict:
        """What is built and where, read from the stack at the moment it is built."""
        # the line that builds it: the innermost user frame running a method of a module in the model
        frames = list(user_frames(3))
        owner_frame = next((f for f in frames if self._model_module(frame_module(f)) is not None), None)
        frame = owner_frame or (frames[0] if frames else None)
        owner = self._model_module(frame_module(owner_frame)) if owner_frame else None
        return {"layer": layer, "name": name, "where": frame_location(frame), "owner": owner, "step": self._step}

    def _flush(self) -> None:
        """Layers built in forward and never assigned to the model (locals): reported without a name."""
        pending, self._pending = self._pending, {}
        for _, site in pending.values():
            self._report(site, None)

    def _report(self, site: dict, path: str | None) -> None:
        where, layer, owner = site["where"], site["layer"], site["owner"]
        if where in self._reported:
            return
        self._reported.add(where)
        owner_name = self.ctx.module_name(owner) if owner is not None else None
        is_param = "param_numel" in site        # a bare nn.Parameter, not a layer
        cls = "nn.Parameter" if is_param else type(layer).__name__
        label = f"nn.Parameter {site['name']}" if is_param else describe_module(layer)
        numel = site["param_numel"] if is_param else sum(p.numel() for p in layer.parameters())
        who = f"{type(owner).__name__}.forward" if owner is not None else "forward"
        self.ctx.emit(layer_created_in_forward.finding(cls, label, numel, site["step"], path, who, owner_name, where))

    def _model_module(self, module):
        return module if module is not None and self.ctx.module_name(module) is not None else None

    def _step_start(self, step: int) -> None:
        self._step = step

    def _step_end(self, step: int) -> None:
        self._flush()

    def _detach(self) -> None:
        self._flush()
