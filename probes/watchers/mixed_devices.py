"""mixed-devices, at run time: a module called with an input on another device than its own weights.

The registration tree shows a module whose own tensors are split across devices; it cannot show a whole
submodule left behind (built or replaced after `model.to(device)`), because each module alone is
consistent. The inputs show it: on diagnostic steps only, a forward pre-hook on every module that holds
parameters or buffers compares the devices of the tensors it is called with (positional and keyword
arguments, one level into lists/tuples/dicts) with its own. A 0-dim CPU tensor is skipped (PyTorch mixes
it into any device's arithmetic as a number). Manual model parallelism moves activations before calling
the next stage, so it stays clean. Reported once per module, before the operation fails (on a GPU, the
next line usually raises "Expected all tensors to be on the same device").
"""
from __future__ import annotations

import torch
from torch import nn

from ..detectors import mixed_devices
from ._base import SafeWatcher, frame_location, user_frames


def _tensors(args, kwargs):
    for value in (*args, *kwargs.values()):
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if isinstance(item, torch.Tensor):
                yield item


def _own_device(module: nn.Module) -> torch.device | None:
    for table in (module._parameters, module._buffers):
        for t in table.values():
            if t is not None and not isinstance(t, nn.parameter.UninitializedTensorMixin):
                return t.device
    return None


class InputDevices(SafeWatcher):
    code = mixed_devices.CODE

    def _attach(self) -> None:
        self._reported: set[int] = set()

    def _step_start(self, step: int) -> None:
        if not self.ctx.diagnose(step):
            return
        for module in self.ctx.model.modules():
            if id(module) not in self._reported and (module._parameters or module._buffers):
                self.hook(module, "forward_pre", self._pre_forward, with_kwargs=True)

    def _step_end(self, step: int) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def _pre_forward(self, module, args, kwargs) -> None:
        if id(module) in self._reported:
            return
        own = _own_device(module)
        if own is None:
            return
        away = [t for t in _tensors(args, kwargs)
                if t.device != own and not (t.dim() == 0 and t.device.type == "cpu")]
        if not away:
            return
        self._reported.add(id(module))
        name = self.ctx.module_name(module)
        caller = next(user_frames(2), None)          # the line that called this module
        inputs = [{"shape": list(t.shape), "device": str(t.device)} for t in away]
        self.ctx.emit(mixed_devices.called_across_devices(name, type(module).__name__, str(own), inputs,
                                                          frame_location(caller)))
