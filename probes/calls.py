"""Which module was running when the model's forward failed, and what it was given (for the worker's error
message: "module b (Linear 64→4) received input of shape (8, 32)")."""
from __future__ import annotations

import torch
from torch import nn

from .guard import Guard
from .tree import describe_module, named_modules


class CallTracker:
    """Which module was running when forward failed, and what it was given.

    A global forward pre-hook pushes each module call, a forward hook pops it; after an exception the
    innermost call is still on the stack.
    """

    def __init__(self):
        self.stack: list[tuple[nn.Module, tuple]] = []
        self.names: dict[int, str] = {}
        guard = Guard()     # the worker's own bookkeeping must not fail the user's forward either
        self._handles = [guard.hook("call tracking", None, "module_forward_pre", self._push),
                         guard.hook("call tracking", None, "module_forward", self._pop)]

    def name(self, model: nn.Module) -> None:
        self.names = {id(m): p for p, m in named_modules(model)}

    def _push(self, module, args):
        self.stack.append((module, args))

    def _pop(self, module, args, output):
        if self.stack:
            self.stack.pop()

    def reset(self):
        self.stack.clear()

    def context(self) -> str:
        if not self.stack:
            return ""
        module, args = self.stack[-1]
        path = self.names.get(id(module))
        who = ((f"module {path}" if path else "the model") if path is not None
               else f"an unregistered {type(module).__name__} (not part of the model)")
        shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
        given = " and ".join(str(s) if len(s) != 1 else f"({s[0]},)" for s in shapes) or "no tensor"
        return f"{who} ({describe_module(module)}) received input of shape {given}"

    def close(self):
        for h in self._handles:
            h.remove()
