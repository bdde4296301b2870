"""param-not-in-optimizer: trainable parameters that get gradients but that no optimizer holds, and tensors an
optimizer holds that the model no longer has. A run check over the registration tree and the gradients."""
from __future__ import annotations

import math

from ..findings import Finding
from ..stats import finite, parameters
from ._common import (column, module_location, module_order, names as _names, optimizer_location, outermost,
                      trainable_under)
from .base import RunData

CODE = "param-not-in-optimizer"


def param_not_in_optimizer(data: RunData) -> list[Finding]:
    tree = data.tree
    if not tree or not tree.get("n_optimizers", len(data.meta.get("optimizers", []))):
        return []           # manual steps (probe.step()) without an optimizer: nothing to compare with
    grads = data.series("grad_norm")
    found: list[Finding] = []
    by_module: dict[str, list[dict]] = {}
    for t in parameters(tree):
        if not t["requires_grad"] or t["optimizer"] is not None or t.get("lazy"):
            continue
        seen = finite(column(grads, t["name"])).dropna()
        if seen.empty:
            continue        # no gradient ever reached it: unused, not forgotten
        by_module.setdefault(t["module"], []).append({"name": t["name"], "shape": t["shape"],
                                                      "numel": t["numel"],
                                                      "grad_norm": float(seen.iloc[-1]),
                                                      "step": int(seen.index[-1])})
    by_module = _rolled_up(by_module, tree)
    order = module_order(tree)
    for module, items in sorted(by_module.items(), key=lambda kv: order.get(kv[0], len(order))):
        names = [i["name"] for i in items]
        numel = sum(i["numel"] for i in items)
        found.append(Finding(
            code=CODE, severity="error",
            title=f"{_names(names)} get gradients but no optimizer updates them",
            detail=(f"{len(items)} trainable parameter(s) of {module or 'the model'} ({numel:,} values) receive "
                    f"gradients, but none of the optimizer's param groups holds them, so they never change. "
                    f"Typically the optimizer was built over part of the model (model.backbone.parameters()) "
                    f"or before a layer was added or replaced."),
            module=module,
            location=(optimizer_location(data, range(len(data.meta.get("optimizer_locations") or [])))
                      or module_location(tree, module)),
            evidence={"parameters": items, "optimizers": len(data.meta.get("optimizers", []))},
            fix=("Build the optimizer over model.parameters() after the model is complete, or add these to a "
                 "param group (optimizer.add_param_group({'params': ...})); if they should stay fixed, "
                 "set requires_grad_(False).")))
    foreign = tree.get("optimizer_only", [])
    if foreign:
        found.append(Finding(
            code=CODE, severity="error",
            title=f"The optimizer updates {len(foreign)} tensor(s) that are not in the model",
            detail=("Some tensors in the optimizer's param groups are not parameters of the model any more: "
                    "the layer was replaced after the optimizer was built, or the optimizer was given copies "
                    "(clone(), deepcopy, .to() of a tensor). The optimizer trains those copies; the model "
                    "never changes."),
            module="",
            location=(optimizer_location(data, {f["optimizer"] for f in foreign})
                      or module_location(tree, "")),
            evidence={"tensors": foreign[:20], "count": len(foreign)},
            fix="Build the optimizer from model.parameters() after the model is built, moved and modified."))
    return found


def _rolled_up(by_module: dict[str, list[dict]], tree: dict) -> dict[str, list[dict]]:
    """One group per outermost module all of whose trainable parameters are left out (a whole discriminator,
    not each of its 24 layers)."""
    missing = {i["name"] for items in by_module.values() for i in items}
    trainable = trainable_under(tree)
    out: dict[str, list[dict]] = {}
    for module, items in by_module.items():
        out.setdefault(outermost(module, missing, trainable), []).extend(items)
    return out


def explained(finding: dict, others: list[dict]) -> bool:
    """The parameters of a layer built inside forward are, of course, in no optimizer: when every parameter
    this finding names belongs to a layer that layer-created-in-forward reported (by the name it was assigned
    to), that finding says why, and this one is not repeated."""
    layers = [o.get("evidence") or {} for o in others if o.get("code") == "layer-created-in-forward"]
    built = [e["registered_as"] for e in layers if e.get("registered_as")]
    evidence = finding.get("evidence") or {}
    if "tensors" in evidence:
        # the optimizer holds tensors the model no longer has: the copy of that layer from a forward that ran
        # before the optimizer was built, replaced by every later forward (same number of values)
        stale = evidence["tensors"]
        held = sum(math.prod(t.get("shape") or [0]) for t in stale)
        made = sum(int(e.get("numel") or 0) for e in layers if e.get("registered_as"))
        return bool(built) and evidence.get("count", len(stale)) == len(stale) and held == made
    names = [p.get("name", "") for p in evidence.get("parameters", [])]
    return bool(built and names) and all(any(n == b or n.startswith(b + ".") for b in built) for n in names)
