"""layer-created-in-forward: a module or nn.Parameter built while the model's forward runs, so every call
starts from fresh random weights that the optimizer never keeps.

Seen by the watcher on PyTorch's registration hooks (probes/watchers/layer_created_in_forward.py), also in
the check worker's one watched forward before the optimizer is built (probes/construction.py).
"""
from __future__ import annotations

from ..findings import Finding

CODE = "layer-created-in-forward"


def finding(cls: str, label: str, numel: int, step: int, registered_as: str | None, who: str,
            module: str | None, where: str | None) -> Finding:
    """`cls` (a layer class, or nn.Parameter) described as `label` was built in `who` (Owner.forward, or
    forward) at `where`; `registered_as`: the name it was assigned to in the model, None for a local."""
    return Finding(
        code=CODE, severity="error",
        title=f"{cls} built inside {who}: new random weights on every call",
        detail=(f"A {label} is constructed while the model's forward runs, so every "
                f"call starts from fresh random weights. The optimizer (built once, before) updates "
                f"weights that the next forward throws away: this part of the model never learns."),
        module=module, location=where,
        evidence={"class": cls, "layer": label, "numel": numel, "step": step, "registered_as": registered_as},
        fix=(f"Build the layer once in __init__ (self.<name> = {cls}(...)) and only call it in forward; "
             f"for a layer whose input size is unknown until forward, use a Lazy module (nn.LazyLinear)."))
