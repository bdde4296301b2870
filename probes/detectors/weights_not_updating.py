"""weights-not-updating: parameters the optimizer holds, with non-zero gradients, whose values do not change
(a learning rate of 0), or stop changing midway (a schedule stuck at 0). A run check over the gradient and
update norms."""
from __future__ import annotations

import warnings

import numpy as np

from ..findings import Finding
from ..stats import parameters
from . import thresholds as T
from ._common import common_parent, module_location, module_order, names as _names, optimizer_location
from .base import RunData
from .optimizer_not_stepping import never_stepped

CODE = "weights-not-updating"


def weights_not_updating(data: RunData) -> list[Finding]:
    tree = data.tree
    if never_stepped(data):
        return []           # an optimizer that never steps: optimizer-not-stepping says so
    grads, updates = data.series("grad_norm"), data.series("update_norm")
    # steps marked by hand (probe.step(), a hand-written update): every trainable parameter is "held"
    manual = bool(tree) and not tree.get("n_optimizers", len(data.meta.get("optimizers", [])))
    held = [t for t in parameters(tree)
            if (t["optimizer"] is not None or (manual and t["requires_grad"]))
            and t["name"] in updates.columns and t["name"] in grads.columns]
    stuck: list[dict] = []
    if held:
        # all parameters at once (a per-parameter pandas loop took ~2 s on 500 parameters x 100,000 steps):
        # the steps both were recorded on, where the gradient is finite and above the floor
        steps = grads.index.intersection(updates.index)
        names = [t["name"] for t in held]
        g = grads.loc[steps, names].to_numpy(dtype=np.float64)
        u = updates.loc[steps, names].to_numpy(dtype=np.float64)
        # the model's typical gradient at each step (over every parameter with one), for the relative floor
        every = grads.loc[steps].to_numpy(dtype=np.float64)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)         # a step where no gradient was recorded
            typical = np.nanmedian(np.where(np.isfinite(every) & (every > 0), every, np.nan), axis=1)
        floor = np.maximum(T.NOT_UPDATING_MIN_GRAD, np.nan_to_num(typical, nan=0.0) * T.NOT_UPDATING_REL_GRAD)
        usable = np.isfinite(g) & np.isfinite(u) & (g > floor[:, None])
        for j, t in enumerate(held):
            rows = np.flatnonzero(usable[:, j])
            if len(rows) < T.NOT_UPDATING_MIN_STEPS:
                continue
            # the steps at the end of the run on which it stopped moving (all of them: it never moved)
            moving = np.flatnonzero(u[rows, j] != 0)
            still = rows if not len(moving) else rows[moving[-1] + 1:]
            if len(still) < max(T.NOT_UPDATING_MIN_STEPS, T.NOT_UPDATING_TAIL_FRACTION * len(rows)):
                continue
            stuck.append({"name": t["name"], "module": t["module"], "optimizer": t["optimizer"],
                          "param_group": t["param_group"], "steps": [int(s) for s in steps[still[:10]]],
                          "since": int(steps[still[0]]), "moved_before": bool(len(moving)),
                          "grad_norm": float(np.median(g[still, j])), "update_norm": 0.0})
    if not stuck:
        return []
    lrs = {}
    for s in stuck:
        try:
            lr = data.meta["optimizers"][s["optimizer"]]["param_groups"][s["param_group"]].get("lr")
        except (KeyError, IndexError, TypeError):
            lr = None
        lrs[f"{s['optimizer']}/{s['param_group']}"] = lr
    zero_lr = any(v == 0 for v in lrs.values())
    modules = sorted({s["module"] for s in stuck}, key=lambda m: module_order(tree).get(m, 0))
    module = modules[0] if len(modules) == 1 else common_parent(modules)
    names = [s["name"] for s in stuck]
    stopped = all(s["moved_before"] for s in stuck)
    since = min(s["since"] for s in stuck)
    return [Finding(
        code=CODE, severity="error",
        title=(f"{_names(names)} stopped changing at step {since}, with gradients" if stopped else
               f"{_names(names)} have gradients but do not change"),
        detail=(f"{len(stuck)} parameter(s) {'the step updates' if manual else 'held by the optimizer'} received "
                f"non-zero gradients on {len(stuck[0]['steps'])}+ steps"
                + (f" from step {since} on (they moved before)" if stopped else "")
                + f", yet {'each step' if manual else 'optimizer.step()'} left them exactly as they were"
                + (" — the learning rate the optimizer started with is 0" if zero_lr else "")
                + ". Usual causes: lr=0 (a warm-up schedule computed with integer division, a scheduler "
                  "multiplying by 0), or weights restored after every step."),
        module=module,
        location=optimizer_location(data, {s["optimizer"] for s in stuck}) or module_location(tree, module),
        evidence={"parameters": stuck[:20], "count": len(stuck), "lr": lrs},
        fix=("Check the learning rate each step (optimizer.param_groups[0]['lr']): a warm-up factor like "
             "step // warmup is 0 until the end of warm-up; use step / warmup."))]
