"""eval-mode-missing: Dropout/BatchNorm in training mode under no_grad / inference_mode.

That is a validation (or inference) pass without `model.eval()`: Dropout drops units at random, so the
predictions are noisy, and BatchNorm normalises with the batch's statistics and overwrites its running
statistics with validation data. One forward pre-hook on the model (O(1)): when a forward starts with
gradients off while the model is in training mode, the few Dropout/BatchNorm modules are checked for
`training`. Deliberate uses stay clean: a model put in eval mode with Dropout switched back on (Monte-Carlo
dropout), BatchNorm recalibration with momentum None (swa_utils.update_bn), and a deep copy of the model (an
EMA copy: our hooks do nothing on it). Judging at the model's entry,
not at each module, keeps a no_grad block inside a training forward (a frozen backbone) clean. Reported
once per run; then the hook goes.
"""
from __future__ import annotations

import sys

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from ..detectors import eval_mode_missing
from ..findings import location
from ._base import SafeWatcher, frame_location, frame_module, is_library_file, user_frames
from ._modes import MODE_SENSITIVE, sensitive as _sensitive


class EvalModeMissing(SafeWatcher):
    code = eval_mode_missing.CODE

    def _attach(self) -> None:
        self._sensitive: list[nn.Module] = []
        self._find_modules()
        self._run_since_backward: list[dict] = []     # training-mode forwards since the last backward call
        self._done = False
        self.hook(self.ctx.model, "forward_pre", self._pre_forward)
        self.hook(self.ctx.model, "forward", self._post_forward)
        # functional dropout in an eval-mode pass: F.dropout(x, p) defaults to training=True
        self._spy = _FunctionalDropout(self.guard(_check_dropout_call), self._functional_dropout)
        self._spying = False
        self.hook(self.ctx.model, "forward_pre", self._spy_on)
        self.hook(self.ctx.model, "forward", self._spy_off, always_call=True)

    def _spy_on(self, model, args) -> None:
        # only for gradient-free passes (the graph-cut tracer has the grad-enabled ones), model in eval mode
        if not self._spying and not model.training and not torch.is_grad_enabled() and not self._done:
            self._spy.__enter__()
            self._spying = True

    def _spy_off(self, model=None, args=None, output=None) -> None:
        if self._spying:
            self._spying = False
            self._spy.__exit__(None, None, None)

    def _functional_dropout(self, p: float) -> None:
        if self._done:
            return
        frame = next(user_frames(3), None)
        owner = frame_module(frame)
        name = self.ctx.module_name(owner) if owner is not None else None
        self._done = True
        self.ctx.emit(eval_mode_missing.functional_dropout(p, name, frame_location(frame)))

    # -- validation with gradients on: forwards whose outputs no backward ever reaches --------------------
    def _post_forward(self, model, args, output) -> None:
        """A validation pass without eval() *and* without no_grad: two or more forwards in a row (no backward
        between them) in training mode whose outputs no backward ever uses. A node hook on each output's
        grad_fn says whether backward reached it; siamese or contrastive forwards (several forwards, then
        one backward through all of them) are reached, a GAN's detached generator output is followed by
        the critic's backward, so neither counts."""
        if self._done or not torch.is_grad_enabled() or not model.training or not self._sensitive \
                or len(self._run_since_backward) >= 64:       # enough to judge; a loop that never backprops
            return
        t = _graph_tensor(output)
        if t is None:
            return
        record = {"reached": False, "stack": _stack()}
        # the handle is not kept: the hook lives and dies with the output's graph
        self._guard.hook(self.code, t.grad_fn, "node", lambda *grads: record.__setitem__("reached", True))
        self._run_since_backward.append(record)

    def _backward(self, loss) -> None:
        closed, self._run_since_backward = self._run_since_backward, []
        self._closed = getattr(self, "_closed", []) + [closed]

    def _step_end(self, step: int) -> None:
        for run in getattr(self, "_closed", []):
            self._judge(run)
        self._closed = []

    def _detach(self) -> None:
        if getattr(self, "_spying", False):
            self._spy_off()
        if not getattr(self, "_done", True):
            for run in getattr(self, "_closed", []) + [self._run_since_backward]:
                self._judge(run)           # a last validation pass after the last training step
            self._done = True

    def _judge(self, run: list[dict]) -> None:
        unused = [r for r in run if not r["reached"]]
        if self._done or len(unused) < 2:
            return
        running = [m for m in self._sensitive if m.training and _sensitive(m)]
        if not running:
            return
        self._done = True
        where = next((location(file, line) for file, line in unused[0]["stack"] if not is_library_file(file)), None)
        self._report(running, context="gradients on", where=where, passes=len(unused))

    def _step_start(self, step: int) -> None:
        if self.handles and self.ctx.diagnose(step):
            self._find_modules()        # layers added since attach (rare: the tree changed)

    def _find_modules(self) -> None:
        self._sensitive = [m for m in self.ctx.model.modules() if isinstance(m, MODE_SENSITIVE)]

    def _pre_forward(self, model, args) -> None:
        if self._done:
            return
        # grad on at the model's entry is a training forward, even with a no_grad block inside (a frozen
        # backbone); the module list is read only for gradient-free forwards
        if torch.is_grad_enabled() or not self._sensitive:
            return
        if not model.training:
            return      # model.eval() was called: a layer still in training mode was switched on on purpose
                        # (Monte-Carlo dropout turns Dropout back on after eval())
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.momentum is None
               for m in self._sensitive):
            return      # BatchNorm recalibration (swa_utils.update_bn): a cumulative average, in train mode
                        # under no_grad, on purpose
        running = [m for m in self._sensitive if m.training and _sensitive(m)]
        if not running:
            return
        self._done = True
        self._report(running)
        for h in self.handles:          # reported once per run: nothing more to watch
            h.remove()
        self.handles = []

    def _report(self, running: list[nn.Module], context: str | None = None, where: str | None = None,
                passes: int = 1) -> None:
        names = self.ctx.module_name
        modules = [(names(m), type(m).__name__) for m in running if names(m) is not None]
        if where is None:
            # the line that ran the validation forward: the innermost user frame outside any module's code
            frames = list(user_frames(2))
            caller = next((f for f in frames if frame_module(f) is None), frames[0] if frames else None)
            where = frame_location(caller)
        if context is None:
            context = "torch.inference_mode()" if torch.is_inference_mode_enabled() else "torch.no_grad()"
        self.ctx.emit(eval_mode_missing.training_mode(modules, context, where, passes))


_FUNCTIONAL = F.__file__
_DROPOUTS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout}


class _FunctionalDropout(TorchFunctionMode):
    """Sees functional dropout calls with training=True (their default) during an eval-mode forward."""

    def __init__(self, check, on_dropout):
        super().__init__()
        self.check, self.on_dropout = check, on_dropout     # check: guarded by the watcher

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.check(func, args, kwargs, self.on_dropout)      # never stands between the user and the op
        return func(*args, **kwargs)


def _check_dropout_call(func, args, kwargs, on_dropout) -> None:
    if func not in _DROPOUTS:
        return
    p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
    training = kwargs.get("training", args[2] if len(args) > 2 else True)
    if not (training and p):
        return
    # who called F.dropout: an nn.Dropout module passes its own mode (switched on deliberately, as
    # Monte-Carlo dropout does); only a call written in the user's code forgets it
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename != _FUNCTIONAL:
        f = f.f_back
    caller = f.f_back if f is not None else None
    if caller is not None and not is_library_file(caller.f_code.co_filename):
        on_dropout(float(p))


def _graph_tensor(out):
    """The first tensor of a model's output that has a graph (a tensor, a tuple/list, a dict, ModelOutput)."""
    if isinstance(out, torch.Tensor):
        return out if out.grad_fn is not None else None
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    return next((v for v in values if isinstance(v, torch.Tensor) and v.grad_fn is not None), None)


def _stack(depth: int = 24) -> list[tuple[str, int]]:
    """(file, line) of the frames on the stack now, innermost first: cheap (no frame kept, no locals read);
    the user's line is picked from it only when a finding needs it."""
    out, f = [], sys._getframe(2)
    while f is not None and depth:
        out.append((f.f_code.co_filename, f.f_lineno))
        f, depth = f.f_back, depth - 1
    return out
