"""The gradient-depth profile that vanishing-gradients and exploding-gradients both judge.

Single tensors are small by design in healthy models, so the unit is a block: the parameters under one
numbered child (encoder.layer.3, features.2), or a leaf module where nothing is numbered, measured as the
RMS gradient per element of its weight matrices (median over recorded steps). One profile per network an
optimizer trains (a GAN's generator and critic are two stacks, not one).
"""
from __future__ import annotations

import math

import pandas as pd

from ..stats import finite, weight_matrices
from . import thresholds as T
from .base import RunData

_EMBEDDINGS = ("Embedding", "EmbeddingBag")


def block_of(module: str) -> str:
    """The block a module belongs to: the path up to its first numbered part (encoder.layer.3.attn.q ->
    encoder.layer.3, 2 -> 2), or the module itself where nothing is numbered (fc1)."""
    parts = module.split(".") if module else []
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[:i + 1])
    return module


def depth_blocks(data: RunData, optimizer: int | None = None) -> list[dict]:
    """Per block, in depth (tree) order: the RMS gradient per element of its weight matrices (each the
    median over its recorded steps) and the median update ratio of those weights. Plain numbers: the
    finding stores them, and its chart draws them. With `optimizer`, only the weights it trains."""
    grads = finite(data.series("grad_norm"))
    ratios = finite(data.series("update_ratio"))
    classes = {m["path"]: m.get("class") for m in (data.tree or {}).get("modules", [])}
    blocks: dict[str, dict] = {}
    for t in weight_matrices(data.tree):
        if t["name"] not in grads.columns or classes.get(t["module"]) in _EMBEDDINGS or not t.get("numel"):
            continue
        if optimizer is not None and t.get("optimizer") != optimizer:
            continue
        values = grads[t["name"]].dropna()
        if len(values) < T.GRAD_MIN_STEPS or not values.median() > 0:
            continue
        b = blocks.setdefault(block_of(t["module"]), {"block": block_of(t["module"]), "sumsq": 0.0, "numel": 0,
                                                      "ratios": [], "weights": []})
        b["sumsq"] += float(values.median()) ** 2
        b["numel"] += int(t["numel"])
        b["weights"].append(t["name"])
        if t["name"] in ratios.columns and ratios[t["name"]].notna().any():
            b["ratios"].append(float(ratios[t["name"]].median()))
    out = []
    for b in blocks.values():
        out.append({"block": b["block"], "grad_rms": math.sqrt(b["sumsq"] / b["numel"]),
                    "update_ratio": float(pd.Series(b["ratios"]).median()) if b["ratios"] else None,
                    "weights": b["weights"][:10]})
    return out


def stacks(data: RunData) -> list[list[dict]]:
    """The depth profile (depth_blocks) of each network an optimizer trains; one for the whole model when a
    single optimizer (or none) trains it."""
    groups = sorted({t.get("optimizer") for t in weight_matrices(data.tree) if t.get("optimizer") is not None})
    return [depth_blocks(data, optimizer) for optimizer in (groups if len(groups) > 1 else [None])]


def trend(values: list[float]) -> tuple[float, float]:
    """(Spearman correlation of depth with log10 value, Theil-Sen fitted change in decades from the first
    block to the last): a steady trend along depth, robust to one odd block."""
    logs = [math.log10(v) for v in values]
    n = len(logs)
    # Spearman: Pearson's correlation of the ranks (pandas' own spearman needs scipy)
    rank = float(pd.Series(range(n), dtype=float).corr(pd.Series(logs).rank()))
    slopes = sorted((logs[j] - logs[i]) / (j - i) for i in range(n) for j in range(i + 1, n))
    return (rank if math.isfinite(rank) else 0.0), slopes[len(slopes) // 2] * (n - 1)


def depth_evidence(blocks: list[dict], hit: list[dict], span: float) -> dict:
    """The evidence both depth findings carry: every block (what the chart draws), the ones named, the
    reference (output) block and the fitted span."""
    last = blocks[-1]
    return {"blocks": [{k: b[k] for k in ("block", "grad_rms", "update_ratio")} for b in blocks][:60],
            "layers": [{"module": b["block"], "grad_rms": b["grad_rms"], "update_ratio": b["update_ratio"],
                        "weights": b["weights"]} for b in hit][:20],
            "reference": {"module": last["block"], "grad_rms": last["grad_rms"],
                          "update_ratio": last["update_ratio"]},
            "span": span}
