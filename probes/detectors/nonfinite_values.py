"""nonfinite-values: the first step where NaN/Inf shows up (loss, gradients, weights or activations), and the
first module that produced it. A run check over the per-module and per-parameter non-finite counts."""
from __future__ import annotations

import math

import numpy as np

from ..findings import Finding
from ..stats import parameters
from ._common import column, module_location, module_order
from .base import RunData

CODE = "nonfinite-values"


def nonfinite_values(data: RunData) -> list[Finding]:
    """The first step where NaN/Inf shows up anywhere, and the first module that produced it."""
    tree = data.tree
    candidates = []     # (step, rank, kind, module, evidence): rank orders kinds within a step
    acts = data.series("act_nonfinite_frac")
    bad_acts = acts[(acts > 0).any(axis=1)] if not acts.empty else acts
    if not bad_acts.empty:
        step = int(bad_acts.index[0])
        row = bad_acts.iloc[0]
        bad = [m for m in row.index if row[m] > 0]
        # a container's output is bad because a child's is: blame the modules whose children are all fine
        leaves = [m for m in bad if not any(o != m and (m == "" or o.startswith(m + ".")) for o in bad)]
        order = module_order(tree)
        first = min(leaves, key=lambda m: order.get(m, len(order)))
        candidates.append((step, 0, "activations", first,
                           {"modules": [{"module": m, "nonfinite_fraction": float(row[m])}
                                        for m in sorted(bad, key=lambda m: order.get(m, len(order)))][:20]}))
    owner = {t["name"]: t["module"] for t in parameters(tree)}
    order = list(owner)
    for rank, (series, kind) in enumerate((("grad_nonfinite", "gradients"), ("weight_nonfinite", "weights")), 2):
        counts = data.series(series)
        if counts.empty:
            continue
        hit = counts[(counts > 0).any(axis=1)]
        if hit.empty:
            continue
        row = hit.iloc[0]
        names = sorted((n for n in row.index if row[n] > 0),
                       key=lambda n: order.index(n) if n in order else len(order))
        culprit = owner.get(names[0])
        if kind == "gradients":
            # a NaN made in backward flows on to every layer before it: it starts at the last layer (in
            # forward order) whose gradient is bad, or past all of them (the loss or the model's own
            # code: a sqrt at 0) when every layer's gradient went bad at once
            with_grad = {n for n in row.index if math.isfinite(row[n])}
            culprit = "" if set(names) >= with_grad & set(owner) else owner.get(names[-1])
        candidates.append((int(hit.index[0]), rank, kind, culprit,
                           {"parameters": [{"name": n, "nonfinite_values": int(row[n])} for n in names][:20]}))
    loss = column(data.scalars, "loss").astype(float)
    if data.meta.get("loss_flags"):
        # the Probe marks a step whose loss was NaN/Inf (loss_nonfinite): a step with no loss at all (the
        # last one of a run closed between optimizer steps) is not one
        flags = column(data.scalars, "loss_nonfinite").astype(float)
        bad_loss = loss[flags.reindex(loss.index).fillna(0) > 0]
    else:
        # an older log: a step without a loss reads NaN too: trust a NaN loss only in a run that recorded a
        # finite loss at some step, or whose gradients or weights went non-finite as well
        trusted = np.isfinite(loss).any() or any(c[2] in ("gradients", "weights") for c in candidates)
        bad_loss = loss[~np.isfinite(loss)] if trusted else loss.iloc[:0]
    if not bad_loss.empty:
        candidates.append((int(bad_loss.index[0]), 1, "loss", None, {"loss": str(bad_loss.iloc[0])}))
    # an activation alone may be -inf on purpose (a masked score, a log-probability of 0): it matters, and
    # is reported, only when the loss, a gradient or a weight goes non-finite too
    if not any(kind != "activations" for _, _, kind, _, _ in candidates):
        return []
    step, _, kind, module, evidence = min(candidates, key=lambda c: (c[0], c[1]))
    also = sorted({c[2] for c in candidates if c[2] != kind})
    where = "the loss" if kind == "loss" else (f"module {module}" if module else "the model")
    return [Finding(
        code=CODE, severity="error",
        title=f"NaN/Inf first appears in the {kind} of {where} at step {step}",
        detail=(f"At step {step} the {kind} of {where} hold non-finite values"
                + (f"; the {', '.join(also)} follow" if also else "")
                + ". Once a NaN reaches the weights, every later step is wasted. Common causes: log or sqrt "
                  "of a value that can be 0 or negative, division by a std or norm that can be 0, exp "
                  "overflow, or a learning rate so high that the weights overflow."),
        module=module, location=module_location(tree, module) if module is not None else None,
        evidence={"step": step, "where": kind, **evidence, "also_nonfinite": also},
        fix=("Guard the operation that produced it (clamp the input of log/sqrt, add eps to denominators, "
             "use log_softmax / logsumexp); torch.autograd.set_detect_anomaly(True) names the backward op."))]
