"""loss-shape-broadcast, read when `.backward()` is called on a diagnostic step: mse/l1/smooth_l1/huber
broadcast their two arguments. The loss spy (_loss_calls.py) gives both shapes and the line; for a loss it
does not see (computed inside the model's forward) the graph does: the prediction's ExpandBackward0 and a
target whose saved copy has a stride of 0 show that both were stretched — (B, 1) against (B,) is a (B, B)
comparison. A squared or absolute error written by hand is read from its graph.
"""
from __future__ import annotations

import math

import torch

from ..detectors import loss_shape_broadcast
from ._base import SafeWatcher, frame_location, graph_walk, user_frames
from ._loss_calls import REGRESSION

_NODE_LOSS = {"NllLossBackward0": "nll_loss", "NllLoss2DBackward0": "nll_loss",
              "BinaryCrossEntropyBackward0": "binary_cross_entropy",
              "BinaryCrossEntropyWithLogitsBackward0": "binary_cross_entropy_with_logits",
              "MseLossBackward0": "mse_loss", "SmoothL1LossBackward0": "smooth_l1_loss",
              "HuberLossBackward0": "huber_loss", "L1LossBackward0": "l1_loss"}


def _broadcast(a, b) -> list | None:
    try:
        return list(torch.broadcast_shapes(tuple(a), tuple(b)))
    except RuntimeError:
        return None


_REDUCTIONS = frozenset({"MeanBackward0", "MeanBackward1", "SumBackward0", "SumBackward1", "MulBackward0",
                         "MulBackward1", "DivBackward0", "DivBackward1", "AddBackward0", "AddBackward1"})
_DELIBERATE = frozenset({"UnsqueezeBackward0", "ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0",
                         "ExpandBackward0", "IndexBackward0", "PermuteBackward0", "TransposeBackward0"})


def _shape_in(node, nr: int = 0):
    md = getattr(node, "_input_metadata", None)
    try:
        return tuple(md[nr].shape) if md else None
    except (IndexError, AttributeError, RuntimeError):
        return None


def _hand_written_broadcast(root, depth: int = 6):
    """A loss written by hand — mean((pred - y) ** 2), mean(abs(pred - y)) — whose difference broadcast the
    prediction against a constant target: ("squared error" or "absolute error", prediction shape, broadcast
    shape), or None. A prediction reshaped right before the difference (x[:, None] - y[None]: pairwise
    distances) is broadcast on purpose and left alone."""
    level, seen = [root], set()
    for _ in range(depth):
        below = []
        for node in level:
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            name = type(node).__name__
            inputs = [n for n, _ in node.next_functions if n is not None]
            square = name in ("PowBackward0", "AbsBackward0") or (
                name == "MulBackward0" and len(inputs) == 2 and inputs[0] is inputs[1])
            if square and inputs and type(inputs[0]).__name__ in ("SubBackward0", "RsubBackward1", "AddBackward0"):
                diff = inputs[0]
                parts = list(diff.next_functions)
                carried = [(n, nr) for n, nr in parts if n is not None]
                if len(carried) == 1 and len(parts) == 2 and type(carried[0][0]).__name__ not in _DELIBERATE:
                    out, pred = _shape_in(diff), _shape_in(*carried[0])
                    if out and pred and math.prod(out) > math.prod(pred) and len(out) >= 2:
                        kind = "absolute error" if name == "AbsBackward0" else "squared error"
                        return kind, list(pred), list(out)
            if name in _REDUCTIONS or square:
                below.extend(inputs)
        level = below
    return None


class LossShapeBroadcast(SafeWatcher):
    code = loss_shape_broadcast.CODE

    def _attach(self) -> None:
        self._reported = False
        self._active = False
        self._step = 0

    def _step_start(self, step: int) -> None:
        self._step = step
        self._active = not self._reported and bool(self.ctx.diagnose(step))

    def _backward(self, loss) -> None:
        if not self._active or self._reported or loss.grad_fn is None:
            return
        where = frame_location(next(user_frames(2), None))
        # the spied calls say it exactly: both shapes, and the line
        for call in self.ctx.shared.get("loss_calls") or ():
            if call["loss"] not in REGRESSION or not call["input_shape"] or call["target_shape"] is None:
                continue
            pred, target = call["input_shape"], call["target_shape"]
            both = _broadcast(pred, target)
            if pred != target and both is not None and math.prod(both) > math.prod(pred):
                return self._emit(call["loss"], pred, target, both, call["location"] or where,
                                  shown=call.get("shown"))
        hand = _hand_written_broadcast(loss.grad_fn)
        if hand is not None:
            return self._emit(f"a hand-written {hand[0]}", hand[1], None, hand[2], where)
        if self.ctx.shared.get("loss_calls"):
            return                      # the loss was seen called, with shapes that do not broadcast
        # a loss computed where the spy does not look (inside the model's forward): from the graph, the
        # prediction was expanded and the target (saved already expanded) has a stride of 0
        walk = graph_walk(self.ctx, loss)
        for name in ("MseLossBackward0", "SmoothL1LossBackward0", "HuberLossBackward0", "L1LossBackward0"):
            for node in walk.nodes.get(name, ()):
                first = node.next_functions[0][0] if node.next_functions else None
                target = getattr(node, "_saved_target", None)
                if first is None or type(first).__name__ != "ExpandBackward0" or not isinstance(target, torch.Tensor):
                    continue
                if 0 not in target.stride() or target.numel() < 2:
                    continue
                pred = list(first._saved_self_sym_sizes)
                both = list(node._saved_self.shape)
                return self._emit(_NODE_LOSS[name], pred, None, both, where)

    def _emit(self, loss: str, pred, target, both, where, shown: str | None = None) -> None:
        self._reported = True
        self.ctx.emit(loss_shape_broadcast.finding(self._step, loss, pred, target, both, where, shown))
