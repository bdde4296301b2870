"""loss-input-mismatch, read from the loss's autograd graph when `.backward()` is called on a diagnostic step,
so it holds for a loss written any way — nn.CrossEntropyLoss or F.cross_entropy, in the loop, in a loss_fn,
or inside the model's forward (a Hugging Face model given labels) — and for a Probe in the user's own loop:

* cross-entropy is nll_loss over log_softmax: when what feeds the log_softmax came out of a softmax or a
  sigmoid (its saved result: rows in [0, 1], summing to 1 for a softmax), the loss got probabilities;
* nll_loss saves its input: log-probabilities are never above 0, so a positive input is proof it got
  logits or probabilities (a negative NLL follows);
* binary_cross_entropy_with_logits fed by a sigmoid applies the sigmoid twice; binary_cross_entropy fed
  straight by a linear or convolution got raw scores (usually it raises; the crash is explained).

The loss call's own line and its argument shapes come from the loss spy (_loss_calls.py).
"""
from __future__ import annotations

import torch

from ..detectors import loss_input_mismatch
from ..detectors.loss_input_mismatch import in_unit, rows_sum_to_one
from ._base import SafeWatcher, frame_location, graph_walk, user_frames
from ._loss_calls import call_for

# nodes that move or select values without changing them: looked through to find what made a tensor
PASS_THROUGH = frozenset({
    "ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0", "PermuteBackward0", "TransposeBackward0",
    "TBackward0", "ToCopyBackward0", "CloneBackward0", "SliceBackward0", "SelectBackward0", "ContiguousBackward0",
    "SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2", "UnsqueezeBackward0", "IndexBackward0",
    "MaskedSelectBackward0", "AsStridedBackward0", "NarrowBackward0", "SplitBackward0", "UnbindBackward0"})
PROBABILITIES = {"SoftmaxBackward0": "softmax", "SigmoidBackward0": "sigmoid"}
# what a loss's input may go through after a softmax or sigmoid and still be probabilities: a clamp, an eps
NEAR_PASS = PASS_THROUGH | {"ClampBackward1", "ClampMinBackward0", "ClampMaxBackward0", "AddBackward1"}
RAW_SCORES = frozenset({"AddmmBackward0", "MmBackward0", "BmmBackward0", "ConvolutionBackward0",
                        "LinearBackward0"})


def maker(node, skip=PASS_THROUGH):
    """The first node at or below `node` that is not a pass-through (a view, a reshape, an index)."""
    for _ in range(16):
        if node is None or type(node).__name__ not in skip:
            return node
        inputs = [n for n, _ in node.next_functions if n is not None]
        if not inputs:
            return None
        node = inputs[0]
    return None


def _input(node, skip=PASS_THROUGH):
    """The node that made a loss node's first argument (its prediction)."""
    first = node.next_functions[0][0] if node.next_functions else None
    return maker(first, skip)


def _summary(values: torch.Tensor, class_dim: int | None) -> dict:
    """min, max and (along the class dimension) the spread of the row sums of a saved tensor."""
    v = values.detach().float()
    out = {"min": float(v.min()), "max": float(v.max()), "shape": list(values.shape)}
    if class_dim is not None and v.dim() > class_dim and v.shape[class_dim] >= 2:
        sums = v.sum(class_dim)
        out["row_sum_min"], out["row_sum_max"] = float(sums.min()), float(sums.max())
    return out


def _values_of(node) -> torch.Tensor | None:
    """What a node computed, when it saved it: its result (softmax, sigmoid, exp), or a division's
    numerator over denominator (a softmax written by hand)."""
    result = getattr(node, "_saved_result", None)
    if isinstance(result, torch.Tensor):
        return result
    if type(node).__name__ == "DivBackward0":
        a, b = getattr(node, "_saved_self", None), getattr(node, "_saved_other", None)
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return a / b
    return None


class LossInputMismatch(SafeWatcher):
    code = loss_input_mismatch.CODE

    def _attach(self) -> None:
        self._reported = False
        self._active = False
        self._step = 0
        self._backward_at: str | None = None

    def _step_start(self, step: int) -> None:
        self._step = step
        self._active = not self._reported and bool(self.ctx.diagnose(step))

    def _backward(self, loss) -> None:
        if not self._active or self._reported or loss.grad_fn is None:
            return
        walk = graph_walk(self.ctx, loss)
        self._backward_at = frame_location(next(user_frames(2), None))
        for name in ("NllLossBackward0", "NllLoss2DBackward0"):
            for node in walk.nodes.get(name, ()):
                if self._nll(node):
                    return
        for node in walk.nodes.get("BinaryCrossEntropyWithLogitsBackward0", ()):
            made = _input(node, NEAR_PASS)
            if made is not None and type(made).__name__ in PROBABILITIES:
                return self._emit_bce_logits(node, made)
        for node in walk.nodes.get("BinaryCrossEntropyBackward0", ()):
            made = _input(node)
            if made is not None and type(made).__name__ in RAW_SCORES:
                return self._emit_bce_raw(node)

    def _step_failed(self, error: str) -> None:
        if self._reported or "should be between 0 and 1" not in error:
            return
        call = call_for(self.ctx, "binary_cross_entropy")
        self._emit_bce_raw(None, crashed=error, call=call)

    # -- cross-entropy and NLL --------------------------------------------------------------------------
    def _nll(self, node) -> bool:
        made = _input(node)
        saved = getattr(node, "_saved_self", None)
        class_dim = 1 if isinstance(saved, torch.Tensor) and saved.dim() >= 2 else 0
        if made is not None and type(made).__name__ == "LogSoftmaxBackward0":
            # cross-entropy (or a log_softmax the user wrote): what did the log_softmax get?
            below = maker(made.next_functions[0][0], NEAR_PASS) if made.next_functions else None
            if below is None:
                return False
            kind = PROBABILITIES.get(type(below).__name__)
            values = _values_of(below)
            if values is None:
                return False
            dim = getattr(made, "_saved_dim", class_dim)
            s = _summary(values, dim if isinstance(dim, int) else class_dim)
            if kind is None:
                # a softmax written by hand (exp(x) / exp(x).sum()): values in [0, 1] whose rows sum to 1
                if not (in_unit(s) and rows_sum_to_one(s)):
                    return False
                kind = "softmax"
            elif kind == "sigmoid" and not in_unit(s):
                return False
            self._emit_ce(node, kind, s)
            return True
        if not isinstance(saved, torch.Tensor) or saved.numel() == 0:
            return False
        s = _summary(saved, class_dim)
        if s["max"] <= 1e-4:
            return False                # log-probabilities (or at least never above 0)
        self._emit_nll(node, s)
        return True

    def _emit_ce(self, node, kind: str, s: dict) -> None:
        call = call_for(self.ctx, "cross_entropy")
        self._report(loss_input_mismatch.cross_entropy(self._step, kind, s, call, self._backward_at))

    def _emit_nll(self, node, s: dict) -> None:
        call = call_for(self.ctx, "nll_loss", s["shape"])
        self._report(loss_input_mismatch.nll(self._step, s, call, self._backward_at))

    # -- binary cross-entropy --------------------------------------------------------------------------
    def _emit_bce_logits(self, node, made) -> None:
        kind = PROBABILITIES[type(made).__name__]
        s = _summary(_values_of(made), None)
        call = call_for(self.ctx, "binary_cross_entropy_with_logits")
        self._report(loss_input_mismatch.bce_with_logits(self._step, kind, s, call, self._backward_at))

    def _emit_bce_raw(self, node, crashed: str | None = None, call: dict | None = None) -> None:
        s = _summary(node._saved_self, None) if node is not None else None
        call = call or call_for(self.ctx, "binary_cross_entropy")
        self._report(loss_input_mismatch.bce_raw(self._step, s, crashed, call, self._backward_at))

    def _report(self, finding) -> None:
        self._reported = True
        self.ctx.emit(finding)
