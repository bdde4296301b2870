"""loss-shape-broadcast: a regression loss (MSE, L1, SmoothL1, Huber, or one written by hand) whose prediction
and target shapes differ and broadcast: (B, 1) against (B,) is a (B, B) comparison. Seen from the loss call
or the loss's graph by the watcher (probes/watchers/loss_shape_broadcast.py)."""
from __future__ import annotations

import math

from ..findings import Finding
from ._common import LOSS_MODULE_NAMES, shape_text as _shape

CODE = "loss-shape-broadcast"


def finding(step: int, loss: str, pred, target, both, where: str | None, shown: str | None = None) -> Finding:
    """`loss` (a functional loss's name, or "a hand-written squared error") compared a prediction of shape
    `pred` with a target of shape `target` (None when unknown): they broadcast to `both`. `shown`: the call
    as the user wrote it (F.mse_loss or nn.MSELoss)."""
    name = shown or LOSS_MODULE_NAMES.get(loss, loss)
    against = f" against a target of shape {_shape(target)}" if target is not None else ""
    return Finding(
        code=CODE, severity="error",
        title=(f"{name} compares a prediction of shape {_shape(pred)}{against}: they broadcast to "
               f"{_shape(both)}").capitalize() if loss.startswith("a ") else
              (f"{name} compares a prediction of shape {_shape(pred)}{against}: they broadcast to "
               f"{_shape(both)}"),
        detail=(f"At step {step} {name} got a prediction of shape {_shape(pred)}{against}. The shapes "
                f"differ, so PyTorch broadcasts them to {_shape(both)} ({math.prod(both):,} differences instead "
                f"of {math.prod(pred):,}): every prediction is compared with every target of the batch, the "
                f"loss pulls each output towards the batch mean, and the model learns almost nothing. "
                f"PyTorch only warns (\"Using a target size ... that is different to the input size\")."),
        module=None, location=where,
        evidence={"step": step, "loss": loss, "prediction_shape": list(pred),
                  "target_shape": list(target) if target is not None else None, "broadcast_shape": list(both)},
        fix=("Make the two shapes equal before the loss: squeeze the prediction's last dimension "
             "(pred.squeeze(-1)) or unsqueeze the target (y.unsqueeze(1)), e.g. loss_fn(pred.view_as(y), y)."))
