"""train-mode-off: Dropout/BatchNorm switched off while the optimizer steps: the model is still in eval mode
after a validation pass (model.train() not called back). Seen at the optimizer's step by the watcher
(probes/watchers/train_mode_off.py)."""
from __future__ import annotations

from ..findings import Finding

CODE = "train-mode-off"


def finding(modules: list[tuple[str, str]], validation_at: str | None, backward_at: str | None) -> Finding:
    """`modules`: (name, class) of the Dropout/BatchNorm modules found in eval mode; `validation_at`: the line
    of the validation pass before, if seen; `backward_at`: the line of the backward that was stepped."""
    kinds = sorted({cls for _, cls in modules})
    dropout = any("Dropout" in c for c in kinds)
    bn = any("BatchNorm" in c for c in kinds)
    after = f" after the validation pass at {validation_at}" if validation_at else ""
    return Finding(
        code=CODE, severity="warning",
        title=f"Training steps run in eval mode: {'/'.join(kinds)} switched off while the optimizer steps",
        detail=(f"The model was in eval mode in a forward pass whose loss was backpropagated and stepped"
                f"{after}: model.train() was not called back. "
                + ("Dropout drops nothing, so the regularisation is gone. " if dropout else "")
                + ("BatchNorm normalises with its frozen running statistics and no longer updates them, so "
                   "the layers train against stale statistics." if bn else "")).strip(),
        module=modules[0][0] if modules else None, location=validation_at or backward_at,
        evidence={"modules": [n for n, _ in modules][:20], "classes": kinds, "count": len(modules),
                  "validation_at": validation_at},
        fix=("Call model.train() at the start of every training epoch (or right after each validation "
             "pass); model.eval() stays in force until train() is called."))
