"""param-unreached, seen from the loss's graph: trainable parameters an optimizer holds that no backward of
the step reaches (the loss's graph, walked to its leaves on diagnostic steps), on every one of the first
diagnostic steps: a layer defined and never used, a branch whose output is thrown away. An error when the
loss reaches none.
"""
from __future__ import annotations

from ..detectors import param_unreached
from ..tree import attribute_location, class_location
from ._base import graph_walk
from ._step_hooks import StepHooks, held_parameters

UNREACHED_STEPS = 3             # diagnostic steps a parameter must be unreached on before it is reported


class ParamUnreached(StepHooks):
    code = param_unreached.CODE

    def _attach(self) -> None:
        self._done = not self.ctx.optimizers       # steps marked by hand: nothing "held" to compare with
        self._judged: dict[str, int] = {}          # steps on which the parameter's optimizer stepped, walked
        self._missed: dict[str, int] = {}          # ... and no backward reached it
        self._checked = 0
        self._active = False
        self._reached: set[int] = set()
        self._walked = 0
        self._unknown = False
        self._stepped: set[int] = set()            # optimizers that stepped in this step
        self._hook_optimizers()

    def _step_start(self, step: int) -> None:
        self._active = not self._done and bool(self.ctx.diagnose(step))
        self._reached, self._walked, self._unknown, self._stepped = set(), 0, False, set()

    def _before_step(self, i: int, args, kwargs) -> None:
        self._stepped.add(i)

    def _backward(self, loss) -> None:
        if not self._active or not loss.requires_grad:
            return                      # no graph at all: backward is about to raise (gradient-chain-broken)
        walk = graph_walk(self.ctx, loss)   # a leaf loss (torch.tensor(..., requires_grad=True)) reaches nothing
        if walk.leaves is None or walk.opaque:
            self._unknown = True        # too large, or parameters may hide behind a custom Function
            return
        self._reached |= walk.leaves
        self._walked += 1

    def _step_end(self, step: int) -> None:
        if not self._active or not self._walked or self._unknown:
            return
        # judged only for the optimizers that stepped: a critic trained five times per generator step
        # leaves the generator out of most steps, on purpose
        held = [(n, p, i) for n, p, i in held_parameters(self.ctx) if i in self._stepped]
        if not held:
            return
        unreached = {name for name, p, _ in held if id(p) not in self._reached}
        if len(unreached) == len(held):
            return self._emit(step, held, unreached, none_reached=True)
        self._checked += 1
        for name, _, _ in held:
            self._judged[name] = self._judged.get(name, 0) + 1
            self._missed[name] = self._missed.get(name, 0) + (name in unreached)
        never = {n for n in self._judged if self._missed[n] == self._judged[n]}
        if not never:
            self._done = True           # every held parameter was reached at least once: nothing to say
            return
        due = {n for n in never if self._judged[n] >= UNREACHED_STEPS}
        if due:
            self._emit(step, held_parameters(self.ctx), due, none_reached=False)

    def _emit(self, step: int, held, unreached: set[str], none_reached: bool) -> None:
        self._done = True
        params = {name: p for name, p, _ in held}
        groups = _rolled_up(self.ctx.model, sorted(unreached, key=list(params).index))
        if not groups:
            return
        sizes = {n: {"shape": list(params[n].shape), "numel": params[n].numel()} for n in unreached}
        found = param_unreached.findings(step, sizes, len(held), groups, unreached, none_reached, self._judged,
                                         self._checked, self.ctx.reported(),
                                         lambda module: _where(self.ctx.model, module))
        for f in found:
            self.ctx.emit(f)


def _rolled_up(model, names: list[str]) -> dict[str, list[str]]:
    """Group parameter names by the outermost module all of whose trainable parameters are among them.

    A parameter whose own module has other parameters the loss does reach is left out: that module runs, and
    uses this one only on some inputs (a mask token for masked inputs, a padding or type embedding) — a
    conditional path, not a layer nobody uses."""
    wanted = set(names)
    trainable: dict[str, set[str]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            parts = name.split(".")[:-1]
            for k in range(len(parts) + 1):
                trainable.setdefault(".".join(parts[:k]), set()).add(name)
    out: dict[str, list[str]] = {}
    for name in names:
        module = name.rpartition(".")[0]
        if not trainable.get(module, set()) <= wanted:
            continue
        while module:
            parent = module.rpartition(".")[0]
            if not trainable.get(parent, set()) <= wanted:
                break
            module = parent
        out.setdefault(module, []).append(name)
    return out


def _where(model, module: str) -> str | None:
    """The line that assigns the module in its parent's __init__ (or the parent's class)."""
    if not module:
        return class_location(type(model))
    parent_path, _, attr = module.rpartition(".")
    try:
        parent = model.get_submodule(parent_path) if parent_path else model
    except AttributeError:
        return class_location(type(model))
    return attribute_location(type(parent), attr) if not type(parent).__module__.startswith("torch.") \
        else _where(model, parent_path)
