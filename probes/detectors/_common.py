"""Helpers every detector may use: where a module is, which parameters the tree lists, which steps have data,
how names and shapes are written in a finding. Plain data in, plain data out (no torch)."""
from __future__ import annotations

import pandas as pd

# which parameters and which values count: computed in probes.stats, the home of every number a finding and a
# page both show
from ..stats import parameters
from .base import RunData

# the nn loss module each functional loss is written as, when a finding names the call the user made
LOSS_MODULE_NAMES = {"cross_entropy": "CrossEntropyLoss", "nll_loss": "NLLLoss", "binary_cross_entropy": "BCELoss",
                     "binary_cross_entropy_with_logits": "BCEWithLogitsLoss", "mse_loss": "MSELoss",
                     "l1_loss": "L1Loss", "smooth_l1_loss": "SmoothL1Loss", "huber_loss": "HuberLoss"}


# -- the registration tree ----------------------------------------------------------------------------
def module_order(tree: dict | None) -> dict[str, int]:
    """module path -> position in the tree (registration order, which is forward order in most models)."""
    return {m["path"]: i for i, m in enumerate((tree or {}).get("modules", []))}


def module_location(tree: dict | None, path: str | None) -> str | None:
    """'file:line' of the nearest user class at or above `path` (PyTorch's own classes have none)."""
    if tree is None or path is None:
        return None
    where = {m["path"]: m.get("location") for m in tree.get("modules", [])}
    while True:
        if where.get(path):
            return where[path]
        if not path:
            return None
        path = path.rpartition(".")[0]


def optimizer_location(data: RunData, optimizers) -> str | None:
    """'file:line' where these optimizers are built, when they are all built on one line (the check worker
    records it from make_optimizer(); a Probe in the user's own loop does not know it)."""
    known = data.meta.get("optimizer_locations") or []
    lines = {known[i] for i in optimizers if isinstance(i, int) and 0 <= i < len(known) and known[i]}
    return lines.pop() if len(lines) == 1 else None


def owner(module_path: str) -> str:
    """How a finding's text names the module that holds something."""
    return f"Module {module_path}" if module_path else "The model"


def common_parent(paths: list[str]) -> str:
    """The innermost module path at or above every one of these module paths ('' for the model itself)."""
    parts = [p.split(".") if p else [] for p in paths]
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common)


def trainable_under(tree: dict) -> dict[str, set[str]]:
    """module path -> names of the trainable parameters at or below it."""
    out: dict[str, set[str]] = {}
    for t in parameters(tree):
        if t["requires_grad"] and not t.get("lazy"):
            parts = t["module"].split(".") if t["module"] else []
            for k in range(len(parts) + 1):
                out.setdefault(".".join(parts[:k]), set()).add(t["name"])
    return out


def outermost(module: str, names: set[str], trainable: dict[str, set[str]]) -> str:
    """Move up from `module` while the parent's trainable parameters are all among `names`."""
    while module:
        parent = module.rpartition(".")[0]
        if not trainable.get(parent, set()) <= names:
            break
        module = parent
    return module


# -- series -------------------------------------------------------------------------------------------
def column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(dtype=float)


# -- how a finding writes things ----------------------------------------------------------------------
def fmt(x: float) -> str:
    return f"{x:.3g}"


def names(items: list[str], limit: int = 5) -> str:
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def shape_text(shape) -> str:
    """A shape as Python writes a tuple: (8,) and (8, 1)."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
