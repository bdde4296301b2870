"""update-ratio: ||dW|| / ||W|| per weight matrix far from the usual ~1e-3 in many layers, over the run or, for
too high, over its first steps (a learning rate far too high or too low). A run check."""
from __future__ import annotations

import math

import pandas as pd

from ..findings import Finding
from ..stats import finite, judged_weights, medians
from . import thresholds as T
from ._common import fmt as _fmt, module_location, names as _names
from .base import RunData

CODE = "update-ratio"
JUDGED_SHOWN = 400          # weights listed in the evidence for the chart (a 2,000-layer model is cut here)


def _judged(data: RunData) -> list[tuple[dict, float, int]]:
    """(weight entry, median update ratio over its finite steps, steps) per judged weight (probes.stats: the
    weight matrices, or every parameter of a model of vectors), in tree order: the same selection and medians
    the Weights page and this finding's chart show."""
    weights = judged_weights(data.tree)
    found = medians(data.series("update_ratio"), [t["name"] for t in weights], T.UPDATE_RATIO_MIN_STEPS)
    return [(t, *found[t["name"]]) for t in weights if t["name"] in found]


def _layer(t: dict, value: float, key: str) -> dict:
    return {"name": t["name"], "module": t["module"], key: value}


def update_ratio(data: RunData) -> list[Finding]:
    optimizers = [o.get("class") for o in data.meta.get("optimizers", [])]
    self_scaling = {i for i, cls in enumerate(optimizers) if cls in T.UPDATE_RATIO_SELF_SCALING}
    # exact zeros are weights-not-updating's business, not a too-low learning rate
    layers = [(t, v, n) for t, v, n in _judged(data) if v > 0 and t.get("optimizer") not in self_scaling]
    if not layers:
        return []
    early = _early_ratios(data)
    found = []
    for high in (True, False):
        # too high: over the run, or over its first steps (a far too high lr inflates the weights, and the
        # ratio against ever larger weights falls back under the threshold later in the run)
        hit = [(t, max(v, early.get(t["name"], 0.0)) if high else v) for t, v, _ in layers]
        hit = [(t, v) for t, v in hit if (v > T.UPDATE_RATIO_HIGH if high else v < T.UPDATE_RATIO_LOW)]
        if not hit or len(hit) < T.UPDATE_RATIO_MIN_FRACTION * len(layers):
            continue
        names = [t["name"] for t, _ in hit]
        lrs = sorted({g.get("lr") for o in data.meta.get("optimizers", []) for g in o.get("param_groups", [])
                      if isinstance(g.get("lr"), (int, float))})
        lr_text = f" (lr {', '.join(_fmt(x) for x in lrs)})" if lrs else ""
        median = float(pd.Series([v for _, v in hit]).median())
        found.append(Finding(
            code=CODE, severity="warning",
            title=(f"The learning rate looks too {'high' if high else 'low'}{lr_text}: updates are "
                   f"{_fmt(median)}x the weights in {len(hit)} of {len(layers)} layers"),
            detail=(f"Each step changes {_names(names, 3)} by a median {_fmt(median)} of their norm "
                    f"(||dW||/||W||); ~1e-3 is usual. "
                    + ("At this size each step rewrites the weights: training is unstable or diverges."
                       if high else "At this size the weights barely move: training crawls.")),
            module=hit[0][0]["module"], location=module_location(data.tree, hit[0][0]["module"]),
            evidence={"layers": [_layer(t, v, "update_ratio") for t, v in hit][:20], "lr": lrs,
                      "threshold": T.UPDATE_RATIO_HIGH if high else T.UPDATE_RATIO_LOW,
                      "layers_checked": len(layers),
                      # every weight judged, with the median it was judged on: what the finding's chart draws
                      "judged": [{"name": t["name"], "update_ratio": v} for t, v, _ in layers][:JUDGED_SHOWN]},
            fix=(f"{'Lower' if high else 'Raise'} the learning rate until ||dW||/||W|| sits near 1e-3 "
                 f"(a factor of ~{_fmt(median / 1e-3 if high else 1e-3 / median)} here)"
                 + (", or add warm-up." if high else ".")))
        )
    return found


def _early_ratios(data: RunData) -> dict[str, float]:
    """Median update ratio over each weight's first recorded steps, for weights that did not start at zero
    (a zero-initialised weight, LoRA's B say, has no ratio on its first step and moves a lot relative to
    itself while it grows from nothing: that is by design)."""
    frame = finite(data.series("update_ratio"))
    if frame.empty:
        return {}
    first = frame.iloc[0]
    out = {}
    for name in frame.columns:
        if not math.isfinite(first[name]):
            continue
        values = frame[name].dropna().iloc[:T.UPDATE_RATIO_EARLY_STEPS]
        if len(values) >= T.UPDATE_RATIO_MIN_STEPS:
            out[name] = float(values.median())
    return out

