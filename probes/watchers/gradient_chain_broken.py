"""gradient-chain-broken, seen live, two watchers:

GradientChainBroken: forward cut the autograd graph, so parameters it used get no gradient.

`.detach()`, `.item()`, `float(t)`, `.tolist()`, `.numpy()` (needs a detach first) and `.data` on a tensor
that requires grad make the rest of the computation a constant: every parameter before the cut ends the
backward pass with `grad is None`. Either signal alone misfires — a straight-through estimator detaches on
purpose (`x + (q - x).detach()`, gradients still flow), an unused auxiliary head has no gradient without
any cut — so both are required, on diagnostic steps only:

* a TorchFunctionMode, active only during the model's forward, records each cut made by user code on a
  tensor that requires grad (its line, and how many module forwards had finished before it);
* forward hooks record which modules ran with grad enabled; at step end (after backward and the
  optimizer step, gradients still there) their trainable parameters with `grad is None` are the broken
  ones. A cut is reported when a broken module had finished its forward before the cut, or is the module
  whose forward made the cut (raw nn.Parameters used in that forward).

LossGraph: what the loss's autograd graph says, read when `.backward()` is called on it.

* gradient-chain-broken, when no backward of a step reaches any trainable parameter of the model: the loss
  was rebuilt from plain numbers (`torch.tensor([loss.item()], requires_grad=True)`) or from detached
  outputs, so backward runs, and nothing learns. Judged over the whole step, so a GAN's discriminator loss
  (which reaches only the other model) next to the generator's is fine; on diagnostic steps only (the walk
  over the graph costs about a microsecond a node).
* the number of classes of a cross-entropy loss (log_softmax then nll_loss, mean over the batch, as
  F.cross_entropy and nn.CrossEntropyLoss build it), recorded in the run's meta so that
  suspicious-initial-loss can judge the first loss of any loop: the check's own, a user's loss_fn or
  train_step, or a Probe in the user's training script.
"""
from __future__ import annotations

import os
import sys

import torch
from torch.overrides import TorchFunctionMode

from ..detectors import gradient_chain_broken
from ..detectors._common import common_parent
from ._base import (SafeWatcher, cross_entropy_classes, frame_location, frame_module, graph_walk, is_library_file,
                    reaches, user_frames, verdict)

__all__ = ["GradientChainBroken", "LossGraph", "cross_entropy_classes", "reaches"]

# frames between the user's call and our mode: tensor-method shims and the override machinery
_TORCH_DIR = os.path.dirname(torch.__file__)
_SHIMS = frozenset({os.path.join(_TORCH_DIR, "overrides.py"), os.path.join(_TORCH_DIR, "_tensor.py"),
                    __file__, os.path.join(os.path.dirname(__file__), "_base.py"),
                    os.path.join(os.path.dirname(os.path.dirname(__file__)), "guard.py")})

_CUTS = {"detach": ".detach()", "detach_": ".detach_()", "item": ".item()", "tolist": ".tolist()",
         "__float__": "float()", "__int__": "int()", "numpy": ".numpy()", "__array__": "np.asarray()"}


def _cut_name(func) -> str | None:
    name = getattr(func, "__name__", None)
    if name == "__get__":                                   # a property read: only `.data` cuts
        owner = getattr(func, "__self__", None)
        return ".data" if getattr(owner, "__name__", None) == "data" else None
    return _CUTS.get(name)


_CHECKPOINT = os.path.join(_TORCH_DIR, "utils", "checkpoint.py")


def _in_checkpoint() -> bool:
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_filename == _CHECKPOINT:
            return True
        f = f.f_back
    return False


class _CutRecorder(TorchFunctionMode):
    def __init__(self, on_cut):
        super().__init__()
        self.on_cut = on_cut

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.on_cut(func, args)          # guarded: our check never stands between the user and the op
        return func(*args, **(kwargs or {}))


class GradientChainBroken(SafeWatcher):
    code = gradient_chain_broken.CODE

    def _attach(self) -> None:
        self._reported: set = set()
        self._active = False

    def _step_start(self, step: int) -> None:
        self._step_no = step
        self._active = bool(self.ctx.diagnose(step))
        if not self._active:
            return
        self._finished: dict[int, int] = {}         # module id -> order its forward finished (grad enabled)
        self._cuts: dict[str, dict] = {}            # location -> what was cut there
        self._mode = _CutRecorder(self.guard(self._on_cut))
        self._mode_on = False
        model = self.ctx.model
        self.hook(model, "forward_pre", self._enter)
        self.hook(model, "forward", self._leave, always_call=True)
        self._region: dict | None = None          # the no_grad region inside forward being run, if any
        for module in model.modules():
            if getattr(module, "_parameters", None):
                self.hook(module, "forward_pre", self._module_enter)
                self.hook(module, "forward", self._module_done)

    def _enter(self, module, args) -> None:
        if not self._mode_on and torch.is_grad_enabled():
            self._mode.__enter__()
            self._mode_on = True

    def _leave(self, module, args, output) -> None:
        if self._mode_on:
            self._mode_on = False
            self._mode.__exit__(None, None, None)

    def _module_done(self, module, args, output) -> None:
        if torch.is_grad_enabled() and id(module) not in self._finished:
            self._finished[id(module)] = len(self._finished)

    def _module_enter(self, module, args) -> None:
        """Layers run under torch.no_grad() inside a forward that started with gradients on: their outputs
        are constants, so what ran before them gets no gradient through them, and a region that starts after
        trained layers (not a frozen feature extractor at the input) leaves its own layers untrained."""
        if torch.is_grad_enabled():
            self._region = None
            return
        if not self._mode_on or not any(p.requires_grad for p in module._parameters.values() if p is not None):
            return
        if self._region is None:
            caller = next(user_frames(1), None)
            if caller is None:
                return
            where = frame_location(caller)
            owner = next((frame_module(f) for f in user_frames(1)
                          if self.ctx.module_name(frame_module(f)) is not None), None)
            # reentrant checkpointing runs its function under no_grad and recomputes it in backward, where
            # its parameters get their gradients, unless no input of the checkpoint required grad
            ckpt = _in_checkpoint()
            self._region = self._cuts.setdefault(where, {
                "op": "checkpoint(use_reentrant=True) on inputs without grad" if ckpt else "torch.no_grad()",
                "after": len(self._finished), "owner": owner, "region": set(), "checkpoint": ckpt})
        if self._region.get("after") or self._region.get("checkpoint"):
            self._region.setdefault("region", set()).add(id(module))

    def _on_cut(self, func, args) -> None:
        if not (args and isinstance(args[0], torch.Tensor) and args[0].requires_grad):
            return
        if torch.is_grad_enabled():
            op = _cut_name(func)
        else:
            # any operation on a tensor that needs grad, under torch.no_grad() inside a forward that started
            # with gradients on (the mode runs only then), returns a constant: x = x * 1.0 cuts too. Layers
            # run there are seen by _module_enter, with what they leave untrained.
            op = "torch.no_grad()" if self._region is None and _cut_name(func) is None else _cut_name(func)
        if op is None:
            return
        caller = sys._getframe(1)
        while caller is not None and caller.f_code.co_filename in _SHIMS:
            caller = caller.f_back
        if caller is None or is_library_file(caller.f_code.co_filename):
            return                                   # torch's own code, not a cut the user wrote
        where = frame_location(caller)
        if where not in self._cuts:
            owner = next((frame_module(f) for f in user_frames(1)
                          if self.ctx.module_name(frame_module(f)) is not None), None)
            self._cuts[where] = {"op": op, "after": len(self._finished), "owner": owner}

    def _step_end(self, step: int) -> None:
        if not self._active:
            return
        self._active = False
        self._leave(None, None, None)               # a forward that never returned
        for h in self.handles:
            h.remove()
        self.handles = []
        cuts, self._cuts = self._cuts, {}
        if not cuts:
            return
        params = [(name, module, p) for name, module in self._named_modules()
                  for p in module._parameters.values() if p is not None and p.requires_grad]
        if not any(p.grad is not None for _, _, p in params):
            return                                   # no backward ran this step: nothing to judge
        in_regions = {mid for cut in cuts.values() for mid in cut.get("region", ())}
        held = {id(p) for o in self.ctx.optimizers for g in o.param_groups for p in g["params"]}
        broken: dict[int, list[str]] = {}
        for name, module, p in params:
            if id(module) in in_regions and id(module) not in self._finished and held and id(p) not in held:
                continue            # a frozen part the optimizer does not train anyway
            if p.grad is None and (id(module) in self._finished or id(module) in in_regions):
                pname = next(k for k, v in module._parameters.items() if v is p)
                broken.setdefault(id(module), []).append(f"{name}.{pname}" if name else pname)
        for where, cut in cuts.items():
            # parameters of layers that finished before the cut, or of the module whose forward made it
            owner = id(cut["owner"]) if cut["owner"] is not None else None
            region = cut.get("region", ())
            before = [n for mid, names in broken.items()
                      if self._finished.get(mid, len(self._finished)) < cut["after"] or mid == owner or mid in region
                      for n in names]
            if before and where not in self._reported:
                self._reported.add(where)
                self._emit(where, cut, before, step)

    def _step_failed(self, error: str) -> None:
        """backward() raised because the loss has no graph ('does not require grad'): with a cut recorded in
        this step's forward, that cut is why. Every layer that ran before it is cut off."""
        if not self._active or not self._cuts or "does not require grad" not in error:
            return
        broken: dict[int, list[str]] = {}
        for name, module in self._named_modules():
            if id(module) in self._finished:
                names = [f"{name}.{k}" if name else k for k, p in module._parameters.items()
                         if p is not None and p.requires_grad]
                if names:
                    broken[id(module)] = names
        for where, cut in self._cuts.items():
            owner = id(cut["owner"]) if cut["owner"] is not None else None
            before = [n for mid, names in broken.items() if self._finished[mid] < cut["after"] or mid == owner
                      for n in names]
            if before and where not in self._reported:
                self._reported.add(where)
                self._emit(where, cut, before, self._step_no)
        self._cuts = {}

    def _detach(self) -> None:
        if getattr(self, "_mode_on", False):        # closed in the middle of a forward
            self._leave(None, None, None)
        self._active = False

    def _named_modules(self):
        for module in self.ctx.model.modules():
            name = self.ctx.module_name(module)
            if name is not None:
                yield name, module

    def _emit(self, where: str, cut: dict, params: list[str], step: int) -> None:
        owner = cut["owner"]
        module = self.ctx.module_name(owner) if owner is not None else None
        if cut.get("checkpoint"):       # the checkpointed function's own layers are what never trains
            names = [self.ctx.module_name(m) for m in self.ctx.model.modules() if id(m) in cut["region"]]
            module = common_parent([n for n in names if n is not None]) if names else module
        self.ctx.emit(gradient_chain_broken.cut(cut["op"], params, module, where, step))


# -- the loss's graph ------------------------------------------------------------------------------
class LossGraph(SafeWatcher):
    code = gradient_chain_broken.CODE

    def _attach(self) -> None:
        self._classes_known = False
        self._reported = False
        self._step = 0
        self._active = False

    def _step_start(self, step: int) -> None:
        self._step = step
        self._active = not self._reported and bool(self.ctx.diagnose(step))
        self._backwards = 0                 # backward calls this step whose graph was walked
        self._reached = False
        self._first: dict | None = None
        self._zero_ops: set = set()         # zero-derivative operations in this step's loss graphs
        self._zero_where: str | None = None

    def _backward(self, loss: torch.Tensor) -> None:
        if not loss.requires_grad:
            self._no_graph(loss)            # backward is about to raise: name why first
            return
        if not self._classes_known:
            self._classes_known = True      # the first loss only: it is the one at initialisation
            classes = cross_entropy_classes(loss)
            if classes is not None and classes >= 2:
                self.ctx.record_meta(classes=classes)
        if not self._active or self._reached:
            return
        params = {id(p) for p in self.ctx.model.parameters() if p.requires_grad}
        if not params:
            return
        zero_ops: set = set()
        hit = verdict(graph_walk(self.ctx, loss), params, zero_ops)
        if zero_ops and self._zero_where is None:
            self._zero_ops |= zero_ops
            self._zero_where = frame_location(next(user_frames(2), None))
        if hit is None or hit:
            self._reached = True            # too large to tell, or it does reach: nothing to say this step
            return
        self._backwards += 1
        if self._first is None:
            frame = next(user_frames(2), None)
            self._first = {"location": frame_location(frame),
                           "grad_fn": type(loss.grad_fn).__name__ if loss.grad_fn is not None else None}

    def _zero_gradients(self, step: int) -> None:
        """The loss reaches the parameters only through round/floor/sign...: every gradient is exactly 0."""
        grads = [p.grad for p in self.ctx.model.parameters() if p.requires_grad and p.grad is not None]
        if not grads or any(bool(g.any()) for g in grads):
            return
        self._reported = True
        ops = sorted(self._zero_ops)
        self.ctx.emit(gradient_chain_broken.zero_gradients(step, ops, len(grads), self._zero_where))

    def _no_graph(self, loss: torch.Tensor) -> None:
        if self._reported or not any(p.requires_grad for p in self.ctx.model.parameters()):
            return
        self._reported = True
        frame = next(user_frames(3), None)
        self.ctx.emit(gradient_chain_broken.no_graph(self._step, frame_location(frame)))

    def _step_end(self, step: int) -> None:
        if self._active and self._reached and self._zero_ops:
            self._zero_gradients(step)
        if not self._active or self._reached or not self._backwards or self._first is None:
            return
        self._reported = True
        trainable = sum(1 for p in self.ctx.model.parameters() if p.requires_grad)
        self.ctx.emit(gradient_chain_broken.unreached(step, self._backwards, self._first["grad_fn"], trainable,
                                                      self._first["location"]))
