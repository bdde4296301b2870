"""Between backward() and optimizer.step(): hooks on every optimizer's step, and which parameters each holds.
Shared by the watchers of gradients-accumulate, param-unreached and optimizer-not-stepping."""
from __future__ import annotations

import torch

from ..guard import closure_of
from ._base import SafeWatcher, stepping_optimizer


def held_parameters(ctx) -> list[tuple[str, torch.nn.Parameter, int]]:
    """(name, parameter, optimizer index) of the model's trainable parameters that an optimizer holds."""
    owner = {}
    for i, opt in enumerate(ctx.optimizers):
        for g in opt.param_groups:
            for p in g["params"]:
                owner.setdefault(id(p), i)
    out, seen = [], set()
    for name, p in ctx.model.named_parameters():
        if id(p) in owner and id(p) not in seen and p.requires_grad:
            seen.add(id(p))
            out.append((name, p, owner[id(p)]))
    return out


def opt_params(opt) -> list:
    return [p for g in opt.param_groups for p in g["params"] if isinstance(p, torch.Tensor) and p.requires_grad]


def has_closure(args, kwargs) -> bool:
    return closure_of(args, kwargs) is not None


class StepHooks(SafeWatcher):
    """A watcher with a pre- and post-step hook on every optimizer (on the one that really steps). The pre
    hook runs when the step's gradients are final (after a closure that computes them: Lightning, LBFGS)."""

    before = "step_ready"

    def _hook_optimizers(self) -> None:
        for i, opt in enumerate(self.ctx.optimizers):
            target = stepping_optimizer(opt)
            self.hook(target, self.before, lambda o, args, kwargs, i=i: self._before_step(i, args, kwargs))
            self.hook(target, "step_post", lambda o, args, kwargs, i=i: self._after_step(i))

    def _before_step(self, i: int, args, kwargs) -> None:
        pass

    def _after_step(self, i: int) -> None:
        pass
