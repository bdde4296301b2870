"""gradients-accumulate: `.grad` is never cleared between two steps of an optimizer (zero_grad() missing, or
called where it does not run between steps), so each step applies the sum of every gradient so far. Seen by
the watcher that follows a few gradients from one step to the next (probes/watchers/gradients_accumulate.py).
"""
from __future__ import annotations

import math

from ..findings import Finding

CODE = "gradients-accumulate"


def finding(step: int, optimizer: int, cls: str, manual: bool, kept: list[dict], where: str | None) -> Finding:
    """At `step`, the watched gradients `kept` ({"name", "applied_norm", "now_norm", "new_gradients"}) of
    optimizer `optimizer` (class `cls`; `manual`: a hand-written update instead) were still in .grad."""
    stepper = f"{cls}.step()" if not manual else "the update"
    first = kept[0]
    growth = first["now_norm"] / first["applied_norm"] if first["applied_norm"] else math.nan
    return Finding(
        code=CODE, severity="error",
        title=(f"Gradients are never cleared between {'optimizer ' if not manual else ''}steps: {cls} "
               f"applies the sum of every gradient so far"),
        detail=(f"At step {step}, the gradient of {first['name']} that {stepper} applied at the "
                f"previous step was still in .grad when the next backward() added to it, and nothing cleared "
                f"it before this step (the same for {len(kept)} watched parameter(s)). PyTorch adds every "
                f"backward's gradient into .grad, so without optimizer.zero_grad() between steps each update "
                f"follows the stale, growing sum of all past gradients rather than the current batch: here "
                f"‖grad‖ went from {first['applied_norm']:.3g} to {first['now_norm']:.3g} "
                f"({growth:.2g}x). The loss oscillates or diverges, and a smaller learning rate only hides it."),
        module="", location=where,
        evidence={"step": step, "optimizer": optimizer, "optimizer_class": cls, "parameters": kept,
                  "growth": growth},
        fix=("Call optimizer.zero_grad() once per optimizer step — before loss.backward() (or right after "
             "optimizer.step()) inside the batch loop. To accumulate over N micro-batches on purpose, call "
             "step() and zero_grad() together every N backward passes." if not manual else
             "Clear each gradient after the update (w.grad = None, or w.grad.zero_() under torch.no_grad()) "
             "or before every backward()."))
