"""exploding-gradients: gradients that grow far too large, seen two ways.

* across depth: the gradient per weight rises steadily towards the input, block by block (the profile in
  _depth.py, judged with vanishing-gradients for each network an optimizer trains);
* across steps: the total gradient norm (all parameters) rising far above where it was earlier in the run.
"""
from __future__ import annotations

import math

from ..findings import Finding
from ..stats import finite, weight_matrices
from . import thresholds as T
from ._common import fmt as _fmt, module_location, names as _names
from ._depth import depth_evidence, trend
from .base import RunData

CODE = "exploding-gradients"


# -- across depth -------------------------------------------------------------------------------------
def across_depth(data: RunData, blocks: list[dict]) -> list[Finding]:
    """The finding for one network's depth profile (blocks in depth order), if its gradients explode."""
    if len(blocks) < T.DEPTH_MIN_BLOCKS:
        return []
    rank, decades = trend([b["grad_rms"] for b in blocks])
    last = blocks[-1]
    if not (rank <= -T.DEPTH_TREND_RANK and -decades >= math.log10(T.EXPLODING_DEPTH_SPAN)):
        return []
    hit = [b for b in blocks[:-1] if b["grad_rms"] >= last["grad_rms"] / T.VANISHING_BLOCK_RATIO]
    return [depth_finding(data, blocks, hit, 10 ** -decades)] if hit else []


def depth_finding(data: RunData, blocks: list[dict], hit: list[dict], span: float) -> Finding:
    last, first = blocks[-1], hit[0]
    names = [b["block"] for b in hit]
    module = first["block"]
    return Finding(
        code=CODE, severity="warning",
        title=(f"Gradients explode towards the input: {_names(names, 3)} at "
               f"{_fmt(first['grad_rms'] / last['grad_rms'])}x the gradient of {last['block']}"),
        detail=(f"Across {len(blocks)} blocks the gradient per weight rises "
                f"steadily towards the input, {_fmt(span)}x from one end to the other (RMS per element of each "
                f"block's weight matrices, median over the recorded steps). "
                + "The early layers get updates that swamp their weights: a too-large init, or no "
                  "normalisation in a deep stack."),
        module=module, location=module_location(data.tree, module),
        evidence=depth_evidence(blocks, hit, span),
        fix=("Use a fan-in init (kaiming/xavier), add normalisation, and clip gradients "
             "(torch.nn.utils.clip_grad_norm_)."))


# -- across steps -------------------------------------------------------------------------------------
def gradient_growth(data: RunData) -> list[Finding]:
    """The total gradient norm (all parameters) rising far above where it was earlier in the run."""
    frame = finite(data.series("grad_norm"))
    if frame.empty:
        return []
    rows = frame.dropna(how="all")
    total = (rows.fillna(0) ** 2).sum(axis=1) ** 0.5
    total = total[(total > 0) & rows.notna().any(axis=1)]
    if len(total) < T.GRAD_MIN_STEPS:
        return []
    # the largest rise above an earlier low; the low is a running median of 3 so one near-zero step (a
    # batch that happened to fit) is not a baseline. The peak, not the end: a diverging run often ends with
    # dead units and zero gradients.
    low = total.rolling(3, min_periods=1).median().cummin().shift(1)
    rise = (total / low).dropna()
    if rise.empty:
        return []
    peak_step = int(rise.idxmax())
    start, end = float(low[peak_step]), float(total[peak_step])
    if start <= 0 or end / start < T.EXPLODING_STEP_GROWTH:
        return []
    last = rows.loc[peak_step]
    layers = [(t, float(last[t["name"]])) for t in weight_matrices(data.tree)
              if t["name"] in last.index and math.isfinite(last[t["name"]])]
    before = rows.loc[:peak_step].iloc[:-1]
    first_rows = before.rolling(3, min_periods=1).median().min()      # each layer's own low, as for the total
    growth = sorted(((t, float(v / first_rows[t["name"]])) for t, v in layers
                     if first_rows.get(t["name"], 0) and first_rows[t["name"]] > 0), key=lambda tv: -tv[1])
    top = growth[:5]
    module = top[0][0]["module"] if top else None
    return [Finding(
        code=CODE, severity="warning",
        title=f"The gradient norm grew {_fmt(end / start)}x during the run (from {_fmt(start)} to {_fmt(end)})",
        detail=(f"The total gradient norm rose from {_fmt(start)} to {_fmt(end)} by step {peak_step}"
                + (f"; fastest in {_names([t['name'] for t, _ in top], 3)}" if top else "")
                + ". Training is diverging: usually a learning rate too high for the data's scale, or "
                  "unnormalised inputs/targets."),
        module=module, location=module_location(data.tree, module),
        evidence={"total_grad_norm": {"start": start, "peak": end, "peak_step": peak_step, "growth": end / start},
                  "steps": [int(s) for s in total.index[:50]],
                  "values": [float(v) for v in total.values[:50]],
                  "layers": [{"name": t["name"], "module": t["module"], "growth": g} for t, g in top]},
        fix=("Lower the learning rate (try 10x smaller), normalise inputs and targets, and clip gradients "
             "with torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)."))]

