"""What the loss's autograd graph says, read when `.backward()` is called on it.

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

import torch

from ..findings import Finding
from ._base import SafeWatcher, frame_location, graph_walk, user_frames, walk_graph

_NLL = ("NllLossBackward0", "NllLoss2DBackward0")
_PASS_THROUGH = ("ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0", "PermuteBackward0",
                 "TransposeBackward0", "ToCopyBackward0", "CloneBackward0", "SliceBackward0", "SelectBackward0",
                 "ContiguousBackward0")


# operations whose derivative is zero wherever it exists: a loss computed through them trains nothing
ZERO_DERIVATIVE = {"RoundBackward0": "torch.round", "RoundBackward1": "torch.round", "FloorBackward0": "torch.floor",
                   "CeilBackward0": "torch.ceil", "SignBackward0": "torch.sign", "TruncBackward0": "torch.trunc"}


def reaches(loss: torch.Tensor, params: set[int], zero_ops: set | None = None) -> bool | None:
    """Does the graph of `loss` reach any tensor in `params` (ids)? None when it cannot be told (too large to
    walk, or a custom autograd Function that may reach parameters the graph does not show). Zero-derivative
    operations met on the way are added to `zero_ops`."""
    return _verdict(walk_graph(loss), params, zero_ops)


def _verdict(walk, params: set[int], zero_ops: set | None) -> bool | None:
    if zero_ops is not None:
        zero_ops.update(ZERO_DERIVATIVE[name] for name in walk.nodes if name in ZERO_DERIVATIVE)
    if walk.leaves is None:
        return None
    if walk.leaves & params:
        return True
    return None if walk.opaque else False


def cross_entropy_classes(loss: torch.Tensor) -> int | None:
    """The number of classes when `loss` is a plain cross-entropy (log_softmax -> nll_loss), averaged or
    summed over the batch (a sum is what suspicious-initial-loss exists to point out)."""
    node = loss.grad_fn
    if node is None or type(node).__name__ not in _NLL or getattr(node, "_saved_reduction", None) not in (1, 2):
        return None
    for _ in range(6):
        inputs = [n for n, _ in node.next_functions if n is not None]
        if len(inputs) != 1:
            return None
        node = inputs[0]
        name = type(node).__name__
        if name == "LogSoftmaxBackward0":
            result, dim = node._saved_result, node._saved_dim
            return int(result.shape[dim]) if result.dim() else None
        if name not in _PASS_THROUGH:
            return None
    return None


class LossGraph(SafeWatcher):
    code = "gradient-chain-broken"

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
        hit = _verdict(graph_walk(self.ctx, loss), params, zero_ops)
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
        self.ctx.emit(Finding(
            code=self.code, severity="error",
            title=f"{', '.join(ops)} between the model and the loss: every gradient is exactly zero",
            detail=(f"At step {step} the loss reaches the model's parameters only through {', '.join(ops)}, whose "
                    f"derivative is zero wherever it exists, so all {len(grads)} gradients are exactly 0: backward "
                    f"runs, the optimizer steps, and no weight moves."),
            module="", location=self._zero_where,
            evidence={"step": step, "zero_derivative_ops": ops, "parameters_with_zero_grad": len(grads)},
            fix=("Compute the loss on the unrounded output and round only for inference or metrics; if the "
                 "forward must round, pass the gradient straight through: x + (torch.round(x) - x).detach().")))

    def _no_graph(self, loss: torch.Tensor) -> None:
        if self._reported or not any(p.requires_grad for p in self.ctx.model.parameters()):
            return
        self._reported = True
        frame = next(user_frames(3), None)
        self.ctx.emit(Finding(
            code=self.code, severity="error",
            title="backward() is called on a loss with no autograd graph: the chain from the model is cut",
            detail=(f"At step {self._step} the loss does not require grad, so backward() fails (\"element 0 of "
                    f"tensors does not require grad\"). Somewhere between the model's parameters and the loss "
                    f"the computation left autograd: .detach(), .data, .item() or .numpy() and back, a new "
                    f"torch.tensor(...) from values, or an operation with no gradient (argmax, round, a "
                    f"comparison, a cast to an integer type)."),
            module="", location=frame_location(frame),
            evidence={"step": self._step, "loss_requires_grad": False, "no_graph": True},
            fix=("Compute the loss from the model's outputs with differentiable torch operations; use the "
                 "logits (not argmax/rounded predictions) in the loss, and detach only what must not train.")))

    def _step_end(self, step: int) -> None:
        if self._active and self._reached and self._zero_ops:
            self._zero_gradients(step)
        if not self._active or self._reached or not self._backwards or self._first is None:
            return
        self._reported = True
        leaf = self._first["grad_fn"] is None
        self.ctx.emit(Finding(
            code=self.code, severity="error",
            title="backward() runs on a loss that does not depend on the model's parameters",
            detail=(f"At step {step}, {self._backwards} backward call(s) ran on a loss whose autograd graph "
                    f"reaches none of the model's trainable parameters"
                    + (" — the loss is a leaf tensor, built from plain numbers (torch.tensor(..., "
                       "requires_grad=True) around a loss.item() or a NumPy value)" if leaf else
                       " — it was computed from detached outputs")
                    + ". Backward runs and the optimizer steps, but no parameter gets a gradient: the model "
                      "never learns."),
            module="", location=self._first["location"],
            evidence={"step": step, "backward_calls": self._backwards, "loss_grad_fn": self._first["grad_fn"],
                      "trainable_parameters": sum(1 for p in self.ctx.model.parameters() if p.requires_grad)},
            fix=("Compute the loss from the model's outputs with torch operations and call backward on that "
                 "tensor; never rebuild it with torch.tensor(loss.item()) or from .detach()/.numpy() values.")))
