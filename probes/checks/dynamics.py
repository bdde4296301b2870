"""Training run checks, warnings and info about how training moves: gradient norms across depth and steps,
update sizes relative to the weights, and the loss at initialisation."""
from __future__ import annotations

import math

import pandas as pd

from ..findings import Finding
from . import thresholds as T
from .base import RunData
from .training import _fmt, _names, finite, module_location, parameters, weight_matrices


def _layer_norms(data: RunData, series: str, min_steps: int, any_shape: bool = False) -> list[tuple[dict, float, int]]:
    """(weight entry, median of `series` over its finite steps, steps) per weight matrix, in tree order; with
    `any_shape`, every parameter when the model has no weight matrix at all (a model of vectors)."""
    frame = finite(data.series(series))
    out = []
    weights = weight_matrices(data.tree)
    if any_shape and not weights:
        weights = [t for t in parameters(data.tree) if t.get("numel")]
    for t in weights:
        if t["name"] not in frame.columns:
            continue
        values = frame[t["name"]].dropna()
        if len(values) >= min_steps:
            out.append((t, float(values.median()), len(values)))
    return out


def _layer(t: dict, value: float, key: str) -> dict:
    return {"name": t["name"], "module": t["module"], key: value}


# -- vanishing-gradients / exploding-gradients ----------------------------------------------------------
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


def _trend(values: list[float]) -> tuple[float, float]:
    """(Spearman correlation of depth with log10 value, Theil-Sen fitted change in decades from the first
    block to the last): a steady trend along depth, robust to one odd block."""
    logs = [math.log10(v) for v in values]
    n = len(logs)
    # Spearman: Pearson's correlation of the ranks (pandas' own spearman needs scipy)
    rank = float(pd.Series(range(n), dtype=float).corr(pd.Series(logs).rank()))
    slopes = sorted((logs[j] - logs[i]) / (j - i) for i in range(n) for j in range(i + 1, n))
    return (rank if math.isfinite(rank) else 0.0), slopes[len(slopes) // 2] * (n - 1)


def gradient_depth(data: RunData) -> list[Finding]:
    """Gradients that fall (or rise) steadily across depth, block by block, towards the input; judged for
    each network an optimizer trains (a GAN's generator and critic are two stacks, not one)."""
    groups = sorted({t.get("optimizer") for t in weight_matrices(data.tree) if t.get("optimizer") is not None})
    found = []
    for optimizer in groups if len(groups) > 1 else [None]:
        found += _depth_findings(data, depth_blocks(data, optimizer))
    return found


def _depth_findings(data: RunData, blocks: list[dict]) -> list[Finding]:
    if len(blocks) < T.DEPTH_MIN_BLOCKS:
        return []
    rank, decades = _trend([b["grad_rms"] for b in blocks])
    last = blocks[-1]
    found = []
    if rank >= T.DEPTH_TREND_RANK and decades >= math.log10(T.VANISHING_DEPTH_SPAN):
        hit = [b for b in blocks[:-1] if b["grad_rms"] <= last["grad_rms"] * T.VANISHING_BLOCK_RATIO]
        # a block whose weights move at a normal rate is learning (adaptive optimizers rescale gradients)
        if last["update_ratio"] and all(b["update_ratio"] is not None for b in hit):
            hit = [b for b in hit if b["update_ratio"] < last["update_ratio"] * T.VANISHING_UPDATE_CONFIRM]
        if hit:
            found.append(_depth_finding("vanishing-gradients", data, blocks, hit, 10 ** decades))
    elif rank <= -T.DEPTH_TREND_RANK and -decades >= math.log10(T.EXPLODING_DEPTH_SPAN):
        hit = [b for b in blocks[:-1] if b["grad_rms"] >= last["grad_rms"] / T.VANISHING_BLOCK_RATIO]
        if hit:
            found.append(_depth_finding("exploding-gradients", data, blocks, hit, 10 ** -decades))
    return found


def _depth_finding(code: str, data: RunData, blocks: list[dict], hit: list[dict], span: float) -> Finding:
    vanishing = code == "vanishing-gradients"
    last, first = blocks[-1], hit[0]
    names = [b["block"] for b in hit]
    module = first["block"]
    return Finding(
        code=code, severity="warning",
        title=(f"Gradients {'vanish' if vanishing else 'explode'} towards the input: {_names(names, 3)} at "
               f"{_fmt(first['grad_rms'] / last['grad_rms'])}x the gradient of {last['block']}"),
        detail=(f"Across {len(blocks)} blocks the gradient per weight {'falls' if vanishing else 'rises'} "
                f"steadily towards the input, {_fmt(span)}x from one end to the other (RMS per element of each "
                f"block's weight matrices, median over the recorded steps). "
                + (("The early blocks' weights also move far less than the last block's "
                    f"(update ratio {_fmt(first['update_ratio'])} against {_fmt(last['update_ratio'])}): "
                    if first.get("update_ratio") and last.get("update_ratio") else "")
                   + "the early layers barely learn. Usual causes: saturating activations (sigmoid/tanh) in a "
                     "deep stack, no normalisation or residual connections, a too-small init."
                   if vanishing else
                   "The early layers get updates that swamp their weights: a too-large init, or no "
                   "normalisation in a deep stack.")),
        module=module, location=module_location(data.tree, module),
        evidence={"blocks": [{k: b[k] for k in ("block", "grad_rms", "update_ratio")} for b in blocks][:60],
                  "layers": [{"module": b["block"], "grad_rms": b["grad_rms"], "update_ratio": b["update_ratio"],
                              "weights": b["weights"]} for b in hit][:20],
                  "reference": {"module": last["block"], "grad_rms": last["grad_rms"],
                                "update_ratio": last["update_ratio"]},
                  "span": span},
        fix=("Use ReLU/GELU instead of sigmoid/tanh in hidden layers, add normalisation (BatchNorm/LayerNorm) or "
             "residual connections, and a fan-in init (kaiming/xavier); an adaptive optimizer (Adam) also "
             "compensates." if vanishing else
             "Use a fan-in init (kaiming/xavier), add normalisation, and clip gradients "
             "(torch.nn.utils.clip_grad_norm_)."))


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
        code="exploding-gradients", severity="warning",
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


# -- update-ratio -------------------------------------------------------------------------------------
def update_ratio(data: RunData) -> list[Finding]:
    optimizers = [o.get("class") for o in data.meta.get("optimizers", [])]
    self_scaling = {i for i, cls in enumerate(optimizers) if cls in T.UPDATE_RATIO_SELF_SCALING}
    # exact zeros are weights-not-updating's business, not a too-low learning rate
    layers = [(t, v, n) for t, v, n in _layer_norms(data, "update_ratio", T.UPDATE_RATIO_MIN_STEPS, any_shape=True)
              if v > 0 and t.get("optimizer") not in self_scaling]
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
            code="update-ratio", severity="warning",
            title=(f"The learning rate looks too {'high' if high else 'low'}{lr_text}: updates are "
                   f"{_fmt(median)}x the weights in {len(hit)} of {len(layers)} layers"),
            detail=(f"Each step changes {_names(names, 3)} by a median {_fmt(median)} of their norm "
                    f"(||dW||/||W||); ~1e-3 is usual. "
                    + ("At this size each step rewrites the weights: training is unstable or diverges."
                       if high else "At this size the weights barely move: training crawls.")),
            module=hit[0][0]["module"], location=module_location(data.tree, hit[0][0]["module"]),
            evidence={"layers": [_layer(t, v, "update_ratio") for t, v in hit][:20], "lr": lrs,
                      "threshold": T.UPDATE_RATIO_HIGH if high else T.UPDATE_RATIO_LOW,
                      "layers_checked": len(layers)},
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


# -- suspicious-initial-loss --------------------------------------------------------------------------
def suspicious_initial_loss(data: RunData) -> list[Finding]:
    classes = data.meta.get("classes")
    loss = data.scalars["loss"].dropna() if "loss" in data.scalars.columns else pd.Series(dtype=float)
    if not isinstance(classes, int) or classes < 2 or loss.empty:
        return []
    first, step = float(loss.iloc[0]), int(loss.index[0])
    expected = math.log(classes)
    if not math.isfinite(first) or expected / T.INITIAL_LOSS_RATIO <= first <= expected * T.INITIAL_LOSS_RATIO:
        return []
    high = first > expected
    # the output layer: the last weight matrix that trains (a momentum encoder or frozen head after it is not)
    last = next((m for m in reversed(weight_matrices(data.tree)) if m.get("requires_grad", True)
                 and m.get("optimizer", 0) is not None), None)
    module = last["module"] if last else None
    return [Finding(
        code="suspicious-initial-loss", severity="info",
        title=f"The first loss is {_fmt(first)}; a {classes}-class classifier starts near log({classes}) = "
              f"{_fmt(expected)}",
        detail=(f"At step {step} the cross-entropy was {_fmt(first)}, {_fmt(first / expected)}x log({classes}). "
                + ("An untrained classifier should predict roughly uniform probabilities; a much higher loss "
                   "means confident wrong predictions from the start (output layer initialised too large), "
                   "which wastes the first steps undoing it." if high else
                   "An untrained classifier cannot do much better than uniform; a much lower loss suggests the "
                   "labels leak into the inputs, or a pretrained head.")),
        module=module, location=module_location(data.tree, module),
        evidence={"step": step, "loss": first, "classes": classes, "expected": expected},
        fix=("Initialise the output layer small (e.g. scale its weights by 0.01, bias 0) so the first "
             "predictions are near uniform." if high else
             "Check that the targets are not part of the inputs."))]
