"""What goes into the loss: the wrong kind of input (loss-input-mismatch) and shapes that broadcast
(loss-shape-broadcast).

Both are read from the loss's autograd graph when `.backward()` is called on a diagnostic step, so they hold
for a loss written any way — nn.CrossEntropyLoss or F.cross_entropy, in the loop, in a loss_fn, or inside
the model's forward (a Hugging Face model given labels) — and for a Probe in the user's own loop:

* cross-entropy is nll_loss over log_softmax: when what feeds the log_softmax came out of a softmax or a
  sigmoid (its saved result: rows in [0, 1], summing to 1 for a softmax), the loss got probabilities;
* nll_loss saves its input: log-probabilities are never above 0, so a positive input is proof it got
  logits or probabilities (a negative NLL follows);
* binary_cross_entropy_with_logits fed by a sigmoid applies the sigmoid twice; binary_cross_entropy fed
  straight by a linear or convolution got raw scores (usually it raises; the crash is explained);
* mse/l1/smooth_l1/huber broadcast their two arguments: the prediction's ExpandBackward0 and a target
  whose saved copy has a stride of 0 show that both were stretched — (B, 1) against (B,) is a (B, B)
  comparison.

The loss call's own line and its argument shapes come from a small TorchFunctionMode, the "loss spy":
pushed when the model's forward returns on a diagnostic step (only onto an empty mode stack) and popped
at backward, it records the calls of the loss functions made in between, nothing else.
"""
from __future__ import annotations

import math
import os
import sys

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from ..findings import Finding
from ._base import SafeWatcher, frame_location, graph_walk, user_frames

# loss functions the spy records, by the name the findings use
LOSSES = {F.cross_entropy: "cross_entropy", F.nll_loss: "nll_loss", F.binary_cross_entropy: "binary_cross_entropy",
          F.binary_cross_entropy_with_logits: "binary_cross_entropy_with_logits", F.mse_loss: "mse_loss",
          F.l1_loss: "l1_loss", F.smooth_l1_loss: "smooth_l1_loss", F.huber_loss: "huber_loss"}
REGRESSION = {"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"}
_MODULE_NAMES = {"cross_entropy": "CrossEntropyLoss", "nll_loss": "NLLLoss", "binary_cross_entropy": "BCELoss",
                 "binary_cross_entropy_with_logits": "BCEWithLogitsLoss", "mse_loss": "MSELoss",
                 "l1_loss": "L1Loss", "smooth_l1_loss": "SmoothL1Loss", "huber_loss": "HuberLoss"}
_NODE_LOSS = {"NllLossBackward0": "nll_loss", "NllLoss2DBackward0": "nll_loss",
              "BinaryCrossEntropyBackward0": "binary_cross_entropy",
              "BinaryCrossEntropyWithLogitsBackward0": "binary_cross_entropy_with_logits",
              "MseLossBackward0": "mse_loss", "SmoothL1LossBackward0": "smooth_l1_loss",
              "HuberLossBackward0": "huber_loss", "L1LossBackward0": "l1_loss"}

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
_FUNCTIONAL = F.__file__
_LOSS_MODULES = os.path.join(os.path.dirname(torch.nn.__file__), "modules", "loss.py")
_SPY_CALLS = 32                 # loss calls kept per step (a loop computing hundreds is not read further)


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


def _rows_sum_to_one(s: dict) -> bool:
    return "row_sum_min" in s and abs(s["row_sum_min"] - 1) < 1e-3 and abs(s["row_sum_max"] - 1) < 1e-3


def _in_unit(s: dict) -> bool:
    return s["min"] >= -1e-6 and s["max"] <= 1 + 1e-6


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


class _LossSpy(TorchFunctionMode):
    """Records the loss function calls made while it is on the mode stack (see the module docstring)."""

    def __init__(self, record):
        super().__init__()
        self.record = record            # guarded by the watcher: it never stands between the user and func
        self.on = True

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.on:
            self.record(func, args, kwargs)
        return func(*args, **kwargs)


def _record_call(calls: list, func, args, kwargs) -> None:
    try:
        name = LOSSES.get(func) if not isinstance(func, type) else None
    except TypeError:                   # an unhashable callable: not one of ours
        return
    if name is None or len(calls) >= _SPY_CALLS:
        return
    pred = kwargs.get("input", args[0] if args else None)
    target = kwargs.get("target", args[1] if len(args) > 1 else None)
    frame = next(user_frames(3), None)
    # called as F.<name> by the user, or by an nn loss module's forward
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename != _FUNCTIONAL:
        f = f.f_back
    caller = f.f_back.f_code.co_filename if f is not None and f.f_back is not None else ""
    shown = f"nn.{_MODULE_NAMES[name]}" if caller == _LOSS_MODULES else f"F.{name}"
    call = {"loss": name, "shown": shown, "location": frame_location(frame),
            "input_shape": list(pred.shape) if isinstance(pred, torch.Tensor) else None,
            "target_shape": list(target.shape) if isinstance(target, torch.Tensor) else None}
    calls.append(call)


class LossSpy(SafeWatcher):
    """The loss spy: where each loss is computed, with its argument shapes (ctx.shared["loss_calls"])."""

    code = "loss calls"

    def _attach(self) -> None:
        self.calls: list[dict] = []
        self.ctx.shared["loss_calls"] = self.calls
        self._spy = _LossSpy(self.guard(lambda func, args, kwargs: _record_call(self.calls, func, args, kwargs)))
        self._pushed = False
        self._due = False
        self._mine: list = []

    def _step_start(self, step: int) -> None:
        self._pop()
        self.calls.clear()
        self._due = bool(self.ctx.diagnose(step))
        for h in self._mine:
            h.remove()
            self.handles.remove(h)
        self._mine = []
        if self._due:
            # registered anew each diagnostic step, after the other watchers' hooks (some are added at their
            # own step start): the modes they push in forward are popped by the time this one runs
            n = len(self.handles)
            self.hook(self.ctx.model, "forward_pre", self._forward_starts)
            self.hook(self.ctx.model, "forward", self._forward_ends)
            self._mine = self.handles[n:]

    def _forward_starts(self, module, args) -> None:
        self._pop()                     # the model's own code is not spied on (the graph covers it)

    def _forward_ends(self, module, args, output) -> None:
        if self._due and not self._pushed and torch.is_grad_enabled() \
                and torch._C._len_torch_function_stack() == 0:
            self._spy.on = True
            torch._C._push_on_torch_function_stack(self._spy)
            self._pushed = True

    def _backward(self, loss) -> None:
        self._pop()

    def _step_end(self, step: int) -> None:
        self._pop()

    def _step_failed(self, error: str) -> None:
        self._pop()

    def _detach(self) -> None:
        self._pop()
        if getattr(self, "_pushed", False):
            self._spy.on = False        # under a mode the user pushed after it: inert, popped by nobody else

    def _pop(self) -> None:
        """Off the stack, but only from its top: a mode the user pushed later is never popped by us (the spy
        then stays inert until it is on top again)."""
        if not getattr(self, "_pushed", False):
            return
        self._spy.on = False
        n = torch._C._len_torch_function_stack()
        if n and torch._C._get_function_stack_at(n - 1) is self._spy:
            torch._C._pop_torch_function_stack()
            self._pushed = False


def _call_for(ctx, loss_name: str, shape=None) -> dict | None:
    """The spied call of this loss (same function; same input shape when known), if any."""
    calls = ctx.shared.get("loss_calls") or []
    same = [c for c in calls if c["loss"] == loss_name or (loss_name == "nll_loss" and c["loss"] == "cross_entropy")]
    if shape is not None:
        exact = [c for c in same if c["input_shape"] == list(shape)]
        same = exact or same
    return same[0] if same else None


class LossInputMismatch(SafeWatcher):
    code = "loss-input-mismatch"

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
        call = _call_for(self.ctx, "binary_cross_entropy")
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
                if not (_in_unit(s) and _rows_sum_to_one(s)):
                    return False
                kind = "softmax"
            elif kind == "sigmoid" and not _in_unit(s):
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
        call = _call_for(self.ctx, "cross_entropy")
        loss = call["loss"] if call else "cross_entropy"
        shown = call.get("shown") if call else None
        rows = ""
        if "row_sum_min" in s and kind == "softmax":
            low, high = f"{s['row_sum_min']:.3f}", f"{s['row_sum_max']:.3f}"
            rows = f", and every row sums to {low}" if low == high else f", and its rows sum to {low}-{high}"
        self._report(
            title=f"{shown or _MODULE_NAMES.get(loss, 'CrossEntropyLoss')} is given {kind} outputs, not logits: "
                  f"the probabilities are squashed a second time",
            detail=(f"At step {self._step} the input of the cross-entropy loss (shape {_shape(s['shape'])}) came "
                    f"out of a {kind}: its values lie in [{s['min']:.3g}, {s['max']:.3g}]{rows}. "
                    f"CrossEntropyLoss applies log_softmax itself, so it treats these probabilities as logits: "
                    f"scores confined to [0, 1] give a nearly uniform softmax, the loss cannot fall far below "
                    f"log(classes), and the gradients are tiny — the loss plateaus and accuracy sticks."),
            evidence={"step": self._step, "loss": loss, "input_came_from": kind, "expected": "logits", **_ev(s)},
            fix=(f"Return the raw scores (logits) from forward and give those to CrossEntropyLoss; apply {kind} "
                 f"only to make predictions. (Or keep log_softmax in the model and use NLLLoss.)"),
            call=call)

    def _emit_nll(self, node, s: dict) -> None:
        call = _call_for(self.ctx, "nll_loss", s["shape"])
        probabilities = _in_unit(s) and _rows_sum_to_one(s)
        kind = "probabilities (rows in [0, 1] summing to 1)" if probabilities else "raw scores (logits)"
        self._report(
            title=f"NLLLoss is given {'probabilities' if probabilities else 'raw scores'}, not log-probabilities",
            detail=(f"At step {self._step} the input of nll_loss (shape {_shape(s['shape'])}) holds values up to "
                    f"{s['max']:.3g}; log-probabilities are never above 0, so these are {kind}. NLLLoss only "
                    f"takes -input[target]: "
                    + ("with probabilities the loss lies between -1 and 0 and its gradient ignores how confident "
                       "the model is." if probabilities else
                       "with logits it pushes the target's score up without bound, the loss goes negative, and "
                       "nothing holds the other classes down.")),
            evidence={"step": self._step, "loss": "nll_loss",
                      "input_kind": "probabilities" if probabilities else "logits",
                      "expected": "log-probabilities", **_ev(s)},
            fix=("Apply torch.log_softmax(x, dim=1) before NLLLoss (not softmax), or give the logits to "
                 "CrossEntropyLoss, which does both."),
            call=call)

    # -- binary cross-entropy --------------------------------------------------------------------------
    def _emit_bce_logits(self, node, made) -> None:
        kind = PROBABILITIES[type(made).__name__]
        s = _summary(_values_of(made), None)
        call = _call_for(self.ctx, "binary_cross_entropy_with_logits")
        self._report(
            title=(f"BCEWithLogitsLoss is given {kind} outputs: the sigmoid is applied twice" if kind == "sigmoid" else
                   f"BCEWithLogitsLoss is given {kind} outputs: its own sigmoid squashes probabilities again"),
            detail=(f"At step {self._step} the input of binary_cross_entropy_with_logits (shape "
                    f"{_shape(s['shape'])}) came out of a {kind}, so its values lie in [{s['min']:.3g}, "
                    f"{s['max']:.3g}]. The loss applies its own sigmoid to them: the predicted probability can "
                    f"only range over [0.5, 0.73], the loss never falls below 0.31 (positives) or 0.69 "
                    f"(negatives), and the gradients fade — training stalls."),
            evidence={"step": self._step, "loss": "binary_cross_entropy_with_logits", "input_came_from": kind,
                      "expected": "logits", **_ev(s)},
            fix=("Remove the sigmoid from forward and give the logits to BCEWithLogitsLoss (apply torch.sigmoid "
                 "only for predictions); or keep the sigmoid and use BCELoss."),
            call=call)

    def _emit_bce_raw(self, node, crashed: str | None = None, call: dict | None = None) -> None:
        s = _summary(node._saved_self, None) if node is not None else None
        call = call or _call_for(self.ctx, "binary_cross_entropy")
        self._report(
            title="BCELoss is given raw scores: there is no sigmoid before it",
            detail=(f"At step {self._step} the input of binary_cross_entropy "
                    + (f"(shape {_shape(s['shape'])}, values in [{s['min']:.3g}, {s['max']:.3g}]) " if s else "")
                    + "comes straight from a linear or convolution layer. BCELoss expects probabilities in "
                      "[0, 1]" + (f"; with raw scores it fails: {crashed.splitlines()[0][:200]}" if crashed else
                                  "; raw scores that happen to fall there are not probabilities")
                    + "."),
            evidence={"step": self._step, "loss": "binary_cross_entropy", "expected": "probabilities",
                      **(_ev(s) if s else {}), "crashed": bool(crashed)},
            fix="Give the logits to BCEWithLogitsLoss (it applies the sigmoid, stably), or apply torch.sigmoid first.",
            call=call)

    def _report(self, title: str, detail: str, evidence: dict, fix: str, call: dict | None) -> None:
        self._reported = True
        if call is not None:
            evidence["call_input_shape"] = call["input_shape"]
            evidence["call_target_shape"] = call["target_shape"]
        self.ctx.emit(Finding(code=self.code, severity="error", title=title, detail=detail, module=None,
                              location=(call or {}).get("location") or self._backward_at,
                              evidence=evidence, fix=fix))


def _ev(s: dict) -> dict:
    out = {"input_min": s["min"], "input_max": s["max"], "input_shape": s["shape"]}
    if "row_sum_min" in s:
        out["row_sum_min"], out["row_sum_max"] = s["row_sum_min"], s["row_sum_max"]
    return out


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


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
    code = "loss-shape-broadcast"

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
        name = shown or _MODULE_NAMES.get(loss, loss)
        against = f" against a target of shape {_shape(target)}" if target is not None else ""
        self.ctx.emit(Finding(
            code=self.code, severity="error",
            title=(f"{name} compares a prediction of shape {_shape(pred)}{against}: they broadcast to "
                   f"{_shape(both)}").capitalize() if loss.startswith("a ") else
                  (f"{name} compares a prediction of shape {_shape(pred)}{against}: they broadcast to "
                   f"{_shape(both)}"),
            detail=(f"At step {self._step} {name} got a prediction of shape {_shape(pred)}{against}. The shapes "
                    f"differ, so PyTorch broadcasts them to {_shape(both)} ({math.prod(both):,} differences instead "
                    f"of {math.prod(pred):,}): every prediction is compared with every target of the batch, the "
                    f"loss pulls each output towards the batch mean, and the model learns almost nothing. "
                    f"PyTorch only warns (\"Using a target size ... that is different to the input size\")."),
            module=None, location=where,
            evidence={"step": self._step, "loss": loss, "prediction_shape": list(pred),
                      "target_shape": list(target) if target is not None else None, "broadcast_shape": list(both)},
            fix=("Make the two shapes equal before the loss: squeeze the prediction's last dimension "
                 "(pred.squeeze(-1)) or unsqueeze the target (y.unsqueeze(1)), e.g. loss_fn(pred.view_as(y), y).")))
