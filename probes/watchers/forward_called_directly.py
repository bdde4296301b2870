"""forward-called-directly: `model.forward(x)` instead of `model(x)` skips every hook.

The model's `forward` is wrapped by an instance attribute (one extra Python call per forward). nn.Module's
`__call__` looks up `self.forward` too, so the wrapper runs on both paths; its caller tells them apart:
`__call__` calls it from torch/nn/modules/module.py, a direct call from anywhere else. Submodules get the
same wrapper only on diagnostic steps (one wrapper per module call is not an always-on cost).

On detach the instance attribute is removed, or the user's own instance-level forward put back.
"""
from __future__ import annotations

import sys
import types

import torch
from torch import nn
from torch.nn.modules import module as nn_module

from ..detectors import forward_called_directly
from ._base import SafeWatcher, frame_location, user_frames

_MODULE_FILE = nn_module.__file__
_CALL_PATHS = frozenset({"_call_impl", "inner", "_slow_forward", "_wrapped_call_impl"})
_MISSING = object()


class _Forward:
    """The wrapper stored as `module.forward`. A class, not a closure, so that copy.deepcopy(model) (an EMA
    copy, say) gives the copy its own plain forward instead of one bound to this model; a
    shallow copy called through __call__ (DataParallel's replicas copy __dict__) runs its own forward too."""

    __slots__ = ("module", "inner", "on_direct", "__wrapped__")

    def __init__(self, module: nn.Module, inner, on_direct):
        self.module, self.inner, self.on_direct = module, inner, on_direct
        self.__wrapped__ = inner            # inspect.signature(model.forward) still shows the user's one

    def __call__(self, *args, **kwargs):
        caller = sys._getframe(1)
        code = caller.f_code
        if code.co_name in _CALL_PATHS and code.co_filename == _MODULE_FILE:
            me = caller.f_locals.get("self")
            if me is not None and me is not self.module:
                # a module sharing this __dict__ entry (a DataParallel replica, a copy.copy): its own forward
                return type(me).forward(me, *args, **kwargs)
        else:
            self.on_direct(self.module)
        return self.inner(*args, **kwargs)

    def __deepcopy__(self, memo):
        copy = memo.get(id(self.module))
        return types.MethodType(type(self.module).forward, copy) if copy is not None else self.inner


class ForwardCalledDirectly(SafeWatcher):
    code = forward_called_directly.CODE

    def _attach(self) -> None:
        self._patched: dict[int, tuple[nn.Module, object, _Forward]] = {}    # id -> (module, saved, wrapper)
        self._reported: set = set()
        self._on_direct = self.guard(self._direct)
        self._wrap(self.ctx.model)

    def _step_start(self, step: int) -> None:
        if self.ctx.diagnose(step):
            for module in self.ctx.model.modules():
                # containers (ModuleList/Dict) have no forward of their own to bypass
                # (a TorchScript module's class raises on .forward: it takes no Python wrapper anyway)
                if module is not self.ctx.model and not isinstance(module, torch.jit.ScriptModule) \
                        and type(module).forward is not nn.Module.forward:
                    self._wrap(module)

    def _step_end(self, step: int) -> None:
        for key, (module, _, _) in list(self._patched.items()):
            if module is not self.ctx.model:
                self._unwrap(key)

    def _detach(self) -> None:
        for key in list(getattr(self, "_patched", {})):
            self._unwrap(key)

    def _wrap(self, module: nn.Module) -> None:
        if id(module) in self._patched or isinstance(module, torch.jit.ScriptModule):
            return
        saved = module.__dict__.get("forward", _MISSING)
        wrapper = _Forward(module, module.forward, self._on_direct)
        module.__dict__["forward"] = wrapper
        self._patched[id(module)] = (module, saved, wrapper)

    def _unwrap(self, key: int) -> None:
        module, saved, wrapper = self._patched.pop(key)
        if module.__dict__.get("forward") is not wrapper:
            return              # the user replaced forward since: theirs stays
        if saved is _MISSING:
            del module.__dict__["forward"]
        else:
            module.__dict__["forward"] = saved

    def _direct(self, module: nn.Module) -> None:
        frame = next(user_frames(3), None)
        where = frame_location(frame)
        name = self.ctx.module_name(module)
        if (name, where) in self._reported:
            return
        self._reported.add((name, where))
        self.ctx.emit(forward_called_directly.finding(name, type(module).__name__, where))
