"""loss-input-mismatch: the loss gets the wrong kind of input, read from the loss's autograd graph by the
watcher (probes/watchers/loss_input_mismatch.py): probabilities into cross-entropy, anything but
log-probabilities into NLLLoss, a sigmoid's output into BCEWithLogitsLoss, raw scores into BCELoss.

Each emitter takes `s`, the summary of the values the loss got ({"min", "max", "shape"}, and "row_sum_min",
"row_sum_max" along the class dimension), and `call`, the loss call the loss spy saw (its line and argument
shapes), or None.
"""
from __future__ import annotations

from ..findings import Finding
from ._common import LOSS_MODULE_NAMES, shape_text as _shape

CODE = "loss-input-mismatch"


def rows_sum_to_one(s: dict) -> bool:
    return "row_sum_min" in s and abs(s["row_sum_min"] - 1) < 1e-3 and abs(s["row_sum_max"] - 1) < 1e-3


def in_unit(s: dict) -> bool:
    return s["min"] >= -1e-6 and s["max"] <= 1 + 1e-6


def cross_entropy(step: int, kind: str, s: dict, call: dict | None, backward_at: str | None) -> Finding:
    """Cross-entropy given the output of a `kind` (softmax or sigmoid)."""
    loss = call["loss"] if call else "cross_entropy"
    shown = call.get("shown") if call else None
    rows = ""
    if "row_sum_min" in s and kind == "softmax":
        low, high = f"{s['row_sum_min']:.3f}", f"{s['row_sum_max']:.3f}"
        rows = f", and every row sums to {low}" if low == high else f", and its rows sum to {low}-{high}"
    return _finding(
        title=f"{shown or LOSS_MODULE_NAMES.get(loss, 'CrossEntropyLoss')} is given {kind} outputs, not logits: "
              f"the probabilities are squashed a second time",
        detail=(f"At step {step} the input of the cross-entropy loss (shape {_shape(s['shape'])}) came "
                f"out of a {kind}: its values lie in [{s['min']:.3g}, {s['max']:.3g}]{rows}. "
                f"CrossEntropyLoss applies log_softmax itself, so it treats these probabilities as logits: "
                f"scores confined to [0, 1] give a nearly uniform softmax, the loss cannot fall far below "
                f"log(classes), and the gradients are tiny — the loss plateaus and accuracy sticks."),
        evidence={"step": step, "loss": loss, "input_came_from": kind, "expected": "logits", **_ev(s)},
        fix=(f"Return the raw scores (logits) from forward and give those to CrossEntropyLoss; apply {kind} "
             f"only to make predictions. (Or keep log_softmax in the model and use NLLLoss.)"),
        call=call, backward_at=backward_at)


def nll(step: int, s: dict, call: dict | None, backward_at: str | None) -> Finding:
    """NLLLoss given values above 0 (never log-probabilities)."""
    probabilities = in_unit(s) and rows_sum_to_one(s)
    kind = "probabilities (rows in [0, 1] summing to 1)" if probabilities else "raw scores (logits)"
    return _finding(
        title=f"NLLLoss is given {'probabilities' if probabilities else 'raw scores'}, not log-probabilities",
        detail=(f"At step {step} the input of nll_loss (shape {_shape(s['shape'])}) holds values up to "
                f"{s['max']:.3g}; log-probabilities are never above 0, so these are {kind}. NLLLoss only "
                f"takes -input[target]: "
                + ("with probabilities the loss lies between -1 and 0 and its gradient ignores how confident "
                   "the model is." if probabilities else
                   "with logits it pushes the target's score up without bound, the loss goes negative, and "
                   "nothing holds the other classes down.")),
        evidence={"step": step, "loss": "nll_loss",
                  "input_kind": "probabilities" if probabilities else "logits",
                  "expected": "log-probabilities", **_ev(s)},
        fix=("Apply torch.log_softmax(x, dim=1) before NLLLoss (not softmax), or give the logits to "
             "CrossEntropyLoss, which does both."),
        call=call, backward_at=backward_at)


def bce_with_logits(step: int, kind: str, s: dict, call: dict | None, backward_at: str | None) -> Finding:
    """BCEWithLogitsLoss given the output of a `kind` (sigmoid or softmax)."""
    return _finding(
        title=(f"BCEWithLogitsLoss is given {kind} outputs: the sigmoid is applied twice" if kind == "sigmoid" else
               f"BCEWithLogitsLoss is given {kind} outputs: its own sigmoid squashes probabilities again"),
        detail=(f"At step {step} the input of binary_cross_entropy_with_logits (shape "
                f"{_shape(s['shape'])}) came out of a {kind}, so its values lie in [{s['min']:.3g}, "
                f"{s['max']:.3g}]. The loss applies its own sigmoid to them: the predicted probability can "
                f"only range over [0.5, 0.73], the loss never falls below 0.31 (positives) or 0.69 "
                f"(negatives), and the gradients fade — training stalls."),
        evidence={"step": step, "loss": "binary_cross_entropy_with_logits", "input_came_from": kind,
                  "expected": "logits", **_ev(s)},
        fix=("Remove the sigmoid from forward and give the logits to BCEWithLogitsLoss (apply torch.sigmoid "
             "only for predictions); or keep the sigmoid and use BCELoss."),
        call=call, backward_at=backward_at)


def bce_raw(step: int, s: dict | None, crashed: str | None, call: dict | None, backward_at: str | None) -> Finding:
    """BCELoss fed straight by a linear or convolution layer (`s` None when only its crash, `crashed`, says so)."""
    return _finding(
        title="BCELoss is given raw scores: there is no sigmoid before it",
        detail=(f"At step {step} the input of binary_cross_entropy "
                + (f"(shape {_shape(s['shape'])}, values in [{s['min']:.3g}, {s['max']:.3g}]) " if s else "")
                + "comes straight from a linear or convolution layer. BCELoss expects probabilities in "
                  "[0, 1]" + (f"; with raw scores it fails: {crashed.splitlines()[0][:200]}" if crashed else
                              "; raw scores that happen to fall there are not probabilities")
                + "."),
        evidence={"step": step, "loss": "binary_cross_entropy", "expected": "probabilities",
                  **(_ev(s) if s else {}), "crashed": bool(crashed)},
        fix="Give the logits to BCEWithLogitsLoss (it applies the sigmoid, stably), or apply torch.sigmoid first.",
        call=call, backward_at=backward_at)


def _finding(title: str, detail: str, evidence: dict, fix: str, call: dict | None,
             backward_at: str | None) -> Finding:
    if call is not None:
        evidence["call_input_shape"] = call["input_shape"]
        evidence["call_target_shape"] = call["target_shape"]
    return Finding(code=CODE, severity="error", title=title, detail=detail, module=None,
                   location=(call or {}).get("location") or backward_at, evidence=evidence, fix=fix)


def _ev(s: dict) -> dict:
    out = {"input_min": s["min"], "input_max": s["max"], "input_shape": s["shape"]}
    if "row_sum_min" in s:
        out["row_sum_min"], out["row_sum_max"] = s["row_sum_min"], s["row_sum_max"]
    return out
