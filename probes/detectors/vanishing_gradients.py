"""vanishing-gradients: the gradient per weight falls steadily across depth towards the input, block by block
(the profile in _depth.py), and the early blocks' weights barely move."""
from __future__ import annotations

import math

from ..findings import Finding
from . import thresholds as T
from ._common import fmt as _fmt, module_location, names as _names
from ._depth import depth_evidence, trend
from .base import RunData

CODE = "vanishing-gradients"


def across_depth(data: RunData, blocks: list[dict]) -> list[Finding]:
    """The finding for one network's depth profile (blocks in depth order), if its gradients vanish."""
    if len(blocks) < T.DEPTH_MIN_BLOCKS:
        return []
    rank, decades = trend([b["grad_rms"] for b in blocks])
    last = blocks[-1]
    if not (rank >= T.DEPTH_TREND_RANK and decades >= math.log10(T.VANISHING_DEPTH_SPAN)):
        return []
    hit = [b for b in blocks[:-1] if b["grad_rms"] <= last["grad_rms"] * T.VANISHING_BLOCK_RATIO]
    # a block whose weights move at a normal rate is learning (adaptive optimizers rescale gradients)
    if last["update_ratio"] and all(b["update_ratio"] is not None for b in hit):
        hit = [b for b in hit if b["update_ratio"] < last["update_ratio"] * T.VANISHING_UPDATE_CONFIRM]
    return [finding(data, blocks, hit, 10 ** decades)] if hit else []


def finding(data: RunData, blocks: list[dict], hit: list[dict], span: float) -> Finding:
    last, first = blocks[-1], hit[0]
    names = [b["block"] for b in hit]
    module = first["block"]
    return Finding(
        code=CODE, severity="warning",
        title=(f"Gradients vanish towards the input: {_names(names, 3)} at "
               f"{_fmt(first['grad_rms'] / last['grad_rms'])}x the gradient of {last['block']}"),
        detail=(f"Across {len(blocks)} blocks the gradient per weight falls "
                f"steadily towards the input, {_fmt(span)}x from one end to the other (RMS per element of each "
                f"block's weight matrices, median over the recorded steps). "
                + ("The early blocks' weights also move far less than the last block's "
                   f"(update ratio {_fmt(first['update_ratio'])} against {_fmt(last['update_ratio'])}): "
                   if first.get("update_ratio") and last.get("update_ratio") else "")
                + "the early layers barely learn. Usual causes: saturating activations (sigmoid/tanh) in a "
                  "deep stack, no normalisation or residual connections, a too-small init."),
        module=module, location=module_location(data.tree, module),
        evidence=depth_evidence(blocks, hit, span),
        fix=("Use ReLU/GELU instead of sigmoid/tanh in hidden layers, add normalisation (BatchNorm/LayerNorm) or "
             "residual connections, and a fan-in init (kaiming/xavier); an adaptive optimizer (Adam) also "
             "compensates."))
