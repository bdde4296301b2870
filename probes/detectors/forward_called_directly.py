"""forward-called-directly: `model.forward(x)` instead of `model(x)`, which skips every hook (seen by the
watcher that wraps forward, probes/watchers/forward_called_directly.py)."""
from __future__ import annotations

from ..findings import Finding

CODE = "forward-called-directly"


def finding(module: str | None, cls: str, where: str | None) -> Finding:
    """Module `module` ('' or None for the model itself), of class `cls`, had .forward() called at `where`."""
    target = "model" if not module else f"model.{module}"
    return Finding(
        code=CODE, severity="warning",
        title=f"{target}.forward(...) called directly instead of {target}(...)",
        detail=(f"Calling .forward() bypasses nn.Module.__call__, so every hook on "
                f"{'the model' if not module else module} is skipped: forward/backward hooks, hooks that "
                f"libraries (profilers, pruning, quantisation, FSDP, this Probe) rely on."),
        module=module, location=where,
        evidence={"class": cls, "called": f"{target}.forward"},
        fix=f"Call the module itself: {target}(x) instead of {target}.forward(x).")
