"""suspicious-initial-loss: a classifier's first loss far from log(number of classes), the cross-entropy of
uniform predictions. The classes come from the run's meta (read from a cross-entropy's graph by the
watchers, or known to the check worker). A run check, info."""
from __future__ import annotations

import math

import pandas as pd

from ..findings import Finding
from ..stats import weight_matrices
from . import thresholds as T
from ._common import fmt as _fmt, module_location
from .base import RunData

CODE = "suspicious-initial-loss"


def suspicious_initial_loss(data: RunData) -> list[Finding]:
    classes = data.meta.get("classes")
    loss = data.scalars["loss"].dropna() if "loss" in data.scalars.columns else pd.Series(dtype=float)
    if not isinstance(classes, int) or classes < 2 or loss.empty:
        return []
    first, step = float(loss.iloc[0]), int(loss.index[0])
    expected = math.log(classes)
    if not math.isfinite(first) or expected / T.INITIAL_LOSS_RATIO <= first <= expected * T.INITIAL_LOSS_RATIO:
        return []
    high = first > expected
    # the output layer: the last weight matrix that trains (a momentum encoder or frozen head after it is not)
    last = next((m for m in reversed(weight_matrices(data.tree)) if m.get("requires_grad", True)
                 and m.get("optimizer", 0) is not None), None)
    module = last["module"] if last else None
    return [Finding(
        code=CODE, severity="info",
        title=f"The first loss is {_fmt(first)}; a {classes}-class classifier starts near log({classes}) = "
              f"{_fmt(expected)}",
        detail=(f"At step {step} the cross-entropy was {_fmt(first)}, {_fmt(first / expected)}x log({classes}). "
                + ("An untrained classifier should predict roughly uniform probabilities; a much higher loss "
                   "means confident wrong predictions from the start (output layer initialised too large), "
                   "which wastes the first steps undoing it." if high else
                   "An untrained classifier cannot do much better than uniform; a much lower loss suggests the "
                   "labels leak into the inputs, or a pretrained head.")),
        module=module, location=module_location(data.tree, module),
        evidence={"step": step, "loss": first, "classes": classes, "expected": expected},
        fix=("Initialise the output layer small (e.g. scale its weights by 0.01, bias 0) so the first "
             "predictions are near uniform." if high else
             "Check that the targets are not part of the inputs."))]
