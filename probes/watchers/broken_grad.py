"""gradient-chain-broken: forward cut the autograd graph, so parameters it used get no gradient.

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
"""
from __future__ import annotations

import os
import sys

import torch
from torch.overrides import TorchFunctionMode

from ..checks.training import _common_parent
from ..findings import Finding
from ._base import SafeWatcher, frame_location, frame_module, is_library_file, user_frames

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
    code = "gradient-chain-broken"

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
            module = _common_parent([n for n in names if n is not None]) if names else module
        op = cut["op"]
        self.ctx.emit(Finding(
            code=self.code, severity="error",
            title=f"{op} in forward cuts the gradient chain: earlier layers never train",
            detail=(f"{op} {'inside forward' if op.startswith(('torch.no_grad', 'checkpoint')) else 'on a tensor that requires grad'} turns the rest of the forward into a constant for "
                    f"autograd. After backward, {len(params)} parameter(s) used before it have no gradient "
                    f"(grad is None), so the optimizer never updates them."),
            module=module, location=where,
            evidence={"op": op, "params_without_grad": params[:20], "count": len(params), "step": step},
            fix=(("Take the layers and operations of the training forward out of the torch.no_grad() block (it is "
                  "for evaluation); to freeze part of the model, call requires_grad_(False) on its parameters "
                  "instead." if op == "torch.no_grad()" else
                  "Pass inputs that require grad to the checkpointed function, or use "
                  "checkpoint(..., use_reentrant=False)." if op.startswith("checkpoint") else
                  "Keep the computation in torch tensors with gradients: drop the "
                  f"{op} (use torch ops instead of numpy/Python numbers); detach only what must not be trained, "
                  "e.g. a straight-through estimator x + (q - x).detach()."))))
